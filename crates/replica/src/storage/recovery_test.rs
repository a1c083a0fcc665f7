//! Recovery tests on real files: what is written is read back, and every
//! way of deleting (or copying in) files by hand that could make a replica
//! resume its identity with forgotten promises is refused, naming the
//! problem and `--repair`.

use super::*;
use paxos_core::{AcceptedEntry, Ballot, Command, Entry, Member, Recovered, Snapshot, ViewHistory};

fn identity(node: u64) -> Identity {
    Identity {
        node: NodeId(node),
        addr: "127.0.0.1:14000".into(),
        object: "counter".into(),
        instance: None,
    }
}

fn ballot(round: u64) -> Ballot {
    Ballot {
        round,
        leader: NodeId(7),
    }
}

fn views() -> ViewHistory {
    ViewHistory::genesis(&[Member {
        id: NodeId(7),
        addr: "127.0.0.1:14000".into(),
    }])
}

fn decided(slot: u64) -> Persist {
    Persist {
        decided: vec![(slot, Entry::Commands(vec![Command(vec![slot as u8])]))],
        ..Persist::default()
    }
}

fn accepted(slot: u64, round: u64) -> Persist {
    Persist {
        accepted: vec![AcceptedEntry {
            slot,
            ballot: ballot(round),
            entry: Entry::Noop,
        }],
        ..Persist::default()
    }
}

fn snapshot(slot: u64) -> Persist {
    Persist {
        snapshot: Some(Snapshot {
            slot,
            views: views(),
            data: vec![1, 2, 3],
        }),
        ..Persist::default()
    }
}

fn open(path: &Path, node: u64) -> Result<Recovered, StorageError> {
    DurableStore::open(path, &identity(node)).map(|(_, rec, _)| rec)
}

fn names(path: &Path) -> Vec<String> {
    let mut n = OsDisk.list(path).expect("list");
    n.sort();
    n
}

fn segments(path: &Path) -> Vec<PathBuf> {
    names(path)
        .into_iter()
        .filter(|n| n.starts_with("wal-"))
        .map(|n| path.join(n))
        .collect()
}

/// A new data directory of node 7, and its store.
fn new_store() -> (tempfile::TempDir, PathBuf, DurableStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    let store = DurableStore::create(&path, &identity(7)).expect("create");
    (dir, path, store)
}

/// Writes promise 3 and the views.
fn promise(store: &mut DurableStore) {
    store
        .write(
            &Persist {
                promised: Some(ballot(3)),
                views: Some(views()),
                ..Persist::default()
            },
            0,
        )
        .expect("write");
}

/// A directory that has lived a while: promise 3, slots 1-10 decided, a
/// snapshot at 5, then accepted values in slots 11-30 over a chain of small
/// rotated segments after it.
fn lived_in() -> (tempfile::TempDir, PathBuf) {
    let (dir, path, mut store) = new_store();
    promise(&mut store);
    for s in 1..=10 {
        store.write(&decided(s), 0).expect("write");
    }
    store.write(&snapshot(5), 0).expect("snapshot");
    store.write_snapshot_piece().expect("snapshot written");
    store.set_segment_bytes_max(300);
    for s in 11..=30 {
        store.write(&accepted(s, 3), 0).expect("write");
    }
    drop(store);
    assert!(segments(&path).len() >= 3, "a chain: {:?}", names(&path));
    (dir, path)
}

/// Asserts `path` is refused as an incomplete history naming `what`.
fn refused(path: &Path, what: &str) {
    match open(path, 7) {
        Err(e @ StorageError::History { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(what), "names {what}: {msg}");
            assert!(msg.contains("--repair"), "says what to do: {msg}");
        }
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(_) => panic!("resumed the identity with files missing: {:?}", names(path)),
    }
}

/// Deletes the segment `seg` and asserts `path` is refused, naming it.
fn refused_without(path: &Path, seg: &Path) {
    std::fs::remove_file(seg).expect("rm");
    let name = seg
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    refused(path, &format!("{name} is missing"));
}

