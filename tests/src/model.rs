//! The reference: every version of every document, in memory. This is the specification.

use std::collections::BTreeMap;

/// All versions of all documents, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Model {
    docs: BTreeMap<String, Vec<Vec<u8>>>,
    /// Every write in order: (document, version).
    feed: Vec<(String, u64)>,
    /// Tags: (document, name) -> version.
    pub tags: BTreeMap<(String, String), u64>,
    /// Durable consumers' positions.
    pub consumers: BTreeMap<String, u64>,
    /// Each pruned document's first kept version.
    first_kept: BTreeMap<String, u64>,
    /// The versions that record a deletion, per document.
    deletions: BTreeMap<String, std::collections::BTreeSet<u64>>,
    /// Each document's version times, as the store recorded them.
    times: BTreeMap<String, Vec<u64>>,
}

impl Model {
    /// Appends a version and returns its number (1-based).
    pub fn put(&mut self, doc: &str, content: Vec<u8>) -> u64 {
        let versions = self.docs.entry(doc.to_owned()).or_default();
        versions.push(content);
        let v = versions.len() as u64;
        self.feed.push((doc.to_owned(), v));
        v
    }

    /// Appends a deletion (an empty version that reads as nothing) and returns its number.
    pub fn delete(&mut self, doc: &str) -> u64 {
        let v = self.put(doc, Vec::new());
        self.deletions.entry(doc.to_owned()).or_default().insert(v);
        v
    }

    /// Whether version `v` of `doc` records a deletion.
    pub fn is_deletion(&self, doc: &str, v: u64) -> bool {
        self.deletions.get(doc).is_some_and(|d| d.contains(&v))
    }

    /// What a read of version `v` finds: its content, or nothing for a deletion or a pruned
    /// version.
    pub fn readable(&self, doc: &str, v: u64) -> Option<&[u8]> {
        if self.is_deletion(doc, v) || v < self.first_kept(doc) {
            return None;
        }
        self.get(doc, v)
    }

    /// How many versions of `doc` its history holds (those not pruned).
    pub fn kept(&self, doc: &str) -> u64 {
        (self.head(doc) + 1).saturating_sub(self.first_kept(doc))
    }

    /// The first version of `doc` that is kept (1 unless pruned).
    pub fn first_kept(&self, doc: &str) -> u64 {
        self.first_kept.get(doc).copied().unwrap_or(1)
    }

    /// Keeps the newest `keep` versions of `doc` (at least the newest); returns how many
    /// versions it dropped.
    pub fn prune(&mut self, doc: &str, keep: u64) -> u64 {
        let head = self.head(doc);
        let from = head
            .saturating_sub(keep.max(1) - 1)
            .max(self.first_kept(doc));
        let dropped = from - self.first_kept(doc);
        if head > 0 && dropped > 0 {
            self.first_kept.insert(doc.to_owned(), from);
            self.tags.retain(|(d, _), v| d != doc || *v >= from);
        }
        dropped
    }

    /// Records the time the store gave version `v` of `doc`.
    pub fn set_time(&mut self, doc: &str, v: u64, ms: u64) {
        let times = self.times.entry(doc.to_owned()).or_default();
        let idx = usize::try_from(v - 1).expect("small version numbers");
        if times.len() <= idx {
            times.resize(idx + 1, 0);
        }
        times[idx] = ms;
    }

    /// The time of version `v` of `doc` (1-based).
    pub fn time(&self, doc: &str, v: u64) -> Option<u64> {
        let idx = usize::try_from(v.checked_sub(1)?).ok()?;
        self.times.get(doc)?.get(idx).copied()
    }

    /// The version of `doc` that was newest at `ms`: the last one with a time at or before it.
    pub fn at_time(&self, doc: &str, ms: u64) -> Option<u64> {
        let times = self.times.get(doc)?;
        let n = times.partition_point(|t| *t <= ms) as u64;
        (n >= self.first_kept(doc)).then_some(n)
    }

    /// The feed from sequence number `from` (1-based): (sequence number, document, version)
    /// per write whose version is still there (pruned ones leave the feed).
    pub fn feed_from(&self, from: u64) -> Vec<(u64, &str, u64)> {
        let start = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
        self.feed
            .iter()
            .enumerate()
            .skip(start)
            .filter(|(_, (doc, v))| *v >= self.first_kept(doc))
            .map(|(i, (doc, v))| (i as u64 + 1, doc.as_str(), *v))
            .collect()
    }

    /// How many writes the feed holds.
    pub fn feed_len(&self) -> u64 {
        self.feed.len() as u64
    }

    /// Returns version `v` (1-based) of `doc`.
    pub fn get(&self, doc: &str, v: u64) -> Option<&[u8]> {
        let idx = usize::try_from(v.checked_sub(1)?).ok()?;
        self.docs.get(doc)?.get(idx).map(Vec::as_slice)
    }

    /// Returns the latest version of `doc`.
    pub fn latest(&self, doc: &str) -> Option<&[u8]> {
        self.docs.get(doc)?.last().map(Vec::as_slice)
    }

    /// The stale version a put of `content` to `doc` expects in the harness's
    /// `Op::PutExpect(.., stale)` (one before the head; 1 for a document without versions),
    /// and whether that put is a retry of the one that made the next version (same content,
    /// not a deletion), which the store answers with that version instead of a conflict.
    pub fn stale_expectation(&self, doc: &str, content: &[u8]) -> (u64, bool) {
        let head = self.head(doc);
        let expected = if head == 0 { 1 } else { head - 1 };
        let retry = expected < head
            && !self.is_deletion(doc, expected + 1)
            && self.get(doc, expected + 1) == Some(content);
        (expected, retry)
    }

    /// Returns how many versions `doc` has.
    pub fn head(&self, doc: &str) -> u64 {
        self.docs.get(doc).map_or(0, |v| v.len() as u64)
    }

    /// Returns every document with its versions.
    pub fn docs(&self) -> impl Iterator<Item = (&str, &[Vec<u8>])> {
        self.docs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}
