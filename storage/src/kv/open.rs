//! Opening: the engine (which repairs crash leftovers first), then the format checks.

use std::path::Path;

use super::*;
use crate::engine::lsm::LsmEngine;
use crate::engine::memory::MemoryEngine;
use crate::engine::nats::NatsEngine;
use crate::engine::sled::SledEngine;

/// What a store kept in memory calls its path in messages.
pub(crate) const MEMORY_PATH: &str = "(memory)";

/// Engine settings chosen by the store.
pub(crate) struct KvConfig {
    pub(crate) cache_capacity: u64,
    pub(crate) create: bool,
    /// Accept a store of [`CONVERTIBLE_FORMAT`], to read it for conversion.
    pub(crate) convert: bool,
    /// See [`crate::StoreOptions::record_run_threshold`].
    pub(crate) run_threshold: usize,
    /// See [`crate::StoreOptions::lock_wait`].
    pub(crate) lock_wait: std::time::Duration,
    /// See [`crate::StoreOptions::background_flush`].
    pub(crate) background_flush: bool,
}

impl Kv {
    /// Opens the sled engine in `path`, first repairing what a crash can leave that the engine
    /// would refuse ([`crate::recover`]); returns the store's records and one line per repair.
    pub(crate) fn open(path: &Path, config: &KvConfig) -> Result<(Self, Vec<String>), OpenError> {
        let (engine, repairs) = SledEngine::open_with(
            path,
            config.cache_capacity,
            config.create,
            config.lock_wait,
            config.background_flush,
        )?;
        let engine = Arc::new(engine);
        let kv = Self::on(
            Arc::clone(&engine) as Arc<dyn Engine>,
            path,
            config.convert,
            Some(config.run_threshold),
        )?;
        // The store is whole (format and sequence mark checked): the files of large values
        // that an earlier process replaced or dropped can go. A store refused above keeps
        // them, for salvage.
        engine
            .remove_unreferenced_files()
            .map_err(|e| OpenError::Backend {
                path: path.to_owned(),
                source: BackendError::new(e),
            })?;
        Ok((kv, repairs))
    }

