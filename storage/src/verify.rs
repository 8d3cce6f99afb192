//! Whole-store checks and accounting: `verify`, `stats`, `gc`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use strata_core::policy::MAX_CHAIN_DEPTH;
use strata_core::{ContentHash, ObjectKind, VersionNo};

use crate::error::StoreResult;
use crate::read::{ContentCache, Keeping, lock, rebuild};
use crate::store::Store;

/// What [`Store::verify`] checked and what it found wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Documents checked.
    pub documents: u64,
    /// Versions checked.
    pub versions: u64,
    /// Objects rebuilt and hash-checked.
    pub objects: u64,
    /// Objects that no version references (left by an interrupted write; `gc` removes them).
    pub unreferenced_objects: u64,
    /// Every problem found, one line each, naming the damaged item.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Returns `true` when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Sizes and counts of a store, from [`Store::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Documents.
    pub documents: u64,
    /// Versions over all documents.
    pub versions: u64,
    /// Stored objects (distinct contents).
    pub objects: u64,
    /// Objects stored as full snapshots.
    pub full_objects: u64,
    /// Objects stored as deltas.
    pub delta_objects: u64,
    /// Sum of all versions' sizes: what a store without dedupe or compression would hold.
    pub raw_bytes: u64,
    /// Sum of the distinct contents' sizes.
    pub unique_raw_bytes: u64,
    /// Payload bytes stored for all objects (compressed snapshots and deltas).
    pub stored_bytes: u64,
    /// The longest delta chain, measured by walking the chains.
    pub max_depth: u32,
    /// Bytes of every key and value strata keeps in the storage engine: the payload plus ids,
    /// object headers, version records and the feed. `disk_bytes` over this is the engine's
    /// own overhead (sled's log, garbage not yet reclaimed, node headers).
    pub record_bytes: u64,
    /// Bytes of every file under the store directory, engine overhead included (for a store
    /// kept in memory, the record bytes).
    pub disk_bytes: u64,
    /// Objects stored loose (written since the last fold, or each document's newest under a
    /// reverse policy).
    pub loose_objects: u64,
    /// Objects stored in packs.
    pub packed_objects: u64,
    /// Packs (each one value written once; large loose objects are packs of their own).
    pub packs: u64,
    /// Bytes of all packs.
    pub pack_bytes: u64,
    /// Bytes of packs that no object uses any more (rewritten or removed objects); `strata
    /// repack` reclaims them.
    pub dead_pack_bytes: u64,
}

