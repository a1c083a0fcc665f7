//! Phase 1: campaigning for a ballot, collecting promises, and recovering the
//! values a previous leader may have had chosen.
//!
//! Recovery rule (PMMC's `pmax`): for every slot, keep the value accepted under
//! the *highest* ballot reported by any promiser. If some value was chosen in a
//! slot, every quorum contains an acceptor that reports it, and no higher ballot
//! can carry a different value, so re-proposing the highest-ballot value is
//! safe. (The original ConCoord kept an arbitrary one.)

use crate::entry::Entry;
use crate::leader::Leader;
use crate::message::{AcceptedEntry, PreVote, PreVoteReply, Prepare, Promise};
use crate::node::{Node, RoleState};
use crate::promise_parts::{Progress, PromiseParts};
use crate::types::{Ballot, NUMBER_MAX, NodeId, Slot};
use std::collections::{BTreeMap, BTreeSet};

/// Per-slot highest-ballot accepted value reported by promisers.
pub(crate) type Pmax = BTreeMap<Slot, (Ballot, Entry)>;

/// State of a node asking whether it could win (Raft's pre-vote).
pub(crate) struct PreCandidate {
    pub(crate) ballot: Ballot,
    pub(crate) votes: BTreeSet<NodeId>,
}

/// State of a node running phase 1.
pub(crate) struct Candidate {
    pub(crate) ballot: Ballot,
    pub(crate) promises: BTreeSet<NodeId>,
    pub(crate) pmax: Pmax,
    /// Highest decided prefix reported by a promiser, and who reported it:
    /// slots up to here are decided and must be learned, never re-proposed.
    pub(crate) floor: Slot,
    pub(crate) floor_holder: NodeId,
    pub(crate) last_prepare: u64,
    /// Promises whose parts have not all arrived yet.
    pub(crate) parts: PromiseParts,
}

/// Merges reported accepted values into `pmax`, keeping the highest ballot per slot.
pub(crate) fn merge_pmax(pmax: &mut Pmax, reported: Vec<AcceptedEntry>, keep_lowest: bool) {
    for a in reported {
        let replace = match pmax.get(&a.slot) {
            None => true,
            Some((b, _)) if keep_lowest => a.ballot < *b,
            Some((b, _)) => a.ballot > *b,
        };
        if replace {
            pmax.insert(a.slot, (a.ballot, a.entry));
        }
    }
}

impl Node {
    fn late_promise_first_value(&self) -> bool {
        #[cfg(feature = "bug-injection")]
        {
            self.cfg
                .bug(crate::config::InjectedBug::LatePromiseFirstValue)
        }
        #[cfg(not(feature = "bug-injection"))]
        {
            false
        }
    }

    /// Counts a promise at its first part (the injected bug), or once all
    /// its parts arrived.
    fn promise_counts(&mut self, progress: Progress) -> bool {
        if progress == Progress::Assembled {
            self.counters.promises_assembled += 1;
        }
        #[cfg(feature = "bug-injection")]
        if self
            .cfg
            .bug(crate::config::InjectedBug::PromiseCountedAtFirstPart)
        {
            return true;
        }
        progress.is_complete()
    }

    fn keep_lowest_ballot(&self) -> bool {
        #[cfg(feature = "bug-injection")]
        {
            self.cfg
                .bug(crate::config::InjectedBug::LowestBallotRecovery)
        }
        #[cfg(not(feature = "bug-injection"))]
        {
            false
        }
    }

    /// The ballot to campaign with next: above every ballot seen. `None` once
    /// that would leave the range peers accept ([`NUMBER_MAX`]): only a
    /// faulty peer can have pushed rounds that far, and a ballot every peer
    /// refuses as malformed wins nothing, so the node sends none and stays a
    /// follower (counted in `Counters::ballots_exhausted`).
    fn next_ballot(&mut self) -> Option<Ballot> {
        let ballot = self
            .highest_seen
            .max(self.acceptor.promised())
            .next_for(self.cfg.id);
        if ballot.round > NUMBER_MAX {
            self.counters.ballots_exhausted += 1;
            return None;
        }
        Some(ballot)
    }

    /// Asks the members whether they would promise a new ballot. Only when a
    /// quorum says yes does the node raise its ballot and run phase 1.
    pub(crate) fn start_pre_vote(&mut self) {
        let Some(ballot) = self.next_ballot() else {
            self.step_down();
            return;
        };
        self.leader_hint = None;
        self.role = RoleState::PreCandidate(PreCandidate {
            ballot,
            votes: BTreeSet::from([self.cfg.id]),
        });
        self.reset_election_timer();
        let decided = self.log.prefix();
        for to in self.window_members() {
            self.send(to, PreVote { ballot, decided });
        }
        self.maybe_campaign_after_pre_vote();
    }

    pub(crate) fn on_pre_vote(&mut self, from: NodeId, pre_vote: PreVote) {
        let PreVote { ballot, decided } = pre_vote;
        self.note_peer_decided(from, decided);
        let ok = ballot > self.acceptor.promised() && !self.has_live_leader_other_than(from);
        let reply = PreVoteReply {
            ballot,
            ok,
            promised: self.acceptor.promised(),
            decided: self.log.prefix(),
        };
        self.send(from, reply);
    }

    pub(crate) fn on_pre_vote_reply(&mut self, from: NodeId, reply: PreVoteReply) {
        self.note_peer_decided(from, reply.decided);
        self.observe_ballot(reply.promised);
        if let RoleState::PreCandidate(p) = &mut self.role
            && reply.ok
            && p.ballot == reply.ballot
        {
            p.votes.insert(from);
            self.maybe_campaign_after_pre_vote();
        }
    }

