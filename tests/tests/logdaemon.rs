//! The network logger: `concoord logdaemon` prints the lines of a replica
//! started with `-l`, each with the replica's address; once the daemon is
//! killed, the replica keeps serving calls, counts the lines it drops, and
//! tells a new daemon how many it dropped.
//!
//! Addresses: 127.0.142.1, port 14000 (replica), 15000 (metrics), 15999
//! (log daemon).

use concoord_client::proxies::Counter;
use concoord_integration_tests::scrape::{metrics, sample};
use concoord_integration_tests::{Replica, binary, log_dir, runtime, status, wait_until};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IP: &str = "127.0.142.1";
const TEST: &str = "logdaemon";
const DAEMON: &str = "127.0.142.1:15999";
const METRICS: &str = "127.0.142.1:15000";

/// A `concoord logdaemon` process, killed when dropped.
struct Daemon {
    child: Child,
    out: PathBuf,
}

impl Daemon {
    fn start(name: &str) -> Daemon {
        let out = log_dir(TEST).join(format!("{name}.out"));
        let err = log_dir(TEST).join(format!("{name}.err"));
        let file = |p: &Path| std::fs::File::create(p).expect("daemon output file");
        let child = Command::new(binary("concoord"))
            .args(["logdaemon", "--listen", DAEMON])
            .stdin(Stdio::null())
            .stdout(file(&out))
            .stderr(file(&err))
            .spawn()
            .expect("start concoord logdaemon");
        Daemon { child, out }
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn dropped() -> f64 {
    sample(&metrics(METRICS), "concoord_log_lines_dropped_total").unwrap_or(0.0)
}

/// Connections that send garbage: each makes the replica log a line (at
/// debug level) about a failed handshake.
fn provoke_log_lines(replica: &str, n: usize) {
    for _ in 0..n {
        if let Ok(mut s) = std::net::TcpStream::connect(replica) {
            let _ = s.write_all(b"this is not a handshake\n");
        }
    }
}

#[test]
fn lines_arrive_with_the_replica_address_and_a_dead_daemon_costs_nothing() {
    let replica_addr = format!("{IP}:14000");
    let mut daemon = Daemon::start("daemon-1");
    std::thread::sleep(Duration::from_millis(300));
    let replica = Replica::start(
        TEST,
        IP,
        14000,
        None,
        &[
            "-d",
            "-l",
            DAEMON,
            "--log-buffer-lines",
            "16",
            "--metrics-addr",
            METRICS,
        ],
    );
    wait_until(Duration::from_secs(10), "the replica to lead", || {
        status(&replica_addr).is_some_and(|s| s.role == "leader")
    });

    eprintln!("phase: the daemon prints the replica's lines after its address");
    wait_until(
        Duration::from_secs(10),
        "the metrics line at the daemon",
        || {
            daemon.printed().lines().any(|l| {
                l.starts_with(&format!("{replica_addr} "))
                    && l.contains("serving Prometheus metrics")
            })
        },
    );
    let printed = daemon.printed();
    assert!(
        printed
            .lines()
            .all(|l| l.starts_with(&format!("{replica_addr} "))),
        "every line names the replica:\n{printed}"
    );
    assert_eq!(dropped(), 0.0, "nothing dropped while the daemon keeps up");

    eprintln!("phase: the daemon is killed; the replica logs on, drops and counts");
    daemon.kill9();
    let rt = runtime();
    let counter = rt
        .block_on(Counter::connect(&replica_addr))
        .expect("connect to the replica");
    wait_until(Duration::from_secs(20), "lines to be dropped", || {
        // Refusals past the first few are logged at debug only (-d).
        provoke_log_lines(&replica_addr, 20);
        dropped() > 0.0
    });

    eprintln!("phase: calls are served as fast as before");
    let started = Instant::now();
    for _ in 0..200 {
        rt.block_on(counter.increment())
            .expect("increment while the daemon is gone");
    }
    let elapsed = started.elapsed();
    eprintln!("200 increments in {elapsed:?} with the log daemon gone");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(rt.block_on(counter.getvalue()).expect("read"), 200);

    eprintln!("phase: a new daemon hears how many lines were dropped");
    let daemon = Daemon::start("daemon-2");
    wait_until(
        Duration::from_secs(15),
        "the drop notice at the new daemon",
        || {
            provoke_log_lines(&replica_addr, 1);
            daemon
                .printed()
                .lines()
                .any(|l| l.starts_with(&format!("{replica_addr} concoord-log: dropped ")))
        },
    );
    drop(replica);
}