impl Store {
    /// Re-reads every version and every object: rebuilds each delta chain, checks every blake3
    /// id, version numbering and sizes. Problems are collected, not returned as errors, so one
    /// damaged object does not hide another.
    ///
    /// # Errors
    /// Only engine errors that stop the walk itself.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{DocId, Store};
    ///
    /// let store = Store::open_temporary()?;
    /// store.put(&DocId::new("notes")?, b"one\n")?;
    /// let report = store.verify()?;
    /// assert!(report.is_clean(), "{:?}", report.problems);
    /// assert_eq!((report.documents, report.versions), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(&self) -> StoreResult<VerifyReport> {
        let kv = &self.inner.kv;
        let _read = self
            .inner
            .object_gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cache = Mutex::new(ContentCache::new(64 << 20));
        let limit = self.read_limit();
        let mut report = VerifyReport::default();
        // Each object verified so far, with its content's length.
        let mut verified: HashMap<ContentHash, u64> = HashMap::new();
        // Each object is read through its index entry: a walk to another version may have
        // cached its content after finding it in place, which would hide an index entry that
        // points elsewhere.
        let reread = |id: &ContentHash| {
            lock(&cache).forget(id);
            rebuild(kv, &cache, id, limit, false, Keeping::HISTORY)
        };
        let mut failed: HashSet<ContentHash> = HashSet::new();
        let docs = match kv.documents() {
            Ok(d) => d,
            Err(e) => {
                report.problems.push(format!("cannot list documents: {e}"));
                return Ok(report);
            }
        };
        let mut total_versions = 0u64;
        // Each document's first version (later than 1 when older ones were pruned).
        let mut first_kept: HashMap<u64, u64> = HashMap::new();
        for (num, key, head) in docs {
            report.documents += 1;
            match kv.doc_num(&key) {
                Ok(Some(n)) if n == num => {}
                Ok(found) => report.problems.push(format!(
                    "document '{key}': its name record points to {found:?}, not to document {num}; \
                     the document cannot be found by its name"
                )),
                Err(e) => report.problems.push(format!("document '{key}': {e}")),
            }
            let versions = match kv.versions(num) {
                Ok(v) => v,
                Err(e) => {
                    report.problems.push(format!("document '{key}': {e}"));
                    continue;
                }
            };
            total_versions += versions.len() as u64;
            first_kept.insert(num, versions.first().map_or(1, |r| r.version.get()));
            // Numbered on from the first version kept (1 unless older ones were pruned).
            let first = versions.first().map_or(1, |r| r.version.get());
            for (i, rec) in versions.iter().enumerate() {
                report.versions += 1;
                let expected = VersionNo(first + i as u64);
                if rec.version != expected {
                    report.problems.push(format!(
                        "document '{key}': version {} found where {expected} was expected",
                        rec.version
                    ));
                }
                if failed.contains(&rec.hash) {
                    report.problems.push(format!(
                        "{key}@{}: object {} is damaged",
                        rec.version, rec.hash
                    ));
                    continue;
                }
                // An object shared by several versions is read once.
                let len = match verified.get(&rec.hash) {
                    Some(len) => Ok(*len),
                    None => reread(&rec.hash).map(|content| {
                        report.objects += 1;
                        verified.insert(rec.hash, content.len() as u64);
                        content.len() as u64
                    }),
                };
                match len {
                    Ok(len) => {
                        if len != rec.size {
                            report.problems.push(format!(
                                "{key}@{}: record says {} bytes, content has {len}",
                                rec.version, rec.size
                            ));
                        }
                    }
                    Err(e) => {
                        failed.insert(rec.hash);
                        report.problems.push(format!("{key}@{}: {e}", rec.version));
                    }
                }
            }
            if versions.last().map(|r| r.version) != Some(head) {
                report.problems.push(format!(
                    "document '{key}': head says version {head}, history ends at {}",
                    versions.last().map_or(0, |r| r.version.get())
                ));
            }
        }
        match kv.packs() {
            Ok(packs) => {
                for pack in packs {
                    if let Err(e) = kv.check_pack_format(pack.number) {
                        report.problems.push(e.to_string());
                    }
                }
            }
            Err(e) => report.problems.push(format!("cannot list packs: {e}")),
        }
        for id in kv.object_ids() {
            let id = match id {
                Ok(id) => id,
                Err(e) => {
                    // The walk cannot go past a damaged part of the tree; what follows it
                    // is not checked, and the report says so.
                    report.problems.push(format!(
                        "objects tree: {e}; objects after this point were not checked"
                    ));
                    break;
                }
            };
            if verified.contains_key(&id) || failed.contains(&id) {
                continue;
            }
            report.unreferenced_objects += 1;
            match reread(&id) {
                Ok(_) => report.objects += 1,
                Err(e) => report
                    .problems
                    .push(format!("unreferenced object {id}: {e}")),
            }
        }
        // Entries of pruned versions stay in the feed's pages; the feed skips them.
        let live_entries = |feed: &[(u64, u64, VersionNo)]| {
            feed.iter()
                .filter(|(_, num, v)| first_kept.get(num).is_none_or(|f| v.get() >= *f))
                .count() as u64
        };
        match kv.feed(0, usize::MAX) {
            Ok(feed) if live_entries(&feed) != total_versions => report.problems.push(format!(
                "change feed has {} entries for {total_versions} versions",
                live_entries(&feed)
            )),
            Ok(_) => {}
            Err(e) => report.problems.push(format!("change feed: {e}")),
        }
        Ok(report)
    }

    /// Counts documents, versions and objects and measures stored and raw bytes.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn stats(&self) -> StoreResult<StoreStats> {
        let kv = &self.inner.kv;
        let mut s = StoreStats::default();
        for (num, _, _) in kv.documents()? {
            s.documents += 1;
            for rec in kv.versions(num)? {
                s.versions += 1;
                s.raw_bytes += rec.size;
            }
        }
        // Bases by object, to measure real chain depths: a header's own `depth` is the one at
        // write time, and reverse policies lengthen older chains afterwards.
        let mut bases: HashMap<ContentHash, Option<ContentHash>> = HashMap::new();
        for id in kv.object_ids() {
            let id = id?;
            let Some(h) = kv.object_header(&id)? else {
                continue;
            };
            s.objects += 1;
            s.unique_raw_bytes += h.raw_len;
            s.stored_bytes += h.stored_len;
            match h.kind {
                ObjectKind::Full { .. } => {
                    s.full_objects += 1;
                    bases.insert(id, None);
                }
                ObjectKind::Delta { base, .. } => {
                    s.delta_objects += 1;
                    bases.insert(id, Some(base));
                }
            }
        }
        let mut depths: HashMap<ContentHash, u32> = HashMap::new();
        for id in bases.keys() {
            let mut path = Vec::new();
            let mut cursor = *id;
            let mut depth = loop {
                if let Some(d) = depths.get(&cursor) {
                    break *d;
                }
                match bases.get(&cursor) {
                    Some(Some(base)) if path.len() <= MAX_CHAIN_DEPTH as usize => {
                        path.push(cursor);
                        cursor = *base;
                    }
                    // A full snapshot, a missing base (verify reports it) or a runaway chain.
                    _ => break 0,
                }
            };
            for node in path.into_iter().rev() {
                depth += 1;
                depths.insert(node, depth);
            }
            s.max_depth = s.max_depth.max(depth);
        }
        for pack in kv.packs()? {
            s.packs += 1;
            s.packed_objects += pack.objects;
            s.pack_bytes += pack.size;
            // Each pack starts with one format byte.
            s.dead_pack_bytes += pack.size.saturating_sub(pack.live_bytes + 1);
        }
        s.loose_objects = s.objects.saturating_sub(s.packed_objects);
        s.record_bytes = kv.record_bytes()?;
        // The store directory, a NATS stream's bytes, or in memory the records themselves.
        s.disk_bytes = kv.stored_bytes()?;
        Ok(s)
    }

    /// Removes objects that no version needs (neither directly nor as a delta base), such as
    /// those left by a put interrupted before its commit. Returns how many were removed.
    /// Waits for running puts and batches to finish, and holds new ones back while it runs.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn gc(&self) -> StoreResult<u64> {
        let _gate = self.maintenance()?;
        let kv = &self.inner.kv;
        let mut live: HashSet<ContentHash> = HashSet::new();
        let mut stack: Vec<ContentHash> = Vec::new();
        for (num, _, _) in kv.documents()? {
            stack.extend(kv.versions(num)?.into_iter().map(|r| r.hash));
        }
        while let Some(h) = stack.pop() {
            if !live.insert(h) {
                continue;
            }
            if let Some(header) = kv.object_header(&h)?
                && let ObjectKind::Delta { base, .. } = header.kind
            {
                stack.push(base);
            }
        }
        // Objects of puts in other processes that have not committed yet are spared, until
        // their marks are too old to be anything but a dead put's (`kv/lease.rs`).
        let now = crate::write::now_ms();
        let (fresh, expired): (Vec<_>, Vec<_>) = kv
            .pending_marks()?
            .into_iter()
            .partition(|(_, t)| now.saturating_sub(*t) < crate::kv::PENDING_MS);
        let spared: HashSet<ContentHash> = fresh.into_iter().map(|(h, _)| h).collect();
        let dead: Vec<ContentHash> = kv
            .object_ids()
            .filter(|id| {
                id.as_ref()
                    .map_or(true, |id| !live.contains(id) && !spared.contains(id))
            })
            .collect::<StoreResult<_>>()?;
        // A dead delta is removed before its (dead) base, so a gc cut short never leaves an
        // object whose base is gone: each dead object goes after every dead object that
        // depends on it (its depth within the dead set is larger).
        let dead_set: HashSet<ContentHash> = dead.iter().copied().collect();
        let mut base_of: HashMap<ContentHash, ContentHash> = HashMap::new();
        for id in &dead {
            if let Some(header) = kv.object_header(id)?
                && let ObjectKind::Delta { base, .. } = header.kind
                && dead_set.contains(&base)
            {
                base_of.insert(*id, base);
            }
        }
        for id in deletion_order(&dead, &base_of) {
            kv.delete_object(&id)?;
        }
        let expired: Vec<ContentHash> = expired.into_iter().map(|(h, _)| h).collect();
        kv.drop_pending_marks(&expired)?;
        // Packs no index entry names any more (left by an interrupted write or emptied by
        // rewrites) are dropped whole.
        for pack in kv.packs()? {
            if pack.objects == 0 {
                kv.drop_pack(pack.number)?;
            }
        }
        // The removals left tombstones over the record runs: merging them drops both.
        kv.settle_records()?;
        kv.flush()?;
        Ok(dead.len() as u64)
    }
}

