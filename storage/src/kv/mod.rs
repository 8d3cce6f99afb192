//! Records, pages and the commit, on top of the storage engine ([`crate::engine`]). Opening
//! is in `open.rs`, objects (loose and packed) in `objects.rs`.
//!
//! Spaces (see `docs/format.md` for the bytes):
//! - `names`: document key (UTF-8) → [`NameRecord`] (document number)
//! - `docs`: doc number BE → [`DocRecord`] (key and latest version)
//! - `versions`: doc number BE ‖ first version BE → `VersionPage`
//! - `objects`: content hash ‖ part BE u32 → part 0: `ObjectHeader`; parts 1..=n: payload
//!   chunks (loose objects)
//! - `index`: content hash → [`PackedRef`] (packed objects); `pack-<n>`: one pack value each
//! - `feed`: sequence number BE → [`FeedPage`]
//! - `meta`: `format` → [`FormatRecord`], `policy` → `Policy`, `counters` → [`Counters`],
//!   `packs` → [`PackCounter`], `maintenance` → the maintenance lease (`lease.rs`)

mod lease;
mod objects;
mod open;

pub(crate) use lease::{Epoch, PENDING_MS};

pub(crate) use objects::{PackedAt, StoredObject};
pub(crate) use open::{KvConfig, MEMORY_PATH};

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use strata_core::codec::{
    Record, decode_record, decode_record_prefix, encode_record, encoded_len, pair_key,
    read_pair_key, read_u64_key, u64_key,
};
use strata_core::{ContentHash, Metadata, ObjectHeader, Policy, VersionNo, VersionRecord};

use crate::engine::{self, Batch, Engine, Space, Value, WriteError};
use crate::error::{BackendError, OpenError, StoreError, StoreResult};
use crate::fasthash::insert_bounded;
use crate::format::{
    CONVERTIBLE_FORMAT, Counters, DocRecord, FeedPage, FeedRecord, FormatRecord, NameRecord,
    PACK_FORMAT, PAGE_LIMIT, PackCounter, PackedRef, STORE_FORMAT, UPGRADABLE_FORMATS, VersionPage,
};
use crate::read::lock;

const META_FORMAT: &[u8] = b"format";
const META_POLICY: &[u8] = b"policy";
/// The store's retention rule: kind (1 keep-last, 2 since) then `u64` BE.
const META_RETENTION: &[u8] = b"retention";
/// Meta keys of durable feed consumers: this prefix, then the consumer's name (UTF-8); the
/// value is the last sequence number it processed, `u64` big-endian.
const CONSUMER_PREFIX: &[u8] = b"consumer/";

/// Meta keys of tags: this prefix, the document's number (`u64` big-endian), then the tag's
/// name (UTF-8); the value is the tagged version, `u64` big-endian.
const TAG_PREFIX: &[u8] = b"tag/";

