//! `strata quickstart`: a guided first run on the default store.

use std::io::Write;

use strata_diff::{DiffOptions, render};
use strata_storage::{At, PutOptions, Store};

use crate::error::CliError;

const V1: &str = include_str!("quickstart/recipe-v1.md");
const V2: &str = include_str!("quickstart/recipe-v2.md");
const V3: &str = include_str!("quickstart/recipe-v3.md");

pub(crate) fn run(store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let doc = crate::spec::doc("quickstart/recipe.md")?;
    writeln!(
        out,
        "strata quickstart: storing 3 versions of '{doc}' in {}\n",
        store.path().display()
    )?;
    let mut first = None;
    for (content, msg) in [
        (V1, "first draft"),
        (V2, "more garlic, less salt"),
        (V3, "add serving notes"),
    ] {
        let rec = store.put_with(&doc, content.as_bytes(), PutOptions::default().message(msg))?;
        first.get_or_insert(rec.version);
        writeln!(
            out,
            "$ strata put {doc} -m '{msg}'\n{doc}@{} {}\n",
            rec.version, rec.hash
        )?;
    }
    writeln!(out, "$ strata log {doc}")?;
    for rec in store.history(&doc)? {
        writeln!(
            out,
            "{:>4}  {}  {:>5} B  {}  {}",
            rec.version,
            crate::time::rfc3339(rec.created_at_ms),
            rec.size,
            rec.hash.short(),
            rec.meta.message.as_deref().unwrap_or("")
        )?;
    }
    let v1 = first.expect("three versions were written");
    let (old, new) = (At::Version(v1), At::Latest);
    let diff = store
        .diff((&doc, old), (&doc, new), &DiffOptions::default())?
        .ok_or_else(|| CliError::failed("the versions just written are missing"))?;
    writeln!(out, "\n$ strata diff {doc}@{v1} {doc}")?;
    out.write_all(
        render::unified(&diff, &format!("a/{doc}@{v1}"), &format!("b/{doc}")).as_bytes(),
    )?;
    let report = store.verify()?;
    writeln!(
        out,
        "\n$ strata verify\nchecked {} versions, {} objects: {}",
        report.versions,
        report.objects,
        if report.is_clean() { "ok" } else { "PROBLEMS" }
    )?;
    writeln!(
        out,
        "\nNext: strata put <doc> <file>, strata get <doc>@<n>, strata --help"
    )?;
    Ok(())
}
