//! The file operations a durable replica uses, behind a trait, so tests can
//! run the real store against a disk that loses power (`fault_disk`).
//!
//! The trait is deliberately small: whole-file reads, appends to a file
//! opened once, and the metadata operations whose durability a crash tests
//! (create, rename, remove). Every operation says what survives a power
//! loss: appended bytes only after [`AppendFile::sync`], and a created,
//! renamed or removed name only after [`Disk::sync_dir`] on its directory.
//! The store is written against those rules, not against what a kill -9
//! happens to leave (the page cache keeps everything a killed process wrote).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file open for appending.
pub trait AppendFile: Send {
    /// Appends bytes. They survive a power loss only once synced.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable (`fdatasync`). Does not make
    /// the file's name durable: see [`Disk::sync_dir`].
    fn sync(&mut self) -> io::Result<()>;
    /// A handle that makes the bytes appended so far durable, and that can
    /// be sent to another thread to do it there (the WAL's sync job, see
    /// `storage::SyncJob`). Nothing may be appended between taking it and
    /// its sync: the handle covers exactly what was appended before it.
    fn sync_handle(&self) -> io::Result<Box<dyn SyncHandle>>;
    /// Makes the file at least `upto` bytes long by writing zeros after its
    /// end, without moving where the next append goes: appends then
    /// overwrite zeros instead of growing the file, and the `fdatasync` of
    /// an overwrite need not also journal the file's new size (a third
    /// less time per sync on ext4 here, see `docs/durability.md`). The zeros
    /// are durable like an append: after the next sync.
    fn reserve(&mut self, upto: u64) -> io::Result<()>;
}

/// Makes a file's bytes, appended before the handle was taken, durable.
pub trait SyncHandle: Send {
    /// `fdatasync` the file.
    fn sync(&self) -> io::Result<()>;
}

/// The file system as the store sees it.
pub trait Disk: Send + Sync {
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Creates `dir` and any missing parents (durable only once each new
    /// directory's parent is synced).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// At most the first `max` bytes of a file.
    fn read_head(&self, path: &Path, max: usize) -> io::Result<Vec<u8>>;
    /// Creates a new, empty file; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// Creates a file, or empties an existing one.
    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// Opens an existing file, durably cut to `len` bytes, to append after them.
    fn open_at(&self, path: &Path, len: u64) -> io::Result<Box<dyn AppendFile>>;
    /// Renames `from` to `to` (same directory), replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the names created, renamed or removed in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsDisk;

/// A file open for appending, shared with the sync handles taken of it.
struct OsFile(Arc<File>);

impl OsFile {
    fn boxed(file: File) -> Box<dyn AppendFile> {
        Box::new(OsFile(Arc::new(file)))
    }
}

impl AppendFile for OsFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        (&*self.0).write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_handle(&self) -> io::Result<Box<dyn SyncHandle>> {
        Ok(Box::new(OsSync(self.0.clone())))
    }

    fn reserve(&mut self, upto: u64) -> io::Result<()> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let mut at = self.0.metadata()?.len();
        while at < upto {
            let n = (upto - at).min(ZEROS.len() as u64);
            // A positioned write: the appends' offset does not move.
            self.0.write_all_at(&ZEROS[..n as usize], at)?;
            at += n;
        }
        Ok(())
    }
}

/// `fdatasync` of an `OsFile` from any thread (it covers everything written
/// to the file before it starts).
struct OsSync(Arc<File>);

impl SyncHandle for OsSync {
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Disk for OsDisk {
    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn read_head(&self, path: &Path, max: usize) -> io::Result<Vec<u8>> {
        let mut head = Vec::with_capacity(max.min(1 << 16));
        File::open(path)?.take(max as u64).read_to_end(&mut head)?;
        Ok(head)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new().create_new(true).write(true).open(path)?;
        Ok(OsFile::boxed(file))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        Ok(OsFile::boxed(File::create(path)?))
    }

    fn open_at(&self, path: &Path, len: u64) -> io::Result<Box<dyn AppendFile>> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()?;
        file.seek(SeekFrom::Start(len))?;
        Ok(OsFile::boxed(file))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The numbers `n` of the names `<prefix><n><suffix>` among `names`,
/// smallest first (segments and snapshots are named so).
pub fn numbered(names: &[String], prefix: &str, suffix: &str) -> Vec<u64> {
    let mut out: Vec<u64> = names
        .iter()
        .filter_map(|name| {
            name.strip_prefix(prefix)
                .and_then(|s| s.strip_suffix(suffix))
                .and_then(|s| s.parse::<u64>().ok())
        })
        .collect();
    out.sort_unstable();
    out
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` (and missing parents) so that it survives a power loss:
/// each directory created is synced into its parent.
pub fn create_dir_durably(disk: &dyn Disk, dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(p) = at.filter(|p| !p.as_os_str().is_empty()) {
        if disk.exists(p)? {
            break;
        }
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    disk.create_dir_all(dir)?;
    for created in missing.iter().rev() {
        disk.sync_dir(&parent_of(created))?;
    }
    Ok(())
}

/// Replaces `dir/name` with `bytes` so that a power loss leaves either the old
/// content or the new, never a mix: a temporary file, synced, renamed over
/// the name, and the directory synced.
pub fn write_atomically(disk: &dyn Disk, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = disk.create(&tmp)?;
    file.append(bytes)?;
    file.sync()?;
    drop(file);
    rename_durably(disk, dir, &tmp, &dir.join(name))
}

/// Renames the synced file `tmp` over `to` in `dir`, and syncs the directory.
pub fn rename_durably(disk: &dyn Disk, dir: &Path, tmp: &Path, to: &Path) -> io::Result<()> {
    disk.rename(tmp, to)?;
    disk.sync_dir(dir)
}

/// Removes `path`; a file already gone counts as removed (the log files a
/// checkpoint made obsolete are removed off the driver's thread, and a
/// later checkpoint or a recovery may list one that is still being removed).
pub fn remove_if_present(disk: &dyn Disk, path: &Path) -> io::Result<()> {
    match disk.remove(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        done => done,
    }
}
