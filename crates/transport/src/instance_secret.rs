//! The instance secret: the one credential that makes a process a member of a
//! ConCoord instance rather than a client of it.
//!
//! Every replica of an instance holds the same secret. It never travels on the
//! wire: a connection proves it holds the secret by answering a challenge
//! (`peer_auth`), and the replicas derive from it the session secrets they
//! hand to clients (`session_ticket`), so any replica can check a session a
//! client opened at another one without any replicated state.
//!
//! On disk the secret is a text file of at least [`SECRET_CHARS_MIN`]
//! characters (the ones ConCoord writes hold 32 random bytes as 64 hex
//! digits), readable by its owner only. Whatever the file holds, once
//! trimmed of surrounding whitespace, is the key.
//!
//! An instance may also run *open* (`--no-peer-secret`): every replica then
//! uses the same well-known key, so the handshakes and session checks run as
//! usual but prove nothing. That is the old, unauthenticated behaviour, for
//! isolated test networks only.

use crate::errors::SecretError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::path::Path;
use subtle::ConstantTimeEq;

/// Shortest secret accepted, in characters (bytes) of the file.
pub const SECRET_CHARS_MIN: usize = 32;
/// Random bytes in a generated secret (written as twice as many hex digits).
const GENERATED_BYTES: usize = 32;
/// The key every replica of an open instance uses. Public by design.
const OPEN_KEY: &[u8] = b"concoord open instance: peers are not authenticated";
/// What the secret file of an open instance holds.
const OPEN_MARKER: &str = "open: no peer secret";

/// HMAC-SHA256, the only primitive this module uses.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// An instance's secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct InstanceSecret {
    key: Vec<u8>,
    open: bool,
}

impl fmt::Debug for InstanceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        if self.open {
            write!(f, "InstanceSecret(open)")
        } else {
            write!(f, "InstanceSecret(..)")
        }
    }
}

impl InstanceSecret {
    /// A new random secret (32 bytes from the OS-seeded generator).
    pub fn generate() -> InstanceSecret {
        let bytes: [u8; GENERATED_BYTES] = crate::determinism::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        InstanceSecret {
            key: hex.into_bytes(),
            open: false,
        }
    }

    /// The well-known key of an open instance (no peer authentication).
    pub fn open() -> InstanceSecret {
        InstanceSecret {
            key: OPEN_KEY.to_vec(),
            open: true,
        }
    }

    /// Whether this is the well-known key of an open instance.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Reads a secret file.
    pub fn load(path: &Path) -> Result<InstanceSecret, SecretError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = text.trim();
        if text == OPEN_MARKER {
            return Ok(InstanceSecret::open());
        }
        if text.len() < SECRET_CHARS_MIN {
            return Err(SecretError::TooShort {
                path: path.to_path_buf(),
                chars: text.len(),
            });
        }
        Ok(InstanceSecret {
            key: text.as_bytes().to_vec(),
            open: false,
        })
    }

    /// Reads the secret file at `path`, or creates it with a new secret if
    /// there is none. Returns the secret and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(InstanceSecret, bool), SecretError> {
        if path.exists() {
            return InstanceSecret::load(path).map(|s| (s, false));
        }
        let secret = InstanceSecret::generate();
        secret.write_file(path)?;
        Ok((secret, true))
    }

    /// Writes the secret to `path` (mode 0600), atomically: a temporary file
    /// in the same directory, synced, then renamed over `path`.
    pub fn write_file(&self, path: &Path) -> Result<(), SecretError> {
        let err = |source| SecretError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(err)?;
        let text: &[u8] = if self.open {
            OPEN_MARKER.as_bytes()
        } else {
            &self.key
        };
        file.write_all(text)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Whether a file other users may read holds the secret (unix only).
    pub fn readable_by_others(path: &Path) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            false
        }
    }

    /// A keyed MAC over `parts`, each length-prefixed so no two different
    /// sequences of parts give the same input.
    pub(crate) fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length; this cannot fail.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            return [0; 32];
        };
        for part in std::iter::once(label).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// Compares a received MAC with the expected one in constant time (a length
/// mismatch is a mismatch, without revealing where they differ).
pub(crate) fn macs_match(expected: &[u8; 32], received: &[u8]) -> bool {
    bool::from(expected.as_slice().ct_eq(received))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("concoord-secret-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn a_created_secret_file_reads_back_the_same_secret_and_only_its_owner_reads_it() {
        let path = scratch("created");
        let (created, fresh) = InstanceSecret::load_or_create(&path).expect("create");
        assert!(fresh);
        let (again, fresh) = InstanceSecret::load_or_create(&path).expect("load");
        assert!(!fresh);
        assert_eq!(created, again);
        assert!(!InstanceSecret::readable_by_others(&path));
        assert_ne!(created, InstanceSecret::generate(), "secrets are random");
    }

    #[test]
    fn a_short_secret_is_refused_and_the_open_marker_reads_as_open() {
        let path = scratch("short");
        std::fs::write(&path, "hunter2\n").expect("write");
        assert!(matches!(
            InstanceSecret::load(&path),
            Err(SecretError::TooShort { chars: 7, .. })
        ));
        InstanceSecret::open().write_file(&path).expect("write");
        assert!(InstanceSecret::load(&path).expect("load").is_open());
    }

    #[test]
    fn the_debug_form_never_shows_the_key() {
        let s = InstanceSecret::generate();
        let key = String::from_utf8(s.key.clone()).expect("hex");
        assert!(!format!("{s:?}").contains(&key));
    }

    #[test]
    fn macs_differ_by_key_label_and_part_boundaries() {
        let a = InstanceSecret::generate();
        let b = InstanceSecret::generate();
        assert_ne!(a.mac(b"x", &[b"ab"]), b.mac(b"x", &[b"ab"]));
        assert_ne!(a.mac(b"x", &[b"ab"]), a.mac(b"y", &[b"ab"]));
        assert_ne!(a.mac(b"x", &[b"ab", b"c"]), a.mac(b"x", &[b"a", b"bc"]));
        let m = a.mac(b"x", &[b"ab"]);
        assert!(macs_match(&m, &m));
        assert!(!macs_match(&m, &m[..31]));
    }
}
