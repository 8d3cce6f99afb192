//! A store in a temporary directory that can be closed and reopened, and the policy list.

use std::sync::Arc;

use strata_core::{Encoding, Policy, PolicyInput, SnapshotPolicy};
use strata_storage::{MemoryEngine, Store, StoreOptions};

/// A user-defined policy (through the trait): always a delta while the delta is smaller.
#[derive(Debug)]
pub struct AlwaysDelta;

impl SnapshotPolicy for AlwaysDelta {
    fn choose(&self, input: &PolicyInput) -> Encoding {
        if input.delta_len < input.full_stored_len {
            Encoding::Delta
        } else {
            Encoding::Full
        }
    }
}

/// A policy under test: a built-in or a custom one.
#[derive(Clone, Debug)]
pub enum PolicyUnderTest {
    /// A built-in, recorded in the store.
    Builtin(Policy),
    /// A library user's own.
    Custom(Arc<dyn SnapshotPolicy>),
}

impl PolicyUnderTest {
    /// Applies the policy to options.
    pub fn apply(&self, options: StoreOptions) -> StoreOptions {
        match self {
            Self::Builtin(p) => options.policy(*p),
            Self::Custom(p) => options.custom_policy(Arc::clone(p)),
        }
    }
}

/// Every built-in policy with small parameters (so chains end inside short runs), plus a
/// custom one.
pub fn policies() -> Vec<PolicyUnderTest> {
    let mut v: Vec<PolicyUnderTest> = [
        Policy::Full,
        Policy::Chain { max_depth: 2 },
        Policy::Chain { max_depth: 50 },
        Policy::Every { n: 3 },
        Policy::Cost { k: 1 },
        Policy::Cost { k: 4 },
        Policy::Skip,
        Policy::Sparse { run: 4 },
        Policy::Reverse { k: 1 },
        Policy::Reverse { k: 4 },
    ]
    .into_iter()
    .map(PolicyUnderTest::Builtin)
    .collect();
    v.push(PolicyUnderTest::Custom(Arc::new(AlwaysDelta)));
    v
}

/// Which storage engine a test store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineUnderTest {
    /// sled, in a temporary directory.
    Sled,
    /// The memory engine.
    Memory,
    /// The NATS engine, on the server at this address (`nats://127.0.0.1:PORT`; see
    /// [`crate::nats`]); each store has a name of its own.
    Nats(&'static str),
}

/// A store in a temporary directory (or in memory), kept alive by this value.
pub struct TestStore {
    dir: tempfile::TempDir,
    memory: Option<MemoryEngine>,
    /// `nats://HOST:PORT/NAME` of a store on the NATS engine.
    nats: Option<String>,
    options: StoreOptions,
    store: Option<Store>,
}

impl TestStore {
    /// Opens a new store with `options`.
    ///
    /// # Panics
    /// When the temporary directory or the store cannot be created.
    pub fn new(options: StoreOptions) -> Self {
        Self::on(EngineUnderTest::Sled, options)
    }

    /// Opens a new store on `engine` with `options`.
    ///
    /// # Panics
    /// When the temporary directory or the store cannot be created.
    pub fn on(engine: EngineUnderTest, options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let memory = (engine == EngineUnderTest::Memory).then(MemoryEngine::new);
        let nats = match engine {
            EngineUnderTest::Nats(url) => Some(format!("{url}/{}", crate::nats::unique_name("t"))),
            _ => None,
        };
        let mut ts = Self {
            dir,
            memory,
            nats,
            options,
            store: None,
        };
        ts.store = Some(ts.open());
        ts
    }

    fn open(&self) -> Store {
        match &self.memory {
            Some(engine) => Store::open_memory(engine, self.options.clone()),
            None => Store::open_with(self.path(), self.options.clone()),
        }
        .expect("open the store")
    }

    /// Returns the open store.
    pub fn store(&self) -> &Store {
        self.store
            .as_ref()
            .expect("the store is open between reopens")
    }

    /// Closes the store (without an explicit flush) and opens it again.
    ///
    /// # Panics
    /// When the store cannot be reopened.
    pub fn reopen(&mut self) {
        self.store = None;
        self.store = Some(self.open());
    }

    /// Returns the store's directory (its `nats://` address on the NATS engine).
    pub fn path(&self) -> std::path::PathBuf {
        match &self.nats {
            Some(address) => address.into(),
            None => self.dir.path().join("s"),
        }
    }
}

/// Copies the directory `from` (files and folders, recursively) to `to`: a store, to damage or
/// convert a copy and keep the original.
///
/// # Panics
/// When a file cannot be read or written (a test setup failure).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create the copy's folder");
    for e in std::fs::read_dir(from).expect("read the folder to copy") {
        let e = e.expect("read a folder entry");
        if e.file_type().expect("entry type").is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy a file");
        }
    }
}

/// Opens the storage engine under a closed store directly, with the segment size its
/// settings file records (sled refuses any other), for tests that damage records on purpose. A store dropped a moment ago in this process can
/// still hold the engine's lock while its background flusher stops, so a lock error is
/// retried for up to five seconds.
///
/// # Panics
/// When the engine cannot be opened.
pub fn raw_engine(path: &std::path::Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(path)
            .segment_size(segment_size(path))
            .open()
        {
            Ok(db) => return db,
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < std::time::Duration::from_secs(5) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open the engine under {}: {e}", path.display()),
        }
    }
}

/// The segment size recorded in the settings file of the closed store at `path` (32 KiB for
/// stores created before session 12, 8 KiB since).
///
/// # Panics
/// When the store has no readable settings file naming one.
pub fn segment_size(path: &std::path::Path) -> usize {
    // The text ends in a binary CRC.
    let conf =
        String::from_utf8_lossy(&std::fs::read(path.join("conf")).unwrap_or_default()).into_owned();
    conf.lines()
        .find_map(|l| l.strip_prefix("segment_size: ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no segment size in {}", path.join("conf").display()))
}
