//! `DSemaphore`: counted permits, handed to waiters in FIFO order.
//!
//! What happens to a permit when the session that acquired it ends depends on
//! what the semaphore counts, so each constructor picks one of two kinds:
//!
//! * **taken** permits ([`DSemaphore::new`], the `Semaphore` object) are
//!   Python's `threading.Semaphore`: `acquire` takes one away, `release` adds
//!   one, and nobody owns them. A permit stays taken when its session ends,
//!   because it may stand for something consumed: with a producer that
//!   releases and a consumer that acquires, an item the consumer took must not
//!   come back when the consumer's process exits.
//! * **held** permits ([`DSemaphore::bounded`], the `BoundedSemaphore`
//!   object) are a pool of `bound` permits, each held by the session that
//!   acquired it until released; like a lock, a session that ends gives its
//!   permits back. As in Python any session may release while the value is
//!   below the bound: a session holding none gives back the permit that has
//!   been held longest (the pool always adds up to `bound`).

pub use concoord_object::ready_made::SemaphoreError;
use concoord_object::{CallContext, Wait, Waiter};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// A replicated counting semaphore: Python's `threading.Semaphore`
/// ([`DSemaphore::new`]) or `threading.BoundedSemaphore`
/// ([`DSemaphore::bounded`]). See the module docs for what a session that
/// ends leaves behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DSemaphore {
    available: u64,
    /// `Some(initial)` for a bounded semaphore, whose permits are held.
    bound: Option<u64>,
    queue: VecDeque<Waiter>,
    /// The sessions holding a permit of a bounded semaphore, one entry per
    /// permit, the longest held first (empty for taken permits).
    holders: VecDeque<u64>,
}

impl Default for DSemaphore {
    fn default() -> Self {
        DSemaphore::new(1)
    }
}

impl DSemaphore {
    /// A semaphore with `value` taken permits: releases may raise the value
    /// without limit, and a permit stays taken when its session ends.
    pub fn new(value: u64) -> Self {
        DSemaphore {
            available: value,
            bound: None,
            queue: VecDeque::new(),
            holders: VecDeque::new(),
        }
    }

    /// A pool of `value` held permits that refuses to be released beyond
    /// `value` (Python's `BoundedSemaphore`); a session that ends gives its
    /// permits back.
    pub fn bounded(value: u64) -> Self {
        DSemaphore {
            bound: Some(value),
            ..DSemaphore::new(value)
        }
    }

    fn take(&mut self, client_id: u64) {
        self.available -= 1;
        if self.bound.is_some() {
            self.holders.push_back(client_id);
        }
        self.debug_check();
    }

    /// Held permits and free ones always add up to the bound.
    fn debug_check(&self) {
        if let Some(bound) = self.bound {
            debug_assert_eq!(self.available + self.holders.len() as u64, bound);
        }
    }

    /// Takes a permit, or queues the caller (FIFO) until one is free.
    pub fn acquire(&mut self, ctx: &mut CallContext) -> Wait<bool> {
        match self.try_acquire(ctx) {
            true => Wait::Ready(true),
            false => {
                self.queue.push_back(ctx.waiter());
                Wait::Blocked
            }
        }
    }

    /// Takes a permit if one is free and nobody is queued before the caller.
    pub fn try_acquire(&mut self, ctx: &mut CallContext) -> bool {
        let free = self.available > 0 && self.queue.is_empty();
        if free {
            self.take(ctx.client_id);
        }
        free
    }

    /// Gives a permit back and hands it to the first waiter. Any session may
    /// release, as in Python. A bounded semaphore refuses to go above its
    /// bound; otherwise it takes back the caller's latest permit, or, from a
    /// session that holds none, the permit held longest.
    pub fn release(&mut self, ctx: &mut CallContext) -> Result<(), SemaphoreError> {
        if let Some(bound) = self.bound {
            if self.available >= bound {
                return Err(SemaphoreError::OverReleased { bound });
            }
            let returned = self
                .holders
                .iter()
                .rposition(|c| *c == ctx.client_id)
                .unwrap_or(0);
            self.holders.remove(returned);
        }
        self.available += 1;
        self.debug_check();
        self.hand_out(ctx);
        Ok(())
    }

    fn hand_out(&mut self, ctx: &mut CallContext) {
        while self.available > 0 {
            let Some(next) = self.queue.pop_front() else {
                break;
            };
            self.take(next.client_id);
            ctx.wake(next, &true);
        }
    }

    /// Removes a waiter whose wait ended; `true` if it was queued.
    pub fn cancel(&mut self, waiter: Waiter) -> bool {
        let before = self.queue.len();
        self.queue.retain(|w| *w != waiter);
        self.queue.len() != before
    }

