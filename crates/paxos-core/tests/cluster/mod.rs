//! A hand-driven in-memory cluster for role tests: every message goes through
//! `deliver`, where a test can cut nodes off.

#![allow(dead_code)]

use paxos_core::{Command, Config, Entry, Member, MemoryStorage, Message, Node, NodeId, Ready};
use std::collections::{BTreeMap, BTreeSet};

pub struct Cluster {
    pub nodes: BTreeMap<NodeId, Node>,
    pub stores: BTreeMap<NodeId, MemoryStorage>,
    /// Commands executed per node, in order.
    pub executed: BTreeMap<NodeId, Vec<Vec<u8>>>,
    pub granted_reads: BTreeMap<NodeId, Vec<u64>>,
    /// Messages waiting to be delivered: (from, to, msg).
    pub wire: Vec<(NodeId, NodeId, Message)>,
    /// Nodes cut off from everyone.
    pub isolated: BTreeSet<NodeId>,
    /// Every message ever sent.
    pub sent: Vec<(NodeId, NodeId, Message)>,
}

pub fn member(i: u64) -> Member {
    Member {
        id: NodeId(i),
        addr: format!("127.0.0.1:{}", 14000 + i),
    }
}

pub fn config(i: u64) -> Config {
    let mut c = Config::new(NodeId(i));
    c.heartbeat_ticks = 2;
    c.election_ticks = 10;
    c
}

pub fn cmd(s: &str) -> Command {
    Command(s.as_bytes().to_vec())
}

impl Cluster {
    pub fn new(n: u64) -> Cluster {
        Cluster::with_config(n, config)
    }

    pub fn with_config(n: u64, make: impl Fn(u64) -> Config) -> Cluster {
        let members: Vec<Member> = (1..=n).map(member).collect();
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            stores: BTreeMap::new(),
            executed: BTreeMap::new(),
            granted_reads: BTreeMap::new(),
            wire: Vec::new(),
            isolated: BTreeSet::new(),
            sent: Vec::new(),
        };
        for m in &members {
            let node = Node::bootstrap(make(m.id.0), &members).expect("valid config");
            c.add(node);
        }
        c
    }

    pub fn add(&mut self, node: Node) {
        let id = node.id();
        self.nodes.insert(id, node);
        self.stores.entry(id).or_default();
        self.executed.entry(id).or_default();
    }

    pub fn node(&mut self, i: u64) -> &mut Node {
        self.nodes.get_mut(&NodeId(i)).expect("node exists")
    }

    /// Drains one node's Ready like a real runtime.
    pub fn drain(&mut self, id: NodeId) -> Ready {
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ready::default();
        };
        let ready = node.take_ready();
        self.stores.entry(id).or_default().write(&ready.persist);
        let executed = self.executed.entry(id).or_default();
        if ready.restore.is_some() {
            executed.clear();
            executed.push(b"<snapshot>".to_vec());
        }
        for (_, entry) in &ready.committed {
            if let Entry::Commands(cmds) = entry {
                executed.extend(cmds.iter().map(|c| c.0.clone()));
            }
        }
        self.granted_reads
            .entry(id)
            .or_default()
            .extend(ready.reads.iter().copied());
        for out in &ready.messages {
            self.sent.push((id, out.to, out.msg.clone()));
            self.wire.push((id, out.to, out.msg.clone()));
        }
        ready
    }

    pub fn drain_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.drain(id);
        }
    }

    /// Delivers every message on the wire (and what they cause) until quiet,
    /// dropping messages to or from isolated nodes.
    pub fn deliver(&mut self) {
        for _ in 0..1_000 {
            self.drain_all();
            if self.wire.is_empty() {
                return;
            }
            let wire = std::mem::take(&mut self.wire);
            for (from, to, msg) in wire {
                if self.isolated.contains(&from) || self.isolated.contains(&to) {
                    continue;
                }
                if let Some(node) = self.nodes.get_mut(&to) {
                    node.step(from, msg);
                }
            }
        }
        panic!("messages never quiesced");
    }

    pub fn tick(&mut self) {
        for node in self.nodes.values_mut() {
            node.tick();
        }
        self.deliver();
    }

    /// Ticks until `f` holds; panics after `max` ticks.
    pub fn run_until(&mut self, max: u32, mut f: impl FnMut(&mut Cluster) -> bool) {
        for _ in 0..max {
            if f(self) {
                return;
            }
            self.tick();
        }
        assert!(f(self), "condition not reached in {max} ticks");
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.is_leader())
            .map(|n| n.id())
            .collect()
    }

    /// Runs until exactly one node leads, and returns it.
    pub fn elect(&mut self) -> NodeId {
        self.run_until(200, |c| c.leaders().len() == 1);
        self.leaders()[0]
    }

    pub fn executed(&self, id: NodeId) -> &[Vec<u8>] {
        self.executed.get(&id).map_or(&[], |v| v.as_slice())
    }
}
