//! `strata import DIR`: bulk import of document histories.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use strata_storage::{PutOptions, Store};

use crate::cli::ImportArgs;
use crate::error::CliError;

struct Plan {
    docs: Vec<(String, Vec<PathBuf>)>,
    versions: usize,
    bytes: u64,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| CliError::failed(format!("cannot read folder '{}': {e}", dir.display())))?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| {
            CliError::failed(format!("cannot read folder '{}': {e}", dir.display()))
        })?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

fn plan(dir: &Path) -> Result<Plan, CliError> {
    if !dir.is_dir() {
        return Err(CliError::failed(format!(
            "'{}' is not a folder: give a folder of document folders",
            dir.display()
        )));
    }
    let entries = sorted_entries(dir)?;
    let (folders, files): (Vec<PathBuf>, Vec<PathBuf>) =
        entries.into_iter().partition(|p| p.is_dir());
    let mut docs = Vec::new();
    if folders.is_empty() {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| {
                CliError::failed(format!("cannot name a document after '{}'", dir.display()))
            })?;
        docs.push((name, files));
    } else {
        for f in folders {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let versions: Vec<PathBuf> = sorted_entries(&f)?
                .into_iter()
                .filter(|p| p.is_file())
                .collect();
            docs.push((name, versions));
        }
    }
    let mut versions = 0;
    let mut bytes = 0;
    for (name, files) in &docs {
        crate::spec::doc(name)?;
        versions += files.len();
        for f in files {
            bytes += std::fs::metadata(f)
                .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", f.display())))?
                .len();
        }
    }
    Ok(Plan {
        docs,
        versions,
        bytes,
    })
}

pub(crate) fn run(args: &ImportArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let plan = plan(&args.dir)?;
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut done = 0usize;
    let mut done_bytes = 0u64;
    let batch_len = args.batch.max(1);
    for (name, files) in &plan.docs {
        let doc = crate::spec::doc(name)?;
        for chunk in files.chunks(batch_len) {
            let mut batch = store.batch();
            for f in chunk {
                let content = std::fs::read(f)
                    .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", f.display())))?;
                done_bytes += content.len() as u64;
                batch.put(&doc, &content, PutOptions::default())?;
            }
            batch.commit()?;
            done += chunk.len();
            if progress {
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let rate = done as f64 / secs;
                let eta = (plan.versions - done) as f64 / rate.max(1e-9);
                eprint!(
                    "\rimporting: {done}/{} versions, {:.1}/{:.1} MB, {rate:.0} versions/s, ETA {eta:.0}s   ",
                    plan.versions,
                    done_bytes as f64 / 1e6,
                    plan.bytes as f64 / 1e6
                );
            }
        }
    }
    if progress {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "imported {done} versions of {} documents ({} bytes) in {secs:.2}s",
        plan.docs.len(),
        done_bytes
    )?;
    Ok(())
}
