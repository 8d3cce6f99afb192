//! Opening the engine: crash repairs first, then sled, then the format checks.

use super::*;

/// sled's log segment size. Measured on the shared histories, 64 KiB segments gave store
/// directories 20-30% smaller than sled's default 512 KiB, and 32 KiB another 0-15% after a
/// repack; 16 KiB was worse on the larger histories (see BENCHMARKS.md). sled records it in its
/// `conf` file and refuses to reopen a store with another value: it is part of the format.
pub(crate) const SEGMENT_LEN: usize = 32 * 1024;

/// Whether `path` holds a store, or the start of one whose creation a crash cut short (sled
/// writes `conf` before it creates `db`).
fn is_store_dir(path: &Path) -> bool {
    path.join("conf").is_file() || path.join("db").is_file()
}

fn is_lock_error(e: &std::io::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// Why the engine did not open.
enum OpenFailure {
    Engine(sled::Error),
    Repair(std::io::Error),
    /// sled asserts on some damage it meets while replaying its log; the panic is caught so
    /// that a damaged store is an error, not a crash of the caller.
    Panicked(String),
}

/// Opens the engine. A store closed a moment ago in this process can still be locked while
/// the engine's background flusher winds down, so a lock error is retried for up to a second
/// before it is reported. Before every attempt, crash leftovers are repaired under the lock.
fn open_db(
    path: &Path,
    config: &KvConfig,
    repairs: &mut Vec<String>,
) -> Result<sled::Db, OpenFailure> {
    let mut waited = std::time::Duration::ZERO;
    let step = std::time::Duration::from_millis(20);
    loop {
        repairs.extend(
            crate::recover::repair_before_open(path, SEGMENT_LEN).map_err(OpenFailure::Repair)?,
        );
        let attempt = std::panic::catch_unwind(|| {
            sled::Config::new()
                .path(path)
                .cache_capacity(config.cache_capacity)
                .segment_size(SEGMENT_LEN)
                .open()
        });
        let result = match attempt {
            Ok(result) => result,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "no message".to_owned());
                return Err(OpenFailure::Panicked(message));
            }
        };
        match result {
            Err(sled::Error::Io(ref io))
                if is_lock_error(io) && waited < std::time::Duration::from_secs(1) =>
            {
                std::thread::sleep(step);
                waited += step;
            }
            other => return other.map_err(OpenFailure::Engine),
        }
    }
}

impl Kv {
    /// Opens the store's engine, first repairing what a crash can leave that the engine would
    /// refuse ([`crate::recover`]); returns the store and one line per repair made.
    pub(crate) fn open(path: &Path, config: &KvConfig) -> Result<(Self, Vec<String>), OpenError> {
        crate::repack::finish_interrupted_swap(path).map_err(|e| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        })?;
        if path.exists() && !path.is_dir() {
            return Err(OpenError::NotAStore {
                path: path.to_owned(),
                reason: "it is a file, not a directory".into(),
            });
        }
        if !is_store_dir(path) {
            // A folder with other things in it is refused whether or not the open may create
            // a store: a read must not promise that a put would create one there.
            if path.is_dir()
                && path
                    .read_dir()
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            {
                return Err(OpenError::NotAStore {
                    path: path.to_owned(),
                    reason: "the directory is not empty; give an empty or new directory".into(),
                });
            }
            if !config.create {
                return Err(OpenError::Missing {
                    path: path.to_owned(),
                });
            }
        }
        let backend = |e: sled::Error| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        };
        let mut repairs = Vec::new();
        let db = open_db(path, config, &mut repairs).map_err(|e| match e {
            OpenFailure::Engine(sled::Error::Io(ref io)) if is_lock_error(io) => {
                OpenError::Locked {
                    path: path.to_owned(),
                }
            }
            OpenFailure::Engine(sled::Error::Corruption { .. }) => OpenError::Damaged {
                path: path.to_owned(),
                reason: "the storage engine found damaged data while opening its data file"
                    .to_owned(),
            },
            OpenFailure::Engine(other) => backend(other),
            OpenFailure::Repair(e) => OpenError::Backend {
                path: path.to_owned(),
                source: BackendError::new(e),
            },
            OpenFailure::Panicked(message) => OpenError::Backend {
                path: path.to_owned(),
                source: BackendError::new(std::io::Error::other(format!(
                    "the storage engine failed while recovering its log ({message}); \
                     keep a copy of the directory before trying anything else"
                ))),
            },
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let kv = Self {
            names: tree("names")?,
            docs: tree("docs")?,
            versions: tree("versions")?,
            objects: tree("objects")?,
            feed: tree("feed")?,
            meta: tree("meta")?,
            index: tree("index")?,
            packs: std::sync::Arc::default(),
            db,
            path: path.to_owned(),
        };
        kv.check_format(path, config.convert)?;
        crate::repack::remove_repack_leftovers(path).map_err(|e| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        })?;
        Ok((kv, repairs))
    }

    fn check_format(&self, path: &Path, convert: bool) -> Result<(), OpenError> {
        let not_a_store = |reason: String| OpenError::NotAStore {
            path: path.to_owned(),
            reason,
        };
        let stored = self.meta.get(META_FORMAT).map_err(|e| OpenError::Backend {
            path: path.to_owned(),
            source: BackendError::new(e),
        })?;
        match stored {
            Some(bytes) => {
                let rec = decode_record::<FormatRecord>(&bytes)
                    .map_err(|e| not_a_store(e.to_string()))?;
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
                if !self.names.is_empty() || !self.objects.is_empty() {
                    return Err(not_a_store("it holds data but no format record".into()));
                }
                // One batch: a crash keeps both records or neither, never a format record
                // without its counters.
                let init = || -> sled::Result<()> {
                    let mut batch = sled::Batch::default();
                    batch.insert(
                        META_FORMAT,
                        encode_record(&FormatRecord {
                            format: STORE_FORMAT,
                        }),
                    );
                    batch.insert(
                        META_COUNTERS,
                        encode_record(&Counters {
                            next_doc: 1,
                            next_seq: 1,
                            feed_page: 0,
                        }),
                    );
                    self.meta.apply_batch(batch)?;
                    self.db.flush()?;
                    Ok(())
                };
                init().map_err(|e| OpenError::Backend {
                    path: path.to_owned(),
                    source: BackendError::new(e),
                })
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
        let Some(marked) = crate::recover::read_seq_mark(path).map_err(io)? else {
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
