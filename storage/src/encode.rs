//! Object encodings shared by the write paths and repack: a planned header with its payload,
//! and the policy's choice between a full snapshot and a delta.

use strata_core::{
    Codec, ContentHash, Encoding, ObjectHeader, ObjectKind, PolicyInput, SnapshotPolicy, VersionNo,
};
use strata_diff::delta;

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
    /// What a policy sees when asked to store a `raw_len`-byte content of `version` as a
    /// `delta_len`-byte delta on this base, its full snapshot taking `full_stored_len` bytes.
    pub(crate) fn input(
        &self,
        version: VersionNo,
        raw_len: u64,
        full_stored_len: u64,
        delta_len: u64,
    ) -> PolicyInput {
        PolicyInput {
            version,
            full_len: raw_len,
            full_stored_len,
            base_depth: self.depth,
            base_chain_cost: self.chain_cost,
            delta_len,
        }
    }

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
            (Codec::ZstdSealed, compressed)
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
            codec: Codec::ZstdPatchSealed,
            depth: input.delta_depth(),
            chain_cost: input.delta_chain_cost(),
        };
        Self::new(raw_len, kind, payload)
    }

    fn new(raw_len: u64, kind: ObjectKind, payload: Vec<u8>) -> Self {
        let header = ObjectHeader {
            raw_len,
            stored_len: payload.len() as u64,
            parts: 0,
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
    let input = base.input(
        version,
        full.header.raw_len,
        full.header.stored_len,
        delta.len() as u64,
    );
    (policy.choose(&input) == Encoding::Delta)
        .then(|| Plan::delta(full.header.raw_len, base.hash, &input, delta))
}

/// Decides deltas without compressing every content in full, when that is safe.
///
/// A policy weighs a delta against the content's compressed full size. Compressing every
/// content in full to learn it costs about as much as the delta and is almost always thrown
/// away, so this estimates the size from the last full snapshot compressed exactly (the
/// yardstick, scaled by length; one document's versions compress alike) and asks the policy
/// with three quarters of the estimate. A smaller full size only ever makes a built-in policy
/// accept fewer deltas, so a delta accepted on the estimate is one the exact rule accepts
/// unless the estimate is off by a third. When the estimate says "full", the caller
/// compresses the content and decides exactly ([`accepted_delta`]), and the yardstick learns
/// from it. Custom policies promise no such monotony and always get exact sizes.
#[derive(Debug)]
pub(crate) struct FullSizeEstimate {
    enabled: bool,
    yardstick: Option<(u64, u64)>,
}

impl FullSizeEstimate {
    /// A fresh estimate (for one document); `enabled` is `false` for custom policies.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            yardstick: None,
        }
    }

    /// Remembers a full snapshot compressed exactly.
    pub(crate) fn learn(&mut self, full: &Plan) {
        self.yardstick = Some((full.header.raw_len, full.header.stored_len));
    }

    /// The delta as a plan when the policy accepts it on the estimate; otherwise the delta
    /// back, for an exact decision.
    pub(crate) fn accept(
        &self,
        policy: &dyn SnapshotPolicy,
        version: VersionNo,
        raw_len: u64,
        base: Base,
        delta: Vec<u8>,
    ) -> Result<Plan, Vec<u8>> {
        let Some((ref_raw, ref_stored)) = self.yardstick.filter(|_| self.enabled) else {
            return Err(delta);
        };
        let estimate = u128::from(ref_stored) * u128::from(raw_len) / u128::from(ref_raw.max(1));
        let cautious = u64::try_from(estimate * 3 / 4).unwrap_or(u64::MAX);
        let input = base.input(version, raw_len, cautious, delta.len() as u64);
        if policy.choose(&input) == Encoding::Delta {
            Ok(Plan::delta(raw_len, base.hash, &input, delta))
        } else {
            Err(delta)
        }
    }
}

impl FullSizeEstimate {
    /// Plans the object for `content` of `version`: the smallest of the candidate `deltas`
    /// (each against its base) that the policy accepts, else the full snapshot. The content
    /// is compressed in full only when the estimate cannot accept any candidate.
    pub(crate) fn plan(
        &mut self,
        policy: &dyn SnapshotPolicy,
        version: VersionNo,
        content: &[u8],
        level: i32,
        mut deltas: Vec<(Base, Vec<u8>)>,
    ) -> Plan {
        let raw_len = content.len() as u64;
        deltas.sort_by_key(|(_, d)| d.len());
        let mut unsure = Vec::new();
        for (base, d) in deltas {
            match self.accept(policy, version, raw_len, base, d) {
                Ok(plan) => return plan,
                Err(d) => unsure.push((base, d)),
            }
        }
        let full = Plan::full(content, level);
        self.learn(&full);
        unsure
            .into_iter()
            .find_map(|(base, d)| accepted_delta(policy, version, &full, base, d))
            .unwrap_or(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::Policy;

    fn base(chain_cost: u64) -> Base {
        Base {
            hash: ContentHash::of(b"base"),
            depth: 1,
            chain_cost,
        }
    }

    #[test]
    fn estimate_needs_a_yardstick_and_an_enabled_policy() {
        let policy = Policy::Reverse { k: 4 };
        let full = Plan::full(&b"some text that compresses a little ".repeat(30), 3);
        let mut est = FullSizeEstimate::new(true);
        assert!(
            est.accept(&policy, VersionNo(2), 1000, base(10), vec![1; 5])
                .is_err()
        );
        est.learn(&full);
        assert!(
            est.accept(&policy, VersionNo(2), 1000, base(10), vec![1; 5])
                .is_ok()
        );
        let mut custom = FullSizeEstimate::new(false);
        custom.learn(&full);
        assert!(
            custom
                .accept(&policy, VersionNo(2), 1000, base(10), vec![1; 5])
                .is_err()
        );
    }

    #[test]
    fn a_delta_accepted_on_the_estimate_is_accepted_exactly() {
        // Whenever the cautious estimate accepts, the exact rule (with a full size at least
        // three quarters of the estimate) accepts too.
        let policy = Policy::Cost { k: 4 };
        let content = b"line one\nline two\nline three\n".repeat(40);
        let full = Plan::full(&content, 3);
        let mut est = FullSizeEstimate::new(true);
        est.learn(&full);
        for cost in [0, 10, 100, 200, 400, 800] {
            for len in [1usize, 20, 60, 120] {
                let d = vec![7u8; len];
                if est
                    .accept(
                        &policy,
                        VersionNo(3),
                        content.len() as u64,
                        base(cost),
                        d.clone(),
                    )
                    .is_ok()
                {
                    assert!(
                        accepted_delta(&policy, VersionNo(3), &full, base(cost), d).is_some(),
                        "cost {cost} len {len}"
                    );
                }
            }
        }
        // A delta the estimate is unsure of comes back for an exact decision.
        let big = vec![7u8; full.payload.len()];
        let back = est.accept(
            &policy,
            VersionNo(3),
            content.len() as u64,
            base(0),
            big.clone(),
        );
        assert!(matches!(back, Err(d) if d == big));
    }
}
