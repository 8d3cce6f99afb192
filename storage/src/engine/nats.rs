//! The NATS engine: the store's records kept as one log of batches in a NATS JetStream stream,
//! replicated by the cluster's Raft groups, and read from a copy each process keeps in memory.
//!
//! Why a log (docs/scale-out.md): the layers above need batches that apply atomically across
//! key spaces with compare-and-swap. JetStream's key-value buckets compare-and-swap one key at
//! a time; a stream compares-and-swaps its whole order: a message published with the header
//! `Nats-Expected-Last-Subject-Sequence: S` is stored only while the last message of its subject
//! is still `S`. So every batch is one message on the subject `strata.NAME.b`, published
//! expecting the sequence of the last batch this process applied. A writer that missed
//! another's batch is refused by the cluster, reads the batches it missed, checks its
//! expectations again and retries or reports the conflict. The stream's order is the store's
//! one total order of changes; every process that replays it gets the same records.
//!
//! A batch larger than the server's message limit (`max_payload`, 1 MiB by default) is cut into
//! parts published first on `strata.NAME.p`; its batch message then lists the parts' sequence
//! numbers, with the length and CRC-32 of the whole. Parts that no batch names (a writer that
//! died or lost a race between its parts and its batch) are never read. Every batch carries a
//! random id that is also its `Nats-Msg-Id`: a publish retried after a lost acknowledgement is
//! dropped as a duplicate by the server, and a writer that finds its own id while catching up
//! knows its batch was stored.
//!
//! Reads: every process keeps the records in a [`MemoryEngine`], brought up to date by
//! [`NatsEngine::sync`] (one request to the stream's leader when nothing is new) at the start
//! of every store operation, and before every write.

use std::future::Future;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, stream::LastRawMessageErrorKind};

use super::memory::MemoryEngine;
use super::{Batch, Engine, Entries, PACK_KEY, Space, Value, WriteError};
use crate::error::{BackendError, StoreError, StoreResult};
use crate::read::lock;

/// The scheme of a store given as a NATS address.
pub(crate) const SCHEME: &str = "nats://";

/// The first bytes of a batch message that holds its changes.
const INLINE: &[u8; 4] = b"SNB1";
/// The first bytes of a batch message whose changes are in parts.
const PARTS: &[u8; 4] = b"SNP1";

/// Bytes kept free in every message for its headers.
const HEADER_ROOM: usize = 4096;

/// How long a write or a read retries while the cluster has no leader (an election, a node
/// restarting) before it reports the failure.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// Where a NATS store lives: the servers, the store's name and its replication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NatsAddress {
    /// `host:port` of each server given.
    pub(crate) servers: Vec<String>,
    /// The store's name: the stream is `STRATA_{name}`, the subjects `strata.{name}.*`.
    pub(crate) name: String,
    /// Replicas of a stream this process creates (an existing stream keeps its own).
    pub(crate) replicas: usize,
}

impl NatsAddress {
    /// Parses `nats://HOST:PORT[,HOST:PORT...][/NAME][?replicas=N]`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix(SCHEME)
            .ok_or_else(|| format!("'{s}' does not start with {SCHEME}"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (hosts, name) = rest.split_once('/').unwrap_or((rest, ""));
        let servers: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if servers.is_empty() {
            return Err(format!("'{s}' names no server: give nats://HOST:PORT"));
        }
        let name = if name.is_empty() { "default" } else { name };
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "store name '{name}' in '{s}' may hold only letters, digits, '-' and '_'"
            ));
        }
        let mut replicas = 1;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("replicas", n)) => {
                    replicas = n
                        .parse()
                        .ok()
                        .filter(|n| (1..=5).contains(n))
                        .ok_or_else(|| {
                            format!("replicas={n} in '{s}': give a number from 1 to 5")
                        })?;
                }
                _ => {
                    return Err(format!(
                        "unknown setting '{pair}' in '{s}': the one setting is replicas=N"
                    ));
                }
            }
        }
        Ok(Self {
            servers,
            name: name.to_owned(),
            replicas,
        })
    }

    fn stream(&self) -> String {
        format!("STRATA_{}", self.name)
    }

    fn batch_subject(&self) -> String {
        format!("strata.{}.b", self.name)
    }

    fn part_subject(&self) -> String {
        format!("strata.{}.p", self.name)
    }
}

