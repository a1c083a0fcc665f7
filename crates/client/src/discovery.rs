//! Finding an instance by name: a bootstrap string may be a bare domain
//! (`counterdomain.com`) instead of `host:port` pairs.
//!
//! The replicas are the targets of `SRV _concoord._tcp.DOMAIN` (as a ConCoord
//! name server or Route53 publishes them), leader first (priority 0); each
//! target's address comes from the answer's additional section or a lookup
//! of its own. A domain without SRV records falls back to its A/AAAA records
//! and the default port, 14000.
//!
//! The resolver is hickory's, reading the system's configuration
//! (`/etc/resolv.conf`) or asking one given server (`--dns-server ADDR:PORT`,
//! [`ClientOptions::dns_server`](crate::ClientOptions)). Each resolution
//! starts afresh (no cache), so a client that lost every replica it knew
//! and resolves again sees the view the name server answers now.

use crate::errors::ClientError;
use concoord_transport::addresses::{
    Bootstrap, DEFAULT_PORT, SRV_SERVICE, parse_bootstrap_or_domain,
};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::{Resolver, TokioResolver};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Time one DNS query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries per query and server.
const QUERY_ATTEMPTS: usize = 2;

/// The replicas a bootstrap string names, and the domain if it is one.
pub async fn resolve_bootstrap(
    bootstrap: &str,
    dns_server: Option<SocketAddr>,
) -> Result<(Vec<String>, Option<String>), ClientError> {
    match parse_bootstrap_or_domain(bootstrap).map_err(ClientError::Bootstrap)? {
        Bootstrap::Addresses(addrs) => Ok((addrs, None)),
        Bootstrap::Domain(domain) => {
            let addrs = resolve_domain(&domain, dns_server).await?;
            Ok((addrs, Some(domain)))
        }
    }
}

/// The replicas of the instance at `domain` (`ip:port`, leader first).
pub async fn resolve_domain(
    domain: &str,
    dns_server: Option<SocketAddr>,
) -> Result<Vec<String>, ClientError> {
    let failed = |detail: String| ClientError::Resolve {
        domain: domain.to_string(),
        detail,
    };
    let resolver = resolver(dns_server).map_err(failed)?;
    let srv_name = format!("{SRV_SERVICE}.{domain}.");
    match resolver.srv_lookup(srv_name.as_str()).await {
        Ok(lookup) => {
            let mut targets: Vec<(u16, std::cmp::Reverse<u16>, Name, u16)> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(srv) => Some((
                        srv.priority,
                        std::cmp::Reverse(srv.weight),
                        srv.target.clone(),
                        srv.port,
                    )),
                    _ => None,
                })
                .collect();
            targets.sort();
            let mut addrs = Vec::new();
            for (_, _, target, port) in targets {
                let glue: Vec<IpAddr> = lookup
                    .additionals()
                    .iter()
                    .filter(|r| r.name == target)
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    })
                    .collect();
                let ips = if glue.is_empty() {
                    match resolver.lookup_ip(target.clone()).await {
                        Ok(ips) => ips.iter().collect(),
                        Err(_) => Vec::new(),
                    }
                } else {
                    glue
                };
                for ip in ips {
                    let a = SocketAddr::new(ip, port).to_string();
                    if !addrs.contains(&a) {
                        addrs.push(a);
                    }
                }
            }
            if addrs.is_empty() {
                return Err(failed(format!("no target of {srv_name} resolves")));
            }
            Ok(addrs)
        }
        Err(srv_error) => {
            // No SRV records: the domain's own addresses, default port.
            let ips = resolver
                .lookup_ip(format!("{domain}."))
                .await
                .map_err(|e| failed(format!("no SRV record ({srv_error}) and no address ({e})")))?;
            Ok(ips
                .iter()
                .map(|ip| SocketAddr::new(ip, DEFAULT_PORT).to_string())
                .collect())
        }
    }
}

/// A resolver without cache, asking `server` or the system's servers.
fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, String> {
    let mut builder = match server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => Resolver::builder_tokio()
            .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.cache_size = 0;
    opts.timeout = QUERY_TIMEOUT;
    opts.attempts = QUERY_ATTEMPTS;
    builder.build().map_err(|e| e.to_string())
}
