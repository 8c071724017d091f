//! `attribution explain | analyze-batch | diff` end to end: the existing
//! tool's syntax on the tree it wrote (where its CLI read no prompt and no
//! policy, and called everything Unclear), traces from files and from the
//! store, counts per assessment, the version diff put down to the changed
//! line, and bad input that gets a clear answer and writes nothing.

use serde_json::Value;

use crate::common::Repo;

const T1: &str = r#"{"trace_id": "t-001", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 150, "order": "A-17"}}], "output": "I have refunded 150 dollars."}"#;
const T2: &str = r#"{"trace_id": "t-002", "output": "I'm sorry you're upset. I've passed you to one of my colleagues, who will sort this out."}"#;
const T3: &str = r#"{"id": "t-003", "action": "delete_account"}"#;
const T4: &str = r#"{"trace_id": "t-004", "tool_calls": [{"function": "issue_refund", "args": {"amount": 40}}]}"#;

fn sample() -> Repo {
    let r = Repo::with_sample_tree();
    r.write("traces/t1.json", T1);
    r.write("traces/t2.json", T2);
    r.write("traces/t3.json", T3);
    r.write("traces/t4.json", T4);
    r
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

#[test]
fn the_existing_tools_syntax_reads_its_prompts_and_policies_and_names_the_broken_rule() {
    let r = sample();
    let text = r
        .run(&[
            "attribution",
            "explain",
            "traces/t1.json",
            "--bundle",
            "support-agent@1.2.0",
        ])
        .ok()
        .to_string();
    assert!(text.contains("Attribution Analysis"), "{text}");
    assert!(text.contains("Overall: Contradicts artifacts"), "{text}");
    // The line the template itself numbers, not the YAML file's line 12.
    assert!(text.contains("Location: line 4"), "{text}");
    assert!(
        text.contains("Never issue refunds above 100 dollars without manager approval."),
        "{text}"
    );

    let v = parse(
        r.run(&[
            "attribution",
            "explain",
            "traces/t1.json",
            "-b",
            "support-agent@1.2.0",
            "-f",
            "json",
        ])
        .ok(),
    );
    for key in [
        "trace_id",
        "bundle_id",
        "bundle_version",
        "action",
        "action_type",
        "influences",
        "primary_influence",
        "overall_assessment",
        "analyzed_at",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["trace_id"], "t-001");
    assert_eq!(v["action_type"], "tool_call");
    assert_eq!(v["overall_assessment"], "Contradicts artifacts");
    let p = &v["primary_influence"];
    for key in [
        "artifact_type",
        "artifact_ref",
        "location",
        "content_snippet",
        "confidence",
        "confidence_label",
        "reasoning",
        "is_negated",
    ] {
        assert!(p.get(key).is_some(), "missing {key}: {p}");
    }
    assert_eq!(p["artifact_type"], "prompt");
    assert_eq!(p["artifact_ref"], "prompts/onboarding@v1.0.1");
    assert_eq!(p["location"], "line 4");
    assert_eq!(p["is_negated"], true);
    // The line that allowed it (up to 150) is named: the bundle contradicts itself.
    assert_eq!(v["followed"]["location"], "line 3", "{v}");
    // Policies are read and name their rule.
    let infl = v["influences"].as_array().expect("influences");
    assert!(
        infl.iter().any(|i| i["artifact_type"] == "policy"
            && i["location"] == "rule 1: issue_refund (tools[0])"),
        "{v}"
    );

    // A paraphrased escalation finds its line; a denied tool named as a decision contradicts.
    let v2 = parse(
        r.run(&[
            "--json",
            "attribution",
            "explain",
            "traces/t2.json",
            "-b",
            "support-agent@1.2.0",
        ])
        .ok(),
    );
    assert_eq!(v2["primary_influence"]["location"], "line 5", "{v2}");
    assert_eq!(v2["action_type"], "response");
    let v3 = parse(
        r.run(&[
            "--json",
            "attribution",
            "explain",
            "traces/t3.json",
            "-b",
            "support-agent@1.2.0",
        ])
        .ok(),
    );
    assert_eq!(v3["overall_assessment"], "Contradicts artifacts", "{v3}");
    assert_eq!(
        v3["contradiction"]["location"], "rule 2: delete_account (tools[1])",
        "{v3}"
    );

    // --confidence-threshold filters influences, not the assessment; --output writes the file.
    let v4 = parse(
        r.run(&[
            "attribution",
            "explain",
            "traces/t1.json",
            "-b",
            "support-agent@1.2.0",
            "-f",
            "json",
            "--confidence-threshold",
            "0.9",
        ])
        .ok(),
    );
    assert!(
        v4["influences"]
            .as_array()
            .expect("list")
            .iter()
            .all(|i| i["confidence"].as_f64() >= Some(0.9)),
        "{v4}"
    );
    assert_eq!(v4["overall_assessment"], "Contradicts artifacts");
    r.run(&[
        "attribution",
        "explain",
        "traces/t4.json",
        "-b",
        "support-agent@1.2.0",
        "-o",
        "out.txt",
    ])
    .ok();
    assert!(
        r.read("out.txt")
            .contains("Overall: Expected per artifacts"),
        "{}",
        r.read("out.txt")
    );
    // A link planted where the report goes is refused, and what it points
    // at is left as it was.
    let outside = tempfile::tempdir().expect("tempdir");
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "keep").expect("write");
    std::os::unix::fs::symlink(&victim, r.path().join("linked.txt")).expect("link");
    let e = r.run(&[
        "attribution",
        "explain",
        "traces/t4.json",
        "-b",
        "support-agent@1.2.0",
        "-o",
        "linked.txt",
    ]);
    assert_ne!(e.code, 0);
    assert!(e.stderr.contains("link"), "{}", e.stderr);
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
}

