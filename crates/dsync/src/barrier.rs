//! `DBarrier`: a reusable barrier for a fixed number of parties (Python's
//! `threading.Barrier`). When the last party arrives, every party of the
//! round is released (the original woke only one), and the next round starts.
//!
//! A party whose client session ends while it waits can never arrive, so the
//! round could never complete: as in Python, the barrier is then *broken*.
//! The other waiting parties are woken with [`BarrierError::Broken`], and
//! every later `wait` fails the same way until [`DBarrier::reset`]. A party
//! whose own wait timed out leaves the round without breaking it (it chose
//! to leave and knows it; another party may take its place).

pub use concoord_object::ready_made::{BarrierError, BarrierResult};
use concoord_object::{CallContext, Wait, Waiter};
use serde::{Deserialize, Serialize};

/// A replicated barrier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DBarrier {
    parties: u64,
    arrived: Vec<Waiter>,
    rounds: u64,
    #[serde(default)]
    broken: bool,
}

impl Default for DBarrier {
    fn default() -> Self {
        DBarrier::new(2)
    }
}

impl DBarrier {
    /// A barrier for `parties` parties (at least 1).
    pub fn new(parties: u64) -> Self {
        DBarrier {
            parties: parties.max(1),
            arrived: Vec::new(),
            rounds: 0,
            broken: false,
        }
    }

    /// Waits until `parties` callers have called `wait` in this round.
    /// Returns the caller's arrival index in its round (0 for the first,
    /// `parties - 1` for the one that released the others), or
    /// [`BarrierError::Broken`].
    pub fn wait(&mut self, ctx: &mut CallContext) -> Wait<BarrierResult> {
        if self.broken {
            return Wait::Ready(Err(BarrierError::Broken));
        }
        let index = self.arrived.len() as u64;
        if index + 1 < self.parties {
            self.arrived.push(ctx.waiter());
            return Wait::Blocked;
        }
        for (i, w) in std::mem::take(&mut self.arrived).into_iter().enumerate() {
            ctx.wake::<BarrierResult>(w, &Ok(i as u64));
        }
        self.rounds += 1;
        Wait::Ready(Ok(index))
    }

    /// Removes a party whose wait ended; `true` if it was waiting.
    pub fn cancel(&mut self, waiter: Waiter) -> bool {
        let before = self.arrived.len();
        self.arrived.retain(|w| *w != waiter);
        self.arrived.len() != before
    }

    /// The session `client_id` ended: if it had a party waiting, the barrier
    /// breaks and the other waiting parties are woken with
    /// [`BarrierError::Broken`].
    pub fn release_client(&mut self, ctx: &mut CallContext, client_id: u64) {
        let before = self.arrived.len();
        self.arrived.retain(|w| w.client_id != client_id);
        if self.arrived.len() != before {
            self.abort(ctx);
        }
    }

    /// Breaks the barrier (Python's `abort()`): the waiting parties are
    /// woken with [`BarrierError::Broken`], and so is every later `wait`
    /// until [`DBarrier::reset`].
    pub fn abort(&mut self, ctx: &mut CallContext) {
        self.broken = true;
        self.wake_broken(ctx);
    }

    /// Starts over with an empty, unbroken round (Python's `reset()`): the
    /// parties waiting now are woken with [`BarrierError::Broken`].
    pub fn reset(&mut self, ctx: &mut CallContext) {
        self.wake_broken(ctx);
        self.broken = false;
    }

    fn wake_broken(&mut self, ctx: &mut CallContext) {
        for w in std::mem::take(&mut self.arrived) {
            ctx.wake::<BarrierResult>(w, &Err(BarrierError::Broken));
        }
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Parties per round.
    pub fn parties(&self) -> u64 {
        self.parties
    }

    /// Parties waiting in the current round.
    pub fn n_waiting(&self) -> u64 {
        self.arrived.len() as u64
    }

    /// Rounds completed.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::call;

    fn woken(ctx: &mut CallContext) -> Vec<(u64, BarrierResult)> {
        ctx.take_wakeups()
            .into_iter()
            .map(|(w, r)| {
                let bytes = r.expect("a reply, not an object error");
                let r: BarrierResult = rmp_serde::from_slice(&bytes).expect("a barrier result");
                (w.client_id, r)
            })
            .collect()
    }

    #[test]
    fn the_last_party_releases_every_party_of_its_round() {
        let mut b = DBarrier::new(3);
        assert_eq!(b.wait(&mut call(1, 1)), Wait::Blocked);
        assert_eq!(b.wait(&mut call(2, 1)), Wait::Blocked);
        let mut ctx = call(3, 1);
        assert_eq!(b.wait(&mut ctx), Wait::Ready(Ok(2)));
        assert_eq!(woken(&mut ctx), vec![(1, Ok(0)), (2, Ok(1))]);
        assert_eq!((b.rounds(), b.n_waiting()), (1, 0));
        assert_eq!(
            b.wait(&mut call(1, 2)),
            Wait::Blocked,
            "the next round starts"
        );
    }

    #[test]
    fn a_party_whose_wait_timed_out_leaves_without_breaking_the_round() {
        let mut b = DBarrier::new(2);
        let _ = b.wait(&mut call(1, 1));
        assert!(b.cancel(Waiter {
            client_id: 1,
            seq: 1
        }));
        assert!(!b.broken());
        assert_eq!(b.wait(&mut call(2, 1)), Wait::Blocked);
    }

    #[test]
    fn a_party_whose_session_ends_breaks_the_barrier_and_wakes_the_others() {
        let mut b = DBarrier::new(3);
        let _ = b.wait(&mut call(1, 1));
        let _ = b.wait(&mut call(2, 1));
        let mut ctx = call(0, 0);
        b.release_client(&mut ctx, 2);
        assert!(b.broken());
        assert_eq!(woken(&mut ctx), vec![(1, Err(BarrierError::Broken))]);
        assert_eq!(
            b.wait(&mut call(3, 1)),
            Wait::Ready(Err(BarrierError::Broken)),
            "a broken barrier stays broken"
        );
        b.reset(&mut ctx);
        assert_eq!(b.wait(&mut call(3, 2)), Wait::Blocked, "reset mends it");
    }

    #[test]
    fn a_session_without_a_waiting_party_does_not_break_the_barrier() {
        let mut b = DBarrier::new(2);
        let _ = b.wait(&mut call(1, 1));
        let mut ctx = call(0, 0);
        b.release_client(&mut ctx, 2);
        assert!(!b.broken() && ctx.take_wakeups().is_empty());
    }
}
