//! A simulated network, as adversarial as an asynchronous network may be.
//!
//! Per packet: loss, duplication and a random delay (which also reorders).
//! Beyond that, the schedules that break consensus protocols in practice:
//!
//! * a **heavy tail**: a few packets, and in some runs many packets of some
//!   kinds (catch-up replies, prepares, promises…), are parked and arrive
//!   just after the next change of leader (or after up to `tail_max` ticks):
//!   late, after leadership has moved on, which is when a stale message hurts;
//! * **cut links**, one direction at a time: group partitions, one-way
//!   partitions, and partitions between clients and replicas. A cut either
//!   drops what crosses it or *holds* it and delivers it when the link comes
//!   back (a stalled TCP connection that flushes), and every link of a
//!   partition heals at its own time, so the connectivity in between is
//!   non-transitive.
//!
//! Deterministic: all randomness comes from the caller's seeded generator.

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

impl Payload {
    fn kind(&self) -> &'static str {
        match self {
            Payload::Paxos(m) => m.kind(),
            Payload::Request { .. } => "request",
            Payload::Reply { .. } => "reply",
        }
    }
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
#[derive(Clone, Debug)]
pub struct LinkFaults {
    /// Probability a packet is dropped.
    pub loss: f64,
    /// Probability a packet is delivered twice.
    pub duplicate: f64,
    /// Minimum delay in ticks.
    pub delay_min: u64,
    /// Maximum delay in ticks.
    pub delay_max: u64,
    /// Probability any packet takes the heavy tail.
    pub tail: f64,
    /// Probability per message kind (`Message::kind`) of taking the heavy
    /// tail, on top of `tail`.
    pub tail_by_kind: BTreeMap<&'static str, f64>,
    /// Longest heavy-tail delay in ticks.
    pub tail_max: u64,
    /// Parked packets released at a change of leader arrive within this many
    /// ticks of it.
    pub tail_release_ticks: u64,
}

impl LinkFaults {
    /// A healthy network (still delayed, so still reordering).
    pub fn healthy(delay_max: u64) -> Self {
        LinkFaults {
            loss: 0.0,
            duplicate: 0.0,
            delay_min: 1,
            delay_max,
            tail: 0.0,
            tail_by_kind: BTreeMap::new(),
            tail_max: 0,
            tail_release_ticks: 1,
        }
    }
}

/// What a cut link does to packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// Packets are lost.
    Drop,
    /// Packets wait and are delivered once the link is back.
    Hold,
}

#[derive(Clone, Copy, Debug)]
struct Cut {
    until: u64,
    mode: CutMode,
}

/// Counters of what the network did.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetStats {
    /// Packets handed to the network.
    pub sent: u64,
    /// Packets dropped by loss or a cut link.
    pub dropped: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Packets that took the heavy tail.
    pub delayed_long: u64,
    /// Packets held at a cut link and delivered after it healed.
    pub held: u64,
}

/// The network.
pub struct Network {
    pending: BTreeMap<(u64, u64), Packet>,
    /// Keys into `pending` of packets on the heavy tail, released early when
    /// leadership changes. They were past any cut before it formed: cuts do
    /// not stop them.
    parked: Vec<(u64, u64)>,
    /// Keys into `pending` of parked packets released, which still pass cuts.
    past_cuts: std::collections::BTreeSet<(u64, u64)>,
    /// Until the tick given, packets to this endpoint carrying decisions
    /// (catch-up replies, snapshot chunks) are parked until it leads (or the
    /// tick passes): its catch-up is slow.
    slow_catchup: BTreeMap<Endpoint, u64>,
    /// Keys into `pending` of packets parked by `slow_catchup`, by receiver.
    parked_for: Vec<((u64, u64), Endpoint)>,
    order: u64,
    /// Current fault rates.
    pub faults: LinkFaults,
    cuts: BTreeMap<(Endpoint, Endpoint), Cut>,
    /// What happened so far.
    pub stats: NetStats,
}

impl Network {
    /// A network with the given fault rates.
    pub fn new(faults: LinkFaults) -> Self {
        Network {
            pending: BTreeMap::new(),
            parked: Vec::new(),
            past_cuts: std::collections::BTreeSet::new(),
            slow_catchup: BTreeMap::new(),
            parked_for: Vec::new(),
            order: 0,
            faults,
            cuts: BTreeMap::new(),
            stats: NetStats::default(),
        }
    }

    /// Cuts the link `from → to` until `until` (one direction only). A link
    /// already cut for longer keeps its longer cut.
    pub fn cut(&mut self, from: Endpoint, to: Endpoint, until: u64, mode: CutMode) {
        let cut = self.cuts.entry((from, to)).or_insert(Cut { until, mode });
        if cut.until <= until {
            *cut = Cut { until, mode };
        }
    }

