//! `strata import DIR`: bulk import of document histories.

use std::collections::HashMap;
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
    /// The time of each version file that a `.commits.tsv` dates: (ms, as written there).
    times: HashMap<PathBuf, (u64, String)>,
    versions: usize,
    bytes: u64,
}

/// The name of the file that dates a folder's versions, beside the folder.
fn commits_tsv(folder: &Path) -> Option<PathBuf> {
    let folder = folder.canonicalize().ok()?;
    let mut name = folder.file_name()?.to_owned();
    name.push(".commits.tsv");
    Some(folder.with_file_name(name))
}

/// Reads the times of the versions in `docs` from `tsv` when it exists. Its lines are
/// tab-separated, as in shared/corpus: `index, commit, date, ...` for one document (the index
/// names the version file), or `document, index, commit, date, ...` for a folder of document
/// folders. The date is an RFC 3339 time or a date (the start of that day, UTC).
fn read_times(
    tsv: &Path,
    docs: &[(String, Vec<PathBuf>)],
    times: &mut HashMap<PathBuf, (u64, String)>,
) -> Result<(), CliError> {
    let text = match std::fs::read_to_string(tsv) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(CliError::failed(format!(
                "cannot read '{}': {e}",
                tsv.display()
            )));
        }
    };
    // Version files by (document, file name).
    let mut files: HashMap<(&str, String), &PathBuf> = HashMap::new();
    for (name, versions) in docs {
        for f in versions {
            files.insert((name.as_str(), name_of(f)), f);
        }
    }
    let single = match docs {
        [(name, _)] => Some(name.as_str()),
        _ => None,
    };
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        if line.trim().is_empty() {
            continue;
        }
        let (key, date) = match (single, cols.as_slice()) {
            (Some(doc), [index, _, date, ..])
                if files.contains_key(&(doc, (*index).to_owned())) =>
            {
                ((doc, (*index).to_owned()), *date)
            }
            (_, [doc, index, _, date, ..]) if files.contains_key(&(*doc, (*index).to_owned())) => {
                ((*doc, (*index).to_owned()), *date)
            }
            // A line for a version or document this import does not hold.
            _ => continue,
        };
        let ms = crate::time::parse(date.trim())
            .map_err(|e| CliError::failed(format!("{} line {}: {e}", tsv.display(), i + 1)))?;
        times.insert(files[&key].clone(), (ms, date.trim().to_owned()));
    }
    Ok(())
}

/// The entries of `dir` except dotfiles, in version order: numerically where names are
/// numbers (`9` before `10`), else by name.
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
    out.sort_by_cached_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let digits = name.trim_start_matches('0');
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            (0, digits.len(), digits.to_owned(), name)
        } else {
            (1, 0, String::new(), name)
        }
    });
    Ok(out)
}

/// Returns `path`'s file name for messages.
fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The version files of one document folder. Anything else in it (a folder, a dangling
/// link, a device) is refused: silently dropping it would import a different history.
fn version_files(folder: &Path) -> Result<Vec<PathBuf>, CliError> {
    let entries = sorted_entries(folder)?;
    for p in &entries {
        if !p.is_file() {
            let what = match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => "a folder",
                Ok(m) if m.file_type().is_symlink() => "a link to nothing readable",
                _ => "not a regular file",
            };
            return Err(CliError::failed(format!(
                "'{}' is {what}; a document folder holds only its version files (remove it or \
                 import another folder)",
                p.display()
            )));
        }
    }
    Ok(entries)
}

