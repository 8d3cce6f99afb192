//! The only module that names `sled`: trees, keys, batches and transactions.
//!
//! Trees (see `docs/format.md` for the bytes):
//! - `names`: document key (UTF-8) → [`NameRecord`] (document number)
//! - `docs`: doc number BE → [`DocRecord`] (key and latest version)
//! - `versions`: doc number BE ‖ version BE → `VersionRecord`
//! - `objects`: content hash ‖ part BE u32 → part 0: `ObjectHeader`; parts 1..=n: payload chunks
//! - `feed`: sequence number BE → [`FeedRecord`]
//! - `meta`: `format` → [`FormatRecord`], `policy` → `Policy`, `counters` → [`Counters`]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use strata_core::codec::{
    Record, decode_record, decode_record_prefix, encode_record, encoded_len, pair_key,
    read_pair_key, read_u64_key, u64_key,
};
use strata_core::{ContentHash, Metadata, ObjectHeader, Policy, VersionNo, VersionRecord};

use crate::error::{BackendError, OpenError, StoreError, StoreResult};
use crate::format::{
    CONVERTIBLE_FORMAT, Counters, DocRecord, FeedPage, FeedRecord, FormatRecord, NameRecord,
    PACK_FORMAT, PAGE_LIMIT, PackCounter, PackedRef, STORE_FORMAT, VersionPage,
};

/// sled's log segment size. Measured on the shared histories, 64 KiB segments gave store
/// directories 20-30% smaller than sled's default 512 KiB, and 32 KiB another 0-15% after a
/// repack; 16 KiB was worse on the larger histories (see BENCHMARKS.md). sled records it in its
/// `conf` file and refuses to reopen a store with another value: it is part of the format.
pub(crate) const SEGMENT_LEN: usize = 32 * 1024;

/// Payloads are split into chunks of this size. sled writes any node larger than a quarter
/// segment (8 KiB) to its never-reclaimed `blobs/` directory, and a leaf holds up to 17
/// entries, so 17 chunks with their keys must stay under 8 KiB.
pub(crate) const CHUNK_LEN: usize = 384;

const META_FORMAT: &[u8] = b"format";
const META_POLICY: &[u8] = b"policy";
const META_COUNTERS: &[u8] = b"counters";
const META_PACKS: &[u8] = b"packs";
/// How many bytes of its id precede each object in a pack.
const PACK_ID_PREFIX: usize = 8;
/// Objects with a payload larger than this are stored as a pack of their own.
const SOLO_MIN: usize = 4 << 10;
/// The one key of a pack tree.
const PACK_KEY: &[u8] = b"";

/// Engine settings chosen by the store.
pub(crate) struct KvConfig {
    pub(crate) cache_capacity: u64,
    pub(crate) create: bool,
    /// Accept a store of [`CONVERTIBLE_FORMAT`], to read it for conversion.
    pub(crate) convert: bool,
}

/// The open sled database and its trees.
#[derive(Clone, Debug)]
pub(crate) struct Kv {
    db: sled::Db,
    path: std::path::PathBuf,
    /// Packed objects: object id → [`PackedRef`].
    index: sled::Tree,
    /// Open pack trees by number (each pack is the one value of a tree of its own).
    packs: std::sync::Arc<std::sync::Mutex<HashMap<u64, sled::Tree>>>,
    names: sled::Tree,
    docs: sled::Tree,
    versions: sled::Tree,
    objects: sled::Tree,
    feed: sled::Tree,
    meta: sled::Tree,
}

/// One version to record in a commit.
pub(crate) struct NewVersion<'a> {
    pub(crate) key: &'a str,
    pub(crate) expected: Option<u64>,
    pub(crate) hash: ContentHash,
    pub(crate) size: u64,
    pub(crate) created_at_ms: u64,
    pub(crate) meta: &'a Metadata,
}

/// An object's header with its inline payload (empty when the payload is chunked). The
/// payload is shared with the engine's cache (a range of the value read), not copied.
pub(crate) struct StoredObject {
    pub(crate) header: ObjectHeader,
    inline: Payload,
}

/// Payload bytes: a range of a value the engine returned, or bytes assembled from chunks.
pub(crate) enum Payload {
    Shared(sled::IVec, std::ops::Range<usize>),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Shared(v, r) => &v[r.clone()],
            Self::Owned(v) => v,
        }
    }
}

impl Payload {
    /// The bytes as an owned vector (copied when shared).
    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Self::Shared(v, r) => v[r].to_vec(),
            Self::Owned(v) => v,
        }
    }

    /// `len` bytes at the end of `value`.
    fn tail(value: sled::IVec, len: usize) -> Self {
        let end = value.len();
        Self::Shared(value, end - len..end)
    }
}

/// Why a commit transaction stopped.
pub(crate) enum CommitAbort {
    Conflict {
        index: usize,
        expected: u64,
        actual: u64,
    },
    Corrupt(StoreError),
}

/// Whether `path` holds a store, or the start of one whose creation a crash cut short (sled
/// writes `conf` before it creates `db`).
fn is_store_dir(path: &Path) -> bool {
    path.join("conf").is_file() || path.join("db").is_file()
}

