//! Object encodings shared by the write paths and repack: a planned header with its payload,
//! and the policy's choice between a full snapshot and a delta.

use strata_core::{
    Codec, ContentHash, Encoding, ObjectHeader, ObjectKind, PolicyInput, SnapshotPolicy, VersionNo,
};
use strata_diff::delta;

use crate::kv::parts_for;

/// An object's encoding, ready to write.
pub(crate) struct Plan {
    pub(crate) header: ObjectHeader,
    pub(crate) payload: Vec<u8>,
}

/// A candidate delta base: its id and the chain facts a policy looks at.
#[derive(Clone, Copy)]
pub(crate) struct Base {
    pub(crate) hash: ContentHash,
    pub(crate) depth: u32,
    pub(crate) chain_cost: u64,
}

impl Base {
    /// Describes the object `hash` stored (or planned) with `header`.
    pub(crate) fn of(hash: ContentHash, header: &ObjectHeader) -> Self {
        Self {
            hash,
            depth: header.depth(),
            chain_cost: header.chain_cost(),
        }
    }
}

impl Plan {
    /// A full snapshot: zstd, or the raw bytes when compression does not shrink them.
    pub(crate) fn full(content: &[u8], level: i32) -> Self {
        let compressed = delta::compress(content, level);
        let (codec, payload) = if compressed.len() < content.len() {
            (Codec::Zstd, compressed)
        } else {
            (Codec::Raw, content.to_vec())
        };
        Self::new(content.len() as u64, ObjectKind::Full { codec }, payload)
    }

    /// A delta against `base`, with the depth and chain cost `input` gives it.
    pub(crate) fn delta(
        raw_len: u64,
        base: ContentHash,
        input: &PolicyInput,
        payload: Vec<u8>,
    ) -> Self {
        let kind = ObjectKind::Delta {
            base,
            codec: Codec::ZstdPatch,
            depth: input.delta_depth(),
            chain_cost: input.delta_chain_cost(),
        };
        Self::new(raw_len, kind, payload)
    }

    fn new(raw_len: u64, kind: ObjectKind, payload: Vec<u8>) -> Self {
        let header = ObjectHeader {
            raw_len,
            stored_len: payload.len() as u64,
            parts: parts_for(payload.len()),
            kind,
        };
        Self { header, payload }
    }
}

/// Returns the delta against `base` as a plan when `policy` accepts it for `version`, given the
/// content's `full` encoding; `None` when the full snapshot is to be kept.
pub(crate) fn accepted_delta(
    policy: &dyn SnapshotPolicy,
    version: VersionNo,
    full: &Plan,
    base: Base,
    delta: Vec<u8>,
) -> Option<Plan> {
    let input = PolicyInput {
        version,
        full_len: full.header.raw_len,
        full_stored_len: full.header.stored_len,
        base_depth: base.depth,
        base_chain_cost: base.chain_cost,
        delta_len: delta.len() as u64,
    };
    (policy.choose(&input) == Encoding::Delta)
        .then(|| Plan::delta(full.header.raw_len, base.hash, &input, delta))
}
