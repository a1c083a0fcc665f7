//! ConCoord's name server: DNS answers about an instance, made from its live
//! view, and the same records published to Amazon Route53.
//!
//! A replica started with `-n DOMAIN` runs one (see `concoord-replica`), and
//! so does `concoord nameserver -n DOMAIN -b ADDRS` outside the view. Clients
//! then find the instance by name (`SRV _concoord._tcp.DOMAIN`).
//!
//! ```text
//!  replica driver ──LocalView──▶ Follower ──▶ LiveZone ◀── hickory Server (UDP+TCP)
//!  (or status probes)             │  probes members' status for NS roles
//!                                 └──Publication──▶ Route53 publisher (leader, feature `route53`)
//! ```
//!
//! Serving a zone for a view of two replicas, and asking it:
//!
//! ```
//! use concoord_nameserver::{LocalView, NameServer, NameServerConfig, ViewSource};
//! use hickory_resolver::Resolver;
//! use hickory_resolver::config::{NameServerConfig as Upstream, ResolverConfig};
//! use hickory_resolver::net::runtime::TokioRuntimeProvider;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (tx, view) = tokio::sync::watch::channel(LocalView {
//!     epoch: 1,
//!     members: vec!["127.0.0.1:14000".into(), "127.0.0.2:14001".into()],
//!     leader: Some("127.0.0.1:14000".into()),
//! });
//! let config = NameServerConfig::new("counterdomain.com", "127.0.0.1:0".parse()?);
//! let source = ViewSource::Local { view, me: "127.0.0.1:14000".into() };
//! let server = NameServer::start(config, source).await?;
//! # server.wait_for_serial().await;
//!
//! let mut upstream = Upstream::udp(server.dns_addr().ip());
//! upstream.connections[0].port = server.dns_addr().port();
//! let resolver = Resolver::builder_with_config(
//!     ResolverConfig::from_name_servers(vec![upstream]),
//!     TokioRuntimeProvider::default(),
//! )
//! .build()?;
//! let srv = resolver.srv_lookup("_concoord._tcp.counterdomain.com.").await?;
//! assert_eq!(srv.answers().len(), 2);
//! # drop(tx);
//! # Ok(()) }
//! ```
//!
//! What the zone holds is in [`zone_records`]; how the view is followed, in
//! [`follower`]; Route53 publication (cargo feature `route53`), in
//! `route53`; the stored Route53 credentials, in [`credentials`].
//!
//! Features: `route53` builds the Route53 publisher with the AWS SDK
//! (`aws-sdk-route53`, `aws-config`; TLS by rustls with ring). Without it,
//! asking for Route53 publication is refused with an error saying so.

#![deny(missing_docs)]

pub mod credentials;
pub mod dns_server;
pub mod errors;
pub mod follower;
pub mod live_view;
pub mod live_zone;
#[cfg(feature = "route53")]
pub mod route53;
pub mod route53_records;
pub mod serial;
pub mod zone_records;

pub use dns_server::DnsServer;
pub use errors::NameserverError;
pub use follower::{Follower, LocalView, Publication, ViewSource};
pub use live_view::{LiveView, ViewReplica};
pub use live_zone::LiveZone;
pub use zone_records::{RecordData, ZoneRecord, ZoneSpec, zone_records};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// TTL of every record unless told otherwise (`--dns-ttl`).
pub const DEFAULT_TTL_SECS: u32 = 30;
/// How often members are asked for their status (DNS roles, leader; the
/// whole view for a name server outside it).
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Where to publish to Route53 (`-r`).
#[derive(Clone, Debug, Default)]
pub struct Route53Options {
    /// Another endpoint than AWS's (`--route53-endpoint`; `AWS_ENDPOINT_URL`
    /// also works).
    pub endpoint: Option<String>,
}

/// How a name server runs. Its `Debug` leaves the token out.
#[derive(Clone)]
pub struct NameServerConfig {
    /// The zone.
    pub domain: String,
    /// TTL of every record, seconds.
    pub ttl: u32,
    /// Where to answer DNS (UDP and TCP).
    pub dns_addr: SocketAddr,
    /// The instance's token, for the status probes.
    pub token: Option<String>,
    /// Publish to Route53 as well (leader only).
    pub route53: Option<Route53Options>,
    /// How often members are asked for their status.
    pub probe_every: Duration,
}

impl std::fmt::Debug for NameServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameServerConfig")
            .field("domain", &self.domain)
            .field("ttl", &self.ttl)
            .field("dns_addr", &self.dns_addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("route53", &self.route53)
            .field("probe_every", &self.probe_every)
            .finish()
    }
}

impl NameServerConfig {
    /// A name server for `domain` answering on `dns_addr`, with the defaults.
    pub fn new(domain: &str, dns_addr: SocketAddr) -> NameServerConfig {
        NameServerConfig {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            ttl: DEFAULT_TTL_SECS,
            dns_addr,
            token: None,
            route53: None,
            probe_every: PROBE_EVERY,
        }
    }
}

/// A running name server; dropping it stops it.
pub struct NameServer {
    dns: DnsServer,
    zone: Arc<LiveZone>,
    tasks: Vec<JoinHandle<()>>,
}

impl NameServer {
    /// Answers DNS for `config.domain` from the view `source` gives, and
    /// publishes to Route53 if asked.
    pub async fn start(
        config: NameServerConfig,
        source: ViewSource,
    ) -> Result<NameServer, NameserverError> {
        if config.route53.is_some() && !cfg!(feature = "route53") {
            return Err(NameserverError::Route53(
                "this build of concoord has no Route53 support; build it with \
                 `cargo build --release --features route53`"
                    .into(),
            ));
        }
        let spec = ZoneSpec {
            domain: config.domain.clone(),
            ttl: config.ttl,
        };
        let zone = Arc::new(LiveZone::new(spec.clone())?);
        let dns = DnsServer::start(config.dns_addr, zone.clone()).await?;
        let (follower, publications) = Follower::new(
            source,
            dns.addr().to_string(),
            config.token.clone(),
            config.probe_every,
            zone.clone(),
        );
        let publisher = start_publisher(&config, spec, publications).await?;
        let tasks = std::iter::once(tokio::spawn(follower.run()))
            .chain(publisher)
            .collect();
        Ok(NameServer { dns, zone, tasks })
    }

    /// Where it answers DNS.
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns.addr()
    }

    /// The zone it serves.
    pub fn zone(&self) -> &Arc<LiveZone> {
        &self.zone
    }

    /// Waits until the zone has been published once.
    pub async fn wait_for_serial(&self) -> u32 {
        loop {
            if let Some(s) = self.zone.serial() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Starts the Route53 publisher if asked (`-r`).
#[cfg(feature = "route53")]
async fn start_publisher(
    config: &NameServerConfig,
    spec: ZoneSpec,
    publications: tokio::sync::watch::Receiver<Publication>,
) -> Result<Option<JoinHandle<()>>, NameserverError> {
    let Some(options) = &config.route53 else {
        return Ok(None);
    };
    let publisher = route53::Publisher::new(spec, options).await?;
    Ok(Some(tokio::spawn(publisher.run(publications))))
}

/// Without the `route53` feature there is no publisher (`start` refused
/// `-r` already).
#[cfg(not(feature = "route53"))]
async fn start_publisher(
    _config: &NameServerConfig,
    _spec: ZoneSpec,
    _publications: tokio::sync::watch::Receiver<Publication>,
) -> Result<Option<JoinHandle<()>>, NameserverError> {
    Ok(None)
}

impl Drop for NameServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
