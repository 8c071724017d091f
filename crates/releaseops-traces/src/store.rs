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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;
use serde_json::Value;

use crate::TraceError;
use crate::span::{BundleTag, Source, Span, Status, ToolCall};

const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spans (
  trace_id TEXT NOT NULL,
  span_id TEXT NOT NULL,
  parent_span_id TEXT,
  name TEXT NOT NULL,
  start_ns BIGINT NOT NULL,
  end_ns BIGINT NOT NULL,
  status SMALLINT NOT NULL,
  status_message TEXT,
  error_type TEXT,
  bundle_id TEXT,
  bundle_version TEXT,
  environment TEXT,
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
CREATE INDEX IF NOT EXISTS spans_by_start ON spans (start_ns);
CREATE TABLE IF NOT EXISTS traces (
  trace_id TEXT PRIMARY KEY,
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
  cost DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS traces_by_bundle ON traces (bundle_id, bundle_version, environment, start_ns);
CREATE INDEX IF NOT EXISTS traces_by_start ON traces (start_ns);
CREATE TABLE IF NOT EXISTS trace_tools (
  trace_id TEXT NOT NULL,
  tool TEXT NOT NULL,
  executed BIGINT NOT NULL,
  requested BIGINT NOT NULL,
  PRIMARY KEY (trace_id, tool)
);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ns BIGINT NOT NULL);
";

const INSERT_SPAN: &str = "INSERT INTO spans (trace_id, span_id, parent_span_id, name, start_ns, end_ns, status, status_message, error_type, bundle_id, bundle_version, environment, operation, model, input_tokens, output_tokens, cost, finish_reasons, tool_calls, input, output, attributes, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23) ON CONFLICT (trace_id, span_id) DO NOTHING";

const UPSERT_TRACE: &str = "INSERT INTO traces (trace_id, bundle_id, bundle_version, environment, start_ns, end_ns, root_ns, spans, errors, input_tokens, output_tokens, cost) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (trace_id) DO UPDATE SET bundle_id = COALESCE(traces.bundle_id, excluded.bundle_id), bundle_version = COALESCE(traces.bundle_version, excluded.bundle_version), environment = COALESCE(traces.environment, excluded.environment), start_ns = MIN(traces.start_ns, excluded.start_ns), end_ns = MAX(traces.end_ns, excluded.end_ns), root_ns = COALESCE(excluded.root_ns, traces.root_ns), spans = traces.spans + excluded.spans, errors = traces.errors + excluded.errors, input_tokens = traces.input_tokens + excluded.input_tokens, output_tokens = traces.output_tokens + excluded.output_tokens, cost = CASE WHEN traces.cost IS NULL AND excluded.cost IS NULL THEN NULL ELSE COALESCE(traces.cost, 0) + COALESCE(excluded.cost, 0) END";

const UPSERT_TOOL: &str = "INSERT INTO trace_tools (trace_id, tool, executed, requested) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (trace_id, tool) DO UPDATE SET executed = trace_tools.executed + excluded.executed, requested = trace_tools.requested + excluded.requested";

/// Where the embedded store lives in a `.releaseops/` directory.
pub fn default_path(releaseops_dir: &Path) -> PathBuf {
    releaseops_dir.join(".data").join("traces.sqlite")
}

/// The trace store.
pub struct TraceStore {
    conn: Connection,
    /// What the store is, for messages (a path; never a password).
    label: String,
}

/// What a write stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// New spans.
    pub spans: u64,
    /// Spans already in the store (a retried export), left as they were.
    pub duplicates: u64,
}

impl std::ops::AddAssign for Stored {
    fn add_assign(&mut self, o: Stored) {
        self.spans += o.spans;
        self.duplicates += o.duplicates;
    }
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
    /// Traces with no bundle at all.
    pub untagged: bool,
}