impl Kv {
    /// Opens the store's engine, first repairing what a crash can leave that the engine would
    /// refuse ([`crate::recover`]); returns the store and one line per repair made.
    pub(crate) fn open(path: &Path, config: &KvConfig) -> Result<(Self, Vec<String>), OpenError> {
        crate::repack::finish_interrupted_swap(path).map_err(|e| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        })?;
        if path.exists() && !path.is_dir() {
            return Err(OpenError::NotAStore {
                path: path.to_owned(),
                reason: "it is a file, not a directory".into(),
            });
        }
        if !is_store_dir(path) {
            // A folder with other things in it is refused whether or not the open may create
            // a store: a read must not promise that a put would create one there.
            if path.is_dir()
                && path
                    .read_dir()
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            {
                return Err(OpenError::NotAStore {
                    path: path.to_owned(),
                    reason: "the directory is not empty; give an empty or new directory".into(),
                });
            }
            if !config.create {
                return Err(OpenError::Missing {
                    path: path.to_owned(),
                });
            }
        }
        let backend = |e: sled::Error| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        };
        let mut repairs = Vec::new();
        let db = open_db(path, config, &mut repairs).map_err(|e| match e {
            OpenFailure::Engine(sled::Error::Io(ref io)) if is_lock_error(io) => {
                OpenError::Locked {
                    path: path.to_owned(),
                }
            }
            OpenFailure::Engine(sled::Error::Corruption { .. }) => OpenError::Damaged {
                path: path.to_owned(),
                reason: "the storage engine found damaged data while opening its data file"
                    .to_owned(),
            },
            OpenFailure::Engine(other) => backend(other),
            OpenFailure::Repair(e) => OpenError::Backend {
                path: path.to_owned(),
                source: BackendError::new(e),
            },
            OpenFailure::Panicked(message) => OpenError::Backend {
                path: path.to_owned(),
                source: BackendError::new(std::io::Error::other(format!(
                    "the storage engine failed while recovering its log ({message}); \
                     keep a copy of the directory before trying anything else"
                ))),
            },
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let kv = Self {
            names: tree("names")?,
            docs: tree("docs")?,
            versions: tree("versions")?,
            objects: tree("objects")?,
            feed: tree("feed")?,
            meta: tree("meta")?,
            index: tree("index")?,
            packs: std::sync::Arc::default(),
            db,
            path: path.to_owned(),
        };
        kv.check_format(path, config.convert)?;
        crate::repack::remove_repack_leftovers(path).map_err(|e| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        })?;
        Ok((kv, repairs))
    }

    fn check_format(&self, path: &Path, convert: bool) -> Result<(), OpenError> {
        let not_a_store = |reason: String| OpenError::NotAStore {
            path: path.to_owned(),
            reason,
        };
        let stored = self.meta.get(META_FORMAT).map_err(|e| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        })?;
        match stored {
            Some(bytes) => {
                let rec = decode_record::<FormatRecord>(&bytes)
                    .map_err(|e| not_a_store(e.to_string()))?;
                if rec.format == CONVERTIBLE_FORMAT && !convert {
                    return Err(OpenError::OldFormat {
                        path: path.to_owned(),
                        found: rec.format,
                    });
                }
                if rec.format != STORE_FORMAT && !(convert && rec.format == CONVERTIBLE_FORMAT) {
                    return Err(OpenError::UnsupportedFormat {
                        path: path.to_owned(),
                        found: rec.format,
                        supported: STORE_FORMAT,
                    });
                }
                self.check_nothing_lost(path)
            }
            None => {
                // A store that lost its format record to damage must not be taken for a new one.
                self.check_nothing_lost(path)?;
                if !self.names.is_empty() || !self.objects.is_empty() {
                    return Err(not_a_store("it holds data but no format record".into()));
                }
                // One batch: a crash keeps both records or neither, never a format record
                // without its counters.
                let init = || -> sled::Result<()> {
                    let mut batch = sled::Batch::default();
                    batch.insert(
                        META_FORMAT,
                        encode_record(&FormatRecord {
                            format: STORE_FORMAT,
                        }),
                    );
                    batch.insert(
                        META_COUNTERS,
                        encode_record(&Counters {
                            next_doc: 1,
                            next_seq: 1,
                            feed_page: 0,
                        }),
                    );
                    self.meta.apply_batch(batch)?;
                    self.db.flush()?;
                    Ok(())
                };
                init().map_err(|e| OpenError::Backend {
                    path: path.to_owned(),
                    source: BackendError::new(e),
                })
            }
        }
    }

    /// Refuses a store whose engine holds fewer versions than an earlier flush made durable:
    /// sled dropped damaged log data on open ([`crate::recover`]).
    fn check_nothing_lost(&self, path: &Path) -> Result<(), OpenError> {
        let io = |e: std::io::Error| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        };
        let Some(marked) = crate::recover::read_seq_mark(path).map_err(io)? else {
            return Ok(());
        };
        let next = self
            .counters()
            .map_err(|e| OpenError::NotAStore {
                path: path.to_owned(),
                reason: e.to_string(),
            })?
            .map_or(1, |c| c.next_seq);
        if next < marked {
            return Err(OpenError::Damaged {
                path: path.to_owned(),
                reason: format!(
                    "versions with sequence numbers {next} to {} were made durable, but the \
                     engine's data file no longer holds them (damaged log data is dropped when \
                     the engine opens)",
                    marked - 1
                ),
            });
        }
        Ok(())
    }

    /// Makes every completed write durable, then records the next sequence number in the
    /// sequence mark ([`crate::recover`]).
    pub(crate) fn flush(&self) -> StoreResult<()> {
        self.db.flush()?;
        if let Some(c) = self.counters()? {
            crate::recover::write_seq_mark(&self.path, c.next_seq)
                .map_err(|e| StoreError::Backend(BackendError::new(e)))?;
        }
        Ok(())
    }

    fn counters(&self) -> StoreResult<Option<Counters>> {
        self.meta
            .get(META_COUNTERS)?
            .map(|b| decode::<Counters>(&b, || "counters record".to_owned()))
            .transpose()
    }

    /// Sums the lengths of every key and value in every tree: the bytes strata asks the engine
    /// to keep, before the engine's own overhead.
    pub(crate) fn record_bytes(&self) -> StoreResult<u64> {
        let mut total = 0u64;
        for tree in [
            &self.names,
            &self.docs,
            &self.versions,
            &self.objects,
            &self.feed,
            &self.meta,
            &self.index,
        ] {
            for entry in tree.iter() {
                let (k, v) = entry?;
                total += (k.len() + v.len()) as u64;
            }
        }
        for p in self.packs()? {
            total += p.size;
        }
        Ok(total)
    }

    pub(crate) fn stored_policy(&self) -> StoreResult<Option<Policy>> {
        self.meta
            .get(META_POLICY)?
            .map(|b| {
                decode_record::<Policy>(&b).map_err(|e| StoreError::decode("policy record", e))
            })
            .transpose()
    }

    pub(crate) fn set_policy(&self, policy: &Policy) -> StoreResult<()> {
        self.meta.insert(META_POLICY, encode_record(policy))?;
        Ok(())
    }

    pub(crate) fn doc_num(&self, key: &str) -> StoreResult<Option<u64>> {
        self.names
            .get(key.as_bytes())?
            .map(|b| decode::<NameRecord>(&b, || format!("name record of '{key}'")).map(|r| r.doc))
            .transpose()
    }

    /// Returns the latest version of a document known by number. A name record and its
    /// document record are written in one transaction, so a number without a record is damage.
    pub(crate) fn head(&self, doc: u64) -> StoreResult<Option<VersionNo>> {
        match self.doc_record(doc)? {
            Some(r) => Ok(Some(r.head)),
            None => Err(StoreError::corrupt(
                format!("document record {doc}"),
                "is missing, though a document name points to it",
            )),
        }
    }

    fn doc_record(&self, doc: u64) -> StoreResult<Option<DocRecord>> {
        self.docs
            .get(u64_key(doc))?
            .map(|b| decode::<DocRecord>(&b, || format!("document record {doc}")))
            .transpose()
    }

    /// Returns one version record, from the page that holds it. A version at or below the
    /// document's head that no page holds is damage, not absence.
    pub(crate) fn version(&self, doc: u64, v: VersionNo) -> StoreResult<Option<VersionRecord>> {
        if v.get() == 0 {
            return Ok(None);
        }
        let head = self.head(doc)?.map_or(0, VersionNo::get);
        if v.get() > head {
            return Ok(None);
        }
        let missing = || {
            StoreError::corrupt(
                format!("version {v} of document {doc}"),
                "no version page holds it",
            )
        };
        let Some(kv) = self
            .versions
            .range(pair_key(doc, 0)..=pair_key(doc, v.get()))
            .next_back()
        else {
            return Err(missing());
        };
        let (k, b) = kv?;
        let page = version_page(doc, &k, &b)?;
        // The page's key is at or below `v` (the range guarantees it) and equals its first.
        let index = usize::try_from(v.get() - page.first.get()).map_err(|_| missing())?;
        match page.records.get(index) {
            Some(r) if r.version == v => Ok(Some(r.clone())),
            Some(r) => Err(StoreError::corrupt(
                format!("version page of document {doc} from {}", page.first),
                format!("holds version {} where {v} belongs", r.version),
            )),
            None => Err(missing()),
        }
    }

    /// Returns every version of a document, oldest first, checking that the pages number them
    /// 1, 2, 3, ... without a gap.
    pub(crate) fn versions(&self, doc: u64) -> StoreResult<Vec<VersionRecord>> {
        let mut out: Vec<VersionRecord> = Vec::new();
        for kv in self.versions.scan_prefix(u64_key(doc)) {
            let (k, b) = kv?;
            let page = version_page(doc, &k, &b)?;
            for rec in page.records {
                let expected = out.len() as u64 + 1;
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
        self.docs
            .iter()
            .map(|kv| {
                let (k, b) = kv?;
                let num = read_u64_key(&k)
                    .ok_or_else(|| StoreError::corrupt("docs tree", format!("bad key {k:?}")))?;
                let rec = decode::<DocRecord>(&b, || format!("document record {num}"))?;
                Ok((num, rec.key, rec.head))
            })
            .collect()
    }

    /// Returns feed entries from sequence number `from`, at most `limit`.
    pub(crate) fn feed(&self, from: u64, limit: usize) -> StoreResult<Vec<(u64, u64, VersionNo)>> {
        // Start at the page that holds `from` (the last page starting at or before it).
        let start = match self.feed.range(..=u64_key(from)).next_back() {
            Some(kv) => kv?.0,
            None => sled::IVec::from(&u64_key(0)[..]),
        };
        let mut out = Vec::new();
        for kv in self.feed.range(start..) {
            let (k, b) = kv?;
            let page = decode::<FeedPage>(&b, || format!("feed page at key {k:?}"))?;
            if read_u64_key(&k) != Some(page.first) {
                return Err(StoreError::corrupt(
                    format!("change feed page at key {k:02x?}"),
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

    pub(crate) fn object_header(&self, hash: &ContentHash) -> StoreResult<Option<ObjectHeader>> {
        Ok(self.object(hash)?.map(|o| o.header))
    }

    /// Reads an object once: its header and, when the payload is inline or packed, the
    /// payload too. A loose object (written since the last fold) shadows a packed copy.
    pub(crate) fn object(&self, hash: &ContentHash) -> StoredResult {
        if let Some(bytes) = self.objects.get(object_key(hash, 0))? {
            let (header, inline) = split_object_record(hash, &bytes)?;
            let len = inline.len();
            return Ok(Some(StoredObject {
                header,
                inline: Payload::tail(bytes, len),
            }));
        }
        let Some(entry) = self.index.get(hash.as_bytes())? else {
            return Ok(None);
        };
        let at = decode::<PackedRef>(&entry, || format!("pack index entry of object {hash}"))?;
        let pack = self.pack(at.pack)?.ok_or_else(|| {
            StoreError::corrupt(
                format!("object {hash}"),
                format!("its pack {} is missing", at.pack),
            )
        })?;
        let slice = usize::try_from(at.offset)
            .ok()
            .zip(usize::try_from(at.len).ok())
            .and_then(|(o, l)| pack.get(o..o.checked_add(l)?))
            .ok_or_else(|| {
                StoreError::corrupt(
                    format!("object {hash}"),
                    format!(
                        "pack {} has {} bytes; the index places the object at {}+{}",
                        at.pack,
                        pack.len(),
                        at.offset,
                        at.len
                    ),
                )
            })?;
        // Each packed object starts with its id's first bytes: an index entry that points at
        // another object of the pack is damage, caught here rather than by a checksum that the
        // other object would pass.
        let Some(record) = slice.strip_prefix(&hash.as_bytes()[..PACK_ID_PREFIX]) else {
            return Err(StoreError::corrupt(
                format!("object {hash}"),
                format!(
                    "its index entry points at another object of pack {}",
                    at.pack
                ),
            ));
        };
        let (header, inline) = split_object_record(hash, record)?;
        if header.parts != 0 {
            return Err(StoreError::corrupt(
                format!("object {hash}"),
                "a packed object claims payload chunks",
            ));
        }
        // The payload ends where the object's bytes in the pack end.
        let end = usize::try_from(at.offset + at.len).expect("checked against the pack above");
        let start = end - inline.len();
        Ok(Some(StoredObject {
            header,
            inline: Payload::Shared(pack, start..end),
        }))
    }

    /// Whether an object is stored, loose or packed, without reading it.
    pub(crate) fn has_object(&self, hash: &ContentHash) -> StoreResult<bool> {
        Ok(self.objects.contains_key(object_key(hash, 0))?
            || self.index.contains_key(hash.as_bytes())?)
    }

    /// Returns pack `n`'s bytes, or `None` when there is no such pack (without creating
    /// one: a read never writes).
    fn pack(&self, n: u64) -> StoreResult<Option<sled::IVec>> {
        let cached = crate::read::lock(&self.packs).get(&n).cloned();
        let tree = match cached {
            Some(t) => t,
            None => {
                let name = pack_tree_name(n);
                if !self
                    .db
                    .tree_names()
                    .iter()
                    .any(|t| t.as_ref() == name.as_bytes())
                {
                    return Ok(None);
                }
                self.pack_tree(n)?
            }
        };
        let Some(bytes) = tree.get(PACK_KEY)? else {
            return Ok(None);
        };
        if bytes.first() != Some(&PACK_FORMAT) {
            return Err(StoreError::corrupt(
                format!("pack {n}"),
                format!(
                    "starts with {:?}, not the pack format {PACK_FORMAT}",
                    bytes.first()
                ),
            ));
        }
        Ok(Some(bytes))
    }

    fn pack_tree(&self, n: u64) -> StoreResult<sled::Tree> {
        let mut open = crate::read::lock(&self.packs);
        if let Some(t) = open.get(&n) {
            return Ok(t.clone());
        }
        let tree = self.db.open_tree(pack_tree_name(n))?;
        open.insert(n, tree.clone());
        Ok(tree)
    }

    /// Writes `objects` (id, header, payload) as one new pack, then points the index at it and
    /// removes any loose copies. The pack is written before the entries that name it, so a
    /// crash leaves at most an unreferenced pack (`gc` drops it) or loose copies that shadow
    /// identical packed ones. Returns the pack's number and size.
    pub(crate) fn write_pack(
        &self,
        objects: &[(ContentHash, ObjectHeader, &[u8])],
    ) -> StoreResult<Option<(u64, u64)>> {
        self.write_pack_as(objects, false)
    }

    fn write_pack_as(
        &self,
        objects: &[(ContentHash, ObjectHeader, &[u8])],
        solo: bool,
    ) -> StoreResult<Option<(u64, u64)>> {
        if objects.is_empty() {
            return Ok(None);
        }
        let mut value = vec![PACK_FORMAT];
        let mut refs = Vec::with_capacity(objects.len());
        for (hash, header, payload) in objects {
            let header = ObjectHeader {
                parts: 0,
                ..*header
            };
            let offset = value.len() as u64;
            value.extend_from_slice(&hash.as_bytes()[..PACK_ID_PREFIX]);
            value.extend_from_slice(&encode_record(&header));
            value.extend_from_slice(payload);
            refs.push((*hash, offset, value.len() as u64 - offset));
        }
        let n = self.next_pack()?;
        let size = value.len() as u64;
        self.pack_tree(n)?.insert(PACK_KEY, value)?;
        let mut index = sled::Batch::default();
        let mut loose = sled::Batch::default();
        let mut replaced_solo = Vec::new();
        for (hash, offset, len) in refs {
            if let Some(old) = self.index.get(hash.as_bytes())?
                && let Ok(at) = decode_record::<PackedRef>(&old)
                && at.solo
            {
                replaced_solo.push(at.pack);
            }
            let at = PackedRef {
                pack: n,
                offset,
                len,
                solo,
            };
            index.insert(hash.as_bytes(), encode_record(&at));
            for k in self
                .objects
                .range(object_key(&hash, 0)..=object_key(&hash, u32::MAX))
                .keys()
            {
                loose.remove(k?);
            }
        }
        self.index.apply_batch(index)?;
        self.objects.apply_batch(loose)?;
        for pack in replaced_solo {
            self.drop_pack(pack)?;
        }
        Ok(Some((n, size)))
    }

    /// Allocates the next pack number (atomic: concurrent batches get distinct numbers).
    fn next_pack(&self) -> StoreResult<u64> {
        let mut allocated = None;
        let mut failure = None;
        self.meta.update_and_fetch(META_PACKS, |old| {
            let current = match old.map(decode_record::<PackCounter>) {
                None => 1,
                Some(Ok(c)) => c.next,
                Some(Err(e)) => {
                    failure = Some(StoreError::decode("pack counter", e));
                    return old.map(<[u8]>::to_vec);
                }
            };
            allocated = Some(current);
            Some(encode_record(&PackCounter { next: current + 1 }))
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(allocated.expect("the update closure ran"))
    }

    /// Returns every loose object's id and size (header and payload bytes).
    pub(crate) fn loose_objects(&self) -> StoreResult<Vec<(ContentHash, u64)>> {
        let mut out = Vec::new();
        for kv in self.objects.iter() {
            let (k, v) = kv?;
            if k.len() != 36 {
                return Err(StoreError::corrupt(
                    "objects tree",
                    format!("bad key {k:?}"),
                ));
            }
            if k[32..] == [0, 0, 0, 0] {
                let mut h = [0u8; 32];
                h.copy_from_slice(&k[..32]);
                out.push((ContentHash::from_bytes(h), v.len() as u64));
            } else if let Some(last) = out.last_mut()
                && last.0.as_bytes()[..] == k[..32]
            {
                last.1 += v.len() as u64;
            }
        }
        Ok(out)
    }

    /// Returns every pack's number and size, and the number of objects the index places in
    /// each.
    pub(crate) fn packs(&self) -> StoreResult<Vec<PackInfo>> {
        let mut refs: HashMap<u64, (u64, u64)> = HashMap::new();
        for kv in self.index.iter() {
            let (k, v) = kv?;
            let at = decode::<PackedRef>(&v, || format!("pack index entry {k:02x?}"))?;
            let e = refs.entry(at.pack).or_default();
            e.0 += 1;
            e.1 += at.len;
        }
        let mut out = Vec::new();
        for name in self.db.tree_names() {
            let Some(n) = parse_pack_tree_name(&name) else {
                continue;
            };
            let size = self.pack(n)?.map_or(0, |b| b.len() as u64);
            let (objects, live_bytes) = refs.get(&n).copied().unwrap_or_default();
            out.push(PackInfo {
                number: n,
                size,
                objects,
                live_bytes,
            });
        }
        out.sort_by_key(|p| p.number);
        Ok(out)
    }

    /// Drops a pack tree (its objects must no longer be indexed).
    ///
    /// NOTE: sled 0.34 keeps the file under `blobs/` of a dropped pack larger than a quarter
    /// segment (see [`Kv::put_object`]); packs are dropped only by `gc` (interrupted writes)
    /// and when an object that was immutable is rewritten, and `repack` reclaims the space.
    pub(crate) fn drop_pack(&self, n: u64) -> StoreResult<()> {
        let tree = self.pack_tree(n)?;
        tree.remove(PACK_KEY)?;
        crate::read::lock(&self.packs).remove(&n);
        self.db.drop_tree(pack_tree_name(n))?;
        Ok(())
    }

    /// Returns an object's payload: the inline bytes read with its header, or its chunks,
    /// checking that every chunk is present and the total length matches the header.
    pub(crate) fn object_payload(
        &self,
        hash: &ContentHash,
        object: StoredObject,
    ) -> StoreResult<Payload> {
        let header = &object.header;
        let expected = usize::try_from(header.stored_len).map_err(|_| {
            StoreError::corrupt(format!("object {hash}"), "impossible payload length")
        })?;
        if header.parts == 0 {
            if object.inline.len() != expected {
                return Err(StoreError::corrupt(
                    format!("object {hash}"),
                    format!(
                        "inline payload has {} bytes, header says {expected}",
                        object.inline.len()
                    ),
                ));
            }
            return Ok(object.inline);
        }
        let mut out: Vec<u8> = Vec::with_capacity(expected.min(1 << 30));
        let mut seen = 0u32;
        for kv in self
            .objects
            .range(object_key(hash, 1)..=object_key(hash, u32::MAX))
        {
            let (k, chunk) = kv?;
            seen += 1;
            if k.as_ref() != object_key(hash, seen) {
                return Err(StoreError::corrupt(
                    format!("object {hash}"),
                    format!("payload chunk {seen} is missing"),
                ));
            }
            out.extend_from_slice(&chunk);
        }
        if seen != header.parts || out.len() != expected {
            return Err(StoreError::corrupt(
                format!("object {hash}"),
                format!(
                    "payload has {seen} chunks and {} bytes, header says {} chunks and {expected} bytes",
                    out.len(),
                    header.parts
                ),
            ));
        }
        Ok(Payload::Owned(out))
    }

    /// Writes an object atomically: the header (with an inline payload) or the header and
    /// every chunk, in one batch. When the object exists (a rewrite under another encoding of
    /// the same content), chunks of the old encoding beyond the new count are removed in the
    /// same batch.
    ///
    /// `immutable` says the object will not be rewritten (forward policies never rewrite an
    /// object; reverse ones rewrite each document's newest): a large immutable object is
    /// stored as a pack of its own. Others stay in sled entries, because sled 0.34 never
    /// deletes the file under `blobs/` of a value that is removed (it frees a blob only when a
    /// node of several fragments is replaced), so a rewritten solo pack would leak its file.
    pub(crate) fn put_object(
        &self,
        hash: &ContentHash,
        header: &ObjectHeader,
        payload: &[u8],
        immutable: bool,
    ) -> StoreResult<()> {
        let old_parts = match self.objects.get(object_key(hash, 0))? {
            Some(bytes) => split_object_record(hash, &bytes)?.0.parts,
            None => 0,
        };
        if immutable && payload.len() > SOLO_MIN {
            // A large object is a pack of its own: one value written once, which sled keeps at
            // about its size (chunks in shared leaves cost 2-5x), dropped whole when the object
            // is rewritten or removed.
            let previous = self.index.get(hash.as_bytes())?;
            self.write_pack_as(&[(*hash, *header, payload)], true)?;
            if let Some(old) = previous
                && let Ok(at) = decode_record::<PackedRef>(&old)
                && at.solo
            {
                self.drop_pack(at.pack)?;
            }
            return Ok(());
        }
        let mut record = encode_record(header);
        if header.parts == 0 && old_parts == 0 {
            // One key: a plain insert is atomic. sled's batches and transactions each write out
            // its log buffer twice (`pin_log`), which made one small write per object the
            // largest cost of an import (1,757 log writes for 883 versions).
            record.extend_from_slice(payload);
            self.objects.insert(&object_key(hash, 0)[..], record)?;
            return self.unindex(hash);
        }
        let mut batch = sled::Batch::default();
        if header.parts == 0 {
            record.extend_from_slice(payload);
        } else {
            for (i, chunk) in payload.chunks(CHUNK_LEN).enumerate() {
                let part = u32::try_from(i + 1).expect("payloads are far below 2^32 chunks");
                batch.insert(&object_key(hash, part)[..], chunk);
            }
        }
        for part in header.parts + 1..=old_parts {
            batch.remove(&object_key(hash, part)[..]);
        }
        batch.insert(&object_key(hash, 0)[..], record);
        self.objects.apply_batch(batch)?;
        self.unindex(hash)
    }

    /// Removes an object's pack index entry, if any (a loose copy now holds it, or it is
    /// deleted), and drops its pack when the object was alone in it.
    fn unindex(&self, hash: &ContentHash) -> StoreResult<()> {
        if let Some(old) = self.index.remove(hash.as_bytes())?
            && let Ok(at) = decode_record::<PackedRef>(&old)
            && at.solo
        {
            self.drop_pack(at.pack)?;
        }
        Ok(())
    }

    /// Returns every object id, loose or packed, in id order. Stops at the first error: on
    /// damaged data sled's iterator can return the same error forever without moving on.
    pub(crate) fn object_ids(&self) -> impl Iterator<Item = StoreResult<ContentHash>> + '_ {
        let mut ids: BTreeSet<ContentHash> = BTreeSet::new();
        let mut error = None;
        let loose = self.objects.iter().keys().map(|k| {
            let k = k?;
            if k.len() != 36 {
                return Err(StoreError::corrupt(
                    "objects tree",
                    format!("bad key {k:?}"),
                ));
            }
            Ok((k[32..] == [0, 0, 0, 0]).then(|| hash_of(&k[..32])))
        });
        let packed = self.index.iter().keys().map(|k| {
            let k = k?;
            if k.len() != 32 {
                return Err(StoreError::corrupt("pack index", format!("bad key {k:?}")));
            }
            Ok(Some(hash_of(&k)))
        });
        for id in loose.chain(packed) {
            match id {
                Ok(Some(h)) => {
                    ids.insert(h);
                }
                Ok(None) => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        ids.into_iter().map(Ok).chain(error.map(Err))
    }

    /// Records new versions in one transaction: all of them or none.
    pub(crate) fn commit(
        &self,
        puts: &[NewVersion<'_>],
    ) -> Result<Vec<VersionRecord>, CommitAbort> {
        let result = (
            &self.names,
            &self.docs,
            &self.versions,
            &self.feed,
            &self.meta,
        )
            .transaction(|(names, docs, versions, feed, meta)| {
                let mut counters: Counters =
                    txn_require(meta, META_COUNTERS, &|| "counters record".to_owned())?;
                let mut out = Vec::with_capacity(puts.len());
                for (index, put) in puts.iter().enumerate() {
                    let name_key = put.key.as_bytes();
                    let doc = match txn_get::<NameRecord>(names, name_key, &|| {
                        format!("name record of '{}'", put.key)
                    })? {
                        Some(r) => r.doc,
                        None => {
                            let doc = counters.next_doc;
                            counters.next_doc += 1;
                            names.insert(name_key, encode_record(&NameRecord { doc }))?;
                            doc
                        }
                    };
                    let doc_rec: Option<DocRecord> =
                        txn_get(docs, &u64_key(doc), &|| format!("document record {doc}"))?;
                    let head = doc_rec.as_ref().map(|r| r.head);
                    if let Some(expected) = put.expected {
                        let actual = head.map_or(0, VersionNo::get);
                        if expected != actual {
                            return Err(ConflictableTransactionError::Abort(
                                CommitAbort::Conflict {
                                    index,
                                    expected,
                                    actual,
                                },
                            ));
                        }
                    }
                    let version = head.map_or(VersionNo::FIRST, VersionNo::next);
                    let seq = counters.next_seq;
                    counters.next_seq += 1;
                    let rec = VersionRecord {
                        version,
                        hash: put.hash,
                        size: put.size,
                        created_at_ms: put.created_at_ms,
                        seq,
                        meta: put.meta.clone(),
                    };
                    // Append to the document's newest version page, or start a new one.
                    let mut page = match &doc_rec {
                        Some(r) => txn_require(versions, &pair_key(doc, r.page.get()), &|| {
                            format!("newest version page of document {doc}")
                        })?,
                        None => VersionPage {
                            first: version,
                            records: Vec::new(),
                        },
                    };
                    if page_is_full(page.records.len(), &page, &rec) {
                        page = VersionPage {
                            first: version,
                            records: Vec::new(),
                        };
                    }
                    page.records.push(rec.clone());
                    versions.insert(&pair_key(doc, page.first.get())[..], encode_record(&page))?;
                    docs.insert(
                        &u64_key(doc)[..],
                        encode_record(&DocRecord {
                            key: put.key.to_owned(),
                            head: version,
                            page: page.first,
                        }),
                    )?;
                    // The same for the change feed.
                    let entry = FeedRecord { doc, version };
                    let mut fpage = if counters.feed_page == 0 {
                        FeedPage {
                            first: seq,
                            entries: Vec::new(),
                        }
                    } else {
                        txn_require(feed, &u64_key(counters.feed_page), &|| {
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
                    feed.insert(&u64_key(fpage.first)[..], encode_record(&fpage))?;
                    out.push(rec);
                }
                meta.insert(META_COUNTERS, encode_record(&counters))?;
                Ok(out)
            });
        result.map_err(|e| match e {
            TransactionError::Abort(a) => a,
            TransactionError::Storage(e) => CommitAbort::Corrupt(e.into()),
        })
    }

    /// Copies every tree except `objects` into `dest` verbatim: names, documents, versions, the
    /// change feed and the meta records (format, policy, counters).
    pub(crate) fn copy_records_to(&self, dest: &Self) -> StoreResult<()> {
        let pairs = [
            (&self.names, &dest.names),
            (&self.docs, &dest.docs),
            (&self.versions, &dest.versions),
            (&self.feed, &dest.feed),
            (&self.meta, &dest.meta),
        ];
        for (from, to) in pairs {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for kv in from.iter() {
                let (k, v) = kv?;
                batch.insert(k, v);
                n += 1;
                if n % 4096 == 0 {
                    to.apply_batch(std::mem::take(&mut batch))?;
                }
            }
            to.apply_batch(batch)?;
        }
        // The copy is written in this build's format, whatever the source's, and packs are
        // numbered afresh.
        dest.meta.insert(
            META_FORMAT,
            encode_record(&FormatRecord {
                format: STORE_FORMAT,
            }),
        )?;
        dest.meta.remove(META_PACKS)?;
        Ok(())
    }

    /// Deletes an object (header and chunks). Used by `gc` only.
    pub(crate) fn delete_object(&self, hash: &ContentHash) -> StoreResult<()> {
        let mut batch = sled::Batch::default();
        for k in self
            .objects
            .range(object_key(hash, 0)..=object_key(hash, u32::MAX))
            .keys()
        {
            batch.remove(k?);
        }
        self.objects.apply_batch(batch)?;
        self.unindex(hash)
    }
}

/// A pack's number, size and what the index places in it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PackInfo {
    pub(crate) number: u64,
    pub(crate) size: u64,
    pub(crate) objects: u64,
    pub(crate) live_bytes: u64,
}

/// The result of reading one object.
type StoredResult = StoreResult<Option<StoredObject>>;

fn pack_tree_name(n: u64) -> String {
    format!("pack-{n:016x}")
}

fn parse_pack_tree_name(name: &[u8]) -> Option<u64> {
    let hex = std::str::from_utf8(name).ok()?.strip_prefix("pack-")?;
    u64::from_str_radix(hex, 16).ok()
}

fn hash_of(bytes: &[u8]) -> ContentHash {
    let mut h = [0u8; 32];
    h.copy_from_slice(bytes);
    ContentHash::from_bytes(h)
}

fn is_lock_error(e: &std::io::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// Why the engine did not open.
enum OpenFailure {
    Engine(sled::Error),
    Repair(std::io::Error),
    /// sled asserts on some damage it meets while replaying its log; the panic is caught so
    /// that a damaged store is an error, not a crash of the caller.
    Panicked(String),
}

/// Opens the engine. A store closed a moment ago in this process can still be locked while
/// the engine's background flusher winds down, so a lock error is retried for up to a second
/// before it is reported. Before every attempt, crash leftovers are repaired under the lock.
fn open_db(
    path: &Path,
    config: &KvConfig,
    repairs: &mut Vec<String>,
) -> Result<sled::Db, OpenFailure> {
    let mut waited = std::time::Duration::ZERO;
    let step = std::time::Duration::from_millis(20);
    loop {
        repairs.extend(
            crate::recover::repair_before_open(path, SEGMENT_LEN).map_err(OpenFailure::Repair)?,
        );
        let attempt = std::panic::catch_unwind(|| {
            sled::Config::new()
                .path(path)
                .cache_capacity(config.cache_capacity)
                .segment_size(SEGMENT_LEN)
                .open()
        });
        let result = match attempt {
            Ok(result) => result,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "no message".to_owned());
                return Err(OpenFailure::Panicked(message));
            }
        };
        match result {
            Err(sled::Error::Io(ref io))
                if is_lock_error(io) && waited < std::time::Duration::from_secs(1) =>
            {
                std::thread::sleep(step);
                waited += step;
            }
            other => return other.map_err(OpenFailure::Engine),
        }
    }
}

/// The error a commit transaction aborts with when stored data is damaged.
type TxnError = ConflictableTransactionError<CommitAbort>;

/// Reads and decodes a record inside a transaction; `None` when absent.
fn txn_get<R: Record>(
    tree: &TransactionalTree,
    key: &[u8],
    what: &dyn Fn() -> String,
) -> Result<Option<R>, TxnError> {
    match tree.get(key)? {
        None => Ok(None),
        Some(bytes) => decode::<R>(&bytes, what)
            .map(Some)
            .map_err(|e| ConflictableTransactionError::Abort(CommitAbort::Corrupt(e))),
    }
}

/// As [`txn_get`], for a record that must exist.
fn txn_require<R: Record>(
    tree: &TransactionalTree,
    key: &[u8],
    what: &dyn Fn() -> String,
) -> Result<R, TxnError> {
    txn_get(tree, key, what)?.ok_or_else(|| {
        ConflictableTransactionError::Abort(CommitAbort::Corrupt(StoreError::corrupt(
            what(),
            "is missing",
        )))
    })
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

/// Splits an object's part-0 value into its header and inline payload (empty unless the
/// header says `parts == 0`).
fn split_object_record<'a>(
    hash: &ContentHash,
    bytes: &'a [u8],
) -> StoreResult<(ObjectHeader, &'a [u8])> {
    let (header, tail) = decode_record_prefix::<ObjectHeader>(bytes)
        .map_err(|e| StoreError::decode(format!("object {hash}"), e))?;
    if header.parts > 0 && !tail.is_empty() {
        return Err(StoreError::corrupt(
            format!("object {hash}"),
            format!(
                "{} unexpected bytes after a chunked object's header",
                tail.len()
            ),
        ));
    }
    Ok((header, tail))
}

/// The number of chunks a payload is stored in: 0 when it fits inline beside its header.
pub(crate) fn parts_for(payload_len: usize) -> u32 {
    if payload_len <= CHUNK_LEN {
        0
    } else {
        u32::try_from(payload_len.div_ceil(CHUNK_LEN)).expect("payloads are far below 2^32 chunks")
    }
}

fn object_key(hash: &ContentHash, part: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(hash.as_bytes());
    k[32..].copy_from_slice(&part.to_be_bytes());
    k
}
