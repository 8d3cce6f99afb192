//! The storage codec: compressed snapshots and deltas.
//!
//! Both formats are `[LEB128 content length][zstd frame][CRC-32 of the bytes before it, u32
//! BE]` (*sealed*). The frame is magicless, without content size, dictionary id or content
//! checksum (the length is in our header). A delta's frame is compressed with the base's full
//! content as a zstd *reference prefix*, so any byte run of the base is a cheap match, whether
//! the document is line-oriented source or one long line of JSON.
//!
//! The CRC proves the stored bytes before they are decoded, as git's pack index does, and
//! decoding is deterministic, so a payload that passes decodes to what was encoded (given the
//! same base). Stores of formats 2-4 hold payloads without the CRC whose frames carry zstd's
//! XXH64 content checksum instead, which zstd verifies on every decode: a hash over every
//! output byte, 11-15% of a read (`BENCHMARKS.md`, sessions 8 and 11). The `checksummed`
//! functions read those.
//!
//! Decoding never allocates more than the declared length, refuses a declared length above
//! the caller's limit, and reports every malformed input as an [`ApplyError`].

use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DParameter, FrameFormat};

/// The largest window a delta may ask for: 2^27 bytes (128 MiB) of base plus target.
const MAX_WINDOW_LOG: u32 = 27;
/// Above this many bytes of base plus target, compression uses long-distance matching.
const LONG_MATCH_SPAN: usize = 4 << 20;
/// The largest window log zstd accepts on decode.
const DECODE_WINDOW_LOG_MAX: u32 = 31;

/// Why a stored payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The length header is missing or malformed.
    #[error("payload has no valid length header")]
    BadHeader,
    /// The declared length is larger than the caller allows.
    #[error("payload declares {declared} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The declared length.
        declared: u64,
        /// The caller's limit.
        limit: u64,
    },
    /// The zstd frame did not decode.
    #[error("compressed frame is corrupt: {reason}")]
    Frame {
        /// What zstd reported.
        reason: String,
    },
    /// The payload's CRC-32 does not match its bytes (or the payload is too short for one).
    #[error("payload fails its CRC-32: the stored bytes are damaged")]
    BadSeal,
    /// The frame decoded to another length than the header declared.
    #[error("payload decoded to {actual} bytes, header declared {declared}")]
    LengthMismatch {
        /// The declared length.
        declared: u64,
        /// The decoded length.
        actual: u64,
    },
}

/// Compresses `content` as a full snapshot at zstd `level` (sealed).
pub fn compress(content: &[u8], level: i32) -> Vec<u8> {
    compress_with_prefix(content, &[], level)
}

/// The payload inside a sealed one, when its CRC holds.
///
/// # Errors
/// [`ApplyError::BadSeal`] when the payload is shorter than its CRC or the CRC fails.
fn unseal(payload: &[u8]) -> Result<&[u8], ApplyError> {
    let body = payload.len().checked_sub(4).ok_or(ApplyError::BadSeal)?;
    let (inner, crc) = payload.split_at(body);
    let crc = u32::from_be_bytes(crc.try_into().map_err(|_| ApplyError::BadSeal)?);
    if crc32fast::hash(inner) == crc {
        Ok(inner)
    } else {
        Err(ApplyError::BadSeal)
    }
}

/// Decompresses a snapshot made by [`compress`], refusing one that declares more than `limit`
/// bytes.
///
/// # Errors
/// [`ApplyError`] on a malformed header, a declared length over `limit`, a corrupt frame, or a
/// length that does not match.
pub fn decompress(payload: &[u8], limit: u64) -> Result<Vec<u8>, ApplyError> {
    let mut out = Vec::new();
    decompress_with_prefix(&[], unseal(payload)?, limit, &mut out)?;
    Ok(out)
}

/// As [`decompress`], into `out` (cleared first; its capacity is reused, so a caller decoding
/// many contents into one buffer touches no fresh memory).
///
/// # Errors
/// As [`decompress`]; `out` then holds no meaningful content.
pub fn decompress_into(payload: &[u8], limit: u64, out: &mut Vec<u8>) -> Result<(), ApplyError> {
    decompress_with_prefix(&[], unseal(payload)?, limit, out)
}

