//! End-to-end checks that the commands are wired up: the README's "done means" scenario,
//! errors and exit codes.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{ok, one_line_error, strata, strata_stdin};

/// Applies `patch` with GNU patch to a copy of `file` in `dir` and returns the result; `None`
/// when GNU patch is not installed. Fails the test when the patch does not apply.
fn gnu_patch(dir: &Path, file: &str, patch: &[u8]) -> Option<Vec<u8>> {
    Command::new("patch").arg("--version").output().ok()?;
    std::fs::write(dir.join("p.diff"), patch).unwrap();
    std::fs::copy(dir.join(file), dir.join("c.txt")).unwrap();
    let st = Command::new("patch")
        .current_dir(dir)
        .args(["-s", "c.txt", "p.diff"])
        .status()
        .unwrap();
    assert!(st.success(), "GNU patch did not apply the diff");
    Some(std::fs::read(dir.join("c.txt")).unwrap())
}

#[test]
fn put_get_log_diff_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = "alpha\nbeta\ngamma\ndelta\n";
    let b = "alpha\nBETA\ngamma\ndelta\nepsilon";
    std::fs::write(d.join("a.txt"), a).unwrap();
    std::fs::write(d.join("b.txt"), b).unwrap();
    let out = ok(&strata(d, &["put", "notes", "a.txt", "-m", "first"]));
    assert!(out.starts_with("notes@1 "), "{out}");
    ok(&strata(d, &["put", "notes", "b.txt"]));
    assert!(d.join(".strata").is_dir(), "default store is ./.strata");
    assert_eq!(strata(d, &["get", "notes@1"]).stdout, a.as_bytes());
    let latest = strata(d, &["get", "notes"]).stdout;
    assert_eq!(latest, b.as_bytes());
    let id = blake3::hash(&latest).to_hex().to_string();
    let log = ok(&strata(d, &["log", "notes"]));
    assert!(
        log.lines().nth(1).unwrap().contains(&id),
        "log shows the blake3 id: {log}"
    );
    assert!(log.lines().next().unwrap().contains("first"));
    let json = ok(&strata(d, &["log", "notes", "--json"]));
    assert!(
        json.lines()
            .nth(1)
            .unwrap()
            .contains(&format!("\"id\":\"{id}\""))
    );
    let patch = ok(&strata(d, &["diff", "notes@1", "notes@2"]));
    if let Some(patched) = gnu_patch(d, "a.txt", patch.as_bytes()) {
        assert_eq!(patched, b.as_bytes());
    }
    let stat = ok(&strata(d, &["diff", "notes@1", "notes", "--stat"]));
    assert_eq!(
        stat,
        " notes | 3 ++-\n 1 file changed, 2 insertions(+), 1 deletion(-)\n"
    );
    assert!(
        ok(&strata(
            d,
            &["diff", "notes@-1", "notes", "--format", "json"]
        ))
        .contains("\"kind\":\"text\"")
    );
    assert_eq!(ok(&strata(d, &["ls"])), "notes@2\n");
    assert!(ok(&strata(d, &["stats"])).contains("versions         2"));
    assert!(ok(&strata(d, &["verify"])).contains(": ok"));
    // stdin and -o
    ok(&strata_stdin(d, &["put", "other"], Some(b"from stdin")));
    ok(&strata(d, &["get", "other", "-o", "out.txt"]));
    assert_eq!(std::fs::read(d.join("out.txt")).unwrap(), b"from stdin");
    // get --batch: header, content, newline; missing specs are reported in line.
    let out = strata_stdin(d, &["get", "--batch"], Some(b"other\nnope@3\nnotes@1\n"));
    let id = blake3::hash(b"from stdin").to_hex().to_string();
    let want = format!(
        "{id} 10\nfrom stdin\nnope@3 missing\n{} {}\n{a}\n",
        blake3::hash(a.as_bytes()).to_hex(),
        a.len()
    );
    assert_eq!(String::from_utf8(ok(&out).into_bytes()).unwrap(), want);
}

#[test]
fn errors_are_one_line_with_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = one_line_error(&strata(d, &["get", "notes"]), 1);
    assert!(e.contains("no store"), "{e}");
    std::fs::write(d.join("a.txt"), "x\n").unwrap();
    ok(&strata(d, &["put", "notes", "a.txt"]));
    one_line_error(&strata(d, &["get", "notes@7"]), 1);
    one_line_error(&strata(d, &["get", "missing"]), 1);
    one_line_error(&strata(d, &["log", "missing"]), 1);
    let e = one_line_error(&strata(d, &["put", "notes", "nope.txt"]), 2);
    assert!(e.contains("nope.txt"), "{e}");
    let e = one_line_error(&strata(d, &["put", "notes", "a.txt", "--expect", "5"]), 2);
    assert!(
        e.contains("conflict") && e.contains("version 5") && e.contains("version 1"),
        "{e}"
    );
    one_line_error(&strata(d, &["put", "", "a.txt"]), 2);
    one_line_error(&strata(d, &["frobnicate"]), 2);
    one_line_error(&strata(d, &["get", "notes@0"]), 2);
    one_line_error(
        &strata(d, &["put", "--policy", "fast", "notes", "a.txt"]),
        2,
    );
    // Nothing was written by the failures.
    assert_eq!(ok(&strata(d, &["log", "notes"])).lines().count(), 1);
}

