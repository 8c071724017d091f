//! `releaseops attribution explain | analyze-batch`: a trace's action
//! attributed to the prompt lines and policy rules of the bundle version it
//! ran (the existing tool's syntax and JSON keys), from a trace file or from
//! the trace store. Reads only: nothing is written to the store.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use releaseops_attribution::{Assessment, Attribution, Index, Trace};
use releaseops_core::ErrorKind;
use releaseops_store::Store;
use releaseops_traces::{Filter, TraceStore};
use serde_json::{Value, json};

use crate::app::{App, CmdResult, Failure};
use crate::cli::{
    AttributionCmd, AttributionDiffArgs, BatchArgs, ExplainArgs, ReportFormat, TextOrJson,
};
use crate::output::{self, BOLD, DIM, RED, paint};

/// The most a trace file may hold (a batch file of JSON lines included).
const MAX_TRACE_FILE: u64 = 1 << 30;

pub(crate) fn run(app: &App, cmd: AttributionCmd) -> CmdResult {
    match cmd {
        AttributionCmd::Explain(a) => explain(app, &a),
        AttributionCmd::AnalyzeBatch(a) => batch(app, &a),
        AttributionCmd::Diff(a) => diff(app, &a),
    }
}

/// `ID@VERSION` (or `ID@ENV`, `ID==VERSION`) to a verified bundle's index.
fn index_for(store: &Store, reference: &str) -> Result<Index, Failure> {
    let (id, version) = crate::refs::exact(store, &[reference.to_string()])?;
    let bundle = releaseops_core::attribution::bundle_text(store, &id, &version)?;
    Ok(Index::new(&bundle))
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let bad = |e: std::io::Error| Failure {
        kind: ErrorKind::Io,
        message: format!("cannot read {}: {e}", path.display()),
        hint: Some("give the path of a trace file (JSON)".into()),
    };
    let f = std::fs::File::open(path).map_err(bad)?;
    let mut buf = Vec::new();
    f.take(MAX_TRACE_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(bad)?;
    if buf.len() as u64 > MAX_TRACE_FILE {
        return Err(Failure {
            kind: ErrorKind::Invalid,
            message: format!("{} is larger than 1 GiB", path.display()),
            hint: Some(
                "split it, or import it with `releaseops traces import` and use --bundle/--since"
                    .into(),
            ),
        });
    }
    Ok(buf)
}

/// One trace from a file: a JSON object in the existing tool's shape.
fn trace_file(path: &Path) -> Result<Trace, Failure> {
    let bytes = read_file(path)?;
    let label = path.display().to_string();
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| Failure {
        kind: ErrorKind::Invalid,
        message: format!("{label} is not JSON: {e}"),
        hint: Some(
            "a trace file is one JSON object: trace_id, tool_calls, output or action".into(),
        ),
    })?;
    Trace::from_json(&v, &label).map_err(|e| Failure {
        kind: ErrorKind::Invalid,
        message: e.to_string(),
        hint: Some(
            "a trace file is one JSON object: trace_id, tool_calls, output or action".into(),
        ),
    })
}

fn stored_trace(
    traces: &mut TraceStore,
    id: &str,
) -> Result<(Trace, Option<(String, String)>), Failure> {
    let Some((summary, spans)) = traces.trace(id)? else {
        return Err(Failure {
            kind: ErrorKind::NotFound,
            message: format!("no trace {id} in the trace store ({})", traces.label()),
            hint: Some("`releaseops traces list` shows the stored traces".into()),
        });
    };
    Ok(releaseops_core::attribution::trace_of_spans(
        &summary.trace_id,
        &spans,
    ))
}

