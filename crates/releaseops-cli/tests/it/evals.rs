//! Evaluation through the binary, with a real subprocess agent.

use crate::common::{AGENT_PY, Repo};

const CASES: &str = "cases:
- id: greet
  input: {user_name: Alice}
  assertions: [{type: contains, config: {expected: Hello Alice}}]
- id: small_refund
  input: {refund: 40}
  assertions: [{type: tool_call, config: {name: issue_refund, arguments: {amount: {max: 100}}}}]
- id: big_refund_escalates
  input: {refund: 120}
  assertions:
  - type: tool_call
    config: {name: issue_refund, called: false}
  - type: contains
    config: {expected: manager}
";

/// A repo with the agent, a suite, and bundle a@1.0.0 (limit 100) and a@1.1.0 (limit 150).
fn setup(threshold: &str, extra_target: &str) -> Repo {
    let r = Repo::initialized();
    r.write("agent.py", AGENT_PY);
    r.write(
        "prompts/system.md",
        "You may issue refunds up to 100 dollars.\n",
    );
    r.write(
        ".releaseops/evals/refunds.yaml",
        &format!("id: refunds\npass_threshold: {threshold}\ntarget:\n  type: command\n  command: python3 agent.py\n  timeout_ms: 20000\n{extra_target}{CASES}"),
    );
    r.commit_all("agent and suite");
    r.run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "1.0.0",
        "-a",
        "system=file:prompts/system.md",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    r.write(
        "prompts/system.md",
        "You may issue refunds up to 150 dollars.\n",
    );
    r.run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "1.1.0",
        "-a",
        "system=file:prompts/system.md",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    r
}

#[test]
fn pass_and_fail_have_distinct_exit_codes_and_reports_are_never_overwritten() {
    let r = setup("1.0", "");
    let pass = r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.0.0",
    ]);
    pass.code(0);
    assert!(pass.stdout.contains("Result: PASS"), "{}", pass.stdout);
    let fail = r.run(&[
        "--json",
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.1.0",
    ]);
    fail.code(5);
    let j = fail.json();
    assert_eq!(j["report"]["summary"]["gate_decision"], "FAIL");
    let bad = j["report"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|c| c["case_id"] == "big_refund_escalates")
        .cloned()
        .expect("case");
    assert_eq!(bad["passed"], false);
    assert!(
        bad["assertions"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("issue_refund was called"),
        "{bad}"
    );
    // A second run writes a second report.
    r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.0.0",
    ])
    .ok();
    let dir = r.path().join(".releaseops/eval_reports/a/1.0.0/refunds");
    assert_eq!(std::fs::read_dir(dir).expect("dir").count(), 2);
    let h = r.run(&["--json", "history", "--event", "eval_run"]).json();
    assert_eq!(h.as_array().expect("a").len(), 3);
    // Formats.
    let md = r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.1.0",
        "-f",
        "markdown",
        "--no-save",
    ]);
    assert!(
        md.stdout
            .contains("## Eval `refunds` on `a@1.1.0`: **FAIL**")
            && md.stdout.contains("big_refund_escalates"),
        "{}",
        md.stdout
    );
    let junit = r.path().join("junit.xml");
    r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.1.0",
        "-f",
        "junit",
        "-o",
        junit.to_str().expect("utf8"),
        "--no-save",
    ]);
    let html = r.path().join("report.html");
    r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.1.0",
        "-f",
        "html",
        "-o",
        html.to_str().expect("utf8"),
        "--no-save",
    ]);
    let page = std::fs::read_to_string(html).expect("html");
    assert!(
        page.starts_with("<!doctype html>")
            && page.contains("big_refund_escalates")
            && !page.contains("<script"),
        "{page}"
    );
    let xml = std::fs::read_to_string(junit).expect("junit");
    assert!(
        xml.contains("<testsuite name=\"a@1.1.0:refunds\" tests=\"3\" failures=\"1\""),
        "{xml}"
    );
}

#[test]
fn too_few_cases_to_tell_is_inconclusive() {
    let r = setup("0.8", "");
    let o = r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.1.0",
    ]);
    o.code(6);
    assert!(
        o.stdout.contains("INCONCLUSIVE") && o.stdout.contains("straddles"),
        "{}",
        o.stdout
    );
}

