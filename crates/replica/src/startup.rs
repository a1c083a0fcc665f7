//! Who this replica is at start: the founder of a new instance, a new member
//! joining one, or a durable replica resuming its own identity from its data
//! directory. Only the last keeps its node id, and only with the whole log
//! that goes with it (a directory whose identity survived but whose history
//! did not is refused, naming what is missing and `--repair`); every other
//! start is a new incarnation with a fresh id, so a replica never votes
//! under an identity whose promises it has forgotten.
//!
//! It also settles the replica's instance secret (see `peer_secret`): read
//! before a `--repair` sets the data directory aside, and kept in the data
//! directory once it exists.

use crate::bugs::{self, ReplicaBug};
use crate::peer_secret::{self, Resolved};
use crate::storage::{self, Disk, DurableStore, Identity, OsDisk};
use crate::{ReplicaError, ReplicaOptions};
use concoord_object::ReplicatedObject;
use concoord_transport::{InstanceId, determinism};
use paxos_core::{Config, Member, Node, NodeId};
use std::sync::Arc;
use tracing::{info, warn};

/// The node to run and how it starts.
pub struct Start {
    /// The consensus node.
    pub node: Node,
    /// Its storage, with `-w`.
    pub storage: Option<DurableStore>,
    /// Whether it must ask to be added to the view.
    pub joining: bool,
    /// Whether this start founds a new instance (rather than resuming a
    /// replica's state or joining).
    pub founding: bool,
    /// Its instance, if known now (a joiner learns it from its peers).
    pub instance: Option<InstanceId>,
    /// Its instance secret.
    pub secret: Resolved,
    /// A founder's data directory, created only once it is sure to found
    /// (see [`Start::create_founders_storage`]).
    founders_storage: Option<FoundersStorage>,
}

/// The durable store a founder creates once it founds.
struct FoundersStorage {
    disk: Arc<dyn Disk>,
    dir: std::path::PathBuf,
    identity: Identity,
    /// Whether the instance secret is kept in the directory (a real disk).
    keep_secret: bool,
}

impl Start {
    /// Creates a founder's data directory, after the check that no running
    /// instance counts its address as a member (`founding_check`). Until
    /// then the directory has no identity: a founder refused by the check
    /// and restarted with `-b` joins as a new replica, instead of resuming
    /// as the founder of an instance that never ran.
    pub fn create_founders_storage(&mut self) -> Result<(), ReplicaError> {
        if let Some(f) = self.founders_storage.take() {
            self.storage = Some(DurableStore::create_on(f.disk, &f.dir, &f.identity)?);
            if f.keep_secret {
                peer_secret::store(&mut self.secret, &f.dir)?;
            }
        }
        Ok(())
    }
}

fn config(opts: &ReplicaOptions, id: NodeId) -> Config {
    let mut c = Config::new(id);
    c.seed = determinism::random();
    c.heartbeat_ticks = opts.heartbeat_ticks;
    c.election_ticks = opts.election_ticks;
    c.log_entries_soft_max = opts.snapshot_every.max(1);
    c
}

fn fatal(e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Fatal(e.to_string())
}

/// Decides the start for a replica of `O` reachable at `my_addr`.
pub fn start<O: ReplicatedObject>(
    opts: &ReplicaOptions,
    my_addr: &str,
) -> Result<Start, ReplicaError> {
    let mut start = identity::<O>(opts, my_addr, Arc::new(OsDisk))?;
    match (&mut start.founders_storage, &opts.data_dir) {
        // The directory does not exist yet: the secret goes in with it.
        (Some(founders), _) => founders.keep_secret = true,
        (None, Some(dir)) => peer_secret::store(&mut start.secret, dir)?,
        (None, None) => {}
    }
    Ok(start)
}

/// Like [`start`], with the data directory on `disk` (a simulated one): the
/// instance secret is then kept in memory only, never in a file.
pub fn start_on<O: ReplicatedObject>(
    opts: &ReplicaOptions,
    my_addr: &str,
    disk: Arc<dyn Disk>,
) -> Result<Start, ReplicaError> {
    identity::<O>(opts, my_addr, disk)
}

