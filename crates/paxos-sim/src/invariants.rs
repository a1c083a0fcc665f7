//! The safety invariants of Multi-Paxos, checked online from what every node
//! persists and sends — not only their consequence (two nodes deciding
//! different values), which a run reaches only if the schedule goes on to
//! exercise it. A broken rule is reported the moment a node acts on it:
//!
//! * **Agreement**: no slot is decided with two values.
//! * **Only chosen values are decided** (PMMC's learner invariant): a node
//!   decides `v` in slot `s` only if a quorum of the view governing `s`
//!   accepted `v` under one ballot.
//! * **A chosen value is never overwritten** (Paxos' P2b): once `v` is chosen
//!   in `s` under ballot `b`, every value proposed in `s` under a higher ballot
//!   is `v`.
//! * **Commit points are sound**: a leader's commit point `c` under ballot `b`
//!   tells followers "every value you accepted under `b` in a slot up to `c` is
//!   decided", so for every slot up to `c` in which the leader proposed under
//!   `b`, its proposal must be the decided value.
//!
//! Acceptances are read from `Ready::persist.accepted` (an acceptor persists
//! before it acknowledges), proposals are a leader's acceptances of its own
//! ballot, and views come from the decided reconfigurations in slot order.

use crate::outcome::Violation;
use crate::state_machine::entry_hash;
use paxos_core::{AcceptedEntry, Ballot, Entry, Member, NodeId, Reconfig, Slot, ViewHistory};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) struct Invariants {
    window: u64,
    /// Views as decided so far, applied in slot order up to `prefix`.
    views: ViewHistory,
    /// Every slot up to here is decided somewhere in the cluster.
    prefix: Slot,
    /// The value decided in each slot (hash), by whichever node decided first.
    decided: BTreeMap<Slot, u64>,
    /// Decided view changes not yet applied to `views`.
    reconfigs: BTreeMap<Slot, Reconfig>,
    /// Per slot, per (ballot, value): the acceptors that accepted it.
    votes: BTreeMap<Slot, BTreeMap<(Ballot, u64), BTreeSet<NodeId>>>,
    /// Per slot: the lowest ballot a value was chosen under, and the value.
    chosen: BTreeMap<Slot, (Ballot, u64)>,
    /// Per slot, per ballot: what that ballot's leader proposed.
    proposals: BTreeMap<Slot, BTreeMap<Ballot, u64>>,
    /// Per leader ballot: the commit point already checked.
    commit_checked: BTreeMap<Ballot, Slot>,
    /// Decisions whose slot's view is not known yet (slot, value, node).
    unverified: Vec<(Slot, u64, NodeId)>,
}

impl Invariants {
    pub(crate) fn new(founders: &[Member], window: u64) -> Self {
        Invariants {
            window,
            views: ViewHistory::genesis(founders),
            prefix: 0,
            decided: BTreeMap::new(),
            reconfigs: BTreeMap::new(),
            votes: BTreeMap::new(),
            chosen: BTreeMap::new(),
            proposals: BTreeMap::new(),
            commit_checked: BTreeMap::new(),
            unverified: Vec::new(),
        }
    }

    /// The highest slot decided anywhere.
    pub(crate) fn last_decided(&self) -> Slot {
        self.decided.keys().next_back().copied().unwrap_or(0)
    }

    /// Whether the view governing `slot` is settled (every view change that
    /// could govern it is decided and applied).
    fn view_known(&self, slot: Slot) -> bool {
        slot <= self.prefix + self.window
    }

    /// `node` persisted that it accepted `a`.
    pub(crate) fn on_accepted(&mut self, node: NodeId, a: &AcceptedEntry) -> Vec<Violation> {
        let value = entry_hash(&a.entry);
        self.votes
            .entry(a.slot)
            .or_default()
            .entry((a.ballot, value))
            .or_default()
            .insert(node);
        let mut violations = Vec::new();
        if a.ballot.leader == node {
            self.proposals
                .entry(a.slot)
                .or_default()
                .insert(a.ballot, value);
            violations.extend(self.check_proposals_against_chosen(a.slot));
        }
        violations.extend(self.update_chosen(a.slot));
        violations
    }

