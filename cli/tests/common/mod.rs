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

/// The `seq` of each line of `strata feed`'s JSON lines.
pub fn feed_seqs(text: &str) -> Vec<u64> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
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

/// A `strata serve` process on a free loopback port, killed when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
}

impl Server {
    /// Starts `strata serve` in `dir` (its store: `dir/.strata`) with `extra` arguments.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = command(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in the server's first line: {line:?}"))
            .to_owned();
        Self {
            child,
            base: format!("http://{base}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server with SIGTERM and returns its exit status and standard output.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        use std::io::Read;
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut rest)
            .unwrap();
        (status, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Flips a byte of the first loose object of the store in `store` (a `.strata` folder),
/// through sled, so that reading it fails its checks.
pub fn damage_a_loose_object(store: &Path) {
    let db = sled::Config::new()
        .path(store)
        .segment_size(32 * 1024)
        .open()
        .unwrap();
    let objects = db.open_tree("objects").unwrap();
    let (k, v) = objects.iter().next().unwrap().unwrap();
    let mut v = v.to_vec();
    let last = v.len() - 1;
    v[last] ^= 0x55;
    objects.insert(k, v).unwrap();
    db.flush().unwrap();
}
