//! The reference: every version of every document, in memory. This is the specification.

use std::collections::BTreeMap;

/// All versions of all documents, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Model {
    docs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Model {
    /// Appends a version and returns its number (1-based).
    pub fn put(&mut self, doc: &str, content: Vec<u8>) -> u64 {
        let versions = self.docs.entry(doc.to_owned()).or_default();
        versions.push(content);
        versions.len() as u64
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

    /// Returns how many versions `doc` has.
    pub fn head(&self, doc: &str) -> u64 {
        self.docs.get(doc).map_or(0, |v| v.len() as u64)
    }

    /// Returns every document with its versions.
    pub fn docs(&self) -> impl Iterator<Item = (&str, &[Vec<u8>])> {
        self.docs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}
