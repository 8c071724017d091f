//! The trace store: every span, and one summary row per trace that
//! analytics read (its bundle, when it ran, how long, whether anything in
//! it failed, tokens, cost, the tools it called). Embedded SQLite by
//! default, in `.releaseops/.data/` (never committed).
//!
//! A span is stored once: an exporter that retries a batch it already sent
//! changes nothing. A trace takes its bundle from whichever of its spans
//! names one, in any batch and in any order, so spans started by
//! libraries that know nothing of releaseops still count for the version
//! that served them. Every write is one transaction: a batch or a file is
//! stored whole or not at all.
//!
//! Several servers share one PostgreSQL database instead: the same schema
//! and the same statements (placeholders and two functions are spelt per
//! dialect by [`Dialect::sql`]), so what is tested on one holds on both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::TraceError;
use crate::db::{Conn, Dialect, Param, Row, Tx, connect_postgres, sqlite_err};
use crate::redact;
use crate::span::{BundleTag, Source, Span, Status, ToolCall};

const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spans (
  trace_id {bytes} NOT NULL,
  span_id {bytes} NOT NULL,
  parent_span_id {bytes},
  name TEXT NOT NULL,
  start_ns BIGINT NOT NULL,
  end_ns BIGINT NOT NULL,
  status BIGINT NOT NULL,
  status_message TEXT,
  error_type TEXT,
  operation TEXT,
  model TEXT,
  input_tokens BIGINT,
  output_tokens BIGINT,
  cost DOUBLE PRECISION,
  finish_reasons TEXT,
  tool_calls TEXT,
  input TEXT,
  output TEXT,
  attributes TEXT,
  source TEXT NOT NULL,
  PRIMARY KEY (trace_id, span_id)
);
CREATE TABLE IF NOT EXISTS traces (
  trace_id {bytes} PRIMARY KEY,
  bundle_id TEXT,
  bundle_version TEXT,
  environment TEXT,
  start_ns BIGINT NOT NULL,
  end_ns BIGINT NOT NULL,
  root_ns BIGINT,
  spans BIGINT NOT NULL,
  errors BIGINT NOT NULL,
  input_tokens BIGINT NOT NULL,
  output_tokens BIGINT NOT NULL,
  cost DOUBLE PRECISION,
  tools TEXT,
  root_tagged BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_by_bundle ON traces (bundle_id, bundle_version, environment, start_ns, errors, root_ns, end_ns, input_tokens, output_tokens, cost, tools);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ns BIGINT NOT NULL);
";

/// A span's row. Which bundle it belongs to is its trace's (in `traces`),
/// not repeated on every span.
const INSERT_SPAN: &str = "INSERT INTO spans (trace_id, span_id, parent_span_id, name, start_ns, end_ns, status, status_message, error_type, operation, model, input_tokens, output_tokens, cost, finish_reasons, tool_calls, input, output, attributes, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) ON CONFLICT (trace_id, span_id) DO NOTHING";

/// [`INSERT_SPAN`] for SQLite: a statement that cannot fail half-way (a
/// span already stored is skipped, and nothing else can conflict: every
/// NOT NULL column is always given) needs no statement journal, which
/// otherwise copies the pages it touches.
const INSERT_SPAN_SQLITE: &str = "INSERT OR IGNORE INTO spans (trace_id, span_id, parent_span_id, name, start_ns, end_ns, status, status_message, error_type, operation, model, input_tokens, output_tokens, cost, finish_reasons, tool_calls, input, output, attributes, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";

/// SQLite's [`UPSERT_TRACE`] in two steps, for the same reason: new traces
/// inserted, then the ones already stored updated exactly as the upsert's
/// `DO UPDATE` does (the right-hand sides read the row as it was).
const INSERT_TRACE_SQLITE: &str = "INSERT OR IGNORE INTO traces (trace_id, bundle_id, bundle_version, environment, start_ns, end_ns, root_ns, spans, errors, input_tokens, output_tokens, cost, tools, root_tagged) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
const UPDATE_TRACE_SQLITE: &str = "UPDATE traces SET bundle_id = CASE WHEN (?14 = 1 AND root_tagged = 0) OR bundle_id IS NULL THEN ?2 ELSE bundle_id END, bundle_version = CASE WHEN (?14 = 1 AND root_tagged = 0) OR bundle_id IS NULL THEN ?3 ELSE bundle_version END, environment = CASE WHEN (?14 = 1 AND root_tagged = 0) OR bundle_id IS NULL THEN ?4 ELSE environment END, root_tagged = MAX(root_tagged, ?14), start_ns = MIN(start_ns, ?5), end_ns = MAX(end_ns, ?6), root_ns = COALESCE(?7, root_ns), spans = spans + ?8, errors = errors + ?9, input_tokens = MIN(input_tokens + ?10, 1000000000000000), output_tokens = MIN(output_tokens + ?11, 1000000000000000), cost = CASE WHEN cost IS NULL AND ?12 IS NULL THEN NULL ELSE COALESCE(cost, 0) + COALESCE(?12, 0) END, tools = CASE WHEN ?13 IS NULL OR length(COALESCE(tools, '')) + length(?13) > 1024 THEN tools ELSE COALESCE(tools, '') || ?13 END WHERE trace_id = ?1";

