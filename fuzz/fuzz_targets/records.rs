//! Every on-disk record decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_storage::fuzzing::records(data));
