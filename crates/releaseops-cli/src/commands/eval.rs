use crate::output::write_file;
use std::io::IsTerminal;
use std::sync::Arc;

use releaseops_core::evals::{self, EvalRequest};
use releaseops_eval::compare::Change;
use releaseops_eval::report::Report;
use releaseops_stats::Verdict;

use crate::app::{App, CmdResult, Failure};
use crate::cli::{EvalCmd, EvalCompareArgs, EvalReportArgs, EvalRunArgs, ReportFormat};
use crate::commands::{EXIT_EVAL_FAIL, EXIT_EVAL_INCONCLUSIVE};
use crate::output::{self, BOLD, DIM, GREEN, RED, YELLOW, paint};
use crate::refs;

pub(super) fn run(app: &App, cmd: EvalCmd) -> CmdResult {
    match cmd {
        EvalCmd::Create { suite } => {
            let store = app.store()?;
            let path = evals::create_suite(&app.ctx(&store), &suite)?;
            if output::json(app, &serde_json::json!({ "suite": suite, "path": path })) {
                return Ok(0);
            }
            anstream::println!("Created eval suite {}: {path}", paint(BOLD, &suite));
            anstream::println!(
                "Edit its target and cases, then: releaseops eval run {suite} --bundle <id>"
            );
            Ok(0)
        }
        EvalCmd::List => list(app),
        EvalCmd::Run(a) => run_suite(app, a),
        EvalCmd::Report(a) => report(app, a),
        EvalCmd::Compare(a) => compare(app, a),
        EvalCmd::Import {
            from: _,
            file,
            suite,
        } => import(app, &file, &suite),
    }
}

fn list(app: &App) -> CmdResult {
    let store = app.store()?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for id in evals::suite_ids(&store)? {
        match evals::load_suite(&store, &id) {
            Ok(s) => {
                let target = s
                    .target
                    .as_ref()
                    .map_or_else(|| "(none)".to_string(), |t| t.describe());
                rows.push(vec![
                    id.clone(),
                    s.cases.len().to_string(),
                    format!("{:.0}%", s.pass_threshold * 100.0),
                    target.clone(),
                ]);
                json.push(serde_json::json!({"id": id, "cases": s.cases.len(), "pass_threshold": s.pass_threshold, "target": target, "valid": true}));
            }
            Err(e) => {
                rows.push(vec![
                    id.clone(),
                    "-".into(),
                    "-".into(),
                    paint(RED, &format!("invalid: {e}")),
                ]);
                json.push(serde_json::json!({"id": id, "valid": false, "error": e.to_string()}));
            }
        }
    }
    if output::json(app, &json) {
        return Ok(0);
    }
    if rows.is_empty() {
        anstream::println!("No eval suites yet. Create one with `releaseops eval create <suite>`.");
        return Ok(0);
    }
    anstream::println!(
        "{}",
        output::table(&["suite", "cases", "threshold", "target"], rows)
    );
    Ok(0)
}

fn render(r: &Report, format: ReportFormat) -> String {
    match format {
        ReportFormat::Markdown => r.to_markdown(),
        ReportFormat::Json => serde_json::to_string_pretty(r).unwrap_or_default(),
        ReportFormat::Junit => r.to_junit(),
        ReportFormat::Yaml => r.to_yaml(),
        ReportFormat::Html => r.to_html(),
        ReportFormat::Summary => summary(r),
    }
}

fn summary(r: &Report) -> String {
    let s = &r.summary;
    let decision = match s.gate_decision {
        Verdict::Pass => paint(GREEN.bold(), "PASS"),
        Verdict::Fail => paint(RED.bold(), "FAIL"),
        Verdict::Inconclusive => paint(YELLOW.bold(), "INCONCLUSIVE"),
    };
    let mut out = format!(
        "Eval: {} on {} v{}\n  Result: {decision}\n  {}\n",
        r.suite_id, r.bundle_id, r.bundle_version, s.reason
    );
    out.push_str(&format!(
        "  Cases: {} passed, {} failed ({} errored), {:.0} ms\n",
        s.passed, s.failed, s.errored, s.duration_ms
    ));
    if s.input_tokens + s.output_tokens > 0 {
        out.push_str(&format!(
            "  Tokens: {} in, {} out{}\n",
            s.input_tokens,
            s.output_tokens,
            s.cost_usd
                .map(|c| format!(", cost ${c:.4}"))
                .unwrap_or_default()
        ));
    }
    // Cases that failed for the same reason, once, with their count.
    let mut reasons: Vec<(String, Vec<&str>)> = Vec::new();
    for c in r.results.iter().filter(|c| !c.passed) {
        let why = c.why_failed();
        match reasons.iter_mut().find(|(w, _)| *w == why) {
            Some((_, ids)) => ids.push(&c.case_id),
            None => reasons.push((why, vec![&c.case_id])),
        }
    }
    for (why, ids) in reasons {
        if ids.len() == 1 {
            out.push_str(&format!("    - {}: {why}\n", ids[0]));
        } else {
            let shown: Vec<&str> = ids.iter().take(3).copied().collect();
            out.push_str(&format!(
                "    - {} cases ({}{}): {why}\n",
                ids.len(),
                shown.join(", "),
                if ids.len() > 3 { ", ..." } else { "" }
            ));
        }
    }
    out
}