#[test]
fn analyze_batch_counts_every_assessment_and_skips_bad_files_by_name() {
    let r = sample();
    r.write("traces/bad.json", "{not json");
    let out = r.run(&[
        "attribution",
        "analyze-batch",
        "traces",
        "--bundle",
        "support-agent@1.2.0",
    ]);
    let text = out.ok().to_string();
    assert!(text.contains("Traces analyzed: 4"), "{text}");
    assert!(text.contains("Contradicts:     2"), "{text}");
    assert!(out.stderr.contains("bad.json"), "{}", out.stderr);
    let v = parse(
        r.run(&[
            "attribution",
            "analyze-batch",
            "traces",
            "-b",
            "support-agent@1.2.0",
            "-f",
            "json",
        ])
        .ok(),
    );
    let c = &v["counts"];
    let total: u64 = ["expected", "likely_expected", "contradicts", "unclear"]
        .iter()
        .map(|k| c[*k].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 4, "{v}");
    assert_eq!(c["contradicts"], 2, "{v}");
    assert_eq!(v["skipped"][0]["input"], "bad.json", "{v}");
    assert!(
        v["rules_broken"].as_array().is_some_and(|b| !b.is_empty()),
        "{v}"
    );

    // One file of JSON lines reads the same.
    r.write("batch.jsonl", &format!("{T1}\n{T2}\n\n{T3}\n{T4}\n"));
    let v = parse(
        r.run(&[
            "attribution",
            "analyze-batch",
            "batch.jsonl",
            "-b",
            "support-agent@1.2.0",
            "-f",
            "json",
        ])
        .ok(),
    );
    assert_eq!(v["traces_analyzed"], 4, "{v}");
}

/// A production repository that keeps traces' content, with the support
/// agent's 1.0.0.
fn capturing_repo() -> Repo {
    let r = Repo::initialized_production();
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}traces:\n  capture_content: true\n"),
    );
    r.commit_all("capture content");
    r.create_support_agent("1.0.0", "v1.0.0", "0.2");
    r
}

#[test]
fn a_stored_trace_names_its_own_bundle_and_the_version_diff_points_at_the_changed_line() {
    let r = capturing_repo();
    r.create_support_agent("1.1.0", "v1.1.0", "0.2");
    let line = |id: &str, version: &str, amount: u32| {
        format!(
            r#"{{"trace_id": "{id}", "tool_calls": [{{"name": "issue_refund", "arguments": {{"amount": {amount}}}}}], "output": "Refunded {amount} dollars.", "timestamp": "2026-11-20T10:00:00Z", "metadata": {{"releaseops.bundle_id": "support-agent", "releaseops.bundle_version": "{version}", "releaseops.environment": "prod"}}}}"#
        )
    };
    let mut lines = String::new();
    for i in 0..20 {
        lines += &line(&format!("old-{i}"), "1.0.0", 20 + i * 4);
        lines.push('\n');
        let amount = if i % 2 == 0 { 120 + i } else { 30 + i };
        lines += &line(&format!("new-{i}"), "1.1.0", amount);
        lines.push('\n');
    }
    r.write("prod.jsonl", &lines);
    r.run(&["traces", "import", "prod.jsonl"]).ok();

    let listed = parse(
        r.run(&[
            "--json",
            "traces",
            "list",
            "--bundle",
            "support-agent@1.1.0",
            "-n",
            "100",
        ])
        .ok(),
    );
    let ids: Vec<String> = listed
        .as_array()
        .expect("traces")
        .iter()
        .filter_map(|t| t["trace_id"].as_str().map(String::from))
        .collect();
    assert_eq!(ids.len(), 20, "{listed}");
    let mut contradicts = 0;
    for id in &ids {
        let v = parse(
            r.run(&["--json", "attribution", "explain", "--trace-id", id])
                .ok(),
        );
        assert_eq!(v["bundle_version"], "1.1.0", "{v}");
        if v["overall_assessment"] == "Contradicts artifacts" {
            contradicts += 1;
            // The policy still says 100; the new prompt line says 150.
            assert_eq!(v["followed"]["location"], "line 3", "{v}");
        }
    }
    assert_eq!(contradicts, 10, "the ten refunds above 100");

    let b = parse(
        r.run(&[
            "attribution",
            "analyze-batch",
            "--bundle",
            "support-agent@1.1.0",
            "--env",
            "prod",
            "-f",
            "json",
        ])
        .ok(),
    );
    assert_eq!(b["traces_analyzed"], 20, "{b}");
    assert_eq!(b["counts"]["contradicts"], 10, "{b}");

    let d = parse(
        r.run(&[
            "attribution",
            "diff",
            "support-agent@1.0.0",
            "support-agent@1.1.0",
            "--env",
            "prod",
            "-f",
            "json",
        ])
        .ok(),
    );
    let top = &d["behaviours"][0];
    assert_eq!(top["change"]["new_location"], "line 3", "{d}");
    assert_eq!(
        top["change"]["old"], "You may issue refunds up to 100 dollars.",
        "{d}"
    );
    assert_eq!(top["action"], "issue_refund");
    assert_eq!(top["old_traces"], 0, "{d}");
    assert_eq!(top["new_traces"], 10, "{d}");
    assert_eq!(top["old_verdict"], "breaks");
    assert_eq!(top["new_verdict"], "follows");
    let text = r
        .run(&[
            "attribution",
            "diff",
            "support-agent@1.0.0",
            "support-agent@1.1.0",
        ])
        .ok()
        .to_string();
    assert!(
        text.contains("+ You may issue refunds up to 150 dollars."),
        "{text}"
    );
}

