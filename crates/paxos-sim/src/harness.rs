//! The simulation loop. Every parameter of a run — cluster size, network fault
//! rates, core tuning, the fault schedule — derives from one seed, so a failing
//! seed replays bit for bit.
//!
//! A run has two phases, as in openraft's chaos tests:
//! 1. **chaos**: clients run while the network loses, duplicates, delays and
//!    reorders packets, partitions form and heal, nodes crash and restart from
//!    their persisted state, the leader is killed, and (optionally) members are
//!    added, removed, or wiped and replaced by a new incarnation;
//! 2. **liveness**: faults stop; every client must finish more operations and
//!    every member must converge on the same log.
//!
//! Safety is checked online at every decision and execution (agreement, same
//! execution sequence) and at the end (linearizability of the client history,
//! every acknowledged write present on every member, nothing applied that no
//! client asked for).

use crate::client::{KEYS, SimClient};
use crate::history::{History, OpKind};
use crate::linearizability::{self, NotLinearizable};
use crate::network::{Endpoint, LinkFaults, NetStats, Network, Packet, Payload, Reply};
use crate::state_machine::{CounterMachine, IncrementCmd, entry_hash};
use paxos_core::{
    Config, InjectedBug, Member, MemoryStorage, Node, NodeId, ProposeError, Ready, Reconfig, Slot,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

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
    /// Faults several times as often and lossier links (for bug hunting).
    pub aggressive: bool,
}

impl SimConfig {
    /// The standard run for `nodes` founders.
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
    /// Whether this is a safety violation (as opposed to a stall or a crash).
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
}

/// Core tuning drawn from the seed (same `window` for the whole cluster).
#[derive(Clone, Copy, Debug)]
struct CoreParams {
    window: u64,
    inflight: u64,
    batch: usize,
    soft_max: usize,
    catchup: usize,
    election: u32,
    snapshot_chunk: usize,
    retain: u64,
}

struct SimNode {
    node: Option<Node>,
    disk: MemoryStorage,
    machine: CounterMachine,
    /// Increments this node proposed and must answer when executed.
    waiting: BTreeSet<(u64, u64)>,
    /// Reads by read id: (client, seq, key).
    reads: BTreeMap<u64, (u64, u64, u8)>,
    next_read: u64,
    /// Lost its disk for good (replaced by a new incarnation).
    wiped: bool,
    /// Removed from the view.
    retired: bool,
    /// Paused (a long GC or SIGSTOP): no ticks, inbound packets held, until then.
    paused_until: u64,
    /// Probability this node's clock skips a tick (a slow clock).
    slow_clock: f64,
}

impl SimNode {
    fn new(node: Node) -> Self {
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
        }
    }
}

struct Sim {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: u64,
    net: Network,
    faults: LinkFaults,
    core: CoreParams,
    nodes: BTreeMap<NodeId, SimNode>,
    clients: Vec<SimClient>,
    history: History,
    chosen: BTreeMap<Slot, u64>,
    chain_at: BTreeMap<Slot, u64>,
    pending_reconfigs: Vec<Reconfig>,
    next_node_id: u64,
    restart_at: BTreeMap<NodeId, u64>,
    heal_at: Option<u64>,
    fault_rate: f64,
    faults_injected: u64,
    violation: Option<Violation>,
    trace: Vec<String>,
    /// With tracing on, also log every protocol message from this tick on
    /// (`SIM_TRACE_MESSAGES_AFTER`).
    trace_messages_after: Option<u64>,
    /// Until this tick, each new leader is killed or cut off soon after election.
    churn_until: u64,
    /// The leader seen at the last tick and since when.
    current_leader: Option<(NodeId, u64)>,
}

/// Runs one seed.
pub fn run(seed: u64, cfg: &SimConfig) -> Result<Report, Failure> {
    let mut sim = Sim::new(seed, cfg.clone());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run()));
    let result = match outcome {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(Violation::Crash(msg))
        }
    };
    result.map_err(|violation| Failure {
        seed,
        violation,
        trace: std::mem::take(&mut sim.trace),
    })
}