fn exit_code(r: &Report) -> u8 {
    match r.summary.gate_decision {
        Verdict::Pass => 0,
        Verdict::Fail => EXIT_EVAL_FAIL,
        Verdict::Inconclusive => EXIT_EVAL_INCONCLUSIVE,
    }
}

pub(crate) fn run_suite(app: &App, a: EvalRunArgs) -> CmdResult {
    let store = app.store()?;
    let words = match (a.bundle.clone(), a.target.as_slice()) {
        (Some(b), []) => vec![b],
        (None, words) if !words.is_empty() => words.to_vec(),
        (Some(_), _) => {
            return Err(Failure::usage(
                "the bundle is named twice (--bundle and after the suite)",
                "name it once: eval run SUITE ID [VERSION], or eval run SUITE --bundle ID",
            ));
        }
        (None, _) => {
            return Err(Failure::usage(
                "which bundle should the suite run against?",
                format!("e.g. releaseops eval run {} support-agent 1.2.0", a.suite),
            ));
        }
    };
    let (bundle, version) = refs::bundle_version(&store, &words, a.version.clone())?;
    let progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>> =
        if std::io::stderr().is_terminal() && !app.global.json {
            Some(Arc::new(|done, total| {
                let width = 30;
                let filled = (done * width)
                    .checked_div(total)
                    .unwrap_or(width)
                    .min(width);
                eprint!(
                    "\r  [{}{}] {done}/{total} cases",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
                if done == total {
                    eprint!("\r{:60}\r", "");
                }
            }))
        } else {
            None
        };
    let req = EvalRequest {
        suite: a.suite,
        bundle,
        version,
        concurrency: a.concurrency,
        repeats: a.repeats,
        tags: a.tags,
        save: !a.no_save,
        no_cache: a.no_cache,
        progress,
        cancel: app.cancel_on_ctrl_c(),
    };
    if a.concurrency == Some(0) || a.repeats == Some(0) {
        return Err(Failure::usage(
            "--concurrency and --repeats must be at least 1",
            "e.g. --concurrency 16 --repeats 3",
        ));
    }
    let baseline_version = match &a.baseline {
        None => None,
        Some(env) => Some(
            store
                .load_env(env)?
                .bundle_mappings
                .get(&req.bundle)
                .cloned()
                .ok_or_else(|| Failure {
                    kind: releaseops_core::ErrorKind::NotFound,
                    message: format!(
                        "'{}' is not deployed in '{env}', so there is no baseline to compare with",
                        req.bundle
                    ),
                    hint: Some(
                        "drop --baseline, or name an environment where the bundle runs".into(),
                    ),
                })?,
        ),
    };
    let span = crate::trace::start("releaseops eval run");
    span.bundle(&store, &req.bundle, &req.version, None);
    span.attr("releaseops.eval.suite", req.suite.clone());
    let out = match evals::run(&app.ctx(&store), &req) {
        Ok(o) => o,
        Err(e) => {
            span.fail(&e.to_string());
            return Err(e.into());
        }
    };
    let s = &out.report.summary;
    span.attr("releaseops.eval.verdict", s.gate_decision.to_string());
    span.attr("releaseops.eval.pass_rate", s.pass_rate);
    span.attr("releaseops.eval.total_cases", s.total_cases as i64);
    if s.gate_decision != Verdict::Pass {
        span.fail(&format!("eval verdict {}", s.gate_decision));
    }
    drop(span);
    // A run that is not saved is an experiment: nobody is told.
    if req.save {
        let ctx = app.ctx(&store);
        crate::notify::tell(
            &store,
            releaseops_core::notify::of_eval(
                &ctx,
                &req.bundle,
                &req.version,
                &req.suite,
                &s.gate_decision.to_string(),
                &s.reason,
            ),
        );
    }
    let mut code = exit_code(&out.report);
    let comparison = match baseline_version {
        None => None,
        Some(v) => {
            let base = evals::run(
                &app.ctx(&store),
                &EvalRequest {
                    version: v,
                    progress: None,
                    ..req.clone()
                },
            )?;
            let c =
                releaseops_eval::compare::compare(&(&base.report).into(), &(&out.report).into());
            if c.verdict == Change::Regression {
                code = code.max(EXIT_EVAL_FAIL);
            }
            Some(c)
        }
    };
    if let Some(path) = &a.output {
        write_file(path, &render(&out.report, a.format))?;
    }
    if output::json(
        app,
        &serde_json::json!({
            "report": out.report,
            "saved_to": out.saved_to,
            "git_commit": out.git.git_commit,
            "git_error": out.git.git_error,
            "baseline": comparison,
        }),
    ) {
        return Ok(code);
    }
    let document = render(&out.report, a.format);
    if !matches!(a.format, ReportFormat::Summary) {
        // A document on stdout, alone, so it parses; the notes go to stderr.
        anstream::print!("{document}");
        if !document.ends_with('\n') {
            anstream::println!();
        }
        if let Some(c) = &comparison {
            anstream::eprintln!(
                "against {}: {} (McNemar exact p = {:.4})",
                c.baseline,
                c.verdict,
                c.p_value
            );
        }
        if let Some(p) = &out.saved_to {
            anstream::eprintln!("report: {p} (run {})", out.report.run_id);
        }
        output::git_note_to(&out.git, true);
        return Ok(code);
    }
    anstream::print!("{document}");
    if let Some(c) = &comparison {
        anstream::println!(
            "  Against {}: {} (McNemar exact p = {:.4}); regressed: {}; improved: {}",
            c.baseline,
            c.verdict,
            c.p_value,
            if c.regressed.is_empty() {
                "none".to_string()
            } else {
                c.regressed.join(", ")
            },
            if c.improved.is_empty() {
                "none".to_string()
            } else {
                c.improved.join(", ")
            }
        );
    }
    if let Some(p) = &out.saved_to {
        anstream::println!(
            "  {}",
            paint(DIM, &format!("report: {p} (run {})", out.report.run_id))
        );
    }
    output::git_note(&out.git);
    Ok(code)
}

fn report(app: &App, a: EvalReportArgs) -> CmdResult {
    let store = app.store()?;
    let (bundle, version) = match &a.bundle {
        Some(b) => match refs::split(b)? {
            (id, Some(at)) if a.version.is_none() => {
                let v = refs::version(&store, &id, Some(at))?;
                (Some(id), Some(v))
            }
            (_, Some(_)) => {
                return Err(Failure::usage(
                    format!("two versions given: '{b}' and --version"),
                    "name the version once",
                ));
            }
            (id, None) => (Some(id), a.version.clone()),
        },
        None => (None, a.version.clone()),
    };
    let found = store.find_reports(&releaseops_store::reports::ReportFilter {
        bundle: bundle.as_deref(),
        version: version.as_deref(),
        suite: a.suite.as_deref(),
        run_id: a.run_id.as_deref(),
    });
    if a.list {
        return list_runs(app, &store, &found);
    }
    let Some(entry) = found.last() else {
        return Err(Failure {
            kind: releaseops_core::ErrorKind::NotFound,
            message: "no matching eval report".into(),
            hint: Some(
                "list the saved runs with `releaseops eval report --list`, or run one with `releaseops eval run <suite> --bundle <id>`"
                    .into(),
            ),
        });
    };
    let r = read_report(&store, entry)?;
    let format = if app.global.json {
        ReportFormat::Json
    } else {
        a.format
    };
    let document = render(&r, format);
    if let Some(out) = &a.output {
        write_file(out, &document)?;
        if output::json(
            app,
            &serde_json::json!({"written": out, "run_id": r.run_id}),
        ) {
            return Ok(0);
        }
        anstream::eprintln!("wrote {}", out.display());
        return Ok(0);
    }
    anstream::print!("{document}");
    if !document.ends_with('\n') {
        anstream::println!();
    }
    Ok(0)
}

fn read_report(
    store: &releaseops_store::Store,
    entry: &releaseops_store::reports::ReportEntry,
) -> Result<Report, Failure> {
    let bytes = store
        .read_report(entry)
        .map_err(releaseops_core::CoreError::from)?;
    releaseops_format::yaml::from_bytes::<Report>(&bytes).map_err(|e| Failure {
        kind: releaseops_core::ErrorKind::Corrupt,
        message: format!(".releaseops/{} is not an eval report: {e}", entry.rel),
        hint: Some("restore it with `git checkout -- <file>`".into()),
    })
}

/// The saved runs that match, oldest first.
fn list_runs(
    app: &App,
    store: &releaseops_store::Store,
    found: &[releaseops_store::reports::ReportEntry],
) -> CmdResult {
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for entry in found {
        let rel = format!(".releaseops/{}", entry.rel);
        match read_report(store, entry) {
            Ok(r) => {
                let s = &r.summary;
                rows.push(vec![
                    if r.run_id.is_empty() {
                        "(existing tool)".into()
                    } else {
                        r.run_id.clone()
                    },
                    r.bundle_id.clone(),
                    r.bundle_version.clone(),
                    r.suite_id.clone(),
                    s.gate_decision.to_string(),
                    format!("{}/{}", s.passed, s.total_cases),
                    releaseops_format::time::parse(&r.timestamp)
                        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|_| r.timestamp.clone()),
                ]);
                json.push(serde_json::json!({
                    "run_id": r.run_id, "bundle_id": r.bundle_id, "bundle_version": r.bundle_version,
                    "suite_id": r.suite_id, "verdict": s.gate_decision, "passed": s.passed,
                    "total_cases": s.total_cases, "pass_rate": s.pass_rate,
                    "timestamp": r.timestamp, "path": rel,
                }));
            }
            Err(f) => {
                rows.push(vec![
                    rel.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    paint(RED, "unreadable"),
                    "-".into(),
                    "-".into(),
                ]);
                json.push(serde_json::json!({"path": rel, "error": f.message}));
            }
        }
    }
    if output::json(app, &json) {
        return Ok(0);
    }
    if rows.is_empty() {
        anstream::println!(
            "No saved eval runs match. Run one with `releaseops eval run <suite> --bundle <id>`."
        );
        return Ok(0);
    }
    anstream::println!(
        "{}",
        output::table(
            &[
                "run",
                "bundle",
                "version",
                "suite",
                "verdict",
                "passed",
                "time (UTC)"
            ],
            rows
        )
    );
    Ok(0)
}

