//! Record-run directories and blocks, and lookups in them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_storage::fuzzing::runs(data));
