//! Comparing two documents line by line.

use imara_diff::{Algorithm, Diff, InternedInput};

use crate::model::{BinarySummary, DiffStat, DocDiff, Hunk, Line, LineKind, TextDiff};

/// Knobs for [`compare`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffOptions {
    /// Unchanged lines shown around each change (`-U`). Default 3.
    pub context: u32,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self { context: 3 }
    }
}

/// Returns `true` when `bytes` is treated as text: valid UTF-8 without NUL bytes (git's rule
/// for NUL).
pub fn is_text(bytes: &[u8]) -> bool {
    !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok()
}

/// Compares `old` with `new`. Never fails: content that is not text gives
/// [`DocDiff::Binary`].
pub fn compare(old: &[u8], new: &[u8], options: &DiffOptions) -> DocDiff {
    if old == new {
        return DocDiff::Same;
    }
    if !is_text(old) || !is_text(new) {
        return DocDiff::Binary(BinarySummary {
            old_len: old.len() as u64,
            new_len: new.len() as u64,
        });
    }
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    diff.postprocess_lines(&input);
    let changes: Vec<imara_diff::Hunk> = diff.hunks().collect();
    let line = |token: imara_diff::Token, kind: LineKind| {
        let bytes: &[u8] = input.interner[token];
        let (body, no_newline) = match bytes.strip_suffix(b"\n") {
            Some(b) => (b, false),
            None => (bytes, true),
        };
        // Both inputs passed the UTF-8 check and lines split only at '\n'.
        let text = std::str::from_utf8(body).expect("lines of UTF-8 text are UTF-8");
        Line {
            kind,
            text: text.to_owned(),
            no_newline,
        }
    };
    let ctx = options.context;
    let old_total = input.before.len() as u32;
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
            for k in pos..c.before.start {
                lines.push(line(input.before[k as usize], LineKind::Context));
            }
            for k in c.before.clone() {
                lines.push(line(input.before[k as usize], LineKind::Removed));
            }
            for k in c.after.clone() {
                lines.push(line(input.after[k as usize], LineKind::Added));
            }
            stat.deletions += u64::from(c.before.len() as u32);
            stat.insertions += u64::from(c.after.len() as u32);
            pos = c.before.end;
        }
        for k in pos..old_end {
            lines.push(line(input.before[k as usize], LineKind::Context));
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
    DocDiff::Text(TextDiff { hunks, stat })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: &DocDiff) -> &TextDiff {
        match d {
            DocDiff::Text(t) => t,
            other => panic!("expected text diff, got {other:?}"),
        }
    }

    #[test]
    fn identical_is_same_and_binary_is_summarised() {
        let o = DiffOptions::default();
        assert_eq!(compare(b"x", b"x", &o), DocDiff::Same);
        assert_eq!(
            compare(b"a\0b", b"a", &o),
            DocDiff::Binary(BinarySummary {
                old_len: 3,
                new_len: 1
            })
        );
        assert!(matches!(
            compare(&[0xff, 0xfe], b"a", &o),
            DocDiff::Binary(_)
        ));
    }

    #[test]
    fn distant_changes_make_two_hunks_with_context() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new = old
            .replacen("\n2\n", "\ntwo\n", 1)
            .replacen("\n18\n", "\neighteen\n", 1);
        let d = compare(old.as_bytes(), new.as_bytes(), &DiffOptions { context: 2 });
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
}
