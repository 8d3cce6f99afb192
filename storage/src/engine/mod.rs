//! The storage-engine seam: the narrow interface every layer above uses to keep bytes, and
//! its two implementations, sled ([`sled`](self::sled), on disk) and memory ([`memory`], for
//! tests and for the model-based harness). A replicated engine goes behind the same trait.
//!
//! An engine keeps ordered key spaces ([`Space`]) of byte keys and values. It offers point
//! reads, ordered ranges in both directions, and one write operation: a [`Batch`] of puts and
//! removes across spaces, applied atomically, with optional expectations (compare-and-swap:
//! the batch applies only if every expected key still holds the expected value). strata's
//! commits expect the counters record they read, so two writers never both win.
//! Nothing above this module names sled.

pub(crate) mod keyfilter;
pub(crate) mod lsm;
pub(crate) mod memory;
pub(crate) mod nats;
pub(crate) mod packfiles;
pub(crate) mod sled;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use crate::error::{StoreError, StoreResult};

/// A key space of the store. `docs/format.md` gives the keys and values of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Space {
    /// Document key → document number.
    Names,
    /// Document number → key and latest version.
    Docs,
    /// Document number ‖ first version → a page of version records.
    Versions,
    /// Loose objects: id ‖ part → header or payload chunk.
    Objects,
    /// Packed objects: id → where in which pack.
    Index,
    /// Sequence number → a page of the change feed.
    Feed,
    /// Format, policy, counters, pack counter.
    Meta,
    /// Pack `n`: one value, under the empty key.
    Pack(u64),
    /// The blocks of record run `n` back to back ([`lsm`], store format 4): one value, under
    /// the empty key (a file of its own in the sled engine, read by offset).
    RunData(u64),
    /// Sorted runs of records ([`lsm`]): run number BE → the run's directory.
    Runs,
    /// The blocks of the runs: run number BE ‖ block BE (u32) → sorted records.
    RunBlocks,
    /// Records removed since the last run was written ([`lsm`]): tag ‖ key → empty.
    Tombstones,
}

impl Space {
    /// Every fixed space of the store's records (packs are listed by [`Engine::packs`]).
    pub(crate) const FIXED: [Self; 7] = [
        Self::Names,
        Self::Docs,
        Self::Versions,
        Self::Objects,
        Self::Index,
        Self::Feed,
        Self::Meta,
    ];

    /// Every fixed space an engine keeps: the records' and the record runs'.
    pub(crate) fn engine_spaces() -> impl Iterator<Item = Self> {
        Self::FIXED
            .into_iter()
            .chain([Self::Runs, Self::RunBlocks, Self::Tombstones])
    }
}

/// A value read from an engine, shared with the engine's cache where it has one: cloning and
/// slicing it copies nothing.
#[derive(Clone, Debug)]
pub(crate) struct Value {
    base: Base,
    range: std::ops::Range<usize>,
}

#[derive(Clone, Debug)]
enum Base {
    Sled(::sled::IVec),
    Shared(Arc<[u8]>),
    Mapped(Arc<memmap2::Mmap>),
}

impl Value {
    /// A value from sled's page cache.
    pub(crate) fn sled(v: ::sled::IVec) -> Self {
        let range = 0..v.len();
        Self {
            base: Base::Sled(v),
            range,
        }
    }

    /// A value held in memory.
    pub(crate) fn shared(v: Arc<[u8]>) -> Self {
        let range = 0..v.len();
        Self {
            base: Base::Shared(v),
            range,
        }
    }

    /// A file mapped into memory (see [`packfiles`](self::packfiles)).
    pub(crate) fn mapped(v: Arc<memmap2::Mmap>) -> Self {
        let range = 0..v.len();
        Self {
            base: Base::Mapped(v),
            range,
        }
    }

    /// The bytes `range` of this value, sharing its storage.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> Self {
        let start = self.range.start + range.start;
        let end = self.range.start + range.end;
        assert!(end <= self.range.end, "a slice within the value");
        Self {
            base: self.base.clone(),
            range: start..end,
        }
    }
}

impl std::ops::Deref for Value {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let all: &[u8] = match &self.base {
            Base::Sled(v) => v,
            Base::Shared(v) => v,
            Base::Mapped(v) => v,
        };
        &all[self.range.clone()]
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// Ordered entries of a range, either way round.
pub(crate) type Entries<'a> =
    Box<dyn DoubleEndedIterator<Item = StoreResult<(Value, Value)>> + Send + 'a>;

/// One change of a [`Batch`]: a put (`Some`) or a remove (`None`).
pub(crate) type Change = (Space, Vec<u8>, Option<Vec<u8>>);

/// Puts and removes applied atomically, if every expectation holds.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) changes: Vec<Change>,
    /// (space, key, value the key must hold; `None`: must be absent).
    pub(crate) expect: Vec<Change>,
    /// Write the batch's records as a record run of their own even when they are few (a bulk
    /// load, a repack's copy: records that will not change soon), so they never pass through
    /// the engine's log; see [`lsm::DIRECT_DIVISOR`]. An engine without runs ignores it.
    pub(crate) direct: bool,
}

