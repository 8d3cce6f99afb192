//! Repairs, before the engine opens a store, what a crash at the wrong moment can leave behind
//! that sled 0.34.7 would refuse to open (see `docs/durability.md`).
//!
//! - `snap.*.generating`: sled writes its snapshot to this name at every open and renames it
//!   once complete and synced, but when it opens it takes the newest `snap.*` file without
//!   skipping unfinished ones (its `get_snapshot_files` filters only `.in___motion`). A kill
//!   during that write left a file that fails its CRC, and every later open failed with
//!   "Read corrupted data" (upstream spacejam/sled #1527, #1533). An unfinished snapshot is
//!   never needed: the previous snapshot and the log hold everything it would, so it is
//!   removed.
//! - `conf`: sled writes its settings file at creation in two writes (settings, then CRC)
//!   without a sync; a kill between them leaves a file it cannot parse. strata knows every
//!   setting it gave sled, so a `conf` whose CRC fails is rewritten with them.
//!
//! Both run only while strata holds the same exclusive lock sled takes on `db`, so a store
//! that another process has open is never touched.
//!
//! sled cannot tell a damaged log message or segment header from a write torn by a crash: it
//! drops it, and everything logged after it, without an error. So that such a loss is never
//! silent, every flush that follows a commit also records the store's next sequence number in
//! [`SEQ_MARK`] (after sled's flush returned, so it is never ahead of what sled made durable);
//! an open that finds the engine's counters behind it refuses the store as damaged.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::Path;

/// The file beside sled's that holds the next sequence number of the last flush.
pub(crate) const SEQ_MARK: &str = "strata-seq";

/// Records `next_seq` in the store's sequence mark: 8 bytes big-endian and their CRC-32.
/// Not synced: it may lag the engine after a power loss, which only skips the check.
pub(crate) fn write_seq_mark(dir: &Path, next_seq: u64) -> io::Result<()> {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&next_seq.to_be_bytes());
    let crc = crc32fast::hash(&bytes[..8]);
    bytes[8..].copy_from_slice(&crc.to_be_bytes());
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(SEQ_MARK))?
        .write_all(&bytes)
}

/// Reads the sequence mark; `None` when there is none or it is torn.
pub(crate) fn read_seq_mark(dir: &Path) -> io::Result<Option<u64>> {
    let bytes = match std::fs::read(dir.join(SEQ_MARK)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some((num, crc)) = bytes.get(..12).map(|b| b.split_at(8)) else {
        return Ok(None);
    };
    if crc32fast::hash(num).to_be_bytes() != crc {
        return Ok(None);
    }
    Ok(Some(u64::from_be_bytes(num.try_into().expect("8 bytes"))))
}

/// sled's settings file for a store with `segment_len`-byte segments, as sled 0.34 writes it:
/// the settings as text, then their CRC-32 in little-endian order.
pub(crate) fn sled_conf_bytes(segment_len: usize) -> Vec<u8> {
    let mut out = format!("segment_size: {segment_len}\nuse_compression: false\nversion: 0.34\n")
        .into_bytes();
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The segment size of the store at `path`, as its settings file `conf` records it (also from
/// a file whose CRC a crash cut off, which holds the settings text), or `default` for a store
/// without one (being created). Stores created before session 12 use 32 KiB segments, newer
/// ones 8 KiB; sled refuses to open a store with another size than the one it was created with.
pub(crate) fn segment_len(path: &Path, default: usize) -> io::Result<usize> {
    Ok(read_conf(path)?.map_or(default, |bytes| segment_len_in(&bytes, default)))
}

/// The settings file's bytes, or `None` when there is none.
fn read_conf(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path.join("conf")) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The segment size a settings file's bytes name, or `default`.
fn segment_len_in(bytes: &[u8], default: usize) -> usize {
    parse_segment_len(bytes).unwrap_or(default)
}

/// The `segment_size` setting of a sled settings file's text, if it holds a size sled accepts.
fn parse_segment_len(bytes: &[u8]) -> Option<usize> {
    bytes.split(|&b| b == b'\n').find_map(|line| {
        let value = line.strip_prefix(b"segment_size: ")?;
        let n: usize = std::str::from_utf8(value).ok()?.parse().ok()?;
        (n.is_power_of_two() && (256..=1 << 24).contains(&n)).then_some(n)
    })
}

/// Whether sled would read `bytes` as an intact settings file: either too short to be one (sled
/// rewrites those itself) or ending in the CRC of what precedes it.
fn conf_is_intact(bytes: &[u8]) -> bool {
    if bytes.len() <= 8 {
        return true;
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    crc32fast::hash(body).to_le_bytes() == crc
}

/// Repairs the store at `path` if nobody holds it, returning one line per repair and the
/// segment size to open it with ([`segment_len`]; `default` for a new store), from one read
/// of its settings file. Returns no repairs when the store is in use (the engine's own open
/// then reports the lock) or new.
pub(crate) fn repair_before_open(path: &Path, default: usize) -> io::Result<(Vec<String>, usize)> {
    let db = path.join("db");
    let lock_file = match OpenOptions::new().read(true).write(true).open(&db) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // No data file: a store being created, or a creation cut short before sled made
            // its data file. Only the settings file can need repair, and no process can hold
            // the store without the data file.
            let (repair, len) = repair_conf(path, default)?;
            return Ok((repair.into_iter().collect(), len));
        }
        Err(e) => return Err(e),
    };
    match lock_file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok((Vec::new(), segment_len(path, default)?)),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    let mut repairs = remove_unfinished_snapshots(path)?;
    let (repair, len) = repair_conf(path, default)?;
    repairs.extend(repair);
    // Dropping the file releases the lock; sled takes it again as it opens.
    drop(lock_file);
    Ok((repairs, len))
}

fn remove_unfinished_snapshots(path: &Path) -> io::Result<Vec<String>> {
    let mut repairs = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())?;
            repairs.push(format!(
                "removed {name}, an engine snapshot whose writing was cut short by a crash \
                 (the previous snapshot and the log hold its contents)"
            ));
        }
    }
    if !repairs.is_empty() {
        sync_dir(path)?;
    }
    Ok(repairs)
}

