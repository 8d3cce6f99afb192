//! One module per subcommand; `run` opens the store and dispatches.

pub(crate) mod batch;
mod diff;
mod export;
mod feed;
pub(crate) mod get;
mod import;
mod json_patch;
mod log;
pub(crate) mod ls;
pub(crate) mod put;
mod quickstart;
mod repack;
pub(crate) mod serve;
mod tags;
mod verify;
mod web;

use std::io::Write;
use std::path::PathBuf;

use strata_storage::{Store, StoreOptions};

use crate::cli::{BatchArgs, Cli, Command, ImportArgs, Lazy, PutArgs};
use crate::error::CliError;

/// Where a command's standard input comes from: the process's, or bytes a remote client
/// sent with the command (`strata serve`'s `/v1/exec`).
pub(crate) enum Input {
    /// The process's standard input.
    Stdin,
    /// Bytes sent with a remote command. `local_files` is false there: names of files in
    /// the input (a batch line's "file") would name the server's files, and are refused.
    Sent(std::io::Cursor<axum::body::Bytes>),
}

impl Input {
    /// Whether files named inside the input may be read.
    pub(crate) fn local_files(&self) -> bool {
        matches!(self, Self::Stdin)
    }

    /// Whether the input is a terminal (a person typing).
    pub(crate) fn is_terminal(&self) -> bool {
        use std::io::IsTerminal;
        matches!(self, Self::Stdin) && std::io::stdin().is_terminal()
    }

    /// Reads at most `limit` bytes into `buf`; more is an error.
    pub(crate) fn read_limited(&mut self, limit: u64, buf: &mut Vec<u8>) -> std::io::Result<()> {
        use std::io::Read;
        match self {
            Self::Stdin => std::io::stdin().take(limit).read_to_end(buf).map(drop),
            Self::Sent(c) => c.take(limit).read_to_end(buf).map(drop),
        }
    }

    /// The input as a buffered reader.
    pub(crate) fn reader(&mut self) -> Box<dyn std::io::BufRead + '_> {
        match self {
            Self::Stdin => Box::new(std::io::stdin().lock()),
            Self::Sent(c) => Box::new(c),
        }
    }

    /// The lines, without their terminators.
    pub(crate) fn lines(&mut self) -> Box<dyn Iterator<Item = std::io::Result<String>> + '_> {
        use std::io::BufRead;
        match self {
            Self::Stdin => Box::new(std::io::stdin().lock().lines()),
            Self::Sent(c) => Box::new(c.lines()),
        }
    }
}

/// The store directory used when neither --store nor STRATA_DIR is given.
pub(crate) const DEFAULT_STORE: &str = ".strata";

/// Runs the parsed command, writing data to `out`.
pub(crate) fn run(cli: &Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match &cli.command {
        Command::Put(args) => put::run(
            args,
            || open_writer(cli, false, args.policy.policy, args.limit.max_size),
            &mut Input::Stdin,
            out,
        ),
        Command::Get(args) => get::run(
            args,
            &open_reading(cli, args.verify)?,
            &mut Input::Stdin,
            out,
        ),
        Command::Log(args) => log::run(args, &open(cli)?, out),
        Command::Diff(args) => diff::run(args, &open(cli)?, out),
        Command::DiffFiles(args) => diff::run_files(args, out),
        Command::Ls(args) => ls::run_ls(args, &open(cli)?, out),
        Command::Rm(args) => ls::run_rm(args, &open(cli)?, out),
        Command::Export(args) => export::run(args, &open(cli)?, out),
        Command::Retention(args) => ls::run_retention(args, &open(cli)?, out),
        Command::Prune(args) => {
            // The dropped versions' bytes inside packs are reclaimed by a repack; it runs when
            // they are a quarter or more of all packed bytes (git's auto-gc, by bytes).
            let store = open(cli)?;
            let reclaim_packs = ls::run_prune(args, &store, out)?;
            drop(store);
            if reclaim_packs && !args.no_repack {
                repack::reclaim(&store_path(cli), options(cli), out)?;
            }
            reclaim(cli)
        }
        Command::Stats(args) => ls::run_stats(args, &open(cli)?, out),
        Command::Verify(args) => verify::run_verify(args, &open(cli)?, out),
        Command::Gc(_) => {
            verify::run_gc(&open(cli)?, out)?;
            reclaim(cli)
        }
        Command::Import(args) => {
            let open = || open_writer(cli, true, args.policy.policy, args.limit.max_size);
            import::run(args, open, &mut Input::Stdin, out)?;
            reclaim(cli)
        }
        Command::JsonPatch(args) => json_patch::run(args, out),
        Command::Repack(args) => repack::run(
            args,
            &store_path(cli),
            options(cli),
            args.policy.policy,
            out,
        ),
        Command::Copy(args) => repack::run_copy(args, &open(cli)?, args.policy.policy, out),
        Command::Quickstart(_) => quickstart::run(given_store(cli), out),
        Command::Feed(args) => feed::run(args, || open(cli), out),
        Command::Batch(args) => batch::run(
            args,
            || open_writer(cli, false, args.policy.policy, args.limit.max_size),
            &mut Input::Stdin,
            out,
        ),
        Command::Tag(args) => tags::run_tag(args, &open(cli)?, out),
        Command::Tags(args) => tags::run_tags(args, &open(cli)?, out),
        Command::Consumers(args) => feed::run_consumers(args, &open(cli)?, out),
        Command::Serve(args) => {
            let options = options(cli)
                .max_content_len(args.limit.max_size)
                .cache_bytes(READ_CACHE_BYTES)
                .durability(strata_storage::Durability::Manual)
                .record_run_threshold(SERVER_RUN_THRESHOLD);
            serve::run(args, open_store(cli, options)?, out)
        }
    }
}

