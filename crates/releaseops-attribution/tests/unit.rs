//! Attribution on small bundles, case by case.

use releaseops_attribution::{Artifact, Assessment, BundleText, Index, Trace};
use serde_json::json;

fn support(limit: u32, policy_limit: u32) -> Index {
    Index::new(&BundleText {
        id: "support-agent".into(),
        version: "1.1.0".into(),
        prompts: vec![Artifact::new(
            "system",
            "prompts/onboarding@v1.1.0",
            &format!(
                "You are a customer support agent for Acme.\nGreet {{{{ user_name }}}} warmly.\nYou may issue refunds up to {limit} dollars using the issue_refund tool.\nNever issue refunds above 100 dollars without manager approval.\nEscalate angry customers to a human.\n"
            ),
        )],
        policies: vec![Artifact::new(
            "tools",
            "policies/tools/refunds.yaml",
            &format!(
                "tools:\n- name: issue_refund\n  allowed: true\n  conditions:\n  - field: amount\n    operator: lte\n    value: {policy_limit}\n- name: delete_account\n  allowed: false\n"
            ),
        )],
        model: None,
    })
}

fn trace(v: serde_json::Value) -> Trace {
    Trace::from_json(&v, "trace.json").expect("a trace")
}

#[test]
fn a_refund_over_the_limit_contradicts_and_names_the_rule() {
    let a = support(150, 100).explain(&trace(json!({"trace_id": "t-1", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 150, "order": "A-17"}}]})));
    let p = a.primary_influence.clone().expect("a primary influence");
    eprintln!("{}", serde_json::to_string_pretty(&a).expect("json"));
    assert_eq!(a.overall_assessment, Assessment::Contradicts);
    assert!(p.is_negated);
    assert!(
        matches!(
            p.location.as_deref(),
            Some("line 4") | Some("rule 1: issue_refund (tools[0])")
        ),
        "{p:?}"
    );
}

#[test]
fn a_small_refund_follows_the_line_that_grants_it() {
    let a = support(100, 100).explain(&trace(
        json!({"id": "t-2", "tool_calls": [{"function": "issue_refund", "args": {"amount": 40}}]}),
    ));
    let p = a.primary_influence.clone().expect("a primary influence");
    assert_eq!(p.location.as_deref(), Some("line 3"), "{a:#?}");
    assert_eq!(a.overall_assessment, Assessment::Expected);
}

#[test]
fn a_denied_tool_contradicts_the_policy() {
    let a = support(100, 100).explain(&trace(
        json!({"action": "x", "tool_calls": [{"name": "delete_account", "arguments": {}}]}),
    ));
    assert_eq!(a.overall_assessment, Assessment::Contradicts);
    let c = a.contradiction.expect("the rule");
    assert_eq!(c.location, "rule 2: delete_account (tools[1])");
}

#[test]
fn an_escalation_in_other_words_finds_its_line() {
    let a = support(100, 100).explain(&trace(json!({"output": "I'm sorry you're so frustrated. I've passed you to one of my colleagues who will sort this out."})));
    let p = a.primary_influence.clone().expect("a primary influence");
    assert_eq!(p.location.as_deref(), Some("line 5"), "{a:#?}");
}

#[test]
fn no_action_is_unclear_with_the_reason() {
    let a = support(100, 100).explain(&trace(json!({"trace_id": "t-3"})));
    assert_eq!(a.overall_assessment, Assessment::Unclear);
    assert!(a.assessment_reason.contains("no action"));
}
