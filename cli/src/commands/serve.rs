//! `strata serve`: one store for many clients over HTTP+JSON (the API: docs/http.md).
//!
//! Every store call runs on tokio's blocking pool (sled is a blocking library), so a slow
//! read never holds up the event loop. Reads that the CLI also answers (log, diff, ls,
//! stats, verify, tags) run the CLI's own command code into a buffer: the bodies and error
//! messages are the CLI's, by construction. Puts are durable when answered: the store is
//! opened with manual durability and concurrent puts share one flush ([`GroupCommit`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use serde_json::json;
use strata_core::{DocId, VersionRecord};
use strata_storage::{At, PutOptions, Store, StoreError};

use crate::cli::{Cli, ServeArgs};
use crate::error::CliError;

/// The most entries one `GET /v1/feed` returns, and the default.
const FEED_PAGE_MAX: usize = 10_000;
const FEED_PAGE_DEFAULT: usize = 1_000;
/// The most documents one `GET /v1/docs` returns, and the default.
const DOCS_PAGE_MAX: usize = 1_000;
const DOCS_PAGE_DEFAULT: usize = 100;
/// The longest long-poll (`wait=`), in seconds.
const WAIT_MAX_SECONDS: f64 = 60.0;
/// How often waiting feed readers look at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(250);

/// What every request shares.
pub(crate) struct App {
    pub(crate) store: Store,
    pub(crate) commits: GroupCommit,
    /// Single puts on their way to the writer thread, which stores them together.
    puts: std::sync::mpsc::Sender<QueuedPut>,
    tokens: Option<HashMap<String, Access>>,
    max_body: usize,
    /// Set when the server is asked to stop: feed waits and streams end.
    stopping: AtomicBool,
}

/// What a bearer token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    ReadOnly,
    ReadWrite,
}

/// Group commit: a put that needs durability joins the next flush; one caller flushes for
/// everyone who committed before it started.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<CommitState>,
    flushed: Condvar,
}

#[derive(Default)]
struct CommitState {
    /// Tickets handed out: one per commit waiting for durability.
    issued: u64,
    /// Writes (versions) those commits held.
    writes: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// The highest feed position known durable.
    durable_seq: u64,
    flushing: bool,
    /// Flushes led, for the figure printed at the stop (writes per flush).
    flushes: u64,
}

impl GroupCommit {
    /// Returns once every write this thread committed before the call is durable; `writes`
    /// counts them for the figure printed at the stop.
    fn wait_durable(&self, store: &Store, writes: u64) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.writes += writes;
        state.issued += 1;
        let ticket = state.issued;
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            if state.flushing {
                state = self
                    .flushed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            // Lead one flush for every ticket issued so far.
            state.flushing = true;
            let target = state.issued;
            drop(state);
            let flushed = store.last_seq().and_then(|seq| store.flush().map(|()| seq));
            state = lock(&self.state);
            state.flushing = false;
            state.flushes += 1;
            if let Ok(seq) = flushed {
                state.durable = state.durable.max(target);
                state.durable_seq = state.durable_seq.max(seq);
            }
            self.flushed.notify_all();
            flushed?;
        }
    }

    /// Records that every feed position up to `seq` is durable (written by another process
    /// to a shared store, where a write is durable when it returns) and wakes feed readers.
    fn durable_up_to(&self, seq: u64) {
        let mut state = lock(&self.state);
        state.durable_seq = state.durable_seq.max(seq);
        self.flushed.notify_all();
    }

    /// Writes made durable through this group commit, and the flushes that did it.
    fn counts(&self) -> (u64, u64) {
        let state = lock(&self.state);
        (state.writes, state.flushes)
    }

    /// The highest feed position known durable.
    pub(crate) fn durable_seq(&self) -> u64 {
        lock(&self.state).durable_seq
    }

    /// Waits up to `timeout` for a flush to make some position after `seq` durable; returns
    /// the highest durable position. Feed readers wait here, not on commits: an entry counts
    /// only once durable, and waking at its commit (before its flush) would miss it.
    fn wait_past(&self, seq: u64, timeout: Duration) -> u64 {
        let state = lock(&self.state);
        let (state, _) = self
            .flushed
            .wait_timeout_while(state, timeout, |s| s.durable_seq <= seq)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.durable_seq
    }
}