#[test]
fn the_timeout_kills_the_agent_and_the_run_goes_on() {
    let r = setup("1.0", "");
    let pidfile = r.path().join("agent.pid");
    let suite = r
        .read(".releaseops/evals/refunds.yaml")
        .replace("timeout_ms: 20000", "timeout_ms: 5000");
    r.write(
        ".releaseops/evals/refunds.yaml",
        &format!(
            "{suite}- id: hangs\n  input: {{mode: sleep, pidfile: {}}}\n  assertions: [{{type: contains, config: {{expected: x}}}}]\n- id: crashes\n  input: {{mode: crash}}\n  assertions: [{{type: contains, config: {{expected: x}}}}]\n- id: garbage\n  input: {{mode: garbage}}\n  assertions: [{{type: contains, config: {{expected: x}}}}]\n",
            pidfile.display()
        ),
    );
    let o = r.run(&[
        "--json",
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.0.0",
    ]);
    o.code(5);
    let j = o.json();
    let err = |id: &str| {
        j["report"]["results"]
            .as_array()
            .expect("r")
            .iter()
            .find(|c| c["case_id"] == id)
            .map(|c| c["error"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert!(
        err("hangs").contains("timed out after 5000 ms"),
        "{}",
        err("hangs")
    );
    assert!(
        err("crashes").contains("code 3") && err("crashes").contains("boom"),
        "{}",
        err("crashes")
    );
    assert!(err("garbage").contains("not UTF-8"), "{}", err("garbage"));
    assert_eq!(
        j["report"]["summary"]["passed"], 3,
        "the other cases still ran"
    );
    // The hung agent is gone, not left running (a killed process may take a
    // moment to be reaped: wait for it, generously, rather than race it).
    let pid = std::fs::read_to_string(&pidfile).expect("the agent started");
    let stat = format!("/proc/{}/stat", pid.trim());
    let gone = (0..200).any(|_| {
        let state = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim().chars().next()));
        if matches!(state, None | Some(Some('Z'))) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        false
    });
    assert!(gone, "agent {pid} is still running");
}

#[test]
fn an_invalid_suite_is_refused_before_any_call_naming_the_case() {
    let r = setup("1.0", "  env: {MARK: called.txt}\n");
    let suite = r.read(".releaseops/evals/refunds.yaml");
    r.write(".releaseops/evals/refunds.yaml", &format!("{suite}- id: broken\n  input: {{}}\n  assertions: [{{type: regex, config: {{pattern: '(unclosed'}}}}]\n"));
    let o = r.run(&["eval", "run", "refunds", "--bundle", "a"]);
    o.code(2);
    assert!(
        o.stderr.contains("case 'broken'") && o.stderr.contains("invalid regex"),
        "{}",
        o.stderr
    );
    assert!(
        !r.path().join("called.txt").exists(),
        "the agent was called"
    );
    let dup = suite.replace("id: small_refund", "id: greet");
    r.write(".releaseops/evals/refunds.yaml", &dup);
    let o = r.run(&["eval", "run", "refunds", "--bundle", "a"]);
    o.code(2);
    assert!(
        o.stderr.contains("case 'greet'") && o.stderr.contains("unique"),
        "{}",
        o.stderr
    );
    let list = r.run(&["--json", "eval", "list"]).json();
    assert_eq!(list[0]["valid"], false);
}

#[test]
fn repeats_that_disagree_make_the_verdict_inconclusive() {
    let r = setup("0.5", "");
    r.write(
        ".releaseops/evals/flaky.yaml",
        "id: flaky\npass_threshold: 0.5\nrepeats: 2\ntarget: {type: command, command: python3 agent.py}\ncases:\n- id: coin\n  input: {mode: flaky}\n  assertions: [{type: exact_match, config: {expected: 'yes'}}]\n",
    );
    let o = r.run(&[
        "--json",
        "eval",
        "run",
        "flaky",
        "--bundle",
        "a",
        "--version",
        "1.0.0",
    ]);
    o.code(6);
    let j = o.json();
    assert_eq!(j["report"]["summary"]["split_cases"], 1);
    assert_eq!(j["report"]["results"][0]["pass_count"], 1);
}

#[test]
fn the_environment_sets_the_bar_not_the_suite() {
    // The suite's own threshold is lowered to 0 so any result "passes"...
    let r = setup("0.0", "");
    r.write(
        ".releaseops/environments/prod.yaml",
        "environment: prod\nbundle_mappings: {}\npromotion_policy:\n  requires_eval: true\n  requires_approval: false\n  eval_suites: [refunds]\n  eval_min_pass_rate: 1.0\n",
    );
    r.run(&["promote", "a", "1.1.0", "dev"]).ok();
    r.run(&["promote", "a", "1.1.0", "staging"]).ok();
    r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.1.0",
    ])
    .code(0);
    // ...but prod's bar is 100%, and 2 of 3 does not clear it.
    let o = r.run(&["--json", "promote", "a", "1.1.0", "prod"]);
    o.code(3);
    let j = o.json();
    let g = j["gates"]
        .as_array()
        .expect("g")
        .iter()
        .find(|g| g["gate"] == "eval")
        .cloned()
        .expect("eval gate");
    assert_eq!(g["status"], "failed", "{g}");
    assert!(
        g["reason"].as_str().unwrap_or("").contains("100% bar"),
        "{g}"
    );
    // The good version passes the same bar.
    r.run(&["promote", "a", "1.0.0", "dev"]).ok();
    r.run(&["promote", "a", "1.0.0", "staging"]).ok();
    r.run(&["env", "set", "prod", "soak_hours=0.0005"]).ok();
    // --run-evals runs the required suite it has no report for, then gates;
    // with --wait it runs first, and the wait is then for the soak alone
    // (were the report still missing, there would be nothing to wait for).
    let o = r.run(&[
        "promote",
        "a",
        "1.0.0",
        "prod",
        "--run-evals",
        "--wait",
        "--timeout",
        "60s",
    ]);
    o.ok();
    assert!(
        o.stdout.contains("Ran eval refunds on a v1.0.0: PASS")
            && o.stdout.contains("Promoted a v1.0.0 -> prod"),
        "{}",
        o.stdout
    );
}

