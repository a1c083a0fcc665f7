//! Storage errors, each saying what to do.

use std::path::PathBuf;
use thiserror::Error;

/// Why the data directory cannot be used.
#[derive(Debug, Error)]
pub enum StorageError {
    /// An I/O error (full disk, permissions, a file where a directory should be).
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A record or snapshot failed its checksum or could not be decoded.
    #[error(
        "{path} is corrupt at offset {offset}: {detail}. The replica will not start on damaged \
         data. Restore the data directory from a backup, or start with --repair to set it aside \
         and rejoin the instance as a new replica (needs -b)"
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged record.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The data directory belongs to another replica.
    #[error("{0}")]
    Identity(String),
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.into();
    move |source| StorageError::Io { path, source }
}
