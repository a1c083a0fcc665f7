//! What can go wrong calling a replicated object.

use concoord_transport::wire::CallError;
use std::time::Duration;
use thiserror::Error;

/// A failed call.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The bootstrap string is malformed.
    #[error("bad bootstrap string: {0}")]
    Bootstrap(String),
    /// The bootstrap domain could not be resolved.
    #[error(
        "cannot find the instance at {domain}: {detail}; check the name server (-n) is running, \
         or give --dns-server ADDR:PORT"
    )]
    Resolve {
        /// The domain.
        domain: String,
        /// What went wrong.
        detail: String,
    },
    /// No replica answered within the timeout.
    #[error("no replica reachable within {after:?} (tried {tried}): is the instance running?")]
    Unreachable {
        /// How long we tried.
        after: Duration,
        /// Addresses tried and the last error.
        tried: String,
    },
    /// The call got no reply in time. It may or may not have taken effect; a
    /// retry with the same client would not run it twice.
    #[error("`{method}` got no reply within {after:?}; its outcome is unknown")]
    Timeout {
        /// The method.
        method: String,
        /// The timeout.
        after: Duration,
    },
    /// The replica refused or failed the call.
    #[error("{0}")]
    Call(CallError),
    /// The method returned an error value; decode it with
    /// [`ClientError::application_error`].
    #[error("`{method}` returned an error")]
    Application {
        /// The method.
        method: String,
        /// The msgpack-encoded error value.
        value: Vec<u8>,
    },
    /// The reply does not have the expected type.
    #[error("unexpected reply to `{method}`: {detail}")]
    Decode {
        /// The method.
        method: String,
        /// What is wrong.
        detail: String,
    },
    /// A replica refused the connection (wrong token, other protocol version).
    #[error("connection refused: {0}")]
    Refused(String),
    /// The client was shut down.
    #[error("the client is closed")]
    Closed,
}

/// The outcome of a method that returns `Result<T, E>`: either the method's
/// own error, or a failure to call it.
#[derive(Debug, Error)]
pub enum MethodError<E> {
    /// The method ran and returned this error.
    #[error("the method returned an error: {0:?}")]
    Returned(E),
    /// The call failed.
    #[error(transparent)]
    Failed(#[from] ClientError),
}

impl<E> MethodError<E> {
    /// The method's own error, if that is what happened.
    pub fn returned(&self) -> Option<&E> {
        match self {
            MethodError::Returned(e) => Some(e),
            MethodError::Failed(_) => None,
        }
    }
}

impl ClientError {
    /// Decodes the error value a method returned, if this is one.
    pub fn application_error<E: serde::de::DeserializeOwned>(&self) -> Option<E> {
        match self {
            ClientError::Application { value, .. } => rmp_serde::from_slice(value).ok(),
            _ => None,
        }
    }
}
