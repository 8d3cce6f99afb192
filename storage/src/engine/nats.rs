//! The NATS engine: the store's records kept as one log of batches in a NATS JetStream stream,
//! replicated by the cluster's Raft groups, and read from a copy each process keeps in memory.
//!
//! Why a log (docs/scale-out.md): the layers above need batches that apply atomically across
//! key spaces with compare-and-swap. JetStream's key-value buckets compare-and-swap one key at
//! a time; a stream orders everything. So every batch is one message on the subject
//! `strata.NAME.b`, published with `Nats-Expected-Last-Subject-Sequence` set to the last batch
//! message this process read, and carrying `prev`, the last batch that took effect when it
//! was computed. Replaying the log, every process applies a batch only when its `prev` is the
//! last batch that took effect before it, and skips it otherwise: the same decision from the
//! same log everywhere. The server's check alone is not enough: measured, nats-server 2.9 on
//! a 3-node cluster stores two batches published against the same last sequence when they
//! arrive together (the test with kill -9 found one version number given twice before this
//! rule). A writer whose batch was refused or skipped reads what it missed, checks its
//! expectations again and retries or reports the conflict. The log's order of the batches
//! that took effect is the store's one total order of changes.
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

use std::collections::HashMap;
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

/// `path` as a NATS store's address (`nats://...`), or `None` for a directory.
pub(crate) fn address_of(path: &Path) -> Option<&str> {
    path.to_str().filter(|p| p.starts_with(SCHEME))
}

/// The first bytes of a batch message that holds its changes.
const INLINE: &[u8; 4] = b"SNB1";
/// The first bytes of a batch message whose changes are in parts.
const PARTS: &[u8; 4] = b"SNP1";
/// The flag of a batch that replaces every record.
const RESET: u8 = 1;

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
    /// How far this process has read the log; held while catching up or writing.
    applied: Mutex<Position>,
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

