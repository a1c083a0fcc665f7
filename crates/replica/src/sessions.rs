//! The exactly-once table: per client session, the calls it has not yet
//! acknowledged, each either answered (with its reply) or blocked inside the
//! object. Part of the replicated state (and of every snapshot), so every
//! replica answers a retried call with its first reply, or knows it is still
//! blocked, whichever replica the client retries at.
//!
//! A client numbers its calls 1, 2, 3, … and tells the replica in every request
//! the highest `acked` number up to which it holds every reply. Replies at or
//! below `acked` are forgotten, and blocked calls at or below it were given up
//! by the client (they are handed back as abandoned). The table thus holds at
//! most the client's in-flight window, even for pipelined clients.
//!
//! Sessions end when they expire (decided through the log) or the client
//! closes them. An ended session's id is remembered (a bounded number of
//! them), so a late retry from it is refused instead of running a second time.

use concoord_object::Waiter;
use concoord_transport::wire::CallError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Calls of one client that may be unanswered at once.
pub const IN_FLIGHT_PER_CLIENT_MAX: u64 = 4096;

/// Ended sessions remembered, to refuse their late retries.
pub const ENDED_SESSIONS_REMEMBERED: usize = 65_536;

/// A stored reply: the encoded return value or the error.
pub type StoredReply = Result<Vec<u8>, CallError>;

/// Where a call stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CallState {
    /// Blocked inside the object; the object will wake it.
    Blocked,
    /// Answered.
    Done(StoredReply),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ClientSession {
    acked: u64,
    calls: BTreeMap<u64, CallState>,
}

/// What to do with an incoming call.
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    /// Never seen: run it.
    Fresh,
    /// Already run: here is its reply.
    Duplicate(StoredReply),
    /// Already run and still blocked: keep waiting.
    StillBlocked,
    /// The client already acknowledged this call's reply: drop it.
    Stale,
    /// The client has too many unanswered calls.
    TooManyInFlight,
    /// The session ended: refuse.
    Ended,
}

/// Calls per client session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionTable {
    clients: BTreeMap<u64, ClientSession>,
    ended: BTreeSet<u64>,
    ended_order: VecDeque<u64>,
}

impl SessionTable {
    /// Decides what to do with call `seq` of `client`, forgetting replies the
    /// client acknowledged. Blocked calls the acknowledgement passed are
    /// returned: the client gave up on them, and the object must drop them.
    /// Changes state: call it only while executing the log.
    pub fn admit(&mut self, client: u64, seq: u64, acked: u64) -> (Admission, Vec<Waiter>) {
        if self.ended.contains(&client) {
            return (Admission::Ended, Vec::new());
        }
        let session = self.clients.entry(client).or_default();
        let mut abandoned = Vec::new();
        if acked > session.acked {
            session.acked = acked;
            // `acked` comes from the client: any u64, so no `+ 1` past the top.
            let kept = session.calls.split_off(&acked.saturating_add(1));
            let forgotten = std::mem::replace(&mut session.calls, kept);
            abandoned = forgotten
                .into_iter()
                .filter(|(_, state)| *state == CallState::Blocked)
                .map(|(seq, _)| Waiter {
                    client_id: client,
                    seq,
                })
                .collect();
        }
        let admission = if seq <= session.acked {
            Admission::Stale
        } else {
            match session.calls.get(&seq) {
                Some(CallState::Done(reply)) => Admission::Duplicate(reply.clone()),
                Some(CallState::Blocked) => Admission::StillBlocked,
                None if seq > session.acked.saturating_add(IN_FLIGHT_PER_CLIENT_MAX) => {
                    Admission::TooManyInFlight
                }
                None => Admission::Fresh,
            }
        };
        (admission, abandoned)
    }

    /// Looks a call up without changing anything (the leader's fast path for
    /// retries of calls already executed).
    pub fn lookup(&self, client: u64, seq: u64) -> Option<&CallState> {
        self.clients.get(&client).and_then(|s| s.calls.get(&seq))
    }

    /// Whether the session ended (expired or closed).
    pub fn has_ended(&self, client: u64) -> bool {
        self.ended.contains(&client)
    }

    /// Stores the reply of a call just run or woken. A reply for a call the
    /// client already acknowledged past is dropped.
    pub fn record(&mut self, client: u64, seq: u64, reply: StoredReply) {
        if let Some(session) = self.clients.get_mut(&client)
            && seq > session.acked
        {
            session.calls.insert(seq, CallState::Done(reply));
        }
    }

    /// Marks a call just run as blocked.
    pub fn block(&mut self, client: u64, seq: u64) {
        if let Some(session) = self.clients.get_mut(&client) {
            session.calls.insert(seq, CallState::Blocked);
        }
    }

    /// Whether `waiter` is a blocked call.
    pub fn is_blocked(&self, waiter: Waiter) -> bool {
        self.lookup(waiter.client_id, waiter.seq) == Some(&CallState::Blocked)
    }

