//! Gates: each yields passed, failed or pending with a reason a person can act
//! on; pending time gates say when they will pass. Pure functions over facts
//! the caller gathered under the store lock.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use releaseops_format::config::ProjectConfig;
use releaseops_format::environment::{FreezeWindow, PromotionPolicy, WEEKDAYS};
use releaseops_format::history::{Gate, GateResult, GateStatus};
use releaseops_format::manifest::BundleManifest;
use releaseops_format::review::Reviews;
use releaseops_format::time;
use releaseops_stats::Verdict;

use crate::actor_matches;

fn gate(name: Gate, status: GateStatus, reason: impl Into<String>) -> GateResult {
    GateResult {
        gate: name,
        status,
        reason: reason.into(),
        passes_at: None,
    }
}

/// Human duration: `1d 2h`, `3h 5m`, `42s`.
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    let (days, hours, mins) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{secs}s")
    }
}

/// Everything the gates look at for one promotion.
pub struct Facts<'a> {
    pub manifest: &'a BundleManifest,
    /// Who created the bundle, as the history recorded it.
    pub creator: &'a str,
    pub env: &'a str,
    pub policy: Option<&'a PromotionPolicy>,
    pub config: &'a ProjectConfig,
    pub upstream: Option<&'a str>,
    /// When this version went live in the upstream environment, if it is live there.
    pub upstream_live_since: Option<Timestamp>,
    pub reviews: &'a Reviews,
    /// Per approval in `reviews` (same order): unsigned (`None`), or whether
    /// its SSH signature verifies. Checked only when a policy asks for signed
    /// approvals; empty otherwise.
    pub signatures: &'a [Option<Result<(), String>>],
    /// The stored reports for this bundle hash, judged for this environment.
    pub evals: &'a crate::evidence::EvalEvidence,
    /// With `eval_no_regression_vs`: per suite, the comparison against the
    /// newest run on the version live there (`None`: no run to compare with).
    pub regressions: &'a [(String, String, Option<releaseops_eval::compare::Comparison>)],
    pub now: Timestamp,
}

/// The pipeline gate: the target is in the pipeline and, unless it is the
/// first stage, the version is live in the stage before it.
pub fn pipeline(f: &Facts<'_>) -> GateResult {
    if f.config.position(f.env).is_none() {
        return gate(
            Gate::Pipeline,
            GateStatus::Failed,
            format!(
                "'{}' is not in the pipeline ({})",
                f.env,
                f.config.pipeline.join(" -> ")
            ),
        );
    }

    match f.upstream {
        None => gate(
            Gate::Pipeline,
            GateStatus::Passed,
            format!("'{}' is the first stage", f.env),
        ),
        Some(up) if f.upstream_live_since.is_some() => gate(
            Gate::Pipeline,
            GateStatus::Passed,
            format!("live in '{up}', the stage before '{}'", f.env),
        ),
        Some(up) => gate(
            Gate::Pipeline,
            GateStatus::Failed,
            format!(
                "{}@{} is not live in '{up}'; promote it there first",
                f.manifest.metadata.id, f.manifest.metadata.version
            ),
        ),
    }
}

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

/// A verdict as the gate's reason spells it (nothing for a report without one).
fn word(d: &Option<Verdict>) -> &'static str {
    d.map_or("", Verdict::as_str)
}

