//! Where a replica's instance secret comes from, and where it is kept.
//!
//! The secret is what makes a process a member of the instance (see
//! `concoord_transport::instance_secret`), so every start path must end with
//! one, and a replica must never quietly make up a secret its peers do not
//! share:
//!
//! | start | secret |
//! |---|---|
//! | `--peer-secret FILE` | read from FILE; a founder (no `-b`) creates FILE if missing |
//! | durable (`-w`) with a secret in its data directory | that one (a different FILE is an error) |
//! | founder, nothing given | generated: kept in `DATA_DIR/peer-secret` with `-w`, else written to `./concoord-peer-secret-ADDR_PORT` |
//! | joiner (`-b`), nothing given | refused: the joiner could never prove membership |
//! | `--no-peer-secret` | the open instance's well-known key: no authentication |
//!
//! A durable replica copies its secret into its data directory, so it
//! restarts, and `--repair`s, without the flag.

use crate::ReplicaError;
use concoord_transport::InstanceSecret;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// The secret file inside a data directory.
pub const DATA_DIR_FILE: &str = "peer-secret";

/// Where the operator said the secret is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PeerSecretSource {
    /// Nothing said: the data directory's, or a new one for a founder.
    #[default]
    Default,
    /// `--peer-secret FILE`.
    File(PathBuf),
    /// `--no-peer-secret`: an open instance.
    Open,
}

/// The secret a replica runs with, and where it came from (for the log).
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The secret.
    pub secret: InstanceSecret,
    /// Where it is kept, if in a file.
    pub file: Option<PathBuf>,
    /// Whether it was made now.
    pub created: bool,
}

fn secret_error(e: concoord_transport::SecretError) -> ReplicaError {
    ReplicaError::BadFlags(e.to_string())
}

/// The default secret file of a founder without `-w`.
pub fn default_file(my_addr: &str) -> PathBuf {
    PathBuf::from(format!(
        "concoord-peer-secret-{}",
        my_addr.replace(':', "_")
    ))
}

/// Finds the secret for a replica at `my_addr` with data directory
/// `data_dir` (read before a `--repair` sets it aside). Creates a founder's
/// secret file if needed; never writes into the data directory (see
/// [`store`], which does once it exists).
pub fn resolve(
    source: &PeerSecretSource,
    data_dir: Option<&Path>,
    joining: bool,
    my_addr: &str,
) -> Result<Resolved, ReplicaError> {
    let stored_file = data_dir
        .map(|d| d.join(DATA_DIR_FILE))
        .filter(|f| f.exists());
    let stored = match &stored_file {
        Some(f) => Some(InstanceSecret::load(f).map_err(secret_error)?),
        None => None,
    };
    let given = match source {
        PeerSecretSource::Default => None,
        PeerSecretSource::Open => Some((InstanceSecret::open(), None, false)),
        PeerSecretSource::File(path) if joining || stored.is_some() => Some((
            InstanceSecret::load(path).map_err(secret_error)?,
            Some(path.clone()),
            false,
        )),
        PeerSecretSource::File(path) => {
            let (s, created) = InstanceSecret::load_or_create(path).map_err(secret_error)?;
            Some((s, Some(path.clone()), created))
        }
    };
    match (stored, given) {
        (Some(stored), Some((given, file, _))) if stored != given => {
            let given_from = file.map_or("--no-peer-secret".to_string(), |f| {
                format!("--peer-secret {}", f.display())
            });
            Err(ReplicaError::BadFlags(format!(
                "{} holds another instance secret than {given_from}: this data directory belongs \
                 to another instance; drop the flag or use another --data-dir",
                stored_file
                    .map(|f| f.display().to_string())
                    .unwrap_or_default()
            )))
        }
        (Some(secret), _) => Ok(Resolved {
            secret,
            file: stored_file,
            created: false,
        }),
        (None, Some((secret, file, created))) => Ok(Resolved {
            secret,
            file,
            created,
        }),
        (None, None) if joining => Err(ReplicaError::BadFlags(
            "joining an instance (-b) needs its peer secret: pass --peer-secret FILE with a copy \
             of the file the founding replica wrote (it logged the path; `concoord cluster` \
             prints it)"
                .into(),
        )),
        (None, None) => match data_dir {
            Some(_) => Ok(Resolved {
                secret: InstanceSecret::generate(),
                file: None,
                created: true,
            }),
            None => {
                let path = default_file(my_addr);
                let (secret, created) =
                    InstanceSecret::load_or_create(&path).map_err(secret_error)?;
                Ok(Resolved {
                    secret,
                    file: Some(path),
                    created,
                })
            }
        },
    }
}

/// Keeps the secret in the data directory `dir` (which exists by now) if
/// it is not there yet — a new directory, one that predates secrets, or the
/// fresh one a `--repair` started — so the replica restarts without the flag.
pub fn store(resolved: &mut Resolved, dir: &Path) -> Result<(), ReplicaError> {
    let path = dir.join(DATA_DIR_FILE);
    if path.exists() {
        return Ok(());
    }
    resolved.secret.write_file(&path).map_err(secret_error)?;
    crate::storage::sync_dir(dir)?;
    resolved.file = Some(path);
    Ok(())
}