/// On a store that other processes write at the same time (the NATS engine), their versions
/// reach this server's feed readers through a thread that follows the store's feed: each
/// entry is durable once it is in the feed there.
fn follow_other_writers(app: &Arc<App>, from: u64) {
    let app = Arc::clone(app);
    std::thread::spawn(move || {
        let mut feed = app.store.subscribe(from + 1);
        while !app.stopping.load(Ordering::SeqCst) {
            match feed.next_timeout(STOP_CHECK) {
                Ok(Some(entry)) => app.commits.durable_up_to(entry.seq),
                Ok(None) => {}
                // The cluster is away (an election, a lost connection): look again soon.
                Err(_) => std::thread::sleep(STOP_CHECK),
            }
        }
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the server until SIGINT or SIGTERM.
pub(crate) fn run(args: &ServeArgs, store: Store, out: &mut dyn Write) -> Result<(), CliError> {
    let addr: SocketAddr = args.listen.parse().map_err(|_| {
        CliError::failed(format!(
            "--listen '{}' is not an address and port such as 127.0.0.1:7474",
            args.listen
        ))
    })?;
    let tokens = args.token_file.as_deref().map(read_tokens).transpose()?;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(CliError::failed(format!(
            "--timeout {} is not a number of seconds above 0",
            args.timeout
        )));
    }
    let timeout = Duration::from_secs_f64(args.timeout.min(86_400.0));
    if tokens.is_none() && !addr.ip().is_loopback() {
        return Err(CliError::failed(format!(
            "serving {addr} without tokens would let anyone on the network write; give \
             --token-file, or listen on a loopback address such as 127.0.0.1"
        )));
    }
    // Everything written before the server starts counts as durable (it was flushed when
    // the writer closed the store, or is flushed now).
    store.flush()?;
    let durable_seq = store.last_seq()?;
    let (puts, queue) = std::sync::mpsc::channel();
    let app = Arc::new(App {
        puts,
        commits: GroupCommit {
            state: Mutex::new(CommitState {
                durable_seq,
                ..CommitState::default()
            }),
            flushed: Condvar::new(),
        },
        store,
        tokens,
        max_body: usize::try_from(args.limit.max_size).unwrap_or(usize::MAX),
        stopping: AtomicBool::new(false),
    });
    let writer = Arc::downgrade(&app);
    std::thread::Builder::new()
        .name("strata-writer".into())
        .spawn(move || write_puts(writer, queue))
        .map_err(|e| CliError::failed(format!("cannot start the server's writer: {e}")))?;
    if app.store.shared() {
        follow_other_writers(&app, durable_seq);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::failed(format!("cannot listen on {addr}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| CliError::failed(format!("cannot listen on {addr}: {e}")))?;
        let stop = stop_signal()?;
        writeln!(
            out,
            "strata: serving {} on http://{bound} (SIGINT or SIGTERM stops)",
            app.store.path().display()
        )?;
        out.flush()?;
        let stop_app = Arc::clone(&app);
        axum::serve(listener, router(Arc::clone(&app), timeout))
            .with_graceful_shutdown(async move {
                stop.await;
                stop_app.stopping.store(true, Ordering::SeqCst);
            })
            .await
            .map_err(|e| CliError::failed(format!("the server failed: {e}")))
    })?;
    // Requests in flight have finished; what they wrote is durable before the process ends.
    app.store.flush()?;
    // How well group commit worked: far fewer flushes than writes under concurrent load.
    let (writes, flushes) = app.commits.counts();
    writeln!(
        out,
        "strata: stopped ({writes} durable writes, {flushes} flushes)"
    )?;
    Ok(())
}

/// SIGINT or SIGTERM, listened for from now on: made before the server announces itself,
/// so a signal sent as soon as it is up stops it gracefully instead of killing it.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| {
        signal(kind).map_err(|e| CliError::failed(format!("cannot listen for signals: {e}")))
    };
    let (mut interrupt, mut terminate) = (
        listen(SignalKind::interrupt())?,
        listen(SignalKind::terminate())?,
    );
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Reads `--token-file`: `read-only TOKEN` or `read-write TOKEN` per line.
fn read_tokens(path: &std::path::Path) -> Result<HashMap<String, Access>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", path.display())))?;
    let mut tokens = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            CliError::failed(format!(
                "'{}' line {}: expected 'read-only TOKEN' or 'read-write TOKEN'",
                path.display(),
                n + 1
            ))
        };
        let (kind, token) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let access = match kind {
            "read-only" => Access::ReadOnly,
            "read-write" => Access::ReadWrite,
            _ => return Err(bad()),
        };
        let token = token.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(bad());
        }
        tokens.insert(token.to_owned(), access);
    }
    if tokens.is_empty() {
        return Err(CliError::failed(format!(
            "'{}' holds no token; add a line 'read-write TOKEN'",
            path.display()
        )));
    }
    Ok(tokens)
}

fn router(app: Arc<App>, timeout: Duration) -> Router {
    Router::new()
        .route("/v1/docs", get(list_docs))
        .route(
            "/v1/docs/{*rest}",
            get(get_doc).put(put_doc).delete(delete_doc),
        )
        .route("/v1/batch", axum::routing::post(batch))
        .route("/v1/diff", get(diff))
        .route("/v1/feed", get(feed))
        .route("/v1/feed/stream", get(feed_stream))
        .route("/v1/tags", get(tags).post(tag).delete(untag))
        .route("/v1/stats", get(stats))
        .route("/v1/verify", axum::routing::post(verify))
        .route("/v1/exec", axum::routing::post(exec))
        .route("/", get(super::web::documents))
        .route("/ui/doc", get(super::web::timeline))
        .route("/ui/version", get(super::web::version))
        .route("/ui/diff", get(super::web::diff))
        .route("/ui/feed", get(super::web::feed))
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/v1/") {
                ApiError::not_found("no such endpoint; the API is under /v1 (docs/http.md)")
                    .into_response()
            } else {
                super::web::not_found()
            }
        })
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| time_limited(timeout, request, next),
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            authorize,
        ))
        .with_state(app)
}

