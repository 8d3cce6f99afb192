//! The HTTP API against the reference model (`strata_tests::model::Model`), driven by the
//! state-machine generators (`strata_tests::strategy::ops`: edit scripts over real-looking
//! text and JSON): puts with and without expected versions, retries, deletions, reads of any
//! version, histories, diffs, tags, the feed, and server restarts, checked step by step.
//!
//! Cases: `STRATA_SERVE_CASES` (default 12; each starts a server).

mod common;

use common::Server;
use proptest::prelude::*;
use strata_tests::model::Model;
use strata_tests::strategy::{Op, apply_edit, doc_key, ops};

fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Vec<u8>) {
    let r = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let code = r.status();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    (code, body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// Fails the case unless the answer's status is `want`, showing the body.
fn expect_status(code: u16, want: u16, body: &[u8], step: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        code,
        want,
        "step {}: {}",
        step,
        String::from_utf8_lossy(body)
    );
    Ok(())
}

/// Encodes a key for a path (slashes stay).
fn path(key: &str) -> String {
    key.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A read answered as the model says: 200 with its content, or 404 where it has none.
fn read_as_modelled(
    at: &str,
    (code, body): (u16, Vec<u8>),
    want: Option<&[u8]>,
) -> Result<(), TestCaseError> {
    match want {
        Some(want) => {
            prop_assert_eq!(code, 200, "{}", at);
            prop_assert_eq!(&body[..], want, "{}", at);
        }
        None => prop_assert_eq!(code, 404, "{}", at),
    }
    Ok(())
}

/// A put the server must accept: 201 with the version the model gives it.
fn accepted(
    step: usize,
    (code, body): (u16, Vec<u8>),
    model: &mut Model,
    key: &str,
    content: Vec<u8>,
) -> Result<(), TestCaseError> {
    expect_status(code, 201, &body, step)?;
    let v = model.put(key, content);
    prop_assert_eq!(json(&body)["version"].as_u64(), Some(v), "step {}", step);
    Ok(())
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Some(Server::start(dir.path(), &[]));
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let s = server.as_ref().expect("a server runs between steps");
        let put = |key: &str, content: &[u8], expect: Option<u64>| {
            let mut url = s.url(&format!("/v1/docs/{}", path(key)));
            if let Some(e) = expect {
                url.push_str(&format!("?expect={e}"));
            }
            answer(ureq::put(&url).send_bytes(content))
        };
        let get = |key: &str, v: Option<u64>| {
            let mut url = s.url(&format!("/v1/docs/{}", path(key)));
            if let Some(v) = v {
                url.push_str(&format!("?at={v}"));
            }
            answer(ureq::get(&url).call())
        };
        match op {
            Op::Put(d, edit) => {
                let key = doc_key(*d);
                let next = apply_edit(model.latest(&key).unwrap_or(&[]), edit);
                accepted(step, put(&key, &next, None), &mut model, &key, next)?;
            }
            Op::PutExpect(d, edit, stale) => {
                let key = doc_key(*d);
                let next = apply_edit(model.latest(&key).unwrap_or(&[]), edit);
                let head = model.head(&key);
                if *stale {
                    let (expected, retry) = model.stale_expectation(&key, &next);
                    let (code, body) = put(&key, &next, Some(expected));
                    if retry {
                        prop_assert_eq!(code, 201, "step {}", step);
                        prop_assert_eq!(json(&body)["version"].as_u64(), Some(expected + 1));
                    } else {
                        expect_status(code, 409, &body, step)?;
                        let message = json(&body)["error"]["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        prop_assert!(
                            message.contains(&format!("version {head}")) || head == 0,
                            "step {}: {}",
                            step,
                            message
                        );
                    }
                } else {
                    accepted(step, put(&key, &next, Some(head)), &mut model, &key, next)?;
                }
            }
            Op::Batch(puts) => {
                for (d, edit) in puts {
                    let key = doc_key(*d);
                    let next = apply_edit(model.latest(&key).unwrap_or(&[]), edit);
                    accepted(step, put(&key, &next, None), &mut model, &key, next)?;
                }
            }
            Op::Get(d, i) => {
                let key = doc_key(*d);
                let v = i.index(model.head(&key) as usize + 1) as u64 + 1;
                let (code, body) = get(&key, Some(v));
                read_as_modelled(
                    &format!("step {step}: {key}@{v}"),
                    (code, body),
                    model.readable(&key, v),
                )?;
            }
            Op::GetLatest(d) => {
                let key = doc_key(*d);
                let (code, body) = get(&key, None);
                read_as_modelled(
                    &format!("step {step}"),
                    (code, body),
                    model.readable(&key, model.head(&key)),
                )?;
            }
            Op::History(d) => {
                let key = doc_key(*d);
                let (code, body) =
                    answer(ureq::get(&s.url(&format!("/v1/docs/{}/log", path(&key)))).call());
                if model.head(&key) == 0 {
                    prop_assert_eq!(code, 404, "step {}", step);
                } else {
                    prop_assert_eq!(code, 200, "step {}", step);
                    let versions: Vec<u64> = json(&body)
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["version"].as_u64().unwrap())
                        .collect();
                    let want: Vec<u64> = (model.first_kept(&key)..=model.head(&key)).collect();
                    prop_assert_eq!(versions, want, "step {}", step);
                }
            }
            Op::Diff(a, i, b, j) => {
                let (ka, kb) = (doc_key(*a), doc_key(*b));
                let va = i.index(model.head(&ka) as usize + 1) as u64 + 1;
                let vb = j.index(model.head(&kb) as usize + 1) as u64 + 1;
                let url = s.url(&format!(
                    "/v1/diff?a={}@{va}&b={}@{vb}&format=json",
                    path(&ka),
                    path(&kb)
                ));
                let (code, body) = answer(ureq::get(&url).call());
                match (model.readable(&ka, va), model.readable(&kb, vb)) {
                    (Some(x), Some(y)) => {
                        expect_status(code, 200, &body, step)?;
                        let kind = json(&body)["kind"].as_str().unwrap_or_default().to_owned();
                        prop_assert_eq!(kind == "same", x == y, "step {}: kind {}", step, kind);
                    }
                    _ => prop_assert_eq!(code, 404, "step {}", step),
                }
            }
            Op::Reopen => {
                // The server stops (SIGTERM) and starts again on the same store.
                let (status, _) = server.take().expect("running").terminate();
                prop_assert!(
                    status.success(),
                    "step {}: the server stopped with {:?}",
                    step,
                    status
                );
                server = Some(Server::start(dir.path(), &[]));
            }
            Op::Feed(i) => {
                let from = i.index(model.feed_len() as usize + 1) as u64;
                let (code, body) =
                    answer(ureq::get(&s.url(&format!("/v1/feed?since={from}&limit=10000"))).call());
                prop_assert_eq!(code, 200, "step {}", step);
                let got: Vec<(u64, String, u64)> = json(&body)["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        (
                            e["seq"].as_u64().unwrap(),
                            e["doc"].as_str().unwrap().to_owned(),
                            e["version"].as_u64().unwrap(),
                        )
                    })
                    .collect();
                let want: Vec<(u64, String, u64)> = model
                    .feed_from(from + 1)
                    .into_iter()
                    .map(|(q, d, v)| (q, d.to_owned(), v))
                    .collect();
                prop_assert_eq!(got, want, "step {}", step);
            }
            Op::Retry(d) => {
                let key = doc_key(*d);
                let head = model.head(&key);
                // (What reads the newest version finds: nothing when it is a deletion.)
                if let Some(latest) = model.readable(&key, head).map(<[u8]>::to_vec) {
                    let (code, body) = put(&key, &latest, Some(head - 1));
                    prop_assert_eq!(code, 201, "step {}", step);
                    prop_assert_eq!(
                        json(&body)["version"].as_u64(),
                        Some(head),
                        "step {}: a retry wrote again",
                        step
                    );
                }
            }
            Op::Delete(d) => {
                let key = doc_key(*d);
                let head = model.head(&key);
                let (code, body) =
                    answer(ureq::delete(&s.url(&format!("/v1/docs/{}", path(&key)))).call());
                if head == 0 || model.is_deletion(&key, head) {
                    prop_assert_eq!(code, 404, "step {}", step);
                } else {
                    prop_assert_eq!(code, 200, "step {}", step);
                    let v = model.delete(&key);
                    prop_assert_eq!(json(&body)["version"].as_u64(), Some(v));
                }
            }
            Op::Tag(d, i, t, force) => {
                let key = doc_key(*d);
                let head = model.head(&key);
                if head > 0 {
                    let v = i.index(head as usize) as u64 + 1;
                    let name = format!("t{t}");
                    let url = s.url(&format!(
                        "/v1/tags?spec={}@{v}&name={name}&force={force}",
                        path(&key)
                    ));
                    let (code, body) = answer(ureq::post(&url).call());
                    let current = model.tags.get(&(key.clone(), name.clone())).copied();
                    let ok =
                        v >= model.first_kept(&key) && (*force || current.is_none_or(|c| c == v));
                    if ok {
                        expect_status(code, 200, &body, step)?;
                        model.tags.insert((key, name), v);
                    } else {
                        expect_status(code, 400, &body, step)?;
                    }
                }
            }
            Op::GetTag(d, t) => {
                let key = doc_key(*d);
                let name = format!("t{t}");
                let (code, body) =
                    answer(ureq::get(&s.url(&format!("/v1/docs/{}?at={name}", path(&key)))).call());
                let tagged = model.tags.get(&(key.clone(), name)).copied();
                read_as_modelled(
                    &format!("step {step}"),
                    (code, body),
                    tagged.and_then(|v| model.readable(&key, v)),
                )?;
            }
            // Timed puts, reads by time, pruning, refused batches and consumers have no
            // endpoint of their own (they run through /v1/exec, tested in remote.rs).
            Op::PutTimed(..)
            | Op::GetAt(..)
            | Op::Prune(..)
            | Op::BatchConflict(..)
            | Op::Consume(..) => {}
        }
    }
    // Every version of every document, once more, after the run.
    let server = server.expect("a server runs after the last step");
    for (key, versions) in model.docs() {
        for v in 1..=versions.len() as u64 {
            let (code, body) =
                answer(ureq::get(&server.url(&format!("/v1/docs/{}?at={v}", path(key)))).call());
            read_as_modelled(
                &format!("{key}@{v} after the run"),
                (code, body),
                model.readable(key, v),
            )?;
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("STRATA_SERVE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_api_keeps_every_version_the_model_keeps(ops in ops(40)) {
        run(&ops)?;
    }
}
