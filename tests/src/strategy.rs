//! Generators: realistic documents (prose, source-like text, JSON), edit scripts over them,
//! and operation sequences for the state-machine test. Biased toward edge cases: empty
//! content, identical re-puts, one-byte edits, missing final newlines, non-UTF-8 bytes.

use proptest::prelude::*;
use proptest::sample::Index;

const WORDS: &[&str] = &[
    "the", "store", "version", "delta", "let", "fn", "return", "if", "else", "{", "}", "value",
    "price", "42", "3.14", "null", "true", "document", "history", "é", "naïve", "日本", "//", "#",
    "-", "=", "+=", "\"key\":", "[", "]", "x", "y", "\t",
];

/// One line of text, without its newline.
pub fn line() -> impl Strategy<Value = String> {
    (
        0usize..4,
        prop::collection::vec(prop::sample::select(WORDS), 0..10),
    )
        .prop_map(|(indent, words)| format!("{}{}", "    ".repeat(indent), words.join(" ")))
}

/// A text document of lines, sometimes without a final newline.
pub fn text_doc() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(line(), 0..40), any::<bool>()).prop_map(|(lines, final_nl)| {
        let mut s = lines.join("\n");
        if final_nl && !s.is_empty() {
            s.push('\n');
        }
        s.into_bytes()
    })
}

/// A JSON value of bounded depth.
pub fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        "[a-z ]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{1,8}", inner), 0..6).prop_map(|kv| {
                let body: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

/// A whole document: text, JSON (one line), random bytes (mostly not UTF-8), or empty.
pub fn document() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => text_doc(),
        2 => json_value().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..600),
        1 => Just(Vec::new()),
    ]
}

/// An edit that turns a document's current content into its next version.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Insert lines before a line.
    InsertLines(Index, Vec<String>),
    /// Delete up to `n` lines from a line on.
    DeleteLines(Index, usize),
    /// Move up to `n` lines from one place to another.
    MoveLines(Index, usize, Index),
    /// Append text at the end.
    Append(String),
    /// Overwrite one byte (may break UTF-8).
    ByteEdit(Index, u8),
    /// Put the same content again.
    Same,
    /// Put an empty document.
    Empty,
    /// Replace everything with a new document.
    Replace(Vec<u8>),
}

/// An edit, weighted toward small realistic changes.
pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), prop::collection::vec(line(), 1..4)).prop_map(|(i, l)| Edit::InsertLines(i, l)),
        2 => (any::<Index>(), 1usize..5).prop_map(|(i, n)| Edit::DeleteLines(i, n)),
        1 => (any::<Index>(), 1usize..6, any::<Index>()).prop_map(|(a, n, b)| Edit::MoveLines(a, n, b)),
        2 => line().prop_map(|l| Edit::Append(l + "\n")),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::ByteEdit(i, b)),
        1 => Just(Edit::Same),
        1 => Just(Edit::Empty),
        2 => document().prop_map(Edit::Replace),
    ]
}

/// Applies `edit` to `current`, returning the next content.
pub fn apply_edit(current: &[u8], edit: &Edit) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = current
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let join = |lines: Vec<Vec<u8>>| lines.concat();
    match edit {
        Edit::InsertLines(at, new) => {
            let i = at.index(lines.len() + 1);
            if i == lines.len()
                && !current.is_empty()
                && !current.ends_with(b"\n")
                && let Some(last) = lines.last_mut()
            {
                last.push(b'\n');
            }
            for (k, l) in new.iter().enumerate() {
                lines.insert(i + k, format!("{l}\n").into_bytes());
            }
            join(lines)
        }
        Edit::DeleteLines(at, n) => {
            if lines.is_empty() {
                return Vec::new();
            }
            let i = at.index(lines.len());
            let end = (i + n).min(lines.len());
            lines.drain(i..end);
            join(lines)
        }
        Edit::MoveLines(from, n, to) => {
            if lines.is_empty() {
                return Vec::new();
            }
            let i = from.index(lines.len());
            let end = (i + n).min(lines.len());
            let moved: Vec<Vec<u8>> = lines.drain(i..end).collect();
            let j = to.index(lines.len() + 1);
            for (k, l) in moved.into_iter().enumerate() {
                lines.insert(j + k, l);
            }
            join(lines)
        }
        Edit::Append(s) => [current, s.as_bytes()].concat(),
        Edit::ByteEdit(at, b) => {
            let mut c = current.to_vec();
            if c.is_empty() {
                c.push(*b);
            } else {
                let i = at.index(c.len());
                c[i] = *b;
            }
            c
        }
        Edit::Same => current.to_vec(),
        Edit::Empty => Vec::new(),
        Edit::Replace(doc) => doc.clone(),
    }
}