/// Answers 408 when a request (its upload included) takes longer than `timeout`. A stream's
/// answer starts at once, so the limit does not end streams.
async fn time_limited(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the request took longer than the server's limit of {} s (its --timeout); a \
                     put whose upload had finished may still be stored: read the document, or \
                     retry with the same expected version (a retry of a stored put returns it)",
                    timeout.as_secs_f64()
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// An error answer: `{"error": {"code", "message"}}` with its status.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, code) = match &e {
            StoreError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            StoreError::TooLarge { .. } | StoreError::MetadataTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            }
            StoreError::TimeGoesBack { .. }
            | StoreError::BadRetention { .. }
            | StoreError::Tag { .. }
            | StoreError::BadConsumer { .. }
            | StoreError::ReservedMetadata { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            StoreError::DiskFull { .. } => (StatusCode::INSUFFICIENT_STORAGE, "disk_full"),
            StoreError::Stopped { .. } => (StatusCode::SERVICE_UNAVAILABLE, "stopped"),
            e if e.is_corruption() => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<CliError> for ApiError {
    fn from(e: CliError) -> Self {
        match e {
            CliError::Store(e) => e.into(),
            CliError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, "not_found", m),
            CliError::Failed(m) | CliError::Problems(m) => Self::bad_request(m),
            CliError::BrokenPipe => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the answer could not be written",
            ),
        }
    }
}

type ApiResult = Result<Response, ApiError>;

/// Runs `work` with the store on the blocking pool.
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    work: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || work(&app))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the request failed inside the server: {e}"),
            )
        })?
}

/// Checks the bearer token when the server has tokens: reads need any token, writes a
/// read-write one.
async fn authorize(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    if let Some(tokens) = &app.tokens {
        let headers = request.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        // A browser cannot send a bearer header for a page: the web view takes the token
        // once as `?token=`, then from the cookie set in answer.
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                c.trim()
                    .strip_prefix(TOKEN_COOKIE)
                    .and_then(|c| c.strip_prefix('='))
            });
        let query = request.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .and_then(percent_decode)
        });
        let given = bearer
            .map(str::to_owned)
            .or_else(|| cookie.map(str::to_owned))
            .or(query.clone());
        // `/v1/exec` checks what its command does itself (a read takes a read-only token).
        let exec = request.uri().path() == "/v1/exec";
        let write = !exec && !matches!(*request.method(), Method::GET | Method::HEAD);
        let access = given.as_deref().and_then(|t| tokens.get(t)).copied();
        if let Some(access) = access {
            request.extensions_mut().insert(access);
        }
        match access {
            None => {
                let mut response = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this server needs 'Authorization: Bearer TOKEN' with a token from its \
                     --token-file",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
            Some(Access::ReadOnly) if write => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "this token is read-only; writes need a read-write token",
                )
                .into_response();
            }
            Some(_) => {}
        }
        if let Some(token) = query.filter(|t| tokens.contains_key(t)) {
            let mut response = next.run(request).await;
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            )) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            return response;
        }
    }
    next.run(request).await
}

/// The cookie that carries a web view's token.
const TOKEN_COOKIE: &str = "strata_token";

/// Runs a CLI command (argv after `strata`) on the server's store: its output, and how it
/// ended (a command's own failure comes with what it printed, as `verify`'s report does).
fn run_cli(store: &Store, argv: &[&str]) -> Result<(Vec<u8>, Result<(), CliError>), ApiError> {
    let cli = Cli::try_parse_from(std::iter::once("strata").chain(argv.iter().copied())).map_err(
        |e| {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            ApiError::bad_request(first.trim_start_matches("error: ").to_owned())
        },
    )?;
    let mut out = Vec::new();
    let ended = super::run_on_store(&cli.command, store, &mut out);
    Ok((out, ended))
}

/// Runs a CLI command that must succeed; returns its output.
fn cli_output(store: &Store, argv: &[&str]) -> Result<Vec<u8>, ApiError> {
    let (out, ended) = run_cli(store, argv)?;
    ended?;
    Ok(out)
}

/// A CLI command's `--json` output lines (each a compact JSON value) as one JSON array, as
/// text: the lines are joined, not parsed and written again.
fn json_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let items: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    format!("[{}]", items.join(","))
}

/// An answer whose body is JSON text made elsewhere (a CLI command's output).
fn json_text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.trim_end().to_owned(),
    )
        .into_response()
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a `/v1/docs/...` path names: a document, or its log.
enum DocPath {
    Doc(String),
    Log(String),
}

