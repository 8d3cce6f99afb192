//! Sorted runs over an engine: an engine that keeps the small records of the store (names,
//! documents, version pages, feed pages, pack index entries) in a few large, write-once
//! values instead of one engine entry each.
//!
//! Why (measured, `BENCHMARKS.md`): sled keeps a small entry at 2.3-3.9x its size on disk,
//! and a value over a quarter segment (8 KiB) at about 1x, as a file of its own. A store of
//! 312 documents and 7,087 versions held 450 KB of small records in a 2.0 MB data file.
//!
//! How: writes to the record spaces go to the inner engine as before (the *memtable*); a
//! remove of a key also writes a tombstone, since an older run may hold the key. When the
//! memtable passes [`MEMTABLE_ENTRIES`] entries, all of it (entries and tombstones) becomes
//! one new *run* (one value in the `runs` space) in the same atomic batch that removes it from
//! the memtable. When there are more than [`MAX_RUNS`] runs, they are merged into one, which
//! drops tombstones and shadowed entries. A read looks in the memtable, then its tombstones,
//! then the runs from newest to oldest. Objects and meta records are not in runs: loose
//! objects are folded into packs by the layer above, and meta records are compared-and-swapped.
//!
//! Expectations on record spaces are checked against this merged view under this layer's
//! write lock, so they hold between the writers of one process (sled admits one); expectations
//! on other spaces go to the inner engine.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::keyfilter::{KeyFilter, LazyFilter};
use super::{Batch, Engine, Entries, PACK_KEY, Space, Value, WriteError};
use crate::error::{StoreError, StoreResult};
use crate::fasthash::insert_bounded;
use crate::read::lock;

/// The memtable becomes a run past this many entries (and tombstones).
pub(crate) const MEMTABLE_ENTRIES: usize = 512;

/// A batch with at least the memtable's threshold over this many record changes becomes a
/// run of its own (the memtable, older, becomes one first); a batch marked `direct`, with
/// the threshold over this many squared (8 records by default).
pub(crate) const DIRECT_DIVISOR: usize = 8;

/// More runs than this are merged into one.
pub(crate) const MAX_RUNS: usize = 8;

/// The `meta` key of the runs' generation: a counter (`u64 BE`) that every compaction
/// advances, in the batch that changes the runs.
const GENERATION: &[u8] = b"runs-generation";

/// The first byte of every run value.
pub(crate) const RUN_FORMAT: u8 = 1;

/// The record spaces kept in runs, with the tag that stands for each in a run's keys.
const TAGS: [(Space, u8); 5] = [
    (Space::Names, 1),
    (Space::Docs, 2),
    (Space::Versions, 3),
    (Space::Feed, 4),
    (Space::Index, 5),
];

fn tag_of(space: Space) -> Option<u8> {
    TAGS.iter().find(|(s, _)| *s == space).map(|(_, t)| *t)
}

fn full_key(tag: u8, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(tag);
    k.extend_from_slice(key);
    k
}

/// One run: sorted entries `tag ‖ key → value or tombstone`, readable in place.
///
/// Layout: `RUN_FORMAT`, `count: u32 BE`, `count` entry offsets (`u32 BE`, from the start of
/// the value), then the entries, each `key_len: u32 BE ‖ full key ‖ kind: u8 (0 tombstone,
/// 1 value) ‖ [value_len: u32 BE ‖ value]`, sorted by full key, no key twice.
#[derive(Clone, Debug)]
struct Run {
    bytes: Value,
    count: usize,
}

/// What a run says about a key.
enum Found {
    Value(Value),
    Tombstone,
}

