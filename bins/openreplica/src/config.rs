//! The operator's OpenReplica configuration: which machines to use and how
//! to log in to them, kept as TOML in the user's config directory.
//!
//! It holds an SSH key path and a user name, never a secret itself, but it is
//! still written with mode 0600 (it says where the key is), and atomically
//! (a temporary file renamed over the old one), so an interrupted command
//! never leaves half a configuration behind.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the remote files live, relative to the login's home directory.
pub const DEFAULT_REMOTE_DIR: &str = ".concoord";
/// Seconds `ssh` may take to connect.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Nodes contacted at once.
pub const DEFAULT_PARALLEL: usize = 8;

/// One machine replicas and name servers may run on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Host name or address, as `ssh` reaches it; replicas listen on it
    /// unless `-a` says otherwise.
    pub host: String,
    /// The SSH port, if not the default (or `~/.ssh/config`'s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_port: Option<u16>,
}

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The private key `ssh -i` uses, if not the agent's or `~/.ssh/config`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sshkey: Option<PathBuf>,
    /// The remote login, if not `~/.ssh/config`'s or the local user's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A known_hosts file to use instead of `~/.ssh/known_hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
    /// Remote directory for the binary, logs and data, relative to home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_dir: Option<String>,
    /// Seconds `ssh` may take to connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    /// Nodes contacted at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<usize>,
    /// The machines, in the order replicas are placed on them.
    #[serde(default)]
    pub nodes: Vec<Node>,
}

impl Config {
    /// Loads the configuration, or an empty one if the file does not exist.
    pub fn load(path: &Path) -> Result<Config> {
        match fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!(
                    "{} is not a valid OpenReplica configuration; fix or remove it",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the configuration atomically with mode 0600.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).context("cannot encode the configuration")?;
        write_private(path, text.as_bytes())
    }

    /// The node named `host`, if configured.
    pub fn node(&self, host: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.host == host)
    }

    /// The node named `host`, or an error listing the configured ones.
    pub fn require_node(&self, host: &str) -> Result<&Node> {
        match self.node(host) {
            Some(n) => Ok(n),
            None if self.nodes.is_empty() => {
                bail!(
                    "{host} is not configured, and no node is: add it with `openreplica addnode {host}`"
                )
            }
            None => bail!(
                "{host} is not configured (configured: {}); add it with `openreplica addnode {host}`",
                self.hosts().join(", ")
            ),
        }
    }

    /// The configured hosts, in order.
    pub fn hosts(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.host.clone()).collect()
    }

    /// The remote directory (relative to the login's home).
    pub fn remote_dir(&self) -> &str {
        self.remote_dir.as_deref().unwrap_or(DEFAULT_REMOTE_DIR)
    }

    /// Nodes contacted at once (at least one).
    pub fn parallel(&self) -> usize {
        self.parallel.unwrap_or(DEFAULT_PARALLEL).max(1)
    }
}

/// The configuration file: `--config`, else `$OPENREPLICA_CONFIG`, else
/// `$XDG_CONFIG_HOME/openreplica/config.toml`, else
/// `~/.config/openreplica/config.toml`.
pub fn default_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("OPENREPLICA_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => match std::env::var_os("HOME") {
            Some(home) if !home.is_empty() => PathBuf::from(home).join(".config"),
            _ => bail!("neither HOME nor XDG_CONFIG_HOME is set: pass --config FILE"),
        },
    };
    Ok(base.join("openreplica").join("config.toml"))
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// synced and renamed over it, with mode 0600; creates the directory (0700).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".to_string());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_configuration_loads_back_and_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("config.toml");
        assert_eq!(
            Config::load(&path).expect("missing is empty"),
            Config::default()
        );
        let config = Config {
            sshkey: Some(PathBuf::from("/keys/concoord.pem")),
            username: Some("ec2-user".into()),
            nodes: vec![Node {
                host: "10.0.0.1".into(),
                ssh_port: Some(2222),
            }],
            ..Config::default()
        };
        config.save(&path).expect("save");
        assert_eq!(Config::load(&path).expect("load"), config);
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }

    #[test]
    fn a_damaged_configuration_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        fs::write(&path, "nodes = 3").expect("write");
        let err = Config::load(&path).expect_err("not a configuration");
        assert!(format!("{err:#}").contains("config.toml"), "{err:#}");
    }
}
