//! The record set of the zone, computed from a [`LiveView`]: the one
//! definition both the DNS server and the Route53 publisher answer from.
//!
//! For the zone `DOMAIN` (every name absolute):
//!
//! | name | type | data |
//! |---|---|---|
//! | `DOMAIN` | A / AAAA | each replica's IP (once per IP) |
//! | `_concoord._tcp.DOMAIN` | SRV | per replica: priority 0 for the leader, 10 for the others; weight 1; its port; target `<ip>.ipaddr.DOMAIN` |
//! | `<ip>.ipaddr.DOMAIN` | A / AAAA | that IP, so every SRV target and NS name resolves (`.` or `:` of the IP written `-`) |
//! | `DOMAIN` | TXT | per node: `"<addr> replica[ leader][ nameserver=<ip:port>]"`, or `"<ip:port> nameserver"` for a name server outside the view |
//! | `DOMAIN` | NS | `<ip>.ipaddr.DOMAIN` of each name server (the glue is the A record above) |
//! | `DOMAIN` | SOA | first name server, `hostmaster.DOMAIN`, the serial, refresh 3600, retry 600, expire 86400, minimum = TTL |

use crate::live_view::LiveView;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

/// The label under which every IP gets a name of its own.
pub const IPADDR_LABEL: &str = "ipaddr";

/// One record's data.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordData {
    /// An IPv4 or IPv6 address (A or AAAA, by the address).
    Address(IpAddr),
    /// A service location.
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Share among equal priorities.
        weight: u16,
        /// The replica's port.
        port: u16,
        /// An absolute name that resolves to the replica's IP.
        target: String,
    },
    /// One character-string.
    Txt(String),
    /// A name server (absolute name).
    Ns(String),
    /// The start of authority.
    Soa {
        /// The primary name server.
        mname: String,
        /// The mailbox of the zone's operator, as a name.
        rname: String,
        /// `YYYYMMDDnn`.
        serial: u32,
        /// Negative-caching TTL.
        minimum: u32,
    },
}

impl RecordData {
    /// The record type's mnemonic (`A`, `AAAA`, `SRV`, `TXT`, `NS`, `SOA`).
    pub fn kind(&self) -> &'static str {
        match self {
            RecordData::Address(IpAddr::V4(_)) => "A",
            RecordData::Address(IpAddr::V6(_)) => "AAAA",
            RecordData::Srv { .. } => "SRV",
            RecordData::Txt(_) => "TXT",
            RecordData::Ns(_) => "NS",
            RecordData::Soa { .. } => "SOA",
        }
    }

    /// The data in zone-file presentation form (as Route53 takes it).
    pub fn presentation(&self) -> String {
        match self {
            RecordData::Address(ip) => ip.to_string(),
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("{priority} {weight} {port} {target}"),
            RecordData::Txt(t) => format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
            RecordData::Ns(n) => n.clone(),
            RecordData::Soa {
                mname,
                rname,
                serial,
                minimum,
            } => format!("{mname} {rname} {serial} 3600 600 86400 {minimum}"),
        }
    }
}

/// One record of the zone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ZoneRecord {
    /// Its owner name, absolute, lower case, with the trailing dot.
    pub name: String,
    /// Seconds it may be cached.
    pub ttl: u32,
    /// Its data.
    pub data: RecordData,
}

/// The zone's name and TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSpec {
    /// The domain, without a trailing dot (`counterdomain.com`).
    pub domain: String,
    /// TTL of every record, in seconds.
    pub ttl: u32,
}

impl ZoneSpec {
    /// The zone's apex, absolute (`counterdomain.com.`).
    pub fn apex(&self) -> String {
        format!("{}.", self.domain)
    }

    /// The SRV owner name, `_concoord._tcp.DOMAIN.`.
    pub fn srv_name(&self) -> String {
        format!(
            "{}.{}.",
            concoord_transport::addresses::SRV_SERVICE,
            self.domain
        )
    }

    /// The name of an IP inside the zone: `127-0-0-1.ipaddr.DOMAIN.`.
    pub fn ip_name(&self, ip: IpAddr) -> String {
        let label: String = ip
            .to_string()
            .chars()
            .map(|c| if c == '.' || c == ':' { '-' } else { c })
            .collect();
        format!("{label}.{IPADDR_LABEL}.{}.", self.domain)
    }
}

