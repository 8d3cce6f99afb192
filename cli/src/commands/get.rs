//! `strata get DOC[@N]`.

use std::io::Write;

use strata_storage::Store;

use crate::cli::GetArgs;
use crate::error::CliError;
use crate::spec;

pub(crate) fn run(args: &GetArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let (doc, at) = spec::parse(&args.spec)?;
    let content = store
        .get(&doc, at)?
        .ok_or_else(|| CliError::NotFound(format!("no version {}", spec::describe(&doc, at))))?;
    match &args.output {
        None => out.write_all(&content)?,
        Some(path) => write_atomically(path, &content)?,
    }
    Ok(())
}

/// Writes `content` to a temporary file beside `path`, then renames it into place, so that a
/// failure never leaves a partial file.
fn write_atomically(path: &std::path::Path, content: &[u8]) -> Result<(), CliError> {
    let fail =
        |e: std::io::Error| CliError::failed(format!("cannot write '{}': {e}", path.display()));
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError::failed(format!("'{}' is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.strata-tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}
