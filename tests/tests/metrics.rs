//! `--metrics-addr`: three durable replica processes serve Prometheus
//! metrics; a scrape of each during a load of increments shows the counters
//! and histograms moving (commits, batches, syncs, snapshots, peer bytes)
//! and the gauges telling the roles apart.
//!
//! Addresses: 127.0.141.1, ports 14000-14002 (replicas) and 15000-15002
//! (metrics).

use concoord_integration_tests::scrape::{get, metrics, sample};
use concoord_integration_tests::{Load, Replica, log_dir, runtime, status, wait_until};
use std::time::Duration;

const IP: &str = "127.0.141.1";
const TEST: &str = "metrics";

fn metrics_addr(i: u16) -> String {
    format!("{IP}:{}", 15000 + i)
}

fn start(i: u16, boot: Option<&str>) -> Replica {
    let data = log_dir(TEST).join("data").join(i.to_string());
    let data = data.to_string_lossy().to_string();
    let m = metrics_addr(i);
    let flags = [
        "-w",
        "--data-dir",
        &data,
        "--snapshot-every",
        "200",
        "--metrics-addr",
        &m,
    ];
    Replica::start(TEST, IP, 14000 + i, boot, &flags)
}

fn value(page: &str, name: &str) -> f64 {
    sample(page, name).unwrap_or_else(|| panic!("no sample {name} on the page:\n{page}"))
}

#[test]
fn a_scrape_during_load_shows_the_counters_moving() {
    let _ = std::fs::remove_dir_all(log_dir(TEST).join("data"));
    let founder = IP.to_string() + ":14000";
    let mut replicas = vec![start(0, None)];
    wait_until(Duration::from_secs(10), "the founder to lead", || {
        status(&founder).is_some_and(|s| s.role == "leader")
    });
    replicas.push(start(1, Some(&founder)));
    replicas.push(start(2, Some(&founder)));
    wait_until(Duration::from_secs(30), "three members", || {
        status(&founder).is_some_and(|s| s.members.len() == 3)
    });

    eprintln!("phase: the page is served at /metrics only, as OpenMetrics text");
    let page = get(&metrics_addr(0), "/metrics").expect("a scrape answers");
    assert_eq!(page.status, 200);
    assert!(
        page.head
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{}",
        page.head
    );
    assert_eq!(get(&metrics_addr(0), "/").map(|p| p.status), Some(404));

    eprintln!("phase: a load of increments through the leader");
    let rt = runtime();
    let load = Load::start(&rt, &founder, 4);
    wait_until(Duration::from_secs(20), "600 increments", || {
        load.acked.load(std::sync::atomic::Ordering::SeqCst) >= 600
    });
    // Gauges are refreshed every 250 ms.
    std::thread::sleep(Duration::from_millis(600));
    let first = metrics(&metrics_addr(0));
    wait_until(Duration::from_secs(20), "300 more increments", || {
        load.acked.load(std::sync::atomic::Ordering::SeqCst) >= 900
    });
    std::thread::sleep(Duration::from_millis(600));
    let second = metrics(&metrics_addr(0));
    let follower = metrics(&metrics_addr(1));
    let (acked, errors, _) = load.stop(&rt);
    eprintln!("load: {acked} increments, {errors} errors");

    eprintln!("phase: the leader's counters moved between the two scrapes");
    for name in [
        "concoord_commands_executed_total",
        "concoord_commit_latency_seconds_count",
        "concoord_commit_latency_seconds_sum",
        "concoord_batch_commands_count",
        "concoord_batch_commands_sum",
        "concoord_fsyncs_total",
        "concoord_fsync_seconds_count",
        "concoord_sync_wait_seconds_count",
        "concoord_decided_slot",
        "concoord_executed_slot",
        "concoord_peer_bytes_out_total{peer=\"127.0.141.1:14001\"}",
        "concoord_peer_bytes_in_total{peer=\"127.0.141.1:14002\"}",
    ] {
        let (a, b) = (value(&first, name), value(&second, name));
        assert!(b > a, "{name} did not move: {a} then {b}");
    }
    assert!(value(&second, "concoord_commands_executed_total") >= 900.0);
    assert!(value(&second, "concoord_snapshot_seconds_count") >= 1.0);
    assert!(value(&second, "concoord_snapshot_bytes") > 0.0);
    assert!(value(&second, "concoord_disk_bytes") > 0.0);
    assert!(value(&second, "concoord_client_sessions") >= 4.0);
    assert!(value(&second, "concoord_clients_connected") >= 4.0);
    assert_eq!(value(&second, "concoord_view_members"), 3.0);
    assert!(value(&second, "concoord_view_epoch") >= 1.0);
    assert!(value(&second, "concoord_ballot_round") >= 1.0);
    // Batching: fewer slots than commands.
    assert!(
        value(&second, "concoord_batch_commands_sum")
            >= value(&second, "concoord_batch_commands_count")
    );

    eprintln!("phase: roles tell the leader from a follower");
    assert_eq!(value(&second, "concoord_role{role=\"leader\"}"), 1.0);
    assert_eq!(value(&second, "concoord_role{role=\"follower\"}"), 0.0);
    assert_eq!(value(&follower, "concoord_role{role=\"follower\"}"), 1.0);
    assert_eq!(value(&follower, "concoord_role{role=\"leader\"}"), 0.0);
    assert!(value(&follower, "concoord_executed_slot") > 0.0);
    assert!(value(&follower, "concoord_fsyncs_total") > 0.0);
    drop(replicas);
}
