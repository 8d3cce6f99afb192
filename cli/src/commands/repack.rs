//! `strata repack`.

use std::io::Write;
use std::path::Path;

use strata_core::Policy;
use strata_storage::{RepackOptions, Store, StoreOptions};

use crate::cli::{CopyArgs, RepackArgs};
use crate::error::CliError;

pub(crate) fn run(
    args: &RepackArgs,
    path: &Path,
    store_options: StoreOptions,
    policy: Option<Policy>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let nats = strata_storage::is_nats_store(path);
    if !nats && !path.exists() {
        return Err(CliError::NotFound(format!(
            "no store at {}: nothing to repack",
            path.display()
        )));
    }
    let options = RepackOptions {
        policy,
        level: args.level,
        window: args.window.max(1),
    };
    let r = Store::repack_at(path, store_options, options)?;
    writeln!(
        out,
        "repacked {} objects ({} deltas, {} unreferenced dropped): payload {} -> {} bytes, {} {} -> {} bytes",
        r.objects,
        r.deltas,
        r.dropped,
        r.stored_before,
        r.stored_after,
        if nats {
            "stream (the log, compacted)"
        } else {
            "store directory"
        },
        r.disk_before,
        r.disk_after
    )?;
    Ok(())
}

/// `strata copy DEST`: the store copied to a new store (any engine) and checked there.
pub(crate) fn run_copy(
    args: &CopyArgs,
    store: &Store,
    policy: Option<Policy>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let options = RepackOptions {
        policy,
        level: args.level,
        window: 1,
    };
    let (r, check) = store.copy_to(&args.dest, options)?;
    writeln!(
        out,
        "copied {} documents, {} versions, {} objects ({} deltas, payload {} bytes) to {}; the copy verifies and matches",
        check.documents,
        check.versions,
        r.objects,
        r.deltas,
        r.stored_after,
        args.dest.display()
    )?;
    Ok(())
}

/// Repacks with the store's own policy and default settings after a prune, and says so.
pub(crate) fn reclaim(
    path: &Path,
    store_options: StoreOptions,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let r = Store::repack_at(path, store_options, RepackOptions::default())?;
    writeln!(
        out,
        "repacked to reclaim the dropped versions' packed bytes: store directory {} -> {} bytes",
        r.disk_before, r.disk_after
    )?;
    Ok(())
}
