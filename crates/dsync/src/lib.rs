//! Distributed synchronization that stays correct when clients and replicas
//! fail: replicated versions of Python's threading primitives whose blocking
//! calls really block the caller until granted.
//!
//! The `D*` types are plain, deterministic Rust values: put them inside your
//! own replicated object and forward to them (blocking methods return
//! [`Wait`](concoord_object::Wait) and take `ctx: &mut CallContext`). The
//! [`objects`] are the ready-made ones, served under the seed's dotted names
//! (`concoord.object.lock.Lock`, …) with proxies in `concoord_client::proxies`.
//!
//! How blocking stays right under failures:
//!
//! * a blocked call is queued inside the object, and its wake-up is computed
//!   when the call that frees it executes: both are replicated state, so every
//!   replica agrees on who waits and who is woken, and any replica can
//!   deliver the wake-up;
//! * the exactly-once table marks the call blocked, then stores its wake-up
//!   reply, so a client that retries (at another replica after a failover)
//!   keeps waiting or gets the reply it was woken with, never a second grant;
//! * holders are client sessions (threads sharing one `Client` are one
//!   holder). A session expires through the log when its client goes silent
//!   for the session TTL; on every replica at the same point its locks and
//!   held permits are released, its waiters dropped, and a barrier it was
//!   waiting at is broken. A `Semaphore`'s permits are taken, not held: they
//!   stay taken (see [`semaphore`]);
//! * every lock grant carries a fencing token, larger than every earlier one
//!   of that lock, for other services to reject a deposed holder's writes.

#![deny(missing_docs)]

pub mod barrier;
pub mod condition;
pub mod lock;
pub mod objects;
pub mod semaphore;

pub use barrier::{BarrierError, BarrierResult, DBarrier};
pub use condition::{DCondition, WaitResult, Waited};
pub use lock::{DLock, DRLock, Holder, LockError, SessionLock};
pub use objects::{Barrier, BoundedSemaphore, Condition, Lock, RLock, Semaphore};
pub use semaphore::{DSemaphore, SemaphoreError};

#[cfg(test)]
mod testing {
    use concoord_object::CallContext;
    use std::collections::BTreeMap;

    /// The context of call `seq` of client `client`.
    pub fn call(client: u64, seq: u64) -> CallContext {
        CallContext::new(client, seq)
    }

    /// Wake-ups collected from contexts, by (client, seq).
    #[derive(Default)]
    pub struct Woken(BTreeMap<(u64, u64), Vec<u8>>);

    impl Woken {
        pub fn take(&mut self, ctx: &mut CallContext) {
            for (w, r) in ctx.take_wakeups() {
                if let Ok(bytes) = r {
                    self.0.insert((w.client_id, w.seq), bytes);
                }
            }
        }

        pub fn token_of(&self, client: u64, seq: u64) -> Option<u64> {
            self.0
                .get(&(client, seq))
                .and_then(|b| rmp_serde::from_slice(b).ok())
        }
    }
}
