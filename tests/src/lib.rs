//! Harness for real-process tests: replicas run as `concoord replica`
//! processes on a loopback address of the test's own (127.0.K.1), are killed
//! with SIGKILL, and are inspected through the admin protocol.
//!
//! The binaries must be built first (`cargo build --release --bins`, which
//! `scripts/test.sh` does).

pub mod dns;
pub mod netns;
pub mod scrape;

use concoord_client::proxies::Counter;
use concoord_transport::admin::admin_request;
use concoord_transport::wire::{AdminReply, AdminRequest, StatusReport};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of a workspace binary built next to the test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile> directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first with `cargo build --release --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Runs a command to completion, killing it (and failing) if it runs past
/// `limit`: a process expected to exit must never hang a test.
pub fn output_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{cmd:?} was expected to exit but still ran after {limit:?}");
        }
    }
}

/// Where test logs go.
pub fn log_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("concoord-tests").join(test);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The instance secret file the replicas of `test` share (a founder creates
/// it on first use; every replica the harness starts gets `--peer-secret`).
pub fn secret_file(test: &str) -> PathBuf {
    log_dir(test).join("peer-secret")
}

/// One replica process.
pub struct Replica {
    child: Option<Child>,
    /// Its address.
    pub addr: String,
    /// Its log file.
    pub log: PathBuf,
}

/// Which replica program to run.
#[derive(Clone, Copy, Debug)]
pub struct ReplicaSpec {
    /// Binary name in the target directory.
    pub binary: &'static str,
    /// `-o` for `concoord replica`; `None` for a user's own replica binary.
    pub object: Option<&'static str>,
}

/// `concoord replica -o concoord.object.counter.Counter`.
pub const COUNTER: ReplicaSpec = ReplicaSpec {
    binary: "concoord",
    object: Some("concoord.object.counter.Counter"),
};

impl ReplicaSpec {
    /// `concoord replica -o NAME`.
    pub const fn builtin(name: &'static str) -> ReplicaSpec {
        ReplicaSpec {
            binary: "concoord",
            object: Some(name),
        }
    }
}

impl Replica {
    /// Starts a Counter replica: `concoord replica -o … -a IP -p PORT [-b BOOT] [extra]`.
    pub fn start(test: &str, ip: &str, port: u16, boot: Option<&str>, extra: &[&str]) -> Replica {
        Replica::start_spec(COUNTER, test, ip, port, boot, extra)
    }

    /// Starts a replica of `spec`.
    pub fn start_spec(
        spec: ReplicaSpec,
        test: &str,
        ip: &str,
        port: u16,
        boot: Option<&str>,
        extra: &[&str],
    ) -> Replica {
        Replica::start_with_env(spec, test, ip, port, boot, extra, &[])
    }

    /// Starts a replica of `spec` with extra environment variables. A
    /// founder (no `boot`) gets `--new-instance`: every test founds its
    /// instance on purpose (see [`Replica::start_as_user`]).
    pub fn start_with_env(
        spec: ReplicaSpec,
        test: &str,
        ip: &str,
        port: u16,
        boot: Option<&str>,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Replica {
        let founding = ["--new-instance"];
        let extra: Vec<&str> = match boot {
            None => extra.iter().chain(&founding).copied().collect(),
            Some(_) => extra.to_vec(),
        };
        Replica::start_as_user(spec, test, ip, port, boot, &extra, env)
    }

    /// Starts a replica with exactly the flags a user would give: a founder
    /// without `--new-instance` first checks that no running instance counts
    /// its address as a member.
    pub fn start_as_user(
        spec: ReplicaSpec,
        test: &str,
        ip: &str,
        port: u16,
        boot: Option<&str>,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Replica {
        let addr = format!("{ip}:{port}");
        let log = log_dir(test).join(format!("replica-{port}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut cmd = Command::new(binary(spec.binary));
        if let Some(object) = spec.object {
            cmd.args(["replica", "-o", object]);
        }
        if !extra
            .iter()
            .any(|f| *f == "--peer-secret" || *f == "--no-peer-secret")
        {
            cmd.arg("--peer-secret").arg(secret_file(test));
        }
        cmd.envs(env.iter().cloned())
            .args(["-a", ip])
            .args(["-p", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file));
        if let Some(b) = boot {
            cmd.args(["-b", b]);
        }
        let child = cmd.spawn().expect("spawn replica");
        Replica {
            child: Some(child),
            addr,
            log,
        }
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// How the process ended, if it ends within `limit`.
    pub fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `concoord remove -b BOOT ADDR` with the test's instance secret; fails the
/// test unless it succeeds within 20 s.
pub fn remove_member(test: &str, boot: &str, addr: &str) {
    let out = output_within(
        Command::new(binary("concoord"))
            .args(["remove", "-b", boot, addr])
            .arg("--peer-secret")
            .arg(secret_file(test)),
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "concoord remove {addr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A runtime for the async client inside sync tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Asks one replica for its status.
pub fn status(addr: &str) -> Option<StatusReport> {
    status_with(addr, None)
}

/// Asks one replica of an instance with a token for its status, with the
/// state digest.
pub fn status_with(addr: &str, token: Option<&str>) -> Option<StatusReport> {
    runtime().block_on(async {
        match admin_request(
            addr,
            None,
            token.map(str::to_string),
            AdminRequest::StatusWithDigest,
            Duration::from_secs(1),
        )
        .await
        {
            Ok(AdminReply::Status(r)) => Some(*r),
            _ => None,
        }
    })
}

/// Polls `f` every 50 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A set of replicas forming one instance.
pub struct Cluster {
    /// The replicas, in start order.
    pub replicas: Vec<Replica>,
    spec: ReplicaSpec,
    /// Flags given to every replica.
    extra: Vec<String>,
    /// The token given with `-t` in those flags, if any.
    token: Option<String>,
    /// With `-w`: the parent of each replica's data directory.
    pub data_root: Option<PathBuf>,
    test: String,
    ip: String,
    next_port: u16,
}

impl Cluster {
    /// Starts `n` replicas on `ip` (ports from 14000): the first founds the
    /// instance, the others join it; returns once all are members.
    pub fn start(test: &str, ip: &str, n: usize) -> Cluster {
        Cluster::start_spec(COUNTER, test, ip, n)
    }

    /// Like `start`, for any replica program.
    pub fn start_spec(spec: ReplicaSpec, test: &str, ip: &str, n: usize) -> Cluster {
        Cluster::start_with(spec, test, ip, n, &[], false)
    }

    /// Like `start`, with flags for every replica and, if `durable`, `-w`
    /// with a data directory per replica under a fresh directory.
    pub fn start_with(
        spec: ReplicaSpec,
        test: &str,
        ip: &str,
        n: usize,
        extra: &[&str],
        durable: bool,
    ) -> Cluster {
        let data_root = durable.then(|| {
            let root = log_dir(test).join("data");
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).expect("data root");
            root
        });
        let mut c = Cluster {
            replicas: Vec::new(),
            spec,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            token: extra
                .iter()
                .position(|f| *f == "-t")
                .and_then(|i| extra.get(i + 1))
                .map(|t| t.to_string()),
            data_root,
            test: test.to_string(),
            ip: ip.to_string(),
            next_port: 14000,
        };
        for _ in 0..n {
            c.add_replica();
        }
        c.wait_for_members(n);
        c
    }

    /// Asks a replica of this instance for its status (with its token).
    pub fn status(&self, addr: &str) -> Option<StatusReport> {
        status_with(addr, self.token.as_deref())
    }

    /// The data directory of the replica on `port` (with `-w`).
    pub fn data_dir(&self, port: u16) -> Option<PathBuf> {
        self.data_root.as_ref().map(|r| r.join(port.to_string()))
    }

    fn flags(&self, port: u16) -> Vec<String> {
        let mut flags = self.extra.clone();
        if let Some(dir) = self.data_dir(port) {
            flags.push("-w".into());
            flags.push("--data-dir".into());
            flags.push(dir.to_string_lossy().to_string());
        }
        flags
    }

    fn spawn(&self, port: u16, boot: Option<&str>) -> Replica {
        let flags = self.flags(port);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Replica::start_spec(self.spec, &self.test, &self.ip, port, boot, &flags)
    }

    /// Starts replica `i` again on its port (and data directory), joining
    /// through the live replicas if it has no state of its own.
    pub fn restart(&mut self, i: usize) {
        let port: u16 = self.replicas[i]
            .addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("replica port");
        let boot = self.bootstrap_live();
        let boot = (!boot.is_empty()).then_some(boot);
        let log = self.replicas[i].log.clone();
        let mut r = self.spawn(port, boot.as_deref());
        // Keep the earlier log: append the new run's output after it.
        r.log = log;
        self.replicas[i] = r;
    }

    /// Starts one more replica joining through the first live one.
    pub fn add_replica(&mut self) -> usize {
        let port = self.next_port;
        self.next_port += 1;
        let boot = self.bootstrap_live();
        let boot = (!self.replicas.is_empty()).then_some(boot);
        let r = self.spawn(port, boot.as_deref());
        if self.replicas.is_empty() {
            let addr = r.addr.clone();
            wait_until(Duration::from_secs(10), "the founder to serve", || {
                self.status(&addr).is_some_and(|s| s.role == "leader")
            });
        }
        self.replicas.push(r);
        self.replicas.len() - 1
    }

    /// Bootstrap string of the replicas still running.
    pub fn bootstrap_live(&mut self) -> String {
        self.replicas
            .iter_mut()
            .filter_map(|r| r.is_running().then(|| r.addr.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Waits until every live replica knows a view of `n` members and a leader
    /// (the founder counts a joiner as a member before the joiner has learned
    /// it: killing the founder then would leave no one who knows the view).
    pub fn wait_for_members(&mut self, n: usize) {
        let addrs: Vec<String> = self
            .replicas
            .iter_mut()
            .filter_map(|r| r.is_running().then(|| r.addr.clone()))
            .collect();
        wait_until(Duration::from_secs(30), &format!("{n} members"), || {
            addrs.iter().all(|a| {
                self.status(a)
                    .is_some_and(|s| s.members.len() == n && s.leader.is_some())
            })
        });
    }

    /// The Counter's value, read through the live replicas.
    pub fn counter_value(&mut self, rt: &tokio::runtime::Runtime) -> i64 {
        let live = self.bootstrap_live();
        rt.block_on(async {
            Counter::connect(&live)
                .await
                .expect("a live replica accepts the connection")
                .getvalue()
                .await
                .expect("a majority of the view serves the read")
        })
    }

    /// Waits until every live replica has executed the same slots, and returns
    /// their (executed slot, state digest) pairs.
    pub fn settled_states(&mut self) -> Vec<(u64, u64)> {
        let addrs: Vec<String> = self
            .replicas
            .iter_mut()
            .filter_map(|r| r.is_running().then(|| r.addr.clone()))
            .collect();
        let mut states = Vec::new();
        wait_until(Duration::from_secs(10), "replicas to settle", || {
            states = addrs
                .iter()
                .filter_map(|a| {
                    let s = self.status(a)?;
                    Some((s.executed, s.state_digest?))
                })
                .collect();
            states.len() == addrs.len() && states.iter().all(|s| s.0 == states[0].0)
        });
        states
    }

    /// The highest ballot any live replica reports (a change of it during a
    /// test means a leader was deposed).
    pub fn highest_ballot(&self) -> Option<paxos_core::Ballot> {
        self.replicas
            .iter()
            .filter_map(|r| self.status(&r.addr))
            .map(|s| s.ballot)
            .max()
    }

    /// Index of the replica that leads now (asking the live ones).
    pub fn leader(&mut self) -> Option<usize> {
        let addrs: Vec<(usize, String)> = self
            .replicas
            .iter_mut()
            .enumerate()
            .filter_map(|(i, r)| r.is_running().then(|| (i, r.addr.clone())))
            .collect();
        addrs
            .into_iter()
            .find(|(_, a)| self.status(a).is_some_and(|s| s.role == "leader"))
            .map(|(i, _)| i)
    }
}

/// `clients` concurrent Counter clients incrementing in a loop.
pub struct Load {
    /// Increments acknowledged.
    pub acked: Arc<AtomicU64>,
    /// Calls that failed.
    pub errors: Arc<AtomicU64>,
    /// When each acknowledged increment completed.
    pub done_at: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts the clients on `rt`.
    pub fn start(rt: &tokio::runtime::Runtime, boot: &str, clients: usize) -> Load {
        let acked = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let done_at = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|_| {
                let (boot, acked, errors, done_at, stop) = (
                    boot.to_string(),
                    acked.clone(),
                    errors.clone(),
                    done_at.clone(),
                    stop.clone(),
                );
                rt.spawn(async move {
                    let counter = Counter::connect(&boot).await.expect("connect");
                    while !stop.load(Ordering::SeqCst) {
                        match counter.increment().await {
                            Ok(()) => {
                                acked.fetch_add(1, Ordering::SeqCst);
                                if let Ok(mut d) = done_at.lock() {
                                    d.push(Instant::now());
                                }
                            }
                            Err(e) => {
                                eprintln!("increment failed: {e}");
                                errors.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            acked,
            errors,
            done_at,
            stop,
            tasks,
        }
    }

    /// Stops the clients; returns (acknowledged, errors, completion times).
    pub fn stop(self, rt: &tokio::runtime::Runtime) -> (u64, u64, Vec<Instant>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            rt.block_on(t).expect("load task");
        }
        let times = self.done_at.lock().map(|d| d.clone()).unwrap_or_default();
        (
            self.acked.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
            times,
        )
    }
}

/// The fencing token a `concoord call … acquire --hold SECS` process printed.
pub fn printed_token(holder: &mut Child) -> u64 {
    use std::io::BufRead;
    let mut line = String::new();
    let out = holder.stdout.take().expect("the holder's stdout is piped");
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .expect("the holder printed its token");
    line.trim().parse().expect("a fencing token")
}

/// Waits (up to `limit`) for `lock` to be granted after its holder, whose
/// token was `held`, was lost; checks the new token is higher and returns
/// how long it took from `lost_at`.
pub fn granted_after_loss(
    rt: &tokio::runtime::Runtime,
    lock: &concoord_client::proxies::Lock,
    held: u64,
    lost_at: Instant,
    limit: Duration,
) -> Duration {
    let token = rt
        .block_on(lock.acquire_timeout(limit))
        .expect("call")
        .expect("the lost holder's session expired and the lock passed on");
    assert!(
        token > held,
        "a higher fencing token ({token} after {held})"
    );
    lost_at.elapsed()
}

/// A lock held by one client, with a second client blocked acquiring it.
pub struct ContendedLock {
    /// The holder.
    pub holder: concoord_client::proxies::Lock,
    /// The holder's fencing token.
    pub first: u64,
    /// The blocked client.
    pub waiter: concoord_client::proxies::Lock,
    blocked: tokio::task::JoinHandle<Result<u64, concoord_client::ClientError>>,
}

impl ContendedLock {
    /// Connects both clients to `boot`, takes the lock with the first and
    /// leaves the second blocked in `acquire` (given 500 ms to get queued).
    pub fn start(rt: &tokio::runtime::Runtime, boot: &str) -> ContendedLock {
        use concoord_client::proxies::Lock;
        let holder = rt.block_on(Lock::connect(boot)).expect("connect");
        let first = rt.block_on(holder.acquire()).expect("acquire");
        let waiter = rt.block_on(Lock::connect(boot)).expect("connect");
        let blocked = {
            let waiter = waiter.clone();
            rt.spawn(async move { waiter.acquire().await })
        };
        std::thread::sleep(Duration::from_millis(500));
        ContendedLock {
            holder,
            first,
            waiter,
            blocked,
        }
    }

    /// Whether the waiter is still blocked.
    pub fn still_blocked(&self) -> bool {
        !self.blocked.is_finished()
    }

    /// The waiter's grant (its fencing token), waiting up to `limit`.
    pub fn granted(&mut self, rt: &tokio::runtime::Runtime, limit: Duration) -> u64 {
        rt.block_on(async { tokio::time::timeout(limit, &mut self.blocked).await })
            .expect("the waiter was woken in time")
            .expect("the waiting task")
            .expect("granted")
    }
}

/// Runs `hostile` (given the replica address and a flag set when it should
/// stop) for `secs` while a lone Counter client increments at `addr` every
/// 20 ms; returns the longest increment (an attack's effect on others).
pub fn worst_increment_while<F, Fut>(addr: &str, secs: u64, hostile: F) -> Duration
where
    F: FnOnce(String, Arc<AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let c = Counter::connect(addr).await.expect("connect");
        c.increment().await.expect("warm up");
        let task = tokio::spawn(hostile(addr.to_string(), stop.clone()));
        let start = Instant::now();
        let mut worst = Duration::ZERO;
        while start.elapsed() < Duration::from_secs(secs) {
            let t = Instant::now();
            let _ = tokio::time::timeout(Duration::from_secs(20), c.increment()).await;
            worst = worst.max(t.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        task.abort();
        worst
    })
}

/// `conns` connections to `addr` from a client that needs no credentials,
/// each handing its stream to `session` and reconnecting when that
/// returns, until `stop` is set.
pub async fn hostile_connections<F, Fut>(
    addr: String,
    conns: usize,
    stop: Arc<AtomicBool>,
    session: F,
) where
    F: Fn(concoord_transport::stream::Stream) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (addr, stop, session) = (addr.clone(), stop.clone(), session.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let connected = concoord_transport::handshake::connect_client(
                    &addr,
                    None,
                    None,
                    Duration::from_secs(5),
                )
                .await;
                match connected {
                    Ok((_, _, conn)) => session(conn.into_inner()).await,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
