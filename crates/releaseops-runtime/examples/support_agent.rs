//! A small agent that runs whatever `prod` runs: it loads `support-agent@prod`
//! with the runtime loader, renders its system prompt, and does its work in
//! a span that carries the bundle (exported over OTLP when
//! OTEL_EXPORTER_OTLP_ENDPOINT is set).
//!
//! ```sh
//! releaseops demo --keep /tmp/acme            # a project with support-agent live in prod
//! cargo run -p releaseops-runtime --features otlp --example support_agent -- /tmp/acme Ann
//! ```

use opentelemetry::trace::{Span as _, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use releaseops_runtime::RuntimeLoader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let repo = args.next().unwrap_or_else(|| ".".into());
    let user = args.next().unwrap_or_else(|| "Ann".into());
    let tracing = releaseops_runtime::otlp::init_from_env("support-agent")?;
    let loader = RuntimeLoader::new(&repo)?;
    let tracer = global::tracer("support-agent");
    let span = tracer.start("handle-request");
    let cx = Context::current_with_span(span);
    {
        let _request = cx.clone().attach();
        let bundle = loader.load("support-agent@prod")?;
        // The bundle's attributes on this span, its identity as baggage on
        // every span below (and in headers to downstream services).
        let _bundle = bundle.attach();
        let vars = serde_json::json!({ "user_name": user });
        let system = bundle.render("system", vars.as_object().ok_or("not an object")?)?;
        let mut call = tracer.start("llm-call");
        call.set_attribute(KeyValue::new("prompt.chars", system.len() as i64));
        call.end();
        println!(
            "{} {} ({}) in {}",
            bundle.id(),
            bundle.version(),
            bundle.bundle_hash(),
            bundle.environment().unwrap_or("-")
        );
        if let Some(m) = bundle.model() {
            println!("model: {} {}", m.provider, m.model);
        }
        for (role, p) in bundle.policies() {
            println!("policy {role}: {}", p.path);
        }
        println!("--- system prompt ---\n{system}");
    }
    cx.span().end();
    drop(tracing);
    Ok(())
}
