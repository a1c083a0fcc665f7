//! Seeded simulation of paxos-core under faults.
//!
//! * `SIM_SEEDS=N` — seeds per sweep (default 200; `scripts/test.sh` runs 500,
//!   a soak is e.g. `SIM_SEEDS=100000`).
//! * `SEED=S [SIM_NODES=n] [SIM_VIEW_CHANGES=1] [SIM_BUG=quorum-of-one]` with the
//!   `replay` test re-runs one seed with a trace.

use paxos_core::InjectedBug;
use paxos_sim::{Failure, SimConfig, run};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn seeds() -> u64 {
    env_u64("SIM_SEEDS").unwrap_or(200)
}

fn first_seed() -> u64 {
    env_u64("SIM_FIRST_SEED").unwrap_or(0)
}

fn replay_hint(f: &Failure, cfg: &SimConfig) -> String {
    format!(
        "seed {} failed: {}\nreplay: SEED={} SIM_NODES={} SIM_VIEW_CHANGES={} cargo test -p paxos-sim --release --test simulation replay -- --nocapture",
        f.seed,
        f.violation,
        f.seed,
        cfg.nodes,
        u8::from(cfg.view_changes),
    )
}

/// Runs `count` seeds, spread over the machine's cores; panics on the first failure.
fn sweep(cfg: &SimConfig, count: u64) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let start = first_seed();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    let mut totals = (0u64, 0u64, 0u64);
                    for seed in (start + t..start + count).step_by(threads as usize) {
                        match run(seed, cfg) {
                            Ok(r) => {
                                totals.0 += r.ops_completed;
                                totals.1 += r.faults;
                                totals.2 += r.slots_decided;
                            }
                            Err(f) => {
                                failed.push(replay_hint(&f, cfg));
                                break;
                            }
                        }
                    }
                    (failed, totals)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut ops = 0;
        let mut faults = 0;
        let mut slots = 0;
        for h in handles {
            let (failed, (o, f, s)) = h.join().expect("sweep thread");
            all.extend(failed);
            ops += o;
            faults += f;
            slots += s;
        }
        println!(
            "{count} seeds x {} nodes (view changes: {}): {ops} client ops completed, {slots} slots decided, {faults} faults injected",
            cfg.nodes, cfg.view_changes
        );
        all
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn three_nodes_keep_agreement_linearizability_and_durability_under_faults() {
    sweep(&SimConfig::standard(3), seeds());
}

#[test]
fn five_nodes_keep_agreement_linearizability_and_durability_under_faults() {
    sweep(&SimConfig::standard(5), seeds() / 2);
}

#[test]
fn view_changes_and_new_incarnations_under_load_keep_every_property() {
    let mut cfg = SimConfig::standard(3);
    cfg.view_changes = true;
    sweep(&cfg, seeds() / 2);
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let cfg = SimConfig {
        trace: true,
        ..SimConfig::standard(3)
    };
    let a = run(17, &cfg).expect("seed 17 passes");
    let b = run(17, &cfg).expect("seed 17 passes");
    assert_eq!(a.ops_completed, b.ops_completed);
    assert_eq!(a.slots_decided, b.slots_decided);
    assert_eq!(a.net.sent, b.net.sent);
    assert_eq!(a.recovery_ticks, b.recovery_ticks);
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
        bug: std::env::var("SIM_BUG").ok().map(|b| parse_bug(&b)),
        aggressive: std::env::var("SIM_BUG").is_ok(),
        trace: true,
        ..SimConfig::standard(3)
    };
    match run(seed, &cfg) {
        Ok(r) => println!("seed {seed} passed: {r:?}"),
        Err(f) => {
            for line in &f.trace {
                println!("{line}");
            }
            panic!("{}", replay_hint(&f, &cfg));
        }
    }
}

fn parse_bug(name: &str) -> InjectedBug {
    match name {
        "lowest-ballot" => InjectedBug::LowestBallotRecovery,
        "quorum-of-one" => InjectedBug::QuorumOfOne,
        "read-without-quorum" => InjectedBug::ReadWithoutQuorum,
        other => panic!("unknown SIM_BUG {other}"),
    }
}

/// Runs seeds with a deliberately broken protocol until one fails; returns how
/// many seeds it took.
fn seeds_to_catch(bug: InjectedBug, max_seeds: u64, nodes: usize) -> Option<u64> {
    let cfg = SimConfig {
        bug: Some(bug),
        aggressive: true,
        ..SimConfig::standard(nodes)
    };
    for seed in 0..max_seeds {
        if let Err(f) = run(seed, &cfg) {
            // Only a safety violation counts: a crash or a stall would mean the
            // bug broke something else than what the checkers are there for.
            assert!(
                f.violation.is_safety(),
                "injected {bug:?} produced a non-safety failure: {}",
                replay_hint(&f, &cfg)
            );
            println!("{bug:?} caught by seed {seed}: {}", f.violation);
            return Some(seed + 1);
        }
    }
    None
}

#[test]
fn the_checkers_catch_a_quorum_of_one() {
    let caught = seeds_to_catch(InjectedBug::QuorumOfOne, 50, 3);
    println!("quorum of one caught after {caught:?} seeds");
    assert!(
        caught.is_some(),
        "a quorum of one went unnoticed for 50 seeds"
    );
}

#[test]
fn the_checkers_catch_lowest_ballot_recovery() {
    let caught = seeds_to_catch(InjectedBug::LowestBallotRecovery, 200, 3);
    println!("lowest-ballot recovery caught after {caught:?} seeds");
    assert!(
        caught.is_some(),
        "lowest-ballot recovery went unnoticed for 200 seeds"
    );
}

#[test]
fn the_checkers_catch_reads_without_a_quorum_round() {
    let caught = seeds_to_catch(InjectedBug::ReadWithoutQuorum, 100, 3);
    println!("reads without quorum caught after {caught:?} seeds");
    assert!(caught.is_some(), "stale reads went unnoticed for 100 seeds");
}

/// Measures how many seeds each injected bug survives (run by hand:
/// `cargo test -p paxos-sim --release --test simulation catch_rates -- --ignored --nocapture`).
#[test]
#[ignore]
fn catch_rates() {
    for bug in [
        InjectedBug::QuorumOfOne,
        InjectedBug::LowestBallotRecovery,
        InjectedBug::ReadWithoutQuorum,
    ] {
        let cfg = SimConfig {
            bug: Some(bug),
            aggressive: true,
            ..SimConfig::standard(3)
        };
        let total = seeds();
        let caught = (0..total).filter(|s| run(*s, &cfg).is_err()).count();
        println!("{bug:?}: caught by {caught} of {total} seeds");
    }
}
