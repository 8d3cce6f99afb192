//! Versioned document storage on sled: every `put` appends a version, kept as a full
//! compressed snapshot or as a delta against another version, as a policy decides.
//!
//! ```
//! use strata_storage::{At, DocId, Store};
//!
//! let store = Store::open_temporary()?;
//! let doc = DocId::new("notes/today")?;
//! store.put(&doc, b"first draft\n")?;
//! store.put(&doc, b"second draft\n")?;
//! assert_eq!(store.get(&doc, At::Latest)?.as_deref(), Some(&b"second draft\n"[..]));
//! assert_eq!(store.get(&doc, At::Version(strata_core::VersionNo(1)))?.as_deref(), Some(&b"first draft\n"[..]));
//! assert_eq!(store.history(&doc)?.len(), 2);
//! assert!(store.verify()?.is_clean());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Overview
//! - [`Store`]: open (a directory; a store on a NATS JetStream cluster, given as
//!   `nats://HOST:PORT[,HOST:PORT...][/NAME][?replicas=N]`, which many processes on many hosts
//!   use at once, see `docs/scale-out.md`; or [`Store::open_memory`] on a [`MemoryEngine`]),
//!   [`put`](Store::put), [`get`](Store::get), [`history`](Store::history),
//!   [`documents`](Store::documents), [`diff`](Store::diff), [`changes`](Store::changes),
//!   [`stats`](Store::stats), [`verify`](Store::verify), [`gc`](Store::gc),
//!   [`flush`](Store::flush), [`repack_at`](Store::repack_at) (re-encode everything, safe to
//!   interrupt), [`copy_to`](Store::copy_to) (to a new store on any engine, checked after).
//! - [`StoreOptions`]: policy (default `reverse:4`: the latest version is stored in full, older
//!   ones as deltas against the next newer one), durability, cache sizes (rebuilt contents:
//!   16 MiB by default), content limit, compression level.
//! - [`RepackOptions`] / [`RepackReport`]: policy, zstd level and base window for a repack.
//! - [`WriteBatch`]: many puts, one transaction, one flush.
//! - [`At`]: which version to read; [`spec`] parses `DOC@VERSION` as people type it.
//!   [`StoreError`] / [`OpenError`]: what went wrong (a full disk is
//!   [`StoreError::DiskFull`]; the open store then stops until it is opened again).
//! - [`render`]: print a [`DocDiff`] as a unified diff, a word diff or a stat (re-exported
//!   from `strata-diff`, so printing a diff needs no other dependency).
//!
//! # Layout and integrity
//! Objects are kept in *packs* (many objects in one file written once and read by offset,
//! git's way) with an index from content id to place; what still changes (each document's
//! newest version under reverse policies, single puts until the next fold) is kept loose and
//! folded into packs every 256 versions. Small records (document names, version and feed
//! pages, the pack index) are kept in sorted *runs*, files of 8 KiB blocks written once and
//! merged now and then, since the engine keeps a small entry at 2-4x its size. Every read is
//! checked: by the CRC-32 that seals each stored payload (zstd's content checksum in stores
//! written before format 5), or by the blake3 id where an object has neither; [`StoreOptions::verify_reads`] checks ids on
//! every read too, and [`Store::verify`] always does.
//!
//! # Durability
//! By default every `put` flushes before it returns, so a version that was acknowledged
//! survives a crash. With [`Durability::Manual`], call [`Store::flush`] (or use a
//! [`WriteBatch`]) to make writes durable.
//!
//! # Design
//! `docs/architecture.md` (crates, write and read paths) and `docs/format.md` (bytes on disk)
//! in the repository.

mod encode;
mod engine;
mod error;
mod fasthash;
mod feed;
mod fold;
mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod kv;
mod options;
mod prune;
mod read;
mod recover;
mod repack;
mod reverse;
pub mod spec;
mod store;
mod verify;
mod write;

pub use engine::memory::MemoryEngine;

/// Whether `path` names a store on a NATS JetStream cluster (`nats://...`, see
/// `docs/scale-out.md`) rather than a directory.
pub fn is_nats_store(path: impl AsRef<std::path::Path>) -> bool {
    engine::nats::address_of(path.as_ref()).is_some()
}
pub use error::{BackendError, OpenError, StoreError, StoreResult};
pub use feed::{Feed, FeedEntry, Subscription};
pub use format::STORE_FORMAT;
pub use options::{
    DEFAULT_LOCK_WAIT, Durability, LARGE_DELTA_LEVEL, SMALL_DELTA_LEVEL, SMALL_DELTA_SPAN,
    StoreOptions,
};
pub use prune::{PruneReport, Retention};
pub use read::Content;
pub use repack::{RepackOptions, RepackReport};
pub use store::{At, Change, DocEntry, MAX_CONSUMER_NAME, MAX_TAG_NAME, Store};
pub use strata_core::{ContentHash, DocId, Metadata, Policy, VersionNo, VersionRecord};
pub use strata_diff::{DiffOptions, DocDiff, render};
pub use verify::{StoreStats, VerifyReport};
pub use write::{MAX_METADATA_LEN, PutOptions, WriteBatch};