fn explain(app: &App, a: &ExplainArgs) -> CmdResult {
    let store = app.store()?;
    let (trace, tagged) = match (&a.trace_file, &a.trace_id) {
        (Some(_), Some(_)) => {
            return Err(Failure::usage(
                "give a trace file or --trace-id, not both",
                "attribution explain TRACE.json --bundle ID@VERSION, or attribution explain --trace-id ID",
            ));
        }
        (Some(f), None) => (trace_file(f)?, None),
        (None, Some(id)) => {
            let mut traces = releaseops_core::facts::open_traces(&store)?;
            stored_trace(&mut traces, id)?
        }
        (None, None) => {
            return Err(Failure::usage(
                "which trace?",
                "attribution explain TRACE.json --bundle ID@VERSION, or attribution explain --trace-id ID",
            ));
        }
    };
    let reference = match (&a.bundle, tagged) {
        (Some(b), _) => b.clone(),
        (None, Some((id, v))) => format!("{id}=={v}"),
        (None, None) => {
            return Err(Failure::usage(
                "which bundle version did this trace run?",
                "pass --bundle ID@VERSION (a stored trace names its own when its spans carry the releaseops.bundle.* attributes)",
            ));
        }
    };
    if a.method == crate::cli::AttributionMethod::Ablation {
        return ablation(app, &store, a, &reference, trace);
    }
    let index = index_for(&store, &reference)?;
    let mut at = index.explain(&trace);
    at.analyzed_at = Some(releaseops_format::time::format(app.now));
    at.filter(a.confidence_threshold);
    let as_json = a.format == TextOrJson::Json || app.global.json;
    let text = if as_json {
        serde_json::to_string_pretty(&at).unwrap_or_default()
    } else {
        render(&at)
    };
    emit(&text, a.output.as_deref())?;
    Ok(0)
}

/// Prints the result, or writes it (without colour) to `--output`.
fn emit(text: &str, output: Option<&Path>) -> Result<(), Failure> {
    match output {
        Some(path) => {
            crate::output::write_file(path, &format!("{}\n", anstream::adapter::strip_str(text)))?;
            anstream::eprintln!("Attribution written to {}", path.display());
        }
        None => anstream::println!("{text}"),
    }
    Ok(())
}

/// The existing tool's text layout, with the broken rule said.
fn render(a: &Attribution) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}\n{}",
        paint(BOLD, "Attribution Analysis"),
        "=".repeat(40)
    );
    let _ = writeln!(s, "  Trace:   {}", a.trace_id);
    let _ = writeln!(s, "  Bundle:  {}@{}", a.bundle_id, a.bundle_version);
    let _ = writeln!(s, "  Action:  {}", a.action);
    if let Some(t) = a.action_type {
        let _ = writeln!(
            s,
            "  Type:    {}",
            serde_json::to_value(t)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        );
    }
    let one = |s: &mut String, i: &releaseops_attribution::Influence| {
        let _ = writeln!(s, "  {}: {}", i.artifact_type.as_str(), i.artifact_ref);
        if let Some(l) = &i.location {
            let _ = writeln!(s, "    Location: {l}");
        }
        let _ = writeln!(s, "    Content: \"{}\"", i.content_snippet);
        let _ = writeln!(
            s,
            "    Confidence: {:.2} ({})",
            i.confidence,
            i.confidence_label.as_str()
        );
        if !i.confidence_reason.is_empty() {
            let _ = writeln!(s, "    Confidence reason: {}", i.confidence_reason);
        }
        let _ = writeln!(
            s,
            "    Reasoning: {}",
            if i.is_negated {
                paint(RED, &i.reasoning)
            } else {
                i.reasoning.clone()
            }
        );
    };
    match &a.primary_influence {
        Some(p) if !a.influences.is_empty() => {
            let _ = writeln!(
                s,
                "\nPrimary Influence ({} confidence):",
                p.confidence_label.as_str()
            );
            one(&mut s, p);
            let rest: Vec<_> = a
                .influences
                .iter()
                .skip(1)
                .filter(|i| i.confidence >= 0.3)
                .collect();
            if !rest.is_empty() {
                let _ = writeln!(s, "\nSupporting Influences:");
                for i in rest.iter().take(5) {
                    one(&mut s, i);
                    s.push('\n');
                }
                if rest.len() > 5 {
                    let _ = writeln!(
                        s,
                        "  {}",
                        paint(
                            DIM,
                            &format!(
                                "... and {} more (--format json lists them all)",
                                rest.len() - 5
                            )
                        )
                    );
                }
            }
        }
        _ => {
            let _ = writeln!(s, "\nNo influence above the threshold.");
        }
    }
    let _ = write!(
        s,
        "\nOverall: {}",
        paint(BOLD, a.overall_assessment.as_str())
    );
    let _ = write!(s, "\n  {}", a.assessment_reason);
    s
}

