//! The write path: hash → dedupe → choose a base → policy → encode → write object → commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_core::codec::encoded_len;
use strata_core::{ContentHash, DocId, Metadata, VersionNo, VersionRecord};

use crate::encode::{Base, FullSizeEstimate};
use crate::error::{StoreError, StoreResult};
use crate::kv::{CommitAbort, Epoch, NewVersion, VersionTime};
use crate::read::{Keep, Shared, lock};
use crate::store::Store;

/// The largest encoded metadata a version may carry.
pub const MAX_METADATA_LEN: usize = 4 * 1024;

/// What to record with a put besides the content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Author, message and key/values stored with the version.
    pub meta: Metadata,
    /// Optimistic concurrency: the version the document must be at (0: it must not exist
    /// yet). When it has moved on, the put fails with [`StoreError::Conflict`] and writes
    /// nothing.
    pub expected: Option<u64>,
    /// When the version was made, in milliseconds since the Unix epoch (UTC): a history
    /// imported from elsewhere keeps its times. `None`: now. A document's versions never go
    /// back in time: an explicit time before the document's newest version's is refused with
    /// [`StoreError::TimeGoesBack`], and "now" is taken as that version's time when the clock
    /// is behind it.
    pub time_ms: Option<u64>,
}

impl PutOptions {
    /// Sets the message.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.meta.message = Some(message.into());
        self
    }

    /// Sets the author.
    #[must_use]
    pub fn author(mut self, author: impl Into<String>) -> Self {
        self.meta.author = Some(author.into());
        self
    }

    /// Sets the version the document must be at now, as a record's `version` gives it;
    /// [`PutOptions::expect_new`] for "must not exist yet".
    ///
    /// # Example
    /// ```
    /// use strata_storage::{DocId, PutOptions, Store, StoreError};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("cart")?;
    /// let first = store.put_with(&doc, b"1 apple\n", PutOptions::default().expect_new())?;
    /// store.put_with(&doc, b"2 apples\n", PutOptions::default().expect(first.version))?;
    /// // A writer that still believes the document is at version 1 gets a conflict.
    /// let stale = store.put_with(&doc, b"1 pear\n", PutOptions::default().expect(first.version));
    /// assert!(matches!(stale, Err(StoreError::Conflict { actual: 2, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn expect(mut self, version: VersionNo) -> Self {
        self.expected = Some(version.get());
        self
    }

    /// Requires that the document does not exist yet (the put makes its version 1).
    #[must_use]
    pub fn expect_new(mut self) -> Self {
        self.expected = Some(0);
        self
    }

    /// Sets when the version was made, in milliseconds since the Unix epoch (see
    /// [`PutOptions::time_ms`]).
    ///
    /// # Example
    /// ```
    /// use strata_storage::{At, DocId, PutOptions, Store, StoreError};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("changelog")?;
    /// let day = 86_400_000;
    /// store.put_with(&doc, b"v1\n", PutOptions::default().time(20_000 * day))?;
    /// store.put_with(&doc, b"v2\n", PutOptions::default().time(20_010 * day))?;
    /// // The version that was newest at a moment:
    /// assert_eq!(store.get(&doc, At::Time(20_005 * day))?.unwrap(), b"v1\n");
    /// assert!(store.get(&doc, At::Time(19_999 * day))?.is_none());
    /// // Times within a document never go back.
    /// let back = store.put_with(&doc, b"v3\n", PutOptions::default().time(20_001 * day));
    /// assert!(matches!(back, Err(StoreError::TimeGoesBack { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn time(mut self, ms: u64) -> Self {
        self.time_ms = Some(ms);
        self
    }
}

