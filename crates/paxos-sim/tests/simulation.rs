//! Seeded simulation of paxos-core under faults.
//!
//! * `SIM_SEEDS=N` — seeds per sweep (default 200; `scripts/test.sh` runs 500;
//!   a soak: `cargo run --release -p paxos-sim --example soak -- 100000 5`).
//! * `SEED=S [SIM_NODES=n] [SIM_VIEW_CHANGES=1] [SIM_BUG=bug-catchup-commit]`
//!   with the `replay` test re-runs one seed and prints its trace
//!   (`SIM_TRACE_MESSAGES_AFTER=T` adds every message from tick T on).
//!
//! Each sweep also checks that it exercised what it promises (elections,
//! late promises, snapshot installs, one-way cuts, …): a fault model that
//! stops producing a schedule fails the sweep instead of passing quietly.
//! And each injected bug must be caught by the default profile within a
//! stated number of seeds, by a safety checker, not by a crash.

use paxos_core::InjectedBug;
use paxos_sim::{SimConfig, Violation, bug_by_name, replay_hint, run, sweep};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn seeds() -> u64 {
    env_u64("SIM_SEEDS").unwrap_or(200)
}

fn first_seed() -> u64 {
    env_u64("SIM_FIRST_SEED").unwrap_or(0)
}

/// What every sweep must have exercised at least once.
const ALWAYS: &[&str] = &[
    "elections",
    "snapshot_installs",
    "late_promises",
    "catchups_while_leading",
    "long_delays",
    "held_packets",
    "partitions",
    "one_way_cuts",
    "client_cuts",
    "mid_ready_crashes",
    "promises_assembled",
];

/// What a sweep with view changes must also have exercised.
const WITH_VIEW_CHANGES: &[&str] = &[
    "view_changes",
    "concurrent_reconfigs",
    "elections_during_reconfig",
    "stale_view_elections",
    "informative_late_promises",
    "new_incarnations",
];

/// Runs `count` seeds on every core; fails on any failed seed, and if a kind
/// of schedule in `promised` never happened.
fn checked_sweep(cfg: &SimConfig, count: u64, promised: &[&str]) {
    let start = first_seed();
    let result = sweep(cfg, start..start + count, true);
    println!(
        "{count} seeds x {} nodes (view changes: {}): {} client ops completed, {} slots decided, {} faults injected\nexercised: {}",
        cfg.nodes,
        cfg.view_changes,
        result.ops_completed,
        result.slots_decided,
        result.faults,
        result.exercised
    );
    if let Some(f) = result.failures.first() {
        panic!("{}", replay_hint(f, cfg));
    }
    let missing = result.exercised.missing(promised);
    assert!(
        missing.is_empty(),
        "the sweep never exercised {missing:?}: the fault model stopped producing these schedules"
    );
}

#[test]
fn three_nodes_keep_agreement_linearizability_and_durability_under_faults() {
    checked_sweep(&SimConfig::standard(3), seeds(), ALWAYS);
}

#[test]
fn five_nodes_keep_agreement_linearizability_and_durability_under_faults() {
    checked_sweep(&SimConfig::standard(5), seeds() / 2, ALWAYS);
}

#[test]
fn view_changes_and_new_incarnations_under_load_keep_every_property() {
    let mut cfg = SimConfig::standard(3);
    cfg.view_changes = true;
    let promised: Vec<&str> = ALWAYS.iter().chain(WITH_VIEW_CHANGES).copied().collect();
    checked_sweep(&cfg, seeds() / 2, &promised);
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let cfg = SimConfig {
        trace: true,
        view_changes: true,
        ..SimConfig::standard(3)
    };
    let a = run(17, &cfg).expect("seed 17 passes");
    let b = run(17, &cfg).expect("seed 17 passes");
    assert_eq!(a.ops_completed, b.ops_completed);
    assert_eq!(a.slots_decided, b.slots_decided);
    assert_eq!(a.net.sent, b.net.sent);
    assert_eq!(a.recovery_ticks, b.recovery_ticks);
    assert_eq!(a.exercised, b.exercised);
    assert_eq!(a.trace, b.trace);
}

/// Re-runs one seed given by `SEED`, printing its trace.
#[test]
fn replay() {
    let Some(seed) = env_u64("SEED") else {
        return;
    };
    let cfg = SimConfig {
        nodes: env_u64("SIM_NODES").unwrap_or(3) as usize,
        view_changes: env_u64("SIM_VIEW_CHANGES").unwrap_or(0) == 1,
        bug: std::env::var("SIM_BUG")
            .ok()
            .map(|b| bug_by_name(&b).unwrap_or_else(|| panic!("unknown SIM_BUG {b}"))),
        aggressive: env_u64("SIM_AGGRESSIVE").unwrap_or(0) == 1,
        trace: true,
        ..SimConfig::standard(3)
    };
    match run(seed, &cfg) {
        Ok(r) => {
            for line in &r.trace {
                println!("{line}");
            }
            println!("seed {seed} passed: {}", r.exercised);
        }
        Err(f) => {
            for line in &f.trace {
                println!("{line}");
            }
            if let Violation::NotLinearizable(n) = &f.violation {
                let mut ops = n.ops.clone();
                ops.sort_by_key(|o| o.invoked);
                for op in ops {
                    println!("{op:?}");
                }
            }
            panic!("{}", replay_hint(&f, &cfg));
        }
    }
}

