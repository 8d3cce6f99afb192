//! `strata diff OLD NEW`.

use std::io::Write;

use strata_diff::{DiffOptions, render};
use strata_storage::Store;

use crate::cli::DiffArgs;
use crate::error::CliError;
use crate::spec;

pub(crate) fn run(args: &DiffArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let (old_doc, old_at) = spec::parse(&args.old)?;
    let (new_doc, new_at) = spec::parse(&args.new)?;
    let options = DiffOptions {
        context: args.context,
    };
    let old = store.get(&old_doc, old_at)?;
    let new = store.get(&new_doc, new_at)?;
    let (Some(old), Some(new)) = (old, new) else {
        let missing = if store.record(&old_doc, old_at)?.is_none() {
            spec::describe(&old_doc, old_at)
        } else {
            spec::describe(&new_doc, new_at)
        };
        return Err(CliError::NotFound(format!("no version {missing}")));
    };
    let diff = strata_diff::compare(&old, &new, &options);
    if args.format == "json" {
        return super::write_json(out, &diff);
    }
    if args.stat {
        writeln!(out, "{}", render::stat_line(&diff))?;
        return Ok(());
    }
    let text = render::unified(
        &diff,
        &format!("a/{}", args.old),
        &format!("b/{}", args.new),
    );
    out.write_all(text.as_bytes())?;
    Ok(())
}