    /// Every blocked call, in (client, seq) order.
    pub fn blocked(&self) -> Vec<Waiter> {
        self.clients
            .iter()
            .flat_map(|(client, s)| {
                s.calls
                    .iter()
                    .filter(|(_, st)| **st == CallState::Blocked)
                    .map(move |(seq, _)| Waiter {
                        client_id: *client,
                        seq: *seq,
                    })
            })
            .collect()
    }

    /// Ends a session: its entries are freed and its id remembered.
    pub fn end(&mut self, client: u64) {
        self.clients.remove(&client);
        if self.ended.insert(client) {
            self.ended_order.push_back(client);
            while self.ended_order.len() > ENDED_SESSIONS_REMEMBERED {
                if let Some(old) = self.ended_order.pop_front() {
                    self.ended.remove(&old);
                }
            }
        }
    }

    /// The live sessions' client ids.
    pub fn client_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.clients.keys().copied()
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

    fn admit(t: &mut SessionTable, client: u64, seq: u64, acked: u64) -> Admission {
        t.admit(client, seq, acked).0
    }

    #[test]
    fn a_retried_call_gets_its_first_reply() {
        let mut t = SessionTable::default();
        assert_eq!(admit(&mut t, 7, 1, 0), Admission::Fresh);
        t.record(7, 1, Ok(vec![1]));
        assert_eq!(admit(&mut t, 7, 1, 0), Admission::Duplicate(Ok(vec![1])));
    }

    #[test]
    fn acknowledged_replies_are_forgotten_and_their_calls_dropped() {
        let mut t = SessionTable::default();
        for seq in 1..=3 {
            admit(&mut t, 7, seq, 0);
            t.record(7, seq, Ok(vec![seq as u8]));
        }
        assert_eq!(admit(&mut t, 7, 4, 2), Admission::Fresh);
        assert_eq!(t.lookup(7, 1), None);
        assert_eq!(t.lookup(7, 3), Some(&CallState::Done(Ok(vec![3]))));
        assert_eq!(admit(&mut t, 7, 2, 2), Admission::Stale);
    }

    #[test]
    fn pipelined_calls_may_complete_out_of_order() {
        let mut t = SessionTable::default();
        assert_eq!(admit(&mut t, 1, 2, 0), Admission::Fresh);
        t.record(1, 2, Ok(vec![]));
        assert_eq!(admit(&mut t, 1, 1, 0), Admission::Fresh);
    }

    #[test]
    fn a_client_cannot_run_unboundedly_ahead_of_its_acknowledgements() {
        let mut t = SessionTable::default();
        assert_eq!(
            admit(&mut t, 1, IN_FLIGHT_PER_CLIENT_MAX + 1, 0),
            Admission::TooManyInFlight
        );
    }

    #[test]
    fn sequence_numbers_and_acknowledgements_at_the_top_of_the_range_never_overflow() {
        let mut t = SessionTable::default();
        assert_eq!(admit(&mut t, 1, u64::MAX, 0), Admission::TooManyInFlight);
        assert_eq!(
            admit(&mut t, 1, u64::MAX, u64::MAX - 1),
            Admission::Fresh,
            "the next call after the highest acknowledgement"
        );
        t.record(1, u64::MAX, Ok(vec![]));
        assert_eq!(admit(&mut t, 1, u64::MAX, u64::MAX), Admission::Stale);
        assert_eq!(admit(&mut t, 1, 5, u64::MAX), Admission::Stale);
    }

    #[test]
    fn a_blocked_call_retried_keeps_waiting_and_a_woken_one_gets_its_reply() {
        let mut t = SessionTable::default();
        admit(&mut t, 1, 1, 0);
        t.block(1, 1);
        assert_eq!(admit(&mut t, 1, 1, 0), Admission::StillBlocked);
        t.record(1, 1, Ok(vec![9]));
        assert_eq!(admit(&mut t, 1, 1, 0), Admission::Duplicate(Ok(vec![9])));
    }

    #[test]
    fn blocked_calls_acknowledged_past_are_handed_back_as_abandoned() {
        let mut t = SessionTable::default();
        admit(&mut t, 1, 1, 0);
        t.block(1, 1);
        let (adm, abandoned) = t.admit(1, 2, 1);
        assert_eq!(adm, Admission::Fresh);
        assert_eq!(
            abandoned,
            vec![Waiter {
                client_id: 1,
                seq: 1
            }]
        );
        t.record(1, 1, Ok(vec![]));
        assert_eq!(t.lookup(1, 1), None, "a late wake-up is not stored");
    }

    #[test]
    fn an_ended_session_refuses_calls_and_is_forgotten_after_enough_others() {
        let mut t = SessionTable::default();
        admit(&mut t, 1, 1, 0);
        t.end(1);
        assert!(t.is_empty());
        assert_eq!(admit(&mut t, 1, 2, 0), Admission::Ended);
        for c in 2..(ENDED_SESSIONS_REMEMBERED as u64 + 2) {
            t.end(c);
        }
        assert!(!t.has_ended(1));
    }
}
