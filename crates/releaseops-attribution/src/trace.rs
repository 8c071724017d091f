//! What the agent did, read from the existing tool's trace JSON: `trace_id`
//! (or `id`), `tool_calls` (each `name` or `function`, with `arguments` or
//! `args`; OpenAI's `{function: {name, arguments: "<json>"}}` too),
//! `output` (or `response`), `action`, `input` and `output_tokens`. Callers
//! with other sources (stored spans) build a [`Trace`] directly.

use serde_json::{Map, Value};

use crate::AttributionError;

/// One tool call of a trace, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    /// The arguments as a JSON object (a string that is not JSON is kept
    /// under the key `input`).
    pub arguments: Map<String, Value>,
}

/// A trace as attribution reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub trace_id: String,
    /// The user's message, when content was captured.
    pub input: Option<String>,
    pub tool_calls: Vec<Call>,
    /// The agent's reply.
    pub output: Option<String>,
    /// A decision the trace states in words (`action`).
    pub action: Option<String>,
    pub output_tokens: Option<u64>,
}

/// How the explained action was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    ToolCall,
    Response,
    Decision,
}

impl Trace {
    /// The existing tool's trace JSON. `label` names the input in errors.
    pub fn from_json(v: &Value, label: &str) -> Result<Trace, AttributionError> {
        let Value::Object(o) = v else {
            return Err(AttributionError::Trace {
                input: label.to_string(),
                reason: "a trace is a JSON object".into(),
            });
        };
        let text = |k: &str| match o.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(Value::String(_)) => None,
            Some(other) => Some(other.to_string()),
        };
        let trace_id = text("trace_id")
            .or_else(|| text("id"))
            .unwrap_or_else(|| "unknown".into());
        let mut tool_calls = Vec::new();
        if let Some(calls) = o.get("tool_calls") {
            let Value::Array(calls) = calls else {
                return Err(AttributionError::Trace {
                    input: label.to_string(),
                    reason: "`tool_calls` is a list of calls".into(),
                });
            };
            for (i, c) in calls.iter().enumerate() {
                tool_calls.push(call(c).ok_or_else(|| AttributionError::Trace {
                    input: label.to_string(),
                    reason: format!("tool_calls[{i}] has no `name` or `function`"),
                })?);
            }
        }
        Ok(Trace {
            trace_id,
            input: text("input"),
            tool_calls,
            output: text("output").or_else(|| text("response")),
            action: text("action"),
            output_tokens: o.get("output_tokens").and_then(Value::as_u64),
        })
    }

    /// The action explained: the last tool call, else the reply, else the
    /// stated decision (the existing tool's order).
    pub fn action(&self) -> Option<(String, ActionType)> {
        if let Some(c) = self.tool_calls.last() {
            let shown = if c.arguments.is_empty() {
                c.name.clone()
            } else {
                format!("{}({})", c.name, Value::Object(c.arguments.clone()))
            };
            return Some((shown, ActionType::ToolCall));
        }
        if let Some(o) = &self.output {
            return Some((cut(o, 200), ActionType::Response));
        }
        self.action
            .as_ref()
            .map(|a| (cut(a, 200), ActionType::Decision))
    }
}

fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn call(c: &Value) -> Option<Call> {
    let o = c.as_object()?;
    let (name, args) = match o.get("function") {
        Some(Value::Object(f)) => (
            f.get("name")?.as_str()?.to_string(),
            f.get("arguments").cloned(),
        ),
        Some(Value::String(f)) => (f.clone(), None),
        _ => (o.get("name")?.as_str()?.to_string(), None),
    };
    if name.trim().is_empty() {
        return None;
    }
    let args = args
        .or_else(|| o.get("arguments").cloned())
        .or_else(|| o.get("args").cloned())
        .or_else(|| o.get("input").cloned());
    Some(Call {
        name,
        arguments: arguments(args),
    })
}

/// Arguments as an object: JSON text is parsed, other values kept under `input`.
pub fn arguments(v: Option<Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(m)) => m,
            _ if s.trim().is_empty() => Map::new(),
            _ => Map::from_iter([("input".to_string(), Value::String(s))]),
        },
        Some(Value::Null) | None => Map::new(),
        Some(other) => Map::from_iter([("input".to_string(), other)]),
    }
}
