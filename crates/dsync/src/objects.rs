//! The ready-made synchronization objects, served by `concoord replica -o`
//! under the seed's dotted names, each a thin shell over one primitive.

use crate::barrier::{BarrierResult, DBarrier};
use crate::condition::{DCondition, WaitResult};
use crate::lock::{DLock, DRLock, LockError};
use crate::semaphore::{DSemaphore, SemaphoreError};
use concoord_macros::object;
use concoord_object::{CallContext, Wait, Waiter};
use serde::{Deserialize, Serialize};

/// Declares a lock object over a [`SessionLock`](crate::lock::SessionLock).
macro_rules! lock_object {
    ($(#[$doc:meta])* $ty:ident, $inner:ty, $name:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $ty {
            lock: $inner,
        }

        #[object(crate = "concoord_object", proxy = false, name = $name)]
        impl $ty {
            /// Blocks until the caller holds the lock; returns the fencing token.
            pub fn acquire(&mut self, ctx: &mut CallContext) -> Wait<u64> {
                self.lock.acquire(ctx)
            }

            /// The lock's fencing token if the caller got it now, `None` otherwise.
            pub fn try_acquire(&mut self, ctx: &mut CallContext) -> Option<u64> {
                self.lock.try_acquire(ctx)
            }

            /// Releases the lock (only its holder may).
            pub fn release(&mut self, ctx: &mut CallContext) -> Result<(), LockError> {
                self.lock.release(ctx)
            }

            /// Whether someone holds the lock.
            pub fn locked(&self) -> bool {
                self.lock.locked()
            }

            /// The latest fencing token handed out.
            pub fn fencing_token(&self) -> u64 {
                self.lock.fencing_token()
            }

            #[concoord(on_cancel)]
            fn cancelled(&mut self, _ctx: &mut CallContext, waiter: Waiter) -> bool {
                self.lock.cancel(waiter);
                false
            }

            #[concoord(on_expire)]
            fn expired(&mut self, ctx: &mut CallContext, client_id: u64) {
                self.lock.release_client(ctx, client_id);
            }

            /// `__concoordinit__` frees the lock, but its fencing tokens
            /// keep growing and its holder learns the grant was revoked.
            #[concoord(on_reinit)]
            fn keep_fencing(&self, fresh: &mut Self) {
                fresh.lock.continue_after(&self.lock);
            }
        }
    };
}

lock_object!(
    /// `concoord.object.lock.Lock`: a replicated lock with fencing tokens.
    /// Its holder is a client session: threads sharing one `Client` exclude
    /// each other, and either may release.
    Lock,
    DLock,
    "concoord.object.lock.Lock"
);

lock_object!(
    /// `concoord.object.rlock.RLock`: a reentrant replicated lock (its
    /// holder's session acquires it again at once, and releases as often).
    /// Ownership is per client session: threads sharing one `Client` all
    /// enter it and are **not** excluded from each other; give each
    /// independent owner its own `Client`.
    RLock,
    DRLock,
    "concoord.object.rlock.RLock"
);

/// Declares a semaphore object over a [`DSemaphore`] made by `$make`.
macro_rules! semaphore_object {
    ($(#[$doc:meta])* $ty:ident, $make:path, $name:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $ty {
            sem: DSemaphore,
        }

        impl Default for $ty {
            fn default() -> Self {
                $ty { sem: $make(1) }
            }
        }

        #[object(crate = "concoord_object", proxy = false, name = $name)]
        impl $ty {
            /// `concoord_init(value)`: start over with `value` permits (default 1).
            #[concoord(init)]
            pub fn with_value(value: Option<u64>) -> $ty {
                $ty {
                    sem: $make(value.unwrap_or(1)),
                }
            }

            /// Blocks until the caller gets a permit.
            pub fn acquire(&mut self, ctx: &mut CallContext) -> Wait<bool> {
                self.sem.acquire(ctx)
            }

            /// Takes a permit if one is free now.
            pub fn try_acquire(&mut self, ctx: &mut CallContext) -> bool {
                self.sem.try_acquire(ctx)
            }

            /// Gives a permit back (a bounded semaphore refuses to exceed its
            /// initial value).
            pub fn release(&mut self, ctx: &mut CallContext) -> Result<(), SemaphoreError> {
                self.sem.release(ctx)
            }

            /// Permits free now.
            pub fn value(&self) -> u64 {
                self.sem.value()
            }

            #[concoord(on_cancel)]
            fn cancelled(&mut self, _ctx: &mut CallContext, waiter: Waiter) -> bool {
                self.sem.cancel(waiter);
                false
            }

            #[concoord(on_expire)]
            fn expired(&mut self, ctx: &mut CallContext, client_id: u64) {
                self.sem.release_client(ctx, client_id);
            }
        }
    };
}

