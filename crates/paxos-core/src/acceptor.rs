//! The acceptor role's state: the promised ballot and the values accepted in
//! slots not yet known to be decided.

use crate::entry::Entry;
use crate::message::AcceptedEntry;
use crate::types::{Ballot, Slot};
use std::collections::BTreeMap;

/// Promised ballot plus accepted values above the decided prefix. Values of
/// slots below the prefix are forgotten here, which keeps this map bounded by
/// the leader's window while the prefix keeps up; a follower behind a gap
/// holds what it accepts above the gap until catch-up fills it.
#[derive(Debug, Default)]
pub(crate) struct Acceptor {
    promised: Ballot,
    accepted: BTreeMap<Slot, (Ballot, Entry)>,
}

impl Acceptor {
    pub(crate) fn restore(
        promised: Ballot,
        accepted: impl IntoIterator<Item = AcceptedEntry>,
    ) -> Self {
        let mut me = Acceptor {
            promised,
            accepted: BTreeMap::new(),
        };
        for a in accepted {
            // Later records of the same slot supersede earlier ones only if their
            // ballot is at least as high (the log may hold both).
            match me.accepted.get(&a.slot) {
                Some((b, _)) if *b > a.ballot => {}
                _ => {
                    me.accepted.insert(a.slot, (a.ballot, a.entry));
                }
            }
        }
        me
    }

    pub(crate) fn promised(&self) -> Ballot {
        self.promised
    }

    /// Raises the promise to `ballot` if it is at least the current one.
    /// Returns `(granted, changed)`.
    pub(crate) fn promise(&mut self, ballot: Ballot) -> (bool, bool) {
        if ballot < self.promised {
            return (false, false);
        }
        let changed = ballot > self.promised;
        self.promised = ballot;
        (true, changed)
    }

    /// Accepts `entry` in `slot` under `ballot` if no higher ballot was promised.
    /// The caller must have raised the promise first.
    pub(crate) fn accept(&mut self, ballot: Ballot, slot: Slot, entry: Entry) -> bool {
        if ballot < self.promised {
            return false;
        }
        debug_assert!(ballot == self.promised, "accept without promise");
        self.accepted.insert(slot, (ballot, entry));
        true
    }

    pub(crate) fn get(&self, slot: Slot) -> Option<&(Ballot, Entry)> {
        self.accepted.get(&slot)
    }

    /// Accepted values in slots after `slot`.
    pub(crate) fn accepted_after(&self, slot: Slot) -> Vec<AcceptedEntry> {
        self.accepted
            .range(slot + 1..)
            .map(|(s, (b, e))| AcceptedEntry {
                slot: *s,
                ballot: *b,
                entry: e.clone(),
            })
            .collect()
    }

    /// Slots in `lo..=hi` accepted under exactly `ballot`.
    pub(crate) fn slots_accepted_under(&self, ballot: Ballot, lo: Slot, hi: Slot) -> Vec<Slot> {
        if lo > hi {
            return Vec::new();
        }
        self.accepted
            .range(lo..=hi)
            .filter(|(_, (b, _))| *b == ballot)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Forgets slots up to and including `slot` (they are decided).
    pub(crate) fn forget_through(&mut self, slot: Slot) {
        self.accepted = self.accepted.split_off(&(slot + 1));
    }

    pub(crate) fn len(&self) -> usize {
        self.accepted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NodeId;

    fn b(round: u64) -> Ballot {
        Ballot {
            round,
            leader: NodeId(1),
        }
    }

    #[test]
    fn promise_never_goes_backwards() {
        let mut a = Acceptor::default();
        assert_eq!(a.promise(b(5)), (true, true));
        assert_eq!(a.promise(b(3)), (false, false));
        assert_eq!(a.promise(b(5)), (true, false));
        assert_eq!(a.promised(), b(5));
    }

    #[test]
    fn accept_is_refused_below_the_promise() {
        let mut a = Acceptor::default();
        a.promise(b(5));
        assert!(!a.accept(b(4), 1, Entry::Noop));
        assert!(a.get(1).is_none());
        assert!(a.accept(b(5), 1, Entry::Noop));
        assert_eq!(a.get(1).map(|x| x.0), Some(b(5)));
    }

    #[test]
    fn restore_keeps_the_highest_ballot_per_slot() {
        let e = |slot, round| AcceptedEntry {
            slot,
            ballot: b(round),
            entry: Entry::Noop,
        };
        let a = Acceptor::restore(b(9), vec![e(1, 3), e(1, 7), e(1, 5)]);
        assert_eq!(a.get(1).map(|x| x.0), Some(b(7)));
    }

    #[test]
    fn forget_through_drops_decided_slots_only() {
        let mut a = Acceptor::default();
        a.promise(b(1));
        for s in 1..=5 {
            a.accept(b(1), s, Entry::Noop);
        }
        a.forget_through(3);
        assert_eq!(a.len(), 2);
        assert_eq!(a.accepted_after(0).first().map(|x| x.slot), Some(4));
    }
}
