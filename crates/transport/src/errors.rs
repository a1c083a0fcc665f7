//! Transport errors.

use std::io;
use thiserror::Error;

/// A frame could not be read or written.
#[derive(Debug, Error)]
pub enum CodecError {
    /// Socket error, or a frame over the size limit.
    #[error("bad frame: {0}")]
    Frame(#[source] io::Error),
    /// The frame's body is not the expected msgpack value.
    #[error("malformed message: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// A value could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// A frame above the connection's limit: an incoming one is refused
    /// before its body is read; an outgoing one is not written (the
    /// connection stays usable).
    #[error("a frame of {bytes} bytes exceeds this connection's limit of {limit} bytes")]
    Oversized {
        /// The frame's size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A frame's body did not arrive in time after its length.
    #[error("the {bytes}-byte frame announced did not arrive in time")]
    SlowBody {
        /// The frame's announced size.
        bytes: usize,
    },
}

impl From<io::Error> for CodecError {
    fn from(e: io::Error) -> Self {
        CodecError::Frame(e)
    }
}

/// Opening a connection failed.
#[derive(Debug, Error)]
pub enum HandshakeError {
    /// No TCP connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The peer did not answer in time.
    #[error("{0} did not complete the handshake in time")]
    Timeout(String),
    /// The connection closed during the handshake.
    #[error("{0} closed the connection during the handshake")]
    Closed(String),
    /// A frame was malformed.
    #[error("handshake with {addr} failed: {source}")]
    Codec {
        /// The peer.
        addr: String,
        /// The cause.
        #[source]
        source: CodecError,
    },
    /// The replica refused us.
    #[error("{addr} refused the connection: {reason}")]
    Rejected {
        /// The replica.
        addr: String,
        /// Its reason.
        reason: String,
    },
    /// The connecting side is not acceptable (server side).
    #[error("refused a connection: {0}")]
    Refused(String),
    /// The replica serves as many clients as it may; it closed the
    /// connection without an answer, so the client tries again (server side).
    #[error(
        "closed a connection from {0}: as many clients are connected as the replica serves (--max-connections)"
    )]
    TooManyClients(String),
    /// The replica answering could not prove it holds the instance secret.
    #[error(
        "{0} did not prove it holds this instance's peer secret: it belongs to another instance, or one of the two has the wrong --peer-secret"
    )]
    Impostor(String),
    /// The two sides proved the same secret but belong to different
    /// instances (a replica restarted without its state founded a new one).
    #[error(
        "{addr} belongs to instance {theirs}, this side to instance {ours}: a replica restarted without its state (and without -b) founds a new instance; stop it and rejoin it with -b ADDR of a running replica"
    )]
    OtherInstance {
        /// The other side.
        addr: String,
        /// Its instance.
        theirs: crate::InstanceId,
        /// Ours.
        ours: crate::InstanceId,
    },
    /// The TLS handshake failed: no TLS on the other side, a certificate
    /// the CA did not sign, or garbage instead of a TLS record.
    #[error(
        "TLS handshake with {addr} failed: {source}; both sides need certificates from the same CA (--tls-ca)"
    )]
    Tls {
        /// The other side.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The replica dialed as a peer showed a certificate that does not name
    /// the address dialed (see `tls_identity`).
    #[error("{addr} is not the replica the view lists there: {reason}")]
    NotThatReplica {
        /// The address dialed.
        addr: String,
        /// Why its certificate does not speak for it.
        reason: String,
    },
    /// The replica answered with a handshake step that does not fit.
    #[error("{addr} answered the handshake with {got}")]
    Unexpected {
        /// The replica.
        addr: String,
        /// What came.
        got: &'static str,
    },
}

/// An instance secret file could not be used.
#[derive(Debug, Error)]
pub enum SecretError {
    /// The file cannot be read.
    #[error(
        "cannot read the peer secret {path}: {source}; give the instance's secret file with --peer-secret FILE"
    )]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file cannot be written.
    #[error("cannot write the peer secret {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file holds too short a secret to resist guessing.
    #[error("the peer secret in {path} has {chars} characters; use at least {min} (or delete the file to have a replica generate one)", min = crate::instance_secret::SECRET_CHARS_MIN)]
    TooShort {
        /// The file.
        path: std::path::PathBuf,
        /// Its length.
        chars: usize,
    },
}

/// TLS material could not be loaded or does not fit together.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("cannot use {what} {path}: {detail}; give a PEM file (see docs/security.md)")]
    File {
        /// What the file should hold (a certificate chain, a key, a CA).
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The certificates and key do not make a valid TLS configuration.
    #[error("invalid TLS configuration: {0}; check that --tls-key is the key of --tls-cert")]
    Config(String),
    /// `--tls-cert` without `--tls-key`, or a replica without a certificate.
    #[error("{0}")]
    Flags(String),
}
