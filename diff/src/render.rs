//! Rendering a [`DocDiff`] for people: unified diff, word diff, stat, with optional colour.

use std::fmt::Write as _;

use imara_diff::{Algorithm, Diff, InternedInput};

use crate::model::{DocDiff, Hunk, Line, LineKind, TextDiff};

/// How to decorate output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours: removed red, added green, hunk headers cyan, file headers bold.
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

const RED: &str = "31";
const GREEN: &str = "32";
const CYAN: &str = "36";
const BOLD: &str = "1";

/// Renders `diff` in the unified format (`--- old`, `+++ new`, `@@` hunks) that GNU `patch`
/// and `git apply` read. Identical documents render as the empty string; binary ones as one
/// summary line; JSON documents as their change list by JSON path followed by the line diff
/// (patch tools skip the leading lines).
pub fn unified(diff: &DocDiff, old_label: &str, new_label: &str) -> String {
    unified_styled(diff, old_label, new_label, Style::default())
}

/// [`unified`] with a [`Style`]. Lines that are not UTF-8 are shown lossily; use
/// [`unified_bytes`] for output that patch tools apply to such documents.
pub fn unified_styled(diff: &DocDiff, old_label: &str, new_label: &str, style: Style) -> String {
    String::from_utf8_lossy(&unified_bytes(diff, old_label, new_label, style)).into_owned()
}

/// [`unified_styled`] as bytes, every line written with its exact bytes (text in Latin-1 or
/// another encoding stays byte-identical, so GNU patch applies the output).
pub fn unified_bytes(diff: &DocDiff, old_label: &str, new_label: &str, style: Style) -> Vec<u8> {
    let mut out = Vec::new();
    match diff {
        DocDiff::Same => {}
        DocDiff::Binary(_) => {
            out.extend_from_slice(binary_line(diff, old_label, new_label).as_bytes());
            out.push(b'\n');
        }
        DocDiff::Text(t) => write_text(&mut out, t, old_label, new_label, style),
        DocDiff::Json(j) => {
            let changes = j.structure.summary();
            let mut head = String::new();
            let _ = writeln!(
                head,
                "{}",
                style.paint(BOLD, &format!("JSON changes ({}):", changes.len()))
            );
            for c in changes {
                let _ = writeln!(head, "  {c}");
            }
            head.push('\n');
            out.extend_from_slice(head.as_bytes());
            write_text(&mut out, &j.text, old_label, new_label, style);
        }
    }
    out
}

/// `1 byte`, `2 bytes`.
fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

fn binary_line(diff: &DocDiff, old_label: &str, new_label: &str) -> String {
    match diff {
        DocDiff::Binary(b) => format!(
            "Binary files {old_label} and {new_label} differ ({} -> {}, {} differ, delta {})",
            bytes(b.old_len),
            bytes(b.new_len),
            bytes(b.differing_bytes),
            bytes(b.delta_len)
        ),
        _ => String::new(),
    }
}

fn write_text(out: &mut Vec<u8>, t: &TextDiff, old_label: &str, new_label: &str, style: Style) {
    if t.hunks.is_empty() {
        return;
    }
    let mut header = String::new();
    write_file_header(&mut header, old_label, new_label, style);
    out.extend_from_slice(header.as_bytes());
    for h in &t.hunks {
        out.extend_from_slice(style.paint(CYAN, &hunk_header(h)).as_bytes());
        out.push(b'\n');
        for line in &h.lines {
            let (tag, code) = match line.kind {
                LineKind::Context => (b' ', None),
                LineKind::Removed => (b'-', Some(RED)),
                LineKind::Added => (b'+', Some(GREEN)),
            };
            let body = line.bytes.as_deref().unwrap_or(line.text.as_bytes());
            let colour = code.filter(|_| style.color);
            if let Some(c) = colour {
                out.extend_from_slice(format!("\x1b[{c}m").as_bytes());
            }
            out.push(tag);
            out.extend_from_slice(body);
            if colour.is_some() {
                out.extend_from_slice(b"\x1b[0m");
            }
            out.push(b'\n');
            if line.no_newline {
                out.extend_from_slice(b"\\ No newline at end of file\n");
            }
        }
    }
}