/// A trace's bundle is its root span's when the root names one, else the
/// first span's that named one; the three fields always come from the same
/// span. Its tool calls are kept up to `MAX_TOOLS_TEXT` bytes.
const UPSERT_TRACE: &str = "INSERT INTO traces (trace_id, bundle_id, bundle_version, environment, start_ns, end_ns, root_ns, spans, errors, input_tokens, output_tokens, cost, tools, root_tagged) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT (trace_id) DO UPDATE SET bundle_id = CASE WHEN (excluded.root_tagged = 1 AND traces.root_tagged = 0) OR traces.bundle_id IS NULL THEN excluded.bundle_id ELSE traces.bundle_id END, bundle_version = CASE WHEN (excluded.root_tagged = 1 AND traces.root_tagged = 0) OR traces.bundle_id IS NULL THEN excluded.bundle_version ELSE traces.bundle_version END, environment = CASE WHEN (excluded.root_tagged = 1 AND traces.root_tagged = 0) OR traces.bundle_id IS NULL THEN excluded.environment ELSE traces.environment END, root_tagged = {greatest}(traces.root_tagged, excluded.root_tagged), start_ns = {least}(traces.start_ns, excluded.start_ns), end_ns = {greatest}(traces.end_ns, excluded.end_ns), root_ns = COALESCE(excluded.root_ns, traces.root_ns), spans = traces.spans + excluded.spans, errors = traces.errors + excluded.errors, input_tokens = {least}(traces.input_tokens + excluded.input_tokens, 1000000000000000), output_tokens = {least}(traces.output_tokens + excluded.output_tokens, 1000000000000000), cost = CASE WHEN traces.cost IS NULL AND excluded.cost IS NULL THEN NULL ELSE COALESCE(traces.cost, 0) + COALESCE(excluded.cost, 0) END, tools = CASE WHEN excluded.tools IS NULL OR octet_length(COALESCE(traces.tools, '')) + octet_length(excluded.tools) > 1024 THEN traces.tools ELSE COALESCE(traces.tools, '') || excluded.tools END";

/// The most spans of one trace read back (the first, by start): a trace
/// forged with millions of spans cannot fill memory when it is opened.
pub const MAX_SPANS_READ: usize = 100_000;

/// The most tokens a trace's row sums, in either direction (the literal in
/// the SQL above): a thousand spans at the most one span may say.
const MAX_TRACE_TOKENS: i64 = 1_000_000_000_000_000;

/// The most of a trace's tool calls kept in its row (about 60 calls): the
/// row sits in an index, and PostgreSQL caps an index entry's size.
const MAX_TOOLS_TEXT: usize = 1024;

/// A trace's tool calls, in its row: `\nNAME\tK` per call, K `e` for a
/// call a span ran and `r` for one a model asked for. Appended as spans
/// arrive; a trace counts the calls it ran, or, when no span of it ran a
/// tool, those its model asked for.
fn tool_entries(calls: &[ToolCall], out: &mut String) {
    for c in calls {
        if out.len() + c.name.len() + 3 > MAX_TOOLS_TEXT {
            return;
        }
        out.push('\n');
        out.extend(
            c.name
                .chars()
                .map(|ch| if ch == '\n' || ch == '\t' { ' ' } else { ch }),
        );
        out.push('\t');
        out.push(if c.executed { 'e' } else { 'r' });
    }
}

/// Counts of a trace's `tools` column.
fn count_tools(column: &str, into: &mut BTreeMap<String, u64>) {
    let entries = || column.split('\n').filter_map(|e| e.rsplit_once('\t'));
    let executed = entries().any(|(_, k)| k == "e");
    for (name, kind) in entries() {
        if (kind == "e") == executed {
            *into.entry(name.to_string()).or_default() += 1;
        }
    }
}

/// Where the embedded store lives in a `.releaseops/` directory.
pub fn default_path(releaseops_dir: &Path) -> PathBuf {
    releaseops_dir.join(".data").join("traces.sqlite")
}

/// What a write stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// New spans.
    pub spans: u64,
    /// Spans already in the store (a retried export), left as they were.
    pub duplicates: u64,
}

/// Which traces a query is about.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub bundle_id: Option<String>,
    pub bundle_version: Option<String>,
    pub environment: Option<String>,
    /// Unix nanoseconds: traces that started at or after.
    pub since_ns: Option<i64>,
    /// Traces that started before.
    pub until_ns: Option<i64>,
    /// Some(true): only traces with an error; Some(false): only without.
    pub errors: Option<bool>,
    pub tool: Option<String>,
}

