//! The public `Store` API. It delegates: `write` (put path), `read` (get path), `verify`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use strata_core::{ContentHash, DocId, ObjectHeader, SnapshotPolicy, VersionNo, VersionRecord};
use strata_diff::{DiffOptions, DocDiff};

use crate::engine::memory::{MemoryClaim, MemoryEngine};
use crate::error::{OpenError, StoreError, StoreResult};
use crate::kv::{Kv, KvConfig, MEMORY_PATH};
use crate::options::{Durability, StoreOptions};
use crate::read::{Content, ContentCache, Keeping, Shared, lock, rebuild};
use crate::write::{PutOptions, WriteBatch};

/// Reads larger than this are refused as corrupt even if the options allow larger puts later.
const READ_FLOOR: u64 = 1 << 30;

/// A versioned document store backed by sled.
///
/// Cheap to clone; all methods take `&self` and are safe to call from several threads. One
/// process at a time may hold a store open.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) kv: Kv,
    pub(crate) policy: Arc<dyn SnapshotPolicy>,
    pub(crate) policy_name: String,
    pub(crate) options: StoreOptions,
    pub(crate) cache: Mutex<ContentCache>,
    /// Puts hold it shared from object write to commit; `gc` holds it exclusively.
    pub(crate) write_gate: RwLock<()>,
    /// Reads of objects hold it shared; rewriting an object in place holds it exclusively, so
    /// no reader sees a header from one encoding and a payload from another.
    pub(crate) object_gate: RwLock<()>,
    /// What was repaired at open, one line each.
    repairs: Vec<String>,
    /// The retention rule applied after every commit (see [`StoreOptions::retention`]).
    pub(crate) retention: RwLock<Option<crate::prune::Retention>>,
    /// Bumped after every commit; subscribers wait on it (see [`Store::subscribe`]).
    pub(crate) commits: Arc<(Mutex<u64>, std::sync::Condvar)>,
    /// Started with the first subscription: on a shared engine, the engine wakes subscribers
    /// for the commits of other processes too.
    watching: std::sync::Once,
    /// The canonical path registered in [`OPEN_IN_PROCESS`], removed on drop.
    registered: Option<PathBuf>,
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// The memory engine this store holds open, released on drop.
    _claim: Option<MemoryClaim>,
}

/// A maintenance in progress ([`Store::maintenance`]); dropping it gives the lease back.
pub(crate) struct Maintenance<'s> {
    store: &'s Store,
    _gate: std::sync::RwLockWriteGuard<'s, ()>,
}

impl Drop for Maintenance<'_> {
    fn drop(&mut self) {
        // A lease that another process broke already failed this maintenance's writes (its
        // fence), and that failure was reported; giving back such a lease changes nothing.
        let _ = self.store.inner.kv.end_maintenance();
    }
}

/// What opening a store's engine gave, besides the engine.
struct Opened {
    repairs: Vec<String>,
    registered: Option<PathBuf>,
    temp: Option<tempfile::TempDir>,
    claim: Option<MemoryClaim>,
}

/// The stores open in this process, by canonical path, so that a second open of one says
/// what it is rather than "in use by another process".
static OPEN_IN_PROCESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register_open(path: &Path) -> Option<PathBuf> {
    let canonical = path.canonicalize().ok()?;
    lock(&OPEN_IN_PROCESS).push(canonical.clone());
    Some(canonical)
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(p) = &self.registered {
            let mut open = lock(&OPEN_IN_PROCESS);
            if let Some(i) = open.iter().position(|o| o == p) {
                open.swap_remove(i);
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("policy", &self.inner.policy_name)
            .finish_non_exhaustive()
    }
}

/// Which version of a document to read.
///
/// ```
/// use strata_storage::{At, ContentHash, DocId, Store, VersionNo};
///
/// let store = Store::open_temporary()?;
/// let doc = DocId::new("notes")?;
/// for text in ["v1\n", "v2\n", "v3\n"] {
///     store.put(&doc, text.as_bytes())?;
/// }
/// let read = |at| store.get(&doc, at);
/// assert_eq!(read(At::Latest)?.unwrap(), b"v3\n");
/// assert_eq!(read(At::Version(VersionNo(2)))?.unwrap(), b"v2\n");
/// assert_eq!(read(At::Back(2))?.unwrap(), b"v1\n");
/// assert_eq!(read(At::Hash(ContentHash::of(b"v2\n")))?.unwrap(), b"v2\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The newest version.
    Latest,
    /// A version by number.
    Version(VersionNo),
    /// `n` versions before the newest (`Back(0)` is the newest).
    Back(u64),
    /// The newest version whose content has this id.
    Hash(ContentHash),
    /// The version that was the newest at this moment (ms since the Unix epoch, UTC): the
    /// last one written at or before it. `None` from a read when the document did not exist
    /// yet then.
    Time(u64),
}

/// A document and its newest version, as listed by [`Store::documents`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocEntry {
    /// The document's key.
    pub doc: DocId,
    /// Its newest version.
    pub latest: VersionNo,
    /// Whether its newest version is a deletion ([`Store::delete`]).
    pub deleted: bool,
}

/// The longest consumer name, in bytes.
pub const MAX_CONSUMER_NAME: usize = 200;

/// The longest tag name, in bytes.
pub const MAX_TAG_NAME: usize = 100;

fn check_tag_name(name: &str) -> StoreResult<()> {
    let ok = name.len() <= MAX_TAG_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !(name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Tag {
            reason: format!(
                "'{}' is not a tag name: start with a letter, then letters, digits, '.', '_' or '-' (at most {MAX_TAG_NAME}, not 64 hex digits)",
                name.escape_debug()
            ),
        })
    }
}

