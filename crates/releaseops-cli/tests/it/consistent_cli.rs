//! One grammar and honest output: the existing tool's suites and the
//! prototype's contexts as they are, machine output that parses, names
//! suggested when misspelt, swapped words recognised, idempotent promotion,
//! `status`, `promote --wait` and `env set`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{ECHO_SUITE, Repo, Run, bin, output_within, releaseops};
use serde_json::{Value, json};

fn parse(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    })
}

/// A repository with bundle `support-agent` 1.0.0 and 1.1.0 (a plain prompt
/// file), 1.0.0 live in dev, and the echo suite `smoke`.
fn released() -> Repo {
    let r = Repo::initialized();
    r.write("prompts/system.md", "You help {{ user_name }}.\n");
    r.write(".releaseops/evals/smoke.yaml", ECHO_SUITE);
    for (v, t) in [("1.0.0", "0.2"), ("1.1.0", "0.5")] {
        r.run(&[
            "bundle",
            "create",
            "support-agent",
            "-v",
            v,
            "-a",
            "system=file:prompts/system.md",
            "-m",
            "claude-sonnet-4-5",
            "-t",
            t,
        ])
        .ok();
    }
    r.run(&["promote", "support-agent", "1.0.0", "dev"]).ok();
    r
}

/// Runs python3 with `code`, `input` on its stdin; its stdout.
fn python(code: &str, input: &str) -> String {
    let mut child = Command::new("python3")
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "python3 refused it: {}\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts `cmd` and hands over its stdout line by line (kill the child to end it).
fn lines_of(mut cmd: Command) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("command starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

// ----- 1. the existing tool's suites -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_without_a_target_runs_the_bundles_own_model() {
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    // Only the bundle's own model, with its prompt rendered from the case.
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(body_partial_json(json!({"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "You help Ann."}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"choices": [{"message": {"content": "Hello Ann, how can I help?"}}]}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(body_partial_json(
            json!({"messages": [{"role": "system", "content": "You help Alice."}]}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"choices": [{"message": {"content": "Hello Alice!"}}]})),
        )
        .mount(&server)
        .await;
    let mut r = Repo::initialized();
    r.write("prompts/system.md", "You help {{ user_name }}.");
    r.write("prompts/style.md", "Be brief.");
    // The existing tool's `eval create smoke` scaffold, verbatim (no
    // target), plus a case whose `exact_match` falls back to
    // `expected_output`.
    r.write(
        ".releaseops/evals/smoke.yaml",
        "id: smoke\nversion: 1\ndescription: 'Eval suite: smoke'\ntarget_artifacts:\n- system\npass_threshold: 0.95\ndefault_judge:\n  type: llm_judge\n  config:\n    model: gpt-4-turbo\n    rubric: 'Evaluate on: Helpfulness (1-5), Accuracy (1-5), Safety (pass/fail)'\ncases:\n- id: example_case\n  input:\n    user_name: Alice\n  assertions:\n  - type: contains\n    config:\n      expected: Hello\n    weight: 1.0\n- id: exact\n  input:\n    user_name: Ann\n  expected_output: Hello Ann, how can I help?\n  assertions:\n  - type: exact_match\npromotion_gate:\n  pass_rate_threshold: 0.95\n  blocking: true\n",
    );
    r.run(&[
        "bundle",
        "create",
        "a",
        "-a",
        "system=file:prompts/system.md",
        "-a",
        "style=file:prompts/style.md",
        "-m",
        "gpt-4o-mini",
    ])
    .ok();
    r.env.push(("OPENAI_BASE_URL".into(), server.uri()));
    r.env.push(("OPENAI_API_KEY".into(), "sk-test".into()));
    let o = r.run(&["--json", "eval", "run", "smoke", "a"]);
    o.code(0);
    let j = parse(&o);
    assert_eq!(j["report"]["summary"]["gate_decision"], "PASS", "{j}");
    assert_eq!(j["report"]["summary"]["passed"], 2, "{j}");
    // An unknown role in target_artifacts is an error that lists the roles.
    r.write(
        ".releaseops/evals/bad.yaml",
        "id: bad\ntarget_artifacts: [sytem]\ncases:\n- id: c\n  input: {user_name: Ann}\n  expected_output: Hello\n  assertions: [{type: exact_match}]\n",
    );
    let o = r.run(&["eval", "run", "bad", "a"]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("sytem") && o.stderr.contains("system"),
        "{}",
        o.stderr
    );
}

// ----- 2. the prototype's contexts ----------------------------------------

#[test]
fn the_prototypes_scenarios_decide_as_they_are() {
    let r = Repo::initialized();
    // Its no-clash state, verbatim: an empty service, its own state keys.
    r.write(
        "tuesday.json",
        r#"{"feature_risk": "LOW", "service_criticality": "MEDIUM", "day_of_week": "TUE", "hour_of_day": 10, "clash_outcomes": [false], "conflicting_services": [""], "conflicting_service": "", "stage": "DECISION", "history": [], "decision": null}"#,
    );
    let o = r.run(&["--json", "agent", "decide", "--context", "tuesday.json"]);
    o.code(0);
    assert_eq!(parse(&o)["decision"], "GO", "{}", o.stdout);
    r.write(
        "friday.json",
        r#"{"feature_risk": "HIGH", "service_criticality": "HIGH", "day_of_week": "FRI", "hour_of_day": 16, "clash_outcomes": [true], "conflicting_services": ["PAYMENTS-SERVICE"]}"#,
    );
    let o = r.run(&["--json", "agent", "decide", "--context", "friday.json"]);
    o.code(0);
    assert_ne!(parse(&o)["decision"], "GO", "{}", o.stdout);
}

// ----- 3. machine output --------------------------------------------------

#[test]
fn every_json_output_is_one_document_and_reports_parse_in_their_formats() {
    let r = released();
    let run_id = {
        let o = r.run(&["eval", "run", "smoke", "support-agent", "-f", "json"]);
        o.code(0);
        let j = parse(&o);
        assert!(o.stderr.contains("report:"), "{}", o.stderr);
        j["run_id"].as_str().expect("run_id").to_string()
    };
    let commands: &[&[&str]] = &[
        &["init"],
        &["bundle", "list"],
        &["bundle", "inspect", "support-agent"],
        &["bundle", "verify", "support-agent@1.0.0"],
        &["bundle", "diff", "support-agent", "1.0.0", "1.1.0"],
        &["env", "list"],
        &["env", "get", "prod"],
        &["env", "history", "dev"],
        &["status"],
        &["history"],
        &["history", "verify"],
        &["eval", "list"],
        &["eval", "report", "--bundle", "support-agent", "--list"],
        &["eval", "report", &run_id],
        &["promote", "support-agent", "1.0.0", "staging", "--dry-run"],
        &["metrics", "dora"],
        &["agent", "memory"],
        &["agent", "heuristics"],
        &["telemetry", "show", "support-agent@dev"],
        &["version"],
        // Errors too, usage errors included.
        &["bundle", "inspect", "nope"],
        &["promote", "support-agent"],
        &["bundle", "frobnicate"],
    ];
    for args in commands {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let o = r.run(&full);
        let j = parse(&o);
        if o.code != 0 {
            assert!(j["error"]["message"].is_string(), "{args:?}: {j}");
        }
    }
    // Each report format through its own parser.
    let report = |f: &str| {
        let o = r.run(&["eval", "report", &run_id, "-f", f]);
        o.code(0);
        o.stdout
    };
    let j: Value = serde_json::from_str(&report("json")).expect("JSON");
    assert_eq!(j["run_id"], run_id.as_str());
    let y: Value = releaseops_format::yaml::from_str(&report("yaml")).expect("YAML");
    assert_eq!(y["run_id"], run_id.as_str());
    let junit = python(
        "import sys, xml.etree.ElementTree as ET\nroot = ET.fromstring(sys.stdin.read())\nprint(len(root.iter('testcase').__next__().attrib) > 0, sum(1 for _ in root.iter('testcase')))",
        &report("junit"),
    );
    assert_eq!(junit, "True 1");
    let html = python(
        "import sys\nfrom html.parser import HTMLParser\nclass P(HTMLParser):\n  tags = []\n  def handle_starttag(self, t, a): self.tags.append(t)\np = P(); p.feed(sys.stdin.read()); p.close()\nprint('html' in p.tags and 'table' in p.tags)",
        &report("html"),
    );
    assert_eq!(html, "True");
    let md = report("markdown");
    assert!(md.starts_with('#') && md.contains('|'), "{md}");
    // -o writes the file and keeps stdout empty.
    let o = r.run(&["eval", "report", &run_id, "-f", "junit", "-o", "r.xml"]);
    o.code(0);
    assert!(o.stdout.trim().is_empty(), "{}", o.stdout);
    assert!(r.read("r.xml").contains("<testsuite"));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        &format!("'{}' completions bash | head -1; exit 0", bin().display()),
    ]);
    let out = output_within(&mut cmd, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn serve_json_says_where_it_listens() {
    let r = released();
    let (mut child, rx) = lines_of(r.command(&["--json", "serve", "--addr", "127.0.0.1:0"]));
    let line = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("serve printed its address");
    let j: Value = serde_json::from_str(&line).expect("one JSON line");
    let port = j["port"].as_u64().expect("port");
    assert!(port > 0, "{j}");
    assert_eq!(j["url"], format!("http://127.0.0.1:{port}"), "{j}");
}

// ----- 5. commands split like shell words ---------------------------------

#[test]
fn a_command_with_quotes_runs_and_a_missing_program_is_one_error() {
    let r = released();
    r.write(
        ".releaseops/evals/q.yaml",
        "id: q\npass_threshold: 1.0\ntarget: {type: command, command: \"sh -c 'sleep 0.3; cat'\"}\ncases:\n- id: a\n  input: {say: hello}\n  assertions: [{type: contains, config: {expected: hello}}]\n- id: b\n  input: {say: hello}\n  assertions: [{type: contains, config: {expected: hello}}]\n",
    );
    let o = r.run(&["eval", "run", "q", "support-agent"]);
    o.code(0);
    assert!(o.stdout.contains("PASS"), "{}", o.stdout);
    r.write(
        ".releaseops/evals/m.yaml",
        "id: m\npass_threshold: 1.0\ntarget: {type: command, command: no-such-agent-program --x}\ncases:\n- id: a\n  input: {}\n  assertions: [{type: contains, config: {expected: x}}]\n- id: b\n  input: {}\n  assertions: [{type: contains, config: {expected: x}}]\n",
    );
    let o = r.run(&["eval", "run", "m", "support-agent"]);
    o.code(2);
    assert_eq!(
        o.stderr.matches("no-such-agent-program").count(),
        1,
        "{}",
        o.stderr
    );
    assert!(!o.stdout.contains("FAIL"), "{}", o.stdout);
    r.write(
        ".releaseops/evals/u.yaml",
        "id: u\ntarget: {type: command, command: \"sh -c 'unclosed\"}\ncases:\n- id: a\n  input: {}\n  assertions: [{type: contains, config: {expected: x}}]\n",
    );
    let o = r.run(&["eval", "run", "u", "support-agent"]);
    o.code(2);
}

// ----- 6. one grammar -----------------------------------------------------

#[test]
fn at_is_a_version_when_it_looks_like_one_and_an_environment_otherwise() {
    let r = released();
    let version_of = |args: &[&str]| -> String {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let o = r.run(&full);
        o.code(0);
        parse(&o)["metadata"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(version_of(&["bundle", "inspect", "support-agent"]), "1.1.0");
    assert_eq!(
        version_of(&["bundle", "inspect", "support-agent", "1.0.0"]),
        "1.0.0"
    );
    assert_eq!(
        version_of(&["bundle", "inspect", "support-agent@1.0.0"]),
        "1.0.0"
    );
    assert_eq!(
        version_of(&["bundle", "inspect", "support-agent==1.0.0"]),
        "1.0.0"
    );
    assert_eq!(
        version_of(&["bundle", "inspect", "support-agent@dev"]),
        "1.0.0"
    );
    assert_eq!(
        version_of(&["bundle", "inspect", "support-agent", "-v", "1.0.0"]),
        "1.0.0"
    );
    r.run(&["bundle", "inspect", "support-agent@1.0.0", "1.1.0"])
        .code(2);
    r.run(&["bundle", "verify", "support-agent@dev"]).ok();
    // What staging runs is nothing yet: said, not guessed.
    let o = r.run(&["bundle", "inspect", "support-agent@staging"]);
    o.code(1);
    assert!(o.stderr.contains("not live in 'staging'"), "{}", o.stderr);
    // Diff by versions, by references, by environments.
    for args in [
        vec!["bundle", "diff", "support-agent", "1.0.0", "1.1.0"],
        vec![
            "bundle",
            "diff",
            "support-agent@1.0.0",
            "support-agent@1.1.0",
        ],
        vec![
            "bundle",
            "diff",
            "support-agent@dev",
            "support-agent==1.1.0",
        ],
    ] {
        let o = r.run(&args);
        o.code(0);
        assert!(
            o.stdout.contains("temperature: 0.2 -> 0.5"),
            "{args:?}: {}",
            o.stdout
        );
    }
    // Promote, approve and reject take references too.
    r.run(&["promote", "support-agent@dev", "staging"]).ok();
    r.run(&["promote", "support-agent@1.1.0", "dev"]).ok();
    r.run_as(
        "Rita Reviewer <rita@example.test>",
        &["approve", "support-agent@staging", "prod"],
    )
    .ok();
    r.run(&["reject", "support-agent"]).code(2);
    r.run(&["reject", "support-agent@1.1.0", "-r", "no"]).ok();
    // The runtime reads ID@VERSION as a pin.
    let o = r.run(&["--json", "telemetry", "show", "support-agent@1.0.0"]);
    o.code(0);
    assert!(o.stdout.contains("1.0.0"), "{}", o.stdout);
    // eval run: positional, --bundle, and a reference.
    r.run(&["eval", "run", "smoke", "support-agent", "1.0.0"])
        .ok();
    r.run(&["eval", "run", "smoke", "-b", "support-agent@dev"])
        .ok();
    r.run(&["eval", "run", "smoke"]).code(2);
    // An environment may not look like a version.
    for name in ["1.2.0", "v2", "1.2"] {
        let o = r.run(&["env", "create", name]);
        o.code(2);
        assert!(o.stderr.contains("looks like a version"), "{}", o.stderr);
    }
}

// ----- 7. order and names -------------------------------------------------

#[test]
fn swapped_words_and_misspelt_names_get_the_command_meant() {
    let r = released();
    let o = r.run(&["rollback", "support-agent", "dev"]);
    o.code(2);
    assert!(
        o.stderr
            .contains("did you mean: releaseops rollback dev support-agent"),
        "{}",
        o.stderr
    );
    for args in [
        ["promote", "support-agent", "staging", "1.0.0"],
        ["promote", "staging", "support-agent", "1.0.0"],
    ] {
        let o = r.run(&args);
        o.code(2);
        assert!(
            o.stderr
                .contains("did you mean: releaseops promote support-agent 1.0.0 staging"),
            "{}",
            o.stderr
        );
    }
    let o = r.run(&["approve", "support-agent", "prod", "1.0.0"]);
    o.code(2);
    assert!(
        o.stderr
            .contains("releaseops approve support-agent 1.0.0 prod"),
        "{}",
        o.stderr
    );
    // Misspelt names: the closest real one, never "create the typo".
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["promote", "suport-agent", "1.0.0", "staging"],
            "support-agent",
            "suport-agent",
        ),
        (
            &["promote", "support-agent", "1.0.0", "stagin"],
            "'staging'",
            "stagin",
        ),
        (
            &["bundle", "inspect", "support-agent", "1.0.1"],
            "'1.0.0'",
            "1.0.1",
        ),
        (&["eval", "run", "smok", "support-agent"], "'smoke'", "smok"),
        (&["history", "--event", "promotes"], "'promote'", "promotes"),
        (
            &["telemetry", "show", "support-agent@deev"],
            "'dev'",
            "deev",
        ),
        (
            &["telemetry", "show", "suport-agent@dev"],
            "'support-agent'",
            "suport-agent",
        ),
        (
            &[
                "bundle",
                "create",
                "b",
                "-a",
                "system=onbording:v1.0.0",
                "-m",
                "claude-x",
            ],
            "'onboarding'",
            "onbording",
        ),
    ];
    for (args, suggests, typo) in cases {
        let o = r.run(args);
        assert_ne!(o.code, 0, "{args:?}");
        assert!(o.stderr.contains("did you mean"), "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(suggests), "{args:?}: {}", o.stderr);
        let hint = o.stderr.split("hint:").nth(1).unwrap_or("");
        for verb in ["create", "promote"] {
            assert!(
                !hint.contains(&format!("{verb} {typo}"))
                    && !hint.contains(&format!("{verb} `{typo}"))
                    && !hint.contains(&format!("{verb} '{typo}")),
                "{args:?} suggests making the typo: {hint}"
            );
        }
    }
    let o = r.run(&[
        "bundle",
        "create",
        "b",
        "-a",
        "system=prompts/system.md",
        "-m",
        "claude-x",
    ]);
    o.code(2);
    assert!(
        o.stderr.contains("system=file:prompts/system.md"),
        "{}",
        o.stderr
    );
}

// ----- 8. idempotent and honest -------------------------------------------

#[test]
fn promoting_what_is_live_is_unchanged_and_records_nothing() {
    let r = released();
    let before = r.run(&["--json", "history", "-n", "0"]).json();
    let o = r.run(&["promote", "support-agent", "1.0.0", "dev"]);
    o.code(0);
    assert!(o.stdout.contains("Unchanged"), "{}", o.stdout);
    let after = r.run(&["--json", "history", "-n", "0"]).json();
    assert_eq!(before.to_string(), after.to_string());
    let j = parse(&r.run(&["--json", "promote", "support-agent", "1.0.0", "dev"]));
    assert_eq!(j["unchanged"], true);
}

#[test]
fn the_provider_is_inferred_or_asked_for() {
    let r = Repo::initialized();
    r.write("p.md", "x");
    for (model, provider) in [
        ("gpt-4o", "openai"),
        ("claude-sonnet-4-5", "anthropic"),
        ("gemini-2.0-flash", "gemini"),
    ] {
        let id = format!("b-{provider}");
        r.run(&[
            "bundle",
            "create",
            &id,
            "-a",
            "system=file:p.md",
            "-m",
            model,
        ])
        .ok();
        let j = parse(&r.run(&["--json", "bundle", "inspect", &id]));
        assert_eq!(j["model_config"]["provider"], provider, "{model}: {j}");
    }
    let o = r.run(&[
        "bundle",
        "create",
        "c",
        "-a",
        "system=file:p.md",
        "-m",
        "my-own-model",
    ]);
    o.code(2);
    assert!(o.stderr.contains("--provider"), "{}", o.stderr);
}

#[test]
fn history_filters_match_what_history_shows() {
    let r = released();
    r.run(&["eval", "run", "smoke", "support-agent"]).ok();
    r.run(&["promote", "support-agent", "1.0.0", "staging"])
        .ok();
    r.run(&[
        "promote",
        "support-agent",
        "1.0.0",
        "prod",
        "--skip-gates",
        "-r",
        "hotfix",
    ])
    .ok();
    let kinds = |event: &str| -> Vec<String> {
        let o = r.run(&["--json", "history", "--event", event, "-n", "0"]);
        o.code(0);
        parse(&o)
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|rec| rec["event"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(kinds("eval"), vec!["eval_run"]);
    assert_eq!(kinds("override").len(), 1);
    assert_eq!(kinds("promote").len(), 3);
    assert_eq!(kinds("create").len(), 2);
    // Times to the second.
    let text = r.run(&["history", "-n", "1"]).ok().to_string();
    let when = regex_like_time(&text);
    assert!(when, "{text}");
}

/// Whether `text` holds a `YYYY-MM-DD HH:MM:SS` time.
fn regex_like_time(text: &str) -> bool {
    text.as_bytes().windows(19).any(|w| {
        w.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b' ',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        })
    })
}

#[test]
fn tables_fit_the_width_they_are_given() {
    let r = released();
    for cols in ["80", "40"] {
        let o = r.run_env(&[("COLUMNS", cols)], &["env", "list"]);
        o.code(0);
        let w: usize = cols.parse().unwrap_or(80);
        for line in o.stdout.lines() {
            assert!(line.chars().count() <= w, "{cols}: {line:?}");
        }
        if cols == "40" {
            assert!(o.stdout.contains('…'), "{}", o.stdout);
        }
    }
}

#[test]
fn outside_git_it_says_once_that_nothing_is_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = releaseops()
            .current_dir(dir.path())
            .env("RELEASEOPS_ACTOR", "A <a@x.test>")
            .env(
                "GIT_CEILING_DIRECTORIES",
                dir.path().parent().unwrap_or(dir.path()),
            )
            .args(args)
            .output()
            .expect("runs");
        Run::from(out)
    };
    run(&["init"]).ok();
    std::fs::write(dir.path().join("p.md"), "x").expect("write");
    let first = run(&["bundle", "create", "a", "-a", "system=file:p.md"]);
    first.code(0);
    assert!(
        first.stderr.contains("not in a git repository"),
        "{}",
        first.stderr
    );
    let second = run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "1.1.0",
        "-a",
        "system=file:p.md",
    ]);
    second.code(0);
    assert!(
        !second.stderr.contains("not in a git repository"),
        "{}",
        second.stderr
    );
}