impl Filter {
    /// The WHERE clause on `traces t` and its parameters.
    fn clause(&self) -> (String, Vec<rusqlite::types::Value>) {
        use rusqlite::types::Value as V;
        let mut conds = Vec::new();
        let mut args: Vec<V> = Vec::new();
        let mut eq = |col: &str, v: &Option<String>, conds: &mut Vec<String>| {
            if let Some(v) = v {
                args.push(V::Text(v.clone()));
                conds.push(format!("t.{col} = ?{}", args.len()));
            }
        };
        eq("bundle_id", &self.bundle_id, &mut conds);
        eq("bundle_version", &self.bundle_version, &mut conds);
        eq("environment", &self.environment, &mut conds);
        if let Some(s) = self.since_ns {
            args.push(V::Integer(s));
            conds.push(format!("t.start_ns >= ?{}", args.len()));
        }
        if let Some(u) = self.until_ns {
            args.push(V::Integer(u));
            conds.push(format!("t.start_ns < ?{}", args.len()));
        }
        match self.errors {
            Some(true) => conds.push("t.errors > 0".into()),
            Some(false) => conds.push("t.errors = 0".into()),
            None => {}
        }
        if let Some(tool) = &self.tool {
            args.push(V::Text(tool.clone()));
            conds.push(format!(
                "EXISTS (SELECT 1 FROM trace_tools x WHERE x.trace_id = t.trace_id AND x.tool = ?{})",
                args.len()
            ));
        }
        if self.untagged {
            conds.push("t.bundle_id IS NULL".into());
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

fn sql_err(label: &str) -> impl Fn(rusqlite::Error) -> TraceError + '_ {
    move |e| TraceError::Store(format!("{label}: {e}"))
}

fn opt_json<T: Serialize>(v: &[T]) -> Option<String> {
    (!v.is_empty()).then(|| serde_json::to_string(v).unwrap_or_default())
}

impl TraceStore {
    /// Opens (creating it if need be) the embedded store at `path`.
    pub fn open_sqlite(path: &Path) -> Result<TraceStore, TraceError> {
        let label = path.display().to_string();
        if let Some(dir) = path.parent() {
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
        let conn = Connection::open(path).map_err(sql_err(&label))?;
        Self::setup(conn, label)
    }

    /// An in-memory store (tests, rehearsals).
    pub fn open_memory() -> Result<TraceStore, TraceError> {
        let conn = Connection::open_in_memory().map_err(sql_err("memory"))?;
        Self::setup(conn, "memory".into())
    }

    fn setup(conn: Connection, label: String) -> Result<TraceStore, TraceError> {
        let e = sql_err(&label);
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(&e)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;")
            .map_err(|err| {
                TraceError::Store(format!(
                    "{label} is not a trace store (or is damaged): {err}; move it aside and a new one is made"
                ))
            })?;
        conn.execute_batch(SCHEMA).map_err(&e)?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(&e)?;
        match version.as_deref() {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION],
                )
                .map_err(&e)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(TraceError::Store(format!(
                    "{label} has schema version {other}; this releaseops reads version {SCHEMA_VERSION}: upgrade releaseops"
                )));
            }
        }
        drop(e);
        Ok(TraceStore { conn, label })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Starts a write: everything added is stored at [`Writer::commit`],
    /// or not at all.
    pub fn writer(&mut self) -> Result<Writer<'_>, TraceError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err(&self.label))?;
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
    pub fn traces(&self, f: &Filter, limit: usize) -> Result<Vec<TraceSummary>, TraceError> {
        let e = sql_err(&self.label);
        let (clause, mut args) = f.clause();
        args.push(rusqlite::types::Value::Integer(
            limit.min(i64::MAX as usize) as i64,
        ));
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM traces t{clause} ORDER BY t.start_ns DESC, t.trace_id LIMIT ?{}",
            args.len()
        );
        let mut stmt = self.conn.prepare(&sql).map_err(&e)?;
        let mut out: Vec<TraceSummary> = stmt
            .query_map(params_from_iter(args), row_to_summary)
            .map_err(&e)?
            .collect::<Result<_, _>>()
            .map_err(&e)?;
        let mut tools = self
            .conn
            .prepare_cached("SELECT tool, CASE WHEN executed > 0 THEN executed ELSE requested END FROM trace_tools WHERE trace_id = ?1 ORDER BY tool")
            .map_err(&e)?;
        for t in &mut out {
            let rows = tools
                .query_map([&t.trace_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .map_err(&e)?;
            for row in rows {
                let (k, v) = row.map_err(&e)?;
                t.tools.insert(k, v);
            }
        }
        Ok(out)
    }

    /// One trace and its spans (in start order); None when it is not stored.
    /// `id` may be a unique prefix of at least 8 hex digits.
    pub fn trace(&self, id: &str) -> Result<Option<(TraceSummary, Vec<Span>)>, TraceError> {
        let e = sql_err(&self.label);
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 8 || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TraceError::Input(format!(
                "'{id}' is not a trace id: give its 32 hex digits (or a unique prefix of at least 8)"
            )));
        }
        let mut ids: Vec<String> = self
            .conn
            .prepare("SELECT trace_id FROM traces WHERE trace_id >= ?1 AND trace_id < ?2 ORDER BY trace_id LIMIT 2")
            .map_err(&e)?
            .query_map(params![id, format!("{id}g")], |r| r.get(0))
            .map_err(&e)?
            .collect::<Result<_, _>>()
            .map_err(&e)?;
        if ids.len() > 1 {
            return Err(TraceError::Input(format!(
                "'{id}' names more than one trace ({} and {}); give more of its digits",
                ids[0], ids[1]
            )));
        }
        let Some(full) = ids.pop() else {
            return Ok(None);
        };
        let summary = self
            .conn
            .query_row(
                &format!("SELECT {SUMMARY_COLUMNS} FROM traces t WHERE t.trace_id = ?1"),
                [&full],
                row_to_summary,
            )
            .optional()
            .map_err(&e)?;
        let Some(mut summary) = summary else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare("SELECT trace_id, span_id, parent_span_id, name, start_ns, end_ns, status, status_message, error_type, bundle_id, bundle_version, environment, operation, model, input_tokens, output_tokens, cost, finish_reasons, tool_calls, input, output, attributes, source FROM spans WHERE trace_id = ?1 ORDER BY start_ns, span_id")
            .map_err(&e)?;
        let spans: Vec<Span> = stmt
            .query_map([&full], row_to_span)
            .map_err(&e)?
            .collect::<Result<_, _>>()
            .map_err(&e)?;
        for s in &spans {
            for c in &s.tool_calls {
                *summary.tools.entry(c.name.clone()).or_default() += 1;
            }
        }
        Ok(Some((summary, spans)))
    }

