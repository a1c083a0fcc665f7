//! The README's path, end to end: `concoord cluster` starts three replica
//! processes, and concurrent `concoord call` processes increment the Counter.

use concoord_integration_tests::{binary, log_dir};
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
    let logs = log_dir("counter_cluster");
    let mut cluster = ClusterProcess(
        Command::new(binary("concoord"))
            .args(["cluster", "-n", "3", "-a", ip, "--base-port", "14000"])
            .arg("--log-dir")
            .arg(&logs)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start concoord cluster"),
    );
    let stdout = cluster.0.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("cluster prints its bootstrap string");
    let boot = line.trim().to_string();
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