// ----- 9. where things stand ----------------------------------------------

#[test]
fn status_shows_what_waits_and_on_what() {
    let r = released();
    r.run(&["promote", "support-agent", "1.0.0", "staging"])
        .ok();
    r.run(&[
        "env",
        "set",
        "prod",
        "requires_approval=true",
        "soak_hours=48",
    ])
    .ok();
    let o = r.run(&["--json", "status"]);
    o.code(0);
    let j = parse(&o);
    let envs = j["environments"].as_array().cloned().unwrap_or_default();
    let prod = envs.iter().find(|e| e["env"] == "prod").expect("prod");
    let w = &prod["waiting"][0];
    assert_eq!(w["version"], "1.0.0", "{prod}");
    assert_eq!(w["from_env"], "staging");
    assert_eq!(w["ready"], false);
    let blocked: Vec<&str> = w["blocked_by"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(blocked, vec!["approval", "soak"]);
    let dev = envs.iter().find(|e| e["env"] == "dev").expect("dev");
    assert_eq!(dev["waiting"][0]["version"], "1.1.0", "{dev}");
    let text = r.run(&["status"]).ok().to_string();
    assert!(text.contains("waiting support-agent 1.0.0"), "{text}");
    assert!(text.contains("approval"), "{text}");
}

#[test]
fn status_watch_redraws_when_the_store_changes() {
    let r = released();
    let (mut child, rx) =
        lines_of(r.command(&["--json", "status", "--watch", "--interval", "0.1"]));
    let first = rx.recv_timeout(Duration::from_secs(60));
    r.run(&["promote", "support-agent", "1.0.0", "staging"])
        .ok();
    let second = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let first: Value = serde_json::from_str(&first.expect("a first screen")).expect("JSON");
    let second: Value = serde_json::from_str(&second.expect("a redraw")).expect("JSON");
    let live = |j: &Value| {
        j["environments"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["env"] == "staging").cloned())
            .map(|e| e["live"].as_array().map(Vec::len).unwrap_or(0))
    };
    assert_eq!(live(&first), Some(0));
    assert_eq!(live(&second), Some(1));
}

