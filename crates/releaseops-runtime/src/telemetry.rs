//! The attributes a loaded bundle puts on spans: the existing tool's
//! `releaseops.*` names (every value set, never None) and the OpenTelemetry
//! GenAI semantic-convention names where they apply.

use std::fmt;

use serde::Serialize;

use crate::bundle::Content;

/// An attribute value, typed as OpenTelemetry carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Float(f64),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Float(x) => write!(f, "{x}"),
        }
    }
}

pub const BUNDLE_ID: &str = "releaseops.bundle_id";
pub const BUNDLE_VERSION: &str = "releaseops.bundle_version";
pub const BUNDLE_HASH: &str = "releaseops.bundle_hash";
pub const ENVIRONMENT: &str = "releaseops.environment";

/// The keys that also travel as W3C baggage, so child spans and downstream
/// services see which bundle produced them.
pub const BAGGAGE_KEYS: [&str; 4] = [BUNDLE_ID, BUNDLE_VERSION, BUNDLE_HASH, ENVIRONMENT];

/// `gen_ai.provider.name` for our provider names (the semantic conventions'
/// well-known values; anything else is passed through).
fn provider_name(provider: &str) -> &str {
    match provider {
        "gemini" | "google" => "gcp.gemini",
        "openai-compatible" | "openai_compatible" => "openai",
        other => other,
    }
}

pub(crate) fn attributes(c: &Content, environment: Option<&str>) -> Vec<(String, AttrValue)> {
    let s = |v: &str| AttrValue::Str(v.to_string());
    let mut out = vec![
        (BUNDLE_ID.to_string(), s(&c.id)),
        (BUNDLE_VERSION.to_string(), s(&c.version)),
        (BUNDLE_HASH.to_string(), s(&c.bundle_hash)),
    ];
    if let Some(env) = environment {
        out.push((ENVIRONMENT.to_string(), s(env)));
    }
    for (role, p) in &c.prompts {
        out.push((format!("releaseops.prompt.{role}"), s(&p.reference)));
    }
    for (role, p) in &c.policies {
        out.push((format!("releaseops.policy.{role}"), s(&p.path)));
    }
    if let Some(m) = &c.model {
        out.push(("releaseops.model.provider".into(), s(&m.provider)));
        out.push(("releaseops.model.model".into(), s(&m.model)));
        let temperature = m.temperature.as_f64();
        if let Some(t) = temperature {
            out.push(("releaseops.model.temperature".into(), AttrValue::Float(t)));
        }
        let max_tokens = i64::try_from(m.max_tokens).ok();
        if let Some(n) = max_tokens {
            out.push(("releaseops.model.max_tokens".into(), AttrValue::Int(n)));
        }
        // The existing tool's single attribute, kept for dashboards built on it.
        out.push((
            "releaseops.model_config".into(),
            AttrValue::Str(releaseops_format::pyjson::dumps_sorted(&m.to_json())),
        ));
        out.push(("gen_ai.request.model".into(), s(&m.model)));
        out.push(("gen_ai.provider.name".into(), s(provider_name(&m.provider))));
        if let Some(t) = temperature {
            out.push(("gen_ai.request.temperature".into(), AttrValue::Float(t)));
        }
        if let Some(n) = max_tokens {
            out.push(("gen_ai.request.max_tokens".into(), AttrValue::Int(n)));
        }
    }
    // The prompt the agent is driven by: `system` when there is one, else the first.
    let main = c
        .prompts
        .get("system")
        .or_else(|| c.prompts.values().next());
    if let Some((name, version)) = main.and_then(|p| p.name_and_version()) {
        out.push(("gen_ai.prompt.name".into(), s(name)));
        out.push(("releaseops.prompt.version".into(), s(version)));
    }
    out.retain(|(_, v)| !matches!(v, AttrValue::Str(s) if s.is_empty()));
    out
}
