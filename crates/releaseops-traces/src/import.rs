//! `releaseops traces import FILE...`: trace files into the store.
//!
//! A file holds JSON lines, one trace each, of either kind:
//! - the existing tool's trace dict (`trace_id` or `id`, `latency_ms` or
//!   `duration_ms`, `total_tokens` or `input_tokens` + `output_tokens`,
//!   `tool_calls[]` with `name` or `function` and `arguments` or `args`,
//!   `error` or `status`, `timestamp`, `created_at` or `start_time`,
//!   `output` or `response`, `metadata` with the `releaseops.*` keys);
//! - an OTLP JSON export, as the Collector's file exporter writes it.
//!
//! A file that is one JSON document (an object, or a list of trace dicts)
//! is read whole. A bad line is reported with its number, and nothing of
//! its file is stored: each file is one transaction.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::redact;
use crate::span::{
    BundleTag, Fields, MAX_TEXT, ReadOptions, Source, Span, Status, ToolCall, check_times, clean,
};
use crate::store::{Prepared, Stored, TraceStore};
use crate::{TraceError, otlp};

/// Longest line read (a trace with its content captured can be large).
pub const MAX_LINE: usize = 16 * 1024 * 1024;
/// Largest file read as one JSON document.
pub const MAX_DOCUMENT: usize = 256 * 1024 * 1024;
const BATCH: usize = 2_000;

/// What one file brought.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileImport {
    pub file: String,
    /// Traces (lines, or entries of a list) read.
    pub records: u64,
    #[serde(flatten)]
    pub stored: Stored,
    /// Spans of OTLP exports refused, with the first reasons.
    pub rejected: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejections: Vec<String>,
    /// Trace dicts without a time, stored at the import's time.
    pub untimed: u64,
}

/// Imports one file in one transaction.
pub fn import_file(
    store: &mut TraceStore,
    path: &Path,
    opts: &ReadOptions,
) -> Result<FileImport, TraceError> {
    let shown = path.display().to_string();
    let open_err = |e: std::io::Error| TraceError::Input(format!("cannot read {shown}: {e}"));
    let meta = std::fs::metadata(path).map_err(open_err)?;
    if !meta.is_file() {
        return Err(TraceError::Input(format!("{shown} is not a file")));
    }
    let file = std::fs::File::open(path).map_err(open_err)?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let mut writer = store.writer()?;
    // Lines are read and parsed on one thread while the store writes on
    // this one; a few batches in between keep both busy.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Prepared>>(4);
    let opts = *opts;
    // Batches written are freed on a third thread: freeing a batch's
    // strings costs the writer, the slower of the two, a twentieth.
    let (used_tx, used_rx) = std::sync::mpsc::sync_channel::<Vec<Prepared>>(4);
    let (read, written) = std::thread::scope(|scope| {
        let shown = shown.as_str();
        let reading = scope.spawn(move || read_all(reader, shown, &opts, tx));
        scope.spawn(move || used_rx.iter().for_each(drop));
        let mut written = Ok(());
        for chunk in rx.iter() {
            if let Err(e) = writer.add_prepared(&chunk) {
                written = Err(e);
                break;
            }
            // (Freed here should the freeing thread be gone.)
            let _ = used_tx.send(chunk);
        }
        drop(used_tx);
        // A failed write stops the reader at its next batch.
        drop(rx);
        let read = reading.join().unwrap_or_else(|_| {
            Err(TraceError::Input(format!(
                "{shown}: the reader stopped unexpectedly"
            )))
        });
        (read, written)
    });
    // Either failing leaves the transaction uncommitted: nothing is stored.
    let mut report = read?;
    written?;
    report.stored = writer.commit()?;
    Ok(report)
}

