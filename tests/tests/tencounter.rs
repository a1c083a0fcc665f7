//! The seed's "ConCoordifying Python Objects", in Rust: TenCounter served by
//! its own three-line replica binary and called through the macro's proxy and
//! through the standalone file `concoord object` wrote, across a leader kill.

use concoord_integration_tests::{Cluster, ReplicaSpec, runtime};
use tencounter::{TenCounterBlockingProxy, TenCounterProxy};

/// The proxy `concoord object -o tests/tencounter/src/lib.rs::TenCounter`
/// generated (checked against the generator by `object_cli.rs`).
mod standalone {
    include!("../tencounter/src/tencounter_proxy.rs");
}

/// The proxy types `concoord object -p 1..3` generates (type 0, the
/// default, is `standalone` above).
mod p1 {
    include!("../tencounter/generated/tencounter_proxy_p1.rs");
}
mod p2 {
    include!("../tencounter/generated/tencounter_proxy_p2.rs");
}
mod p3 {
    include!("../tencounter/generated/tencounter_proxy_p3.rs");
}

const TENCOUNTER: ReplicaSpec = ReplicaSpec {
    binary: "tencounter-replica",
    object: None,
};

#[test]
fn tencounter_is_served_by_its_own_binary_and_called_through_both_proxies_across_a_leader_kill() {
    let mut cluster = Cluster::start_spec(TENCOUNTER, "tencounter", "127.0.6.1", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    rt.block_on(async {
        let macro_proxy = TenCounterProxy::connect(&boot).await.expect("connect");
        let file_proxy = standalone::TenCounterProxy::connect(&boot)
            .await
            .expect("connect");
        macro_proxy.increment().await.expect("increment");
        file_proxy.increment().await.expect("increment");
        assert_eq!(macro_proxy.getvalue().await.expect("read"), 20);
        assert_eq!(
            file_proxy.describe().await.expect("read"),
            "The counter value is 20"
        );
    });

    let leader = cluster.leader().expect("a leader");
    cluster.replicas[leader].kill9();

    rt.block_on(async {
        let macro_proxy = TenCounterProxy::connect(&boot).await.expect("connect");
        let file_proxy = standalone::TenCounterProxy::connect(&boot)
            .await
            .expect("connect");
        macro_proxy
            .decrement()
            .await
            .expect("decrement after the kill");
        file_proxy
            .increment()
            .await
            .expect("increment after the kill");
        assert_eq!(file_proxy.getvalue().await.expect("read"), 20);
    });

    // The blocking proxy, from a plain thread.
    let blocking_boot = cluster.bootstrap_live();
    let value = std::thread::spawn(move || {
        let p = TenCounterBlockingProxy::connect(&blocking_boot).expect("connect");
        p.increment().expect("increment");
        p.getvalue().expect("read")
    })
    .join()
    .expect("thread");
    assert_eq!(value, 30);

    // And from inside async code, where a proxy built on tokio's `block_on`
    // panics ("Cannot start a runtime from within a runtime"); the proxy is
    // dropped there too.
    let inside_boot = cluster.bootstrap_live();
    let value = rt.block_on(async move {
        let p = TenCounterBlockingProxy::connect(&inside_boot).expect("connect inside async code");
        p.getvalue().expect("read inside async code")
    });
    assert_eq!(value, 30);
}

#[test]
fn concoord_init_resets_the_object_on_every_replica() {
    let mut cluster = Cluster::start_spec(TENCOUNTER, "tencounter_init", "127.0.6.2", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    rt.block_on(async {
        let p = TenCounterProxy::connect(&boot).await.expect("connect");
        for _ in 0..5 {
            p.increment().await.expect("increment");
        }
        p.concoord_init(Some(7)).await.expect("re-initialise");
        assert_eq!(p.getvalue().await.expect("read"), 7);
    });
    let states = cluster.settled_states();
    assert!(
        states.iter().all(|s| *s == states[0]),
        "every replica holds the same state: {states:?}"
    );
    // Prove it on a follower: kill the leader; the new leader still reads 7.
    let leader = cluster.leader().expect("a leader");
    cluster.replicas[leader].kill9();
    let live = cluster.bootstrap_live();
    rt.block_on(async {
        let p = TenCounterProxy::connect(&live).await.expect("connect");
        assert_eq!(p.getvalue().await.expect("read"), 7);
        p.concoord_init(None)
            .await
            .expect("re-initialise to the default");
        assert_eq!(p.getvalue().await.expect("read"), 0);
    });
}

#[test]
fn a_panicking_method_fails_only_its_call_identically_on_every_replica() {
    let mut cluster = Cluster::start_spec(TENCOUNTER, "tencounter_panic", "127.0.6.3", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    rt.block_on(async {
        let p = TenCounterProxy::connect(&boot).await.expect("connect");
        p.increment().await.expect("increment");
        let err = p.divide(0).await.expect_err("dividing by zero panics");
        match err {
            concoord::ClientError::Call(concoord_client::CallError::Panicked(msg)) => {
                assert!(msg.contains("divide by zero"), "{msg}");
            }
            other => panic!("expected a panic reply, got {other:?}"),
        }
        // The replicas keep serving.
        p.increment().await.expect("increment after the panic");
        p.divide(2).await.expect("a good division");
        assert_eq!(p.getvalue().await.expect("read"), 10);
    });
    let states = cluster.settled_states();
    assert!(states.iter().all(|s| *s == states[0]), "{states:?}");
}

#[test]
fn every_generated_proxy_type_calls_the_object() {
    let mut cluster = Cluster::start_spec(TENCOUNTER, "tencounter_types", "127.0.6.4", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    rt.block_on(async {
        let basic = standalone::TenCounterProxy::connect(&boot)
            .await
            .expect("type 0");
        let batching = p2::TenCounterProxy::connect(&boot).await.expect("type 2");
        let pipelined = p3::TenCounterProxy::connect(&boot).await.expect("type 3");
        // Concurrent calls through the batching and pipelined proxies.
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (b, p) = (batching.clone(), pipelined.clone());
            tasks.push(tokio::spawn(async move {
                b.increment().await.expect("type 2 increment");
                p.increment().await.expect("type 3 increment");
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        basic.increment().await.expect("type 0 increment");
        assert_eq!(basic.getvalue().await.expect("read"), 410);
    });
    let value = std::thread::spawn(move || {
        let blocking = p1::TenCounterBlockingProxy::connect(&boot).expect("type 1");
        blocking.decrement().expect("type 1 decrement");
        blocking.getvalue().expect("read")
    })
    .join()
    .expect("thread");
    assert_eq!(value, 400);
}

#[test]
fn a_users_replica_binary_help_names_its_object_and_only_flags_that_apply() {
    let out = std::process::Command::new(concoord_integration_tests::binary("tencounter-replica"))
        .arg("--help")
        .output()
        .expect("run tencounter-replica --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("TenCounter"), "names the object:\n{help}");
    assert!(
        !help.contains("--objectname"),
        "no -o in a one-object binary:\n{help}"
    );
    assert!(
        help.contains("--boot") && help.contains("--writetodisk"),
        "{help}"
    );
}