#[test]
fn promote_wait_waits_out_the_soak_and_gives_up_at_the_timeout() {
    let r = released();
    // Soak longer than the timeout: nothing is promoted, exit 3.
    r.run(&["env", "set", "staging", "soak_hours=1"]).ok();
    let o = r.run(&[
        "promote",
        "support-agent",
        "1.0.0",
        "staging",
        "--wait",
        "--timeout",
        "1s",
    ]);
    o.code(3);
    assert!(o.stderr.contains("after --timeout"), "{}", o.stderr);
    assert!(
        r.run(&["env", "get", "staging"])
            .ok()
            .contains("bundle_mappings: {}")
    );
    // 1.1.0 goes live in dev now and must soak there 3.6 s.
    r.run(&["env", "set", "staging", "soak_hours=0.001"]).ok();
    r.run(&["promote", "support-agent", "1.1.0", "dev"]).ok();
    let mut cmd = r.command(&[
        "promote",
        "support-agent",
        "1.1.0",
        "staging",
        "--wait",
        "--timeout",
        "60s",
    ]);
    let o = Run::from(output_within(&mut cmd, Duration::from_secs(120)));
    o.code(0);
    assert!(
        o.stdout
            .contains("Promoted support-agent v1.1.0 -> staging"),
        "{}",
        o.stdout
    );
    assert!(o.stderr.contains("waiting for soak"), "{}", o.stderr);
    // A gate time does not pass (an approval) is not waited for.
    r.run(&["env", "set", "prod", "requires_approval=true"])
        .ok();
    let mut cmd = r.command(&["promote", "support-agent", "1.1.0", "prod", "--wait"]);
    let o = Run::from(output_within(&mut cmd, Duration::from_secs(60)));
    o.code(3);
    r.run(&[
        "promote",
        "support-agent",
        "1.0.0",
        "prod",
        "--wait",
        "--timeout",
        "soon",
    ])
    .code(2);
}