semaphore_object!(
    /// `concoord.object.semaphore.Semaphore`: counted permits (default 1),
    /// Python's `Semaphore`: any client may release, and a permit a session
    /// acquired stays taken when that session ends (a consumed item does not
    /// come back).
    Semaphore,
    DSemaphore::new,
    "concoord.object.semaphore.Semaphore"
);

semaphore_object!(
    /// `concoord.object.boundedsemaphore.BoundedSemaphore`: a pool of
    /// permits held by sessions (a session that ends gives its permits back),
    /// that any client may release while some permit is held, and that
    /// refuses to go beyond its initial value.
    BoundedSemaphore,
    DSemaphore::bounded,
    "concoord.object.boundedsemaphore.BoundedSemaphore"
);

/// `concoord.object.barrier.Barrier`: a reusable barrier (default 2 parties).
/// A waiting party whose session ends breaks it (Python's
/// `BrokenBarrierError`); `concoord_init(parties)` starts it over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Barrier {
    barrier: DBarrier,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.barrier.Barrier"
)]
impl Barrier {
    /// `concoord_init(parties)`: start over for `parties` parties (default 2).
    #[concoord(init)]
    pub fn with_parties(parties: Option<u64>) -> Barrier {
        Barrier {
            barrier: DBarrier::new(parties.unwrap_or(2)),
        }
    }

    /// Blocks until every party of the round has arrived; returns the
    /// caller's arrival index, or `Broken` if a waiting party's session
    /// ended.
    pub fn wait(&mut self, ctx: &mut CallContext) -> Wait<BarrierResult> {
        self.barrier.wait(ctx)
    }

    /// Parties per round.
    pub fn parties(&self) -> u64 {
        self.barrier.parties()
    }

    /// Parties waiting now.
    pub fn n_waiting(&self) -> u64 {
        self.barrier.n_waiting()
    }

    /// Rounds completed.
    pub fn rounds(&self) -> u64 {
        self.barrier.rounds()
    }

    #[concoord(on_cancel)]
    fn cancelled(&mut self, _ctx: &mut CallContext, waiter: Waiter) -> bool {
        self.barrier.cancel(waiter);
        false
    }

    #[concoord(on_expire)]
    fn expired(&mut self, ctx: &mut CallContext, client_id: u64) {
        self.barrier.release_client(ctx, client_id);
    }
}

/// `concoord.object.condition.Condition`: a condition variable with its lock.
/// The lock is owned per client session: threads sharing one `Client` are
/// one owner and are not excluded from each other.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    cond: DCondition,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.condition.Condition"
)]
impl Condition {
    /// Blocks until the caller holds the condition's lock; returns its
    /// fencing token.
    pub fn acquire(&mut self, ctx: &mut CallContext) -> Wait<u64> {
        self.cond.acquire(ctx)
    }

    /// Releases one level of the lock.
    pub fn release(&mut self, ctx: &mut CallContext) -> Result<(), LockError> {
        self.cond.release(ctx)
    }

    /// Releases the lock, waits for a notification, takes the lock back:
    /// whether it was notified (not timed out) and the new fencing token.
    pub fn wait(&mut self, ctx: &mut CallContext) -> Wait<WaitResult> {
        self.cond.wait(ctx)
    }

    /// Wakes up to `n` waiters (default 1); returns how many.
    pub fn notify(&mut self, ctx: &mut CallContext, n: Option<u64>) -> Result<u64, LockError> {
        self.cond.notify(ctx, n)
    }

    /// Wakes every waiter; returns how many.
    pub fn notify_all(&mut self, ctx: &mut CallContext) -> Result<u64, LockError> {
        self.cond.notify_all(ctx)
    }

    /// Callers waiting for a notification.
    pub fn n_waiting(&self) -> u64 {
        self.cond.n_waiting()
    }

    #[concoord(on_cancel)]
    fn cancelled(&mut self, ctx: &mut CallContext, waiter: Waiter) -> bool {
        self.cond.cancel(ctx, waiter)
    }

    #[concoord(on_expire)]
    fn expired(&mut self, ctx: &mut CallContext, client_id: u64) {
        self.cond.release_client(ctx, client_id);
    }

    /// `__concoordinit__` frees the lock, but its fencing tokens keep
    /// growing and its holder learns the grant was revoked.
    #[concoord(on_reinit)]
    fn keep_fencing(&self, fresh: &mut Self) {
        fresh.cond.continue_after(&self.cond);
    }
}