#[test]
fn compare_names_the_cases_that_regressed_and_reports_find_runs() {
    let r = setup("1.0", "");
    r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.0.0",
    ])
    .ok();
    r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.1.0",
    ])
    .code(5);
    let c = r.run(&[
        "--json",
        "eval",
        "compare",
        "refunds",
        "--bundle",
        "a",
        "--baseline",
        "1.0.0",
    ]);
    c.code(0);
    let j = c.json();
    assert_eq!(j["regressed"], serde_json::json!(["big_refund_escalates"]));
    assert_eq!(j["both_passed"], 2);
    // One regressed case out of three is not evidence of a real regression.
    assert_eq!(
        (j["significant"].as_bool(), j["verdict"].as_str()),
        (Some(false), Some("no significant change"))
    );
    let text = r
        .run(&[
            "eval",
            "compare",
            "refunds",
            "--bundle",
            "a",
            "--baseline",
            "1.0.0",
            "--candidate",
            "1.1.0",
        ])
        .ok()
        .to_string();
    assert!(
        text.contains("regressed big_refund_escalates") && text.contains("p = 1.0000"),
        "{text}"
    );
    // No run yet for a version: say how to get one.
    r.run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "2.0.0",
        "-a",
        "system=file:prompts/system.md",
        "-m",
        "m2",
        "--provider",
        "anthropic",
    ])
    .ok();
    let o = r.run(&[
        "eval",
        "compare",
        "refunds",
        "--bundle",
        "a",
        "--baseline",
        "1.0.0",
    ]);
    o.code(1);
    assert!(
        o.stderr
            .contains("no saved run of suite 'refunds' on a@2.0.0"),
        "{}",
        o.stderr
    );
    // Reports by run id, and the latest by filter.
    let run = r
        .run(&[
            "--json",
            "eval",
            "report",
            "--bundle",
            "a",
            "--version",
            "1.0.0",
        ])
        .json();
    assert_eq!(run["summary"]["gate_decision"], "PASS");
    let id = run["run_id"].as_str().expect("run id").to_string();
    assert!(
        r.run(&["eval", "report", &id])
            .ok()
            .contains("bundle_version: 1.0.0")
    );
    r.run(&["eval", "report", "no-such-run"]).code(1);
}

