//! The README's path, end to end: `concoord cluster` starts three replica
//! processes, and concurrent `concoord call` processes increment the Counter;
//! a replica that exits is started again while the others keep serving.

use concoord_integration_tests::{binary, log_dir, runtime, status, wait_until};
use concoord_transport::InstanceSecret;
use concoord_transport::admin::admin_request;
use concoord_transport::wire::{AdminReply, AdminRequest};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Stops `concoord cluster` with Ctrl-C (SIGINT) even if the test fails.
struct ClusterProcess(std::process::Child);

impl ClusterProcess {
    fn interrupt(&self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
    }
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.interrupt();
            std::thread::sleep(Duration::from_millis(500));
            let _ = self.0.kill();
        }
    }
}

/// `concoord cluster -n 3` on `ip` (ports from 14000), logging into `logs`;
/// returns once it printed its bootstrap string.
fn start_cluster(ip: &str, logs: &std::path::Path, stderr: Stdio) -> (ClusterProcess, String) {
    let mut cluster = ClusterProcess(
        Command::new(binary("concoord"))
            .args(["cluster", "-n", "3", "-a", ip, "--base-port", "14000"])
            .arg("--log-dir")
            .arg(logs)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start concoord cluster"),
    );
    let stdout = cluster.0.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("cluster prints its bootstrap string");
    (cluster, line.trim().to_string())
}

fn call(boot: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary("concoord"))
        .args(["call", "-b", boot])
        .args(args)
        .output()
        .expect("run concoord call")
}

#[test]
fn concurrent_cli_increments_are_all_counted_exactly() {
    let ip = "127.0.1.1";
    let (mut cluster, boot) = start_cluster(ip, &log_dir("counter_cluster"), Stdio::null());
    assert_eq!(boot, format!("{ip}:14000, {ip}:14001, {ip}:14002"));

    // Four shells, ten increments each, all at once.
    let acked = Arc::new(AtomicU64::new(0));
    let shells: Vec<_> = (0..4)
        .map(|_| {
            let boot = boot.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let out = call(&boot, &["increment"]);
                    if out.status.success() {
                        acked.fetch_add(1, Ordering::SeqCst);
                    } else {
                        eprintln!("increment failed: {}", String::from_utf8_lossy(&out.stderr));
                    }
                }
            })
        })
        .collect();
    for s in shells {
        s.join().expect("shell thread");
    }
    let out = call(&boot, &["getvalue"]);
    assert!(out.status.success());
    let value: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("getvalue prints an integer");
    assert_eq!(
        acked.load(Ordering::SeqCst),
        40,
        "every call was acknowledged"
    );
    assert_eq!(value, 40, "the value equals the acknowledged increments");

    // Errors: one line on stderr, non-zero exit.
    let out = call(&boot, &["explode"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown method `explode`") && err.contains("increment"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1);
    let out = call(&boot, &["increment", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad arguments"));

    // Ctrl-C stops every replica.
    cluster.interrupt();
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = cluster.0.try_wait() {
            assert!(status.success(), "cluster exits cleanly on Ctrl-C");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "cluster did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new(binary("concoord"))
        .args(["call", "-b", &boot, "--timeout", "1", "getvalue"])
        .output()
        .expect("run concoord call");
    assert_eq!(
        out.status.code(),
        Some(3),
        "no replica reachable after the stop"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no replica reachable"));
}

#[test]
fn a_lone_replica_serves_clients_on_its_own() {
    let mut r = concoord_integration_tests::Replica::start("lone", "127.0.1.2", 14000, None, &[]);
    let boot = r.addr.clone();
    concoord_integration_tests::wait_until(Duration::from_secs(10), "the replica", || {
        concoord_integration_tests::status(&boot).is_some_and(|s| s.role == "leader")
    });
    for _ in 0..3 {
        assert!(call(&boot, &["increment"]).status.success());
    }
    assert_eq!(
        String::from_utf8_lossy(&call(&boot, &["getvalue"]).stdout).trim(),
        "3"
    );
    assert!(call(&boot, &["__concoordinit__"]).status.success());
    assert_eq!(
        String::from_utf8_lossy(&call(&boot, &["getvalue"]).stdout).trim(),
        "0"
    );
    r.kill9();
}

#[test]
fn a_replica_that_exits_under_concoord_cluster_is_started_again_and_the_rest_keep_serving() {
    let ip = "127.0.1.3";
    let logs = log_dir("cluster_restart");
    let stderr = std::fs::File::create(logs.join("cluster.stderr")).expect("stderr file");
    let (mut cluster, boot) = start_cluster(ip, &logs, Stdio::from(stderr));
    assert!(call(&boot, &["increment"]).status.success());

    // Stop one replica the way an operator would (it exits cleanly, so a
    // crash is no different to the supervisor).
    let victim = format!("{ip}:14001");
    let before = status(&victim).expect("the replica answers").node;
    let secret = InstanceSecret::load(&logs.join("peer-secret")).expect("the cluster's secret");
    let reply = runtime().block_on(admin_request(
        &victim,
        Some(&secret),
        None,
        AdminRequest::Shutdown,
        Duration::from_secs(2),
    ));
    assert_eq!(reply.map_err(|e| e.to_string()), Ok(AdminReply::Accepted));
    wait_until(Duration::from_secs(20), "the replica to come back", || {
        status(&victim)
            .is_some_and(|s| s.node != before && s.members.iter().any(|m| m.node == s.node))
    });
    assert!(
        matches!(cluster.0.try_wait(), Ok(None)),
        "concoord cluster keeps running"
    );
    assert!(call(&boot, &["increment"]).status.success());
    let out = call(&boot, &["getvalue"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    let said = std::fs::read_to_string(logs.join("cluster.stderr")).expect("stderr");
    assert!(said.contains(&format!("replica {victim} exited")), "{said}");
    assert!(said.contains("starting it again"), "{said}");
}
