//! Durable replicas (`-w`) under kill -9: nothing acknowledged is lost when
//! every replica dies at once, crashed replicas catch up with bounded logs,
//! torn writes are cut while corruption stops start-up, and an unusable data
//! directory is a clear error.

use concoord_client::proxies::KeyValue;
use concoord_integration_tests::{
    COUNTER, Cluster, Load, Replica, ReplicaSpec, binary, output_within, runtime, secret_file,
    status, wait_until,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const KEYVALUE: ReplicaSpec = ReplicaSpec::builtin("concoord.object.keyvalue.KeyValue");

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

#[test]
fn no_acknowledged_increment_is_lost_when_every_replica_is_killed_at_once() {
    every_replica_killed_at_once("durable_all", "127.0.12.1", &[]);
}

/// The same with the connections on worker threads beside the driver (the
/// default runs everything on one thread, and then the leader never syncs
/// on the driver's thread while its `Accept`s wait to leave).
#[test]
fn no_acknowledged_increment_is_lost_when_every_multithreaded_replica_is_killed_at_once() {
    every_replica_killed_at_once("durable_all_mt", "127.0.12.8", &["--threads", "2"]);
}

/// Kills every replica at once under load; checks that every acknowledged
/// increment survives the restart and that none ran twice.
fn every_replica_killed_at_once(test: &str, ip: &str, extra: &[&str]) {
    let mut cluster = Cluster::start_with(COUNTER, test, ip, 3, extra, true);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let clients = 8;
    let load = Load::start(&rt, &boot, clients);
    wait_until(
        Duration::from_secs(60),
        "1000 acknowledged increments",
        || load.acked.load(std::sync::atomic::Ordering::SeqCst) >= 1000,
    );
    // Kill all three in the middle of the load.
    for r in cluster.replicas.iter_mut() {
        r.kill9();
    }
    let acked_at_kill = load.acked.load(std::sync::atomic::Ordering::SeqCst);
    let (acked, _errors, _) = load.stop(&rt);
    assert!(acked >= 1000);
    for i in 0..3 {
        cluster.restart(i);
    }
    cluster.wait_for_members(3);
    let value = cluster.counter_value(&rt) as u64;
    println!("{acked} acknowledged before the crash; {value} after recovery");
    // Every acknowledged increment survived, and nothing ran twice: at most
    // one call per client was in flight (unknown) when everything died.
    assert!(
        value >= acked && acked >= acked_at_kill,
        "lost writes: {value} < {acked}"
    );
    assert!(
        value <= acked + clients as u64,
        "phantom writes: {value} > {acked} + {clients}"
    );
    // And the instance keeps serving.
    let after = rt.block_on(async {
        let c = concoord_client::proxies::Counter::connect(&cluster.bootstrap_live())
            .await
            .expect("connect");
        c.increment().await.expect("serves after recovery");
        c.getvalue().await.expect("read")
    });
    assert_eq!(after as u64, value + 1);
}

#[test]
fn a_replica_killed_again_and_again_catches_up_and_its_log_stays_bounded() {
    let mut cluster = Cluster::start_with(
        COUNTER,
        "durable_repeat",
        "127.0.12.2",
        3,
        &["--snapshot-every", "200", "--no-auto-remove"],
        true,
    );
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let load = Load::start(&rt, &boot, 8);
    let victim = 2;
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(800));
        cluster.replicas[victim].kill9();
        std::thread::sleep(Duration::from_millis(300));
        cluster.restart(victim);
        println!("round {round}: replica {victim} killed and restarted");
    }
    std::thread::sleep(Duration::from_millis(800));
    let (acked, errors, _) = load.stop(&rt);
    assert_eq!(errors, 0);
    let states = cluster.settled_states();
    assert!(
        states.iter().all(|s| *s == states[0]),
        "replicas agree: {states:?}"
    );
    assert_eq!(cluster.counter_value(&rt) as u64, acked);
    for r in &cluster.replicas {
        let s = status(&r.addr).expect("status");
        println!(
            "{}: executed {} snapshot {} disk {} bytes, last fsync {} us",
            r.addr, s.executed, s.snapshot_slot, s.disk_bytes, s.last_fsync_us
        );
        assert!(s.snapshot_slot > 0, "{} took snapshots", r.addr);
        // 200 slots between snapshots: the log on disk stays small however
        // long the run (a few hundred bytes per slot at most).
        assert!(
            s.disk_bytes < 2 << 20,
            "{}: {} bytes on disk",
            r.addr,
            s.disk_bytes
        );
        let dir = cluster.data_dir(port_of(&r.addr)).expect("durable");
        assert!(wal_files(&dir).len() <= 2, "old segments are deleted");
    }
}

