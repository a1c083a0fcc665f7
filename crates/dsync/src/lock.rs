//! `DLock` and `DRLock`: mutual exclusion between client sessions, granted in
//! FIFO order, each grant with a fencing token.
//!
//! The holder is a client session, not a thread: every call of one `Client`
//! (and of its clones) is the same session. A `DLock` is not reentrant, so a
//! second acquire from the holder's session queues like any other (two
//! threads sharing a client exclude each other, and either may release). A
//! `DRLock` lets its holder's session in again and counts: two threads
//! sharing one client both get in, so it does **not** exclude them from
//! each other. Give each independent owner its own `Client`.

pub use concoord_object::ready_made::LockError;
use concoord_object::{CallContext, Wait, Waiter};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Who holds a lock, since which grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holding client session.
    pub client_id: u64,
    /// The grant's fencing token.
    pub token: u64,
    /// Acquisitions not yet released (1 for a `DLock`).
    pub count: u64,
}

/// The holder, if it is `client_id`; otherwise why not (`Revoked` if
/// re-initialisation took its grant away).
pub(crate) fn holder_of<'a>(
    holder: &'a mut Option<Holder>,
    revoked: &Option<Holder>,
    client_id: u64,
) -> Result<&'a mut Holder, LockError> {
    let held_by = holder.map(|h| h.client_id);
    match (held_by, revoked) {
        (Some(c), _) if c == client_id => holder.as_mut().ok_or(LockError::NotLocked),
        (_, Some(r)) if r.client_id == client_id => Err(LockError::Revoked { token: r.token }),
        (None, _) => Err(LockError::NotLocked),
        (Some(_), _) => Err(LockError::NotHolder),
    }
}

/// What a lock carries over when its object is re-initialised: its fencing
/// tokens continue above every earlier one, and the grant it held is
/// revoked (its holder is told `Revoked` when it next uses it). Returns the
/// `(last_token, revoked)` the new lock starts with.
pub(crate) fn carried_over(
    earlier_last_token: u64,
    earlier_holder: Option<Holder>,
    earlier_revoked: Option<Holder>,
    fresh_last_token: u64,
) -> (u64, Option<Holder>) {
    (
        earlier_last_token.max(fresh_last_token),
        earlier_holder.or(earlier_revoked),
    )
}

/// The grant queue shared by both locks: a holder, FIFO waiters, and a
/// fencing-token counter that only grows, also across re-initialisation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Grants {
    holder: Option<Holder>,
    queue: VecDeque<Waiter>,
    last_token: u64,
    /// The grant re-initialisation took away, until its holder hears of it.
    #[serde(default)]
    revoked: Option<Holder>,
}

impl Grants {
    fn grant(&mut self, client_id: u64) -> u64 {
        self.forget_revoked(client_id);
        self.last_token += 1;
        self.holder = Some(Holder {
            client_id,
            token: self.last_token,
            count: 1,
        });
        self.last_token
    }

    fn acquire(&mut self, ctx: &mut CallContext) -> Wait<u64> {
        if self.holder.is_none() && self.queue.is_empty() {
            Wait::Ready(self.grant(ctx.client_id))
        } else {
            self.queue.push_back(ctx.waiter());
            Wait::Blocked
        }
    }

    fn try_acquire(&mut self, ctx: &mut CallContext) -> Option<u64> {
        (self.holder.is_none() && self.queue.is_empty()).then(|| self.grant(ctx.client_id))
    }

    /// Frees the lock and grants it to the first waiter.
    fn free(&mut self, ctx: &mut CallContext) {
        self.holder = None;
        if let Some(next) = self.queue.pop_front() {
            let token = self.grant(next.client_id);
            ctx.wake(next, &token);
        }
    }

    fn cancel(&mut self, waiter: Waiter) -> bool {
        let before = self.queue.len();
        self.queue.retain(|w| *w != waiter);
        self.queue.len() != before
    }

    fn forget_revoked(&mut self, client_id: u64) {
        if self.revoked.is_some_and(|r| r.client_id == client_id) {
            self.revoked = None;
        }
    }

    fn release_client(&mut self, ctx: &mut CallContext, client_id: u64) {
        self.forget_revoked(client_id);
        self.queue.retain(|w| w.client_id != client_id);
        if self.holder.is_some_and(|h| h.client_id == client_id) {
            self.free(ctx);
        }
    }
}