/// A failure talking to the cluster, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("NATS store {address}: {what}: {detail}")]
pub(crate) struct NatsError {
    address: String,
    what: String,
    detail: String,
}

/// The NATS engine (see the module's documentation).
pub(crate) struct NatsEngine {
    address: NatsAddress,
    /// What messages call the store: its address as given.
    label: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
    stream: jetstream::stream::Stream,
    context: jetstream::Context,
    /// The records as of `applied`.
    view: MemoryEngine,
    /// The sequence of the last batch applied to `view`; held while catching up or writing.
    applied: Mutex<u64>,
    /// The largest message the servers take, headers included.
    max_payload: usize,
    /// The maintenance lease this process holds, expected by each of its batches.
    fence: Mutex<Option<super::Change>>,
}

impl std::fmt::Debug for NatsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsEngine")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Drop for NatsEngine {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime (the server's).
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A retryable failure, or one to report.
enum Attempt<E> {
    Retry(E),
    Fail(E),
}

impl NatsEngine {
    /// Connects to the cluster at `label` (`nats://...`), creating the store's stream when it
    /// does not exist and `create` allows, and reads the store's records.
    pub(crate) fn open(label: &str, create: bool) -> Result<Option<Self>, NatsError> {
        let fail = |what: &str, detail: String| NatsError {
            address: label.to_owned(),
            what: what.to_owned(),
            detail,
        };
        let address = NatsAddress::parse(label).map_err(|d| fail("bad address", d))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("strata-nats")
            .enable_all()
            .build()
            .map_err(|e| fail("could not start its client", e.to_string()))?;
        let servers: Vec<String> = address
            .servers
            .iter()
            .map(|h| format!("{SCHEME}{h}"))
            .collect();
        let opts = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(5)));
        let connect = async move {
            let addrs: Vec<async_nats::ServerAddr> = servers
                .iter()
                .map(|s| s.parse())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{e}"))?;
            opts.connect(addrs).await.map_err(|e| e.to_string())
        };
        let client = run_on(&runtime, connect).map_err(|d| {
            fail(
                "could not connect",
                format!("{d}; check that nats-server runs there with JetStream on (-js)"),
            )
        })?;
        let context = {
            let _inside = runtime.enter();
            jetstream::new(client.clone())
        };
        let stream_name = address.stream();
        let found = {
            let context = context.clone();
            let name = stream_name.clone();
            run_on(&runtime, async move { context.get_stream(name).await })
        };
        let stream = match found {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(ref j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                if !create {
                    return Ok(None);
                }
                let config = jetstream::stream::Config {
                    name: stream_name.clone(),
                    subjects: vec![address.batch_subject(), address.part_subject()],
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: address.replicas,
                    duplicate_window: Duration::from_secs(120),
                    ..Default::default()
                };
                let context = context.clone();
                run_on(&runtime, async move {
                    context.get_or_create_stream(config).await
                })
                .map_err(|e| fail("could not create its stream", e.to_string()))?
            }
            Err(e) => {
                return Err(fail(
                    "could not find its stream",
                    format!("{e}; check that the server runs with JetStream on (-js)"),
                ));
            }
        };
        let max_payload = client.server_info().max_payload.max(64 * 1024);
        let engine = Self {
            label: PathBuf::from(label),
            address,
            runtime: Some(runtime),
            stream,
            context,
            view: MemoryEngine::new(),
            applied: Mutex::new(0),
            max_payload,
            fence: Mutex::new(None),
        };
        engine
            .sync()
            .map_err(|e| fail("could not read its records", e.to_string()))?;
        Ok(Some(engine))
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    fn error(&self, what: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Backend(BackendError::new(NatsError {
            address: self.label.display().to_string(),
            what: what.to_owned(),
            detail: format!(
                "{detail}; check that a majority of the cluster's servers are up and reachable"
            ),
        }))
    }

    /// Applies every batch stored since the last one applied. Returns the ids of the batches
    /// applied.
    pub(crate) fn sync(&self) -> StoreResult<()> {
        let mut applied = lock(&self.applied);
        self.catch_up(&mut applied, None).map(|_| ())
    }

    /// Catches up from `*applied`; returns whether a batch with id `mine` was among those
    /// applied.
    fn catch_up(&self, applied: &mut u64, mine: Option<&[u8; 16]>) -> StoreResult<bool> {
        let mut found = false;
        loop {
            let next = *applied + 1;
            let stream = self.stream.clone();
            let subject = self.address.batch_subject();
            let got = self.retrying("read the store's log", move || {
                let stream = stream.clone();
                let subject = subject.clone();
                async move {
                    match stream.get_first_raw_message_by_subject(subject, next).await {
                        Ok(m) => Ok(Some((m.sequence, m.payload))),
                        Err(e) => match e.kind() {
                            LastRawMessageErrorKind::NoMessageFound => Ok(None),
                            LastRawMessageErrorKind::JetStream(j)
                                if j.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND =>
                            {
                                Ok(None)
                            }
                            _ => Err(Attempt::Retry(e.to_string())),
                        },
                    }
                }
            })?;
            let Some((seq, payload)) = got else {
                return Ok(found);
            };
            let (id, changes) = self.decode(seq, &payload)?;
            if mine == Some(&id) {
                found = true;
            }
            self.view
                .write(Batch {
                    changes,
                    ..Batch::default()
                })
                .map_err(|_| StoreError::corrupt("NATS engine", "its copy refused a batch"))?;
            *applied = seq;
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or [`RETRY_FOR`] passes.
    fn retrying<T, F, Fut>(&self, what: &str, attempt: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Attempt<String>>> + Send + 'static,
    {
        let start = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match self.run(attempt()) {
                Ok(v) => return Ok(v),
                Err(Attempt::Fail(e)) => return Err(self.error(&format!("could not {what}"), e)),
                Err(Attempt::Retry(e)) if start.elapsed() > RETRY_FOR => {
                    return Err(self.error(
                        &format!("could not {what} for {} s", RETRY_FOR.as_secs()),
                        e,
                    ));
                }
                Err(Attempt::Retry(_)) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        run_on(self.rt(), fut)
    }

    /// Reads a batch message: its id and its changes.
    fn decode(&self, seq: u64, payload: &[u8]) -> StoreResult<([u8; 16], Vec<super::Change>)> {
        let bad = |why: String| StoreError::corrupt(format!("NATS batch {seq}"), why);
        let body = sealed(payload).ok_or_else(|| bad("fails its checksum".into()))?;
        let mut r = Reader { bytes: body, at: 0 };
        let magic = r.take(4).ok_or_else(|| bad("is empty".into()))?;
        if magic == PARTS {
            let id: [u8; 16] = r.array().ok_or_else(|| bad("is cut short".into()))?;
            let total = r.u64().ok_or_else(|| bad("is cut short".into()))?;
            let crc = r.u32().ok_or_else(|| bad("is cut short".into()))?;
            let n = r.u32().ok_or_else(|| bad("is cut short".into()))?;
            let mut whole = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
            for _ in 0..n {
                let part = r.u64().ok_or_else(|| bad("is cut short".into()))?;
                let stream = self.stream.clone();
                let bytes = self.retrying("read a part of a large batch", move || {
                    let stream = stream.clone();
                    async move {
                        stream
                            .get_raw_message(part)
                            .await
                            .map(|m| m.payload)
                            .map_err(|e| Attempt::Retry(e.to_string()))
                    }
                })?;
                whole.extend_from_slice(&bytes);
            }
            if whole.len() as u64 != total || crc32fast::hash(&whole) != crc {
                return Err(bad(format!(
                    "its {n} parts do not add up to the {total} bytes it names"
                )));
            }
            let body = sealed(&whole).ok_or_else(|| bad("its parts fail their checksum".into()))?;
            let mut r = Reader { bytes: body, at: 0 };
            if r.take(4) != Some(INLINE) {
                return Err(bad("its parts do not hold a batch".into()));
            }
            let (inner_id, changes) =
                read_changes(&mut r).ok_or_else(|| bad("is damaged".into()))?;
            if inner_id != id {
                return Err(bad("its parts belong to another batch".into()));
            }
            return Ok((id, changes));
        }
        if magic != INLINE {
            return Err(bad("is not a strata batch".into()));
        }
        read_changes(&mut r).ok_or_else(|| bad("is damaged".into()))
    }

    /// Publishes `payload` on `subject`, expecting the subject's last sequence to be `expect`
    /// when given; returns the stored message's sequence, or `None` when the expectation failed.
    fn publish(
        &self,
        subject: String,
        payload: Vec<u8>,
        msg_id: Option<String>,
        expect: Option<u64>,
    ) -> StoreResult<Option<u64>> {
        let payload = bytes::Bytes::from(payload);
        let context = self.context.clone();
        self.retrying("store a batch", move || {
            let context = context.clone();
            let subject = subject.clone();
            let payload = payload.clone();
            let msg_id = msg_id.clone();
            async move {
                let mut p = jetstream::message::PublishMessage::build().payload(payload);
                if let Some(id) = msg_id {
                    p = p.message_id(id);
                }
                if let Some(seq) = expect {
                    p = p.expected_last_subject_sequence(seq);
                }
                let ack = match context.send_publish(subject, p).await {
                    Ok(ack) => ack.await,
                    Err(e) => return Err(Attempt::Retry(e.to_string())),
                };
                match ack {
                    Ok(ack) => Ok(Some(ack.sequence)),
                    Err(e) => match e.kind() {
                        PublishErrorKind::WrongLastSequence => Ok(None),
                        PublishErrorKind::MaxPayloadExceeded => Err(Attempt::Fail(e.to_string())),
                        _ => Err(Attempt::Retry(e.to_string())),
                    },
                }
            }
        })
    }

    /// The batch message of `changes`: inline when it fits a message, else its parts published
    /// first.
    fn batch_message(&self, id: &[u8; 16], changes: &[super::Change]) -> StoreResult<Vec<u8>> {
        let mut inline = INLINE.to_vec();
        write_changes(&mut inline, id, changes);
        seal(&mut inline);
        let room = self.max_payload - HEADER_ROOM;
        if inline.len() <= room {
            return Ok(inline);
        }
        let mut seqs = Vec::new();
        for chunk in inline.chunks(room) {
            let seq = self
                .publish(self.address.part_subject(), chunk.to_vec(), None, None)?
                .ok_or_else(|| self.error("could not store a part", "refused"))?;
            seqs.push(seq);
        }
        let mut msg = PARTS.to_vec();
        msg.extend_from_slice(id);
        msg.extend_from_slice(&(inline.len() as u64).to_be_bytes());
        msg.extend_from_slice(&crc32fast::hash(&inline).to_be_bytes());
        msg.extend_from_slice(&(seqs.len() as u32).to_be_bytes());
        for s in seqs {
            msg.extend_from_slice(&s.to_be_bytes());
        }
        seal(&mut msg);
        Ok(msg)
    }
}

/// Runs `fut` on `rt` from any thread, inside another runtime's tasks too (where `block_on`
/// would panic): the calling thread waits on a channel.
fn run_on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .expect("the engine's runtime finishes what it started")
}

/// A random batch id.
fn new_id() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut id = [0u8; 16];
    for half in id.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        half.copy_from_slice(&h.finish().to_be_bytes());
    }
    id
}

