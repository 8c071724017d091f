//! One call that turns tracing on for an agent or a tool: an OTLP/HTTP
//! (protobuf) exporter configured by the standard variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED`),
//! batch export on its own thread, [`BundleBaggageProcessor`], and the W3C
//! trace-context and baggage propagators installed globally.

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::otel::BundleBaggageProcessor;

/// Tracing while it lives: dropping it flushes and shuts the exporter down.
/// Drop it outside any async runtime (the exporter's HTTP client blocks).
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

fn set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// An OTLP/HTTP protobuf span exporter: to `endpoint` (the full traces URL)
/// when given, else where the OTEL_EXPORTER_OTLP_* variables say.
pub fn span_exporter(endpoint: Option<&str>) -> Result<opentelemetry_otlp::SpanExporter, String> {
    use opentelemetry_otlp::WithExportConfig;
    // reqwest is built without a default TLS provider (no aws-lc); ring it is.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(e) = endpoint {
        b = b.with_endpoint(e);
    }
    b.build().map_err(|e| {
        format!("cannot set up the OTLP exporter: {e}; check OTEL_EXPORTER_OTLP_ENDPOINT")
    })
}

/// Starts exporting spans when an OTLP endpoint is configured; `Ok(None)`
/// when none is (or `OTEL_SDK_DISABLED=true`), so tracing costs nothing
/// unless asked for. `default_service` names the service when
/// `OTEL_SERVICE_NAME` does not.
pub fn init_from_env(default_service: &str) -> Result<Option<Tracing>, String> {
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || !(set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    {
        return Ok(None);
    }
    let exporter = span_exporter(None)?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(default_service.to_string());
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BundleBaggageProcessor)
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    Ok(Some(Tracing { provider }))
}
