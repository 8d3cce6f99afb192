//! `repack`: re-encode every object under a policy and compression level, into a fresh store
//! directory that then replaces the old one.
//!
//! Why a fresh directory: sled never shrinks its log in place, so rewriting objects where they
//! are would grow the store. Copying into a new directory gives a compact one, and makes the
//! operation safe to interrupt: until the final renames the old store is untouched, and an
//! interrupted swap is finished by the next open.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata_core::{ContentHash, ObjectHeader, Policy, SnapshotPolicy};
use strata_diff::delta;

use crate::encode::{Base, FullSizeEstimate, Plan};
use crate::error::{StoreError, StoreResult};
use crate::fold::{PACK_TARGET, write_packs};
use crate::kv::{Kv, KvConfig};
use crate::options::StoreOptions;
use crate::read::lock;
use crate::store::Store;
use crate::verify::{VerifyReport, dir_size};

/// How to repack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepackOptions {
    /// The policy to re-encode under (and to record for later writes); `None` keeps the
    /// store's.
    pub policy: Option<Policy>,
    /// The zstd level for every re-encoded object (1..=22). Default 9: on the shared
    /// histories it gives most of level 19's gain in a twentieth of the time.
    pub level: i32,
    /// How many versions to try as delta bases (git's window): earlier ones for `chain` and
    /// `cost`, the next newer ones for `reverse`; the smallest accepted delta wins. Default 1
    /// (the policy's own base).
    pub window: usize,
}

impl Default for RepackOptions {
    fn default() -> Self {
        Self {
            policy: None,
            level: 9,
            window: 1,
        }
    }
}

/// What a repack did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RepackReport {
    /// Objects written to the new store.
    pub objects: u64,
    /// Of them, deltas.
    pub deltas: u64,
    /// Objects no version needed, left behind.
    pub dropped: u64,
    /// Payload bytes before and after.
    pub stored_before: u64,
    /// Payload bytes after.
    pub stored_after: u64,
    /// The whole store directory before and after.
    pub disk_before: u64,
    /// The whole store directory after.
    pub disk_after: u64,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// Before the lock: if a repack was interrupted between its two renames (the store directory
/// is missing), finish the swap, so that `path` holds exactly one complete store.
pub(crate) fn finish_interrupted_swap(path: &Path) -> std::io::Result<()> {
    let new = sibling(path, "repack-new");
    let old = sibling(path, "repack-old");
    if !path.exists() && old.exists() {
        // The new store was complete and verified before the first rename.
        if new.exists() {
            std::fs::rename(&new, path)?;
        } else {
            std::fs::rename(&old, path)?;
        }
    }
    Ok(())
}

/// With the store's lock held (so no repack of it is running): remove what an interrupted
/// repack left beside it.
pub(crate) fn remove_repack_leftovers(path: &Path) -> std::io::Result<()> {
    for leftover in [sibling(path, "repack-old"), sibling(path, "repack-new")] {
        if leftover.exists() {
            std::fs::remove_dir_all(&leftover)?;
        }
    }
    Ok(())
}

