//! The `identity` file: which replica (node id, address, object, and the
//! instance if it founded it) a data directory belongs to. Written once, atomically, as the last step of
//! creating the directory (after the first log segment is durable), so a
//! directory with an identity always has a log; a replica resumes its
//! identity only from its own directory, and only with its whole history
//! (see `history`).

use super::disk::{Disk, write_atomically};
use super::errors::{StorageError, io};
use super::record::LOG_FORMAT;
use concoord_transport::InstanceId;
use paxos_core::NodeId;
use std::path::Path;

/// Who owns a data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The node id: one incarnation (a replica that lost its state comes
    /// back under a new one).
    pub node: NodeId,
    /// The address it serves on.
    pub addr: String,
    /// The object type it hosts.
    pub object: String,
    /// The instance, if known when the directory was created (a founder's;
    /// a joiner learns its instance from its peers at every start).
    pub instance: Option<InstanceId>,
}

/// The file's name in the data directory.
pub const FILE: &str = "identity";

impl Identity {
    /// Reads the identity of `dir`, if it has one.
    pub fn read(disk: &dyn Disk, dir: &Path) -> Result<Option<Identity>, StorageError> {
        let path = dir.join(FILE);
        let bytes = match disk.read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut node = None;
        let mut addr = None;
        let mut object = None;
        let mut format = None;
        let mut instance = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("node", v)) => node = u64::from_str_radix(v.trim(), 16).ok().map(NodeId),
                Some(("addr", v)) => addr = Some(v.trim().to_string()),
                Some(("object", v)) => object = Some(v.trim().to_string()),
                Some(("format", v)) => format = v.trim().parse::<u32>().ok(),
                Some(("instance", v)) => instance = InstanceId::parse(v),
                _ => {}
            }
        }
        let (Some(node), Some(addr), Some(object)) = (node, addr, object) else {
            return Err(StorageError::Corrupt {
                path,
                offset: 0,
                detail: "the identity file is incomplete".into(),
            });
        };
        if format != Some(LOG_FORMAT) {
            return Err(StorageError::Identity(format!(
                "{} was written by another version of ConCoord (log format {}, this version \
                 reads {LOG_FORMAT}). Start with --repair -b ADDRS to set it aside and rejoin \
                 the instance as a new replica",
                dir.display(),
                format.map_or("1".to_string(), |f| f.to_string())
            )));
        }
        Ok(Some(Identity {
            node,
            addr,
            object,
            instance,
        }))
    }

    /// Writes the identity of `dir` (temp file, sync, rename, sync dir).
    pub fn write(&self, disk: &dyn Disk, dir: &Path) -> Result<(), StorageError> {
        let mut text = format!(
            "node={:016x}\naddr={}\nobject={}\nformat={LOG_FORMAT}\n",
            self.node.0, self.addr, self.object
        );
        if let Some(instance) = self.instance {
            text.push_str(&format!("instance={instance}\n"));
        }
        write_atomically(disk, dir, FILE, text.as_bytes()).map_err(io(dir.join(FILE)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsDisk;

    #[test]
    fn a_founders_identity_keeps_its_instance_and_a_joiners_has_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut identity = Identity {
            node: NodeId(0xabc),
            addr: "127.0.0.1:14000".into(),
            object: "counter".into(),
            instance: Some(InstanceId(0x1234_5678_9abc_def0)),
        };
        identity.write(&OsDisk, dir.path()).expect("write");
        let read = Identity::read(&OsDisk, dir.path()).expect("read");
        assert_eq!(read.as_ref(), Some(&identity));
        identity.instance = None;
        identity.write(&OsDisk, dir.path()).expect("write");
        let read = Identity::read(&OsDisk, dir.path()).expect("read");
        assert_eq!(read, Some(identity), "no instance line: learned at start");
    }
}
