//! The real `DurableStore` and recovery under power loss (`fault_disk`), at
//! random crash points, seeded and replayable.
//!
//! Two runs, each checking the same promise from its side:
//!
//! * **the store alone**, fed random writes (promises, acceptances,
//!   decisions with the floors messages would announce, snapshots, views)
//!   with tiny segments so rotations and checkpoints are crashed in
//!   everywhere, crashing a few times per seed, also while the directory is
//!   being created;
//! * **three real `paxos_core` nodes**, each on its own power-losing disk,
//!   handling every `Ready` as the driver does (persist with the floor its
//!   messages announce, then send), with message loss and delay, snapshots
//!   and crashes in the middle of any disk operation.
//!
//! After every power loss recovery must succeed (a real crash never leaves a
//! state it refuses) and must hold everything the node acknowledged: every
//! promise and acceptance that was synced before `write` returned (and so
//! may have been sent), and every decision at or below a floor a message
//! announced. `SEED=n` replays one seed; `POWER_LOSS_SEEDS` sets how many
//! run (default 200 for the store, 60 for the cluster). Each injected
//! `StorageBug` must be caught within a stated number of seeds.

use super::fault_disk::{FaultDisk, PowerLoss, SplitMix};
use super::*;
use crate::overlapped_sync::{may_apply_before_sync, own_vote_decided, split_before_sync};
use crate::sync_pipeline::{Released, SyncWaits};
use paxos_core::message::{
    Accept, Accepted, CatchupReply, Heartbeat, HeartbeatAck, PreVote, PreVoteReply, Promise,
    SnapshotChunk,
};
use paxos_core::{
    AcceptedEntry, Ballot, Command, Config, Entry, Member, Message, Node, Ready, Recovered,
    ViewHistory,
};
use std::collections::{BTreeMap, VecDeque};

/// What a node acknowledged (or could have): the obligations recovery must
/// keep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Acked {
    promised: Ballot,
    accepted: BTreeMap<Slot, Ballot>,
    floor: Slot,
    views: bool,
}

impl Acked {
    fn anything(&self) -> bool {
        *self != Acked::default()
    }
}

/// The contiguous decided prefix a node restarts with.
fn prefix(rec: &Recovered) -> Slot {
    let mut p = rec.snapshot.as_ref().map_or(0, |s| s.slot);
    let decided: std::collections::BTreeSet<Slot> = rec.decided.iter().map(|(s, _)| *s).collect();
    while decided.contains(&(p + 1)) {
        p += 1;
    }
    p
}

/// Checks that `rec` keeps every obligation in `acked`.
fn keeps(rec: &Recovered, acked: &Acked) -> Result<(), String> {
    if rec.promised < acked.promised {
        return Err(format!(
            "forgot a promise: recovered {:?}, acknowledged {:?}",
            rec.promised, acked.promised
        ));
    }
    let snap = rec.snapshot.as_ref().map_or(0, |s| s.slot);
    let accepted: BTreeMap<Slot, Ballot> =
        rec.accepted.iter().map(|a| (a.slot, a.ballot)).collect();
    let decided: std::collections::BTreeSet<Slot> = rec.decided.iter().map(|(s, _)| *s).collect();
    for (slot, ballot) in &acked.accepted {
        // An acknowledgement of a slot known decided stands on the decision.
        let held = *slot <= snap
            || decided.contains(slot)
            || accepted.get(slot).is_some_and(|b| b >= ballot);
        if !held {
            return Err(format!(
                "forgot an acceptance in slot {slot} under {ballot:?} (recovered {:?})",
                accepted.get(slot)
            ));
        }
    }
    if prefix(rec) < acked.floor {
        return Err(format!(
            "announced decided floor {} but recovered only up to {}",
            acked.floor,
            prefix(rec)
        ));
    }
    if acked.views && rec.views.is_none() && rec.snapshot.is_none() {
        return Err("forgot the view history".into());
    }
    Ok(())
}

/// What a run went through, summed over its seeds: a run that stops
/// crashing where it matters is noticed.
#[derive(Clone, Copy, Debug, Default)]
struct Exercise {
    writes: u64,
    power_losses: u64,
    crashes_while_recovering: u64,
    crashes_while_creating: u64,
    torn_tails_cut: u64,
    interrupted_steps_finished: u64,
    snapshots: u64,
}

impl Exercise {
    fn add(&mut self, o: Exercise) {
        self.writes += o.writes;
        self.power_losses += o.power_losses;
        self.crashes_while_recovering += o.crashes_while_recovering;
        self.crashes_while_creating += o.crashes_while_creating;
        self.torn_tails_cut += o.torn_tails_cut;
        self.interrupted_steps_finished += o.interrupted_steps_finished;
        self.snapshots += o.snapshots;
    }

    fn recovered(&mut self, report: &RecoveryReport) {
        self.torn_tails_cut += u64::from(report.torn_bytes_cut > 0);
        self.interrupted_steps_finished += u64::from(report.leftovers_removed > 0);
    }
}

