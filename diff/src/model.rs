//! The result of comparing two documents: plain data, serialisable with serde.

use serde::{Deserialize, Serialize};

/// How two documents differ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DocDiff {
    /// The two documents are byte-identical.
    Same,
    /// Both sides are text: the changed lines in hunks.
    Text(TextDiff),
    /// Both sides are JSON objects or arrays: the structural diff, and the line diff too.
    Json(JsonDocDiff),
    /// At least one side is not text; only a summary is given.
    Binary(BinarySummary),
}

/// A structural JSON diff with the line diff of the same two documents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonDocDiff {
    /// The RFC 6902 patch and the change list.
    pub structure: crate::json::JsonDiff,
    /// The line diff of the two documents' text.
    pub text: TextDiff,
}

impl DocDiff {
    /// Returns the line diff, if any (text and JSON documents).
    pub fn text(&self) -> Option<&TextDiff> {
        match self {
            Self::Text(t) => Some(t),
            Self::Json(j) => Some(&j.text),
            Self::Same | Self::Binary(_) => None,
        }
    }

    /// Returns lines added and removed (zero for binary and identical content).
    pub fn stat(&self) -> DiffStat {
        match self {
            Self::Text(t) => t.stat,
            Self::Json(j) => j.text.stat,
            Self::Same | Self::Binary(_) => DiffStat::default(),
        }
    }
}

/// A line diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextDiff {
    /// The hunks, in file order.
    pub hunks: Vec<Hunk>,
    /// Lines added and removed over the whole diff.
    pub stat: DiffStat,
}

/// Counts of changed lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStat {
    /// Lines only in the new side.
    pub insertions: u64,
    /// Lines only in the old side.
    pub deletions: u64,
}

/// A run of changes with surrounding context, as in a unified diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    /// Zero-based index of the hunk's first line in the old document.
    pub old_start: u64,
    /// Number of old lines the hunk covers (context and removed).
    pub old_len: u64,
    /// Zero-based index of the hunk's first line in the new document.
    pub new_start: u64,
    /// Number of new lines the hunk covers (context and added).
    pub new_len: u64,
    /// The lines, in order.
    pub lines: Vec<Line>,
}

/// One line of a hunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Context, removed or added.
    pub kind: LineKind,
    /// The line's text, without its line terminator (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
    /// The line's exact bytes, when they are not valid UTF-8 (`text` then shows them
    /// lossily); `None` for UTF-8 lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
    /// `true` when the line is the last of its document and has no terminating newline.
    pub no_newline: bool,
}

/// The role of a line in a hunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Present on both sides.
    Context,
    /// Only in the old document.
    Removed,
    /// Only in the new document.
    Added,
}

/// What is known of two documents that cannot be compared line by line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinarySummary {
    /// Length of the old document.
    pub old_len: u64,
    /// Length of the new document.
    pub new_len: u64,
    /// Bytes that differ position by position, plus the difference in length.
    pub differing_bytes: u64,
    /// Size of the storage delta (zstd with the old side as prefix) from old to new.
    pub delta_len: u64,
}