/// Reads and parses every record of a file, sending spans in batches.
fn read_all(
    mut reader: BufReader<std::fs::File>,
    shown: &str,
    opts: &ReadOptions,
    out: std::sync::mpsc::SyncSender<Vec<Prepared>>,
) -> Result<FileImport, TraceError> {
    let open_err = |e: std::io::Error| TraceError::Input(format!("cannot read {shown}: {e}"));
    let mut report = FileImport {
        file: shown.to_string(),
        ..FileImport::default()
    };
    let mut pending: Vec<Span> = Vec::with_capacity(BATCH);
    let send = |pending: &mut Vec<Span>| -> bool {
        otlp::inherit_within(pending);
        let batch = std::mem::replace(pending, Vec::with_capacity(BATCH));
        out.send(batch.into_iter().map(Prepared::new).collect())
            .is_ok()
    };
    let first = first_byte(&mut reader).map_err(open_err)?;
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut whole: Option<Value> = None;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(open_err)?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_LINE {
            return Err(TraceError::Input(format!(
                "{shown} line {number}: longer than {MAX_LINE} bytes; nothing from this file was imported"
            )));
        }
        let text = trim(&line);
        if text.is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            // A pretty-printed document: read the whole file as one.
            Err(_) if number == 1 && matches!(first, Some(b'{') | Some(b'[')) => {
                let mut rest = line.clone();
                (&mut reader)
                    .take(MAX_DOCUMENT as u64)
                    .read_to_end(&mut rest)
                    .map_err(open_err)?;
                let doc: Value = serde_json::from_slice(&rest).map_err(|e| {
                    TraceError::Input(format!(
                        "{shown}: not JSON lines, and not one JSON document either ({e}); nothing from this file was imported"
                    ))
                })?;
                whole = Some(doc);
                break;
            }
            Err(e) => {
                return Err(TraceError::Input(format!(
                    "{shown} line {number}: not JSON ({e}); nothing from this file was imported"
                )));
            }
        };
        read_record(&v, opts, &mut report, &mut pending).map_err(|e| {
            TraceError::Input(format!(
                "{shown} line {number}: {e}; nothing from this file was imported"
            ))
        })?;
        if pending.len() >= BATCH && !send(&mut pending) {
            return Ok(report);
        }
    }
    if let Some(doc) = whole {
        let records: Vec<&Value> = match &doc {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for (i, v) in records.into_iter().enumerate() {
            read_record(v, opts, &mut report, &mut pending).map_err(|e| {
                TraceError::Input(format!(
                    "{shown} entry {}: {e}; nothing from this file was imported",
                    i + 1
                ))
            })?;
        }
    }
    send(&mut pending);
    Ok(report)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn first_byte(r: &mut BufReader<std::fs::File>) -> std::io::Result<Option<u8>> {
    let buf = r.fill_buf()?;
    Ok(buf.iter().copied().find(|c| !c.is_ascii_whitespace()))
}

fn read_record(
    v: &Value,
    opts: &ReadOptions,
    report: &mut FileImport,
    out: &mut Vec<Span>,
) -> Result<(), String> {
    let Value::Object(o) = v else {
        return Err(format!(
            "a trace is a JSON object, and this is {}",
            describe(v)
        ));
    };
    report.records += 1;
    if o.contains_key("resourceSpans") || o.contains_key("resource_spans") {
        let d = otlp::from_json_as(v, opts, Source::Import).map_err(|e| e.to_string())?;
        report.rejected += d.rejected.len() as u64;
        if !d.rejected.is_empty() && report.rejections.len() < 5 {
            report.rejections.push(d.rejection_message());
        }
        out.extend(d.spans);
        return Ok(());
    }
    let (span, untimed) = legacy_span(o, opts)?;
    if untimed {
        report.untimed += 1;
    }
    out.push(span);
    Ok(())
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A 16-byte id (hex) for a trace id that is not one already: the same
/// name always gives the same id, so importing a file twice stores it once.
pub(crate) fn derived_id(seed: &[u8], bytes: usize) -> String {
    let d = Sha256::digest(seed);
    hex::encode(&d[..bytes])
}

fn number(o: &Map<String, Value>, keys: &[&str]) -> Result<Option<f64>, String> {
    for k in keys {
        match o.get(*k) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => {
                return n
                    .as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(Some)
                    .ok_or_else(|| format!("{k} is {n}, not a non-negative number"));
            }
            Some(Value::String(s)) => {
                return s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(Some)
                    .ok_or_else(|| {
                        format!("{k} is '{}', not a non-negative number", redact::preview(s))
                    });
            }
            Some(other) => return Err(format!("{k} is {}, not a number", describe(other))),
        }
    }
    Ok(None)
}

/// A time in Unix ns, when it has one (years past 2262 do not).
fn ns_of(key: &str, t: jiff::Timestamp) -> Result<i64, String> {
    i64::try_from(t.as_nanosecond())
        .map_err(|_| format!("{key} is {t}, too far from now to be a trace's time"))
}

/// A time as trace files write it: RFC 3339 (a zone-less date and time is
/// UTC), or a Unix time in seconds, milliseconds, microseconds or
/// nanoseconds (told apart by size).
pub(crate) fn time_ns(key: &str, v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let Ok(ts) = t.parse::<jiff::Timestamp>() {
                return ns_of(key, ts);
            }
            if let Ok(dt) = t.parse::<jiff::civil::DateTime>()
                && let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC)
            {
                return ns_of(key, z.timestamp());
            }
            if let Ok(n) = t.parse::<f64>() {
                return epoch(key, n);
            }
            Err(format!(
                "{key} '{}' is not a time (write RFC 3339, such as 2026-11-21T09:00:00Z)",
                redact::preview(s)
            ))
        }
        Value::Number(n) => epoch(key, n.as_f64().unwrap_or(-1.0)),
        other => Err(format!("{key} is {}, not a time", describe(other))),
    }
}

