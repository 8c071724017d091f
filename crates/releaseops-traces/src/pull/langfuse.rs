//! Langfuse: `GET /api/public/v2/observations`, Basic auth (public key,
//! secret key), cursor paging (`meta.cursor`), the window as
//! `fromStartTime` (inclusive) and `toStartTime` (exclusive). Inputs and
//! outputs (`fields=io`) are asked for only when content is captured.

use serde_json::{Map, Value};

use super::{Api, Item, Page, Platform, Request, read_as, read_metadata, rfc3339};
use crate::span::{Fields, ReadOptions, Status, check_times};

pub(crate) struct Langfuse;

impl Api for Langfuse {
    fn page(&self, w: (i64, i64), cursor: Option<&str>, size: u32, capture: bool) -> Request {
        let mut fields = String::from("core,basic,metadata,model,usage");
        if capture {
            fields.push_str(",io");
        }
        let mut query = vec![
            ("fields", fields),
            ("limit", size.to_string()),
            ("fromStartTime", rfc3339(w.0)),
            ("toStartTime", rfc3339(w.1)),
            // Metadata values are cut at 200 characters unless named here:
            // the OTel attributes (the bundle's tags among them) are objects.
            (
                "expandMetadata",
                "attributes,resourceAttributes,releaseops".to_string(),
            ),
        ];
        if let Some(c) = cursor {
            query.push(("cursor", c.to_string()));
        }
        Request {
            post: false,
            path: ["api", "public", "v2", "observations"]
                .map(String::from)
                .to_vec(),
            query,
            body: None,
        }
    }

    /// Langfuse keeps times in milliseconds and compares bounds in them.
    fn precision_ns(&self) -> i64 {
        1_000_000
    }

    fn scope(&self) -> String {
        String::new()
    }

    fn parse(&self, body: Value, opts: &ReadOptions, limit: usize) -> Result<Page, String> {
        super::read_page(
            body,
            (&["data"], &[&["meta", "cursor"]]),
            ("observation", limit),
            |o| super::text_field(o, "id"),
            |o, id| read(o, id, opts),
        )
    }
}

fn read(o: &Map<String, Value>, id: &str, opts: &ReadOptions) -> Result<Item, String> {
    let p = Platform::Langfuse;
    let trace = super::text_field(o, "traceId")?;
    let start = super::time_field(o, "startTime")?.ok_or("startTime is missing")?;
    let kind = super::opt_text(o, "type")
        .unwrap_or("SPAN")
        .to_ascii_uppercase();
    let end = match super::time_field(o, "endTime")? {
        Some(e) => e,
        // An event is a point in time; anything else without an end is running.
        None if kind == "EVENT" => start,
        None => return Ok(Item::Running { start_ns: start }),
    };
    check_times(start, end, opts)?;
    let capture = opts.capture_content;
    let mut f = Fields::default();
    if let Some(meta) = o.get("metadata") {
        read_metadata(&mut f, meta, capture)?;
    }
    let operation = match kind.as_str() {
        "GENERATION" => "chat".to_string(),
        "TOOL" => "execute_tool".to_string(),
        other => other.to_ascii_lowercase(),
    };
    f.read("gen_ai.operation.name", Value::String(operation), capture)?;
    for key in ["providedModelName", "model"] {
        if let Some(m) = o.get(key).filter(|m| !m.is_null()) {
            read_as(&mut f, "gen_ai.request.model", key, m, capture)?;
            break;
        }
    }
    let usage = o
        .get("usageDetails")
        .filter(|u| u.is_object())
        .map(|u| ("usageDetails", u))
        .or_else(|| {
            o.get("usage")
                .filter(|u| u.is_object())
                .map(|u| ("usage", u))
        });
    if let Some((name, u)) = usage {
        for (k, conv) in [
            ("input", "gen_ai.usage.input_tokens"),
            ("output", "gen_ai.usage.output_tokens"),
            ("total", "gen_ai.usage.total_tokens"),
        ] {
            if let Some(n) = u.get(k) {
                read_as(&mut f, conv, &format!("{name}.{k}"), n, capture)?;
            }
        }
    }
    let cost = o
        .get("costDetails")
        .and_then(|c| c.get("total"))
        .filter(|c| !c.is_null())
        .map(|c| ("costDetails.total", c))
        .or_else(|| {
            ["totalCost", "calculatedTotalCost"]
                .into_iter()
                .find_map(|k| o.get(k).filter(|c| !c.is_null()).map(|c| (k, c)))
        });
    if let Some((name, c)) = cost {
        read_as(&mut f, "gen_ai.usage.cost", name, c, capture)?;
    }
    let name = super::opt_text(o, "name")
        .unwrap_or(kind.as_str())
        .to_string();
    if kind == "TOOL" {
        f.read("gen_ai.tool.name", Value::String(name.clone()), capture)?;
        if let Some(args) = o.get("input") {
            read_as(&mut f, "gen_ai.tool.call.arguments", "input", args, capture)?;
        }
    } else if let Some(input) = o.get("input") {
        read_as(&mut f, "input.value", "input", input, capture)?;
    }
    if let Some(output) = o.get("output") {
        read_as(&mut f, "output.value", "output", output, capture)?;
    }
    for (key, attr) in [
        ("version", "langfuse.version"),
        ("environment", "langfuse.environment"),
        ("level", "langfuse.level"),
    ] {
        if let Some(v) = super::opt_text(o, key) {
            f.read(attr, Value::String(v.to_string()), capture)?;
        }
    }
    f.read(
        "langfuse.observation.id",
        Value::String(id.to_string()),
        capture,
    )?;
    f.read(
        "langfuse.trace.id",
        Value::String(trace.to_string()),
        capture,
    )?;
    let mut span = super::new_span(p, trace, id, name, (start, end));
    span.parent_span_id = super::opt_text(o, "parentObservationId").map(|x| super::span_id(p, x));
    let level = super::opt_text(o, "level").unwrap_or("DEFAULT");
    span.status = if level.eq_ignore_ascii_case("ERROR") {
        Status::Error
    } else {
        Status::Unset
    };
    if span.status == Status::Error {
        span.status_message =
            super::opt_text(o, "statusMessage").map(|m| crate::redact::text(m).into_owned());
    }
    Ok(Item::Span(Box::new(f.into_span(span))))
}