/// As [`decompress_into`], for a payload of store formats 2-4: no CRC, a frame whose content
/// checksum (when it has one, see [`is_self_checked`]) zstd verifies as it decodes.
///
/// # Errors
/// As [`decompress`], and a frame whose checksum does not match.
pub fn decompress_checksummed_into(
    payload: &[u8],
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), ApplyError> {
    decompress_with_prefix(&[], payload, limit, out)
}

/// Encodes a delta that turns `base` into `target`, at zstd `level` (sealed).
pub fn encode(base: &[u8], target: &[u8], level: i32) -> Vec<u8> {
    compress_with_prefix(target, base, level)
}

/// Rebuilds the target from `base` and a delta made by [`encode`], refusing a delta that
/// declares more than `limit` bytes of output.
///
/// # Errors
/// [`ApplyError`] on a malformed header, a declared length over `limit`, a corrupt frame, or a
/// length that does not match.
pub fn apply(base: &[u8], delta: &[u8], limit: u64) -> Result<Vec<u8>, ApplyError> {
    let mut out = Vec::new();
    decompress_with_prefix(base, unseal(delta)?, limit, &mut out)?;
    Ok(out)
}

/// As [`apply`], into `out` (cleared first; its capacity is reused). Measured on a 330 KB
/// document: a delta decodes in about 30 µs into a warm buffer, while first touching a fresh
/// buffer's pages costs several times that.
///
/// # Errors
/// As [`apply`]; `out` then holds no meaningful content.
pub fn apply_into(
    base: &[u8],
    delta: &[u8],
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), ApplyError> {
    decompress_with_prefix(base, unseal(delta)?, limit, out)
}

/// As [`apply_into`], for a delta of store formats 2-4 (see [`decompress_checksummed_into`]).
///
/// # Errors
/// As [`apply`], and a frame whose checksum does not match.
pub fn apply_checksummed_into(
    base: &[u8],
    delta: &[u8],
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), ApplyError> {
    decompress_with_prefix(base, delta, limit, out)
}

/// Returns `true` when `payload` (of store formats 2-4, unsealed) carries zstd's content
/// checksum, which [`decompress_checksummed_into`] and [`apply_checksummed_into`] then
/// verify: a successful decode is the content that was encoded, up to a 64-bit hash. Payloads
/// written before checksums were enabled, and empty contents (no frame at all), return
/// `false`.
pub fn is_self_checked(payload: &[u8]) -> bool {
    let Ok((declared, used)) = read_varint(payload) else {
        return false;
    };
    // In a magicless frame the first byte is the frame header descriptor; bit 2 is its
    // Content_Checksum_flag (RFC 8878, 3.1.1.1.1).
    declared > 0 && payload.get(used).is_some_and(|fhd| fhd & 0b100 != 0)
}

/// Reads the declared content length of a payload (sealed or not).
///
/// # Errors
/// [`ApplyError::BadHeader`] when the header is missing or malformed.
pub fn declared_len(payload: &[u8]) -> Result<u64, ApplyError> {
    read_varint(payload).map(|(n, _)| n)
}

