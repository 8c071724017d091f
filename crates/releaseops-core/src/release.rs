//! Promotion, approval, rejection and rollback. Each is one transaction: the
//! environment pointer, the deployment index, the review file and the history
//! record change together or not at all.

use releaseops_format::config::ProjectConfig;
use releaseops_format::environment::{EnvMetadata, EnvironmentFile};
use releaseops_format::history::{EventKind, Gate, GateResult, GateStatus, Record, state_for_env};
use releaseops_format::names;
use releaseops_format::review::{Approval, Failure, Rejection};
use releaseops_store::view::ChainView;
use releaseops_store::{Store, StoreError, Transaction};
use serde::Serialize;

use crate::facts::{PromotionFacts, Scope, creator_of, verified_manifest};
use crate::gates;
use crate::{CoreError, Ctx, Result, actor_matches};

#[derive(Debug, Clone)]
pub struct PromoteRequest {
    pub id: String,
    pub version: String,
    pub env: String,
    pub reason: Option<String>,
    pub dry_run: bool,
    pub skip_gates: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromoteOutcome {
    pub id: String,
    pub version: String,
    pub env: String,
    pub from_env: Option<String>,
    /// What was live in the target before.
    pub replaces: Option<String>,
    pub state: String,
    pub gates: Vec<GateResult>,
    pub promoted: bool,
    /// The version was live there already: nothing changed, nothing recorded.
    #[serde(default)]
    pub unchanged: bool,
    pub dry_run: bool,
    pub overridden: bool,
    /// Gates that stopped the promotion.
    pub blocked_by: Vec<Gate>,
    pub seq: Option<u64>,
    /// The git commit made, or why it failed (`git_commit`, `git_error`).
    #[serde(flatten)]
    pub git: releaseops_store::GitOutcome,
    /// The decision agent's decision, when the environment asks for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_decision: Option<crate::agent::DecisionRecord>,
}

fn check_env_known(store: &Store, config: &ProjectConfig, env: &str) -> Result<()> {
    names::validate_env_name(env)?;
    if config.position(env).is_none() {
        if store.env_file_exists(env) {
            return Err(CoreError::refused(
                format!(
                    "environment '{env}' is not in the pipeline ({})",
                    config.pipeline.join(" -> ")
                ),
                format!(
                    "place it in the pipeline with `releaseops env create {env} --after <env>`"
                ),
            ));
        }
        return Err(StoreError::EnvNotFound {
            name: env.into(),
            available: store.environments()?,
        }
        .into());
    }
    Ok(())
}

fn touch_env(env: &mut EnvironmentFile, ctx: &Ctx<'_>) {
    let md = env.metadata.get_or_insert_with(EnvMetadata::default);
    md.last_updated = Some(ctx.now_str());
    md.updated_by = Some(ctx.actor.clone());
}

pub fn promote(ctx: &Ctx<'_>, req: &PromoteRequest) -> Result<PromoteOutcome> {
    crate::sync::retrying(ctx.store, || promote_once(ctx, req))
}

fn promote_once(ctx: &Ctx<'_>, req: &PromoteRequest) -> Result<PromoteOutcome> {
    let store = ctx.store;
    ctx.check()?;
    names::validate_bundle_id(&req.id)?;
    names::validate_version(&req.version)?;
    names::validate_env_name(&req.env)?;
    if req.skip_gates && req.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(CoreError::invalid(
            "--skip-gates needs --reason",
            "say why the gates are being bypassed: it is recorded as an override",
        ));
    }
    // Fail fast on an unknown bundle or version, before anything waits.
    store.load_bundle(&req.id, &req.version)?;
    // Before the agent decides, what happened to its earlier decisions.
    if !req.dry_run
        && store
            .load_env(&req.env)
            .ok()
            .and_then(|e| e.promotion_policy)
            .is_some_and(|p| p.requires_agent.is_some())
    {
        crate::agent::settle_now(ctx)?;
    }
    // A dry run reads under the shared lock, so it never sees a change half
    // made (the agent's memory included).
    let _read = if req.dry_run {
        Some(store.read_guard()?)
    } else {
        None
    };
    let tx = if req.dry_run {
        None
    } else {
        Some(store.begin()?)
    };
    let config = tx
        .as_ref()
        .map_or_else(|| store.config().clone(), |t| t.config().clone());
    check_env_known(store, &config, &req.env)?;
    // Everything the gates read comes from the verified history; the files
    // it is built on must agree with it, and the bundle must verify.
    let view = match &tx {
        Some(t) => t.view(),
        None => std::sync::Arc::new(store.chain_view()?),
    };
    let facts = PromotionFacts::gather(
        store,
        view,
        config,
        (&req.id, &req.version, &req.env),
        ctx.now,
        Scope::Promotion,
    )?;
    let config = &facts.config;
    if facts.live.as_deref() == Some(req.version.as_str()) {
        // Asking again for what is already so is not an error (a re-run CI
        // job): nothing changes and nothing is recorded.
        let is_last = config.pipeline.last().map(String::as_str) == Some(req.env.as_str());
        return Ok(PromoteOutcome {
            id: req.id.clone(),
            version: req.version.clone(),
            env: req.env.clone(),
            from_env: None,
            replaces: None,
            state: state_for_env(&req.env, is_last).to_string(),
            gates: Vec::new(),
            promoted: false,
            unchanged: true,
            dry_run: req.dry_run,
            overridden: false,
            blocked_by: Vec::new(),
            seq: None,
            git: Default::default(),
            agent_decision: None,
        });
    }
    let mut gate_results = gates::evaluate(&facts.gates());
    // The decision agent, when the environment asks for it: decided under
    // the same lock, and its record kept whatever the gates say.
    let mut tx = tx;
    let mut staged = None;
    let mut agent_decision = None;
    if let Some(p) = facts.policy()
        && let Some(mode) = p.requires_agent
    {
        let context = crate::agent::promotion_context(store, &facts)?;
        let request = crate::agent::DecideRequest {
            context,
            bundle: Some(crate::agent::BundleRef {
                id: req.id.clone(),
                version: req.version.clone(),
            }),
            gate: Some(mode),
            red_team_blocks: p.agent_red_team_blocks,
        };
        let record = match tx.as_mut() {
            Some(tx) => {
                let s = crate::agent::stage(ctx, tx, request)?;
                let r = s.record.clone();
                staged = Some(s);
                r
            }
            None => {
                let memory = crate::agent::load_memory(store, &crate::agent::head(store)?)?;
                let learned = crate::agent::heuristics(store)?;
                let model = crate::agent::model_for(store, &memory)?;
                let costs = crate::agent::costs(store);
                crate::agent::assess_with(
                    crate::agent::Knowledge {
                        similar: crate::agent::recall(&memory, &request.context),
                        heuristics: &learned,
                        model: Some(releaseops_agent::decide::Learned {
                            model: &model,
                            costs: &costs,
                        }),
                        llm: None,
                    },
                    request,
                    "dry-run".into(),
                    ctx.now_str(),
                    ctx.actor.clone(),
                )
            }
        };
        let tz = config
            .agent
            .as_ref()
            .map(|a| a.time_zone())
            .transpose()?
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let verdict = crate::agent::gate(mode, &record, ctx.now, &tz);
        let key = format!("{}@{} -> {}", req.id, req.version, req.env);
        gate_results.push(crate::sync::agent_gate(&key, verdict));
        agent_decision = Some(record);
    }
    let not_passed: Vec<&GateResult> = gate_results
        .iter()
        .filter(|g| g.status != GateStatus::Passed)
        .collect();
    let blocked_by: Vec<Gate> = not_passed
        .iter()
        .filter(|g| !req.skip_gates || !g.gate.overridable())
        .map(|g| g.gate)
        .collect();
    let is_last = config.pipeline.last().is_some_and(|l| *l == req.env);
    let mut out = PromoteOutcome {
        id: req.id.clone(),
        version: req.version.clone(),
        env: req.env.clone(),
        from_env: facts
            .upstream
            .clone()
            .filter(|_| facts.upstream_live_since.is_some()),
        replaces: facts.env_file.bundle_mappings.get(&req.id).cloned(),
        state: state_for_env(&req.env, is_last).to_string(),
        gates: gate_results.clone(),
        promoted: false,
        unchanged: false,
        dry_run: req.dry_run,
        overridden: req.skip_gates && !not_passed.is_empty(),
        blocked_by,
        seq: None,
        git: Default::default(),
        agent_decision,
    };
    let Some(mut tx) = tx else { return Ok(out) };
    if !out.blocked_by.is_empty() {
        // The promotion does not happen; the agent's decision is still kept.
        if let Some(s) = staged {
            let done = tx.commit(
                &format!(
                    "releaseops: agent {} {} for {} {} -> {} (promotion blocked)",
                    s.record.decision_id, s.record.decision, req.id, req.version, req.env
                ),
                ctx.author().as_ref(),
            )?;
            out.git = done.git;
            s.after_commit(store);
        }
        return Ok(out);
    }
    releaseops_store::import_legacy_history(&mut tx)?;
    let mut env = facts.env_file.clone();
    env.bundle_mappings
        .insert(req.id.clone(), req.version.clone());
    touch_env(&mut env, ctx);
    tx.write(Store::env_rel_path(&req.env), env.to_yaml());

