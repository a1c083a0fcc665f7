//! The session's unanswered calls: their sequence numbers, where each stands
//! on the wire and what its caller waits for, and which answered calls the
//! replicas may forget.
//!
//! Kept apart from the connection handling so that the bookkeeping every
//! retry depends on — which sequence number comes next, what `acked` and the
//! `done` ranges tell the replicas, which timer is due — is one small thing
//! with its own tests.

use crate::errors::ClientError;
use concoord_transport::wire::DONE_RANGES_PER_CALL;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What a caller gets back: the msgpack reply or why there is none.
pub(crate) type Reply = Result<Vec<u8>, ClientError>;

/// Where a call stands on the current connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Not sent on this connection yet (none is open, or it was just lost):
    /// it goes out with the others when one opens.
    Unsent,
    /// Sent at this time. Unanswered after the attempt timeout (and not
    /// blocked), the replica is taken for dead.
    Sent(Instant),
    /// A replica asked us to come back later (`Busy`, no leader known):
    /// sent again at this time.
    Backoff(Instant),
}

/// What the caller waits for. A call starts in `Reply` and moves to
/// `Blocked` when a replica says it waits inside the object (a lock
/// acquire); it never moves back. The two are apart from [`Delivery`]
/// because a blocked call is still resent after a reconnection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The call fails with `Timeout` if unanswered by `deadline`.
    Reply {
        /// When the call fails.
        deadline: Instant,
        /// When to cancel the wait, for a call that may block with a limit.
        cancel_at: Option<Instant>,
    },
    /// Waiting for the object to wake it: no deadline, since the object
    /// answers it (a condition wait first takes its lock back).
    Blocked {
        /// When to cancel the wait (its limit), if it has one.
        cancel_at: Option<Instant>,
    },
}

impl Wait {
    fn cancel_at(&self) -> Option<Instant> {
        match *self {
            Wait::Reply { cancel_at, .. } | Wait::Blocked { cancel_at } => cancel_at,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match *self {
            Wait::Reply { deadline, .. } => Some(deadline),
            Wait::Blocked { .. } => None,
        }
    }
}

/// One unanswered call.
pub(crate) struct InFlight {
    pub(crate) method: String,
    pub(crate) args: Vec<u8>,
    pub(crate) reply: oneshot::Sender<Reply>,
    pub(crate) delivery: Delivery,
    pub(crate) wait: Wait,
    /// `Busy` answers so far: each doubles the pause before the next try.
    pub(crate) busy: u32,
    /// Copies sent so far, on any connection (one sent may have run).
    pub(crate) sends: u32,
}

impl InFlight {
    /// A new call that fails at `deadline` and, if it blocks, is cancelled
    /// at `cancel_at`.
    pub(crate) fn new(
        method: String,
        args: Vec<u8>,
        reply: oneshot::Sender<Reply>,
        deadline: Instant,
        cancel_at: Option<Instant>,
    ) -> InFlight {
        InFlight {
            method,
            args,
            reply,
            delivery: Delivery::Unsent,
            wait: Wait::Reply {
                deadline,
                cancel_at,
            },
            busy: 0,
            sends: 0,
        }
    }

    pub(crate) fn is_blocked(&self) -> bool {
        matches!(self.wait, Wait::Blocked { .. })
    }

    /// A replica said the call waits inside the object.
    pub(crate) fn block(&mut self) {
        self.wait = Wait::Blocked {
            cancel_at: self.wait.cancel_at(),
        };
    }

    /// The call's wait limit was acted on: it is not cancelled twice.
    fn cancelled(&mut self) {
        self.wait = match self.wait {
            Wait::Reply { deadline, .. } => Wait::Reply {
                deadline,
                cancel_at: None,
            },
            Wait::Blocked { .. } => Wait::Blocked { cancel_at: None },
        };
    }

    /// The call went out now.
    pub(crate) fn sent(&mut self, now: Instant) {
        self.delivery = Delivery::Sent(now);
        self.sends = self.sends.saturating_add(1);
    }

    /// The connection it went out on is gone: it is resent on the next one.
    /// A call backing off keeps its time.
    pub(crate) fn connection_lost(&mut self) {
        if let Delivery::Sent(_) = self.delivery {
            self.delivery = Delivery::Unsent;
        }
    }

    /// When the replica it was sent to is taken for dead, if it stays silent
    /// (a blocked call is answered only when woken: the connection's
    /// keep-alives tell whether the replica lives).
    fn attempt_expires(&self, attempt_timeout: Duration) -> Option<Instant> {
        match self.delivery {
            Delivery::Sent(at) if !self.is_blocked() => Some(at + attempt_timeout),
            _ => None,
        }
    }