/// How many documents the harness uses; few, so that chains grow.
pub const DOCS: usize = 3;

/// One step of the state-machine test.
#[derive(Clone, Debug)]
pub enum Op {
    /// Put the edited latest content of a document.
    Put(usize, Edit),
    /// Put with the right expected version (must succeed) or a stale one (must conflict).
    PutExpect(usize, Edit, bool),
    /// Several puts in one batch.
    Batch(Vec<(usize, Edit)>),
    /// Read a version (index into the versions, or one past the end to test absence).
    Get(usize, Index),
    /// Read the latest version.
    GetLatest(usize),
    /// Read the history.
    History(usize),
    /// Diff two versions of possibly different documents.
    Diff(usize, Index, usize, Index),
    /// Close and reopen the store.
    Reopen,
    /// Put with an explicit time: the document's newest time plus a step (0, 1 ms, 1 s, a
    /// day), or one millisecond before it (must be refused).
    PutTimed(usize, Edit, TimeStep),
    /// Read the version that was newest at a recorded version's time (minus one ms or not).
    GetAt(usize, Index, bool),
    /// Read the change feed from a position (an index into the writes, or one past the end).
    Feed(Index),
    /// Put the latest content again, expecting the version before it: a retry of the put
    /// that made the latest version, which must return that version and write nothing.
    Retry(usize),
    /// Delete a document (a tombstone version).
    Delete(usize),
    /// Keep only the newest versions of a document (1 to 4).
    Prune(usize, u64),
    /// A batch with a put that expects a version its document is not at: refused whole.
    BatchConflict(Vec<(usize, Edit)>, Index),
    /// Tag a version of a document with one of three names (forcing a move or not).
    Tag(usize, Index, u8, bool),
    /// Read one of three tags of a document.
    GetTag(usize, u8),
    /// A durable consumer (one of two) reads up to n entries after its position and stores
    /// the new position.
    Consume(u8, usize),
}

/// How far after (or before) the document's newest version a timed put is dated.
#[derive(Clone, Copy, Debug)]
pub enum TimeStep {
    /// The same millisecond.
    Same,
    /// One millisecond later.
    Milli,
    /// One second later.
    Second,
    /// One day later.
    Day,
    /// One millisecond earlier: the put is refused.
    Back,
}

impl TimeStep {
    fn any() -> impl Strategy<Value = Self> {
        prop_oneof![
            Just(Self::Same),
            Just(Self::Milli),
            Just(Self::Second),
            Just(Self::Day),
            Just(Self::Back),
        ]
    }
}

/// A sequence of operations, weighted toward puts so histories grow.
pub fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    let doc = 0..DOCS;
    let op = prop_oneof![
        8 => (doc.clone(), edit()).prop_map(|(d, e)| Op::Put(d, e)),
        1 => (doc.clone(), edit(), any::<bool>()).prop_map(|(d, e, s)| Op::PutExpect(d, e, s)),
        1 => prop::collection::vec((doc.clone(), edit()), 1..5).prop_map(Op::Batch),
        3 => (doc.clone(), any::<Index>()).prop_map(|(d, i)| Op::Get(d, i)),
        1 => doc.clone().prop_map(Op::GetLatest),
        1 => doc.clone().prop_map(Op::History),
        2 => (doc.clone(), any::<Index>(), doc.clone(), any::<Index>()).prop_map(|(a, i, b, j)| Op::Diff(a, i, b, j)),
        1 => Just(Op::Reopen),
        1 => (doc.clone(), edit(), TimeStep::any()).prop_map(|(d, e, t)| Op::PutTimed(d, e, t)),
        1 => (doc, any::<Index>(), any::<bool>()).prop_map(|(d, i, b)| Op::GetAt(d, i, b)),
        1 => any::<Index>().prop_map(Op::Feed),
        1 => (0..DOCS).prop_map(Op::Retry),
        1 => (0..DOCS).prop_map(Op::Delete),
        1 => (0..DOCS, 1u64..5).prop_map(|(d, k)| Op::Prune(d, k)),
        1 => (prop::collection::vec((0..DOCS, edit()), 1..4), any::<Index>())
            .prop_map(|(puts, i)| Op::BatchConflict(puts, i)),
        1 => (0..DOCS, any::<Index>(), 0u8..3, any::<bool>()).prop_map(|(d, i, t, f)| Op::Tag(d, i, t, f)),
        1 => (0..DOCS, 0u8..3).prop_map(|(d, t)| Op::GetTag(d, t)),
        1 => (0u8..2, 1usize..5).prop_map(|(c, n)| Op::Consume(c, n)),
    ];
    // Start from a document, not only edits of emptiness.
    (document(), prop::collection::vec(op, 1..max_len)).prop_map(|(first, mut ops)| {
        ops.insert(0, Op::Put(0, Edit::Replace(first)));
        ops
    })
}

