//! What a run reports: the property that failed, or what it did.

use crate::exercise::Exercised;
use crate::linearizability::NotLinearizable;
use crate::network::NetStats;
use paxos_core::{Ballot, NodeId, Slot};
use std::fmt;

/// A safety or liveness property that failed.
#[derive(Clone, Debug)]
pub enum Violation {
    /// Two different values decided in one slot.
    Agreement {
        /// The slot.
        slot: Slot,
        /// The node that decided the second value.
        node: NodeId,
    },
    /// A node decided a value that no quorum of the slot's view accepted
    /// under any one ballot.
    DecidedUnchosen {
        /// The slot.
        slot: Slot,
        /// The node.
        node: NodeId,
    },
    /// A value was proposed under a ballot higher than the one a different
    /// value was already chosen under (Paxos' P2b).
    ChosenValueOverwritten {
        /// The slot.
        slot: Slot,
        /// The ballot of the offending proposal.
        ballot: Ballot,
    },
    /// A leader's commit point covered a slot where its own proposal is not
    /// the decided value: a follower that accepted it would decide it.
    UnsafeCommitPoint {
        /// The leader.
        leader: NodeId,
        /// The slot.
        slot: Slot,
    },
    /// A node executed a different sequence than another.
    Divergence {
        /// First slot where the state differs.
        slot: Slot,
        /// The node.
        node: NodeId,
    },
    /// The client history has no legal sequential order.
    NotLinearizable(NotLinearizable),
    /// An acknowledged increment is missing from a member after the heal.
    LostWrite {
        /// Client.
        client: u64,
        /// Sequence number.
        seq: u64,
        /// Member missing it.
        node: NodeId,
    },
    /// A member applied an increment no client issued, or a counter disagrees
    /// with the increments applied.
    PhantomWrite {
        /// The member.
        node: NodeId,
        /// What is wrong.
        detail: String,
    },
    /// The cluster did not recover after faults stopped.
    Liveness(String),
    /// The core panicked or refused its own persisted state.
    Crash(String),
}

impl Violation {
    /// Whether this is a safety violation (as opposed to a stall or a crash):
    /// agreement, one of the invariants agreement rests on, identical
    /// execution, linearizability, durability.
    pub fn is_safety(&self) -> bool {
        !matches!(self, Violation::Liveness(_) | Violation::Crash(_))
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement { slot, node } => {
                write!(
                    f,
                    "agreement: node {node:?} decided a second value in slot {slot}"
                )
            }
            Violation::DecidedUnchosen { slot, node } => write!(
                f,
                "agreement: node {node:?} decided a value in slot {slot} that no quorum accepted"
            ),
            Violation::ChosenValueOverwritten { slot, ballot } => write!(
                f,
                "agreement: ballot {ballot:?} proposed a different value in slot {slot} than the one already chosen there"
            ),
            Violation::UnsafeCommitPoint { leader, slot } => write!(
                f,
                "agreement: leader {leader:?} advertised slot {slot} as committed, but its proposal there is not the decided value"
            ),
            Violation::Divergence { slot, node } => {
                write!(
                    f,
                    "divergence: node {node:?} executed a different sequence at slot {slot}"
                )
            }
            Violation::NotLinearizable(n) => write!(
                f,
                "linearizability: counter {} has no legal order ({} operations)",
                n.key,
                n.ops.len()
            ),
            Violation::LostWrite { client, seq, node } => write!(
                f,
                "durability: acknowledged increment (client {client}, seq {seq}) missing on node {node:?}"
            ),
            Violation::PhantomWrite { node, detail } => {
                write!(f, "phantom write on node {node:?}: {detail}")
            }
            Violation::Liveness(d) => write!(f, "liveness: {d}"),
            Violation::Crash(d) => write!(f, "crash: {d}"),
        }
    }
}

/// A failed run.
#[derive(Debug)]
pub struct Failure {
    /// The seed that fails.
    pub seed: u64,
    /// What failed.
    pub violation: Violation,
    /// The recorded trace (empty unless tracing).
    pub trace: Vec<String>,
}

/// What a successful run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Operations completed.
    pub ops_completed: u64,
    /// Operations never answered (unknown outcome).
    pub ops_unknown: u64,
    /// Slots decided.
    pub slots_decided: Slot,
    /// Network counters.
    pub net: NetStats,
    /// Faults injected.
    pub faults: u64,
    /// Final view epoch.
    pub view_epoch: u64,
    /// Ticks the liveness phase needed.
    pub recovery_ticks: u64,
    /// The schedules and protocol paths the run went through.
    pub exercised: Exercised,
    /// The recorded trace (empty unless tracing).
    pub trace: Vec<String>,
}