    fn backoff_until(&self) -> Option<Instant> {
        match self.delivery {
            Delivery::Backoff(at) => Some(at),
            _ => None,
        }
    }
}

/// Which of a call's timers a question is about.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Timer {
    /// The call's deadline (it fails with `Timeout`).
    Deadline,
    /// The end of a backoff (it is sent again).
    Backoff,
    /// The end of its wait limit (it is cancelled).
    CancelWait,
}

impl Timer {
    fn of(self, call: &InFlight) -> Option<Instant> {
        match self {
            Timer::Deadline => call.wait.deadline(),
            Timer::Backoff => call.backoff_until(),
            Timer::CancelWait => call.wait.cancel_at(),
        }
    }
}

/// The session's calls in flight, by sequence number, with the answered
/// ones the replicas have not been told about yet.
pub(crate) struct Calls {
    next_seq: u64,
    by_seq: BTreeMap<u64, InFlight>,
    /// Calls above `acked()` whose replies arrived: start → end, inclusive.
    /// Sent with every call so the replicas forget those replies although an
    /// older call (a lock wait) is still unanswered.
    done: BTreeMap<u64, u64>,
}

impl Calls {
    pub(crate) fn new() -> Calls {
        Calls {
            next_seq: 1,
            by_seq: BTreeMap::new(),
            done: BTreeMap::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Takes the call under the next sequence number and returns it.
    pub(crate) fn add(&mut self, call: InFlight) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, call);
        seq
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&InFlight> {
        self.by_seq.get(&seq)
    }

    pub(crate) fn get_mut(&mut self, seq: u64) -> Option<&mut InFlight> {
        self.by_seq.get_mut(&seq)
    }

    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.by_seq.contains_key(&seq)
    }

    /// Every call in flight, lowest first.
    pub(crate) fn seqs(&self) -> Vec<u64> {
        self.by_seq.keys().copied().collect()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut InFlight> {
        self.by_seq.values_mut()
    }

    /// Removes call `seq`, answered: the replicas may forget its reply.
    pub(crate) fn answered(&mut self, seq: u64) -> Option<InFlight> {
        let call = self.by_seq.remove(&seq)?;
        self.note_done(seq);
        Some(call)
    }

    /// Removes call `seq` without an answer (it expired). It is never listed
    /// in `done`, though `acked` passes it once nothing older is in flight.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<InFlight> {
        self.by_seq.remove(&seq)
    }

    /// Removes every call (their session ended or the client gives up).
    pub(crate) fn take_all(&mut self) -> Vec<InFlight> {
        std::mem::take(&mut self.by_seq).into_values().collect()
    }

    /// A new session numbers its calls from 1 again and has nothing to
    /// report answered.
    pub(crate) fn restart_numbering(&mut self) {
        self.next_seq = 1;
        self.done.clear();
    }

    /// The calls whose `timer` is due at `now`, lowest first.
    pub(crate) fn due(&self, timer: Timer, now: Instant) -> Vec<u64> {
        self.by_seq
            .iter()
            .filter(|(_, call)| timer.of(call).is_some_and(|t| t <= now))
            .map(|(seq, _)| *seq)
            .collect()
    }

    /// Marks the calls whose wait limit is due as cancelled and returns them.
    pub(crate) fn take_due_cancels(&mut self, now: Instant) -> Vec<u64> {
        let due = self.due(Timer::CancelWait, now);
        for seq in &due {
            if let Some(call) = self.by_seq.get_mut(seq) {
                call.cancelled();
            }
        }
        due
    }

    /// The earliest of every call's timers, and of when the attempt to reach
    /// the replica times out.
    pub(crate) fn next_timer(&self, attempt_timeout: Duration) -> Option<Instant> {
        self.by_seq
            .values()
            .flat_map(|call| {
                [
                    Timer::Deadline.of(call),
                    call.attempt_expires(attempt_timeout),
                    Timer::Backoff.of(call),
                    Timer::CancelWait.of(call),
                ]
            })
            .flatten()
            .min()
    }

    /// Whether a call sent to the replica got no answer within the attempt
    /// timeout.
    pub(crate) fn attempt_expired(&self, attempt_timeout: Duration, now: Instant) -> bool {
        self.by_seq.values().any(|call| {
            call.attempt_expires(attempt_timeout)
                .is_some_and(|t| t <= now)
        })
    }

    pub(crate) fn any_blocked(&self) -> bool {
        self.by_seq.values().any(InFlight::is_blocked)
    }

    /// The highest sequence number up to which every reply was received.
    pub(crate) fn acked(&self) -> u64 {
        self.by_seq
            .keys()
            .next()
            .map_or(self.next_seq - 1, |s| s - 1)
    }