pub fn eval(f: &Facts<'_>, p: &PromotionPolicy) -> GateResult {
    let hash = f
        .manifest
        .bundle_hash
        .clone()
        .unwrap_or_else(|| f.manifest.compute_hash());
    let short = &hash[..hash.len().min(19)];
    let md = &f.manifest.metadata;
    let run_hint = format!(
        "run `releaseops eval run <suite> --bundle {} --version {}`",
        md.id, md.version
    );
    let ok = |d: &Option<Verdict>| match d {
        Some(Verdict::Pass) => true,
        Some(Verdict::Inconclusive) => p.eval_allow_inconclusive,
        Some(Verdict::Fail) | None => false,
    };
    // The newest report young enough per suite decides that suite.
    let stale = f.evals.stale_reports;
    let bar = p
        .eval_min_pass_rate
        .map(|b| format!(" against this environment's {:.0}% bar", b * 100.0))
        .unwrap_or_default();
    let judged: Vec<(&str, Option<Verdict>, Option<String>)> = f
        .evals
        .suites
        .iter()
        .map(|s| (s.suite(), s.verdict, s.why.clone()))
        .collect();
    let age_note = if stale > 0 {
        format!(
            " ({stale} report(s) older than the {}h limit ignored)",
            p.eval_max_age_hours.unwrap_or(0.0)
        )
    } else {
        String::new()
    };
    let run_hint = format!("{run_hint}{age_note}");
    // No significant regression against the version live in the named environment.
    if let Some(base_env) = &p.eval_no_regression_vs {
        for (suite, base_version, cmp) in f.regressions {
            match cmp {
                None => {
                    return gate(
                        Gate::Eval,
                        GateStatus::Pending,
                        format!(
                            "no run of suite '{suite}' on {}@{base_version} (live in '{base_env}') to compare with; `releaseops eval run {suite} --bundle {} --version {} --baseline {base_env}`",
                            md.id, md.id, md.version
                        ),
                    );
                }
                Some(c) if c.verdict == releaseops_eval::compare::Change::Regression => {
                    return gate(
                        Gate::Eval,
                        GateStatus::Failed,
                        format!(
                            "suite '{suite}' regressed significantly against {} (McNemar p = {:.4}): {}",
                            c.baseline,
                            c.p_value,
                            c.regressed.join(", ")
                        ),
                    );
                }
                Some(_) => {}
            }
        }
    }
    let required: Vec<&str> = p.eval_suites.iter().map(String::as_str).collect();
    if required.is_empty() {
        if let Some((s, d, _)) = judged.iter().find(|(_, d, _)| ok(d)) {
            return gate(
                Gate::Eval,
                GateStatus::Passed,
                format!("suite '{s}' {} for bundle hash {short}…{bar}", word(d)),
            );
        }
        return match judged.first() {
            Some((s, d, why)) => gate(
                Gate::Eval,
                GateStatus::Failed,
                format!(
                    "suite '{s}' {} for bundle hash {short}…{bar}{}",
                    word(d),
                    why.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
                ),
            ),
            None => gate(
                Gate::Eval,
                GateStatus::Pending,
                format!("no eval report for bundle hash {short}…; {run_hint}"),
            ),
        };
    }
    let mut missing = Vec::new();
    for suite in &required {
        match judged.iter().find(|(s, _, _)| s == suite) {
            Some((_, d, _)) if ok(d) => {}
            Some((_, d, why)) => {
                return gate(
                    Gate::Eval,
                    GateStatus::Failed,
                    format!(
                        "required suite '{suite}' {} for bundle hash {short}…{bar}{}",
                        word(d),
                        why.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
                    ),
                );
            }
            None => missing.push(*suite),
        }
    }
    if missing.is_empty() {
        gate(
            Gate::Eval,
            GateStatus::Passed,
            format!("required suites passed{bar}: {}", required.join(", ")),
        )
    } else {
        gate(
            Gate::Eval,
            GateStatus::Pending,
            format!(
                "no report yet for required suite(s) {}; {}",
                missing.join(", "),
                run_hint.replace("<suite>", missing.first().copied().unwrap_or("<suite>"))
            ),
        )
    }
}

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

/// If `now` falls in the window: when that occurrence ends.
fn window_end(w: &FreezeWindow, now: Timestamp) -> Result<Option<Timestamp>, String> {
    let tz = TimeZone::get(&w.timezone).map_err(|_| {
        format!(
            "unknown time zone '{}' in freeze window '{}'",
            w.timezone,
            w.label()
        )
    })?;
    let local = now.to_zoned(tz.clone());
    let today = local.date();
    let at = |d: jiff::civil::Date, mins: u32| -> Option<Timestamp> {
        let day = if mins >= 24 * 60 {
            d.checked_add(1.day()).ok()?
        } else {
            d
        };
        let m = mins % (24 * 60);
        day.at((m / 60) as i8, (m % 60) as i8, 0, 0)
            .to_zoned(tz.clone())
            .ok()
            .map(|z| z.timestamp())
    };
    for (a, b) in &w.dates {
        if today >= *a && today <= *b {
            return Ok(b.checked_add(1.day()).ok().and_then(|next| at(next, 0)));
        }
    }
    if !w.days.is_empty() {
        let (s, e) = match (w.start, w.end) {
            (Some(s), Some(e)) => (s.minutes(), e.minutes()),
            _ => (0, 24 * 60),
        };
        for back in [0i64, 1] {
            let Ok(d) = today.checked_sub(back.days()) else {
                continue;
            };
            let wd = d.weekday().to_monday_zero_offset() as u8;
            if !w.days.contains(&wd) {
                continue;
            }
            let start = at(d, s);
            let end = if e > s {
                at(d, e)
            } else {
                d.checked_add(1.day()).ok().and_then(|n| at(n, e))
            };
            if let (Some(start), Some(end)) = (start, end)
                && start <= now
                && now < end
            {
                return Ok(Some(end));
            }
        }
    }
    Ok(None)
}