    /// `node` persisted that `entry` is decided in `slot`.
    pub(crate) fn on_decided(&mut self, node: NodeId, slot: Slot, entry: &Entry) -> Vec<Violation> {
        let value = entry_hash(entry);
        let mut violations = Vec::new();
        if *self.decided.entry(slot).or_insert(value) != value {
            violations.push(Violation::Agreement { slot, node });
        }
        if let Entry::Reconfig(change) = entry {
            self.reconfigs.insert(slot, change.clone());
        }
        self.unverified.push((slot, value, node));
        violations.extend(self.advance());
        violations.extend(self.verify_decisions());
        violations
    }

    /// A leader sent commit point `commit` under its `ballot`.
    pub(crate) fn on_commit_sent(&mut self, ballot: Ballot, commit: Slot) -> Vec<Violation> {
        let checked = self.commit_checked.get(&ballot).copied().unwrap_or(0);
        if commit <= checked {
            return Vec::new();
        }
        self.commit_checked.insert(ballot, commit);
        let mut violations = Vec::new();
        for (slot, by_ballot) in self.proposals.range(checked + 1..=commit) {
            if let (Some(proposed), Some(decided)) =
                (by_ballot.get(&ballot), self.decided.get(slot))
                && proposed != decided
            {
                violations.push(Violation::UnsafeCommitPoint {
                    leader: ballot.leader,
                    slot: *slot,
                });
            }
        }
        violations
    }

    /// Applies decided view changes in slot order; slots whose view becomes
    /// known are re-examined.
    fn advance(&mut self) -> Vec<Violation> {
        let before = self.prefix;
        while self.decided.contains_key(&(self.prefix + 1)) {
            self.prefix += 1;
            if let Some(change) = self.reconfigs.remove(&self.prefix) {
                self.views.apply(self.prefix, &change, self.window);
            }
        }
        if self.prefix == before {
            return Vec::new();
        }
        let newly_known = before + self.window + 1..=self.prefix + self.window;
        let slots: Vec<Slot> = self.votes.range(newly_known).map(|(s, _)| *s).collect();
        slots
            .into_iter()
            .flat_map(|slot| self.update_chosen(slot))
            .collect()
    }

    /// Whether some value was chosen in `slot` (a quorum of its view accepted
    /// it under one ballot); checks proposals against it when first found.
    fn update_chosen(&mut self, slot: Slot) -> Vec<Violation> {
        if !self.view_known(slot) {
            return Vec::new();
        }
        let view = self.views.at(slot);
        let lowest = self.votes.get(&slot).and_then(|by_value| {
            by_value
                .iter()
                .find(|(_, voters)| view.is_quorum(voters.iter()))
                .map(|((ballot, value), _)| (*ballot, *value))
        });
        let Some((ballot, value)) = lowest else {
            return Vec::new();
        };
        let known = self.chosen.get(&slot).copied();
        match known {
            Some((b, _)) if b <= ballot => Vec::new(),
            _ => {
                self.chosen.insert(slot, (ballot, value));
                self.check_proposals_against_chosen(slot)
            }
        }
    }

    /// P2b: every proposal in `slot` above the ballot its value was chosen
    /// under carries that value.
    fn check_proposals_against_chosen(&self, slot: Slot) -> Vec<Violation> {
        let (Some((chosen_ballot, chosen)), Some(by_ballot)) =
            (self.chosen.get(&slot), self.proposals.get(&slot))
        else {
            return Vec::new();
        };
        by_ballot
            .range(*chosen_ballot..)
            .filter(|(ballot, value)| *ballot > chosen_ballot && *value != chosen)
            .map(|(ballot, _)| Violation::ChosenValueOverwritten {
                slot,
                ballot: *ballot,
            })
            .collect()
    }

    /// Decisions must be of chosen values; checked once the slot's view is
    /// known.
    fn verify_decisions(&mut self) -> Vec<Violation> {
        let mut violations = Vec::new();
        let pending = std::mem::take(&mut self.unverified);
        for (slot, value, node) in pending {
            if !self.view_known(slot) {
                self.unverified.push((slot, value, node));
                continue;
            }
            let view = self.views.at(slot);
            let chosen = self.votes.get(&slot).is_some_and(|by_value| {
                by_value
                    .iter()
                    .any(|((_, v), voters)| *v == value && view.is_quorum(voters.iter()))
            });
            if !chosen {
                violations.push(Violation::DecidedUnchosen { slot, node });
            }
        }
        violations
    }
}
