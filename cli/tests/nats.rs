//! The NATS engine through the CLI, against real `nats-server` processes (one, and a 3-node
//! cluster on loopback): every command on a `nats://` store, writers in several processes at
//! once, maintenance beside them, copies between engines, and kill -9 of cluster nodes.
//! Skipped without `nats-server`, except under `STRATA_REQUIRE_NATS` (as `.ci/run` sets).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ok, one_line_error, strata_stdin};
use strata_tests::nats::{NatsCluster, NatsServer, unique_name};

fn store_of(url: &str) -> String {
    format!("{url}/{}", unique_name("cli"))
}

/// A temporary directory, a nats-server keeping its data there, and the address of a new
/// store on it; `None` without nats-server (see `strata_tests::nats::server_binary`).
fn one_server() -> Option<(tempfile::TempDir, NatsServer, String)> {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(dir.path())?;
    let store = store_of(&server.url());
    Some((dir, server, store))
}

fn at(store: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec!["--store".to_owned(), store.to_owned()];
    v.extend(args.iter().map(|s| (*s).to_owned()));
    v
}

fn run(dir: &Path, store: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let args = at(store, args);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    strata_stdin(dir, &refs, stdin)
}

#[test]
fn every_store_command_works_on_a_nats_store() {
    let Some((dir, server, s)) = one_server() else {
        return;
    };
    let d = dir.path();
    // Reading a store that does not exist says so, and creates nothing.
    let e = one_line_error(&run(d, &s, &["ls"], None), 1);
    assert!(e.contains("no store at nats://"), "{e}");
    for (i, text) in ["{\"a\": 1}\n", "{\"a\": 2}\n", "{\"a\": 2, \"b\": [1]}\n"]
        .iter()
        .enumerate()
    {
        let out = ok(&run(
            d,
            &s,
            &["put", "cfg.json", "-m", &format!("edit {i}")],
            Some(text.as_bytes()),
        ));
        assert!(out.starts_with(&format!("cfg.json@{}", i + 1)), "{out}");
    }
    assert_eq!(
        ok(&run(d, &s, &["get", "cfg.json@1"], None)),
        "{\"a\": 1}\n"
    );
    assert_eq!(ok(&run(d, &s, &["get", "cfg.json"], None)).len(), 19);
    let log = ok(&run(d, &s, &["log", "cfg.json"], None));
    assert_eq!(log.lines().count(), 3, "{log}");
    let patch = ok(&run(
        d,
        &s,
        &["diff", "cfg.json@1", "cfg.json@3", "--format", "json-patch"],
        None,
    ));
    assert!(
        patch.contains("\"replace\"") && patch.contains("/b"),
        "{patch}"
    );
    ok(&run(d, &s, &["tag", "cfg.json@2", "stable"], None));
    assert_eq!(
        ok(&run(d, &s, &["get", "cfg.json@stable"], None)),
        "{\"a\": 2}\n"
    );
    ok(&run(d, &s, &["rm", "cfg.json"], None));
    let ls = ok(&run(d, &s, &["ls", "--all"], None));
    assert!(ls.contains("cfg.json"), "{ls}");
    let feed = ok(&run(d, &s, &["feed"], None));
    assert_eq!(feed.lines().count(), 4, "{feed}");
    assert!(ok(&run(d, &s, &["verify"], None)).contains("ok"));
    assert!(ok(&run(d, &s, &["gc"], None)).contains("removed"));
    let stats = ok(&run(d, &s, &["stats"], None));
    assert!(stats.contains("versions         4"), "{stats}");
    let export = ok(&run(d, &s, &["export"], None));
    assert!(export.contains("commit refs/heads/"), "{export}");
    // A stale expected version is a conflict naming the current one; nothing is written.
    let e = one_line_error(
        &run(d, &s, &["put", "cfg.json", "--expect", "1"], Some(b"x")),
        2,
    );
    assert!(e.contains("is at version 4"), "{e}");
    // Mistakes in the address are one line each.
    let e = one_line_error(&run(d, "nats://127.0.0.1:1/x", &["ls"], None), 2);
    assert!(e.contains("could not connect"), "{e}");
    let e = one_line_error(&run(d, &format!("{}/a.b", server.url()), &["ls"], None), 2);
    assert!(e.contains("may hold only letters"), "{e}");
}