#[test]
fn what_was_written_is_read_back_after_a_restart() {
    let (_dir, path, mut store) = new_store();
    let b = ballot(2);
    store
        .write(
            &Persist {
                promised: Some(b),
                accepted: accepted(9, 2).accepted,
                views: Some(views()),
                ..Persist::default()
            },
            0,
        )
        .expect("write");
    for s in 1..=5 {
        store.write(&decided(s), 0).expect("write");
    }
    let synced_before = store.stats().fsyncs;
    store.write(&accepted(10, 2), 0).expect("write");
    assert_eq!(
        store.stats().fsyncs,
        synced_before + 1,
        "decisions rode on one sync"
    );
    store.write(&decided(6), 0).expect("write");
    drop(store);
    let (_, rec, report) = DurableStore::open(&path, &identity(7)).expect("open");
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
    assert_eq!(
        Identity::read(&OsDisk, &path).expect("read"),
        Some(identity(7))
    );
}

#[test]
fn held_back_decisions_are_synced_before_a_message_announces_them() {
    let (_dir, _path, mut store) = new_store();
    store.write(&accepted(1, 1), 0).expect("write");
    let syncs = store.stats().fsyncs;
    store.write(&decided(5), 0).expect("nothing announced");
    store
        .write(&decided(6), 4)
        .expect("a floor below them announced");
    assert_eq!(store.stats().fsyncs, syncs, "held back");
    store.write(&decided(7), 5).expect("floor 5 announced");
    assert_eq!(store.stats().fsyncs, syncs + 1, "synced before it leaves");
    store
        .write(&decided(8), 7)
        .expect("floor 7 announced again");
    assert_eq!(
        store.stats().fsyncs,
        syncs + 1,
        "8 is above the floor: held"
    );
}

#[test]
fn a_snapshot_deletes_the_log_it_covers_and_keeps_the_rest() {
    let (_dir, path, mut store) = new_store();
    for s in 1..=10 {
        store.write(&decided(s), 0).expect("write");
    }
    store.write(&snapshot(8), 0).expect("snapshot");
    store.write_snapshot_piece().expect("snapshot written");
    assert_eq!(segments(&path).len(), 1);
    drop(store);
    let rec = open(&path, 7).expect("open");
    assert_eq!(rec.snapshot.map(|s| s.slot), Some(8));
    let slots: Vec<u64> = rec.decided.iter().map(|(s, _)| *s).collect();
    assert_eq!(slots, vec![9, 10]);
}

#[test]
fn a_replica_removes_the_files_a_snapshot_covers_off_its_driver_thread() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _replica = runtime.enter();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    let disk = Arc::new(LateRemovals::new());
    disk.open_gate();
    let mut store = DurableStore::create_on(disk.clone(), &path, &identity(7)).expect("create");
    for s in 1..=10 {
        store.write(&decided(s), 0).expect("write");
    }
    store.write(&snapshot(5), 0).expect("snapshot");
    store.write_snapshot_piece().expect("snapshot written");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while segments(&path).len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the old segment was never removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        disk.entered.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the removal ran on the thread that took the snapshot"
    );
    // A second snapshot while nothing is left to remove, then a restart.
    store.write(&snapshot(8), 0).expect("snapshot");
    store.write_snapshot_piece().expect("snapshot written");
    drop(store);
    drop(_replica);
    drop(runtime);
    let rec = open(&path, 7).expect("open");
    assert_eq!(rec.snapshot.map(|s| s.slot), Some(8));
    let slots: Vec<u64> = rec.decided.iter().map(|(s, _)| *s).collect();
    assert_eq!(slots, vec![9, 10]);
}

#[test]
fn removing_obsolete_files_already_gone_is_no_error() {
    let (_dir, path, store) = new_store();
    let gone = Obsolete {
        segments: vec![path.join(wal::name(40))],
        snapshots: vec![path.join(snapshot_file::name(41))],
    };
    gone.remove(&OsDisk, &path)
        .expect("files already gone count as removed");
    drop(store);
}

#[test]
fn a_chain_of_rotated_segments_is_the_whole_history() {
    let (_d, path) = lived_in();
    let rec = open(&path, 7).expect("whole");
    assert_eq!(rec.promised, ballot(3));
    assert_eq!(rec.accepted.len(), 20);
    assert_eq!(rec.snapshot.map(|s| s.slot), Some(5));
    let slots: Vec<u64> = rec.decided.iter().map(|(s, _)| *s).collect();
    assert_eq!(slots, vec![6, 7, 8, 9, 10]);
}

