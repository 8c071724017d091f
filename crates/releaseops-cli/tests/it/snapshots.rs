//! The text output of the main commands, snapshotted: a change of wording
//! or layout is a reviewed diff in `tests/it/snapshots/`, not a surprise.
//! Paths, times and git hashes are redacted; the clock is fixed.

use crate::common::{ECHO_SUITE, Repo};

const NOW: &str = "2026-03-02T10:00:00Z";

/// One command as a user sees it: the command line, the exit code, stdout
/// and, if any, stderr.
fn shown(r: &Repo, args: &[&str]) -> String {
    let o = r.run_at(NOW, args);
    let mut text = format!(
        "$ releaseops {}\nexit {}\n{}",
        args.join(" "),
        o.code,
        o.stdout
    );
    // Every command here rehearses on a fixed clock and says so; that line
    // is pinned by the trust tests, not repeated for each command here.
    let stderr: String = o
        .stderr
        .lines()
        .filter(|l| !l.starts_with("warning: RELEASEOPS_NOW is set"))
        .map(|l| format!("{l}\n"))
        .collect();
    if !stderr.is_empty() {
        text.push_str("--- stderr\n");
        text.push_str(&stderr);
    }
    text
}

fn settings(r: &Repo) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_snapshot_path("snapshots");
    let root = r.path().display().to_string();
    s.add_filter(&regex::escape(&root), "[REPO]");
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}| UTC)?",
        "[TIME]",
    );
    s.add_filter(r"git commit [0-9a-f]{7,40}", "git commit [COMMIT]");
    s.add_filter(r"\b\d+ ms\b", "[N] ms");
    s.add_filter(r"(\d{8}T\d{6})-[0-9a-f]+", "$1-[RUN]");
    s
}

fn released() -> Repo {
    let r = Repo::initialized();
    for (version, prompt, temperature) in [("1.0.0", "v1.0.0", "0.2"), ("1.1.0", "v1.1.0", "0.3")] {
        let o = r.run_at(
            NOW,
            &[
                "bundle",
                "create",
                "support-agent",
                "-v",
                version,
                "-a",
                &format!("system=onboarding:{prompt}"),
                "--policy",
                "tools=policies/tools.yaml",
                "--policy",
                "safety=policies/safety.yaml",
                "-m",
                "claude-sonnet-4-5",
                "--provider",
                "anthropic",
                "-t",
                temperature,
            ],
        );
        o.ok();
    }
    r.write(".releaseops/evals/smoke.yaml", ECHO_SUITE);
    r.commit_all("suite");
    r
}

#[test]
fn the_main_commands_read_as_they_did() {
    let r = released();
    let _guard = settings(&r).bind_to_scope();
    let mut session = Vec::new();
    for args in [
        &["bundle", "list"][..],
        &["bundle", "inspect", "support-agent@1.1.0"],
        &[
            "bundle",
            "diff",
            "support-agent@1.0.0",
            "support-agent@1.1.0",
        ],
        &["promote", "support-agent", "1.0.0", "dev"],
        &["promote", "support-agent", "1.0.0", "dev"],
        &["promote", "support-agent", "1.1.0", "prod", "--dry-run"],
        &[
            "eval",
            "run",
            "smoke",
            "--bundle",
            "support-agent",
            "--version",
            "1.0.0",
        ],
        &["env", "list"],
        &["status"],
        &["rollback", "prod", "support-agent"],
        &["promote", "support-agent", "1.1.0", "dev"],
        &["rollback", "dev", "support-agent"],
        &["rollback", "support-agent", "dev"],
        &["history", "--limit", "5"],
        &["history", "verify"],
    ] {
        session.push(shown(&r, args));
    }
    insta::assert_snapshot!("main_commands", session.join("\n"));
}
