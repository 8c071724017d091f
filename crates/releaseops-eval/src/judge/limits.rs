//! Limits: max_cost (USD per case) and max_latency_ms.

use super::*;

/// The options of this family's judges, as their `config` may give them
/// (which of them a judge takes is [`known_options`]; a type is checked
/// here, `null` is the same as absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Options {
    max: Option<f64>,
}

/// Builds a limits judge from its `config`.
pub(super) fn build(
    kind: &str,
    cfg: Map<String, Value>,
    at: &dyn std::fmt::Display,
) -> Result<JudgeSpec, SuiteError> {
    let opts: Options = options(cfg, at)?;
    Ok(match kind {
        "max_cost" => JudgeSpec::MaxCost {
            max: finite(opts.max, "max", at)?
                .ok_or_else(|| err(at, "'max' (USD per case) is required"))?,
        },
        "max_latency_ms" => JudgeSpec::MaxLatencyMs {
            max: finite(opts.max, "max", at)?
                .ok_or_else(|| err(at, "'max' (milliseconds) is required"))?,
        },
        other => return Err(err(at, format!("'{other}' is not a limits judge"))),
    })
}

/// Judges one output with a limits judge.
pub(super) fn judge(
    spec: &JudgeSpec,
    out: &AgentOutput,
    verdict: &dyn Fn(bool, String, Value) -> JudgeResult,
) -> JudgeResult {
    match spec {
        // No cost known is a failure, not a pass: the bound cannot be shown.
        JudgeSpec::MaxCost { max } => match out.usage.as_ref().and_then(|u| u.cost_usd) {
            None => verdict(
                false,
                "no cost known: give the suite `pricing`, or have the agent report usage.cost_usd"
                    .into(),
                Value::Null,
            ),
            Some(c) => verdict(
                c <= *max,
                format!(
                    "cost ${c:.6} {} the ${max:.6} limit",
                    if c <= *max { "within" } else { "over" }
                ),
                json!({"cost_usd": c}),
            ),
        },
        JudgeSpec::MaxLatencyMs { max } => {
            let ok = out.latency_ms <= *max;
            verdict(
                ok,
                format!(
                    "latency {:.0} ms {} the {max:.0} ms limit",
                    out.latency_ms,
                    if ok { "within" } else { "over" }
                ),
                Value::Null,
            )
        }
        _ => verdict(
            false,
            format!("{} is not a limits judge", spec.name()),
            Value::Null,
        ),
    }
}
