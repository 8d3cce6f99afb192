//! The packed layout under every policy: a bulk batch (packed whole), single puts past a fold
//! boundary (loose objects folded into a pack), a small batch, gc, a repack and reopens. After
//! each phase every version of every document reads back byte-identical against the model,
//! `verify` is clean, and the loose/packed split accounts for every object.

use strata_core::{DocId, Policy, VersionNo};
use strata_storage::{At, PutOptions, RepackOptions, Store, StoreOptions};
use strata_tests::fixture::{PolicyUnderTest, TestStore, policies};
use strata_tests::model::Model;

const DOCS: [&str; 3] = ["a.md", "b.json", "c.txt"];

/// Content `i` of document `d`: a text that grows and changes in place, so deltas apply.
fn content(d: usize, i: usize) -> Vec<u8> {
    let mut lines: Vec<String> = (0..40 + i % 30)
        .map(|l| format!("{} line {l} of document {d}: value {}", DOCS[d], l * 7 % 13))
        .collect();
    let at = i % lines.len();
    lines[at] = format!("changed at step {i}");
    if i.is_multiple_of(17) {
        lines.clear();
    }
    lines.join("\n").into_bytes()
}

fn check(store: &Store, model: &Model, phase: &str) {
    store.clear_cache();
    for (key, versions) in model.docs() {
        let doc = DocId::new(key).unwrap();
        for (i, want) in versions.iter().enumerate().rev() {
            let v = i as u64 + 1;
            let got = store
                .get(&doc, At::Version(VersionNo(v)))
                .unwrap_or_else(|e| panic!("{phase}: {key}@{v}: {e}"));
            assert_eq!(got.as_deref(), Some(want.as_slice()), "{phase}: {key}@{v}");
        }
    }
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{phase}: {:?}", report.problems);
    let stats = store.stats().unwrap();
    assert_eq!(
        stats.loose_objects + stats.packed_objects,
        stats.objects,
        "{phase}: {stats:?}"
    );
}

/// Commits `n` puts (round robin over the documents) as one batch, in the model too.
fn put_batch(store: &Store, model: &mut Model, ids: &[DocId], step: &mut usize, n: usize) {
    let mut batch = store.batch();
    for _ in 0..n {
        let d = *step % 3;
        let c = content(d, *step);
        batch.put(&ids[d], &c, PutOptions::default()).unwrap();
        model.put(DOCS[d], c);
        *step += 1;
    }
    batch.commit().unwrap();
}

fn run(policy: &PolicyUnderTest) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let options = policy.apply(StoreOptions::default());
    let mut store = Store::open_with(&path, options.clone()).unwrap();
    let mut model = Model::default();
    let mut step = 0;
    let ids: Vec<DocId> = DOCS.iter().map(|d| DocId::new(*d).unwrap()).collect();
    // A bulk batch: packed whole.
    put_batch(&store, &mut model, &ids, &mut step, 100);
    let stats = store.stats().unwrap();
    assert!(
        stats.packed_objects > 0,
        "{policy:?}: a bulk batch packs: {stats:?}"
    );
    check(&store, &model, "after a bulk batch");
    // Single puts past the fold at sequence number 256.
    for _ in 0..200 {
        let d = (step * 7) % 3;
        let c = content(d, step);
        store.put(&ids[d], &c).unwrap();
        model.put(DOCS[d], c);
        step += 1;
    }
    let stats = store.stats().unwrap();
    assert!(
        stats.packs >= 2,
        "{policy:?}: the fold made a second pack: {stats:?}"
    );
    check(&store, &model, "after single puts and a fold");
    drop(store);
    store = Store::open_with(&path, options.clone()).unwrap();
    check(&store, &model, "after a reopen");
    // A small batch, then gc.
    put_batch(&store, &mut model, &ids, &mut step, 10);
    store.gc().unwrap();
    check(&store, &model, "after a small batch and gc");
    // A repack (built-in policies: the store remembers them).
    if let PolicyUnderTest::Builtin(_) = policy {
        drop(store);
        Store::repack_at(&path, options.clone(), RepackOptions::default()).unwrap();
        let store = Store::open_with(&path, options).unwrap();
        check(&store, &model, "after a repack");
        let stats = store.stats().unwrap();
        assert_eq!(stats.dead_pack_bytes, 0, "a repack leaves no unused bytes");
    }
}

#[test]
fn every_policy_reads_back_through_packs_folds_gc_and_repack() {
    for policy in policies() {
        run(&policy);
    }
}

#[test]
fn a_put_after_an_import_leaves_the_old_head_unused_in_its_pack() {
    let ts = TestStore::new(StoreOptions::default().policy(Policy::Reverse { k: 4 }));
    let store = ts.store();
    let doc = DocId::new("d").unwrap();
    let mut batch = store.batch();
    for i in 0..70 {
        batch
            .put(&doc, &content(0, i), PutOptions::default())
            .unwrap();
    }
    batch.commit().unwrap();
    assert_eq!(store.stats().unwrap().dead_pack_bytes, 0);
    store.put(&doc, &content(0, 70)).unwrap();
    let stats = store.stats().unwrap();
    assert!(stats.dead_pack_bytes > 0, "{stats:?}");
    assert_eq!(
        store
            .get(&doc, At::Version(VersionNo(70)))
            .unwrap()
            .unwrap(),
        content(0, 69)
    );
}

/// Pseudo-random bytes (xorshift): content that does not compress, so its full snapshot is
/// larger than the 4 KiB above which an object is a pack of its own.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn blob_files(path: &std::path::Path) -> usize {
    std::fs::read_dir(path.join("blobs")).map_or(0, |d| d.count())
}

/// Under reverse deltas every put rewrites the previous newest version, a large full snapshot
/// in a pack of its own, as a small delta and drops that pack. The engine writes such a pack
/// as a file under `blobs/`; the patched sled removes the files no page points to when the
/// store opens, so rewritten snapshots do not pile up on disk.
#[test]
fn files_of_dropped_large_objects_are_removed_when_the_store_opens() {
    let mut ts = TestStore::new(StoreOptions::default().policy(Policy::Reverse { k: 4 }));
    let doc = DocId::new("big.bin").unwrap();
    let mut content = noise(7, 60_000);
    let mut model = Model::default();
    for i in 0..12u8 {
        content[usize::from(i) * 1000] = i;
        ts.store().put(&doc, &content).unwrap();
        model.put(doc.as_str(), content.clone());
    }
    let live_packs = ts.store().stats().unwrap().packs;
    ts.reopen();
    let files = blob_files(&ts.path());
    assert!(
        files as u64 <= live_packs,
        "{files} files under blobs/ for {live_packs} packs in use"
    );
    let stats = ts.store().stats().unwrap();
    assert!(
        stats.disk_bytes < 3 * stats.record_bytes,
        "disk {} for {} record bytes",
        stats.disk_bytes,
        stats.record_bytes
    );
    check(ts.store(), &model, "after reopen");
}