/// The records of the zone for `view`, SOA last, with `serial`. Replicas
/// whose address is no `ip:port` are left out (a view holds only such).
pub fn zone_records(spec: &ZoneSpec, view: &LiveView, serial: u32) -> Vec<ZoneRecord> {
    let apex = spec.apex();
    let mut out = BTreeSet::new();
    let record = |name: &str, data: RecordData| ZoneRecord {
        name: name.to_string(),
        ttl: spec.ttl,
        data,
    };
    let mut name_servers = BTreeSet::new();
    for replica in &view.replicas {
        let Ok(sock) = replica.addr.parse::<SocketAddr>() else {
            continue;
        };
        let ip = sock.ip();
        out.insert(record(&apex, RecordData::Address(ip)));
        out.insert(record(&spec.ip_name(ip), RecordData::Address(ip)));
        out.insert(record(
            &spec.srv_name(),
            RecordData::Srv {
                priority: if replica.leader { 0 } else { 10 },
                weight: 1,
                port: sock.port(),
                target: spec.ip_name(ip),
            },
        ));
        let mut txt = format!("{} replica", replica.addr);
        if replica.leader {
            txt.push_str(" leader");
        }
        if let Some(dns) = &replica.dns {
            txt.push_str(&format!(" nameserver={dns}"));
            if let Ok(d) = dns.parse::<SocketAddr>() {
                name_servers.insert(d.ip());
            }
        }
        out.insert(record(&apex, RecordData::Txt(txt)));
    }
    for ns in &view.other_name_servers {
        let Ok(d) = ns.parse::<SocketAddr>() else {
            continue;
        };
        name_servers.insert(d.ip());
        out.insert(record(&apex, RecordData::Txt(format!("{ns} nameserver"))));
    }
    for ip in &name_servers {
        out.insert(record(&spec.ip_name(*ip), RecordData::Address(*ip)));
        out.insert(record(&apex, RecordData::Ns(spec.ip_name(*ip))));
    }
    let mname = name_servers
        .iter()
        .next()
        .map_or_else(|| apex.clone(), |ip| spec.ip_name(*ip));
    let mut records: Vec<ZoneRecord> = out.into_iter().collect();
    records.push(record(
        &apex,
        RecordData::Soa {
            mname,
            rname: format!("hostmaster.{apex}"),
            serial,
            minimum: spec.ttl,
        },
    ));
    records
}

/// The zone the unit tests use: `counterdomain.com`, TTL 30.
#[cfg(test)]
pub(crate) fn spec() -> ZoneSpec {
    ZoneSpec {
        domain: "counterdomain.com".into(),
        ttl: 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live_view::ViewReplica;

    fn view() -> LiveView {
        LiveView {
            epoch: 3,
            replicas: vec![
                ViewReplica {
                    addr: "127.0.0.1:14000".into(),
                    leader: true,
                    dns: Some("127.0.0.1:5353".into()),
                },
                ViewReplica {
                    addr: "127.0.0.2:14001".into(),
                    leader: false,
                    dns: None,
                },
            ],
            other_name_servers: vec!["127.0.0.9:5353".into()],
        }
    }

    fn of_kind<'a>(records: &'a [ZoneRecord], kind: &str) -> Vec<&'a ZoneRecord> {
        records.iter().filter(|r| r.data.kind() == kind).collect()
    }

    #[test]
    fn every_srv_target_and_ns_name_has_an_address_in_the_zone() {
        let records = zone_records(&spec(), &view(), 2026012000);
        let has_address = |name: &str| {
            records
                .iter()
                .any(|r| r.name == name && matches!(r.data, RecordData::Address(_)))
        };
        for r in &records {
            match &r.data {
                RecordData::Srv { target, .. } => assert!(has_address(target), "{target}"),
                RecordData::Ns(name) => assert!(has_address(name), "{name}"),
                _ => {}
            }
        }
        assert_eq!(of_kind(&records, "SRV").len(), 2);
        assert_eq!(of_kind(&records, "NS").len(), 2);
    }

    #[test]
    fn srv_records_sit_under_the_service_label_never_on_the_apex() {
        let records = zone_records(&spec(), &view(), 1);
        for r in of_kind(&records, "SRV") {
            assert_eq!(r.name, "_concoord._tcp.counterdomain.com.");
        }
        let leader = of_kind(&records, "SRV")
            .into_iter()
            .find(|r| matches!(r.data, RecordData::Srv { port: 14000, .. }))
            .map(|r| r.data.presentation());
        assert_eq!(
            leader.as_deref(),
            Some("0 1 14000 127-0-0-1.ipaddr.counterdomain.com.")
        );
    }

    #[test]
    fn txt_lists_every_node_with_its_roles() {
        let records = zone_records(&spec(), &view(), 1);
        let txt: Vec<String> = of_kind(&records, "TXT")
            .iter()
            .map(|r| r.data.presentation())
            .collect();
        assert_eq!(
            txt,
            vec![
                "\"127.0.0.1:14000 replica leader nameserver=127.0.0.1:5353\"",
                "\"127.0.0.2:14001 replica\"",
                "\"127.0.0.9:5353 nameserver\"",
            ]
        );
    }

    #[test]
    fn one_soa_last_carrying_the_serial_and_the_ttl() {
        let records = zone_records(&spec(), &view(), 2026012005);
        let soa = records.last().map(|r| r.data.presentation());
        assert_eq!(
            soa.as_deref(),
            Some(
                "127-0-0-1.ipaddr.counterdomain.com. hostmaster.counterdomain.com. 2026012005 3600 600 86400 30"
            )
        );
        assert_eq!(of_kind(&records, "SOA").len(), 1);
        assert!(records.iter().all(|r| r.ttl == 30));
    }

    #[test]
    fn ipv6_replicas_get_aaaa_records_and_a_dashed_name() {
        let v = LiveView::of_addresses(1, &["[::1]:14000"]);
        let records = zone_records(&spec(), &v, 1);
        let names: Vec<&str> = of_kind(&records, "AAAA")
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            names,
            vec!["--1.ipaddr.counterdomain.com.", "counterdomain.com."]
        );
    }
}