#[test]
fn two_processes_expecting_the_same_version_one_wins() {
    let Some((dir, _server, s)) = one_server() else {
        return;
    };
    let d = dir.path();
    ok(&run(d, &s, &["put", "doc"], Some(b"one\n")));
    // Rounds of six writers started together, all expecting the version they read.
    let mut conflicts = 0;
    for round in 1..=5u64 {
        let children: Vec<Child> = (0..6)
            .map(|w| {
                let args = at(&s, &["put", "doc", "--expect", &round.to_string()]);
                let content = format!("round {round} writer {w}\n");
                common::spawn_with_input(common::command(d).args(&args), Some(content.as_bytes()))
            })
            .collect();
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let won: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one writer wins");
        let v = round + 1;
        assert!(String::from_utf8_lossy(&won[0].stdout).starts_with(&format!("doc@{v} ")));
        for o in outs.iter().filter(|o| !o.status.success()) {
            let e = one_line_error(o, 2);
            assert!(
                e.contains(&format!(
                    "expected it at version {round}, but it is at version {v}"
                )),
                "{e}"
            );
            conflicts += 1;
        }
    }
    assert_eq!(conflicts, 25);
    let log = ok(&run(d, &s, &["log", "doc"], None));
    assert_eq!(log.lines().count(), 6, "{log}");
}

/// One acknowledged put: the document, its version and what was written.
struct Ack {
    doc: String,
    version: u64,
    content: String,
}

/// Writes `puts` versions from one process per put (`strata put`), each acknowledged with its
/// version on stdout; returns what was acknowledged. `docs` picks each put's document.
fn writer(
    d: &Path,
    store: &str,
    name: &str,
    puts: usize,
    docs: impl Fn(usize) -> String,
) -> Vec<Ack> {
    let mut acks = Vec::new();
    for i in 0..puts {
        let doc = docs(i);
        let content = format!("{name} put {i}\nshared line\n{}\n", i % 4);
        let o = run(d, store, &["put", &doc], Some(content.as_bytes()));
        if o.status.success() {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            let version = out
                .split_whitespace()
                .next()
                .and_then(|w| w.rsplit_once('@'))
                .and_then(|(_, n)| n.parse().ok())
                .unwrap_or_else(|| panic!("no version in {out:?}"));
            acks.push(Ack {
                doc,
                version,
                content,
            });
        } else {
            // Only an unreachable cluster may refuse a put (or a maintenance, such as the fold
            // of loose objects, that held the store past the wait while a node was down), and
            // then with one line; nothing of the put is acknowledged.
            let e = one_line_error(&o, 2);
            assert!(
                e.contains("NATS store") || e.contains("for maintenance"),
                "{e}"
            );
        }
    }
    acks
}

/// Every acknowledged version reads back as written, and no version number was given twice.
fn check_acks(d: &Path, store: &str, acks: &[Ack]) -> usize {
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    for a in acks {
        assert!(
            seen.insert((a.doc.clone(), a.version)),
            "{}@{} acknowledged twice",
            a.doc,
            a.version
        );
    }
    let mut by_doc: HashMap<&str, Vec<&Ack>> = HashMap::new();
    for a in acks {
        by_doc.entry(&a.doc).or_default().push(a);
    }
    for (doc, list) in by_doc {
        // One `get --batch` per document.
        let specs: String = list
            .iter()
            .map(|a| format!("{doc}@{}\n", a.version))
            .collect();
        let out = run(d, store, &["get", "--batch"], Some(specs.as_bytes()));
        let text = ok(&out);
        for a in &list {
            assert!(
                text.contains(&a.content),
                "{doc}@{} lost: {:?} not read back",
                a.version,
                a.content
            );
        }
    }
    acks.len()
}

#[test]
fn writers_in_several_processes_beside_gc_and_prune_lose_nothing() {
    let Some((dir, _server, s)) = one_server() else {
        return;
    };
    let d = dir.path().to_owned();
    let handles: Vec<_> = (0..3)
        .map(|w| {
            let (d, s) = (d.clone(), s.clone());
            std::thread::spawn(move || {
                writer(&d, &s, &format!("w{w}"), 24, |i| format!("doc/{}", i % 3))
            })
        })
        .collect();
    // Maintenance beside them: gc and prune of a document nobody checks below.
    let maint = {
        let (d, s) = (d.clone(), s.clone());
        std::thread::spawn(move || {
            for i in 0..8 {
                ok(&run(
                    &d,
                    &s,
                    &["put", "scratch"],
                    Some(format!("{i}\n").as_bytes()),
                ));
                ok(&run(&d, &s, &["gc"], None));
                ok(&run(&d, &s, &["prune", "scratch", "--keep", "1"], None));
            }
        })
    };
    let acks: Vec<Ack> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    maint.join().unwrap();
    assert_eq!(acks.len(), 72, "every put succeeds on a healthy server");
    check_acks(&d, &s, &acks);
    assert!(ok(&run(&d, &s, &["verify"], None)).contains("ok"));
    // The feed is one total order: positions 1, 2, 3, ... with every acknowledged version.
    let feed = ok(&run(&d, &s, &["feed"], None));
    let seqs = common::feed_seqs(&feed);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "feed out of order");
}

