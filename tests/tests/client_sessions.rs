//! What a client is told about its calls, against a real 3-replica Lock
//! instance: a call blocked for long does not stop the same client's other
//! calls, and a call in flight when its session ends is reported as maybe
//! run, not as refused.

use concoord_client::proxies::Lock;
use concoord_client::{ClientError, ClientOptions};
use concoord_integration_tests::{Cluster, ReplicaSpec, runtime};
use std::time::Duration;

const LOCK: ReplicaSpec = ReplicaSpec::builtin("concoord.object.lock.Lock");

/// More calls than a session may hold unacknowledged (4 096): they used to
/// pile up behind a blocked call and fail once it had been passed by this
/// many.
const CALLS_BEHIND_A_BLOCKED_ONE: usize = 6_000;

/// Another client holds the lock, and `client` (returned with the holder)
/// has an `acquire` blocked behind it, sent for 300 ms.
async fn acquire_blocked_behind_a_holder(
    boot: &str,
) -> (
    Lock,
    Lock,
    tokio::task::JoinHandle<Result<u64, ClientError>>,
) {
    let holder = Lock::connect(boot).await.expect("connect");
    holder.acquire().await.expect("the holder acquires");
    let client = Lock::connect(boot).await.expect("connect");
    let waiter = client.clone();
    let blocked = tokio::spawn(async move { waiter.acquire().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!blocked.is_finished(), "the lock is held: acquire blocks");
    (holder, client, blocked)
}

#[test]
fn a_call_blocked_for_long_does_not_stop_its_clients_other_calls() {
    let mut cluster = Cluster::start_spec(LOCK, "client_blocked_window", "127.0.20.30", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    rt.block_on(async {
        let (holder, client, blocked) = acquire_blocked_behind_a_holder(&boot).await;
        // The same client (its other handle) keeps calling, 8 at a time.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let lock = client.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..CALLS_BEHIND_A_BLOCKED_ONE / 8 {
                    let got = lock.try_acquire().await.expect("try_acquire answers");
                    assert_eq!(got, None, "the lock is held by the other client");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        holder.release().await.expect("the holder releases");
        let token = blocked
            .await
            .expect("task")
            .expect("the blocked call is granted");
        assert_eq!(token, 2, "the second grant");
    });
}

#[test]
fn a_call_in_flight_when_its_session_is_closed_may_have_run_and_says_so() {
    let mut cluster = Cluster::start_spec(LOCK, "client_closed_in_flight", "127.0.20.31", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    rt.block_on(async {
        let (holder, client, blocked) = acquire_blocked_behind_a_holder(&boot).await;
        // Another handle of the same client closes the session.
        client.client().close().await;
        let err = blocked
            .await
            .expect("task")
            .expect_err("the session ended before the grant");
        assert!(
            matches!(err, ClientError::OutcomeUnknown { .. }) && err.outcome_unknown(),
            "a call already sent may have run: {err:?}"
        );
        assert!(err.to_string().contains("may or may not have run"), "{err}");
        // The client goes on in a new session.
        assert_eq!(client.try_acquire().await.expect("a new session"), None);
        holder.release().await.expect("the holder releases");
        assert_eq!(client.try_acquire().await.expect("try_acquire"), Some(2));
    });
}

#[test]
fn a_call_made_after_every_replica_is_gone_times_out_instead_of_hanging() {
    let mut cluster = Cluster::start_spec(LOCK, "client_no_replica", "127.0.20.32", 1);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    rt.block_on(async {
        let options = ClientOptions {
            call_timeout: Duration::from_secs(2),
            ..ClientOptions::default()
        };
        let lock = Lock::connect_with(&boot, options).await.expect("connect");
        assert_eq!(lock.try_acquire().await.expect("try_acquire"), Some(1));
        cluster.replicas[0].kill9();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let outcome = tokio::time::timeout(Duration::from_secs(20), lock.try_acquire()).await;
        let err = outcome
            .expect("the call ends within its timeout, not never")
            .expect_err("no replica answers");
        assert!(
            matches!(err, ClientError::Unreachable { .. }) && !err.outcome_unknown(),
            "a call never sent did not run: {err:?}"
        );
    });
}
