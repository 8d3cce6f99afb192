//! The state-machine runner: applies operations to the real store, to an all-full store and
//! to the model, and checks them against each other after every step.

use strata_core::{ContentHash, DocId, Policy, VersionNo};
use strata_diff::{DiffOptions, DocDiff, TextDiff, render};
use strata_storage::{At, Durability, PutOptions, StoreError, StoreOptions};

use crate::fixture::{EngineUnderTest, PolicyUnderTest, TestStore};
use crate::model::Model;
use crate::patch::apply_unified;
use crate::strategy::{Op, TimeStep, apply_edit, doc_key};

/// Why a run failed: the step and what differed.
pub type RunResult = Result<(), String>;

fn id(i: usize) -> DocId {
    DocId::new(doc_key(i)).expect("harness keys are valid")
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> RunResult {
    if cond { Ok(()) } else { Err(msg()) }
}

fn err(step: usize, e: StoreError) -> String {
    format!("step {step}: unexpected error: {e}")
}

/// Runs `ops` under `policy` and checks every step. `durability` picks the write mode.
///
/// # Errors
/// A description of the first difference between the store and the model.
pub fn run_ops(
    ops: &[Op],
    policy: &PolicyUnderTest,
    durability: Durability,
    engine: EngineUnderTest,
) -> RunResult {
    let options = policy.apply(
        StoreOptions::default()
            .durability(durability)
            .cache_bytes(1 << 16)
            // Small: record runs are written, and merged, within a test case.
            .record_run_threshold(12),
    );
    let mut real = TestStore::on(engine, options);
    let mut full = TestStore::new(
        StoreOptions::default()
            .policy(Policy::Full)
            .durability(Durability::Manual),
    );
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Put(d, edit) => {
                let next = apply_edit(model.latest(&doc_key(*d)).unwrap_or(&[]), edit);
                put_both(step, &real, &full, &mut model, *d, &next, None)?;
            }
            Op::PutExpect(d, edit, stale) => {
                let key = doc_key(*d);
                let next = apply_edit(model.latest(&key).unwrap_or(&[]), edit);
                let head = model.head(&key);
                if *stale {
                    let (expected, retry) = model.stale_expectation(&key, &next);
                    let opts = PutOptions::default().expect(strata_core::VersionNo(expected));
                    match real.store().put_with(&id(*d), &next, opts) {
                        // A retry of the put that made version expected + 1: that version.
                        Ok(rec) if retry => {
                            check(rec.version.get() == expected + 1, || {
                                format!("step {step}: a retried put gave version {}", rec.version)
                            })?;
                        }
                        Err(StoreError::Conflict {
                            expected: e,
                            actual,
                            ..
                        }) => {
                            check(e == expected && actual == head, || {
                                format!(
                                    "step {step}: conflict names {e}/{actual}, want {expected}/{head}"
                                )
                            })?;
                        }
                        other => {
                            return Err(format!(
                                "step {step}: stale put gave {other:?}, want a conflict"
                            ));
                        }
                    }
                    let len = real
                        .store()
                        .history(&id(*d))
                        .map_err(|e| err(step, e))?
                        .len() as u64;
                    check(len == model.kept(&key), || {
                        format!("step {step}: a refused put changed history to {len}")
                    })?;
                } else {
                    put_both(step, &real, &full, &mut model, *d, &next, Some(head))?;
                }
            }
            Op::Batch(puts) => {
                let mut batch = real.store().batch();
                let mut expected = Vec::new();
                for (d, edit) in puts {
                    let key = doc_key(*d);
                    let next = apply_edit(model.latest(&key).unwrap_or(&[]), edit);
                    batch
                        .put(&id(*d), &next, PutOptions::default())
                        .map_err(|e| err(step, e))?;
                    full.store().put(&id(*d), &next).map_err(|e| err(step, e))?;
                    let v = model.put(&key, next.clone());
                    expected.push((v, ContentHash::of(&next)));
                }
                let recs = batch.commit().map_err(|e| err(step, e))?;
                for ((d, _), r) in puts.iter().zip(&recs) {
                    model.set_time(&doc_key(*d), r.version.get(), r.created_at_ms);
                }
                let got: Vec<_> = recs.iter().map(|r| (r.version.get(), r.hash)).collect();
                check(got == expected, || {
                    format!("step {step}: batch records {got:?}, want {expected:?}")
                })?;
            }
            Op::Get(d, i) => {
                let key = doc_key(*d);
                let v = i.index(model.head(&key) as usize + 1) as u64 + 1;
                let got = real
                    .store()
                    .get(&id(*d), At::Version(VersionNo(v)))
                    .map_err(|e| err(step, e))?;
                let want = model.readable(&key, v);
                check(got.as_deref() == want, || {
                    format!("step {step}: get {key}@{v} differs from the model")
                })?;
            }
            Op::GetLatest(d) => {
                let key = doc_key(*d);
                let got = real
                    .store()
                    .get(&id(*d), At::Latest)
                    .map_err(|e| err(step, e))?;
                let want = model.readable(&key, model.head(&key));
                check(got.as_deref() == want, || {
                    format!("step {step}: latest of {key} differs")
                })?;
            }
            Op::History(d) => check_history(step, &real, &full, &model, *d)?,
            Op::Diff(a, i, b, j) => {
                let (ka, kb) = (doc_key(*a), doc_key(*b));
                let va = i.index(model.head(&ka) as usize + 1) as u64 + 1;
                let vb = j.index(model.head(&kb) as usize + 1) as u64 + 1;
                let got = real
                    .store()
                    .diff(
                        (&id(*a), At::Version(VersionNo(va))),
                        (&id(*b), At::Version(VersionNo(vb))),
                        &DiffOptions::default(),
                    )
                    .map_err(|e| err(step, e))?;
                match (model.readable(&ka, va), model.readable(&kb, vb)) {
                    (Some(old), Some(new)) => {
                        let diff = got.ok_or_else(|| {
                            format!("step {step}: diff of existing versions is None")
                        })?;
                        check_diff(step, old, new, &diff)?;
                    }
                    _ => check(got.is_none(), || {
                        format!("step {step}: diff with a missing side is Some")
                    })?,
                }
            }
            Op::Reopen => {
                real.reopen();
                full.reopen();
            }
            Op::PutTimed(d, edit, step_by) => {
                put_timed(step, &real, &full, &mut model, *d, edit, *step_by)?;
            }
            Op::GetAt(d, i, before) => {
                let key = doc_key(*d);
                let head = model.head(&key);
                if head > 0 {
                    let v = i.index(head as usize) as u64 + 1;
                    let t = model.time(&key, v).expect("every version has a time");
                    let t = if *before { t.saturating_sub(1) } else { t };
                    let want = model.at_time(&key, t);
                    let got = real
                        .store()
                        .record(&id(*d), At::Time(t))
                        .map_err(|e| err(step, e))?
                        .map(|r| r.version.get());
                    check(got == want, || {
                        format!("step {step}: {key} at time {t} is {got:?}, model {want:?}")
                    })?;
                }
            }
            Op::Retry(d) => {
                let key = doc_key(*d);
                let head = model.head(&key);
                // (What reads the newest version finds: nothing when it is a deletion.)
                if let Some(latest) = model.readable(&key, head).map(<[u8]>::to_vec) {
                    let opts = PutOptions::default().expect(VersionNo(head - 1));
                    let rec = real
                        .store()
                        .put_with(&id(*d), &latest, opts)
                        .map_err(|e| err(step, e))?;
                    let feed_len = real.store().last_seq().map_err(|e| err(step, e))?;
                    check(
                        rec.version.get() == head && feed_len == model.feed_len(),
                        || {
                            format!(
                                "step {step}: retrying {key}@{head} gave @{}, feed at {feed_len}",
                                rec.version
                            )
                        },
                    )?;
                }
            }
            Op::Delete(d) => {
                let key = doc_key(*d);
                let head = model.head(&key);
                let got = real.store().delete(&id(*d)).map_err(|e| err(step, e))?;
                if head == 0 || model.is_deletion(&key, head) {
                    check(got.is_none(), || {
                        format!("step {step}: deleting a missing or deleted {key} wrote {got:?}")
                    })?;
                } else {
                    let v = model.delete(&key);
                    full.store().put(&id(*d), b"").map_err(|e| err(step, e))?;
                    let rec =
                        got.ok_or_else(|| format!("step {step}: delete of {key} did nothing"))?;
                    model.set_time(&key, v, rec.created_at_ms);
                    check(rec.version.get() == v && rec.is_deletion(), || {
                        format!("step {step}: delete made {key}@{}, model @{v}", rec.version)
                    })?;
                }
            }
            Op::Prune(d, keep) => {
                let key = doc_key(*d);
                let rule = strata_storage::Retention::KeepLast(*keep);
                let report = real
                    .store()
                    .prune(&id(*d), rule, true)
                    .map_err(|e| err(step, e))?;
                full.store()
                    .prune(&id(*d), rule, true)
                    .map_err(|e| err(step, e))?;
                let want = model.prune(&key, *keep);
                check(report.versions == want, || {
                    format!(
                        "step {step}: prune of {key} dropped {}, model {want}",
                        report.versions
                    )
                })?;
                check_history(step, &real, &full, &model, *d)?;
            }
            Op::BatchConflict(puts, at) => {
                let bad = at.index(puts.len());
                let mut batch = real.store().batch();
                let mut refused = false;
                for (i, (d, edit)) in puts.iter().enumerate() {
                    let key = doc_key(*d);
                    let next = apply_edit(model.latest(&key).unwrap_or(&[]), edit);
                    let mut opts = PutOptions::default();
                    if i == bad {
                        // Never the version the document is at (the batch's own puts count).
                        opts.expected = Some(model.head(&key) + 1000);
                    }
                    match batch.put(&id(*d), &next, opts) {
                        Err(StoreError::Conflict { doc, .. }) if i == bad => {
                            check(doc.as_str() == key, || {
                                format!("step {step}: conflict names {doc}, want {key}")
                            })?;
                            refused = true;
                            break;
                        }
                        Err(e) => return Err(err(step, e)),
                        Ok(()) => {}
                    }
                }
                drop(batch);
                check(refused, || {
                    format!("step {step}: a stale batch put was accepted")
                })?;
                let last = real.store().last_seq().map_err(|e| err(step, e))?;
                check(last == model.feed_len(), || {
                    format!("step {step}: a refused batch wrote (feed at {last})")
                })?;
                // Objects the batch wrote before its conflict are garbage now: gc removes them.
                real.store().gc().map_err(|e| err(step, e))?;
            }
            Op::Tag(d, i, t, force) => {
                let key = doc_key(*d);
                let head = model.head(&key);
                if head > 0 {
                    let v = i.index(head as usize) as u64 + 1;
                    let name = format!("t{t}");
                    let got = real.store().tag(&id(*d), VersionNo(v), &name, *force);
                    let current = model.tags.get(&(key.clone(), name.clone())).copied();
                    let ok =
                        v >= model.first_kept(&key) && (*force || current.is_none_or(|c| c == v));
                    match got {
                        Ok(()) if ok => {
                            model.tags.insert((key.clone(), name), v);
                        }
                        Err(StoreError::Tag { .. }) if !ok => {}
                        other => {
                            return Err(format!(
                                "step {step}: tag {key}@{v} {name} (force {force}) gave {other:?}, model {ok}"
                            ));
                        }
                    }
                }
            }
            Op::GetTag(d, t) => {
                let key = doc_key(*d);
                let name = format!("t{t}");
                let got = real
                    .store()
                    .tagged(&id(*d), &name)
                    .map_err(|e| err(step, e))?
                    .map(VersionNo::get);
                let want = model.tags.get(&(key.clone(), name.clone())).copied();
                check(got == want, || {
                    format!("step {step}: tag {name} of {key} is {got:?}, model {want:?}")
                })?;
            }
            Op::Consume(c, n) => {
                let name = format!("c{c}");
                let s = real.store();
                let at = s.consumer(&name).map_err(|e| err(step, e))?;
                let want_at = model.consumers.get(&name).copied();
                check(at == want_at, || {
                    format!("step {step}: consumer {name} at {at:?}, model {want_at:?}")
                })?;
                let from = at.unwrap_or(0) + 1;
                let got: Vec<(u64, String, u64)> = s
                    .feed(from)
                    .take(*n)
                    .map(|e| e.map(|e| (e.seq, e.doc.to_string(), e.record.version.get())))
                    .collect::<Result<_, _>>()
                    .map_err(|e| err(step, e))?;
                let want: Vec<(u64, String, u64)> = model
                    .feed_from(from)
                    .into_iter()
                    .take(*n)
                    .map(|(q, d, v)| (q, d.to_owned(), v))
                    .collect();
                check(got == want, || {
                    format!("step {step}: consumer {name} read {got:?}, model {want:?}")
                })?;
                let position = got.last().map_or(at.unwrap_or(0), |e| e.0);
                s.set_consumer(&name, position).map_err(|e| err(step, e))?;
                model.consumers.insert(name, position);
            }
            Op::Feed(i) => check_feed(
                step,
                &real,
                &model,
                i.index(model.feed_len() as usize + 1) as u64 + 1,
            )?,
        }
    }
    check_feed(ops.len(), &real, &model, 1)?;
    final_checks(&mut real, &full, &model)
}

