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
use crate::message::{AcceptedEntry, Message};
use crate::node::{Node, RoleState};
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
    /// Values recovered in phase 1, re-proposed before any new command.
    pub(crate) recovered: BTreeMap<Slot, Entry>,
    pub(crate) recover_end: Slot,
    pub(crate) next_slot: Slot,
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
}

impl Leader {
    pub(crate) fn new(
        ballot: Ballot,
        promised_by: BTreeSet<NodeId>,
        recovered: BTreeMap<Slot, Entry>,
        start: Slot,
        now: u64,
    ) -> Self {
        let recover_end = recovered
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(start - 1);
        let last_heard = promised_by.iter().map(|id| (*id, now)).collect();
        Leader {
            ballot,
            promised_by,
            recovered,
            recover_end,
            next_slot: start,
            inflight: BTreeMap::new(),
            queue: VecDeque::new(),
            reconfigs: VecDeque::new(),
            outbox: Vec::new(),
            last_heard,
            prepare_sent: BTreeMap::new(),
            last_heartbeat: now,
            last_quorum_check: now,
            reads: ReadRounds::default(),
        }
    }

    /// A promise that arrived after adoption: count it, and keep what it
    /// reports for slots not yet proposed.
    pub(crate) fn on_late_promise(
        &mut self,
        from: NodeId,
        accepted: Vec<AcceptedEntry>,
        keep_lowest: bool,
        now: u64,
    ) {
        self.promised_by.insert(from);
        self.last_heard.insert(from, now);
        let next = self.next_slot;
        let mut pmax = Pmax::new();
        merge_pmax(
            &mut pmax,
            accepted.into_iter().filter(|a| a.slot >= next).collect(),
            keep_lowest,
        );
        for (slot, (_, entry)) in pmax {
            // Our own earlier recovery already holds a safe value; a later
            // promiser's report is also safe (any superset of a quorum is), so
            // the first one found is kept.
            self.recovered.entry(slot).or_insert(entry);
            self.recover_end = self.recover_end.max(slot);
        }
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
            for (slot, entry) in decided {
                self.decide(slot, entry);
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
        let mut decided = Vec::new();
        let Some(views) = self.views.as_ref() else {
            return decided;
        };
        let RoleState::Leader(leader) = &mut self.role else {
            return decided;
        };
        loop {
            let slot = leader.next_slot;
            if slot > self.log.prefix() + self.cfg.window
                || leader.inflight.len() as u64 >= self.cfg.max_inflight_slots
            {
                break;
            }
            let view = views.at(slot);
            if !view.contains(self.cfg.id) || !view.is_quorum(&leader.promised_by) {
                break;
            }
            let entry = if slot <= leader.recover_end {
                leader.recovered.remove(&slot).unwrap_or(Entry::Noop)
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

    fn send_accepts(&mut self, ballot: Ballot, per_node: BTreeMap<NodeId, Vec<(Slot, Entry)>>) {
        let commit = self.log.prefix();
        for (to, entries) in per_node {
            let msg = Message::Accept {
                ballot,
                entries,
                commit,
            };
            self.send(to, msg);
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
            self.send(to, Message::Prepare { ballot });
        }
    }

    pub(crate) fn on_accepted(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        ok: bool,
        slots: Vec<Slot>,
        decided: Slot,
    ) {
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
        for (slot, entry) in newly_decided {
            self.decide(slot, entry);
        }
        self.advance();
    }

    pub(crate) fn on_heartbeat_ack(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        ok: bool,
        round: u64,
        decided: Slot,
    ) {
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
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
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
                Message::Heartbeat {
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
