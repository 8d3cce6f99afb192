//! `strata serve`: the HTTP API against a real server process on a loopback port.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use common::{Server, strata};

/// A response's status and body, whether or not the status is an error.
fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, ureq::Response) {
    match result {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => panic!("transport error: {e}"),
    }
}

fn body(r: ureq::Response) -> String {
    r.into_string().unwrap()
}

fn json(r: ureq::Response) -> serde_json::Value {
    serde_json::from_str(&r.into_string().unwrap()).unwrap()
}

fn put(s: &Server, path: &str, content: &[u8]) -> (u16, serde_json::Value) {
    let (code, r) = answer(ureq::put(&s.url(path)).send_bytes(content));
    (code, json(r))
}

fn get(s: &Server, path: &str) -> (u16, ureq::Response) {
    answer(ureq::get(&s.url(path)).call())
}

fn error_code(r: ureq::Response) -> (String, String) {
    let v = json(r);
    (
        v["error"]["code"].as_str().unwrap().to_owned(),
        v["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn documents_put_read_and_list_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    // A key with slashes, created with expect=0 (must not exist).
    let (code, v) = put(&s, "/v1/docs/notes/a.txt?expect=0&message=first", b"one\n");
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        (v["doc"].as_str(), v["version"].as_u64()),
        (Some("notes/a.txt"), Some(1))
    );
    let first_id = v["id"].as_str().unwrap().to_owned();
    // If-Match carries the expected version too.
    let (code, r) = answer(
        ureq::put(&s.url("/v1/docs/notes/a.txt"))
            .set("If-Match", "\"1\"")
            .send_bytes(b"one\ntwo\n"),
    );
    assert_eq!(code, 201);
    assert_eq!(json(r)["version"], 2);
    // A stale expected version is a conflict naming the current one; nothing is stored.
    let (code, r) = answer(ureq::put(&s.url("/v1/docs/notes/a.txt?expect=1")).send_bytes(b"x"));
    assert_eq!(code, 409);
    let (c, m) = error_code(r);
    assert_eq!(c, "conflict");
    assert!(m.contains("version 2"), "{m}");
    // Latest, a version, a relative version, by content id; ETag is the content id.
    let (code, r) = get(&s, "/v1/docs/notes/a.txt");
    assert_eq!(code, 200);
    assert_eq!(r.header("x-strata-version"), Some("2"));
    assert_eq!(body(r), "one\ntwo\n");
    let (_, r) = get(&s, "/v1/docs/notes/a.txt?at=1");
    assert_eq!(r.header("etag"), Some(format!("\"{first_id}\"").as_str()));
    assert_eq!(body(r), "one\n");
    assert_eq!(body(get(&s, "/v1/docs/notes/a.txt?at=-1").1), "one\n");
    assert_eq!(
        body(get(&s, &format!("/v1/docs/notes/a.txt?at={first_id}")).1),
        "one\n"
    );
    // A time names the version newest then; before the first version there is none.
    assert_eq!(
        body(get(&s, "/v1/docs/notes/a.txt?at=2999-01-01").1),
        "one\ntwo\n"
    );
    let (code, r) = get(&s, "/v1/docs/notes/a.txt?at=2000-01-01");
    assert_eq!(code, 404);
    assert!(error_code(r).1.contains("did not exist yet"));
    // A log is not written to; If-Match must be a version and agree with expect.
    let (code, r) = answer(ureq::put(&s.url("/v1/docs/notes/a.txt/log")).send_bytes(b"x"));
    assert_eq!((code, error_code(r).0), (405, "method_not_allowed".into()));
    let (code, r) = answer(
        ureq::put(&s.url("/v1/docs/notes/a.txt"))
            .set("If-Match", "\"abc\"")
            .send_bytes(b"x"),
    );
    assert_eq!(code, 400);
    assert!(error_code(r).1.contains("not a version number"));
    let (code, r) = answer(
        ureq::put(&s.url("/v1/docs/notes/a.txt?expect=2"))
            .set("If-Match", "1")
            .send_bytes(b"x"),
    );
    assert_eq!(code, 400);
    assert!(error_code(r).1.contains("disagree"));
    // If-None-Match with the current ETag: 304, no body.
    let (code, _) = answer(
        ureq::get(&s.url("/v1/docs/notes/a.txt?at=1"))
            .set("If-None-Match", &format!("\"{first_id}\""))
            .call(),
    );
    assert_eq!(code, 304);
    // Missing things: the CLI's messages, as JSON with a code.
    let (code, r) = get(&s, "/v1/docs/notes/a.txt?at=9");
    assert_eq!(code, 404);
    assert_eq!(
        error_code(r),
        ("not_found".into(), "no version 'notes/a.txt@9'".into())
    );
    let (code, r) = get(&s, "/v1/docs/none");
    assert_eq!((code, error_code(r).1), (404, "no document 'none'".into()));
    let (code, r) = get(&s, "/v1/docs/notes/a.txt?at=0");
    assert_eq!((code, error_code(r).0), (400, "bad_request".into()));
    // The log, as the CLI's `log --json` lines in an array.
    let (code, r) = get(&s, "/v1/docs/notes/a.txt/log");
    assert_eq!(code, 200);
    let log = json(r);
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[0]["message"], "first");
    // Paged: after a version, at most some.
    let page = json(get(&s, "/v1/docs/notes/a.txt/log?after=1&limit=5").1);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["version"], 2);
    let page = json(get(&s, "/v1/docs/notes/a.txt/log?limit=1").1);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["version"], 1);
    // A key ending in "/log" is written with its slash escaped.
    assert_eq!(put(&s, "/v1/docs/x%2Flog", b"L").0, 201);
    assert_eq!(body(get(&s, "/v1/docs/x%2Flog").1), "L");
    // Listing: prefix filter and paging.
    for k in ["p/3", "p/1", "p/2"] {
        assert_eq!(put(&s, &format!("/v1/docs/{k}"), k.as_bytes()).0, 201);
    }
    let page = json(get(&s, "/v1/docs?prefix=p/&limit=2").1);
    let keys: Vec<_> = page["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["doc"].clone())
        .collect();
    assert_eq!(keys, ["p/1", "p/2"]);
    assert_eq!(page["next"], "p/2");
    let rest = json(get(&s, "/v1/docs?prefix=p/&limit=2&after=p/2").1);
    assert_eq!(rest["docs"][0]["doc"], "p/3");
    assert!(rest["next"].is_null());
    // Deleting records a tombstone; the listing hides it unless all=true.
    let (code, r) = answer(ureq::delete(&s.url("/v1/docs/p/3")).call());
    assert_eq!((code, json(r)["version"].as_u64()), (200, Some(2)));
    assert_eq!(
        json(get(&s, "/v1/docs?prefix=p/").1)["docs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        json(get(&s, "/v1/docs?prefix=p/&all=true").1)["docs"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let (code, r) = get(&s, "/v1/docs/p/3");
    assert_eq!(code, 404);
    assert!(error_code(r).1.contains("was deleted at version 2"));
    let (code, r) = answer(ureq::delete(&s.url("/v1/docs/p/3")).call());
    assert_eq!(code, 404);
    assert_eq!(error_code(r).1, "'p/3' is already deleted (at version 2)");
    // The CLI sees everything the server acknowledged, once the server is gone.
    let (status, out) = s.terminate();
    assert!(status.success(), "{status:?}");
    assert!(out.contains("stopped"), "{out}");
    let log = strata(dir.path(), &["log", "notes/a.txt"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 2);
}

#[test]
fn diffs_feed_tags_stats_and_verify_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    put(&s, "/v1/docs/cfg.json", br#"{"a":1,"b":[1,2]}"#);
    put(&s, "/v1/docs/cfg.json", br#"{"a":2,"b":[1,2]}"#);
    put(&s, "/v1/docs/t.txt", b"one\ntwo\n");
    put(&s, "/v1/docs/t.txt", b"one\n2\n");
    // Diffs in every format the CLI has.
    let (code, r) = get(&s, "/v1/diff?a=t.txt@1&b=t.txt&format=unified");
    assert_eq!(code, 200);
    let text = body(r);
    assert!(text.contains("-two\n+2\n"), "{text}");
    let patch = json(get(&s, "/v1/diff?a=cfg.json@1&b=cfg.json&format=json-patch").1);
    assert_eq!(
        patch,
        serde_json::json!([{"op": "replace", "path": "/a", "value": 2}])
    );
    let (code, r) = get(&s, "/v1/diff?a=cfg.json@1&b=cfg.json&format=json");
    assert_eq!(code, 200);
    assert_eq!(json(r)["kind"], "json");
    // A plain line diff even for JSON, git's --stat view, and words marked in lines.
    let lines = body(get(&s, "/v1/diff?a=cfg.json@1&b=cfg.json&format=lines").1);
    assert!(lines.contains("-{\"a\":1,\"b\":[1,2]}"), "{lines}");
    let stat = body(get(&s, "/v1/diff?a=t.txt@1&b=t.txt&format=stat").1);
    assert!(stat.contains("1 insertion(+), 1 deletion(-)"), "{stat}");
    let words = body(get(&s, "/v1/diff?a=t.txt@1&b=t.txt&format=word").1);
    assert!(words.contains("[-two-]{+2+}"), "{words}");
    let (code, r) = get(&s, "/v1/diff?a=t.txt@1&b=t.txt&format=json-patch");
    assert_eq!(code, 400);
    assert!(error_code(r).1.contains("not JSON"));
    let (code, r) = get(&s, "/v1/diff?a=t.txt@1");
    assert_eq!((code, error_code(r).0), (400, "bad_request".into()));
    let (code, _) = get(&s, "/v1/diff?a=t.txt@1&b=t.txt&format=side");
    assert_eq!(code, 400);
    // The feed: from a position, in pages.
    let feed = json(get(&s, "/v1/feed?since=1&limit=2").1);
    let seqs: Vec<_> = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!((seqs, feed["last"].as_u64()), (vec![2, 3], Some(3)));
    // A long poll returns when a put lands.
    let poll = {
        let url = s.url("/v1/feed?since=4&wait=20");
        std::thread::spawn(move || json(ureq::get(&url).call().unwrap()))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    put(&s, "/v1/docs/late", b"5");
    let got = poll.join().unwrap();
    assert_eq!(got["entries"][0]["doc"], "late");
    assert_eq!(got["entries"][0]["seq"], 5);
    // An empty long poll ends at its wait.
    assert_eq!(
        json(get(&s, "/v1/feed?since=5&wait=0.2").1)["entries"],
        serde_json::json!([])
    );
    // Tags: create, list, move only with force, delete.
    let (code, _) = answer(ureq::post(&s.url("/v1/tags?spec=t.txt@1&name=v1")).call());
    assert_eq!(code, 200);
    assert_eq!(body(get(&s, "/v1/docs/t.txt?at=v1").1), "one\ntwo\n");
    let (code, _) = answer(ureq::post(&s.url("/v1/tags?spec=t.txt@2&name=v1")).call());
    assert_eq!(code, 400);
    let (code, _) = answer(ureq::post(&s.url("/v1/tags?spec=t.txt@2&name=v1&force=true")).call());
    assert_eq!(code, 200);
    let tags = json(get(&s, "/v1/tags?doc=t.txt").1);
    assert_eq!(tags[0]["tag"], "v1");
    assert_eq!(tags[0]["version"], 2);
    let (code, _) = answer(ureq::delete(&s.url("/v1/tags?doc=t.txt&name=v1")).call());
    assert_eq!(code, 200);
    let (code, _) = answer(ureq::delete(&s.url("/v1/tags?doc=t.txt&name=v1")).call());
    assert_eq!(code, 404);
    // Stats and verify.
    let stats = json(get(&s, "/v1/stats").1);
    assert_eq!(
        (stats["documents"].as_u64(), stats["versions"].as_u64()),
        (Some(3), Some(5))
    );
    let (code, r) = answer(ureq::post(&s.url("/v1/verify")).call());
    assert_eq!(code, 200);
    assert_eq!(json(r)["problems"], serde_json::json!([]));
    // Unknown endpoints and wrong numbers are JSON errors too.
    let (code, r) = get(&s, "/v1/anything");
    assert_eq!((code, error_code(r).0), (404, "not_found".into()));
    // Outside the API a missing page is a page.
    let (code, r) = get(&s, "/v2/anything");
    assert_eq!(code, 404);
    assert!(body(r).contains("no such page"));
    let (code, r) = get(&s, "/v1/feed?since=x");
    assert_eq!((code, error_code(r).0), (400, "bad_request".into()));
}

#[test]
fn the_event_stream_sends_each_durable_version_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    put(&s, "/v1/docs/a", b"1");
    let url = s.url("/v1/feed/stream?since=0");
    let reader = std::thread::spawn(move || {
        let r = ureq::get(&url).call().unwrap();
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        let mut lines = BufReader::new(r.into_reader()).lines();
        let mut events = Vec::new();
        while events.len() < 4 {
            let line = lines.next().unwrap().unwrap();
            if let Some(data) = line.strip_prefix("data: ") {
                events.push(serde_json::from_str::<serde_json::Value>(data).unwrap());
            }
        }
        events
    });
    for i in 2..=4 {
        put(&s, "/v1/docs/a", i.to_string().as_bytes());
    }
    let events = reader.join().unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e["seq"].as_u64().unwrap(), e["version"].as_u64().unwrap()))
        .collect();
    assert_eq!(seen, [(1, 1), (2, 2), (3, 3), (4, 4)]);
    // Last-Event-ID resumes after the given position.
    let r = ureq::get(&s.url("/v1/feed/stream"))
        .set("Last-Event-ID", "3")
        .call()
        .unwrap();
    let mut lines = BufReader::new(r.into_reader()).lines();
    let first = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(id) = line.strip_prefix("id: ") {
            break id.to_owned();
        }
    };
    assert_eq!(first, "4");
}

#[test]
fn tokens_separate_readers_writers_and_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "read-only reader-1\nread-write writer-1\n").unwrap();
    let s = Server::start(dir.path(), &["--token-file", tokens.to_str().unwrap()]);
    let (code, r) = answer(ureq::put(&s.url("/v1/docs/a")).send_bytes(b"x"));
    assert_eq!(code, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let (code, r) = answer(
        ureq::put(&s.url("/v1/docs/a"))
            .set("Authorization", "Bearer reader-1")
            .send_bytes(b"x"),
    );
    assert_eq!((code, error_code(r).0), (403, "forbidden".into()));
    let (code, _) = answer(
        ureq::put(&s.url("/v1/docs/a"))
            .set("Authorization", "Bearer writer-1")
            .send_bytes(b"x"),
    );
    assert_eq!(code, 201);
    let (code, r) = answer(
        ureq::get(&s.url("/v1/docs/a"))
            .set("Authorization", "Bearer reader-1")
            .call(),
    );
    assert_eq!((code, body(r)), (200, "x".into()));
    let (code, _) = answer(
        ureq::get(&s.url("/v1/docs/a"))
            .set("Authorization", "Bearer nope")
            .call(),
    );
    assert_eq!(code, 401);
    drop(s);
    // Without tokens, only loopback addresses are served: one line, exit 2, nothing made.
    let out = strata(
        dir.path(),
        &["--store", "other", "serve", "--listen", "0.0.0.0:0"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--token-file"), "{err}");
    let out = strata(dir.path(), &["serve", "--listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address"));
}

#[test]
fn content_over_the_limit_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--max-size", "1K"]);
    let (code, r) = answer(ureq::put(&s.url("/v1/docs/big")).send_bytes(&[b'x'; 2000]));
    assert_eq!((code, error_code(r).0), (413, "too_large".into()));
    assert_eq!(get(&s, "/v1/docs/big").0, 404);
    assert_eq!(put(&s, "/v1/docs/big", &[b'x'; 1024]).0, 201);
}

/// Concurrent puts from many clients, each acknowledged one read back; the same expected
/// version from two writers: exactly one wins.
#[test]
fn concurrent_puts_are_all_kept_and_expected_versions_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let base = s.base.clone();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let base = base.clone();
            std::thread::spawn(move || {
                for i in 1..=10u64 {
                    let url = format!("{base}/v1/docs/w{w}?expect={}", i - 1);
                    let r = ureq::put(&url)
                        .send_bytes(format!("{w}:{i}").as_bytes())
                        .unwrap();
                    assert_eq!(r.status(), 201);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for w in 0..16 {
        for i in 1..=10 {
            assert_eq!(
                body(get(&s, &format!("/v1/docs/w{w}?at={i}")).1),
                format!("{w}:{i}")
            );
        }
    }
    put(&s, "/v1/docs/race", b"0");
    let racers: Vec<_> = (0..8)
        .map(|r| {
            let url = format!("{base}/v1/docs/race?expect=1");
            std::thread::spawn(move || {
                answer(ureq::put(&url).send_bytes(format!("r{r}").as_bytes())).0
            })
        })
        .collect();
    let codes: Vec<u16> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 7, "{codes:?}");
}

/// Eight writers putting to `{prefix}/w0` .. `w7` until the server stops answering; each
/// returns the puts it saw acknowledged: (document, version, content).
fn writers(base: &str, prefix: &str) -> Vec<std::thread::JoinHandle<Vec<(String, u64, String)>>> {
    (0..8)
        .map(|w| {
            let (base, doc) = (base.to_owned(), format!("{prefix}/w{w}"));
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0.. {
                    let content = format!("{doc} put {i}\n");
                    match ureq::put(&format!("{base}/v1/docs/{doc}")).send_bytes(content.as_bytes())
                    {
                        Ok(r) => {
                            let v: serde_json::Value =
                                serde_json::from_str(&r.into_string().unwrap()).unwrap();
                            acked.push((doc.clone(), v["version"].as_u64().unwrap(), content));
                        }
                        // The server is gone (killed or stopped): no more answers.
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect()
}

/// Joins `writers` and checks through the CLI that every acknowledged put is in the store
/// in `dir`, byte for byte, and that the store verifies.
fn acknowledged_puts_are_stored(
    dir: &std::path::Path,
    writers: Vec<std::thread::JoinHandle<Vec<(String, u64, String)>>>,
) {
    let acked: Vec<_> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(!acked.is_empty(), "no put was acknowledged");
    for (doc, version, content) in &acked {
        let out = strata(dir, &["get", &format!("{doc}@{version}")]);
        assert!(
            out.status.success(),
            "acknowledged {doc}@{version} is gone: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), *content);
    }
    let verify = strata(dir, &["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// SIGKILL under load: every put the server acknowledged is in the store afterwards.
#[test]
fn a_server_killed_under_load_keeps_every_acknowledged_put() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3u64 {
        let mut s = Server::start(dir.path(), &[]);
        let load = writers(&s.base, &format!("r{round}"));
        std::thread::sleep(std::time::Duration::from_millis(300 + 150 * round));
        s.child.kill().unwrap(); // SIGKILL
        s.child.wait().unwrap();
        acknowledged_puts_are_stored(dir.path(), load);
    }
}

/// The API against a reference model: random puts (with and without expected versions),
/// deletions and reads of any version, checked step by step.
#[test]
fn the_api_agrees_with_a_reference_model() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let steps: usize = std::env::var("STRATA_SERVE_MODEL_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    // The model: each document's versions (None: a deletion).
    let mut model: BTreeMap<String, Vec<Option<Vec<u8>>>> = BTreeMap::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let words = ["alpha", "beta", "gamma", "{\"k\": 1}", "line\nbreak", ""];
    for step in 0..steps {
        let doc = format!("d/{}", next(5));
        let versions = model.entry(doc.clone()).or_default();
        match next(10) {
            0..=4 => {
                let content =
                    format!("{} {step}\n", words[next(words.len() as u64) as usize]).into_bytes();
                let stale = next(4) == 0 && !versions.is_empty();
                let expect = if stale {
                    versions.len() as u64 - 1
                } else {
                    versions.len() as u64
                };
                let (code, v) = put(&s, &format!("/v1/docs/{doc}?expect={expect}"), &content);
                if stale {
                    assert_eq!(code, 409, "step {step}: {v}");
                } else {
                    assert_eq!(
                        (code, v["version"].as_u64()),
                        (201, Some(versions.len() as u64 + 1)),
                        "step {step}"
                    );
                    versions.push(Some(content));
                }
            }
            5 => {
                let (code, _) = answer(ureq::delete(&s.url(&format!("/v1/docs/{doc}"))).call());
                if versions.last().is_some_and(Option::is_some) {
                    assert_eq!(code, 200, "step {step}");
                    versions.push(None);
                } else {
                    assert_eq!(code, 404, "step {step}");
                }
            }
            _ => {
                let n = next(versions.len() as u64 + 2);
                let (code, r) = if n == 0 {
                    get(&s, &format!("/v1/docs/{doc}"))
                } else {
                    get(&s, &format!("/v1/docs/{doc}?at={n}"))
                };
                let want = if n == 0 {
                    versions.last()
                } else {
                    versions.get(n as usize - 1)
                };
                match want {
                    Some(Some(content)) => {
                        assert_eq!(code, 200, "step {step}");
                        let mut got = Vec::new();
                        r.into_reader().read_to_end(&mut got).unwrap();
                        assert_eq!(&got, content, "step {step}");
                    }
                    _ => assert_eq!(code, 404, "step {step}"),
                }
            }
        }
    }
    // The listing and every log agree with the model.
    let listed = json(get(&s, "/v1/docs?prefix=d/&all=true").1);
    for d in listed["docs"].as_array().unwrap() {
        let key = d["doc"].as_str().unwrap();
        let versions = &model[key];
        assert_eq!(d["version"].as_u64(), Some(versions.len() as u64));
        assert_eq!(
            d["deleted"].as_bool(),
            Some(versions.last().unwrap().is_none())
        );
        let log = json(get(&s, &format!("/v1/docs/{key}/log")).1);
        assert_eq!(log.as_array().unwrap().len(), versions.len());
    }
    let non_empty = model.values().filter(|v| !v.is_empty()).count();
    assert_eq!(listed["docs"].as_array().unwrap().len(), non_empty);
}

/// A client that stops sending its upload gets 408 after --timeout, and nothing is stored.
#[test]
fn a_stalled_upload_times_out_and_stores_nothing() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--timeout", "1"]);
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(
        b"PUT /v1/docs/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part",
    )
    .unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut conn, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"timeout\""), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(get(&s, "/v1/docs/slow").0, 404);
    // A bad --timeout is refused.
    let out = common::strata(dir.path(), &["--store", "other", "serve", "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

/// SIGTERM under load: the server answers what is in flight, exits 0 and says so, and
/// every put it acknowledged is in the store.
#[test]
fn a_server_stopped_under_load_finishes_what_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let load = writers(&s.base, "t");
    std::thread::sleep(std::time::Duration::from_millis(400));
    let (status, out) = s.terminate();
    assert!(status.success(), "{status:?}");
    assert!(out.contains("stopped"), "{out}");
    acknowledged_puts_are_stored(dir.path(), load);
}

/// A batch: all or nothing, consecutive feed positions, durable when answered.
#[test]
fn batches_store_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let lines = concat!(
        r#"{"doc": "b/1", "content": "one\n", "message": "m"}"#,
        "\n",
        r#"{"doc": "b/2", "content": "two\n", "expect": 0}"#,
        "\n",
        r#"{"doc": "b/1", "content": "one more\n"}"#,
        "\n"
    );
    let (code, r) = answer(ureq::post(&s.url("/v1/batch")).send_bytes(lines.as_bytes()));
    assert_eq!(code, 201);
    let got: Vec<(String, u64, u64)> = json(r)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = |k: &str| e[k].as_u64().unwrap();
            (
                e["doc"].as_str().unwrap().to_owned(),
                n("version"),
                n("seq"),
            )
        })
        .collect();
    let want = [("b/1", 1, 1), ("b/2", 1, 2), ("b/1", 2, 3)].map(|(d, v, q)| (d.to_owned(), v, q));
    assert_eq!(got, want);
    assert_eq!(body(get(&s, "/v1/docs/b/1").1), "one more\n");
    // A conflict on one line stores nothing and names the document.
    let conflicting = concat!(
        r#"{"doc": "b/3", "content": "x"}"#,
        "\n",
        r#"{"doc": "b/2", "content": "y", "expect": 0}"#,
        "\n"
    );
    let (code, r) = answer(ureq::post(&s.url("/v1/batch")).send_bytes(conflicting.as_bytes()));
    assert_eq!(code, 409);
    assert!(error_code(r).1.contains("'b/2'"));
    assert_eq!(get(&s, "/v1/docs/b/3").0, 404);
    // Files on the server are not read; a bad line is named; an empty batch is refused.
    let (code, r) = answer(
        ureq::post(&s.url("/v1/batch")).send_bytes(br#"{"doc": "x", "file": "/etc/passwd"}"#),
    );
    assert_eq!(code, 400);
    assert!(error_code(r).1.contains("file on the server"));
    let (code, r) = answer(ureq::post(&s.url("/v1/batch")).send_bytes(b"not json\n"));
    assert_eq!(code, 400);
    assert!(error_code(r).1.starts_with("batch line 1"));
    assert_eq!(
        answer(ureq::post(&s.url("/v1/batch")).send_bytes(b"")).0,
        400
    );
}

/// SIGINT stops the server as SIGTERM does; its stop line counts writes and flushes, and
/// writers at once share flushes.
#[test]
fn sigint_stops_the_server_and_concurrent_puts_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    let load = writers(&s.base, "c");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = s.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
    assert!(sent.unwrap().success());
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s.child.stdout.take().unwrap(), &mut out).unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("stopped"))
        .unwrap_or_else(|| panic!("{out}"));
    let counts: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (writes, flushes) = (counts[0], counts[1]);
    assert!(writes > 8 && flushes < writes, "{line}");
    acknowledged_puts_are_stored(dir.path(), load);
}

/// A damaged store: verify answers 500 with the CLI's report naming the problem.
#[test]
fn verify_of_a_damaged_store_is_500_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        let content = format!("v{i}\n").repeat(i + 1);
        let out = common::strata_stdin(dir.path(), &["put", "doc"], Some(content.as_bytes()));
        assert!(out.status.success());
    }
    common::damage_a_loose_object(&dir.path().join(".strata"));
    let s = Server::start(dir.path(), &[]);
    let (code, r) = answer(ureq::post(&s.url("/v1/verify")).call());
    assert_eq!(code, 500);
    let report = json(r);
    assert!(
        !report["problems"].as_array().unwrap().is_empty(),
        "{report}"
    );
}