/// Splits the raw path (before decoding, so that a key ending in `/log` is written
/// `...%2Flog`).
fn doc_path(uri: &axum::http::Uri) -> Result<DocPath, ApiError> {
    let raw = uri.path().strip_prefix("/v1/docs/").unwrap_or_default();
    let (raw, log) = match raw.strip_suffix("/log") {
        Some(doc) => (doc, true),
        None => (raw, false),
    };
    let doc = percent_decode(raw).ok_or_else(|| {
        ApiError::bad_request(format!(
            "the document key in '{}' is not valid percent-encoded UTF-8",
            uri.path()
        ))
    })?;
    if doc.is_empty() {
        return Err(ApiError::bad_request("the path names no document"));
    }
    Ok(if log {
        DocPath::Log(doc)
    } else {
        DocPath::Doc(doc)
    })
}

/// The document a write (`PUT`, `DELETE`) names; a log path is refused.
fn doc_to_write(uri: &axum::http::Uri) -> Result<strata_core::DocId, ApiError> {
    match doc_path(uri)? {
        DocPath::Doc(doc) => Ok(crate::spec::doc(&doc)?),
        DocPath::Log(_) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "a log is read only; for a document whose key ends in '/log', write it '%2Flog'",
        )),
    }
}

/// A document key as a spec naming its latest version, whatever the key holds ('@').
fn latest_spec(doc: &str) -> String {
    format!("{doc}@")
}

/// `GET /v1/docs?prefix=P&after=KEY&limit=N&all=true`.
async fn list_docs(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let after = q.get("after").cloned();
    let limit = number(&q, "limit")?
        .map_or(DOCS_PAGE_DEFAULT, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        })
        .clamp(1, DOCS_PAGE_MAX);
    let all = flag(&q, "all")?;
    blocking(&app, move |app| {
        let (page, next) = docs_page(&app.store, &prefix, after.as_deref(), limit, all)?;
        let docs: Vec<_> = page
            .iter()
            .map(|(entry, rec)| {
                json!({
                    "doc": entry.doc.as_str(),
                    "version": entry.latest.get(),
                    "id": rec.as_ref().map(|r| r.hash.to_string()),
                    "size": rec.as_ref().map(|r| r.size),
                    "time": rec.as_ref().map(|r| crate::time::rfc3339(r.created_at_ms)),
                    "deleted": entry.deleted,
                })
            })
            .collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({"docs": docs, "next": next}),
        ))
    })
    .await
}

/// One page of the documents whose keys start with `prefix`, after the key `after`, at most
/// `limit` (deleted ones only with `all`), each with its newest version's record; and the
/// key to page on from when more follow.
pub(crate) type DocsPage = (
    Vec<(strata_storage::DocEntry, Option<strata_core::VersionRecord>)>,
    Option<String>,
);

pub(crate) fn docs_page(
    store: &Store,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
    all: bool,
) -> Result<DocsPage, ApiError> {
    let mut page = Vec::new();
    for entry in store.documents()? {
        let key = entry.doc.as_str();
        if !key.starts_with(prefix) || after.is_some_and(|a| key <= a) || (entry.deleted && !all) {
            continue;
        }
        if page.len() == limit {
            let next = page
                .last()
                .map(|(e, _): &(strata_storage::DocEntry, _)| e.doc.as_str().to_owned());
            return Ok((page, next));
        }
        let rec = store.record(&entry.doc, At::Version(entry.latest))?;
        page.push((entry, rec));
    }
    Ok((page, None))
}

/// `GET /v1/docs/{doc}[?at=SPEC]` (raw bytes) and `GET /v1/docs/{doc}/log`.
async fn get_doc(
    State(app): State<Arc<App>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let doc = match doc_path(&uri)? {
        DocPath::Log(doc) => {
            let after = number(&q, "after")?.map(|n| n.to_string());
            let limit = number(&q, "limit")?.map(|n| n.to_string());
            return blocking(&app, move |app| {
                let mut argv = vec!["log", "--json"];
                if let Some(a) = &after {
                    argv.extend(["--after", a.as_str()]);
                }
                if let Some(l) = &limit {
                    argv.extend(["--limit", l.as_str()]);
                }
                let spec = latest_spec(&doc);
                argv.extend(["--", spec.as_str()]);
                let out = cli_output(&app.store, &argv)?;
                Ok(json_text(StatusCode::OK, json_lines(&out)))
            })
            .await;
        }
        DocPath::Doc(doc) => doc,
    };
    let spec = match q.get("at") {
        Some(at) => format!("{doc}@{at}"),
        None => latest_spec(&doc),
    };
    let read = move |app: &App| {
        let (doc, at) = crate::spec::resolve(&app.store, &spec)?;
        match app.store.get_with_record(&doc, at)? {
            Some(found) => Ok(found),
            None => Err(super::get::missing(&app.store, &doc, at).into()),
        }
    };
    // A read of the latest version is a few lookups and a cache hit or one decode (the
    // latest is always stored whole): it runs on the event loop's thread. Older versions
    // may rebuild a delta chain and go to the blocking pool. Measured with 64 connections
    // reading a 4 KB document: 0.45x nginx's requests/s through the pool.
    // On a shared store (NATS) every read first asks the cluster for newer batches: a
    // network round trip, which goes to the pool too.
    let found = if q.contains_key("at") || app.store.shared() {
        blocking(&app, read).await?
    } else {
        read(&app)?
    };
    let (rec, content) = found;
    let etag = format!("\"{}\"", rec.hash);
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, Body::from(content.to_vec())).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, header_value(&etag));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert("x-strata-version", header_value(&rec.version.to_string()));
    Ok(response)
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A query parameter that must be a whole number.
fn number(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("'{name}={v}' is not a whole number")))
        })
        .transpose()
}