fn seeds(default: u64) -> std::ops::Range<u64> {
    if let Some(seed) = std::env::var("SEED").ok().and_then(|s| s.parse().ok()) {
        return seed..seed + 1;
    }
    let n = std::env::var("POWER_LOSS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    0..n
}

fn mode(rng: &mut SplitMix) -> PowerLoss {
    if rng.chance(50) {
        PowerLoss::SyncedOnly
    } else {
        PowerLoss::SomeUnsynced
    }
}

fn member(id: u64) -> Member {
    Member {
        id: NodeId(id),
        addr: format!("10.0.0.{id}:14000"),
    }
}

fn identity_of(id: u64) -> Identity {
    Identity {
        node: NodeId(id),
        addr: member(id).addr,
        object: "counter".into(),
        instance: None,
    }
}

/// Opens the data directory after a power loss as start-up does: resumes
/// the identity if there is one (which must then recover), else makes the
/// directory ready for a new replica.
fn restart(
    disk: &FaultDisk,
    dir: &Path,
    id: u64,
) -> Result<Option<(DurableStore, Recovered, RecoveryReport)>, String> {
    let arc: Arc<dyn Disk> = Arc::new(disk.clone());
    match Identity::read(&*arc, dir).map_err(|e| format!("identity unreadable: {e}"))? {
        Some(identity) => {
            if identity != identity_of(id) {
                return Err(format!("identity changed: {identity:?}"));
            }
            let opened = DurableStore::open_on(arc, dir, &identity)
                .map_err(|e| format!("recovery failed on a crash state: {e}"))?;
            Ok(Some(opened))
        }
        None => {
            prepare_new(&*arc, dir).map_err(|e| format!("a crashed creation is refused: {e}"))?;
            Ok(None)
        }
    }
}

/// A new store of node 1 on a disk that loses power.
fn new_fault_store() -> (FaultDisk, DurableStore) {
    let disk = FaultDisk::new();
    let arc: Arc<dyn Disk> = Arc::new(disk.clone());
    let store = DurableStore::create_on(arc, &dir(), &identity_of(1)).expect("create");
    (disk, store)
}

/// What recovery reads is made durable before the replica acts on it: a
/// process killed before its sync leaves the write in the page cache,
/// recovery finds it there and the restarted replica acts on it, so a power
/// loss after the restart must not take it away. (Reopening the tail syncs
/// it, with the cut of a torn write: `Disk::open_at`.)
#[test]
fn what_recovery_reads_after_a_kill_survives_a_later_power_loss() {
    let (disk, mut store) = new_fault_store();
    let promise = Persist {
        promised: Some(ballot(7)),
        ..Persist::default()
    };
    // The write reaches the page cache; the process dies in its sync.
    disk.crash_after(2);
    assert!(store.write(&promise, 0).is_err(), "the sync never happened");
    drop(store);
    disk.process_killed();
    let (_, rec, _) = restart(&disk, &dir(), 1)
        .expect("recovery")
        .expect("identity");
    assert_eq!(rec.promised, ballot(7), "recovery reads the page cache");
    disk.power_loss(0, PowerLoss::SyncedOnly);
    let (_, rec, _) = restart(&disk, &dir(), 1)
        .expect("recovery")
        .expect("identity");
    assert_eq!(
        rec.promised,
        ballot(7),
        "a promise the restarted replica acted on was lost at the next power loss"
    );
}

/// A sync of the log taken as a job (to run on another thread, see
/// `DurableStore::take_sync_job`) covers exactly the writes appended before
/// it: a power loss before it runs takes them back, once it ran they stay;
/// while it runs the log takes no other write, and its decisions do not
/// count as on disk for what early messages may announce.
#[test]
fn a_sync_job_makes_durable_what_was_appended_before_it_and_nothing_is_appended_while_it_runs() {
    let held_back = |slot: Slot| Persist {
        decided: vec![(slot, decided_value(slot))],
        ..Persist::default()
    };
    for run_it in [false, true] {
        let (disk, mut store) = new_fault_store();
        store.write(&held_back(1), 0).expect("held back in memory");
        assert_eq!(store.synced_decided_floor(&Persist::default()), Some(0));
        let job = store
            .take_sync_job()
            .expect("appended")
            .expect("something to sync");
        assert_eq!(
            store.synced_decided_floor(&Persist::default()),
            Some(0),
            "a decision whose sync is running is not on disk yet"
        );
        let promise = Persist {
            promised: Some(ballot(3)),
            ..Persist::default()
        };
        assert!(
            store.write(&promise, 0).is_err(),
            "a write that must sync while another sync runs is refused"
        );
        if run_it {
            let done = job.run().expect("synced");
            store.sync_finished(done);
            assert_eq!(store.synced_decided_floor(&Persist::default()), None);
        }
        drop(store);
        disk.power_loss(0, PowerLoss::SyncedOnly);
        let (_, rec, _) = restart(&disk, &dir(), 1)
            .expect("recovery")
            .expect("identity");
        assert_eq!(
            rec.decided.iter().any(|(slot, _)| *slot == 1),
            run_it,
            "the decision survives the power loss exactly when its sync job ran"
        );
        assert_eq!(
            rec.promised,
            Ballot::default(),
            "the refused promise was never written"
        );
    }
}

/// A turn that announces a decision whose sync job is still out needs a
/// sync of its own before its messages leave (found by review: the rule
/// looked only at decisions not yet handed to a job).
#[test]
fn a_turn_announcing_a_decision_in_a_running_sync_waits_for_a_sync() {
    let (_disk, mut store) = new_fault_store();
    let held_back = Persist {
        decided: vec![(1, decided_value(1))],
        ..Persist::default()
    };
    store.write(&held_back, 0).expect("held back in memory");
    let _job = store.take_sync_job().expect("appended").expect("a job");
    assert!(
        store.stage(&Persist::default(), 1).expect("staged"),
        "announcing slot 1 needs a sync"
    );
    assert!(
        store.write(&Persist::default(), 1).is_err(),
        "write cannot sync it while the job is out"
    );
}

/// The fault disk's sync handle covers only what the file held when it was
/// taken: a store that appended after taking it has a bug, and the handle
/// says so instead of syncing the later bytes by chance.
#[test]
fn a_sync_handle_refuses_bytes_appended_after_it_was_taken() {
    let disk = FaultDisk::new();
    disk.create_dir_all(&dir()).expect("dir");
    let mut file = disk.create_new(&dir().join("f")).expect("file");
    file.append(b"before").expect("append");
    let handle = file.sync_handle().expect("handle");
    file.append(b"after").expect("append");
    assert!(handle.sync().is_err());
    let handle = file.sync_handle().expect("handle");
    handle.sync().expect("covers everything appended");
    // Cut and written back to the same length: still not what it covered.
    let mut again = disk.open_at(&dir().join("f"), 0).expect("cut");
    again.append(b"BEFORE").expect("append");
    assert!(handle.sync().is_err());
}

// ---------------------------------------------------------------------------
// The store alone.

fn ballot(round: u64) -> Ballot {
    Ballot {
        round,
        leader: NodeId(1),
    }
}

fn decided_value(slot: Slot) -> Entry {
    Entry::Commands(vec![Command(slot.to_be_bytes().to_vec())])
}

/// The in-memory state of the node the random writes come from.
struct Writer {
    promised: u64,
    next_accept: Slot,
    decided: Slot,
    snapshot: Slot,
    views_written: bool,
}

impl Writer {
    fn after(rec: Option<&Recovered>) -> Writer {
        let Some(rec) = rec else {
            return Writer {
                promised: 0,
                next_accept: 1,
                decided: 0,
                snapshot: 0,
                views_written: false,
            };
        };
        Writer {
            promised: rec.promised.round,
            next_accept: rec.accepted.iter().map(|a| a.slot + 1).max().unwrap_or(1),
            decided: prefix(rec),
            snapshot: rec.snapshot.as_ref().map_or(0, |s| s.slot),
            views_written: rec.views.is_some() || rec.snapshot.is_some(),
        }
    }

    /// One random turn's `Persist` and the floor its messages announce.
    fn next(&mut self, rng: &mut SplitMix) -> (Persist, Slot) {
        let mut p = Persist::default();
        let mut announced = 0;
        if !self.views_written {
            p.views = Some(ViewHistory::genesis(&[member(1)]));
            self.views_written = true;
        }
        let kind = rng.below(10);
        if kind == 0 || kind == 9 {
            self.promised += 1;
            p.promised = Some(ballot(self.promised));
        }
        if (1..=3).contains(&kind) || kind == 9 {
            for _ in 0..=rng.below(4) {
                p.accepted.push(AcceptedEntry {
                    slot: self.next_accept,
                    ballot: ballot(self.promised),
                    entry: Entry::Commands(vec![Command(vec![0; rng.below(80) as usize])]),
                });
                self.next_accept += 1;
            }
        }
        if (4..=7).contains(&kind) || kind == 9 {
            let before = self.decided;
            for _ in 0..=rng.below(4) {
                self.decided += 1;
                p.decided.push((self.decided, decided_value(self.decided)));
            }
            announced = match rng.below(3) {
                0 => 0,
                1 => before,
                _ => self.decided,
            };
        }
        if kind == 8 && self.decided > self.snapshot {
            self.snapshot = self.decided;
            p.snapshot = Some(paxos_core::Snapshot {
                slot: self.snapshot,
                views: ViewHistory::genesis(&[member(1)]),
                data: vec![7; rng.below(300) as usize],
            });
        }
        (p, announced)
    }
}

/// Obligations a successful `write` of `p` announcing `announced` adds.
fn acknowledge(acked: &mut Acked, p: &Persist, announced: Slot, decided: Slot) {
    if let Some(b) = p.promised {
        acked.promised = acked.promised.max(b);
    }
    for a in &p.accepted {
        let b = acked.accepted.entry(a.slot).or_default();
        *b = (*b).max(a.ballot);
    }
    acked.views |= p.views.is_some();
    acked.floor = acked.floor.max(announced.min(decided));
    if let Some(s) = &p.snapshot {
        acked.floor = acked.floor.max(s.slot);
    }
}

/// Writes random turns until the disk dies, recording what each successful
/// write acknowledged.
fn write_until_dead(
    store: &mut DurableStore,
    recovered: Option<&Recovered>,
    rng: &mut SplitMix,
    acked: &mut Acked,
    ex: &mut Exercise,
) {
    write_turns(store, recovered, rng, acked, ex, false);
}

/// Writes random turns (snapshots mixed as `mix_snapshot` does if `mixed`)
/// until the disk dies.
fn write_turns(
    store: &mut DurableStore,
    recovered: Option<&Recovered>,
    rng: &mut SplitMix,
    acked: &mut Acked,
    ex: &mut Exercise,
    mixed: bool,
) {
    let mut w = Writer::after(recovered);
    loop {
        let (mut p, announced) = w.next(rng);
        if mixed {
            mix_snapshot(&mut w, &mut p, rng);
        }
        if store.write(&p, announced).is_err() {
            return;
        }
        // The turn's messages leave here: what `write` made durable is owed.
        acknowledge(acked, &p, announced, w.decided);
        ex.writes += 1;
        ex.snapshots += u64::from(p.snapshot.is_some());
        if store.write_snapshot_piece().is_err() {
            return;
        }
    }
}

/// One seed of the store run: a few crashes (while creating, recovering or
/// writing), each followed by a power loss; recovery must then hold every
/// obligation.
fn store_seed(seed: u64) -> Result<Exercise, String> {
    store_seed_with(seed, write_until_dead)
}

/// How a store run writes between crashes.
type WriteUntilDead =
    fn(&mut DurableStore, Option<&Recovered>, &mut SplitMix, &mut Acked, &mut Exercise);

/// [`store_seed`], writing with `write`.
fn store_seed_with(seed: u64, write: WriteUntilDead) -> Result<Exercise, String> {
    let mut rng = SplitMix::new(seed);
    let disk = FaultDisk::new();
    let dir = PathBuf::from("/srv/concoord/data");
    let arc: Arc<dyn Disk> = Arc::new(disk.clone());
    let mut acked = Acked::default();
    let mut ex = Exercise::default();
    let segment_bytes = 150 + rng.below(2_000);
    // Snapshots (up to ~330 bytes here) written in one write or several.
    let piece_bytes = 1 + rng.below(400) as usize;
    let mut ever_created = false;
    for _crash in 0..5 {
        disk.crash_after(1 + rng.below(120));
        match restart(&disk, &dir, 1) {
            Err(_) if disk.is_dead() => ex.crashes_while_recovering += 1,
            Err(e) => return Err(e),
            Ok(Some((mut store, rec, report))) => {
                keeps(&rec, &acked)?;
                ex.recovered(&report);
                store.set_segment_bytes_max(segment_bytes);
                store.set_snapshot_piece_bytes(piece_bytes);
                write(&mut store, Some(&rec), &mut rng, &mut acked, &mut ex);
            }
            Ok(None) if ever_created && acked.anything() => {
                return Err("the identity vanished after the replica acknowledged".into());
            }
            Ok(None) => {
                ever_created = true;
                match DurableStore::create_on(arc.clone(), &dir, &identity_of(1)) {
                    Ok(mut store) => {
                        store.set_segment_bytes_max(segment_bytes);
                        store.set_snapshot_piece_bytes(piece_bytes);
                        write(&mut store, None, &mut rng, &mut acked, &mut ex);
                    }
                    Err(_) => ex.crashes_while_creating += 1,
                }
            }
        }
        if !disk.is_dead() {
            return Err("the disk should have died".into());
        }
        disk.power_loss(rng.next_u64(), mode(&mut rng));
        ex.power_losses += 1;
    }
    match restart(&disk, &dir, 1)? {
        Some((_, rec, report)) => {
            keeps(&rec, &acked)?;
            ex.recovered(&report);
        }
        None if acked.anything() => {
            return Err("the identity vanished after the replica acknowledged".into());
        }
        None => {}
    }
    Ok(ex)
}

/// Runs `run` over the seeds, failing with a replay line.
fn sweep(default_seeds: u64, run: fn(u64) -> Result<Exercise, String>) -> Exercise {
    let mut ex = Exercise::default();
    for seed in seeds(default_seeds) {
        ex.add(run(seed).unwrap_or_else(|e| {
            panic!(
                "seed {seed}: {e}\nreplay: SEED={seed} cargo test --release -p concoord-replica --lib power_loss"
            )
        }));
    }
    println!("{ex:?}");
    ex
}

#[test]
fn every_acknowledged_write_survives_power_loss_and_recovery_never_fails() {
    let ex = sweep(200, store_seed);
    if seeds(200).count() >= 100 {
        assert!(
            ex.writes > 0 && ex.power_losses > 0 && ex.snapshots > 0,
            "{ex:?}"
        );
        assert!(ex.crashes_while_recovering > 0, "{ex:?}");
        assert!(ex.crashes_while_creating > 0, "{ex:?}");
        assert!(ex.torn_tails_cut > 0, "{ex:?}");
        assert!(ex.interrupted_steps_finished > 0, "{ex:?}");
    }
}

// ---------------------------------------------------------------------------
// Three real nodes.

struct Replica {
    id: u64,
    disk: FaultDisk,
    node: Option<(Node, DurableStore)>,
    down_until: u64,
    acked: Acked,
    /// The state machine: how many slots it executed.
    executed: Slot,
    /// What waits for its syncs (the driver's own rules, `sync_pipeline`).
    waits: SyncWaits,
    /// Its sync job out, and the step it finishes at (the syncs run off
    /// the turn, as in the driver, so a crash can fall inside one).
    job: Option<(u64, SyncJob)>,
}

/// Messages posted on the wire: most arrive 1–4 steps later, one in five
/// is lost.
struct Wire<'a> {
    rng: &'a mut SplitMix,
    queue: &'a mut VecDeque<(u64, NodeId, NodeId, Message)>,
    now: u64,
}

