//! WAL segments: `wal-<n>.log` files of records, appended and synced by the
//! driver once per `Ready` (group commit), and scanned on recovery.
//!
//! Recovery tells a torn tail from corruption. Each synced write ends with a
//! `Commit` record, and only complete writes are replayed. A damaged or
//! incomplete record with no complete write after it belongs to the write
//! interrupted by the crash, which was never acknowledged: it is cut. A damaged
//! record followed by a complete write sits in data that was synced and
//! acknowledged: that is corruption, and start-up stops with the file and
//! offset.
//!
//! A segment's first write holds its [`SegmentHeader`] (and, after a
//! snapshot, the checkpoint); a segment with a successor ends with a
//! `Sealed` write. A scan reports both, and `history` checks that the
//! segments on disk form one unbroken log.

use super::disk::{AppendFile, Disk, SyncHandle, numbered};
use super::errors::{StorageError, io};
use super::record::{HEADER_BYTES, RECORD_BYTES_MAX, Record, SegmentHeader, crc_matches};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The file name of segment `n`.
pub fn name(n: u64) -> String {
    format!("wal-{n:016}.log")
}

/// The segment numbers among directory entry names, oldest first.
pub fn numbers(names: &[String]) -> Vec<u64> {
    numbered(names, "wal-", ".log")
}

/// What a scan of one segment found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The header, if the segment's first write is complete.
    pub header: Option<SegmentHeader>,
    /// The records of its complete writes, header and seal left out.
    pub records: Vec<Record>,
    /// Complete writes after the first.
    pub writes_after_header: u64,
    /// The successor it was sealed for, if any.
    pub sealed: Option<u64>,
    /// Bytes of complete writes.
    pub valid_bytes: u64,
    /// Bytes after `valid_bytes` belonging to an interrupted write.
    pub torn_bytes: u64,
    /// Sequence number of its last complete write (0 if none).
    pub last_commit: u64,
}

/// One record parsed at an offset, or why it could not be.
enum Parsed {
    Record(Record, usize),
    /// Runs past the end of the file.
    Incomplete,
    /// Present but damaged.
    Damaged(String),
}

fn parse_at(bytes: &[u8], off: usize) -> Parsed {
    let rest = &bytes[off..];
    if rest.len() < HEADER_BYTES + 1 {
        return Parsed::Incomplete;
    }
    let rec_len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if rec_len == 0 || rec_len > RECORD_BYTES_MAX {
        return Parsed::Damaged(format!("impossible record length {rec_len}"));
    }
    if HEADER_BYTES + rec_len > rest.len() {
        return Parsed::Incomplete;
    }
    let body = &rest[HEADER_BYTES..HEADER_BYTES + rec_len];
    if !crc_matches(crc, body) {
        return Parsed::Damaged("checksum mismatch".into());
    }
    match Record::decode(body) {
        Ok(r) => Parsed::Record(r, off + HEADER_BYTES + rec_len),
        Err(d) => Parsed::Damaged(d.to_string()),
    }
}

/// Whether a complete write (records ending with a `Commit`) starts anywhere
/// after `from`: found by trying every offset for a valid record, then
/// reading on from there.
fn complete_write_after(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len()).any(|start| {
        let mut off = start;
        while let Parsed::Record(r, end) = parse_at(bytes, off) {
            if matches!(r, Record::Commit(_)) {
                return true;
            }
            off = end;
        }
        false
    })
}

/// Takes one complete write into the scan, checking where headers and seals
/// may stand.
fn take_write(scan: &mut Scan, batch: Vec<Record>, commit: u64) -> Result<(), String> {
    if scan.sealed.is_some() {
        return Err("a write after the segment was sealed".into());
    }
    let first = scan.header.is_none();
    if first && !matches!(batch.first(), Some(Record::Header(_))) {
        return Err("the segment does not start with its header".into());
    }
    for (i, r) in batch.into_iter().enumerate() {
        match r {
            Record::Header(h) if first && i == 0 => scan.header = Some(h),
            Record::Header(_) => return Err("a segment header inside the segment".into()),
            Record::Sealed(next) => scan.sealed = Some(next),
            r => scan.records.push(r),
        }
    }
    if !first {
        scan.writes_after_header += 1;
    }
    scan.last_commit = commit;
    Ok(())
}

