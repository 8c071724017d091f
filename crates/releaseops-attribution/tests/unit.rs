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

fn travel() -> Index {
    one_policy(
        "You are a travel assistant.\nBook economy class for any flight under 6 hours of scheduled flying time.\nDo not book basic economy fares for trips longer than 2 days.\nHome internet can be claimed up to 50 dollars a month.\nBefore cancelling a non-refundable booking, tell the traveler the penalty amount and get an explicit yes.\nReminder messages must not include the reason for the visit.\n",
        "constraints:\n- type: meal_per_diem\n  max_amount: 90\n  description: Daily meal allowance is 90 USD.\n",
    )
}

fn locations(a: &releaseops_attribution::Attribution) -> Vec<(String, String)> {
    a.influences
        .iter()
        .map(|i| {
            (
                i.location.clone().unwrap_or_default(),
                i.effect.as_str().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_duration_in_hours_is_compared_with_a_limit_in_days_in_days() {
    let a = travel().explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "book_flight", "arguments": {"cabin_class": "basic_economy", "scheduled_duration_hours": 30}}]})));
    let l = locations(&a);
    // 30 hours is 1.25 days: not longer than 2 days, so line 3 does not apply.
    assert!(
        !l.iter().any(|(loc, e)| loc == "line 3" && e == "breaks"),
        "{l:?}"
    );
    let a = travel().explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "book_flight", "arguments": {"cabin_class": "basic_economy", "trip_duration_hours": 72}}]})));
    let l = locations(&a);
    assert!(
        l.iter().any(|(loc, e)| loc == "line 3" && e == "breaks"),
        "{l:?}"
    );
}

#[test]
fn a_limit_granted_to_another_subject_is_not_broken() {
    let a = travel().explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "request_approval", "arguments": {"report_id": "ER-1", "total": 2180}}]})));
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    let a = travel().explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "file_expense", "arguments": {"category": "home internet", "amount": 80}}]})));
    let l = locations(&a);
    assert!(
        l.iter().any(|(loc, e)| loc == "line 4" && e == "breaks"),
        "{l:?}"
    );
}

#[test]
fn a_penalty_amount_is_not_the_amount_of_a_meal_allowance() {
    let a = travel().explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "cancel_booking", "arguments": {"penalty_amount": 140}}]})));
    let l = locations(&a);
    assert!(
        !l.iter()
            .any(|(loc, e)| loc.contains("meal_per_diem") && e == "breaks"),
        "{l:?}"
    );
    let a = travel().explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "file_expense", "arguments": {"meal_amount": 140}}]})));
    let l = locations(&a);
    assert!(
        l.iter()
            .any(|(loc, e)| loc.contains("meal_per_diem") && e == "breaks"),
        "{l:?}"
    );
}

#[test]
fn the_users_yes_is_the_consent_a_step_asks_for_and_nothing_else() {
    let call = json!([{"name": "cancel_booking", "arguments": {"booking_ref": "H-1", "refundable": false, "penalty_amount": 140}}]);
    let yes = travel().explain(&trace(json!({"trace_id": "t", "input": "Yes, go ahead, I understand I lose the $140.", "tool_calls": call})));
    let l = locations(&yes);
    assert!(
        l.iter().any(|(loc, e)| loc == "line 5" && e == "follows"),
        "{l:?}"
    );
    let no = travel().explain(&trace(
        json!({"trace_id": "t", "input": "Cancel the Denver hotel.", "tool_calls": call}),
    ));
    let l = locations(&no);
    assert!(
        l.iter().any(|(loc, e)| loc == "line 5" && e == "breaks"),
        "{l:?}"
    );
}

#[test]
fn a_refusal_is_not_explained_by_a_prohibition_on_something_else() {
    let a = travel().explain(&trace(json!({"trace_id": "t", "input": "Can I book a checkup today?", "output": "Sorry, I can't put a routine visit into a same-day slot."})));
    let l = locations(&a);
    assert!(
        !l.iter().any(|(loc, e)| loc == "line 6" && e == "follows"),
        "{l:?}"
    );
}

fn expenses() -> Index {
    one_policy(
        "You are an expense assistant.\nIf a receipt is lost, the employee can file an affidavit for expenses up to 75 dollars.\nAlcohol is reimbursable only at client meals, and never more than 2 drinks per attendee.\nCancellations with less than 24 hours notice incur a fee.\n",
        "constraints:\n- type: alcohol_limit\n  max_value: 2\n  description: At most 2 alcoholic drinks per attendee.\n",
    )
}

/// A bundle of one system prompt and no policy.
/// A bundle of one prompt and one safety policy.
fn one_policy(prompt: &str, safety: &str) -> Index {
    Index::new(&BundleText {
        id: "agent".into(),
        version: "1".into(),
        prompts: vec![Artifact::new("system", "prompts/agent@1", prompt)],
        policies: vec![Artifact::new("safety", "policies/safety.yaml", safety)],
        model: None,
    })
}

fn prompt_only(id: &str, text: &str) -> Index {
    Index::new(&BundleText {
        id: id.into(),
        version: "1".into(),
        prompts: vec![Artifact::new("system", &format!("prompts/{id}@1"), text)],
        policies: vec![],
        model: None,
    })
}

fn effect_at(a: &releaseops_attribution::Attribution, at: &str) -> Option<String> {
    locations(a)
        .into_iter()
        .find(|(loc, _)| loc.contains(at))
        .map(|(_, e)| e)
}

