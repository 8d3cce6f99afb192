//! `strata export [DOC...]`: the store's history as a `git fast-import` stream, and `strata
//! import --git-stream`: a `git fast-export` stream into the store.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use strata_storage::{At, DocId, PutOptions, Store};

use crate::cli::ExportArgs;
use crate::error::CliError;

/// Metadata lines appended to a commit message for the metadata git has no field for.
const EXTRA_TRAILER: &str = "Strata-Meta: ";

/// Whether `key` can be a path in a git tree: no empty, `.`, `..` or `.git` component.
fn git_path_ok(key: &str) -> bool {
    key.split('/')
        .all(|c| !c.is_empty() && c != "." && c != ".." && c != ".git")
}

/// A path as fast-import reads it: quoted, with `"` and `\` escaped.
fn quote(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    out.push('"');
    for c in path.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `Name <email>` for git from a strata author (`Name <email>` or a bare name).
fn git_ident(author: Option<&str>) -> String {
    match author {
        Some(a) if a.contains('<') && a.trim_end().ends_with('>') => a.trim().to_owned(),
        Some(a) => format!("{} <>", a.replace(['<', '>'], "")),
        None => "strata <>".to_owned(),
    }
}

/// `strata export`: every version of the documents (all, or those named), one commit each
/// in feed order, as a `git fast-import` stream on `out`. Versions that cannot be read are
/// skipped (the salvage path) and named in the command's error; the command then exits 1.
pub(crate) fn run(args: &ExportArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let wanted: Vec<DocId> = args
        .docs
        .iter()
        .map(|d| crate::spec::parse_doc(d, "export"))
        .collect::<Result<_, _>>()?;
    for doc in &wanted {
        if store.history(doc)?.is_empty() {
            return Err(CliError::NotFound(format!("no document '{doc}'")));
        }
    }
    let mut skipped: Vec<String> = Vec::new();
    let mut mark = 0u64;
    let mut exported = 0u64;
    let branch = &args.branch;
    for entry in store.feed(1) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                skipped.push(format!("the change feed from here on: {e}"));
                break;
            }
        };
        let doc = &entry.doc;
        if !wanted.is_empty() && !wanted.contains(doc) {
            continue;
        }
        let rec = &entry.record;
        if !git_path_ok(doc.as_str()) {
            skipped.push(format!("{doc}@{}: the key is not a git path", rec.version));
            continue;
        }
        let change = if rec.is_deletion() {
            format!("D {}\n", quote(doc.as_str()))
        } else {
            match store.get(doc, At::Version(rec.version)) {
                Ok(Some(content)) => {
                    mark += 1;
                    write!(out, "blob\nmark :{mark}\ndata {}\n", content.len())?;
                    out.write_all(&content)?;
                    out.write_all(b"\n")?;
                    format!("M 100644 :{mark} {}\n", quote(doc.as_str()))
                }
                Ok(None) => {
                    skipped.push(format!("{doc}@{}: no content", rec.version));
                    continue;
                }
                Err(e) => {
                    skipped.push(format!("{doc}@{}: {e}", rec.version));
                    continue;
                }
            }
        };
        let mut message = rec.meta.message.clone().unwrap_or_default();
        let extra: Vec<String> = rec
            .meta
            .extra
            .iter()
            .filter(|(k, _)| k != strata_core::DELETED_KEY)
            .map(|(k, v)| format!("{EXTRA_TRAILER}{k}={v}"))
            .collect();
        if !extra.is_empty() {
            message.push_str("\n\n");
            message.push_str(&extra.join("\n"));
        }
        let ident = git_ident(rec.meta.author.as_deref());
        let when = rec.created_at_ms / 1000;
        write!(
            out,
            "commit refs/heads/{branch}\nauthor {ident} {when} +0000\ncommitter {ident} {when} +0000\ndata {}\n{message}\n{change}\n",
            message.len()
        )?;
        exported += 1;
    }
    out.write_all(b"done\n")?;
    out.flush()?;
    if !skipped.is_empty() {
        // One line, the same through a server (whose standard error the client never sees):
        // the first few skipped, and the count.
        let mut list: Vec<String> = skipped.iter().take(SKIPPED_SHOWN).cloned().collect();
        if skipped.len() > SKIPPED_SHOWN {
            list.push(format!("and {} more", skipped.len() - SKIPPED_SHOWN));
        }
        return Err(CliError::Problems(format!(
            "export skipped {}; exported {exported} versions and skipped {} ('strata verify' \
             names every damaged version)",
            list.join("; "),
            skipped.len()
        )));
    }
    Ok(())
}

