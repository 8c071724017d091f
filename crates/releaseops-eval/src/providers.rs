//! Talking to models and agent services over HTTP: OpenAI chat completions
//! (and any OpenAI-compatible server: Ollama, vLLM, llama.cpp), Anthropic
//! messages, Google Gemini generateContent, and the `http` target (POST the
//! case to the team's agent service). Keys travel in headers only, so they
//! never end up in a URL, a report, a log or an error message.
//!
//! Every call retries 429 and 5xx answers and dropped connections with
//! exponential backoff and jitter, honouring `Retry-After`; the runner's
//! per-case timeout bounds the whole thing, retries included.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::output::{AgentOutput, ToolCall, Usage, parse_answer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    OpenAiCompatible,
    Anthropic,
    Gemini,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        Some(match s.to_ascii_lowercase().as_str() {
            "openai" => Provider::OpenAi,
            "openai-compatible" | "openai_compatible" | "ollama" | "vllm" | "llamacpp"
            | "llama.cpp" | "local" => Provider::OpenAiCompatible,
            "anthropic" => Provider::Anthropic,
            "gemini" | "google" => Provider::Gemini,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::OpenAiCompatible => "openai-compatible",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
        }
    }

    /// The environment variable holding the key, and whether one is required.
    pub fn key_var(self) -> (&'static str, bool) {
        match self {
            Provider::OpenAi => ("OPENAI_API_KEY", true),
            Provider::OpenAiCompatible => ("OPENAI_API_KEY", false),
            Provider::Anthropic => ("ANTHROPIC_API_KEY", true),
            Provider::Gemini => ("GEMINI_API_KEY", true),
        }
    }

    pub fn base_url_var(self) -> &'static str {
        match self {
            Provider::OpenAi | Provider::OpenAiCompatible => "OPENAI_BASE_URL",
            Provider::Anthropic => "ANTHROPIC_BASE_URL",
            Provider::Gemini => "GEMINI_BASE_URL",
        }
    }

    /// Whether the key from the environment may go to `base`: the
    /// provider's own service, or the URL its `*_BASE_URL` variable names.
    pub fn trusts(self, base: &str) -> bool {
        let norm = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
        let b = norm(base);
        b == norm(self.default_base_url())
            || std::env::var(self.base_url_var())
                .is_ok_and(|v| !v.trim().is_empty() && norm(&v) == b)
    }

    /// The environment's `key` for a call to `base`, which `written_in` (a
    /// repository file: a suite, `config.yaml`) chose when it is given. Such
    /// a file is anyone's who can commit, so a base it names gets no key
    /// unless the provider trusts it: a provider that needs its key is
    /// refused (the message says how to trust the server), a compatible
    /// server is called without one.
    pub fn key_for(
        self,
        key: Option<String>,
        base: &str,
        written_in: Option<&str>,
    ) -> Result<Option<String>, String> {
        match written_in {
            Some(what) if key.is_some() && !self.trusts(base) => {
                if self.key_var().1 {
                    Err(format!(
                        "{what} is not {}'s service, and {} is sent only there or to the URL in {}: export {}=<its URL> to trust that server with the key",
                        self.name(),
                        self.key_var().0,
                        self.base_url_var(),
                        self.base_url_var()
                    ))
                } else {
                    Ok(None)
                }
            }
            _ => Ok(key),
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::OpenAi => "https://api.openai.com/v1",
            Provider::OpenAiCompatible => "http://127.0.0.1:11434/v1",
            Provider::Anthropic => "https://api.anthropic.com",
            Provider::Gemini => "https://generativelanguage.googleapis.com",
        }
    }
}

/// A chat request, provider-neutral.
#[derive(Debug, Clone)]
pub struct Chat {
    pub model: String,
    pub system: String,
    pub user: String,
    pub temperature: Option<f64>,
    pub max_tokens: u64,
    pub parameters: Map<String, Value>,
    /// The tools the model is offered (none: it can only reply).
    pub tools: Vec<ToolDef>,
}

