//! `strata feed`: the change feed as JSON lines.

use std::io::Write;

use serde::Serialize;
use strata_storage::{At, FeedEntry, Store};

use crate::cli::{ConsumersArgs, FeedArgs, FeedWith};
use crate::error::CliError;

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    doc: &'a str,
    version: u64,
    id: String,
    size: u64,
    time: String,
    created_at_ms: u64,
    author: Option<&'a str>,
    message: Option<&'a str>,
    meta: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<serde_json::Value>,
}

/// How often `--follow` looks for new versions.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// A consumer's position is stored after this many entries (and whenever output pauses).
const COMMIT_EVERY: u64 = 256;

pub(crate) fn run(
    args: &FeedArgs,
    open: impl Fn() -> Result<Store, CliError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut out = std::io::BufWriter::new(out);
    let mut printed = 0u64;
    let mut store = open()?;
    // `last`: the last sequence number handled (printed or filtered out).
    let mut last = match &args.consumer {
        Some(name) => match store.consumer(name)? {
            Some(position) => position,
            None => {
                store.set_consumer(name, 0)?;
                0
            }
        },
        None => args.since,
    };
    let mut committed = last;
    loop {
        let from = last.checked_add(1).ok_or_else(|| {
            CliError::failed(format!("--since {last} is past any sequence number"))
        })?;
        for entry in store.feed(from) {
            if args.limit.is_some_and(|l| printed >= l) {
                break;
            }
            let entry = entry?;
            let wanted = args
                .doc
                .as_deref()
                .is_none_or(|p| entry.doc.as_str().starts_with(p));
            if wanted {
                write_entry(&store, &entry, args.with, &mut out)?;
                printed += 1;
            }
            last = entry.seq;
            if let Some(name) = &args.consumer
                && last - committed >= COMMIT_EVERY
            {
                // The lines are out before the position moves past them.
                out.flush()?;
                store.set_consumer(name, last)?;
                committed = last;
            }
        }
        out.flush()?;
        if let Some(name) = &args.consumer
            && last != committed
        {
            store.set_consumer(name, last)?;
            committed = last;
        }
        if !args.follow || args.limit.is_some_and(|l| printed >= l) {
            return Ok(());
        }
        if store.shared() {
            // Other processes write a shared store (NATS) while it is open: wait for a
            // commit, woken by the engine, instead of opening it again; the loop above then
            // prints what came.
            store
                .subscribe(last + 1)
                .next_timeout(std::time::Duration::from_secs(3600))?;
            continue;
        }
        // Let other processes write while waiting, then look again.
        drop(store);
        std::thread::sleep(FOLLOW_POLL);
        store = open()?;
    }
}

/// `strata consumers`: list, reset or remove durable feed consumers.
pub(crate) fn run_consumers(
    args: &ConsumersArgs,
    store: &Store,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if let Some(name) = &args.reset {
        store.set_consumer(name, args.to)?;
        writeln!(out, "consumer '{name}' is at {}", args.to)?;
        return Ok(());
    }
    if let Some(name) = &args.remove {
        if !store.remove_consumer(name)? {
            return Err(CliError::NotFound(format!("no consumer '{name}'")));
        }
        writeln!(out, "removed consumer '{name}'")?;
        return Ok(());
    }
    let last = store.last_seq()?;
    for (name, position) in store.consumers()? {
        let lag = last.saturating_sub(position);
        if args.json {
            super::write_json(
                out,
                &serde_json::json!({"name": name, "position": position, "lag": lag}),
            )?;
        } else {
            writeln!(out, "{name}  position {position}  lag {lag}")?;
        }
    }
    Ok(())
}

pub(crate) fn write_entry(
    store: &Store,
    entry: &FeedEntry,
    with: FeedWith,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let rec = &entry.record;
    let mut line = Line {
        seq: entry.seq,
        doc: entry.doc.as_str(),
        version: rec.version.get(),
        id: rec.hash.to_string(),
        size: rec.size,
        time: crate::time::rfc3339(rec.created_at_ms),
        created_at_ms: rec.created_at_ms,
        author: rec.meta.author.as_deref(),
        message: rec.meta.message.as_deref(),
        meta: rec
            .meta
            .extra
            .iter()
            .filter(|(k, _)| k != strata_core::DELETED_KEY)
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
        deleted: rec.is_deletion(),
        content: None,
        content_base64: None,
        diff: None,
    };
    let read = |at: At| -> Result<Option<Vec<u8>>, CliError> {
        store
            .get(&entry.doc, at)
            .map_err(|e| CliError::failed(format!("feed entry {}: {e}", entry.seq)))
    };
    let content = || -> Result<Vec<u8>, CliError> {
        read(At::Version(rec.version))?.ok_or_else(|| {
            CliError::failed(format!(
                "feed entry {} names {}@{}, which cannot be read",
                entry.seq, entry.doc, rec.version
            ))
        })
    };
    match with {
        // A deletion has no content: its line says `"deleted": true`.
        _ if rec.is_deletion() => {}
        FeedWith::None => {}
        FeedWith::Content => match String::from_utf8(content()?) {
            Ok(text) => line.content = Some(text),
            Err(e) => line.content_base64 = Some(base64(e.as_bytes())),
        },
        FeedWith::Diff => {
            let new = content()?;
            let old = match rec.version.get() {
                1 => None,
                v => read(At::Version(strata_core::VersionNo(v - 1)))?,
            };
            line.diff = Some(change(old.as_deref(), &new, entry));
        }
    }
    super::write_json(out, &line)
}

/// The change from `old` (none for a first version) to `new`: an RFC 6902 patch when both
/// are JSON, a unified diff when both are text, else a size summary.
fn change(old: Option<&[u8]>, new: &[u8], entry: &FeedEntry) -> serde_json::Value {
    use serde_json::json;
    let parse = strata_diff::compare::parse_json;
    match (old.map(parse), parse(new)) {
        (None, Ok(doc)) => {
            return json!({"kind": "json-patch", "patch": [{"op": "add", "path": "", "value": doc}]});
        }
        (Some(Ok(a)), Ok(b)) => {
            let patch = strata_diff::json::diff(&a, &b).patch;
            return json!({"kind": "json-patch", "patch": patch});
        }
        _ => {}
    }
    let old_bytes = old.unwrap_or_default();
    let diff = strata_diff::compare(old_bytes, new, &strata_diff::DiffOptions::default());
    match diff {
        strata_diff::DocDiff::Binary(_) => json!({
            "kind": "binary",
            "old_size": old.map(<[u8]>::len),
            "new_size": new.len(),
        }),
        strata_diff::DocDiff::Same => json!({"kind": "unified", "text": ""}),
        d => {
            let (a, b) = match old {
                Some(_) => (
                    format!("a/{}@{}", entry.doc, entry.record.version.get() - 1),
                    format!("b/{}@{}", entry.doc, entry.record.version),
                ),
                None => (
                    "/dev/null".to_owned(),
                    format!("b/{}@{}", entry.doc, entry.record.version),
                ),
            };
            let text = strata_diff::render::unified_bytes(
                &d,
                &a,
                &b,
                strata_diff::render::Style { color: false },
            );
            json!({"kind": "unified", "text": String::from_utf8_lossy(&text)})
        }
    }
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), coded);
        }
        assert_eq!(super::base64(&[0xff, 0xfe, 0x00]), "//4A");
    }
}
