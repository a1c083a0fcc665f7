//! Proxies for the synchronization objects of `concoord-dsync`. Blocking
//! methods (`acquire`, `wait`) wait until the object grants them, however
//! long that takes; the `*_timeout` variants give up after a while (the
//! replicas decide, through the log, whether the grant or the cancellation
//! came first, so a timed-out acquire never leaves the lock held).

use concoord_macros::proxy;
use concoord_object::ready_made::{
    BarrierError, BarrierResult, LockError, SemaphoreError, WaitResult,
};
use std::time::Duration;

/// Declares the proxies of a lock object.
macro_rules! lock_proxy {
    ($(#[$doc:meta])* $tr:ident, $async_name:literal, $blocking_name:literal) => {
        $(#[$doc])*
        #[proxy(crate = "crate", async_name = $async_name, blocking_name = $blocking_name)]
        pub trait $tr {
            fn acquire(&mut self, ctx: &mut CallContext) -> Wait<u64>;
            fn try_acquire(&mut self, ctx: &mut CallContext) -> Option<u64>;
            fn release(&mut self, ctx: &mut CallContext) -> Result<(), LockError>;
            fn locked(&self) -> bool;
            fn fencing_token(&self) -> u64;
        }
    };
}

lock_proxy!(
    /// `concoord.object.lock.Lock`.
    LockObject,
    "Lock",
    "BlockingLock"
);
lock_proxy!(
    /// `concoord.object.rlock.RLock`.
    RLockObject,
    "RLock",
    "BlockingRLock"
);

/// Declares the proxies of a semaphore object.
macro_rules! semaphore_proxy {
    ($(#[$doc:meta])* $tr:ident, $async_name:literal, $blocking_name:literal) => {
        $(#[$doc])*
        #[proxy(crate = "crate", async_name = $async_name, blocking_name = $blocking_name)]
        pub trait $tr {
            #[concoord(init)]
            fn with_value(value: Option<u64>) -> Self;
            fn acquire(&mut self, ctx: &mut CallContext) -> Wait<bool>;
            fn try_acquire(&mut self, ctx: &mut CallContext) -> bool;
            fn release(&mut self, ctx: &mut CallContext) -> Result<(), SemaphoreError>;
            fn value(&self) -> u64;
        }
    };
}

semaphore_proxy!(
    /// `concoord.object.semaphore.Semaphore`.
    SemaphoreObject,
    "Semaphore",
    "BlockingSemaphore"
);
semaphore_proxy!(
    /// `concoord.object.boundedsemaphore.BoundedSemaphore`.
    BoundedSemaphoreObject,
    "BoundedSemaphore",
    "BlockingBoundedSemaphore"
);

/// `concoord.object.barrier.Barrier`.
#[proxy(
    crate = "crate",
    async_name = "Barrier",
    blocking_name = "BlockingBarrier"
)]
pub trait BarrierObject {
    #[concoord(init)]
    fn with_parties(parties: Option<u64>) -> Self;
    fn wait(&mut self, ctx: &mut CallContext) -> Wait<BarrierResult>;
    fn parties(&self) -> u64;
    fn n_waiting(&self) -> u64;
    fn rounds(&self) -> u64;
}

/// `concoord.object.condition.Condition`.
#[proxy(
    crate = "crate",
    async_name = "Condition",
    blocking_name = "BlockingCondition"
)]
pub trait ConditionObject {
    fn acquire(&mut self, ctx: &mut CallContext) -> Wait<u64>;
    fn release(&mut self, ctx: &mut CallContext) -> Result<(), LockError>;
    fn wait(&mut self, ctx: &mut CallContext) -> Wait<WaitResult>;
    fn notify(&mut self, ctx: &mut CallContext, n: Option<u64>) -> Result<u64, LockError>;
    fn notify_all(&mut self, ctx: &mut CallContext) -> Result<u64, LockError>;
    fn n_waiting(&self) -> u64;
}

// The `*_timeout` variants, for the async and the blocking proxy alike.
macro_rules! lock_timeout {
    ($proxy:ident $(, $async_kw:ident, $aw:ident)?) => {
        impl $proxy {
            /// Like `acquire`, but gives up after `wait`: `None` if the lock
            /// was not granted by then.
            pub $($async_kw)? fn acquire_timeout(
                &self,
                wait: Duration,
            ) -> Result<Option<u64>, crate::ClientError> {
                self.client.call_waiting("acquire", &(), wait)$(.$aw)?
            }
        }
    };
}

lock_timeout!(Lock, async, await);
lock_timeout!(BlockingLock);
lock_timeout!(RLock, async, await);
lock_timeout!(BlockingRLock);

macro_rules! semaphore_timeout {
    ($proxy:ident $(, $async_kw:ident, $aw:ident)?) => {
        impl $proxy {
            /// Like `acquire`, but gives up after `wait`: `false` if no
            /// permit was granted by then.
            pub $($async_kw)? fn acquire_timeout(&self, wait: Duration) -> Result<bool, crate::ClientError> {
                let granted: Option<bool> = self.client.call_waiting("acquire", &(), wait)$(.$aw)??;
                Ok(granted.unwrap_or(false))
            }
        }
    };
}

semaphore_timeout!(Semaphore, async, await);
semaphore_timeout!(BlockingSemaphore);
semaphore_timeout!(BoundedSemaphore, async, await);
semaphore_timeout!(BlockingBoundedSemaphore);

macro_rules! barrier_timeout {
    ($proxy:ident $(, $async_kw:ident, $aw:ident)?) => {
        impl $proxy {
            /// Like `wait`, but leaves the round after `wait`: `Ok(None)` if
            /// the round did not complete by then.
            pub $($async_kw)? fn wait_timeout(&self, wait: Duration) -> Result<Result<Option<u64>, BarrierError>, crate::ClientError> {
                let r: Option<BarrierResult> = self.client.call_waiting("wait", &(), wait)$(.$aw)??;
                Ok(r.transpose())
            }
        }
    };
}

barrier_timeout!(Barrier, async, await);
barrier_timeout!(BlockingBarrier);

macro_rules! condition_timeout {
    ($proxy:ident $(, $async_kw:ident, $aw:ident)?) => {
        impl $proxy {
            /// Like `wait`, but stops waiting for a notification after
            /// `wait`; it still takes the lock back before returning
            /// (`notified: false`).
            pub $($async_kw)? fn wait_timeout(&self, wait: Duration) -> Result<WaitResult, crate::ClientError> {
                let r: Option<WaitResult> = self.client.call_waiting("wait", &(), wait)$(.$aw)??;
                r.ok_or(crate::ClientError::Call(crate::CallError::WaitTimedOut))
            }
        }
    };
}

condition_timeout!(Condition, async, await);
condition_timeout!(BlockingCondition);