    /// The session `client_id` ended: its waiters are dropped, and the
    /// permits it holds of a bounded semaphore go back to the pool (taken
    /// permits stay taken).
    pub fn release_client(&mut self, ctx: &mut CallContext, client_id: u64) {
        self.queue.retain(|w| w.client_id != client_id);
        let before = self.holders.len();
        self.holders.retain(|c| *c != client_id);
        self.available += (before - self.holders.len()) as u64;
        self.debug_check();
        self.hand_out(ctx);
    }

    /// Permits free now.
    pub fn value(&self) -> u64 {
        self.available
    }

    /// The bound of a bounded semaphore.
    pub fn bound(&self) -> Option<u64> {
        self.bound
    }

    /// Permits held, per client session (always empty for taken permits).
    pub fn held(&self) -> BTreeMap<u64, u64> {
        let mut held = BTreeMap::new();
        for c in &self.holders {
            *held.entry(*c).or_default() += 1;
        }
        held
    }

    /// Callers queued.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::call;

    #[test]
    fn permits_run_out_then_go_to_waiters_in_order() {
        let mut s = DSemaphore::new(2);
        assert_eq!(s.acquire(&mut call(1, 1)), Wait::Ready(true));
        assert_eq!(s.acquire(&mut call(2, 1)), Wait::Ready(true));
        assert_eq!(s.acquire(&mut call(3, 1)), Wait::Blocked);
        assert_eq!(s.acquire(&mut call(4, 1)), Wait::Blocked);
        let mut ctx = call(1, 2);
        s.release(&mut ctx).expect("release");
        let woken: Vec<u64> = ctx
            .take_wakeups()
            .iter()
            .map(|(w, _)| w.client_id)
            .collect();
        assert_eq!(woken, vec![3]);
    }

    #[test]
    fn a_bounded_semaphore_refuses_over_release_but_a_plain_one_grows() {
        let mut b = DSemaphore::bounded(1);
        assert_eq!(
            b.release(&mut call(1, 1)),
            Err(SemaphoreError::OverReleased { bound: 1 })
        );
        let _ = b.acquire(&mut call(1, 2));
        assert_eq!(b.release(&mut call(1, 3)), Ok(()));
        assert!(b.release(&mut call(1, 4)).is_err());
        let mut s = DSemaphore::new(1);
        assert_eq!(s.release(&mut call(1, 1)), Ok(()));
        assert_eq!(s.value(), 2);
    }

    #[test]
    fn a_consumed_permit_stays_consumed_when_its_session_ends() {
        // Producer/consumer: the producer (1) releases an item, the
        // consumer (2) takes it, then the consumer's session ends.
        let mut s = DSemaphore::new(0);
        s.release(&mut call(1, 1)).expect("produce");
        assert_eq!(s.acquire(&mut call(2, 1)), Wait::Ready(true));
        s.release_client(&mut call(0, 0), 2);
        assert_eq!(s.value(), 0, "the consumed item did not come back");
        assert!(!s.try_acquire(&mut call(3, 1)), "nobody gets it twice");
    }

    #[test]
    fn an_ended_session_gives_its_held_permits_to_waiters() {
        let mut s = DSemaphore::bounded(1);
        let _ = s.acquire(&mut call(1, 1));
        let _ = s.acquire(&mut call(2, 1));
        let mut ctx = call(0, 0);
        s.release_client(&mut ctx, 1);
        assert_eq!(ctx.take_wakeups().len(), 1);
        assert_eq!(s.held().get(&2), Some(&1));
        assert_eq!(s.value(), 0);
    }

    #[test]
    fn any_session_may_release_a_bounded_semaphore_below_its_bound() {
        let mut b = DSemaphore::bounded(2);
        assert_eq!(b.acquire(&mut call(1, 1)), Wait::Ready(true));
        assert_eq!(b.acquire(&mut call(3, 1)), Wait::Ready(true));
        // Session 2 holds nothing: it gives back the permit held longest (1's).
        assert_eq!(b.release(&mut call(2, 1)), Ok(()));
        assert_eq!(b.value(), 1);
        assert_eq!(b.held(), BTreeMap::from([(3, 1)]));
        // 1's permit was given back already: its end returns nothing more.
        b.release_client(&mut call(0, 0), 1);
        assert_eq!(b.value(), 1);
        b.release_client(&mut call(0, 0), 3);
        assert_eq!(b.value(), 2);
        assert_eq!(
            b.release(&mut call(2, 2)),
            Err(SemaphoreError::OverReleased { bound: 2 }),
            "never beyond the bound"
        );
    }
}
