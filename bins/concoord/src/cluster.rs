//! `concoord cluster`: a local instance of N replica processes in one command.
//! The first replica starts the instance; the others join it with `-b`. All
//! of them prove the instance secret the command keeps in the log directory
//! (`peer-secret`, created on first use). The command waits until every
//! replica is a member, prints the bootstrap string, and stops them all on
//! Ctrl-C. A replica that exits is reported and started again (joining
//! through the others as a new incarnation, or resuming its data directory
//! with `-w`); one that keeps failing is left stopped and reported, while
//! the others go on serving.
//!
//! With `--tls`, the command makes a throwaway CA (`throwaway_ca`; its key
//! is never written) and issues every replica a certificate for its
//! address, plus one client certificate, into `LOG_DIR/tls`: the replicas
//! run with mutual TLS on every link, and the command prints the flags a
//! client needs.

use crate::status::fetch;
use clap::Args;
use concoord_replica_cli::builtin;
use concoord_transport::InstanceSecret;
use concoord_transport::throwaway_ca::ThrowawayCa;
use concoord_transport::tls_config::{ClientTls, TlsFiles};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Time the instance has to form before the command gives up.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);
/// A replica restarted this many times within `RESTART_WINDOW` is left stopped.
const RESTARTS_MAX: usize = 3;
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// How often the replicas are checked.
const SUPERVISE_EVERY: Duration = Duration::from_millis(200);

#[derive(Args)]
pub struct ClusterArgs {
    /// Number of replicas.
    #[arg(short = 'n', long = "replicas", default_value_t = 3)]
    replicas: u16,
    /// Object to serve.
    #[arg(
        short = 'o',
        long = "objectname",
        default_value = "concoord.object.counter.Counter"
    )]
    objectname: String,
    /// Port of the first replica; the others take the next ones.
    #[arg(long, default_value_t = 14000)]
    base_port: u16,
    /// Address the replicas listen on.
    #[arg(short = 'a', long = "addr", default_value = "127.0.0.1")]
    addr: String,
    /// Security token for the instance.
    #[arg(short = 't', long = "token")]
    token: Option<String>,
    /// Directory for the replicas' logs (default: a temporary directory).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Debug logging in the replicas.
    #[arg(short = 'd', long = "debug")]
    debug: bool,
    /// Durable replicas (-w), with their data in the log directory.
    #[arg(short = 'w', long = "writetodisk")]
    writetodisk: bool,
    /// Snapshot every this many slots (with -w).
    #[arg(long, value_name = "SLOTS")]
    snapshot_every: Option<usize>,
    /// Seconds a silent client's session lasts (the replicas' --session-ttl).
    #[arg(long, value_name = "SECS")]
    session_ttl: Option<f64>,
    /// Seconds of silence before the leader suspects a replica.
    #[arg(long, value_name = "SECS")]
    suspect_after: Option<f64>,
    /// Seconds of silence before the leader removes a replica from the view.
    #[arg(long, value_name = "SECS")]
    remove_after: Option<f64>,
    /// Threads each replica runs on (the replicas' --threads; default 1).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Mutual TLS on every link, with a throwaway CA and certificates made
    /// now in LOG_DIR/tls (the CA's key is never written).
    #[arg(long)]
    tls: bool,
}

/// Where `--tls` puts the certificates.
fn tls_dir(log_dir: &Path) -> PathBuf {
    log_dir.join("tls")
}

/// The TLS files of the replica on `port` (or of the client, `None`).
fn tls_files(log_dir: &Path, port: Option<u16>) -> TlsFiles {
    let dir = tls_dir(log_dir);
    let stem = port.map_or("client".to_string(), |p| format!("replica-{p}"));
    TlsFiles {
        cert: Some(dir.join(format!("{stem}.pem"))),
        key: Some(dir.join(format!("{stem}-key.pem"))),
        ca: dir.join("ca.pem"),
    }
}

