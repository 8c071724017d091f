//! The existing tool's hash algorithm, checked against vectors it computed itself
//! (`testdata/llmhq-sample/hash-vectors.json`) and against the files it wrote.

use std::path::PathBuf;

use releaseops_format::hash::{bundle_hash, python_text, sha256_prefixed};
use releaseops_format::manifest::{BundleManifest, ModelConfig};
use serde_json::Value;

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/llmhq-sample")
}

fn vectors() -> Value {
    let text =
        std::fs::read_to_string(sample().join("hash-vectors.json")).expect("vectors present");
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn config_from(v: &Value) -> ModelConfig {
    let m = v.as_object().expect("object");
    ModelConfig {
        provider: m["provider"].as_str().expect("provider").into(),
        model: m["model"].as_str().expect("model").into(),
        temperature: m["temperature"].as_number().expect("number").clone(),
        max_tokens: m["max_tokens"].as_u64().expect("int"),
        parameters: m
            .get("parameters")
            .and_then(|p| p.as_object().cloned())
            .unwrap_or_default(),
    }
}

#[test]
fn model_config_vectors() {
    let v = vectors();
    for (name, case) in v["model_config_vectors"].as_object().expect("map") {
        let mc = config_from(&case["model_config_to_dict"]);
        assert_eq!(
            mc.canonical_json(),
            case["canonical_json"].as_str().expect("str"),
            "{name}"
        );
        assert_eq!(
            mc.hash(),
            case["model_hash"].as_str().expect("str"),
            "{name}"
        );
    }
}

#[test]
fn prompt_and_policy_content_hashes() {
    let v = vectors();
    let p = &v["prompt_content_hashes"];
    let b120 = std::fs::read(sample().join("repo-context/prompts-at-tags/onboarding@v1.2.0.yaml"))
        .expect("read");
    assert_eq!(
        sha256_prefixed(&b120),
        p["onboarding@v1.2.0 (exact file bytes)"]
            .as_str()
            .expect("s")
    );
    // What `git show` gives for :latest/:working/:staged: one trailing newline stripped.
    let stripped = b120.strip_suffix(b"\n").expect("ends with newline");
    assert_eq!(
        sha256_prefixed(stripped),
        p["same commit via :latest/:working/:head/:staged (git show strips ONE trailing newline)"]
            .as_str()
            .expect("s")
    );
    let b101 = std::fs::read(sample().join("repo-context/prompts-at-tags/onboarding@v1.0.1.yaml"))
        .expect("read");
    assert_eq!(
        sha256_prefixed(&b101),
        p["onboarding@v1.0.1 (exact file bytes)"]
            .as_str()
            .expect("s")
    );
    for (file, want) in v["policy_content_hashes"].as_object().expect("map") {
        let bytes = std::fs::read(sample().join("repo-context/policies").join(file)).expect("read");
        let text = python_text(&bytes).expect("utf8");
        assert_eq!(
            sha256_prefixed(text.as_bytes()),
            want.as_str().expect("s"),
            "{file}"
        );
        // A CRLF copy hashes the same, as Python's universal newlines make it.
        let crlf = String::from_utf8(bytes.clone())
            .expect("utf8")
            .replace('\n', "\r\n");
        assert_eq!(
            sha256_prefixed(python_text(crlf.as_bytes()).expect("utf8").as_bytes()),
            want.as_str().expect("s")
        );
    }
}

#[test]
fn bundle_hash_examples() {
    let v = vectors();
    let ex = &v["bundle_hash_examples"];
    assert_eq!(
        bundle_hash([], None),
        ex["empty bundle (no artifacts, no model) = sha256('')"]
            .as_str()
            .expect("s")
    );
    let claude = config_from(&v["model_config_vectors"]["claude_default"]["model_config_to_dict"]);
    assert_eq!(
        bundle_hash([], Some(&claude.hash())),
        ex["model only (claude_default)"].as_str().expect("s")
    );
    let case = &ex["support-agent 1.2.0 (prompt v1.0.1 + 2 policies + temp 0.2)"];
    let inputs: Vec<&str> = case["artifact_hashes_in"]
        .as_array()
        .expect("a")
        .iter()
        .map(|x| x.as_str().expect("s"))
        .collect();
    let t02 = config_from(&v["model_config_vectors"]["temp_0.2"]["model_config_to_dict"]);
    assert_eq!(
        bundle_hash(inputs, Some(&t02.hash())),
        case["bundle_hash"].as_str().expect("s")
    );
}

#[test]
fn every_sample_manifest_reparses_and_its_hash_recomputes() {
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        let path = sample().join(format!(".releaseops/bundles/support-agent/{v}.yaml"));
        let bytes = std::fs::read(&path).expect("read");
        let m = BundleManifest::parse(&bytes).expect("parses");
        m.check_hash().expect("hash recomputes");
        assert_eq!(
            m.to_yaml().as_bytes(),
            &bytes[..],
            "{v} is rewritten byte for byte"
        );
    }
}
