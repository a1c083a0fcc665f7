//! Fuzzing the WAL reader on stable Rust (`proptest`): arbitrary bytes as a
//! segment, and well-formed segments mutated by flips, cuts and forged
//! record lengths, must scan without a panic; a claimed record length is
//! checked (against `RECORD_BYTES_MAX` and the bytes present) before any
//! record body is touched, and the reader never copies a body it has not
//! checked. Unmutated segments scan back to exactly what was written.
//!
//! `PROPTEST_CASES` cases per property (256 by default; a longer run:
//! `PROPTEST_CASES=100000 cargo test --release -p concoord-replica --lib fuzz_test`).

use super::super::record::{LOG_FORMAT, Record, SegmentHeader, SegmentStart};
use super::scan_bytes;
use paxos_core::{Ballot, NodeId};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn header(node: u64, segment: u64) -> Record {
    Record::Header(SegmentHeader {
        format: LOG_FORMAT,
        node: NodeId(node),
        segment,
        start: SegmentStart::Empty,
    })
}

/// A record a write may hold (besides header, commit and seal).
fn body_record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(round, leader)| Record::Promise(Ballot {
            round,
            leader: NodeId(leader)
        })),
        any::<u64>().prop_map(Record::Sealed),
    ]
}

/// A segment: its header, then `writes`, each ended by its `Commit`.
fn segment(node: u64, writes: &[Vec<Record>]) -> Vec<u8> {
    let mut out = Vec::new();
    header(node, 1).encode_into(&mut out);
    Record::Commit(1).encode_into(&mut out);
    for (i, w) in writes.iter().enumerate() {
        for r in w {
            r.encode_into(&mut out);
        }
        Record::Commit(i as u64 + 2).encode_into(&mut out);
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_the_wal_reader(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = scan_bytes(&bytes);
        let _ = Record::decode(&bytes);
    }

    #[test]
    fn a_well_formed_segment_scans_back_to_what_was_written(
        node in any::<u64>(),
        writes in prop::collection::vec(prop::collection::vec(body_record(), 0..4), 0..4),
    ) {
        // A seal is only allowed last: keep seals out of this one.
        let writes: Vec<Vec<Record>> = writes
            .into_iter()
            .map(|w| w.into_iter().filter(|r| !matches!(r, Record::Sealed(_))).collect())
            .collect();
        let bytes = segment(node, &writes);
        let scan = scan_bytes(&bytes).map_err(|(o, d)| TestCaseError::fail(format!("{o}: {d}")))?;
        prop_assert_eq!(scan.header, Some(match header(node, 1) { Record::Header(h) => h, _ => unreachable!() }));
        prop_assert_eq!(scan.records, writes.concat());
        prop_assert_eq!(scan.valid_bytes, bytes.len() as u64);
        prop_assert_eq!(scan.torn_bytes, 0);
    }

    #[test]
    fn a_mutated_segment_never_panics_the_wal_reader(
        node in any::<u64>(),
        writes in prop::collection::vec(prop::collection::vec(body_record(), 0..4), 0..4),
        flips in prop::collection::vec((any::<usize>(), 1..=255u8), 0..4),
        cut in any::<usize>(),
        forged_len in (any::<usize>(), any::<u32>()),
    ) {
        let bytes = segment(node, &writes);
        let mut flipped = bytes.clone();
        for (at, mask) in flips {
            let i = at % flipped.len();
            flipped[i] ^= mask;
        }
        let _ = scan_bytes(&flipped);
        let cut_at = cut % (bytes.len() + 1);
        if let Ok(scan) = scan_bytes(&bytes[..cut_at]) {
            // A cut is an interrupted write, never more than what was written.
            prop_assert!(scan.valid_bytes <= cut_at as u64);
            prop_assert_eq!(
                scan.valid_bytes + scan.torn_bytes + scan.zero_tail_bytes,
                cut_at as u64
            );
        }
        // A record length overwritten with any value, up to 4 GiB.
        let mut forged = bytes.clone();
        let at = forged_len.0 % (forged.len().saturating_sub(3)).max(1);
        forged[at..at + 4].copy_from_slice(&forged_len.1.to_be_bytes());
        let _ = scan_bytes(&forged);
    }
}

#[test]
fn a_record_claiming_4_gib_is_damage_not_an_allocation() {
    let mut bytes = segment(7, &[]);
    let start = bytes.len();
    Record::Commit(9).encode_into(&mut bytes);
    bytes[start..start + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    // Followed by a complete write, the damage is corruption at its offset.
    Record::Commit(10).encode_into(&mut bytes);
    match scan_bytes(&bytes) {
        Err((offset, detail)) => {
            assert_eq!(offset, start as u64);
            assert!(detail.contains("impossible record length"), "{detail}");
        }
        Ok(scan) => panic!("a forged length was accepted: {:?}", scan.valid_bytes),
    }
}