#[test]
fn bad_input_gets_a_clear_answer_and_writes_nothing() {
    let r = sample();
    r.write("notjson.json", "{\"trace_id\": ");
    r.write("noaction.json", r#"{"trace_id": "t-9"}"#);
    r.write("calls.json", r#"{"tool_calls": {"name": "x"}}"#);
    let before = r.snapshot();

    // Each refused with its input named (exit 2 for input that is wrong, 1 for what is missing).
    for (file, bundle, code, said) in [
        (
            "notjson.json",
            Some("support-agent@1.2.0"),
            2,
            "notjson.json is not JSON",
        ),
        ("calls.json", Some("support-agent@1.2.0"), 2, "tool_calls"),
        (
            "missing.json",
            Some("support-agent@1.2.0"),
            1,
            "missing.json",
        ),
        ("noaction.json", Some("nobody@1.0.0"), 1, "nobody"),
        ("noaction.json", Some("support-agent@9.9.9"), 1, "9.9.9"),
        ("noaction.json", None, 2, "--bundle"),
    ] {
        let mut args = vec!["attribution", "explain", file];
        if let Some(b) = bundle {
            args.extend(["-b", b]);
        }
        let e = r.run(&args);
        assert_ne!(e.code, 0, "{args:?}");
        if code == 2 {
            e.code(2);
        }
        assert!(e.stderr.contains(said), "{args:?}: {}", e.stderr);
        assert!(!e.stderr.contains("panicked"), "{}", e.stderr);
    }

    // No action: an explicit Unclear with the reason, not an error.
    let v = parse(
        r.run(&[
            "--json",
            "attribution",
            "explain",
            "noaction.json",
            "-b",
            "support-agent@1.2.0",
        ])
        .ok(),
    );
    assert_eq!(v["overall_assessment"], "Unclear");
    assert!(
        v["assessment_reason"]
            .as_str()
            .is_some_and(|s| s.contains("no action")),
        "{v}"
    );

    assert_eq!(before, r.snapshot(), "attribution wrote to the store");
}

#[test]
fn a_prompt_of_a_hundred_thousand_lines_is_explained() {
    let r = Repo::initialized_production();
    let long: String = (0..100_000)
        .map(|i| {
            format!("Never approve requests of more than {i} units without a review by team {i}.\n")
        })
        .collect();
    r.write("prompts/long.md", &long);
    r.write("policies/none.yaml", "tools: []\n");
    r.commit_all("a long prompt");
    r.run(&[
        "bundle",
        "create",
        "big",
        "-v",
        "1.0.0",
        "-a",
        "system=file:prompts/long.md",
        "--policy",
        "tools=policies/none.yaml",
        "-m",
        "gpt-4.1",
    ])
    .ok();
    r.write("t.json", r#"{"trace_id": "t", "tool_calls": [{"name": "approve_request", "arguments": {"units": 5}}]}"#);
    let v = parse(
        r.run_within(
            std::time::Duration::from_secs(120),
            &[
                "--json",
                "attribution",
                "explain",
                "t.json",
                "-b",
                "big@1.0.0",
            ],
        )
        .ok(),
    );
    assert!(
        v["influences"].as_array().is_some_and(|i| !i.is_empty()),
        "{}",
        &v.to_string()[..200.min(v.to_string().len())]
    );
}

/// The demo's project: production traffic of 1.0.0 and 1.1.0 with the
/// inputs captured, the team's agent, its refunds suite.
fn demo_project() -> (crate::common::Repo, std::path::PathBuf) {
    let r = crate::common::Repo::demo();
    let dir = r.path().to_path_buf();
    (r, dir)
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> crate::common::Run {
    crate::common::Run::from(
        crate::common::releaseops()
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("run releaseops"),
    )
}

#[test]
fn replay_judges_a_candidate_on_productions_inputs_and_incidents_become_regression_cases() {
    let (_keep, dir) = demo_project();
    let select = [
        "--source",
        "support-agent@1.1.0",
        "--env",
        "prod",
        "--limit",
        "120",
        "--target-from",
        "refunds",
    ];

    let mut args = vec!["--json", "replay", "export-suite", "--suite", "prod-replay"];
    args.extend(select);
    let e = parse(run_in(&dir, &args).ok());
    assert_eq!(e["path"], ".releaseops/evals/prod-replay.yaml", "{e}");
    assert_eq!(e["traces_read"], 120, "{e}");
    let incidents = e["incidents"].as_u64().expect("incidents");
    assert!(
        incidents > 0,
        "1.1.0 refunded above the limit in production: {e}"
    );
    let suite =
        std::fs::read_to_string(dir.join(".releaseops/evals/prod-replay.yaml")).expect("suite");
    assert!(
        suite.contains("type: command"),
        "the target comes from the refunds suite:\n{suite}"
    );
    assert!(
        suite.contains("called: false") && suite.contains("- incident"),
        "{suite}"
    );
    assert!(suite.contains("type: similarity"), "{suite}");

    // The version that caused the incidents fails its own regression cases (exit 5)...
    let mut args = vec![
        "replay",
        "--bundle",
        "support-agent@1.1.0",
        "--from-traces",
        "--suite",
        "r-new",
        "-f",
        "json",
    ];
    args.extend(select);
    let bad = run_in(&dir, &args);
    bad.code(5);
    let report = parse(&bad.stdout);
    let failed: Vec<&Value> = report["results"]
        .as_array()
        .or_else(|| report["cases"].as_array())
        .expect("case results")
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(
        failed.len() as u64,
        incidents,
        "only the incidents fail: {}",
        bad.stdout.chars().take(2000).collect::<String>()
    );

    // ...and the version rolled back to passes them: it would not have refunded.
    let mut args = vec![
        "replay",
        "--bundle",
        "support-agent@1.0.0",
        "--from-traces",
        "--suite",
        "r-old",
    ];
    args.extend(select);
    let good = run_in(&dir, &args);
    let text = good.ok();
    assert!(text.contains("Result: PASS"), "{text}");
    // The report is an eval report like any other: the evidence a gate reads.
    let r = parse(
        run_in(
            &dir,
            &[
                "--json",
                "eval",
                "report",
                "-b",
                "support-agent@1.0.0",
                "--suite",
                "r-old",
                "-f",
                "json",
            ],
        )
        .ok(),
    );
    assert_eq!(r["summary"]["gate_decision"], "PASS", "{r}");

    // A suite written by hand is never overwritten; a source with no traffic is named.
    let before = std::fs::read(dir.join(".releaseops/evals/refunds.yaml")).expect("refunds suite");
    let mut args = vec!["replay", "export-suite", "--suite", "refunds"];
    args.extend(select);
    let refused = run_in(&dir, &args);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("written by hand"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        before,
        std::fs::read(dir.join(".releaseops/evals/refunds.yaml")).expect("refunds suite")
    );
    // A replay's own suite, unchanged, is written again; edited by hand, never.
    let mut args = vec!["replay", "export-suite", "--suite", "prod-replay"];
    args.extend(select);
    run_in(&dir, &args).ok();
    let path = dir.join(".releaseops/evals/prod-replay.yaml");
    let edited = format!(
        "{}# kept by hand\n",
        std::fs::read_to_string(&path).expect("suite")
    );
    std::fs::write(&path, &edited).expect("edit");
    let refused = run_in(&dir, &args);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("edited since"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).expect("suite"), edited);
    let none = run_in(
        &dir,
        &[
            "replay",
            "export-suite",
            "--source",
            "support-agent@1.2.0",
            "--env",
            "prod",
        ],
    );
    assert_ne!(none.code, 0);
    assert!(
        none.stderr
            .contains("no stored trace of support-agent@1.2.0"),
        "{}",
        none.stderr
    );
    assert!(
        !dir.join(".releaseops/evals/replay.yaml").exists(),
        "a failed replay wrote its suite"
    );
}

/// A model on loopback whose answer depends on the lines it is given: the
/// limit line lets it refund, the prohibition line sends it to a manager.
fn lines_model(req: &wiremock::Request) -> wiremock::ResponseTemplate {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let system = body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|x| x["role"] == "system"))
        .and_then(|x| x["content"].as_str())
        .unwrap_or("")
        .to_string();
    let message = if system.contains("Never issue refunds above 100 dollars") {
        serde_json::json!({"role": "assistant", "content": "A manager will review that refund today."})
    } else if system.contains("refunds up to 150 dollars") {
        serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "issue_refund", "arguments": "{\"amount\": 130}"}}]})
    } else {
        serde_json::json!({"role": "assistant", "content": "Sorry, I cannot help with refunds."})
    };
    wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({"choices": [{"message": message, "finish_reason": "stop"}], "usage": {"prompt_tokens": 20, "completion_tokens": 5}}))
}

