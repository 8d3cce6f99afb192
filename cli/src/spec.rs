//! Parsing `DOC[@VERSION]` arguments (the parser itself is `strata_storage::spec`).

use strata_core::DocId;
use strata_storage::At;

use crate::error::CliError;

/// Parses a document key, with a clear error.
pub(crate) fn doc(key: &str) -> Result<DocId, CliError> {
    strata_storage::spec::parse_doc(key).map_err(|e| CliError::failed(e.to_string()))
}

/// Parses a spec that names a version without a tag (see
/// [`strata_storage::spec::parse_target`] for the forms).
pub(crate) fn parse(spec: &str) -> Result<(DocId, At), CliError> {
    match parse_target(spec)? {
        (doc, Target::At(at)) => Ok((doc, at)),
        (doc, Target::Tag(name)) => Err(CliError::failed(format!(
            "'{spec}' names tag '{name}' of '{doc}', and tags are not taken here; give a \
             version number, -N, a time or a content id"
        ))),
    }
}

pub(crate) use strata_storage::spec::Target;

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

/// Parses a spec whose suffix may also be a tag name (see [`resolve`] and
/// [`strata_storage::spec::parse_target`]).
pub(crate) fn parse_target(spec: &str) -> Result<(DocId, Target), CliError> {
    strata_storage::spec::parse_target(spec).map_err(|e| CliError::failed(e.to_string()))
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
    use strata_core::VersionNo;

    #[test]
    fn versions_parse_and_tags_are_refused_where_not_taken() {
        // The forms themselves are tested in strata_storage::spec.
        let (d, at) = parse("notes@3").unwrap();
        assert_eq!((d.as_str(), at), ("notes", At::Version(VersionNo(3))));
        assert!(
            parse("notes@0")
                .unwrap_err()
                .message()
                .contains("invalid version")
        );
        // A suffix that starts with a letter names a tag (looked up in a store, never
        // another document); where no tag is taken it is an error.
        for tagged in ["user@host", "notes@abc"] {
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
}
