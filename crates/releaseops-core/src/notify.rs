//! What a change has to tell the team: the notices a promotion, a rollback,
//! an evaluation or a decision gives rise to (`notify:` in config.yaml says
//! who hears which). Pure: the caller delivers them after the change landed.

use releaseops_format::config::NotifyEvent;
use releaseops_format::history::{Gate, GateResult, GateStatus};
use serde::Serialize;

use crate::Ctx;
use crate::agent::DecisionRecord;
use crate::release::{PromoteOutcome, RollbackOutcome};

/// One thing to tell.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub event: NotifyEvent,
    pub bundle_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Who made the change.
    pub actor: String,
    pub at: String,
    /// One line, for people.
    pub summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
}

fn notice(
    event: NotifyEvent,
    id: &str,
    version: Option<&str>,
    env: Option<&str>,
    actor: &str,
    at: &str,
    summary: String,
) -> Notice {
    Notice {
        event,
        bundle_id: id.into(),
        version: version.map(str::to_string),
        env: env.map(str::to_string),
        actor: actor.into(),
        at: at.into(),
        summary,
        gates: Vec::new(),
        decision_id: None,
    }
}

/// What a promotion (not a dry run) tells: blocked (and, when approvals
/// are what it waits for, that approvals are pending), overridden, and the
/// agent's NO_GO.
pub fn of_promotion(out: &PromoteOutcome, ctx: &Ctx<'_>) -> Vec<Notice> {
    let (actor, at) = (ctx.actor.as_str(), ctx.now_str());
    let at = at.as_str();
    let mut v = Vec::new();
    if out.dry_run || out.unchanged {
        return v;
    }
    let target = format!("{} {} -> {}", out.id, out.version, out.env);
    let mk = |e: NotifyEvent, summary: String| {
        let mut n = notice(
            e,
            &out.id,
            Some(&out.version),
            Some(&out.env),
            actor,
            at,
            summary,
        );
        n.gates = out.gates.clone();
        n
    };
    if !out.blocked_by.is_empty() {
        let why: Vec<String> = out
            .gates
            .iter()
            .filter(|g| out.blocked_by.contains(&g.gate))
            .map(|g| format!("{}: {}", g.gate, g.reason))
            .collect();
        v.push(mk(
            NotifyEvent::PromotionBlocked,
            format!("{target} is blocked ({}), tried by {actor}", why.join("; ")),
        ));
        // Approvers are asked only when an approval is what it waits for:
        // not for a rejected version, nor one a failing gate stops anyway.
        let blocking: Vec<&GateResult> = out
            .gates
            .iter()
            .filter(|g| out.blocked_by.contains(&g.gate))
            .collect();
        if let Some(g) = blocking.iter().find(|g| g.gate == Gate::Approval)
            && blocking.iter().all(|g| g.status == GateStatus::Pending)
        {
            v.push(mk(
                NotifyEvent::ApprovalPending,
                format!("{target} waits for approval: {}", g.reason),
            ));
        }
    } else if out.overridden {
        let bypassed: Vec<&str> = out
            .gates
            .iter()
            .filter(|g| g.status != GateStatus::Passed)
            .map(|g| g.gate.as_str())
            .collect();
        v.push(mk(
            NotifyEvent::PromotionOverridden,
            format!(
                "{target} went live by {actor} with gates overridden ({})",
                bypassed.join(", ")
            ),
        ));
    }
    if let Some(d) = &out.agent_decision {
        v.extend(of_decision(d));
    }
    v
}

pub fn of_rollback(out: &RollbackOutcome, ctx: &Ctx<'_>) -> Vec<Notice> {
    let (actor, at) = (ctx.actor.as_str(), ctx.now_str());
    vec![notice(
        NotifyEvent::Rollback,
        &out.id,
        Some(&out.to),
        Some(&out.env),
        actor,
        &at,
        format!(
            "{} in {} was rolled back from {} to {} by {actor}",
            out.id, out.env, out.from, out.to
        ),
    )]
}

/// An evaluation whose verdict is FAIL.
pub fn of_eval(
    ctx: &Ctx<'_>,
    id: &str,
    version: &str,
    suite: &str,
    verdict: &str,
    reason: &str,
) -> Vec<Notice> {
    if verdict != "FAIL" {
        return Vec::new();
    }
    vec![notice(
        NotifyEvent::EvalFailed,
        id,
        Some(version),
        None,
        &ctx.actor,
        &ctx.now_str(),
        format!("suite {suite} FAILS on {id} {version}: {reason}"),
    )]
}

/// The agent's NO_GO.
pub fn of_decision(d: &DecisionRecord) -> Vec<Notice> {
    // A decision on a context written by hand is a question, not a release.
    let Some(b) = &d.bundle else {
        return Vec::new();
    };
    if d.decision != releaseops_agent::Action::NoGo {
        return Vec::new();
    }
    let (id, version) = (b.id.clone(), Some(b.version.clone()));
    let mut n = notice(
        NotifyEvent::AgentNoGo,
        &id,
        version.as_deref(),
        Some(&d.context.env),
        &d.actor,
        &d.at,
        format!(
            "the decision agent says NO_GO ({}){}",
            d.decision_id,
            d.reasons
                .first()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
    );
    n.decision_id = Some(d.decision_id.clone());
    vec![n]
}
