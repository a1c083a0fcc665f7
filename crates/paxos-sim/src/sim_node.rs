//! One simulated process: the `paxos_core::Node` (absent while crashed), the
//! disk that survives a crash, the state machine it executes into, and the
//! faults armed against it.

use crate::state_machine::CounterMachine;
use paxos_core::{MemoryStorage, Node};
use std::collections::{BTreeMap, BTreeSet};

/// A node of the simulated cluster and what the harness keeps beside it.
pub(crate) struct SimNode {
    pub(crate) node: Option<Node>,
    pub(crate) disk: MemoryStorage,
    pub(crate) machine: CounterMachine,
    /// Increments this node proposed and must answer when executed.
    pub(crate) waiting: BTreeSet<(u64, u64)>,
    /// Reads by read id: (client, seq, key).
    pub(crate) reads: BTreeMap<u64, (u64, u64, u8)>,
    pub(crate) next_read: u64,
    /// Lost its disk for good (replaced by a new incarnation).
    pub(crate) wiped: bool,
    /// Removed from the view.
    pub(crate) retired: bool,
    /// Paused (a long GC or SIGSTOP): no ticks, inbound packets held, until then.
    pub(crate) paused_until: u64,
    /// Probability this node's clock skips a tick (a slow clock).
    pub(crate) slow_clock: f64,
    /// Crash after persisting the next `Ready` that has messages to send,
    /// before sending any of them.
    pub(crate) crash_mid_ready: bool,
    /// For the trace: superseded leaderships already logged.
    pub(crate) superseded_seen: u64,
    /// Armed to stall as it starts proposing in a new view.
    pub(crate) stall: Option<crate::faults::NewViewStall>,
}

impl SimNode {
    pub(crate) fn new(node: Node) -> Self {
        SimNode {
            node: Some(node),
            disk: MemoryStorage::default(),
            machine: CounterMachine::default(),
            waiting: BTreeSet::new(),
            reads: BTreeMap::new(),
            next_read: 0,
            wiped: false,
            retired: false,
            paused_until: 0,
            slow_clock: 0.0,
            crash_mid_ready: false,
            superseded_seen: 0,
            stall: None,
        }
    }
}
