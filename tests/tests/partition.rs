//! Real partitions in network namespaces (links cut, packets lost, no
//! resets): a lock service keeps its promises when its leader is cut off,
//! and when a lock holder is cut off.

use concoord_client::proxies::{Counter, Lock};
use concoord_integration_tests::netns::Net;
use concoord_integration_tests::{
    ContendedLock, Load, binary, granted_after_loss, log_dir, printed_token, runtime, secret_file,
    status, wait_until,
};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Replica processes inside the namespaces, killed on drop.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts a replica of `object` in namespaces 1..=3 of `net`.
fn start_replicas(net: &Net, test: &str, object: &str) -> (Processes, String) {
    start_replicas_with(net, test, object, &[])
}

/// The same, each replica started with `extra` flags too.
fn start_replicas_with(net: &Net, test: &str, object: &str, extra: &[&str]) -> (Processes, String) {
    let mut children = Vec::new();
    let first = format!("{}:14000", net.addr(1));
    for i in 1..=3 {
        let log = std::fs::File::create(log_dir(test).join(format!("replica-{i}.log")))
            .expect("log file");
        let mut cmd = net.command(i, &binary("concoord"));
        cmd.args(["replica", "-o", object, "-a", &net.addr(i), "-p", "14000"])
            .args(["--session-ttl", "5"])
            .args(extra)
            .arg("--peer-secret")
            .arg(secret_file(test))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if i > 1 {
            cmd.args(["-b", &first]);
        }
        children.push(cmd.spawn().expect("spawn a replica"));
        if i == 1 {
            wait_until(Duration::from_secs(10), "the first replica", || {
                status(&first).is_some()
            });
        }
    }
    let boot = (1..=3)
        .map(|i| format!("{}:14000", net.addr(i)))
        .collect::<Vec<_>>()
        .join(", ");
    wait_until(Duration::from_secs(20), "three members", || {
        status(&first).is_some_and(|s| s.members.len() == 3)
    });
    (Processes(children), boot)
}

/// The 1-based node that leads now.
fn leader_of(addrs: &[String]) -> usize {
    (1..=addrs.len())
        .find(|i| status(&addrs[i - 1]).is_some_and(|s| s.role == "leader"))
        .expect("a leader")
}

/// Waits until every replica has executed the same slots into the same state.
fn wait_for_agreement(addrs: &[String]) {
    wait_until(
        Duration::from_secs(30),
        "all replicas agree after healing",
        || {
            let states: Vec<_> = addrs
                .iter()
                .map(|a| status(a).map(|s| (s.executed, s.state_digest)))
                .collect();
            states.iter().all(|s| s.is_some() && *s == states[0])
        },
    );
}

fn setup(prefix: &str, subnet: u8, nodes: usize) -> Net {
    match Net::create(prefix, subnet, nodes) {
        Ok(net) => net,
        Err(e) => {
            panic!("partition tests need root and iproute2 (scripts/test.sh installs it): {e}")
        }
    }
}

#[test]
fn a_leader_cut_off_loses_no_waiter_and_the_majority_passes_the_lock_on() {
    let net = setup("ccp", 42, 3);
    let (_replicas, boot) = start_replicas(&net, "partition_leader", "lock");
    let addrs: Vec<String> = (1..=3).map(|i| format!("{}:14000", net.addr(i))).collect();
    let rt = runtime();
    let mut lock = ContendedLock::start(&rt, &boot);
    let leader = leader_of(&addrs);
    let cut = Instant::now();
    net.isolate(leader);
    wait_until(
        Duration::from_secs(15),
        "a leader among the majority",
        || {
            (1..=3)
                .filter(|i| *i != leader)
                .any(|i| status(&addrs[i - 1]).is_some_and(|s| s.role == "leader"))
        },
    );
    println!("new leader {:?} after the cut", cut.elapsed());
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), lock.holder.release()).await
    })
    .expect("the holder reached the new leader")
    .expect("release");
    let granted = lock.granted(&rt, Duration::from_secs(20));
    println!("waiter granted {:?} after the cut", cut.elapsed());
    assert_eq!(granted, lock.first + 1, "one grant, the next token");
    assert_eq!(
        rt.block_on(lock.waiter.fencing_token()).expect("read"),
        lock.first + 1
    );
    net.heal(leader);
    // The old leader catches up and holds the same state.
    wait_for_agreement(&addrs);
    rt.block_on(lock.waiter.release())
        .expect("the woken waiter holds the lock");
}

