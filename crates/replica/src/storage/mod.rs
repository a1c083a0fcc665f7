//! Durable replicas (`-w`): a write-ahead log of promises, accepted values,
//! decisions and views, with snapshots, in one data directory per replica.
//!
//! ```text
//! DIR/identity                      node id, address, object (written once)
//! DIR/peer-secret                   the instance secret (`peer_secret`)
//! DIR/wal-0000000000000003.log      records since the last snapshot
//! DIR/snapshot-00000000000000012000.snap
//! ```
//!
//! Every `Ready`'s records are appended and synced with one `fdatasync`
//! before any of its messages is sent: a promise or acceptance is on disk
//! before it is acknowledged, and every call that arrived in one driver turn
//! shares one sync (group commit). Turns that only record decisions are held
//! in memory and written with the next synced write (see `write`), unless a
//! message of the turn announces one of them (`announced_floor`): then they
//! are synced before it leaves. When the core hands out a snapshot, it is
//! written first, then a fresh segment starts with a checkpoint of the state
//! still needed (promise, views, records above the snapshot), and older
//! segments and snapshots are deleted, so the disk holds at most one
//! snapshot interval of log.
//!
//! The log is a small format of our own rather than a crate: what it stores
//! is exactly `paxos_core::Persist`, it needs CRC per record, torn-tail
//! cutting that never skips mid-file corruption, and rotation at snapshots.
//! The embedded stores considered (sled, redb, rocksdb) add their own logs
//! and compaction beneath ours, and fsync policies we would have to tune
//! around.

mod announced_floor;
mod errors;
mod identity;
mod record;
mod snapshot_file;
mod wal;

pub use announced_floor::announced_floor;
pub use errors::StorageError;
pub use identity::Identity;

use errors::io;
use paxos_core::{MemoryStorage, Persist, Recovered, Slot};
use record::Record;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Fsyncs a directory, so renames and new files in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Figures for `concoord status`.
#[derive(Clone, Debug, Default)]
pub struct StorageStats {
    /// Bytes of WAL segments and snapshot on disk.
    pub bytes_on_disk: u64,
    /// Syncs so far.
    pub fsyncs: u64,
    /// Duration of the last sync.
    pub last_fsync: Duration,
    /// Records written so far.
    pub records: u64,
}

/// What recovery found.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// Records replayed.
    pub records: u64,
    /// Slot of the snapshot loaded (0: none).
    pub snapshot_slot: u64,
    /// Bytes of torn tail cut from the last segment.
    pub torn_bytes_cut: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// The WAL, the snapshot, and a mirror of what they hold (for checkpoints).
pub struct DurableStore {
    dir: PathBuf,
    writer: wal::Writer,
    mirror: MemoryStorage,
    snapshot_bytes: u64,
    sealed_bytes: u64,
    stats: StorageStats,
    /// Sequence number of the next write's `Commit` record.
    next_commit: u64,
    /// Encoded writes that only record decisions, held until the next sync.
    unsynced: Vec<u8>,
    /// The lowest slot among the held-back decisions.
    unsynced_decided_from: Option<Slot>,
}

/// Held-back decisions are written once they reach this size even if
/// nothing else needs a sync (a learner catching up only learns decisions).
const MAX_UNSYNCED_BYTES: usize = 1 << 20;

