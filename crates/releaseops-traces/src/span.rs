//! One span as the store keeps it, whatever it came from: the bundle it
//! belongs to, what it did (the GenAI semantic conventions and the
//! OpenInference names read into the same fields), how it ended and how
//! long it took.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::redact;

/// How a span ended (OTLP's status code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Unset,
    Ok,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unset => "unset",
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Status::Unset => 0,
            Status::Ok => 1,
            Status::Error => 2,
        }
    }

    pub fn from_code(c: i64) -> Status {
        match c {
            1 => Status::Ok,
            2 => Status::Error,
            _ => Status::Unset,
        }
    }
}

/// Where a span came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `POST /v1/traces`.
    Otlp,
    /// `releaseops traces import` of a file.
    Import,
    Langfuse,
    Langsmith,
    Phoenix,
    /// The demo's sample agent.
    Demo,
}

impl Source {
    pub const ALL: [Source; 6] = [
        Source::Otlp,
        Source::Import,
        Source::Langfuse,
        Source::Langsmith,
        Source::Phoenix,
        Source::Demo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Otlp => "otlp",
            Source::Import => "import",
            Source::Langfuse => "langfuse",
            Source::Langsmith => "langsmith",
            Source::Phoenix => "phoenix",
            Source::Demo => "demo",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A tool call: one the span executed (`gen_ai.tool.name` on an
/// `execute_tool` span) or one a model asked for (OpenInference's
/// `message.tool_calls.N...` or a trace file's `tool_calls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    /// The call's arguments (content: kept only with `capture_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// The span ran the tool, rather than a model asking for it.
    pub executed: bool,
}

/// Which bundle version a span belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleTag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

impl BundleTag {
    pub fn is_empty(&self) -> bool {
        self.bundle_id.is_none() && self.bundle_version.is_none() && self.environment.is_none()
    }

    /// Fills what this tag lacks from `other`.
    pub fn inherit(&mut self, other: &BundleTag) {
        if self.bundle_id.is_none() {
            self.bundle_id.clone_from(&other.bundle_id);
        }
        if self.bundle_version.is_none() {
            self.bundle_version.clone_from(&other.bundle_version);
        }
        if self.environment.is_none() {
            self.environment.clone_from(&other.environment);
        }
    }
}

/// A span, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    pub name: String,
    /// Unix nanoseconds.
    pub start_ns: i64,
    pub end_ns: i64,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// `error.type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(flatten)]
    pub bundle: BundleTag,
    /// `gen_ai.operation.name` (chat, execute_tool, ...), or OpenInference's span kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// `gen_ai.request.model` (or the response's model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<i64>,
    /// In US dollars, when the span or the platform says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finish_reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// What went in and came out (content: kept only with `capture_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Every other attribute, secrets redacted.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    pub source: Source,
}

impl Span {
    /// A span with these ids, name and times, and nothing else said yet.
    pub fn new(
        trace_id: String,
        span_id: String,
        name: String,
        (start_ns, end_ns): (i64, i64),
        source: Source,
    ) -> Span {
        Span {
            trace_id,
            span_id,
            parent_span_id: None,
            name,
            start_ns,
            end_ns,
            status: Status::Unset,
            status_message: None,
            error_type: None,
            bundle: BundleTag::default(),
            operation: None,
            model: None,
            input_tokens: None,
            output_tokens: None,
            cost: None,
            finish_reasons: Vec::new(),
            tool_calls: Vec::new(),
            input: None,
            output: None,
            attributes: Map::new(),
            source,
        }
    }

    pub fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    pub fn is_error(&self) -> bool {
        self.status == Status::Error || self.error_type.is_some()
    }
}

/// Why a span was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The span's id, when it had a readable one.
    pub span: Option<String>,
    pub reason: String,
}

/// How spans are read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Keep inputs, outputs, messages and tool arguments.
    pub capture_content: bool,
    /// Now, in Unix nanoseconds: timestamps more than a day past it (or
    /// before 2000) are refused.
    pub now_ns: i64,
}

impl ReadOptions {
    pub fn new(capture_content: bool) -> ReadOptions {
        ReadOptions {
            capture_content,
            now_ns: jiff::Timestamp::now().as_nanosecond() as i64,
        }
    }
}

/// 2000-01-01T00:00:00Z.
const EARLIEST_NS: i64 = 946_684_800_000_000_000;
const DAY_NS: i64 = 86_400_000_000_000;
/// Longest text kept from one attribute (longer is cut, and says so).
pub const MAX_TEXT: usize = 64 * 1024;
/// Most attributes kept per span besides those read into fields.
pub const MAX_ATTRIBUTES: usize = 128;
/// Longest name kept (span, model, tool, error type).
pub const MAX_NAME: usize = 256;

