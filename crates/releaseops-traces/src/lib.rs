//! Production sight: what a bundle version does once it runs.
//!
//! - [`otlp`] reads OTLP/HTTP trace exports (protobuf and JSON, gzip) by
//!   the GenAI semantic conventions and the OpenInference names;
//! - [`import`] reads trace files: the existing tool's JSON trace dicts
//!   and the OTLP JSON lines a Collector's file exporter writes;
//! - [`store`] keeps spans and a summary per trace, in SQLite;
//! - [`analytics`] turns a version's traces into metrics and compares two
//!   versions (or two environments) with tests that can gate a release.
//!
//! Secrets are redacted before anything is stored ([`redact`]), and
//! content (inputs, outputs, tool arguments) is kept only when asked.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod analytics;
pub mod import;
pub mod otlp;
pub mod redact;
pub mod span;
pub mod store;

pub use span::{BundleTag, ReadOptions, Rejected, Source, Span, Status, ToolCall};
pub use store::{Filter, Sample, Stored, TraceStore, TraceSummary};

/// What went wrong, said so the reader knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Input that cannot be read (a file's line, an argument).
    #[error("{0}")]
    Input(String),
    /// The store failed or cannot be opened.
    #[error("the trace store {0}")]
    Store(String),
    #[error(transparent)]
    Decode(#[from] otlp::DecodeError),
}
