//! OTLP/HTTP trace exports, protobuf and JSON, as any OpenTelemetry SDK or
//! Collector sends them, read into [`Span`]s. A body that is not an export
//! at all is an error; a span in it that cannot be stored (a bad id, an
//! absurd time, a token count that is not a number) is rejected alone and
//! counted in the answer's partial success, as the specification asks.

use std::collections::HashMap;
use std::io::Read;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde_json::{Map, Value};

use crate::redact;
use crate::span::{
    BundleTag, Fields, ReadOptions, Rejected, Source, Span, Status, check_id, check_times,
};

/// The body's encoding, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// `application/x-protobuf` or `application/json` (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/x-protobuf")
            || mime.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Format::Protobuf)
        } else if mime.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the body is not an OTLP trace export: {0}")]
    Malformed(String),
    #[error("the body is over {limit} bytes once decompressed: send smaller batches")]
    TooLarge { limit: usize },
    #[error("the body is not valid gzip: {0}")]
    BadGzip(String),
    #[error(
        "the export holds more than {limit} spans, attributes and values: send smaller batches"
    )]
    TooMany { limit: usize },
}

/// The most spans, events, links, attributes and attribute values one export
/// may hold: a few bytes each on the wire, a few hundred in memory once
/// decoded, so 8 MiB of empty ones would take gigabytes.
pub const MAX_ELEMENTS: usize = 400_000;

/// The message types of an export whose fields hold more messages.
#[derive(Clone, Copy)]
enum Msg {
    Request,
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    KeyValue,
    AnyValue,
    List,
    KvList,
}

impl Msg {
    /// The message a length-delimited field holds (None: bytes or text).
    fn field(self, n: u64) -> Option<Msg> {
        use Msg::*;
        Some(match (self, n) {
            (Request, 1) => ResourceSpans,
            (ResourceSpans, 1) => Resource,
            (ResourceSpans, 2) => ScopeSpans,
            (Resource, 1) | (Scope, 3) | (Span, 9) | (Event, 3) | (Link, 5) | (KvList, 1) => {
                KeyValue
            }
            (ScopeSpans, 1) => Scope,
            (ScopeSpans, 2) => Span,
            (Span, 11) => Event,
            (Span, 13) => Link,
            (KeyValue, 2) | (List, 1) => AnyValue,
            (AnyValue, 5) => List,
            (AnyValue, 6) => KvList,
            _ => return None,
        })
    }
}

/// Counts the messages of a protobuf export without decoding it (each
/// nested message counts one), stopping past `limit`; malformed wire data
/// is left to the decoder to name.
fn count_messages(mut b: &[u8], msg: Msg, depth: u32, count: &mut usize, limit: usize) {
    fn varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    while !b.is_empty() && *count <= limit && depth < 100 {
        let Some(key) = varint(&mut b) else { return };
        match key & 7 {
            0 => {
                if varint(&mut b).is_none() {
                    return;
                }
            }
            1 => b = b.get(8..).unwrap_or_default(),
            5 => b = b.get(4..).unwrap_or_default(),
            2 => {
                let Some(len) = varint(&mut b).and_then(|l| usize::try_from(l).ok()) else {
                    return;
                };
                let Some(inner) = b.get(..len) else { return };
                b = &b[len..];
                if let Some(m) = msg.field(key >> 3) {
                    *count += 1;
                    count_messages(inner, m, depth + 1, count, limit);
                }
            }
            _ => return,
        }
    }
}

