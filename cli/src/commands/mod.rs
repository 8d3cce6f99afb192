//! One module per subcommand; `run` opens the store and dispatches.

mod batch;
mod diff;
mod export;
mod feed;
mod get;
mod import;
mod json_patch;
mod log;
mod ls;
mod put;
mod quickstart;
mod repack;
pub(crate) mod serve;
mod tags;
mod verify;
mod web;

use std::io::Write;
use std::path::PathBuf;

use strata_storage::{Store, StoreOptions};

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// The store directory used when neither --store nor STRATA_DIR is given.
pub(crate) const DEFAULT_STORE: &str = ".strata";

/// Runs the parsed command, writing data to `out`.
pub(crate) fn run(cli: &Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match &cli.command {
        Command::Put(args) => put::run(
            args,
            || open_writer(cli, false, args.policy.policy, args.limit.max_size),
            out,
        ),
        Command::Get(args) => get::run(args, &open_reading(cli, args.verify)?, out),
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
            let reclaim_packs = ls::run_prune(args, &open(cli)?, out)?;
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
            import::run(args, open, out)?;
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
        Command::Quickstart(_) => quickstart::run(given_store(cli), out),
        Command::Feed(args) => feed::run(args, || open(cli), out),
        Command::Batch(args) => batch::run(
            args,
            || open_writer(cli, false, args.policy.policy, args.limit.max_size),
            out,
        ),
        Command::Tag(args) => tags::run_tag(args, &open(cli)?, out),
        Command::Tags(args) => tags::run_tags(args, &open(cli)?, out),
        Command::Consumers(args) => feed::run_consumers(args, &open(cli)?, out),
        Command::Serve(args) => {
            let options = options(cli)
                .max_content_len(args.limit.max_size)
                .cache_bytes(READ_CACHE_BYTES)
                .durability(strata_storage::Durability::Manual);
            serve::run(args, open_store(cli, options)?, out)
        }
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

/// Opens the store once more after a command that replaced or dropped large values (record
/// runs merged by an import, packs dropped by gc): the engine removes their files only when
/// a store opens, so the command leaves none behind. No store (an import of nothing) is fine.
fn reclaim(cli: &Cli) -> Result<(), CliError> {
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
fn open_reading(cli: &Cli, verify: bool) -> Result<Store, CliError> {
    open_store(
        cli,
        options(cli)
            .create(false)
            .verify_reads(verify)
            .cache_bytes(READ_CACHE_BYTES),
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
