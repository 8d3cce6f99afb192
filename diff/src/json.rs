//! Structural JSON: a diff that produces an RFC 6902 JSON Patch, a readable summary by JSON
//! path, and a patch applier that is all-or-nothing.
//!
//! ```
//! use serde_json::json;
//! use strata_diff::json::{apply_patch, diff};
//!
//! let old = json!({"price": 4, "tags": ["a", "b"]});
//! let new = json!({"price": 5, "tags": ["a", "b", "c"]});
//! let d = diff(&old, &new);
//! assert_eq!(d.summary(), ["/price: 4 -> 5", "/tags/2 added: \"c\""]);
//! assert_eq!(apply_patch(&old, &d.patch)?, new);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;

use imara_diff::{Algorithm, Diff, InternedInput};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One RFC 6902 operation. Serialises to the RFC's JSON shape (`{"op": "add", ...}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    /// Adds `value` at `path` (inserting into arrays, setting object members).
    Add {
        /// JSON Pointer of the target.
        path: String,
        /// The value to add.
        value: Value,
    },
    /// Removes the value at `path`.
    Remove {
        /// JSON Pointer of the target.
        path: String,
    },
    /// Replaces the value at `path`, which must exist.
    Replace {
        /// JSON Pointer of the target.
        path: String,
        /// The new value.
        value: Value,
    },
    /// Removes the value at `from` and adds it at `path`.
    Move {
        /// JSON Pointer of the source.
        from: String,
        /// JSON Pointer of the target.
        path: String,
    },
    /// Copies the value at `from` to `path`.
    Copy {
        /// JSON Pointer of the source.
        from: String,
        /// JSON Pointer of the target.
        path: String,
    },
    /// Fails the whole patch unless the value at `path` equals `value`.
    Test {
        /// JSON Pointer of the target.
        path: String,
        /// The expected value.
        value: Value,
    },
}

/// One change found by [`diff`], with the old value for readable output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonChange {
    /// The operation that makes the change.
    pub op: PatchOp,
    /// The value before the change: the removed or replaced value, the moved value for a
    /// move, `None` for additions.
    pub old: Option<Value>,
}

/// The structural difference of two JSON values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonDiff {
    /// The RFC 6902 patch that turns the old value into the new one.
    pub patch: Vec<PatchOp>,
    /// The same operations with old values, for summaries.
    pub changes: Vec<JsonChange>,
}