/// Counts the objects and lists of a JSON text (outside its strings),
/// stopping past `limit`.
fn count_json_containers(b: &[u8], limit: usize) -> usize {
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for &c in b {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    count += 1;
                    if count > limit {
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    count
}

/// The spans of one export, and those refused.
#[derive(Debug, Default)]
pub struct Decoded {
    pub spans: Vec<Span>,
    pub rejected: Vec<Rejected>,
}

impl Decoded {
    /// One line for the partial-success answer: how many, and the first few reasons.
    pub fn rejection_message(&self) -> String {
        let mut msg = self
            .rejected
            .iter()
            .take(3)
            .map(|r| match &r.span {
                Some(id) => format!("span {id}: {}", r.reason),
                None => r.reason.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        if self.rejected.len() > 3 {
            msg.push_str(&format!("; and {} more", self.rejected.len() - 3));
        }
        msg
    }
}

/// Decompresses a gzip body, refusing to produce more than `limit` bytes
/// (a small body that inflates without end is a gzip bomb).
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let mut reader = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::BadGzip(e.to_string()))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

/// Reads an export.
pub fn decode(body: &[u8], format: Format, opts: &ReadOptions) -> Result<Decoded, DecodeError> {
    decode_within(body, format, opts, MAX_ELEMENTS)
}

/// [`decode`], refusing an export of more than `limit` elements before
/// decoding it.
pub fn decode_within(
    body: &[u8],
    format: Format,
    opts: &ReadOptions,
    limit: usize,
) -> Result<Decoded, DecodeError> {
    let elements = match format {
        Format::Protobuf => {
            let mut n = 0;
            count_messages(body, Msg::Request, 0, &mut n, limit);
            n
        }
        Format::Json => count_json_containers(body, limit),
    };
    if elements > limit {
        return Err(DecodeError::TooMany { limit });
    }
    match format {
        Format::Protobuf => {
            let req = ExportTraceServiceRequest::decode(body)
                .map_err(|e| DecodeError::Malformed(format!("protobuf: {e}")))?;
            Ok(from_proto(req, opts))
        }
        Format::Json => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| DecodeError::Malformed(format!("JSON: {e}")))?;
            from_json(&v, opts)
        }
    }
}

/// A resource's attributes and its spans.
type Group = (Vec<(String, Value)>, Vec<RawSpan>);

/// A span before its fields are read: what both encodings give.
struct RawSpan {
    trace_id: Result<String, String>,
    span_id: Result<String, String>,
    parent: Option<String>,
    name: String,
    start: i64,
    end: i64,
    status: Status,
    message: Option<String>,
    attributes: Vec<(String, Value)>,
    /// An `exception` event's type, when the span recorded one.
    exception: Option<String>,
}

fn to_ns(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn any_to_json(v: Option<&AnyValue>) -> Value {
    use any_value::Value as V;
    match v.and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(V::StringValue(s)) => Value::String(s.clone()),
        Some(V::BoolValue(b)) => Value::Bool(*b),
        Some(V::IntValue(i)) => Value::from(*i),
        Some(V::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number)
        }
        Some(V::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(|x| any_to_json(Some(x))).collect())
        }
        Some(V::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|e| (e.key.clone(), any_to_json(e.value.as_ref())))
                .collect(),
        ),
        Some(V::BytesValue(b)) => Value::String(hex::encode(b)),
        Some(V::StringValueStrindex(_)) => Value::Null,
    }
}

fn kv_pairs(kvs: &[KeyValue]) -> Vec<(String, Value)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), any_to_json(kv.value.as_ref())))
        .collect()
}

fn id_of(what: &str, bytes: &[u8], len: usize) -> Result<String, String> {
    if bytes.len() != len {
        return Err(format!("its {what} is {} bytes, not {len}", bytes.len()));
    }
    check_id(what, &hex::encode(bytes), len)
}

fn from_proto(req: ExportTraceServiceRequest, opts: &ReadOptions) -> Decoded {
    let mut groups = Vec::new();
    for rs in req.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| kv_pairs(&r.attributes))
            .unwrap_or_default();
        let mut raws = Vec::new();
        for ss in rs.scope_spans {
            for s in ss.spans {
                let (status, message) = match &s.status {
                    Some(st) => (
                        Status::from_code(i64::from(st.code)),
                        Some(st.message.clone()).filter(|m| !m.is_empty()),
                    ),
                    None => (Status::Unset, None),
                };
                let exception = s
                    .events
                    .iter()
                    .find(|e| e.name == "exception")
                    .and_then(|e| e.attributes.iter().find(|kv| kv.key == "exception.type"))
                    .and_then(|kv| match any_to_json(kv.value.as_ref()) {
                        Value::String(t) => Some(t),
                        _ => None,
                    });
                raws.push(RawSpan {
                    trace_id: id_of("trace id", &s.trace_id, 16),
                    span_id: id_of("span id", &s.span_id, 8),
                    parent: (!s.parent_span_id.is_empty()
                        && s.parent_span_id.iter().any(|b| *b != 0))
                    .then(|| hex::encode(&s.parent_span_id)),
                    name: s.name,
                    start: to_ns(s.start_time_unix_nano),
                    end: to_ns(s.end_time_unix_nano),
                    status,
                    message,
                    attributes: kv_pairs(&s.attributes),
                    exception,
                });
            }
        }
        groups.push((resource, raws));
    }
    finish(groups, opts, Source::Otlp)
}

