//! What `openreplica` started: one record per remote process, kept next to
//! the configuration (`launched.toml`), so `status`, `stop` and `logs` find
//! them again and later replicas join the instance the first one founded.

use crate::config::write_private;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// What kind of process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `concoord replica`.
    Replica,
    /// `concoord nameserver`.
    Nameserver,
}

impl Kind {
    /// The `concoord` subcommand.
    pub fn subcommand(self) -> &'static str {
        match self {
            Kind::Replica => "replica",
            Kind::Nameserver => "nameserver",
        }
    }
}

/// Where an instance secret is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretFile {
    /// The node.
    pub host: String,
    /// The file, relative to the login's home there.
    pub path: String,
}

/// One remote process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launched {
    /// Replica or name server.
    pub kind: Kind,
    /// The node it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// The address it serves (`ADDR:PORT`).
    pub addr: String,
    /// Its log file, relative to the remote home.
    pub log: String,
    /// The arguments it was started with.
    pub args: Vec<String>,
}

/// Every process started and not stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The instance secret on the founder's node, which joiners get a copy
    /// of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_secret: Option<SecretFile>,
    /// The processes, in launch order.
    #[serde(default)]
    pub launched: Vec<Launched>,
}

impl State {
    /// The state file that goes with configuration `config`.
    pub fn path_for(config: &Path) -> PathBuf {
        config.with_file_name("launched.toml")
    }

    /// Loads it, or an empty state.
    pub fn load(path: &Path) -> Result<State> {
        match fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{} is damaged; fix or remove it", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Saves it atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).context("cannot encode the launch record")?;
        write_private(path, text.as_bytes())
    }

    /// The replicas, in launch order.
    pub fn replicas(&self) -> impl Iterator<Item = &Launched> {
        self.launched.iter().filter(|l| l.kind == Kind::Replica)
    }

    /// The bootstrap string: every replica's address.
    pub fn bootstrap(&self) -> String {
        self.replicas()
            .map(|l| l.addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }
}