/// A tool the model may call: its name, what it does, and its arguments
/// as a JSON Schema object.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

impl ToolDef {
    /// Whether a name is one every provider accepts for a tool: 1 to 64
    /// letters, digits, `_` or `-`, opening with a letter or `_` (Gemini's
    /// rule, the strictest).
    pub fn valid_name(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    /// A tool as recorded calls show it: each argument seen, typed as its
    /// values were (lists with the type of their items, mappings with
    /// their keys'; values of several types are read as text). An
    /// argument name a provider refuses (`order id`) is left out.
    pub fn from_calls<'a>(
        name: &str,
        description: &str,
        calls: impl IntoIterator<Item = &'a Value>,
    ) -> ToolDef {
        let calls: Vec<&Value> = calls.into_iter().filter(|c| c.is_object()).collect();
        let mut parameters = schema_of(&calls);
        if parameters.get("properties").is_none() {
            parameters = json!({"type": "object", "properties": {}});
        }
        ToolDef {
            name: name.to_string(),
            description: description.to_string(),
            parameters,
        }
    }

    /// The tool as `p` declares one (OpenAI's inside its `function`).
    fn declared(&self, p: Provider) -> Value {
        let mut f = json!({"name": self.name});
        if !self.description.is_empty() {
            f["description"] = json!(self.description);
        }
        match p {
            Provider::OpenAi | Provider::OpenAiCompatible => {
                f["parameters"] = self.parameters.clone();
            }
            Provider::Anthropic => f["input_schema"] = self.parameters.clone(),
            // Gemini takes an OpenAPI subset: no object without properties
            // (a tool without arguments declares none), no keyword it
            // does not know.
            Provider::Gemini => {
                if let Some(s) = gemini_schema(&self.parameters) {
                    f["parameters"] = s;
                }
            }
        }
        f
    }
}

/// Whether every provider takes `key` as an argument's name.
fn valid_property(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The JSON Schema of the values an argument was seen with.
fn schema_of(values: &[&Value]) -> Value {
    let values: Vec<&Value> = values.iter().copied().filter(|v| !v.is_null()).collect();
    let kind = |v: &Value| match v {
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    };
    let Some(first) = values.first().map(|v| kind(v)) else {
        return json!({"type": "string"});
    };
    if values.iter().any(|v| kind(v) != first) {
        return json!({"type": "string"});
    }
    match first {
        "array" => {
            let items: Vec<&Value> = values
                .iter()
                .filter_map(|v| v.as_array())
                .flatten()
                .collect();
            json!({"type": "array", "items": schema_of(&items)})
        }
        "object" => {
            let mut keys: Vec<&String> = Vec::new();
            for v in &values {
                for k in v.as_object().into_iter().flat_map(Map::keys) {
                    if valid_property(k) && !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
            let props: Map<String, Value> = keys
                .into_iter()
                .map(|k| {
                    let seen: Vec<&Value> = values.iter().filter_map(|v| v.get(k)).collect();
                    (k.clone(), schema_of(&seen))
                })
                .collect();
            json!({"type": "object", "properties": props})
        }
        t => json!({"type": t}),
    }
}

/// A schema as Gemini takes it: the keywords of its OpenAPI subset, typed,
/// and no object without properties (none at all when nothing is left).
fn gemini_schema(s: &Value) -> Option<Value> {
    let o = s.as_object()?;
    let t = o.get("type").and_then(Value::as_str)?;
    let mut out = Map::new();
    out.insert("type".into(), json!(t));
    for k in ["description", "enum", "format", "nullable"] {
        if let Some(v) = o.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    match t {
        "object" => {
            let props: Map<String, Value> = o
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), gemini_schema(v)?)))
                .collect();
            if props.is_empty() {
                return None;
            }
            if let Some(r) = o.get("required").and_then(Value::as_array) {
                let kept: Vec<&Value> = r
                    .iter()
                    .filter(|n| n.as_str().is_some_and(|n| props.contains_key(n)))
                    .collect();
                out.insert("required".into(), json!(kept));
            }
            out.insert("properties".into(), Value::Object(props));
        }
        "array" => {
            let items = o
                .get("items")
                .and_then(gemini_schema)
                .unwrap_or_else(|| json!({"type": "string"}));
            out.insert("items".into(), items);
        }
        _ => {}
    }
    Some(Value::Object(out))
}

