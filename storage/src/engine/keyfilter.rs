//! Key filters of record runs: a Bloom filter per run, kept in memory only, that answers
//! "this run cannot hold the key" for most keys it does not hold.
//!
//! Why (measured, `BENCHMARKS.md`, session 10): a lookup of a record searches the runs from
//! newest to oldest, one binary search each, until one holds the key. A server taking puts
//! to 10,000 documents spent 30% of its writer's time in those searches, most of them in
//! runs that did not hold the key. With a filter, a run is searched only when its filter
//! says it may hold the key (about 1% of the runs that do not).
//!
//! Filters are not stored: a run written by this process gets one from the entries it was
//! written from; a run read from disk gets one once it has been searched often enough that
//! reading all of it costs less than the searches did (see [`LazyFilter::probe`]), so a
//! short-lived command doing a few lookups never reads whole runs for it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits per key: with [`PROBES`] probes, about 1% false positives.
const BITS_PER_KEY: usize = 10;

/// Bits set and tested per key.
const PROBES: u32 = 6;

/// A Bloom filter over a run's full keys.
#[derive(Debug)]
pub(crate) struct KeyFilter {
    bits: Vec<u64>,
}

/// Two 64-bit hashes of `key`: each 8 bytes are folded in through splitmix64's finalizer,
/// which spreads every input bit over every output bit. (FxHash, as the store's maps use,
/// only carries bits upward: over keys that differ in their high bytes, a tag and
/// big-endian numbers, it gave 2,048 distinct hashes for 20,000 keys.)
fn hashes(key: &[u8]) -> (u64, u64) {
    let mut h = 0x243f_6a88_85a3_08d3 ^ key.len() as u64;
    for chunk in key.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(word));
    }
    let b = mix(h ^ 0x9e37_79b9_7f4a_7c15) | 1;
    (h, b)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl KeyFilter {
    /// A filter holding `keys` (of which there are about `count`).
    pub(crate) fn of<'k>(count: usize, keys: impl IntoIterator<Item = &'k [u8]>) -> Self {
        let words = (count.max(1) * BITS_PER_KEY).div_ceil(64);
        let mut filter = Self {
            bits: vec![0; words],
        };
        for key in keys {
            filter.insert(key);
        }
        filter
    }

    fn positions(&self, key: &[u8]) -> [usize; PROBES as usize] {
        let (a, b) = hashes(key);
        let len = (self.bits.len() * 64) as u64;
        std::array::from_fn(|i| (a.wrapping_add((i as u64).wrapping_mul(b)) % len) as usize)
    }

    fn insert(&mut self, key: &[u8]) {
        for p in self.positions(key) {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    /// `false` when the run certainly does not hold `key`.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        self.positions(key)
            .iter()
            .all(|&p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// A run's filter, built when the run is written or once it has been searched often enough.
#[derive(Debug, Default)]
pub(crate) struct LazyFilter {
    filter: OnceLock<KeyFilter>,
    probes: AtomicU64,
}

/// A filter is built from a run read from disk once it has been searched in vain at least
/// this many times per this many of its entries: reading an entry to build the filter costs
/// about a twentieth of a search (a binary search over a block and the directory), so by
/// then the searches a filter would have saved have cost more than the building does.
const ENTRIES_PER_PROBE: u64 = 16;

impl LazyFilter {
    /// A filter built now, from the keys a run is written with.
    pub(crate) fn built(filter: KeyFilter) -> Self {
        let lazy = Self::default();
        let _ = lazy.filter.set(filter);
        lazy
    }

    /// The filter, if built.
    pub(crate) fn get(&self) -> Option<&KeyFilter> {
        self.filter.get()
    }

    /// Counts a search that found nothing in a run of `entries` entries that has no filter yet;
    /// `true` when the caller should build it now (once).
    pub(crate) fn probe(&self, entries: u64) -> bool {
        let n = self.probes.fetch_add(1, Ordering::Relaxed) + 1;
        n == (entries / ENTRIES_PER_PROBE).max(64)
    }

    /// Sets the filter (a second setter's is dropped: both hold the same keys).
    pub(crate) fn set(&self, filter: KeyFilter) {
        let _ = self.filter.set(filter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_holds_every_key_and_few_others() {
        let keys: Vec<Vec<u8>> = (0u64..20_000)
            .map(|i| {
                let mut k = vec![3];
                k.extend_from_slice(&i.to_be_bytes());
                k
            })
            .collect();
        let filter = KeyFilter::of(keys.len(), keys.iter().map(Vec::as_slice));
        assert!(keys.iter().all(|k| filter.may_contain(k)));
        let others = (20_000u64..120_000)
            .filter(|i| {
                let mut k = vec![3];
                k.extend_from_slice(&i.to_be_bytes());
                filter.may_contain(&k)
            })
            .count();
        // About 1% expected; 3% would mean the hashing lost its spread.
        assert!(others < 3_000, "{others} of 100,000 absent keys pass");
    }

    #[test]
    fn an_empty_filter_holds_nothing_and_a_lazy_one_asks_once() {
        let filter = KeyFilter::of(0, std::iter::empty());
        assert!(!filter.may_contain(b"\x01doc"));
        let lazy = LazyFilter::default();
        let asked = (0..1000).filter(|_| lazy.probe(16_000)).count();
        assert_eq!(asked, 1);
        assert!(lazy.get().is_none());
        lazy.set(KeyFilter::of(1, [&b"k"[..]]));
        assert!(lazy.get().unwrap().may_contain(b"k"));
    }
}
