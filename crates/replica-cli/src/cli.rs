//! The replica's command-line flags, exactly the original's
//! (`-a -p -b -o -l -n -r -w -d`), shared by `concoord replica`,
//! `concoord-replica` and users' own replica binaries.

use crate::logging::{LogFormat, LogSetup};
use crate::net_log::{self, NetLog};
use clap::Args;
use concoord_nameserver::{NameServerConfig, Route53Options};
use concoord_replica::{PeerSecretSource, ReplicaError, ReplicaOptions};
use concoord_transport::addresses::{parse_bootstrap, parse_domain};
use std::net::SocketAddr;

/// Flags of `concoord replica`. Its `Debug` leaves the token out.
#[derive(Args, Clone)]
pub struct ReplicaArgs {
    /// Address this replica listens on and announces to others.
    #[arg(
        short = 'a',
        long = "addr",
        value_name = "ADDR",
        default_value = "127.0.0.1"
    )]
    pub addr: String,
    /// Port for the node.
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT",
        default_value_t = 14000
    )]
    pub port: u16,
    /// Address:port of a replica of the running instance to join
    /// (comma-separated list accepted). Without it, this replica starts a new
    /// instance on its own.
    #[arg(short = 'b', long = "boot", value_name = "BOOTSTRAP")]
    pub boot: Option<String>,
    /// The object to serve: a ready-made object's dotted or short name
    /// (e.g. concoord.object.counter.Counter, counter).
    #[arg(short = 'o', long = "objectname", value_name = "OBJECTNAME")]
    pub objectname: Option<String>,
    /// Address (host:port) of a `concoord logdaemon` to ship log lines to.
    /// The replica never waits for it: lines it cannot take are dropped and
    /// counted (see --log-buffer-lines).
    #[arg(short = 'l', long = "logger", value_name = "LOGGER")]
    pub logger: Option<String>,
    /// With -l: log lines held for the log daemon while it is slow or
    /// unreachable (at most 1 MiB besides); more are dropped and counted.
    #[arg(long, value_name = "N", default_value_t = net_log::QUEUE_LINES_DEFAULT)]
    pub log_buffer_lines: usize,
    /// Log format, on the console and to the log daemon: text (coloured
    /// only on a terminal) or json (one object per line).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve Prometheus metrics on http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// Also answer DNS for this domain from the live view (A, AAAA,
    /// SRV _concoord._tcp.DOMAIN, TXT, NS, SOA).
    #[arg(short = 'n', long = "domainname", value_name = "DOMAIN")]
    pub domainname: Option<String>,
    /// With -n: the leader also publishes the records to the Amazon Route53
    /// hosted zone of DOMAIN (builds with the `route53` feature).
    #[arg(short = 'r', long = "route53", requires = "domainname")]
    pub route53: bool,
    /// With -n: the address to answer DNS on (default: the -a address).
    #[arg(long, value_name = "ADDR", requires = "domainname")]
    pub dns_addr: Option<String>,
    /// With -n: the DNS port (53 needs root or CAP_NET_BIND_SERVICE).
    #[arg(long, value_name = "PORT", default_value_t = 53)]
    pub dns_port: u16,
    /// With -n: the TTL of every record, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = concoord_nameserver::DEFAULT_TTL_SECS)]
    pub dns_ttl: u32,
    /// With -r: the Route53 endpoint to use instead of AWS's (AWS_ENDPOINT_URL
    /// works too).
    #[arg(long, value_name = "URL", requires = "route53")]
    pub route53_endpoint: Option<String>,
    /// Found a new instance at once, even if this address may be a member of
    /// a running one (without it, a founder whose peer secret file already
    /// existed first listens 2.5 s for that instance's replicas, and refuses
    /// to found if one calls: rejoin it with -b instead).
    #[arg(long, conflicts_with = "boot")]
    pub new_instance: bool,
    /// Keep promises, accepted values, decisions and snapshots on disk, and
    /// resume from them after a restart (same identity).
    #[arg(short = 'w', long = "writetodisk")]
    pub writetodisk: bool,
    /// Data directory for -w (default: ./concoord-data-ADDR_PORT).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// The data directory is damaged: set it aside and rejoin the instance
    /// (through -b) as a new replica.
    #[arg(long)]
    pub repair: bool,
    /// Snapshot the object every this many decided slots (bounds the log).
    #[arg(long, value_name = "SLOTS", default_value_t = 10_000)]
    pub snapshot_every: usize,
    /// Seconds of silence after which the leader suspects a replica.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub suspect_after: f64,
    /// Seconds of silence after which the leader removes a replica from the view.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub remove_after: f64,
    /// Never remove silent replicas automatically.
    #[arg(long)]
    pub no_auto_remove: bool,
    /// Seconds a client may stay silent before its session expires and its
    /// locks, permits and waits are released (clients send a keep-alive every
    /// second).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub session_ttl: f64,
    /// Client connections (and operator tools) served at once; more are
    /// closed during their handshake and retry. Connections still in their
    /// handshake are limited to 128 besides.
    #[arg(long, value_name = "N", default_value_t = concoord_replica::limits::CLIENT_CONNECTIONS_MAX)]
    pub max_connections: usize,
    /// Threads that run the replica: 1 runs consensus and every connection
    /// on one thread, so no message is handed between threads (the fastest
    /// where replicas share a few cores; docs/benchmarks.md); N > 1 runs the
    /// connections on N worker threads beside consensus (TLS handshakes and
    /// large values on several cores); 0 one worker per core.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Debug logging.
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,
    /// Security token clients and replicas must present. A token admits
    /// clients only: replicas and operators also prove the instance secret.
    #[arg(short = 't', long = "token", value_name = "TOKEN")]
    pub token: Option<String>,
    /// File holding the instance secret every replica of the instance
    /// proves to the others. A new instance's first replica creates it if
    /// missing; a joining replica (-b) must be given a copy. Default for the
    /// first replica: DATA_DIR/peer-secret with -w, else
    /// ./concoord-peer-secret-ADDR_PORT.
    #[arg(long, value_name = "FILE", conflicts_with = "no_peer_secret")]
    pub peer_secret: Option<std::path::PathBuf>,
    /// INSECURE: run without an instance secret. Anyone who reaches the port
    /// can then act as a replica, an operator or any client session. Only
    /// for isolated test networks; every replica of the instance needs it.
    #[arg(long)]
    pub no_peer_secret: bool,
    /// TLS for client and peer connections.
    #[command(flatten)]
    pub tls: concoord_transport::cli::TlsArgs,
}

