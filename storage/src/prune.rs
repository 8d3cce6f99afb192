//! Retention: dropping a document's oldest versions for good (the only operation that
//! removes versions), re-basing every delta that relied on a dropped one.

use std::collections::HashSet;

use strata_core::{ContentHash, DocId, ObjectKind, VersionNo};
use strata_diff::delta;

use crate::encode::{Base, Plan};
use crate::error::{StoreError, StoreResult};
use crate::store::Store;

/// Which of a document's versions [`Store::prune`] keeps. The newest version is always kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// The newest `n` versions (at least 1).
    KeepLast(u64),
    /// The versions made at or after this time (ms since the Unix epoch), and the newest.
    Since(u64),
}

/// What pruning does with tagged versions it would drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tags {
    /// Refuse, dropping nothing (`prune` without force).
    Refuse,
    /// Drop them and their tags (`prune` with force).
    Drop,
    /// Keep them and every version after them (the store's retention rule).
    Spare,
}

/// What [`Store::prune`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Versions dropped.
    pub versions: u64,
    /// The first version kept (0 when the document does not exist).
    pub first_kept: u64,
    /// Objects of kept versions (of any document) rewritten because their delta chain went
    /// through a dropped version's object.
    pub rebased: u64,
    /// Objects removed (the dropped versions' that nothing else needed).
    pub objects_removed: u64,
    /// Tags that named dropped versions and were removed (only with `force`).
    pub tags_removed: Vec<String>,
}

