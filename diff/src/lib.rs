//! Pure diff algorithms for strata. No I/O.
//!
//! Two layers that serve different readers:
//! - [`delta`]: the storage codec. [`delta::encode`] turns a base and a target into a small
//!   delta, [`delta::apply`] rebuilds the target, bounded by a caller-given size limit and
//!   never panicking on malformed input. [`delta::compress`] does the same for full snapshots.
//! - [`compare`](mod@compare) and [`render`]: the human-facing diff. [`compare()`] turns two byte strings into
//!   a [`DocDiff`] (line hunks, a binary summary, or "same"); [`render::unified`] prints it
//!   in the unified format that GNU `patch` and `git apply` read.
//!
//! ```
//! use strata_diff::{compare, render, DiffOptions, DocDiff};
//!
//! let diff = compare(b"a\nb\nc\n", b"a\nB\nc\n", &DiffOptions::default());
//! let text = render::unified(&diff, "old", "new");
//! assert!(text.contains("-b\n+B\n"));
//!
//! let delta = strata_diff::delta::encode(b"hello world\n", b"hello there world\n", 3);
//! let back = strata_diff::delta::apply(b"hello world\n", &delta, 1 << 20)?;
//! assert_eq!(back, b"hello there world\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod compare;
pub mod delta;
pub mod json;
pub mod model;
pub mod render;

pub use compare::{DiffOptions, compare};
pub use model::{BinarySummary, DiffStat, DocDiff, Hunk, JsonDocDiff, Line, LineKind, TextDiff};