/// A replicated lock; `REENTRANT` says whether its holder's session may
/// acquire it again. Use the aliases [`DLock`] and [`DRLock`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLock<const REENTRANT: bool> {
    grants: Grants,
}

/// A replicated, non-reentrant lock (Python's `threading.Lock`, held by a
/// client session).
pub type DLock = SessionLock<false>;

/// A replicated reentrant lock (Python's `threading.RLock`): its holder's
/// session may acquire it again, and must release it as many times.
/// Ownership is per client session, not per thread: threads sharing one
/// `Client` all re-enter it and are not excluded from each other.
pub type DRLock = SessionLock<true>;

impl<const REENTRANT: bool> SessionLock<REENTRANT> {
    /// Takes the lock (again, for a reentrant lock the caller's session
    /// holds), or queues the caller (FIFO) until it is released to it.
    /// Returns the grant's fencing token, larger than every earlier one (the
    /// same one on re-entry).
    pub fn acquire(&mut self, ctx: &mut CallContext) -> Wait<u64> {
        match self.reenter(ctx) {
            Some(token) => Wait::Ready(token),
            None => self.grants.acquire(ctx),
        }
    }

    /// Takes the lock if it is free and nobody is queued (or, reentrant, if
    /// the caller holds it).
    pub fn try_acquire(&mut self, ctx: &mut CallContext) -> Option<u64> {
        self.reenter(ctx).or_else(|| self.grants.try_acquire(ctx))
    }

    fn reenter(&mut self, ctx: &CallContext) -> Option<u64> {
        if !REENTRANT {
            return None;
        }
        let g = &mut self.grants;
        let h = holder_of(&mut g.holder, &g.revoked, ctx.client_id).ok()?;
        h.count += 1;
        Some(h.token)
    }

    /// Releases one level (only the holder may); the last one grants the
    /// lock to the next waiter. A holder whose grant re-initialisation
    /// revoked is told so (`Revoked`), once.
    pub fn release(&mut self, ctx: &mut CallContext) -> Result<(), LockError> {
        let g = &mut self.grants;
        let h = match holder_of(&mut g.holder, &g.revoked, ctx.client_id) {
            Ok(h) => h,
            Err(e) => {
                g.forget_revoked(ctx.client_id);
                return Err(e);
            }
        };
        h.count -= 1;
        if h.count == 0 {
            self.grants.free(ctx);
        }
        Ok(())
    }

    /// Removes a waiter whose wait ended; `true` if it was queued.
    pub fn cancel(&mut self, waiter: Waiter) -> bool {
        self.grants.cancel(waiter)
    }

    /// Releases everything `client_id` holds or waits for (its session ended).
    pub fn release_client(&mut self, ctx: &mut CallContext, client_id: u64) {
        self.grants.release_client(ctx, client_id);
    }

    /// Whether someone holds the lock.
    pub fn locked(&self) -> bool {
        self.grants.holder.is_some()
    }

    /// The holder, if any.
    pub fn holder(&self) -> Option<Holder> {
        self.grants.holder
    }

    /// The latest fencing token handed out (0 before the first grant).
    pub fn fencing_token(&self) -> u64 {
        self.grants.last_token
    }

    /// Callers queued.
    pub fn waiting(&self) -> usize {
        self.grants.queue.len()
    }

