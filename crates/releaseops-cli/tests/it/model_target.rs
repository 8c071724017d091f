//! The `model` target through the binary: the bundle's own prompts, rendered
//! with each case's input, sent to its model on a loopback server that speaks
//! the OpenAI wire format; keys never land in reports, history or git.

use crate::common::Repo;
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-live-DO-NOT-LEAK-42";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_model_is_called_with_its_rendered_prompts_and_the_key_stays_secret() {
    let server = MockServer::start().await;
    // Refund requests above the prompt's limit get escalated by this "model".
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(body_partial_json(json!({"messages": [{"role": "system", "content": "You help Ann. You may refund up to 100 dollars."}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"choices": [{"message": {"content": "Hello Ann, refund issued."}}], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"choices": [{"message": {"content": "I cannot help."}}]})),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    let mut r = Repo::initialized();
    r.write(
        "prompts/system.md",
        "You help {{ user_name }}. You may refund up to 100 dollars.",
    );
    r.write(
        ".releaseops/evals/chat.yaml",
        "id: chat\npass_threshold: 1.0\ntarget: {type: model, timeout_ms: 10000}\ncases:\n- id: ann\n  input: {user_name: Ann, message: 'Refund my order'}\n  assertions: [{type: contains, config: {expected: refund issued}}]\n",
    );
    r.run(&[
        "bundle",
        "create",
        "a",
        "-a",
        "system=file:prompts/system.md",
        "-m",
        "gpt-test",
        "--provider",
        "openai",
        "-t",
        "0",
    ])
    .ok();
    // Without a key, the public endpoint is refused before any call.
    let o = r.run(&["eval", "run", "chat", "--bundle", "a"]);
    o.code(1);
    assert!(o.stderr.contains("needs OPENAI_API_KEY"), "{}", o.stderr);
    r.env.push(("OPENAI_API_KEY".into(), KEY.into()));
    r.env.push(("OPENAI_BASE_URL".into(), server.uri()));
    let o = r.run(&["--json", "eval", "run", "chat", "--bundle", "a"]);
    o.code(0);
    let j = o.json();
    assert_eq!(j["report"]["summary"]["gate_decision"], "PASS", "{j}");
    // A case whose variables the template lacks fails with the reason.
    r.write(
        ".releaseops/evals/chat.yaml",
        "id: chat\npass_threshold: 1.0\ntarget: {type: model}\ncases:\n- id: nobody\n  input: {message: hi}\n  assertions: [{type: contains, config: {expected: x}}]\n",
    );
    let o = r.run(&["--json", "eval", "run", "chat", "--bundle", "a"]);
    o.code(5);
    assert!(
        o.json()["report"]["results"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("user_name"),
        "{}",
        o.stdout
    );
    // The key is nowhere on disk or in git.
    let tree = r.snapshot();
    assert!(
        tree.iter()
            .all(|(_, bytes)| !String::from_utf8_lossy(bytes).contains(KEY)),
        "the key was written to .releaseops/"
    );
    assert!(!r.git(&["log", "-p"]).contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_suite_runs_again_from_the_cache_and_no_cache_calls_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"choices": [{"message": {"content": "cached answer"}}]})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let mut r = Repo::initialized();
    r.write("prompts/system.md", "Be brief.");
    r.write(
        ".releaseops/evals/c.yaml",
        "id: c\npass_threshold: 1.0\ntarget: {type: model}\ncases:\n- id: one\n  input: {message: hi}\n  assertions: [{type: contains, config: {expected: cached}}]\n",
    );
    r.run(&[
        "bundle",
        "create",
        "a",
        "-a",
        "system=file:prompts/system.md",
        "-m",
        "m",
        "--provider",
        "openai-compatible",
    ])
    .ok();
    r.env.push(("OPENAI_BASE_URL".into(), server.uri()));
    let first = r
        .run(&["--json", "eval", "run", "c", "--bundle", "a"])
        .json();
    assert_eq!(first["report"]["summary"]["cached_calls"], 0);
    let second = r
        .run(&["--json", "eval", "run", "c", "--bundle", "a"])
        .json();
    assert_eq!(second["report"]["summary"]["cached_calls"], 1, "{second}");
    assert_eq!(second["report"]["summary"]["gate_decision"], "PASS");
    let third = r
        .run(&["--json", "eval", "run", "c", "--bundle", "a", "--no-cache"])
        .json();
    assert_eq!(third["report"]["summary"]["cached_calls"], 0);
    // The cache lives outside what git tracks.
    let status = r.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(!status.contains(".tmp-cache"), "{status}");
    assert!(r.path().join(".releaseops/.tmp-cache/responses").is_dir());
    // wiremock checks on drop that exactly two calls reached the server.
}
