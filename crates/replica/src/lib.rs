//! The ConCoord replica runtime: drives `paxos-core` with real sockets and
//! timers and hosts one replicated object, of any type: it knows no
//! ready-made object and parses no flags.
//!
//! Run it from async code: [`run`] with [`ReplicaOptions`]. The command line
//! (`concoord replica`'s flags, the catalogue of ready-made objects, logging
//! setup, and `main::<O>()` for a user's own replica binary) is
//! `concoord-replica-cli`'s.

#![deny(missing_docs)]

// Public for the command line (`concoord-replica-cli`): the log daemon's
// bounded accept loop, the connection limit's default, and the dropped-log
// counter the network logger feeds.
pub mod bounded_accept;
pub mod limits;
pub mod metrics;
// Public for the replica simulation (`concoord-replica-sim`): injected bugs
// and the disk under the data directory.
pub mod bugs;
pub mod storage;
// Public for this crate's own integration tests (tests/): the exactly-once
// table as the log executes it, and hooks that misbehave on purpose.
pub mod logged_call;
pub mod replicated_state;
pub mod sessions;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
// The runtime itself.
mod background_snapshot;
mod driver;
mod founding_check;
mod join;
mod member_keeper;
mod metrics_server;
mod overlapped_sync;
mod peer_guard;
mod peer_secret;
mod reply_queue;
mod server;
mod session_keeper;
mod startup;
mod sync_pipeline;

use concoord_nameserver::{LocalView, NameServer, NameServerConfig, ViewSource};
use concoord_object::ReplicatedObject;
use concoord_transport::InstanceCell;
use concoord_transport::net::TcpListener;
use concoord_transport::tls_config::TlsFiles;
use concoord_transport::wire::DnsService;
use paxos_core::Member;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Semaphore, mpsc};

pub use peer_secret::PeerSecretSource;

/// Events queued from the network before senders wait (back-pressure). The
/// frames they carry are bounded in bytes by `limits::Budgets`.
const EVENT_QUEUE_MAX: usize = 65_536;

/// How a replica runs. Its `Debug` leaves the token out.
#[derive(Clone)]
pub struct ReplicaOptions {
    /// Address to listen on and announce.
    pub addr: String,
    /// Port.
    pub port: u16,
    /// Replicas of the instance to join; empty to start a new instance.
    pub bootstrap: Vec<String>,
    /// Token clients and replicas must present.
    pub token: Option<String>,
    /// Where the instance secret comes from (see `peer_secret`).
    pub peer_secret: PeerSecretSource,
    /// Length of one consensus tick.
    pub tick: Duration,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u32,
    /// Base election timeout in ticks.
    pub election_ticks: u32,
    /// Keep state on disk here (`-w`); `None`: in memory only.
    pub data_dir: Option<std::path::PathBuf>,
    /// Set a damaged data directory aside and rejoin as a new replica.
    pub repair: bool,
    /// Found a new instance without first checking that no running instance
    /// counts this address as its member (see `founding_check`).
    pub new_instance: bool,
    /// Take a snapshot every this many decided slots.
    pub snapshot_every: usize,
    /// Leader-side failure detection: suspect a silent member after the first
    /// duration, remove it from the view after the second; `None`: never.
    pub failure_detection: Option<(Duration, Duration)>,
    /// A client session silent for longer than this expires (through the
    /// log), releasing its locks and waits.
    pub session_ttl: Duration,
    /// Client connections (and operator tools) served at once; more are
    /// closed during their handshake, and retry.
    pub max_connections: usize,
    /// Also answer DNS for a domain from the live view (`-n`), and publish
    /// to Route53 (`-r`).
    pub nameserver: Option<NameServerConfig>,
    /// Serve Prometheus metrics here (`--metrics-addr`).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// TLS for every connection (`--tls-ca`, `--tls-cert`, `--tls-key`);
    /// `None`: plain TCP.
    pub tls: Option<TlsFiles>,
}

impl std::fmt::Debug for ReplicaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaOptions")
            .field("addr", &self.addr)
            .field("port", &self.port)
            .field("bootstrap", &self.bootstrap)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("peer_secret", &self.peer_secret)
            .field("tls", &self.tls)
            .field("data_dir", &self.data_dir)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        ReplicaOptions {
            addr: "127.0.0.1".into(),
            port: 14000,
            bootstrap: Vec::new(),
            token: None,
            peer_secret: PeerSecretSource::Default,
            tick: Duration::from_millis(10),
            heartbeat_ticks: 5,
            election_ticks: 50,
            data_dir: None,
            repair: false,
            new_instance: false,
            snapshot_every: 10_000,
            failure_detection: Some((Duration::from_secs(5), Duration::from_secs(10))),
            session_ttl: Duration::from_secs(5),
            max_connections: limits::CLIENT_CONNECTIONS_MAX,
            nameserver: None,
            metrics_addr: None,
            tls: None,
        }
    }
}

