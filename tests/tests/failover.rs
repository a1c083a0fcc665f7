//! kill -9 of the leader under load: clients continue within seconds, and the
//! final count equals the acknowledged increments exactly (nothing lost,
//! nothing applied twice).

use concoord_integration_tests::{Cluster, Load, runtime};
use std::time::{Duration, Instant};

#[test]
fn killing_the_leader_mid_load_loses_no_acknowledged_increment_and_applies_none_twice() {
    let mut cluster = Cluster::start("failover", "127.0.2.1", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let load = Load::start(&rt, &boot, 8);
    std::thread::sleep(Duration::from_millis(1500));
    let leader = cluster.leader().expect("a leader");
    let killed_at = Instant::now();
    cluster.replicas[leader].kill9();
    std::thread::sleep(Duration::from_secs(5));
    let (acked, errors, times) = load.stop(&rt);

    let resumed = times
        .iter()
        .filter(|t| **t > killed_at)
        .min()
        .expect("increments succeeded after the kill");
    let failover = resumed.duration_since(killed_at);
    println!("failover after kill -9 of the leader: {failover:?}; {acked} increments acknowledged");
    assert!(
        failover < Duration::from_secs(5),
        "clients stalled {failover:?}"
    );

    let value = cluster.counter_value(&rt);
    assert_eq!(
        errors, 0,
        "every call completed (retried across the failover)"
    );
    assert_eq!(
        value as u64, acked,
        "exactly the acknowledged increments were applied"
    );
}
