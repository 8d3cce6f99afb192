//! The command-line grammar (clap derive). Help text comes from these doc comments.

use std::path::PathBuf;

use clap::builder::Resettable;
use clap::{Args, Parser, Subcommand};

/// A versioned document store: every put keeps a new version, any version reads back
/// byte-identical, and any two versions can be compared.
///
/// The store lives in --store DIR, else $STRATA_DIR, else ./.strata; it is created by the
/// first write.
///
/// Exit codes: 0 success; 1 a negative answer (no such document or version, verify found
/// problems); 2 an error (bad arguments, unreadable input, a conflict, a damaged store).
#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    max_term_width = 100,
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    /// The store directory (also accepted after the command name).
    /// [default: $STRATA_DIR when set and not empty, else ./.strata]
    #[arg(long, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,

    /// How long to wait, in seconds, while another process uses the store (one process at a
    /// time may), before failing with the process's number.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, global = true)]
    pub(crate) wait: f64,

    /// Run the command against `strata serve` at URL (http://HOST:PORT) instead of a store
    /// directory: same output and exit codes. A token for a server with --token-file comes
    /// from $STRATA_TOKEN.
    #[arg(long, value_name = "URL", env = "STRATA_REMOTE", global = true)]
    pub(crate) remote: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Store a new version of a document
    Put(Lazy<PutArgs>),
    /// Print a version of a document
    Get(Lazy<GetArgs>),
    /// List a document's versions, oldest first (see `strata log --help` for the columns)
    ///
    /// One line per version: number, time (UTC), size, content id, how it is stored, author and
    /// message. "full/zstd N B" is a compressed snapshot of N bytes; "delta/D N B" a delta of N
    /// bytes, D steps from the nearest snapshot (a read replays D deltas). Only a message's
    /// first line is shown, followed by "[+N lines]" when it has more; --full prints it whole.
    Log(Lazy<LogArgs>),
    /// Compare two versions, of one document or of two
    Diff(Lazy<DiffArgs>),
    /// List all documents with their latest version (deleted ones with --all)
    Ls(Lazy<LsArgs>),
    /// Show counts and sizes: versions, objects, stored vs raw bytes
    Stats(Lazy<JsonArgs>),
    /// Rebuild every version and check every content id
    Verify(Lazy<JsonArgs>),
    /// Remove stored objects that no version needs
    Gc(Lazy<StoreArg>),
    /// Import document histories from a folder (one subfolder per document)
    Import(Lazy<ImportArgs>),
    /// Work with RFC 6902 JSON patches
    JsonPatch(Lazy<JsonPatchArgs>),
    /// Compare two files outside any store, with the same options as diff
    DiffFiles(Lazy<DiffFilesArgs>),
    /// Re-encode every stored object (smaller, or under another policy) without changing ids
    ///
    /// The store is rewritten into a new directory beside it, verified, and swapped in; until
    /// then the original is untouched, so an interrupted repack loses nothing. The policy given
    /// with --policy is recorded for later writes.
    Repack(Lazy<RepackArgs>),
    /// Copy the whole store to a new store, on another engine too (a directory, or
    /// nats://HOST:PORT/NAME), and check the copy
    ///
    /// Every document, version (time, author, message, metadata), tag, consumer and the
    /// change feed are copied as they are; objects are re-encoded as repack does. The copy is
    /// then opened and verified: every version rebuilds to its content id, and the histories
    /// and the feed match the original's. The original is not changed.
    Copy(Lazy<CopyArgs>),
    /// Store a few versions of a bundled document in a new store and show the commands
    Quickstart(Lazy<StoreArg>),
    /// Print the change feed: every version in the order it was written, one JSON object per line
    ///
    /// Each line is a JSON object: seq (the write's position in the store, from 1, gap-free),
    /// doc, version, id, size, time (RFC 3339), created_at_ms, author, message, meta (other
    /// metadata), and content or diff when asked for.
    Feed(Lazy<FeedArgs>),
    /// Serve the store over HTTP to many clients at once (the API is in docs/http.md)
    ///
    /// Puts are durable when answered; concurrent puts share one flush. Without
    /// --token-file only loopback addresses are served. SIGINT or SIGTERM stops the server
    /// after the requests in flight.
    Serve(Lazy<ServeArgs>),
    /// List the feed's durable consumers with their positions and lag; reset or remove one
    Consumers(Lazy<ConsumersArgs>),
    /// Store several versions at once, all or nothing, from JSON lines
    ///
    /// Each line is an object: "doc", then "content" (text) or "file" (a path), and optionally
    /// "expect" (the version the document must be at; 0: it must not exist), "message",
    /// "author", "time" (RFC 3339 or a date). The versions get consecutive feed positions; on
    /// a conflict nothing is stored and the message names the document and versions.
    Batch(Lazy<BatchArgs>),
    /// Write every version as a git fast-import stream (one commit per version, feed order)
    ///
    /// `strata export | git fast-import` loads the history into a git repository: each document
    /// is a file path, each version a commit with its author, time (to the second) and message
    /// (metadata git has no field for as `Strata-Meta: key=value` lines at its end), deletions
    /// as file removals. Versions that cannot be read (a damaged store) are skipped and listed
    /// on standard error, and the command exits 1: the rest is still exported.
    Export(Lazy<ExportArgs>),
    /// Record a document's deletion as its next version; earlier versions stay readable
    Rm(Lazy<RmArgs>),
    /// Drop a document's oldest versions for good (the only command that drops data)
    ///
    /// The dropped versions vanish from the history and the feed; every kept version reads as
    /// before (deltas that relied on a dropped version are re-encoded), version numbers do not
    /// change, and the newest version is always kept.
    Prune(Lazy<PruneArgs>),
    /// Show or set the store's retention rule, which every later put applies
    ///
    /// Without a flag it prints the rule. With a rule, every later put (and batch, and import)
    /// prunes the documents it writes as `strata prune` would, sparing tagged versions; the
    /// rule is recorded in the store.
    Retention(Lazy<RetentionArgs>),
    /// Name a version: `strata tag DOC@N NAME`, then DOC@NAME reads it
    Tag(Lazy<TagArgs>),
    /// List tags, of one document or of all
    Tags(Lazy<TagsArgs>),
}

