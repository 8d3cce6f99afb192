//! Storage policies: whether a new version is kept as a full snapshot or as a delta.
//!
//! A policy is pure: it sees sizes and chain facts in a [`PolicyInput`] and answers an
//! [`Encoding`]. The built-in [`Policy`] values are serialisable, so a store remembers its own;
//! a library user may implement [`SnapshotPolicy`] for anything else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::VersionNo;
use crate::codec::Record;

/// What a policy may look at when a version is written. Cheap to build; no I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyInput {
    /// The number of the version being written.
    pub version: VersionNo,
    /// Length of the full content.
    pub full_len: u64,
    /// Length of the full content once compressed: what a full snapshot would store.
    pub full_stored_len: u64,
    /// Delta depth of the candidate base (0 when the base is a full snapshot).
    pub base_depth: u32,
    /// Stored bytes read to rebuild the candidate base.
    pub base_chain_cost: u64,
    /// Length of the delta from the base to the new content.
    pub delta_len: u64,
}

impl PolicyInput {
    /// The depth the new object would have as a delta.
    pub const fn delta_depth(&self) -> u32 {
        self.base_depth.saturating_add(1)
    }

    /// The stored bytes a read would replay if the new object were a delta.
    pub const fn delta_chain_cost(&self) -> u64 {
        self.base_chain_cost.saturating_add(self.delta_len)
    }
}

/// How to store one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// A full, compressed snapshot.
    Full,
    /// A delta against the offered base.
    Delta,
}

/// Decides how each new version is stored.
pub trait SnapshotPolicy: Send + Sync + fmt::Debug {
    /// Returns whether to store the candidate in full or as a delta on the offered base.
    fn choose(&self, input: &PolicyInput) -> Encoding;

    /// Returns which earlier version of the same document to offer as the delta base for
    /// `version`, or `None` to store it in full without asking. Defaults to the previous version.
    fn base_for(&self, version: VersionNo) -> Option<VersionNo> {
        (version.get() > 1).then(|| VersionNo(version.get() - 1))
    }

    /// Returns `true` for reverse deltas: every new version is stored in full and the previous
    /// one is re-encoded as a delta against it (RCS, Fossil), so the latest version is always
    /// one read. `choose` then decides for the *older* version, with `base_depth` and
    /// `base_chain_cost` describing the run of deltas that already leads to it. Default `false`.
    fn reverse(&self) -> bool {
        false
    }
}

/// The longest delta chain any policy may build. A reader refuses longer chains as corrupt,
/// which also stops it from looping on a damaged store.
pub const MAX_CHAIN_DEPTH: u32 = 10_000;

/// The built-in policies. Written in text as `full`, `chain:N`, `every:N`, `cost:K`, `skip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Policy {
    /// Every version is a full snapshot (a plain content-addressed store).
    Full,
    /// Delta against the previous version until the chain is `max_depth` deltas long (git packs
    /// use 50).
    Chain {
        /// The longest chain of deltas.
        max_depth: u32,
    },
    /// A full snapshot every `n` versions (1, n+1, 2n+1, …), deltas between (event-store
    /// snapshots).
    Every {
        /// The snapshot interval.
        n: u32,
    },
    /// Delta unless rebuilding would read more than `k` times the compressed full size, or the
    /// delta is not smaller than the compressed full (Mercurial's revlog rule).
    Cost {
        /// The read-amplification bound.
        k: u32,
    },
    /// Delta against the version found by clearing the lowest set bit of the zero-based version
    /// index, so any read applies at most log2(n) deltas (Subversion's skip-deltas).
    Skip,
    /// Intermediate snapshots (Mercurial's sparse revlog): every `run`-th version is a delta
    /// against an earlier snapshot chosen by skip-deltas over the snapshots, the others are
    /// deltas against the previous version. A read applies at most log2(n / run) + run - 1
    /// deltas; storage stays close to a plain chain.
    Sparse {
        /// Versions per run between intermediate snapshots.
        run: u32,
    },
    /// Reverse deltas (RCS, Fossil): the newest version is a full snapshot and each older one
    /// a delta against the next newer one, until rebuilding the oldest of a run would read more
    /// than `k` times its compressed full size; then that version stays a full snapshot. The
    /// latest version is always a single read.
    Reverse {
        /// The read-amplification bound for the oldest version of a run.
        k: u32,
    },
}