impl JsonDiff {
    /// Returns one readable line per change: `/price: 4 -> 5`, `/tags/2 added: "x"`,
    /// `/old removed (was 3)`, `/a moved to /b`.
    pub fn summary(&self) -> Vec<String> {
        self.changes.iter().map(describe).collect()
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn describe(c: &JsonChange) -> String {
    let root = |p: &str| {
        if p.is_empty() {
            "(root)".to_owned()
        } else {
            p.to_owned()
        }
    };
    match (&c.op, &c.old) {
        (PatchOp::Replace { path, value }, Some(old)) => {
            format!("{}: {} -> {}", root(path), short(old), short(value))
        }
        (PatchOp::Replace { path, value }, None) => {
            format!("{} set to {}", root(path), short(value))
        }
        (PatchOp::Add { path, value }, _) => format!("{} added: {}", root(path), short(value)),
        (PatchOp::Remove { path }, Some(old)) => {
            format!("{} removed (was {})", root(path), short(old))
        }
        (PatchOp::Remove { path }, None) => format!("{} removed", root(path)),
        // A scalar that only equals a removed one is not news as a move: the reader sees a
        // value disappear in one place and appear in another.
        (PatchOp::Move { from, path }, Some(v)) if !(v.is_object() || v.is_array()) => format!(
            "{} removed (was {}); {} added: {}",
            root(from),
            short(v),
            root(path),
            short(v)
        ),
        (PatchOp::Move { from, path }, _) => format!("{} moved to {}", root(from), root(path)),
        (PatchOp::Copy { from, path }, _) => format!("{} copied to {}", root(from), root(path)),
        (PatchOp::Test { path, value }, _) => format!("{} tested for {}", root(path), short(value)),
    }
}

/// Why a patch was refused. The document is never half-patched: on any error nothing applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The patch is not an array of valid RFC 6902 operations.
    #[error("invalid patch: {0}")]
    Invalid(String),
    /// Operation `index` (0-based) could not be applied.
    #[error("operation {index} ({op}) failed: {reason}")]
    Failed {
        /// Position of the operation in the patch.
        index: usize,
        /// The operation's name.
        op: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// Parses an RFC 6902 patch document (a JSON array of operations).
///
/// # Errors
/// [`PatchError::Invalid`] naming the first malformed operation.
pub fn parse_patch(patch: &Value) -> Result<Vec<PatchOp>, PatchError> {
    let Value::Array(items) = patch else {
        return Err(PatchError::Invalid(
            "a patch must be a JSON array of operations".into(),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            PatchOp::deserialize(item)
                .map_err(|e| PatchError::Invalid(format!("operation {i}: {e}")))
        })
        .collect()
}

/// Applies `patch` to `doc` and returns the result; `doc` itself is never modified, so a
/// failing operation leaves nothing half-applied.
///
/// # Errors
/// [`PatchError::Failed`] naming the first operation that cannot apply.
pub fn apply_patch(doc: &Value, patch: &[PatchOp]) -> Result<Value, PatchError> {
    let mut out = doc.clone();
    for (index, op) in patch.iter().enumerate() {
        apply_op(&mut out, op).map_err(|reason| PatchError::Failed {
            index,
            op: op_name(op),
            reason,
        })?;
    }
    Ok(out)
}

fn op_name(op: &PatchOp) -> &'static str {
    match op {
        PatchOp::Add { .. } => "add",
        PatchOp::Remove { .. } => "remove",
        PatchOp::Replace { .. } => "replace",
        PatchOp::Move { .. } => "move",
        PatchOp::Copy { .. } => "copy",
        PatchOp::Test { .. } => "test",
    }
}

/// Splits an RFC 6901 JSON Pointer into unescaped reference tokens.
///
/// # Errors
/// A reason when the pointer is not empty and does not start with `/`, or holds a `~` not
/// followed by `0` or `1`.
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "pointer '{pointer}' must be empty or start with '/'"
        ));
    };
    rest.split('/')
        .map(|t| {
            let mut out = String::with_capacity(t.len());
            let mut chars = t.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(format!("pointer '{pointer}' has an invalid '~' escape")),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// Escapes one reference token for a JSON Pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn array_index(token: &str, len: usize, allow_end: bool, pointer: &str) -> Result<usize, String> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if !valid {
        return Err(format!("'{token}' in '{pointer}' is not an array index"));
    }
    let i: usize = token
        .parse()
        .map_err(|_| format!("index '{token}' in '{pointer}' is too large"))?;
    let max = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if i > max || (!allow_end && len == 0) {
        return Err(format!(
            "index {i} in '{pointer}' is out of bounds (array length {len})"
        ));
    }
    Ok(i)
}

fn resolve<'v>(doc: &'v Value, tokens: &[String], pointer: &str) -> Result<&'v Value, String> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m
                .get(t)
                .ok_or_else(|| format!("path '{pointer}' does not exist"))?,
            Value::Array(a) => &a[array_index(t, a.len(), false, pointer)?],
            _ => return Err(format!("path '{pointer}' does not exist")),
        };
    }
    Ok(cur)
}

fn resolve_mut<'v>(
    doc: &'v mut Value,
    tokens: &[String],
    pointer: &str,
) -> Result<&'v mut Value, String> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| format!("path '{pointer}' does not exist"))?,
            Value::Array(a) => {
                let i = array_index(t, a.len(), false, pointer)?;
                &mut a[i]
            }
            _ => return Err(format!("path '{pointer}' does not exist")),
        };
    }
    Ok(cur)
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    let tokens = parse_pointer(pointer)?;
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match resolve_mut(doc, parents, pointer)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = array_index(last, a.len(), true, pointer)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!(
            "the parent of '{pointer}' is not an object or array"
        )),
    }
}

