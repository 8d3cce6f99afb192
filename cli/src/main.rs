//! `strata`: the command line over the strata versioned document store.

mod cli;
mod commands;
mod error;
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
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                // `strata` or `strata json-patch` alone: the usage, on stderr, and exit 2.
                eprint!("{}", e.render());
                return ExitCode::from(2);
            }
            if e.kind() == ErrorKind::UnknownArgument
                && std::env::args().any(|a| a == "--policy" || a.starts_with("--policy="))
            {
                eprintln!(
                    "strata: error: --policy belongs to the commands that store versions \
                     (put, import, repack), after the command name: strata put --policy \
                     chain:8 DOC FILE; reads never change the store"
                );
                return ExitCode::from(2);
            }
            // clap's message spans several lines; keep everything before the usage section
            // and join it into the one line users and scripts expect.
            let text = e.render().to_string();
            let body = text.split("\nUsage:").next().unwrap_or(&text);
            let body = body
                .split("\n\nFor more information")
                .next()
                .unwrap_or(body);
            let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
            let line = line.trim_start_matches("error: ");
            eprintln!("strata: error: {line} (see 'strata --help')");
            return ExitCode::from(2);
        }
    };
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
