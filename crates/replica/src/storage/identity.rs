//! The `identity` file: which replica (node id, address, object) a data
//! directory belongs to. Written once, atomically, when the directory is
//! created; a replica resumes its identity only from its own directory.

use super::errors::{StorageError, io};
use super::sync_dir;
use paxos_core::NodeId;
use std::io::Write;
use std::path::Path;

/// Who owns a data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The node id (one incarnation).
    pub node: NodeId,
    /// The address it serves on.
    pub addr: String,
    /// The object type it hosts.
    pub object: String,
}

const FILE: &str = "identity";

impl Identity {
    /// Reads the identity of `dir`, if it has one.
    pub fn read(dir: &Path) -> Result<Option<Identity>, StorageError> {
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut node = None;
        let mut addr = None;
        let mut object = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("node", v)) => node = u64::from_str_radix(v.trim(), 16).ok().map(NodeId),
                Some(("addr", v)) => addr = Some(v.trim().to_string()),
                Some(("object", v)) => object = Some(v.trim().to_string()),
                _ => {}
            }
        }
        match (node, addr, object) {
            (Some(node), Some(addr), Some(object)) => Ok(Some(Identity { node, addr, object })),
            _ => Err(StorageError::Corrupt {
                path,
                offset: 0,
                detail: "the identity file is incomplete".into(),
            }),
        }
    }

    /// Writes the identity of `dir` (temp file, fsync, rename, fsync dir).
    pub fn write(&self, dir: &Path) -> Result<(), StorageError> {
        let tmp = dir.join("identity.tmp");
        let text = format!(
            "node={:016x}\naddr={}\nobject={}\n",
            self.node.0, self.addr, self.object
        );
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, dir.join(FILE)).map_err(io(dir))?;
        sync_dir(dir)
    }

    /// Refuses to run as a different replica than the directory's owner.
    pub fn check(&self, addr: &str, object: &str, dir: &Path) -> Result<(), StorageError> {
        if self.addr != addr {
            return Err(StorageError::Identity(format!(
                "{} belongs to the replica at {} (node {}); start it with that address \
                 (-a/-p) or give this replica another --data-dir",
                dir.display(),
                self.addr,
                self.node
            )));
        }
        if self.object != object {
            return Err(StorageError::Identity(format!(
                "{} holds a replica of {}, not {object}; use another --data-dir",
                dir.display(),
                self.object
            )));
        }
        Ok(())
    }
}
