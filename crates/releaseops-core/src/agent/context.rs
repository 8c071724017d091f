//! The agent's context for a promotion, built from the facts the gates
//! read ([`crate::facts::PromotionFacts`]).

use super::*;

/// Builds the agent's context for promoting `id@version` into `env` from
/// the store: what changed against the live version, the evaluation
/// evidence, criticality, the team's time, clashes and the track record.
/// Call it with the store lock held (or under a read guard).
pub fn promotion_context(store: &Store, facts: &crate::facts::PromotionFacts) -> Result<Context> {
    let (id, version, env, now) = (
        facts.id.as_str(),
        facts.version.as_str(),
        facts.env.as_str(),
        facts.now,
    );
    let config = &facts.config;
    let agent_cfg = config.agent.clone().unwrap_or_default();
    let policy = facts.policy();
    let view = &facts.view;
    let state = view.state();
    let change = match facts.live.as_deref() {
        None => releaseops_agent::risk::first_release(id, env),
        Some(live) if live == version => releaseops_agent::risk::ChangeRisk::default(),
        Some(live) => {
            let live = store.load_bundle(id, live)?;
            let d = crate::bundle::diff_manifests(store, &live, &facts.manifest)?;
            releaseops_agent::risk::classify(&d.summary())
        }
    };
    let approved_here = facts.reviews.approvals.iter().any(|a| a.env == env);
    let evals = if facts.reports.is_empty() && !policy.is_some_and(|p| p.requires_eval) {
        None
    } else {
        let e = &facts.evals;
        let required: Vec<String> = policy.map(|p| p.eval_suites.clone()).unwrap_or_default();
        let counted = |s: &str| e.suite(s).is_some() || e.stale_suites.iter().any(|x| x == s);
        let missing_suites =
            if required.is_empty() && e.suites.is_empty() && e.stale_suites.is_empty() {
                vec!["(any suite)".to_string()]
            } else {
                required.iter().filter(|s| !counted(s)).cloned().collect()
            };
        let regressions = facts
            .regressions
            .iter()
            .filter_map(|(_, _, c)| c.as_ref())
            .filter(|c| c.significant && !c.regressed.is_empty())
            .flat_map(|c| c.regressed.iter().cloned())
            .collect();
        use releaseops_stats::Verdict;
        let with = |want: fn(Option<Verdict>) -> bool| -> Vec<String> {
            e.suites
                .iter()
                .filter(|s| want(s.verdict))
                .map(|s| s.suite().to_string())
                .collect()
        };
        Some(releaseops_agent::context::EvalEvidence {
            // A report without a verdict counts as failed, as at the gate.
            failed: with(|v| matches!(v, Some(Verdict::Fail) | None)),
            missing_suites,
            pass_rate: e
                .suites
                .iter()
                .filter_map(|s| s.report.pass_rate)
                .reduce(f64::min),
            inconclusive: with(|v| v == Some(Verdict::Inconclusive)),
            regressions,
            stale: e.stale_suites.clone(),
        })
    };
    let criticality = policy
        .and_then(|p| p.service_criticality.clone())
        .or_else(|| agent_cfg.criticality.get(id).cloned())
        .and_then(|c| Level::parse(&c))
        .unwrap_or(Level::Medium);
    let tz = agent_cfg.time_zone()?;
    let local = now.to_zoned(tz.clone());
    let day = releaseops_agent::Day::from_index(local.weekday().to_monday_zero_offset() as usize);
    let holiday = agent_cfg
        .holidays
        .iter()
        .any(|d| d.parse::<jiff::civil::Date>().ok() == Some(local.date()));
    // Hours until a freeze window of this environment starts (0: frozen now).
    let hours_to_freeze = policy
        .filter(|p| !p.freeze_windows.is_empty())
        .and_then(|p| {
            (0..=7 * 24).find_map(|h| {
                let mut at = facts.gates();
                at.now = now.checked_add(jiff::SignedDuration::from_hours(h)).ok()?;
                (crate::gates::freeze(&at, p).status
                    != releaseops_format::history::GateStatus::Passed)
                    .then_some(h as f64)
            })
        });
    // Other bundles promoted into this environment within the clash window,
    // bundles this one declares it depends on moving anywhere in it, and
    // other bundles mid-rollout toward this environment: promoted into an
    // earlier stage within the watch window, with that version not live here
    // yet (they are due here soon, so their changes would overlap ours).
    let window = agent_cfg.clash_window_hours() * 3600.0;
    let watch = agent_cfg.watch_hours() * 3600.0;
    let depends = agent_cfg.depends_on.get(id).cloned().unwrap_or_default();
    let here = config.position(env);
    let upstream = |e: &str| matches!((config.position(e), here), (Some(p), Some(h)) if p < h);
    let recent = store.history().newest(200, |r| {
        r.env.as_deref() == Some(env)
            || r.bundle_id.as_deref() == Some(id)
            || r.bundle_id.as_ref().is_some_and(|b| depends.contains(b))
            || r.env.as_deref().is_some_and(upstream)
    })?;
    let live_here: std::collections::BTreeMap<&str, &str> = state
        .live_in(env)
        .into_iter()
        .map(|(b, d)| (b, d.version.as_str()))
        .collect();
    let age = |r: &releaseops_format::history::Record| -> Option<f64> {
        let t = releaseops_format::time::parse(&r.at).ok()?;
        Some((now.as_second() - t.as_second()) as f64)
    };
    use releaseops_format::history::EventKind;
    let conflicting = recent.iter().find(|r| {
        let Some(other) = r.bundle_id.as_deref().filter(|b| *b != id) else {
            return false;
        };
        let moving = matches!(r.event, EventKind::Promote | EventKind::Rollback);
        let clash = (r.env.as_deref() == Some(env) || depends.iter().any(|d| d == other))
            && age(r).is_some_and(|a| (0.0..=window).contains(&a));
        let mid_rollout = r.event == EventKind::Promote
            && r.env.as_deref().is_some_and(upstream)
            && r.version
                .as_deref()
                .is_some_and(|v| live_here.get(other).copied() != Some(v))
            && age(r).is_some_and(|a| (0.0..=watch).contains(&a));
        moving && (clash || mid_rollout)
    });
    let recent_rollbacks = recent
        .iter()
        .filter(|r| {
            r.event == EventKind::Rollback
                && r.bundle_id.as_deref() == Some(id)
                && age(r).is_some_and(|a| a <= 30.0 * 86_400.0)
        })
        .count() as u32;
    Ok(Context {
        env: env.to_string(),
        feature_risk: change.level,
        service_criticality: criticality,
        day_of_week: day,
        hour_of_day: local.hour() as u8,
        clash: conflicting.is_some(),
        conflicting_service: conflicting.and_then(|r| r.bundle_id.clone()),
        production: releaseops_agent::context::is_production_name(env)
            || config.pipeline.last().is_some_and(|l| l == env),
        risk_factors: change.factors,
        unapproved_safety_change: change.safety_policy_changed && !approved_here,
        holiday,
        evals,
        hours_to_freeze,
        recent_rollbacks,
        extra: Default::default(),
    })
}
