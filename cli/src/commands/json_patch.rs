//! `strata json-patch apply DOC PATCH`.

use std::io::{Read, Write};
use std::path::Path;

use strata_diff::json::{apply_patch, parse_patch};

use crate::cli::{JsonPatchAction, JsonPatchArgs};
use crate::error::CliError;

fn read_json(path: &Path, what: &str) -> Result<serde_json::Value, CliError> {
    let bytes = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| {
            CliError::failed(format!("cannot read the {what} from standard input: {e}"))
        })?;
        buf
    } else {
        std::fs::read(path).map_err(|e| {
            CliError::failed(format!("cannot read the {what} '{}': {e}", path.display()))
        })?
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        CliError::failed(format!(
            "the {what} '{}' is not valid JSON: {e}",
            path.display()
        ))
    })
}

pub(crate) fn run(args: &JsonPatchArgs, out: &mut dyn Write) -> Result<(), CliError> {
    match &args.action {
        JsonPatchAction::Apply { doc, patch } => {
            if doc.as_os_str() == "-" && patch.as_os_str() == "-" {
                return Err(CliError::failed(
                    "only one of the document and the patch can be read from standard input",
                ));
            }
            let doc_value = read_json(doc, "document")?;
            let ops = parse_patch(&read_json(patch, "patch")?)
                .map_err(|e| CliError::failed(e.to_string()))?;
            let result = apply_patch(&doc_value, &ops)
                .map_err(|e| CliError::failed(format!("{e}; the document was not changed")))?;
            let text = serde_json::to_string_pretty(&result)
                .map_err(|e| CliError::failed(format!("encoding JSON failed: {e}")))?;
            writeln!(out, "{text}")?;
            Ok(())
        }
    }
}
