//! Production sight, measured on the real binary:
//! - OTLP/HTTP protobuf ingest into the embedded store (`releaseops serve`,
//!   batches of 500 spans from 4 connections over loopback), every span
//!   counted back out of the store afterwards;
//! - `traces import` of 1,000,000 JSON lines;
//! - `analytics compare` over the 1,000,000 traces (spans) stored;
//! - the store's size per span.
//!
//! Run with `cargo bench -p releaseops-cli --bench traces` (add `-- --quick`
//! for fewer rounds). Prints medians.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const BIN: &str = env!("CARGO_BIN_EXE_releaseops");
const TOKEN: &str = "ingest-bench-token-0123456789";

fn run(dir: &Path, args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("RELEASEOPS_ACTOR", "Bench <bench@example.test>")
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (d, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
}

/// A repository with support-agent 1.0.0 and 1.1.0.
fn repo() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("releaseops-bench-")
        .tempdir()
        .expect("tempdir");
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.name", "Bench"],
        &["config", "user.email", "bench@example.test"],
    ] {
        Command::new("git")
            .arg("-C")
            .arg(d.path())
            .args(args)
            .output()
            .expect("git");
    }
    run(d.path(), &["init"]);
    std::fs::create_dir_all(d.path().join("prompts")).expect("mkdir");
    for v in ["1.0.0", "1.1.0"] {
        std::fs::write(
            d.path().join("prompts/system.md"),
            format!("You are support agent {v}.\n"),
        )
        .expect("write");
        run(
            d.path(),
            &[
                "bundle",
                "create",
                "support-agent",
                "-v",
                v,
                "--artifact",
                "system=file:prompts/system.md",
                "--model",
                "gpt-4o",
            ],
        );
    }
    d
}

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