/// A durable 3-replica Counter instance that took increments from 4
/// clients for 800 ms, and how many were acknowledged.
fn durable_cluster_after_writes(test: &str, ip: &str) -> (Cluster, tokio::runtime::Runtime, u64) {
    let mut cluster = Cluster::start_with(COUNTER, test, ip, 3, &["--no-auto-remove"], true);
    let rt = runtime();
    let load = Load::start(&rt, &cluster.bootstrap_live(), 4);
    std::thread::sleep(Duration::from_millis(800));
    let (acked, _, _) = load.stop(&rt);
    (cluster, rt, acked)
}

/// Where a segment's writes end: the zeros after them are space reserved
/// ahead of the writes.
fn data_end(segment: &[u8]) -> usize {
    segment
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1)
}

/// Kills a follower with SIGKILL; returns its index, address and data
/// directory.
fn kill_a_follower(cluster: &mut Cluster) -> (usize, String, PathBuf) {
    let follower = (0..3)
        .find(|i| Some(*i) != cluster.leader())
        .expect("a follower");
    let addr = cluster.replicas[follower].addr.clone();
    let dir = cluster.data_dir(port_of(&addr)).expect("durable");
    cluster.replicas[follower].kill9();
    (follower, addr, dir)
}

#[test]
fn a_torn_tail_is_cut_but_a_corrupt_record_stops_start_up_until_repaired() {
    let (mut cluster, rt, acked) = durable_cluster_after_writes("durable_corrupt", "127.0.12.3");

    // A torn write: the last bytes of a replica's log never made it to disk
    // (they read as the zeros reserved ahead of the writes).
    let (follower, addr, dir) = kill_a_follower(&mut cluster);
    let wal = wal_files(&dir).pop().expect("a segment");
    let mut bytes = std::fs::read(&wal).expect("read");
    let end = data_end(&bytes);
    bytes[end - 5..end].fill(0);
    std::fs::write(&wal, &bytes).expect("write");
    cluster.restart(follower);
    wait_until(
        Duration::from_secs(10),
        "the replica to serve again",
        || status(&addr).is_some_and(|s| s.executed > 0),
    );
    let log = std::fs::read_to_string(&cluster.replicas[follower].log).expect("log");
    assert!(log.contains("cutting a torn write"), "the cut is logged");
    assert_eq!(cluster.counter_value(&rt) as u64, acked);

    // Corruption: a flipped byte in the middle of the log.
    cluster.replicas[follower].kill9();
    let wal = wal_files(&dir).pop().expect("a segment");
    let mut bytes = std::fs::read(&wal).expect("read");
    let middle = data_end(&bytes) / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&wal, &bytes).expect("write");
    let out = durable_replica_output("127.0.12.3", &port_of(&addr).to_string(), &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "refuses to start: {err}");
    assert!(
        err.contains(&wal.display().to_string()) && err.contains("corrupt at offset"),
        "{err}"
    );
    assert!(err.contains("--repair"), "says what to do: {err}");

    // --repair sets the data aside and rejoins as a new replica.
    let port = port_of(&addr).to_string();
    let boot = cluster.bootstrap_live();
    let mut repaired = Replica::start(
        "durable_corrupt",
        "127.0.12.3",
        port_of(&addr),
        Some(&boot),
        &[
            "-w",
            "--repair",
            "--data-dir",
            dir.to_str().expect("utf-8"),
            "--no-auto-remove",
        ],
    );
    wait_until(
        Duration::from_secs(20),
        "the repaired replica to catch up",
        || status(&addr).is_some_and(|s| s.executed > 0 && s.members.len() == 4),
    );
    let set_aside = std::fs::read_dir(dir.parent().expect("parent"))
        .expect("list")
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{port}.corrupt-"))
        });
    assert!(
        set_aside,
        "the damaged directory is kept aside for inspection"
    );
    assert_eq!(cluster.counter_value(&rt) as u64, acked);
    repaired.kill9();
}

