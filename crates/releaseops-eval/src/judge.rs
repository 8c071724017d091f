//! Judges (assertions). Each yields a verdict, a score in 0..=1, a reason and
//! the judge's identity. Configuration is checked when the suite loads; judging
//! itself cannot fail.

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::suite::{Case, RawAssertion, SuiteError};
use crate::target::AgentOutput;

#[derive(Debug, Clone)]
pub enum ArgMatcher {
    Equals(Value),
    Pattern(Regex),
    Bounds { min: Option<f64>, max: Option<f64> },
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

#[derive(Debug, Clone)]
pub enum JudgeSpec {
    ExactMatch {
        expected: Option<String>,
        case_sensitive: bool,
    },
    Contains {
        expected: Option<String>,
        case_sensitive: bool,
    },
    NotContains {
        expected: String,
        case_sensitive: bool,
    },
    Regex {
        regex: Regex,
    },
    JsonValid,
    ToolCall {
        name: String,
        called: bool,
        arguments: Vec<(String, ArgMatcher)>,
    },
    MaxLatencyMs {
        max: f64,
    },
    Composite {
        mode: CompositeMode,
        members: Vec<Member>,
    },
}

/// One judge's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeResult {
    /// The judge's identity, e.g. `regex` or `composite(all)`.
    #[serde(rename = "type")]
    pub judge: String,
    pub passed: bool,
    pub score: f64,
    pub reason: String,
    pub weight: f64,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

fn err(at: &str, msg: impl std::fmt::Display) -> SuiteError {
    SuiteError(format!("{at}: {msg}"))
}

fn get_str(cfg: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, SuiteError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(err(at, format!("'{key}' must be a string, got {other}"))),
    }
}

fn get_bool(
    cfg: &Map<String, Value>,
    key: &str,
    default: bool,
    at: &str,
) -> Result<bool, SuiteError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(err(
            at,
            format!("'{key}' must be true or false, got {other}"),
        )),
    }
}

fn get_f64(cfg: &Map<String, Value>, key: &str, at: &str) -> Result<Option<f64>, SuiteError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| err(at, format!("'{key}' must be a number, got {v}"))),
    }
}

/// Python `re` flag bits the existing tool's suites use.
fn python_flags(bits: u64, at: &str) -> Result<String, SuiteError> {
    let mut out = String::new();
    for (bit, flag) in [(2u64, 'i'), (8, 'm'), (16, 's'), (64, 'x')] {
        if bits & bit != 0 {
            out.push(flag);
        }
    }
    // re.UNICODE (32) is Python 3's default and Rust's; anything else has no equivalent.
    if bits & !(2 | 8 | 16 | 32 | 64) != 0 {
        return Err(err(
            at,
            format!(
                "regex flags {bits} include flags with no equivalent here (supported: 2 IGNORECASE, 8 MULTILINE, 16 DOTALL, 64 VERBOSE)"
            ),
        ));
    }
    Ok(out)
}

/// Suites repeat the same patterns across thousands of cases; compiling each
/// once keeps a 10,000-case suite fast to load. Bounded, per thread.
const REGEX_CACHE_MAX: usize = 4096;

thread_local! {
    static REGEX_CACHE: std::cell::RefCell<std::collections::HashMap<String, Regex>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn compile(pattern: &str, flags: &str, at: &str) -> Result<Regex, SuiteError> {
    let full = if flags.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{flags}){pattern}")
    };
    if let Some(re) = REGEX_CACHE.with(|c| c.borrow().get(&full).cloned()) {
        return Ok(re);
    }
    let re = regex::RegexBuilder::new(&full)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            err(
                at,
                format!(
                    "invalid regex {pattern:?}: {}",
                    e.to_string().lines().last().unwrap_or("error")
                ),
            )
        })?;
    REGEX_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= REGEX_CACHE_MAX {
            c.clear();
        }
        c.insert(full, re.clone());
    });
    Ok(re)
}