/// The span's times, checked: nothing before 2000, nothing more than a day
/// ahead of now, and an end no earlier than the start.
pub fn check_times(start_ns: i64, end_ns: i64, opts: &ReadOptions) -> Result<(), String> {
    let latest = opts.now_ns.saturating_add(DAY_NS);
    for (what, t) in [("start", start_ns), ("end", end_ns)] {
        if !(EARLIEST_NS..=latest).contains(&t) {
            let shown = jiff::Timestamp::from_nanosecond(t as i128)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| format!("{t} ns"));
            return Err(format!(
                "its {what} time {shown} is not plausible (before 2000 or more than a day ahead)"
            ));
        }
    }
    if end_ns < start_ns {
        return Err("it ends before it starts".into());
    }
    Ok(())
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut at = MAX_TEXT;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push_str("…[cut]");
    }
    s
}

/// Lowercase hex of an id, checked for its length (16 bytes for a trace,
/// 8 for a span) and for being non-zero, as OTLP requires.
pub fn check_id(what: &str, hex_id: &str, bytes: usize) -> Result<String, String> {
    let id = hex_id.trim().to_ascii_lowercase();
    if id.len() != bytes * 2 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "its {what} '{}' is not {} hex digits",
            redact::preview(hex_id),
            bytes * 2
        ));
    }
    if id.bytes().all(|b| b == b'0') {
        return Err(format!("its {what} is all zeros"));
    }
    Ok(id)
}

fn as_int(key: &str, v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("{key} is {n}, not an integer")),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
            format!(
                "{key} is the string '{}', not an integer",
                redact::preview(s)
            )
        }),
        other => Err(format!("{key} is {}, not an integer", kind(other))),
    }
    .and_then(|n| {
        if n < 0 {
            Err(format!("{key} is {n}, below zero"))
        } else if n > MAX_COUNT {
            Err(format!("{key} is {n}, more than any real span counts"))
        } else {
            Ok(n)
        }
    })
}

/// The most tokens one span may count (so sums never overflow).
pub const MAX_COUNT: i64 = 1_000_000_000_000;
/// The largest cost one span may state, in dollars.
pub const MAX_COST: f64 = 1_000_000_000.0;

fn as_float(key: &str, v: &Value) -> Result<f64, String> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match f {
        Some(f) if f.is_finite() && (0.0..=MAX_COST).contains(&f) => Ok(f),
        _ => Err(format!(
            "{key} is {}, not a cost from 0 to {MAX_COST}",
            kind(v)
        )),
    }
}

fn as_text(key: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{key} is {}, not a string", kind(other))),
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string '{}'", redact::preview(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

/// Text for content attributes that may be structured (messages); a
/// structure's secret-named fields are redacted before it becomes text.
fn as_content(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => {
            let mut o = other.clone();
            redact::value("", &mut o);
            o.to_string()
        }
    }
}

/// Text as the store keeps it: no NUL (PostgreSQL refuses it in text), at
/// most `max` bytes.
pub fn clean(s: String, max: usize) -> String {
    let mut s = if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    };
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

/// Every string inside `v` cleaned and cut to `MAX_TEXT`.
/// A name as it is stored and shown: credentials in it redacted (`POST
/// https://hooks.slack.com/...` as a span name), no control characters
/// (a terminal escape in a tool name), at most [`MAX_NAME`] bytes.
pub(crate) fn clean_name(s: String) -> String {
    // No credential shape is shorter than `://a:b@`.
    let s = if s.len() < 7 {
        s
    } else {
        match redact::text(&s) {
            std::borrow::Cow::Owned(r) => r,
            std::borrow::Cow::Borrowed(_) => s,
        }
    };
    let s = if s.chars().any(char::is_control) {
        s.chars().filter(|c| !c.is_control()).collect()
    } else {
        s
    };
    clean(s, MAX_NAME)
}

fn clean_value(v: &mut Value) {
    match v {
        Value::String(s) => *s = clean(std::mem::take(s), MAX_TEXT),
        Value::Array(a) => a.iter_mut().for_each(clean_value),
        Value::Object(o) => o.values_mut().for_each(clean_value),
        _ => {}
    }
}

/// A bundle name as names are written everywhere else; a value that could
/// not be one (a path, a newline) is refused rather than stored.
fn as_name(key: &str, v: &Value) -> Result<String, String> {
    let s = as_text(key, v)?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "{key} '{}' is not a bundle, version or environment name",
            redact::preview(&s)
        ))
    }
}

