//! The CLI's own spans. With an OTLP endpoint configured (the standard
//! OTEL_* variables), `promote`, `rollback` and `eval run` each emit a span
//! carrying the bundle's attributes (as the runtime sets them) and the
//! outcome: gate results, verdicts. A `TRACEPARENT` (and `BAGGAGE`) in the
//! environment, as CI systems set, makes the span a child of that trace.
//! Without an endpoint nothing is set up and these calls cost nothing.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::trace::{Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use releaseops_format::history::GateResult;

static ENABLED: OnceLock<bool> = OnceLock::new();

/// Starts exporting when configured; keep the guard until the command is
/// done (dropping it flushes).
pub(crate) fn init() -> Option<releaseops_runtime::otlp::Tracing> {
    match releaseops_runtime::otlp::init_from_env("releaseops") {
        Ok(t) => {
            let _ = ENABLED.set(t.is_some());
            t
        }
        Err(e) => {
            crate::output::warn(&format!("tracing is off: {e}"));
            None
        }
    }
}

fn enabled() -> bool {
    ENABLED.get().copied().unwrap_or(false)
}

/// One command's span; ended when dropped.
pub(crate) struct CmdSpan {
    cx: Option<Context>,
}

/// Starts the span of a command (a no-op unless tracing is on).
pub(crate) fn start(name: &'static str) -> CmdSpan {
    if !enabled() {
        return CmdSpan { cx: None };
    }
    // The trace this command runs in, when a CI system passed one down.
    let carrier: HashMap<String, String> = [
        ("traceparent", "TRACEPARENT"),
        ("tracestate", "TRACESTATE"),
        ("baggage", "BAGGAGE"),
    ]
    .into_iter()
    .filter_map(|(h, var)| std::env::var(var).ok().map(|v| (h.to_string(), v)))
    .collect();
    let parent = global::get_text_map_propagator(|p| p.extract(&carrier));
    let tracer = global::tracer("releaseops");
    let span = tracer.start_with_context(name, &parent);
    CmdSpan {
        cx: Some(parent.with_span(span)),
    }
}

impl CmdSpan {
    fn set(&self, attrs: Vec<KeyValue>) {
        if let Some(cx) = &self.cx {
            cx.span().set_attributes(attrs);
        }
    }

    /// The bundle's attributes, as the runtime loader would set them for
    /// `id==version` (running in `env`, when given).
    pub(crate) fn bundle(
        &self,
        store: &releaseops_store::Store,
        id: &str,
        version: &str,
        env: Option<&str>,
    ) {
        if self.cx.is_none() {
            return;
        }
        let loaded = releaseops_runtime::RuntimeLoader::new(store.dir())
            .and_then(|l| l.load(&format!("{id}=={version}")));
        let mut attrs = match loaded {
            Ok(b) => b.otel_attributes(),
            Err(e) => vec![
                KeyValue::new(releaseops_runtime::telemetry::BUNDLE_ID, id.to_string()),
                KeyValue::new(
                    releaseops_runtime::telemetry::BUNDLE_VERSION,
                    version.to_string(),
                ),
                KeyValue::new("releaseops.bundle_load_error", e.to_string()),
            ],
        };
        if let Some(env) = env {
            attrs.push(KeyValue::new(
                releaseops_runtime::telemetry::ENVIRONMENT,
                env.to_string(),
            ));
        }
        self.set(attrs);
    }

    /// Each gate's status and reason.
    pub(crate) fn gates(&self, gates: &[GateResult]) {
        self.set(
            gates
                .iter()
                .flat_map(|g| {
                    [
                        KeyValue::new(
                            format!("releaseops.gate.{}.status", g.gate),
                            g.status.as_str(),
                        ),
                        KeyValue::new(
                            format!("releaseops.gate.{}.reason", g.gate),
                            g.reason.clone(),
                        ),
                    ]
                })
                .collect(),
        );
    }

    pub(crate) fn attr(&self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        self.set(vec![KeyValue::new(key, value)]);
    }

    /// Marks the span failed with `message`.
    pub(crate) fn fail(&self, message: &str) {
        if let Some(cx) = &self.cx {
            cx.span().set_status(Status::error(message.to_string()));
        }
    }
}

impl Drop for CmdSpan {
    fn drop(&mut self) {
        if let Some(cx) = &self.cx {
            cx.span().end();
        }
    }
}
