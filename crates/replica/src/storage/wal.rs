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

use super::errors::{StorageError, io};
use super::record::{HEADER_BYTES, RECORD_BYTES_MAX, Record, crc_matches};
use super::sync_dir;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The file name of segment `n`.
pub fn name(n: u64) -> String {
    format!("wal-{n:016}.log")
}

/// Segments in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(n) = name
            .strip_prefix("wal-")
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Bytes of complete writes.
    pub valid_bytes: u64,
    /// Records replayed (in complete writes).
    pub records: u64,
    /// Bytes after `valid_bytes` belonging to an interrupted write.
    pub torn_bytes: u64,
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
        Err(d) => Parsed::Damaged(d),
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

/// Replays every complete write of a segment in order. An interrupted last
/// write is reported as torn (not an error); corruption is an error naming
/// the file and offset.
pub fn scan(path: &Path, mut apply: impl FnMut(Record)) -> Result<Scan, StorageError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let mut off = 0usize;
    let mut committed = 0usize;
    let mut records = 0;
    let mut batch: Vec<Record> = Vec::new();
    while off < bytes.len() {
        match parse_at(&bytes, off) {
            Parsed::Record(Record::Commit(_), end) => {
                records += batch.len() as u64;
                batch.drain(..).for_each(&mut apply);
                committed = end;
                off = end;
            }
            Parsed::Record(r, end) => {
                batch.push(r);
                off = end;
            }
            Parsed::Incomplete | Parsed::Damaged(_) if !complete_write_after(&bytes, off + 1) => {
                break; // the interrupted last write
            }
            Parsed::Incomplete => {
                return Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    offset: off as u64,
                    detail: "a record's length runs past complete data".into(),
                });
            }
            Parsed::Damaged(detail) => {
                return Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    offset: off as u64,
                    detail,
                });
            }
        }
    }
    Ok(Scan {
        valid_bytes: committed as u64,
        records,
        torn_bytes: (bytes.len() - committed) as u64,
    })
}

/// The segment being appended to.
pub struct Writer {
    /// Its number.
    pub number: u64,
    path: PathBuf,
    file: File,
    /// Its length.
    pub len: u64,
}

impl Writer {
    /// Creates segment `number` in `dir`.
    pub fn create(dir: &Path, number: u64) -> Result<Writer, StorageError> {
        let path = dir.join(name(number));
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        sync_dir(dir)?;
        Ok(Writer {
            number,
            path,
            file,
            len: 0,
        })
    }

    /// Opens an existing segment for appending after its `valid` bytes,
    /// cutting anything after them.
    pub fn reopen(path: &Path, number: u64, valid: u64) -> Result<Writer, StorageError> {
        let mut file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        file.set_len(valid).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        file.seek(SeekFrom::Start(valid)).map_err(io(path))?;
        Ok(Writer {
            number,
            path: path.to_path_buf(),
            file,
            len: valid,
        })
    }

    /// Appends bytes (not yet durable).
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.file.write_all(bytes).map_err(io(&self.path))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Makes everything appended durable; returns how long it took.
    pub fn sync(&mut self) -> Result<Duration, StorageError> {
        let started = Instant::now();
        self.file.sync_data().map_err(io(&self.path))?;
        Ok(started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::Entry;

    fn segment_with(records: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Writer::create(dir.path(), 1).expect("create");
        let mut buf = Vec::new();
        for s in 1..=records {
            Record::Decided(s, Entry::Noop).encode_into(&mut buf);
            Record::Commit(s).encode_into(&mut buf);
        }
        w.append(&buf).expect("append");
        w.sync().expect("sync");
        let path = dir.path().join(name(1));
        (dir, path)
    }

    #[test]
    fn a_clean_segment_reads_back_every_record() {
        let (_d, path) = segment_with(10);
        let mut n = 0;
        let scan = scan(&path, |_| n += 1).expect("clean");
        assert_eq!((n, scan.torn_bytes), (10, 0));
        assert_eq!(scan.records, 10);
    }

    #[test]
    fn a_torn_last_record_is_reported_not_an_error() {
        let (_d, path) = segment_with(10);
        let len = std::fs::metadata(&path).expect("meta").len();
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.set_len(len - 3).expect("truncate");
        let scan = scan(&path, |_| {}).expect("torn is fine");
        assert_eq!(scan.records, 9);
        assert!(scan.torn_bytes > 0);
    }

    #[test]
    fn a_flipped_byte_in_the_middle_is_corruption_with_its_offset() {
        let (_d, path) = segment_with(10);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[30] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        match scan(&path, |_| {}) {
            Err(StorageError::Corrupt { offset, .. }) => assert!(offset <= 30),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn a_damaged_length_in_the_middle_is_corruption_not_a_torn_tail() {
        let (_d, path) = segment_with(10);
        let mut bytes = std::fs::read(&path).expect("read");
        // The second record's length now claims far more than the file holds.
        let second = {
            let first_len = u32::from_be_bytes(bytes[0..4].try_into().expect("4")) as usize;
            HEADER_BYTES + first_len
        };
        bytes[second] = 0x00;
        bytes[second + 1] = 0xff;
        std::fs::write(&path, &bytes).expect("write");
        assert!(matches!(
            scan(&path, |_| {}),
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[test]
    fn an_uncommitted_last_write_is_dropped() {
        let (_d, path) = segment_with(3);
        let mut bytes = std::fs::read(&path).expect("read");
        Record::Decided(4, Entry::Noop).encode_into(&mut bytes); // no Commit
        std::fs::write(&path, &bytes).expect("write");
        let mut n = 0;
        let scan = scan(&path, |_| n += 1).expect("torn");
        assert_eq!(n, 3);
        assert!(scan.torn_bytes > 0);
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let (_d, path) = segment_with(3);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend([0u8; 100]);
        std::fs::write(&path, &bytes).expect("write");
        let scan = scan(&path, |_| {}).expect("torn");
        assert_eq!((scan.records, scan.torn_bytes), (3, 100));
    }
}