/// Builds a span's fields from its attributes (each key once; later keys
/// win), by the GenAI semantic conventions and the OpenInference names.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub bundle: BundleTag,
    pub operation: Option<String>,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost: Option<f64>,
    pub finish_reasons: Vec<String>,
    pub error_type: Option<String>,
    pub tool_name: Option<String>,
    pub tool_arguments: Option<String>,
    /// OpenInference `message.tool_calls.N.tool_call.function.{name,arguments}`
    /// (under `llm.output_messages.M.` too), by N.
    pub requested: std::collections::BTreeMap<(u32, u32), (Option<String>, Option<String>)>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub attributes: Map<String, Value>,
}

impl Fields {
    /// Reads one attribute. A value of the wrong type for a field we read
    /// is an error (the whole span is refused, and says why).
    pub(crate) fn read(&mut self, key: &str, v: Value, capture: bool) -> Result<(), String> {
        match key {
            "releaseops.bundle_id" => self.bundle.bundle_id = Some(as_name(key, &v)?),
            "releaseops.bundle_version" => self.bundle.bundle_version = Some(as_name(key, &v)?),
            "releaseops.environment" => self.bundle.environment = Some(as_name(key, &v)?),
            "gen_ai.operation.name" => self.operation = Some(as_text(key, &v)?),
            "openinference.span.kind" => {
                if self.operation.is_none() {
                    self.operation = Some(as_text(key, &v)?.to_ascii_lowercase());
                }
            }
            "gen_ai.request.model" | "llm.model_name" => self.model = Some(as_text(key, &v)?),
            "gen_ai.response.model" => {
                if self.model.is_none() {
                    self.model = Some(as_text(key, &v)?);
                }
            }
            "gen_ai.usage.input_tokens"
            | "gen_ai.usage.prompt_tokens"
            | "llm.token_count.prompt" => self.input_tokens = Some(as_int(key, &v)?),
            "gen_ai.usage.output_tokens"
            | "gen_ai.usage.completion_tokens"
            | "llm.token_count.completion" => self.output_tokens = Some(as_int(key, &v)?),
            "llm.token_count.total" | "gen_ai.usage.total_tokens" => {
                self.total_tokens = Some(as_int(key, &v)?)
            }
            "gen_ai.usage.cost" | "llm.cost.total" | "releaseops.cost_usd" => {
                self.cost = Some(as_float(key, &v)?)
            }
            "gen_ai.response.finish_reasons" => {
                self.finish_reasons = match &v {
                    Value::Array(a) => a.iter().map(as_content).collect(),
                    other => vec![as_text(key, other)?],
                }
            }
            "error.type" => self.error_type = Some(as_text(key, &v)?),
            "gen_ai.tool.name" | "tool.name" => self.tool_name = Some(as_text(key, &v)?),
            "gen_ai.tool.call.arguments" | "tool.parameters" => {
                if capture {
                    self.tool_arguments = Some(as_content(&v));
                }
            }
            "gen_ai.input.messages" | "input.value" | "gen_ai.prompt" => {
                if capture {
                    self.input = Some(as_content(&v));
                }
            }
            "gen_ai.output.messages" | "output.value" | "gen_ai.completion" => {
                if capture {
                    self.output = Some(as_content(&v));
                }
            }
            _ => {
                if let Some((n, m, field)) = tool_call_key(key) {
                    let entry = self.requested.entry((m, n)).or_default();
                    match field {
                        "name" => entry.0 = Some(as_text(key, &v)?),
                        _ if capture => entry.1 = Some(as_content(&v)),
                        _ => {}
                    }
                    return Ok(());
                }
                // Message bodies under OpenInference's flattened names are content.
                if is_content_key(key) && !capture {
                    return Ok(());
                }
                if self.attributes.len() < MAX_ATTRIBUTES || self.attributes.contains_key(key) {
                    self.attributes.insert(key.to_string(), v);
                }
            }
        }
        Ok(())
    }

