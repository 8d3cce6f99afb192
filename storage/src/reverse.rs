//! The write path of reverse-delta policies (RCS, Fossil): the newest version of a document is
//! a full snapshot, each older one a delta against the next newer one.
//!
//! A batch's objects are encoded at commit, when the whole sequence is known, so each is written
//! once: first the newest (full), then older ones as deltas against objects already written,
//! then the document's previous head is rewritten as a delta against the batch's first new
//! version, and only then are the versions committed. A crash at any point leaves every
//! committed version readable (a rewritten head's base is written before it) and at most
//! unreferenced, complete objects.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use strata_core::policy::MAX_CHAIN_DEPTH;
use strata_core::{ContentHash, DocId, Encoding, ObjectHeader, ObjectKind, PolicyInput, VersionNo};

use crate::encode::{Base, FullSizeEstimate, Plan};
use crate::error::StoreResult;
use crate::fold::write_packs;
use crate::kv::Epoch;
use crate::read::{Keep, Shared, lock};
use crate::store::Store;
use crate::write::WriteBatch;

/// Batches of at least this many puts are bulk writes (imports): they pack every object.
pub(crate) const BULK_BATCH: usize = 64;

/// A put waiting for its object: the content's id and bytes.
type PendingContent = (ContentHash, Shared);

/// One position of a document's sequence: the stored head, then each put of the batch.
struct Slot {
    hash: ContentHash,
    version: VersionNo,
    content: Shared,
    /// `true` when this slot writes its object (a new object at its latest position).
    writes: bool,
}

impl WriteBatch<'_> {
    /// Encodes and writes the objects of every document touched by the batch.
    pub(crate) fn write_reverse(&self) -> StoreResult<()> {
        // The batch's puts grouped by document, in the order documents first appear.
        let mut groups: Vec<(&DocId, Vec<PendingContent>)> = Vec::new();
        for (doc, content, hash) in self.pending() {
            let put = (hash, Arc::clone(content));
            match groups.iter_mut().find(|(d, _)| *d == doc) {
                Some((_, puts)) => puts.push(put),
                None => groups.push((doc, vec![put])),
            }
        }
        let mut claimed: HashSet<ContentHash> = HashSet::new();
        let mut packed: Vec<(ContentHash, Plan)> = Vec::new();
        // A bulk batch (an import) packs the documents' newest versions too: a later put
        // leaves such a head's bytes unused in its pack (reported by `stats`, reclaimed by
        // `repack`), which costs less than keeping every head in sled entries.
        let pack_heads = self.len() >= BULK_BATCH;
        let mut rewrites = Vec::new();
        for (doc, puts) in &groups {
            let head = self.head_of(doc);
            let first =
                self.store
                    .write_reverse_doc(head, puts, &mut claimed, &mut packed, pack_heads)?;
            if let (Some(head), Some(first)) = (head, first) {
                rewrites.push((*doc, head, first));
            }
        }
        // Every object but the documents' newest goes into packs, before the previous heads
        // are rewritten against them (a base is always written before its delta).
        write_packs(&self.store.inner.kv, &packed)?;
        let epoch = self.epoch();
        for (doc, head, first) in rewrites {
            self.store.rewrite_head(doc, head, &first, epoch)?;
        }
        Ok(())
    }
}

