//! A certificate authority made on the spot, for a local cluster
//! (`concoord cluster --tls`) and tests: it issues replica and client
//! certificates that follow `tls_identity`'s convention. Its key lives in
//! memory only, so nothing it signed can be added to later: a production
//! instance uses the operator's own CA (see docs/security.md).
//!
//! Feature `throwaway-ca` (it pulls `rcgen`, which a replica never needs).

use crate::tls_identity::{CLIENT_URI_PREFIX, replica_uri};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A CA whose key is never written anywhere.
pub struct ThrowawayCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM-encoded.
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued(..)")
    }
}

impl ThrowawayCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Result<ThrowawayCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(ThrowawayCa { issuer })
    }

    /// The CA's certificate (what `--tls-ca` reads).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The certificate of the replica announced at `addr` (`host:port`):
    /// the IP or DNS name of `host` and `concoord-replica://addr`, usable
    /// to serve and to dial peers.
    pub fn replica(&self, addr: &str) -> Result<Issued, rcgen::Error> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut params = CertificateParams::new(vec![host.to_string()])?;
        params
            .subject_alt_names
            .push(SanType::URI(replica_uri(addr).try_into()?));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("concoord replica {addr}"));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(params)
    }

    /// A client certificate for `name`: `concoord-client://name`, client
    /// authentication only.
    pub fn client(&self, name: &str) -> Result<Issued, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names.push(SanType::URI(
            format!("{CLIENT_URI_PREFIX}{name}").try_into()?,
        ));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("concoord client {name}"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, mut params: CertificateParams) -> Result<Issued, rcgen::Error> {
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes the CA's certificate to `dir/ca.pem`; returns its path.
    pub fn write_cert(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.cert_pem())?;
        Ok(path)
    }
}

impl Issued {
    /// Writes `dir/STEM.pem` and `dir/STEM-key.pem` (the key readable by its
    /// owner only); returns both paths.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}-key.pem"));
        std::fs::write(&cert, &self.cert_pem)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&key)?.write_all(self.key_pem.as_bytes())?;
        Ok((cert, key))
    }
}