#[test]
fn a_holder_cut_off_loses_its_lock_after_the_ttl_to_a_higher_token() {
    let net = setup("ccq", 43, 4);
    let (_replicas, boot) = start_replicas(&net, "partition_holder", "lock");
    let mut holder = net.command(4, &binary("concoord"));
    holder
        .args(["call", "-b", &boot, "acquire", "--hold", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut holder = Processes(vec![holder.spawn().expect("spawn the holder")]);
    let held = printed_token(&mut holder.0[0]);
    let rt = runtime();
    let next = rt.block_on(Lock::connect(&boot)).expect("connect");
    let cut = Instant::now();
    net.isolate(4);
    let after = granted_after_loss(&rt, &next, held, cut, Duration::from_secs(30));
    println!("lock passed on {after:?} after the holder was cut off (TTL 5 s)");
    assert!(
        after >= Duration::from_secs(3),
        "not before the TTL: {after:?}"
    );
    net.heal(4);
    drop(holder);
}

/// The decided slot of the replica in namespace `i`, asked from inside it.
fn decided_inside(net: &Net, i: usize) -> Option<u64> {
    let out = net
        .command(i, &binary("concoord"))
        .args(["status", "-b", &format!("{}:14000", net.addr(i)), "--json"])
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().next()?).ok()?;
    v["decided"].as_u64()
}

#[test]
fn a_leader_cut_off_under_load_decides_nothing_alone_and_no_acknowledged_write_is_lost() {
    let net = setup("ccr", 44, 3);
    let (_replicas, boot) = start_replicas(&net, "partition_load", "counter");
    let addrs: Vec<String> = (1..=3).map(|i| format!("{}:14000", net.addr(i))).collect();
    let rt = runtime();
    let load = Load::start(&rt, &boot, 8);
    std::thread::sleep(Duration::from_secs(1));
    let leader = leader_of(&addrs);
    net.isolate(leader);
    let cut = Instant::now();
    // Whatever the cut-off leader had in flight, it cannot decide alone.
    std::thread::sleep(Duration::from_millis(500));
    let decided_then = decided_inside(&net, leader).expect("status inside the namespace");
    std::thread::sleep(Duration::from_secs(3));
    let decided_later = decided_inside(&net, leader).expect("status inside the namespace");
    assert_eq!(
        decided_then, decided_later,
        "the minority decided slots alone"
    );
    let acked_during_cut = load.acked.load(std::sync::atomic::Ordering::SeqCst);
    net.heal(leader);
    std::thread::sleep(Duration::from_secs(2));
    let (acked, errors, times) = load.stop(&rt);
    let resumed = times.iter().filter(|t| **t > cut).min().copied();
    println!(
        "{acked} increments acknowledged ({acked_during_cut} by the end of the cut); \
         first one after the cut {:?} later",
        resumed.map(|t| t.duration_since(cut))
    );
    assert!(resumed.is_some(), "the majority kept serving");
    assert_eq!(errors, 0, "every call completed (retried across the cut)");
    wait_for_agreement(&addrs);
    let value = rt
        .block_on(async { Counter::connect(&boot).await?.getvalue().await })
        .expect("read");
    assert_eq!(
        value as u64, acked,
        "exactly the acknowledged increments were applied"
    );
}

/// Property: a replica cut off long enough to be removed from the view, and
/// that missed the decision removing it, learns that it was removed once the
/// partition heals and is added back, even after the members took snapshots
/// that made them forget the views it was in (from then on they drop its
/// messages as a non-member's, and nobody tells it anything).
#[test]
fn a_replica_removed_while_cut_off_is_added_back_after_the_partition_heals() {
    let net = setup("ccm", 46, 3);
    let flags = ["--suspect-after", "1", "--remove-after", "2"];
    let (_replicas, boot) = start_replicas_with(&net, "partition_removed", "counter", &flags);
    let addrs: Vec<String> = (1..=3).map(|i| format!("{}:14000", net.addr(i))).collect();
    let rt = runtime();
    let load = Load::start(&rt, &boot, 8);
    let leader = leader_of(&addrs);
    let victim = leader % 3 + 1;
    let victim_node = status(&addrs[victim - 1]).expect("status").node;
    net.isolate(victim);
    let lead = &addrs[leader - 1];
    wait_until(
        Duration::from_secs(15),
        "the cut-off replica's removal",
        || status(lead).is_some_and(|s| s.members.len() == 2),
    );
    let removed_at = status(lead).expect("status").decided;
    wait_until(
        Duration::from_secs(60),
        "snapshots past the removal",
        || {
            (1..=3).filter(|i| *i != victim).all(|i| {
                status(&addrs[i - 1]).is_some_and(|s| s.snapshot_slot > removed_at + 1_100)
            })
        },
    );
    net.heal(victim);
    wait_until(
        Duration::from_secs(30),
        "the healed replica to be added back",
        || status(lead).is_some_and(|s| s.members.iter().any(|m| m.node == victim_node)),
    );
    let (acked, errors, _) = load.stop(&rt);
    assert_eq!(errors, 0);
    wait_for_agreement(&addrs);
    let value = rt
        .block_on(async { Counter::connect(&boot).await?.getvalue().await })
        .expect("read");
    assert_eq!(value as u64, acked);
}
