//! `releaseops status [--watch]`: one screen with what runs where and what
//! waits for each stage, and on what.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use releaseops_core::status::{self, Status};
use releaseops_format::history::GateStatus;

use crate::app::{App, CmdResult, Failure};
use crate::cli::StatusArgs;
use crate::output::{self, BOLD, DIM, GREEN, RED, YELLOW, paint};

/// While watching, redraw at least this often: soak and freeze gates count
/// down with no change to the store.
const REDRAW_EVERY: Duration = Duration::from_secs(30);

pub(super) fn run(app: &App, a: StatusArgs) -> CmdResult {
    if !(a.interval.is_finite() && (0.05..=3600.0).contains(&a.interval)) {
        return Err(Failure::usage(
            format!(
                "--interval {} is not a usable number of seconds",
                a.interval
            ),
            "give between 0.05 and 3600, e.g. --interval 1",
        ));
    }
    let store = app.store()?;
    if !a.watch {
        let s = status::status(&app.ctx(&store))?;
        // With sync on: how this clone stands against the team's remote
        // (fetched, unless --offline).
        let sync = match store.sync_status(!app.global.offline) {
            Ok(s) => s,
            // The remote out of reach: where the clone stood at the last fetch.
            Err(e) => {
                output::warn(&format!(
                    "the team's remote could not be asked: {}",
                    Failure::from(e).message
                ));
                store.sync_status(false)?
            }
        };
        if app.global.json {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            if let (Some(sync), Some(obj)) = (&sync, v.as_object_mut()) {
                obj.insert(
                    "sync".into(),
                    serde_json::to_value(sync).unwrap_or_default(),
                );
            }
            output::print_json(&v);
        } else {
            anstream::print!("{}", render(&s));
            if let Some(sync) = &sync {
                anstream::println!("\n{}", super::sync::line(sync));
            }
        }
        return Ok(0);
    }
    if app.simulated_clock {
        return Err(Failure::usage(
            "--watch follows the real clock, and RELEASEOPS_NOW holds it still",
            "unset RELEASEOPS_NOW to watch",
        ));
    }
    let tty = std::io::stdout().is_terminal();
    let interval = Duration::from_secs_f64(a.interval);
    let mut shown: Option<u64> = None;
    let mut drawn = Instant::now();
    loop {
        let tip = store.history().tip().map(|t| t.seq).ok();
        if tip != shown || drawn.elapsed() >= REDRAW_EVERY {
            let ctx = app.ctx_now(&store);
            let text = match status::status(&ctx) {
                Ok(s) if app.global.json => serde_json::to_string(&s).unwrap_or_default() + "\n",
                Ok(s) => render(&s),
                Err(e) => {
                    let f = Failure::from(e);
                    output::warn(&format!("cannot read the store: {}", f.message));
                    std::thread::sleep(interval);
                    continue;
                }
            };
            let mut out = anstream::stdout().lock();
            if tty && !app.global.json {
                // Clear the screen and go home, then draw.
                let _ = write!(out, "\x1b[2J\x1b[H");
            }
            let _ = out.write_all(text.as_bytes());
            if !tty && !app.global.json {
                let _ = writeln!(out, "{}", paint(DIM, "--"));
            }
            if out.flush().is_err() {
                // Whoever read it went away.
                return Ok(0);
            }
            shown = tip;
            drawn = Instant::now();
        }
        std::thread::sleep(interval);
    }
}

/// The screen: per stage, what runs there and what waits for it.
pub(super) fn render(s: &Status) -> String {
    let mut out = String::new();
    if s.environments.is_empty() {
        out.push_str("No environments. `releaseops init` makes dev -> staging -> prod.\n");
        return out;
    }
    for st in &s.environments {
        let title = match (st.stage, &st.upstream) {
            (Some(i), Some(up)) => format!("{} (stage {}, after {up})", st.env, i + 1),
            (Some(i), None) => format!("{} (stage {})", st.env, i + 1),
            (None, _) => format!("{} (not in the pipeline)", st.env),
        };
        out.push_str(&format!("{}\n", paint(BOLD, &title)));
        if st.live.is_empty() {
            out.push_str(&format!("  {}\n", paint(DIM, "runs nothing yet")));
        }
        for d in &st.live {
            let since = d
                .since
                .as_deref()
                .map(|t| format!(" since {}", output::when(t)))
                .unwrap_or_default();
            out.push_str(&format!(
                "  runs    {} {}{}\n",
                d.bundle_id,
                paint(GREEN, &d.version),
                paint(DIM, &since)
            ));
        }
        for p in &st.problems {
            out.push_str(&format!("  {} {p}\n", paint(RED.bold(), "PROBLEM")));
        }
        for w in &st.waiting {
            let from = w
                .from_env
                .as_deref()
                .map(|e| format!(" (live in {e})"))
                .unwrap_or_else(|| " (new)".into());
            let word = if w.ready {
                paint(GREEN.bold(), "ready")
            } else {
                paint(YELLOW.bold(), "waiting")
            };
            out.push_str(&format!(
                "  {word} {} {}{}\n",
                w.bundle_id,
                w.version,
                paint(DIM, &from)
            ));
            if let Some(e) = &w.error {
                out.push_str(&format!("          {} {e}\n", paint(RED, "cannot tell:")));
            }
            for g in &w.gates {
                let mark = match g.status {
                    GateStatus::Passed => paint(GREEN, "ok"),
                    GateStatus::Pending => paint(YELLOW, "pending"),
                    _ => paint(RED, "failed"),
                };
                out.push_str(&format!("          {:<9} {mark} {}\n", g.gate, g.reason));
            }
            if let Some(a) = &w.agent {
                out.push_str(&format!("          the agent says {}\n", paint(BOLD, a)));
            }
        }
    }
    out
}
