//! Durability: what was acknowledged survives closing, reopening and a crash.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use strata_core::{DocId, VersionNo};
use strata_storage::{At, Durability, Store, StoreOptions};
use strata_tests::fixture::TestStore;

#[test]
fn put_drop_reopen_get() {
    let mut ts = TestStore::new(StoreOptions::default());
    let doc = DocId::new("a").unwrap();
    for i in 0..20 {
        ts.store()
            .put(&doc, format!("version {i}\n").repeat(i + 1).as_bytes())
            .unwrap();
    }
    ts.reopen();
    for i in 0..20u64 {
        let got = ts
            .store()
            .get(&doc, At::Version(VersionNo(i + 1)))
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            format!("version {i}\n").repeat(i as usize + 1).into_bytes()
        );
    }
    assert!(ts.store().verify().unwrap().is_clean());
}

#[test]
fn manual_durability_survives_a_clean_close() {
    let mut ts = TestStore::new(StoreOptions::default().durability(Durability::Manual));
    let doc = DocId::new("m").unwrap();
    for i in 0..50 {
        ts.store().put(&doc, format!("{i}\n").as_bytes()).unwrap();
    }
    ts.reopen();
    assert_eq!(ts.store().history(&doc).unwrap().len(), 50);
}

/// Without sled's background flusher, writes still reach the disk: every put under
/// `EveryPut`, and manual ones when the store is closed.
#[test]
fn without_a_background_flush_nothing_is_lost() {
    for durability in [Durability::EveryPut, Durability::Manual] {
        let options = StoreOptions::default()
            .durability(durability)
            .background_flush(false);
        let mut ts = TestStore::new(options);
        let doc = DocId::new("quiet").unwrap();
        for i in 0..300 {
            ts.store()
                .put(&doc, format!("line {i}\n").repeat(i % 17 + 1).as_bytes())
                .unwrap();
        }
        ts.reopen();
        let history = ts.store().history(&doc).unwrap();
        assert_eq!(history.len(), 300, "{durability:?}");
        let last = ts.store().get(&doc, At::Latest).unwrap().unwrap();
        assert_eq!(last, "line 299\n".repeat(299 % 17 + 1).into_bytes());
        assert!(ts.store().verify().unwrap().is_clean());
    }
}

/// See: issue 12, item 11 (a second open in the same process said "in use by another
/// process").
#[test]
fn a_second_open_in_this_process_says_so() {
    let mut ts = TestStore::new(StoreOptions::default());
    let err = Store::open(ts.path()).unwrap_err();
    assert!(
        matches!(err, strata_storage::OpenError::AlreadyOpen { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("clone the Store"), "{err}");
    // Once closed, it opens again.
    ts.reopen();
    ts.store().put(&DocId::new("x").unwrap(), b"x").unwrap();
}

#[test]
fn a_store_held_by_another_process_is_refused_as_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    drop(Store::open(&path).unwrap());
    // Hold the engine's own lock from this process through a separate file handle, as
    // another process would.
    let holder = std::fs::File::open(path.join("db")).unwrap();
    holder.lock().unwrap();
    let wait = std::time::Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = Store::open_with(
        &path,
        strata_storage::StoreOptions::default().lock_wait(wait),
    )
    .unwrap_err();
    assert!(started.elapsed() >= wait, "gave up before the wait");
    // The store names the process that last opened it: this one.
    let me = std::process::id();
    assert!(
        matches!(err, strata_storage::OpenError::Locked { pid: Some(p), .. } if p == me),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!("in use by process {me}")),
        "{err}"
    );
    // The wait ends as soon as the holder lets go.
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        holder.unlock().unwrap();
    });
    let store = Store::open_with(
        &path,
        strata_storage::StoreOptions::default().lock_wait(std::time::Duration::from_secs(20)),
    );
    release.join().unwrap();
    assert!(store.is_ok(), "{:?}", store.err());
}

#[test]
fn acknowledged_puts_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata-crash-child"))
        .arg("puts")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0u64;
    for line in BufReader::new(stdout).lines() {
        if let Some(v) = line.unwrap().strip_prefix("ACK ") {
            acked = v.trim().parse().unwrap();
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child should have aborted");
    assert!(acked > 100, "the child acknowledged only {acked} puts");
    let store = Store::open(&path).unwrap();
    let doc = DocId::new("crash").unwrap();
    let hist = store.history(&doc).unwrap();
    assert!(
        hist.len() as u64 >= acked,
        "lost acknowledged versions: {} < {acked}",
        hist.len()
    );
    for rec in &hist {
        let i = rec.version.get() - 1;
        let want = format!("line {i}\n").repeat(1 + (i % 50) as usize);
        assert_eq!(
            store.get(&doc, At::Version(rec.version)).unwrap().unwrap(),
            want.into_bytes()
        );
    }
    assert!(store.verify().unwrap().is_clean());
}
