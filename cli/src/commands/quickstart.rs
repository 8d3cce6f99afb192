//! `strata quickstart`: a guided first run that runs the real commands, in a new store.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::cli::Cli;
use crate::error::CliError;

const V1: &str = include_str!("quickstart/recipe-v1.md");
const V2: &str = include_str!("quickstart/recipe-v2.md");
const V3: &str = include_str!("quickstart/recipe-v3.md");

/// Runs the tour. With `store` it works in that store; without, in a new folder under the
/// system's temporary directory, kept so that the user can go on from there. Each step
/// prints the command as the user would type it in the tour's folder, then the real output
/// of that command.
pub(crate) fn run(store: Option<PathBuf>, out: &mut dyn Write) -> Result<(), CliError> {
    let folder = new_folder()?;
    let store = store.unwrap_or_else(|| folder.join("store"));
    writeln!(
        out,
        "strata quickstart: in {} (store: {})\n",
        folder.display(),
        store.display()
    )?;
    let doc = "recipe.md";
    for (i, (content, msg)) in [
        (V1, "first draft"),
        (V2, "more garlic, less salt"),
        (V3, "add serving notes"),
    ]
    .into_iter()
    .enumerate()
    {
        let file = format!("recipe-v{}.md", i + 1);
        std::fs::write(folder.join(&file), content).map_err(|e| {
            CliError::failed(format!(
                "cannot write '{}': {e}",
                folder.join(&file).display()
            ))
        })?;
        step(&folder, &store, &["put", doc, &file, "-m", msg], out)?;
    }
    step(&folder, &store, &["log", doc], out)?;
    step(&folder, &store, &["diff", &format!("{doc}@1"), doc], out)?;
    step(&folder, &store, &["verify"], out)?;
    writeln!(
        out,
        "Next: cd {} and try strata --store store get {doc}@2, strata --store store serve \
         (then open http://127.0.0.1:7474/ for the history and diffs), or strata --help",
        folder.display()
    )?;
    Ok(())
}

/// Prints `$ strata --store store ARGS` and runs it through the same code as the command line.
fn step(folder: &Path, store: &Path, args: &[&str], out: &mut dyn Write) -> Result<(), CliError> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                (*a).to_owned()
            }
        })
        .collect();
    writeln!(out, "$ strata --store store {}", shown.join(" "))?;
    let mut argv: Vec<String> = vec!["strata".into(), "--store".into()];
    argv.push(store.display().to_string());
    for a in args {
        // File arguments are resolved in the tour's folder, as if the user were in it.
        let path = folder.join(a);
        argv.push(if a.ends_with(".md") && path.is_file() {
            path.display().to_string()
        } else {
            (*a).to_owned()
        });
    }
    let cli = Cli::try_parse_from(&argv)
        .map_err(|e| CliError::failed(format!("quickstart built a bad command: {e}")))?;
    super::run(&cli, out)?;
    writeln!(out)?;
    Ok(())
}

/// Makes a new folder for the tour under the temporary directory.
fn new_folder() -> Result<PathBuf, CliError> {
    let base = std::env::temp_dir();
    for n in 0..1000u32 {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "strata-quickstart-{}-{stamp}-{n}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(CliError::failed(format!(
                    "cannot create a folder under {}: {e}",
                    base.display()
                )));
            }
        }
    }
    Err(CliError::failed(format!(
        "cannot create a new folder under {}",
        base.display()
    )))
}
