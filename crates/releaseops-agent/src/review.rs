//! The red team (an adversarial second opinion on a plan) and the second look
//! before production.

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::context::{Context, Day, Level};
use crate::planner::Plan;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedTeam {
    pub concerns: Vec<String>,
    pub risk_level: Level,
    /// NONE, DELAY or NO_GO.
    pub suggested_action: String,
}

/// The built-in red team: what is missing, stale, regressed, unapproved,
/// badly timed or clashing.
pub fn red_team(ctx: &Context, plan: &Plan) -> RedTeam {
    let mut concerns = Vec::new();
    let mut level = Level::Low;
    let mut intrinsic_high = false;
    let mut raise = |to: Level, text: String, intrinsic: bool, concerns: &mut Vec<String>| {
        concerns.push(text);
        if to > level {
            level = to;
        }
        if to == Level::High && intrinsic {
            intrinsic_high = true;
        }
    };
    match &ctx.evals {
        None => raise(
            Level::Medium,
            "missing information: no evaluation evidence for this version".into(),
            false,
            &mut concerns,
        ),
        Some(e) => {
            if !e.missing_suites.is_empty() {
                raise(
                    Level::High,
                    format!(
                        "required suites never ran on this version: {}",
                        e.missing_suites.join(", ")
                    ),
                    true,
                    &mut concerns,
                );
            }
            if !e.failed.is_empty() {
                raise(
                    Level::High,
                    format!("the evaluation fails: {}", e.failed.join(", ")),
                    true,
                    &mut concerns,
                );
            }
            if !e.regressions.is_empty() {
                raise(
                    Level::High,
                    format!(
                        "{} case(s) regressed against the baseline",
                        e.regressions.len()
                    ),
                    true,
                    &mut concerns,
                );
            }
            if !e.stale.is_empty() {
                raise(
                    Level::Medium,
                    format!("stale evaluation: {}", e.stale.join(", ")),
                    false,
                    &mut concerns,
                );
            }
            if !e.inconclusive.is_empty() {
                raise(
                    Level::Medium,
                    format!("inconclusive evaluation: {}", e.inconclusive.join(", ")),
                    false,
                    &mut concerns,
                );
            }
        }
    }
    if ctx.unapproved_safety_change {
        raise(
            Level::High,
            "a safety policy changed without human approval".into(),
            true,
            &mut concerns,
        );
    }
    let late_friday = ctx.day_of_week == Day::Fri && ctx.hour_of_day >= 15;
    if late_friday || ctx.day_of_week.is_weekend() {
        raise(
            Level::Medium,
            format!(
                "timing: {} {:02}:00, few people around if it goes wrong",
                ctx.day_of_week, ctx.hour_of_day
            ),
            false,
            &mut concerns,
        );
    }
    if ctx.holiday {
        raise(
            Level::Medium,
            "timing: a holiday, few people around if it goes wrong".into(),
            false,
            &mut concerns,
        );
    }
    if let Some(h) = ctx.hours_to_freeze
        && h < 24.0
    {
        raise(
            Level::Medium,
            format!("a freeze starts in {h:.0} h"),
            false,
            &mut concerns,
        );
    }
    if ctx.clash {
        let to = if ctx.production {
            Level::High
        } else {
            Level::Medium
        };
        raise(
            to,
            "another release into the same environment is in flight".into(),
            false,
            &mut concerns,
        );
    }
    let suggested_action = match (plan.decision, level) {
        (Action::Go, Level::High) if intrinsic_high => "NO_GO",
        (Action::Go, Level::High) => "DELAY",
        _ => "NONE",
    }
    .to_string();
    RedTeam {
        concerns,
        risk_level: level,
        suggested_action,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reflection {
    /// CONFIRM, or the decision it overrides to.
    pub outcome: String,
    pub decision: Action,
    pub reason: String,
}

/// The second look at a GO for production: the riskiest factors again.
/// `None` when there is nothing to look at (not production, or not GO).
pub fn reflect(ctx: &Context, plan: &Plan, red: &RedTeam) -> Option<Reflection> {
    if !ctx.production || plan.decision != Action::Go {
        return None;
    }
    let over = |decision: Action, reason: String| Reflection {
        outcome: decision.as_str().into(),
        decision,
        reason,
    };
    // The built-in red team's timing concern (an intrinsic one would have
    // suggested NO_GO) that the incident model has priced from outcomes of
    // releases nearly like this one, and still found GO the cheapest. A
    // concern anyone else raised (a language model's red team) is never
    // answered this way.
    let priced = plan.model.as_ref().filter(|m| {
        red.risk_level == Level::High
            && m.cheapest == Action::Go
            && m.similar_outcomes >= crate::decide::SEEN_AT
            && *red == red_team(ctx, plan)
    });
    Some(if red.suggested_action == "NO_GO" {
        over(
            Action::NoGo,
            format!("the red team found: {}", red.concerns.join("; ")),
        )
    } else if red.risk_level == Level::High && priced.is_none() {
        over(
            Action::Delay,
            format!(
                "the red team rates the risk HIGH: {}",
                red.concerns.join("; ")
            ),
        )
    } else if ctx.feature_risk == Level::High
        && ctx.service_criticality == Level::High
        && ctx.evals.is_none()
    {
        over(
            Action::NoGo,
            "a high-risk change to a critical service with no evaluation evidence".into(),
        )
    } else if ctx.recent_rollbacks >= 2 {
        over(
            Action::Delay,
            format!(
                "{} recent rollbacks of this bundle: let a human look first",
                ctx.recent_rollbacks
            ),
        )
    } else if let Some(m) = priced {
        Reflection {
            outcome: "CONFIRM".into(),
            decision: Action::Go,
            reason: format!(
                "the red team rates the timing HIGH ({}), and the incident model, from {} outcome(s) of releases like this, puts it at {:.1} % (90 % upper end {:.1} %): GO is still the cheapest",
                red.concerns.join("; "),
                m.similar_outcomes,
                m.now.p * 100.0,
                m.now.high * 100.0
            ),
        }
    } else {
        Reflection {
            outcome: "CONFIRM".into(),
            decision: Action::Go,
            reason: format!("risk {} holds on a second look", plan.risk_score),
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::planner::plan;

    #[test]
    fn the_red_team_and_the_second_look() {
        let c = Context::from_json(
            &json!({"env": "prod", "feature_risk": "LOW", "day_of_week": "TUE",
            "hour_of_day": 11, "evals": {"pass_rate": 1.0, "regressions": ["refund_over_limit"]}}),
        )
        .unwrap();
        let p = plan(&c, &[]);
        let red = red_team(&c, &p);
        assert_eq!(red.risk_level, Level::High);
        if p.decision == Action::Go {
            assert_eq!(red.suggested_action, "NO_GO");
            assert_eq!(reflect(&c, &p, &red).unwrap().decision, Action::NoGo);
        }
        let calm = Context::from_json(
            &json!({"env": "prod", "feature_risk": "LOW", "day_of_week": "TUE",
            "hour_of_day": 11, "evals": {"pass_rate": 1.0}}),
        )
        .unwrap();
        let p = plan(&calm, &[]);
        assert_eq!(p.decision, Action::Go);
        let red = red_team(&calm, &p);
        assert_eq!(
            (red.risk_level, red.suggested_action.as_str()),
            (Level::Low, "NONE")
        );
        assert_eq!(reflect(&calm, &p, &red).unwrap().outcome, "CONFIRM");
        let staging = Context {
            production: false,
            env: "staging".into(),
            ..calm
        };
        assert!(reflect(&staging, &plan(&staging, &[]), &red).is_none());
    }

    #[test]
    fn a_timing_concern_the_model_priced_is_confirmed_and_no_one_elses() {
        let c = Context::from_json(&json!({"env": "prod", "feature_risk": "LOW",
            "service_criticality": "LOW", "day_of_week": "TUE", "hour_of_day": 11,
            "clash": true, "evals": {"pass_rate": 1.0}}))
        .unwrap();
        let mut model = crate::model::IncidentModel::new(crate::model::Priors::default());
        for _ in 0..100 {
            model.learn_attributes(&c.attributes(), false);
        }
        let learned = crate::decide::Learned {
            model: &model,
            costs: &crate::cost::tests::COSTS,
        };
        let seen = [(1.0, Some(crate::memory::Outcome::Success)); 3];
        let p = crate::decide::plan(&c, &[], &seen, Some(learned));
        assert_eq!(p.decision, Action::Go, "{p:?}");
        let red = red_team(&c, &p);
        assert_eq!(
            (red.risk_level, red.suggested_action.as_str()),
            (Level::High, "DELAY")
        );
        let r = reflect(&c, &p, &red).unwrap();
        assert_eq!(
            (r.decision, r.outcome.as_str()),
            (Action::Go, "CONFIRM"),
            "{r:?}"
        );
        // Unseen: the red team's DELAY stands.
        let unseen = crate::decide::plan(&c, &[], &[], Some(learned));
        assert_eq!(
            reflect(&c, &unseen, &red_team(&c, &unseen))
                .unwrap()
                .decision,
            Action::Delay
        );
        // A concern the built-in red team did not raise is not answered by
        // the model.
        let mut more = red.clone();
        more.concerns
            .push("LLM red team: the clash is with the payments release".into());
        assert_eq!(reflect(&c, &p, &more).unwrap().decision, Action::Delay);
    }
}
