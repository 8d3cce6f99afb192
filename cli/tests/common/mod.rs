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

/// Runs the strata binary in `dir` with `args`, feeding `stdin` when given. In the remote
/// run of the suite (`cli_remote.rs`), a command a server can run on an existing store goes
/// through one ([`remote_suite`]).
pub fn strata_stdin(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    if remote_suite::active() {
        return remote_suite::run(dir, args, stdin);
    }
    run_local(dir, args, stdin)
}

/// Runs the strata binary in `dir` with `args` on its own (no server), feeding `stdin`.
fn run_local(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    spawn_with_input(command(dir).args(args), stdin)
        .wait_with_output()
        .unwrap()
}

/// Starts `cmd` with its output piped and `input` written to its standard input (none when
/// `None`), and returns the running child.
pub fn spawn_with_input(cmd: &mut Command, input: Option<&[u8]>) -> std::process::Child {
    use std::io::Write;
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = input {
        // A command that fails on its arguments exits without reading its input.
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    child
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
        Self::spawn(command(dir), extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `strata serve` in `dir` on the store `store`; `None` when it does not start
    /// (a damaged store, say).
    pub fn start_on(dir: &Path, store: &Path) -> Option<Self> {
        let mut cmd = command(dir);
        cmd.arg("--store").arg(store);
        Self::spawn(cmd, &[]).ok()
    }

    fn spawn(mut command: Command, extra: &[&str]) -> Result<Self, String> {
        use std::io::BufRead;
        let mut child = command
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
        let Some(base) = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
        else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return Err(format!(
                "no address in the server's first line: {line:?} ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        };
        Ok(Self {
            child,
            base: format!("http://{base}"),
        })
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
    remote_suite::stop_all();
    let db = strata_tests::fixture::raw_engine(store);
    let objects = db.open_tree("objects").unwrap();
    let (k, v) = objects.iter().next().unwrap().unwrap();
    let mut v = v.to_vec();
    let last = v.len() - 1;
    v[last] ^= 0x55;
    objects.insert(k, v).unwrap();
    db.flush().unwrap();
}

/// The CLI suites run through servers (`cli/tests/cli_remote.rs` compiles `cli.rs` again,
/// `events_remote.rs` `events.rs`; the suites' helpers see which binary they are in: a test
/// binary whose name ends in `_remote`).
///
/// Each command a server can run, on a store that exists, goes to `strata --remote URL` with
/// a `strata serve` started for that store (one per store, per test thread, stopped when the
/// test ends); its output and exit code are the test's to check, as in the local run. The
/// others run locally, with the store's server stopped first: what a server refuses
/// (`repack`, `copy`, `quickstart`, `serve`, folder imports, `--policy`, `get --verify`),
/// `prune` (which repacks, when it drops enough, and a server cannot: it says so instead),
/// what uses no store (`json-patch`, `diff-files`, help), a command on a store that does not
/// exist yet (the local run creates it, or shows that a failure creates none), and commands
/// from threads a test spawns to race processes on a store.
pub mod remote_suite {
    use super::{Server, run_local};
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::process::Output;

    thread_local! {
        /// The servers of this test thread, by store directory.
        static SERVERS: RefCell<HashMap<PathBuf, Server>> = RefCell::new(HashMap::new());
    }

    /// Whether this is the remote run of the suite.
    pub fn active() -> bool {
        std::env::current_exe()
            .ok()
            .and_then(|p| {
                let name = p.file_name()?.to_str()?;
                Some(name.split('-').next()?.ends_with("_remote"))
            })
            .unwrap_or(false)
    }

    /// Stops the server of every store (before a test reaches into a store's files).
    pub fn stop_all() {
        SERVERS.with(|s| s.borrow_mut().clear());
    }

    /// The command's name, and the store it names (`--store DIR` anywhere, else
    /// `dir/.strata`), with the `--store` arguments taken out.
    fn parse(dir: &Path, args: &[&str]) -> (Option<String>, PathBuf, Vec<String>) {
        let mut store = None;
        let mut rest = Vec::new();
        let mut name = None;
        let mut i = 0;
        while i < args.len() {
            let a = args[i];
            if a == "--store" && i + 1 < args.len() {
                store = Some(dir.join(args[i + 1]));
                i += 2;
                continue;
            }
            if let Some(v) = a.strip_prefix("--store=") {
                store = Some(dir.join(v));
                i += 1;
                continue;
            }
            if name.is_none() {
                if a == "--wait" {
                    rest.push(a.to_owned());
                    if let Some(v) = args.get(i + 1) {
                        rest.push((*v).to_owned());
                    }
                    i += 2;
                    continue;
                }
                if !a.starts_with('-') {
                    name = Some(a.to_owned());
                }
            }
            rest.push(a.to_owned());
            i += 1;
        }
        (name, store.unwrap_or_else(|| dir.join(".strata")), rest)
    }

    /// Whether a server can run the command (see the module docs).
    fn served(name: Option<&str>, args: &[String]) -> bool {
        let Some(name) = name else {
            return false;
        };
        let has = |flag: &str| {
            args.iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        };
        if [
            "--help",
            "-h",
            "--version",
            "-V",
            "--policy",
            "--verify",
            "--remote",
        ]
        .iter()
        .any(|f| has(f))
        {
            return false;
        }
        match name {
            "put" | "get" | "log" | "diff" | "ls" | "stats" | "verify" | "gc" | "feed"
            | "consumers" | "batch" | "export" | "rm" | "retention" | "tag" | "tags" => true,
            "import" => args.iter().any(|a| a == "-" || a == "--git-stream"),
            _ => false,
        }
    }

    pub fn run(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let (name, store, rest) = parse(dir, args);
        // Threads a test spawns (libtest names only its own) are there to race processes on
        // a store: they stay local, with no server of their own.
        let test_thread = std::thread::current().name().is_some();
        if !test_thread || !served(name.as_deref(), &rest) || !store.join("conf").exists() {
            SERVERS.with(|s| s.borrow_mut().remove(&store));
            return run_local(dir, args, stdin);
        }
        let base = SERVERS.with(|s| {
            let mut servers = s.borrow_mut();
            if !servers.contains_key(&store) {
                let server = Server::start_on(dir, &store)?;
                servers.insert(store.clone(), server);
            }
            Some(servers[&store].base.clone())
        });
        // A store no server opens (damaged, say) is the local command's to report.
        let Some(base) = base else {
            return run_local(dir, args, stdin);
        };
        let mut full: Vec<&str> = vec!["--remote", base.as_str()];
        full.extend(rest.iter().map(String::as_str));
        run_local(dir, &full, stdin)
    }
}
