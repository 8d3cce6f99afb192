//! A strict applier of unified diffs, used as an oracle: every hunk must match exactly at
//! its stated position.

/// Applies `patch` (as printed by `strata_diff::render::unified_bytes`) to `old`, byte for
/// byte: text in any encoding.
///
/// # Errors
/// A description of the first line that does not match.
pub fn apply_unified(old: &[u8], patch: &[u8]) -> Result<Vec<u8>, String> {
    let old_lines: Vec<&[u8]> = old.split_inclusive(|&b| b == b'\n').collect();
    let mut out: Vec<u8> = Vec::new();
    let mut pos = 0usize; // next old line to copy
    let mut lines = patch.split_inclusive(|&b| b == b'\n').peekable();
    // Skip the --- / +++ header.
    while let Some(l) = lines.peek() {
        if l.starts_with(b"@@") {
            break;
        }
        lines.next();
    }
    let trim = |l: &[u8]| -> Vec<u8> { l.strip_suffix(b"\n").unwrap_or(l).to_vec() };
    let mut last_pushed_is_new: Option<bool> = None;
    while let Some(header) = lines.next() {
        let header = std::str::from_utf8(header).map_err(|_| "hunk header is not UTF-8")?;
        let old_start = parse_header(header)?;
        let start_idx = if old_start == 0 { 0 } else { old_start - 1 };
        // For a zero-length old range, the start is the line *before* the hunk.
        let start_idx = if header_old_len(header)? == 0 {
            old_start
        } else {
            start_idx
        };
        if start_idx < pos || start_idx > old_lines.len() {
            return Err(format!(
                "hunk '{}' is out of order or past the end",
                header.trim_end()
            ));
        }
        for l in &old_lines[pos..start_idx] {
            out.extend_from_slice(l);
        }
        pos = start_idx;
        while let Some(l) = lines.peek() {
            if l.starts_with(b"@@") {
                break;
            }
            let l = lines.next().expect("peeked");
            let (tag, body) = l.split_at(1);
            match tag {
                b" " | b"-" => {
                    let want = old_lines
                        .get(pos)
                        .ok_or("hunk runs past the end of the old text")?;
                    if trim(want) != trim(body) {
                        return Err(format!(
                            "line {} does not match: {:?} vs {:?}",
                            pos + 1,
                            String::from_utf8_lossy(want),
                            String::from_utf8_lossy(body)
                        ));
                    }
                    if tag == b" " {
                        out.extend_from_slice(want);
                        last_pushed_is_new = Some(false);
                    } else {
                        last_pushed_is_new = None;
                    }
                    pos += 1;
                }
                b"+" => {
                    out.extend_from_slice(body);
                    last_pushed_is_new = Some(true);
                }
                b"\\" => {
                    // "\ No newline at end of file": the previous line has no newline.
                    if last_pushed_is_new.is_some() && out.ends_with(b"\n") {
                        out.pop();
                    }
                }
                _ => {
                    return Err(format!(
                        "unexpected patch line {:?}",
                        String::from_utf8_lossy(l)
                    ));
                }
            }
        }
    }
    for l in &old_lines[pos..] {
        out.extend_from_slice(l);
    }
    Ok(out)
}

fn parse_range(r: &str) -> Result<(usize, usize), String> {
    let mut it = r.split(',');
    let start = it
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| format!("bad range {r}"))?;
    let len = match it.next() {
        Some(l) => l.parse().map_err(|_| format!("bad range {r}"))?,
        None => 1,
    };
    Ok((start, len))
}

fn old_range(header: &str) -> Result<(usize, usize), String> {
    let r = header
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.strip_prefix('-'))
        .ok_or_else(|| format!("bad hunk header {header:?}"))?;
    parse_range(r)
}

fn parse_header(header: &str) -> Result<usize, String> {
    old_range(header).map(|(s, _)| s)
}

fn header_old_len(header: &str) -> Result<usize, String> {
    old_range(header).map(|(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_a_simple_patch() {
        let patch = "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n";
        assert_eq!(
            apply_unified(b"a\nb\n", patch.as_bytes()).unwrap(),
            b"a\nc\n"
        );
        assert!(apply_unified(b"a\nx\n", patch.as_bytes()).is_err());
    }
}