    /// Opens the records kept in a NATS JetStream stream (`nats://...`, see
    /// [`crate::engine::nats`]); `Ok(None)` when there is none and `create` is false.
    pub(crate) fn open_nats(label: &str, create: bool) -> Result<Option<Self>, OpenError> {
        let path = Path::new(label);
        let engine = NatsEngine::open(label, create).map_err(|e| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        })?;
        // Record runs exist to spare sled small entries; the log keeps batches whole already,
        // and a run cached by one process would hide what another wrote.
        engine
            .map(|e| Self::on(Arc::new(e), path, false, None))
            .transpose()
    }

    /// Opens (creates) records in a memory engine without record runs: a compaction's copy,
    /// whose records become a shared engine's as they are ([`Kv::compact_log`]).
    pub(crate) fn open_plain_memory(engine: MemoryEngine) -> Result<Self, OpenError> {
        Self::on(Arc::new(engine), Path::new(MEMORY_PATH), false, None)
    }

    /// Opens the records kept in a memory engine (creating them in an empty one).
    pub(crate) fn open_memory(
        engine: MemoryEngine,
        run_threshold: usize,
    ) -> Result<Self, OpenError> {
        Self::on(
            Arc::new(engine),
            Path::new(MEMORY_PATH),
            false,
            Some(run_threshold),
        )
    }

    fn on(
        engine: Arc<dyn Engine>,
        path: &Path,
        convert: bool,
        run_threshold: Option<usize>,
    ) -> Result<Self, OpenError> {
        // The store's small records live in sorted runs over the engine (`engine/lsm.rs`),
        // unless `run_threshold` is `None`.
        let engine: Arc<dyn Engine> = match run_threshold {
            Some(t) => Arc::new(LsmEngine::new(engine, t).map_err(|e| OpenError::Damaged {
                path: path.to_owned(),
                reason: e.to_string(),
            })?),
            None => engine,
        };
        let kv = Self {
            engine,
            commit_gate: Arc::default(),
            pages: Arc::default(),
            names: Arc::default(),
            heads_seen: Arc::default(),
            held: Arc::default(),
        };
        kv.check_format(path, convert)?;
        Ok(kv)
    }

    fn check_format(&self, path: &Path, convert: bool) -> Result<(), OpenError> {
        let not_a_store = |reason: String| OpenError::NotAStore {
            path: path.to_owned(),
            reason,
        };
        let stored = self
            .engine
            .get(Space::Meta, META_FORMAT)
            .map_err(|e| OpenError::Backend {
                path: path.to_owned(),
                source: BackendError::new(e),
            })?;
        match stored {
            Some(bytes) => {
                let rec = decode_record::<FormatRecord>(&bytes)
                    .map_err(|e| not_a_store(e.to_string()))?;
                if UPGRADABLE_FORMATS.contains(&rec.format) {
                    self.write(format_batch()).map_err(|e| OpenError::Backend {
                        path: path.to_owned(),
                        source: BackendError::new(e),
                    })?;
                    return self.check_nothing_lost(path);
                }
                if rec.format == CONVERTIBLE_FORMAT && !convert {
                    return Err(OpenError::OldFormat {
                        path: path.to_owned(),
                        found: rec.format,
                    });
                }
                if rec.format != STORE_FORMAT && !(convert && rec.format == CONVERTIBLE_FORMAT) {
                    return Err(OpenError::UnsupportedFormat {
                        path: path.to_owned(),
                        found: rec.format,
                        supported: STORE_FORMAT,
                    });
                }
                self.check_nothing_lost(path)
            }
            None => {
                // A store that lost its format record to damage must not be taken for a new one.
                self.check_nothing_lost(path)?;
                let holds = |space| engine::all(&*self.engine, space).next().is_some();
                if holds(Space::Names) || holds(Space::Objects) {
                    return Err(not_a_store("it holds data but no format record".into()));
                }
                // One batch: a crash keeps both records or neither, never a format record
                // without its counters. It expects no format record: of processes that found
                // a shared store empty at once, one creates it and the others read it.
                let mut batch = format_batch();
                batch.expect(Space::Meta, META_FORMAT, None);
                batch.put(
                    Space::Meta,
                    META_COUNTERS,
                    encode_record(&Counters {
                        next_doc: 1,
                        next_seq: 1,
                        feed_page: 0,
                    }),
                );
                let backend = |e| OpenError::Backend {
                    path: path.to_owned(),
                    source: BackendError::new(e),
                };
                match self.engine.write(batch) {
                    Ok(()) => self.engine.flush().map_err(backend),
                    Err(WriteError::Conflict) => self.check_format(path, convert),
                    Err(WriteError::Store(e)) => Err(backend(e)),
                }
            }
        }
    }

    /// Refuses a store whose engine holds fewer versions than an earlier flush made durable:
    /// sled dropped damaged log data on open ([`crate::recover`]).
    fn check_nothing_lost(&self, path: &Path) -> Result<(), OpenError> {
        let io = |e: std::io::Error| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        };
        let Some(dir) = self.engine.dir() else {
            return Ok(());
        };
        let Some(marked) = crate::recover::read_seq_mark(dir).map_err(io)? else {
            return Ok(());
        };
        let next = self
            .counters()
            .map_err(|e| OpenError::NotAStore {
                path: path.to_owned(),
                reason: e.to_string(),
            })?
            .map_or(1, |c| c.next_seq);
        if next < marked {
            return Err(OpenError::Damaged {
                path: path.to_owned(),
                reason: format!(
                    "versions with sequence numbers {next} to {} were made durable, but the \
                     engine's data file no longer holds them (damaged log data is dropped when \
                     the engine opens)",
                    marked - 1
                ),
            });
        }
        Ok(())
    }
}
