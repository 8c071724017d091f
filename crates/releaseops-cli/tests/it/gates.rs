//! Every gate passing, failing and pending, through the real binary, with the
//! clock set by RELEASEOPS_NOW.

use crate::common::Repo;
use serde_json::Value;

const T0: &str = "2026-11-16T09:00:00Z"; // a Monday

fn at(hours: f64) -> String {
    let t0: jiff::Timestamp = T0.parse().expect("ts");
    let t = t0
        .checked_add(jiff::SignedDuration::from_secs_f64(hours * 3600.0))
        .expect("ts");
    t.to_string()
}

fn gate(j: &Value, name: &str) -> Value {
    j["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["gate"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A repo with bundle b@1.0.0 live in dev and staging (staging at T0), and
/// `prod.yaml` carrying `policy`.
fn setup(policy: &str, teams: &str) -> Repo {
    let r = Repo::initialized();
    if !teams.is_empty() {
        let cfg = r.read(".releaseops/config.yaml");
        r.write(".releaseops/config.yaml", &format!("{cfg}teams:\n{teams}"));
    }
    r.write(
        ".releaseops/environments/prod.yaml",
        &format!("environment: prod\nbundle_mappings: {{}}\npromotion_policy:\n{policy}"),
    );
    r.commit_all("policy");
    r.run_as_at(
        "Carol <carol@x>",
        &at(-2.0),
        &[
            "bundle",
            "create",
            "b",
            "-v",
            "1.0.0",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
    )
    .ok();
    r.run_at(&at(-1.0), &["promote", "b", "1.0.0", "dev"]).ok();
    r.run_at(T0, &["promote", "b", "1.0.0", "staging"]).ok();
    r
}

fn prod(r: &Repo, hours: f64) -> (i32, Value) {
    let o = r.run_at(&at(hours), &["--json", "promote", "b", "1.0.0", "prod"]);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    (o.code, o.json())
}

#[test]
fn pipeline_gate_blocks_skipping_a_stage_even_with_skip_gates() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    let o = r.run(&["--json", "promote", "b", "1.0.0", "staging"]);
    o.code(3);
    let j = o.json();
    assert_eq!(gate(&j, "pipeline")["status"], "failed");
    assert!(
        gate(&j, "pipeline")["reason"]
            .as_str()
            .unwrap_or("")
            .contains("not live in 'dev'")
    );
    let o = r.run(&[
        "promote",
        "b",
        "1.0.0",
        "prod",
        "--skip-gates",
        "--reason",
        "yolo",
    ]);
    o.code(3);
    assert!(!r.read(".releaseops/environments/prod.yaml").contains("b:"));
    // The existing tool's syntax still works.
    r.run(&["promote", "promote", "b", "1.0.0", "dev"]).ok();
}

#[test]
fn rejected_gate_fails_and_cannot_be_overridden() {
    let r = setup("  requires_eval: false\n", "");
    r.run(&["reject", "b", "1.0.0", "--reason", "leaks PII"])
        .ok();
    let (code, j) = prod(&r, 1.0);
    assert_eq!(code, 3);
    assert_eq!(gate(&j, "rejected")["status"], "failed");
    assert!(
        gate(&j, "rejected")["reason"]
            .as_str()
            .unwrap_or("")
            .contains("leaks PII")
    );
    r.run_at(
        &at(1.0),
        &["promote", "b", "1.0.0", "prod", "--skip-gates", "-r", "x"],
    )
    .code(3);
    // A per-environment rejection and the policy list work the same way.
    let r = setup("  rejected_versions:\n  - b@1.0.0\n", "");
    let (code, j) = prod(&r, 1.0);
    assert_eq!(
        (code, gate(&j, "rejected")["status"].clone()),
        (3, Value::from("failed"))
    );
}

#[test]
fn soak_gate_pending_until_the_time_then_passes() {
    let r = setup("  soak_hours: 24\n", "");
    let (code, j) = prod(&r, 2.0);
    assert_eq!(code, 3);
    let g = gate(&j, "soak");
    assert_eq!(g["status"], "pending");
    assert_eq!(g["passes_at"], "2026-11-17T09:00:00+00:00");
    assert!(
        g["reason"]
            .as_str()
            .unwrap_or("")
            .contains("2h 0m of the 1d 0h soak"),
        "{g}"
    );
    let (code, j) = prod(&r, 24.0);
    assert_eq!(code, 0, "{j}");
    assert_eq!(gate(&j, "soak")["status"], "passed");
}

#[test]
fn soak_gate_fails_when_not_live_upstream() {
    let r = setup("  soak_hours: 1\n", "");
    r.run_at(
        &at(0.5),
        &[
            "bundle",
            "create",
            "b",
            "-v",
            "1.1.0",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
    )
    .ok();
    r.run_at(&at(0.6), &["promote", "b", "1.1.0", "dev"]).ok();
    r.run_at(&at(0.7), &["promote", "b", "1.1.0", "staging"])
        .ok();
    // 1.0.0 is no longer live in staging.
    let (code, j) = prod(&r, 5.0);
    assert_eq!(code, 3);
    assert_eq!(gate(&j, "soak")["status"], "failed");
    assert_eq!(gate(&j, "pipeline")["status"], "failed");
}

#[test]
fn approval_gate_pending_then_passed_with_no_self_approval_and_eligibility() {
    let r = setup(
        "  requires_approval: true\n  approval_teams:\n  - safety\n  min_approvals: 2\n",
        "  safety:\n  - alice@x\n  - bob@x\n  - carol@x\n",
    );
    let (code, j) = prod(&r, 1.0);
    assert_eq!(code, 3);
    assert_eq!(gate(&j, "approval")["status"], "pending");
    assert!(
        gate(&j, "approval")["reason"]
            .as_str()
            .unwrap_or("")
            .contains("needs 2 more approval(s) from team safety")
    );
    // Carol created the bundle: no self-approval.
    let o = r.run_as("Carol <carol@x>", &["approve", "b", "1.0.0", "prod"]);
    o.code(1);
    assert!(o.stderr.contains("no self-approval"), "{}", o.stderr);
    // Mallory is not in the team.
    let o = r.run_as("Mallory <m@x>", &["approve", "b", "1.0.0", "prod"]);
    o.code(1);
    assert!(o.stderr.contains("may not approve"), "{}", o.stderr);
    r.run_as(
        "Alice <alice@x>",
        &["approve", "b", "1.0.0", "prod", "-c", "lgtm"],
    )
    .ok();
    r.run_as("Alice <alice@x>", &["approve", "b", "1.0.0", "prod"])
        .code(1);
    let (_, j) = prod(&r, 1.0);
    assert!(
        gate(&j, "approval")["reason"]
            .as_str()
            .unwrap_or("")
            .contains("have 1 of 2")
    );
    r.run_as("Bob <bob@x>", &["approve", "b", "1.0.0", "prod"])
        .ok();
    let (code, j) = prod(&r, 1.0);
    assert_eq!(code, 0, "{j}");
    assert_eq!(gate(&j, "approval")["status"], "passed");
}

#[test]
fn approval_gate_fails_when_no_one_can_approve() {
    let r = setup(
        "  requires_approval: true\n  approval_teams:\n  - ghosts\n",
        "",
    );
    let (code, j) = prod(&r, 1.0);
    assert_eq!(code, 3);
    assert_eq!(gate(&j, "approval")["status"], "failed");
}

#[test]
fn freeze_gate_pending_in_window_passes_outside_and_fails_closed_on_bad_zone() {
    // Each listed day's window runs from start to end, crossing midnight.
    let policy = "  freeze_windows:\n  - name: friday-evening\n    timezone: America/New_York\n    days: [fri]\n    start: '17:00'\n    end: '09:00'\n";
    let r = setup(policy, "");
    // Friday 2026-11-20 18:00 New York = 23:00 UTC (T0 + 4d 14h).
    let (code, j) = prod(&r, 4.0 * 24.0 + 14.0);
    assert_eq!(code, 3);
    let g = gate(&j, "freeze");
    assert_eq!(g["status"], "pending", "{g}");
    // Saturday 09:00 New York = 14:00 UTC.
    assert_eq!(g["passes_at"], "2026-11-21T14:00:00+00:00", "{g}");
    // Thursday noon UTC: open.
    let (code, j) = prod(&r, 3.0 * 24.0 + 3.0);
    assert_eq!(code, 0, "{j}");
    let bad = setup(
        "  freeze_windows:\n  - timezone: Atlantis/Capital\n    dates: ['2026-12-24']\n",
        "",
    );
    let (code, j) = prod(&bad, 1.0);
    assert_eq!(
        (code, gate(&j, "freeze")["status"].clone()),
        (3, Value::from("failed"))
    );
}

#[test]
fn freeze_windows_chain_into_one_pending_period() {
    // Friday evening, then whole Saturday and Sunday: frozen until Monday 00:00.
    let policy = "  freeze_windows:\n  - timezone: America/New_York\n    days: [fri]\n    start: '17:00'\n    end: '24:00'\n  - timezone: America/New_York\n    days: [sat, sun]\n";
    let r = setup(policy, "");
    let (code, j) = prod(&r, 4.0 * 24.0 + 14.0);
    assert_eq!(code, 3);
    // Monday 2026-11-23 00:00 New York = 05:00 UTC.
    assert_eq!(
        gate(&j, "freeze")["passes_at"],
        "2026-11-23T05:00:00+00:00",
        "{j}"
    );
}

#[test]
fn eval_gate_needs_a_passing_report_for_the_exact_bundle_hash() {
    let r = setup("  requires_eval: true\n", "");
    let (code, j) = prod(&r, 1.0);
    assert_eq!(
        (code, gate(&j, "eval")["status"].clone()),
        (3, Value::from("pending"))
    );
    // A suite whose agent echoes the case back.
    r.write(".releaseops/evals/smoke.yaml", crate::common::ECHO_SUITE);
    r.commit_all("suite");
    r.run_at(
        &at(0.5),
        &[
            "eval",
            "run",
            "smoke",
            "--bundle",
            "b",
            "--version",
            "1.0.0",
        ],
    )
    .ok();
    let (code, j) = prod(&r, 1.0);
    assert_eq!(code, 0, "{j}");
    assert_eq!(gate(&j, "eval")["status"], "passed");
}

#[test]
fn eval_reports_the_history_does_not_hold_never_count() {
    let r = setup("  requires_eval: true\n", "");
    let hash = r.run(&["--json", "bundle", "inspect", "b"]).json()["bundle_hash"]
        .as_str()
        .expect("hash")
        .to_string();
    // A PASS report written by hand, named and keyed for this exact hash, in
    // both the existing tool's layout and ours: not evidence.
    let report = format!(
        "bundle_id: b\nbundle_version: 1.0.0\nsuite_id: smoke\ntimestamp: '2026-11-16T10:00:00+00:00'\nsummary:\n  total_cases: 1\n  passed: 1\n  failed: 0\n  pass_rate: 1.0\n  gate_decision: PASS\nresults: []\nbundle_hash: {hash}\n"
    );
    r.write(&format!(".releaseops/eval_reports/{hash}.yaml"), &report);
    r.write(
        ".releaseops/eval_reports/b/1.0.0/smoke/20261116T100000-0001.yaml",
        &report,
    );
    let (code, j) = prod(&r, 1.0);
    assert_eq!(
        (code, gate(&j, "eval")["status"].clone()),
        (3, Value::from("pending")),
        "{j}"
    );
    let v = r.run(&["--json", "history", "verify"]);
    v.code(4);
    assert!(
        v.stdout
            .contains("smoke/20261116T100000-0001.yaml is not in the history"),
        "{}",
        v.stdout
    );
}

#[test]
fn skip_gates_needs_a_reason_and_is_recorded_as_an_override() {
    let r = setup("  requires_approval: true\n  soak_hours: 24\n", "");
    let o = r.run_at(&at(1.0), &["promote", "b", "1.0.0", "prod", "--skip-gates"]);
    o.code(2);
    assert!(o.stderr.contains("--skip-gates needs --reason"));
    let dry = r.run_at(&at(1.0), &["promote", "b", "1.0.0", "prod", "--dry-run"]);
    dry.code(3);
    r.run_at(
        &at(1.0),
        &[
            "promote",
            "b",
            "1.0.0",
            "prod",
            "--skip-gates",
            "--reason",
            "sev1 hotfix",
        ],
    )
    .ok();
    let h = r
        .run(&["--json", "history", "--env", "prod", "-n", "1"])
        .json();
    assert_eq!(h[0]["override"], true);
    assert_eq!(h[0]["reason"], "sev1 hotfix");
    let statuses: Vec<&str> = h[0]["gates"]
        .as_array()
        .expect("a")
        .iter()
        .map(|g| g["status"].as_str().unwrap_or(""))
        .collect();
    assert!(
        statuses.contains(&"pending"),
        "the bypassed gates are recorded: {statuses:?}"
    );
    assert!(
        r.run(&["history", "--env", "prod"])
            .ok()
            .contains("OVERRIDE")
    );
}
