//! The pack reader: index entry, bounds, id prefix, object record, payload.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_storage::fuzzing::pack(data));