    fn maybe_campaign_after_pre_vote(&mut self) {
        if let RoleState::PreCandidate(p) = &self.role
            && self.window_quorum(&p.votes)
        {
            self.campaign();
        }
    }

    /// Starts phase 1 with a ballot above every ballot seen so far.
    pub(crate) fn campaign(&mut self) {
        let Some(ballot) = self.next_ballot() else {
            self.step_down();
            return;
        };
        if let RoleState::Leader(_) = self.role {
            self.step_down();
        }
        self.raise_promise(ballot);
        self.leader_hint = None;
        let mut pmax = Pmax::new();
        merge_pmax(
            &mut pmax,
            self.acceptor.accepted_after(self.log.prefix()),
            false,
        );
        self.role = RoleState::Candidate(Candidate {
            ballot,
            promises: BTreeSet::from([self.cfg.id]),
            pmax,
            floor: self.log.prefix(),
            floor_holder: self.cfg.id,
            last_prepare: self.now,
            parts: PromiseParts::default(),
        });
        self.reset_election_timer();
        for to in self.window_members() {
            self.send(to, Prepare { ballot });
        }
        self.maybe_adopt();
    }

    pub(crate) fn candidate_tick(&mut self) {
        if self.now >= self.election_due {
            // No quorum in time (lost messages, a competing candidate, or we are
            // cut off): start over from the pre-vote after a fresh random timeout.
            if self.may_campaign() {
                self.start_pre_vote();
            } else {
                self.step_down();
            }
            return;
        }
        let members = self.window_members();
        let RoleState::Candidate(c) = &mut self.role else {
            return;
        };
        if self.now >= c.last_prepare + u64::from(self.cfg.heartbeat_ticks) {
            c.last_prepare = self.now;
            let ballot = c.ballot;
            let missing: Vec<NodeId> = members
                .into_iter()
                .filter(|m| !c.promises.contains(m))
                .collect();
            for to in missing {
                self.send(to, Prepare { ballot });
            }
        }
    }

    /// A promise, or one part of it: what it reports is merged at once, and
    /// the promise counts once all its parts arrived (see `promise_parts`).
    pub(crate) fn on_promise(&mut self, from: NodeId, part: Promise) {
        let Promise {
            ballot,
            ok,
            decided,
            accepted,
            first,
            last,
        } = part;
        self.observe_ballot(ballot);
        self.note_peer_decided(from, decided);
        let keep_lowest = self.keep_lowest_ballot();
        let first_value = self.late_promise_first_value();
        match &mut self.role {
            RoleState::Candidate(c) if ok && ballot == c.ballot => {
                merge_pmax(&mut c.pmax, accepted, keep_lowest);
                if decided > c.floor {
                    c.floor = decided;
                    c.floor_holder = from;
                }
                let progress = c.parts.record(from, decided, first, last);
                if self.promise_counts(progress)
                    && let RoleState::Candidate(c) = &mut self.role
                {
                    c.promises.insert(from);
                    self.maybe_adopt();
                }
            }
            RoleState::Candidate(c) if !ok && ballot > c.ballot => self.step_down(),
            RoleState::Leader(l) if ok && ballot == l.ballot => {
                // A late promise, e.g. from a member of a newly decided view.
                let informative =
                    decided >= l.next_slot || accepted.iter().any(|a| a.slot >= l.next_slot);
                let progress = l.parts.record(from, decided, first, last);
                let complete = self.promise_counts(progress);
                let now = self.now;
                if let RoleState::Leader(l) = &mut self.role {
                    l.on_late_promise(from, decided, accepted, first_value, complete, now);
                }
                self.counters.late_promises += 1;
                if informative {
                    self.counters.late_promises_informative += 1;
                }
            }
            RoleState::Leader(l) if !ok && ballot > l.ballot => self.step_down(),
            _ => {}
        }
    }

    /// Becomes leader once promises cover a majority of every view in the window.
    fn maybe_adopt(&mut self) {
        let RoleState::Candidate(c) = &self.role else {
            return;
        };
        if !self.window_quorum(&c.promises) {
            return;
        }
        let RoleState::Candidate(c) = std::mem::replace(&mut self.role, RoleState::Follower) else {
            return;
        };
        let start = c.floor.max(self.log.prefix()) + 1;
        let recovered: Pmax = c
            .pmax
            .into_iter()
            .filter(|(slot, _)| *slot >= start)
            .collect();
        // Decisions already known beyond the prefix are proposed as decided
        // (see `fill_slots`); the slots before them are recovered or padded.
        let recover_end = recovered
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.log.last_slot())
            .max(start - 1);
        let mut leader = Leader::new(
            c.ballot,
            c.promises,
            recovered,
            start,
            recover_end,
            c.floor,
            self.now,
        );
        // Promises still arriving in parts complete after the election.
        leader.parts = c.parts;
        self.counters.elections_won += 1;
        if c.floor > self.log.prefix() {
            // Others decided slots we have not learned: fetch them first.
            self.known_commit = self.known_commit.max(c.floor);
            self.note_peer_decided(c.floor_holder, c.floor);
            self.last_catchup_request = None;
        }
        self.role = RoleState::Leader(Box::new(leader));
        self.leader_hint = Some(self.cfg.id);
        self.send_heartbeats(0);
    }

    /// Remembers how far a peer has decided: it is a catch-up source, and we
    /// are behind if it is ahead of us.
    pub(crate) fn note_peer_decided(&mut self, peer: NodeId, decided: Slot) {
        if peer == self.cfg.id {
            return;
        }
        let known = self.peer_decided.entry(peer).or_insert(0);
        *known = (*known).max(decided);
        self.known_commit = self.known_commit.max(decided);
    }
}
