//! Parsing `DOC[@VERSION]` arguments.

use strata_core::{ContentHash, DocId, VersionNo};
use strata_storage::At;

use crate::error::CliError;

/// Parses a document key, with a clear error.
pub(crate) fn doc(key: &str) -> Result<DocId, CliError> {
    DocId::new(key).map_err(|e| CliError::failed(format!("invalid document key '{key}': {e}")))
}

/// Parses `DOC`, `DOC@N`, `DOC@-N` or `DOC@<64 hex digits>`.
///
/// A key may itself contain '@': only a suffix that reads as a version is split off, so
/// `user@host` names the document `user@host` at its latest version.
pub(crate) fn parse(spec: &str) -> Result<(DocId, At), CliError> {
    if let Some((key, suffix)) = spec.rsplit_once('@') {
        let at = if let Some(back) = suffix.strip_prefix('-') {
            back.parse::<u64>().ok().map(At::Back)
        } else if suffix.len() == 64 {
            suffix.parse::<ContentHash>().ok().map(At::Hash)
        } else if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            match suffix.parse::<u64>() {
                Ok(0) | Err(_) => {
                    return Err(CliError::failed(format!(
                        "invalid version '{suffix}' in '{spec}': versions are numbered from 1"
                    )));
                }
                Ok(n) => Some(At::Version(VersionNo(n))),
            }
        } else {
            None
        };
        if let Some(at) = at {
            return Ok((doc(key)?, at));
        }
    }
    Ok((doc(spec)?, At::Latest))
}

/// Describes a spec for "not found" messages.
pub(crate) fn describe(doc: &DocId, at: At) -> String {
    match at {
        At::Latest => format!("'{doc}'"),
        At::Version(v) => format!("'{doc}@{v}'"),
        At::Back(n) => format!("'{doc}@-{n}'"),
        At::Hash(h) => format!("'{doc}@{h}'"),
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
        assert_eq!(parse("me@host").unwrap().0.as_str(), "me@host");
        assert!(parse("notes@0").is_err());
        assert!(parse("").is_err());
        let h = ContentHash::of(b"x");
        assert_eq!(parse(&format!("a@{h}")).unwrap().1, At::Hash(h));
    }
}
