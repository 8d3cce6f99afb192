//! `Store::put_each` (the server's group commit of single puts) against the same puts made
//! one by one with `Store::put_with`, under every policy: every put gets the same answer,
//! the two stores end with the same histories, and a reopened store reads every version back
//! byte-identical.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use strata_core::VersionNo;
use strata_storage::{At, DocId, PutOptions, StoreError, StoreOptions};
use strata_tests::fixture::{TestStore, policies};
use strata_tests::strategy::{Edit, apply_edit, edit};

/// The content limit of both stores: some generated puts are over it.
const LIMIT: u64 = 6_000;

/// What a generated put expects of its document's version.
#[derive(Clone, Debug)]
enum Expect {
    Nothing,
    /// The version the document is at when the put is made (one by one).
    Current,
    /// One behind it (a conflict, or a retry when the content matches).
    Stale,
    /// One ahead of it (a conflict, even when later puts of the group reach it).
    Ahead,
}

/// One put: document (of four), an edit of its current content, an expectation, and
/// whether the content is made larger than the limit.
type GenPut = (usize, Edit, Expect, bool);

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        3 => Just(Expect::Nothing),
        2 => Just(Expect::Current),
        1 => Just(Expect::Stale),
        1 => Just(Expect::Ahead),
    ]
}

fn groups() -> impl Strategy<Value = Vec<Vec<GenPut>>> {
    let put = (0usize..4, edit(), expect(), prop::bool::weighted(0.05));
    prop::collection::vec(prop::collection::vec(put, 1..12), 1..8)
}

/// What an answer says, for comparing the two ways: a record's version, id and feed
/// position, or the refusal.
fn outcome(r: &Result<strata_core::VersionRecord, StoreError>) -> String {
    match r {
        Ok(rec) => format!("ok v{} {} seq {}", rec.version.get(), rec.hash, rec.seq),
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => format!("conflict expecting {expected} at {actual}"),
        Err(StoreError::TooLarge { size, .. }) => format!("too large {size}"),
        Err(e) => format!("error {e}"),
    }
}

fn check(policy_index: usize, groups: &[Vec<GenPut>]) -> Result<(), TestCaseError> {
    let policy = &policies()[policy_index];
    let options = || policy.apply(StoreOptions::default().max_content_len(LIMIT));
    let mut grouped = TestStore::new(options());
    let alone = TestStore::new(options());
    let docs: Vec<DocId> = (0..4)
        .map(|i| DocId::new(format!("docs/{i}.txt")).unwrap())
        .collect();
    for group in groups {
        // Contents and expectations as the one-by-one store sees them when each put is made.
        let mut puts = Vec::new();
        for (d, e, x, big) in group {
            let doc = &docs[*d];
            let head = alone.store().record(doc, At::Latest).unwrap();
            let current = alone
                .store()
                .get(doc, At::Latest)
                .unwrap()
                .unwrap_or_default();
            let mut content = apply_edit(&current, e);
            if *big {
                content.resize(LIMIT as usize + 1, b'x');
            }
            let at = head.map_or(0, |r| r.version.get());
            let options = match x {
                Expect::Nothing => PutOptions::default(),
                Expect::Current => PutOptions::default().expect(VersionNo(at)),
                Expect::Stale if at > 0 => PutOptions::default().expect(VersionNo(at - 1)),
                Expect::Stale => PutOptions::default(),
                Expect::Ahead => PutOptions::default().expect(VersionNo(at + 1)),
            };
            let one = alone.store().put_with(doc, &content, options.clone());
            puts.push((doc.clone(), content, options, one));
        }
        let results = grouped
            .store()
            .put_each(
                puts.iter()
                    .map(|(doc, content, options, _)| (doc, &content[..], options.clone()))
                    .collect(),
            )
            .map_err(|e| TestCaseError::fail(format!("put_each failed: {e}")))?;
        prop_assert_eq!(results.len(), puts.len());
        for ((doc, _, options, one), got) in puts.iter().zip(&results) {
            prop_assert_eq!(
                outcome(got),
                outcome(one),
                "{} with {:?}, policy {:?}",
                doc,
                options.expected,
                policy
            );
        }
    }
    // Same histories, and every version reads back after a reopen.
    grouped.reopen();
    for doc in &docs {
        let a = grouped.store().history(doc).unwrap();
        let b = alone.store().history(doc).unwrap();
        let key = |r: &strata_core::VersionRecord| (r.version, r.hash, r.seq, r.size);
        prop_assert_eq!(
            a.iter().map(key).collect::<Vec<_>>(),
            b.iter().map(key).collect::<Vec<_>>()
        );
        for rec in &a {
            let got = grouped.store().get(doc, At::Version(rec.version)).unwrap();
            let want = alone.store().get(doc, At::Version(rec.version)).unwrap();
            prop_assert_eq!(got, want, "{}@{}", doc, rec.version.get());
        }
    }
    prop_assert!(grouped.store().verify().unwrap().is_clean());
    Ok(())
}

#[test]
fn put_each_answers_and_stores_as_puts_one_by_one_under_every_policy() {
    for index in 0..policies().len() {
        let mut runner = TestRunner::new(Config {
            cases: strata_tests::cases(12),
            ..Config::default()
        });
        runner
            .run(&groups(), |groups| check(index, &groups))
            .unwrap_or_else(|e| panic!("policy {:?}: {e}", policies()[index]));
    }
}

/// Two puts to one document in one group: the second expects the version the first made.
#[test]
fn a_group_sees_its_own_puts() {
    let ts = TestStore::new(StoreOptions::default());
    let doc = DocId::new("a").unwrap();
    let results = ts
        .store()
        .put_each(vec![
            (&doc, &b"one\n"[..], PutOptions::default().expect_new()),
            (
                &doc,
                &b"two\n"[..],
                PutOptions::default().expect(VersionNo(1)),
            ),
            (
                &doc,
                &b"three\n"[..],
                PutOptions::default().expect(VersionNo(1)),
            ),
        ])
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().version.get(), 1);
    assert_eq!(results[1].as_ref().unwrap().version.get(), 2);
    assert!(matches!(
        results[2],
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
    assert_eq!(
        ts.store().get(&doc, At::Latest).unwrap().unwrap(),
        b"two\n".to_vec()
    );
    assert!(ts.store().put_each(Vec::new()).unwrap().is_empty());
}