fn plan(dir: &Path, limit: u64, raise_times: bool) -> Result<Plan, CliError> {
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
    let mut skipped = Vec::new();
    let many = !folders.is_empty();
    if !many {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| {
                CliError::failed(format!("cannot name a document after '{}'", dir.display()))
            })?;
        docs.push((name, version_files(dir)?));
    } else {
        for f in &files {
            if name_of(f).ends_with(".commits.tsv") {
                // Dates a document folder beside it (read below).
                continue;
            }
            skipped.push(format!(
                "{} (a file beside the document folders)",
                name_of(f)
            ));
        }
        for f in folders {
            let name = name_of(&f);
            if std::fs::symlink_metadata(&f).is_ok_and(|m| m.file_type().is_symlink()) {
                skipped.push(format!(
                    "{name} (a link to a folder, not a document folder)"
                ));
                continue;
            }
            let versions = version_files(&f)?;
            if versions.is_empty() {
                skipped.push(format!("{name} (an empty folder: no versions)"));
                continue;
            }
            docs.push((name, versions));
        }
    }
    if !skipped.is_empty() {
        let shown: Vec<&str> = skipped.iter().take(5).map(String::as_str).collect();
        let more = skipped.len() - shown.len();
        eprintln!(
            "strata: import skips {}: {}{}",
            super::plural(skipped.len(), "entry"),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    // Version times: from `<dir>.commits.tsv` beside the imported folder, and from
    // `<doc>.commits.tsv` beside each document folder.
    let mut times = HashMap::new();
    if let Some(tsv) = commits_tsv(dir) {
        read_times(&tsv, &docs, &mut times)?;
    }
    if many {
        for (name, files) in &docs {
            let one = [(name.clone(), files.clone())];
            if let Some(tsv) = commits_tsv(&dir.join(name)) {
                read_times(&tsv, &one, &mut times)?;
            }
        }
    }
    // Times within a document never go back: refused, unless asked to raise them.
    if !raise_times {
        for (name, files) in &docs {
            let mut newest: Option<(&PathBuf, &(u64, String))> = None;
            for f in files {
                let Some(t) = times.get(f) else { continue };
                if let Some((before, bt)) = newest
                    && t.0 < bt.0
                {
                    return Err(CliError::failed(format!(
                        "'{name}': {} is dated {}, before {} ({}): times within a document never \
                         go back; fix the .commits.tsv, or pass --raise-times to give such a \
                         version the previous one's time (its own date is kept as metadata 'date')",
                        name_of(f),
                        t.1,
                        name_of(before),
                        bt.1
                    )));
                }
                if newest.is_none_or(|(_, bt)| t.0 >= bt.0) {
                    newest = Some((f, t));
                }
            }
        }
    }
    let mut versions = 0;
    let mut bytes = 0;
    for (name, files) in &docs {
        crate::spec::doc(name)?;
        versions += files.len();
        for f in files {
            // Opening each file now finds unreadable ones before the store is touched.
            let size = std::fs::File::open(f)
                .and_then(|file| file.metadata())
                .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", f.display())))?
                .len();
            if size > limit {
                return Err(super::too_large(&format!("'{}'", f.display()), size, limit));
            }
            bytes += size;
        }
    }
    Ok(Plan {
        docs,
        times,
        versions,
        bytes,
    })
}

/// Runs `strata import`. The folder is read and checked before `open` is called, so a bad
/// folder leaves no store behind.
pub(crate) fn run(
    args: &ImportArgs,
    open: impl FnOnce() -> Result<Store, CliError>,
    input: &mut super::Input,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if args.dir.as_os_str() != "-" && !input.local_files() {
        return Err(CliError::failed(format!(
            "'{}' would name a folder or file on the server; a remote import sends a stream \
             (`import -`, or `import --git-stream FILE`, which the client reads); import a \
             folder where the store is",
            args.dir.display()
        )));
    }
    if args.git_stream {
        if args.dir.as_os_str() == "-" {
            return super::export::import_git_stream(
                &mut input.reader(),
                args.raise_times,
                open,
                out,
            );
        }
        let file = std::fs::File::open(&args.dir)
            .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", args.dir.display())))?;
        let mut reader = std::io::BufReader::new(file);
        return super::export::import_git_stream(&mut reader, args.raise_times, open, out);
    }
    if args.dir.as_os_str() == "-" {
        return run_stream(
            &mut input.reader(),
            args.batch.max(1),
            args.limit.max_size,
            open,
            out,
        );
    }
    let plan = plan(&args.dir, args.limit.max_size, args.raise_times)?;
    if plan.versions == 0 {
        // Nothing to store: the store is created only with its first version.
        writeln!(
            out,
            "imported 0 versions: '{}' holds no version files",
            args.dir.display()
        )?;
        return Ok(());
    }
    let store = &open()?;
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut done = 0usize;
    let mut done_bytes = 0u64;
    let batch_len = args.batch.max(1);
    // Batches run across documents (a document's versions stay in order within and across
    // batches), so a folder of many short histories commits in a few large batches: fewer,
    // larger packs.
    let mut queue = Vec::with_capacity(plan.versions);
    for (name, files) in &plan.docs {
        let doc = crate::spec::doc(name)?;
        queue.extend(files.iter().map(|f| (doc.clone(), f)));
    }
    let mut rest: &[(strata_core::DocId, &PathBuf)] = &queue;
    // A document's times never go back: a version dated before the one before it (git author
    // dates do, after a rebase) gets that version's time, and keeps its own date as metadata.
    let mut newest: HashMap<strata_core::DocId, u64> = HashMap::new();
    let mut raised = 0usize;
    while !rest.is_empty() {
        // A batch holds its contents until commit: bound it by bytes as well as versions.
        let mut batch = store.batch();
        let mut batch_bytes = 0u64;
        let mut taken = 0;
        for (doc, f) in rest.iter().take(batch_len) {
            let content = std::fs::read(f)
                .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", f.display())))?;
            done_bytes += content.len() as u64;
            batch_bytes += content.len() as u64;
            let mut options = PutOptions::default();
            if let Some((ms, text)) = plan.times.get(*f) {
                let floor = match newest.get(doc) {
                    Some(t) => *t,
                    None => store
                        .record(doc, strata_storage::At::Latest)?
                        .map_or(0, |r| r.created_at_ms),
                };
                let time = (*ms).max(floor);
                if time > *ms {
                    raised += 1;
                    options.meta.extra.push(("date".to_owned(), text.clone()));
                }
                newest.insert(doc.clone(), time);
                options.time_ms = Some(time);
            }
            batch.put(doc, &content, options)?;
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
    if progress {
        eprintln!();
    }
    // Each large batch wrote its records as a run of their own, and every lookup looks in
    // each run: the import ends by merging them when there are many.
    store.settle_records()?;
    let secs = started.elapsed().as_secs_f64();
    let dated = if plan.times.is_empty() {
        String::new()
    } else {
        format!(
            ", {} dated by .commits.tsv{}",
            plan.times.len(),
            if raised > 0 {
                format!(
                    " ({raised} dated before the version before them got that version's time \
                     and keep their own date as metadata 'date')"
                )
            } else {
                String::new()
            }
        )
    };
    writeln!(
        out,
        "imported {} of {} ({done_bytes} bytes) in {secs:.2}s{dated}",
        super::plural(done, "version"),
        super::plural(plan.docs.len(), "document"),
    )?;
    Ok(())
}

/// Reads `put <size> <key>` records from `input` and stores them in batches. The store is
/// opened (and created) only once the first record has been read whole.
pub(crate) fn run_stream(
    input: &mut dyn std::io::BufRead,
    batch_len: usize,
    limit: u64,
    open: impl FnOnce() -> Result<Store, CliError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    use std::io::Read;
    let started = Instant::now();
    let mut committed = 0usize;
    let mut bytes = 0u64;
    let mut line_no = 0usize;
    let mut open = Some(open);
    let cell: std::cell::OnceCell<Store> = std::cell::OnceCell::new();
    let mut batch: Option<strata_storage::WriteBatch<'_>> = None;
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
        if size > limit {
            return Err(stream_err(
                line_no,
                committed,
                format!(
                    "a record of {size} bytes is over the content limit of {limit} bytes; raise \
                     it with --max-size (up to 1G)"
                ),
            ));
        }
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
        // The content and its closing newline are lines of the stream too.
        let record_line = line_no;
        line_no += content.iter().filter(|&&b| b == b'\n').count() + 1;
        bytes += size;
        if cell.get().is_none() {
            let opener = open.take().expect("the store is opened once");
            let _ = cell.set(opener()?);
        }
        let store = cell.get().expect("opened above");
        let current = batch.get_or_insert_with(|| store.batch());
        current
            .put(&doc, &content, PutOptions::default())
            .map_err(|e| stream_err(record_line, committed, e.to_string()))?;
        batch_bytes += size;
        if current.len() >= batch_len || batch_bytes >= MAX_BATCH_BYTES {
            batch_bytes = 0;
            // Commit (releasing the batch) before the next one starts.
            committed += batch.take().expect("checked above").commit()?.len();
        }
    }
    if let Some(last) = batch.take() {
        committed += last.commit()?.len();
    }
    if let Some(store) = cell.get() {
        store.settle_records()?;
    }
    writeln!(
        out,
        "imported {} ({bytes} bytes) from standard input in {:.2}s",
        super::plural(committed, "version"),
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}