#[test]
fn a_limit_per_attendee_is_held_to_the_total_over_the_attendees() {
    let call = |drinks: u32| {
        trace(
            json!({"trace_id": "t", "tool_calls": [{"name": "create_expense_line", "arguments": {"category": "alcohol", "drinks": drinks, "attendees": 3, "linked_to": "client_meal"}}]}),
        )
    };
    // 6 drinks for 3 attendees is 2 each: within both the line and the constraint.
    let a = expenses().explain(&call(6));
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    assert_eq!(
        effect_at(&a, "line 3").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    assert_eq!(
        effect_at(&a, "alcohol_limit").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    // A number that names an attendee is not their count.
    let a = expenses().explain(&trace(
        json!({"trace_id": "t", "tool_calls": [{"name": "create_expense_line", "arguments": {"attendee_badge_id": 5, "category": "alcohol", "drinks": 9, "attendees": 3}}]}),
    ));
    assert_eq!(effect_at(&a, "line 3").as_deref(), Some("breaks"), "{a:#?}");
    // 9 for 3 is 3 each: both are broken.
    let a = expenses().explain(&call(9));
    assert_eq!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    assert_eq!(effect_at(&a, "line 3").as_deref(), Some("breaks"), "{a:#?}");
    assert_eq!(
        effect_at(&a, "alcohol_limit").as_deref(),
        Some("breaks"),
        "{a:#?}"
    );
}

#[test]
fn a_limit_on_a_condition_the_trace_does_not_show_is_not_broken() {
    let filed = |receipt: &str| {
        trace(
            json!({"trace_id": "t", "tool_calls": [{"name": "create_expense_line", "arguments": {"amount": 84, "receipt": receipt}}]}),
        )
    };
    let a = expenses().explain(&filed("bistro.pdf"));
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("out_of_scope"),
        "{a:#?}"
    );
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    // The condition in the trace: the limit holds.
    let a = expenses().explain(&filed("lost, affidavit instead"));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn a_number_in_a_reply_on_another_subject_is_not_held_to_a_limit() {
    let a = expenses().explain(&trace(json!({"trace_id": "t", "input": "How often can she take it?", "output": "Every 6 to 8 hours, with food."})));
    assert_ne!(
        effect_at(&a, "line 4").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    let a = expenses().explain(&trace(json!({"trace_id": "t", "input": "What if I cancel my booking now?", "output": "Your cancellation is 8 hours before the visit, so the fee applies."})));
    // On its subject, the same kind of number is held to the line's limit.
    assert_eq!(
        effect_at(&a, "line 4").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
}

#[test]
fn a_refusal_in_other_words_finds_the_prohibition_through_wordnet_senses() {
    let index = prompt_only(
        "expenses",
        "You are an expense assistant.\nReimbursements are paid in the next payroll run after approval.\nDo not promise a specific payment date.\nBe concise.\n",
    );
    // Of line 3's words only "payment": "particular" is "specific" and
    // "day" is "date" through their WordNet senses alone.
    let a = index.explain(&trace(json!({"trace_id": "t", "input": "Can you guarantee it lands by Friday?", "output": "Sorry, I can't commit to a particular day for the payment."})));
    let p = a.primary_influence.clone().expect("a primary influence");
    assert_eq!(p.location.as_deref(), Some("line 3"), "{a:#?}");
    assert_eq!(p.effect.as_str(), "follows", "{a:#?}");
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
}

#[test]
fn a_constraint_a_refusal_keeps_is_not_ranked_down_as_a_tool_rule_is() {
    let index = one_policy(
        "You are an expense assistant.\nSoftware bought for work must go through procurement; do not file it as a personal expense.\n",
        "constraints:\n- type: no_gift_cards\n  description: Gift cards and other cash equivalents are never reimbursed.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "input": "I bought gift cards for the interns. Which category do I file these under?", "output": "I'm afraid these can't be reimbursed: gift cards are treated like cash."})));
    let p = a.primary_influence.clone().expect("a primary influence");
    assert_eq!(
        p.location.as_deref(),
        Some("rule 1: no_gift_cards (constraints[0])"),
        "{a:#?}"
    );
}

#[test]
fn a_limit_by_tier_is_the_one_whose_place_the_trace_names() {
    let index = prompt_only(
        "travel",
        "You are a travel assistant.\nHotel rates are capped at 180 dollars a night in standard cities and 275 dollars a night in high-cost cities (New York, London, Tokyo).\nBook no more than 5 nights at one hotel.\n",
    );
    let book = |city: &str, rate: u32| {
        index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "book_hotel", "arguments": {"city": city, "nights": 3, "nightly_rate": rate}}]})))
    };
    // The rate, not the count of nights, is what "dollars a night" caps.
    let a = book("Chicago", 229);
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    assert_eq!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    // Line 3 is kept, but on the nights: it does not allow the rate, so the
    // bundle is not said to contradict itself.
    assert_eq!(
        effect_at(&a, "line 3").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    assert!(a.followed.is_none(), "{a:#?}");
    let a = book("Chicago", 150);
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    let a = book("New York", 229);
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    let a = book("Tokyo", 300);
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn an_action_that_uses_what_a_line_says_to_check_needs_the_check_first() {
    let index = prompt_only(
        "travel",
        "You are a travel assistant.\nCheck the approval ID with the approvals tool; do not take the traveler's word for it.\nBook economy class for short flights.\n",
    );
    let book = serde_json::json!({"name": "book_flight", "arguments": {"cabin_class": "economy", "approval_id": "TR-1"}});
    let check =
        serde_json::json!({"name": "check_travel_approval", "arguments": {"approval_id": "TR-1"}});
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [book]})));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    assert_eq!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    let a = index.explain(&trace(
        json!({"trace_id": "t", "tool_calls": [check, book]}),
    ));
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    // A booking that uses no approval is not held to the check.
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "book_flight", "arguments": {"cabin_class": "economy"}}]})));
    assert_ne!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn a_margin_over_another_quantity_is_held_to_the_difference() {
    let index = prompt_only(
        "travel",
        "You are a travel assistant.\nBook the nonstop flight if it costs no more than 100 dollars above the cheapest connecting option.\nKeep replies short.\n",
    );
    let book = |fare: u32| {
        index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "book_flight", "arguments": {"stops": 0, "fare": fare, "cheapest_connecting_fare": 338}}]})))
    };
    // 412 is 74 over 338: within the margin, though far above 100 itself.
    let a = book(412);
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    let a = book(480);
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    // Without the base the margin cannot be read, and nothing is claimed.
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "book_flight", "arguments": {"stops": 0, "fare": 480}}]})));
    assert_ne!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn past_a_limit_the_action_a_line_says_to_take_then_follows_it() {
    let index = prompt_only(
        "seller",
        "You are a seller assistant.\nYou may refund up to 75 dollars in fees per request; for larger amounts, open a billing case instead.\nAssign a specialist right away when the seller was locked out.\n",
    );
    let call = |name: &str, amount: u32| {
        index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": name, "arguments": {"amount": amount}}]})))
    };
    // The case opened for 210 is what the line says to do past 75.
    let a = call("open_billing_case", 210);
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    // A refund of 210 is the granted action past its limit.
    let a = call("refund_fees", 210);
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    // With the amount only in the action's text, and a claim number beside it.
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "open_billing_case", "arguments": {"seller": "S-220931", "summary": "duplicate fees of 210 on relist"}}]})));
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "open_billing_case", "arguments": {"seller": "S-220931", "summary": "duplicate fees"}}]})));
    assert_ne!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
}

