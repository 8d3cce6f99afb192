//! The children of the crash tests: processes that write to a store until they are killed
//! (the `strata-crash-child` binary runs them), and the generator they share with the
//! parent tests.

use std::path::Path;

use strata_core::DocId;
use strata_storage::{At, PutOptions, RepackOptions, Store, StoreOptions};

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The crash loop's documents.
pub const DOCS: [&str; 3] = ["notes/a.md", "data/b.json", "big/c.txt"];

/// The next content of a document: an edit of its current one (so deltas are written), now
/// and then a rewrite, with sizes from empty to about 200 KB.
pub fn next_content(rng: &mut Rng, doc: usize, current: &[u8]) -> Vec<u8> {
    let mut lines: Vec<String> = String::from_utf8_lossy(current)
        .lines()
        .map(str::to_owned)
        .collect();
    match rng.below(10) {
        0 => lines.clear(),
        1 => {
            let n = if doc == 2 { 4000 } else { 200 };
            lines = (0..rng.below(n))
                .map(|i| format!("line {i} of a rewrite {}", rng.next_u64()))
                .collect();
        }
        _ => {
            for _ in 0..1 + rng.below(5) {
                let at = rng.below(lines.len() as u64 + 1) as usize;
                if rng.below(3) == 0 && at < lines.len() {
                    lines.remove(at);
                } else {
                    lines.insert(at, format!("edit {} in doc {doc}", rng.next_u64()));
                }
            }
        }
    }
    let mut out = lines.join("\n").into_bytes();
    out.push(b'\n');
    out
}

/// The loop child: runs until killed, printing `ACK doc version id` once a version is
/// durable, `OPEN`/`CLOSE` markers before it opens or closes the store, and `PRUNE doc
/// first-kept` before a prune starts.
pub fn loop_child(dir: &Path, seed: u64) -> ! {
    let mut rng = Rng(seed | 1);
    let docs: Vec<DocId> = DOCS.iter().map(|d| DocId::new(*d).unwrap()).collect();
    loop {
        println!("OPEN");
        // A small run threshold: record runs are written and merged every few operations,
        // so kills land inside compactions too.
        let store =
            Store::open_with(dir, StoreOptions::default().record_run_threshold(24)).unwrap();
        println!("OPENED");
        let mut current: Vec<Vec<u8>> = docs
            .iter()
            .map(|d| store.get(d, At::Latest).unwrap().unwrap_or_default())
            .collect();
        for _ in 0..1 + rng.below(6) {
            match rng.below(100) {
                0..=59 => {
                    let d = rng.below(3) as usize;
                    let content = next_content(&mut rng, d, &current[d]);
                    let rec = store.put(&docs[d], &content).unwrap();
                    println!("ACK {} {} {}", DOCS[d], rec.version, rec.hash);
                    current[d] = content;
                }
                60..=84 => {
                    let mut batch = store.batch();
                    let mut order = Vec::new();
                    // Now and then a bulk batch (64 puts or more, as an import commits):
                    // packed at once, its records a run of their own.
                    let puts = if rng.below(6) == 0 {
                        64 + rng.below(16)
                    } else {
                        2 + rng.below(12)
                    };
                    for _ in 0..puts {
                        let d = rng.below(3) as usize;
                        let content = next_content(&mut rng, d, &current[d]);
                        batch
                            .put(&docs[d], &content, PutOptions::default())
                            .unwrap();
                        order.push(d);
                        current[d] = content;
                    }
                    for (d, rec) in order.into_iter().zip(batch.commit().unwrap()) {
                        println!("ACK {} {} {}", DOCS[d], rec.version, rec.hash);
                    }
                }
                85..=89 => {
                    store.gc().unwrap();
                }
                90..=92 => {
                    // Announced before it starts: a kill may land before, inside or after it.
                    let d = rng.below(3) as usize;
                    let keep = 1 + rng.below(8);
                    let head = store
                        .history(&docs[d])
                        .unwrap()
                        .last()
                        .map_or(0, |r| r.version.get());
                    println!("PRUNE {} {}", DOCS[d], head.saturating_sub(keep - 1));
                    store
                        .prune(&docs[d], strata_storage::Retention::KeepLast(keep), true)
                        .unwrap();
                }
                _ => {
                    println!("CLOSE");
                    drop(store);
                    Store::repack_at(dir, StoreOptions::default(), RepackOptions::default())
                        .unwrap();
                    break;
                }
            }
        }
        println!("CLOSE");
    }
}

/// The simple child: puts to one document, printing `ACK version` after each, and aborts
/// (no cleanup, as kill -9) after 200.
pub fn put_child(dir: &Path) -> ! {
    let store = Store::open(dir).unwrap();
    let doc = DocId::new("crash").unwrap();
    for i in 0u64.. {
        let content = format!("line {i}\n").repeat(1 + (i % 50) as usize);
        let rec = store.put(&doc, content.as_bytes()).unwrap();
        println!("ACK {}", rec.version);
        if i == 200 {
            std::process::abort();
        }
    }
    unreachable!("the loop above aborts")
}
