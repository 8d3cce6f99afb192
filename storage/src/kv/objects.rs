//! Objects: loose ones in the `objects` tree (format 1's layout), packed ones in pack trees
//! found through the `index` tree.

use super::*;

// Stores written before session 5 split loose payloads over 384 bytes into chunks (parts
// 1..=n of the `objects` space), to keep sled leaves under a quarter segment while sled
// never removed the file of a replaced blob; they are still read. New loose objects are one
// value each (`parts = 0`), and those over `SOLO_MIN` are packs of their own.

/// How many bytes of its id precede each object in a pack.
const PACK_ID_PREFIX: usize = 8;

/// Objects with a payload larger than this are stored as a pack of their own.
pub(crate) const SOLO_MIN: usize = 4 << 10;

/// The one key of a pack tree.
use crate::engine::PACK_KEY;

/// An object's header with its inline payload (empty when the payload is chunked). The
/// payload is shared with the engine's cache (a range of the value read), not copied.
pub(crate) struct StoredObject {
    pub(crate) header: ObjectHeader,
    pub(super) inline: Payload,
}

/// Payload bytes: a range of a value the engine returned (shared, not copied), or bytes
/// assembled from the chunks of an older store's loose object.
pub(crate) type Payload = Value;

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

/// The pack an index entry names when the object is alone in it (a solo pack, dropped with
/// the object), else `None`.
fn solo_pack(entry: &[u8]) -> Option<u64> {
    decode_record::<PackedRef>(entry)
        .ok()
        .filter(|at| at.solo)
        .map(|at| at.pack)
}

/// Reads a key of the `objects` tree: the object's id and whether it is the header (part 0)
/// rather than a payload chunk.
fn loose_key(k: &[u8]) -> StoreResult<(ContentHash, bool)> {
    if k.len() != 36 {
        return Err(StoreError::corrupt(
            "objects tree",
            format!("bad key {k:?}"),
        ));
    }
    Ok((hash_of(&k[..32]), k[32..] == [0, 0, 0, 0]))
}

fn hash_of(bytes: &[u8]) -> ContentHash {
    let mut h = [0u8; 32];
    h.copy_from_slice(bytes);
    ContentHash::from_bytes(h)
}

/// Splits an object's part-0 value into its header and inline payload (empty unless the
/// header says `parts == 0`).
pub(super) fn split_object_record<'a>(
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

fn object_key(hash: &ContentHash, part: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(hash.as_bytes());
    k[32..].copy_from_slice(&part.to_be_bytes());
    k
}

impl Kv {
    pub(crate) fn object_header(&self, hash: &ContentHash) -> StoreResult<Option<ObjectHeader>> {
        Ok(self.object(hash)?.map(|o| o.header))
    }

    /// Reads an object once: its header and, when the payload is inline or packed, the
    /// payload too. A loose object (written since the last fold) shadows a packed copy.
    pub(crate) fn object(&self, hash: &ContentHash) -> StoredResult {
        Ok(self.object_after(hash, None)?.0)
    }

    /// As [`Kv::object`], first trying the bytes that follow `after` in its pack: a delta's
    /// base is usually the next object there (packs are written chain by chain, each delta
    /// followed by its base), and finding it there saves the index lookup (every version of
    /// eslint-rules-docs: 1.04-1.06 -> 0.98x git's time, BENCHMARKS.md session 12). Returns
    /// where the object's bytes end when it was read from a pack, for the next step.
    ///
    /// What is found there must carry the object's id prefix and decode as an object record
    /// whose length fits the pack, and its payload is then checked as any other (CRC-32 or
    /// zstd's checksum, and the id where neither applies); otherwise the index decides.
    pub(crate) fn object_after(
        &self,
        hash: &ContentHash,
        after: Option<PackedAt>,
    ) -> StoreResult<(Option<StoredObject>, Option<PackedAt>)> {
        if let Some(bytes) = self.engine.get(Space::Objects, &object_key(hash, 0))? {
            let (header, inline) = split_object_record(hash, &bytes)?;
            let len = inline.len();
            let object = StoredObject {
                header,
                inline: bytes.slice(bytes.len() - len..bytes.len()),
            };
            return Ok((Some(object), None));
        }
        if let Some(at) = after
            && let Some((object, end)) = self.object_at(hash, at)
        {
            return Ok((Some(object), Some(end)));
        }
        let Some(entry) = self.engine.get(Space::Index, hash.as_bytes())? else {
            return Ok((None, None));
        };
        let at = decode::<PackedRef>(&entry, || format!("pack index entry of object {hash}"))?;
        // Only the object's own bytes are read (a pack file is read by offset).
        let bytes = self
            .engine
            .blob_range(Space::Pack(at.pack), at.offset, at.len)
            .map_err(|e| e.at_object(hash))?
            .ok_or_else(|| {
                StoreError::corrupt(
                    format!("object {hash}"),
                    format!("its pack {} is missing", at.pack),
                )
            })?;
        let end = PackedAt {
            pack: at.pack,
            end: at.offset.saturating_add(at.len),
        };
        Ok((Some(in_object(hash, at.pack, &bytes)?), Some(end)))
    }