fn tag_key(doc: u64, name: &str) -> Vec<u8> {
    let mut k = TAG_PREFIX.to_vec();
    k.extend_from_slice(&doc.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

fn consumer_key(name: &str) -> Vec<u8> {
    let mut k = CONSUMER_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}
const META_COUNTERS: &[u8] = b"counters";
const META_PACKS: &[u8] = b"packs";

/// Records per batch when a repack copies them.
const COPY_BATCH: usize = 1 << 16;

/// The store's records on an engine.
#[derive(Clone, Debug)]
pub(crate) struct Kv {
    engine: Arc<dyn Engine>,
    /// Commits of this process one at a time (the engine's compare-and-swap on the counters
    /// record still decides between processes).
    commit_gate: Arc<Mutex<()>>,
    /// The last version pages decoded, with the bytes they were decoded from: a page is
    /// reused only when the engine returns the very same bytes, so it never needs
    /// invalidating. Reading a history in order finds each page here about ten times.
    pages: Arc<Mutex<PageMemo>>,
    /// Document numbers by name, as found: a name, once given a number, keeps it for the
    /// store's life (names are never removed or renumbered, by any process), so a number
    /// found once needs no second lookup. Bounded by [`NAME_MEMO`]; absent names are not
    /// kept (another process may create them).
    names: Arc<Mutex<crate::fasthash::FastMap<String, u64>>>,
    /// Documents whose record [`Kv::version`] has read once (see there).
    heads_seen: Arc<Mutex<crate::fasthash::FastMap<u64, ()>>>,
    /// The maintenance lease this process holds on a shared engine (`lease.rs`).
    held: Arc<Mutex<lease::Held>>,
}

/// Recently decoded version pages (see [`Kv::pages`]), by document and first version.
#[derive(Debug, Default)]
struct PageMemo {
    slots: crate::fasthash::FastMap<(u64, u64), (engine::Value, Arc<VersionPage>)>,
}

/// How many decoded pages [`PageMemo`] keeps (then it starts over): enough for a reader
/// that interleaves the histories of many documents (312 in eslint-rules-docs, whose pages
/// were decoded again at nearly every read with a memo of 8).
const PAGE_MEMO: usize = 1024;

/// How many document numbers [`Kv::names`] keeps (then it starts over).
const NAME_MEMO: usize = 1 << 16;

impl PageMemo {
    fn get(&self, doc: u64, first: u64, bytes: &[u8]) -> Option<Arc<VersionPage>> {
        self.slots
            .get(&(doc, first))
            .filter(|(b, _)| **b == *bytes)
            .map(|(_, page)| Arc::clone(page))
    }

    fn put(&mut self, doc: u64, first: u64, bytes: engine::Value, page: Arc<VersionPage>) {
        insert_bounded(&mut self.slots, PAGE_MEMO, (doc, first), (bytes, page));
    }
}

/// One version to record in a commit.
pub(crate) struct NewVersion<'a> {
    pub(crate) key: &'a str,
    pub(crate) expected: Option<u64>,
    pub(crate) hash: ContentHash,
    pub(crate) size: u64,
    pub(crate) time: VersionTime,
    pub(crate) meta: &'a Metadata,
}

/// When a new version was made.
#[derive(Clone, Copy, Debug)]
pub(crate) enum VersionTime {
    /// The writer's clock (ms since the epoch): raised to the document's newest version's time
    /// when the clock is behind it, so a document's times never go back.
    Now(u64),
    /// A time the writer gave (an imported history's): refused when before the document's
    /// newest version's.
    Given(u64),
}

/// Why a commit stopped.
pub(crate) enum CommitAbort {
    Conflict {
        index: usize,
        expected: u64,
        actual: u64,
    },
    /// Another process's maintenance (`lease.rs`) ran since the commit's epoch was read.
    Maintenance,
    TimeGoesBack {
        index: usize,
        time_ms: u64,
        newest_ms: u64,
    },
    Corrupt(StoreError),
}

impl From<StoreError> for CommitAbort {
    fn from(e: StoreError) -> Self {
        Self::Corrupt(e)
    }
}

/// Bulk writes end by merging the record runs when there are at least this many. Each run
/// costs every lookup a binary search, and the records a later run replaced (a document's
/// head, its newest version page) stay in the older ones. Through format 3 a merge's
/// rewritten bytes went through sled's log, and 4 runs was where the lookups saved were
/// worth it (`BENCHMARKS.md`, session 6); a run's data is a file now (format 4), so bulk
/// writes merge whatever they leave: a repack of public-suffix left 21.7 KB of runs where
/// one merged run holds 10.7 KB.
pub(crate) const SETTLE_RUNS: usize = 2;

/// The records a commit has written so far, over the engine: its reads see its own writes.
struct Overlay<'k> {
    kv: &'k Kv,
    writes: HashMap<(Space, Vec<u8>), Vec<u8>>,
    order: Vec<(Space, Vec<u8>)>,
}

impl Overlay<'_> {
    fn get<R: Record>(
        &self,
        space: Space,
        key: &[u8],
        what: impl FnOnce() -> String,
    ) -> StoreResult<Option<R>> {
        match self.writes.get(&(space, key.to_vec())) {
            Some(bytes) => decode(bytes, what).map(Some),
            None => self
                .kv
                .engine
                .get(space, key)?
                .map(|b| decode(&b, what))
                .transpose(),
        }
    }

    fn require<R: Record>(
        &self,
        space: Space,
        key: &[u8],
        what: impl Fn() -> String,
    ) -> StoreResult<R> {
        self.get(space, key, &what)?
            .ok_or_else(|| StoreError::corrupt(what(), "is missing"))
    }

    fn put(&mut self, space: Space, key: &[u8], record: &impl Record) {
        let k = (space, key.to_vec());
        if self
            .writes
            .insert(k.clone(), encode_record(record))
            .is_none()
        {
            self.order.push(k);
        }
    }

    fn into_batch(mut self) -> Batch {
        let mut batch = Batch::default();
        for k in self.order {
            let value = self
                .writes
                .remove(&k)
                .expect("every ordered key was written");
            batch.put(k.0, k.1, value);
        }
        batch
    }
}

impl Kv {
    /// Replaces every record with `snapshot`'s and drops the engine's history before it (a
    /// shared engine's log; [`Engine::compact_log`]).
    pub(crate) fn compact_log(&self, snapshot: &crate::MemoryEngine) -> StoreResult<()> {
        self.engine.compact_log(snapshot)
    }

    /// The bytes the store takes where the engine keeps it: the store directory, a NATS
    /// stream's bytes, or the records themselves in memory.
    pub(crate) fn stored_bytes(&self) -> StoreResult<u64> {
        if let Some(dir) = self.engine.dir() {
            return Ok(crate::verify::dir_size(dir));
        }
        match self.engine.stored_bytes()? {
            Some(b) => Ok(b),
            None => self.record_bytes(),
        }
    }

    /// Whether any version was ever recorded (the feed has begun).
    pub(crate) fn holds_versions(&self) -> StoreResult<bool> {
        Ok(self.counters()?.is_some_and(|c| c.next_seq > 1))
    }