/// Why a replica could not run.
#[derive(Debug, Error)]
pub enum ReplicaError {
    /// The port is taken or the address is not local.
    #[error("cannot listen on {addr}: {source}; pick another address or port with -a/-p")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A malformed `-b` value.
    #[error("bad bootstrap address: {0}")]
    BadBootstrap(String),
    /// Flags that do not go together.
    #[error("{0}")]
    BadFlags(String),
    /// `-o` named no known object.
    #[error("unknown object {name:?}; known objects: {known}")]
    UnknownObject {
        /// What was asked.
        name: String,
        /// What exists.
        known: String,
    },
    /// `-o` missing where it is required.
    #[error("no object given; pass -o NAME (e.g. -o concoord.object.counter.Counter)")]
    NoObject,
    /// The data directory cannot be used.
    #[error("{0}")]
    Storage(#[from] storage::StorageError),
    /// The TLS files cannot be used.
    #[error("{0}")]
    Tls(#[from] concoord_transport::TlsError),
    /// The name server (`-n`) cannot start.
    #[error("{0}")]
    Nameserver(#[from] concoord_nameserver::NameserverError),
    /// A founder found its address is a member of a running instance.
    #[error("{0}")]
    MemberElsewhere(String),
    /// The replica stopped on an unrecoverable error.
    #[error("replica stopped: {0}")]
    Fatal(String),
}

/// Runs a replica of object type `O` until it fails or is told to stop.
pub async fn run<O: ReplicatedObject>(opts: ReplicaOptions) -> Result<(), ReplicaError> {
    run_on::<O>(opts, None).await
}

/// Like [`run`], with the data directory on `disk` if given (a simulated
/// disk, whose replica keeps its instance secret in memory only).
pub async fn run_on<O: ReplicatedObject>(
    opts: ReplicaOptions,
    disk: Option<Arc<dyn storage::Disk>>,
) -> Result<(), ReplicaError> {
    let my_addr = format!("{}:{}", opts.addr, opts.port);
    // TLS files are checked before anything listens or touches the disk.
    let tls = opts.tls.as_ref().map(TlsFiles::replica).transpose()?;
    let listener = TcpListener::bind(&my_addr)
        .await
        .map_err(|source| ReplicaError::Listen {
            addr: my_addr.clone(),
            source,
        })?;
    let metrics_listener = match opts.metrics_addr {
        Some(addr) => Some(metrics_server::bind(addr).await?),
        None => None,
    };
    let mut start = match disk {
        Some(disk) => startup::start_on::<O>(&opts, &my_addr, disk)?,
        None => startup::start::<O>(&opts, &my_addr)?,
    };
    let id = start.node.id();
    // A secret this start did not make may be a running instance's.
    if start.founding && !opts.new_instance && !start.secret.created {
        let founder = founding_check::Founder {
            me: id,
            my_addr: &my_addr,
            token: opts.token.as_deref(),
            secret: &start.secret.secret,
            tls: tls.as_ref().map(|t| &t.server),
        };
        founding_check::listen_before_founding(&listener, &founder, founding_check::GRACE).await?;
    }
    start.create_founders_storage()?;
    peer_secret::announce(&start.secret, &opts.addr, &my_addr);
    let secret = start.secret.secret;
    let instance = Arc::new(InstanceCell::new(start.instance));
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE_MAX);
    let sessions_not_before_ms = Arc::new(AtomicU64::new(0));
    let stats = Arc::new(server::ListenerStats::default());
    let budgets = Arc::new(limits::Budgets::default());
    let members = Arc::new(concoord_transport::handshake::MemberAddrs::default());
    let gate = server::Gate {
        me: id,
        token: opts.token.clone(),
        secret: secret.clone(),
        instance: instance.clone(),
        sessions_not_before_ms: sessions_not_before_ms.clone(),
        client_slots: Arc::new(Semaphore::new(opts.max_connections.max(1))),
        budgets: budgets.clone(),
        stats: stats.clone(),
        tls: tls.as_ref().map(|t| t.server.clone()),
        members: members.clone(),
    };
    concoord_transport::determinism::spawn(server::serve(listener, gate, events_tx));
    let member_keeper = member_keeper::MemberKeeper::new(
        Member {
            id,
            addr: my_addr.clone(),
        },
        opts.bootstrap.clone(),
        join::JoinCredentials {
            token: opts.token.clone(),
            secret: secret.clone(),
            tls: tls.as_ref().map(|t| t.client.clone()),
        },
        opts.failure_detection,
        start.joining,
    );
    // The name server starts before consensus does, so a DNS port this
    // process may not bind stops it at once with the reason.
    let (dns, _nameserver) = match &opts.nameserver {
        Some(config) => {
            let (tx, view) = tokio::sync::watch::channel(LocalView::default());
            let source = ViewSource::Local {
                view,
                me: my_addr.clone(),
            };
            let server = NameServer::start(config.clone(), source).await?;
            let service = DnsService {
                domain: config.domain.clone(),
                addr: server.dns_addr().to_string(),
            };
            (Some(driver::DnsLink { service, view: tx }), Some(server))
        }
        None => (None, None),
    };
    let security = driver::Security {
        token: opts.token.clone(),
        secret,
        instance,
        sessions_not_before_ms,
        stats,
        budgets,
        tls: tls.map(|t| t.client),
        members,
    };
    let driver = driver::Driver::<O>::new(
        start.node,
        start.storage,
        my_addr,
        security,
        member_keeper,
        session_keeper::SessionKeeper::new(opts.session_ttl),
        dns,
    );
    if let Some(listener) = metrics_listener {
        tokio::spawn(metrics_server::serve(listener, driver.metrics()));
    }
    driver
        .run(events_rx, opts.tick)
        .await
        .map_err(|e| ReplicaError::Fatal(e.to_string()))
}