impl Filter {
    /// The WHERE clause on `traces t` and its parameters.
    fn clause(&self) -> (String, Vec<Param<'_>>) {
        let mut conds = Vec::new();
        let mut args: Vec<Param> = Vec::new();
        for (col, v) in [
            ("bundle_id", &self.bundle_id),
            ("bundle_version", &self.bundle_version),
            ("environment", &self.environment),
        ] {
            if let Some(v) = v {
                args.push(v.into());
                conds.push(format!("t.{col} = ?{}", args.len()));
            }
        }
        if let Some(s) = self.since_ns {
            args.push(s.into());
            conds.push(format!("t.start_ns >= ?{}", args.len()));
        }
        if let Some(u) = self.until_ns {
            args.push(u.into());
            conds.push(format!("t.start_ns < ?{}", args.len()));
        }
        match self.errors {
            Some(true) => conds.push("t.errors > 0".into()),
            Some(false) => conds.push("t.errors = 0".into()),
            None => {}
        }
        if let Some(tool) = &self.tool {
            args.push(format!("\n{tool}\t").into());
            conds.push(format!("{{instr}}(t.tools, ?{}) > 0", args.len()));
        }
        let clause = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        (clause, args)
    }
}

/// One trace, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    #[serde(flatten)]
    pub bundle: BundleTag,
    pub start_ns: i64,
    pub end_ns: i64,
    /// The root span's duration when it arrived, else first start to last end.
    pub latency_ns: i64,
    pub spans: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// Tool -> calls.
    pub tools: BTreeMap<String, u64>,
}

/// Counts per bundle version and environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStats {
    #[serde(flatten)]
    pub bundle: BundleTag,
    pub traces: u64,
    pub errors: u64,
    pub first_ns: i64,
    pub last_ns: i64,
}

/// What the store holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreStats {
    pub spans: u64,
    pub traces: u64,
    pub size_bytes: u64,
    pub groups: Vec<GroupStats>,
}

/// What analytics compare: one value per trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub traces: u64,
    pub errors: u64,
    /// Sorted, nanoseconds.
    pub latency_ns: Vec<i64>,
    pub input_tokens: Vec<i64>,
    pub output_tokens: Vec<i64>,
    /// Micro-dollars, sorted; only traces whose cost is known.
    pub cost_micros: Vec<i64>,
    pub tools: BTreeMap<String, u64>,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
}

fn opt_json<T: Serialize>(v: &[T]) -> Option<String> {
    (!v.is_empty()).then(|| serde_json::to_string(v).unwrap_or_default())
}

/// The trace store.
pub struct TraceStore {
    conn: Conn,
    /// What the store is, for messages (a path, or a URL without its
    /// password).
    label: String,
    /// How to connect again after PostgreSQL went away.
    url: Option<String>,
}

/// Serialises schema creation between servers starting at once.
const SCHEMA_LOCK: i64 = 0x7265_6c6f_7073;