impl Store {
    /// Plans the objects of one document's new versions (after `head`): the newest is written
    /// loose now (the next put rewrites it) unless `pack_heads`, the others are added to
    /// `packed`. Returns the first new slot, against which the previous head is rewritten once
    /// the packs are written.
    fn write_reverse_doc(
        &self,
        head: Option<VersionNo>,
        puts: &[PendingContent],
        claimed: &mut HashSet<ContentHash>,
        packed: &mut Vec<(ContentHash, Plan)>,
        pack_heads: bool,
    ) -> StoreResult<Option<FirstSlot>> {
        let kv = &self.inner.kv;
        let level = self.inner.options.level;
        let first_new = VersionNo(head.map_or(0, VersionNo::get) + 1);
        // Slots: the new versions; a new object is written at its latest position only, and
        // only once per batch (another document may have claimed it).
        let mut slots: Vec<Slot> = puts
            .iter()
            .enumerate()
            .map(|(i, (hash, content))| Slot {
                hash: *hash,
                version: VersionNo(first_new.get() + i as u64),
                content: Arc::clone(content),
                writes: false,
            })
            .collect();
        let mut later: HashSet<ContentHash> = HashSet::new();
        for slot in slots.iter_mut().rev() {
            if later.insert(slot.hash)
                && !claimed.contains(&slot.hash)
                && !kv.has_object(&slot.hash)?
            {
                slot.writes = true;
                claimed.insert(slot.hash);
            }
        }
        // Encode the deltas in parallel (pure work on contents), then decide newest to oldest,
        // so every delta's base is planned (and later written) first.
        let deltas = encode_deltas(&slots, &self.inner.options);
        let policy = &*self.inner.policy;
        let mut plans: HashMap<ContentHash, Plan> = HashMap::new();
        let mut estimate = FullSizeEstimate::new(self.inner.options.custom_policy.is_none());
        for (i, delta_bytes) in deltas.into_iter().enumerate().rev() {
            let slot = &slots[i];
            if !slot.writes {
                continue;
            }
            let base = match slots.get(i + 1) {
                Some(next) => match plans.get(&next.hash) {
                    Some(p) => Some(Base::of(next.hash, &p.header)),
                    None => kv
                        .object_header(&next.hash)?
                        .map(|h| Base::of(next.hash, &h)),
                },
                None => None,
            };
            let deltas = base.zip(delta_bytes).into_iter().collect();
            let plan = estimate.plan(policy, slot.version, &slot.content, level, deltas);
            plans.insert(slot.hash, plan);
        }
        // The newest version is written loose now; the others go into the batch's packs,
        // written in one piece (so a delta and its base appear together).
        let newest = slots.len() - 1;
        for (i, slot) in slots.iter().enumerate().rev().filter(|(_, s)| s.writes) {
            let plan = plans
                .remove(&slot.hash)
                .expect("every writing slot is planned");
            let depth = plan.header.depth();
            if i == newest && !pack_heads {
                kv.put_object(&slot.hash, &plan.header, &plan.payload)?;
            } else {
                packed.push((slot.hash, plan));
            }
            lock(&self.inner.cache).insert(
                slot.hash,
                Arc::clone(&slot.content),
                Keep::Probation,
                depth,
            );
        }
        Ok(slots.first().map(|s| FirstSlot {
            hash: s.hash,
            content: Arc::clone(&s.content),
        }))
    }

    /// Re-encodes the document's previous head (if it is a full snapshot) as a delta against
    /// the batch's first new version. The run of older deltas that already leads to the head
    /// counts against the policy's bound, so the oldest version of a run stays bounded.
    ///
    /// On a shared engine the rewrite expects the maintenance epoch `epoch` that the batch
    /// read: a `gc` in another process that began since may count the base as unreferenced
    /// (it is not committed yet), and must not find a committed head depending on it.
    fn rewrite_head(
        &self,
        doc: &DocId,
        head: VersionNo,
        first: &FirstSlot,
        epoch: Option<&Epoch>,
    ) -> StoreResult<()> {
        let kv = &self.inner.kv;
        let Some(rec) = self.version_record(doc, head)? else {
            return Ok(());
        };
        let p = rec.hash;
        if p == first.hash {
            return Ok(());
        }
        let Some(p_header) = kv.object_header(&p)? else {
            return Ok(());
        };
        let ObjectKind::Full { .. } = p_header.kind else {
            return Ok(());
        };
        let Some(base_header) = kv.object_header(&first.hash)? else {
            return Ok(());
        };
        // Another process may re-encode an object of the base's chain meanwhile (onto this
        // head, even): the rewrite expects every encoding that the chain check saw.
        let mut guard = Vec::new();
        if let Some(e) = epoch {
            guard.push(e.expectation());
        }
        if self.chain_contains(&first.hash, &p, &mut guard)? {
            return Ok(());
        }
        let run = self.run_below(doc, head, p)?;
        let content = self.read_object(&p)?;
        let level = self.inner.options.level;
        let d = self.inner.options.encode_delta(&first.content, &content);
        // The head itself now reads the base's chain and this delta.
        let own = Base::of(first.hash, &base_header).input(
            head,
            content.len() as u64,
            p_header.stored_len,
            d.len() as u64,
        );
        let policy = &*self.inner.policy;
        if policy.choose(&own) != Encoding::Delta {
            return Ok(());
        }
        // The oldest version of the run below reads the run as well, and is weighed against its
        // own compressed full size (computed once per batch and document): in a document that
        // grew since, it compresses to less than the head, and the head's size would let the
        // run grow past the bound. When the bound would be passed, the head stays full.
        // (Making a version inside the run full instead was measured: it stored less with
        // batches of 256 but far more with batches of 64, see BENCHMARKS.md.)
        if let Some(oldest) = run.last() {
            let oldest_content = self.read_object(&oldest.hash)?;
            let run_cost: u64 = run.iter().map(|m| m.stored_len).sum();
            let input = PolicyInput {
                version: oldest.version,
                full_len: oldest.size,
                full_stored_len: Plan::full(&oldest_content, level).header.stored_len,
                base_depth: own.delta_depth().saturating_add(run.len() as u32 - 1),
                base_chain_cost: own
                    .delta_chain_cost()
                    .saturating_add(run_cost - oldest.stored_len),
                delta_len: oldest.stored_len,
            };
            if policy.choose(&input) != Encoding::Delta {
                return Ok(());
            }
        }
        let plan = Plan::delta(content.len() as u64, first.hash, &own, d);
        let _rewrite = self
            .inner
            .object_gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kv.put_object_guarded(&p, &plan.header, &plan.payload, &guard)
            .map(|_| ())
    }

