//! The bootstrap string: comma-separated `host:port` pairs, spaces allowed
//! (`"127.0.0.1:14000, 127.0.0.1:14001"`), as the original ConCoord took it.

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
    fn rejects_missing_or_bad_ports() {
        assert!(parse_bootstrap("").is_err());
        assert!(parse_bootstrap("127.0.0.1").is_err());
        assert!(parse_bootstrap("127.0.0.1:99999").is_err());
        assert!(parse_bootstrap(":14000").is_err());
    }
}
