//! `DCondition`: a condition variable with its own reentrant lock (Python's
//! `threading.Condition()`). `wait` releases the lock entirely and, once
//! notified (or its wait timed out), takes it back at the same depth before
//! it returns, under a new grant whose fencing token it returns (the token
//! of the `acquire` before it is stale by then); `notify` and `notify_all`
//! wake waiters in FIFO order.
//!
//! The lock is owned by a client session, as every lock here: two threads
//! or tasks sharing one `Client` (or its clones) are the same owner, so they
//! re-enter the lock together and do not exclude each other. Give each
//! independent owner its own `Client`.

use crate::lock::{Holder, LockError, carried_over, holder_of};
pub use concoord_object::ready_made::{WaitResult, Waited};
use concoord_object::{CallContext, Wait, Waiter};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A call waiting for the lock: a plain acquire, or a condition waiter
/// taking the lock back (`notified`: false if its wait timed out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum LockWaiter {
    Acquire(Waiter),
    Reacquire {
        waiter: Waiter,
        depth: u64,
        notified: bool,
    },
}

impl LockWaiter {
    fn waiter(&self) -> Waiter {
        match self {
            LockWaiter::Acquire(w) | LockWaiter::Reacquire { waiter: w, .. } => *w,
        }
    }
}

/// A replicated condition variable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DCondition {
    holder: Option<Holder>,
    lock_queue: VecDeque<LockWaiter>,
    waiting: VecDeque<(Waiter, u64)>,
    last_token: u64,
    /// The grant re-initialisation took away, until its holder hears of it.
    #[serde(default)]
    revoked: Option<Holder>,
}

impl DCondition {
    fn grant(&mut self, client_id: u64, depth: u64) -> u64 {
        self.forget_revoked(client_id);
        self.last_token += 1;
        self.holder = Some(Holder {
            client_id,
            token: self.last_token,
            count: depth,
        });
        self.last_token
    }

    fn holder_for(&mut self, client_id: u64) -> Result<&mut Holder, LockError> {
        holder_of(&mut self.holder, &self.revoked, client_id)
    }

    fn forget_revoked(&mut self, client_id: u64) {
        if self.revoked.is_some_and(|r| r.client_id == client_id) {
            self.revoked = None;
        }
    }

    /// Takes over from `earlier`, the condition this one replaces when its
    /// object is re-initialised: fencing tokens continue above every earlier
    /// grant, and `earlier`'s lock holder is told its grant was revoked the
    /// next time it uses it (see `SessionLock::continue_after`).
    pub fn continue_after(&mut self, earlier: &DCondition) {
        (self.last_token, self.revoked) = carried_over(
            earlier.last_token,
            earlier.holder,
            earlier.revoked,
            self.last_token,
        );
    }

    /// The latest fencing token handed out (0 before the first grant).
    pub fn fencing_token(&self) -> u64 {
        self.last_token
    }

    /// Frees the lock and grants it to the first in line.
    fn free(&mut self, ctx: &mut CallContext) {
        self.holder = None;
        let Some(next) = self.lock_queue.pop_front() else {
            return;
        };
        match next {
            LockWaiter::Acquire(w) => {
                let token = self.grant(w.client_id, 1);
                ctx.wake(w, &token);
            }
            LockWaiter::Reacquire {
                waiter,
                depth,
                notified,
            } => {
                let token = self.grant(waiter.client_id, depth);
                ctx.wake::<WaitResult>(waiter, &Ok(Waited { notified, token }));
            }
        }
    }

    fn enqueue(&mut self, ctx: &mut CallContext, entry: LockWaiter) {
        self.lock_queue.push_back(entry);
        if self.holder.is_none() {
            self.free(ctx);
        }
    }

    /// Takes the lock (reentrant for its holder's session), or queues.
    pub fn acquire(&mut self, ctx: &mut CallContext) -> Wait<u64> {
        if let Ok(h) = self.holder_for(ctx.client_id) {
            h.count += 1;
            return Wait::Ready(h.token);
        }
        if self.holder.is_none() && self.lock_queue.is_empty() {
            return Wait::Ready(self.grant(ctx.client_id, 1));
        }
        self.lock_queue.push_back(LockWaiter::Acquire(ctx.waiter()));
        Wait::Blocked
    }

