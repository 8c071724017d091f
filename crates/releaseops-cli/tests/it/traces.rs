//! Production sight end to end: spans sent over OTLP/HTTP to a real
//! `releaseops serve` (by the OpenTelemetry SDK in a releaseops process, and
//! by hand in both encodings and with gzip), every OTLP answer a client can
//! get, back-pressure that loses nothing, trace files imported, and two
//! versions compared from the command line. The same on a shared
//! PostgreSQL with two servers writing to it (RELEASEOPS_TEST_POSTGRES).

use std::io::Write;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::Repo;
use crate::common::server::{Server, client};

const INGEST: &str = "ingest-token-0123456789abc";
const VIEWER: &str = "viewer-token-0123456789abc";

fn tokens() -> String {
    format!(
        "ingest:Support agent <agent@example.test>:{INGEST},viewer:Vic <vic@example.test>:{VIEWER}"
    )
}

fn repo() -> Repo {
    let r = Repo::initialized_production();
    r.create_support_agent("1.0.0", "v1.0.0", "0.2");
    r.create_support_agent("1.1.0", "v1.1.0", "0.2");
    r
}

fn now_ns() -> u64 {
    jiff::Timestamp::now().as_nanosecond() as u64
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn int(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

/// `n` traces of `version` in prod starting at trace number `first`: a
/// tagged root (an error when `failing(i)`) and an untagged LLM child
/// that asks for `tool`.
fn export(
    first: u32,
    n: u32,
    version: &str,
    failing: impl Fn(u32) -> bool,
    tool: &str,
) -> ExportTraceServiceRequest {
    let t = now_ns() - 60_000_000_000;
    let mut spans = Vec::new();
    for i in first..first + n {
        let trace_id = {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&i.to_be_bytes());
            b[15] = 1;
            b.to_vec()
        };
        let root = {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&i.to_be_bytes());
            b[7] = 1;
            b.to_vec()
        };
        let child = {
            let mut b = root.clone();
            b[7] = 2;
            b
        };
        let latency = if version == "1.1.0" { 300 } else { 200 } + u64::from(i % 50);
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: root.clone(),
            name: "support-agent".into(),
            start_time_unix_nano: t,
            end_time_unix_nano: t + latency * 1_000_000,
            attributes: vec![
                kv("releaseops.bundle_id", "support-agent"),
                kv("releaseops.bundle_version", version),
                kv("releaseops.environment", "prod"),
            ],
            status: failing(i).then(|| Status {
                code: 2,
                message: "tool failed".into(),
            }),
            ..Default::default()
        });
        spans.push(Span {
            trace_id,
            span_id: child,
            parent_span_id: root,
            name: "chat gpt-4o".into(),
            start_time_unix_nano: t + 1_000_000,
            end_time_unix_nano: t + 100_000_000,
            attributes: vec![
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.request.model", "gpt-4o"),
                int("gen_ai.usage.input_tokens", 300),
                int("gen_ai.usage.output_tokens", 40),
                kv("message.tool_calls.0.tool_call.function.name", tool),
            ],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn send(
    url: &str,
    token: Option<&str>,
    ct: &str,
    body: Vec<u8>,
    gzip: bool,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut rq = client().post(url).header("content-type", ct);
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    if gzip {
        rq = rq.header("content-encoding", "gzip");
    }
    let resp = rq.body(body).send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body").to_vec())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// google.rpc.Status, read by hand: field 1 (code), field 2 (message).
fn rpc_message(body: &[u8]) -> String {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    RpcStatus::decode(body)
        .map(|s| s.message)
        .unwrap_or_default()
}

fn stats(r: &Repo) -> Value {
    serde_json::from_str(r.run(&["traces", "stats", "--json"]).ok()).expect("stats JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_exports_are_stored_and_every_answer_follows_the_spec() {
    let r = repo();
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    let url = s.at("/v1/traces");
    let pb = "application/x-protobuf";

    // Protobuf, gzip: stored, and the answer is an ExportTraceServiceResponse.
    let body = export(1, 40, "1.0.0", |_| false, "lookup_order").encode_to_vec();
    let (st, h, b) = send(&url, Some(INGEST), pb, gzip(&body), true).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], pb);
    let resp = ExportTraceServiceResponse::decode(b.as_slice()).unwrap();
    assert!(resp.partial_success.is_none());
    // The same export again (an exporter's retry) changes nothing.
    assert_eq!(
        send(&url, Some(INGEST), pb, body.clone(), false).await.0,
        StatusCode::OK
    );
    // JSON, as the Collector's otlphttp exporter with encoding: json sends it.
    let json_body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "agent",
        "startTimeUnixNano": (now_ns() - 5_000_000).to_string(), "endTimeUnixNano": now_ns().to_string(),
        "attributes": [{"key": "releaseops.bundle_id", "value": {"stringValue": "support-agent"}},
                       {"key": "releaseops.bundle_version", "value": {"stringValue": "1.1.0"}},
                       {"key": "releaseops.environment", "value": {"stringValue": "prod"}}]},
      {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203332", "name": "absurd",
        "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]});
    let (st, h, b) = send(
        &url,
        Some(INGEST),
        "application/json",
        serde_json::to_vec(&json_body).unwrap(),
        false,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1", "{v}");
    assert!(
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not plausible"),
        "{v}"
    );

    let st = stats(&r);
    assert_eq!(st["spans"], 81, "{st}");
    assert_eq!(st["traces"], 41, "{st}");
    // The children carried no bundle; their traces did.
    let groups = st["groups"].as_array().unwrap();
    assert!(
        groups.iter().all(|g| g["bundle_id"] == "support-agent"),
        "{st}"
    );

    // Every way to be refused, each a google.rpc.Status in the request's encoding.
    let (st, _, b) = send(&url, None, pb, body.clone(), false).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        rpc_message(&b).contains("bearer token"),
        "{}",
        rpc_message(&b)
    );
    let (st, _, b) = send(&url, Some(VIEWER), pb, body.clone(), false).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(rpc_message(&b).contains("ingest"), "{}", rpc_message(&b));
    let (st, _, b) = send(
        &url,
        Some(INGEST),
        pb,
        b"\x0a\xff\xff\xff\xff\x0f".to_vec(),
        false,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(rpc_message(&b).contains("protobuf"), "{}", rpc_message(&b));
    let (st, _, b) = send(
        &url,
        Some(INGEST),
        "application/json",
        b"[1, 2]".to_vec(),
        false,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("not a JSON object"),
        "{v}"
    );
    let (st, _, _) = send(&url, Some(INGEST), "text/plain", body.clone(), false).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (st, _, _) = send(&url, Some(INGEST), pb, body.clone(), false).await;
    assert_eq!(st, StatusCode::OK);
    let mut rq = client()
        .post(&url)
        .header("content-type", pb)
        .bearer_auth(INGEST);
    rq = rq.header("content-encoding", "br");
    assert_eq!(
        rq.body(body.clone()).send().await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // Not gzip at all, though it says so.
    assert_eq!(
        send(&url, Some(INGEST), pb, body.clone(), true).await.0,
        StatusCode::BAD_REQUEST
    );
    // A gzip bomb: 100 MiB of zeros in a hundred kilobytes.
    let bomb = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap()
    };
    let (st, _, b) = send(&url, Some(INGEST), pb, bomb, true).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        rpc_message(&b).contains("decompressed"),
        "{}",
        rpc_message(&b)
    );
    // Over the limit as sent: refused on its declared length, before a
    // byte of it is read (a raw request, so nothing races the answer).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = s.url.trim_start_matches("http://").to_string();
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {pb}\r\nauthorization: Bearer {INGEST}\r\ncontent-length: {}\r\n\r\n",
            9 * 1024 * 1024
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(20), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    // Nothing of the refused bodies was stored, and the rest of the API serves on.
    assert_eq!(stats(&r)["spans"], 81);
    let health = client().get(s.at("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // An ingest token reads nothing.
    let env = client()
        .get(s.at("/v1/environments"))
        .bearer_auth(INGEST)
        .send()
        .await
        .unwrap();
    assert_eq!(env.status(), StatusCode::FORBIDDEN);
    let env = client()
        .get(s.at("/v1/environments"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(env.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_releaseops_process_exports_to_the_server_through_the_opentelemetry_sdk() {
    let r = repo();
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    // The CLI's own OpenTelemetry SDK, configured only by the standard variables.
    let run = r.run_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &s.url),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                &format!("Authorization=Bearer%20{INGEST}"),
            ),
        ],
        &["promote", "support-agent", "1.0.0", "dev"],
    );
    run.ok();
    let start = Instant::now();
    loop {
        let n = stats(&r)["spans"].as_u64().unwrap();
        if n > 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no span arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list: Value = serde_json::from_str(r.run(&["traces", "list", "--json"]).ok()).unwrap();
    assert!(!list.as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_held_up_answers_429_and_loses_nothing_it_accepted() {
    let r = repo();
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    let url = s.at("/v1/traces");
    // A first batch creates the store; then another process holds its
    // write lock, so the writer waits and the queue fills.
    let (st, _, _) = send(
        &url,
        Some(INGEST),
        "application/x-protobuf",
        export(1, 1, "1.0.0", |_| false, "a").encode_to_vec(),
        false,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let db = r.path().join(".releaseops/.data/traces.sqlite");
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut sent = Vec::new();
    for k in 0..100u32 {
        let url = url.clone();
        let body = export(1_000 + k * 10, 10, "1.0.0", |_| false, "a").encode_to_vec();
        sent.push(tokio::spawn(async move {
            let (st, h, _) = send(&url, Some(INGEST), "application/x-protobuf", body, false).await;
            (st, h.get("retry-after").is_some())
        }));
    }
    // Some are refused at once, with Retry-After; the rest wait for the writer.
    let start = Instant::now();
    while !sent.iter().any(|h| h.is_finished()) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no request was answered while the writer was held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = client().get(s.at("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "other routes serve on");
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    let (mut ok, mut busy) = (0u64, 0u64);
    for h in sent {
        match h.await.unwrap() {
            (StatusCode::OK, _) => ok += 1,
            (StatusCode::TOO_MANY_REQUESTS, true) => busy += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(busy > 0, "the queue never filled");
    assert_eq!(
        stats(&r)["spans"].as_u64().unwrap(),
        2 + ok * 20,
        "{ok} accepted"
    );
}

const LEGACY: &str = r#"{"trace_id": "t-1", "latency_ms": 120, "input_tokens": 10, "output_tokens": 4, "tool_calls": [{"name": "lookup_order"}], "timestamp": "2026-11-20T10:00:00Z", "metadata": {"releaseops.bundle_id": "support-agent", "releaseops.bundle_version": "1.0.0", "releaseops.environment": "prod"}}"#;

/// JSON lines of `n` legacy traces of `version`, an error every `every`.
fn legacy_lines(version: &str, n: u32, every: u32, latency: u32) -> String {
    (0..n)
        .map(|i| {
            json!({
                "trace_id": format!("{version}-{i}"),
                "latency_ms": latency + i % 40,
                "input_tokens": 300, "output_tokens": 40,
                "tool_calls": [{"name": if i % 4 == 0 { "issue_refund" } else { "lookup_order" }}],
                "error": (i % every == 0).then_some("tool failed"),
                "timestamp": format!("2026-11-20T{:02}:{:02}:00Z", 8 + i / 60, i % 60),
                "metadata": {"releaseops.bundle_id": "support-agent", "releaseops.bundle_version": version, "releaseops.environment": "prod"}
            })
            .to_string()
                + "\n"
        })
        .collect()
}

#[test]
fn trace_files_import_whole_and_versions_compare_with_a_verdict() {
    let r = repo();
    // Too little traffic: no verdict.
    r.write(
        "few.jsonl",
        &(legacy_lines("1.0.0", 10, 10, 200) + &legacy_lines("1.1.0", 10, 5, 200)),
    );
    r.run(&["traces", "import", "few.jsonl"]).ok();
    let c = r.run(&[
        "analytics",
        "compare",
        "support-agent@1.0.0",
        "support-agent@1.1.0",
        "--json",
    ]);
    let v: Value = serde_json::from_str(c.ok()).unwrap();
    assert_eq!(v["verdict"], "insufficient_data");
    // A pipeline asking to fail on a regression is told the evidence cannot tell (6).
    r.run(&[
        "analytics",
        "compare",
        "support-agent@1.0.0",
        "support-agent@1.1.0",
        "--fail-on-regression",
    ])
    .code(6);
    assert_eq!(v["baseline"]["sample_size"], 10);
    // A bad line: named, and nothing of its file stored.
    r.write(
        "bad.jsonl",
        &format!("{LEGACY}\n{{\"latency_ms\": \"slow\"}}\n"),
    );
    let bad = r.run(&["traces", "import", "bad.jsonl"]);
    bad.code(2);
    assert!(
        bad.stderr.contains("bad.jsonl line 2") && bad.stderr.contains("latency_ms"),
        "{}",
        bad.stderr
    );
    assert_eq!(stats(&r)["traces"], 20);
    r.write("notobj.jsonl", "42\n");
    assert!(
        r.run(&["traces", "import", "notobj.jsonl"])
            .stderr
            .contains("line 1")
    );
    // Enough traffic: 1.1.0 fails three times as often and is slower.
    r.write("base.jsonl", &legacy_lines("1.0.0", 400, 40, 200));
    r.write("cand.jsonl", &legacy_lines("1.1.0", 400, 12, 260));
    let out = r.run(&["traces", "import", "base.jsonl", "cand.jsonl"]);
    assert!(out.ok().contains("400 traces"), "{}", out.stdout);
    let c = r.run(&[
        "analytics",
        "compare",
        "support-agent@1.0.0",
        "support-agent@1.1.0",
        "--env",
        "prod",
        "--json",
    ]);
    let v: Value = serde_json::from_str(c.ok()).unwrap();
    assert_eq!(v["verdict"], "regression", "{v}");
    // (The first ten traces of 1.1.0 were in few.jsonl already: stored once.)
    assert_eq!(v["candidate"]["sample_size"], 400);
    for m in v["metrics"].as_array().unwrap() {
        for k in [
            "name",
            "baseline",
            "candidate",
            "change",
            "p_value",
            "ci",
            "significant",
            "direction",
        ] {
            assert!(m.get(k).is_some(), "{k} missing in {m}");
        }
    }
    let err = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "error_rate")
        .unwrap();
    assert_eq!(err["significant"], true);
    assert_eq!(err["direction"], "worse");
    assert!(v["recommendation"].as_str().unwrap().contains("error_rate"));
    // The text a person reads, and the exit status a pipeline can use.
    let text = r.run(&[
        "analytics",
        "compare",
        "support-agent@1.0.0",
        "support-agent@1.1.0",
        "--fail-on-regression",
    ]);
    text.code(3);
    assert!(
        text.stdout.contains("Verdict:   regression") && text.stdout.contains("P (HOLM)"),
        "{}",
        text.stdout
    );
    // The existing tool's --format json, and its metrics command.
    let m = r.run(&[
        "analytics",
        "metrics",
        "support-agent@1.1.0",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(m.ok()).unwrap();
    assert_eq!(v["metrics"]["sample_size"], 400);
    assert!(v["metrics"]["latency_ms"]["p95"].as_f64().unwrap() > 260.0);
    // Faster but failing more in canary: mixed, and still a failure for a pipeline.
    let canary: String = (0..400u32)
        .map(|i| {
            json!({
                "trace_id": format!("canary-{i}"),
                "latency_ms": 120 + i % 40,
                "error": (i % 8 == 0).then_some("tool failed"),
                "timestamp": format!("2026-11-20T{:02}:{:02}:00Z", 8 + i / 60, i % 60),
                "metadata": {"releaseops.bundle_id": "support-agent", "releaseops.bundle_version": "1.1.0", "releaseops.environment": "canary"}
            })
            .to_string()
                + "\n"
        })
        .collect();
    r.write("canary.jsonl", &canary);
    r.run(&["traces", "import", "canary.jsonl"]).ok();
    let mixed = r.run(&[
        "analytics",
        "compare",
        "support-agent@1.0.0",
        "support-agent@1.1.0",
        "--baseline-env",
        "prod",
        "--candidate-env",
        "canary",
        "--fail-on-regression",
    ]);
    mixed.code(3);
    assert!(
        mixed.stdout.contains("Verdict:   mixed"),
        "{}",
        mixed.stdout
    );
    // Versions that do not exist are refused, not compared as empty.
    let e = r.run(&["analytics", "compare", "support-agent@1.0.0", "nope@2.0.0"]);
    e.code(1);
    assert!(e.stderr.contains("no bundle 'nope'"), "{}", e.stderr);
    // Filters.
    let list: Value = serde_json::from_str(
        r.run(&[
            "traces",
            "list",
            "--bundle",
            "support-agent@1.1.0",
            "--status",
            "error",
            "--tool",
            "issue_refund",
            "-n",
            "0",
            "--json",
        ])
        .ok(),
    )
    .unwrap();
    assert!(!list.as_array().unwrap().is_empty());
    assert!(list.as_array().unwrap().iter().all(
        |t| t["errors"].as_u64().unwrap() > 0 && t["tools"]["issue_refund"].as_u64().is_some()
    ));
    let e = r.run(&["traces", "list", "--since", "yesterday"]);
    e.code(2);
    // The store stays out of git.
    assert!(!r.git(&["status", "--porcelain"]).contains(".data"));
}

/// A fresh database on the test server, or None outside CI without one.
fn postgres_url() -> Option<String> {
    let Ok(base) = std::env::var("RELEASEOPS_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set RELEASEOPS_TEST_POSTGRES (see .ci/run)"
        );
        eprintln!("skipped: set RELEASEOPS_TEST_POSTGRES to a PostgreSQL URL to run this test");
        return None;
    };
    let name = format!(
        "releaseops_cli_{}_{}",
        std::process::id(),
        now_ns() % 1_000_000_007
    );
    let mut admin = postgres::Client::connect(&base, postgres::NoTls)
        .expect("connect to RELEASEOPS_TEST_POSTGRES");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("a test database");
    let (server, _) = base.rsplit_once('/').expect("a URL that names a database");
    Some(format!("{server}/{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_postgresql_store() {
    // (The synchronous client runs its own runtime: not on this one's thread.)
    let Some(db) = tokio::task::spawn_blocking(postgres_url).await.unwrap() else {
        return;
    };
    let r = repo();
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}traces:\n  database: {db}\n"),
    );
    let env = [("RELEASEOPS_API_TOKENS", tokens())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = Server::start(&r, &[], &env);
    let b = Server::start(&r, &[], &env);
    // Each replica gets half of each version's traffic.
    for (k, server) in [&a, &b].into_iter().enumerate() {
        let url = server.at("/v1/traces");
        let first = k as u32 * 100;
        for (version, failing) in [("1.0.0", 40u32), ("1.1.0", 8)] {
            let offset = if version == "1.0.0" { 0 } else { 10_000 };
            let body = export(
                offset + first + 1,
                100,
                version,
                |i| i % failing == 0,
                "lookup_order",
            )
            .encode_to_vec();
            let (st, _, _) = send(&url, Some(INGEST), "application/x-protobuf", body, false).await;
            assert_eq!(st, StatusCode::OK);
        }
    }
    let st = stats(&r);
    assert_eq!(st["spans"], 800, "{st}");
    assert_eq!(st["traces"], 400, "{st}");
    let c = r.run(&[
        "analytics",
        "compare",
        "support-agent@1.0.0",
        "support-agent@1.1.0",
        "--json",
    ]);
    let v: Value = serde_json::from_str(c.ok()).unwrap();
    assert_eq!(v["baseline"]["sample_size"], 200);
    assert_eq!(v["verdict"], "regression", "{v}");
    // A database that is not there: a clear error, no password shown.
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}traces:\n  database: postgres://nobody@127.0.0.1:1/none\n"),
    );
    let e = r.run(&["traces", "stats"]);
    e.code(1);
    assert!(
        e.stderr.contains("127.0.0.1:1") && e.stderr.contains("reachable"),
        "{}",
        e.stderr
    );
}

/// JSON lines of `n` traces of `version` in `env`, the last `n` minutes
/// before now, an error every `every`.
fn recent(version: &str, env: &str, n: u32, every: u32, latency: u32) -> String {
    let now = jiff::Timestamp::now();
    stamped(version, env, n, every, latency, |i| {
        now - jiff::SignedDuration::from_secs(60 * i64::from(i + 1))
    })
}

/// As [`recent`], a millisecond apart from a second after `from` on:
/// traffic served since a release went live.
fn since(
    version: &str,
    env: &str,
    n: u32,
    every: u32,
    latency: u32,
    from: jiff::Timestamp,
) -> String {
    stamped(version, env, n, every, latency, |i| {
        // A trace's time is when it ended: it started its latency earlier.
        from + jiff::SignedDuration::from_millis(1000 + i64::from(i))
    })
}

fn stamped(
    version: &str,
    env: &str,
    n: u32,
    every: u32,
    latency: u32,
    at: impl Fn(u32) -> jiff::Timestamp,
) -> String {
    (0..n)
        .map(|i| {
            let at = at(i);
            json!({
                "trace_id": format!("{env}-{version}-{i}-{}", at.as_millisecond()),
                "latency_ms": latency + i % 40,
                "error": (i % every == 0).then_some("tool failed"),
                "timestamp": at.to_string(),
                "metadata": {"releaseops.bundle_id": "support-agent", "releaseops.bundle_version": version, "releaseops.environment": env}
            })
            .to_string()
                + "\n"
        })
        .collect()
}

fn analysis_gate(out: &str) -> Value {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["gate"] == "analysis")
        .cloned()
        .unwrap_or_else(|| panic!("no analysis gate in {v}"))
}

#[test]
fn the_canary_analysis_gate_judges_upstream_traffic_against_the_baseline() {
    let r = Repo::initialized_production();
    r.write(
        ".releaseops/environments/prod.yaml",
        "environment: prod\nbundle_mappings: {}\npromotion_policy:\n  requires_analysis:\n    baseline_env: prod\n    min_samples: 50\n    window_hours: 24\n    metrics: [error_rate, latency_p95]\n    max_increase: {latency_p95: 0.5}\n",
    );
    r.commit_all("canary analysis for prod");
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        r.create_support_agent(v, "v1.0.0", if v == "1.0.0" { "0.2" } else { "0.3" });
    }
    let promote = |v: &str, env: &str, extra: &[&str]| {
        r.run(&[&["promote", "support-agent", v, env, "--json"], extra].concat())
    };
    promote("1.0.0", "dev", &[]).ok();
    promote("1.0.0", "staging", &[]).ok();
    // Nothing runs in prod yet: nothing to compare with.
    let first = promote("1.0.0", "prod", &[]);
    assert!(
        analysis_gate(first.ok())["reason"]
            .as_str()
            .unwrap()
            .contains("nothing of this bundle runs in 'prod'")
    );
    promote("1.1.0", "dev", &[]).ok();
    // Traces of 1.1.0 in staging stamped before it went live there are not
    // its canary: they do not count.
    r.write("early.jsonl", &recent("1.1.0", "staging", 120, 50, 205));
    r.run(&["traces", "import", "early.jsonl"]).ok();
    promote("1.1.0", "staging", &[]).ok();
    let live = jiff::Timestamp::now();
    // No traffic yet: pending, saying how much is missing.
    let pending = promote("1.1.0", "prod", &["--dry-run"]);
    pending.code(3);
    let g = analysis_gate(&pending.stdout);
    assert_eq!(g["status"], "pending", "{g}");
    assert!(
        g["reason"]
            .as_str()
            .unwrap()
            .contains("50 more in 'staging'"),
        "{g}"
    );
    // Healthy canary traffic: it passes, and the record keeps the numbers.
    r.write(
        "healthy.jsonl",
        &(recent("1.0.0", "prod", 120, 50, 200) + &since("1.1.0", "staging", 120, 50, 205, live)),
    );
    r.run(&["traces", "import", "healthy.jsonl"]).ok();
    let ok = promote("1.1.0", "prod", &[]);
    let g = analysis_gate(ok.ok());
    assert_eq!(g["status"], "passed", "{g}");
    assert!(
        g["reason"]
            .as_str()
            .unwrap()
            .contains("120 traces in 'staging' against 1.0.0's 120 in 'prod'"),
        "{g}"
    );
    let history: Value =
        serde_json::from_str(r.run(&["history", "--json", "-n", "1"]).ok()).unwrap();
    let recorded = history.to_string();
    assert!(
        recorded.contains("\"analysis\"") && recorded.contains("no significant regression"),
        "{recorded}"
    );
    // 1.2.0 fails a third of its requests in staging: blocked, with the numbers.
    promote("1.2.0", "dev", &[]).ok();
    promote("1.2.0", "staging", &[]).ok();
    let live = jiff::Timestamp::now();
    r.write(
        "bad.jsonl",
        &(recent("1.1.0", "prod", 120, 50, 205) + &since("1.2.0", "staging", 120, 3, 205, live)),
    );
    r.run(&["traces", "import", "bad.jsonl"]).ok();
    let blocked = promote("1.2.0", "prod", &[]);
    blocked.code(3);
    let g = analysis_gate(&blocked.stdout);
    assert_eq!(g["status"], "failed", "{g}");
    let reason = g["reason"].as_str().unwrap();
    assert!(
        reason.contains("error_rate 2.5% -> 33.3%") && reason.contains("points, p"),
        "{reason}"
    );
    // It is still 1.1.0 in prod.
    let envs = r.run(&["env", "get", "prod", "--json"]);
    assert!(envs.ok().contains("1.1.0"));
}

#[test]
fn a_misspelt_analysis_key_is_an_error_not_a_gate_turned_off() {
    let r = Repo::initialized_production();
    r.write(
        ".releaseops/environments/staging.yaml",
        "environment: staging\nbundle_mappings: {}\npromotion_policy:\n  requires_analysis:\n    baseline_env: prod\n    min_sample: 5\n",
    );
    r.commit_all("typo");
    r.create_support_agent("1.0.0", "v1.0.0", "0.2");
    r.run(&["promote", "support-agent", "1.0.0", "dev"]).ok();
    let e = r.run(&["promote", "support-agent", "1.0.0", "staging"]);
    assert_ne!(e.code, 0);
    assert!(e.stderr.contains("min_sample"), "{}", e.stderr);
}

#[test]
fn production_traffic_settles_the_agents_outcome_and_dora_counts_it() {
    let r = Repo::initialized();
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}agent:\n  watch_hours: 2\n"),
    );
    r.write(
        ".releaseops/environments/prod.yaml",
        "environment: prod\nbundle_mappings: {}\npromotion_policy:\n  requires_agent: advisory\n",
    );
    r.commit_all("the agent advises prod");
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    let at = |h: f64| (t + jiff::SignedDuration::from_secs_f64(h * 3600.0)).to_string();
    for v in ["1.0.0", "1.1.0"] {
        r.run_at(
            &at(0.0),
            &[
                "bundle",
                "create",
                "support-agent",
                "-v",
                v,
                "-a",
                "system=onboarding:v1.0.0",
                "-m",
                "claude-sonnet-4-5",
                "--provider",
                "anthropic",
                "-t",
                if v == "1.0.0" { "0.2" } else { "0.3" },
            ],
        )
        .ok();
    }
    for (v, env, h) in [
        ("1.0.0", "dev", 1.0),
        ("1.0.0", "staging", 2.0),
        ("1.0.0", "prod", 3.0),
        ("1.1.0", "dev", 30.0),
        ("1.1.0", "staging", 31.0),
        ("1.1.0", "prod", 40.0),
    ] {
        r.run_at(&at(h), &["promote", "support-agent", v, env]).ok();
    }
    // Two hours of 1.0.0 in prod before 1.1.0, two of 1.1.0 after: a
    // quarter of 1.1.0's requests fail. Nobody rolls it back.
    let lines = |v: &str, from: f64, every: u32| -> String {
        (0..200u32)
            .map(|i| {
                json!({
                    "trace_id": format!("{v}-{i}"),
                    "latency_ms": 300 + i % 50,
                    "error": (i % every == 0).then_some("RefundLimitExceeded"),
                    "timestamp": at(from + f64::from(i) * 0.009),
                    "metadata": {"releaseops.bundle_id": "support-agent", "releaseops.bundle_version": v, "releaseops.environment": "prod"}
                })
                .to_string()
                    + "\n"
            })
            .collect()
    };
    r.write(
        "prod.jsonl",
        &(lines("1.0.0", 38.0, 50) + &lines("1.1.0", 40.0, 4)),
    );
    r.run_at(&at(44.0), &["traces", "import", "prod.jsonl"])
        .ok();
    let settled: Value =
        serde_json::from_str(r.run_at(&at(44.0), &["agent", "settle", "--json"]).ok()).unwrap();
    // (1.0.0's decision was settled when 1.1.0's promotion asked the agent.)
    assert_eq!(settled["settled"], 1, "{settled}");
    let dora: Value = serde_json::from_str(
        r.run_at(&at(44.0), &["metrics", "dora", "--env", "prod", "--json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(dora["deployments"], 2, "{dora}");
    assert_eq!(dora["failed_deployments"], 1, "{dora}");
    assert_eq!(dora["failed_in_production"], 1, "{dora}");
    assert_eq!(dora["change_failure_rate"], 0.5, "{dora}");
    // The outcome record says why, with the numbers, and is committed.
    let memory = r.run_at(&at(44.0), &["agent", "memory", "--json"]);
    assert!(memory.ok().contains("incident"), "{}", memory.stdout);
    let outcomes = r.git(&["grep", "-h", "auto:production", "--", ".releaseops/agent"]);
    assert!(
        outcomes.contains("\"incident\"") && outcomes.contains("error_rate 2.0% -> 25.0%"),
        "{outcomes}"
    );
}

#[test]
fn a_trace_store_committed_to_git_is_refused() {
    let r = repo();
    r.write("t.jsonl", LEGACY);
    r.run(&["traces", "import", "t.jsonl"]).ok();
    r.git(&["add", "-f", ".releaseops/.data/traces.sqlite"]);
    r.git(&["commit", "-qm", "forged traffic"]);
    let e = r.run(&["traces", "stats"]);
    e.code(1);
    assert!(
        e.stderr.contains("is committed to git") && e.stderr.contains("git rm --cached"),
        "{}",
        e.stderr
    );
}