impl DurableStore {
    /// Creates a data directory for a new replica.
    pub fn create(dir: &Path, identity: &Identity) -> Result<DurableStore, StorageError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        identity.write(dir)?;
        let writer = wal::Writer::create(dir, 1)?;
        Ok(DurableStore {
            dir: dir.to_path_buf(),
            writer,
            mirror: MemoryStorage::default(),
            snapshot_bytes: 0,
            sealed_bytes: 0,
            stats: StorageStats::default(),
            next_commit: 1,
            unsynced: Vec::new(),
            unsynced_decided_from: None,
        })
    }

    /// Opens an existing data directory and reads back what it holds.
    pub fn open(dir: &Path) -> Result<(DurableStore, Recovered, RecoveryReport), StorageError> {
        let started = Instant::now();
        let mut mirror = MemoryStorage::default();
        let mut report = RecoveryReport::default();
        let segments = wal::list(dir)?;
        let last = segments.len().saturating_sub(1);
        let mut sealed_bytes = 0;
        let mut tail: Option<(u64, PathBuf, u64)> = None;
        for (i, (number, path)) in segments.iter().enumerate() {
            let scan = wal::scan(path, |r| mirror.write(&r.into_persist()))?;
            report.records += scan.records;
            if scan.torn_bytes > 0 {
                if i != last {
                    return Err(StorageError::Corrupt {
                        path: path.clone(),
                        offset: scan.valid_bytes,
                        detail: "an incomplete record before the last segment".into(),
                    });
                }
                warn!(
                    file = %path.display(),
                    offset = scan.valid_bytes,
                    bytes = scan.torn_bytes,
                    "cutting a torn write at the end of the log (it was never acknowledged)"
                );
                report.torn_bytes_cut = scan.torn_bytes;
            }
            if i == last {
                tail = Some((*number, path.clone(), scan.valid_bytes));
            } else {
                sealed_bytes += scan.valid_bytes;
            }
        }
        let mut snapshot_bytes = 0;
        if let Some((slot, path)) = snapshot_file::list(dir)?.into_iter().next() {
            let snapshot = snapshot_file::read(&path)?;
            snapshot_bytes = std::fs::metadata(&path).map_err(io(&path))?.len();
            report.snapshot_slot = slot;
            mirror.write(&Persist {
                snapshot: Some(snapshot),
                ..Persist::default()
            });
        }
        let writer = match tail {
            Some((number, path, valid)) => wal::Writer::reopen(&path, number, valid)?,
            None => wal::Writer::create(dir, 1)?,
        };
        let recovered = mirror.recovered();
        report.elapsed = started.elapsed();
        let store = DurableStore {
            dir: dir.to_path_buf(),
            stats: StorageStats {
                bytes_on_disk: sealed_bytes + writer.len + snapshot_bytes,
                ..StorageStats::default()
            },
            writer,
            mirror,
            snapshot_bytes,
            sealed_bytes,
            next_commit: report.records + 1,
            unsynced: Vec::new(),
            unsynced_decided_from: None,
        };
        Ok((store, recovered, report))
    }

    /// Makes one turn's `Persist` durable as its messages require: promises,
    /// acceptances, views and snapshots at once (one sync for all of it);
    /// decisions at once if `announced` (the floor the turn's messages
    /// announce, see [`announced_floor`]) covers any of them, else with the
    /// next synced write.
    pub fn write(&mut self, p: &Persist, announced: Slot) -> Result<(), StorageError> {
        let records = Record::from_persist(p);
        if !records.is_empty() {
            let buf = self.encode_write(&records);
            self.unsynced.extend_from_slice(&buf);
            self.stats.records += records.len() as u64;
        }
        if let Some(first) = p.decided.iter().map(|(s, _)| *s).min() {
            let from = self.unsynced_decided_from.map_or(first, |f| f.min(first));
            self.unsynced_decided_from = Some(from);
        }
        self.mirror.write(p);
        // Promises, acceptances and views are answers other replicas count
        // on: they are synced before any message of this turn leaves. A turn
        // that only learned decisions is held in memory and written with the
        // next synced write. A decision is already durable on a quorum (as
        // accepted values) and can be learned again, unless a message of this
        // turn tells a peer it is decided here (its decided floor, or an
        // acknowledgement standing on it). Holding it back, rather than
        // writing it unsynced, keeps the rule recovery relies on: the file
        // never holds unsynced bytes before synced ones, so a damaged record
        // followed by a complete write is always corruption. This halves the
        // syncs per command when load is light.
        let announces_held_back = self.unsynced_decided_from.is_some_and(|s| s <= announced);
        let needs_sync = p.promised.is_some()
            || !p.accepted.is_empty()
            || p.views.is_some()
            || announces_held_back
            || self.unsynced.len() >= MAX_UNSYNCED_BYTES;
        match &p.snapshot {
            Some(snapshot) => self.checkpoint(snapshot)?,
            None if needs_sync && !self.unsynced.is_empty() => self.sync()?,
            None => {}
        }
        self.stats.bytes_on_disk = self.sealed_bytes + self.writer.len + self.snapshot_bytes;
        Ok(())
    }

    /// Frames records as one write, closed by a `Commit` record.
    fn encode_write(&mut self, records: &[Record]) -> Vec<u8> {
        let mut buf = Vec::new();
        for r in records {
            r.encode_into(&mut buf);
        }
        Record::Commit(self.next_commit).encode_into(&mut buf);
        self.next_commit += 1;
        buf
    }

    /// Appends the held-back writes and syncs them.
    fn sync(&mut self) -> Result<(), StorageError> {
        self.writer.append(&self.unsynced)?;
        self.unsynced.clear();
        self.unsynced_decided_from = None;
        self.stats.last_fsync = self.writer.sync()?;
        self.stats.fsyncs += 1;
        Ok(())
    }

    /// Writes the snapshot, starts a new segment holding what is still needed,
    /// and deletes what the snapshot covers.
    fn checkpoint(&mut self, snapshot: &paxos_core::Snapshot) -> Result<(), StorageError> {
        self.sync()?;
        let (path, size) = snapshot_file::write(&self.dir, snapshot)?;
        let mut writer = wal::Writer::create(&self.dir, self.writer.number + 1)?;
        let live = self.mirror.recovered();
        let checkpoint = Persist {
            promised: Some(live.promised),
            accepted: live.accepted,
            decided: live.decided,
            snapshot: None,
            views: live.views,
        };
        let buf = self.encode_write(&Record::from_persist(&checkpoint));
        writer.append(&buf)?;
        self.stats.last_fsync = writer.sync()?;
        self.stats.fsyncs += 1;
        sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut self.writer, writer);
        for (number, seg) in wal::list(&self.dir)? {
            if number <= old.number {
                std::fs::remove_file(&seg).map_err(io(&seg))?;
            }
        }
        for (slot, snap) in snapshot_file::list(&self.dir)? {
            if slot < snapshot.slot {
                std::fs::remove_file(&snap).map_err(io(&snap))?;
            }
        }
        self.sealed_bytes = 0;
        self.snapshot_bytes = size;
        info!(slot = snapshot.slot, file = %path.display(), "snapshot written; older log deleted");
        Ok(())
    }

    /// Figures for status.
    pub fn stats(&self) -> &StorageStats {
        &self.stats
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
        Ok(aside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{
        AcceptedEntry, Ballot, Command, Entry, Member, NodeId, Snapshot, ViewHistory,
    };

    fn identity() -> Identity {
        Identity {
            node: NodeId(7),
            addr: "127.0.0.1:14000".into(),
            object: "counter".into(),
        }
    }

    fn decided(slot: u64) -> Persist {
        Persist {
            decided: vec![(slot, Entry::Commands(vec![Command(vec![slot as u8])]))],
            ..Persist::default()
        }
    }

    #[test]
    fn what_was_written_is_read_back_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        let mut store = DurableStore::create(&path, &identity()).expect("create");
        let b = Ballot {
            round: 2,
            leader: NodeId(7),
        };
        store
            .write(
                &Persist {
                    promised: Some(b),
                    accepted: vec![AcceptedEntry {
                        slot: 9,
                        ballot: b,
                        entry: Entry::Noop,
                    }],
                    views: Some(ViewHistory::genesis(&[Member {
                        id: NodeId(7),
                        addr: "x".into(),
                    }])),
                    ..Persist::default()
                },
                0,
            )
            .expect("write");
        for s in 1..=5 {
            store.write(&decided(s), 0).expect("write");
        }
        let synced_before = store.stats().fsyncs;
        store
            .write(
                &Persist {
                    accepted: vec![AcceptedEntry {
                        slot: 10,
                        ballot: b,
                        entry: Entry::Noop,
                    }],
                    ..Persist::default()
                },
                0,
            )
            .expect("write");
        assert_eq!(
            store.stats().fsyncs,
            synced_before + 1,
            "decisions rode on one sync"
        );
        store.write(&decided(6), 0).expect("write");
        drop(store);
        let (_, rec, report) = DurableStore::open(&path).expect("open");
        assert_eq!(rec.promised, b);
        assert_eq!(rec.accepted.len(), 2);
        let slots: Vec<u64> = rec.decided.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            slots,
            vec![1, 2, 3, 4, 5],
            "held-back decisions are written with the next sync, the last one not at all"
        );
        assert!(rec.views.is_some());
        assert_eq!(report.records, 9);
        assert_eq!(Identity::read(&path).expect("read"), Some(identity()));
    }

    #[test]
    fn held_back_decisions_are_synced_before_a_message_announces_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        let mut store = DurableStore::create(&path, &identity()).expect("create");
        store.write(&decided(5), 0).expect("nothing announced");
        store
            .write(&decided(6), 4)
            .expect("a floor below them announced");
        assert_eq!(store.stats().fsyncs, 0, "held back");
        store.write(&decided(7), 5).expect("floor 5 announced");
        assert_eq!(store.stats().fsyncs, 1, "synced before it leaves");
        store
            .write(&decided(8), 7)
            .expect("floor 7 announced again");
        assert_eq!(store.stats().fsyncs, 1, "8 is above the floor: held");
    }

    #[test]
    fn a_snapshot_deletes_the_log_it_covers_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        let mut store = DurableStore::create(&path, &identity()).expect("create");
        for s in 1..=10 {
            store.write(&decided(s), 0).expect("write");
        }
        let snap = Snapshot {
            slot: 8,
            views: ViewHistory::genesis(&[Member {
                id: NodeId(1),
                addr: "127.0.0.1:14000".into(),
            }]),
            data: vec![1, 2, 3],
        };
        store
            .write(
                &Persist {
                    snapshot: Some(snap),
                    ..Persist::default()
                },
                0,
            )
            .expect("snapshot");
        assert_eq!(wal::list(&path).expect("list").len(), 1);
        drop(store);
        let (_, rec, _) = DurableStore::open(&path).expect("open");
        assert_eq!(rec.snapshot.map(|s| s.slot), Some(8));
        let slots: Vec<u64> = rec.decided.iter().map(|(s, _)| *s).collect();
        assert_eq!(slots, vec![9, 10]);
    }
}
