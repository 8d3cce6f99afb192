//! `strata --remote URL COMMAND ...`: the command runs on the store `strata serve` serves.
//!
//! The client sends the command's arguments and its standard input to `POST /v1/exec`; the
//! server runs the CLI's own code on its store and answers the output, the exit code and the
//! error message, so both modes print the same and exit the same. What names a file on the
//! client's side is read or written here: `put DOC FILE` sends FILE's content, `batch FILE`
//! sends its lines (with each `"file"` read here and sent as `"content"`), `get -o FILE`
//! writes FILE here.

use std::ffi::OsString;
use std::io::{Read, Write};

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// Runs the command against the server at `url`; returns the exit code.
pub(crate) fn run(url: &str, cli: &Cli) -> Result<u8, CliError> {
    if cli.store.is_some() || cli.command.store().is_some() {
        return Err(CliError::failed(
            "give --store or --remote, not both: a server serves the store it was started on",
        ));
    }
    let mut args: Vec<OsString> = without_remote(std::env::args_os().skip(1).collect());
    let mut input = Vec::new();
    let mut output_file = None;
    match &cli.command {
        Command::Put(a) => match a.file.as_deref().filter(|p| p.as_os_str() != "-") {
            Some(path) => {
                input = crate::commands::put::read_content_file(path, a.limit.max_size)?;
                replace_last(&mut args, path.as_os_str(), "-");
            }
            None => read_stdin(&mut input)?,
        },
        Command::Batch(a) => {
            let text = if a.file.as_os_str() == "-" {
                let mut raw = Vec::new();
                read_stdin(&mut raw)?;
                String::from_utf8(raw).map_err(|_| {
                    CliError::failed("the batch on standard input is not UTF-8 text")
                })?
            } else {
                let text = std::fs::read_to_string(&a.file).map_err(|e| {
                    CliError::failed(format!("cannot read '{}': {e}", a.file.display()))
                })?;
                replace_last(&mut args, a.file.as_os_str(), "-");
                text
            };
            input = inline_files(&text)?.into_bytes();
        }
        Command::Import(a) if a.dir.as_os_str() == "-" => read_stdin(&mut input)?,
        Command::Import(a) if a.git_stream => {
            input = std::fs::read(&a.dir)
                .map_err(|e| CliError::failed(format!("cannot read '{}': {e}", a.dir.display())))?;
            replace_last(&mut args, a.dir.as_os_str(), "-");
        }
        Command::Get(a) => {
            if a.batch || a.spec.is_none() {
                read_stdin(&mut input)?;
            }
            if let Some(path) = &a.output {
                output_file = Some(path.clone());
                remove_output_flag(&mut args, path.as_os_str());
            }
        }
        _ => {}
    }
    if let Command::Feed(a) = &cli.command
        && a.follow
    {
        return follow(url, a);
    }
    let (code, body, error) = send(url, &args, &input)?;
    match output_file {
        Some(path) if code == 0 => crate::commands::get::write_atomically(&path, &body)?,
        _ => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&body).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
                other => other?,
            }
        }
    }
    if let Some(message) = error.filter(|m| !m.is_empty()) {
        eprintln!(
            "strata: {}",
            strata_storage::spec::escape_controls(&message)
        );
    }
    Ok(code)
}

/// Sends one command; returns its exit code, standard output and error message.
fn send(
    url: &str,
    args: &[OsString],
    input: &[u8],
) -> Result<(u8, Vec<u8>, Option<String>), CliError> {
    let mut request = ureq::post(&format!("{}/v1/exec", url.trim_end_matches('/')));
    for arg in args {
        let arg = arg.to_str().ok_or_else(|| {
            CliError::failed(format!(
                "argument {arg:?} is not UTF-8, which a remote command cannot carry"
            ))
        })?;
        request = request.query("arg", arg);
    }
    if let Ok(token) = std::env::var("STRATA_TOKEN") {
        request = request.set("Authorization", &format!("Bearer {}", token.trim()));
    }
    let response = match request.send_bytes(input) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => {
            // Refused before the command ran (a token, a limit): the server's JSON error.
            let body: serde_json::Value = r.into_json().unwrap_or_default();
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("the server refused the command")
                .to_owned();
            return Err(CliError::failed(message));
        }
        Err(e) => {
            return Err(CliError::failed(format!(
                "cannot reach the server at {url} ({e}); is `strata serve` running there?"
            )));
        }
    };
    let code: u8 = response
        .header("x-strata-exit")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            CliError::failed(format!(
                "{url} answered without an exit code; is it `strata serve`?"
            ))
        })?;
    let error = response
        .header("x-strata-error")
        .map(|e| crate::commands::serve::percent_decode(e).unwrap_or_else(|| e.to_owned()));
    let mut body = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut body)
        .map_err(|e| CliError::failed(format!("the server's answer broke off: {e}")))?;
    Ok((code, body, error))
}