fn compare(app: &App, a: EvalCompareArgs) -> CmdResult {
    let store = app.store()?;
    let baseline = match (&a.baseline, &a.baseline_env) {
        (Some(v), _) => v.clone(),
        (None, Some(env)) => refs::version(&store, &a.bundle, Some(refs::At::Env(env.clone())))?,
        (None, None) => {
            return Err(Failure::usage(
                "give --baseline VERSION or --baseline-env ENV",
                "e.g. --baseline-env prod",
            ));
        }
    };
    let candidate = match a.candidate {
        Some(v) => v,
        None => store.latest_version(&a.bundle)?,
    };
    let c = evals::compare(&store, &a.suite, &a.bundle, &baseline, &candidate)?;
    let code = if c.verdict == Change::Regression {
        EXIT_EVAL_FAIL
    } else {
        0
    };
    if output::json(app, &c) {
        return Ok(code);
    }
    let verdict = match c.verdict {
        Change::Regression => paint(RED.bold(), "REGRESSION"),
        Change::Improvement => paint(GREEN.bold(), "IMPROVEMENT"),
        Change::NoSignificantChange => paint(BOLD, "NO SIGNIFICANT CHANGE"),
    };
    anstream::println!(
        "{} -> {} on suite {}: {verdict} (McNemar exact p = {:.4})",
        c.baseline,
        c.candidate,
        c.suite,
        c.p_value
    );
    anstream::println!(
        "  both passed {}, both failed {}, regressed {}, improved {}",
        c.both_passed,
        c.both_failed,
        c.regressed.len(),
        c.improved.len()
    );
    for id in &c.regressed {
        anstream::println!("  {} {id}", paint(RED, "regressed"));
    }
    for id in &c.improved {
        anstream::println!("  {} {id}", paint(GREEN, "improved "));
    }
    if !c.unmatched.is_empty() {
        anstream::println!(
            "  {}",
            paint(
                DIM,
                &format!("not in both runs: {}", c.unmatched.join(", "))
            )
        );
    }
    Ok(code)
}

fn import(app: &App, file: &std::path::Path, suite: &str) -> CmdResult {
    let store = app.store()?;
    let r = evals::import_promptfoo(&app.ctx(&store), file, suite)?;
    let code = if r.path.is_some() { 0 } else { 1 };
    if output::json(app, &r) {
        return Ok(code);
    }
    match &r.path {
        Some(p) => anstream::println!(
            "Imported {} case(s) from {} into {}",
            r.cases,
            file.display(),
            paint(BOLD, p)
        ),
        None => anstream::println!(
            "{}: no test of {} could be imported",
            paint(RED.bold(), "Nothing imported"),
            file.display()
        ),
    }
    for n in &r.notes {
        anstream::println!("  {}", paint(DIM, n));
    }
    if !r.untranslated.is_empty() {
        anstream::println!(
            "{} ({}):",
            paint(YELLOW.bold(), "Not translated"),
            r.untranslated.len()
        );
        for u in &r.untranslated {
            anstream::println!("  - {}: {}: {}", u.test, u.what, u.why);
        }
    }
    if r.path.is_some() {
        anstream::println!(
            "Next: releaseops eval run {suite} <bundle> (the bundle's own prompts and model)"
        );
    }
    Ok(code)
}
