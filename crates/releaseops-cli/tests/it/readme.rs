//! The README's quick start, run verbatim in a fresh repository: if a line
//! of it stops working, this fails.

use std::process::Command;
use std::time::Duration;

use crate::common::{Repo, Run, bin, output_within, workspace};

/// The first ```sh block after `heading` in the README.
fn block_after(heading: &str) -> String {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let at = readme.find(heading).expect("the README has the heading");
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a sh block follows") + "```sh\n".len();
    let len = rest[start..].find("```").expect("the block ends");
    rest[start..start + len].to_string()
}

/// Runs a README block with bash (`-e -o pipefail`) in `r`, the binary
/// first on the PATH, as a new user would, within `secs` seconds.
fn run_block(r: &Repo, script: &str, secs: u64) -> Run {
    let dir = bin().parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    crate::common::isolated(&mut cmd)
        .current_dir(r.path())
        .args(["-e", "-o", "pipefail", "-c", script])
        .env("PATH", path)
        .env_remove("RELEASEOPS_ACTOR");
    Run::from(output_within(&mut cmd, Duration::from_secs(secs)))
}

#[test]
fn the_quick_start_runs_as_written() {
    let script = block_after("## Quick start in your repository");
    assert!(
        script.contains("releaseops init --template gated"),
        "{script}"
    );
    let r = Repo::new();
    let run = run_block(&r, &script, 300);
    let out = run.ok();
    for want in [
        "Created bundle: support-agent v1.0.0",
        "waiting support-agent 1.0.0 (live in staging)",
        "Result: PASS",
        "Approved support-agent v1.0.0 for prod by Sam Reviewer <sam@example.com>",
        "blocked (exit 3): the soak is not over",
        "Promoted support-agent v1.0.0 -> prod",
        "up to 500 dollars",
        "Result: FAIL",
        "FAIL (exit 5)",
        "Rolled back support-agent in dev: 1.1.0 -> 1.0.0",
        "OK",
    ] {
        assert!(
            out.contains(want),
            "missing {want:?} in:\n{out}\n{}",
            run.stderr
        );
    }
    // Git saw every change, made by the repository's own identity.
    let log = r.git(&["log", "--format=%an"]);
    assert!(log.lines().count() >= 10, "{log}");

    // Production sight, in the repository the quick start left.
    let script = block_after("## Production sight");
    let run = run_block(&r, &script, 120);
    let out = run.ok();
    for want in [
        "imported traces.jsonl: 1200 traces, 1200 spans",
        "support-agent  1.1.0    staging",
        "Metrics for support-agent@1.1.0 in staging",
        "Verdict:   regression",
        "error_rate",
    ] {
        assert!(
            out.contains(want),
            "missing {want:?} in:\n{out}\n{}",
            run.stderr
        );
    }
    // The store stays out of git.
    assert!(!r.git(&["status", "--porcelain"]).contains(".data"));
}

#[test]
fn the_team_sync_section_runs_as_written() {
    let script = block_after("## Team sync through a git remote");
    let r = Repo::new();
    let run = run_block(&r, &script, 300);
    let out = run.ok();
    for want in [
        "sync origin/releaseops-state: in sync",
        "Promoted support-agent v1.0.0 -> staging",
        "live in 'dev'",
        "OK: 3 records",
    ] {
        assert!(
            out.contains(want),
            "missing {want:?} in:\n{out}\n{}",
            run.stderr
        );
    }
}
