//! Failure detection as in the original: the leader suspects a silent
//! replica, then removes it from the view (through the log); a durable
//! replica that comes back finds itself removed and is added again under
//! its own identity.

use concoord_integration_tests::{COUNTER, Cluster, runtime, status, wait_until};
use std::time::Duration;

const FAST: &[&str] = &["--suspect-after", "1", "--remove-after", "2"];

fn members(cluster: &mut Cluster) -> usize {
    let leader = cluster.leader().expect("a leader");
    status(&cluster.replicas[leader].addr).map_or(0, |s| s.members.len())
}

#[test]
fn a_silent_replica_is_removed_and_the_instance_keeps_serving() {
    let mut cluster = Cluster::start_with(COUNTER, "fd_remove", "127.0.13.1", 3, FAST, false);
    let leader = cluster.leader().expect("a leader");
    let victim = (leader + 1) % 3;
    cluster.replicas[victim].kill9();
    wait_until(
        Duration::from_secs(15),
        "the silent replica's removal",
        || members(&mut cluster) == 2,
    );
    let log = std::fs::read_to_string(&cluster.replicas[leader].log).expect("log");
    assert!(log.contains("replica suspected"), "suspicion is logged");
    assert!(
        log.contains("removing a silent replica"),
        "removal is logged"
    );
    let rt = runtime();
    let before = cluster.counter_value(&rt);
    rt.block_on(async {
        let c = concoord_client::proxies::Counter::connect(&cluster.bootstrap_live())
            .await
            .expect("connect");
        c.increment().await.expect("two of two serve");
    });
    assert_eq!(cluster.counter_value(&rt), before + 1);
}

#[test]
fn a_durable_replica_removed_while_down_is_added_back_under_its_own_identity() {
    let mut cluster = Cluster::start_with(COUNTER, "fd_rejoin", "127.0.13.2", 3, FAST, true);
    let leader = cluster.leader().expect("a leader");
    let victim = (leader + 1) % 3;
    let addr = cluster.replicas[victim].addr.clone();
    let node = status(&addr).expect("status").node;
    cluster.replicas[victim].kill9();
    wait_until(Duration::from_secs(15), "the removal", || {
        members(&mut cluster) == 2
    });
    cluster.restart(victim);
    wait_until(
        Duration::from_secs(20),
        "the replica to be added back",
        || {
            status(&addr)
                .is_some_and(|s| s.members.iter().any(|m| m.node == node) && s.members.len() == 3)
        },
    );
    assert_eq!(status(&addr).expect("status").node, node, "same identity");
    let states = cluster.settled_states();
    assert!(states.iter().all(|s| *s == states[0]), "{states:?}");
}

#[test]
fn with_no_auto_remove_a_silent_replica_stays_in_the_view() {
    let mut flags = FAST.to_vec();
    flags.push("--no-auto-remove");
    let mut cluster = Cluster::start_with(COUNTER, "fd_keep", "127.0.13.3", 3, &flags, false);
    let leader = cluster.leader().expect("a leader");
    cluster.replicas[(leader + 1) % 3].kill9();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(members(&mut cluster), 3);
}