/// How many skipped versions the error of a salvaging export names.
const SKIPPED_SHOWN: usize = 10;

/// One commit's worth of a `git fast-export` stream, as the import applies it.
struct Commit {
    author: Option<String>,
    time_ms: Option<u64>,
    message: String,
    /// (path, content) or (path, None) for a deletion, in stream order.
    changes: Vec<(String, Option<Vec<u8>>)>,
}

/// `strata import --git-stream`: reads `git fast-export` output (blobs by mark or inline,
/// commits with `M`/`D`/`deleteall` changes) and stores every file path as a document and
/// every commit that touched it as a version, with the commit's author, time and message;
/// `Strata-Meta: key=value` lines that `strata export` appended become metadata again. The
/// whole stream is read and checked before the store is opened.
pub(crate) fn import_git_stream(
    input: &mut dyn BufRead,
    raise_times: bool,
    open: impl FnOnce() -> Result<Store, CliError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let commits = parse_stream(input)?;
    if !raise_times {
        // Times within a document never go back: refused before the store is touched.
        let mut newest: HashMap<&str, u64> = HashMap::new();
        for (i, commit) in commits.iter().enumerate() {
            let Some(t) = commit.time_ms else { continue };
            for (path, _) in &commit.changes {
                let last = newest.entry(path.as_str()).or_insert(t);
                if t < *last {
                    return Err(CliError::failed(format!(
                        "'{path}': commit {} of the stream is dated {}, before an earlier commit \
                         of it ({}): times within a document never go back; pass --raise-times \
                         to give such a version the previous one's time (its own date is kept \
                         as metadata 'date')",
                        i + 1,
                        crate::time::rfc3339(t),
                        crate::time::rfc3339(*last)
                    )));
                }
                *last = t;
            }
        }
    }
    let store = open()?;
    let mut newest: HashMap<DocId, u64> = HashMap::new();
    let mut versions = 0usize;
    let mut deletions = 0usize;
    // A batch is committed before the next one starts: a commit may fold loose objects,
    // which waits for every open batch of the store.
    let mut batch: Option<strata_storage::WriteBatch<'_>> = None;
    let mut pending = 0usize;
    for commit in commits {
        for (path, content) in commit.changes {
            let doc = DocId::new(path.as_str()).map_err(|e| {
                CliError::failed(format!("git path '{path}' is not a document key: {e}"))
            })?;
            let Some(content) = content else {
                // Deletions are recorded once the batch so far is in.
                if let Some(open) = batch.take()
                    && pending > 0
                {
                    open.commit()?;
                }
                pending = 0;
                if store.delete(&doc)?.is_some() {
                    deletions += 1;
                }
                continue;
            };
            let mut options = PutOptions::default();
            options.meta.author.clone_from(&commit.author);
            let (message, extra) = split_trailers(&commit.message);
            options.meta.message = (!message.is_empty()).then_some(message);
            options.meta.extra = extra;
            if let Some(t) = commit.time_ms {
                let floor = match newest.get(&doc) {
                    Some(t) => *t,
                    None => store
                        .record(&doc, At::Latest)?
                        .map_or(0, |r| r.created_at_ms),
                };
                let time = t.max(floor);
                if time > t && !options.meta.extra.iter().any(|(k, _)| k == "date") {
                    options
                        .meta
                        .extra
                        .push(("date".to_owned(), crate::time::rfc3339(t)));
                }
                newest.insert(doc.clone(), time);
                options.time_ms = Some(time);
            }
            batch
                .get_or_insert_with(|| store.batch())
                .put(&doc, &content, options)?;
            pending += 1;
            versions += 1;
            if pending >= 1024 {
                batch.take().expect("a batch is open").commit()?;
                pending = 0;
            }
        }
    }
    if let Some(last) = batch.take() {
        last.commit()?;
    }
    store.settle_records()?;
    writeln!(
        out,
        "imported {} and {} from the git stream",
        super::plural(versions, "version"),
        super::plural(deletions, "deletion")
    )?;
    Ok(())
}

