//! Phase 2 at a stable leader: packing queued commands into slots (batching),
//! keeping up to `max_inflight_slots` slots in flight (pipelining) within the
//! window, counting acceptances per slot against the slot's own view, and
//! retransmitting what was lost.
//!
//! Back of the envelope: with 3 nodes, one `Accept` per follower carries every
//! slot filled since the last `take_ready`, and one `Accepted` comes back, so a
//! batch of N commands costs 4 messages and 3 log appends regardless of N.

use crate::election::{Pmax, merge_pmax};
use crate::entry::{Command, Entry, Reconfig};
use crate::message::{Accept, Accepted, AcceptedEntry, Heartbeat, HeartbeatAck, Prepare};
use crate::message_split::accept_parts;
use crate::node::{Node, RoleState};
use crate::promise_parts::PromiseParts;
use crate::read_index::ReadRounds;
use crate::types::{Ballot, NodeId, Slot};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A proposed slot waiting for a quorum.
pub(crate) struct InFlight {
    pub(crate) entry: Entry,
    pub(crate) acks: BTreeSet<NodeId>,
    pub(crate) sent: u64,
}

/// State of a node whose phase 1 succeeded.
pub(crate) struct Leader {
    pub(crate) ballot: Ballot,
    pub(crate) promised_by: BTreeSet<NodeId>,
    /// The highest-ballot value every promise so far (at the election and
    /// after) reported per slot not yet proposed: phase 1's `pmax`, re-proposed
    /// before any new command.
    pub(crate) recovered: Pmax,
    pub(crate) recover_end: Slot,
    /// The first slot this leader proposes in; everything below was decided
    /// before its election.
    pub(crate) first_slot: Slot,
    /// The highest decided prefix a promiser reported. Slots up to here were
    /// decided elsewhere: they are learned by catch-up, never filled with a
    /// value of our own (their value is not in any promise).
    pub(crate) floor: Slot,
    pub(crate) next_slot: Slot,
    /// The decided prefix last seen to grow, and when.
    pub(crate) prefix_seen: (Slot, u64),
    pub(crate) inflight: BTreeMap<Slot, InFlight>,
    pub(crate) queue: VecDeque<Command>,
    pub(crate) reconfigs: VecDeque<Reconfig>,
    /// Slots filled since the last flush, to broadcast.
    pub(crate) outbox: Vec<(Slot, Entry)>,
    pub(crate) last_heard: BTreeMap<NodeId, u64>,
    pub(crate) prepare_sent: BTreeMap<NodeId, u64>,
    pub(crate) last_heartbeat: u64,
    pub(crate) last_quorum_check: u64,
    pub(crate) reads: ReadRounds,
    /// Late promises whose parts have not all arrived yet.
    pub(crate) parts: PromiseParts,
}

impl Leader {
    pub(crate) fn new(
        ballot: Ballot,
        promised_by: BTreeSet<NodeId>,
        recovered: Pmax,
        start: Slot,
        recover_end: Slot,
        floor: Slot,
        now: u64,
    ) -> Self {
        let last_heard = promised_by.iter().map(|id| (*id, now)).collect();
        Leader {
            ballot,
            promised_by,
            recovered,
            recover_end,
            first_slot: start,
            floor,
            next_slot: start,
            prefix_seen: (0, now),
            inflight: BTreeMap::new(),
            queue: VecDeque::new(),
            reconfigs: VecDeque::new(),
            outbox: Vec::new(),
            last_heard,
            prepare_sent: BTreeMap::new(),
            last_heartbeat: now,
            last_quorum_check: now,
            reads: ReadRounds::default(),
            parts: PromiseParts::default(),
        }
    }

    /// A promise that arrived after adoption, typically from a member of a
    /// view decided since: it counts toward the quorums of the slots that view
    /// governs. Phase 1 must cover every slot the leader proposes in with a
    /// quorum of that slot's view, so what the promise reports joins `pmax`
    /// under the same rule as at the election — highest ballot wins — and the
    /// decided prefix it reports raises the floor: those slots were decided
    /// and their values are not in the report. The promiser counts toward
    /// quorums once its report is `complete` (all its parts arrived).
    pub(crate) fn on_late_promise(
        &mut self,
        from: NodeId,
        decided: Slot,
        accepted: Vec<AcceptedEntry>,
        first_value: bool,
        complete: bool,
        now: u64,
    ) {
        if complete {
            self.promised_by.insert(from);
        }
        self.last_heard.insert(from, now);
        let next = self.next_slot;
        let reported: Vec<AcceptedEntry> =
            accepted.into_iter().filter(|a| a.slot >= next).collect();
        if first_value {
            // The injected bug: the first report per slot stays, whatever its
            // ballot, and the reporter's decided prefix is ignored.
            for a in reported {
                self.recover_end = self.recover_end.max(a.slot);
                self.recovered.entry(a.slot).or_insert((a.ballot, a.entry));
            }
            return;
        }
        if let Some(last) = reported.iter().map(|a| a.slot).max() {
            self.recover_end = self.recover_end.max(last);
        }
        merge_pmax(&mut self.recovered, reported, false);
        self.floor = self.floor.max(decided);
    }

