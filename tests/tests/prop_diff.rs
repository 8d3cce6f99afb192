//! Properties of the pure diff layer on realistic documents.

use proptest::prelude::*;
use strata_diff::{DiffOptions, DocDiff, compare, delta, render};
use strata_tests::patch::apply_unified;
use strata_tests::strategy::{apply_edit, document, edit};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: strata_tests::cases(96),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_delta_roundtrip_on_edits(base in document(), edits in prop::collection::vec(edit(), 1..6)) {
        let mut target = base.clone();
        for e in &edits {
            target = apply_edit(&target, e);
        }
        let d = delta::encode(&base, &target, 3);
        prop_assert_eq!(delta::apply(&base, &d, target.len() as u64).unwrap(), target.clone());
        // The limit is enforced: one byte less is refused, never truncated.
        if !target.is_empty() {
            prop_assert!(delta::apply(&base, &d, target.len() as u64 - 1).is_err());
        }
    }

    #[test]
    fn prop_unified_diff_applies(base in document(), edits in prop::collection::vec(edit(), 1..6), context in 0u32..5) {
        let mut target = base.clone();
        for e in &edits {
            target = apply_edit(&target, e);
        }
        let diff = compare(&base, &target, &DiffOptions { context, json: false, ..DiffOptions::default() });
        match &diff {
            DocDiff::Same => prop_assert_eq!(&base, &target),
            // git's rule: binary only with a NUL in the first 8,000 bytes of a side.
            DocDiff::Binary(_) => prop_assert!(base.iter().take(8000).any(|&b| b == 0) || target.iter().take(8000).any(|&b| b == 0)),
            DocDiff::Json(_) => prop_assert!(false, "JSON mode was off"),
            DocDiff::Text(t) => {
                let rendered = render::unified_bytes(&diff, "a", "b", render::Style::default());
                let patched = apply_unified(&base, &rendered).map_err(TestCaseError::fail)?;
                prop_assert_eq!(patched, target.clone());
                let added = t.hunks.iter().flat_map(|h| &h.lines).filter(|l| l.kind == strata_diff::LineKind::Added).count() as u64;
                prop_assert_eq!(added, t.stat.insertions);
            }
        }
    }

    #[test]
    fn prop_diff_of_self_is_same(doc in document()) {
        prop_assert_eq!(compare(&doc, &doc, &DiffOptions::default()), DocDiff::Same);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_json_patch_of_any_two_values_applies(a in strata_tests::strategy::json_tree(), b in strata_tests::strategy::json_tree()) {
        let d = strata_diff::json::diff(&a, &b);
        prop_assert_eq!(strata_diff::json::apply_patch(&a, &d.patch).unwrap(), b.clone());
        prop_assert!(d.patch.len() <= strata_tests::strategy::naive_patch_len(&a, &b));
    }

    #[test]
    fn prop_json_patch_of_edited_documents_applies(a in strata_tests::strategy::json_tree(),
                                                   edits in prop::collection::vec(strata_tests::strategy::json_edit(), 1..5)) {
        let mut b = a.clone();
        for e in &edits {
            strata_tests::strategy::apply_json_edit(&mut b, e);
        }
        let d = strata_diff::json::diff(&a, &b);
        prop_assert_eq!(strata_diff::json::apply_patch(&a, &d.patch).unwrap(), b.clone());
        prop_assert!(d.patch.len() <= strata_tests::strategy::naive_patch_len(&a, &b),
            "patch {} ops, naive {}", d.patch.len(), strata_tests::strategy::naive_patch_len(&a, &b));
        // The patch survives a round trip through its RFC 6902 JSON form.
        let text = serde_json::to_value(&d.patch).unwrap();
        prop_assert_eq!(strata_diff::json::parse_patch(&text).unwrap(), d.patch);
    }
}