/// Model parameters that list tools of their own.
const TOOL_LISTS: [&str; 2] = ["tools", "functions"];

/// Model parameters that choose among the tools.
const TOOL_CHOICES: [&str; 4] = ["tool_choice", "function_call", "tool_config", "toolConfig"];

/// Whether a model parameter is kept in a request: with tools offered, no
/// list of its own replaces them and no choice of `none` takes them back
/// (`required`, or a tool named, is kept); with none offered and none
/// listed, a choice among tools is not sent (providers refuse it alone).
fn keeps_parameter(k: &str, v: &Value, tools_offered: bool, params: &Map<String, Value>) -> bool {
    if tools_offered {
        if TOOL_LISTS.contains(&k) {
            return false;
        }
        if TOOL_CHOICES.contains(&k) {
            let none = |s: &str| s.eq_ignore_ascii_case("none");
            let says_none = match v {
                Value::String(s) => none(s),
                Value::Object(o) => o.values().any(|x| match x {
                    Value::String(s) => none(s),
                    Value::Object(inner) => inner.values().any(|y| y.as_str().is_some_and(none)),
                    _ => false,
                }),
                _ => false,
            };
            return !says_none;
        }
        return true;
    }
    !TOOL_CHOICES.contains(&k) || TOOL_LISTS.iter().any(|l| params.contains_key(*l))
}

/// Builds the provider's request: (path under the base URL, JSON body).
pub fn request(p: Provider, c: &Chat) -> (String, Value) {
    match p {
        Provider::OpenAi | Provider::OpenAiCompatible => {
            let mut messages = Vec::new();
            if !c.system.is_empty() {
                messages.push(json!({"role": "system", "content": c.system}));
            }
            messages.push(json!({"role": "user", "content": c.user}));
            let mut body =
                json!({"model": c.model, "messages": messages, "max_tokens": c.max_tokens});
            if let Some(t) = c.temperature {
                body["temperature"] = json!(t);
            }
            if !c.tools.is_empty() {
                body["tools"] = c
                    .tools
                    .iter()
                    .map(|t| json!({"type": "function", "function": t.declared(p)}))
                    .collect();
            }
            merge(&mut body, &c.parameters, !c.tools.is_empty());
            ("/chat/completions".into(), body)
        }
        Provider::Anthropic => {
            let mut body = json!({"model": c.model, "max_tokens": c.max_tokens, "messages": [{"role": "user", "content": c.user}]});
            if !c.system.is_empty() {
                body["system"] = json!(c.system);
            }
            if let Some(t) = c.temperature {
                body["temperature"] = json!(t);
            }
            if !c.tools.is_empty() {
                body["tools"] = c.tools.iter().map(|t| t.declared(p)).collect();
            }
            merge(&mut body, &c.parameters, !c.tools.is_empty());
            ("/v1/messages".into(), body)
        }
        Provider::Gemini => {
            let mut gen_cfg = json!({"maxOutputTokens": c.max_tokens});
            if let Some(t) = c.temperature {
                gen_cfg["temperature"] = json!(t);
            }
            merge(&mut gen_cfg, &c.parameters, !c.tools.is_empty());
            let mut body = json!({"contents": [{"role": "user", "parts": [{"text": c.user}]}], "generationConfig": gen_cfg});
            if !c.system.is_empty() {
                body["systemInstruction"] = json!({"parts": [{"text": c.system}]});
            }
            if !c.tools.is_empty() {
                let decls: Vec<Value> = c.tools.iter().map(|t| t.declared(p)).collect();
                body["tools"] = json!([{"functionDeclarations": decls}]);
            }
            (format!("/v1beta/models/{}:generateContent", c.model), body)
        }
    }
}