    /// Calls `wake` when another process may have written (see [`Engine::watch`]).
    pub(crate) fn watch(&self, wake: Box<dyn Fn() + Send + Sync>) {
        self.engine.watch(wake);
    }

    /// Reads what other processes wrote, on an engine shared between processes.
    pub(crate) fn sync(&self) -> StoreResult<()> {
        self.engine.sync()
    }

    /// Makes every completed write durable, then, for an engine on disk, records the next
    /// sequence number in the sequence mark ([`crate::recover`]).
    ///
    /// The counters are read before the engine flushes: a write another thread commits
    /// while the flush runs may not be durable when it ends, and a mark naming it would make
    /// the next open refuse the store as having lost it (found by killing `strata serve`
    /// under concurrent puts).
    pub(crate) fn flush(&self) -> StoreResult<()> {
        let counters = match self.engine.dir() {
            Some(_) => self.counters()?,
            None => None,
        };
        self.engine.flush()?;
        if let Some(dir) = self.engine.dir()
            && let Some(c) = counters
        {
            crate::recover::write_seq_mark(dir, c.next_seq)
                .map_err(|e| StoreError::Backend(BackendError::new(e)))?;
        }
        Ok(())
    }

    fn counters(&self) -> StoreResult<Option<Counters>> {
        self.engine
            .get(Space::Meta, META_COUNTERS)?
            .map(|b| decode::<Counters>(&b, || "counters record".to_owned()))
            .transpose()
    }

    /// Sums the lengths of every key and value in every space: the bytes strata asks the
    /// engine to keep, before the engine's own overhead.
    pub(crate) fn record_bytes(&self) -> StoreResult<u64> {
        let mut total = 0u64;
        for space in Space::FIXED {
            for entry in engine::all(&*self.engine, space) {
                let (k, v) = entry?;
                total += (k.len() + v.len()) as u64;
            }
        }
        for p in self.packs()? {
            total += p.size;
        }
        Ok(total)
    }

    /// Merges the record runs into one (see [`crate::Store::compact_records`]).
    pub(crate) fn compact_records(&self) -> StoreResult<()> {
        self.engine.compact_all()
    }

    /// Merges the record runs when a lookup would look in [`SETTLE_RUNS`] or more (see
    /// [`crate::Store::settle_records`]).
    pub(crate) fn settle_records(&self) -> StoreResult<()> {
        if self.engine.pieces()? >= SETTLE_RUNS {
            self.engine.compact_all()?;
        }
        Ok(())
    }

    pub(crate) fn stored_policy(&self) -> StoreResult<Option<Policy>> {
        self.engine
            .get(Space::Meta, META_POLICY)?
            .map(|b| {
                decode_record::<Policy>(&b).map_err(|e| StoreError::decode("policy record", e))
            })
            .transpose()
    }

    pub(crate) fn set_policy(&self, policy: &Policy) -> StoreResult<()> {
        let mut b = Batch::default();
        b.put(Space::Meta, META_POLICY, encode_record(policy));
        self.write(b)
    }

    /// Drops the version records of document `doc` before version `keep_from` (its newest
    /// version and everything after `keep_from` stay): pages wholly before it are removed, the
    /// page that straddles it is rewritten to start there; one atomic write.
    pub(crate) fn drop_versions_before(&self, doc: u64, keep_from: VersionNo) -> StoreResult<u64> {
        let _commits = lock(&self.commit_gate);
        let mut batch = Batch::default();
        let mut dropped = 0u64;
        let mut newest_page_moved = None;
        let head = self.head(doc)?;
        for kv in engine::with_prefix(&*self.engine, Space::Versions, &u64_key(doc)) {
            let (k, b) = kv?;
            let page = version_page(doc, &k, &b)?;
            if page.first >= keep_from {
                break;
            }
            let before = page.records.len();
            let kept: Vec<VersionRecord> = page
                .records
                .into_iter()
                .filter(|r| r.version >= keep_from)
                .collect();
            dropped += (before - kept.len()) as u64;
            batch.remove(Space::Versions, k.to_vec());
            if let Some(first) = kept.first().map(|r| r.version) {
                let page = VersionPage {
                    first,
                    records: kept,
                };
                batch.put(
                    Space::Versions,
                    pair_key(doc, first.get()).to_vec(),
                    encode_record(&page),
                );
                if page.records.last().map(|r| r.version) == head {
                    newest_page_moved = Some(first);
                }
            }
        }
        if let Some(first) = newest_page_moved {
            // The document record names its newest page by its first version.
            let key = u64_key(doc);
            let rec = self.engine.get(Space::Docs, &key)?.ok_or_else(|| {
                StoreError::corrupt(format!("document record {doc}"), "is missing")
            })?;
            let mut rec = decode::<DocRecord>(&rec, || format!("document record {doc}"))?;
            rec.page = first;
            batch.put(Space::Docs, key.to_vec(), encode_record(&rec));
        }
        if dropped > 0 {
            self.write(batch)?;
        }
        Ok(dropped)
    }

