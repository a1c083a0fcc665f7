//! TLS settings built from PEM files: what a replica accepts connections
//! with, and what a replica or a client dials with.
//!
//! Everything is rustls with the `ring` provider (no C toolchain needed,
//! chosen explicitly so that another crate enabling `aws-lc-rs` cannot make
//! the default provider ambiguous). One CA (`--tls-ca`) signs every
//! certificate of an instance:
//!
//! * a replica serves with its certificate and asks every connection for a
//!   client certificate, verified against the CA. Clients may present none
//!   (the token still admits them); a peer link must present the
//!   replica certificate of the member it claims to be (see
//!   `tls_identity`, checked in `handshake`);
//! * a replica dials its peers presenting the same certificate;
//! * a client checks the replica's certificate against the CA and the
//!   address dialed, and presents its own certificate if it has one.
//!
//! The settings are cheap to clone (shared configurations) and their `Debug`
//! shows no key material.

use crate::errors::TlsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The PEM files a process uses for TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// This process's certificate chain (required for a replica; optional
    /// for a client).
    pub cert: Option<PathBuf>,
    /// The private key of `cert`.
    pub key: Option<PathBuf>,
    /// The CA that signs every certificate of the instance.
    pub ca: PathBuf,
}

/// How a client (or a replica, towards its peers) opens TLS connections.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
}

/// How a replica accepts TLS connections.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

/// A replica's TLS: accepting, and dialing its peers with its certificate.
#[derive(Clone, Debug)]
pub struct ReplicaTls {
    /// For the listening socket.
    pub server: ServerTls,
    /// For the peer links it opens (and its join requests).
    pub client: ClientTls,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientTls(..)")
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls(..)")
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |detail: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        detail,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no CERTIFICATE block in it".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        what: "the private key",
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("the CA certificate", path)? {
        roots.add(cert).map_err(|e| TlsError::File {
            what: "the CA certificate",
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    }
    Ok(Arc::new(roots))
}

fn config_error(e: rustls::Error) -> TlsError {
    TlsError::Config(e.to_string())
}

impl TlsFiles {
    /// The certificate chain and key, both or neither.
    fn identity(
        &self,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                Ok(Some((read_certs("the certificate", cert)?, read_key(key)?)))
            }
            (None, None) => Ok(None),
            _ => Err(TlsError::Flags(
                "--tls-cert and --tls-key go together: give both, or neither".into(),
            )),
        }
    }

    /// A client's settings: the CA to check replicas against, and the
    /// client's own certificate if it has one.
    pub fn client(&self) -> Result<ClientTls, TlsError> {
        let roots = read_roots(&self.ca)?;
        client_config(roots, self.identity()?)
    }

    /// A replica's settings: it must have a certificate (see
    /// `tls_identity` for what it must name).
    pub fn replica(&self) -> Result<ReplicaTls, TlsError> {
        let roots = read_roots(&self.ca)?;
        let Some((certs, key)) = self.identity()? else {
            return Err(TlsError::Flags(
                "a replica with --tls-ca needs its own certificate: give --tls-cert and --tls-key"
                    .into(),
            ));
        };
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            // Clients may come without a certificate; peer links may not
            // (checked in the handshake).
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(config_error)?;
        Ok(ReplicaTls {
            server: ServerTls {
                acceptor: TlsAcceptor::from(Arc::new(server)),
            },
            client: client_config(roots, Some((certs, key)))?,
        })
    }
}

fn client_config(
    roots: Arc<RootCertStore>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientTls, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(roots);
    let config = match identity {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(config_error)?,
        None => builder.with_no_client_auth(),
    };
    Ok(ClientTls {
        connector: TlsConnector::from(Arc::new(config)),
    })
}

impl ClientTls {
    /// The connector.
    pub fn connector(&self) -> &TlsConnector {
        &self.connector
    }
}

impl ServerTls {
    /// The acceptor.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// The name TLS checks the certificate of the replica at `addr` (`host:port`)
/// against: its IP address or DNS name.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host:?} is neither an IP address nor a DNS name TLS can check"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host() {
        assert!(matches!(
            server_name("127.0.0.1:14000"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[::1]:14000"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("replica1.example.com:14000"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("bad host:1").is_err());
    }

    #[test]
    fn a_certificate_without_its_key_is_refused_with_what_to_do() {
        let files = TlsFiles {
            cert: Some("c.pem".into()),
            key: None,
            ca: "ca.pem".into(),
        };
        let Err(TlsError::Flags(msg)) = files.identity() else {
            panic!("expected a flags error");
        };
        assert!(msg.contains("--tls-key"));
        let missing = TlsFiles {
            cert: None,
            key: None,
            ca: "/nonexistent/ca.pem".into(),
        };
        assert!(matches!(missing.client(), Err(TlsError::File { .. })));
    }
}
