//! The records a store keeps per version and per object.
//!
//! Field order is part of the on-disk format (postcard has no field names): never reorder or
//! add fields in place. Add a new schema with a new format byte instead, and keep reading the
//! old one. The golden-bytes tests below fail when a layout changes by accident.

use serde::{Deserialize, Serialize};

use crate::codec::Record;
use crate::{ContentHash, VersionNo};

/// Optional facts about a version: who wrote it and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The author, as the writer gives it.
    pub author: Option<String>,
    /// A message describing the change.
    pub message: Option<String>,
    /// Free-form key/value pairs, in the order given.
    pub extra: Vec<(String, String)>,
}

impl Metadata {
    /// Returns metadata with only a message.
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::default()
        }
    }
}

/// One version of one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The version number, 1-based per document.
    pub version: VersionNo,
    /// blake3 of the version's full content: the id of its object.
    pub hash: ContentHash,
    /// The full content's length in bytes.
    pub size: u64,
    /// When the version was written, in milliseconds since the Unix epoch (UTC).
    pub created_at_ms: u64,
    /// The store-wide sequence number of this write (the change feed's offset).
    pub seq: u64,
    /// Author, message and other facts given with the write.
    pub meta: Metadata,
}

/// The metadata key that marks a version as a deletion (a tombstone, written by
/// `Store::delete`): its content is empty, and reads of it find nothing. Keys starting with
/// `strata:` are reserved: a put that gives one is refused.
pub const DELETED_KEY: &str = "strata:deleted";

impl VersionRecord {
    /// Returns `true` when this version records the document's deletion.
    #[must_use]
    pub fn is_deletion(&self) -> bool {
        self.meta.extra.iter().any(|(k, _)| k == DELETED_KEY)
    }
}

impl Record for VersionRecord {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "version record";
}

/// How an object's payload is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Codec {
    /// The bytes as they are.
    Raw,
    /// A zstd frame of the full content, with zstd's content checksum (store formats 2-4).
    Zstd,
    /// A zstd frame compressed with the base's full content as a reference prefix, with
    /// zstd's content checksum (store formats 2-4).
    ZstdPatch,
    /// A zstd frame of the full content, sealed by a CRC-32 of the payload (store format 5).
    ZstdSealed,
    /// A zstd frame compressed with the base's full content as a reference prefix, sealed by
    /// a CRC-32 of the payload (store format 5).
    ZstdPatchSealed,
}

impl Codec {
    /// A short lowercase name for output.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Zstd | Self::ZstdSealed => "zstd",
            Self::ZstdPatch | Self::ZstdPatchSealed => "zstd-patch",
        }
    }
}

/// Whether an object is a full snapshot or a delta, and against what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectKind {
    /// The payload is the whole content under `codec`.
    Full {
        /// How the payload is encoded.
        codec: Codec,
    },
    /// The payload turns the content of `base` into this content.
    Delta {
        /// The object this delta applies to.
        base: ContentHash,
        /// How the delta is encoded.
        codec: Codec,
        /// Number of deltas between this object and the nearest full snapshot (1 = base is full).
        depth: u32,
        /// Stored bytes read to rebuild this object: every payload on the chain, this one included.
        chain_cost: u64,
    },
}

/// The header of a stored object; its payload is kept beside it in `parts` chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeader {
    /// Length of the full content.
    pub raw_len: u64,
    /// Length of the stored payload (all parts together).
    pub stored_len: u64,
    /// Number of payload chunks.
    pub parts: u32,
    /// Full snapshot or delta.
    pub kind: ObjectKind,
}

impl ObjectHeader {
    /// Returns the delta depth: 0 for a full snapshot.
    pub const fn depth(&self) -> u32 {
        match self.kind {
            ObjectKind::Full { .. } => 0,
            ObjectKind::Delta { depth, .. } => depth,
        }
    }

    /// Returns the stored bytes read to rebuild this object.
    pub const fn chain_cost(&self) -> u64 {
        match self.kind {
            ObjectKind::Full { .. } => self.stored_len,
            ObjectKind::Delta { chain_cost, .. } => chain_cost,
        }
    }

    /// Returns `true` for a delta.
    pub const fn is_delta(&self) -> bool {
        matches!(self.kind, ObjectKind::Delta { .. })
    }
}

impl Record for ObjectHeader {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "object header";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_record, encode_record};

    /// Golden bytes: if this fails, the on-disk layout changed. Add a new format instead.
    #[test]
    fn version_record_golden_bytes() {
        let rec = VersionRecord {
            version: VersionNo(2),
            hash: ContentHash::from_bytes([0xab; 32]),
            size: 300,
            created_at_ms: 1,
            seq: 5,
            meta: Metadata {
                author: Some("al".into()),
                message: None,
                extra: vec![("k".into(), "v".into())],
            },
        };
        let bytes = encode_record(&rec);
        let mut expected = vec![1, 2];
        expected.extend([0xab; 32]);
        expected.extend([0xac, 0x02, 1, 5, 1, 2, b'a', b'l', 0, 1, 1, b'k', 1, b'v']);
        assert_eq!(bytes, expected);
        assert_eq!(decode_record::<VersionRecord>(&bytes).unwrap(), rec);
    }

    #[test]
    fn object_header_golden_bytes() {
        let full = ObjectHeader {
            raw_len: 10,
            stored_len: 8,
            parts: 1,
            kind: ObjectKind::Full { codec: Codec::Zstd },
        };
        assert_eq!(encode_record(&full), [1, 10, 8, 1, 0, 1]);
        let delta = ObjectHeader {
            raw_len: 10,
            stored_len: 3,
            parts: 1,
            kind: ObjectKind::Delta {
                base: ContentHash::from_bytes([1; 32]),
                codec: Codec::ZstdPatch,
                depth: 2,
                chain_cost: 20,
            },
        };
        let bytes = encode_record(&delta);
        let mut expected = vec![1, 10, 3, 1, 1];
        expected.extend([1; 32]);
        expected.extend([2, 2, 20]);
        assert_eq!(bytes, expected);
        assert_eq!(decode_record::<ObjectHeader>(&bytes).unwrap(), delta);
        assert_eq!(delta.depth(), 2);
        // Store format 5's sealed codecs are variants 3 and 4.
        let sealed = ObjectHeader {
            kind: ObjectKind::Full {
                codec: Codec::ZstdSealed,
            },
            ..full
        };
        assert_eq!(encode_record(&sealed), [1, 10, 8, 1, 0, 3]);
        let sealed_delta = ObjectHeader {
            kind: ObjectKind::Delta {
                base: ContentHash::from_bytes([1; 32]),
                codec: Codec::ZstdPatchSealed,
                depth: 2,
                chain_cost: 20,
            },
            ..delta
        };
        let mut expected = vec![1, 10, 3, 1, 1];
        expected.extend([1; 32]);
        expected.extend([4, 2, 20]);
        assert_eq!(encode_record(&sealed_delta), expected);
        assert_eq!(full.chain_cost(), 8);
    }
}
