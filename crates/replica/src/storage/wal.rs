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
//! Zeros after the last complete write are space reserved ahead of the
//! writes (`Writer` keeps [`RESERVE_AHEAD`] bytes of zeros after the end, so
//! a sync covers an overwrite, not a longer file), not a torn write: a scan
//! reports them apart, and a sealed segment may end with them.
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

/// Zeros kept reserved after the end of the segment being appended to.
pub const RESERVE_AHEAD: u64 = 256 << 10;
/// The reserve is topped up once fewer zeros than this are left.
const RESERVE_LOW: u64 = 64 << 10;

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
    /// Bytes after `valid_bytes` belonging to an interrupted write: up to
    /// the last byte that is not zero.
    pub torn_bytes: u64,
    /// Zeros at the end, after any torn bytes (reserved space, or a write
    /// that left nothing but zeros).
    pub zero_tail_bytes: u64,
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
/// reading on from there. A record's length is never zero, so none starts
/// in the zeros after the last non-zero byte (the reserved space need not be
/// tried byte by byte).
fn complete_write_after(bytes: &[u8], from: usize, data_end: usize) -> bool {
    (from..data_end).any(|start| {
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

/// The disk's unit of writing: a torn write leaves whole sectors written
/// or not.
const SECTOR: usize = 512;

/// Whether the record at `off`, which does not parse, touches a sector the
/// disk never wrote back: its length reads zero (no record has) with zeros
/// on to a sector boundary, or a whole aligned sector it overlaps is zeros
/// (with data after it). The last write overwrites reserved zeros, and the
/// page cache and the drive write an overwrite's sectors back in any order,
/// so a power loss may keep a later part of that write and not an earlier
/// one (found by review): such a write is torn even though complete records
/// of it follow. Synced data never reads back as a whole sector of zeros
/// unless the disk lost it; a damaged record of synced data that spans a
/// sector of zeros in its own value is the one case this misreads, and then
/// what follows it is cut like a torn write (etcd's WAL reads a zeroed
/// sector in its last record the same way).
fn unwritten_sector_at(bytes: &[u8], off: usize, data_end: usize) -> bool {
    let zeros = |range: std::ops::Range<usize>| bytes[range].iter().all(|b| *b == 0);
    let header_boundary = (off + 4).next_multiple_of(SECTOR).min(bytes.len());
    if off + 4 <= header_boundary && zeros(off..header_boundary) {
        return true;
    }
    let extent_end = bytes
        .get(off..off + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .filter(|len| *len <= RECORD_BYTES_MAX)
        .map_or(off + HEADER_BYTES, |len| off + HEADER_BYTES + len);
    let mut sector = off - off % SECTOR;
    while sector < extent_end && sector + SECTOR <= data_end {
        if zeros(sector..sector + SECTOR) {
            return true;
        }
        sector += SECTOR;
    }
    false
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

/// The end of the data: just after the last byte that is not zero (a
/// whole segment's reserved zeros are read at every scan, so a block at a
/// time, which the compiler turns into vector instructions).
fn data_end(bytes: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let mut end = bytes.len();
    while end >= BLOCK && bytes[end - BLOCK..end].iter().fold(0, |acc, b| acc | b) == 0 {
        end -= BLOCK;
    }
    bytes[..end]
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1)
}

fn scan_bytes(bytes: &[u8]) -> Result<Scan, (u64, String)> {
    let data_end = data_end(bytes);
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
            Parsed::Incomplete | Parsed::Damaged(_)
                if unwritten_sector_at(bytes, off, data_end)
                    || !complete_write_after(bytes, off + 1, data_end) =>
            {
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
    let data_end = data_end.max(committed);
    scan.valid_bytes = committed as u64;
    scan.torn_bytes = (data_end - committed) as u64;
    scan.zero_tail_bytes = (bytes.len() - data_end) as u64;
    Ok(scan)
}

/// The segment being appended to.
pub struct Writer {
    /// Its number.
    pub number: u64,
    path: PathBuf,
    file: Box<dyn AppendFile>,
    /// Its length: the end of the appended bytes.
    pub len: u64,
    /// The file's length: zeros from `len` to here.
    reserved: u64,
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
        let file = disk.create_new(&path).map_err(io(&path))?;
        let mut writer = Writer {
            number,
            path,
            file,
            len: 0,
            reserved: 0,
            writes: 0,
        };
        writer.append(first_write, 0)?;
        writer.sync()?;
        if !super::injected(super::StorageBug::NewSegmentNameNotSynced) {
            disk.sync_dir(dir).map_err(io(dir))?;
        }
        Ok(writer)
    }

    /// Opens an existing segment for appending after its `valid` bytes,
    /// durably cutting anything after them (a torn write, old reserved
    /// zeros), and reserves zeros after them again.
    pub fn reopen(
        disk: &dyn Disk,
        path: &Path,
        number: u64,
        valid: u64,
        writes: u64,
    ) -> Result<Writer, StorageError> {
        let file = disk.open_at(path, valid).map_err(io(path))?;
        let mut writer = Writer {
            number,
            path: path.to_path_buf(),
            file,
            len: valid,
            reserved: valid,
            writes,
        };
        writer.top_up_reserve()?;
        Ok(writer)
    }

    /// Appends one or more complete writes (not yet durable), and tops up
    /// the zeros reserved after them.
    pub fn append(&mut self, bytes: &[u8], writes: u64) -> Result<(), StorageError> {
        self.file.append(bytes).map_err(io(&self.path))?;
        self.len += bytes.len() as u64;
        self.reserved = self.reserved.max(self.len);
        self.writes += writes;
        self.top_up_reserve()
    }

    /// Writes [`RESERVE_AHEAD`] bytes of zeros after the end once fewer
    /// than `RESERVE_LOW` are left (durable with the next sync, like the
    /// appends before them).
    fn top_up_reserve(&mut self) -> Result<(), StorageError> {
        if self.reserved >= self.len + RESERVE_LOW {
            return Ok(());
        }
        let upto = self.len + RESERVE_AHEAD;
        self.file.reserve(upto).map_err(io(&self.path))?;
        self.reserved = upto;
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
    use crate::storage::frame_write;
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
    fn a_zero_filled_tail_is_reserved_space_not_a_torn_write() {
        let mut bytes = segment_with(3);
        let valid = bytes.len() as u64;
        bytes.extend([0u8; 100]);
        let scan = scan_bytes(&bytes).expect("zeros at the end");
        assert_eq!(scan.records.len(), 3);
        assert_eq!((scan.valid_bytes, scan.torn_bytes), (valid, 0));
        assert_eq!(scan.zero_tail_bytes, 100);
    }

    #[test]
    fn a_torn_write_into_reserved_zeros_is_torn_up_to_its_last_byte() {
        let mut bytes = segment_with(3);
        let valid = bytes.len();
        let mut last = Vec::new();
        Record::Decided(4, Entry::Noop).encode_into(&mut last);
        Record::Commit(5).encode_into(&mut last);
        bytes.extend(&last[..last.len() - 4]);
        let torn = bytes.len() - valid;
        bytes.extend([0u8; 100]);
        let scan = scan_bytes(&bytes).expect("torn");
        assert_eq!(scan.records.len(), 3);
        assert_eq!(scan.torn_bytes, torn as u64);
        assert_eq!(
            scan.valid_bytes + scan.torn_bytes + scan.zero_tail_bytes,
            bytes.len() as u64
        );
    }

    #[test]
    fn a_sealed_segment_may_end_with_reserved_zeros() {
        let mut bytes = segment_with(1);
        Record::Sealed(2).encode_into(&mut bytes);
        Record::Commit(3).encode_into(&mut bytes);
        bytes.extend([0u8; 4096]);
        let scan = scan_bytes(&bytes).expect("sealed");
        assert_eq!((scan.sealed, scan.torn_bytes), (Some(2), 0));
    }

    /// The writer keeps zeros reserved after the end of a real file, appends
    /// overwrite them (the file does not grow while they last), and a scan
    /// of the file reads every write back with the zeros apart.
    #[test]
    fn appends_overwrite_reserved_zeros_and_read_back_whole() {
        let dir = std::env::temp_dir().join(format!("wal-reserve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let disk = crate::storage::disk::OsDisk;
        let first = frame_write(&[header()], 1);
        let mut writer = Writer::create(&disk, &dir, 1, &first).expect("create");
        let path = dir.join(name(1));
        let file_len = || std::fs::metadata(&path).expect("meta").len();
        assert_eq!(file_len(), first.len() as u64 + RESERVE_AHEAD);
        let mut commit = 2;
        let mut grew = 0;
        while writer.len < 3 * RESERVE_AHEAD {
            let before = file_len();
            let write = frame_write(&[Record::Decided(commit, Entry::Noop)], commit);
            writer.append(&write, 1).expect("append");
            writer.sync().expect("sync");
            grew += u64::from(file_len() != before);
            assert!(
                file_len() >= writer.len + RESERVE_LOW,
                "zeros stay reserved"
            );
            commit += 1;
        }
        assert!(
            grew <= 3 * RESERVE_AHEAD / (RESERVE_AHEAD - RESERVE_LOW) + 1,
            "grew {grew} times"
        );
        let scan = scan(&disk, &path).expect("scan");
        assert_eq!(scan.writes_after_header, commit - 2);
        assert_eq!((scan.valid_bytes, scan.torn_bytes), (writer.len, 0));
        assert_eq!(scan.zero_tail_bytes, file_len() - writer.len);

        // Reopened after its valid bytes: the zeros are cut, then reserved again.
        drop(writer);
        let reopened = Writer::reopen(&disk, &path, 1, scan.valid_bytes, 0).expect("reopen");
        assert_eq!(file_len(), reopened.len + RESERVE_AHEAD);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Adversarial (review of the reserved zeros): the last write, never
    /// synced, overwrites reserved zeros that are already on disk, so the
    /// disk may write back its pages (or a drive its sectors) in any order.
    /// Here the page holding the end of the write (its `Commit`) reached
    /// the disk, the page holding its start did not and still reads as the
    /// reserved zeros. Nothing synced is damaged: this is a torn write and
    /// must be cut, not reported as corruption (which stops start-up).
    #[test]
    fn a_torn_write_whose_later_page_reached_the_disk_is_torn_not_corruption() {
        const PAGE: usize = 4096;
        let mut last = Vec::new();
        for s in 1000..1010 {
            Record::Decided(s, Entry::Noop).encode_into(&mut last);
        }
        Record::Commit(1011).encode_into(&mut last);
        // The synced writes end a little before a page boundary, so the
        // last write straddles it.
        let mut k = 1;
        while segment_with(k + 1).len() + 40 < PAGE {
            k += 1;
        }
        let synced = segment_with(k);
        let valid = synced.len();
        assert!(valid < PAGE && valid + last.len() > PAGE + 20);
        let mut bytes = synced.clone();
        bytes.extend(&last);
        bytes.resize(valid + RESERVE_AHEAD as usize, 0);
        // The first page was not written back: its part of the write is
        // still the reserved zeros.
        bytes[valid..PAGE].fill(0);
        let scan = scan_bytes(&bytes).unwrap_or_else(|(offset, detail)| {
            panic!("a torn, never acknowledged write reported as corruption at {offset}: {detail}")
        });
        assert_eq!(scan.valid_bytes, valid as u64);
        assert_eq!(scan.records.len() as u64, k);
        assert!(scan.torn_bytes > 0);
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