fn compress_with_prefix(content: &[u8], prefix: &[u8], level: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() / 3 + 16);
    write_varint(&mut out, content.len() as u64);
    if content.is_empty() {
        seal(&mut out);
        return out;
    }
    let span = (prefix.len() + content.len()).max(1) as u64;
    let window_log = (64 - (span - 1).leading_zeros()).clamp(10, MAX_WINDOW_LOG);
    let params = [
        CParameter::CompressionLevel(level),
        CParameter::Format(FrameFormat::Magicless),
        CParameter::ContentSizeFlag(false),
        // No hash of the decoded content: the payload's CRC proves the stored bytes instead
        // (module docs).
        CParameter::ChecksumFlag(false),
        CParameter::DictIdFlag(false),
        CParameter::WindowLog(window_log),
        // Past a few MiB the level's match finder no longer reaches back through the whole
        // base; long-distance matching finds the base's runs anywhere in the window, as
        // `zstd --patch-from` does. Decoding is unchanged. Measured with a two-line edit: a
        // 32 MiB document's delta shrinks from megabytes to a few KiB.
        CParameter::EnableLongDistanceMatching(prefix.len() + content.len() > LONG_MATCH_SPAN),
    ];
    let mut frame = Vec::with_capacity(zstd_safe::compress_bound(content.len()));
    // This thread's context, reset: a new context asks the CPU for its features with
    // `cpuid`, which a virtual machine traps (5% of a small put, 15% of an import of 100,000
    // small documents when every delta made its own context).
    CCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        let cctx = slot.get_or_insert_with(CCtx::create);
        cctx.reset(zstd_safe::ResetDirective::SessionAndParameters)
            .expect("zstd resets a context between frames");
        for p in params {
            // These parameters are valid for every level and window log we pass.
            cctx.set_parameter(p)
                .expect("zstd accepts strata's compression parameters");
        }
        if !prefix.is_empty() {
            // SAFETY: zstd keeps a reference prefix for the next frame only (ZSTD_CCtx_refPrefix:
            // "discarded at the end of the frame"), and `compress2` below ends that frame
            // (ZSTD_e_end) before `prefix` goes out of scope; the reset below clears the
            // reference besides (ZSTD_clearAllDicts), and a context left mid-frame by a
            // panic is reset before its next use, which never reads the old prefix. So the
            // context never reads `prefix` after this call returns.
            #[allow(unsafe_code)]
            let prefix: &'static [u8] =
                unsafe { std::slice::from_raw_parts(prefix.as_ptr(), prefix.len()) };
            cctx.ref_prefix(prefix)
                .expect("zstd accepts a reference prefix on a reset context");
        }
        // The buffer holds compress_bound bytes, the most zstd can write.
        cctx.compress2(&mut frame, content)
            .expect("zstd compresses into a compress_bound buffer");
        cctx.reset(zstd_safe::ResetDirective::SessionAndParameters)
            .expect("zstd resets a context between frames");
    });
    out.extend_from_slice(&frame);
    seal(&mut out);
    out
}

/// Appends the CRC-32 of every byte of `out` (`u32 BE`).
fn seal(out: &mut Vec<u8>) {
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_be_bytes());
}

thread_local! {
    /// This thread's compression context, made on first use.
    static CCTX: std::cell::RefCell<Option<CCtx<'static>>> = const { std::cell::RefCell::new(None) };
}

fn decompress_with_prefix(
    prefix: &[u8],
    payload: &[u8],
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), ApplyError> {
    out.clear();
    let (declared, used) = read_varint(payload)?;
    if declared > limit {
        return Err(ApplyError::TooLarge { declared, limit });
    }
    let frame = &payload[used..];
    if declared == 0 {
        return if frame.is_empty() {
            Ok(())
        } else {
            Err(ApplyError::Frame {
                reason: "bytes after an empty payload".into(),
            })
        };
    }
    let cap = usize::try_from(declared).map_err(|_| ApplyError::TooLarge { declared, limit })?;
    let frame_err = |code: usize| ApplyError::Frame {
        reason: zstd_safe::get_error_name(code).into(),
    };
    out.try_reserve_exact(cap)
        .map_err(|_| ApplyError::TooLarge { declared, limit })?;
    let written = if prefix.starts_with(&DICT_MAGIC) {
        // zstd would parse such a prefix as a trained dictionary: a fresh context with an
        // explicit raw-content prefix reads it as bytes, as the encoder did.
        let mut dctx = new_dctx()?;
        dctx.ref_prefix(prefix).map_err(frame_err)?;
        dctx.decompress(out, frame).map_err(frame_err)?
    } else {
        // One context per thread: creating one costs more than decoding a small delta (its
        // tables are ~100 KiB). A prefix without the dictionary magic is raw content, which
        // zstd decodes exactly as a reference prefix.
        DCTX.with(|cell| -> Result<usize, ApplyError> {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(new_dctx()?);
            }
            let dctx = slot.as_mut().expect("the context was created above");
            let result = if prefix.is_empty() {
                dctx.decompress(out, frame)
            } else {
                dctx.decompress_using_dict(out, frame, prefix)
            };
            if result.is_err() {
                // A failed frame may leave the context mid-session; start the next afresh.
                *slot = None;
            }
            result.map_err(frame_err)
        })?
    };
    if written != cap || out.len() != cap {
        return Err(ApplyError::LengthMismatch {
            declared,
            actual: written as u64,
        });
    }
    Ok(())
}