fn write_file_header(out: &mut String, old_label: &str, new_label: &str, style: Style) {
    let _ = writeln!(out, "{}", style.paint(BOLD, &format!("--- {old_label}")));
    let _ = writeln!(out, "{}", style.paint(BOLD, &format!("+++ {new_label}")));
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

/// Renders a word diff for prose, like `git diff --word-diff`: lines without prefixes, with
/// removed words as `[-old-]` and added words as `{+new+}` inside the lines.
pub fn word_diff(diff: &DocDiff, old_label: &str, new_label: &str, style: Style) -> String {
    let Some(t) = diff.text() else {
        return unified_styled(diff, old_label, new_label, style);
    };
    let mut out = String::new();
    if t.hunks.is_empty() {
        return out;
    }
    write_file_header(&mut out, old_label, new_label, style);
    for h in &t.hunks {
        let _ = writeln!(out, "{}", style.paint(CYAN, &hunk_header(h)));
        let mut i = 0;
        while i < h.lines.len() {
            if h.lines[i].kind == LineKind::Context {
                out.push_str(&h.lines[i].text);
                out.push('\n');
                i += 1;
                continue;
            }
            let start = i;
            while i < h.lines.len() && h.lines[i].kind != LineKind::Context {
                i += 1;
            }
            write_word_run(&mut out, &h.lines[start..i], style);
        }
    }
    out
}

fn join_kind(lines: &[Line], kind: LineKind) -> String {
    let parts: Vec<&str> = lines
        .iter()
        .filter(|l| l.kind == kind)
        .map(|l| l.text.as_str())
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        parts.join("\n") + "\n"
    }
}

/// Splits text into words, runs of whitespace, and single punctuation characters.
fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let class = |c: char| {
        if c.is_alphanumeric() || c == '_' {
            0
        } else if c.is_whitespace() {
            1
        } else {
            2
        }
    };
    let mut prev: Option<u8> = None;
    for (i, c) in text.char_indices() {
        let k = class(c);
        if let Some(p) = prev
            && (p != k || k == 2)
        {
            out.push(&text[start..i]);
            start = i;
        }
        prev = Some(k);
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// One piece of a line compared word by word: its text, and whether it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordPiece<'a> {
    /// The words and spaces of the piece.
    pub text: &'a str,
    /// `true` when the piece is only on its own side (removed from the old text, or added
    /// in the new).
    pub changed: bool,
}

/// Compares `old` and `new` word by word (words, runs of whitespace and single punctuation
/// characters, as [`word_diff`] does): returns each side as pieces, the changed ones marked,
/// for a viewer that highlights changed words inside changed lines.
///
/// ```
/// let (old, new) = strata_diff::render::word_pieces("alpha beta gamma", "alpha BETA gamma");
/// let changed: Vec<_> = old.iter().chain(&new).filter(|p| p.changed).map(|p| p.text).collect();
/// assert_eq!(changed, ["beta", "BETA"]);
/// ```
pub fn word_pieces<'a>(old: &'a str, new: &'a str) -> (Vec<WordPiece<'a>>, Vec<WordPiece<'a>>) {
    let (a, b) = (words(old), words(new));
    let mut input: InternedInput<&str> = InternedInput::default();
    input.update_before(a.iter().copied());
    input.update_after(b.iter().copied());
    let d = Diff::compute(Algorithm::Myers, &input);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let (mut pos_a, mut pos_b) = (0usize, 0usize);
    let push = |side: &mut Vec<WordPiece<'a>>, words: &[&'a str], changed: bool| {
        for w in words {
            side.push(WordPiece { text: w, changed });
        }
    };
    for h in d.hunks() {
        let (bs, be) = (h.before.start as usize, h.before.end as usize);
        let (as_, ae) = (h.after.start as usize, h.after.end as usize);
        push(&mut left, &a[pos_a..bs], false);
        push(&mut right, &b[pos_b..as_], false);
        push(&mut left, &a[bs..be], true);
        push(&mut right, &b[as_..ae], true);
        pos_a = be;
        pos_b = ae;
    }
    push(&mut left, &a[pos_a..], false);
    push(&mut right, &b[pos_b..], false);
    (left, right)
}