impl Store {
    /// Drops the versions of `doc` that `keep` does not keep, for good: they vanish from its
    /// history and from the change feed, their tags go (only with `force`: a tagged version is
    /// refused otherwise), every kept version of every document still reads byte-identical
    /// (an object whose delta chain went through a dropped version's object is re-encoded
    /// against the next object of its chain that stays, or in full), and the objects no
    /// version needs any more are removed. Version numbers do not change. Packed objects'
    /// bytes count as no longer used until `repack`.
    ///
    /// # Errors
    /// [`StoreError::Tag`] when a dropped version is tagged and `force` is not set (nothing is
    /// dropped); [`StoreError::BadRetention`] for `KeepLast(0)`; corruption and engine errors.
    ///
    /// # Example
    /// ```
    /// use strata_storage::{At, DocId, Policy, Retention, Store, StoreOptions, VersionNo};
    ///
    /// let store = Store::open_temporary_with(StoreOptions::default().policy(Policy::Chain { max_depth: 50 }))?;
    /// let doc = DocId::new("log.txt")?;
    /// let mut text = String::new();
    /// for i in 0..10 {
    ///     text.push_str(&format!("line {i}\n"));
    ///     store.put(&doc, text.as_bytes())?;
    /// }
    /// let report = store.prune(&doc, Retention::KeepLast(3), false)?;
    /// assert_eq!((report.versions, report.first_kept), (7, 8));
    /// assert!(store.get(&doc, At::Version(VersionNo(7)))?.is_none());
    /// assert_eq!(store.get(&doc, At::Version(VersionNo(8)))?.unwrap(), text.lines().take(8).map(|l| format!("{l}\n")).collect::<String>().into_bytes());
    /// assert_eq!(store.history(&doc)?.len(), 3);
    /// assert!(store.verify()?.is_clean());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prune(&self, doc: &DocId, keep: Retention, force: bool) -> StoreResult<PruneReport> {
        let tags = if force { Tags::Drop } else { Tags::Refuse };
        self.prune_with(doc, keep, tags)
    }

    /// Applies the store's retention rule (if any) to the documents a commit wrote.
    pub(crate) fn apply_retention<'d>(
        &self,
        docs: impl IntoIterator<Item = &'d DocId>,
    ) -> StoreResult<()> {
        let rule = match self.retention() {
            // The newest version is always kept.
            Some(Retention::KeepLast(0)) => Retention::KeepLast(1),
            Some(rule) => rule,
            None => return Ok(()),
        };
        for doc in docs {
            self.prune_with(doc, rule, Tags::Spare)?;
        }
        Ok(())
    }

    fn prune_with(&self, doc: &DocId, keep: Retention, tags: Tags) -> StoreResult<PruneReport> {
        let mut report = {
            let _gate = self.maintenance()?;
            self.prune_locked(doc, keep, tags)?
        };
        if report.versions > 0 {
            report.objects_removed = self.gc()?;
        }
        Ok(report)
    }

    fn prune_locked(&self, doc: &DocId, keep: Retention, tags: Tags) -> StoreResult<PruneReport> {
        let kv = &self.inner.kv;
        let mut report = PruneReport::default();
        let Some(num) = kv.doc_num(doc.as_str())? else {
            return Ok(report);
        };
        let history = kv.versions(num)?;
        let (Some(first), Some(newest)) = (history.first(), history.last()) else {
            return Ok(report);
        };
        let keep_from = match keep {
            Retention::KeepLast(0) => {
                return Err(StoreError::BadRetention {
                    reason: "keep at least 1 version (the newest is always kept)".into(),
                });
            }
            Retention::KeepLast(n) => newest
                .version
                .get()
                .saturating_sub(n - 1)
                .max(first.version.get()),
            Retention::Since(ms) => history
                .iter()
                .find(|r| r.created_at_ms >= ms)
                .map_or(newest.version.get(), |r| r.version.get()),
        };
        // Tags on versions about to go.
        let mut doomed_tags: Vec<(String, VersionNo)> = self
            .tags(Some(doc))?
            .into_iter()
            .filter(|(_, _, v)| v.get() < keep_from)
            .map(|(_, name, v)| (name, v))
            .collect();
        let keep_from = match (tags, doomed_tags.iter().map(|(_, v)| v.get()).min()) {
            (Tags::Spare, Some(oldest_tagged)) => {
                doomed_tags.clear();
                oldest_tagged
            }
            _ => keep_from,
        };
        report.first_kept = keep_from;
        if keep_from <= first.version.get() {
            return Ok(report);
        }
        let keep_from = VersionNo(keep_from);
        if !doomed_tags.is_empty() && tags == Tags::Refuse {
            let names: Vec<String> = doomed_tags
                .iter()
                .map(|(n, v)| format!("'{n}' ({doc}@{v})"))
                .collect();
            return Err(StoreError::Tag {
                reason: format!(
                    "pruning '{doc}' before version {keep_from} would drop tagged versions: {}; remove the tags or force it (the CLI's --force)",
                    names.join(", ")
                ),
            });
        }
        let dropped: HashSet<ContentHash> = history
            .iter()
            .filter(|r| r.version < keep_from)
            .map(|r| r.hash)
            .collect();
        report.versions = kv.drop_versions_before(num, keep_from)?;
        for (name, _) in doomed_tags {
            kv.set_tag(num, &name, None)?;
            report.tags_removed.push(name);
        }
        // Every object a version still names, across the store.
        let mut live: HashSet<ContentHash> = HashSet::new();
        for (n, _, _) in kv.documents()? {
            live.extend(kv.versions(n)?.into_iter().map(|r| r.hash));
        }
        let dead: HashSet<ContentHash> = dropped.difference(&live).copied().collect();
        if !dead.is_empty() {
            report.rebased = self.rebase_off(&live, &dead)?;
        }
        kv.flush()?;
        Ok(report)
    }

    /// Re-encodes every live object whose delta chain passes through a dead one, against the
    /// first object further along its chain that stays and whose own chain is clean (else in
    /// full). Returns how many it rewrote.
    fn rebase_off(
        &self,
        live: &HashSet<ContentHash>,
        dead: &HashSet<ContentHash>,
    ) -> StoreResult<u64> {
        let kv = &self.inner.kv;
        // The objects an object's delta chain passes through, nearest first.
        let chain_of = |start: ContentHash| -> StoreResult<Vec<ContentHash>> {
            let mut chain = Vec::new();
            let mut cursor = start;
            for _ in 0..=strata_core::policy::MAX_CHAIN_DEPTH {
                match kv.object_header(&cursor)?.map(|h| h.kind) {
                    Some(ObjectKind::Delta { base, .. }) => {
                        chain.push(base);
                        cursor = base;
                    }
                    _ => return Ok(chain),
                }
            }
            Err(StoreError::corrupt(
                format!("object {start}"),
                "delta chain is longer than the limit (a cycle?)",
            ))
        };
        let mut rebased = 0;
        let level = self.inner.options.level;
        for hash in live {
            // Headers are read as they are now: an object rebased earlier in this loop has a
            // clean chain already.
            let chain = chain_of(*hash)?;
            let Some(last_dead) = chain.iter().rposition(|h| dead.contains(h)) else {
                continue;
            };
            // A live object beyond the last dead one has a clean chain (chains are linear).
            let base = chain[last_dead + 1..]
                .iter()
                .find(|h| live.contains(*h))
                .copied();
            let content = self.read_object(hash)?;
            let plan = match base.map(|b| Ok::<_, StoreError>((b, kv.object_header(&b)?))) {
                Some(Ok((b, Some(base_header)))) => {
                    let base_content = self.read_object(&b)?;
                    let d = delta::encode(&base_content, &content, level);
                    let full = Plan::full(&content, level);
                    let input = Base::of(b, &base_header).input(
                        VersionNo::FIRST,
                        content.len() as u64,
                        full.header.stored_len,
                        d.len() as u64,
                    );
                    if (d.len() as u64) < full.header.stored_len {
                        Plan::delta(content.len() as u64, b, &input, d)
                    } else {
                        full
                    }
                }
                Some(Err(e)) => return Err(e),
                _ => Plan::full(&content, level),
            };
            let _rewrite = self
                .inner
                .object_gate
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            kv.put_object(hash, &plan.header, &plan.payload)?;
            rebased += 1;
        }
        Ok(rebased)
    }
}
