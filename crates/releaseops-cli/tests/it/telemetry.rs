//! OpenTelemetry end to end: a real HTTP server on loopback receives what we
//! export over OTLP/HTTP and decodes it with the OpenTelemetry protobuf
//! definitions. Checked: the bundle attributes on the agent's span, the
//! bundle baggage on its child spans and in propagated headers, and the
//! CLI's own spans for promote (with gate results), rollback and eval run.

use std::collections::HashMap;

use crate::common::Repo;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use releaseops_runtime::RuntimeLoader;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An OTLP/HTTP receiver on 127.0.0.1 (accepts `POST /v1/traces`).
fn receiver(rt: &tokio::runtime::Runtime) -> MockServer {
    rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/traces"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        server
    })
}

/// Every span the receiver got, decoded, with the resource's service name.
fn received(rt: &tokio::runtime::Runtime, server: &MockServer) -> Vec<(String, Span)> {
    let requests = rt.block_on(server.received_requests()).unwrap_or_default();
    let mut out = Vec::new();
    for r in requests {
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/x-protobuf")
        );
        let req = ExportTraceServiceRequest::decode(r.body.as_slice()).expect("OTLP protobuf");
        for rs in req.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| text(a.value.as_ref()?.value.as_ref()?))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push((service.clone(), s));
                }
            }
        }
    }
    out
}

fn text(v: &Any) -> Option<String> {
    Some(match v {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        Any::DoubleValue(d) => d.to_string(),
        Any::BoolValue(b) => b.to_string(),
        _ => return None,
    })
}

fn attrs(s: &Span) -> HashMap<String, String> {
    s.attributes
        .iter()
        .filter_map(|a| Some((a.key.clone(), text(a.value.as_ref()?.value.as_ref()?)?)))
        .collect()
}

fn repo() -> Repo {
    let r = Repo::initialized();
    r.create_support_agent("1.0.0", "v1.0.0", "0.2");
    r.create_support_agent("1.1.0", "v1.0.0", "0.3");
    r
}

#[test]
fn an_agent_span_its_children_and_downstream_headers_carry_the_bundle() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = receiver(&rt);
    let r = repo();
    r.run(&["promote", "support-agent", "1.0.0", "dev"]).ok();
    let bundle = RuntimeLoader::new(r.path())
        .unwrap()
        .load("support-agent@dev")
        .unwrap();
    // The exporter an agent gets: OTLP/HTTP protobuf to the receiver, with
    // the processor that copies bundle baggage onto child spans.
    let exporter = opentelemetry_otlp_exporter(&server.uri());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(releaseops_runtime::otel::BundleBaggageProcessor)
        .with_simple_exporter(exporter)
        .build();
    let tracer = provider.tracer("agent");
    let headers = {
        let run = tracer.start("agent-run");
        let _run = Context::current_with_span(run).attach();
        let _bundle = bundle.attach();
        let mut child = tracer.start("llm-call");
        child.set_attribute(KeyValue::new("step", "answer"));
        child.end();
        // What a downstream call would send.
        let mut headers = HashMap::new();
        opentelemetry_sdk::propagation::BaggagePropagator::new()
            .inject_context(&Context::current(), &mut headers);
        Context::current().span().end();
        headers
    };
    provider.shutdown().unwrap();
    let spans = received(&rt, &server);
    let by_name: HashMap<&str, HashMap<String, String>> = spans
        .iter()
        .map(|(_, s)| (s.name.as_str(), attrs(s)))
        .collect();
    let run = &by_name["agent-run"];
    assert_eq!(run["releaseops.bundle_id"], "support-agent");
    assert_eq!(run["releaseops.bundle_version"], "1.0.0");
    assert_eq!(run["releaseops.bundle_hash"], bundle.bundle_hash());
    assert_eq!(run["releaseops.environment"], "dev");
    assert_eq!(run["releaseops.policy.tools"], "policies/tools.yaml");
    assert_eq!(run["releaseops.prompt.system"], "prompts/onboarding@v1.0.0");
    assert_eq!(run["gen_ai.request.model"], "claude-sonnet-4-5");
    assert_eq!(run["gen_ai.provider.name"], "anthropic");
    assert_eq!(run["gen_ai.request.temperature"], "0.2");
    assert_eq!(run["gen_ai.request.max_tokens"], "4096");
    // The child span got the bundle from the baggage, not from the agent.
    let child = &by_name["llm-call"];
    assert_eq!(child["releaseops.bundle_hash"], bundle.bundle_hash());
    assert_eq!(child["releaseops.environment"], "dev");
    assert_eq!(child["step"], "answer");
    // W3C baggage for the next service.
    let baggage = &headers["baggage"];
    assert!(
        baggage.contains("releaseops.bundle_id=support-agent")
            && baggage.contains("releaseops.bundle_version=1.0.0")
            && baggage.contains("releaseops.bundle_hash=sha256"),
        "{baggage}"
    );
}

