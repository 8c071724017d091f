//! Suites: the existing tool's format (cases with `input`, `expected_output`,
//! `assertions`, `pass_threshold`) plus `target`, `default_judge` (used by
//! cases without assertions), `repeats`, `concurrency`, `vars` shared by all
//! cases, and case `tags` to filter on. Everything is checked up front: an
//! unknown judge, a bad regex or a duplicate case id is an error naming the
//! case, before any call is made.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use releaseops_format::yaml::Listed;

pub use crate::error::SuiteError;
pub use crate::judge::{Assertion, CaseView};
use crate::judge::{RawAssertion, assertion};

/// What produces the output being judged.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// The team's agent as a subprocess: the bundle and the case on stdin as
    /// JSON, the answer on stdout (text, or JSON with `output`).
    Command {
        argv: Vec<String>,
        /// The agent's whole environment besides PATH, HOME, the locale, TZ
        /// and TMPDIR: it inherits nothing else (no tokens, no keys).
        /// Values may read `${NAME}` from releaseops' own environment.
        env: IndexMap<String, String>,
        timeout_ms: u64,
        /// Bytes kept of each of stdout and stderr; beyond, the agent is
        /// stopped and the case errors (default 4 MiB).
        max_output_bytes: usize,
    },
    /// The team's agent service: the same JSON POSTed to `url`.
    Http {
        url: String,
        headers: IndexMap<String, String>,
        timeout_ms: u64,
    },
    /// The bundle's own model with its own prompts; `provider`, `model` and
    /// `base_url` override the bundle's model config.
    Model {
        provider: Option<String>,
        model: Option<String>,
        base_url: Option<String>,
        timeout_ms: u64,
        /// Tools offered to the model (besides those the bundle's tools
        /// policies allow): `target.tools: [{name, description, parameters}]`.
        tools: Vec<crate::providers::ToolDef>,
    },
}

