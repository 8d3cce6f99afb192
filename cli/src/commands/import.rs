//! `strata import DIR`: bulk import of document histories.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use strata_storage::{PutOptions, Store};

use crate::cli::ImportArgs;
use crate::error::CliError;

/// A batch is committed once the contents it holds reach this many bytes.
const MAX_BATCH_BYTES: u64 = 64 << 20;

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

/// Runs `strata import`. The folder is read and checked before `open` is called, so a bad
/// folder leaves no store behind.
pub(crate) fn run(
    args: &ImportArgs,
    open: impl FnOnce() -> Result<Store, CliError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if args.dir.as_os_str() == "-" {
        let store = open()?;
        let stdin = std::io::stdin();
        return run_stream(&mut stdin.lock(), args.batch.max(1), &store, out);
    }
    let plan = plan(&args.dir)?;
    let store = &open()?;
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut done = 0usize;
    let mut done_bytes = 0u64;
    let batch_len = args.batch.max(1);
    for (name, files) in &plan.docs {
        let doc = crate::spec::doc(name)?;
        let mut rest: &[PathBuf] = files;
        while !rest.is_empty() {
            // A batch holds its contents until commit: bound it by bytes as well as versions.
            let mut batch = store.batch();
            let mut batch_bytes = 0u64;
            let mut taken = 0;
            for f in rest.iter().take(batch_len) {
                let content = std::fs::read(f)
                    .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", f.display())))?;
                done_bytes += content.len() as u64;
                batch_bytes += content.len() as u64;
                batch.put(&doc, &content, PutOptions::default())?;
                taken += 1;
                if batch_bytes >= MAX_BATCH_BYTES {
                    break;
                }
            }
            batch.commit()?;
            rest = &rest[taken..];
            done += taken;
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
        "imported {} of {} ({done_bytes} bytes) in {secs:.2}s",
        plural(done, "version"),
        plural(plan.docs.len(), "document"),
    )?;
    Ok(())
}

/// Reads `put <size> <key>` records from `input` and stores them in batches.
pub(crate) fn run_stream(
    input: &mut dyn std::io::BufRead,
    batch_len: usize,
    store: &Store,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    use std::io::Read;
    let started = Instant::now();
    let mut committed = 0usize;
    let mut bytes = 0u64;
    let mut line_no = 0usize;
    let mut batch = Some(store.batch());
    let mut batch_bytes = 0u64;
    let stream_err = |line_no: usize, committed: usize, what: String| {
        CliError::failed(format!(
            "stream line {line_no}: {what} ({committed} versions from earlier batches were stored)"
        ))
    };
    loop {
        let mut header = Vec::new();
        let n = input.read_until(b'\n', &mut header).map_err(|e| {
            stream_err(
                line_no + 1,
                committed,
                format!("cannot read standard input: {e}"),
            )
        })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = String::from_utf8_lossy(&header);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let mut parts = text.splitn(3, ' ');
        let (Some("put"), Some(size), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(stream_err(
                line_no,
                committed,
                format!(
                    "expected 'put <size> <document key>', got '{}'",
                    text.chars().take(80).collect::<String>()
                ),
            ));
        };
        let size: u64 = size.parse().map_err(|_| {
            stream_err(
                line_no,
                committed,
                format!("'{size}' is not a size in bytes"),
            )
        })?;
        let doc = strata_core::DocId::new(key).map_err(|e| {
            stream_err(
                line_no,
                committed,
                format!("invalid document key '{key}': {e}"),
            )
        })?;
        let mut content = Vec::new();
        input
            .take(size)
            .read_to_end(&mut content)
            .map_err(|e| stream_err(line_no, committed, format!("cannot read content: {e}")))?;
        if content.len() as u64 != size {
            return Err(stream_err(
                line_no,
                committed,
                format!(
                    "the stream ended after {} of {size} content bytes",
                    content.len()
                ),
            ));
        }
        let mut end = [0u8; 1];
        match input.read(&mut end) {
            Ok(0) => {}
            Ok(_) if end[0] == b'\n' => {}
            Ok(_) => {
                return Err(stream_err(
                    line_no,
                    committed,
                    "content is not followed by a newline".into(),
                ));
            }
            Err(e) => {
                return Err(stream_err(
                    line_no,
                    committed,
                    format!("cannot read standard input: {e}"),
                ));
            }
        }
        bytes += size;
        let current = batch.as_mut().expect("a batch is open between records");
        current.put(&doc, &content, PutOptions::default())?;
        batch_bytes += size;
        if current.len() >= batch_len || batch_bytes >= MAX_BATCH_BYTES {
            batch_bytes = 0;
            // Commit (releasing the batch) before the next one starts.
            committed += batch.take().expect("checked above").commit()?.len();
            batch = Some(store.batch());
        }
    }
    if let Some(last) = batch.take() {
        committed += last.commit()?.len();
    }
    writeln!(
        out,
        "imported {} ({bytes} bytes) from standard input in {:.2}s",
        plural(committed, "version"),
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

/// `1 version`, `2 versions`.
fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
