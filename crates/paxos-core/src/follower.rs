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
        // A commit point of this ballot already learned that covers a slot
        // accepted only now decides it (the slot was not there to learn then).
        let learned_through = if ballot == self.commit_seen.0 {
            self.commit_learned_through
        } else {
            0
        };
        let mut covered = Vec::new();
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
                if slot <= learned_through {
                    covered.push((slot, entry.clone()));
                }
                self.ready.persist.accepted.push(AcceptedEntry {
                    slot,
                    ballot,
                    entry,
                });
            }
        }
        for (slot, entry) in covered {
            self.decide(slot, entry, ballot.leader);
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
    /// Slots accepted under that ballot are looked up once per commit point
    /// reached, from where the last lookup stopped: a follower whose prefix
    /// is stuck below a gap while it keeps accepting would otherwise look up
    /// (and copy) every value above the gap again for each message, work
    /// quadratic in the gap's age that can starve the catch-up meant to fill it.
    pub(crate) fn learn_commit(&mut self, ballot: Ballot, commit: Slot) {
        self.known_commit = self.known_commit.max(commit);
        if ballot > self.commit_seen.0 {
            self.commit_seen = (ballot, commit);
            self.commit_learned_through = 0;
        } else if ballot == self.commit_seen.0 {
            self.commit_seen.1 = self.commit_seen.1.max(commit);
        }
        let (b, c) = self.commit_seen;
        let from = (self.log.prefix() + 1).max(self.commit_learned_through.saturating_add(1));
        let slots = self.acceptor.slots_accepted_under(b, from, c);
        if self.views.is_some() {
            // A joiner without views decides nothing yet: what it accepted
            // is looked up again once it has them.
            self.commit_learned_through = self.commit_learned_through.max(c);
        }
        #[cfg(test)]
        {
            self.commit_lookups += slots.len() as u64;
        }
        for slot in slots {
            if let Some((_, entry)) = self.acceptor.get(slot) {
                let entry = entry.clone();
                self.decide(slot, entry, b.leader);
            }
        }
        self.advance();
    }
}

#[cfg(test)]
mod tests {
    use crate::Member;
    use crate::config::Config;
    use crate::entry::{Command, Entry};
    use crate::message::{Accept, Message};
    use crate::node::Node;
    use crate::types::{Ballot, NodeId, Slot};

    const LEADER: NodeId = NodeId(1);
    const BALLOT: Ballot = Ballot {
        round: 1,
        leader: LEADER,
    };

    fn members() -> Vec<Member> {
        (1..=3)
            .map(|id| Member {
                id: NodeId(id),
                addr: format!("127.0.0.1:{id}"),
            })
            .collect()
    }

    fn follower() -> Node {
        Node::bootstrap(Config::new(NodeId(2)), &members()).expect("node")
    }

    fn accept(node: &mut Node, slot: Slot, commit: Slot) {
        let entry = Entry::Commands(vec![Command(slot.to_le_bytes().to_vec())]);
        node.step(
            LEADER,
            Message::Accept(Accept {
                ballot: BALLOT,
                entries: vec![(slot, entry)],
                commit,
            }),
        );
    }

    #[test]
    fn a_follower_behind_a_gap_learns_each_accepted_slot_from_commit_points_once() {
        let mut node = follower();
        let last: Slot = 2_000;
        // Slot 1 never arrives: the prefix stays below it while the leader
        // goes on, each message's commit point covering the slot before.
        for slot in 2..=last {
            accept(&mut node, slot, slot - 1);
        }
        assert_eq!(node.log.prefix(), 0, "the gap holds the prefix back");
        assert!((2..last).all(|s| node.log.is_decided(s)));
        assert!(
            node.commit_lookups <= 2 * last,
            "{} lookups for {last} slots: every message looked up every value above the gap again",
            node.commit_lookups
        );
    }

    #[test]
    fn a_slot_accepted_after_a_commit_point_covering_it_was_learned_is_decided() {
        let mut node = follower();
        accept(&mut node, 3, 5);
        assert!(node.log.is_decided(3));
        assert!(!node.log.is_decided(5), "not accepted yet");
        accept(&mut node, 5, 5);
        assert!(node.log.is_decided(5));
        assert!(!node.log.is_decided(4));
    }

    #[test]
    fn a_joiner_decides_slots_it_accepted_before_it_learned_the_views() {
        use crate::message::{CatchupReply, Heartbeat};
        use crate::view::ViewHistory;
        let mut node = Node::join(Config::new(NodeId(2))).expect("node");
        for slot in 1..=3 {
            accept(&mut node, slot, 3);
        }
        assert!(
            node.views.is_none(),
            "a joiner decides nothing before it has the views"
        );
        node.step(
            NodeId(3),
            Message::CatchupReply(CatchupReply {
                entries: vec![],
                views: Some(ViewHistory::genesis(&members())),
                commit: 0,
            }),
        );
        node.step(
            LEADER,
            Message::Heartbeat(Heartbeat {
                ballot: BALLOT,
                commit: 3,
                round: 0,
            }),
        );
        assert_eq!(
            node.log.prefix(),
            3,
            "values accepted under the committing ballot were never learned"
        );
    }
}
