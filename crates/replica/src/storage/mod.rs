//! Durable replicas (`-w`): a write-ahead log of promises, accepted values,
//! decisions and views, with snapshots, in one data directory per replica.
//!
//! ```text
//! DIR/identity                      node id, address, object (written once, last)
//! DIR/peer-secret                   the instance secret (`peer_secret`)
//! DIR/wal-0000000000000003.log      records since the last snapshot
//! DIR/snapshot-00000000000000012000.snap
//! ```
//!
//! **What is synced when** (the crash model is a power loss: only what was
//! synced survives, see `fault_disk`). Every `Ready`'s records are appended
//! and synced with one `fdatasync` before any of its messages is sent: a
//! promise or acceptance is on disk before it is acknowledged, and every call
//! that arrived in one driver turn shares one sync (group commit). Turns that
//! only record decisions are held in memory and written with the next synced
//! write, unless a message of the turn announces a decided floor that covers
//! one of them (`announced_floor`): then they are synced before it leaves.
//! A sync is taken as a job (`take_sync_job`: the held-back writes are
//! appended and a handle to `fdatasync` them returned) and reported done
//! (`sync_finished`), so it can run on another thread than the appends;
//! today `write` runs each at once. While a job is out the log takes no
//! other append (the torn tail a power loss leaves stays the last write
//! alone, as recovery expects), and its decisions do not count as synced.
//! New files are synced, then their directory; a snapshot is written to a
//! temporary file, synced, renamed and the directory synced; a new data
//! directory is synced into its parent, and its identity is written last.
//!
//! **Segments.** A segment is rotated once it passes `SEGMENT_BYTES_MAX`
//! (so recovery never reads one huge file), and a snapshot starts a new one
//! that opens with a checkpoint of the state still needed (promise, views,
//! records above the snapshot), after which older segments and snapshots are
//! deleted (off the driver's thread, `remove_obsolete`): the disk holds one
//! snapshot and at most one interval of log.
//!
//! **Gradual snapshots.** A snapshot of a large object takes a second or
//! more to write and sync; written in one turn it stops the driver that
//! long, and followers elect a new leader. So a snapshot whose slots the log
//! on disk already holds (one this replica took of its own state, not one
//! installed from a peer) is written `SNAPSHOT_PIECE_BYTES` per turn (by
//! `write_snapshot_piece`, called once the turn's messages have left), each
//! piece synced, while the log goes on as before; only once the whole
//! file is synced and renamed does the checkpoint start the new segment and
//! delete what the snapshot covers. A crash before that leaves the old
//! snapshot and the whole log since (recovery removes the temporary file),
//! so nothing the disk acknowledged depends on the unfinished snapshot. A
//! snapshot installed from a peer covers slots the log does not hold and is
//! written at once, before the turn's messages leave, as before.
//! Each segment opens with a header binding it to the node and saying where
//! it starts, and one with a successor is sealed for it, so recovery can tell
//! a whole history from one with files missing (`history`) and refuses the
//! latter instead of resuming the identity with forgotten promises.
//!
//! The log is a small format of our own rather than a crate: what it stores
//! is exactly `paxos_core::Persist`, it needs CRC per record, torn-tail
//! cutting that never skips mid-file corruption, and rotation at snapshots.
//! The embedded stores considered (sled, redb, rocksdb) add their own logs
//! and compaction beneath ours, and fsync policies we would have to tune
//! around.

mod announced_floor;
mod disk;
mod errors;
#[cfg(any(test, feature = "fault-disk"))]
pub mod fault_disk;
mod history;
mod identity;
#[cfg(test)]
mod power_loss_test;
mod record;
mod recovery;
#[cfg(test)]
mod recovery_test;
mod snapshot_file;
mod wal;

pub use announced_floor::announced_floor;
pub use disk::{AppendFile, Disk, OsDisk, SyncHandle};
pub use errors::StorageError;
pub use identity::Identity;
pub use recovery::{RecoveryReport, prepare_new};