/// One export of 500 spans: 125 traces of a root and three children (an
/// LLM call with tokens, a tool call, a retrieval), as an instrumented
/// agent sends them.
fn batch(n: u64, now: u64) -> Vec<u8> {
    use any_value::Value::{IntValue, StringValue};
    let mut spans = Vec::with_capacity(500);
    for t in 0..125u64 {
        let trace = n * 125 + t + 1;
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&trace.to_be_bytes());
        trace_id[15] = 7;
        for s in 0..4u64 {
            let mut span_id = [0u8; 8];
            span_id[..7].copy_from_slice(&trace.to_be_bytes()[1..]);
            span_id[7] = s as u8 + 1;
            let mut attributes = vec![
                kv("releaseops.bundle_id", StringValue("support-agent".into())),
                kv(
                    "releaseops.bundle_version",
                    StringValue(
                        if trace.is_multiple_of(2) {
                            "1.0.0"
                        } else {
                            "1.1.0"
                        }
                        .into(),
                    ),
                ),
                kv("releaseops.environment", StringValue("prod".into())),
            ];
            match s {
                1 => attributes.extend([
                    kv("gen_ai.operation.name", StringValue("chat".into())),
                    kv("gen_ai.request.model", StringValue("gpt-4o".into())),
                    kv(
                        "gen_ai.usage.input_tokens",
                        IntValue(300 + (trace % 100) as i64),
                    ),
                    kv("gen_ai.usage.output_tokens", IntValue(40)),
                ]),
                2 => attributes.extend([
                    kv("gen_ai.operation.name", StringValue("execute_tool".into())),
                    kv(
                        "gen_ai.tool.name",
                        StringValue(
                            if trace.is_multiple_of(5) {
                                "issue_refund"
                            } else {
                                "lookup_order"
                            }
                            .into(),
                        ),
                    ),
                ]),
                _ => {}
            }
            spans.push(Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: if s == 0 {
                    vec![]
                } else {
                    {
                        let mut p = span_id;
                        p[7] = 1;
                        p.to_vec()
                    }
                },
                name: ["agent", "chat gpt-4o", "execute_tool", "retrieve"][s as usize].into(),
                start_time_unix_nano: now - 1_000_000_000 + s * 1_000,
                end_time_unix_nano: now - 1_000_000_000 + 200_000_000 + (trace % 97) * 1_000_000,
                attributes,
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue("support".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

struct Served {
    child: std::process::Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Served {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env(
            "RELEASEOPS_API_TOKENS",
            format!("ingest:Bench <bench@example.test>:{TOKEN}"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("address");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("url")
        .to_string();
    Served { child, url }
}

/// Spans per second through `POST /v1/traces`, and whether every span sent is stored.
fn ingest_round(batches: u64) -> (f64, bool) {
    let dir = repo();
    let server = serve(dir.path());
    let now = jiff::Timestamp::now().as_nanosecond() as u64;
    let bodies: Vec<Vec<u8>> = (0..batches).map(|n| batch(n, now)).collect();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!("{}/v1/traces", server.url);
    let elapsed = rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(8)
            .build()
            .expect("client");
        let bodies = std::sync::Arc::new(bodies);
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (client, url, bodies, next) =
                (client.clone(), url.clone(), bodies.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(body) = bodies.get(i) else { break };
                    loop {
                        let r = client
                            .post(&url)
                            .header("content-type", "application/x-protobuf")
                            .bearer_auth(TOKEN)
                            .body(body.clone())
                            .send()
                            .await
                            .expect("send");
                        match r.status().as_u16() {
                            200 => break,
                            429 | 503 => tokio::time::sleep(Duration::from_millis(20)).await,
                            s => panic!("answered {s}"),
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("sender");
        }
        start.elapsed()
    });
    let (_, out) = run(dir.path(), &["traces", "stats", "--json"]);
    let stored: serde_json::Value = serde_json::from_str(&out).expect("stats");
    let all = stored["spans"].as_u64() == Some(batches * 500);
    ((batches * 500) as f64 / elapsed.as_secs_f64(), all)
}

/// 1,000,000 legacy trace lines, half of each version.
fn write_lines(path: &Path, n: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for i in 0..n {
        let v = if i % 2 == 0 { "1.0.0" } else { "1.1.0" };
        let err = if (v == "1.1.0" && i % 23 == 1) || i % 41 == 0 {
            "\"Timeout\""
        } else {
            "null"
        };
        writeln!(
            f,
            "{{\"trace_id\":\"t-{i}\",\"latency_ms\":{},\"input_tokens\":{},\"output_tokens\":{},\"tool_calls\":[{{\"name\":\"{}\"}}],\"error\":{err},\"timestamp\":\"2026-12-0{}T{:02}:{:02}:{:02}Z\",\"metadata\":{{\"releaseops.bundle_id\":\"support-agent\",\"releaseops.bundle_version\":\"{v}\",\"releaseops.environment\":\"prod\"}}}}",
            180 + (i * 7919) % 300 + if v == "1.1.0" { 15 } else { 0 },
            250 + (i * 31) % 200,
            20 + (i * 17) % 60,
            if i % 5 == 0 { "issue_refund" } else { "lookup_order" },
            1 + (i / 86_400) % 6,
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60,
        )
        .expect("write");
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 3 };
    let mut rates = Vec::new();
    let mut complete = true;
    for _ in 0..rounds {
        let (rate, all) = ingest_round(if quick { 200 } else { 400 });
        rates.push(rate);
        complete &= all;
    }
    println!(
        "{:<64} {:>14} {:>12}",
        "OTLP/HTTP protobuf ingest, batches of 500, into SQLite",
        format!("{:.0} spans/s", median(rates)),
        ">= 50,000"
    );
    println!(
        "{:<64} {:>14}",
        "  every span sent was stored",
        if complete { "yes" } else { "NO" }
    );

    let n: u64 = if quick { 200_000 } else { 1_000_000 };
    let mut imports = Vec::new();
    let mut compares = Vec::new();
    let mut per_span = 0.0;
    for _ in 0..rounds {
        let dir = repo();
        let file = dir.path().join("traces.jsonl");
        write_lines(&file, n);
        // The file is on disk before the clock starts, as a user's file is
        // (not still being written back while the import runs).
        let _ = Command::new("sync").status();
        imports.push(run(dir.path(), &["traces", "import", "traces.jsonl"]).0);
        let (_, out) = run(dir.path(), &["traces", "stats", "--json"]);
        let st: serde_json::Value = serde_json::from_str(&out).expect("stats");
        assert_eq!(st["spans"].as_u64(), Some(n));
        per_span = st["bytes_per_span"].as_f64().unwrap_or(0.0);
        for _ in 0..if quick { 1 } else { 3 } {
            let (d, out) = run(
                dir.path(),
                &[
                    "analytics",
                    "compare",
                    "support-agent@1.0.0",
                    "support-agent@1.1.0",
                    "--env",
                    "prod",
                    "--json",
                ],
            );
            let v: serde_json::Value = serde_json::from_str(&out).expect("compare");
            assert_eq!(v["verdict"], "regression", "{v}");
            compares.push(d);
        }
    }
    println!(
        "{:<64} {:>14} {:>12}",
        format!("traces import of {n} JSON lines"),
        format!("{:.2} s", median(imports).as_secs_f64()),
        "< 10 s"
    );
    println!(
        "{:<64} {:>14} {:>12}",
        format!("analytics compare over {n} stored spans"),
        format!("{:.0} ms", median(compares).as_secs_f64() * 1000.0),
        "< 1 s"
    );
    println!(
        "{:<64} {:>14}",
        "store size per span (imported traces)",
        format!("{per_span:.0} bytes")
    );
}
