//! The simulation loop. Every parameter of a run — cluster size, network fault
//! rates, core tuning, the fault schedule — derives from one seed, so a failing
//! seed replays bit for bit.
//!
//! A run has two phases, as in openraft's chaos tests:
//! 1. **chaos**: clients run while the network loses, duplicates, delays
//!    (with a heavy tail) and reorders packets, links are cut one way or both,
//!    with what crosses them dropped or held, nodes crash (also between
//!    persisting and sending a `Ready`) and restart from their persisted
//!    state, leaders are paused, slowed, cut off or killed, and (optionally)
//!    members are added, removed, or wiped and replaced by a new incarnation,
//!    several changes at a time (see `faults.rs` and `membership.rs`);
//! 2. **liveness**: faults stop; every client must finish more operations and
//!    every member must converge on the same log.
//!
//! Safety is checked online at every decision and execution (agreement, same
//! execution sequence, no peer ever reporting a conflicting decision) and at
//! the end (linearizability of the client history, every acknowledged write
//! present on every member, nothing applied that no client asked for; see
//! `checks.rs`).

use crate::client::SimClient;
use crate::exercise::Exercised;
use crate::history::{History, OpKind};
use crate::invariants::Invariants;
use crate::network::{Endpoint, Network, Packet, Payload, Reply};
use crate::outcome::{Failure, Report, Violation};
use crate::params::{CoreParams, RunParams};
use crate::state_machine::{CounterMachine, IncrementCmd};
use paxos_core::message::{Accept, Heartbeat};
use paxos_core::{
    Config, InjectedBug, Member, MemoryStorage, Message, Node, NodeId, PeerFault, ProposeError,
    Ready, Reconfig, Slot,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

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
    superseded_seen: u64,
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

pub(crate) struct Sim {
    pub(crate) cfg: SimConfig,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) now: u64,
    pub(crate) net: Network,
    pub(crate) params: RunParams,
    pub(crate) nodes: BTreeMap<NodeId, SimNode>,
    pub(crate) clients: Vec<SimClient>,
    pub(crate) history: History,
    /// Agreement and the invariants it rests on, checked online.
    pub(crate) invariants: Invariants,
    pub(crate) chain_at: BTreeMap<Slot, u64>,
    pub(crate) pending_reconfigs: Vec<Reconfig>,
    pub(crate) next_node_id: u64,
    pub(crate) restart_at: BTreeMap<NodeId, u64>,
    pub(crate) faults_injected: u64,
    pub(crate) violation: Option<Violation>,
    pub(crate) trace: Vec<String>,
    /// With tracing on, also log every protocol message from this tick on
    /// (`SIM_TRACE_MESSAGES_AFTER`).
    trace_messages_after: Option<u64>,
    /// Until this tick, each new leader is killed or cut off soon after election.
    pub(crate) churn_until: u64,
    /// The leader seen at the last tick and since when.
    pub(crate) current_leader: Option<(NodeId, u64)>,
    /// Counts of what this run exercised; node counters are added when a
    /// node object is dropped (crash, wipe) and at the end.
    pub(crate) exercised: Exercised,
    /// No new fault strikes before this tick: a composite scenario plays out.
    pub(crate) scenario_until: u64,
    /// Later steps of composite faults, by tick.
    pub(crate) scheduled: Vec<(u64, Strike)>,
}

/// A later step of a composite fault (see `faults.rs`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Strike {
    /// Cut these two nodes off together from the rest, for at most this many
    /// ticks.
    IsolateWith(NodeId, NodeId, u64),
    /// Cut this node off from everyone until this tick.
    CutOff(NodeId, u64),
    /// If someone other than this stale leader leads now: reconnect the stale
    /// leader (`.0`) to everyone but the new leader and its own follower
    /// (`.1`), and pause the new leader for `.2` ticks.
    ReconnectStaleLeader(NodeId, NodeId, u64),
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
    result
        .map(|mut report| {
            report.seed = seed;
            report.trace = std::mem::take(&mut sim.trace);
            report
        })
        .map_err(|violation| Failure {
            seed,
            violation,
            trace: std::mem::take(&mut sim.trace),
        })
}

