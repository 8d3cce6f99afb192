//! The read path: walk the delta chain to the nearest full snapshot (or cached content), apply
//! the deltas, and check the blake3 id of the result.

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_core::policy::MAX_CHAIN_DEPTH;
use strata_core::{Codec, ContentHash, ObjectKind};
use strata_diff::delta;

use crate::error::{StoreError, StoreResult};
use crate::kv::{Kv, StoredObject};

/// A rebuilt content, shared between the cache and readers without copying.
pub(crate) type Shared = Arc<Vec<u8>>;

/// The content of one version as [`Store::get_with_record`](crate::Store::get_with_record)
/// returns it: shared with the read cache, so handing it out copies nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content(Shared);

impl Content {
    pub(crate) fn new(shared: Shared) -> Self {
        Self(shared)
    }

    /// Returns the bytes as an owned vector (a copy only while the cache still holds them).
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| shared.as_ref().clone())
    }
}

impl std::ops::Deref for Content {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Content {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A bounded cache of rebuilt contents, keyed by content id (git's delta-base cache), in
/// least-recently-used segments ([`Keep`]). Only verified contents enter it.
///
/// A content enters on probation: a version a reader asked for, or one rebuilt next to it,
/// is often never needed again (a reader walking a whole history reads each version once).
/// The protected segment holds a chain's checkpoints: the contents every [`CACHE_EVERY`]
/// deltas from its full snapshot, which a rebuild keeps on its way and later rebuilds start
/// from. A content on probation that starts a rebuild moves there only when it is a
/// checkpoint itself: otherwise every version a random reader asks for would stay as fresh
/// memory (a 330 KB document's 200 random versions: 69 contents kept, 6,470 page faults,
/// 28 ms; checkpoints only: 31 contents, 18 ms; git 23 ms).
/// Probation is two small segments: the contents last read or written (at most
/// [`RECENT_ENTRIES`] and [`PROBATION_BYTES`]) and those decoded ahead of a read (leaving
/// when read), together within an eighth of the capacity. Reading many versions so reuses
/// the memory of the ones already handed out instead of filling the cache with them: first
/// touching fresh pages costs several times a delta's decode (caniuse read all, one
/// probation of 2 MiB: 2,088 page faults, 14.0 ms; eslint-rules-docs read all, probation of
/// 16 entries: 84 ms; both bounds here: 1,143 faults, 9.2 ms and 55 ms; git 7.1 and 40 ms).
/// The checkpoints of a document's first read wait as candidates (at most
/// [`CANDIDATE_BYTES`]), protected when a rebuild starts from one (see
/// [`ContentCache::keeping_for`]).
#[derive(Debug, Default)]
pub(crate) struct ContentCache {
    capacity: usize,
    tick: u64,
    entries: crate::fasthash::FastMap<ContentHash, Entry>,
    /// The segments, indexed by [`Keep`].
    segments: [Segment; 4],
    /// Buffers of evicted contents that no reader still held, for the next contents to be
    /// kept: reusing warm memory instead of first touching fresh pages.
    spare: Vec<Vec<u8>>,
    /// The version of each document read last (a bounded memo), to tell a reader walking a
    /// history from one jumping around it (see [`ContentCache::keeping_for`]).
    last_read: crate::fasthash::FastMap<String, u64>,
}

/// One cached content.
#[derive(Debug)]
struct Entry {
    content: Shared,
    tick: u64,
    keep: Keep,
    /// How many deltas the content is from a full snapshot, as far as the rebuild or write
    /// that cached it knew (see [`rebuild`]).
    depth: u32,
}

/// One least-recently-used segment of the cache: its entries by last use, and their bytes.
#[derive(Debug, Default)]
struct Segment {
    order: BTreeMap<u64, ContentHash>,
    bytes: usize,
}

impl Segment {
    /// Whether it holds more than `bytes` bytes or `entries` entries, besides its newest
    /// entry (which stays, however large).
    fn over(&self, bytes: usize, entries: usize) -> bool {
        self.order.len() > 1 && (self.bytes > bytes || self.order.len() > entries)
    }
}

/// Where a content enters the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// On probation: a content read or written, which may never be needed again.
    Probation = 0,
    /// On probation until read once: a neighbour of the wanted content, decoded on the way
    /// for the read that likely asks for it next, which takes it out of the cache. A batch
    /// that interleaves many documents finds each document's next version waiting.
    Ahead = 1,
    /// Protected: a checkpoint of a delta chain, kept as a likely delta base.
    Protected = 2,
    /// A checkpoint decoded by a document's first read (unless at its first version), which
    /// becomes protected when a later rebuild starts from it. A random reader reads most
    /// documents of a large store once: their checkpoints would hold fresh memory that no
    /// read uses again.
    Candidate = 3,
}

impl Keep {
    /// The segments in index order (`Keep::ALL[k as usize] == k`).
    const ALL: [Self; 4] = [
        Self::Probation,
        Self::Ahead,
        Self::Protected,
        Self::Candidate,
    ];
}

/// What a rebuild keeps of the contents it decodes before the wanted one, besides the
/// wanted one itself (see [`ContentCache::keeping_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Keeping {
    /// How many of the contents decoded last before the wanted one to keep (a reader walking
    /// the history asks for them next).
    pub(crate) near: usize,
    /// Whether the chain's checkpoints are protected at once, or wait as candidates.
    pub(crate) protect: bool,
}

impl Keeping {
    /// Checkpoints protected, no neighbours.
    pub(crate) const CHECKPOINTS: Self = Self {
        near: 0,
        protect: true,
    };
    /// Checkpoints protected and every neighbour kept: a walk through whole histories
    /// (verify, repack, an object read by id).
    pub(crate) const HISTORY: Self = Self {
        near: CACHE_NEAR,
        protect: true,
    };
}

/// At most this many evicted buffers wait for reuse.
const SPARE_BUFFERS: usize = 8;

/// At most this many bytes of contents wait in each probation segment (and at most an eighth
/// of the capacity), besides the newest entry.
const PROBATION_BYTES: usize = 1 << 20;

/// At most this many contents last read or written wait on probation, however small.
const RECENT_ENTRIES: usize = 16;

/// At most this many bytes of checkpoints wait as candidates (and at most an eighth of the
/// capacity), besides the newest entry.
const CANDIDATE_BYTES: usize = 256 << 10;

impl ContentCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// The most bytes each probation segment holds.
    fn probation_capacity(&self) -> usize {
        self.capacity / 8
    }

