//! Route53 credentials stored by `concoord route53id ID` and
//! `concoord route53key KEY`, as the original's commands did: in the user's
//! config dir (`$XDG_CONFIG_HOME/concoord/route53`, else
//! `~/.config/concoord/route53`), a file only its owner may read (mode 0600,
//! in a directory of mode 0700), written whole and renamed into place.
//!
//! ```text
//! aws_access_key_id = AKIA…
//! aws_secret_access_key = …
//! ```
//!
//! When the file holds both, the publisher signs with them; otherwise it
//! uses the standard AWS chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
//! `AWS_PROFILE` and `~/.aws/credentials`).

use crate::errors::NameserverError;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const ID_KEY: &str = "aws_access_key_id";
const SECRET_KEY: &str = "aws_secret_access_key";

/// Stored Route53 credentials (either part may be missing).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredCredentials {
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
}

impl fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("StoredCredentials")
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| ".."),
            )
            .finish()
    }
}

impl StoredCredentials {
    /// Both parts, if both are stored.
    pub fn complete(&self) -> Option<(&str, &str)> {
        Some((
            self.access_key_id.as_deref()?,
            self.secret_access_key.as_deref()?,
        ))
    }
}

/// The file the credentials live in.
pub fn default_path() -> Result<PathBuf, NameserverError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(NameserverError::Credentials(
                    "neither XDG_CONFIG_HOME nor HOME is set: cannot find the config dir".into(),
                ));
            }
        },
    };
    Ok(base.join("concoord").join("route53"))
}

/// Reads the credentials at `path` (empty if the file does not exist).
pub fn load(path: &Path) -> Result<StoredCredentials, NameserverError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(NameserverError::Credentials(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut creds = StoredCredentials::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = Some(v.trim().to_string()).filter(|v| !v.is_empty());
        match k.trim() {
            ID_KEY => creds.access_key_id = v,
            SECRET_KEY => creds.secret_access_key = v,
            _ => {}
        }
    }
    Ok(creds)
}

/// Stores the access key id at `path`, keeping the secret key.
pub fn store_id(path: &Path, id: &str) -> Result<(), NameserverError> {
    let mut creds = load(path)?;
    creds.access_key_id = Some(checked(id, "access key id")?);
    save(path, &creds)
}

/// Stores the secret access key at `path`, keeping the key id.
pub fn store_key(path: &Path, key: &str) -> Result<(), NameserverError> {
    let mut creds = load(path)?;
    creds.secret_access_key = Some(checked(key, "secret access key")?);
    save(path, &creds)
}

fn checked(value: &str, what: &str) -> Result<String, NameserverError> {
    let v = value.trim();
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == '=') {
        return Err(NameserverError::Credentials(format!(
            "the {what} must be one word without spaces or '='"
        )));
    }
    Ok(v.to_string())
}

/// Writes the file whole with mode 0600 (its directory 0700) and renames it
/// into place, so it is never readable by others, not even half-written.
fn save(path: &Path, creds: &StoredCredentials) -> Result<(), NameserverError> {
    let fail = |what: &str, e: std::io::Error| {
        NameserverError::Credentials(format!("cannot {what} {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let mut text = String::new();
    if let Some(id) = &creds.access_key_id {
        text.push_str(&format!("{ID_KEY} = {id}\n"));
    }
    if let Some(key) = &creds.secret_access_key {
        text.push_str(&format!("{SECRET_KEY} = {key}\n"));
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail("write", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| fail("write", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_key_are_stored_apart_in_a_file_only_the_owner_can_read() {
        let dir = std::env::temp_dir().join(format!("concoord-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("concoord").join("route53");
        store_id(&path, "AKIDEXAMPLE").expect("store id");
        store_key(&path, "wJalrXUtnFEMI").expect("store key");
        store_id(&path, "AKIDOTHER").expect("store id again");
        let creds = load(&path).expect("load");
        assert_eq!(creds.complete(), Some(("AKIDOTHER", "wJalrXUtnFEMI")));
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{creds:?}").contains("wJalr"));
        assert!(store_key(&path, "two words").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
