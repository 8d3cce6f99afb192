//! Document keys and version numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest document key accepted, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 1024;

/// A validated document key: non-empty UTF-8 of at most [`MAX_KEY_LEN`] bytes, without NUL or
/// other control characters (so every key prints on one line).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DocId(String);

/// Why a string is not a valid document key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is the empty string.
    #[error("document key is empty: give a non-empty name such as 'notes/today'")]
    Empty,
    /// The key is longer than [`MAX_KEY_LEN`] bytes.
    #[error("document key is {len} bytes long; the limit is {max} bytes")]
    TooLong {
        /// The key's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The key holds a control character.
    #[error("document key contains a control character at byte {at}; use printable characters")]
    ControlChar {
        /// The byte offset of the first control character.
        at: usize,
    },
}

impl DocId {
    /// Validates `key` and wraps it.
    ///
    /// # Errors
    /// [`KeyError`] when the key is empty, over [`MAX_KEY_LEN`] bytes or holds a control
    /// character.
    pub fn new(key: impl Into<String>) -> Result<Self, KeyError> {
        let key = key.into();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        if let Some((at, _)) = key.char_indices().find(|(_, c)| c.is_control()) {
            return Err(KeyError::ControlChar { at });
        }
        Ok(Self(key))
    }

    /// Returns the key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({:?})", self.0)
    }
}

impl std::str::FromStr for DocId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A version number: 1 for a document's first version, then 2, 3, … without gaps.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct VersionNo(pub u64);

impl VersionNo {
    /// The first version of every document.
    pub const FIRST: Self = Self(1);

    /// Returns the raw number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Returns the version after this one.
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for VersionNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_limits_are_enforced() {
        assert_eq!(DocId::new(""), Err(KeyError::Empty));
        assert!(DocId::new("a".repeat(MAX_KEY_LEN)).is_ok());
        assert_eq!(
            DocId::new("a".repeat(MAX_KEY_LEN + 1)),
            Err(KeyError::TooLong {
                len: MAX_KEY_LEN + 1,
                max: MAX_KEY_LEN
            })
        );
        assert_eq!(DocId::new("a\nb"), Err(KeyError::ControlChar { at: 1 }));
        assert_eq!(DocId::new("dossier/été").unwrap().as_str(), "dossier/été");
    }
}
