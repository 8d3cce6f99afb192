//! The event-store side of the CLI: version times, time travel, log filters, dated imports
//! and the change feed.

mod common;

use common::{ok, one_line_error, strata};

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn times_travel_and_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (i, (text, time)) in [
        ("one\n", "2024-05-01T10:00:00Z"),
        ("two\n", "2024-05-01T12:00:00.500+02:00"),
        ("three\n", "2024-05-03"),
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(d.join(format!("v{i}")), text).unwrap();
        ok(&strata(
            d,
            &[
                "put",
                "doc",
                &format!("v{i}"),
                "--time",
                time,
                "--author",
                "ann",
            ],
        ));
    }
    // The version that was newest at each moment.
    let at = |spec: &str| ok(&strata(d, &["get", &format!("doc@{spec}")]));
    assert_eq!(at("2024-05-01T10:00:00Z"), "one\n");
    // 12:00:00.500+02:00 is 10:00:00.500Z.
    assert_eq!(at("2024-05-01T10:00:00.499Z"), "one\n");
    assert_eq!(at("2024-05-01T10:00:00.500Z"), "two\n");
    let err = one_line_error(&strata(d, &["get", "doc@2024-05-01T09:59:59.999Z"]), 1);
    assert!(err.contains("did not exist yet"), "{err}");
    assert_eq!(at("2024-05-02"), "two\n");
    assert_eq!(at("2024-05-03"), "three\n");
    assert_eq!(at("2030-01-01T00:00:00-05:00"), "three\n");
    // Before the first version: "did not exist yet", exit 1.
    let err = one_line_error(&strata(d, &["get", "doc@2024-04-30"]), 1);
    assert!(
        err.contains("did not exist yet") && err.contains("2024-05-01T10:00:00Z"),
        "{err}"
    );
    // A bad time names what is wrong, exit 2.
    let err = one_line_error(&strata(d, &["get", "doc@2024-02-30"]), 2);
    assert!(err.contains("does not exist in that month"), "{err}");
    // A put dated before the newest version is refused and writes nothing.
    std::fs::write(d.join("late"), "late\n").unwrap();
    let err = one_line_error(
        &strata(d, &["put", "doc", "late", "--time", "2024-05-02"]),
        2,
    );
    assert!(err.contains("never go back"), "{err}");
    let log = ok(&strata(d, &["log", "doc"]));
    assert_eq!(log.lines().count(), 3, "{log}");
    // log filters: --since/--until (a date is the whole day), --author, --grep.
    let versions = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["log", "doc", "--json"];
        all.extend_from_slice(args);
        json_lines(&ok(&strata(d, &all)))
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(versions(&["--since", "2024-05-01T10:00:00.001Z"]), [2, 3]);
    assert_eq!(versions(&["--until", "2024-05-01"]), [1, 2]);
    assert_eq!(
        versions(&["--since", "2024-05-02", "--until", "2024-05-02"]),
        Vec::<u64>::new()
    );
    assert_eq!(versions(&["--author", "an"]), [1, 2, 3]);
    assert_eq!(versions(&["--author", "bob"]), Vec::<u64>::new());
    std::fs::write(d.join("four"), "four\n").unwrap();
    ok(&strata(d, &["put", "doc", "four", "-m", "fix the typo"]));
    assert_eq!(versions(&["--grep", "typo"]), [4]);
    // A put without --time on a document dated in the future keeps times in order.
    std::fs::write(d.join("f"), "f\n").unwrap();
    ok(&strata(d, &["put", "fut", "f", "--time", "2999-01-01"]));
    std::fs::write(d.join("g"), "g\n").unwrap();
    ok(&strata(d, &["put", "fut", "g"]));
    let times: Vec<u64> = json_lines(&ok(&strata(d, &["log", "fut", "--json"])))
        .iter()
        .map(|v| v["created_at_ms"].as_u64().unwrap())
        .collect();
    assert!(times[1] >= times[0], "{times:?}");
}