/// Several puts committed together: one transaction, one flush.
///
/// Under forward policies each object is written as its put is added (content-addressed, so
/// this is idempotent); under reverse policies (the default) the batch holds the contents and
/// encodes them at commit, when the whole sequence is known. The versions appear only when
/// [`WriteBatch::commit`] succeeds, all at once. A batch that is dropped without commit leaves
/// at most unreferenced objects, which [`Store::gc`] removes.
///
/// ```
/// use strata_storage::{PutOptions, Store};
/// use strata_storage::DocId;
///
/// let store = Store::open_temporary()?;
/// let doc = DocId::new("log")?;
/// let mut batch = store.batch();
/// for i in 0..10 {
///     batch.put(&doc, format!("entry {i}\n").as_bytes(), PutOptions::default())?;
/// }
/// let records = batch.commit()?;
/// assert_eq!(records.last().unwrap().version.get(), 10);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct WriteBatch<'s> {
    pub(crate) store: &'s Store,
    puts: Vec<Pending>,
    /// Per document: the head seen when the batch first touched it, and the hashes of the
    /// versions the batch adds after it.
    docs: HashMap<DocId, (Option<VersionNo>, Vec<ContentHash>)>,
    /// Per document: what forward-delta puts learned of its compressed full size.
    estimates: HashMap<DocId, FullSizeEstimate>,
    /// Per document, once a put gave a time or followed one: the earliest time its next put
    /// may have (the newest version's, or a time an earlier put of the batch gave or will
    /// get). Puts without a time need no lookup for it: the commit dates them.
    floors: HashMap<DocId, u64>,
    /// Keeps `gc` out while this batch has objects that no version references yet.
    _gate: std::sync::RwLockReadGuard<'s, ()>,
    /// On a shared engine, the maintenance epoch read before the batch wrote its first object
    /// (`kv/lease.rs`): `None` until then.
    epoch: Option<Option<Epoch>>,
    /// Objects marked as this batch's until its commit (a shared engine's, `kv/lease.rs`):
    /// a batch dropped or failed removes the marks, so `gc` need not wait for them to expire.
    marked: Vec<ContentHash>,
}

impl Drop for WriteBatch<'_> {
    fn drop(&mut self) {
        if !self.marked.is_empty() {
            // Best effort: a mark left behind only makes `gc` spare an object for an hour.
            let _ = self.store.inner.kv.drop_pending_marks(&self.marked);
        }
    }
}

