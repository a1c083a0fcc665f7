//! The real replica and client under seeded faults (see the crate docs).
//!
//! `REPLICA_SIM_SEEDS` seeds per scenario (default 24). A failing seed
//! replays exactly: `REPLICA_SIM_SEED=N cargo test --release -p
//! concoord-replica-sim --test replica_sim replay -- --nocapture`.

use concoord_replica_sim::{Report, RunConfig, Scenario, run};

fn seeds() -> u64 {
    std::env::var("REPLICA_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

fn failure(r: &Report, scenario: Scenario) -> String {
    format!(
        "seed {} ({scenario:?}) failed: {:#?}\nreplay: REPLICA_SIM_SEED={} cargo test --release -p concoord-replica-sim --test replica_sim replay -- --nocapture",
        r.seed, r.violations, r.seed
    )
}

/// Runs every seed; fails on the first violation; checks that faults and
/// calls really happened.
fn sweep(scenario: Scenario) {
    sweep_of(scenario, 3, seeds());
}

/// [`sweep`] over `seeds` seeds of an instance of `replicas` replicas.
fn sweep_of(scenario: Scenario, replicas: usize, seeds: u64) {
    let (mut crashes, mut answered) = (0, 0);
    for seed in 1..=seeds {
        let mut cfg = RunConfig::new(seed, scenario);
        cfg.replicas = replicas;
        let r = run(&cfg);
        assert!(r.violations.is_empty(), "{}", failure(&r, scenario));
        crashes += r.crashes;
        answered += r.answered;
    }
    assert!(crashes >= seeds as u32, "too few crashes: {crashes}");
    assert!(
        answered >= 50 * seeds as usize,
        "too few calls answered: {answered}"
    );
}

/// Counter clients: the history, reads included, is linearizable, and every
/// increment acknowledged before a final read survives the crashes with
/// power loss; every call is answered once faults stop.
#[test]
fn counter_history_is_linearizable_and_no_acknowledged_write_is_lost() {
    sweep(Scenario::Counter);
}

/// Lock clients: confirmed holds never overlap, fencing tokens grow and are
/// never granted twice, and every blocked acquire is woken once faults stop.
#[test]
fn lock_holds_are_exclusive_with_growing_fencing_tokens_and_no_call_stays_blocked() {
    sweep(Scenario::Lock);
}

/// A lone replica, crashed with power loss again and again: every
/// increment it acknowledged survives (no peer's vote covers for its own,
/// so each must have been on its disk before the reply left).
#[test]
fn a_lone_replica_loses_no_acknowledged_write_at_a_power_loss() {
    sweep_of(Scenario::Counter, 1, seeds() / 3);
}

/// A seed replays bit for bit (same trace hash), for both scenarios; with
/// `REPLICA_SIM_SEED`, prints that seed's trace and report.
#[test]
fn replay() {
    let seed = std::env::var("REPLICA_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    for scenario in [Scenario::Counter, Scenario::Lock] {
        let first = run(&RunConfig::new(seed, scenario));
        let second = run(&RunConfig::new(seed, scenario));
        if std::env::var_os("REPLICA_SIM_SEED").is_some() {
            for line in &first.trace {
                println!("{line}");
            }
            println!(
                "seed {seed} {scenario:?}: {} calls, {} answered, {} crashes, {} cuts, trace {:016x}, violations {:#?}",
                first.calls,
                first.answered,
                first.crashes,
                first.partitions,
                first.trace_hash,
                first.violations
            );
        }
        assert_eq!(
            first.trace, second.trace,
            "seed {seed} ({scenario:?}) did not replay"
        );
        assert_eq!(first.trace_hash, second.trace_hash);
        assert!(first.calls > 0);
    }
}
