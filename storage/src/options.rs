//! Every knob of a store, in one place.

use std::sync::Arc;

use strata_core::{Policy, SnapshotPolicy};

/// When completed writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every `put` flushes before it returns: once it returns `Ok`, the version survives a crash.
    #[default]
    EveryPut,
    /// `put` returns once the version is in the engine's log; it becomes durable at the next
    /// [`Store::flush`](crate::Store::flush) (or the engine's own periodic flush, within about
    /// half a second). Much faster for many small writes.
    Manual,
}

/// Options for [`Store::open_with`](crate::Store::open_with).
///
/// ```
/// use strata_storage::{Durability, StoreOptions};
/// use strata_core::Policy;
///
/// let options = StoreOptions::default()
///     .policy(Policy::Chain { max_depth: 16 })
///     .durability(Durability::Manual)
///     .cache_bytes(8 << 20);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct StoreOptions {
    pub(crate) policy: Option<Policy>,
    pub(crate) custom_policy: Option<Arc<dyn SnapshotPolicy>>,
    pub(crate) durability: Durability,
    pub(crate) cache_bytes: usize,
    pub(crate) engine_cache_bytes: u64,
    pub(crate) max_content_len: u64,
    pub(crate) level: i32,
    /// `None`: by the delta's size ([`StoreOptions::delta_level`]).
    pub(crate) delta_level: Option<i32>,
    pub(crate) create: bool,
    /// Accept a store of the earlier, convertible format (set by repack only).
    pub(crate) convert: bool,
    pub(crate) verify_reads: bool,
    pub(crate) run_threshold: usize,
    pub(crate) retention: Option<crate::prune::Retention>,
    pub(crate) lock_wait: std::time::Duration,
    pub(crate) background_flush: bool,
}

/// Deltas whose base and target together hold at most this many bytes are encoded at
/// [`SMALL_DELTA_LEVEL`] by default, larger ones at [`LARGE_DELTA_LEVEL`].
pub const SMALL_DELTA_SPAN: usize = 128 << 10;
/// The default zstd level of a small delta (see [`StoreOptions::delta_compression_level`]).
pub const SMALL_DELTA_LEVEL: i32 = 8;
/// The default zstd level of a large delta (see [`StoreOptions::delta_compression_level`]).
pub const LARGE_DELTA_LEVEL: i32 = 5;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            policy: None,
            custom_policy: None,
            durability: Durability::EveryPut,
            cache_bytes: 16 << 20,
            engine_cache_bytes: 64 << 20,
            max_content_len: 64 << 20,
            level: 6,
            delta_level: None,
            create: true,
            convert: false,
            verify_reads: false,
            run_threshold: crate::engine::lsm::MEMTABLE_ENTRIES,
            retention: None,
            lock_wait: DEFAULT_LOCK_WAIT,
            background_flush: true,
        }
    }
}

