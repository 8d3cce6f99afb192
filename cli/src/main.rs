//! `strata`: the command line over the strata versioned document store.

mod cli;
mod commands;
mod error;
mod remote;
mod spec;
mod time;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::error::CliError;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("strata: internal error{at}: {msg} (please report this bug)");
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let (code, out, err) = usage_failure(
                &e,
                std::env::args().any(|a| a == "--policy" || a.starts_with("--policy=")),
            );
            print!("{out}");
            eprint!("{err}");
            return ExitCode::from(code);
        }
    };
    if let Some(url) = cli.remote.as_deref().filter(|_| cli.command.uses_store()) {
        return match remote::run(url, &cli) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!(
                    "strata: {}",
                    strata_storage::spec::escape_controls(&e.message())
                );
                ExitCode::from(e.exit_code())
            }
        };
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = commands::run(&cli, &mut out).and_then(|()| out.flush().map_err(CliError::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            // A key or file name may hold control characters: the line stays one line.
            eprintln!(
                "strata: {}",
                strata_storage::spec::escape_controls(&e.message())
            );
            ExitCode::from(e.exit_code())
        }
    }
}

/// What to do with arguments clap refused: the exit code, what goes to standard output
/// (help and version), and what goes to standard error (one line, or the usage when nothing
/// was given). `policy_given`: `--policy` appeared, which belongs after the command name.
pub(crate) fn usage_failure(e: &clap::Error, policy_given: bool) -> (u8, String, String) {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return (0, e.render().to_string(), String::new());
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // `strata` or `strata json-patch` alone: the usage, on stderr, and exit 2.
        return (2, String::new(), e.render().to_string());
    }
    if e.kind() == ErrorKind::UnknownArgument && policy_given {
        return (
            2,
            String::new(),
            "strata: error: --policy belongs to the commands that store versions (put, import, \
             repack), after the command name: strata put --policy chain:8 DOC FILE; reads never \
             change the store\n"
                .to_owned(),
        );
    }
    // clap's message spans several lines; keep everything before the usage section and join
    // it into the one line users and scripts expect.
    let text = e.render().to_string();
    let body = text.split("\nUsage:").next().unwrap_or(&text);
    let body = body
        .split("\n\nFor more information")
        .next()
        .unwrap_or(body);
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = line.trim_start_matches("error: ");
    (
        2,
        String::new(),
        format!("strata: error: {line} (see 'strata --help')\n"),
    )
}