impl Store {
    /// Re-encodes every object of the store at `path` into a fresh directory, verifies it, and
    /// swaps it in. No content id changes. Safe to interrupt at any point: the old store stays
    /// in place until the verified new one replaces it, and an interrupted swap is completed by
    /// the next open.
    ///
    /// # Errors
    /// [`StoreError::Repack`] when the store cannot be opened, the new store does not verify
    /// (the old one is then kept), or a rename fails; corruption and engine errors.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{At, DocId, RepackOptions, Store, StoreOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("store");
    /// let doc = DocId::new("notes")?;
    /// {
    ///     let store = Store::open(&path)?;
    ///     for i in 0..20 {
    ///         store.put(&doc, format!("line {i}\n").repeat(i + 1).as_bytes())?;
    ///     }
    /// } // closed: a repack needs the store to itself
    /// let report = Store::repack_at(&path, StoreOptions::default(), RepackOptions::default())?;
    /// assert_eq!(report.objects, 20);
    /// let store = Store::open(&path)?;
    /// assert_eq!(store.get(&doc, At::Latest)?.unwrap(), "line 19\n".repeat(20).into_bytes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repack_at(
        path: impl AsRef<Path>,
        store_options: StoreOptions,
        options: RepackOptions,
    ) -> StoreResult<RepackReport> {
        let path = path.as_ref();
        let fail = |what: &str, e: &dyn std::fmt::Display| StoreError::Repack {
            reason: format!("{what}: {e}"),
        };
        if crate::is_nats_store(path) {
            let store = Self::open_with(path, store_options.create(false))
                .map_err(|e| fail("cannot open the store", &e))?;
            return store.repack_log(options);
        }
        let new_path = sibling(path, "repack-new");
        let old_path = sibling(path, "repack-old");
        // The original stays open (and locked) until the new store has replaced it.
        // The store may be of the earlier format: a repack is how it is converted.
        let mut old_options = store_options.clone().create(false);
        old_options.convert = true;
        let store =
            Self::open_with(path, old_options).map_err(|e| fail("cannot open the store", &e))?;
        let mut report = store.repack_into(&new_path, options)?;
        {
            let fresh = Self::open_with(&new_path, store_options.create(false))
                .map_err(|e| fail("cannot open the repacked store", &e))?;
            let check = fresh.verify()?;
            if !check.is_clean() {
                drop(fresh);
                let _ = std::fs::remove_dir_all(&new_path);
                return Err(fail(
                    "the repacked store failed verification; the original is unchanged",
                    &check.problems.join("; "),
                ));
            }
        }
        std::fs::rename(path, &old_path)
            .map_err(|e| fail("cannot move the old store aside", &e))?;
        std::fs::rename(&new_path, path)
            .map_err(|e| fail("cannot move the new store in place", &e))?;
        drop(store);
        std::fs::remove_dir_all(&old_path).map_err(|e| fail("cannot remove the old store", &e))?;
        report.disk_after = dir_size(path);
        Ok(report)
    }

    /// Writes a re-encoded copy of this store into `dest` (a new directory, or a new store on
    /// a NATS cluster, `nats://...`). Holds back puts
    /// while it runs. Versions, documents, the change feed and counters are copied as they are;
    /// objects are re-encoded, in an order where every delta base is written before the delta,
    /// so no chain can loop. Objects no version needs are not copied.
    ///
    /// # Errors
    /// [`StoreError::Repack`] when `dest` exists (a NATS store: holds any version);
    /// corruption and engine errors.
    pub fn repack_into(&self, dest: &Path, options: RepackOptions) -> StoreResult<RepackReport> {
        let _gate = self.maintenance()?;
        self.repack_into_held(dest, options)
    }

    /// [`Store::repack_into`] for a caller that holds [`Store::maintenance`].
    fn repack_into_held(&self, dest: &Path, options: RepackOptions) -> StoreResult<RepackReport> {
        let out = open_destination(dest, &self.inner.options)?;
        let mut report = self.repack_to(&out, options)?;
        drop(out);
        report.disk_after = dir_size(dest);
        Ok(report)
    }

    /// Re-encodes this store in place on a shared engine (NATS): writes a re-encoded copy in
    /// memory, then replaces every record with it in one batch and drops the log before it
    /// (`docs/scale-out.md`). Holds the maintenance lease while it runs.
    fn repack_log(&self, options: RepackOptions) -> StoreResult<RepackReport> {
        let _gate = self.maintenance()?;
        let before = self.inner.kv.stored_bytes()?;
        let memory = crate::MemoryEngine::new();
        let out = Kv::open_plain_memory(memory.clone()).map_err(|e| StoreError::Repack {
            reason: format!("cannot make the copy in memory: {e}"),
        })?;
        let mut report = self.repack_to(&out, options)?;
        drop(out);
        self.inner.kv.compact_log(&memory)?;
        lock(&self.inner.cache).clear();
        report.disk_before = before;
        report.disk_after = self.inner.kv.stored_bytes()?;
        Ok(report)
    }

    /// The body of a repack: this store's records and re-encoded objects into `out`.
    fn repack_to(&self, out: &Kv, options: RepackOptions) -> StoreResult<RepackReport> {
        let kv = &self.inner.kv;
        kv.copy_records_to(out)?;
        let policy: &dyn SnapshotPolicy = match &options.policy {
            Some(p) => {
                out.set_policy(p)?;
                p
            }
            None => &*self.inner.policy,
        };
        let window_ok = matches!(
            options.policy.or(kv.stored_policy()?),
            Some(Policy::Chain { .. } | Policy::Cost { .. } | Policy::Reverse { .. })
        );
        // Other policies place their bases themselves (skip and sparse bound reads by where
        // bases are): only the policy's own base is tried.
        let window = if window_ok { options.window.max(1) } else { 0 };
        let level = options.level.clamp(1, 22);
        // Full sizes may be estimated for the built-in policies only (see FullSizeEstimate).
        let custom_ok = options.policy.is_some() || self.inner.options.custom_policy.is_none();
        let mut report = RepackReport {
            disk_before: self.inner.kv.stored_bytes()?,
            ..RepackReport::default()
        };
        let mut done: HashSet<ContentHash> = HashSet::new();
        // Headers of the objects planned so far (the candidates' base facts, kept after their
        // pack is written), and the plans, all packed: under a reverse policy a later put leaves a document's packed newest
        // version unused in its pack (see `stats`), which costs less than sled entries.
        let mut planned: HashMap<ContentHash, ObjectHeader> = HashMap::new();
        let mut packed: Vec<(ContentHash, Plan)> = Vec::new();
        let mut packed_bytes = 0usize;
        for (num, _, _) in kv.documents()? {
            let history = kv.versions(num)?;
            // Reverse policies delta each version against the next newer one: process newest
            // first, so every base is written before the objects that name it.
            let reverse = policy.reverse();
            let mut estimate = FullSizeEstimate::new(custom_ok);
            let order: Vec<usize> = if reverse {
                (0..history.len()).rev().collect()
            } else {
                (0..history.len()).collect()
            };
            for i in order {
                let rec = &history[i];
                if !done.insert(rec.hash) {
                    continue;
                }
                let content = self.read_object(&rec.hash)?;
                if let Some(h) = kv.object_header(&rec.hash)? {
                    report.stored_before += h.stored_len;
                }
                let mut candidates: Vec<ContentHash> = Vec::new();
                if reverse {
                    // The next newer versions (the window tries more than one).
                    candidates.extend(history.iter().skip(i + 1).take(window).map(|r| r.hash));
                } else {
                    if let Some(b) = policy.base_for(rec.version) {
                        // History starts at its first kept version (older ones may be pruned).
                        let first = history.first().map_or(1, |r| r.version.get());
                        let index = b.get().checked_sub(first).map(|i| i as usize);
                        candidates.extend(index.and_then(|i| history.get(i)).map(|r| r.hash));
                    }
                    // git's window: also try the `window` versions before this one.
                    for back in 1..=window.min(i) {
                        candidates.push(history[i - back].hash);
                    }
                }
                candidates.retain(|c| *c != rec.hash);
                candidates.dedup();
                let mut deltas: Vec<(Base, Vec<u8>)> = Vec::new();
                for base in candidates {
                    let Some(base_header) = planned.get(&base).copied() else {
                        continue;
                    };
                    let base_content = self.read_object(&base)?;
                    let d = delta::encode(&base_content, &content, level);
                    deltas.push((Base::of(base, &base_header), d));
                }
                // The smallest encoding the policy accepts among the candidates, else full.
                let plan = estimate.plan(policy, rec.version, &content, level, deltas);
                if plan.header.is_delta() {
                    report.deltas += 1;
                }
                let payload_len = plan.payload.len() as u64;
                report.objects += 1;
                report.stored_after += payload_len;
                planned.insert(rec.hash, plan.header);
                packed_bytes += plan.payload.len();
                packed.push((rec.hash, plan));
                // Written as each pack fills, so a repack holds one pack's payload at a time
                // (the new store is not in use until the swap, so order does not matter).
                if packed_bytes >= PACK_TARGET {
                    write_packs(out, &std::mem::take(&mut packed))?;
                    packed_bytes = 0;
                }
            }
        }
        write_packs(out, &packed)?;
        report.dropped = kv
            .object_ids()
            .filter(|id| id.as_ref().is_ok_and(|id| !done.contains(id)))
            .count() as u64;
        // The packs' index entries came as one run per pack: fewer runs read faster.
        out.settle_records()?;
        out.flush()?;
        Ok(report)
    }

    /// Copies this store to `dest`, another store on any engine (a new directory, or a new
    /// store on a NATS cluster, `nats://...`), then opens the copy and checks it: every
    /// version rebuilds to its content id, and the copy holds the same documents, versions
    /// (with their times and metadata) and change feed. Objects are re-encoded as
    /// [`Store::repack_into`] does, under `options`.
    ///
    /// Writes are held back until the check is done (on a store that other processes share
    /// too), so the original it compares with is the one copied. Returns the repack's report
    /// and the copy's verification.
    ///
    /// # Errors
    /// As [`Store::repack_into`]; [`StoreError::Repack`] when the copy does not check out.
    pub fn copy_to(
        &self,
        dest: &Path,
        options: RepackOptions,
    ) -> StoreResult<(RepackReport, VerifyReport)> {
        let _gate = self.maintenance()?;
        let report = self.repack_into_held(dest, options)?;
        let fail = |reason: String| StoreError::Repack {
            reason: format!("the copy at {} {reason}", dest.display()),
        };
        let copy = Self::open_with(dest, self.inner.options.clone().create(false))
            .map_err(|e| fail(format!("cannot be opened: {e}")))?;
        let check = copy.verify()?;
        if !check.is_clean() {
            return Err(fail(format!(
                "failed verification: {}",
                check.problems.join("; ")
            )));
        }
        let docs = self.documents()?;
        if copy.documents()? != docs {
            return Err(fail("lists other documents than the original".into()));
        }
        for d in &docs {
            if copy.history(&d.doc)? != self.history(&d.doc)? {
                return Err(fail(format!("holds another history of '{}'", d.doc)));
            }
        }
        if copy.last_seq()? != self.last_seq()? {
            return Err(fail("has another change feed".into()));
        }
        Ok((report, check))
    }
}

