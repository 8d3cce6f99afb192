//! `strata repack`.

use std::io::Write;
use std::path::Path;

use strata_core::Policy;
use strata_storage::{RepackOptions, Store, StoreOptions};

use crate::cli::RepackArgs;
use crate::error::CliError;

pub(crate) fn run(
    args: &RepackArgs,
    path: &Path,
    policy: Option<Policy>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if !path.exists() {
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
    let r = Store::repack_at(path, StoreOptions::default(), options)?;
    writeln!(
        out,
        "repacked {} objects ({} deltas, {} unreferenced dropped): payload {} -> {} bytes, store directory {} -> {} bytes",
        r.objects,
        r.deltas,
        r.dropped,
        r.stored_before,
        r.stored_after,
        r.disk_before,
        r.disk_after
    )?;
    Ok(())
}
