//! Domain types of strata, the versioned document store: identifiers, the records that reach
//! disk, and the policies that decide how each version is stored. Nothing here does I/O.
//!
//! ```
//! use strata_core::{ContentHash, DocId, Policy};
//!
//! let doc = DocId::new("notes/today")?;
//! assert_eq!(doc.as_str(), "notes/today");
//! let id = ContentHash::of(b"hello\n");
//! assert_eq!(id.to_string().len(), 64);
//! assert_eq!("chain:50".parse::<Policy>()?, Policy::Chain { max_depth: 50 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Overview
//! - [`ContentHash`]: blake3 of a version's full content; the identity of an object.
//! - [`DocId`], [`VersionNo`]: a validated document key and a 1-based version number.
//! - [`VersionRecord`], [`ObjectHeader`], [`Metadata`]: what the store keeps per version/object.
//! - [`codec`]: the record envelope (`[format byte][postcard]`) and big-endian keys.
//! - [`Policy`], [`SnapshotPolicy`]: full snapshot or delta, per version.
//!
//! # Design
//! See `docs/architecture.md` and `docs/format.md` in the repository.

pub mod codec;
mod hash;
mod id;
pub mod policy;
mod record;
pub mod time;

pub use codec::DecodeError;
pub use hash::{ContentHash, ParseHashError};
pub use id::{DocId, KeyError, MAX_KEY_LEN, VersionNo};
pub use policy::{Encoding, ParsePolicyError, Policy, PolicyInput, SnapshotPolicy};
pub use record::{Codec, DELETED_KEY, Metadata, ObjectHeader, ObjectKind, VersionRecord};
