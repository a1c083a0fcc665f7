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
    /// The directory has an identity but not the whole history that goes
    /// with it: resuming the identity would forget promises.
    #[error(
        "{dir} holds the identity of node {node}, but its log is incomplete: {problem}. \
         Resuming that identity could forget promises it made and let the instance decide a slot \
         twice, so the replica will not start. Restore the missing files from a backup, or start \
         with --repair -b ADDRS to set the directory aside and rejoin the instance as a new \
         replica"
    )]
    History {
        /// The data directory.
        dir: PathBuf,
        /// The node id its identity names.
        node: paxos_core::NodeId,
        /// What is missing or does not fit.
        problem: String,
    },
    /// The directory holds log files but no identity.
    #[error(
        "{0} holds a replica's log (wal-*.log or snapshot files) but no identity file, so it \
         cannot say which replica it belongs to. Restore the identity file from a backup, or \
         start with --repair -b ADDRS to set the directory aside and rejoin as a new replica"
    )]
    NoIdentity(PathBuf),
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.into();
    move |source| StorageError::Io { path, source }
}