impl Sim {
    fn new(seed: u64, cfg: SimConfig) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let params = RunParams::draw(&mut rng, &cfg);
        let clients = params
            .read_ratios
            .iter()
            .enumerate()
            .map(|(i, ratio)| SimClient::new(i as u64 + 1, *ratio))
            .collect();
        let mut sim = Sim {
            net: Network::new(params.faults.clone()),
            params,
            rng,
            now: 0,
            nodes: BTreeMap::new(),
            clients,
            history: History::default(),
            invariants: Invariants::new(&[], 1),
            chain_at: BTreeMap::new(),
            pending_reconfigs: Vec::new(),
            next_node_id: cfg.nodes as u64 + 1,
            restart_at: BTreeMap::new(),
            faults_injected: 0,
            violation: None,
            trace: Vec::new(),
            churn_until: 0,
            current_leader: None,
            trace_messages_after: std::env::var("SIM_TRACE_MESSAGES_AFTER")
                .ok()
                .and_then(|v| v.parse().ok()),
            exercised: Exercised::default(),
            scheduled: Vec::new(),
            scenario_until: 0,
            cfg,
        };
        let members: Vec<Member> = (1..=sim.cfg.nodes as u64)
            .map(|i| Member {
                id: NodeId(i),
                addr: format!("node-{i}"),
            })
            .collect();
        sim.invariants = Invariants::new(&members, sim.params.core.window);
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
        sim.log(format!("params {:?}", sim.params));
        sim
    }

    pub(crate) fn core(&self) -> CoreParams {
        self.params.core
    }

    pub(crate) fn node_config(&mut self, id: NodeId) -> Config {
        let core = self.core();
        let mut c = Config::new(id);
        c.window = core.window;
        c.max_inflight_slots = core.inflight;
        c.max_batch_commands = core.batch;
        c.log_entries_soft_max = core.soft_max;
        c.catchup_entries_max = core.catchup;
        c.election_ticks = core.election;
        c.max_message_bytes = core.message_bytes;
        c.max_batch_bytes = c.max_batch_bytes.min(core.message_bytes);
        c.snapshot_chunk_bytes = core.snapshot_chunk.min(core.message_bytes);
        c.log_retain_after_snapshot = core.retain;
        c.catchup_retry_ticks = 30;
        c.seed = self.rng.random();
        c.injected_bug = self.cfg.bug;
        c
    }

    pub(crate) fn log(&mut self, line: String) {
        if self.cfg.trace {
            self.trace.push(format!("[{:>5}] {line}", self.now));
        }
    }

    pub(crate) fn fail(&mut self, v: Violation) {
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
        let mut exercised = self.exercised;
        for sn in self.nodes.values() {
            if let Some(node) = &sn.node {
                exercised.add_node(&node.status().counters);
            }
        }
        exercised.long_delays = self.net.stats.delayed_long;
        exercised.held_packets = self.net.stats.held;
        Ok(Report {
            seed: 0,
            ops_completed: completed,
            ops_unknown: ops.len() as u64 - completed,
            slots_decided: self.invariants.last_decided(),
            net: self.net.stats,
            faults: self.faults_injected,
            view_epoch: self
                .live_members()
                .first()
                .and_then(|id| self.nodes[id].node.as_ref())
                .and_then(|n| n.view().map(|v| v.epoch))
                .unwrap_or(0),
            recovery_ticks,
            exercised,
            trace: Vec::new(),
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
        self.net.expire(self.now);
        for packet in self.net.due(&mut self.rng, self.now) {
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
        self.note_leader_changes();
        if chaos {
            self.scheduled_strikes();
            self.churn_leaders();
            if self.rng.random_bool(self.params.fault_rate) {
                self.inject_fault();
            }
        }
    }

    /// Counts elections won by a node that missed view changes, and elections
    /// while membership changes are pending.
    fn note_leader_changes(&mut self) {
        let leader = self.leader();
        match (leader, self.current_leader) {
            (Some(l), Some((c, _))) if l == c => {}
            (Some(l), _) => {
                self.current_leader = Some((l, self.now));
                self.net
                    .release_parked(&mut self.rng, self.now, Endpoint::Node(l));
                let epoch_of = |n: &Node| n.views().map_or(0, |v| v.latest().epoch);
                let newest = self
                    .nodes
                    .values()
                    .filter_map(|n| n.node.as_ref())
                    .map(epoch_of)
                    .max()
                    .unwrap_or(0);
                let mine = self.nodes[&l].node.as_ref().map_or(0, epoch_of);
                if mine < newest {
                    self.exercised.stale_view_elections += 1;
                }
                if !self.pending_reconfigs.is_empty() {
                    self.exercised.elections_during_reconfig += 1;
                }
            }
            (None, _) => self.current_leader = None,
        }
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
    /// restore, execute, answer reads. A node armed to crash mid-`Ready` dies
    /// right after persisting: what it wrote survives, nothing it meant to
    /// send leaves, nothing is executed or answered.
    fn process_ready(&mut self, id: NodeId) {
        let stall_ready = self
            .nodes
            .get(&id)
            .and_then(|n| n.stall)
            .is_some_and(|stall| self.new_view_ready_without(id, &stall));
        let Some(sn) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(node) = sn.node.as_mut() else {
            return;
        };
        let mut ready: Ready = node.take_ready();
        let mut violations = Vec::new();
        if self.cfg.trace {
            let superseded = node.status().counters.superseded_leaderships;
            if superseded > sn.superseded_seen {
                sn.superseded_seen = superseded;
                let line = format!("{id:?} learned that a higher ballot chose over its proposals");
                self.trace.push(format!("[{:>5}] {line}", self.now));
            }
        }
        // 1. persist
        sn.disk.write(&ready.persist);
        for accepted in &ready.persist.accepted {
            violations.extend(self.invariants.on_accepted(id, accepted));
        }
        for (slot, entry) in &ready.persist.decided {
            violations.extend(self.invariants.on_decided(id, *slot, entry));
        }
        for out in &ready.messages {
            if let Message::Accept(Accept { ballot, commit, .. })
            | Message::Heartbeat(Heartbeat { ballot, commit, .. }) = &out.msg
                && ballot.leader == id
            {
                violations.extend(self.invariants.on_commit_sent(*ballot, *commit));
            }
        }
        for (peer, fault) in &ready.peer_faults {
            // Simulated peers are honest: a fault report is a protocol bug.
            violations.push(match fault {
                PeerFault::ConflictingDecision { slot } => Violation::Agreement {
                    slot: *slot,
                    node: id,
                },
                PeerFault::Malformed(why) => Violation::Crash(format!(
                    "node {id:?} refused a message from {peer:?} as malformed: {why}"
                )),
            });
        }
        if sn.crash_mid_ready && !ready.messages.is_empty() {
            sn.crash_mid_ready = false;
            self.exercised.mid_ready_crashes += 1;
            self.log(format!(
                "{id:?} crashes after persisting, before sending {} messages",
                ready.messages.len()
            ));
            self.crash(id);
            for v in violations {
                self.fail(v);
            }
            return;
        }
        // A leader armed to stall as a new view starts (see `faults.rs`).
        let mut send_at = self.now;
        if let Some((ticks, partner)) = crate::faults::stall_at_new_view(
            &mut sn.stall,
            node.views(),
            &mut ready.messages,
            stall_ready,
            self.now,
        ) {
            sn.paused_until = self.now + ticks;
            // Its sockets flush after the cut below is in place, which comes
            // just before it resumes, so what queued up for it meanwhile does
            // not reach it first.
            send_at = sn.paused_until + 1;
            let resume = sn.paused_until;
            self.scheduled
                .push((resume - 1, Strike::IsolateWith(id, partner, 600)));
            // The partner stays cut off until then: it must not learn the
            // new view in between.
            self.scheduled
                .push((self.now, Strike::CutOff(partner, resume)));
            if self.cfg.trace {
                let line = format!("{id:?} pauses as it proposes in a new view, for {ticks}");
                self.trace.push(format!("[{:>5}] {line}", self.now));
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
                if self.cfg.trace {
                    let line = format!(
                        "{id:?} reads counter {key} = {value} for client {client} seq {seq} at slot {}",
                        sn.machine.slot
                    );
                    self.trace.push(format!("[{:>5}] {line}", self.now));
                }
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
            if send_at > self.now {
                self.net.hold_until(send_at, packet);
            } else {
                self.net.send(&mut self.rng, self.now, packet);
            }
        }
        for (client, seq, reply) in replies {
            self.reply(id, client, seq, reply);
        }
        for v in violations {
            self.fail(v);
        }
    }

    pub(crate) fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.retired)
            .find(|(_, n)| n.node.as_ref().is_some_and(|x| x.is_leader()))
            .map(|(id, _)| *id)
    }

    pub(crate) fn live_members(&self) -> Vec<NodeId> {
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

    fn heal_everything(&mut self) {
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
