use releaseops_core::envs::{self, CreateEnv, HistoryQuery};
use releaseops_format::environment::PromotionPolicy;

use crate::app::{App, CmdResult};
use crate::cli::{EnvCmd, EnvCreateArgs};
use crate::commands::history::print_records;
use crate::output::{self, BOLD, DIM, paint};

pub(super) fn run(app: &App, cmd: EnvCmd) -> CmdResult {
    match cmd {
        EnvCmd::List { at } => list(app, at),
        EnvCmd::Get { env } => get(app, &env),
        EnvCmd::Create(a) => create(app, a),
        EnvCmd::Set { env, settings } => set(app, &env, &settings),
        EnvCmd::History { env, limit } => {
            let store = app.store()?;
            store.load_env(&env)?;
            let recs = envs::history(
                &store,
                &HistoryQuery {
                    env: Some(env),
                    limit,
                    ..Default::default()
                },
            )?;
            print_records(app, &recs);
            Ok(0)
        }
    }
}

fn list(app: &App, at: Option<String>) -> CmdResult {
    let store = app.store()?;
    let states = match &at {
        Some(t) => envs::list_at(&store, releaseops_format::time::parse(t)?)?,
        None => envs::list(&store)?,
    };
    let problems: Vec<&String> = states.iter().flat_map(|s| &s.problems).collect();
    let code = if problems.is_empty() {
        0
    } else {
        crate::commands::EXIT_VERIFY_FAILED
    };
    if output::json(
        app,
        &serde_json::json!({ "at": at, "environments": states }),
    ) {
        return Ok(code);
    }
    for p in &problems {
        output::warn(&format!(
            "{p}; shown is what the history says (`releaseops history verify`)"
        ));
    }
    if let Some(t) = &at {
        anstream::println!(
            "{}",
            paint(DIM, &format!("As of {t} (replayed from the history):"))
        );
    }
    let mut rows = Vec::new();
    for s in &states {
        let stage = s
            .stage
            .map(|i| (i + 1).to_string())
            .unwrap_or_else(|| "-".into());
        let gates = if s.gates.is_empty() {
            String::new()
        } else {
            s.gates.join(", ")
        };
        if s.bundles.is_empty() {
            rows.push(vec![
                stage.clone(),
                s.env.clone(),
                paint(DIM, "(no bundles)"),
                String::new(),
                String::new(),
                gates.clone(),
            ]);
        }
        for (i, b) in s.bundles.iter().enumerate() {
            rows.push(vec![
                if i == 0 { stage.clone() } else { String::new() },
                if i == 0 { s.env.clone() } else { String::new() },
                b.bundle_id.clone(),
                b.version.clone(),
                b.since.as_deref().map_or_else(|| "?".into(), output::when),
                if i == 0 { gates.clone() } else { String::new() },
            ]);
        }
    }
    anstream::println!(
        "{}",
        output::table(
            &["#", "env", "bundle", "version", "live since", "gates"],
            rows
        )
    );
    Ok(code)
}

fn get(app: &App, name: &str) -> CmdResult {
    let store = app.store()?;
    let env = store.load_env(name)?;
    if app.global.json {
        let deployments = store.load_deployments(name)?;
        output::print_json(&serde_json::json!({
            "environment": env.environment,
            "bundle_mappings": env.bundle_mappings,
            "stage": store.config().position(name),
            "upstream": store.config().upstream_of(name),
            "gates": envs::policy_summary(env.promotion_policy.as_ref()),
            "deployments": deployments.bundles,
            "file": env.to_yaml(),
        }));
        return Ok(0);
    }
    anstream::print!("{}", env.to_yaml());
    Ok(0)
}

fn create(app: &App, a: EnvCreateArgs) -> CmdResult {
    let store = app.store()?;
    let any_policy = a.requires_eval
        || a.requires_approval
        || !a.approval_teams.is_empty()
        || !a.approvers.is_empty()
        || a.soak_hours > 0.0;
    if !a.soak_hours.is_finite() || a.soak_hours < 0.0 {
        return Err(crate::app::Failure::usage(
            "--soak-hours must be a number >= 0",
            "e.g. --soak-hours 24",
        ));
    }
    let policy = any_policy.then(|| PromotionPolicy {
        requires_eval: a.requires_eval,
        requires_approval: a.requires_approval
            || !a.approval_teams.is_empty()
            || !a.approvers.is_empty(),
        approval_teams: a.approval_teams.clone(),
        approvers: a.approvers.clone(),
        min_approvals: a.min_approvals,
        soak_hours: a.soak_hours,
        ..Default::default()
    });
    let ctx = app.ctx(&store);
    let r = envs::create(
        &ctx,
        &CreateEnv {
            name: a.name,
            after: a.after,
            before: a.before,
            policy,
        },
    )?;
    if output::json(app, &r) {
        return Ok(0);
    }
    anstream::println!("Created environment {}", paint(BOLD, &r.env));
    anstream::println!("  pipeline: {}", r.pipeline.join(" -> "));
    output::git_note(&r.git);
    Ok(0)
}

fn set(app: &App, env: &str, settings: &[String]) -> CmdResult {
    let sets = settings
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| {
                    crate::app::Failure::usage(
                        format!("'{s}' is not KEY=VALUE"),
                        "e.g. releaseops env set prod requires_approval=true min_approvals=2 soak_hours=24",
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let store = app.store()?;
    let r = envs::set_policy(&app.ctx(&store), env, &sets)?;
    if output::json(app, &r) {
        return Ok(0);
    }
    if r.changes.is_empty() {
        anstream::println!(
            "Unchanged: the promotion policy of '{env}' already says so (nothing recorded)"
        );
    } else {
        anstream::println!("Set the promotion policy of {}:", paint(BOLD, env));
        for c in &r.changes {
            anstream::println!("  {c}");
        }
    }
    let gates = if r.gates.is_empty() {
        "none".to_string()
    } else {
        r.gates.join(", ")
    };
    anstream::println!("  gates: {gates}");
    output::git_note(&r.git);
    Ok(0)
}
