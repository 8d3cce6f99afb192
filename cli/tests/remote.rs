//! `strata --remote URL ...`: the same commands, run on a local store and against a server
//! on another store, print the same and exit the same.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Server, command};

/// One command: its arguments (after `strata`), standard input, and files it names.
struct Step {
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
}

fn step(args: &[&str]) -> Step {
    Step {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        stdin: None,
    }
}

fn with_stdin(args: &[&str], stdin: &[u8]) -> Step {
    Step {
        stdin: Some(stdin.to_vec()),
        ..step(args)
    }
}

fn run(dir: &Path, mode: &[&str], s: &Step) -> Output {
    use std::io::Write;
    let mut child = command(dir)
        .args(mode)
        .args(&s.args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = s.stdin.clone().unwrap_or_default();
    let _ = child.stdin.take().unwrap().write_all(&input);
    child.wait_with_output().unwrap()
}

#[test]
fn every_store_command_prints_and_exits_the_same_through_a_server() {
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, content: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let a1 = file("a1.txt", "alpha\nbeta\n");
    let c1 = file("c1.json", r#"{"port": 80, "hosts": ["a"]}"#);
    let c2 = file("c2.json", r#"{"port": 8080, "hosts": ["a", "b"]}"#);
    let inline = file("inline.txt", "from a file the client reads\n");
    let batch = file(
        "batch.jsonl",
        &format!(
            "{{\"doc\": \"b/1\", \"content\": \"one\\n\", \"time\": \"2026-01-05T00:00:00Z\"}}\n\
             {{\"doc\": \"b/2\", \"file\": \"{inline}\", \"time\": \"2026-01-05T00:00:00Z\"}}\n"
        ),
    );
    let got = files.path().join("got.txt");
    let got_str = got.to_str().unwrap().to_owned();
    let t = |day: u32| format!("2026-01-0{day}T00:00:00Z");
    let steps = vec![
        step(&["put", "notes/a.md", &a1, "-m", "first", "--time", &t(1)]),
        with_stdin(
            &[
                "put",
                "notes/a.md",
                "-m",
                "second",
                "--author",
                "ann",
                "--time",
                &t(2),
            ],
            b"alpha\nBETA\ngamma\n",
        ),
        step(&["put", "cfg.json", &c1, "--time", &t(1)]),
        step(&["put", "cfg.json", &c2, "--time", &t(3)]),
        step(&["put", "notes/a.md", &a1, "--expect", "1", "--time", &t(4)]),
        step(&["log", "notes/a.md"]),
        step(&["log", "notes/a.md", "--json"]),
        step(&["log", "notes/a.md", "--after", "1", "--limit", "1"]),
        step(&["get", "notes/a.md@1"]),
        step(&["get", "notes/a.md@-1"]),
        step(&["get", "notes/a.md@2026-01-01T12:00:00Z"]),
        step(&["get", "notes/a.md@9"]),
        step(&["get", "nothing"]),
        step(&["get", "notes/a.md@0"]),
        with_stdin(&["get", "--batch"], b"notes/a.md@1\ncfg.json\nnope\n"),
        step(&["diff", "notes/a.md@1", "notes/a.md", "--color", "never"]),
        step(&[
            "diff",
            "notes/a.md@1",
            "notes/a.md",
            "--word-diff",
            "--color",
            "never",
        ]),
        step(&["diff", "cfg.json@1", "cfg.json", "--format", "json-patch"]),
        step(&["diff", "cfg.json@1", "cfg.json", "--color", "never"]),
        step(&[
            "diff",
            "notes/a.md@1",
            "notes/a.md",
            "--stat",
            "--color",
            "never",
        ]),
        step(&["tag", "notes/a.md@1", "v1"]),
        step(&["tag", "notes/a.md@2", "v1"]),
        step(&["tags"]),
        step(&["get", "notes/a.md@v1"]),
        step(&["batch", &batch]),
        step(&["ls"]),
        step(&["rm", "notes/a.md"]),
        step(&["get", "notes/a.md"]),
        step(&["ls", "--all", "--json"]),
        step(&["feed", "--limit", "3"]),
        step(&["feed", "--consumer", "c1", "--limit", "2"]),
        step(&["consumers"]),
        step(&["verify"]),
        step(&["gc"]),
        step(&["export"]),
        step(&["get", "cfg.json", "-o", &got_str]),
        step(&["log", "notes/a.md@2"]),
        step(&["frobnicate"]),
        step(&["json-patch", "--help"]),
    ];
    let server = Server::start(remote.path(), &[]);
    let remote_mode = ["--remote", server.base.as_str()];
    for s in &steps {
        let here = run(local.path(), &[], s);
        let here_file = std::fs::read(&got).ok();
        let _ = std::fs::remove_file(&got);
        let there = run(remote.path(), &remote_mode, s);
        let there_file = std::fs::read(&got).ok();
        let _ = std::fs::remove_file(&got);
        let show = |o: &Output| {
            format!(
                "exit {:?}\n--- stdout\n{}--- stderr\n{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        assert_eq!(show(&here), show(&there), "strata {}", s.args.join(" "));
        assert_eq!(here_file, there_file, "strata {}", s.args.join(" "));
    }
    // The remote store holds what the commands wrote; nothing else was made locally.
    assert!(!remote.path().join("got.txt").exists());
    drop(server);
    let log = common::strata(remote.path(), &["log", "cfg.json"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 2);
}

#[test]
fn what_needs_the_store_to_itself_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let remote = ["--remote", server.base.as_str()];
    for (args, says) in [
        (&["import", "."][..], "import"),
        (&["repack"][..], "repack"),
        (&["--store", "x", "ls"][..], "not both"),
        (&["get", "--verify", "x"][..], "strata verify"),
    ] {
        let out = run(dir.path(), &remote, &step(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // No server there: a clear one-line error.
    drop(server);
    let out = run(
        dir.path(),
        &["--remote", "http://127.0.0.1:9"],
        &step(&["ls"]),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the server"));
}

#[test]
fn read_only_tokens_read_and_cannot_write_remotely() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "read-only r\nread-write w\n").unwrap();
    let server = Server::start(dir.path(), &["--token-file", tokens.to_str().unwrap()]);
    let remote = ["--remote", server.base.as_str()];
    let with_token = |token: &str, args: &[&str], stdin: &[u8]| {
        use std::io::Write;
        let mut child = command(dir.path())
            .env("STRATA_TOKEN", token)
            .args(remote)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin);
        child.wait_with_output().unwrap()
    };
    assert!(with_token("w", &["put", "d"], b"x").status.success());
    let denied = with_token("r", &["put", "d"], b"y");
    assert_eq!(denied.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("read-only"));
    let read = with_token("r", &["get", "d"], b"");
    assert_eq!(read.stdout, b"x");
    let stranger = with_token("nope", &["get", "d"], b"");
    assert_eq!(stranger.status.code(), Some(2));
}

#[test]
fn feed_follow_through_a_server_prints_versions_as_they_come() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let remote = ["--remote", server.base.as_str()];
    assert!(
        run(dir.path(), &remote, &with_stdin(&["put", "d"], b"1"))
            .status
            .success()
    );
    let follower = command(dir.path())
        .args(remote)
        .args(["feed", "--follow", "--limit", "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    for v in ["2", "3"] {
        assert!(
            run(
                dir.path(),
                &remote,
                &with_stdin(&["put", "d"], v.as_bytes())
            )
            .status
            .success()
        );
    }
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    let seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
}