    /// The span, from its fields. Content is redacted either way.
    pub(crate) fn into_span(self, mut span: Span) -> Span {
        span.bundle = self.bundle;
        span.operation = self.operation;
        span.model = self.model;
        span.input_tokens = self.input_tokens;
        span.output_tokens = self.output_tokens;
        if let (Some(t), None, None) = (self.total_tokens, span.input_tokens, span.output_tokens) {
            // Only a total: count it as input, so the sum is right.
            span.input_tokens = Some(t);
        }
        span.cost = self.cost;
        span.finish_reasons = self.finish_reasons;
        if span.error_type.is_none() {
            span.error_type = self.error_type;
        }
        let executed = span.operation.as_deref() == Some("execute_tool")
            || span.operation.as_deref() == Some("tool");
        if let Some(name) = self.tool_name {
            span.tool_calls.push(ToolCall {
                name,
                arguments: self
                    .tool_arguments
                    .map(|a| cut(redact::text(&a).into_owned())),
                executed: executed || span.operation.is_none(),
            });
        }
        for (_, (name, args)) in self.requested {
            if let Some(name) = name {
                span.tool_calls.push(ToolCall {
                    name,
                    arguments: args.map(|a| cut(redact::text(&a).into_owned())),
                    executed: false,
                });
            }
        }
        span.input = self.input.map(|s| cut(redact::text(&s).into_owned()));
        span.output = self.output.map(|s| cut(redact::text(&s).into_owned()));
        let mut attributes = self.attributes;
        for (k, v) in attributes.iter_mut() {
            redact::value(k, v);
            clean_value(v);
        }
        span.attributes = attributes;
        span.name = clean_name(std::mem::take(&mut span.name));
        span.model = span.model.map(clean_name);
        span.operation = span.operation.map(clean_name);
        span.error_type = span.error_type.map(clean_name);
        for c in &mut span.tool_calls {
            c.name = clean_name(std::mem::take(&mut c.name));
        }
        span.status_message = span.status_message.map(|m| clean(m, MAX_TEXT));
        span.finish_reasons = std::mem::take(&mut span.finish_reasons)
            .into_iter()
            .map(clean_name)
            .collect();
        span.input = span.input.map(|m| clean(m, MAX_TEXT + 16));
        span.output = span.output.map(|m| clean(m, MAX_TEXT + 16));
        span
    }
}

/// `message.tool_calls.N.tool_call.function.name` (optionally under
/// `llm.output_messages.M.`): (N, M, "name" | "arguments").
fn tool_call_key(key: &str) -> Option<(u32, u32, &str)> {
    let (m, rest) = match key.strip_prefix("llm.output_messages.") {
        Some(r) => {
            let (m, rest) = r.split_once('.')?;
            (m.parse().ok()?, rest)
        }
        // Calls in the input are earlier turns' calls, not this span's.
        None if key.starts_with("llm.input_messages.") => return None,
        None => (0, key),
    };
    let rest = rest.strip_prefix("message.tool_calls.")?;
    let (n, field) = rest.split_once('.')?;
    let field = field.strip_prefix("tool_call.function.")?;
    matches!(field, "name" | "arguments").then_some(())?;
    Some((n.parse().ok()?, m, field))
}

/// Attributes that carry what went in or came out (kept only with content
/// capture): message bodies, tool arguments and results, retrieved
/// documents, template variables, by the GenAI conventions, OpenInference
/// and the common SDKs' own names.
fn is_content_key(key: &str) -> bool {
    const PARTS: [&str; 12] = [
        ".content",
        ".contents.",
        ".arguments",
        ".args",
        ".result",
        ".text",
        ".variables",
        "messages",
        ".documents.",
        ".prompt",
        ".completion",
        ".output",
    ];
    const PREFIXES: [&str; 6] = [
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.system_instructions",
        "llm.prompts",
        "ai.prompt",
        "ai.response",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || PARTS.iter().any(|p| key.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openinference_tool_call_keys() {
        assert_eq!(
            tool_call_key("message.tool_calls.0.tool_call.function.name"),
            Some((0, 0, "name"))
        );
        assert_eq!(
            tool_call_key(
                "llm.output_messages.1.message.tool_calls.2.tool_call.function.arguments"
            ),
            Some((2, 1, "arguments"))
        );
        assert_eq!(
            tool_call_key("message.tool_calls.x.tool_call.function.name"),
            None
        );
        assert_eq!(tool_call_key("llm.token_count.total"), None);
    }

    #[test]
    fn wrong_types_are_named() {
        let mut f = Fields::default();
        let e = f
            .read(
                "gen_ai.usage.input_tokens",
                Value::String("lots".into()),
                false,
            )
            .unwrap_err();
        assert!(
            e.contains("gen_ai.usage.input_tokens") && e.contains("lots"),
            "{e}"
        );
        f.read(
            "gen_ai.usage.input_tokens",
            Value::String("42".into()),
            false,
        )
        .unwrap();
        assert_eq!(f.input_tokens, Some(42));
        let e = f
            .read("releaseops.bundle_id", Value::String("../x".into()), false)
            .unwrap_err();
        assert!(e.contains("not a bundle"), "{e}");
        assert!(
            f.read("gen_ai.usage.output_tokens", Value::from(-3), false)
                .is_err()
        );
    }

    #[test]
    fn implausible_times_are_refused() {
        let opts = ReadOptions::new(false);
        assert!(check_times(0, 1, &opts).is_err());
        assert!(check_times(opts.now_ns, opts.now_ns - 1, &opts).is_err());
        assert!(check_times(opts.now_ns + 3 * DAY_NS, opts.now_ns + 3 * DAY_NS, &opts).is_err());
        assert!(check_times(opts.now_ns - 1000, opts.now_ns, &opts).is_ok());
    }
}
