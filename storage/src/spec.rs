//! Version specs as people type them: `DOC`, `DOC@N`, `DOC@-N`, `DOC@<content id>`,
//! `DOC@<time or date>`, `DOC@TAG` and `DOC@` (the latest version).
//!
//! ```
//! use strata_storage::spec::{parse_target, Target};
//! use strata_storage::{At, VersionNo};
//!
//! let (doc, target) = parse_target("notes/today.md@3").unwrap();
//! assert_eq!(doc.as_str(), "notes/today.md");
//! assert!(matches!(target, Target::At(At::Version(VersionNo(3)))));
//! // A key that contains '@' is written with a trailing '@'.
//! assert_eq!(parse_target("user@host@").unwrap().0.as_str(), "user@host");
//! assert!(parse_target("notes@0").is_err());
//! ```

use strata_core::{ContentHash, DocId, VersionNo};

use crate::At;

/// What a spec's suffix names: a version the store resolves by itself, or a tag (see
/// [`crate::Store::tagged`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A version by number, position, content id or time, or the latest.
    At(At),
    /// The version carrying this tag.
    Tag(String),
}

/// A spec that is not a document key with an optional version; the message is one line
/// naming what was wrong and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(String);

/// Parses a document key, with an error naming the key.
///
/// # Errors
/// The key is empty, too long or otherwise not a valid [`DocId`].
pub fn parse_doc(key: &str) -> Result<DocId, SpecError> {
    DocId::new(key).map_err(|e| {
        SpecError(format!(
            "invalid document key '{}': {e}",
            escape_controls(key)
        ))
    })
}

/// `text` with control characters escaped (`\n`, `\u{0}`), so a message quoting what a user
/// typed stays one line and cannot drive a terminal.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `KEY`, `KEY@N`, `KEY@-N`, `KEY@<64 hex digits>`, `KEY@<RFC 3339 time or date>`,
/// `KEY@TAG` (a suffix that starts with a letter and is no other form) or `KEY@` (latest).
///
/// The spec is split at its last '@' (one at the very start belongs to the key, as in
/// `@team/plan`), and what follows must be a version: a key that itself contains '@' is
/// written with a version or a trailing '@' (`user@host@` is the latest version of the
/// document `user@host`). So every key has one reading, and a malformed version is always an
/// error, never a lookup of another document.
///
/// # Errors
/// An invalid key or a suffix that is no version, with a one-line message.
pub fn parse_target(spec: &str) -> Result<(DocId, Target), SpecError> {
    let Some((key, suffix)) = spec.rsplit_once('@').filter(|(key, _)| !key.is_empty()) else {
        return Ok((parse_doc(spec)?, Target::At(At::Latest)));
    };
    // What the user typed, escaped only when an error quotes it (`get --batch` parses a
    // spec per line).
    let invalid = |why: &str| {
        SpecError(format!(
            "invalid version '{}' in '{}': {why}",
            escape_controls(suffix),
            escape_controls(spec)
        ))
    };
    let bad = |why: &str| {
        invalid(&format!(
            "{why}; a version is N, -N or a 64-hex-digit content id, a time \
             (2024-05-01T12:00:00Z, 2024-05-01) or a tag, and a key containing '@' is written \
             with a trailing '@' ('{}@')",
            escape_controls(spec)
        ))
    };
    let at = if suffix.is_empty() {
        At::Latest
    } else if let Some(back) = suffix.strip_prefix('-') {
        At::Back(
            back.parse::<u64>()
                .map_err(|_| bad("not a number of versions back"))?,
        )
    } else if suffix.len() == 64 && suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
        At::Hash(
            suffix
                .parse::<ContentHash>()
                .map_err(|_| bad("not a content id"))?,
        )
    } else if suffix.len() >= 10 && suffix.as_bytes()[4] == b'-' {
        At::Time(strata_core::time::parse(suffix).map_err(|e| invalid(&escape_controls(&e)))?)
    } else if suffix.bytes().all(|b| b.is_ascii_digit()) {
        match suffix.parse::<u64>() {
            Ok(0) => return Err(bad("versions are numbered from 1")),
            Ok(n) => At::Version(VersionNo(n)),
            Err(_) => return Err(bad("the number is too large")),
        }
    } else if suffix.starts_with(|c: char| c.is_ascii_alphabetic()) {
        if suffix.chars().any(char::is_control) {
            return Err(bad("a tag name has no control characters"));
        }
        return Ok((parse_doc(key)?, Target::Tag(suffix.to_owned())));
    } else {
        return Err(bad("not a version"));
    };
    Ok((parse_doc(key)?, Target::At(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_at_signs_have_one_reading() {
        // See: issue 12, item 5.
        let at = |spec: &str| match parse_target(spec).unwrap() {
            (d, Target::At(at)) => (d.as_str().to_owned(), at),
            (_, Target::Tag(t)) => panic!("{spec} read as tag {t}"),
        };
        assert_eq!(at("user@host@"), ("user@host".into(), At::Latest));
        assert_eq!(at("x@1@2"), ("x@1".into(), At::Version(VersionNo(2))));
        assert_eq!(at("@team/plan"), ("@team/plan".into(), At::Latest));
        assert_eq!(
            at("@team/plan@4"),
            ("@team/plan".into(), At::Version(VersionNo(4)))
        );
        assert_eq!(at("notes@-1").1, At::Back(1));
        let h = ContentHash::of(b"x");
        assert_eq!(at(&format!("a@{h}")).1, At::Hash(h));
        for malformed in [
            "notes@-x",
            "notes@99999999999999999999",
            "notes@1x",
            "a@.b",
            "n@0",
        ] {
            let e = parse_target(malformed).unwrap_err().to_string();
            assert!(e.contains("invalid version"), "{malformed}: {e}");
        }
        assert!(parse_target("").is_err());
        for tagged in ["user@host", "notes@abc"] {
            assert!(matches!(parse_target(tagged), Ok((_, Target::Tag(_)))));
        }
    }

    /// Found by the `specs` fuzz target: a key holding a newline (`.200-\0\0\0\n1`) gave a
    /// two-line error, which the CLI prints as two lines. Control characters are now escaped
    /// in every message, and a tag name cannot hold one.
    #[test]
    fn messages_quoting_control_characters_stay_one_line() {
        for spec in [
            ".200-\0\0\0\n1",
            "doc@2024-05-0\n",
            "doc@x\ny",
            "a\nb@1",
            "a@\r",
        ] {
            let e = parse_target(spec).unwrap_err().to_string();
            assert_eq!(e.lines().count(), 1, "{spec:?}: {e}");
        }
    }

    proptest::proptest! {
        /// Any text given as a version spec parses or is a one-line error; never a panic.
        #[test]
        fn specs_never_panic(text in "\\PC{0,40}|.{0,20}", suffix in "[0-9a-fA-F:+.TZtz@\n-]{0,40}") {
            for spec in [text.clone(), format!("doc@{suffix}"), format!("{text}@{suffix}")] {
                if let Err(e) = parse_target(&spec) {
                    proptest::prop_assert_eq!(e.to_string().lines().count(), 1);
                }
            }
        }
    }
}
