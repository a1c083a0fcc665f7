//! A simulated network: per-packet loss, duplication and random delay (which
//! also reorders), and partitions between groups of nodes. Deterministic: all
//! randomness comes from the caller's seeded generator.

use crate::history::OpKind;
use paxos_core::{Message, NodeId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Who sends or receives a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    /// A Paxos node.
    Node(NodeId),
    /// A simulated client.
    Client(u64),
}

/// A node's answer to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The operation's result.
    Value(i64),
    /// Not the leader; try this one (or any, if `None`).
    Redirect(Option<NodeId>),
    /// The leader is overloaded; retry later.
    Busy,
}

/// What travels.
#[derive(Clone, Debug)]
pub enum Payload {
    /// Between nodes.
    Paxos(Message),
    /// Client to node.
    Request {
        /// Client sequence number.
        seq: u64,
        /// The operation.
        kind: OpKind,
    },
    /// Node to client.
    Reply {
        /// Sequence number answered.
        seq: u64,
        /// The answer.
        reply: Reply,
    },
}

/// A packet in flight.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Sender.
    pub from: Endpoint,
    /// Receiver.
    pub to: Endpoint,
    /// Content.
    pub payload: Payload,
}

/// Fault rates of the network.
#[derive(Clone, Copy, Debug)]
pub struct LinkFaults {
    /// Probability a packet is dropped.
    pub loss: f64,
    /// Probability a packet is delivered twice.
    pub duplicate: f64,
    /// Minimum delay in ticks.
    pub delay_min: u64,
    /// Maximum delay in ticks.
    pub delay_max: u64,
}

impl LinkFaults {
    /// A healthy network (still delayed, so still reordering).
    pub fn healthy(delay_max: u64) -> Self {
        LinkFaults {
            loss: 0.0,
            duplicate: 0.0,
            delay_min: 1,
            delay_max,
        }
    }
}

/// Counters of what the network did.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetStats {
    /// Packets handed to the network.
    pub sent: u64,
    /// Packets dropped by loss or partition.
    pub dropped: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
}

/// The network.
pub struct Network {
    pending: BTreeMap<(u64, u64), Packet>,
    order: u64,
    /// Current fault rates.
    pub faults: LinkFaults,
    /// Node → partition group; nodes in different groups cannot talk.
    partition: BTreeMap<NodeId, u8>,
    /// What happened so far.
    pub stats: NetStats,
}

impl Network {
    /// A network with the given fault rates.
    pub fn new(faults: LinkFaults) -> Self {
        Network {
            pending: BTreeMap::new(),
            order: 0,
            faults,
            partition: BTreeMap::new(),
            stats: NetStats::default(),
        }
    }

    /// Splits nodes into groups (nodes not listed are in group 0).
    pub fn partition(&mut self, groups: BTreeMap<NodeId, u8>) {
        self.partition = groups;
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.partition.clear();
    }

    /// Whether a partition is in place.
    pub fn is_partitioned(&self) -> bool {
        !self.partition.is_empty()
    }

    fn connected(&self, a: Endpoint, b: Endpoint) -> bool {
        match (a, b) {
            (Endpoint::Node(x), Endpoint::Node(y)) => {
                self.partition.get(&x).copied().unwrap_or(0)
                    == self.partition.get(&y).copied().unwrap_or(0)
            }
            _ => true,
        }
    }

    /// Hands a packet to the network.
    pub fn send(&mut self, rng: &mut ChaCha8Rng, now: u64, packet: Packet) {
        self.stats.sent += 1;
        if !self.connected(packet.from, packet.to) || rng.random_bool(self.faults.loss) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if rng.random_bool(self.faults.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = rng.random_range(self.faults.delay_min..=self.faults.delay_max);
            self.order += 1;
            self.pending
                .insert((now + delay, self.order), packet.clone());
        }
    }

    /// Packets due at or before `now`, in delivery order. Packets crossing a
    /// partition that formed while they were in flight are dropped.
    pub fn due(&mut self, now: u64) -> Vec<Packet> {
        let later = self.pending.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut self.pending, later);
        let mut out = Vec::with_capacity(due.len());
        for (_, p) in due {
            if self.connected(p.from, p.to) {
                out.push(p);
            } else {
                self.stats.dropped += 1;
            }
        }
        out
    }

    /// Puts a packet back to be delivered at `at` (its receiver is paused).
    pub fn hold_until(&mut self, at: u64, packet: Packet) {
        self.order += 1;
        self.pending.insert((at, self.order), packet);
    }

    /// Packets still in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}