/// Creates the store a repack or a copy writes into: a new directory, or a new (empty) store
/// on a NATS cluster.
fn open_destination(dest: &Path, options: &crate::StoreOptions) -> StoreResult<Kv> {
    let cannot = |e: &dyn std::fmt::Display| StoreError::Repack {
        reason: format!("cannot create {}: {e}", dest.display()),
    };
    if let Some(label) = crate::engine::nats::address_of(dest) {
        let out = Kv::open_nats(label, true)
            .map_err(|e| cannot(&e))?
            .ok_or_else(|| cannot(&"the cluster did not create it"))?;
        if out.holds_versions()? {
            return Err(StoreError::Repack {
                reason: format!(
                    "{} already holds versions; give the name of a new store \
                     (nats://HOST:PORT/NAME)",
                    dest.display()
                ),
            });
        }
        return Ok(out);
    }
    if dest.exists() {
        return Err(StoreError::Repack {
            reason: format!("{} already exists; give a new directory", dest.display()),
        });
    }
    let (out, _repairs) = Kv::open(
        dest,
        &KvConfig {
            cache_capacity: options.engine_cache_bytes,
            create: true,
            convert: false,
            run_threshold: options.run_threshold,
            lock_wait: options.lock_wait,
            background_flush: options.background_flush,
        },
    )
    .map_err(|e| cannot(&e))?;
    Ok(out)
}
