//! The composite judge: members combined by all, any, or a weighted
//! majority, with must-pass members.

use super::*;

/// The options of this family's judges, as their `config` may give them
/// (which of them a judge takes is [`known_options`]; a type is checked
/// here, `null` is the same as absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Options {
    mode: Option<String>,
    require_all: Option<bool>,
    threshold: Option<f64>,
    judges: Option<Value>,
}

#[derive(Debug, Clone)]
pub enum CompositeMode {
    All,
    Any,
    /// Passing weight must exceed this share of the total weight.
    Weighted(f64),
}

#[derive(Debug, Clone)]
pub struct Member {
    pub judge: JudgeSpec,
    pub weight: f64,
    pub must_pass: bool,
}

pub(super) fn combine(
    name: String,
    mode: &CompositeMode,
    members: &[Member],
    results: Vec<JudgeResult>,
    weight: f64,
) -> JudgeResult {
    let total: f64 = members.iter().map(|m| m.weight).sum();
    let passing: f64 = members
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.passed)
        .map(|(m, _)| m.weight)
        .sum();
    let must_failed: Vec<&str> = members
        .iter()
        .zip(&results)
        .filter(|(m, r)| m.must_pass && !r.passed)
        .map(|(_, r)| r.judge.as_str())
        .collect();
    let ok = must_failed.is_empty()
        && match mode {
            CompositeMode::All => results.iter().all(|r| r.passed),
            CompositeMode::Any => results.iter().any(|r| r.passed),
            CompositeMode::Weighted(t) => total > 0.0 && passing / total > *t,
        };
    let score = if total > 0.0 {
        members
            .iter()
            .zip(&results)
            .map(|(m, r)| m.weight * r.score)
            .sum::<f64>()
            / total
    } else {
        0.0
    };
    let reason = if !must_failed.is_empty() {
        format!("must-pass member(s) failed: {}", must_failed.join(", "))
    } else {
        format!(
            "{} of {} members passed (weight {passing} of {total})",
            results.iter().filter(|r| r.passed).count(),
            results.len()
        )
    };
    JudgeResult {
        judge: name,
        passed: ok,
        score,
        reason,
        weight,
        details: json!({ "members": results }),
    }
}

/// Builds a composite judge from its `config`.
pub(super) fn build(
    kind: &str,
    cfg: Map<String, Value>,
    at: &dyn std::fmt::Display,
) -> Result<JudgeSpec, SuiteError> {
    let mut opts: Options = options(cfg, at)?;
    Ok(match kind {
        "composite" => {
            let mode = match (opts.mode.take().as_deref(), opts.require_all.as_ref()) {
                (Some("all"), _) => CompositeMode::All,
                (Some("any"), _) => CompositeMode::Any,
                (Some("weighted"), _) => {
                    let t = finite(opts.threshold, "threshold", at)?.unwrap_or(0.5);
                    if !(0.0..=1.0).contains(&t) {
                        return Err(err(at, "'threshold' must be between 0 and 1"));
                    }
                    CompositeMode::Weighted(t)
                }
                (Some(other), _) => {
                    return Err(err(
                        at,
                        format!("mode '{other}' is not all, any or weighted"),
                    ));
                }
                // The existing tool: require_all (default true), else a weighted majority.
                (None, _) if opts.require_all.unwrap_or(true) => CompositeMode::All,
                (None, _) => CompositeMode::Weighted(0.5),
            };
            let Some(Value::Array(items)) = opts.judges.as_ref() else {
                return Err(err(at, "'judges' must list the member judges"));
            };
            if items.is_empty() {
                return Err(err(at, "'judges' is empty"));
            }
            let mut members = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let mut obj = item
                    .as_object()
                    .cloned()
                    .ok_or_else(|| err(at, format!("judges[{i}] must be a mapping")))?;
                let must_pass = obj
                    .remove("must_pass")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                let raw: RawAssertion = serde_json::from_value(Value::Object(obj))
                    .map_err(|e| err(at, format!("judges[{i}]: {e}")))?;
                let at = format!("{at} judges[{i}] ({})", raw.kind);
                let a = raw.build(&at)?;
                members.push(Member {
                    judge: a.judge,
                    weight: a.weight,
                    must_pass,
                });
            }
            JudgeSpec::Composite { mode, members }
        }
        other => return Err(err(at, format!("'{other}' is not a composite judge"))),
    })
}

/// Judges one output with a composite judge.
pub(super) fn judge(
    spec: &JudgeSpec,
    out: &AgentOutput,
    case: &CaseView<'_>,
    weight: f64,
    verdict: &dyn Fn(bool, String, Value) -> JudgeResult,
) -> JudgeResult {
    match spec {
        JudgeSpec::Composite { mode, members } => {
            let results: Vec<JudgeResult> = members
                .iter()
                .map(|m| m.judge.judge(out, case, m.weight))
                .collect();
            combine(spec.name(), mode, members, results, weight)
        }
        _ => verdict(
            false,
            format!("{} is not a composite judge", spec.name()),
            Value::Null,
        ),
    }
}