use disk::{create_dir_durably, remove_if_present, rename_durably};
use errors::io;
use paxos_core::{MemoryStorage, NodeId, Persist, Slot, Snapshot};
use record::{LOG_FORMAT, Record, SegmentHeader, SegmentStart};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Fsyncs a directory, so renames and new files in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    OsDisk.sync_dir(dir).map_err(io(dir))
}

/// Storage bugs a test can switch on, to show the power-loss tests catch
/// them (`power_loss_test`). Compiled to nothing outside tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StorageBug {
    /// Decisions stay held back even when a message announces them.
    IgnoreAnnouncedFloor,
    /// A new segment's directory entry is not synced.
    NewSegmentNameNotSynced,
    /// A snapshot is renamed into place without syncing its data.
    SnapshotDataNotSynced,
    /// A new data directory is not synced into its parent.
    DataDirNotSynced,
    /// A leader's early `Accept`s announce decisions not yet synced
    /// (`overlapped_sync` without its cap).
    EarlyAcceptsAnnounceUnsynced,
    /// Votes (`Promise`, `Accepted`) leave before the sync, like `Accept`s.
    EarlyVotes,
    /// A turn's decisions are applied (executed, answered) before its sync
    /// even when this replica's acceptance in that turn decided them.
    ApplyBeforeOwnVoteSynced,
    /// A leader hands followers' votes to the core while its own
    /// acceptances of the same slots still wait for their sync
    /// (`sync_pipeline`), so a decision can count a vote a power loss
    /// takes back.
    VotesCountedBeforeOwnSync,
}

#[cfg(test)]
thread_local! {
    static INJECTED: std::cell::Cell<Option<StorageBug>> = const { std::cell::Cell::new(None) };
}

/// Switches an injected bug on (or off) for this thread's stores.
#[cfg(test)]
pub(crate) fn inject(bug: Option<StorageBug>) {
    INJECTED.with(|b| b.set(bug));
}

/// Whether `bug` is switched on (never outside tests).
pub(crate) fn injected(bug: StorageBug) -> bool {
    #[cfg(test)]
    {
        INJECTED.with(|b| b.get() == Some(bug))
    }
    #[cfg(not(test))]
    {
        let _ = bug;
        false
    }
}

/// Figures for `concoord status`.
#[derive(Clone, Debug, Default)]
pub struct StorageStats {
    /// Bytes of WAL segments and snapshot on disk (without the zeros
    /// reserved after the last write of each segment, at most
    /// `wal::RESERVE_AHEAD` per segment).
    pub bytes_on_disk: u64,
    /// Syncs so far.
    pub fsyncs: u64,
    /// Duration of the last sync.
    pub last_fsync: Duration,
    /// Records written so far.
    pub records: u64,
}

/// Held-back decisions are written once they reach this size even if
/// nothing else needs a sync (a learner catching up only learns decisions).
const MAX_UNSYNCED_BYTES: usize = 1 << 20;

/// Bytes of a gradual snapshot written (and synced) per turn.
const SNAPSHOT_PIECE_BYTES: usize = 4 << 20;

/// A snapshot being written a piece per turn (see "Gradual snapshots").
struct GradualSnapshot {
    slot: Slot,
    name: String,
    tmp: PathBuf,
    file: Box<dyn AppendFile>,
    bytes: Vec<u8>,
    written: usize,
}

/// A segment is rotated before a write would take it past this size: a
/// bound on the file recovery reads at once, not on the log (which only a
/// snapshot shortens).
const SEGMENT_BYTES_MAX: u64 = 64 << 20;

/// Frames records as one write, closed by a `Commit` record.
fn frame_write(records: &[Record], commit: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    for r in records {
        r.encode_into(&mut buf);
    }
    Record::Commit(commit).encode_into(&mut buf);
    buf
}