/// Orders dead objects for deletion so that every delta goes before its base (`base_of` maps
/// a dead delta to its dead base): a gc cut short then leaves no object whose base is gone.
fn deletion_order(
    dead: &[ContentHash],
    base_of: &HashMap<ContentHash, ContentHash>,
) -> Vec<ContentHash> {
    // Depth within the dead set (0: no dead base), each computed once along its chain.
    let mut depths: HashMap<ContentHash, usize> = HashMap::new();
    for id in dead {
        let mut path = vec![*id];
        let mut known = 0;
        while let Some(b) = base_of.get(path.last().expect("the path is never empty")) {
            if let Some(d) = depths.get(b) {
                known = d + 1;
                break;
            }
            if path.len() > dead.len() {
                break; // a cycle among damaged objects: any order will do
            }
            path.push(*b);
        }
        for (i, node) in path.iter().rev().enumerate() {
            depths.entry(*node).or_insert(known + i);
        }
    }
    let mut order: Vec<ContentHash> = dead.to_vec();
    order.sort_by_key(|id| std::cmp::Reverse(depths[id]));
    order
}

/// Sums the sizes of every file under `path`.
pub(crate) fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// See: issue 14 (a `strata gc` killed mid-way left an unreferenced delta whose base it had
    /// already removed, and verify reported it as damage).
    #[test]
    fn dead_deltas_are_deleted_before_their_bases() {
        let h = |b: u8| ContentHash::from_bytes([b; 32]);
        let (a, b, c, d, e) = (h(1), h(2), h(3), h(4), h(5));
        // c -> b -> a (each a delta of the next), e -> a, d alone.
        let base_of: HashMap<_, _> = [(c, b), (b, a), (e, a)].into_iter().collect();
        for dead in [
            vec![a, b, c, d, e],
            vec![e, d, c, b, a],
            vec![b, d, a, e, c],
        ] {
            let order = deletion_order(&dead, &base_of);
            let pos = |x| order.iter().position(|y| *y == x).unwrap();
            assert_eq!(order.len(), 5);
            assert!(
                pos(c) < pos(b) && pos(b) < pos(a) && pos(e) < pos(a),
                "{order:?}"
            );
        }
    }
}
