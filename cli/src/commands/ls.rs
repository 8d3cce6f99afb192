//! `strata ls` and `strata stats`.

use std::io::Write;

use serde::Serialize;
use strata_storage::Store;

use crate::cli::{JsonArgs, LsArgs, PruneArgs, RetentionArgs, RmArgs};
use crate::error::CliError;

#[derive(Serialize)]
struct DocLine {
    doc: String,
    latest: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

pub(crate) fn run_ls(args: &LsArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    for d in store
        .documents()?
        .into_iter()
        .filter(|d| args.all || !d.deleted)
    {
        if args.json {
            super::write_json(
                out,
                &DocLine {
                    doc: d.doc.to_string(),
                    latest: d.latest.get(),
                    deleted: d.deleted,
                },
            )?;
        } else if d.deleted {
            writeln!(out, "{}@{} (deleted)", d.doc, d.latest)?;
        } else {
            writeln!(out, "{}@{}", d.doc, d.latest)?;
        }
    }
    Ok(())
}

/// Records the deletion of `doc` as its next version; a missing or already deleted document
/// is a negative answer naming which (for `strata rm` and the server's `DELETE`).
pub(crate) fn delete(
    store: &Store,
    doc: &strata_core::DocId,
) -> Result<strata_core::VersionRecord, CliError> {
    match store.record(doc, strata_storage::At::Latest)? {
        None => return Err(CliError::NotFound(format!("no document '{doc}'"))),
        Some(r) if r.is_deletion() => {
            return Err(CliError::NotFound(format!(
                "'{doc}' is already deleted (at version {})",
                r.version
            )));
        }
        Some(_) => {}
    }
    store
        .delete(doc)?
        .ok_or_else(|| CliError::NotFound(format!("no document '{doc}'")))
}

/// `strata rm DOC`: records the deletion as the document's next version.
pub(crate) fn run_rm(args: &RmArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let doc = crate::spec::parse_doc(&args.doc, "rm")?;
    let rec = delete(store, &doc)?;
    writeln!(
        out,
        "deleted '{doc}' at version {} (its earlier versions stay readable; a put revives it)",
        rec.version
    )?;
    Ok(())
}

pub(crate) fn run_stats(
    args: &JsonArgs,
    store: &Store,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let s = store.stats()?;
    if args.json {
        return super::write_json(out, &s);
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    writeln!(out, "policy           {}", store.policy_name())?;
    writeln!(out, "documents        {}", s.documents)?;
    writeln!(out, "versions         {}", s.versions)?;
    writeln!(
        out,
        "objects          {} ({} full, {} delta)",
        s.objects, s.full_objects, s.delta_objects
    )?;
    writeln!(
        out,
        "stored as        {} loose, {} packed in {} ({} bytes, {} no longer used)",
        s.loose_objects,
        s.packed_objects,
        super::plural(s.packs, "pack"),
        s.pack_bytes,
        s.dead_pack_bytes
    )?;
    writeln!(out, "deepest chain    {}", s.max_depth)?;
    writeln!(out, "raw bytes        {}", s.raw_bytes)?;
    let share = |n: u64| {
        if n > s.raw_bytes {
            // More than the raw contents (tiny or incompressible documents): a multiple.
            format!("{n} ({:.2}x raw)", ratio(n, s.raw_bytes))
        } else {
            format!(
                "{n} ({:.4} of raw, 1/{:.0})",
                ratio(n, s.raw_bytes),
                ratio(s.raw_bytes, n)
            )
        }
    };
    writeln!(out, "stored bytes     {}", share(s.stored_bytes))?;
    writeln!(out, "record bytes     {}", share(s.record_bytes))?;
    writeln!(
        out,
        "disk bytes       {} ({:.1}x the records)",
        share(s.disk_bytes),
        ratio(s.disk_bytes, s.record_bytes)
    )?;
    Ok(())
}

/// `strata prune DOC --keep N | --before TIME [--force]`. Returns whether a quarter or more
/// of the packed bytes are no longer used afterwards (a repack would reclaim them).
pub(crate) fn run_prune(
    args: &PruneArgs,
    store: &Store,
    out: &mut dyn Write,
) -> Result<bool, CliError> {
    let doc = crate::spec::parse_doc(&args.doc, "prune")?;
    if store.history(&doc)?.is_empty() {
        return Err(CliError::NotFound(format!("no document '{doc}'")));
    }
    let rule = retention_rule(args.keep, args.before.as_deref())?
        .expect("clap requires --keep or --before");
    let r = store.prune(&doc, rule, args.force)?;
    if r.versions == 0 {
        writeln!(
            out,
            "nothing to drop: '{doc}' starts at version {}",
            r.first_kept
        )?;
        return Ok(false);
    }
    let tags = if r.tags_removed.is_empty() {
        String::new()
    } else {
        format!(", removed tags {}", r.tags_removed.join(", "))
    };
    writeln!(
        out,
        "dropped {} of '{doc}' (now from version {}), re-encoded {}, removed {}{tags}",
        super::plural(r.versions as usize, "version"),
        r.first_kept,
        super::plural(r.rebased as usize, "object"),
        super::plural(r.objects_removed as usize, "object"),
    )?;
    let stats = store.stats()?;
    Ok(stats.pack_bytes > 0 && stats.dead_pack_bytes * 4 >= stats.pack_bytes)
}

/// `strata retention [--keep N | --before TIME | --off]`.
pub(crate) fn run_retention(
    args: &RetentionArgs,
    store: &Store,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    use strata_storage::Retention;
    match retention_rule(args.keep, args.before.as_deref())? {
        Some(rule) => store.set_retention(Some(rule))?,
        None if args.off => store.set_retention(None)?,
        None => {}
    }
    match store.retention() {
        None => writeln!(out, "retention: none (every version is kept)")?,
        Some(Retention::KeepLast(n)) => writeln!(
            out,
            "retention: keep the newest {} of each document (and a tagged version with those after it)",
            super::plural(n as usize, "version")
        )?,
        Some(Retention::Since(ms)) => writeln!(
            out,
            "retention: drop versions made before {} (tagged ones and each newest stay)",
            crate::time::rfc3339(ms)
        )?,
    }
    Ok(())
}

/// The rule `--keep N` or `--before TIME` gives (`None` when neither is given).
fn retention_rule(
    keep: Option<u64>,
    before: Option<&str>,
) -> Result<Option<strata_storage::Retention>, CliError> {
    use strata_storage::Retention;
    Ok(match (keep, before) {
        (Some(0), _) => {
            return Err(CliError::failed(
                "--keep 0 would drop every version: keep at least 1 (the newest is always kept)",
            ));
        }
        (Some(n), _) => Some(Retention::KeepLast(n)),
        (None, Some(t)) => Some(Retention::Since(
            crate::time::parse(t).map_err(|e| CliError::failed(format!("--before: {e}")))?,
        )),
        (None, None) => None,
    })
}