#[test]
fn import_dates_versions_from_commits_tsv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One document's folder with a tsv beside it (shared/corpus's layout); the third date
    // goes back, as git author dates do after a rebase.
    let hist = d.join("hist");
    std::fs::create_dir(&hist).unwrap();
    for (i, text) in ["a\n", "b\n", "c\n", "d\n"].iter().enumerate() {
        std::fs::write(hist.join(format!("{i:06}")), text).unwrap();
    }
    std::fs::write(
        d.join("hist.commits.tsv"),
        "000000\tc0\t2020-01-01\tf\tb0\t2\n000001\tc1\t2020-02-01\tf\tb1\t2\n\
         000002\tc2\t2020-01-15\tf\tb2\t2\n000003\tc3\t2020-03-01T12:00:00Z\tf\tb3\t2\n",
    )
    .unwrap();
    // A date that goes back is a clear error, and no store is made...
    let err = one_line_error(&strata(d, &["import", "hist"]), 2);
    assert!(
        err.contains("000002 is dated 2020-01-15, before 000001 (2020-02-01)")
            && err.contains("--raise-times"),
        "{err}"
    );
    assert!(!d.join(".strata").exists());
    // ...unless such versions may take the previous version's time.
    let out = ok(&strata(d, &["import", "hist", "--raise-times"]));
    assert!(
        out.contains("4 dated by .commits.tsv") && out.contains("1 dated before"),
        "{out}"
    );
    let log = json_lines(&ok(&strata(d, &["log", "hist", "--json"])));
    let times: Vec<&str> = log.iter().map(|v| v["time"].as_str().unwrap()).collect();
    assert_eq!(
        times,
        [
            "2020-01-01T00:00:00Z",
            "2020-02-01T00:00:00Z",
            "2020-02-01T00:00:00Z",
            "2020-03-01T12:00:00Z"
        ]
    );
    assert_eq!(ok(&strata(d, &["get", "hist@2020-01-20"])), "a\n");
    assert_eq!(ok(&strata(d, &["get", "hist@2020-02-02"])), "c\n");
    // The raised version keeps its own date as metadata, which the feed shows.
    let feed = json_lines(&ok(&strata(d, &["feed"])));
    assert_eq!(feed[2]["meta"]["date"], "2020-01-15");
    // A folder of document folders with one tsv whose first column is the document.
    let many = d.join("many");
    for doc in ["x", "y"] {
        std::fs::create_dir_all(many.join(doc)).unwrap();
        std::fs::write(many.join(doc).join("000000"), format!("{doc}\n")).unwrap();
    }
    std::fs::write(
        d.join("many.commits.tsv"),
        "x\t000000\tc\t2021-06-01\tp\tb\t2\ny\t000000\tc\t2021-07-01\tp\tb\t2\n",
    )
    .unwrap();
    ok(&strata(d, &["--store", "m", "import", "many"]));
    let err = one_line_error(&strata(d, &["--store", "m", "get", "y@2021-06-15"]), 1);
    assert!(err.contains("did not exist yet"), "{err}");
    assert_eq!(
        ok(&strata(d, &["--store", "m", "get", "x@2021-06-15"])),
        "x\n"
    );
    // A bad date in the tsv is an error naming the file and line, before any store exists.
    std::fs::write(
        d.join("hist.commits.tsv"),
        "000000\tc0\tyesterday\tf\tb0\t2\n",
    )
    .unwrap();
    let err = one_line_error(&strata(d, &["--store", "bad", "import", "hist"]), 2);
    assert!(
        err.contains("hist.commits.tsv line 1") && err.contains("yesterday"),
        "{err}"
    );
    assert!(!d.join("bad").exists());
}

