//! `strata --remote URL ...`: the same commands, run on a local store and against a server
//! on another store, print the same and exit the same.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Server, command, spawn_with_input};

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

/// `text` with the times a write took from the clock (deletions, stream imports) made
/// equal: RFC 3339 times, `created_at_ms` values, and the seconds of a fast-import stream's
/// `author`/`committer` lines. The two runs happen moments apart and may straddle a second.
fn untimed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let line = if line.starts_with("author ") || line.starts_with("committer ") {
            match line.rsplit_once("> ") {
                Some((who, _)) => format!("{who}> SECONDS\n"),
                None => line.to_owned(),
            }
        } else {
            line.to_owned()
        };
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let rfc3339 = bytes.len() >= i + 20
                && bytes[i..i + 20].iter().enumerate().all(|(k, b)| match k {
                    4 | 7 => *b == b'-',
                    10 => *b == b'T',
                    13 | 16 => *b == b':',
                    19 => *b == b'Z',
                    _ => b.is_ascii_digit(),
                });
            if rfc3339 {
                out.push_str("TIME");
                i += 20;
            } else if line[i..].starts_with("\"created_at_ms\":") {
                out.push_str("\"created_at_ms\":MS");
                i += "\"created_at_ms\":".len();
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            } else {
                let c = line[i..].chars().next().unwrap();
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

fn run(dir: &Path, mode: &[&str], s: &Step) -> Output {
    let input = s.stdin.as_deref().unwrap_or_default();
    spawn_with_input(command(dir).args(mode).args(&s.args), Some(input))
        .wait_with_output()
        .unwrap()
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
            untimed(&format!(
                "exit {:?}\n--- stdout\n{}--- stderr\n{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ))
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
        (&["import", "."][..], "a remote import sends a stream"),
        (&["put", "--policy", "full", "d", "-"][..], "--policy"),
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
        let mut cmd = command(dir.path());
        cmd.env("STRATA_TOKEN", token).args(remote).args(args);
        spawn_with_input(&mut cmd, Some(stdin))
            .wait_with_output()
            .unwrap()
    };
    assert!(with_token("w", &["put", "d"], b"x").status.success());
    let denied = with_token("r", &["put", "d"], b"y");
    assert_eq!(denied.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("read-only"));
    let read = with_token("r", &["get", "d"], b"");
    assert_eq!(read.stdout, b"x");
    // The server's address from STRATA_REMOTE instead of --remote.
    let from_env = command(dir.path())
        .env("STRATA_REMOTE", server.base.as_str())
        .env("STRATA_TOKEN", "r")
        .args(["get", "d"])
        .output()
        .unwrap();
    assert_eq!(
        from_env.stdout,
        b"x",
        "{}",
        String::from_utf8_lossy(&from_env.stderr)
    );
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
    let seqs = common::feed_seqs(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(seqs, [1, 2, 3]);
}

/// Imports of streams (`import -`, `import --git-stream FILE`) run through a server as they
/// run locally; the elapsed time in the summary is the only difference.
#[test]
fn stream_imports_through_a_server_store_what_they_store_locally() {
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let server = Server::start(remote.path(), &[]);
    let remote_mode = ["--remote", server.base.as_str()];
    let stream = b"put 6 s/one\nhello\n\nput 3 s/two\nabc\nput 7 s/one\nhello!\n\n";
    let git = local.path().join("fast.stream");
    std::fs::write(
        &git,
        "blob\nmark :1\ndata 4\nv1!\n\ncommit refs/heads/main\nmark :2\nauthor A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\ndata 3\nmsg\nM 100644 :1 g/file.txt\n\n",
    )
    .unwrap();
    let git = git.to_str().unwrap().to_owned();
    let normal = |o: &Output| {
        let text = untimed(&String::from_utf8_lossy(&o.stdout));
        // The summary ends with the elapsed time.
        let text = text.split(" in ").next().unwrap_or_default().to_owned();
        (
            o.status.code(),
            text,
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    for s in [
        with_stdin(&["import", "-"], stream),
        step(&["import", "--git-stream", &git]),
        step(&["log", "s/one"]),
        step(&["log", "g/file.txt", "--json"]),
        step(&["get", "s/two"]),
        with_stdin(&["import", "-"], b"put 99 broken\nshort"),
    ] {
        let here = run(local.path(), &[], &s);
        let there = run(remote.path(), &remote_mode, &s);
        assert_eq!(normal(&here), normal(&there), "strata {}", s.args.join(" "));
    }
    let got = run(remote.path(), &remote_mode, &step(&["get", "s/one"]));
    assert_eq!(got.stdout, b"hello!\n");
}

#[test]
fn times_from_the_clock_are_made_equal_and_nothing_else() {
    assert_eq!(
        untimed("1  2026-11-30T06:03:19Z  6 B\n{\"created_at_ms\":1796013011532,\"seq\":1}\n"),
        "1  TIME  6 B\n{\"created_at_ms\":MS,\"seq\":1}\n"
    );
    assert_eq!(
        untimed("committer b <b@x> 1700000000 +0000\n"),
        "committer b <b@x> SECONDS\n"
    );
    assert_eq!(untimed("2026-11-30 plain é\n"), "2026-11-30 plain é\n");
}
