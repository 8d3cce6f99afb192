//! The RFC 6902 parser and applier: a patch and a document, split at the first newline.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (patch, doc) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let (Ok(patch), Ok(doc)) = (
        serde_json::from_slice::<serde_json::Value>(patch),
        serde_json::from_slice::<serde_json::Value>(doc),
    ) else {
        return;
    };
    if let Ok(ops) = strata_diff::json::parse_patch(&patch) {
        let _ = strata_diff::json::apply_patch(&doc, &ops);
    }
    if let Some(p) = patch.as_str() {
        let _ = strata_diff::json::parse_pointer(p);
    }
});
