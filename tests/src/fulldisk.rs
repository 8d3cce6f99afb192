//! The full-disk child: run by the `strata-crash-child fulldisk DIR` binary inside a private
//! mount namespace where `DIR` is a small tmpfs (see `tests/tests/fulldisk.rs`). It fills the
//! disk through the store, then checks what issue 10 promises: a clean error, a store that
//! reopens with every acknowledged version, and writes that resume once space is freed.
//!
//! It prints one line per step (`FULL <error>`, `REOPENED`, `RESUMED <versions>`, ...) and
//! exits non-zero with a `FAIL` line naming the broken promise.

use std::collections::BTreeMap;
use std::path::Path;

use strata_core::{ContentHash, DocId, VersionNo};
use strata_storage::{At, Store, StoreError};

use crate::crash::Rng;

/// Space held by a filler file and given back once the disk is full.
const FILLER: usize = 3 << 20;

fn fail(what: impl std::fmt::Display) -> ! {
    println!("FAIL {what}");
    std::process::exit(1)
}

/// Contents that compress poorly (so the disk fills fast) with an edited text tail (so deltas
/// are written too): 4-64 KB (each a file of the engine's own) or, with `small`, under 3 KB
/// (in the engine's log).
fn content(rng: &mut Rng, round: u64, small: bool) -> Vec<u8> {
    let len = if small {
        rng.below(3_000) as usize
    } else {
        4_000 + rng.below(60_000) as usize
    };
    let mut out: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    for i in 0..20 {
        out.extend_from_slice(format!("line {i} of round {}\n", round % 7).as_bytes());
    }
    out
}

/// Reads back every acknowledged version; fails on a wrong or missing one.
fn check_all(store: &Store, acked: &BTreeMap<(String, u64), ContentHash>, when: &str) {
    for ((doc, version), hash) in acked {
        let id = DocId::new(doc.as_str()).expect("the child's keys are valid");
        match store.get(&id, At::Version(VersionNo(*version))) {
            Ok(Some(bytes)) if ContentHash::of(&bytes) == *hash => {}
            Ok(Some(_)) => fail(format!("{when}: {doc}@{version} read back wrong bytes")),
            Ok(None) => fail(format!("{when}: {doc}@{version} is gone")),
            Err(e) => fail(format!("{when}: {doc}@{version}: {e}")),
        }
    }
}

/// Puts until the disk is full; returns the error that stopped it.
fn fill(
    store: &Store,
    rng: &mut Rng,
    acked: &mut BTreeMap<(String, u64), ContentHash>,
    small: bool,
) -> StoreError {
    let docs = ["a.bin", "b.bin", "c.bin"];
    for round in 0u64..100_000 {
        let doc = docs[(round % 3) as usize];
        let id = DocId::new(doc).expect("valid key");
        let bytes = content(rng, round, small);
        match store.put(&id, &bytes) {
            Ok(rec) => {
                acked.insert((doc.to_owned(), rec.version.get()), rec.hash);
            }
            Err(e) => return e,
        }
    }
    fail("100,000 puts never filled the disk")
}

/// The full-disk scenario on the tmpfs mounted at `dir`, with small or large contents.
pub fn full_disk_child(dir: &Path, small: bool) -> ! {
    let filler = dir.join("filler");
    if let Err(e) = std::fs::write(&filler, vec![1u8; FILLER]) {
        fail(format!("could not write the filler file: {e}"));
    }
    let path = dir.join("store");
    let mut rng = Rng(0x5eed_f011);
    let mut acked = BTreeMap::new();
    let store = Store::open(&path).unwrap_or_else(|e| fail(format!("first open: {e}")));
    let err = fill(&store, &mut rng, &mut acked, small);
    println!("FULL {} {err}", acked.len());
    if !matches!(err, StoreError::DiskFull { .. }) {
        fail(format!("the error of a full disk is not DiskFull: {err:?}"));
    }
    // The open store stops at the failure (the engine may hold part of the failed write in
    // memory): later writes and reads get the same clean error, never a panic or stale bytes.
    match store.put(&DocId::new("a.bin").expect("valid key"), b"small") {
        Err(StoreError::DiskFull { .. }) => {}
        other => fail(format!("a second write on a full disk: {other:?}")),
    }
    if let Some(((doc, version), _)) = acked.iter().next() {
        let id = DocId::new(doc.as_str()).expect("valid key");
        match store.get(&id, At::Version(VersionNo(*version))) {
            Err(StoreError::DiskFull { .. }) => {}
            other => fail(format!("a read after the failure: {other:?}")),
        }
    }
    drop(store);
    // Reopening while the disk is still full: every acknowledged version reads.
    match Store::open(&path) {
        Ok(store) => {
            check_all(&store, &acked, "after reopening on a full disk");
            println!("REOPENED {}", acked.len());
        }
        Err(e) => println!("REOPEN-REFUSED {e}"),
    }
    if let Err(e) = std::fs::remove_file(&filler) {
        fail(format!("could not remove the filler file: {e}"));
    }
    let store = Store::open(&path).unwrap_or_else(|e| fail(format!("open after freeing: {e}")));
    check_all(&store, &acked, "after freeing space");
    for round in 0..6 {
        let doc = ["a.bin", "b.bin", "c.bin"][round % 3];
        let bytes = content(&mut rng, round as u64, small);
        match store.put(&DocId::new(doc).expect("valid key"), &bytes) {
            Ok(rec) => {
                acked.insert((doc.to_owned(), rec.version.get()), rec.hash);
            }
            Err(e) => fail(format!("a write after freeing space: {e}")),
        }
    }
    drop(store);
    let store = Store::open(&path).unwrap_or_else(|e| fail(format!("last open: {e}")));
    check_all(&store, &acked, "after resuming");
    match store.verify() {
        Ok(report) if report.is_clean() => {}
        Ok(report) => fail(format!("verify: {:?}", report.problems)),
        Err(e) => fail(format!("verify: {e}")),
    }
    println!("RESUMED {}", acked.len());
    std::process::exit(0)
}

/// A command that runs the shell `script` in a private mount namespace, where it may mount a
/// tmpfs: `unshare --user --map-root-user --mount` (no privilege needed where user namespaces
/// are allowed), else `unshare --mount` (for root). `None` when neither can mount one here,
/// after a message; with `STRATA_REQUIRE_TMPFS` set (as `.ci/run` does) that panics instead,
/// so the full-disk tests cannot pass by skipping in CI.
///
/// # Panics
/// When no namespace can mount a tmpfs and `STRATA_REQUIRE_TMPFS` is set.
pub fn private_mount_shell(script: &str) -> Option<std::process::Command> {
    const VARIANTS: [&[&str]; 2] = [&["--user", "--map-root-user", "--mount"], &["--mount"]];
    let probe = "d=$(mktemp -d) && mount -t tmpfs -o size=1m strata-probe \"$d\"";
    for flags in VARIANTS {
        let works = std::process::Command::new("unshare")
            .args(flags)
            .args(["sh", "-c", probe])
            .output()
            .is_ok_and(|o| o.status.success());
        if works {
            let mut cmd = std::process::Command::new("unshare");
            cmd.args(flags).args(["sh", "-c", script, "sh"]);
            return Some(cmd);
        }
    }
    assert!(
        std::env::var_os("STRATA_REQUIRE_TMPFS").is_none(),
        "no private mount namespace can mount a tmpfs here (unshare), and STRATA_REQUIRE_TMPFS is set"
    );
    eprintln!("no private mount namespace can mount a tmpfs here (unshare); skipping");
    None
}