/// Rewrites a settings file a crash cut short, with the segment size it still names (else
/// `default`); returns the repair made, if any, and the store's segment size.
fn repair_conf(path: &Path, default: usize) -> io::Result<(Option<String>, usize)> {
    let Some(bytes) = read_conf(path)? else {
        return Ok((None, default));
    };
    let segment_len = segment_len_in(&bytes, default);
    if conf_is_intact(&bytes) {
        return Ok((None, segment_len));
    }
    let conf = path.join("conf");
    let tmp = path.join("conf.strata-tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&sled_conf_bytes(segment_len))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &conf)?;
    sync_dir(path)?;
    let repair = "rewrote the engine's settings file `conf`, cut short by a crash while the \
                  store was created";
    Ok((Some(repair.to_owned()), segment_len))
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_bytes_match_what_sled_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .segment_size(crate::engine::sled::SEGMENT_LEN)
            .open()
            .unwrap();
        drop(db);
        let written = std::fs::read(dir.path().join("conf")).unwrap();
        assert_eq!(written, sled_conf_bytes(crate::engine::sled::SEGMENT_LEN));
        assert!(conf_is_intact(&written));
    }

    #[test]
    fn a_store_keeps_the_segment_size_it_was_created_with() {
        let dir = tempfile::tempdir().unwrap();
        // No settings file yet: a store being created gets the default.
        assert_eq!(segment_len(dir.path(), 8192).unwrap(), 8192);
        std::fs::write(dir.path().join("conf"), sled_conf_bytes(32 * 1024)).unwrap();
        assert_eq!(segment_len(dir.path(), 8192).unwrap(), 32 * 1024);
        // A file whose CRC a crash cut off still names the size.
        let torn = sled_conf_bytes(32 * 1024);
        std::fs::write(dir.path().join("conf"), &torn[..torn.len() - 2]).unwrap();
        assert_eq!(segment_len(dir.path(), 8192).unwrap(), 32 * 1024);
        // Nothing sled would accept: the default.
        for text in [
            &b"segment_size: 3000\n"[..],
            b"segment_size: 1\n",
            b"segm",
            b"",
        ] {
            std::fs::write(dir.path().join("conf"), text).unwrap();
            assert_eq!(segment_len(dir.path(), 8192).unwrap(), 8192, "{text:?}");
        }
    }

    #[test]
    fn an_unfinished_snapshot_is_removed_and_a_finished_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"").unwrap();
        std::fs::write(dir.path().join("snap.0000000000000010"), b"done").unwrap();
        std::fs::write(dir.path().join("snap.0000000000000020.generating"), b"cut").unwrap();
        let (repairs, _) = repair_before_open(dir.path(), 4096).unwrap();
        assert_eq!(repairs.len(), 1, "{repairs:?}");
        assert!(repairs[0].contains("snap.0000000000000020.generating"));
        assert!(dir.path().join("snap.0000000000000010").exists());
        assert!(!dir.path().join("snap.0000000000000020.generating").exists());
    }

    #[test]
    fn nothing_is_touched_while_another_handle_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::write(&db, b"").unwrap();
        let holder = File::open(&db).unwrap();
        holder.lock().unwrap();
        let snap = dir.path().join("snap.0000000000000020.generating");
        std::fs::write(&snap, b"being written").unwrap();
        assert!(repair_before_open(dir.path(), 4096).unwrap().0.is_empty());
        assert!(snap.exists());
    }

    #[test]
    fn the_sequence_mark_roundtrips_and_a_torn_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_seq_mark(dir.path()).unwrap(), None);
        write_seq_mark(dir.path(), 1234).unwrap();
        assert_eq!(read_seq_mark(dir.path()).unwrap(), Some(1234));
        write_seq_mark(dir.path(), 7).unwrap();
        assert_eq!(read_seq_mark(dir.path()).unwrap(), Some(7));
        let mut bytes = std::fs::read(dir.path().join(SEQ_MARK)).unwrap();
        bytes[3] ^= 1;
        std::fs::write(dir.path().join(SEQ_MARK), &bytes).unwrap();
        assert_eq!(read_seq_mark(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_torn_conf_is_rewritten_and_an_intact_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let full = sled_conf_bytes(4096);
        std::fs::write(dir.path().join("conf"), &full[..full.len() - 4]).unwrap();
        let (repairs, _) = repair_before_open(dir.path(), 4096).unwrap();
        assert_eq!(repairs.len(), 1, "{repairs:?}");
        assert_eq!(std::fs::read(dir.path().join("conf")).unwrap(), full);
        assert!(repair_before_open(dir.path(), 4096).unwrap().0.is_empty());
    }
}
