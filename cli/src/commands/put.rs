//! `strata put DOC [FILE]`.

use std::io::{Read, Write};

use strata_storage::{PutOptions, Store};

use crate::cli::PutArgs;
use crate::error::CliError;

pub(crate) fn run(args: &PutArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let doc = crate::spec::doc(&args.doc)?;
    // Read all input before writing anything, so a failed read stores nothing.
    let content = match args.file.as_deref() {
        None => read_stdin()?,
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => std::fs::read(p)
            .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", p.display())))?,
    };
    let mut options = PutOptions {
        expected: args.expect,
        ..PutOptions::default()
    };
    options.meta.message.clone_from(&args.message);
    options.meta.author.clone_from(&args.author);
    let rec = store.put_with(&doc, &content, options)?;
    let how = super::storage_note(store, &rec.hash)?;
    writeln!(
        out,
        "{doc}@{} {} {} bytes ({how})",
        rec.version, rec.hash, rec.size
    )?;
    Ok(())
}

fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))?;
    Ok(buf)
}