/// How exposed a replica's peer port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// Peers must prove the secret.
    Authenticated,
    /// Open, but only local processes can connect.
    OpenOnLoopback,
    /// Open to whoever reaches the address.
    OpenToTheNetwork,
}

/// How exposed a replica listening on `addr` (the `-a` value) is with `secret`.
pub fn exposure(secret: &InstanceSecret, addr: &str) -> Exposure {
    if !secret.is_open() {
        return Exposure::Authenticated;
    }
    let loopback = addr == "localhost" || addr.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Exposure::OpenOnLoopback
    } else {
        Exposure::OpenToTheNetwork
    }
}

/// The banner printed when the peer port is open to the network.
pub fn open_port_banner(my_addr: &str) -> String {
    format!(
        "\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !! WARNING: the peer port {my_addr} is OPEN (--no-peer-secret).\n\
         !! Anyone who can reach it can act as a replica of this instance: decide\n\
         !! commands, corrupt the replicated state, hijack client sessions and stop\n\
         !! members. Use --peer-secret FILE, or listen on a loopback address only.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    )
}

/// Says how peers are authenticated; loudly if anyone on the network can
/// act as one.
pub fn announce(resolved: &Resolved, addr: &str, my_addr: &str) {
    match exposure(&resolved.secret, addr) {
        Exposure::Authenticated => {
            let file = resolved.file.as_ref().map_or(
                "(kept in memory until the data directory exists)".into(),
                |f| f.display().to_string(),
            );
            if resolved.created {
                info!(secret_file = %file, "created a new instance secret: replicas joining this instance need a copy of it (--peer-secret FILE)");
            } else {
                info!(secret_file = %file, "peer links are authenticated with the instance secret");
            }
            if let Some(f) = &resolved.file
                && InstanceSecret::readable_by_others(f)
            {
                warn!(secret_file = %f.display(), "the instance secret file is readable by other users: chmod 600 it");
            }
        }
        Exposure::OpenOnLoopback => {
            warn!(
                "peer links are NOT authenticated (--no-peer-secret): any local process can act as a replica"
            );
        }
        Exposure::OpenToTheNetwork => {
            let banner = open_port_banner(my_addr);
            eprintln!("{banner}");
            warn!(addr = %my_addr, "the peer port is OPEN to the network (--no-peer-secret): anyone who reaches it can act as a replica");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("concoord-peer-secret-{}", std::process::id()))
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn a_joiner_without_a_secret_is_refused_with_the_fix() {
        let err =
            resolve(&PeerSecretSource::Default, None, true, "127.0.0.1:1").expect_err("refused");
        assert!(err.to_string().contains("--peer-secret FILE"), "{err}");
    }

    #[test]
    fn a_founder_creates_the_given_file_and_a_joiner_reads_the_same_secret() {
        let dir = scratch("given");
        let file = dir.join("secret");
        let source = PeerSecretSource::File(file.clone());
        let founder = resolve(&source, None, false, "127.0.0.1:1").expect("founder");
        assert!(founder.created);
        let joiner = resolve(&source, None, true, "127.0.0.1:2").expect("joiner");
        assert_eq!(founder.secret, joiner.secret);
        assert!(!joiner.created);
    }

    #[test]
    fn a_durable_replica_keeps_its_secret_and_refuses_another_instances() {
        let dir = scratch("durable");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let mut first =
            resolve(&PeerSecretSource::Default, Some(&data), false, "a:1").expect("founder");
        assert!(
            !data.join(DATA_DIR_FILE).exists(),
            "resolving writes nothing"
        );
        store(&mut first, &data).expect("store");
        let again = resolve(&PeerSecretSource::Default, Some(&data), true, "a:1")
            .expect("restart without the flag");
        assert_eq!(again.secret, first.secret);
        let other = dir.join("other");
        InstanceSecret::generate()
            .write_file(&other)
            .expect("write");
        let err = resolve(&PeerSecretSource::File(other), Some(&data), true, "a:1")
            .expect_err("another instance's secret");
        assert!(err.to_string().contains("another instance"), "{err}");
    }

    #[test]
    fn only_an_open_secret_off_loopback_is_open_to_the_network() {
        let open = InstanceSecret::open();
        assert_eq!(exposure(&open, "127.0.0.1"), Exposure::OpenOnLoopback);
        assert_eq!(exposure(&open, "127.0.9.1"), Exposure::OpenOnLoopback);
        assert_eq!(exposure(&open, "::1"), Exposure::OpenOnLoopback);
        assert_eq!(exposure(&open, "localhost"), Exposure::OpenOnLoopback);
        assert_eq!(exposure(&open, "0.0.0.0"), Exposure::OpenToTheNetwork);
        assert_eq!(exposure(&open, "10.77.1.1"), Exposure::OpenToTheNetwork);
        let secret = InstanceSecret::generate();
        assert_eq!(exposure(&secret, "0.0.0.0"), Exposure::Authenticated);
        assert!(open_port_banner("0.0.0.0:14000").contains("OPEN"));
    }
}
