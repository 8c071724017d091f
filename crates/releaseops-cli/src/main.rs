//! The `releaseops` binary: parse the command line, run a command, map the
//! result to an exit code. Everything else lives in the library crates.

mod app;
mod cli;
mod commands;
mod notify;
mod output;
mod refs;
mod trace;

use clap::Parser;

/// Exit status when a reader closed our stdout (as a shell reports a
/// program stopped by SIGPIPE).
const EXIT_CLOSED_PIPE: i32 = 141;

fn main() -> std::process::ExitCode {
    quiet_on_closed_pipe();
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // Under --json a usage error is a JSON document too.
            if code == 2 && wants_json() {
                output::print_failure(
                    &app::Failure {
                        kind: releaseops_core::ErrorKind::Usage,
                        message: first_line(&e.to_string()),
                        hint: Some("see `releaseops <command> --help`".into()),
                    },
                    true,
                );
                return std::process::ExitCode::from(code);
            }
            let _ = e.print();
            return std::process::ExitCode::from(code);
        }
    };
    let json = cli.global.json;
    // Exporting spans when an OTLP endpoint is configured; flushed on drop,
    // after the command and outside any async runtime.
    let tracing = trace::init();
    let result = app::App::new(cli.global).and_then(|app| commands::run(&app, cli.command));
    drop(tracing);
    let retried = releaseops_core::sync::retries();
    if retried > 0 && !json {
        output::note(&format!(
            "the team's remote moved {retried} time(s) while this ran; the change was applied again on its new state each time, every gate checked again"
        ));
    }
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(f) => {
            output::print_failure(&f, json);
            std::process::ExitCode::from(f.code())
        }
    }
}

/// `--json` among the arguments (before a `--`), for errors found before
/// the arguments could be parsed.
fn wants_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// clap's message without its "error: " prefix and usage tail.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ")
        .unwrap_or(line)
        .trim()
        .to_string()
}

/// Printing to a pipe whose reader has gone (`releaseops history | head`)
/// ends the program quietly, with the status a shell gives SIGPIPE, instead
/// of a panic and a backtrace. (SIGPIPE itself stays ignored: the agents we
/// run may close their stdin early, and that must not kill us.)
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if payload.starts_with("failed printing to std")
            && (payload.contains("Broken pipe") || payload.contains("os error 32"))
        {
            std::process::exit(EXIT_CLOSED_PIPE);
        }
        default(info);
    }));
}