#[test]
fn feed_lists_every_write_in_order_with_contents_or_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let put = |doc: &str, content: &[u8], extra: &[&str]| {
        std::fs::write(d.join("in"), content).unwrap();
        let mut args = vec!["put", doc, "in"];
        args.extend_from_slice(extra);
        ok(&strata(d, &args));
    };
    put("cfg.json", b"{\"a\":1}\n", &[]);
    put(
        "notes/a.txt",
        b"hello\nworld\n",
        &["-m", "first", "--author", "ann"],
    );
    put("cfg.json", b"{\"a\":2,\"b\":[1]}\n", &[]);
    put("notes/a.txt", b"hello\nthere\nworld\n", &[]);
    put("bin", &[0xff, 0x00, 0x01], &[]);
    let all = json_lines(&ok(&strata(d, &["feed"])));
    let seen: Vec<(u64, &str, u64)> = all
        .iter()
        .map(|v| {
            (
                v["seq"].as_u64().unwrap(),
                v["doc"].as_str().unwrap(),
                v["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "cfg.json", 1),
            (2, "notes/a.txt", 1),
            (3, "cfg.json", 2),
            (4, "notes/a.txt", 2),
            (5, "bin", 1)
        ]
    );
    assert_eq!(all[1]["author"], "ann");
    assert_eq!(all[1]["message"], "first");
    assert!(all[0].get("content").is_none() && all[0].get("diff").is_none());
    // --since N starts after N; --limit; --doc filters by key prefix.
    let seqs = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["feed"];
        a.extend_from_slice(args);
        json_lines(&ok(&strata(d, &a)))
            .iter()
            .map(|v| v["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&["--since", "3"]), [4, 5]);
    assert_eq!(seqs(&["--since", "1", "--limit", "2"]), [2, 3]);
    assert_eq!(seqs(&["--doc", "notes/"]), [2, 4]);
    assert_eq!(seqs(&["--since", "5"]), Vec::<u64>::new());
    // Contents: text as is, other bytes in base64.
    let with = json_lines(&ok(&strata(d, &["feed", "--with", "content"])));
    assert_eq!(with[3]["content"], "hello\nthere\nworld\n");
    assert_eq!(with[4]["content_base64"], "/wAB");
    // Changes: an RFC 6902 patch for JSON, a unified diff for text, a summary otherwise.
    let diffs = json_lines(&ok(&strata(d, &["feed", "--with", "diff"])));
    assert_eq!(diffs[0]["diff"]["kind"], "json-patch");
    assert_eq!(diffs[0]["diff"]["patch"][0]["op"], "add");
    assert_eq!(diffs[2]["diff"]["patch"][0]["path"], "/a");
    assert_eq!(diffs[2]["diff"]["patch"][1]["path"], "/b");
    let text = diffs[3]["diff"]["text"].as_str().unwrap();
    assert!(
        text.contains("+there\n") && text.contains("--- a/notes/a.txt@1"),
        "{text}"
    );
    assert_eq!(diffs[4]["diff"]["kind"], "binary");
    assert_eq!(diffs[4]["diff"]["new_size"], 3);
    // Bad use is a one-line error.
    one_line_error(&strata(d, &["feed", "--with", "everything"]), 2);
}

#[test]
fn follow_sees_puts_of_other_processes_once_in_order_and_consumers_resume() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("first"), "0\n").unwrap();
    ok(&strata(d, &["put", "doc", "first"]));
    let mut follower = common::command(d)
        .args(["feed", "--follow", "--consumer", "tail"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Writers in other processes, two documents at once: every put must get through
    // while the follower waits.
    let writers: Vec<_> = ["a", "b"]
        .iter()
        .map(|doc| {
            let d = d.to_owned();
            let doc = (*doc).to_owned();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let file = format!("{doc}{i}");
                    std::fs::write(d.join(&file), format!("{doc} {i}\n")).unwrap();
                    ok(&strata(&d, &["put", &doc, &file]));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut lines = Vec::new();
    while lines.len() < 21 {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the follower prints every put within 30 s");
        lines.push(json_lines(&line).remove(0));
    }
    // The follower stores its position once the lines are out (at least once): wait for it.
    let position = || -> u64 {
        let listed = strata(d, &["consumers", "--json"]);
        if !listed.status.success() {
            return 0; // the follower held the store a moment too long; ask again
        }
        json_lines(&String::from_utf8(listed.stdout).unwrap())
            .first()
            .map_or(0, |v| v["position"].as_u64().unwrap())
    };
    let waited = std::time::Instant::now();
    while position() < 21 && waited.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
    reader.join().unwrap();
    let seqs: Vec<u64> = lines.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=21).collect::<Vec<_>>(),
        "in order, no gap, no duplicate"
    );
    for doc in ["a", "b"] {
        let versions: Vec<u64> = lines
            .iter()
            .filter(|v| v["doc"] == doc)
            .map(|v| v["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, (1..=10).collect::<Vec<_>>());
    }
    // The consumer's position was stored once its lines were out; it resumes after it.
    assert_eq!(position(), 21);
    std::fs::write(d.join("more"), "more\n").unwrap();
    ok(&strata(d, &["put", "doc", "more"]));
    let resumed = json_lines(&ok(&strata(d, &["feed", "--consumer", "tail"])));
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0]["seq"], 22);
    assert!(ok(&strata(d, &["feed", "--consumer", "tail"])).is_empty());
    // Reset and remove.
    ok(&strata(d, &["consumers", "--reset", "tail", "--to", "20"]));
    let again = json_lines(&ok(&strata(d, &["feed", "--consumer", "tail"])));
    assert_eq!(again.len(), 2);
    ok(&strata(d, &["consumers", "--remove", "tail"]));
    one_line_error(&strata(d, &["consumers", "--remove", "tail"]), 1);
    let err = one_line_error(&strata(d, &["consumers", "--reset", "x", "--to", "99"]), 2);
    assert!(err.contains("past the last write"), "{err}");
    one_line_error(&strata(d, &["feed", "--consumer", "x", "--since", "3"]), 2);
}

#[test]
fn batch_is_all_or_nothing_and_retried_puts_are_safe() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fx"), "from a file\n").unwrap();
    std::fs::write(
        d.join("b.jsonl"),
        "{\"doc\":\"a\",\"content\":\"one\\n\",\"expect\":0}\n\n\
         {\"doc\":\"b\",\"file\":\"fx\",\"message\":\"m\",\"author\":\"z\"}\n\
         {\"doc\":\"a\",\"content\":\"two\\n\",\"time\":\"2030-01-01\"}\n",
    )
    .unwrap();
    let out = ok(&strata(d, &["batch", "b.jsonl"]));
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.starts_with("a@1 ") && out.contains("b@1 ") && out.contains("a@2 "),
        "{out}"
    );
    let feed = json_lines(&ok(&strata(d, &["feed"])));
    assert_eq!(feed.len(), 3);
    assert_eq!(feed[1]["author"], "z");
    assert_eq!(feed[2]["time"], "2030-01-01T00:00:00Z");
    assert_eq!(ok(&strata(d, &["get", "b"])), "from a file\n");
    // A conflict anywhere stores nothing and names the document and versions.
    let conflict =
        b"{\"doc\":\"c\",\"content\":\"c\"}\n{\"doc\":\"a\",\"content\":\"3\",\"expect\":1}\n";
    let err = one_line_error(&common::strata_stdin(d, &["batch", "-"], Some(conflict)), 2);
    assert!(
        err.contains("'a'") && err.contains("version 1") && err.contains("version 2"),
        "{err}"
    );
    assert_eq!(json_lines(&ok(&strata(d, &["feed"]))).len(), 3);
    one_line_error(&strata(d, &["get", "c"]), 1);
    // Bad lines are refused before the store is touched, naming the line.
    for (input, want) in [
        (&b"{\"doc\":\"a\"}\n"[..], "exactly one of"),
        (
            b"{\"doc\":\"a\",\"content\":\"x\",\"bogus\":1}\n",
            "unknown field",
        ),
        (b"[1]\n", "line 1"),
        (
            b"{\"doc\":\"\",\"content\":\"x\"}\n",
            "invalid document key",
        ),
        (b"\n\n", "no lines"),
    ] {
        let err = one_line_error(&common::strata_stdin(d, &["batch", "-"], Some(input)), 2);
        assert!(err.contains(want), "{err}");
    }
    assert_eq!(json_lines(&ok(&strata(d, &["feed"]))).len(), 3);
    // A retried put (same content, same expected version) reports the version it made.
    std::fs::write(d.join("two"), "two\n").unwrap();
    let again = ok(&strata(d, &["put", "a", "two", "--expect", "1"]));
    assert!(again.starts_with("a@2 "), "{again}");
    assert_eq!(
        json_lines(&ok(&strata(d, &["feed"]))).len(),
        3,
        "nothing written twice"
    );
    std::fs::write(d.join("other"), "other\n").unwrap();
    one_line_error(&strata(d, &["put", "a", "other", "--expect", "1"]), 2);
}

#[test]
fn tags_name_versions_and_never_move_silently() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 1..=3 {
        std::fs::write(d.join("v"), format!("v{i}\n")).unwrap();
        ok(&strata(d, &["put", "doc", "v"]));
    }
    assert_eq!(
        ok(&strata(d, &["tag", "doc@2", "v1.0"])),
        "doc@2 is 'v1.0'\n"
    );
    assert_eq!(ok(&strata(d, &["get", "doc@v1.0"])), "v2\n");
    // Tagging the same version again is fine; another version needs --force.
    ok(&strata(d, &["tag", "doc@2", "v1.0"]));
    let err = one_line_error(&strata(d, &["tag", "doc", "v1.0"]), 2);
    assert!(
        err.contains("--force") && err.contains("version 2"),
        "{err}"
    );
    assert_eq!(ok(&strata(d, &["get", "doc@v1.0"])), "v2\n");
    let moved = ok(&strata(d, &["tag", "doc", "v1.0", "--force"]));
    assert!(moved.contains("from version 2 to 3"), "{moved}");
    // A tag can name the version another tag names; tags work in diff and get --batch.
    ok(&strata(d, &["tag", "doc@-2", "first"]));
    assert_eq!(ok(&strata(d, &["tags"])), "doc@1 first\ndoc@3 v1.0\n");
    let json = json_lines(&ok(&strata(d, &["tags", "doc", "--json"])));
    assert_eq!(json[0]["tag"], "first");
    let diff = ok(&strata(d, &["diff", "doc@first", "doc@v1.0"]));
    assert!(diff.contains("-v1") && diff.contains("+v3"), "{diff}");
    let batch = ok(&common::strata_stdin(
        d,
        &["get", "--batch"],
        Some(b"doc@first\ndoc@nope\n"),
    ));
    assert!(
        batch.contains("v1\n") && batch.ends_with("doc@nope missing\n"),
        "{batch}"
    );
    // Missing tags and bad names are one-line errors; put does not take a tag.
    let err = one_line_error(&strata(d, &["get", "doc@nope"]), 1);
    assert!(err.contains("no tag 'nope'"), "{err}");
    one_line_error(&strata(d, &["tag", "doc", "1.0"]), 2);
    one_line_error(&strata(d, &["tag", "doc@9", "late"]), 1);
    one_line_error(&strata(d, &["put", "doc@first", "v"]), 2);
    // Deleting.
    ok(&strata(d, &["tag", "--delete", "doc", "first"]));
    one_line_error(&strata(d, &["tag", "--delete", "doc", "first"]), 1);
    assert_eq!(ok(&strata(d, &["tags", "doc"])), "doc@3 v1.0\n");
    one_line_error(&strata(d, &["tags", "nodoc"]), 1);
}