fn identity<O: ReplicatedObject>(
    opts: &ReplicaOptions,
    my_addr: &str,
    disk: Arc<dyn Disk>,
) -> Result<Start, ReplicaError> {
    let joining = !opts.bootstrap.is_empty();
    let secret = peer_secret::resolve(
        &opts.peer_secret,
        opts.data_dir.as_deref(),
        joining,
        my_addr,
    )?;
    let Some(dir) = &opts.data_dir else {
        return fresh::<O>(opts, my_addr, None, secret, disk);
    };
    if opts.repair && dir.exists() {
        if opts.bootstrap.is_empty() {
            return Err(ReplicaError::Fatal(
                "--repair sets the damaged data aside and rejoins the instance as a new \
                 replica: give -b with a running replica of the instance"
                    .into(),
            ));
        }
        let aside = DurableStore::set_aside(dir)?;
        warn!(moved_to = %aside.display(), "data directory set aside; starting as a new replica");
    }
    match Identity::read(&*disk, dir)? {
        Some(identity) => {
            identity.check(my_addr, O::type_name(), dir)?;
            let (store, mut recovered, report) = DurableStore::open_on(disk, dir, &identity)?;
            if bugs::injected(ReplicaBug::Amnesia) {
                recovered = paxos_core::Recovered {
                    views: recovered.views,
                    ..paxos_core::Recovered::default()
                };
            }
            info!(
                dir = %dir.display(),
                node = %identity.node,
                records = report.records,
                snapshot_slot = report.snapshot_slot,
                torn_bytes_cut = report.torn_bytes_cut,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "recovered durable state; resuming the same identity"
            );
            let node = Node::restart(config(opts, identity.node), recovered).map_err(fatal)?;
            Ok(Start {
                node,
                storage: Some(store),
                joining: false,
                founding: false,
                instance: identity.instance,
                secret,
                founders_storage: None,
            })
        }
        None => {
            storage::prepare_new(&*disk, dir)?;
            fresh::<O>(opts, my_addr, Some(dir), secret, disk)
        }
    }
}

/// A new incarnation: founds an instance (no `-b`) or joins one.
fn fresh<O: ReplicatedObject>(
    opts: &ReplicaOptions,
    my_addr: &str,
    dir: Option<&std::path::Path>,
    secret: Resolved,
    disk: Arc<dyn Disk>,
) -> Result<Start, ReplicaError> {
    let id = NodeId(determinism::random::<u64>().max(1));
    let joining = !opts.bootstrap.is_empty();
    let instance = (!joining).then(InstanceId::generate);
    let identity = |dir: &std::path::Path| {
        (
            dir.to_path_buf(),
            Identity {
                node: id,
                addr: my_addr.to_string(),
                object: O::type_name().to_string(),
                instance,
            },
        )
    };
    let (storage, founders_storage) = match dir.map(identity) {
        Some((dir, identity)) if joining => {
            (Some(DurableStore::create_on(disk, &dir, &identity)?), None)
        }
        Some((dir, identity)) => (
            None,
            Some(FoundersStorage {
                disk,
                dir,
                identity,
                keep_secret: false,
            }),
        ),
        None => (None, None),
    };
    let durable = dir.is_some();
    let me = Member {
        id,
        addr: my_addr.to_string(),
    };
    let node = if joining {
        info!(object = O::type_name(), addr = %my_addr, node = %id, bootstrap = ?opts.bootstrap, durable, "joining an instance");
        Node::join(config(opts, id))
    } else {
        info!(object = O::type_name(), addr = %my_addr, node = %id, instance = %instance.map(|i| i.to_string()).unwrap_or_default(), durable, "founding a new instance");
        Node::bootstrap(config(opts, id), std::slice::from_ref(&me))
    }
    .map_err(fatal)?;
    Ok(Start {
        node,
        storage,
        joining,
        founding: !joining,
        instance,
        secret,
        founders_storage,
    })
}