    /// The sequence number the next write will get (1 in an empty store).
    pub(crate) fn next_seq(&self) -> StoreResult<u64> {
        Ok(self.counters()?.map_or(1, |c| c.next_seq))
    }

    /// The position (last processed sequence number) stored for consumer `name`.
    pub(crate) fn consumer(&self, name: &str) -> StoreResult<Option<u64>> {
        self.engine
            .get(Space::Meta, &consumer_key(name))?
            .map(|b| {
                <[u8; 8]>::try_from(&b[..])
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::corrupt(format!("consumer '{name}'"), "bad record"))
            })
            .transpose()
    }

    /// Stores consumer `name`'s position, or removes the consumer (`None`).
    pub(crate) fn set_consumer(&self, name: &str, position: Option<u64>) -> StoreResult<()> {
        let mut b = Batch::default();
        match position {
            Some(p) => b.put(Space::Meta, consumer_key(name), p.to_be_bytes().to_vec()),
            None => b.remove(Space::Meta, consumer_key(name)),
        }
        self.write(b)
    }

    /// The version tag `name` of document `doc` names.
    pub(crate) fn tag(&self, doc: u64, name: &str) -> StoreResult<Option<VersionNo>> {
        self.engine
            .get(Space::Meta, &tag_key(doc, name))?
            .map(|b| {
                <[u8; 8]>::try_from(&b[..])
                    .map(|b| VersionNo(u64::from_be_bytes(b)))
                    .map_err(|_| StoreError::corrupt(format!("tag '{name}'"), "bad record"))
            })
            .transpose()
    }

    /// Sets tag `name` of document `doc` to `version`, or removes it (`None`).
    pub(crate) fn set_tag(
        &self,
        doc: u64,
        name: &str,
        version: Option<VersionNo>,
    ) -> StoreResult<()> {
        let mut b = Batch::default();
        match version {
            Some(v) => b.put(
                Space::Meta,
                tag_key(doc, name),
                v.get().to_be_bytes().to_vec(),
            ),
            None => b.remove(Space::Meta, tag_key(doc, name)),
        }
        self.write(b)
    }

    /// Every tag as (document number, name, version), by document then name; of one
    /// document when `doc` is given.
    pub(crate) fn tags(&self, doc: Option<u64>) -> StoreResult<Vec<(u64, String, VersionNo)>> {
        let from = match doc {
            Some(d) => tag_key(d, ""),
            None => TAG_PREFIX.to_vec(),
        };
        let to = match doc.and_then(|d| d.checked_add(1)) {
            Some(next) => Bound::Excluded(tag_key(next, "")),
            // "tag0" is the first key after every "tag/..." key.
            None => Bound::Excluded(b"tag0".to_vec()),
        };
        self.engine
            .range(Space::Meta, Bound::Included(from), to)
            .map(|kv| {
                let (k, v) = kv?;
                let bad = || StoreError::corrupt("tag record", format!("bad key {:?}", &k[..]));
                let rest = k.get(TAG_PREFIX.len()..).ok_or_else(bad)?;
                let num = rest
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(bad)?;
                let name = String::from_utf8_lossy(&rest[8..]).into_owned();
                let version = <[u8; 8]>::try_from(&v[..])
                    .map(|b| VersionNo(u64::from_be_bytes(b)))
                    .map_err(|_| bad())?;
                Ok((num, name, version))
            })
            .collect()
    }

    /// Every consumer with its position, by name.
    pub(crate) fn consumers(&self) -> StoreResult<Vec<(String, u64)>> {
        let from = CONSUMER_PREFIX.to_vec();
        let mut to = CONSUMER_PREFIX.to_vec();
        *to.last_mut().expect("the prefix is not empty") += 1;
        self.engine
            .range(Space::Meta, Bound::Included(from), Bound::Excluded(to))
            .map(|kv| {
                let (k, v) = kv?;
                let name = String::from_utf8_lossy(&k[CONSUMER_PREFIX.len()..]).into_owned();
                let position = <[u8; 8]>::try_from(&v[..])
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::corrupt(format!("consumer '{name}'"), "bad record"))?;
                Ok((name, position))
            })
            .collect()
    }

    /// The retention rule recorded in the store.
    pub(crate) fn retention(&self) -> StoreResult<Option<crate::prune::Retention>> {
        use crate::prune::Retention;
        let Some(b) = self.engine.get(Space::Meta, META_RETENTION)? else {
            return Ok(None);
        };
        let bad = || StoreError::corrupt("retention record", format!("bad bytes {:?}", &b[..]));
        let n = b
            .get(1..9)
            .and_then(|n| <[u8; 8]>::try_from(n).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(bad)?;
        match (b.len(), b[0]) {
            (9, 1) if n > 0 => Ok(Some(Retention::KeepLast(n))),
            (9, 2) => Ok(Some(Retention::Since(n))),
            _ => Err(bad()),
        }
    }

    /// Records the store's retention rule, or removes it (`None`).
    pub(crate) fn set_retention(&self, rule: Option<crate::prune::Retention>) -> StoreResult<()> {
        use crate::prune::Retention;
        let mut b = Batch::default();
        match rule {
            Some(r) => {
                let (kind, n) = match r {
                    Retention::KeepLast(n) => (1u8, n),
                    Retention::Since(ms) => (2u8, ms),
                };
                let mut v = vec![kind];
                v.extend_from_slice(&n.to_be_bytes());
                b.put(Space::Meta, META_RETENTION, v);
            }
            None => b.remove(Space::Meta, META_RETENTION),
        }
        self.write(b)
    }

    /// Applies a batch whose expectations guard an object's re-encoding: `false` when they
    /// failed and nothing was written.
    fn write_guarded(&self, batch: Batch) -> StoreResult<bool> {
        match self.engine.write(batch) {
            Ok(()) => Ok(true),
            Err(WriteError::Conflict) => Ok(false),
            Err(WriteError::Store(e)) => Err(e),
        }
    }

    /// Applies a batch without expectations.
    fn write(&self, batch: Batch) -> StoreResult<()> {
        match self.engine.write(batch) {
            Ok(()) => Ok(()),
            Err(WriteError::Store(e)) => Err(e),
            Err(WriteError::Conflict) => Err(StoreError::corrupt(
                "storage engine",
                "refused a write without expectations as a conflict",
            )),
        }
    }

    pub(crate) fn doc_num(&self, key: &str) -> StoreResult<Option<u64>> {
        if let Some(doc) = lock(&self.names).get(key) {
            return Ok(Some(*doc));
        }
        let found = self
            .engine
            .get(Space::Names, key.as_bytes())?
            .map(|b| decode::<NameRecord>(&b, || format!("name record of '{key}'")).map(|r| r.doc))
            .transpose()?;
        if let Some(doc) = found {
            insert_bounded(&mut lock(&self.names), NAME_MEMO, key.to_owned(), doc);
        }
        Ok(found)
    }

    /// Returns the latest version of a document known by number. A name record and its
    /// document record are written in one batch, so a number without a record is damage.
    pub(crate) fn head(&self, doc: u64) -> StoreResult<Option<VersionNo>> {
        match self.doc_record(doc)? {
            Some(r) => Ok(Some(r.head)),
            None => Err(StoreError::corrupt(
                format!("document record {doc}"),
                "is missing, though a document name points to it",
            )),
        }
    }

    /// The key of the document with number `doc`, when there is one.
    pub(crate) fn doc_key(&self, doc: u64) -> StoreResult<Option<String>> {
        Ok(self.doc_record(doc)?.map(|r| r.key))
    }

    fn doc_record(&self, doc: u64) -> StoreResult<Option<DocRecord>> {
        self.engine
            .get(Space::Docs, &u64_key(doc))?
            .map(|b| decode::<DocRecord>(&b, || format!("document record {doc}")))
            .transpose()
    }

    /// Returns one version record, from the page that holds it. A version at or below the
    /// document's head that no page holds is damage, not absence. (After a document's first
    /// read the head is looked up only when no page holds `v`: a page and the document
    /// record are written together, so a version a page holds is at or below the head.)
    pub(crate) fn version(&self, doc: u64, v: VersionNo) -> StoreResult<Option<VersionRecord>> {
        if v.get() == 0 {
            return Ok(None);
        }
        let beyond_head =
            || -> StoreResult<bool> { Ok(v.get() > self.head(doc)?.map_or(0, VersionNo::get)) };
        // The document record is read (and so checked) at the document's first read in this
        // process; after that only when no page holds `v`.
        if !lock(&self.heads_seen).contains_key(&doc) {
            if beyond_head()? {
                return Ok(None);
            }
            insert_bounded(&mut lock(&self.heads_seen), NAME_MEMO, doc, ());
        }
        let missing = || {
            StoreError::corrupt(
                format!("version {v} of document {doc}"),
                "no version page holds it",
            )
        };
        let Some((k, b)) = self.engine.last_in(
            Space::Versions,
            Bound::Included(pair_key(doc, 0).to_vec()),
            Bound::Included(pair_key(doc, v.get()).to_vec()),
        )?
        else {
            if beyond_head()? {
                return Ok(None);
            }
            // No page at or below `v`: pruned, when the document's pages start above it.
            let pruned = engine::with_prefix(&*self.engine, Space::Versions, &u64_key(doc))
                .next()
                .transpose()?
                .and_then(|(k, _)| read_pair_key(&k))
                .is_some_and(|(_, first)| first > v.get());
            return if pruned { Ok(None) } else { Err(missing()) };
        };
        let first = read_pair_key(&k).map_or(0, |(_, first)| first);
        let memo = lock(&self.pages).get(doc, first, &b);
        let page = match memo {
            // Same key and bytes, so the same page (its key was checked when it was decoded).
            Some(page) if page.first.get() == first => page,
            _ => {
                let page = Arc::new(version_page(doc, &k, &b)?);
                lock(&self.pages).put(doc, first, b, Arc::clone(&page));
                page
            }
        };
        // The page's key is at or below `v` (the range guarantees it) and equals its first.
        let index = usize::try_from(v.get() - page.first.get()).map_err(|_| missing())?;
        match page.records.get(index) {
            Some(r) if r.version == v => Ok(Some(r.clone())),
            Some(r) => Err(StoreError::corrupt(
                format!("version page of document {doc} from {}", page.first),
                format!("holds version {} where {v} belongs", r.version),
            )),
            None if beyond_head()? => Ok(None),
            None => Err(missing()),
        }
    }

    /// Returns every version of a document, oldest first, checking that the pages number them
    /// 1, 2, 3, ... without a gap.
    pub(crate) fn versions(&self, doc: u64) -> StoreResult<Vec<VersionRecord>> {
        let mut out: Vec<VersionRecord> = Vec::new();
        for kv in engine::with_prefix(&*self.engine, Space::Versions, &u64_key(doc)) {
            let (k, b) = kv?;
            let page = version_page(doc, &k, &b)?;
            // Numbered on from the first version kept (1, unless older ones were pruned).
            let first = out.first().map_or(page.first.get(), |r| r.version.get());
            for rec in page.records {
                let expected = first + out.len() as u64;
                if rec.version.get() != expected {
                    return Err(StoreError::corrupt(
                        format!("version {expected} of document {doc}"),
                        format!(
                            "the page from {} holds version {} in its place",
                            page.first, rec.version
                        ),
                    ));
                }
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Returns every document: its number, key and latest version, in number order.
    pub(crate) fn documents(&self) -> StoreResult<Vec<(u64, String, VersionNo)>> {
        engine::all(&*self.engine, Space::Docs)
            .map(|kv| {
                let (k, b) = kv?;
                let num = read_u64_key(&k).ok_or_else(|| {
                    StoreError::corrupt("docs tree", format!("bad key {:?}", &k[..]))
                })?;
                let rec = decode::<DocRecord>(&b, || format!("document record {num}"))?;
                Ok((num, rec.key, rec.head))
            })
            .collect()
    }

    /// Returns feed entries from sequence number `from`, at most `limit`.
    pub(crate) fn feed(&self, from: u64, limit: usize) -> StoreResult<Vec<(u64, u64, VersionNo)>> {
        // Start at the page that holds `from` (the last page starting at or before it).
        let start: Vec<u8> = match self.engine.last_in(
            Space::Feed,
            Bound::Unbounded,
            Bound::Included(u64_key(from).to_vec()),
        )? {
            Some((k, _)) => k.to_vec(),
            None => u64_key(0).to_vec(),
        };
        let mut out = Vec::new();
        for kv in self
            .engine
            .range(Space::Feed, Bound::Included(start), Bound::Unbounded)
        {
            let (k, b) = kv?;
            let page = decode::<FeedPage>(&b, || format!("feed page at key {:?}", &k[..]))?;
            if read_u64_key(&k) != Some(page.first) {
                return Err(StoreError::corrupt(
                    format!("change feed page at key {:02x?}", &k[..]),
                    format!("says it starts at sequence number {}", page.first),
                ));
            }
            for (i, e) in page.entries.iter().enumerate() {
                let seq = page.first.checked_add(i as u64).ok_or_else(|| {
                    StoreError::corrupt("change feed", "sequence numbers overflow")
                })?;
                if seq >= from && out.len() < limit {
                    out.push((seq, e.doc, e.version));
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Records new versions in one atomic batch: all of them or none. The batch expects the
    /// counters record it was computed from, so a commit that raced another writer of the
    /// same engine is computed again rather than applied over it.
    ///
    /// On a shared engine, `epoch` is the maintenance epoch read before the commit's objects
    /// were written (`lease.rs`): the batch expects it too, and the commit stops with
    /// [`CommitAbort::Maintenance`] when it changed.
    pub(crate) fn commit(
        &self,
        puts: &[NewVersion<'_>],
        epoch: Option<&Epoch>,
    ) -> Result<Vec<VersionRecord>, CommitAbort> {
        let _gate = lock(&self.commit_gate);
        loop {
            if let Some(e) = epoch
                && !self.epoch_holds(e)?
            {
                return Err(CommitAbort::Maintenance);
            }
            let counters = self.engine.get(Space::Meta, META_COUNTERS)?;
            let (mut batch, out) = self.plan_commit(puts, counters.as_ref())?;
            batch.expect(Space::Meta, META_COUNTERS, counters.as_deref());
            if let Some(e) = epoch {
                batch.expect(Space::Meta, lease::META_MAINTENANCE, e.0.as_deref());
            }
            // A bulk load's records become a run of their own, never passing through the
            // engine's log (where they would stay as dead bytes once merged into a run).
            batch.direct = puts.len() >= crate::reverse::BULK_BATCH;
            match self.engine.write(batch) {
                Ok(()) => return Ok(out),
                Err(WriteError::Conflict) => {}
                Err(WriteError::Store(e)) => return Err(CommitAbort::Corrupt(e)),
            }
        }
    }

    /// Computes the records of a commit from the counters record `counters`.
    fn plan_commit(
        &self,
        puts: &[NewVersion<'_>],
        counters: Option<&Value>,
    ) -> Result<(Batch, Vec<VersionRecord>), CommitAbort> {
        let mut counters: Counters = match counters {
            Some(b) => decode(b, || "counters record".to_owned())?,
            None => return Err(StoreError::corrupt("counters record", "is missing").into()),
        };
        let mut o = Overlay {
            kv: self,
            writes: HashMap::new(),
            order: Vec::new(),
        };
        let mut out = Vec::with_capacity(puts.len());
        for (index, put) in puts.iter().enumerate() {
            let name_key = put.key.as_bytes();
            let doc = match o.get::<NameRecord>(Space::Names, name_key, || {
                format!("name record of '{}'", put.key)
            })? {
                Some(r) => r.doc,
                None => {
                    let doc = counters.next_doc;
                    counters.next_doc += 1;
                    o.put(Space::Names, name_key, &NameRecord { doc });
                    doc
                }
            };
            let doc_rec: Option<DocRecord> = o.get(Space::Docs, &u64_key(doc), || {
                format!("document record {doc}")
            })?;
            let head = doc_rec.as_ref().map(|r| r.head);
            if let Some(expected) = put.expected {
                let actual = head.map_or(0, VersionNo::get);
                if expected != actual {
                    return Err(CommitAbort::Conflict {
                        index,
                        expected,
                        actual,
                    });
                }
            }
            let version = head.map_or(VersionNo::FIRST, VersionNo::next);
            // The document's newest version page (it holds the head's record), or a new one.
            let mut page = match &doc_rec {
                Some(r) => o.require(Space::Versions, &pair_key(doc, r.page.get()), || {
                    format!("newest version page of document {doc}")
                })?,
                None => VersionPage {
                    first: version,
                    records: Vec::new(),
                },
            };
            let newest_ms = page.records.last().map_or(0, |r| r.created_at_ms);
            let created_at_ms = match put.time {
                VersionTime::Now(now) => now.max(newest_ms),
                VersionTime::Given(t) if t < newest_ms => {
                    return Err(CommitAbort::TimeGoesBack {
                        index,
                        time_ms: t,
                        newest_ms,
                    });
                }
                VersionTime::Given(t) => t,
            };
            let seq = counters.next_seq;
            counters.next_seq += 1;
            let rec = VersionRecord {
                version,
                hash: put.hash,
                size: put.size,
                created_at_ms,
                seq,
                meta: put.meta.clone(),
            };
            if page_is_full(page.records.len(), &page, &rec) {
                page = VersionPage {
                    first: version,
                    records: Vec::new(),
                };
            }
            page.records.push(rec.clone());
            o.put(Space::Versions, &pair_key(doc, page.first.get()), &page);
            o.put(
                Space::Docs,
                &u64_key(doc),
                &DocRecord {
                    key: put.key.to_owned(),
                    head: version,
                    page: page.first,
                },
            );
            // The same for the change feed.
            let entry = FeedRecord { doc, version };
            let mut fpage = if counters.feed_page == 0 {
                FeedPage {
                    first: seq,
                    entries: Vec::new(),
                }
            } else {
                o.require(Space::Feed, &u64_key(counters.feed_page), || {
                    "newest feed page".to_owned()
                })?
            };
            if page_is_full(fpage.entries.len(), &fpage, &entry) {
                fpage = FeedPage {
                    first: seq,
                    entries: Vec::new(),
                };
            }
            fpage.entries.push(entry);
            counters.feed_page = fpage.first;
            o.put(Space::Feed, &u64_key(fpage.first), &fpage);
            out.push(rec);
        }
        o.put(Space::Meta, META_COUNTERS, &counters);
        let mut batch = o.into_batch();
        self.unmark_pending(&mut batch, puts.iter().map(|p| p.hash));
        Ok((batch, out))
    }

    /// Copies every space except objects and packs into `dest` verbatim: names, documents,
    /// versions, the change feed and the meta records (format, policy, counters).
    pub(crate) fn copy_records_to(&self, dest: &Self) -> StoreResult<()> {
        // Large batches across the spaces: each becomes a record run of its own in the copy
        // instead of passing through the engine's log (however few records a small store has).
        let mut batch = Batch::direct();
        for space in [
            Space::Names,
            Space::Docs,
            Space::Versions,
            Space::Feed,
            Space::Meta,
        ] {
            for kv in engine::all(&*self.engine, space) {
                let (k, v) = kv?;
                // The copy starts without this store's maintenance lease (held now).
                if space == Space::Meta && *k == *lease::META_MAINTENANCE {
                    continue;
                }
                batch.put(space, k.to_vec(), v.to_vec());
                if batch.changes.len() == COPY_BATCH {
                    dest.write(std::mem::replace(&mut batch, Batch::direct()))?;
                }
            }
        }
        if !batch.is_empty() {
            dest.write(batch)?;
        }
        // The copy is written in this build's format, whatever the source's, and packs are
        // numbered afresh.
        let mut batch = format_batch();
        batch.remove(Space::Meta, META_PACKS);
        dest.write(batch)
    }
}

/// A batch that records this build's store format.
fn format_batch() -> Batch {
    let mut batch = Batch::default();
    batch.put(
        Space::Meta,
        META_FORMAT,
        encode_record(&FormatRecord {
            format: STORE_FORMAT,
        }),
    );
    batch
}

/// Returns `true` when adding `item` would take a page of `len` entries past [`PAGE_LIMIT`].
fn page_is_full(len: usize, page: &impl serde::Serialize, item: &impl serde::Serialize) -> bool {
    len > 0 && encoded_len(page) + encoded_len(item) > PAGE_LIMIT
}

/// Decodes a version page and checks it against its key `doc ‖ first version`.
fn version_page(doc: u64, key: &[u8], bytes: &[u8]) -> StoreResult<VersionPage> {
    let what = || format!("version page of document {doc} at key {key:02x?}");
    let (key_doc, key_first) =
        read_pair_key(key).ok_or_else(|| StoreError::corrupt(what(), "bad key"))?;
    let page = decode::<VersionPage>(bytes, what)?;
    if key_doc != doc || page.first.get() != key_first || page.first.get() == 0 {
        return Err(StoreError::corrupt(
            format!("version page of document {doc} from version {key_first}"),
            format!("says it starts at version {}", page.first),
        ));
    }
    Ok(page)
}

fn decode<R: Record>(bytes: &[u8], what: impl FnOnce() -> String) -> StoreResult<R> {
    decode_record::<R>(bytes).map_err(|e| StoreError::decode(what(), e))
}

/// The record decoders on arbitrary bytes (for fuzzing: `fuzz/`, and the proptests below).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_records(bytes: &[u8]) {
    let what = || "fuzzed record".to_owned();
    let _ = decode::<VersionPage>(bytes, what);
    let _ = decode::<FeedPage>(bytes, what);
    let _ = decode::<DocRecord>(bytes, what);
    let _ = decode::<NameRecord>(bytes, what);
    let _ = decode::<Counters>(bytes, what);
    let _ = decode::<PackedRef>(bytes, what);
    let _ = decode::<PackCounter>(bytes, what);
    let _ = decode::<FormatRecord>(bytes, what);
    let _ = decode::<VersionRecord>(bytes, what);
    let _ = decode::<ObjectHeader>(bytes, what);
    let _ = decode::<Policy>(bytes, what);
    let key = bytes.get(..16).unwrap_or(bytes);
    let _ = version_page(7, key, bytes);
    let _ = objects::split_object_record(&ContentHash::of(key), bytes);
}

/// The pack reader on arbitrary bytes: a 32-byte id, a one-byte length, an index entry of
/// that length, then the pack.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_pack(bytes: &[u8]) {
    let (Some(id), Some(&n)) = (bytes.get(..32), bytes.get(32)) else {
        return;
    };
    let hash = ContentHash::from_bytes(id.try_into().expect("32 bytes"));
    let rest = &bytes[33..];
    let (entry, pack) = rest.split_at(usize::from(n).min(rest.len()));
    if let Ok(at) = decode::<PackedRef>(entry, || "fuzzed entry".to_owned())
        && let Ok(object) = objects::in_pack(&hash, &at, &Value::shared(Arc::from(pack)))
    {
        // What the read path does next with a packed object's payload.
        let _ = strata_diff::delta::decompress(&object.inline, 1 << 20);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Every record decoder refuses arbitrary bytes with an error, never a panic (issue
        /// 10: the stable counterpart of the fuzz targets).
        #[test]
        fn record_decoders_never_panic_on_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            key in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            fuzz_records(&bytes);
            let _ = version_page(7, &key, &bytes);
            let mut pack_input = key.clone();
            pack_input.resize(32, 0);
            pack_input.extend_from_slice(&bytes);
            fuzz_pack(&pack_input);
        }

        /// A valid record with bytes changed anywhere decodes to an error or to some record,
        /// never a panic.
        #[test]
        fn changed_record_bytes_never_panic(at in any::<prop::sample::Index>(), mask in 1u8..) {
            let page = VersionPage {
                first: VersionNo(3),
                records: vec![VersionRecord {
                    version: VersionNo(3),
                    hash: ContentHash::of(b"x"),
                    size: 1,
                    created_at_ms: 5,
                    seq: 9,
                    meta: strata_core::Metadata::message("m"),
                }],
            };
            let mut bytes = encode_record(&page);
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
            let _ = decode::<VersionPage>(&bytes, || "changed page".to_owned());
            let _ = version_page(1, &pair_key(1, 3), &bytes);
        }
    }
}