/// The log segments and snapshots a checkpoint made obsolete.
struct Obsolete {
    segments: Vec<PathBuf>,
    snapshots: Vec<PathBuf>,
}

impl Obsolete {
    /// Removes the old segments, then the old snapshots, each durably; a
    /// file already gone counts as removed.
    fn remove(&self, disk: &dyn Disk, dir: &Path) -> Result<(), StorageError> {
        let remove = |path: &PathBuf| remove_if_present(disk, path).map_err(io(path));
        self.segments.iter().try_for_each(remove)?;
        // The old segments are gone for good before the old snapshots go.
        disk.sync_dir(dir).map_err(io(dir))?;
        self.snapshots.iter().try_for_each(remove)?;
        disk.sync_dir(dir).map_err(io(dir))
    }
}

/// The WAL, the snapshot, and a mirror of what they hold (for checkpoints).
pub struct DurableStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    node: NodeId,
    writer: wal::Writer,
    mirror: MemoryStorage,
    snapshot_bytes: u64,
    sealed_bytes: u64,
    stats: StorageStats,
    /// Sequence number of the next write's `Commit` record.
    next_commit: u64,
    /// Encoded writes that only record decisions, held until the next sync.
    unsynced: Vec<u8>,
    /// How many writes `unsynced` holds.
    unsynced_writes: u64,
    /// The lowest slot among the held-back decisions.
    unsynced_decided_from: Option<Slot>,
    segment_bytes_max: u64,
    /// A snapshot still being written, if any.
    gradual: Option<GradualSnapshot>,
    snapshot_piece_bytes: usize,
    /// A sync job was taken and is not finished: the log takes no appends.
    sync_in_flight: bool,
    /// The lowest slot among the decisions that job is making durable.
    in_flight_decided_from: Option<Slot>,
    /// Turns staged so far (see `stage`).
    turns_staged: u64,
    /// The last staged turn that needed a sync.
    needed_through: u64,
    /// The last staged turn a finished sync covers.
    durable_through: u64,
    /// Slots this replica accepted in staged turns not yet durable, with
    /// the last such turn (a peer's vote for them waits for it).
    accepted_in: BTreeMap<Slot, u64>,
    /// Done once the last removal of obsolete files has finished.
    removing: Option<std::sync::mpsc::Receiver<()>>,
}

impl Drop for DurableStore {
    fn drop(&mut self) {
        self.wait_for_removal();
    }
}

/// One sync of the log's latest writes (see `DurableStore::take_sync_job`),
/// which another thread may run.
pub(crate) struct SyncJob {
    handle: Box<dyn SyncHandle>,
    path: PathBuf,
    /// The `MissingFsync` bug is injected: the sync is left out.
    skip: bool,
    /// The last staged turn it covers.
    covers: u64,
}

/// A finished [`SyncJob`].
pub(crate) struct SyncDone {
    /// How long the `fdatasync` took (`None`: it was left out).
    took: Option<Duration>,
    /// The last staged turn it made durable.
    covers: u64,
}

impl SyncJob {
    /// Makes the writes it covers durable.
    pub fn run(self) -> Result<SyncDone, StorageError> {
        if self.skip {
            return Ok(SyncDone {
                took: None,
                covers: self.covers,
            });
        }
        let started = std::time::Instant::now();
        self.handle.sync().map_err(io(&self.path))?;
        Ok(SyncDone {
            took: Some(started.elapsed()),
            covers: self.covers,
        })
    }
}

impl DurableStore {
    /// Creates a data directory for a new replica.
    pub fn create(dir: &Path, identity: &Identity) -> Result<DurableStore, StorageError> {
        DurableStore::create_on(Arc::new(OsDisk), dir, identity)
    }