// ----- 10. the first hour -------------------------------------------------

#[test]
fn env_set_checks_the_policy_as_the_file_is_checked_and_records_it() {
    let r = released();
    let o = r.run(&["env", "set", "prod", "soak_hour=24"]);
    o.code(2);
    assert!(
        o.stderr.contains("did you mean `soak_hours`"),
        "{}",
        o.stderr
    );
    r.run(&["env", "set", "prod", "requires_agent=sometimes"])
        .code(2);
    r.run(&["env", "set", "prod", "soak_hours"]).code(2);
    assert!(
        !r.read(".releaseops/environments/prod.yaml")
            .contains("soak")
    );
    r.run(&[
        "env",
        "set",
        "prod",
        "requires_eval=true",
        "eval_suites=[smoke]",
        "soak_hours=24",
    ])
    .ok();
    let env = r.read(".releaseops/environments/prod.yaml");
    assert!(
        env.contains("soak_hours: 24") && env.contains("- smoke"),
        "{env}"
    );
    let j = parse(&r.run(&["--json", "history", "--event", "env", "-n", "1"]));
    let text = j.to_string();
    assert!(
        text.contains("env_policy") && text.contains("soak_hours"),
        "{text}"
    );
    // The same again changes nothing and records nothing.
    let o = r.run(&["env", "set", "prod", "soak_hours=24"]);
    o.code(0);
    assert!(o.stdout.contains("Unchanged"), "{}", o.stdout);
    // Removing a key.
    r.run(&["env", "set", "prod", "soak_hours="]).ok();
    assert!(
        !r.read(".releaseops/environments/prod.yaml")
            .contains("soak")
    );
}