/// A query parameter that is `true`/`1` or `false`/`0`; absent is false.
fn flag(q: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(v) => Err(ApiError::bad_request(format!(
            "'{name}={v}' is neither true nor false"
        ))),
    }
}

/// The expected version of a put: `?expect=N` or `If-Match: N` (quoted or not).
fn expected_version(
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Option<u64>, ApiError> {
    let query = number(q, "expect")?;
    let header = headers
        .get(header::IF_MATCH)
        .map(|v| {
            let text = v.to_str().unwrap_or_default().trim().trim_matches('"');
            text.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "If-Match '{text}' is not a version number (0: the document must not \
                     exist yet)"
                ))
            })
        })
        .transpose()?;
    match (query, header) {
        (Some(a), Some(b)) if a != b => Err(ApiError::bad_request(format!(
            "expect={a} and If-Match {b} disagree; give one"
        ))),
        (a, b) => Ok(a.or(b)),
    }
}

/// `PUT /v1/docs/{doc}?expect=N&message=M&author=A`: the body is the new version's content.
async fn put_doc(
    State(app): State<Arc<App>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult {
    let doc = doc_to_write(&uri)?;
    let mut options = PutOptions {
        expected: expected_version(&q, &headers)?,
        ..PutOptions::default()
    };
    if let Some(m) = q.get("message") {
        options = options.message(m.clone());
    }
    if let Some(a) = q.get("author") {
        options = options.author(a.clone());
    }
    let limit = app.max_body;
    let content = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the content is over the server's limit of {limit} bytes (its --max-size), or \
                 its upload failed"
            ),
        )
    })?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let queued = QueuedPut {
        doc: doc.clone(),
        content,
        options,
        reply,
    };
    app.puts.send(queued).map_err(|_| stopped_writer())?;
    let rec = answer.await.map_err(|_| stopped_writer())??;
    let mut response = json_response(
        StatusCode::CREATED,
        &json!({"doc": doc.as_str(), "version": rec.version.get(), "id": rec.hash.to_string(), "seq": rec.seq}),
    );
    response
        .headers_mut()
        .insert(header::ETAG, header_value(&format!("\"{}\"", rec.hash)));
    Ok(response)
}

/// A put waiting for the writer thread, with the way back to its request.
struct QueuedPut {
    doc: DocId,
    content: axum::body::Bytes,
    options: PutOptions,
    reply: tokio::sync::oneshot::Sender<Result<VersionRecord, ApiError>>,
}

/// The most puts the writer stores in one commit.
const PUT_GROUP_MAX: usize = 256;

/// The writer thread: takes every put waiting, stores them in one commit
/// ([`Store::put_each`]), waits for one flush, and answers each. Under concurrent writers
/// a commit and a flush are shared by all the puts that arrived while the previous group was
/// written; one writer alone pays both, as before. (Handing the flush to another thread, so
/// that it overlaps the next group's commit, was measured slower: 15,000-17,000 puts/s
/// against 20,000 with 64 connections; the two contend inside sled.) Ends when the server
/// is gone.
fn write_puts(app: std::sync::Weak<App>, queue: std::sync::mpsc::Receiver<QueuedPut>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < PUT_GROUP_MAX {
            match queue.try_recv() {
                Ok(put) => group.push(put),
                Err(_) => break,
            }
        }
        let Some(app) = app.upgrade() else {
            return;
        };
        // A panic inside the store fails this group's puts, as it failed one request on the
        // blocking pool, and the writer goes on with the next.
        let stored =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store_group(&app, &group)))
                .unwrap_or_else(|_| {
                    Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "the put failed inside the server",
                    ))
                });
        let answers: Vec<Result<VersionRecord, ApiError>> = match stored {
            Ok(results) => results
                .into_iter()
                .map(|r| r.map_err(ApiError::from))
                .collect(),
            Err(e) => vec![Err(e); group.len()],
        };
        for (put, answer) in group.into_iter().zip(answers) {
            // A request that went away (its client hung up) needs no answer.
            let _ = put.reply.send(answer);
        }
    }
}

/// Stores a group of puts in one commit and waits until they are durable: each put's
/// answer, or the group's error.
fn store_group(
    app: &App,
    group: &[QueuedPut],
) -> Result<Vec<Result<VersionRecord, StoreError>>, ApiError> {
    let puts = group
        .iter()
        .map(|p| (&p.doc, &p.content[..], p.options.clone()))
        .collect();
    let results = app.store.put_each(puts)?;
    let stored = results.iter().filter(|r| r.is_ok()).count() as u64;
    if stored > 0 {
        app.commits.wait_durable(&app.store, stored)?;
    }
    Ok(results)
}