fn merge(into: &mut Value, params: &Map<String, Value>, tools_offered: bool) {
    if let Value::Object(o) = into {
        for (k, v) in params {
            if keeps_parameter(k, v, tools_offered, params) {
                o.insert(k.clone(), v.clone());
            }
        }
    }
}

fn trunc(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The error message inside a provider's error body, if any.
fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    Some(match e {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string()),
        other => other.to_string(),
    })
}

/// Reads the provider's answer. A 200 that carries an error, or lacks the
/// fields the format promises, is an error (never an empty "answer").
pub fn parse_response(p: Provider, body: &[u8]) -> Result<AgentOutput, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(format!("{} returned an empty body", p.name()));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("{} returned malformed JSON ({e})", p.name()))?;
    if let Some(m) = error_message(&v) {
        return Err(format!("{} returned an error: {}", p.name(), trunc(&m)));
    }
    let missing = |what: &str| format!("{} response has no {what}", p.name());
    let (output, tool_calls, usage_key, input_key, output_key) = match p {
        Provider::OpenAi | Provider::OpenAiCompatible => {
            let msg = v
                .pointer("/choices/0/message")
                .ok_or_else(|| missing("choices[0].message"))?;
            let output = msg
                .get("content")
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_string();
            let tool_calls: Vec<ToolCall> = msg
                .get("tool_calls")
                .and_then(|t| t.as_array())
                .map(|calls| {
                    calls
                        .iter()
                        .filter_map(|c| {
                            let f = c.get("function")?;
                            let name = f.get("name")?.as_str()?.to_string();
                            let arguments = match f.get("arguments") {
                                Some(Value::String(s)) => {
                                    serde_json::from_str(s).unwrap_or(Value::String(s.clone()))
                                }
                                Some(other) => other.clone(),
                                None => Value::Null,
                            };
                            Some(ToolCall { name, arguments })
                        })
                        .collect()
                })
                .unwrap_or_default();
            if output.is_empty() && tool_calls.is_empty() && msg.get("content").is_none() {
                return Err(missing("message content"));
            }
            (
                output,
                tool_calls,
                "usage",
                "prompt_tokens",
                "completion_tokens",
            )
        }
        Provider::Anthropic => {
            let blocks = v
                .get("content")
                .and_then(|c| c.as_array())
                .ok_or_else(|| missing("content"))?;
            let mut output = String::new();
            let mut tool_calls = Vec::new();
            for b in blocks {
                match b.get("type").and_then(|t| t.as_str()) {
                    Some("text") => {
                        output.push_str(b.get("text").and_then(|t| t.as_str()).unwrap_or(""))
                    }
                    Some("tool_use") => tool_calls.push(ToolCall {
                        name: b
                            .get("name")
                            .and_then(|n| n.as_str())
                            .unwrap_or("")
                            .to_string(),
                        arguments: b.get("input").cloned().unwrap_or(Value::Null),
                    }),
                    _ => {}
                }
            }
            (output, tool_calls, "usage", "input_tokens", "output_tokens")
        }
        Provider::Gemini => {
            if let Some(reason) = v
                .pointer("/promptFeedback/blockReason")
                .and_then(|r| r.as_str())
            {
                return Err(format!("gemini blocked the prompt ({reason})"));
            }
            let parts = v
                .pointer("/candidates/0/content/parts")
                .and_then(|p| p.as_array())
                .ok_or_else(|| missing("candidates[0].content.parts"))?;
            let mut output = String::new();
            let mut tool_calls = Vec::new();
            for part in parts {
                if let Some(t) = part.get("text").and_then(|t| t.as_str()) {
                    output.push_str(t);
                }
                if let Some(fc) = part.get("functionCall") {
                    tool_calls.push(ToolCall {
                        name: fc
                            .get("name")
                            .and_then(|n| n.as_str())
                            .unwrap_or("")
                            .to_string(),
                        arguments: fc.get("args").cloned().unwrap_or(Value::Null),
                    });
                }
            }
            (
                output,
                tool_calls,
                "usageMetadata",
                "promptTokenCount",
                "candidatesTokenCount",
            )
        }
    };
    // An answer with no text and no tool call says nothing: garbage, not
    // an action a gate may count as unchanged.
    if output.trim().is_empty() && tool_calls.is_empty() {
        return Err(format!(
            "{} answered nothing: no text and no tool call",
            p.name()
        ));
    }
    let tokens = |u: &Value, key: &str| u.get(key).and_then(Value::as_u64).unwrap_or(0);
    let usage = v.get(usage_key).map(|u| Usage {
        input_tokens: tokens(u, input_key),
        output_tokens: tokens(u, output_key),
        cost_usd: None,
    });
    Ok(AgentOutput {
        output,
        tool_calls,
        usage,
        latency_ms: 0.0,
        cached: false,
    })
}