impl Default for Policy {
    fn default() -> Self {
        Self::Reverse { k: 4 }
    }
}

impl SnapshotPolicy for Policy {
    fn choose(&self, input: &PolicyInput) -> Encoding {
        if input.delta_len >= input.full_stored_len || input.delta_depth() > MAX_CHAIN_DEPTH {
            return Encoding::Full;
        }
        let delta = match *self {
            Self::Full => false,
            Self::Chain { max_depth } => input.delta_depth() <= max_depth,
            Self::Every { n } => n > 1 && !(input.version.get() - 1).is_multiple_of(u64::from(n)),
            Self::Cost { k } | Self::Reverse { k } => {
                input.delta_chain_cost() <= u64::from(k).saturating_mul(input.full_stored_len)
            }
            Self::Skip | Self::Sparse { .. } => true,
        };
        if delta {
            Encoding::Delta
        } else {
            Encoding::Full
        }
    }

    fn base_for(&self, version: VersionNo) -> Option<VersionNo> {
        let index = version.get().checked_sub(1)?;
        match self {
            Self::Full | Self::Reverse { .. } => None,
            Self::Skip => {
                let base = index & index.wrapping_sub(1);
                (index > 0).then_some(VersionNo(base + 1))
            }
            Self::Sparse { run } => {
                let run = u64::from((*run).max(1));
                if index % run != 0 {
                    return Some(VersionNo(index));
                }
                let snapshot = index / run;
                let base = snapshot & snapshot.wrapping_sub(1);
                (snapshot > 0).then_some(VersionNo(base * run + 1))
            }
            _ => (index > 0).then_some(VersionNo(index)),
        }
    }

    fn reverse(&self) -> bool {
        self.is_reverse()
    }
}

impl Policy {
    /// Returns `true` for [`Policy::Reverse`].
    pub const fn is_reverse(&self) -> bool {
        matches!(self, Self::Reverse { .. })
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("full"),
            Self::Chain { max_depth } => write!(f, "chain:{max_depth}"),
            Self::Every { n } => write!(f, "every:{n}"),
            Self::Cost { k } => write!(f, "cost:{k}"),
            Self::Skip => f.write_str("skip"),
            Self::Sparse { run } => write!(f, "sparse:{run}"),
            Self::Reverse { k } => write!(f, "reverse:{k}"),
        }
    }
}

/// A string that names no built-in policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{input}' is not a policy: use full, chain:N, every:N, cost:K, skip, sparse:N or reverse:K (N, K whole numbers >= 1)"
)]
pub struct ParsePolicyError {
    /// The rejected text.
    pub input: String,
}

impl FromStr for Policy {
    type Err = ParsePolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePolicyError {
            input: s.to_owned(),
        };
        let t = s.trim();
        let (name, arg) = match t.split_once([':', '(', '=']) {
            Some((n, a)) => (n, Some(a.trim_end_matches(')'))),
            None => (t, None),
        };
        let num = || -> Result<u32, ParsePolicyError> {
            let n: u32 = arg.ok_or_else(err)?.trim().parse().map_err(|_| err())?;
            if n == 0 { Err(err()) } else { Ok(n) }
        };
        match (name.trim().to_ascii_lowercase().as_str(), arg) {
            ("full", None) => Ok(Self::Full),
            ("skip", None) => Ok(Self::Skip),
            ("chain", _) => Ok(Self::Chain { max_depth: num()? }),
            ("every", _) => Ok(Self::Every { n: num()? }),
            ("cost", _) => Ok(Self::Cost { k: num()? }),
            ("sparse", _) => Ok(Self::Sparse { run: num()? }),
            ("reverse", _) => Ok(Self::Reverse { k: num()? }),
            _ => Err(err()),
        }
    }
}