fn remove(doc: &mut Value, pointer: &str) -> Result<Value, String> {
    let tokens = parse_pointer(pointer)?;
    let Some((last, parents)) = tokens.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match resolve_mut(doc, parents, pointer)? {
        Value::Object(m) => m
            .shift_remove(last)
            .ok_or_else(|| format!("path '{pointer}' does not exist")),
        Value::Array(a) => {
            let i = array_index(last, a.len(), false, pointer)?;
            Ok(a.remove(i))
        }
        _ => Err(format!("path '{pointer}' does not exist")),
    }
}

fn apply_op(doc: &mut Value, op: &PatchOp) -> Result<(), String> {
    match op {
        PatchOp::Add { path, value } => add(doc, path, value.clone()),
        PatchOp::Remove { path } => remove(doc, path).map(drop),
        PatchOp::Replace { path, value } => {
            let target = resolve_mut(doc, &parse_pointer(path)?, path)?;
            *target = value.clone();
            Ok(())
        }
        PatchOp::Move { from, path } => {
            if from == path {
                return resolve(doc, &parse_pointer(from)?, from).map(drop);
            }
            if path.starts_with(from.as_str()) && path.as_bytes().get(from.len()) == Some(&b'/') {
                return Err(format!("cannot move '{from}' into its own child '{path}'"));
            }
            let value = remove(doc, from)?;
            add(doc, path, value)
        }
        PatchOp::Copy { from, path } => {
            let value = resolve(doc, &parse_pointer(from)?, from)?.clone();
            add(doc, path, value)
        }
        PatchOp::Test { path, value } => {
            let actual = resolve(doc, &parse_pointer(path)?, path)?;
            if json_eq(actual, value) {
                Ok(())
            } else {
                Err(format!(
                    "test failed: '{path}' is {}, not {}",
                    short(actual),
                    short(value)
                ))
            }
        }
    }
}

/// JSON equality as RFC 6902 defines it for `test`: numbers compare by value (1 equals 1.0),
/// objects regardless of member order.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Computes a patch that turns `old` into `new`.
///
/// Arrays are compared by content (an insertion at the front of a long array is one `add`),
/// an object member whose value reappears under another name is one `move`, and at every array
/// the smaller of the content-based and the position-based descriptions is kept, so the patch is
/// never longer than one that replaces every differing leaf.
pub fn diff(old: &Value, new: &Value) -> JsonDiff {
    let mut raw = Vec::new();
    diff_raw(old, new, &mut String::new(), &mut raw);
    let changes = hoist_moves(raw);
    JsonDiff {
        patch: changes.iter().map(|c| c.op.clone()).collect(),
        changes,
    }
}

/// A change plus whether it adds/removes an object member (a move candidate).
struct Raw {
    change: JsonChange,
    member: bool,
}

fn with_token<R>(path: &mut String, token: &str, f: impl FnOnce(&mut String) -> R) -> R {
    let len = path.len();
    path.push('/');
    path.push_str(&escape_token(token));
    let r = f(path);
    path.truncate(len);
    r
}

fn diff_raw(a: &Value, b: &Value, path: &mut String, out: &mut Vec<Raw>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => with_token(path, k, |p| diff_raw(va, vb, p, out)),
                    None => with_token(path, k, |p| {
                        out.push(Raw {
                            change: JsonChange {
                                op: PatchOp::Remove { path: p.clone() },
                                old: Some(va.clone()),
                            },
                            member: true,
                        });
                    }),
                }
            }
            for (k, vb) in y {
                if !x.contains_key(k) {
                    with_token(path, k, |p| {
                        out.push(Raw {
                            change: JsonChange {
                                op: PatchOp::Add {
                                    path: p.clone(),
                                    value: vb.clone(),
                                },
                                old: None,
                            },
                            member: true,
                        });
                    });
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            let by_content = array_by_content(x, y, path);
            if by_content.len() as u64 > naive_count_arrays(x, y) {
                array_by_position(x, y, path, out);
            } else {
                out.extend(by_content);
            }
        }
        _ => out.push(Raw {
            change: JsonChange {
                op: PatchOp::Replace {
                    path: path.clone(),
                    value: b.clone(),
                },
                old: Some(a.clone()),
            },
            member: false,
        }),
    }
}