/// Whether `command` changes the store (a remote client needs a read-write token for it).
pub(crate) fn writes(command: &Command) -> bool {
    match command {
        Command::Put(_)
        | Command::Batch(_)
        | Command::Rm(_)
        | Command::Gc(_)
        | Command::Tag(_)
        | Command::Prune(_)
        | Command::Retention(_)
        | Command::Import(_)
        | Command::Repack(_)
        | Command::Quickstart(_)
        | Command::Serve(_) => true,
        Command::Consumers(a) => a.reset.is_some() || a.remove.is_some(),
        Command::Feed(a) => a.consumer.is_some(),
        _ => false,
    }
}

/// Runs a command that a remote client sent (`strata serve`'s `/v1/exec`) on the server's
/// store, with the input the client sent: the output and errors are the CLI's own. Commands
/// that need the store to themselves, or files where the store is, are refused by name.
pub(crate) fn exec(
    command: &Command,
    store: &Store,
    input: &mut Input,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let elsewhere = |what: &str, why: &str| -> Result<(), CliError> {
        Err(CliError::failed(format!(
            "'{what}' does not run through a server ({why}); run it where the store is, \
             with the server stopped"
        )))
    };
    match command {
        Command::Get(a) if a.verify => Err(CliError::failed(
            "--verify checks reads of a store opened for it; through a server, run 'strata \
             verify', which checks every version",
        )),
        Command::Get(a) => get::run(a, store, input, out),
        Command::Put(Lazy(PutArgs { policy, .. }))
        | Command::Batch(Lazy(BatchArgs { policy, .. }))
        | Command::Import(Lazy(ImportArgs { policy, .. }))
            if policy.policy.is_some() =>
        {
            Err(CliError::failed(
                "--policy is the server's store's; a remote write cannot change it",
            ))
        }
        Command::Put(a) => put::run(a, || Ok(store.clone()), input, out),
        Command::Batch(a) => batch::run(a, || Ok(store.clone()), input, out),
        Command::Rm(a) => ls::run_rm(a, store, out),
        Command::Gc(_) => verify::run_gc(store, out),
        Command::Export(a) => export::run(a, store, out),
        Command::Feed(a) if a.follow => elsewhere(
            "feed --follow",
            "a remote client follows by asking again; a program follows /v1/feed/stream",
        ),
        Command::Feed(a) => feed::run(a, || Ok(store.clone()), out),
        Command::Consumers(a) => feed::run_consumers(a, store, out),
        Command::Retention(a) => ls::run_retention(a, store, out),
        Command::Prune(a) => {
            // The packed bytes of dropped versions are reclaimed by a repack, which needs the
            // store to itself: the server says so where a local prune would repack.
            if ls::run_prune(a, store, out)? && !a.no_repack {
                writeln!(
                    out,
                    "the dropped versions' packed bytes stay until 'strata repack' runs where \
                     the store is, with the server stopped"
                )?;
            }
            Ok(())
        }
        Command::Import(a) => import::run(a, || Ok(store.clone()), input, out),
        Command::Repack(_) => elsewhere("repack", "it rewrites the whole store"),
        Command::Copy(_) => elsewhere("copy", "it writes a store where the server runs"),
        Command::Quickstart(_) => elsewhere("quickstart", "it makes a store of its own"),
        Command::Serve(_) => elsewhere("serve", "a server serves one store"),
        Command::DiffFiles(_) | Command::JsonPatch(_) => {
            elsewhere("a command without a store", "the client runs it itself")
        }
        other => run_on_store(other, store, out),
    }
}

/// Runs a command that works on one open store (the server answers reads with these, so
/// its bodies and messages are the CLI's).
pub(crate) fn run_on_store(
    command: &Command,
    store: &Store,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        Command::Log(args) => log::run(args, store, out),
        Command::Diff(args) => diff::run(args, store, out),
        Command::Ls(args) => ls::run_ls(args, store, out),
        Command::Stats(args) => ls::run_stats(args, store, out),
        Command::Verify(args) => verify::run_verify(args, store, out),
        Command::Tag(args) => tags::run_tag(args, store, out),
        Command::Tags(args) => tags::run_tags(args, store, out),
        _ => Err(CliError::failed("this command is not served over HTTP")),
    }
}