    /// The object `hash` if it is what starts where `at` ends, and where it ends; `None` when
    /// it is not there (anything else, or nothing readable).
    fn object_at(&self, hash: &ContentHash, at: PackedAt) -> Option<(StoredObject, PackedAt)> {
        let space = Space::Pack(at.pack);
        // The pack was read a moment ago: its size is known without a `stat`.
        let size = self.engine.blob_len(space).ok()??;
        let head_len = size.checked_sub(at.end)?.min(GUESS_HEAD);
        let head = self.engine.blob_range(space, at.end, head_len).ok()??;
        let record = head.strip_prefix(&hash.as_bytes()[..PACK_ID_PREFIX])?;
        let (header, tail) = split_object_record(hash, record).ok()?;
        if header.parts != 0 {
            return None;
        }
        // The header is read once; the payload follows it, often within the bytes read.
        let start = PACK_ID_PREFIX + record.len() - tail.len();
        let len = u64::try_from(start).ok()?.checked_add(header.stored_len)?;
        let bytes = if len <= head_len {
            head
        } else {
            self.engine.blob_range(space, at.end, len).ok()??
        };
        let object = StoredObject {
            header,
            inline: bytes.slice(start..usize::try_from(len).ok()?),
        };
        let end = PackedAt {
            pack: at.pack,
            end: at.end + len,
        };
        Some((object, end))
    }
}

/// Where a packed object's bytes end in its pack: where [`Kv::object_after`] looks first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedAt {
    pack: u64,
    end: u64,
}

/// How many bytes [`Kv::object_after`] reads to see the id prefix and header of the object
/// after another: the prefix and the longest header (a delta's, with its base's id).
const GUESS_HEAD: u64 = 128;

/// Finds object `hash` where index entry `at` places it in `pack` (a pack's whole value),
/// checking every bound, the id prefix and the record (the pack reader, on its own so that it
/// can be fuzzed; reads go through [`in_object`] with the object's bytes alone).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn in_pack(
    hash: &ContentHash,
    at: &PackedRef,
    pack: &Value,
) -> StoreResult<StoredObject> {
    let range = usize::try_from(at.offset)
        .ok()
        .zip(usize::try_from(at.len).ok())
        .and_then(|(o, l)| Some(o..o.checked_add(l)?))
        .filter(|r| r.end <= pack.len())
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
    in_object(hash, at.pack, &pack.slice(range))
}

/// Reads object `hash` from `bytes`, its bytes in pack `pack` as the index places them:
/// checks the id prefix and the record.
pub(crate) fn in_object(hash: &ContentHash, pack: u64, bytes: &Value) -> StoreResult<StoredObject> {
    // Each packed object starts with its id's first bytes: an index entry that points at
    // another object of the pack is damage, caught here rather than by a checksum that the
    // other object would pass.
    let Some(record) = bytes.strip_prefix(&hash.as_bytes()[..PACK_ID_PREFIX]) else {
        return Err(StoreError::corrupt(
            format!("object {hash}"),
            format!("its index entry points at another object of pack {pack}"),
        ));
    };
    let (header, inline) = split_object_record(hash, record)?;
    if header.parts != 0 {
        return Err(StoreError::corrupt(
            format!("object {hash}"),
            "a packed object claims payload chunks",
        ));
    }
    // The payload ends where the object's bytes end.
    let end = bytes.len();
    let start = end - inline.len();
    Ok(StoredObject {
        header,
        inline: bytes.slice(start..end),
    })
}