impl Wire<'_> {
    fn post(&mut self, from: NodeId, acked: &mut Acked, messages: Vec<paxos_core::Outgoing>) {
        for out in messages {
            acknowledged_by(acked, &out.msg);
            if !self.rng.chance(5) {
                let at = self.now + 1 + self.rng.below(4);
                self.queue.push_back((at, from, out.to, out.msg));
            }
        }
    }
}

impl Replica {
    /// The machine died in the middle of a disk operation: what waited for
    /// its sync never leaves.
    fn crash(&mut self, wire: &mut Wire<'_>) {
        self.node = None;
        self.down_until = wire.now + 1 + wire.rng.below(30);
        self.waits = SyncWaits::default();
        self.job = None;
    }

    /// Starts a sync job if a staged turn waits for one and none is out;
    /// false if the machine died in it.
    fn start_job(&mut self, wire: &mut Wire<'_>) -> bool {
        let Some((node, store)) = self.node.as_mut() else {
            return false;
        };
        if self.job.is_some() || !store.sync_pending() {
            return true;
        }
        let taken = store.take_sync_job();
        // Nothing to append: the turns are durable already.
        let released = self.waits.release_durable(store);
        wire.post(node.id(), &mut self.acked, released.messages);
        for (from, msg) in released.votes {
            node.step(from, msg);
        }
        match taken {
            Ok(Some(job)) => {
                // Most syncs take one to three steps; 4 % stall for up to
                // fifteen, outlasting a follower's whole round trip.
                let steps = if wire.rng.chance(4) {
                    wire.rng.below(15)
                } else {
                    wire.rng.below(3)
                };
                self.job = Some((wire.now + 1 + steps, job));
                true
            }
            Ok(None) => true,
            Err(_) => {
                self.crash(wire);
                false
            }
        }
    }

