//! `DBarrier`: a reusable barrier for a fixed number of parties (Python's
//! `threading.Barrier`). When the last party arrives, every party of the
//! round is released (the original woke only one), and the next round starts.

use concoord_object::{CallContext, Wait, Waiter};
use serde::{Deserialize, Serialize};

/// A replicated barrier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DBarrier {
    parties: u64,
    arrived: Vec<Waiter>,
    rounds: u64,
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
        }
    }

    /// Waits until `parties` callers have called `wait` in this round.
    /// Returns the caller's arrival index in its round (0 for the first,
    /// `parties - 1` for the one that released the others).
    pub fn wait(&mut self, ctx: &mut CallContext) -> Wait<u64> {
        let index = self.arrived.len() as u64;
        if index + 1 < self.parties {
            self.arrived.push(ctx.waiter());
            return Wait::Blocked;
        }
        for (i, w) in std::mem::take(&mut self.arrived).into_iter().enumerate() {
            ctx.wake(w, &(i as u64));
        }
        self.rounds += 1;
        Wait::Ready(index)
    }

    /// Removes a party whose wait ended; `true` if it was waiting.
    pub fn cancel(&mut self, waiter: Waiter) -> bool {
        let before = self.arrived.len();
        self.arrived.retain(|w| *w != waiter);
        self.arrived.len() != before
    }

    /// Removes the parties of `client_id` (its session ended).
    pub fn release_client(&mut self, client_id: u64) {
        self.arrived.retain(|w| w.client_id != client_id);
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

    #[test]
    fn the_last_party_releases_every_party_of_its_round() {
        let mut b = DBarrier::new(3);
        assert_eq!(b.wait(&mut call(1, 1)), Wait::Blocked);
        assert_eq!(b.wait(&mut call(2, 1)), Wait::Blocked);
        let mut ctx = call(3, 1);
        assert_eq!(b.wait(&mut ctx), Wait::Ready(2));
        let woken: Vec<u64> = ctx
            .take_wakeups()
            .iter()
            .map(|(w, _)| w.client_id)
            .collect();
        assert_eq!(woken, vec![1, 2]);
        assert_eq!((b.rounds(), b.n_waiting()), (1, 0));
        assert_eq!(
            b.wait(&mut call(1, 2)),
            Wait::Blocked,
            "the next round starts"
        );
    }

    #[test]
    fn a_party_that_leaves_is_not_counted() {
        let mut b = DBarrier::new(2);
        let _ = b.wait(&mut call(1, 1));
        b.release_client(1);
        assert_eq!(b.wait(&mut call(2, 1)), Wait::Blocked);
    }
}