// --- JSON --------------------------------------------------------------------

/// A field by its lowerCamelCase name, or the proto name senders sometimes use.
fn field<'a>(o: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    o.get(camel).or_else(|| o.get(snake))
}

fn list<'a>(o: &'a Map<String, Value>, camel: &str, snake: &str) -> Result<&'a [Value], String> {
    match field(o, camel, snake) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{camel} is not a list")),
    }
}

fn json_any(v: &Value) -> Value {
    let Some(o) = v.as_object() else {
        return Value::Null;
    };
    if let Some(s) = field(o, "stringValue", "string_value") {
        return s.clone();
    }
    if let Some(b) = field(o, "boolValue", "bool_value") {
        return b.clone();
    }
    if let Some(i) = field(o, "intValue", "int_value") {
        // int64 is a string in OTLP JSON; a number is accepted too.
        return match i {
            Value::String(s) => s.parse::<i64>().map(Value::from).unwrap_or(i.clone()),
            other => other.clone(),
        };
    }
    if let Some(d) = field(o, "doubleValue", "double_value") {
        return match d {
            Value::String(s) => s
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(d.clone(), Value::Number),
            other => other.clone(),
        };
    }
    if let Some(a) = field(o, "arrayValue", "array_value") {
        let values = a
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().map(json_any).collect())
            .unwrap_or_default();
        return Value::Array(values);
    }
    if let Some(kv) = field(o, "kvlistValue", "kvlist_value") {
        let values = kv
            .get("values")
            .and_then(Value::as_array)
            .map(|v| json_pairs(v).into_iter().collect())
            .unwrap_or_default();
        return Value::Object(values);
    }
    if let Some(b) = field(o, "bytesValue", "bytes_value") {
        return b.clone();
    }
    Value::Null
}

fn json_pairs(kvs: &[Value]) -> Vec<(String, Value)> {
    kvs.iter()
        .filter_map(|kv| {
            let o = kv.as_object()?;
            let key = o.get("key")?.as_str()?.to_string();
            Some((key, o.get("value").map(json_any).unwrap_or(Value::Null)))
        })
        .collect()
}

fn json_time(o: &Map<String, Value>, camel: &str, snake: &str) -> Result<i64, String> {
    match field(o, camel, snake) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => s.trim().parse::<u64>().map(to_ns).map_err(|_| {
            format!(
                "its {camel} '{}' is not a number of nanoseconds",
                redact::preview(s)
            )
        }),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(to_ns)
            .ok_or_else(|| format!("its {camel} {n} is not a number of nanoseconds")),
        Some(_) => Err(format!("its {camel} is not a number of nanoseconds")),
    }
}

fn json_id(
    o: &Map<String, Value>,
    camel: &str,
    snake: &str,
    what: &str,
    len: usize,
) -> Result<String, String> {
    match field(o, camel, snake) {
        Some(Value::String(s)) => check_id(what, s, len),
        _ => Err(format!("it has no {what}")),
    }
}

