//! Deterministic simulation of the real replica.
//!
//! Three real replicas (`concoord_replica::run_on`: driver, exactly-once
//! table, sessions and keep-alives, blocking calls, read-index reads, the
//! durable store) and real clients (`concoord_client::Client`, with its
//! retries) run as hosts of a `turmoil` simulation: simulated TCP, simulated
//! time, and one power-losing [`FaultDisk`](concoord_replica::storage::fault_disk::FaultDisk)
//! per replica. One seed draws every fault — crashes with power loss (only
//! what was synced survives), restarts, partitions, held links, message
//! delay — and, with `concoord_transport::determinism`, every random choice
//! of the replicas and clients, so a seed replays bit for bit (the run's
//! [`Report::trace_hash`] is the same every time).
//!
//! [`run`] checks, and names in each violation:
//!
//! * **linearizable**: the counter history, reads included, has a legal
//!   sequential order (`paxos_sim::linearizability`);
//! * **no acknowledged write lost**: after the faults stop, a read of every
//!   counter returns at least every acknowledged increment;
//! * **lock exclusion / fencing**: lock holds confirmed by a successful
//!   release never overlap, and their fencing tokens grow; no token is
//!   granted twice;
//! * **nothing stuck**: once faults stop, every call — blocked ones
//!   included — is answered or cancelled and every client finishes;
//! * **replicas keep running**: no replica stops on its own (a restart that
//!   refuses its data directory, a failed write).
//!
//! A run is a warm-up (4 s: the replicas form the instance, no faults), a
//! chaos phase (12 s by default), then a calm phase (up to 30 s) in which
//! the clients finish; everything is healed when the chaos ends.
//!
//! ```no_run
//! use concoord_replica_sim::{RunConfig, Scenario, run};
//!
//! let report = run(&RunConfig::new(7, Scenario::Lock));
//! assert!(report.violations.is_empty(), "{:?}", report.violations);
//! // The same seed, the same run.
//! assert_eq!(report.trace_hash, run(&RunConfig::new(7, Scenario::Lock)).trace_hash);
//! ```

mod checks;
mod clients;
mod faults;
pub mod objects;
mod run;

pub use run::{Report, RunConfig, Scenario, run};

use concoord_replica::bugs::ReplicaBug;

/// The injected bug called `name` (`amnesia`, `missing-fsync`, `dropped-wake-up`).
pub fn bug_by_name(name: &str) -> Option<ReplicaBug> {
    match name {
        "amnesia" => Some(ReplicaBug::Amnesia),
        "missing-fsync" => Some(ReplicaBug::MissingFsync),
        "dropped-wake-up" => Some(ReplicaBug::DroppedWakeUp),
        _ => None,
    }
}
