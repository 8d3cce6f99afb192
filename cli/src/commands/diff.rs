//! `strata diff OLD NEW`.

use std::io::{IsTerminal, Write};

use strata_diff::{DiffOptions, render};
use strata_storage::Store;

use crate::cli::{DiffArgs, DiffFilesArgs, DiffOpts};
use crate::error::CliError;
use crate::spec;

pub(crate) fn run(args: &DiffArgs, store: &Store, out: &mut dyn Write) -> Result<(), CliError> {
    let (old_doc, old_at) = spec::resolve(store, &args.old)?;
    let (new_doc, new_at) = spec::resolve(store, &args.new)?;
    let read = |doc, at| -> Result<Vec<u8>, CliError> {
        store
            .get(doc, at)?
            .ok_or_else(|| super::get::missing(store, doc, at))
    };
    let old = read(&old_doc, old_at)?;
    let new = read(&new_doc, new_at)?;
    show(&args.opts, (&args.old, &args.new), &old, &new, out)
}

/// `strata diff-files OLD NEW`: the same comparison for two files outside any store.
pub(crate) fn run_files(args: &DiffFilesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if args.old == "-" && args.new == "-" {
        return Err(CliError::failed(
            "only one side of diff-files can be standard input ('-')",
        ));
    }
    let read = |p: &str| {
        if p == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))?;
            return Ok(buf);
        }
        std::fs::read(p).map_err(|e| CliError::failed(format!("cannot read '{p}': {e}")))
    };
    let (old, new) = (read(&args.old)?, read(&args.new)?);
    show(&args.opts, (&args.old, &args.new), &old, &new, out)
}

fn show(
    args: &DiffOpts,
    (old_name, new_name): (&str, &str),
    old: &[u8],
    new: &[u8],
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if args.format != "text" && (args.stat || args.word_diff) {
        let what = if args.stat { "--stat" } else { "--word-diff" };
        return Err(CliError::failed(format!(
            "{what} shows text and cannot be combined with --format {}; drop one of them",
            args.format
        )));
    }
    if args.format == "json-patch" {
        let parse = |bytes: &[u8], label: &str| {
            strata_diff::compare::parse_json(bytes).map_err(|e| {
                CliError::failed(format!(
                    "--format json-patch needs JSON on both sides: '{label}' is not JSON ({e})"
                ))
            })
        };
        let d = strata_diff::json::diff(&parse(old, old_name)?, &parse(new, new_name)?);
        return super::write_json(out, &d.patch);
    }
    let options = DiffOptions {
        context: args.context,
        ignore_whitespace: args.ignore_whitespace,
        json: args.format != "lines",
    };
    let diff = strata_diff::compare(old, new, &options);
    if args.format == "json" {
        return super::write_json(out, &diff);
    }
    let style = render::Style {
        color: use_color(&args.color),
    };
    // git's labels: `a/` and `b/` before the path, without a doubled slash for absolute ones.
    let (a, b) = (
        format!("a/{}", old_name.trim_start_matches('/')),
        format!("b/{}", new_name.trim_start_matches('/')),
    );
    // Identical versions print nothing, as diff and git do.
    if matches!(diff, strata_diff::DocDiff::Same) {
        return Ok(());
    }
    let text = if args.stat {
        render::stat(&diff, &stat_name(old_name, new_name)).into_bytes()
    } else if args.word_diff {
        render::word_diff(&diff, &a, &b, style).into_bytes()
    } else {
        render::unified_bytes(&diff, &a, &b, style)
    };
    out.write_all(&text)?;
    Ok(())
}

fn stat_name(old: &str, new: &str) -> String {
    let doc = |s: &str| {
        spec::parse(s)
            .map(|(d, _)| d.to_string())
            .unwrap_or_else(|_| s.to_owned())
    };
    let (a, b) = (doc(old), doc(new));
    if a == b { a } else { format!("{a} => {b}") }
}

fn use_color(choice: &str) -> bool {
    match choice {
        "always" => true,
        "never" => false,
        _ => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}
