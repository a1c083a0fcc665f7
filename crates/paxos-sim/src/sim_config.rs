//! What a simulation run is asked to do. Everything else a run needs (cluster
//! tuning, fault rates, the fault schedule) the seed draws (see `params`).

use paxos_core::InjectedBug;

/// What to simulate; the seed decides the rest.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Founding members.
    pub nodes: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Ticks of the chaos phase.
    pub chaos_ticks: u64,
    /// Ticks the liveness phase may take at most.
    pub liveness_ticks: u64,
    /// Operations every client must complete after faults stop.
    pub ops_after_heal: u64,
    /// Whether to add, remove and replace members during the run.
    pub view_changes: bool,
    /// A protocol bug to inject.
    pub bug: Option<InjectedBug>,
    /// Record a trace of events (printed on failure).
    pub trace: bool,
    /// Faults several times as often (for bug hunting).
    pub aggressive: bool,
}

impl SimConfig {
    /// The standard run for `nodes` founders: the profile CI sweeps.
    pub fn standard(nodes: usize) -> Self {
        SimConfig {
            nodes,
            clients: 6,
            chaos_ticks: 3_000,
            liveness_ticks: 6_000,
            ops_after_heal: 3,
            view_changes: false,
            bug: None,
            trace: false,
            aggressive: false,
        }
    }
}
