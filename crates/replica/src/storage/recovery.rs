//! Reading a data directory back: the whole history of its identity, or a
//! refusal that says what is missing.
//!
//! Recovery scans every segment, checks with `history` that they form one
//! unbroken log of this node, replays the chain into a `MemoryStorage`
//! mirror, loads the newest snapshot the chain allows, and finishes what a
//! crash interrupted (deletes the segments and snapshots an interrupted
//! checkpoint left behind, and a segment whose creation never completed).
//! It fails only on states no crash produces: corruption in synced data, or
//! files that were removed, renamed or copied by hand.

use super::disk::Disk;
use super::errors::{StorageError, io};
use super::history::{self, SegmentSummary};
use super::identity::{self, Identity};
use super::record::SegmentStart;
use super::{DurableStore, SEGMENT_BYTES_MAX, StorageStats, snapshot_file, wal};
use paxos_core::{MemoryStorage, Persist, Recovered};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

/// What recovery found.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// Records replayed.
    pub records: u64,
    /// Slot of the snapshot loaded (0: none).
    pub snapshot_slot: u64,
    /// Bytes of torn tail cut from the last segment.
    pub torn_bytes_cut: u64,
    /// Leftovers of an interrupted step removed (segments, snapshots,
    /// temporary files).
    pub leftovers_removed: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// The tail segment, to append to.
struct Tail {
    number: u64,
    valid_bytes: u64,
    torn_bytes: u64,
    writes: u64,
}

impl DurableStore {
    /// [`DurableStore::open`] on `disk`.
    pub fn open_on(
        disk: Arc<dyn Disk>,
        dir: &Path,
        identity: &Identity,
    ) -> Result<(DurableStore, Recovered, RecoveryReport), StorageError> {
        let started = Instant::now();
        let names = disk.list(dir).map_err(io(dir))?;
        let numbers = wal::numbers(&names);
        let snapshots = snapshot_file::slots(&names);
        let mut scans = Vec::with_capacity(numbers.len());
        for n in &numbers {
            scans.push(wal::scan(&*disk, &dir.join(wal::name(*n)))?);
        }
        let summaries: Vec<SegmentSummary> = numbers
            .iter()
            .zip(&scans)
            .map(|(number, s)| SegmentSummary {
                number: *number,
                header: s.header,
                writes_after_header: s.writes_after_header,
                sealed: s.sealed,
                torn: s.torn_bytes > 0,
            })
            .collect();
        let plan = history::plan(identity.node, &summaries, &snapshots).map_err(|problem| {
            StorageError::History {
                dir: dir.to_path_buf(),
                node: identity.node,
                problem: problem.to_string(),
            }
        })?;
        let mut report = RecoveryReport::default();
        let mut mirror = MemoryStorage::default();
        let mut sealed_bytes = 0;
        let mut tail = None;
        let next_commit = scans.iter().map(|s| s.last_commit).max().unwrap_or(0) + 1;
        for (number, scan) in numbers.iter().zip(scans) {
            if !plan.chain.contains(number) {
                continue;
            }
            for r in scan.records {
                report.records += 1;
                mirror.write(&r.into_persist());
            }
            if plan.chain.last() == Some(number) {
                tail = Some(Tail {
                    number: *number,
                    valid_bytes: scan.valid_bytes,
                    torn_bytes: scan.torn_bytes,
                    writes: scan.writes_after_header,
                });
            } else {
                sealed_bytes += scan.valid_bytes;
            }
        }
        let Some(tail) = tail else {
            return Err(StorageError::History {
                dir: dir.to_path_buf(),
                node: identity.node,
                problem: history::Problem::NoLog.to_string(),
            });
        };
        let tail_path = dir.join(wal::name(tail.number));
        if tail.torn_bytes > 0 {
            warn!(
                file = %tail_path.display(),
                offset = tail.valid_bytes,
                bytes = tail.torn_bytes,
                "cutting a torn write at the end of the log (it was never acknowledged)"
            );
            report.torn_bytes_cut = tail.torn_bytes;
        }
        // The newest snapshot at or above the one the chain starts after: a
        // checkpoint may have written a newer one before its segment.
        let mut snapshot_bytes = 0;
        if let Some(slot) = snapshots.iter().copied().filter(|s| *s >= plan.base).max() {
            let path = dir.join(snapshot_file::name(slot));
            let (snapshot, size) = snapshot_file::read(&*disk, &path, identity.node)?;
            report.snapshot_slot = slot;
            snapshot_bytes = size;
            mirror.write(&Persist {
                snapshot: Some(snapshot),
                ..Persist::default()
            });
        }
        report.leftovers_removed = finish_interrupted(&*disk, dir, &names, &plan)?;
        let writer = wal::Writer::reopen(
            &*disk,
            &tail_path,
            tail.number,
            tail.valid_bytes,
            tail.writes,
        )?;
        let recovered = mirror.recovered();
        report.elapsed = started.elapsed();
        let store = DurableStore {
            disk,
            dir: dir.to_path_buf(),
            node: identity.node,
            stats: StorageStats {
                bytes_on_disk: sealed_bytes + writer.len + snapshot_bytes,
                ..StorageStats::default()
            },
            writer,
            mirror,
            snapshot_bytes,
            sealed_bytes,
            next_commit,
            unsynced: Vec::new(),
            unsynced_writes: 0,
            unsynced_decided_from: None,
            segment_bytes_max: SEGMENT_BYTES_MAX,
            gradual: None,
            snapshot_piece_bytes: super::SNAPSHOT_PIECE_BYTES,
            sync_in_flight: false,
            in_flight_decided_from: None,
            turns_staged: 0,
            needed_through: 0,
            durable_through: 0,
            accepted_in: Default::default(),
            removing: None,
        };
        Ok((store, recovered, report))
    }
}

