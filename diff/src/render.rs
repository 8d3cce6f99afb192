//! Rendering a [`DocDiff`] for people.

use std::fmt::Write as _;

use crate::model::{DocDiff, Hunk, LineKind};

/// Renders `diff` in the unified format (`--- old`, `+++ new`, `@@` hunks) that GNU `patch`
/// and `git apply` read. Identical documents render as the empty string; binary ones as one
/// line, `Binary files OLD and NEW differ (X bytes -> Y bytes)`.
pub fn unified(diff: &DocDiff, old_label: &str, new_label: &str) -> String {
    let mut out = String::new();
    match diff {
        DocDiff::Same => {}
        DocDiff::Binary(b) => {
            let _ = writeln!(
                out,
                "Binary files {old_label} and {new_label} differ ({} bytes -> {} bytes)",
                b.old_len, b.new_len
            );
        }
        DocDiff::Text(t) => {
            let _ = writeln!(out, "--- {old_label}\n+++ {new_label}");
            for h in &t.hunks {
                write_hunk(&mut out, h);
            }
        }
    }
    out
}

/// Returns the `@@ -a,b +c,d @@` header of a hunk, with GNU diff's numbering.
pub fn hunk_header(h: &Hunk) -> String {
    format!(
        "@@ -{} +{} @@",
        range(h.old_start, h.old_len),
        range(h.new_start, h.new_len)
    )
}

fn range(start: u64, len: u64) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{len}", start + 1),
    }
}

fn write_hunk(out: &mut String, h: &Hunk) {
    out.push_str(&hunk_header(h));
    out.push('\n');
    for line in &h.lines {
        out.push(match line.kind {
            LineKind::Context => ' ',
            LineKind::Removed => '-',
            LineKind::Added => '+',
        });
        out.push_str(&line.text);
        out.push('\n');
        if line.no_newline {
            out.push_str("\\ No newline at end of file\n");
        }
    }
}

/// Renders a one-line summary like git's `--stat` footer:
/// `1 file changed, 3 insertions(+), 1 deletion(-)`.
pub fn stat_line(diff: &DocDiff) -> String {
    match diff {
        DocDiff::Same => "0 files changed".to_owned(),
        DocDiff::Binary(b) => {
            format!(
                "1 file changed, binary ({} bytes -> {} bytes)",
                b.old_len, b.new_len
            )
        }
        DocDiff::Text(t) => {
            let plural =
                |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
            format!(
                "1 file changed, {}(+), {}(-)",
                plural(t.stat.insertions, "insertion", "insertions"),
                plural(t.stat.deletions, "deletion", "deletions")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DiffOptions, compare};

    #[test]
    fn unified_output_matches_gnu_shape() {
        let d = compare(b"a\nb\nc\n", b"a\nc\nd", &DiffOptions::default());
        assert_eq!(
            unified(&d, "x", "y"),
            "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n c\n+d\n\\ No newline at end of file\n"
        );
        assert_eq!(
            stat_line(&d),
            "1 file changed, 1 insertion(+), 1 deletion(-)"
        );
    }

    #[test]
    fn empty_old_side_uses_zero_range() {
        let d = compare(b"", b"new\n", &DiffOptions::default());
        assert_eq!(unified(&d, "a", "b"), "--- a\n+++ b\n@@ -0,0 +1 @@\n+new\n");
    }
}
