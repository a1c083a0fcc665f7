//! Which member a certificate speaks for: the convention that binds a
//! replica's node to its TLS certificate.
//!
//! A node is known to the others by the address it announces (`host:port`,
//! the address in the view). A *replica certificate* carries that address as
//! a URI subject alternative name, `concoord-replica://HOST:PORT`, next to the
//! usual IP or DNS name of `HOST` (which TLS itself checks when a client or a
//! peer dials the replica). Its extended key usages are both `serverAuth`
//! and `clientAuth`: a replica accepts connections and opens its own.
//!
//! A *client certificate* has no `concoord-replica://` name (it may carry a
//! `concoord-client://NAME` URI for the operator's own bookkeeping) and only
//! the `clientAuth` usage. It is good for client connections, never for a
//! peer link: a connection claiming to be the replica at `A` must present a
//! certificate naming `concoord-replica://A`, and the node id it claims must
//! be the one the view lists at `A` (checked by the accepting replica, see
//! `handshake`). A replica dialing a peer at `A` checks the same name on the
//! certificate that answers.
//!
//! The address is compared as text, exactly as the view holds it: announce
//! `-a 10.0.0.5 -p 14000` and put `concoord-replica://10.0.0.5:14000` in
//! the certificate.

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The URI scheme of the name that binds a replica certificate to a member.
pub const REPLICA_URI_PREFIX: &str = "concoord-replica://";
/// The URI scheme a client certificate may carry (never on a peer link).
pub const CLIENT_URI_PREFIX: &str = "concoord-client://";

/// The URI name a replica announced at `addr` carries in its certificate.
pub fn replica_uri(addr: &str) -> String {
    format!("{REPLICA_URI_PREFIX}{addr}")
}

/// The member addresses `cert` speaks for (its `concoord-replica://` names);
/// empty for a client certificate or one that does not parse.
pub fn replica_addrs(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = X509Certificate::from_der(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(REPLICA_URI_PREFIX).map(str::to_string),
            _ => None,
        })
        .collect()
}

/// Why a certificate may not speak for the member at an address.
pub fn check_replica_binding(cert: Option<&CertificateDer<'_>>, addr: &str) -> Result<(), String> {
    let Some(cert) = cert else {
        return Err(format!(
            "no certificate: a replica must present its certificate naming {} \
             (start it with --tls-cert and --tls-key)",
            replica_uri(addr)
        ));
    };
    let named = replica_addrs(cert);
    if named.iter().any(|a| a == addr) {
        return Ok(());
    }
    if named.is_empty() {
        return Err(format!(
            "a client certificate (no {REPLICA_URI_PREFIX} name) cannot open a peer link as the \
             replica at {addr}; give the replica a certificate naming {}",
            replica_uri(addr)
        ));
    }
    Err(format!(
        "the certificate speaks for {} but the connection claims to be the replica at {addr}; \
         issue the replica a certificate naming {}",
        named.join(", "),
        replica_uri(addr)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, SanType};

    fn cert_with(uris: &[&str]) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        for uri in uris {
            params
                .subject_alt_names
                .push(SanType::URI((*uri).try_into().expect("uri")));
        }
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("sign").der().clone()
    }

    #[test]
    fn a_replica_certificate_binds_exactly_its_address() {
        let cert = cert_with(&["concoord-replica://127.0.0.1:14000"]);
        assert_eq!(replica_addrs(&cert), vec!["127.0.0.1:14000"]);
        assert!(check_replica_binding(Some(&cert), "127.0.0.1:14000").is_ok());
        let other = check_replica_binding(Some(&cert), "127.0.0.1:14001");
        assert!(other.is_err_and(|e| e.contains("speaks for 127.0.0.1:14000")));
    }

    #[test]
    fn a_client_certificate_or_none_binds_nothing() {
        let client = cert_with(&["concoord-client://alice"]);
        assert!(replica_addrs(&client).is_empty());
        let refused = check_replica_binding(Some(&client), "127.0.0.1:14000");
        assert!(refused.is_err_and(|e| e.contains("client certificate")));
        assert!(check_replica_binding(None, "127.0.0.1:14000").is_err());
        let garbage = CertificateDer::from(vec![0x30, 0x03, 1, 2, 3]);
        assert!(replica_addrs(&garbage).is_empty());
    }
}