#[test]
fn a_line_whose_trailing_condition_the_trace_does_not_show_is_out_of_scope() {
    let index = prompt_only(
        "seller",
        "You are a seller assistant.\nAssign a specialist right away when the seller was locked out of the account.\n",
    );
    let assign = |note: &str| {
        index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "assign_specialist", "arguments": {"note": note}}]})))
    };
    let a = assign("listing photos look blurry");
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("out_of_scope"),
        "{a:#?}"
    );
    let a = assign("seller locked out of the account after a password change");
    assert_ne!(
        effect_at(&a, "line 2").as_deref(),
        Some("out_of_scope"),
        "{a:#?}"
    );
}

#[test]
fn abbreviations_and_sql_in_arguments_meet_the_words_a_line_spells_out() {
    let index = prompt_only(
        "oncall",
        "You are an on-call assistant.\nRead-only queries against production read replicas are allowed for debugging.\nWrite queries against production databases need an approved change ticket.\n",
    );
    let run = |target: &str, sql: &str| {
        let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "run_db_query", "arguments": {"target": target, "sql": sql}}]})));
        a.primary_influence.and_then(|p| p.location)
    };
    // `prod` is production, `db` a database, an UPDATE a write.
    assert_eq!(
        run(
            "billing-prod-primary",
            "UPDATE invoices SET status = 'void'"
        )
        .as_deref(),
        Some("line 3")
    );
    assert_eq!(
        run("orders-prod-replica-1", "SELECT status FROM orders").as_deref(),
        Some("line 2")
    );
}

#[test]
fn doing_one_of_the_things_a_prohibition_lists_breaks_it() {
    let index = prompt_only(
        "oncall",
        "You are an on-call assistant.\nNever run migrations, schema changes, or write queries against production databases without an approved change ticket.\n",
    );
    let run = |target: &str, sql: &str| {
        index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "run_db_query", "arguments": {"database": target, "query": sql}}]})))
    };
    let a = run(
        "billing-prod-primary",
        "UPDATE invoices SET status = 'void' WHERE id = 7",
    );
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    assert_eq!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    let a = run(
        "billing-prod-replica",
        "SELECT status FROM invoices WHERE id = 7",
    );
    assert_ne!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn a_constraint_holds_only_actions_about_what_it_limits() {
    let index = one_policy(
        "You are a bank assistant.\n",
        "constraints:\n- type: fee_refund_limit\n  max_amount: 25\n  description: Fee refunds are capped at 25 dollars.\n",
    );
    let call = |name: &str| {
        index.explain(&trace(json!({"trace_id": "t", "input": "Can you refund the fee?", "tool_calls": [{"name": name, "arguments": {"amount": 1800}}]})))
    };
    // A transfer's amount is not a fee refund, though the user spoke of one.
    let a = call("make_transfer");
    assert_ne!(
        effect_at(&a, "fee_refund_limit").as_deref(),
        Some("breaks"),
        "{a:#?}"
    );
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    let a = call("refund_fee");
    assert_eq!(
        effect_at(&a, "fee_refund_limit").as_deref(),
        Some("breaks"),
        "{a:#?}"
    );
}

