//! The delta decoder and the snapshot decoder: a base, then a payload, split by the first byte.
//! Sealed payloads stop at their CRC, so the frame decoders are fuzzed through the format 2-4
//! entry points too, which have no CRC in front of them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let n = data.first().map_or(0, |b| usize::from(*b));
    let rest = data.get(1..).unwrap_or_default();
    let (base, payload) = rest.split_at(n.min(rest.len()));
    let _ = strata_diff::delta::apply(base, payload, 1 << 20);
    let _ = strata_diff::delta::decompress(payload, 1 << 20);
    let _ = strata_diff::delta::declared_len(payload);
    let mut out = Vec::new();
    let _ = strata_diff::delta::apply_checksummed_into(base, payload, 1 << 20, &mut out);
    let _ = strata_diff::delta::decompress_checksummed_into(payload, 1 << 20, &mut out);
});