/// See: issue 12, item 10 (quickstart showed commands unlike the real ones and added versions
/// to the user's default store on every run).
#[test]
fn quickstart_runs_the_real_commands_in_a_store_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&strata(dir.path(), &["quickstart"]));
    assert!(out.contains("$ strata --store store put recipe.md recipe-v1.md -m 'first draft'"));
    assert!(out.contains("recipe.md@3 "), "{out}");
    assert!(out.contains("@@"), "{out}");
    assert!(out.contains(": ok"), "{out}");
    assert!(
        !dir.path().join(".strata").exists(),
        "quickstart used the default store"
    );
    let folder = out
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("strata quickstart: in "))
        .and_then(|l| l.split(" (store:").next())
        .unwrap()
        .to_owned();
    let log = ok(&strata(
        std::path::Path::new(&folder),
        &["--store", "store", "log", "recipe.md"],
    ));
    assert_eq!(log.lines().count(), 3, "{log}");
    // A second run starts afresh: still version 3 at most.
    let again = ok(&strata(dir.path(), &["quickstart"]));
    assert!(!again.contains("recipe.md@4"), "{again}");
    for run in [&out, &again] {
        let f = run.lines().next().unwrap();
        let f = f
            .trim_start_matches("strata quickstart: in ")
            .split(" (store:")
            .next()
            .unwrap();
        std::fs::remove_dir_all(f).unwrap();
    }
}

/// See: issue 12, item 10 (smaller things seen by a new user).
#[test]
fn small_things_a_new_user_sees() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No arguments: the usage, exit 2.
    let bare = strata(d, &[]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bare.stderr).contains("Usage:"));
    let bare = strata(d, &["json-patch"]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bare.stderr).contains("Usage:"));
    // STRATA_DIR= (empty) is unset: the default store.
    // A process of its own on the store: in the remote run, its server stops first.
    common::remote_suite::stop_all();
    let empty_env = Command::new(env!("CARGO_BIN_EXE_strata"))
        .current_dir(d)
        .env("STRATA_DIR", "")
        .args(["put", "n", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(empty_env.status.success(), "{empty_env:?}");
    assert!(d.join(".strata").exists());
    // "no document" for a document that does not exist, "no version" for a missing version.
    let e = one_line_error(&strata(d, &["get", "nodoc"]), 1);
    assert!(e.contains("no document 'nodoc'"), "{e}");
    let e = one_line_error(&strata(d, &["get", "n@5"]), 1);
    assert!(e.contains("no version 'n@5'"), "{e}");
    // Multi-line messages: first line and a count, --full for all of it.
    ok(&strata_stdin(
        d,
        &["put", "n", "-m", "subject\nbody one\nbody two"],
        Some(b"x\n"),
    ));
    let log = ok(&strata(d, &["log", "n"]));
    assert!(log.contains("subject [+2 lines]"), "{log}");
    let full = ok(&strata(d, &["log", "n", "--full"]));
    assert!(full.contains("      body two"), "{full}");
    // Control characters in an error are escaped: still one line.
    let e = one_line_error(&strata(d, &["get", "bad\x1b[31mkey\nx"]), 2);
    assert!(e.contains("\\u{1b}") && e.contains("\\n"), "{e}");
    // A read of a folder that is not a store says so, as a put does.
    std::fs::create_dir_all(d.join("other")).unwrap();
    std::fs::write(d.join("other/notes.txt"), "mine").unwrap();
    let e = one_line_error(&strata(d, &["--store", "other", "log", "n"]), 2);
    assert!(e.contains("not a strata store"), "{e}");
    // Plurals.
    assert!(ok(&strata(d, &["verify"])).contains("checked 1 document, 2 versions"));
}

/// Each command's help comes from its own description, with the arguments clap adds only for
/// the command being run (`cli::Lazy`); what a command's output means is in its long help.
#[test]
fn help_describes_each_command_and_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let short = ok(&strata(d, &["get", "-h"]));
    assert!(
        short.starts_with("Print a version of a document\n"),
        "{short}"
    );
    assert!(
        short.contains("--batch") && short.contains("--store <DIR>"),
        "{short}"
    );
    // Global options reach the subcommand's help.
    assert!(short.contains("--wait <SECONDS>"), "{short}");
    let log = ok(&strata(d, &["log", "--help"]));
    assert!(log.contains("\"delta/D N B\" a delta of N"), "{log}");
    assert!(log.contains("--since <TIME>"), "{log}");
    let export = ok(&strata(d, &["help", "export"]));
    assert!(export.contains("git fast-import"), "{export}");
    let retention = ok(&strata(d, &["retention", "--help"]));
    assert!(
        retention.contains("Without a flag it prints the rule"),
        "{retention}"
    );
    // The top-level help lists every command by its one-line description.
    let top = ok(&strata(d, &["--help"]));
    assert!(
        top.contains("prune       Drop a document's oldest versions"),
        "{top}"
    );
    // A subcommand's own argument rules still hold: `get` needs a spec or --batch.
    let e = strata(d, &["get"]);
    assert_eq!(e.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("<SPEC>"),
        "{e:?}"
    );
}

#[test]
fn policy_flag_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.txt"), "x\n").unwrap();
    ok(&strata(d, &["put", "--policy", "chain:5", "n", "a.txt"]));
    assert!(ok(&strata(d, &["stats"])).contains("chain:5"));
}