impl Sim {
    fn new(seed: u64, cfg: SimConfig) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let faults = LinkFaults {
            loss: rng.random_range(0.0..0.15),
            duplicate: rng.random_range(0.0..0.05),
            delay_min: 1,
            delay_max: rng.random_range(1..=12),
        };
        let window = [2u64, 4, 8, 16, 64][rng.random_range(0..5)];
        let core = CoreParams {
            window,
            inflight: rng.random_range(1..=window),
            batch: [1usize, 4, 64][rng.random_range(0..3)],
            soft_max: [20usize, 100, 1_000][rng.random_range(0..3)],
            catchup: [1usize, 8, 64][rng.random_range(0..3)],
            election: rng.random_range(30..=80),
            snapshot_chunk: [16usize, 128, 1 << 20][rng.random_range(0..3)],
            retain: [0u64, 5, 50][rng.random_range(0..3)],
        };
        let fault_rate = if cfg.aggressive {
            1.0 / rng.random_range(20.0..80.0)
        } else {
            1.0 / rng.random_range(80.0..300.0)
        };
        let clients = (1..=cfg.clients as u64)
            .map(|id| SimClient::new(id, [0.2, 0.4, 0.95][rng.random_range(0..3)]))
            .collect();
        let mut sim = Sim {
            net: Network::new(faults),
            faults,
            core,
            rng,
            now: 0,
            nodes: BTreeMap::new(),
            clients,
            history: History::default(),
            chosen: BTreeMap::new(),
            chain_at: BTreeMap::new(),
            pending_reconfigs: Vec::new(),
            next_node_id: cfg.nodes as u64 + 1,
            restart_at: BTreeMap::new(),
            heal_at: None,
            fault_rate,
            faults_injected: 0,
            violation: None,
            trace: Vec::new(),
            churn_until: 0,
            current_leader: None,
            trace_messages_after: std::env::var("SIM_TRACE_MESSAGES_AFTER")
                .ok()
                .and_then(|v| v.parse().ok()),
            cfg,
        };
        let members: Vec<Member> = (1..=sim.cfg.nodes as u64)
            .map(|i| Member {
                id: NodeId(i),
                addr: format!("node-{i}"),
            })
            .collect();
        for m in &members {
            let config = sim.node_config(m.id);
            let node = Node::bootstrap(config, &members).expect("valid simulated config");
            sim.nodes.insert(m.id, SimNode::new(node));
        }
        let ids: Vec<NodeId> = sim.nodes.keys().copied().collect();
        let rates: &[f64] = &[0.0, 0.0, 0.1, 0.3];
        for id in ids {
            let slow = rates[sim.rng.random_range(0..rates.len())];
            if let Some(sn) = sim.nodes.get_mut(&id) {
                sn.slow_clock = slow;
            }
        }
        sim.log(format!(
            "params {faults:?} {core:?} fault_rate={fault_rate:.4}"
        ));
        sim
    }

    fn node_config(&mut self, id: NodeId) -> Config {
        let mut c = Config::new(id);
        c.window = self.core.window;
        c.max_inflight_slots = self.core.inflight;
        c.max_batch_commands = self.core.batch;
        c.log_entries_soft_max = self.core.soft_max;
        c.catchup_entries_max = self.core.catchup;
        c.election_ticks = self.core.election;
        c.snapshot_chunk_bytes = self.core.snapshot_chunk;
        c.log_retain_after_snapshot = self.core.retain;
        c.catchup_retry_ticks = 30;
        c.seed = self.rng.random();
        c.injected_bug = self.cfg.bug;
        c
    }

    fn log(&mut self, line: String) {
        if self.cfg.trace {
            self.trace.push(format!("[{:>5}] {line}", self.now));
        }
    }

    fn fail(&mut self, v: Violation) {
        if self.violation.is_none() {
            self.log(format!("VIOLATION {v}"));
            self.violation = Some(v);
        }
    }

    fn run(&mut self) -> Result<Report, Violation> {
        for _ in 0..self.cfg.chaos_ticks {
            self.tick(true);
            if let Some(v) = self.violation.take() {
                return Err(v);
            }
        }
        self.heal_everything();
        let heal_tick = self.now;
        let targets: Vec<u64> = self
            .clients
            .iter()
            .map(|c| c.completed + self.cfg.ops_after_heal)
            .collect();
        loop {
            let clients_done = self
                .clients
                .iter()
                .zip(&targets)
                .all(|(c, t)| c.completed >= *t && !c.is_busy());
            if clients_done && self.pending_reconfigs.is_empty() && self.converged() {
                break;
            }
            if self.now - heal_tick > self.cfg.liveness_ticks {
                let done: Vec<u64> = self.clients.iter().map(|c| c.completed).collect();
                return Err(Violation::Liveness(format!(
                    "not recovered {} ticks after faults stopped: clients done {done:?} of {targets:?}, converged={}, pending reconfigs={}, nodes: {}",
                    self.cfg.liveness_ticks,
                    self.converged(),
                    self.pending_reconfigs.len(),
                    self.describe_nodes()
                )));
            }
            let issue: Vec<bool> = self
                .clients
                .iter()
                .zip(&targets)
                .map(|(c, t)| c.completed < *t)
                .collect();
            self.tick_with(false, &issue);
            if let Some(v) = self.violation.take() {
                return Err(v);
            }
        }
        let recovery_ticks = self.now - heal_tick;
        self.final_checks()?;
        let ops = self.history.ops();
        let completed = ops.iter().filter(|o| o.completed.is_some()).count() as u64;
        Ok(Report {
            seed: 0,
            ops_completed: completed,
            ops_unknown: ops.len() as u64 - completed,
            slots_decided: self.chosen.keys().next_back().copied().unwrap_or(0),
            net: self.net.stats,
            faults: self.faults_injected,
            view_epoch: self
                .live_members()
                .first()
                .and_then(|id| self.nodes[id].node.as_ref())
                .and_then(|n| n.view().map(|v| v.epoch))
                .unwrap_or(0),
            recovery_ticks,
        })
    }

    fn describe_nodes(&self) -> String {
        self.nodes
            .iter()
            .map(|(id, n)| match &n.node {
                Some(node) => {
                    let s = node.status();
                    format!(
                        "{id:?}:{:?} decided={} commit={} leader={:?} promised={:?} view={:?}{}",
                        s.role,
                        s.decided,
                        s.known_commit,
                        s.leader,
                        s.promised,
                        s.view
                            .map(|v| v.members.keys().copied().collect::<Vec<_>>()),
                        if n.retired { " retired" } else { "" }
                    )
                }
                None => format!("{id:?}:down"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn tick(&mut self, chaos: bool) {
        let issue = vec![true; self.clients.len()];
        self.tick_with(chaos, &issue);
    }

    fn tick_with(&mut self, chaos: bool, issue: &[bool]) {
        self.now += 1;
        for packet in self.net.due(self.now) {
            self.deliver(packet);
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in &ids {
            let Some(sn) = self.nodes.get_mut(id) else {
                continue;
            };
            let skip = sn.slow_clock > 0.0 && self.rng.random_bool(sn.slow_clock);
            if sn.paused_until > self.now || skip {
                continue;
            }
            if let Some(node) = sn.node.as_mut() {
                node.tick();
            }
        }
        self.drive_reconfigs();
        for id in &ids {
            if self
                .nodes
                .get(id)
                .is_some_and(|n| n.paused_until <= self.now)
            {
                self.process_ready(*id);
            }
        }
        let targets = self.client_targets();
        for (i, client) in self.clients.iter_mut().enumerate() {
            client.tick(
                self.now,
                issue[i],
                &targets,
                &mut self.rng,
                &mut self.net,
                &mut self.history,
            );
        }
        self.scheduled_recoveries();
        if chaos {
            self.churn_leaders();
            if self.rng.random_bool(self.fault_rate) {
                self.inject_fault();
            }
        }
    }

    /// During a churn period, strikes every new leader 5–40 ticks after its
    /// election, while it still has slots in flight.
    fn churn_leaders(&mut self) {
        let leader = self.leader();
        match (leader, self.current_leader) {
            (Some(l), Some((c, _))) if l == c => {}
            (Some(l), _) => self.current_leader = Some((l, self.now)),
            (None, _) => self.current_leader = None,
        }
        let Some((leader, since)) = self.current_leader else {
            return;
        };
        if self.now >= self.churn_until || self.now < since + 5 || !self.rng.random_bool(0.08) {
            return;
        }
        if self.rng.random_bool(0.5) {
            self.log(format!("churn: killing leader {leader:?}"));
            self.crash(leader);
        } else {
            let until = self.now + self.rng.random_range(20..150);
            self.log(format!("churn: isolating leader {leader:?} until {until}"));
            self.net.partition(BTreeMap::from([(leader, 1u8)]));
            self.heal_at = Some(until);
        }
        self.current_leader = None;
    }

    fn client_targets(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.wiped && !n.retired)
            .map(|(id, _)| *id)
            .collect()
    }

    fn deliver(&mut self, packet: Packet) {
        if let Endpoint::Node(to) = packet.to
            && let Some(paused_until) = self.nodes.get(&to).map(|n| n.paused_until)
            && paused_until > self.now
        {
            // A resumed process drains its sockets in no particular order.
            let jitter = self.rng.random_range(0..10);
            self.net.hold_until(paused_until + jitter, packet);
            return;
        }
        if self.cfg.trace
            && let (Endpoint::Node(from), Endpoint::Node(to), Payload::Paxos(msg)) =
                (packet.from, packet.to, &packet.payload)
            && self.trace_messages_after.is_some_and(|t| self.now >= t)
        {
            let line = format!("{from:?} -> {to:?} {msg:?}");
            self.log(line.chars().take(300).collect());
        }
        match (packet.from, packet.to) {
            (Endpoint::Node(from), Endpoint::Node(to)) => {
                if let (Payload::Paxos(msg), Some(node)) = (
                    packet.payload,
                    self.nodes.get_mut(&to).and_then(|n| n.node.as_mut()),
                ) {
                    node.step(from, msg);
                }
            }
            (Endpoint::Client(client), Endpoint::Node(to)) => {
                if let Payload::Request { seq, kind } = packet.payload {
                    self.handle_request(to, client, seq, kind);
                }
            }
            (Endpoint::Node(from), Endpoint::Client(client)) => {
                if let Payload::Reply { seq, reply } = packet.payload
                    && let Some(c) = self.clients.iter_mut().find(|c| c.id == client)
                {
                    c.on_reply(self.now, from, seq, reply, &mut self.rng, &mut self.history);
                }
            }
            (Endpoint::Client(_), Endpoint::Client(_)) => {}
        }
    }

    fn reply(&mut self, from: NodeId, client: u64, seq: u64, reply: Reply) {
        let packet = Packet {
            from: Endpoint::Node(from),
            to: Endpoint::Client(client),
            payload: Payload::Reply { seq, reply },
        };
        self.net.send(&mut self.rng, self.now, packet);
    }

    fn handle_request(&mut self, to: NodeId, client: u64, seq: u64, kind: OpKind) {
        let Some(sn) = self.nodes.get_mut(&to) else {
            return;
        };
        let Some(node) = sn.node.as_mut() else {
            return;
        };
        let answer = match kind {
            OpKind::Increment { key } => {
                // Exactly-once: a retry of an executed call gets its first reply.
                match sn.machine.sessions.get(&client) {
                    Some((s, v)) if *s == seq && node.is_leader() => Some(Reply::Value(*v)),
                    _ => {
                        let cmd = IncrementCmd { client, seq, key };
                        match node.propose(cmd.encode()) {
                            Ok(()) => {
                                sn.waiting.insert((client, seq));
                                None
                            }
                            Err(ProposeError::NotLeader { leader }) => {
                                Some(Reply::Redirect(leader))
                            }
                            Err(ProposeError::Busy) => Some(Reply::Busy),
                        }
                    }
                }
            }
            OpKind::Read { key } => {
                sn.next_read += 1;
                let id = sn.next_read;
                match node.read_index(id) {
                    Ok(()) => {
                        sn.reads.insert(id, (client, seq, key));
                        None
                    }
                    Err(ProposeError::NotLeader { leader }) => Some(Reply::Redirect(leader)),
                    Err(ProposeError::Busy) => Some(Reply::Busy),
                }
            }
        };
        if let Some(reply) = answer {
            self.reply(to, client, seq, reply);
        }
    }

    /// Handles a node's `Ready` exactly as a real runtime must: persist, send,
    /// restore, execute, answer reads.
    fn process_ready(&mut self, id: NodeId) {
        let Some(sn) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(node) = sn.node.as_mut() else {
            return;
        };
        let ready: Ready = node.take_ready();
        let mut violations = Vec::new();
        // 1. persist
        sn.disk.write(&ready.persist);
        for (slot, entry) in &ready.persist.decided {
            let h = entry_hash(entry);
            if *self.chosen.entry(*slot).or_insert(h) != h {
                violations.push(Violation::Agreement {
                    slot: *slot,
                    node: id,
                });
            }
        }
        // 2. send
        let mut packets: Vec<Packet> = ready
            .messages
            .into_iter()
            .map(|out| Packet {
                from: Endpoint::Node(id),
                to: Endpoint::Node(out.to),
                payload: Payload::Paxos(out.msg),
            })
            .collect();
        // 3. restore
        if let Some(snapshot) = &ready.restore {
            match CounterMachine::from_bytes(&snapshot.data) {
                Some(m) if m.slot == snapshot.slot => {
                    if self.chain_at.get(&m.slot).is_some_and(|c| *c != m.chain) {
                        violations.push(Violation::Divergence {
                            slot: m.slot,
                            node: id,
                        });
                    }
                    sn.machine = m;
                }
                _ => violations.push(Violation::Crash(format!(
                    "node {id:?} received an unreadable snapshot"
                ))),
            }
        }
        // 4. execute
        let mut replies = Vec::new();
        for (slot, entry) in &ready.committed {
            if *slot != sn.machine.slot + 1 {
                violations.push(Violation::Crash(format!(
                    "node {id:?} was handed slot {slot} after executing {}",
                    sn.machine.slot
                )));
                break;
            }
            for (client, seq, value) in sn.machine.execute(*slot, entry) {
                if sn.waiting.remove(&(client, seq)) {
                    replies.push((client, seq, Reply::Value(value)));
                }
            }
            let chain = sn.machine.chain;
            if *self.chain_at.entry(*slot).or_insert(chain) != chain {
                violations.push(Violation::Divergence {
                    slot: *slot,
                    node: id,
                });
            }
        }
        // 5. reads
        for read in &ready.reads {
            if let Some((client, seq, key)) = sn.reads.remove(read) {
                let value = sn.machine.counters.get(&key).copied().unwrap_or(0);
                replies.push((client, seq, Reply::Value(value)));
            }
        }
        for cmd in &ready.dropped_commands {
            if let Some(inc) = IncrementCmd::decode(cmd)
                && sn.waiting.remove(&(inc.client, inc.seq))
            {
                replies.push((inc.client, inc.seq, Reply::Redirect(None)));
            }
        }
        for read in &ready.dropped_reads {
            if let Some((client, seq, _)) = sn.reads.remove(read) {
                replies.push((client, seq, Reply::Redirect(None)));
            }
        }
        if sn.machine.slot != node.decided() {
            violations.push(Violation::Crash(format!(
                "node {id:?} executed up to {} but decided up to {}",
                sn.machine.slot,
                node.decided()
            )));
        }
        let snapshot_now = ready.compaction_wanted || self.rng.random_bool(0.001);
        if snapshot_now && sn.machine.slot > node.status().snapshot_slot {
            let _ = node.compact(sn.machine.slot, sn.machine.to_bytes());
            // The next take_ready carries the snapshot to persist.
            let more = node.take_ready();
            sn.disk.write(&more.persist);
            debug_assert!(more.messages.is_empty() && more.committed.is_empty());
            packets.extend(more.messages.into_iter().map(|out| Packet {
                from: Endpoint::Node(id),
                to: Endpoint::Node(out.to),
                payload: Payload::Paxos(out.msg),
            }));
        }
        for packet in packets {
            self.net.send(&mut self.rng, self.now, packet);
        }
        for (client, seq, reply) in replies {
            self.reply(id, client, seq, reply);
        }
        for v in violations {
            self.fail(v);
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.retired)
            .find(|(_, n)| n.node.as_ref().is_some_and(|x| x.is_leader()))
            .map(|(id, _)| *id)
    }

    /// Keeps proposing pending membership changes at the leader until the view
    /// in force shows them.
    fn drive_reconfigs(&mut self) {
        if self.pending_reconfigs.is_empty() || !self.now.is_multiple_of(10) {
            return;
        }
        let Some(leader) = self.leader() else {
            return;
        };
        // A change is done once it governs the next slot at the most advanced
        // node, not merely decided: until then the old view's quorums count.
        let Some(latest) = self.most_advanced_view() else {
            return;
        };
        let Some(node) = self.nodes.get_mut(&leader).and_then(|n| n.node.as_mut()) else {
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

    /// The view governing the next slot at the live node that decided most.
    fn most_advanced_view(&self) -> Option<paxos_core::View> {
        self.nodes
            .values()
            .filter_map(|n| n.node.as_ref())
            .max_by_key(|n| n.decided())
            .and_then(|n| n.view().cloned())
    }

    fn live_members(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.node.is_some() && !n.retired && !n.wiped)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether every live member has executed the same log and one leads.
    fn converged(&self) -> bool {
        let members = self.live_members();
        let states: BTreeSet<(Slot, u64)> = members
            .iter()
            .map(|id| {
                let m = &self.nodes[id].machine;
                (m.slot, m.chain)
            })
            .collect();
        states.len() == 1 && self.leader().is_some() && self.net.in_flight() == 0
            || (states.len() == 1 && self.leader().is_some() && self.quiet())
    }

    fn quiet(&self) -> bool {
        // Heartbeats keep packets in flight forever; "quiet" means no member
        // is behind the commit point it heard.
        self.live_members().iter().all(|id| {
            self.nodes[id]
                .node
                .as_ref()
                .is_some_and(|n| n.status().known_commit <= n.decided())
        })
    }

    fn scheduled_recoveries(&mut self) {
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
        if self.heal_at.is_some_and(|t| t <= self.now) {
            self.heal_at = None;
            self.net.heal();
            self.log("partition healed".into());
        }
    }

    fn crash(&mut self, id: NodeId) {
        let Some(sn) = self.nodes.get_mut(&id) else {
            return;
        };
        if sn.node.take().is_none() {
            return;
        }
        // Volatile state is gone; the disk survives.
        sn.machine = CounterMachine::default();
        sn.waiting.clear();
        sn.reads.clear();
        let delay = self.rng.random_range(20..300);
        self.restart_at.insert(id, self.now + delay);
        self.log(format!("{id:?} crashed, restart in {delay}"));
    }

    fn restart(&mut self, id: NodeId) {
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

    fn heal_everything(&mut self) {
        self.net.heal();
        self.heal_at = None;
        self.net.faults = LinkFaults::healthy(self.faults.delay_max);
        let down: Vec<NodeId> = self.restart_at.keys().copied().collect();
        for id in down {
            self.restart_at.remove(&id);
            self.restart(id);
        }
        for sn in self.nodes.values_mut() {
            sn.paused_until = sn.paused_until.min(self.now);
        }
        self.log("healed: faults stop".into());
    }

    fn inject_fault(&mut self) {
        self.faults_injected += 1;
        let members = self.live_members();
        let roll = self.rng.random_range(0..100);
        match roll {
            0..25 => {
                if members.len() < 2 {
                    return;
                }
                let isolated = self.rng.random_range(1..=members.len() / 2 + 1);
                let mut groups = BTreeMap::new();
                let mut shuffled = members.clone();
                for i in (1..shuffled.len()).rev() {
                    let j = self.rng.random_range(0..=i);
                    shuffled.swap(i, j);
                }
                // Half the partitions cut the leader off (with a minority or alone).
                if let Some(leader) = self.leader()
                    && self.rng.random_bool(0.5)
                    && let Some(pos) = shuffled.iter().position(|id| *id == leader)
                {
                    shuffled.swap(0, pos);
                }
                for id in shuffled.iter().take(isolated) {
                    groups.insert(*id, 1u8);
                }
                let until = self.now + self.rng.random_range(50..400);
                self.log(format!("partition {groups:?} until {until}"));
                self.net.partition(groups);
                self.heal_at = Some(until);
            }
            25..50 => {
                if !members.is_empty() {
                    let id = members[self.rng.random_range(0..members.len())];
                    self.crash(id);
                }
            }
            50..62 => {
                if let Some(leader) = self.leader() {
                    self.log(format!("killing leader {leader:?}"));
                    self.crash(leader);
                }
            }
            62..70 => {
                // Pause the leader (or anyone) long enough for an election.
                let target = if self.rng.random_bool(0.7) {
                    self.leader()
                } else {
                    members
                        .get(self.rng.random_range(0..members.len().max(1)))
                        .copied()
                };
                if let Some(id) = target {
                    let until = self.now + self.rng.random_range(50..400);
                    if let Some(sn) = self.nodes.get_mut(&id) {
                        sn.paused_until = until;
                    }
                    self.log(format!("{id:?} paused until {until}"));
                }
            }
            70..76 => {
                let down: Vec<NodeId> = self.restart_at.keys().copied().collect();
                for id in down {
                    self.restart_at.remove(&id);
                    self.restart(id);
                }
            }
            76..80 => {
                self.net.heal();
                self.heal_at = None;
            }
            80..85 => {
                self.churn_until = self.now + self.rng.random_range(100..600);
                self.log(format!("leader churn until {}", self.churn_until));
            }
            85..90 => {
                // Cut the leader off and slow its clock: it keeps believing it
                // leads while the others elect a new leader.
                if let Some(leader) = self.leader() {
                    let until = self.now + self.rng.random_range(100..400);
                    self.net.partition(BTreeMap::from([(leader, 1u8)]));
                    self.heal_at = Some(until);
                    if let Some(sn) = self.nodes.get_mut(&leader) {
                        sn.slow_clock = 0.9;
                    }
                    self.log(format!("isolated slow leader {leader:?} until {until}"));
                }
            }
            _ => {
                if self.cfg.view_changes {
                    self.change_membership();
                }
            }
        }
    }

    fn change_membership(&mut self) {
        if !self.pending_reconfigs.is_empty() {
            return;
        }
        // Only members of the view in force are removed or wiped, and only
        // while every member is up and caught up (as an operator would):
        // taking a second node away while a new one still copies the state
        // can leave no quorum holding it.
        let Some(view) = self.most_advanced_view() else {
            return;
        };
        let most = self
            .nodes
            .values()
            .filter_map(|n| n.node.as_ref())
            .map(|n| n.decided())
            .max()
            .unwrap_or(0);
        let all_caught_up = view.members.keys().all(|id| {
            self.nodes
                .get(id)
                .and_then(|n| n.node.as_ref())
                .is_some_and(|n| n.views().is_some() && n.decided() + self.core.window >= most)
        });
        if !all_caught_up {
            return;
        }
        let members: Vec<NodeId> = view
            .members
            .keys()
            .filter(|id| self.nodes.get(id).is_some_and(|n| !n.wiped))
            .copied()
            .collect();
        let roll = self.rng.random_range(0..3);
        if roll == 0 && members.len() < 6 {
            let id = self.add_node();
            self.log(format!("adding {id:?}"));
        } else if roll == 1 && members.len() > 3 {
            let id = members[self.rng.random_range(0..members.len())];
            self.pending_reconfigs.push(Reconfig::Remove(id));
            self.log(format!("removing {id:?}"));
        } else if members.len() >= 3 {
            // Lose a node's disk: it comes back as a new incarnation.
            let old = members[self.rng.random_range(0..members.len())];
            if let Some(sn) = self.nodes.get_mut(&old) {
                sn.node = None;
                sn.wiped = true;
                sn.disk = MemoryStorage::default();
            }
            self.restart_at.remove(&old);
            let new = self.add_node();
            self.pending_reconfigs.push(Reconfig::Remove(old));
            self.log(format!("{old:?} lost its disk; rejoins as {new:?}"));
        }
    }

    fn add_node(&mut self) -> NodeId {
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

    fn final_checks(&mut self) -> Result<(), Violation> {
        linearizability::check(self.history.ops()).map_err(Violation::NotLinearizable)?;
        let mut invoked: BTreeMap<(u64, u64), u8> = BTreeMap::new();
        for op in self.history.ops() {
            if let OpKind::Increment { key } = op.kind {
                invoked.insert((op.client, op.seq), key);
            }
        }
        for id in self.live_members() {
            let m = &self.nodes[&id].machine;
            for op in self.history.ops() {
                if matches!(op.kind, OpKind::Increment { .. })
                    && op.completed.is_some()
                    && !m.applied.contains(&(op.client, op.seq))
                {
                    return Err(Violation::LostWrite {
                        client: op.client,
                        seq: op.seq,
                        node: id,
                    });
                }
            }
            let mut per_key = [0i64; KEYS as usize];
            for applied in &m.applied {
                let Some(key) = invoked.get(applied) else {
                    return Err(Violation::PhantomWrite {
                        node: id,
                        detail: format!("applied {applied:?}, which no client issued"),
                    });
                };
                per_key[*key as usize] += 1;
            }
            for key in 0..KEYS {
                let value = m.counters.get(&key).copied().unwrap_or(0);
                if value != per_key[key as usize] {
                    return Err(Violation::PhantomWrite {
                        node: id,
                        detail: format!(
                            "counter {key} is {value} but {} increments were applied",
                            per_key[key as usize]
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}