    let mut rec = ctx.record(EventKind::Promote);
    rec.bundle_id = Some(req.id.clone());
    rec.version = Some(req.version.clone());
    rec.bundle_hash = Some(facts.hash.clone());
    rec.env = Some(req.env.clone());
    rec.from_env = out.from_env.clone();
    rec.from_version = out.replaces.clone();
    rec.state = Some(out.state.clone());
    rec.reason = req.reason.clone();
    rec.gates = gate_results;
    rec.overridden = req.skip_gates;
    let rec = append_deployment(&mut tx, &facts.view, &req.env, rec)?;
    let verb = if req.skip_gates {
        "promote (gates overridden)"
    } else {
        "promote"
    };
    let msg = format!(
        "releaseops: {verb} {} {} -> {}",
        req.id, req.version, req.env
    );
    let done = tx.commit(
        &with_reason(&msg, req.reason.as_deref(), ctx),
        ctx.author().as_ref(),
    )?;
    if let Some(s) = staged {
        s.after_commit(store);
    }
    out.promoted = true;
    out.seq = Some(rec.seq);
    out.git = done.git;
    Ok(out)
}

fn with_reason(subject: &str, reason: Option<&str>, ctx: &Ctx<'_>) -> String {
    let mut m = subject.to_string();
    m.push_str("\n\n");
    if let Some(r) = reason {
        m.push_str(&format!("Reason: {r}\n"));
    }
    m.push_str(&format!("Actor: {}\n", ctx.actor));
    m
}

