//! Membership changes during the chaos phase: members added, removed, and
//! wiped (a lost disk: the node comes back as a new incarnation and its old id
//! is removed), up to three changes pending at once, decided while nodes are
//! partitioned, paused or down — so nodes miss view changes, and some of them
//! campaign later with an old view.
//!
//! The limits keep the run live, not safe: safety must hold whatever happens.
//! At most three members may be added beyond the founders' count, at least
//! three stay, and a disk is only wiped while every member of the newest view
//! is up and caught up, one wipe at a time — as an operator replaces one failed
//! disk at a time. Two wipes in a row before the first replacement caught up
//! could destroy the only copies of a decided value, which no protocol
//! survives.

use crate::harness::Sim;
use crate::sim_node::SimNode;
use paxos_core::{Member, Node, NodeId, Reconfig, View};
use rand::Rng;

/// Membership changes pending at once, at most.
const PENDING_CHANGES_MAX: usize = 3;

impl Sim {
    /// Keeps proposing pending membership changes at the leader until the view
    /// in force shows them.
    pub(crate) fn drive_reconfigs(&mut self) {
        if self.pending_reconfigs.is_empty() || !self.now.is_multiple_of(10) {
            return;
        }
        if self.pending_reconfigs.len() >= 2 {
            self.exercised.concurrent_reconfigs += 1;
        }
        let Some(leader) = self.leader() else {
            return;
        };
        // A change is done once it governs the next slot at the most advanced
        // node, not merely decided: until then the old view's quorums count.
        let Some(latest) = self.most_advanced_view() else {
            return;
        };
        let mut retired = Vec::new();
        self.pending_reconfigs.retain(|change| match change {
            Reconfig::Add(m) => !latest.contains(m.id),
            Reconfig::Remove(id) => {
                let done = !latest.contains(*id);
                if done {
                    retired.push(*id);
                }
                !done
            }
        });
        let Some(node) = self.nodes.get_mut(&leader).and_then(|n| n.node.as_mut()) else {
            return;
        };
        for change in &self.pending_reconfigs {
            let _ = node.propose_reconfig(change.clone());
        }
        for id in retired {
            if let Some(n) = self.nodes.get_mut(&id) {
                n.retired = true;
            }
            self.log(format!("{id:?} retired"));
        }
    }

    /// The view governing the next slot at the live node that decided most,
    /// among those that know a view (a node still joining knows none; when
    /// nothing was decided yet it must not hide the members' view).
    pub(crate) fn most_advanced_view(&self) -> Option<View> {
        self.nodes
            .values()
            .filter_map(|n| n.node.as_ref())
            .filter_map(|n| Some((n.decided(), n.view()?)))
            .max_by_key(|(decided, _)| *decided)
            .map(|(_, view)| view.clone())
    }

    pub(crate) fn change_membership(&mut self) {
        if self.pending_reconfigs.len() >= PENDING_CHANGES_MAX {
            return;
        }
        let Some(view) = self.most_advanced_view() else {
            return;
        };
        let pending_adds = self
            .pending_reconfigs
            .iter()
            .filter(|c| matches!(c, Reconfig::Add(_)))
            .count();
        let pending_removes: Vec<NodeId> = self
            .pending_reconfigs
            .iter()
            .filter_map(|c| match c {
                Reconfig::Remove(id) => Some(*id),
                Reconfig::Add(_) => None,
            })
            .collect();
        let members: Vec<NodeId> = view
            .members
            .keys()
            .filter(|id| self.nodes.get(id).is_some_and(|n| !n.wiped))
            .filter(|id| !pending_removes.contains(id))
            .copied()
            .collect();
        let roll = self.rng.random_range(0..3);
        if roll == 0 && members.len() + pending_adds < self.cfg.nodes + 3 {
            let id = self.add_node();
            self.log(format!("adding {id:?}"));
        } else if roll == 1 && members.len() > 3 {
            let id = members[self.rng.random_range(0..members.len())];
            self.pending_reconfigs.push(Reconfig::Remove(id));
            self.log(format!("removing {id:?}"));
        } else if roll == 2 && members.len() >= 3 && self.may_wipe(&view) {
            // Lose a node's disk: it comes back as a new incarnation.
            let old = members[self.rng.random_range(0..members.len())];
            if let Some(sn) = self.nodes.get_mut(&old) {
                if let Some(node) = sn.node.take() {
                    self.exercised.add_node(&node.status().counters);
                }
                sn.wiped = true;
                sn.disk = paxos_core::MemoryStorage::default();
            }
            self.restart_at.remove(&old);
            let new = self.add_node();
            self.pending_reconfigs.push(Reconfig::Remove(old));
            self.exercised.new_incarnations += 1;
            self.log(format!("{old:?} lost its disk; rejoins as {new:?}"));
        }
    }

    /// A disk may be wiped only while no wipe is pending and every member of
    /// the newest view is up and within a window of the most advanced node.
    fn may_wipe(&self, view: &View) -> bool {
        let wipe_pending = self.pending_reconfigs.iter().any(|c| match c {
            Reconfig::Remove(id) => self.nodes.get(id).is_some_and(|n| n.wiped),
            Reconfig::Add(_) => false,
        });
        if wipe_pending {
            return false;
        }
        let most = self
            .nodes
            .values()
            .filter_map(|n| n.node.as_ref())
            .map(|n| n.decided())
            .max()
            .unwrap_or(0);
        let window = self.core().window;
        view.members.keys().all(|id| {
            self.nodes
                .get(id)
                .and_then(|n| n.node.as_ref())
                .is_some_and(|n| n.views().is_some() && n.decided() + window >= most)
        })
    }

    pub(crate) fn add_node(&mut self) -> NodeId {
        let id = NodeId(self.next_node_id);
        self.next_node_id += 1;
        let config = self.node_config(id);
        let node = Node::join(config).expect("valid simulated config");
        self.nodes.insert(id, SimNode::new(node));
        self.pending_reconfigs.push(Reconfig::Add(Member {
            id,
            addr: format!("node-{}", id.0),
        }));
        id
    }
}
