//! `releaseops traces ...` and `releaseops analytics ...`: what a version
//! does in production.

use std::collections::BTreeMap;

use releaseops_core::ErrorKind;
use releaseops_format::names;
use releaseops_store::Store;
use releaseops_traces::analytics::{self, CompareOptions, Comparison, Direction, Verdict};
use releaseops_traces::import;
use releaseops_traces::{Filter, Settings, Span, TraceError, TraceStore};
use serde_json::json;

use crate::app::{App, CmdResult, Failure};
use crate::cli::{
    AnalyticsCmd, AnalyticsCompareArgs, AnalyticsMetricsArgs, AnalyticsWindow, PullArgs,
    TextOrJson, TraceFilterArgs, TracesCmd,
};
use crate::output::{self, BOLD, DIM, GREEN, RED, YELLOW, paint};

/// The trace store settings of a repository.
pub(crate) fn settings(store: &Store) -> Settings {
    releaseops_core::facts::trace_settings(store)
}

impl From<TraceError> for Failure {
    fn from(e: TraceError) -> Failure {
        let (kind, hint) = match &e {
            TraceError::Input(_) | TraceError::Decode(_) => (
                ErrorKind::Invalid,
                "fix the input named above and run the command again",
            ),
            TraceError::Remote(_) => (
                ErrorKind::Io,
                "check the address (--url), the credentials and the project; a pull that stopped resumes where it stopped",
            ),
            TraceError::Store(_) => (
                ErrorKind::Io,
                "check traces.database in .releaseops/config.yaml (or RELEASEOPS_TRACES_DATABASE) and that the database is reachable",
            ),
        };
        Failure {
            kind,
            message: e.to_string(),
            hint: Some(hint.into()),
        }
    }
}

fn open(app: &App) -> Result<(Store, Settings, TraceStore), Failure> {
    let store = app.store()?;
    let s = settings(&store);
    let traces = releaseops_core::facts::open_traces(&store)?;
    Ok((store, s, traces))
}

/// An age in seconds (`90s`, `30m`, `24h`, `7d`, `2w`).
fn age_secs(t: &str) -> Option<f64> {
    let t = t.trim();
    t.char_indices().last().and_then(|(i, unit)| {
        let n: f64 = t[..i].trim().parse().ok()?;
        let secs = match unit {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86_400.0,
            'w' => 604_800.0,
            _ => return None,
        };
        (n.is_finite() && n >= 0.0 && n * secs < 1e9).then_some(n * secs)
    })
}

/// A time flag: RFC 3339, or an age before now (`90s`, `30m`, `24h`, `7d`, `2w`).
pub(crate) fn time_flag(app: &App, flag: &str, v: &str) -> Result<i64, Failure> {
    let t = v.trim();
    if let Some(secs) = age_secs(t) {
        return Ok(app.now.as_nanosecond() as i64 - (secs * 1e9) as i64);
    }
    releaseops_format::time::parse(t)
        .map(|ts| ts.as_nanosecond() as i64)
        .map_err(|e| {
            Failure::usage(
                format!("{flag} {v}: {e}"),
                "give an RFC 3339 time such as 2026-11-21T09:00:00Z, or an age such as 24h or 7d",
            )
        })
}

/// `ID` or `ID@VERSION`, each a valid name.
fn bundle_ref(r: &str) -> Result<(String, Option<String>), Failure> {
    let (id, version) = match r.split_once('@') {
        Some((i, v)) => (i, Some(v)),
        None => (r, None),
    };
    names::validate_bundle_id(id).map_err(|e| {
        Failure::usage(
            format!("'{r}': {e}"),
            "write ID@VERSION, such as support-agent@1.1.0",
        )
    })?;
    if let Some(v) = version {
        names::validate_version(v).map_err(|e| {
            Failure::usage(
                format!("'{r}': {e}"),
                "write ID@VERSION, such as support-agent@1.1.0",
            )
        })?;
    }
    Ok((id.to_string(), version.map(String::from)))
}

pub(crate) fn env_flag(e: &Option<String>) -> Result<Option<String>, Failure> {
    if let Some(e) = e {
        names::validate_env_name(e).map_err(Failure::from)?;
    }
    Ok(e.clone())
}

