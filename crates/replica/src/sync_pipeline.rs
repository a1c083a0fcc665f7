//! The log's sync runs off the driver's loop, so the next turn gathers,
//! replicates and executes while the disk works (the pipelining of the
//! Raft thesis, §10.2.1, for a Paxos acceptor's log).
//!
//! A turn's records are staged (`DurableStore::stage`); when a turn needs a
//! sync, one job at a time makes everything staged so far durable on the
//! blocking pool (`determinism::spawn_blocking`), and the driver goes on
//! (when lightly loaded, the driver runs it itself: `SyncPipeline::start`).
//! What waits for it:
//!
//! * **The turn's messages.** Votes, promises, heartbeats, catch-up: every
//!   message but the leader's early `Accept`s (`overlapped_sync`) is held
//!   until the sync covering its turn is done, then sent in turn order. So
//!   nothing this replica says rests on a promise or acceptance a power loss
//!   could take back, as before.
//! * **Peers' votes for this leader's proposals.** The core counts the
//!   leader's own acceptance of a slot together with the followers'
//!   `Accepted`s, in the turn one arrives. An `Accepted` naming a slot this
//!   replica accepted in a turn not yet durable is held until that turn is
//!   (the latest such turn, if it names several; `acceptance_pending`), and
//!   counts at once if its slots' acceptances are all on disk, however many
//!   newer turns wait for their sync. So a slot is decided only on
//!   acceptances that are all on disk — a leader losing power never takes
//!   back a vote a decision counted — and a vote does not wait for the
//!   syncs of turns after the one it answers.
//! * **Decisions this replica's own vote decided in this turn** (a view of
//!   one member): the turn waits for its sync before applying them, as
//!   before. Every other decision rests on a quorum of durable acceptances
//!   (the rule above, and followers vote only after their sync) and is
//!   applied at once.
//!
//! Turns that write a snapshot or install one, and the pieces of a snapshot
//! being written, wait for the job out first and sync in the turn, as before.

use crate::storage::{DurableStore, StorageBug, StorageError, SyncDone, injected};
use paxos_core::{Message, NodeId, Outgoing};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The sync job out, and what waits for syncs.
#[derive(Default)]
pub struct SyncPipeline {
    job: Option<SyncTask>,
    /// Messages and votes waiting for syncs.
    pub waits: SyncWaits,
    /// When each staged turn still waiting for its sync was staged (the
    /// `sync_wait_seconds` metric).
    staged_at: VecDeque<(u64, Instant)>,
    /// The driver is lightly loaded (this turn handled one event and none
    /// waits): a sync started now runs on the driver's thread (see
    /// [`SyncPipeline::start`]).
    idle: bool,
}

/// A sync job running off the loop.
pub type SyncTask = JoinHandle<Result<SyncDone, StorageError>>;

impl SyncPipeline {
    /// Whether a sync job is out.
    pub fn job_out(&self) -> bool {
        self.job.is_some()
    }

    /// Tells whether the driver is lightly loaded: its turn handled at most
    /// one event and none waits. (The driver clears it, too, for a turn
    /// whose early `Accept`s must leave before a sync on a one-thread
    /// runtime could let them.)
    pub fn set_idle(&mut self, idle: bool) {
        self.idle = idle;
    }

    /// Starts a sync of everything staged if a staged turn waits for one
    /// and no job is out. With the driver lightly loaded, the sync runs on
    /// its thread and is done on return: handing it to the blocking pool
    /// and back costs two thread wake-ups, a good part of what a lone
    /// client's write waits for beyond the disk, and there is little to do
    /// meanwhile. Under load the driver goes on while it runs. (A seeded
    /// coin in a simulation, so its runs see both.)
    pub fn start(&mut self, storage: &mut DurableStore) -> Result<(), StorageError> {
        if self.job.is_some() || !storage.sync_pending() {
            return Ok(());
        }
        let Some(job) = storage.take_sync_job()? else {
            return Ok(());
        };
        if self.idle && concoord_transport::determinism::may_run_inline() {
            let done = job.run()?;
            storage.sync_finished(done);
        } else {
            self.job = Some(concoord_transport::determinism::spawn_blocking(move || {
                job.run()
            }));
        }
        Ok(())
    }

    /// Notes the time a turn was staged, if it waits for a sync.
    pub fn note_staged(&mut self, storage: &DurableStore) {
        let turn = storage.needed_through();
        let noted = self.staged_at.back().is_some_and(|(t, _)| *t == turn);
        if storage.sync_pending() && !noted {
            self.staged_at.push_back((turn, Instant::now()));
        }
    }