#[test]
fn a_prohibition_with_a_condition_is_broken_only_where_the_condition_is_shown() {
    let index = prompt_only(
        "registrar",
        "You are a registrar assistant.\nNever delete a student record if the record carries a legal hold.\n",
    );
    let delete = |note: &str| {
        index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "delete_student_record", "arguments": {"student": "S-1", "note": note}}]})))
    };
    let a = delete("duplicate entry");
    assert_ne!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    let a = delete("record carries a legal hold, deleting anyway");
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn the_same_length_of_time_in_other_units_ties_a_reply_to_its_line() {
    let index = prompt_only(
        "leasing",
        "You are a leasing assistant.\nGuests may stay up to 14 nights in any 30-day period; longer stays need the guest added to the lease.\nVisitor parking passes last at most 3 days.\nBe friendly.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "input": "Can my partner stay with me for a while?", "output": "Someone can be with you for up to two weeks in a month with no paperwork; after that they go on the rental agreement."})));
    let p = a.primary_influence.clone().expect("a primary influence");
    assert_eq!(p.location.as_deref(), Some("line 2"), "{a:#?}");
    assert!(
        p.confidence_reason.contains("a length of time it states"),
        "{p:#?}"
    );
}

#[test]
fn a_limit_on_another_subject_is_not_broken_by_an_argument_that_only_shares_its_concept() {
    // "fees" and `amount` are both money, but the line caps delivery fees,
    // and a refund's amount is not a delivery fee.
    let index = prompt_only(
        "grocery",
        "You are a grocery assistant.\nDelivery fees are capped at 15 dollars per order.\nYou may refund spoiled items in full.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "refund_items", "arguments": {"order_id": "G-1", "amount": 64}}]})));
    assert_ne!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    // A delivery fee over the cap still breaks it.
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "set_delivery_fee", "arguments": {"order_id": "G-1", "delivery_fee": 22}}]})));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn a_check_with_a_person_is_not_a_tool_the_action_needs_first() {
    let index = prompt_only(
        "support",
        "You are a support agent.\nConfirm the amount with the customer.\nYou may refund up to 100 dollars.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 40}}], "output": "You confirmed 40 dollars, so I have refunded it."})));
    assert_ne!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
}

#[test]
fn two_limits_on_different_quantities_are_not_tiers_of_one() {
    let index = prompt_only(
        "support",
        "You are a support agent.\nYou may issue refunds up to 100 dollars within 30 days of purchase.\nKeep replies short.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 250, "days_since_purchase": 10}}]})));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    assert_eq!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 50, "days_since_purchase": 45}}]})));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 50, "days_since_purchase": 10}}]})));
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
}

#[test]
fn an_overflow_clause_that_names_the_granted_action_again_does_not_excuse_it() {
    let index = prompt_only(
        "support",
        "You are a support agent.\nYou may issue refunds up to 100 dollars; for larger refunds, escalate to a manager.\nKeep replies short.\n",
    );
    // A refund of 250 is the granted action past its limit, though the
    // overflow clause also says "refunds".
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 250}}]})));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    assert_eq!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    // Escalating 250 is what the line says to do.
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "escalate_to_manager", "arguments": {"amount": 250}}]})));
    assert_ne!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn a_limit_followed_by_over_the_phone_is_not_a_margin() {
    let index = prompt_only(
        "support",
        "You are a support agent.\nYou may issue refunds of up to 50 dollars over the phone.\nKeep replies short.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 80}}]})));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn an_if_that_means_whether_is_what_a_prohibition_forbids_not_its_condition() {
    let index = prompt_only(
        "insurance",
        "You are a claims assistant.\nNever tell a caller if their claim has a fraud flag.\nKeep replies short.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "input": "Why is my claim taking so long?", "output": "Your claim has a fraud flag, so it is on hold."})));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    assert_eq!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
}

#[test]
fn an_opening_when_possible_gates_no_limit() {
    let index = prompt_only(
        "support",
        "You are a support agent.\nWhen possible, refund up to 50 dollars to the original card.\nKeep replies short.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "refund_card", "arguments": {"amount": 80}}]})));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn a_trailing_condition_that_is_a_limit_is_read_as_the_limit() {
    let index = prompt_only(
        "support",
        "You are a support agent.\nEscalate to a manager when a customer asks for a refund that would exceed 200 dollars.\nKeep replies short.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "escalate_to_manager", "arguments": {"order": "A-1", "amount": 350}}]})));
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
}

#[test]
fn a_rate_a_night_is_held_to_the_total_over_the_nights_not_to_the_count_of_nights() {
    let index = prompt_only(
        "travel",
        "You are a travel assistant.\nHotel rates are capped at 180 dollars a night.\nKeep replies short.\n",
    );
    let book = |args: serde_json::Value| {
        index.explain(&trace(
            json!({"trace_id": "t", "tool_calls": [{"name": "book_hotel", "arguments": args}]}),
        ))
    };
    // 750 for 3 nights is 250 a night.
    let a = book(json!({"nights": 3, "hotel_total": 750}));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    let a = book(json!({"hotel_total": 750, "nights": 3}));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    let a = book(json!({"nights": 4, "hotel_total": 600}));
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{a:#?}"
    );
    // A rate named as one is read as it is.
    let a = book(json!({"nights": 3, "nightly_rate": 200}));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

/// What `line 2` of a one-line prompt says of one tool call.
fn effect_of(line: &str, tool: &str, args: serde_json::Value) -> Option<String> {
    let index = prompt_only(
        "agent",
        &format!("You are an assistant.\n{line}\nKeep replies short.\n"),
    );
    let a = index.explain(&trace(
        json!({"trace_id": "t", "tool_calls": [{"name": tool, "arguments": args}]}),
    ));
    effect_at(&a, "line 2")
}

/// As [`effect_of`], as text: "none" when the line is not among the influences.
fn says(line: &str, tool: &str, args: serde_json::Value) -> String {
    effect_of(line, tool, args).unwrap_or_else(|| "none".into())
}

/// What `line 2` of a one-line prompt says of a reply.
fn effect_of_reply(line: &str, input: &str, output: &str) -> Option<String> {
    let index = prompt_only(
        "agent",
        &format!("You are an assistant.\n{line}\nKeep replies short.\n"),
    );
    let a = index.explain(&trace(
        json!({"trace_id": "t", "input": input, "output": output}),
    ));
    effect_at(&a, "line 2")
}

#[test]
fn a_limit_outside_a_trailing_condition_the_trace_does_not_show_is_out_of_scope() {
    let line = "Issue a goodwill credit of up to 20 dollars when a delivery is late.";
    assert_ne!(
        says(
            line,
            "issue_credit",
            json!({"amount": 50, "reason": "billing error"})
        ),
        "breaks"
    );
}

#[test]
fn an_overflow_action_named_with_the_granted_words_follows_the_line() {
    let line = "You can approve refunds up to 100 dollars; for larger refunds, request approval from a manager.";
    assert_ne!(
        says(line, "request_refund_approval", json!({"amount": 250})),
        "breaks"
    );
    // The overflow in the next sentence, a few words in.
    let line = "You may refund up to 100 dollars. For anything larger, open a billing case.";
    assert_eq!(
        says(line, "open_billing_case", json!({"amount": 250})),
        "follows"
    );
}

#[test]
fn an_if_after_sharing_a_thing_is_a_condition() {
    let line = "Do not share the balance if the account is frozen.";
    assert_ne!(
        effect_of_reply(
            line,
            "What's my balance?",
            "Your account balance is 420 dollars."
        )
        .as_deref(),
        Some("breaks")
    );
    let line = "Never share records if the patient has opted out.";
    assert_ne!(
        says(
            line,
            "share_records",
            json!({"patient_id": "P-1", "recipient": "Northside Clinic"})
        ),
        "breaks"
    );
}

#[test]
fn a_margin_over_what_an_argument_names_is_read_as_a_margin() {
    let line = "You may rebook flights at no more than 150 dollars above what the customer originally paid.";
    assert_ne!(
        says(
            line,
            "rebook_flight",
            json!({"amount_originally_paid": 400, "new_fare": 480})
        ),
        "breaks"
    );
}

#[test]
fn a_limit_per_head_per_day_divides_by_both() {
    let line = "You may expense team meals at up to 40 dollars per attendee per day.";
    assert_eq!(
        says(
            line,
            "submit_expense",
            json!({"amount": 100, "attendees": 3, "days": 1})
        ),
        "follows"
    );
    assert_eq!(
        says(
            line,
            "submit_expense",
            json!({"amount": 300, "attendees": 3, "days": 2})
        ),
        "breaks"
    );
}

#[test]
fn a_duration_limited_per_year_is_read_against_the_duration() {
    let line = "Managers may approve up to 10 days of leave per year.";
    assert_eq!(
        says(
            line,
            "approve_leave",
            json!({"employee_id": "E-7", "days": 12})
        ),
        "breaks"
    );
}

#[test]
fn a_rate_per_week_converts_a_count_of_days() {
    let line = "Car rentals may be booked at up to 300 dollars a week.";
    assert_eq!(
        says(
            line,
            "book_car_rental",
            json!({"total_price": 900, "days": 14})
        ),
        "breaks"
    );
    assert_eq!(
        says(
            line,
            "book_car_rental",
            json!({"total_price": 500, "days": 14})
        ),
        "follows"
    );
}

#[test]
fn a_check_with_a_system_named_for_people_is_still_a_check() {
    let line = "Verify the employee ID using the employee directory.";
    assert_eq!(
        says(
            line,
            "grant_access",
            json!({"employee_id": "E-1", "system": "vpn"})
        ),
        "breaks"
    );
}

#[test]
fn if_asked_is_a_condition() {
    let line = "If asked, you may extend deadlines by up to 7 days.";
    let effect = effect_of(line, "extend_deadline", json!({"days": 9}));
    assert_ne!(effect.as_deref(), Some("breaks"));
}

#[test]
fn a_rate_per_unit_of_time_is_read_with_the_right_count() {
    // Less than a day is not a fraction of one.
    let line = "Parking is reimbursed up to 30 dollars a day.";
    assert_eq!(
        says(line, "reimburse_parking", json!({"amount": 12, "hours": 4})),
        "follows"
    );
    // The count in the rate's own unit, wherever it stands.
    let line = "Hotels are capped at 180 dollars a night.";
    assert_eq!(
        says(
            line,
            "book_hotel",
            json!({"hotel_total": 720, "days": 4, "nights": 3})
        ),
        "breaks"
    );
    // A duration per unit of time.
    let line = "Employees may work remotely up to 2 days a week.";
    assert_eq!(
        says(line, "remote_work", json!({"weeks": 2, "days": 3})),
        "follows"
    );
    assert_eq!(
        says(line, "remote_work", json!({"weeks": 1, "days": 3})),
        "breaks"
    );
    // Per day and per head, in that order.
    let line = "Meals up to 40 dollars per day per attendee.";
    assert_eq!(
        says(
            line,
            "expense_meals",
            json!({"meal_total": 1200, "days": 3, "attendees": 10})
        ),
        "follows"
    );
}

#[test]
fn a_margin_is_the_phrase_after_its_word_not_the_clause_after_it() {
    let line = "Agents may refund up to 50 dollars over the phone if the customer paid by card.";
    assert_eq!(
        says(line, "refund", json!({"amount": 500, "paid_by": "card"})),
        "breaks"
    );
    // The limit holds on the condition, which this trace does not show.
    assert_ne!(says(line, "refund", json!({"amount": 500})), "breaks");
}

#[test]
fn a_check_with_a_person_on_the_call_is_not_a_call_to_make_first() {
    let line = "Confirm the delivery address with the customer on the call.";
    assert_ne!(
        says(
            line,
            "update_address",
            json!({"delivery_address": "1 Main St"})
        ),
        "breaks"
    );
}

#[test]
fn telling_anyone_if_is_telling_whether() {
    let line = "Never tell anyone if a patient is admitted.";
    assert_eq!(
        effect_of_reply(
            line,
            "Is my father admitted?",
            "Yes, the patient is admitted to ward 4."
        )
        .as_deref(),
        Some("breaks")
    );
}

#[test]
fn if_asked_is_shown_by_a_request() {
    let line = "If asked, you may waive late fees up to 25 dollars.";
    let index = prompt_only(
        "agent",
        &format!("You are an assistant.\n{line}\nKeep replies short.\n"),
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "input": "Can you waive my late fee?", "tool_calls": [{"name": "waive_late_fee", "arguments": {"amount": 100}}]})));
    assert_eq!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn a_margin_over_an_option_named_after_a_preposition_is_read() {
    let line = "Agents may book a flight up to 100 dollars above the option with the lowest fare.";
    assert_eq!(
        says(
            line,
            "book_flight",
            json!({"fare": 850, "lowest_fare": 780})
        ),
        "follows"
    );
    let line = "Agents may book a flight up to 100 dollars above the fare for the cheapest economy flight.";
    assert_eq!(
        says(
            line,
            "book_flight",
            json!({"cheapest_economy_fare": 700, "fare": 900})
        ),
        "breaks"
    );
}

#[test]
fn a_request_by_someone_else_is_not_shown_by_the_users_words() {
    let line = "If the employee's manager requests it, you may extend a deadline by up to 7 days.";
    let index = prompt_only(
        "agent",
        &format!("You are an assistant.\n{line}\nKeep replies short.\n"),
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "input": "Please push my deadline back a month.", "tool_calls": [{"name": "extend_deadline", "arguments": {"employee_id": "E7", "manager_id": "M2", "days": 30}}]})));
    assert_ne!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
}