/// A put dated relative to the document's newest version; one dated before it must be
/// refused and change nothing.
fn put_timed(
    step: usize,
    real: &TestStore,
    full: &TestStore,
    model: &mut Model,
    d: usize,
    edit: &crate::strategy::Edit,
    by: TimeStep,
) -> RunResult {
    let key = doc_key(d);
    let next = apply_edit(model.latest(&key).unwrap_or(&[]), edit);
    let newest = model.time(&key, model.head(&key)).unwrap_or(0);
    let time = match by {
        TimeStep::Same => newest,
        TimeStep::Milli => newest + 1,
        TimeStep::Second => newest + 1000,
        TimeStep::Day => newest + 86_400_000,
        TimeStep::Back => {
            if newest == 0 {
                return Ok(());
            }
            let refused =
                real.store()
                    .put_with(&id(d), &next, PutOptions::default().time(newest - 1));
            check(
                matches!(refused, Err(StoreError::TimeGoesBack { time_ms, newest_ms, .. }) if time_ms == newest - 1 && newest_ms == newest),
                || format!("step {step}: a put dated before {key}'s newest gave {refused:?}"),
            )?;
            let len = real
                .store()
                .history(&id(d))
                .map_err(|e| err(step, e))?
                .len() as u64;
            return check(len == model.kept(&key), || {
                format!("step {step}: a refused timed put changed the history")
            });
        }
    };
    let rec = real
        .store()
        .put_with(&id(d), &next, PutOptions::default().time(time))
        .map_err(|e| err(step, e))?;
    full.store().put(&id(d), &next).map_err(|e| err(step, e))?;
    let v = model.put(&key, next);
    model.set_time(&key, v, rec.created_at_ms);
    check(rec.version.get() == v && rec.created_at_ms == time, || {
        format!(
            "step {step}: timed put made {key}@{} at {}, want @{v} at {time}",
            rec.version, rec.created_at_ms
        )
    })
}

