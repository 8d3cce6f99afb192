//! Named edge cases and damage tests. Each shrunk proptest failure is copied here with a
//! postmortem comment.

use strata_core::{ContentHash, DocId, Policy, VersionNo};
use strata_storage::{At, OpenError, PutOptions, Store, StoreError, StoreOptions};

fn doc(k: &str) -> DocId {
    DocId::new(k).unwrap()
}

#[test]
fn put_same_content_is_a_new_version_sharing_one_object() {
    let store = Store::open_temporary().unwrap();
    let a = store.put(&doc("a"), b"same\n").unwrap();
    let b = store.put(&doc("a"), b"same\n").unwrap();
    let c = store.put(&doc("other"), b"same\n").unwrap();
    assert_eq!(
        (a.version.get(), b.version.get(), c.version.get()),
        (1, 2, 1)
    );
    assert_eq!(a.hash, c.hash);
    assert_eq!(store.stats().unwrap().objects, 1);
}

#[test]
fn empty_and_binary_contents_roundtrip() {
    let store = Store::open_temporary().unwrap();
    let d = doc("bin");
    let bin: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    for c in [&b""[..], &bin[..], &[0xff, 0xfe, 0x00][..], &b""[..]] {
        store.put(&d, c).unwrap();
    }
    assert_eq!(
        store.get(&d, At::Version(VersionNo(2))).unwrap().unwrap(),
        bin
    );
    assert_eq!(store.get(&d, At::Latest).unwrap().unwrap(), b"");
    assert_eq!(
        store.get(&d, At::Back(1)).unwrap().unwrap(),
        [0xff, 0xfe, 0x00]
    );
    assert_eq!(store.get(&d, At::Version(VersionNo(5))).unwrap(), None);
    assert_eq!(store.get(&doc("nope"), At::Latest).unwrap(), None);
    assert!(store.history(&doc("nope")).unwrap().is_empty());
}

#[test]
fn large_contents_are_split_and_rebuilt_across_chunks() {
    let store =
        Store::open_temporary_with(StoreOptions::default().policy(Policy::Chain { max_depth: 10 }))
            .unwrap();
    let d = doc("big");
    // Incompressible, so payloads span several 32 KiB chunks.
    let mut x: u64 = 1;
    let big: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    store.put(&d, &big).unwrap();
    let mut edited = big.clone();
    edited[150_000] ^= 1;
    store.put(&d, &edited).unwrap();
    store.clear_cache();
    assert_eq!(
        store.get(&d, At::Version(VersionNo(1))).unwrap().unwrap(),
        big
    );
    assert_eq!(store.get(&d, At::Latest).unwrap().unwrap(), edited);
    let s = store.stats().unwrap();
    assert_eq!(s.delta_objects, 1, "a one-byte edit is stored as a delta");
}

#[test]
fn limits_give_clear_errors_and_write_nothing() {
    let store = Store::open_temporary_with(StoreOptions::default().max_content_len(100)).unwrap();
    let err = store.put(&doc("a"), &[b'x'; 101]).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                size: 101,
                limit: 100,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("over the limit"), "{err}");
    let meta = PutOptions::default().message("m".repeat(5_000));
    assert!(matches!(
        store.put_with(&doc("a"), b"x", meta),
        Err(StoreError::MetadataTooLarge { .. })
    ));
    assert!(store.history(&doc("a")).unwrap().is_empty());
    assert_eq!(store.stats().unwrap().objects, 0);
    assert!(DocId::new("").is_err());
    assert!(DocId::new("k".repeat(1025)).is_err());
}

#[test]
fn conflicting_put_names_both_versions_and_writes_nothing() {
    let store = Store::open_temporary().unwrap();
    let d = doc("c");
    store
        .put_with(&d, b"1", PutOptions::default().expect_new())
        .unwrap();
    store
        .put_with(&d, b"2", PutOptions::default().expect(VersionNo(1)))
        .unwrap();
    let err = store
        .put_with(&d, b"3", PutOptions::default().expect(VersionNo(1)))
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        }
    ));
    assert!(
        err.to_string().contains("version 1") && err.to_string().contains("version 2"),
        "{err}"
    );
    assert_eq!(store.history(&d).unwrap().len(), 2);
    assert!(
        store.get_object(&ContentHash::of(b"3")).unwrap().is_none(),
        "no object was written"
    );
}

