//! Deciding by expected cost with the learned incident model.
//!
//! The model ([`crate::model`]) predicts P(incident) for the release now and
//! at the slot a DELAY would move it to (the next working window, after the
//! clash, outside the coming freeze); [`crate::cost::choose`] prices GO,
//! DELAY and NO_GO with the team's costs and takes the cheapest. Two
//! things may then only make the decision stricter:
//!
//! 1. **Evidence.** No evaluation, a failing, missing, stale or
//!    INCONCLUSIVE one, a low pass rate, a regression, an unapproved safety
//!    policy or a recent rollback is not something the model can learn away:
//!    it learns over the attributes a release is remembered by, and these
//!    are not among them. Whenever one of them is present, the fixed rules'
//!    decision is the floor.
//! 2. **No exploration on a high prior.** In production, a GO for a context
//!    with fewer than [`SEEN_AT`] outcomes of releases nearly like it, when the
//!    fixed rules put its risk at or over [`crate::planner::HOLD_AT`], is
//!    not taken: the rules decide what the model has not seen.
//!
//! The heuristics that match are shown with it: they are the model's
//! findings in words (`agent heuristics`), and the model's numbers decide.

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::context::Context;
use crate::cost::{Costs, OptionCost};
use crate::heuristics::Heuristic;
use crate::memory::Outcome;
use crate::model::{Driver, IncidentModel, Prediction};
use crate::planner::{self, HOLD_AT, Plan, Window};

/// Outcomes of releases like this one (similarity at least
/// [`SEEN_SIMILARITY`]: at most one minor attribute, such as the hour band,
/// differs) the model must have seen before it may overrule the fixed
/// rules' hold in production.
pub const SEEN_AT: usize = 2;
pub const SEEN_SIMILARITY: f64 = 0.9;

/// The factors that are evidence about the change, not its timing or its
/// kind: the model never lowers the decision they lead to.
const EVIDENCE: [&str; 9] = [
    "safety_policy",
    "evals",
    "evals_missing",
    "evals_failed",
    "eval_regression",
    "evals_stale",
    "evals_inconclusive",
    "eval_pass_rate",
    "track_record",
];

/// The model and the prices it decides with.
#[derive(Debug, Clone, Copy)]
pub struct Learned<'a> {
    pub model: &'a IncidentModel,
    pub costs: &'a Costs,
}

/// What the model said about one decision, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelView {
    /// P(incident) if it ships now: the posterior mean and its 90 % interval.
    pub now: Prediction,
    /// The slot a DELAY moves it to, and P(incident) there.
    pub slot: Window,
    pub at_slot: Prediction,
    /// The fixed rules' prior the model started from (for now).
    pub prior: f64,
    /// GO, DELAY, NO_GO and their expected costs.
    pub options: Vec<OptionCost>,
    /// The cheapest option, before the floors.
    pub cheapest: Action,
    pub outcomes_learned: u64,
    /// Outcomes of releases like this one among those recalled.
    pub similar_outcomes: usize,
    /// The learned weights of this context that moved the prediction most.
    pub drivers: Vec<Driver>,
}

fn pct(p: f64) -> String {
    format!("{:.1} %", p * 100.0)
}