    fn take_batch(&mut self, max_commands: usize, max_bytes: usize) -> Entry {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(cmd) = self.queue.front() {
            if batch.len() >= max_commands || (!batch.is_empty() && bytes + cmd.0.len() > max_bytes)
            {
                break;
            }
            bytes += cmd.0.len();
            if let Some(cmd) = self.queue.pop_front() {
                batch.push(cmd);
            }
        }
        Entry::Commands(batch)
    }
}

impl Node {
    fn quorum_of_one(&self) -> bool {
        #[cfg(feature = "bug-injection")]
        {
            self.cfg.bug(crate::config::InjectedBug::QuorumOfOne)
        }
        #[cfg(not(feature = "bug-injection"))]
        {
            false
        }
    }

    /// Fills slots from the recovery set, the reconfiguration queue and the
    /// command queue, then broadcasts them. Called from `take_ready`.
    pub(crate) fn leader_flush(&mut self) {
        loop {
            let decided = self.fill_slots();
            if decided.is_empty() {
                break;
            }
            // Only a quorum of one (a lone node) decides on the spot; deciding may
            // move the window and open more slots.
            let me = self.cfg.id;
            for (slot, entry) in decided {
                self.decide(slot, entry, me);
            }
            self.advance();
        }
        self.broadcast_accepts();
        self.prepare_uncovered_members();
        self.flush_reads();
        self.release_reads();
    }

    /// Assigns values to slots while the window, the pipeline and the phase-1
    /// coverage allow. Returns slots decided by the leader's own vote alone.
    fn fill_slots(&mut self) -> Vec<(Slot, Entry)> {
        let quorum_of_one = self.quorum_of_one();
        let catchup_commit_bug = self.catchup_commit_bug();
        let mut decided = Vec::new();
        let Some(views) = self.views.as_ref() else {
            return decided;
        };
        let RoleState::Leader(leader) = &mut self.role else {
            return decided;
        };
        loop {
            let prefix = self.log.prefix();
            if leader.next_slot <= prefix {
                // Catch-up decided these slots meanwhile; followers learn them
                // the same way.
                leader.next_slot = prefix + 1;
            }
            let slot = leader.next_slot;
            if slot > prefix + self.cfg.window
                || leader.inflight.len() as u64 >= self.cfg.max_inflight_slots
            {
                break;
            }
            let view = views.at(slot);
            if !view.contains(self.cfg.id) || !view.is_quorum(&leader.promised_by) {
                break;
            }
            let known = self.log.get(slot).filter(|_| !catchup_commit_bug);
            let entry = if let Some(decided) = known {
                // Known decided out of order: that value is the only one any
                // ballot may propose here.
                leader.recovered.remove(&slot);
                decided.clone()
            } else if slot <= leader.floor {
                // Decided elsewhere, value not learned yet: catch-up is due.
                break;
            } else if slot <= leader.recover_end {
                leader
                    .recovered
                    .remove(&slot)
                    .map_or(Entry::Noop, |(_, entry)| entry)
            } else if let Some(change) = leader.reconfigs.pop_front() {
                Entry::Reconfig(change)
            } else if !leader.queue.is_empty() {
                leader.take_batch(self.cfg.max_batch_commands, self.cfg.max_batch_bytes)
            } else if slot <= self.pad_until {
                Entry::Noop
            } else {
                break;
            };
            leader.next_slot += 1;
            let accepted = self.acceptor.accept(leader.ballot, slot, entry.clone());
            debug_assert!(accepted, "a leader's own acceptor refused its ballot");
            self.ready.persist.accepted.push(AcceptedEntry {
                slot,
                ballot: leader.ballot,
                entry: entry.clone(),
            });
            leader.outbox.push((slot, entry.clone()));
            let acks = BTreeSet::from([self.cfg.id]);
            if view.is_quorum(&acks) || quorum_of_one {
                decided.push((slot, entry));
            } else {
                let sent = self.now;
                leader.inflight.insert(slot, InFlight { entry, acks, sent });
            }
        }
        decided
    }

