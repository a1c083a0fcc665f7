//! Promises that arrive in parts (see `message_split`): which acceptors'
//! reports are complete.
//!
//! # The invariant
//!
//! A node running phase 1 with ballot `b` counts acceptor `A` toward a
//! quorum (as a candidate, or as a leader taking a late promise) only once,
//! for every slot `s` above `F`, it has merged a part of an answer from `A`
//! at `b` whose range `first..=last` contains `s`, where `F` is the highest
//! decided prefix those parts reported. Until then `A` is not in `promises`
//! (nor in the leader's `promised_by`), so no quorum that lets the node
//! propose in a slot can include an acceptor whose report on that slot is
//! still on its way.
//!
//! Why that keeps phase 1 sound, however the parts are lost, duplicated,
//! reordered or mixed with the parts of a second answer (the candidate asks
//! again, and the acceptor answers in full again):
//!
//! * A part reports *every* value its acceptor had accepted in its range
//!   (`promise_parts` makes the ranges of one answer tile `decided + 1..`),
//!   so a range covered means the acceptor's values there are known.
//! * An acceptor answers `ok` at `b` only once promised to `b`, and from
//!   then on accepts nothing below `b`: its highest-ballot value below `b`
//!   in each slot is fixed from its first answer on. Two answers differ only
//!   in slots decided in between, which the later one leaves out; the
//!   coverage is checked from the highest decided prefix reported, and the
//!   node never proposes at or below a decided prefix a promiser reported
//!   (its `floor`): it learns those slots instead.
//! * What each part reports is merged into `pmax` as soon as it arrives.
//!   Merging reports from acceptors beyond a quorum never breaks safety: a
//!   value accepted at a ballot at or above the one a value was chosen at is
//!   that chosen value, so the highest ballot wins either way. Merging early
//!   also loses nothing if the rest never comes.
//!
//! The simulation (`paxos-sim`) draws a small `max_message_bytes` for some
//! runs, so promises and accepts are split there under every fault it
//! injects; it counts the promises assembled from parts (and fails a sweep
//! that never assembled one), and the injected bug
//! `InjectedBug::PromiseCountedAtFirstPart`, which counts a promise at its
//! first part, must be caught by its safety checkers.

use crate::types::{NUMBER_MAX, NodeId, Slot};
use std::collections::BTreeMap;

/// Ranges kept per acceptor before its partial report is dropped (and
/// assembled again from its answer to the next `Prepare`).
const RANGES_PER_ACCEPTOR_MAX: usize = 4096;

/// What one acceptor's parts covered so far.
#[derive(Debug, Default)]
struct Coverage {
    decided: Slot,
    /// First slot → last slot of each part received.
    ranges: BTreeMap<Slot, Slot>,
}

impl Coverage {
    fn is_complete(&self) -> bool {
        let mut next = self.decided.saturating_add(1);
        for (first, last) in &self.ranges {
            if *first > next {
                return false;
            }
            next = next.max(last.saturating_add(1));
            if next > NUMBER_MAX {
                return true;
            }
        }
        next > NUMBER_MAX
    }
}

/// What a part did to its acceptor's promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The part was a whole answer: the promise counts.
    Whole,
    /// The part completed a promise that arrived in several: it counts.
    Assembled,
    /// Parts are still missing: the promise does not count yet.
    Incomplete,
}

impl Progress {
    /// Whether the promise now counts toward quorums.
    pub(crate) fn is_complete(self) -> bool {
        self != Progress::Incomplete
    }
}

/// Partial promises, per acceptor, for one ballot.
#[derive(Debug, Default)]
pub(crate) struct PromiseParts {
    partial: BTreeMap<NodeId, Coverage>,
}

impl PromiseParts {
    /// Records a part of `from`'s promise reporting `decided` and covering
    /// `first..=last`. Returns whether its promise is now complete (it is
    /// then forgotten here: the caller counts it).
    pub(crate) fn record(
        &mut self,
        from: NodeId,
        decided: Slot,
        first: Slot,
        last: Slot,
    ) -> Progress {
        if first <= decided.saturating_add(1) && last >= NUMBER_MAX {
            // A whole answer in one part.
            self.partial.remove(&from);
            return Progress::Whole;
        }
        let coverage = self.partial.entry(from).or_default();
        if coverage.ranges.len() >= RANGES_PER_ACCEPTOR_MAX {
            coverage.ranges.clear();
        }
        coverage.decided = coverage.decided.max(decided);
        let known = coverage.ranges.entry(first).or_insert(last);
        *known = (*known).max(last);
        if coverage.is_complete() {
            self.partial.remove(&from);
            return Progress::Assembled;
        }
        Progress::Incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(2);

    #[test]
    fn a_whole_answer_counts_at_once() {
        let mut parts = PromiseParts::default();
        assert_eq!(parts.record(A, 10, 11, NUMBER_MAX), Progress::Whole);
    }

    #[test]
    fn parts_count_once_all_arrived_in_any_order() {
        let mut parts = PromiseParts::default();
        assert_eq!(parts.record(A, 10, 16, NUMBER_MAX), Progress::Incomplete);
        assert_eq!(parts.record(A, 10, 13, 15), Progress::Incomplete);
        assert_eq!(parts.record(A, 10, 11, 12), Progress::Assembled);
    }

    #[test]
    fn parts_of_two_answers_count_only_if_they_cover_every_slot() {
        let mut parts = PromiseParts::default();
        // First answer (decided 10): 11..=15, 16..=MAX. Second (decided 15):
        // 16..=18, 19..=MAX. Its first part and the second answer's last
        // leave 16..=18 uncovered.
        assert_eq!(parts.record(A, 10, 11, 15), Progress::Incomplete);
        assert_eq!(parts.record(A, 15, 19, NUMBER_MAX), Progress::Incomplete);
        assert_eq!(parts.record(A, 15, 16, 18), Progress::Assembled);
    }

    #[test]
    fn a_higher_decided_prefix_needs_no_report_below_it() {
        let mut parts = PromiseParts::default();
        assert_eq!(parts.record(A, 10, 21, NUMBER_MAX), Progress::Incomplete);
        // Slots 11..=20 are decided at the acceptor by now.
        assert_eq!(parts.record(A, 20, 21, NUMBER_MAX), Progress::Whole);
    }
}