    /// Makes every staged turn durable now: the job out, then one for the
    /// rest; false if the machine died in either.
    fn sync_now(&mut self, wire: &mut Wire<'_>) -> bool {
        self.finish_job(wire) && self.start_job(wire) && self.finish_job(wire)
    }

    /// Runs the sync job out, if any, and lets go what waited for it; false
    /// if the machine died in it.
    fn finish_job(&mut self, wire: &mut Wire<'_>) -> bool {
        let Some((node, store)) = self.node.as_mut() else {
            return false;
        };
        let Some((_, job)) = self.job.take() else {
            return true;
        };
        let Ok(done) = job.run() else {
            self.crash(wire);
            return false;
        };
        let released = self.waits.finished(store, done);
        wire.post(node.id(), &mut self.acked, released.messages);
        for (from, msg) in released.votes {
            node.step(from, msg);
        }
        true
    }
}

fn config(id: u64, seed: u64) -> Config {
    let mut c = Config::new(NodeId(id));
    c.seed = seed ^ id;
    c.heartbeat_ticks = 3;
    c.election_ticks = 20;
    c.window = 8;
    c.max_inflight_slots = 8;
    c.log_entries_soft_max = 20;
    c.log_retain_after_snapshot = 5;
    c
}

/// The decided prefix a message tells its receiver the sender has, read
/// from the protocol's side (the store computes what to sync on its own).
fn decided_floor(msg: &Message) -> Slot {
    match msg {
        Message::PreVote(PreVote { decided, .. })
        | Message::PreVoteReply(PreVoteReply { decided, .. })
        | Message::Promise(Promise { decided, .. })
        | Message::Accepted(Accepted { decided, .. })
        | Message::HeartbeatAck(HeartbeatAck { decided, .. }) => *decided,
        Message::Accept(Accept { commit, .. })
        | Message::Heartbeat(Heartbeat { commit, .. })
        | Message::CatchupReply(CatchupReply { commit, .. })
        | Message::SnapshotChunk(SnapshotChunk { commit, .. }) => *commit,
        _ => 0,
    }
}

/// Obligations the messages a node sends add.
fn acknowledged_by(acked: &mut Acked, msg: &Message) {
    acked.floor = acked.floor.max(decided_floor(msg));
    match msg {
        Message::Promise(Promise {
            ballot, ok: true, ..
        }) => acked.promised = acked.promised.max(*ballot),
        Message::Accepted(Accepted {
            ballot,
            ok: true,
            slots,
            ..
        }) => {
            for s in slots {
                let b = acked.accepted.entry(*s).or_default();
                *b = (*b).max(*ballot);
            }
        }
        _ => {}
    }
}

struct Cluster {
    rng: SplitMix,
    seed: u64,
    replicas: Vec<Replica>,
    wire: VecDeque<(u64, NodeId, NodeId, Message)>,
    decided: BTreeMap<Slot, Entry>,
    now: u64,
    proposed: u64,
    ex: Exercise,
}

impl Cluster {
    /// `size` replicas, founded together.
    fn new(seed: u64, size: u64) -> Result<Cluster, String> {
        let members: Vec<Member> = (1..=size).map(member).collect();
        let mut replicas = Vec::new();
        for id in 1..=size {
            let disk = FaultDisk::new();
            let store = DurableStore::create_on(Arc::new(disk.clone()), &dir(), &identity_of(id))
                .map_err(|e| e.to_string())?;
            let node = Node::bootstrap(config(id, seed), &members).map_err(|e| e.to_string())?;
            replicas.push(Replica {
                id,
                disk,
                node: Some((node, store)),
                down_until: 0,
                acked: Acked::default(),
                executed: 0,
                waits: SyncWaits::default(),
                job: None,
            });
        }
        Ok(Cluster {
            rng: SplitMix::new(seed),
            seed,
            replicas,
            wire: VecDeque::new(),
            decided: BTreeMap::new(),
            now: 0,
            proposed: 0,
            ex: Exercise::default(),
        })
    }