/// Deletes what an interrupted checkpoint or rotation left behind, and
/// temporary files; returns how many files it removed.
fn finish_interrupted(
    disk: &dyn Disk,
    dir: &Path,
    names: &[String],
    plan: &history::Plan,
) -> Result<u64, StorageError> {
    let mut doomed: Vec<String> = plan.discard.iter().map(|n| wal::name(*n)).collect();
    doomed.extend(
        snapshot_file::slots(names)
            .into_iter()
            .filter(|s| *s < plan.base)
            .map(snapshot_file::name),
    );
    doomed.extend(names.iter().filter(|n| n.ends_with(".tmp")).cloned());
    for name in &doomed {
        let path = dir.join(name);
        super::disk::remove_if_present(disk, &path).map_err(io(&path))?;
    }
    if !doomed.is_empty() {
        disk.sync_dir(dir).map_err(io(dir))?;
    }
    Ok(doomed.len() as u64)
}

/// Whether `dir` holds a first segment nothing was ever written to (a
/// creation interrupted before the identity was written).
fn unwritten_first_segment(disk: &dyn Disk, dir: &Path) -> bool {
    wal::scan(disk, &dir.join(wal::name(1))).is_ok_and(|s| {
        s.writes_after_header == 0
            && s.header
                .is_none_or(|h| h.segment == 1 && h.start == SegmentStart::Empty)
    })
}

/// Makes `dir` ready for a new replica. It must be absent, empty, or hold
/// only what a creation interrupted before its identity was written leaves
/// (removed here). A directory holding a log but no identity is refused:
/// starting afresh there would throw away a replica's state, and so would
/// guessing its identity.
pub fn prepare_new(disk: &dyn Disk, dir: &Path) -> Result<(), StorageError> {
    if !disk.exists(dir).map_err(io(dir))? {
        return Ok(());
    }
    let names = disk.list(dir).map_err(io(dir))?;
    let tmp_identity = format!("{}.tmp", identity::FILE);
    let leftover = |name: &String| {
        *name == tmp_identity || (*name == wal::name(1) && unwritten_first_segment(disk, dir))
    };
    let (leftovers, others): (Vec<&String>, Vec<&String>) = names.iter().partition(|n| leftover(n));
    let others_owned: Vec<String> = others.iter().map(|n| (*n).clone()).collect();
    let log_files =
        !wal::numbers(&others_owned).is_empty() || !snapshot_file::slots(&others_owned).is_empty();
    if log_files {
        return Err(StorageError::NoIdentity(dir.to_path_buf()));
    }
    if !others.is_empty() {
        return Err(StorageError::Identity(format!(
            "{} is not empty and holds no ConCoord replica; give an empty or new --data-dir",
            dir.display()
        )));
    }
    for name in &leftovers {
        let path = dir.join(name);
        disk.remove(&path).map_err(io(&path))?;
    }
    if !leftovers.is_empty() {
        disk.sync_dir(dir).map_err(io(dir))?;
        warn!(dir = %dir.display(), "removed what an interrupted creation of this data directory left");
    }
    Ok(())
}