fn describe(w: &FreezeWindow) -> String {
    let mut parts = Vec::new();
    if !w.days.is_empty() {
        let days: Vec<&str> = w
            .days
            .iter()
            .map(|d| WEEKDAYS[usize::from(*d) % 7])
            .collect();
        match (w.start, w.end) {
            (Some(s), Some(e)) => parts.push(format!("{} {s}-{e}", days.join(","))),
            _ => parts.push(days.join(",")),
        }
    }
    if !w.raw_dates.is_empty() {
        parts.push(w.raw_dates.join(", "));
    }
    format!("{} ({} {})", w.label(), parts.join("; "), w.timezone)
}

pub fn freeze(f: &Facts<'_>, p: &PromotionPolicy) -> GateResult {
    let mut t = f.now;
    let mut hit: Vec<String> = Vec::new();
    // Windows can chain (a holiday right after a weekend); follow them.
    for _ in 0..32 {
        let mut next = None;
        for w in &p.freeze_windows {
            match window_end(w, t) {
                Err(e) => return gate(Gate::Freeze, GateStatus::Failed, e),
                Ok(Some(end)) => {
                    let d = describe(w);
                    if !hit.contains(&d) {
                        hit.push(d);
                    }
                    next = Some(next.map_or(end, |n: Timestamp| n.max(end)));
                }
                Ok(None) => {}
            }
        }
        match next {
            Some(end) if end > t => t = end,
            _ => break,
        }
    }
    if hit.is_empty() {
        return gate(
            Gate::Freeze,
            GateStatus::Passed,
            "no freeze window is active",
        );
    }
    let reason = p
        .freeze_windows
        .iter()
        .find_map(|w| w.reason.clone())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    GateResult {
        gate: Gate::Freeze,
        status: GateStatus::Pending,
        reason: format!(
            "'{}' is frozen by {}{reason}; passes at {}",
            f.env,
            hit.join(" then "),
            time::format(t)
        ),
        passes_at: Some(time::format(t)),
    }
}