fn batch(app: &App, a: &BatchArgs) -> CmdResult {
    let store = app.store()?;
    let mut skipped: Vec<(String, String)> = Vec::new();
    let mut work: Vec<(Trace, Option<(String, String)>)> = Vec::new();
    match &a.source {
        Some(path) => {
            if a.stored.since.is_some() || a.stored.env.is_some() {
                return Err(Failure::usage(
                    "--since and --env select stored traces; a file or directory is read whole",
                    "drop the file to read the trace store, or drop --since/--env",
                ));
            }
            for (label, item) in batch_inputs(path)? {
                match item.and_then(|v| Trace::from_json(&v, &label).map_err(|e| e.to_string())) {
                    Ok(t) => work.push((t, None)),
                    Err(e) => skipped.push((label, e)),
                }
            }
        }
        None => {
            let Some(b) = &a.bundle else {
                return Err(Failure::usage(
                    "which traces?",
                    "analyze-batch DIR|FILE --bundle ID@VERSION, or analyze-batch --bundle ID@VERSION --since 24h (the trace store)",
                ));
            };
            let (id, version) = crate::refs::exact(&store, std::slice::from_ref(b))?;
            let mut traces = releaseops_core::facts::open_traces(&store)?;
            let f = Filter {
                bundle_id: Some(id),
                bundle_version: Some(version),
                environment: crate::commands::traces::env_flag(&a.stored.env)?,
                since_ns: a
                    .stored
                    .since
                    .as_deref()
                    .map(|v| crate::commands::traces::time_flag(app, "--since", v))
                    .transpose()?,
                ..Filter::default()
            };
            for summary in traces.traces(&f, a.stored.limit)? {
                let (t, tag) = stored_trace(&mut traces, &summary.trace_id)?;
                work.push((t, tag));
            }
        }
    }
    // One index per bundle version the traces name.
    let mut indexes: BTreeMap<String, Index> = BTreeMap::new();
    let default = a.bundle.clone();
    let mut results: Vec<Attribution> = Vec::with_capacity(work.len());
    for (t, tag) in &work {
        let reference = match (&default, tag) {
            (Some(b), _) => b.clone(),
            (None, Some((id, v))) => format!("{id}=={v}"),
            (None, None) => {
                return Err(Failure::usage(
                    "which bundle version did these traces run?",
                    "pass --bundle ID@VERSION",
                ));
            }
        };
        if !indexes.contains_key(&reference) {
            let idx = index_for(&store, &reference)?;
            indexes.insert(reference.clone(), idx);
        }
        if let Some(idx) = indexes.get(&reference) {
            results.push(idx.explain(t));
        }
    }

    let mut counts: BTreeMap<&'static str, u64> =
        Assessment::ALL.iter().map(|x| (x.as_str(), 0)).collect();
    let mut primaries: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut broken: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for r in &results {
        *counts.entry(r.overall_assessment.as_str()).or_default() += 1;
        if let Some(p) = &r.primary_influence {
            *primaries
                .entry((
                    p.artifact_ref.clone(),
                    p.location.clone().unwrap_or_default(),
                ))
                .or_default() += 1;
        }
        if let Some(c) = &r.contradiction {
            *broken
                .entry((
                    c.artifact_ref.clone(),
                    c.location.clone(),
                    c.content_snippet.clone(),
                ))
                .or_default() += 1;
        }
    }
    let mut top: Vec<_> = primaries.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut broken: Vec<_> = broken.into_iter().collect();
    broken.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let n = |a: Assessment| counts.get(a.as_str()).copied().unwrap_or(0);

    if a.format == TextOrJson::Json || app.global.json {
        output::print_json(&json!({
            "traces_analyzed": results.len(),
            "counts": {
                "expected": n(Assessment::Expected),
                "likely_expected": n(Assessment::LikelyExpected),
                "contradicts": n(Assessment::Contradicts),
                "unclear": n(Assessment::Unclear),
            },
            "skipped": skipped.iter().map(|(f, e)| json!({"input": f, "error": e})).collect::<Vec<_>>(),
            "primary_influences": top.iter().take(10).map(|((r, l), c)| json!({"artifact_ref": r, "location": l, "traces": c})).collect::<Vec<_>>(),
            "rules_broken": broken.iter().map(|((r, l, s), c)| json!({"artifact_ref": r, "location": l, "content_snippet": s, "traces": c})).collect::<Vec<_>>(),
            "traces": results.iter().map(|r| json!({
                "trace_id": r.trace_id,
                "overall_assessment": r.overall_assessment,
                "primary_influence": r.primary_influence.as_ref().map(|p| json!({"artifact_ref": p.artifact_ref, "location": p.location, "confidence": p.confidence})),
                "contradiction": r.contradiction,
            })).collect::<Vec<_>>(),
        }));
        return Ok(0);
    }
    for (f, e) in &skipped {
        output::warn(&format!("skipped {f}: {e}"));
    }
    anstream::println!(
        "{}\n{}",
        paint(BOLD, "Batch Attribution Summary"),
        "=".repeat(40)
    );
    anstream::println!("  Traces analyzed: {}", results.len());
    anstream::println!("  Expected:        {}", n(Assessment::Expected));
    anstream::println!("  Likely expected: {}", n(Assessment::LikelyExpected));
    anstream::println!("  Contradicts:     {}", n(Assessment::Contradicts));
    anstream::println!("  Unclear:         {}", n(Assessment::Unclear));
    if !skipped.is_empty() {
        anstream::println!("  Skipped:         {}", skipped.len());
    }
    if !top.is_empty() {
        anstream::println!("\n  Most common primary influences:");
        for ((r, l), c) in top.iter().take(5) {
            anstream::println!("    {r} {l}: {c} trace{}", if *c == 1 { "" } else { "s" });
        }
    }
    if !broken.is_empty() {
        anstream::println!("\n  Rules broken:");
        for ((r, l, snip), c) in broken.iter().take(5) {
            anstream::println!(
                "    {r} {l}: {c} trace{}  \"{snip}\"",
                if *c == 1 { "" } else { "s" }
            );
        }
    }
    Ok(0)
}