#[test]
fn a_store_moves_between_engines_and_back_whole() {
    let Some((dir, _server, nats)) = one_server() else {
        return;
    };
    let d = dir.path();
    let sled1 = d.join("one").display().to_string();
    let sled2 = d.join("two").display().to_string();
    for i in 0..30 {
        let text = format!("# notes\n{}\n", "line\n".repeat(i));
        ok(&run(
            d,
            &sled1,
            &["put", &format!("n/{}", i % 4), "--author", "ann", "-m", "m"],
            Some(text.as_bytes()),
        ));
    }
    ok(&run(d, &sled1, &["tag", "n/1@2", "first"], None));
    let out = ok(&run(d, &sled1, &["copy", &nats], None));
    assert!(
        out.contains("30 versions") && out.contains("verifies"),
        "{out}"
    );
    ok(&run(d, &nats, &["copy", &sled2], None));
    for args in [
        &["feed"][..],
        &["tags"],
        &["get", "n/1@1"],
        &["get", "n/1@first"],
    ] {
        assert_eq!(
            ok(&run(d, &sled1, args, None)),
            ok(&run(d, &sled2, args, None)),
            "{args:?}"
        );
        assert_eq!(
            ok(&run(d, &sled1, args, None)),
            ok(&run(d, &nats, args, None)),
            "{args:?}"
        );
    }
    // A destination in use is refused, and left as it was.
    let e = one_line_error(&run(d, &sled1, &["copy", &nats], None), 2);
    assert!(e.contains("already holds versions"), "{e}");
}