    /// One `Accept` per follower carrying every slot it must see.
    fn broadcast_accepts(&mut self) {
        let Some(views) = self.views.as_ref() else {
            return;
        };
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if leader.outbox.is_empty() {
            return;
        }
        let mut per_node: BTreeMap<NodeId, Vec<(Slot, Entry)>> = BTreeMap::new();
        for (slot, entry) in leader.outbox.drain(..) {
            for member in views.at(slot).members.keys() {
                if *member != self.cfg.id {
                    per_node
                        .entry(*member)
                        .or_default()
                        .push((slot, entry.clone()));
                }
            }
        }
        let ballot = leader.ballot;
        self.send_accepts(ballot, per_node);
    }

    /// Sends each follower its slots, in `Accept`s of at most
    /// `max_message_bytes` of entries each (see `message_split`).
    fn send_accepts(&mut self, ballot: Ballot, per_node: BTreeMap<NodeId, Vec<(Slot, Entry)>>) {
        let commit = self.log.prefix();
        for (to, entries) in per_node {
            for entries in accept_parts(entries, self.cfg.max_message_bytes) {
                let accept = Accept {
                    ballot,
                    entries,
                    commit,
                };
                self.send(to, accept);
            }
        }
    }

    /// Sends `Prepare` to members of views in the window that have not
    /// promised our ballot yet (members added by a view change).
    fn prepare_uncovered_members(&mut self) {
        let members = self.window_members();
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let ballot = leader.ballot;
        let retry = u64::from(self.cfg.heartbeat_ticks);
        let mut targets = Vec::new();
        for m in members {
            if leader.promised_by.contains(&m) {
                continue;
            }
            let due = leader
                .prepare_sent
                .get(&m)
                .is_none_or(|t| self.now >= t + retry);
            if due {
                leader.prepare_sent.insert(m, self.now);
                targets.push(m);
            }
        }
        for to in targets {
            self.send(to, Prepare { ballot });
        }
    }

    pub(crate) fn on_accepted(&mut self, from: NodeId, accepted: Accepted) {
        let Accepted {
            ballot,
            ok,
            slots,
            decided,
        } = accepted;
        self.observe_ballot(ballot);
        self.note_peer_decided(from, decided);
        let quorum_of_one = self.quorum_of_one();
        if !self.answer_is_for_our_ballot(from, ballot, ok) {
            return;
        }
        let Some(views) = self.views.as_ref() else {
            return;
        };
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let mut newly_decided = Vec::new();
        for slot in slots {
            let Some(flight) = leader.inflight.get_mut(&slot) else {
                continue;
            };
            flight.acks.insert(from);
            if (views.at(slot).is_quorum(&flight.acks) || quorum_of_one)
                && let Some(flight) = leader.inflight.remove(&slot)
            {
                newly_decided.push((slot, flight.entry));
            }
        }
        if newly_decided.is_empty() {
            return;
        }
        let me = self.cfg.id;
        for (slot, entry) in newly_decided {
            self.decide(slot, entry, me);
        }
        self.advance();
    }

    pub(crate) fn on_heartbeat_ack(&mut self, from: NodeId, ack: HeartbeatAck) {
        let HeartbeatAck {
            ballot,
            ok,
            round,
            decided,
        } = ack;
        self.observe_ballot(ballot);
        self.note_peer_decided(from, decided);
        if !self.answer_is_for_our_ballot(from, ballot, ok) {
            return;
        }
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if leader.reads.on_ack(from, round) {
            self.try_complete_read_round();
        }
    }

    /// Whether an acceptor's answer supports our current ballot (recording that
    /// we heard from it). A refusal carrying a higher ballot means another
    /// candidate got past the pre-vote: step down.
    fn answer_is_for_our_ballot(&mut self, from: NodeId, ballot: Ballot, ok: bool) -> bool {
        let RoleState::Leader(leader) = &mut self.role else {
            return false;
        };
        if !ok {
            if ballot > leader.ballot {
                self.step_down();
            }
            return false;
        }
        if ballot != leader.ballot {
            return false;
        }
        leader.last_heard.insert(from, self.now);
        true
    }

    /// Heartbeats, retransmissions, and stepping down when cut off from a quorum.
    pub(crate) fn leader_tick(&mut self) {
        let heartbeat = u64::from(self.cfg.heartbeat_ticks);
        let election = u64::from(self.cfg.election_ticks);
        let prefix = self.log.prefix();
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if prefix > leader.prefix_seen.0 {
            leader.prefix_seen = (prefix, self.now);
        }
        if prefix < leader.floor && self.now >= leader.prefix_seen.1 + 4 * election {
            // The decisions below the floor cannot be learned from anyone:
            // the only node that knew them may have lost its disk. Phase 1
            // again, without it, recovers their values from the acceptors.
            self.counters.floor_unreachable_step_downs += 1;
            self.step_down();
            return;
        }
        if self.now >= leader.last_quorum_check + election {
            leader.last_quorum_check = self.now;
            let cutoff = self.now.saturating_sub(election);
            let mut alive: BTreeSet<NodeId> = leader
                .last_heard
                .iter()
                .filter(|(_, t)| **t >= cutoff)
                .map(|(id, _)| *id)
                .collect();
            alive.insert(self.cfg.id);
            if !self.window_quorum(&alive) {
                self.step_down();
                return;
            }
        }
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let read_round_stale = leader
            .reads
            .round_started_before(self.now.saturating_sub(2 * heartbeat));
        if self.now >= leader.last_heartbeat + heartbeat {
            let round = leader.reads.current_round();
            self.send_heartbeats(round);
        }
        if read_round_stale {
            self.restart_read_round();
        }
        self.retransmit_accepts(2 * heartbeat);
        self.step_down_if_removed();
    }