    /// Creates a data directory for a new replica on `disk`: the directory
    /// (synced into its parent), the first segment, and the identity last, so
    /// a directory with an identity always has its log.
    pub fn create_on(
        disk: Arc<dyn Disk>,
        dir: &Path,
        identity: &Identity,
    ) -> Result<DurableStore, StorageError> {
        if injected(StorageBug::DataDirNotSynced) {
            disk.create_dir_all(dir).map_err(io(dir))?;
        } else {
            create_dir_durably(&*disk, dir).map_err(io(dir))?;
        }
        let header = header(identity.node, 1, SegmentStart::Empty);
        let writer = wal::Writer::create(&*disk, dir, 1, &frame_write(&[header], 1))?;
        identity.write(&*disk, dir)?;
        let stats = StorageStats {
            bytes_on_disk: writer.len,
            fsyncs: 1,
            ..StorageStats::default()
        };
        Ok(DurableStore {
            disk,
            dir: dir.to_path_buf(),
            node: identity.node,
            writer,
            mirror: MemoryStorage::default(),
            snapshot_bytes: 0,
            sealed_bytes: 0,
            stats,
            next_commit: 2,
            unsynced: Vec::new(),
            unsynced_writes: 0,
            unsynced_decided_from: None,
            segment_bytes_max: SEGMENT_BYTES_MAX,
            gradual: None,
            snapshot_piece_bytes: SNAPSHOT_PIECE_BYTES,
            sync_in_flight: false,
            in_flight_decided_from: None,
            turns_staged: 0,
            needed_through: 0,
            durable_through: 0,
            accepted_in: BTreeMap::new(),
            removing: None,
        })
    }

    /// Opens the data directory of `identity` and reads back what it holds;
    /// refuses a directory whose log is not the whole history (see
    /// `history`).
    pub fn open(
        dir: &Path,
        identity: &Identity,
    ) -> Result<(DurableStore, paxos_core::Recovered, RecoveryReport), StorageError> {
        DurableStore::open_on(Arc::new(OsDisk), dir, identity)
    }

    /// Makes one turn's `Persist` durable as its messages require: promises,
    /// acceptances, views and snapshots at once (one sync for all of it);
    /// decisions at once if `announced` (the floor the turn's messages
    /// announce, see [`announced_floor`]) covers any of them, else with the
    /// next synced write.
    pub fn write(&mut self, p: &Persist, announced: Slot) -> Result<(), StorageError> {
        if self.stage(p, announced)? {
            self.sync()?;
        }
        self.stats.bytes_on_disk = self.sealed_bytes + self.writer.len + self.snapshot_bytes;
        Ok(())
    }

