//! The synchronization objects against real 3-replica clusters: each
//! primitive's semantics with concurrent clients, a blocked waiter across a
//! kill -9 of the leader, a holder killed with SIGKILL losing its lock after
//! the session TTL, and a blocked call retried after its wake-up.

use concoord_client::MethodError;
use concoord_client::proxies::{Barrier, BoundedSemaphore, Condition, Lock, Semaphore};
use concoord_dsync::{BarrierError, LockError, SemaphoreError};
use concoord_integration_tests::{
    Cluster, ContendedLock, ReplicaSpec, binary, granted_after_loss, printed_token, runtime,
    status, wait_until,
};
use concoord_transport::handshake::connect_client;
use concoord_transport::wire::{CallRequest, ClientFrame, ReplicaFrame};
use futures::{SinkExt, StreamExt};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const LOCK: ReplicaSpec = ReplicaSpec::builtin("concoord.object.lock.Lock");

/// A 3-replica instance of the ready-made object `short` (e.g. `lock`) on
/// `ip`, with its bootstrap string.
fn cluster(short: &'static str, test: &str, ip: &str) -> (Cluster, String) {
    let mut c = Cluster::start_spec(ReplicaSpec::builtin(short), test, ip, 3);
    let boot = c.bootstrap_live();
    (c, boot)
}

#[test]
fn a_lock_is_held_by_one_client_at_a_time_and_its_tokens_only_grow() {
    let (_cluster, boot) = cluster("lock", "dsync_mutex", "127.0.20.1");
    let rt = runtime();
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let tokens = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (boot, inside, overlaps) = (boot.clone(), inside.clone(), overlaps.clone());
            tasks.push(tokio::spawn(async move {
                let lock = Lock::connect(&boot).await.expect("connect");
                let mut mine = Vec::new();
                for _ in 0..15 {
                    let token = lock.acquire().await.expect("acquire");
                    if inside.swap(true, Ordering::SeqCst) {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    inside.store(false, Ordering::SeqCst);
                    lock.release().await.expect("holder releases");
                    mine.push(token);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            let mine = t.await.expect("task");
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "a client's tokens grow"
            );
            all.extend(mine);
        }
        all
    });
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two clients held the lock at once"
    );
    let mut sorted = tokens.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 90, "every grant has its own fencing token");
    assert_eq!(sorted.last().copied(), Some(90));
    rt.block_on(async {
        let lock = Lock::connect(&boot).await.expect("connect");
        assert!(!lock.locked().await.expect("read"));
        match lock.release().await {
            Err(MethodError::Returned(LockError::NotLocked)) => {}
            other => panic!("releasing a free lock must fail: {other:?}"),
        }
        let t = lock.try_acquire().await.expect("try");
        assert_eq!(t, Some(91));
        let other = Lock::connect(&boot).await.expect("connect");
        assert_eq!(other.try_acquire().await.expect("try"), None);
        assert_eq!(
            other
                .acquire_timeout(Duration::from_millis(300))
                .await
                .expect("call"),
            None,
            "a timed-out acquire gives up"
        );
        match other.release().await {
            Err(MethodError::Returned(LockError::NotHolder)) => {}
            r => panic!("only the holder releases: {r:?}"),
        }
        lock.release().await.expect("release");
        assert!(
            !lock.locked().await.expect("read"),
            "the timed-out waiter was not granted"
        );
    });
}

