//! The decision agent through the real binary: decisions are remembered and
//! committed, outcomes teach it, bad input changes nothing.

use crate::common::Repo;
use serde_json::Value;

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).expect("JSON output")
}

fn decide(r: &Repo, context: &str) -> Value {
    r.write("ctx.json", context);
    json(
        r.run(&["--json", "agent", "decide", "--context", "ctx.json"])
            .ok(),
    )
}

const RISKY_FRIDAY: &str = r#"{"env": "prod", "feature_risk": "HIGH", "service_criticality": "HIGH",
  "day_of_week": "FRI", "hour_of_day": 16, "clash": true, "conflicting_service": "PAYMENTS-SERVICE"}"#;
const CALM_FRIDAY: &str = r#"{"env": "prod", "feature_risk": "LOW", "service_criticality": "LOW",
  "day_of_week": "FRI", "hour_of_day": 10, "evals": {"pass_rate": 0.99}}"#;

#[test]
fn decisions_are_explained_remembered_and_committed() {
    let r = Repo::initialized();
    let d = decide(&r, RISKY_FRIDAY);
    assert_eq!(d["decision_id"], "dec-000001");
    assert_eq!(d["decision"], "NO_GO");
    let factors = d["factors"].as_array().expect("factors");
    let sum: u64 = factors
        .iter()
        .map(|f| f["points"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        d["risk_score"].as_u64(),
        Some(sum),
        "the score is the sum of its factors"
    );
    assert!(
        d["red_team"]["concerns"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    assert!(d["heuristics_applied"].is_array() && d["similar_episodes"].is_array());
    assert!(
        d["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "{d}"
    );
    let calm = decide(&r, CALM_FRIDAY);
    assert_eq!(calm["decision"], "GO", "{calm}");
    assert_eq!(calm["reflection"]["outcome"], "CONFIRM");
    assert_eq!(calm["similar_episodes"][0]["id"], "dec-000001");
    assert!(r.git(&["log", "--oneline"]).contains("agent dec-000002 GO"));
    let shown = json(r.run(&["--json", "agent", "show", "dec-000001"]).ok());
    assert_eq!(shown["decision"], "NO_GO");
    let mem = json(r.run(&["--json", "agent", "memory"]).ok());
    assert_eq!(mem["decisions"], 2);
}

#[test]
fn outcomes_teach_the_agent_to_hold_calm_friday_releases() {
    let r = Repo::initialized();
    // Calm Friday releases keep going wrong here; the same releases on a
    // Monday or a Tuesday do not. With no outcomes the prior decides: GO.
    let tuesday = CALM_FRIDAY.replace("FRI", "TUE");
    let monday = CALM_FRIDAY.replace("FRI", "MON");
    let first = decide(&r, CALM_FRIDAY);
    assert_eq!(first["decision"], "GO", "{first}");
    let m = &first["incident_model"];
    assert_eq!(m["outcomes_learned"], 0);
    let prior = m["now"]["p"].as_f64().expect("p");
    assert!(
        (prior - m["prior"].as_f64().expect("prior")).abs() < 1e-9,
        "{m}"
    );
    let mut id = first["decision_id"].as_str().expect("id").to_string();
    for i in 1..=10 {
        let outcome = if i == 6 { "success" } else { "incident" };
        r.run(&["agent", "outcome", &id, outcome, "--note", "pager at 18:00"])
            .ok();
        for calm in [&tuesday, &monday] {
            let t = decide(&r, calm);
            let tid = t["decision_id"].as_str().expect("id").to_string();
            r.run(&["agent", "outcome", &tid, "success"]).ok();
        }
        id = decide(&r, CALM_FRIDAY)["decision_id"]
            .as_str()
            .expect("id")
            .to_string();
    }
    // Now it holds Friday releases for Monday, and says why in numbers.
    let d = decide(&r, CALM_FRIDAY);
    assert_eq!(d["decision"], "DELAY", "{d}");
    assert_eq!(d["delay_until"]["day"], "MON");
    let m = &d["incident_model"];
    let (now, slot) = (
        m["now"]["p"].as_f64().expect("p"),
        m["at_slot"]["p"].as_f64().expect("p"),
    );
    assert!(now > 2.0 * prior && slot < now / 2.0, "{m}");
    assert!(m["now"]["low"].as_f64() <= Some(now) && m["now"]["high"].as_f64() >= Some(now));
    assert_eq!(m["cheapest"], "DELAY");
    let cost = |a: &str| {
        m["options"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["action"] == a))
            .and_then(|o| o["expected"].as_f64())
            .expect("a cost")
    };
    assert!(
        cost("DELAY") < cost("GO") && cost("DELAY") < cost("NO_GO"),
        "{m}"
    );
    assert_eq!(m["drivers"][0]["feature"], "day_of_week=FRI", "{m}");
    assert!(m["drivers"][0]["weight"].as_f64() > Some(0.0));
    // The human version says the same.
    let run = r.run(&["agent", "decide", "--context", "ctx.json"]);
    let text = run.ok();
    assert!(
        text.contains("P(incident) now") && text.contains("expected cost: GO"),
        "{text}"
    );
    assert!(text.contains("day_of_week=FRI"), "{text}");
    // What it learned, in words: a Friday rule with its evidence.
    let hs = json(r.run(&["--json", "agent", "heuristics"]).ok());
    let friday = hs
        .as_array()
        .expect("list")
        .iter()
        .find(|h| h["when"] == serde_json::json!({"day_of_week": "FRI"}))
        .expect("a Friday heuristic");
    assert_eq!(friday["recommendation"], "DELAY");
    assert!(
        friday["confidence"].as_f64().unwrap_or(0.0) >= 0.6,
        "{friday}"
    );
    assert!(
        friday["supporting_episodes"]
            .as_array()
            .is_some_and(|e| e.len() >= 5)
    );
    assert_eq!(friday["status"], "active");
    let rate = &friday["incident_rate"];
    assert!(
        rate["low"].as_f64() > Some(0.5) && rate["high"].as_f64() <= Some(1.0),
        "{friday}"
    );
    // The model that decides agrees with the rule.
    assert!(friday["model_rate"].as_f64() > Some(0.2), "{friday}");
    let table = r.run(&["agent", "heuristics"]);
    assert!(table.ok().contains("active"), "{}", table.stdout);
    // Nothing learned says the change itself is risky.
    assert!(
        hs.as_array()
            .expect("list")
            .iter()
            .all(|h| h["recommendation"] != "NO_GO"),
        "{hs}"
    );
    // A calm Tuesday is still a GO: the lesson is about Fridays.
    assert_eq!(decide(&r, &tuesday)["decision"], "GO");
}

#[test]
fn bad_input_is_refused_and_memory_is_unchanged() {
    let r = Repo::initialized();
    decide(&r, CALM_FRIDAY);
    for (context, field) in [
        (
            r#"{"env": "prod", "feature_risk": "EXTREME", "day_of_week": "MON", "hour_of_day": 10}"#,
            "feature_risk",
        ),
        (
            r#"{"env": "prod", "day_of_week": "MON", "hour_of_day": 10}"#,
            "feature_risk",
        ),
        (
            r#"{"env": "prod", "feature_risk": "LOW", "day_of_week": "MON", "hour_of_day": 25}"#,
            "hour_of_day",
        ),
        (
            r#"{"env": "prod", "feature_risk": "LOW", "day_of_week": "FUNDAY", "hour_of_day": 10}"#,
            "day_of_week",
        ),
        ("[1, 2]", "(context)"),
        ("not json", "not JSON"),
    ] {
        r.write("bad.json", context);
        let run = r.run(&["agent", "decide", "--context", "bad.json"]);
        run.code(2);
        assert!(run.stderr.contains(field), "{context}: {}", run.stderr);
    }
    r.run(&["agent", "outcome", "dec-000099", "success"])
        .code(2);
    r.run(&["agent", "outcome", "dec-000001", "meh"]).code(2);
    let mem = json(r.run(&["--json", "agent", "memory"]).ok());
    assert_eq!(
        (mem["decisions"].as_u64(), mem["outcomes"].as_u64()),
        (Some(1), Some(0))
    );

    // A record edited by hand into invalid JSON is named, and nothing is written.
    let seg = ".releaseops/agent/decisions/000000.jsonl";
    let good = r.read(seg);
    r.write(seg, &good.replace("\"decision\":\"GO\"", "\"decision\":GO"));
    let run = r.run(&["agent", "decide", "--context", "ctx.json"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("000000.jsonl line 1"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
    assert_eq!(
        r.read(".releaseops/agent/HEAD"),
        "{\"decisions\":1,\"outcomes\":0,\"reflected_at\":0,\"settled_through\":0}"
    );
    r.write(seg, &good);

    // Costs that cannot be costs, or a misspelt one: named, exit 2, nothing
    // written.
    let config = r.read(".releaseops/config.yaml");
    for (costs, named) in [
        ("{incident: -1}", "agent.costs.incident"),
        ("{delay: 0}", "agent.costs.delay"),
        ("{incidnet: 40}", "incidnet"),
    ] {
        r.write(
            ".releaseops/config.yaml",
            &format!("{config}agent:\n  costs: {costs}\n"),
        );
        let run = r.run(&["agent", "decide", "--context", "ctx.json"]);
        run.code(2);
        assert!(run.stderr.contains(named), "{costs}: {}", run.stderr);
        assert!(
            r.read(".releaseops/agent/HEAD")
                .starts_with("{\"decisions\":1,")
        );
    }
    r.write(".releaseops/config.yaml", &config);

    // A simulation model with a typo, in a field or in an interaction.
    for (model, named) in [
        (r#"{"bsae": 0.04}"#, "bsae"),
        (
            r#"{"interactions": [{"when": {"hour_bnad": "night", "clash": "true"}, "factor": 2}]}"#,
            "hour_band",
        ),
        (r#"{"base": -0.5}"#, ">= 0"),
    ] {
        r.write("model.json", model);
        let run = r.run(&[
            "agent",
            "simulate",
            "--stream",
            "50",
            "--model",
            "model.json",
        ]);
        run.code(2);
        assert!(run.stderr.contains(named), "{model}: {}", run.stderr);
    }
    assert_eq!(decide(&r, CALM_FRIDAY)["decision_id"], "dec-000002");
}

/// b@1.0.0 live in dev and staging; prod asks the agent (`mode`).
fn gated(mode: &str, extra: &str) -> Repo {
    let r = Repo::initialized();
    r.write(
        ".releaseops/environments/prod.yaml",
        &format!(
            "environment: prod\nbundle_mappings: {{}}\npromotion_policy:\n  requires_agent: {mode}\n{extra}"
        ),
    );
    r.commit_all("policy");
    r.run_at(
        "2026-11-16T08:00:00Z",
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
    r.run_at("2026-11-16T08:10:00Z", &["promote", "b", "1.0.0", "dev"])
        .ok();
    r.run_at(
        "2026-11-16T08:20:00Z",
        &["promote", "b", "1.0.0", "staging"],
    )
    .ok();
    r
}

fn gate_of(j: &Value) -> Value {
    j["gates"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["gate"] == "agent"))
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn the_agent_gate_delays_a_friday_afternoon_release_until_a_safe_window() {
    let r = gated("blocking", "");
    // Friday 2026-11-20 16:00 UTC: the first release into prod.
    let o = r.run_at(
        "2026-11-20T16:00:00Z",
        &["--json", "promote", "b", "1.0.0", "prod"],
    );
    o.code(3);
    let j = o.json();
    let g = gate_of(&j);
    assert_eq!(g["status"], "pending", "{j}");
    assert_eq!(g["passes_at"], "2026-11-23T10:00:00+00:00");
    assert!(g["reason"].as_str().unwrap_or("").contains("dec-000001"));
    assert_eq!(j["agent_decision"]["decision"], "DELAY");
    assert_eq!(j["agent_decision"]["gate"], "blocking");
    // The decision is kept though the promotion did not happen.
    let mem = json(r.run(&["--json", "agent", "memory"]).ok());
    assert_eq!(mem["decisions"], 1);
    assert!(r.git(&["log", "--oneline"]).contains("promotion blocked"));
    // Monday 10:00 it goes through, and the text output shows the decision.
    let o = r.run_at("2026-11-23T10:00:00Z", &["promote", "b", "1.0.0", "prod"]);
    let out = o.ok();
    assert!(out.contains("dec-000002 GO"), "{out}");
    assert!(out.contains("red team"), "{out}");
}

#[test]
fn a_blocking_agent_stops_a_risky_change_and_an_advisory_one_only_says_so() {
    for (mode, code) in [("blocking", 3), ("advisory", 0)] {
        // A critical service and no evaluation evidence at all: the risk is
        // the change itself, so waiting would not help.
        let r = gated(mode, "  service_criticality: HIGH\n");
        let o = r.run_at(
            "2026-11-17T10:00:00Z",
            &["--json", "promote", "b", "1.0.0", "prod"],
        );
        o.code(code);
        let j = o.json();
        let g = gate_of(&j);
        assert_eq!(j["agent_decision"]["decision"], "NO_GO", "{j}");
        if mode == "blocking" {
            assert_eq!(g["status"], "failed");
            assert_eq!(j["promoted"], false);
        } else {
            assert_eq!(g["status"], "passed");
            assert!(
                g["reason"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("advisory: agent dec-000001 says NO_GO")
            );
            assert_eq!(j["promoted"], true);
        }
        // The same assessment on demand, from the store.
        let d = json(
            r.run_at(
                "2026-11-17T10:00:00Z",
                &["--json", "agent", "decide", "b", "1.0.0", "prod"],
            )
            .ok(),
        );
        assert_eq!(d["context"]["service_criticality"], "HIGH");
        assert_eq!(d["context"]["day_of_week"], "TUE");
    }
}

#[test]
fn outcomes_are_recorded_from_survival_and_from_rollbacks() {
    let r = gated("blocking", "");
    // Tuesday 10:00: 1.0.0 goes to prod on the agent's GO.
    r.run_at("2026-11-17T10:00:00Z", &["promote", "b", "1.0.0", "prod"])
        .ok();
    r.run_at(
        "2026-11-18T09:00:00Z",
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
    r.run_at("2026-11-18T09:10:00Z", &["promote", "b", "1.1.0", "dev"])
        .ok();
    r.run_at(
        "2026-11-18T09:20:00Z",
        &["promote", "b", "1.1.0", "staging"],
    )
    .ok();
    // Wednesday 11:00, 25 hours on: 1.0.0 survived the 24h watch window.
    let o = r.run_at(
        "2026-11-18T11:00:00Z",
        &["--json", "promote", "b", "1.1.0", "prod"],
    );
    let j = json(o.ok());
    assert_eq!(j["agent_decision"]["decision_id"], "dec-000002");
    // An hour later 1.1.0 is rolled back: the decision that let it in failed.
    let o = r.run_at("2026-11-18T12:00:00Z", &["--json", "rollback", "prod", "b"]);
    assert_eq!(json(o.ok())["agent_outcome"], "dec-000002");
    let mem = json(r.run(&["--json", "agent", "memory"]).ok());
    let outcome = |id: &str| {
        mem["episodes"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["id"] == id))
            .map(|e| e["outcome"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(outcome("dec-000001"), "success", "{mem}");
    assert_eq!(outcome("dec-000002"), "rolled_back", "{mem}");
    let seg = r.read(".releaseops/agent/outcomes/000000.jsonl");
    assert!(
        seg.contains("auto:survived") && seg.contains("auto:rollback"),
        "{seg}"
    );
}

#[test]
fn simulations_run_offline_and_reproducibly() {
    let r = Repo::initialized();
    let all = json(
        r.run(&["--json", "agent", "simulate", "--scenario", "all"])
            .ok(),
    );
    let decided: Vec<(String, String)> = all
        .as_array()
        .expect("list")
        .iter()
        .map(|s| {
            (
                s["scenario"].as_str().unwrap_or("").to_string(),
                s["result"]["decision"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(decided.len(), 5);
    assert!(decided.contains(&("low-risk-monday".into(), "GO".into())));
    assert!(decided.contains(&("high-risk-friday".into(), "NO_GO".into())));
    // The project's own memory is untouched.
    assert_eq!(
        json(r.run(&["--json", "agent", "memory"]).ok())["decisions"],
        0
    );
    let run = |seed: &str| {
        json(
            r.run(&[
                "--json",
                "agent",
                "simulate",
                "--stream",
                "600",
                "--seed",
                seed,
                "--windows",
                "3",
            ])
            .ok(),
        )
    };
    let (a, b) = (run("3"), run("3"));
    assert_eq!(a["report"]["total"], b["report"]["total"]);
    let total = &a["report"]["total"];
    let incidents = |who: &str| total[who]["incidents"].as_u64().expect("a count");
    assert!(incidents("agent") < incidents("always_go"), "{total}");
    r.run(&["agent", "simulate", "--scenario", "nope"]).code(2);
    r.write("m.json", r#"{"base": -1}"#);
    r.run(&["agent", "simulate", "--stream", "10", "--model", "m.json"])
        .code(2);
}

#[test]
fn dora_metrics_come_from_the_history() {
    let r = Repo::initialized();
    let run = |at: &str, args: &[&str]| {
        r.run_at(at, args).ok();
    };
    for (v, created, live) in [
        ("1.0.0", "2026-11-02T08:00:00Z", "2026-11-02T18:00:00Z"),
        ("1.1.0", "2026-11-09T08:00:00Z", "2026-11-10T08:00:00Z"),
    ] {
        run(
            created,
            &[
                "bundle",
                "create",
                "b",
                "-v",
                v,
                "-m",
                "m",
                "--provider",
                "anthropic",
            ],
        );
        run(created, &["promote", "b", v, "dev"]);
        run(created, &["promote", "b", v, "staging"]);
        run(live, &["promote", "b", v, "prod"]);
    }
    // 1.1.0 fails six hours after going live; 1.2.0 fixes forward next day.
    run("2026-11-10T14:00:00Z", &["rollback", "prod", "b"]);
    run(
        "2026-11-11T08:00:00Z",
        &[
            "bundle",
            "create",
            "b",
            "-v",
            "1.2.0",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
    );
    run("2026-11-11T08:00:00Z", &["promote", "b", "1.2.0", "dev"]);
    run(
        "2026-11-11T08:00:00Z",
        &["promote", "b", "1.2.0", "staging"],
    );
    run("2026-11-11T12:00:00Z", &["promote", "b", "1.2.0", "prod"]);
    let m = json(
        r.run_at(
            "2026-11-21T00:00:00Z",
            &["--json", "metrics", "dora", "--days", "30"],
        )
        .ok(),
    );
    assert_eq!(m["env"], "prod");
    assert_eq!(m["deployments"], 3);
    assert_eq!(m["failed_deployments"], 1);
    assert_eq!(m["change_failure_rate"], 0.333);
    assert_eq!(m["time_to_restore_hours_median"], 6.0);
    // Lead times 10 h, 24 h and 4 h.
    assert_eq!(m["lead_time_hours_median"], 10.0);
    assert_eq!(m["rework_rate"], 0.333);
    r.run(&["metrics", "dora", "--days", "0"]).code(2);
}

#[test]
fn a_declared_dependency_moving_or_another_bundle_mid_rollout_is_a_clash() {
    let r = gated("advisory", "");
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}agent:\n  depends_on:\n    b: [payments]\n"),
    );
    r.commit_all("deps");
    let decide = |at: &str| {
        json(
            r.run_at(at, &["--json", "agent", "decide", "b", "1.0.0", "prod"])
                .ok(),
        )
    };
    assert_eq!(decide("2026-11-17T10:00:00Z")["context"]["clash"], false);
    // payments moves through staging an hour before: a clash for b in prod,
    // though payments is nowhere near prod.
    r.run_at(
        "2026-11-17T11:00:00Z",
        &[
            "bundle",
            "create",
            "payments",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
    )
    .ok();
    r.run_at(
        "2026-11-17T11:00:00Z",
        &["promote", "payments", "1.0.0", "dev"],
    )
    .ok();
    r.run_at(
        "2026-11-17T11:00:00Z",
        &["promote", "payments", "1.0.0", "staging"],
    )
    .ok();
    let d = decide("2026-11-17T12:00:00Z");
    assert_eq!(d["context"]["clash"], true, "{d}");
    assert_eq!(d["context"]["conflicting_service"], "payments");
    // Outside the 2-hour window the move itself is no longer a clash, but
    // payments is still mid-rollout toward prod (in staging, not yet in
    // prod, within the 24-hour watch window): that clashes too, dependency
    // or not.
    let d = decide("2026-11-17T14:30:00Z");
    assert_eq!(d["context"]["conflicting_service"], "payments", "{d}");
    r.run_at(
        "2026-11-17T14:40:00Z",
        &[
            "bundle",
            "create",
            "search",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
    )
    .ok();
    r.run_at(
        "2026-11-17T14:40:00Z",
        &["promote", "search", "1.0.0", "dev"],
    )
    .ok();
    let d = decide("2026-11-18T11:30:00Z");
    assert_eq!(d["context"]["conflicting_service"], "search", "{d}");
    // Past the watch window of both, no clash.
    assert_eq!(decide("2026-11-18T15:00:00Z")["context"]["clash"], false);
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}agent:\n  depends_on:\n    b: ['../x']\n"),
    );
    assert_ne!(r.run(&["agent", "decide", "b", "1.0.0", "prod"]).code, 0);
}

#[test]
fn the_incident_model_reports_what_it_learned_and_how_well_it_predicted() {
    let r = Repo::initialized();
    let none = json(r.run(&["--json", "agent", "model"]).ok());
    assert_eq!(none["outcomes"], 0, "{none}");
    assert!(r.run(&["agent", "model"]).ok().contains("no outcomes yet"));
    // EU releases go well; APAC releases at night keep failing.
    let night = CALM_FRIDAY.replace("FRI", "TUE").replace(
        "\"hour_of_day\": 10",
        "\"hour_of_day\": 2, \"region\": \"apac\"",
    );
    let day = CALM_FRIDAY.replace("FRI", "TUE").replace(
        "\"hour_of_day\": 10",
        "\"hour_of_day\": 11, \"region\": \"eu\"",
    );
    for i in 0..12 {
        for (ctx, failed) in [(&night, i % 4 != 0), (&day, false)] {
            let d = decide(&r, ctx);
            let id = d["decision_id"].as_str().expect("id").to_string();
            r.run(&[
                "agent",
                "outcome",
                &id,
                if failed { "incident" } else { "success" },
            ])
            .ok();
        }
    }
    let m = json(r.run(&["--json", "agent", "model"]).ok());
    assert_eq!(m["outcomes"], 24, "{m}");
    assert!(m["weights_learned"].as_u64().unwrap_or(0) > 0, "{m}");
    let cal = &m["calibration"];
    assert_eq!(cal["outcomes"], 24);
    let brier = cal["brier"].as_f64().expect("brier");
    let rules = m["rules_calibration"]["brier"].as_f64().expect("rules");
    assert!(
        brier < rules,
        "the model predicts better than the rules alone: {m}"
    );
    let bins = cal["reliability"].as_array().expect("bins");
    assert!(!bins.is_empty() && bins.iter().all(|b| b["count"].as_u64() > Some(0)));
    let run = r.run(&["agent", "model"]);
    let text = run.ok();
    assert!(
        text.contains("24 outcome(s)") && text.contains("Brier score"),
        "{text}"
    );
}

/// The model the decisions use is kept in a cache beside the memory image;
/// the records stay the truth.
#[test]
fn the_models_cache_is_only_a_cache_and_the_records_are_the_truth() {
    let r = Repo::initialized();
    let night = CALM_FRIDAY.replace("FRI", "TUE").replace(
        "\"hour_of_day\": 10",
        "\"hour_of_day\": 2, \"region\": \"apac\"",
    );
    for i in 0..6 {
        let d = decide(&r, &night);
        let id = d["decision_id"].as_str().expect("id").to_string();
        let outcome = if i == 0 { "success" } else { "incident" };
        r.run(&["agent", "outcome", &id, outcome]).ok();
    }
    let p = |d: &Value| d["incident_model"]["now"]["p"].as_f64().expect("p");
    let learned = decide(&r, &night);
    assert_eq!(
        learned["incident_model"]["outcomes_learned"], 6,
        "{learned}"
    );
    let cache = ".releaseops/agent/.cache/model.bin";
    assert!(r.path().join(cache).exists());
    // Never committed.
    assert!(!r.git(&["ls-files", ".releaseops/agent"]).contains(".cache"));
    // Gone or garbage: refitted from the records, the same numbers.
    for damage in [None, Some("not a model")] {
        match damage {
            None => std::fs::remove_file(r.path().join(cache)).expect("remove"),
            Some(text) => r.write(cache, text),
        }
        let again = decide(&r, &night);
        assert!(
            (p(&again) - p(&learned)).abs() < 1e-9,
            "{again} vs {learned}"
        );
    }
    // A link in its place is neither read nor written through.
    let elsewhere = r.path().join("elsewhere.bin");
    std::fs::copy(r.path().join(cache), &elsewhere).expect("copy");
    let kept = std::fs::read(&elsewhere).expect("read");
    std::fs::remove_file(r.path().join(cache)).expect("remove");
    std::os::unix::fs::symlink(&elsewhere, r.path().join(cache)).expect("link");
    let linked = decide(&r, &night);
    assert!(
        (p(&linked) - p(&learned)).abs() < 1e-9,
        "{linked} vs {learned}"
    );
    assert_eq!(std::fs::read(&elsewhere).expect("read"), kept);
    assert!(
        !std::fs::symlink_metadata(r.path().join(cache))
            .expect("cache")
            .file_type()
            .is_symlink()
    );
    // Nor is the memory image's (a decision appends to it in place).
    let rows = ".releaseops/agent/.cache/memory.rows";
    let outside = r.path().join("rows.bin");
    std::fs::copy(r.path().join(rows), &outside).expect("copy");
    let kept = std::fs::read(&outside).expect("read");
    std::fs::remove_file(r.path().join(rows)).expect("remove");
    std::os::unix::fs::symlink(&outside, r.path().join(rows)).expect("link");
    decide(&r, &night);
    assert_eq!(std::fs::read(&outside).expect("read"), kept);
    // A hand edit of an outcome changes what the model learned: the cache
    // does not hide it.
    let seg = ".releaseops/agent/outcomes/000000.jsonl";
    let text = r.read(seg);
    r.write(seg, &text.replace("\"incident\"", "\"success\""));
    let edited = decide(&r, &night);
    assert!(p(&edited) < p(&learned) / 2.0, "{edited} vs {learned}");
}
