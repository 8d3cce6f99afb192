//! Parsing `DOC[@VERSION]` arguments.

use strata_core::{ContentHash, DocId, VersionNo};
use strata_storage::At;

use crate::error::CliError;

/// Parses a document key, with a clear error.
pub(crate) fn doc(key: &str) -> Result<DocId, CliError> {
    DocId::new(key).map_err(|e| CliError::failed(format!("invalid document key '{key}': {e}")))
}

/// Parses `KEY`, `KEY@N`, `KEY@-N`, `KEY@<64 hex digits>`, `KEY@<RFC 3339 time or date>` or
/// `KEY@` (latest).
///
/// The spec is split at its last '@' (one at the very start belongs to the key, as in
/// `@team/plan`), and what follows must be a version: a key that itself contains '@' is
/// written with a version or a trailing '@' (`user@host@` is the latest version of the
/// document `user@host`). So every key has one reading, and a malformed version is always an
/// error, never a lookup of another document.
pub(crate) fn parse(spec: &str) -> Result<(DocId, At), CliError> {
    match parse_target(spec)? {
        (doc, Target::At(at)) => Ok((doc, at)),
        (doc, Target::Tag(name)) => Err(CliError::failed(format!(
            "'{spec}' names tag '{name}' of '{doc}', and tags are not taken here; give a \
             version number, -N, a time or a content id"
        ))),
    }
}

/// What a spec's suffix names: a version the store resolves by itself, or a tag.
pub(crate) enum Target {
    At(At),
    Tag(String),
}

/// As [`parse`], and `KEY@TAG` (a suffix that starts with a letter and is no other form)
/// names the version tagged so in `store`.
pub(crate) fn resolve(store: &strata_storage::Store, spec: &str) -> Result<(DocId, At), CliError> {
    let (doc, target) = parse_target(spec)?;
    match lookup(store, &doc, &target)? {
        Some(at) => Ok((doc, at)),
        None => Err(CliError::NotFound(format!(
            "no tag '{}' on '{doc}' (strata tags {doc} lists its tags; a key containing '@' \
             is written with a trailing '@': '{spec}@')",
            match &target {
                Target::Tag(name) => name.as_str(),
                Target::At(_) => "",
            }
        ))),
    }
}

/// The version `target` names in `store`: `None` for a tag the document does not have.
pub(crate) fn lookup(
    store: &strata_storage::Store,
    doc: &DocId,
    target: &Target,
) -> Result<Option<At>, CliError> {
    Ok(match target {
        Target::At(at) => Some(*at),
        Target::Tag(name) => store.tagged(doc, name)?.map(At::Version),
    })
}

/// Parses a spec whose suffix may also be a tag name (see [`resolve`]).
pub(crate) fn parse_target(spec: &str) -> Result<(DocId, Target), CliError> {
    let Some((key, suffix)) = spec.rsplit_once('@').filter(|(key, _)| !key.is_empty()) else {
        return Ok((doc(spec)?, Target::At(At::Latest)));
    };
    let bad = |why: &str| {
        CliError::failed(format!(
            "invalid version '{suffix}' in '{spec}': {why}; a version is N, -N or a 64-hex-digit \
             content id, a time (2024-05-01T12:00:00Z, 2024-05-01) or a tag, and a key containing '@' \
             is written with a trailing '@' ('{spec}@')"
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
        At::Time(crate::time::parse(suffix).map_err(|e| {
            CliError::failed(format!("invalid version '{suffix}' in '{spec}': {e}"))
        })?)
    } else if suffix.bytes().all(|b| b.is_ascii_digit()) {
        match suffix.parse::<u64>() {
            Ok(0) => return Err(bad("versions are numbered from 1")),
            Ok(n) => At::Version(VersionNo(n)),
            Err(_) => return Err(bad("the number is too large")),
        }
    } else if suffix.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Ok((doc(key)?, Target::Tag(suffix.to_owned())));
    } else {
        return Err(bad("not a version"));
    };
    Ok((doc(key)?, Target::At(at)))
}

/// Parses a spec that must name a whole document (`KEY` or `KEY@`), for `put` and `log`.
pub(crate) fn parse_doc(spec: &str, command: &str) -> Result<DocId, CliError> {
    match parse_target(spec)? {
        (doc, Target::At(At::Latest)) => Ok(doc),
        (doc, _) => Err(CliError::failed(format!(
            "{command} takes a document, not a version: '{spec}' names a version of '{doc}'; \
             for a document whose key is '{spec}', write '{spec}@'"
        ))),
    }
}

/// Describes a spec for "not found" messages.
pub(crate) fn describe(doc: &DocId, at: At) -> String {
    match at {
        At::Latest => format!("'{doc}'"),
        At::Version(v) => format!("'{doc}@{v}'"),
        At::Back(n) => format!("'{doc}@-{n}'"),
        At::Hash(h) => format!("'{doc}@{h}'"),
        At::Time(ms) => format!("'{doc}@{}'", crate::time::rfc3339(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let (d, at) = parse("notes@3").unwrap();
        assert_eq!((d.as_str(), at), ("notes", At::Version(VersionNo(3))));
        assert_eq!(parse("notes").unwrap().1, At::Latest);
        assert_eq!(parse("notes@-1").unwrap().1, At::Back(1));
        assert!(parse("notes@0").is_err());
        assert!(parse("").is_err());
        let h = ContentHash::of(b"x");
        assert_eq!(parse(&format!("a@{h}")).unwrap().1, At::Hash(h));
    }

    #[test]
    fn keys_with_at_signs_have_one_reading() {
        // See: issue 12, item 5.
        let (d, at) = parse("user@host@").unwrap();
        assert_eq!((d.as_str(), at), ("user@host", At::Latest));
        let (d, at) = parse("x@1@2").unwrap();
        assert_eq!((d.as_str(), at), ("x@1", At::Version(VersionNo(2))));
        let (d, at) = parse("@team/plan").unwrap();
        assert_eq!((d.as_str(), at), ("@team/plan", At::Latest));
        let (d, at) = parse("@team/plan@4").unwrap();
        assert_eq!((d.as_str(), at), ("@team/plan", At::Version(VersionNo(4))));
        for malformed in ["notes@-x", "notes@99999999999999999999", "notes@1x", "a@.b"] {
            let e = parse(malformed).unwrap_err().message();
            assert!(e.contains("invalid version"), "{malformed}: {e}");
        }
        // A suffix that starts with a letter names a tag (looked up in a store, never
        // another document); where no tag is taken it is an error.
        for tagged in ["user@host", "notes@abc"] {
            assert!(matches!(parse_target(tagged), Ok((_, Target::Tag(_)))));
            let e = parse(tagged).unwrap_err().message();
            assert!(e.contains("names tag"), "{tagged}: {e}");
        }
        assert_eq!(parse_doc("x@1@", "put").unwrap().as_str(), "x@1");
        assert!(
            parse_doc("notes@2", "put")
                .unwrap_err()
                .message()
                .contains("not a version")
        );
    }

    proptest::proptest! {
        /// Any text given as a version spec parses or is a one-line error; never a panic.
        #[test]
        fn specs_never_panic(text in "\\PC{0,40}", suffix in "[0-9a-fA-F:+.TZtz@-]{0,40}") {
            for spec in [text.clone(), format!("doc@{suffix}"), format!("{text}@{suffix}")] {
                match parse_target(&spec) {
                    Ok(_) => {}
                    Err(e) => proptest::prop_assert_eq!(e.message().lines().count(), 1),
                }
                let _ = crate::time::parse(&suffix);
            }
        }
    }
}
