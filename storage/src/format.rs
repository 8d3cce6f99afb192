//! The store's own records (beside the domain records of `strata-core`) and the format version.

use serde::{Deserialize, Serialize};
use strata_core::VersionNo;
use strata_core::codec::Record;

/// The store format this build writes and reads. Bump on any change to the layout.
pub const STORE_FORMAT: u32 = 1;

/// The `meta` tree's record naming the store format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FormatRecord {
    pub(crate) format: u32,
}

impl Record for FormatRecord {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "format record";
}

/// Store-wide counters, updated inside every commit transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counters {
    /// The number the next new document gets.
    pub(crate) next_doc: u64,
    /// The sequence number the next version gets.
    pub(crate) next_seq: u64,
}

impl Record for Counters {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "counters record";
}

/// Per-document record: its key and its latest version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DocRecord {
    pub(crate) key: String,
    pub(crate) head: VersionNo,
}

impl Record for DocRecord {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "document record";
}

/// One entry of the change feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FeedRecord {
    pub(crate) doc: u64,
    pub(crate) version: VersionNo,
}

impl Record for FeedRecord {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "feed record";
}

/// Document numbers stored in the `names` tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NameRecord {
    pub(crate) doc: u64,
}

impl Record for NameRecord {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "name record";
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::codec::{decode_record, encode_record};

    /// Golden bytes: if one of these fails, the on-disk layout changed.
    #[test]
    fn store_records_golden_bytes() {
        assert_eq!(encode_record(&FormatRecord { format: 1 }), [1, 1]);
        assert_eq!(
            encode_record(&Counters {
                next_doc: 2,
                next_seq: 300
            }),
            [1, 2, 0xac, 0x02]
        );
        let doc = DocRecord {
            key: "ab".into(),
            head: VersionNo(3),
        };
        assert_eq!(encode_record(&doc), [1, 2, b'a', b'b', 3]);
        assert_eq!(
            decode_record::<DocRecord>(&[1, 2, b'a', b'b', 3]).unwrap(),
            doc
        );
        assert_eq!(
            encode_record(&FeedRecord {
                doc: 1,
                version: VersionNo(2)
            }),
            [1, 1, 2]
        );
        assert_eq!(encode_record(&NameRecord { doc: 7 }), [1, 7]);
    }
}
