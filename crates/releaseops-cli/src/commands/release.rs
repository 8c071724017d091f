use releaseops_core::release::{self, PromoteOutcome, PromoteRequest, RollbackRequest};

use crate::app::{App, CmdResult};
use crate::cli::{ApproveArgs, PromoteArgs, RejectArgs};
use crate::commands::EXIT_BLOCKED;
use crate::output::{self, BOLD, RED, YELLOW, paint};
use crate::refs;

pub(super) fn promote_cmd(app: &App, a: PromoteArgs) -> CmdResult {
    let args = &a.args;
    // The existing tool's forms: `promote promote ID V ENV` and `promote rollback ENV ID`.
    if let [sub, env, id] = args.as_slice()
        && sub == "rollback"
    {
        return rollback(app, env.clone(), id.clone(), a.steps, a.to, a.reason);
    }
    let words = match args.as_slice() {
        [sub, rest @ ..] if sub == "promote" && rest.len() >= 2 => rest,
        all => all,
    };
    let store = app.store()?;
    let (id, version, env) = refs::bundle_version_env(&store, "promote", words)?;
    // Missing evaluations run first, so a wait is only ever for time.
    if a.run_evals && !a.dry_run {
        let ctx = app.ctx(&store);
        for ran in
            releaseops_core::evals::run_missing(&ctx, &id, &version, &env, app.cancel_on_ctrl_c())?
        {
            let s = &ran.report.summary;
            if !app.global.json {
                anstream::println!(
                    "Ran eval {} on {id} v{version}: {} ({})",
                    ran.report.suite_id,
                    paint(BOLD, s.gate_decision.as_str()),
                    s.reason
                );
            }
        }
    }
    if a.wait
        && !a.dry_run
        && let Some(code) = wait_for_time_gates(app, &store, &id, &version, &env, &a)?
    {
        return Ok(code);
    }
    promote(app, &store, &id, &version, &env, &a)
}

/// `promote --wait`: while only time gates (soak, freeze, the agent's
/// DELAY) block the promotion, sleep until they pass. `Some(code)` when
/// the wait itself ends the command (it would outlast --timeout); `None`
/// to go on and promote (which reports whatever else blocks it).
fn wait_for_time_gates(
    app: &App,
    store: &releaseops_store::Store,
    id: &str,
    version: &str,
    env: &str,
    a: &PromoteArgs,
) -> Result<Option<u8>, crate::app::Failure> {
    if app.simulated_clock {
        return Err(crate::app::Failure::usage(
            "--wait follows the real clock, and RELEASEOPS_NOW holds it still",
            "unset RELEASEOPS_NOW, or promote again with a later RELEASEOPS_NOW",
        ));
    }
    let limit = match &a.timeout {
        None => jiff::SignedDuration::from_hours(1),
        Some(t) => t
            .parse::<jiff::SignedDuration>()
            .ok()
            .filter(|d| !d.is_negative())
            .ok_or_else(|| {
                crate::app::Failure::usage(
                    format!("--timeout '{t}' is not a duration"),
                    "write e.g. 90s, 30m, 2h or 1h30m",
                )
            })?,
    };
    let deadline = jiff::Timestamp::now()
        .checked_add(limit)
        .unwrap_or(jiff::Timestamp::MAX);
    loop {
        let ctx = app.ctx_now(store);
        let dry = release::promote(
            &ctx,
            &PromoteRequest {
                id: id.into(),
                version: version.into(),
                env: env.into(),
                reason: a.reason.clone(),
                dry_run: true,
                skip_gates: a.skip_gates,
            },
        )?;
        if dry.unchanged || dry.blocked_by.is_empty() {
            return Ok(None);
        }
        let Some(at) = releaseops_core::status::time_gates_pass_at(&dry.gates, &dry.blocked_by)
        else {
            return Ok(None);
        };
        if at > deadline {
            if !output::json(app, &dry) {
                print_promotion(&dry);
            }
            output::warn(&format!(
                "{} would pass at {}, after --timeout ({}): nothing was promoted",
                releaseops_format::history::Gate::join(&dry.blocked_by, ", "),
                output::when(&at.to_string()),
                a.timeout.as_deref().unwrap_or("1h")
            ));
            return Ok(Some(EXIT_BLOCKED));
        }
        let left = ctx.now.duration_until(at);
        eprintln!(
            "waiting for {} until {} ({})",
            releaseops_format::history::Gate::join(&dry.blocked_by, ", "),
            output::when(&at.to_string()),
            releaseops_core::gates::human_duration(left)
        );
        // Look again at least every minute: a rejection or a new policy may
        // arrive meanwhile.
        let nap = left
            .clamp(
                jiff::SignedDuration::from_millis(50),
                jiff::SignedDuration::from_secs(60),
            )
            .unsigned_abs();
        std::thread::sleep(nap + std::time::Duration::from_millis(20));
    }
}

