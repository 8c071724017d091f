//! Production sight: what a bundle version does once it runs.
//!
//! - [`otlp`] reads OTLP/HTTP trace exports (protobuf and JSON, gzip) by
//!   the GenAI semantic conventions and the OpenInference names;
//! - [`import`] reads trace files: the existing tool's JSON trace dicts
//!   and the OTLP JSON lines a Collector's file exporter writes;
//! - [`pull`] reads Langfuse, LangSmith and Phoenix over their APIs,
//!   incrementally;
//! - [`store`] keeps spans and a summary per trace, in SQLite;
//! - [`analytics`] turns a version's traces into metrics and compares two
//!   versions (or two environments) with tests that can gate a release.
//!
//! Secrets are redacted before anything is stored ([`redact`]), and
//! content (inputs, outputs, tool arguments) is kept only when asked.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod analytics;
mod db;
pub mod import;
pub mod otlp;
pub mod pull;
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
    /// A platform a pull reads could not be reached, refused it, or
    /// answered what its API does not.
    #[error("{0}")]
    Remote(String),
}

/// Where the trace store is and how spans are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub location: Location,
    pub capture_content: bool,
    pub retention_days: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// The embedded store (a file).
    Sqlite(std::path::PathBuf),
    /// A shared PostgreSQL database, by URL (shown without its password).
    Postgres(String),
}

/// Overrides `traces.database` (and may hold the password).
pub const DATABASE_ENV: &str = "RELEASEOPS_TRACES_DATABASE";

impl Settings {
    /// The settings of a `.releaseops/` directory: `database` from its
    /// config (RELEASEOPS_TRACES_DATABASE overrides it), else the embedded
    /// store in `.releaseops/.data/`.
    pub fn new(
        releaseops_dir: &std::path::Path,
        database: Option<&str>,
        capture_content: bool,
        retention_days: f64,
    ) -> Settings {
        let env = std::env::var(DATABASE_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty());
        let location = match env.as_deref().or(database) {
            Some(url) => Location::Postgres(url.trim().to_string()),
            None => Location::Sqlite(store::default_path(releaseops_dir)),
        };
        Settings {
            location,
            capture_content,
            retention_days,
        }
    }

    /// Opens the store.
    pub fn open(&self) -> Result<TraceStore, TraceError> {
        match &self.location {
            Location::Sqlite(p) => TraceStore::open_sqlite(p),
            Location::Postgres(url) => TraceStore::open_postgres(url),
        }
    }

    /// Where it is, for people (no password).
    pub fn describe(&self) -> String {
        match &self.location {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => redact::text(url).into_owned(),
        }
    }

    pub fn read_options(&self) -> ReadOptions {
        ReadOptions::new(self.capture_content)
    }

    /// Unix nanoseconds before which traces are pruned.
    pub fn retention_cutoff_ns(&self, now_ns: i64) -> i64 {
        now_ns.saturating_sub((self.retention_days * 86_400e9) as i64)
    }
}
