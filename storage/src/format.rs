//! The store's own records (beside the domain records of `strata-core`) and the format version.

use serde::{Deserialize, Serialize};
use strata_core::VersionNo;
use strata_core::codec::Record;

/// The store format this build writes and reads. Bump on any change to the layout.
/// NOTE: update `docs/format.md` ("Version changes") when changing it.
pub const STORE_FORMAT: u32 = 5;

/// The earlier format this build can still read, to convert it (`strata repack`): format 1
/// stores hold every object loose, which format 2 reads unchanged.
pub(crate) const CONVERTIBLE_FORMAT: u32 = 1;

/// The earlier formats this build upgrades in place when it opens a store. Format 3 adds
/// record runs (`runs`, `tombstones`) to format 2, so a format 2 store is a format 3 store
/// without runs; format 4 writes new packs as files (`packs/`) and still reads the packs
/// format 3 kept as sled values, so a format 3 store is a format 4 store without pack files;
/// format 5 writes the block tables of large record runs in chunks in the run's file and
/// still reads format 4's directories, so a format 4 store is a format 5 store without them.
/// The record is rewritten so that an older build, which reads neither runs nor pack files,
/// refuses the store instead of missing records or objects.
pub(crate) const UPGRADABLE_FORMATS: [u32; 3] = [2, 3, 4];

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
    /// The first sequence number of the newest feed page (0: no page yet).
    pub(crate) feed_page: u64,
}

/// Where a packed object sits: `len` bytes at `offset` of pack `pack`, holding the object's
/// header record followed by its payload (the layout of a loose inline object). The `index`
/// tree maps an object id to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PackedRef {
    pub(crate) pack: u64,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    /// The pack holds this object alone (a large loose object): it is dropped with it.
    pub(crate) solo: bool,
}

impl Record for PackedRef {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "pack index entry";
}

/// The `meta` tree's pack counter: the number the next pack gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PackCounter {
    pub(crate) next: u64,
}

impl Record for PackCounter {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "pack counter";
}

/// The first byte of every pack value: the pack layout's version.
pub(crate) const PACK_FORMAT: u8 = 1;

/// Pages are closed once their encoding passes this many bytes. sled writes a node of more than
/// a quarter segment (8 KiB) to its never-reclaimed `blobs/`, and a leaf holds up to 17
/// entries: 17 pages of this size stay under it.
pub(crate) const PAGE_LIMIT: usize = 450;

/// Consecutive versions of one document, stored under the key `doc ‖ first`. Packing records
/// saves sled's per-entry overhead (about 100 bytes each on disk).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionPage {
    pub(crate) first: VersionNo,
    pub(crate) records: Vec<strata_core::VersionRecord>,
}

impl Record for VersionPage {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "version page";
}

/// Consecutive change-feed entries, stored under the key `first` (a sequence number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FeedPage {
    pub(crate) first: u64,
    pub(crate) entries: Vec<FeedRecord>,
}

impl Record for FeedPage {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "feed page";
}

impl Record for Counters {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "counters record";
}

/// Per-document record: its key, its latest version, and the first version of the page that
/// holds the latest version's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DocRecord {
    pub(crate) key: String,
    pub(crate) head: VersionNo,
    pub(crate) page: VersionNo,
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
                next_seq: 300,
                feed_page: 1
            }),
            [1, 2, 0xac, 0x02, 1]
        );
        let doc = DocRecord {
            key: "ab".into(),
            head: VersionNo(3),
            page: VersionNo(2),
        };
        assert_eq!(encode_record(&doc), [1, 2, b'a', b'b', 3, 2]);
        assert_eq!(
            decode_record::<DocRecord>(&[1, 2, b'a', b'b', 3, 2]).unwrap(),
            doc
        );
        let page = FeedPage {
            first: 5,
            entries: vec![FeedRecord {
                doc: 1,
                version: VersionNo(2),
            }],
        };
        assert_eq!(encode_record(&page), [1, 5, 1, 1, 2]);
        let vp = VersionPage {
            first: VersionNo(1),
            records: vec![],
        };
        assert_eq!(encode_record(&vp), [1, 1, 0]);
        assert_eq!(
            encode_record(&FeedRecord {
                doc: 1,
                version: VersionNo(2)
            }),
            [1, 1, 2]
        );
        assert_eq!(encode_record(&NameRecord { doc: 7 }), [1, 7]);
        assert_eq!(
            encode_record(&PackedRef {
                pack: 3,
                offset: 200,
                len: 17,
                solo: true
            }),
            [1, 3, 0xc8, 0x01, 17, 1]
        );
        assert_eq!(encode_record(&PackCounter { next: 4 }), [1, 4]);
    }
}