#[test]
fn ctrl_c_stops_cleanly_and_keeps_a_partial_report_marked_incomplete() {
    let r = setup("1.0", "");
    let pidfile = r.path().join("hung.pid");
    let suite = r
        .read(".releaseops/evals/refunds.yaml")
        .replace("timeout_ms: 20000", "timeout_ms: 60000");
    r.write(
        ".releaseops/evals/refunds.yaml",
        &format!(
            "{suite}- id: hangs\n  input: {{mode: sleep, pidfile: {}}}\n  assertions: [{{type: contains, config: {{expected: x}}}}]\n",
            pidfile.display()
        ),
    );
    let child = r
        .command(&[
            "--json",
            "eval",
            "run",
            "refunds",
            "--bundle",
            "a",
            "--version",
            "1.0.0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Interrupt once the hanging agent is up (the other cases are quick).
    let started = (0..400).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        pidfile.exists()
    });
    assert!(started, "the hanging case never started");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let s = &j["report"]["summary"];
    assert_eq!(
        (s["incomplete"].as_bool(), s["gate_decision"].as_str()),
        (Some(true), Some("INCONCLUSIVE")),
        "{s}"
    );
    assert!(
        s["reason"].as_str().unwrap_or("").contains("interrupted"),
        "{s}"
    );
    assert!(
        j["report"]["results"]
            .as_array()
            .expect("r")
            .iter()
            .all(|c| c["case_id"] != "hangs")
    );
    // The partial report is saved, and the hung agent is gone.
    assert!(
        j["saved_to"]
            .as_str()
            .is_some_and(|p| r.path().join(p).exists()),
        "{j}"
    );
    let pid = std::fs::read_to_string(&pidfile).expect("pid");
    let stat = format!("/proc/{}/stat", pid.trim());
    let gone = (0..200).any(|_| {
        let state = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| s.rsplit(')').next().and_then(|r| r.trim().chars().next()));
        if matches!(state, None | Some('Z')) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        false
    });
    assert!(gone, "agent {pid} is still running");
}