fn json_span(s: &Value) -> Result<RawSpan, String> {
    let o = s.as_object().ok_or("a span is not an object")?;
    let (start, end) = match (
        json_time(o, "startTimeUnixNano", "start_time_unix_nano"),
        json_time(o, "endTimeUnixNano", "end_time_unix_nano"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return Ok(RawSpan {
                trace_id: Err(e),
                span_id: json_id(o, "spanId", "span_id", "span id", 8),
                parent: None,
                name: String::new(),
                start: 0,
                end: 0,
                status: Status::Unset,
                message: None,
                attributes: Vec::new(),
                exception: None,
            });
        }
    };
    let (status, message) = match o.get("status").and_then(Value::as_object) {
        Some(st) => {
            let code = match st.get("code") {
                Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
                Some(Value::String(s)) => match s.as_str() {
                    "STATUS_CODE_OK" => 1,
                    "STATUS_CODE_ERROR" => 2,
                    other => other.parse().unwrap_or(0),
                },
                _ => 0,
            };
            (
                Status::from_code(code),
                st.get("message")
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty())
                    .map(String::from),
            )
        }
        None => (Status::Unset, None),
    };
    let attributes = json_pairs(list(o, "attributes", "attributes")?);
    let exception = list(o, "events", "events")?
        .iter()
        .filter_map(Value::as_object)
        .find(|e| e.get("name").and_then(Value::as_str) == Some("exception"))
        .and_then(|e| {
            let attrs = json_pairs(
                e.get("attributes")
                    .and_then(Value::as_array)
                    .map_or(&[][..], |v| v),
            );
            attrs
                .into_iter()
                .find(|(k, _)| k == "exception.type")
                .and_then(|(_, v)| v.as_str().map(String::from))
        });
    let parent = match field(o, "parentSpanId", "parent_span_id") {
        Some(Value::String(p)) if !p.is_empty() && p.bytes().any(|b| b != b'0') => {
            Some(check_id("parent span id", p, 8)?)
        }
        _ => None,
    };
    Ok(RawSpan {
        trace_id: json_id(o, "traceId", "trace_id", "trace id", 16),
        span_id: json_id(o, "spanId", "span_id", "span id", 8),
        parent,
        name: o
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        start,
        end,
        status,
        message,
        attributes,
        exception,
    })
}

/// Reads one OTLP JSON export (the body of a request, or one line of the
/// Collector's file exporter).
pub fn from_json(v: &Value, opts: &ReadOptions) -> Result<Decoded, DecodeError> {
    from_json_as(v, opts, Source::Otlp)
}

pub(crate) fn from_json_as(
    v: &Value,
    opts: &ReadOptions,
    source: Source,
) -> Result<Decoded, DecodeError> {
    let bad = DecodeError::Malformed;
    let o = v
        .as_object()
        .ok_or_else(|| bad("the body is not a JSON object".into()))?;
    let mut groups = Vec::new();
    let mut rejected = Vec::new();
    for rs in list(o, "resourceSpans", "resource_spans").map_err(bad)? {
        let rs = rs
            .as_object()
            .ok_or_else(|| bad("a resourceSpans entry is not an object".into()))?;
        let resource = rs
            .get("resource")
            .and_then(Value::as_object)
            .and_then(|r| r.get("attributes"))
            .and_then(Value::as_array)
            .map(|a| json_pairs(a))
            .unwrap_or_default();
        let mut raws = Vec::new();
        let mut scopes = list(rs, "scopeSpans", "scope_spans").map_err(bad)?.to_vec();
        // Exports from before the rename.
        scopes.extend(
            list(
                rs,
                "instrumentationLibrarySpans",
                "instrumentation_library_spans",
            )
            .map_err(bad)?
            .iter()
            .cloned(),
        );
        for ss in &scopes {
            let ss = ss
                .as_object()
                .ok_or_else(|| bad("a scopeSpans entry is not an object".into()))?;
            for s in list(ss, "spans", "spans").map_err(bad)? {
                match json_span(s) {
                    Ok(r) => raws.push(r),
                    Err(reason) => rejected.push(Rejected { span: None, reason }),
                }
            }
        }
        groups.push((resource, raws));
    }
    let mut d = finish(groups, opts, source);
    rejected.append(&mut d.rejected);
    d.rejected = rejected;
    Ok(d)
}