/// Runs a command until it succeeds (a cluster that just started elects its leaders first),
/// for at most a minute.
fn until_it_succeeds(d: &Path, store: &str, args: &[&str], stdin: Option<&[u8]>, why: &str) {
    let start = Instant::now();
    loop {
        let o = run(d, store, args, stdin);
        if o.status.success() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{why}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_cluster_keeps_every_acknowledged_version_through_kill_9_of_each_node_and_of_all() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut cluster) = NatsCluster::start(dir.path(), 3) else {
        return;
    };
    let d = dir.path().to_owned();
    let name = unique_name("cluster");
    let s = format!("{}/{name}?replicas=3", cluster.url());
    // The cluster elects its JetStream leader after it starts: the first put waits for it.
    until_it_succeeds(
        &d,
        &s,
        &["put", "seed"],
        Some(b"seed\n"),
        "the cluster never took a put",
    );
    let mut acks = Vec::new();
    let mut kills = 0;
    // Kill each node in turn (so the stream's leader among them), with writers running.
    for victim in 0..3 {
        let handles: Vec<_> = (0..3)
            .map(|w| {
                let (d, s) = (d.clone(), s.clone());
                std::thread::spawn(move || {
                    writer(&d, &s, &format!("k{victim}w{w}"), 12, |i| {
                        if i % 2 == 0 {
                            "shared".to_owned()
                        } else {
                            format!("own/{w}")
                        }
                    })
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        cluster.nodes[victim].kill();
        kills += 1;
        std::thread::sleep(Duration::from_millis(1500));
        cluster.nodes[victim].restart();
        for h in handles {
            acks.extend(h.join().unwrap());
        }
        // The restarted node catches up: its replica reaches the others' last sequence.
        let stream = format!("STRATA_{name}");
        let start = Instant::now();
        loop {
            let others = (0..3)
                .filter(|&i| i != victim)
                .filter_map(|i| cluster.nodes[i].stream_last_seq(&stream))
                .max();
            let own = cluster.nodes[victim].stream_last_seq(&stream);
            if own.is_some() && own >= others {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "node {victim} did not catch up: {own:?} of {others:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(
        acks.len() >= 90,
        "writes resume after each election: {}",
        acks.len()
    );
    check_acks(&d, &s, &acks);
    // The whole cluster down at once, then up again: everything acknowledged is there.
    for node in &mut cluster.nodes {
        node.kill();
    }
    kills += 3;
    for node in &mut cluster.nodes {
        node.restart();
    }
    until_it_succeeds(
        &d,
        &s,
        &["verify"],
        None,
        "the restarted cluster never answered",
    );
    let checked = check_acks(&d, &s, &acks);
    // One total order without gaps: positions 1, 2, 3, ... (nothing was pruned).
    let seqs = common::feed_seqs(&ok(&run(&d, &s, &["feed"], None)));
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!(
        seqs.len() > acks.len(),
        "the feed holds every acknowledged version"
    );
    eprintln!("cluster: {kills} kills, {checked} acknowledged versions checked");
}

#[test]
fn a_server_on_a_nats_store_sees_other_writers() {
    let Some((dir, _server, s)) = one_server() else {
        return;
    };
    let d = dir.path();
    ok(&run(d, &s, &["put", "a"], Some(b"one\n")));
    let web = common::Server::start(d, &["--store", &s]);
    let client = std::thread::spawn({
        let url = web.url("/v1/feed?since=1&wait=20");
        move || {
            let started = Instant::now();
            let body = ureq::get(&url).call().unwrap().into_string().unwrap();
            (body, started.elapsed())
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    // Written by another process, straight to the cluster.
    ok(&run(d, &s, &["put", "b"], Some(b"two\n")));
    let (body, waited) = client.join().unwrap();
    assert!(body.contains("\"doc\":\"b\""), "{body}");
    assert!(
        waited < Duration::from_secs(10),
        "the long poll woke late: {waited:?}"
    );
    let read = |server: &common::Server, path: &str| {
        ureq::get(&server.url(path))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    };
    assert_eq!(read(&web, "/v1/docs/b"), "two\n");
    // A second server on the same store, in a process of its own: what one takes, the other
    // serves, and expected versions hold across them.
    let other = common::Server::start(d, &["--store", &s]);
    let put = ureq::put(&other.url("/v1/docs/b?expect=1"))
        .send_string("three\n")
        .unwrap()
        .into_string()
        .unwrap();
    assert!(put.contains("\"version\":2"), "{put}");
    assert_eq!(read(&web, "/v1/docs/b"), "three\n");
    let stale = ureq::put(&web.url("/v1/docs/b?expect=1")).send_string("four\n");
    match stale {
        Err(ureq::Error::Status(409, r)) => {
            let body = r.into_string().unwrap();
            assert!(body.contains("is at version 2"), "{body}");
        }
        other => panic!("a stale put through the other server: {other:?}"),
    }
    assert_eq!(read(&other, "/v1/docs/b?at=1"), "two\n");
}

#[test]
fn feed_follow_and_consumers_work_across_processes_given_by_strata_dir() {
    use std::io::BufRead;
    let Some((dir, _server, s)) = one_server() else {
        return;
    };
    let d = dir.path();
    // The store given by STRATA_DIR, as users set it once for every command.
    let env_run = |args: &[&str], stdin: Option<&[u8]>| {
        let mut cmd = common::command(d);
        cmd.env("STRATA_DIR", &s).args(args);
        common::spawn_with_input(&mut cmd, stdin)
            .wait_with_output()
            .unwrap()
    };
    ok(&env_run(&["put", "log"], Some(b"first\n")));
    assert_eq!(ok(&run(d, &s, &["get", "log"], None)), "first\n");
    let mut follower = common::command(d)
        .env("STRATA_DIR", &s)
        .args(["feed", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"seq\":1"), "{first}");
    // Written by other processes while the follower waits.
    ok(&env_run(&["put", "log"], Some(b"second\n")));
    ok(&env_run(&["put", "other"], Some(b"x\n")));
    let second = lines.next().unwrap().unwrap();
    let third = lines.next().unwrap().unwrap();
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(
        second.contains("\"seq\":2") && second.contains("\"doc\":\"log\""),
        "{second}"
    );
    assert!(
        third.contains("\"seq\":3") && third.contains("\"doc\":\"other\""),
        "{third}"
    );
    // A durable consumer: each process goes on where the last one stopped.
    let page = |n: &str| {
        common::feed_seqs(&ok(&env_run(
            &["feed", "--consumer", "c", "--limit", n],
            None,
        )))
    };
    assert_eq!(page("2"), vec![1, 2]);
    assert_eq!(page("5"), vec![3]);
    ok(&env_run(&["put", "log"], Some(b"third\n")));
    assert_eq!(page("5"), vec![4]);
    let listed = ok(&env_run(&["consumers"], None));
    assert!(listed.contains("c  position 4  lag 0"), "{listed}");
}

#[test]
fn repack_compacts_the_log_under_a_server_that_has_the_store_open() {
    let Some((dir, _server, s)) = one_server() else {
        return;
    };
    let d = dir.path();
    for i in 0..40 {
        let text = format!("# log\n{}", "entry\n".repeat(i + 1));
        ok(&run(
            d,
            &s,
            &["put", &format!("doc/{}", i % 3)],
            Some(text.as_bytes()),
        ));
    }
    ok(&run(
        d,
        &s,
        &["prune", "doc/0", "--keep", "2", "--no-repack"],
        None,
    ));
    let feed_before = ok(&run(d, &s, &["feed"], None));
    let web = common::Server::start(d, &["--store", &s]);
    let read = |path: &str| {
        ureq::get(&web.url(path))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    };
    assert_eq!(
        read("/v1/docs/doc%2F1?at=3"),
        format!("# log\n{}", "entry\n".repeat(8))
    );
    let out = ok(&run(d, &s, &["repack"], None));
    assert!(out.contains("stream (the log, compacted)"), "{out}");
    let sizes: Vec<u64> = out
        .rsplit_once("compacted) ")
        .unwrap()
        .1
        .trim_end_matches(" bytes\n")
        .split(" -> ")
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(sizes[1] < sizes[0], "the log shrank: {out}");
    // Every version reads back the same, from a new process and from the server, which had
    // read the log before it was compacted; both go on writing.
    assert_eq!(ok(&run(d, &s, &["feed"], None)), feed_before);
    assert!(ok(&run(d, &s, &["verify"], None)).contains("ok"));
    assert_eq!(
        read("/v1/docs/doc%2F1?at=3"),
        format!("# log\n{}", "entry\n".repeat(8))
    );
    let put = ureq::put(&web.url("/v1/docs/doc%2F1"))
        .send_string("after the compaction\n")
        .unwrap()
        .into_string()
        .unwrap();
    assert!(put.contains("\"version\":14"), "{put}");
    assert_eq!(
        ok(&run(d, &s, &["get", "doc/1"], None)),
        "after the compaction\n"
    );
    ok(&run(d, &s, &["put", "doc/2"], Some(b"from the CLI\n")));
    assert_eq!(read("/v1/docs/doc%2F2"), "from the CLI\n");
}

#[test]
fn versions_larger_than_a_message_go_in_parts() {
    let Some((dir, _server, s)) = one_server() else {
        return;
    };
    let d = dir.path();
    // nats-server takes messages of 1 MiB by default: 3 MB of text that compresses poorly.
    let mut big = Vec::new();
    let mut x: u64 = 7;
    while big.len() < 3_000_000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        big.extend_from_slice(format!("{x:016x}\n").as_bytes());
    }
    ok(&run(d, &s, &["put", "big"], Some(&big)));
    let mut second = big.clone();
    second.extend_from_slice(b"one more line\n");
    ok(&run(d, &s, &["put", "big"], Some(&second)));
    // Read back by new processes, which read the parts from the log.
    let got = run(d, &s, &["get", "big@1"], None);
    assert!(got.status.success());
    assert!(got.stdout == big, "version 1 differs");
    let got = run(d, &s, &["get", "big"], None);
    assert!(got.stdout == second, "version 2 differs");
    assert!(ok(&run(d, &s, &["verify"], None)).contains("ok"));
    let stats = ok(&run(d, &s, &["stats"], None));
    assert!(stats.contains("versions         2"), "{stats}");
}

#[test]
fn a_server_without_jetstream_is_named_at_once() {
    let Some(binary) = strata_tests::nats::server_binary() else {
        return;
    };
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let _server = Killed(
        std::process::Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nats-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let store = format!("nats://127.0.0.1:{port}/x");
    let e = one_line_error(&run(dir.path(), &store, &["put", "a"], Some(b"a\n")), 2);
    assert!(
        e.contains("does not run JetStream") && e.contains("-js"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it took {:?}",
        started.elapsed()
    );
}
