//! Judges (assertions). Each yields a verdict, a score in 0..=1, a reason and
//! the judge's identity. Configuration is checked when the suite loads: an
//! unknown option is an error naming the closest known one, and each family
//! reads its `config` with serde into typed options (a wrong type is refused
//! naming the option); judging itself cannot fail. One module per family: [`text`] (exact_match, contains,
//! not_contains, regex, json_valid), [`schema`] (json_schema), [`tools`]
//! (tool_call), [`limits`] (max_cost, max_latency_ms), [`llm`] (llm_judge)
//! and [`composite`]; each builds its judges from their `config` and judges
//! with them. This module holds the closed set ([`JudgeSpec`]) and dispatches.

use std::sync::Arc;

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::SuiteError;
use crate::output::AgentOutput;
use crate::providers::{Chat, Provider};
use serde::Deserialize;

mod composite;
mod limits;
mod llm;
mod schema;
mod text;
mod tools;

pub use text::similarity;

use composite::combine;
pub use composite::{CompositeMode, Member};
use llm::llm_judge;
pub use llm::{LlmJudgeSpec, judge_prompt, parse_judge_reply};
pub use schema::CompiledSchema;
use text::compile;
pub use tools::ArgMatcher;

#[cfg(test)]
mod tests;

/// A judge with its weight in the case's score.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub judge: JudgeSpec,
    pub weight: f64,
}

/// A case as its judges see it: the input the agent was given and the
/// output the suite expects, if it says.
#[derive(Debug, Clone, Copy)]
pub struct CaseView<'a> {
    pub input: &'a Map<String, Value>,
    pub expected_output: Option<&'a str>,
}

/// An assertion as a suite writes it: `type`, `config`, `weight`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAssertion {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub config: Option<Map<String, Value>>,
    #[serde(default)]
    pub weight: Option<f64>,
}

impl RawAssertion {
    pub(crate) fn build(self, at: &dyn std::fmt::Display) -> Result<Assertion, SuiteError> {
        assertion(&self.kind, self.config, self.weight, at)
    }
}

pub(crate) fn assertion(
    kind: &str,
    config: Option<Map<String, Value>>,
    weight: Option<f64>,
    at: &dyn std::fmt::Display,
) -> Result<Assertion, SuiteError> {
    let weight = weight.unwrap_or(1.0);
    if !weight.is_finite() || weight < 0.0 {
        return Err(SuiteError(format!("{at}: weight must be a number >= 0")));
    }
    Ok(Assertion {
        judge: JudgeSpec::build(kind, config.unwrap_or_default(), at)?,
        weight,
    })
}

#[derive(Debug, Clone)]
pub enum JudgeSpec {
    /// A model grades the output against a rubric on a score scale.
    LlmJudge(Box<LlmJudgeSpec>),
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
    /// Shared: every case with the same pattern uses one compiled regex
    /// (cloning a `Regex` builds a new cache pool).
    Regex {
        regex: Arc<Regex>,
    },
    JsonValid {
        /// Pass when a JSON object or array appears anywhere in the output
        /// (promptfoo's `contains-json`), not only when all of it is JSON.
        anywhere: bool,
    },
    /// The output's words agree with an expected text at least `min` (0-1).
    Similarity {
        expected: Option<String>,
        min: f64,
    },
    ToolCall {
        name: String,
        called: bool,
        arguments: Vec<(String, ArgMatcher)>,
    },
    MaxCost {
        max: f64,
    },
    /// The output is JSON that matches the schema (compiled at load).
    JsonSchema {
        validator: std::sync::Arc<CompiledSchema>,
    },
    MaxLatencyMs {
        max: f64,
    },
    Composite {
        mode: CompositeMode,
        members: Vec<Member>,
    },
}

/// Where judge models are reached: per provider, a base URL and a key.
#[derive(Clone)]
pub struct JudgeEnv {
    pub client: Option<reqwest::Client>,
    pub retry: crate::providers::RetryPolicy,
    pub endpoints: Vec<(Provider, String, Option<String>)>,
    /// Per-provider rate limits, shared with the model target.
    pub limiters: Vec<(Provider, std::sync::Arc<crate::providers::RateLimiter>)>,
}