/// How often `feed --follow` asks a server for new entries (as a local follow looks).
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// `feed --follow` against a server: asks for the entries after the last one printed (or,
/// with `--consumer`, lets the server move the consumer) every 100 ms, until `--limit`.
fn follow(url: &str, a: &crate::cli::FeedArgs) -> Result<u8, CliError> {
    use clap::ValueEnum;
    let with = a
        .with
        .to_possible_value()
        .map_or_else(|| "none".to_owned(), |v| v.get_name().to_owned());
    let mut since = a.since;
    let mut printed: u64 = 0;
    loop {
        let mut args: Vec<OsString> = vec!["feed".into(), "--with".into(), with.clone().into()];
        if let Some(p) = &a.doc {
            args.extend(["--doc".into(), p.into()]);
        }
        match &a.consumer {
            Some(name) => args.extend(["--consumer".into(), name.into()]),
            None => args.extend(["--since".into(), since.to_string().into()]),
        }
        if let Some(limit) = a.limit {
            args.extend(["--limit".into(), (limit - printed).to_string().into()]);
        }
        let (code, body, error) = send(url, &args, &[])?;
        if code != 0 {
            if let Some(message) = error {
                eprintln!(
                    "strata: {}",
                    strata_storage::spec::escape_controls(&message)
                );
            }
            return Ok(code);
        }
        let lines: Vec<&[u8]> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        for line in &lines {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line)
                && let Some(seq) = v["seq"].as_u64()
            {
                since = since.max(seq);
            }
        }
        let mut out = std::io::stdout().lock();
        let written = out.write_all(&body).and_then(|()| out.flush());
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
            other => other?,
        }
        printed += lines.len() as u64;
        if a.limit.is_some_and(|l| printed >= l) {
            return Ok(0);
        }
        if lines.is_empty() {
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// The arguments without `--remote URL` / `--remote=URL` (the server does not take it).
fn without_remote(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip = false;
    for arg in args {
        if skip {
            skip = false;
            continue;
        }
        if arg == "--remote" {
            skip = true;
            continue;
        }
        if arg.to_str().is_some_and(|a| a.starts_with("--remote=")) {
            continue;
        }
        out.push(arg);
    }
    out
}

/// Replaces the last argument equal to `old` (a positional file name) with `new`.
fn replace_last(args: &mut [OsString], old: &std::ffi::OsStr, new: &str) {
    if let Some(a) = args.iter_mut().rev().find(|a| a.as_os_str() == old) {
        *a = OsString::from(new);
    }
}

/// Removes `-o FILE`, `--output FILE` or `--output=FILE`.
fn remove_output_flag(args: &mut Vec<OsString>, path: &std::ffi::OsStr) {
    if let Some(i) = args
        .iter()
        .position(|a| a == "-o" || a == "--output")
        .filter(|i| args.get(i + 1).is_some_and(|p| p.as_os_str() == path))
    {
        args.drain(i..i + 2);
        return;
    }
    args.retain(|a| {
        !a.to_str()
            .is_some_and(|a| a.starts_with("--output=") || (a.starts_with("-o") && a.len() > 2))
    });
}

fn read_stdin(buf: &mut Vec<u8>) -> Result<(), CliError> {
    std::io::stdin()
        .read_to_end(buf)
        .map(drop)
        .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))
}

/// A batch's lines with each `"file"` read here and sent as `"content"`.
fn inline_files(text: &str) -> Result<String, CliError> {
    let mut out = String::with_capacity(text.len());
    for (i, raw) in text.lines().enumerate() {
        let parsed: Option<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_str(raw).ok();
        match parsed {
            Some(mut line) if line.get("file").is_some_and(serde_json::Value::is_string) => {
                let path = line["file"].as_str().unwrap_or_default().to_owned();
                let bytes = std::fs::read(&path).map_err(|e| {
                    CliError::failed(format!("batch line {}: cannot read '{path}': {e}", i + 1))
                })?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    CliError::failed(format!(
                        "batch line {}: '{path}' is not UTF-8 text, which a remote batch \
                         carries as \"content\"; put it with `strata --remote URL put`",
                        i + 1
                    ))
                })?;
                line.remove("file");
                line.insert("content".into(), serde_json::Value::String(text));
                out.push_str(&serde_json::Value::Object(line).to_string());
            }
            // Anything else goes as it is: the server checks it as the CLI does.
            _ => out.push_str(raw),
        }
        out.push('\n');
    }
    Ok(out)
}