/// The traces of a batch: a directory's `*.json` files (not recursive, as
/// the existing tool), or one file of JSON lines, a JSON array or one object.
/// An item that cannot be read is kept as its error, to be reported.
/// A batch item: its label, and the JSON or why it could not be read.
type Item = (String, Result<Value, String>);

fn batch_inputs(path: &Path) -> Result<Vec<Item>, Failure> {
    let meta = std::fs::metadata(path).map_err(|e| Failure {
        kind: ErrorKind::Io,
        message: format!("cannot read {}: {e}", path.display()),
        hint: Some("give a directory of trace files or a file of JSON lines".into()),
    })?;
    let mut out = Vec::new();
    if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Failure {
                kind: ErrorKind::Io,
                message: format!("cannot list {}: {e}", path.display()),
                hint: None,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        files.sort();
        for f in files {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let item = read_file(&f).map_err(|e| e.message).and_then(|b| {
                serde_json::from_slice::<Value>(&b).map_err(|e| format!("not JSON: {e}"))
            });
            out.push((name, item));
        }
        return Ok(out);
    }
    let bytes = read_file(path)?;
    let label = path.display().to_string();
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(items)) => {
            for (i, v) in items.into_iter().enumerate() {
                out.push((format!("{label}[{i}]"), Ok(v)));
            }
        }
        Ok(v) => out.push((label, Ok(v))),
        Err(_) => {
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let item =
                    serde_json::from_slice::<Value>(line).map_err(|e| format!("not JSON: {e}"));
                out.push((format!("{label}:{}", i + 1), item));
            }
        }
    }
    Ok(out)
}