/// The writer thread is gone: only once the server stops.
fn stopped_writer() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "stopped",
        "the server is stopping; put again once it is back",
    )
}

/// `POST /v1/batch`: the body is JSON lines as `strata batch` takes them (`doc`, `content`,
/// optionally `expect`, `message`, `author`, `time`; no `file`), stored all or nothing in
/// one commit with consecutive feed positions. 201 with `[{"doc","version","id","seq"}]`;
/// a conflict stores nothing and is 409 naming the document and both versions.
async fn batch(State(app): State<Arc<App>>, body: Body) -> ApiResult {
    let limit = app.max_body;
    let bytes = axum::body::to_bytes(body, limit.saturating_add(1 << 20))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the batch is over the server's limit of {limit} bytes (its --max-size)"),
            )
        })?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("the batch is not UTF-8 text (JSON lines)"))?;
    blocking(&app, move |app| {
        let puts = super::batch::parse(&text, limit as u64, false)?;
        let stored = super::batch::commit(&app.store, puts)?;
        app.commits.wait_durable(&app.store, stored.len() as u64)?;
        let records: Vec<_> = stored
            .iter()
            .map(|(doc, rec)| {
                json!({"doc": doc.as_str(), "version": rec.version.get(), "id": rec.hash.to_string(), "seq": rec.seq})
            })
            .collect();
        Ok(json_response(StatusCode::CREATED, &serde_json::Value::Array(records)))
    })
    .await
}

/// `DELETE /v1/docs/{doc}`: records a deletion as the document's next version.
async fn delete_doc(State(app): State<Arc<App>>, uri: axum::http::Uri) -> ApiResult {
    let doc = doc_to_write(&uri)?;
    blocking(&app, move |app| {
        let rec = super::ls::delete(&app.store, &doc)?;
        app.commits.wait_durable(&app.store, 1)?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"doc": doc.as_str(), "version": rec.version.get(), "deleted": true, "seq": rec.seq}),
        ))
    })
    .await
}

/// `GET /v1/diff?a=SPEC&b=SPEC&format=unified|lines|json|json-patch&context=N`.
async fn diff(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let usage = "both sides: ?a=SPEC&b=SPEC";
    let (a, b) = (required(&q, "a", usage)?, required(&q, "b", usage)?);
    // Every output of `strata diff`: its formats, and its --stat and --word-diff views.
    let (format, view) = match q.get("format").map_or("unified", String::as_str) {
        "unified" | "text" => ("text", None),
        "stat" => ("text", Some("--stat")),
        "word" => ("text", Some("--word-diff")),
        "lines" => ("lines", None),
        "json" => ("json", None),
        "json-patch" => ("json-patch", None),
        other => {
            return Err(ApiError::bad_request(format!(
                "format '{other}' is not one of unified, stat, word, lines, json, json-patch"
            )));
        }
    };
    let context = number(&q, "context")?.unwrap_or(3).to_string();
    blocking(&app, move |app| {
        let mut argv = vec![
            "diff", "--color", "never", "--format", format, "-U", &context,
        ];
        argv.extend(view);
        argv.extend(["--", &a, &b]);
        let out = cli_output(&app.store, &argv)?;
        let kind = if format.starts_with("json") {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        Ok(([(header::CONTENT_TYPE, kind)], out).into_response())
    })
    .await
}

/// One feed entry as the JSON object `strata feed` prints (its line, without the newline).
fn feed_line(store: &Store, entry: &strata_storage::FeedEntry) -> Result<String, ApiError> {
    let mut line = Vec::new();
    super::feed::write_entry(store, entry, crate::cli::FeedWith::None, &mut line)?;
    line.pop_if(|b| *b == b'\n');
    String::from_utf8(line)
        .map_err(|e| ApiError::internal(format!("a feed entry is not UTF-8: {e}")))
}

/// `GET /v1/feed?since=N&limit=L&wait=SECONDS`: the entries after position N (durable
/// ones only), waiting up to `wait` seconds for the first when there is none yet.
async fn feed(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let since = number(&q, "since")?.unwrap_or(0);
    let limit = number(&q, "limit")?
        .map_or(FEED_PAGE_DEFAULT, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        })
        .clamp(1, FEED_PAGE_MAX);
    let wait = match q.get("wait") {
        None => 0.0,
        Some(w) => w
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| ApiError::bad_request(format!("'wait={w}' is not a number of seconds")))?
            .min(WAIT_MAX_SECONDS),
    };
    blocking(&app, move |app| {
        let deadline = std::time::Instant::now() + Duration::from_secs_f64(wait);
        loop {
            let durable = app.commits.durable_seq();
            let mut entries = Vec::new();
            let mut last = since;
            for entry in app.store.feed(since.saturating_add(1)) {
                let entry = entry?;
                if entry.seq > durable || entries.len() == limit {
                    break;
                }
                entries.push(feed_line(&app.store, &entry)?);
                last = entry.seq;
            }
            let now = std::time::Instant::now();
            if !entries.is_empty() || now >= deadline || app.stopping.load(Ordering::SeqCst) {
                let body = format!("{{\"entries\":[{}],\"last\":{last}}}", entries.join(","));
                return Ok(json_text(StatusCode::OK, body));
            }
            app.commits
                .wait_past(durable.max(since), (deadline - now).min(STOP_CHECK));
        }
    })
    .await
}

