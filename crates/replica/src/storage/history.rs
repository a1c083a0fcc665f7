//! Is the log on disk the whole history of this identity? The check that
//! stops a replica from resuming its identity with forgotten promises.
//!
//! A replica that resumes its node id must remember every promise and
//! acceptance it ever acknowledged under that id. Files can go missing in
//! ways no crash produces (an operator deletes `wal-*.log` to "free space", a
//! backup restores half a directory, a log is copied from another replica),
//! and the replica must then refuse to start rather than vote with holes in
//! its memory. So the log describes itself (see `record`): every segment
//! names its node and where it starts, and a segment with a successor is
//! sealed for it. The segments used must then form one chain:
//!
//! ```text
//!  [snapshot S] ◀─ wal-7 (AfterSnapshot S) ◀─ wal-8 (Continues 7) ◀─ wal-9 (Continues 8)
//!                   sealed: 8                  sealed: 9              (not sealed: the tail)
//! ```
//!
//! * the newest segment holding a header is the tail; it must not be sealed
//!   (else its successor is missing);
//! * walking back through `Continues`, every predecessor must be present and
//!   sealed for its successor, down to a segment that starts a history: the
//!   directory's first (`Empty`) or one written after a snapshot, whose
//!   snapshot must be present;
//! * every header must name this node and its own file.
//!
//! A crash interrupts at most one step, and recovery finishes or undoes it
//! (`DurableStore::open`): segments older than the chain (a checkpoint that
//! had not deleted them yet) are deleted; a newest segment without a complete
//! first write, or holding only the header of a rotation whose predecessor
//! was never sealed, was never written to and is deleted too.

use super::record::{LOG_FORMAT, SegmentHeader, SegmentStart};
use super::wal;
use paxos_core::{NodeId, Slot};
use std::fmt;

/// What recovery needs to know of one segment (from its scan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Its number.
    pub number: u64,
    /// Its header, if its first write is complete.
    pub header: Option<SegmentHeader>,
    /// Complete writes after the header.
    pub writes_after_header: u64,
    /// The successor it was sealed for.
    pub sealed: Option<u64>,
    /// Whether it ends in an interrupted write.
    pub torn: bool,
}

/// Which segments make up the history, and what to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The segments to replay, oldest first; the last one is the tail.
    pub chain: Vec<u64>,
    /// Segments a crash left behind: older than the chain, or an interrupted
    /// creation after it.
    pub discard: Vec<u64>,
    /// The slot of the snapshot the chain starts after (0: none).
    pub base: Slot,
}

/// Why the files do not form a complete history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// No segment at all.
    NoLog,
    /// A segment of another node's log.
    Foreign {
        /// The segment.
        segment: u64,
        /// The node its header names.
        node: NodeId,
    },
    /// A segment whose header names another segment (a renamed file).
    Misnamed {
        /// The file's number.
        segment: u64,
        /// The number its header says.
        says: u64,
    },
    /// A segment written in another log format.
    Format {
        /// The segment.
        segment: u64,
        /// Its format.
        format: u32,
    },
    /// A segment without a header where one must be.
    NoHeader {
        /// The segment.
        segment: u64,
    },
    /// A segment the chain needs is not there.
    Missing {
        /// The missing segment.
        segment: u64,
        /// The segment that says it exists.
        named_by: u64,
    },
    /// The snapshot a segment starts after is not there.
    SnapshotMissing {
        /// The snapshot's slot.
        slot: Slot,
        /// The segment that starts after it.
        segment: u64,
    },
    /// A segment with a successor that was never sealed for it.
    NotSealed {
        /// The segment.
        segment: u64,
        /// Its successor.
        next: u64,
    },
    /// A segment ending in an interrupted write, with a successor.
    TornBeforeTail {
        /// The segment.
        segment: u64,
    },
    /// A first segment that does not say it is the first.
    NotFirst {
        /// The segment.
        segment: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = wal::name;
        match self {
            Problem::NoLog => write!(f, "no write-ahead log segment (wal-*.log) is left"),
            Problem::Foreign { segment, node } => write!(
                f,
                "{} belongs to the log of node {node}, another replica",
                name(*segment)
            ),
            Problem::Misnamed { segment, says } => write!(
                f,
                "{} holds segment {says} of the log (a renamed or copied file)",
                name(*segment)
            ),
            Problem::Format { segment, format } => write!(
                f,
                "{} is in log format {format}; this version reads format {LOG_FORMAT}",
                name(*segment)
            ),
            Problem::NoHeader { segment } => {
                write!(f, "{} does not start with a segment header", name(*segment))
            }
            Problem::Missing { segment, named_by } => write!(
                f,
                "{} is missing ({} says the log goes on through it)",
                name(*segment),
                name(*named_by)
            ),
            Problem::SnapshotMissing { slot, segment } => write!(
                f,
                "{} starts after the snapshot at slot {slot}, which is missing ({})",
                name(*segment),
                super::snapshot_file::name(*slot)
            ),
            Problem::NotSealed { segment, next } => write!(
                f,
                "{} was never closed, yet {} follows it",
                name(*segment),
                name(*next)
            ),
            Problem::TornBeforeTail { segment } => write!(
                f,
                "{} ends in an incomplete write, yet a later segment follows it",
                name(*segment)
            ),
            Problem::NotFirst { segment } => write!(
                f,
                "{} says it is the first segment of the directory, but is not numbered 1",
                name(*segment)
            ),
        }
    }
}