/// The stored traces of one version.
fn stored_traces(
    app: &App,
    traces: &mut TraceStore,
    id: &str,
    version: &str,
    which: &crate::cli::StoredTraces,
) -> Result<Vec<Trace>, Failure> {
    let (env, since, limit) = (&which.env, &which.since, which.limit);
    let f = Filter {
        bundle_id: Some(id.to_string()),
        bundle_version: Some(version.to_string()),
        environment: crate::commands::traces::env_flag(env)?,
        since_ns: since
            .as_deref()
            .map(|v| crate::commands::traces::time_flag(app, "--since", v))
            .transpose()?,
        ..Filter::default()
    };
    let mut out = Vec::new();
    for s in traces.traces(&f, limit)? {
        out.push(stored_trace(traces, &s.trace_id)?.0);
    }
    Ok(out)
}

fn diff(app: &App, a: &AttributionDiffArgs) -> CmdResult {
    use releaseops_attribution::diff;
    let store = app.store()?;
    let (id1, v1) = crate::refs::exact(&store, std::slice::from_ref(&a.old))?;
    let (id2, v2) = crate::refs::exact(&store, std::slice::from_ref(&a.new))?;
    let b1 = releaseops_core::attribution::bundle_text(&store, &id1, &v1)?;
    let b2 = releaseops_core::attribution::bundle_text(&store, &id2, &v2)?;
    let changes = diff::changes(&b1, &b2);
    let (i1, i2) = (Index::new(&b1), Index::new(&b2));
    let mut traces = releaseops_core::facts::open_traces(&store)?;
    let t1 = stored_traces(app, &mut traces, &id1, &v1, &a.stored)?;
    let t2 = stored_traces(app, &mut traces, &id2, &v2, &a.stored)?;
    // (change, action, old verdict, new verdict) -> traces of each version, and examples.
    let mut groups: BTreeMap<diff::Flip, (u64, u64, Vec<String>)> = BTreeMap::new();
    for (side, ts) in [(0, &t1), (1, &t2)] {
        for t in ts.iter() {
            let mut seen = Vec::new();
            for f in diff::flips(&i1, &i2, &changes, t) {
                if seen.contains(&f) {
                    continue;
                }
                seen.push(f.clone());
                let e = groups.entry(f).or_default();
                if side == 0 {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                    if e.2.len() < 3 {
                        e.2.push(t.trace_id.clone());
                    }
                }
            }
        }
    }
    let (n1, n2) = (t1.len() as u64, t2.len() as u64);
    let mut rows: Vec<(diff::Flip, u64, u64, Vec<String>, f64)> = groups
        .into_iter()
        .map(|(f, (k1, k2, ex))| {
            let p = if n1 > 0 && n2 > 0 {
                releaseops_stats::compare::fisher_exact(k1, n1, k2, n2)
            } else {
                1.0
            };
            (f, k1, k2, ex, p)
        })
        .collect();
    let rate = |k: u64, n: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    rows.sort_by(|x, y| {
        let dx = (rate(x.2, n2) - rate(x.1, n1)).abs();
        let dy = (rate(y.2, n2) - rate(y.1, n1)).abs();
        dy.total_cmp(&dx).then(x.0.cmp(&y.0))
    });
    let verdict = |e: Option<releaseops_attribution::Effect>| e.map_or("none", |e| e.as_str());
    if a.format == TextOrJson::Json || app.global.json {
        output::print_json(&json!({
            "old": format!("{id1}@{v1}"),
            "new": format!("{id2}@{v2}"),
            "old_traces": n1,
            "new_traces": n2,
            "changes": changes,
            "behaviours": rows.iter().map(|(f, k1, k2, ex, p)| json!({
                "change": changes.get(f.change),
                "action": f.action,
                "old_verdict": verdict(f.old_effect),
                "new_verdict": verdict(f.new_effect),
                "old_traces": k1,
                "new_traces": k2,
                "old_rate": rate(*k1, n1),
                "new_rate": rate(*k2, n2),
                "p_value": p,
                "examples": ex,
            })).collect::<Vec<_>>(),
        }));
        return Ok(0);
    }
    let title = format!("Behaviour that differs between {id1}@{v1} and {id2}@{v2}");
    anstream::println!(
        "{}\n{}",
        paint(BOLD, &title),
        "=".repeat(title.chars().count())
    );
    anstream::println!(
        "  {} changed prompt line(s) and policy rule(s); {n1} traces of {v1}, {n2} of {v2}",
        changes.len()
    );
    if changes.is_empty() {
        anstream::println!(
            "  The two versions have the same prompts and policies: no behaviour can be put down to them."
        );
        return Ok(0);
    }
    if rows.is_empty() {
        anstream::println!(
            "  No traced action is judged differently by the changed lines and rules."
        );
        if n1 + n2 == 0 {
            anstream::println!(
                "  (No traces of either version: `releaseops traces import` or OTLP at `releaseops serve`.)"
            );
        }
        return Ok(0);
    }
    for (f, k1, k2, ex, p) in rows.iter().take(10) {
        let Some(c) = changes.get(f.change) else {
            continue;
        };
        anstream::println!(
            "\n  {}: {k1} of {n1} traces under {v1} ({:.1}%), {k2} of {n2} under {v2} ({:.1}%){}",
            paint(BOLD, &f.action),
            100.0 * rate(*k1, n1),
            100.0 * rate(*k2, n2),
            if *p < 0.05 {
                format!(", p = {p:.2e} (Fisher)")
            } else {
                format!(", p = {p:.2} (not significant)")
            }
        );
        let place = c
            .new_location
            .as_deref()
            .or(c.old_location.as_deref())
            .unwrap_or_default();
        anstream::println!(
            "    explained by {} {} of {} ({}), changed in {v2}:",
            c.artifact_type.as_str(),
            place,
            c.role,
            if c.old.is_none() {
                "added"
            } else if c.new.is_none() {
                "removed"
            } else {
                "changed"
            }
        );
        if let Some(o) = &c.old {
            anstream::println!("      {}", paint(RED, &format!("- {o}")));
        }
        if let Some(n) = &c.new {
            anstream::println!("      {}", paint(crate::output::GREEN, &format!("+ {n}")));
        }
        anstream::println!(
            "    the action {} the old {} and {} the new one{}",
            match f.old_effect {
                Some(e) => e.as_str(),
                None => "is not judged by",
            },
            if c.artifact_type == releaseops_attribution::ArtifactType::Prompt {
                "line"
            } else {
                "rule"
            },
            match f.new_effect {
                Some(e) => e.as_str(),
                None => "is not judged by",
            },
            if ex.is_empty() {
                String::new()
            } else {
                format!("; e.g. trace {}", ex.join(", "))
            }
        );
    }
    Ok(0)
}

