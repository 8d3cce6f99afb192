//! Stores of an earlier format: refused with a message naming the conversion, converted by a
//! repack with every version intact (`tests/fixtures/format1`, written by the last build of
//! store format 1).

use std::path::{Path, PathBuf};

use strata_core::{ContentHash, DocId, VersionNo};
use strata_storage::{At, OpenError, RepackOptions, Store, StoreOptions};
use strata_tests::fixture::copy_dir;

/// Copies the fixture store into a fresh directory and returns its path.
fn format1_copy(dir: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/format1/store");
    let to = dir.join("store");
    copy_dir(&from, &to);
    to
}

/// Every (doc, version, id) the fixture held when it was written.
fn format1_manifest() -> Vec<(String, u64, ContentHash)> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/format1/manifest.jsonl"),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut doc_of_line = ["notes.md"; 11].to_vec();
    doc_of_line.extend(["cfg/data.json"; 8]);
    doc_of_line.extend(["big.txt"; 5]);
    for (line, doc) in text.lines().zip(doc_of_line) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        out.push((
            doc.to_owned(),
            v["version"].as_u64().unwrap(),
            v["id"].as_str().unwrap().parse().unwrap(),
        ));
    }
    assert_eq!(out.len(), 24, "the manifest lists every version");
    out
}

#[test]
fn a_format_1_store_is_refused_naming_the_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let path = format1_copy(dir.path());
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, OpenError::OldFormat { found: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("strata --store"), "{err}");
    assert!(err.to_string().contains("repack"), "{err}");
    // Refusing wrote nothing: the same error again.
    assert!(matches!(
        Store::open(&path).unwrap_err(),
        OpenError::OldFormat { .. }
    ));
}

#[test]
fn a_repack_converts_a_format_1_store_with_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = format1_copy(dir.path());
    let report =
        Store::repack_at(&path, StoreOptions::default(), RepackOptions::default()).unwrap();
    assert_eq!(report.objects, 24);
    let store = Store::open(&path).unwrap();
    for (doc, v, id) in format1_manifest() {
        let d = DocId::new(doc.as_str()).unwrap();
        let content = store
            .get(&d, At::Version(VersionNo(v)))
            .unwrap()
            .unwrap_or_else(|| panic!("{doc}@{v} lost in the conversion"));
        assert_eq!(ContentHash::of(&content), id, "{doc}@{v}");
    }
    assert!(store.verify().unwrap().is_clean());
    // The converted store takes new versions.
    store
        .put(&DocId::new("notes.md").unwrap(), b"after\n")
        .unwrap();
    assert_eq!(store.changes(1, 100).unwrap().len(), 25);
}

/// Copies the format 2 fixture into `dir` and returns its path and every (doc, version, id).
fn format2_copy(dir: &Path) -> (PathBuf, Vec<(String, u64, ContentHash)>) {
    let (path, manifest) = fixture_copy(dir, "format2");
    assert_eq!(manifest.len(), 94, "the manifest lists every version");
    (path, manifest)
}