/// A subcommand's arguments, added to its `clap` command only when that command is parsed
/// or its help printed (`Command::defer`): building every subcommand's arguments on each
/// start cost more than opening a store (0.12 ms of a 1.07 ms `strata get --batch` with no
/// input, `BENCHMARKS.md`, session 14). The subcommand keeps the help text of its variant
/// here, as it did when its arguments were built in place.
#[derive(Debug)]
pub(crate) struct Lazy<T>(pub(crate) T);

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Self)
    }
    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| with_own_help(cmd, T::augment_args))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| with_own_help(cmd, T::augment_args_for_update))
    }
}

/// Runs `add` (a derived argument builder) on `cmd`, keeping the help text `cmd` already
/// has: its command's line in the grammar, which `add` would replace with the argument
/// struct's own doc comment.
fn with_own_help(cmd: clap::Command, add: fn(clap::Command) -> clap::Command) -> clap::Command {
    let (about, long_about) = (cmd.get_about().cloned(), cmd.get_long_about().cloned());
    add(cmd)
        .about(Resettable::from(about))
        .long_about(Resettable::from(long_about))
}

/// Arguments of `strata tag`.
#[derive(Debug, Args)]
pub(crate) struct TagArgs {
    /// The version to tag: DOC (latest), DOC@N, DOC@-N, DOC@TIME, DOC@ID or DOC@OTHER-TAG;
    /// with --delete, the document.
    pub(crate) spec: String,
    /// The tag: a letter, then letters, digits, '.', '_' or '-' (for example v1.2).
    pub(crate) name: String,
    /// Move the tag when it names another version (a tag never moves silently).
    #[arg(long, conflicts_with = "delete")]
    pub(crate) force: bool,
    /// Remove the tag instead.
    #[arg(long)]
    pub(crate) delete: bool,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata tags`.
#[derive(Debug, Args)]
pub(crate) struct TagsArgs {
    /// Only this document's tags.
    pub(crate) doc: Option<String>,
    /// Print one JSON object per tag.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata batch`.
#[derive(Debug, Args)]
pub(crate) struct BatchArgs {
    /// The JSON-lines file; '-' for standard input.
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) policy: PolicyArg,
    #[command(flatten)]
    pub(crate) limit: LimitArg,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address and port to listen on (port 0: any free port, printed at start)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7474")]
    pub(crate) listen: String,
    /// A file of bearer tokens, one per line: `read-only TOKEN` or `read-write TOKEN` (`#`
    /// starts a comment). With it, every request needs `Authorization: Bearer TOKEN`
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// The longest a request may take, in seconds, its upload included (a client that stops
    /// sending gets 408 and its connection closes); feed long polls wait at most 60
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    pub(crate) timeout: f64,
    #[command(flatten)]
    pub(crate) limit: LimitArg,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// The `--store` option, for the commands that use a store.
#[derive(Debug, Args)]
pub(crate) struct StoreArg {
    /// The store directory. [default: $STRATA_DIR when set and not empty, else ./.strata]
    #[arg(long, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
}

/// The `--policy` option of the commands that write versions (put, import, repack). Read
/// commands do not take it: a read never changes the store.
#[derive(Debug, Args)]
pub(crate) struct PolicyArg {
    /// The storage policy for new versions: full, chain:N, every:N, cost:K, skip,
    /// sparse:N or reverse:K. It is recorded in the store and used by later writes. Default:
    /// the store's, else reverse:4.
    #[arg(long, value_name = "POLICY")]
    pub(crate) policy: Option<strata_core::Policy>,
}

/// The content-size limit of the commands that store versions.
#[derive(Debug, Args)]
pub(crate) struct LimitArg {
    /// The largest content a version may have, in bytes or with a K, M or G suffix (powers
    /// of 1024), at most 1G. Larger input is refused before it is read.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    pub(crate) max_size: u64,
}

/// Parses `123`, `64K`, `64M` or `1G` (powers of 1024), up to 1 GiB.
fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size: give bytes, or a number with K, M or G"))?;
    let bytes = n
        .checked_mul(1 << shift)
        .filter(|&b| b <= 1 << 30)
        .ok_or_else(|| format!("'{text}' is over the largest limit, 1G"))?;
    Ok(bytes)
}

