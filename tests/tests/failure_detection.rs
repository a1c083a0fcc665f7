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

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// Property: a replica removed while it could not answer (paused, as by a
/// partition or a long stall), and that missed the decision removing it,
/// finds out it was removed and is added back once it runs again — even
/// after so many slots that the members no longer take its messages.
#[test]
fn a_replica_removed_while_paused_is_added_back_when_it_resumes() {
    let mut cluster = Cluster::start_with(COUNTER, "fd_paused", "127.0.13.4", 3, FAST, false);
    let leader = cluster.leader().expect("a leader");
    let victim = (leader + 1) % 3;
    let victim_addr = cluster.replicas[victim].addr.clone();
    let victim_node = status(&victim_addr).expect("status").node;
    // Paused once it knows it is a member (a joiner paused before it heard
    // anything is another case).
    wait_until(
        Duration::from_secs(10),
        "the victim to know the view",
        || status(&victim_addr).is_some_and(|s| s.members.len() == 3),
    );
    let pid = cluster.replicas[victim].pid().expect("running");
    let rt = runtime();
    let load = concoord_integration_tests::Load::start(&rt, &cluster.replicas[leader].addr, 4);
    signal(pid, "-STOP");
    wait_until(
        Duration::from_secs(15),
        "the paused replica's removal",
        || members(&mut cluster) == 2,
    );
    // Until the members took a snapshot far enough past the removal to
    // forget the views that held the paused replica (they keep the views
    // of `log_retain_after_snapshot` slots below a snapshot): from then on
    // they drop its messages as a non-member's.
    let removed_at = status(&cluster.replicas[leader].addr)
        .expect("status")
        .decided;
    wait_until(
        Duration::from_secs(40),
        "a snapshot past the removal",
        || {
            cluster.replicas.iter().enumerate().all(|(i, r)| {
                i == victim || status(&r.addr).is_some_and(|s| s.snapshot_slot > removed_at + 1_100)
            })
        },
    );
    signal(pid, "-CONT");
    wait_until(
        Duration::from_secs(20),
        "the resumed replica to be added back and caught up",
        || {
            let lead = status(&cluster.replicas[leader].addr);
            let back = status(&victim_addr);
            match (lead, back) {
                (Some(l), Some(b)) => {
                    l.members.iter().any(|m| m.node == victim_node)
                        && b.decided + 1_000 > l.decided
                        && b.decided > removed_at
                }
                _ => false,
            }
        },
    );
    let (acked, _, _) = load.stop(&rt);
    assert!(acked > 0);
}