    /// Records one turn's `Persist` as [`write`](Self::write) does, but
    /// leaves the sync it needs (if any) to a [`SyncJob`]: returns whether
    /// the turn's messages must wait for one. A turn with a snapshot is
    /// written and synced at once (and needs no sync job in flight).
    /// Turns are counted: [`needed_through`](Self::needed_through) is the
    /// last one that needed a sync, [`durable_through`](Self::durable_through)
    /// the last one a finished sync covers.
    pub(crate) fn stage(&mut self, p: &Persist, announced: Slot) -> Result<bool, StorageError> {
        if p.snapshot.is_some() {
            // Written and synced now: not with a job out.
            self.refuse_while_syncing()?;
        }
        self.turns_staged += 1;
        if p.snapshot.is_some() {
            // The checkpoint of a snapshot still being written is taken
            // from the state before this turn's: finish it first.
            self.finish_gradual_snapshot()?;
        }
        let gradually = p
            .snapshot
            .as_ref()
            .is_some_and(|s| self.log_holds_through(s.slot, p));
        let records = Record::from_persist(p);
        if !records.is_empty() {
            let buf = frame_write(&records, self.take_commit());
            self.unsynced.extend_from_slice(&buf);
            self.unsynced_writes += 1;
            self.stats.records += records.len() as u64;
        }
        if let Some(first) = p.decided.iter().map(|(s, _)| *s).min() {
            let from = self.unsynced_decided_from.map_or(first, |f| f.min(first));
            self.unsynced_decided_from = Some(from);
        }
        self.mirror.write(p);
        // Promises, acceptances and views are answers other replicas count
        // on: they are synced before any message of this turn leaves. A
        // decision is already durable on a quorum (as accepted values) and
        // can be learned again, so a turn that only learned decisions is
        // held in memory and written with the next synced write (this halves
        // the syncs per command when load is light), unless a message of the
        // turn tells a peer they are decided here. Holding decisions back,
        // rather than writing them unsynced, keeps the rule recovery relies
        // on: the file never holds unsynced bytes before synced ones, so a
        // damaged record followed by a complete write is always corruption.
        let not_synced_from = match (self.unsynced_decided_from, self.in_flight_decided_from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let announces_held_back = !injected(StorageBug::IgnoreAnnouncedFloor)
            && not_synced_from.is_some_and(|s| s <= announced);
        let needs_sync = p.promised.is_some()
            || !p.accepted.is_empty()
            || p.views.is_some()
            || announces_held_back
            || self.unsynced.len() >= MAX_UNSYNCED_BYTES;
        match &p.snapshot {
            // The decisions it covers are synced with the turn's records.
            Some(snapshot) if gradually => {
                self.sync()?;
                self.start_gradual_snapshot(snapshot)?;
            }
            Some(snapshot) => self.checkpoint(snapshot)?,
            None => {
                if needs_sync {
                    self.needed_through = self.turns_staged;
                    for a in &p.accepted {
                        self.accepted_in.insert(a.slot, self.turns_staged);
                    }
                }
                return Ok(needs_sync);
            }
        }
        self.stats.bytes_on_disk = self.sealed_bytes + self.writer.len + self.snapshot_bytes;
        Ok(false)
    }

    /// The last staged turn whose messages wait for a sync.
    pub(crate) fn needed_through(&self) -> u64 {
        self.needed_through
    }

    /// The last staged turn a finished sync made durable.
    pub(crate) fn durable_through(&self) -> u64 {
        self.durable_through
    }

    /// Whether a staged turn still waits for its sync.
    pub(crate) fn sync_pending(&self) -> bool {
        self.needed_through > self.durable_through
    }

    /// The last staged turn not yet durable in which this replica accepted
    /// one of `slots`, if any: a peer's vote for them counts together with
    /// this replica's own acceptance, so it waits for that turn's sync.
    pub(crate) fn acceptance_pending(&self, slots: &[Slot]) -> Option<u64> {
        slots
            .iter()
            .filter_map(|slot| self.accepted_in.get(slot).copied())
            .filter(|turn| *turn > self.durable_through)
            .max()
    }

    /// Every staged turn through `turn` is durable.
    fn durable_to(&mut self, turn: u64) {
        self.durable_through = self.durable_through.max(turn);
        let durable = self.durable_through;
        self.accepted_in.retain(|_, t| *t > durable);
    }

    /// Whether a snapshot is being written a piece per turn (its last
    /// piece syncs the log, so no sync job may be out then).
    pub(crate) fn snapshot_in_progress(&self) -> bool {
        self.gradual.is_some()
    }

    /// Whether the log (with `p`'s decisions) holds every decision from the
    /// last snapshot through `slot`: a snapshot up to `slot` then only
    /// shortens what recovery replays, and may be written gradually.
    fn log_holds_through(&self, slot: Slot, p: &Persist) -> bool {
        let base = self.mirror.snapshot().map_or(0, |s| s.slot);
        if slot <= base {
            return false;
        }
        let in_turn: std::collections::BTreeSet<Slot> = p.decided.iter().map(|(s, _)| *s).collect();
        (base + 1..=slot).all(|s| self.mirror.decided().contains_key(&s) || in_turn.contains(&s))
    }

    /// Starts writing `snapshot` to its temporary file, a piece per turn.
    fn start_gradual_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let bytes = snapshot_file::encode(&self.dir, self.node, snapshot)?;
        let name = snapshot_file::name(snapshot.slot);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let file = self.disk.create(&tmp).map_err(io(&tmp))?;
        self.gradual = Some(GradualSnapshot {
            slot: snapshot.slot,
            name,
            tmp,
            file,
            bytes,
            written: 0,
        });
        Ok(())
    }

