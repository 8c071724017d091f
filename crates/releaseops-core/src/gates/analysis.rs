//! The canary analysis gate: the candidate's production traffic in the
//! stage before must not be significantly worse than what the baseline
//! environment runs now (`analytics compare`, over the policy's window and
//! metrics). Too little traffic on either side is pending and says how much
//! is missing; a trace store that cannot be read fails closed.

use releaseops_traces::analytics::{Direction, MetricComparison, Verdict, describe_change};

use super::*;
use crate::facts::AnalysisEvidence;

/// How much worse `m` got, in the unit `max_increase` is written in: rate
/// for error_rate, relative to the baseline for the rest (a baseline of
/// zero that grew counts as without bound).
fn increase(m: &MetricComparison) -> f64 {
    if m.name == "error_rate" {
        m.change
    } else {
        m.relative_change
            .unwrap_or(if m.change > 0.0 { f64::INFINITY } else { 0.0 })
    }
}

fn allowed(name: &str, tol: f64) -> String {
    if name == "error_rate" {
        format!("{:+.1} points", tol * 100.0)
    } else {
        format!("{:+.0}%", tol * 100.0)
    }
}

pub fn analysis(f: &Facts<'_>, p: &PromotionPolicy) -> GateResult {
    let Some(a) = &p.requires_analysis else {
        return gate(Gate::Analysis, GateStatus::Passed, "no analysis asked for");
    };
    let Some(up) = f.upstream else {
        return gate(
            Gate::Analysis,
            GateStatus::Failed,
            format!(
                "'{}' has no stage before it, so there is no candidate traffic to analyse; move requires_analysis to a later stage",
                f.env
            ),
        );
    };
    // A baseline that is no stage of the pipeline (a typo) would never have
    // anything live to compare with: that is a mistake, not a pass.
    if !f.config.pipeline.iter().any(|e| e == &a.baseline_env) {
        return gate(
            Gate::Analysis,
            GateStatus::Failed,
            format!(
                "requires_analysis.baseline_env '{}' is not in the pipeline ({}); name the environment whose version is the baseline",
                a.baseline_env,
                f.config.pipeline.join(", ")
            ),
        );
    }
    let Some(ev) = f.analysis else {
        return gate(
            Gate::Analysis,
            GateStatus::Failed,
            "the traffic was not read (this is a bug: the facts lack it)",
        );
    };
    let AnalysisEvidence {
        baseline_version,
        comparison,
        ..
    } = ev;
    let Some(base) = baseline_version else {
        return gate(
            Gate::Analysis,
            GateStatus::Passed,
            format!(
                "nothing of this bundle runs in '{}' to compare with",
                a.baseline_env
            ),
        );
    };
    let c = match comparison {
        Ok(c) => c,
        Err(e) => {
            return gate(
                Gate::Analysis,
                GateStatus::Failed,
                format!("the trace store could not be read: {e}"),
            );
        }
    };
    let sides = format!(
        "{} traces in '{up}' against {base}'s {} in '{}' over the last {}h",
        c.candidate.sample_size, c.baseline.sample_size, a.baseline_env, a.window_hours
    );
    if c.verdict == Verdict::InsufficientData {
        let missing = |n: u64| a.min_samples.saturating_sub(n);
        let mut need = Vec::new();
        if c.candidate.sample_size < a.min_samples {
            need.push(format!(
                "{} more in '{up}'",
                missing(c.candidate.sample_size)
            ));
        }
        if c.baseline.sample_size < a.min_samples {
            need.push(format!(
                "{} more of {base} in '{}'",
                missing(c.baseline.sample_size),
                a.baseline_env
            ));
        }
        return gate(
            Gate::Analysis,
            GateStatus::Pending,
            format!(
                "{sides}; needs {} on each side: {}",
                a.min_samples,
                need.join(", ")
            ),
        );
    }
    // Every metric judged must have been compared, on enough traces: a
    // metric no trace reports (cost, when nothing prices its calls) is
    // missing evidence, never a pass.
    let unjudged: Vec<String> = a
        .metrics
        .iter()
        .filter(|m| {
            let compared = c.metrics.iter().any(|x| &x.name == *m);
            let priced = |s: &releaseops_traces::analytics::Side| {
                s.metrics.cost.map_or(0, |c| c.known) >= a.min_samples
            };
            !compared || (m.as_str() == "cost" && !(priced(&c.baseline) && priced(&c.candidate)))
        })
        .cloned()
        .collect();
    if !unjudged.is_empty() {
        return gate(
            Gate::Analysis,
            GateStatus::Pending,
            format!(
                "{sides}; not enough traces report {} to judge it",
                unjudged.join(", ")
            ),
        );
    }
    let worse: Vec<String> = c
        .metrics
        .iter()
        .filter(|m| m.significant && m.direction == Direction::Worse)
        .filter_map(|m| {
            let tol = a.max_increase.get(&m.name).copied().unwrap_or(0.0);
            (increase(m) > tol).then(|| {
                if tol > 0.0 {
                    format!(
                        "{}, beyond the {} allowed",
                        describe_change(m),
                        allowed(&m.name, tol)
                    )
                } else {
                    describe_change(m)
                }
            })
        })
        .collect();
    if worse.is_empty() {
        gate(
            Gate::Analysis,
            GateStatus::Passed,
            format!(
                "{sides}: no significant regression in {}",
                a.metrics.join(", ")
            ),
        )
    } else {
        gate(
            Gate::Analysis,
            GateStatus::Failed,
            format!("{sides}: {}", worse.join("; ")),
        )
    }
}