/// The store's change feed from `from` matches the model's writes: same documents and
/// versions in the same order, sequence numbers gap-free from `from`, records that match.
fn check_feed(step: usize, real: &TestStore, model: &Model, from: u64) -> RunResult {
    let got: Vec<_> = real
        .store()
        .feed(from)
        .collect::<Result<_, _>>()
        .map_err(|e| err(step, e))?;
    let want = model.feed_from(from);
    check(got.len() == want.len(), || {
        format!(
            "step {step}: feed from {from} has {} entries, model {}",
            got.len(),
            want.len()
        )
    })?;
    for (entry, (seq, key, v)) in got.iter().zip(want) {
        let content = model
            .get(key, v)
            .expect("the model's feed names its versions");
        check(
            entry.seq == seq
                && entry.doc.as_str() == key
                && entry.record.version.get() == v
                && entry.record.hash == ContentHash::of(content)
                && Some(entry.record.created_at_ms) == model.time(key, v),
            || {
                format!(
                    "step {step}: feed entry {} is {}@{}, model {key}@{v}",
                    entry.seq, entry.doc, entry.record.version
                )
            },
        )?;
    }
    Ok(())
}

fn put_both(
    step: usize,
    real: &TestStore,
    full: &TestStore,
    model: &mut Model,
    d: usize,
    content: &[u8],
    expect: Option<u64>,
) -> RunResult {
    let opts = PutOptions {
        expected: expect,
        ..PutOptions::default()
    }
    .message(format!("step {step}"));
    let rec = real
        .store()
        .put_with(&id(d), content, opts)
        .map_err(|e| err(step, e))?;
    let frec = full
        .store()
        .put(&id(d), content)
        .map_err(|e| err(step, e))?;
    let v = model.put(&doc_key(d), content.to_vec());
    model.set_time(&doc_key(d), v, rec.created_at_ms);
    check(rec.version.get() == v && frec.version.get() == v, || {
        format!(
            "step {step}: put made version {} (full store {}), model {v}",
            rec.version, frec.version
        )
    })?;
    check(
        rec.hash == ContentHash::of(content) && rec.hash == frec.hash,
        || format!("step {step}: put id mismatch"),
    )?;
    check(rec.size == content.len() as u64, || {
        format!("step {step}: put size mismatch")
    })
}