/// Reads every span's attributes (resource attributes first, the span's
/// own winning) and gives spans without a bundle tag the one their trace
/// has in this export.
fn finish(groups: Vec<Group>, opts: &ReadOptions, source: Source) -> Decoded {
    let mut out = Decoded::default();
    for (resource, raws) in groups {
        for raw in raws {
            match read_span(&resource, raw, opts, source) {
                Ok(s) => out.spans.push(s),
                Err(r) => out.rejected.push(r),
            }
        }
    }
    inherit_within(&mut out.spans);
    out
}

/// Spans of one trace that carry no bundle tag take the trace's (the
/// root's first, else any span's).
pub(crate) fn inherit_within(spans: &mut [Span]) {
    let complete = |t: &BundleTag| {
        t.bundle_id.is_some() && t.bundle_version.is_some() && t.environment.is_some()
    };
    if spans.iter().all(|s| complete(&s.bundle)) {
        return;
    }
    let mut by_trace: HashMap<&str, (bool, BundleTag)> = HashMap::new();
    for s in spans.iter() {
        if s.bundle.is_empty() {
            continue;
        }
        let is_root = s.parent_span_id.is_none();
        let e = by_trace
            .entry(s.trace_id.as_str())
            .or_insert_with(|| (is_root, s.bundle.clone()));
        if is_root && !e.0 {
            *e = (true, s.bundle.clone());
        }
    }
    if by_trace.is_empty() {
        return;
    }
    let tags: HashMap<String, BundleTag> = by_trace
        .into_iter()
        .map(|(k, (_, t))| (k.to_string(), t))
        .collect();
    for s in spans.iter_mut() {
        if let Some(t) = tags.get(&s.trace_id) {
            s.bundle.inherit(t);
        }
    }
}

fn read_span(
    resource: &[(String, Value)],
    raw: RawSpan,
    opts: &ReadOptions,
    source: Source,
) -> Result<Span, Rejected> {
    let span_id = raw
        .span_id
        .map_err(|reason| Rejected { span: None, reason })?;
    let reject = |reason: String| Rejected {
        span: Some(span_id.clone()),
        reason,
    };
    let trace_id = raw.trace_id.map_err(reject)?;
    check_times(raw.start, raw.end, opts).map_err(reject)?;
    let mut fields = Fields::default();
    for (k, v) in resource {
        // Only what says which bundle this is comes from the resource;
        // the rest describes the process, not the span.
        if k.starts_with("releaseops.") {
            fields
                .read(k, v.clone(), opts.capture_content)
                .map_err(reject)?;
        }
    }
    if let Some(service) = resource.iter().find(|(k, _)| k == "service.name") {
        fields
            .attributes
            .insert(service.0.clone(), service.1.clone());
    }
    for (k, v) in raw.attributes {
        fields.read(&k, v, opts.capture_content).map_err(reject)?;
    }
    let mut span = Span::new(
        trace_id,
        span_id.clone(),
        raw.name,
        (raw.start, raw.end),
        source,
    );
    span.parent_span_id = raw.parent;
    span.status = raw.status;
    span.status_message = raw.message.map(|m| redact::text(&m).into_owned());
    // An exception recorded on a span that still succeeded is not its error.
    span.error_type = raw.exception.filter(|_| raw.status == Status::Error);
    Ok(fields.into_span(span))
}

// --- answers -----------------------------------------------------------------

/// The success answer: empty, or a partial success naming what was refused.
pub fn response(format: Format, rejected: usize, message: &str) -> Vec<u8> {
    let partial = (rejected > 0 || !message.is_empty()).then(|| ExportTracePartialSuccess {
        rejected_spans: rejected as i64,
        error_message: message.to_string(),
    });
    match format {
        Format::Protobuf => ExportTraceServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Format::Json => {
            let v = match partial {
                Some(p) => {
                    serde_json::json!({"partialSuccess": {"rejectedSpans": p.rejected_spans.to_string(), "errorMessage": p.error_message}})
                }
                None => serde_json::json!({}),
            };
            serde_json::to_vec(&v).unwrap_or_default()
        }
    }
}