fn check_header(node: NodeId, s: &SegmentSummary) -> Result<(), Problem> {
    let Some(h) = s.header else { return Ok(()) };
    if h.format != LOG_FORMAT {
        return Err(Problem::Format {
            segment: s.number,
            format: h.format,
        });
    }
    if h.node != node {
        return Err(Problem::Foreign {
            segment: s.number,
            node: h.node,
        });
    }
    if h.segment != s.number {
        return Err(Problem::Misnamed {
            segment: s.number,
            says: h.segment,
        });
    }
    Ok(())
}

/// Whether the newest of `segments` is a creation a crash interrupted: no
/// complete first write, or the bare header of a rotation whose predecessor
/// was not sealed yet (the seal is written only after the new segment is
/// durable, so nothing was ever written to it).
fn interrupted_creation(segments: &[SegmentSummary]) -> bool {
    let Some((newest, rest)) = segments.split_last() else {
        return false;
    };
    let predecessor_unsealed = rest
        .last()
        .is_some_and(|p| p.number + 1 == newest.number && p.sealed.is_none());
    match newest.header {
        None => predecessor_unsealed,
        Some(h) => {
            matches!(h.start, SegmentStart::Continues(_))
                && newest.writes_after_header == 0
                && predecessor_unsealed
        }
    }
}

