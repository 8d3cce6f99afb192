//! The web view of `strata serve`: documents, a document's timeline, any version, a diff
//! between any two versions (unified or side by side, changed words marked, JSON changes by
//! path) and the live change feed. Pages are HTML rendered here; the only script is the
//! feed page's few lines of `EventSource`, so nothing is built on the user's side. Every
//! page is a plain GET with its state in the query, so its URL can be shared.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use strata_core::{DocId, VersionNo};
use strata_diff::{DiffOptions, DocDiff, LineKind, render};
use strata_storage::{At, Store};

use super::serve::{ApiError, App};

/// Documents per page of the list.
const DOCS_PER_PAGE: usize = 100;
/// Versions per page of a timeline.
const VERSIONS_PER_PAGE: usize = 100;
/// The largest content shown inline; larger ones link to their raw bytes.
const SHOW_MAX: usize = 2 << 20;

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}
header{background:#24292f;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:1em 1.2em}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #d0d7de;vertical-align:top}
th{background:#f6f8fa}
pre,code,.diff td.t{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre.content{background:#f6f8fa;padding:.8em;overflow:auto;border:1px solid #d0d7de}
.muted{color:#57606a}
.deleted{color:#cf222e}
.diff{table-layout:fixed}
.diff td{border:0;padding:0 .5em;white-space:pre-wrap;word-break:break-all}
.diff col.num{width:3.5em}
.diff td.n{color:#57606a;text-align:right;user-select:none}
.diff tr.add td.t,.diff td.add{background:#e6ffec}
.diff tr.del td.t,.diff td.del{background:#ffebe9}
.diff tr.hunk td{background:#ddf4ff;color:#57606a}
ins{background:#abf2bc;text-decoration:none}
del{background:#ff818266;text-decoration:none}
.changes li code{background:#f6f8fa}
nav.pages{margin:.8em 0}
form.inline{display:inline}
";

/// A page: the title, the body, the shared header.
fn page(title: &str, body: &str) -> Response {
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content='width=device-width,initial-scale=1'>\
         <title>{} · strata</title><style>{STYLE}</style></head><body>\
         <header><a href='/'>strata</a><a href='/' id=nav-docs>Documents</a>\
         <a href='/ui/feed' id=nav-feed>Live feed</a></header><main>{body}</main></body></html>",
        esc(title)
    );
    Html(html).into_response()
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
fn enc(text: &str) -> String {
    super::serve::percent_encode_except(text, b"-._~/")
}

/// An error as a page, with its status.
fn error_page(e: ApiError) -> Response {
    let mut response = page(
        "error",
        &format!(
            "<h1>{}</h1><p class=deleted id=error>{}</p><p><a href='/'>All documents</a></p>",
            e.status.as_u16(),
            esc(&e.message)
        ),
    );
    *response.status_mut() = e.status;
    response
}

/// Runs a page's work on the blocking pool; errors become error pages.
async fn render_page(
    app: Arc<App>,
    work: impl FnOnce(&Store) -> Result<Response, ApiError> + Send + 'static,
) -> Response {
    let done = tokio::task::spawn_blocking(move || work(&app.store)).await;
    match done {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => error_page(e),
        Err(e) => error_page(ApiError::internal(format!("the page failed: {e}"))),
    }
}

fn doc_of(q: &HashMap<String, String>) -> Result<DocId, ApiError> {
    let key = q
        .get("key")
        .ok_or_else(|| ApiError::bad_request("the page needs ?key=DOCUMENT"))?;
    Ok(crate::spec::doc(key)?)
}

fn version_of(q: &HashMap<String, String>, name: &str) -> Result<Option<VersionNo>, ApiError> {
    q.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(VersionNo)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("'{name}={v}' is not a version number"))
                })
        })
        .transpose()
}

fn time(ms: u64) -> String {
    crate::time::rfc3339(ms)
}

/// `/`: the documents, by key prefix, a page at a time.
pub(crate) async fn documents(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    render_page(app, move |store| {
        let prefix = q.get("prefix").cloned().unwrap_or_default();
        let after = q.get("after").cloned().filter(|a| !a.is_empty());
        let (page_docs, next) =
            super::serve::docs_page(store, &prefix, after.as_deref(), DOCS_PER_PAGE, true)?;
        let mut rows = String::new();
        for (entry, rec) in &page_docs {
            let key = entry.doc.as_str();
            let (size, when) = rec.as_ref().map_or((String::new(), String::new()), |r| {
                (r.size.to_string(), time(r.created_at_ms))
            });
            let state = if entry.deleted { "<span class=deleted>deleted</span>" } else { "" };
            let _ = write!(
                rows,
                "<tr><td><a class=doc href='/ui/doc?key={}'>{}</a></td><td>{}</td><td>{size}</td><td>{when}</td><td>{state}</td></tr>",
                enc(key),
                esc(key),
                entry.latest
            );
        }
        let mut body = format!(
            "<h1>Documents</h1><form method=get action='/'><input name=prefix id=prefix \
             placeholder='key prefix' value='{}'> <button id=search>Search</button></form>",
            esc(&prefix)
        );
        if page_docs.is_empty() {
            body.push_str("<p class=muted id=empty>No documents match.</p>");
        } else {
            let _ = write!(
                body,
                "<table id=documents><tr><th>document</th><th>latest</th><th>bytes</th><th>time</th><th></th></tr>{rows}</table>"
            );
        }
        if let Some(n) = next {
            let _ = write!(
                body,
                "<nav class=pages><a id=next href='/?prefix={}&amp;after={}'>Next page</a></nav>",
                enc(&prefix),
                enc(&n)
            );
        }
        Ok(page("Documents", &body))
    })
    .await
}

/// `/ui/doc?key=K&before=N`: a document's timeline, newest first, a page at a time, with a
/// form that picks two versions to compare.
pub(crate) async fn timeline(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    render_page(app, move |store| {
        let doc = doc_of(&q)?;
        let before = version_of(&q, "before")?;
        let history = store.history(&doc)?;
        if history.is_empty() {
            return Err(ApiError::not_found(format!("no document '{doc}'")));
        }
        let newest_first = history.iter().rev().filter(|r| before.is_none_or(|b| r.version < b));
        let mut rows = String::new();
        let mut last = None;
        let mut more = false;
        for (i, rec) in newest_first.enumerate() {
            if i == VERSIONS_PER_PAGE {
                more = true;
                break;
            }
            let v = rec.version.get();
            let key = enc(doc.as_str());
            let stored = if rec.is_deletion() {
                "<span class=deleted>deleted</span>".to_owned()
            } else {
                esc(&super::storage_note(store, &rec.hash)?)
            };
            let prev = if v > 1 {
                format!("<a href='/ui/diff?key={key}&amp;a={}&amp;b={v}'>diff</a>", v - 1)
            } else {
                String::new()
            };
            let _ = write!(
                rows,
                "<tr class=version><td><input type=radio name=a value={v}> <input type=radio name=b value={v}></td>\
                 <td><a href='/ui/version?key={key}&amp;v={v}'>{v}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{stored}</td><td>{prev}</td></tr>",
                time(rec.created_at_ms),
                esc(rec.meta.author.as_deref().unwrap_or("")),
                esc(rec.meta.message.as_deref().unwrap_or("")),
                rec.size,
            );
            last = Some(v);
        }
        let key = enc(doc.as_str());
        let mut body = format!(
            "<h1 id=title>{}</h1><p class=muted>{} versions · <a href='/v1/docs/{}'>latest, raw</a></p>\
             <form method=get action='/ui/diff' id=pick><input type=hidden name=key value='{}'>\
             <p>Pick an old (left) and a new (right) version, then <button id=compare>Compare</button> \
             <select name=view><option value=unified>unified</option><option value=split>side by side</option></select></p>\
             <table id=timeline><tr><th>old new</th><th>version</th><th>time</th><th>author</th><th>message</th><th>bytes</th><th>stored</th><th></th></tr>{rows}</table></form>",
            esc(doc.as_str()),
            history.len(),
            key,
            esc(doc.as_str()),
        );
        if let (true, Some(v)) = (more, last) {
            let _ = write!(
                body,
                "<nav class=pages><a id=older href='/ui/doc?key={key}&amp;before={v}'>Older versions</a></nav>"
            );
        }
        Ok(page(doc.as_str(), &body))
    })
    .await
}

/// `/ui/version?key=K&v=N`: one version's metadata and content.
pub(crate) async fn version(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    render_page(app, move |store| {
        let doc = doc_of(&q)?;
        let at = version_of(&q, "v")?.map_or(At::Latest, At::Version);
        let Some((rec, content)) = store.get_with_record(&doc, at)? else {
            return Err(super::get::missing(store, &doc, at).into());
        };
        let v = rec.version.get();
        let key = enc(doc.as_str());
        let mut body = format!(
            "<h1><a href='/ui/doc?key={key}'>{}</a> @ {v}</h1><p class=muted>{} · {} bytes · id <code>{}</code>{}{}</p><p>",
            esc(doc.as_str()),
            time(rec.created_at_ms),
            rec.size,
            rec.hash,
            rec.meta.author.as_deref().map(|a| format!(" · {}", esc(a))).unwrap_or_default(),
            rec.meta.message.as_deref().map(|m| format!(" · {}", esc(m))).unwrap_or_default(),
        );
        if v > 1 {
            let _ = write!(
                body,
                "<a id=prev href='/ui/version?key={key}&amp;v={}'>previous</a> · <a id=diff-prev href='/ui/diff?key={key}&amp;a={}&amp;b={v}'>diff with previous</a> · ",
                v - 1,
                v - 1
            );
        }
        if store.record(&doc, At::Version(VersionNo(v + 1)))?.is_some() {
            let _ = write!(body, "<a id=next href='/ui/version?key={key}&amp;v={}'>next</a> · ", v + 1);
        }
        let _ = write!(body, "<a href='/v1/docs/{key}?at={v}'>raw</a></p>");
        match std::str::from_utf8(&content) {
            Ok(text) if content.len() <= SHOW_MAX => {
                let _ = write!(body, "<pre class=content id=content>{}</pre>", esc(text));
            }
            _ => {
                let _ = write!(
                    body,
                    "<p class=muted id=content>{} bytes that are not shown here (binary, or over 2 MiB): \
                     <a href='/v1/docs/{key}?at={v}'>download</a></p>",
                    content.len()
                );
            }
        }
        Ok(page(&format!("{doc}@{v}"), &body))
    })
    .await
}

/// `/ui/diff?a=SPEC&b=SPEC&view=unified|split`, or `?key=K&a=N&b=M` (two versions of one
/// document, as the timeline's form sends them).
pub(crate) async fn diff(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    render_page(app, move |store| {
        let side = |name: &str| -> Result<String, ApiError> {
            let value = q
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ApiError::bad_request(format!("pick two versions to compare (no '{name}')")))?;
            Ok(match q.get("key") {
                Some(key) => format!("{key}@{value}"),
                None => value.clone(),
            })
        };
        let (a, b) = (side("a")?, side("b")?);
        let split = q.get("view").is_some_and(|v| v == "split");
        let (old_doc, old_at) = crate::spec::resolve(store, &a)?;
        let (new_doc, new_at) = crate::spec::resolve(store, &b)?;
        let read = |doc: &DocId, at| -> Result<Vec<u8>, ApiError> {
            store.get(doc, at)?.ok_or_else(|| super::get::missing(store, doc, at).into())
        };
        let (old, new) = (read(&old_doc, old_at)?, read(&new_doc, new_at)?);
        let diff = strata_diff::compare(&old, &new, &DiffOptions::default());
        let other_view = if split { "unified" } else { "split" };
        let mut body = format!(
            "<h1>{} → {}</h1><p><a id=switch href='/ui/diff?a={}&amp;b={}&amp;view={other_view}'>{}</a> · \
             <a href='/v1/diff?a={}&amp;b={}'>as text</a> · {}</p>",
            esc(&a),
            esc(&b),
            enc(&a),
            enc(&b),
            if split { "unified view" } else { "side by side" },
            enc(&a),
            enc(&b),
            esc(&render::stat_line(&diff)),
        );
        if let DocDiff::Json(j) = &diff {
            let summary = j.structure.summary();
            let _ = write!(body, "<h2>JSON changes ({})</h2><ul class=changes id=json-changes>", summary.len());
            for line in summary {
                let _ = write!(body, "<li><code>{}</code></li>", esc(&line));
            }
            body.push_str("</ul>");
        }
        match &diff {
            DocDiff::Same => body.push_str("<p id=same>The two versions are identical.</p>"),
            DocDiff::Binary(s) => {
                let _ = write!(
                    body,
                    "<p id=binary>Binary content: {} → {} bytes, {} bytes differ.</p>",
                    s.old_len, s.new_len, s.differing_bytes
                );
            }
            DocDiff::Text(t) | DocDiff::Json(strata_diff::JsonDocDiff { text: t, .. }) => {
                body.push_str(&if split { split_table(t) } else { unified_table(t) });
            }
        }
        Ok(page(&format!("{a} → {b}"), &body))
    })
    .await
}

/// A run of changed lines: removed then added, paired line by line for word marks.
fn changed_run(lines: &[strata_diff::Line]) -> (Vec<&str>, Vec<&str>) {
    let removed = lines
        .iter()
        .filter(|l| l.kind == LineKind::Removed)
        .map(|l| l.text.as_str())
        .collect();
    let added = lines
        .iter()
        .filter(|l| l.kind == LineKind::Added)
        .map(|l| l.text.as_str())
        .collect();
    (removed, added)
}

/// One side of a changed line with its changed words in `<del>` or `<ins>`.
fn marked(pieces: &[render::WordPiece<'_>], tag: &str) -> String {
    let mut out = String::new();
    let mut open = false;
    for p in pieces {
        if p.changed != open {
            out.push_str(if p.changed { "<" } else { "</" });
            out.push_str(tag);
            out.push('>');
            open = p.changed;
        }
        out.push_str(&esc(p.text));
    }
    if open {
        let _ = write!(out, "</{tag}>");
    }
    out
}

/// The lines of each hunk, walked as context lines and runs of changes: calls `context`
/// with (old number, new number, text) and `run` with the run's removed and added lines
/// (each with its number and its text, changed words marked when the run pairs lines).
fn walk_hunks(
    t: &strata_diff::TextDiff,
    mut hunk: impl FnMut(&str),
    mut context: impl FnMut(u64, u64, &str),
    mut run: impl FnMut(Vec<(u64, String)>, Vec<(u64, String)>),
) {
    for h in &t.hunks {
        hunk(&render::hunk_header(h));
        let (mut o, mut n) = (h.old_start + 1, h.new_start + 1);
        let mut i = 0;
        while i < h.lines.len() {
            if h.lines[i].kind == LineKind::Context {
                context(o, n, &h.lines[i].text);
                o += 1;
                n += 1;
                i += 1;
                continue;
            }
            let start = i;
            while i < h.lines.len() && h.lines[i].kind != LineKind::Context {
                i += 1;
            }
            let (removed, added) = changed_run(&h.lines[start..i]);
            let mut left = Vec::new();
            let mut right = Vec::new();
            for k in 0..removed.len().max(added.len()) {
                match (removed.get(k), added.get(k)) {
                    (Some(r), Some(a)) => {
                        let (pr, pa) = render::word_pieces(r, a);
                        left.push((o, marked(&pr, "del")));
                        right.push((n, marked(&pa, "ins")));
                        o += 1;
                        n += 1;
                    }
                    (Some(r), None) => {
                        left.push((o, esc(r)));
                        o += 1;
                    }
                    (None, Some(a)) => {
                        right.push((n, esc(a)));
                        n += 1;
                    }
                    (None, None) => {}
                }
            }
            run(left, right);
        }
    }
}

fn unified_table(t: &strata_diff::TextDiff) -> String {
    let out = std::cell::RefCell::new(String::from(
        "<table class=diff id=diff><colgroup><col class=num><col class=num><col></colgroup>",
    ));
    walk_hunks(
        t,
        |header| {
            let _ = write!(
                out.borrow_mut(),
                "<tr class=hunk><td class=n></td><td class=n></td><td class=t>{}</td></tr>",
                esc(header)
            );
        },
        |o, n, text| {
            let _ = write!(
                out.borrow_mut(),
                "<tr><td class=n>{o}</td><td class=n>{n}</td><td class=t> {}</td></tr>",
                esc(text)
            );
        },
        |left, right| {
            let mut out = out.borrow_mut();
            for (o, html) in left {
                let _ = write!(
                    out,
                    "<tr class=del><td class=n>{o}</td><td class=n></td><td class=t>-{html}</td></tr>"
                );
            }
            for (n, html) in right {
                let _ = write!(
                    out,
                    "<tr class=add><td class=n></td><td class=n>{n}</td><td class=t>+{html}</td></tr>"
                );
            }
        },
    );
    let mut out = out.into_inner();
    out.push_str("</table>");
    out
}

fn split_table(t: &strata_diff::TextDiff) -> String {
    let out = std::cell::RefCell::new(String::from(
        "<table class=diff id=diff><colgroup><col class=num><col><col class=num><col></colgroup>",
    ));
    walk_hunks(
        t,
        |header| {
            let _ = write!(
                out.borrow_mut(),
                "<tr class=hunk><td class=n></td><td class=t colspan=3>{}</td></tr>",
                esc(header)
            );
        },
        |o, n, text| {
            let text = esc(text);
            let _ = write!(
                out.borrow_mut(),
                "<tr><td class=n>{o}</td><td class=t>{text}</td><td class=n>{n}</td><td class=t>{text}</td></tr>"
            );
        },
        |left, right| {
            let mut out = out.borrow_mut();
            for k in 0..left.len().max(right.len()) {
                let cell = |side: Option<&(u64, String)>, class: &str| match side {
                    Some((num, html)) => {
                        format!("<td class=n>{num}</td><td class='t {class}'>{html}</td>")
                    }
                    None => "<td class=n></td><td class=t></td>".to_owned(),
                };
                let _ = write!(
                    out,
                    "<tr>{}{}</tr>",
                    cell(left.get(k), "del"),
                    cell(right.get(k), "add")
                );
            }
        },
    );
    let mut out = out.into_inner();
    out.push_str("</table>");
    out
}

/// `/ui/feed`: the latest 50 changes, then new ones as they come (Server-Sent Events).
pub(crate) async fn feed(State(app): State<Arc<App>>) -> Response {
    let durable = app.commits.durable_seq();
    render_page(app, move |store| {
        let from = durable.saturating_sub(49).max(1);
        let mut rows = String::new();
        for entry in store.feed(from) {
            let entry = entry?;
            if entry.seq > durable {
                break;
            }
            rows.insert_str(0, &feed_row(entry.seq, entry.doc.as_str(), entry.record.version.get(), entry.record.size, entry.record.is_deletion(), &time(entry.record.created_at_ms)));
        }
        let body = format!(
            "<h1>Live feed</h1><p class=muted id=status>Newest first; new versions appear as they are written.</p>\
             <table id=feed><tr><th>seq</th><th>document</th><th>version</th><th>bytes</th><th>time</th></tr><tbody id=rows>{rows}</tbody></table>\
             <script>\
             const rows=document.getElementById('rows');\
             const es=new EventSource('/v1/feed/stream?since={durable}');\
             const esc=s=>String(s).replace(/[&<>\"']/g,c=>'&#'+c.charCodeAt(0)+';');\
             es.addEventListener('change',ev=>{{const e=JSON.parse(ev.data);const k=encodeURIComponent(e.doc);\
             const tr=document.createElement('tr');tr.className='change';\
             tr.innerHTML='<td>'+e.seq+'</td><td><a href=\"/ui/doc?key='+k+'\">'+esc(e.doc)+'</a></td><td><a href=\"/ui/version?key='+k+'&v='+e.version+'\">'+e.version+'</a>'+(e.deleted?' <span class=deleted>deleted</span>':'')+'</td><td>'+e.size+'</td><td>'+esc(e.time)+'</td>';\
             rows.insertBefore(tr,rows.firstChild);}});\
             </script>"
        );
        Ok(page("Live feed", &body))
    })
    .await
}

fn feed_row(seq: u64, doc: &str, version: u64, size: u64, deleted: bool, when: &str) -> String {
    let key = enc(doc);
    format!(
        "<tr class=change><td>{seq}</td><td><a href='/ui/doc?key={key}'>{}</a></td><td><a href='/ui/version?key={key}&amp;v={version}'>{version}</a>{}</td><td>{size}</td><td>{when}</td></tr>",
        esc(doc),
        if deleted {
            " <span class=deleted>deleted</span>"
        } else {
            ""
        }
    )
}

/// A 404 page for paths outside the API and the view.
pub(crate) fn not_found() -> Response {
    error_page(ApiError::not_found(
        "no such page; the documents are at /, the API under /v1 (docs/http.md)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_query_values_encoded() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(enc("notes/a b&c=é"), "notes/a%20b%26c%3D%C3%A9");
    }

    #[test]
    fn changed_lines_pair_up_with_their_words_marked() {
        let diff = strata_diff::compare(
            b"keep\nalpha beta\nold only\n",
            b"keep\nalpha BETA\n",
            &DiffOptions::default(),
        );
        let html = unified_table(diff.text().unwrap());
        assert!(html.contains("-alpha <del>beta</del>"), "{html}");
        assert!(html.contains("+alpha <ins>BETA</ins>"), "{html}");
        assert!(html.contains("<td class=t>-old only</td>"), "{html}");
        let split = split_table(diff.text().unwrap());
        assert!(
            split.contains("<td class='t del'>alpha <del>beta</del></td>"),
            "{split}"
        );
        assert!(
            split.contains("<td class='t del'>old only</td><td class=n></td><td class=t></td>"),
            "{split}"
        );
    }
}