/// Appends a deployment record and rewrites the environment's deployment
/// index from the history's stack (never from the file, which may have been
/// edited).
fn append_deployment(
    tx: &mut Transaction<'_>,
    view: &ChainView,
    env: &str,
    rec: Record,
) -> Result<Record> {
    let bundle = rec.bundle_id.clone().unwrap_or_default();
    let mut stack = view.state().deployment_stack(env, &bundle);
    let rec = tx.append(rec)?;
    stack.apply(&rec);
    tx.write(Store::deployment_rel_path(env, &bundle), stack.to_yaml());
    Ok(rec)
}

// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct ReviewOutcome {
    pub id: String,
    pub version: String,
    pub env: Option<String>,
    pub actor: String,
    pub seq: u64,
    /// Notes worth showing (e.g. the environment does not require approval).
    pub notes: Vec<String>,
    /// The git commit made, or why it failed (`git_commit`, `git_error`).
    #[serde(flatten)]
    pub git: releaseops_store::GitOutcome,
}

/// Records `ctx.actor`'s approval of `id@version` for `env_name`; with
/// `sign_with` (an SSH key), signed with it, after checking the signature
/// verifies against `.releaseops/allowed_signers` for the approver's email.
pub fn approve(
    ctx: &Ctx<'_>,
    id: &str,
    version: &str,
    env_name: &str,
    comment: Option<String>,
    sign_with: Option<&std::path::Path>,
) -> Result<ReviewOutcome> {
    crate::sync::retrying(ctx.store, || {
        approve_once(ctx, id, version, env_name, comment.clone(), sign_with)
    })
}

