//! Rollback walks the real deployment sequence; the history is append-only,
//! hash-chained and answers "what ran where at that moment".

use crate::common::Repo;

fn deploy_three(r: &Repo) {
    for (i, v) in ["1.0.0", "1.1.0", "1.2.0"].iter().enumerate() {
        r.run_at(
            &format!("2026-11-0{}T10:00:00Z", i + 1),
            &[
                "bundle",
                "create",
                "b",
                "-v",
                v,
                "-m",
                v,
                "--provider",
                "anthropic",
            ],
        )
        .ok();
        r.run_at(
            &format!("2026-11-0{}T11:00:00Z", i + 1),
            &["promote", "b", v, "dev"],
        )
        .ok();
    }
}

#[test]
fn rollback_walks_back_through_earlier_rollbacks_and_refuses_no_ops() {
    let r = Repo::initialized();
    deploy_three(&r);
    let j = r.run(&["--json", "rollback", "dev", "b"]).json();
    assert_eq!(
        (j["from"].as_str(), j["to"].as_str()),
        (Some("1.2.0"), Some("1.1.0"))
    );
    // A second rollback goes further back, not to the same place.
    let j = r.run(&["--json", "rollback", "dev", "b"]).json();
    assert_eq!(
        (j["from"].as_str(), j["to"].as_str()),
        (Some("1.1.0"), Some("1.0.0"))
    );
    let o = r.run(&["rollback", "dev", "b"]);
    o.code(1);
    assert!(o.stderr.contains("0 earlier version(s)"), "{}", o.stderr);
    // No roll-forward through rollback, and no no-op.
    let o = r.run(&["rollback", "dev", "b", "--to", "1.2.0"]);
    o.code(1);
    assert!(
        o.stderr.contains("only after versions since rolled back"),
        "{}",
        o.stderr
    );
    r.run(&["rollback", "dev", "b", "--to", "1.0.0"]).code(1);
    r.run(&["rollback", "dev", "b", "--to", "7.7.7"]).code(1);
    // The versions rolled back from are failed releases.
    let inspect = r
        .run(&["bundle", "inspect", "b", "-v", "1.2.0"])
        .ok()
        .to_string();
    assert!(
        inspect.contains("failures:") && inspect.contains("rolled_back_to: 1.1.0"),
        "{inspect}"
    );
    r.run(&["history", "verify"]).ok();
}

#[test]
fn rollback_steps_and_to_and_rejected_targets() {
    let r = Repo::initialized();
    deploy_three(&r);
    r.run(&["rollback", "dev", "b", "--steps", "5"]).code(1);
    r.run(&["reject", "b", "1.1.0", "--reason", "bad"]).ok();
    // --steps skips a rejected version; --to refuses it.
    let j = r
        .run(&["--json", "rollback", "dev", "b", "--steps", "1"])
        .json();
    assert_eq!(j["to"], "1.0.0");
    let r = Repo::initialized();
    deploy_three(&r);
    let j = r
        .run(&["--json", "promote", "rollback", "dev", "b", "--to", "1.0.0"])
        .json();
    assert_eq!(j["to"], "1.0.0");
    r.run(&["rollback", "prod", "b"]).code(1);
}

#[test]
fn env_list_at_answers_what_ran_where_at_a_moment() {
    let r = Repo::initialized();
    deploy_three(&r);
    r.run_at("2026-11-04T09:00:00Z", &["rollback", "dev", "b"])
        .ok();
    let at = |t: &str| {
        r.run(&["--json", "env", "list", "--at", t]).json()["environments"][0]["bundles"][0]["version"].clone()
    };
    assert_eq!(at("2026-11-01T12:00:00Z"), "1.0.0");
    assert_eq!(at("2026-11-02T12:00:00Z"), "1.1.0");
    assert_eq!(at("2026-11-03T12:00:00Z"), "1.2.0");
    assert_eq!(at("2026-11-04T12:00:00Z"), "1.1.0");
    assert_eq!(at("2026-10-01"), serde_json::Value::Null);
    r.run(&["env", "list", "--at", "last tuesday"]).code(2);
}