#[test]
fn deleting_every_segment_of_a_new_replica_is_refused() {
    // The report: delete wal-*.log, keep identity, restart.
    let (_dir, path, mut store) = new_store();
    store
        .write(
            &Persist {
                promised: Some(ballot(4)),
                ..Persist::default()
            },
            0,
        )
        .expect("promise");
    drop(store);
    refused_without_any_segment(&path);
}

#[test]
fn deleting_every_segment_is_refused() {
    let (_d, path) = lived_in();
    refused_without_any_segment(&path);
}

fn refused_without_any_segment(path: &Path) {
    for seg in segments(path) {
        std::fs::remove_file(seg).expect("rm");
    }
    refused(path, "no write-ahead log segment");
}

#[test]
fn deleting_the_snapshot_is_refused() {
    let (_d, path) = lived_in();
    std::fs::remove_file(path.join(snapshot_file::name(5))).expect("rm");
    refused(&path, "snapshot at slot 5, which is missing");
}

#[test]
fn deleting_the_first_segment_is_refused() {
    let (_d, path) = lived_in();
    let first = segments(&path).remove(0);
    refused_without(&path, &first);
}

#[test]
fn deleting_a_middle_segment_is_refused() {
    let (_d, path) = lived_in();
    let middle = segments(&path).remove(1);
    refused_without(&path, &middle);
}

#[test]
fn deleting_the_last_segment_is_refused() {
    let (_d, path) = lived_in();
    let last = segments(&path).pop().expect("a segment");
    refused_without(&path, &last);
}

#[test]
fn deleting_everything_but_the_identity_is_refused() {
    let (_d, path) = lived_in();
    for name in names(&path) {
        if name != identity::FILE {
            std::fs::remove_file(path.join(name)).expect("rm");
        }
    }
    refused(&path, "no write-ahead log segment");
}

/// The data directory of another replica (node 9) that wrote `p`.
fn another_replica_after(p: &Persist) -> (tempfile::TempDir, PathBuf) {
    let theirs = tempfile::tempdir().expect("tempdir");
    let their_path = theirs.path().join("data");
    let mut store = DurableStore::create(&their_path, &identity(9)).expect("create");
    store.write(p, 0).expect("write");
    (theirs, their_path)
}

#[test]
fn a_segment_of_another_replica_is_refused() {
    let (_d, path) = lived_in();
    let (_theirs, their_path) = another_replica_after(&accepted(1, 1));
    let last = segments(&path).pop().expect("a segment");
    std::fs::copy(their_path.join(wal::name(1)), &last).expect("cp");
    refused(&path, "belongs to the log of node");
}

#[test]
fn a_snapshot_of_another_replica_is_refused() {
    let (_d, path) = lived_in();
    let (_theirs, their_path) = another_replica_after(&snapshot(5));
    std::fs::copy(
        their_path.join(snapshot_file::name(5)),
        path.join(snapshot_file::name(5)),
    )
    .expect("cp");
    let err = open(&path, 7).expect_err("refused");
    assert!(err.to_string().contains("another replica"), "{err}");
    assert!(err.to_string().contains("--repair"), "{err}");
}

#[test]
fn a_log_without_its_identity_is_refused() {
    let (_d, path) = lived_in();
    std::fs::remove_file(path.join(identity::FILE)).expect("rm");
    let err = prepare_new(&OsDisk, &path).expect_err("refused");
    assert!(matches!(err, StorageError::NoIdentity(_)), "{err}");
    assert!(err.to_string().contains("--repair"), "{err}");
}

#[test]
fn a_creation_interrupted_before_the_identity_is_started_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    drop(DurableStore::create(&path, &identity(7)).expect("create"));
    std::fs::remove_file(path.join(identity::FILE)).expect("as if never written");
    prepare_new(&OsDisk, &path).expect("leftovers of a creation");
    assert!(names(&path).is_empty(), "{:?}", names(&path));
    drop(DurableStore::create(&path, &identity(8)).expect("created afresh"));
    assert!(open(&path, 8).is_ok());
}

#[test]
fn a_directory_of_another_version_is_refused_with_repair() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join(identity::FILE),
        "node=0000000000000007\naddr=127.0.0.1:14000\nobject=counter\n",
    )
    .expect("write");
    let err = Identity::read(&OsDisk, dir.path()).expect_err("refused");
    assert!(err.to_string().contains("--repair"), "{err}");
}