fn filter(app: &App, a: &TraceFilterArgs) -> Result<Filter, Failure> {
    let (bundle_id, bundle_version) = match &a.bundle {
        Some(b) => {
            let (i, v) = bundle_ref(b)?;
            (Some(i), v)
        }
        None => (None, None),
    };
    let w = window(app, &a.window, None, "", None)?;
    Ok(Filter {
        bundle_id,
        bundle_version,
        environment: w.environment,
        since_ns: w.since_ns,
        until_ns: w.until_ns,
        errors: a.status.as_deref().map(|s| s == "error"),
        tool: a.tool.clone(),
    })
}

/// Text from a span, safe for a terminal: control characters (escape
/// sequences a prompt could carry) are shown escaped, never sent.
fn safe(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn when(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(ns as i128)
        .map(releaseops_format::time::format)
        .unwrap_or_default()
}

fn ms(ns: i64) -> String {
    analytics::format_value(ns as f64 / 1e6, "ms")
}

pub(crate) fn run(app: &App, cmd: TracesCmd) -> CmdResult {
    match cmd {
        TracesCmd::Import { files } => import_files(app, &files),
        TracesCmd::Pull(a) => pull(app, &a),
        TracesCmd::List { filter: f, limit } => list(app, &f, limit),
        TracesCmd::Show { id } => show(app, &id),
        TracesCmd::Stats { filter: f } => stats(app, &f),
    }
}

fn import_files(app: &App, files: &[std::path::PathBuf]) -> CmdResult {
    let (_store, settings, mut traces) = open(app)?;
    let opts = releaseops_traces::ReadOptions {
        capture_content: settings.capture_content,
        now_ns: app.now.as_nanosecond() as i64,
    };
    let mut reports = Vec::new();
    for f in files {
        // Each file whole or not at all: the files before it stay imported.
        match import::import_file(&mut traces, f, &opts) {
            Ok(r) => {
                if !app.global.json {
                    anstream::println!(
                        "imported {}: {} traces, {} spans{}",
                        r.file,
                        r.records,
                        r.stored.spans,
                        if r.stored.duplicates > 0 {
                            format!(" ({} already stored)", r.stored.duplicates)
                        } else {
                            String::new()
                        }
                    );
                    if r.untimed > 0 {
                        output::warn(&format!(
                            "{}: {} traces have no timestamp, created_at or start_time; they were stored at the import's time",
                            r.file, r.untimed
                        ));
                    }
                    for m in &r.rejections {
                        output::warn(&format!("{}: spans refused: {m}", r.file));
                    }
                }
                reports.push(r);
            }
            Err(e) => {
                let mut f: Failure = e.into();
                if !reports.is_empty() {
                    f.hint = Some(format!(
                        "{} file(s) before it were imported; fix this one and import it again",
                        reports.len()
                    ));
                }
                return Err(f);
            }
        }
    }
    if app.global.json {
        output::print_json(&json!({ "files": reports, "store": settings.describe() }));
    }
    Ok(0)
}

fn pull(app: &App, a: &PullArgs) -> CmdResult {
    use releaseops_traces::pull::{self, Auth, Platform, Pull};
    let platform = Platform::parse(&a.platform).ok_or_else(|| {
        Failure::usage(
            format!("there is no platform '{}'", a.platform),
            "pull from langfuse, langsmith or phoenix",
        )
    })?;
    let var = |n: &str| std::env::var(n).ok();
    let auth = Auth::from_env(platform, &var)
        .map_err(|e| Failure::usage(e, platform.credential_help()))?;
    let (url_vars, default_url) = platform.url_vars();
    let url = a
        .url
        .clone()
        .or_else(|| {
            url_vars
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
        })
        .unwrap_or_else(|| default_url.to_string());
    let (project_vars, default_project) = platform.project_vars();
    let project = a
        .project
        .clone()
        .or_else(|| {
            project_vars
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
        })
        .or(default_project.map(String::from));
    if platform == Platform::Langfuse && a.project.is_some() {
        return Err(Failure::usage(
            "Langfuse keys belong to one project: --project does not apply",
            "choose the project by its keys (LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY)",
        ));
    }
    let since = time_flag(app, "--since", &a.since)?;
    let mut p = Pull::new(platform, url.trim().to_string(), auth, since);
    p.project = project;
    p.page_size = a.page_size;
    p.max_pages = a.max_pages.max(1);
    p.retry.max_retries = a.retries;
    p.allow_http = a.allow_http;
    p.reset = a.reset;
    p.overlap_ns = age_secs(&a.overlap)
        .map(|secs| (secs * 1e9) as i64)
        .ok_or_else(|| {
            Failure::usage(
                format!("--overlap {}: not an age", a.overlap),
                "give an age such as 1h, 30m or 0s",
            )
        })?;
    let (_store, settings, mut traces) = open(app)?;
    let opts = releaseops_traces::ReadOptions {
        capture_content: settings.capture_content,
        now_ns: app.now.as_nanosecond() as i64,
    };
    let r = pull::pull(&mut traces, &p, &opts)?;
    if output::json(app, &r) {
        return Ok(0);
    }
    anstream::println!(
        "pulled {}{}: {} records in {} pages, {} spans stored{}",
        r.platform,
        r.project
            .as_deref()
            .map(|p| format!(" project {}", safe(p)))
            .unwrap_or_default(),
        r.records,
        r.pages,
        r.stored.spans,
        if r.stored.duplicates > 0 {
            format!(" ({} already stored)", r.stored.duplicates)
        } else {
            String::new()
        }
    );
    if r.resumed {
        anstream::println!("  resumed a pull that had stopped half-way");
    }
    if r.restarted {
        anstream::println!(
            "  the platform no longer took the saved cursor: that window was pulled again from its start"
        );
    }
    if let Some([from, to]) = &r.covered {
        anstream::println!("  covered now: {from} to {to}");
    }
    if r.running > 0 {
        anstream::println!(
            "  {} still running: a later pull takes them once they end",
            r.running
        );
    }
    if r.retries > 0 {
        anstream::println!("  {} requests retried", r.retries);
    }
    if r.abandoned > 0 {
        anstream::println!(
            "  {} still running after a day: taken as abandoned, not waited for",
            r.abandoned
        );
    }
    if r.outside > 0 {
        output::warn(&format!(
            "{} records started outside the window asked for (the server ignored it); they were not stored",
            r.outside
        ));
    }
    for m in &r.rejections {
        output::warn(&format!("refused: {}", safe(m)));
    }
    if r.rejected as usize > r.rejections.len() {
        output::warn(&format!(
            "{} more refused",
            r.rejected as usize - r.rejections.len()
        ));
    }
    if r.uncovered {
        output::warn(
            "the windows with refused records were not counted as covered: the next pull asks for them again",
        );
    }
    Ok(0)
}

fn list(app: &App, a: &TraceFilterArgs, limit: usize) -> CmdResult {
    let (_store, _settings, mut traces) = open(app)?;
    let f = filter(app, a)?;
    let rows = traces.traces(&f, if limit == 0 { usize::MAX } else { limit })?;
    if output::json(app, &rows) {
        return Ok(0);
    }
    if rows.is_empty() {
        anstream::println!("no traces match");
        return Ok(0);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|t| {
            vec![
                t.trace_id.clone(),
                when(t.start_ns),
                match (&t.bundle.bundle_id, &t.bundle.bundle_version) {
                    (Some(i), Some(v)) => format!("{i}@{v}"),
                    (Some(i), None) => i.clone(),
                    _ => "-".into(),
                },
                t.bundle.environment.clone().unwrap_or_else(|| "-".into()),
                ms(t.latency_ns),
                t.spans.to_string(),
                if t.errors > 0 {
                    paint(RED, &t.errors.to_string())
                } else {
                    "0".into()
                },
                format!("{}/{}", t.input_tokens, t.output_tokens),
                t.tools
                    .iter()
                    .map(|(k, v)| {
                        // A tool's name is what an agent sent: no terminal escapes.
                        let k = safe(k);
                        if *v > 1 { format!("{k}×{v}") } else { k }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    anstream::println!(
        "{}",
        output::table(
            &[
                "TRACE",
                "STARTED",
                "BUNDLE",
                "ENV",
                "LATENCY",
                "SPANS",
                "ERRORS",
                "TOKENS IN/OUT",
                "TOOLS"
            ],
            table
        )
    );
    Ok(0)
}

fn show(app: &App, id: &str) -> CmdResult {
    let (_store, _settings, mut traces) = open(app)?;
    let Some((summary, spans)) = traces.trace(id)? else {
        return Err(Failure {
            kind: ErrorKind::NotFound,
            message: format!("no trace {id} in the trace store"),
            hint: Some("`releaseops traces list` shows the stored traces".into()),
        });
    };
    if output::json(app, &json!({ "trace": summary, "spans": spans })) {
        return Ok(0);
    }
    anstream::println!("{} {}", paint(BOLD, "trace"), summary.trace_id);
    if let Some(b) = &summary.bundle.bundle_id {
        anstream::println!(
            "  bundle {}{}{}",
            b,
            summary
                .bundle
                .bundle_version
                .as_deref()
                .map(|v| format!("@{v}"))
                .unwrap_or_default(),
            summary
                .bundle
                .environment
                .as_deref()
                .map(|e| format!(" in {e}"))
                .unwrap_or_default()
        );
    }
    anstream::println!(
        "  started {}, {}, {} spans, {} with errors, tokens {} in / {} out{}",
        when(summary.start_ns),
        ms(summary.latency_ns),
        summary.spans,
        summary.errors,
        summary.input_tokens,
        summary.output_tokens,
        summary
            .cost
            .map(|c| format!(", ${c:.4}"))
            .unwrap_or_default()
    );
    // Spans as a tree, children under their parent, in start order; spans
    // no root reaches (a parent cycle) are shown after, as orphans.
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: BTreeMap<Option<&str>, Vec<&Span>> = BTreeMap::new();
    for s in &spans {
        let parent = s
            .parent_span_id
            .as_deref()
            .filter(|p| ids.contains(p) && *p != s.span_id);
        children.entry(parent).or_default().push(s);
    }
    let mut shown: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut stack: Vec<(&Span, usize)> = children
        .get(&None)
        .map(|v| v.iter().rev().map(|s| (*s, 0)).collect())
        .unwrap_or_default();
    let mut orphans = false;
    loop {
        let Some((s, depth)) = stack.pop() else {
            // Whatever no root reached.
            let rest: Vec<&Span> = spans
                .iter()
                .filter(|s| !shown.contains(s.span_id.as_str()))
                .collect();
            if rest.is_empty() || orphans {
                break;
            }
            orphans = true;
            anstream::println!("  {}", paint(DIM, "(spans no root reaches)"));
            stack.extend(rest.into_iter().rev().map(|s| (s, 0)));
            continue;
        };
        if !shown.insert(s.span_id.as_str()) {
            continue;
        }
        print_span(s, depth);
        if let Some(kids) = children.get(&Some(s.span_id.as_str())) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    Ok(0)
}

fn print_span(s: &Span, depth: usize) {
    let mut parts = vec![ms(s.duration_ns())];
    if s.is_error() {
        parts.push(paint(
            RED,
            &format!(
                "error{}",
                s.error_type
                    .as_deref()
                    .or(s.status_message.as_deref())
                    .map(|e| format!(" {}", safe(e)))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(m) = &s.model {
        parts.push(safe(m));
    }
    if s.input_tokens.is_some() || s.output_tokens.is_some() {
        parts.push(format!(
            "{}/{} tokens",
            s.input_tokens.unwrap_or(0),
            s.output_tokens.unwrap_or(0)
        ));
    }
    for c in &s.tool_calls {
        parts.push(format!(
            "{} {}{}",
            if c.executed { "ran" } else { "asked for" },
            safe(&c.name),
            c.arguments
                .as_deref()
                .map(|a| format!("({})", safe(a)))
                .unwrap_or_default()
        ));
    }
    let indent = "  ".repeat(depth.min(40));
    anstream::println!(
        "  {indent}{} {}",
        paint(BOLD, &safe(&s.name)),
        paint(DIM, &parts.join(" · "))
    );
    if let Some(i) = &s.input {
        anstream::println!(
            "  {indent}  in:  {}",
            safe(&i.chars().take(200).collect::<String>())
        );
    }
    if let Some(o) = &s.output {
        anstream::println!(
            "  {indent}  out: {}",
            safe(&o.chars().take(200).collect::<String>())
        );
    }
}

fn stats(app: &App, a: &TraceFilterArgs) -> CmdResult {
    let (_store, settings, mut traces) = open(app)?;
    let f = filter(app, a)?;
    let st = traces.stats(&f)?;
    let per_span = if st.spans == 0 {
        0.0
    } else {
        st.size_bytes as f64 / st.spans as f64
    };
    if output::json(
        app,
        &json!({
            "store": settings.describe(),
            "spans": st.spans,
            "traces": st.traces,
            "size_bytes": st.size_bytes,
            "bytes_per_span": per_span,
            "groups": st.groups,
        }),
    ) {
        return Ok(0);
    }
    anstream::println!(
        "{} spans in {} traces, {:.1} MiB ({:.0} bytes per span) in {}",
        st.spans,
        st.traces,
        st.size_bytes as f64 / (1024.0 * 1024.0),
        per_span,
        settings.describe()
    );
    if st.groups.is_empty() {
        return Ok(0);
    }
    let rows = st
        .groups
        .iter()
        .map(|g| {
            vec![
                g.bundle
                    .bundle_id
                    .clone()
                    .unwrap_or_else(|| "(no bundle)".into()),
                g.bundle
                    .bundle_version
                    .clone()
                    .unwrap_or_else(|| "-".into()),
                g.bundle.environment.clone().unwrap_or_else(|| "-".into()),
                g.traces.to_string(),
                format!("{:.2}%", 100.0 * g.errors as f64 / g.traces.max(1) as f64),
                when(g.first_ns),
                when(g.last_ns),
            ]
        })
        .collect();
    anstream::println!(
        "{}",
        output::table(
            &[
                "BUNDLE",
                "VERSION",
                "ENV",
                "TRACES",
                "ERROR RATE",
                "FIRST",
                "LAST"
            ],
            rows
        )
    );
    Ok(0)
}

// --- analytics -----------------------------------------------------------

pub(crate) fn analytics(app: &App, cmd: AnalyticsCmd) -> CmdResult {
    match cmd {
        AnalyticsCmd::Metrics(a) => metrics(app, &a, false),
        AnalyticsCmd::Report(a) => metrics(app, &a, true),
        AnalyticsCmd::Compare(a) => compare(app, &a),
    }
}

/// A bundle and version this repository has (the existing tool compared
/// anything it was given, `foo@1` against `bar@2`).
fn known(store: &Store, id: &str, version: Option<&str>, what: &str) -> Result<(), Failure> {
    let versions = store.bundle_versions(id).unwrap_or_default();
    if versions.is_empty() {
        return Err(Failure {
            kind: ErrorKind::NotFound,
            message: format!("{what}: no bundle '{id}' in this repository"),
            hint: Some("`releaseops bundle list` shows the bundles".into()),
        });
    }
    if let Some(v) = version
        && !versions.iter().any(|x| x == v)
    {
        return Err(Failure {
            kind: ErrorKind::NotFound,
            message: format!(
                "{what}: {id} has no version {v} (it has {})",
                versions.join(", ")
            ),
            hint: Some(format!(
                "`releaseops bundle list` shows the versions of {id}"
            )),
        });
    }
    Ok(())
}

fn window(
    app: &App,
    w: &AnalyticsWindow,
    env: Option<&String>,
    id: &str,
    version: Option<String>,
) -> Result<Filter, Failure> {
    Ok(Filter {
        bundle_id: Some(id.to_string()).filter(|i| !i.is_empty()),
        bundle_version: version,
        environment: env_flag(&env.cloned().or_else(|| w.env.clone()))?,
        since_ns: w
            .since
            .as_deref()
            .map(|v| time_flag(app, "--since", v))
            .transpose()?,
        until_ns: w
            .until
            .as_deref()
            .map(|v| time_flag(app, "--until", v))
            .transpose()?,
        ..Filter::default()
    })
}

fn attributes(
    traces: &mut TraceStore,
    f: &Filter,
    names: &[String],
) -> Result<Vec<(String, Vec<i64>)>, Failure> {
    names
        .iter()
        .map(|n| Ok((n.clone(), traces.attribute_sample(f, n)?)))
        .collect()
}

fn metrics(app: &App, a: &AnalyticsMetricsArgs, as_json: bool) -> CmdResult {
    let (id, version) = bundle_ref(&a.reference)?;
    let (store, _settings, mut traces) = open(app)?;
    known(&store, &id, version.as_deref(), &a.reference)?;
    let f = window(app, &a.window, None, &id, version.clone())?;
    let sample = traces.sample(&f)?;
    let attrs = attributes(&mut traces, &f, &a.attribute)?;
    let m = analytics::metrics(&sample, &attrs);
    let doc = json!({
        "bundle_id": id,
        "bundle_version": version,
        "environment": f.environment,
        "metrics": m,
    });
    if as_json || a.format == TextOrJson::Json || app.global.json {
        output::print_json(&doc);
        return Ok(0);
    }
    let title = format!(
        "Metrics for {}{}",
        a.reference,
        f.environment
            .as_deref()
            .map(|e| format!(" in {e}"))
            .unwrap_or_default()
    );
    anstream::println!(
        "{}\n{}",
        paint(BOLD, &title),
        "=".repeat(title.chars().count())
    );
    if m.sample_size == 0 {
        anstream::println!(
            "  No traces. Spans arrive over OTLP at `releaseops serve` (POST /v1/traces), or with `releaseops traces import`."
        );
        return Ok(0);
    }
    let (lo, hi) = releaseops_stats::wilson(m.errors, m.sample_size, releaseops_stats::Z95);
    let line = |k: &str, v: String| anstream::println!("  {:<16} {v}", format!("{k}:"));
    line("Sample size", format!("{} traces", m.sample_size));
    line(
        "Error rate",
        format!(
            "{:.2}%  (95% CI {:.2}%–{:.2}%)",
            m.error_rate * 100.0,
            lo * 100.0,
            hi * 100.0
        ),
    );
    line("Success rate", format!("{:.2}%", m.success_rate * 100.0));
    line(
        "Latency",
        format!(
            "mean {}, p50 {}, p95 {}, p99 {}",
            analytics::format_value(m.latency_ms.mean, "ms"),
            analytics::format_value(m.latency_ms.p50, "ms"),
            analytics::format_value(m.latency_ms.p95, "ms"),
            analytics::format_value(m.latency_ms.p99, "ms")
        ),
    );
    line(
        "Tokens",
        format!(
            "{:.0} in + {:.0} out per trace ({} + {} in all)",
            m.input_tokens.mean, m.output_tokens.mean, m.input_tokens.total, m.output_tokens.total
        ),
    );
    if let Some(c) = &m.cost {
        line(
            "Cost",
            format!(
                "${:.4} per trace, ${:.2} in all ({} traces priced)",
                c.mean, c.total, c.known
            ),
        );
    }
    if !m.tools.is_empty() {
        let mut tools: Vec<_> = m.tools.iter().collect();
        tools.sort_by_key(|t| std::cmp::Reverse(t.1.calls));
        line(
            "Tools",
            tools
                .iter()
                .map(|(k, t)| format!("{k} {} ({:.1}%)", t.calls, t.share * 100.0))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    for (k, d) in &m.attributes {
        line(
            k,
            format!(
                "{} traces, mean {:.3}, p50 {:.3}, p95 {:.3}",
                d.count, d.mean, d.p50, d.p95
            ),
        );
    }
    if let Some([a0, b0]) = &m.time_range {
        line("Traffic", format!("{a0} to {b0}"));
    }
    Ok(0)
}

fn compare(app: &App, a: &AnalyticsCompareArgs) -> CmdResult {
    let (bid, bver) = bundle_ref(&a.baseline)?;
    let (cid, cver) = match &a.candidate {
        Some(c) => bundle_ref(c)?,
        None => (bid.clone(), None),
    };
    if a.candidate.is_none() && a.candidate_env.is_none() {
        return Err(Failure::usage(
            "name the candidate: a second ID@VERSION, or --candidate-env to compare what two environments run",
            "releaseops analytics compare support-agent@1.0.0 support-agent@1.1.0, or support-agent --baseline-env prod --candidate-env canary",
        ));
    }
    if a.window.env.is_some() && (a.baseline_env.is_some() || a.candidate_env.is_some()) {
        return Err(Failure::usage(
            "--env names one environment for both sides; --baseline-env and --candidate-env name one each",
            "use either --env, or --baseline-env with --candidate-env",
        ));
    }
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        return Err(Failure::usage(
            format!("--alpha {} is not a probability between 0 and 1", a.alpha),
            "the usual is --alpha 0.05",
        ));
    }
    for m in &a.metric {
        if !analytics::METRICS.contains(&m.as_str()) {
            return Err(Failure::usage(
                format!("--metric {m}: no such metric"),
                format!(
                    "choose from {}; name span attributes with --attribute",
                    analytics::METRICS.join(", ")
                ),
            ));
        }
    }
    let (store, _settings, mut traces) = open(app)?;
    known(&store, &bid, bver.as_deref(), &a.baseline)?;
    known(
        &store,
        &cid,
        cver.as_deref(),
        a.candidate.as_deref().unwrap_or(&a.baseline),
    )?;
    let fb = window(app, &a.window, a.baseline_env.as_ref(), &bid, bver.clone())?;
    let fc = window(app, &a.window, a.candidate_env.as_ref(), &cid, cver.clone())?;
    let c = analytics::compare_stored(
        &mut traces,
        &fb,
        &fc,
        &a.attribute,
        &CompareOptions {
            alpha: a.alpha,
            min_samples: a.min_samples,
            metrics: a.metric.clone(),
        },
    )?;
    if a.format == TextOrJson::Json || app.global.json {
        output::print_json(&c);
    } else {
        print_comparison(&c);
    }
    // Anything significantly worse fails a pipeline (a regression, or a
    // mix with a worse metric); no verdict for want of traffic is its own
    // status, as an inconclusive evaluation is.
    let worse = c
        .metrics
        .iter()
        .any(|m| m.significant && m.direction == Direction::Worse);
    Ok(match (a.fail_on_regression, c.verdict) {
        (false, _) => 0,
        (true, Verdict::InsufficientData) => crate::commands::EXIT_EVAL_INCONCLUSIVE,
        (true, _) if worse => crate::commands::EXIT_BLOCKED,
        (true, _) => 0,
    })
}

fn side_name(s: &analytics::Side) -> String {
    format!(
        "{}{}{}",
        s.bundle_id,
        s.bundle_version
            .as_deref()
            .map(|v| format!("@{v}"))
            .unwrap_or_default(),
        s.environment
            .as_deref()
            .map(|e| format!(" in {e}"))
            .unwrap_or_default()
    )
}

pub(crate) fn print_comparison(c: &Comparison) {
    anstream::println!("{}", paint(BOLD, "Version comparison"));
    anstream::println!(
        "  Baseline:  {} ({} traces)",
        side_name(&c.baseline),
        c.baseline.sample_size
    );
    anstream::println!(
        "  Candidate: {} ({} traces)",
        side_name(&c.candidate),
        c.candidate.sample_size
    );
    if !c.metrics.is_empty() {
        let rows = c
            .metrics
            .iter()
            .map(|m| {
                let v = |x: f64| match m.unit {
                    "rate" | "share" => format!("{:.2}%", x * 100.0),
                    u => analytics::format_value(x, u),
                };
                let d = |x: f64| match m.unit {
                    "rate" | "share" => format!("{:+.2} pt", x * 100.0),
                    u => {
                        let s = analytics::format_value(x, u);
                        if x >= 0.0 { format!("+{s}") } else { s }
                    }
                };
                let result = match (m.significant, m.direction) {
                    (true, Direction::Worse) => paint(RED, "worse"),
                    (true, Direction::Better) => paint(GREEN, "better"),
                    (true, Direction::Changed) => paint(YELLOW, "changed"),
                    _ => paint(DIM, "no significant change"),
                };
                vec![
                    if m.statistic == "median" || m.statistic == "share" {
                        format!("{} ({})", m.name, m.statistic)
                    } else {
                        m.name.clone()
                    },
                    v(m.baseline),
                    v(m.candidate),
                    format!("{} [{}, {}]", d(m.change), d(m.ci[0]), d(m.ci[1])),
                    analytics::format_p(m.adjusted_p_value),
                    result,
                ]
            })
            .collect();
        anstream::println!(
            "{}",
            output::table(
                &[
                    "METRIC",
                    "BASELINE",
                    "CANDIDATE",
                    "CHANGE [95% CI]",
                    "P (HOLM)",
                    "RESULT"
                ],
                rows
            )
        );
        for m in c.metrics.iter().filter(|m| m.significant) {
            if let Some(d) = &m.detail {
                anstream::println!("  {}: {d}", m.name);
            }
        }
    }
    let verdict = c.verdict.as_str();
    let painted = match c.verdict {
        Verdict::Regression => paint(RED.bold(), verdict),
        Verdict::Improvement => paint(GREEN.bold(), verdict),
        Verdict::Mixed | Verdict::InsufficientData => paint(YELLOW.bold(), verdict),
        Verdict::NoSignificantChange => paint(BOLD, verdict),
    };
    anstream::println!("  Verdict:   {painted}");
    anstream::println!("  {}", c.recommendation);
}