    /// One replica's `Ready`, handled as the driver does
    /// (`Driver::process_ready`).
    fn process(&mut self, i: usize) -> Result<(), String> {
        let r = &mut self.replicas[i];
        let mut wire = Wire {
            rng: &mut self.rng,
            queue: &mut self.wire,
            now: self.now,
        };
        let Some((node, _)) = r.node.as_mut() else {
            return Ok(());
        };
        let mut ready = node.take_ready();
        let snapshot_turn = ready.persist.snapshot.is_some() || ready.restore.is_some();
        if snapshot_turn && !r.finish_job(&mut wire) {
            return Ok(());
        }
        let Some((node, store)) = r.node.as_mut() else {
            return Ok(());
        };
        // A leader's `Accept`s leave before the sync (`overlapped_sync`),
        // so a crash in the middle of the write finds them already sent.
        let (early, late) =
            split_before_sync(std::mem::take(&mut ready.messages), store, &ready.persist);
        ready.messages = late;
        wire.post(node.id(), &mut r.acked, early);
        let floor = announced_floor(&ready.messages);
        let written = if snapshot_turn {
            store.write(&ready.persist, floor)
        } else {
            store.stage(&ready.persist, floor).map(drop)
        };
        if written.is_err() {
            // The machine died in the middle of the write: nothing more of
            // this turn leaves (its early `Accept`s already have).
            r.crash(&mut wire);
            return Ok(());
        }
        // The turn's sync starts before its decisions are applied.
        if !store.snapshot_in_progress() && !r.start_job(&mut wire) {
            return Ok(());
        }
        // Decisions resting on acceptances already on disk are applied
        // (their callers answered) while the sync runs, as the driver does.
        let applied_early = may_apply_before_sync(&ready);
        if applied_early {
            apply(&mut self.decided, &mut r.executed, &ready)?;
        }
        let Some((node, store)) = r.node.as_mut() else {
            return Ok(());
        };
        let released = r.waits.hold(store, std::mem::take(&mut ready.messages));
        wire.post(node.id(), &mut r.acked, released.messages);
        for (from, msg) in released.votes {
            node.step(from, msg);
        }
        self.ex.writes += 1;
        if !applied_early {
            // Its own vote decided a slot in this turn: the sync of this
            // turn first (the job out may cover earlier turns only).
            if (!ready.committed.is_empty() || own_vote_decided(&ready)) && !r.sync_now(&mut wire) {
                return Ok(());
            }
            apply(&mut self.decided, &mut r.executed, &ready)?;
        }
        let Some((node, store)) = r.node.as_mut() else {
            return Ok(());
        };
        if ready.compaction_wanted
            && node
                .compact(r.executed, r.executed.to_be_bytes().to_vec())
                .is_ok()
        {
            self.ex.snapshots += 1;
        }
        if store.snapshot_in_progress() && !r.finish_job(&mut wire) {
            return Ok(());
        }
        let Some((_, store)) = r.node.as_mut() else {
            return Ok(());
        };
        if store.write_snapshot_piece().is_err() {
            // Died while writing a piece, after the turn's messages left.
            r.crash(&mut wire);
            return Ok(());
        }
        r.start_job(&mut wire);
        self.check_durable_quorum(&ready.committed)
    }

    /// Every slot `committed` (just applied) is on a majority of the disks
    /// with its value, as a power loss of every machine at once would leave
    /// them: a decision never counts a vote a power loss can take back.
    /// Checked on a quarter of the turns (it recovers every disk).
    fn check_durable_quorum(&mut self, committed: &[(Slot, Entry)]) -> Result<(), String> {
        if committed.is_empty() || !self.rng.chance(25) {
            return Ok(());
        }
        let mut holding: BTreeMap<Slot, usize> = BTreeMap::new();
        for r in &self.replicas {
            let fork = r.disk.fork();
            fork.power_loss(0, PowerLoss::SyncedOnly);
            let Some((_, rec, _)) = restart(&fork, &dir(), r.id)? else {
                continue;
            };
            for (slot, entry) in committed {
                if holds(&rec, *slot, entry) {
                    *holding.entry(*slot).or_default() += 1;
                }
            }
        }
        let majority = self.replicas.len() / 2 + 1;
        for (slot, _) in committed {
            let n = holding.get(slot).copied().unwrap_or(0);
            if n < majority {
                return Err(format!(
                    "slot {slot} was applied while on only {n} of {} disks",
                    self.replicas.len()
                ));
            }
        }
        Ok(())
    }

    fn restart(&mut self, i: usize) -> Result<(), String> {
        let seed = self.rng.next_u64();
        let power = mode(&mut self.rng);
        let r = &mut self.replicas[i];
        r.disk.power_loss(seed, power);
        self.ex.power_losses += 1;
        let Some((store, rec, report)) = restart(&r.disk, &dir(), r.id)? else {
            return Err("the identity vanished".into());
        };
        self.ex.recovered(&report);
        keeps(&rec, &r.acked).map_err(|e| format!("node {}: {e}", r.id))?;
        r.executed = rec.snapshot.as_ref().map_or(0, |s| s.slot);
        r.waits = SyncWaits::default();
        r.job = None;
        let node = Node::restart(config(r.id, self.seed ^ self.now), rec)
            .map_err(|e| format!("node {} cannot restart: {e}", r.id))?;
        r.node = Some((node, store));
        Ok(())
    }

    fn step(&mut self, crashes: bool) -> Result<(), String> {
        self.now += 1;
        let mut later = VecDeque::new();
        while let Some((at, from, to, msg)) = self.wire.pop_front() {
            if at > self.now {
                later.push_back((at, from, to, msg));
                continue;
            }
            let r = &mut self.replicas[(to.0 - 1) as usize];
            if let Some((node, store)) = r.node.as_mut()
                && let Some(msg) = r.waits.admit(store, from, msg)
            {
                node.step(from, msg);
            }
        }
        self.wire = later;
        // Syncs due now finish (a machine may die in one).
        for r in &mut self.replicas {
            if r.job.as_ref().is_some_and(|(due, _)| *due <= self.now) {
                let mut wire = Wire {
                    rng: &mut self.rng,
                    queue: &mut self.wire,
                    now: self.now,
                };
                // A finished sync starts the next (`Driver::on_synced`).
                if r.finish_job(&mut wire) {
                    r.start_job(&mut wire);
                }
            }
        }
        for i in 0..self.replicas.len() {
            if self.replicas[i].node.is_none() && self.now >= self.replicas[i].down_until {
                self.restart(i)?;
            }
            let proposal = self.proposed;
            if let Some((node, _)) = self.replicas[i].node.as_mut() {
                node.tick();
                if node.is_leader()
                    && node
                        .propose(Command(proposal.to_be_bytes().to_vec()))
                        .is_ok()
                {
                    self.proposed += 1;
                }
            }
            self.process(i)?;
        }
        if crashes && self.rng.chance(4) {
            let victim = self.rng.below(self.replicas.len() as u64) as usize;
            if self.replicas[victim].node.is_some() {
                // It dies in one of its next few disk operations.
                self.replicas[victim]
                    .disk
                    .crash_after(1 + self.rng.below(4));
            }
        }
        Ok(())
    }
}

/// Whether recovered state `rec` holds `entry` at `slot` for good: in its
/// snapshot, as a decision, or as its latest acceptance there.
fn holds(rec: &Recovered, slot: Slot, entry: &Entry) -> bool {
    rec.snapshot.as_ref().is_some_and(|s| s.slot >= slot)
        || rec.decided.iter().any(|(s, e)| *s == slot && e == entry)
        || rec
            .accepted
            .iter()
            .filter(|a| a.slot == slot)
            .max_by_key(|a| a.ballot)
            .is_some_and(|a| a.entry == *entry)
}

/// Executes `ready`'s decisions into the cluster's record of everything
/// decided (a slot decided twice is the violation) and the replica's state.
fn apply(
    decided: &mut BTreeMap<Slot, Entry>,
    executed: &mut Slot,
    ready: &Ready,
) -> Result<(), String> {
    if let Some(s) = &ready.restore {
        *executed = s.slot;
    }
    for (slot, entry) in &ready.committed {
        if let Some(seen) = decided.get(slot)
            && seen != entry
        {
            return Err(format!("slot {slot} decided twice: {seen:?} and {entry:?}"));
        }
        decided.insert(*slot, entry.clone());
        *executed = *slot;
    }
    Ok(())
}

fn dir() -> PathBuf {
    PathBuf::from("/var/lib/concoord")
}

/// One seed of the cluster run: a chaos phase with crashes, then a calm one
/// in which every replica must be back and the instance must progress.
fn cluster_seed(seed: u64) -> Result<Exercise, String> {
    cluster_seed_with(seed, None)
}

