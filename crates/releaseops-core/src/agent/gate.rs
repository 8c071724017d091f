//! The agent's decision as a promotion gate.

use super::*;

/// The agent's decision as a promotion gate. Blocking: NO_GO fails, DELAY is
/// pending until the window the planner named, GO passes. Advisory: passes,
/// saying what the agent thought.
pub fn gate(
    mode: releaseops_format::environment::AgentMode,
    rec: &DecisionRecord,
    now: jiff::Timestamp,
    tz: &jiff::tz::TimeZone,
) -> releaseops_format::history::GateResult {
    use releaseops_format::environment::AgentMode;
    use releaseops_format::history::{GateResult, GateStatus};
    let why = rec
        .reasons
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    let said = format!(
        "agent {} says {} (risk {}): {why}",
        rec.decision_id, rec.decision, rec.plan.risk_score
    );
    let (status, passes_at) = match (mode, rec.decision) {
        (AgentMode::Advisory, _) | (AgentMode::Blocking, Action::Go) => (GateStatus::Passed, None),
        (AgentMode::Blocking, Action::NoGo) => (GateStatus::Failed, None),
        (AgentMode::Blocking, Action::Delay) => (
            GateStatus::Pending,
            rec.plan
                .delay_until
                .and_then(|w| window_start(now, tz, w))
                .map(releaseops_format::time::format),
        ),
    };
    let reason = match (mode, &passes_at) {
        (AgentMode::Advisory, _) => format!("advisory: {said}"),
        (_, Some(t)) => format!("{said}; ask again from {t}"),
        _ => said,
    };
    GateResult {
        gate: releaseops_format::history::Gate::Agent,
        status,
        reason,
        passes_at,
    }
}

/// The next start of `w` (a weekday and hour in `tz`) after `now`.
pub(super) fn window_start(
    now: jiff::Timestamp,
    tz: &jiff::tz::TimeZone,
    w: releaseops_agent::planner::Window,
) -> Option<jiff::Timestamp> {
    (1..=8 * 24).find_map(|h| {
        let t = now.checked_add(jiff::SignedDuration::from_hours(h)).ok()?;
        let z = t.to_zoned(tz.clone());
        let day = releaseops_agent::Day::from_index(z.weekday().to_monday_zero_offset() as usize);
        (day == w.day && z.hour() as u8 == w.hour)
            .then(|| {
                z.with()
                    .minute(0)
                    .second(0)
                    .subsec_nanosecond(0)
                    .build()
                    .ok()
            })
            .flatten()
            .map(|z| z.timestamp())
    })
}
