//! Arize Phoenix: `GET /v1/projects/{project}/spans` (a project's name or
//! id), an optional `Authorization: Bearer` key, cursor paging
//! (`next_cursor`), the window as `start_time` (inclusive) / `end_time`
//! (exclusive). Spans are OpenTelemetry spans with OpenInference
//! attributes (flat dotted names, or nested), read as OTLP's are. Older
//! servers ignore the window: the pull keeps only what falls inside it.

use serde_json::{Map, Value};

use super::{Api, Item, Page, Platform, Request, rfc3339};
use crate::span::{Fields, ReadOptions, Status, check_times};

pub(crate) struct Phoenix {
    project: String,
}

impl Phoenix {
    pub(crate) fn new(project: &str) -> Phoenix {
        Phoenix {
            project: project.trim().to_string(),
        }
    }
}

impl Api for Phoenix {
    fn page(&self, w: (i64, i64), cursor: Option<&str>, size: u32, _capture: bool) -> Request {
        let mut query = vec![
            ("limit", size.to_string()),
            ("start_time", rfc3339(w.0)),
            ("end_time", rfc3339(w.1)),
        ];
        if let Some(c) = cursor {
            query.push(("cursor", c.to_string()));
        }
        Request {
            post: false,
            path: vec![
                "v1".into(),
                "projects".into(),
                self.project.clone(),
                "spans".into(),
            ],
            query,
            body: None,
        }
    }

    fn scope(&self) -> String {
        self.project.clone()
    }

    fn parse(&self, body: Value, opts: &ReadOptions, limit: usize) -> Result<Page, String> {
        super::read_page(
            body,
            (&["data"], &[&["next_cursor"]]),
            ("span", limit),
            span_id,
            |o, id| read(o, id, opts),
        )
    }
}

fn span_id(o: &Map<String, Value>) -> Result<&str, String> {
    let context = o
        .get("context")
        .and_then(Value::as_object)
        .ok_or("context is missing")?;
    super::text_field(context, "span_id").map_err(|e| format!("context.{e}"))
}

/// Nested attributes as dotted names.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>, depth: usize) {
    match v {
        Value::Object(m) if depth < 8 => {
            for (k, inner) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, inner, out, depth + 1);
            }
        }
        Value::Null => {}
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn read(o: &Map<String, Value>, id: &str, opts: &ReadOptions) -> Result<Item, String> {
    let p = Platform::Phoenix;
    let trace = o
        .get("context")
        .and_then(Value::as_object)
        .and_then(|c| super::opt_text(c, "trace_id"))
        .ok_or("context.trace_id is missing")?;
    let start = super::time_field(o, "start_time")?.ok_or("start_time is missing")?;
    let Some(end) = super::time_field(o, "end_time")? else {
        return Ok(Item::Running { start_ns: start });
    };
    check_times(start, end, opts)?;
    let mut f = Fields::default();
    let mut attrs = Vec::new();
    if let Some(a) = o.get("attributes") {
        if !a.is_object() {
            return Err("attributes is not an object".into());
        }
        flatten("", a, &mut attrs, 0);
    }
    for (k, v) in attrs {
        f.read(&k, v, opts.capture_content)?;
    }
    if f.operation.is_none()
        && let Some(kind) = super::opt_text(o, "span_kind")
    {
        f.read(
            "openinference.span.kind",
            Value::String(kind.to_string()),
            opts.capture_content,
        )?;
    }
    let name = super::opt_text(o, "name").unwrap_or("span").to_string();
    let mut span = super::new_span(p, trace, id, name, (start, end));
    span.parent_span_id = super::opt_text(o, "parent_id").map(|x| super::span_id(p, x));
    span.status = match super::opt_text(o, "status_code").map(str::to_ascii_uppercase) {
        Some(s) if s == "ERROR" => Status::Error,
        Some(s) if s == "OK" => Status::Ok,
        _ => Status::Unset,
    };
    if span.status == Status::Error {
        span.status_message =
            super::opt_text(o, "status_message").map(|m| crate::redact::text(m).into_owned());
        // The exception an errored span recorded names its error.
        span.error_type = o
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|e| {
                e.get("attributes")
                    .and_then(|a| a.get("exception.type"))
                    .and_then(Value::as_str)
            })
            .map(String::from);
    }
    Ok(Item::Span(Box::new(f.into_span(span))))
}