/// Every gate for a promotion, in a fixed order.
pub fn evaluate(f: &Facts<'_>) -> Vec<GateResult> {
    let mut out = vec![pipeline(f), rejected(f)];
    if let Some(p) = f.policy {
        if p.requires_eval {
            out.push(eval(f, p));
        }
        if p.requires_approval || p.min_signed_approvals > 0 {
            out.push(approval(f, p));
        }
        if p.soak_hours > 0.0 {
            out.push(soak(f, p));
        }
        if !p.freeze_windows.is_empty() {
            out.push(freeze(f, p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use releaseops_format::environment::EnvironmentFile;

    fn policy(yaml: &str) -> PromotionPolicy {
        let doc = format!("environment: prod\npromotion_policy:\n{yaml}");
        EnvironmentFile::parse(doc.as_bytes())
            .unwrap()
            .promotion_policy
            .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        time::parse(s).unwrap()
    }

    fn manifest() -> BundleManifest {
        BundleManifest::parse(b"schema_version: 2\nmetadata:\n  id: a\n  version: 1.0.0\n  created_by: Carol <carol@x>\n").unwrap()
    }

    static NO_EVALS: crate::evidence::EvalEvidence = crate::evidence::EvalEvidence {
        suites: Vec::new(),
        stale_reports: 0,
        stale_suites: Vec::new(),
    };

    fn facts<'a>(
        m: &'a BundleManifest,
        p: &'a PromotionPolicy,
        c: &'a ProjectConfig,
        r: &'a Reviews,
        now: &str,
    ) -> Facts<'a> {
        Facts {
            manifest: m,
            creator: &m.metadata.created_by,
            env: "prod",
            policy: Some(p),
            config: c,
            upstream: Some("staging"),
            upstream_live_since: Some(ts("2026-11-20T10:00:00Z")),
            reviews: r,
            signatures: &[],
            evals: &NO_EVALS,
            regressions: &[],
            now: ts(now),
        }
    }

    #[test]
    fn freeze_weekly_window_across_midnight_in_a_named_zone() {
        let p = policy(
            "  freeze_windows:\n  - name: weekend\n    timezone: Europe/Berlin\n    days: [fri]\n    start: '17:00'\n    end: '09:00'\n",
        );
        let (m, c, r) = (manifest(), ProjectConfig::default(), Reviews::default());
        // Friday 2026-11-20 18:00 Berlin = 17:00 UTC: frozen until Saturday 09:00 Berlin (08:00 UTC).
        let g = freeze(&facts(&m, &p, &c, &r, "2026-11-20T17:00:00Z"), &p);
        assert_eq!(g.status, GateStatus::Pending, "{}", g.reason);
        assert_eq!(g.passes_at.as_deref(), Some("2026-11-21T08:00:00+00:00"));
        // Thursday: open.
        assert_eq!(
            freeze(&facts(&m, &p, &c, &r, "2026-11-19T17:00:00Z"), &p).status,
            GateStatus::Passed
        );
        // Saturday 08:30 Berlin, still inside Friday's occurrence.
        assert_eq!(
            freeze(&facts(&m, &p, &c, &r, "2026-11-21T07:30:00Z"), &p).status,
            GateStatus::Pending
        );
    }

    #[test]
    fn freeze_windows_that_touch_chain_into_a_weekend() {
        let p = policy(
            "  freeze_windows:\n  - timezone: UTC\n    days: [fri]\n    start: '18:00'\n    end: '00:00'\n  - timezone: UTC\n    days: [sat, sun]\n  - timezone: UTC\n    days: [mon]\n    start: '00:00'\n    end: '06:00'\n",
        );
        let (m, c, r) = (manifest(), ProjectConfig::default(), Reviews::default());
        // Friday 2026-11-20 19:00: frozen through the weekend until Monday 06:00.
        let g = freeze(&facts(&m, &p, &c, &r, "2026-11-20T19:00:00Z"), &p);
        assert_eq!(g.status, GateStatus::Pending, "{}", g.reason);
        assert_eq!(g.passes_at.as_deref(), Some("2026-11-23T06:00:00+00:00"));
        // Monday 06:00 exactly: open.
        assert_eq!(
            freeze(&facts(&m, &p, &c, &r, "2026-11-23T06:00:00Z"), &p).status,
            GateStatus::Passed
        );
    }

    #[test]
    fn freeze_dates_chain_and_bad_zone_fails_closed() {
        let p = policy(
            "  freeze_windows:\n  - timezone: UTC\n    dates: ['2026-12-24..2026-12-26']\n  - timezone: UTC\n    dates: ['2026-12-27']\n",
        );
        let (m, c, r) = (manifest(), ProjectConfig::default(), Reviews::default());
        let g = freeze(&facts(&m, &p, &c, &r, "2026-12-25T12:00:00Z"), &p);
        assert_eq!(
            g.passes_at.as_deref(),
            Some("2026-12-28T00:00:00+00:00"),
            "{}",
            g.reason
        );
        let bad =
            policy("  freeze_windows:\n  - timezone: Mars/Olympus\n    dates: ['2026-12-24']\n");
        assert_eq!(
            freeze(&facts(&m, &bad, &c, &r, "2026-12-25T12:00:00Z"), &bad).status,
            GateStatus::Failed
        );
    }

    #[test]
    fn soak_passes_pending_and_fails() {
        let p = policy("  soak_hours: 24\n");
        let (m, c, r) = (manifest(), ProjectConfig::default(), Reviews::default());
        let g = soak(&facts(&m, &p, &c, &r, "2026-11-20T12:00:00Z"), &p);
        assert_eq!(g.status, GateStatus::Pending);
        assert_eq!(g.passes_at.as_deref(), Some("2026-11-21T10:00:00+00:00"));
        assert_eq!(
            soak(&facts(&m, &p, &c, &r, "2026-11-21T10:00:00Z"), &p).status,
            GateStatus::Passed
        );
        let mut f = facts(&m, &p, &c, &r, "2026-11-21T10:00:00Z");
        f.upstream_live_since = None;
        assert_eq!(soak(&f, &p).status, GateStatus::Failed);
    }

    #[test]
    fn approval_counts_eligible_distinct_non_creators() {
        let p =
            policy("  requires_approval: true\n  approval_teams: [safety]\n  min_approvals: 2\n");
        let mut c = ProjectConfig::default();
        c.teams.insert(
            "safety".into(),
            vec!["alice@x".into(), "bob@x".into(), "carol@x".into()],
        );
        let m = manifest();
        let ap = |a: &str| releaseops_format::review::Approval {
            env: "prod".into(),
            actor: a.into(),
            at: "t".into(),
            comment: None,
            signature: None,
        };
        let mut r = Reviews {
            approvals: vec![
                ap("Carol <carol@x>"),
                ap("Alice <alice@x>"),
                ap("Alice <alice@x>"),
                ap("Mallory <m@x>"),
            ],
            ..Default::default()
        };
        let g = approval(&facts(&m, &p, &c, &r, "2026-11-21T00:00:00Z"), &p);
        assert_eq!(g.status, GateStatus::Pending, "{}", g.reason);
        assert!(
            g.reason.contains("created the bundle") && g.reason.contains("not an eligible"),
            "{}",
            g.reason
        );
        r.approvals.push(ap("Bob <bob@x>"));
        assert_eq!(
            approval(&facts(&m, &p, &c, &r, "2026-11-21T00:00:00Z"), &p).status,
            GateStatus::Passed
        );
        let undefined = policy("  requires_approval: true\n  approval_teams: [ghosts]\n");
        assert_eq!(
            approval(
                &facts(&m, &undefined, &c, &r, "2026-11-21T00:00:00Z"),
                &undefined
            )
            .status,
            GateStatus::Failed
        );
    }
}