/// Checks that `segments` (oldest first) and the snapshots present form the
/// whole history of `node`, and says which segments to replay.
pub fn plan(
    node: NodeId,
    segments: &[SegmentSummary],
    snapshots: &[Slot],
) -> Result<Plan, Problem> {
    for s in segments {
        check_header(node, s)?;
    }
    let mut discard = Vec::new();
    let mut top = segments.len();
    if interrupted_creation(segments) {
        discard.push(segments[top - 1].number);
        top -= 1;
    }
    let Some(tail) = segments[..top].last() else {
        return Err(match segments.first() {
            Some(s) => Problem::NoHeader { segment: s.number },
            None => Problem::NoLog,
        });
    };
    if let Some(next) = tail.sealed {
        return Err(Problem::Missing {
            segment: next,
            named_by: tail.number,
        });
    }
    // Walk back from the tail to the segment that starts the history.
    let mut at = top - 1;
    let base = loop {
        let s = &segments[at];
        let header = s.header.ok_or(Problem::NoHeader { segment: s.number })?;
        match header.start {
            SegmentStart::Empty if s.number == 1 => break 0,
            SegmentStart::Empty => return Err(Problem::NotFirst { segment: s.number }),
            SegmentStart::AfterSnapshot(slot) if snapshots.contains(&slot) => break slot,
            SegmentStart::AfterSnapshot(slot) => {
                return Err(Problem::SnapshotMissing {
                    slot,
                    segment: s.number,
                });
            }
            SegmentStart::Continues(prev) => {
                let present = at > 0 && segments[at - 1].number == prev && prev + 1 == s.number;
                if !present {
                    return Err(Problem::Missing {
                        segment: s.number.saturating_sub(1),
                        named_by: s.number,
                    });
                }
                let p = &segments[at - 1];
                if p.sealed != Some(s.number) {
                    return Err(Problem::NotSealed {
                        segment: p.number,
                        next: s.number,
                    });
                }
                if p.torn {
                    return Err(Problem::TornBeforeTail { segment: p.number });
                }
                at -= 1;
            }
        }
    };
    discard.extend(segments[..at].iter().map(|s| s.number));
    Ok(Plan {
        chain: segments[at..top].iter().map(|s| s.number).collect(),
        discard,
        base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: NodeId = NodeId(7);

    fn seg(number: u64, start: SegmentStart, sealed: Option<u64>) -> SegmentSummary {
        SegmentSummary {
            number,
            header: Some(SegmentHeader {
                format: LOG_FORMAT,
                node: ME,
                segment: number,
                start,
            }),
            writes_after_header: 3,
            sealed,
            torn: false,
        }
    }

    /// A long-running directory: snapshot 100, then wal-4 after it, rotated
    /// into wal-5 and wal-6.
    fn healthy() -> Vec<SegmentSummary> {
        vec![
            seg(4, SegmentStart::AfterSnapshot(100), Some(5)),
            seg(5, SegmentStart::Continues(4), Some(6)),
            seg(6, SegmentStart::Continues(5), None),
        ]
    }

    #[test]
    fn an_unbroken_chain_is_the_history() {
        let p = plan(ME, &healthy(), &[100]).expect("whole");
        assert_eq!(p.chain, vec![4, 5, 6]);
        assert_eq!(p.base, 100);
        assert!(p.discard.is_empty());
        let fresh = plan(ME, &[seg(1, SegmentStart::Empty, None)], &[]).expect("new directory");
        assert_eq!((fresh.chain, fresh.base), (vec![1], 0));
    }

    #[test]
    fn no_segment_at_all_is_refused() {
        assert_eq!(plan(ME, &[], &[100]), Err(Problem::NoLog));
        assert_eq!(plan(ME, &[], &[]), Err(Problem::NoLog));
    }

    #[test]
    fn a_missing_snapshot_under_the_chain_is_refused() {
        assert_eq!(
            plan(ME, &healthy(), &[]),
            Err(Problem::SnapshotMissing {
                slot: 100,
                segment: 4
            })
        );
    }

    #[test]
    fn a_missing_first_segment_of_the_chain_is_refused() {
        let s = healthy()[1..].to_vec();
        assert_eq!(
            plan(ME, &s, &[100]),
            Err(Problem::Missing {
                segment: 4,
                named_by: 5
            })
        );
    }

    #[test]
    fn a_missing_middle_segment_is_refused() {
        let mut s = healthy();
        s.remove(1);
        assert_eq!(
            plan(ME, &s, &[100]),
            Err(Problem::Missing {
                segment: 5,
                named_by: 6
            })
        );
    }

    #[test]
    fn a_missing_last_segment_is_refused() {
        let mut s = healthy();
        s.pop();
        assert_eq!(
            plan(ME, &s, &[100]),
            Err(Problem::Missing {
                segment: 6,
                named_by: 5
            })
        );
    }

    #[test]
    fn another_nodes_segment_is_refused() {
        let mut s = healthy();
        if let Some(h) = s[2].header.as_mut() {
            h.node = NodeId(8);
        }
        assert!(matches!(
            plan(ME, &s, &[100]),
            Err(Problem::Foreign { segment: 6, .. })
        ));
    }

    #[test]
    fn a_renamed_segment_is_refused() {
        let mut s = healthy();
        s[2].number = 9;
        assert!(matches!(
            plan(ME, &s, &[100]),
            Err(Problem::Misnamed { segment: 9, .. })
        ));
    }

    #[test]
    fn segments_older_than_the_last_checkpoint_are_discarded() {
        // A checkpoint wrote snapshot 200 and wal-7, and crashed before
        // deleting wal-4..6 and snapshot 100.
        let mut s = healthy();
        s[2].sealed = Some(7);
        s.push(seg(7, SegmentStart::AfterSnapshot(200), None));
        let p = plan(ME, &s, &[100, 200]).expect("the checkpoint is whole");
        assert_eq!((p.chain, p.discard, p.base), (vec![7], vec![4, 5, 6], 200));
    }

    #[test]
    fn a_checkpoint_interrupted_before_its_segment_was_complete_is_undone() {
        let mut s = healthy();
        let mut new = seg(7, SegmentStart::AfterSnapshot(200), None);
        new.header = None;
        new.writes_after_header = 0;
        s.push(new);
        let p = plan(ME, &s, &[100, 200]).expect("the old chain is whole");
        assert_eq!((p.chain, p.discard), (vec![4, 5, 6], vec![7]));
    }

    #[test]
    fn a_rotation_interrupted_before_the_seal_is_undone() {
        let mut s = healthy();
        let mut bare = seg(7, SegmentStart::Continues(6), None);
        bare.writes_after_header = 0;
        s.push(bare);
        let p = plan(ME, &s, &[100]).expect("the old chain is whole");
        assert_eq!((p.chain, p.discard), (vec![4, 5, 6], vec![7]));
        // Once sealed, the bare segment is the tail.
        s[2].sealed = Some(7);
        let p = plan(ME, &s, &[100]).expect("rotated");
        assert_eq!(p.chain, vec![4, 5, 6, 7]);
    }

    #[test]
    fn an_unsealed_segment_with_a_written_successor_is_refused() {
        let mut s = healthy();
        s[1].sealed = None;
        assert_eq!(
            plan(ME, &s, &[100]),
            Err(Problem::NotSealed {
                segment: 5,
                next: 6
            })
        );
    }

    #[test]
    fn a_segment_without_header_inside_the_chain_is_refused() {
        let mut s = healthy();
        s[1].header = None;
        assert!(plan(ME, &s, &[100]).is_err());
        let only = SegmentSummary {
            header: None,
            ..seg(1, SegmentStart::Empty, None)
        };
        assert_eq!(
            plan(ME, &[only], &[]),
            Err(Problem::NoHeader { segment: 1 })
        );
    }
}