impl Command {
    /// The `--store` given after the command name, if any.
    /// Whether the command works on a store (the others run where they are typed, also
    /// with --remote).
    pub(crate) fn uses_store(&self) -> bool {
        !matches!(self, Self::JsonPatch(_) | Self::DiffFiles(_))
    }

    pub(crate) fn store(&self) -> Option<&PathBuf> {
        let arg = match self {
            Self::Put(a) => &a.at,
            Self::Get(a) => &a.at,
            Self::Log(a) => &a.at,
            Self::Diff(a) => &a.at,
            Self::Ls(a) => &a.at,
            Self::Rm(a) => &a.at,
            Self::Export(a) => &a.at,
            Self::Prune(a) => &a.at,
            Self::Retention(a) => &a.at,
            Self::Stats(a) | Self::Verify(a) => &a.at,
            Self::Gc(a) | Self::Quickstart(a) => a,
            Self::Import(a) => &a.at,
            Self::Repack(a) => &a.at,
            Self::Copy(a) => &a.at,
            Self::Feed(a) => &a.at,
            Self::Consumers(a) => &a.at,
            Self::Batch(a) => &a.at,
            Self::Tag(a) => &a.at,
            Self::Tags(a) => &a.at,
            Self::Serve(a) => &a.at,
            Self::JsonPatch(_) | Self::DiffFiles(_) => return None,
        };
        arg.store.as_ref()
    }
}

/// What `strata feed` carries with each version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FeedWith {
    /// Metadata only.
    None,
    /// The whole content: `content` (UTF-8 text) or `content_base64`.
    Content,
    /// The change from the document's previous version: a unified diff for text, an RFC 6902
    /// patch for JSON, a size summary otherwise.
    Diff,
}

