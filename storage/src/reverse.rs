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
use strata_core::{
    Codec, ContentHash, DocId, Encoding, ObjectHeader, ObjectKind, PolicyInput, VersionNo,
};
use strata_diff::delta;

use crate::error::StoreResult;
use crate::kv::parts_for;
use crate::read::lock;
use crate::store::Store;
use crate::write::WriteBatch;

/// A put waiting for its object: the content's id and bytes.
type PendingContent = (ContentHash, Arc<[u8]>);

/// One position of a document's sequence: the stored head, then each put of the batch.
struct Slot {
    hash: ContentHash,
    version: VersionNo,
    content: Arc<[u8]>,
    /// `true` when this slot writes its object (a new object at its latest position).
    writes: bool,
}

/// The planned encoding of a slot's object.
struct Plan {
    header: ObjectHeader,
    payload: Vec<u8>,
}

impl WriteBatch<'_> {
    /// Encodes and writes the objects of every document touched by the batch.
    pub(crate) fn write_reverse(&self) -> StoreResult<()> {
        let mut order: Vec<&DocId> = Vec::new();
        let mut per_doc: HashMap<&DocId, Vec<PendingContent>> = HashMap::new();
        for p in self.pending() {
            let content = p.1.clone();
            per_doc.entry(p.0).or_insert_with(|| {
                order.push(p.0);
                Vec::new()
            });
            per_doc
                .get_mut(p.0)
                .expect("inserted above")
                .push((p.2, content));
        }
        let mut claimed: HashSet<ContentHash> = HashSet::new();
        for doc in order {
            let head = self.head_of(doc);
            self.store
                .write_reverse_doc(doc, head, &per_doc[doc], &mut claimed)?;
        }
        Ok(())
    }
}

impl Store {
    fn write_reverse_doc(
        &self,
        doc: &DocId,
        head: Option<VersionNo>,
        puts: &[PendingContent],
        claimed: &mut HashSet<ContentHash>,
    ) -> StoreResult<()> {
        let kv = &self.inner.kv;
        let level = self.inner.options.level;
        let first_new = VersionNo(head.map_or(0, VersionNo::get) + 1);
        // Slots: the new versions; a new object is written at its latest position only, and
        // only once per batch (another document may have claimed it).
        let mut slots: Vec<Slot> = Vec::with_capacity(puts.len());
        let mut later: HashSet<ContentHash> = HashSet::new();
        let mut writes = vec![false; puts.len()];
        for (i, (hash, _)) in puts.iter().enumerate().rev() {
            if later.insert(*hash) && !claimed.contains(hash) && kv.object_header(hash)?.is_none() {
                writes[i] = true;
                claimed.insert(*hash);
            }
        }
        for (i, (hash, content)) in puts.iter().enumerate() {
            slots.push(Slot {
                hash: *hash,
                version: VersionNo(first_new.get() + i as u64),
                content: Arc::clone(content),
                writes: writes[i],
            });
        }
        // Encode in parallel (pure work on contents), then decide newest to oldest, so every
        // delta's base is planned (and later written) first.
        let encoded = encode_slots(&slots, level);
        let mut plans: HashMap<ContentHash, Plan> = HashMap::new();
        for (i, enc) in encoded.into_iter().enumerate().rev() {
            let Some((full, delta_bytes)) = enc else {
                continue;
            };
            let plan = match (slots.get(i + 1), delta_bytes) {
                (Some(next), Some(d)) => {
                    let (base_depth, base_cost) = match plans.get(&next.hash) {
                        Some(p) => (p.header.depth(), p.header.chain_cost()),
                        None => kv
                            .object_header(&next.hash)?
                            .map_or((MAX_CHAIN_DEPTH, u64::MAX), |h| (h.depth(), h.chain_cost())),
                    };
                    self.choose_reverse(&slots[i], next, base_depth, base_cost, full, d)
                }
                _ => full,
            };
            plans.insert(slots[i].hash, plan);
        }
        // Write newest first: every base exists before the delta that names it.
        for slot in slots.iter().rev().filter(|s| s.writes) {
            let plan = &plans[&slot.hash];
            kv.put_object(&slot.hash, &plan.header, &plan.payload)?;
            lock(&self.inner.cache).insert(slot.hash, Arc::clone(&slot.content));
        }
        // Rewrite the previous head against the first new version, if that helps and is safe.
        if let (Some(head), Some(first)) = (head, slots.first()) {
            self.rewrite_head(doc, head, first)?;
        }
        Ok(())
    }