/// A data directory of node 7 with views, slots 1..=`decided_through`
/// decided, and a store writing snapshots `piece` bytes per turn.
fn with_decisions(
    decided_through: u64,
    piece: usize,
) -> (tempfile::TempDir, PathBuf, DurableStore) {
    let (dir, path, mut store) = new_store();
    let first = Persist {
        promised: Some(ballot(3)),
        views: Some(views()),
        ..Persist::default()
    };
    store.write(&first, 0).expect("write");
    for s in 1..=decided_through {
        store.write(&decided(s), 0).expect("write");
    }
    store.set_snapshot_piece_bytes(piece);
    (dir, path, store)
}

/// One driver turn's storage work: the write, then a snapshot piece.
fn turn(store: &mut DurableStore, p: &Persist) {
    store.write(p, 0).expect("write");
    store.write_snapshot_piece().expect("snapshot piece");
}

fn big_snapshot(slot: u64) -> Persist {
    let mut p = snapshot(slot);
    if let Some(s) = p.snapshot.as_mut() {
        s.data = vec![9; 1_000];
    }
    p
}

/// Property: a snapshot of what the log already holds is written a piece
/// per turn; until it is whole the log keeps everything, so a crash in
/// the middle recovers every decision (from the old state and the log),
/// and once whole it replaces the log it covers.
#[test]
fn a_snapshot_of_the_logged_state_is_written_gradually_and_the_log_kept_until_it_is_whole() {
    let (_dir, path, mut store) = with_decisions(10, 300);
    turn(&mut store, &big_snapshot(10));
    assert!(
        names(&path).iter().any(|n| n.ends_with(".snap.tmp")),
        "started, not finished: {:?}",
        names(&path)
    );
    turn(&mut store, &decided(11));
    // A crash now (the process gone; what was written stays).
    let rec = open_copy(&path);
    assert!(
        rec.snapshot.is_none(),
        "the unfinished snapshot is not used"
    );
    assert_eq!(
        rec.decided.len(),
        10,
        "every decision but the held-back one"
    );
    for s in 12..=14 {
        turn(&mut store, &accepted(s, 3));
    }
    assert!(
        names(&path).iter().any(|n| *n == snapshot_file::name(10)),
        "whole after four pieces: {:?}",
        names(&path)
    );
    assert!(!names(&path).iter().any(|n| n.ends_with(".tmp")));
    drop(store);
    let rec = open(&path, 7).expect("open");
    assert_eq!(rec.snapshot.as_ref().map(|s| s.slot), Some(10));
    assert_eq!(rec.snapshot.map(|s| s.data.len()), Some(1_000));
    assert_eq!(
        rec.decided.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![11]
    );
    assert_eq!(rec.accepted.len(), 3);
}

/// Property: a snapshot the log does not hold (installed from a peer, past
/// this replica's decisions) is on disk when `write` returns, since the
/// turn's messages may announce its slots decided.
#[test]
fn a_snapshot_past_the_logged_decisions_is_written_at_once() {
    let (_dir, path, mut store) = with_decisions(3, 1);
    turn(&mut store, &big_snapshot(50));
    assert!(names(&path).iter().any(|n| *n == snapshot_file::name(50)));
    drop(store);
    let rec = open(&path, 7).expect("open");
    assert_eq!(rec.snapshot.map(|s| s.slot), Some(50));
}

/// Property: a new snapshot while one is still being written finishes the
/// first (its checkpoint is of the state before the new one), then starts
/// the second; both recover.
#[test]
fn a_snapshot_while_another_is_being_written_finishes_the_first() {
    let (_dir, path, mut store) = with_decisions(10, 200);
    turn(&mut store, &big_snapshot(6));
    turn(&mut store, &big_snapshot(10));
    assert!(names(&path).iter().any(|n| *n == snapshot_file::name(6)));
    let rec = open_copy(&path);
    assert_eq!(rec.snapshot.as_ref().map(|s| s.slot), Some(6));
    assert_eq!(
        rec.decided.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (7..=10).collect::<Vec<_>>()
    );
    for s in 11..=20 {
        turn(&mut store, &decided(s));
    }
    drop(store);
    let rec = open(&path, 7).expect("open");
    assert_eq!(rec.snapshot.map(|s| s.slot), Some(10));
}

