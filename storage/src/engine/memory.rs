//! The memory engine: every space a `BTreeMap` behind one lock. Nothing is durable; clones of
//! a [`MemoryEngine`] share one store's data, so "closing and reopening" a memory store keeps
//! it, as a disk store would.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use super::{Batch, Engine, Entries, Space, Value, WriteError};
use crate::error::StoreResult;

type Map = BTreeMap<Vec<u8>, Arc<[u8]>>;

/// Data kept in memory only, for tests and for the model-based harness: open a store on it
/// with [`Store::open_memory`](crate::Store::open_memory). Clones share the same data. As with
/// a store on disk, one [`Store`](crate::Store) at a time may have it open (clone that `Store`
/// to share it).
#[derive(Clone, Debug, Default)]
pub struct MemoryEngine {
    spaces: Arc<RwLock<HashMap<Space, Map>>>,
    in_use: Arc<AtomicBool>,
}

/// A memory engine claimed by an open store; released when dropped.
#[derive(Debug)]
pub(crate) struct MemoryClaim(Arc<AtomicBool>);

impl Drop for MemoryClaim {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl MemoryEngine {
    /// Returns an empty engine.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims the engine for one open store; `None` while another holds it.
    pub(crate) fn claim(&self) -> Option<MemoryClaim> {
        self.in_use
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| MemoryClaim(Arc::clone(&self.in_use)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Space, Map>> {
        // A writer that panicked mid-batch applied nothing: changes are applied only after
        // every expectation was checked, by code that does not panic.
        self.spaces
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl MemoryEngine {
    /// Removes every record.
    pub(crate) fn clear(&self) {
        self.spaces
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Every record of every space, as puts.
    pub(crate) fn entries(&self) -> Vec<super::Change> {
        let spaces = self.read();
        let mut out = Vec::new();
        for (space, map) in spaces.iter() {
            for (k, v) in map {
                out.push((*space, k.clone(), Some(v.to_vec())));
            }
        }
        out
    }

    /// Whether every expectation `(space, key, value)` of a batch holds.
    pub(crate) fn holds(&self, expect: &[super::Change]) -> bool {
        expectations_hold(&self.read(), expect)
    }

    /// The numbers of the spaces `pick` names, in order.
    fn numbered(&self, pick: impl Fn(&Space) -> Option<u64>) -> Vec<u64> {
        let mut out: Vec<u64> = self.read().keys().filter_map(pick).collect();
        out.sort_unstable();
        out
    }
}

/// Whether every expectation `(space, key, value)` holds in `spaces`.
fn expectations_hold(spaces: &HashMap<Space, Map>, expect: &[super::Change]) -> bool {
    expect.iter().all(|(space, key, want)| {
        spaces.get(space).and_then(|m| m.get(key)).map(|v| &v[..]) == want.as_deref()
    })
}

impl Engine for MemoryEngine {
    fn get(&self, space: Space, key: &[u8]) -> StoreResult<Option<Value>> {
        Ok(self
            .read()
            .get(&space)
            .and_then(|m| m.get(key))
            .map(|v| Value::shared(Arc::clone(v))))
    }

    fn range(&self, space: Space, from: Bound<Vec<u8>>, to: Bound<Vec<u8>>) -> Entries<'_> {
        let spaces = self.read();
        // An empty range (from past to) yields nothing, as sled's does, instead of panicking
        // as BTreeMap::range would.
        let empty = match (&from, &to) {
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a > b
                    || (a == b
                        && !(matches!(from, Bound::Included(_))
                            && matches!(to, Bound::Included(_))))
            }
            _ => false,
        };
        let entries: Vec<_> = match spaces.get(&space) {
            Some(m) if !empty => m
                .range((from, to))
                .map(|(k, v)| {
                    Ok((
                        Value::shared(Arc::from(k.as_slice())),
                        Value::shared(Arc::clone(v)),
                    ))
                })
                .collect(),
            _ => Vec::new(),
        };
        Box::new(entries.into_iter())
    }

    fn write(&self, batch: Batch) -> Result<(), WriteError> {
        let mut spaces = self
            .spaces
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !expectations_hold(&spaces, &batch.expect) {
            return Err(WriteError::Conflict);
        }
        for (space, key, value) in batch.changes {
            let map = spaces.entry(space).or_default();
            match value {
                Some(v) => {
                    map.insert(key, Arc::from(v));
                }
                None => {
                    map.remove(&key);
                }
            }
        }
        spaces.retain(|_, m| !m.is_empty());
        Ok(())
    }

    fn packs(&self) -> StoreResult<Vec<u64>> {
        Ok(self.numbered(|s| match s {
            Space::Pack(n) => Some(*n),
            _ => None,
        }))
    }

    fn run_data(&self) -> StoreResult<Vec<u64>> {
        Ok(self.numbered(|s| match s {
            Space::RunData(n) => Some(*n),
            _ => None,
        }))
    }

    fn drop_pack(&self, n: u64) -> StoreResult<()> {
        self.spaces
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&Space::Pack(n));
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn dir(&self) -> Option<&Path> {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_engine_keeps_the_contract() {
        super::super::tests::engine_contract(&super::MemoryEngine::new());
    }

    #[test]
    fn empty_and_reversed_ranges_yield_nothing() {
        use super::*;
        let e = MemoryEngine::new();
        let mut b = Batch::default();
        b.put(Space::Meta, b"k".to_vec(), b"v".to_vec());
        e.write(b).unwrap();
        let n = |from, to| e.range(Space::Meta, from, to).count();
        assert_eq!(
            n(
                Bound::Included(b"z".to_vec()),
                Bound::Included(b"a".to_vec())
            ),
            0
        );
        assert_eq!(
            n(
                Bound::Included(b"k".to_vec()),
                Bound::Excluded(b"k".to_vec())
            ),
            0
        );
        assert_eq!(
            n(
                Bound::Included(b"k".to_vec()),
                Bound::Included(b"k".to_vec())
            ),
            1
        );
    }
}
