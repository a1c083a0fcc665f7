//! A wake-up that cannot be queued is never lost: when the driver cannot
//! queue the reply that grants a blocked call, it closes that client's
//! connection; the client reconnects, resends the call, and is answered from
//! the exactly-once table. (Dropping the frame instead left the call blocked
//! for good: a client with a blocked call does not resend it while its
//! keep-alives are answered.)
//!
//! The replica runs in this process, on real loopback sockets, so that the
//! test can arm its `test-hooks` fault: the next wake-up finds its reply
//! queue full. The clients are the real `concoord-client`.

use concoord_client::proxies::Lock;
use concoord_replica::{ReplicaOptions, run, test_hooks};
use std::time::{Duration, Instant};

/// An address no other test uses.
const ADDR: &str = "127.0.41.1";
const PORT: u16 = 14_000;

#[test]
fn a_blocked_acquire_is_granted_although_its_wake_up_could_not_be_queued() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let opts = ReplicaOptions {
            addr: ADDR.into(),
            port: PORT,
            ..ReplicaOptions::default()
        };
        let replica = tokio::spawn(run::<concoord_dsync::Lock>(opts));
        let addr = format!("{ADDR}:{PORT}");
        let started = Instant::now();
        let holder = loop {
            match Lock::connect(&addr).await {
                Ok(lock) => break lock,
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    assert!(!replica.is_finished(), "the replica stopped: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the replica did not start: {e}"),
            }
        };
        let waiter = Lock::connect(&addr).await.expect("connect");

        // The holder takes the lock; the waiter's acquire blocks behind it.
        let first = holder.acquire().await.expect("acquire");
        let blocked = tokio::spawn(async move { waiter.acquire().await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!blocked.is_finished(), "the second acquire waits");

        // Its wake-up will find the reply queue full.
        test_hooks::refuse_wakeups(1);
        holder.release().await.expect("release");
        let granted = tokio::time::timeout(Duration::from_secs(10), blocked)
            .await
            .expect("the blocked acquire is answered although its wake-up could not be queued")
            .expect("task")
            .expect("granted");
        assert_eq!(
            test_hooks::wakeups_to_refuse(),
            0,
            "the armed fault struck (else this test proves nothing)"
        );
        assert!(
            granted > first,
            "fencing tokens grow: {first} then {granted}"
        );
        replica.abort();
    });
}