/// The first four bytes of a trained zstd dictionary (`ZSTD_MAGIC_DICTIONARY`, little-endian).
const DICT_MAGIC: [u8; 4] = [0x37, 0xA4, 0x30, 0xEC];

thread_local! {
    /// This thread's decoding context, made on first use.
    static DCTX: std::cell::RefCell<Option<DCtx<'static>>> = const { std::cell::RefCell::new(None) };
}

/// A decoding context for strata's frames: magicless, any window zstd supports.
fn new_dctx() -> Result<DCtx<'static>, ApplyError> {
    let mut dctx = DCtx::try_create().ok_or_else(|| ApplyError::Frame {
        reason: "zstd could not allocate a decoding context".into(),
    })?;
    let frame_err = |code: usize| ApplyError::Frame {
        reason: zstd_safe::get_error_name(code).into(),
    };
    dctx.set_parameter(DParameter::Format(FrameFormat::Magicless))
        .map_err(frame_err)?;
    dctx.set_parameter(DParameter::WindowLogMax(DECODE_WINDOW_LOG_MAX))
        .map_err(frame_err)?;
    Ok(dctx)
}

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(bytes: &[u8]) -> Result<(u64, usize), ApplyError> {
    let mut n: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        let chunk = u64::from(b & 0x7f);
        if i == 9 && chunk > 1 {
            return Err(ApplyError::BadHeader);
        }
        n |= chunk << (7 * i);
        if b & 0x80 == 0 {
            return Ok((n, i + 1));
        }
    }
    Err(ApplyError::BadHeader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One context serves every frame of a thread: a delta made after other frames (with
    /// other prefixes, or none) is byte for byte the delta a fresh thread makes, and the
    /// prefix of one frame never leaks into the next.
    #[test]
    fn a_reused_context_encodes_as_a_fresh_one() {
        let base: Vec<u8> = (0..5000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut target = base.clone();
        target.splice(100..120, b"an edit".iter().copied());
        let fresh = std::thread::spawn({
            let (base, target) = (base.clone(), target.clone());
            move || encode(&base, &target, 4)
        })
        .join()
        .unwrap();
        let other: Vec<u8> = base.iter().rev().copied().collect();
        let _ = encode(&other, &target, 9);
        let _ = compress(&other, 3);
        let _ = encode(&[0x37, 0xA4, 0x30, 0xEC, 1, 2, 3], &target, 4);
        assert_eq!(encode(&base, &target, 4), fresh);
        // A full snapshot after a delta does not use the delta's base.
        let full = compress(&target, 4);
        let fresh_full = std::thread::spawn({
            let target = target.clone();
            move || compress(&target, 4)
        })
        .join()
        .unwrap();
        assert_eq!(full, fresh_full);
        assert_eq!(decompress(&full, 1 << 20).unwrap(), target);
    }

    #[test]
    fn delta_roundtrip_small_edit_is_small() {
        let base: Vec<u8> = (0..2000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut target = base.clone();
        target.splice(5000..5000, b"inserted text\n".iter().copied());
        let d = encode(&base, &target, 3);
        assert!(
            d.len() < 64,
            "delta of a one-line insert is {} bytes",
            d.len()
        );
        assert_eq!(apply(&base, &d, u64::MAX).unwrap(), target);
    }

    /// See: issue 12, item 6 (a two-line edit of a 60 MB document stored 11.7 MB).
    #[test]
    fn deltas_of_large_documents_stay_proportional_to_the_edit() {
        for mib in [8usize, 32] {
            let mut base = Vec::with_capacity(mib << 20);
            let mut i = 0u64;
            while base.len() < mib << 20 {
                // Lines that do not repeat, as in a real large file.
                i += 1;
                let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                base.extend_from_slice(format!("{i:08} {x:016x} {}\n", x % 977).as_bytes());
            }
            let mut target = base.clone();
            let mid = target.len() / 2;
            target.splice(mid..mid, b"an inserted line\n".iter().copied());
            target.extend_from_slice(b"an appended line\n");
            let delta = encode(&base, &target, 3);
            assert!(
                delta.len() < 16 << 10,
                "{mib} MiB: a two-line edit made a {} byte delta",
                delta.len()
            );
            assert_eq!(apply(&base, &delta, u64::MAX).unwrap(), target);
        }
    }

    /// A payload as store formats 2-4 wrote it: the frame with zstd's content checksum, no
    /// CRC after it.
    fn checksummed(content: &[u8], prefix: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, content.len() as u64);
        let mut cctx = CCtx::create();
        for p in [
            CParameter::CompressionLevel(3),
            CParameter::Format(FrameFormat::Magicless),
            CParameter::ContentSizeFlag(false),
            CParameter::ChecksumFlag(true),
            CParameter::DictIdFlag(false),
        ] {
            cctx.set_parameter(p).unwrap();
        }
        if !prefix.is_empty() {
            cctx.ref_prefix(prefix).unwrap();
        }
        let mut frame = Vec::with_capacity(zstd_safe::compress_bound(content.len()));
        cctx.compress2(&mut frame, content).unwrap();
        out.extend_from_slice(&frame);
        out
    }

    #[test]
    fn sealed_payloads_refuse_every_damaged_byte() {
        let base = b"the base text of a document\n".repeat(20);
        let target = [&base[..], b"one more line\n"].concat();
        let d = encode(&base, &target, 3);
        let c = compress(&target, 3);
        // No content checksum in the frame: the CRC after it proves the stored bytes.
        assert!(!is_self_checked(&d) && !is_self_checked(&c));
        assert_eq!(apply(&base, &d, u64::MAX).unwrap(), target);
        for at in 0..d.len() {
            let mut bad = d.clone();
            bad[at] ^= 0x20;
            assert!(apply(&base, &bad, u64::MAX).is_err(), "delta byte {at}");
        }
        for at in 0..c.len() {
            let mut bad = c.clone();
            bad[at] ^= 0x01;
            assert!(decompress(&bad, u64::MAX).is_err(), "snapshot byte {at}");
        }
        assert_eq!(
            apply(&base, &d[..d.len() - 1], u64::MAX),
            Err(ApplyError::BadSeal)
        );
        assert_eq!(decompress(&[], 10), Err(ApplyError::BadSeal));
    }

    #[test]
    fn format_4_payloads_decode_with_their_content_checksum() {
        let base = b"the base text of a document\n".repeat(20);
        let target = [&base[..], b"one more line\n"].concat();
        let d = checksummed(&target, &base);
        let c = checksummed(&target, &[]);
        assert!(is_self_checked(&d) && is_self_checked(&c));
        let mut out = Vec::new();
        apply_checksummed_into(&base, &d, u64::MAX, &mut out).unwrap();
        assert_eq!(out, target);
        decompress_checksummed_into(&c, u64::MAX, &mut out).unwrap();
        assert_eq!(out, target);
        // Decoding against the wrong base fails its checksum (or length), never returns bytes.
        let mut other = base.clone();
        let last = other.len() - 10;
        other[last] ^= 1;
        assert!(
            apply_checksummed_into(&other, &d, u64::MAX, &mut out)
                .is_err_and(|e| matches!(e, ApplyError::Frame { .. }))
        );
        // A format-4 payload is not mistaken for a sealed one.
        assert!(apply(&base, &d, u64::MAX).is_err());
    }

    #[test]
    fn decoding_into_a_used_buffer_replaces_its_content() {
        let base = b"line one\nline two\nline three\n".repeat(50);
        let mut target = base.clone();
        target.extend_from_slice(b"line four\n");
        let delta = encode(&base, &target, 3);
        let mut buf = b"stale bytes that must not survive".repeat(100);
        apply_into(&base, &delta, 1 << 20, &mut buf).unwrap();
        assert_eq!(buf, target);
        decompress_into(&compress(&base, 3), 1 << 20, &mut buf).unwrap();
        assert_eq!(buf, base);
        assert!(apply_into(&base, &delta, 10, &mut buf).is_err());
    }

    #[test]
    fn empty_contents_roundtrip() {
        let empty = compress(b"", 3);
        assert_eq!(
            empty,
            [&[0u8][..], &crc32fast::hash(&[0]).to_be_bytes()].concat()
        );
        assert_eq!(decompress(&empty, 0).unwrap(), b"");
        let mut out = Vec::new();
        decompress_checksummed_into(&[0], 0, &mut out).unwrap();
        assert!(out.is_empty());
        let d = encode(b"abc", b"", 3);
        assert_eq!(apply(b"abc", &d, 10).unwrap(), b"");
        let d = encode(b"", b"abc", 3);
        assert_eq!(apply(b"", &d, 10).unwrap(), b"abc");
    }

    #[test]
    fn declared_length_over_limit_is_refused_before_allocating() {
        let c = compress(&[7u8; 1000], 3);
        assert_eq!(
            decompress(&c, 999),
            Err(ApplyError::TooLarge {
                declared: 1000,
                limit: 999
            })
        );
        // A header claiming u64::MAX bytes must not allocate.
        let mut evil = Vec::new();
        write_varint(&mut evil, u64::MAX);
        evil.extend_from_slice(&c[2..]);
        assert!(decompress(&evil, u64::MAX).is_err());
    }

    #[test]
    fn base_that_starts_like_a_zstd_dictionary_is_read_as_raw_bytes() {
        let mut base = DICT_MAGIC.to_vec();
        base.extend_from_slice(&b"0123456789abcdef".repeat(40));
        let target = [&base[4..200], b"changed", &base[200..]].concat();
        let d = encode(&base, &target, 3);
        assert_eq!(apply(&base, &d, 1 << 20).unwrap(), target);
    }

    #[test]
    fn a_failed_decode_leaves_the_thread_able_to_decode() {
        let base = b"line of text\n".repeat(50);
        let target = [&base[..], b"tail\n"].concat();
        let d = encode(&base, &target, 3);
        let mut broken = d.clone();
        let last = broken.len() - 1;
        broken[last] ^= 0xff;
        broken.truncate(last - 2);
        assert!(apply(&base, &broken, 1 << 20).is_err());
        assert_eq!(apply(&base, &d, 1 << 20).unwrap(), target);
        assert_eq!(decompress(&compress(&target, 3), 1 << 20).unwrap(), target);
    }

    #[test]
    fn wrong_base_or_truncation_is_an_error_or_mismatch_never_a_panic() {
        let base = b"the quick brown fox jumps over the lazy dog\n".repeat(20);
        let target = [&base[..], b"and more\n"].concat();
        let d = encode(&base, &target, 3);
        for cut in 0..d.len() {
            let _ = apply(&base, &d[..cut], 1 << 20);
        }
        assert!(apply(&base, &d[..d.len() - 1], 1 << 20).is_err());
        assert!(matches!(
            read_varint(&[0x80; 11]),
            Err(ApplyError::BadHeader)
        ));
    }

    proptest! {
        #[test]
        fn prop_delta_roundtrip(base in proptest::collection::vec(any::<u8>(), 0..3000),
                                edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..20)) {
            let mut target = base.clone();
            for (pos, byte) in edits {
                let at = usize::from(pos) % (target.len() + 1);
                target.insert(at, byte);
            }
            let d = encode(&base, &target, 1);
            prop_assert_eq!(apply(&base, &d, target.len() as u64).unwrap(), target);
        }

        #[test]
        fn prop_apply_never_panics_on_garbage(base in proptest::collection::vec(any::<u8>(), 0..200),
                                              junk in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = apply(&base, &junk, 1 << 16);
            let _ = decompress(&junk, 1 << 16);
        }
    }
}