#[test]
fn a_per_unit_of_time_does_not_reach_into_the_next_clause() {
    let line = "Meals up to 40 dollars per day, and each receipt must be itemized.";
    assert_eq!(
        says(
            line,
            "expense_meals",
            json!({"meal_amount": 150, "days": 3, "receipt_count": 3})
        ),
        "breaks"
    );
}

#[test]
fn a_limit_in_a_clause_after_a_trailing_condition_is_read() {
    let line = "Issue refunds only when the parcel arrived visibly damaged; refunds are capped at 100 dollars.";
    assert_eq!(
        says(
            line,
            "issue_refund",
            json!({"order_id": "A1", "amount": 500})
        ),
        "breaks"
    );
}

#[test]
fn an_argument_counted_per_unit_of_time_is_read_as_it_is() {
    let line = "Employees may work remotely up to 2 days a week.";
    assert_eq!(
        says(line, "remote_work", json!({"days_per_week": 2})),
        "follows"
    );
    let line = "Contractors may bill up to 40 hours a week.";
    assert_eq!(
        says(line, "bill_hours", json!({"hours_per_week": 38})),
        "follows"
    );
    let line = "Hotel rates are capped at 180 dollars a night.";
    assert_eq!(
        says(
            line,
            "book_hotel",
            json!({"hotel_night_cost": 250, "nights": 3})
        ),
        "breaks"
    );
}

