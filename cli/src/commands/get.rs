//! `strata get DOC[@N]`.

use std::io::Write;

use strata_storage::Store;

use crate::cli::GetArgs;
use crate::error::CliError;
use crate::spec;

pub(crate) fn run(
    args: &GetArgs,
    store: &Store,
    input: &mut super::Input,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let Some(spec_text) = args.spec.as_deref().filter(|_| !args.batch) else {
        return run_batch(store, input, out);
    };
    let (doc, at) = spec::resolve(store, spec_text)?;
    let content = store
        .get(&doc, at)?
        .ok_or_else(|| missing(store, &doc, at))?;
    match &args.output {
        None => out.write_all(&content)?,
        Some(path) if !input.local_files() => {
            return Err(CliError::failed(format!(
                "-o '{}' would write a file on the server; a remote client writes it",
                path.display()
            )));
        }
        Some(path) => write_atomically(path, &content)?,
    }
    Ok(())
}

/// The "not found" error: no such document, or no such version of a document that exists.
pub(crate) fn missing(store: &Store, doc: &strata_core::DocId, at: strata_storage::At) -> CliError {
    if let Ok(Some(r)) = store.record(doc, at)
        && r.is_deletion()
    {
        return CliError::NotFound(format!(
            "'{doc}' was deleted at version {v}; its versions before that still read \
             ('{doc}@{}'), and a put revives it",
            r.version.get() - 1,
            v = r.version
        ));
    }
    if let strata_storage::At::Version(v) = at
        && let Ok(history) = store.history(doc)
        && let Some(first) = history.first()
        && v < first.version
    {
        return CliError::NotFound(format!(
            "'{doc}@{v}' was pruned: the history of '{doc}' starts at version {}",
            first.version
        ));
    }
    match store.record(doc, strata_storage::At::Latest) {
        Ok(None) => CliError::NotFound(format!("no document '{doc}'")),
        Ok(Some(_)) if matches!(at, strata_storage::At::Time(_)) => {
            let first = store
                .record(
                    doc,
                    strata_storage::At::Version(strata_core::VersionNo::FIRST),
                )
                .ok()
                .flatten()
                .map_or_else(String::new, |r| {
                    format!(
                        ": its first version is from {}",
                        crate::time::rfc3339(r.created_at_ms)
                    )
                });
            CliError::NotFound(format!(
                "{} did not exist yet{first}",
                spec::describe(doc, at)
            ))
        }
        _ => CliError::NotFound(format!("no version {}", spec::describe(doc, at))),
    }
}

/// Writes `content` to a temporary file beside `path`, then renames it into place, so that a
/// failure never leaves a partial file.
pub(crate) fn write_atomically(path: &std::path::Path, content: &[u8]) -> Result<(), CliError> {
    let fail =
        |e: std::io::Error| CliError::failed(format!("cannot write '{}': {e}", path.display()));
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError::failed(format!("'{}' is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.strata-tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// `get --batch`: one spec per input line, each answered with a header and the content.
fn run_batch(store: &Store, input: &mut super::Input, out: &mut dyn Write) -> Result<(), CliError> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    for line in input.lines() {
        let line =
            line.map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))?;
        let text = line.trim_end_matches('\r');
        if text.is_empty() {
            continue;
        }
        // A spec that does not parse, or names a tag the document lacks, is missing; store
        // errors stop the batch.
        let found = match spec::parse_target(text) {
            Ok((doc, target)) => match spec::lookup(store, &doc, &target)? {
                Some(at) => store
                    .get_with_record(&doc, at)?
                    .map(|(rec, c)| (rec.hash, c)),
                None => None,
            },
            Err(_) => None,
        };
        match found {
            Some((id, content)) => {
                writeln!(out, "{id} {}", content.len())?;
                out.write_all(&content)?;
                out.write_all(b"\n")?;
            }
            None => writeln!(out, "{text} missing")?,
        }
    }
    out.flush()?;
    Ok(())
}