fn write_word_run(out: &mut String, run: &[Line], style: Style) {
    let old = join_kind(run, LineKind::Removed);
    let new = join_kind(run, LineKind::Added);
    let (left, right) = word_pieces(&old, &new);
    let mut text = String::new();
    let mark = |text: &mut String, open: &str, close: &str, code: &str, body: String| {
        if body.is_empty() {
            return;
        }
        // Markers never span a newline, so every output line stands alone.
        for (n, piece) in body.split('\n').enumerate() {
            if n > 0 {
                text.push('\n');
            }
            if !piece.is_empty() {
                text.push_str(&style.paint(code, &format!("{open}{piece}{close}")));
            }
        }
    };
    // The changed pieces from `at` on, joined; `at` moves past them.
    let changed_run = |side: &[WordPiece<'_>], at: &mut usize| -> String {
        let run: Vec<&str> = side[*at..]
            .iter()
            .take_while(|p| p.changed)
            .map(|p| p.text)
            .collect();
        *at += run.len();
        run.concat()
    };
    // Walk both sides: unchanged pieces are the same words on each, in the same order.
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        let removed = changed_run(&left, &mut i);
        let added = changed_run(&right, &mut j);
        mark(&mut text, "[-", "-]", RED, removed);
        mark(&mut text, "{+", "+}", GREEN, added);
        if let Some(p) = left.get(i) {
            text.push_str(p.text);
            i += 1;
            j += 1;
        }
    }
    out.push_str(&text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}

/// Renders git's `--stat` form: ` NAME | 5 ++---` and the summary line.
pub fn stat(diff: &DocDiff, name: &str) -> String {
    let graph = match diff {
        DocDiff::Same => String::new(),
        DocDiff::Binary(b) => format!(" {name} | Bin {} -> {} bytes\n", b.old_len, b.new_len),
        DocDiff::Text(_) | DocDiff::Json(_) => {
            let s = diff.stat();
            let total = s.insertions + s.deletions;
            let width = 50u64;
            let (plus, minus) = if total > width {
                let p = (s.insertions * width).div_ceil(total);
                (p, width.saturating_sub(p))
            } else {
                (s.insertions, s.deletions)
            };
            format!(
                " {name} | {total} {}{}\n",
                "+".repeat(plus as usize),
                "-".repeat(minus as usize)
            )
        }
    };
    format!("{graph} {}\n", stat_line(diff))
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
        DocDiff::Text(_) | DocDiff::Json(_) => {
            let s = diff.stat();
            let plural =
                |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
            format!(
                "1 file changed, {}(+), {}(-)",
                plural(s.insertions, "insertion", "insertions"),
                plural(s.deletions, "deletion", "deletions")
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
        assert_eq!(
            stat(&d, "doc"),
            " doc | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n"
        );
    }

    #[test]
    fn empty_old_side_uses_zero_range() {
        let d = compare(b"", b"new\n", &DiffOptions::default());
        assert_eq!(unified(&d, "a", "b"), "--- a\n+++ b\n@@ -0,0 +1 @@\n+new\n");
    }

    #[test]
    fn colour_marks_lines() {
        let d = compare(b"a\n", b"b\n", &DiffOptions::default());
        let s = unified_styled(&d, "x", "y", Style { color: true });
        assert!(
            s.contains("\x1b[31m-a\x1b[0m")
                && s.contains("\x1b[32m+b\x1b[0m")
                && s.contains("\x1b[36m@@")
        );
    }

    #[test]
    fn word_diff_marks_changed_words() {
        let d = compare(
            b"the quick brown fox\nstays\n",
            b"the slow brown fox\nstays\n",
            &DiffOptions::default(),
        );
        let s = word_diff(&d, "a", "b", Style::default());
        assert!(s.contains("the [-quick-]{+slow+} brown fox\n"), "{s}");
        assert!(s.ends_with("stays\n"), "{s}");
    }

    #[test]
    fn json_renders_changes_then_lines() {
        let d = compare(
            b"{\"price\": 4}\n",
            b"{\"price\": 5}\n",
            &DiffOptions::default(),
        );
        let s = unified(&d, "a", "b");
        assert!(
            s.starts_with("JSON changes (1):\n  /price: 4 -> 5\n\n--- a\n"),
            "{s}"
        );
    }
}