    /// Returns `true` when the delta chain from `start` passes through `target`; adds to
    /// `guard` the expectations that each object of the chain keeps its encoding
    /// ([`Kv::object_guard`](crate::kv::Kv::object_guard)).
    fn chain_contains(
        &self,
        start: &ContentHash,
        target: &ContentHash,
        guard: &mut Vec<crate::engine::Change>,
    ) -> StoreResult<bool> {
        let mut cursor = *start;
        for _ in 0..=MAX_CHAIN_DEPTH {
            if cursor == *target {
                return Ok(true);
            }
            guard.extend(self.inner.kv.object_guard(&cursor)?);
            match self.inner.kv.object_header(&cursor)?.map(|h| h.kind) {
                Some(ObjectKind::Delta { base, .. }) => cursor = base,
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The run of older versions stored as deltas that lead to the head's object `p` (each
    /// against the next version's object), newest first.
    fn run_below(&self, doc: &DocId, head: VersionNo, p: ContentHash) -> StoreResult<Vec<Member>> {
        let mut run = Vec::new();
        let mut next_hash = p;
        let mut v = head.get();
        while v > 1 && run.len() < MAX_CHAIN_DEPTH as usize {
            v -= 1;
            let Some(rec) = self.version_record(doc, VersionNo(v))? else {
                break;
            };
            match self.inner.kv.object_header(&rec.hash)? {
                Some(ObjectHeader {
                    kind: ObjectKind::Delta { base, .. },
                    stored_len,
                    ..
                }) if base == next_hash => {
                    run.push(Member {
                        hash: rec.hash,
                        version: rec.version,
                        size: rec.size,
                        stored_len,
                    });
                    next_hash = rec.hash;
                }
                _ => break,
            }
        }
        Ok(run)
    }
}

/// The first new version of a document in a batch: what its previous head is rewritten
/// against.
struct FirstSlot {
    hash: ContentHash,
    content: Shared,
}

/// One version of the run of deltas below a document's previous head.
struct Member {
    hash: ContentHash,
    version: VersionNo,
    size: u64,
    stored_len: u64,
}

/// For every slot that writes its object and has a newer slot after it: the delta against that
/// slot's content. Runs on up to two threads: the encodings are independent.
fn encode_deltas(slots: &[Slot], options: &crate::StoreOptions) -> Vec<Option<Vec<u8>>> {
    let encode = |i: usize| {
        let slot = &slots[i];
        if !slot.writes {
            return None;
        }
        slots
            .get(i + 1)
            .map(|next| options.encode_delta(&next.content, &slot.content))
    };
    // Asked once per process: the answer reads cgroup files (six system calls, which a
    // single put paid every time).
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    if slots.len() < 4
        || *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) < 2
    {
        return (0..slots.len()).map(encode).collect();
    }
    let mid = slots.len() / 2;
    std::thread::scope(|scope| {
        let back = scope.spawn(|| (mid..slots.len()).map(encode).collect::<Vec<_>>());
        let mut out: Vec<_> = (0..mid).map(encode).collect();
        // A panic in the encoder is a bug in our code or zstd's; propagate it as one.
        out.extend(back.join().expect("the encoding thread does not panic"));
        out
    })
}

#[cfg(test)]
mod tests {
    use crate::read::lock;
    use crate::{DocId, PutOptions, Store};

    /// Versions written in one reverse batch enter the read cache at their depths from the
    /// newest (a full snapshot), so that rebuilds starting from them keep the chain's real
    /// checkpoints.
    #[test]
    fn contents_written_enter_the_cache_at_their_depth() {
        let store = Store::open_temporary().unwrap();
        let doc = DocId::new("notes").unwrap();
        let body: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let mut batch = store.batch();
        for v in 0..5 {
            let content = format!("{body}edit {v}\n");
            batch
                .put(&doc, content.as_bytes(), PutOptions::default())
                .unwrap();
        }
        let records = batch.commit().unwrap();
        let cache = lock(&store.inner.cache);
        let depths: Vec<Option<u32>> = records.iter().map(|r| cache.depth_of(&r.hash)).collect();
        assert_eq!(depths, [Some(4), Some(3), Some(2), Some(1), Some(0)]);
    }
}
