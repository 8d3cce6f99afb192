//! The only module that names `sled`: trees, keys, batches and transactions. Opening is in
//! `open.rs`, objects (loose and packed) in `objects.rs`; records, pages and the commit
//! transaction here.
//!
//! Trees (see `docs/format.md` for the bytes):
//! - `names`: document key (UTF-8) → [`NameRecord`] (document number)
//! - `docs`: doc number BE → [`DocRecord`] (key and latest version)
//! - `versions`: doc number BE ‖ version BE → `VersionRecord`
//! - `objects`: content hash ‖ part BE u32 → part 0: `ObjectHeader`; parts 1..=n: payload
//!   chunks (loose objects)
//! - `index`: content hash → [`PackedRef`] (packed objects); `pack-<n>`: one pack value each
//! - `feed`: sequence number BE → [`FeedRecord`]
//! - `meta`: `format` → [`FormatRecord`], `policy` → `Policy`, `counters` → [`Counters`],
//!   `packs` → [`PackCounter`]

mod objects;
mod open;

pub(crate) use objects::{StoredObject, parts_for};
#[cfg(test)]
pub(crate) use open::SEGMENT_LEN;

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

const META_FORMAT: &[u8] = b"format";
const META_POLICY: &[u8] = b"policy";
const META_COUNTERS: &[u8] = b"counters";
const META_PACKS: &[u8] = b"packs";

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

/// Why a commit transaction stopped.
pub(crate) enum CommitAbort {
    Conflict {
        index: usize,
        expected: u64,
        actual: u64,
    },
    Corrupt(StoreError),
}

impl Kv {
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
