//! One WAL record: `[len u32][crc32 u32][kind u8][msgpack payload]`, where
//! `len` counts the kind byte and the payload, and the CRC covers both.
//!
//! Every synced write ends with a `Commit` record: the records of a write
//! count only once its `Commit` is read back. A write cut short by a crash
//! was never acknowledged (nothing leaves the replica before the sync), so
//! its records are dropped; a damaged record followed by a complete write is
//! corruption, never skipped.
//!
//! The log describes itself, so that no set of deleted files can pass for a
//! complete history: every segment opens with a [`SegmentHeader`] naming the
//! node it belongs to and where it starts (a new directory, a snapshot, or
//! the segment before it), and a segment that has a successor ends with
//! `Sealed(next)`.

use paxos_core::{AcceptedEntry, Ballot, Entry, NodeId, Persist, Slot, ViewHistory};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a record body whose CRC matched cannot be read.
#[derive(Debug, Error)]
pub enum RecordError {
    /// No kind byte.
    #[error("empty record")]
    Empty,
    /// A kind this version does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// The payload does not decode as its kind says.
    #[error("undecodable record of kind {kind}: {source}")]
    Undecodable {
        /// The kind byte.
        kind: u8,
        /// The decoder's complaint.
        #[source]
        source: rmp_serde::decode::Error,
    },
}

/// Header bytes before the kind byte.
pub const HEADER_BYTES: usize = 8;
/// Largest record accepted when reading (anything larger is corruption).
pub const RECORD_BYTES_MAX: usize = 256 << 20;

/// The version of the log format [`SegmentHeader`]s carry.
pub const LOG_FORMAT: u32 = 2;

/// Where a segment's history starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SegmentStart {
    /// The first segment of a new data directory: nothing before it.
    Empty,
    /// Starts after the snapshot at this slot, with a checkpoint (in the same
    /// first write as the header) of everything still needed above it.
    AfterSnapshot(Slot),
    /// Continues segment `n` (always the number before its own), which ends
    /// sealed.
    Continues(u64),
}

/// The first record of every segment: whose log it is and where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHeader {
    /// [`LOG_FORMAT`] when written.
    pub format: u32,
    /// The node (incarnation) the log belongs to.
    pub node: NodeId,
    /// The segment's own number (its file name says the same).
    pub segment: u64,
    /// What comes before it.
    pub start: SegmentStart,
}

/// What one record says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// The promised ballot.
    Promise(Ballot),
    /// A value accepted in a slot.
    Accepted(AcceptedEntry),
    /// A value decided in a slot.
    Decided(Slot, Entry),
    /// The base view history.
    Views(ViewHistory),
    /// The end of one synced write (its sequence number).
    Commit(u64),
    /// The first record of a segment.
    Header(SegmentHeader),
    /// The last record of a segment that has a successor: segment `next`.
    Sealed(u64),
}

impl Record {
    fn kind(&self) -> u8 {
        match self {
            Record::Promise(_) => 1,
            Record::Accepted(_) => 2,
            Record::Decided(..) => 3,
            Record::Views(_) => 4,
            Record::Commit(_) => 5,
            Record::Header(_) => 6,
            Record::Sealed(_) => 7,
        }
    }

    /// Appends the framed record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let payload = match self {
            Record::Promise(b) => rmp_serde::to_vec(b),
            Record::Accepted(a) => rmp_serde::to_vec(a),
            Record::Decided(s, e) => rmp_serde::to_vec(&(s, e)),
            Record::Views(v) => rmp_serde::to_vec(v),
            Record::Commit(n) | Record::Sealed(n) => rmp_serde::to_vec(n),
            Record::Header(h) => rmp_serde::to_vec(h),
        }
        .unwrap_or_default();
        let kind = self.kind();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[kind]);
        crc.update(&payload);
        out.extend_from_slice(&((payload.len() + 1) as u32).to_be_bytes());
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        out.push(kind);
        out.extend_from_slice(&payload);
    }

    /// Decodes a record body (kind byte + payload) whose CRC was checked.
    pub fn decode(body: &[u8]) -> Result<Record, RecordError> {
        let (&kind, payload) = body.split_first().ok_or(RecordError::Empty)?;
        let err = |source| RecordError::Undecodable { kind, source };
        Ok(match kind {
            1 => Record::Promise(rmp_serde::from_slice(payload).map_err(err)?),
            2 => Record::Accepted(rmp_serde::from_slice(payload).map_err(err)?),
            3 => {
                let (s, e) = rmp_serde::from_slice(payload).map_err(err)?;
                Record::Decided(s, e)
            }
            4 => Record::Views(rmp_serde::from_slice(payload).map_err(err)?),
            5 => Record::Commit(rmp_serde::from_slice(payload).map_err(err)?),
            6 => Record::Header(rmp_serde::from_slice(payload).map_err(err)?),
            7 => Record::Sealed(rmp_serde::from_slice(payload).map_err(err)?),
            other => return Err(RecordError::UnknownKind(other)),
        })
    }

    /// The records a `Persist` asks for (its snapshot is stored apart).
    pub fn from_persist(p: &Persist) -> Vec<Record> {
        let mut out = Vec::new();
        if let Some(b) = p.promised {
            out.push(Record::Promise(b));
        }
        if let Some(v) = &p.views {
            out.push(Record::Views(v.clone()));
        }
        out.extend(p.accepted.iter().cloned().map(Record::Accepted));
        out.extend(
            p.decided
                .iter()
                .map(|(s, e)| Record::Decided(*s, e.clone())),
        );
        out
    }

    /// The record as a `Persist`, to replay it into the mirror.
    pub fn into_persist(self) -> Persist {
        let mut p = Persist::default();
        match self {
            Record::Promise(b) => p.promised = Some(b),
            Record::Accepted(a) => p.accepted.push(a),
            Record::Decided(s, e) => p.decided.push((s, e)),
            Record::Views(v) => p.views = Some(v),
            Record::Commit(_) | Record::Header(_) | Record::Sealed(_) => {}
        }
        p
    }
}

/// Checks a record's CRC; `body` is kind + payload.
pub fn crc_matches(expected: u32, body: &[u8]) -> bool {
    crc32fast::hash(body) == expected
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Command, NodeId};

    #[test]
    fn records_round_trip_through_their_frame() {
        let records = vec![
            Record::Promise(Ballot {
                round: 3,
                leader: NodeId(9),
            }),
            Record::Decided(7, Entry::Commands(vec![Command(vec![1, 2, 3])])),
            Record::Header(SegmentHeader {
                format: LOG_FORMAT,
                node: NodeId(5),
                segment: 3,
                start: SegmentStart::AfterSnapshot(120),
            }),
            Record::Sealed(4),
        ];
        for r in records {
            let mut buf = Vec::new();
            r.encode_into(&mut buf);
            let len = u32::from_be_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes"));
            let body = &buf[HEADER_BYTES..HEADER_BYTES + len];
            assert!(crc_matches(crc, body));
            assert_eq!(Record::decode(body).expect("decodes"), r);
        }
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let mut buf = Vec::new();
        Record::Decided(1, Entry::Noop).encode_into(&mut buf);
        let crc = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes"));
        let last = buf.len() - 1;
        buf[last] ^= 0x01;
        assert!(!crc_matches(crc, &buf[HEADER_BYTES..]));
    }
}