    fn total_bytes(&self) -> usize {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Returns a cached content asked for by a reader; it stays in its segment, except one
    /// decoded ahead for this read, which leaves.
    pub(crate) fn get(&mut self, hash: &ContentHash) -> Option<Shared> {
        if self.entries.get(hash)?.keep == Keep::Ahead {
            return self.take(hash).map(|entry| entry.content);
        }
        self.touch(hash, false).map(|(content, _)| content)
    }

    /// Returns a cached content that starts another rebuild (a delta base), and its depth:
    /// it moves to the protected segment when it is a checkpoint.
    pub(crate) fn get_base(&mut self, hash: &ContentHash) -> Option<(Shared, u32)> {
        let hit = self.touch(hash, true);
        self.evict();
        hit
    }

    /// Takes `hash`'s entry out of the cache.
    fn take(&mut self, hash: &ContentHash) -> Option<Entry> {
        let entry = self.entries.remove(hash)?;
        let segment = &mut self.segments[entry.keep as usize];
        segment.order.remove(&entry.tick);
        segment.bytes -= entry.content.len();
        Some(entry)
    }

    /// Marks `hash`'s entry as used now, protecting it if asked and it is a checkpoint;
    /// returns its content and depth.
    fn touch(&mut self, hash: &ContentHash, protect: bool) -> Option<(Shared, u32)> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(hash)?;
        let len = entry.content.len();
        let from = &mut self.segments[entry.keep as usize];
        from.order.remove(&entry.tick);
        from.bytes -= len;
        if protect && entry.depth.is_multiple_of(CACHE_EVERY) {
            entry.keep = Keep::Protected;
        }
        entry.tick = tick;
        let to = &mut self.segments[entry.keep as usize];
        to.order.insert(tick, *hash);
        to.bytes += len;
        Some((Arc::clone(&entry.content), entry.depth))
    }

    /// Caches `content` in segment `keep`. `depth` is how many deltas it is from a full
    /// snapshot as far as the caller knows (a rebuild that starts from it counts on from
    /// there).
    pub(crate) fn insert(&mut self, hash: ContentHash, content: Shared, keep: Keep, depth: u32) {
        if content.len() > self.capacity / 2 || self.entries.contains_key(&hash) {
            return;
        }
        self.tick += 1;
        let segment = &mut self.segments[keep as usize];
        segment.bytes += content.len();
        segment.order.insert(self.tick, hash);
        self.entries.insert(
            hash,
            Entry {
                content,
                tick: self.tick,
                keep,
                depth,
            },
        );
        self.evict();
    }