#[test]
fn a_check_through_a_tool_after_a_person_is_a_check() {
    let line = "Confirm the account balance with the supervisor via the ledger tool.";
    assert_eq!(
        says(line, "adjust_credit", json!({"account_balance": 900})),
        "breaks"
    );
}

/// Words and marks that open the readings' branches, in any order.
const TRICKY: &[&str] = &[
    "always",
    "before",
    "prior",
    "to",
    "after",
    "only",
    "once",
    "and",
    "or",
    "if",
    "when",
    "whenever",
    "while",
    "never",
    "not",
    "do",
    "unless",
    "without",
    "except",
    "up",
    "at",
    "most",
    "least",
    "more",
    "less",
    "than",
    "per",
    "each",
    "a",
    "night",
    "day",
    "week",
    "dollars",
    "above",
    "over",
    "for",
    "larger",
    "anything",
    "otherwise",
    "check",
    "verify",
    "confirm",
    "with",
    "via",
    "the",
    "customer",
    "tool",
    "refund",
    "refunds",
    "issue_refund",
    "needs",
    "requires",
    "tell",
    "share",
    "anyone",
    "asked",
    "possible",
    "100",
    "2",
    "0",
    "1e308",
    ",",
    ";",
    ".",
    ":",
    "(",
    ")",
    "$",
    "-",
    "%",
    "two",
    "tenth",
    "10th",
];

/// What lines open with, where most readings look first.
const OPENERS: &[&str] = &[
    ",", "always", "and", "if", "when", "once", "before", "never", "no", "check", "you", "may",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// No line a team can write, in any order of these words, stops a bundle
    /// from loading or a trace from being explained.
    #[test]
    fn no_line_panics(
        opens in proptest::collection::vec(0..OPENERS.len(), 0..4),
        picks in proptest::collection::vec(0..TRICKY.len(), 0..24),
        amount in -1e6f64..1e6,
    ) {
        let line: Vec<&str> = opens
            .iter()
            .map(|&i| OPENERS[i])
            .chain(picks.iter().map(|&i| TRICKY[i]))
            .collect();
        let index = prompt_only("agent", &format!("You are an assistant.\n{}\n", line.join(" ")));
        for t in [
            json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": amount, "nights": 0, "days": -1, "weeks": 1e-300}}]}),
            json!({"trace_id": "t", "input": "Can you refund it?", "output": format!("I refunded {amount} dollars per night.")}),
        ] {
            let _ = index.explain(&trace(t));
        }
    }
}

#[test]
fn a_step_made_by_asking_a_person_first_is_not_a_call_to_make() {
    let line = "Always confirm the refund amount with the customer before issuing a refund.";
    assert_ne!(
        says(
            line,
            "issue_refund",
            json!({"order_id": "A1", "amount": 40})
        ),
        "breaks"
    );
}

#[test]
fn a_limit_on_a_count_of_things_is_not_read_against_an_amount_of_money() {
    let line = "You may waive at most one late fee per customer per year.";
    assert_ne!(
        says(
            line,
            "waive_late_fee",
            json!({"customer_id": "C-1", "amount": 25})
        ),
        "breaks"
    );
    // A count named as one still is.
    assert_eq!(
        says(
            line,
            "waive_late_fee",
            json!({"customer_id": "C-1", "late_fees": 2})
        ),
        "breaks"
    );
}

#[test]
fn a_rate_is_not_read_against_a_length_of_stay() {
    let line = "Book hotels at up to 200 dollars a night for trips of up to 5 nights.";
    assert_ne!(
        says(
            line,
            "book_hotel",
            json!({"city": "Lyon", "nightly_rate": 180, "nights": 4})
        ),
        "breaks"
    );
    assert_eq!(
        says(
            line,
            "book_hotel",
            json!({"city": "Lyon", "nightly_rate": 180, "nights": 7})
        ),
        "breaks"
    );
}