/// Counts the operations of the position-based description: one per differing leaf.
fn naive_count(a: &Value, b: &Value) -> u64 {
    if a == b {
        return 0;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut n = 0;
            for (k, va) in x {
                n += y.get(k).map_or(1, |vb| naive_count(va, vb));
            }
            n + y.keys().filter(|k| !x.contains_key(*k)).count() as u64
        }
        (Value::Array(x), Value::Array(y)) => naive_count_arrays(x, y),
        _ => 1,
    }
}

fn naive_count_arrays(x: &[Value], y: &[Value]) -> u64 {
    let common: u64 = x.iter().zip(y).map(|(p, q)| naive_count(p, q)).sum();
    common + x.len().abs_diff(y.len()) as u64
}

fn array_by_position(x: &[Value], y: &[Value], path: &mut String, out: &mut Vec<Raw>) {
    for (i, (p, q)) in x.iter().zip(y).enumerate() {
        with_token(path, &i.to_string(), |pp| diff_raw(p, q, pp, out));
    }
    for (i, q) in y.iter().enumerate().skip(x.len()) {
        with_token(path, &i.to_string(), |pp| {
            out.push(Raw {
                change: JsonChange {
                    op: PatchOp::Add {
                        path: pp.clone(),
                        value: q.clone(),
                    },
                    old: None,
                },
                member: false,
            });
        });
    }
    for i in (y.len()..x.len()).rev() {
        with_token(path, &i.to_string(), |pp| {
            out.push(Raw {
                change: JsonChange {
                    op: PatchOp::Remove { path: pp.clone() },
                    old: Some(x[i].clone()),
                },
                member: false,
            });
        });
    }
}

/// Content-based array diff: an LCS over whole elements; changes are emitted from the end of
/// the array backwards, so every index refers to an element that has not moved yet.
fn array_by_content(x: &[Value], y: &[Value], path: &mut String) -> Vec<Raw> {
    let mut input: InternedInput<String> = InternedInput::default();
    input.update_before(x.iter().map(Value::to_string));
    input.update_after(y.iter().map(Value::to_string));
    let d = Diff::compute(Algorithm::Histogram, &input);
    let hunks: Vec<imara_diff::Hunk> = d.hunks().collect();
    let mut out = Vec::new();
    for h in hunks.iter().rev() {
        let (bs, be) = (h.before.start as usize, h.before.end as usize);
        let (as_, ae) = (h.after.start as usize, h.after.end as usize);
        let paired = (be - bs).min(ae - as_);
        for k in 0..paired {
            with_token(path, &(bs + k).to_string(), |p| {
                diff_raw(&x[bs + k], &y[as_ + k], p, &mut out);
            });
        }
        for k in (paired..be - bs).rev() {
            with_token(path, &(bs + k).to_string(), |p| {
                out.push(Raw {
                    change: JsonChange {
                        op: PatchOp::Remove { path: p.clone() },
                        old: Some(x[bs + k].clone()),
                    },
                    member: false,
                });
            });
        }
        for k in paired..ae - as_ {
            with_token(path, &(bs + k).to_string(), |p| {
                out.push(Raw {
                    change: JsonChange {
                        op: PatchOp::Add {
                            path: p.clone(),
                            value: y[as_ + k].clone(),
                        },
                        old: None,
                    },
                    member: false,
                });
            });
        }
    }
    out
}

