//! LangSmith: `POST /api/v2/runs/query` with `x-api-key`, the project by
//! id (a name is looked up with `GET /api/v1/sessions?name=`), the window
//! as `min_start_time` / `max_start_time`, cursor paging (`next_cursor`).
//! Runs are read in the v2 shape (`parent_run_ids`, top-level `metadata`,
//! upper-case `status` and `run_type`) and in v1's (`parent_run_id`,
//! `extra.metadata`, costs as decimal strings). Inputs and outputs are
//! selected only when content is captured.

use serde_json::{Map, Value, json};

use super::{Api, Http, Item, Page, Platform, Request, read_as, read_metadata, rfc3339};
use crate::TraceError;
use crate::span::{Fields, ReadOptions, Status, check_times};

pub(crate) struct LangSmith {
    project_id: String,
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

impl LangSmith {
    /// The project's id: given, or looked up by name.
    pub(crate) fn resolve(http: &Http, project: Option<&str>) -> Result<LangSmith, TraceError> {
        let name = project.unwrap_or("default").trim();
        if is_uuid(name) {
            return Ok(LangSmith {
                project_id: name.to_ascii_lowercase(),
            });
        }
        let req = Request {
            post: false,
            path: ["api", "v1", "sessions"].map(String::from).to_vec(),
            query: vec![("name", name.to_string()), ("limit", "10".into())],
            body: None,
        };
        let answer = http.send(&req, &mut 0)?;
        let list = match &answer {
            Value::Array(a) => a.as_slice(),
            _ => {
                return Err(TraceError::Remote(
                    "langsmith answered the project lookup (/api/v1/sessions) with something that is not a list".into(),
                ));
            }
        };
        list.iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|s| s.get("id").and_then(Value::as_str))
            .filter(|id| is_uuid(id))
            .map(|id| LangSmith {
                project_id: id.to_ascii_lowercase(),
            })
            .ok_or_else(|| {
                TraceError::Input(format!(
                    "LangSmith has no project named '{}'; give --project a project's name or id",
                    crate::redact::preview(name)
                ))
            })
    }
}

impl Api for LangSmith {
    fn page(&self, w: (i64, i64), cursor: Option<&str>, size: u32, capture: bool) -> Request {
        let mut selects = vec![
            "ID",
            "NAME",
            "RUN_TYPE",
            "STATUS",
            "START_TIME",
            "END_TIME",
            "ERROR",
            "EXTRA",
            "METADATA",
            "PARENT_RUN_IDS",
            "TRACE_ID",
            "PROMPT_TOKENS",
            "COMPLETION_TOKENS",
            "TOTAL_TOKENS",
            "TOTAL_COST",
        ];
        if capture {
            selects.extend(["INPUTS", "OUTPUTS"]);
        }
        let mut body = json!({
            "project_ids": [self.project_id],
            "min_start_time": rfc3339(w.0),
            "max_start_time": rfc3339(w.1),
            "page_size": size,
            "selects": selects,
        });
        if let Some(c) = cursor {
            body["cursor"] = Value::String(c.to_string());
        }
        Request {
            post: true,
            path: ["api", "v2", "runs", "query"].map(String::from).to_vec(),
            query: vec![],
            body: Some(body),
        }
    }

    fn scope(&self) -> String {
        self.project_id.clone()
    }

    fn parse(&self, body: Value, opts: &ReadOptions, limit: usize) -> Result<Page, String> {
        // v2 answers items and next_cursor; v1 runs and cursors.next.
        super::read_page(
            body,
            (
                &["items", "runs"],
                &[&["next_cursor"], &["cursors", "next"]],
            ),
            ("run", limit),
            |o| super::text_field(o, "id"),
            |o, id| read(o, id, opts),
        )
    }
}

fn read(o: &Map<String, Value>, id: &str, opts: &ReadOptions) -> Result<Item, String> {
    let p = Platform::Langsmith;
    let trace = super::opt_text(o, "trace_id").unwrap_or(id);
    let start = super::time_field(o, "start_time")?.ok_or("start_time is missing")?;
    let status = super::opt_text(o, "status")
        .unwrap_or("")
        .to_ascii_lowercase();
    let end = match super::time_field(o, "end_time")? {
        Some(e) if status != "pending" => e,
        _ => return Ok(Item::Running { start_ns: start }),
    };
    check_times(start, end, opts)?;
    let capture = opts.capture_content;
    let mut f = Fields::default();
    let meta = o
        .get("metadata")
        .filter(|m| m.is_object())
        .or_else(|| o.get("extra").and_then(|e| e.get("metadata")));
    if let Some(meta) = meta {
        read_metadata(&mut f, meta, capture)?;
    }
    let kind = super::opt_text(o, "run_type")
        .unwrap_or("chain")
        .to_ascii_lowercase();
    let operation = match kind.as_str() {
        "llm" => "chat".to_string(),
        "tool" => "execute_tool".to_string(),
        other => other.to_string(),
    };
    f.read("gen_ai.operation.name", Value::String(operation), capture)?;
    let model = meta
        .and_then(|m| m.get("ls_model_name"))
        .or_else(|| {
            o.get("extra")
                .and_then(|e| e.get("invocation_params"))
                .and_then(|i| i.get("model").or_else(|| i.get("model_name")))
        })
        .filter(|m| m.is_string());
    if let Some(m) = model {
        read_as(&mut f, "gen_ai.request.model", "ls_model_name", m, capture)?;
    }
    for (k, conv) in [
        ("prompt_tokens", "gen_ai.usage.input_tokens"),
        ("completion_tokens", "gen_ai.usage.output_tokens"),
        ("total_tokens", "gen_ai.usage.total_tokens"),
        ("total_cost", "gen_ai.usage.cost"),
    ] {
        if let Some(n) = o.get(k) {
            read_as(&mut f, conv, k, n, capture)?;
        }
    }
    let name = super::opt_text(o, "name")
        .unwrap_or(kind.as_str())
        .to_string();
    if kind == "tool" {
        f.read("gen_ai.tool.name", Value::String(name.clone()), capture)?;
        if let Some(args) = o.get("inputs") {
            read_as(
                &mut f,
                "gen_ai.tool.call.arguments",
                "inputs",
                args,
                capture,
            )?;
        }
    } else if let Some(inputs) = o.get("inputs") {
        read_as(&mut f, "input.value", "inputs", inputs, capture)?;
    }
    if let Some(outputs) = o.get("outputs") {
        read_as(&mut f, "output.value", "outputs", outputs, capture)?;
    }
    f.read("langsmith.run_id", Value::String(id.to_string()), capture)?;
    let mut span = super::new_span(p, trace, id, name, (start, end));
    let parent = match o.get("parent_run_ids") {
        Some(Value::Array(a)) => a.last().and_then(Value::as_str),
        _ => super::opt_text(o, "parent_run_id"),
    };
    span.parent_span_id = parent.filter(|x| *x != id).map(|x| super::span_id(p, x));
    let error = super::opt_text(o, "error");
    if status == "error" || error.is_some() {
        span.status = Status::Error;
        span.status_message = error.map(|m| {
            let first = m.lines().next().unwrap_or(m);
            crate::redact::text(first).into_owned()
        });
    } else if status == "success" {
        span.status = Status::Ok;
    }
    Ok(Item::Span(Box::new(f.into_span(span))))
}
