//! `Node`: one Multi-Paxos participant with acceptor, leader and learner roles
//! colocated, driven entirely from outside.
//!
//! ```text
//!   caller                         Node (no I/O, no clock)
//!   ──────                         ───────────────────────
//!   tick() ──────────────────────▶ timers: heartbeats, elections, retransmits
//!   step(from, msg) ─────────────▶ acceptor / leader / learner handlers
//!   propose(cmd), read_index(id) ▶ leader queue
//!   take_ready() ◀──────────────── persist → messages → restore → committed → reads
//! ```
//!
//! The role-specific handlers live in their own files (`follower.rs`,
//! `election.rs`, `leader.rs`, `catchup.rs`, `read_index.rs`); this file holds
//! the state they share and the steps every role takes (deciding a slot,
//! advancing the prefix, stepping down).

use crate::acceptor::Acceptor;
use crate::config::Config;
use crate::decided_log::{DecidedLog, Recorded};
use crate::election::{Candidate, PreCandidate};
use crate::entry::{Command, Entry, Member, Reconfig};
use crate::errors::{CompactError, ConfigError, PeerFault, ProposeError};
use crate::leader::Leader;
use crate::message::{AcceptedEntry, Message, Outgoing};
use crate::ready::Ready;
use crate::rng::SplitMix64;
use crate::snapshot::Snapshot;
use crate::types::{Ballot, NodeId, Slot};
use crate::view::{View, ViewHistory};
use std::collections::{BTreeMap, BTreeSet};

/// Which role a node plays right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts and learns; redirects proposals.
    Follower,
    /// Asking peers whether it could win an election (changes no state).
    PreCandidate,
    /// Running phase 1 for its own ballot.
    Candidate,
    /// Phase 1 done: proposes, decides and grants reads.
    Leader,
}

/// A snapshot of a node's progress, for status pages and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Current role.
    pub role: Role,
    /// The leader this node follows (itself when leading).
    pub leader: Option<NodeId>,
    /// Highest ballot promised.
    pub promised: Ballot,
    /// Every slot up to here is decided and handed out for execution.
    pub decided: Slot,
    /// Highest commit point heard from any leader.
    pub known_commit: Slot,
    /// Slot of the last snapshot (0 if none).
    pub snapshot_slot: Slot,
    /// Decided entries held in memory.
    pub log_entries: usize,
    /// Accepted values held for undecided slots.
    pub accepted_entries: usize,
    /// Commands queued at the leader, not yet in a slot.
    pub queued_commands: usize,
    /// Slots proposed but not yet decided (leader only).
    pub inflight_slots: usize,
    /// The view governing the next slot, if known.
    pub view: Option<View>,
    /// Events counted since the node was created.
    pub counters: Counters,
}

/// Events counted since the node was created. Status pages show them, and the
/// simulation sums them to prove which schedules a sweep exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Phase 1 completed: this node became leader.
    pub elections_won: u64,
    /// Effective view changes applied from the log.
    pub view_changes: u64,
    /// Snapshots received from a peer and installed.
    pub snapshots_installed: u64,
    /// Promises counted after this node was already leading.
    pub late_promises: u64,
    /// Of those, promises that reported a value or a decided prefix for a
    /// slot the leader had not proposed in yet (they change what it proposes).
    pub late_promises_informative: u64,
    /// Decisions learned from a peer's catch-up reply while leading.
    pub decisions_learned_while_leading: u64,
    /// Of those, decisions for slots this leader had proposed in.
    pub decisions_learned_over_proposals: u64,
    /// Times this node, while leading, learned from a peer's decision or
    /// snapshot that a slot it had proposed in was decided otherwise (a higher
    /// ballot chose there); it gives up leading each time.
    pub superseded_leaderships: u64,
    /// Messages or decisions dropped and reported as [`PeerFault`]s.
    pub peer_faults: u64,
    /// Leaderships given up because slots below the floor its promisers
    /// reported decided could not be learned from anyone for a long time.
    pub floor_unreachable_step_downs: u64,
    /// Promises that arrived in several parts (a report larger than
    /// `max_message_bytes`) and were counted once all had arrived.
    pub promises_assembled: u64,
    /// Elections not started because the next ballot would be above
    /// [`NUMBER_MAX`](crate::NUMBER_MAX), which peers refuse: a faulty peer
    /// pushed the rounds to the top of the range.
    pub ballots_exhausted: u64,
}

