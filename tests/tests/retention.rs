//! Retention: `prune` and the store option that applies it on every put, under every
//! policy, with forward and reverse deltas that must be re-based.

use strata_core::VersionNo;
use strata_storage::{At, DocId, PutOptions, Retention, StoreOptions};
use strata_tests::fixture::{TestStore, policies};

/// The version numbers a document's history holds.
fn kept(store: &strata_storage::Store, doc: &DocId) -> Vec<u64> {
    store
        .history(doc)
        .unwrap()
        .iter()
        .map(|r| r.version.get())
        .collect()
}

fn text(i: usize) -> Vec<u8> {
    // A growing document with a line changed now and then: deltas everywhere.
    (0..20 + i * 3)
        .map(|n| {
            if n % 7 == i % 7 {
                format!("line {n} edited at {i}\n")
            } else {
                format!("line {n}\n")
            }
        })
        .collect::<String>()
        .into_bytes()
}

#[test]
fn the_retention_option_keeps_the_newest_versions_under_every_policy() {
    for policy in policies() {
        let mut ts =
            TestStore::new(policy.apply(StoreOptions::default().retention(Retention::KeepLast(3))));
        let (a, b) = (DocId::new("a").unwrap(), DocId::new("b").unwrap());
        for i in 0..12 {
            ts.store().put(&a, &text(i)).unwrap();
            if i == 4 {
                // A tagged version is spared, with every version after it.
                ts.store().tag(&a, VersionNo(5), "kept", false).unwrap();
            }
            if i % 3 == 0 {
                let mut batch = ts.store().batch();
                batch
                    .put(&b, &text(100 + i), PutOptions::default())
                    .unwrap();
                batch
                    .put(&b, &text(200 + i), PutOptions::default())
                    .unwrap();
                batch.commit().unwrap();
            }
            let kept = kept(ts.store(), &a);
            // The newest 3 (from i - 1), but never past the tagged version 5 once tagged.
            let newest3 = (i as u64).saturating_sub(1).max(1);
            let lo = if i >= 4 { newest3.min(5) } else { newest3 };
            let want: Vec<u64> = (lo..=i as u64 + 1).collect();
            assert_eq!(kept, want, "{policy:?} after put {i}");
        }
        ts.store().untag(&a, "kept").unwrap();
        ts.store().put(&a, &text(12)).unwrap();
        ts.reopen();
        let s = ts.store();
        assert_eq!(kept(s, &a), [11, 12, 13], "{policy:?}");
        for v in 11..=13u64 {
            assert_eq!(
                s.get(&a, At::Version(VersionNo(v))).unwrap().unwrap(),
                text(v as usize - 1)
            );
        }
        assert_eq!(s.history(&b).unwrap().len(), 3, "{policy:?}");
        assert_eq!(s.get(&b, At::Latest).unwrap().unwrap(), text(209));
        let report = s.verify().unwrap();
        assert!(
            report.is_clean() && report.unreferenced_objects == 0,
            "{policy:?}: {:?}",
            report.problems
        );
        // The feed holds exactly the kept versions, in write order.
        let feed: Vec<(String, u64)> = s
            .feed(1)
            .map(|e| e.map(|e| (e.doc.to_string(), e.record.version.get())))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(feed.len(), 6, "{policy:?}: {feed:?}");
    }
}

#[test]
fn shared_contents_survive_pruning_another_document() {
    // Two documents share a content (same object); pruning one keeps it for the other.
    let ts = TestStore::new(StoreOptions::default());
    let (a, b) = (DocId::new("a").unwrap(), DocId::new("b").unwrap());
    ts.store().put(&a, &text(1)).unwrap();
    ts.store().put(&b, &text(1)).unwrap();
    ts.store().put(&a, &text(2)).unwrap();
    let report = ts.store().prune(&a, Retention::KeepLast(1), false).unwrap();
    assert_eq!(report.versions, 1);
    assert_eq!(ts.store().get(&b, At::Latest).unwrap().unwrap(), text(1));
    assert!(ts.store().verify().unwrap().is_clean());
}

#[test]
fn the_retention_rule_is_recorded_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let doc = DocId::new("d").unwrap();
    {
        let store = strata_storage::Store::open_with(
            &path,
            StoreOptions::default().retention(Retention::KeepLast(2)),
        )
        .unwrap();
        store.put(&doc, b"1").unwrap();
    }
    // Opened without a rule: the recorded one applies.
    let store = strata_storage::Store::open(&path).unwrap();
    assert_eq!(store.retention(), Some(Retention::KeepLast(2)));
    for i in 2..=4 {
        store.put(&doc, format!("{i}").as_bytes()).unwrap();
    }
    assert_eq!(kept(&store, &doc), [3, 4]);
    store.set_retention(None).unwrap();
    store.put(&doc, b"5").unwrap();
    assert_eq!(store.history(&doc).unwrap().len(), 3);
    drop(store);
    assert_eq!(
        strata_storage::Store::open(&path).unwrap().retention(),
        None
    );
}
