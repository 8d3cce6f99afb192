//! The shared real histories (`../shared/corpus/`): imported under every policy family, every
//! version must read back byte-identical, and diffs between consecutive versions must apply
//! with GNU `patch`. By default the first versions of each history are used; set
//! `STRATA_CORPUS_FULL=1` for all of them. Skipped (with a message) when the corpus is absent.

use std::path::PathBuf;

use strata_core::{DocId, Policy, VersionNo};
use strata_diff::{DiffOptions, render};
use strata_storage::{At, Durability, PutOptions, Store, StoreOptions};

fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    dir.is_dir().then_some(dir)
}

fn histories() -> Vec<(String, Vec<Vec<u8>>)> {
    let Some(dir) = corpus_dir() else {
        strata_tests::shared_missing("shared corpus (../shared/corpus)");
        return Vec::new();
    };
    let limit = if std::env::var_os("STRATA_CORPUS_FULL").is_some() {
        usize::MAX
    } else {
        40
    };
    let mut out = Vec::new();
    let mut docs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    docs.sort();
    for d in docs {
        let mut files: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let versions = files
            .iter()
            .take(limit)
            .map(|f| std::fs::read(f).unwrap())
            .collect();
        out.push((
            d.file_name().unwrap().to_string_lossy().into_owned(),
            versions,
        ));
    }
    out
}

#[test]
fn corpus_roundtrips_under_every_policy_family() {
    let hist = histories();
    for policy in [
        Policy::default(),
        Policy::Chain { max_depth: 8 },
        Policy::Skip,
        Policy::Every { n: 7 },
        Policy::Reverse { k: 4 },
    ] {
        let store = Store::open_temporary_with(
            StoreOptions::default()
                .policy(policy)
                .durability(Durability::Manual),
        )
        .unwrap();
        for (name, versions) in &hist {
            let doc = DocId::new(name.clone()).unwrap();
            let mut batch = store.batch();
            for v in versions {
                batch.put(&doc, v, PutOptions::default()).unwrap();
            }
            batch.commit().unwrap();
            store.clear_cache();
            for (i, want) in versions.iter().enumerate().rev() {
                let got = store
                    .get(&doc, At::Version(VersionNo(i as u64 + 1)))
                    .unwrap()
                    .unwrap();
                assert!(got == *want, "{name}@{} differs under {policy}", i + 1);
            }
        }
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        if !hist.is_empty() && policy != (Policy::Every { n: 7 }) {
            let s = store.stats().unwrap();
            assert!(
                s.stored_bytes * 4 < s.raw_bytes,
                "{policy}: stored {} of raw {}",
                s.stored_bytes,
                s.raw_bytes
            );
            // The engine holds the payload plus ids and records, and the directory holds
            // at least what the engine was given.
            assert!(
                s.stored_bytes < s.record_bytes && s.record_bytes < s.disk_bytes,
                "{policy}: stored {} record {} disk {}",
                s.stored_bytes,
                s.record_bytes,
                s.disk_bytes
            );
        }
    }
}

#[test]
fn corpus_diffs_apply_with_gnu_patch_and_git_apply() {
    if std::process::Command::new("patch")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("GNU patch not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let git = std::process::Command::new("git")
        .current_dir(dir.path())
        .args(["init", "-q"])
        .status()
        .is_ok_and(|s| s.success());
    for (name, versions) in histories() {
        for (i, pair) in versions.windows(2).enumerate().step_by(5) {
            let diff = strata_diff::compare(&pair[0], &pair[1], &DiffOptions::default());
            if diff.text().is_none() {
                continue;
            }
            let file = dir.path().join("f");
            std::fs::write(&file, &pair[0]).unwrap();
            std::fs::write(
                dir.path().join("p"),
                render::unified_bytes(&diff, "a/f", "b/f", render::Style::default()),
            )
            .unwrap();
            let out = std::process::Command::new("patch")
                .current_dir(dir.path())
                .args(["-s", "--no-backup-if-mismatch", "f", "p"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name} {i}: patch failed: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(
                std::fs::read(&file).unwrap() == pair[1],
                "{name} {i}: patched file differs"
            );
            if git {
                // The same diff applies with `git apply` too.
                std::fs::write(&file, &pair[0]).unwrap();
                let out = std::process::Command::new("git")
                    .current_dir(dir.path())
                    .args(["apply", "p"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{name} {i}: git apply failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    std::fs::read(&file).unwrap() == pair[1],
                    "{name} {i}: git-applied file differs"
                );
            }
        }
    }
}