/// Splits `Strata-Meta: key=value` lines off the end of a message.
fn split_trailers(message: &str) -> (String, Vec<(String, String)>) {
    let lines: Vec<&str> = message.lines().collect();
    let keep = lines
        .iter()
        .rposition(|l| !l.starts_with(EXTRA_TRAILER))
        .map_or(0, |i| i + 1);
    let extra = lines[keep..]
        .iter()
        .filter_map(|l| l[EXTRA_TRAILER.len()..].split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<Vec<_>>();
    if extra.is_empty() {
        return (message.to_owned(), Vec::new());
    }
    let body = lines[..keep].join("\n");
    (body.trim_end_matches('\n').to_owned(), extra)
}

fn parse_stream(input: &mut dyn BufRead) -> Result<Vec<Commit>, CliError> {
    let mut line_no = 0usize;
    let bad = |line_no: usize, what: String| {
        CliError::failed(format!("git stream line {line_no}: {what}"))
    };
    let mut blobs: HashMap<String, Vec<u8>> = HashMap::new();
    let mut commits = Vec::new();
    let mut current: Option<Commit> = None;
    let mut pending_blob_mark: Option<Option<String>> = None;
    let mut pending_inline: Option<String> = None;
    let mut in_commit_header = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| bad(line_no + 1, format!("cannot read standard input: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches('\n')
            .to_owned();
        if let Some(count) = text.strip_prefix("data ") {
            let count: usize = count
                .parse()
                .map_err(|_| bad(line_no, format!("'{text}': only counted data is supported")))?;
            let mut data = vec![0u8; count];
            input
                .read_exact(&mut data)
                .map_err(|e| bad(line_no, format!("the data ends early: {e}")))?;
            line_no += data.iter().filter(|&&b| b == b'\n').count();
            if let Some(mark) = pending_blob_mark.take() {
                if let Some(m) = mark {
                    blobs.insert(m, data);
                }
            } else if let Some(path) = pending_inline.take() {
                if let Some(c) = current.as_mut() {
                    c.changes.push((path, Some(data)));
                }
            } else if in_commit_header {
                if let Some(c) = current.as_mut() {
                    c.message = String::from_utf8_lossy(&data).into_owned();
                }
                in_commit_header = false;
            }
            continue;
        }
        if text == "blob" {
            pending_blob_mark = Some(None);
            continue;
        }
        if let Some(m) = text.strip_prefix("mark ") {
            if let Some(slot) = pending_blob_mark.as_mut() {
                *slot = Some(m.to_owned());
            }
            continue;
        }
        if text.starts_with("commit ") {
            if let Some(c) = current.take() {
                commits.push(c);
            }
            current = Some(Commit {
                author: None,
                time_ms: None,
                message: String::new(),
                changes: Vec::new(),
            });
            in_commit_header = true;
            continue;
        }
        if let Some(who) = text.strip_prefix("author ").or_else(|| {
            text.strip_prefix("committer ")
                .filter(|_| current.as_ref().is_some_and(|c| c.author.is_none()))
        }) {
            // `Name <email> seconds zone`
            let mut parts = who.rsplitn(3, ' ');
            let (_zone, secs, ident) = (parts.next(), parts.next(), parts.next());
            if let Some(c) = current.as_mut() {
                let ident = ident.unwrap_or("").trim();
                let name = match ident.strip_suffix("<>") {
                    // `strata export` writes a version without an author as `strata <>`.
                    Some(n) if n.trim() == "strata" => String::new(),
                    Some(n) => n.trim().to_owned(),
                    None => ident.to_owned(),
                };
                c.author = (!name.is_empty()).then_some(name);
                c.time_ms = secs.and_then(|s| s.parse::<u64>().ok()).map(|s| s * 1000);
            }
            continue;
        }
        if let Some(rest) = text.strip_prefix("M ") {
            let mut parts = rest.splitn(3, ' ');
            let (mode, dataref, path) = (parts.next(), parts.next(), parts.next());
            let (Some(mode), Some(dataref), Some(path)) = (mode, dataref, path) else {
                return Err(bad(line_no, format!("'{text}' is not a file change")));
            };
            let path = unquote(path).map_err(|e| bad(line_no, e))?;
            if mode == "160000" {
                continue; // a submodule: no content here
            }
            if dataref == "inline" {
                pending_inline = Some(path);
                continue;
            }
            let content = blobs.get(dataref).cloned().ok_or_else(|| {
                bad(
                    line_no,
                    format!("'{dataref}' names no blob of the stream (export it with its blobs)"),
                )
            })?;
            if let Some(c) = current.as_mut() {
                c.changes.push((path, Some(content)));
            }
            continue;
        }
        if let Some(path) = text.strip_prefix("D ") {
            let path = unquote(path).map_err(|e| bad(line_no, e))?;
            if let Some(c) = current.as_mut() {
                c.changes.push((path, None));
            }
            continue;
        }
        if text.starts_with("R ") || text.starts_with("C ") {
            return Err(bad(
                line_no,
                "renames and copies are not supported: export without -M/-C".into(),
            ));
        }
        // from, merge, reset, tag, progress, feature, option, done, deleteall, blank lines:
        // nothing to store.
    }
    if let Some(c) = current.take() {
        commits.push(c);
    }
    Ok(commits)
}

/// A path as fast-export writes it: bare, or C-quoted.
fn unquote(path: &str) -> Result<String, String> {
    let Some(inner) = path.strip_prefix('"') else {
        return Ok(path.to_owned());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or_else(|| format!("unterminated quoted path {path}"))?;
    let mut bytes = Vec::with_capacity(inner.len());
    let mut it = inner.bytes().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match it.next() {
            Some(b'n') => bytes.push(b'\n'),
            Some(b't') => bytes.push(b'\t'),
            Some(b'"') => bytes.push(b'"'),
            Some(b'\\') => bytes.push(b'\\'),
            Some(d @ b'0'..=b'3') => {
                let mut v = u32::from(d - b'0');
                for _ in 0..2 {
                    match it.next() {
                        Some(o @ b'0'..=b'7') => v = v * 8 + u32::from(o - b'0'),
                        _ => return Err(format!("bad octal escape in {path}")),
                    }
                }
                bytes.push(v as u8);
            }
            _ => return Err(format!("bad escape in {path}")),
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("path {path} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_and_trailers() {
        assert_eq!(super::unquote("a b/c").unwrap(), "a b/c");
        assert_eq!(
            super::unquote("\"caf\\303\\251 \\\"x\\\"\"").unwrap(),
            "café \"x\""
        );
        assert!(super::unquote("\"open").is_err());
        assert_eq!(super::quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert!(super::git_path_ok("docs/a.md") && !super::git_path_ok("/abs"));
        assert!(
            !super::git_path_ok("a//b")
                && !super::git_path_ok("x/../y")
                && !super::git_path_ok(".git/x")
        );
        let (m, extra) = super::split_trailers("fix\n\nStrata-Meta: date=2020-01-01");
        assert_eq!(
            (m.as_str(), extra),
            ("fix", vec![("date".to_owned(), "2020-01-01".to_owned())])
        );
        assert_eq!(super::split_trailers("plain").0, "plain");
        assert_eq!(super::git_ident(Some("Ann <a@x>")), "Ann <a@x>");
        assert_eq!(super::git_ident(Some("ann")), "ann <>");
    }
}