impl Batch {
    /// An empty batch whose records are written as a record run of their own (its `direct`
    /// field).
    pub(crate) fn direct() -> Self {
        Self {
            direct: true,
            ..Self::default()
        }
    }

    /// Adds a put.
    pub(crate) fn put(&mut self, space: Space, key: impl Into<Vec<u8>>, value: Vec<u8>) {
        self.changes.push((space, key.into(), Some(value)));
    }

    /// Adds a remove.
    pub(crate) fn remove(&mut self, space: Space, key: impl Into<Vec<u8>>) {
        self.changes.push((space, key.into(), None));
    }

    /// Makes the batch apply only while `key` holds `value` (`None`: is absent).
    pub(crate) fn expect(&mut self, space: Space, key: impl Into<Vec<u8>>, value: Option<&[u8]>) {
        self.expect
            .push((space, key.into(), value.map(<[u8]>::to_vec)));
    }

    /// Whether the batch changes nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Why a batch was not applied.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// An expectation did not hold: another writer got there first. Nothing was written.
    Conflict,
    /// The engine failed or found damage.
    Store(StoreError),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The bytes `offset..offset + len` of the whole value of `space` (a pack or a run's data),
/// or corruption naming it when they are not all within it.
pub(crate) fn blob_slice(space: Space, blob: &Value, offset: u64, len: u64) -> StoreResult<Value> {
    let range = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(o, l)| Some(o..o.checked_add(l)?))
        .filter(|r| r.end <= blob.len())
        .ok_or_else(|| {
            StoreError::corrupt(blob_name(space), cut_short(blob.len() as u64, offset, len))
        })?;
    Ok(blob.slice(range))
}

/// The reason of a read past the end of a pack or a run's data.
pub(crate) fn cut_short(size: u64, offset: u64, len: u64) -> String {
    format!(
        "it has {size} bytes, and {len} bytes at {offset} were wanted: it is cut short, or what \
         points into it is damaged"
    )
}

/// How errors name a pack or a run's data.
pub(crate) fn blob_name(space: Space) -> String {
    match space {
        Space::Pack(n) => format!("pack {n}"),
        Space::RunData(n) => format!("record run {n}"),
        other => format!("{other:?}"),
    }
}

/// The key of a pack space's one value.
pub(crate) const PACK_KEY: &[u8] = b"";

/// A storage engine: ordered key spaces, atomic batches with compare-and-swap, durability.
pub(crate) trait Engine: Send + Sync + std::fmt::Debug {
    /// Reads one value.
    fn get(&self, space: Space, key: &[u8]) -> StoreResult<Option<Value>>;

    /// Returns the entries of `space` between two bounds, in key order.
    fn range(&self, space: Space, from: Bound<Vec<u8>>, to: Bound<Vec<u8>>) -> Entries<'_>;

    /// Returns the last entry of `space` between two bounds (the one with the greatest key).
    fn last_in(
        &self,
        space: Space,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> StoreResult<Option<(Value, Value)>> {
        self.range(space, from, to).next_back().transpose()
    }

    /// Applies a batch atomically: after a crash, all of it or none of it.
    fn write(&self, batch: Batch) -> Result<(), WriteError>;

    /// Merges whatever the engine keeps in several pieces into as few as it can (the record
    /// runs of [`lsm`]); nothing by default.
    fn compact_all(&self) -> StoreResult<()> {
        Ok(())
    }

    /// How many pieces a lookup may have to look in (the record runs of [`lsm`]); 0 by
    /// default.
    fn pieces(&self) -> StoreResult<usize> {
        Ok(0)
    }

    /// Reads `len` bytes at `offset` of the one value (under [`PACK_KEY`]) of a space that
    /// holds one, [`Space::Pack`] or [`Space::RunData`]: `None` when there is no such value,
    /// corruption when it is shorter. The default reads the value whole; an engine that keeps
    /// these as files reads just the range.
    fn blob_range(&self, space: Space, offset: u64, len: u64) -> StoreResult<Option<Value>> {
        match self.get(space, PACK_KEY)? {
            Some(blob) => blob_slice(space, &blob, offset, len).map(Some),
            None => Ok(None),
        }
    }

    /// The size in bytes of the one value of `space` (as [`Engine::blob_range`]).
    fn blob_len(&self, space: Space) -> StoreResult<Option<u64>> {
        Ok(self.get(space, PACK_KEY)?.map(|p| p.len() as u64))
    }

    /// The numbers of every [`Space::RunData`] there is, in order, including data dropped
    /// that an engine keeping files has not removed yet (see [`lsm`]'s numbering).
    fn run_data(&self) -> StoreResult<Vec<u64>>;

    /// Returns the number of every pack space, in order.
    fn packs(&self) -> StoreResult<Vec<u64>>;

    /// Removes a pack space with its value.
    fn drop_pack(&self, n: u64) -> StoreResult<()>;

    /// Makes every applied batch durable.
    fn flush(&self) -> StoreResult<()>;

    /// The directory the engine keeps its files in; `None` for an engine without one.
    fn dir(&self) -> Option<&Path>;

    /// Brings what this process reads up to date with what other processes wrote: an engine
    /// shared between processes ([`nats`]) reads their batches; nothing by default (an engine
    /// that one process holds is always up to date).
    fn sync(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Whether other processes write to the same records at the same time (the NATS engine):
    /// then maintenance takes the store's lease (`Kv::begin_maintenance`).
    fn shared(&self) -> bool {
        false
    }

    /// Adds `fence` (an expectation) to every batch this engine writes until it is cleared:
    /// a maintenance whose lease another process broke writes nothing more. An engine that
    /// one process holds has no use for it.
    fn set_fence(&self, fence: Option<Change>) {
        let _ = fence;
    }

    /// Replaces every record with `snapshot`'s and drops what the engine keeps of the
    /// history before (a log-based engine's compaction); the caller holds the maintenance
    /// lease. Only an engine that keeps a log does it.
    fn compact_log(&self, snapshot: &memory::MemoryEngine) -> StoreResult<()> {
        let _ = snapshot;
        Err(StoreError::Repack {
            reason: "this engine keeps no log to compact".into(),
        })
    }

    /// The bytes the engine keeps for the store where it is not a directory (a NATS stream's);
    /// `None` by default.
    fn stored_bytes(&self) -> StoreResult<Option<u64>> {
        Ok(None)
    }

    /// Calls `wake` whenever another process may have written (a shared engine's); an engine
    /// that one process holds never does.
    fn watch(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = wake;
    }
}

/// Every entry of a space, in key order.
pub(crate) fn all(engine: &dyn Engine, space: Space) -> Entries<'_> {
    engine.range(space, Bound::Unbounded, Bound::Unbounded)
}

/// Every entry whose key starts with `prefix`, in key order.
pub(crate) fn with_prefix<'a>(engine: &'a dyn Engine, space: Space, prefix: &[u8]) -> Entries<'a> {
    let to = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    engine.range(space, Bound::Included(prefix.to_vec()), to)
}

