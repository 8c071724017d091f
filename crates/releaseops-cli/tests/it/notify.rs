//! `notify:` webhooks, told by the CLI and by the server, tested against a
//! loopback receiver: what each format carries, that a slow or failing
//! webhook never fails or undoes the change, and that the URL (a secret)
//! is never printed, even when the receiver echoes it back.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::Repo;
use crate::common::server::{Server, client};

const SECRET_PATH: &str = "/services/T0SECRET/B0SECRET/abcdefSECRET";

fn with_hooks(r: &Repo, extra: &str) {
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &format!(
            "{cfg}notify:\n- name: team-json\n  url_env: TEST_HOOK_JSON\n{extra}- name: team-slack\n  url_env: TEST_HOOK_SLACK\n  format: slack\n  events: [promotion_blocked, rollback]\n"
        ),
    );
}

async fn bodies(s: &MockServer) -> Vec<Value> {
    s.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or_default())
        .collect()
}

/// A receiver that answers 200 and echoes the URL it was called at.
async fn echoing() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(|req: &wiremock::Request| {
            ResponseTemplate::new(200)
                .insert_header("x-echo", req.url.as_str())
                .set_body_string(format!("ok {}", req.url))
        })
        .mount(&s)
        .await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_promotion_tells_each_webhook_in_its_format_and_prints_no_url() {
    let json_hook = echoing().await;
    let slack_hook = echoing().await;
    let r = Repo::initialized();
    r.create_support_agent("1.0.0", "v1.0.0", "0.2");
    r.run(&["env", "set", "staging", "requires_approval=true"])
        .ok();
    with_hooks(&r, "");
    let (ju, su) = (
        format!("{}{SECRET_PATH}", json_hook.uri()),
        format!("{}{SECRET_PATH}", slack_hook.uri()),
    );
    let env = [
        ("TEST_HOOK_JSON", ju.as_str()),
        ("TEST_HOOK_SLACK", su.as_str()),
    ];
    r.run_env(&env, &["promote", "support-agent", "1.0.0", "dev"])
        .ok();
    let out = r.run_env(&env, &["promote", "support-agent", "1.0.0", "staging"]);
    out.code(3);
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains("SECRET") && !text.contains(&json_hook.uri()),
            "{text}"
        );
    }
    let got = bodies(&json_hook).await;
    let events: Vec<&str> = got.iter().filter_map(|b| b["event"].as_str()).collect();
    assert_eq!(events, ["promotion_blocked", "approval_pending"], "{got:?}");
    assert_eq!(got[0]["env"], "staging");
    assert_eq!(got[0]["version"], "1.0.0");
    assert_eq!(got[0]["actor"], "Test Dev <dev@example.test>");
    assert_eq!(got[1]["source"], "releaseops");
    assert!(
        got[1]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("waits for approval")
    );
    // The Slack hook wants blocked promotions and rollbacks only.
    let slack = bodies(&slack_hook).await;
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert!(
        slack[0]["text"]
            .as_str()
            .unwrap_or("")
            .starts_with("[releaseops] Promotion blocked")
    );
    assert_eq!(slack[0]["blocks"][0]["type"], "section");
    // Nothing was promoted, and nothing is left behind.
    let st: String = r
        .run(&["env", "list", "--json"])
        .ok()
        .split_whitespace()
        .collect();
    assert!(
        st.contains("\"env\":\"staging\",\"stage\":1,\"bundles\":[]"),
        "{st}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_hanging_webhook_never_fails_or_undoes_the_change() {
    let failing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string(format!("bad {SECRET_PATH}")))
        .mount(&failing)
        .await;
    let hanging = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(120)))
        .mount(&hanging)
        .await;
    let r = Repo::initialized();
    r.create_support_agent("1.0.0", "v1.0.0", "0.2");
    r.create_support_agent("1.1.0", "v1.1.0", "0.2");
    with_hooks(&r, "");
    let (fu, hu) = (
        format!("{}{SECRET_PATH}", failing.uri()),
        format!("{}{SECRET_PATH}", hanging.uri()),
    );
    let env = [
        ("TEST_HOOK_JSON", fu.as_str()),
        ("TEST_HOOK_SLACK", hu.as_str()),
    ];
    r.run_env(&env, &["promote", "support-agent", "1.0.0", "dev"])
        .ok();
    r.run_env(&env, &["promote", "support-agent", "1.1.0", "dev"])
        .ok();
    let started = Instant::now();
    let out = r.run_env(
        &env,
        &["rollback", "dev", "support-agent", "--reason", "bad"],
    );
    let took = started.elapsed();
    out.ok();
    assert!(
        took < Duration::from_secs(20),
        "the rollback waited {took:?} for its webhooks"
    );
    assert!(
        out.stderr
            .contains("notification failed: team-json: HTTP 500 after 4 attempts"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("not delivered within 5 s; the change itself is done"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("SECRET") && !out.stdout.contains("SECRET"),
        "{}",
        out.stderr
    );
    assert_eq!(
        failing.received_requests().await.unwrap_or_default().len(),
        4
    );
    // The rollback landed.
    let live: String = r
        .run(&["env", "list", "--json"])
        .ok()
        .split_whitespace()
        .collect();
    assert!(
        live.contains("\"bundle_id\":\"support-agent\",\"version\":\"1.0.0\""),
        "{live}"
    );
    // An unset variable is a warning that names it, and the change lands.
    // (A promotion that went through plainly tells nothing.)
    let out = r.run(&["promote", "support-agent", "1.1.0", "dev"]);
    assert!(
        !out.ok().is_empty() && !out.stderr.contains("notif"),
        "{}",
        out.stderr
    );
    let out = r.run(&["rollback", "dev", "support-agent", "--reason", "again"]);
    out.ok();
    assert!(
        out.stderr
            .contains("not notified: team-json: $TEST_HOOK_JSON is not set"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_tells_the_webhooks_of_changes_made_through_it() {
    let hook = echoing().await;
    let r = Repo::demo();
    with_hooks(&r, "  events: [rollback, promotion_blocked, agent_no_go]\n");
    let url = format!("{}{SECRET_PATH}", hook.uri());
    let tokens = "deployer:Dee Deployer <dee@acme.test>:tok-deployer-0a1b2c3d4e5f60718293a4b5";
    let s = Server::start(
        &r,
        &[],
        &[
            ("RELEASEOPS_API_TOKENS", tokens),
            ("TEST_HOOK_JSON", &url),
            ("TEST_HOOK_SLACK", &url),
        ],
    );
    let http = client();
    let auth = "Bearer tok-deployer-0a1b2c3d4e5f60718293a4b5";
    let resp = http
        .post(s.at("/v1/rollback"))
        .header("authorization", auth)
        .json(&json!({"bundle_id": "support-agent", "env": "canary", "reason": "incident"}))
        .send()
        .await
        .expect("rollback");
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let resp = http
        .post(s.at("/v1/promote"))
        .header("authorization", auth)
        .json(&json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "prod"}))
        .send()
        .await
        .expect("promote");
    assert_eq!(resp.status().as_u16(), 409);
    let started = Instant::now();
    let mut events: Vec<String> = Vec::new();
    while started.elapsed() < Duration::from_secs(30) {
        events = bodies(&hook)
            .await
            .iter()
            .filter_map(|b| b["event"].as_str().map(str::to_string))
            .collect();
        if events.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for want in ["rollback", "promotion_blocked", "agent_no_go"] {
        assert!(events.iter().any(|e| e == want), "{events:?}");
    }
    // What the server says of its webhooks names them, never their URL.
    let health: Value = http
        .get(s.at("/healthz"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert!(
        health["notifications"]["delivered"].as_u64().unwrap_or(0) >= 3,
        "{health}"
    );
    let (_, stderr) = s.stop();
    assert!(
        !stderr.contains("SECRET") && !health.to_string().contains("SECRET"),
        "{stderr}"
    );
}

#[test]
fn a_url_written_in_the_config_or_a_misspelt_event_is_refused_without_echoing_it() {
    let r = Repo::initialized();
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}notify:\n- url_env: https://hooks.slack.test{SECRET_PATH}\n"),
    );
    let out = r.run(&["env", "list"]);
    out.code(2);
    assert!(
        out.stderr
            .contains("notify[0].url_env must name an environment variable"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("SECRET"), "{}", out.stderr);
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}notify:\n- url_env: HOOK\n  events: [rollbak]\n"),
    );
    let out = r.run(&["env", "list"]);
    out.code(2);
    assert!(out.stderr.contains("rollbak"), "{}", out.stderr);
}