    /// Evicts least recently used entries: from a probation segment while it is over its
    /// bounds (its newest entry stays, however large), then from every segment (protected
    /// first: probation is small by its bounds) while the whole cache is over capacity.
    fn evict(&mut self) {
        loop {
            let share = self.probation_capacity();
            let [recent, ahead, _, candidates] = &self.segments;
            let from = if recent.over(share.min(PROBATION_BYTES), RECENT_ENTRIES) {
                Keep::Probation
            } else if ahead.order.len() > 1 && recent.bytes + ahead.bytes > share {
                Keep::Ahead
            } else if candidates.over(share.min(CANDIDATE_BYTES), usize::MAX) {
                Keep::Candidate
            } else if self.total_bytes() > self.capacity {
                // Candidates first, then protected checkpoints (probation is small by its
                // bounds).
                match self.segments.iter().rposition(|s| !s.order.is_empty()) {
                    Some(i) => Keep::ALL[i],
                    None => break,
                }
            } else {
                break;
            };
            let segment = &mut self.segments[from as usize];
            let Some((_, old)) = segment.order.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&old) {
                segment.bytes -= entry.content.len();
                if self.spare.len() < SPARE_BUFFERS
                    && let Ok(buf) = Arc::try_unwrap(entry.content)
                {
                    self.spare.push(buf);
                }
            }
        }
    }

    /// Returns an empty buffer for a content of `len` bytes: an evicted one of a similar size
    /// (between half and twice `len`; decoding grows it when it is short, which moves its
    /// pages rather than touching new ones), else a new one with room for a document that
    /// grows a little from version to version.
    pub(crate) fn buffer_for(&mut self, len: u64) -> Vec<u8> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        match self
            .spare
            .iter()
            .position(|b| b.capacity() / 2 <= len && len / 2 <= b.capacity())
        {
            Some(i) => {
                let mut buf = self.spare.swap_remove(i);
                buf.clear();
                buf
            }
            // Allocating does not touch the pages; only what a decode writes is touched.
            None => Vec::with_capacity(len.saturating_add(len / 16)),
        }
    }

    /// Drops `hash`'s content if cached, so that the next rebuild of it reads its object
    /// through the index.
    pub(crate) fn forget(&mut self, hash: &ContentHash) {
        self.take(hash);
    }

    /// The depth `hash`'s content was cached with.
    #[cfg(test)]
    pub(crate) fn depth_of(&self, hash: &ContentHash) -> Option<u32> {
        self.entries.get(hash).map(|e| e.depth)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.segments = Default::default();
        self.spare.clear();
        self.last_read.clear();
    }

    /// What to keep of the contents decoded on the way to version `version` of `doc`.
    ///
    /// Neighbours ([`CACHE_NEAR`]): all of them when the document's last read was the version
    /// next to this one, as when a reader walks a history, none otherwise, as when a reader
    /// asks for versions at random (each kept neighbour is fresh memory that a random reader
    /// never asks for). Measured on 200 random versions and on every version in order
    /// (`BENCHMARKS.md`, session 11).
    ///
    /// Checkpoints: protected at once when the document was read before, or when the read is
    /// of its first version (a reader starting a walk through the history); otherwise, at a
    /// document's first read, they wait as candidates, protected only once a later rebuild
    /// starts from one, and their memory goes to the next contents kept when none does
    /// (`BENCHMARKS.md`, session 14).
    pub(crate) fn keeping_for(&mut self, doc: &str, version: u64) -> Keeping {
        let last = match self.last_read.get_mut(doc) {
            Some(last) => std::mem::replace(last, version),
            None => {
                crate::fasthash::insert_bounded(
                    &mut self.last_read,
                    LAST_READ_DOCS,
                    doc.to_owned(),
                    version,
                );
                return Keeping {
                    near: 0,
                    protect: version == 1,
                };
            }
        };
        Keeping {
            near: if last.abs_diff(version) == 1 {
                CACHE_NEAR
            } else {
                0
            },
            protect: true,
        }
    }
}

/// The documents whose last read version [`ContentCache::keeping_for`] remembers.
const LAST_READ_DOCS: usize = 4096;

/// Of the contents rebuilt on the way to the wanted one, those this many deltas apart from
/// the chain's full snapshot are cached (its checkpoints) ...
const CACHE_EVERY: u32 = 8;
/// ... and so is each of the last this-many before it, for a reader walking the history (see
/// [`ContentCache::keeping_for`]): the wanted version's neighbours, which it asks for next.
pub(crate) const CACHE_NEAR: usize = 7;