/// See: issue 12, item 2 (a read with --policy rewrote the store's policy for good).
#[test]
fn policy_on_a_read_command_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.txt"), "x\n").unwrap();
    ok(&strata(d, &["put", "n", "a.txt"]));
    let stats = ok(&strata(d, &["stats"]));
    for args in [
        &["--policy", "chain:3", "get", "n"][..],
        &["get", "--policy", "chain:3", "n"],
        &["log", "--policy=cost:9", "n"],
        &["--policy", "chain:3", "get", "missing"],
    ] {
        let e = one_line_error(&strata(d, args), 2);
        assert!(e.contains("put, import, repack"), "{e}");
    }
    assert_eq!(
        ok(&strata(d, &["stats"])),
        stats,
        "a refused read changed the store"
    );
    assert_eq!(ok(&strata(d, &["log", "n"])).lines().count(), 1);
}

/// See: issue 12, item 4 (bad input left a new, empty store behind).
#[test]
fn bad_input_creates_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    one_line_error(
        &strata(d, &["--store", "fresh", "put", "doc", "/no/such/file.txt"]),
        2,
    );
    assert!(!d.join("fresh").exists(), "a failed put created the store");
    std::fs::create_dir_all(d.join("hist/doc")).unwrap();
    std::fs::write(d.join("hist/doc/1.txt"), "one\n").unwrap();
    std::os::unix::fs::symlink("/no/such/target", d.join("hist/doc/2.txt")).unwrap();
    one_line_error(&strata(d, &["--store", "fresh", "import", "hist"]), 2);
    assert!(
        !d.join("fresh").exists(),
        "a failed import created the store"
    );
    let bad = strata_stdin(d, &["--store", "fresh", "import", "-"], Some(b"nonsense\n"));
    one_line_error(&bad, 2);
    assert!(
        !d.join("fresh").exists(),
        "a failed stream import created the store"
    );
    let empty = strata_stdin(d, &["--store", "fresh", "import", "-"], Some(b""));
    ok(&empty);
    assert!(
        !d.join("fresh").exists(),
        "an empty stream created the store"
    );
    // A folder with no version files imports nothing and creates nothing.
    std::fs::create_dir_all(d.join("nothing/empty-doc")).unwrap();
    let none = ok(&strata(d, &["--store", "fresh", "import", "nothing"]));
    assert!(none.contains("imported 0 versions"), "{none}");
    assert!(
        !d.join("fresh").exists(),
        "an empty import created the store"
    );
    // Reads of a missing store say so and create nothing.
    one_line_error(&strata(d, &["--store", "fresh", "log", "doc"]), 1);
    assert!(!d.join("fresh").exists());
}

/// See: issue 12, item 9 (`10` imported before `9`; skipped entries not mentioned; an empty
/// folder counted as a document; a dangling link silently dropped).
#[test]
fn import_orders_numbered_files_and_says_what_it_skips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 1..=10 {
        std::fs::create_dir_all(d.join("h/doc")).unwrap();
        std::fs::write(d.join(format!("h/doc/{i}")), format!("v{i}\n")).unwrap();
    }
    std::fs::create_dir_all(d.join("h/empty")).unwrap();
    std::fs::write(d.join("h/README.md"), "about\n").unwrap();
    let out = strata(d, &["import", "h"]);
    let text = ok(&out);
    assert!(text.contains("1 document"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("README.md") && err.contains("empty"), "{err}");
    assert_eq!(ok(&strata(d, &["get", "doc@9"])), "v9\n");
    assert_eq!(ok(&strata(d, &["get", "doc"])), "v10\n");
    std::os::unix::fs::symlink("/no/such/target", d.join("h/doc/11")).unwrap();
    let e = one_line_error(&strata(d, &["--store", "other", "import", "h"]), 2);
    assert!(e.contains("link"), "{e}");
}

/// See: issue 12, item 5 (`put x@1` made a document that `get x@1` could not read; a
/// malformed version was "not found" in one place and an error in another).
#[test]
fn keys_with_at_signs_are_addressable_and_bad_versions_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&strata_stdin(d, &["put", "user@host@"], Some(b"mail\n")));
    one_line_error(&strata_stdin(d, &["put", "user@host"], Some(b"mail\n")), 2);
    ok(&strata_stdin(d, &["put", "notes"], Some(b"one\n")));
    assert_eq!(ok(&strata(d, &["get", "user@host@"])), "mail\n");
    assert_eq!(ok(&strata(d, &["get", "user@host@1"])), "mail\n");
    assert_eq!(ok(&strata(d, &["log", "user@host@"])).lines().count(), 1);
    // A suffix that starts with a letter reads as a tag (issue 9): the document 'user' has
    // no tag 'host', and the message shows how to name the key 'user@host'.
    let e = one_line_error(&strata(d, &["get", "user@host"]), 1);
    assert!(
        e.contains("'user@host@'") && e.contains("no tag 'host'"),
        "{e}"
    );
    let e = one_line_error(&strata_stdin(d, &["put", "notes@2"], Some(b"x\n")), 2);
    assert!(e.contains("not a version"), "{e}");
    for bad in ["notes@0", "notes@-x", "notes@1x"] {
        one_line_error(&strata(d, &["get", bad]), 2);
    }
    one_line_error(&strata(d, &["get", "notes@abc"]), 1);
    one_line_error(&strata(d, &["get", "notes@7"]), 1);
    assert_eq!(ok(&strata(d, &["ls"])).lines().count(), 2);
}