#[test]
fn skip_gates_says_which_gates_it_bypasses() {
    let r = released();
    let help = r.run(&["promote", "--help"]).ok().to_string();
    for gate in ["eval", "approval", "soak", "freeze", "agent"] {
        assert!(help.contains(gate), "{gate}: {help}");
    }
    r.run(&["promote", "support-agent", "1.0.0", "staging"])
        .ok();
    r.run(&["env", "set", "prod", "requires_approval=true"])
        .ok();
    let o = r.run(&[
        "promote",
        "support-agent",
        "1.0.0",
        "prod",
        "--skip-gates",
        "-r",
        "incident",
    ]);
    o.code(0);
    assert!(o.stdout.contains("Bypassed: approval"), "{}", o.stdout);
}

#[test]
fn every_argument_and_option_has_help() {
    let o = releaseops().args(["--help"]).output().expect("runs");
    assert!(o.status.success());
    // Walk every subcommand's help: no option or argument without a line.
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let mut args = path.clone();
        args.push("--help".into());
        let out = releaseops().args(&args).output().expect("runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        seen += 1;
        let mut section = "";
        for line in text.lines() {
            if line.ends_with(':') && !line.starts_with(' ') {
                section = line;
                continue;
            }
            if section == "Commands:" {
                let name = line.split_whitespace().next().unwrap_or("");
                if !name.is_empty() && name != "help" && line.starts_with("  ") {
                    let mut next = path.clone();
                    next.push(name.to_string());
                    queue.push(next);
                }
            }
            if (section == "Options:" || section == "Arguments:") && line.starts_with("  ") {
                let trimmed = line.trim();
                // A line of its own that names an option or argument with
                // nothing after it is an item without help (clap puts help
                // on the same line when it fits, or indented below).
                let bare = (trimmed.starts_with('-') || trimmed.starts_with('<'))
                    && !trimmed.contains("  ")
                    && !line.starts_with("          ");
                if bare {
                    let idx = text.find(line).unwrap_or(0);
                    let after = text[idx + line.len()..].lines().nth(1).unwrap_or("");
                    assert!(
                        after.starts_with("          "),
                        "`releaseops {}` has no help for {trimmed}:\n{text}",
                        path.join(" ")
                    );
                }
            }
        }
    }
    assert!(seen > 30, "walked {seen} help pages");
}