    /// Writes and syncs the next piece of the snapshot being written, if
    /// any; once all of it is on disk, puts it in place and takes the
    /// checkpoint. Nothing a message says depends on it, so the driver calls
    /// it after the turn's messages have left.
    pub fn write_snapshot_piece(&mut self) -> Result<(), StorageError> {
        if self.gradual.is_none() {
            return Ok(());
        }
        // Its last piece syncs the log and starts a new segment.
        self.refuse_while_syncing()?;
        let Some(g) = self.gradual.as_mut() else {
            return Ok(());
        };
        let end = (g.written + self.snapshot_piece_bytes).min(g.bytes.len());
        g.file
            .append(&g.bytes[g.written..end])
            .map_err(io(&g.tmp))?;
        if !injected(StorageBug::SnapshotDataNotSynced) {
            g.file.sync().map_err(io(&g.tmp))?;
        }
        g.written = end;
        if g.written < g.bytes.len() {
            return Ok(());
        }
        let Some(done) = self.gradual.take() else {
            return Ok(());
        };
        let path = self.dir.join(&done.name);
        drop(done.file);
        rename_durably(&*self.disk, &self.dir, &done.tmp, &path).map_err(io(&path))?;
        self.sync()?;
        self.start_after_snapshot(done.slot, &path, done.bytes.len() as u64)?;
        self.stats.bytes_on_disk = self.sealed_bytes + self.writer.len + self.snapshot_bytes;
        Ok(())
    }

    /// Writes the rest of the snapshot being written, if any, at once.
    fn finish_gradual_snapshot(&mut self) -> Result<(), StorageError> {
        while self.gradual.is_some() {
            self.write_snapshot_piece()?;
        }
        Ok(())
    }

    /// The highest decided floor on disk before `write(p, ..)`: below the
    /// first decision held back from the disk or learned in `p` (`None`:
    /// no decision is waiting for a sync).
    pub fn synced_decided_floor(&self, p: &Persist) -> Option<Slot> {
        let in_turn = p.decided.iter().map(|(s, _)| *s).min();
        [
            self.in_flight_decided_from,
            self.unsynced_decided_from,
            in_turn,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|s| s.saturating_sub(1))
    }

    fn take_commit(&mut self) -> u64 {
        self.next_commit += 1;
        self.next_commit - 1
    }

    /// Appends the held-back writes and syncs them, rotating the segment
    /// first if they would take it past its size.
    fn sync(&mut self) -> Result<(), StorageError> {
        let Some(job) = self.take_sync_job()? else {
            return Ok(());
        };
        let done = job.run()?;
        self.sync_finished(done);
        Ok(())
    }

    /// Appends the held-back writes (rotating the segment first if they
    /// would take it past its size) and returns the sync that makes them
    /// durable, to run on any thread; `None` if nothing is held back. Until
    /// [`sync_finished`](Self::sync_finished) reports it done, nothing more
    /// is appended to the log (so the torn tail a power loss can leave is
    /// always the last write alone, as recovery expects) and the decisions
    /// it carries do not count as on disk (`synced_decided_floor`).
    pub(crate) fn take_sync_job(&mut self) -> Result<Option<SyncJob>, StorageError> {
        self.refuse_while_syncing()?;
        if self.unsynced.is_empty() {
            // Everything staged was appended, and (no job out) synced.
            self.durable_to(self.turns_staged);
            return Ok(None);
        }
        let len = self.writer.len + self.unsynced.len() as u64;
        if self.writer.writes > 0 && len > self.segment_bytes_max {
            self.rotate()?;
        }
        self.writer.append(&self.unsynced, self.unsynced_writes)?;
        self.unsynced.clear();
        self.unsynced_writes = 0;
        self.in_flight_decided_from = self.unsynced_decided_from.take();
        self.sync_in_flight = true;
        Ok(Some(SyncJob {
            handle: self.writer.sync_handle()?,
            path: self.writer.path().to_path_buf(),
            skip: crate::bugs::injected(crate::bugs::ReplicaBug::MissingFsync),
            covers: self.turns_staged,
        }))
    }