/// Arguments of `strata feed`.
#[derive(Debug, Args)]
pub(crate) struct FeedArgs {
    /// Start after sequence number N (0, the default: from the first write). A consumer
    /// passes the last seq it has processed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) since: u64,
    /// Print at most N entries.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u64>,
    /// Only documents whose key starts with PREFIX.
    #[arg(long, value_name = "PREFIX")]
    pub(crate) doc: Option<String>,
    /// What each entry carries besides metadata.
    #[arg(long, value_enum, default_value_t = FeedWith::None)]
    pub(crate) with: FeedWith,
    /// Keep waiting for versions written later, by this or another process, and print each
    /// once, in order, until interrupted. The store is opened only to read (every 100 ms), so
    /// other processes can write meanwhile.
    #[arg(long)]
    pub(crate) follow: bool,
    /// Resume after the position stored in the store under NAME (created at 0), and store
    /// the position of each entry once its line is written (at least once: after a crash
    /// or Ctrl-C the last few lines may come again). See `strata consumers`.
    #[arg(long, value_name = "NAME", conflicts_with = "since")]
    pub(crate) consumer: Option<String>,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata consumers`.
#[derive(Debug, Args)]
pub(crate) struct ConsumersArgs {
    /// Print one JSON object per consumer.
    #[arg(long)]
    pub(crate) json: bool,
    /// Set consumer NAME's position (to 0, or to --to N), creating it if needed.
    #[arg(long, value_name = "NAME", conflicts_with = "remove")]
    pub(crate) reset: Option<String>,
    /// The position --reset sets: the last sequence number the consumer has processed.
    #[arg(long, value_name = "N", requires = "reset", default_value_t = 0)]
    pub(crate) to: u64,
    /// Remove consumer NAME.
    #[arg(long, value_name = "NAME")]
    pub(crate) remove: Option<String>,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// The document key, for example notes/today.md.
    pub(crate) doc: String,
    /// The file holding the new content; standard input when absent or '-'.
    pub(crate) file: Option<PathBuf>,
    /// A message stored with the version.
    #[arg(short, long)]
    pub(crate) message: Option<String>,
    /// The author stored with the version.
    #[arg(long)]
    pub(crate) author: Option<String>,
    /// Fail with a conflict unless the document is at version N now (0: it must not exist).
    #[arg(long, value_name = "N")]
    pub(crate) expect: Option<u64>,
    /// When the version was made (default: now), as an RFC 3339 time
    /// (2024-05-01T12:00:00Z, offsets and fractions allowed) or a date (2024-05-01, the start
    /// of that day, UTC); never before the document's newest version.
    #[arg(long, value_name = "TIME")]
    pub(crate) time: Option<String>,
    #[command(flatten)]
    pub(crate) policy: PolicyArg,
    #[command(flatten)]
    pub(crate) limit: LimitArg,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// DOC (latest), DOC@N (version N), DOC@-N (N before latest) or DOC@ID (ID: a 64-hex-digit content id).
    #[arg(required_unless_present = "batch")]
    pub(crate) spec: Option<String>,
    /// Read one spec per line from standard input and write, for each, a header line
    /// `<id> <size>` then the content and a newline (as `git cat-file --batch`); a spec that
    /// names nothing gives `<spec> missing`.
    #[arg(long, conflicts_with_all = ["spec", "output"])]
    pub(crate) batch: bool,
    /// Write to FILE instead of standard output (replaced atomically).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Check each content against its id (blake3) as well as against the checksums stored
    /// with every object (which every read checks).
    #[arg(long)]
    pub(crate) verify: bool,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata log`.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// The document key.
    pub(crate) doc: String,
    /// Print one JSON object per version.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print whole messages, each line indented under its version.
    #[arg(long)]
    pub(crate) full: bool,
    /// Only versions made at or after TIME (an RFC 3339 time or a date).
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Only versions made at or before TIME (an RFC 3339 time, or a date: the end of that day).
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// Only versions whose author contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub(crate) author: Option<String>,
    /// Only versions whose message contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub(crate) grep: Option<String>,
    /// Only versions after version N (paging: the last version a page showed).
    #[arg(long, value_name = "N")]
    pub(crate) after: Option<u64>,
    /// At most N versions (the oldest first, after the other filters).
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata diff`.
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The old side: DOC, DOC@N, DOC@-N or DOC@ID.
    pub(crate) old: String,
    /// The new side, in the same forms; may name another document.
    pub(crate) new: String,
    #[command(flatten)]
    pub(crate) opts: DiffOpts,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata diff-files`.
#[derive(Debug, Args)]
pub(crate) struct DiffFilesArgs {
    /// The old file ('-' for standard input).
    pub(crate) old: String,
    /// The new file ('-' for standard input; not both).
    pub(crate) new: String,
    #[command(flatten)]
    pub(crate) opts: DiffOpts,
}

/// How `diff` and `diff-files` compare and print.
#[derive(Debug, Args)]
pub(crate) struct DiffOpts {
    /// Show only a summary of lines inserted and deleted, as git's --stat.
    #[arg(long)]
    pub(crate) stat: bool,
    /// Lines of context around each change.
    #[arg(short = 'U', long = "unified", default_value_t = 3, value_name = "N")]
    pub(crate) context: u32,
    /// Mark changed words inside lines ([-removed-]{+added+}) instead of whole lines.
    #[arg(long)]
    pub(crate) word_diff: bool,
    /// Ignore whitespace when comparing lines, as git diff -w.
    #[arg(short = 'w', long)]
    pub(crate) ignore_whitespace: bool,
    /// Output: text (unified diff; for JSON documents the changes by JSON path first), json
    /// (the typed diff), json-patch (an RFC 6902 patch; both sides must be JSON), lines (a
    /// plain line diff even for JSON).
    #[arg(long, default_value = "text", value_parser = ["text", "json", "json-patch", "lines"])]
    pub(crate) format: String,
    /// When to colour the output: auto (when standard output is a terminal and NO_COLOR is
    /// unset), always or never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub(crate) color: String,
}

/// Arguments of `strata json-patch`.
#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
pub(crate) struct JsonPatchArgs {
    #[command(subcommand)]
    pub(crate) action: JsonPatchAction,
}

/// What `strata json-patch` does.
#[derive(Debug, Subcommand)]
pub(crate) enum JsonPatchAction {
    /// Apply an RFC 6902 patch to a JSON file and print the result
    ///
    /// The document is never half-patched: when any operation fails, nothing is printed and
    /// the exit code is 2.
    Apply {
        /// The JSON document ('-' for standard input).
        doc: PathBuf,
        /// The RFC 6902 patch, a JSON array of operations ('-' for standard input).
        patch: PathBuf,
    },
}

/// A `--json` switch.
#[derive(Debug, Args)]
pub(crate) struct JsonArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata ls`.
#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also list deleted documents (marked as such).
    #[arg(long)]
    pub(crate) all: bool,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata prune`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("rule").required(true).args(["keep", "before"])))]
