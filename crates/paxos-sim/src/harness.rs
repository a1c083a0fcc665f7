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
use crate::history::History;
use crate::invariants::Invariants;
use crate::network::{Endpoint, Network};
use crate::outcome::{Failure, Report, Violation};
use crate::params::{CoreParams, RunParams};
pub use crate::sim_config::SimConfig;
use crate::sim_node::SimNode;
use paxos_core::{Config, Member, Node, NodeId, Reconfig, Slot};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// The state of one run: the cluster, its clients, the network between them,
/// the faults under way and what the checkers saw.
pub(crate) struct Sim {
    /// The seed everything in this run derives from.
    pub(crate) seed: u64,
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
    pub(crate) trace_messages_after: Option<u64>,
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
            seed,
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
            seed: self.seed,
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
}