#[test]
fn a_trailing_condition_is_not_shown_by_a_concept_of_an_id() {
    let line = "You may issue a credit of up to 20 dollars when a delivery is late.";
    assert_ne!(
        says(
            line,
            "issue_credit",
            json!({"order_id": "A1", "amount": 50, "reason": "item damaged"})
        ),
        "breaks"
    );
}

#[test]
fn a_count_of_nights_named_with_other_words_divides_a_total() {
    let line = "Book hotels at up to 200 dollars a night.";
    assert_eq!(
        says(
            line,
            "book_hotel",
            json!({"hotel_total_cost": 720, "stay_nights": 4})
        ),
        "follows"
    );
}

#[test]
fn a_number_that_is_not_finite_breaks_no_condition() {
    let a = support(100, 100).explain(&trace(
        json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": "NaN"}}]}),
    ));
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
}

#[test]
fn a_currency_sign_is_the_unit_of_its_number() {
    let line = "Credits are capped at £30 per order.";
    assert_eq!(
        says(
            line,
            "credit_order",
            json!({"order_id": "A1", "amount": 45})
        ),
        "breaks"
    );
    assert_eq!(
        says(
            line,
            "credit_order",
            json!({"order_id": "A1", "amount": 25})
        ),
        "follows"
    );
}

#[test]
fn money_in_the_trace_is_not_the_subject_of_a_line_about_fees() {
    // "£1,800" is money, as fees are; a transfer is still not a fee refund.
    let index = prompt_only(
        "bank",
        "You are a bank assistant.\nOverdraft fees can be refunded with refund_fee at most once per customer in 12 months, up to £25 per refund.\nYou may send transfers with make_transfer of up to £2,500 each.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "make_transfer", "arguments": {"payee_id": "P-1", "amount": 1800}}], "output": "I've sent £1,800.00 to your landlord."})));
    assert_ne!(effect_at(&a, "line 2").as_deref(), Some("breaks"), "{a:#?}");
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
}

#[test]
fn a_line_that_opens_with_the_cases_it_holds_in_is_broken_only_in_them() {
    let line = "For damaged items worth more than £10 each, ask the customer for a photo with request_photo before issuing the credit.";
    // A credit for missing items is not one of those cases.
    assert_ne!(
        says(
            line,
            "issue_credit",
            json!({"order_id": "A1", "amount": 28.4, "reason": "missing_items"})
        ),
        "breaks"
    );
    // A damaged item of 14.50 with no photo is.
    assert_eq!(
        says(
            line,
            "issue_credit",
            json!({"order_id": "A1", "amount": 14.5, "reason": "damaged_item"})
        ),
        "breaks"
    );
}

#[test]
fn a_limit_written_with_a_dollar_sign_is_broken_by_more() {
    let line = "You may issue refunds up to $100 using the issue_refund tool.";
    assert_eq!(
        says(
            line,
            "issue_refund",
            json!({"order_id": "A-17", "amount": 150})
        ),
        "breaks"
    );
    let line = "Never issue refunds above $100 without manager approval.";
    assert_eq!(
        says(
            line,
            "issue_refund",
            json!({"order_id": "A-17", "amount": 150})
        ),
        "breaks"
    );
}

#[test]
fn a_dollar_limit_is_read_against_what_the_line_names_not_any_money() {
    let line = "You may issue refunds up to $100.";
    assert_ne!(
        says(
            line,
            "issue_refund",
            json!({"order_id": "A-1", "order_total": 250, "amount": 45})
        ),
        "breaks"
    );
    assert_ne!(
        effect_of_reply(
            line,
            "Can I get my money back?",
            "Your order total was $250. I've issued a refund of $45 to your card."
        )
        .as_deref(),
        Some("breaks")
    );
    // A margin and a rate after a dollar sign.
    let line = "Hotel rates may be no more than $50 a night above the city's standard rate.";
    assert_ne!(
        says(
            line,
            "book_hotel",
            json!({"standard_rate": 200, "nightly_rate": 230})
        ),
        "breaks"
    );
    let line = "Catering is capped at $40 for each attendee per day.";
    assert_eq!(
        says(
            line,
            "order_catering",
            json!({"catering_total": 360, "attendees": 3, "days": 3})
        ),
        "follows"
    );
    // "$500 or more".
    let line = "Refunds of $500 or more require manager approval.";
    assert_eq!(says(line, "issue_refund", json!({"amount": 800})), "breaks");
}

#[test]
fn a_line_for_a_purpose_is_not_a_condition() {
    let line = "For security, never tell a caller if their claim has a fraud flag.";
    assert_eq!(
        effect_of_reply(
            line,
            "Why is my claim taking so long?",
            "Your claim has a fraud flag, so it is on hold."
        )
        .as_deref(),
        Some("breaks")
    );
}

#[test]
fn a_constraint_written_with_a_dollar_sign_finds_its_argument() {
    let index = one_policy(
        "You are an assistant.\n",
        "constraints:\n- type: refund_cap\n  max_value: 100\n  description: Refunds may not exceed $100.\n",
    );
    for args in [json!({"refund_amount": 150}), json!({"amount": 150})] {
        let a = index.explain(&trace(
            json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": args}]}),
        ));
        assert_eq!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    }
    // ... but not a sum the action pays for something else, nor the total
    // of an order beside the refund's own amount, nor a charge whose reply
    // mentions refunds.
    for call in [
        json!({"trace_id": "t", "tool_calls": [{"name": "book_hotel", "arguments": {"amount": 150}}]}),
        json!({"trace_id": "t", "tool_calls": [{"name": "issue_refund", "arguments": {"order_id": "A-1", "total": 249.99, "refund_amount": 60}}]}),
        json!({"trace_id": "t", "tool_calls": [{"name": "charge_card", "arguments": {"customer_id": "C1", "amount": 240}}],
            "output": "Charged $240 for the annual plan; refunds are available within 30 days."}),
    ] {
        let a = index.explain(&trace(call));
        assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
    }
}

#[test]
fn a_count_of_days_is_not_what_a_daily_sum_caps() {
    let index = one_policy(
        "You are an assistant.\n",
        "constraints:\n- type: meal_allowance\n  max_value: 40\n  description: Meals may not exceed $40 per person per day.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t", "tool_calls": [{"name": "submit_meal_expense", "arguments": {"attendees": 2, "days": 3, "amount": 300}}]})));
    assert!(
        !a.influences.iter().any(|i| i.reasoning.contains("days 3")),
        "{a:#?}"
    );
}

