//! The eval gate: the required suites passed on this exact content, judged
//! from the evidence the promotion gathered ([`crate::evidence`]).

use super::*;

/// A verdict as the gate's reason spells it (nothing for a report without one).
pub(super) fn word(d: &Option<Verdict>) -> &'static str {
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