/// See: issue 12, items 7 and 10 (Latin-1 text was "Binary files differ"; `--stat` mixed with
/// `--format json-patch` was ignored; identical versions printed " 0 files changed"; absolute
/// paths were labelled `a//tmp/...`).
#[test]
fn latin1_text_diffs_by_lines_and_patch_applies_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = b"caf\xe9\nna\xefve\nend\n".to_vec();
    let new = b"caf\xe9\nna\xefvet\xe9\nend\n".to_vec();
    std::fs::write(d.join("old.txt"), &old).unwrap();
    std::fs::write(d.join("new.txt"), &new).unwrap();
    ok(&strata(d, &["put", "latin", "old.txt"]));
    ok(&strata(d, &["put", "latin", "new.txt"]));
    let out = strata(d, &["diff", "latin@1", "latin@2"]);
    assert!(out.status.success());
    assert!(!out.stdout.starts_with(b"Binary"), "{:?}", out.stdout);
    if let Some(patched) = gnu_patch(d, "old.txt", &out.stdout) {
        assert_eq!(patched, new);
    }
    assert_eq!(
        ok(&strata(d, &["diff", "latin@1", "latin@1", "--stat"])),
        ""
    );
    one_line_error(
        &strata(
            d,
            &[
                "diff",
                "latin@1",
                "latin",
                "--stat",
                "--format",
                "json-patch",
            ],
        ),
        2,
    );
    let abs = d.join("old.txt").display().to_string();
    let files = strata(d, &["diff-files", &abs, "new.txt"]);
    let files = String::from_utf8_lossy(&files.stdout);
    assert!(
        files.contains("--- a/") && !files.contains("a//"),
        "{files}"
    );
}

/// See: issue 12, item 8 (the 64 MiB limit was undocumented, named a library setting, and was
/// checked only after the whole input was read).
#[test]
fn content_limit_is_a_flag_checked_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("big.txt"), "x".repeat(2000)).unwrap();
    let e = one_line_error(
        &strata(d, &["put", "--max-size", "1K", "doc", "big.txt"]),
        2,
    );
    assert!(e.contains("--max-size") && e.contains("1024"), "{e}");
    assert!(!d.join(".strata").exists());
    let e = one_line_error(
        &strata_stdin(d, &["put", "--max-size", "100", "doc"], Some(&[b'y'; 500])),
        2,
    );
    assert!(e.contains("--max-size"), "{e}");
    let e = one_line_error(
        &strata_stdin(d, &["import", "--max-size", "10", "-"], Some(b"put 20 a\n")),
        2,
    );
    assert!(e.contains("--max-size"), "{e}");
    one_line_error(
        &strata(d, &["put", "--max-size", "2G", "doc", "big.txt"]),
        2,
    );
    ok(&strata(d, &["put", "--max-size", "2K", "doc", "big.txt"]));
}

/// See: issue 12, item 4 (`put` with no file on a terminal waited silently).
#[test]
fn put_on_a_terminal_says_it_reads_the_content_from_there() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("script(1) not found; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = on_terminal(dir.path(), "put doc", &[]);
    assert!(
        out.contains("reading the new content from the terminal"),
        "{out:?}"
    );
    assert!(out.contains("Ctrl-D"), "{out:?}");
}

/// See: issue 12, item 9 (a bad header after a record was reported one line early).
#[test]
fn stream_errors_name_the_right_line() {
    let dir = tempfile::tempdir().unwrap();
    let e = one_line_error(
        &strata_stdin(
            dir.path(),
            &["import", "-"],
            Some(b"put 6 a\nhello\n\nput x a\n"),
        ),
        2,
    );
    assert!(e.contains("stream line 4"), "{e}");
}

#[test]
fn diff_flags_json_and_json_patch_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("p1.txt"), "the quick brown fox\nsame line\n").unwrap();
    std::fs::write(d.join("p2.txt"), "the slow brown fox\nsame   line\n").unwrap();
    ok(&strata(d, &["put", "prose", "p1.txt"]));
    ok(&strata(d, &["put", "prose", "p2.txt"]));
    let w = ok(&strata(d, &["diff", "prose@1", "prose@2", "--word-diff"]));
    assert!(w.contains("the [-quick-]{+slow+} brown fox"), "{w}");
    let ws = ok(&strata(d, &["diff", "prose@1", "prose@2", "-w", "--stat"]));
    assert!(
        ws.contains("1 insertion(+), 1 deletion(-)"),
        "whitespace-only line ignored: {ws}"
    );
    let colored = ok(&strata(
        d,
        &["diff", "prose@1", "prose@2", "--color", "always"],
    ));
    assert!(
        colored.contains("\x1b[31m-") && colored.contains("\x1b[32m+"),
        "{colored}"
    );
    let plain = ok(&strata(d, &["diff", "prose@1", "prose@2"]));
    assert!(!plain.contains('\x1b'), "no colour when piped");

    std::fs::write(d.join("j1.json"), r#"{"price": 4, "tags": ["a", "b"]}"#).unwrap();
    std::fs::write(
        d.join("j2.json"),
        r#"{"price": 5, "tags": ["a", "b", "c"]}"#,
    )
    .unwrap();
    ok(&strata(d, &["put", "cfg", "j1.json"]));
    ok(&strata(d, &["put", "cfg", "j2.json"]));
    let text = ok(&strata(d, &["diff", "cfg@1", "cfg@2"]));
    assert!(
        text.contains("/price: 4 -> 5") && text.contains("/tags/2 added: \"c\""),
        "{text}"
    );
    let patch = ok(&strata(
        d,
        &["diff", "cfg@1", "cfg", "--format", "json-patch"],
    ));
    assert_eq!(
        patch.trim(),
        r#"[{"op":"replace","path":"/price","value":5},{"op":"add","path":"/tags/2","value":"c"}]"#
    );
    std::fs::write(d.join("patch.json"), &patch).unwrap();
    let applied = ok(&strata(
        d,
        &["json-patch", "apply", "j1.json", "patch.json"],
    ));
    let got: serde_json::Value = serde_json::from_str(&applied).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"price": 5, "tags": ["a", "b", "c"]})
    );
    let e = one_line_error(
        &strata(d, &["diff", "prose@1", "cfg", "--format", "json-patch"]),
        2,
    );
    assert!(e.contains("not JSON"), "{e}");
    std::fs::write(
        d.join("bad.json"),
        r#"[{"op": "test", "path": "/price", "value": 99}]"#,
    )
    .unwrap();
    let e = one_line_error(
        &strata(d, &["json-patch", "apply", "j1.json", "bad.json"]),
        2,
    );
    assert!(
        e.contains("test failed") && e.contains("not changed"),
        "{e}"
    );
    let typed = ok(&strata(d, &["diff", "cfg@1", "cfg@2", "--format", "json"]));
    assert!(typed.contains("\"kind\":\"json\""), "{typed}");
    let rel = ok(&strata(d, &["diff", "cfg@-1", "cfg", "--format", "lines"]));
    assert!(rel.starts_with("--- a/cfg@-1"), "{rel}");
}