impl JudgeSpec {
    pub(crate) fn build(
        kind: &str,
        cfg: Map<String, Value>,
        at: &str,
    ) -> Result<JudgeSpec, SuiteError> {
        Ok(match kind {
            "exact_match" => JudgeSpec::ExactMatch {
                expected: get_str(&cfg, "expected", at)?,
                case_sensitive: get_bool(&cfg, "case_sensitive", true, at)?,
            },
            "contains" => JudgeSpec::Contains {
                expected: get_str(&cfg, "expected", at)?,
                case_sensitive: get_bool(&cfg, "case_sensitive", false, at)?,
            },
            "not_contains" => JudgeSpec::NotContains {
                expected: get_str(&cfg, "expected", at)?
                    .ok_or_else(|| err(at, "'expected' is required"))?,
                case_sensitive: get_bool(&cfg, "case_sensitive", false, at)?,
            },
            "regex" => {
                let pattern = get_str(&cfg, "pattern", at)?
                    .ok_or_else(|| err(at, "'pattern' is required"))?;
                let flags = match cfg.get("flags") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::Number(n)) => python_flags(n.as_u64().unwrap_or(u64::MAX), at)?,
                    Some(Value::String(s)) if s.chars().all(|c| "imsx".contains(c)) => s.clone(),
                    Some(other) => {
                        return Err(err(
                            at,
                            format!(
                                "'flags' must be a Python flags number or letters from imsx, got {other}"
                            ),
                        ));
                    }
                };
                JudgeSpec::Regex {
                    regex: compile(&pattern, &flags, at)?,
                }
            }
            "json_valid" => JudgeSpec::JsonValid,
            "tool_call" => {
                let name = get_str(&cfg, "name", at)?
                    .ok_or_else(|| err(at, "'name' (the tool) is required"))?;
                let mut arguments = Vec::new();
                if let Some(args) = cfg.get("arguments") {
                    let Value::Object(args) = args else {
                        return Err(err(at, "'arguments' must be a mapping"));
                    };
                    for (k, v) in args {
                        let m = match v {
                            Value::Object(o) if o.contains_key("pattern") => {
                                let p = get_str(o, "pattern", at)?.unwrap_or_default();
                                ArgMatcher::Pattern(compile(&p, "", at)?)
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
                    called: get_bool(&cfg, "called", true, at)?,
                    arguments,
                }
            }
            "max_latency_ms" => JudgeSpec::MaxLatencyMs {
                max: get_f64(&cfg, "max", at)?
                    .ok_or_else(|| err(at, "'max' (milliseconds) is required"))?,
            },
            "composite" => {
                let mode = match (
                    get_str(&cfg, "mode", at)?.as_deref(),
                    cfg.get("require_all"),
                ) {
                    (Some("all"), _) => CompositeMode::All,
                    (Some("any"), _) => CompositeMode::Any,
                    (Some("weighted"), _) => {
                        let t = get_f64(&cfg, "threshold", at)?.unwrap_or(0.5);
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
                    (None, _) if get_bool(&cfg, "require_all", true, at)? => CompositeMode::All,
                    (None, _) => CompositeMode::Weighted(0.5),
                };
                let Some(Value::Array(items)) = cfg.get("judges") else {
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
                    let a = raw.build(&format!("{at} judges[{i}] ({})", raw.kind))?;
                    members.push(Member {
                        judge: a.judge,
                        weight: a.weight,
                        must_pass,
                    });
                }
                JudgeSpec::Composite { mode, members }
            }
            "llm_judge" | "json_schema" | "max_cost" => {
                return Err(err(
                    at,
                    format!("judge '{kind}' is not available in this version of releaseops"),
                ));
            }
            other => {
                return Err(err(
                    at,
                    format!(
                        "unknown judge '{other}' (known: exact_match, contains, not_contains, regex, json_valid, tool_call, max_latency_ms, composite)"
                    ),
                ));
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            JudgeSpec::ExactMatch { .. } => "exact_match".into(),
            JudgeSpec::Contains { .. } => "contains".into(),
            JudgeSpec::NotContains { .. } => "not_contains".into(),
            JudgeSpec::Regex { .. } => "regex".into(),
            JudgeSpec::JsonValid => "json_valid".into(),
            JudgeSpec::ToolCall { .. } => "tool_call".into(),
            JudgeSpec::MaxLatencyMs { .. } => "max_latency_ms".into(),
            JudgeSpec::Composite { mode, .. } => match mode {
                CompositeMode::All => "composite(all)".into(),
                CompositeMode::Any => "composite(any)".into(),
                CompositeMode::Weighted(t) => format!("composite(weighted>{t})"),
            },
        }
    }

    /// Judges one output of one case.
    pub fn judge(&self, out: &AgentOutput, case: &Case, weight: f64) -> JudgeResult {
        let verdict = |passed: bool, reason: String, details: Value| JudgeResult {
            judge: self.name(),
            passed,
            score: if passed { 1.0 } else { 0.0 },
            reason,
            weight,
            details,
        };
        let fold = |s: &str, cs: bool| if cs { s.to_string() } else { s.to_lowercase() };
        match self {
            JudgeSpec::ExactMatch {
                expected,
                case_sensitive,
            }
            | JudgeSpec::Contains {
                expected,
                case_sensitive,
            } => {
                let Some(exp) = expected.as_ref().or(case.expected_output.as_ref()) else {
                    return verdict(
                        false,
                        "no expected value: give config.expected or the case's expected_output"
                            .into(),
                        Value::Null,
                    );
                };
                let (o, e) = (
                    fold(&out.output, *case_sensitive),
                    fold(exp, *case_sensitive),
                );
                let exact = matches!(self, JudgeSpec::ExactMatch { .. });
                let ok = if exact { o == e } else { o.contains(&e) };
                let what = if exact { "equals" } else { "contains" };
                verdict(
                    ok,
                    format!("output {}{what} {exp:?}", if ok { "" } else { "not " })
                        .replace("not equals", "does not equal")
                        .replace("not contains", "does not contain"),
                    json!({"expected": exp}),
                )
            }
            JudgeSpec::NotContains {
                expected,
                case_sensitive,
            } => {
                let ok =
                    !fold(&out.output, *case_sensitive).contains(&fold(expected, *case_sensitive));
                verdict(
                    ok,
                    if ok {
                        format!("output does not contain {expected:?}")
                    } else {
                        format!("output contains {expected:?}")
                    },
                    Value::Null,
                )
            }
            JudgeSpec::Regex { regex } => match regex.find(&out.output) {
                Some(m) => verdict(
                    true,
                    format!("/{}/ matched {:?}", regex.as_str(), m.as_str()),
                    json!({"match": m.as_str()}),
                ),
                None => verdict(
                    false,
                    format!("/{}/ did not match", regex.as_str()),
                    Value::Null,
                ),
            },
            JudgeSpec::JsonValid => match serde_json::from_str::<Value>(&out.output) {
                Ok(_) => verdict(true, "output is valid JSON".into(), Value::Null),
                Err(e) => verdict(false, format!("output is not JSON: {e}"), Value::Null),
            },
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
            JudgeSpec::Composite { mode, members } => {
                let results: Vec<JudgeResult> = members
                    .iter()
                    .map(|m| m.judge.judge(out, case, m.weight))
                    .collect();
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
                    judge: self.name(),
                    passed: ok,
                    score,
                    reason,
                    weight,
                    details: json!({ "members": results }),
                }
            }
        }
    }
}

fn arg_problem(args: &Value, key: &str, m: &ArgMatcher) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::ToolCall;

    fn case() -> Case {
        Case {
            id: "c".into(),
            description: String::new(),
            input: Map::new(),
            expected_output: Some("Hello Bob".into()),
            tags: vec![],
            assertions: vec![],
        }
    }

    fn out(text: &str) -> AgentOutput {
        AgentOutput {
            output: text.into(),
            ..Default::default()
        }
    }

    fn spec(kind: &str, cfg: Value) -> JudgeSpec {
        JudgeSpec::build(kind, cfg.as_object().cloned().unwrap_or_default(), "t").unwrap()
    }

    #[test]
    fn text_judges() {
        assert!(
            spec("exact_match", json!({}))
                .judge(&out("Hello Bob"), &case(), 1.0)
                .passed
        );
        assert!(
            !spec("exact_match", json!({}))
                .judge(&out("hello bob"), &case(), 1.0)
                .passed
        );
        assert!(
            spec("exact_match", json!({"case_sensitive": false}))
                .judge(&out("hello bob"), &case(), 1.0)
                .passed
        );
        assert!(
            spec("contains", json!({"expected": "BOB"}))
                .judge(&out("hi bob"), &case(), 1.0)
                .passed
        );
        assert!(
            !spec("not_contains", json!({"expected": "ssn"}))
                .judge(&out("your SSN is"), &case(), 1.0)
                .passed
        );
        assert!(
            spec("regex", json!({"pattern": "^hello", "flags": 2}))
                .judge(&out("Hello"), &case(), 1.0)
                .passed
        );
        assert!(
            spec("json_valid", json!({}))
                .judge(&out("{\"a\":1}"), &case(), 1.0)
                .passed
        );
        assert!(
            JudgeSpec::build(
                "regex",
                json!({"pattern": "(?<=a)b"}).as_object().cloned().unwrap(),
                "t"
            )
            .is_err()
        );
    }

    #[test]
    fn tool_calls_with_argument_bounds_and_patterns() {
        let mut o = out("done");
        o.tool_calls = vec![ToolCall {
            name: "issue_refund".into(),
            arguments: json!({"amount": 150, "order": "A-17"}),
        }];
        let ok = spec(
            "tool_call",
            json!({"name": "issue_refund", "arguments": {"amount": {"max": 150}, "order": {"pattern": "^A-"}}}),
        );
        assert!(ok.judge(&o, &case(), 1.0).passed);
        let over = spec(
            "tool_call",
            json!({"name": "issue_refund", "arguments": {"amount": {"max": 100}}}),
        );
        let r = over.judge(&o, &case(), 1.0);
        assert!(!r.passed && r.reason.contains("above 100"), "{}", r.reason);
        assert!(
            !spec(
                "tool_call",
                json!({"name": "issue_refund", "called": false})
            )
            .judge(&o, &case(), 1.0)
            .passed
        );
        assert!(
            !spec("tool_call", json!({"name": "delete_account"}))
                .judge(&o, &case(), 1.0)
                .passed
        );
    }

    #[test]
    fn composite_modes_and_must_pass() {
        let members = json!([{"type": "contains", "config": {"expected": "a"}, "weight": 2}, {"type": "contains", "config": {"expected": "z"}, "weight": 1}]);
        assert!(
            spec(
                "composite",
                json!({"require_all": false, "judges": members})
            )
            .judge(&out("a"), &case(), 1.0)
            .passed
        );
        assert!(
            !spec("composite", json!({"judges": members}))
                .judge(&out("a"), &case(), 1.0)
                .passed
        );
        assert!(
            spec("composite", json!({"mode": "any", "judges": members}))
                .judge(&out("z"), &case(), 1.0)
                .passed
        );
        let must = json!([{"type": "contains", "config": {"expected": "a"}, "weight": 5}, {"type": "contains", "config": {"expected": "z"}, "must_pass": true}]);
        let r = spec("composite", json!({"mode": "weighted", "judges": must})).judge(
            &out("a"),
            &case(),
            1.0,
        );
        assert!(!r.passed && r.reason.contains("must-pass"), "{}", r.reason);
    }
}
