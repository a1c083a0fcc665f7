//! Many seeds on every core: the CI sweeps, the soak, and the measurement of
//! how fast an injected bug is caught all run through [`sweep`].

use crate::exercise::Exercised;
use crate::harness::{SimConfig, run};
use crate::outcome::Failure;
use paxos_core::InjectedBug;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What a sweep found.
#[derive(Debug, Default)]
pub struct SweepResult {
    /// Seeds run.
    pub seeds_run: u64,
    /// Failed seeds, lowest seed first.
    pub failures: Vec<Failure>,
    /// What the passing seeds exercised, summed.
    pub exercised: Exercised,
    /// Client operations completed in passing seeds.
    pub ops_completed: u64,
    /// Slots decided in passing seeds.
    pub slots_decided: u64,
    /// Faults injected in passing seeds.
    pub faults: u64,
}

/// Runs `seeds` with `cfg` on every core. With `stop_at_first`, stops
/// handing out seeds once one fails (seeds already running finish), and
/// reports only the lowest failing seed among those run.
pub fn sweep(cfg: &SimConfig, seeds: Range<u64>, stop_at_first: bool) -> SweepResult {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicU64::new(seeds.start);
    let stop = AtomicBool::new(false);
    let result = Mutex::new(SweepResult::default());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        return;
                    }
                    let outcome = run(seed, cfg);
                    let Ok(mut r) = result.lock() else {
                        return;
                    };
                    r.seeds_run += 1;
                    match outcome {
                        Ok(report) => {
                            r.exercised.add(&report.exercised);
                            r.ops_completed += report.ops_completed;
                            r.slots_decided += report.slots_decided;
                            r.faults += report.faults;
                        }
                        Err(failure) => {
                            r.failures.push(failure);
                            if stop_at_first {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
            });
        }
    });
    let mut r = result.into_inner().unwrap_or_default();
    r.failures.sort_by_key(|f| f.seed);
    if stop_at_first {
        r.failures.truncate(1);
    }
    r
}

/// The injected bugs by the names tests, the soak and `SIM_BUG` use.
pub fn bug_by_name(name: &str) -> Option<InjectedBug> {
    Some(match name {
        "lowest-ballot" => InjectedBug::LowestBallotRecovery,
        "quorum-of-one" => InjectedBug::QuorumOfOne,
        "read-without-quorum" => InjectedBug::ReadWithoutQuorum,
        "bug-catchup-commit" => InjectedBug::CatchupCommit,
        "bug-late-promise-first-value" => InjectedBug::LatePromiseFirstValue,
        "bug-ack-decided-without-compare" => InjectedBug::AckDecidedWithoutCompare,
        "bug-promise-counted-at-first-part" => InjectedBug::PromiseCountedAtFirstPart,
        _ => return None,
    })
}

/// A command that replays one failed seed with its trace.
pub fn replay_hint(f: &Failure, cfg: &SimConfig) -> String {
    let bug = cfg
        .bug
        .map(|b| format!(" SIM_BUG={}", bug_name(b)))
        .unwrap_or_default();
    format!(
        "seed {} failed: {}\nreplay: SEED={} SIM_NODES={} SIM_VIEW_CHANGES={}{bug} cargo test -p paxos-sim --release --test simulation replay -- --nocapture",
        f.seed,
        f.violation,
        f.seed,
        cfg.nodes,
        u8::from(cfg.view_changes),
    )
}

fn bug_name(bug: InjectedBug) -> &'static str {
    match bug {
        InjectedBug::LowestBallotRecovery => "lowest-ballot",
        InjectedBug::QuorumOfOne => "quorum-of-one",
        InjectedBug::ReadWithoutQuorum => "read-without-quorum",
        InjectedBug::CatchupCommit => "bug-catchup-commit",
        InjectedBug::LatePromiseFirstValue => "bug-late-promise-first-value",
        InjectedBug::AckDecidedWithoutCompare => "bug-ack-decided-without-compare",
        InjectedBug::PromiseCountedAtFirstPart => "bug-promise-counted-at-first-part",
    }
}