/// Makes the CA and issues every replica's certificate and the client's;
/// returns the client's TLS settings.
fn issue_certificates(log_dir: &Path, addr: &str, ports: &[u16]) -> Result<ClientTls, String> {
    let dir = tls_dir(log_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let failed = |e: &dyn std::fmt::Display| format!("cannot issue the certificates: {e}");
    let ca = ThrowawayCa::new("concoord cluster throwaway CA").map_err(|e| failed(&e))?;
    ca.write_cert(&dir).map_err(|e| failed(&e))?;
    for port in ports {
        ca.replica(&format!("{addr}:{port}"))
            .map_err(|e| failed(&e))?
            .write(&dir, &format!("replica-{port}"))
            .map_err(|e| failed(&e))?;
    }
    ca.client("cluster-client")
        .map_err(|e| failed(&e))?
        .write(&dir, "client")
        .map_err(|e| failed(&e))?;
    tls_files(log_dir, None).client().map_err(|e| e.to_string())
}

fn log_path(log_dir: &Path, port: u16) -> PathBuf {
    log_dir.join(format!("replica-{port}.log"))
}

fn spawn_replica(
    args: &ClusterArgs,
    port: u16,
    boot: Option<&str>,
    log_dir: &Path,
    restart: bool,
) -> Result<Child, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the concoord binary: {e}"))?;
    let log_path = log_path(log_dir, port);
    // A restarted replica's log goes after the one of the run that failed.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(restart)
        .truncate(!restart)
        .open(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("replica")
        .args([
            "-o",
            &args.objectname,
            "-a",
            &args.addr,
            "-p",
            &port.to_string(),
        ])
        .arg("--peer-secret")
        .arg(log_dir.join(SECRET_FILE))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    match boot {
        Some(b) => {
            cmd.args(["-b", b]);
        }
        // The first start founds the instance on purpose; a founder
        // restarted alone checks first that nobody counts it as a member.
        None if !restart => {
            cmd.arg("--new-instance");
        }
        None => {}
    }
    if let Some(t) = &args.token {
        cmd.args(["-t", t]);
    }
    if args.debug {
        cmd.arg("-d");
    }
    if args.writetodisk {
        cmd.arg("-w")
            .arg("--data-dir")
            .arg(log_dir.join(format!("data-{port}")));
    }
    if let Some(n) = args.snapshot_every {
        cmd.args(["--snapshot-every", &n.to_string()]);
    }
    if let Some(n) = args.threads {
        cmd.args(["--threads", &n.to_string()]);
    }
    let passed_on = [
        ("--session-ttl", args.session_ttl),
        ("--suspect-after", args.suspect_after),
        ("--remove-after", args.remove_after),
    ];
    for (flag, value) in passed_on {
        if let Some(v) = value {
            cmd.args([flag, &v.to_string()]);
        }
    }
    if args.tls {
        let files = tls_files(log_dir, Some(port));
        if let (Some(cert), Some(key)) = (files.cert, files.key) {
            cmd.arg("--tls-ca")
                .arg(files.ca)
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
        }
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start a replica: {e}"))
}

/// The instance secret's file in the log directory.
const SECRET_FILE: &str = "peer-secret";

/// One replica under supervision.
struct Supervised {
    port: u16,
    addr: String,
    child: Option<Child>,
    restarts: VecDeque<Instant>,
}

impl Supervised {
    /// The exit status, if the replica has exited since the last check.
    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Whether it may be restarted once more (and counts the restart).
    fn may_restart(&mut self) -> bool {
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= RESTARTS_MAX {
            return false;
        }
        self.restarts.push_back(now);
        true
    }
}

/// Restarts replicas that exit, joining through the others; reports those
/// that keep failing. Returns once every replica is left stopped.
async fn supervise(args: &ClusterArgs, log_dir: &Path, replicas: &mut [Supervised]) {
    loop {
        for i in 0..replicas.len() {
            let Some(status) = replicas[i].exited() else {
                continue;
            };
            let (port, addr) = (replicas[i].port, replicas[i].addr.clone());
            let log = log_path(log_dir, port);
            if !replicas[i].may_restart() {
                eprintln!(
                    "replica {addr} exited ({status}) {RESTARTS_MAX} times within {}s; leaving it \
                     stopped (the others keep serving): see {}",
                    RESTART_WINDOW.as_secs(),
                    log.display()
                );
                continue;
            }
            let others: Vec<&str> = replicas
                .iter()
                .filter(|r| r.port != port && r.child.is_some())
                .map(|r| r.addr.as_str())
                .collect();
            let boot = (!others.is_empty()).then(|| others.join(", "));
            eprintln!(
                "replica {addr} exited ({status}); starting it again{} (log: {})",
                if boot.is_some() && !args.writetodisk {
                    " as a new replica joining the others"
                } else {
                    ""
                },
                log.display()
            );
            match spawn_replica(args, port, boot.as_deref(), log_dir, true) {
                Ok(c) => replicas[i].child = Some(c),
                Err(e) => eprintln!("error: cannot restart replica {addr}: {e}"),
            }
        }
        if replicas.iter().all(|r| r.child.is_none()) {
            return;
        }
        tokio::time::sleep(SUPERVISE_EVERY).await;
    }
}

/// Waits until every replica at `addrs` knows a view of `n` members and a
/// leader. Asking only the founder is not enough: it counts the joiners as
/// members as soon as it decided their admission, before they learned it, and
/// a founder killed then takes the only copy of the view with it.
async fn wait_for_members(
    addrs: &[String],
    token: Option<String>,
    tls: Option<&ClientTls>,
    n: usize,
    children: &mut [Child],
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        for c in children.iter_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(format!(
                    "a replica exited during start-up ({status}); see its log"
                ));
            }
        }
        let mut formed = true;
        for addr in addrs {
            formed = formed
                && fetch(addr, token.clone(), tls, Duration::from_secs(1))
                    .await
                    .is_ok_and(|r| r.members.len() == n && r.leader.is_some());
        }
        if formed {
            return Ok(());
        }
        if start.elapsed() > FORM_TIMEOUT {
            return Err(format!(
                "the instance did not form within {FORM_TIMEOUT:?}; see the logs"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn run(args: ClusterArgs) -> ExitCode {
    if args.replicas == 0 {
        eprintln!("error: a cluster needs at least one replica (-n 1 or more)");
        return ExitCode::from(2);
    }
    if concoord_replica_cli::builtin::resolve(&args.objectname).is_none() {
        eprintln!(
            "error: {}",
            concoord_replica_cli::builtin::unknown(&args.objectname)
        );
        return ExitCode::from(2);
    }
    let Some(last_port) = args.base_port.checked_add(args.replicas - 1) else {
        eprintln!("error: ports past 65535; lower --base-port");
        return ExitCode::from(2);
    };
    let log_dir = args.log_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("concoord-cluster-{}", args.base_port))
    });
    if let Err(e) = std::fs::create_dir_all(&log_dir) {
        eprintln!("error: cannot create {}: {e}", log_dir.display());
        return ExitCode::from(1);
    }
    let addrs: Vec<String> = (args.base_port..=last_port)
        .map(|p| format!("{}:{p}", args.addr))
        .collect();
    let bootstrap = addrs.join(", ");
    let secret_file = log_dir.join(SECRET_FILE);
    if let Err(e) = InstanceSecret::load_or_create(&secret_file) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let ports: Vec<u16> = (args.base_port..=last_port).collect();
    let tls = match args
        .tls
        .then(|| issue_certificates(&log_dir, &args.addr, &ports))
        .transpose()
    {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let client_flags = if args.tls {
        let files = tls_files(&log_dir, None);
        format!(
            " --tls-ca {} --tls-cert {} --tls-key {}",
            files.ca.display(),
            files.cert.unwrap_or_default().display(),
            files.key.unwrap_or_default().display()
        )
    } else {
        String::new()
    };
    concoord_transport::cli::block_on(async move {
        let mut children = Vec::new();
        eprintln!(
            "starting {} replicas of {} (logs in {})",
            args.replicas,
            args.objectname,
            log_dir.display()
        );
        for (i, port) in (args.base_port..=last_port).enumerate() {
            let boot = (i > 0).then(|| addrs[0].as_str());
            match spawn_replica(&args, port, boot, &log_dir, false) {
                Ok(c) => children.push(c),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            }
            if i == 0 {
                // Let the founder bind its port before the others contact it.
                let _ = wait_for_members(
                    &addrs[..1],
                    args.token.clone(),
                    tls.as_ref(),
                    1,
                    &mut children,
                )
                .await;
            }
        }
        let formed = wait_for_members(
            &addrs,
            args.token.clone(),
            tls.as_ref(),
            children.len(),
            &mut children,
        )
        .await;
        if let Err(e) = formed {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        println!("{bootstrap}");
        eprintln!(
            "ConCoord instance is up with {} replicas. Try:",
            args.replicas
        );
        let methods: Vec<&str> = builtin::resolve(&args.objectname)
            .map(|b| b.methods.iter().map(|(name, _)| *name).collect())
            .unwrap_or_default();
        if let Some(first) = methods.first() {
            eprintln!("  concoord call -b \"{bootstrap}\"{client_flags} {first} [ARGS…]");
            eprintln!("  (methods of {}: {})", args.objectname, methods.join(", "));
        }
        eprintln!("  concoord status -b \"{bootstrap}\"{client_flags}");
        eprintln!(
            "The instance secret is in {} (replicas joining by hand and concoord add/remove \
             need it: --peer-secret FILE).",
            secret_file.display()
        );
        eprintln!("Press Ctrl-C to stop the cluster.");
        let mut replicas: Vec<Supervised> = children
            .into_iter()
            .zip(args.base_port..=last_port)
            .zip(&addrs)
            .map(|((child, port), addr)| Supervised {
                port,
                addr: addr.clone(),
                child: Some(child),
                restarts: VecDeque::new(),
            })
            .collect();
        let code = tokio::select! {
            _ = tokio::signal::ctrl_c() => { eprintln!("stopping the cluster"); ExitCode::SUCCESS }
            _ = supervise(&args, &log_dir, &mut replicas) => {
                eprintln!("error: every replica kept failing; see the logs in {}", log_dir.display());
                ExitCode::from(1)
            }
        };
        for r in replicas.iter_mut() {
            if let Some(c) = r.child.as_mut() {
                let _ = c.kill().await;
            }
        }
        code
    })
}