#[test]
fn fencing_tokens_keep_growing_across_concoord_init_and_the_deposed_holder_is_told() {
    let (_cluster, boot) = cluster("lock", "dsync_reinit", "127.0.20.12");
    let rt = runtime();
    rt.block_on(async {
        let holder = Lock::connect(&boot).await.expect("connect");
        let queued = Lock::connect(&boot).await.expect("connect");
        let operator = Lock::connect(&boot).await.expect("connect");
        let first = holder.acquire().await.expect("acquire");
        let waiting = tokio::spawn(async move { queued.acquire().await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        operator.concoord_init().await.expect("re-initialise");
        let abandoned = waiting.await.expect("task");
        assert!(
            abandoned.is_err(),
            "the queued acquire is answered, never granted by the old lock: {abandoned:?}"
        );
        assert!(!operator.locked().await.expect("read"), "re-initialised");
        let next = operator.acquire().await.expect("acquire");
        assert!(
            next > first,
            "a grant after __concoordinit__ is fenced above every earlier one: {next} <= {first}"
        );
        match holder.release().await {
            Err(MethodError::Returned(LockError::Revoked { token })) => assert_eq!(token, first),
            other => panic!("the deposed holder must be told: {other:?}"),
        }
        operator.release().await.expect("release");
    });
}

#[test]
fn waiters_get_the_lock_in_the_order_they_asked_for_it() {
    let (cluster, boot) = cluster("lock", "dsync_fifo", "127.0.20.9");
    let rt = runtime();
    rt.block_on(async {
        let holder = Lock::connect(&boot).await.expect("connect");
        let first = holder.acquire().await.expect("acquire");
        let mut waiters = Vec::new();
        for i in 0..4u64 {
            let lock = Lock::connect(&boot).await.expect("connect");
            waiters.push(tokio::spawn(async move {
                let token = lock.acquire().await.expect("acquire");
                lock.release().await.expect("release");
                (i, token)
            }));
            // Each waiter is queued before the next one asks.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        holder.release().await.expect("release");
        for w in waiters {
            let (i, token) = tokio::time::timeout(Duration::from_secs(10), w)
                .await
                .expect("granted")
                .expect("task");
            assert_eq!(token, first + 1 + i, "waiter {i} was served out of order");
        }
    });
    // Dropped clients end their sessions at once, freeing their entries.
    let addr = cluster.replicas[0].addr.clone();
    wait_until(Duration::from_secs(5), "sessions closed", || {
        status(&addr).is_some_and(|s| s.client_sessions == 0)
    });
}

#[test]
fn a_semaphore_never_lets_more_holders_in_than_it_has_permits() {
    let (_cluster, boot) = cluster("semaphore", "dsync_semaphore", "127.0.20.2");
    let rt = runtime();
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let setup = Semaphore::connect(&boot).await.expect("connect");
        setup.concoord_init(Some(3)).await.expect("three permits");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (boot, inside, most) = (boot.clone(), inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let sem = Semaphore::connect(&boot).await.expect("connect");
                for _ in 0..10 {
                    assert!(sem.acquire().await.expect("acquire"));
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    sem.release().await.expect("release");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(
            setup.value().await.expect("read"),
            3,
            "every permit came back"
        );
    });
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 3, "{most} holders at once with 3 permits");
    assert_eq!(most, 3, "the permits were used concurrently");
}

#[test]
fn a_bounded_semaphore_refuses_to_be_released_beyond_its_value() {
    let (_cluster, boot) = cluster("boundedsemaphore", "dsync_bounded", "127.0.20.3");
    runtime().block_on(async {
        let sem = BoundedSemaphore::connect(&boot).await.expect("connect");
        sem.concoord_init(Some(2)).await.expect("init");
        assert!(sem.acquire().await.expect("acquire"));
        sem.release().await.expect("a held permit goes back");
        match sem.release().await {
            Err(MethodError::Returned(SemaphoreError::OverReleased { bound: 2 })) => {}
            other => panic!("over-release must fail: {other:?}"),
        }
        assert_eq!(sem.value().await.expect("read"), 2);
        assert!(sem.acquire().await.expect("acquire"));
        assert!(sem.acquire().await.expect("acquire"));
        assert!(
            !sem.acquire_timeout(Duration::from_millis(300))
                .await
                .expect("call")
        );
        // Below the bound any client may release, as in Python: the permit
        // held longest (one of `sem`'s) goes back.
        let other = BoundedSemaphore::connect(&boot).await.expect("connect");
        other
            .release()
            .await
            .expect("a client holding no permit releases below the bound");
        assert_eq!(sem.value().await.expect("read"), 1);
        // `sem`'s session ends: only the permit it still holds comes back.
        sem.client().close().await;
        assert_eq!(other.value().await.expect("read"), 2);
    });
}

#[test]
fn a_consumed_semaphore_permit_stays_taken_when_its_consumer_session_ends() {
    let (_cluster, boot) = cluster("semaphore", "dsync_consumed", "127.0.20.21");
    runtime().block_on(async {
        let producer = Semaphore::connect(&boot).await.expect("connect");
        producer.concoord_init(Some(0)).await.expect("no items");
        producer.release().await.expect("produce one item");
        let consumer = Semaphore::connect(&boot).await.expect("connect");
        assert!(consumer.acquire().await.expect("consume it"));
        consumer.client().close().await;
        assert_eq!(
            producer.value().await.expect("read"),
            0,
            "the consumed item did not come back"
        );
        assert!(!producer.try_acquire().await.expect("try"));
    });
}

#[test]
fn a_barrier_party_whose_session_expires_breaks_the_barrier() {
    let mut cluster = Cluster::start_with(
        ReplicaSpec::builtin("barrier"),
        "dsync_barrier_broken",
        "127.0.20.22",
        3,
        &["--session-ttl", "2"],
        false,
    );
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let setup = rt.block_on(Barrier::connect(&boot)).expect("connect");
    rt.block_on(setup.concoord_init(Some(3)))
        .expect("three parties");
    let waiting = {
        let setup = setup.clone();
        rt.spawn(async move { setup.wait().await })
    };
    let mut party = Command::new(binary("concoord"))
        .args(["call", "-b", &boot, "wait", "--timeout", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the second party");
    let reader = rt.block_on(Barrier::connect(&boot)).expect("connect");
    wait_until(Duration::from_secs(10), "two parties waiting", || {
        rt.block_on(reader.n_waiting()).ok() == Some(2)
    });
    let _ = party.kill();
    let _ = party.wait();
    let woke = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), waiting).await })
        .expect("the other party is woken once the session expires")
        .expect("task")
        .expect("call");
    assert_eq!(woke, Err(BarrierError::Broken));
    assert_eq!(
        rt.block_on(reader.wait()).expect("call"),
        Err(BarrierError::Broken),
        "it stays broken"
    );
    rt.block_on(setup.concoord_init(Some(2)))
        .expect("start over");
    assert_eq!(rt.block_on(reader.n_waiting()).expect("read"), 0);
}

