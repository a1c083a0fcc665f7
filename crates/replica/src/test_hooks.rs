//! Misbehaviour on purpose, for tests (feature `test-hooks`, never in a
//! build you run): a test arms a hook, and the replica code that checks it
//! acts as if the fault had happened.

use std::sync::atomic::{AtomicU64, Ordering};

static REFUSED_WAKEUPS: AtomicU64 = AtomicU64::new(0);

/// The next `n` wake-ups of blocked calls find their connection's reply
/// queue full.
pub fn refuse_wakeups(n: u64) {
    REFUSED_WAKEUPS.store(n, Ordering::SeqCst);
}

/// Whether this wake-up is to be refused (consumes one).
pub(crate) fn refuse_wakeup() -> bool {
    REFUSED_WAKEUPS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Wake-ups still to be refused (0 once every armed one was).
pub fn wakeups_to_refuse() -> u64 {
    REFUSED_WAKEUPS.load(Ordering::SeqCst)
}
