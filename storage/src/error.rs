//! Errors of opening and using a store.

use std::path::PathBuf;

use strata_core::{ContentHash, DecodeError, DocId};

/// Opaque wrapper so that the storage engine's error type is not part of our public API.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl BackendError {
    pub(crate) fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(e))
    }
}

/// Errors from opening a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No store exists at the path and the options asked not to create one.
    #[error("no store at {path}: it is created by the first put (or pass another store path)")]
    Missing {
        /// The path that was tried.
        path: PathBuf,
    },
    /// Another process holds the store open, and kept it past the wait
    /// ([`crate::StoreOptions::lock_wait`]).
    #[error(
        "store at {path} is in use by {}; wait for it to finish (the CLI's --wait SECONDS waits longer) or stop it",
        pid.map_or_else(|| "another process".to_owned(), |p| format!("process {p}"))
    )]
    Locked {
        /// The store's path.
        path: PathBuf,
        /// The holding process, when it recorded itself (`strata-pid` in the store).
        pid: Option<u32>,
    },
    /// This process already has the store open through another [`Store`](crate::Store).
    #[error(
        "store at {path} is already open in this process: clone the Store you have (clones share one handle and are thread-safe)"
    )]
    AlreadyOpen {
        /// The store's path.
        path: PathBuf,
    },
    /// The store is of an earlier format that this build converts but does not write.
    #[error(
        "store at {path} has format {found}: convert it with `strata --store {path} repack` (the old store stays in place until the converted one verifies)"
    )]
    OldFormat {
        /// The store's path.
        path: PathBuf,
        /// The format found on disk.
        found: u32,
    },
    /// The store was written by a format this build does not read.
    #[error(
        "store at {path} has format {found}; this build reads format {supported}: use a matching strata release"
    )]
    UnsupportedFormat {
        /// The store's path.
        path: PathBuf,
        /// The format found on disk.
        found: u32,
        /// The format this build reads.
        supported: u32,
    },
    /// The path holds data that is not a strata store.
    #[error("{path} is not a strata store: {reason}")]
    NotAStore {
        /// The path.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The store's files are damaged so that opening it would hide lost versions.
    #[error(
        "store at {path} is damaged: {reason}; keep a copy of the directory before trying anything else"
    )]
    Damaged {
        /// The store's path.
        path: PathBuf,
        /// What is damaged.
        reason: String,
    },
    /// The storage engine failed.
    #[error("could not open the store at {path}: {source}")]
    Backend {
        /// The store's path.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: BackendError,
    },
}