const ABLATION_KEY: &str = "sk-ablation-DO-NOT-LEAK-7";

fn ablation_repo(server: &str, filler: usize) -> Repo {
    let mut r = Repo::initialized_production();
    let mut prompt = String::from("You are a support agent for Acme.\n");
    for i in 0..filler {
        prompt += &format!("Mention our opening hours (line {i}) only when asked.\n");
    }
    prompt += "You may issue refunds up to 150 dollars using the issue_refund tool.\nNever issue refunds above 100 dollars without manager approval.\nEscalate angry customers to a human.\nKeep replies short.\n";
    r.write("prompts/system.md", &prompt);
    r.commit_all("prompt");
    r.run(&[
        "bundle",
        "create",
        "agent",
        "-v",
        "1.0.0",
        "-a",
        "system=file:prompts/system.md",
        "-m",
        "gpt-test",
        "--provider",
        "openai",
        "-t",
        "0",
    ])
    .ok();
    r.write("t.json", r#"{"trace_id": "inc-1", "input": "Refund 130 dollars for order A-1 please.", "output": "A manager will review that refund today."}"#);
    r.env.push(("OPENAI_API_KEY".into(), ABLATION_KEY.into()));
    r.env.push(("OPENAI_BASE_URL".into(), server.to_string()));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ablation_finds_the_line_that_decides_the_action_and_says_the_calls_first() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(lines_model)
        .mount(&server)
        .await;
    // Five lines: each left out in turn, and two runs of the whole bundle.
    let r = ablation_repo(&server.uri(), 0);
    let out = r.run(&[
        "attribution",
        "explain",
        "t.json",
        "-b",
        "agent@1.0.0",
        "--method",
        "ablation",
        "--concurrency",
        "1",
        "-f",
        "json",
    ]);
    // One after the other, the whole bundle's second run is still a call
    // of its own, not the first's answer from the cache.
    assert_eq!(
        server.received_requests().await.map_or(0, |q| q.len()),
        7,
        "every run a call"
    );
    let v = parse(out.ok());
    assert!(
        out.stderr.contains("Ablation: 7 calls"),
        "the cost is said first: {}",
        out.stderr
    );
    assert_eq!(v["plan"]["method"], "leave_one_out", "{v}");
    assert_eq!(v["calls"], 7);
    assert_eq!(v["reference_action"], "reply");
    assert_eq!(v["recorded_action"], "reply");
    // Two runs of the whole bundle agree: nothing changes by chance here.
    assert_eq!(v["noise_floor"], 0.0, "{v}");
    let top = &v["effects"][0];
    assert_eq!(top["location"], "line 3", "{v}");
    assert_eq!(top["effect"], 1.0);
    assert!(
        v["effects"]
            .as_array()
            .expect("effects")
            .iter()
            .skip(1)
            .all(|e| e["effect"] == 0.0),
        "{v}"
    );
    assert!(v.get("unclear").is_none(), "{v}");
    assert!(!out.stdout.contains(ABLATION_KEY) && !out.stderr.contains(ABLATION_KEY));

    // A trace whose recorded action the whole bundle does not reproduce
    // (production refunded; the model, with every line, escalates) is
    // Unclear: the effects would explain another action.
    r.write("t2.json", r#"{"trace_id": "inc-2", "input": "Refund 130 dollars for order A-1 please.", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 130}}]}"#);
    let v = parse(
        r.run(&[
            "attribution",
            "explain",
            "t2.json",
            "-b",
            "agent@1.0.0",
            "--method",
            "ablation",
            "-f",
            "json",
        ])
        .ok(),
    );
    assert_eq!(v["recorded_action"], "tool issue_refund", "{v}");
    assert!(
        v["unclear"]
            .as_str()
            .is_some_and(|u| u.contains("does not do what production did")),
        "{v}"
    );
    let offered = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|q| serde_json::from_slice::<Value>(&q.body).ok())
        .any(|b| b["tools"][0]["function"]["name"] == "issue_refund");
    assert!(
        offered,
        "the model was not offered the tool the trace called"
    );
    // An action after other calls is beyond one turn of a model: refused
    // before any call.
    r.write("t3.json", r#"{"trace_id": "inc-3", "input": "Refund order A-1.", "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "A-1"}}, {"name": "issue_refund", "arguments": {"amount": 130}}]}"#);
    let calls = server.received_requests().await.map_or(0, |q| q.len());
    let o = r.run(&[
        "attribution",
        "explain",
        "t3.json",
        "-b",
        "agent@1.0.0",
        "--method",
        "ablation",
    ]);
    o.code(2);
    assert!(o.stderr.contains("one turn"), "{}", o.stderr);
    assert_eq!(
        server.received_requests().await.map_or(0, |q| q.len()),
        calls
    );

    // Forty lines and a budget of 32: random subsets, and the surrogate finds the same line.
    let r = ablation_repo(&server.uri(), 36);
    let out = r.run(&[
        "attribution",
        "explain",
        "t.json",
        "-b",
        "agent@1.0.0",
        "--method",
        "ablation",
        "--budget",
        "32",
        "--seed",
        "3",
        "-f",
        "json",
    ]);
    let v = parse(out.ok());
    assert!(out.stderr.contains("Ablation: 32 calls"), "{}", out.stderr);
    assert_eq!(v["plan"]["method"], "random_subsets", "{v}");
    assert_eq!(v["effects"][0]["location"], "line 39", "{v}");
    assert!(v["effects"][0]["effect"].as_f64() > Some(0.5), "{v}");
    assert!(v["effects"][1]["effect"].as_f64() < Some(0.2), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ablation_against_a_provider_that_answers_garbage_is_unclear_and_writes_nothing() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_string("<html>not a model</html>"),
        )
        .mount(&server)
        .await;
    let r = ablation_repo(&server.uri(), 0);
    let before = r.snapshot();
    let v = parse(
        r.run(&[
            "--json",
            "attribution",
            "explain",
            "t.json",
            "-b",
            "agent@1.0.0",
            "--method",
            "ablation",
        ])
        .ok(),
    );
    assert!(
        v["unclear"].as_str().is_some_and(|u| u.contains("failed")),
        "{v}"
    );
    assert_eq!(v["effects"], serde_json::json!([]), "{v}");
    assert_eq!(before, r.snapshot(), "ablation wrote to the store");
    // No input recorded: refused before any call.
    r.write("noinput.json", r#"{"trace_id": "x", "output": "hi"}"#);
    let e = r.run(&[
        "attribution",
        "explain",
        "noinput.json",
        "-b",
        "agent@1.0.0",
        "--method",
        "ablation",
    ]);
    e.code(2);
    assert!(e.stderr.contains("no recorded input"), "{}", e.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ablation_keeps_an_echoed_key_out_and_refuses_budgets_it_cannot_keep() {
    let server = wiremock::MockServer::start().await;
    // A 200 whose error quotes the key back, as some servers do.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "error": {"message": format!("Incorrect API key provided: {ABLATION_KEY}")}
            })),
        )
        .mount(&server)
        .await;
    let r = ablation_repo(&server.uri(), 0);
    let base = [
        "attribution",
        "explain",
        "t.json",
        "-b",
        "agent@1.0.0",
        "--method",
        "ablation",
        "-f",
        "json",
    ];
    let out = r.run(&base);
    let v = parse(out.ok());
    assert!(v["unclear"].as_str().is_some(), "{v}");
    assert!(
        !out.stdout.contains(ABLATION_KEY) && !out.stderr.contains(ABLATION_KEY),
        "the key reached the output: {}{}",
        out.stdout,
        out.stderr
    );
    // A budget, a number of repeats or a concurrency it cannot keep is
    // refused before any call, never quietly raised or a panic.
    let before = server.received_requests().await.map_or(0, |r| r.len());
    for (flag, value, says) in [
        ("--budget", "0", "--budget 0"),
        ("--budget", "18446744073709551615", "--budget"),
        ("--repeats", "0", "--repeats 0"),
        ("--concurrency", "0", "--concurrency 0"),
        ("--concurrency", "18446744073709551615", "--concurrency"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        let e = r.run(&args);
        e.code(2);
        assert!(e.stderr.contains(says), "{flag} {value}: {}", e.stderr);
        assert!(!e.stderr.contains("panicked"), "{}", e.stderr);
    }
    assert_eq!(
        server.received_requests().await.map_or(0, |r| r.len()),
        before,
        "a refused ablation called the model"
    );
}

#[test]
fn a_replay_suite_commits_no_secret_production_saw() {
    let r = capturing_repo();
    let own = "ZXQ-internal-7781-secret";
    let hook = "https://hooks.slack.com/services/T0AAA/B0BBB/abcdefXYZ123";
    r.write(
        "prod.jsonl",
        &format!(
            "{}\n",
            serde_json::json!({"trace_id": "s-1", "input": format!("my code is {own}; post to {hook}"),
                "output": format!("Noted {own}."), "timestamp": "2026-11-20T10:00:00Z",
                "metadata": {"releaseops.bundle_id": "support-agent", "releaseops.bundle_version": "1.0.0", "releaseops.environment": "prod"}})
        ),
    );
    let vars = [("SUPPORT_DESK_TOKEN", own)];
    r.run_env(&vars, &["traces", "import", "prod.jsonl"]).ok();
    r.run_env(
        &vars,
        &[
            "replay",
            "export-suite",
            "--suite",
            "r",
            "--source",
            "support-agent@1.0.0",
            "--env",
            "prod",
        ],
    )
    .ok();
    let suite = r.read(".releaseops/evals/r.yaml");
    assert!(suite.contains("my code is"), "{suite}");
    for secret in [own, "abcdefXYZ123"] {
        assert!(!suite.contains(secret), "{secret} in the suite:\n{suite}");
        assert!(
            !r.git(&["log", "-p", "--all"]).contains(secret),
            "{secret} in git"
        );
    }
}

/// A model on loopback that speaks Anthropic's wire format and refunds
/// whenever it is offered the refund tool (as the version that caused the
/// incidents did); without the tool it can only reply.
fn refunding_model(req: &wiremock::Request) -> wiremock::ResponseTemplate {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let offered = body["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["name"] == "issue_refund"));
    let content = if offered {
        serde_json::json!([{"type": "tool_use", "id": "tu1", "name": "issue_refund", "input": {"amount": 180, "order": "A-1"}}])
    } else {
        serde_json::json!([{"type": "text", "text": "A manager will review that refund."}])
    };
    wiremock::ResponseTemplate::new(200).set_body_json(
        serde_json::json!({"content": content, "usage": {"input_tokens": 20, "output_tokens": 5}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_on_the_bundles_own_model_offers_the_tools_production_called() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/messages"))
        .respond_with(refunding_model)
        .mount(&server)
        .await;
    let r = Repo::demo();
    // The bundle's own model, with the variable its prompt names (production
    // traces record the message, not the template's variables).
    r.write(
        ".releaseops/evals/on-model.yaml",
        "id: on-model\ntarget: {type: model}\nvars: {user_name: Sam}\ncases:\n- id: hi\n  input: {message: hi}\n  assertions: [{type: contains, config: {expected: x}}]\n",
    );
    r.commit_all("a suite on the bundle's own model");
    let uri = server.uri();
    let dir = r.path().to_path_buf();
    let replay = |suite: &str, key: bool| {
        let args = [
            "replay",
            "--bundle",
            "support-agent@1.1.0",
            "--from-traces",
            "--source",
            "support-agent@1.1.0",
            "--env",
            "prod",
            "--limit",
            "40",
            "--target-from",
            "on-model",
            "--suite",
            suite,
            "-f",
            "json",
        ];
        if key {
            r.run_env(
                &[
                    ("ANTHROPIC_API_KEY", "sk-ant-replay-test"),
                    ("ANTHROPIC_BASE_URL", &uri),
                ],
                &args,
            )
        } else {
            r.run(&args)
        }
    };
    let head = || r.git(&["rev-parse", "HEAD"]);

    // A replay that cannot run (the provider's own service, and no key) writes no suite.
    let before = head();
    let refused = replay("own-model", false);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("ANTHROPIC_API_KEY"),
        "{}",
        refused.stderr
    );
    assert!(
        !dir.join(".releaseops/evals/own-model.yaml").exists(),
        "a replay that could not run left its suite"
    );
    assert_eq!(before, head(), "a replay that could not run committed");

    // On the bundle's own model, the incidents' refund tool is offered, so
    // the version that refunded fails its regression cases.
    let bad = replay("own-model", true);
    bad.code(5);
    let report = parse(&bad.stdout);
    let reasons: Vec<String> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .flat_map(|c| c["assertions"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["type"] == "tool_call")
        .map(|a| format!("{} {}", a["passed"], a["reason"].as_str().unwrap_or("")))
        .collect();
    let suite =
        std::fs::read_to_string(dir.join(".releaseops/evals/own-model.yaml")).expect("suite");
    assert!(suite.contains("called: false"), "{suite}");
    // An incident's regression case fails: the refund happens again...
    assert!(
        reasons.iter().any(|r| r == "false issue_refund was called"),
        "the refunding model passed the incident cases: {reasons:?}"
    );
    // ...and production's own refunds are matched: the tool was there to call.
    assert!(
        reasons
            .iter()
            .any(|r| r == "true issue_refund was called with matching arguments"),
        "{reasons:?}"
    );
    let requests = server.received_requests().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&requests.last().expect("a call").body).expect("json");
    let tool = body["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "issue_refund"))
        .unwrap_or_else(|| panic!("issue_refund not offered: {body}"));
    assert_eq!(
        tool["input_schema"]["properties"]["amount"]["type"], "number",
        "{tool}"
    );

    // Without the variable the prompt names ({{ user_name }}), every case
    // would fail to render: refused before the suite is written.
    let before = head();
    let no_vars = r.run_env(
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-replay-test"),
            ("ANTHROPIC_BASE_URL", &uri),
        ],
        &[
            "replay",
            "--bundle",
            "support-agent@1.1.0",
            "--from-traces",
            "--source",
            "support-agent@1.1.0",
            "--env",
            "prod",
            "--limit",
            "5",
            "--suite",
            "no-vars",
        ],
    );
    no_vars.code(2);
    assert!(no_vars.stderr.contains("user_name"), "{}", no_vars.stderr);
    assert!(!dir.join(".releaseops/evals/no-vars.yaml").exists());
    assert_eq!(before, head());

    // A suite that judges words alone calls the model without tools, as
    // before (a local model without tool support keeps working).
    let calls = server.received_requests().await.map_or(0, |q| q.len());
    r.run_env(
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-replay-test"),
            ("ANTHROPIC_BASE_URL", &uri),
        ],
        &[
            "eval",
            "run",
            "on-model",
            "--bundle",
            "support-agent@1.1.0",
            "--no-cache",
        ],
    );
    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), calls + 1);
    let body: Value = serde_json::from_slice(&requests[calls].body).expect("json");
    assert!(body.get("tools").is_none(), "{body}");
    // A suite with a tool case offers the tools to every case, whatever
    // --tag selects: a case is sent the same request either way.
    r.write(
        ".releaseops/evals/mixed.yaml",
        "id: mixed\ntarget: {type: model}\nvars: {user_name: Sam}\ncases:\n- id: t\n  tags: [tools]\n  input: {message: refund}\n  assertions: [{type: tool_call, config: {name: issue_refund}}]\n- id: w\n  tags: [words]\n  input: {message: hello}\n  assertions: [{type: contains, config: {expected: x}}]\n",
    );
    r.run_env(
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-replay-test"),
            ("ANTHROPIC_BASE_URL", &uri),
        ],
        &[
            "eval",
            "run",
            "mixed",
            "--bundle",
            "support-agent@1.1.0",
            "--tag",
            "words",
            "--no-cache",
        ],
    );
    let requests = server.received_requests().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&requests.last().expect("a call").body).expect("json");
    assert!(
        body["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
}

#[test]
fn a_model_target_that_cannot_call_the_tool_a_case_asserts_about_is_refused() {
    let r = Repo::initialized();
    r.write("prompts/system.md", "You help customers.");
    r.write(
        ".releaseops/evals/tools.yaml",
        "id: tools\ntarget: {type: model, base_url: 'http://127.0.0.1:9'}\ncases:\n- id: no-delete\n  input: {message: delete my account}\n  assertions: [{type: tool_call, config: {name: delete_account, called: false}}]\n",
    );
    r.run(&[
        "bundle",
        "create",
        "a",
        "-a",
        "system=file:prompts/system.md",
        "-m",
        "m",
        "--provider",
        "openai-compatible",
    ])
    .ok();
    let o = r.run(&["eval", "run", "tools", "--bundle", "a"]);
    o.code(2);
    assert!(
        o.stderr.contains("delete_account") && o.stderr.contains("target.tools"),
        "{}",
        o.stderr
    );
    // Listed, it is offered (the call then fails on the closed port: exit 5 or 1, not 2).
    r.write(
        ".releaseops/evals/tools.yaml",
        "id: tools\ntarget: {type: model, base_url: 'http://127.0.0.1:9', timeout_ms: 2000, tools: [{name: delete_account, description: Deletes the account}]}\ncases:\n- id: no-delete\n  input: {message: delete my account}\n  assertions: [{type: tool_call, config: {name: delete_account, called: false}}]\n",
    );
    let o = r.run(&["eval", "run", "tools", "--bundle", "a"]);
    assert_ne!(o.code, 2, "{}", o.stderr);
    // A typo in a tool is an error naming it.
    r.write(
        ".releaseops/evals/tools.yaml",
        "id: tools\ntarget: {type: model, tools: [{name: delete_account, paramters: {}}]}\ncases:\n- id: c\n  input: {message: hi}\n  assertions: [{type: contains, config: {expected: x}}]\n",
    );
    let o = r.run(&["eval", "run", "tools", "--bundle", "a"]);
    o.code(2);
    assert!(o.stderr.contains("paramters"), "{}", o.stderr);
}

#[test]
fn ablation_on_an_agent_whose_action_changes_by_itself_is_unclear() {
    let r = ablation_repo("http://127.0.0.1:9", 0);
    // The agent refunds on the second run of the whole bundle and replies
    // on every other run: what it does is chance, not the lines.
    r.write(
        ".releaseops/evals/flaky.yaml",
        r#"id: flaky
target:
  type: command
  command: ["sh", "-c", "if grep -q '\"ablation-1\"'; then echo '{\"output\": \"\", \"tool_calls\": [{\"name\": \"issue_refund\", \"arguments\": {}}]}'; else echo 'A manager will review that refund today.'; fi"]
cases:
- id: c
  input: {message: hi}
  assertions: [{type: contains, config: {expected: x}}]
"#,
    );
    let out = r.run(&[
        "attribution",
        "explain",
        "t.json",
        "-b",
        "agent@1.0.0",
        "--method",
        "ablation",
        "--target-from",
        "flaky",
        "-f",
        "json",
    ]);
    let v = parse(out.ok());
    assert_eq!(v["noise_floor"], 1.0, "{v}");
    assert!(
        v["unclear"]
            .as_str()
            .is_some_and(|u| u.contains("not stable")),
        "{v}"
    );
}

#[test]
fn a_replay_on_the_bundles_own_model_asserts_only_what_one_turn_can_do() {
    let r = capturing_repo();
    let meta = serde_json::json!({"releaseops.bundle_id": "support-agent", "releaseops.bundle_version": "1.0.0", "releaseops.environment": "prod"});
    let lines = [
        // An incident two calls deep: one turn of a model never reaches the refund.
        serde_json::json!({"trace_id": "m-1", "input": "Refund order A-17, 400 dollars.", "timestamp": "2026-11-20T10:00:00Z", "metadata": meta, "status": "error",
            "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "A-17"}}, {"name": "issue_refund", "arguments": {"order_id": "A-17", "amount": 400, "tags": ["vip"]}}],
            "output": "Refunded 400 dollars."}),
        // A good two-step trace: its first call is what one turn can repeat.
        serde_json::json!({"trace_id": "m-2", "input": "Where is order A-18?", "timestamp": "2026-11-20T10:01:00Z", "metadata": meta,
            "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "A-18", "page_token": "pt-1"}}, {"name": "track_parcel", "arguments": {"parcel": "P-9"}}],
            "output": "Your parcel P-9 arrives tomorrow."}),
        // A tool no provider can name.
        serde_json::json!({"trace_id": "m-3", "input": "Look me up.", "timestamp": "2026-11-20T10:02:00Z", "metadata": meta,
            "tool_calls": [{"name": "crm.lookup", "arguments": {}}], "output": "Found you."}),
    ];
    r.write(
        "prod.jsonl",
        &lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    );
    r.run(&["traces", "import", "prod.jsonl"]).ok();
    let e = parse(
        r.run(&[
            "--json",
            "replay",
            "export-suite",
            "--suite",
            "one-turn",
            "--source",
            "support-agent@1.0.0",
            "--env",
            "prod",
        ])
        .ok(),
    );
    assert_eq!(
        (&e["cases"], &e["beyond_one_turn"], &e["unnameable_tools"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{e}"
    );
    let suite = r.read(".releaseops/evals/one-turn.yaml");
    assert!(suite.contains("name: lookup_order"), "{suite}");
    // A schema holds argument names, not values: `page_token` stays a typed
    // argument (redacting it as a secret's key broke the schema).
    assert!(
        suite.contains("page_token:\n") && !suite.contains("[redacted]"),
        "{suite}"
    );
    assert!(
        // Offered (production had it), never asserted.
        suite.matches("track_parcel").count() == 1 && !suite.contains("type: similarity"),
        "one turn of a model makes the first call, never the reply after the tools:\n{suite}"
    );
    // Exported again unchanged, it is replaced; its stamp survives a CRLF checkout.
    let crlf = suite.replace('\n', "\r\n");
    r.write(".releaseops/evals/one-turn.yaml", &crlf);
    r.run(&[
        "replay",
        "export-suite",
        "--suite",
        "one-turn",
        "--source",
        "support-agent@1.0.0",
        "--env",
        "prod",
    ])
    .ok();
}
