//! The change feed as an event store uses it: subscriptions woken by writers on other threads,
//! and durable consumer positions that survive a reopen.

use std::collections::HashSet;
use std::time::Duration;

use strata_storage::{DocId, PutOptions, Store, StoreError};
use strata_tests::fixture::TestStore;

#[test]
fn a_subscription_sees_every_write_of_every_thread_once_in_order() {
    let ts = TestStore::new(strata_storage::StoreOptions::default());
    let store = ts.store().clone();
    let mut sub = store.subscribe(1);
    const WRITERS: usize = 4;
    const PUTS: usize = 25;
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = store.clone();
            std::thread::spawn(move || -> Result<(), StoreError> {
                let doc = DocId::new(format!("w{w}")).unwrap();
                for i in 0..PUTS {
                    s.put_with(&doc, format!("{w}:{i}\n").as_bytes(), PutOptions::default())?;
                }
                Ok(())
            })
        })
        .collect();
    let mut seen = Vec::new();
    while seen.len() < WRITERS * PUTS {
        let entry = sub
            .next_timeout(Duration::from_secs(30))
            .unwrap()
            .expect("every put wakes the subscription within 30 s");
        seen.push(entry);
    }
    for t in threads {
        t.join().unwrap().unwrap();
    }
    // Sequence numbers 1..=100 in order, no gap, no duplicate.
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=(WRITERS * PUTS) as u64).collect::<Vec<_>>());
    // Each writer's versions in its own order, each entry's record readable.
    let mut next = [1u64; WRITERS];
    for e in &seen {
        let w: usize = e.doc.as_str()[1..].parse().unwrap();
        assert_eq!(e.record.version.get(), next[w]);
        next[w] += 1;
        let content = store
            .get(&e.doc, strata_storage::At::Version(e.record.version))
            .unwrap()
            .unwrap();
        assert_eq!(
            content,
            format!("{w}:{}\n", e.record.version.get() - 1).into_bytes()
        );
    }
    assert!(
        sub.next_timeout(Duration::from_millis(20))
            .unwrap()
            .is_none()
    );
    assert_eq!(sub.position(), (WRITERS * PUTS) as u64 + 1);
}

#[test]
fn consumer_positions_are_durable_and_checked() {
    let mut ts = TestStore::new(strata_storage::StoreOptions::default());
    let doc = DocId::new("d").unwrap();
    for i in 0..5 {
        ts.store().put(&doc, format!("{i}").as_bytes()).unwrap();
    }
    ts.store().set_consumer("billing", 3).unwrap();
    ts.store().set_consumer("audit", 0).unwrap();
    ts.reopen();
    let s: &Store = ts.store();
    assert_eq!(s.consumer("billing").unwrap(), Some(3));
    assert_eq!(
        s.consumers().unwrap(),
        [("audit".to_owned(), 0), ("billing".to_owned(), 3)]
    );
    // Resuming after the position gives the rest.
    let rest: Vec<u64> = s.feed(4).map(|e| e.unwrap().seq).collect();
    assert_eq!(rest, [4, 5]);
    // A position past the last write, an empty name or a control character is refused.
    for (name, pos) in [("billing", 6), ("", 1), ("a\nb", 1)] {
        assert!(matches!(
            s.set_consumer(name, pos),
            Err(StoreError::BadConsumer { .. })
        ));
    }
    assert_eq!(s.consumer("billing").unwrap(), Some(3));
    assert!(s.remove_consumer("audit").unwrap());
    assert!(!s.remove_consumer("audit").unwrap());
    let names: HashSet<String> = s.consumers().unwrap().into_iter().map(|c| c.0).collect();
    assert_eq!(names, HashSet::from(["billing".to_owned()]));
    assert!(s.verify().unwrap().is_clean());
}