/// Durable state read back after a restart (what earlier [`Ready::persist`]s wrote).
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// Last promised ballot.
    pub promised: Ballot,
    /// Accepted values (in any order; duplicates allowed).
    pub accepted: Vec<AcceptedEntry>,
    /// Decided values (in any order; duplicates allowed).
    pub decided: Vec<(Slot, Entry)>,
    /// The last snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The last base view history written (`Persist::views`).
    pub views: Option<ViewHistory>,
}

pub(crate) enum RoleState {
    Follower,
    PreCandidate(PreCandidate),
    Candidate(Candidate),
    Leader(Box<Leader>),
}

/// One Multi-Paxos node. See the crate documentation for a walk-through.
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) rng: SplitMix64,
    /// Logical time in ticks.
    pub(crate) now: u64,
    pub(crate) acceptor: Acceptor,
    pub(crate) log: DecidedLog,
    /// `None` until a joining node learns the views from a peer.
    pub(crate) views: Option<ViewHistory>,
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) role: RoleState,
    pub(crate) leader_hint: Option<NodeId>,
    pub(crate) last_leader_contact: Option<u64>,
    pub(crate) election_due: u64,
    /// Highest ballot seen in any message (to pick the next one above it).
    pub(crate) highest_seen: Ballot,
    /// Highest commit point heard, with the ballot of the leader that sent it.
    pub(crate) commit_seen: (Ballot, Slot),
    /// Slots up to here were looked up among the values accepted under
    /// `commit_seen`'s ballot when its commit point reached them: each
    /// accepted slot is learned from a commit point once, not once per
    /// message (a follower with a gap below them holds thousands).
    pub(crate) commit_learned_through: Slot,
    /// Accepted slots looked up when learning commit points (tests check
    /// that the work stays linear).
    #[cfg(test)]
    pub(crate) commit_lookups: u64,
    pub(crate) known_commit: Slot,
    pub(crate) peer_decided: BTreeMap<NodeId, Slot>,
    pub(crate) last_catchup_request: Option<u64>,
    /// Catch-up requests sent since the last reply.
    pub(crate) catchup_unanswered: u32,
    /// Leaders pad the log with no-ops up to here so a decided view change
    /// takes effect even when no commands arrive.
    pub(crate) pad_until: Slot,
    /// A snapshot being received in chunks.
    pub(crate) incoming_snapshot: Option<crate::catchup::IncomingSnapshot>,
    /// The snapshot before `snapshot`, still served to transfers under way.
    pub(crate) previous_snapshot: Option<Snapshot>,
    /// Digest of a snapshot served last, by slot (computed once per snapshot,
    /// not once per request).
    pub(crate) served_digest: Option<(Slot, u64)>,
    pub(crate) ready: Ready,
    pub(crate) counters: Counters,
}