/// [`cluster_seed`], the replicas writing snapshots `piece` bytes per turn
/// if given (set again after every step: a restarted replica's store is new).
fn cluster_seed_with(seed: u64, piece: Option<usize>) -> Result<Exercise, String> {
    cluster_run(Cluster::new(seed, 3)?, piece)
}

/// One seed of a lone replica's run: its own acceptance decides every slot
/// in the turn that makes it, so nothing it decides may be applied (its
/// caller answered) before that turn's write.
fn lone_seed(seed: u64) -> Result<Exercise, String> {
    cluster_run(Cluster::new(seed, 1)?, None)
}

/// Runs `c` through chaos and calm.
fn cluster_run(mut c: Cluster, piece: Option<usize>) -> Result<Exercise, String> {
    let set_piece = |c: &mut Cluster| {
        for r in &mut c.replicas {
            if let (Some((_, store)), Some(bytes)) = (r.node.as_mut(), piece) {
                store.set_snapshot_piece_bytes(bytes);
            }
        }
    };
    set_piece(&mut c);
    for _ in 0..1_500 {
        c.step(true)?;
        set_piece(&mut c);
    }
    let decided_before = c.decided.len();
    for _ in 0..600 {
        c.step(false)?;
        set_piece(&mut c);
    }
    if c.replicas.iter().any(|r| r.node.is_none()) {
        return Err("a replica never came back".into());
    }
    if c.decided.len() <= decided_before {
        return Err(format!(
            "no progress after the crashes stopped ({decided_before} slots decided)"
        ));
    }
    Ok(c.ex)
}

#[test]
fn a_decided_floor_announced_to_peers_survives_power_loss() {
    let ex = sweep(60, cluster_seed);
    if seeds(60).count() >= 30 {
        assert!(ex.power_losses > 0 && ex.snapshots > 0, "{ex:?}");
        assert!(ex.torn_tails_cut > 0, "{ex:?}");
    }
}

// ---------------------------------------------------------------------------
// The checks can fail.

/// The first seed below `limit` at which `run` fails with `bug` injected.
fn first_failing(
    bug: StorageBug,
    limit: u64,
    run: fn(u64) -> Result<Exercise, String>,
) -> Option<u64> {
    inject(Some(bug));
    let found = (0..limit).find(|seed| match run(*seed) {
        Ok(_) => false,
        Err(e) => {
            println!("{bug:?} at seed {seed}: {e}");
            true
        }
    });
    inject(None);
    found
}

#[test]
fn the_store_run_catches_every_injected_storage_bug() {
    for (bug, limit) in [
        (StorageBug::IgnoreAnnouncedFloor, 50),
        (StorageBug::NewSegmentNameNotSynced, 50),
        (StorageBug::SnapshotDataNotSynced, 50),
        (StorageBug::DataDirNotSynced, 50),
    ] {
        let found = first_failing(bug, limit, store_seed);
        assert!(found.is_some(), "{bug:?} not caught within {limit} seeds");
        println!("{bug:?}: caught at seed {found:?}");
    }
}

/// The overlap of a leader's sync with its `Accept`s is only safe for
/// `Accept`s that announce synced decisions alone, and only for `Accept`s:
/// each variant that goes further is caught.
#[test]
fn the_cluster_run_catches_early_messages_that_say_more_than_the_disk_holds() {
    for (bug, limit) in [
        (StorageBug::EarlyAcceptsAnnounceUnsynced, 60),
        (StorageBug::EarlyVotes, 60),
    ] {
        let found = first_failing(bug, limit, cluster_seed);
        assert!(found.is_some(), "{bug:?} not caught within {limit} seeds");
        println!("{bug:?}: caught at seed {found:?}");
    }
}

/// Decisions are applied before the turn's write only when they rest on
/// acceptances already on disk: a lone replica, whose own acceptance
/// decides a slot in the turn it is made, applies them after the write.
#[test]
fn a_lone_replica_answers_only_decisions_on_its_disk() {
    let ex = sweep(60, lone_seed);
    if seeds(60).count() >= 30 {
        assert!(ex.power_losses > 0, "{ex:?}");
    }
    let found = first_failing(StorageBug::ApplyBeforeOwnVoteSynced, 60, lone_seed);
    assert!(
        found.is_some(),
        "applying before the own vote is synced was not caught"
    );
    println!("ApplyBeforeOwnVoteSynced: caught at seed {found:?}");
}

/// A leader's syncs run off its turns (`sync_pipeline`): a follower's vote
/// is counted only once the leader's own acceptances before it are on
/// disk. Counting it at once is caught (a slot decided twice, or an
/// acknowledged write lost, after the leader loses power mid-sync).
#[test]
fn the_cluster_run_catches_votes_counted_before_the_leaders_own_sync() {
    let found = first_failing(StorageBug::VotesCountedBeforeOwnSync, 60, cluster_seed);
    assert!(found.is_some(), "not caught within 60 seeds");
    println!("VotesCountedBeforeOwnSync: caught at seed {found:?}");
}

#[test]
fn the_cluster_run_catches_decisions_announced_before_they_are_synced() {
    let found = first_failing(StorageBug::IgnoreAnnouncedFloor, 30, cluster_seed);
    assert!(found.is_some(), "not caught within 30 seeds");
    println!("caught at seed {found:?}");
}

// ---------------------------------------------------------------------------
// Snapshots written at once (installed from a peer, past the logged
// decisions) and snapshots folding the turn's own decisions, mixed with
// gradual ones, so a peer's snapshot also arrives while one is pending.

fn write_until_dead_mixed(
    store: &mut DurableStore,
    recovered: Option<&Recovered>,
    rng: &mut SplitMix,
    acked: &mut Acked,
    ex: &mut Exercise,
) {
    write_turns(store, recovered, rng, acked, ex, true);
}

/// Makes a turn's snapshot, sometimes, one installed from a peer (past the
/// decisions written) or one folding new decisions of the same turn.
fn mix_snapshot(w: &mut Writer, p: &mut Persist, rng: &mut SplitMix) {
    if p.snapshot.is_some() {
        if rng.chance(35) {
            // A peer's snapshot past this replica's decisions.
            w.decided += 1 + rng.below(5);
        } else if rng.chance(50) {
            // A compaction that folds the turn's new decisions.
            for _ in 0..=rng.below(3) {
                w.decided += 1;
                p.decided.push((w.decided, decided_value(w.decided)));
            }
        }
        w.snapshot = w.decided;
        if let Some(s) = p.snapshot.as_mut() {
            s.slot = w.decided;
        }
    }
}

fn store_seed_mixed(seed: u64) -> Result<Exercise, String> {
    store_seed_with(seed, write_until_dead_mixed)
}

#[test]
fn peer_and_folded_snapshots_mixed_with_gradual_ones_survive_power_loss() {
    let ex = sweep(300, store_seed_mixed);
    assert!(ex.snapshots > 0 && ex.power_losses > 0, "{ex:?}");
}