impl JudgeEnv {
    fn endpoint(&self, p: Provider) -> Option<(&str, Option<&str>)> {
        self.endpoints
            .iter()
            .find(|(q, _, _)| *q == p)
            .map(|(_, b, k)| (b.as_str(), k.as_deref()))
    }
}

/// One judge's verdict.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct JudgeResult {
    /// The judge's identity, e.g. `regex` or `composite(all)`.
    #[serde(rename = "type")]
    pub judge: String,
    pub passed: bool,
    /// The existing tool's reports call it `confidence`.
    #[serde(alias = "confidence")]
    pub score: f64,
    /// The existing tool's reports call it `reasoning`.
    #[serde(alias = "reasoning")]
    pub reason: String,
    pub weight: f64,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

fn err(at: &dyn std::fmt::Display, msg: impl std::fmt::Display) -> SuiteError {
    SuiteError(format!("{at}: {msg}"))
}

/// A judge's `config` read into its family's typed [`Options`](text::Options):
/// an option of the wrong type is refused naming it, `null` is absent. The
/// keys a judge takes were checked before, with the closest known key named
/// for a misspelt one.
fn options<T: serde::de::DeserializeOwned>(
    cfg: Map<String, Value>,
    at: &dyn std::fmt::Display,
) -> Result<T, SuiteError> {
    serde_path_to_error::deserialize(Value::Object(cfg))
        .map_err(|e| err(at, format!("config: '{}': {}", e.path(), e.inner())))
}

/// A number option that must be finite, if given.
fn finite(
    v: Option<f64>,
    key: &str,
    at: &dyn std::fmt::Display,
) -> Result<Option<f64>, SuiteError> {
    match v {
        Some(f) if !f.is_finite() => Err(err(at, format!("'{key}' must be a finite number"))),
        v => Ok(v),
    }
}

fn get_f64(
    cfg: &Map<String, Value>,
    key: &str,
    at: &dyn std::fmt::Display,
) -> Result<Option<f64>, SuiteError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| err(at, format!("'{key}' must be a number, got {v}"))),
    }
}

/// The options each judge reads from its `config` (None: an unknown judge,
/// reported as such).
fn known_options(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "exact_match" | "contains" | "not_contains" => &["expected", "case_sensitive"],
        "regex" => &["pattern", "flags"],
        "json_valid" => &["anywhere"],
        "similarity" => &["expected", "min"],
        "tool_call" => &["name", "called", "arguments"],
        "max_cost" | "max_latency_ms" => &["max"],
        "composite" => &["mode", "require_all", "threshold", "judges"],
        "llm_judge" => &[
            "rubric",
            "model",
            "provider",
            "scale",
            "pass_mark",
            "temperature",
        ],
        "json_schema" => &["schema"],
        _ => return None,
    })
}

