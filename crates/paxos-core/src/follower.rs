//! The acceptor and learner side of the protocol: answering `Prepare`,
//! `Accept` and `Heartbeat`, and learning decisions from commit points.

use crate::message::{Accept, Accepted, AcceptedEntry, Heartbeat, HeartbeatAck, Prepare, Promise};
use crate::message_split::promise_parts;
use crate::node::{Node, RoleState};
use crate::types::{Ballot, NUMBER_MAX, NodeId, Slot};

impl Node {
    /// Phase 1b. A node that heard from a live leader within the election
    /// timeout refuses to promise a different candidate ("leader stickiness"):
    /// a node that was partitioned away and comes back with a high ballot
    /// cannot depose a healthy leader. Refusing is always safe; it only delays.
    pub(crate) fn on_prepare(&mut self, from: NodeId, prepare: Prepare) {
        let Prepare { ballot } = prepare;
        self.observe_ballot(ballot);
        let promised = self.acceptor.promised();
        let refuse =
            ballot < promised || (ballot > promised && self.has_live_leader_other_than(from));
        if refuse {
            let decided = self.log.prefix();
            let refusal = Promise {
                ballot: promised,
                ok: false,
                decided,
                accepted: Vec::new(),
                first: decided.saturating_add(1).min(NUMBER_MAX),
                last: NUMBER_MAX,
            };
            self.send(from, refusal);
            return;
        }
        self.raise_promise(ballot);
        if ballot.leader != self.cfg.id && !matches!(self.role, RoleState::Follower) {
            self.step_down();
        }
        // A vote given resets our own election timer, so we do not compete.
        self.reset_election_timer();
        // A large report travels in parts (see `message_split`).
        let decided = self.log.prefix();
        let report = self.acceptor.accepted_after(decided);
        for part in promise_parts(decided, report, self.cfg.max_message_bytes) {
            let promise = Promise {
                ballot,
                ok: true,
                decided,
                accepted: part.accepted,
                first: part.first,
                last: part.last,
            };
            self.send(from, promise);
        }
    }

    pub(crate) fn has_live_leader_other_than(&self, candidate: NodeId) -> bool {
        if self.is_leader() {
            return true;
        }
        let recent = self
            .last_leader_contact
            .is_some_and(|t| self.now < t + u64::from(self.cfg.election_ticks));
        recent && self.leader_hint.is_some_and(|l| l != candidate)
    }

    /// Phase 2b.
    pub(crate) fn on_accept(&mut self, from: NodeId, accept: Accept) {
        let Accept {
            ballot,
            entries,
            commit,
        } = accept;
        if !self.follow(ballot) {
            let refusal = Accepted {
                ballot: self.acceptor.promised(),
                ok: false,
                slots: Vec::new(),
                decided: self.log.prefix(),
            };
            self.send(from, refusal);
            return;
        }
        let ack_decided_blindly = self.ack_decided_without_compare();
        let mut slots = Vec::with_capacity(entries.len());
        for (slot, entry) in entries {
            if self.log.is_decided(slot) {
                // A leader that proposes the decided value may count this node:
                // it holds that value for good. A different value (or one we can
                // no longer compare, compacted into a snapshot) means the leader
                // is behind a higher ballot; an acknowledgement would let it
                // decide a second value with our vote.
                if ack_decided_blindly || self.log.get(slot) == Some(&entry) {
                    slots.push(slot);
                }
                continue;
            }
            slots.push(slot);
            if self.acceptor.accept(ballot, slot, entry.clone()) {
                self.ready.persist.accepted.push(AcceptedEntry {
                    slot,
                    ballot,
                    entry,
                });
            }
        }
        let accepted = Accepted {
            ballot,
            ok: true,
            slots,
            decided: self.log.prefix(),
        };
        self.send(from, accepted);
        self.note_peer_decided(from, commit);
        self.learn_commit(ballot, commit);
    }

    /// Leader liveness and commit point; also a read-confirmation round.
    pub(crate) fn on_heartbeat(&mut self, from: NodeId, heartbeat: Heartbeat) {
        let Heartbeat {
            ballot,
            commit,
            round,
        } = heartbeat;
        let ok = self.follow(ballot);
        if ok {
            // The leader has decided everything up to its commit point: it is a
            // catch-up source even if we never heard from it otherwise.
            self.note_peer_decided(from, commit);
            self.learn_commit(ballot, commit);
        }
        let ack = HeartbeatAck {
            ballot: self.acceptor.promised(),
            ok,
            round,
            decided: self.log.prefix(),
        };
        self.send(from, ack);
    }

    fn ack_decided_without_compare(&self) -> bool {
        #[cfg(feature = "bug-injection")]
        {
            self.cfg
                .bug(crate::config::InjectedBug::AckDecidedWithoutCompare)
        }
        #[cfg(not(feature = "bug-injection"))]
        {
            false
        }
    }

    /// Follows the leader of `ballot` if no higher ballot was promised.
    fn follow(&mut self, ballot: Ballot) -> bool {
        if ballot.leader == self.cfg.id {
            // Only this node speaks for its own ballots; another node sending
            // one (a forger, or our own ballot from an earlier life echoed
            // back) is never followed, and its commit point never learned.
            return false;
        }
        if !self.raise_promise(ballot) {
            return false;
        }
        if !matches!(self.role, RoleState::Follower) {
            // A leader of an equal-or-higher ballot is active; ours is dead.
            self.step_down();
        }
        self.leader_hint = Some(ballot.leader);
        self.last_leader_contact = Some(self.now);
        self.reset_election_timer();
        true
    }

    /// Learns that every slot up to `commit` is decided. A slot we accepted
    /// under the same ballot holds the decided value (a leader proposes one
    /// value per slot per ballot); any other gap is filled by catch-up.
    pub(crate) fn learn_commit(&mut self, ballot: Ballot, commit: Slot) {
        self.known_commit = self.known_commit.max(commit);
        if ballot > self.commit_seen.0 {
            self.commit_seen = (ballot, commit);
        } else if ballot == self.commit_seen.0 {
            self.commit_seen.1 = self.commit_seen.1.max(commit);
        }
        let (b, c) = self.commit_seen;
        let slots = self
            .acceptor
            .slots_accepted_under(b, self.log.prefix() + 1, c);
        for slot in slots {
            if let Some((_, entry)) = self.acceptor.get(slot) {
                let entry = entry.clone();
                self.decide(slot, entry, b.leader);
            }
        }
        self.advance();
    }
}