impl TraceStore {
    /// Opens (creating it if need be) the embedded store at `path`.
    pub fn open_sqlite(path: &Path) -> Result<TraceStore, TraceError> {
        let label = path.display().to_string();
        if let Some(dir) = path.parent() {
            // A link in the place of the data directory (it could be
            // committed: the ignore rule matches directories only) would
            // put the store wherever it points.
            if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(TraceError::Store(format!(
                    "{} is a symbolic link; the trace store's directory must be a real one",
                    dir.display()
                )));
            }
            std::fs::create_dir_all(dir)
                .map_err(|e| TraceError::Store(format!("cannot create {}: {e}", dir.display())))?;
            // Never committed, whatever the repository's own ignore rules say.
            let ignore = dir.join(".gitignore");
            if !ignore.exists() {
                let _ = std::fs::write(&ignore, "*\n");
            }
        }
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.file_type().is_symlink()
        {
            return Err(TraceError::Store(format!(
                "{label} is a symbolic link; the trace store must be a regular file"
            )));
        }
        // And SQLite itself refuses a link, so nothing swaps one in between.
        let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = rusqlite::Connection::open_with_flags(path, flags)
            .map_err(|e| sqlite_err(&label, e))?;
        Self::setup_sqlite(conn, label)
    }

    /// An in-memory store (tests, rehearsals).
    pub fn open_memory() -> Result<TraceStore, TraceError> {
        let conn = rusqlite::Connection::open_in_memory().map_err(|e| sqlite_err("memory", e))?;
        Self::setup_sqlite(conn, "memory".into())
    }

    fn setup_sqlite(conn: rusqlite::Connection, label: String) -> Result<TraceStore, TraceError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| sqlite_err(&label, e))?;
        conn.execute_batch(
            "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -131072;",
        )
        .map_err(|err| {
            TraceError::Store(format!(
                "{label} is not a trace store (or is damaged): {err}; move it aside and a new one is made"
            ))
        })?;
        let mut store = TraceStore {
            conn: Conn::Sqlite(conn),
            label,
            url: None,
        };
        store
            .conn
            .batch(&store.label, &Dialect::Sqlite.sql(SCHEMA))?;
        store.check_schema()?;
        Ok(store)
    }

    /// Connects to a shared PostgreSQL database, creating the schema the
    /// first time (one server at a time).
    pub fn open_postgres(url: &str) -> Result<TraceStore, TraceError> {
        let label = format!("at {}", redact::text(url));
        let client = connect_postgres(url, &label)?;
        let mut store = TraceStore {
            conn: Conn::Postgres(Box::new(client)),
            label,
            url: Some(url.to_string()),
        };
        store.setup_postgres()?;
        Ok(store)
    }

    fn setup_postgres(&mut self) -> Result<(), TraceError> {
        let label = self.label.clone();
        self.conn
            .batch(&label, &format!("SELECT pg_advisory_lock({SCHEMA_LOCK})"))?;
        let made = self
            .conn
            .batch(&label, &Dialect::Postgres.sql(SCHEMA))
            .and_then(|()| self.check_schema());
        let unlocked = self
            .conn
            .batch(&label, &format!("SELECT pg_advisory_unlock({SCHEMA_LOCK})"));
        made.and(unlocked)
    }

    fn check_schema(&mut self) -> Result<(), TraceError> {
        let label = self.label.clone();
        self.conn.execute(
            &label,
            "INSERT INTO meta (key, value) VALUES ('schema', ?1) ON CONFLICT (key) DO NOTHING",
            &[SCHEMA_VERSION.into()],
        )?;
        let mut version = None;
        self.conn.query(
            &label,
            "SELECT value FROM meta WHERE key = 'schema'",
            &[],
            &mut |r| {
                version = r.text(0)?;
                Ok(())
            },
        )?;
        match version.as_deref() {
            Some(SCHEMA_VERSION) => Ok(()),
            other => Err(TraceError::Store(format!(
                "{label} has schema version {}; this releaseops reads version {SCHEMA_VERSION}: upgrade releaseops",
                other.unwrap_or("(none)")
            ))),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// PostgreSQL that went away (restarted, a network cut) is connected to
    /// again before the next operation.
    fn ready(&mut self) -> Result<(), TraceError> {
        if self.conn.is_closed()
            && let Some(url) = self.url.clone()
        {
            let client = connect_postgres(&url, &self.label)?;
            self.conn = Conn::Postgres(Box::new(client));
        }
        Ok(())
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Param],
        f: &mut dyn FnMut(&dyn Row) -> Result<(), TraceError>,
    ) -> Result<(), TraceError> {
        self.ready()?;
        let label = self.label.clone();
        self.conn.query(&label, sql, params, f)
    }

    fn count(&mut self, sql: &str) -> Result<u64, TraceError> {
        let mut n = 0;
        self.query(sql, &[], &mut |r| {
            n = r.int0(0)?.max(0) as u64;
            Ok(())
        })?;
        Ok(n)
    }

    /// Starts a write: everything added is stored at [`Writer::commit`],
    /// or not at all.
    pub fn writer(&mut self) -> Result<Writer<'_>, TraceError> {
        self.ready()?;
        let tx = self.conn.transaction(&self.label)?;
        Ok(Writer {
            tx,
            label: &self.label,
            stored: Stored::default(),
        })
    }

    /// Stores `spans` in one transaction.
    pub fn insert(&mut self, spans: &[Span]) -> Result<Stored, TraceError> {
        let mut w = self.writer()?;
        w.add(spans)?;
        w.commit()
    }

    /// Traces matching `f`, newest first.
    pub fn traces(&mut self, f: &Filter, limit: usize) -> Result<Vec<TraceSummary>, TraceError> {
        let (clause, mut args) = f.clause();
        args.push((limit.min(i64::MAX as usize) as i64).into());
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM traces t{clause} ORDER BY t.start_ns DESC, t.trace_id LIMIT ?{}",
            args.len()
        );
        let mut out = Vec::new();
        self.query(&sql, &args, &mut |r| {
            out.push(row_to_summary(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// One trace and its spans (in start order); None when it is not stored.
    /// `id` may be a unique prefix of at least 8 hex digits.
    pub fn trace(&mut self, id: &str) -> Result<Option<(TraceSummary, Vec<Span>)>, TraceError> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 8 || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TraceError::Input(format!(
                "'{}' is not a trace id: give its 32 hex digits (or a unique prefix of at least 8)",
                redact::preview(&id)
            )));
        }
        let mut ids: Vec<String> = Vec::new();
        self.query(
            "SELECT trace_id FROM traces WHERE trace_id >= ?1 AND trace_id <= ?2 ORDER BY trace_id LIMIT 2",
            &[
                Param::id(&format!("{id:0<32}")),
                Param::id(&format!("{id:f<32}")),
            ],
            &mut |r| {
                ids.push(r.id(0)?);
                Ok(())
            },
        )?;
        if ids.len() > 1 {
            return Err(TraceError::Input(format!(
                "'{id}' names more than one trace ({} and {}); give more of its digits",
                ids[0], ids[1]
            )));
        }
        let Some(full) = ids.pop() else {
            return Ok(None);
        };
        let mut summary = None;
        self.query(
            &format!("SELECT {SUMMARY_COLUMNS} FROM traces t WHERE t.trace_id = ?1"),
            &[Param::id(&full)],
            &mut |r| {
                summary = Some(row_to_summary(r)?);
                Ok(())
            },
        )?;
        let Some(summary) = summary else {
            return Ok(None);
        };
        let mut spans = Vec::new();
        self.query(
            &format!(
                "SELECT {SPAN_COLUMNS} FROM spans WHERE trace_id = ?1 ORDER BY start_ns, span_id LIMIT {MAX_SPANS_READ}"
            ),
            &[Param::id(&full)],
            &mut |r| {
                spans.push(row_to_span(r)?);
                Ok(())
            },
        )?;
        for s in &mut spans {
            s.bundle = summary.bundle.clone();
        }
        Ok(Some((summary, spans)))
    }

    /// Counts per bundle version and environment, and the store's size.
    pub fn stats(&mut self, f: &Filter) -> Result<StoreStats, TraceError> {
        let (clause, args) = f.clause();
        let sql = format!(
            "SELECT t.bundle_id, t.bundle_version, t.environment, COUNT(*), CAST(SUM(CASE WHEN t.errors > 0 THEN 1 ELSE 0 END) AS BIGINT), MIN(t.start_ns), MAX(t.start_ns) FROM traces t{clause} GROUP BY t.bundle_id, t.bundle_version, t.environment ORDER BY t.bundle_id, t.bundle_version, t.environment"
        );
        let mut groups = Vec::new();
        self.query(&sql, &args, &mut |r| {
            groups.push(GroupStats {
                bundle: BundleTag {
                    bundle_id: r.text(0)?,
                    bundle_version: r.text(1)?,
                    environment: r.text(2)?,
                },
                traces: r.int0(3)?.max(0) as u64,
                errors: r.int0(4)?.max(0) as u64,
                first_ns: r.int0(5)?,
                last_ns: r.int0(6)?,
            });
            Ok(())
        })?;
        let spans = self.count("SELECT COUNT(*) FROM spans")?;
        let traces = self.count("SELECT COUNT(*) FROM traces")?;
        Ok(StoreStats {
            spans,
            traces,
            size_bytes: self.size_bytes()?,
            groups,
        })
    }

    /// Bytes the store takes (pages in use; tables and indexes).
    pub fn size_bytes(&mut self) -> Result<u64, TraceError> {
        match self.conn.dialect() {
            Dialect::Sqlite => {
                let pages = self.count("PRAGMA page_count")?;
                let size = self.count("PRAGMA page_size")?;
                let free = self.count("PRAGMA freelist_count")?;
                Ok(pages.saturating_sub(free) * size)
            }
            Dialect::Postgres => self.count(
                "SELECT CAST(pg_total_relation_size('spans') + pg_total_relation_size('traces') AS BIGINT)",
            ),
        }
    }

    /// The per-trace values analytics compare, for the traces `f` matches.
    pub fn sample(&mut self, f: &Filter) -> Result<Sample, TraceError> {
        let (clause, args) = f.clause();
        let sql = format!(
            "SELECT COALESCE(t.root_ns, t.end_ns - t.start_ns), t.errors, t.input_tokens, t.output_tokens, t.cost, t.start_ns, t.tools FROM traces t{clause}"
        );
        let mut s = Sample::default();
        self.query(&sql, &args, &mut |r| {
            s.traces += 1;
            s.latency_ns.push(r.int0(0)?.max(0));
            if r.int0(1)? > 0 {
                s.errors += 1;
            }
            s.input_tokens.push(r.int0(2)?);
            s.output_tokens.push(r.int0(3)?);
            if let Some(c) = r.float(4)? {
                s.cost_micros.push((c * 1e6).round() as i64);
            }
            let start = r.int0(5)?;
            s.first_ns = Some(s.first_ns.map_or(start, |f| f.min(start)));
            s.last_ns = Some(s.last_ns.map_or(start, |l| l.max(start)));
            if let Some(t) = r.text(6)? {
                count_tools(&t, &mut s.tools);
            }
            Ok(())
        })?;
        for v in [
            &mut s.latency_ns,
            &mut s.input_tokens,
            &mut s.output_tokens,
            &mut s.cost_micros,
        ] {
            v.sort_unstable();
        }
        Ok(s)
    }

    /// The values of a numeric span attribute, summed per trace, for the
    /// traces `f` matches (traces without it are left out), sorted, in
    /// millionths.
    pub fn attribute_sample(&mut self, f: &Filter, name: &str) -> Result<Vec<i64>, TraceError> {
        let (clause, mut args) = f.clause();
        // A first cut by text (`_` and `%` in the name only widen it); the
        // value itself is read from the JSON below.
        args.push(format!("%{}%", serde_json::to_string(name).unwrap_or_default()).into());
        let sql = format!(
            "SELECT s.trace_id, s.attributes FROM spans s JOIN traces t ON t.trace_id = s.trace_id{} s.attributes LIKE ?{}",
            if clause.is_empty() {
                " WHERE".to_string()
            } else {
                format!("{clause} AND")
            },
            args.len()
        );
        let mut per_trace: BTreeMap<String, f64> = BTreeMap::new();
        self.query(&sql, &args, &mut |r| {
            let trace = r.id(0)?;
            let value = r
                .text(1)?
                .and_then(|a| serde_json::from_str::<serde_json::Map<String, Value>>(&a).ok())
                .and_then(|m| m.get(name).and_then(Value::as_f64));
            if let Some(v) = value {
                *per_trace.entry(trace).or_default() += v;
            }
            Ok(())
        })?;
        let mut out: Vec<i64> = per_trace
            .values()
            .map(|v| (v * 1e6).round() as i64)
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Deletes traces that started before `cutoff_ns`, with their spans.
    pub fn prune(&mut self, cutoff_ns: i64) -> Result<u64, TraceError> {
        let mut w = self.writer()?;
        let label = w.label;
        let cut = [Param::from(cutoff_ns)];
        w.tx.execute(
            label,
            "DELETE FROM spans WHERE trace_id IN (SELECT trace_id FROM traces WHERE start_ns < ?1)",
            &cut,
        )?;
        let n =
            w.tx.execute(label, "DELETE FROM traces WHERE start_ns < ?1", &cut)?;
        w.commit()?;
        Ok(n)
    }

    /// A pull's saved position.
    pub fn cursor(&mut self, name: &str) -> Result<Option<String>, TraceError> {
        let mut v = None;
        self.query(
            "SELECT value FROM cursors WHERE name = ?1",
            &[name.into()],
            &mut |r| {
                v = r.text(0)?;
                Ok(())
            },
        )?;
        Ok(v)
    }
}

const SUMMARY_COLUMNS: &str = "t.trace_id, t.bundle_id, t.bundle_version, t.environment, t.start_ns, t.end_ns, COALESCE(t.root_ns, t.end_ns - t.start_ns), t.spans, t.errors, t.input_tokens, t.output_tokens, t.cost, t.tools";

fn row_to_summary(r: &dyn Row) -> Result<TraceSummary, TraceError> {
    Ok(TraceSummary {
        trace_id: r.id(0)?,
        bundle: BundleTag {
            bundle_id: r.text(1)?,
            bundle_version: r.text(2)?,
            environment: r.text(3)?,
        },
        start_ns: r.int0(4)?,
        end_ns: r.int0(5)?,
        latency_ns: r.int0(6)?,
        spans: r.int0(7)?.max(0) as u64,
        errors: r.int0(8)?.max(0) as u64,
        input_tokens: r.int0(9)?.max(0) as u64,
        output_tokens: r.int0(10)?.max(0) as u64,
        cost: r.float(11)?,
        tools: {
            let mut tools = BTreeMap::new();
            if let Some(t) = r.text(12)? {
                count_tools(&t, &mut tools);
            }
            tools
        },
    })
}

const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, name, start_ns, end_ns, status, status_message, error_type, operation, model, input_tokens, output_tokens, cost, finish_reasons, tool_calls, input, output, attributes, source";

fn row_to_span(r: &dyn Row) -> Result<Span, TraceError> {
    let finish: Vec<String> = r
        .text(14)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let tools: Vec<ToolCall> = r
        .text(15)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let attributes = r
        .text(18)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    Ok(Span {
        trace_id: r.id(0)?,
        span_id: r.id(1)?,
        parent_span_id: r.opt_id(2)?,
        name: r.text0(3)?,
        start_ns: r.int0(4)?,
        end_ns: r.int0(5)?,
        status: Status::from_code(r.int0(6)?),
        status_message: r.text(7)?,
        error_type: r.text(8)?,
        bundle: BundleTag::default(),
        operation: r.text(9)?,
        model: r.text(10)?,
        input_tokens: r.int(11)?,
        output_tokens: r.int(12)?,
        cost: r.float(13)?,
        finish_reasons: finish,
        tool_calls: tools,
        input: r.text(16)?,
        output: r.text(17)?,
        attributes,
        source: Source::parse(&r.text0(19)?).unwrap_or(Source::Import),
    })
}

/// A span's JSON columns: finish reasons, tool calls, attributes.
fn json_columns(s: &Span) -> [Option<String>; 3] {
    [
        opt_json(&s.finish_reasons),
        opt_json(&s.tool_calls),
        (!s.attributes.is_empty())
            .then(|| serde_json::to_string(&s.attributes).unwrap_or_default()),
    ]
}

/// A span with its JSON columns already written, so the thread that
/// stores it does only the storing.
pub struct Prepared {
    pub span: Span,
    json: [Option<String>; 3],
}

impl Prepared {
    pub fn new(span: Span) -> Prepared {
        let json = json_columns(&span);
        Prepared { span, json }
    }
}

/// A trace's row of parameters, as the trace statements take them.
fn trace_row<'a>((id, d): &'a (&str, TraceDelta<'_>)) -> [Param<'a>; 14] {
    [
        Param::id(id),
        (&d.bundle.bundle_id).into(),
        (&d.bundle.bundle_version).into(),
        (&d.bundle.environment).into(),
        d.start.into(),
        d.end.into(),
        d.root.into(),
        d.spans.into(),
        d.errors.into(),
        d.input.into(),
        d.output.into(),
        d.cost.into(),
        if d.tools.is_empty() {
            Param::Text(None)
        } else {
            d.tools.as_str().into()
        },
        i64::from(d.root_tagged).into(),
    ]
}

/// One write in progress: rolled back unless committed.
pub struct Writer<'a> {
    tx: Tx<'a>,
    label: &'a str,
    stored: Stored,
}

