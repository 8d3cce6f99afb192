//! Folding loose objects into packs (git's loose objects and auto-gc).
//!
//! Single puts and forward-policy batches write their objects loose: small ones as sled
//! entries, large ones as packs of their own. Loose entries cost sled 2-5x their size on disk,
//! so every [`FOLD_EVERY`] versions the store packs them: one new pack, the index pointed at
//! it, the loose entries removed. Under reverse policies each document's newest version stays
//! loose (the next put rewrites it as a delta, which would leave dead bytes in a pack).

use std::collections::HashSet;

use strata_core::{ContentHash, ObjectHeader, ObjectKind, VersionRecord};

use crate::encode::Plan;
use crate::error::StoreResult;
use crate::kv::Kv;
use crate::store::Store;

/// Packs are closed at this many bytes of payload (one sled value each, written once).
pub(crate) const PACK_TARGET: usize = 16 << 20;

/// Writes planned objects as packs of up to [`PACK_TARGET`] bytes, each delta followed by
/// its base when the base is among them ([`chain_order`]).
pub(crate) fn write_packs(kv: &Kv, plans: &[(ContentHash, Plan)]) -> StoreResult<()> {
    let order = chain_order(plans);
    let plans: Vec<&(ContentHash, Plan)> = order.iter().map(|&i| &plans[i]).collect();
    let mut start = 0;
    while start < plans.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < plans.len()
            && (end == start || bytes + plans[end].1.payload.len() <= PACK_TARGET)
        {
            bytes += plans[end].1.payload.len();
            end += 1;
        }
        let objects: Vec<(ContentHash, ObjectHeader, &[u8])> = plans[start..end]
            .iter()
            .map(|(h, p)| (*h, p.header, p.payload.as_slice()))
            .collect();
        kv.write_pack(&objects)?;
        start = end;
    }
    Ok(())
}

/// The order in which to write `plans`: walking each delta chain from the objects that are
/// no other's base, each object followed by its base while the base is among them and not yet
/// placed, so that a read walking a chain finds each base right after the delta it read
/// ([`Kv::object_after`](crate::kv::Kv::object_after) looks there before the index). Objects
/// keep their given order otherwise; every index appears once.
fn chain_order(plans: &[(ContentHash, Plan)]) -> Vec<usize> {
    use strata_core::ObjectKind;
    let at: crate::fasthash::FastMap<ContentHash, usize> = plans
        .iter()
        .enumerate()
        .map(|(i, (h, _))| (*h, i))
        .collect();
    let base_of = |i: usize| match plans[i].1.header.kind {
        ObjectKind::Delta { base, .. } => at.get(&base).copied(),
        ObjectKind::Full { .. } => None,
    };
    let mut is_base = vec![false; plans.len()];
    for i in 0..plans.len() {
        if let Some(b) = base_of(i) {
            is_base[b] = true;
        }
    }
    let mut placed = vec![false; plans.len()];
    let mut order = Vec::with_capacity(plans.len());
    // Chain heads first, then whatever is left (only objects on a loop of bases, which a
    // valid plan never has).
    let heads = (0..plans.len()).filter(|&i| !is_base[i]);
    for start in heads.chain(0..plans.len()) {
        let mut i = start;
        while !placed[i] {
            placed[i] = true;
            order.push(i);
            match base_of(i) {
                Some(b) => i = b,
                None => break,
            }
        }
    }
    order
}

/// A fold runs when a commit crosses a multiple of this many sequence numbers.
const FOLD_EVERY: u64 = 256;
/// Fewer loose objects than this are left loose (a pack per handful costs more than it saves).
const FOLD_MIN: usize = 16;