/// Retries with exponential backoff and jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(20),
        }
    }
}

fn retryable(status: u16) -> bool {
    status == 429 || status == 408 || status == 529 || (500..600).contains(&status)
}

/// The most an answer may hold: a server that streams without end is cut
/// off here, not read into memory.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Reads an answer's body, refusing one over `cap` bytes.
async fn read_body(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(format!("the answer is over {} MiB", cap >> 20));
    }
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > cap {
                    return Err(format!("the answer is over {} MiB", cap >> 20));
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(format!("the response broke off ({})", e.without_url())),
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form falls back to backoff).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(120.0)))
}

fn jitter(seed: &mut u64) -> f64 {
    // xorshift64*: good enough to spread retries apart.
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    let x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
    0.5 + (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Installs the TLS crypto provider once (ring: no C build of aws-lc).
pub fn http_client() -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// POSTs `body` to `url` with `headers`, retrying as the policy says. Returns
/// the successful body. Errors name the status and the service's message,
/// never the headers.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: &Value,
    policy: RetryPolicy,
    what: &str,
) -> Result<Vec<u8>, String> {
    // A server may echo a key or a header back in its error; no error we
    // return carries one.
    let mut secrets = crate::secrets::Redactor::new();
    for (_, v) in headers {
        secrets.add_header(v);
    }
    post_json_raw(client, url, headers, body, policy, what)
        .await
        .map_err(|e| secrets.redact(&e).into_owned())
}

async fn post_json_raw(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: &Value,
    policy: RetryPolicy,
    what: &str,
) -> Result<Vec<u8>, String> {
    // Spread concurrent retries apart: seed from the clock and this request.
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut seed =
        (clock ^ (body.to_string().len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    let mut attempt = 0u32;
    loop {
        let mut req = client.post(url).json(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let (wait, last_err) = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                let bytes = read_body(resp, MAX_ANSWER_BYTES)
                    .await
                    .map_err(|e| format!("{what}: {e}"));
                match bytes {
                    Ok(b) if (200..300).contains(&status) => return Ok(b),
                    Ok(b) => {
                        let msg = serde_json::from_slice::<Value>(&b)
                            .ok()
                            .and_then(|v| error_message(&v))
                            .unwrap_or_else(|| String::from_utf8_lossy(&b).to_string());
                        let err = format!("{what} answered HTTP {status}: {}", trunc(&msg));
                        if !retryable(status) {
                            return Err(err);
                        }
                        (after, err)
                    }
                    Err(e) => (None, e),
                }
            }
            Err(e) => (None, format!("{what}: {}", e.without_url())),
        };
        if attempt >= policy.max_retries {
            return Err(format!("{last_err} (after {} attempts)", attempt + 1));
        }
        let backoff = policy
            .base
            .saturating_mul(1 << attempt.min(16))
            .min(policy.cap);
        let delay = wait.unwrap_or_else(|| backoff.mul_f64(jitter(&mut seed)));
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// One chat call: build, send (with retries), read.
pub async fn chat(
    client: &reqwest::Client,
    provider: Provider,
    base_url: &str,
    api_key: Option<&str>,
    c: &Chat,
    policy: RetryPolicy,
) -> Result<AgentOutput, String> {
    chat_cached(client, provider, base_url, api_key, c, policy, None, None).await
}

/// Responses cached on disk by the full request (provider, endpoint, body and
/// a caller's salt such as the repeat index; never the key), so re-running an
/// unchanged suite costs no calls.
#[derive(Debug, Clone)]
pub struct ResponseCache {
    pub dir: std::path::PathBuf,
    /// Read cached answers (false: call anyway, and refresh the cache).
    pub read: bool,
    pub salt: String,
}

impl ResponseCache {
    fn path(&self, provider: Provider, url: &str, body: &Value) -> std::path::PathBuf {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [provider.name(), url, &body.to_string(), &self.salt] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(&hex[..2]).join(format!("{}.json", &hex[2..]))
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one cached call: every argument is part of the cache key"
)]
pub async fn chat_cached(
    client: &reqwest::Client,
    provider: Provider,
    base_url: &str,
    api_key: Option<&str>,
    c: &Chat,
    policy: RetryPolicy,
    cache: Option<&ResponseCache>,
    limiter: Option<&RateLimiter>,
) -> Result<AgentOutput, String> {
    let (path, body) = request(provider, c);
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let cached_at = cache.map(|k| k.path(provider, &url, &body));
    if let (Some(p), Some(k)) = (&cached_at, cache)
        && k.read
        && let Ok(bytes) = std::fs::read(p)
        && let Ok(mut out) = parse_response(provider, &bytes)
    {
        out.latency_ms = 0.0;
        out.cached = true;
        return Ok(out);
    }
    let mut headers = Vec::new();
    if let Some(k) = api_key {
        match provider {
            Provider::OpenAi | Provider::OpenAiCompatible => {
                headers.push(("authorization".into(), format!("Bearer {k}")))
            }
            Provider::Anthropic => headers.push(("x-api-key".into(), k.into())),
            Provider::Gemini => headers.push(("x-goog-api-key".into(), k.into())),
        }
    }
    if provider == Provider::Anthropic {
        headers.push(("anthropic-version".into(), "2023-06-01".into()));
    }
    if let Some(l) = limiter {
        l.wait().await;
    }
    let start = Instant::now();
    let bytes = post_json(client, &url, &headers, &body, policy, provider.name()).await?;
    let mut out = parse_response(provider, &bytes)?;
    out.latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    if let Some(p) = cached_at {
        // Best effort: a cache that cannot be written only costs a call later.
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &p);
        }
    }
    Ok(out)
}

/// The `http` target: POST the case (as the command target gets it on stdin)
/// to the agent service; the answer is read as an agent's stdout is.
pub async fn call_http(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    payload: &Value,
    policy: RetryPolicy,
) -> Result<AgentOutput, String> {
    let start = Instant::now();
    let bytes = post_json(client, url, headers, payload, policy, "the agent service").await?;
    parse_answer(&bytes, start.elapsed().as_secs_f64() * 1000.0)
}

/// Spaces requests to one provider at most `rps` per second, across every
/// concurrent case and judge that uses it.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(rps: f64) -> Option<std::sync::Arc<RateLimiter>> {
        (rps.is_finite() && rps > 0.0).then(|| {
            std::sync::Arc::new(RateLimiter {
                interval: Duration::from_secs_f64(1.0 / rps),
                next: tokio::sync::Mutex::new(Instant::now()),
            })
        })
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(slot)).await;
    }
}