#[test]
fn a_barrier_releases_all_its_parties_every_round() {
    let (_cluster, boot) = cluster("barrier", "dsync_barrier", "127.0.20.4");
    runtime().block_on(async {
        let setup = Barrier::connect(&boot).await.expect("connect");
        setup.concoord_init(Some(4)).await.expect("four parties");
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let boot = boot.clone();
            tasks.push(tokio::spawn(async move {
                let b = Barrier::connect(&boot).await.expect("connect");
                let mut indices = Vec::new();
                for _ in 0..5 {
                    indices.push(b.wait().await.expect("wait").expect("not broken"));
                }
                indices
            }));
        }
        let mut per_round = vec![Vec::new(); 5];
        for t in tasks {
            let indices = tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("every party was released every round")
                .expect("task");
            for (round, i) in indices.into_iter().enumerate() {
                per_round[round].push(i);
            }
        }
        for mut round in per_round {
            round.sort_unstable();
            assert_eq!(round, vec![0, 1, 2, 3], "each party has its own index");
        }
        assert_eq!(setup.rounds().await.expect("read"), 5);
        assert_eq!(
            setup
                .wait_timeout(Duration::from_millis(300))
                .await
                .expect("call"),
            Ok(None)
        );
        assert_eq!(
            setup.n_waiting().await.expect("read"),
            0,
            "the timed-out party left"
        );
    });
}

#[test]
fn a_condition_wait_releases_the_lock_and_returns_holding_it() {
    let (_cluster, boot) = cluster("condition", "dsync_condition", "127.0.20.5");
    runtime().block_on(async {
        let consumer = Condition::connect(&boot).await.expect("connect");
        let producer = Condition::connect(&boot).await.expect("connect");
        consumer.acquire().await.expect("acquire");
        let waiting = {
            let consumer = consumer.clone();
            tokio::spawn(async move { consumer.wait().await })
        };
        // The producer gets the lock only because wait released it.
        let producer_token = tokio::time::timeout(Duration::from_secs(10), producer.acquire())
            .await
            .expect("wait released the lock")
            .expect("acquire");
        assert_eq!(producer.notify(None).await.expect("notify"), 1);
        assert!(
            !waiting.is_finished(),
            "the waiter needs the lock back first"
        );
        producer.release().await.expect("release");
        let woke = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("woken")
            .expect("task")
            .expect("call")
            .expect("the waiter held the lock");
        assert!(woke.notified);
        assert!(
            woke.token > producer_token,
            "the wait returns the token of the lock it took back"
        );
        // It holds the lock again: the producer cannot take it.
        assert!(
            producer.try_acquire_lock_for_test().await.is_none(),
            "the woken waiter holds the lock"
        );
        let timed_out = consumer
            .wait_timeout(Duration::from_millis(300))
            .await
            .expect("call")
            .expect("the waiter held the lock");
        assert!(!timed_out.notified && timed_out.token > woke.token);
        consumer
            .release()
            .await
            .expect("the timed-out waiter holds the lock again");
        match producer.notify(None).await {
            Err(MethodError::Returned(LockError::NotLocked)) => {}
            other => panic!("notify without the lock must fail: {other:?}"),
        }
    });
}

