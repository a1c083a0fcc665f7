//! Views: which nodes form the quorums for which slots.
//!
//! A view change decided in slot `s` governs slots from `s + window` on (PMMC's
//! α). A leader may only propose in slot `t` once every slot up to `t - window`
//! is decided, so it always knows the view of every slot it proposes in, and
//! every node derives the same view for every slot from the same log.
//!
//! ```text
//! slot:    1 ........ s ......... s+window ........
//! view:    V0 ───────────────────┤ V1 ──────────────
//!                     ▲ Reconfig decided here
//! ```

use crate::entry::{Member, Reconfig};
use crate::types::{NUMBER_MAX, NodeId, Slot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The set of members that governs a run of slots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Increases by one with every effective view change.
    pub epoch: u64,
    /// The first slot this view governs.
    pub first_slot: Slot,
    /// Members and their addresses.
    pub members: BTreeMap<NodeId, String>,
}

impl View {
    /// Votes needed for a quorum: a strict majority.
    pub fn quorum_size(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: NodeId) -> bool {
        self.members.contains_key(&id)
    }

    /// Whether the given voters include a majority of this view's members.
    pub fn is_quorum<'a>(&self, voters: impl IntoIterator<Item = &'a NodeId>) -> bool {
        let votes = voters.into_iter().filter(|id| self.contains(**id)).count();
        votes >= self.quorum_size()
    }
}

/// The views in force from some slot on, ordered by `first_slot`. Never empty.
///
/// A history that arrives from a peer (in a catch-up reply or a snapshot) is
/// checked as it is decoded: an empty list, views out of order, a view without
/// members or a member with id 0 fail deserialization, so no malformed history
/// ever reaches a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedViewHistory")]
pub struct ViewHistory {
    views: Vec<View>,
}

/// The wire form of a [`ViewHistory`], before its invariants are checked.
#[derive(Deserialize)]
struct UncheckedViewHistory {
    views: Vec<View>,
}

impl TryFrom<UncheckedViewHistory> for ViewHistory {
    type Error = &'static str;

    fn try_from(raw: UncheckedViewHistory) -> Result<Self, Self::Error> {
        let Some(first) = raw.views.first() else {
            return Err("a view history needs at least one view");
        };
        if first.first_slot == 0 {
            return Err("views govern slots from 1 on");
        }
        for v in &raw.views {
            if v.members.is_empty() {
                return Err("a view needs at least one member");
            }
            if v.members.contains_key(&NodeId(0)) {
                return Err("node id 0 is reserved");
            }
            if v.first_slot > NUMBER_MAX || v.epoch > NUMBER_MAX {
                return Err("a view's slot or epoch is out of range");
            }
        }
        let ordered = raw
            .views
            .windows(2)
            .all(|w| w[0].first_slot < w[1].first_slot && w[0].epoch < w[1].epoch);
        if !ordered {
            return Err("views must be in increasing slot and epoch order");
        }
        Ok(ViewHistory { views: raw.views })
    }
}

impl ViewHistory {
    /// The founding view, governing slots from 1 on.
    pub fn genesis(members: &[Member]) -> Self {
        let view = View {
            epoch: 0,
            first_slot: 1,
            members: members.iter().map(|m| (m.id, m.addr.clone())).collect(),
        };
        ViewHistory { views: vec![view] }
    }

    /// The view that governs `slot`.
    pub fn at(&self, slot: Slot) -> &View {
        let idx = self.views.partition_point(|v| v.first_slot <= slot);
        // The first view is never after any slot we ask about once pruned correctly;
        // fall back to it rather than panic.
        &self.views[idx.saturating_sub(1)]
    }

    /// The most recently decided view (possibly not yet in force).
    pub fn latest(&self) -> &View {
        // Invariant: `views` is never empty.
        &self.views[self.views.len() - 1]
    }

    /// Every view that governs at least one slot in `lo..=hi`.
    pub fn governing(&self, lo: Slot, hi: Slot) -> impl Iterator<Item = &View> {
        let start = self
            .views
            .partition_point(|v| v.first_slot <= lo)
            .saturating_sub(1);
        self.views[start..]
            .iter()
            .take_while(move |v| v.first_slot <= hi)
    }

