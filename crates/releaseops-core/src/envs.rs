//! Environments: what runs where now, what ran where at any past moment, and
//! creating a new stage in the pipeline.

use jiff::Timestamp;
use releaseops_format::environment::{EnvironmentFile, PromotionPolicy};
use releaseops_format::history::{Deployments, EventKind, Record};
use releaseops_format::{names, time};
use releaseops_store::{Store, StoreError};
use serde::Serialize;

use crate::{CoreError, Ctx, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub bundle_id: String,
    pub version: String,
    /// When it went live, from the history (absent if unknown).
    pub since: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvState {
    pub env: String,
    /// Position in the pipeline (0 = first); absent when not in the pipeline.
    pub stage: Option<usize>,
    pub bundles: Vec<Deployed>,
    /// One-line summary of the promotion policy's gates.
    pub gates: Vec<String>,
    /// Files that disagree with the history (changed outside releaseops).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

pub fn policy_summary(p: Option<&PromotionPolicy>) -> Vec<String> {
    let Some(p) = p else { return Vec::new() };
    let mut g = Vec::new();
    if p.requires_eval {
        g.push(if p.eval_suites.is_empty() {
            "eval".to_string()
        } else {
            format!("eval({})", p.eval_suites.join(","))
        });
    }
    if p.requires_approval {
        let mut who: Vec<String> = p.approval_teams.clone();
        who.extend(p.approvers.iter().cloned());
        let n = p.required_approvals();
        g.push(if who.is_empty() {
            format!("approval x{n}")
        } else {
            format!("approval x{n} ({})", who.join(","))
        });
    }
    if p.soak_hours > 0.0 {
        g.push(format!("soak {}h", p.soak_hours));
    }
    if !p.freeze_windows.is_empty() {
        g.push(format!("freeze x{}", p.freeze_windows.len()));
    }
    if !p.rejected_versions.is_empty() {
        g.push(format!("rejected x{}", p.rejected_versions.len()));
    }
    g
}

/// What runs where now, as the verified history says. An environment file
/// that disagrees is named in that environment's `problems` (the runtime
/// refuses such a pointer; nothing is built on it).
pub fn list(store: &Store) -> Result<Vec<EnvState>> {
    let _read = store.read_guard()?;
    list_in(store, &store.chain_view()?, |_| true)
}

/// As [`list`], on a view the caller read (under its read guard), for the
/// bundles `wanted` keeps only: their deployment stacks alone are read and
/// checked (a page of a store with thousands).
pub fn list_in(
    store: &Store,
    view: &releaseops_store::view::ChainView,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<EnvState>> {
    let mut out = Vec::new();
    for name in store.environments()? {
        let env = store.load_env(&name)?;
        let bundles = view
            .state()
            .live_in(&name)
            .into_iter()
            .filter(|(id, _)| wanted(id))
            .map(|(id, d)| Deployed {
                bundle_id: id.to_string(),
                version: d.version.clone(),
                since: Some(d.since.clone()),
            })
            .collect();
        let mut problems = view.env_problems(&env);
        for id in view
            .state()
            .deployments
            .get(&name)
            .into_iter()
            .flat_map(|b| b.keys())
            .filter(|id| wanted(id))
        {
            if let Some(p) = view.deployment_problem(store, &name, id)? {
                problems.push(p);
            }
        }
        out.push(EnvState {
            stage: store.config().position(&name),
            gates: policy_summary(env.promotion_policy.as_ref()),
            env: name,
            bundles,
            problems,
        });
    }
    Ok(out)
}

/// The version of `id` that `env` runs, as the verified history says
/// (what `ID@ENV` means wherever a version is asked for).
pub fn live_version(store: &Store, env: &str, id: &str) -> Result<String> {
    let _read = store.read_guard()?;
    store.load_env(env)?;
    let view = store.chain_view()?;
    match view.state().live(env, id) {
        Some(d) => Ok(d.version.clone()),
        None => {
            let live: Vec<&str> = view.state().live_in(env).into_keys().collect();
            let hint = if live.is_empty() {
                format!("'{env}' runs nothing yet; name a version instead, e.g. {id}==1.0.0")
            } else {
                format!(
                    "'{env}' runs {}; name a version instead, e.g. {id}==1.0.0",
                    live.join(", ")
                )
            };
            Err(CoreError::refused(
                format!("bundle '{id}' is not live in '{env}'"),
                hint,
            ))
        }
    }
}

/// What ran where at `at`, replayed from the history.
pub fn list_at(store: &Store, at: Timestamp) -> Result<Vec<EnvState>> {
    let _read = store.read_guard()?;
    let mut per_env: indexmap::IndexMap<String, Deployments> = indexmap::IndexMap::new();
    for name in store.environments()? {
        per_env.insert(
            name.clone(),
            Deployments {
                environment: name,
                ..Default::default()
            },
        );
    }
    for r in store.history().all()? {
        if !r.is_deployment() {
            continue;
        }
        // Filter, do not stop: clocks (and simulated clocks) are not ordered.
        let Ok(t) = time::parse(&r.at) else { continue };
        if t > at {
            continue;
        }
        let Some(env) = r.env.clone() else { continue };
        per_env
            .entry(env.clone())
            .or_insert_with(|| Deployments {
                environment: env,
                ..Default::default()
            })
            .apply(&r);
    }
    Ok(per_env
        .into_iter()
        .map(|(name, d)| EnvState {
            stage: store.config().position(&name),
            gates: Vec::new(),
            problems: Vec::new(),
            bundles: d
                .bundles
                .iter()
                .filter_map(|(id, stack)| {
                    stack.last().map(|top| Deployed {
                        bundle_id: id.clone(),
                        version: top.version.clone(),
                        since: Some(top.since.clone()),
                    })
                })
                .collect(),
            env: name,
        })
        .collect())
}

#[derive(Debug, Clone)]
pub struct CreateEnv {
    pub name: String,
    pub after: Option<String>,
    pub before: Option<String>,
    pub policy: Option<PromotionPolicy>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvCreated {
    pub env: String,
    pub pipeline: Vec<String>,
    pub seq: u64,
    /// The git commit made, or why it failed (`git_commit`, `git_error`).
    #[serde(flatten)]
    pub git: releaseops_store::GitOutcome,
}

/// Adds an environment (or adopts an existing environment file) and places it
/// in the pipeline.
pub fn create(ctx: &Ctx<'_>, req: &CreateEnv) -> Result<EnvCreated> {
    crate::sync::retrying(ctx.store, || create_once(ctx, req))
}

fn create_once(ctx: &Ctx<'_>, req: &CreateEnv) -> Result<EnvCreated> {
    let store = ctx.store;
    names::validate_new_env_name(&req.name)?;
    let mut tx = store.begin()?;
    let mut config = tx.config().clone();
    if config.position(&req.name).is_some() {
        return Err(StoreError::EnvExists {
            name: req.name.clone(),
        }
        .into());
    }
    // `prod` and `PROD` are one file on macOS and Windows.
    if let Some(other) = store
        .environments()?
        .into_iter()
        .find(|e| e != &req.name && e.eq_ignore_ascii_case(&req.name))
    {
        return Err(CoreError::refused(
            format!(
                "environment '{}' differs from the existing '{other}' only by case",
                req.name
            ),
            format!("use '{other}', or a name that differs by more than case"),
        ));
    }
    let pos = match (&req.after, &req.before) {
        (Some(_), Some(_)) => {
            return Err(CoreError::invalid(
                "give --after or --before, not both",
                "e.g. --after staging",
            ));
        }
        (Some(a), None) => config.position(a).map(|i| i + 1),
        (None, Some(b)) => config.position(b),
        (None, None) => Some(config.pipeline.len()),
    };
    let Some(pos) = pos else {
        let anchor = req.after.clone().or(req.before.clone()).unwrap_or_default();
        return Err(CoreError::invalid(
            format!(
                "'{anchor}' is not in the pipeline ({})",
                config.pipeline.join(" -> ")
            ),
            "--after/--before take an environment already in the pipeline",
        ));
    };
    config.pipeline.insert(pos, req.name.clone());
    releaseops_store::import_legacy_history(&mut tx)?;
    let mut env = if store.env_file_exists(&req.name) {
        store.load_env(&req.name)?
    } else {
        EnvironmentFile::new(&req.name)
    };
    if req.policy.is_some() {
        env.promotion_policy = req.policy.clone();
    }
    tx.write(Store::env_rel_path(&req.name), env.to_yaml());
    tx.write("config.yaml", config.to_yaml());
    let mut rec = ctx.record(EventKind::EnvCreate);
    rec.env = Some(req.name.clone());
    rec.reason = Some(format!("pipeline: {}", config.pipeline.join(" -> ")));
    let rec = tx.append(rec)?;
    let done = tx.commit(
        &format!("releaseops: create environment {}", req.name),
        ctx.author().as_ref(),
    )?;
    Ok(EnvCreated {
        env: req.name.clone(),
        pipeline: config.pipeline,
        seq: rec.seq,
        git: done.git,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicySet {
    pub env: String,
    /// `KEY: old -> new` for each key that changed.
    pub changes: Vec<String>,
    /// The promotion policy's gates now.
    pub gates: Vec<String>,
    /// Absent when nothing changed (nothing is recorded then).
    pub seq: Option<u64>,
    /// The git commit made, or why it failed (`git_commit`, `git_error`).
    #[serde(flatten)]
    pub git: releaseops_store::GitOutcome,
}

/// Sets keys of an environment's `promotion_policy`: each `(KEY, VALUE)`
/// is a YAML value (`true`, `24`, `[safety-team]`, `{...}`; empty removes
/// the key). The result is read back by the same strict parser as the
/// file, so a misspelt key or a wrong type is an error naming it, and the
/// change is recorded in the history.
pub fn set_policy(ctx: &Ctx<'_>, env_name: &str, sets: &[(String, String)]) -> Result<PolicySet> {
    crate::sync::retrying(ctx.store, || set_policy_once(ctx, env_name, sets))
}

fn set_policy_once(ctx: &Ctx<'_>, env_name: &str, sets: &[(String, String)]) -> Result<PolicySet> {
    let store = ctx.store;
    ctx.check()?;
    names::validate_env_name(env_name)?;
    if sets.is_empty() {
        return Err(CoreError::invalid(
            "nothing to set",
            "give KEY=VALUE, e.g. releaseops env set prod soak_hours=24",
        ));
    }
    let mut tx = store.begin()?;
    releaseops_store::import_legacy_history(&mut tx)?;
    let env = tx.view().checked_env(store, env_name)?;
    let doc: serde_json::Value =
        releaseops_format::yaml::from_str(&env.to_yaml()).map_err(CoreError::from)?;
    let mut doc = match doc {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let mut policy = match doc.remove("promotion_policy") {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let mut changes = Vec::new();
    for (key, text) in sets {
        let key = key.trim();
        let old = policy.get(key).map(|v| v.to_string());
        if text.trim().is_empty() {
            policy.remove(key);
        } else {
            let value: serde_json::Value = releaseops_format::yaml::from_str(text).map_err(|e| {
                CoreError::invalid(
                    format!("{key}={text}: {e}"),
                    "write the value as YAML: true, 24, 0.95, [a, b], {name: x}; quote text that looks like something else",
                )
            })?;
            // A number JSON cannot hold (.inf, .nan, 1e999) reads as null:
            // refused, never a gate quietly turned off.
            if contains_null(&value) && !text_says_null(text) {
                return Err(CoreError::invalid(
                    format!("{key}={text}: not a finite value"),
                    "give a finite number, e.g. soak_hours=24",
                ));
            }
            policy.insert(key.to_string(), value);
        }
        let new = policy.get(key).map(|v| v.to_string());
        if old != new {
            changes.push(format!(
                "{key}: {} -> {}",
                old.as_deref().unwrap_or("(unset)"),
                new.as_deref().unwrap_or("(unset)")
            ));
        }
    }
    if !policy.is_empty() {
        doc.insert("promotion_policy".into(), serde_json::Value::Object(policy));
    }
    let text = releaseops_format::yaml::Node::from_json(&serde_json::Value::Object(doc)).to_yaml();
    let updated = EnvironmentFile::parse(text.as_bytes()).map_err(|e| {
        CoreError::invalid(
            format!("environments/{env_name}.yaml would not be valid: {e}"),
            "nothing was changed; `releaseops env get ENV` shows the policy, and the README's gate table lists its keys",
        )
    })?;
    let gates = policy_summary(updated.promotion_policy.as_ref());
    if changes.is_empty() {
        return Ok(PolicySet {
            env: env_name.to_string(),
            changes,
            gates,
            seq: None,
            git: Default::default(),
        });
    }
    tx.write(Store::env_rel_path(env_name), updated.to_yaml());
    let mut rec = ctx.record(EventKind::EnvPolicy);
    rec.env = Some(env_name.to_string());
    let mut reason = changes.join("; ");
    if reason.len() > 2000 {
        // The history's reason has a bound; the file holds the whole value.
        let cut = (0..=2000)
            .rev()
            .find(|i| reason.is_char_boundary(*i))
            .unwrap_or(0);
        reason.truncate(cut);
        reason.push_str(" …");
    }
    rec.reason = Some(reason);
    let rec = tx.append(rec)?;
    let done = tx.commit(
        &format!("releaseops: set the promotion policy of {env_name}"),
        ctx.author().as_ref(),
    )?;
    Ok(PolicySet {
        env: env_name.to_string(),
        changes,
        gates,
        seq: Some(rec.seq),
        git: done.git,
    })
}

fn contains_null(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.iter().any(contains_null),
        serde_json::Value::Object(m) => m.values().any(contains_null),
        _ => false,
    }
}

/// Whether the YAML text itself writes a null (`null`, `~`, `[null]`).
fn text_says_null(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("null") || t.contains('~')
}

/// Which records `--event` keeps: the words `history` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFilter {
    /// Records of one kind (`promote` keeps every promotion, overrides too).
    Kind(EventKind),
    /// Promotions that bypassed their gates (shown as OVERRIDE).
    Override,
    /// Environments made and their policies changed (shown as ENV).
    Env,
}

impl EventFilter {
    /// The names accepted, as `history` labels its records.
    pub const NAMES: &'static str =
        "promote, override, rollback, approve, reject, create, env or eval";

    /// [`EventFilter::parse`], or an error that names the closest kind.
    pub fn parse_named(s: &str) -> Result<EventFilter> {
        EventFilter::parse(s).ok_or_else(|| {
            let known: Vec<&str> = Self::NAMES
                .split([',', ' '])
                .filter(|w| !w.is_empty() && *w != "or")
                .collect();
            CoreError::invalid(
                format!("unknown event '{s}'"),
                format!("{}use {}", names::did_you_mean(s, &known), Self::NAMES),
            )
        })
    }

    pub fn parse(s: &str) -> Option<EventFilter> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "override" | "overridden" => EventFilter::Override,
            "create" | "bundle" | "bundle_create" => EventFilter::Kind(EventKind::BundleCreate),
            "env" => EventFilter::Env,
            "eval" | "eval_run" => EventFilter::Kind(EventKind::EvalRun),
            other => EventFilter::Kind(EventKind::parse(other)?),
        })
    }

    pub fn matches(self, r: &Record) -> bool {
        match self {
            EventFilter::Kind(k) => r.event == k,
            EventFilter::Override => r.event == EventKind::Promote && r.overridden,
            EventFilter::Env => matches!(r.event, EventKind::EnvCreate | EventKind::EnvPolicy),
        }
    }
}

/// History records, newest first.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub bundle: Option<String>,
    pub env: Option<String>,
    pub event: Option<EventFilter>,
    /// Records by this person (`Name <email>`, an email or a name).
    pub actor: Option<String>,
    /// Records at or after this moment.
    pub since: Option<Timestamp>,
    /// Records before this moment.
    pub until: Option<Timestamp>,
    pub limit: usize,
}

pub fn history(store: &Store, q: &HistoryQuery) -> Result<Vec<Record>> {
    let _read = store.read_guard()?;
    let limit = if q.limit == 0 { usize::MAX } else { q.limit };
    let rules = &store.config().identity;
    let actor = q
        .actor
        .as_deref()
        .map(|a| crate::Identity::parse_in(a, rules));
    Ok(store.history().newest(limit, |r| {
        q.bundle
            .as_ref()
            .is_none_or(|b| r.bundle_id.as_ref() == Some(b))
            && q.env.as_ref().is_none_or(|e| r.env.as_ref() == Some(e))
            && q.event.is_none_or(|ev| ev.matches(r))
            && actor
                .as_ref()
                .is_none_or(|a| a.same_person(&crate::Identity::parse_in(&r.actor, rules)))
            && (q.since.is_none() && q.until.is_none() || {
                let at = time::parse(&r.at).ok();
                q.since.is_none_or(|s| at.is_some_and(|t| t >= s))
                    && q.until.is_none_or(|u| at.is_some_and(|t| t < u))
            })
    })?)
}
