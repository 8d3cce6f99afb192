//! Comparing two documents: line diff, structural JSON diff, or a binary summary.

use std::hash::Hash;

use imara_diff::{Algorithm, Diff, InternedInput};
use serde_json::Value;

use crate::json;
use crate::model::{BinarySummary, DiffStat, DocDiff, Hunk, JsonDocDiff, Line, LineKind, TextDiff};

/// Knobs for [`compare`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffOptions {
    /// Unchanged lines shown around each change (`-U`). Default 3.
    pub context: u32,
    /// Compare lines ignoring all whitespace, as `git diff -w`. Default off.
    pub ignore_whitespace: bool,
    /// Give a structural diff when both sides are JSON objects or arrays. Default on.
    pub json: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            context: 3,
            ignore_whitespace: false,
            json: true,
        }
    }
}

/// How many leading bytes are searched for a NUL, as git does (`buffer_is_binary`).
const BINARY_PROBE: usize = 8000;

/// Returns `true` when `bytes` is treated as text: git's rule, no NUL byte in the first
/// 8,000 bytes. Text need not be UTF-8: other encodings (Latin-1, ...) are diffed by lines
/// with their bytes preserved.
pub fn is_text(bytes: &[u8]) -> bool {
    !bytes[..bytes.len().min(BINARY_PROBE)].contains(&0)
}

/// Parses `bytes` as a JSON document, or explains why it is not one.
///
/// # Errors
/// serde_json's description of the first syntax error.
pub fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Compares `old` with `new`. Never fails: content that is not text gives
/// [`DocDiff::Binary`].
pub fn compare(old: &[u8], new: &[u8], options: &DiffOptions) -> DocDiff {
    if old == new {
        return DocDiff::Same;
    }
    if !is_text(old) || !is_text(new) {
        return DocDiff::Binary(binary_summary(old, new));
    }
    let text = line_diff(old, new, options);
    if options.json
        && let (Ok(a), Ok(b)) = (parse_json(old), parse_json(new))
        && is_container(&a)
        && is_container(&b)
    {
        return DocDiff::Json(JsonDocDiff {
            structure: json::diff(&a, &b),
            text,
        });
    }
    DocDiff::Text(text)
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}

/// Summarises two documents that are not both text.
pub fn binary_summary(old: &[u8], new: &[u8]) -> BinarySummary {
    let common = old.iter().zip(new).filter(|(a, b)| a != b).count() as u64;
    BinarySummary {
        old_len: old.len() as u64,
        new_len: new.len() as u64,
        differing_bytes: common + old.len().abs_diff(new.len()) as u64,
        delta_len: crate::delta::encode(old, new, 3).len() as u64,
    }
}

fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|&b| b == b'\n').collect()
}

fn without_whitespace(line: &[u8]) -> Vec<u8> {
    line.iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}

fn change_hunks<T: Eq + Hash + AsRef<[u8]> + Default>(
    before: Vec<T>,
    after: Vec<T>,
) -> Vec<imara_diff::Hunk> {
    let mut input: InternedInput<T> = InternedInput::default();
    input.update_before(before.into_iter());
    input.update_after(after.into_iter());
    // Histogram gives the most readable diffs, but on some inputs it is a few percent longer
    // than necessary; Myers (with git's heuristics) is near-minimal. Both are fast, so compute
    // both and keep the histogram diff unless Myers is strictly smaller.
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    let size = |d: &Diff| d.count_additions() + d.count_removals();
    let myers = Diff::compute(Algorithm::Myers, &input);
    if size(&myers) < size(&diff) {
        diff = myers;
    }
    diff.postprocess_lines(&input);
    diff.hunks().collect()
}

