//! The parsers of what people type: times (RFC 3339 and dates) and document keys. (The CLI's
//! `DOC@VERSION` parser lives in the binary; its proptest is in cli/src/spec.rs.)
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ms) = strata_core::time::parse(text) {
        // A parsed time formats and parses back to the same second.
        let again = strata_core::time::parse(&strata_core::time::rfc3339(ms)).unwrap();
        assert_eq!(again / 1000, ms / 1000);
    }
    let _ = strata_core::DocId::new(text);
});
