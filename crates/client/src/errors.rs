//! What can go wrong calling a replicated object.

use concoord_transport::wire::{CallError, show_bytes};
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
    /// The call got no reply in time. It may or may not have run, and it may
    /// still run: the client has given up on it (a blocked call is cancelled).
    /// Calling again is a new call, which runs once more if this one ran —
    /// check the object's state before repeating a write that must not happen
    /// twice. See [`ClientError::outcome_unknown`].
    #[error(
        "`{method}` got no reply within {after:?}; it may or may not have run, and calling again may run it twice"
    )]
    Timeout {
        /// The method.
        method: String,
        /// The timeout.
        after: Duration,
    },
    /// The call was sent, and its session ended (it expired, or the client
    /// closed it) before the reply came: it may or may not have run. Calling
    /// again is a new call, in a new session.
    #[error("`{method}`: {reason}; it may or may not have run, and calling again may run it twice")]
    OutcomeUnknown {
        /// The method.
        method: String,
        /// What ended the session.
        reason: String,
    },
    /// The replica refused or failed the call. `CallError::SessionExpired`
    /// here means the call did **not** run: the replicas refused it because
    /// its session had ended; calling again (in a new session) is safe.
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
    /// The bootstrap list names replicas of two different instances (a
    /// replica restarted without its state and without `-b` founds a new,
    /// empty instance on its old address). The client refuses to mix them.
    #[error(
        "the bootstrap list mixes two instances: {first} belongs to instance {first_instance}, \
         {other} to instance {other_instance}. List replicas of one instance only; a replica \
         restarted without its state (and without -b) founds a new instance: stop it and rejoin \
         it with -b ADDR of a running replica"
    )]
    MixedInstances {
        /// The replica connected to first.
        first: String,
        /// Its instance.
        first_instance: concoord_transport::InstanceId,
        /// A replica of another instance.
        other: String,
        /// That one's instance.
        other_instance: concoord_transport::InstanceId,
    },
    /// A replica refused the connection (wrong token, other protocol version).
    #[error("connection refused: {0}")]
    Refused(String),
    /// The call's method name and arguments exceed the call size limit
    /// ([`CALL_BYTES_MAX`](concoord_transport::wire::CALL_BYTES_MAX)); it was
    /// not sent.
    #[error(
        "`{method}` is too large to call: {} of method name and arguments, above the limit of {}; \
         store large values in pieces, or outside ConCoord",
        show_bytes(*.bytes),
        show_bytes(*.limit)
    )]
    TooLarge {
        /// The method.
        method: String,
        /// The call's size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
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
    /// Whether the call may or may not have run (a timeout, or a session that
    /// ended while it was in flight). Every other error means it did not run,
    /// or ran and returned the error.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout { .. } | ClientError::OutcomeUnknown { .. }
        )
    }

    /// Decodes the error value a method returned, if this is one.
    pub fn application_error<E: serde::de::DeserializeOwned>(&self) -> Option<E> {
        match self {
            ClientError::Application { value, .. } => rmp_serde::from_slice(value).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_of_calls_that_may_have_run_say_the_outcome_is_unknown() {
        let timeout = ClientError::Timeout {
            method: "increment".into(),
            after: Duration::from_secs(10),
        };
        let ended = ClientError::OutcomeUnknown {
            method: "increment".into(),
            reason: "the session expired before its reply arrived".into(),
        };
        for err in [&timeout, &ended] {
            assert!(err.outcome_unknown(), "{err:?}");
            let text = err.to_string();
            assert!(text.contains("may or may not have run"), "{text}");
            assert!(text.contains("may run it twice"), "{text}");
        }
        let refused = ClientError::Call(CallError::SessionExpired);
        assert!(!refused.outcome_unknown(), "a refused call did not run");
        let busy = ClientError::Call(CallError::Busy);
        assert!(!busy.outcome_unknown());
    }
}
