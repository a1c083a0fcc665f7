//! The exactly-once table: per client session, the calls it has not yet
//! acknowledged, each either answered (with its reply) or blocked inside the
//! object. Part of the replicated state (and of every snapshot), so every
//! replica answers a retried call with its first reply, or knows it is still
//! blocked, whichever replica the client retries at.
//!
//! A client numbers its calls 1, 2, 3, … and tells the replica in every request
//! the highest `acked` number up to which it holds every reply, and the ranges
//! of calls above it whose replies it holds too (`done`). Replies at or below
//! `acked` or in `done` are forgotten (the `done` ranges are kept, merged, to
//! refuse late duplicates), and blocked calls at or below `acked` were given
//! up by the client (they are handed back as abandoned). The table thus holds
//! the client's unanswered calls and the replies on their way back, and a call
//! blocked for long does not pin every later reply: at most
//! [`IN_FLIGHT_PER_CLIENT_MAX`] are held.
//!
//! Sessions end when they expire (decided through the log) or the client
//! closes them. An ended session's id is remembered, so a late retry from it
//! is refused instead of running a second time; only the last
//! [`ENDED_SESSIONS_REMEMBERED`] are, and when one is forgotten the table
//! raises a floor to its issue time: a session it does not know, issued at or
//! before the floor, is refused as ended. Replicas issue new sessions after
//! the floor (`sessions_not_before_ms`), so no forgotten session can come back
//! as a new one.

use concoord_object::Waiter;
use concoord_transport::wire::CallError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Calls of one client the table holds at once (unanswered, or answered with
/// the reply not yet acknowledged).
pub const IN_FLIGHT_PER_CLIENT_MAX: u64 = 4096;

/// `done` ranges a session keeps above its acknowledgement point at most (a
/// client's done calls between blocked ones); past it the call is refused as
/// too many in flight.
const DONE_RANGES_MAX: usize = 1024;

/// `done` ranges of one call at most (a replica refuses a call with more
/// while decoding it).
pub use concoord_transport::wire::DONE_RANGES_PER_CALL;

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
    /// When the session was issued (ms since the Unix epoch).
    issued_ms: u64,
    acked: u64,
    calls: BTreeMap<u64, CallState>,
    /// Calls above `acked` whose replies the client holds: start → end,
    /// inclusive, disjoint.
    done: BTreeMap<u64, u64>,
}

impl ClientSession {
    fn is_done(&self, seq: u64) -> bool {
        self.done
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, end)| seq <= *end)
    }

    /// Merges the client's `done` ranges and forgets their replies (never a
    /// blocked call's: a client cannot hold the reply of a call still blocked).
    /// At most [`DONE_RANGES_PER_CALL`] ranges of a call count, and a range
    /// that would be new once [`DONE_RANGES_MAX`] are held is left out: its
    /// replies are then kept, which is always safe (a retry is answered from
    /// them), and the table stays bounded whatever a client sends.
    fn absorb_done(&mut self, ranges: &[(u64, u64)]) {
        for &(start, end) in ranges.iter().take(DONE_RANGES_PER_CALL) {
            let start = start.max(self.acked.saturating_add(1));
            if start > end {
                continue;
            }
            let mut lo = start;
            let mut hi = end;
            // The held ranges touching [start, end]: they are disjoint and
            // sorted, so walk back from the last one starting at or before
            // end + 1 while they reach start - 1.
            let touching: Vec<u64> = self
                .done
                .range(..=hi.saturating_add(1))
                .rev()
                .take_while(|(_, e)| **e >= lo.saturating_sub(1))
                .map(|(s, _)| *s)
                .collect();
            if touching.is_empty() && self.done.len() >= DONE_RANGES_MAX {
                continue;
            }
            for s in touching {
                if let Some(e) = self.done.remove(&s) {
                    lo = lo.min(s);
                    hi = hi.max(e);
                }
            }
            self.done.insert(lo, hi);
            let answered: Vec<u64> = self
                .calls
                .range(start..=end)
                .filter(|(_, st)| matches!(st, CallState::Done(_)))
                .map(|(s, _)| *s)
                .collect();
            for s in answered {
                self.calls.remove(&s);
            }
        }
        // Ranges at or below the acknowledgement point are covered by it.
        let acked = self.acked;
        self.done.retain(|_, end| *end > acked);
        if let Some((&s, &e)) = self.done.iter().next()
            && s <= acked
        {
            self.done.remove(&s);
            self.done.insert(acked.saturating_add(1), e);
        }
    }
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