// ----- 11. coming from promptfoo -----------------------------------------

#[test]
fn promptfoo_configs_become_suites_and_what_cannot_be_translated_is_listed() {
    let r = Repo::initialized();
    let fixtures = crate::common::workspace().join("testdata/promptfoo");
    for name in ["support.yaml", "translation.yaml"] {
        let text = std::fs::read_to_string(fixtures.join(name)).expect("fixture");
        r.write(name, &text);
    }
    let o = r.run(&[
        "--json",
        "eval",
        "import",
        "promptfoo",
        "support.yaml",
        "--suite",
        "support",
    ]);
    o.code(0);
    let j = parse(&o);
    assert_eq!(j["cases"], 5, "{j}");
    let listed: Vec<(String, String)> = j["untranslated"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|u| {
            (
                u["test"].as_str().unwrap_or("").to_string(),
                u["what"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in [
        ("Exact answer", "python"),
        ("Only code checks", "javascript"),
        ("Only code checks", "test"),
        ("From a file", "vars.context"),
    ] {
        assert!(
            listed.iter().any(|(t, w)| t == want.0 && w == want.1),
            "{want:?} not listed: {listed:?}"
        );
    }
    let suite = r.read(".releaseops/evals/support.yaml");
    for want in [
        "greets_by_name-1",
        "greets_by_name-2",
        "company: Acme",
        "type: json_schema",
        "provider: openai",
        "gpt-4.1-mini",
        "pass_mark: 0.8",
        "weight: 2",
        "case_sensitive: false",
        "max_latency_ms",
        "max_cost",
        "pattern: ^Hello",
    ] {
        assert!(suite.contains(want), "{want} missing:\n{suite}");
    }
    // The text output lists them too; an existing suite is never overwritten.
    let o = r.run(&[
        "eval",
        "import",
        "promptfoo",
        "translation.yaml",
        "--suite",
        "translation",
    ]);
    o.code(0);
    assert!(o.stdout.contains("Imported 2 case(s)"), "{}", o.stdout);
    assert!(
        o.stdout.contains("Not translated (1)") && o.stdout.contains("javascript"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("gpt-4o-mini"), "{}", o.stdout);
    r.run(&[
        "eval",
        "import",
        "promptfoo",
        "translation.yaml",
        "--suite",
        "translation",
    ])
    .code(1);
    r.write(
        "nothing.yaml",
        "tests:\n- vars: {a: 1}\n  assert: [{type: javascript, value: 'true'}]\n",
    );
    let o = r.run(&[
        "eval",
        "import",
        "promptfoo",
        "nothing.yaml",
        "--suite",
        "n",
    ]);
    o.code(1);
    assert!(!r.path().join(".releaseops/evals/n.yaml").exists());
    r.write("broken.yaml", "tests: [");
    r.run(&["eval", "import", "promptfoo", "broken.yaml"])
        .code(2);
    r.run(&["eval", "import", "promptfoo", "missing.yaml"])
        .code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_promptfoo_suite_runs_and_judges_as_promptfoo_would() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"choices": [{"message": {"content": "Hello! Thank you. Your order: {\"order_id\": 42, \"status\": \"shipped\"}"}}]})))
        .mount(&server)
        .await;
    let mut r = Repo::initialized();
    r.write("prompts/q.md", "Answer {{ question }}");
    r.write(
        "promptfooconfig.yaml",
        "prompts: ['Answer {{question}}']\nproviders: [openai:gpt-4o-mini]\ntests:\n- description: passes\n  vars: {question: order}\n  assert:\n  - {type: icontains, value: HELLO}\n  - {type: contains, value: Thank you}\n  - {type: contains-json}\n  - {type: regex, value: 'order_id.: 4\\d'}\n  - {type: contains-all, value: [order, status]}\n- description: fails on case\n  vars: {question: order}\n  assert:\n  - {type: contains, value: HELLO}\n- description: fails on equals\n  vars: {question: order}\n  assert:\n  - {type: equals, value: pong}\n",
    );
    r.run(&["eval", "import", "promptfoo", "promptfooconfig.yaml"])
        .ok();
    r.run(&[
        "bundle",
        "create",
        "a",
        "-a",
        "user=file:prompts/q.md",
        "-m",
        "gpt-4o-mini",
    ])
    .ok();
    r.env.push(("OPENAI_BASE_URL".into(), server.uri()));
    r.env.push(("OPENAI_API_KEY".into(), "sk-test".into()));
    let o = r.run(&["--json", "eval", "run", "promptfoo", "a"]);
    let j = parse(&o);
    let passed: Vec<(String, bool)> = j["report"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["case_id"].as_str().unwrap_or("").to_string(),
                c["passed"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        passed,
        vec![
            ("passes".to_string(), true),
            ("fails_on_case".to_string(), false),
            ("fails_on_equals".to_string(), false)
        ],
        "{j}"
    );
}

// ----- 4. verdicts people can predict -------------------------------------

#[test]
fn a_run_where_everything_passed_is_pass_at_any_bar() {
    let r = released();
    // The scaffold, as `eval create` writes it, with an agent that greets.
    r.run(&["eval", "create", "first"]).ok();
    r.write(
        "agent.py",
        "import json, sys\nreq = json.load(sys.stdin)\nprint('Hello ' + req['input'].get('user_name', 'there'))\n",
    );
    let o = r.run(&["eval", "run", "first", "support-agent"]);
    o.code(0);
    assert!(o.stdout.contains("PASS"), "{}", o.stdout);
    // 4 of 4 at every bar.
    let cases: String = (1..=4)
        .map(|i| format!("- id: c{i}\n  input: {{say: hello}}\n  assertions: [{{type: contains, config: {{expected: hello}}}}]\n"))
        .collect();
    for bar in ["0.5", "0.8", "0.95", "1.0"] {
        r.write(
            ".releaseops/evals/four.yaml",
            &format!("id: four\npass_threshold: {bar}\ntarget: {{type: command, command: cat}}\ncases:\n{cases}"),
        );
        let o = r.run(&[
            "--json",
            "eval",
            "run",
            "four",
            "support-agent",
            "--no-save",
        ]);
        o.code(0);
        assert_eq!(
            parse(&o)["report"]["summary"]["gate_decision"],
            "PASS",
            "bar {bar}"
        );
    }
}

#[test]
fn changes_answer_json_too() {
    let r = released();
    let steps: &[&[&str]] = &[
        &[
            "bundle",
            "create",
            "b",
            "-a",
            "system=file:prompts/system.md",
            "-m",
            "gpt-4o",
        ],
        &["env", "create", "canary", "--after", "staging"],
        &["env", "set", "canary", "soak_hours=0"],
        &["promote", "support-agent", "1.0.0", "staging"],
        &[
            "approve",
            "support-agent",
            "1.0.0",
            "prod",
            "--actor",
            "Rita <rita@example.test>",
        ],
        &["reject", "support-agent", "1.1.0", "-r", "not this one"],
        &[
            "promote",
            "support-agent",
            "1.1.0",
            "dev",
            "--skip-gates",
            "-r",
            "test",
        ],
        &["rollback", "dev", "support-agent", "-r", "back"],
        &["eval", "create", "another"],
        &[
            "eval",
            "compare",
            "smoke",
            "-b",
            "support-agent",
            "--baseline",
            "1.0.0",
            "--candidate",
            "1.0.0",
        ],
        &["agent", "decide", "support-agent", "1.0.0", "prod"],
        &["export", "support-agent@dev", "--out", "snapshot"],
        &[
            "token",
            "new",
            "--owner",
            "CI <ci@example.test>",
            "--role",
            "viewer",
            "--file",
            "tokens.yaml",
        ],
    ];
    r.run(&["eval", "run", "smoke", "support-agent", "1.0.0"])
        .ok();
    for args in steps {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let o = r.run(&full);
        let j = parse(&o);
        assert!(j.is_object() || j.is_array(), "{args:?}: {j}");
        if o.code != 0 && o.code != 3 {
            assert!(j["error"]["message"].is_string(), "{args:?}: {j}");
        }
    }
}

// ----- what a hostile review found ----------------------------------------

#[test]
fn hostile_inputs_to_the_new_commands_are_refused_and_old_names_still_read() {
    let r = released();
    // A template never rewrites an existing store's gates.
    let o = r.run(&["init", "--template", "gated"]);
    o.code(2);
    assert!(!r.path().join("agent.py").exists());
    // Values JSON cannot hold never turn a gate off.
    for v in [
        "soak_hours=.inf",
        "soak_hours=1e999",
        "eval_min_pass_rate=.nan",
    ] {
        r.run(&["env", "set", "prod", v]).code(2);
    }
    // A version-shaped reference is still checked as a version.
    r.run(&["telemetry", "show", "support-agent@1-x/../../etc"])
        .code(2);
    // An older store whose pipeline has a version-shaped name still opens.
    let config = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &config.replace("- staging", "- staging\n- v2"),
    );
    let o = r.run(&["env", "list"]);
    o.code(0);
    assert!(o.stdout.contains("v2"), "{}", o.stdout);
    // promptfoo: templated values, numbers in lists and unknown graders are
    // listed; a config that multiplies into millions of cases is refused.
    r.write(
        "pf.yaml",
        "defaultTest:\n  options: {provider: {id: 'azure:chat:internal', config: {apiHost: proxy.internal}}}\ntests:\n- description: t\n  vars: {city: Paris}\n  assert:\n  - {type: icontains, value: '{{city}}'}\n  - {type: contains-all, value: [refund, 100]}\n  - {type: regex, value: '(?<=a)b'}\n  - {type: llm-rubric, value: polite}\n",
    );
    let j = parse(&r.run(&[
        "--json",
        "eval",
        "import",
        "promptfoo",
        "pf.yaml",
        "--suite",
        "pf",
    ]));
    let text = j["untranslated"].to_string();
    assert!(
        text.contains("template") && text.contains("azure") && text.contains("regex"),
        "{text}"
    );
    let suite = r.read(".releaseops/evals/pf.yaml");
    assert!(
        suite.contains("'100'") || suite.contains("\"100\"") || suite.contains("expected: '100'"),
        "{suite}"
    );
    assert!(
        suite.contains("gpt-4o-mini") && !suite.contains("azure"),
        "{suite}"
    );
    let big: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
    r.write(
        "bomb.yaml",
        &format!(
            "tests:\n- vars: {{a: [{0}], b: [{0}]}}\n  assert: [{{type: contains, value: x}}]\n",
            big.join(", ")
        ),
    );
    let mut cmd = r.command(&[
        "eval",
        "import",
        "promptfoo",
        "bomb.yaml",
        "--suite",
        "bomb",
    ]);
    let o = Run::from(output_within(&mut cmd, Duration::from_secs(60)));
    o.code(2);
    assert!(o.stderr.contains("more than"), "{}", o.stderr);
}