impl JudgeSpec {
    /// Builds a judge from its `type` and `config`; `at` names it in errors.
    pub fn build(
        kind: &str,
        cfg: Map<String, Value>,
        at: impl std::fmt::Display,
    ) -> Result<JudgeSpec, SuiteError> {
        let at: &dyn std::fmt::Display = &at;
        // A misspelt option is an error, never silently ignored.
        if let Some(known) = known_options(kind)
            && let Some(msg) = releaseops_format::yaml::unknown_key(cfg.keys(), known)
        {
            return Err(err(at, format!("config: {msg}")));
        }
        Ok(match kind {
            "exact_match" | "contains" | "not_contains" | "regex" | "json_valid" | "similarity" => {
                text::build(kind, cfg, at)?
            }
            "tool_call" => tools::build(kind, cfg, at)?,
            "max_cost" | "max_latency_ms" => limits::build(kind, cfg, at)?,
            "composite" => composite::build(kind, cfg, at)?,
            "llm_judge" => llm::build(kind, cfg, at)?,
            "json_schema" => schema::build(kind, cfg, at)?,
            other => {
                return Err(err(
                    at,
                    format!(
                        "unknown judge '{other}' (known: exact_match, contains, not_contains, regex, json_valid, similarity, json_schema, tool_call, max_latency_ms, max_cost, llm_judge, composite)"
                    ),
                ));
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            JudgeSpec::LlmJudge(j) => format!("llm_judge({}:{})", j.provider.name(), j.model),
            JudgeSpec::ExactMatch { .. } => "exact_match".into(),
            JudgeSpec::Contains { .. } => "contains".into(),
            JudgeSpec::NotContains { .. } => "not_contains".into(),
            JudgeSpec::Regex { .. } => "regex".into(),
            JudgeSpec::JsonValid { anywhere: false } => "json_valid".into(),
            JudgeSpec::JsonValid { anywhere: true } => "json_valid(anywhere)".into(),
            JudgeSpec::ToolCall { .. } => "tool_call".into(),
            JudgeSpec::Similarity { .. } => "similarity".into(),
            JudgeSpec::MaxLatencyMs { .. } => "max_latency_ms".into(),
            JudgeSpec::MaxCost { .. } => "max_cost".into(),
            JudgeSpec::JsonSchema { .. } => "json_schema".into(),
            JudgeSpec::Composite { mode, .. } => match mode {
                CompositeMode::All => "composite(all)".into(),
                CompositeMode::Any => "composite(any)".into(),
                CompositeMode::Weighted(t) => format!("composite(weighted>{t})"),
            },
        }
    }

    /// The tools this judge asserts about (composite members included).
    pub fn tools_named(&self) -> Vec<&str> {
        match self {
            JudgeSpec::ToolCall { name, .. } => vec![name.as_str()],
            JudgeSpec::Composite { members, .. } => {
                members.iter().flat_map(|m| m.judge.tools_named()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// True when judging needs a model call (the judge or a composite member).
    pub fn needs_model(&self) -> bool {
        match self {
            JudgeSpec::LlmJudge(_) => true,
            JudgeSpec::Composite { members, .. } => members.iter().any(|m| m.judge.needs_model()),
            _ => false,
        }
    }

    /// Judges one output, calling the judge model where one is needed.
    pub async fn judge_async(
        &self,
        out: &AgentOutput,
        case: &CaseView<'_>,
        weight: f64,
        env: &JudgeEnv,
    ) -> JudgeResult {
        match self {
            JudgeSpec::LlmJudge(j) => llm_judge(j, self.name(), out, case, weight, env).await,
            JudgeSpec::Composite { mode, members } if self.needs_model() => {
                let mut results = Vec::with_capacity(members.len());
                for m in members {
                    results.push(Box::pin(m.judge.judge_async(out, case, m.weight, env)).await);
                }
                combine(self.name(), mode, members, results, weight)
            }
            _ => self.judge(out, case, weight),
        }
    }

    pub fn judge(&self, out: &AgentOutput, case: &CaseView<'_>, weight: f64) -> JudgeResult {
        let verdict = |passed: bool, reason: String, details: Value| JudgeResult {
            judge: self.name(),
            passed,
            score: if passed { 1.0 } else { 0.0 },
            reason,
            weight,
            details,
        };
        match self {
            JudgeSpec::ExactMatch { .. }
            | JudgeSpec::Contains { .. }
            | JudgeSpec::NotContains { .. }
            | JudgeSpec::Regex { .. }
            | JudgeSpec::JsonValid { .. }
            | JudgeSpec::Similarity { .. } => text::judge(self, out, case, &verdict),
            JudgeSpec::ToolCall { .. } => tools::judge(self, out, &verdict),
            JudgeSpec::JsonSchema { .. } => schema::judge(self, out, &verdict),
            JudgeSpec::MaxCost { .. } | JudgeSpec::MaxLatencyMs { .. } => {
                limits::judge(self, out, &verdict)
            }
            JudgeSpec::Composite { .. } => composite::judge(self, out, case, weight, &verdict),
            JudgeSpec::LlmJudge(_) => llm::judge(self, &verdict),
        }
    }
}