#[test]
fn rm_records_a_deletion_that_a_put_revives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (doc, text) in [("d", "a\n"), ("d", "b\n"), ("e", "e\n")] {
        std::fs::write(d.join("in"), text).unwrap();
        ok(&strata(d, &["put", doc, "in"]));
    }
    let out = ok(&strata(d, &["rm", "d"]));
    assert!(out.contains("at version 3"), "{out}");
    let err = one_line_error(&strata(d, &["get", "d"]), 1);
    assert!(
        err.contains("deleted at version 3") && err.contains("'d@2'"),
        "{err}"
    );
    one_line_error(&strata(d, &["get", "d@3"]), 1);
    assert_eq!(ok(&strata(d, &["get", "d@2"])), "b\n");
    assert_eq!(ok(&strata(d, &["ls"])), "e@1\n");
    assert_eq!(ok(&strata(d, &["ls", "--all"])), "d@3 (deleted)\ne@1\n");
    let log = json_lines(&ok(&strata(d, &["log", "d", "--json"])));
    assert_eq!(log[2]["deleted"], true);
    assert!(log[1].get("deleted").is_none());
    let feed = json_lines(&ok(&strata(d, &["feed", "--with", "content"])));
    assert_eq!(feed[3]["deleted"], true);
    assert!(feed[3].get("content").is_none());
    let err = one_line_error(&strata(d, &["rm", "d"]), 1);
    assert!(err.contains("already deleted"), "{err}");
    one_line_error(&strata(d, &["rm", "nope"]), 1);
    // A put revives the document.
    std::fs::write(d.join("in"), "c\n").unwrap();
    assert!(ok(&strata(d, &["put", "d", "in"])).starts_with("d@4 "));
    assert_eq!(ok(&strata(d, &["get", "d"])), "c\n");
    assert_eq!(ok(&strata(d, &["ls"])), "d@4\ne@1\n");
    assert!(ok(&strata(d, &["verify"])).contains("ok"));
}

