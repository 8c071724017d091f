//! The tool_call judge: was a tool called (or not), with arguments that
//! equal, match a pattern, or fall within bounds.

use super::*;

/// The options of this family's judges, as their `config` may give them
/// (which of them a judge takes is [`known_options`]; a type is checked
/// here, `null` is the same as absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Options {
    name: Option<String>,
    called: Option<bool>,
    arguments: Option<Value>,
}

#[derive(Debug, Clone)]
pub enum ArgMatcher {
    Equals(Value),
    Pattern(Arc<Regex>),
    Bounds { min: Option<f64>, max: Option<f64> },
}

pub(super) fn arg_problem(args: &Value, key: &str, m: &ArgMatcher) -> Option<String> {
    let Some(v) = args.get(key) else {
        return Some(format!("argument '{key}' is missing"));
    };
    match m {
        ArgMatcher::Equals(want) => {
            (v != want).then(|| format!("argument '{key}' is {v}, expected {want}"))
        }
        ArgMatcher::Pattern(re) => {
            let s = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            (!re.is_match(&s))
                .then(|| format!("argument '{key}' = {s:?} does not match /{}/", re.as_str()))
        }
        ArgMatcher::Bounds { min, max } => match v.as_f64() {
            None => Some(format!("argument '{key}' = {v} is not a number")),
            Some(x) if min.is_some_and(|m| x < m) => Some(format!(
                "argument '{key}' = {x} is below {}",
                min.unwrap_or(0.0)
            )),
            Some(x) if max.is_some_and(|m| x > m) => Some(format!(
                "argument '{key}' = {x} is above {}",
                max.unwrap_or(0.0)
            )),
            Some(_) => None,
        },
    }
}

/// Builds a tools judge from its `config`.
pub(super) fn build(
    kind: &str,
    cfg: Map<String, Value>,
    at: &dyn std::fmt::Display,
) -> Result<JudgeSpec, SuiteError> {
    let mut opts: Options = options(cfg, at)?;
    Ok(match kind {
        "tool_call" => {
            let name = opts
                .name
                .take()
                .ok_or_else(|| err(at, "'name' (the tool) is required"))?;
            let mut arguments = Vec::new();
            if let Some(args) = opts.arguments.as_ref() {
                let Value::Object(args) = args else {
                    return Err(err(at, "'arguments' must be a mapping"));
                };
                for (k, v) in args {
                    if let Value::Object(o) = v {
                        let known: &[&str] = if o.contains_key("pattern") {
                            &["pattern"]
                        } else if o.contains_key("equals") {
                            &["equals"]
                        } else {
                            &["min", "max"]
                        };
                        if let Some(msg) = releaseops_format::yaml::unknown_key(o.keys(), known) {
                            return Err(err(at, format!("argument '{k}': {msg}")));
                        }
                    }
                    let m = match v {
                        Value::Object(o) if o.contains_key("pattern") => {
                            let p = match o.get("pattern") {
                                Some(Value::String(p)) => p.as_str(),
                                None | Some(Value::Null) => "",
                                Some(other) => {
                                    return Err(err(
                                        at,
                                        format!("'pattern' must be a string, got {other}"),
                                    ));
                                }
                            };
                            ArgMatcher::Pattern(compile(p, "", at)?)
                        }
                        Value::Object(o) if o.contains_key("min") || o.contains_key("max") => {
                            ArgMatcher::Bounds {
                                min: get_f64(o, "min", at)?,
                                max: get_f64(o, "max", at)?,
                            }
                        }
                        Value::Object(o) if o.contains_key("equals") => {
                            ArgMatcher::Equals(o["equals"].clone())
                        }
                        Value::Object(_) => {
                            return Err(err(
                                at,
                                format!("argument '{k}': give equals, pattern, or min/max"),
                            ));
                        }
                        other => ArgMatcher::Equals(other.clone()),
                    };
                    arguments.push((k.clone(), m));
                }
            }
            JudgeSpec::ToolCall {
                name,
                called: opts.called.unwrap_or(true),
                arguments,
            }
        }
        other => return Err(err(at, format!("'{other}' is not a tools judge"))),
    })
}

/// Judges one output with a tools judge.
pub(super) fn judge(
    spec: &JudgeSpec,
    out: &AgentOutput,
    verdict: &dyn Fn(bool, String, Value) -> JudgeResult,
) -> JudgeResult {
    match spec {
        JudgeSpec::ToolCall {
            name,
            called,
            arguments,
        } => {
            let calls: Vec<_> = out.tool_calls.iter().filter(|c| c.name == *name).collect();
            if !called {
                return verdict(
                    calls.is_empty(),
                    if calls.is_empty() {
                        format!("{name} was not called")
                    } else {
                        format!("{name} was called")
                    },
                    Value::Null,
                );
            }
            if calls.is_empty() {
                let seen: Vec<&str> = out.tool_calls.iter().map(|c| c.name.as_str()).collect();
                return verdict(
                    false,
                    format!(
                        "{name} was not called (calls: {})",
                        if seen.is_empty() {
                            "none".into()
                        } else {
                            seen.join(", ")
                        }
                    ),
                    Value::Null,
                );
            }
            let mut last_problem = String::new();
            for c in &calls {
                match arguments
                    .iter()
                    .find_map(|(k, m)| arg_problem(&c.arguments, k, m))
                {
                    None => {
                        return verdict(
                            true,
                            format!("{name} was called with matching arguments"),
                            json!({"arguments": c.arguments}),
                        );
                    }
                    Some(p) => last_problem = p,
                }
            }
            verdict(
                false,
                format!("{name} was called, but {last_problem}"),
                Value::Null,
            )
        }
        _ => verdict(
            false,
            format!("{} is not a tools judge", spec.name()),
            Value::Null,
        ),
    }
}