/// The default profile a CI sweep runs, with `bug` injected.
fn profile_with(bug: InjectedBug, nodes: usize, view_changes: bool) -> SimConfig {
    SimConfig {
        bug: Some(bug),
        view_changes,
        ..SimConfig::standard(nodes)
    }
}

/// Runs the default profile with a deliberately broken protocol until a seed
/// fails; asserts it fails within `max_seeds`, and through a safety checker
/// (agreement and the invariants it rests on, linearizability, durability) —
/// a crash or a stall would mean the bug broke something other than what
/// the checkers are there for. Returns the violation.
fn caught_within(cfg: &SimConfig, max_seeds: u64) -> Violation {
    let result = sweep(cfg, 0..max_seeds, true);
    let Some(f) = result.failures.first() else {
        panic!(
            "{:?} went unnoticed for {max_seeds} seeds of the default profile ({} nodes, view changes: {})",
            cfg.bug, cfg.nodes, cfg.view_changes
        );
    };
    assert!(
        f.violation.is_safety(),
        "injected {:?} produced a non-safety failure: {}",
        cfg.bug,
        replay_hint(f, cfg)
    );
    println!(
        "{:?} caught by seed {} (after {} seeds run): {}",
        cfg.bug, f.seed, result.seeds_run, f.violation
    );
    f.violation.clone()
}

#[test]
fn the_checkers_catch_a_quorum_of_one() {
    caught_within(&profile_with(InjectedBug::QuorumOfOne, 3, false), 5);
}

#[test]
fn the_checkers_catch_lowest_ballot_recovery() {
    let v = caught_within(
        &profile_with(InjectedBug::LowestBallotRecovery, 5, false),
        1_000,
    );
    println!("{v}");
}

#[test]
fn the_checkers_catch_reads_without_a_quorum_round() {
    caught_within(&profile_with(InjectedBug::ReadWithoutQuorum, 3, false), 300);
}

/// Reverts the fix of a leader that learns by catch-up that a higher ballot
/// chose in a slot it proposed in (it keeps leading and advertising its
/// commit point). The commit-point checker fires when such a leader's commit
/// covers the slot; a follower that accepted its value would decide it.
#[test]
fn the_checkers_catch_a_leader_advertising_decisions_it_learned_by_catchup() {
    caught_within(&profile_with(InjectedBug::CatchupCommit, 5, false), 8_000);
}

/// Reverts the fix of late promises (merged by first value, decided floor
/// ignored). A leader elected in an old view that completes a new view's
/// quorum with late promises then proposes over a value the new view chose;
/// the P2b checker fires on the proposal.
#[test]
fn the_checkers_catch_late_promises_merged_by_first_value() {
    caught_within(
        &profile_with(InjectedBug::LatePromiseFirstValue, 3, true),
        2_000,
    );
}

/// Measures how many seeds each injected bug survives (run by hand:
/// `SIM_SEEDS=10000 cargo test -p paxos-sim --release --test simulation catch_rates -- --ignored --nocapture`).
#[test]
#[ignore]
fn catch_rates() {
    let profiles = [(3, false), (5, false), (3, true)];
    for bug in [
        InjectedBug::QuorumOfOne,
        InjectedBug::LowestBallotRecovery,
        InjectedBug::ReadWithoutQuorum,
        InjectedBug::CatchupCommit,
        InjectedBug::LatePromiseFirstValue,
        InjectedBug::AckDecidedWithoutCompare,
        InjectedBug::PromiseCountedAtFirstPart,
    ] {
        for (nodes, view_changes) in profiles {
            let cfg = profile_with(bug, nodes, view_changes);
            let total = seeds();
            let result = sweep(&cfg, 0..total, false);
            let first = result.failures.first().map(|f| f.seed);
            println!(
                "{bug:?} ({nodes} nodes, view changes {view_changes}): caught by {} of {total} seeds, first {first:?}",
                result.failures.len()
            );
        }
    }
}

/// Counts a promise that arrives in parts as soon as its first part arrives
/// (see `paxos_core`'s `promise_parts`). A candidate then adopts with a
/// quorum whose report on some slot is still on its way, and may propose
/// over a value chosen there; the P2b or agreement checker fires. Runs
/// with a small `max_message_bytes` split promises for this to happen (seed
/// 8 of the default profile catches it).
#[test]
fn the_checkers_catch_promises_counted_at_their_first_part() {
    caught_within(
        &profile_with(InjectedBug::PromiseCountedAtFirstPart, 3, false),
        100,
    );
}
