//! DNS helpers for the name-server tests: real queries with `dig` (Debian's
//! bind9-dnsutils, which `scripts/test.sh` installs) and with
//! hickory-resolver.

use crate::output_within;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::{Resolver, TokioResolver};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// The zone every name-server test serves.
pub const DOMAIN: &str = "counterdomain.com";

/// What `dig` printed for one query.
#[derive(Clone, Debug)]
pub struct Dig {
    /// `NOERROR`, `NXDOMAIN`, `REFUSED`…
    pub status: String,
    /// The header flags (`qr aa …`).
    pub flags: Vec<String>,
    /// The data of each answer record (last column(s) of the ANSWER section).
    pub answers: Vec<String>,
    /// The whole output.
    pub raw: String,
}

impl Dig {
    /// Whether the answer is authoritative.
    pub fn authoritative(&self) -> bool {
        self.flags.iter().any(|f| f == "aa")
    }

    /// The answers, sorted.
    pub fn sorted(&self) -> Vec<String> {
        let mut a = self.answers.clone();
        a.sort();
        a
    }
}

/// `dig +norecurse @server -t TYPE NAME`, over UDP.
pub fn dig(server: SocketAddr, rtype: &str, name: &str) -> Dig {
    let out = output_within(
        Command::new("dig")
            .arg(format!("@{}", server.ip()))
            .args(["-p", &server.port().to_string()])
            .args(["+norecurse", "+tries=1", "+time=2", "-t", rtype, name]),
        Duration::from_secs(10),
    );
    let raw = String::from_utf8_lossy(&out.stdout).to_string();
    let status = raw
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("NO ANSWER")
        .to_string();
    let flags = raw
        .split(";; flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let answers = raw
        .split(";; ANSWER SECTION:\n")
        .nth(1)
        .map(|s| {
            s.lines()
                .take_while(|l| !l.trim().is_empty())
                .filter_map(|l| {
                    // name ttl class type data…
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    (cols.len() >= 5).then(|| cols[4..].join(" "))
                })
                .collect()
        })
        .unwrap_or_default();
    Dig {
        status,
        flags,
        answers,
        raw,
    }
}

/// A hickory resolver asking only `server`, without a cache.
pub fn resolver(server: SocketAddr) -> TokioResolver {
    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
    for c in &mut ns.connections {
        c.port = server.port();
    }
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().cache_size = 0;
    builder.build().expect("a resolver")
}

/// The answers hickory-resolver gets for `name` and `rtype`, in dig's
/// presentation form, sorted (empty on NXDOMAIN or no records).
pub fn hickory_answers(
    rt: &tokio::runtime::Runtime,
    server: SocketAddr,
    rtype: RecordType,
    name: &str,
) -> Vec<String> {
    let resolver = resolver(server);
    let lookup = rt.block_on(resolver.lookup(name, rtype));
    let mut answers: Vec<String> = match lookup {
        Ok(l) => l
            .answers()
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| r.data.to_string())
            .collect(),
        Err(_) => Vec::new(),
    };
    answers.sort();
    answers
}

/// The SOA serial a server answers with.
pub fn soa_serial(server: SocketAddr) -> u32 {
    let d = dig(server, "SOA", DOMAIN);
    d.answers
        .first()
        .and_then(|soa| soa.split_whitespace().nth(2))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SOA serial in {}", d.raw))
}