fn promote(
    app: &App,
    store: &releaseops_store::Store,
    id: &str,
    version: &str,
    env: &str,
    a: &PromoteArgs,
) -> CmdResult {
    let ctx = if a.wait {
        app.ctx_now(store)
    } else {
        app.ctx(store)
    };
    let req = PromoteRequest {
        id: id.into(),
        version: version.into(),
        env: env.into(),
        reason: a.reason.clone(),
        dry_run: a.dry_run,
        skip_gates: a.skip_gates,
    };
    let span = crate::trace::start("releaseops promote");
    span.bundle(store, id, version, Some(env));
    let out = match release::promote(&ctx, &req) {
        Ok(o) => o,
        Err(e) => {
            span.fail(&e.to_string());
            return Err(e.into());
        }
    };
    span.gates(&out.gates);
    span.attr("releaseops.promotion.promoted", out.promoted);
    span.attr("releaseops.promotion.dry_run", out.dry_run);
    if !out.blocked_by.is_empty() {
        span.attr(
            "releaseops.promotion.blocked_by",
            releaseops_format::history::Gate::join(&out.blocked_by, ","),
        );
        span.fail(&format!(
            "blocked by {}",
            releaseops_format::history::Gate::join(&out.blocked_by, ", ")
        ));
    }
    if let Some(d) = &out.agent_decision {
        span.attr("releaseops.agent.decision", d.decision.to_string());
        span.attr("releaseops.agent.decision_id", d.decision_id.clone());
    }
    drop(span);
    crate::notify::tell(store, releaseops_core::notify::of_promotion(&out, &ctx));
    let code = if out.blocked_by.is_empty() {
        0
    } else {
        EXIT_BLOCKED
    };
    if output::json(app, &out) {
        return Ok(code);
    }
    print_promotion(&out);
    Ok(code)
}

pub(super) fn print_promotion(out: &PromoteOutcome) {
    let target = format!("{} v{} -> {}", out.id, out.version, out.env);
    if out.unchanged {
        anstream::println!(
            "Unchanged: {}@{} is already live in '{}' (nothing recorded)",
            out.id,
            out.version,
            out.env
        );
        return;
    }
    if !out.blocked_by.is_empty() {
        anstream::println!("{}: {}", paint(RED.bold(), "Blocked"), target);
        anstream::println!("{}", output::gate_lines(&out.gates));
        if let Some(d) = &out.agent_decision {
            crate::commands::agent::print_decision(d);
        }
        let pending_only = out
            .gates
            .iter()
            .filter(|g| out.blocked_by.contains(&g.gate))
            .all(|g| g.status == releaseops_format::history::GateStatus::Pending);
        if pending_only {
            anstream::println!(
                "  {}",
                paint(
                    YELLOW,
                    "pending gates can pass later: approve or run the evaluation and promote again; `promote --wait` waits out soak, freeze and the agent's DELAY"
                )
            );
        }
        return;
    }
    if out.dry_run {
        anstream::println!("[DRY RUN] Would promote {target}");
    } else if out.overridden {
        anstream::println!(
            "{} {target}",
            paint(RED.bold(), "Promoted (gates overridden)")
        );
        let bypassed: Vec<&str> = out
            .gates
            .iter()
            .filter(|g| g.status != releaseops_format::history::GateStatus::Passed)
            .map(|g| g.gate.as_str())
            .collect();
        anstream::println!("  Bypassed: {}", bypassed.join(", "));
    } else {
        anstream::println!("Promoted {}", paint(BOLD, &target));
    }
    if let Some(prev) = &out.replaces {
        anstream::println!("  Replaces: {prev}");
    }
    anstream::println!("  State: {}", out.state);
    anstream::println!("{}", output::gate_lines(&out.gates));
    if let Some(d) = &out.agent_decision {
        crate::commands::agent::print_decision(d);
    }
    output::git_note(&out.git);
}

