//! The approval gate: enough eligible people (never the creator) approved
//! this bundle hash, with verified signatures when the policy asks.

use super::*;

/// Whether `actor` may approve for this policy (named approvers or team members).
pub fn eligible_approver(actor: &str, p: &PromotionPolicy, config: &ProjectConfig) -> bool {
    if p.approvers.is_empty() && p.approval_teams.is_empty() {
        return true;
    }
    p.approvers.iter().any(|a| actor_matches(actor, a, config))
        || p.approval_teams.iter().any(|t| {
            config
                .teams
                .get(t)
                .is_some_and(|members| members.iter().any(|m| actor_matches(actor, m, config)))
        })
}
pub fn approval(f: &Facts<'_>, p: &PromotionPolicy) -> GateResult {
    let need_signed = p.min_signed_approvals as usize;
    let need = (p.required_approvals() as usize).max(need_signed);
    let creator = f.creator;
    // Each person counts once; their approval counts as signed when any of
    // theirs for this environment carries a signature that verifies.
    let mut counted: Vec<(&str, crate::Identity, bool)> = Vec::new();
    let mut ignored = Vec::new();
    let mut bad_signatures = Vec::new();
    for (i, a) in f.reviews.approvals.iter().enumerate() {
        if a.env != f.env {
            continue;
        }
        let id = crate::Identity::parse_in(&a.actor, &f.config.identity);
        let verified = match f.signatures.get(i) {
            Some(Some(Ok(()))) => true,
            Some(Some(Err(why))) => {
                bad_signatures.push(format!("{}: {why}", a.actor));
                false
            }
            _ => false,
        };
        if !creator.is_empty() && creator != "cli" && actor_matches(&a.actor, creator, f.config) {
            ignored.push(format!("{} (created the bundle)", a.actor));
        } else if !eligible_approver(&a.actor, p, f.config) {
            ignored.push(format!("{} (not an eligible approver)", a.actor));
        } else if let Some(c) = counted.iter_mut().find(|c| c.1.same_person(&id)) {
            c.2 |= verified;
        } else {
            counted.push((&a.actor, id, verified));
        }
    }
    let signed = counted.iter().filter(|c| c.2).count();
    let counted: Vec<&str> = counted.iter().map(|c| c.0).collect();
    let who = {
        let mut w: Vec<String> = p
            .approval_teams
            .iter()
            .map(|t| format!("team {t}"))
            .collect();
        w.extend(p.approvers.iter().cloned());
        if w.is_empty() {
            "anyone but the bundle's creator".to_string()
        } else {
            w.join(" or ")
        }
    };
    let unknown: Vec<&String> = p
        .approval_teams
        .iter()
        .filter(|t| !f.config.teams.contains_key(*t))
        .collect();
    let ignored_note = if ignored.is_empty() {
        String::new()
    } else {
        format!("; not counted: {}", ignored.join(", "))
    };
    let signed_note = if need_signed > 0 {
        format!(" ({signed} signed, {need_signed} needed)")
    } else {
        String::new()
    };
    if counted.len() >= need && signed >= need_signed {
        return gate(
            Gate::Approval,
            GateStatus::Passed,
            format!(
                "approved by {}{signed_note}{ignored_note}",
                counted.join(", ")
            ),
        );
    }
    let md = &f.manifest.metadata;
    if counted.len() >= need {
        let bad = if bad_signatures.is_empty() {
            String::new()
        } else {
            format!(
                "; signatures that do not verify: {}",
                bad_signatures.join("; ")
            )
        };
        return gate(
            Gate::Approval,
            GateStatus::Pending,
            format!(
                "needs {} more signed approval(s) (have {signed} of {need_signed}); `releaseops approve {} {} {} --sign`{bad}{ignored_note}",
                need_signed - signed,
                md.id,
                md.version,
                f.env
            ),
        );
    }
    if p.approvers.is_empty()
        && !p.approval_teams.is_empty()
        && unknown.len() == p.approval_teams.len()
    {
        return gate(
            Gate::Approval,
            GateStatus::Failed,
            format!(
                "no one can approve: team(s) {} are not defined under `teams:` in .releaseops/config.yaml",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    gate(
        Gate::Approval,
        GateStatus::Pending,
        format!(
            "needs {} more approval(s) from {who} (have {} of {need}){signed_note}; `releaseops approve {} {} {}`{ignored_note}",
            need - counted.len(),
            counted.len(),
            md.id,
            md.version,
            f.env
        ),
    )
}
