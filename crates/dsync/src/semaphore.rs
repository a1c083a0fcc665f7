//! `DSemaphore` and `DBoundedSemaphore`: counted permits, handed to waiters
//! in FIFO order. Permits are counted per client session, so a session that
//! ends gives its permits back.

use concoord_object::{CallContext, Wait, Waiter};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Why a release was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SemaphoreError {
    /// A bounded semaphore was released more often than acquired.
    OverReleased {
        /// Its initial value.
        bound: u64,
    },
}

impl std::fmt::Display for SemaphoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SemaphoreError::OverReleased { bound } => write!(
                f,
                "released too many times: the semaphore would exceed its bound of {bound}"
            ),
        }
    }
}

impl std::error::Error for SemaphoreError {}

/// A replicated counting semaphore (Python's `threading.Semaphore`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DSemaphore {
    available: u64,
    /// `Some(initial)` for a bounded semaphore.
    bound: Option<u64>,
    queue: VecDeque<Waiter>,
    held: BTreeMap<u64, u64>,
}

impl Default for DSemaphore {
    fn default() -> Self {
        DSemaphore::new(1)
    }
}

impl DSemaphore {
    /// A semaphore with `value` permits.
    pub fn new(value: u64) -> Self {
        DSemaphore {
            available: value,
            bound: None,
            queue: VecDeque::new(),
            held: BTreeMap::new(),
        }
    }

    /// A semaphore with `value` permits that refuses to be released beyond
    /// `value` (Python's `BoundedSemaphore`).
    pub fn bounded(value: u64) -> Self {
        DSemaphore {
            bound: Some(value),
            ..DSemaphore::new(value)
        }
    }

    fn take(&mut self, client_id: u64) {
        self.available -= 1;
        *self.held.entry(client_id).or_default() += 1;
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

    /// Gives a permit back (any client may, as in Python; a bounded
    /// semaphore refuses to go above its bound) and hands it to the first
    /// waiter.
    pub fn release(&mut self, ctx: &mut CallContext) -> Result<(), SemaphoreError> {
        if let Some(bound) = self.bound
            && self.available + self.held_total() >= bound
            && self.held.get(&ctx.client_id).is_none_or(|n| *n == 0)
        {
            return Err(SemaphoreError::OverReleased { bound });
        }
        if let Some(n) = self.held.get_mut(&ctx.client_id) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(&ctx.client_id);
            }
        }
        self.available += 1;
        self.hand_out(ctx);
        Ok(())
    }

    fn held_total(&self) -> u64 {
        self.held.values().sum()
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

    /// Gives back the permits of `client_id` and drops its waiters.
    pub fn release_client(&mut self, ctx: &mut CallContext, client_id: u64) {
        self.queue.retain(|w| w.client_id != client_id);
        if let Some(n) = self.held.remove(&client_id) {
            self.available += n;
            if let Some(bound) = self.bound {
                self.available = self.available.min(bound - self.held_total().min(bound));
            }
        }
        self.hand_out(ctx);
    }

    /// Permits free now.
    pub fn value(&self) -> u64 {
        self.available
    }

    /// Permits held, per client session.
    pub fn held(&self) -> &BTreeMap<u64, u64> {
        &self.held
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
    fn an_ended_session_gives_its_permits_to_waiters() {
        let mut s = DSemaphore::bounded(1);
        let _ = s.acquire(&mut call(1, 1));
        let _ = s.acquire(&mut call(2, 1));
        let mut ctx = call(0, 0);
        s.release_client(&mut ctx, 1);
        assert_eq!(ctx.take_wakeups().len(), 1);
        assert_eq!(s.held().get(&2), Some(&1));
        assert_eq!(s.value(), 0);
    }
}