    /// Cuts every link between `a` and `b` in both directions; each of the
    /// links heals at its own time in `until ..= until + stagger`.
    pub fn partition(
        &mut self,
        rng: &mut ChaCha8Rng,
        a: &[Endpoint],
        b: &[Endpoint],
        until: u64,
        stagger: u64,
        mode: CutMode,
    ) {
        for x in a {
            for y in b {
                for (from, to) in [(*x, *y), (*y, *x)] {
                    let at = until + rng.random_range(0..=stagger);
                    self.cut(from, to, at, mode);
                }
            }
        }
    }

    /// Parks the decisions sent to `to` until the next change of leader (or
    /// `until`): it catches up only after an election.
    pub fn slow_catchup(&mut self, to: Endpoint, until: u64) {
        self.slow_catchup.insert(to, until);
    }

    /// Restores the link `from → to`.
    pub fn restore(&mut self, from: Endpoint, to: Endpoint) {
        self.cuts.remove(&(from, to));
    }

    /// Restores every link at once.
    pub fn heal(&mut self) {
        self.cuts.clear();
    }

    /// Restores the links whose cut has expired.
    pub fn expire(&mut self, now: u64) {
        self.cuts.retain(|_, c| c.until > now);
    }

    fn cut_on(&self, from: Endpoint, to: Endpoint) -> Option<Cut> {
        self.cuts.get(&(from, to)).copied()
    }

    fn schedule(&mut self, at: u64, packet: Packet) -> (u64, u64) {
        self.order += 1;
        let key = (at, self.order);
        self.pending.insert(key, packet);
        key
    }

    /// Delivers the parked packets soon, in random order: called when
    /// `leader` is elected, so what was sent under the old leader lands under
    /// the new one. Packets parked for a slow catch-up are released only when
    /// their receiver is the one elected.
    pub fn release_parked(&mut self, rng: &mut ChaCha8Rng, now: u64, leader: Endpoint) {
        let mut keys = std::mem::take(&mut self.parked);
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked_for)
            .into_iter()
            .partition(|(_, to)| *to == leader);
        self.parked_for = others;
        keys.extend(mine.into_iter().map(|(key, _)| key));
        for key in keys {
            if let Some(packet) = self.pending.remove(&key) {
                self.past_cuts.remove(&key);
                let at = now + rng.random_range(1..=self.faults.tail_release_ticks.max(1));
                let key = self.schedule(at, packet);
                self.past_cuts.insert(key);
            }
        }
    }

    /// Hands a packet to the network.
    pub fn send(&mut self, rng: &mut ChaCha8Rng, now: u64, packet: Packet) {
        self.stats.sent += 1;
        if rng.random_bool(self.faults.loss) {
            self.stats.dropped += 1;
            return;
        }
        if let Some(cut) = self.cut_on(packet.from, packet.to)
            && cut.mode == CutMode::Drop
        {
            self.stats.dropped += 1;
            return;
        }
        let copies = if rng.random_bool(self.faults.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        let slow_until = self.slow_catchup.get(&packet.to).copied().filter(|until| {
            now < *until && matches!(packet.payload.kind(), "catchup_reply" | "snapshot_chunk")
        });
        let slow = slow_until.is_some();
        let tail = if slow {
            1.0
        } else {
            self.faults.tail
                + self
                    .faults
                    .tail_by_kind
                    .get(packet.payload.kind())
                    .copied()
                    .unwrap_or(0.0)
        };
        for _ in 0..copies {
            if (slow || self.faults.tail_max > 0) && rng.random_bool(tail.min(1.0)) {
                self.stats.delayed_long += 1;
                let delay = match slow_until {
                    Some(until) => until - now,
                    None => rng.random_range(self.faults.delay_max..=self.faults.tail_max),
                };
                let key = self.schedule(now + delay, packet.clone());
                if slow {
                    self.parked_for.push((key, packet.to));
                } else {
                    self.parked.push(key);
                }
                self.past_cuts.insert(key);
            } else {
                let delay = rng.random_range(self.faults.delay_min..=self.faults.delay_max);
                self.schedule(now + delay, packet.clone());
            }
        }
    }

    /// Packets due at or before `now`, in delivery order. A packet that meets
    /// a cut link on arrival is dropped or held until the link is back.
    pub fn due(&mut self, rng: &mut ChaCha8Rng, now: u64) -> Vec<Packet> {
        let later = self.pending.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut self.pending, later);
        let mut out = Vec::with_capacity(due.len());
        for (key, p) in due {
            if self.past_cuts.remove(&key) {
                out.push(p);
                continue;
            }
            match self.cut_on(p.from, p.to) {
                None => out.push(p),
                Some(Cut {
                    mode: CutMode::Drop,
                    ..
                }) => self.stats.dropped += 1,
                Some(Cut {
                    until,
                    mode: CutMode::Hold,
                }) => {
                    // Flushed in no particular order when the link comes back.
                    self.stats.held += 1;
                    let at = until + rng.random_range(0..=4 * self.faults.delay_max);
                    self.schedule(at, p);
                }
            }
        }
        out
    }

    /// Puts a packet back to be delivered at `at` (its receiver is paused).
    pub fn hold_until(&mut self, at: u64, packet: Packet) {
        self.schedule(at, packet);
    }

    /// Packets still in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}