pub(crate) struct PruneArgs {
    /// The document.
    pub(crate) doc: String,
    /// Keep the newest N versions.
    #[arg(long, value_name = "N")]
    pub(crate) keep: Option<u64>,
    /// Drop the versions made before TIME (an RFC 3339 time or a date).
    #[arg(long, value_name = "TIME")]
    pub(crate) before: Option<String>,
    /// Also drop tagged versions (their tags go with them).
    #[arg(long)]
    pub(crate) force: bool,
    /// Do not repack afterwards, even when a quarter or more of the packed bytes are no
    /// longer used (`strata repack` reclaims them later).
    #[arg(long)]
    pub(crate) no_repack: bool,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata retention`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("rule").args(["keep", "before", "off"])))]
pub(crate) struct RetentionArgs {
    /// Keep each document's newest N versions.
    #[arg(long, value_name = "N")]
    pub(crate) keep: Option<u64>,
    /// Drop versions made before TIME (an RFC 3339 time or a date).
    #[arg(long, value_name = "TIME")]
    pub(crate) before: Option<String>,
    /// Remove the rule: keep every version.
    #[arg(long)]
    pub(crate) off: bool,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Only these documents (default: all).
    pub(crate) docs: Vec<String>,
    /// The branch the commits go to.
    #[arg(long, default_value = "main", value_name = "NAME")]
    pub(crate) branch: String,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata rm`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The document to delete (a put revives it).
    pub(crate) doc: String,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// A folder with one subfolder per document, each holding the document's versions as
    /// files, oldest first in name order (the layout of shared/corpus). The subfolder's name is
    /// the document key. A folder holding only files is imported as one document named after
    /// the folder.
    ///
    /// '-' reads a stream on standard input instead: for each version a header line
    /// `put SIZE KEY`, then exactly SIZE bytes of content, then a newline.
    /// Blank lines between records are ignored. Each batch commits on its own: after an
    /// error in the stream, the versions of earlier batches stay and the message says how many.
    pub(crate) dir: PathBuf,
    /// Versions per transaction; each batch is flushed once. A batch also closes when the
    /// contents it holds reach 64 MiB. Larger batches store less: under reverse deltas each
    /// batch boundary can leave one more full snapshot.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub(crate) batch: usize,
    /// DIR is a `git fast-export` stream (a file, or '-' for standard input): every file
    /// path becomes a document and every commit that touched it a version, with its time,
    /// author and message.
    #[arg(long)]
    pub(crate) git_stream: bool,
    /// When `<folder>.commits.tsv` dates a version before the one before it (git author
    /// dates do that after a rebase), give it the previous version's time and keep its own
    /// date as metadata 'date', instead of refusing the import.
    #[arg(long)]
    pub(crate) raise_times: bool,
    #[command(flatten)]
    pub(crate) policy: PolicyArg,
    #[command(flatten)]
    pub(crate) limit: LimitArg,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata copy`.
#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// The new store: a directory that does not exist yet, or nats://HOST:PORT[,...]/NAME (a
    /// store name not used yet on that cluster)
    #[arg(value_name = "DEST")]
    pub(crate) dest: PathBuf,
    /// The zstd level for re-encoded objects (1-22)
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub(crate) level: i32,
    #[command(flatten)]
    pub(crate) policy: PolicyArg,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}

/// Arguments of `strata repack`.
#[derive(Debug, Args)]
pub(crate) struct RepackArgs {
    /// The zstd level for re-encoded objects (1-22). 19 is smallest but about 20 times slower.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub(crate) level: i32,
    /// How many versions to try as delta bases: earlier ones under chain and cost, the next
    /// newer ones under reverse.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) window: usize,
    #[command(flatten)]
    pub(crate) policy: PolicyArg,
    #[command(flatten)]
    pub(crate) at: StoreArg,
}
