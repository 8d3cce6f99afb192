//! `strata batch FILE|-`: several puts, all or nothing.

use std::io::Write;

use serde::Deserialize;
use strata_storage::{PutOptions, Store};

use crate::cli::BatchArgs;
use crate::error::CliError;

/// One line of the input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    doc: String,
    content: Option<String>,
    file: Option<std::path::PathBuf>,
    expect: Option<u64>,
    message: Option<String>,
    author: Option<String>,
    time: Option<String>,
}

/// Reads and checks every line (and every file it names) before `open` is called, so bad
/// input leaves the store untouched; then commits all the puts in one batch.
pub(crate) fn run(
    args: &BatchArgs,
    open: impl FnOnce() -> Result<Store, CliError>,
    input: &mut super::Input,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let limit = args.limit.max_size;
    let text = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        input
            .read_limited(u64::MAX, &mut buf)
            .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))?;
        String::from_utf8(buf)
            .map_err(|_| CliError::failed("the batch on standard input is not UTF-8 text"))?
    } else if !input.local_files() {
        return Err(CliError::failed(format!(
            "'{}' would name a file on the server; a remote batch sends its lines",
            args.file.display()
        )));
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", args.file.display())))?
    };
    let puts = parse(&text, limit, input.local_files())?;
    let store = open()?;
    for (doc, rec) in commit(&store, puts)? {
        writeln!(
            out,
            "{doc}@{} {} {} bytes (seq {})",
            rec.version, rec.hash, rec.size, rec.seq
        )?;
    }
    Ok(())
}

/// One put of a batch: the document, its new content and the put's options.
pub(crate) type BatchPut = (strata_core::DocId, Vec<u8>, PutOptions);

/// Reads and checks every line of a batch (and, with `local_files`, every file it names):
/// bad input is refused before anything is stored.
pub(crate) fn parse(text: &str, limit: u64, local_files: bool) -> Result<Vec<BatchPut>, CliError> {
    let mut puts = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let at = |what: String| CliError::failed(format!("batch line {}: {what}", i + 1));
        let line: Line = serde_json::from_str(raw).map_err(|e| {
            at(format!(
                "{e}; each line is an object with \"doc\" and \"content\" or \"file\" (and \
                 optionally \"expect\", \"message\", \"author\", \"time\")"
            ))
        })?;
        let doc = strata_core::DocId::new(line.doc.as_str())
            .map_err(|e| at(format!("invalid document key '{}': {e}", line.doc)))?;
        let content = match (line.content, &line.file) {
            (Some(c), None) => c.into_bytes(),
            (None, Some(path)) if !local_files => {
                return Err(at(format!(
                    "\"file\": \"{}\" would name a file on the server; a remote batch gives \
                     \"content\"",
                    path.display()
                )));
            }
            (None, Some(path)) => std::fs::read(path)
                .map_err(|e| at(format!("cannot read '{}': {e}", path.display())))?,
            _ => return Err(at("give exactly one of \"content\" and \"file\"".into())),
        };
        if content.len() as u64 > limit {
            return Err(at(format!(
                "the content is {} bytes, over the limit of {limit}; raise it with --max-size",
                content.len()
            )));
        }
        let time_ms = line
            .time
            .as_deref()
            .map(crate::time::parse)
            .transpose()
            .map_err(at)?;
        let mut options = PutOptions {
            expected: line.expect,
            time_ms,
            ..PutOptions::default()
        };
        options.meta.message = line.message;
        options.meta.author = line.author;
        puts.push((doc, content, options));
    }
    if puts.is_empty() {
        return Err(CliError::failed(
            "the batch holds no lines: nothing to store",
        ));
    }
    Ok(puts)
}

/// Commits `puts` in one batch (all or nothing, consecutive feed positions); returns each
/// put's document and record, in order.
pub(crate) fn commit(
    store: &Store,
    puts: Vec<BatchPut>,
) -> Result<Vec<(strata_core::DocId, strata_core::VersionRecord)>, CliError> {
    let mut batch = store.batch();
    let mut docs = Vec::with_capacity(puts.len());
    for (doc, content, options) in puts {
        batch.put(&doc, &content, options)?;
        docs.push(doc);
    }
    let records = batch.commit()?;
    Ok(docs.into_iter().zip(records).collect())
}