/// A version's production traces, each with whether it failed.
struct Selected {
    id: String,
    version: String,
    traces: Vec<(Trace, bool)>,
}

/// The production traces a replay reads: each with whether it failed.
fn replay_traces(
    app: &App,
    store: &Store,
    s: &crate::cli::ReplaySelect,
) -> Result<Selected, Failure> {
    let Some(source) = &s.source else {
        return Err(Failure::usage(
            "whose production traffic should be replayed?",
            "pass --source ID@VERSION (or ID@ENV: what ENV runs), e.g. --source support-agent@prod",
        ));
    };
    if !(0.0..=1.0).contains(&s.min_similarity) {
        return Err(Failure::usage(
            format!("--min-similarity {} is not a share", s.min_similarity),
            "give a number from 0 to 1",
        ));
    }
    let (id, version) = crate::refs::exact(store, std::slice::from_ref(source))?;
    let mut traces = releaseops_core::facts::open_traces(store)?;
    let f = Filter {
        bundle_id: Some(id.clone()),
        bundle_version: Some(version.clone()),
        environment: crate::commands::traces::env_flag(&s.stored.env)?,
        since_ns: s
            .stored
            .since
            .as_deref()
            .map(|v| crate::commands::traces::time_flag(app, "--since", v))
            .transpose()?,
        until_ns: s
            .until
            .as_deref()
            .map(|v| crate::commands::traces::time_flag(app, "--until", v))
            .transpose()?,
        ..Filter::default()
    };
    let mut listed = traces.traces(&f, s.stored.limit)?;
    if let Some(k) = s.sample {
        listed = releaseops_core::replay::sample(listed, k, s.seed);
    }
    let mut out = Vec::with_capacity(listed.len());
    for t in &listed {
        if let Some((summary, spans)) = traces.trace(&t.trace_id)? {
            let (trace, _) =
                releaseops_core::attribution::trace_of_spans(&summary.trace_id, &spans);
            out.push((trace, summary.errors > 0));
        }
    }
    if out.is_empty() {
        return Err(Failure {
            kind: ErrorKind::NotFound,
            message: format!(
                "no stored trace of {id}@{version}{} to replay",
                s.stored.env.as_deref().map(|e| format!(" in {e}")).unwrap_or_default()
            ),
            hint: Some("`releaseops traces stats` shows what the trace store holds; widen --since or --env".into()),
        });
    }
    Ok(Selected {
        id,
        version,
        traces: out,
    })
}