#[derive(Debug)]
struct Pending {
    doc: DocId,
    hash: ContentHash,
    size: u64,
    options: PutOptions,
    /// Under a reverse policy, objects are encoded at commit: the content waits here.
    content: Option<Shared>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl<'s> WriteBatch<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        let gate = store
            .inner
            .write_gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Self {
            store,
            puts: Vec::new(),
            docs: HashMap::new(),
            estimates: HashMap::new(),
            floors: HashMap::new(),
            _gate: gate,
            epoch: None,
            marked: Vec::new(),
        }
    }

    /// Adds a put to the batch (writing its object now under forward policies, at commit under
    /// reverse ones). The version is recorded at commit.
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] or [`StoreError::MetadataTooLarge`] for oversized input,
    /// [`StoreError::Conflict`] when `options.expected` does not match, and read or engine
    /// errors from encoding against the delta base.
    pub fn put(&mut self, doc: &DocId, content: &[u8], options: PutOptions) -> StoreResult<()> {
        self.store.check_put(doc, content, &options.meta)?;
        self.put_unchecked(doc, content, options)
    }

    /// [`WriteBatch::put`] without the check of reserved metadata keys (for deletions).
    pub(crate) fn put_unchecked(
        &mut self,
        doc: &DocId,
        content: &[u8],
        options: PutOptions,
    ) -> StoreResult<()> {
        let store = self.store;
        self.read_epoch()?;
        if !self.docs.contains_key(doc) {
            let head = store.head(doc)?;
            self.docs.insert(doc.clone(), (head, Vec::new()));
        }
        let (head, added) = &self.docs[doc];
        let current = head.map_or(0, VersionNo::get) + added.len() as u64;
        if let Some(expected) = options.expected
            && expected != current
        {
            return Err(StoreError::Conflict {
                doc: doc.clone(),
                expected,
                actual: current,
            });
        }
        // A put dated before the document's newest version is refused before its object is
        // written (the commit checks again, against what another writer may have added).
        if let Some(time) = options.time_ms {
            let floor = match self.floors.get(doc) {
                Some(f) => *f,
                None => store
                    .record(doc, crate::store::At::Latest)?
                    .map_or(0, |r| r.created_at_ms),
            };
            if time < floor {
                return Err(StoreError::TimeGoesBack {
                    doc: doc.clone(),
                    time_ms: time,
                    newest_ms: floor,
                });
            }
            self.floors.insert(doc.clone(), time);
        } else if let Some(floor) = self.floors.get_mut(doc) {
            *floor = now_ms().max(*floor);
        }
        let next = VersionNo(current + 1);
        let hash = ContentHash::of(content);
        // Reverse policies encode at commit, when the batch's whole sequence is known.
        let pending_content = if store.inner.policy.reverse() {
            Some(Arc::new(content.to_vec()))
        } else {
            let base = match store.inner.policy.base_for(next) {
                Some(v) if v.get() > head.map_or(0, VersionNo::get) => {
                    let idx = (v.get() - head.map_or(0, VersionNo::get) - 1) as usize;
                    added.get(idx).copied()
                }
                Some(v) => store.version_record(doc, v)?.map(|r| r.hash),
                None => None,
            };
            let custom = store.inner.options.custom_policy.is_some();
            self.mark(&[hash])?;
            let estimate = self
                .estimates
                .entry(doc.clone())
                .or_insert_with(|| FullSizeEstimate::new(!custom));
            store.write_object(&hash, content, next, base, estimate)?;
            None
        };
        let entry = self.docs.get_mut(doc).expect("entry inserted above");
        entry.1.push(hash);
        self.puts.push(Pending {
            doc: doc.clone(),
            hash,
            size: content.len() as u64,
            options,
            content: pending_content,
        });
        Ok(())
    }

    /// Returns how many puts the batch holds.
    pub fn len(&self) -> usize {
        self.puts.len()
    }

    /// Returns `true` when the batch holds no puts.
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty()
    }

    /// Records every put of the batch in one transaction, then flushes once. Returns the new
    /// version records in the order the puts were added. When it returns `Ok`, every version is
    /// durable.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another writer moved a document that a put expected at a
    /// given version (then no version of the batch is recorded); engine errors.
    pub fn commit(self) -> StoreResult<Vec<VersionRecord>> {
        let store = self.store;
        // A forward-policy batch wrote every object loose; fold them once the batch's gate is
        // released.
        let bulk = !store.inner.policy.reverse() && self.puts.len() >= crate::reverse::BULK_BATCH;
        let docs: Vec<DocId> = self.docs.keys().cloned().collect();
        let records = self.commit_with(true)?;
        store.fold_if_due(&records, bulk)?;
        store.apply_retention(&docs)?;
        Ok(records)
    }

    /// The maintenance epoch the batch read (a shared engine's).
    pub(crate) fn epoch(&self) -> Option<&Epoch> {
        self.epoch.as_ref().and_then(Option::as_ref)
    }

    /// On a shared engine, marks `hashes` as objects this batch is about to write, so that a
    /// `gc` in another process spares them until the commit (`kv/lease.rs`); waits while a
    /// maintenance runs.
    fn mark(&mut self, hashes: &[ContentHash]) -> StoreResult<()> {
        let inner = &self.store.inner;
        loop {
            self.read_epoch()?;
            let Some(epoch) = self.epoch().cloned() else {
                return Ok(());
            };
            if hashes.is_empty() || inner.kv.mark_pending(hashes, &epoch)? {
                self.marked.extend_from_slice(hashes);
                return Ok(());
            }
            self.epoch = Some(inner.kv.settled_epoch(inner.options.lock_wait)?);
        }
    }

    /// Reads the maintenance epoch once, before the batch writes any object.
    fn read_epoch(&mut self) -> StoreResult<()> {
        if self.epoch.is_none() {
            let inner = &self.store.inner;
            self.epoch = Some(inner.kv.settled_epoch(inner.options.lock_wait)?);
        }
        Ok(())
    }

    pub(crate) fn commit_with(mut self, flush: bool) -> StoreResult<Vec<VersionRecord>> {
        self.read_epoch()?;
        if self.store.inner.policy.reverse() {
            let hashes: Vec<ContentHash> = self.pending().map(|(_, _, h)| h).collect();
            self.mark(&hashes)?;
            self.write_reverse()?;
        }
        let epoch = self.epoch.clone().flatten();
        let records = self.store.commit_puts(&self.puts, epoch)?;
        // The commit removed the marks.
        self.marked.clear();
        if flush {
            self.store.inner.kv.flush()?;
        }
        Ok(records)
    }

    /// The batch's puts as (document, content, id), for the reverse write path.
    pub(crate) fn pending(&self) -> impl Iterator<Item = (&DocId, &Shared, ContentHash)> {
        self.puts
            .iter()
            .filter_map(|p| p.content.as_ref().map(|c| (&p.doc, c, p.hash)))
    }

    /// The head the batch saw when it first touched `doc`.
    pub(crate) fn head_of(&self, doc: &DocId) -> Option<VersionNo> {
        self.docs.get(doc).and_then(|(head, _)| *head)
    }
}

impl Store {
    pub(crate) fn check_put(
        &self,
        doc: &DocId,
        content: &[u8],
        meta: &Metadata,
    ) -> StoreResult<()> {
        let limit = self.inner.options.max_content_len;
        if content.len() as u64 > limit {
            return Err(StoreError::TooLarge {
                doc: doc.clone(),
                size: content.len() as u64,
                limit,
            });
        }
        if let Some((key, _)) = meta.extra.iter().find(|(k, _)| k.starts_with("strata:")) {
            return Err(StoreError::ReservedMetadata {
                doc: doc.clone(),
                key: key.clone(),
            });
        }
        let meta_len = encoded_len(meta);
        if meta_len > MAX_METADATA_LEN {
            return Err(StoreError::MetadataTooLarge {
                doc: doc.clone(),
                size: meta_len,
                limit: MAX_METADATA_LEN,
            });
        }
        Ok(())
    }