#[test]
fn import_reads_folders_and_a_stdin_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("hist/doc-a")).unwrap();
    for (i, text) in ["one\n", "one\ntwo\n", "one\ntwo\nthree\n"]
        .iter()
        .enumerate()
    {
        std::fs::write(d.join(format!("hist/doc-a/{i:06}")), text).unwrap();
    }
    let out = ok(&strata(d, &["import", "hist"]));
    assert!(out.contains("imported 3 versions of 1 document ("), "{out}");
    assert_eq!(strata(d, &["get", "doc-a@2"]).stdout, b"one\ntwo\n");
    let stream = b"put 4 doc-b\nabc\n\nput 0 doc-b\n\n";
    let out = ok(&strata_stdin(d, &["import", "-"], Some(stream)));
    assert!(out.contains("imported 2 versions"), "{out}");
    assert_eq!(strata(d, &["get", "doc-b@1"]).stdout, b"abc\n");
    assert_eq!(strata(d, &["get", "doc-b"]).stdout, b"");
    let e = one_line_error(
        &strata_stdin(d, &["import", "-"], Some(b"put 9 doc-c\nshort")),
        2,
    );
    assert!(e.contains("ended after"), "{e}");
    one_line_error(&strata(d, &["get", "doc-c"]), 1);
}

/// Copies `tests/fixtures/format1/store` (a store written by the last format-1 build) to `to`.
fn copy_format1_fixture(to: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/format1/store");
    strata_tests::fixture::copy_dir(&fixture, to);
}