/// The condition has no try_acquire; a short timed acquire stands in.
trait TryLock {
    async fn try_acquire_lock_for_test(&self) -> Option<u64>;
}

impl TryLock for Condition {
    async fn try_acquire_lock_for_test(&self) -> Option<u64> {
        self.client()
            .call_waiting("acquire", &(), Duration::from_millis(300))
            .await
            .expect("call")
    }
}

#[test]
fn a_waiter_blocked_while_the_leader_is_killed_is_woken_exactly_once() {
    let (mut cluster, boot) = cluster("lock", "dsync_failover", "127.0.20.6");
    let rt = runtime();
    let mut lock = ContendedLock::start(&rt, &boot);
    let leader = cluster.leader().expect("a leader");
    cluster.replicas[leader].kill9();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        lock.still_blocked(),
        "still blocked: the holder has not released"
    );
    rt.block_on(lock.holder.release())
        .expect("release after the failover");
    let granted = lock.granted(&rt, Duration::from_secs(15));
    assert_eq!(granted, lock.first + 1, "one grant, the next token");
    // Woken once: no second grant happened behind its back.
    assert_eq!(
        rt.block_on(lock.waiter.fencing_token()).expect("read"),
        lock.first + 1
    );
    rt.block_on(lock.waiter.release())
        .expect("the woken waiter holds the lock");
    assert!(!rt.block_on(lock.waiter.locked()).expect("read"));
}

