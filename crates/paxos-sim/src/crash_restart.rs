//! Crashes and restarts: a crashed node loses its volatile state and keeps
//! its disk; it restarts from what it persisted, under the same id. Healing
//! ends every fault at once, before the liveness phase.

use crate::harness::Sim;
use crate::outcome::Violation;
use crate::state_machine::CounterMachine;
use paxos_core::{Node, NodeId};
use rand::Rng;

impl Sim {
    pub(crate) fn scheduled_recoveries(&mut self) {
        let due: Vec<NodeId> = self
            .restart_at
            .iter()
            .filter(|(_, t)| **t <= self.now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.restart_at.remove(&id);
            self.restart(id);
        }
    }

    /// Drops a node's volatile state; its disk survives, and it restarts later.
    pub(crate) fn crash(&mut self, id: NodeId) {
        let Some(sn) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(node) = sn.node.take() else {
            return;
        };
        self.exercised.add_node(&node.status().counters);
        sn.machine = CounterMachine::default();
        sn.waiting.clear();
        sn.reads.clear();
        sn.crash_mid_ready = false;
        let delay = self.rng.random_range(20..300);
        self.restart_at.insert(id, self.now + delay);
        self.log(format!("{id:?} crashed, restart in {delay}"));
    }

    pub(crate) fn restart(&mut self, id: NodeId) {
        let config = self.node_config(id);
        let Some(sn) = self.nodes.get_mut(&id) else {
            return;
        };
        if sn.node.is_some() || sn.wiped {
            return;
        }
        match Node::restart(config, sn.disk.recovered()) {
            Ok(node) => sn.node = Some(node),
            Err(e) => self.fail(Violation::Crash(format!("{id:?} cannot restart: {e}"))),
        }
        self.log(format!("{id:?} restarted"));
    }

    pub(crate) fn restart_all_down(&mut self) {
        let down: Vec<NodeId> = self.restart_at.keys().copied().collect();
        for id in down {
            self.restart_at.remove(&id);
            self.restart(id);
        }
    }

    pub(crate) fn heal_everything(&mut self) {
        self.net.heal();
        self.net.faults = crate::network::LinkFaults::healthy(self.params.faults.delay_max);
        self.restart_all_down();
        for sn in self.nodes.values_mut() {
            sn.paused_until = sn.paused_until.min(self.now);
            sn.crash_mid_ready = false;
            sn.stall = None;
        }
        self.scheduled.clear();
        self.log("healed: faults stop".into());
    }
}
