//! The counterfactual method: the trace's recorded input run again against
//! the bundle with its prompt lines (and, for agents that read them, its
//! policy rules) taken out, to see which removals change the action.
//!
//! - Few lines: **leave one out**. Two runs of the whole bundle at least
//!   (its most common action is the reference, and how often the others
//!   differ is the noise floor), then one run per line without it (each
//!   `repeats` times); a line's effect is the share of its runs whose
//!   action differs from the reference, with a Wilson interval.
//! - Many lines (more runs than the budget): **random subsets** with a
//!   sparse linear surrogate, as ContextCite does: each run keeps every line
//!   with probability 1/2, and a Lasso regression of "the action changed" on
//!   "this line was removed" gives each line's effect; a bootstrap over the
//!   runs gives its interval.
//!
//! Runs go through the evaluation engine's targets (the bundle's model, or a
//! suite's command, http or model target), so its rate limits, retries and
//! response cache apply; the number of calls is known before the first.
//! An action is the last tool called, or "reply" (a reply differs when
//! fewer than half its words agree with the reference's).

use std::sync::Arc;

use releaseops_attribution::{ArtifactType, Trace};
use releaseops_eval::output::AgentOutput;
use releaseops_eval::providers::{RetryPolicy, ToolDef};
use releaseops_eval::suite::TargetSpec;
use releaseops_eval::target::Target;
use releaseops_format::template::template_text;
use releaseops_format::yaml::Node;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::error::{CoreError, Result};

/// How the effects are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    LeaveOneOut,
    RandomSubsets,
}

/// What to ablate, against what.
#[derive(Debug, Clone)]
pub struct AblationRequest {
    pub id: String,
    pub version: String,
    pub trace: Trace,
    /// Run through this suite's target; none: the bundle's own model.
    pub target_from: Option<String>,
    /// The most calls made.
    pub budget: usize,
    /// Runs per variant when leaving one out.
    pub repeats: u32,
    pub concurrency: usize,
    pub seed: u64,
    pub no_cache: bool,
}

/// One line or rule that can be taken out.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    pub artifact_type: ArtifactType,
    pub role: String,
    pub location: String,
    pub content_snippet: String,
    #[serde(skip)]
    at: Place,
}

#[derive(Debug, Clone)]
enum Place {
    /// Line index (0-based) of the prompt `role`'s template.
    Line(usize),
    /// Item `index` of the list `key` in the policy `role`.
    Rule(String, usize),
}

/// What will be run, known before any call.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub method: Method,
    pub units: usize,
    pub calls: usize,
    /// Runs of the whole bundle (two at least): what the others are
    /// compared with, and how often the action changes with nothing removed.
    pub references: usize,
    /// Policies reach a command or http agent in its payload; a model
    /// target sees only the prompts, so their rules are not ablated there.
    pub policy_rules_ablated: bool,
}

/// A prepared ablation: the plan, and what it needs to run.
pub struct Prepared {
    pub plan: Plan,
    units: Vec<Unit>,
    target: Target,
    payload: Value,
    input: Map<String, Value>,
    trace_id: String,
    /// The prompt roles a model target is sent (none: all).
    roles: Vec<String>,
    /// What production did (the trace's tool calls and reply), if it
    /// recorded either.
    recorded: Option<AgentOutput>,
    /// The target's secrets (its key, headers and environment values), kept
    /// out of everything the report says.
    secrets: releaseops_eval::secrets::Redactor,
}