fn approve_once(
    ctx: &Ctx<'_>,
    id: &str,
    version: &str,
    env_name: &str,
    comment: Option<String>,
    sign_with: Option<&std::path::Path>,
) -> Result<ReviewOutcome> {
    let store = ctx.store;
    ctx.check()?;
    names::validate_bundle_id(id)?;
    names::validate_version(version)?;
    names::validate_env_name(env_name)?;
    if crate::Identity::parse(&ctx.actor).email.is_empty() {
        return Err(CoreError::refused(
            format!(
                "'{}' has no email, so approvals by it cannot be told apart from others",
                ctx.actor
            ),
            "approve as `Name <email>`: set git's user.email, or RELEASEOPS_ACTOR / --actor",
        ));
    }
    let mut tx = store.begin()?;
    let view = tx.view();
    let manifest = verified_manifest(store, &view, id, version)?;
    let config = tx.config().clone();
    check_env_known(store, &config, env_name)?;
    let env = store.load_env(env_name)?;
    let creator = creator_of(&view, &manifest);
    if !creator.is_empty() && creator != "cli" && actor_matches(&ctx.actor, &creator, &config) {
        return Err(CoreError::refused(
            format!(
                "{} created {id}@{version}, so their approval cannot count",
                ctx.actor
            ),
            "ask someone else to approve (no self-approval)",
        ));
    }
    let mut notes = Vec::new();
    match &env.promotion_policy {
        Some(p) if p.requires_approval => {
            if !gates::eligible_approver(&ctx.actor, p, &config) {
                let mut who: Vec<String> = p
                    .approval_teams
                    .iter()
                    .map(|t| format!("team {t}"))
                    .collect();
                who.extend(p.approvers.iter().cloned());
                return Err(CoreError::refused(
                    format!("{} may not approve for '{env_name}'", ctx.actor),
                    format!(
                        "approvers for '{env_name}': {}; teams are defined under `teams:` in .releaseops/config.yaml",
                        who.join(", ")
                    ),
                ));
            }
        }
        _ => notes.push(format!(
            "'{env_name}' does not require approval; the approval is recorded anyway"
        )),
    }
    let mut reviews = view.checked_reviews(store, id, version)?;
    if let Some(r) = reviews.rejection_for(env_name, &config.pipeline) {
        return Err(CoreError::refused(
            format!("{id}@{version} was rejected by {}: {}", r.actor, r.reason),
            "a rejected version cannot be approved; create a new version",
        ));
    }
    // Once per person; an unsigned approval may be signed later.
    if reviews.approvals.iter().any(|a| {
        a.env == env_name
            && actor_matches(&a.actor, &ctx.actor, &config)
            && (a.signature.is_some() || sign_with.is_none())
    }) {
        return Err(CoreError::refused(
            format!(
                "{} already approved {id}@{version} for '{env_name}'",
                ctx.actor
            ),
            "each person's approval counts once",
        ));
    }
    let at = ctx.now_str();
    let bundle_hash = manifest
        .bundle_hash
        .clone()
        .unwrap_or_else(|| manifest.compute_hash());
    let signature = match sign_with {
        None => None,
        Some(key) => {
            let payload = releaseops_store::signing::approval_payload(
                id,
                version,
                &bundle_hash,
                env_name,
                &ctx.actor,
                &at,
                comment.as_deref(),
            );
            let sig = releaseops_store::signing::sign(key, &payload)?;
            let principal = crate::Identity::parse_in(&ctx.actor, &config.identity).email;
            releaseops_store::signing::verify(store.dir(), &principal, &payload, &sig).map_err(
                |why| {
                    CoreError::refused(
                        format!("the approval was not recorded: {why}"),
                        format!(
                            "add `{principal} namespaces=\"{}\" <your public key>` to .releaseops/{} (in a reviewed change), or sign with the key listed there",
                            releaseops_store::signing::NAMESPACE,
                            releaseops_store::signing::ALLOWED_SIGNERS
                        ),
                    )
                },
            )?;
            Some(sig)
        }
    };
    releaseops_store::import_legacy_history(&mut tx)?;
    reviews.approvals.push(Approval {
        env: env_name.into(),
        actor: ctx.actor.clone(),
        at: at.clone(),
        comment: comment.clone(),
        signature: signature.clone(),
    });
    tx.write(Store::reviews_rel_path(id, version), reviews.to_yaml());
    let mut rec = ctx.record(EventKind::Approve);
    rec.at = at;
    rec.bundle_id = Some(id.into());
    rec.version = Some(version.into());
    rec.bundle_hash = Some(bundle_hash);
    rec.env = Some(env_name.into());
    rec.reason = comment.clone();
    rec.signature = signature;
    let rec = tx.append(rec)?;
    let msg = format!(
        "releaseops: approve {id} {version} for {env_name}{}",
        if rec.signature.is_some() {
            " (signed)"
        } else {
            ""
        }
    );
    let done = tx.commit(
        &with_reason(&msg, comment.as_deref(), ctx),
        ctx.author().as_ref(),
    )?;
    Ok(ReviewOutcome {
        id: id.into(),
        version: version.into(),
        env: Some(env_name.into()),
        actor: ctx.actor.clone(),
        seq: rec.seq,
        notes,
        git: done.git,
    })
}

