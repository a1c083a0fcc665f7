//! Runs many seeds on every core and reports failures and what was exercised.
//!
//! ```text
//! cargo run --release -p paxos-sim --example soak -- [SEEDS] [PROFILE] [BUG]
//! ```
//! `PROFILE` is `3`, `5` or `3v` (three founders with view changes); `BUG` an
//! injected bug (`bug-catchup-commit`, …, see `paxos_sim::bug_by_name`) to
//! measure how often the default fault profile catches it.

use paxos_sim::{SimConfig, bug_by_name, replay_hint, sweep};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let profile = args.get(2).map_or("3", String::as_str);
    let bug = args.get(3).map(|name| {
        bug_by_name(name).unwrap_or_else(|| {
            eprintln!("unknown bug {name}");
            std::process::exit(2)
        })
    });
    let mut cfg = SimConfig::standard(if profile.starts_with('5') { 5 } else { 3 });
    cfg.view_changes = profile.ends_with('v');
    cfg.bug = bug;
    let started = Instant::now();
    let result = sweep(&cfg, 0..seeds, false);
    for f in &result.failures {
        println!("{}", replay_hint(f, &cfg));
    }
    println!("exercised: {}", result.exercised);
    println!(
        "{seeds} seeds, profile {profile}, bug {bug:?}: {} failed, {:.1} s",
        result.failures.len(),
        started.elapsed().as_secs_f64()
    );
}