/// Copies the fixture `fixtures/<name>` into `dir` and returns its path and every (doc,
/// version, id) its manifest lists.
fn fixture_copy(dir: &Path, name: &str) -> (PathBuf, Vec<(String, u64, ContentHash)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let to = dir.join(name);
    copy_dir(&root.join("store"), &to);
    let manifest = std::fs::read_to_string(root.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["doc"].as_str().unwrap().to_owned(),
                v["version"].as_u64().unwrap(),
                v["id"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect::<Vec<_>>();
    (to, manifest)
}

fn reads_every_version(store: &Store, manifest: &[(String, u64, ContentHash)], when: &str) {
    store.clear_cache();
    for (doc, version, id) in manifest {
        let d = DocId::new(doc).unwrap();
        let (record, content) = store
            .get_with_record(&d, At::Version(VersionNo(*version)))
            .unwrap_or_else(|e| panic!("{when}: {doc}@{version}: {e}"))
            .unwrap_or_else(|| panic!("{when}: {doc}@{version} is missing"));
        assert_eq!(record.hash, *id, "{when}: {doc}@{version}");
        assert_eq!(ContentHash::of(&content), *id, "{when}: {doc}@{version}");
    }
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{when}: {:?}", report.problems);
}

/// Format 3 adds record runs to format 2, so a format 2 store opens as it is: its format
/// record is rewritten (a format 2 build then refuses it rather than miss records in runs),
/// every version reads back, and new writes move its records into runs.
#[test]
fn a_format_2_store_is_upgraded_in_place_with_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let (path, manifest) = format2_copy(dir.path());
    {
        let store = Store::open(&path).unwrap();
        reads_every_version(&store, &manifest, "after the upgrade");
    }
    let options = StoreOptions::default().record_run_threshold(8);
    let store = Store::open_with(&path, options.clone()).unwrap();
    let doc = DocId::new("notes.md").unwrap();
    for i in 0..30 {
        store
            .put(&doc, format!("note {i}\n").repeat(i + 1).as_bytes())
            .unwrap();
    }
    drop(store);
    let store = Store::open_with(&path, options).unwrap();
    reads_every_version(&store, &manifest, "after puts wrote runs");
    assert_eq!(
        store.get(&doc, At::Latest).unwrap().unwrap(),
        "note 29\n".repeat(30).into_bytes()
    );
}

/// Format 4 keeps new packs as files (`packs/`) and still reads the packs format 3 kept as
/// sled values, so a format 3 store opens as it is: its format record is rewritten (a format
/// 3 build then refuses it rather than miss objects in pack files), every version and tag
/// reads back, new packs are files, and gc and repack keep every version.
#[test]
fn a_format_3_store_is_upgraded_in_place_with_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let (path, manifest) = fixture_copy(dir.path(), "format3");
    assert_eq!(manifest.len(), 90, "the manifest lists every version");
    assert!(!path.join("packs").exists());
    {
        let store = Store::open(&path).unwrap();
        reads_every_version(&store, &manifest, "after the upgrade");
        let notes = DocId::new("notes.md").unwrap();
        assert_eq!(store.tagged(&notes, "three").unwrap(), Some(VersionNo(3)));
        // A batch large enough to be packed writes a pack file beside the old packs.
        let mut batch = store.batch();
        let doc = DocId::new("more.txt").unwrap();
        for i in 0..80 {
            batch
                .put(
                    &doc,
                    format!("line {i}\n").repeat(i + 1).as_bytes(),
                    strata_storage::PutOptions::default(),
                )
                .unwrap();
        }
        batch.commit().unwrap();
    }
    let packs = std::fs::read_dir(path.join("packs")).unwrap().count();
    assert!(packs >= 1, "new packs are files");
    let store = Store::open(&path).unwrap();
    reads_every_version(&store, &manifest, "after new packs");
    store.gc().unwrap();
    reads_every_version(&store, &manifest, "after gc");
    drop(store);
    Store::repack_at(&path, StoreOptions::default(), Default::default()).unwrap();
    let store = Store::open(&path).unwrap();
    reads_every_version(&store, &manifest, "after repack");
    assert_eq!(
        store
            .get(&DocId::new("more.txt").unwrap(), At::Latest)
            .unwrap()
            .unwrap(),
        "line 79\n".repeat(80).into_bytes()
    );
}

/// Format 5 keeps the block tables of large record runs in chunks in the run's file and still
/// reads format 4's directories, so a format 4 store opens as it is: its format record is
/// rewritten (a format 4 build then refuses it rather than misread a chunked directory),
/// every version and tag reads back, and a batch of thousands of documents (a record run
/// of hundreds of blocks, whose table is chunked) reads back after a reopen, a gc and a
/// repack.
#[test]
fn a_format_4_store_is_upgraded_in_place_with_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let (path, manifest) = fixture_copy(dir.path(), "format4");
    assert_eq!(manifest.len(), 86, "the manifest lists every version");
    // Written with 32 KiB log segments; opened and written with them (sled refuses another
    // size) until a repack, whose fresh directory takes the size of new stores.
    assert_eq!(strata_tests::fixture::segment_size(&path), 32 * 1024);
    let many: Vec<(DocId, Vec<u8>)> = (0..6000)
        .map(|i| {
            (
                DocId::new(format!("docs/{i:05}.json")).unwrap(),
                format!("{{\"id\": {i}, \"title\": \"document {i}\"}}\n").into_bytes(),
            )
        })
        .collect();
    {
        let store = Store::open(&path).unwrap();
        reads_every_version(&store, &manifest, "after the upgrade");
        let notes = DocId::new("notes.md").unwrap();
        assert_eq!(store.tagged(&notes, "three").unwrap(), Some(VersionNo(3)));
        let mut batch = store.batch();
        for (doc, content) in &many {
            batch
                .put(doc, content, strata_storage::PutOptions::default())
                .unwrap();
        }
        batch.commit().unwrap();
    }
    let check = |store: &Store, when: &str| {
        reads_every_version(store, &manifest, when);
        for (doc, content) in many.iter().step_by(7) {
            assert_eq!(
                store.get(doc, At::Latest).unwrap().as_deref(),
                Some(content.as_slice()),
                "{when}: {doc}"
            );
        }
        assert!(
            store
                .get(&DocId::new("docs/99999.json").unwrap(), At::Latest)
                .unwrap()
                .is_none()
        );
        let listed = store
            .documents()
            .unwrap()
            .iter()
            .filter(|d| d.doc.as_str().starts_with("docs/"))
            .count();
        assert_eq!(listed, many.len(), "{when}");
    };
    let store = Store::open(&path).unwrap();
    check(&store, "after the reopen");
    store.gc().unwrap();
    check(&store, "after gc");
    drop(store);
    assert_eq!(strata_tests::fixture::segment_size(&path), 32 * 1024);
    Store::repack_at(&path, StoreOptions::default(), Default::default()).unwrap();
    assert_eq!(strata_tests::fixture::segment_size(&path), 8 * 1024);
    let store = Store::open(&path).unwrap();
    check(&store, "after repack");
}