/// One line's or rule's measured effect.
#[derive(Debug, Clone, Serialize)]
pub struct UnitEffect {
    #[serde(flatten)]
    pub unit: Unit,
    /// Leave one out: the share of runs without it whose action changed.
    /// Random subsets: the surrogate's coefficient (the change in the chance
    /// the action changes when it is removed).
    pub effect: f64,
    pub low: f64,
    pub high: f64,
    /// The runs that measured it.
    pub runs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AblationReport {
    pub trace_id: String,
    pub bundle_id: String,
    pub bundle_version: String,
    pub plan: Plan,
    /// The action with the whole bundle.
    pub reference_action: Option<String>,
    /// The action the trace recorded (none: it recorded no call or reply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_action: Option<String>,
    /// The share of the whole bundle's other runs whose action differed
    /// from its most common one: the change that chance alone makes, which
    /// an effect must exceed to count.
    pub noise_floor: Option<f64>,
    pub calls: usize,
    pub failed_calls: usize,
    /// Largest effect first.
    pub effects: Vec<UnitEffect>,
    /// Set when nothing can be concluded, with the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unclear: Option<String>,
}

/// The lines and rules of a bundle's payload that can be taken out.
fn units(payload: &Value, policies_too: bool) -> Vec<Unit> {
    let mut out = Vec::new();
    if let Some(prompts) = payload.get("prompts").and_then(Value::as_object) {
        for (role, a) in prompts {
            let Some(content) = a.get("content").and_then(Value::as_str) else {
                continue;
            };
            for (i, line) in template_text(content).lines().enumerate() {
                let t = line.trim();
                if t.is_empty() || t.starts_with("{%") || t.starts_with("{#") {
                    continue;
                }
                out.push(Unit {
                    artifact_type: ArtifactType::Prompt,
                    role: role.clone(),
                    location: format!("line {}", i + 1),
                    content_snippet: t.chars().take(200).collect(),
                    at: Place::Line(i),
                });
            }
        }
    }
    if policies_too && let Some(policies) = payload.get("policies").and_then(Value::as_object) {
        for (role, a) in policies {
            let Some(content) = a.get("content").and_then(Value::as_str) else {
                continue;
            };
            let Ok(Value::Object(doc)) = releaseops_format::yaml::from_str::<Value>(content) else {
                continue;
            };
            let mut n = 0;
            for (key, v) in &doc {
                let Value::Array(items) = v else { continue };
                for (i, item) in items.iter().enumerate() {
                    n += 1;
                    let name = ["name", "id", "type"]
                        .iter()
                        .find_map(|k| item.get(*k).and_then(Value::as_str))
                        .map_or_else(|| format!("{key} {}", i + 1), str::to_string);
                    out.push(Unit {
                        artifact_type: ArtifactType::Policy,
                        role: role.clone(),
                        location: format!("rule {n}: {name} ({key}[{i}])"),
                        content_snippet: item.to_string().chars().take(200).collect(),
                        at: Place::Rule(key.clone(), i),
                    });
                }
            }
        }
    }
    out
}

/// The payload with the units `removed` (by index into `units`) taken out.
fn without(payload: &Value, units: &[Unit], removed: &[bool]) -> Value {
    let mut p = payload.clone();
    let mut lines: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    let mut rules: std::collections::BTreeMap<&str, Vec<(&str, usize)>> = Default::default();
    for (u, gone) in units.iter().zip(removed) {
        match &u.at {
            Place::Line(i) if *gone => lines.entry(&u.role).or_default().push(*i),
            // Every run sees a policy with rules to take out as the same
            // serialization (the reference too, comments and layout
            // dropped alike), so the only difference is the rules removed.
            Place::Rule(k, i) => {
                let r = rules.entry(&u.role).or_default();
                if *gone {
                    r.push((k, *i));
                }
            }
            Place::Line(_) => {}
        }
    }
    // Every run sees its prompts as template text (the reference too), so
    // the only difference between runs is the lines taken out.
    if let Some(prompts) = p.get_mut("prompts").and_then(Value::as_object_mut) {
        for (role, a) in prompts.iter_mut() {
            let Some(content) = a.get("content").and_then(Value::as_str) else {
                continue;
            };
            let text = template_text(content);
            let drop = lines.get(role.as_str());
            let kept: Vec<&str> = text
                .lines()
                .enumerate()
                .filter(|(i, _)| drop.is_none_or(|d| !d.contains(i)))
                .map(|(_, l)| l)
                .collect();
            a["content"] = Value::String(kept.join("\n"));
        }
    }
    for (role, drop) in rules {
        if let Some(a) = p.pointer_mut(&format!("/policies/{}", escape(role)))
            && let Some(content) = a.get("content").and_then(Value::as_str)
            && let Ok(Value::Object(mut doc)) = releaseops_format::yaml::from_str::<Value>(content)
        {
            for (key, v) in doc.iter_mut() {
                if let Value::Array(items) = v {
                    let mut i = 0;
                    items.retain(|_| {
                        let keep = !drop.contains(&(key.as_str(), i));
                        i += 1;
                        keep
                    });
                }
            }
            a["content"] = Value::String(Node::from_json(&Value::Object(doc)).to_yaml());
        }
    }
    p
}

fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// What a trace a model target cannot replay needs instead.
const THROUGH_THE_AGENT: &str = "run the ablation through the agent itself: --target-from a suite whose target is its command or http service";

/// The most calls one ablation makes.
pub const MAX_BUDGET: usize = 100_000;
/// The most runs of each variant.
pub const MAX_REPEATS: u32 = 100;
/// The most calls at once.
pub const MAX_CONCURRENCY: usize = 1_024;

/// Reads the bundle, the target and the trace's input, and plans the calls.
pub fn prepare(ctx: &Ctx<'_>, req: &AblationRequest) -> Result<Prepared> {
    let store = ctx.store;
    let Some(input) = req.trace.input.as_deref().filter(|i| !i.trim().is_empty()) else {
        return Err(CoreError::invalid(
            format!(
                "trace {} has no recorded input to run again",
                req.trace.trace_id
            ),
            "ablation replays the input production saw: capture content (traces.capture_content: true), or give a trace file with `input`",
        ));
    };
    let manifest = store.load_bundle(&req.id, &req.version)?;
    // The texts are checked against their hashes before they are sent anywhere.
    crate::attribution::bundle_text(store, &req.id, &req.version)?;
    let payload = crate::evals::agent_payload(store, &manifest);
    let (spec, limiters, roles, vars) = match &req.target_from {
        Some(s) => {
            let suite = crate::evals::load_suite(store, s)?;
            (
                suite.target.clone(),
                crate::evals::limiters_of(&suite),
                suite.target_artifacts.clone(),
                suite.vars.clone(),
            )
        }
        None => (None, Vec::new(), Vec::new(), Map::new()),
    };
    let spec = spec.unwrap_or(TargetSpec::Model {
        provider: None,
        model: None,
        base_url: None,
        timeout_ms: releaseops_eval::suite::DEFAULT_TIMEOUT_MS,
        tools: Vec::new(),
    });
    let target = crate::evals::build_target(
        store,
        &spec,
        &manifest,
        &payload,
        !req.no_cache,
        &limiters,
        &roles,
    )?;
    // The model is offered the bundle's tools and those the trace called
    // (as the trace called them), so the recorded action can happen again.
    let mut target = target;
    if let Target::Model(m) = &mut target {
        // A model target answers one turn and is sent no tool's result:
        // a trace whose action came after other calls cannot be replayed
        // on it.
        let shown = |s: &str| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(80)
                .collect::<String>()
        };
        if !one_turn(&req.trace.tool_calls) {
            return Err(CoreError::invalid(
                format!(
                    "trace {} made {} tool calls, and a model target answers one turn (it gets no tool's result), so it cannot reach the action ({})",
                    shown(&req.trace.trace_id),
                    req.trace.tool_calls.len(),
                    req.trace
                        .tool_calls
                        .last()
                        .map_or(String::new(), |c| shown(&c.name))
                ),
                THROUGH_THE_AGENT,
            ));
        }
        if let Some(c) = req
            .trace
            .tool_calls
            .iter()
            .find(|c| !ToolDef::valid_name(&c.name))
        {
            return Err(CoreError::invalid(
                format!(
                    "trace {} called the tool '{}', a name no model provider takes, so a model target cannot call it",
                    shown(&req.trace.trace_id),
                    shown(&c.name)
                ),
                THROUGH_THE_AGENT,
            ));
        }
        // The suite's own target.tools first, then the trace's calls as
        // recorded, then the bundle's policies.
        let mut tools = m.tools.clone();
        for t in crate::replay::recorded_tools([&req.trace]) {
            if !tools.iter().any(|o| o.name == t.name) {
                tools.push(t);
            }
        }
        m.tools = crate::evals::offered_tools(&tools, &payload);
    }
    let policies_too = !matches!(target, Target::Model(_));
    // A model target is sent only the prompts `target_artifacts` names: a
    // line it is never sent has no effect to measure.
    let mut units = units(&payload, policies_too);
    if matches!(target, Target::Model(_)) && !roles.is_empty() {
        units.retain(|u| u.artifact_type != ArtifactType::Prompt || roles.contains(&u.role));
    }
    if units.is_empty() {
        return Err(CoreError::invalid(
            format!("{}@{} has no prompt line to take out", req.id, req.version),
            "ablation needs a bundle with prompt text",
        ));
    }
    if !(1..=MAX_REPEATS).contains(&req.repeats) {
        return Err(CoreError::invalid(
            format!("--repeats {} is out of range", req.repeats),
            format!("give 1 to {MAX_REPEATS} runs per variant"),
        ));
    }
    let repeats = req.repeats as usize;
    let references = repeats.max(2);
    let loo = references + repeats * units.len();
    // The whole bundle twice at least (its noise), and one variant beside
    // it: a budget below that measures nothing, and is refused rather
    // than quietly raised.
    let least = references + repeats;
    if req.budget < least || req.budget > MAX_BUDGET {
        return Err(CoreError::invalid(
            format!("--budget {} is out of range", req.budget),
            format!(
                "give {least} to {MAX_BUDGET} calls (with --repeats {repeats}, the whole bundle runs {references} times, and each variant {repeats} times when left out one at a time)"
            ),
        ));
    }
    if !(1..=MAX_CONCURRENCY).contains(&req.concurrency) {
        return Err(CoreError::invalid(
            format!("--concurrency {} is out of range", req.concurrency),
            format!("give 1 to {MAX_CONCURRENCY} calls at once"),
        ));
    }
    let budget = req.budget;
    let secrets = crate::evals::secrets_of(&spec, &target);
    let (method, calls) = if loo <= budget {
        (Method::LeaveOneOut, loo)
    } else {
        (Method::RandomSubsets, budget)
    };
    Ok(Prepared {
        plan: Plan {
            method,
            units: units.len(),
            calls,
            references,
            policy_rules_ablated: policies_too,
        },
        units,
        target,
        payload,
        // The suite's variables, and the recorded message over them.
        input: {
            let mut m = vars;
            m.insert("message".into(), Value::String(input.to_string()));
            m
        },
        trace_id: req.trace.trace_id.clone(),
        roles,
        recorded: Some(AgentOutput {
            output: req.trace.output.clone().unwrap_or_default(),
            tool_calls: req
                .trace
                .tool_calls
                .iter()
                .map(|c| releaseops_eval::output::ToolCall {
                    name: c.name.clone(),
                    arguments: Value::Object(c.arguments.clone()),
                })
                .collect(),
            ..AgentOutput::default()
        })
        .filter(|r| !r.tool_calls.is_empty() || !r.output.trim().is_empty()),
        secrets,
    })
}