impl Record for Policy {
    const FORMAT: u8 = 1;
    const NAME: &'static str = "policy record";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(version: u64, base_depth: u32, base_cost: u64, delta: u64, full: u64) -> PolicyInput {
        PolicyInput {
            version: VersionNo(version),
            full_len: full * 4,
            full_stored_len: full,
            base_depth,
            base_chain_cost: base_cost,
            delta_len: delta,
        }
    }

    #[test]
    fn full_never_deltas() {
        assert_eq!(
            Policy::Full.choose(&input(5, 0, 10, 1, 100)),
            Encoding::Full
        );
        assert_eq!(Policy::Full.base_for(VersionNo(5)), None);
    }

    #[test]
    fn chain_stops_at_max_depth() {
        let p = Policy::Chain { max_depth: 2 };
        assert_eq!(p.choose(&input(2, 0, 100, 5, 100)), Encoding::Delta);
        assert_eq!(p.choose(&input(3, 1, 105, 5, 100)), Encoding::Delta);
        assert_eq!(p.choose(&input(4, 2, 110, 5, 100)), Encoding::Full);
    }

    #[test]
    fn every_n_snapshots_on_schedule() {
        let p = Policy::Every { n: 3 };
        let got: Vec<_> = (2..=7)
            .map(|v| p.choose(&input(v, 0, 100, 5, 100)))
            .collect();
        use Encoding::{Delta as D, Full as F};
        assert_eq!(got, [D, D, F, D, D, F]);
        assert_eq!(
            Policy::Every { n: 1 }.choose(&input(2, 0, 100, 5, 100)),
            Encoding::Full
        );
    }

    #[test]
    fn cost_bounds_replayed_bytes_and_refuses_big_deltas() {
        let p = Policy::Cost { k: 2 };
        assert_eq!(p.choose(&input(2, 0, 100, 50, 100)), Encoding::Delta);
        assert_eq!(p.choose(&input(3, 1, 150, 50, 100)), Encoding::Delta);
        assert_eq!(p.choose(&input(4, 2, 200, 50, 100)), Encoding::Full);
        assert_eq!(p.choose(&input(2, 0, 100, 100, 100)), Encoding::Full);
    }

    #[test]
    fn skip_bases_clear_the_lowest_bit() {
        let bases: Vec<_> = (1..=8)
            .map(|v| Policy::Skip.base_for(VersionNo(v)).map(VersionNo::get))
            .collect();
        assert_eq!(
            bases,
            [
                None,
                Some(1),
                Some(1),
                Some(3),
                Some(1),
                Some(5),
                Some(5),
                Some(7)
            ]
        );
        assert_eq!(Policy::Cost { k: 4 }.base_for(VersionNo(1)), None);
        assert_eq!(
            Policy::Cost { k: 4 }.base_for(VersionNo(9)),
            Some(VersionNo(8))
        );
    }

    #[test]
    fn sparse_bases_are_runs_and_skip_linked_snapshots() {
        let p = Policy::Sparse { run: 4 };
        let base = |v: u64| p.base_for(VersionNo(v)).map(VersionNo::get);
        // Versions 1..=4 are a run on the first snapshot; 5 (snapshot 1) deltas on 1;
        // 9 (snapshot 2) on 1; 13 (snapshot 3) on 9; 17 (snapshot 4) on 1.
        assert_eq!([base(1), base(2), base(4)], [None, Some(1), Some(3)]);
        assert_eq!(
            [base(5), base(9), base(13), base(17), base(18)],
            [Some(1), Some(1), Some(9), Some(1), Some(17)]
        );
        assert_eq!(p.choose(&input(5, 3, 100, 5, 100)), Encoding::Delta);
    }

    #[test]
    fn parse_and_display_roundtrip() {
        for p in [
            Policy::Full,
            Policy::Chain { max_depth: 50 },
            Policy::Every { n: 10 },
            Policy::Cost { k: 4 },
            Policy::Skip,
            Policy::Sparse { run: 16 },
            Policy::Reverse { k: 4 },
        ] {
            assert_eq!(p.to_string().parse::<Policy>().unwrap(), p);
        }
        assert_eq!(
            "chain(16)".parse::<Policy>().unwrap(),
            Policy::Chain { max_depth: 16 }
        );
        for bad in ["", "chain", "chain:0", "cost:x", "full:3", "fast"] {
            assert!(bad.parse::<Policy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_golden_bytes() {
        use crate::codec::encode_record;
        assert_eq!(encode_record(&Policy::Cost { k: 4 }), [1, 3, 4]);
        assert_eq!(encode_record(&Policy::Reverse { k: 4 }), [1, 6, 4]);
        assert_eq!(encode_record(&Policy::Full), [1, 0]);
    }
}