/// See: issue 8 (format 2). A format-1 store is refused with a line naming `strata repack`,
/// and a repack killed at any moment leaves either the old store (still refused the same way,
/// and converted by the next repack) or the converted one: never a broken store.
#[test]
fn converting_a_format_1_store_survives_kills() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_format1_fixture(&d.join("old"));
    let e = one_line_error(&strata(d, &["--store", "old", "log", "notes.md"]), 2);
    assert!(e.contains("repack") && e.contains("format 1"), "{e}");
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/format1/manifest.jsonl"),
    )
    .unwrap();
    let ids: Vec<String> = manifest
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    for delay_ms in [0u64, 2, 5, 10, 20, 40] {
        // A process of its own on the store: in the remote run, its server stops first.
        common::remote_suite::stop_all();
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .current_dir(d)
            .env_remove("STRATA_DIR")
            .args(["--store", "old", "repack", "--level", "19"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let log = strata(d, &["--store", "old", "log", "notes.md"]);
        match log.status.code() {
            Some(0) => {}
            Some(2) => {
                let e = String::from_utf8_lossy(&log.stderr);
                assert!(e.contains("repack"), "after a kill at {delay_ms} ms: {e}");
            }
            other => panic!("after a kill at {delay_ms} ms: exit {other:?}"),
        }
    }
    ok(&strata(d, &["--store", "old", "repack"]));
    assert!(ok(&strata(d, &["--store", "old", "verify"])).contains(": ok"));
    let mut seen = 0;
    for (doc, n) in [("notes.md", 11), ("cfg/data.json", 8), ("big.txt", 5)] {
        for v in 1..=n {
            let out = ok(&strata(d, &["--store", "old", "log", doc, "--json"]));
            let line: serde_json::Value =
                serde_json::from_str(out.lines().nth(v - 1).unwrap()).unwrap();
            assert_eq!(line["id"].as_str().unwrap(), ids[seen], "{doc}@{v}");
            let content = strata(d, &["--store", "old", "get", &format!("{doc}@{v}")]).stdout;
            assert_eq!(
                blake3::hash(&content).to_hex().as_str(),
                ids[seen],
                "{doc}@{v}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, ids.len());
}

/// See: issue 14 (a loop of `strata put` killed at random moments left a store that never
/// opened again). Each cycle runs one command (put of a 0-200 KB content, a stream import,
/// gc or repack) and SIGKILLs it after a random delay, often inside the store's open; then the
/// store must verify clean and every put that was acknowledged must read back with its id.
/// `STRATA_CRASH_CYCLES=500` for a long run (default 8).
#[test]
fn killed_commands_leave_a_store_that_opens() {
    let cycles: u64 = std::env::var("STRATA_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n.max(1)
    };
    let mut acked: Vec<(String, String, String)> = Vec::new();
    for cycle in 0..cycles {
        let doc = format!("doc{}", next(3));
        let size = next(200_000) as usize;
        let body: Vec<u8> = (0..size)
            .map(|i| b"abcdefghij\n"[(i + cycle as usize) % 11])
            .collect();
        let (args, input): (Vec<&str>, Vec<u8>) = match next(6) {
            0..=2 => (vec!["put", &doc], body),
            3 => {
                let mut stream = Vec::new();
                for r in 0..1 + next(20) {
                    let c = format!("record {r} of cycle {cycle}\n").repeat(1 + r as usize);
                    stream.extend_from_slice(format!("put {} {doc}\n", c.len()).as_bytes());
                    stream.extend_from_slice(c.as_bytes());
                    stream.push(b'\n');
                }
                (vec!["import", "-"], stream)
            }
            4 => (vec!["gc"], Vec::new()),
            _ => (vec!["repack"], Vec::new()),
        };
        // A process of its own on the store: in the remote run, its server stops first.
        common::remote_suite::stop_all();
        let mut child = common::spawn_with_input(common::command(d).args(&args), Some(&input));
        std::thread::sleep(std::time::Duration::from_micros(next(30_000)));
        let _ = child.kill(); // SIGKILL, unless it finished first
        let out = child.wait_with_output().unwrap();
        if out.status.success() && args[0] == "put" {
            // `doc@N <id> ...`: acknowledged.
            let line = String::from_utf8(out.stdout).unwrap();
            let mut words = line.split_whitespace();
            let (spec, id) = (words.next().unwrap(), words.next().unwrap());
            let (key, v) = spec.rsplit_once('@').unwrap();
            acked.push((key.to_owned(), v.to_owned(), id.to_owned()));
        }
        if !d.join(".strata").join("conf").exists() {
            // Killed before the first put created the store (at most the empty `blobs/`
            // folder the engine makes first): reads say there is no store, the next put
            // creates it.
            let v = strata(d, &["verify"]);
            assert_eq!(v.status.code(), Some(1), "cycle {cycle}: {v:?}");
            assert!(String::from_utf8_lossy(&v.stderr).contains("no store"));
            continue;
        }
        let v = strata(d, &["verify"]);
        assert_eq!(
            v.status.code(),
            Some(0),
            "cycle {cycle} ({args:?}): {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        for (key, version, id) in &acked {
            let got = strata(d, &["get", &format!("{key}@{version}")]);
            assert!(got.status.success(), "cycle {cycle}: {key}@{version} lost");
            assert_eq!(
                blake3::hash(&got.stdout).to_hex().as_str(),
                id,
                "{key}@{version}"
            );
        }
    }
    eprintln!(
        "{cycles} killed commands, {} acknowledged puts read back",
        acked.len()
    );
}

#[test]
fn kill_during_repack_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A history big enough that a level-19 repack takes a while.
    std::fs::create_dir_all(d.join("h/doc")).unwrap();
    let mut text = String::new();
    for i in 0..150 {
        for j in 0..20 {
            text.push_str(&format!(
                "line {i}-{j}: the quick brown fox jumps over the lazy dog {}\n",
                i * j
            ));
        }
        std::fs::write(d.join(format!("h/doc/{i:06}")), &text).unwrap();
    }
    ok(&strata(d, &["import", "h"]));
    let want: Vec<Vec<u8>> = (1..=150)
        .map(|v| strata(d, &["get", &format!("doc@{v}")]).stdout)
        .collect();
    let mut interrupted = 0;
    for delay_ms in [5u64, 40, 120, 300] {
        // A process of its own on the store: in the remote run, its server stops first.
        common::remote_suite::stop_all();
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .current_dir(d)
            .env_remove("STRATA_DIR")
            .args(["repack", "--level", "19"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        // Killed while it ran (not finished before the kill came).
        if std::os::unix::process::ExitStatusExt::signal(&status) == Some(9) {
            interrupted += 1;
        }
        let v = ok(&strata(d, &["verify"]));
        assert!(v.contains(": ok"), "after a kill at {delay_ms} ms: {v}");
        for (i, content) in want.iter().enumerate() {
            let got = strata(d, &["get", &format!("doc@{}", i + 1)]).stdout;
            assert!(
                &got == content,
                "version {} changed after a kill at {delay_ms} ms",
                i + 1
            );
        }
    }
    assert!(
        interrupted > 0,
        "every repack finished before its kill: the test interrupted nothing"
    );
    // And a repack that runs to the end still keeps everything.
    ok(&strata(d, &["repack"]));
    assert!(ok(&strata(d, &["verify"])).contains(": ok"));
    assert_eq!(strata(d, &["get", "doc@150"]).stdout, want[149]);
}

fn strata_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    // The environment may name the store: in the remote run these stay local.
    common::remote_suite::stop_all();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.current_dir(dir).env_remove("STRATA_DIR").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

#[test]
fn store_location_stdin_author_context_and_specs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // STRATA_DIR, else --store, else ./.strata.
    std::fs::write(d.join("a.txt"), "1\n2\n3\n4\n5\n6\n7\n8\n9\n").unwrap();
    ok(&strata_env(
        d,
        &["put", "e", "a.txt"],
        &[("STRATA_DIR", "envstore")],
    ));
    assert!(d.join("envstore").is_dir() && !d.join(".strata").exists());
    ok(&strata(d, &["--store", "flagstore", "put", "f", "a.txt"]));
    assert!(d.join("flagstore").is_dir() && !d.join(".strata").exists());
    // `-` reads standard input; --author is shown by log.
    ok(&strata_stdin(
        d,
        &["put", "n", "-", "--author", "ana"],
        Some(b"1\n2\n3\n4\n5\n6\n7\n8\n9\n"),
    ));
    ok(&strata_stdin(
        d,
        &["put", "n", "-m", "edit"],
        Some(b"1\n2\n3\n4\nfive\n6\n7\n8\n9\n"),
    ));
    let log = ok(&strata(d, &["log", "n"]));
    assert!(log.lines().next().unwrap().contains("<ana>"), "{log}");
    // -U sets the context.
    let u1 = ok(&strata(d, &["diff", "n@1", "n@2", "-U", "1"]));
    assert!(
        u1.contains("@@ -4,3 +4,3 @@") && !u1.contains(" 3\n"),
        "{u1}"
    );
    let u0 = ok(&strata(d, &["diff", "n@1", "n@2", "--unified", "0"]));
    assert!(u0.contains("@@ -5 +5 @@\n-5\n+five\n"), "{u0}");
    // A content id names a version.
    let id = blake3::hash(b"1\n2\n3\n4\n5\n6\n7\n8\n9\n")
        .to_hex()
        .to_string();
    assert_eq!(
        strata(d, &["get", &format!("n@{id}")]).stdout,
        b"1\n2\n3\n4\n5\n6\n7\n8\n9\n"
    );
    one_line_error(&strata(d, &["get", &format!("n@{}", "0".repeat(64))]), 1);
}

#[test]
fn binary_and_scalar_json_diffs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&strata_stdin(
        d,
        &["put", "bin"],
        Some(&[0u8, 1, 2, 3, 0xff]),
    ));
    ok(&strata_stdin(
        d,
        &["put", "bin"],
        Some(&[0u8, 1, 9, 3, 0xff, 7]),
    ));
    let out = ok(&strata(d, &["diff", "bin@1", "bin@2"]));
    assert!(
        out.starts_with(
            "Binary files a/bin@1 and b/bin@2 differ (5 bytes -> 6 bytes, 2 bytes differ, delta "
        ),
        "{out}"
    );
    // --format json-patch forces JSON mode, even for top-level scalars.
    ok(&strata_stdin(d, &["put", "num"], Some(b"4")));
    ok(&strata_stdin(d, &["put", "num"], Some(b"5")));
    let patch = ok(&strata(
        d,
        &["diff", "num@1", "num@2", "--format", "json-patch"],
    ));
    assert_eq!(patch.trim(), r#"[{"op":"replace","path":"","value":5}]"#);
}

#[test]
fn verify_lists_damage_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 0..5 {
        ok(&strata_stdin(
            d,
            &["put", "doc"],
            Some(
                format!("line {i} of a growing document\n")
                    .repeat(i + 1)
                    .as_bytes(),
            ),
        ));
    }
    assert!(ok(&strata(d, &["verify"])).contains(": ok"));
    common::damage_a_loose_object(&d.join(".strata"));
    let out = strata(d, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("problem: ")), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("verify found"), "{err}");
}

#[test]
fn a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = "a line that repeats to make a large document\n".repeat(200_000);
    ok(&strata_stdin(d, &["put", "big"], Some(big.as_bytes())));
    // A process of its own on the store: in the remote run, its server stops first.
    common::remote_suite::stop_all();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .current_dir(d)
        .env_remove("STRATA_DIR")
        .args(["get", "big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout); // the reader goes away, as `| head -c16` would
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn colour_follows_the_terminal_and_no_color() {
    if !has_script() {
        eprintln!("`script` not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&strata_stdin(d, &["put", "c"], Some(b"old\n")));
    ok(&strata_stdin(d, &["put", "c"], Some(b"new\n")));
    let run = |no_color: bool| {
        let env: &[(&str, &str)] = if no_color { &[("NO_COLOR", "1")] } else { &[] };
        on_terminal(d, "diff c@1 c@2", env)
    };
    let tty = run(false);
    assert!(
        tty.contains("\x1b[31m-old") && tty.contains("\x1b[32m+new") && tty.contains("\x1b[36m@@"),
        "{tty:?}"
    );
    let plain = run(true);
    assert!(
        plain.contains("-old") && !plain.contains("\x1b["),
        "{plain:?}"
    );
}

#[test]
fn import_checks_the_folder_first_and_takes_a_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A missing folder or a plain file: one line, exit 2, and no store created.
    let e = one_line_error(&strata(d, &["import", "nope"]), 2);
    assert!(e.contains("'nope' is not a folder"), "{e}");
    std::fs::write(d.join("file.txt"), "x").unwrap();
    one_line_error(&strata(d, &["import", "file.txt"]), 2);
    assert!(
        !d.join(".strata").exists(),
        "a failed import created a store"
    );
    // --batch 2 commits 5 versions in three batches; every version reads back.
    std::fs::create_dir_all(d.join("h/doc")).unwrap();
    let texts: Vec<String> = (0..5).map(|i| "line\n".repeat(i + 1)).collect();
    for (i, t) in texts.iter().enumerate() {
        std::fs::write(d.join(format!("h/doc/{i:03}")), t).unwrap();
    }
    let out = ok(&strata(d, &["import", "--batch", "2", "h"]));
    assert!(out.contains("imported 5 versions of 1 document ("), "{out}");
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(
            strata(d, &["get", &format!("doc@{}", i + 1)]).stdout,
            t.as_bytes()
        );
    }
    // On a terminal, progress shows versions, megabytes, versions/s and the ETA.
    if !has_script() {
        eprintln!("`script` not installed; skipping the progress check");
        return;
    }
    let tty = on_terminal(d, "--store other import --batch 2 h", &[]);
    assert!(
        tty.contains("importing: 2/5 versions")
            && tty.contains("importing: 5/5 versions")
            && tty.contains("versions/s")
            && tty.contains("ETA")
            && tty.contains("imported 5 versions"),
        "{tty:?}"
    );
}

#[test]
fn repack_takes_policy_level_and_window_and_keeps_every_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("h/doc")).unwrap();
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!("entry {i}: {}\n", i * 7919));
        std::fs::write(d.join(format!("h/doc/{i:03}")), &text).unwrap();
    }
    ok(&strata(d, &["import", "h"]));
    let log_before = ok(&strata(d, &["log", "doc", "--json"]));
    let ids = |log: &str| -> Vec<String> {
        log.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect()
    };
    let out = ok(&strata(
        d,
        &[
            "repack", "--policy", "cost:4", "--level", "12", "--window", "3",
        ],
    ));
    assert!(out.starts_with("repacked 30 objects"), "{out}");
    assert!(ok(&strata(d, &["stats"])).contains("cost:4"));
    assert_eq!(
        ids(&ok(&strata(d, &["log", "doc", "--json"]))),
        ids(&log_before)
    );
    assert!(ok(&strata(d, &["verify"])).contains(": ok"));
    assert_eq!(strata(d, &["get", "doc@30"]).stdout, text.as_bytes());
    // Out-of-range levels are refused before anything is touched.
    one_line_error(&strata(d, &["repack", "--level", "0"]), 2);
    one_line_error(&strata(d, &["repack", "--level", "23"]), 2);
    assert!(ok(&strata(d, &["stats"])).contains("cost:4"));
}