    /// Releases one level of the lock.
    pub fn release(&mut self, ctx: &mut CallContext) -> Result<(), LockError> {
        let h = match holder_of(&mut self.holder, &self.revoked, ctx.client_id) {
            Ok(h) => h,
            Err(e) => {
                self.forget_revoked(ctx.client_id);
                return Err(e);
            }
        };
        h.count -= 1;
        if h.count == 0 {
            self.free(ctx);
        }
        Ok(())
    }

    /// Releases the lock (every level) and waits for a notification; takes
    /// the lock back, under a new fencing token, before returning.
    pub fn wait(&mut self, ctx: &mut CallContext) -> Wait<WaitResult> {
        let depth = match self.holder_for(ctx.client_id) {
            Ok(h) => h.count,
            Err(e) => return Wait::Ready(Err(e)),
        };
        self.waiting.push_back((ctx.waiter(), depth));
        self.free(ctx);
        Wait::Blocked
    }

    /// Wakes up to `n` waiters (default 1), oldest first; they run once they
    /// have the lock back. The caller must hold the lock. Returns how many
    /// were woken.
    pub fn notify(&mut self, ctx: &mut CallContext, n: Option<u64>) -> Result<u64, LockError> {
        self.holder_for(ctx.client_id)?;
        let n = n.unwrap_or(1).min(self.waiting.len() as u64);
        for _ in 0..n {
            if let Some((waiter, depth)) = self.waiting.pop_front() {
                self.enqueue(
                    ctx,
                    LockWaiter::Reacquire {
                        waiter,
                        depth,
                        notified: true,
                    },
                );
            }
        }
        Ok(n)
    }

    /// Wakes every waiter.
    pub fn notify_all(&mut self, ctx: &mut CallContext) -> Result<u64, LockError> {
        let n = self.waiting.len() as u64;
        self.notify(ctx, Some(n))
    }