/// How long an open waits for another process to close the store, by default.
pub const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl StoreOptions {
    /// Sets how long an open waits while another process holds the store (one process at a
    /// time may). Past it, the open fails with [`crate::OpenError::Locked`], which names the
    /// holding process. Default [`DEFAULT_LOCK_WAIT`] (10 s); zero tries once.
    pub fn lock_wait(mut self, wait: std::time::Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Uses a built-in policy for new versions and records it in the store, so later opens
    /// without a policy use it too. Default: the store's recorded policy, else `reverse:4`.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Applies a retention rule after every put and batch, to each document written: its
    /// versions the rule does not keep are pruned as [`crate::Store::prune`] does, except
    /// that tagged versions (and the versions after them) are kept, and the newest version
    /// always. The rule is recorded in the store, so later opens without one apply it too
    /// (`Store::set_retention(None)` removes it; `strata retention` shows and sets it).
    /// Default: the store's recorded rule, else none (every version is kept). Each pruning
    /// scans the store's version records (as `gc` does), so a large store pays that on every
    /// put that drops something.
    ///
    /// ```
    /// use strata_storage::{DocId, Retention, Store, StoreOptions};
    ///
    /// let store = Store::open_temporary_with(StoreOptions::default().retention(Retention::KeepLast(2)))?;
    /// let doc = DocId::new("status")?;
    /// for s in ["up", "down", "up again"] {
    ///     store.put(&doc, s.as_bytes())?;
    /// }
    /// let kept: Vec<u64> = store.history(&doc)?.iter().map(|r| r.version.get()).collect();
    /// assert_eq!(kept, [2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retention(mut self, rule: crate::prune::Retention) -> Self {
        self.retention = Some(rule);
        self
    }

    /// Uses a policy of the caller's own for new versions. It is not recorded in the store.
    pub fn custom_policy(mut self, policy: Arc<dyn SnapshotPolicy>) -> Self {
        self.custom_policy = Some(policy);
        self
    }

    /// Sets when writes become durable. Default: [`Durability::EveryPut`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Bounds the cache of rebuilt contents, in bytes. Default 16 MiB; 0 disables it.
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Sets how many changes of small records (names, documents, version and feed pages,
    /// pack index entries) the store collects in the engine before it writes them as one
    /// sorted run, a value written once; a batch with at least this many becomes a run of its
    /// own. Default 512. Smaller values write runs more often (tests use them to exercise
    /// runs and their merges); larger ones keep more records in the engine's log, where each
    /// costs 2-4x its size on disk.
    pub fn record_run_threshold(mut self, changes: usize) -> Self {
        self.run_threshold = changes.max(1);
        self
    }

    /// Sets the storage engine's page cache, in bytes. Default 64 MiB.
    pub fn engine_cache_bytes(mut self, bytes: u64) -> Self {
        self.engine_cache_bytes = bytes;
        self
    }

    /// Sets the largest content a `put` accepts, in bytes. Default 64 MiB; the CLI's
    /// `--max-size` sets it. Larger puts fail with [`StoreError::TooLarge`](crate::StoreError)
    /// and write nothing.
    pub fn max_content_len(mut self, bytes: u64) -> Self {
        self.max_content_len = bytes;
        self
    }

    /// Sets the zstd level for new objects (1..=22). Default 6: on the shared histories it
    /// stores 19-31% less than level 3, and the reverse-delta writer, which compresses a
    /// full snapshot only when a decision needs one, imports at it as fast as it did at 3.
    pub fn compression_level(mut self, level: i32) -> Self {
        self.level = level.clamp(1, 22);
        self
    }

    /// Sets the zstd level for new deltas (1..=22; full snapshots use
    /// [`StoreOptions::compression_level`]). Default: by the size of base plus target, level
    /// [`SMALL_DELTA_LEVEL`] up to [`SMALL_DELTA_SPAN`] bytes, [`LARGE_DELTA_LEVEL`] above.
    /// A delta is zstd with the base as its reference, which zstd indexes whole for every
    /// delta: for small documents that is cheap and level 8 finds its binary-tree matches
    /// (caniuse, 7 KB: payload 49,180 at level 4, 40,110 at 8, import 0.059 -> 0.067 s); for
    /// 100-300 KB bases each level costs (redis: 0.29 s at 4, 0.36 at 5, 0.43 at 6 to 8) and 5
    /// stores 7% less than 4 (`BENCHMARKS.md`, session 11). `strata repack` encodes every
    /// delta again at its own level.
    pub fn delta_compression_level(mut self, level: i32) -> Self {
        self.delta_level = Some(level.clamp(1, 22));
        self
    }

    /// The zstd level of a delta whose base and target together hold `span` bytes.
    pub(crate) fn delta_level(&self, span: usize) -> i32 {
        match self.delta_level {
            Some(level) => level,
            None if span <= SMALL_DELTA_SPAN => SMALL_DELTA_LEVEL,
            None => LARGE_DELTA_LEVEL,
        }
    }

    /// Encodes the delta from `base` to `target` at [`StoreOptions::delta_level`] for their
    /// size: every write path's deltas.
    pub(crate) fn encode_delta(&self, base: &[u8], target: &[u8]) -> Vec<u8> {
        strata_diff::delta::encode(base, target, self.delta_level(base.len() + target.len()))
    }

    /// Checks every read against its blake3 id, not only against the payloads' own checks.
    /// Default `false`: every payload written since store format 5 ends with a CRC-32 of its
    /// stored bytes, checked before it is decoded (and decoding intact bytes against a proven
    /// base is deterministic), and those of formats 2-4 carry an XXH64 checksum of their
    /// content, which zstd verifies as it decodes; so a read returns its bytes only if each
    /// object on the way was proven. Objects with neither (stored raw, or written by format
    /// 1) are always checked by id. `verify` always checks ids.
    pub fn verify_reads(mut self, on: bool) -> Self {
        self.verify_reads = on;
        self
    }

    /// Whether the engine keeps a thread that writes and syncs its log every 500 ms. Default
    /// `true`. Under [`Durability::EveryPut`] every write is flushed before it returns, so
    /// the thread only matters for [`Durability::Manual`] writes between flushes and for
    /// reclaiming log space while the store is idle; a short-lived process that only reads
    /// can turn it off and start no thread at all (what the `strata` CLI does for commands
    /// that do not write). The store is still flushed when it is dropped.
    pub fn background_flush(mut self, on: bool) -> Self {
        self.background_flush = on;
        self
    }

    /// Whether `open_with` creates a missing store. Default `true`.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }
}