impl std::fmt::Debug for ReplicaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaArgs")
            .field("addr", &self.addr)
            .field("port", &self.port)
            .field("boot", &self.boot)
            .field("objectname", &self.objectname)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("peer_secret", &self.peer_secret)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl ReplicaArgs {
    /// Checks the flags and builds the options, refusing flags whose feature
    /// this build does not have rather than ignoring them.
    pub fn to_options(&self) -> Result<ReplicaOptions, ReplicaError> {
        let bootstrap = match &self.boot {
            Some(b) => parse_bootstrap(b).map_err(ReplicaError::BadBootstrap)?,
            None => Vec::new(),
        };
        if !self.writetodisk && (self.data_dir.is_some() || self.repair) {
            return Err(ReplicaError::BadFlags(
                "--data-dir and --repair go with -w/--writetodisk".into(),
            ));
        }
        if self.remove_after < self.suspect_after || self.suspect_after <= 0.0 {
            return Err(ReplicaError::BadFlags(
                "--remove-after must be at least --suspect-after, and both positive".into(),
            ));
        }
        if self.tls.tls_cert.is_none() && self.tls.tls_ca.is_some() {
            return Err(ReplicaError::BadFlags(
                "a replica with --tls-ca needs its own certificate: give --tls-cert and --tls-key \
                 (see docs/security.md)"
                    .into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(ReplicaError::BadFlags(
                "--max-connections must be at least 1".into(),
            ));
        }
        if self.session_ttl < 2.0 {
            return Err(ReplicaError::BadFlags(
                "--session-ttl must be at least 2 seconds (clients send a keep-alive every second)"
                    .into(),
            ));
        }
        let data_dir = self.writetodisk.then(|| {
            self.data_dir
                .clone()
                .unwrap_or_else(|| format!("concoord-data-{}_{}", self.addr, self.port).into())
        });
        let failure_detection = (!self.no_auto_remove).then(|| {
            (
                std::time::Duration::from_secs_f64(self.suspect_after),
                std::time::Duration::from_secs_f64(self.remove_after),
            )
        });
        let peer_secret = match (&self.peer_secret, self.no_peer_secret) {
            (Some(file), _) => PeerSecretSource::File(file.clone()),
            (None, true) => PeerSecretSource::Open,
            (None, false) => PeerSecretSource::Default,
        };
        Ok(ReplicaOptions {
            nameserver: self.nameserver()?,
            addr: self.addr.clone(),
            port: self.port,
            bootstrap,
            token: self.token.clone(),
            peer_secret,
            data_dir,
            repair: self.repair,
            new_instance: self.new_instance,
            snapshot_every: self.snapshot_every,
            failure_detection,
            session_ttl: std::time::Duration::from_secs_f64(self.session_ttl),
            max_connections: self.max_connections,
            metrics_addr: self.metrics_addr,
            tls: self.tls.files(),
            ..ReplicaOptions::default()
        })
    }
}

impl ReplicaArgs {
    /// The name server's configuration, with `-n`.
    fn nameserver(&self) -> Result<Option<NameServerConfig>, ReplicaError> {
        let Some(domain) = &self.domainname else {
            return Ok(None);
        };
        let domain = parse_domain(domain).map_err(ReplicaError::BadFlags)?;
        let host = self.dns_addr.as_deref().unwrap_or(&self.addr);
        let dns_addr = dns_socket_addr(host, self.dns_port)?;
        let mut config = NameServerConfig::new(&domain, dns_addr);
        config.ttl = self.dns_ttl;
        config.token = self.token.clone();
        config.route53 = self.route53.then(|| Route53Options {
            endpoint: self.route53_endpoint.clone(),
        });
        Ok(Some(config))
    }
}

/// The socket address to answer DNS on: `host` (an IP, or a name resolved
/// now) and `port`.
pub fn dns_socket_addr(host: &str, port: u16) -> Result<SocketAddr, ReplicaError> {
    use std::net::ToSocketAddrs;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            ReplicaError::BadFlags(format!(
                "cannot answer DNS on {host:?}: not an IP address or a resolvable name; give --dns-addr IP"
            ))
        })
}

impl ReplicaArgs {
    /// Sets up logging as the flags say: console format, level, and with
    /// `-l` the shipping of every line to a log daemon.
    pub fn init_logging(&self) -> Result<(), ReplicaError> {
        let ship = match &self.logger {
            Some(daemon) => {
                let valid = daemon
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !valid {
                    return Err(ReplicaError::BadFlags(format!(
                        "-l {daemon:?}: give the log daemon as HOST:PORT (the --listen of `concoord logdaemon`)"
                    )));
                }
                let me = format!("{}:{}", self.addr, self.port);
                let log =
                    NetLog::start(daemon.clone(), me, self.log_buffer_lines).map_err(|e| {
                        ReplicaError::Fatal(format!("cannot start the network logger thread: {e}"))
                    })?;
                Some(log)
            }
            None => None,
        };
        crate::logging::init(LogSetup {
            debug: self.debug,
            format: self.log_format,
            ship,
        });
        Ok(())
    }
}

/// Sets up console logging (`RUST_LOG` overrides; `-d` means debug), as
/// text; for tools other than replicas.
pub fn init_logging(debug: bool) {
    crate::logging::init(LogSetup {
        debug,
        ..LogSetup::default()
    });
}