impl Store {
    /// Folds loose objects when `records` (a commit's new versions) crossed a fold boundary,
    /// or when `bulk` (a forward-policy batch, whose objects were all written loose).
    pub(crate) fn fold_if_due(&self, records: &[VersionRecord], bulk: bool) -> StoreResult<()> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let crossed = last.seq / FOLD_EVERY != first.seq.saturating_sub(1) / FOLD_EVERY;
        if crossed || bulk {
            self.fold_loose()?;
        }
        Ok(())
    }

    /// Packs every loose object except, under reverse policies, each document's newest
    /// version. Returns how many objects were packed. Holds back puts while it runs.
    pub(crate) fn fold_loose(&self) -> StoreResult<usize> {
        let _gate = self.maintenance()?;
        let _objects = self
            .inner
            .object_gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let kv = &self.inner.kv;
        // The loose objects first: usually few, and then the heads need not be looked up.
        let loose = kv.loose_objects()?;
        if loose.len() < FOLD_MIN {
            return Ok(0);
        }
        let mut plans: Vec<(ContentHash, Plan)> = Vec::with_capacity(loose.len());
        for (hash, _) in &loose {
            let Some(object) = kv.object(hash)? else {
                continue;
            };
            let header: ObjectHeader = object.header;
            let payload = kv.object_payload(hash, object)?.to_vec();
            plans.push((*hash, Plan { header, payload }));
        }
        // Under reverse policies a document's newest version is a full snapshot, so only a
        // loose full snapshot can be one: without any, no document's newest needs looking
        // up (a walk over every document, which made an import of 100,000 documents
        // quadratic: its loose objects are the deltas of heads rewritten across batches).
        // A newest version that is a delta (its content was stored as one already) is folded:
        // its next put then leaves a dead copy in the pack, as before; nothing is lost.
        let may_hold_heads = plans
            .iter()
            .any(|(_, p)| matches!(p.header.kind, ObjectKind::Full { .. }));
        if self.inner.policy.reverse() && may_hold_heads {
            let mut heads = HashSet::new();
            for (num, _, head) in kv.documents()? {
                if let Some(rec) = kv.version(num, head)? {
                    heads.insert(rec.hash);
                }
            }
            plans.retain(|(h, _)| !heads.contains(h));
        }
        if plans.len() < FOLD_MIN {
            return Ok(0);
        }
        // Bases first is not needed inside one pack: the pack and its index entries appear
        // together, and the loose copies stay readable until the index points at the pack.
        write_packs(kv, &plans)?;
        Ok(plans.len())
    }
}

#[cfg(test)]
mod tests {
    use strata_core::{Codec, ObjectKind};

    use super::*;

    fn plan(kind: ObjectKind) -> Plan {
        Plan {
            header: ObjectHeader {
                raw_len: 1,
                stored_len: 1,
                parts: 0,
                kind,
            },
            payload: vec![0],
        }
    }

    fn delta(base: u8) -> ObjectKind {
        ObjectKind::Delta {
            base: ContentHash::from_bytes([base; 32]),
            codec: Codec::ZstdPatchSealed,
            depth: 1,
            chain_cost: 1,
        }
    }

    /// Each delta is followed by its base while the base is in the batch and not placed yet;
    /// every object appears once.
    #[test]
    fn packs_place_each_base_after_its_delta() {
        let full = ObjectKind::Full {
            codec: Codec::ZstdSealed,
        };
        let id = |n: u8| ContentHash::from_bytes([n; 32]);
        // 4 -> 3 -> 2 -> 1 (full), 5 -> 3 (a second delta on 3), 6 -> 9 (base elsewhere),
        // 7 full and alone; given in the order a reverse import writes them.
        let plans = vec![
            (id(1), plan(full)),
            (id(2), plan(delta(1))),
            (id(3), plan(delta(2))),
            (id(7), plan(full)),
            (id(4), plan(delta(3))),
            (id(5), plan(delta(3))),
            (id(6), plan(delta(9))),
        ];
        let order: Vec<u8> = chain_order(&plans)
            .into_iter()
            .map(|i| plans[i].0.as_bytes()[0])
            .collect();
        assert_eq!(order, [7, 4, 3, 2, 1, 5, 6]);
        assert!(chain_order(&[]).is_empty());
    }
}