fn epoch(key: &str, n: f64) -> Result<i64, String> {
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("{key} {n} is not a time"));
    }
    let ns = if n < 1e11 {
        n * 1e9
    } else if n < 1e14 {
        n * 1e6
    } else if n < 1e17 {
        n * 1e3
    } else {
        n
    };
    Ok(ns as i64)
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A tool call of a trace dict: `name` or `function` (a name, or an
/// OpenAI-style `{name, arguments}`), and `arguments` or `args`.
fn legacy_tool(v: &Value, capture: bool) -> Result<ToolCall, String> {
    let o = v.as_object().ok_or("a tool call is not an object")?;
    let mut name = o.get("name").and_then(Value::as_str).map(String::from);
    let mut args = o
        .get("arguments")
        .or_else(|| o.get("args"))
        .and_then(text_of);
    if let Some(f) = o.get("function") {
        match f {
            Value::String(s) => name = name.or(Some(s.clone())),
            Value::Object(fo) => {
                name = name.or(fo.get("name").and_then(Value::as_str).map(String::from));
                args = args.or(fo.get("arguments").and_then(text_of));
            }
            _ => {}
        }
    }
    let name = name
        .filter(|n| !n.trim().is_empty())
        .ok_or("a tool call has no name (`name` or `function`)")?;
    Ok(ToolCall {
        name: crate::span::clean_name(name),
        arguments: if capture {
            args.map(|a| redact::text(&a).into_owned())
        } else {
            None
        },
        executed: true,
    })
}

/// The existing tool's trace dict as one span (its trace's root).
fn legacy_span(o: &Map<String, Value>, opts: &ReadOptions) -> Result<(Span, bool), String> {
    let raw_id = o.get("trace_id").or_else(|| o.get("id")).and_then(text_of);
    let trace_id = match &raw_id {
        Some(id) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            id.to_ascii_lowercase()
        }
        Some(id) => derived_id(id.as_bytes(), 16),
        None => derived_id(serde_json::to_string(o).unwrap_or_default().as_bytes(), 16),
    };
    let span_id = derived_id(trace_id.as_bytes(), 8);
    let time = ["timestamp", "created_at", "start_time"]
        .iter()
        .find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)));
    let (start, untimed) = match time {
        Some((k, v)) => (time_ns(k, v)?, false),
        None => (opts.now_ns, true),
    };
    let latency_ms = number(o, &["latency_ms", "duration_ms"])?;
    let end = match (latency_ms, o.get("end_time").filter(|v| !v.is_null())) {
        (Some(ms), _) => start.saturating_add((ms * 1e6) as i64),
        (None, Some(v)) => time_ns("end_time", v)?,
        (None, None) => start,
    };
    check_times(start, end, opts)?;
    let mut fields = Fields::default();
    let mut bundle = BundleTag::default();
    let meta = o.get("metadata").and_then(Value::as_object);
    for (field, key) in [("bundle_id", 0), ("bundle_version", 1), ("environment", 2)] {
        let v = o
            .get(field)
            .or_else(|| meta.and_then(|m| m.get(field)))
            .or_else(|| meta.and_then(|m| m.get(&format!("releaseops.{field}"))))
            .or_else(|| o.get(&format!("releaseops.{field}")));
        if let Some(v) = v.filter(|v| !v.is_null()) {
            fields.read(&format!("releaseops.{field}"), v.clone(), false)?;
            let _ = key;
        }
    }
    bundle.inherit(&fields.bundle);
    let int = |keys: &[&str]| -> Result<Option<i64>, String> {
        match number(o, keys)? {
            Some(f) if f > crate::span::MAX_COUNT as f64 => Err(format!(
                "{} is {f}, more than any real trace counts",
                keys[0]
            )),
            other => Ok(other.map(|f| f.round() as i64)),
        }
    };
    let input_tokens = int(&["input_tokens", "prompt_tokens"])?;
    let output_tokens = int(&["output_tokens", "completion_tokens"])?;
    let total = int(&["total_tokens"])?;
    let (input_tokens, output_tokens) = match (input_tokens, output_tokens, total) {
        (None, None, Some(t)) => (Some(t), None),
        (i, o, _) => (i, o),
    };
    let cost = number(o, &["cost", "cost_usd", "total_cost"])?;
    if cost.is_some_and(|c| c > crate::span::MAX_COST) {
        return Err(format!("cost is more than {}", crate::span::MAX_COST));
    }
    let mut tool_calls = Vec::new();
    match o.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            for c in calls {
                tool_calls.push(legacy_tool(c, opts.capture_content)?);
            }
        }
        Some(other) => return Err(format!("tool_calls is {}, not a list", describe(other))),
    }
    let status_text = o
        .get("status")
        .and_then(Value::as_str)
        .map(|s| s.to_ascii_lowercase());
    let error = o.get("error").filter(|e| match e {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        _ => true,
    });
    let failed =
        error.is_some() || matches!(status_text.as_deref(), Some("error" | "failed" | "failure"));
    let status = if failed {
        Status::Error
    } else if status_text.is_some() {
        Status::Ok
    } else {
        Status::Unset
    };
    let error_type = error.map(|e| match e {
        Value::String(s) => s.clone(),
        Value::Object(eo) => eo
            .get("type")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| "error".into()),
        _ => "error".into(),
    });
    let mut attributes = Map::new();
    if let Some(m) = meta {
        for (k, v) in m {
            if !k.starts_with("releaseops.")
                && !matches!(k.as_str(), "bundle_id" | "bundle_version" | "environment")
            {
                attributes.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(a) = o.get("action").and_then(text_of) {
        attributes.insert("action".into(), Value::String(a));
    }
    if let Some(id) = raw_id.filter(|id| *id != trace_id) {
        attributes.insert("releaseops.source_trace_id".into(), Value::String(id));
    }
    for (k, v) in attributes.iter_mut() {
        redact::value(k, v);
    }
    let capture = |keys: &[&str]| -> Option<String> {
        if !opts.capture_content {
            return None;
        }
        keys.iter()
            .find_map(|k| o.get(*k).and_then(text_of))
            .map(|s| clean(redact::text(&s).into_owned(), MAX_TEXT))
    };
    let name = o.get("name").and_then(Value::as_str).unwrap_or("trace");
    let mut span = Span::new(
        trace_id,
        span_id,
        crate::span::clean_name(name.to_string()),
        (start, end),
        Source::Import,
    );
    span.status = status;
    span.error_type = error_type.map(crate::span::clean_name);
    span.bundle = bundle;
    span.model = o
        .get("model")
        .and_then(Value::as_str)
        .map(|m| crate::span::clean_name(m.to_string()));
    span.input_tokens = input_tokens;
    span.output_tokens = output_tokens;
    span.cost = cost;
    span.tool_calls = tool_calls;
    span.input = capture(&["input", "prompt", "query"]);
    span.output = capture(&["output", "response"]);
    span.attributes = attributes;
    Ok((span, untimed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Filter;
    use std::io::Write;

    fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        p
    }

    #[test]
    fn legacy_lines_import_and_a_bad_line_imports_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TraceStore::open_memory().unwrap();
        let opts = ReadOptions::new(false);
        let good = write(
            dir.path(),
            "good.jsonl",
            concat!(
                r#"{"trace_id": "t-1", "latency_ms": 120, "input_tokens": 10, "output_tokens": 4, "tool_calls": [{"name": "lookup_order", "arguments": {"id": 7}}], "timestamp": "2026-11-20T10:00:00Z", "metadata": {"releaseops.bundle_id": "support-agent", "releaseops.bundle_version": "1.0.0", "releaseops.environment": "prod"}}"#,
                "\n\n",
                r#"{"id": "t-2", "duration_ms": 80.5, "total_tokens": 30, "tool_calls": [{"function": {"name": "issue_refund", "arguments": "{\"amount\": 150}"}}], "status": "failed", "created_at": 1763632800, "bundle_id": "support-agent", "bundle_version": "1.0.0", "environment": "prod"}"#,
                "\n"
            ),
        );
        let r = import_file(&mut store, &good, &opts).unwrap();
        assert_eq!((r.records, r.stored.spans), (2, 2));
        // Importing again stores nothing new.
        let again = import_file(&mut store, &good, &opts).unwrap();
        assert_eq!((again.stored.spans, again.stored.duplicates), (0, 2));
        let f = Filter {
            bundle_id: Some("support-agent".into()),
            ..Filter::default()
        };
        let s = store.sample(&f).unwrap();
        assert_eq!((s.traces, s.errors), (2, 1));
        assert_eq!(s.latency_ns, vec![80_500_000, 120_000_000]);
        assert_eq!(s.tools.get("issue_refund"), Some(&1));
        let bad = write(
            dir.path(),
            "bad.jsonl",
            "{\"trace_id\": \"t-9\", \"timestamp\": \"2026-11-20T10:00:00Z\"}\n[1, 2]\n",
        );
        let e = import_file(&mut store, &bad, &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("a list") && e.contains("nothing from this file"),
            "{e}"
        );
        assert_eq!(store.stats(&Filter::default()).unwrap().traces, 2);
        for (body, want) in [
            (
                "{\"latency_ms\": \"slow\", \"timestamp\": \"2026-11-20T10:00:00Z\"}\n",
                "latency_ms",
            ),
            ("{\"timestamp\": \"yesterday\"}\n", "not a time"),
            (
                "{\"timestamp\": \"1970-01-02T00:00:00Z\"}\n",
                "not plausible",
            ),
            (
                "{\"tool_calls\": [{\"arguments\": {}}], \"timestamp\": \"2026-11-20T10:00:00Z\"}\n",
                "no name",
            ),
            ("not json\n", "not JSON"),
            (
                "{\"bundle_id\": \"../etc\", \"timestamp\": \"2026-11-20T10:00:00Z\"}\n",
                "not a bundle",
            ),
        ] {
            let p = write(dir.path(), "x.jsonl", body);
            let e = import_file(&mut store, &p, &opts).unwrap_err().to_string();
            assert!(e.contains("line 1") && e.contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn names_keep_no_credential_and_no_control_character() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TraceStore::open_memory().unwrap();
        let line = serde_json::json!({
            "trace_id": "t-n", "timestamp": "2026-11-20T10:00:00Z",
            "name": "POST https://hooks.slack.com/services/T0AAA/B0BBB/abcdefXYZ123",
            "model": "https://user:hunter22@llm.internal/v1",
            "tool_calls": [{"name": "lookup\u{1b}]0;owned\u{7}_order", "arguments": {}}],
        });
        let p = write(dir.path(), "n.jsonl", &format!("{line}\n"));
        import_file(&mut store, &p, &ReadOptions::new(false)).unwrap();
        let id = store.traces(&Filter::default(), 1).unwrap()[0]
            .trace_id
            .clone();
        let (_, spans) = store.trace(&id).unwrap().expect("stored");
        let shown = format!(
            "{:?} {:?} {:?}",
            spans[0].name, spans[0].model, spans[0].tool_calls
        );
        for secret in ["abcdefXYZ123", "hunter22", "\u{1b}", "\u{7}"] {
            assert!(!shown.contains(secret), "{secret:?} in {shown}");
        }
        assert!(shown.contains("lookup]0;owned_order"), "{shown}");
    }

    #[test]
    fn a_pretty_document_and_otlp_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TraceStore::open_memory().unwrap();
        let opts = ReadOptions::new(false);
        let doc = write(
            dir.path(),
            "one.json",
            "{\n  \"trace_id\": \"abc\",\n  \"action\": \"refund\",\n  \"timestamp\": \"2026-11-20T10:00:00Z\"\n}\n",
        );
        assert_eq!(
            import_file(&mut store, &doc, &opts).unwrap().stored.spans,
            1
        );
        let t = opts.now_ns;
        let line = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "a",
             "startTimeUnixNano": (t - 10).to_string(), "endTimeUnixNano": t.to_string()}]}]}]});
        let otlp = write(dir.path(), "otlp.jsonl", &format!("{line}\n{line}\n"));
        let r = import_file(&mut store, &otlp, &opts).unwrap();
        assert_eq!((r.records, r.stored.spans, r.stored.duplicates), (2, 1, 1));
    }
}
