//! Evaluation wired to the store: load and validate a suite, hand the agent
//! the bundle exactly as stored (prompt and policy text from the object
//! store), run, and save the report under
//! `eval_reports/<id>/<version>/<suite>/<run-id>.yaml` in a transaction with a
//! history record. Reports are never overwritten.

use std::sync::Arc;
use std::time::Duration;

use releaseops_eval::judge::{JudgeEnv, JudgeSpec};
use releaseops_eval::providers::{Provider, RetryPolicy, ToolDef, http_client};
use releaseops_eval::report::Report;
use releaseops_eval::runner::{self, BundleUnderTest, RunOptions};
use releaseops_eval::suite::{Suite, TargetSpec};
use releaseops_eval::target::{CommandTarget, HttpTarget, ModelTarget, Target};
use releaseops_format::manifest::BundleManifest;
use releaseops_format::names;
use releaseops_format::template::template_text;
use releaseops_store::reports::ReportFilter;
use releaseops_store::{Store, StoreError};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::bundle::artifact_bytes;
use crate::{CoreError, Ctx, Result};

pub fn suite_rel_path(id: &str) -> String {
    format!("evals/{id}.yaml")
}

/// Loads and validates a suite; errors name the file and the case.
pub fn load_suite(store: &Store, id: &str) -> Result<Suite> {
    read_suite(store, id).map(|(suite, _)| suite)
}

/// A suite, and the bytes it was parsed from (read once).
fn read_suite(store: &Store, id: &str) -> Result<(Suite, Vec<u8>)> {
    names::validate_role(id).map_err(|_| {
        CoreError::invalid(
            format!("'{id}' is not a valid suite id"),
            "suite ids use letters, digits, '-' and '_'",
        )
    })?;
    let path = store.dir().join(suite_rel_path(id));
    // A link, a FIFO or a file past the YAML cap in its place is refused,
    // not followed or read without end.
    let Some(bytes) = releaseops_store::fsx::read_regular_opt(
        &path,
        releaseops_format::yaml::MAX_YAML_BYTES as u64,
    )?
    else {
        let known = suite_ids(store).unwrap_or_default();
        let hint = format!(
            "{}`releaseops eval list` shows the suites ({}); `releaseops eval create NAME` writes a new one",
            names::did_you_mean(id, &known),
            if known.is_empty() {
                "none yet".to_string()
            } else {
                known.join(", ")
            }
        );
        return Err(CoreError::refused(
            format!("no eval suite '{id}' ({})", path.display()),
            hint,
        ));
    };
    let suite = Suite::parse(&bytes).map_err(|e| {
        CoreError::invalid(
            format!("{}: {e}", path.display()),
            "fix the suite; nothing was run",
        )
    })?;
    Ok((suite, bytes))
}

/// A suite's text as written (a link in its place is refused).
pub fn suite_text(store: &Store, id: &str) -> Result<String> {
    let (_, bytes) = read_suite(store, id)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Suite ids, sorted.
pub fn suite_ids(store: &Store) -> Result<Vec<String>> {
    let mut ids: Vec<String> = match std::fs::read_dir(store.dir().join("evals")) {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".yaml"))
                    .map(str::to_string)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    ids.sort();
    Ok(ids)
}

/// Writes the scaffold for a new suite.
pub fn create_suite(ctx: &Ctx<'_>, id: &str) -> Result<String> {
    create_suite_with(ctx, id, &releaseops_eval::suite::scaffold(id))
}

/// Writes a new suite with this text (checked as `eval run` will read it).
pub fn create_suite_with(ctx: &Ctx<'_>, id: &str, text: &str) -> Result<String> {
    crate::sync::retrying(ctx.store, || create_suite_once(ctx, id, text))
}

fn create_suite_once(ctx: &Ctx<'_>, id: &str, text: &str) -> Result<String> {
    names::validate_role(id).map_err(|_| {
        CoreError::invalid(
            format!("'{id}' is not a valid suite id"),
            "suite ids use letters, digits, '-' and '_'",
        )
    })?;
    let rel = suite_rel_path(id);
    let tx = ctx.store.begin()?;
    if ctx.store.dir().join(&rel).exists() {
        return Err(CoreError::refused(
            format!("eval suite '{id}' already exists"),
            "edit .releaseops/evals/<suite>.yaml, or pick another id",
        ));
    }
    releaseops_eval::suite::Suite::parse(text.as_bytes()).map_err(|e| {
        CoreError::invalid(
            format!("suite '{id}' is not valid: {e}"),
            "fix the suite text; the README's Evaluation section shows the format",
        )
    })?;
    let mut tx = tx;
    tx.write(rel.clone(), text.to_string());
    tx.commit(
        &format!("releaseops: create eval suite {id}"),
        ctx.author().as_ref(),
    )?;
    Ok(format!(".releaseops/{rel}"))
}

