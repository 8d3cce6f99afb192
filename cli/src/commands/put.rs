//! `strata put DOC [FILE]`.

use std::io::{Read, Write};

use strata_storage::{PutOptions, Store};

use crate::cli::PutArgs;
use crate::error::CliError;

/// Runs `strata put`. The key and the whole input are checked and read before `open` is
/// called, so bad input leaves no store behind.
pub(crate) fn run(
    args: &PutArgs,
    open: impl FnOnce() -> Result<Store, CliError>,
    input: &mut super::Input,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let doc = crate::spec::parse_doc(&args.doc, "put")?;
    let time_ms = match &args.time {
        Some(t) => {
            Some(crate::time::parse(t).map_err(|e| CliError::failed(format!("--time: {e}")))?)
        }
        None => None,
    };
    let limit = args.limit.max_size;
    let content = match args.file.as_deref() {
        None => read_stdin(input, limit)?,
        Some(p) if p.as_os_str() == "-" => read_stdin(input, limit)?,
        Some(p) if !input.local_files() => {
            return Err(CliError::failed(format!(
                "'{}' would name a file on the server; a remote put sends its content (the \
                 client reads FILE)",
                p.display()
            )));
        }
        Some(p) => read_content_file(p, limit)?,
    };
    let mut options = PutOptions {
        expected: args.expect,
        time_ms,
        ..PutOptions::default()
    };
    options.meta.message.clone_from(&args.message);
    options.meta.author.clone_from(&args.author);
    let store = open()?;
    let rec = store.put_with(&doc, &content, options)?;
    let how = super::storage_note(&store, &rec.hash)?;
    writeln!(
        out,
        "{doc}@{} {} {} bytes ({how})",
        rec.version, rec.hash, rec.size
    )?;
    Ok(())
}

/// Reads standard input whole, refusing more than `limit` bytes without reading past it.
fn read_stdin(input: &mut super::Input, limit: u64) -> Result<Vec<u8>, CliError> {
    if input.is_terminal() {
        eprintln!(
            "strata: reading the new content from the terminal; end it with Ctrl-D \
             (or give a FILE: strata put DOC FILE)"
        );
    }
    let mut buf = Vec::new();
    input
        .read_limited(limit + 1, &mut buf)
        .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(CliError::failed(format!(
            "standard input holds more than the content limit of {limit} bytes; raise it with \
             --max-size (up to 1G)"
        )));
    }
    Ok(buf)
}

/// Reads a version's content from `path`, refusing (before reading it) a file over `limit`.
pub(crate) fn read_content_file(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, CliError> {
    let cannot =
        |e: std::io::Error| CliError::failed(format!("cannot read '{}': {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let size = file.metadata().map_err(cannot)?.len();
    if size > limit {
        return Err(super::too_large(
            &format!("'{}'", path.display()),
            size,
            limit,
        ));
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut buf).map_err(cannot)?;
    Ok(buf)
}
