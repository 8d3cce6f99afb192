//! `strata log DOC`.

use std::io::Write;

use serde::Serialize;
use strata_storage::Store;

use crate::cli::LogArgs;
use crate::error::CliError;

#[derive(Serialize)]
struct LogEntry<'a> {
    version: u64,
    id: String,
    size: u64,
    time: String,
    created_at_ms: u64,
    seq: u64,
    stored: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    author: Option<&'a str>,
    message: Option<&'a str>,
}

pub(crate) fn run(args: &LogArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let doc = crate::spec::parse_doc(&args.doc, "log")?;
    let time = |flag: &str, t: &Option<String>| -> Result<Option<u64>, CliError> {
        t.as_deref()
            .map(|t| crate::time::parse(t).map_err(|e| CliError::failed(format!("{flag}: {e}"))))
            .transpose()
    };
    let since = time("--since", &args.since)?.unwrap_or(0);
    // A date alone for --until means the whole of that day.
    let until = time("--until", &args.until)?.map_or(u64::MAX, |t| {
        if args.until.as_deref().is_some_and(|u| u.len() == 10) {
            t + 86_400_000 - 1
        } else {
            t
        }
    });
    let history = store.history(&doc)?;
    if history.is_empty() {
        return Err(CliError::NotFound(format!("no document '{doc}'")));
    }
    let contains = |field: &Option<String>, want: &Option<String>| match want {
        None => true,
        Some(w) => field.as_deref().is_some_and(|f| f.contains(w.as_str())),
    };
    let shown = history
        .iter()
        .filter(|rec| {
            (since..=until).contains(&rec.created_at_ms)
                && contains(&rec.meta.author, &args.author)
                && contains(&rec.meta.message, &args.grep)
                && args.after.is_none_or(|a| rec.version.get() > a)
        })
        .take(args.limit.unwrap_or(usize::MAX));
    for rec in shown {
        let stored = if rec.is_deletion() {
            "deleted".to_owned()
        } else {
            super::storage_note(store, &rec.hash)?
        };
        let time = crate::time::rfc3339(rec.created_at_ms);
        if args.json {
            super::write_json(
                out,
                &LogEntry {
                    version: rec.version.get(),
                    id: rec.hash.to_string(),
                    size: rec.size,
                    time,
                    created_at_ms: rec.created_at_ms,
                    seq: rec.seq,
                    stored,
                    deleted: rec.is_deletion(),
                    author: rec.meta.author.as_deref(),
                    message: rec.meta.message.as_deref(),
                },
            )?;
        } else {
            let mut line = format!(
                "{:>4}  {time}  {:>9} B  {}  {stored}",
                rec.version, rec.size, rec.hash
            );
            if let Some(a) = &rec.meta.author {
                line.push_str(&format!("  <{a}>"));
            }
            let mut rest = "";
            if let Some(m) = &rec.meta.message {
                let (first, more) = m.split_once('\n').unwrap_or((m, ""));
                line.push_str(&format!("  {first}"));
                rest = more;
                let extra = more.lines().count();
                if extra > 0 && !args.full {
                    line.push_str(&format!(" [+{}]", super::plural(extra, "line")));
                }
            }
            writeln!(out, "{line}")?;
            if args.full {
                for l in rest.lines() {
                    writeln!(out, "      {l}")?;
                }
            }
        }
    }
    Ok(())
}