    /// Writes the object for `content` unless it exists, as a delta on `base` when the policy
    /// says so. `estimate` spares compressing the content in full when the delta is clearly
    /// acceptable (see [`FullSizeEstimate`]).
    pub(crate) fn write_object(
        &self,
        hash: &ContentHash,
        content: &[u8],
        version: VersionNo,
        base: Option<ContentHash>,
        estimate: &mut FullSizeEstimate,
    ) -> StoreResult<()> {
        let kv = &self.inner.kv;
        if kv.has_object(hash)? {
            return Ok(());
        }
        let level = self.inner.options.level;
        let policy = &*self.inner.policy;
        let mut deltas = Vec::new();
        if let Some(base_hash) = base
            && let Some(base_header) = kv.object_header(&base_hash)?
        {
            let base_content = self.read_object(&base_hash)?;
            let d = self.inner.options.encode_delta(&base_content, content);
            deltas.push((Base::of(base_hash, &base_header), d));
        }
        let plan = estimate.plan(policy, version, content, level, deltas);
        kv.put_object(hash, &plan.header, &plan.payload)?;
        lock(&self.inner.cache).insert(
            *hash,
            Arc::new(content.to_vec()),
            Keep::Probation,
            plan.header.depth(),
        );
        Ok(())
    }

    /// Records `puts`, whose objects were written under the maintenance epoch `epoch` (a
    /// shared engine's). When another process's maintenance ran since, waits for it to end
    /// and checks that every object the puts name still reads back whole before committing
    /// under the new epoch.
    fn commit_puts(
        &self,
        puts: &[Pending],
        mut epoch: Option<Epoch>,
    ) -> StoreResult<Vec<VersionRecord>> {
        loop {
            match self.commit_once(puts, epoch.as_ref()) {
                Err(None) => {
                    epoch = self.inner.kv.settled_epoch(self.inner.options.lock_wait)?;
                    for p in puts {
                        // From the engine, not the cache of contents (which holds the puts').
                        let fresh = std::sync::Mutex::new(crate::read::ContentCache::new(0));
                        let stored = crate::read::rebuild(
                            &self.inner.kv,
                            &fresh,
                            &p.hash,
                            self.read_limit(),
                            false,
                            crate::read::Keeping::CHECKPOINTS,
                        );
                        if stored.is_err() {
                            return Err(StoreError::Busy {
                                reason: format!(
                                    "maintenance (gc or prune) in another process removed what \
                                     the new version of '{}' needed while it was written; \
                                     nothing was written: put it again",
                                    p.doc
                                ),
                            });
                        }
                    }
                }
                Err(Some(e)) => return Err(e),
                Ok(records) => return Ok(records),
            }
        }
    }

    /// One try of [`Store::commit_puts`]: `Err(None)` when the maintenance epoch changed.
    fn commit_once(
        &self,
        puts: &[Pending],
        epoch: Option<&Epoch>,
    ) -> Result<Vec<VersionRecord>, Option<StoreError>> {
        let now = now_ms();
        let new: Vec<NewVersion<'_>> = puts
            .iter()
            .map(|p| NewVersion {
                key: p.doc.as_str(),
                expected: p.options.expected,
                hash: p.hash,
                size: p.size,
                time: p
                    .options
                    .time_ms
                    .map_or(VersionTime::Now(now), VersionTime::Given),
                meta: &p.options.meta,
            })
            .collect();
        let committed = self.inner.kv.commit(&new, epoch);
        if committed.is_ok() {
            let (count, wake) = &*self.inner.commits;
            *lock(count) += 1;
            wake.notify_all();
        }
        committed.map_err(|abort| match abort {
            CommitAbort::Conflict {
                index,
                expected,
                actual,
            } => Some(StoreError::Conflict {
                doc: puts[index].doc.clone(),
                expected,
                actual,
            }),
            CommitAbort::TimeGoesBack {
                index,
                time_ms,
                newest_ms,
            } => Some(StoreError::TimeGoesBack {
                doc: puts[index].doc.clone(),
                time_ms,
                newest_ms,
            }),
            CommitAbort::Corrupt(e) => Some(e),
            CommitAbort::Maintenance => None,
        })
    }
}