/// Whether `script` (util-linux), which gives a command a terminal, is installed.
fn has_script() -> bool {
    Command::new("script").arg("--version").output().is_ok()
}

/// Runs `strata ARGS` in `dir` on a terminal (through `script`) with `env` set and NO_COLOR
/// otherwise unset, and returns what the terminal showed.
fn on_terminal(dir: &Path, args: &str, env: &[(&str, &str)]) -> String {
    // A terminal's colours are the local process's: in the remote run the store's server
    // stops first.
    common::remote_suite::stop_all();
    let bin = env!("CARGO_BIN_EXE_strata");
    let mut cmd = Command::new("script");
    cmd.current_dir(dir)
        .env_remove("STRATA_DIR")
        .env_remove("NO_COLOR")
        .args(["-qec", &format!("{bin} {args}"), "/dev/null"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
}

/// A full disk through the CLI (issue 10): `strata put` fails with one line and no partial
/// write, reading commands still work on the full disk, and puts resume once space is freed.
/// Runs in a private mount namespace on a 3 MiB tmpfs (see
/// `strata_tests::fulldisk::private_mount_shell`).
#[test]
fn a_full_disk_fails_one_put_with_one_line_and_loses_nothing() {
    let work = tempfile::tempdir().unwrap();
    let disk = work.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let big: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(work.path().join("big.bin"), &big).unwrap();
    std::fs::write(work.path().join("small.txt"), "first\n").unwrap();
    let script = r#"
        mount -t tmpfs -o size=3m strata-full "$D" || exit 9
        S="$D/store"
        "$B" --store "$S" put small.txt small.txt || exit 10
        dd if=/dev/zero of="$D/fill" bs=64k 2>/dev/null
        "$B" --store "$S" put big.bin big.bin 2>full.err; echo "PUT $?"
        "$B" --store "$S" get small.txt > got.txt; echo "GET $?"
        "$B" --store "$S" log big.bin; echo "LOG $?"
        rm "$D/fill"
        "$B" --store "$S" put big.bin big.bin; echo "RESUMED $?"
        "$B" --store "$S" get big.bin > big.out; echo "BIG $?"
        "$B" --store "$S" verify >/dev/null; echo "VERIFY $?"
    "#;
    let Some(mut shell) = strata_tests::fulldisk::private_mount_shell(script) else {
        return;
    };
    let out = shell
        .current_dir(work.path())
        .env("D", &disk)
        .env("B", env!("CARGO_BIN_EXE_strata"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let err = std::fs::read_to_string(work.path().join("full.err")).unwrap();
    assert!(
        stdout.contains("PUT 1") || stdout.contains("PUT 2"),
        "{stdout}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("disk holding the store is full"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout.contains("GET 0"), "{stdout}");
    assert_eq!(
        std::fs::read(work.path().join("got.txt")).unwrap(),
        b"first\n"
    );
    // The failed put left no version behind.
    assert!(!stdout.contains("LOG 0"), "{stdout}");
    assert!(stdout.contains("RESUMED 0"), "{stdout}");
    assert!(stdout.contains("BIG 0"), "{stdout}");
    assert_eq!(std::fs::read(work.path().join("big.out")).unwrap(), big);
    assert!(stdout.contains("VERIFY 0"), "{stdout}");
}
