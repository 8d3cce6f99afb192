//! The read path: walk the delta chain to the nearest full snapshot (or cached content), apply
//! the deltas, and check the blake3 id of the result.

use std::collections::{BTreeMap, HashMap};
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

/// A bounded least-recently-used cache of rebuilt contents, keyed by content id (git's
/// delta-base cache). Only verified contents enter it.
#[derive(Debug, Default)]
pub(crate) struct ContentCache {
    capacity: usize,
    bytes: usize,
    tick: u64,
    entries: HashMap<ContentHash, (Shared, u64)>,
    order: BTreeMap<u64, ContentHash>,
    /// Buffers of evicted contents that no reader still held, for the next contents to be
    /// kept: reusing warm memory instead of first touching fresh pages (which costs several
    /// times a delta's decode on large documents).
    spare: Vec<Vec<u8>>,
}

/// At most this many evicted buffers wait for reuse.
const SPARE_BUFFERS: usize = 8;

impl ContentCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    pub(crate) fn get(&mut self, hash: &ContentHash) -> Option<Shared> {
        self.tick += 1;
        let tick = self.tick;
        let (content, last) = self.entries.get_mut(hash)?;
        self.order.remove(last);
        *last = tick;
        self.order.insert(tick, *hash);
        Some(Arc::clone(content))
    }

    pub(crate) fn insert(&mut self, hash: ContentHash, content: Shared) {
        if content.len() > self.capacity / 2 || self.entries.contains_key(&hash) {
            return;
        }
        self.tick += 1;
        self.bytes += content.len();
        self.entries.insert(hash, (content, self.tick));
        self.order.insert(self.tick, hash);
        while self.bytes > self.capacity {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some((c, _)) = self.entries.remove(&old) {
                self.bytes -= c.len();
                if self.spare.len() < SPARE_BUFFERS
                    && let Ok(buf) = Arc::try_unwrap(c)
                {
                    self.spare.push(buf);
                }
            }
        }
    }

    /// Returns an empty buffer for a content of `len` bytes: an evicted one that fits (at
    /// most twice as large), else a new one.
    pub(crate) fn buffer_for(&mut self, len: u64) -> Vec<u8> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        match self
            .spare
            .iter()
            .position(|b| b.capacity() >= len && b.capacity() / 2 <= len)
        {
            Some(i) => {
                let mut buf = self.spare.swap_remove(i);
                buf.clear();
                buf
            }
            None => Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.spare.clear();
        self.bytes = 0;
    }
}

/// Of the contents rebuilt on the way to the wanted one, every this-many-th is cached ...
const CACHE_EVERY: usize = 8;
/// ... and so is each of the last this-many before it: the wanted version's neighbours, which
/// a reader walking the history asks for next.
const CACHE_NEAR: usize = 4;

