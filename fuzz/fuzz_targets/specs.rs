//! The parsers of what people type: version specs (`DOC@VERSION`, as every CLI command reads
//! them), times (RFC 3339 and dates) and document keys.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_storage::spec::{Target, parse_target};

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
    match parse_target(text) {
        // The key is everything before the last '@' (or the whole spec), and a key written
        // back with a trailing '@' reads as the same document's latest version.
        Ok((doc, target)) => {
            assert!(text.starts_with(doc.as_str()));
            if let Target::Tag(name) = &target {
                assert!(text.ends_with(name.as_str()));
            }
            let again = parse_target(&format!("{doc}@")).unwrap();
            assert_eq!(again.0, doc);
        }
        Err(e) => assert_eq!(e.to_string().lines().count(), 1, "{e}"),
    }
});
