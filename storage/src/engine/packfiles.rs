//! Write-once files read by offset, beside the engine's files (store format 4): packs,
//! `packs/<n as 16 hex digits>.pack`, and the blocks of record runs, `runs/<n>.run`. Each is
//! written once (to a `.tmp` name, synced, renamed, the folder synced) and read by offset, so
//! a read of one packed object or one run block reads those bytes and no more. Through
//! format 3 both were sled values, which sled reads whole (a 150 KB pack for a 2 KB object, a
//! node of up to 16 run blocks for one record) and checks with a CRC over all of it on every
//! cold read.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::Value;
use crate::error::{BackendError, StoreError, StoreResult};
use crate::read::lock;

/// The folder of pack files inside a store, their suffix, and what errors call one.
pub(crate) const PACKS: Kind = ("packs", "pack", "pack");

/// The folder of record-run block files inside a store, their suffix, and what errors call
/// one.
pub(crate) const RUNS: Kind = ("runs", "run", "record run");

/// A kind of files: folder, suffix, name in errors.
pub(crate) type Kind = (&'static str, &'static str, &'static str);

/// Open handles kept for reads; beyond this many, the table is emptied and refilled.
const MAX_OPEN: usize = 256;

/// A file read this many times by one process is mapped into memory (a batch of reads, a
/// verify): later reads are slices of the mapping, with no system call, no copy and no
/// fresh memory (the page cache's pages are mapped, 16 at a fault). 200 random versions of
/// eslint-rules-docs: 8.0 -> 6.6 ms (git 6.7); before session 13 such a file was read whole
/// into memory, after more reads for a larger file. Fewer reads go through `pread`: mapping
/// costs a one-version `get` 0.1 ms more than its few `pread`s.
const MAP_AFTER: u32 = 8;

/// An open file: its handle, size, how often it was read, and its mapping once mapped.
#[derive(Debug, Clone)]
struct Opened {
    file: Arc<File>,
    size: u64,
    reads: u32,
    mapped: Option<Value>,
}

/// The files of one kind (packs or runs) of one store.
#[derive(Debug)]
pub(crate) struct PackFiles {
    dir: PathBuf,
    suffix: &'static str,
    name: &'static str,
    /// Open files (a file never changes once written; one written again under the same
    /// number is dropped from here first).
    open: Mutex<HashMap<u64, Opened>>,
}

/// An I/O error of a pack file as a store error: a full disk is [`StoreError::DiskFull`].
fn io(e: std::io::Error) -> StoreError {
    if super::sled::is_disk_full(&e) {
        StoreError::disk_full()
    } else {
        StoreError::Backend(BackendError::new(e))
    }
}

fn sync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

fn file_name(n: u64, suffix: &str) -> String {
    format!("{n:016x}.{suffix}")
}

fn parse_file_name(name: &str, suffix: &str) -> Option<u64> {
    let hex = name.strip_suffix(suffix)?.strip_suffix('.')?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

impl PackFiles {
    /// The files of `kind` ([`PACKS`] or [`RUNS`]) under `store`; removes what a write cut
    /// short left (`*.tmp`).
    pub(crate) fn open(store: &Path, kind: Kind) -> StoreResult<Self> {
        let dir = store.join(kind.0);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".tmp") {
                    std::fs::remove_file(entry.path()).map_err(io)?;
                }
            }
        }
        Ok(Self {
            dir,
            suffix: kind.1,
            name: kind.2,
            open: Mutex::default(),
        })
    }

    fn path(&self, n: u64) -> PathBuf {
        self.dir.join(file_name(n, self.suffix))
    }

    /// Writes pack `n` whole and makes it durable before returning (its index entries are
    /// written after it, so a crash never leaves an entry naming bytes that are not there).
    pub(crate) fn write(&self, n: u64, bytes: &[u8]) -> StoreResult<()> {
        if !self.dir.is_dir() {
            std::fs::create_dir_all(&self.dir).map_err(io)?;
            if let Some(store) = self.dir.parent() {
                sync_dir(store)?;
            }
        }
        let tmp = self.dir.join(format!("{}.tmp", file_name(n, self.suffix)));
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, self.path(n))) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        self.forget(n);
        sync_dir(&self.dir)
    }

    /// Drops what is kept of file `n` (it is written again or removed; a mapping lives on
    /// while a value read from it does, on the file as it was).
    fn forget(&self, n: u64) {
        lock(&self.open).remove(&n);
    }

    /// File `n` as opened (counting this read), or `None` when there is none.
    fn file(&self, n: u64) -> StoreResult<Option<Opened>> {
        if let Some(o) = lock(&self.open).get_mut(&n) {
            o.reads = o.reads.saturating_add(1);
            return Ok(Some(o.clone()));
        }
        let file = match File::open(self.path(n)) {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let size = file.metadata().map_err(io)?.len();
        let opened = Opened {
            file,
            size,
            reads: 1,
            mapped: None,
        };
        let mut open = lock(&self.open);
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        open.insert(n, opened.clone());
        Ok(Some(opened))
    }

    /// Maps file `n` and keeps the mapping, when it has been read often enough.
    fn map_when_read_often(&self, n: u64, opened: &Opened) -> Option<Value> {
        if opened.reads < MAP_AFTER {
            return None;
        }
        let mapped = map(&opened.file, opened.size)?;
        if let Some(o) = lock(&self.open).get_mut(&n) {
            o.mapped = Some(mapped.clone());
        }
        Some(mapped)
    }

    /// Pack `n`'s bytes, whole.
    pub(crate) fn read_all(&self, n: u64) -> StoreResult<Option<Vec<u8>>> {
        match std::fs::read(self.path(n)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// `len` bytes of pack `n` from `offset`: `None` when there is no such pack, corruption
    /// when the file is shorter than that.
    pub(crate) fn read_range(&self, n: u64, offset: u64, len: u64) -> StoreResult<Option<Value>> {
        let Some(opened) = self.file(n)? else {
            return Ok(None);
        };
        let size = opened.size;
        let end = offset.checked_add(len).filter(|end| *end <= size);
        let Some(len) = end.and_then(|_| usize::try_from(len).ok()) else {
            return Err(StoreError::corrupt(
                format!("{} {n}", self.name),
                super::cut_short(size, offset, len),
            ));
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let mapped = opened
            .mapped
            .clone()
            .or_else(|| self.map_when_read_often(n, &opened));
        if let Some(mapped) = mapped {
            return Ok(Some(mapped.slice(start..start + len)));
        }
        let out = read_shared(&opened.file, offset, len).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                StoreError::corrupt(
                    format!("{} {n}", self.name),
                    "its file was cut short while read",
                )
            } else {
                io(e)
            }
        })?;
        Ok(Some(Value::shared(out)))
    }

    /// Pack `n`'s size in bytes.
    pub(crate) fn len(&self, n: u64) -> StoreResult<Option<u64>> {
        // A file is written once, whole, before it is named: the size seen when it was opened
        // for reading stays its size (a `stat` per call cost reads that asked often).
        if let Some(o) = lock(&self.open).get(&n) {
            return Ok(Some(o.size));
        }
        match std::fs::metadata(self.path(n)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Removes pack `n`'s file, if there is one.
    pub(crate) fn remove(&self, n: u64) -> StoreResult<()> {
        self.forget(n);
        match std::fs::remove_file(self.path(n)) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// The numbers of every pack file.
    pub(crate) fn list(&self) -> StoreResult<Vec<u64>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io)?;
            if let Some(n) = entry
                .file_name()
                .to_str()
                .and_then(|name| parse_file_name(name, self.suffix))
            {
                out.push(n);
            }
        }
        Ok(out)
    }
}

