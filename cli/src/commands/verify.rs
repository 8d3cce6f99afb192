//! `strata verify` and `strata gc`.

use std::io::Write;

use strata_storage::Store;

use crate::cli::JsonArgs;
use crate::error::CliError;

pub(crate) fn run_verify(
    args: &JsonArgs,
    store: &Store,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let report = store.verify()?;
    if args.json {
        super::write_json(out, &report)?;
    } else {
        for p in &report.problems {
            writeln!(out, "problem: {p}")?;
        }
        writeln!(
            out,
            "checked {}, {}, {} ({} unreferenced): {}",
            super::plural(report.documents, "document"),
            super::plural(report.versions, "version"),
            super::plural(report.objects, "object"),
            report.unreferenced_objects,
            if report.is_clean() {
                "ok".to_owned()
            } else {
                super::plural(report.problems.len() as u64, "problem")
            }
        )?;
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(CliError::Problems(format!(
            "verify found {}; restore the damaged versions from a backup",
            super::plural(report.problems.len() as u64, "problem")
        )))
    }
}

pub(crate) fn run_gc(store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let removed = store.gc()?;
    writeln!(
        out,
        "removed {}",
        super::plural(removed, "unreferenced object")
    )?;
    Ok(())
}