/// What `eval import promptfoo` did.
#[derive(Debug, Clone, Serialize)]
pub struct PromptfooImport {
    pub suite: String,
    /// The suite file written (absent when nothing could be imported).
    pub path: Option<String>,
    pub cases: usize,
    pub untranslated: Vec<releaseops_eval::promptfoo::Untranslated>,
    pub notes: Vec<String>,
}

/// Turns a promptfoo config into the suite `suite_id` (a new file).
pub fn import_promptfoo(
    ctx: &Ctx<'_>,
    file: &std::path::Path,
    suite_id: &str,
) -> Result<PromptfooImport> {
    names::validate_role(suite_id).map_err(|_| {
        CoreError::invalid(
            format!("'{suite_id}' is not a valid suite id"),
            "suite ids use letters, digits, '-' and '_'",
        )
    })?;
    let path = std::fs::canonicalize(file).map_err(|e| StoreError::Io {
        what: "cannot open",
        path: file.to_path_buf(),
        source: e,
    })?;
    let meta = std::fs::metadata(&path).map_err(|e| StoreError::Io {
        what: "cannot read",
        path: path.clone(),
        source: e,
    })?;
    if !meta.is_file() || meta.len() > 16 * 1024 * 1024 {
        return Err(CoreError::invalid(
            format!(
                "{} is not a promptfoo config file (a file of at most 16 MiB)",
                file.display()
            ),
            "give the path of promptfooconfig.yaml",
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| StoreError::Io {
        what: "cannot read",
        path: path.clone(),
        source: e,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        CoreError::invalid(
            format!("{} is not UTF-8 text", file.display()),
            "save it as UTF-8",
        )
    })?;
    let imported = releaseops_eval::promptfoo::import(&text, suite_id).map_err(|e| {
        CoreError::invalid(
            format!("{}: {e}", file.display()),
            "give a promptfoo config (prompts, providers, tests with vars and assert)",
        )
    })?;
    let mut out = PromptfooImport {
        suite: suite_id.to_string(),
        path: None,
        cases: imported.cases,
        untranslated: imported.untranslated,
        notes: imported.notes,
    };
    if imported.cases == 0 {
        return Ok(out);
    }
    let yaml = releaseops_format::yaml::Node::from_json(&imported.suite).to_yaml();
    out.path = Some(create_suite_with(ctx, suite_id, &yaml)?);
    Ok(out)
}

/// The bundle as the agent receives it: metadata, every prompt's and policy's
/// text, and the model config.
pub fn agent_payload(store: &Store, m: &BundleManifest) -> Value {
    let section = |arts: &indexmap::IndexMap<String, releaseops_format::manifest::ArtifactRef>| -> Map<String, Value> {
        arts.iter()
            .map(|(role, a)| {
                let content = artifact_bytes(store, a).map(|b| String::from_utf8_lossy(&b).into_owned());
                (role.clone(), json!({ "location": a.location(), "content_hash": a.content_hash, "content": content }))
            })
            .collect()
    };
    json!({
        "id": m.metadata.id,
        "version": m.metadata.version,
        "bundle_hash": m.bundle_hash,
        "prompts": section(&m.prompts),
        "policies": section(&m.policies),
        "model_config": m.model_config.as_ref().map(|mc| mc.to_json()),
    })
}

#[derive(Clone)]
pub struct EvalRequest {
    pub suite: String,
    pub bundle: String,
    pub version: String,
    pub concurrency: Option<usize>,
    pub repeats: Option<u32>,
    pub tags: Vec<String>,
    pub save: bool,
    /// Call the model even when the response cache has the answer.
    pub no_cache: bool,
    pub progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>>,
    /// Notified to stop the run early (the caller's Ctrl-C): the cases
    /// already judged are kept in a partial report.
    pub cancel: Option<Arc<tokio::sync::Notify>>,
}

impl EvalRequest {
    /// Every case of `suite` on `bundle@version`, once, with the suite's own
    /// concurrency, the response cache on, and the report saved.
    pub fn new(suite: &str, bundle: &str, version: &str) -> Self {
        EvalRequest {
            suite: suite.into(),
            bundle: bundle.into(),
            version: version.into(),
            concurrency: None,
            repeats: None,
            tags: Vec::new(),
            save: true,
            no_cache: false,
            progress: None,
            cancel: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalOutcome {
    pub report: Report,
    /// Where the report was saved (relative to the repository root).
    pub saved_to: Option<String>,
    /// The git commit made, or why it failed (`git_commit`, `git_error`).
    #[serde(flatten)]
    pub git: releaseops_store::GitOutcome,
}

/// What a run needs before its first call, each input checked: the bundle,
/// the target built, and every tool a case asserts about offered.
struct Prepared {
    manifest: BundleManifest,
    spec: TargetSpec,
    payload: Value,
    target: Target,
    judges: JudgeEnv,
}

fn prepare(
    store: &Store,
    suite: &Suite,
    suite_id: &str,
    bundle: &str,
    version: &str,
    tags: &[String],
    cache_read: bool,
) -> Result<Prepared> {
    let manifest = store.load_bundle(bundle, version)?;
    // No target is the existing tool's meaning: the bundle's own model, its
    // prompts rendered with the case's input.
    let spec = suite.target.clone().unwrap_or(TargetSpec::Model {
        provider: None,
        model: None,
        base_url: None,
        timeout_ms: releaseops_eval::suite::DEFAULT_TIMEOUT_MS,
        tools: Vec::new(),
    });
    if let TargetSpec::Command { argv, .. } = &spec {
        find_program(&argv[0], store.root()).map_err(|why| {
            CoreError::invalid(
                format!("suite '{}': target.command cannot run: {why}", suite_id),
                "fix target.command in the suite (a program on PATH, or a path relative to the repository root)",
            )
        })?;
    }
    if suite.selected(tags).is_empty() {
        return Err(CoreError::invalid(
            format!(
                "no case of suite '{}' has tag(s) {}",
                suite_id,
                tags.join(", ")
            ),
            "drop --tag, or tag some cases",
        ));
    }
    let payload = agent_payload(store, &manifest);
    let limiters = limiters_of(suite);
    let mut target = build_target(
        store,
        &spec,
        &manifest,
        &payload,
        cache_read,
        &limiters,
        &suite.target_artifacts,
    )?;
    // The bundle's tools are offered when any case of the suite (not only
    // those `--tag` selects: a case is sent the same request however the
    // suite is run) asserts about tools; a suite that judges words alone
    // calls the model as it always has (a local model without tool support
    // keeps working).
    let asserts_tools = suite.cases.iter().any(|c| {
        c.assertions
            .iter()
            .any(|a| !a.judge.tools_named().is_empty())
    });
    if let Target::Model(m) = &mut target
        && asserts_tools
    {
        m.tools = offered_tools(&m.tools, &payload);
    }
    if let Target::Model(m) = &target
        && let Some((case, tool)) = unoffered_tool(suite, tags, &m.tools)
    {
        let offered: Vec<&str> = m.tools.iter().map(|t| t.name.as_str()).collect();
        let denied = policy_tools(&payload)
            .iter()
            .any(|(n, allowed, _)| n == tool && !allowed);
        return Err(CoreError::invalid(
            format!(
                "suite '{}', case '{case}': asserts about tool '{tool}', which the model target does not offer the model ({})",
                suite_id,
                if offered.is_empty() {
                    "it offers no tools".to_string()
                } else {
                    format!("it offers: {}", offered.join(", "))
                }
            ),
            format!(
                "list it under the suite's target.tools ({{name: {tool}, parameters: {{type: object, properties: ...}}}}){}; a tool the model cannot call can never be judged",
                if denied {
                    " (the bundle's policy denies it, so it is not offered by itself)"
                } else {
                    ", or allow it in the bundle's tools policy"
                }
            ),
        ));
    }
    let judges = judge_env(suite, &limiters)?;
    Ok(Prepared {
        manifest,
        spec,
        payload,
        target,
        judges,
    })
}

/// Checks that `suite` (not yet written) can run against a bundle version:
/// what `run` refuses before its first call is refused here, before
/// anything is written.
pub fn preflight(
    store: &Store,
    suite: &Suite,
    suite_id: &str,
    bundle: &str,
    version: &str,
) -> Result<()> {
    let p = prepare(store, suite, suite_id, bundle, version, &[], true)?;
    // A model target renders the bundle's prompts with each case's input:
    // a variable no case gives fails every case, so it is refused here.
    if let Target::Model(m) = &p.target {
        for c in &suite.cases {
            let mut input = suite.vars.clone();
            input.extend(c.input.clone());
            m.chat_for(&input).map_err(|e| {
                CoreError::invalid(
                    format!("suite '{suite_id}', case '{}': {e}", c.id),
                    "give the prompt's variables under the suite's vars (replay takes them from --target-from SUITE)",
                )
            })?;
        }
    }
    Ok(())
}

pub fn run(ctx: &Ctx<'_>, req: &EvalRequest) -> Result<EvalOutcome> {
    let store = ctx.store;
    let (suite, bytes) = read_suite(store, &req.suite)?;
    let suite_digest = Some(releaseops_format::hash::sha256_prefixed(&bytes));
    let Prepared {
        manifest,
        spec,
        payload,
        target,
        judges,
    } = prepare(
        store,
        &suite,
        &req.suite,
        &req.bundle,
        &req.version,
        &req.tags,
        !req.no_cache,
    )?;
    let redactor = Arc::new(secrets_of(&spec, &target));
    let hash = manifest
        .bundle_hash
        .clone()
        .unwrap_or_else(|| manifest.compute_hash());
    let bundle = BundleUnderTest {
        id: req.bundle.clone(),
        version: req.version.clone(),
        hash,
        payload,
    };
    let stamp = ctx.now.strftime("%Y%m%dT%H%M%S").to_string();
    let run_id = format!(
        "{stamp}-{:04x}",
        (ctx.now.subsec_nanosecond() as u32 ^ std::process::id()) & 0xffff
    );
    let opts = RunOptions {
        concurrency: req
            .concurrency
            .or(suite.concurrency)
            .unwrap_or(runner::DEFAULT_CONCURRENCY),
        repeats: req.repeats.unwrap_or(suite.repeats).max(1),
        tags: req.tags.clone(),
        run_id: run_id.clone(),
        timestamp: ctx.now_str(),
        progress: req.progress.clone(),
        case_timeout: Duration::from_millis(spec.timeout_ms()),
        retry: RetryPolicy::default(),
        judges,
        cancel: req.cancel.clone(),
        redactor,
    };
    let rt = ctx.runtime.and_then(|r| r.handle()).ok_or_else(|| {
        CoreError::refused(
            "no async runtime to run the evaluation on",
            "the caller starts one and passes its handle in Ctx::runtime",
        )
    })?;
    let report = rt.block_on(runner::run(&suite, target, &bundle, opts));
    if !req.save {
        return Ok(EvalOutcome {
            report,
            saved_to: None,
            git: Default::default(),
        });
    }
    let rel = Store::report_rel_path(&req.bundle, &req.version, &req.suite, &run_id);
    // Saving is what lands on the team's remote: a lost race saves again
    // on the new state (the evaluation is not run again).
    let git = crate::sync::retrying(store, || {
        let mut tx = store.begin()?;
        if store.dir().join(&rel).exists() {
            return Err(CoreError::refused(
                format!("a report named {rel} already exists"),
                "run again: reports are never overwritten",
            ));
        }
        releaseops_store::import_legacy_history(&mut tx)?;
        let text = report.to_yaml();
        // The eval gate accepts this file, with exactly these bytes, and no other.
        let evidence = releaseops_format::history::ReportEvidence {
            path: rel.clone(),
            digest: releaseops_format::hash::sha256_prefixed(text.as_bytes()),
            suite: req.suite.clone(),
            partial: !req.tags.is_empty() || report.summary.incomplete,
            suite_digest: suite_digest.clone(),
        };
        tx.write(rel.clone(), text);
        let mut rec = ctx.record(releaseops_format::history::EventKind::EvalRun);
        rec.bundle_id = Some(req.bundle.clone());
        rec.version = Some(req.version.clone());
        rec.bundle_hash = Some(report.bundle_hash.clone());
        rec.state = Some(report.summary.gate_decision.to_string());
        rec.reason = Some(format!("suite '{}': {}", req.suite, report.summary.reason));
        rec.report = Some(evidence);
        tx.append(rec)?;
        let msg = format!(
            "releaseops: eval {} on {} {}: {}",
            req.suite, req.bundle, req.version, report.summary.gate_decision
        );
        Ok(tx.commit(&msg, ctx.author().as_ref())?.git)
    })?;
    Ok(EvalOutcome {
        report,
        saved_to: Some(format!(".releaseops/{rel}")),
        git,
    })
}

/// A suite's per-provider rate limits, shared by its target and judges.
pub(crate) fn limiters_of(
    suite: &Suite,
) -> Vec<(Provider, Arc<releaseops_eval::providers::RateLimiter>)> {
    suite
        .rate_limits
        .iter()
        .filter_map(|(p, rps)| {
            Some((
                Provider::parse(p)?,
                releaseops_eval::providers::RateLimiter::new(*rps)?,
            ))
        })
        .collect()
}

/// Where `program` is: a path (relative to the repository root) when it
/// has a slash, else the first executable of that name on PATH.
fn find_program(program: &str, root: &std::path::Path) -> std::result::Result<(), String> {
    #[cfg(unix)]
    let runnable = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    #[cfg(not(unix))]
    let runnable = |p: &std::path::Path| p.is_file();
    if program.contains('/') {
        let p = root.join(program);
        return if runnable(&p) {
            Ok(())
        } else if p.exists() {
            Err(format!("{program} is not an executable file"))
        } else {
            Err(format!("{program} does not exist"))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| runnable(&d.join(program))) {
        Ok(())
    } else {
        Err(format!("`{program}` is not found on PATH"))
    }
}

/// Compares the newest saved runs of `suite` on two versions, case by case.
pub fn compare(
    store: &Store,
    suite: &str,
    bundle: &str,
    baseline: &str,
    candidate: &str,
) -> Result<releaseops_eval::compare::Comparison> {
    let load = |version: &str| -> Result<releaseops_eval::compare::Outcomes> {
        let filter = ReportFilter {
            bundle: Some(bundle),
            version: Some(version),
            suite: Some(suite),
            run_id: None,
        };
        let entry = store.find_reports(&filter).pop().ok_or_else(|| {
            CoreError::refused(
                format!("no saved run of suite '{suite}' on {bundle}@{version}"),
                format!("run it first: `releaseops eval run {suite} --bundle {bundle} --version {version}`"),
            )
        })?;
        let bytes = store.read_report(&entry)?;
        releaseops_format::yaml::from_bytes(&bytes).map_err(|e| {
            StoreError::Format {
                path: entry.path,
                source: e,
            }
            .into()
        })
    };
    Ok(releaseops_eval::compare::compare(
        &load(baseline)?,
        &load(candidate)?,
    ))
}

/// Every secret a run could see: keys and tokens in the environment, the
/// http target's header values and the agent's environment values read from
/// `${NAME}`, the model target's key. None of them is kept in a report or
/// printed.
pub(crate) fn secrets_of(spec: &TargetSpec, target: &Target) -> releaseops_eval::secrets::Redactor {
    let mut r = releaseops_eval::secrets::Redactor::from_environment();
    let from_env = |raw: Option<&String>| raw.is_some_and(|v| v.contains("${"));
    // Each value read from `${NAME}` on its own too: `token=${DB_PASSWD}`
    // must not leak the password when the agent echoes it bare.
    let raws: Vec<&String> = match spec {
        TargetSpec::Command { env, .. } => env.values().collect(),
        TargetSpec::Http { headers, .. } => headers.values().collect(),
        TargetSpec::Model { .. } => Vec::new(),
    };
    for raw in raws {
        let mut rest = raw.as_str();
        while let Some(i) = rest.find("${") {
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else { break };
            if let Ok(v) = std::env::var(&after[..end]) {
                r.add(&v);
            }
            rest = &after[end + 1..];
        }
    }
    match (spec, target) {
        (TargetSpec::Command { env, .. }, Target::Command(c)) => {
            for (k, v) in &c.env {
                if from_env(env.get(k)) {
                    r.add(v);
                }
            }
        }
        (TargetSpec::Http { headers, .. }, Target::Http(h)) => {
            for (k, v) in &h.headers {
                if from_env(headers.get(k)) {
                    r.add_header(v);
                }
            }
        }
        (_, Target::Model(m)) => {
            if let Some(k) = &m.api_key {
                r.add(k);
            }
        }
        _ => {}
    }
    r
}

/// Expands `${NAME}` from the environment, so secrets stay out of suite files.
fn expand_env(value: &str, what: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(CoreError::invalid(
                format!("{what}: unclosed ${{ in {value:?}"),
                "write ${NAME}",
            ));
        };
        let name = &after[..end];
        let v = std::env::var(name).map_err(|_| {
            CoreError::invalid(
                format!("{what} needs the environment variable {name}, which is not set"),
                format!("export {name}=..."),
            )
        })?;
        out.push_str(&v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The tool rules of the bundle's policies (`tools: [{name, allowed,
/// conditions}]`), each with whether it is allowed.
fn policy_tools(payload: &Value) -> Vec<(String, bool, Value)> {
    let mut out = Vec::new();
    let Some(policies) = payload.get("policies").and_then(Value::as_object) else {
        return out;
    };
    for art in policies.values() {
        let Some(v) = art
            .get("content")
            .and_then(Value::as_str)
            .and_then(|c| releaseops_format::yaml::from_str::<Value>(c).ok())
        else {
            continue;
        };
        let Some(Value::Array(rules)) = v.get("tools").cloned() else {
            continue;
        };
        for r in rules {
            if let Some(name) = r.get("name").and_then(Value::as_str) {
                let allowed = r.get("allowed").and_then(Value::as_bool) != Some(false);
                out.push((name.to_string(), allowed, r));
            }
        }
    }
    out
}

/// The tools a model target offers when a case asserts about tools: the
/// suite's `target.tools`, then each tool the bundle's policies allow,
/// with the condition fields as its arguments. A tool any policy denies is
/// not offered unless the suite lists it.
pub(crate) fn offered_tools(listed: &[ToolDef], payload: &Value) -> Vec<ToolDef> {
    let mut out = listed.to_vec();
    let rules = policy_tools(payload);
    let denied: Vec<&str> = rules
        .iter()
        .filter(|(_, a, _)| !a)
        .map(|(n, ..)| n.as_str())
        .collect();
    for (name, _, r) in &rules {
        if denied.contains(&name.as_str())
            || !ToolDef::valid_name(name)
            || out.iter().any(|t| t.name == *name)
        {
            continue;
        }
        let args: Map<String, Value> = r
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let field = c.get("field").and_then(Value::as_str)?;
                // `operator: in, value: [US, CA]`: the argument is one of them.
                let value = match c.get("value") {
                    Some(Value::Array(a)) => a.first().cloned().unwrap_or(Value::Null),
                    v => v.cloned().unwrap_or(Value::Null),
                };
                Some((field.to_string(), value))
            })
            .collect();
        let description = r.get("description").and_then(Value::as_str).unwrap_or("");
        out.push(ToolDef::from_calls(
            name,
            description,
            [&Value::Object(args)],
        ));
    }
    out
}

/// The prompts a model target is sent: those `target_artifacts` names, in
/// its order; all of them, in the bundle's, when it names none.
pub(crate) fn sent_prompts<'a>(
    prompts: &'a Map<String, Value>,
    roles: &'a [String],
) -> Vec<(&'a String, &'a Value)> {
    if roles.is_empty() {
        prompts.iter().collect()
    } else {
        roles
            .iter()
            .filter_map(|r| prompts.get_key_value(r.as_str()))
            .collect()
    }
}

/// The first tool a selected case asserts about that the model is not
/// offered: such an assertion could never fail (`called: false`) or pass.
fn unoffered_tool<'a>(
    suite: &'a Suite,
    tags: &[String],
    offered: &[ToolDef],
) -> Option<(&'a str, &'a str)> {
    suite.selected(tags).into_iter().find_map(|c| {
        c.assertions
            .iter()
            .flat_map(|a| a.judge.tools_named())
            .find(|n| !offered.iter().any(|t| t.name == *n))
            .map(|n| (c.id.as_str(), n))
    })
}

pub(crate) fn build_target(
    store: &Store,
    spec: &TargetSpec,
    m: &BundleManifest,
    payload: &Value,
    cache_read: bool,
    limiters: &[(Provider, Arc<releaseops_eval::providers::RateLimiter>)],
    roles: &[String],
) -> Result<Target> {
    let client =
        || http_client().map_err(|e| CoreError::refused(e, "check the system's TLS setup"));
    Ok(match spec {
        TargetSpec::Command {
            argv,
            env,
            max_output_bytes,
            ..
        } => Target::Command(CommandTarget {
            argv: argv.clone(),
            env: env
                .iter()
                .map(|(k, v)| Ok((k.clone(), expand_env(v, &format!("target.env.{k}"))?)))
                .collect::<Result<_>>()?,
            cwd: store.root().to_path_buf(),
            max_output_bytes: *max_output_bytes,
        }),
        TargetSpec::Http { url, headers, .. } => {
            let headers = headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), expand_env(v, &format!("target.headers.{k}"))?)))
                .collect::<Result<Vec<_>>>()?;
            Target::Http(HttpTarget {
                client: client()?,
                url: url.clone(),
                headers,
            })
        }
        TargetSpec::Model {
            provider,
            model,
            base_url,
            tools,
            ..
        } => {
            let mc = m.model_config.as_ref();
            let pname = provider.clone().or_else(|| mc.map(|c| c.provider.clone())).ok_or_else(|| {
                CoreError::invalid(
                    format!("{}@{} has no model config and the suite names no provider", m.metadata.id, m.metadata.version),
                    "create the bundle with --model and --provider, or set target.provider and target.model",
                )
            })?;
            let p = Provider::parse(&pname).ok_or_else(|| {
                CoreError::invalid(
                    format!("provider '{pname}' is not supported"),
                    "use openai, anthropic, gemini or openai-compatible",
                )
            })?;
            let model = model
                .clone()
                .or_else(|| mc.map(|c| c.model.clone()))
                .ok_or_else(|| {
                    CoreError::invalid(
                        "no model to call",
                        "set target.model or create the bundle with --model",
                    )
                })?;
            let base = base_url
                .clone()
                .or_else(|| {
                    std::env::var(p.base_url_var())
                        .ok()
                        .filter(|s| !s.trim().is_empty())
                })
                .unwrap_or_else(|| p.default_base_url().to_string());
            let (key_var, required) = p.key_var();
            let api_key = p
                .key_for(
                    std::env::var(key_var).ok().filter(|k| !k.trim().is_empty()),
                    &base,
                    base_url.as_ref().map(|_| "the suite's target.base_url"),
                )
                .map_err(|e| {
                    CoreError::refused(
                        e,
                        "or drop target.base_url to call the provider's own service",
                    )
                })?;
            // A key is needed by the public service; a compatible server
            // elsewhere (local, or a test server on loopback) may not want one.
            if api_key.is_none() && required && base.trim_end_matches('/') == p.default_base_url() {
                return Err(CoreError::refused(
                    format!("calling {} needs {key_var}", p.name()),
                    format!(
                        "export {key_var}=..., or point {} at a compatible server",
                        p.base_url_var()
                    ),
                ));
            }
            let mut system_templates = Vec::new();
            let mut user_template = None;
            if let Some(prompts) = payload.get("prompts").and_then(|v| v.as_object()) {
                if let Some(missing) = roles.iter().find(|r| !prompts.contains_key(r.as_str())) {
                    return Err(CoreError::invalid(
                        format!(
                            "the suite's target_artifacts names the prompt '{missing}', which {}@{} does not have (it has: {})",
                            m.metadata.id,
                            m.metadata.version,
                            prompts.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        "list only the bundle's prompt roles in target_artifacts, or drop it to use every prompt",
                    ));
                }
                for (role, art) in sent_prompts(prompts, roles) {
                    let content = art.get("content").and_then(|c| c.as_str()).ok_or_else(|| {
                        CoreError::refused(
                            format!("the text of prompt '{role}' is not available (not in the object store, not reproducible)"),
                            "recreate the bundle with releaseops so its prompts are stored",
                        )
                    })?;
                    let t = template_text(content);
                    if role == "user" {
                        user_template = Some(t)
                    } else {
                        system_templates.push(t)
                    }
                }
            }
            Target::Model(Box::new(ModelTarget {
                client: client()?,
                provider: p,
                base_url: base,
                api_key,
                model,
                temperature: mc.and_then(|c| c.temperature.as_f64()),
                max_tokens: mc.map(|c| c.max_tokens).unwrap_or(1024),
                parameters: mc.map(|c| c.parameters.clone()).unwrap_or_default(),
                system_templates,
                user_template,
                tools: tools.clone(),
                cache: Some(releaseops_eval::providers::ResponseCache {
                    dir: store.dir().join(".tmp-cache").join("responses"),
                    read: cache_read,
                    salt: String::new(),
                }),
                limiter: limiters
                    .iter()
                    .find(|(q, _)| *q == p)
                    .map(|(_, l)| l.clone()),
            }))
        }
    })
}