/// Errors from reading or writing an open store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A put with an expected version found the document at another version. Nothing was written.
    #[error(
        "conflict on '{doc}': expected it at version {expected}, but it is at version {actual}; read the latest and retry"
    )]
    Conflict {
        /// The document.
        doc: DocId,
        /// The version the writer expected (0: no versions yet).
        expected: u64,
        /// The document's current version (0: no versions yet).
        actual: u64,
    },
    /// A put gave a time before the document's newest version's: a document's versions never
    /// go back in time.
    #[error(
        "time of the new version of '{doc}', {}, is before its newest version's, {}: a document's versions never go back in time; give a time at or after it",
        strata_core::time::rfc3339(*time_ms),
        strata_core::time::rfc3339(*newest_ms)
    )]
    TimeGoesBack {
        /// The document.
        doc: DocId,
        /// The time given for the new version, in ms since the Unix epoch.
        time_ms: u64,
        /// The newest version's time.
        newest_ms: u64,
    },
    /// A retention rule that cannot be applied.
    #[error("{reason}")]
    BadRetention {
        /// What is wrong and what to do.
        reason: String,
    },
    /// A tag cannot be set or used as asked.
    #[error("{reason}")]
    Tag {
        /// What is wrong and what to do.
        reason: String,
    },
    /// A feed consumer's name or position is not acceptable.
    #[error("{reason}")]
    BadConsumer {
        /// What is wrong and what to do.
        reason: String,
    },
    /// The content is larger than the store's configured maximum.
    #[error(
        "content for '{doc}' is {size} bytes, over the limit of {limit} bytes; raise it with StoreOptions::max_content_len (the CLI's --max-size)"
    )]
    TooLarge {
        /// The document.
        doc: DocId,
        /// The content's size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A put gave a metadata key that strata reserves (one starting with `strata:`).
    #[error(
        "metadata key '{key}' for '{doc}' is reserved (keys starting with 'strata:' are strata's); rename it"
    )]
    ReservedMetadata {
        /// The document.
        doc: DocId,
        /// The key.
        key: String,
    },
    /// The metadata given with a put is too large to store.
    #[error("metadata for '{doc}' is {size} bytes encoded, over the limit of {limit} bytes")]
    MetadataTooLarge {
        /// The document.
        doc: DocId,
        /// The encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A stored record or object is missing or undecodable; run `verify`, restore from an export.
    #[error("corrupt store: {what}: {reason}")]
    Corrupt {
        /// What is damaged (an object id, a version).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Rebuilding an object produced bytes whose hash is not its id.
    #[error("corrupt store: object {expected} rebuilt to content with id {actual}")]
    HashMismatch {
        /// The object's id.
        expected: ContentHash,
        /// The hash of what was rebuilt.
        actual: ContentHash,
    },
    /// A repack could not complete; the original store is unchanged.
    #[error("repack failed: {reason}")]
    Repack {
        /// What went wrong.
        reason: String,
    },
    /// The disk holding the store is full. The store refuses every call after this error
    /// until it is opened again; the failed write is not stored, and every version
    /// acknowledged before it is kept.
    #[error(
        "the disk holding the store is full ({reason}): the write was not stored; free some \
         space and open the store again (every version written before is safe)"
    )]
    DiskFull {
        /// The operating system's message.
        reason: String,
    },
    /// An earlier write failed in the storage engine (an I/O error), so this open store
    /// refuses every call; opening it again recovers every write that completed.
    #[error(
        "the store stopped after a write failed ({reason}): open it again (every version \
         written before the failure is safe)"
    )]
    Stopped {
        /// The engine's error.
        reason: String,
    },
    /// Another process sharing the store (the NATS engine) holds it for maintenance (gc,
    /// prune, repack) past the wait, or its maintenance removed what this write needed.
    /// Nothing was written.
    #[error("{reason}")]
    Busy {
        /// What held the store, and what to do.
        reason: String,
    },
    /// The storage engine failed.
    #[error("storage engine failed: {0}")]
    Backend(#[source] BackendError),
}

/// The result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The error of a write that found the disk full.
    pub(crate) fn disk_full() -> Self {
        Self::DiskFull {
            reason: "no space left on device".to_owned(),
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn decode(what: impl std::fmt::Display, e: DecodeError) -> Self {
        Self::corrupt(what, e)
    }

    /// Names the version being read in a corruption error, so a user learns which document
    /// and version are damaged and not only which record.
    pub(crate) fn reading(self, doc: &DocId, version: u64) -> Self {
        match self {
            Self::Corrupt { what, reason } => Self::Corrupt {
                what: format!("{doc}@{version} ({what})"),
                reason,
            },
            Self::HashMismatch { expected, actual } => Self::Corrupt {
                what: format!("{doc}@{version} (object {expected})"),
                reason: format!("rebuilt to content with id {actual}"),
            },
            other => other,
        }
    }

    /// Adds the object being read to a corruption error that does not name one yet.
    pub(crate) fn at_object(self, id: &strata_core::ContentHash) -> Self {
        match self {
            Self::Corrupt { what, reason } if !what.contains("object") => Self::Corrupt {
                what: format!("object {id} ({what})"),
                reason,
            },
            other => other,
        }
    }

    /// Returns `true` when the error means stored data is damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::HashMismatch { .. })
    }
}
