//! Contention: many threads on one `Store` (shared by clones), each doing optimistic
//! read-modify-write with expected versions, and writing documents of their own.

use std::collections::HashSet;

use strata_core::VersionNo;
use strata_storage::{At, DocId, PutOptions, Store, StoreError, StoreOptions};
use strata_tests::fixture::TestStore;

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn eight_threads_with_expected_versions_lose_no_update() {
    assert_send_sync_clone::<Store>();
    let ts = TestStore::new(StoreOptions::default());
    let shared = DocId::new("counter").unwrap();
    ts.store().put(&shared, b"").unwrap();
    const THREADS: usize = 8;
    const UPDATES: usize = 12;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = ts.store().clone();
            let shared = shared.clone();
            std::thread::spawn(move || -> (usize, Vec<u64>) {
                let own = DocId::new(format!("own/{t}")).unwrap();
                let mut conflicts = 0;
                let mut mine = Vec::new();
                for u in 0..UPDATES {
                    loop {
                        // Read, append a line, write back expecting what was read.
                        let rec = store.record(&shared, At::Latest).unwrap().unwrap();
                        let mut content = store
                            .get(&shared, At::Version(rec.version))
                            .unwrap()
                            .unwrap();
                        content.extend_from_slice(format!("t{t} u{u}\n").as_bytes());
                        match store.put_with(
                            &shared,
                            &content,
                            PutOptions::default().expect(rec.version),
                        ) {
                            Ok(done) => {
                                assert_eq!(done.version, VersionNo(rec.version.get() + 1));
                                mine.push(done.version.get());
                                break;
                            }
                            Err(StoreError::Conflict {
                                expected,
                                actual,
                                doc,
                            }) => {
                                assert_eq!(doc, shared);
                                assert_eq!(expected, rec.version.get());
                                assert!(actual > expected, "a conflict names a later version");
                                conflicts += 1;
                            }
                            Err(e) => panic!("thread {t}: {e}"),
                        }
                    }
                    store.put(&own, format!("{t}:{u}\n").as_bytes()).unwrap();
                }
                (conflicts, mine)
            })
        })
        .collect();
    let mut conflicts = 0;
    let mut versions = HashSet::new();
    for h in handles {
        let (c, mine) = h.join().unwrap();
        conflicts += c;
        for v in mine {
            assert!(versions.insert(v), "version {v} given twice");
        }
    }
    let s = ts.store();
    let history = s.history(&shared).unwrap();
    assert_eq!(history.len(), 1 + THREADS * UPDATES, "no update lost");
    for (i, r) in history.iter().enumerate() {
        assert_eq!(r.version.get(), i as u64 + 1, "gap-free");
    }
    // The final content holds every thread's every line, once.
    let text = String::from_utf8(s.get(&shared, At::Latest).unwrap().unwrap()).unwrap();
    let lines: HashSet<&str> = text.lines().collect();
    assert_eq!(lines.len(), THREADS * UPDATES);
    assert_eq!(text.lines().count(), THREADS * UPDATES);
    // The feed has every write once, in order.
    let feed: Vec<_> = s.feed(1).collect::<Result<_, _>>().unwrap();
    assert_eq!(feed.len(), 1 + 2 * THREADS * UPDATES);
    for (i, e) in feed.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    assert!(s.verify().unwrap().is_clean());
    eprintln!(
        "{THREADS} threads, {} updates, {conflicts} conflicts reported",
        THREADS * UPDATES
    );
}