fn check_history(
    step: usize,
    real: &TestStore,
    full: &TestStore,
    model: &Model,
    d: usize,
) -> RunResult {
    let key = doc_key(d);
    let hist = real.store().history(&id(d)).map_err(|e| err(step, e))?;
    let fhist = full.store().history(&id(d)).map_err(|e| err(step, e))?;
    let first = model.first_kept(&key);
    let kept = (model.head(&key) + 1).saturating_sub(first);
    check(hist.len() as u64 == kept, || {
        format!(
            "step {step}: history of {key} has {} versions, model {kept}",
            hist.len(),
        )
    })?;
    for (i, rec) in hist.iter().enumerate() {
        let want = model
            .get(&key, first + i as u64)
            .expect("history length checked");
        check(rec.version.get() == first + i as u64, || {
            format!("step {step}: history numbering broken")
        })?;
        check(
            rec.hash == ContentHash::of(want) && rec.size == want.len() as u64,
            || {
                format!(
                    "step {step}: history record {} of {key} does not match the model",
                    rec.version
                )
            },
        )?;
        check(fhist.get(i).map(|f| f.hash) == Some(rec.hash), || {
            format!(
                "step {step}: all-full store disagrees on {key}@{}",
                rec.version
            )
        })?;
    }
    Ok(())
}