/// The target for one variant: a model target gets the variant's prompts,
/// the same roles as the whole bundle's run (`target_artifacts`, the
/// `user` prompt as the user's turn).
fn target_for(base: &Target, payload: &Value, roles: &[String]) -> Target {
    match base {
        Target::Model(m) => {
            let mut m = m.clone();
            if let Some(prompts) = payload.get("prompts").and_then(Value::as_object) {
                let text = |a: &Value| a.get("content").and_then(Value::as_str).map(template_text);
                m.system_templates = crate::evals::sent_prompts(prompts, roles)
                    .into_iter()
                    .filter(|(r, _)| r.as_str() != "user")
                    .filter_map(|(_, a)| text(a))
                    .collect();
                if m.user_template.is_some() {
                    m.user_template = prompts.get("user").and_then(text);
                }
            }
            Target::Model(m)
        }
        other => other.clone(),
    }
}

fn action_of(out: &AgentOutput) -> String {
    out.tool_calls
        .last()
        .map_or_else(|| "reply".to_string(), |c| format!("tool {}", c.name))
}

/// Whether a run's action differs from the reference's.
fn changed(out: &AgentOutput, reference: &AgentOutput) -> bool {
    let (a, b) = (action_of(out), action_of(reference));
    a != b
        || (a == "reply"
            && releaseops_eval::judge::similarity(&out.output, &reference.output) < 0.5)
}

