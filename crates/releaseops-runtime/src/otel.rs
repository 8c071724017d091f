//! OpenTelemetry for loaded bundles: the attributes on a span, the bundle's
//! identity as W3C baggage, and [`BundleBaggageProcessor`], which copies
//! that baggage onto every span started under it, so child spans carry the
//! bundle too (the existing tool set attributes on one span and nothing else).

use std::time::Duration;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{SpanRef, TraceContextExt};
use opentelemetry::{Context, ContextGuard, KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::bundle::LoadedBundle;
use crate::telemetry::{AttrValue, BAGGAGE_KEYS};

impl From<&AttrValue> for Value {
    fn from(v: &AttrValue) -> Value {
        match v {
            AttrValue::Str(s) => Value::from(s.clone()),
            AttrValue::Int(i) => Value::I64(*i),
            AttrValue::Float(f) => Value::F64(*f),
        }
    }
}

impl LoadedBundle {
    /// The bundle's attributes as OpenTelemetry key-values.
    pub fn otel_attributes(&self) -> Vec<KeyValue> {
        self.telemetry_attributes()
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), Value::from(v)))
            .collect()
    }

    /// Sets the bundle's attributes on `span` (when it is recording).
    pub fn record_on(&self, span: &SpanRef<'_>) {
        if span.is_recording() {
            span.set_attributes(self.otel_attributes());
        }
    }

    /// Sets the bundle's attributes on the current span.
    pub fn record_on_current_span(&self) {
        Context::map_current(|cx| self.record_on(&cx.span()));
    }

    /// The bundle's id, version, hash and environment as baggage entries.
    pub fn baggage(&self) -> Vec<KeyValue> {
        self.baggage_attributes()
            .map(|(k, v)| KeyValue::new(k.clone(), v.to_string()))
            .collect()
    }

    /// `cx` with the bundle's baggage added (other entries kept).
    pub fn context_from(&self, cx: &Context) -> Context {
        let mut entries: Vec<KeyValue> = cx
            .baggage()
            .iter()
            .filter(|(k, _)| !BAGGAGE_KEYS.contains(&k.as_str()))
            .map(|(k, (v, _))| KeyValue::new(k.clone(), v.to_string()))
            .collect();
        entries.extend(self.baggage());
        cx.with_baggage(entries)
    }

    /// Records the bundle on the current span and makes a context carrying
    /// its baggage current until the guard drops: spans started meanwhile
    /// (through a provider with [`BundleBaggageProcessor`]) and requests
    /// whose headers are injected by the baggage propagator carry it.
    pub fn attach(&self) -> ContextGuard {
        self.record_on_current_span();
        self.context_from(&Context::current()).attach()
    }
}

/// A span processor that copies the bundle's baggage (`releaseops.*`
/// identity) from the parent context onto each span as it starts.
#[derive(Debug, Default, Clone, Copy)]
pub struct BundleBaggageProcessor;

impl SpanProcessor for BundleBaggageProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        use opentelemetry::trace::Span as _;
        for key in BAGGAGE_KEYS {
            if let Some(v) = cx.baggage().get(key) {
                span.set_attribute(KeyValue::new(key, v.to_string()));
            }
        }
    }

    fn on_end(&self, _span: SpanData) {}

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