    /// Plans `slot` as a delta against `next` when the policy accepts it, else in full.
    fn choose_reverse(
        &self,
        slot: &Slot,
        next: &Slot,
        base_depth: u32,
        base_cost: u64,
        full: Plan,
        d: Vec<u8>,
    ) -> Plan {
        let input = PolicyInput {
            version: slot.version,
            full_len: slot.content.len() as u64,
            full_stored_len: full.payload.len() as u64,
            base_depth,
            base_chain_cost: base_cost,
            delta_len: d.len() as u64,
        };
        if base_cost == u64::MAX || self.inner.policy.choose(&input) != Encoding::Delta {
            return full;
        }
        delta_plan(slot.content.len(), next.hash, &input, d)
    }

    /// Re-encodes the document's previous head (if it is a full snapshot) as a delta against
    /// the batch's first new version. The run of older deltas that already leads to the head
    /// counts against the policy's bound, so the oldest version of a run stays bounded.
    fn rewrite_head(&self, doc: &DocId, head: VersionNo, first: &Slot) -> StoreResult<()> {
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
        if self.chain_contains(&first.hash, &p)? {
            return Ok(());
        }
        let (run_depth, run_cost) = self.run_below(doc, head, p)?;
        let content = self.read_object(&p)?;
        let d = delta::encode(&first.content, &content, self.inner.options.level);
        // The oldest version of the run reads the run, this delta and the base's chain.
        let input = PolicyInput {
            version: head,
            full_len: content.len() as u64,
            full_stored_len: p_header.stored_len,
            base_depth: base_header.depth().saturating_add(run_depth),
            base_chain_cost: base_header.chain_cost().saturating_add(run_cost),
            delta_len: d.len() as u64,
        };
        if self.inner.policy.choose(&input) != Encoding::Delta {
            return Ok(());
        }
        let own = PolicyInput {
            base_depth: base_header.depth(),
            base_chain_cost: base_header.chain_cost(),
            ..input
        };
        let plan = delta_plan(content.len(), first.hash, &own, d);
        let _rewrite = self
            .inner
            .object_gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kv.put_object(&p, &plan.header, &plan.payload)
    }

    /// Returns `true` when the delta chain from `start` passes through `target`.
    fn chain_contains(&self, start: &ContentHash, target: &ContentHash) -> StoreResult<bool> {
        let mut cursor = *start;
        for _ in 0..=MAX_CHAIN_DEPTH {
            if cursor == *target {
                return Ok(true);
            }
            match self.inner.kv.object_header(&cursor)?.map(|h| h.kind) {
                Some(ObjectKind::Delta { base, .. }) => cursor = base,
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Depth and payload bytes of the run of older versions stored as deltas that lead to the
    /// head's object `p` (each against the next version's object).
    fn run_below(&self, doc: &DocId, head: VersionNo, p: ContentHash) -> StoreResult<(u32, u64)> {
        let mut depth = 0u32;
        let mut cost = 0u64;
        let mut next_hash = p;
        let mut v = head.get();
        while v > 1 && depth < MAX_CHAIN_DEPTH {
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
                    depth += 1;
                    cost += stored_len;
                    next_hash = rec.hash;
                }
                _ => break,
            }
        }
        Ok((depth, cost))
    }
}

/// For every slot that writes its object: its full encoding and, when a newer slot follows, the
/// delta against that slot's content. Runs on up to two threads: the encodings are independent.
fn encode_slots(slots: &[Slot], level: i32) -> Vec<Option<(Plan, Option<Vec<u8>>)>> {
    let encode = |i: usize| {
        let slot = &slots[i];
        slot.writes.then(|| {
            let full = full_plan(&slot.content, level);
            let d = slots
                .get(i + 1)
                .map(|next| delta::encode(&next.content, &slot.content, level));
            (full, d)
        })
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    if threads < 2 || slots.len() < 4 {
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

fn full_plan(content: &[u8], level: i32) -> Plan {
    let (codec, payload) = crate::write::encode_full(content, level);
    Plan {
        header: ObjectHeader {
            raw_len: content.len() as u64,
            stored_len: payload.len() as u64,
            parts: parts_for(payload.len()),
            kind: ObjectKind::Full { codec },
        },
        payload,
    }
}

fn delta_plan(raw_len: usize, base: ContentHash, input: &PolicyInput, payload: Vec<u8>) -> Plan {
    Plan {
        header: ObjectHeader {
            raw_len: raw_len as u64,
            stored_len: payload.len() as u64,
            parts: parts_for(payload.len()),
            kind: ObjectKind::Delta {
                base,
                codec: Codec::ZstdPatch,
                depth: input.delta_depth(),
                chain_cost: input.delta_chain_cost(),
            },
        },
        payload,
    }
}