#[test]
fn policy_is_remembered_by_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s");
    drop(Store::open_with(&p, StoreOptions::default().policy(Policy::Skip)).unwrap());
    assert_eq!(Store::open(&p).unwrap().policy_name(), "skip");
    drop(Store::open_with(&p, StoreOptions::default().policy(Policy::Every { n: 5 })).unwrap());
    assert_eq!(Store::open(&p).unwrap().policy_name(), "every:5");
}

#[test]
fn changes_feed_lists_every_write_in_order() {
    let store = Store::open_temporary().unwrap();
    store.put(&doc("x"), b"1").unwrap();
    store.put(&doc("y"), b"1").unwrap();
    store.put(&doc("x"), b"2").unwrap();
    let feed = store.changes(1, 10).unwrap();
    let got: Vec<_> = feed
        .iter()
        .map(|c| (c.seq, c.doc.as_str().to_owned(), c.version.get()))
        .collect();
    assert_eq!(
        got,
        [(1, "x".into(), 1), (2, "y".into(), 1), (3, "x".into(), 2)]
    );
    assert_eq!(store.changes(3, 10).unwrap().len(), 1);
    let docs: Vec<_> = store
        .documents()
        .unwrap()
        .into_iter()
        .map(|d| (d.doc.to_string(), d.latest.get()))
        .collect();
    assert_eq!(docs, [("x".into(), 2), ("y".into(), 1)]);
}

/// Opens the raw engine of a closed store.
fn raw_db(path: &std::path::Path) -> sled::Db {
    strata_tests::fixture::raw_engine(path)
}

/// Opens the raw engine under a closed store, for damage tests.
fn with_raw_objects(path: &std::path::Path, f: impl FnOnce(&sled::Tree)) {
    let db = raw_db(path);
    f(&db.open_tree("objects").unwrap());
    db.flush().unwrap();
}

/// Rewrites the stored value (part 0: header and inline payload) of the loose object `id`
/// in the closed store at `path`.
fn edit_loose_object(path: &std::path::Path, id: &ContentHash, edit: impl FnOnce(&mut Vec<u8>)) {
    with_raw_objects(path, |objects| {
        let mut key = id.as_bytes().to_vec();
        key.extend_from_slice(&0u32.to_be_bytes());
        let mut value = objects.get(&key).unwrap().unwrap().to_vec();
        edit(&mut value);
        objects.insert(key, value).unwrap();
    });
}

/// Writes `n` versions of `d`, each a line longer, as a forward delta chain in a new store at
/// `path` (closed again); returns their ids.
fn growing_chain(path: &std::path::Path, d: &DocId, n: usize) -> Vec<ContentHash> {
    let store = Store::open_with(
        path,
        StoreOptions::default().policy(Policy::Chain { max_depth: 50 }),
    )
    .unwrap();
    let mut text = String::new();
    (0..n)
        .map(|i| {
            text.push_str(&format!("line {i} of a document that grows\n"));
            store.put(d, text.as_bytes()).unwrap().hash
        })
        .collect()
}