pub fn reject(
    ctx: &Ctx<'_>,
    id: &str,
    version: &str,
    env_name: Option<&str>,
    reason: &str,
) -> Result<ReviewOutcome> {
    crate::sync::retrying(ctx.store, || {
        reject_once(ctx, id, version, env_name, reason)
    })
}

fn reject_once(
    ctx: &Ctx<'_>,
    id: &str,
    version: &str,
    env_name: Option<&str>,
    reason: &str,
) -> Result<ReviewOutcome> {
    let store = ctx.store;
    ctx.check()?;
    names::validate_bundle_id(id)?;
    names::validate_version(version)?;
    if reason.trim().is_empty() {
        return Err(CoreError::invalid(
            "--reason is empty",
            "say why the version is rejected; it is recorded",
        ));
    }
    let manifest = store.load_bundle(id, version)?;
    let mut tx = store.begin()?;
    let view = tx.view();
    if let Some(e) = env_name {
        check_env_known(store, &tx.config().clone(), e)?;
    }
    let mut reviews = view.checked_reviews(store, id, version)?;
    if reviews
        .rejections
        .iter()
        .any(|r| r.env.is_none() || r.env.as_deref() == env_name)
    {
        return Err(CoreError::refused(
            format!("{id}@{version} is already rejected"),
            "nothing to do",
        ));
    }
    let mut notes = Vec::new();
    for e in store.environments()? {
        if env_name.is_none_or(|n| n == e)
            && view.state().live(&e, id).map(|d| d.version.as_str()) == Some(version)
        {
            notes.push(format!("{id}@{version} is still live in '{e}'; roll it back with `releaseops rollback {e} {id}`"));
        }
    }
    releaseops_store::import_legacy_history(&mut tx)?;
    reviews.rejections.push(Rejection {
        env: env_name.map(str::to_string),
        actor: ctx.actor.clone(),
        at: ctx.now_str(),
        reason: reason.into(),
    });
    tx.write(Store::reviews_rel_path(id, version), reviews.to_yaml());
    let mut rec = ctx.record(EventKind::Reject);
    rec.bundle_id = Some(id.into());
    rec.version = Some(version.into());
    rec.bundle_hash = manifest.bundle_hash.clone();
    rec.env = env_name.map(str::to_string);
    rec.reason = Some(reason.into());
    let rec = tx.append(rec)?;
    let msg = format!(
        "releaseops: reject {id} {version}{}",
        env_name.map(|e| format!(" for {e}")).unwrap_or_default()
    );
    let done = tx.commit(&with_reason(&msg, Some(reason), ctx), ctx.author().as_ref())?;
    Ok(ReviewOutcome {
        id: id.into(),
        version: version.into(),
        env: env_name.map(str::to_string),
        actor: ctx.actor.clone(),
        seq: rec.seq,
        notes,
        git: done.git,
    })
}

// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct RollbackRequest {
    pub env: String,
    pub id: String,
    pub steps: Option<u32>,
    pub to: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackOutcome {
    pub id: String,
    pub env: String,
    pub from: String,
    pub to: String,
    pub seq: u64,
    /// The git commit made, or why it failed (`git_commit`, `git_error`).
    #[serde(flatten)]
    pub git: releaseops_store::GitOutcome,
    /// The agent decision that let the rolled-back version in, when it went
    /// live within the watch window: recorded as `rolled_back`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_outcome: Option<String>,
}

/// Rolls back to a version that was really live in the environment before the
/// current one, walking the deployment stack (earlier rollbacks included).
/// No gates: this is the emergency exit. The version rolled back from is
/// recorded as a failed release.
pub fn rollback(ctx: &Ctx<'_>, req: &RollbackRequest) -> Result<RollbackOutcome> {
    crate::sync::retrying(ctx.store, || rollback_once(ctx, req))
}

fn rollback_once(ctx: &Ctx<'_>, req: &RollbackRequest) -> Result<RollbackOutcome> {
    let store = ctx.store;
    ctx.check()?;
    names::validate_bundle_id(&req.id)?;
    names::validate_env_name(&req.env)?;
    if req.steps.is_some() && req.to.is_some() {
        return Err(CoreError::invalid(
            "give --steps or --to, not both",
            "--steps N goes N versions back; --to VERSION names the target",
        ));
    }
    if req.steps == Some(0) {
        return Err(CoreError::invalid(
            "--steps must be at least 1",
            "--steps 1 is the version before the current one",
        ));
    }
    let mut tx = store.begin()?;
    let view = tx.view();
    let config = tx.config().clone();
    // The pointer and the stack come from the history; the files must agree,
    // or a hand edit would be laundered into the history by this rollback.
    let mut env = view.checked_env(store, &req.env)?;
    let stack = view.checked_stack(store, &req.env, &req.id)?;
    let current = stack.last().map(|d| d.version.clone()).ok_or_else(|| {
        CoreError::refused(
            format!("'{}' is not deployed in '{}'", req.id, req.env),
            "`releaseops env list` shows what runs where",
        )
    })?;
    // Versions live before the current one, nearest first, each once.
    let mut candidates: Vec<String> = Vec::new();
    let below = if stack.last().is_some_and(|d| d.version == current) {
        &stack[..stack.len() - 1]
    } else {
        &stack[..]
    };
    for d in below.iter().rev() {
        if d.version != current && !candidates.contains(&d.version) {
            candidates.push(d.version.clone());
        }
    }
    let rejected = |v: &str| {
        view.state()
            .reviews(&req.id, v)
            .rejection_for(&req.env, &config.pipeline)
            .is_some()
    };
    let target = if let Some(to) = &req.to {
        names::validate_version(to)?;
        if *to == current {
            return Err(CoreError::refused(
                format!("{}@{to} is already live in '{}'", req.id, req.env),
                "a rollback to the current version would change nothing",
            ));
        }
        if !candidates.contains(to) {
            let ever = store.history().all()?.iter().any(|r| {
                r.is_deployment()
                    && r.env.as_deref() == Some(&req.env)
                    && r.bundle_id.as_deref() == Some(&req.id)
                    && r.version.as_deref() == Some(to)
            });
            let why = if ever && stack.len() >= releaseops_format::history::STACK_DEPTH {
                format!(
                    "{}@{to} was live in '{}' longer ago than the last {} deployments kept as rollback targets",
                    req.id,
                    req.env,
                    releaseops_format::history::STACK_DEPTH
                )
            } else if ever {
                format!(
                    "{}@{to} was live in '{}' only after versions since rolled back, not before {current}",
                    req.id, req.env
                )
            } else {
                format!("{}@{to} was never live in '{}'", req.id, req.env)
            };
            let hint = if candidates.is_empty() {
                "there is no earlier version to roll back to; promote a version instead".to_string()
            } else {
                format!(
                    "versions you can roll back to: {}; to move forward, promote instead",
                    candidates.join(", ")
                )
            };
            return Err(CoreError::refused(why, hint));
        }
        if rejected(to) {
            return Err(CoreError::refused(
                format!("{}@{to} is rejected", req.id),
                "pick another version, or promote a fixed one",
            ));
        }
        to.clone()
    } else {
        let steps = req.steps.unwrap_or(1) as usize;
        let usable: Vec<&String> = candidates.iter().filter(|v| !rejected(v)).collect();
        match usable.get(steps - 1) {
            Some(v) => (*v).clone(),
            None => {
                return Err(CoreError::refused(
                    format!(
                        "cannot roll back {steps} step(s): '{}' has {} earlier version(s) in '{}' to return to",
                        req.id,
                        usable.len(),
                        req.env
                    ),
                    if usable.is_empty() {
                        "promote a version instead".to_string()
                    } else {
                        format!(
                            "earlier versions: {}",
                            usable
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                ));
            }
        }
    };
    // The emergency exit still only puts verified bytes live.
    view.checked_reviews(store, &req.id, &target)?;
    let manifest = verified_manifest(store, &view, &req.id, &target)?;
    releaseops_store::import_legacy_history(&mut tx)?;
    env.bundle_mappings.insert(req.id.clone(), target.clone());
    touch_env(&mut env, ctx);
    tx.write(Store::env_rel_path(&req.env), env.to_yaml());
    let reason = req
        .reason
        .clone()
        .unwrap_or_else(|| format!("Rolled back from {current}"));
    let mut failed = view.checked_reviews(store, &req.id, &current)?;
    failed.failures.push(Failure {
        env: req.env.clone(),
        actor: ctx.actor.clone(),
        at: ctx.now_str(),
        rolled_back_to: target.clone(),
        reason: Some(reason.clone()),
    });
    tx.write(Store::reviews_rel_path(&req.id, &current), failed.to_yaml());
    let mut rec = ctx.record(EventKind::Rollback);
    rec.bundle_id = Some(req.id.clone());
    rec.version = Some(target.clone());
    rec.bundle_hash = manifest.bundle_hash.clone();
    rec.env = Some(req.env.clone());
    rec.from_version = Some(current.clone());
    rec.state = Some("ROLLED_BACK".into());
    rec.reason = Some(reason.clone());
    // The agent learns from this: the decision that let `current` in fails
    // if the version had been live for less than the watch window.
    let mut agent_outcome = None;
    let mut outcomes = None;
    let watch = config.agent.clone().unwrap_or_default().watch_hours();
    let promoted = store.history().newest(1, |r| {
        r.event == EventKind::Promote
            && r.env.as_deref() == Some(req.env.as_str())
            && r.bundle_id.as_deref() == Some(req.id.as_str())
            && r.version.as_deref() == Some(current.as_str())
    })?;
    // Best effort: the rollback is the emergency exit and never waits on,
    // or fails because of, the agent's memory.
    if let Some(p) = promoted.first()
        && let Some(decision) = crate::agent::decision_of(p)
        && releaseops_format::time::parse(&p.at)
            .is_ok_and(|t| ((ctx.now.as_second() - t.as_second()) as f64) < watch * 3600.0)
        && let Ok(mut o) = crate::agent::Outcomes::open(store)
    {
        let note = format!("rolled back to {target} within {watch:.0}h: {reason}");
        let added = o.add(
            ctx,
            &mut tx,
            &decision,
            releaseops_agent::Outcome::RolledBack,
            Some(note),
            "auto:rollback",
        );
        if matches!(added, Ok(Some(_))) && o.finish(store, &mut tx, false).is_ok() {
            agent_outcome = Some(decision);
            outcomes = Some(o);
        }
    }
    let rec = append_deployment(&mut tx, &view, &req.env, rec)?;
    let msg = format!(
        "releaseops: rollback {} {current} -> {target} in {}",
        req.id, req.env
    );
    let done = tx.commit(
        &with_reason(&msg, Some(&reason), ctx),
        ctx.author().as_ref(),
    )?;
    if let Some(o) = outcomes {
        o.after_commit(store);
    }
    Ok(RollbackOutcome {
        agent_outcome,
        id: req.id.clone(),
        env: req.env.clone(),
        from: current,
        to: target,
        seq: rec.seq,
        git: done.git,
    })
}
