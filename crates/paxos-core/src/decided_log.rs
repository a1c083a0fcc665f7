//! Decided values above the last snapshot, and the contiguous decided prefix.

use crate::entry::Entry;
use crate::types::Slot;
use std::collections::BTreeMap;

/// Outcome of recording a decision.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// A new decision.
    New,
    /// Already known (same value), or below the snapshot.
    Known,
    /// Already decided with a *different* value: agreement is broken.
    Conflict,
}

/// The decided part of the log kept in memory. Slots at or below `base` were
/// compacted into a snapshot; every slot up to `prefix` is decided.
#[derive(Debug, Default)]
pub(crate) struct DecidedLog {
    entries: BTreeMap<Slot, Entry>,
    base: Slot,
    prefix: Slot,
    /// Bytes (by `Entry::size_bytes`) of the entries held up to `prefix`:
    /// what a compaction can free.
    bytes_to_prefix: usize,
}

impl DecidedLog {
    pub(crate) fn prefix(&self) -> Slot {
        self.prefix
    }

    pub(crate) fn base(&self) -> Slot {
        self.base
    }

    pub(crate) fn get(&self, slot: Slot) -> Option<&Entry> {
        self.entries.get(&slot)
    }

    /// The highest slot known decided (the prefix, or a later slot decided
    /// out of order).
    pub(crate) fn last_slot(&self) -> Slot {
        self.entries
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.prefix)
    }

    pub(crate) fn is_decided(&self, slot: Slot) -> bool {
        slot <= self.base || self.entries.contains_key(&slot)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of the entries held up to the prefix.
    pub(crate) fn bytes_to_prefix(&self) -> usize {
        self.bytes_to_prefix
    }

    fn count_bytes_to_prefix(&mut self) {
        self.bytes_to_prefix = self
            .entries
            .range(..=self.prefix)
            .map(|(_, e)| e.size_bytes())
            .sum();
    }

    /// Records that `entry` was decided in `slot`.
    pub(crate) fn record(&mut self, slot: Slot, entry: Entry) -> Recorded {
        if slot <= self.base {
            return Recorded::Known;
        }
        match self.entries.get(&slot) {
            Some(known) if *known == entry => Recorded::Known,
            Some(_) => Recorded::Conflict,
            None => {
                self.entries.insert(slot, entry);
                Recorded::New
            }
        }
    }

    /// Moves the prefix over newly contiguous decisions and returns their slots.
    pub(crate) fn advance(&mut self) -> std::ops::RangeInclusive<Slot> {
        let first = self.prefix + 1;
        while let Some(entry) = self.entries.get(&(self.prefix + 1)) {
            self.bytes_to_prefix += entry.size_bytes();
            self.prefix += 1;
        }
        first..=self.prefix
    }

    /// Whether the entries from `from` on are still held (not compacted away).
    pub(crate) fn holds_from(&self, from: Slot) -> bool {
        from > self.base || self.entries.contains_key(&from)
    }

    /// Up to `max_entries` / `max_bytes` decided entries, contiguous from `from`.
    pub(crate) fn contiguous_from(
        &self,
        from: Slot,
        max_entries: usize,
        max_bytes: usize,
    ) -> Vec<(Slot, Entry)> {
        let mut out = Vec::new();
        if from > self.prefix {
            return out;
        }
        let mut bytes = 0;
        for (slot, entry) in self.entries.range(from..=self.prefix) {
            if out.len() >= max_entries || (bytes > 0 && bytes + entry.size_bytes() > max_bytes) {
                break;
            }
            bytes += entry.size_bytes();
            out.push((*slot, entry.clone()));
        }
        out
    }

    /// Marks everything up to `slot` as covered by a snapshot, and drops the
    /// entries at or below it but the last `retain` of them, and of those no
    /// more than `retain_bytes`: entries just below the snapshot let a peer
    /// that installed a slightly older snapshot catch up from the log instead
    /// of needing another snapshot.
    pub(crate) fn compact(&mut self, slot: Slot, retain: u64, retain_bytes: usize) {
        debug_assert!(slot <= self.prefix);
        let above = self.entries.split_off(&(slot + 1));
        let mut kept_from = slot + 1;
        let mut bytes = 0;
        for (s, entry) in self.entries.iter().rev() {
            if slot - s >= retain || bytes + entry.size_bytes() > retain_bytes {
                break;
            }
            bytes += entry.size_bytes();
            kept_from = *s;
        }
        self.entries = self.entries.split_off(&kept_from);
        self.entries.extend(above);
        self.base = self.base.max(slot);
        self.count_bytes_to_prefix();
    }

    /// Jumps to a snapshot at `slot` received from a peer: everything up to it is
    /// decided. Returns nothing; call `advance` to pick up decisions above it.
    pub(crate) fn reset_to(&mut self, slot: Slot) {
        self.entries = self.entries.split_off(&(slot + 1));
        self.base = slot;
        self.prefix = self.prefix.max(slot);
        self.count_bytes_to_prefix();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Command;

    fn cmd(x: u8) -> Entry {
        Entry::Commands(vec![Command(vec![x])])
    }

    #[test]
    fn prefix_advances_only_over_contiguous_decisions() {
        let mut log = DecidedLog::default();
        assert_eq!(log.record(2, cmd(2)), Recorded::New);
        assert!(log.advance().is_empty());
        assert_eq!(log.record(1, cmd(1)), Recorded::New);
        assert_eq!(log.advance(), 1..=2);
        assert_eq!(log.prefix(), 2);
    }

    #[test]
    fn a_different_value_in_a_decided_slot_is_a_conflict() {
        let mut log = DecidedLog::default();
        log.record(1, cmd(1));
        assert_eq!(log.record(1, cmd(1)), Recorded::Known);
        assert_eq!(log.record(1, cmd(9)), Recorded::Conflict);
    }

    #[test]
    fn compaction_keeps_the_suffix_and_the_prefix() {
        let mut log = DecidedLog::default();
        for s in 1..=10 {
            log.record(s, cmd(s as u8));
        }
        log.advance();
        log.compact(6, 0, usize::MAX);
        assert_eq!(log.len(), 4);
        assert_eq!(log.prefix(), 10);
        assert!(log.is_decided(3));
        assert_eq!(log.record(3, cmd(77)), Recorded::Known);
        assert_eq!(log.contiguous_from(7, 100, 1 << 20).len(), 4);
    }

    #[test]
    fn compaction_can_retain_entries_below_the_snapshot() {
        let mut log = DecidedLog::default();
        for s in 1..=10 {
            log.record(s, cmd(s as u8));
        }
        log.advance();
        log.compact(8, 3, usize::MAX);
        assert_eq!(log.base(), 8);
        assert!(log.holds_from(6) && !log.holds_from(5));
        assert_eq!(log.contiguous_from(6, 100, 1 << 20).len(), 5);
    }

    #[test]
    fn entries_kept_below_a_snapshot_are_bounded_in_bytes() {
        let mut log = DecidedLog::default();
        for s in 1..=10 {
            log.record(s, cmd(s as u8)); // 9 bytes each
        }
        log.advance();
        assert_eq!(log.bytes_to_prefix(), 90);
        log.compact(8, 5, 20);
        // Five entries were asked for; two fit in 20 bytes.
        assert!(log.holds_from(7) && !log.holds_from(6));
        assert_eq!(log.bytes_to_prefix(), 4 * 9);
    }

    #[test]
    fn the_bytes_to_the_prefix_count_only_contiguous_decisions() {
        let mut log = DecidedLog::default();
        log.record(2, cmd(2));
        log.advance();
        assert_eq!(log.bytes_to_prefix(), 0);
        log.record(1, cmd(1));
        log.advance();
        assert_eq!(log.bytes_to_prefix(), 18);
        log.reset_to(1);
        assert_eq!(log.bytes_to_prefix(), 9);
    }

    #[test]
    fn catchup_chunks_are_bounded() {
        let mut log = DecidedLog::default();
        for s in 1..=10 {
            log.record(s, cmd(s as u8));
        }
        log.advance();
        assert_eq!(log.contiguous_from(1, 3, 1 << 20).len(), 3);
        assert_eq!(log.contiguous_from(1, 100, 1).len(), 1);
    }

    #[test]
    fn asking_beyond_the_prefix_returns_nothing() {
        let mut log = DecidedLog::default();
        log.record(1, cmd(1));
        log.advance();
        assert!(log.contiguous_from(5, 10, 1 << 20).is_empty());
    }

    #[test]
    fn reset_to_a_snapshot_skips_ahead() {
        let mut log = DecidedLog::default();
        log.record(12, cmd(12));
        log.reset_to(11);
        assert_eq!(log.prefix(), 11);
        assert_eq!(log.advance(), 12..=12);
    }
}