/// `GET /v1/feed/stream?since=N`: Server-Sent Events, one `change` event per durable entry
/// (`id:` = its position, so a client resumes with `Last-Event-ID`).
async fn feed_stream(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let since = match resume {
        Some(n) => n,
        None => number(&q, "since")?.unwrap_or(0),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    let app_for_stream = Arc::clone(&app);
    tokio::task::spawn_blocking(move || {
        let app = app_for_stream;
        let mut next = since.saturating_add(1);
        while !app.stopping.load(Ordering::SeqCst) && !tx.is_closed() {
            let durable = app.commits.durable_seq();
            let mut sent = false;
            for entry in app.store.feed(next) {
                let Ok(entry) = entry else {
                    return;
                };
                if entry.seq > durable {
                    break;
                }
                let Ok(line) = feed_line(&app.store, &entry) else {
                    return;
                };
                let event = Event::default()
                    .event("change")
                    .id(entry.seq.to_string())
                    .data(line);
                if tx.blocking_send(event).is_err() {
                    return;
                }
                next = entry.seq + 1;
                sent = true;
            }
            if !sent {
                app.commits.wait_past(durable.max(next - 1), STOP_CHECK);
            }
        }
    });
    use tokio_stream::StreamExt as _;
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<Event, Infallible>);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `GET /v1/tags[?doc=DOC]`.
async fn tags(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let doc = q.get("doc").cloned();
    blocking(&app, move |app| {
        let mut argv = vec!["tags", "--json"];
        let spec = doc.as_deref().map(latest_spec);
        if let Some(spec) = &spec {
            argv.extend(["--", spec.as_str()]);
        }
        let out = cli_output(&app.store, &argv)?;
        Ok(json_text(StatusCode::OK, json_lines(&out)))
    })
    .await
}

/// `POST /v1/tags?spec=DOC@N&name=NAME[&force=true]`: tags a version.
async fn tag(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let usage = "?spec=DOC@N&name=NAME";
    let (spec, name) = (required(&q, "spec", usage)?, required(&q, "name", usage)?);
    let force = flag(&q, "force")?;
    blocking(&app, move |app| {
        let mut argv = vec!["tag"];
        if force {
            argv.push("--force");
        }
        argv.extend(["--", &spec, &name]);
        let out = cli_output(&app.store, &argv)?;
        app.commits.wait_durable(&app.store, 1)?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"message": String::from_utf8_lossy(&out).trim()}),
        ))
    })
    .await
}

/// `DELETE /v1/tags?doc=DOC&name=NAME`.
async fn untag(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let usage = "?doc=DOC&name=NAME";
    let (doc, name) = (required(&q, "doc", usage)?, required(&q, "name", usage)?);
    blocking(&app, move |app| {
        let doc = crate::spec::doc(&doc)?;
        if !app.store.untag(&doc, &name)? {
            return Err(ApiError::not_found(format!("no tag '{name}' on '{doc}'")));
        }
        app.commits.wait_durable(&app.store, 1)?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"doc": doc.as_str(), "name": name, "deleted": true}),
        ))
    })
    .await
}

/// `GET /v1/stats`: `strata stats --json`.
async fn stats(State(app): State<Arc<App>>) -> ApiResult {
    blocking(&app, |app| {
        let out = cli_output(&app.store, &["stats", "--json"])?;
        Ok(json_text(
            StatusCode::OK,
            String::from_utf8_lossy(&out).into_owned(),
        ))
    })
    .await
}