impl Kv {
    /// Whether an object is stored, loose or packed, without reading it.
    pub(crate) fn has_object(&self, hash: &ContentHash) -> StoreResult<bool> {
        Ok(self
            .engine
            .get(Space::Objects, &object_key(hash, 0))?
            .is_some()
            || self.engine.get(Space::Index, hash.as_bytes())?.is_some())
    }

    /// Checks that pack `n` starts with the pack format byte (`verify` calls it for every
    /// pack; reads check each object's own bytes instead).
    pub(crate) fn check_pack_format(&self, n: u64) -> StoreResult<()> {
        let first = self.engine.blob_range(Space::Pack(n), 0, 1)?;
        match first.as_deref() {
            Some([PACK_FORMAT]) | None => Ok(()),
            other => Err(StoreError::corrupt(
                format!("pack {n}"),
                format!("starts with {other:?}, not the pack format {PACK_FORMAT}"),
            )),
        }
    }

    /// Writes `objects` (id, header, payload) as one new pack, then points the index at it and
    /// removes any loose copies. The pack is written before the entries that name it, so a
    /// crash leaves at most an unreferenced pack (`gc` drops it) or loose copies that shadow
    /// identical packed ones. Returns the pack's number and size.
    pub(crate) fn write_pack(
        &self,
        objects: &[(ContentHash, ObjectHeader, &[u8])],
    ) -> StoreResult<Option<(u64, u64)>> {
        self.write_pack_as(objects, false, &[])
    }

    /// As [`Kv::write_pack`]; the batch of index entries also expects `guard`, and when it
    /// does not hold, the pack is dropped and `None` returned.
    fn write_pack_as(
        &self,
        objects: &[(ContentHash, ObjectHeader, &[u8])],
        solo: bool,
        guard: &[engine::Change],
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
        let mut pack = Batch::default();
        pack.put(Space::Pack(n), PACK_KEY, value);
        self.write(pack)?;
        // The pack is durable in the engine's order before the entries that name it.
        let mut index = Batch::default();
        let mut loose = Batch::default();
        let mut replaced_solo = Vec::new();
        for (hash, offset, len) in refs {
            if let Some(old) = self.engine.get(Space::Index, hash.as_bytes())? {
                replaced_solo.extend(solo_pack(&old));
            }
            let at = PackedRef {
                pack: n,
                offset,
                len,
                solo,
            };
            index.put(Space::Index, hash.as_bytes().to_vec(), encode_record(&at));
            for kv in self.loose_parts(&hash) {
                loose.remove(Space::Objects, kv?.0.to_vec());
            }
        }
        index.expect.extend(guard.iter().cloned());
        if !self.write_guarded(index)? {
            self.drop_pack(n)?;
            return Ok(None);
        }
        if !loose.is_empty() {
            self.write(loose)?;
        }
        for pack in replaced_solo {
            self.drop_pack(pack)?;
        }
        Ok(Some((n, size)))
    }