/// The document key for harness document `i`.
pub fn doc_key(i: usize) -> String {
    ["notes/a.md", "data/b.json", "c"][i % 3].to_owned()
}

/// A JSON value (objects, arrays, numbers, strings, booleans, null) of bounded size.
pub fn json_tree() -> impl Strategy<Value = serde_json::Value> {
    json_value().prop_map(|s| serde_json::from_str(&s).expect("generated JSON parses"))
}

/// One structural edit of a JSON document.
#[derive(Clone, Debug)]
pub enum JsonEdit {
    /// Replace the node with a scalar.
    SetLeaf(Vec<Index>, i64),
    /// Insert a value into an array node (or add a member to an object node).
    Insert(Vec<Index>, Index, serde_json::Value),
    /// Remove a child of the node.
    Remove(Vec<Index>, Index),
    /// Rename a member of an object node.
    Rename(Vec<Index>, Index, String),
}

/// A JSON edit, with a random path of child choices.
pub fn json_edit() -> impl Strategy<Value = JsonEdit> {
    let path = prop::collection::vec(any::<Index>(), 0..4);
    prop_oneof![
        (path.clone(), any::<i64>()).prop_map(|(p, n)| JsonEdit::SetLeaf(p, n)),
        (path.clone(), any::<Index>(), json_tree()).prop_map(|(p, i, v)| JsonEdit::Insert(p, i, v)),
        (path.clone(), any::<Index>()).prop_map(|(p, i)| JsonEdit::Remove(p, i)),
        (path, any::<Index>(), "[a-z]{1,6}").prop_map(|(p, i, k)| JsonEdit::Rename(p, i, k)),
    ]
}

fn walk<'v>(v: &'v mut serde_json::Value, path: &[Index]) -> &'v mut serde_json::Value {
    use serde_json::Value;
    let Some((first, rest)) = path.split_first() else {
        return v;
    };
    let len = match v {
        Value::Array(a) => a.len(),
        Value::Object(m) => m.len(),
        _ => 0,
    };
    if len == 0 {
        return v;
    }
    let i = first.index(len);
    match v {
        Value::Array(a) => walk(&mut a[i], rest),
        Value::Object(m) => {
            let key = m.keys().nth(i).cloned().expect("index within length");
            walk(m.get_mut(&key).expect("key just listed"), rest)
        }
        other => other,
    }
}

/// Applies a JSON edit in place.
pub fn apply_json_edit(doc: &mut serde_json::Value, edit: &JsonEdit) {
    use serde_json::Value;
    match edit {
        JsonEdit::SetLeaf(p, n) => *walk(doc, p) = Value::from(*n),
        JsonEdit::Insert(p, i, v) => match walk(doc, p) {
            Value::Array(a) => {
                let at = i.index(a.len() + 1);
                a.insert(at, v.clone());
            }
            Value::Object(m) => {
                m.insert(format!("k{}", i.index(1000)), v.clone());
            }
            other => *other = Value::Array(vec![other.clone(), v.clone()]),
        },
        JsonEdit::Remove(p, i) => match walk(doc, p) {
            Value::Array(a) if !a.is_empty() => {
                let at = i.index(a.len());
                a.remove(at);
            }
            Value::Object(m) if !m.is_empty() => {
                let key = m
                    .keys()
                    .nth(i.index(m.len()))
                    .cloned()
                    .expect("index within length");
                m.shift_remove(&key);
            }
            _ => {}
        },
        JsonEdit::Rename(p, i, k) => {
            if let Value::Object(m) = walk(doc, p)
                && !m.is_empty()
                && !m.contains_key(k)
            {
                let key = m
                    .keys()
                    .nth(i.index(m.len()))
                    .cloned()
                    .expect("index within length");
                if let Some(v) = m.shift_remove(&key) {
                    m.insert(k.clone(), v);
                }
            }
        }
    }
}

/// Operations of the position-based patch that replaces every differing leaf: the bound a
/// structural diff must not exceed.
pub fn naive_patch_len(a: &serde_json::Value, b: &serde_json::Value) -> usize {
    use serde_json::Value;
    if a == b {
        return 0;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.iter()
                .map(|(k, v)| y.get(k).map_or(1, |w| naive_patch_len(v, w)))
                .sum::<usize>()
                + y.keys().filter(|k| !x.contains_key(*k)).count()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.iter()
                .zip(y)
                .map(|(p, q)| naive_patch_len(p, q))
                .sum::<usize>()
                + x.len().abs_diff(y.len())
        }
        _ => 1,
    }
}