/// `POST /v1/verify`: `strata verify --json`; 200 when every version is whole, 500 with the
/// same report (`"ok": false`) when not.
async fn verify(State(app): State<Arc<App>>) -> ApiResult {
    blocking(&app, |app| {
        let (out, ended) = run_cli(&app.store, &["verify", "--json"])?;
        let status = match ended {
            Ok(()) => StatusCode::OK,
            Err(CliError::Problems(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Err(e) => return Err(e.into()),
        };
        Ok(json_text(
            status,
            String::from_utf8_lossy(&out).into_owned(),
        ))
    })
    .await
}

/// `POST /v1/exec?arg=A&arg=B...`: runs one CLI command (the arguments after `strata`) on
/// the server's store with the body as its standard input, for `strata --remote`. Answers
/// the command's standard output, with `x-strata-exit` (its exit code) and, when it failed,
/// `x-strata-error` (its message, percent-encoded). A command that writes needs a read-write
/// token and is durable when answered.
async fn exec(
    State(app): State<Arc<App>>,
    access: Option<axum::extract::Extension<Access>>,
    uri: axum::http::Uri,
    body: Body,
) -> ApiResult {
    let args = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("arg="))
        .map(|a| {
            percent_decode(&a.replace('+', " ")).ok_or_else(|| {
                ApiError::bad_request(format!("argument '{a}' is not valid percent-encoded UTF-8"))
            })
        })
        .collect::<Result<Vec<String>, _>>()?;
    let limit = app.max_body.saturating_add(1 << 20);
    let input = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the command's input is over the server's limit of {limit} bytes"),
        )
    })?;
    let read_only = access.is_some_and(|a| a.0 == Access::ReadOnly);
    blocking(&app, move |app| {
        let answer = |code: u8, out: Vec<u8>, error: &str| {
            let mut response = (StatusCode::OK, out).into_response();
            let h = response.headers_mut();
            h.insert("x-strata-exit", header_value(&code.to_string()));
            if !error.is_empty() {
                h.insert("x-strata-error", header_value(&percent_encode(error)));
            }
            response
        };
        let cli = match Cli::try_parse_from(std::iter::once("strata".to_owned()).chain(args)) {
            Ok(cli) => cli,
            Err(e) => {
                let (code, out, err) = crate::usage_failure(&e, false);
                let err = err.trim_end().trim_start_matches("strata: ").to_owned();
                return Ok(answer(code, out.into_bytes(), &err));
            }
        };
        if cli.store.is_some() || cli.command.store().is_some() {
            return Ok(answer(
                2,
                Vec::new(),
                "error: a server serves the store it was started on; drop --store",
            ));
        }
        let writes = super::writes(&cli.command);
        if writes && read_only {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token is read-only; the command writes and needs a read-write token",
            ));
        }
        let mut out = Vec::new();
        let mut input = super::Input::Sent(std::io::Cursor::new(input));
        let result = super::exec(&cli.command, &app.store, &mut input, &mut out);
        if writes {
            app.commits.wait_durable(&app.store, 1)?;
        }
        Ok(match result {
            Ok(()) | Err(CliError::BrokenPipe) => answer(0, out, ""),
            Err(e) => answer(e.exit_code(), out, &e.message()),
        })
    })
    .await
}

/// Percent-encodes a header value: everything but letters, digits and `-._~ /:'(),@`.
fn percent_encode(text: &str) -> String {
    percent_encode_except(text, b"-._~ /:'(),@")
}

/// Percent-encodes every byte of `text` but ASCII letters, digits and the bytes in `keep`.
pub(crate) fn percent_encode_except(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query parameter the endpoint cannot do without; `usage` shows the whole query.
fn required(q: &HashMap<String, String>, name: &str, usage: &str) -> Result<String, ApiError> {
    q.get(name)
        .cloned()
        .ok_or_else(|| ApiError::bad_request(format!("give {usage} (no '{name}')")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any path and any query text: no panic, and an encoded key decodes to itself.
        #[test]
        fn paths_and_escapes_never_panic_and_round_trip(
            raw in "[ -~]{0,40}",
            key in "\\PC{1,20}",
        ) {
            let _ = percent_decode(&raw);
            if let Ok(uri) = format!("/v1/docs/{raw}").parse::<axum::http::Uri>() {
                let _ = doc_path(&uri);
            }
            prop_assert_eq!(percent_decode(&percent_encode(&key)), Some(key.clone()));
            // A key that ends in "/log" is written with that slash escaped (docs/http.md).
            prop_assume!(!key.ends_with("/log"));
            let uri: axum::http::Uri = format!("/v1/docs/{}", percent_encode(&key).replace(' ', "%20"))
                .parse()
                .unwrap();
            prop_assert!(matches!(doc_path(&uri).unwrap(), DocPath::Doc(d) if d == key));
        }
    }

    #[test]
    fn paths_split_into_documents_and_logs() {
        let path = |p: &str| doc_path(&p.parse::<axum::http::Uri>().unwrap());
        assert!(matches!(path("/v1/docs/a/b.txt").unwrap(), DocPath::Doc(d) if d == "a/b.txt"));
        assert!(matches!(path("/v1/docs/a/b.txt/log").unwrap(), DocPath::Log(d) if d == "a/b.txt"));
        assert!(matches!(path("/v1/docs/a%2Flog").unwrap(), DocPath::Doc(d) if d == "a/log"));
        assert!(matches!(path("/v1/docs/caf%C3%A9").unwrap(), DocPath::Doc(d) if d == "café"));
        assert!(path("/v1/docs/%FF").is_err());
        assert!(path("/v1/docs/%4").is_err());
    }

    #[test]
    fn token_files_name_read_only_and_read_write_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# readers\nread-only r1\nread-write w1\n\n").unwrap();
        let tokens = read_tokens(&file).unwrap();
        assert_eq!(tokens["r1"], Access::ReadOnly);
        assert_eq!(tokens["w1"], Access::ReadWrite);
        std::fs::write(&file, "admin x\n").unwrap();
        assert!(read_tokens(&file).unwrap_err().message().contains("line 1"));
        std::fs::write(&file, "# none\n").unwrap();
        assert!(
            read_tokens(&file)
                .unwrap_err()
                .message()
                .contains("no token")
        );
    }
}
