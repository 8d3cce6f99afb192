//! A fast hasher for the store's internal maps, whose keys are blake3 ids (already uniform)
//! or small numbers the store made itself, never text an attacker chooses: SipHash's
//! protection against chosen keys buys nothing there, and hashing was 4% of reading a whole
//! history (callgrind). The mixing is FxHash's (rotate, xor, multiply by a large odd
//! constant), per 8 bytes.

use std::hash::{BuildHasherDefault, Hasher};

/// The hasher; see the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Inserts into a memo or cache of at most `limit` entries: a new key that finds it full
/// empties it first (the caches and memos of this crate start over rather than track use).
pub(crate) fn insert_bounded<K: std::hash::Hash + Eq, V>(
    map: &mut FastMap<K, V>,
    limit: usize,
    key: K,
    value: V,
) {
    if map.len() >= limit && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn a_bounded_insert_starts_over_only_for_a_new_key() {
        let mut map: FastMap<u32, u32> = FastMap::default();
        for i in 0..4 {
            insert_bounded(&mut map, 4, i, i);
        }
        insert_bounded(&mut map, 4, 2, 20);
        assert_eq!(
            (map.len(), map[&2]),
            (4, 20),
            "a known key replaces its value"
        );
        insert_bounded(&mut map, 4, 9, 9);
        assert_eq!(map.len(), 1, "a new key finds it full: it starts over");
        assert_eq!(map[&9], 9);
    }

    #[test]
    fn distinct_small_keys_hash_apart() {
        let b = BuildHasherDefault::<FastHasher>::default();
        let mut seen = std::collections::HashSet::new();
        for run in 0..64u64 {
            for block in 0..64usize {
                assert!(seen.insert(b.hash_one((run, block))), "({run}, {block})");
            }
        }
        let mut map: FastMap<[u8; 32], u32> = FastMap::default();
        for i in 0..1000u32 {
            let mut id = [0u8; 32];
            id[28..].copy_from_slice(&i.to_be_bytes());
            map.insert(id, i);
        }
        assert_eq!(map.len(), 1000);
        assert_eq!(
            map[&{
                let mut id = [0u8; 32];
                id[28..].copy_from_slice(&500u32.to_be_bytes());
                id
            }],
            500
        );
    }
}
