//! The soak gate: the version ran long enough in the stage before.

use super::*;

pub fn soak(f: &Facts<'_>, p: &PromotionPolicy) -> GateResult {
    let Some(up) = f.upstream else {
        return gate(
            Gate::Soak,
            GateStatus::Passed,
            format!("'{}' has no upstream stage to soak in", f.env),
        );
    };
    let Some(since) = f.upstream_live_since else {
        return gate(
            Gate::Soak,
            GateStatus::Failed,
            format!("not live in '{up}', so it has not soaked there"),
        );
    };
    let Ok(need) = SignedDuration::try_from_secs_f64(p.soak_hours * 3600.0) else {
        return gate(
            Gate::Soak,
            GateStatus::Failed,
            format!("soak_hours {} is not a usable duration", p.soak_hours),
        );
    };
    let passes_at = since.checked_add(need).unwrap_or(since);
    let elapsed = f.now.duration_since(since);
    if f.now >= passes_at {
        gate(
            Gate::Soak,
            GateStatus::Passed,
            format!(
                "live in '{up}' for {} (needs {})",
                human_duration(elapsed),
                human_duration(need)
            ),
        )
    } else {
        GateResult {
            gate: Gate::Soak,
            status: GateStatus::Pending,
            reason: format!(
                "live in '{up}' for {} of the {} soak; passes at {}",
                human_duration(elapsed),
                human_duration(need),
                time::format(passes_at)
            ),
            passes_at: Some(time::format(passes_at)),
        }
    }
}