/// A trace's share of one batch.
#[derive(Default)]
struct TraceDelta<'a> {
    /// (Borrowed from the span it came from: a batch has thousands.)
    bundle: std::borrow::Cow<'a, BundleTag>,
    start: i64,
    end: i64,
    root: Option<i64>,
    spans: i64,
    errors: i64,
    input: i64,
    output: i64,
    cost: Option<f64>,
    tools: String,
    /// The bundle came from the root span.
    root_tagged: bool,
}

impl Writer<'_> {
    /// What this write has stored so far.
    pub fn stored(&self) -> Stored {
        self.stored
    }

    /// Adds spans (those already stored are skipped).
    pub fn add(&mut self, spans: &[Span]) -> Result<(), TraceError> {
        let json: Vec<[Option<String>; 3]> = spans.iter().map(json_columns).collect();
        self.add_rows(spans.iter().zip(json.iter()).collect())
    }

    /// Adds spans whose JSON columns were written beforehand (on another
    /// thread, say).
    pub fn add_prepared(&mut self, spans: &[Prepared]) -> Result<(), TraceError> {
        self.add_rows(spans.iter().map(|p| (&p.span, &p.json)).collect())
    }

    fn add_rows(
        &mut self,
        mut ordered: Vec<(&Span, &[Option<String>; 3])>,
    ) -> Result<(), TraceError> {
        let label = self.label;
        let mut deltas: BTreeMap<&str, TraceDelta<'_>> = BTreeMap::new();
        // In key order, so two servers storing overlapping batches at once
        // take their row locks in the same order and never deadlock.
        ordered.sort_unstable_by(|a, b| {
            (&a.0.trace_id, &a.0.span_id).cmp(&(&b.0.trace_id, &b.0.span_id))
        });
        // Every span's row in one go (one prepared statement), then the
        // traces of those that were new.
        let mut fresh = Vec::with_capacity(ordered.len());
        let sqlite = self.tx.is_sqlite();
        self.tx.execute_many(
            label,
            if sqlite {
                INSERT_SPAN_SQLITE
            } else {
                INSERT_SPAN
            },
            // Each row's parameters on the stack: a batch binds millions.
            ordered.iter().map(|&(s, [finish, tools, attrs])| {
                [
                    Param::id(&s.trace_id),
                    Param::id(&s.span_id),
                    Param::opt_id(s.parent_span_id.as_deref()),
                    (&s.name).into(),
                    s.start_ns.into(),
                    s.end_ns.into(),
                    s.status.code().into(),
                    (&s.status_message).into(),
                    (&s.error_type).into(),
                    (&s.operation).into(),
                    (&s.model).into(),
                    s.input_tokens.into(),
                    s.output_tokens.into(),
                    s.cost.into(),
                    finish.into(),
                    tools.into(),
                    (&s.input).into(),
                    (&s.output).into(),
                    attrs.into(),
                    s.source.as_str().into(),
                ]
            }),
            &mut |n| fresh.push(n > 0),
        )?;
        for ((s, _), n) in ordered.into_iter().zip(fresh) {
            let n = u64::from(n);
            if n == 0 {
                self.stored.duplicates += 1;
                continue;
            }
            self.stored.spans += 1;
            let d = deltas
                .entry(s.trace_id.as_str())
                .or_insert_with(|| TraceDelta {
                    start: s.start_ns,
                    end: s.end_ns,
                    ..TraceDelta::default()
                });
            // The root's tag, else the first tag seen; never mixed.
            let is_root = s.parent_span_id.is_none();
            if s.bundle.bundle_id.is_some()
                && (d.bundle.bundle_id.is_none() || (is_root && !d.root_tagged))
            {
                d.bundle = std::borrow::Cow::Borrowed(&s.bundle);
                d.root_tagged = is_root;
            }
            d.start = d.start.min(s.start_ns);
            d.end = d.end.max(s.end_ns);
            if s.parent_span_id.is_none() {
                d.root = Some(s.duration_ns());
            }
            d.spans += 1;
            if s.is_error() {
                d.errors += 1;
            }
            // A trace's sums stop at MAX_TRACE_TOKENS (the SQL updates
            // too): no batch, however many, overflows a row.
            d.input = d
                .input
                .saturating_add(s.input_tokens.unwrap_or(0))
                .min(MAX_TRACE_TOKENS);
            d.output = d
                .output
                .saturating_add(s.output_tokens.unwrap_or(0))
                .min(MAX_TRACE_TOKENS);
            if let Some(c) = s.cost {
                d.cost = Some(d.cost.unwrap_or(0.0) + c);
            }
            tool_entries(&s.tool_calls, &mut d.tools);
        }
        let deltas: Vec<(&str, TraceDelta<'_>)> = deltas.into_iter().collect();
        if !sqlite {
            return self.tx.execute_many(
                label,
                UPSERT_TRACE,
                deltas.iter().map(trace_row),
                &mut |_| {},
            );
        }
        let mut inserted = Vec::with_capacity(deltas.len());
        self.tx.execute_many(
            label,
            INSERT_TRACE_SQLITE,
            deltas.iter().map(trace_row),
            &mut |n| inserted.push(n > 0),
        )?;
        let stored = deltas
            .iter()
            .zip(inserted)
            .filter(|(_, new)| !new)
            .map(|(r, _)| r);
        self.tx.execute_many(
            label,
            UPDATE_TRACE_SQLITE,
            stored.map(trace_row),
            &mut |_| {},
        )
    }

    /// Saves a pull's position with the spans it brought.
    pub fn set_cursor(&mut self, name: &str, value: &str, now_ns: i64) -> Result<(), TraceError> {
        self.tx.execute(
            self.label,
            "INSERT INTO cursors (name, value, updated_ns) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_ns = excluded.updated_ns",
            &[name.into(), value.into(), now_ns.into()],
        )?;
        Ok(())
    }

    pub fn commit(self) -> Result<Stored, TraceError> {
        let stored = self.stored;
        self.tx.commit(self.label)?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::ReadOptions;

    pub(crate) fn span(
        trace: u8,
        id: u8,
        parent: Option<u8>,
        bundle: Option<(&str, &str, &str)>,
    ) -> Span {
        let now = ReadOptions::new(false).now_ns;
        Span {
            trace_id: format!("{trace:032x}"),
            span_id: format!("{id:016x}"),
            parent_span_id: parent.map(|p| format!("{p:016x}")),
            name: "s".into(),
            start_ns: now - 1_000_000 * i64::from(id),
            end_ns: now,
            status: Status::Ok,
            status_message: None,
            error_type: None,
            bundle: bundle
                .map(|(a, b, c)| BundleTag {
                    bundle_id: Some(a.into()),
                    bundle_version: Some(b.into()),
                    environment: Some(c.into()),
                })
                .unwrap_or_default(),
            operation: None,
            model: None,
            input_tokens: Some(10),
            output_tokens: Some(5),
            cost: None,
            finish_reasons: vec![],
            tool_calls: vec![],
            input: None,
            output: None,
            attributes: serde_json::Map::new(),
            source: Source::Otlp,
        }
    }

    #[test]
    fn spans_are_stored_once_and_traces_inherit_their_bundle_across_batches() {
        let mut store = TraceStore::open_memory().unwrap();
        // A child arrives first, untagged; the tagged root later.
        let mut child = span(1, 2, Some(1), None);
        child.tool_calls.push(ToolCall {
            name: "issue_refund".into(),
            arguments: None,
            executed: true,
        });
        child.status = Status::Error;
        assert_eq!(store.insert(&[child.clone()]).unwrap().spans, 1);
        let root = span(1, 1, None, Some(("support-agent", "1.1.0", "prod")));
        let stored = store.insert(&[root.clone(), child.clone()]).unwrap();
        assert_eq!(
            stored,
            Stored {
                spans: 1,
                duplicates: 1
            }
        );
        let f = Filter {
            bundle_id: Some("support-agent".into()),
            bundle_version: Some("1.1.0".into()),
            ..Filter::default()
        };
        let traces = store.traces(&f, 10).unwrap();
        assert_eq!(traces.len(), 1);
        let t = &traces[0];
        assert_eq!((t.spans, t.errors, t.input_tokens), (2, 1, 20));
        assert_eq!(t.latency_ns, root.duration_ns());
        assert_eq!(t.tools["issue_refund"], 1);
        let sample = store.sample(&f).unwrap();
        assert_eq!((sample.traces, sample.errors), (1, 1));
        assert_eq!(sample.tools["issue_refund"], 1);
        let (summary, spans) = store.trace(&format!("{:032x}", 1)[..12]).unwrap().unwrap();
        assert_eq!(summary.trace_id, t.trace_id);
        assert_eq!(spans.len(), 2);
        assert!(store.trace("zz").is_err());
        assert!(store.trace("ffffffffffff").unwrap().is_none());
        let stats = store.stats(&Filter::default()).unwrap();
        assert_eq!((stats.spans, stats.traces), (2, 1));
        assert!(stats.size_bytes > 0);
    }

    #[test]
    fn a_failed_write_stores_nothing() {
        let mut store = TraceStore::open_memory().unwrap();
        {
            let mut w = store.writer().unwrap();
            w.add(&[span(3, 1, None, None)]).unwrap();
            // dropped without commit
        }
        assert_eq!(store.stats(&Filter::default()).unwrap().spans, 0);
    }
}
