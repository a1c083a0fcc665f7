//! The bootstrap string: comma-separated `host:port` pairs, spaces allowed
//! (`"127.0.0.1:14000, 127.0.0.1:14001"`), as the original ConCoord took it,
//! or a bare domain name (`counterdomain.com`) whose name server lists the
//! replicas under [`SRV_SERVICE`] (see `concoord-nameserver`).

/// The SRV owner label under which the replicas of an instance are listed:
/// `_concoord._tcp.DOMAIN`.
pub const SRV_SERVICE: &str = "_concoord._tcp";
/// The port a replica listens on unless told otherwise (`-p`), and the one a
/// client assumes for a domain that has only A/AAAA records.
pub const DEFAULT_PORT: u16 = 14000;

/// What a bootstrap string names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Replicas by address (`host:port`).
    Addresses(Vec<String>),
    /// A domain whose name server lists the replicas.
    Domain(String),
}

/// Reads a bootstrap string: `host:port` pairs, or one bare domain name (no
/// port, no comma; a trailing dot is allowed).
pub fn parse_bootstrap_or_domain(s: &str) -> Result<Bootstrap, String> {
    let t = s.trim();
    if !t.is_empty() && !t.contains(':') && !t.contains(',') {
        return parse_domain(t).map(Bootstrap::Domain);
    }
    parse_bootstrap(s).map(Bootstrap::Addresses)
}

/// Checks a domain name (letters, digits, `-`, `_`, dot-separated labels of
/// 1 to 63 bytes, 253 bytes in all) and returns it without a trailing dot.
pub fn parse_domain(s: &str) -> Result<String, String> {
    let d = s.trim().trim_end_matches('.');
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if d.is_empty() || d.len() > 253 || !d.split('.').all(label_ok) {
        return Err(format!(
            "{s:?} is neither host:port[, host:port…] nor a domain name (labels of letters, digits and '-')"
        ));
    }
    Ok(d.to_ascii_lowercase())
}

/// Splits and checks a bootstrap string.
pub fn parse_bootstrap(s: &str) -> Result<Vec<String>, String> {
    let addrs: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if addrs.is_empty() {
        return Err(format!(
            "no address in bootstrap string {s:?}; expected host:port[, host:port…]"
        ));
    }
    for a in &addrs {
        let Some((host, port)) = a.rsplit_once(':') else {
            return Err(format!("{a:?} is not host:port"));
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!(
                "{a:?} is not host:port with a port from 0 to 65535"
            ));
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_seed_format_with_spaces() {
        assert_eq!(
            parse_bootstrap("127.0.0.1:14000, 127.0.0.1:14001").expect("valid"),
            vec!["127.0.0.1:14000", "127.0.0.1:14001"]
        );
    }

    #[test]
    fn a_bare_name_is_a_domain_and_host_port_pairs_are_addresses() {
        assert_eq!(
            parse_bootstrap_or_domain("CounterDomain.com."),
            Ok(Bootstrap::Domain("counterdomain.com".into()))
        );
        assert_eq!(
            parse_bootstrap_or_domain("127.0.0.1:14000"),
            Ok(Bootstrap::Addresses(vec!["127.0.0.1:14000".into()]))
        );
        assert!(parse_bootstrap_or_domain("bad domain.com").is_err());
        assert!(parse_bootstrap_or_domain("a..b").is_err());
        assert!(parse_bootstrap_or_domain("").is_err());
    }

    #[test]
    fn rejects_missing_or_bad_ports() {
        assert!(parse_bootstrap("").is_err());
        assert!(parse_bootstrap("127.0.0.1").is_err());
        assert!(parse_bootstrap("127.0.0.1:99999").is_err());
        assert!(parse_bootstrap(":14000").is_err());
    }
}