#[test]
fn damaged_objects_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let d = doc("chain");
    let hashes = growing_chain(&path, &d, 10);
    // Flip the last byte of version 5's object: small payloads are stored inline after the
    // header in part 0, so this damages the payload.
    edit_loose_object(&path, &hashes[4], |v| {
        let last = v.len() - 1;
        v[last] ^= 0x55;
    });
    {
        let store = Store::open(&path).unwrap();
        let err = store.get(&d, At::Version(VersionNo(5))).unwrap_err();
        assert!(err.is_corruption(), "{err}");
        // Later versions build on it: they fail too, never return wrong bytes.
        assert!(
            store
                .get(&d, At::Version(VersionNo(7)))
                .unwrap_err()
                .is_corruption()
        );
        assert_eq!(
            store
                .get(&d, At::Version(VersionNo(3)))
                .unwrap()
                .unwrap()
                .len() as u64,
            store.history(&d).unwrap()[2].size
        );
        let report = store.verify().unwrap();
        assert!(!report.is_clean());
        assert!(
            report.problems.iter().any(|p| p.contains("chain@5")),
            "{:?}",
            report.problems
        );
    }
    // Remove the object of version 2 entirely: its dependants name the missing base.
    with_raw_objects(&path, |objects| {
        let keys: Vec<_> = objects
            .scan_prefix(hashes[1].as_bytes())
            .keys()
            .map(Result::unwrap)
            .collect();
        for k in keys {
            objects.remove(k).unwrap();
        }
    });
    let store = Store::open(&path).unwrap();
    let err = store.get(&d, At::Version(VersionNo(3))).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

/// A delta chain that loops (version 3's object made a delta of version 4's, which is a delta
/// of version 3's) is corruption naming the object, found within two laps of the loop; the versions
/// before the loop still read.
#[test]
fn a_delta_chain_that_loops_is_corrupt_and_earlier_versions_read() {
    use strata_core::codec::{decode_record_prefix, encode_record};
    use strata_core::{ObjectHeader, ObjectKind};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let d = doc("loop");
    let hashes = growing_chain(&path, &d, 5);
    edit_loose_object(&path, &hashes[2], |value| {
        let (mut header, payload) = decode_record_prefix::<ObjectHeader>(value).unwrap();
        let ObjectKind::Delta { base, .. } = &mut header.kind else {
            panic!("version 3 should be stored as a delta: {header:?}");
        };
        *base = hashes[3];
        let mut changed = encode_record(&header);
        changed.extend_from_slice(payload);
        *value = changed;
    });
    let store = Store::open(&path).unwrap();
    for v in [3, 4, 5] {
        let err = store.get(&d, At::Version(VersionNo(v))).unwrap_err();
        assert!(err.is_corruption(), "version {v}: {err}");
        assert!(err.to_string().contains("loops"), "version {v}: {err}");
    }
    for v in [1, 2] {
        let got = store.get(&d, At::Version(VersionNo(v))).unwrap().unwrap();
        assert_eq!(ContentHash::of(&got), hashes[v as usize - 1]);
    }
    assert!(!store.verify().unwrap().is_clean());
}

#[test]
fn a_store_of_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    drop(Store::open(&path).unwrap());
    {
        let db = raw_db(&path);
        db.open_tree("meta")
            .unwrap()
            .insert("format", &[1u8, 99][..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, OpenError::UnsupportedFormat { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn opening_a_non_store_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, OpenError::NotAStore { .. }), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("notes.txt")).unwrap(),
        b"mine"
    );
    let missing = Store::open_with(
        dir.path().join("none"),
        StoreOptions::default().create(false),
    )
    .unwrap_err();
    assert!(matches!(missing, OpenError::Missing { .. }));
}

#[test]
fn gc_removes_only_unreferenced_objects() {
    // Forward policies write objects as puts are added, so a dropped batch leaves one behind.
    let store =
        Store::open_temporary_with(StoreOptions::default().policy(Policy::Cost { k: 4 })).unwrap();
    let d = doc("g");
    store.put(&d, b"one\n").unwrap();
    store.put(&d, b"one\ntwo\n").unwrap();
    {
        // A batch dropped before commit leaves its object behind.
        let mut batch = store.batch();
        batch
            .put(&d, b"orphan content\n", PutOptions::default())
            .unwrap();
    }
    assert_eq!(store.verify().unwrap().unreferenced_objects, 1);
    assert_eq!(store.gc().unwrap(), 1);
    let report = store.verify().unwrap();
    assert!(report.is_clean() && report.unreferenced_objects == 0);
    assert_eq!(store.get(&d, At::Latest).unwrap().unwrap(), b"one\ntwo\n");
}