/// `google.rpc.Status`, the body of every OTLP error answer.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An error answer's body. `code` is the gRPC code (3 invalid argument,
/// 7 permission denied, 8 resource exhausted, 16 unauthenticated ...).
pub fn status_body(format: Format, code: i32, message: &str) -> Vec<u8> {
    match format {
        Format::Protobuf => RpcStatus {
            code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Format::Json => serde_json::to_vec(&serde_json::json!({"code": code, "message": message}))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans, ScopeSpans, Span as PSpan, Status as PStatus,
    };

    #[test]
    fn an_export_of_too_many_elements_is_refused_before_it_is_decoded() {
        let opts = ReadOptions::new(false);
        // 300 empty spans: a few bytes each on the wire.
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![PSpan::default(); 300],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = prost::Message::encode_to_vec(&req);
        assert!(matches!(
            decode_within(&body, Format::Protobuf, &opts, 200),
            Err(DecodeError::TooMany { limit: 200 })
        ));
        assert!(decode_within(&body, Format::Protobuf, &opts, 400).is_ok());
        // Attributes count too, nested values included.
        let one = PSpan {
            attributes: (0..150)
                .map(|i| kv(&format!("k{i}"), any_value::Value::StringValue("v".into())))
                .collect(),
            ..Default::default()
        };
        let body = prost::Message::encode_to_vec(&ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![one],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        assert!(decode_within(&body, Format::Protobuf, &opts, 200).is_err());
        // JSON: objects and lists outside strings.
        let json = format!(
            r#"{{"resourceSpans": [{{"scopeSpans": [{{"spans": [{}]}}]}}], "note": "{}"}}"#,
            vec!["{}"; 300].join(","),
            "{[".repeat(500)
        );
        assert!(matches!(
            decode_within(json.as_bytes(), Format::Json, &opts, 200),
            Err(DecodeError::TooMany { .. })
        ));
        assert!(!matches!(
            decode_within(json.as_bytes(), Format::Json, &opts, 400),
            Err(DecodeError::TooMany { .. })
        ));
    }

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn now() -> u64 {
        jiff::Timestamp::now().as_nanosecond() as u64
    }

    #[test]
    fn protobuf_export_reads_conventions_and_inherits_the_bundle() {
        use any_value::Value::*;
        let t = now();
        let root = PSpan {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "agent".into(),
            start_time_unix_nano: t - 2_000_000,
            end_time_unix_nano: t,
            attributes: vec![
                kv("releaseops.bundle_id", StringValue("support-agent".into())),
                kv("releaseops.bundle_version", StringValue("1.1.0".into())),
                kv("releaseops.environment", StringValue("prod".into())),
            ],
            ..Default::default()
        };
        let llm = PSpan {
            trace_id: vec![1; 16],
            span_id: vec![3; 8],
            parent_span_id: vec![2; 8],
            name: "chat gpt-4o".into(),
            start_time_unix_nano: t - 1_000_000,
            end_time_unix_nano: t - 10,
            attributes: vec![
                kv("gen_ai.operation.name", StringValue("chat".into())),
                kv("gen_ai.request.model", StringValue("gpt-4o".into())),
                kv("gen_ai.usage.input_tokens", IntValue(120)),
                kv("gen_ai.usage.output_tokens", IntValue(30)),
                kv(
                    "message.tool_calls.0.tool_call.function.name",
                    StringValue("issue_refund".into()),
                ),
                kv(
                    "message.tool_calls.0.tool_call.function.arguments",
                    StringValue("{\"amount\": 150}".into()),
                ),
                kv(
                    "input.value",
                    StringValue("refund me, my key is sk-proj-AAAAAAAAAAAAAAAAAAAAAA".into()),
                ),
                kv(
                    "http.request.header.authorization",
                    StringValue("Bearer zzzzzzzzzzzz".into()),
                ),
            ],
            status: Some(PStatus {
                code: 2,
                message: "boom".into(),
            }),
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", StringValue("support".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![llm, root],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = req.encode_to_vec();
        let opts = ReadOptions::new(true);
        let d = decode(&bytes, Format::Protobuf, &opts).unwrap();
        assert!(d.rejected.is_empty(), "{:?}", d.rejected);
        let llm = d
            .spans
            .iter()
            .find(|s| s.span_id == "0303030303030303")
            .unwrap();
        assert_eq!(llm.bundle.bundle_id.as_deref(), Some("support-agent"));
        assert_eq!(llm.bundle.environment.as_deref(), Some("prod"));
        assert_eq!(llm.model.as_deref(), Some("gpt-4o"));
        assert_eq!((llm.input_tokens, llm.output_tokens), (Some(120), Some(30)));
        assert_eq!(llm.status, Status::Error);
        assert_eq!(llm.tool_calls[0].name, "issue_refund");
        assert!(!llm.tool_calls[0].executed);
        assert_eq!(
            llm.input.as_deref(),
            Some("refund me, my key is [redacted]")
        );
        assert_eq!(
            llm.attributes["http.request.header.authorization"],
            redact::REDACTED
        );
        assert_eq!(llm.attributes["service.name"], "support");
        // Without content capture, no content is kept.
        let d = decode(&bytes, Format::Protobuf, &ReadOptions::new(false)).unwrap();
        let llm = d
            .spans
            .iter()
            .find(|s| s.span_id == "0303030303030303")
            .unwrap();
        assert!(llm.input.is_none() && llm.tool_calls[0].arguments.is_none());
        assert!(decode(b"\xff\xff\xff", Format::Protobuf, &opts).is_err());
    }

    #[test]
    fn json_export_as_the_collector_writes_it() {
        let t = now();
        let body = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [
          {"key": "releaseops.bundle_id", "value": {"stringValue": "hr-agent"}}]},
        "scopeSpans": [{"scope": {"name": "x"}, "spans": [
          {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
           "name": "tool", "kind": 1, "startTimeUnixNano": (t - 5000).to_string(), "endTimeUnixNano": t.to_string(),
           "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                          {"key": "gen_ai.tool.name", "value": {"stringValue": "lookup_policy"}},
                          {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}}],
           "status": {"code": 1}},
          {"traceId": "00000000000000000000000000000000", "spanId": "EEE19B7EC3C1B175", "name": "bad",
           "startTimeUnixNano": t.to_string(), "endTimeUnixNano": t.to_string()},
          {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B176", "name": "old",
           "startTimeUnixNano": "12", "endTimeUnixNano": "13"},
          {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B177", "name": "typed",
           "startTimeUnixNano": t.to_string(), "endTimeUnixNano": t.to_string(),
           "attributes": [{"key": "gen_ai.usage.output_tokens", "value": {"boolValue": true}}]}
        ]}]}]});
        let d = from_json(&body, &ReadOptions::new(false)).unwrap();
        assert_eq!(d.spans.len(), 1);
        let s = &d.spans[0];
        assert_eq!(s.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(s.bundle.bundle_id.as_deref(), Some("hr-agent"));
        assert_eq!(s.tool_calls[0].name, "lookup_policy");
        assert!(s.tool_calls[0].executed);
        assert_eq!(s.input_tokens, Some(7));
        assert_eq!(d.rejected.len(), 3, "{:?}", d.rejected);
        let msg = d.rejection_message();
        assert!(
            msg.contains("all zeros")
                && msg.contains("not plausible")
                && msg.contains("output_tokens"),
            "{msg}"
        );
        assert!(from_json(&serde_json::json!([1]), &ReadOptions::new(false)).is_err());
        assert!(
            from_json(
                &serde_json::json!({"resourceSpans": 3}),
                &ReadOptions::new(false)
            )
            .is_err()
        );
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 10 * 1024 * 1024]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            gunzip(&bomb, 1024 * 1024),
            Err(DecodeError::TooLarge { limit: 1024 * 1024 })
        );
        assert_eq!(
            gunzip(&bomb, 20 * 1024 * 1024).unwrap().len(),
            10 * 1024 * 1024
        );
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(DecodeError::BadGzip(_))
        ));
    }
}