fn export_suite(
    app: &App,
    store: &Store,
    s: &crate::cli::ReplaySelect,
    candidate: Option<(String, String)>,
) -> Result<releaseops_core::replay::Exported, Failure> {
    let Selected {
        id,
        version,
        traces: read,
    } = replay_traces(app, store, s)?;
    let req = releaseops_core::replay::ExportRequest {
        suite: s.suite.clone(),
        source_id: id,
        source_version: version,
        env: s.stored.env.clone(),
        target_from: s.target_from.clone(),
        incidents_only: s.incidents_only,
        min_similarity: s.min_similarity,
        candidate,
    };
    Ok(releaseops_core::replay::export(
        &app.ctx(store),
        &req,
        &read,
    )?)
}

/// What a replay suite left out, and why ("" when nothing).
fn left_out(e: &releaseops_core::replay::Exported) -> String {
    let c = &e.counts;
    let mut why = Vec::new();
    if c.without_input > 0 {
        why.push(format!("{} without a captured input", c.without_input));
    }
    if c.beyond_one_turn > 0 {
        why.push(format!(
            "{} incidents after other calls, beyond one turn of the model (replay them with --target-from the agent's command or http suite)",
            c.beyond_one_turn
        ));
    }
    if c.unnameable_tools > 0 {
        why.push(format!(
            "{} calling a tool by a name no provider takes",
            c.unnameable_tools
        ));
    }
    if why.is_empty() {
        String::new()
    } else {
        format!("; left out: {}", why.join(", "))
    }
}

pub(crate) fn replay(app: &App, a: crate::cli::ReplayArgs) -> CmdResult {
    let store = app.store()?;
    if let Some(crate::cli::ReplayCmd::ExportSuite { select }) = &a.cmd {
        let e = export_suite(app, &store, select, None)?;
        if output::json(app, &e) {
            return Ok(0);
        }
        anstream::println!(
            "Wrote {} ({} cases from {} traces: {} regression cases from incidents{})",
            e.path,
            e.counts.cases,
            e.traces_read,
            e.counts.incidents,
            left_out(&e)
        );
        output::git_note(&e.git);
        return Ok(0);
    }
    let Some(candidate) = a.bundle.clone() else {
        return Err(Failure::usage(
            "which candidate should replay production's inputs?",
            "releaseops replay --bundle ID@VERSION --from-traces --source ID@ENV",
        ));
    };
    if !a.from_traces {
        return Err(Failure::usage(
            "replay what?",
            "pass --from-traces: recorded production inputs from the trace store",
        ));
    }
    // The candidate, the flags and the suite's target are checked before
    // anything is written: a replay that cannot run leaves no suite behind.
    let resolved = crate::refs::exact(&store, std::slice::from_ref(&candidate))?;
    if a.concurrency == Some(0) {
        return Err(Failure::usage(
            "--concurrency must be at least 1",
            "e.g. --concurrency 16",
        ));
    }
    let e = export_suite(app, &store, &a.select, Some(resolved.clone()))?;
    if !app.global.json && a.format == ReportFormat::Summary {
        anstream::eprintln!(
            "Replaying {} production inputs against {candidate} ({} regression cases from incidents{}; suite {})",
            e.counts.cases,
            e.counts.incidents,
            left_out(&e),
            e.path
        );
    }
    crate::commands::eval::run_suite(
        app,
        crate::cli::EvalRunArgs {
            suite: e.suite,
            target: Vec::new(),
            // The version checked before the suite was written, not the
            // reference read again.
            bundle: Some(resolved.0),
            version: Some(resolved.1),
            concurrency: a.concurrency,
            repeats: None,
            tags: Vec::new(),
            format: a.format,
            output: a.output,
            no_save: false,
            no_cache: a.no_cache,
            baseline: None,
        },
    )
}