    /// Takes over from `earlier`, the lock this one replaces when its object
    /// is re-initialised: every grant of this lock gets a fencing token
    /// larger than every grant of `earlier` (a service fencing by token
    /// keeps rejecting the old holder), and `earlier`'s holder is told its
    /// grant was revoked when it next releases. `earlier`'s waiters are not
    /// carried over (the replica answers them `WaitAbandoned`).
    pub fn continue_after(&mut self, earlier: &Self) {
        let (e, g) = (&earlier.grants, &mut self.grants);
        (g.last_token, g.revoked) = carried_over(e.last_token, e.holder, e.revoked, g.last_token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Woken, call};

    #[test]
    fn the_lock_goes_to_waiters_in_arrival_order_with_growing_tokens() {
        let mut lock = DLock::default();
        let mut woken = Woken::default();
        assert_eq!(lock.acquire(&mut call(1, 1)), Wait::Ready(1));
        assert_eq!(lock.acquire(&mut call(2, 1)), Wait::Blocked);
        assert_eq!(lock.acquire(&mut call(3, 1)), Wait::Blocked);
        let mut ctx = call(1, 2);
        lock.release(&mut ctx).expect("holder releases");
        woken.take(&mut ctx);
        assert_eq!(woken.token_of(2, 1), Some(2));
        let mut ctx = call(2, 2);
        lock.release(&mut ctx).expect("holder releases");
        woken.take(&mut ctx);
        assert_eq!(woken.token_of(3, 1), Some(3));
    }

    #[test]
    fn only_the_holder_releases() {
        let mut lock = DLock::default();
        assert_eq!(lock.release(&mut call(1, 1)), Err(LockError::NotLocked));
        let _ = lock.acquire(&mut call(1, 2));
        assert_eq!(lock.release(&mut call(2, 1)), Err(LockError::NotHolder));
    }

    #[test]
    fn a_plain_lock_is_not_reentrant_but_an_rlock_is() {
        let mut lock = DLock::default();
        let _ = lock.acquire(&mut call(1, 1));
        assert_eq!(lock.acquire(&mut call(1, 2)), Wait::Blocked);
        let mut r = DRLock::default();
        assert_eq!(r.acquire(&mut call(1, 1)), Wait::Ready(1));
        assert_eq!(r.acquire(&mut call(1, 2)), Wait::Ready(1));
        assert_eq!(r.acquire(&mut call(2, 1)), Wait::Blocked);
        let mut ctx = call(1, 3);
        r.release(&mut ctx).expect("first level");
        assert!(ctx.take_wakeups().is_empty(), "still held once");
        r.release(&mut ctx).expect("second level");
        assert_eq!(ctx.take_wakeups().len(), 1);
        assert_eq!(r.holder().map(|h| h.client_id), Some(2));
    }

    #[test]
    fn two_callers_of_one_session_both_enter_an_rlock() {
        // Two threads sharing a client are one session (client 1, two seqs).
        let mut r = DRLock::default();
        assert_eq!(r.acquire(&mut call(1, 1)), Wait::Ready(1));
        assert_eq!(r.acquire(&mut call(1, 2)), Wait::Ready(1), "not excluded");
        let mut lock = DLock::default();
        let _ = lock.acquire(&mut call(1, 1));
        let mut ctx = call(1, 2);
        assert_eq!(
            lock.release(&mut ctx),
            Ok(()),
            "either thread of the holding session may release a Lock"
        );
    }

    #[test]
    fn fencing_tokens_keep_growing_across_re_initialisation() {
        let mut lock = DLock::default();
        assert_eq!(lock.acquire(&mut call(1, 1)), Wait::Ready(1));
        assert_eq!(lock.acquire(&mut call(2, 1)), Wait::Blocked);
        let mut fresh = DLock::default();
        fresh.continue_after(&lock);
        let lock = &mut fresh;
        assert!(!lock.locked(), "re-initialisation frees the lock");
        assert_eq!(lock.fencing_token(), 1);
        assert_eq!(
            lock.acquire(&mut call(3, 1)),
            Wait::Ready(2),
            "fenced above every earlier grant"
        );
        assert_eq!(
            lock.release(&mut call(1, 2)),
            Err(LockError::Revoked { token: 1 }),
            "the deposed holder is told"
        );
        assert_eq!(
            lock.release(&mut call(1, 3)),
            Err(LockError::NotHolder),
            "once"
        );
    }

    #[test]
    fn a_revoked_holder_that_acquires_again_holds_a_new_grant() {
        let mut lock = DRLock::default();
        let _ = lock.acquire(&mut call(1, 1));
        let mut fresh = DRLock::default();
        fresh.continue_after(&lock);
        assert_eq!(fresh.acquire(&mut call(1, 2)), Wait::Ready(2));
        assert_eq!(fresh.release(&mut call(1, 3)), Ok(()));
        // Twice re-initialised: the counter still only grows.
        let mut again = DRLock::default();
        again.continue_after(&fresh);
        let mut third = DRLock::default();
        third.continue_after(&again);
        assert_eq!(third.acquire(&mut call(2, 1)), Wait::Ready(3));
    }

    #[test]
    fn an_ended_session_frees_the_lock_for_the_next_waiter() {
        let mut lock = DLock::default();
        let _ = lock.acquire(&mut call(1, 1));
        let _ = lock.acquire(&mut call(2, 1));
        let mut ctx = call(0, 0);
        lock.release_client(&mut ctx, 1);
        assert_eq!(ctx.take_wakeups().len(), 1);
        assert_eq!(lock.holder().map(|h| (h.client_id, h.token)), Some((2, 2)));
    }
}