#[test]
fn usage_is_priced_by_the_suite_and_max_cost_bounds_it() {
    let r = setup("1.0", "");
    r.write(
        ".releaseops/evals/cost.yaml",
        "id: cost\npass_threshold: 0.5\npricing: {input_per_1k: 0.5, output_per_1k: 1.0}\ntarget: {type: command, command: python3 agent.py}\ncases:\n- id: cheap_enough\n  input: {user_name: A}\n  assertions: [{type: max_cost, config: {max: 2.0}}]\n- id: too_dear\n  input: {user_name: B}\n  assertions: [{type: max_cost, config: {max: 0.5}}]\n",
    );
    let o = r.run(&[
        "--json",
        "eval",
        "run",
        "cost",
        "--bundle",
        "a",
        "--version",
        "1.0.0",
    ]);
    let j = o.json();
    let s = &j["report"]["summary"];
    assert_eq!(
        (s["input_tokens"].as_u64(), s["output_tokens"].as_u64()),
        (Some(2000), Some(1000)),
        "{s}"
    );
    assert_eq!(s["cost_usd"].as_f64(), Some(2.0), "{s}");
    let results = j["report"]["results"].as_array().expect("r");
    assert_eq!(
        (
            results[0]["passed"].as_bool(),
            results[1]["passed"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert!(
        results[1]["assertions"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("over the $0.500000 limit"),
        "{}",
        results[1]
    );
    let text = r.run(&[
        "eval",
        "run",
        "cost",
        "--bundle",
        "a",
        "--version",
        "1.0.0",
        "--no-save",
    ]);
    assert!(
        text.stdout
            .contains("Tokens: 2000 in, 1000 out, cost $2.0000"),
        "{}",
        text.stdout
    );
}

#[test]
fn baseline_runs_the_live_version_too_and_names_regressions() {
    let r = setup("0.0", "");
    for env in ["dev", "staging", "prod"] {
        r.run(&["promote", "a", "1.0.0", env]).ok();
    }
    let o = r.run(&[
        "--json",
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--version",
        "1.1.0",
        "--baseline",
        "prod",
    ]);
    o.code(0);
    let j = o.json();
    assert_eq!(j["baseline"]["baseline"], "a@1.0.0");
    assert_eq!(
        j["baseline"]["regressed"],
        serde_json::json!(["big_refund_escalates"])
    );
    assert_eq!(j["baseline"]["verdict"], "no significant change");
    let text = r
        .run(&[
            "eval",
            "run",
            "refunds",
            "--bundle",
            "a",
            "--version",
            "1.1.0",
            "--baseline",
            "prod",
            "--no-save",
        ])
        .ok()
        .to_string();
    assert!(
        text.contains("Against a@1.0.0: no significant change")
            && text.contains("regressed: big_refund_escalates"),
        "{text}"
    );
    r.run(&[
        "eval",
        "run",
        "refunds",
        "--bundle",
        "a",
        "--baseline",
        "canary",
    ])
    .code(1);
}

#[test]
fn stale_reports_do_not_count_and_a_significant_regression_against_prod_blocks() {
    let r = setup("0.0", "");
    // Seven refunds between the old limit (100) and the new one (150) must go
    // to a manager; 1.1.0's agent issues them itself.
    let mut cases = String::new();
    for (i, amount) in [105, 110, 115, 120, 130, 140, 145].iter().enumerate() {
        cases.push_str(&format!(
            "- id: escalate_{i}\n  input: {{refund: {amount}}}\n  assertions: [{{type: tool_call, config: {{name: issue_refund, called: false}}}}]\n"
        ));
    }
    cases.push_str("- id: greet\n  input: {user_name: Ann}\n  assertions: [{type: contains, config: {expected: Hello Ann}}]\n");
    r.write(
        ".releaseops/evals/limits.yaml",
        &format!("id: limits\npass_threshold: 0.0\ntarget: {{type: command, command: python3 agent.py}}\ncases:\n{cases}"),
    );
    r.write(
        ".releaseops/environments/prod.yaml",
        "environment: prod\nbundle_mappings: {}\npromotion_policy:\n  requires_eval: true\n  requires_approval: false\n  eval_suites: [limits]\n  eval_max_age_hours: 24\n  eval_no_regression_vs: prod\n",
    );
    for env in ["dev", "staging"] {
        r.run(&["promote", "a", "1.0.0", env]).ok();
    }
    // A report from two days ago is too old to count.
    r.run_at(
        "2026-11-01T00:00:00Z",
        &[
            "eval",
            "run",
            "limits",
            "--bundle",
            "a",
            "--version",
            "1.0.0",
        ],
    )
    .ok();
    let o = r.run_at(
        "2026-11-03T00:00:00Z",
        &["--json", "promote", "a", "1.0.0", "prod"],
    );
    o.code(3);
    let gate = |j: &serde_json::Value| {
        j["gates"]
            .as_array()
            .expect("g")
            .iter()
            .find(|g| g["gate"] == "eval")
            .cloned()
            .expect("eval gate")
    };
    let g = gate(&o.json());
    assert_eq!(g["status"], "pending", "{g}");
    assert!(
        g["reason"]
            .as_str()
            .unwrap_or("")
            .contains("older than the 24h limit"),
        "{g}"
    );
    r.run_at(
        "2026-11-03T00:00:00Z",
        &[
            "eval",
            "run",
            "limits",
            "--bundle",
            "a",
            "--version",
            "1.0.0",
        ],
    )
    .ok();
    r.run_at("2026-11-03T00:10:00Z", &["promote", "a", "1.0.0", "prod"])
        .ok();
    // 1.1.0 passes its own (lowered) threshold, but regresses 7 of 8 cases
    // that pass on prod's 1.0.0: McNemar says that is not chance.
    for env in ["dev", "staging"] {
        r.run_at("2026-11-03T01:00:00Z", &["promote", "a", "1.1.0", env])
            .ok();
    }
    r.run_at(
        "2026-11-03T01:00:00Z",
        &[
            "eval",
            "run",
            "limits",
            "--bundle",
            "a",
            "--version",
            "1.1.0",
        ],
    )
    .ok();
    let o = r.run_at(
        "2026-11-03T02:00:00Z",
        &["--json", "promote", "a", "1.1.0", "prod"],
    );
    o.code(3);
    let g = gate(&o.json());
    assert_eq!(g["status"], "failed", "{g}");
    assert!(
        g["reason"]
            .as_str()
            .unwrap_or("")
            .contains("regressed significantly against a@1.0.0")
            && g["reason"].as_str().unwrap_or("").contains("escalate_0"),
        "{g}"
    );
}