    /// Refuses what would touch the log while a sync job is out.
    fn refuse_while_syncing(&self) -> Result<(), StorageError> {
        if self.sync_in_flight {
            let running = std::io::Error::other("a sync of the log is still running");
            return Err(io(self.writer.path())(running));
        }
        Ok(())
    }

    /// Records that `done`, the job [`take_sync_job`](Self::take_sync_job)
    /// returned last, made its writes durable.
    pub(crate) fn sync_finished(&mut self, done: SyncDone) {
        self.sync_in_flight = false;
        self.in_flight_decided_from = None;
        self.durable_to(done.covers);
        self.stats.bytes_on_disk = self.sealed_bytes + self.writer.len + self.snapshot_bytes;
        if let Some(took) = done.took {
            self.stats.last_fsync = took;
        }
        self.stats.fsyncs += 1;
    }

    /// Starts the next segment, continuing this one: the new segment is made
    /// durable first, then this one is sealed for it, so a sealed segment's
    /// successor always exists.
    fn rotate(&mut self) -> Result<(), StorageError> {
        let number = self.writer.number;
        let next = header(self.node, number + 1, SegmentStart::Continues(number));
        let first = frame_write(&[next], self.take_commit());
        let writer = wal::Writer::create(&*self.disk, &self.dir, number + 1, &first)?;
        self.stats.fsyncs += 1;
        self.seal(number + 1)?;
        let old = std::mem::replace(&mut self.writer, writer);
        self.sealed_bytes += old.len;
        Ok(())
    }

    /// Closes the current segment for its successor `next`.
    fn seal(&mut self, next: u64) -> Result<(), StorageError> {
        let seal = frame_write(&[Record::Sealed(next)], self.take_commit());
        self.writer.append(&seal, 1)?;
        if !crate::bugs::injected(crate::bugs::ReplicaBug::MissingFsync) {
            self.stats.last_fsync = self.writer.sync()?;
        }
        self.stats.fsyncs += 1;
        Ok(())
    }

    /// Writes the snapshot, starts a new segment holding what is still needed,
    /// and deletes what the snapshot covers.
    fn checkpoint(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.sync()?;
        let (path, size) = snapshot_file::write(&*self.disk, &self.dir, self.node, snapshot)?;
        self.start_after_snapshot(snapshot.slot, &path, size)
    }

    /// With the snapshot at `slot` on disk: starts a new segment holding
    /// what is still needed (from the mirror), and deletes what it covers.
    fn start_after_snapshot(
        &mut self,
        slot: Slot,
        path: &Path,
        size: u64,
    ) -> Result<(), StorageError> {
        let next = self.writer.number + 1;
        let live = self.mirror.recovered();
        let checkpoint = Persist {
            promised: Some(live.promised),
            accepted: live.accepted,
            decided: live.decided,
            snapshot: None,
            views: live.views,
        };
        // The header and the checkpoint are one write: a segment that starts
        // after a snapshot is either whole or was never written.
        let mut records = vec![header(self.node, next, SegmentStart::AfterSnapshot(slot))];
        records.extend(Record::from_persist(&checkpoint));
        let first = frame_write(&records, self.take_commit());
        let writer = wal::Writer::create(&*self.disk, &self.dir, next, &first)?;
        self.stats.fsyncs += 1;
        self.seal(next)?;
        self.writer = writer;
        let names = self.disk.list(&self.dir).map_err(io(&self.dir))?;
        let obsolete = Obsolete {
            segments: wal::numbers(&names)
                .into_iter()
                .filter(|n| *n < next)
                .map(|n| self.dir.join(wal::name(n)))
                .collect(),
            snapshots: snapshot_file::slots(&names)
                .into_iter()
                .filter(|s| *s < slot)
                .map(|s| self.dir.join(snapshot_file::name(s)))
                .collect(),
        };
        self.remove_obsolete(obsolete)?;
        self.sealed_bytes = 0;
        self.snapshot_bytes = size;
        info!(slot, file = %path.display(), "snapshot written; older log deleted");
        Ok(())
    }

