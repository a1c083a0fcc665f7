//! What a run went through: schedules the network and the fault injector
//! produced, and protocol paths the nodes took. A sweep sums these and fails if
//! a kind it promises never happened, so a fault model that silently stops
//! producing a schedule (a refactor, a changed probability) is noticed instead
//! of trusted.

use paxos_core::Counters;
use std::fmt;

/// Counts of one run, or of a sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exercised {
    /// Leaders elected.
    pub elections: u64,
    /// Elections won by a node whose view history was behind the most advanced
    /// node's (it missed view changes).
    pub stale_view_elections: u64,
    /// Effective view changes applied at some node.
    pub view_changes: u64,
    /// Moments when two or more membership changes were pending at once.
    pub concurrent_reconfigs: u64,
    /// Leaders elected while a membership change was pending.
    pub elections_during_reconfig: u64,
    /// Snapshots installed from a peer.
    pub snapshot_installs: u64,
    /// Promises counted by a node already leading.
    pub late_promises: u64,
    /// Of those, promises reporting something for slots not yet proposed.
    pub informative_late_promises: u64,
    /// Decisions a leader learned from a peer's catch-up reply.
    pub catchups_while_leading: u64,
    /// Of those, decisions for slots the leader had proposed in.
    pub catchups_over_proposals: u64,
    /// Leaders that learned from a peer that a higher ballot chose in a slot
    /// they had proposed in.
    pub superseded_leaderships: u64,
    /// Packets that took the heavy-tail delay.
    pub long_delays: u64,
    /// Packets held at a cut link and delivered after it healed.
    pub held_packets: u64,
    /// Group partitions between nodes.
    pub partitions: u64,
    /// One-way cuts between nodes.
    pub one_way_cuts: u64,
    /// Cuts between clients and nodes.
    pub client_cuts: u64,
    /// Nodes crashed after persisting a `Ready` and before sending it.
    pub mid_ready_crashes: u64,
    /// Nodes that lost their disk and came back as a new incarnation.
    pub new_incarnations: u64,
    /// Promises that arrived in several parts and were counted once all
    /// had arrived.
    pub promises_assembled: u64,
}

impl Exercised {
    /// Adds a node's protocol counters.
    pub fn add_node(&mut self, c: &Counters) {
        self.elections += c.elections_won;
        self.view_changes += c.view_changes;
        self.snapshot_installs += c.snapshots_installed;
        self.late_promises += c.late_promises;
        self.informative_late_promises += c.late_promises_informative;
        self.catchups_while_leading += c.decisions_learned_while_leading;
        self.catchups_over_proposals += c.decisions_learned_over_proposals;
        self.superseded_leaderships += c.superseded_leaderships;
        self.promises_assembled += c.promises_assembled;
    }

    /// Adds another run's counts.
    pub fn add(&mut self, o: &Exercised) {
        for (mine, theirs) in self.fields_mut().into_iter().zip(o.fields()) {
            *mine += theirs;
        }
    }

    fn fields(&self) -> [u64; 19] {
        [
            self.elections,
            self.stale_view_elections,
            self.view_changes,
            self.concurrent_reconfigs,
            self.elections_during_reconfig,
            self.snapshot_installs,
            self.late_promises,
            self.informative_late_promises,
            self.catchups_while_leading,
            self.catchups_over_proposals,
            self.superseded_leaderships,
            self.long_delays,
            self.held_packets,
            self.partitions,
            self.one_way_cuts,
            self.client_cuts,
            self.mid_ready_crashes,
            self.new_incarnations,
            self.promises_assembled,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 19] {
        [
            &mut self.elections,
            &mut self.stale_view_elections,
            &mut self.view_changes,
            &mut self.concurrent_reconfigs,
            &mut self.elections_during_reconfig,
            &mut self.snapshot_installs,
            &mut self.late_promises,
            &mut self.informative_late_promises,
            &mut self.catchups_while_leading,
            &mut self.catchups_over_proposals,
            &mut self.superseded_leaderships,
            &mut self.long_delays,
            &mut self.held_packets,
            &mut self.partitions,
            &mut self.one_way_cuts,
            &mut self.client_cuts,
            &mut self.mid_ready_crashes,
            &mut self.new_incarnations,
            &mut self.promises_assembled,
        ]
    }

    const NAMES: [&'static str; 19] = [
        "elections",
        "stale_view_elections",
        "view_changes",
        "concurrent_reconfigs",
        "elections_during_reconfig",
        "snapshot_installs",
        "late_promises",
        "informative_late_promises",
        "catchups_while_leading",
        "catchups_over_proposals",
        "superseded_leaderships",
        "long_delays",
        "held_packets",
        "partitions",
        "one_way_cuts",
        "client_cuts",
        "mid_ready_crashes",
        "new_incarnations",
        "promises_assembled",
    ];

    /// The kinds among `promised` (names as printed) that never happened.
    pub fn missing(&self, promised: &[&str]) -> Vec<String> {
        promised
            .iter()
            .filter(|name| {
                Self::NAMES
                    .iter()
                    .zip(self.fields())
                    .find(|(n, _)| *n == *name)
                    .is_none_or(|(_, count)| count == 0)
            })
            .map(|name| (*name).to_string())
            .collect()
    }
}

impl fmt::Display for Exercised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Self::NAMES
            .iter()
            .zip(self.fields())
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        write!(f, "{}", parts.join(" "))
    }
}