/// Plans with the fixed rules alone (`learned` `None`), or by expected cost
/// with the model, under the two floors the module describes.
pub fn plan(
    ctx: &Context,
    heuristics: &[Heuristic],
    similar: &[(f64, Option<Outcome>)],
    learned: Option<Learned<'_>>,
) -> Plan {
    let Some(l) = learned else {
        return planner::plan_with_recall(ctx, heuristics, similar);
    };
    let rules = planner::plan_with_recall(ctx, &[], similar);
    let attrs = ctx.attributes();
    let now = l.model.assess(&attrs);
    let slot = planner::next_safe_window(ctx.day_of_week, ctx.hour_of_day);
    let at_slot = l.model.assess(&planner::at_window(ctx, slot).attributes());
    let choice = crate::cost::choose(l.costs, &now, Some(&at_slot));
    let cost_of = |a: Action| {
        choice
            .options
            .iter()
            .find(|o| o.action == a)
            .and_then(|o| o.expected)
            .map_or_else(|| "-".into(), |c| format!("{c:.2}"))
    };
    let mut reasons = vec![format!(
        "incident model ({} outcomes learned): P(incident) now {} (90 %: {} to {}), at {slot} {}; expected cost GO {}, DELAY {}, NO_GO {}: {} is cheapest",
        l.model.outcomes,
        pct(now.p),
        pct(now.low),
        pct(now.high),
        pct(at_slot.p),
        cost_of(Action::Go),
        cost_of(Action::Delay),
        cost_of(Action::NoGo),
        choice.action
    )];
    let mut decision = choice.action;
    let evidence: Vec<&str> = rules
        .factors
        .iter()
        .filter(|f| EVIDENCE.contains(&f.name.as_str()))
        .map(|f| f.detail.as_str())
        .collect();
    if !evidence.is_empty() && rules.decision > decision {
        decision = rules.decision;
        reasons.push(format!(
            "the evidence holds it at {decision} ({}): the model learns from releases that shipped and does not overrule it",
            evidence.join("; ")
        ));
    }
    let similar_outcomes = similar
        .iter()
        .filter(|(s, o)| *s >= SEEN_SIMILARITY && o.is_some())
        .count();
    if ctx.production
        && decision == Action::Go
        && similar_outcomes < SEEN_AT
        && rules.risk_score >= HOLD_AT
    {
        decision = rules.decision.max(Action::Delay);
        reasons.push(format!(
            "not seen before: {similar_outcomes} outcome(s) of releases like this, and the fixed rules put the risk at {} (hold at {HOLD_AT}): no exploration in production, {decision}",
            rules.risk_score
        ));
    }
    // The heuristics are the model's findings in words: the ones that match
    // are shown, and the model's numbers decide.
    let mut applied = Vec::new();
    for h in heuristics
        .iter()
        .filter(|h| h.applies() && h.matches(&attrs))
    {
        reasons.push(format!(
            "matches the learned rule {} -> {} (confidence {:.2}, {} of {} episodes); the incident model's numbers decide",
            h.when
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            h.recommendation,
            h.confidence,
            h.supporting,
            h.supporting + h.contradicting
        ));
        applied.push(h.id.clone());
    }
    let delay_until = (decision == Action::Delay).then(|| {
        reasons.push(match ctx.hours_to_freeze {
            Some(h) if h < 24.0 => {
                format!("next safe window: {slot}, if the freeze is over by then")
            }
            _ => format!("next safe window: {slot}"),
        });
        slot
    });
    Plan {
        decision,
        risk_score: rules.risk_score,
        factors: rules.factors,
        heuristics_applied: applied,
        reasons,
        delay_until,
        model: Some(ModelView {
            now,
            slot,
            at_slot,
            prior: crate::model::prior_of_attributes(&attrs),
            options: choice.options.to_vec(),
            cheapest: choice.action,
            outcomes_learned: l.model.outcomes,
            similar_outcomes,
            drivers: l.model.drivers(&attrs, 5),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cost::tests::COSTS;

    fn ctx(v: serde_json::Value) -> Context {
        Context::from_json(&v).expect("context")
    }

    fn learned_from(n: usize, c: &Context, incident: impl Fn(usize) -> bool) -> IncidentModel {
        let mut m = IncidentModel::new(crate::model::Priors::default());
        for i in 0..n {
            m.learn_attributes(&c.attributes(), incident(i));
        }
        m
    }

    #[test]
    fn a_risk_the_rules_hold_is_shipped_once_outcomes_show_it_is_safe() {
        // Friday afternoon with a clash: the rules hold it (timing).
        let friday = ctx(json!({"env": "prod", "feature_risk": "MEDIUM",
            "service_criticality": "MEDIUM", "day_of_week": "FRI", "hour_of_day": 14,
            "clash": true, "evals": {"pass_rate": 0.99}}));
        assert_eq!(planner::plan(&friday, &[]).decision, Action::Delay);
        let model = learned_from(200, &friday, |i| i % 100 == 0);
        let seen = [(0.9, Some(Outcome::Success)); 3];
        let l = Learned {
            model: &model,
            costs: &COSTS,
        };
        let p = plan(&friday, &[], &seen, Some(l));
        assert_eq!(p.decision, Action::Go, "{p:#?}");
        let m = p.model.as_ref().expect("model view");
        assert!(m.now.p < 0.03 && m.now.low <= m.now.p && m.now.p <= m.now.high);
        assert_eq!(m.options.len(), 3);
        assert!(!m.drivers.is_empty() && m.drivers[0].weight < 0.0, "{m:?}");
        // Not seen (no similar outcome recalled): the rules' hold stands.
        let p = plan(&friday, &[], &[], Some(l));
        assert_eq!(p.decision, Action::Delay, "{p:#?}");
        assert!(p.reasons.iter().any(|r| r.contains("not seen before")));
        assert_eq!(p.delay_until, Some(p.model.expect("view").slot));
    }

    #[test]
    fn a_combination_that_fails_is_delayed_to_its_slot_or_stopped() {
        // A Tuesday night release for a team whose nights fail.
        let night = ctx(json!({"env": "prod", "feature_risk": "LOW",
            "service_criticality": "LOW", "day_of_week": "TUE", "hour_of_day": 2,
            "region": "apac", "evals": {"pass_rate": 0.99}}));
        let mut model = learned_from(60, &night, |i| i % 2 == 0);
        let mut morning = night.clone();
        morning.hour_of_day = 10;
        for i in 0..60 {
            model.learn_attributes(&morning.attributes(), i % 30 == 0);
        }
        let p = plan(
            &night,
            &[],
            &[(0.9, Some(Outcome::Incident)); 3],
            Some(Learned {
                model: &model,
                costs: &COSTS,
            }),
        );
        assert_eq!(p.decision, Action::Delay, "{p:#?}");
        let m = p.model.expect("view");
        assert_eq!(
            m.slot,
            Window {
                day: crate::context::Day::Tue,
                hour: 10
            }
        );
        assert!(m.now.p > 0.1 && m.at_slot.p < m.now.p / 4.0, "{m:?}");
    }

    #[test]
    fn evidence_is_a_floor_the_model_does_not_lower() {
        let failing = ctx(json!({"env": "prod", "feature_risk": "LOW",
            "day_of_week": "TUE", "hour_of_day": 11,
            "evals": {"failed": ["safety"], "regressions": ["case-1"]}}));
        let model = learned_from(300, &failing, |_| false);
        let p = plan(
            &failing,
            &[],
            &[(0.95, Some(Outcome::Success)); 5],
            Some(Learned {
                model: &model,
                costs: &COSTS,
            }),
        );
        assert_eq!(p.model.as_ref().expect("view").cheapest, Action::Go);
        assert_eq!(p.decision, Action::NoGo, "{p:#?}");
    }

    #[test]
    fn recorded_plans_without_a_model_still_parse() {
        let p = planner::plan(
            &ctx(
                json!({"env": "dev", "feature_risk": "LOW", "day_of_week": "MON",
                "hour_of_day": 10}),
            ),
            &[],
        );
        let text = serde_json::to_string(&p).expect("json");
        assert!(!text.contains("\"model\""));
        let back: Plan = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, p);
    }
}