    /// A waiter's wait ended. A condition waiter still takes the lock back
    /// before it returns `false` (so `true`: it will be woken later); a plain
    /// acquire is dropped (`false`).
    /// A wait its client abandoned is dropped without retaking the lock.
    pub fn cancel(&mut self, ctx: &mut CallContext, waiter: Waiter) -> bool {
        if ctx.is_abandoning() {
            self.waiting.retain(|(w, _)| *w != waiter);
            self.lock_queue.retain(|e| e.waiter() != waiter);
            return false;
        }
        if let Some(i) = self.waiting.iter().position(|(w, _)| *w == waiter) {
            if let Some((waiter, depth)) = self.waiting.remove(i) {
                self.enqueue(
                    ctx,
                    LockWaiter::Reacquire {
                        waiter,
                        depth,
                        notified: false,
                    },
                );
            }
            return true;
        }
        match self.lock_queue.iter().position(|e| e.waiter() == waiter) {
            Some(i) if matches!(self.lock_queue[i], LockWaiter::Acquire(_)) => {
                self.lock_queue.remove(i);
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Drops everything `client_id` holds or waits for (its session ended).
    pub fn release_client(&mut self, ctx: &mut CallContext, client_id: u64) {
        self.forget_revoked(client_id);
        self.waiting.retain(|(w, _)| w.client_id != client_id);
        self.lock_queue
            .retain(|e| e.waiter().client_id != client_id);
        if self.holder.is_some_and(|h| h.client_id == client_id) {
            self.free(ctx);
        }
    }

    /// The lock's holder, if any.
    pub fn holder(&self) -> Option<Holder> {
        self.holder
    }

    /// Callers waiting for a notification.
    pub fn n_waiting(&self) -> u64 {
        self.waiting.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::call;

    #[test]
    fn wait_releases_the_lock_and_returns_holding_it_after_notify() {
        let mut c = DCondition::default();
        let _ = c.acquire(&mut call(1, 1));
        assert_eq!(c.wait(&mut call(1, 2)), Wait::Blocked);
        assert!(c.holder().is_none(), "wait released the lock");
        assert_eq!(c.acquire(&mut call(2, 1)), Wait::Ready(2));
        let mut ctx = call(2, 2);
        assert_eq!(c.notify(&mut ctx, None), Ok(1));
        assert!(
            ctx.take_wakeups().is_empty(),
            "the waiter needs the lock first"
        );
        c.release(&mut ctx).expect("notifier releases");
        let wakeups = ctx.take_wakeups();
        assert_eq!(wakeups.len(), 1);
        assert_eq!(
            wakeups[0].0,
            Waiter {
                client_id: 1,
                seq: 2
            }
        );
        let ok: WaitResult =
            rmp_serde::from_slice(wakeups[0].1.as_ref().expect("ok")).expect("a wait result");
        assert!(ok.is_ok_and(|w| w.notified));
        assert_eq!(c.holder().map(|h| h.client_id), Some(1));
    }

    #[test]
    fn notify_wakes_in_fifo_order_and_notify_all_wakes_everyone() {
        let mut c = DCondition::default();
        for client in 1..=3 {
            let _ = c.acquire(&mut call(client, 1));
            let _ = c.wait(&mut call(client, 2));
        }
        let _ = c.acquire(&mut call(9, 1));
        let mut ctx = call(9, 2);
        c.notify(&mut ctx, Some(1)).expect("holder notifies");
        c.release(&mut ctx).expect("release");
        assert_eq!(ctx.take_wakeups()[0].0.client_id, 1);
        let mut ctx = call(1, 3);
        c.notify_all(&mut ctx).expect("holder notifies");
        assert_eq!(c.n_waiting(), 0);
    }

    #[test]
    fn a_timed_out_wait_still_takes_the_lock_back_and_returns_false() {
        let mut c = DCondition::default();
        let _ = c.acquire(&mut call(1, 1));
        let _ = c.wait(&mut call(1, 2));
        let _ = c.acquire(&mut call(2, 1));
        let mut ctx = call(0, 0);
        assert!(c.cancel(
            &mut ctx,
            Waiter {
                client_id: 1,
                seq: 2
            }
        ));
        assert!(ctx.take_wakeups().is_empty(), "client 2 holds the lock");
        let mut ctx = call(2, 2);
        c.release(&mut ctx).expect("release");
        let w = ctx.take_wakeups();
        let r: WaitResult = rmp_serde::from_slice(w[0].1.as_ref().expect("ok")).expect("decodes");
        assert!(r.is_ok_and(|w| !w.notified));
    }

    #[test]
    fn a_wait_returns_the_fencing_token_of_the_lock_it_retook() {
        let mut c = DCondition::default();
        assert_eq!(c.acquire(&mut call(1, 1)), Wait::Ready(1));
        let _ = c.wait(&mut call(1, 2));
        assert_eq!(c.acquire(&mut call(2, 1)), Wait::Ready(2));
        let mut ctx = call(2, 2);
        c.notify(&mut ctx, None).expect("holder notifies");
        c.release(&mut ctx).expect("release");
        let w = ctx.take_wakeups();
        let r: WaitResult = rmp_serde::from_slice(w[0].1.as_ref().expect("ok")).expect("decodes");
        assert_eq!(
            r,
            Ok(Waited {
                notified: true,
                token: 3
            })
        );
        assert_eq!(c.holder().map(|h| h.token), Some(3), "the grant it holds");
    }

    #[test]
    fn two_callers_of_one_session_share_the_condition_lock() {
        // Ownership is per session: a second thread of client 1 (another
        // seq) re-enters instead of being excluded.
        let mut c = DCondition::default();
        assert_eq!(c.acquire(&mut call(1, 1)), Wait::Ready(1));
        assert_eq!(c.acquire(&mut call(1, 2)), Wait::Ready(1));
        assert_eq!(c.holder().map(|h| h.count), Some(2));
        assert_eq!(c.acquire(&mut call(2, 1)), Wait::Blocked);
    }

    #[test]
    fn an_abandoned_wait_is_dropped_without_retaking_the_lock() {
        let mut c = DCondition::default();
        let _ = c.acquire(&mut call(1, 1));
        let _ = c.wait(&mut call(1, 2));
        let mut ctx = call(1, 3);
        ctx.set_abandoning(true);
        assert!(!c.cancel(
            &mut ctx,
            Waiter {
                client_id: 1,
                seq: 2
            }
        ));
        assert!(c.holder().is_none() && c.n_waiting() == 0);
        assert!(ctx.take_wakeups().is_empty());
    }

    #[test]
    fn waiting_or_notifying_without_the_lock_is_an_error() {
        let mut c = DCondition::default();
        assert_eq!(
            c.wait(&mut call(1, 1)),
            Wait::Ready(Err(LockError::NotLocked))
        );
        assert_eq!(c.notify(&mut call(1, 2), None), Err(LockError::NotLocked));
    }
}