    /// Calls `observe` with how long each turn made durable since the last
    /// call waited for its sync.
    pub fn observe_waits(&mut self, storage: &DurableStore, mut observe: impl FnMut(Duration)) {
        let durable = storage.durable_through();
        while let Some((_, staged)) = self.staged_at.front().filter(|(t, _)| *t <= durable) {
            observe(staged.elapsed());
            self.staged_at.pop_front();
        }
    }

    /// Waits for the job out (forever if none: a `select!` branch guards it).
    pub async fn wait(job: &mut Option<SyncTask>) -> Result<SyncDone, StorageError> {
        match job {
            Some(handle) => match handle.await {
                Ok(done) => done,
                Err(e) => Err(StorageError::Io {
                    path: "the log".into(),
                    source: std::io::Error::other(format!("the sync task failed: {e}")),
                }),
            },
            None => std::future::pending().await,
        }
    }

    /// Takes the job out, to wait for it in a `select!`.
    pub fn take_job(&mut self) -> Option<SyncTask> {
        self.job.take()
    }

    /// Puts back a job taken out and not finished.
    pub fn put_back(&mut self, job: Option<SyncTask>) {
        debug_assert!(self.job.is_none());
        self.job = job;
    }

    /// Waits for the job out, if any, and returns what it lets go.
    pub async fn finish(&mut self, storage: &mut DurableStore) -> Result<Released, StorageError> {
        let mut job = self.job.take();
        if job.is_none() {
            return Ok(Released::default());
        }
        let done = Self::wait(&mut job).await?;
        Ok(self.waits.finished(storage, done))
    }
}

/// What waits for the log's syncs: the messages of staged turns and the
/// peers' votes that arrived while a sync was pending. Kept apart from the
/// job itself so the power-loss tests run these very rules with syncs they
/// schedule themselves.
#[derive(Default)]
pub struct SyncWaits {
    /// Messages of staged turns, with the turn their sync must cover.
    held: VecDeque<(u64, Vec<Outgoing>)>,
    /// Peers' `Accepted`s, with the turn that must be durable first.
    votes: VecDeque<(u64, NodeId, Message)>,
}

/// What a finished sync lets go.
#[derive(Default)]
pub struct Released {
    /// Messages to send, in turn order.
    pub messages: Vec<Outgoing>,
    /// Peers' votes to hand to the core, in arrival order.
    pub votes: Vec<(NodeId, Message)>,
}

impl SyncWaits {
    /// Records a finished job and returns what it lets go.
    pub fn finished(&mut self, storage: &mut DurableStore, done: SyncDone) -> Released {
        storage.sync_finished(done);
        self.release_durable(storage)
    }

    /// What waits for turns already durable: a sync other than a job's (a
    /// snapshot turn's, a snapshot's last piece) or a turn with nothing to
    /// append may have covered them (found by review: messages left held).
    pub fn release_durable(&mut self, storage: &DurableStore) -> Released {
        let durable = storage.durable_through();
        let mut released = Released::default();
        while self.held.front().is_some_and(|(turn, _)| *turn <= durable) {
            if let Some((_, out)) = self.held.pop_front() {
                released.messages.extend(out);
            }
        }
        if self.votes.iter().any(|(turn, _, _)| *turn <= durable) {
            // Each vote waits for its own turn: not in turn order.
            let (ready, waiting) = std::mem::take(&mut self.votes)
                .into_iter()
                .partition(|(turn, _, _)| *turn <= durable);
            self.votes = waiting;
            released.votes = ready
                .into_iter()
                .map(|(_, from, msg): (u64, NodeId, Message)| (from, msg))
                .collect();
        }
        released
    }

    /// A staged turn's messages: sent now (after anything released before
    /// them) if no staged turn waits for a sync, else held until the sync
    /// of this turn.
    pub fn hold(&mut self, storage: &DurableStore, messages: Vec<Outgoing>) -> Released {
        let mut released = self.release_durable(storage);
        if !storage.sync_pending() {
            released.messages.extend(messages);
        } else if !messages.is_empty() {
            self.held.push_back((storage.needed_through(), messages));
        }
        released
    }

    /// A peer's message: returned to hand to the core now, or (an
    /// `Accepted` for slots this replica accepted in a turn still waiting
    /// for its sync) held until that turn is durable.
    pub fn admit(&mut self, storage: &DurableStore, from: NodeId, msg: Message) -> Option<Message> {
        let Message::Accepted(vote) = &msg else {
            return Some(msg);
        };
        if injected(StorageBug::VotesCountedBeforeOwnSync) {
            return Some(msg);
        }
        match storage.acceptance_pending(&vote.slots) {
            Some(turn) => {
                self.votes.push_back((turn, from, msg));
                None
            }
            None => Some(msg),
        }
    }
}