/// Who calls, and what the caller acknowledges, as logged with each call.
#[derive(Clone, Copy, Debug)]
pub struct CallIdentity<'a> {
    /// The session.
    pub client: u64,
    /// When the session was issued (ms since the Unix epoch).
    pub issued_ms: u64,
    /// The call's sequence number.
    pub seq: u64,
    /// The client holds every reply up to here.
    pub acked: u64,
    /// And these ranges of replies above it.
    pub done: &'a [(u64, u64)],
}

/// Calls per client session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionTable {
    clients: BTreeMap<u64, ClientSession>,
    ended: BTreeSet<u64>,
    /// The ended sessions by issue time: the earliest issued is forgotten
    /// first, so the floor rises as little as it can (a session issued
    /// earlier that has not called yet is refused only if it is older).
    ended_by_issue: BTreeSet<(u64, u64)>,
    /// A session not in the table and issued at or before this (ms since the
    /// Unix epoch) may have ended and been forgotten: it is refused.
    forgotten_issued_ms: u64,
}

impl SessionTable {
    /// Decides what to do with call `seq` of `client`, forgetting replies the
    /// client acknowledged. Blocked calls the acknowledgement passed are
    /// returned: the client gave up on them, and the object must drop them.
    /// Changes state: call it only while executing the log.
    pub fn admit(&mut self, call: &CallIdentity) -> (Admission, Vec<Waiter>) {
        let CallIdentity {
            client,
            issued_ms,
            seq,
            acked,
            done,
        } = *call;
        if self.ended.contains(&client) {
            return (Admission::Ended, Vec::new());
        }
        if !self.clients.contains_key(&client) && issued_ms <= self.forgotten_issued_ms {
            // It may be a session that ended and was forgotten since.
            return (Admission::Ended, Vec::new());
        }
        let session = self.clients.entry(client).or_insert_with(|| ClientSession {
            issued_ms,
            ..ClientSession::default()
        });
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
        session.absorb_done(done);
        let admission = if seq <= session.acked || session.is_done(seq) {
            Admission::Stale
        } else {
            match session.calls.get(&seq) {
                Some(CallState::Done(reply)) => Admission::Duplicate(reply.clone()),
                Some(CallState::Blocked) => Admission::StillBlocked,
                None if session.calls.len() as u64 >= IN_FLIGHT_PER_CLIENT_MAX
                    || session.done.len() >= DONE_RANGES_MAX =>
                {
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

    /// Ends a session: its entries are freed and its id remembered. Past
    /// [`ENDED_SESSIONS_REMEMBERED`] the one issued earliest is forgotten and
    /// the floor rises to its issue time.
    pub fn end(&mut self, client: u64) {
        let issued_ms = self.clients.remove(&client).map_or(0, |s| s.issued_ms);
        if self.ended.insert(client) {
            self.ended_by_issue.insert((issued_ms, client));
            while self.ended_by_issue.len() > ENDED_SESSIONS_REMEMBERED {
                if let Some((issued, old)) = self.ended_by_issue.pop_first() {
                    self.ended.remove(&old);
                    self.forgotten_issued_ms = self.forgotten_issued_ms.max(issued);
                }
            }
        }
    }

    /// New sessions must be issued after this (ms since the Unix epoch), or
    /// the table would take them for forgotten ended ones.
    pub fn sessions_not_before_ms(&self) -> u64 {
        self.forgotten_issued_ms.saturating_add(1)
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

    const ISSUED: u64 = 1_000;

    fn call(client: u64, seq: u64, acked: u64, done: &[(u64, u64)]) -> CallIdentity<'_> {
        CallIdentity {
            client,
            issued_ms: ISSUED,
            seq,
            acked,
            done,
        }
    }

    fn admit(t: &mut SessionTable, client: u64, seq: u64, acked: u64) -> Admission {
        t.admit(&call(client, seq, acked, &[])).0
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
    fn a_client_cannot_hold_unboundedly_many_unacknowledged_replies() {
        let mut t = SessionTable::default();
        for seq in 1..=IN_FLIGHT_PER_CLIENT_MAX {
            assert_eq!(admit(&mut t, 1, seq, 0), Admission::Fresh);
            t.record(1, seq, Ok(vec![]));
        }
        assert_eq!(
            admit(&mut t, 1, IN_FLIGHT_PER_CLIENT_MAX + 1, 0),
            Admission::TooManyInFlight
        );
    }

    #[test]
    fn a_call_blocked_for_long_does_not_stop_the_clients_later_calls() {
        let mut t = SessionTable::default();
        admit(&mut t, 1, 1, 0);
        t.block(1, 1);
        // Call 1 stays blocked (acked stays 0) while 3 * the limit more calls
        // run, each reported done with the next.
        let last = 3 * IN_FLIGHT_PER_CLIENT_MAX + 1;
        for seq in 2..=last {
            let done = [(2, seq - 1)];
            let done: &[(u64, u64)] = if seq > 2 { &done } else { &[] };
            assert_eq!(
                t.admit(&call(1, seq, 0, done)).0,
                Admission::Fresh,
                "call {seq}"
            );
            t.record(1, seq, Ok(vec![]));
        }
        assert!(t.is_blocked(Waiter {
            client_id: 1,
            seq: 1
        }));
        assert!(
            t.clients[&1].calls.len() <= 2,
            "only the blocked call and the last reply"
        );
        // A late duplicate of a call reported done is not run again.
        assert_eq!(t.admit(&call(1, 7, 0, &[])).0, Admission::Stale);
    }

    #[test]
    fn an_ended_session_forgotten_since_cannot_come_back_as_a_new_one() {
        let mut t = SessionTable::default();
        admit(&mut t, 1, 1, 0);
        t.end(1);
        for c in 2..(ENDED_SESSIONS_REMEMBERED as u64 + 2) {
            admit(&mut t, c, 1, 0);
            t.end(c);
        }
        assert!(!t.has_ended(1), "forgotten");
        // A late retry of its call: refused, not run as a new session.
        assert_eq!(admit(&mut t, 1, 1, 0), Admission::Ended);
        // A session issued after the floor is new.
        let fresh = CallIdentity {
            issued_ms: t.sessions_not_before_ms(),
            ..call(u64::MAX - 1, 1, 0, &[])
        };
        assert_eq!(t.admit(&fresh).0, Admission::Fresh);
    }

    #[test]
    fn sequence_numbers_and_acknowledgements_at_the_top_of_the_range_never_overflow() {
        let mut t = SessionTable::default();
        assert_eq!(
            t.admit(&call(1, 3, 0, &[(u64::MAX - 1, u64::MAX)])).0,
            Admission::Fresh
        );
        assert_eq!(
            admit(&mut t, 1, u64::MAX, u64::MAX - 1),
            Admission::Stale,
            "reported done"
        );
        assert_eq!(
            admit(&mut t, 2, u64::MAX, u64::MAX - 1),
            Admission::Fresh,
            "the next call after the highest acknowledgement"
        );
        t.record(2, u64::MAX, Ok(vec![]));
        assert_eq!(admit(&mut t, 2, u64::MAX, u64::MAX), Admission::Stale);
        assert_eq!(admit(&mut t, 2, 5, u64::MAX), Admission::Stale);
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
        let (adm, abandoned) = t.admit(&call(1, 2, 1, &[]));
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
        // As many others, issued no earlier, end after it: the one issued
        // earliest (ties: the lowest id) is forgotten.
        for c in 2..(ENDED_SESSIONS_REMEMBERED as u64 + 2) {
            admit(&mut t, c, 1, 0);
            t.end(c);
        }
        assert!(!t.has_ended(1));
        assert!(t.has_ended(2));
    }
}
