//! The `releaseops` binary: parse the command line, run a command, map the
//! result to an exit code. Everything else lives in the library crates.

mod app;
mod cli;
mod commands;
mod output;
mod trace;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
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
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(f) => {
            output::print_failure(&f, json);
            std::process::ExitCode::from(f.code)
        }
    }
}