impl Run {
    fn parse(n: u64, bytes: Value) -> StoreResult<Self> {
        let bad = |why: &str| StoreError::corrupt(format!("record run {n}"), why.to_owned());
        if bytes.first() != Some(&RUN_FORMAT) {
            return Err(bad("does not start with the run format"));
        }
        // The trailer: CRC-32 of everything before it. A block is checked whole when it is
        // read from the engine, so a damaged block is an error, never a misread record.
        let body = sealed_len(&bytes).ok_or_else(|| bad("fails its checksum"))?;
        let bytes = bytes.slice(0..body);
        let count = read_u32(&bytes, 1).ok_or_else(|| bad("is too short for its count"))? as usize;
        count
            .checked_mul(4)
            .and_then(|t| t.checked_add(5))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad("is too short for its offset table"))?;
        Ok(Self { bytes, count })
    }

    /// Entry `i`: its full key and what it holds, as byte ranges of the run.
    fn entry(&self, i: usize) -> Option<(std::ops::Range<usize>, Option<std::ops::Range<usize>>)> {
        Self::entry_of(&self.bytes, i)
    }

    /// [`Run::entry`] on the run's bytes, dereferenced once by the caller (a binary search
    /// reads several entries, and each dereference of an engine value matches its kind).
    fn entry_of(
        bytes: &[u8],
        i: usize,
    ) -> Option<(std::ops::Range<usize>, Option<std::ops::Range<usize>>)> {
        let at = read_u32(bytes, 5 + 4 * i)? as usize;
        let klen = read_u32(bytes, at)? as usize;
        let kstart = at.checked_add(4)?;
        let kend = kstart.checked_add(klen)?;
        let kind = *bytes.get(kend)?;
        let key = kstart..kend;
        match kind {
            0 => {
                let _ = bytes.get(kstart..kend)?;
                Some((key, None))
            }
            1 => {
                let vlen = read_u32(bytes, kend + 1)? as usize;
                let vstart = kend.checked_add(5)?;
                let vend = vstart.checked_add(vlen)?;
                let _ = bytes.get(vstart..vend)?;
                Some((key, Some(vstart..vend)))
            }
            _ => None,
        }
    }

    fn damaged(n: u64, i: usize) -> StoreError {
        StoreError::corrupt(format!("record run {n}"), format!("entry {i} is damaged"))
    }

    fn value(&self, range: std::ops::Range<usize>) -> Value {
        self.bytes.slice(range)
    }

    /// The number of leading entries whose full key satisfies `before` (true for a prefix of
    /// the sorted keys, false after it): the binary search every lookup uses.
    fn partition(&self, n: u64, before: impl Fn(&[u8]) -> bool) -> StoreResult<usize> {
        let bytes: &[u8] = &self.bytes;
        let (mut a, mut b) = (0usize, self.count);
        while a < b {
            let mid = a + (b - a) / 2;
            let (k, _) = Self::entry_of(bytes, mid).ok_or_else(|| Self::damaged(n, mid))?;
            if before(&bytes[k]) {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        Ok(a)
    }

    /// Binary search for `key`.
    fn find(&self, n: u64, key: &[u8]) -> StoreResult<Option<Found>> {
        let i = self.partition(n, |k| k < key)?;
        if i == self.count {
            return Ok(None);
        }
        let (k, v) = self.entry(i).ok_or_else(|| Self::damaged(n, i))?;
        if &self.bytes[k] != key {
            return Ok(None);
        }
        Ok(Some(match v {
            Some(v) => Found::Value(self.value(v)),
            None => Found::Tombstone,
        }))
    }

    /// The index of the first entry whose full key satisfies the lower bound `lo`.
    fn lower_bound(&self, n: u64, lo: &Bound<Vec<u8>>) -> StoreResult<usize> {
        self.partition(n, |k| match lo {
            Bound::Included(l) => k < l.as_slice(),
            Bound::Excluded(l) => k <= l.as_slice(),
            Bound::Unbounded => false,
        })
    }

    /// The last entry whose full key is within the bounds: its key and what it holds.
    fn last_in(
        &self,
        n: u64,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
    ) -> StoreResult<Option<RunEntry>> {
        // The first index past the upper bound, then one back.
        let past = self.partition(n, |k| within(k, &Bound::Unbounded, hi))?;
        let Some(i) = past.checked_sub(1) else {
            return Ok(None);
        };
        let (k, v) = self.entry(i).ok_or_else(|| Self::damaged(n, i))?;
        let key = &self.bytes[k];
        if !within(key, lo, &Bound::Unbounded) {
            return Ok(None);
        }
        Ok(Some((key.to_vec(), v.map(|v| self.value(v)))))
    }

    /// The entries between two bounds on full keys, in order.
    fn entries_in(
        &self,
        n: u64,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
    ) -> StoreResult<Vec<RunEntry>> {
        let mut out = Vec::new();
        for i in self.lower_bound(n, lo)?..self.count {
            let (k, v) = self.entry(i).ok_or_else(|| Self::damaged(n, i))?;
            let key = &self.bytes[k];
            if !within(key, &Bound::Unbounded, hi) {
                break;
            }
            out.push((key.to_vec(), v.map(|v| self.value(v))));
        }
        Ok(out)
    }
}

/// The runs' directories, newest first, shared with the cache.
type Runs = Arc<Vec<Dir>>;

/// Entries per block are cut once a block's encoding passes this many bytes. A block is read
/// by offset from the run's data (store format 4), so a lookup reads one block; smaller
/// blocks make the directory (read once per process) longer. Through format 3 a block was a
/// sled value of its own, 32 KiB (over a quarter segment, so kept at its size).
pub(crate) const BLOCK_TARGET: usize = 8 << 10;

/// The first byte of a run's directory whose blocks are sled values (`run-blocks`, store
/// format 3; still read).
pub(crate) const DIR_FORMAT: u8 = 1;

/// The first byte of a run's directory whose blocks are back to back in the run's data
/// ([`Space::RunData`], store format 4), at the offsets the directory lists.
pub(crate) const DIR_FORMAT_DATA: u8 = 2;

/// The first byte of a run's directory that keeps its block table in the run's data, in
/// chunks (store format 5): written for runs of more than [`CHUNK_BLOCKS`] blocks, so that
/// a process's first lookup reads a directory of a few KiB and one chunk, not a table of
/// every block (208 KB for 100,000 documents, read whole by every process).
pub(crate) const DIR_FORMAT_INDEXED: u8 = 3;

/// Blocks per chunk of an indexed directory's block table.
pub(crate) const CHUNK_BLOCKS: usize = 128;

/// A list of blocks: each one's first full key, and (format 2 and chunks) where each starts in
/// the run's data, with where the last one ends last.
#[derive(Clone, Debug, Default)]
struct Blocks {
    firsts: Vec<Vec<u8>>,
    offsets: Option<Vec<u64>>,
}

/// Where a run's blocks are listed.
#[derive(Clone, Debug)]
enum Table {
    /// Formats 1 and 2: in the directory.
    Flat(Arc<Blocks>),
    /// Format 3: in chunks of `chunk_blocks` blocks after the blocks in the run's data (the
    /// last chunk may hold fewer); `chunks` lists each chunk's first key (its first block's)
    /// and where each chunk starts, with the data's end last.
    Indexed {
        blocks: usize,
        chunk_blocks: usize,
        chunks: Blocks,
    },
}

/// A run's directory: its number, entry count, and its block table (or where that is) (see
/// [`Dir::encode`]).
#[derive(Clone, Debug)]
struct Dir {
    n: u64,
    entries: u64,
    table: Table,
    /// The run's key filter (in memory only; shared by every copy of the directory that the
    /// engine hands out, see [`LsmEngine::filters`]).
    filter: Arc<LazyFilter>,
}

impl Blocks {
    /// Appends each first key as `key_len: u32 BE ‖ key`, then the offsets (`u64 BE`).
    fn encode_into(&self, out: &mut Vec<u8>) {
        for k in &self.firsts {
            put_sized(out, k);
        }
        for offset in self.offsets.iter().flatten() {
            out.extend_from_slice(&offset.to_be_bytes());
        }
    }

    /// Parses `count` first keys, then (`with_offsets`) `count + 1` offsets that never go
    /// back, from `bytes[*at..]`, moving `at` past them.
    fn parse(bytes: &[u8], at: &mut usize, count: usize, with_offsets: bool) -> Option<Self> {
        let mut firsts = Vec::with_capacity(count.min(1 << 20));
        for _ in 0..count {
            let klen = read_u32(bytes, *at)? as usize;
            let k = bytes.get(*at + 4..(*at + 4).checked_add(klen)?)?;
            firsts.push(k.to_vec());
            *at += 4 + klen;
        }
        let offsets = if with_offsets {
            let mut offsets: Vec<u64> = Vec::with_capacity(count + 1);
            for _ in 0..=count {
                let o = u64::from_be_bytes(bytes.get(*at..*at + 8)?.try_into().ok()?);
                // Blocks follow one another: offsets never go back.
                if offsets.last().is_some_and(|last| o < *last) {
                    return None;
                }
                offsets.push(o);
                *at += 8;
            }
            Some(offsets)
        } else {
            None
        };
        Some(Self { firsts, offsets })
    }

    /// The last block whose first key is at or below `hi`.
    fn at_or_below(&self, hi: &Bound<Vec<u8>>) -> Option<usize> {
        let i = self
            .firsts
            .partition_point(|f| within(f, &Bound::Unbounded, hi));
        i.checked_sub(1)
    }
}

impl Dir {
    /// Layout, formats 1 and 2: `DIR_FORMAT` (or `DIR_FORMAT_DATA`), `entries: u64 BE`,
    /// `blocks: u32 BE`, each block's first full key as `key_len: u32 BE ‖ key`, with
    /// `DIR_FORMAT_DATA` then `blocks + 1` offsets (`u64 BE`: where each block starts in the
    /// run's data, then the data's length), then a CRC-32 of all the bytes before it, `u32
    /// BE`. Format 3: `DIR_FORMAT_INDEXED`, `entries: u64 BE`, `blocks: u32 BE`,
    /// `chunk_blocks: u32 BE`, `chunks: u32 BE`, each chunk's first full key, `chunks + 1`
    /// offsets (where each chunk starts in the run's data, then the data's length), CRC-32.
    /// A chunk is itself a format 2 directory of its blocks (its own entry count, its blocks'
    /// first keys and offsets in the run's data, CRC-32).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.table {
            Table::Flat(blocks) => {
                out.push(if blocks.offsets.is_some() {
                    DIR_FORMAT_DATA
                } else {
                    DIR_FORMAT
                });
                out.extend_from_slice(&self.entries.to_be_bytes());
                out.extend_from_slice(&count_u32(blocks.firsts.len()).to_be_bytes());
                blocks.encode_into(&mut out);
            }
            Table::Indexed {
                blocks,
                chunk_blocks,
                chunks,
            } => {
                out.push(DIR_FORMAT_INDEXED);
                out.extend_from_slice(&self.entries.to_be_bytes());
                out.extend_from_slice(&count_u32(*blocks).to_be_bytes());
                out.extend_from_slice(&count_u32(*chunk_blocks).to_be_bytes());
                out.extend_from_slice(&count_u32(chunks.firsts.len()).to_be_bytes());
                chunks.encode_into(&mut out);
            }
        }
        seal(&mut out);
        out
    }

    fn parse(n: u64, bytes: &[u8]) -> StoreResult<Self> {
        let bad = || StoreError::corrupt(format!("record run {n}"), "its directory is damaged");
        let body = sealed_len(bytes).ok_or_else(bad)?;
        let format = *bytes.first().ok_or_else(bad)?;
        let entries = bytes
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(bad)?;
        let blocks = read_u32(bytes, 9).ok_or_else(bad)? as usize;
        let mut at = 13;
        let table = match format {
            DIR_FORMAT | DIR_FORMAT_DATA => Table::Flat(Arc::new(
                Blocks::parse(bytes, &mut at, blocks, format == DIR_FORMAT_DATA).ok_or_else(bad)?,
            )),
            DIR_FORMAT_INDEXED => {
                let chunk_blocks = read_u32(bytes, 13).ok_or_else(bad)? as usize;
                let count = read_u32(bytes, 17).ok_or_else(bad)? as usize;
                if chunk_blocks == 0 || count != blocks.div_ceil(chunk_blocks) {
                    return Err(bad());
                }
                at = 21;
                Table::Indexed {
                    blocks,
                    chunk_blocks,
                    chunks: Blocks::parse(bytes, &mut at, count, true).ok_or_else(bad)?,
                }
            }
            _ => return Err(bad()),
        };
        if at != body {
            return Err(bad());
        }
        Ok(Self {
            n,
            entries,
            table,
            filter: Arc::default(),
        })
    }

    /// How many blocks the run has.
    fn blocks(&self) -> usize {
        match &self.table {
            Table::Flat(blocks) => blocks.firsts.len(),
            Table::Indexed { blocks, .. } => *blocks,
        }
    }

    /// Whether the run's blocks (and chunks) are in its data, not sled values of their own.
    fn has_data(&self) -> bool {
        match &self.table {
            Table::Flat(blocks) => blocks.offsets.is_some(),
            Table::Indexed { .. } => true,
        }
    }
}

/// A count that the formats keep in a `u32`.
fn count_u32(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 blocks")
}

fn block_key(n: u64, b: usize) -> Vec<u8> {
    let mut k = n.to_be_bytes().to_vec();
    k.extend_from_slice(
        &u32::try_from(b)
            .expect("fewer than 2^32 blocks")
            .to_be_bytes(),
    );
    k
}

/// Blocks kept parsed (checked) in memory, at most.
const BLOCK_CACHE: usize = 256;

/// A run's entry: full key, and value (`None`: tombstone).
type RunEntry = (Vec<u8>, Option<Value>);

fn within(k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    let above = match lo {
        Bound::Included(b) => k >= b.as_slice(),
        Bound::Excluded(b) => k > b.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(b) => k <= b.as_slice(),
        Bound::Excluded(b) => k < b.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

/// Encodes sorted, distinct entries as a run.
fn encode_run(entries: &[RunEntry]) -> Vec<u8> {
    let count = u32::try_from(entries.len()).expect("a run holds fewer than 2^32 entries");
    let mut out = vec![RUN_FORMAT];
    out.extend_from_slice(&count.to_be_bytes());
    let table = out.len();
    out.resize(table + 4 * entries.len(), 0);
    for (i, (key, value)) in entries.iter().enumerate() {
        let at = u32::try_from(out.len()).expect("a run is smaller than 4 GiB");
        out[table + 4 * i..table + 4 * i + 4].copy_from_slice(&at.to_be_bytes());
        put_sized(&mut out, key);
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                put_sized(&mut out, v);
            }
        }
    }
    seal(&mut out);
    out
}