#[test]
fn prune_drops_old_versions_keeps_the_rest_readable_and_refuses_tags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = |i: usize| (1..=i * 40).map(|n| format!("{n}\n")).collect::<String>();
    for i in 1..=10 {
        std::fs::write(d.join("in"), text(i)).unwrap();
        let time = format!("2024-01-{i:02}");
        ok(&strata(
            d,
            &["put", "--policy", "chain:20", "doc", "in", "--time", &time],
        ));
    }
    ok(&strata(d, &["tag", "doc@2", "old"]));
    let err = one_line_error(&strata(d, &["prune", "doc", "--keep", "4"]), 2);
    assert!(err.contains("'old'") && err.contains("--force"), "{err}");
    assert_eq!(
        json_lines(&ok(&strata(d, &["log", "doc", "--json"]))).len(),
        10
    );
    let out = ok(&strata(d, &["prune", "doc", "--keep", "4", "--force"]));
    assert!(
        out.contains("dropped 6 versions") && out.contains("from version 7"),
        "{out}"
    );
    assert!(out.contains("removed tags old"), "{out}");
    // The kept versions read as before; the dropped ones are gone from log and feed.
    for i in 7..=10 {
        assert_eq!(ok(&strata(d, &["get", &format!("doc@{i}")])), text(i));
    }
    let err = one_line_error(&strata(d, &["get", "doc@6"]), 1);
    assert!(err.contains("pruned") && err.contains("version 7"), "{err}");
    let log = json_lines(&ok(&strata(d, &["log", "doc", "--json"])));
    assert_eq!(log.len(), 4);
    assert_eq!(log[0]["version"], 7);
    let feed: Vec<u64> = json_lines(&ok(&strata(d, &["feed"])))
        .iter()
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(feed, [7, 8, 9, 10]);
    assert!(ok(&strata(d, &["verify"])).contains("ok"));
    assert_eq!(ok(&strata(d, &["tags"])), "");
    // --before drops by time; the newest version always stays.
    let out = ok(&strata(d, &["prune", "doc", "--before", "2024-01-09"]));
    assert!(out.contains("dropped 2 versions"), "{out}");
    let out = ok(&strata(d, &["prune", "doc", "--before", "2030-01-01"]));
    assert!(
        out.contains("dropped 1 version") && out.contains("from version 10"),
        "{out}"
    );
    assert_eq!(ok(&strata(d, &["get", "doc"])), text(10));
    assert!(ok(&strata(d, &["prune", "doc", "--keep", "1"])).contains("nothing to drop"));
    // A put after pruning goes on from the newest version.
    std::fs::write(d.join("in"), "new\n").unwrap();
    assert!(ok(&strata(d, &["put", "doc", "in"])).starts_with("doc@11 "));
    assert!(ok(&strata(d, &["verify"])).contains("ok"));
    // Misuse.
    one_line_error(&strata(d, &["prune", "doc"]), 2);
    one_line_error(&strata(d, &["prune", "doc", "--keep", "0"]), 2);
    one_line_error(&strata(d, &["prune", "nope", "--keep", "1"]), 1);
    one_line_error(&strata(d, &["prune", "doc", "--before", "soon"]), 2);
}