    /// Counts per bundle version and environment, and the store's size.
    pub fn stats(&self, f: &Filter) -> Result<StoreStats, TraceError> {
        let e = sql_err(&self.label);
        let (clause, args) = f.clause();
        let sql = format!(
            "SELECT t.bundle_id, t.bundle_version, t.environment, COUNT(*), SUM(CASE WHEN t.errors > 0 THEN 1 ELSE 0 END), MIN(t.start_ns), MAX(t.start_ns) FROM traces t{clause} GROUP BY t.bundle_id, t.bundle_version, t.environment ORDER BY t.bundle_id, t.bundle_version, t.environment"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(&e)?;
        let groups: Vec<GroupStats> = stmt
            .query_map(params_from_iter(args), |r| {
                Ok(GroupStats {
                    bundle: BundleTag {
                        bundle_id: r.get(0)?,
                        bundle_version: r.get(1)?,
                        environment: r.get(2)?,
                    },
                    traces: r.get::<_, i64>(3)? as u64,
                    errors: r.get::<_, i64>(4)? as u64,
                    first_ns: r.get(5)?,
                    last_ns: r.get(6)?,
                })
            })
            .map_err(&e)?
            .collect::<Result<_, _>>()
            .map_err(&e)?;
        let spans: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM spans", [], |r| r.get(0))
            .map_err(&e)?;
        let traces: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM traces", [], |r| r.get(0))
            .map_err(&e)?;
        Ok(StoreStats {
            spans: spans as u64,
            traces: traces as u64,
            size_bytes: self.size_bytes()?,
            groups,
        })
    }

    /// Bytes the store takes (pages in use).
    pub fn size_bytes(&self) -> Result<u64, TraceError> {
        let e = sql_err(&self.label);
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(&e)?;
        let size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(&e)?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .map_err(&e)?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// The per-trace values analytics compare, for the traces `f` matches.
    pub fn sample(&self, f: &Filter) -> Result<Sample, TraceError> {
        let e = sql_err(&self.label);
        let (clause, args) = f.clause();
        let sql = format!(
            "SELECT COALESCE(t.root_ns, t.end_ns - t.start_ns), t.errors, t.input_tokens, t.output_tokens, t.cost, t.start_ns FROM traces t{clause}"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(&e)?;
        let mut rows = stmt.query(params_from_iter(args.iter())).map_err(&e)?;
        let mut s = Sample::default();
        while let Some(r) = rows.next().map_err(&e)? {
            s.traces += 1;
            let latency: i64 = r.get(0).map_err(&e)?;
            let errors: i64 = r.get(1).map_err(&e)?;
            s.latency_ns.push(latency.max(0));
            if errors > 0 {
                s.errors += 1;
            }
            s.input_tokens.push(r.get(2).map_err(&e)?);
            s.output_tokens.push(r.get(3).map_err(&e)?);
            if let Some(c) = r.get::<_, Option<f64>>(4).map_err(&e)? {
                s.cost_micros.push((c * 1e6).round() as i64);
            }
            let start: i64 = r.get(5).map_err(&e)?;
            s.first_ns = Some(s.first_ns.map_or(start, |f| f.min(start)));
            s.last_ns = Some(s.last_ns.map_or(start, |l| l.max(start)));
        }
        drop(rows);
        let sql = format!(
            "SELECT x.tool, SUM(CASE WHEN x.executed > 0 THEN x.executed ELSE x.requested END) FROM trace_tools x JOIN traces t ON t.trace_id = x.trace_id{clause} GROUP BY x.tool"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(&e)?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(&e)?;
        for row in rows {
            let (tool, n) = row.map_err(&e)?;
            s.tools.insert(tool, n.max(0) as u64);
        }
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
    pub fn attribute_sample(&self, f: &Filter, name: &str) -> Result<Vec<i64>, TraceError> {
        let e = sql_err(&self.label);
        let (clause, mut args) = f.clause();
        args.push(rusqlite::types::Value::Text(format!(
            "%{}%",
            serde_json::to_string(name).unwrap_or_default()
        )));
        let sql = format!(
            "SELECT s.trace_id, s.attributes FROM spans s JOIN traces t ON t.trace_id = s.trace_id{} s.attributes LIKE ?{} ESCAPE '\\'",
            if clause.is_empty() {
                " WHERE".to_string()
            } else {
                format!("{clause} AND")
            },
            args.len()
        );
        let mut stmt = self.conn.prepare(&sql).map_err(&e)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(&e)?;
        let mut per_trace: BTreeMap<String, f64> = BTreeMap::new();
        while let Some(r) = rows.next().map_err(&e)? {
            let trace: String = r.get(0).map_err(&e)?;
            let attrs: Option<String> = r.get(1).map_err(&e)?;
            let Some(v) = attrs
                .and_then(|a| serde_json::from_str::<serde_json::Map<String, Value>>(&a).ok())
                .and_then(|m| m.get(name).and_then(Value::as_f64))
            else {
                continue;
            };
            *per_trace.entry(trace).or_default() += v;
        }
        let mut out: Vec<i64> = per_trace
            .values()
            .map(|v| (v * 1e6).round() as i64)
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Deletes traces that started before `cutoff_ns`, with their spans.
    pub fn prune(&mut self, cutoff_ns: i64) -> Result<u64, TraceError> {
        let e = sql_err(&self.label);
        let tx = self.conn.transaction().map_err(&e)?;
        tx.execute(
            "DELETE FROM trace_tools WHERE trace_id IN (SELECT trace_id FROM traces WHERE start_ns < ?1)",
            [cutoff_ns],
        )
        .map_err(&e)?;
        tx.execute(
            "DELETE FROM spans WHERE trace_id IN (SELECT trace_id FROM traces WHERE start_ns < ?1)",
            [cutoff_ns],
        )
        .map_err(&e)?;
        let n = tx
            .execute("DELETE FROM traces WHERE start_ns < ?1", [cutoff_ns])
            .map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(n as u64)
    }

    /// A pull's saved position.
    pub fn cursor(&self, name: &str) -> Result<Option<String>, TraceError> {
        self.conn
            .query_row("SELECT value FROM cursors WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql_err(&self.label))
    }
}

const SUMMARY_COLUMNS: &str = "t.trace_id, t.bundle_id, t.bundle_version, t.environment, t.start_ns, t.end_ns, COALESCE(t.root_ns, t.end_ns - t.start_ns), t.spans, t.errors, t.input_tokens, t.output_tokens, t.cost";

fn row_to_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<TraceSummary> {
    Ok(TraceSummary {
        trace_id: r.get(0)?,
        bundle: BundleTag {
            bundle_id: r.get(1)?,
            bundle_version: r.get(2)?,
            environment: r.get(3)?,
        },
        start_ns: r.get(4)?,
        end_ns: r.get(5)?,
        latency_ns: r.get(6)?,
        spans: r.get::<_, i64>(7)?.max(0) as u64,
        errors: r.get::<_, i64>(8)?.max(0) as u64,
        input_tokens: r.get::<_, i64>(9)?.max(0) as u64,
        output_tokens: r.get::<_, i64>(10)?.max(0) as u64,
        cost: r.get(11)?,
        tools: BTreeMap::new(),
    })
}

fn row_to_span(r: &rusqlite::Row<'_>) -> rusqlite::Result<Span> {
    let json_list = |i: usize| -> rusqlite::Result<Option<String>> { r.get(i) };
    let finish: Vec<String> = json_list(17)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let tools: Vec<ToolCall> = json_list(18)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let attributes = json_list(21)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let source: String = r.get(22)?;
    Ok(Span {
        trace_id: r.get(0)?,
        span_id: r.get(1)?,
        parent_span_id: r.get(2)?,
        name: r.get(3)?,
        start_ns: r.get(4)?,
        end_ns: r.get(5)?,
        status: Status::from_code(r.get(6)?),
        status_message: r.get(7)?,
        error_type: r.get(8)?,
        bundle: BundleTag {
            bundle_id: r.get(9)?,
            bundle_version: r.get(10)?,
            environment: r.get(11)?,
        },
        operation: r.get(12)?,
        model: r.get(13)?,
        input_tokens: r.get(14)?,
        output_tokens: r.get(15)?,
        cost: r.get(16)?,
        finish_reasons: finish,
        tool_calls: tools,
        input: r.get(19)?,
        output: r.get(20)?,
        attributes,
        source: Source::parse(&source).unwrap_or(Source::Import),
    })
}

/// One write in progress: rolled back unless committed.
pub struct Writer<'a> {
    tx: rusqlite::Transaction<'a>,
    label: &'a str,
    stored: Stored,
}

/// A trace's share of one batch.
#[derive(Default)]
struct TraceDelta {
    bundle: BundleTag,
    start: i64,
    end: i64,
    root: Option<i64>,
    spans: i64,
    errors: i64,
    input: i64,
    output: i64,
    cost: Option<f64>,
    tools: BTreeMap<String, (i64, i64)>,
}

impl Writer<'_> {
    /// Adds spans (those already stored are skipped).
    pub fn add(&mut self, spans: &[Span]) -> Result<(), TraceError> {
        let e = sql_err(self.label);
        let mut deltas: BTreeMap<&str, TraceDelta> = BTreeMap::new();
        {
            let mut insert = self.tx.prepare_cached(INSERT_SPAN).map_err(&e)?;
            for s in spans {
                let attrs = (!s.attributes.is_empty())
                    .then(|| serde_json::to_string(&s.attributes).unwrap_or_default());
                let n = insert
                    .execute(params![
                        s.trace_id,
                        s.span_id,
                        s.parent_span_id,
                        s.name,
                        s.start_ns,
                        s.end_ns,
                        s.status.code(),
                        s.status_message,
                        s.error_type,
                        s.bundle.bundle_id,
                        s.bundle.bundle_version,
                        s.bundle.environment,
                        s.operation,
                        s.model,
                        s.input_tokens,
                        s.output_tokens,
                        s.cost,
                        opt_json(&s.finish_reasons),
                        opt_json(&s.tool_calls),
                        s.input,
                        s.output,
                        attrs,
                        s.source.as_str(),
                    ])
                    .map_err(&e)?;
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
                d.bundle.inherit(&s.bundle);
                d.start = d.start.min(s.start_ns);
                d.end = d.end.max(s.end_ns);
                if s.parent_span_id.is_none() {
                    d.root = Some(s.duration_ns());
                }
                d.spans += 1;
                if s.is_error() {
                    d.errors += 1;
                }
                d.input += s.input_tokens.unwrap_or(0);
                d.output += s.output_tokens.unwrap_or(0);
                if let Some(c) = s.cost {
                    d.cost = Some(d.cost.unwrap_or(0.0) + c);
                }
                for c in &s.tool_calls {
                    let t = d.tools.entry(c.name.clone()).or_default();
                    if c.executed {
                        t.0 += 1;
                    } else {
                        t.1 += 1;
                    }
                }
            }
        }
        let mut upsert = self.tx.prepare_cached(UPSERT_TRACE).map_err(&e)?;
        let mut tool = self.tx.prepare_cached(UPSERT_TOOL).map_err(&e)?;
        for (id, d) in deltas {
            upsert
                .execute(params![
                    id,
                    d.bundle.bundle_id,
                    d.bundle.bundle_version,
                    d.bundle.environment,
                    d.start,
                    d.end,
                    d.root,
                    d.spans,
                    d.errors,
                    d.input,
                    d.output,
                    d.cost
                ])
                .map_err(&e)?;
            for (name, (executed, requested)) in d.tools {
                tool.execute(params![id, name, executed, requested])
                    .map_err(&e)?;
            }
        }
        Ok(())
    }

    /// Saves a pull's position with the spans it brought.
    pub fn set_cursor(&mut self, name: &str, value: &str, now_ns: i64) -> Result<(), TraceError> {
        self.tx
            .execute(
                "INSERT INTO cursors (name, value, updated_ns) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_ns = excluded.updated_ns",
                params![name, value, now_ns],
            )
            .map_err(sql_err(self.label))?;
        Ok(())
    }

    pub fn commit(self) -> Result<Stored, TraceError> {
        let stored = self.stored;
        self.tx.commit().map_err(sql_err(self.label))?;
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
