//! `strata tag` and `strata tags`.

use std::io::Write;

use strata_storage::{At, Store};

use crate::cli::{TagArgs, TagsArgs};
use crate::error::CliError;
use crate::spec;

/// `strata tag DOC@N NAME [--force]` and `strata tag --delete DOC NAME`.
pub(crate) fn run_tag(args: &TagArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    if args.delete {
        let doc = spec::parse_doc(&args.spec, "tag --delete")?;
        if !store.untag(&doc, &args.name)? {
            return Err(CliError::NotFound(format!(
                "no tag '{}' on '{doc}'",
                args.name
            )));
        }
        writeln!(out, "removed tag '{}' of '{doc}'", args.name)?;
        return Ok(());
    }
    let (doc, at) = spec::resolve(store, &args.spec)?;
    let rec = store
        .record(&doc, at)?
        .ok_or_else(|| super::get::missing(store, &doc, at))?;
    let before = store.tagged(&doc, &args.name)?;
    store.tag(&doc, rec.version, &args.name, args.force)?;
    match before {
        Some(v) if v != rec.version => writeln!(
            out,
            "moved tag '{}' of '{doc}' from version {v} to {}",
            args.name, rec.version
        )?,
        _ => writeln!(out, "{doc}@{} is '{}'", rec.version, args.name)?,
    }
    Ok(())
}

/// `strata tags [DOC] [--json]`.
pub(crate) fn run_tags(
    args: &TagsArgs,
    store: &Store,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let doc = match &args.doc {
        Some(d) => {
            let doc = spec::parse_doc(d, "tags")?;
            if store.record(&doc, At::Latest)?.is_none() {
                return Err(CliError::NotFound(format!("no document '{doc}'")));
            }
            Some(doc)
        }
        None => None,
    };
    for (doc, name, version) in store.tags(doc.as_ref())? {
        if args.json {
            super::write_json(
                out,
                &serde_json::json!({"doc": doc.as_str(), "tag": name, "version": version.get()}),
            )?;
        } else {
            writeln!(out, "{doc}@{version} {name}")?;
        }
    }
    Ok(())
}
