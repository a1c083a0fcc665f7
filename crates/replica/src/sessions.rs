//! The exactly-once table: per client, the replies of calls it has not yet
//! acknowledged. Part of the replicated state (and of every snapshot), so every
//! replica answers a retried call with its first reply, whichever replica the
//! client retries at.
//!
//! A client numbers its calls 1, 2, 3, … and tells the replica in every request
//! the highest `acked` number up to which it holds every reply. Replies at or
//! below `acked` are forgotten. The table thus holds at most the client's
//! in-flight window, even for pipelined clients.

use concoord_transport::wire::CallError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Calls of one client that may be unanswered at once.
pub const IN_FLIGHT_PER_CLIENT_MAX: u64 = 4096;

/// A stored reply: the encoded return value or the error.
pub type StoredReply = Result<Vec<u8>, CallError>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ClientSession {
    acked: u64,
    replies: BTreeMap<u64, StoredReply>,
}

/// What to do with an incoming call.
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    /// Never seen: run it.
    Fresh,
    /// Already run: here is its reply.
    Duplicate(StoredReply),
    /// The client already acknowledged this call's reply: drop it.
    Stale,
    /// The client has too many unanswered calls.
    TooManyInFlight,
}

/// Replies per client.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionTable {
    clients: BTreeMap<u64, ClientSession>,
}

impl SessionTable {
    /// Decides what to do with call `seq` of `client`, forgetting replies the
    /// client acknowledged. Changes state: call it only while executing the log.
    pub fn admit(&mut self, client: u64, seq: u64, acked: u64) -> Admission {
        let session = self.clients.entry(client).or_default();
        if acked > session.acked {
            session.acked = acked;
            session.replies = session.replies.split_off(&(acked + 1));
        }
        if seq <= session.acked {
            return Admission::Stale;
        }
        if let Some(reply) = session.replies.get(&seq) {
            return Admission::Duplicate(reply.clone());
        }
        if seq > session.acked + IN_FLIGHT_PER_CLIENT_MAX {
            return Admission::TooManyInFlight;
        }
        Admission::Fresh
    }

    /// Looks a call up without changing anything (the leader's fast path for
    /// retries of calls already executed).
    pub fn lookup(&self, client: u64, seq: u64) -> Option<&StoredReply> {
        self.clients.get(&client).and_then(|s| s.replies.get(&seq))
    }

    /// Stores the reply of a call just run.
    pub fn record(&mut self, client: u64, seq: u64, reply: StoredReply) {
        self.clients
            .entry(client)
            .or_default()
            .replies
            .insert(seq, reply);
    }

    /// Clients with a session.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client has a session.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_call_gets_its_first_reply() {
        let mut t = SessionTable::default();
        assert_eq!(t.admit(7, 1, 0), Admission::Fresh);
        t.record(7, 1, Ok(vec![1]));
        assert_eq!(t.admit(7, 1, 0), Admission::Duplicate(Ok(vec![1])));
    }

    #[test]
    fn acknowledged_replies_are_forgotten_and_their_calls_dropped() {
        let mut t = SessionTable::default();
        for seq in 1..=3 {
            t.admit(7, seq, 0);
            t.record(7, seq, Ok(vec![seq as u8]));
        }
        assert_eq!(t.admit(7, 4, 2), Admission::Fresh);
        assert_eq!(t.lookup(7, 1), None);
        assert_eq!(t.lookup(7, 3), Some(&Ok(vec![3])));
        assert_eq!(t.admit(7, 2, 2), Admission::Stale);
    }

    #[test]
    fn pipelined_calls_may_complete_out_of_order() {
        let mut t = SessionTable::default();
        assert_eq!(t.admit(1, 2, 0), Admission::Fresh);
        t.record(1, 2, Ok(vec![]));
        assert_eq!(t.admit(1, 1, 0), Admission::Fresh);
    }

    #[test]
    fn a_client_cannot_run_unboundedly_ahead_of_its_acknowledgements() {
        let mut t = SessionTable::default();
        assert_eq!(
            t.admit(1, IN_FLIGHT_PER_CLIENT_MAX + 1, 0),
            Admission::TooManyInFlight
        );
    }
}