#[test]
fn history_filters_and_shows_every_event_with_who_and_why() {
    let r = Repo::initialized();
    deploy_three(&r);
    r.run_as(
        "Alice <a@x>",
        &["approve", "b", "1.2.0", "staging", "-c", "ok"],
    )
    .ok();
    r.run(&["reject", "b", "1.0.0", "--reason", "old"]).ok();
    let all = r.run(&["--json", "history", "-n", "100"]).json();
    let events: Vec<&str> = all
        .as_array()
        .expect("a")
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    for ev in ["bundle_create", "promote", "approve", "reject"] {
        assert!(events.contains(&ev), "{ev} missing from {events:?}");
    }
    let approvals = r.run(&["--json", "history", "--event", "approve"]).json();
    assert_eq!(approvals[0]["actor"], "Alice <a@x>");
    assert_eq!(approvals[0]["reason"], "ok");
    let dev = r
        .run(&["--json", "env", "history", "dev", "-n", "2"])
        .json();
    assert_eq!(dev.as_array().expect("a").len(), 2);
    assert_eq!(dev[0]["version"], "1.2.0");
    assert_eq!(dev[0]["from_version"], "1.1.0");
    r.run(&["history", "--event", "nonsense"]).code(2);
}

fn segment(r: &Repo) -> String {
    r.read(".releaseops/history/00000000.jsonl")
}

#[test]
fn history_verify_detects_edited_removed_reordered_and_truncated_records() {
    let r = Repo::initialized();
    deploy_three(&r);
    let good = segment(&r);
    r.run(&["history", "verify"]).ok();
    let lines: Vec<&str> = good.lines().collect();
    let cases: Vec<(&str, String)> = vec![
        (
            "edited",
            good.replacen("\"actor\":\"Test Dev", "\"actor\":\"Mallory", 1),
        ),
        (
            "removed",
            lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 2)
                .map(|(_, l)| format!("{l}\n"))
                .collect(),
        ),
        ("reordered", {
            let mut l = lines.clone();
            l.swap(1, 2);
            l.iter().map(|x| format!("{x}\n")).collect()
        }),
        (
            "truncated",
            lines[..lines.len() - 1]
                .iter()
                .map(|x| format!("{x}\n"))
                .collect(),
        ),
    ];
    for (what, text) in cases {
        r.write(".releaseops/history/00000000.jsonl", &text);
        let o = r.run(&["history", "verify"]);
        assert_eq!(o.code, 4, "{what} not detected:\n{}", o.stdout);
        r.write(".releaseops/history/00000000.jsonl", &good);
    }
    // An environment changed behind the history's back is caught too.
    let dev = r.read(".releaseops/environments/dev.yaml");
    r.write(
        ".releaseops/environments/dev.yaml",
        &dev.replace("b: 1.2.0", "b: 1.0.0"),
    );
    let o = r.run(&["history", "verify"]);
    o.code(4);
    assert!(
        o.stdout
            .contains("maps b to 1.0.0, but the history says 1.2.0"),
        "{}",
        o.stdout
    );
}

#[test]
fn history_spans_segments_and_stays_verifiable() {
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
    // Each approve/reject pair is two records; cross the 1,000-record segment
    // boundary with a generated history, then keep appending through the CLI.
    r.extend_history(1005);
    r.run(&["history", "verify"]).ok();
    r.run(&["promote", "b", "1.0.0", "dev"]).ok();
    let v = r.run(&["--json", "history", "verify"]).json();
    assert_eq!(
        (
            v["ok"].as_bool(),
            v["records"].as_u64(),
            v["segments"].as_u64()
        ),
        (Some(true), Some(1006), Some(2))
    );
    assert_eq!(
        r.run(&["--json", "history", "-n", "1"]).json()[0]["seq"],
        1006
    );
}