#[test]
fn the_mixed_store_run_catches_unsynced_snapshot_data() {
    let found = first_failing(StorageBug::SnapshotDataNotSynced, 100, store_seed_mixed);
    assert!(found.is_some(), "not caught");
}

/// The cluster run with snapshots written a few bytes per turn, so one is
/// pending across many turns while the node serves, announces and installs.
fn cluster_seed_gradual(seed: u64) -> Result<Exercise, String> {
    cluster_seed_with(seed, Some(1 + (seed % 7) as usize))
}

#[test]
fn a_cluster_with_pending_snapshots_survives_power_loss() {
    let ex = sweep(60, cluster_seed_gradual);
    assert!(ex.power_losses > 0 && ex.snapshots > 0, "{ex:?}");
}

// ---------------------------------------------------------------------------
// The sync pipeline in deterministic schedules (found by review): a replica
// handled exactly as `Driver::process_ready` / `on_synced` handle it.

struct Mini {
    disk: FaultDisk,
    node: Node,
    store: DurableStore,
    waits: SyncWaits,
    job: Option<SyncJob>,
    applied: Vec<(Slot, Entry)>,
}

impl Mini {
    fn new(id: u64, members: &[Member]) -> Mini {
        let disk = FaultDisk::new();
        let store = DurableStore::create_on(Arc::new(disk.clone()), &dir(), &identity_of(id))
            .expect("create");
        let node = Node::bootstrap(config(id, 7), members).expect("node");
        Mini {
            disk,
            node,
            store,
            waits: SyncWaits::default(),
            job: None,
            applied: Vec::new(),
        }
    }

    /// `Driver::on_peer_message`.
    fn deliver(&mut self, from: NodeId, msg: Message) {
        if let Some(msg) = self.waits.admit(&self.store, from, msg) {
            self.node.step(from, msg);
        }
    }

    /// `Driver::process_ready` (no snapshot turns); returns what was sent.
    fn turn(&mut self) -> Vec<paxos_core::Outgoing> {
        let mut sent = Vec::new();
        let mut ready = self.node.take_ready();
        assert!(ready.persist.snapshot.is_none() && ready.restore.is_none());
        let (early, late) = split_before_sync(
            std::mem::take(&mut ready.messages),
            &self.store,
            &ready.persist,
        );
        sent.extend(early);
        let floor = announced_floor(&late);
        self.store.stage(&ready.persist, floor).expect("staged");
        sent.extend(self.start_job());
        let applied_early = may_apply_before_sync(&ready);
        if applied_early {
            self.applied.extend(ready.committed.iter().cloned());
        }
        let released = self.waits.hold(&self.store, late);
        sent.extend(self.released(released));
        if !applied_early {
            if !ready.committed.is_empty() || own_vote_decided(&ready) {
                sent.extend(self.finish_job());
                sent.extend(self.start_job());
                sent.extend(self.finish_job());
            }
            self.applied.extend(ready.committed.iter().cloned());
        }
        sent.extend(self.start_job());
        sent
    }

    /// Steps the votes `released` lets go; returns its messages.
    fn released(&mut self, released: Released) -> Vec<paxos_core::Outgoing> {
        for (from, msg) in released.votes {
            self.node.step(from, msg);
        }
        released.messages
    }

    /// `Driver::start_sync_job`.
    fn start_job(&mut self) -> Vec<paxos_core::Outgoing> {
        if self.job.is_none() && self.store.sync_pending() {
            self.job = self.store.take_sync_job().expect("job");
        }
        let released = self.waits.release_durable(&self.store);
        self.released(released)
    }

    /// The job finishing (`Driver::on_synced` / `finish_sync_job`).
    fn finish_job(&mut self) -> Vec<paxos_core::Outgoing> {
        let Some(job) = self.job.take() else {
            return Vec::new();
        };
        let done = job.run().expect("synced");
        let released = self.waits.finished(&mut self.store, done);
        self.released(released)
    }

    /// Every sync done now.
    fn sync_all(&mut self) -> Vec<paxos_core::Outgoing> {
        let mut sent = self.finish_job();
        sent.extend(self.start_job());
        sent.extend(self.finish_job());
        sent
    }

    /// Whether `slot` holds `entry` on this replica's disk after a power loss now.
    fn durable(&self, slot: Slot, entry: &Entry) -> bool {
        let fork = self.disk.fork();
        fork.power_loss(0, PowerLoss::SyncedOnly);
        let (_, rec, _) = restart(&fork, &dir(), self.node.id().0)
            .expect("recovery")
            .expect("identity");
        holds(&rec, slot, entry)
    }
}

/// Runs turns with every sync finishing at once and every message delivered,
/// until nothing moves.
fn settle(ms: &mut [Mini]) {
    for _ in 0..50 {
        let mut wire = Vec::new();
        for m in ms.iter_mut() {
            let from = m.node.id();
            let mut out = m.turn();
            out.extend(m.sync_all());
            wire.extend(out.into_iter().map(|o| (from, o)));
        }
        if wire.is_empty() {
            return;
        }
        for (from, o) in wire {
            ms[(o.to.0 - 1) as usize].deliver(from, o.msg);
        }
    }
}

/// Invariant 1 across a view that shrinks to this leader alone: a slot its
/// own vote decides in a turn (above a slot of the old view still waiting
/// for a vote) is applied in the later turn that fills the gap — a vote
/// released by the sync of an earlier turn — while its own sync runs.
#[test]
fn a_slot_decided_alone_above_a_gap_is_synced_before_it_is_applied() {
    let members = [member(1), member(2)];
    let mut ms = vec![Mini::new(1, &members), Mini::new(2, &members)];
    for _ in 0..200 {
        if ms[0].node.is_leader() {
            break;
        }
        ms[0].node.tick();
        settle(&mut ms);
    }
    assert!(ms[0].node.is_leader());
    // Node 2 is removed: node 1 alone from slot r + window.
    ms[0]
        .node
        .propose_reconfig(paxos_core::Reconfig::Remove(NodeId(2)))
        .expect("leader");
    let accepts = ms[0].turn();
    ms[0].sync_all();
    let mut answers = Vec::new();
    for o in accepts {
        ms[1].deliver(NodeId(1), o.msg);
    }
    answers.extend(ms[1].turn());
    answers.extend(ms[1].sync_all());
    for o in answers {
        ms[0].deliver(NodeId(2), o.msg);
    }
    // T0: the view change is decided and applied; the old view's last slots
    // are padded (they need node 2's vote); the sync of T0 stays out.
    let pads = ms[0].turn();
    assert!(ms[0].job.is_some(), "T0's sync is out");
    let views = ms[0].node.views().expect("views").clone();
    let r = ms[0].node.decided();
    assert_eq!(
        views.latest().members.len(),
        1,
        "the view change is applied"
    );
    // Node 2 votes for the pads; its answer arrives while T0's sync runs.
    let mut answers = Vec::new();
    for o in pads {
        ms[1].deliver(NodeId(1), o.msg);
    }
    answers.extend(ms[1].turn());
    answers.extend(ms[1].sync_all());
    assert!(!answers.is_empty());
    for o in answers {
        ms[0].deliver(NodeId(2), o.msg);
    }
    // T1: a client's command lands in the first slot of the view of one,
    // decided by node 1's own vote in this turn, but not applied (gap).
    let command = Entry::Commands(vec![Command(b"the answered write".to_vec())]);
    let Entry::Commands(cmds) = &command else {
        unreachable!()
    };
    ms[0].node.propose(cmds[0].clone()).expect("leader");
    let applied_before = ms[0].applied.len();
    ms[0].turn();
    assert_eq!(
        ms[0].applied.len(),
        applied_before,
        "not applied yet: a gap below"
    );
    let _ = r;
    // T0's sync finishes: node 2's votes are let go, the gap is decided, the
    // next sync (T1's) starts, and the next turn runs.
    ms[0].finish_job();
    ms[0].start_job();
    ms[0].turn();
    let slot = ms[0]
        .applied
        .iter()
        .find(|(_, e)| *e == command)
        .map(|(s, _)| *s)
        .expect("the command was applied (its caller answered)");
    assert_eq!(
        views.at(slot).members.len(),
        1,
        "slot {slot} is in the view of one"
    );
    assert!(
        ms[0].durable(slot, &command),
        "slot {slot} was applied (its caller answered) while its only vote, node 1's, \
         is not on disk: a power loss now loses an answered write"
    );
}