    /// Removes what a checkpoint made obsolete. Within a runtime (a
    /// replica), on the blocking pool: unlinking the old segment took
    /// ~10 ms, about a third of a compaction under `strace`, and every
    /// replica compacts at the same slot, so on the driver's thread it
    /// stalled every write (the durable p99.9, docs/benchmarks.md). Nothing depends on the removal:
    /// the new segment and the snapshot are durable already, recovery
    /// discards what a crash leaves of the old files (`finish_interrupted`),
    /// and a missing file counts as removed. The next removal and the
    /// store's drop wait for this one (`wait_for_removal`).
    fn remove_obsolete(&mut self, obsolete: Obsolete) -> Result<(), StorageError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return obsolete.remove(&*self.disk, &self.dir);
        }
        self.wait_for_removal();
        let (disk, dir) = (self.disk.clone(), self.dir.clone());
        let (removed, removing) = std::sync::mpsc::channel();
        drop(concoord_transport::determinism::spawn_blocking(move || {
            if let Err(e) = obsolete.remove(&*disk, &dir) {
                warn!(error = %e, "could not remove the log files a snapshot made obsolete; recovery removes them at the next start");
            }
            let _sent = removed.send(());
        }));
        self.removing = Some(removing);
        Ok(())
    }

    /// Waits for the removal [`remove_obsolete`](Self::remove_obsolete)
    /// started last, if any, so that no removal outlives its store: the
    /// directory may be opened again, or a new one made at its path, in
    /// this process. (Not in a simulation, where the removal runs on this
    /// thread later and dies with the node.) A removal that never started
    /// because the runtime shut down counts as done.
    fn wait_for_removal(&mut self) {
        if let Some(removing) = self.removing.take()
            && !concoord_transport::determinism::in_simulation()
        {
            let _done = removing.recv();
        }
    }

    /// Figures for status.
    pub fn stats(&self) -> &StorageStats {
        &self.stats
    }

    /// Writes gradual snapshots `bytes` per turn instead of `SNAPSHOT_PIECE_BYTES`.
    #[cfg(test)]
    pub(crate) fn set_snapshot_piece_bytes(&mut self, bytes: usize) {
        self.snapshot_piece_bytes = bytes.max(1);
    }

    /// Rotates segments past `bytes` instead of `SEGMENT_BYTES_MAX`.
    #[cfg(test)]
    pub(crate) fn set_segment_bytes_max(&mut self, bytes: u64) {
        self.segment_bytes_max = bytes;
    }

    /// Moves a damaged data directory aside (`DIR.corrupt-<seconds>`) so the
    /// replica can start afresh as a new incarnation; returns the new name.
    pub fn set_aside(dir: &Path) -> Result<PathBuf, StorageError> {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut name = dir.as_os_str().to_owned();
        name.push(format!(".corrupt-{secs}"));
        let aside = PathBuf::from(name);
        std::fs::rename(dir, &aside).map_err(io(dir))?;
        // The old directory must not come back under its name after a power
        // loss, once the new incarnation has written there.
        sync_dir(&disk::parent_of(dir))?;
        Ok(aside)
    }
}

/// The header of segment `segment` of `node`'s log.
fn header(node: NodeId, segment: u64, start: SegmentStart) -> Record {
    Record::Header(SegmentHeader {
        format: LOG_FORMAT,
        node,
        segment,
        start,
    })
}
