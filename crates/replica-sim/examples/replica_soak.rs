//! Soak: runs many seeds of both scenarios and prints a summary.
//!
//! `cargo run --release -p concoord-replica-sim --example replica_soak -- FIRST_SEED COUNT`
//!
//! With `--features bug-injection` and `BUG=amnesia|missing-fsync|dropped-wake-up`
//! it runs with that bug on and counts the seeds that catch it.

use concoord_replica_sim::{RunConfig, Scenario, run};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let first: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let bug = match std::env::var("BUG").ok().as_deref() {
        None => None,
        Some(name) => match concoord_replica_sim::bug_by_name(name) {
            Some(bug) => Some(bug),
            None => {
                eprintln!("unknown BUG {name}: amnesia, missing-fsync or dropped-wake-up");
                std::process::exit(2);
            }
        },
    };
    let started = Instant::now();
    let mut failed = 0;
    let (mut calls, mut crashes, mut cuts, mut sim_secs) = (0, 0, 0, 0);
    for seed in first..first + count {
        for scenario in [Scenario::Counter, Scenario::Lock] {
            let mut cfg = RunConfig::new(seed, scenario);
            cfg.bug = bug;
            let r = run(&cfg);
            calls += r.calls;
            crashes += r.crashes;
            cuts += r.partitions;
            sim_secs += r.sim_time.as_secs();
            if std::env::var_os("VERBOSE").is_some() {
                println!(
                    "seed {seed} {scenario:?}: {} calls, {} answered, {} crashes, {} cuts, {:?} simulated, trace {:016x}",
                    r.calls, r.answered, r.crashes, r.partitions, r.sim_time, r.trace_hash
                );
            }
            if !r.violations.is_empty() {
                failed += 1;
                println!("seed {seed} {scenario:?}: {:?}", r.violations);
            }
        }
    }
    println!(
        "{} runs ({count} seeds x 2 scenarios) from seed {first}: {failed} failed; {calls} calls, {crashes} crashes with power loss, {cuts} partitions, {sim_secs} s simulated in {:.0} s",
        count * 2,
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