    /// Applies the view change decided in `slot`; returns whether the membership
    /// changed. Must be called in slot order.
    pub fn apply(&mut self, slot: Slot, change: &Reconfig, window: u64) -> bool {
        let latest = self.latest();
        debug_assert!(slot + window > latest.first_slot || latest.epoch == 0);
        let mut members = latest.members.clone();
        let changed = match change {
            Reconfig::Add(m) => {
                use std::collections::btree_map::Entry as MapEntry;
                match members.entry(m.id) {
                    MapEntry::Occupied(_) => false,
                    MapEntry::Vacant(v) => {
                        v.insert(m.addr.clone());
                        true
                    }
                }
            }
            Reconfig::Remove(id) => members.len() > 1 && members.remove(id).is_some(),
        };
        if changed {
            let view = View {
                epoch: latest.epoch + 1,
                first_slot: slot + window,
                members,
            };
            self.views.push(view);
        }
        changed
    }

    /// The history as it stood once every slot up to `prefix` was decided: drops
    /// views created by changes decided after `prefix`.
    pub fn as_of(&self, prefix: Slot, window: u64) -> ViewHistory {
        let mut views: Vec<View> = self
            .views
            .iter()
            .enumerate()
            .filter(|(i, v)| *i == 0 || v.first_slot <= prefix + window)
            .map(|(_, v)| v.clone())
            .collect();
        if views.is_empty() {
            views.push(self.views[0].clone());
        }
        ViewHistory { views }
    }

    /// Forgets views that govern no slot after `slot`.
    pub fn prune_before(&mut self, slot: Slot) {
        let keep_from = self
            .views
            .partition_point(|v| v.first_slot <= slot + 1)
            .saturating_sub(1);
        self.views.drain(..keep_from);
    }

    /// All views, oldest first.
    pub fn views(&self) -> &[View] {
        &self.views
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64) -> Member {
        Member {
            id: NodeId(id),
            addr: format!("10.0.0.{id}:14000"),
        }
    }

    #[test]
    fn view_change_takes_effect_window_slots_after_its_slot() {
        let mut h = ViewHistory::genesis(&[member(1), member(2), member(3)]);
        assert!(h.apply(10, &Reconfig::Add(member(4)), 5));
        assert_eq!(h.at(14).members.len(), 3);
        assert_eq!(h.at(15).members.len(), 4);
        assert_eq!(h.at(15).epoch, 1);
    }

    #[test]
    fn quorum_is_a_strict_majority_of_the_view() {
        let h = ViewHistory::genesis(&[member(1), member(2), member(3), member(4)]);
        let v = h.at(1);
        assert!(!v.is_quorum(&[NodeId(1), NodeId(2)]));
        assert!(v.is_quorum(&[NodeId(1), NodeId(2), NodeId(3)]));
        // Votes from non-members do not count.
        assert!(!v.is_quorum(&[NodeId(1), NodeId(2), NodeId(9)]));
    }

    #[test]
    fn removing_the_last_member_or_a_stranger_changes_nothing() {
        let mut h = ViewHistory::genesis(&[member(1)]);
        assert!(!h.apply(1, &Reconfig::Remove(NodeId(1)), 4));
        assert!(!h.apply(2, &Reconfig::Remove(NodeId(7)), 4));
        assert!(!h.apply(3, &Reconfig::Add(member(1)), 4));
        assert_eq!(h.views().len(), 1);
    }

    #[test]
    fn as_of_drops_changes_decided_after_the_prefix() {
        let mut h = ViewHistory::genesis(&[member(1)]);
        h.apply(3, &Reconfig::Add(member(2)), 4);
        h.apply(9, &Reconfig::Add(member(3)), 4);
        let past = h.as_of(5, 4);
        assert_eq!(past.views().len(), 2);
        assert_eq!(past.latest().members.len(), 2);
    }

    #[test]
    fn prune_keeps_the_view_governing_the_next_slot() {
        let mut h = ViewHistory::genesis(&[member(1)]);
        h.apply(3, &Reconfig::Add(member(2)), 4); // first_slot 7
        h.apply(9, &Reconfig::Add(member(3)), 4); // first_slot 13
        h.prune_before(8);
        assert_eq!(h.views().len(), 2);
        assert_eq!(h.at(9).members.len(), 2);
        assert_eq!(h.at(13).members.len(), 3);
    }

    #[test]
    fn governing_lists_every_view_in_a_range() {
        let mut h = ViewHistory::genesis(&[member(1)]);
        h.apply(3, &Reconfig::Add(member(2)), 4); // 7
        h.apply(5, &Reconfig::Add(member(3)), 4); // 9
        let epochs: Vec<u64> = h.governing(6, 8).map(|v| v.epoch).collect();
        assert_eq!(epochs, vec![0, 1]);
        let epochs: Vec<u64> = h.governing(1, 100).map(|v| v.epoch).collect();
        assert_eq!(epochs, vec![0, 1, 2]);
    }
}
