//! Deterministic simulation of `paxos-core`.
//!
//! [`run`] drives a cluster of [`paxos_core::Node`]s, simulated clients and a
//! faulty simulated network from one seed, then checks agreement, identical
//! execution, linearizability of the client history, durability of every
//! acknowledged write, and recovery once faults stop. A failing seed replays
//! exactly: `SEED=1234 cargo test -p paxos-sim --release --test simulation replay -- --nocapture`.
//!
//! | module | what it holds |
//! |---|---|
//! | `sim_config` | what a run is asked to do; the seed draws the rest |
//! | `harness` | the run loop: the chaos phase, then the liveness phase, tick by tick |
//! | `sim_node` | one simulated process: its node, disk, state machine, armed faults |
//! | `traffic` | packets leaving the network: messages stepped in, client requests, replies |
//! | `ready_handling` | a node's `Ready`, one function per step: persist, send, restore, execute, read |
//! | `crash_restart` | crashes that keep the disk, restarts from it, healing every fault |
//! | `params` | what a seed draws before the run: fault rates, core tuning |
//! | `network` | loss, duplication, delay with a heavy tail, cut links (one way, drop or hold) |
//! | `faults` | the chaos phase's fault injector |
//! | `membership` | members added, removed and wiped, several changes at a time |
//! | `invariants` | agreement and the Paxos invariants it rests on, checked online |
//! | `checks` | end-of-run checks (linearizability, no lost or phantom write) |
//! | `exercise` | what a run exercised, summed per sweep |
//! | `outcome` | violations, failures and reports |
//! | `sweep` | many seeds on every core, and the injected bugs by name |

#![deny(missing_docs)]

mod checks;
pub mod client;
mod crash_restart;
pub mod exercise;
mod faults;
pub mod harness;
pub mod history;
mod invariants;
pub mod linearizability;
mod membership;
pub mod network;
pub mod outcome;
mod params;
mod ready_handling;
mod sim_config;
mod sim_node;
pub mod state_machine;
mod sweep;
mod traffic;

pub use exercise::Exercised;
pub use harness::{SimConfig, run};
pub use outcome::{Failure, Report, Violation};
pub use sweep::{SweepResult, bug_by_name, replay_hint, sweep};