/// How far a process has read the log.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    /// The sequence of the last batch message read (the subject's last sequence as this
    /// process knows it: what its next publish expects).
    read: u64,
    /// The sequence of the last batch that took effect (see [`NatsEngine::catch_up`]).
    valid: u64,
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
        let config = jetstream::stream::Config {
            name: stream_name.clone(),
            subjects: vec![address.batch_subject(), address.part_subject()],
            storage: jetstream::stream::StorageType::File,
            num_replicas: address.replicas,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        // A cluster that just started answers "temporarily unavailable" or not at all until
        // it has elected its leaders, and processes that create the stream at once race:
        // look again until it is there, for a while.
        let begun = Instant::now();
        let stream = loop {
            let found = {
                let context = context.clone();
                let name = stream_name.clone();
                run_on(&runtime, async move { context.get_stream(name).await })
            };
            let retry = match found {
                Ok(s) => break s,
                Err(e) => match e.kind() {
                    jetstream::context::GetStreamErrorKind::JetStream(j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                    {
                        if !create {
                            return Ok(None);
                        }
                        let context = context.clone();
                        let config = config.clone();
                        match run_on(&runtime, async move { context.create_stream(config).await }) {
                            Ok(s) => break s,
                            // Another process created it first (or the cluster is busy).
                            Err(e) => e.to_string(),
                        }
                    }
                    jetstream::context::GetStreamErrorKind::JetStream(j)
                        if j.error_code() != jetstream::ErrorCode::CLUSTER_NOT_AVAILABLE =>
                    {
                        return Err(fail(
                            "could not find its stream",
                            format!("{e}; check that the server runs with JetStream on (-js)"),
                        ));
                    }
                    // Nothing answers JetStream's API there: a server without JetStream.
                    _ if e.to_string().contains("does not exist") => {
                        return Err(fail(
                            "the server does not run JetStream",
                            format!(
                                "{e}; start nats-server with -js (on every server of a cluster)"
                            ),
                        ));
                    }
                    _ => e.to_string(),
                },
            };
            if begun.elapsed() > RETRY_FOR {
                return Err(fail(
                    "could not find or create its stream",
                    format!(
                        "{retry}; check that a majority of the cluster's servers run, with \
                         JetStream on (-js)"
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let max_payload = client.server_info().max_payload.max(64 * 1024);
        let engine = Self {
            label: PathBuf::from(label),
            address,
            runtime: Some(runtime),
            stream,
            context,
            view: MemoryEngine::new(),
            applied: Mutex::new(Position::default()),
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

    /// Applies every batch stored since the last one read.
    pub(crate) fn sync(&self) -> StoreResult<()> {
        // Asked without the lock, so that the readers of a busy process ask in parallel; the
        // lock is taken only when there is something to read.
        let read = lock(&self.applied).read;
        let Some(first) = self.next_batch(read)? else {
            return Ok(());
        };
        let mut at = lock(&self.applied);
        // Another thread may have read on meanwhile: then the batch fetched is stale.
        let first = (at.read == read).then_some(first);
        self.catch_up_from(&mut at, None, first).map(|_| ())
    }

    /// The first batch message after sequence `after`: its sequence and bytes.
    fn next_batch(&self, after: u64) -> StoreResult<Option<(u64, bytes::Bytes)>> {
        let stream = self.stream.clone();
        let subject = self.address.batch_subject();
        self.retrying("read the store's log", move || {
            let stream = stream.clone();
            let subject = subject.clone();
            async move {
                match stream
                    .get_first_raw_message_by_subject(subject, after + 1)
                    .await
                {
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
        })
    }

    /// Reads the log from `at` to its end. A batch takes effect only when it was published
    /// against the last batch that took effect (its `prev`): every process decides the same
    /// from the same log, so a batch that the cluster let through beside a concurrent one
    /// with the same expectation (nats-server 2.9 checks a clustered stream's expected
    /// sequence against applied messages only) is skipped by everyone, and its writer, who
    /// finds it skipped here, tries again. Returns whether the batch `mine` took effect.
    fn catch_up(&self, at: &mut Position, mine: Option<&[u8; 16]>) -> StoreResult<bool> {
        self.catch_up_from(at, mine, None)
    }

    /// As [`NatsEngine::catch_up`], starting with `first`, the batch after `at.read` when the
    /// caller fetched it already.
    fn catch_up_from(
        &self,
        at: &mut Position,
        mine: Option<&[u8; 16]>,
        mut first: Option<(u64, bytes::Bytes)>,
    ) -> StoreResult<bool> {
        let mut found = false;
        let mut parts = HashMap::new();
        let opening = at.read == 0;
        let mut one_by_one = 0;
        loop {
            let next = match first.take() {
                Some(fetched) => Some(fetched),
                None => self.next_batch(at.read)?,
            };
            let Some((seq, payload)) = next else {
                break;
            };
            self.take(at, seq, &payload, mine, &mut parts, &mut found)?;
            one_by_one += 1;
            // Far behind (opening the store, or after a burst of other writers): read the rest
            // as one stream of messages, parts included, instead of a request per batch.
            if (opening && one_by_one == 1) || one_by_one == BULK_AFTER {
                self.bulk(at, mine, &mut parts, &mut found)?;
            }
        }
        Ok(found)
    }

    /// Applies (or skips, see [`NatsEngine::catch_up`]) the batch message `seq`.
    fn take(
        &self,
        at: &mut Position,
        seq: u64,
        payload: &[u8],
        mine: Option<&[u8; 16]>,
        parts: &mut HashMap<u64, bytes::Bytes>,
        found: &mut bool,
    ) -> StoreResult<()> {
        let head = parse_head(seq, payload)?;
        let after_purge = head.reset && head.prev > at.read;
        at.read = seq;
        // A reset whose `prev` is past what this process read: the batches between were
        // purged after the reset took effect (a compaction), and the reset is the records.
        if head.prev != at.valid && !after_purge {
            return Ok(());
        }
        let changes = self.changes(seq, payload, &head, parts)?;
        if mine == Some(&head.id) {
            *found = true;
        }
        if head.reset {
            self.view.clear();
        }
        self.apply(changes)?;
        at.valid = seq;
        Ok(())
    }

    /// Reads every message after `at.read` through an ordered consumer (one stream of
    /// messages, as fast as the server sends them) until none is pending: parts are kept in
    /// `parts` for the batches that name them, batches are taken in order.
    fn bulk(
        &self,
        at: &mut Position,
        mine: Option<&[u8; 16]>,
        parts: &mut HashMap<u64, bytes::Bytes>,
        found: &mut bool,
    ) -> StoreResult<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let stream = self.stream.clone();
        let start = at.read + 1;
        let batch_subject = self.address.batch_subject();
        self.rt().spawn(async move {
            use futures_util::StreamExt;
            let config = jetstream::consumer::pull::OrderedConfig {
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            };
            let run = async {
                let mut consumer = stream
                    .create_consumer(config)
                    .await
                    .map_err(|e| e.to_string())?;
                if consumer
                    .info()
                    .await
                    .map_err(|e| e.to_string())?
                    .num_pending
                    == 0
                {
                    return Ok(());
                }
                let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
                while let Some(m) = messages.next().await {
                    let m = m.map_err(|e| e.to_string())?;
                    let info = m.info().map_err(|e| e.to_string())?;
                    let (seq, pending) = (info.stream_sequence, info.pending);
                    let batch = m.subject.as_str() == batch_subject;
                    if tx.send(Ok((seq, batch, m.payload.clone()))).is_err() || pending == 0 {
                        break;
                    }
                }
                Ok::<(), String>(())
            };
            if let Err(e) = run.await {
                let _ = tx.send(Err(e));
            }
        });
        for item in rx {
            match item {
                Ok((seq, true, payload)) if seq > at.read => {
                    self.take(at, seq, &payload, mine, parts, found)?;
                }
                Ok((seq, false, payload)) => {
                    parts.insert(seq, payload);
                }
                Ok(_) => {}
                // What the stream did not give is read a batch at a time by the caller.
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn apply(&self, changes: Vec<super::Change>) -> StoreResult<()> {
        self.view
            .write(Batch {
                changes,
                ..Batch::default()
            })
            .map_err(|_| StoreError::corrupt("NATS engine", "its copy refused a batch"))
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

    /// The changes of batch message `seq` (fetching its parts, when it has them).
    fn changes(
        &self,
        seq: u64,
        payload: &[u8],
        head: &Head,
        parts: &mut HashMap<u64, bytes::Bytes>,
    ) -> StoreResult<Vec<super::Change>> {
        let bad = |why: String| StoreError::corrupt(format!("NATS batch {seq}"), why);
        let whole;
        let body: &[u8] = match &head.parts {
            None => sealed(payload).ok_or_else(|| bad("fails its checksum".into()))?,
            Some((total, crc, seqs)) => {
                let mut bytes = Vec::with_capacity(usize::try_from(*total).unwrap_or(0));
                for &part in seqs {
                    if let Some(got) = parts.remove(&part) {
                        bytes.extend_from_slice(&got);
                        continue;
                    }
                    let stream = self.stream.clone();
                    let got = self.retrying("read a part of a large batch", move || {
                        let stream = stream.clone();
                        async move {
                            stream
                                .get_raw_message(part)
                                .await
                                .map(|m| m.payload)
                                .map_err(|e| Attempt::Retry(e.to_string()))
                        }
                    })?;
                    bytes.extend_from_slice(&got);
                }
                if bytes.len() as u64 != *total || crc32fast::hash(&bytes) != *crc {
                    return Err(bad(format!(
                        "its {} parts do not add up to the {total} bytes it names",
                        seqs.len()
                    )));
                }
                whole = bytes;
                sealed(&whole).ok_or_else(|| bad("its parts fail their checksum".into()))?
            }
        };
        let mut r = Reader { bytes: body, at: 0 };
        let inner = r
            .take(4)
            .zip(r.u64())
            .zip(r.take(1))
            .and_then(|((m, _), _)| (m == INLINE).then_some(()))
            .and_then(|()| read_changes(&mut r));
        match inner {
            Some((id, changes)) if id == head.id => Ok(changes),
            Some(_) => Err(bad("its parts belong to another batch".into())),
            None => Err(bad("is damaged".into())),
        }
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

    /// Publishes attempt `attempt` of batch `id` (its `INLINE` message, and its parts when
    /// it has them) right after the last batch read, and tells whether it took effect.
    fn publish_batch(
        &self,
        at: &mut Position,
        id: &[u8; 16],
        inline: &[u8],
        parts: Option<&(u64, u32, Vec<u64>)>,
        attempt: u64,
    ) -> StoreResult<Published> {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let stored = self.publish(
            self.address.batch_subject(),
            batch_message(at.valid, id, inline, parts),
            // One message id per attempt: the server drops a retried publish of the same
            // attempt as a duplicate, while a new attempt (after this one was refused or
            // skipped) is a new message.
            Some(format!("{hex}-{attempt}")),
            Some(at.read),
        )?;
        // Stored right after the last batch read (the usual case: nothing at all came
        // between, or the next batch is this one): it took effect. Else another batch came
        // between (refused by the cluster, or let through beside this one), and reading up to
        // here tells whether this one took effect.
        if let Some(seq) = stored
            && (seq == at.read + 1 || self.next_batch(at.read)?.map(|(s, _)| s) == Some(seq))
        {
            return Ok(Published::Next(seq));
        }
        self.catch_up(at, Some(id)).map(Published::ReadUp)
    }

    /// The maintenance lease this process holds, as the expectation each batch carries.
    fn fence(&self) -> Vec<super::Change> {
        lock(&self.fence).iter().cloned().collect()
    }

    /// The error of a write whose maintenance lease another process broke.
    fn lease_lost(&self) -> StoreError {
        StoreError::Busy {
            reason: format!(
                "{}: another process took over this process's maintenance lease (it ran past \
                 its time); nothing more of this maintenance was written: run it again",
                self.label.display()
            ),
        }
    }

    /// The parts of a batch too large for one message, published now: `None` when the batch
    /// fits one message. Returns the head fields of its batch message (total length, CRC,
    /// part sequences).
    fn publish_parts(&self, inline: &[u8]) -> StoreResult<Option<(u64, u32, Vec<u64>)>> {
        let room = self.max_payload - HEADER_ROOM;
        if inline.len() <= room {
            return Ok(None);
        }
        let mut seqs = Vec::new();
        for chunk in inline.chunks(room) {
            let seq = self
                .publish(self.address.part_subject(), chunk.to_vec(), None, None)?
                .ok_or_else(|| self.error("could not store a part", "refused"))?;
            seqs.push(seq);
        }
        Ok(Some((inline.len() as u64, crc32fast::hash(inline), seqs)))
    }
}

/// Reads the head of batch message `seq`: what it was published against, its id, and where
/// its changes are.
fn parse_head(seq: u64, payload: &[u8]) -> StoreResult<Head> {
    let bad = |why: &str| StoreError::corrupt(format!("NATS batch {seq}"), why.to_owned());
    let body = sealed(payload).ok_or_else(|| bad("fails its checksum"))?;
    let mut r = Reader { bytes: body, at: 0 };
    let short = || bad("is cut short");
    let magic = r.take(4).ok_or_else(short)?;
    let prev = r.u64().ok_or_else(short)?;
    let flags = r.take(1).ok_or_else(short)?[0];
    if flags & !RESET != 0 {
        return Err(bad("has flags this build does not know"));
    }
    let reset = flags & RESET != 0;
    let id: [u8; 16] = r.array().ok_or_else(short)?;
    if magic == INLINE {
        return Ok(Head {
            prev,
            reset,
            id,
            parts: None,
        });
    }
    if magic != PARTS {
        return Err(bad("is not a strata batch"));
    }
    let total = r.u64().ok_or_else(short)?;
    let crc = r.u32().ok_or_else(short)?;
    let n = r.u32().ok_or_else(short)?;
    let seqs = (0..n)
        .map(|_| r.u64().ok_or_else(short))
        .collect::<StoreResult<Vec<u64>>>()?;
    Ok(Head {
        prev,
        reset,
        id,
        parts: Some((total, crc, seqs)),
    })
}

/// What became of a published batch.
enum Published {
    /// Stored at this sequence right after the last batch read: it took effect, and the
    /// caller applies it to the copy.
    Next(u64),
    /// Something came between; the log was read up to its end, and this tells whether the
    /// batch took effect there (already applied).
    ReadUp(bool),
}

/// The head of a batch message.
struct Head {
    /// The batch that was the last to take effect when this one was published.
    prev: u64,
    /// The batch replaces every record (a compaction of the log, [`Engine::compact_log`]).
    reset: bool,
    id: [u8; 16],
    /// Total length, CRC-32 and sequences of the parts holding the changes, if in parts.
    parts: Option<(u64, u32, Vec<u64>)>,
}

/// A batch message: `INLINE ‖ prev u64 BE ‖ id ‖ changes ‖ CRC-32` (the changes as
/// [`write_changes`] writes them after the id), or `PARTS ‖ prev ‖ id ‖ total u64 BE ‖ CRC-32
/// of the parts u32 BE ‖ count u32 BE ‖ part sequences u64 BE ‖ CRC-32`, whose parts
/// concatenated are an `INLINE` message (with `prev` 0).
fn batch_message(
    prev: u64,
    id: &[u8; 16],
    inline: &[u8],
    parts: Option<&(u64, u32, Vec<u64>)>,
) -> Vec<u8> {
    let mut msg = Vec::new();
    match parts {
        None => {
            // `inline` is the sealed INLINE message with `prev` 0: set it and seal again.
            msg.extend_from_slice(&inline[..inline.len() - 4]);
            msg[4..12].copy_from_slice(&prev.to_be_bytes());
        }
        Some((total, crc, seqs)) => {
            msg.extend_from_slice(PARTS);
            msg.extend_from_slice(&prev.to_be_bytes());
            msg.push(inline[12]);
            msg.extend_from_slice(id);
            msg.extend_from_slice(&total.to_be_bytes());
            msg.extend_from_slice(&crc.to_be_bytes());
            msg.extend_from_slice(&(seqs.len() as u32).to_be_bytes());
            for s in seqs {
                msg.extend_from_slice(&s.to_be_bytes());
            }
        }
    }
    seal(&mut msg);
    msg
}

/// The sealed `INLINE` message of `changes`, with `prev` 0 (`reset`: the batch replaces every
/// record).
fn inline_message(id: &[u8; 16], changes: &[super::Change], reset: bool) -> Vec<u8> {
    let mut out = INLINE.to_vec();
    out.extend_from_slice(&0u64.to_be_bytes());
    out.push(if reset { RESET } else { 0 });
    write_changes(&mut out, id, changes);
    seal(&mut out);
    out
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
        // No reading ahead: a batch computed from an old copy is refused by the cluster (it
        // expects the last batch read), and then read up and checked again.
        let mut at = lock(&self.applied);
        let id = new_id();
        let inline = inline_message(&id, &batch.changes, false);
        // Parts, when any, are published once: the batch message that names them is retried.
        let parts = self.publish_parts(&inline)?;
        let fence = self.fence();
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            if !self.view.holds(&fence) {
                return Err(WriteError::Store(self.lease_lost()));
            }
            if !self.view.holds(&batch.expect) {
                return Err(WriteError::Conflict);
            }
            match self.publish_batch(&mut at, &id, &inline, parts.as_ref(), attempt)? {
                Published::Next(seq) => {
                    self.apply(batch.changes)?;
                    *at = Position {
                        read: seq,
                        valid: seq,
                    };
                    return Ok(());
                }
                Published::ReadUp(true) => return Ok(()),
                Published::ReadUp(false) => {}
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

    /// One batch that replaces every record (flagged `reset`), published after the last
    /// batch read, then a purge of every message before it (its parts included): the log
    /// holds the records once, and processes that open the store read just that. A process
    /// that had read part of the purged log takes the reset as its records (see `take`).
    fn compact_log(&self, snapshot: &MemoryEngine) -> StoreResult<()> {
        let mut at = lock(&self.applied);
        self.catch_up(&mut at, None)?;
        let fence = self.fence();
        if !self.view.holds(&fence) {
            return Err(self.lease_lost());
        }
        let mut changes = snapshot.entries();
        // The maintenance lease this process holds goes on past the reset.
        changes.extend(fence);
        let id = new_id();
        let inline = inline_message(&id, &changes, true);
        let parts = self.publish_parts(&inline)?;
        let seq = match self.publish_batch(&mut at, &id, &inline, parts.as_ref(), 1)? {
            Published::Next(seq) => {
                self.view.clear();
                self.apply(changes)?;
                *at = Position {
                    read: seq,
                    valid: seq,
                };
                seq
            }
            // It took effect after other batches: the records are replaced, and the log is
            // left whole (it still reads to the same records).
            Published::ReadUp(true) => return Ok(()),
            Published::ReadUp(false) => {
                return Err(StoreError::Busy {
                    reason: format!(
                        "{}: another process wrote while the store was being compacted; \
                         nothing was replaced: run it again",
                        self.label.display()
                    ),
                });
            }
        };
        let first = parts
            .as_ref()
            .and_then(|(_, _, seqs)| seqs.first().copied())
            .unwrap_or(seq);
        let stream = self.stream.clone();
        self.retrying("drop the log before the compaction", move || {
            let stream = stream.clone();
            async move {
                stream
                    .purge()
                    .sequence(first)
                    .await
                    .map(|_| ())
                    .map_err(|e| Attempt::Retry(e.to_string()))
            }
        })
    }

    fn stored_bytes(&self) -> StoreResult<Option<u64>> {
        let stream = self.stream.clone();
        self.retrying("read the stream's size", move || {
            let mut stream = stream.clone();
            async move {
                stream
                    .info()
                    .await
                    .map(|i| Some(i.state.bytes))
                    .map_err(|e| Attempt::Retry(e.to_string()))
            }
        })
    }

    fn set_fence(&self, fence: Option<super::Change>) {
        *lock(&self.fence) = fence;
    }

    /// Follows the batch subject through a JetStream ordered consumer that delivers each new
    /// batch once it is stored (the client recreates it after a lost connection or a leader
    /// change). Waiters also look again on their own every [`POLL`], which covers the gap
    /// while a consumer is recreated, and a server that refuses the consumer.
    fn watch(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let stream = self.stream.clone();
        let subject = self.address.batch_subject();
        self.rt().spawn(async move {
            use futures_util::StreamExt;
            let config = jetstream::consumer::pull::OrderedConfig {
                filter_subject: subject,
                deliver_policy: jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            };
            let Ok(consumer) = stream.create_consumer(config).await else {
                return;
            };
            let Ok(mut messages) = consumer.messages().await else {
                return;
            };
            while let Some(m) = messages.next().await {
                match m {
                    Ok(_) => wake(),
                    // Recreating after a failure; the waiters poll meanwhile.
                    Err(_) => tokio::time::sleep(POLL).await,
                }
            }
        });
    }
}

/// Batches read one request each before the rest of the log is read as one stream.
const BULK_AFTER: usize = 16;

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
        let inline = inline_message(&id, &changes, false);
        let mut msg = batch_message(41, &id, &inline, None);
        let head = parse_head(50, &msg).unwrap();
        assert_eq!((head.prev, head.id, head.parts.is_none()), (41, id, true));
        assert!(!head.reset);
        let reset = batch_message(41, &id, &inline_message(&id, &[], true), None);
        assert!(parse_head(51, &reset).unwrap().reset);
        let body = sealed(&msg).unwrap();
        let mut r = Reader {
            bytes: body,
            at: 13,
        };
        let (got_id, got) = read_changes(&mut r).unwrap();
        assert_eq!(got_id, id);
        assert_eq!(got, changes);
        // A batch in parts names them, with their length and CRC.
        let parts = (inline.len() as u64, crc32fast::hash(&inline), vec![7, 9]);
        let head = parse_head(60, &batch_message(41, &id, &inline, Some(&parts))).unwrap();
        assert_eq!(head.parts, Some(parts));
        // One flipped bit is caught by the checksum.
        msg[10] ^= 1;
        assert!(sealed(&msg).is_none());
        assert!(parse_head(50, &msg).is_err());
        assert_ne!(new_id(), new_id());
    }
}
