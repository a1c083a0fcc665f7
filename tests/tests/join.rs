//! Replicas joining with -b under load catch up; afterwards the instance
//! survives losing two original replicas, as the new view still has a majority.

use concoord_integration_tests::{Cluster, Load, runtime, status, wait_until};
use std::time::Duration;

#[test]
fn replicas_joining_under_load_catch_up_and_the_instance_survives_losing_two_originals() {
    let mut cluster = Cluster::start("join", "127.0.3.1", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let load = Load::start(&rt, &boot, 4);
    std::thread::sleep(Duration::from_secs(1));

    // Two replicas join while clients keep writing.
    let d = cluster.add_replica();
    let e = cluster.add_replica();
    cluster.wait_for_members(5);
    let (da, ea) = (
        cluster.replicas[d].addr.clone(),
        cluster.replicas[e].addr.clone(),
    );
    let leader_addr = {
        let l = cluster.leader().expect("a leader");
        cluster.replicas[l].addr.clone()
    };
    wait_until(
        Duration::from_secs(30),
        "the new replicas to catch up",
        || {
            let target = status(&leader_addr).map_or(u64::MAX, |s| s.decided);
            [&da, &ea].iter().all(|a| {
                status(a).is_some_and(|s| s.decided + 50 >= target && s.members.len() == 5)
            })
        },
    );

    // Lose two of the three originals (the leader among them if it is one).
    let originals: Vec<usize> = match cluster.leader() {
        Some(l) if l < 3 => vec![l, (l + 1) % 3],
        _ => vec![0, 1],
    };
    for i in originals {
        cluster.replicas[i].kill9();
    }
    std::thread::sleep(Duration::from_secs(4));
    let (acked, errors, _) = load.stop(&rt);

    let value = cluster.counter_value(&rt);
    println!("{acked} increments acknowledged across two joins and two kills");
    assert_eq!(errors, 0);
    assert_eq!(value as u64, acked);
    // The new replicas hold the full state: they agree with the survivor.
    wait_until(Duration::from_secs(10), "replicas to agree", || {
        let s: Vec<u64> = [&da, &ea]
            .iter()
            .filter_map(|a| status(a).map(|s| s.decided))
            .collect();
        s.len() == 2 && s[0] == s[1]
    });
}
