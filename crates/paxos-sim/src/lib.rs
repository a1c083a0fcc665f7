//! Deterministic simulation of `paxos-core`.
//!
//! [`run`] drives a cluster of [`paxos_core::Node`]s, simulated clients and a
//! faulty simulated network from one seed, then checks agreement, identical
//! execution, linearizability of the client history, durability of every
//! acknowledged write, and recovery once faults stop. A failing seed replays
//! exactly: `SEED=1234 cargo test -p paxos-sim --release --test simulation replay -- --nocapture`.

#![deny(missing_docs)]

pub mod client;
pub mod harness;
pub mod history;
pub mod linearizability;
pub mod network;
pub mod state_machine;

pub use harness::{Failure, Report, SimConfig, Violation, run};
