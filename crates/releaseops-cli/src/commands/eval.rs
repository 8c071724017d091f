use std::io::IsTerminal;
use std::sync::Arc;

use releaseops_core::evals::{self, EvalRequest};
use releaseops_eval::report::Report;

use crate::app::{App, CmdResult, Failure};
use crate::cli::{EvalCmd, EvalReportArgs, EvalRunArgs, ReportFormat};
use crate::commands::{EXIT_EVAL_FAIL, EXIT_EVAL_INCONCLUSIVE};
use crate::output::{self, BOLD, DIM, GREEN, RED, YELLOW, paint};

pub fn run(app: &App, cmd: EvalCmd) -> CmdResult {
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
    }
}

fn list(app: &App) -> CmdResult {
    let store = app.store()?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for id in evals::suite_ids(&store)? {
        match evals::load_suite(&store, &id) {
            Ok(s) => {
                let target = match &s.target {
                    Some(releaseops_eval::suite::TargetSpec::Command { argv, .. }) => {
                        format!("command: {}", argv.join(" "))
                    }
                    None => "(none)".into(),
                };
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
        ReportFormat::Summary => summary(r),
    }
}

fn summary(r: &Report) -> String {
    let s = &r.summary;
    let decision = match s.gate_decision.as_str() {
        "PASS" => paint(GREEN.bold(), "PASS"),
        "FAIL" => paint(RED.bold(), "FAIL"),
        other => paint(YELLOW.bold(), other),
    };
    let mut out = format!(
        "Eval: {} on {} v{}\n  Result: {decision}\n  {}\n",
        r.suite_id, r.bundle_id, r.bundle_version, s.reason
    );
    out.push_str(&format!(
        "  Cases: {} passed, {} failed ({} errored), {:.0} ms\n",
        s.passed, s.failed, s.errored, s.duration_ms
    ));
    for c in r.results.iter().filter(|c| !c.passed) {
        let why = c.error.clone().unwrap_or_else(|| {
            c.assertions
                .iter()
                .filter(|a| !a.passed)
                .map(|a| format!("{}: {}", a.judge, a.reason))
                .collect::<Vec<_>>()
                .join("; ")
        });
        out.push_str(&format!("    - {}: {why}\n", c.case_id));
    }
    out
}

fn exit_code(r: &Report) -> u8 {
    match r.summary.gate_decision.as_str() {
        "PASS" => 0,
        "FAIL" => EXIT_EVAL_FAIL,
        _ => EXIT_EVAL_INCONCLUSIVE,
    }
}

fn run_suite(app: &App, a: EvalRunArgs) -> CmdResult {
    let store = app.store()?;
    let version = match a.version {
        Some(v) => v,
        None => store.latest_version(&a.bundle)?,
    };
    let progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>> =
        if std::io::stderr().is_terminal() && !app.global.json {
            Some(Arc::new(|done, total| {
                eprint!("\r  {done}/{total} cases");
                if done == total {
                    eprint!("\r{:20}\r", "");
                }
            }))
        } else {
            None
        };
    let req = EvalRequest {
        suite: a.suite,
        bundle: a.bundle,
        version,
        concurrency: a.concurrency,
        repeats: a.repeats,
        tags: a.tags,
        save: !a.no_save,
        progress,
    };
    if a.concurrency == Some(0) || a.repeats == Some(0) {
        return Err(Failure::usage(
            "--concurrency and --repeats must be at least 1",
            "e.g. --concurrency 16 --repeats 3",
        ));
    }
    let out = evals::run(&app.ctx(&store), &req)?;
    let code = exit_code(&out.report);
    if let Some(path) = &a.output {
        std::fs::write(path, render(&out.report, a.format)).map_err(|e| Failure {
            code: 1,
            kind: "io",
            message: format!("cannot write {}: {e}", path.display()),
            hint: Some("check the directory exists and is writable".into()),
        })?;
    }
    if output::json(app, &out) {
        return Ok(code);
    }
    anstream::print!("{}", render(&out.report, a.format));
    if let Some(p) = &out.saved_to {
        anstream::println!(
            "  {}",
            paint(DIM, &format!("report: {p} (run {})", out.report.run_id))
        );
    }
    output::git_note(&out.git_commit, &out.git_error);
    Ok(code)
}

fn report(app: &App, a: EvalReportArgs) -> CmdResult {
    let store = app.store()?;
    let root = store.dir().join("eval_reports");
    let mut found: Vec<std::path::PathBuf> = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                let rel = p
                    .strip_prefix(&root)
                    .map(|r| r.to_string_lossy().to_string())
                    .unwrap_or_default();
                let parts: Vec<&str> = rel.split('/').collect();
                let stem = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                let ok = match &a.run_id {
                    Some(id) => stem == *id || rel == *id,
                    None => {
                        a.bundle
                            .as_deref()
                            .is_none_or(|b| parts.first() == Some(&b))
                            && a.version
                                .as_deref()
                                .is_none_or(|v| parts.get(1) == Some(&v))
                            && a.suite.as_deref().is_none_or(|s| parts.get(2) == Some(&s))
                    }
                };
                if ok {
                    found.push(p);
                }
            }
        }
    }
    // Run ids start with a UTC timestamp, so the greatest name is the newest.
    found.sort_by_key(|p| p.file_name().map(|n| n.to_os_string()));
    let Some(path) = found.last() else {
        return Err(Failure {
            code: 1,
            kind: "not_found",
            message: "no matching eval report".into(),
            hint: Some(
                "run one with `releaseops eval run <suite> --bundle <id>`, or check the run id"
                    .into(),
            ),
        });
    };
    let text = std::fs::read_to_string(path).map_err(|e| Failure {
        code: 1,
        kind: "io",
        message: format!("cannot read {}: {e}", path.display()),
        hint: None,
    })?;
    if app.global.json || matches!(a.format, ReportFormat::Json) {
        let v: serde_json::Value =
            releaseops_format::yaml::from_str(&text).map_err(Failure::from)?;
        output::print_json(&v);
    } else {
        anstream::print!("{text}");
    }
    Ok(0)
}
