//! `releaseops sync [--enable REMOTE [--branch B]]`: this clone and the
//! team's git remote, brought level.

use releaseops_format::config::SyncConfig;
use releaseops_store::{Standing, SyncStatus};

use crate::app::{App, CmdResult, Failure};
use crate::cli::SyncArgs;
use crate::output::{self, BOLD, GREEN, YELLOW, paint};

pub(super) fn run(app: &App, a: SyncArgs) -> CmdResult {
    if app.global.offline {
        return Err(Failure::usage(
            "`releaseops sync` talks to the remote, and --offline says not to",
            "drop --offline",
        ));
    }
    let store = app.store()?;
    let report = match a.enable {
        Some(remote) => {
            let mut cfg = SyncConfig::new(&remote);
            if let Some(b) = a.branch {
                cfg.branch = b;
            }
            releaseops_core::sync::SyncReport {
                status: store.enable_sync(&cfg, app.ctx(&store).author().as_ref())?,
                reapplied: Vec::new(),
                kept_in: None,
                unfinished: Vec::new(),
            }
        }
        None => releaseops_core::sync::sync(&app.ctx(&store))?,
    };
    let refused = report.reapplied.iter().filter(|r| !r.landed).count();
    if !output::json(app, &report) {
        for r in &report.reapplied {
            match &r.why {
                None => anstream::println!("{} {}", paint(GREEN, "made again"), r.change),
                Some(why) => {
                    anstream::println!("{} {}: {why}", paint(YELLOW, "not made"), r.change)
                }
            }
        }
        anstream::println!("{}", line(&report.status));
        if let Some(kept) = &report.kept_in {
            anstream::println!("the offline changes are kept in {kept}");
        }
        for file in &report.unfinished {
            output::warn(&format!(
                "{file} holds offline changes an earlier `releaseops sync` set aside (some were not made again, or it was stopped): check `releaseops history` for each, make again what is missing, then delete the file"
            ));
        }
    }
    // Offline changes the remote's state refused: as a blocked promotion.
    Ok(if refused > 0 { super::EXIT_BLOCKED } else { 0 })
}

/// One line: where the clone stands, and what this run did.
pub(crate) fn line(s: &SyncStatus) -> String {
    let state = match s.standing {
        Standing::InSync => paint(GREEN, s.standing.as_str()),
        _ => paint(YELLOW, s.standing.as_str()),
    };
    let mut out = format!(
        "{} {}/{}: {state}, {} record(s)",
        paint(BOLD, "sync"),
        s.remote,
        s.branch,
        s.local_records
    );
    if let Some(c) = &s.remote_commit {
        out.push_str(&format!(" at {}", &c[..c.len().min(12)]));
    }
    if let Some(n) = s.fetched_records.filter(|n| *n > 0) {
        out.push_str(&format!("; {n} new from the remote"));
    }
    if s.pushed {
        out.push_str("; pushed this clone's changes");
    }
    if let Some(r) = s.remote_records
        && r > s.local_records
    {
        out.push_str(&format!(
            "; the remote has {} more (run `releaseops sync`)",
            r - s.local_records
        ));
    }
    if !s.unpushed_paths.is_empty() {
        out.push_str(&format!(
            "; {} unpushed file(s) from {} record(s) made offline",
            s.unpushed_paths.len(),
            s.unpushed_records
        ));
    }
    out
}
