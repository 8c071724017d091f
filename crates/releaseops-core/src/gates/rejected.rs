//! The rejected gate: nobody rejected this bundle hash for the target.

use super::*;

pub fn rejected(f: &Facts<'_>) -> GateResult {
    let md = &f.manifest.metadata;
    let key = format!("{}@{}", md.id, md.version);
    if let Some(r) = f.reviews.rejection_for(f.env, &f.config.pipeline) {
        let scope = r
            .env
            .as_deref()
            .map(|e| format!(" for '{e}'"))
            .unwrap_or_default();
        return gate(
            Gate::Rejected,
            GateStatus::Failed,
            format!(
                "{key} was rejected{scope} by {} at {}: {}",
                r.actor, r.at, r.reason
            ),
        );
    }
    if f.policy.is_some_and(|p| p.rejected_versions.contains(&key)) {
        return gate(
            Gate::Rejected,
            GateStatus::Failed,
            format!("{key} is listed in {}'s rejected_versions", f.env),
        );
    }
    gate(
        Gate::Rejected,
        GateStatus::Passed,
        format!("{key} is not rejected"),
    )
}
