//! Snapshot files: `snapshot-<slot>.snap` = magic, the node id, CRC, length,
//! then the msgpack snapshot. Written to a temporary file, synced and
//! renamed, and the directory synced, so a power loss leaves either no new
//! snapshot or a whole one, never half of one. The node id binds the file to
//! the log it belongs with: a snapshot copied from another replica is refused.

use super::disk::{Disk, numbered, write_atomically};
use super::errors::{StorageError, io};
use super::record::LOG_FORMAT;
use paxos_core::{NodeId, Snapshot};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"CCS2";
const HEADER_BYTES: usize = 24;

/// The file name of the snapshot at `slot`.
pub fn name(slot: u64) -> String {
    format!("snapshot-{slot:020}.snap")
}

/// The snapshot slots among directory entry names, oldest first.
pub fn slots(names: &[String]) -> Vec<u64> {
    numbered(names, "snapshot-", ".snap")
}

/// The file's bytes for the snapshot of `node`: header, then the body.
pub fn encode(dir: &Path, node: NodeId, snapshot: &Snapshot) -> Result<Vec<u8>, StorageError> {
    // The body is encoded in place after room for the header (one copy of
    // a large snapshot, not two).
    let mut buf = vec![0u8; HEADER_BYTES];
    rmp_serde::encode::write(&mut buf, snapshot).map_err(|e| StorageError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let body = &buf[HEADER_BYTES..];
    let (crc, len) = (crc32fast::hash(body), body.len() as u64);
    buf[0..4].copy_from_slice(MAGIC);
    buf[4..12].copy_from_slice(&node.0.to_be_bytes());
    buf[12..16].copy_from_slice(&crc.to_be_bytes());
    buf[16..24].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Writes the snapshot of `node` durably; returns its path and size.
pub fn write(
    disk: &dyn Disk,
    dir: &Path,
    node: NodeId,
    snapshot: &Snapshot,
) -> Result<(PathBuf, u64), StorageError> {
    let buf = encode(dir, node, snapshot)?;
    let name = name(snapshot.slot);
    let path = dir.join(&name);
    if super::injected(super::StorageBug::SnapshotDataNotSynced) {
        let tmp = dir.join(format!("{name}.tmp"));
        let mut f = disk.create(&tmp).map_err(io(&tmp))?;
        f.append(&buf).map_err(io(&tmp))?;
        disk.rename(&tmp, &path).map_err(io(&path))?;
        disk.sync_dir(dir).map_err(io(dir))?;
    } else {
        write_atomically(disk, dir, &name, &buf).map_err(io(&path))?;
    }
    Ok((path, buf.len() as u64))
}

/// Reads and checks the snapshot file at `path`, which must belong to `node`;
/// returns it and the file's size.
pub fn read(disk: &dyn Disk, path: &Path, node: NodeId) -> Result<(Snapshot, u64), StorageError> {
    let bytes = disk.read(path).map_err(io(path))?;
    let corrupt = |detail: &str| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail: detail.to_string(),
    };
    if bytes.len() < HEADER_BYTES || &bytes[0..4] != MAGIC {
        return Err(corrupt(&format!(
            "not a ConCoord snapshot of log format {LOG_FORMAT} (bad header)"
        )));
    }
    let word = |at: usize| -> [u8; 8] {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        w
    };
    let owner = NodeId(u64::from_be_bytes(word(4)));
    let crc = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    let len = u64::from_be_bytes(word(16));
    let body = &bytes[HEADER_BYTES..];
    if body.len() as u64 != len {
        return Err(corrupt("truncated snapshot"));
    }
    if crc32fast::hash(body) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    if owner != node {
        return Err(StorageError::Identity(format!(
            "{} is a snapshot of node {owner}, not of this replica (node {node}): it was copied \
             from another replica's data directory. Remove it, or start with --repair to set \
             the directory aside and rejoin as a new replica (needs -b)",
            path.display()
        )));
    }
    let snapshot =
        rmp_serde::from_slice(body).map_err(|e| corrupt(&format!("undecodable snapshot: {e}")))?;
    Ok((snapshot, bytes.len() as u64))
}