/// Invariant 3: a turn that needs a sync only because it announces a
/// decision the job out carries appends nothing; when that job finishes,
/// `SyncPipeline::start` finds nothing to append and `take_sync_job` marks
/// the turn durable without anything letting its held messages go. The next
/// turn's messages leave at once, before them, and they stay held until
/// some later job finishes (`hold`'s debug_assert fires in a debug build).
#[test]
fn a_turn_needing_a_sync_that_appends_nothing_lets_its_messages_go_in_order() {
    let (_disk, mut store) = new_fault_store();
    let mut waits = SyncWaits::default();
    let hb = |commit: Slot| paxos_core::Outgoing {
        to: NodeId(2),
        msg: Message::Heartbeat(Heartbeat {
            ballot: ballot(1),
            commit,
            round: 0,
        }),
    };
    // Turn 1 learns a decision (held back); turn 2 accepts (its job out
    // carries the decision).
    let decided = Persist {
        decided: vec![(1, decided_value(1))],
        ..Persist::default()
    };
    assert!(!store.stage(&decided, 0).expect("staged"));
    let accepted = Persist {
        accepted: vec![AcceptedEntry {
            slot: 2,
            ballot: ballot(1),
            entry: decided_value(2),
        }],
        ..Persist::default()
    };
    assert!(store.stage(&accepted, 0).expect("staged"));
    let job = store.take_sync_job().expect("appended").expect("a job");
    // Turn 3: a heartbeat announcing slot 1, nothing to write.
    assert!(store.stage(&Persist::default(), 1).expect("staged"));
    let mut sent = waits.hold(&store, vec![hb(1)]).messages;
    // The job finishes (`Driver::on_synced`), then `start_sync_job`.
    let released = waits.finished(&mut store, job.run().expect("synced"));
    sent.extend(released.messages);
    assert!(store.sync_pending(), "turn 3 still waits");
    assert!(store.take_sync_job().expect("no error").is_none());
    // Turn 4: nothing to write, a heartbeat announcing nothing new.
    assert!(!store.stage(&Persist::default(), 0).expect("staged"));
    sent.extend(waits.hold(&store, vec![hb(0)]).messages);
    let commits: Vec<Slot> = sent
        .iter()
        .map(|o| match &o.msg {
            Message::Heartbeat(h) => h.commit,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        commits,
        vec![1, 0],
        "turn 3's message must leave, before turn 4's; it is still held"
    );
}

/// A follower's vote waits for the turn in which this replica accepted the
/// slots it acknowledges, and for nothing later: a vote for a slot whose
/// acceptance is on disk counts at once though newer turns wait for their
/// sync; a vote naming a slot of a turn not yet synced waits for that turn
/// (the latest of its slots'), so no decision counts an acceptance a power
/// loss can take back.
#[test]
fn a_vote_waits_for_the_sync_of_the_turn_that_accepted_its_slots() {
    let (_disk, mut store) = new_fault_store();
    let mut waits = SyncWaits::default();
    let accept = |slots: &[Slot]| Persist {
        accepted: slots
            .iter()
            .map(|slot| AcceptedEntry {
                slot: *slot,
                ballot: ballot(1),
                entry: decided_value(*slot),
            })
            .collect(),
        ..Persist::default()
    };
    let vote = |slots: &[Slot]| {
        Message::Accepted(Accepted {
            ballot: ballot(1),
            ok: true,
            slots: slots.to_vec(),
            decided: 0,
        })
    };
    let votes_of = |released: Released| -> Vec<Vec<Slot>> {
        released
            .votes
            .into_iter()
            .map(|(_, msg)| match msg {
                Message::Accepted(a) => a.slots,
                _ => unreachable!(),
            })
            .collect()
    };
    // Turn 1 accepts slot 1 and is synced; turn 2 accepts slot 2 (its job
    // out), turn 3 accepts slots 3 and 4 (staged behind it).
    assert!(store.stage(&accept(&[1]), 0).expect("staged"));
    let job = store.take_sync_job().expect("appended").expect("a job");
    assert!(votes_of(waits.finished(&mut store, job.run().expect("synced"))).is_empty());
    assert!(store.stage(&accept(&[2]), 0).expect("staged"));
    let job = store.take_sync_job().expect("appended").expect("a job");
    assert!(store.stage(&accept(&[3, 4]), 0).expect("staged"));
    assert!(
        waits.admit(&store, NodeId(2), vote(&[1])).is_some(),
        "slot 1's acceptance is on disk: its vote counts at once"
    );
    for slots in [&[2][..], &[1, 3], &[2, 4]] {
        assert!(
            waits.admit(&store, NodeId(2), vote(slots)).is_none(),
            "a vote for {slots:?} counted before this replica's acceptance is on disk"
        );
    }
    assert!(
        waits
            .admit(
                &store,
                NodeId(2),
                Message::Heartbeat(Heartbeat {
                    ballot: ballot(1),
                    commit: 0,
                    round: 0,
                })
            )
            .is_some(),
        "only votes wait"
    );
    // Turn 2's sync lets its vote go, not those naming turn 3's slots.
    let released = waits.finished(&mut store, job.run().expect("synced"));
    assert_eq!(votes_of(released), vec![vec![2]]);
    let job = store.take_sync_job().expect("appended").expect("a job");
    let released = waits.finished(&mut store, job.run().expect("synced"));
    assert_eq!(
        votes_of(released),
        vec![vec![1, 3], vec![2, 4]],
        "in arrival order"
    );
}

/// Five replicas: a decision needs three acceptances, so a vote can complete
/// a quorum with the leader's own in more ways (found by review to be
/// worth a run of its own).
#[test]
fn five_replicas_lose_no_acknowledged_write_at_power_losses() {
    let ex = sweep(30, |seed| cluster_run(Cluster::new(seed, 5)?, None));
    assert!(ex.power_losses > 0, "{ex:?}");
}