#[test]
fn replicas_join_under_load_originals_are_removed_and_the_old_leader_dies() {
    let mut cluster = Cluster::start_with(
        COUNTER,
        "durable_reconfig",
        "127.0.12.4",
        3,
        &["--no-auto-remove"],
        true,
    );
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let load = Load::start(&rt, &boot, 6);
    std::thread::sleep(Duration::from_millis(500));
    let d = cluster.add_replica();
    let e = cluster.add_replica();
    cluster.wait_for_members(5);
    let leader = cluster.leader().expect("a leader");
    assert!(leader < 3, "an original leads");
    let removed: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    for i in &removed {
        let out = Command::new(binary("concoord"))
            .args([
                "remove",
                "-b",
                &cluster.bootstrap_live(),
                &cluster.replicas[*i].addr,
            ])
            .arg("--peer-secret")
            .arg(secret_file("durable_reconfig"))
            .output()
            .expect("run concoord remove");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let leader_addr = cluster.replicas[leader].addr.clone();
    wait_until(
        Duration::from_secs(20),
        "the two removals to take effect",
        || status(&leader_addr).is_some_and(|s| s.members.len() == 3),
    );
    // The removed replicas were told to stop.
    wait_until(Duration::from_secs(5), "removed replicas to stop", || {
        removed.iter().all(|i| !cluster.replicas[*i].is_running())
    });
    cluster.replicas[leader].kill9();
    std::thread::sleep(Duration::from_secs(3));
    let (acked, errors, _) = load.stop(&rt);
    assert_eq!(errors, 0);
    assert_eq!(
        cluster.counter_value(&rt) as u64,
        acked,
        "the new replicas hold the full state"
    );
    let (sd, se) = (
        status(&cluster.replicas[d].addr).expect("status"),
        status(&cluster.replicas[e].addr).expect("status"),
    );
    assert!(
        sd.role == "leader" || se.role == "leader",
        "a new replica leads"
    );
}

#[test]
fn a_replica_whose_log_was_deleted_refuses_to_resume_its_identity() {
    let (mut cluster, rt, acked) = durable_cluster_after_writes("durable_amnesia", "127.0.12.6");
    assert!(acked > 0);

    // An operator "frees space": the log goes, the identity stays.
    let (_, addr, dir) = kill_a_follower(&mut cluster);
    let wals = wal_files(&dir);
    assert!(!wals.is_empty());
    for wal in wals {
        std::fs::remove_file(wal).expect("rm");
    }
    assert!(dir.join("identity").exists());

    // Resuming the identity would forget its promises: refused, saying why
    // and what to do.
    let out = durable_replica_output("127.0.12.6", &port_of(&addr).to_string(), &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "refuses to start: {err}");
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert!(err.contains("no write-ahead log segment"), "{err}");
    assert!(err.contains("--repair"), "says what to do: {err}");
    assert!(!err.contains("recovered durable state"), "{err}");

    // The other two keep serving.
    assert_eq!(cluster.counter_value(&rt) as u64, acked);
}

/// Runs a durable Counter replica on `data_dir` until it exits (it should not
/// start) and returns what it printed.
fn durable_replica_output(
    ip: &str,
    port: &str,
    data_dir: &std::path::Path,
) -> std::process::Output {
    output_within(
        Command::new(binary("concoord"))
            .args(["replica", "-o", "counter", "-a", ip, "-p", port, "-w"])
            .arg("--data-dir")
            .arg(data_dir),
        Duration::from_secs(10),
    )
}

#[test]
fn an_unusable_data_directory_is_a_clear_error_at_start() {
    let root = concoord_integration_tests::log_dir("durable_unusable");
    // A file where the directory should be.
    let file = root.join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let out = durable_replica_output("127.0.12.5", "14000", &file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");

    // A full disk: a tiny tmpfs, filled up.
    let mnt = root.join("full");
    let _ = Command::new("umount").arg(&mnt).status();
    std::fs::create_dir_all(&mnt).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("run mount");
    assert!(
        mounted.success(),
        "mounting a tmpfs needs root (the tests run as root)"
    );
    let _ = std::fs::write(mnt.join("filler"), vec![0u8; 64 << 10]);
    let started = Instant::now();
    let out = durable_replica_output("127.0.12.5", "14001", &mnt.join("data"));
    let _ = Command::new("umount").arg(&mnt).status();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a full disk stops the replica: {err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Puts from 8 writers to fresh keys, each writer until `stop`; returns the
/// keys acknowledged with their values.
async fn put_fresh_keys(
    boot: String,
    writers: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(String, String)> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let boot = boot.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let kv = KeyValue::connect(&boot).await.expect("connect");
            let mut acked = Vec::new();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (key, value) = (format!("w{w}-{n:06}"), format!("value {n} of {w}"));
                n += 1;
                if kv.put(key.clone(), value.clone()).await.is_ok() {
                    acked.push((key, value));
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("writer"));
    }
    acked
}

/// KeyValue snapshots are serialized off the replica's loop from a copy of
/// the map (`detached_snapshot`) while puts go on, every 100 slots here. The
/// property: every acknowledged put survives a follower's crash and restart
/// (it recovers from a snapshot and the log after it), a new replica's
/// catch-up by snapshot transfer, and all four replicas crashing at once;
/// and every replica ends with the same state. A snapshot labelled with a
/// later slot than its copy was made at would lose the puts in between.
#[test]
fn keyvalue_snapshots_made_off_the_loop_lose_no_acknowledged_put_across_crashes_and_a_join() {
    let mut cluster = Cluster::start_with(
        KEYVALUE,
        "durable_kv_snapshots",
        "127.0.12.7",
        3,
        &["--snapshot-every", "100", "--no-auto-remove"],
        true,
    );
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = rt.spawn(put_fresh_keys(boot.clone(), 8, stop.clone()));
    std::thread::sleep(Duration::from_millis(800));
    cluster.replicas[2].kill9();
    std::thread::sleep(Duration::from_millis(300));
    cluster.restart(2);
    std::thread::sleep(Duration::from_millis(800));
    cluster.add_replica();
    cluster.wait_for_members(4);
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked = rt.block_on(writers).expect("writers");
    println!("{} puts acknowledged", acked.len());
    assert!(acked.len() >= 500, "only {} puts acknowledged", acked.len());

    for r in cluster.replicas.iter_mut() {
        r.kill9();
    }
    for i in 0..cluster.replicas.len() {
        cluster.restart(i);
    }
    cluster.wait_for_members(4);
    let states = cluster.settled_states();
    assert!(
        states.iter().all(|s| *s == states[0]),
        "replicas agree: {states:?}"
    );
    for r in &cluster.replicas {
        let s = status(&r.addr).expect("status");
        println!(
            "{}: executed {} snapshot {}",
            r.addr, s.executed, s.snapshot_slot
        );
        assert!(
            s.snapshot_slot > 0,
            "{} took or installed snapshots",
            r.addr
        );
    }
    let boot = cluster.bootstrap_live();
    let lost: Vec<(String, String)> = rt.block_on(async {
        let kv = KeyValue::connect(&boot).await.expect("connect");
        let mut lost = Vec::new();
        for (key, value) in &acked {
            let got = kv.get(key.clone()).await.expect("get");
            if got.as_ref() != Some(value) {
                lost.push((key.clone(), format!("{got:?}")));
            }
        }
        lost
    });
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged puts lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}