/// The `--store` given after the command name, else before it.
fn given_store(cli: &Cli) -> Option<PathBuf> {
    cli.command.store().or(cli.store.as_ref()).cloned()
}

/// `--store`, else `$STRATA_DIR` when set and not empty, else `./.strata`.
fn store_path(cli: &Cli) -> PathBuf {
    given_store(cli)
        .or_else(|| {
            std::env::var_os("STRATA_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
}

/// The cache of rebuilt contents for reading commands: git's `core.deltaBaseCacheLimit`
/// default. Measured with `get --batch` on a 330 KB document's 200 versions: 200 random
/// reads took half the time they take with the library's 16 MiB default.
const READ_CACHE_BYTES: usize = 96 << 20;

/// `strata serve`'s record memtable threshold (the library's default is 512 changes). A
/// server taking puts from many clients turns its memtable into a record run every few
/// hundred puts at 512, and each run is a file created, synced and later merged and removed;
/// at 4,096 durable puts from 64 connections went from 14,000 to 19,500 a second
/// (BENCHMARKS.md, session 10). The memtable's extra entries live in the engine until the
/// next run, a few hundred KB.
const SERVER_RUN_THRESHOLD: usize = 4096;

/// Opens the store once more after a command that replaced or dropped large values (record
/// runs merged by an import, packs dropped by gc): the engine removes their files only when
/// a store opens, so the command leaves none behind. No store (an import of nothing) is fine.
fn reclaim(cli: &Cli) -> Result<(), CliError> {
    // A store on NATS has no files to remove.
    if strata_storage::is_nats_store(store_path(cli)) {
        return Ok(());
    }
    match Store::open_with(store_path(cli), options(cli).create(false)) {
        Ok(store) => {
            drop(store);
            Ok(())
        }
        Err(strata_storage::OpenError::Missing { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Opens an existing store for a command that does not add versions.
fn open(cli: &Cli) -> Result<Store, CliError> {
    open_reading(cli, false)
}

/// Opens an existing store for reads, checking every content's id too when `verify`.
/// A command that does not write needs no background flusher: sled's thread for it is most
/// of what opening a store starts (sled patch 16 took the IO threads out of the open).
fn open_reading(cli: &Cli, verify: bool) -> Result<Store, CliError> {
    open_store(
        cli,
        options(cli)
            .create(false)
            .verify_reads(verify)
            .cache_bytes(READ_CACHE_BYTES)
            .background_flush(writes(&cli.command)),
    )
}

/// Opens (or creates) the store for a command that adds versions: `bulk` defers durability
/// to explicit flushes (batches flush once each), `policy` is the one given with `--policy`,
/// `max_size` the content limit.
fn open_writer(
    cli: &Cli,
    bulk: bool,
    policy: Option<strata_core::Policy>,
    max_size: u64,
) -> Result<Store, CliError> {
    let mut options = options(cli).max_content_len(max_size);
    if bulk {
        options = options.durability(strata_storage::Durability::Manual);
    }
    if let Some(p) = policy {
        options = options.policy(p);
    }
    open_store(cli, options)
}

/// Opens the store with `options`, printing what was repaired on the way.
/// The options every command opens its store with: the `--wait` for another process.
fn options(cli: &Cli) -> StoreOptions {
    let wait = if cli.wait.is_finite() && cli.wait > 0.0 {
        std::time::Duration::from_secs_f64(cli.wait.min(1e9))
    } else {
        std::time::Duration::ZERO
    };
    StoreOptions::default().lock_wait(wait)
}

fn open_store(cli: &Cli, options: StoreOptions) -> Result<Store, CliError> {
    let store = Store::open_with(store_path(cli), options)?;
    for repair in store.repairs() {
        eprintln!("strata: recovered: {repair}");
    }
    Ok(store)
}

/// The error for content over `--max-size`.
fn too_large(what: &str, size: u64, limit: u64) -> CliError {
    CliError::failed(format!(
        "{what} is {size} bytes, over the content limit of {limit} bytes; raise it with \
         --max-size (up to 1G)"
    ))
}

/// `1 version`, `2 versions`, `1 entry`, `3 entries`.
pub(crate) fn plural(n: impl TryInto<u64>, word: &str) -> String {
    let n: u64 = n.try_into().unwrap_or(u64::MAX);
    match (n, word.strip_suffix('y')) {
        (1, _) => format!("{n} {word}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {word}s"),
    }
}

/// Writes JSON followed by a newline.
fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string(value)
        .map_err(|e| CliError::failed(format!("encoding JSON failed: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// Describes how an object is stored, for `log` and `put`.
fn storage_note(store: &Store, hash: &strata_core::ContentHash) -> Result<String, CliError> {
    use strata_core::ObjectKind;
    Ok(match store.object_header(hash)? {
        None => "missing".to_owned(),
        Some(h) => match h.kind {
            ObjectKind::Full { codec } => format!("full/{} {} B", codec.name(), h.stored_len),
            ObjectKind::Delta { depth, .. } => format!("delta/{depth} {} B", h.stored_len),
        },
    })
}
