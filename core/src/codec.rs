//! The one place where values become bytes on disk.
//!
//! Every stored value is a *record*: one format byte naming the record's schema, then the
//! postcard encoding of that schema. Decoding checks the format byte, decodes with
//! `take_from_bytes` and rejects leftover bytes, so a record written by another schema is
//! refused, never misread. Keys are big-endian so that sled orders them numerically.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value that is stored on disk as a record.
pub trait Record: Serialize + DeserializeOwned {
    /// The schema version written in the record's first byte.
    const FORMAT: u8;
    /// What the record is, for error messages ("version record").
    const NAME: &'static str;
}

/// A stored record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The value holds no bytes at all.
    #[error("{what} is empty")]
    Empty {
        /// The kind of record.
        what: &'static str,
    },
    /// The format byte names a schema this build does not know.
    #[error("{what} has format {found}, this build reads format {supported}; upgrade strata")]
    UnknownFormat {
        /// The kind of record.
        what: &'static str,
        /// The format byte found.
        found: u8,
        /// The format byte this build reads.
        supported: u8,
    },
    /// The bytes after the format byte are not a valid encoding.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// The kind of record.
        what: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// A valid record is followed by bytes that belong to nothing.
    #[error("{what} has {count} unexpected trailing bytes")]
    TrailingBytes {
        /// The kind of record.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
}

/// Encodes `value` as `[R::FORMAT][postcard(value)]`.
pub fn encode_record<R: Record>(value: &R) -> Vec<u8> {
    let mut out = vec![R::FORMAT];
    // Serialising our own plain data types into a Vec cannot fail: postcard only errors on
    // sequences of unknown length and on a full fixed-size buffer, neither of which occur here.
    let body = postcard::to_allocvec(value).expect("postcard serialises strata records");
    out.extend_from_slice(&body);
    out
}

/// Returns the length of `value`'s postcard encoding (without a format byte).
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).unwrap_or(usize::MAX)
}

/// Decodes a record written by [`encode_record`].
///
/// # Errors
/// [`DecodeError`] when the bytes are empty, carry another format byte, do not decode, or hold
/// trailing bytes.
pub fn decode_record<R: Record>(bytes: &[u8]) -> Result<R, DecodeError> {
    let (value, rest) = decode_record_prefix::<R>(bytes)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what: R::NAME,
            count: rest.len(),
        });
    }
    Ok(value)
}

/// Decodes a record that is followed by other bytes (an inline payload), returning the record
/// and the bytes after it.
///
/// # Errors
/// [`DecodeError`] when the bytes are empty, carry another format byte, or do not decode.
pub fn decode_record_prefix<R: Record>(bytes: &[u8]) -> Result<(R, &[u8]), DecodeError> {
    let (&format, body) = bytes
        .split_first()
        .ok_or(DecodeError::Empty { what: R::NAME })?;
    if format != R::FORMAT {
        return Err(DecodeError::UnknownFormat {
            what: R::NAME,
            found: format,
            supported: R::FORMAT,
        });
    }
    postcard::take_from_bytes::<R>(body).map_err(|e| DecodeError::Malformed {
        what: R::NAME,
        reason: e.to_string(),
    })
}

/// Big-endian bytes of a `u64`, for keys that must sort numerically.
pub const fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Reads a big-endian `u64` from exactly eight bytes.
pub fn read_u64_key(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The 16-byte key `doc BE ‖ version BE`.
pub fn pair_key(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

/// Splits a 16-byte key made by [`pair_key`].
pub fn read_pair_key(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() != 16 {
        return None;
    }
    Some((read_u64_key(&bytes[..8])?, read_u64_key(&bytes[8..])?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        a: u32,
        b: String,
    }
    impl Record for Probe {
        const FORMAT: u8 = 7;
        const NAME: &'static str = "probe";
    }

    #[test]
    fn record_roundtrip_and_refusals() {
        let p = Probe {
            a: 300,
            b: "x".into(),
        };
        let bytes = encode_record(&p);
        assert_eq!(bytes, [7, 0xac, 0x02, 1, b'x']);
        assert_eq!(decode_record::<Probe>(&bytes).unwrap(), p);
        assert_eq!(
            decode_record::<Probe>(&[]),
            Err(DecodeError::Empty { what: "probe" })
        );
        assert!(matches!(
            decode_record::<Probe>(&[8, 0, 0]),
            Err(DecodeError::UnknownFormat { found: 8, .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            decode_record::<Probe>(&long),
            Err(DecodeError::TrailingBytes {
                what: "probe",
                count: 1
            })
        );
        assert!(matches!(
            decode_record::<Probe>(&[7, 0xff]),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn keys_are_big_endian() {
        assert_eq!(u64_key(1), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(read_pair_key(&pair_key(3, 9)), Some((3, 9)));
        assert!(pair_key(1, u64::MAX) < pair_key(2, 0));
    }
}