#[test]
fn repack_keeps_every_version_id_and_feed_entry() {
    use strata_storage::RepackOptions;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let mut expected = Vec::new();
    {
        let store = Store::open_with(&path, StoreOptions::default().policy(Policy::Full)).unwrap();
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&format!("line {i}: some repeated prose about versions\n"));
            let d = doc(if i % 3 == 0 { "x" } else { "y" });
            let rec = store
                .put_with(
                    &d,
                    text.as_bytes(),
                    PutOptions::default().message(format!("m{i}")),
                )
                .unwrap();
            expected.push((d, rec, text.clone()));
        }
        let mut batch = store.batch();
        batch
            .put(&doc("x"), b"orphan", PutOptions::default())
            .unwrap();
        drop(batch);
    }
    let options = RepackOptions {
        policy: Some(Policy::Chain { max_depth: 8 }),
        level: 5,
        window: 3,
    };
    let report = Store::repack_at(&path, StoreOptions::default(), options).unwrap();
    assert_eq!(report.dropped, 1, "the unreferenced object is not copied");
    assert!(
        report.deltas > 0 && report.stored_after < report.stored_before,
        "{report:?}"
    );
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.policy_name(),
        "chain:8",
        "the repack policy is recorded"
    );
    for (d, rec, text) in &expected {
        assert_eq!(
            store.get(d, At::Version(rec.version)).unwrap().unwrap(),
            text.as_bytes()
        );
        let got = store.record(d, At::Version(rec.version)).unwrap().unwrap();
        assert_eq!(&got, rec, "version records are copied unchanged");
    }
    assert_eq!(store.changes(1, 100).unwrap().len(), 30);
    assert!(store.verify().unwrap().is_clean());
    assert!(store.stats().unwrap().max_depth <= 8);
    let next = store.put(&doc("x"), b"after repack").unwrap();
    assert_eq!(next.seq, 31, "counters are carried over");
}

#[test]
fn an_interrupted_repack_swap_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let old = dir.path().join(".s.repack-old");
    let new = dir.path().join(".s.repack-new");
    // The old store, already moved aside, and the complete new store.
    drop(Store::open(&old).unwrap().put(&doc("d"), b"old").unwrap());
    {
        let s = Store::open(&new).unwrap();
        s.put(&doc("d"), b"new").unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get(&doc("d"), At::Latest).unwrap().unwrap(), b"new");
    assert!(!old.exists() && !new.exists(), "leftovers are removed");
}

#[test]
fn a_partial_repack_beside_an_intact_store_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let new = dir.path().join(".s.repack-new");
    drop(Store::open(&path).unwrap().put(&doc("d"), b"kept").unwrap());
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(new.join("db"), b"partial").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get(&doc("d"), At::Latest).unwrap().unwrap(), b"kept");
    assert!(!new.exists());
}

#[test]
fn paged_versions_and_feed_read_back_across_page_boundaries() {
    let store = Store::open_temporary_with(
        StoreOptions::default().durability(strata_storage::Durability::Manual),
    )
    .unwrap();
    let (a, b) = (doc("paged/a"), doc("paged/b"));
    let mut batch = store.batch();
    for i in 0..400u64 {
        let d = if i % 3 == 0 { &b } else { &a };
        let meta = PutOptions::default().message("m".repeat((i % 7) as usize * 20));
        batch
            .put(d, format!("content {i}\n").as_bytes(), meta)
            .unwrap();
    }
    batch.commit().unwrap();
    for i in 0..150u64 {
        store.put(&a, format!("single {i}\n").as_bytes()).unwrap();
    }
    let hist = store.history(&a).unwrap();
    assert_eq!(hist.len(), 266 + 150);
    for (i, rec) in hist.iter().enumerate() {
        assert_eq!(rec.version.get(), i as u64 + 1);
        let one = store.record(&a, At::Version(rec.version)).unwrap().unwrap();
        assert_eq!(&one, rec);
    }
    assert!(
        store
            .record(&a, At::Version(VersionNo(417)))
            .unwrap()
            .is_none()
    );
    let all = store.changes(1, usize::MAX).unwrap();
    assert_eq!(all.len(), 550);
    for (i, c) in all.iter().enumerate() {
        assert_eq!(c.seq, i as u64 + 1);
    }
    for from in [1u64, 2, 57, 200, 399, 400, 401, 549, 550, 551] {
        let got = store.changes(from, 7).unwrap();
        let want: Vec<_> = all
            .iter()
            .filter(|c| c.seq >= from)
            .take(7)
            .cloned()
            .collect();
        assert_eq!(got, want, "from {from}");
    }
    assert!(store.verify().unwrap().is_clean());
}