/// Rebuilds the content of object `hash`, using and filling `cache`, keeping the
/// `keeping.near` contents decoded last before it and the chain's checkpoints
/// ([`CACHE_EVERY`]; protected, or candidates unless `keeping.protect`).
///
/// `max_len` bounds every allocation: an object that claims to be larger is corrupt.
///
/// Every content is checked before it is returned or cached: by each payload's own check when
/// every object decoded on the way has one and `trust_checksums` (a sealed payload's CRC-32,
/// checked before decoding, or zstd's content checksum in a format 2-4 frame; each decode
/// then proves its output, given a proven base), else by its blake3 id.
pub(crate) fn rebuild(
    kv: &Kv,
    cache: &std::sync::Mutex<ContentCache>,
    hash: &ContentHash,
    max_len: u64,
    trust_checksums: bool,
    keeping: Keeping,
) -> StoreResult<Shared> {
    if let Some(hit) = lock(cache).get(hash) {
        return Ok(hit);
    }
    // Walk from the wanted object towards a full snapshot or a cached content.
    let mut chain: Vec<(ContentHash, StoredObject)> = Vec::new();
    let mut cursor = *hash;
    let mut start: Option<(Shared, u32)> = None;
    // A chain that loops (damage) is caught by Brent's method: one comparison per step
    // against a checkpoint that moves to the current object whenever the chain's length
    // reaches the next power of two.
    let mut checkpoint = (*hash, 1usize);
    let mut after: Option<crate::kv::PackedAt> = None;
    loop {
        if !chain.is_empty()
            && let Some(hit) = lock(cache).get_base(&cursor)
        {
            start = Some(hit);
            break;
        }
        // A delta's base is looked for first right after the delta in its pack.
        let (object, at) = kv
            .object_after(&cursor, after)
            .map_err(|e| e.at_object(&cursor))?;
        after = at;
        let object = object.ok_or_else(|| {
            let reason = match chain.last() {
                None => "object is missing".to_owned(),
                Some((child, _)) => format!("it is the delta base of {child} but is missing"),
            };
            StoreError::corrupt(format!("object {cursor}"), reason)
        })?;
        let header = object.header;
        if header.raw_len > max_len {
            return Err(StoreError::corrupt(
                format!("object {cursor}"),
                format!(
                    "claims {} bytes, over the read limit of {max_len}",
                    header.raw_len
                ),
            ));
        }
        if !chain.is_empty() && cursor == checkpoint.0 {
            return Err(StoreError::corrupt(
                format!("object {hash}"),
                format!("its delta chain loops: {cursor} is reached twice"),
            ));
        }
        if chain.len() > MAX_CHAIN_DEPTH as usize {
            return Err(StoreError::corrupt(
                format!("object {hash}"),
                format!("delta chain is longer than {MAX_CHAIN_DEPTH} (a cycle?)"),
            ));
        }
        let next = match header.kind {
            ObjectKind::Full { .. } => None,
            ObjectKind::Delta { base, .. } => Some(base),
        };
        chain.push((cursor, object));
        if chain.len() == checkpoint.1 {
            checkpoint = (cursor, checkpoint.1 * 2);
        }
        match next {
            Some(base) => cursor = base,
            None => break,
        }
    }
    let mut scratch = take_scratch();
    // Depths count deltas from the chain's full snapshot (or from a cached start's own
    // depth): the contents kept every [`CACHE_EVERY`] deltas sit at the same places
    // whichever version a walk was for, so later walks stop at them.
    let (mut content, mut depth) = match start {
        Some((shared, depth)) => (Step::Kept(shared), depth.saturating_add(1)),
        None => (Step::Nothing, 0),
    };
    let mut remaining = chain.len();
    // Whether every decode so far was proven by its payload's CRC (store format 5: the stored
    // bytes are what was written, and decoding them against a proven base is deterministic)
    // or by zstd's content checksum (formats 2-4); a cached start is verified.
    let mut checked = trust_checksums;
    for (id, object) in chain.into_iter().rev() {
        let id = &id;
        let header = object.header;
        let payload = kv.object_payload(id, object).map_err(|e| e.at_object(id))?;
        let bad = |e: delta::ApplyError| StoreError::corrupt(format!("object {id}"), e);
        checked &= match header.kind {
            ObjectKind::Full {
                codec: Codec::ZstdSealed,
            }
            | ObjectKind::Delta {
                codec: Codec::ZstdPatchSealed,
                ..
            } => true,
            ObjectKind::Full { codec: Codec::Zstd }
            | ObjectKind::Delta {
                codec: Codec::ZstdPatch,
                ..
            } => delta::is_self_checked(&payload),
            _ => false,
        };
        remaining -= 1;
        // Contents rebuilt on the way are verified and cached at the chain's checkpoints,
        // and the `keeping.near` nearest the wanted one (a reader walking the history), so walking
        // a chain's versions one after another costs about one delta each in either
        // direction. The others are decoded into two scratch buffers that every read of this
        // thread reuses: decoding a delta into warm memory costs a fraction of first
        // touching a fresh buffer's pages.
        let checkpoint = depth.is_multiple_of(CACHE_EVERY);
        let keep = id == hash || remaining <= keeping.near || checkpoint;
        let mut out = if keep {
            lock(cache).buffer_for(header.raw_len)
        } else {
            std::mem::take(&mut scratch[content.free_scratch()])
        };
        match (header.kind, content.bytes(&scratch)) {
            (ObjectKind::Full { codec: Codec::Raw }, _) => {
                out.clear();
                out.extend_from_slice(&payload);
            }
            (
                ObjectKind::Full {
                    codec: Codec::ZstdSealed,
                },
                _,
            ) => {
                delta::decompress_into(&payload, header.raw_len, &mut out).map_err(bad)?;
            }
            (
                ObjectKind::Delta {
                    codec: Codec::ZstdPatchSealed,
                    ..
                },
                Some(base),
            ) => delta::apply_into(base, &payload, header.raw_len, &mut out).map_err(bad)?,
            (ObjectKind::Full { codec: Codec::Zstd }, _) => {
                delta::decompress_checksummed_into(&payload, header.raw_len, &mut out)
                    .map_err(bad)?;
            }
            (
                ObjectKind::Delta {
                    codec: Codec::ZstdPatch,
                    ..
                },
                Some(base),
            ) => delta::apply_checksummed_into(base, &payload, header.raw_len, &mut out)
                .map_err(bad)?,
            (kind, _) => {
                return Err(StoreError::corrupt(
                    format!("object {id}"),
                    format!("unsupported encoding {kind:?}"),
                ));
            }
        }
        if out.len() as u64 != header.raw_len {
            return Err(StoreError::corrupt(
                format!("object {id}"),
                format!(
                    "rebuilt {} bytes, header says {}",
                    out.len(),
                    header.raw_len
                ),
            ));
        }
        if keep {
            if !checked {
                check_id(id, &out)?;
            }
            let shared: Shared = Arc::new(out);
            // A checkpoint is kept as a base for later walks; the wanted content and its
            // neighbours wait on probation.
            let segment = if id == hash {
                Keep::Probation
            } else if checkpoint && keeping.protect {
                Keep::Protected
            } else if checkpoint {
                Keep::Candidate
            } else {
                Keep::Ahead
            };
            lock(cache).insert(*id, Arc::clone(&shared), segment, depth);
            content = Step::Kept(shared);
        } else {
            let slot = content.free_scratch();
            scratch[slot] = out;
            content = Step::Scratch(slot);
        }
        depth = depth.saturating_add(1);
    }
    give_back_scratch(scratch);
    let Step::Kept(content) = content else {
        unreachable!("the wanted content is always kept, and a chain is never empty");
    };
    // The wanted content was checked (or proven by checksums) when it was kept above; a
    // cache hit at the start was verified when it entered the cache.
    Ok(content)
}