impl Node {
    fn blank(cfg: Config) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let rng = SplitMix64::new(cfg.seed ^ cfg.id.0.rotate_left(17));
        Ok(Node {
            cfg,
            rng,
            now: 0,
            acceptor: Acceptor::default(),
            log: DecidedLog::default(),
            views: None,
            snapshot: None,
            role: RoleState::Follower,
            leader_hint: None,
            last_leader_contact: None,
            election_due: 0,
            highest_seen: Ballot::ZERO,
            commit_seen: (Ballot::ZERO, 0),
            commit_learned_through: 0,
            #[cfg(test)]
            commit_lookups: 0,
            known_commit: 0,
            peer_decided: BTreeMap::new(),
            last_catchup_request: None,
            catchup_unanswered: 0,
            pad_until: 0,
            incoming_snapshot: None,
            previous_snapshot: None,
            served_digest: None,
            ready: Ready::default(),
            counters: Counters::default(),
        })
    }

    /// A founding member of a new cluster. Every founder must be given the same
    /// `members`. A lone founder elects itself on its first tick.
    pub fn bootstrap(cfg: Config, members: &[Member]) -> Result<Node, ConfigError> {
        if members.is_empty() {
            return Err(ConfigError("a cluster needs at least one member".into()));
        }
        let ids: BTreeSet<NodeId> = members.iter().map(|m| m.id).collect();
        if ids.len() != members.len() || ids.contains(&NodeId(0)) {
            return Err(ConfigError("member ids must be unique and non-zero".into()));
        }
        let mut node = Node::blank(cfg)?;
        let views = ViewHistory::genesis(members);
        node.ready.persist.views = Some(views.clone());
        let alone = views.at(1).members.len() == 1 && views.at(1).contains(node.cfg.id);
        node.views = Some(views);
        node.election_due = if alone {
            1
        } else {
            u64::from(node.rng.range(1, node.cfg.election_ticks))
        };
        Ok(node)
    }

    /// A node joining a running cluster. It acts as acceptor and learner at
    /// once; it learns the views when a member answers its catch-up request
    /// (after the caller has had the leader propose `Reconfig::Add` for it).
    pub fn join(cfg: Config) -> Result<Node, ConfigError> {
        let mut node = Node::blank(cfg)?;
        node.reset_election_timer();
        Ok(node)
    }

    /// A node restarted from its own durable state, under the same id.
    ///
    /// The first [`Ready`] after a restart hands back the snapshot (as
    /// `restore`) and every decided entry after it (as `committed`), so the
    /// caller rebuilds its state machine the same way it follows live updates.
    pub fn restart(cfg: Config, state: Recovered) -> Result<Node, ConfigError> {
        let mut node = Node::blank(cfg)?;
        let views = match (&state.snapshot, state.views) {
            (Some(s), _) => Some(s.views.clone()),
            (None, v) => v,
        };
        if views.is_none() && !state.decided.is_empty() {
            return Err(ConfigError(
                "recovered decided entries but no view history; the state is incomplete".into(),
            ));
        }
        node.views = views;
        if let Some(snap) = state.snapshot {
            node.log.reset_to(snap.slot);
            node.ready.restore = Some(snap.clone());
            node.snapshot = Some(snap);
        }
        for (slot, entry) in state.decided {
            if node.log.record(slot, entry) == Recorded::Conflict {
                return Err(ConfigError(format!(
                    "recovered two different decided values for slot {slot}"
                )));
            }
        }
        node.acceptor = Acceptor::restore(state.promised, state.accepted);
        node.highest_seen = state.promised;
        node.advance();
        node.reset_election_timer();
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Current role.
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate(_) => Role::PreCandidate,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// Whether this node currently leads (phase 1 complete).
    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }

    /// The leader this node follows, if known (itself when leading).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader_hint
    }

    /// Every slot up to here is decided and was handed out for execution.
    pub fn decided(&self) -> Slot {
        self.log.prefix()
    }

    /// The view governing the next slot, if known.
    pub fn view(&self) -> Option<&View> {
        self.views.as_ref().map(|v| v.at(self.log.prefix() + 1))
    }

    /// The full view history, if known.
    pub fn views(&self) -> Option<&ViewHistory> {
        self.views.as_ref()
    }

    /// Progress figures for status pages and tests.
    pub fn status(&self) -> Status {
        let (queued, inflight) = match &self.role {
            RoleState::Leader(l) => (l.queue.len(), l.inflight.len()),
            _ => (0, 0),
        };
        Status {
            id: self.cfg.id,
            role: self.role(),
            leader: self.leader_hint,
            promised: self.acceptor.promised(),
            decided: self.log.prefix(),
            known_commit: self.known_commit,
            snapshot_slot: self.log.base(),
            log_entries: self.log.len(),
            accepted_entries: self.acceptor.len(),
            queued_commands: queued,
            inflight_slots: inflight,
            view: self.view().cloned(),
            counters: self.counters,
        }
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.now += 1;
        match self.role {
            RoleState::Follower => {
                if self.now >= self.election_due && self.may_campaign() {
                    self.start_pre_vote();
                }
            }
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => self.candidate_tick(),
            RoleState::Leader(_) => self.leader_tick(),
        }
        self.maybe_request_catchup();
    }

    /// Handles a message `from` a peer. A message that fails
    /// [`Message::check`] is dropped and reported in [`Ready::peer_faults`].
    pub fn step(&mut self, from: NodeId, msg: Message) {
        if from == self.cfg.id {
            return;
        }
        if let Err(why) = msg.check() {
            self.report(from, PeerFault::Malformed(why));
            return;
        }
        match msg {
            Message::PreVote(m) => self.on_pre_vote(from, m),
            Message::PreVoteReply(m) => self.on_pre_vote_reply(from, m),
            Message::Prepare(m) => self.on_prepare(from, m),
            Message::Promise(m) => self.on_promise(from, m),
            Message::Accept(m) => self.on_accept(from, m),
            Message::Accepted(m) => self.on_accepted(from, m),
            Message::Heartbeat(m) => self.on_heartbeat(from, m),
            Message::HeartbeatAck(m) => self.on_heartbeat_ack(from, m),
            Message::CatchupRequest(m) => self.on_catchup_request(from, m),
            Message::CatchupReply(m) => self.on_catchup_reply(from, m),
            Message::SnapshotChunk(m) => self.on_snapshot_chunk(from, m),
            Message::SnapshotRequest(m) => self.on_snapshot_request(from, m),
        }
    }

    /// Queues a client command. Only the leader accepts; commands are packed
    /// into slots (batched) when the caller next calls [`take_ready`](Self::take_ready).
    pub fn propose(&mut self, cmd: Command) -> Result<(), ProposeError> {
        let RoleState::Leader(leader) = &mut self.role else {
            return Err(self.not_leader());
        };
        if leader.queue.len() >= self.cfg.max_queued_commands {
            return Err(ProposeError::Busy);
        }
        leader.queue.push_back(cmd);
        Ok(())
    }

    /// Queues a view change (leader only). If leadership is lost before it is
    /// assigned a slot it is dropped; callers retry until the view shows it.
    pub fn propose_reconfig(&mut self, change: Reconfig) -> Result<(), ProposeError> {
        let RoleState::Leader(leader) = &mut self.role else {
            return Err(self.not_leader());
        };
        if leader.reconfigs.len() >= self.cfg.window as usize {
            return Err(ProposeError::Busy);
        }
        if !leader.reconfigs.contains(&change) {
            leader.reconfigs.push_back(change);
        }
        Ok(())
    }

    /// Hands the core a snapshot of the state machine taken after executing
    /// every slot up to `slot`; the log up to `slot` is then dropped.
    pub fn compact(&mut self, slot: Slot, data: Vec<u8>) -> Result<(), CompactError> {
        if slot > self.log.prefix() {
            return Err(CompactError::NotExecuted {
                slot,
                executed: self.log.prefix(),
            });
        }
        if slot <= self.log.base() {
            return Err(CompactError::Stale {
                slot,
                held: self.log.base(),
            });
        }
        let Some(views) = self.views.as_mut() else {
            return Err(CompactError::NotExecuted { slot, executed: 0 });
        };
        let snapshot = Snapshot {
            slot,
            views: views.as_of(slot, self.cfg.window),
            data,
        };
        let retain = self.cfg.log_retain_after_snapshot;
        views.prune_before(slot.saturating_sub(retain));
        // Entries kept below the snapshot: at most one catch-up reply's worth.
        self.log.compact(slot, retain, self.cfg.max_message_bytes);
        self.ready.persist.snapshot = Some(snapshot.clone());
        // The previous snapshot keeps serving transfers already under way.
        self.previous_snapshot = self.snapshot.replace(snapshot);
        Ok(())
    }

    /// Drains everything produced since the last call. Leaders pack queued
    /// commands into slots here, so every command proposed since the last call
    /// shares as few slots as the batch limits allow.
    pub fn take_ready(&mut self) -> Ready {
        self.leader_flush();
        let mut ready = std::mem::take(&mut self.ready);
        // Only what a snapshot at the decided prefix would remove counts:
        // entries decided above a gap (a lagging replica learning later
        // decisions) stay until the gap fills, and asking for a snapshot that
        // cannot be taken would have the runtime serialize its object every
        // turn in vain.
        let compactable = self.log.prefix().saturating_sub(self.log.base());
        ready.compaction_wanted = compactable > 0
            && (compactable > self.cfg.log_entries_soft_max as u64
                || self.log.bytes_to_prefix() > self.cfg.log_bytes_soft_max);
        ready
    }

    // ----- helpers shared by the roles -----

    pub(crate) fn send(&mut self, to: NodeId, msg: impl Into<Message>) {
        if to != self.cfg.id {
            self.ready.messages.push(Outgoing {
                to,
                msg: msg.into(),
            });
        }
    }

    pub(crate) fn not_leader(&self) -> ProposeError {
        ProposeError::NotLeader {
            leader: self.leader_hint.filter(|l| *l != self.cfg.id),
        }
    }

    pub(crate) fn observe_ballot(&mut self, ballot: Ballot) {
        self.highest_seen = self.highest_seen.max(ballot);
    }

    /// Raises the promise to `ballot` (persisting it), stepping down from any
    /// lower ballot this node was using. Returns whether it was granted.
    pub(crate) fn raise_promise(&mut self, ballot: Ballot) -> bool {
        self.observe_ballot(ballot);
        let (granted, changed) = self.acceptor.promise(ballot);
        if changed {
            self.ready.persist.promised = Some(ballot);
            if self.own_ballot().is_some_and(|own| own < ballot) {
                self.step_down();
            }
        }
        granted
    }

    /// The ballot this node campaigns or leads with, if any.
    pub(crate) fn own_ballot(&self) -> Option<Ballot> {
        match &self.role {
            RoleState::Follower | RoleState::PreCandidate(_) => None,
            RoleState::Candidate(c) => Some(c.ballot),
            RoleState::Leader(l) => Some(l.ballot),
        }
    }

    pub(crate) fn reset_election_timer(&mut self) {
        let jitter = self
            .rng
            .range(self.cfg.election_ticks, 2 * self.cfg.election_ticks);
        self.election_due = self.now + u64::from(jitter);
    }

    pub(crate) fn may_campaign(&self) -> bool {
        self.view().is_some_and(|v| v.contains(self.cfg.id))
    }

    /// Stops campaigning or leading; hands back queued work as dropped.
    pub(crate) fn step_down(&mut self) {
        match std::mem::replace(&mut self.role, RoleState::Follower) {
            RoleState::Leader(leader) => {
                let leader = *leader;
                self.ready.dropped_commands.extend(leader.queue);
                self.ready.dropped_reads.extend(leader.reads.drain_all());
                self.leader_hint = None;
            }
            RoleState::PreCandidate(_) | RoleState::Candidate(_) | RoleState::Follower => {}
        }
        self.reset_election_timer();
    }

    /// Records a decision, persisting it if new. `source` is the node whose
    /// message proved it (this node itself for its own quorum). A value that
    /// differs from one already decided in the slot is dropped and reported:
    /// between correct nodes it cannot happen, so it is a lying peer or broken
    /// agreement, and either way the node must not crash or take it.
    pub(crate) fn decide(&mut self, slot: Slot, entry: Entry, source: NodeId) {
        if self.views.is_none() {
            return;
        }
        match self.log.record(slot, entry.clone()) {
            Recorded::New => self.ready.persist.decided.push((slot, entry)),
            Recorded::Known => {}
            Recorded::Conflict => self.report(source, PeerFault::ConflictingDecision { slot }),
        }
    }

    pub(crate) fn report(&mut self, from: NodeId, fault: PeerFault) {
        self.counters.peer_faults += 1;
        self.ready.peer_faults.push((from, fault));
    }

    /// Moves the decided prefix forward, applies view changes and hands the
    /// newly contiguous entries to the caller.
    pub(crate) fn advance(&mut self) {
        let Some(views) = self.views.as_mut() else {
            return;
        };
        let newly = self.log.advance();
        if newly.is_empty() {
            return;
        }
        for slot in newly {
            let Some(entry) = self.log.get(slot) else {
                continue;
            };
            if let Entry::Reconfig(change) = entry
                && views.apply(slot, change, self.cfg.window)
            {
                self.counters.view_changes += 1;
                self.pad_until = self.pad_until.max(slot + self.cfg.window - 1);
            }
            self.ready.committed.push((slot, entry.clone()));
        }
        let prefix = self.log.prefix();
        self.acceptor.forget_through(prefix);
        self.known_commit = self.known_commit.max(prefix);
        self.leader_after_advance();
    }

    /// Members of every view governing a slot this node may propose in next.
    pub(crate) fn window_members(&self) -> BTreeSet<NodeId> {
        let Some(views) = &self.views else {
            return BTreeSet::new();
        };
        let lo = self.log.prefix() + 1;
        views
            .governing(lo, self.log.prefix() + self.cfg.window)
            .flat_map(|v| v.members.keys().copied())
            .collect()
    }

    /// Whether `voters` hold a majority of every view governing the window.
    pub(crate) fn window_quorum(&self, voters: &BTreeSet<NodeId>) -> bool {
        let Some(views) = &self.views else {
            return false;
        };
        let lo = self.log.prefix() + 1;
        views
            .governing(lo, self.log.prefix() + self.cfg.window)
            .all(|v| v.is_quorum(voters))
    }
}