#[test]
fn a_killed_holder_loses_the_lock_after_its_session_ttl() {
    let mut cluster = Cluster::start_with(
        LOCK,
        "dsync_holder_dies",
        "127.0.20.7",
        3,
        &["--session-ttl", "3"],
        false,
    );
    let boot = cluster.bootstrap_live();
    let mut holder = Command::new(binary("concoord"))
        .args(["call", "-b", &boot, "acquire", "--hold", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the holder");
    let held = printed_token(&mut holder);
    let started = Instant::now();
    let cli = Command::new(binary("concoord"))
        .args(["call", "-b", &boot, "acquire", "--timeout", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run concoord call");
    assert_eq!(
        cli.code(),
        Some(4),
        "a blocked acquire times out with exit code 4"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let rt = runtime();
    let next = rt.block_on(Lock::connect(&boot)).expect("connect");
    assert_eq!(
        rt.block_on(next.acquire_timeout(Duration::from_secs(5)))
            .expect("call"),
        None,
        "the live holder keeps the lock past the TTL"
    );
    let _ = holder.kill();
    let _ = holder.wait();
    let killed = Instant::now();
    let after = granted_after_loss(&rt, &next, held, killed, Duration::from_secs(20));
    println!("lock passed on {after:?} after SIGKILL of its holder (TTL 3 s)");
    assert!(
        after >= Duration::from_secs(2),
        "not before the TTL ({after:?})"
    );
}

#[test]
fn a_blocked_call_retried_after_its_wake_up_gets_the_wake_up_reply() {
    let (mut cluster, boot) = cluster("lock", "dsync_retry", "127.0.20.8");
    let leader = cluster.leader().expect("a leader");
    let leader_addr = cluster.replicas[leader].addr.clone();
    let rt = runtime();
    rt.block_on(async {
        let holder = Lock::connect(&boot).await.expect("connect");
        let first = holder.acquire().await.expect("acquire");
        let acquire = CallRequest {
            seq: 1,
            acked: 0,
            method: "acquire".into(),
            args: vec![0x90],
            done: Vec::new(),
        };
        let (_, ticket, conn) = connect_client(&leader_addr, None, None, Duration::from_secs(2))
            .await
            .expect("connect");
        let (mut sink, mut stream) = conn.split();
        sink.send(ClientFrame::Call(acquire.clone()))
            .await
            .expect("send");
        let blocked = next_reply(&mut stream).await;
        assert!(
            matches!(blocked, ReplicaFrame::Blocked { seq: 1 }),
            "{blocked:?}"
        );
        drop((sink, stream));
        // Woken while nobody listens.
        holder.release().await.expect("release");
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Retried at another replica, then at the leader: the reply it was
        // woken with, never "blocked" again.
        let other = cluster_other(&boot, &leader_addr);
        for addr in [other, leader_addr.clone()] {
            // The same session, resumed with its ticket.
            let (_, _, conn) =
                connect_client(&addr, Some(ticket.clone()), None, Duration::from_secs(2))
                    .await
                    .expect("connect");
            let (mut sink, mut stream) = conn.split();
            sink.send(ClientFrame::Call(acquire.clone()))
                .await
                .expect("send");
            match next_reply(&mut stream).await {
                ReplicaFrame::Reply {
                    seq: 1,
                    outcome: Ok(bytes),
                } => {
                    let token: u64 = rmp_serde::from_slice(&bytes).expect("a token");
                    assert_eq!(token, first + 1);
                }
                ReplicaFrame::Reply {
                    outcome: Err(e), ..
                } if addr != leader_addr => {
                    // A follower redirects; the leader answers below.
                    assert!(
                        matches!(e, concoord_client::CallError::NotLeader { .. }),
                        "{e:?}"
                    );
                }
                other => panic!("expected the wake-up reply at {addr}, got {other:?}"),
            }
        }
    });
}

fn cluster_other(boot: &str, leader: &str) -> String {
    boot.split(',')
        .map(|s| s.trim().to_string())
        .find(|a| a != leader)
        .expect("another replica")
}

async fn next_reply<S>(stream: &mut S) -> ReplicaFrame
where
    S: futures::Stream<Item = Result<ReplicaFrame, concoord_transport::CodecError>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a frame in time")
            .expect("connection open")
            .expect("a valid frame");
        if !matches!(
            frame,
            ReplicaFrame::View { .. } | ReplicaFrame::Alive { .. }
        ) {
            return frame;
        }
    }
}

#[test]
fn a_blocked_call_waits_past_the_call_timeout_until_it_is_granted() {
    let (_cluster, boot) = cluster("lock", "dsync_long_wait", "127.0.20.10");
    runtime().block_on(async {
        let options = concoord_client::ClientOptions {
            call_timeout: Duration::from_secs(1),
            ..concoord_client::ClientOptions::default()
        };
        let holder = Lock::connect_with(&boot, options.clone())
            .await
            .expect("connect");
        let first = holder.acquire().await.expect("acquire");
        let waiter = Lock::connect_with(&boot, options).await.expect("connect");
        let blocked = tokio::spawn(async move { waiter.acquire().await });
        // Three call timeouts long: a blocked call is not a lost one.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!blocked.is_finished(), "still waiting, not timed out");
        holder.release().await.expect("release");
        let token = tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .expect("granted")
            .expect("task")
            .expect("a grant, not a timeout");
        assert_eq!(token, first + 1);
    });
}

#[test]
fn a_lock_and_its_waiter_survive_every_durable_replica_crashing_at_once() {
    let mut cluster = Cluster::start_with(LOCK, "dsync_durable", "127.0.20.11", 3, &[], true);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let mut lock = ContendedLock::start(&rt, &boot);
    for r in cluster.replicas.iter_mut() {
        r.kill9();
    }
    for i in 0..3 {
        cluster.restart(i);
    }
    cluster.wait_for_members(3);
    // The holder's session and the queued waiter came back from disk.
    assert!(
        rt.block_on(lock.holder.locked()).expect("read"),
        "still held"
    );
    assert!(lock.still_blocked());
    rt.block_on(lock.holder.release())
        .expect("the holder still holds it");
    let token = lock.granted(&rt, Duration::from_secs(15));
    assert_eq!(token, lock.first + 1);
}