/// Appends the CRC-32 of `bytes`.
fn seal(bytes: &mut Vec<u8>) {
    let crc = crc32fast::hash(bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
}

/// `bytes` without their CRC-32 trailer, when it matches.
fn sealed(bytes: &[u8]) -> Option<&[u8]> {
    let body = bytes.len().checked_sub(4)?;
    let (b, crc) = bytes.split_at(body);
    (crc32fast::hash(b).to_be_bytes() == crc).then_some(b)
}

/// The tag of each space in a batch message.
fn space_tag(space: Space) -> (u8, u64) {
    match space {
        Space::Names => (1, 0),
        Space::Docs => (2, 0),
        Space::Versions => (3, 0),
        Space::Objects => (4, 0),
        Space::Index => (5, 0),
        Space::Feed => (6, 0),
        Space::Meta => (7, 0),
        Space::Pack(n) => (8, n),
        Space::RunData(n) => (9, n),
        Space::Runs => (10, 0),
        Space::RunBlocks => (11, 0),
        Space::Tombstones => (12, 0),
    }
}

fn space_of(tag: u8, n: u64) -> Option<Space> {
    Some(match tag {
        1 => Space::Names,
        2 => Space::Docs,
        3 => Space::Versions,
        4 => Space::Objects,
        5 => Space::Index,
        6 => Space::Feed,
        7 => Space::Meta,
        8 => Space::Pack(n),
        9 => Space::RunData(n),
        10 => Space::Runs,
        11 => Space::RunBlocks,
        12 => Space::Tombstones,
        _ => return None,
    })
}

/// Writes `id`, the count and each change: `tag u8 ‖ n u64 BE ‖ key_len u32 BE ‖ key ‖ kind u8
/// (0 remove, 1 put) ‖ [value_len u32 BE ‖ value]`.
fn write_changes(out: &mut Vec<u8>, id: &[u8; 16], changes: &[super::Change]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(changes.len() as u32).to_be_bytes());
    for (space, key, value) in changes {
        let (tag, n) = space_tag(*space);
        out.push(tag);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
}

fn read_changes(r: &mut Reader<'_>) -> Option<([u8; 16], Vec<super::Change>)> {
    let id = r.array()?;
    let count = r.u32()?;
    let mut changes = Vec::new();
    for _ in 0..count {
        let space = space_of(r.take(1)?[0], r.u64()?)?;
        let klen = r.u32()? as usize;
        let key = r.take(klen)?.to_vec();
        let value = match r.take(1)?[0] {
            0 => None,
            1 => {
                let vlen = r.u32()? as usize;
                Some(r.take(vlen)?.to_vec())
            }
            _ => return None,
        };
        changes.push((space, key, value));
    }
    (r.at == r.bytes.len()).then_some((id, changes))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }
}

