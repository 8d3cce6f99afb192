//! The change feed as an iterator: every version in the order it was written, with its
//! record, from any position (the event store's read side).

use std::collections::{HashMap, VecDeque};

use strata_core::{DocId, VersionRecord};

use crate::error::{StoreError, StoreResult};
use crate::store::Store;

/// One entry of the change feed: a version, with the sequence number of its write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEntry {
    /// The store-wide sequence number of the write (from 1, gap-free).
    pub seq: u64,
    /// The document written.
    pub doc: DocId,
    /// The version's record: number, content id, size, time and metadata.
    pub record: VersionRecord,
}

/// Feed entries read from the engine per page.
const PAGE: usize = 256;

/// An iterator over the change feed from a sequence number to the last write made before
/// the iterator reached the end (see [`Store::feed`]).
#[derive(Debug)]
pub struct Feed<'s> {
    store: &'s Store,
    next: u64,
    buffer: VecDeque<FeedEntry>,
    /// Document keys by internal number, looked up as entries name them.
    names: HashMap<u64, DocId>,
    failed: bool,
}

impl<'s> Feed<'s> {
    pub(crate) fn new(store: &'s Store, from: u64) -> Self {
        Self {
            store,
            next: from.max(1),
            buffer: VecDeque::new(),
            names: HashMap::new(),
            failed: false,
        }
    }

    /// The sequence number the next entry read from the store will have at least.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.buffer.front().map_or(self.next, |e| e.seq)
    }

    fn name(&mut self, num: u64, seq: u64) -> StoreResult<DocId> {
        // One lookup per document the feed meets, not a load of every document: a server
        // that reads a few new entries at a time from a store of 10,000 documents spent
        // 4 ms per read loading them all.
        if !self.names.contains_key(&num)
            && let Some(key) = self.store.inner.kv.doc_key(num)?
        {
            let doc = DocId::new(key)
                .map_err(|e| StoreError::corrupt(format!("document record {num}"), e))?;
            self.names.insert(num, doc);
        }
        self.names.get(&num).cloned().ok_or_else(|| {
            StoreError::corrupt(format!("feed entry {seq}"), "names an unknown document")
        })
    }

    fn fill(&mut self) -> StoreResult<()> {
        let kv = &self.store.inner.kv;
        // What other processes wrote to a shared engine since the last look.
        kv.sync()?;
        // Pages of entries whose versions were all pruned are read past.
        while self.buffer.is_empty() {
            let entries = kv.feed(self.next, PAGE)?;
            if entries.is_empty() {
                break;
            }
            self.take(entries)?;
        }
        Ok(())
    }

    fn take(&mut self, entries: Vec<(u64, u64, strata_core::VersionNo)>) -> StoreResult<()> {
        let kv = &self.store.inner.kv;
        for (seq, num, version) in entries {
            self.next = seq + 1;
            let doc = self.name(num, seq)?;
            match kv.version(num, version)? {
                Some(record) => self.buffer.push_back(FeedEntry { seq, doc, record }),
                // A version no longer there was pruned (`kv.version` tells that from damage):
                // it has left the feed too.
                None if kv.head(num)?.is_some_and(|h| version <= h) => {}
                None => {
                    return Err(StoreError::corrupt(
                        format!("feed entry {seq}"),
                        format!("names version {version} of '{doc}', which has no record"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Iterator for Feed<'_> {
    type Item = StoreResult<FeedEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.buffer.is_empty()
            && let Err(e) = self.fill()
        {
            // An error ends the iteration: it would repeat on every further call.
            self.failed = true;
            return Some(Err(e));
        }
        self.buffer.pop_front().map(Ok)
    }
}

/// A feed that waits for new writes once it has given every version (see
/// [`Store::subscribe`]).
#[derive(Debug)]
pub struct Subscription {
    store: Store,
    next: u64,
}

impl Subscription {
    pub(crate) fn new(store: Store, from: u64) -> Self {
        Self {
            store,
            next: from.max(1),
        }
    }

    /// The sequence number of the next entry it will give.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next entry, waiting for a commit while there is none; `None` when `timeout`
    /// passed without one.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn next_timeout(&mut self, timeout: std::time::Duration) -> StoreResult<Option<FeedEntry>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            // Read the commit count before looking, so a commit made after the look wakes
            // the wait below.
            let seen = *crate::read::lock(&self.store.inner.commits.0);
            if let Some(entry) = Feed::new(&self.store, self.next).next().transpose()? {
                self.next = entry.seq + 1;
                return Ok(Some(entry));
            }
            let (count, wake) = &*self.store.inner.commits;
            let mut guard = crate::read::lock(count);
            // On a shared engine the engine's wakes for other processes' commits can pause
            // (its consumer recreated after a leader change): look again every so often too.
            let slice = if self.store.shared() {
                crate::engine::nats::POLL
            } else {
                timeout
            };
            while *guard == seen {
                let now = std::time::Instant::now();
                if now >= deadline {
                    return Ok(None);
                }
                let (g, waited) = wake
                    .wait_timeout(guard, (deadline - now).min(slice))
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                guard = g;
                // A slice passed (or the deadline, found above after looking once more).
                if waited.timed_out() {
                    break;
                }
            }
        }
    }
}

impl Iterator for Subscription {
    type Item = StoreResult<FeedEntry>;

    /// Blocks until the next entry exists.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_timeout(std::time::Duration::from_secs(3600)) {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