fn check_consumer_name(name: &str) -> StoreResult<()> {
    if name.is_empty() || name.len() > MAX_CONSUMER_NAME || name.chars().any(char::is_control) {
        return Err(StoreError::BadConsumer {
            reason: format!(
                "'{}' is not a consumer name: give 1 to {MAX_CONSUMER_NAME} bytes without control characters",
                name.escape_debug()
            ),
        });
    }
    Ok(())
}

/// One entry of the change feed: the version written with sequence number `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The store-wide sequence number.
    pub seq: u64,
    /// The document written.
    pub doc: DocId,
    /// The version written.
    pub version: VersionNo,
}

impl Store {
    /// Opens the store at `path`, creating it if it does not exist, with default options.
    ///
    /// `path` is a directory, or a store on a NATS JetStream cluster given as
    /// `nats://HOST:PORT[,HOST:PORT...][/NAME][?replicas=N]` (`docs/scale-out.md`): the same
    /// store, which other processes on other hosts may use at the same time.
    ///
    /// # Errors
    /// [`OpenError`] when the path is not a store, another process holds it, its format is
    /// unsupported, or the engine fails.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens the store at `path` with `options`.
    ///
    /// # Errors
    /// As [`Store::open`]; also [`OpenError::Missing`] when the store does not exist and
    /// `options.create(false)` was given.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, OpenError> {
        Self::open_inner(path.as_ref(), options, None)
    }

    /// Opens a store in a new temporary directory, removed when the last clone is dropped.
    /// For tests and examples.
    ///
    /// # Errors
    /// [`OpenError`] when the temporary directory or the engine cannot be created.
    pub fn open_temporary() -> Result<Self, OpenError> {
        Self::open_temporary_with(StoreOptions::default())
    }

    /// As [`Store::open_temporary`], with `options`.
    ///
    /// # Errors
    /// As [`Store::open_temporary`].
    pub fn open_temporary_with(options: StoreOptions) -> Result<Self, OpenError> {
        let dir = tempfile::tempdir().map_err(|e| OpenError::Backend {
            path: std::env::temp_dir(),
            source: crate::error::BackendError::new(e),
        })?;
        let path = dir.path().join("store");
        Self::open_inner(&path, options, Some(dir))
    }

    /// Opens a store kept in `engine`'s memory (creating it when the engine is empty). Nothing
    /// is durable; a store opened again on the same engine (or a clone of it) finds every
    /// version written before. For tests, and for programs that want strata's API without
    /// a disk.
    ///
    /// ```
    /// use strata_storage::{At, DocId, MemoryEngine, Store, StoreOptions};
    ///
    /// let engine = MemoryEngine::new();
    /// let doc = DocId::new("notes")?;
    /// {
    ///     let store = Store::open_memory(&engine, StoreOptions::default())?;
    ///     store.put(&doc, b"kept in memory\n")?;
    /// }
    /// let again = Store::open_memory(&engine, StoreOptions::default())?;
    /// assert_eq!(again.get(&doc, At::Latest)?.unwrap(), b"kept in memory\n");
    /// // One open store at a time: a second one is refused while `again` lives.
    /// assert!(Store::open_memory(&engine, StoreOptions::default()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`OpenError::AlreadyOpen`] while another `Store` has the engine open (clone that one);
    /// [`OpenError`] when the engine holds records of another format.
    pub fn open_memory(engine: &MemoryEngine, options: StoreOptions) -> Result<Self, OpenError> {
        let claim = engine.claim().ok_or_else(|| OpenError::AlreadyOpen {
            path: PathBuf::from(MEMORY_PATH),
        })?;
        let kv = Kv::open_memory(engine.clone(), options.run_threshold)?;
        let opened = Opened {
            repairs: Vec::new(),
            registered: None,
            temp: None,
            claim: Some(claim),
        };
        Self::with_kv(kv, Path::new(MEMORY_PATH), options, opened)
    }

    fn open_inner(
        path: &Path,
        options: StoreOptions,
        temp: Option<tempfile::TempDir>,
    ) -> Result<Self, OpenError> {
        if let Some(label) = crate::engine::nats::address_of(path) {
            let kv = Kv::open_nats(label, options.create)?.ok_or_else(|| OpenError::Missing {
                path: path.to_owned(),
            })?;
            let opened = Opened {
                repairs: Vec::new(),
                registered: None,
                temp,
                claim: None,
            };
            return Self::with_kv(kv, path, options, opened);
        }
        if let Ok(canonical) = path.canonicalize()
            && lock(&OPEN_IN_PROCESS).contains(&canonical)
        {
            return Err(OpenError::AlreadyOpen {
                path: path.to_owned(),
            });
        }
        let io = |e: std::io::Error| OpenError::Backend {
            path: path.to_owned(),
            source: crate::error::BackendError::new(e),
        };
        crate::repack::finish_interrupted_swap(path).map_err(io)?;
        let (kv, repairs) = Kv::open(
            path,
            &KvConfig {
                cache_capacity: options.engine_cache_bytes,
                create: options.create,
                convert: options.convert,
                run_threshold: options.run_threshold,
                lock_wait: options.lock_wait,
                background_flush: options.background_flush,
            },
        )?;
        // The engine's lock is held now, so no repack of this store is running.
        crate::repack::remove_repack_leftovers(path).map_err(io)?;
        let opened = Opened {
            repairs,
            registered: register_open(path),
            temp,
            claim: None,
        };
        Self::with_kv(kv, path, options, opened)
    }

    fn with_kv(
        kv: Kv,
        path: &Path,
        options: StoreOptions,
        opened: Opened,
    ) -> Result<Self, OpenError> {
        let backend = |e: StoreError| OpenError::NotAStore {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let (policy, policy_name): (Arc<dyn SnapshotPolicy>, String) =
            match (&options.custom_policy, options.policy) {
                (Some(custom), _) => (Arc::clone(custom), format!("{custom:?}")),
                (None, explicit) => {
                    let stored = kv.stored_policy().map_err(backend)?;
                    let p = explicit.or(stored).unwrap_or_default();
                    // Recorded when asked for, or when a writing open finds none; an open
                    // that may not create the store (a read) never writes it.
                    let record = match explicit {
                        Some(e) => stored != Some(e),
                        None => stored.is_none() && options.create,
                    };
                    if record {
                        kv.set_policy(&p).map_err(backend)?;
                    }
                    (Arc::new(p), p.to_string())
                }
            };
        // The retention rule: the one given (recorded when it differs), else the store's.
        let stored = kv.retention().map_err(backend)?;
        let retention = match options.retention {
            Some(r) => {
                if stored != Some(r) {
                    kv.set_retention(Some(r)).map_err(backend)?;
                }
                Some(r)
            }
            None => stored,
        };
        let commits = Arc::new((Mutex::new(0), std::sync::Condvar::new()));
        Ok(Self {
            inner: Arc::new(Inner {
                kv,
                policy,
                policy_name,
                retention: RwLock::new(retention),
                cache: Mutex::new(ContentCache::new(options.cache_bytes)),
                options,
                write_gate: RwLock::new(()),
                object_gate: RwLock::new(()),
                repairs: opened.repairs,
                commits,
                watching: std::sync::Once::new(),
                registered: opened.registered,
                path: path.to_owned(),
                _temp: opened.temp,
                _claim: opened.claim,
            }),
        })
    }

    /// Returns what was repaired when this store was opened, one line each: leftovers of a
    /// crash that the storage engine would otherwise refuse (see `docs/durability.md`). Empty
    /// after a clean close.
    pub fn repairs(&self) -> &[String] {
        &self.inner.repairs
    }

    /// Returns the directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether other processes may write this store while this one has it open (a store on
    /// the NATS engine, `nats://...`). Then every version is durable when its write returns,
    /// and [`Store::flush`] has nothing to do.
    pub fn shared(&self) -> bool {
        self.inner.kv.shared()
    }

    /// Returns the policy new versions are written under, as text (`reverse:4`).
    pub fn policy_name(&self) -> &str {
        &self.inner.policy_name
    }

    /// Stores `content` as the next version of `doc` and returns its record.
    ///
    /// Every put appends a version, even when the content equals the previous one; identical
    /// contents share one stored object across all documents. Under
    /// [`Durability::EveryPut`] (the default) the version is durable when this returns `Ok`;
    /// under [`Durability::Manual`], after the next [`Store::flush`].
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] when the content exceeds the configured maximum; engine and
    /// corruption errors (from reading the delta base).
    ///
    /// # Example
    /// ```
    /// use strata_storage::{At, Store};
    /// use strata_storage::DocId;
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("greeting")?;
    /// let rec = store.put(&doc, b"hello\n")?;
    /// assert_eq!(rec.version.get(), 1);
    /// assert_eq!(store.get(&doc, At::Latest)?.unwrap(), b"hello\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, doc: &DocId, content: &[u8]) -> StoreResult<VersionRecord> {
        self.put_with(doc, content, PutOptions::default())
    }

    /// Stores `content` as the next version of `doc` with metadata and an optional expected
    /// version (optimistic concurrency).
    ///
    /// A retry is safe: when `options.expected` is N, the document has moved past N, and its
    /// version N + 1 has exactly this content, that version is returned instead of a conflict
    /// (a writer that lost the answer to its put gets it now, and nothing is written twice).
    ///
    /// # Errors
    /// As [`Store::put`]; also [`StoreError::Conflict`] when `options.expected` is set and the
    /// document is at another version (nothing is recorded), and
    /// [`StoreError::MetadataTooLarge`].
    ///
    /// # Example: a retried put
    /// ```
    /// use strata_storage::{DocId, PutOptions, Store, StoreError};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("cart")?;
    /// let first = store.put_with(&doc, b"apple\n", PutOptions::default().expect_new())?;
    /// // The same put again (its answer was lost): the version it made, not a conflict.
    /// let again = store.put_with(&doc, b"apple\n", PutOptions::default().expect_new())?;
    /// assert_eq!((again.version, again.seq), (first.version, first.seq));
    /// // Other content at a stale expected version is a conflict.
    /// let other = store.put_with(&doc, b"pear\n", PutOptions::default().expect_new());
    /// assert!(matches!(other, Err(StoreError::Conflict { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Example: a conflicting writer
    /// ```
    /// use strata_storage::{PutOptions, Store, StoreError};
    /// use strata_storage::DocId;
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("counter")?;
    /// store.put_with(&doc, b"1", PutOptions::default().expect_new())?;
    /// let err = store.put_with(&doc, b"2", PutOptions::default().expect_new()).unwrap_err();
    /// assert!(matches!(err, StoreError::Conflict { expected: 0, actual: 1, .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_with(
        &self,
        doc: &DocId,
        content: &[u8],
        options: PutOptions,
    ) -> StoreResult<VersionRecord> {
        // (On a shared engine the batch reads what other processes wrote when it reads the
        // maintenance epoch, before anything else.)
        let attempt = || -> StoreResult<Vec<VersionRecord>> {
            let mut batch = WriteBatch::new(self);
            batch.put(doc, content, options)?;
            batch.commit_with(self.inner.options.durability == Durability::EveryPut)
        };
        let mut records = match attempt() {
            Err(conflict @ StoreError::Conflict { .. }) => {
                return self.conflict_or_retried(doc, content, conflict);
            }
            other => other?,
        };
        self.fold_if_due(&records, false)?;
        self.apply_retention([doc])?;
        Ok(records
            .pop()
            .expect("a batch of one put commits one record"))
    }

    /// Stores several independent puts, in order, as [`Store::put_with`] would store each one
    /// alone, but in one commit with (under [`Durability::EveryPut`]) one flush: the way a
    /// server answering many writers at once shares the cost of a commit among them. Returns
    /// one result per put, in the order given. A put refused on its own (a conflict, content
    /// or metadata too large, a time going back) is refused alone and the others are stored;
    /// a put expecting the version an earlier put of the same call made sees it.
    ///
    /// # Errors
    /// Per put: as [`Store::put_with`]. The outer error: folding loose objects or applying
    /// the retention rule failed after the puts were committed (as with `put_with`).
    ///
    /// # Example
    /// ```
    /// use strata_storage::{DocId, PutOptions, Store, StoreError};
    ///
    /// let store = Store::open_temporary()?;
    /// let (a, b) = (DocId::new("a")?, DocId::new("b")?);
    /// store.put(&b, b"taken\n")?;
    /// let results = store.put_each(vec![
    ///     (&a, &b"one\n"[..], PutOptions::default()),
    ///     (&b, &b"mine\n"[..], PutOptions::default().expect_new()),
    ///     (&a, &b"two\n"[..], PutOptions::default().expect(strata_storage::VersionNo(1))),
    /// ])?;
    /// assert_eq!(results[0].as_ref().unwrap().version.get(), 1);
    /// assert!(matches!(results[1], Err(StoreError::Conflict { actual: 1, .. })));
    /// assert_eq!(results[2].as_ref().unwrap().version.get(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_each(
        &self,
        puts: Vec<(&DocId, &[u8], PutOptions)>,
    ) -> StoreResult<Vec<StoreResult<VersionRecord>>> {
        // Each put's answer as the batch sees it, in order: refusals (a conflict is kept as
        // found then, against the puts before it) and the puts the batch holds.
        let mut results: Vec<Option<StoreResult<VersionRecord>>> =
            puts.iter().map(|_| None).collect();
        let mut batched = Vec::new();
        let mut batch = WriteBatch::new(self);
        for (i, (doc, content, options)) in puts.iter().enumerate() {
            // A put that fails leaves the batch as it was: its version is not in it.
            match batch.put(doc, content, options.clone()) {
                Ok(()) => batched.push(i),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        if !batched.is_empty() {
            match batch.commit_with(self.inner.options.durability == Durability::EveryPut) {
                Ok(records) => {
                    self.fold_if_due(&records, false)?;
                    self.apply_retention(batched.iter().map(|&i| puts[i].0))?;
                    for (i, record) in batched.into_iter().zip(records) {
                        results[i] = Some(Ok(record));
                    }
                }
                // Nothing of it was recorded (another writer moved a document between the
                // checks and the commit, or the engine failed): each put on its own, in order,
                // as if the batch had not been.
                Err(_) => {
                    return Ok(puts
                        .into_iter()
                        .zip(results)
                        .map(|((doc, content, options), found)| match found {
                            Some(Err(e)) if !matches!(e, StoreError::Conflict { .. }) => Err(e),
                            _ => self.put_with(doc, content, options),
                        })
                        .collect());
                }
            }
        } else {
            drop(batch);
        }
        // A conflict found against the versions before it is answered as `put_with` answers
        // it: with the version a retried put made, when that is what it was.
        Ok(puts
            .into_iter()
            .zip(results)
            .map(|((doc, content, _), found)| match found {
                Some(Err(conflict @ StoreError::Conflict { .. })) => {
                    self.conflict_or_retried(doc, content, conflict)
                }
                found => found.expect("every put has its result"),
            })
            .collect())
    }

    /// The answer to a put of `content` refused with `conflict`: the version it asked for,
    /// when the document moved past its expected version and the next version holds this
    /// content (the put was made before and its answer lost), else the conflict.
    fn conflict_or_retried(
        &self,
        doc: &DocId,
        content: &[u8],
        conflict: StoreError,
    ) -> StoreResult<VersionRecord> {
        if let StoreError::Conflict {
            expected, actual, ..
        } = conflict
            && actual > expected
            && let Some(done) = self.record(doc, At::Version(VersionNo(expected + 1)))?
            && !done.is_deletion()
            && done.hash == ContentHash::of(content)
        {
            return Ok(done);
        }
        Err(conflict)
    }

    /// Records the deletion of `doc` as its next version (a tombstone): reads of the latest
    /// version, and of this one, find nothing from then on, while every earlier version
    /// still reads, and a later put revives the document. Returns the deletion's record, or
    /// `None` when there is no such document or its newest version is already a deletion.
    ///
    /// # Errors
    /// Engine errors.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{At, DocId, Store, VersionNo};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("draft")?;
    /// store.put(&doc, b"text\n")?;
    /// let gone = store.delete(&doc)?.expect("it existed");
    /// assert!(gone.is_deletion() && gone.version == VersionNo(2));
    /// assert!(store.get(&doc, At::Latest)?.is_none());
    /// assert_eq!(store.get(&doc, At::Version(VersionNo(1)))?.unwrap(), b"text\n");
    /// store.put(&doc, b"back\n")?;
    /// assert_eq!(store.get(&doc, At::Latest)?.unwrap(), b"back\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn delete(&self, doc: &DocId) -> StoreResult<Option<VersionRecord>> {
        let Some(head) = self.record(doc, At::Latest)? else {
            return Ok(None);
        };
        if head.is_deletion() {
            return Ok(None);
        }
        let mut options = PutOptions::default().expect(head.version);
        options
            .meta
            .extra
            .push((strata_core::DELETED_KEY.to_owned(), String::new()));
        let mut batch = WriteBatch::new(self);
        batch.put_unchecked(doc, b"", options)?;
        let mut records =
            batch.commit_with(self.inner.options.durability == Durability::EveryPut)?;
        Ok(records.pop())
    }

    /// Starts a batch of puts that commit in one transaction with one flush.
    ///
    /// Commit (or drop) a batch before starting the next one on the same thread: a commit
    /// may fold loose objects into a pack, which waits until no batch of the store is open.
    pub fn batch(&self) -> WriteBatch<'_> {
        WriteBatch::new(self)
    }

    /// Returns the content of `doc` at `at`, or `None` if there is no such document or version.
    /// The content is rebuilt from its delta chain and checked against its blake3 id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] or [`StoreError::HashMismatch`] when stored data is damaged:
    /// never wrong bytes.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{At, DocId, Store, VersionNo};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("notes")?;
    /// store.put(&doc, b"one\n")?;
    /// store.put(&doc, b"two\n")?;
    /// assert_eq!(store.get(&doc, At::Latest)?.as_deref(), Some(&b"two\n"[..]));
    /// assert_eq!(store.get(&doc, At::Version(VersionNo(1)))?.as_deref(), Some(&b"one\n"[..]));
    /// assert_eq!(store.get(&doc, At::Back(1))?.as_deref(), Some(&b"one\n"[..]));
    /// assert_eq!(store.get(&doc, At::Version(VersionNo(9)))?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, doc: &DocId, at: At) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .get_with_record(doc, at)?
            .map(|(_, content)| content.into_vec()))
    }

    /// As [`Store::get`], also returning the version's record (one lookup for both). The
    /// content is shared with the read cache rather than copied, which matters to readers
    /// that stream many versions (`strata get --batch`).
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn get_with_record(
        &self,
        doc: &DocId,
        at: At,
    ) -> StoreResult<Option<(VersionRecord, Content)>> {
        // (`record` reads what other processes wrote first.)
        let Some(rec) = self.record(doc, at)? else {
            return Ok(None);
        };
        if rec.is_deletion() {
            // A deletion has no content: the document did not exist from then on.
            return Ok(None);
        }
        let keeping = lock(&self.inner.cache).keeping_for(doc.as_str(), rec.version.get());
        let content = self
            .read_object_keeping(&rec.hash, keeping)
            .map_err(|e| e.reading(doc, rec.version.get()))?;
        if content.len() as u64 != rec.size {
            return Err(StoreError::corrupt(
                format!("version {doc}@{}", rec.version),
                format!(
                    "record says {} bytes, content has {}",
                    rec.size,
                    content.len()
                ),
            ));
        }
        Ok(Some((rec, Content::new(content))))
    }

    /// Returns the record of `doc` at `at`, or `None` if there is no such document or version.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn record(&self, doc: &DocId, at: At) -> StoreResult<Option<VersionRecord>> {
        self.inner.kv.sync()?;
        let kv = &self.inner.kv;
        let Some(num) = kv.doc_num(doc.as_str())? else {
            return Ok(None);
        };
        let head = || kv.head(num).map(|h| h.map_or(0, VersionNo::get));
        let version = match at {
            At::Latest => head()?,
            At::Version(v) => v.get(),
            At::Back(n) => head()?.saturating_sub(n),
            At::Hash(h) => {
                return Ok(kv.versions(num)?.into_iter().rev().find(|r| r.hash == h));
            }
            At::Time(ms) => {
                // A document's times never go back, so the versions are sorted by time.
                let mut history = kv.versions(num)?;
                let at = history.partition_point(|r| r.created_at_ms <= ms);
                history.truncate(at);
                return Ok(history.pop());
            }
        };
        if version == 0 {
            return Ok(None);
        }
        kv.version(num, VersionNo(version))
            .map_err(|e| e.reading(doc, version))
    }

    pub(crate) fn head(&self, doc: &DocId) -> StoreResult<Option<VersionNo>> {
        let kv = &self.inner.kv;
        match kv.doc_num(doc.as_str())? {
            Some(num) => kv.head(num),
            None => Ok(None),
        }
    }

    pub(crate) fn version_record(
        &self,
        doc: &DocId,
        v: VersionNo,
    ) -> StoreResult<Option<VersionRecord>> {
        self.record(doc, At::Version(v))
    }

    /// Returns the content with id `hash`, from whichever document stored it, or `None`.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn get_object(&self, hash: &ContentHash) -> StoreResult<Option<Vec<u8>>> {
        // An object's content never changes: another process's writes matter only when it
        // is not here yet.
        if !self.inner.kv.has_object(hash)? {
            self.inner.kv.sync()?;
            if !self.inner.kv.has_object(hash)? {
                return Ok(None);
            }
        }
        Ok(Some(Content::new(self.read_object(hash)?).into_vec()))
    }

    /// Returns how the object with id `hash` is stored, or `None` if there is no such object.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn object_header(&self, hash: &ContentHash) -> StoreResult<Option<ObjectHeader>> {
        match self.inner.kv.object_header(hash)? {
            Some(h) => Ok(Some(h)),
            None => {
                self.inner.kv.sync()?;
                self.inner.kv.object_header(hash)
            }
        }
    }

    /// Holds back every put and batch until the guard drops (for record compaction).
    pub(crate) fn exclusive_writes(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.inner
            .write_gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds back every put and batch of this process and, on an engine several processes
    /// share, of the others too (the maintenance lease, `kv/lease.rs`), until the guard drops:
    /// for `gc`, `prune`, folding loose objects and `repack`.
    pub(crate) fn maintenance(&self) -> StoreResult<Maintenance<'_>> {
        let gate = self.exclusive_writes();
        self.inner
            .kv
            .begin_maintenance(self.inner.options.lock_wait)?;
        Ok(Maintenance {
            store: self,
            _gate: gate,
        })
    }

    pub(crate) fn read_object(&self, hash: &ContentHash) -> StoreResult<Shared> {
        self.read_object_keeping(hash, Keeping::HISTORY)
    }

    /// [`Store::read_object`], keeping what `keeping` says of the contents decoded on the way
    /// (see [`crate::read::rebuild`]).
    fn read_object_keeping(&self, hash: &ContentHash, keeping: Keeping) -> StoreResult<Shared> {
        let _read = self
            .inner
            .object_gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rebuild(
            &self.inner.kv,
            &self.inner.cache,
            hash,
            self.read_limit(),
            !self.inner.options.verify_reads,
            keeping,
        )
    }

    pub(crate) fn read_limit(&self) -> u64 {
        self.inner.options.max_content_len.max(READ_FLOOR)
    }

    /// Returns `doc`'s versions, oldest first; empty if the document is unknown.
    ///
    /// # Errors
    /// Corruption and engine errors.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{DocId, PutOptions, Store};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("notes")?;
    /// store.put_with(&doc, b"one\n", PutOptions::default().message("start"))?;
    /// store.put(&doc, b"two\n")?;
    /// let history = store.history(&doc)?;
    /// assert_eq!(history.len(), 2);
    /// assert_eq!(history[0].meta.message.as_deref(), Some("start"));
    /// assert_eq!(history[1].size, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn history(&self, doc: &DocId) -> StoreResult<Vec<VersionRecord>> {
        self.inner.kv.sync()?;
        match self.inner.kv.doc_num(doc.as_str())? {
            Some(num) => self.inner.kv.versions(num),
            None => Ok(Vec::new()),
        }
    }

    /// Returns every document with its newest version, in key order (byte order of the
    /// keys: what listings and paging by key want).
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn documents(&self) -> StoreResult<Vec<DocEntry>> {
        self.inner.kv.sync()?;
        let mut docs = self.inner.kv.documents()?;
        docs.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        docs.into_iter()
            .map(|(num, key, latest)| {
                let doc = DocId::new(key)
                    .map_err(|e| StoreError::corrupt(format!("document record {num}"), e))?;
                let deleted = self
                    .inner
                    .kv
                    .version(num, latest)?
                    .is_some_and(|r| r.is_deletion());
                Ok(DocEntry {
                    doc,
                    latest,
                    deleted,
                })
            })
            .collect()
    }

    /// Returns up to `limit` entries of the change feed, starting at sequence number `from`
    /// (the first write has sequence number 1), as [`Store::feed`] gives them (pruned
    /// versions left it) but without their records. A consumer remembers the last `seq` it
    /// saw and asks again from `seq + 1`.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn changes(&self, from: u64, limit: usize) -> StoreResult<Vec<Change>> {
        // (The feed reads what other processes wrote first.)
        self.feed(from)
            .take(limit)
            .map(|e| {
                e.map(|e| Change {
                    seq: e.seq,
                    doc: e.doc,
                    version: e.record.version,
                })
            })
            .collect()
    }

    /// Iterates over the change feed from sequence number `from` (the first write is 1): every
    /// version in the order it was written, each with its document and record (number,
    /// content id, size, time, metadata). The iteration ends at the last write made before
    /// it got there; a new `feed` from the next position picks up later writes. Errors end it.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{DocId, Store};
    ///
    /// let store = Store::open_temporary()?;
    /// let (a, b) = (DocId::new("a")?, DocId::new("b")?);
    /// store.put(&a, b"a1")?;
    /// store.put(&b, b"b1")?;
    /// store.put(&a, b"a2")?;
    /// let seen: Vec<(u64, String, u64)> = store
    ///     .feed(2)
    ///     .map(|e| e.map(|e| (e.seq, e.doc.to_string(), e.record.version.get())))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(seen, [(2, "b".to_owned(), 1), (3, "a".to_owned(), 2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn feed(&self, from: u64) -> crate::feed::Feed<'_> {
        crate::feed::Feed::new(self, from)
    }

    /// Like [`Store::feed`], but when it has given every version written so far it waits for
    /// the next commit through any handle of this store (clones share it), so it never ends
    /// on its own. [`crate::Subscription::next_timeout`] waits at most a given time.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use strata_storage::{DocId, Store};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("orders")?;
    /// let mut sub = store.subscribe(1);
    /// let writer = store.clone();
    /// let t = std::thread::spawn(move || writer.put(&doc, b"order 1\n").map(|_| ()));
    /// let first = sub.next_timeout(Duration::from_secs(10))?.expect("the put wakes it");
    /// assert_eq!((first.seq, first.doc.as_str()), (1, "orders"));
    /// t.join().unwrap()?;
    /// assert!(sub.next_timeout(Duration::from_millis(10))?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, from: u64) -> crate::feed::Subscription {
        self.inner.watching.call_once(|| {
            let wake = Arc::clone(&self.inner.commits);
            self.inner.kv.watch(Box::new(move || {
                *lock(&wake.0) += 1;
                wake.1.notify_all();
            }));
        });
        crate::feed::Subscription::new(self.clone(), from)
    }

    /// The sequence number of the last write (0 in an empty store): the end of the feed.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn last_seq(&self) -> StoreResult<u64> {
        self.inner.kv.sync()?;
        Ok(self.inner.kv.next_seq()?.saturating_sub(1))
    }

    /// The position of the durable feed consumer `name`: the last sequence number it has
    /// processed (Kafka's committed offset), or `None` when there is no such consumer.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn consumer(&self, name: &str) -> StoreResult<Option<u64>> {
        self.inner.kv.sync()?;
        check_consumer_name(name)?;
        self.inner.kv.consumer(name)
    }

    /// Stores the position of consumer `name` (created if new), durably: it has processed
    /// every version up to sequence number `position`. A consumer resumes after it.
    ///
    /// # Errors
    /// [`StoreError::BadConsumer`] for an empty or over-long name or a position past the last
    /// write; engine errors.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{DocId, Store};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("log")?;
    /// for i in 0..3 {
    ///     store.put(&doc, format!("{i}\n").as_bytes())?;
    /// }
    /// let start = store.consumer("mailer")?.unwrap_or(0) + 1;
    /// for entry in store.feed(start).take(2) {
    ///     let entry = entry?;
    ///     // ... process it, then record that it was processed:
    ///     store.set_consumer("mailer", entry.seq)?;
    /// }
    /// assert_eq!(store.consumers()?, [("mailer".to_owned(), 2)]);
    /// assert_eq!(store.last_seq()? - store.consumer("mailer")?.unwrap(), 1, "lag");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_consumer(&self, name: &str, position: u64) -> StoreResult<()> {
        check_consumer_name(name)?;
        let last = self.last_seq()?;
        if position > last {
            return Err(StoreError::BadConsumer {
                reason: format!(
                    "position {position} for consumer '{name}' is past the last write ({last})"
                ),
            });
        }
        self.inner.kv.set_consumer(name, Some(position))?;
        self.inner.kv.flush()
    }

    /// Removes consumer `name`; returns whether it existed.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn remove_consumer(&self, name: &str) -> StoreResult<bool> {
        check_consumer_name(name)?;
        let existed = self.inner.kv.consumer(name)?.is_some();
        if existed {
            self.inner.kv.set_consumer(name, None)?;
            self.inner.kv.flush()?;
        }
        Ok(existed)
    }

    /// Tags version `version` of `doc` as `name`, so that [`Store::tagged`] finds it (the
    /// CLI's `DOC@NAME`). A tag never moves silently: a tag that names another version is
    /// moved only with `force`. Setting it again on the same version does nothing.
    ///
    /// A name starts with a letter and holds letters, digits, '.', '_' and '-' (at most 100
    /// bytes), and is not 64 hex digits, so it never reads as a version number, a time or a
    /// content id.
    ///
    /// # Errors
    /// [`StoreError::Tag`] for a bad name, a missing version, or a tag on another version
    /// without `force`; engine errors.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{DocId, Store, StoreError, VersionNo};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("spec.md")?;
    /// store.put(&doc, b"draft\n")?;
    /// store.put(&doc, b"final\n")?;
    /// store.tag(&doc, VersionNo(2), "v1.0", false)?;
    /// assert_eq!(store.tagged(&doc, "v1.0")?, Some(VersionNo(2)));
    /// let moved = store.tag(&doc, VersionNo(1), "v1.0", false);
    /// assert!(matches!(moved, Err(StoreError::Tag { .. })));
    /// store.tag(&doc, VersionNo(1), "v1.0", true)?;
    /// assert_eq!(store.tags(Some(&doc))?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tag(&self, doc: &DocId, version: VersionNo, name: &str, force: bool) -> StoreResult<()> {
        check_tag_name(name)?;
        let kv = &self.inner.kv;
        let exists = match kv.doc_num(doc.as_str())? {
            Some(num) => kv.version(num, version)?.map(|_| num),
            None => None,
        };
        let Some(num) = exists else {
            return Err(StoreError::Tag {
                reason: format!("cannot tag '{doc}@{version}': there is no such version"),
            });
        };
        match kv.tag(num, name)? {
            Some(v) if v == version => return Ok(()),
            Some(v) if !force => {
                return Err(StoreError::Tag {
                    reason: format!(
                        "tag '{name}' of '{doc}' is on version {v}; moving it to {version} needs force (the CLI's --force)"
                    ),
                });
            }
            _ => {}
        }
        kv.set_tag(num, name, Some(version))?;
        kv.flush()
    }

    /// The version tag `name` of `doc` names, if any.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn tagged(&self, doc: &DocId, name: &str) -> StoreResult<Option<VersionNo>> {
        self.inner.kv.sync()?;
        let kv = &self.inner.kv;
        match kv.doc_num(doc.as_str())? {
            Some(num) => kv.tag(num, name),
            None => Ok(None),
        }
    }

    /// Removes tag `name` of `doc`; returns whether it existed.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn untag(&self, doc: &DocId, name: &str) -> StoreResult<bool> {
        let kv = &self.inner.kv;
        let Some(num) = kv.doc_num(doc.as_str())? else {
            return Ok(false);
        };
        if kv.tag(num, name)?.is_none() {
            return Ok(false);
        }
        kv.set_tag(num, name, None)?;
        kv.flush()?;
        Ok(true)
    }

    /// Every tag as (document, name, version), by document (in creation order) then name;
    /// only `doc`'s when given.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn tags(&self, doc: Option<&DocId>) -> StoreResult<Vec<(DocId, String, VersionNo)>> {
        self.inner.kv.sync()?;
        let kv = &self.inner.kv;
        let num = match doc {
            Some(d) => match kv.doc_num(d.as_str())? {
                Some(n) => Some(n),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let tags = kv.tags(num)?;
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let names: std::collections::HashMap<u64, String> = match doc {
            Some(d) => num
                .into_iter()
                .map(|n| (n, d.as_str().to_owned()))
                .collect(),
            None => kv
                .documents()?
                .into_iter()
                .map(|(n, k, _)| (n, k))
                .collect(),
        };
        tags.into_iter()
            .map(|(n, name, v)| {
                let key = names.get(&n).ok_or_else(|| {
                    StoreError::corrupt(format!("tag '{name}'"), "names an unknown document")
                })?;
                let doc = DocId::new(key.clone())
                    .map_err(|e| StoreError::corrupt(format!("document record {n}"), e))?;
                Ok((doc, name, v))
            })
            .collect()
    }

    /// The retention rule applied after every commit, if any (see
    /// [`StoreOptions::retention`]).
    pub fn retention(&self) -> Option<crate::prune::Retention> {
        *self
            .inner
            .retention
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets (or with `None` removes) the retention rule, recorded in the store: every later
    /// commit, through this handle or any later open, applies it.
    ///
    /// # Errors
    /// Engine errors.
    pub fn set_retention(&self, rule: Option<crate::prune::Retention>) -> StoreResult<()> {
        let mut current = self
            .inner
            .retention
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.inner.kv.set_retention(rule)?;
        self.inner.kv.flush()?;
        *current = rule;
        Ok(())
    }

    /// Every durable consumer with its position, by name.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn consumers(&self) -> StoreResult<Vec<(String, u64)>> {
        self.inner.kv.sync()?;
        self.inner.kv.consumers()
    }

    /// Compares two versions, of the same document or of two documents. Returns `None` if
    /// either side does not exist.
    ///
    /// # Errors
    /// Corruption and engine errors from reading either side.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{At, DiffOptions, DocId, Store, VersionNo, render};
    ///
    /// let store = Store::open_temporary()?;
    /// let doc = DocId::new("notes")?;
    /// store.put(&doc, b"a\nb\n")?;
    /// store.put(&doc, b"a\nc\n")?;
    /// let diff = store
    ///     .diff((&doc, At::Version(VersionNo(1))), (&doc, At::Latest), &DiffOptions::default())?
    ///     .expect("both versions exist");
    /// let text = render::unified(&diff, "a/notes", "b/notes");
    /// assert!(text.contains("-b\n+c\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn diff(
        &self,
        old: (&DocId, At),
        new: (&DocId, At),
        options: &DiffOptions,
    ) -> StoreResult<Option<DocDiff>> {
        let (Some(a), Some(b)) = (self.get(old.0, old.1)?, self.get(new.0, new.1)?) else {
            return Ok(None);
        };
        Ok(Some(strata_diff::compare(&a, &b, options)))
    }

    /// Makes every completed `put` durable.
    ///
    /// # Errors
    /// Engine errors.
    pub fn flush(&self) -> StoreResult<()> {
        self.inner.kv.flush()
    }

    /// Merges the store's record runs (names, version pages, the change feed and the pack
    /// index, kept in sorted values written once) into one, so that every lookup reads one
    /// run. Writes merge runs on their own as they accumulate (at most 8 remain); this is for
    /// a program that wants the fewest lookups after a bulk load. Holds back puts while it
    /// runs.
    ///
    /// ```
    /// use strata_storage::{At, DocId, Store, StoreOptions};
    ///
    /// // A small threshold: the puts below leave several runs.
    /// let store = Store::open_temporary_with(StoreOptions::default().record_run_threshold(4))?;
    /// let doc = DocId::new("notes")?;
    /// for i in 0..20 {
    ///     store.put(&doc, format!("v{i}\n").as_bytes())?;
    /// }
    /// store.compact_records()?;
    /// assert_eq!(store.history(&doc)?.len(), 20);
    /// assert_eq!(store.get(&doc, At::Latest)?.unwrap(), b"v19\n");
    /// assert!(store.verify()?.is_clean());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn compact_records(&self) -> StoreResult<()> {
        let _gate = self.exclusive_writes();
        self.inner.kv.compact_records()?;
        self.inner.kv.flush()
    }

    /// Merges the record runs, as [`Store::compact_records`] does, when a lookup would look in
    /// two or more of them; does nothing otherwise. Bulk writers call it when they are done
    /// (`strata import` does): a bulk load leaves up to 8 runs, and each costs every lookup.
    ///
    /// # Errors
    /// Corruption and engine errors.
    pub fn settle_records(&self) -> StoreResult<()> {
        let _gate = self.exclusive_writes();
        self.inner.kv.settle_records()?;
        self.inner.kv.flush()
    }

    /// Empties the cache of rebuilt contents (for benchmarks of cold reads).
    pub fn clear_cache(&self) {
        lock(&self.inner.cache).clear();
    }
}
