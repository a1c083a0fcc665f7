//! Snapshot files: `snapshot-<slot>.snap` = magic, CRC, length, then the
//! msgpack snapshot. Written to a temporary file, synced and renamed, so a
//! crash leaves either the old or the new snapshot, never half of one.

use super::errors::{StorageError, io};
use super::sync_dir;
use paxos_core::Snapshot;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"CCSN";
const HEADER_BYTES: usize = 16;

/// The file name of the snapshot at `slot`.
pub fn name(slot: u64) -> String {
    format!("snapshot-{slot:020}.snap")
}

/// Snapshot files in `dir`, newest first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(slot) = name
            .strip_prefix("snapshot-")
            .and_then(|s| s.strip_suffix(".snap"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((slot, entry.path()));
        }
    }
    out.sort_by_key(|(slot, _)| std::cmp::Reverse(*slot));
    Ok(out)
}

/// Writes a snapshot durably; returns its path and size.
pub fn write(dir: &Path, snapshot: &Snapshot) -> Result<(PathBuf, u64), StorageError> {
    let body = rmp_serde::to_vec(snapshot).map_err(|e| StorageError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut buf = Vec::with_capacity(HEADER_BYTES + body.len());
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    buf.extend_from_slice(&(body.len() as u64).to_be_bytes());
    buf.extend_from_slice(&body);
    let tmp = dir.join("snapshot.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&buf).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    let path = dir.join(name(snapshot.slot));
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)?;
    Ok((path, buf.len() as u64))
}

/// Reads and checks a snapshot file.
pub fn read(path: &Path) -> Result<Snapshot, StorageError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let corrupt = |detail: &str| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail: detail.to_string(),
    };
    if bytes.len() < HEADER_BYTES || &bytes[0..4] != MAGIC {
        return Err(corrupt("not a ConCoord snapshot (bad header)"));
    }
    let crc = u32::from_be_bytes(
        bytes[4..8]
            .try_into()
            .map_err(|_| corrupt("short header"))?,
    );
    let len = u64::from_be_bytes(
        bytes[8..16]
            .try_into()
            .map_err(|_| corrupt("short header"))?,
    );
    let body = &bytes[HEADER_BYTES..];
    if body.len() as u64 != len {
        return Err(corrupt("truncated snapshot"));
    }
    if crc32fast::hash(body) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    rmp_serde::from_slice(body).map_err(|e| corrupt(&format!("undecodable snapshot: {e}")))
}