/// Judge model endpoints from the environment; refuses before any call when
/// a judge needs a public endpoint whose key is not set.
fn judge_env(
    suite: &Suite,
    limiters: &[(Provider, Arc<releaseops_eval::providers::RateLimiter>)],
) -> Result<JudgeEnv> {
    fn walk(j: &JudgeSpec, out: &mut Vec<Provider>) {
        match j {
            JudgeSpec::LlmJudge(l) => out.push(l.provider),
            JudgeSpec::Composite { members, .. } => {
                members.iter().for_each(|m| walk(&m.judge, out))
            }
            _ => {}
        }
    }
    let mut used = Vec::new();
    for c in &suite.cases {
        for a in &c.assertions {
            walk(&a.judge, &mut used);
        }
    }
    let endpoints: Vec<(Provider, String, Option<String>)> = [
        Provider::OpenAi,
        Provider::OpenAiCompatible,
        Provider::Anthropic,
        Provider::Gemini,
    ]
    .into_iter()
    .map(|p| {
        let base = std::env::var(p.base_url_var())
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| p.default_base_url().to_string());
        let key = std::env::var(p.key_var().0)
            .ok()
            .filter(|k| !k.trim().is_empty());
        (p, base, key)
    })
    .collect();
    for p in &used {
        if let Some((_, base, key)) = endpoints.iter().find(|(q, _, _)| q == p)
            && key.is_none()
            && p.key_var().1
            && base.trim_end_matches('/') == p.default_base_url()
        {
            return Err(CoreError::refused(
                format!(
                    "the suite's llm_judge calls {}, which needs {}",
                    p.name(),
                    p.key_var().0
                ),
                format!(
                    "export {}=..., or point {} at a compatible server",
                    p.key_var().0,
                    p.base_url_var()
                ),
            ));
        }
    }
    let client = if used.is_empty() {
        None
    } else {
        Some(http_client().map_err(|e| CoreError::refused(e, "check the system's TLS setup"))?)
    };
    Ok(JudgeEnv {
        limiters: limiters.to_vec(),
        client,
        retry: RetryPolicy::default(),
        endpoints,
    })
}

