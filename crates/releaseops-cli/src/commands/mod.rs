//! One module per command family.

pub(crate) mod agent;
mod attribution;
mod bundle;
pub(crate) mod demo;
mod env;
mod eval;
mod history;
mod init;
mod release;
mod runtime;
mod serve;
mod status;
mod sync;
pub(crate) mod traces;

use clap::CommandFactory;

use crate::app::{App, CmdResult};
use crate::cli::{Cli, Command};

pub(crate) const EXIT_BLOCKED: u8 = releaseops_core::ErrorKind::Blocked.exit_code();
pub(crate) const EXIT_VERIFY_FAILED: u8 = releaseops_core::ErrorKind::VerifyFailed.exit_code();
pub(crate) const EXIT_EVAL_FAIL: u8 = 5;
pub(crate) const EXIT_EVAL_INCONCLUSIVE: u8 = 6;

pub(crate) fn run(app: &App, cmd: Command) -> CmdResult {
    match cmd {
        Command::Init(a) => init::run(app, a),
        Command::Bundle(c) => bundle::run(app, c),
        Command::Env(c) => env::run(app, c),
        Command::Promote(a) => release::promote_cmd(app, a),
        Command::Approve(a) => release::approve(app, a),
        Command::Status(a) => status::run(app, a),
        Command::Reject(a) => release::reject(app, a),
        Command::Rollback(a) => release::rollback(app, a.env, a.id, a.steps, a.to, a.reason),
        Command::History(a) => history::run(app, a),
        Command::Eval(c) => eval::run(app, c),
        Command::Agent(c) => agent::run(app, c),
        Command::Metrics(crate::cli::MetricsCmd::Dora { env, days }) => agent::dora(app, env, days),
        Command::Traces(c) => traces::run(app, c),
        Command::Analytics(c) => traces::analytics(app, c),
        Command::Attribution(c) => attribution::run(app, c),
        Command::Replay(a) => attribution::replay(app, *a),
        Command::Demo(a) => demo::run(app, a),
        Command::Serve(a) => serve::serve(app, a),
        Command::Token(crate::cli::TokenCmd::New { owner, role, file }) => {
            serve::token_new(app, &owner, &role, &file)
        }
        Command::Export { reference, out } => runtime::export(app, &reference, &out),
        Command::Telemetry(crate::cli::TelemetryCmd::Show { reference }) => {
            runtime::telemetry_show(app, &reference)
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "releaseops", &mut script);
            // A reader that closes the pipe early (`| head`) ends us quietly.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(0)
        }
        Command::Sync(a) => sync::run(app, a),
        Command::Version => {
            if app.global.json {
                crate::output::print_json(
                    &serde_json::json!({ "name": "releaseops", "version": env!("CARGO_PKG_VERSION") }),
                );
            } else {
                anstream::println!("releaseops {}", env!("CARGO_PKG_VERSION"));
            }
            Ok(0)
        }
    }
}