/// Where the content rebuilt so far is.
enum Step {
    Nothing,
    Kept(Shared),
    Scratch(usize),
}

impl Step {
    fn bytes<'a>(&'a self, scratch: &'a [Vec<u8>; 2]) -> Option<&'a [u8]> {
        match self {
            Self::Nothing => None,
            Self::Kept(shared) => Some(shared),
            Self::Scratch(i) => Some(&scratch[*i]),
        }
    }

    /// A scratch buffer that does not hold the current content.
    fn free_scratch(&self) -> usize {
        match self {
            Self::Scratch(0) => 1,
            _ => 0,
        }
    }
}

/// Scratch buffers larger than this are not kept between reads.
const SCRATCH_KEEP: usize = 64 << 20;

thread_local! {
    static SCRATCH: std::cell::RefCell<[Vec<u8>; 2]> = const { std::cell::RefCell::new([Vec::new(), Vec::new()]) };
}

fn take_scratch() -> [Vec<u8>; 2] {
    SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

fn give_back_scratch(mut scratch: [Vec<u8>; 2]) {
    for buf in &mut scratch {
        if buf.capacity() > SCRATCH_KEEP {
            *buf = Vec::new();
        }
    }
    SCRATCH.with(|s| *s.borrow_mut() = scratch);
}

/// Checks that `bytes` is the content with id `id`.
fn check_id(id: &ContentHash, bytes: &[u8]) -> StoreResult<()> {
    let actual = ContentHash::of(bytes);
    if actual == *id {
        Ok(())
    } else {
        Err(StoreError::HashMismatch {
            expected: *id,
            actual,
        })
    }
}

/// Locks a mutex, ignoring poisoning. For the cache, a poisoned lock only means another
/// reader panicked mid-update; the cache holds verified contents only, so its data is still
/// sound. The registry of open stores is a plain list that no update leaves half-written.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_are_kept_for_a_reader_walking_a_history_only() {
        let mut c = ContentCache::new(1 << 20);
        let near = |c: &mut ContentCache, doc: &str, v: u64| c.keeping_for(doc, v).near;
        // A first read, then jumps: nothing kept around them.
        assert_eq!(near(&mut c, "a", 10), 0);
        assert_eq!(near(&mut c, "a", 3), 0);
        assert_eq!(near(&mut c, "a", 40), 0);
        // One step either way: a walk.
        assert_eq!(near(&mut c, "a", 41), CACHE_NEAR);
        assert_eq!(near(&mut c, "a", 40), CACHE_NEAR);
        // Documents are followed apart: a batch that interleaves them still walks each.
        assert_eq!(near(&mut c, "b", 1), 0);
        assert_eq!(near(&mut c, "a", 39), CACHE_NEAR);
        assert_eq!(near(&mut c, "b", 2), CACHE_NEAR);
        // The same version again is no walk.
        assert_eq!(near(&mut c, "b", 2), 0);
        // The memo is bounded: past its size it starts over.
        for i in 0..LAST_READ_DOCS as u64 {
            near(&mut c, &format!("d{i}"), 1);
        }
        assert!(c.last_read.len() <= LAST_READ_DOCS);
        c.clear();
        assert_eq!(near(&mut c, "a", 38), 0);
    }

    #[test]
    fn checkpoints_wait_as_candidates_at_a_documents_first_read_only() {
        let mut c = ContentCache::new(1 << 20);
        // The first read of a document, not of its first version: candidates.
        assert!(!c.keeping_for("a", 10).protect);
        // Any later read of it, whatever the version: protected.
        assert!(c.keeping_for("a", 3).protect);
        assert!(c.keeping_for("a", 4).protect);
        // A first read of a document's first version starts a walk: protected.
        assert!(c.keeping_for("b", 1).protect);
    }

    #[test]
    fn a_candidate_is_protected_once_a_rebuild_starts_from_it_and_recycled_otherwise() {
        let mut c = ContentCache::new(64 << 20);
        let h = |i: u16| {
            let mut b = [0u8; 32];
            b[..2].copy_from_slice(&i.to_be_bytes());
            ContentHash::from_bytes(b)
        };
        let len = 32 << 10;
        c.insert(h(0), Arc::new(vec![0; len]), Keep::Candidate, 0);
        // A rebuild starting from it protects it (a checkpoint, depth 0).
        assert!(c.get_base(&h(0)).is_some());
        assert_eq!(c.entries[&h(0)].keep, Keep::Protected);
        // Candidates nobody starts from stay within their bound; the newest stay, and the
        // evicted ones' buffers wait for the next contents kept.
        let n = 2 * CANDIDATE_BYTES / len;
        for i in 1..=n as u16 {
            c.insert(h(i), Arc::new(vec![0; len]), Keep::Candidate, 8);
        }
        let candidates = &c.segments[Keep::Candidate as usize];
        assert!(candidates.bytes <= CANDIDATE_BYTES, "{}", candidates.bytes);
        assert!(c.entries.contains_key(&h(n as u16)) && !c.entries.contains_key(&h(1)));
        assert!(
            c.entries.contains_key(&h(0)),
            "a protected checkpoint stays"
        );
        assert!(!c.spare.is_empty());
        let buf = c.buffer_for(len as u64);
        assert!(
            buf.capacity() >= len,
            "an evicted candidate's buffer is reused"
        );
    }

    /// Through a store: a document's first read leaves its checkpoints as candidates, a
    /// second read protects the one it starts from.
    #[test]
    fn a_documents_first_read_keeps_its_checkpoints_as_candidates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let doc = crate::DocId::new("notes").unwrap();
        let body: String = (0..100).map(|i| format!("line {i}\n")).collect();
        {
            let store = crate::Store::open(&path).unwrap();
            let mut batch = store.batch();
            for v in 0..40 {
                let content = format!("{body}edit {v}\n");
                batch
                    .put(&doc, content.as_bytes(), crate::PutOptions::default())
                    .unwrap();
            }
            batch.commit().unwrap();
        }
        // Reopened: nothing cached.
        let store = crate::Store::open(&path).unwrap();
        let depth = |v: u64| {
            let rec = store
                .version_record(&doc, strata_core::VersionNo(v))
                .unwrap()
                .unwrap();
            store
                .inner
                .kv
                .object_header(&rec.hash)
                .unwrap()
                .unwrap()
                .depth()
        };
        let (old, newer) = (depth(3), depth(10));
        assert!(
            old > newer && newer % CACHE_EVERY != 0,
            "depths {old}, {newer}"
        );
        store
            .get(&doc, crate::At::Version(strata_core::VersionNo(3)))
            .unwrap()
            .unwrap();
        let count = |keep: Keep| lock(&store.inner.cache).segments[keep as usize].order.len();
        assert_eq!(count(Keep::Protected), 0);
        // The chain's full snapshot and every content a multiple of 8 deltas from it, above
        // the wanted one.
        let candidates = (old - 1) / CACHE_EVERY + 1;
        assert_eq!(count(Keep::Candidate), candidates as usize);
        // A second read starts from the candidate nearest above it, which is protected.
        store
            .get(&doc, crate::At::Version(strata_core::VersionNo(10)))
            .unwrap()
            .unwrap();
        assert_eq!(count(Keep::Protected), 1);
        assert_eq!(count(Keep::Candidate), candidates as usize - 1);
    }

    #[test]
    fn cache_evicts_least_recently_used_within_capacity() {
        let mut c = ContentCache::new(10);
        let h = |i: u8| ContentHash::from_bytes([i; 32]);
        c.insert(h(1), Arc::new(b"abcd".to_vec()), Keep::Protected, 0);
        c.insert(h(2), Arc::new(b"efgh".to_vec()), Keep::Protected, 0);
        assert!(c.get(&h(1)).is_some());
        c.insert(h(3), Arc::new(b"ijkl".to_vec()), Keep::Protected, 0);
        assert!(
            c.get(&h(2)).is_none(),
            "least recently used entry is evicted"
        );
        assert!(c.get(&h(1)).is_some());
        assert!(c.total_bytes() <= 10);
        c.insert(h(4), Arc::new(vec![0u8; 6]), Keep::Protected, 0);
        assert!(
            c.get(&h(4)).is_none(),
            "entries over half the capacity are not kept"
        );
    }

    #[test]
    fn contents_read_once_leave_before_delta_bases() {
        // Capacity 800: probation holds 100 bytes (but always its newest entry).
        let mut c = ContentCache::new(800);
        let h = |i: u8| ContentHash::from_bytes([i; 32]);
        c.insert(h(1), Arc::new(vec![1u8; 60]), Keep::Probation, 0);
        c.insert(h(2), Arc::new(vec![2u8; 60]), Keep::Probation, 0);
        assert!(
            c.get(&h(1)).is_none(),
            "probation is over its share: the older entry leaves"
        );
        // A rebuild that starts from h(2) protects it; later reads do not push it out.
        assert!(c.get_base(&h(2)).is_some());
        for i in 3..20 {
            c.insert(h(i), Arc::new(vec![i; 60]), Keep::Probation, 0);
        }
        assert!(c.get(&h(2)).is_some(), "a delta base stays");
        assert!(c.get(&h(19)).is_some(), "the newest read stays");
        assert!(c.get(&h(18)).is_none());
        // A content larger than probation's share still enters, alone.
        c.insert(h(30), Arc::new(vec![0u8; 300]), Keep::Probation, 0);
        assert!(c.get(&h(30)).is_some() && c.get(&h(19)).is_none());
        assert_eq!(c.segments[Keep::Probation as usize].order.len(), 1);
        // Protected entries fill the rest of the capacity, least recently used out first.
        for i in 40..52 {
            c.insert(h(i), Arc::new(vec![i; 60]), Keep::Protected, 0);
        }
        assert!(c.total_bytes() <= 800);
        assert!(c.get(&h(51)).is_some() && c.get(&h(40)).is_none());
    }

    #[test]
    fn only_a_chain_checkpoint_is_protected_when_it_starts_a_rebuild() {
        let mut c = ContentCache::new(64 << 20);
        let h = |i: u8| ContentHash::from_bytes([i; 32]);
        // Two contents a reader asked for: one at a checkpoint's depth, one between.
        c.insert(
            h(1),
            Arc::new(vec![1; 100]),
            Keep::Probation,
            2 * CACHE_EVERY,
        );
        c.insert(
            h(2),
            Arc::new(vec![2; 100]),
            Keep::Probation,
            2 * CACHE_EVERY + 3,
        );
        let (_, depth) = c.get_base(&h(1)).unwrap();
        assert_eq!(depth, 2 * CACHE_EVERY, "a base's depth comes back with it");
        assert_eq!(c.get_base(&h(2)).unwrap().1, 2 * CACHE_EVERY + 3);
        assert_eq!(c.entries[&h(1)].keep, Keep::Protected);
        assert_eq!(
            c.entries[&h(2)].keep,
            Keep::Probation,
            "a base between checkpoints stays on probation"
        );
        // So later reads push it out; the checkpoint stays.
        for i in 3..3 + RECENT_ENTRIES as u8 {
            c.insert(h(i), Arc::new(vec![i; 100]), Keep::Probation, 1);
        }
        assert!(c.get(&h(2)).is_none() && c.get(&h(1)).is_some());
        // A content forgotten leaves its segment's count and bytes too.
        let before = c.total_bytes();
        c.forget(&h(1));
        assert!(c.get(&h(1)).is_none());
        assert_eq!(c.total_bytes(), before - 100);
        assert!(c.segments[Keep::Protected as usize].order.is_empty());
    }

    #[test]
    fn probation_holds_a_bounded_number_of_bytes_of_large_contents() {
        // The capacity would let probation hold 12 MiB; large contents are bounded by
        // PROBATION_BYTES instead (but the newest always stays).
        let mut c = ContentCache::new(96 << 20);
        let h = |i: u8| ContentHash::from_bytes([i; 32]);
        let big = PROBATION_BYTES / 3 + 1;
        for i in 0..6 {
            c.insert(h(i), Arc::new(vec![i; big]), Keep::Probation, 1);
        }
        let probation = &c.segments[Keep::Probation as usize];
        assert!(probation.bytes <= PROBATION_BYTES && probation.order.len() == 2);
        assert!(c.get(&h(5)).is_some() && c.get(&h(3)).is_none());
        c.insert(
            h(9),
            Arc::new(vec![9; 2 * PROBATION_BYTES]),
            Keep::Probation,
            1,
        );
        assert!(c.get(&h(9)).is_some(), "the newest stays however large");
        // Contents decoded ahead are not held to it: a walk's neighbours all wait.
        for i in 20..30 {
            c.insert(h(i), Arc::new(vec![i; big]), Keep::Ahead, 1);
        }
        assert_eq!(c.segments[Keep::Ahead as usize].order.len(), 10);
    }

    #[test]
    fn contents_decoded_ahead_leave_when_read() {
        let mut c = ContentCache::new(8 << 20);
        let h = |i: u8| ContentHash::from_bytes([i; 32]);
        c.insert(h(1), Arc::new(vec![1; 100]), Keep::Probation, 0);
        c.insert(h(2), Arc::new(vec![2; 100]), Keep::Ahead, 0);
        c.insert(h(3), Arc::new(vec![3; 100]), Keep::Ahead, 0);
        assert_eq!(*c.get(&h(2)).unwrap(), vec![2; 100]);
        assert!(c.get(&h(2)).is_none(), "read once, it left");
        assert_eq!(c.total_bytes(), 200);
        // Read twice, a wanted content stays; one that starts a rebuild stays too.
        assert!(c.get(&h(1)).is_some() && c.get(&h(1)).is_some());
        assert!(c.get_base(&h(3)).is_some());
        assert!(c.get(&h(3)).is_some() && c.get(&h(3)).is_some());
        assert_eq!(c.total_bytes(), 200);
    }

    #[test]
    fn probation_holds_a_bounded_number_of_recent_contents() {
        // Probation's byte share (1 MiB) would hold thousands of these; the count bound
        // evicts them, and their buffers wait for reuse instead of fresh memory.
        let mut c = ContentCache::new(8 << 20);
        let h = |i: u8| ContentHash::from_bytes([i; 32]);
        for i in 0..40 {
            c.insert(h(i), Arc::new(vec![i; 100]), Keep::Probation, 0);
        }
        assert_eq!(
            c.segments[Keep::Probation as usize].order.len(),
            RECENT_ENTRIES
        );
        assert!(c.get(&h(39)).is_some() && c.get(&h(24)).is_some());
        assert!(c.get(&h(23)).is_none(), "the oldest beyond the bound left");
        assert_eq!(c.spare.len(), SPARE_BUFFERS);
        assert!(c.buffer_for(100).capacity() >= 100);
        // Contents decoded ahead are bounded by bytes only.
        for i in 100..140 {
            c.insert(h(i), Arc::new(vec![i; 100]), Keep::Ahead, 0);
        }
        assert_eq!(c.segments[Keep::Ahead as usize].order.len(), 40);
    }

    #[test]
    fn evicted_buffers_are_reused_for_contents_of_a_similar_size() {
        let mut c = ContentCache::new(100);
        let h = |i: u8| ContentHash::from_bytes([i; 32]);
        c.insert(h(1), Arc::new(vec![1u8; 40]), Keep::Protected, 0);
        let held = c.get(&h(1)).unwrap();
        c.insert(h(2), Arc::new(vec![2u8; 40]), Keep::Protected, 0);
        c.insert(h(3), Arc::new(vec![3u8; 40]), Keep::Protected, 0);
        // h(1) was evicted while a reader held it: its buffer is not taken from the reader.
        assert_eq!(*held, vec![1u8; 40]);
        c.insert(h(4), Arc::new(vec![4u8; 40]), Keep::Protected, 0);
        // h(2) was evicted with no reader: its buffer waits for reuse, empty.
        assert!(
            c.buffer_for(5).capacity() < 40,
            "a buffer far too large is not used"
        );
        let buf = c.buffer_for(30);
        assert!(buf.is_empty() && buf.capacity() >= 40);
        assert!(c.buffer_for(30).capacity() < 40, "only one spare buffer");
        // A spare a little short for a grown content is still used.
        c.insert(h(5), Arc::new(vec![5u8; 40]), Keep::Protected, 0);
        c.insert(h(6), Arc::new(vec![6u8; 40]), Keep::Protected, 0);
        assert!(c.buffer_for(50).capacity() >= 40);
    }
}