fn opentelemetry_otlp_exporter(endpoint: &str) -> opentelemetry_otlp::SpanExporter {
    releaseops_runtime::otlp::span_exporter(Some(&format!("{endpoint}/v1/traces")))
        .expect("an OTLP exporter")
}

#[test]
fn promote_rollback_and_eval_run_emit_spans_with_the_bundle_and_the_gates() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = receiver(&rt);
    let mut r = repo();
    r.env
        .push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), server.uri()));
    r.env
        .push(("OTEL_SERVICE_NAME".into(), "release-pipeline".into()));
    // A CI system's trace to join.
    r.env.push((
        "TRACEPARENT".into(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    ));
    r.run(&["promote", "support-agent", "1.0.0", "dev"]).ok();
    r.run(&["promote", "support-agent", "1.1.0", "dev"]).ok();
    // prod requires the previous stage first: blocked, with its gates.
    r.run(&["promote", "support-agent", "1.1.0", "prod"])
        .code(3);
    r.run(&["rollback", "dev", "support-agent"]).ok();
    r.write(
        ".releaseops/evals/smoke.yaml",
        "id: smoke\npass_threshold: 1.0\ntarget: {type: command, command: echo hello}\ncases:\n- id: c1\n  input: {q: x}\n  assertions: [{type: contains, config: {expected: hello}}]\n",
    );
    let eval = r.run(&[
        "eval",
        "run",
        "smoke",
        "--bundle",
        "support-agent",
        "--version",
        "1.0.0",
    ]);
    let spans = received(&rt, &server);
    let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "releaseops promote").count(),
        3,
        "{names:?}"
    );
    for (service, s) in &spans {
        assert_eq!(service, "release-pipeline");
        assert_eq!(
            hex(&s.trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "{} joins the CI trace",
            s.name
        );
    }
    let promotes: Vec<HashMap<String, String>> = spans
        .iter()
        .filter(|(_, s)| s.name == "releaseops promote")
        .map(|(_, s)| attrs(s))
        .collect();
    let ok = promotes
        .iter()
        .find(|a| a["releaseops.bundle_version"] == "1.1.0" && a["releaseops.environment"] == "dev")
        .expect("the 1.1.0 promotion into dev");
    assert_eq!(ok["releaseops.promotion.promoted"], "true");
    assert!(ok["releaseops.bundle_hash"].starts_with("sha256:"));
    assert_eq!(ok["gen_ai.request.temperature"], "0.3");
    assert!(ok.contains_key("releaseops.gate.pipeline.status"), "{ok:?}");
    let blocked = promotes
        .iter()
        .find(|a| a["releaseops.environment"] == "prod")
        .expect("the blocked prod promotion");
    assert_eq!(blocked["releaseops.promotion.promoted"], "false");
    assert!(!blocked["releaseops.promotion.blocked_by"].is_empty());
    let blocked_span = spans
        .iter()
        .find(|(_, s)| attrs(s).get("releaseops.environment").map(String::as_str) == Some("prod"))
        .map(|(_, s)| s)
        .unwrap();
    assert_eq!(
        blocked_span.status.as_ref().map(|s| s.code),
        Some(2),
        "error status"
    );
    let rollback = spans
        .iter()
        .find(|(_, s)| s.name == "releaseops rollback")
        .map(|(_, s)| attrs(s))
        .expect("a rollback span");
    assert_eq!(rollback["releaseops.bundle_version"], "1.0.0");
    assert_eq!(rollback["releaseops.rollback.from_version"], "1.1.0");
    let e = spans
        .iter()
        .find(|(_, s)| s.name == "releaseops eval run")
        .map(|(_, s)| attrs(s))
        .unwrap_or_else(|| panic!("an eval span; eval said {} {}", eval.stdout, eval.stderr));
    assert_eq!(e["releaseops.eval.suite"], "smoke");
    assert_eq!(e["releaseops.bundle_version"], "1.0.0");
    assert!(e.contains_key("releaseops.eval.verdict"));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn without_an_endpoint_nothing_is_exported_and_commands_are_unchanged() {
    // Listen where an exporter with no endpoint configured would send by
    // default (OTLP/HTTP's localhost:4318): nothing may connect.
    let default = std::net::TcpListener::bind("127.0.0.1:4318")
        .expect("port 4318 (the OTLP default) must be free for this test");
    default.set_nonblocking(true).expect("nonblocking");
    let quiet = repo();
    // An endpoint that refuses connections must not change the command.
    let mut refused = repo();
    refused.env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        "http://127.0.0.1:9".into(),
    ));
    for args in [
        &["promote", "support-agent", "1.0.0", "dev"][..],
        &["promote", "support-agent", "1.1.0", "dev"][..],
        &["rollback", "dev", "support-agent"][..],
    ] {
        let a = quiet.run(args);
        let b = refused.run(args);
        a.ok();
        b.ok();
        // The same words, but for the commit's hash.
        let words = |out: &str| {
            out.lines()
                .filter(|l| !l.trim_start().starts_with("git commit"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(words(&a.stdout), words(&b.stdout), "{args:?}");
    }
    match default.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("something connected to the default OTLP endpoint: {other:?}"),
    }
}
