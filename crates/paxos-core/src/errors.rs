//! Errors the core returns to its caller.

use crate::types::{NodeId, Slot};
use core::fmt;

/// Why a proposal or read was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// This node does not lead; send the request to `leader` if known.
    NotLeader {
        /// The leader this node last heard from, if any.
        leader: Option<NodeId>,
    },
    /// The leader's queue is full; retry later (back-pressure).
    Busy,
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader: Some(l) } => {
                write!(f, "not the leader; the leader is node {l}")
            }
            ProposeError::NotLeader { leader: None } => {
                write!(
                    f,
                    "not the leader and no leader is known yet; retry shortly"
                )
            }
            ProposeError::Busy => write!(f, "the leader's queue is full; retry later"),
        }
    }
}

impl std::error::Error for ProposeError {}

/// Why `compact` refused a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompactError {
    /// The snapshot's slot has not been handed to the caller for execution yet.
    NotExecuted {
        /// The slot asked for.
        slot: Slot,
        /// The highest slot handed out so far.
        executed: Slot,
    },
    /// A snapshot at this slot or later is already held.
    Stale {
        /// The slot asked for.
        slot: Slot,
        /// The slot of the snapshot already held.
        held: Slot,
    },
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactError::NotExecuted { slot, executed } => write!(
                f,
                "cannot snapshot at slot {slot}: only slots up to {executed} were executed"
            ),
            CompactError::Stale { slot, held } => write!(
                f,
                "cannot snapshot at slot {slot}: a snapshot at slot {held} is already held"
            ),
        }
    }
}

impl std::error::Error for CompactError {}

/// An invalid [`Config`](crate::Config) or restart state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid paxos configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Something a peer sent that a correct peer never sends. The node drops the
/// message (or the decision in it), keeps running, and reports the peer in
/// [`Ready::peer_faults`](crate::Ready::peer_faults) so the caller can log it,
/// count it and cut the peer off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerFault {
    /// The message failed [`Message::check`](crate::Message::check), or a
    /// snapshot's bytes did not match its size or digest.
    Malformed(&'static str),
    /// A decision for `slot` that differs from the value this node already
    /// holds as decided. Between correct nodes this is impossible: it means
    /// a peer lies, or agreement is broken.
    ConflictingDecision {
        /// The slot.
        slot: Slot,
    },
}

impl fmt::Display for PeerFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerFault::Malformed(why) => write!(f, "malformed message: {why}"),
            PeerFault::ConflictingDecision { slot } => write!(
                f,
                "claimed a decision for slot {slot} that differs from the value decided here"
            ),
        }
    }
}
