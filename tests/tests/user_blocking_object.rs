//! A user's own object that embeds a `DLock` through the `concoord` facade
//! (the example of docs/dsync.md): its blocking method blocks, its release
//! wakes the next waiter, and its hooks drop cancelled waiters and release
//! an expired session's lock.

use concoord::dsync::{DLock, LockError};
use concoord::{CallContext, ReplicatedObject, Wait, Waiter};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Inventory {
    lock: DLock,
    items: Vec<String>,
}

#[concoord::object(name = "test.Inventory")]
impl Inventory {
    pub fn lock(&mut self, ctx: &mut CallContext) -> Wait<u64> {
        self.lock.acquire(ctx)
    }
    pub fn unlock(&mut self, ctx: &mut CallContext) -> Result<(), LockError> {
        self.lock.release(ctx)
    }
    pub fn add(&mut self, item: String) {
        self.items.push(item);
    }
    #[concoord(on_cancel)]
    fn cancelled(&mut self, _: &mut CallContext, w: Waiter) -> bool {
        self.lock.cancel(w);
        false
    }
    #[concoord(on_expire)]
    fn expired(&mut self, ctx: &mut CallContext, client: u64) {
        self.lock.release_client(ctx, client)
    }
}

fn apply(o: &mut Inventory, ctx: &mut CallContext, method: &str) -> Vec<u8> {
    o.apply(ctx, method, &[0x90]).expect("the call runs")
}

#[test]
fn a_user_object_blocks_wakes_and_releases_an_expired_sessions_lock() {
    let mut inv = Inventory::default();
    let mut a = CallContext::new(1, 1);
    let token: u64 = rmp_serde::from_slice(&apply(&mut inv, &mut a, "lock")).expect("a token");
    assert!(!a.is_blocked());
    let mut b = CallContext::new(2, 1);
    apply(&mut inv, &mut b, "lock");
    assert!(b.is_blocked(), "the second caller blocks");
    let mut c = CallContext::new(3, 1);
    apply(&mut inv, &mut c, "lock");
    assert!(!inv.cancel_wait(&mut CallContext::new(0, 0), c.waiter()));
    let mut sys = CallContext::new(0, 0);
    inv.session_expired(&mut sys, 1);
    let woken = sys.take_wakeups();
    assert_eq!(woken.len(), 1, "only the queued, uncancelled waiter");
    assert_eq!(woken[0].0, b.waiter());
    let next: u64 = rmp_serde::from_slice(woken[0].1.as_ref().expect("a grant")).expect("a token");
    assert_eq!(next, token + 1);
    assert!(
        Inventory::methods()
            .iter()
            .all(|(m, _)| *m != "cancelled" && *m != "expired")
    );
}
