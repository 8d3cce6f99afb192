//! RFC 6902 conformance: the community `json-patch-tests` suite (`tests.json` and
//! `spec_tests.json` in `../shared/conformance/json-patch-tests/`). Every non-disabled case
//! must give the expected document, or an error where the suite expects one.

use std::path::PathBuf;

use serde_json::Value;
use strata_diff::json::{apply_patch, json_eq, parse_patch};

fn suite(name: &str) -> Option<Vec<Value>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/json-patch-tests")
        .join(name);
    let text = std::fs::read_to_string(&path).ok()?;
    match serde_json::from_str(&text).expect("the suite is valid JSON") {
        Value::Array(cases) => Some(cases),
        _ => panic!("{name} is not an array of cases"),
    }
}

fn run(name: &str) {
    let Some(cases) = suite(name) else {
        strata_tests::shared_missing(&format!("conformance suite {name}"));
        return;
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if case.get("disabled").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let (Some(doc), Some(patch)) = (case.get("doc"), case.get("patch")) else {
            continue;
        };
        let comment = case.get("comment").and_then(Value::as_str).unwrap_or("");
        let result = parse_patch(patch).and_then(|ops| apply_patch(doc, &ops));
        checked += 1;
        match (case.get("expected"), case.get("error"), &result) {
            (Some(want), _, Ok(got)) if json_eq(got, want) => {}
            (_, Some(_), Err(_)) => {}
            (None, None, Ok(_)) => {}
            _ => failures.push(format!(
                "case {i} ({comment}): got {result:?}, expected {:?} / error {:?}",
                case.get("expected"),
                case.get("error")
            )),
        }
        // Whatever happened, the input document was not modified (apply works on a copy).
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {checked} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 10, "{name}: only {checked} cases ran");
}

#[test]
fn json_patch_tests_main_suite() {
    run("tests.json");
}

#[test]
fn json_patch_tests_spec_suite() {
    run("spec_tests.json");
}