    /// Re-sends slots that have waited `after` ticks to the members that have
    /// not accepted them yet.
    fn retransmit_accepts(&mut self, after: u64) {
        let Some(views) = self.views.as_ref() else {
            return;
        };
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let mut per_node: BTreeMap<NodeId, Vec<(Slot, Entry)>> = BTreeMap::new();
        for (slot, flight) in leader.inflight.iter_mut() {
            if self.now < flight.sent + after {
                continue;
            }
            flight.sent = self.now;
            for member in views.at(*slot).members.keys() {
                if *member != self.cfg.id && !flight.acks.contains(member) {
                    per_node
                        .entry(*member)
                        .or_default()
                        .push((*slot, flight.entry.clone()));
                }
            }
        }
        let ballot = leader.ballot;
        self.send_accepts(ballot, per_node);
    }

    pub(crate) fn send_heartbeats(&mut self, round: u64) {
        let members = self.window_members();
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        leader.last_heartbeat = self.now;
        let ballot = leader.ballot;
        let commit = self.log.prefix();
        for to in members {
            self.send(
                to,
                Heartbeat {
                    ballot,
                    commit,
                    round,
                },
            );
        }
    }

    /// After the prefix moved: grant reads that waited for execution, and step
    /// down if removed.
    pub(crate) fn leader_after_advance(&mut self) {
        if !self.is_leader() {
            return;
        }
        self.release_reads();
        self.step_down_if_removed();
    }

    /// Called before a decision learned from a peer (not from this leader's
    /// own quorum) is recorded. A leader advertises its decided prefix as its
    /// commit point, and a follower takes that to mean "the value I accepted
    /// under this ballot is decided" for every slot up to it. That holds only
    /// while the leader's own proposals are the decided values. A peer's
    /// decision that differs from what this leader proposed in the slot means a
    /// higher ballot chose there: the leader steps down before its commit
    /// point can cover the slot.
    pub(crate) fn before_learning_as_leader(&mut self, slot: Slot, entry: &Entry) {
        let keep_leading = self.catchup_commit_bug();
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        self.counters.decisions_learned_while_leading += 1;
        if slot >= leader.first_slot && slot < leader.next_slot {
            self.counters.decisions_learned_over_proposals += 1;
        }
        let conflicts = leader
            .inflight
            .get(&slot)
            .is_some_and(|f| f.entry != *entry);
        if conflicts {
            self.counters.superseded_leaderships += 1;
            if !keep_leading {
                self.step_down();
            }
        }
    }

    /// Called before a snapshot from a peer is installed: it may cover slots
    /// this leader proposed in, whose decided values it cannot compare with
    /// its proposals, so the leader steps down (see
    /// [`before_learning_as_leader`](Self::before_learning_as_leader)).
    pub(crate) fn before_installing_as_leader(&mut self, snapshot_slot: Slot) {
        let keep_leading = self.catchup_commit_bug();
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let covers_proposals =
            leader.next_slot > leader.first_slot && snapshot_slot >= leader.first_slot;
        if covers_proposals {
            self.counters.superseded_leaderships += 1;
            if !keep_leading {
                self.step_down();
            }
        }
    }

    fn catchup_commit_bug(&self) -> bool {
        #[cfg(feature = "bug-injection")]
        {
            self.cfg.bug(crate::config::InjectedBug::CatchupCommit)
        }
        #[cfg(not(feature = "bug-injection"))]
        {
            false
        }
    }

    /// A leader whose next slot belongs to a view without it can propose
    /// nothing more: once its slots in flight are decided it steps down, so the
    /// members elect a leader among themselves (who recovers any value this one
    /// still held through phase 1).
    pub(crate) fn step_down_if_removed(&mut self) {
        let Some(views) = self.views.as_ref() else {
            return;
        };
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let removed = !views.at(leader.next_slot).contains(self.cfg.id);
        if removed && leader.inflight.is_empty() {
            self.step_down();
        }
    }
}