// postmortem: under reverse deltas, a batch rewrote the previous head (a full snapshot) as a
// delta when the oldest version of the run below it stayed within k times the *head's* full
// size. In a growing document older versions compress smaller, so their reads replayed more
// than k times their own full size (redis: a 605-delta chain). The check now weighs the
// oldest version against its own compressed size.
#[test]
fn regression_0002_reverse_runs_stay_within_their_own_bound_in_a_growing_document() {
    let k = 2u64;
    let store =
        Store::open_temporary_with(StoreOptions::default().policy(Policy::Reverse { k: 2 }))
            .unwrap();
    let d = doc("growing");
    // Each version appends a distinct line, so the file (and its compressed size) grows.
    let mut text = String::new();
    let mut versions = Vec::new();
    for i in 0..120u32 {
        text.push_str(&format!(
            "line {i}: value {} and {}\n",
            i.wrapping_mul(2_654_435_761),
            i * i
        ));
        versions.push(text.clone().into_bytes());
    }
    for chunk in versions.chunks(8) {
        let mut batch = store.batch();
        for v in chunk {
            batch.put(&d, v, PutOptions::default()).unwrap();
        }
        batch.commit().unwrap();
    }
    for (i, v) in versions.iter().enumerate() {
        let rec = store
            .record(&d, At::Version(VersionNo(i as u64 + 1)))
            .unwrap()
            .unwrap();
        // Bytes a cold read of this version replays: every payload along its chain.
        let mut cost = 0u64;
        let mut cursor = rec.hash;
        loop {
            let h = store.object_header(&cursor).unwrap().unwrap();
            cost += h.stored_len;
            match h.kind {
                strata_core::ObjectKind::Delta { base, .. } => cursor = base,
                strata_core::ObjectKind::Full { .. } => break,
            }
        }
        let full = (strata_diff::delta::compress(v, 6).len() as u64).min(v.len() as u64);
        // A delta may be accepted on an estimate of the full size (off by at most a third).
        assert!(
            cost <= k * full * 4 / 3 + 64,
            "version {}: replays {cost} bytes, full size {full}",
            i + 1
        );
    }
}

// postmortem: repack offered every version's predecessor as a delta base (git's window of one)
// under every policy. Skip and sparse policies bound reads by where their bases are, and the
// predecessor's delta is usually the smaller one, so a repacked skip store became one chain
// (redis: 654 deltas deep instead of at most 10).
#[test]
fn regression_0003_repack_keeps_skip_deltas_logarithmic() {
    use strata_storage::RepackOptions;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let n = 64u64;
    let mut texts = Vec::new();
    {
        let store = Store::open_with(&path, StoreOptions::default().policy(Policy::Skip)).unwrap();
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!("line {i}: a growing file, one line per version\n"));
            store.put(&doc("s"), text.as_bytes()).unwrap();
            texts.push(text.clone());
        }
        assert!(store.stats().unwrap().max_depth <= 6);
    }
    Store::repack_at(&path, StoreOptions::default(), RepackOptions::default()).unwrap();
    let store = Store::open(&path).unwrap();
    let s = store.stats().unwrap();
    assert!(
        s.max_depth <= 6,
        "skip deltas read at most log2(64) deltas, got {}",
        s.max_depth
    );
    for (i, t) in texts.iter().enumerate() {
        let got = store
            .get(&doc("s"), At::Version(VersionNo(i as u64 + 1)))
            .unwrap()
            .unwrap();
        assert_eq!(got, t.as_bytes());
    }
}
