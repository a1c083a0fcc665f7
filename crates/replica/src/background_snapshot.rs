//! Snapshots serialized off the driver's loop.
//!
//! Serializing a large object stops the loop that runs consensus, executes
//! calls and answers clients: 0.4 s for a KeyValue of a million keys, long
//! enough for a write's p99.9 to be that stop, and close to the election
//! timeout. An object that can hand out a copy of itself cheaply
//! ([`ReplicatedObject::detached_snapshot`](concoord_object::ReplicatedObject::detached_snapshot))
//! is serialized from that copy on the blocking pool instead; the loop hands
//! the finished bytes to the core (`Node::compact`) for the slot the copy was
//! made at. The core keeps the log above that slot, so the calls executed
//! meanwhile are in the log the snapshot is completed by, on disk and in
//! transfers alike. One snapshot is made at a time.

use crate::replicated_state::ReplicatedState;
use concoord_object::{ObjectError, ReplicatedObject};
use paxos_core::Slot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A snapshot being serialized: the slot its copy was made at, when, and the
/// task making it.
pub struct SnapshotTask {
    slot: Slot,
    started: Instant,
    task: JoinHandle<Result<Vec<u8>, ObjectError>>,
}

/// A finished snapshot, for the slot its copy was made at.
pub struct MadeSnapshot {
    /// The last slot executed against the copy.
    pub slot: Slot,
    /// When the copy was made.
    pub started: Instant,
    /// The snapshot's bytes, or why it could not be made.
    pub bytes: Result<Vec<u8>, ObjectError>,
}

/// The snapshot being made off the loop, if any.
#[derive(Default)]
pub struct BackgroundSnapshot {
    task: Option<SnapshotTask>,
}

impl BackgroundSnapshot {
    /// Whether a snapshot is being made.
    pub fn busy(&self) -> bool {
        self.task.is_some()
    }

    /// Starts serializing a copy of `state`, which has executed every slot up
    /// to `slot`, if its object can detach one. `false`: it cannot, and the
    /// caller snapshots on the loop.
    pub fn start<O: ReplicatedObject>(&mut self, state: &ReplicatedState<O>, slot: Slot) -> bool {
        debug_assert!(self.task.is_none(), "one snapshot at a time");
        let Some(serialize) = state.detached_snapshot() else {
            return false;
        };
        self.task = Some(SnapshotTask {
            slot,
            started: Instant::now(),
            task: concoord_transport::determinism::spawn_blocking(serialize),
        });
        true
    }

    /// Waits for the snapshot being made (forever if none is: for a
    /// `select!` branch guarded by `task.is_some()`).
    pub async fn wait(task: &mut Option<SnapshotTask>) -> MadeSnapshot {
        let Some(t) = task else {
            return std::future::pending().await;
        };
        let bytes = match (&mut t.task).await {
            Ok(bytes) => bytes,
            Err(e) => Err(ObjectError::State(format!("the snapshot task failed: {e}"))),
        };
        MadeSnapshot {
            slot: t.slot,
            started: t.started,
            bytes,
        }
    }

    /// Takes the task out, to wait for it in a `select!`.
    pub fn take_task(&mut self) -> Option<SnapshotTask> {
        self.task.take()
    }

    /// Puts back a task taken out and not finished.
    pub fn put_back(&mut self, task: Option<SnapshotTask>) {
        debug_assert!(self.task.is_none());
        self.task = task;
    }
}