/// Recovers a copy of `path` (so the store writing to it goes on).
fn open_copy(path: &Path) -> Recovered {
    let copy = tempfile::tempdir().expect("tempdir");
    let to = copy.path().join("data");
    std::fs::create_dir_all(&to).expect("mkdir");
    for name in names(path) {
        std::fs::copy(path.join(&name), to.join(&name)).expect("copy");
    }
    open(&to, 7).expect("open the copy")
}

/// Adversarial (review of the reserved zeros): a replica loses power while
/// its last write, never synced and so never acknowledged, overwrites the
/// zeros reserved after the log. The disk had written back the page holding
/// the end of that write but not the page holding its start (an overwrite
/// of allocated blocks reaches the disk in any order). Every synced write is
/// intact, so the replica must start, cutting the torn write; instead it
/// refuses to start, reporting corruption.
#[test]
fn a_torn_overwrite_of_the_reserved_zeros_does_not_stop_start_up() {
    use std::os::unix::fs::FileExt;
    const PAGE: u64 = 4096;
    let (_dir, path, mut store) = new_store();
    promise(&mut store);
    for s in 1..=5 {
        store.write(&decided(s), 0).expect("write");
    }
    drop(store);
    let seg = segments(&path).pop().expect("a segment");
    let scan = wal::scan(&OsDisk, &seg).expect("scan");
    let valid = scan.valid_bytes;
    let file_len = std::fs::metadata(&seg).expect("meta").len();
    assert!(file_len >= valid + 3 * PAGE, "zeros reserved after the log");
    // The interrupted write: a batch of decisions and its commit.
    let records: Vec<Record> = (6..=70)
        .map(|s| Record::Decided(s, Entry::Commands(vec![Command(vec![7; 100])])))
        .collect();
    let write = frame_write(&records, scan.last_commit + 1);
    let boundary = (valid / PAGE + 1) * PAGE;
    assert!(valid + write.len() as u64 > boundary + 64);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open");
    // Only the part from the next page boundary on reached the disk.
    let skip = (boundary - valid) as usize;
    file.write_all_at(&write[skip..], boundary).expect("write");
    drop(file);
    match open(&path, 7) {
        Ok(rec) => {
            assert_eq!(rec.promised, ballot(3), "the synced promise is kept");
            assert!(
                rec.decided.iter().all(|(s, _)| *s < 6),
                "the torn write is cut"
            );
        }
        Err(e) => panic!("a power loss during an unacknowledged write stopped start-up: {e}"),
    }
}

/// The real file system, where a removal on any thread but `driver` waits
/// until the test opens the gate: the blocking pool running the removal a
/// snapshot made obsolete late, as a loaded machine may. Armed, the next
/// `list` (a recovery's) opens the gate and returns only once the removal
/// has removed `watch`: the removal lands between recovery's listing of
/// the directory and its reading of the files listed.
struct LateRemovals {
    driver: std::thread::ThreadId,
    gate: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    /// Removals begun off the driver's thread.
    entered: std::sync::atomic::AtomicUsize,
    /// Directory syncs finished off the driver's thread.
    synced: std::sync::atomic::AtomicUsize,
    armed: std::sync::atomic::AtomicBool,
    watch: std::sync::Mutex<Option<PathBuf>>,
}

impl LateRemovals {
    fn new() -> LateRemovals {
        LateRemovals {
            driver: std::thread::current().id(),
            gate: std::sync::Mutex::new(false),
            opened: std::sync::Condvar::new(),
            entered: Default::default(),
            synced: Default::default(),
            armed: Default::default(),
            watch: Default::default(),
        }
    }

    fn open_gate(&self) {
        *self.gate.lock().expect("gate") = true;
        self.opened.notify_all();
    }

    fn off_driver(&self) -> bool {
        std::thread::current().id() != self.driver
    }
}

/// Waits up to 2 s for `done` (with the change reverted nothing runs off
/// the driver's thread, and the wait just ends).
fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