/// Runs the plan. What the provider said (an error that echoes the key, a
/// tool name it made up) reaches the report only with the target's secrets
/// taken out and no control characters.
pub fn run(ctx: &Ctx<'_>, req: &AblationRequest, p: Prepared) -> Result<AblationReport> {
    let secrets = p.secrets.clone();
    let clean = |s: &mut String| {
        secrets.redact_string(s);
        if s.chars().any(char::is_control) {
            *s = s.chars().filter(|c| !c.is_control()).collect();
        }
    };
    let mut report = measure(ctx, req, p)?;
    report.reference_action.iter_mut().for_each(&clean);
    report.recorded_action.iter_mut().for_each(&clean);
    report.unclear.iter_mut().for_each(&clean);
    Ok(report)
}

fn measure(ctx: &Ctx<'_>, req: &AblationRequest, p: Prepared) -> Result<AblationReport> {
    let rt = ctx.runtime.and_then(|r| r.handle()).ok_or_else(|| {
        CoreError::refused(
            "no async runtime to run the ablation on",
            "the caller starts one and passes its handle in Ctx::runtime",
        )
    })?;
    let n = p.units.len();
    let repeats = req.repeats.max(1) as usize;
    let references = p.plan.references;
    // Each call: which units it removes.
    let mut masks: Vec<Vec<bool>> = Vec::with_capacity(p.plan.calls);
    for _ in 0..references {
        masks.push(vec![false; n]);
    }
    match p.plan.method {
        Method::LeaveOneOut => {
            for i in 0..n {
                for _ in 0..repeats {
                    let mut m = vec![false; n];
                    m[i] = true;
                    masks.push(m);
                }
            }
        }
        Method::RandomSubsets => {
            let mut x = XorShift::new(req.seed ^ 0x2545_f491_4f6c_dd1d);
            while masks.len() < p.plan.calls {
                masks.push((0..n).map(|_| x.next() & 1 == 1).collect());
            }
        }
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(req.concurrency.max(1)));
    let outputs: Vec<std::result::Result<AgentOutput, String>> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (k, m) in masks.iter().enumerate() {
            let payload = without(&p.payload, &p.units, m);
            let target = target_for(&p.target, &payload, &p.roles);
            let input = p.input.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                // Every run its own call (the cache keys on `repeat`), the
                // whole bundle's too: its noise is the model's, not the
                // cache's; the same plan run again reads the same answers.
                let body = json!({"case_id": format!("ablation-{k}"), "repeat": k, "input": input, "bundle": payload});
                let call = tokio::time::timeout(
                    std::time::Duration::from_millis(releaseops_eval::suite::DEFAULT_TIMEOUT_MS),
                    target.call(&body, &input, RetryPolicy::default()),
                )
                .await
                .unwrap_or_else(|_| Err("timed out".into()));
                (k, call)
            });
        }
        let mut out: Vec<std::result::Result<AgentOutput, String>> = (0..masks.len()).map(|_| Err("not run".into())).collect();
        while let Some(j) = set.join_next().await {
            if let Ok((k, r)) = j {
                out[k] = r;
            }
        }
        out
    });
    let failed_calls = outputs.iter().filter(|o| o.is_err()).count();
    let mut report = AblationReport {
        trace_id: p.trace_id.clone(),
        bundle_id: req.id.clone(),
        bundle_version: req.version.clone(),
        plan: p.plan.clone(),
        reference_action: None,
        recorded_action: p.recorded.as_ref().map(action_of),
        noise_floor: None,
        calls: outputs.len(),
        failed_calls,
        effects: Vec::new(),
        unclear: None,
    };
    let whole: Vec<&AgentOutput> = outputs[..references]
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .collect();
    // The whole bundle's most common action is the reference (the first
    // run of it on a tie): one outlier run does not decide what changed.
    // On a tie, the run that does what production did.
    let agreeing = |a: &AgentOutput| whole.iter().filter(|b| !changed(b, a)).count();
    let as_recorded = |a: &AgentOutput| p.recorded.as_ref().is_some_and(|r| !changed(a, r));
    let mut best: Option<(&AgentOutput, usize, bool)> = None;
    for o in &whole {
        let (n, rec) = (agreeing(o), as_recorded(o));
        if best.is_none_or(|(_, m, r)| (n, rec) > (m, r)) {
            best = Some((o, n, rec));
        }
    }
    let best = best.map(|(o, n, _)| (o, n));
    let Some((reference, agree)) = best else {
        let why = outputs[..references]
            .iter()
            .find_map(|o| o.as_ref().err())
            .cloned()
            .unwrap_or_default();
        report.unclear = Some(format!(
            "the run with the whole bundle failed, so there is nothing to compare with: {why}"
        ));
        return Ok(report);
    };
    report.reference_action = Some(action_of(reference));
    // Of the whole bundle's other runs, the share that acted otherwise.
    let others = whole.len() - 1;
    let noise = (others > 0).then(|| (whole.len() - agree) as f64 / others as f64);
    report.noise_floor = noise;
    if failed_calls * 2 > outputs.len() {
        report.unclear = Some(format!(
            "{failed_calls} of {} calls failed (the provider answered errors or garbage): too few runs to measure effects",
            outputs.len()
        ));
        return Ok(report);
    }
    // (removed mask, changed) of every run that answered, the reference runs included.
    let runs: Vec<(&Vec<bool>, f64)> = masks
        .iter()
        .zip(&outputs)
        .filter_map(|(m, o)| {
            o.as_ref()
                .ok()
                .map(|o| (m, f64::from(u8::from(changed(o, reference)))))
        })
        .collect();
    report.effects = match p.plan.method {
        Method::LeaveOneOut => p
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let mine: Vec<f64> = runs
                    .iter()
                    .filter(|(m, _)| m[i] && m.iter().filter(|x| **x).count() == 1)
                    .map(|(_, y)| *y)
                    .collect();
                let k = mine.iter().filter(|y| **y > 0.5).count() as u64;
                let (low, high) =
                    releaseops_stats::wilson(k, mine.len() as u64, releaseops_stats::Z95);
                UnitEffect {
                    unit: u.clone(),
                    effect: if mine.is_empty() {
                        0.0
                    } else {
                        k as f64 / mine.len() as f64
                    },
                    low,
                    high,
                    runs: mine.len(),
                }
            })
            .collect(),
        Method::RandomSubsets => {
            let x: Vec<Vec<f64>> = runs
                .iter()
                .map(|(m, _)| m.iter().map(|b| f64::from(u8::from(*b))).collect())
                .collect();
            let y: Vec<f64> = runs.iter().map(|(_, y)| *y).collect();
            let beta = lasso(&x, &y, 0.01);
            // A bootstrap over the runs (no further calls) for each coefficient's interval.
            let mut s = XorShift::new(req.seed ^ 0x9e37_79b9_7f4a_7c15);
            let mut boots: Vec<Vec<f64>> = vec![Vec::with_capacity(BOOTSTRAPS); n];
            for _ in 0..BOOTSTRAPS {
                let pick: Vec<usize> = (0..y.len())
                    .map(|_| (s.next() % y.len().max(1) as u64) as usize)
                    .collect();
                let bx: Vec<Vec<f64>> = pick.iter().map(|&i| x[i].clone()).collect();
                let by: Vec<f64> = pick.iter().map(|&i| y[i]).collect();
                for (j, b) in lasso(&bx, &by, 0.01).into_iter().enumerate() {
                    boots[j].push(b);
                }
            }
            p.units
                .iter()
                .enumerate()
                .map(|(j, u)| {
                    let mut b = boots[j].clone();
                    b.sort_by(f64::total_cmp);
                    let q = |f: f64| {
                        b.get(((b.len() as f64 - 1.0) * f).round() as usize)
                            .copied()
                            .unwrap_or(0.0)
                    };
                    UnitEffect {
                        unit: u.clone(),
                        effect: beta[j],
                        // The 95 % interval the report names.
                        low: q(0.025),
                        high: q(0.975),
                        runs: runs.iter().filter(|(m, _)| m[j]).count(),
                    }
                })
                .collect()
        }
    };
    report.effects.sort_by(|a, b| b.effect.total_cmp(&a.effect));
    let floor = noise.unwrap_or(0.0);
    // The first reason that holds, most basic first.
    report.unclear = if let Some(recorded) = p.recorded.as_ref().filter(|r| changed(reference, r)) {
        Some(format!(
            "the whole bundle does not do what production did (production: {}; replayed: {}), so these effects explain another action",
            action_of(recorded),
            action_of(reference)
        ))
    } else if noise.is_none() {
        Some(format!(
            "only one of the whole bundle's {references} runs answered, so how often the action changes by chance alone is unknown: run it again"
        ))
    } else if floor >= 0.5 {
        Some(format!(
            "the whole bundle's action is not stable ({} of its other {others} runs acted otherwise than its most common action): no removal can be told from chance",
            whole.len() - agree
        ))
    } else if report.effects.iter().all(|e| e.effect <= floor) {
        Some(if floor > 0.0 {
            format!(
                "no removal changed the action more often than running the whole bundle again did ({} of its other {others} runs acted otherwise): no single line or rule decides it",
                whole.len() - agree
            )
        } else {
            "no removal changed the action: no single line or rule decides it (it may rest on several at once, or on the model alone)".into()
        })
    } else {
        None
    };
    Ok(report)
}