pub(super) fn approve(app: &App, a: ApproveArgs) -> CmdResult {
    let store = app.store()?;
    let (id, version, env) = refs::bundle_version_env(&store, "approve", &a.args)?;
    let ctx = app.ctx(&store);
    let key = signing_key(&store, &a)?;
    let r = release::approve(&ctx, &id, &version, &env, a.comment, key.as_deref())?;
    if output::json(app, &r) {
        return Ok(0);
    }
    anstream::println!(
        "Approved {} v{} for {} by {}",
        paint(BOLD, &r.id),
        r.version,
        env,
        r.actor
    );
    for n in &r.notes {
        output::warn(n);
    }
    output::git_note(&r.git);
    Ok(0)
}

/// The key `approve --sign` signs with: `--key`, then
/// `$RELEASEOPS_SIGNING_KEY`, then git's `user.signingkey` (as git finds it
/// for SSH-signed commits); `~/` is the home directory.
fn signing_key(
    store: &releaseops_store::Store,
    a: &ApproveArgs,
) -> Result<Option<std::path::PathBuf>, crate::app::Failure> {
    if !a.sign && a.key.is_none() {
        return Ok(None);
    }
    let named = a
        .key
        .clone()
        .map(|p| p.to_string_lossy().into_owned())
        .or_else(|| std::env::var("RELEASEOPS_SIGNING_KEY").ok())
        .or_else(|| store.git().and_then(|g| g.config("user.signingkey")))
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| {
            crate::app::Failure::usage(
                "--sign needs an SSH key to sign with",
                "give --key ~/.ssh/id_ed25519, set RELEASEOPS_SIGNING_KEY, or set git's user.signingkey",
            )
        })?;
    if named.starts_with("key::") || named.starts_with("ssh-") {
        return Err(crate::app::Failure::usage(
            "a literal key in user.signingkey cannot sign here",
            "give the path of the key file with --key (its public half works when the key is in ssh-agent)",
        ));
    }
    let path = match named.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(|h| std::path::PathBuf::from(h).join(rest))
            .unwrap_or_else(|| std::path::PathBuf::from(&named)),
        None => std::path::PathBuf::from(&named),
    };
    if !path.is_file() {
        return Err(crate::app::Failure::usage(
            format!("signing key {} is not a file", path.display()),
            "give the path of your SSH key (e.g. ~/.ssh/id_ed25519)",
        ));
    }
    Ok(Some(path))
}

pub(super) fn reject(app: &App, a: RejectArgs) -> CmdResult {
    let store = app.store()?;
    let (id, version) = refs::exact(&store, &a.args)?;
    let ctx = app.ctx(&store);
    let r = release::reject(&ctx, &id, &version, a.env.as_deref(), &a.reason)?;
    if output::json(app, &r) {
        return Ok(0);
    }
    let scope = r
        .env
        .as_deref()
        .map(|e| format!(" for {e}"))
        .unwrap_or_else(|| " everywhere".into());
    anstream::println!(
        "Rejected {} v{}{scope}: it can never be promoted again",
        paint(BOLD, &r.id),
        r.version
    );
    for n in &r.notes {
        output::warn(n);
    }
    output::git_note(&r.git);
    Ok(0)
}

pub(super) fn rollback(
    app: &App,
    env: String,
    id: String,
    steps: Option<u32>,
    to: Option<String>,
    reason: Option<String>,
) -> CmdResult {
    let store = app.store()?;
    refs::env_bundle(&store, &env, &id)?;
    let ctx = app.ctx(&store);
    let span = crate::trace::start("releaseops rollback");
    let r = release::rollback(
        &ctx,
        &RollbackRequest {
            env: env.clone(),
            id: id.clone(),
            steps,
            to,
            reason,
        },
    );
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            span.attr(releaseops_runtime::telemetry::BUNDLE_ID, id);
            span.attr(releaseops_runtime::telemetry::ENVIRONMENT, env);
            span.fail(&e.to_string());
            return Err(e.into());
        }
    };
    span.bundle(&store, &r.id, &r.to, Some(&r.env));
    span.attr("releaseops.rollback.from_version", r.from.clone());
    drop(span);
    crate::notify::tell(&store, releaseops_core::notify::of_rollback(&r, &ctx));
    if output::json(app, &r) {
        return Ok(0);
    }
    anstream::println!(
        "Rolled back {} in {}: {} -> {}",
        paint(BOLD, &r.id),
        r.env,
        r.from,
        paint(BOLD, &r.to)
    );
    anstream::println!("  {} is recorded as a failed release in {}", r.from, r.env);
    if let Some(d) = &r.agent_outcome {
        anstream::println!("  the agent's decision {d} that let it in is recorded as rolled_back");
    }
    output::git_note(&r.git);
    Ok(0)
}
