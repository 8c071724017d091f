//! `releaseops traces pull` against loopback servers that speak each
//! platform's wire format and keep their own data: Langfuse's
//! `GET /api/public/v2/observations` (Basic auth, newest first, cursor in
//! `meta.cursor`), LangSmith's project lookup and `POST /api/v2/runs/query`
//! (`x-api-key`, `next_cursor`), Phoenix's `GET /v1/projects/{p}/spans`
//! (Bearer, `next_cursor`). Pulls are incremental and idempotent, resume
//! after a failure, honour 429 with Retry-After, and a server that is
//! unreachable, lies about its cursor or answers another shape gets a
//! clear error that never shows a credential.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::{Repo, Run, output_within};

const PK: &str = "pk-lf-test-public-1234";
const SK: &str = "sk-lf-test-secret-abcdef0123456789";
const LS_KEY: &str = "lsv2_pt_0123456789abcdef0123456789abcdef_1234567890";
const PHX_KEY: &str = "phoenix-key-0123456789abcdef";
const LIMIT: Duration = Duration::from_secs(60);

fn pull(r: &Repo, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = r.command(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let run = Run::from(output_within(&mut c, LIMIT));
    for secret in [SK, LS_KEY, PHX_KEY] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a credential was shown:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

fn ago(minutes: f64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs_f64(minutes * 60.0);
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn ts(v: &str) -> jiff::Timestamp {
    v.parse().expect("an RFC 3339 time")
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The records starting in `[from, to)`, ordered by `key` (newest first or
/// not), one page from `offset`: the page and the next offset.
fn page_of(
    records: &[Value],
    key: &str,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
    newest_first: bool,
    offset: usize,
    limit: usize,
) -> (Vec<Value>, Option<usize>) {
    let mut rows: Vec<&Value> = records
        .iter()
        .filter(|r| {
            let t = ts(r[key].as_str().unwrap_or_default());
            from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
        })
        .collect();
    rows.sort_by_key(|r| ts(r[key].as_str().unwrap_or_default()));
    if newest_first {
        rows.reverse();
    }
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|v| (*v).clone())
        .collect();
    let next = (offset + limit < rows.len()).then_some(offset + limit);
    (page, next)
}

fn basic(user: &str, password: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// A Langfuse server holding `records` (observations). The first request
/// is answered 429 with Retry-After when `throttle` is set.
struct Langfuse {
    server: MockServer,
    records: Arc<Mutex<Vec<Value>>>,
    seen: Arc<Mutex<Vec<Request>>>,
    fail_after: Arc<Mutex<Option<usize>>>,
}

impl Langfuse {
    async fn start(throttle: bool) -> Langfuse {
        let server = MockServer::start().await;
        let records: Arc<Mutex<Vec<Value>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let fail_after: Arc<Mutex<Option<usize>>> = Arc::default();
        let (rs, sn, fa) = (records.clone(), seen.clone(), fail_after.clone());
        let throttled = Arc::new(Mutex::new(!throttle));
        Mock::given(method("GET"))
            .and(path("/api/public/v2/observations"))
            .respond_with(move |req: &Request| {
                let auth = req
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if auth != basic(PK, SK) {
                    // Some servers echo what they were sent: it must not show.
                    return ResponseTemplate::new(401).set_body_json(json!({
                        "message": format!("Invalid credentials: {auth} (key {SK})")
                    }));
                }
                let mut seen = sn.lock().expect("the fake server's state");
                seen.push(req.clone());
                if let Some(n) = *fa.lock().expect("the fake server's state")
                    && seen.len() > n
                {
                    return ResponseTemplate::new(500)
                        .set_body_json(json!({"message": "ClickHouse is unavailable"}));
                }
                let mut t = throttled.lock().expect("the fake server's state");
                if !*t {
                    *t = true;
                    return ResponseTemplate::new(429)
                        .insert_header("retry-after", "1")
                        .set_body_json(json!({"message": "rate limit exceeded"}));
                }
                let offset: usize = query(req, "cursor")
                    .and_then(|c| c.strip_prefix("lf:").and_then(|n| n.parse().ok()))
                    .unwrap_or(0);
                let limit: usize = query(req, "limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(50);
                let io = query(req, "fields").is_some_and(|f| f.split(',').any(|x| x == "io"));
                let (mut data, next) = page_of(
                    &rs.lock().expect("the fake server's state"),
                    "startTime",
                    query(req, "fromStartTime").map(|t| ts(&t)),
                    query(req, "toStartTime").map(|t| ts(&t)),
                    true,
                    offset,
                    limit,
                );
                if !io {
                    for d in &mut data {
                        d.as_object_mut()
                            .expect("as the test wrote it")
                            .remove("input");
                        d.as_object_mut()
                            .expect("as the test wrote it")
                            .remove("output");
                    }
                }
                let mut meta = json!({});
                if let Some(n) = next {
                    meta["cursor"] = json!(format!("lf:{n}"));
                }
                ResponseTemplate::new(200).set_body_json(json!({"data": data, "meta": meta}))
            })
            .mount(&server)
            .await;
        Langfuse {
            server,
            records,
            seen,
            fail_after,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LANGFUSE_PUBLIC_KEY", PK.into()),
            ("LANGFUSE_SECRET_KEY", SK.into()),
            ("LANGFUSE_BASE_URL", self.server.uri()),
        ]
    }
}

fn envs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

/// One agent trace as Langfuse keeps it: a root span tagged with the
/// bundle (OTel attributes under metadata.attributes), a generation and a
/// tool call.
fn langfuse_trace(n: u32, minutes_ago: f64, version: &str, failed: bool) -> Vec<Value> {
    let trace = format!("{n:032x}");
    let root = format!("{:016x}", 0x1000 + n);
    let start = ago(minutes_ago);
    let end = ago(minutes_ago - 0.05);
    vec![
        json!({
            "id": root, "traceId": trace, "type": "SPAN", "name": "support-turn",
            "startTime": start, "endTime": end,
            "level": if failed { "ERROR" } else { "DEFAULT" },
            "statusMessage": if failed { "tool failed" } else { "" },
            "metadata": {"attributes": {
                "releaseops.bundle_id": "support-agent",
                "releaseops.bundle_version": version,
                "releaseops.environment": "prod"
            }},
            "environment": "production"
        }),
        json!({
            "id": format!("gen-{n}"), "traceId": trace, "parentObservationId": root,
            "type": "GENERATION", "name": "chat", "startTime": ago(minutes_ago - 0.01),
            "endTime": ago(minutes_ago - 0.03), "providedModelName": "gpt-4o-mini",
            "usageDetails": {"input": 120, "output": 30, "total": 150},
            "costDetails": {"total": 0.0004},
            "input": [{"role": "user", "content": "refund order 42"}],
            "output": {"role": "assistant", "content": "done"}
        }),
        json!({
            "id": format!("tool-{n}"), "traceId": trace, "parentObservationId": root,
            "type": "TOOL", "name": "issue_refund", "startTime": ago(minutes_ago - 0.035),
            "endTime": ago(minutes_ago - 0.04), "input": {"amount": 40}
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langfuse_pulls_are_incremental_idempotent_and_resume_after_a_failure() {
    let lf = Langfuse::start(true).await;
    {
        let mut rs = lf.records.lock().expect("the fake server's state");
        for n in 1..=4 {
            rs.extend(langfuse_trace(
                n,
                200.0 - f64::from(n) * 10.0,
                "1.0.0",
                n == 4,
            ));
        }
        // Older than the window asked for: never pulled.
        rs.extend(langfuse_trace(9, 60.0 * 30.0, "1.0.0", false));
    }
    let r = Repo::initialized_production();
    r.create_support_agent("1.0.0", "v1.0.0", "0.2");
    let env = lf.env();
    let env = envs(&env);
    let args = [
        "traces",
        "pull",
        "langfuse",
        "--since",
        "24h",
        "--page-size",
        "5",
    ];
    let first = pull(&r, &env, &args);
    let out = first.ok();
    assert!(
        out.contains("12 records in 3 pages, 12 spans stored")
            && out.contains("1 requests retried"),
        "{out}"
    );
    // Content is not captured by default: it was not even asked for.
    let asked = lf.seen.lock().expect("the fake server's state").clone();
    assert!(asked.iter().all(|q| {
        !query(q, "fields")
            .expect("as the test wrote it")
            .contains("io")
    }));
    let listed = r.run(&[
        "--json",
        "traces",
        "list",
        "--bundle",
        "support-agent@1.0.0",
    ]);
    let rows = listed.json();
    assert_eq!(rows.as_array().map(Vec::len), Some(4), "{}", listed.stdout);
    let stats = r.run(&[
        "--json",
        "analytics",
        "metrics",
        "support-agent@1.0.0",
        "--env",
        "prod",
    ]);
    let m = stats.json()["metrics"].clone();
    assert_eq!(m["sample_size"].as_f64(), Some(4.0), "{}", stats.stdout);
    assert_eq!(m["error_rate"].as_f64(), Some(0.25), "{}", stats.stdout);
    let shown = r.run(&["--json", "traces", "show", &format!("{:032x}", 1)]);
    let t = shown.json();
    let spans = t["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 3, "{}", shown.stdout);
    assert!(shown.stdout.contains("issue_refund") && shown.stdout.contains("gpt-4o-mini"));
    assert!(
        !shown.stdout.contains("refund order 42"),
        "content kept without capture"
    );

    // Again at once: only the overlap is asked for, nothing is stored twice.
    lf.seen.lock().expect("the fake server's state").clear();
    let again = pull(&r, &env, &args);
    assert!(again.ok().contains("0 spans stored"), "{}", again.stdout);
    let asked = lf.seen.lock().expect("the fake server's state").clone();
    let from = ts(&query(&asked[0], "fromStartTime").expect("as the test wrote it"));
    // (The default overlap is an hour: records a platform indexes late.)
    assert!(
        jiff::Timestamp::now().duration_since(from) < jiff::SignedDuration::from_mins(62),
        "the second pull asked from {from}"
    );

    // New traffic, one trace still running: the finished ones are stored,
    // the running one is left for later and then taken once it ends.
    {
        let mut rs = lf.records.lock().expect("the fake server's state");
        rs.extend(langfuse_trace(5, 3.0, "1.1.0", false));
        let mut running = langfuse_trace(6, 2.0, "1.1.0", false);
        running[0]
            .as_object_mut()
            .expect("as the test wrote it")
            .remove("endTime");
        rs.extend(running);
    }
    let more = pull(&r, &env, &args);
    let out = more.ok();
    assert!(
        out.contains("5 spans stored") && out.contains("1 still running"),
        "{out}"
    );
    {
        let mut rs = lf.records.lock().expect("the fake server's state");
        let root = rs
            .iter_mut()
            .find(|o| o["id"] == format!("{:016x}", 0x1000 + 6))
            .expect("as the test wrote it");
        root["endTime"] = json!(ago(0.5));
    }
    let done = pull(&r, &env, &args);
    assert!(
        done.ok().contains("1 spans stored (5 already stored)"),
        "{}",
        done.stdout
    );

    // A failure half-way keeps the pages before it and the position; the
    // next pull resumes from the page that failed.
    {
        let mut rs = lf.records.lock().expect("the fake server's state");
        for n in 10..14 {
            rs.extend(langfuse_trace(
                n,
                1.0 - f64::from(n - 10) * 0.1,
                "1.1.0",
                false,
            ));
        }
    }
    lf.seen.lock().expect("the fake server's state").clear();
    *lf.fail_after.lock().expect("the fake server's state") = Some(1);
    let broken = pull(
        &r,
        &env,
        &[
            "traces",
            "pull",
            "langfuse",
            "--page-size",
            "5",
            "--retries",
            "1",
        ],
    );
    broken.code(1);
    assert!(
        broken.stderr.contains("HTTP 500")
            && broken.stderr.contains("ClickHouse is unavailable")
            && broken
                .stderr
                .contains("5 spans from 1 pages were stored before it"),
        "{}",
        broken.stderr
    );
    *lf.fail_after.lock().expect("the fake server's state") = None;
    lf.seen.lock().expect("the fake server's state").clear();
    let resumed = pull(&r, &env, &args);
    let out = resumed.ok();
    assert!(out.contains("resumed a pull"), "{out}");
    let asked = lf.seen.lock().expect("the fake server's state").clone();
    assert_eq!(
        query(&asked[0], "cursor").as_deref(),
        Some("lf:5"),
        "resumed at the cursor"
    );
    let stats = r.run(&["--json", "traces", "stats"]);
    assert_eq!(
        stats.json()["spans"].as_f64(),
        Some(30.0),
        "{}",
        stats.stdout
    );

    // --reset covers the window again; every span is still stored once.
    let reset = pull(
        &r,
        &env,
        &[
            "traces",
            "pull",
            "langfuse",
            "--reset",
            "--page-size",
            "1000",
        ],
    );
    assert!(
        reset.ok().contains("0 spans stored (30 already stored)"),
        "{}",
        reset.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langfuse_content_is_pulled_only_when_captured_and_bad_credentials_are_named() {
    let lf = Langfuse::start(false).await;
    lf.records
        .lock()
        .expect("as the test wrote it")
        .extend(langfuse_trace(1, 5.0, "1.0.0", false));
    let r = Repo::initialized();
    r.write(
        ".releaseops/config.yaml",
        &(r.read(".releaseops/config.yaml") + "traces:\n  capture_content: true\n"),
    );
    let env = lf.env();
    let ok = pull(&r, &envs(&env), &["traces", "pull", "langfuse"]);
    ok.ok();
    let asked = lf.seen.lock().expect("the fake server's state").clone();
    assert!(
        query(&asked[0], "fields")
            .expect("as the test wrote it")
            .contains("io")
    );
    let shown = r.run(&["traces", "show", &format!("{:032x}", 1)]);
    assert!(shown.ok().contains("refund order 42"), "{}", shown.stdout);

    // Wrong secret: refused, named, never shown (the server echoes it).
    let mut wrong = lf.env();
    wrong[1].1 = format!("{SK}-wrong");
    let bad = pull(&r, &envs(&wrong), &["traces", "pull", "langfuse"]);
    bad.code(1);
    assert!(
        bad.stderr.contains("refused the credentials (HTTP 401")
            && bad.stderr.contains("LANGFUSE_SECRET_KEY"),
        "{}",
        bad.stderr
    );
    // No keys at all: a usage error before anything is sent.
    let none = pull(
        &r,
        &[],
        &["traces", "pull", "langfuse", "--url", &lf.server.uri()],
    );
    none.code(2);
    assert!(
        none.stderr.contains("LANGFUSE_PUBLIC_KEY"),
        "{}",
        none.stderr
    );
    // Credentials in the URL are refused, not used.
    let in_url = format!("http://{PK}:{SK}@127.0.0.1:9");
    let url = pull(
        &r,
        &envs(&env),
        &["traces", "pull", "langfuse", "--url", &in_url],
    );
    url.code(2);
    assert!(url.stderr.contains("holds credentials"), "{}", url.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langsmith_runs_by_project_name_with_their_tree_errors_and_costs() {
    let server = MockServer::start().await;
    let project = "6b1d3f3c-2f0e-4c7e-9a57-3c1b2a0f9e11";
    Mock::given(method("GET"))
        .and(path("/api/v1/sessions"))
        .respond_with(move |req: &Request| {
            if req.headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(LS_KEY) {
                return ResponseTemplate::new(401).set_body_json(json!({"detail": "Unauthorized"}));
            }
            let name = query(req, "name").unwrap_or_default();
            let list: Vec<Value> = if name == "support-prod" {
                vec![json!({"id": project, "name": "support-prod"})]
            } else {
                vec![]
            };
            ResponseTemplate::new(200).set_body_json(list)
        })
        .mount(&server)
        .await;
    let runs: Arc<Mutex<Vec<Value>>> = Arc::default();
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let trace = "0193a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
    {
        let mut rs = runs.lock().expect("the fake server's state");
        rs.push(json!({
            "id": trace, "trace_id": trace, "name": "SupportAgent", "run_type": "CHAIN",
            "status": "SUCCESS", "start_time": ago(30.0).trim_end_matches('Z'),
            "end_time": ago(29.9).trim_end_matches('Z'), "parent_run_ids": [],
            "metadata": {"releaseops.bundle_id": "support-agent",
                         "releaseops.bundle_version": "1.1.0",
                         "releaseops.environment": "prod"}
        }));
        rs.push(json!({
            "id": "0193a3b4-5c6d-7e8f-9a0b-000000000002", "trace_id": trace,
            "name": "ChatOpenAI", "run_type": "LLM", "status": "SUCCESS",
            "start_time": ago(29.98), "end_time": ago(29.95), "parent_run_ids": [trace],
            "prompt_tokens": 200, "completion_tokens": 40, "total_tokens": 240,
            "total_cost": "0.00120", "metadata": {"ls_model_name": "gpt-4o"},
            "inputs": {"messages": [{"content": "secret order details"}]}
        }));
        rs.push(json!({
            "id": "0193a3b4-5c6d-7e8f-9a0b-000000000003", "trace_id": trace,
            "name": "lookup_order", "run_type": "TOOL", "status": "ERROR",
            "error": "TimeoutError: order service\nTraceback ...",
            "start_time": ago(29.94), "end_time": ago(29.92),
            "parent_run_ids": [trace, "0193a3b4-5c6d-7e8f-9a0b-000000000002"]
        }));
        rs.push(json!({
            "id": "0193a3b4-5c6d-7e8f-9a0b-000000000004", "trace_id": trace,
            "name": "pending", "run_type": "CHAIN", "status": "PENDING",
            "start_time": ago(29.9), "end_time": null, "parent_run_ids": [trace]
        }));
    }
    let (rs, bs) = (runs.clone(), bodies.clone());
    Mock::given(method("POST"))
        .and(path("/api/v2/runs/query"))
        .respond_with(move |req: &Request| {
            if req.headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(LS_KEY) {
                return ResponseTemplate::new(403).set_body_json(json!({"detail": "Forbidden"}));
            }
            let body: Value = serde_json::from_slice(&req.body).expect("as the test wrote it");
            bs.lock()
                .expect("the fake server's state")
                .push(body.clone());
            if body["project_ids"] != json!([project]) {
                return ResponseTemplate::new(400)
                    .set_body_json(json!({"detail": "unknown project"}));
            }
            let offset: usize = body["cursor"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let limit = body["page_size"].as_u64().unwrap_or(100) as usize;
            // LangSmith writes times without a zone: they are UTC.
            let utc = |v: &Value| {
                let s = v["start_time"]
                    .as_str()
                    .expect("as the test wrote it")
                    .to_string();
                if s.ends_with('Z') { s } else { s + "Z" }
            };
            let all: Vec<Value> = rs
                .lock()
                .expect("as the test wrote it")
                .iter()
                .map(|r| {
                    let mut c = r.clone();
                    c["start_time"] = json!(utc(r));
                    c
                })
                .collect();
            let (items, next) = page_of(
                &all,
                "start_time",
                body["min_start_time"].as_str().map(ts),
                body["max_start_time"].as_str().map(ts),
                false,
                offset,
                limit,
            );
            let items: Vec<Value> = items
                .into_iter()
                .map(|mut i| {
                    let orig = rs
                        .lock()
                        .expect("as the test wrote it")
                        .iter()
                        .find(|r| r["id"] == i["id"])
                        .cloned()
                        .expect("as the test wrote it");
                    i["start_time"] = orig["start_time"].clone();
                    i
                })
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": items, "next_cursor": next.map(|n| n.to_string())}))
        })
        .mount(&server)
        .await;

    let r = Repo::initialized();
    let env = [
        ("LANGSMITH_API_KEY", LS_KEY),
        ("LANGSMITH_ENDPOINT", &server.uri()),
    ];
    let unknown = pull(
        &r,
        &env,
        &["traces", "pull", "langsmith", "--project", "nope"],
    );
    unknown.code(2);
    assert!(
        unknown.stderr.contains("no project named 'nope'"),
        "{}",
        unknown.stderr
    );
    let ok = pull(
        &r,
        &env,
        &[
            "--json",
            "traces",
            "pull",
            "langsmith",
            "--project",
            "support-prod",
            "--page-size",
            "2",
        ],
    );
    let rep = ok.json();
    assert_eq!(rep["spans"].as_f64(), Some(3.0), "{}", ok.stdout);
    assert_eq!(rep["running"].as_f64(), Some(1.0), "{}", ok.stdout);
    assert_eq!(rep["pages"].as_f64(), Some(2.0), "{}", ok.stdout);
    let sent = bodies.lock().expect("the fake server's state").clone();
    let selects = sent[0]["selects"].as_array().expect("as the test wrote it");
    assert!(selects.contains(&json!("PARENT_RUN_IDS")) && !selects.contains(&json!("INPUTS")));

    let t = r.run(&[
        "--json",
        "traces",
        "show",
        "0193a3b45c6d7e8f9a0b1c2d3e4f5a6b",
    ]);
    let v = t.json();
    assert_eq!(
        v["trace"]["bundle_version"].as_str(),
        Some("1.1.0"),
        "{}",
        t.stdout
    );
    assert_eq!(v["trace"]["errors"].as_f64(), Some(1.0), "{}", t.stdout);
    assert_eq!(
        v["trace"]["input_tokens"].as_f64(),
        Some(200.0),
        "{}",
        t.stdout
    );
    let spans = v["spans"].as_array().expect("as the test wrote it");
    let tool = spans
        .iter()
        .find(|s| s["name"].as_str() == Some("lookup_order"))
        .expect("as the test wrote it");
    let llm = spans
        .iter()
        .find(|s| s["name"].as_str() == Some("ChatOpenAI"))
        .expect("as the test wrote it");
    assert_eq!(
        tool["parent_span_id"], llm["span_id"],
        "the parent is the last of parent_run_ids"
    );
    assert_eq!(
        tool["status_message"].as_str(),
        Some("TimeoutError: order service")
    );
    assert_eq!(llm["model"].as_str(), Some("gpt-4o"));
    assert_eq!(llm["cost"].as_f64(), Some(0.0012));
    assert!(!t.stdout.contains("secret order details"));

    // A wrong key: named, and the key never shown.
    let bad = pull(
        &r,
        &[
            (
                "LANGSMITH_API_KEY",
                "lsv2_pt_ffffffffffffffffffffffffffffffff_1",
            ),
            ("LANGSMITH_ENDPOINT", &server.uri()),
        ],
        &["traces", "pull", "langsmith", "--project", project],
    );
    bad.code(1);
    assert!(
        bad.stderr.contains("HTTP 403") && bad.stderr.contains("LANGSMITH_API_KEY"),
        "{}",
        bad.stderr
    );
}

/// A Phoenix span as its REST API returns it.
fn phoenix_span(
    trace: u32,
    id: u32,
    parent: Option<u32>,
    minutes_ago: f64,
    attrs: Value,
    status: &str,
) -> Value {
    json!({
        "name": if parent.is_none() { "agent" } else { "llm" },
        "context": {"trace_id": format!("{trace:032x}"), "span_id": format!("{id:016x}")},
        "parent_id": parent.map(|p| format!("{p:016x}")),
        "span_kind": if parent.is_none() { "AGENT" } else { "LLM" },
        "start_time": ago(minutes_ago), "end_time": ago(minutes_ago - 0.02),
        "status_code": status, "status_message": if status == "ERROR" { "boom" } else { "" },
        "attributes": attrs,
        "events": if status == "ERROR" {
            json!([{"name": "exception", "timestamp": ago(minutes_ago - 0.01),
                    "attributes": {"exception.type": "ValueError"}}])
        } else { json!([]) }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phoenix_spans_read_by_openinference_and_a_server_that_ignores_the_window() {
    let server = MockServer::start().await;
    let spans = [
        phoenix_span(
            1,
            1,
            None,
            20.0,
            json!({
                "releaseops": {"bundle_id": "support-agent", "bundle_version": "1.0.0", "environment": "prod"},
                "openinference": {"span": {"kind": "AGENT"}}
            }),
            "OK",
        ),
        phoenix_span(
            1,
            2,
            Some(1),
            19.9,
            json!({
                "llm.model_name": "claude-sonnet-4", "llm.token_count.prompt": 90,
                "llm.token_count.completion": 12,
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "issue_refund",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{\"amount\": 150}",
                "input.value": "please refund"
            }),
            "ERROR",
        ),
        // Two days old: an old server returns it although the window starts later.
        phoenix_span(
            2,
            3,
            None,
            60.0 * 48.0,
            json!({"releaseops.bundle_id": "support-agent"}),
            "OK",
        ),
    ];
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let sn = seen.clone();
    Mock::given(method("GET"))
        .and(path("/v1/projects/support%20prod/spans"))
        .respond_with(move |req: &Request| {
            if req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                != Some(&format!("Bearer {PHX_KEY}"))
            {
                return ResponseTemplate::new(401).set_body_string("Unauthorized");
            }
            sn.lock()
                .expect("the fake server's state")
                .push(req.clone());
            // An old server: no window filter, one span a page.
            let offset: usize = query(req, "cursor")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let page: Vec<Value> = spans.iter().skip(offset).take(1).cloned().collect();
            let next = (offset + 1 < spans.len()).then(|| (offset + 1).to_string());
            ResponseTemplate::new(200).set_body_json(json!({"data": page, "next_cursor": next}))
        })
        .mount(&server)
        .await;
    let r = Repo::initialized();
    let env = [
        ("PHOENIX_API_KEY", PHX_KEY),
        ("PHOENIX_BASE_URL", &server.uri()),
        ("PHOENIX_PROJECT_NAME", "support prod"),
    ];
    let ok = pull(&r, &env, &["traces", "pull", "phoenix", "--since", "24h"]);
    let out = ok.ok();
    assert!(
        out.contains("3 records in 3 pages, 2 spans stored"),
        "{out}"
    );
    assert!(
        ok.stderr.contains("1 records started outside the window"),
        "{}",
        ok.stderr
    );
    let asked = seen.lock().expect("the fake server's state").clone();
    assert!(query(&asked[0], "start_time").is_some() && query(&asked[0], "end_time").is_some());
    let t = r.run(&["--json", "traces", "show", &format!("{:032x}", 1)]);
    let v = t.json();
    assert_eq!(
        v["trace"]["bundle_id"].as_str(),
        Some("support-agent"),
        "{}",
        t.stdout
    );
    assert_eq!(v["trace"]["errors"].as_f64(), Some(1.0));
    let llm = v["spans"]
        .as_array()
        .expect("as the test wrote it")
        .iter()
        .find(|s| s["name"].as_str() == Some("llm"))
        .expect("as the test wrote it")
        .clone();
    assert_eq!(llm["model"].as_str(), Some("claude-sonnet-4"));
    assert_eq!(llm["error_type"].as_str(), Some("ValueError"));
    assert_eq!(llm["input_tokens"].as_f64(), Some(90.0));
    assert!(t.stdout.contains("issue_refund") && !t.stdout.contains("please refund"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_lying_servers_get_clear_errors_and_only_whole_pages_are_kept() {
    let r = Repo::initialized();
    // Nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("as the test wrote it");
        l.local_addr().expect("as the test wrote it").port()
    };
    let env = [("LANGFUSE_PUBLIC_KEY", PK), ("LANGFUSE_SECRET_KEY", SK)];
    let url = format!("http://127.0.0.1:{closed}");
    let down = pull(
        &r,
        &env,
        &[
            "traces",
            "pull",
            "langfuse",
            "--url",
            &url,
            "--retries",
            "1",
        ],
    );
    down.code(1);
    assert!(
        down.stderr.contains("cannot be reached") && down.stderr.contains("after 2 attempts"),
        "{}",
        down.stderr
    );

    let server = MockServer::start().await;
    // A cursor that never changes would page forever.
    Mock::given(method("GET"))
        .and(path("/api/public/v2/observations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": langfuse_trace(1, 5.0, "1.0.0", false), "meta": {"cursor": "same"}
        })))
        .mount(&server)
        .await;
    let looping = pull(
        &r,
        &env,
        &["traces", "pull", "langfuse", "--url", &server.uri()],
    );
    looping.code(1);
    assert!(
        looping.stderr.contains("same cursor twice")
            && looping
                .stderr
                .contains("3 spans from 1 pages were stored before it"),
        "{}",
        looping.stderr
    );
    // Resumed at that cursor, the server answers it again: stopped at once.
    let again = pull(
        &r,
        &env,
        &["traces", "pull", "langfuse", "--url", &server.uri()],
    );
    again.code(1);
    assert!(
        again.stderr.contains("same cursor twice") && !again.stderr.contains("stored before"),
        "{}",
        again.stderr
    );
    server.reset().await;
    // HTML where JSON belongs, and JSON of another shape.
    Mock::given(method("GET"))
        .and(path("/api/public/v2/observations"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let html = pull(
        &r,
        &env,
        &["traces", "pull", "langfuse", "--url", &server.uri()],
    );
    html.code(1);
    assert!(html.stderr.contains("not JSON"), "{}", html.stderr);
    Mock::given(method("GET"))
        .and(path("/api/public/v2/observations"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": "nothing", "token": SK})),
        )
        .mount(&server)
        .await;
    let shape = pull(
        &r,
        &env,
        &["traces", "pull", "langfuse", "--url", &server.uri()],
    );
    shape.code(1);
    assert!(
        shape.stderr.contains("not its API's shape"),
        "{}",
        shape.stderr
    );
    // A redirect is not followed (the credentials would go with it).
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/api/public/v2/observations"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "http://198.51.100.7/steal"),
        )
        .mount(&server)
        .await;
    let moved = pull(
        &r,
        &env,
        &["traces", "pull", "langfuse", "--url", &server.uri()],
    );
    moved.code(1);
    assert!(
        moved.stderr.contains("redirect (HTTP 302)"),
        "{}",
        moved.stderr
    );
    // Plain http to another machine with credentials: refused before sending.
    let far = pull(
        &r,
        &env,
        &["traces", "pull", "langfuse", "--url", "http://198.51.100.7"],
    );
    far.code(2);
    assert!(far.stderr.contains("use https"), "{}", far.stderr);

    // Only the looping server's first page (a whole page, with its
    // position) was stored; the failures after it stored nothing.
    let stats = r.run(&["--json", "traces", "stats"]);
    assert_eq!(
        stats.json()["spans"].as_f64(),
        Some(3.0),
        "{}",
        stats.stdout
    );
}

/// A Langfuse server that answers from a script: each request gets the
/// answer `script` gives for its number and cursor; every request is
/// logged with the moment it arrived.
type Script = dyn Fn(usize, Option<&str>) -> ResponseTemplate + Send + Sync;

async fn scripted(
    script: Box<Script>,
) -> (MockServer, Arc<Mutex<Vec<(std::time::Instant, Request)>>>) {
    let server = MockServer::start().await;
    let log: Arc<Mutex<Vec<(std::time::Instant, Request)>>> = Arc::default();
    let l = log.clone();
    Mock::given(method("GET"))
        .and(path("/api/public/v2/observations"))
        .respond_with(move |req: &Request| {
            let mut l = l.lock().expect("the fake server's state");
            l.push((std::time::Instant::now(), req.clone()));
            script(l.len(), query(req, "cursor").as_deref())
        })
        .mount(&server)
        .await;
    (server, log)
}

/// A pull from `url` (after `--reset`) that fails saying `why`.
fn fails_with(r: &Repo, env: &[(&str, &str)], url: &str, extra: &[&str], why: &str) -> Run {
    let mut args = vec!["traces", "pull", "langfuse", "--reset", "--url", url];
    args.extend_from_slice(extra);
    let run = pull(r, env, &args);
    run.code(1);
    assert!(run.stderr.contains(why), "{}", run.stderr);
    run
}

/// `secret` is in no file of the repository's `.releaseops/` (the trace
/// store, its journal and the saved positions included).
fn nowhere_in(r: &Repo, secret: &str) {
    for (file, bytes) in r.snapshot() {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{file} holds the credential"
        );
    }
}

fn page(data: Vec<Value>, cursor: Option<&str>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": data, "meta": {"cursor": cursor}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_cannot_plant_credentials_loop_or_flood_and_cursors_expire_cleanly() {
    // A secret of no known shape: only knowing it finds it.
    const ODD: &str = "Zq7hunter2Zq7hunter2";
    let env = [("LANGFUSE_PUBLIC_KEY", PK), ("LANGFUSE_SECRET_KEY", ODD)];
    let r = Repo::initialized();
    let no_odd = |run: &Run| {
        assert!(
            !run.stdout.contains(ODD) && !run.stderr.contains(ODD),
            "the credential was shown:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    };

    // 1. Echoed everywhere a span has strings, and first throttled with a
    // Retry-After that is waited for.
    let (server, log) = scripted(Box::new(|n, _| {
        if n == 1 {
            return ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .set_body_json(json!({"message": "slow down"}));
        }
        let mut t = langfuse_trace(1, 5.0, "1.0.0", true);
        t[0]["name"] = json!(format!("turn {ODD}"));
        t[0]["statusMessage"] = json!(format!("auth failed for {ODD}"));
        t[0]["metadata"]["attributes"]["client.secret"] = json!(ODD);
        t[0]["metadata"]["attributes"][format!("k-{ODD}")] = json!("x");
        t[1]["providedModelName"] = json!(format!("gpt {ODD}"));
        page(t, None)
    }))
    .await;
    let mut args = vec!["traces", "pull", "langfuse", "--url"];
    let url = server.uri();
    args.push(&url);
    let echoed = pull(&r, &env, &args);
    no_odd(&echoed);
    assert!(echoed.ok().contains("3 spans stored"), "{}", echoed.stdout);
    let times: Vec<std::time::Instant> = log
        .lock()
        .expect("the fake server's state")
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert!(
        times[1].duration_since(times[0]) >= Duration::from_millis(1900),
        "Retry-After: 2 was not waited for ({:?})",
        times[1].duration_since(times[0])
    );
    nowhere_in(&r, ODD);
    let shown = r.run(&["traces", "show", &format!("{:032x}", 1)]);
    assert!(shown.ok().contains("turn [redacted]"), "{}", shown.stdout);

    // 2. An error message that cuts the echoed secret at its length limit:
    // no part of it is shown.
    let (server, _) = scripted(Box::new(|_, _| {
        let msg = format!("{}{ODD}", "x".repeat(290));
        ResponseTemplate::new(400).set_body_json(json!({"message": msg}))
    }))
    .await;
    let url = server.uri();
    let cut = fails_with(&r, &env, &url, &[], "HTTP 400");
    no_odd(&cut);
    assert!(!cut.stderr.contains("Zq7hun"), "{}", cut.stderr);

    // 3. A cursor holding the credential never goes back out (the answer
    // loses the credential before it is read), nor into the store; cursors
    // going round (A, B, A) are caught.
    let (server, log) = scripted(Box::new(|n, _| {
        page(vec![], Some(&format!("c-{ODD}-{}", n.min(3))))
    }))
    .await;
    let url = server.uri();
    let planted = fails_with(&r, &env, &url, &[], "same cursor twice");
    no_odd(&planted);
    for (_, q) in log.lock().expect("the fake server's state").iter() {
        assert!(!q.url.as_str().contains(ODD), "sent back: {}", q.url);
    }
    nowhere_in(&r, ODD);
    let (server, _) = scripted(Box::new(|_, c| {
        page(vec![], Some(if c == Some("A") { "B" } else { "A" }))
    }))
    .await;
    let url = server.uri();
    fails_with(&r, &env, &url, &[], "same cursor twice");

    // 4. Empty pages without end stop the pull; a page larger than asked
    // for is refused.
    let (server, log) = scripted(Box::new(|n, _| page(vec![], Some(&format!("e{n}"))))).await;
    let url = server.uri();
    fails_with(&r, &env, &url, &[], "no records and a next cursor");
    assert_eq!(log.lock().expect("the fake server's state").len(), 100);
    let (server, _) = scripted(Box::new(|_, _| {
        let mut t = langfuse_trace(1, 5.0, "1.0.0", false);
        t.extend(langfuse_trace(2, 4.0, "1.0.0", false));
        page(t, None)
    }))
    .await;
    let url = server.uri();
    fails_with(
        &r,
        &env,
        &url,
        &["--page-size", "2"],
        "it holds 6 records, and pages of 2 were asked for",
    );

    // A page of millions of tiny values is refused before it is read
    // (each would cost some 80 bytes of memory once read).
    let (server, _) = scripted(Box::new(|_, _| {
        let body = format!("{{\"data\":[{}0],\"meta\":{{}}}}", "0,".repeat(4_100_000));
        ResponseTemplate::new(200).set_body_raw(body, "application/json")
    }))
    .await;
    let url = server.uri();
    fails_with(&r, &env, &url, &[], "JSON values, more than");

    // 5. A saved cursor the platform has expired: the window is pulled
    // again from its start.
    let (server, log) = scripted(Box::new(|n, c| match (n, c) {
        (1, None) => page(langfuse_trace(1, 5.0, "1.0.0", false), Some("old")),
        (2, Some("old")) => ResponseTemplate::new(500).set_body_json(json!({"message": "down"})),
        (_, Some("old")) => {
            ResponseTemplate::new(400).set_body_json(json!({"message": "Invalid cursor"}))
        }
        (_, None) => page(langfuse_trace(1, 5.0, "1.0.0", false), Some("fresh")),
        (_, Some(_)) => page(langfuse_trace(2, 4.0, "1.0.0", false), None),
    }))
    .await;
    let url = server.uri();
    let stopped = pull(
        &r,
        &env,
        &[
            "traces",
            "pull",
            "langfuse",
            "--reset",
            "--retries",
            "0",
            "--url",
            &url,
        ],
    );
    stopped.code(1);
    let resumed = pull(&r, &env, &["traces", "pull", "langfuse", "--url", &url]);
    let out = resumed.ok();
    assert!(
        out.contains("resumed a pull") && out.contains("pulled again from its start"),
        "{out}"
    );
    let cursors: Vec<Option<String>> = log
        .lock()
        .expect("the fake server's state")
        .iter()
        .map(|(_, q)| query(q, "cursor"))
        .collect();
    // (Then the tail since the interrupted pull began, as any pull does.)
    assert_eq!(
        cursors[..5],
        [
            None,
            Some("old".into()),
            Some("old".into()),
            None,
            Some("fresh".into())
        ]
    );

    // 5b. A refused record keeps its window uncovered (a fixed server or a
    // newer releaseops takes it later); one running for more than a day is
    // taken as abandoned and holds nothing back.
    let (server, log) = scripted(Box::new(|_, _| {
        let mut t = langfuse_trace(1, 5.0, "1.0.0", false);
        t[2].as_object_mut()
            .expect("as written")
            .remove("startTime");
        let mut old = langfuse_trace(2, 30.0 * 60.0, "1.0.0", false);
        old[0]
            .as_object_mut()
            .expect("as written")
            .remove("endTime");
        t.push(old[0].clone());
        page(t, None)
    }))
    .await;
    let url = server.uri();
    let args = ["traces", "pull", "langfuse", "--since", "7d", "--url", &url];
    let refused = pull(&r, &env, &args);
    let out = refused.ok();
    assert!(
        out.contains("1 still running after a day")
            && refused.stderr.contains("startTime is missing")
            && refused.stderr.contains("not counted as covered"),
        "{out}\n{}",
        refused.stderr
    );
    let again = pull(&r, &env, &args);
    again.ok();
    let asked = log.lock().expect("the fake server's state").clone();
    let from = ts(&query(&asked[1].1, "fromStartTime").expect("a window"));
    assert!(
        jiff::Timestamp::now().duration_since(from) > jiff::SignedDuration::from_hours(24 * 6),
        "the window with a refused record was taken as covered: asked from {from}"
    );

    // 6. Another project's keys on the same server start their own
    // coverage: the whole window is asked for.
    let other = [
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-other-project"),
        ("LANGFUSE_SECRET_KEY", ODD),
    ];
    // (The log is kept: the script counts requests.)
    let before = log.lock().expect("the fake server's state").len();
    let theirs = pull(&r, &other, &["traces", "pull", "langfuse", "--url", &url]);
    theirs.ok();
    let asked = log.lock().expect("the fake server's state").clone();
    let from = ts(&query(&asked[before].1, "fromStartTime").expect("a window"));
    assert!(
        jiff::Timestamp::now().duration_since(from) > jiff::SignedDuration::from_hours(23),
        "the other project's pull asked only from {from}"
    );
}