fn check_diff(step: usize, old: &[u8], new: &[u8], diff: &DocDiff) -> RunResult {
    let want = strata_diff::compare(old, new, &DiffOptions::default());
    check(*diff == want, || {
        format!("step {step}: store diff differs from a direct compare")
    })?;
    match diff {
        DocDiff::Same => check(old == new, || {
            format!("step {step}: Same for different contents")
        }),
        DocDiff::Binary(b) => check(
            b.old_len == old.len() as u64 && b.new_len == new.len() as u64,
            || format!("step {step}: binary summary sizes wrong"),
        ),
        DocDiff::Json(j) => {
            let parse = |b: &[u8]| {
                strata_diff::compare::parse_json(b).map_err(|e| format!("step {step}: {e}"))
            };
            let patched = strata_diff::json::apply_patch(&parse(old)?, &j.structure.patch)
                .map_err(|e| format!("step {step}: JSON patch does not apply: {e}"))?;
            check(patched == parse(new)?, || {
                format!("step {step}: JSON patch does not give the new side")
            })?;
            check_text(step, old, new, &j.text)
        }
        DocDiff::Text(t) => check_text(step, old, new, t),
    }
}

/// Applying the unified rendering of a line diff to the old side gives the new side.
fn check_text(step: usize, old: &[u8], new: &[u8], text: &TextDiff) -> RunResult {
    let rendered = render::unified_bytes(
        &DocDiff::Text(text.clone()),
        "a",
        "b",
        render::Style::default(),
    );
    let patched = apply_unified(old, &rendered).map_err(|e| format!("step {step}: {e}"))?;
    check(patched == new, || {
        format!("step {step}: applying the unified diff does not give the new side")
    })
}