/// The smallest key greater than every key that starts with `prefix` (`None`: no such key).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract both engines keep, run against each.
    pub(crate) fn engine_contract(engine: &dyn Engine) {
        let mut b = Batch::default();
        b.put(Space::Names, b"b".to_vec(), b"2".to_vec());
        b.put(Space::Names, b"a".to_vec(), b"1".to_vec());
        b.put(Space::Names, b"a\xff".to_vec(), b"3".to_vec());
        b.put(Space::Docs, b"a".to_vec(), b"other space".to_vec());
        engine.write(b).unwrap();
        assert_eq!(&*engine.get(Space::Names, b"a").unwrap().unwrap(), b"1");
        assert!(engine.get(Space::Meta, b"a").unwrap().is_none());
        let keys =
            |e: Entries<'_>| -> Vec<Vec<u8>> { e.map(|kv| kv.unwrap().0.to_vec()).collect() };
        assert_eq!(
            keys(all(engine, Space::Names)),
            vec![b"a".to_vec(), b"a\xff".to_vec(), b"b".to_vec()]
        );
        assert_eq!(
            keys(with_prefix(engine, Space::Names, b"a")),
            vec![b"a".to_vec(), b"a\xff".to_vec()]
        );
        let last = engine
            .range(
                Space::Names,
                Bound::Unbounded,
                Bound::Excluded(b"b".to_vec()),
            )
            .next_back()
            .unwrap()
            .unwrap();
        assert_eq!(&*last.0, b"a\xff");
        // A failed expectation writes nothing.
        let mut b = Batch::default();
        b.put(Space::Names, b"c".to_vec(), b"4".to_vec());
        b.expect(Space::Names, b"a".to_vec(), Some(b"not 1"));
        assert!(matches!(engine.write(b), Err(WriteError::Conflict)));
        assert!(engine.get(Space::Names, b"c").unwrap().is_none());
        let mut b = Batch::default();
        b.put(Space::Names, b"c".to_vec(), b"4".to_vec());
        b.remove(Space::Names, b"b".to_vec());
        b.expect(Space::Names, b"a".to_vec(), Some(b"1"));
        b.expect(Space::Meta, b"absent".to_vec(), None);
        engine.write(b).unwrap();
        assert_eq!(&*engine.get(Space::Names, b"c").unwrap().unwrap(), b"4");
        assert!(engine.get(Space::Names, b"b").unwrap().is_none());
        // Packs are spaces of their own, listed and dropped whole.
        let mut b = Batch::default();
        b.put(Space::Pack(7), Vec::new(), b"pack seven".to_vec());
        b.put(Space::Pack(3), Vec::new(), b"pack three".to_vec());
        engine.write(b).unwrap();
        assert_eq!(engine.packs().unwrap(), vec![3, 7]);
        engine.drop_pack(3).unwrap();
        assert_eq!(engine.packs().unwrap(), vec![7]);
        assert!(engine.get(Space::Pack(3), b"").unwrap().is_none());
        assert_eq!(
            &*engine.get(Space::Pack(7), b"").unwrap().unwrap(),
            b"pack seven"
        );
        engine.flush().unwrap();
    }

    #[test]
    fn prefix_end_skips_trailing_max_bytes() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