/// The line diff of two texts (any encoding; lines end at '\\n'), grouped into hunks with `options.context` lines around.
pub fn line_diff(old: &[u8], new: &[u8], options: &DiffOptions) -> TextDiff {
    let before = split_lines(old);
    let after = split_lines(new);
    let changes = if options.ignore_whitespace {
        change_hunks(
            before.iter().map(|l| without_whitespace(l)).collect(),
            after.iter().map(|l| without_whitespace(l)).collect(),
        )
    } else {
        change_hunks(before.clone(), after.clone())
    };
    let line = |bytes: &[u8], kind: LineKind| {
        let (body, no_newline) = match bytes.strip_suffix(b"\n") {
            Some(b) => (b, false),
            None => (bytes, true),
        };
        let (text, bytes) = match std::str::from_utf8(body) {
            Ok(t) => (t.to_owned(), None),
            Err(_) => (
                String::from_utf8_lossy(body).into_owned(),
                Some(body.to_vec()),
            ),
        };
        Line {
            kind,
            text,
            bytes,
            no_newline,
        }
    };
    let ctx = options.context;
    let old_total = before.len() as u32;
    let mut hunks = Vec::new();
    let mut stat = DiffStat::default();
    let mut i = 0;
    while i < changes.len() {
        // Group changes whose unchanged gap is at most twice the context.
        let mut j = i;
        while j + 1 < changes.len()
            && changes[j + 1].before.start - changes[j].before.end <= 2 * ctx
        {
            j += 1;
        }
        let first = &changes[i];
        let last = &changes[j];
        let old_start = first.before.start.saturating_sub(ctx);
        let new_start = first.after.start - (first.before.start - old_start);
        let old_end = (last.before.end + ctx).min(old_total);
        let new_end = last.after.end + (old_end - last.before.end);
        let mut lines = Vec::new();
        let mut pos = old_start;
        for c in &changes[i..=j] {
            // Context comes from the old side, so the patch applies to the old document.
            for k in pos..c.before.start {
                lines.push(line(before[k as usize], LineKind::Context));
            }
            for k in c.before.clone() {
                lines.push(line(before[k as usize], LineKind::Removed));
            }
            for k in c.after.clone() {
                lines.push(line(after[k as usize], LineKind::Added));
            }
            stat.deletions += c.before.len() as u64;
            stat.insertions += c.after.len() as u64;
            pos = c.before.end;
        }
        for k in pos..old_end {
            lines.push(line(before[k as usize], LineKind::Context));
        }
        hunks.push(Hunk {
            old_start: old_start.into(),
            old_len: (old_end - old_start).into(),
            new_start: new_start.into(),
            new_len: (new_end - new_start).into(),
            lines,
        });
        i = j + 1;
    }
    TextDiff { hunks, stat }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: &DocDiff) -> &TextDiff {
        d.text()
            .unwrap_or_else(|| panic!("expected a line diff, got {d:?}"))
    }

    #[test]
    fn identical_is_same_and_binary_is_summarised() {
        let o = DiffOptions::default();
        assert_eq!(compare(b"x", b"x", &o), DocDiff::Same);
        let DocDiff::Binary(b) = compare(b"a\0b", b"a", &o) else {
            panic!("binary expected")
        };
        assert_eq!((b.old_len, b.new_len, b.differing_bytes), (3, 1, 2));
        assert!(b.delta_len > 0);
        // git's rule: a NUL in the first 8,000 bytes makes content binary, a later one or
        // bytes that are not UTF-8 do not.
        let mut late_nul = b"line\n".repeat(2000);
        late_nul.push(0);
        assert!(matches!(compare(&late_nul, b"x\n", &o), DocDiff::Text(_)));
        assert!(matches!(compare(&[0xff, 0xfe], b"a", &o), DocDiff::Text(_)));
    }

    /// See: issue 12, item 7 (Latin-1 text was "Binary files differ").
    #[test]
    fn latin1_text_is_diffed_by_lines_with_its_bytes_kept() {
        let old = b"caf\xe9\nna\xefve\nend\n";
        let new = b"caf\xe9\nna\xefvet\xe9\nend\n";
        let diff = compare(old, new, &DiffOptions::default());
        let out =
            crate::render::unified_bytes(&diff, "a/x", "b/x", crate::render::Style::default());
        assert!(out.windows(7).any(|w| w == b"-na\xefve\n"), "{out:?}");
        assert!(out.windows(9).any(|w| w == b"+na\xefvet\xe9\n"), "{out:?}");
        assert!(out.windows(6).any(|w| w == b" caf\xe9\n"), "{out:?}");
    }

    #[test]
    fn distant_changes_make_two_hunks_with_context() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new = old
            .replacen("\n2\n", "\ntwo\n", 1)
            .replacen("\n18\n", "\neighteen\n", 1);
        let d = compare(
            old.as_bytes(),
            new.as_bytes(),
            &DiffOptions {
                context: 2,
                ..DiffOptions::default()
            },
        );
        let t = text(&d);
        assert_eq!(t.hunks.len(), 2);
        assert_eq!((t.hunks[0].old_start, t.hunks[0].old_len), (0, 4));
        assert_eq!((t.hunks[1].old_start, t.hunks[1].old_len), (15, 5));
        assert_eq!(
            t.stat,
            DiffStat {
                insertions: 2,
                deletions: 2
            }
        );
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let d = compare(b"a\nb", b"a\nb\n", &DiffOptions::default());
        let t = text(&d);
        let removed: Vec<_> = t.hunks[0]
            .lines
            .iter()
            .filter(|l| l.kind == LineKind::Removed)
            .collect();
        assert!(removed[0].no_newline);
    }

    #[test]
    fn whitespace_changes_can_be_ignored() {
        let o = DiffOptions {
            ignore_whitespace: true,
            ..DiffOptions::default()
        };
        let d = compare(b"a b\nc\n", b"a  b\nc\nd\n", &o);
        assert_eq!(
            text(&d).stat,
            DiffStat {
                insertions: 1,
                deletions: 0
            }
        );
    }

    #[test]
    fn json_documents_get_a_structural_diff() {
        let d = compare(
            br#"{"price": 4}"#,
            br#"{"price": 5}"#,
            &DiffOptions::default(),
        );
        let DocDiff::Json(j) = &d else {
            panic!("json expected, got {d:?}")
        };
        assert_eq!(j.structure.summary(), ["/price: 4 -> 5"]);
        let off = DiffOptions {
            json: false,
            ..DiffOptions::default()
        };
        assert!(matches!(
            compare(br#"{"price": 4}"#, br#"{"price": 5}"#, &off),
            DocDiff::Text(_)
        ));
        assert!(matches!(
            compare(b"4", b"5", &DiffOptions::default()),
            DocDiff::Text(_)
        ));
    }
}
