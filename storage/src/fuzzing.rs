//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not part of the API):
//! each takes arbitrary bytes and must return without panicking.

/// Every on-disk record decoder, the version-page check and the object record splitter.
pub fn records(bytes: &[u8]) {
    crate::kv::fuzz_records(bytes);
}

/// The pack reader: index entry, bounds, id prefix, object record, then the payload decode.
pub fn pack(bytes: &[u8]) {
    crate::kv::fuzz_pack(bytes);
}

/// Record-run directories and blocks, and lookups in a block that parses.
pub fn runs(bytes: &[u8]) {
    crate::engine::lsm::fuzz_runs(bytes);
}