/// Reads and checks a whole segment. An interrupted last write is reported
/// as torn (not an error); corruption is an error naming the file and
/// offset.
pub fn scan(disk: &dyn Disk, path: &Path) -> Result<Scan, StorageError> {
    let bytes = disk.read(path).map_err(io(path))?;
    scan_bytes(&bytes).map_err(|(offset, detail)| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        detail,
    })
}

fn scan_bytes(bytes: &[u8]) -> Result<Scan, (u64, String)> {
    let mut scan = Scan::default();
    let mut off = 0usize;
    let mut committed = 0usize;
    let mut batch: Vec<Record> = Vec::new();
    while off < bytes.len() {
        match parse_at(bytes, off) {
            Parsed::Record(Record::Commit(n), end) => {
                take_write(&mut scan, std::mem::take(&mut batch), n)
                    .map_err(|d| (committed as u64, d))?;
                committed = end;
                off = end;
            }
            Parsed::Record(r, end) => {
                batch.push(r);
                off = end;
            }
            Parsed::Incomplete | Parsed::Damaged(_) if !complete_write_after(bytes, off + 1) => {
                break; // the interrupted last write
            }
            Parsed::Incomplete => {
                return Err((
                    off as u64,
                    "a record's length runs past complete data".into(),
                ));
            }
            Parsed::Damaged(detail) => return Err((off as u64, detail)),
        }
    }
    scan.valid_bytes = committed as u64;
    scan.torn_bytes = (bytes.len() - committed) as u64;
    Ok(scan)
}

/// The segment being appended to.
pub struct Writer {
    /// Its number.
    pub number: u64,
    path: PathBuf,
    file: Box<dyn AppendFile>,
    /// Its length.
    pub len: u64,
    /// Complete writes after its first.
    pub writes: u64,
}

impl Writer {
    /// Creates segment `number` in `dir` holding `first_write` (its header,
    /// and a checkpoint after a snapshot), durably: the data is synced, then
    /// the directory, so the segment is complete before anything relies on
    /// it.
    pub fn create(
        disk: &dyn Disk,
        dir: &Path,
        number: u64,
        first_write: &[u8],
    ) -> Result<Writer, StorageError> {
        let path = dir.join(name(number));
        let mut file = disk.create_new(&path).map_err(io(&path))?;
        file.append(first_write).map_err(io(&path))?;
        file.sync().map_err(io(&path))?;
        if !super::injected(super::StorageBug::NewSegmentNameNotSynced) {
            disk.sync_dir(dir).map_err(io(dir))?;
        }
        Ok(Writer {
            number,
            path,
            file,
            len: first_write.len() as u64,
            writes: 0,
        })
    }

    /// Opens an existing segment for appending after its `valid` bytes,
    /// durably cutting anything after them.
    pub fn reopen(
        disk: &dyn Disk,
        path: &Path,
        number: u64,
        valid: u64,
        writes: u64,
    ) -> Result<Writer, StorageError> {
        let file = disk.open_at(path, valid).map_err(io(path))?;
        Ok(Writer {
            number,
            path: path.to_path_buf(),
            file,
            len: valid,
            writes,
        })
    }

    /// Appends one or more complete writes (not yet durable).
    pub fn append(&mut self, bytes: &[u8], writes: u64) -> Result<(), StorageError> {
        self.file.append(bytes).map_err(io(&self.path))?;
        self.len += bytes.len() as u64;
        self.writes += writes;
        Ok(())
    }

    /// A handle that syncs what was appended so far, from any thread.
    pub fn sync_handle(&self) -> Result<Box<dyn SyncHandle>, StorageError> {
        self.file.sync_handle().map_err(io(&self.path))
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes everything appended durable; returns how long it took.
    pub fn sync(&mut self) -> Result<Duration, StorageError> {
        let started = Instant::now();
        self.file.sync().map_err(io(&self.path))?;
        Ok(started.elapsed())
    }
}

#[cfg(test)]
#[path = "wal_fuzz_test.rs"]
mod fuzz_test;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::record::{LOG_FORMAT, SegmentStart};
    use paxos_core::{Entry, NodeId};