fn ablation(app: &App, store: &Store, a: &ExplainArgs, reference: &str, trace: Trace) -> CmdResult {
    use releaseops_core::ablation::{self, AblationRequest, Method};
    let (id, version) = crate::refs::exact(store, &[reference.to_string()])?;
    let req = AblationRequest {
        id,
        version,
        trace,
        target_from: a.target_from.clone(),
        budget: a.budget,
        repeats: a.repeats,
        concurrency: a.concurrency,
        seed: a.seed,
        no_cache: a.no_cache,
    };
    let ctx = app.ctx(store);
    let prepared = ablation::prepare(&ctx, &req)?;
    let plan = prepared.plan.clone();
    // What it costs, said before the first call.
    anstream::eprintln!(
        "Ablation: {} calls ({} over {} prompt lines{}){}",
        plan.calls,
        match plan.method {
            Method::LeaveOneOut => "each left out in turn",
            Method::RandomSubsets => "random subsets, a sparse linear surrogate",
        },
        plan.units,
        if plan.policy_rules_ablated {
            " and policy rules"
        } else {
            ""
        },
        if plan.policy_rules_ablated {
            ""
        } else {
            "; a model target is sent no policy text (only the tools policies allow), so rules are not ablated"
        }
    );
    let r = ablation::run(&ctx, &req, prepared)?;
    let as_json = a.format == TextOrJson::Json || app.global.json;
    let text = if as_json {
        serde_json::to_string_pretty(&r).unwrap_or_default()
    } else {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "{}\n{}", paint(BOLD, "Ablation"), "=".repeat(40));
        let _ = writeln!(s, "  Trace:     {}", r.trace_id);
        let _ = writeln!(s, "  Bundle:    {}@{}", r.bundle_id, r.bundle_version);
        let _ = writeln!(
            s,
            "  Reference: {}",
            r.reference_action.as_deref().unwrap_or("-")
        );
        if let Some(rec) = &r.recorded_action {
            let _ = writeln!(s, "  Recorded:  {rec}");
        }
        if let Some(f) = r.noise_floor {
            let _ = writeln!(
                s,
                "  Noise:     {:.0} % of the whole bundle's other runs acted otherwise than its most common action",
                f * 100.0
            );
        }
        let _ = writeln!(s, "  Calls:     {} ({} failed)", r.calls, r.failed_calls);
        let shown: Vec<_> = r
            .effects
            .iter()
            .filter(|e| e.effect > r.noise_floor.unwrap_or(0.0))
            .take(10)
            .collect();
        if !shown.is_empty() {
            let _ = writeln!(s, "\n  What changes the action when taken out:");
            for e in shown {
                let _ = writeln!(
                    s,
                    "    {:.2} [{:.2}, {:.2}] {} {} {}: \"{}\"",
                    e.effect,
                    e.low,
                    e.high,
                    e.unit.artifact_type.as_str(),
                    e.unit.role,
                    e.unit.location,
                    e.unit.content_snippet
                );
            }
        }
        match &r.unclear {
            Some(why) => {
                let _ = write!(s, "\nOverall: Unclear\n  {why}");
            }
            None => {
                let _ = write!(
                    s,
                    "\nOverall: the lines above decide the action (effect: the share of runs without the line whose action changed, with its 95% interval)"
                );
            }
        }
        s
    };
    emit(&text, a.output.as_deref())?;
    Ok(0)
}
