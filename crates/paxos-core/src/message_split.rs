//! Keeping messages that carry log entries under `max_message_bytes`.
//!
//! One `Accept` would otherwise carry every slot a leader filled in a turn, a
//! retransmission every unacknowledged slot, and a `Promise` every value an
//! acceptor accepted above its decided prefix: with a window of 64 slots of
//! up to a large command each, hundreds of MiB in one message, more than any
//! transport frame. So they are split by bytes (by [`Entry::size_bytes`]):
//! each part carries at most `max_message_bytes` of entries, or a single
//! entry if that one alone is larger. Catch-up replies are bounded the same
//! way by `DecidedLog::contiguous_from`.
//!
//! `Accept` parts are independent (each is acknowledged on its own). `Promise`
//! parts are not: a promise counts only once all of its parts arrived, so
//! each names the slots it covers (see `promise_parts`).

use crate::entry::Entry;
use crate::message::AcceptedEntry;
use crate::types::{NUMBER_MAX, Slot};

/// Splits `items` into runs of at most `max_bytes` (by `size`), keeping their
/// order; an item larger than `max_bytes` forms a run alone. No run is empty.
/// (Also used by the client to group calls into frames.)
pub fn split_by_bytes<T>(
    items: Vec<T>,
    size: impl Fn(&T) -> usize,
    max_bytes: usize,
) -> Vec<Vec<T>> {
    let mut runs: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = size(&item);
        match runs.last_mut() {
            Some(run) if bytes + n <= max_bytes => {
                bytes += n;
                run.push(item);
            }
            _ => {
                bytes = n;
                runs.push(vec![item]);
            }
        }
    }
    runs
}

/// Slots and their values for one `Accept`, split into parts.
pub(crate) fn accept_parts(
    entries: Vec<(Slot, Entry)>,
    max_bytes: usize,
) -> Vec<Vec<(Slot, Entry)>> {
    split_by_bytes(entries, |(_, e)| e.size_bytes(), max_bytes)
}

/// One part of an acceptor's report: the slots `first..=last` it covers and
/// the values accepted in them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ReportPart {
    pub(crate) first: Slot,
    pub(crate) last: Slot,
    pub(crate) accepted: Vec<AcceptedEntry>,
}

/// Splits the values accepted after `decided` (in slot order) into parts that
/// together cover every slot after `decided`: the first starts right after
/// it, each next one right after the previous one, and the last reaches
/// [`NUMBER_MAX`]. An empty report is one part.
pub(crate) fn promise_parts(
    decided: Slot,
    accepted: Vec<AcceptedEntry>,
    max_bytes: usize,
) -> Vec<ReportPart> {
    debug_assert!(accepted.windows(2).all(|w| w[0].slot < w[1].slot));
    let runs = split_by_bytes(accepted, |a| a.entry.size_bytes(), max_bytes);
    let mut first = decided.saturating_add(1).min(NUMBER_MAX);
    let mut parts = Vec::with_capacity(runs.len().max(1));
    for run in runs {
        let last = run.last().map_or(first, |a| a.slot).max(first);
        parts.push(ReportPart {
            first,
            last,
            accepted: run,
        });
        first = last.saturating_add(1).min(NUMBER_MAX);
    }
    match parts.last_mut() {
        Some(last) => last.last = NUMBER_MAX,
        None => parts.push(ReportPart {
            first,
            last: NUMBER_MAX,
            accepted: Vec::new(),
        }),
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Command;
    use crate::types::{Ballot, NodeId};

    fn sized(bytes: usize) -> Entry {
        // `size_bytes` of one command of n bytes is n + 8.
        Entry::Commands(vec![Command(vec![0; bytes - 8])])
    }

    fn accepted(slot: Slot, bytes: usize) -> AcceptedEntry {
        AcceptedEntry {
            slot,
            ballot: Ballot {
                round: 1,
                leader: NodeId(1),
            },
            entry: sized(bytes),
        }
    }

    #[test]
    fn runs_stay_within_the_bound_and_keep_the_order() {
        let runs = split_by_bytes(vec![3, 3, 3, 5, 1, 9, 2], |n| *n, 6);
        assert_eq!(
            runs,
            vec![vec![3, 3], vec![3], vec![5, 1], vec![9], vec![2]]
        );
    }

    #[test]
    fn an_item_larger_than_the_bound_travels_alone() {
        let runs = split_by_bytes(vec![1, 100, 1], |n| *n, 10);
        assert_eq!(runs, vec![vec![1], vec![100], vec![1]]);
        assert!(split_by_bytes(Vec::<usize>::new(), |n| *n, 10).is_empty());
    }

    #[test]
    fn accept_parts_carry_every_slot_once_in_order() {
        let entries: Vec<(Slot, Entry)> = (1..=10).map(|s| (s, sized(400))).collect();
        let parts = accept_parts(entries.clone(), 1000);
        assert_eq!(parts.len(), 5);
        assert!(
            parts
                .iter()
                .all(|p| { p.iter().map(|(_, e)| e.size_bytes()).sum::<usize>() <= 1000 })
        );
        assert_eq!(parts.concat(), entries);
    }

    #[test]
    fn promise_parts_cover_every_slot_after_the_decided_prefix() {
        let report: Vec<AcceptedEntry> = [12, 13, 17, 20].map(|s| accepted(s, 600)).into();
        let parts = promise_parts(10, report.clone(), 1000);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0].first, 11);
        for pair in parts.windows(2) {
            assert_eq!(pair[1].first, pair[0].last + 1, "contiguous: {parts:?}");
        }
        assert_eq!(parts[3].last, NUMBER_MAX);
        for p in &parts {
            assert!(
                p.accepted
                    .iter()
                    .all(|a| a.slot >= p.first && a.slot <= p.last)
            );
        }
        let all: Vec<AcceptedEntry> = parts.into_iter().flat_map(|p| p.accepted).collect();
        assert_eq!(all, report);
    }

    #[test]
    fn an_empty_report_is_one_part_covering_everything() {
        assert_eq!(
            promise_parts(7, Vec::new(), 1000),
            vec![ReportPart {
                first: 8,
                last: NUMBER_MAX,
                accepted: Vec::new()
            }]
        );
    }
}