impl Engine for NatsEngine {
    fn get(&self, space: Space, key: &[u8]) -> StoreResult<Option<Value>> {
        self.view.get(space, key)
    }

    fn range(&self, space: Space, from: Bound<Vec<u8>>, to: Bound<Vec<u8>>) -> Entries<'_> {
        self.view.range(space, from, to)
    }

    fn write(&self, batch: Batch) -> Result<(), WriteError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut applied = lock(&self.applied);
        self.catch_up(&mut applied, None)?;
        let id = new_id();
        let msg_id = id.iter().map(|b| format!("{b:02x}")).collect::<String>();
        // Parts, when any, are published once: the batch message that names them is retried.
        let msg = self.batch_message(&id, &batch.changes)?;
        let fence: Vec<super::Change> = lock(&self.fence).iter().cloned().collect();
        loop {
            if !self.view.holds(&fence) {
                return Err(WriteError::Store(StoreError::Busy {
                    reason: format!(
                        "{}: another process took over this process's maintenance lease (it \
                         ran past its time); nothing more of this maintenance was written: \
                         run it again",
                        self.label.display()
                    ),
                }));
            }
            if !self.view.holds(&batch.expect) {
                return Err(WriteError::Conflict);
            }
            match self.publish(
                self.address.batch_subject(),
                msg.clone(),
                Some(msg_id.clone()),
                Some(*applied),
            )? {
                Some(seq) => {
                    self.view
                        .write(Batch {
                            changes: batch.changes,
                            ..Batch::default()
                        })
                        .map_err(|_| {
                            StoreError::corrupt("NATS engine", "its copy refused a batch")
                        })?;
                    *applied = seq;
                    return Ok(());
                }
                // Another writer's batch came first: read it, then check again.
                None => {
                    if self.catch_up(&mut applied, Some(&id))? {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn run_data(&self) -> StoreResult<Vec<u64>> {
        self.view.run_data()
    }

    fn packs(&self) -> StoreResult<Vec<u64>> {
        self.view.packs()
    }

    fn drop_pack(&self, n: u64) -> StoreResult<()> {
        let mut b = Batch::default();
        b.remove(Space::Pack(n), PACK_KEY.to_vec());
        match self.write(b) {
            Ok(()) => Ok(()),
            Err(WriteError::Store(e)) => Err(e),
            Err(WriteError::Conflict) => Err(StoreError::corrupt(
                "NATS engine",
                "refused a write without expectations as a conflict",
            )),
        }
    }

    /// A batch is durable when the cluster acknowledged it: nothing more to do.
    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn dir(&self) -> Option<&Path> {
        None
    }

    fn sync(&self) -> StoreResult<()> {
        Self::sync(self)
    }

    fn shared(&self) -> bool {
        true
    }

    fn set_fence(&self, fence: Option<super::Change>) {
        *lock(&self.fence) = fence;
    }

    /// Subscribes to the batch subject: the cluster passes every batch published to it on to
    /// subscribers as well. A wake can come before the batch is readable from the stream, so
    /// waiters also look again on their own every [`POLL`].
    fn watch(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let client = self.context.client();
        let subject = self.address.batch_subject();
        self.rt().spawn(async move {
            use futures_util::StreamExt;
            // Without a subscription (the server refused it), waiters fall back to polling.
            if let Ok(mut sub) = client.subscribe(subject).await {
                while sub.next().await.is_some() {
                    wake();
                }
            }
        });
    }
}

/// How often a waiter on a shared engine looks for new batches without being woken.
pub(crate) const POLL: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_defaults_and_refuse_mistakes() {
        let a = NatsAddress::parse("nats://127.0.0.1:4222").unwrap();
        assert_eq!(a.servers, vec!["127.0.0.1:4222"]);
        assert_eq!(a.name, "default");
        assert_eq!(a.replicas, 1);
        let a = NatsAddress::parse("nats://h1:1,h2:2,h3:3/docs?replicas=3").unwrap();
        assert_eq!(a.servers.len(), 3);
        assert_eq!(a.name, "docs");
        assert_eq!(a.replicas, 3);
        assert_eq!(a.stream(), "STRATA_docs");
        for bad in [
            "nats://",
            "nats://h:1/a.b",
            "nats://h:1/x?replicas=9",
            "nats://h:1/x?color=red",
            "http://h:1",
        ] {
            assert!(NatsAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn batches_encode_and_decode_every_space() {
        let changes: Vec<super::super::Change> = vec![
            (Space::Names, b"a".to_vec(), Some(b"1".to_vec())),
            (Space::Pack(7), Vec::new(), Some(vec![9; 1000])),
            (Space::RunData(3), Vec::new(), None),
            (Space::Meta, b"counters".to_vec(), Some(Vec::new())),
        ];
        let id = new_id();
        let mut out = INLINE.to_vec();
        write_changes(&mut out, &id, &changes);
        seal(&mut out);
        let body = sealed(&out).unwrap();
        let mut r = Reader { bytes: body, at: 4 };
        let (got_id, got) = read_changes(&mut r).unwrap();
        assert_eq!(got_id, id);
        assert_eq!(got, changes);
        // One flipped bit is caught by the checksum.
        out[10] ^= 1;
        assert!(sealed(&out).is_none());
        assert_ne!(new_id(), new_id());
    }
}