/// Runs each suite `env` requires that has no report yet for this exact
/// bundle hash (`promote --run-evals`). Returns what ran.
pub fn run_missing(
    ctx: &Ctx<'_>,
    id: &str,
    version: &str,
    env: &str,
    cancel: Option<Arc<tokio::sync::Notify>>,
) -> Result<Vec<EvalOutcome>> {
    let store = ctx.store;
    let manifest = store.load_bundle(id, version)?;
    let policy = store.load_env(env)?.promotion_policy.unwrap_or_default();
    if !policy.requires_eval {
        return Ok(Vec::new());
    }
    if policy.eval_suites.is_empty() {
        return Err(CoreError::refused(
            format!(
                "'{env}' requires an eval but names no suites, so --run-evals cannot tell which to run"
            ),
            format!("list them under promotion_policy.eval_suites in environments/{env}.yaml"),
        ));
    }
    let hash = manifest
        .bundle_hash
        .clone()
        .unwrap_or_else(|| manifest.compute_hash());
    let have = store.chain_view()?.eval_reports(store, &hash)?;
    let mut ran = Vec::new();
    for suite in &policy.eval_suites {
        if have.iter().any(|r| r.suite_id == *suite) {
            continue;
        }
        let req = EvalRequest {
            cancel: cancel.clone(),
            ..EvalRequest::new(suite, id, version)
        };
        ran.push(run(ctx, &req)?);
    }
    Ok(ran)
}