    fn note_done(&mut self, seq: u64) {
        let (mut lo, mut hi) = (seq, seq);
        if let Some((&s, &e)) = self.done.range(..=seq).next_back()
            && e.saturating_add(1) >= seq
        {
            self.done.remove(&s);
            lo = s;
            hi = hi.max(e);
        }
        if let Some(&e) = self.done.get(&seq.saturating_add(1)) {
            self.done.remove(&seq.saturating_add(1));
            hi = hi.max(e);
        }
        self.done.insert(lo, hi);
        let acked = self.acked();
        self.done.retain(|_, end| *end > acked);
    }

    /// The answered calls above `acked()` to report, lowest first.
    pub(crate) fn done_ranges(&self) -> Vec<(u64, u64)> {
        let acked = self.acked();
        self.done
            .iter()
            .map(|(s, e)| ((*s).max(acked + 1), *e))
            .take(DONE_RANGES_PER_CALL)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(now: Instant) -> InFlight {
        let (reply, _) = oneshot::channel();
        InFlight::new("m".into(), Vec::new(), reply, now + SECOND * 10, None)
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn replies_out_of_order_are_reported_as_ranges_above_acked() {
        let now = Instant::now();
        let mut calls = Calls::new();
        let seqs: Vec<u64> = (0..6).map(|_| calls.add(call(now))).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
        for seq in [2, 3, 5] {
            calls.answered(seq);
        }
        assert_eq!(calls.acked(), 0, "call 1 (a lock wait) is still unanswered");
        assert_eq!(calls.done_ranges(), vec![(2, 3), (5, 5)]);
        calls.answered(1);
        assert_eq!(calls.acked(), 3);
        assert_eq!(
            calls.done_ranges(),
            vec![(5, 5)],
            "ranges at or below acked go"
        );
        calls.answered(4);
        calls.answered(6);
        assert_eq!(calls.acked(), 6);
        assert!(calls.done_ranges().is_empty());
    }

    #[test]
    fn an_expired_call_is_not_reported_answered() {
        let now = Instant::now();
        let mut calls = Calls::new();
        let (a, b) = (calls.add(call(now)), calls.add(call(now)));
        calls.remove(a);
        calls.answered(b);
        assert_eq!(calls.acked(), 2, "nothing older is in flight");
        assert!(calls.done_ranges().is_empty());
    }

    #[test]
    fn a_blocked_call_has_no_deadline_nor_attempt_timer_but_keeps_its_wait_limit() {
        let now = Instant::now();
        let mut calls = Calls::new();
        let (reply, _) = oneshot::channel();
        let seq = calls.add(InFlight::new(
            "acquire".into(),
            Vec::new(),
            reply,
            now + SECOND * 10,
            Some(now + SECOND * 3),
        ));
        let flight = calls.get_mut(seq).expect("in flight");
        flight.sent(now);
        assert_eq!(calls.next_timer(SECOND), Some(now + SECOND), "attempt");
        calls.get_mut(seq).expect("in flight").block();
        assert_eq!(
            calls.next_timer(SECOND),
            Some(now + SECOND * 3),
            "wait limit"
        );
        assert!(calls.due(Timer::Deadline, now + SECOND * 60).is_empty());
        assert!(!calls.attempt_expired(SECOND, now + SECOND * 60));
        assert_eq!(calls.take_due_cancels(now + SECOND * 3), vec![seq]);
        assert!(
            calls.take_due_cancels(now + SECOND * 4).is_empty(),
            "cancelled once"
        );
        assert_eq!(calls.next_timer(SECOND), None);
    }

    #[test]
    fn a_lost_connection_unsends_sent_calls_but_keeps_backoffs() {
        let now = Instant::now();
        let mut calls = Calls::new();
        let (a, b) = (calls.add(call(now)), calls.add(call(now)));
        calls.get_mut(a).expect("a").sent(now);
        calls.get_mut(b).expect("b").delivery = Delivery::Backoff(now + SECOND);
        calls.iter_mut().for_each(InFlight::connection_lost);
        assert_eq!(calls.get(a).expect("a").delivery, Delivery::Unsent);
        assert_eq!(
            calls.get(b).expect("b").delivery,
            Delivery::Backoff(now + SECOND)
        );
        assert_eq!(calls.due(Timer::Backoff, now + SECOND), vec![b]);
        assert_eq!(calls.get(a).expect("a").sends, 1);
    }

    #[test]
    fn a_new_session_numbers_from_one() {
        let now = Instant::now();
        let mut calls = Calls::new();
        let seq = calls.add(call(now));
        calls.add(call(now));
        calls.answered(seq + 1);
        let _ = calls.take_all();
        calls.restart_numbering();
        assert_eq!(calls.add(call(now)), 1);
        assert!(calls.done_ranges().is_empty());
    }
}