    /// The entries of a loose object: its header (part 0) and chunks.
    fn loose_parts(&self, hash: &ContentHash) -> engine::Entries<'_> {
        self.engine.range(
            Space::Objects,
            Bound::Included(object_key(hash, 0).to_vec()),
            Bound::Included(object_key(hash, u32::MAX).to_vec()),
        )
    }

    /// Allocates the next pack number (compare-and-swap on the counter: concurrent batches
    /// get distinct numbers).
    fn next_pack(&self) -> StoreResult<u64> {
        loop {
            let old = self.engine.get(Space::Meta, META_PACKS)?;
            let current = match &old {
                None => 1,
                Some(b) => decode::<PackCounter>(b, || "pack counter".to_owned())?.next,
            };
            let mut batch = Batch::default();
            batch.put(
                Space::Meta,
                META_PACKS,
                encode_record(&PackCounter { next: current + 1 }),
            );
            batch.expect(Space::Meta, META_PACKS, old.as_deref());
            match self.engine.write(batch) {
                Ok(()) => return Ok(current),
                Err(WriteError::Conflict) => {}
                Err(WriteError::Store(e)) => return Err(e),
            }
        }
    }

    /// Returns every loose object's id and size (header and payload bytes).
    pub(crate) fn loose_objects(&self) -> StoreResult<Vec<(ContentHash, u64)>> {
        let mut out = Vec::new();
        for kv in engine::all(&*self.engine, Space::Objects) {
            let (k, v) = kv?;
            let (hash, header) = loose_key(&k)?;
            if header {
                out.push((hash, v.len() as u64));
            } else if let Some(last) = out.last_mut()
                && last.0 == hash
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
        for kv in engine::all(&*self.engine, Space::Index) {
            let (k, v) = kv?;
            let at = decode::<PackedRef>(&v, || format!("pack index entry {:02x?}", &k[..]))?;
            let e = refs.entry(at.pack).or_default();
            e.0 += 1;
            e.1 += at.len;
        }
        let mut out = Vec::new();
        for n in self.engine.packs()? {
            let size = self.engine.blob_len(Space::Pack(n))?.unwrap_or(0);
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

    /// Drops a pack (its objects must no longer be indexed).
    ///
    /// NOTE: sled 0.34 keeps the file under `blobs/` of a dropped pack larger than a quarter
    /// segment (see [`Kv::put_object`]); packs are dropped only by `gc` (interrupted writes)
    /// and when an object that was immutable is rewritten, and `repack` reclaims the space.
    pub(crate) fn drop_pack(&self, n: u64) -> StoreResult<()> {
        self.engine.drop_pack(n)
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
        for kv in self.engine.range(
            Space::Objects,
            Bound::Included(object_key(hash, 1).to_vec()),
            Bound::Included(object_key(hash, u32::MAX).to_vec()),
        ) {
            let (k, chunk) = kv?;
            seen += 1;
            if k[..] != object_key(hash, seen) {
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
        Ok(Value::shared(Arc::from(out)))
    }

    /// Writes an object atomically: its header followed by its payload, as one value. When the
    /// object exists (a rewrite under another encoding of the same content), the payload
    /// chunks of an older store's encoding are removed in the same batch.
    ///
    /// A payload over 4 KiB is stored as a pack of its own: one value, which sled writes once
    /// as a file of its own (about 1x its size, where entries in the log cost 2.3-2.6x), and
    /// which is dropped whole when the object is rewritten (reverse deltas rewrite each
    /// document's newest object) or removed. The patched sled (`vendor/sled`) removes the files
    /// of dropped values when a store opens.
    pub(crate) fn put_object(
        &self,
        hash: &ContentHash,
        header: &ObjectHeader,
        payload: &[u8],
    ) -> StoreResult<()> {
        self.put_object_guarded(hash, header, payload, &[])
            .map(|_| ())
    }

    /// The expectations that `hash`'s stored encoding is still the one read now (its loose
    /// record and its index entry), on an engine that other processes write at the same time;
    /// none on an engine one process holds.
    pub(crate) fn object_guard(&self, hash: &ContentHash) -> StoreResult<Vec<engine::Change>> {
        if !self.shared() {
            return Ok(Vec::new());
        }
        let key = object_key(hash, 0).to_vec();
        let loose = self.engine.get(Space::Objects, &key)?.map(|v| v.to_vec());
        let packed = self
            .engine
            .get(Space::Index, hash.as_bytes())?
            .map(|v| v.to_vec());
        Ok(vec![
            (Space::Objects, key, loose),
            (Space::Index, hash.as_bytes().to_vec(), packed),
        ])
    }

    /// Writes an object's new encoding only while every expectation of `guard` holds
    /// ([`Kv::object_guard`] of its delta base: a base that another process re-encoded
    /// meanwhile could now lead back to this object). Returns whether it was written.
    pub(crate) fn put_object_guarded(
        &self,
        hash: &ContentHash,
        header: &ObjectHeader,
        payload: &[u8],
        guard: &[engine::Change],
    ) -> StoreResult<bool> {
        let old_parts = match self.engine.get(Space::Objects, &object_key(hash, 0))? {
            Some(bytes) => split_object_record(hash, &bytes)?.0.parts,
            None => 0,
        };
        if payload.len() > SOLO_MIN {
            // (`write_pack_as` drops the solo pack of a previous encoding.)
            return Ok(self
                .write_pack_as(&[(*hash, *header, payload)], true, guard)?
                .is_some());
        }
        // The payload follows its header in one value. A single key is written with a plain
        // insert, which is atomic (sled's batches and transactions each write out its log
        // buffer twice, `pin_log`); chunks of an older encoding go in the same batch.
        let header = ObjectHeader {
            parts: 0,
            ..*header
        };
        let mut record = encode_record(&header);
        record.extend_from_slice(payload);
        let mut batch = Batch::default();
        for part in 1..=old_parts {
            batch.remove(Space::Objects, object_key(hash, part));
        }
        batch.put(Space::Objects, object_key(hash, 0), record);
        batch.expect.extend(guard.iter().cloned());
        if !self.write_guarded(batch)? {
            return Ok(false);
        }
        self.unindex(hash)?;
        Ok(true)
    }

    /// Removes an object's pack index entry, if any (a loose copy now holds it, or it is
    /// deleted), and drops its pack when the object was alone in it.
    fn unindex(&self, hash: &ContentHash) -> StoreResult<()> {
        let Some(old) = self.engine.get(Space::Index, hash.as_bytes())? else {
            return Ok(());
        };
        let mut batch = Batch::default();
        batch.remove(Space::Index, hash.as_bytes().to_vec());
        self.write(batch)?;
        if let Some(pack) = solo_pack(&old) {
            self.drop_pack(pack)?;
        }
        Ok(())
    }

    /// Returns every object id, loose or packed, in id order. Stops at the first error: on
    /// damaged data sled's iterator can return the same error forever without moving on.
    pub(crate) fn object_ids(&self) -> impl Iterator<Item = StoreResult<ContentHash>> + '_ {
        let mut ids: BTreeSet<ContentHash> = BTreeSet::new();
        let mut error = None;
        let loose = engine::all(&*self.engine, Space::Objects).map(|kv| {
            let (hash, header) = loose_key(&kv?.0)?;
            Ok(header.then_some(hash))
        });
        let packed = engine::all(&*self.engine, Space::Index).map(|kv| {
            let k = kv?.0;
            if k.len() != 32 {
                return Err(StoreError::corrupt(
                    "pack index",
                    format!("bad key {:?}", &k[..]),
                ));
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

    /// Deletes an object (header and chunks). Used by `gc` only.
    pub(crate) fn delete_object(&self, hash: &ContentHash) -> StoreResult<()> {
        let mut batch = Batch::default();
        for kv in self.loose_parts(hash) {
            batch.remove(Space::Objects, kv?.0.to_vec());
        }
        if !batch.is_empty() {
            self.write(batch)?;
        }
        self.unindex(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::{Codec, ObjectKind};

    fn temp_kv(dir: &std::path::Path) -> Kv {
        Kv::open(
            &dir.join("s"),
            &KvConfig {
                cache_capacity: 1 << 20,
                create: true,
                convert: false,
                run_threshold: crate::engine::lsm::MEMTABLE_ENTRIES,
                lock_wait: std::time::Duration::from_secs(1),
                background_flush: true,
            },
        )
        .unwrap()
        .0
    }

    /// Golden bytes of a pack value and its index entry (docs/format.md, store format 2).
    #[test]
    fn pack_layout_golden_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let kv = temp_kv(dir.path());
        let hash = ContentHash::from_bytes([0xab; 32]);
        let header = ObjectHeader {
            raw_len: 1,
            stored_len: 1,
            parts: 3, // a loose chunk count is never written into a pack
            kind: ObjectKind::Full { codec: Codec::Raw },
        };
        let (n, size) = kv.write_pack(&[(hash, header, b"x")]).unwrap().unwrap();
        assert_eq!(n, 1);
        kv.check_pack_format(1).unwrap();
        let value = kv.engine.get(Space::Pack(1), PACK_KEY).unwrap().unwrap();
        let mut want = vec![PACK_FORMAT];
        want.extend_from_slice(&[0xab; 8]);
        want.extend_from_slice(&[1, 1, 1, 0, 0, 0]);
        want.push(b'x');
        assert_eq!(&value[..], &want[..]);
        assert_eq!(size, want.len() as u64);
        let entry = kv
            .engine
            .get(Space::Index, hash.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(&entry[..], &[1, 1, 1, 15, 0]);
        // It reads back, and the next pack gets the next number.
        let object = kv.object(&hash).unwrap().unwrap();
        assert_eq!(object.header.parts, 0);
        assert_eq!(&kv.object_payload(&hash, object).unwrap()[..], b"x");
        let other = ContentHash::from_bytes([0xcd; 32]);
        let next = kv.write_pack(&[(other, header, b"y")]).unwrap().unwrap();
        assert_eq!(next.0, 2);
    }

    /// A delta's base is read from right after the delta in its pack without the index, and
    /// anything else there (another object, bytes not at an object's start, past the end) is
    /// left to the index.
    #[test]
    fn the_object_after_another_is_read_in_place_and_anything_else_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let kv = temp_kv(dir.path());
        let full = |n: u64| ObjectHeader {
            raw_len: n,
            stored_len: n,
            parts: 0,
            kind: ObjectKind::Full { codec: Codec::Raw },
        };
        let (a, b, c) = (
            ContentHash::from_bytes([1; 32]),
            ContentHash::from_bytes([2; 32]),
            ContentHash::from_bytes([3; 32]),
        );
        kv.write_pack(&[(a, full(3), b"aaa"), (b, full(2), b"bb")])
            .unwrap();
        kv.write_pack(&[(c, full(1), b"c")]).unwrap();
        let (first, after_a) = kv.object_after(&a, None).unwrap();
        assert_eq!(&kv.object_payload(&a, first.unwrap()).unwrap()[..], b"aaa");
        let after_a = after_a.expect("a packed object says where it ends");
        // b follows a: found there, and it says where it ends in turn.
        let (second, after_b) = kv.object_after(&b, Some(after_a)).unwrap();
        assert_eq!(
            kv.object_payload(&b, second.unwrap()).unwrap().as_ref(),
            b"bb"
        );
        assert!(kv.object_at(&b, after_a).is_some());
        let after_b = after_b.unwrap();
        assert_eq!(after_b.end, kv.packs().unwrap()[0].size);
        // c is in another pack, and a is before b: not where the hint points, so the index
        // finds them; past the pack's end there is nothing.
        for (id, want) in [(c, &b"c"[..]), (a, &b"aaa"[..])] {
            assert!(kv.object_at(&id, after_a).is_none());
            let (found, _) = kv.object_after(&id, Some(after_a)).unwrap();
            assert_eq!(
                kv.object_payload(&id, found.unwrap()).unwrap().as_ref(),
                want
            );
        }
        assert!(kv.object_at(&c, after_b).is_none());
        // A hint into the middle of an object finds nothing there.
        let inside = PackedAt {
            pack: after_a.pack,
            end: after_a.end + 1,
        };
        assert!(kv.object_at(&b, inside).is_none());
        let (found, _) = kv.object_after(&b, Some(inside)).unwrap();
        assert!(found.is_some());
    }

    #[test]
    fn a_loose_copy_shadows_a_packed_one_and_a_rewrite_unindexes_it() {
        let dir = tempfile::tempdir().unwrap();
        let kv = temp_kv(dir.path());
        let hash = ContentHash::from_bytes([7; 32]);
        let header = ObjectHeader {
            raw_len: 1,
            stored_len: 1,
            parts: 0,
            kind: ObjectKind::Full { codec: Codec::Raw },
        };
        kv.write_pack(&[(hash, header, b"p")]).unwrap();
        kv.put_object(&hash, &header, b"l").unwrap();
        assert!(
            kv.engine
                .get(Space::Index, hash.as_bytes())
                .unwrap()
                .is_none()
        );
        let object = kv.object(&hash).unwrap().unwrap();
        assert_eq!(&kv.object_payload(&hash, object).unwrap()[..], b"l");
        // The pack is now unreferenced; gc's rule (no index entry names it) finds it.
        let packs = kv.packs().unwrap();
        assert_eq!((packs.len(), packs[0].objects), (1, 0));
    }
}