impl TargetSpec {
    pub fn timeout_ms(&self) -> u64 {
        match self {
            TargetSpec::Command { timeout_ms, .. }
            | TargetSpec::Http { timeout_ms, .. }
            | TargetSpec::Model { timeout_ms, .. } => *timeout_ms,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            TargetSpec::Command { argv, .. } => format!("command: {}", argv.join(" ")),
            TargetSpec::Http { url, .. } => format!("http: {url}"),
            TargetSpec::Model {
                provider, model, ..
            } => format!(
                "model: {} {}",
                provider.as_deref().unwrap_or("(bundle's provider)"),
                model.as_deref().unwrap_or("(bundle's model)")
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub description: String,
    pub input: Map<String, Value>,
    pub expected_output: Option<String>,
    pub tags: Vec<String>,
    pub assertions: Vec<Assertion>,
}

impl Case {
    /// The case as its judges see it.
    pub fn view(&self) -> CaseView<'_> {
        CaseView {
            input: &self.input,
            expected_output: self.expected_output.as_deref(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Suite {
    pub id: String,
    pub version: u64,
    pub description: String,
    pub pass_threshold: f64,
    /// No target: the bundle's own model (the existing tool's meaning).
    pub target: Option<TargetSpec>,
    /// The prompt roles the model target renders (the existing tool's
    /// `target_artifacts`; empty: every prompt of the bundle).
    pub target_artifacts: Vec<String>,
    pub repeats: u32,
    pub concurrency: Option<usize>,
    pub vars: Map<String, Value>,
    /// USD per 1,000 tokens, to price reported usage (prices change, so the
    /// suite says them rather than the tool).
    pub pricing: Option<Pricing>,
    /// Requests per second per provider (`openai: 5`), shared by the model
    /// target and judges.
    pub rate_limits: IndexMap<String, f64>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

impl Pricing {
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        input_tokens as f64 / 1000.0 * self.input_per_1k
            + output_tokens as f64 / 1000.0 * self.output_per_1k
    }
}

pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
const MAX_REPEATS: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    id: String,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    target_artifacts: Option<Vec<String>>,
    #[serde(default)]
    pass_threshold: Option<f64>,
    #[serde(default)]
    default_judge: Option<RawAssertion>,
    #[serde(default)]
    promotion_gate: Option<Value>,
    #[serde(default)]
    target: Option<RawTarget>,
    #[serde(default)]
    repeats: Option<u32>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    vars: Option<Map<String, Value>>,
    #[serde(default)]
    pricing: Option<Pricing>,
    #[serde(default)]
    rate_limits: Option<IndexMap<String, f64>>,
    #[serde(default)]
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    command: Option<Value>,
    #[serde(default)]
    env: Option<IndexMap<String, String>>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    max_output_bytes: Option<u64>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: Option<IndexMap<String, String>>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    tools: Option<Vec<RawTool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// `target.tools`, checked: names every provider takes, each once, and
/// arguments as a JSON Schema object.
fn parse_tools(raw: Vec<RawTool>) -> Result<Vec<crate::providers::ToolDef>, SuiteError> {
    let mut out: Vec<crate::providers::ToolDef> = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let at = format!("target.tools[{i}]");
        if !crate::providers::ToolDef::valid_name(&t.name) {
            return Err(SuiteError(format!(
                "{at}: tool name {:?} is not 1 to 64 letters, digits, '_' or '-' opening with a letter or '_'",
                t.name
            )));
        }
        if out.iter().any(|o| o.name == t.name) {
            return Err(SuiteError(format!(
                "{at}: tool '{}' is listed twice",
                t.name
            )));
        }
        let parameters = match t.parameters {
            None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
            Some(Value::Object(o))
                if o.get("type").is_none_or(|t| t == "object")
                    && o.get("properties").is_none_or(|p| {
                        p.as_object()
                            .is_some_and(|m| m.values().all(Value::is_object))
                    }) =>
            {
                let mut o = o;
                o.entry("type").or_insert_with(|| "object".into());
                Value::Object(o)
            }
            Some(_) => {
                return Err(SuiteError(format!(
                    "{at}: parameters of '{}' must be a JSON Schema object (type: object, properties: {{name: {{type: ...}}}})",
                    t.name
                )));
            }
        };
        out.push(crate::providers::ToolDef {
            name: t.name,
            description: t.description.unwrap_or_default(),
            parameters,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    input: Option<Map<String, Value>>,
    #[serde(default)]
    expected_output: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    assertions: Option<Vec<RawAssertion>>,
}

fn parse_target(t: RawTarget) -> Result<TargetSpec, SuiteError> {
    let timeout_ms = t.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 {
        return Err(SuiteError("target.timeout_ms must be at least 1".into()));
    }
    let http_url = |u: &str, key: &str| -> Result<(), SuiteError> {
        if u.starts_with("http://") || u.starts_with("https://") {
            Ok(())
        } else {
            Err(SuiteError(format!(
                "target.{key} must start with http:// or https://, got {u:?}"
            )))
        }
    };
    if t.tools.is_some() && t.kind != "model" {
        return Err(SuiteError(format!(
            "target.tools is for type: model; a {} target's agent offers its own tools",
            t.kind
        )));
    }
    match t.kind.as_str() {
        "command" => {
            let argv: Vec<String> = match t.command {
                // Split as a shell splits words (quotes and backslashes),
                // but run without a shell: `sh -c '...'` for shell syntax.
                Some(Value::String(s)) => shlex::split(&s).ok_or_else(|| {
                    SuiteError(format!(
                        "target.command {s:?} has an unclosed quote; quote as a shell would (`sh -c 'sleep 1; ./agent'`), or give a list of arguments"
                    ))
                })?,
                Some(Value::Array(a)) => a
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        other => Err(SuiteError(format!(
                            "target.command: {other} is not a string"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(SuiteError(
                        "target.command is required: a string or a list of arguments".into(),
                    ));
                }
            };
            if argv.is_empty() {
                return Err(SuiteError("target.command is empty".into()));
            }
            let max_output_bytes = match t.max_output_bytes {
                None => crate::target::MAX_OUTPUT_BYTES,
                Some(0) => {
                    return Err(SuiteError(
                        "target.max_output_bytes must be at least 1".into(),
                    ));
                }
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            };
            Ok(TargetSpec::Command {
                argv,
                env: t.env.unwrap_or_default(),
                timeout_ms,
                max_output_bytes,
            })
        }
        "http" => {
            let url = t
                .url
                .ok_or_else(|| SuiteError("target.url is required for type: http".into()))?;
            http_url(&url, "url")?;
            Ok(TargetSpec::Http {
                url,
                headers: t.headers.unwrap_or_default(),
                timeout_ms,
            })
        }
        "model" => {
            if let Some(p) = &t.provider
                && crate::providers::Provider::parse(p).is_none()
            {
                return Err(SuiteError(format!(
                    "target.provider '{p}' is not openai, anthropic, gemini or openai-compatible"
                )));
            }
            if let Some(u) = &t.base_url {
                http_url(u, "base_url")?;
            }
            Ok(TargetSpec::Model {
                provider: t.provider,
                model: t.model,
                base_url: t.base_url,
                timeout_ms,
                tools: parse_tools(t.tools.unwrap_or_default())?,
            })
        }
        other => Err(SuiteError(format!(
            "target type '{other}' is not command, http or model"
        ))),
    }
}

impl Suite {
    /// Parses and validates a suite file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Suite, SuiteError> {
        // Suites can hold thousands of cases: a long case list is parsed and
        // checked in pieces on several threads (same result as in one piece).
        let listed = releaseops_format::yaml::from_bytes_list(
            bytes,
            "cases",
            |suite: &RawSuite, i, case: RawCase| build_case(i, case, suite.default_judge.as_ref()),
        )
        .map_err(|e| SuiteError(e.to_string()))?;
        let (raw, built) = match listed {
            Listed::Split(raw, built) => (raw, built),
            Listed::Whole(mut raw) => {
                let built = std::mem::take(&mut raw.cases)
                    .into_iter()
                    .enumerate()
                    .map(|(i, case)| build_case(i, case, raw.default_judge.as_ref()))
                    .collect();
                (raw, built)
            }
        };
        // `promotion_gate` is the existing tool's, parsed and unused there too:
        // the bar is `pass_threshold` (and the environment's own policy).
        let _ = &raw.promotion_gate;
        if raw.id.trim().is_empty() {
            return Err(SuiteError("id is empty".into()));
        }
        let pass_threshold = raw.pass_threshold.unwrap_or(0.95);
        if !(0.0..=1.0).contains(&pass_threshold) {
            return Err(SuiteError(format!(
                "pass_threshold must be between 0 and 1, got {pass_threshold}"
            )));
        }
        let repeats = raw.repeats.unwrap_or(1);
        if repeats == 0 || repeats > MAX_REPEATS {
            return Err(SuiteError(format!(
                "repeats must be 1..={MAX_REPEATS}, got {repeats}"
            )));
        }
        if raw.concurrency == Some(0) {
            return Err(SuiteError("concurrency must be at least 1".into()));
        }
        let cases = check_cases(built)?;
        Ok(Suite {
            id: raw.id,
            version: raw.version.unwrap_or(1),
            description: raw.description.unwrap_or_default(),
            pass_threshold,
            target: raw.target.map(parse_target).transpose()?,
            target_artifacts: raw.target_artifacts.unwrap_or_default(),
            repeats,
            concurrency: raw.concurrency,
            vars: raw.vars.unwrap_or_default(),
            rate_limits: {
                let limits = raw.rate_limits.unwrap_or_default();
                for (p, rps) in &limits {
                    if crate::providers::Provider::parse(p).is_none() {
                        return Err(SuiteError(format!(
                            "rate_limits: '{p}' is not openai, anthropic, gemini or openai-compatible"
                        )));
                    }
                    if !(rps.is_finite() && *rps > 0.0) {
                        return Err(SuiteError(format!(
                            "rate_limits.{p} must be a number of requests per second > 0"
                        )));
                    }
                }
                limits
            },
            pricing: match raw.pricing {
                Some(p)
                    if !(p.input_per_1k.is_finite()
                        && p.output_per_1k.is_finite()
                        && p.input_per_1k >= 0.0
                        && p.output_per_1k >= 0.0) =>
                {
                    return Err(SuiteError(
                        "pricing values must be numbers >= 0 (USD per 1,000 tokens)".into(),
                    ));
                }
                other => other,
            },
            cases,
        })
    }

    /// The cases carrying any of `tags` (all cases when `tags` is empty).
    pub fn selected(&self, tags: &[String]) -> Vec<&Case> {
        self.cases
            .iter()
            .filter(|c| tags.is_empty() || c.tags.iter().any(|t| tags.contains(t)))
            .collect()
    }
}

/// The checked cases, or the first error a check in file order meets.
fn check_cases(built: Vec<Built>) -> Result<Vec<Case>, SuiteError> {
    let mut seen = std::collections::HashSet::with_capacity(built.len());
    for (i, b) in built.iter().enumerate() {
        let id = match b {
            Ok(case) => case.id.as_str(),
            Err((id, _)) => id.as_str(),
        };
        if id.trim().is_empty() {
            return Err(SuiteError(format!("cases[{i}] has an empty id")));
        }
        if !seen.insert(id) {
            return Err(SuiteError(format!(
                "case '{id}' (cases[{i}]): the id is used by an earlier case too; case ids must be unique"
            )));
        }
        if let Err((_, e)) = b {
            return Err(e.clone());
        }
    }
    drop(seen);
    Ok(built.into_iter().flatten().collect())
}

/// A checked case, or its id and what is wrong with it.
type Built = Result<Case, (String, SuiteError)>;

/// One case, checked on its own (the id's uniqueness is checked by the caller).
fn build_case(i: usize, c: RawCase, default_judge: Option<&RawAssertion>) -> Built {
    let at = CaseAt { id: &c.id, i };
    let raw_assertions = match (c.assertions, default_judge) {
        (Some(a), _) if !a.is_empty() => a,
        (_, Some(d)) => vec![d.clone()],
        _ => {
            let e = SuiteError(format!(
                "{at}: no assertions, and the suite has no default_judge"
            ));
            return Err((c.id, e));
        }
    };
    let assertions = raw_assertions
        .into_iter()
        .enumerate()
        .map(|(j, a)| {
            let RawAssertion {
                kind,
                config,
                weight,
            } = a;
            let at = AssertionAt {
                case: at,
                j,
                kind: &kind,
            };
            assertion(&kind, config, weight, &at)
        })
        .collect::<Result<Vec<_>, _>>();
    match assertions {
        Ok(assertions) => Ok(Case {
            id: c.id,
            description: c.description.unwrap_or_default(),
            input: c.input.unwrap_or_default(),
            expected_output: c.expected_output,
            tags: c.tags.unwrap_or_default(),
            assertions,
        }),
        Err(e) => Err((c.id, e)),
    }
}

/// Where in the suite an error is, written only when there is one.
#[derive(Clone, Copy)]
struct CaseAt<'a> {
    id: &'a str,
    i: usize,
}

impl std::fmt::Display for CaseAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "case '{}' (cases[{}])", self.id, self.i)
    }
}

struct AssertionAt<'a> {
    case: CaseAt<'a>,
    j: usize,
    kind: &'a str,
}

impl std::fmt::Display for AssertionAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} assertions[{}] ({})", self.case, self.j, self.kind)
    }
}

/// The scaffold `eval create` writes: deterministic, runnable offline.
pub fn scaffold(id: &str) -> String {
    format!(
        "id: {id}
version: 1
description: 'Eval suite: {id}'
pass_threshold: 0.95
# What produces the output: your agent, run once per case. It gets the bundle
# (prompts, policies, model config) and the case on stdin as JSON and answers
# on stdout with text, or JSON with output, tool_calls, usage, latency_ms.
target:
  type: command
  command: python3 agent.py
  timeout_ms: 30000
concurrency: 8
repeats: 1
vars: {{}}
cases:
- id: example_case
  input:
    user_name: Alice
  assertions:
  - type: contains
    config:
      expected: Hello
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/llmhq-sample/.releaseops/evals/refunds.yaml"
        ))
        .unwrap()
    }

    #[test]
    fn reads_the_existing_tools_suites() {
        let s = Suite::parse(&sample()).unwrap();
        assert_eq!(
            (s.id.as_str(), s.cases.len(), s.pass_threshold),
            ("refunds", 5, 0.8)
        );
        let smoke = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/llmhq-sample/.releaseops/evals/smoke.yaml"
        ))
        .unwrap();
        assert_eq!(Suite::parse(&smoke).unwrap().cases.len(), 1);
        assert!(
            Suite::parse(scaffold("x").as_bytes())
                .unwrap()
                .target
                .is_some()
        );
    }

    #[test]
    fn invalid_suites_are_refused_naming_the_case() {
        let base = String::from_utf8(sample()).unwrap();
        for (doc, needle) in [
            (
                base.replace("type: contains", "type: vibes"),
                "unknown judge 'vibes'",
            ),
            (
                base.replace("pattern: \"Carol\"", "pattern: \"(Carol\""),
                "composite_majority",
            ),
            (
                base.replace("id: regex_flags", "id: greet_alice"),
                "ids must be unique",
            ),
            (
                base.replace("pass_threshold: 0.8", "pass_threshold: 8"),
                "pass_threshold",
            ),
            (
                format!("{base}- id: empty\n  input: {{}}\n"),
                "no assertions",
            ),
        ] {
            let e = Suite::parse(doc.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    /// A suite long enough for the parallel path: `n` cases.
    fn long_suite(n: usize) -> String {
        let mut s = String::from("id: long\npass_threshold: 0.9\ncases:\n");
        for i in 0..n {
            s.push_str(&format!(
                "- id: c{i}\n  input: {{name: user{i}, n: {i}}}\n  assertions:\n  - type: contains\n    config: {{expected: user{i}}}\n  - type: regex\n    config: {{pattern: 'u\\d+'}}\n"
            ));
        }
        s.push_str("default_judge: {type: json_valid}\n");
        s
    }

    #[test]
    fn long_suites_read_in_pieces_equal_the_same_cases_read_whole() {
        let text = long_suite(3000);
        assert!(text.len() > 128 * 1024, "long enough for the fast path");
        let fast = Suite::parse(text.as_bytes()).unwrap();
        // The same suite with a YAML anchor in a case goes the whole-document way.
        let whole =
            Suite::parse(text.replacen("- id: c0\n", "- id: &a c0\n", 1).as_bytes()).unwrap();
        assert_eq!(fast.cases.len(), 3000);
        assert_eq!(format!("{:?}", fast.cases), format!("{:?}", whole.cases));
        assert_eq!(fast.cases[2999].id, "c2999");
    }

    #[test]
    fn errors_in_long_suites_name_the_case_by_its_place_in_the_file() {
        let text = long_suite(3000);
        for (doc, needle) in [
            (
                text.replace(
                    "pattern: 'u\\d+'}\n- id: c2500\n",
                    "pattern: '(u'}\n- id: c2500\n",
                ),
                "case 'c2499' (cases[2499]) assertions[1] (regex): invalid regex",
            ),
            (
                text.replace("- id: c2800\n", "- id: c10\n"),
                "case 'c10' (cases[2800]): the id is used by an earlier case too",
            ),
            (
                text.replace("- id: c1\n", "- id: c1\n  surprise: 1\n"),
                "surprise",
            ),
            (
                text.replace("pass_threshold: 0.9", "pass_threshold: 9"),
                "pass_threshold",
            ),
        ] {
            let e = Suite::parse(doc.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