#[test]
fn prune_reclaims_packed_space_by_repacking() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hist = d.join("hist");
    std::fs::create_dir(&hist).unwrap();
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!("entry {i}: {}\n", "x".repeat(i % 50)));
        std::fs::write(hist.join(format!("{i:06}")), &text).unwrap();
    }
    ok(&strata(d, &["import", "hist"]));
    let disk = |d: &std::path::Path| -> u64 {
        let stats: serde_json::Value =
            serde_json::from_str(&ok(&strata(d, &["stats", "--json"]))).unwrap();
        stats["disk_bytes"].as_u64().unwrap()
    };
    let before = disk(d);
    let out = ok(&strata(d, &["prune", "hist", "--keep", "10"]));
    assert!(
        out.contains("dropped 190 versions") && out.contains("repacked"),
        "{out}"
    );
    let after = disk(d);
    assert!(after * 4 < before * 3, "disk {before} -> {after}");
    assert_eq!(ok(&strata(d, &["get", "hist"])), text);
    assert!(ok(&strata(d, &["verify"])).contains("ok"));
    // --no-repack leaves it to a later `strata repack`.
    ok(&strata(d, &["--store", "s2", "import", "hist"]));
    let out = ok(&strata(
        d,
        &[
            "--store",
            "s2",
            "prune",
            "hist",
            "--keep",
            "10",
            "--no-repack",
        ],
    ));
    assert!(!out.contains("repacked"), "{out}");
}

#[test]
fn a_recorded_retention_rule_applies_to_every_later_put() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("in"), "0\n").unwrap();
    ok(&strata(d, &["put", "doc", "in"]));
    assert!(ok(&strata(d, &["retention"])).contains("none"));
    let set = ok(&strata(d, &["retention", "--keep", "3"]));
    assert!(set.contains("newest 3 versions"), "{set}");
    for i in 1..=6 {
        std::fs::write(d.join("in"), format!("{i}\n")).unwrap();
        ok(&strata(d, &["put", "doc", "in"]));
    }
    let versions = |d: &std::path::Path| -> Vec<u64> {
        json_lines(&ok(&strata(d, &["log", "doc", "--json"])))
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(versions(d), [5, 6, 7]);
    // A tagged version is spared, with the versions after it.
    ok(&strata(d, &["tag", "doc@5", "keep-me"]));
    for i in 7..=8 {
        std::fs::write(d.join("in"), format!("{i}\n")).unwrap();
        ok(&strata(d, &["put", "doc", "in"]));
    }
    assert_eq!(versions(d), [5, 6, 7, 8, 9]);
    assert_eq!(ok(&strata(d, &["get", "doc@keep-me"])), "4\n");
    // Off: every version is kept again.
    assert!(ok(&strata(d, &["retention", "--off"])).contains("none"));
    std::fs::write(d.join("in"), "9\n").unwrap();
    ok(&strata(d, &["put", "doc", "in"]));
    assert_eq!(versions(d), [5, 6, 7, 8, 9, 10]);
    assert!(ok(&strata(d, &["verify"])).contains("ok"));
    one_line_error(&strata(d, &["retention", "--keep", "0"]), 2);
    one_line_error(&strata(d, &["retention", "--keep", "2", "--off"]), 2);
}

