//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The strata binary, to run in `dir`, with `$STRATA_DIR` cleared.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.current_dir(dir).env_remove("STRATA_DIR");
    cmd
}

/// Runs the strata binary in `dir` with `args`.
pub fn strata(dir: &Path, args: &[&str]) -> Output {
    strata_stdin(dir, args, None)
}

/// Runs the strata binary in `dir` with `args`, feeding `stdin` when given.
pub fn strata_stdin(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = command(dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // A command that fails on its arguments exits without reading its input.
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    child.wait_with_output().unwrap()
}

/// The standard output of a successful run; fails the test otherwise.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Checks a failure: exit code `code`, one line on standard error, no panic; returns it.
pub fn one_line_error(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "error is not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}
