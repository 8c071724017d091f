use releaseops_core::envs::{self, HistoryQuery};
use releaseops_format::history::{EventKind, GateStatus, Record};

use crate::app::{App, CmdResult, Failure};
use crate::cli::HistoryArgs;
use crate::commands::EXIT_VERIFY_FAILED;
use crate::output::{self, BOLD, DIM, GREEN, RED, YELLOW, paint};

pub(super) fn run(app: &App, a: HistoryArgs) -> CmdResult {
    let store = app.store()?;
    if a.action.as_deref() == Some("verify") {
        let r = releaseops_core::audit::verify(&store)?;
        let code = if r.ok { 0 } else { EXIT_VERIFY_FAILED };
        if output::json(app, &r) {
            return Ok(code);
        }
        if r.ok {
            anstream::println!(
                "OK: {} records in {} segment(s) chain correctly; {} environment(s) match the history",
                r.records,
                r.segments,
                r.environments_checked
            );
            if r.rehearsal {
                anstream::println!(
                    "  {}",
                    paint(
                        DIM,
                        &format!(
                            "a rehearsal store: {} record(s) with a simulated clock; none of it was production",
                            r.simulated_clock_records
                        )
                    )
                );
            }
            if r.legacy_pending {
                anstream::println!(
                    "  {}",
                    paint(
                        DIM,
                        "promotion_history.yaml will be imported into the chain with the next change"
                    )
                );
            }
        } else {
            anstream::println!(
                "{}: {} problem(s)",
                paint(RED.bold(), "FAILED"),
                r.problems.len()
            );
            for p in &r.problems {
                anstream::println!("  - {p}");
            }
        }
        return Ok(code);
    }
    let event = match &a.event {
        None => None,
        Some(e) => Some(envs::EventFilter::parse_named(e)?),
    };
    let recs = envs::history(
        &store,
        &HistoryQuery {
            bundle: a.bundle,
            env: a.env,
            event,
            actor: a.by,
            since: a.since.as_deref().map(time_arg("--since")).transpose()?,
            until: a.until.as_deref().map(time_arg("--until")).transpose()?,
            limit: a.limit,
        },
    )?;
    print_records(app, &recs);
    Ok(0)
}

fn time_arg(flag: &'static str) -> impl Fn(&str) -> Result<jiff::Timestamp, Failure> {
    move |s| {
        releaseops_format::time::parse(s).map_err(|e| {
            Failure::usage(
                format!("{flag} {s}: {e}"),
                "give an RFC 3339 time such as 2026-11-21T09:00:00Z",
            )
        })
    }
}

pub(super) fn print_records(app: &App, recs: &[Record]) {
    if app.global.json {
        output::print_json(recs);
        return;
    }
    if recs.is_empty() {
        anstream::println!("No history yet.");
        return;
    }
    for r in recs {
        anstream::println!("{}", describe(r));
        if let Some(reason) = &r.reason {
            // Escaped: a record from before control characters were refused
            // must not print as more than one line.
            let reason = releaseops_format::names::escape_for_display(reason);
            anstream::println!("      {}", paint(DIM, &format!("reason: {reason}")));
        }
        for g in r
            .gates
            .iter()
            .filter(|g| g.status != GateStatus::Passed || r.overridden)
        {
            anstream::println!(
                "      {}",
                paint(
                    DIM,
                    &format!("gate {} {}: {}", g.gate, g.status.as_str(), g.reason)
                )
            );
        }
    }
}

fn describe(r: &Record) -> String {
    let what = format!(
        "{}{}",
        r.bundle_id.as_deref().unwrap_or(""),
        r.version
            .as_deref()
            .map(|v| format!("@{v}"))
            .unwrap_or_default()
    );
    let env = r.env.as_deref().unwrap_or("-");
    let (label, detail) = match r.event {
        EventKind::Promote => {
            let from = r
                .from_version
                .as_deref()
                .map(|v| format!(" (was {v})"))
                .unwrap_or_default();
            let label = if r.overridden {
                paint(RED.bold(), "OVERRIDE")
            } else {
                paint(GREEN, "PROMOTE")
            };
            (label, format!("{} -> {env}{from}", paint(BOLD, &what)))
        }
        EventKind::Rollback => (
            paint(YELLOW.bold(), "ROLLBACK"),
            format!(
                "{env}: {} -> {}",
                r.from_version.as_deref().unwrap_or("?"),
                paint(BOLD, &what)
            ),
        ),
        EventKind::Approve => (
            paint(GREEN, "APPROVE"),
            format!("{} for {env}", paint(BOLD, &what)),
        ),
        EventKind::Reject => (
            paint(RED, "REJECT"),
            format!(
                "{}{}",
                paint(BOLD, &what),
                r.env
                    .as_deref()
                    .map(|e| format!(" for {e}"))
                    .unwrap_or_default()
            ),
        ),
        EventKind::BundleCreate => (paint(DIM, "CREATE"), paint(BOLD, &what)),
        EventKind::EnvCreate => (paint(DIM, "ENV"), format!("create {env}")),
        EventKind::EnvPolicy => (paint(DIM, "ENV"), format!("policy of {env}")),
        EventKind::EvalRun => (
            paint(DIM, "EVAL"),
            format!(
                "{} {}",
                paint(BOLD, &what),
                r.state.as_deref().unwrap_or("")
            ),
        ),
    };
    let simulated = if r.simulated_clock {
        paint(DIM, " [simulated clock]")
    } else {
        String::new()
    };
    let imported = if r.imported {
        paint(DIM, " [imported]")
    } else {
        String::new()
    };
    format!(
        "#{:<5} {:<10} {} by {} at {}{imported}{simulated}",
        r.seq,
        label,
        detail,
        releaseops_format::names::escape_for_display(&r.actor),
        paint(DIM, &output::when(&r.at))
    )
}