/// Appends `bytes` with its length before it (`u32 BE`).
fn put_sized(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("records and keys are far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends the CRC-32 of everything in `out` (`u32 BE`).
fn seal(out: &mut Vec<u8>) {
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// The length of `bytes` before a trailer that [`seal`] wrote, when the CRC matches.
fn sealed_len(bytes: &[u8]) -> Option<usize> {
    let body = bytes.len().checked_sub(4)?;
    (read_u32(bytes, body)? == crc32fast::hash(&bytes[..body])).then_some(body)
}

fn read(lock: &RwLock<()>) -> std::sync::RwLockReadGuard<'_, ()> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An engine whose record spaces are kept in sorted runs (see the module docs).
#[derive(Debug)]
pub(crate) struct LsmEngine {
    inner: Arc<dyn Engine>,
    /// Writes of this process one at a time: expectations on record spaces, and the memtable
    /// count, are checked and updated under it.
    gate: Mutex<usize>,
    /// The memtable's entry count as of the last finished write, for readers: 0 means the
    /// memtable and its tombstones are empty, so a lookup goes straight to the runs;
    /// [`UNKNOWN`] while a write is under way or after one failed.
    memtable_len: AtomicUsize,
    /// The memtable becomes a run past this many entries; a batch of an eighth of this many
    /// record changes becomes a run of its own.
    memtable_entries: usize,
    /// The runs as last read. Only a compaction of this engine changes them, and it clears
    /// this under the exclusive view lock: the store that owns the engine is its only writer.
    cache: Mutex<Option<Runs>>,
    /// Blocks read and checked, by (run, block). Runs are never rewritten, so an entry stays
    /// right until its run is merged away; every compaction empties it.
    blocks: Mutex<crate::fasthash::FastMap<(u64, usize), Run>>,
    /// Chunks of indexed block tables read and checked, by (run, chunk); emptied with
    /// `blocks`.
    chunks: Mutex<crate::fasthash::FastMap<(u64, usize), Arc<Blocks>>>,
    /// Runs of more than this many blocks are written with an indexed directory, in chunks of
    /// this many ([`CHUNK_BLOCKS`]; tests use fewer).
    chunk_blocks: usize,
    /// Each run's key filter by run number, kept across re-reads of the run list; a
    /// compaction adds the filters of the runs it writes and drops those of the runs it
    /// merges away (whose numbers may come back).
    filters: Mutex<crate::fasthash::FastMap<u64, Arc<LazyFilter>>>,
    /// Reads hold it shared; a compaction, which moves records between spaces and runs,
    /// holds it exclusively, so no read sees a record in neither place or a half merge.
    view: RwLock<()>,
    /// The memtable in memory, by full key: `Some` a record, `None` a tombstone. A lookup
    /// reads it instead of two engine lookups (21% of reading a history whose store had
    /// taken single puts since its import). `None` while a write is under way, and for good
    /// after a write failed: lookups then go to the engine.
    mirror: RwLock<Option<Memtable>>,
}

/// The memtable's records and tombstones by full key (see [`LsmEngine::mirror`]).
type Memtable = BTreeMap<Vec<u8>, Option<Value>>;

/// One change a write makes to the memtable, for [`LsmEngine::mirror`].
enum MemtableChange {
    /// A record is put.
    Put(Vec<u8>, Value),
    /// A record is removed.
    Remove(Vec<u8>),
    /// A tombstone is put.
    Tombstone(Vec<u8>),
    /// A tombstone is removed.
    Untombstone(Vec<u8>),
}

impl MemtableChange {
    /// What `change` (a change of the engine batch a write applies) does to the memtable.
    fn of(change: &super::Change) -> Option<Self> {
        let (space, key, value) = change;
        if *space == Space::Tombstones {
            return Some(match value {
                Some(_) => Self::Tombstone(key.clone()),
                None => Self::Untombstone(key.clone()),
            });
        }
        let full = full_key(tag_of(*space)?, key);
        Some(match value {
            Some(v) => Self::Put(full, Value::shared(Arc::from(v.as_slice()))),
            None => Self::Remove(full),
        })
    }

    fn apply(self, memtable: &mut Memtable) {
        match self {
            Self::Put(k, v) => {
                memtable.insert(k, Some(v));
            }
            Self::Remove(k) => {
                memtable.remove(&k);
            }
            Self::Tombstone(k) => {
                memtable.entry(k).or_insert(None);
            }
            Self::Untombstone(k) => {
                if matches!(memtable.get(&k), Some(None)) {
                    memtable.remove(&k);
                }
            }
        }
    }
}

impl LsmEngine {
    /// Wraps `inner`, counting the entries its memtable holds now. `memtable_entries`: see
    /// [`MEMTABLE_ENTRIES`].
    pub(crate) fn new(inner: Arc<dyn Engine>, memtable_entries: usize) -> StoreResult<Self> {
        let mut pending = 0;
        let mut memtable = Memtable::new();
        for (space, tag) in TAGS {
            for kv in super::all(&*inner, space) {
                let (k, v) = kv?;
                memtable.insert(full_key(tag, &k), Some(v));
                pending += 1;
            }
        }
        for kv in super::all(&*inner, Space::Tombstones) {
            let (k, _) = kv?;
            memtable.entry(k.to_vec()).or_insert(None);
            pending += 1;
        }
        let engine = Self {
            inner,
            gate: Mutex::new(pending),
            memtable_len: AtomicUsize::new(pending),
            memtable_entries: memtable_entries.max(1),
            cache: Mutex::new(None),
            blocks: Mutex::default(),
            chunks: Mutex::default(),
            chunk_blocks: CHUNK_BLOCKS,
            filters: Mutex::default(),
            view: RwLock::new(()),
            mirror: RwLock::new(Some(memtable)),
        };
        engine.drop_orphan_run_data();
        Ok(engine)
    }

    /// Drops the data of runs that no directory names: written by a compaction that a crash
    /// stopped before its directory was (or whose removal of a merged run's data it stopped).
    /// Best effort: with an unreadable directory nothing is dropped, and the reads report it.
    fn drop_orphan_run_data(&self) {
        // Through the cache: the first lookup of the process uses the same list.
        let (Ok(dirs), Ok(data)) = (self.runs(), self.inner.run_data()) else {
            return;
        };
        let mut batch = Batch::default();
        for n in data {
            if !dirs.iter().any(|d| d.n == n) {
                batch.remove(Space::RunData(n), PACK_KEY.to_vec());
            }
        }
        if !batch.is_empty() {
            let _ = self.inner.write(batch);
        }
    }

    /// The runs, newest first.
    fn runs(&self) -> StoreResult<Runs> {
        // Runs are written once; the list changes only with a compaction of this engine,
        // which clears the cache. (An engine that other processes write too needs its own
        // record layer: this one also keeps the memtable count in memory.)
        if let Some(runs) = &*lock(&self.cache) {
            return Ok(Arc::clone(runs));
        }
        let runs = Arc::new(self.read_runs()?);
        *lock(&self.cache) = Some(Arc::clone(&runs));
        Ok(runs)
    }

    /// Whether the memtable (and so its tombstones) may hold entries.
    fn memtable_in_use(&self) -> bool {
        self.memtable_len.load(Ordering::Acquire) != 0
    }

    /// Records the memtable's entry count once a write finished.
    fn set_pending(&self, pending: &mut usize, n: usize) {
        *pending = n;
        self.memtable_len.store(n, Ordering::Release);
    }

    fn read_runs(&self) -> StoreResult<Vec<Dir>> {
        let mut out = Vec::new();
        for kv in super::all(&*self.inner, Space::Runs).rev() {
            let (k, v) = kv?;
            let n =
                k.as_ref().try_into().map(u64::from_be_bytes).map_err(|_| {
                    StoreError::corrupt("record runs", format!("bad key {:?}", &k[..]))
                })?;
            let mut dir = Dir::parse(n, &v)?;
            dir.filter = Arc::clone(lock(&self.filters).entry(n).or_default());
            out.push(dir);
        }
        Ok(out)
    }

    /// Block `b` of run `dir`, read and checked once.
    fn block(&self, dir: &Dir, b: usize) -> StoreResult<Run> {
        if let Some(r) = lock(&self.blocks).get(&(dir.n, b)) {
            return Ok(r.clone());
        }
        let run = self.read_block(dir, b)?;
        insert_bounded(
            &mut lock(&self.blocks),
            BLOCK_CACHE,
            (dir.n, b),
            run.clone(),
        );
        Ok(run)
    }

    /// Block `b` of run `dir`, read and checked, past the cache.
    fn read_block(&self, dir: &Dir, b: usize) -> StoreResult<Run> {
        let (list, i) = self.listing(dir, b)?;
        let bytes = match &list.offsets {
            Some(offsets) => match (offsets.get(i), offsets.get(i + 1)) {
                (Some(&start), Some(&end)) => {
                    self.inner
                        .blob_range(Space::RunData(dir.n), start, end - start)?
                }
                _ => None,
            },
            None => self.inner.get(Space::RunBlocks, &block_key(dir.n, b))?,
        }
        .ok_or_else(|| {
            StoreError::corrupt(
                format!("record run {}", dir.n),
                format!("block {b} is missing"),
            )
        })?;
        Run::parse(dir.n, bytes)
    }

    /// The list of blocks that holds block `b` of run `dir`, and `b`'s place in it: the
    /// directory's own list, or (indexed) the chunk that holds `b`.
    fn listing(&self, dir: &Dir, b: usize) -> StoreResult<(Arc<Blocks>, usize)> {
        match &dir.table {
            Table::Flat(blocks) => Ok((Arc::clone(blocks), b)),
            Table::Indexed { chunk_blocks, .. } => {
                Ok((self.chunk(dir, b / chunk_blocks)?, b % chunk_blocks))
            }
        }
    }

    /// Chunk `c` of the indexed block table of run `dir`, read and checked once.
    fn chunk(&self, dir: &Dir, c: usize) -> StoreResult<Arc<Blocks>> {
        if let Some(chunk) = lock(&self.chunks).get(&(dir.n, c)) {
            return Ok(Arc::clone(chunk));
        }
        let Table::Indexed {
            blocks,
            chunk_blocks,
            chunks,
        } = &dir.table
        else {
            unreachable!("only indexed directories have chunks");
        };
        let bad = |why: &str| {
            StoreError::corrupt(format!("record run {}", dir.n), format!("chunk {c} {why}"))
        };
        let offsets = chunks.offsets.as_deref().unwrap_or_default();
        let (Some(&start), Some(&end)) = (offsets.get(c), offsets.get(c + 1)) else {
            return Err(bad("is not in its directory"));
        };
        let bytes = self
            .inner
            .blob_range(Space::RunData(dir.n), start, end - start)?
            .ok_or_else(|| bad("is missing"))?;
        let parsed = Dir::parse(dir.n, &bytes).map_err(|_| bad("is damaged"))?;
        let Table::Flat(list) = parsed.table else {
            return Err(bad("is not a list of blocks"));
        };
        // A chunk lists the blocks the directory says it does, starting at the key the
        // directory gives it, all before the first chunk (the last one ending there).
        let want = (*chunk_blocks).min(blocks - c * chunk_blocks);
        let list_offsets = list.offsets.as_deref().unwrap_or_default();
        let blocks_end = offsets.first().copied().unwrap_or(0);
        if list.firsts.len() != want
            || list.firsts.first() != chunks.firsts.get(c)
            || list_offsets.last().is_none_or(|&o| o > blocks_end)
            || (c + 1 == chunks.firsts.len() && list_offsets.last() != Some(&blocks_end))
        {
            return Err(bad("does not match its directory"));
        }
        insert_bounded(
            &mut lock(&self.chunks),
            BLOCK_CACHE,
            (dir.n, c),
            Arc::clone(&list),
        );
        Ok(list)
    }

    /// Whether the first full key of block `b` of run `dir` is within the bounds.
    fn first_key_within(
        &self,
        dir: &Dir,
        b: usize,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
    ) -> StoreResult<bool> {
        let (list, i) = self.listing(dir, b)?;
        Ok(within(&list.firsts[i], lo, hi))
    }

    /// The last block of run `dir` whose first key is at or below `hi`.
    fn block_at_or_below(&self, dir: &Dir, hi: &Bound<Vec<u8>>) -> StoreResult<Option<usize>> {
        match &dir.table {
            Table::Flat(blocks) => Ok(blocks.at_or_below(hi)),
            Table::Indexed {
                chunk_blocks,
                chunks,
                ..
            } => {
                let Some(c) = chunks.at_or_below(hi) else {
                    return Ok(None);
                };
                // The chunk's first key is its first block's, so the chunk has one at or
                // below `hi`.
                let i = self.chunk(dir, c)?.at_or_below(hi).unwrap_or(0);
                Ok(Some(c * chunk_blocks + i))
            }
        }
    }

    /// Builds the key filter of run `dir` from all of its blocks (read past the cache, which
    /// they would flush).
    fn build_filter(&self, dir: &Dir) -> StoreResult<()> {
        let mut keys = Vec::with_capacity(usize::try_from(dir.entries).unwrap_or(0).min(1 << 24));
        for b in 0..dir.blocks() {
            let block = self.read_block(dir, b)?;
            keys.extend(
                block
                    .entries_in(dir.n, &Bound::Unbounded, &Bound::Unbounded)?
                    .into_iter()
                    .map(|(k, _)| k),
            );
        }
        dir.filter
            .set(KeyFilter::of(keys.len(), keys.iter().map(Vec::as_slice)));
        Ok(())
    }

    /// What run `dir` says about a full key.
    fn run_find(&self, dir: &Dir, key: &[u8]) -> StoreResult<Option<Found>> {
        match self.block_at_or_below(dir, &Bound::Included(key.to_vec()))? {
            Some(b) => self.block(dir, b)?.find(dir.n, key),
            None => Ok(None),
        }
    }

    /// The entries of run `dir` between two bounds on full keys, in order.
    fn run_entries_in(
        &self,
        dir: &Dir,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
    ) -> StoreResult<Vec<RunEntry>> {
        let first = match lo {
            Bound::Unbounded => 0,
            Bound::Included(k) | Bound::Excluded(k) => self
                .block_at_or_below(dir, &Bound::Included(k.clone()))?
                .unwrap_or(0),
        };
        let mut out = Vec::new();
        for b in first..dir.blocks() {
            if !self.first_key_within(dir, b, &Bound::Unbounded, hi)? {
                break;
            }
            out.extend(self.block(dir, b)?.entries_in(dir.n, lo, hi)?);
        }
        Ok(out)
    }

    /// The last entry of run `dir` between two bounds on full keys.
    fn run_last_in(
        &self,
        dir: &Dir,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
    ) -> StoreResult<Option<RunEntry>> {
        let mut b = self.block_at_or_below(dir, hi)?;
        while let Some(i) = b {
            if let Some(e) = self.block(dir, i)?.last_in(dir.n, lo, hi)? {
                return Ok(Some(e));
            }
            // This block holds nothing in range; an earlier one can only if this block's
            // first key is still above the lower bound.
            if !self.first_key_within(dir, i, lo, &Bound::Unbounded)? {
                return Ok(None);
            }
            b = i.checked_sub(1);
        }
        Ok(None)
    }

    /// Every entry of run `dir`, in order.
    fn run_entries(&self, dir: &Dir) -> StoreResult<Vec<RunEntry>> {
        self.run_entries_in(dir, &Bound::Unbounded, &Bound::Unbounded)
    }

    /// Adds run `n` holding `entries` (sorted, distinct) to `batch`: its blocks back to back
    /// as the run's data (then, past `chunk_blocks` blocks, the chunks of its block table),
    /// and its directory. Returns the run's key filter.
    fn write_run(&self, batch: &mut Batch, n: u64, entries: &[RunEntry]) -> KeyFilter {
        let mut list = Blocks {
            firsts: Vec::new(),
            offsets: Some(vec![0]),
        };
        // Each block's first entry, to count a chunk's entries.
        let mut starts = Vec::new();
        let mut data = Vec::new();
        let mut start = 0;
        while start < entries.len() {
            let mut end = start;
            let mut size = 0;
            while end < entries.len() && (end == start || size < BLOCK_TARGET) {
                size += entries[end].0.len() + entries[end].1.as_ref().map_or(0, |v| v.len()) + 13;
                end += 1;
            }
            list.firsts.push(entries[start].0.clone());
            starts.push(start);
            data.extend_from_slice(&encode_run(&entries[start..end]));
            if let Some(offsets) = &mut list.offsets {
                offsets.push(data.len() as u64);
            }
            start = end;
        }
        starts.push(entries.len());
        let blocks = list.firsts.len();
        let table = if blocks > self.chunk_blocks {
            let all = list.offsets.unwrap_or_default();
            let (mut chunk_firsts, mut chunk_offsets) = (Vec::new(), Vec::new());
            for (c, firsts) in list.firsts.chunks(self.chunk_blocks).enumerate() {
                let from = c * self.chunk_blocks;
                let to = from + firsts.len();
                let chunk = Dir {
                    n,
                    entries: (starts[to] - starts[from]) as u64,
                    table: Table::Flat(Arc::new(Blocks {
                        firsts: firsts.to_vec(),
                        offsets: Some(all[from..=to].to_vec()),
                    })),
                    filter: Arc::default(),
                };
                chunk_firsts.push(firsts[0].clone());
                chunk_offsets.push(data.len() as u64);
                data.extend_from_slice(&chunk.encode());
            }
            chunk_offsets.push(data.len() as u64);
            Table::Indexed {
                blocks,
                chunk_blocks: self.chunk_blocks,
                chunks: Blocks {
                    firsts: chunk_firsts,
                    offsets: Some(chunk_offsets),
                },
            }
        } else {
            Table::Flat(Arc::new(list))
        };
        let dir = Dir {
            n,
            entries: entries.len() as u64,
            table,
            filter: Arc::default(),
        };
        batch.put(Space::RunData(n), PACK_KEY.to_vec(), data);
        batch.put(Space::Runs, n.to_be_bytes().to_vec(), dir.encode());
        KeyFilter::of(entries.len(), entries.iter().map(|(k, _)| k.as_slice()))
    }

    /// Adds the removal of run `dir` (directory and blocks) to `batch`.
    fn remove_run(batch: &mut Batch, dir: &Dir) {
        batch.remove(Space::Runs, dir.n.to_be_bytes().to_vec());
        if dir.has_data() {
            batch.remove(Space::RunData(dir.n), PACK_KEY.to_vec());
        } else {
            for b in 0..dir.blocks() {
                batch.remove(Space::RunBlocks, block_key(dir.n, b));
            }
        }
    }

    /// The merged view of one key of a record space.
    fn get_record(&self, tag: u8, space: Space, key: &[u8]) -> StoreResult<Option<Value>> {
        let full = full_key(tag, key);
        if self.memtable_in_use() {
            if let Some(memtable) = &*self.mirror.read().unwrap_or_else(|e| e.into_inner()) {
                match memtable.get(&full) {
                    Some(Some(v)) => return Ok(Some(v.clone())),
                    Some(None) => return Ok(None),
                    None => return self.runs_find(&full),
                }
            }
            if let Some(v) = self.inner.get(space, key)? {
                return Ok(Some(v));
            }
            if self.inner.get(Space::Tombstones, &full)?.is_some() {
                return Ok(None);
            }
        }
        self.runs_find(&full)
    }

    /// The value of full key `full` in the runs, newest first.
    fn runs_find(&self, full: &[u8]) -> StoreResult<Option<Value>> {
        for dir in self.runs()?.iter() {
            let filter = dir.filter.get();
            if filter.is_some_and(|f| !f.may_contain(full)) {
                continue;
            }
            match self.run_find(dir, full)? {
                Some(Found::Value(v)) => return Ok(Some(v)),
                Some(Found::Tombstone) => return Ok(None),
                None => {
                    // Only a search that finds nothing is one a filter saves: a run searched
                    // only for keys it holds (the one run of an imported store, read) never
                    // builds one, which reads every block of the run.
                    if filter.is_none() && dir.filter.probe(dir.entries) {
                        self.build_filter(dir)?;
                    }
                }
            }
        }
        Ok(None)
    }

    /// Takes the memtable's mirror out for a write (lookups go to the engine meanwhile).
    fn take_mirror(&self) -> Option<Memtable> {
        self.mirror
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Puts the mirror back after a write that finished.
    fn put_mirror(&self, memtable: Option<Memtable>) {
        *self
            .mirror
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = memtable;
    }

    /// Turns the memtable, then `direct` (the record changes of a large batch, newer than the
    /// memtable), into new runs, and merges the newest runs when there are more than
    /// [`MAX_RUNS`] (all of them into one when `merge_all`); `batch` (the batch's other
    /// changes) goes in the same atomic write. Runs under the write gate; readers wait only
    /// for the write that switches to the new runs, not for their data to be written.
    fn compact(
        &self,
        direct: BTreeMap<Vec<u8>, Option<Value>>,
        mut batch: Batch,
        merge_all: bool,
    ) -> Result<(), WriteError> {
        let mut memtable: BTreeMap<Vec<u8>, Option<Value>> = BTreeMap::new();
        for (space, tag) in TAGS {
            for kv in super::all(&*self.inner, space) {
                let (k, v) = kv?;
                batch.remove(space, k.to_vec());
                memtable.insert(full_key(tag, &k), Some(v));
            }
        }
        for kv in super::all(&*self.inner, Space::Tombstones) {
            let (k, _) = kv?;
            batch.remove(Space::Tombstones, k.to_vec());
            memtable.entry(k.to_vec()).or_insert(None);
        }
        // Newest first: the batch's records, the memtable, then the runs there are (by
        // directory: an old run's entries are read only if it is merged).
        enum Part<'d> {
            Fresh(Vec<RunEntry>),
            Old(&'d Dir),
        }
        impl Part<'_> {
            fn len(&self) -> usize {
                match self {
                    Self::Fresh(e) => e.len(),
                    Self::Old(d) => usize::try_from(d.entries).unwrap_or(usize::MAX),
                }
            }
        }
        let old = self.runs()?;
        // New runs are numbered above every run and every run's data still on disk: data
        // dropped since the last flush may still be named by the durable directories, so its
        // number must not be written again before then.
        let on_disk = self.inner.run_data()?.last().copied().unwrap_or(0);
        let mut next = old.first().map_or(0, |d| d.n).max(on_disk) + 1;
        let mut runs: Vec<Part<'_>> = Vec::new();
        for fresh in [direct, memtable] {
            if !fresh.is_empty() {
                runs.push(Part::Fresh(fresh.into_iter().collect()));
            }
        }
        runs.extend(old.iter().map(Part::Old));
        let mut merged_away = Vec::new();
        if runs.len() > MAX_RUNS || (merge_all && runs.len() > 1) {
            // Size-tiered: merge the newest runs up to (not including) the first older run that
            // is more than twice their total, at least two; a merge that reaches the oldest run
            // drops tombstones, which then hide nothing.
            let mut k = 2;
            let mut total: usize = runs[..2].iter().map(Part::len).sum();
            while k < runs.len() && (merge_all || runs[k].len() <= 2 * total) {
                total = total.saturating_add(runs[k].len());
                k += 1;
            }
            let oldest = k == runs.len();
            let mut merged: BTreeMap<Vec<u8>, Option<Value>> = BTreeMap::new();
            for part in runs.drain(..k) {
                let entries = match part {
                    Part::Fresh(e) => e,
                    Part::Old(dir) => {
                        Self::remove_run(&mut batch, dir);
                        merged_away.push(dir.n);
                        self.run_entries(dir)?
                    }
                };
                for (key, v) in entries {
                    merged.entry(key).or_insert(v);
                }
            }
            if oldest {
                merged.retain(|_, v| v.is_some());
            }
            runs.insert(0, Part::Fresh(merged.into_iter().collect()));
        }
        let generation = match self.inner.get(Space::Meta, GENERATION)? {
            Some(g) => g
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::corrupt("record runs", "bad generation record"))?,
            None => 0,
        };
        batch.put(
            Space::Meta,
            GENERATION.to_vec(),
            (generation + 1).to_be_bytes().to_vec(),
        );
        // New runs get numbers above every old one, oldest of them first.
        let mut filters = Vec::new();
        for part in runs.iter().rev() {
            if let Part::Fresh(entries) = part
                && !entries.is_empty()
            {
                filters.push((next, self.write_run(&mut batch, next, entries)));
                next += 1;
            }
        }
        // The new runs' data first (files in the sled engine, written and synced), while
        // readers go on with the runs as they are: nothing names the data yet (a crash now
        // leaves it to `drop_orphan_run_data`). Then the switch, which readers wait for: the
        // directories, the memtable's removal and the merged runs' removal in one write.
        let (files, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut batch.changes)
            .into_iter()
            .partition(|c| matches!(c, (Space::RunData(_), _, Some(_))));
        batch.changes = rest;
        if !files.is_empty() {
            self.inner.write(Batch {
                changes: files,
                ..Batch::default()
            })?;
        }
        let _view = self
            .view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = self.inner.write(batch);
        *lock(&self.cache) = None;
        {
            let mut known = lock(&self.filters);
            // Runs merged away (their numbers may come back) lose their filters; the runs
            // just written get theirs, once written.
            known.retain(|n, _| old.iter().any(|d| d.n == *n) && !merged_away.contains(n));
            if written.is_ok() {
                for (n, filter) in filters {
                    known.insert(n, Arc::new(LazyFilter::built(filter)));
                }
            }
        }
        // Blocks of runs this compaction removed go too: a run number can come back once
        // every run is merged away and its file removed.
        lock(&self.blocks).clear();
        lock(&self.chunks).clear();
        written
    }
}

/// [`LsmEngine::memtable_len`] while a write is under way or after one failed.
const UNKNOWN: usize = usize::MAX;

impl Engine for LsmEngine {
    fn get(&self, space: Space, key: &[u8]) -> StoreResult<Option<Value>> {
        match tag_of(space) {
            Some(tag) => {
                let _view = read(&self.view);
                self.get_record(tag, space, key)
            }
            None => self.inner.get(space, key),
        }
    }

    fn range(&self, space: Space, from: Bound<Vec<u8>>, to: Bound<Vec<u8>>) -> Entries<'_> {
        let Some(tag) = tag_of(space) else {
            return self.inner.range(space, from, to);
        };
        let merged = || -> StoreResult<Vec<(Value, Value)>> {
            let _view = read(&self.view);
            let wrap = |b: &Bound<Vec<u8>>| match b {
                Bound::Included(k) => Bound::Included(full_key(tag, k)),
                Bound::Excluded(k) => Bound::Excluded(full_key(tag, k)),
                Bound::Unbounded => Bound::Unbounded,
            };
            let (lo, hi) = (wrap(&from), wrap(&to));
            let in_range = |k: &[u8]| k.first() == Some(&tag) && within(k, &lo, &hi);
            let mut view: BTreeMap<Vec<u8>, Option<Value>> = BTreeMap::new();
            // Full-key bounds within this space's tag.
            let run_lo = match &lo {
                Bound::Unbounded => Bound::Included(vec![tag]),
                b => b.clone(),
            };
            let run_hi = match &hi {
                Bound::Unbounded => tag
                    .checked_add(1)
                    .map_or(Bound::Unbounded, |t| Bound::Excluded(vec![t])),
                b => b.clone(),
            };
            for dir in self.runs()?.iter().rev() {
                for (k, v) in self.run_entries_in(dir, &run_lo, &run_hi)? {
                    if in_range(&k) {
                        view.insert(k[1..].to_vec(), v);
                    }
                }
            }
            let tomb_from = match &from {
                Bound::Unbounded => Bound::Included(vec![tag]),
                b => wrap(b),
            };
            let tomb_to = match &to {
                Bound::Unbounded => tag
                    .checked_add(1)
                    .map_or(Bound::Unbounded, |t| Bound::Excluded(vec![t])),
                b => wrap(b),
            };
            for kv in self.inner.range(Space::Tombstones, tomb_from, tomb_to) {
                let (k, _) = kv?;
                if in_range(&k) {
                    view.insert(k[1..].to_vec(), None);
                }
            }
            for kv in self.inner.range(space, from.clone(), to.clone()) {
                let (k, v) = kv?;
                view.insert(k.to_vec(), Some(v));
            }
            Ok(view
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (Value::shared(Arc::from(k)), v)))
                .collect())
        };
        match merged() {
            Ok(entries) => Box::new(entries.into_iter().map(Ok)),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn write(&self, batch: Batch) -> Result<(), WriteError> {
        let mut pending = lock(&self.gate);
        self.memtable_len.store(UNKNOWN, Ordering::Release);
        // Out while the write is under way; back only once it finished (a failed write
        // leaves lookups on the engine).
        let mirror = self.take_mirror();
        let Batch {
            changes,
            expect,
            direct,
        } = batch;
        let mut inner = Batch::default();
        for (space, key, want) in expect {
            match tag_of(space) {
                Some(tag) => {
                    let have = self.get_record(tag, space, &key)?;
                    if have.as_deref() != want.as_deref() {
                        // Nothing was written: the memtable is as it was.
                        self.put_mirror(mirror);
                        self.memtable_len.store(*pending, Ordering::Release);
                        return Err(WriteError::Conflict);
                    }
                }
                None => inner.expect.push((space, key, want)),
            }
        }
        let records = changes.iter().filter(|c| tag_of(c.0).is_some()).count();
        let threshold = if direct {
            DIRECT_DIVISOR * DIRECT_DIVISOR
        } else {
            DIRECT_DIVISOR
        };
        if records > 0 && records >= self.memtable_entries.div_ceil(threshold) {
            // A large batch (an import, a pack's index entries, a repack) goes straight into a
            // run of its own: its records never pass through the engine's log.
            let mut direct: BTreeMap<Vec<u8>, Option<Value>> = BTreeMap::new();
            for (space, key, value) in changes {
                match tag_of(space) {
                    Some(tag) => {
                        direct.insert(
                            full_key(tag, &key),
                            value.map(|v| Value::shared(Arc::from(v))),
                        );
                    }
                    None => inner.changes.push((space, key, value)),
                }
            }
            self.compact(direct, inner, false)?;
            self.put_mirror(mirror.map(|_| Memtable::new()));
            self.set_pending(&mut pending, 0);
            return Ok(());
        }
        // Tombstones are written only where a run may hold the key, and removed only where
        // one exists: every entry that passes through the engine's log costs it 2-4x. With no
        // run there is no tombstone either (a compaction takes them into its run).
        let any_runs = !self.runs()?.is_empty();
        for (space, key, value) in changes {
            let Some(tag) = tag_of(space) else {
                inner.changes.push((space, key, value));
                continue;
            };
            let tomb = full_key(tag, &key);
            match value {
                Some(v) => {
                    if any_runs && self.inner.get(Space::Tombstones, &tomb)?.is_some() {
                        inner.changes.push((Space::Tombstones, tomb, None));
                    }
                    inner.changes.push((space, key, Some(v)));
                }
                None => {
                    inner.changes.push((space, key, None));
                    if any_runs {
                        inner
                            .changes
                            .push((Space::Tombstones, tomb, Some(Vec::new())));
                    }
                }
            }
        }
        if *pending + records > self.memtable_entries {
            // The batch's changes land in the memtable and move with it into the new run.
            self.inner.write(inner)?;
            self.compact(BTreeMap::new(), Batch::default(), false)?;
            self.put_mirror(mirror.map(|_| Memtable::new()));
            self.set_pending(&mut pending, 0);
            return Ok(());
        }
        let changes: Vec<MemtableChange> = inner
            .changes
            .iter()
            .filter_map(MemtableChange::of)
            .collect();
        match self.inner.write(inner) {
            Ok(()) => {}
            // Nothing was written: the memtable is as it was.
            Err(WriteError::Conflict) => {
                self.put_mirror(mirror);
                self.memtable_len.store(*pending, Ordering::Release);
                return Err(WriteError::Conflict);
            }
            Err(e) => return Err(e),
        }
        self.put_mirror(mirror.map(|mut memtable| {
            for change in changes {
                change.apply(&mut memtable);
            }
            memtable
        }));
        let n = *pending + records;
        self.set_pending(&mut pending, n);
        Ok(())
    }

    fn last_in(
        &self,
        space: Space,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> StoreResult<Option<(Value, Value)>> {
        let Some(tag) = tag_of(space) else {
            return self.inner.last_in(space, from, to);
        };
        let _view = read(&self.view);
        let wrap = |b: &Bound<Vec<u8>>| match b {
            Bound::Included(k) => Bound::Included(full_key(tag, k)),
            Bound::Excluded(k) => Bound::Excluded(full_key(tag, k)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let lo = match &from {
            Bound::Unbounded => Bound::Included(vec![tag]),
            b => wrap(b),
        };
        let mut hi = match &to {
            Bound::Unbounded => tag
                .checked_add(1)
                .map_or(Bound::Unbounded, |t| Bound::Excluded(vec![t])),
            b => wrap(b),
        };
        let runs = self.runs()?;
        loop {
            // The greatest candidate key: the memtable's last in range, each run's last.
            let unwrap_hi = match &hi {
                Bound::Included(k) if k.first() == Some(&tag) => Bound::Included(k[1..].to_vec()),
                Bound::Excluded(k) if k.first() == Some(&tag) => Bound::Excluded(k[1..].to_vec()),
                _ => to.clone(),
            };
            let mirror = self.mirror.read().unwrap_or_else(|e| e.into_inner());
            let mem = match (&*mirror, self.memtable_in_use()) {
                (_, false) => None,
                // The memtable's last record in range (its tombstones are not candidates).
                (Some(memtable), true) => memtable
                    .range::<Vec<u8>, _>((lo.clone(), hi.clone()))
                    .rev()
                    .find_map(|(k, v)| {
                        v.as_ref()
                            .map(|v| (Value::shared(Arc::from(&k[1..])), v.clone()))
                    }),
                (None, true) => self.inner.last_in(space, from.clone(), unwrap_hi)?,
            };
            let mut best: Option<Vec<u8>> = mem.as_ref().map(|(k, _)| full_key(tag, k));
            for dir in runs.iter() {
                if let Some((k, _)) = self.run_last_in(dir, &lo, &hi)?
                    && best.as_ref().is_none_or(|b| k > *b)
                {
                    best = Some(k);
                }
            }
            let Some(key) = best else {
                return Ok(None);
            };
            if let Some((k, v)) = mem
                && full_key(tag, &k) == key
            {
                return Ok(Some((k, v)));
            }
            // The newest word on `key`: a tombstone of the memtable, else the newest run.
            let tombstone = match (&*mirror, self.memtable_in_use()) {
                (_, false) => false,
                (Some(memtable), true) => matches!(memtable.get(&key), Some(None)),
                (None, true) => self.inner.get(Space::Tombstones, &key)?.is_some(),
            };
            drop(mirror);
            let removed = tombstone || {
                let mut found = None;
                for dir in runs.iter() {
                    if let Some(f) = self.run_find(dir, &key)? {
                        found = Some(f);
                        break;
                    }
                }
                match found {
                    Some(Found::Value(v)) => {
                        return Ok(Some((Value::shared(Arc::from(&key[1..])), v)));
                    }
                    _ => true,
                }
            };
            debug_assert!(removed);
            hi = Bound::Excluded(key);
        }
    }

    fn compact_all(&self) -> StoreResult<()> {
        let mut pending = lock(&self.gate);
        if *pending == 0 && self.runs()?.len() <= 1 {
            // Already one run (or none) and an empty memtable: nothing to merge.
            return Ok(());
        }
        self.memtable_len.store(UNKNOWN, Ordering::Release);
        let mirror = self.take_mirror();
        self.compact(BTreeMap::new(), Batch::default(), true)
            .map_err(|e| match e {
                WriteError::Store(e) => e,
                WriteError::Conflict => {
                    StoreError::corrupt("record runs", "a compaction conflicted")
                }
            })?;
        self.put_mirror(mirror.map(|_| Memtable::new()));
        self.set_pending(&mut pending, 0);
        Ok(())
    }

    fn pieces(&self) -> StoreResult<usize> {
        Ok(self.runs()?.len())
    }

    fn blob_range(&self, space: Space, offset: u64, len: u64) -> StoreResult<Option<Value>> {
        self.inner.blob_range(space, offset, len)
    }

    fn blob_len(&self, space: Space) -> StoreResult<Option<u64>> {
        self.inner.blob_len(space)
    }

    fn run_data(&self) -> StoreResult<Vec<u64>> {
        self.inner.run_data()
    }

    fn packs(&self) -> StoreResult<Vec<u64>> {
        self.inner.packs()
    }

    fn drop_pack(&self, n: u64) -> StoreResult<()> {
        self.inner.drop_pack(n)
    }

    fn flush(&self) -> StoreResult<()> {
        self.inner.flush()
    }

    fn dir(&self) -> Option<&Path> {
        self.inner.dir()
    }
}

/// The run readers on arbitrary bytes (for fuzzing: `fuzz/`, and the proptest below): the
/// first byte splits a lookup key from a run directory or block.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_runs(bytes: &[u8]) {
    let n = bytes.first().map_or(0, |b| usize::from(*b % 16));
    let rest = bytes.get(1..).unwrap_or_default();
    let (key, body) = rest.split_at(n.min(rest.len()));
    let _ = Dir::parse(1, body);
    if let Ok(run) = Run::parse(1, Value::shared(Arc::from(body))) {
        let _ = run.find(1, key);
        let _ = run.last_in(1, &Bound::Unbounded, &Bound::Included(key.to_vec()));
        let _ = run.entries_in(1, &Bound::Included(key.to_vec()), &Bound::Unbounded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;

    proptest::proptest! {
        /// Run directories and blocks refuse arbitrary bytes with an error, never a panic;
        /// a block that parses answers lookups without panicking either.
        #[test]
        fn run_readers_never_panic_on_arbitrary_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..800),
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
        ) {
            let mut input = vec![u8::try_from(key.len()).unwrap()];
            input.extend_from_slice(&key);
            input.extend_from_slice(&bytes);
            fuzz_runs(&input);
        }
    }

    fn lsm() -> LsmEngine {
        LsmEngine::new(Arc::new(MemoryEngine::new()), 64).unwrap()
    }

    /// Adds a put (`Some`) or a remove of `key` in `space` to `b`, and the same to `model`.
    fn change(
        b: &mut Batch,
        model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
        space: Space,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) {
        match value {
            Some(value) => {
                b.put(space, key.clone(), value.clone());
                model.insert(key, value);
            }
            None => {
                b.remove(space, key.clone());
                model.remove(&key);
            }
        }
    }

    /// The last record of the versions space between `lo` and `hi`, both included.
    fn last_between(e: &LsmEngine, lo: &[u8], hi: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        e.last_in(
            Space::Versions,
            Bound::Included(lo.to_vec()),
            Bound::Included(hi.to_vec()),
        )
        .unwrap()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
    }

    #[test]
    fn the_lsm_engine_keeps_the_contract() {
        super::super::tests::engine_contract(&lsm());
    }

    /// Lookups answer the same with key filters: filters made when runs are written, built
    /// once a run read from the engine (a reopened store) has been searched often enough,
    /// and dropped with runs merged away, whose numbers come back.
    #[test]
    fn key_filters_never_hide_a_record() {
        let inner: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let write = |e: &LsmEngine, model: &mut BTreeMap<Vec<u8>, Vec<u8>>, from: u64| {
            for step in from..from + 3_000 {
                let key = format!("k{:05}", (step * 7919) % 4000).into_bytes();
                let mut b = Batch::default();
                let value = (step % 6 != 0).then(|| format!("v{step}").into_bytes());
                change(&mut b, model, Space::Docs, key, value);
                e.write(b).unwrap();
            }
        };
        let check = |e: &LsmEngine, model: &BTreeMap<Vec<u8>, Vec<u8>>| {
            // Keys written, removed, and never written (beyond 4000).
            for i in 0..5000 {
                let key = format!("k{i:05}").into_bytes();
                let got = e.get(Space::Docs, &key).unwrap().map(|v| v.to_vec());
                assert_eq!(got, model.get(&key).cloned(), "key {i}");
            }
        };
        let e = LsmEngine::new(Arc::clone(&inner), 64).unwrap();
        write(&e, &mut model, 0);
        assert!(e.runs().unwrap().len() > 1, "several runs");
        assert!(
            e.runs().unwrap().iter().all(|d| d.filter.get().is_some()),
            "runs written here have filters"
        );
        check(&e, &model);
        drop(e);
        // Reopened: filters are not stored, and come once a run has been searched enough.
        let e = LsmEngine::new(Arc::clone(&inner), 64).unwrap();
        assert!(e.runs().unwrap().iter().all(|d| d.filter.get().is_none()));
        check(&e, &model);
        assert!(
            e.runs().unwrap().iter().any(|d| d.filter.get().is_some()),
            "5,000 lookups built filters"
        );
        check(&e, &model);
        // Everything merged into one run (number 1 again once the others are gone), then
        // more writes over it.
        e.compact_all().unwrap();
        check(&e, &model);
        write(&e, &mut model, 3_000);
        check(&e, &model);
        e.compact_all().unwrap();
        write(&e, &mut model, 6_000);
        check(&e, &model);
    }

    /// Many writes, removes and rewrites across compactions and merges read back as a plain
    /// map of the same writes.
    #[test]
    fn records_survive_compactions_and_merges() {
        let e = lsm();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut x: u64 = 12345;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("k{:05}", x % 5000).into_bytes();
            let mut b = Batch::default();
            if step % 1000 == 999 {
                // Now and then a batch large enough to become a run of its own.
                for j in 0..100u64 {
                    let key = format!("k{:05}", (x + j * 7) % 5000).into_bytes();
                    let value = format!("b{step}.{j}").into_bytes();
                    change(&mut b, &mut model, Space::Versions, key, Some(value));
                }
            } else {
                let value = (!x.is_multiple_of(5)).then(|| format!("v{step}").into_bytes());
                change(&mut b, &mut model, Space::Versions, key, value);
            }
            e.write(b).unwrap();
        }
        assert!(!e.runs().unwrap().is_empty(), "the writes made runs");
        assert!(
            e.runs().unwrap().iter().any(|d| d.blocks() > 1),
            "a run of several blocks"
        );
        assert!(e.runs().unwrap().len() <= MAX_RUNS);
        let before: Vec<(Vec<u8>, Vec<u8>)> = super::super::all(&e, Space::Versions)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        e.compact_all().unwrap();
        assert_eq!(e.runs().unwrap().len(), 1, "everything merged into one run");
        let after: Vec<(Vec<u8>, Vec<u8>)> = super::super::all(&e, Space::Versions)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        assert_eq!(before, after);
        for i in 0..5000 {
            let key = format!("k{i:05}").into_bytes();
            let got = e.get(Space::Versions, &key).unwrap().map(|v| v.to_vec());
            assert_eq!(got, model.get(&key).cloned(), "key {i}");
        }
        let all: Vec<(Vec<u8>, Vec<u8>)> = super::super::all(&e, Space::Versions)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
        assert_eq!(all, want);
        let back: Vec<Vec<u8>> = e
            .range(
                Space::Versions,
                Bound::Included(b"k01000".to_vec()),
                Bound::Excluded(b"k02000".to_vec()),
            )
            .rev()
            .map(|kv| kv.unwrap().0.to_vec())
            .collect();
        assert!(back.windows(2).all(|w| w[0] > w[1]));
        for i in (0..5000).step_by(37) {
            let hi = format!("k{i:05}").into_bytes();
            let lo = format!("k{:05}", i / 2).into_bytes();
            let got = last_between(&e, &lo, &hi);
            let want = want
                .iter()
                .rev()
                .find(|(k, _)| *k >= lo && *k <= hi)
                .cloned();
            assert_eq!(got, want, "last in {lo:?}..={hi:?}");
        }
        assert!(
            back.iter().all(
                |k| k.as_slice() >= b"k01000".as_slice() && k.as_slice() < b"k02000".as_slice()
            )
        );
        // Other spaces never enter runs: meta holds only the runs' generation record.
        let meta: Vec<Vec<u8>> = super::super::all(&e, Space::Meta)
            .map(|kv| kv.unwrap().0.to_vec())
            .collect();
        assert_eq!(meta, vec![GENERATION.to_vec()]);
    }

    /// Golden bytes of a run (docs/format.md).
    #[test]
    fn run_layout_golden_bytes() {
        let run = encode_run(&[
            (vec![1, b'a'], Some(Value::shared(Arc::from(&b"xy"[..])))),
            (vec![2, b'b'], None),
        ]);
        let want: Vec<u8> = [
            &[RUN_FORMAT][..],
            &2u32.to_be_bytes(),
            &13u32.to_be_bytes(),
            &26u32.to_be_bytes(),
            &[0, 0, 0, 2, 1, b'a', 1, 0, 0, 0, 2, b'x', b'y'],
            &[0, 0, 0, 2, 2, b'b', 0],
        ]
        .concat();
        let crc = crc32fast::hash(&want);
        let want = [want, crc.to_be_bytes().to_vec()].concat();
        assert_eq!(run, want);
        let parsed = Run::parse(1, Value::shared(Arc::from(run))).unwrap();
        assert!(
            matches!(parsed.find(1, &[1, b'a']).unwrap(), Some(Found::Value(v)) if &*v == b"xy")
        );
        assert!(matches!(
            parsed.find(1, &[2, b'b']).unwrap(),
            Some(Found::Tombstone)
        ));
        assert!(parsed.find(1, &[1, b'b']).unwrap().is_none());
    }

    fn flat(firsts: Vec<Vec<u8>>, offsets: Option<Vec<u64>>) -> Table {
        Table::Flat(Arc::new(Blocks { firsts, offsets }))
    }

    fn listed(table: &Table) -> (Vec<Vec<u8>>, Option<Vec<u64>>) {
        match table {
            Table::Flat(b) => (b.firsts.clone(), b.offsets.clone()),
            Table::Indexed { chunks: b, .. } => (b.firsts.clone(), b.offsets.clone()),
        }
    }

    #[test]
    fn a_run_directory_roundtrips_and_refuses_damage() {
        let indexed = Table::Indexed {
            blocks: 5,
            chunk_blocks: 2,
            chunks: Blocks {
                firsts: vec![vec![1, b'a'], vec![2, b'q'], vec![3, b'z', b'z']],
                offsets: Some(vec![300, 360, 420, 470]),
            },
        };
        for table in [
            flat(vec![vec![1, b'a'], vec![3, b'z', b'z']], None),
            flat(
                vec![vec![1, b'a'], vec![3, b'z', b'z']],
                Some(vec![0, 40, 95]),
            ),
            indexed,
        ] {
            let dir = Dir {
                n: 7,
                entries: 12,
                table,
                filter: Arc::default(),
            };
            let bytes = dir.encode();
            let back = Dir::parse(7, &bytes).unwrap();
            assert_eq!(
                (back.entries, back.blocks(), listed(&back.table)),
                (12, dir.blocks(), listed(&dir.table))
            );
            for at in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[at] ^= 0x04;
                assert!(Dir::parse(7, &bad).is_err(), "byte {at}");
            }
        }
        let back = Blocks {
            firsts: vec![vec![1, b'a'], vec![3, b'z', b'z']],
            offsets: None,
        };
        assert_eq!(back.at_or_below(&Bound::Included(vec![1, b'a'])), Some(0));
        assert_eq!(back.at_or_below(&Bound::Excluded(vec![1, b'a'])), None);
        assert_eq!(back.at_or_below(&Bound::Included(vec![5])), Some(1));
    }

    /// Golden bytes of an indexed directory (docs/format.md): format 3, entries, blocks,
    /// blocks per chunk, chunks, the chunks' first keys and offsets, CRC-32.
    #[test]
    fn indexed_directory_golden_bytes() {
        let dir = Dir {
            n: 1,
            entries: 9,
            table: Table::Indexed {
                blocks: 3,
                chunk_blocks: 2,
                chunks: Blocks {
                    firsts: vec![vec![1, b'a'], vec![2]],
                    offsets: Some(vec![100, 150, 180]),
                },
            },
            filter: Arc::default(),
        };
        let want: Vec<u8> = [
            &[DIR_FORMAT_INDEXED][..],
            &9u64.to_be_bytes(),
            &3u32.to_be_bytes(),
            &2u32.to_be_bytes(),
            &2u32.to_be_bytes(),
            &[0, 0, 0, 2, 1, b'a'],
            &[0, 0, 0, 1, 2],
            &100u64.to_be_bytes(),
            &150u64.to_be_bytes(),
            &180u64.to_be_bytes(),
        ]
        .concat();
        let crc = crc32fast::hash(&want);
        assert_eq!(dir.encode(), [want, crc.to_be_bytes().to_vec()].concat());
        // A chunk count that does not cover the blocks is refused.
        let mut wrong = dir.clone();
        if let Table::Indexed { blocks, .. } = &mut wrong.table {
            *blocks = 5;
        }
        assert!(Dir::parse(1, &wrong.encode()).is_err());
    }

    /// Runs whose block tables are indexed (two blocks per chunk here, so every run of three
    /// blocks or more) read back like any other, through merges, ranges and damage checks.
    #[test]
    fn indexed_runs_read_back_through_merges() {
        let mut e = lsm();
        e.chunk_blocks = 2;
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for round in 0..6u64 {
            let mut b = Batch::default();
            for j in 0..3000u64 {
                let key = format!("k{:06}", (j * 7919 + round * 13) % 20_000).into_bytes();
                let value =
                    format!("value {round}.{j} {}", "x".repeat((j % 40) as usize)).into_bytes();
                change(&mut b, &mut model, Space::Versions, key, Some(value));
            }
            e.write(b).unwrap();
        }
        let runs = e.runs().unwrap();
        assert!(
            runs.iter()
                .any(|d| matches!(d.table, Table::Indexed { .. }) && d.blocks() > 4),
            "runs of several chunks"
        );
        let check = |e: &LsmEngine| {
            for (k, v) in &model {
                assert_eq!(
                    e.get(Space::Versions, k).unwrap().as_deref(),
                    Some(v.as_slice())
                );
            }
            assert!(e.get(Space::Versions, b"k0000001x").unwrap().is_none());
            assert!(e.get(Space::Versions, b"a").unwrap().is_none());
            assert!(e.get(Space::Versions, b"z").unwrap().is_none());
            let all: Vec<(Vec<u8>, Vec<u8>)> = super::super::all(e, Space::Versions)
                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                .collect();
            assert_eq!(all, model.clone().into_iter().collect::<Vec<_>>());
            let lo = b"k005000".to_vec();
            let hi = b"k012345".to_vec();
            let got = last_between(e, &lo, &hi).map(|(k, _)| k);
            let want = model.range(lo..=hi).next_back().map(|(k, _)| k.clone());
            assert_eq!(got, want);
        };
        check(&e);
        e.compact_all().unwrap();
        assert_eq!(e.runs().unwrap().len(), 1);
        check(&e);
        // A fresh engine over the same inner engine reads the chunks from the data.
        let mut fresh = LsmEngine::new(Arc::clone(&e.inner), MEMTABLE_ENTRIES).unwrap();
        fresh.chunk_blocks = 2;
        check(&fresh);

        // Damage in the chunks is an error, never a wrong record: a flipped bit (caught by
        // the chunk's CRC), and two chunks swapped (each sound, but not where the directory
        // says: caught by the first key and block count).
        let dir = e.runs().unwrap()[0].clone();
        let Table::Indexed { chunks, .. } = &dir.table else {
            panic!("the merged run is indexed");
        };
        let offsets = chunks.offsets.clone().unwrap();
        let len = *offsets.last().unwrap();
        let data = e
            .inner
            .blob_range(Space::RunData(dir.n), 0, len)
            .unwrap()
            .unwrap()
            .to_vec();
        let (c0, c1, c2) = (
            offsets[0] as usize,
            offsets[1] as usize,
            offsets[2] as usize,
        );
        let mut flipped = data.clone();
        flipped[c0 + 9] ^= 0x01;
        let mut swapped = data[..c0].to_vec();
        swapped.extend_from_slice(&data[c1..c2]);
        swapped.extend_from_slice(&data[c0..c1]);
        swapped.extend_from_slice(&data[c2..]);
        for (what, bad) in [("flipped", flipped), ("swapped", swapped)] {
            let mut b = Batch::default();
            b.put(Space::RunData(dir.n), PACK_KEY.to_vec(), bad);
            e.inner.write(b).unwrap();
            let mut damaged = LsmEngine::new(Arc::clone(&e.inner), MEMTABLE_ENTRIES).unwrap();
            damaged.chunk_blocks = 2;
            let mut errors = 0;
            for (k, v) in &model {
                match damaged.get(Space::Versions, k) {
                    Ok(got) => assert_eq!(got.as_deref(), Some(v.as_slice()), "{what}"),
                    Err(_) => errors += 1,
                }
            }
            assert!(errors > 0, "{what}: the damage is found");
            let mut b = Batch::default();
            b.put(Space::RunData(dir.n), PACK_KEY.to_vec(), data.clone());
            e.inner.write(b).unwrap();
        }
    }

    #[test]
    fn a_damaged_run_is_an_error_not_a_panic() {
        let run = encode_run(&[(vec![1, b'a'], Some(Value::shared(Arc::from(&b"xy"[..]))))]);
        for cut in 0..run.len() {
            let bytes = Value::shared(Arc::from(&run[..cut]));
            if let Ok(r) = Run::parse(1, bytes) {
                let _ = r.find(1, &[1, b'a']);
                let _ = r.entries_in(1, &Bound::Unbounded, &Bound::Unbounded);
            }
        }
        for at in 0..run.len() {
            let mut bad = run.clone();
            bad[at] ^= 0x10;
            assert!(
                Run::parse(1, Value::shared(Arc::from(bad))).is_err(),
                "a run changed at byte {at} is refused"
            );
        }
    }
}