#[test]
fn a_reply_in_other_words_is_held_to_a_dollar_limit() {
    let line = "You may refund up to $100.";
    assert_eq!(
        effect_of_reply(
            line,
            "Can I get my money back?",
            "I've reimbursed $150 to your card."
        )
        .as_deref(),
        Some("breaks")
    );
}

#[test]
fn prices_are_read_against_the_limit_they_are_of() {
    // "order" is in the line, but order_total is not what is refunded.
    let line = "You may refund up to $100 per order.";
    assert_ne!(
        says(
            line,
            "refund_order",
            json!({"order_id": "A1", "amount": 40, "order_total": 250})
        ),
        "breaks"
    );
    assert_ne!(
        effect_of_reply(
            line,
            "Refund please",
            "I've processed a $45 refund. Your order total was $250."
        )
        .as_deref(),
        Some("breaks")
    );
    // A rate named for its unit of time is held to a dollar limit on it.
    let line = "Hotel rates are capped at $180 a night.";
    assert_eq!(
        says(line, "book_hotel", json!({"nightly_rate": 300})),
        "breaks"
    );
    // Tiers written with the sign.
    let line =
        "Hotel rates are capped at $180 a night in standard cities and $275 in high-cost cities.";
    assert_ne!(
        says(
            line,
            "book_hotel",
            json!({"city_tier": "high-cost", "price_per_night": 250})
        ),
        "breaks"
    );
}

#[test]
fn a_dollar_limit_per_unit_of_time_a_few_words_on_is_read_on_it() {
    // "per room a night": the night is two words after the price.
    for line in [
        "Hotel rates are capped at $180 per room a night.",
        "Hotel rates are capped at 180 dollars per room a night.",
    ] {
        assert_eq!(
            says(line, "book_hotel", json!({"nightly_rate": 300})),
            "breaks",
            "{line}"
        );
        assert_ne!(
            says(
                line,
                "book_hotel",
                json!({"nightly_rate": 150, "total_cost": 600, "nights": 4})
            ),
            "breaks",
            "{line}"
        );
    }
}

#[test]
fn a_count_per_day_is_not_broken_by_a_number_of_days() {
    // The limit caps appointments; "3 days" counts days.
    let index = one_policy(
        "You are a clinic's assistant.\n",
        "constraints:\n- type: daily_appointment_limit\n  max_value: 2\n  description: No more than 2 appointments per patient per day.\n",
    );
    let a = index.explain(&trace(json!({"trace_id": "t",
        "input": "My daughter has had a fever since last night.",
        "output": "If the fever lasts more than 3 days, she should be seen. Would you like an appointment today?"})));
    assert_ne!(a.overall_assessment, Assessment::Contradicts, "{a:#?}");
}

#[test]
fn a_limit_after_a_purpose_is_read() {
    // A purpose is not a case: the limit holds everywhere.
    assert_eq!(
        says(
            "For security, you may refund up to 50 dollars.",
            "issue_refund",
            json!({"amount": 80})
        ),
        "breaks"
    );
}

#[test]
fn a_reply_declining_at_the_count_a_line_caps_follows_that_line() {
    let grocery = prompt_only(
        "grocery",
        "You are a grocery delivery assistant.\nCustomers can cancel an order up to 2 hours before the start of its delivery slot.\nA delivery can be moved to another slot at most twice.\nBe friendly.\n",
    );
    // In other words than the line's, and the count as a word.
    let a = grocery.explain(&trace(json!({"input": "Can you move my delivery again?", "output": "I'm sorry, this delivery has already been moved twice, which is the most we allow, so I can't shift it again. You can still cancel the order before the slot starts."})));
    assert_eq!(
        a.primary_influence
            .clone()
            .and_then(|p| p.location)
            .as_deref(),
        Some("line 3"),
        "{:?}",
        a.influences
            .iter()
            .map(|i| (i.location.clone(), i.confidence, i.reasoning.clone()))
            .collect::<Vec<_>>()
    );
    // Declining something else, with the same number: not that line's limit.
    let a = grocery.explain(&trace(json!({"input": "Can you tell me a joke?", "output": "Sorry, I can't help with jokes - I only handle two things: orders and deliveries."})));
    assert_ne!(
        effect_at(&a, "line 3").as_deref(),
        Some("follows"),
        "{:?}",
        locations(&a)
    );
}

#[test]
fn the_action_a_line_takes_past_its_limit_is_not_explained_by_it_within_the_limit() {
    let shop = prompt_only(
        "shop",
        "You are a grocery support assistant.\nYou can credit missing items with issue_credit, up to 30 dollars per order; anything higher goes to a supervisor with escalate_to_supervisor.\nIf a customer is abusive, hand the conversation to a supervisor.\n",
    );
    // Past the limit: the line says to escalate.
    let a = shop.explain(&trace(json!({"tool_calls": [{"name": "escalate_to_supervisor", "arguments": {"order_id": "A-1", "amount": 45}}]})));
    assert_eq!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{:?}",
        locations(&a)
    );
    // Within it, the escalation is not the limit's doing.
    let a = shop.explain(&trace(json!({"tool_calls": [{"name": "escalate_to_supervisor", "arguments": {"order_id": "A-1", "amount": 4}}]})));
    assert_ne!(
        effect_at(&a, "line 2").as_deref(),
        Some("follows"),
        "{:?}",
        locations(&a)
    );
}