/// Whether one turn of a model can make a trace's calls: one call, or the
/// same call again (a retry).
pub(crate) fn one_turn(calls: &[releaseops_attribution::Call]) -> bool {
    calls.windows(2).all(|w| w[0].name == w[1].name)
}

/// Resamples of the runs behind each random-subsets interval.
const BOOTSTRAPS: usize = 200;

/// A seeded xorshift64 stream: the same seed, the same stream.
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A state of 0 would stay 0 (nothing removed, every pick the first
    /// run): that seed starts elsewhere.
    pub(crate) fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x853c_49e6_748f_ea9b
        } else {
            seed
        })
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Lasso by coordinate descent: `y ~ b0 + X b`, penalty `lambda * |b|_1`
/// on the mean squared error.
fn lasso(x: &[Vec<f64>], y: &[f64], lambda: f64) -> Vec<f64> {
    let m = y.len();
    let n = x.first().map_or(0, Vec::len);
    if m == 0 || n == 0 {
        return vec![0.0; n];
    }
    let mean_y = y.iter().sum::<f64>() / m as f64;
    let means: Vec<f64> = (0..n)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / m as f64)
        .collect();
    let xc: Vec<Vec<f64>> = x
        .iter()
        .map(|r| r.iter().zip(&means).map(|(v, mu)| v - mu).collect())
        .collect();
    let yc: Vec<f64> = y.iter().map(|v| v - mean_y).collect();
    let norms: Vec<f64> = (0..n)
        .map(|j| xc.iter().map(|r| r[j] * r[j]).sum::<f64>() / m as f64)
        .collect();
    let mut b = vec![0.0; n];
    let mut resid = yc.clone();
    for _ in 0..200 {
        let mut moved = 0.0f64;
        for j in 0..n {
            if norms[j] <= 1e-12 {
                continue;
            }
            let rho: f64 = (0..m)
                .map(|i| xc[i][j] * (resid[i] + xc[i][j] * b[j]))
                .sum::<f64>()
                / m as f64;
            let nb = if rho > lambda {
                (rho - lambda) / norms[j]
            } else if rho < -lambda {
                (rho + lambda) / norms[j]
            } else {
                0.0
            };
            if nb != b[j] {
                for (i, r) in resid.iter_mut().enumerate() {
                    *r -= xc[i][j] * (nb - b[j]);
                }
                moved = moved.max((nb - b[j]).abs());
                b[j] = nb;
            }
        }
        if moved < 1e-6 {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_sends_the_same_roles_as_the_whole_bundle_and_the_user_prompt_as_the_user() {
        let payload = json!({"prompts": {
            "system": {"content": "Be kind.\nRefund up to 100 dollars."},
            "notes": {"content": "Internal note."},
            "user": {"content": "Customer says: {{ message }}\nAnswer briefly."},
        }});
        let base = Target::Model(Box::new(releaseops_eval::target::ModelTarget {
            client: releaseops_eval::providers::http_client().expect("client"),
            provider: releaseops_eval::providers::Provider::OpenAiCompatible,
            base_url: "http://127.0.0.1:9".into(),
            api_key: None,
            model: "m".into(),
            temperature: None,
            max_tokens: 8,
            parameters: Map::new(),
            system_templates: vec!["Be kind.\nRefund up to 100 dollars.".into()],
            user_template: Some("Customer says: {{ message }}\nAnswer briefly.".into()),
            tools: Vec::new(),
            cache: None,
            limiter: None,
        }));
        let roles = vec!["system".to_string(), "user".to_string()];
        let all = units(&payload, false);
        // The user's second line taken out: the user's turn loses it.
        let removed: Vec<bool> = all
            .iter()
            .map(|u| u.role == "user" && u.location == "line 2")
            .collect();
        let Target::Model(m) = target_for(&base, &without(&payload, &all, &removed), &roles) else {
            panic!("a model target");
        };
        assert_eq!(
            m.user_template.as_deref(),
            Some("Customer says: {{ message }}")
        );
        // `notes` is not among the roles sent: it stays out of every variant.
        assert_eq!(m.system_templates, ["Be kind.\nRefund up to 100 dollars."]);
    }

    #[test]
    fn the_reference_sees_a_policy_as_every_variant_does_but_for_the_rule_removed() {
        let payload = json!({"policies": {"tools": {"content": "# Refund rules, kept by hand\ntools:\n- name: issue_refund\n  allowed: true\n- name: delete_account\n  allowed: false\n"}}});
        let units = units(&payload, true);
        assert_eq!(units.len(), 2, "{units:?}");
        let text = |removed: &[bool]| {
            without(&payload, &units, removed)["policies"]["tools"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let (reference, variant) = (text(&[false, false]), text(&[false, true]));
        assert!(!reference.contains("kept by hand"), "{reference}");
        let dropped: Vec<&str> = reference
            .lines()
            .filter(|l| !variant.lines().any(|v| v == *l))
            .collect();
        assert_eq!(
            dropped,
            ["- name: delete_account", "  allowed: false"],
            "{reference}\n---\n{variant}"
        );
    }

    #[test]
    fn lasso_finds_the_one_line_that_matters() {
        // y = removed[2], the others noise-free zeros.
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut s = XorShift::new(7);
        for _ in 0..64 {
            let row: Vec<f64> = (0..10)
                .map(|_| f64::from(u8::from(s.next() & 1 == 1)))
                .collect();
            y.push(row[2]);
            x.push(row);
        }
        let b = lasso(&x, &y, 0.01);
        assert!(b[2] > 0.8, "{b:?}");
        assert!(
            b.iter().enumerate().all(|(j, v)| j == 2 || v.abs() < 0.1),
            "{b:?}"
        );
    }
}