/// Rebuilds the content of object `hash`, using and filling `cache`.
///
/// `max_len` bounds every allocation: an object that claims to be larger is corrupt.
///
/// Every content is checked before it is returned or cached: by zstd's content checksum when
/// every object decoded on the way carries one and `trust_checksums` (each decode then proves
/// its output, given a proven base), else by its blake3 id.
pub(crate) fn rebuild(
    kv: &Kv,
    cache: &std::sync::Mutex<ContentCache>,
    hash: &ContentHash,
    max_len: u64,
    trust_checksums: bool,
) -> StoreResult<Shared> {
    if let Some(hit) = lock(cache).get(hash) {
        return Ok(hit);
    }
    // Walk from the wanted object towards a full snapshot or a cached content.
    let mut chain: Vec<(ContentHash, StoredObject)> = Vec::new();
    let mut cursor = *hash;
    let mut start: Option<Shared> = None;
    loop {
        if !chain.is_empty()
            && let Some(hit) = lock(cache).get(&cursor)
        {
            start = Some(hit);
            break;
        }
        let object = kv.object(&cursor)?.ok_or_else(|| {
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
        match next {
            Some(base) => cursor = base,
            None => break,
        }
    }
    let mut scratch = take_scratch();
    let mut content = match start {
        Some(shared) => Step::Kept(shared),
        None => Step::Nothing,
    };
    let mut remaining = chain.len();
    // Whether every decode so far was checked by its own checksum (a cached start is verified).
    let mut checked = trust_checksums;
    for (id, object) in chain.into_iter().rev() {
        let id = &id;
        let header = object.header;
        let payload = kv.object_payload(id, object)?;
        let bad = |e: delta::ApplyError| StoreError::corrupt(format!("object {id}"), e);
        checked &= match header.kind {
            ObjectKind::Full { codec: Codec::Zstd }
            | ObjectKind::Delta {
                codec: Codec::ZstdPatch,
                ..
            } => delta::is_self_checked(&payload),
            _ => false,
        };
        remaining -= 1;
        // Contents rebuilt on the way are verified and cached every 8th, and the 4 nearest
        // the wanted one, so walking a chain's versions one after another costs about one
        // delta each in either direction. The others are decoded into two scratch buffers
        // that every read of this thread reuses: decoding a delta into warm memory costs a
        // fraction of first touching a fresh buffer's pages.
        let keep = id == hash || remaining <= CACHE_NEAR || remaining.is_multiple_of(CACHE_EVERY);
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
            (ObjectKind::Full { codec: Codec::Zstd }, _) => {
                delta::decompress_into(&payload, header.raw_len, &mut out).map_err(bad)?;
            }
            (
                ObjectKind::Delta {
                    codec: Codec::ZstdPatch,
                    ..
                },
                Some(base),
            ) => delta::apply_into(base, &payload, header.raw_len, &mut out).map_err(bad)?,
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
            lock(cache).insert(*id, Arc::clone(&shared));
            content = Step::Kept(shared);
        } else {
            let slot = content.free_scratch();
            scratch[slot] = out;
            content = Step::Scratch(slot);
        }
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
    fn cache_evicts_least_recently_used_within_capacity() {
        let mut c = ContentCache::new(10);
        let h = |i: u8| ContentHash::from_bytes([i; 32]);
        c.insert(h(1), Arc::new(b"abcd".to_vec()));
        c.insert(h(2), Arc::new(b"efgh".to_vec()));
        assert!(c.get(&h(1)).is_some());
        c.insert(h(3), Arc::new(b"ijkl".to_vec()));
        assert!(
            c.get(&h(2)).is_none(),
            "least recently used entry is evicted"
        );
        assert!(c.get(&h(1)).is_some());
        assert!(c.bytes <= 10);
        c.insert(h(4), Arc::new(vec![0u8; 6]));
        assert!(
            c.get(&h(4)).is_none(),
            "entries over half the capacity are not kept"
        );
    }

    #[test]
    fn evicted_buffers_are_reused_for_contents_of_a_similar_size() {
        let mut c = ContentCache::new(100);
        let h = |i: u8| ContentHash::from_bytes([i; 32]);
        c.insert(h(1), Arc::new(vec![1u8; 40]));
        let held = c.get(&h(1)).unwrap();
        c.insert(h(2), Arc::new(vec![2u8; 40]));
        c.insert(h(3), Arc::new(vec![3u8; 40]));
        // h(1) was evicted while a reader held it: its buffer is not taken from the reader.
        assert_eq!(*held, vec![1u8; 40]);
        c.insert(h(4), Arc::new(vec![4u8; 40]));
        // h(2) was evicted with no reader: its buffer waits for reuse, empty.
        assert_eq!(
            c.buffer_for(5).capacity(),
            0,
            "a buffer far too large is not used"
        );
        let buf = c.buffer_for(30);
        assert!(buf.is_empty() && buf.capacity() >= 40);
        assert_eq!(c.buffer_for(30).capacity(), 0, "only one spare buffer");
    }
}
