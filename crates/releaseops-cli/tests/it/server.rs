//! `releaseops serve`, as a real process on a loopback port, driven over
//! HTTP: resolved bundles and their ETags, the long-poll watch and the event
//! stream, tokens and roles, API promotions racing CLI promotions, a
//! tampered object, bad input, and a shutdown that finishes a transaction.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::Repo;
use crate::common::server::{Server, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const VIEWER: &str = "viewer-token-0123456789";
const DEPLOYER: &str = "deployer-token-0123456789";
const APPROVER: &str = "approver-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

fn tokens() -> String {
    format!(
        "viewer:Vic Viewer <vic@example.test>:{VIEWER},deployer:CI bot <ci@example.test>:{DEPLOYER},approver:Alice Approver <alice@example.test>:{APPROVER},admin:Ada Admin <ada@example.test>:{ADMIN}"
    )
}

/// support-agent 1.0.0 and 1.1.0, 1.0.0 live in dev.
fn repo() -> Repo {
    let r = Repo::initialized();
    r.create_support_agent("1.0.0", "v1.0.0", "0.2");
    r.create_support_agent("1.1.0", "v1.1.0", "0.2");
    r.run(&["promote", "support-agent", "1.0.0", "dev"]).ok();
    r
}

async fn get(url: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut rq = client().get(url);
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    let resp = rq.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(url: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut rq = client().post(url).json(body);
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    let resp = rq.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Waits (up to 20 s) until `f` holds; a synchronisation point, not a timing assertion.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut f: F) {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_bundle_carries_its_hash_as_etag_and_a_poller_pays_a_304() {
    let r = repo();
    let s = Server::start(&r, &[], &[]);
    let url = s.at("/v1/resolve/support-agent@dev");
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let b: Value = resp.json().await.unwrap();
    assert_eq!(
        etag,
        format!("\"1.0.0@{}\"", b["bundle_hash"].as_str().unwrap())
    );
    assert_eq!(
        (b["id"].as_str(), b["version"].as_str()),
        (Some("support-agent"), Some("1.0.0"))
    );
    assert_eq!(b["environment"], "dev");
    assert!(
        b["prompts"]["system"]["template"]
            .as_str()
            .unwrap()
            .contains("Greet {{ user_name }} warmly.")
    );
    assert_eq!(
        b["policies"]["tools"]["data"]["tools"][0]["name"],
        "issue_refund"
    );
    assert_eq!(b["model"]["model"], "claude-sonnet-4-5");
    assert_eq!(
        b["telemetry"]["attributes"]["releaseops.bundle_version"],
        "1.0.0"
    );
    assert_eq!(b["telemetry"]["baggage"]["releaseops.environment"], "dev");

    // Unchanged: a bodyless 304 with the same tag.
    let resp = client()
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag);
    assert!(resp.bytes().await.unwrap().is_empty());

    // A promotion from the CLI is picked up without a restart.
    r.run(&["promote", "support-agent", "1.1.0", "dev"]).ok();
    eventually("the new version is served", async || {
        let resp = client()
            .get(&url)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        resp.status() == StatusCode::OK && resp.json::<Value>().await.unwrap()["version"] == "1.1.0"
    })
    .await;

    // A pinned version is immutable.
    let resp = client()
        .get(s.at("/v1/resolve/support-agent==1.0.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["environment"], Value::Null);
    assert_eq!(
        resp_etag_of(&s, "/v1/resolve/support-agent==1.0.0").await,
        etag,
        "the same version and content: the same tag"
    );

    // The same documents as the CLI's --json.
    let (st, envs) = get(&s.at("/v1/environments"), None).await;
    assert_eq!(st, StatusCode::OK);
    let cli = r.run(&["--json", "env", "list"]).json();
    assert_eq!(
        envs["environments"].to_string(),
        cli["environments"].to_string()
    );
    let (_, dev) = get(&s.at("/v1/environments/dev"), None).await;
    assert_eq!(dev["bundles"][0]["version"], "1.1.0");
    let (_, hist) = get(&s.at("/v1/history?env=dev&event=promote&limit=1"), None).await;
    assert_eq!(hist.as_array().unwrap().len(), 1);
    assert_eq!(hist[0]["version"], "1.1.0");
    let (_, d) = get(
        &s.at("/v1/diff?from=support-agent==1.0.0&to=support-agent@dev"),
        None,
    )
    .await;
    assert_eq!(d["new"], "support-agent@1.1.0", "{d}");
    let (_, m) = get(&s.at("/v1/bundles/support-agent/versions/1.1.0"), None).await;
    assert_eq!(m["deployed_in"], json!(["dev"]));
    let (_, list) = get(&s.at("/v1/bundles"), None).await;
    assert_eq!(list[0]["id"], "support-agent");
}

async fn resp_etag_of(s: &Server, path: &str) -> String {
    let resp = client().get(s.at(path)).send().await.expect("request");
    resp.headers()["etag"].to_str().expect("ascii").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_versions_with_the_same_content_are_told_apart() {
    let r = repo();
    // 1.2.0 has exactly 1.1.0's artifacts and model: the same bundle hash.
    r.create_support_agent("1.2.0", "v1.1.0", "0.2");
    r.run(&["promote", "support-agent", "1.1.0", "dev"]).ok();
    let s = Server::start(&r, &[], &[]);
    let (_, a) = get(&s.at("/v1/resolve/support-agent==1.1.0"), None).await;
    let (_, b) = get(&s.at("/v1/resolve/support-agent==1.2.0"), None).await;
    assert_eq!(a["bundle_hash"], b["bundle_hash"]);
    assert_eq!(
        (a["version"].as_str(), b["version"].as_str()),
        (Some("1.1.0"), Some("1.2.0"))
    );
    let before = resp_etag_of(&s, "/v1/resolve/support-agent@dev").await;
    r.run(&["promote", "support-agent", "1.2.0", "dev"]).ok();
    let resp = client()
        .get(s.at("/v1/watch/support-agent@dev?timeout=30"))
        .header("If-None-Match", &before)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the move is seen though the content is the same"
    );
    assert_ne!(resp.headers()["etag"].to_str().unwrap(), before);
    assert_eq!(resp.json::<Value>().await.unwrap()["version"], "1.2.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_answers_when_the_pointer_moves_and_events_stream_every_move() {
    let r = repo();
    let s = Server::start(&r, &[], &[]);
    let url = s.at("/v1/resolve/support-agent@dev");
    let etag = client().get(&url).send().await.unwrap().headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();

    // Nothing moves: the watch ends with a 304 when its timeout passes.
    let resp = client()
        .get(s.at("/v1/watch/support-agent@dev?timeout=1"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    // The event stream opens with a snapshot.
    let mut events = client()
        .get(s.at("/v1/events?env=dev"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        seen.push_str(&String::from_utf8_lossy(
            &events.chunk().await.unwrap().unwrap(),
        ));
    }
    assert!(seen.contains("event: snapshot"), "{seen}");
    assert!(seen.contains(r#""support-agent":"1.0.0""#), "{seen}");

    // A held watch answers with the new bundle when the CLI promotes.
    let watch = tokio::spawn({
        let u = s.at("/v1/watch/support-agent@dev?timeout=60");
        let etag = etag.clone();
        async move {
            client()
                .get(u)
                .header("If-None-Match", etag)
                .send()
                .await
                .unwrap()
        }
    });
    let health = s.at("/healthz");
    eventually("the watch is held", async || {
        get(&health, None).await.1["watching"] == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!watch.is_finished(), "the watch waits while nothing moves");
    r.run(&["promote", "support-agent", "1.1.0", "dev"]).ok();
    let resp = watch.await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_ne!(resp.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(resp.json::<Value>().await.unwrap()["version"], "1.1.0");

    // ...and the stream carries the move.
    let mut seen = String::new();
    while !seen.contains("event: moved") || !seen.ends_with("\n\n") {
        seen.push_str(&String::from_utf8_lossy(
            &events.chunk().await.unwrap().unwrap(),
        ));
    }
    let data = seen
        .lines()
        .skip_while(|l| *l != "event: moved")
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let m: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        (&m["env"], &m["bundle_id"], &m["from"], &m["to"]),
        (
            &json!("dev"),
            &json!("support-agent"),
            &json!("1.0.0"),
            &json!("1.1.0")
        )
    );

    // A watch on a pinned version is refused: it never moves.
    let (st, e) = get(&s.at("/v1/watch/support-agent==1.0.0"), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_guard_every_endpoint_and_the_owner_is_the_actor() {
    let r = repo();
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    let resolve = s.at("/v1/resolve/support-agent@dev");

    // Reads need a token; no token, a wrong one and a malformed header get
    // the very same answer.
    let (st, none) = get(&resolve, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, wrong) = get(&resolve, Some("not-a-token-0123456789")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(none, wrong);
    let resp = client()
        .get(&resolve)
        .header("Authorization", format!("Basic {VIEWER}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(resp.json::<Value>().await.unwrap(), none);
    let resp = client()
        .get(&resolve)
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["cache-control"],
        "private, no-cache",
        "an answer to a token is no shared cache's to keep"
    );
    // Health and the OpenAPI document are public.
    assert_eq!(get(&s.at("/healthz"), None).await.0, StatusCode::OK);
    let (st, doc) = get(&s.at("/openapi.json"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["paths"]["/v1/promote"]["post"].is_object());

    let promote = s.at("/v1/promote");
    let body = json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "dev", "reason": "API test"});
    let before = r.snapshot();
    let (st, e_none) = post(&promote, None, &body).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, e_wrong) = post(&promote, Some("deployer-token-012345678X"), &body).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(e_none, e_wrong, "nothing tells whether a token exists");
    for t in [VIEWER, APPROVER] {
        let (st, e) = post(&promote, Some(t), &body).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(e["error"]["kind"], "forbidden");
    }
    // Overriding gates is for admins only.
    let skip = json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "dev", "reason": "x", "skip_gates": true});
    assert_eq!(
        post(&promote, Some(DEPLOYER), &skip).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(r.snapshot(), before, "refused requests changed nothing");

    let (st, out) = post(&promote, Some(DEPLOYER), &body).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(out["promoted"], true);
    let hist = r.run(&["--json", "history", "-n", "1"]).json();
    assert_eq!(hist[0]["actor"], "CI bot <ci@example.test>");
    assert_eq!(hist[0]["reason"], "API test");
    // Committed to git as the CLI does, authored by the token's owner.
    assert!(
        r.git(&["log", "-1", "--format=%an <%ae>"])
            .contains("CI bot <ci@example.test>")
    );

    // Approvals: the approver's, not the deployer's.
    let approve = s.at("/v1/approve");
    let ab = json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "prod"});
    assert_eq!(
        post(&approve, Some(DEPLOYER), &ab).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, out) = post(&approve, Some(APPROVER), &ab).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(out["actor"], "Alice Approver <alice@example.test>");
    // A gate that blocks answers 409 with the outcome.
    let (st, out) = post(
        &promote,
        Some(ADMIN),
        &json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "prod"}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{out}");
    assert_eq!(out["error"]["kind"], "blocked");
    assert!(!out["outcome"]["blocked_by"].as_array().unwrap().is_empty());
    // Rollback by the deployer.
    let (st, out) = post(
        &s.at("/v1/rollback"),
        Some(DEPLOYER),
        &json!({"bundle_id": "support-agent", "env": "dev", "reason": "bad answers"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(
        (out["from"].as_str(), out["to"].as_str()),
        (Some("1.1.0"), Some("1.0.0"))
    );
    // Reject, by the approver; the version can never be promoted again.
    let (st, out) = post(
        &s.at("/v1/reject"),
        Some(APPROVER),
        &json!({"bundle_id": "support-agent", "version": "1.1.0", "reason": "unsafe refunds"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let (st, out) = post(&promote, Some(ADMIN), &body).await;
    assert_eq!(st, StatusCode::CONFLICT, "{out}");
    r.run(&["history", "verify"]).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_off_without_tokens_and_reads_can_be_public_on_purpose() {
    let r = repo();
    let s = Server::start(&r, &[], &[]);
    let (st, e) = post(
        &s.at("/v1/promote"),
        Some(ADMIN),
        &json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "dev"}),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(e["error"]["kind"], "writes_disabled");
    drop(s);

    let s = Server::start(
        &r,
        &["--public-reads"],
        &[("RELEASEOPS_API_TOKENS", &tokens())],
    );
    assert_eq!(
        get(&s.at("/v1/resolve/support-agent@dev"), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(
            &s.at("/v1/rollback"),
            None,
            &json!({"bundle_id": "support-agent", "env": "dev"})
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    drop(s);

    // A token source that holds no token fails closed.
    let run = r
        .command(&["serve", "--addr", "127.0.0.1:0"])
        .env("RELEASEOPS_API_TOKENS", " , ")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("holds no token"));
    std::fs::write(r.path().join("empty.yaml"), "tokens:\n").unwrap();
    let run = r.run(&["serve", "--addr", "127.0.0.1:0", "--tokens", "empty.yaml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // Listening beyond loopback with no tokens is refused.
    let run = r.run(&["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no tokens"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_new_prints_a_token_once_and_the_server_accepts_it() {
    let r = repo();
    let file = r.path().join("api-tokens.yaml");
    let f = file.to_str().unwrap();
    let run = r.run(&[
        "token",
        "new",
        "--owner",
        "Rel Bot <rel@example.test>",
        "--role",
        "deployer",
        "--file",
        f,
    ]);
    let token = run.ok().trim().to_string();
    assert!(token.starts_with("rops_"), "{token}");
    assert!(!std::fs::read_to_string(&file).unwrap().contains(&token));
    let s = Server::start(&r, &["--tokens", f], &[]);
    let (st, out) = post(
        &s.at("/v1/promote"),
        Some(&token),
        &json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "dev"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let hist = r.run(&["--json", "history", "-n", "1"]).json();
    assert_eq!(hist[0]["actor"], "Rel Bot <rel@example.test>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_promotions_racing_cli_promotions_lose_nothing() {
    let r = repo();
    for (version, prompt) in [("1.0.0", "v1.0.0"), ("1.1.0", "v1.1.0")] {
        let artifact = format!("system=onboarding:{prompt}");
        r.run(&[
            "bundle",
            "create",
            "billing-agent",
            "-v",
            version,
            "-a",
            &artifact,
            "--policy",
            "tools=policies/tools.yaml",
            "-m",
            "claude-sonnet-4-5",
            "--provider",
            "anthropic",
        ])
        .ok();
    }
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);
    let records_before = count(&r.run(&["--json", "history", "-n", "0"]).json());
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    const ROUNDS: usize = 8;
    // The CLI flips billing-agent while the API flips support-agent, both
    // in dev, so every change rewrites the same environment file.
    let cli = {
        let path = r.path().to_path_buf();
        let env = r.env.clone();
        std::thread::spawn(move || {
            let mut ok = 0;
            for i in 0..ROUNDS {
                let v = if i % 2 == 0 { "1.0.0" } else { "1.1.0" };
                let mut c = crate::common::releaseops();
                c.current_dir(&path)
                    .args(["promote", "billing-agent", v, "dev"])
                    .env("RELEASEOPS_ACTOR", "Test Dev <dev@example.test>")
                    .env_remove("RELEASEOPS_NOW");
                for (k, val) in &env {
                    c.env(k, val);
                }
                let out = c.output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                ok += 1;
            }
            ok
        })
    };
    let mut api_ok = 0;
    for i in 0..ROUNDS {
        let v = if i % 2 == 0 { "1.1.0" } else { "1.0.0" };
        let (st, out) = post(
            &s.at("/v1/promote"),
            Some(DEPLOYER),
            &json!({"bundle_id": "support-agent", "version": v, "env": "dev"}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{out}");
        api_ok += 1;
    }
    let cli_ok = cli.join().unwrap();
    let hist = r.run(&["--json", "history", "-n", "0"]).json();
    assert_eq!(count(&hist), records_before + api_ok + cli_ok);
    let by = |actor: &str| {
        hist.as_array()
            .unwrap()
            .iter()
            .filter(|rec| rec["actor"] == actor)
            .count()
    };
    assert_eq!(by("CI bot <ci@example.test>"), ROUNDS);
    // Both pointers are what their last promotion set.
    let envs = r.run(&["--json", "env", "list"]).json();
    let text = envs["environments"][0]["bundles"].to_string();
    assert!(
        text.contains(r#""bundle_id":"billing-agent","version":"1.1.0""#),
        "{text}"
    );
    assert!(
        text.contains(r#""bundle_id":"support-agent","version":"1.0.0""#),
        "{text}"
    );
    r.run(&["history", "verify"]).ok();
    let (_, b) = get(&s.at("/v1/resolve/billing-agent@dev"), Some(VIEWER)).await;
    assert_eq!(b["version"], "1.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_object_is_refused_and_bad_input_gets_a_clear_error() {
    let r = repo();
    let m = r
        .run(&[
            "--json",
            "bundle",
            "inspect",
            "support-agent",
            "-v",
            "1.1.0",
        ])
        .json();
    let hash = m["artifacts"]["policies"]["tools"]["content_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = hash.trim_start_matches("sha256:");
    let obj = r
        .path()
        .join(".releaseops/objects/sha256")
        .join(&hex[..2])
        .join(&hex[2..]);
    std::fs::write(
        &obj,
        "tools:\n- name: issue_refund\n  allowed: true\n  max: 100000\n",
    )
    .unwrap();
    let s = Server::start(&r, &[], &[]);
    let (st, e) = get(&s.at("/v1/resolve/support-agent==1.1.0"), None).await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{e}");
    assert_eq!(e["error"]["kind"], "verify_failed");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("tools") && msg.contains("hash"), "{msg}");
    let root = r.path().canonicalize().unwrap();
    assert!(
        !msg.contains(root.to_str().unwrap()),
        "no machine paths: {msg}"
    );
    assert!(
        e["error"]["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "{e}"
    );
    let (_, e) = get(&s.at("/v1/resolve/support-agent@nowhere"), None).await;
    assert!(
        !e.to_string().contains(root.to_str().unwrap()),
        "no machine paths: {e}"
    );
    // 1.0.0 shares that object (same content, same hash): refused too.
    let (st, e) = get(&s.at("/v1/resolve/support-agent@dev"), None).await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{e}");

    for (path, want) in [
        ("/v1/resolve/..%2F..%2Fetc@dev", StatusCode::BAD_REQUEST),
        ("/v1/resolve/support-agent", StatusCode::BAD_REQUEST),
        ("/v1/environments/..%2Fetc", StatusCode::BAD_REQUEST),
        (
            "/v1/bundles/support-agent/versions/..%2F..",
            StatusCode::BAD_REQUEST,
        ),
        ("/v1/eval-reports/..%2Fx", StatusCode::BAD_REQUEST),
        ("/v1/resolve/support-agent@nowhere", StatusCode::NOT_FOUND),
        ("/v1/environments/nowhere", StatusCode::NOT_FOUND),
        ("/v1/agent/decisions/dec-000042", StatusCode::NOT_FOUND),
        ("/v1/history?event=explode", StatusCode::BAD_REQUEST),
        ("/v1/history?since=yesterday", StatusCode::BAD_REQUEST),
        ("/v1/history?colour=red", StatusCode::BAD_REQUEST),
        ("/v1/nothing-here", StatusCode::NOT_FOUND),
    ] {
        let (st, e) = get(&s.at(path), None).await;
        assert_eq!(st, want, "{path}: {e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {e}"
        );
    }
    let long = format!("/v1/resolve/{}@dev", "a".repeat(300));
    assert_eq!(get(&s.at(&long), None).await.0, StatusCode::BAD_REQUEST);
    let long = format!("/v1/environments/{}", "a".repeat(200));
    assert_eq!(get(&s.at(&long), None).await.0, StatusCode::BAD_REQUEST);
    // A wrong method...
    let resp = client().delete(s.at("/v1/promote")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    drop(s);
    // ...and, with tokens, the body limit and malformed bodies.
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    let big = json!({"bundle_id": "support-agent", "version": "1.0.0", "env": "dev", "reason": "x".repeat(100_000)});
    let (st, e) = post(&s.at("/v1/promote"), Some(ADMIN), &big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert_eq!(e["error"]["kind"], "too_large");
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut rq = client()
            .post(s.at("/v1/promote"))
            .bearer_auth(ADMIN)
            .body(body);
        if let Some(ct) = content_type {
            rq = rq.header("content-type", ct);
        }
        rq.send()
    };
    let json_ct = Some("application/json");
    assert_eq!(
        raw("{not json", json_ct).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    // Only JSON, and only an object (serde would read a struct from an array).
    let good = r#"{"bundle_id": "support-agent", "version": "1.0.0", "env": "dev"}"#;
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let resp = raw(good, ct).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
    }
    let resp = raw(
        r#"["support-agent", "1.0.0", "dev", null, false, false]"#,
        json_ct,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("not a JSON object"));
    // Two Authorization headers: which one would count?
    let resp = client()
        .post(s.at("/v1/promote"))
        .header("authorization", format!("Bearer {VIEWER}"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (st, e) = post(
        &s.at("/v1/promote"),
        Some(ADMIN),
        &json!({"bundle_id": "support-agent", "version": "1.0.0", "env": "dev", "force": true}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("force"),
        "{e}"
    );
    let (st, e) = post(
        &s.at("/v1/promote"),
        Some(ADMIN),
        &json!({"bundle_id": "../../etc", "version": "1.0.0", "env": "dev"}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_served_and_documented() {
    let r = repo();
    let s = Server::start(&r, &[], &[]);
    let (_, doc) = get(&s.at("/openapi.json"), None).await;
    for (method, path) in &releaseops_server::routes() {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
        let concrete = path
            .replace("{env}", "dev")
            .replace("{id}", "support-agent")
            .replace("{version}", "1.0.0")
            .replace("{reference}", "support-agent@dev")
            .replace("{run_id}", "none");
        let resp = match *method {
            "get" if path.starts_with("/v1/watch") => client()
                .get(s.at(&format!("{concrete}?timeout=1")))
                .send()
                .await
                .unwrap(),
            "get" if *path == "/v1/events" => {
                let resp = client().get(s.at(&concrete)).send().await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                continue;
            }
            "get" => client().get(s.at(&concrete)).send().await.unwrap(),
            _ => client()
                .post(s.at(&concrete))
                .json(&json!({}))
                .send()
                .await
                .unwrap(),
        };
        // Not the fallback: the route exists (its own answer may be an error).
        if resp.status() == StatusCode::NOT_FOUND {
            let e: Value = resp.json().await.unwrap();
            assert_ne!(e["error"]["message"], "no such endpoint", "{method} {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_transaction_in_flight() {
    let r = repo();
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    // Hold the store lock, as a long CLI change would.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(r.path().join(".releaseops/.lock"))
        .unwrap();
    lock.lock().unwrap();
    let promote = tokio::spawn({
        let u = s.at("/v1/promote");
        async move {
            post(
                &u,
                Some(DEPLOYER),
                &json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "dev"}),
            )
            .await
        }
    });
    let health = s.at("/healthz");
    eventually("the promotion is in flight", async || {
        get(&health, None).await.1["in_flight"] == 1
    })
    .await;
    // SIGTERM while it waits for the lock; once the server has stopped
    // listening, let the promotion go.
    let addr = s.url.trim_start_matches("http://").to_string();
    let stopper = std::thread::spawn(move || s.stop());
    eventually("the server stops listening", async || {
        tokio::net::TcpStream::connect(&addr).await.is_err()
    })
    .await;
    assert!(!promote.is_finished());
    lock.unlock().unwrap();
    let (st, out) = promote.await.unwrap();
    assert_eq!(st, StatusCode::OK, "{out}");
    let (status, stderr) = stopper.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("1 change(s) in flight were finished first"),
        "{stderr}"
    );
    let hist = r.run(&["--json", "history", "-n", "1"]).json();
    assert_eq!(hist[0]["version"], "1.1.0");
    r.run(&["history", "verify"]).ok();
}

/// Runs the binary with a deadline: a hang fails the test instead of
/// hanging it.
fn run_within(r: &Repo, args: &[&str], limit: Duration) -> crate::common::Run {
    let mut child = r
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    crate::common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_writer_blocks_no_reader_and_writers_fail_naming_it() {
    let r = repo();
    // A model that accepts and never answers keeps `agent decide` inside
    // its transaction, holding the writer lock.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &format!(
            "{cfg}lock:\n  wait_seconds: 1\nagent:\n  llm:\n    provider: openai-compatible\n    model: m\n    base_url: http://{addr}\n    timeout_ms: 20000\n"
        ),
    );
    r.commit_all("config");
    r.write(
        "ctx.json",
        r#"{"env": "prod", "feature_risk": "LOW", "service_criticality": "LOW", "day_of_week": "TUE", "hour_of_day": 11}"#,
    );
    let mut writer = r
        .command(&["agent", "decide", "--context", "ctx.json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent decide starts");
    let pid = writer.id();
    let start = Instant::now();
    while !r
        .read(".releaseops/.lock")
        .contains(&format!("\"pid\":{pid}"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the writer never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stop = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill runs");
    };
    stop("-STOP");
    // Readers go on.
    for args in [
        &["env", "list"][..],
        &["history", "verify"],
        &["bundle", "list"],
        &["promote", "support-agent", "1.1.0", "dev", "--dry-run"],
    ] {
        let o = run_within(&r, args, Duration::from_secs(20));
        assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
    }
    // Writers wait their bounded time and say who is in the way.
    let o = run_within(
        &r,
        &["--json", "promote", "support-agent", "1.1.0", "dev"],
        Duration::from_secs(20),
    );
    assert_eq!(o.code, 1, "{}", o.stdout);
    let e = o.json();
    assert_eq!(e["error"]["kind"], "locked", "{e}");
    let msg = e["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains(&format!("held by process {pid}")) && msg.contains("agent decide"),
        "{e}"
    );
    // So does the API: reads answer, a change gets 503 locked.
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    let (st, _) = get(&s.at("/v1/environments"), Some(VIEWER)).await;
    assert_eq!(st, StatusCode::OK);
    let body =
        json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "dev", "reason": "r"});
    let (st, e) = post(&s.at("/v1/promote"), Some(DEPLOYER), &body).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    assert_eq!(e["error"]["kind"], "locked", "{e}");
    stop("-CONT");
    let _ = writer.kill();
    let _ = writer.wait();
    // With the writer gone, changes go through again.
    r.run(&["promote", "support-agent", "1.1.0", "dev"]).ok();
}

/// Sends `head` on a fresh connection and returns what comes back before
/// the server closes it (or 5 s pass).
fn raw_exchange(addr: &str, head: &str) -> String {
    use std::io::Write;
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.write_all(head.as_bytes()).expect("send");
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_clients_are_cut_off_capped_and_answered_503() {
    let r = repo();
    let s = Server::start(
        &r,
        &["--max-connections", "16", "--header-timeout", "1"],
        &[],
    );
    let addr = s.url.trim_start_matches("http://").to_string();
    // Idle connections and a slowloris that never finishes its headers.
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(std::net::TcpStream::connect(&addr).expect("connect"));
    }
    {
        use std::io::Write;
        let _ = held[0].write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    }
    // One too many gets an answer, not silence.
    let busy = raw_exchange(&addr, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy}");
    assert!(
        busy.to_ascii_lowercase().contains("retry-after: 1"),
        "{busy}"
    );
    // The header timeout frees every slot they held.
    for mut c in held {
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = Vec::new();
        // Closed by the server (an end of file, or a reset), never left
        // open until the read times out.
        match c.read_to_end(&mut buf) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        let text = String::from_utf8_lossy(&buf);
        assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    let (st, h) = get(&s.at("/healthz"), None).await;
    assert_eq!(st, StatusCode::OK);
    // An open event stream is counted.
    let mut stream = client().get(s.at("/v1/events")).send().await.unwrap();
    let _ = stream.chunk().await;
    eventually("the stream is counted", async || {
        get(&s.at("/healthz"), None).await.1["event_streams"] == 1
    })
    .await;
    drop(stream);
    eventually("the stream ends", async || {
        get(&s.at("/healthz"), None).await.1["event_streams"] == 0
    })
    .await;
    assert!(h["connections"].as_u64().is_some(), "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_anonymous_writes_and_long_lived_requests_cannot_take_the_server() {
    let r = repo();
    let s = Server::start(
        &r,
        &["--max-connections", "4", "--header-timeout", "1"],
        &[("RELEASEOPS_API_TOKENS", &tokens())],
    );
    let addr = s.url.trim_start_matches("http://").to_string();
    let promise = |auth: &str| {
        format!(
            "POST /v1/promote HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"bundle_id\""
        )
    };
    // No token: refused at once, before the (never sent) body.
    let a = raw_exchange(&addr, &promise(""));
    assert!(a.starts_with("HTTP/1.1 401"), "{a}");
    // A real token whose body never arrives: cut off by the timeout.
    let a = raw_exchange(
        &addr,
        &promise(&format!("Authorization: Bearer {DEPLOYER}\r\n")),
    );
    assert!(a.starts_with("HTTP/1.1 408"), "{a}");
    assert!(a.contains("request_timeout"), "{a}");
    // Declared too large: refused without reading it.
    let big = "POST /v1/promote HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer DEPLOYER\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        .replace("DEPLOYER", DEPLOYER);
    let a = raw_exchange(&addr, &big);
    assert!(a.starts_with("HTTP/1.1 413"), "{a}");
    // Watches and event streams may hold half the connections (2 of 4).
    let c = client();
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut st = c
            .get(s.at("/v1/events"))
            .bearer_auth(VIEWER)
            .send()
            .await
            .expect("stream");
        assert_eq!(st.status(), StatusCode::OK);
        let _ = st.chunk().await;
        open.push(st);
    }
    let (st, j) = get(
        &s.at("/v1/watch/support-agent@dev?timeout=30"),
        Some(VIEWER),
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{j}");
    assert_eq!(j["error"]["kind"], "busy", "{j}");
    // Short requests are still served, and a slot freed is a slot again.
    let (st, _) = get(&s.at("/v1/environments"), Some(VIEWER)).await;
    assert_eq!(st, StatusCode::OK);
    drop(open.pop());
    eventually(
        "a freed slot serves an event stream again",
        async || match c.get(s.at("/v1/events")).bearer_auth(VIEWER).send().await {
            Ok(st) if st.status() == StatusCode::OK => {
                open.push(st);
                true
            }
            _ => false,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_open_reads_answers_only_to_its_own_host_names() {
    let r = repo();
    let s = Server::start(&r, &["--allow-host", "releaseops.internal"], &[]);
    let addr = s.url.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap_or("").to_string();
    let ask = |host: &str| {
        raw_exchange(
            &addr,
            &format!("GET /v1/environments HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
    };
    for ok in [
        addr.clone(),
        format!("localhost:{port}"),
        format!("releaseops.internal:{port}"),
    ] {
        let a = ask(&ok);
        assert!(a.starts_with("HTTP/1.1 200"), "{ok}: {a}");
    }
    // A page on evil.example whose DNS name now points at 127.0.0.1.
    let a = ask(&format!("evil.example:{port}"));
    assert!(
        a.starts_with("HTTP/1.1 421") && a.contains("wrong_host"),
        "{a}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_file_descriptor_limit_never_stops_the_server_answering() {
    let r = repo();
    // Run the server itself under a small limit.
    let mut cmd = std::process::Command::new("prlimit");
    cmd.args(["--nofile=64:64"])
        .arg(crate::common::bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--max-connections",
            "16",
            "--header-timeout",
            "1",
        ])
        .current_dir(r.path())
        .env("NO_COLOR", "1")
        .env_remove("RELEASEOPS_API_TOKENS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("prlimit runs (util-linux)");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("address");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    let addr = url.trim_start_matches("http://").to_string();
    // More idle clients than the server has descriptors (64), but few enough
    // that the test process's own limit (it runs beside other tests) is never
    // what fails.
    let held: Vec<_> = (0..96)
        .map_while(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    assert!(
        held.len() > 64,
        "only {} idle clients connected",
        held.len()
    );
    // Someone real still gets answers, and soon a 200. While the cap is
    // reached the server may answer 503 (or close) before it has read the
    // request, which a client sees as an error: that is a retry, not a
    // failure. Each try is bounded, so one stuck try cannot use the budget.
    let health = format!("{url}/healthz");
    let start = Instant::now();
    loop {
        let tried = client()
            .get(&health)
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        let last = match tried {
            Ok(resp) if resp.status() == StatusCode::OK => break,
            Ok(resp) => format!("answered {}", resp.status()),
            Err(e) => format!("{e:?}"),
        };
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "a real client was never served; last try: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
}

/// A history edited under a running server: the process remembers the
/// state it verified, by each sealed segment's identity, so the edit must
/// change that identity and show on the very next request, on the API and
/// on the board (whose pages are otherwise kept while the tip stands).
#[tokio::test]
async fn a_history_edited_under_a_running_server_shows_on_the_next_request() {
    let r = repo();
    // Past one full segment of 1,000 records, so there is a sealed one.
    let (seg0, _) = r.extend_history(1005);
    // Settled: from now on the sealed segment is held to its identity.
    std::thread::sleep(Duration::from_millis(1100));
    let s = Server::start(&r, &[], &[]);
    let c = client();
    let page = |path: &'static str| {
        let c = c.clone();
        let url = s.at(path);
        async move {
            let resp = c.get(url).send().await.expect("request");
            let status = resp.status();
            (status, resp.text().await.expect("body"))
        }
    };
    for _ in 0..2 {
        let (st, body) = get(&s.at("/v1/environments"), None).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let (st, html) = page("/").await;
        assert_eq!(st, StatusCode::OK, "{html}");
        assert!(html.contains("support-agent"), "{html}");
    }
    // One record of the sealed segment changed, its size kept.
    let lines: Vec<&str> = seg0.lines().collect();
    assert!(lines[499].contains("\"actor\":\"gen\""), "{}", lines[499]);
    let edited: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let l = if i == 499 {
                l.replacen("\"actor\":\"gen\"", "\"actor\":\"gem\"", 1)
            } else {
                l.to_string()
            };
            format!("{l}\n")
        })
        .collect();
    assert_eq!(edited.len(), seg0.len());
    r.write(".releaseops/history/00000000.jsonl", &edited);
    let (st, e) = get(&s.at("/v1/environments"), None).await;
    assert!(st.is_server_error(), "{st} {e}");
    let msg = e["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("history") && msg.contains("broken"), "{e}");
    let (st, html) = page("/").await;
    assert!(st.is_server_error(), "{st} {html}");
    assert!(html.contains("broken"), "{html}");
    // Put back, it is whole again.
    r.write(".releaseops/history/00000000.jsonl", &seg0);
    let (st, body) = get(&s.at("/v1/environments"), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _) = page("/").await;
    assert_eq!(st, StatusCode::OK);
}