    fn header() -> Record {
        Record::Header(SegmentHeader {
            format: LOG_FORMAT,
            node: NodeId(1),
            segment: 1,
            start: SegmentStart::Empty,
        })
    }

    fn segment_with(records: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        header().encode_into(&mut buf);
        Record::Commit(1).encode_into(&mut buf);
        for s in 1..=records {
            Record::Decided(s, Entry::Noop).encode_into(&mut buf);
            Record::Commit(s + 1).encode_into(&mut buf);
        }
        buf
    }

    #[test]
    fn a_clean_segment_reads_back_every_record() {
        let scan = scan_bytes(&segment_with(10)).expect("clean");
        assert_eq!(scan.records.len(), 10);
        assert_eq!(scan.writes_after_header, 10);
        assert_eq!(scan.torn_bytes, 0);
        assert_eq!(scan.last_commit, 11);
        assert!(scan.header.is_some() && scan.sealed.is_none());
    }

    #[test]
    fn a_torn_last_record_is_reported_not_an_error() {
        let bytes = segment_with(10);
        let scan = scan_bytes(&bytes[..bytes.len() - 3]).expect("torn is fine");
        assert_eq!(scan.records.len(), 9);
        assert!(scan.torn_bytes > 0);
    }

    #[test]
    fn a_flipped_byte_in_the_middle_is_corruption_with_its_offset() {
        let mut bytes = segment_with(10);
        bytes[120] ^= 0xff;
        match scan_bytes(&bytes) {
            Err((offset, _)) => assert!(offset <= 120),
            Ok(_) => panic!("expected corruption"),
        }
    }

    #[test]
    fn a_damaged_length_in_the_middle_is_corruption_not_a_torn_tail() {
        let mut bytes = segment_with(10);
        // The second record's length now claims far more than the file holds.
        let first_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let second = HEADER_BYTES + first_len;
        bytes[second] = 0x00;
        bytes[second + 1] = 0xff;
        assert!(scan_bytes(&bytes).is_err());
    }

    #[test]
    fn an_uncommitted_last_write_is_dropped() {
        let mut bytes = segment_with(3);
        Record::Decided(4, Entry::Noop).encode_into(&mut bytes); // no Commit
        let scan = scan_bytes(&bytes).expect("torn");
        assert_eq!(scan.records.len(), 3);
        assert!(scan.torn_bytes > 0);
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let mut bytes = segment_with(3);
        bytes.extend([0u8; 100]);
        let scan = scan_bytes(&bytes).expect("torn");
        assert_eq!((scan.records.len(), scan.torn_bytes), (3, 100));
    }

    #[test]
    fn a_segment_without_a_complete_first_write_has_no_header() {
        let bytes = segment_with(0);
        let scan = scan_bytes(&bytes[..bytes.len() - 1]).expect("an interrupted creation");
        assert!(scan.header.is_none());
        assert_eq!(scan.valid_bytes, 0);
    }

    #[test]
    fn a_segment_that_does_not_start_with_its_header_is_corrupt() {
        let mut bytes = Vec::new();
        Record::Decided(1, Entry::Noop).encode_into(&mut bytes);
        Record::Commit(1).encode_into(&mut bytes);
        assert!(scan_bytes(&bytes).is_err());
    }

    #[test]
    fn a_write_after_the_seal_is_corrupt() {
        let mut bytes = segment_with(1);
        Record::Sealed(2).encode_into(&mut bytes);
        Record::Commit(3).encode_into(&mut bytes);
        assert_eq!(scan_bytes(&bytes).expect("sealed").sealed, Some(2));
        Record::Decided(2, Entry::Noop).encode_into(&mut bytes);
        Record::Commit(4).encode_into(&mut bytes);
        assert!(scan_bytes(&bytes).is_err());
    }
}