/// Every version of every document reads back byte-identical, with a cold cache and after a
/// reopen, and `verify` is clean.
fn final_checks(real: &mut TestStore, full: &TestStore, model: &Model) -> RunResult {
    for round in 0..2 {
        real.store().clear_cache();
        // Consumers and tags, as stored (the second round after a reopen).
        let consumers = real
            .store()
            .consumers()
            .map_err(|e| format!("consumers: {e}"))?;
        let want: Vec<(String, u64)> = model.consumers.clone().into_iter().collect();
        check(consumers == want, || {
            format!("consumers {consumers:?}, model {want:?} (round {round})")
        })?;
        let mut tags: Vec<((String, String), u64)> = real
            .store()
            .tags(None)
            .map_err(|e| format!("tags: {e}"))?
            .into_iter()
            .map(|(d, n, v)| ((d.to_string(), n), v.get()))
            .collect();
        tags.sort();
        let want: Vec<((String, String), u64)> = model.tags.clone().into_iter().collect();
        check(tags == want, || {
            format!("tags {tags:?}, model {want:?} (round {round})")
        })?;
        for (key, versions) in model.docs() {
            let doc = DocId::new(key).expect("harness keys are valid");
            // Read newest first, so every read rebuilds its chain without cached bases.
            for (i, want) in versions.iter().enumerate().rev() {
                let v = VersionNo(i as u64 + 1);
                let got = real
                    .store()
                    .get(&doc, At::Version(v))
                    .map_err(|e| format!("final read {key}@{v}: {e}"))?;
                check(got.as_deref() == model.readable(key, v.get()), || {
                    format!("final read {key}@{v} differs (round {round})")
                })?;
                let got_full = full
                    .store()
                    .get(&doc, At::Version(v))
                    .map_err(|e| format!("full store {key}@{v}: {e}"))?;
                let want_full = (v.get() >= model.first_kept(key)).then_some(want.as_slice());
                check(got_full.as_deref() == want_full, || {
                    format!("all-full store {key}@{v} differs")
                })?;
            }
            let hist = real
                .store()
                .history(&doc)
                .map_err(|e| format!("history {key}: {e}"))?;
            let kept = versions.len() as u64 + 1 - model.first_kept(key);
            check(hist.len() as u64 == kept, || {
                format!("history of {key} lost versions")
            })?;
        }
        let report = real.store().verify().map_err(|e| format!("verify: {e}"))?;
        check(report.is_clean(), || {
            format!("verify found problems: {:?}", report.problems)
        })?;
        check(report.unreferenced_objects == 0, || {
            "verify found unreferenced objects".into()
        })?;
        real.reopen();
    }
    Ok(())
}