/// Turns a removed object member and an added object member with equal values into one
/// `move`, placed before every other change. Member paths hold only indices of elements that
/// exist in both versions at their original positions, so the moves are valid first.
fn hoist_moves(raw: Vec<Raw>) -> Vec<JsonChange> {
    let mut removed: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in raw.iter().enumerate() {
        if let (true, PatchOp::Remove { .. }, Some(old)) = (r.member, &r.change.op, &r.change.old) {
            removed.entry(old.to_string()).or_default().push(i);
        }
    }
    let members: Vec<bool> = raw.iter().map(|r| r.member).collect();
    let changes: Vec<JsonChange> = raw.into_iter().map(|r| r.change).collect();
    if removed.is_empty() {
        return changes;
    }
    let mut consumed = vec![false; changes.len()];
    let mut moves = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let PatchOp::Add { path, value } = &c.op else {
            continue;
        };
        if !members[i] {
            continue;
        }
        let Some(candidates) = removed.get_mut(&value.to_string()) else {
            continue;
        };
        let Some(j) = candidates.pop() else { continue };
        let PatchOp::Remove { path: from } = &changes[j].op else {
            continue;
        };
        consumed[i] = true;
        consumed[j] = true;
        moves.push(JsonChange {
            op: PatchOp::Move {
                from: from.clone(),
                path: path.clone(),
            },
            old: Some(value.clone()),
        });
    }
    moves.extend(
        changes
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !consumed[*i])
            .map(|(_, c)| c),
    );
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any JSON value: a patch parser input, or a document.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z/~01-]{0,8}".prop_map(Value::String),
            prop_oneof![
                Just("add"),
                Just("remove"),
                Just("replace"),
                Just("move"),
                Just("copy"),
                Just("test")
            ]
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("op"),
                        Just("path"),
                        Just("from"),
                        Just("value"),
                        Just("x")
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest::proptest! {
        /// Parsing and applying arbitrary (often patch-shaped) JSON never panics.
        #[test]
        fn patch_parsing_and_applying_never_panic(patch in any_json(), doc in any_json()) {
            if let Ok(ops) = parse_patch(&patch) {
                let _ = apply_patch(&doc, &ops);
            }
            let _ = parse_pointer(patch.as_str().unwrap_or("/a/~1b/~0c/-"));
        }
    }
    use serde_json::json;

    #[test]
    fn insert_at_front_of_long_array_is_one_add() {
        let old: Vec<u32> = (0..1000).collect();
        let mut new = old.clone();
        new.insert(0, 99_999);
        let d = diff(&json!(old), &json!(new));
        assert_eq!(
            d.patch,
            [PatchOp::Add {
                path: "/0".into(),
                value: json!(99_999)
            }]
        );
    }

    #[test]
    fn renamed_member_is_one_move() {
        let old = json!({"a": {"deep": [1, 2, 3]}, "b": 1});
        let new = json!({"c": {"deep": [1, 2, 3]}, "b": 1});
        let d = diff(&old, &new);
        assert_eq!(
            d.patch,
            [PatchOp::Move {
                from: "/a".into(),
                path: "/c".into()
            }]
        );
        assert_eq!(apply_patch(&old, &d.patch).unwrap(), new);
    }

    #[test]
    fn summary_reads_by_path() {
        let d = diff(
            &json!({"price": 4, "old": 1, "a/b": true}),
            &json!({"price": 5, "a/b": false, "new": [1]}),
        );
        assert_eq!(
            d.summary(),
            [
                "/price: 4 -> 5",
                "/old removed (was 1)",
                "/a~1b: true -> false",
                "/new added: [1]"
            ]
        );
    }

    /// See: issue 12, item 10 (`/stats/and_ff/0 moved to /stats/firefox/18` for two equal
    /// strings).
    #[test]
    fn an_equal_scalar_elsewhere_reads_as_remove_and_add() {
        let d = diff(
            &json!({"a": {"x": "n"}, "b": {}}),
            &json!({"a": {}, "b": {"y": "n"}}),
        );
        let text = d.summary().join("\n");
        assert!(!text.contains("moved to"), "{text}");
        assert!(text.contains("/a/x removed"), "{text}");
        let d = diff(
            &json!({"old": {"k": [1, 2]}}),
            &json!({"new": {"k": [1, 2]}}),
        );
        assert!(
            d.summary().join("\n").contains("moved to"),
            "{:?}",
            d.summary()
        );
    }

    #[test]
    fn failing_patch_changes_nothing() {
        let doc = json!({"a": 1});
        let patch = parse_patch(&json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 3}])).unwrap();
        let err = apply_patch(&doc, &patch).unwrap_err();
        assert!(err.to_string().contains("operation 1 (test)"), "{err}");
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn pointers_escape_and_reject() {
        assert_eq!(parse_pointer("/a~1b/~0c").unwrap(), ["a/b", "~c"]);
        assert!(parse_pointer("a").is_err());
        assert!(parse_pointer("/a~2").is_err());
        assert!(array_index("01", 5, false, "/01").is_err());
        assert!(array_index("-", 5, false, "/-").is_err());
        assert_eq!(array_index("-", 5, true, "/-").unwrap(), 5);
    }
}