#[test]
fn a_second_process_waits_for_the_store_then_names_its_holder() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("in"), "base\n").unwrap();
    ok(&strata(d, &["put", "doc", "in"]));
    // An import from a pipe holds the store while it waits for more input.
    let mut holder = common::command(d)
        .args(["import", "-", "--batch", "1000"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut pipe = holder.stdin.take().unwrap();
    pipe.write_all(b"put 4 other\nabc\n\n").unwrap();
    pipe.flush().unwrap();
    // Wait until the importer has opened the store (it names itself there).
    let pid = holder.id();
    let named = d.join(".strata/strata-pid");
    let waited = std::time::Instant::now();
    while std::fs::read_to_string(&named)
        .ok()
        .as_deref()
        .map(str::trim)
        != Some(pid.to_string().as_str())
    {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(20),
            "the importer never opened the store"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A short wait fails, naming the process.
    let started = std::time::Instant::now();
    let err = one_line_error(&strata(d, &["--wait", "0.5", "get", "doc"]), 2);
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    assert!(
        err.contains(&format!("in use by process {pid}")) && err.contains("--wait"),
        "{err}"
    );
    // A reader with the default wait gets through once the importer is done.
    let reader = {
        let d = d.to_owned();
        std::thread::spawn(move || strata(&d, &["get", "other"]))
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(pipe);
    assert!(holder.wait().unwrap().success());
    assert_eq!(ok(&reader.join().unwrap()), "abc\n");
}

#[test]
fn four_processes_with_expected_versions_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("in"), "").unwrap();
    ok(&strata(d, &["put", "counter", "in"]));
    const PROCS: usize = 4;
    const UPDATES: usize = 5;
    let workers: Vec<_> = (0..PROCS)
        .map(|p| {
            let d = d.to_owned();
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for u in 0..UPDATES {
                    loop {
                        let log = ok(&strata(&d, &["log", "counter", "--json"]));
                        let head = json_lines(&log).last().unwrap()["version"]
                            .as_u64()
                            .unwrap();
                        let mut content = strata(&d, &["get", &format!("counter@{head}")]).stdout;
                        content.extend_from_slice(format!("p{p} u{u}\n").as_bytes());
                        let out = common::strata_stdin(
                            &d,
                            &["put", "counter", "--expect", &head.to_string()],
                            Some(&content),
                        );
                        if out.status.success() {
                            break;
                        }
                        let err = one_line_error(&out, 2);
                        assert!(err.contains("conflict on 'counter'"), "{err}");
                        conflicts += 1;
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let log = json_lines(&ok(&strata(d, &["log", "counter", "--json"])));
    assert_eq!(
        log.len(),
        1 + PROCS * UPDATES,
        "no update lost ({conflicts} conflicts)"
    );
    for (i, v) in log.iter().enumerate() {
        assert_eq!(v["version"], i as u64 + 1);
    }
    let text = ok(&strata(d, &["get", "counter"]));
    let lines: std::collections::HashSet<&str> = text.lines().collect();
    assert_eq!(
        (lines.len(), text.lines().count()),
        (PROCS * UPDATES, PROCS * UPDATES)
    );
    let seqs: Vec<u64> = json_lines(&ok(&strata(d, &["feed"])))
        .iter()
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=(1 + PROCS * UPDATES) as u64).collect::<Vec<_>>());
}

/// Runs git in `dir` (None when git is not installed).
fn git(dir: &std::path::Path, args: &[&str], stdin: Option<&[u8]>) -> Option<std::process::Output> {
    use std::io::Write;
    let mut child = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out)
}

#[test]
fn export_to_git_and_back_keeps_every_version_and_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if git(d, &["--version"], None).is_none() {
        eprintln!("git not installed (.ci/run installs it); skipping");
        return;
    }
    let put = |doc: &str, content: &[u8], extra: &[&str]| {
        std::fs::write(d.join("in"), content).unwrap();
        let mut args = vec!["put", doc, "in"];
        args.extend_from_slice(extra);
        ok(&strata(d, &args));
    };
    put(
        "notes/a b.md",
        b"one\n",
        &[
            "-m",
            "first",
            "--author",
            "Ann <ann@example.org>",
            "--time",
            "2024-01-01T10:00:00Z",
        ],
    );
    put(
        "data/x.json",
        b"{\"a\": 1}\n",
        &["--author", "bob", "--time", "2024-01-02T00:00:00Z"],
    );
    put(
        "notes/a b.md",
        b"two\n",
        &[
            "-m",
            "second\n\nwith a body",
            "--time",
            "2024-01-03T11:30:00Z",
        ],
    );
    put(
        "bin/raw",
        &[0, 159, 146, 150, 255],
        &["--time", "2024-01-04T00:00:00Z"],
    );
    put("notes/a b.md", b"", &["--time", "2024-01-05T00:00:00Z"]);
    ok(&strata(d, &["rm", "data/x.json"]));
    let stream = strata(d, &["export"]);
    assert!(stream.status.success());
    git(d, &["init", "-q", "--bare", "repo.git"], None).unwrap();
    git(
        &d.join("repo.git"),
        &["fast-import", "--quiet"],
        Some(&stream.stdout),
    )
    .unwrap();
    let log = git(
        &d.join("repo.git"),
        &["log", "--reverse", "--format=%an|%ae|%at|%s", "main"],
        None,
    )
    .unwrap();
    let log = String::from_utf8(log.stdout).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6, "{log}");
    assert_eq!(lines[0], "Ann|ann@example.org|1704103200|first");
    assert!(lines[1].starts_with("bob||1704153600"), "{log}");
    let show = git(&d.join("repo.git"), &["show", "main~3:notes/a b.md"], None).unwrap();
    assert_eq!(show.stdout, b"two\n");
    // And back: git fast-export into a new store, byte-identical, with the metadata.
    let back = git(&d.join("repo.git"), &["fast-export", "--all"], None).unwrap();
    let out = ok(&common::strata_stdin(
        d,
        &["--store", "back", "import", "--git-stream", "-"],
        Some(&back.stdout),
    ));
    assert!(out.contains("5 versions and 1 deletion"), "{out}");
    for (doc, versions) in [("notes/a b.md", 3), ("bin/raw", 1)] {
        for v in 1..=versions {
            let spec = format!("{doc}@{v}");
            assert_eq!(
                strata(d, &["get", &spec]).stdout,
                strata(d, &["--store", "back", "get", &spec]).stdout,
                "{spec}"
            );
        }
    }
    let keep = |store: &str,
                doc: &str|
     -> Vec<(
        serde_json::Value,
        serde_json::Value,
        serde_json::Value,
        serde_json::Value,
    )> {
        json_lines(&ok(&strata(d, &["--store", store, "log", doc, "--json"])))
            .into_iter()
            .map(|v| {
                (
                    v["version"].clone(),
                    v["time"].clone(),
                    v["author"].clone(),
                    v["message"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        keep(".strata", "notes/a b.md"),
        keep("back", "notes/a b.md")
    );
    assert_eq!(keep(".strata", "bin/raw"), keep("back", "bin/raw"));
    let err = one_line_error(&strata(d, &["--store", "back", "get", "data/x.json"]), 1);
    assert!(err.contains("deleted"), "{err}");
    // Exporting one document only; a missing one is an error.
    let one = String::from_utf8_lossy(&strata(d, &["export", "bin/raw"]).stdout).into_owned();
    assert_eq!(
        one.matches("\ncommit ").count() + usize::from(one.starts_with("commit ")),
        1
    );
    one_line_error(&strata(d, &["export", "nope"]), 1);
}

#[test]
fn export_of_a_damaged_store_skips_and_names_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An imported history: its objects sit in one pack file.
    let hist = d.join("hist");
    std::fs::create_dir(&hist).unwrap();
    // Each version adds a few hundred bytes that do not compress, so the pack holds many
    // objects, some past the damage below.
    let mut text = String::new();
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for i in 0..60 {
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text.push_str(&format!("{i} {x:016x} {:016x}\n", x.rotate_left(17)));
        }
        std::fs::write(hist.join(format!("{i:06}")), &text).unwrap();
    }
    ok(&strata(d, &["import", "hist"]));
    std::fs::write(d.join("in"), "safe\n").unwrap();
    ok(&strata(d, &["put", "other", "in"]));
    // Damage the middle of the import's pack file (the store still opens; only reads of the
    // objects there fail).
    {
        let pack = std::fs::read_dir(d.join(".strata/packs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "pack"))
            .expect("the import wrote a pack file");
        let mut bytes = std::fs::read(&pack).unwrap();
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 64] {
            *b ^= 0x5a;
        }
        std::fs::write(&pack, bytes).unwrap();
    }
    let out = strata(d, &["export"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("export skipped hist@"), "{err}");
    // What could be read is there, loadable.
    let stream = String::from_utf8_lossy(&out.stdout);
    assert!(
        stream.contains("safe\n") && stream.ends_with("done\n"),
        "{stream}"
    );
}

#[test]
fn a_git_stream_whose_dates_go_back_is_refused_unless_raised() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stream = b"blob\nmark :1\ndata 2\na\n\
commit refs/heads/main\nmark :2\nauthor A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\ndata 1\n1\nM 100644 :1 f.txt\n\n\
blob\nmark :3\ndata 2\nb\n\
commit refs/heads/main\nmark :4\nauthor A <a@x> 1600000000 +0000\ncommitter A <a@x> 1600000000 +0000\ndata 1\n2\nfrom :2\nM 100644 :3 f.txt\n\n";
    let err = one_line_error(
        &common::strata_stdin(d, &["import", "--git-stream", "-"], Some(stream)),
        2,
    );
    assert!(
        err.contains("'f.txt'") && err.contains("--raise-times"),
        "{err}"
    );
    assert!(!d.join(".strata").exists());
    let out = ok(&common::strata_stdin(
        d,
        &["import", "--git-stream", "-", "--raise-times"],
        Some(stream),
    ));
    assert!(out.contains("2 versions"), "{out}");
    let log = json_lines(&ok(&strata(d, &["log", "f.txt", "--json"])));
    assert_eq!(log[1]["time"], log[0]["time"]);
}