/// Maps `file` (of `size` bytes when it was opened) into memory, read-only; `None` when it is
/// empty, has changed size, or the system refuses (reads then go through `pread`).
fn map(file: &File, size: u64) -> Option<Value> {
    if size == 0 {
        return None;
    }
    // SAFETY: a mapped file must not change while mapped. Pack and run files never do: each
    // is written whole under a temporary name, synced and renamed before anything names it,
    // and is then only read until it is removed (a removed file stays mapped as it was; one
    // written again under its number is a new file, and `forget` drops the old mapping from
    // the table). Only a change made behind strata's back, cutting a file short while a
    // process has it mapped, could touch a page past its end: the process then gets SIGBUS,
    // as git does with its mapped packs; it never reads other bytes than the file's.
    #[allow(unsafe_code)]
    let mapped = unsafe { memmap2::Mmap::map(file) }.ok()?;
    (mapped.len() as u64 == size).then(|| Value::mapped(Arc::new(mapped)))
}

/// Reads `len` bytes of `file` at `offset` straight into shared memory: one allocation and
/// one copy (a `Vec` turned into an `Arc<[u8]>` is allocated and copied again, which was
/// most of reading a 1.9 MB pack file whole).
fn read_shared(file: &std::fs::File, offset: u64, len: usize) -> std::io::Result<Arc<[u8]>> {
    let mut bytes: Arc<[u8]> = std::iter::repeat_n(0u8, len).collect();
    let buf = Arc::get_mut(&mut bytes).expect("a new Arc has no other owner");
    file.read_exact_at(buf, offset)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_are_written_read_by_offset_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let files = PackFiles::open(dir.path(), PACKS).unwrap();
        assert!(files.list().unwrap().is_empty());
        files.write(0x2a, b"\x01hello pack").unwrap();
        assert_eq!(files.list().unwrap(), vec![0x2a]);
        assert!(dir.path().join("packs/000000000000002a.pack").is_file());
        assert_eq!(&*files.read_range(0x2a, 1, 5).unwrap().unwrap(), b"hello");
        // Read often, a file is mapped and read from memory, with the same bounds.
        for _ in 2..MAP_AFTER {
            assert_eq!(&*files.read_range(0x2a, 7, 4).unwrap().unwrap(), b"pack");
        }
        assert!(
            lock(&files.open)[&0x2a].mapped.is_none(),
            "mapped too early"
        );
        assert_eq!(&*files.read_range(0x2a, 7, 4).unwrap().unwrap(), b"pack");
        assert!(lock(&files.open)[&0x2a].mapped.is_some());
        assert_eq!(&*files.read_range(0x2a, 1, 5).unwrap().unwrap(), b"hello");
        // A value read from a mapping outlives the file and the mapping's table entry, with
        // the bytes the file had; the file written again under its number reads anew.
        let big = vec![7u8; 64 << 10];
        files.write(0x2b, &big).unwrap();
        let mut held = None;
        for _ in 0..MAP_AFTER {
            held = files.read_range(0x2b, 100, 10).unwrap();
        }
        assert!(lock(&files.open)[&0x2b].mapped.is_some());
        files.write(0x2b, &[9u8; 200]).unwrap();
        assert_eq!(
            &*files.read_range(0x2b, 100, 10).unwrap().unwrap(),
            &[9u8; 10]
        );
        assert_eq!(&*held.unwrap(), &[7u8; 10]);
        files.remove(0x2b).unwrap();
        assert!(files.read_range(0x2a, 8, 5).unwrap_err().is_corruption());
        assert_eq!(files.len(0x2a).unwrap(), Some(11));
        // Past the end is damage, named; a missing pack is None.
        let e = files.read_range(0x2a, 8, 5).unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("pack 42"),
            "{e}"
        );
        assert!(files.read_range(7, 0, 1).unwrap().is_none());
        // A leftover of a write cut short goes at the next open.
        std::fs::write(dir.path().join("packs/0000000000000007.pack.tmp"), b"x").unwrap();
        let files = PackFiles::open(dir.path(), PACKS).unwrap();
        assert_eq!(files.list().unwrap(), vec![0x2a]);
        // Run files live apart and are listed apart.
        let runs = PackFiles::open(dir.path(), RUNS).unwrap();
        runs.write(3, b"blocks").unwrap();
        assert!(dir.path().join("runs/0000000000000003.run").is_file());
        assert_eq!(runs.list().unwrap(), vec![3]);
        files.remove(0x2a).unwrap();
        assert!(files.list().unwrap().is_empty());
        assert!(files.read_all(0x2a).unwrap().is_none());
    }
}