impl Disk for LateRemovals {
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        OsDisk.exists(path)
    }
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        OsDisk.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let names = OsDisk.list(dir)?;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.open_gate();
            let watch = self.watch.lock().expect("watch").clone();
            wait_for(|| watch.as_ref().is_none_or(|w| !w.exists()));
        }
        Ok(names)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        OsDisk.read(path)
    }
    fn read_head(&self, path: &Path, max: usize) -> std::io::Result<Vec<u8>> {
        OsDisk.read_head(path, max)
    }
    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn AppendFile>> {
        OsDisk.create_new(path)
    }
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn AppendFile>> {
        OsDisk.create(path)
    }
    fn open_at(&self, path: &Path, len: u64) -> std::io::Result<Box<dyn AppendFile>> {
        OsDisk.open_at(path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        OsDisk.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        if self.off_driver() {
            self.entered
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut open = self.gate.lock().expect("gate");
            while !*open {
                open = self.opened.wait(open).expect("gate");
            }
        }
        OsDisk.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        let done = OsDisk.sync_dir(dir);
        if self.off_driver() {
            self.synced
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        done
    }
}

/// Opens the gate 100 ms from now, from another thread (a store being
/// dropped waits for its removal).
fn open_gate_later(disk: &Arc<LateRemovals>) {
    let disk = disk.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        disk.open_gate();
    });
}

/// A runtime of one worker, as a replica's blocking pool needs.
fn one_worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime")
}

/// A store of node 7 at `path` (with promise 3 if `promised`) whose
/// snapshot at slot 5 has started removing the old files, held at the gate
/// until 100 ms from now.
fn removing_after_a_snapshot(
    disk: &Arc<LateRemovals>,
    path: &Path,
    promised: bool,
) -> DurableStore {
    let mut store = DurableStore::create_on(disk.clone(), path, &identity(7)).expect("create");
    if promised {
        promise(&mut store);
    }
    for s in 1..=10 {
        store.write(&decided(s), 0).expect("write");
    }
    store.write(&snapshot(5), 0).expect("snapshot");
    store.write_snapshot_piece().expect("snapshot written");
    wait_for(|| disk.entered.load(std::sync::atomic::Ordering::SeqCst) > 0);
    open_gate_later(disk);
    store
}

/// A replica restarted within its process (its driver stopped, the data
/// directory opened again) while the removal its last snapshot started is
/// still under way on the blocking pool: recovery lists `wal-1`, the
/// removal unlinks it, recovery reads it. Recovery must open the directory
/// (it did when the removal ran on the driver's thread).
#[test]
fn reopening_a_directory_while_the_last_stores_removal_runs_recovers_it() {
    let runtime = one_worker();
    let _replica = runtime.enter();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    let disk = Arc::new(LateRemovals::new());
    // The store goes only once the removal its snapshot started (waiting
    // at the gate) has finished.
    drop(removing_after_a_snapshot(&disk, &path, true));
    assert!(
        !path.join(wal::name(1)).exists(),
        "the store went before its removal finished"
    );
    *disk.watch.lock().expect("watch") = Some(path.join(wal::name(1)));
    disk.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let opened = DurableStore::open_on(disk.clone(), &path, &identity(7));
    let (_, rec, _) = opened.expect("the directory opens");
    assert_eq!(rec.promised, ballot(3));
    assert_eq!(rec.snapshot.map(|s| s.slot), Some(5));
}

/// A replica started again within its process with `--repair` (the data
/// directory set aside, a new one created at the same path) while the
/// removal its old store's last snapshot started is still under way: that
/// removal must not touch the new incarnation's files (it unlinks the new
/// `wal-1`, the live segment, and the new directory is then refused).
#[test]
fn a_late_removal_never_touches_a_new_directory_at_the_same_path() {
    let runtime = one_worker();
    let _replica = runtime.enter();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    let disk = Arc::new(LateRemovals::new());
    drop(removing_after_a_snapshot(&disk, &path, false));
    DurableStore::set_aside(&path).expect("set aside");
    let mut new = DurableStore::create_on(disk.clone(), &path, &identity(9)).expect("create");
    promise(&mut new);
    // The late removal runs to its end (two directory syncs).
    disk.open_gate();
    if disk.entered.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        wait_for(|| disk.synced.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    }
    drop(new);
    let (_, rec, _) = DurableStore::open(&path, &identity(9)).expect("the new directory opens");
    assert_eq!(rec.promised, ballot(3), "the new incarnation's promise");
}
