use releaseops_core::bundle::{self, ArtifactSpec, Change, CreateRequest, ModelSpec};
use releaseops_format::yaml::Node;
use serde_json::Map;

use crate::app::{App, CmdResult, Failure};
use crate::cli::{BundleCmd, CreateArgs};
use crate::commands::EXIT_VERIFY_FAILED;
use crate::output::{self, BOLD, DIM, GREEN, RED, paint};
use crate::refs;

pub(super) fn run(app: &App, cmd: BundleCmd) -> CmdResult {
    match cmd {
        BundleCmd::Create(a) => create(app, a),
        BundleCmd::List => list(app),
        BundleCmd::Inspect { reference, version } => inspect(app, &reference, version),
        BundleCmd::Verify { reference, version } => verify(app, &reference, version),
        BundleCmd::Diff { args } => diff(app, &args),
    }
}

fn create(app: &App, a: CreateArgs) -> CmdResult {
    let store = app.store()?;
    let artifacts = a
        .artifacts
        .iter()
        .map(|s| ArtifactSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let policies = a
        .policies
        .iter()
        .map(|s| bundle::parse_policy(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut parameters = Map::new();
    for p in &a.params {
        let (k, v) = bundle::parse_param(p)?;
        parameters.insert(k, v);
    }
    if a.model.is_none() && !parameters.is_empty() {
        return Err(Failure::usage(
            "--param needs --model",
            "model parameters belong to a model config; add --model <id>",
        ));
    }
    let provider = match (&a.model, a.provider) {
        (_, Some(p)) => p,
        (None, None) => String::new(),
        (Some(model), None) => match bundle::infer_provider(model) {
            Some(p) => p.to_string(),
            None => {
                return Err(Failure::usage(
                    format!("which provider serves the model '{model}'? Its name does not say"),
                    "add --provider openai, anthropic, gemini or openai-compatible",
                ));
            }
        },
    };
    let req = CreateRequest {
        id: a.name,
        version: a.version,
        artifacts,
        policies,
        model: a.model.map(|model| ModelSpec {
            provider,
            model,
            temperature: a.temperature,
            max_tokens: a.max_tokens,
            parameters,
        }),
        description: a.description,
    };
    let ctx = app.ctx(&store);
    let c = bundle::create(&ctx, &req)?;
    if output::json(app, &c) {
        return Ok(0);
    }
    anstream::println!("Created bundle: {} v{}", paint(BOLD, &c.id), c.version);
    anstream::println!("  Hash: {}", c.bundle_hash);
    anstream::println!("  Artifacts: {}", c.artifacts);
    for p in &c.pinned {
        anstream::println!("  Pinned {p}");
    }
    for n in &c.notes {
        output::warn(n);
    }
    output::git_note(&c.git);
    Ok(0)
}

fn list(app: &App) -> CmdResult {
    let store = app.store()?;
    let bundles = bundle::list(&store)?;
    if output::json(app, &bundles) {
        return Ok(0);
    }
    if bundles.is_empty() {
        anstream::println!(
            "No bundles yet. Create one with `releaseops bundle create <name> ...`."
        );
        return Ok(0);
    }
    let rows = bundles
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                b.latest.clone().unwrap_or_default(),
                b.versions.join(", "),
                b.deployed
                    .iter()
                    .map(|(e, v)| format!("{e}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    anstream::println!(
        "{}",
        output::table(&["bundle", "latest", "versions", "deployed"], rows)
    );
    Ok(0)
}

fn inspect(app: &App, reference: &[String], version: Option<String>) -> CmdResult {
    let store = app.store()?;
    let (id, version) = refs::bundle_version(&store, reference, version)?;
    let ins = bundle::inspect(&store, &id, &version)?;
    if app.global.json {
        output::print_json(&ins.to_json());
        return Ok(0);
    }
    let m = &ins.manifest;
    let Node::Map(mut doc) = m.to_node() else {
        return Ok(0);
    };
    doc.push((
        "artifact_count".into(),
        Node::UInt((m.prompts.len() + m.policies.len()) as u64),
    ));
    doc.push((
        "prompt_roles".into(),
        Node::Seq(m.prompts.keys().map(Node::str).collect()),
    ));
    doc.push((
        "policy_roles".into(),
        Node::Seq(m.policies.keys().map(Node::str).collect()),
    ));
    doc.push((
        "deployed_in".into(),
        Node::Seq(ins.deployed_in.iter().map(Node::str).collect()),
    ));
    if ins.reviews != Default::default() {
        let review_json = serde_json::to_value(&ins.reviews).unwrap_or_default();
        doc.push(("reviews".into(), Node::from_json(&review_json)));
    }
    anstream::print!("{}", Node::Map(doc).to_yaml());
    Ok(0)
}

fn verify(app: &App, reference: &[String], version: Option<String>) -> CmdResult {
    let store = app.store()?;
    let (id, version) = refs::bundle_version(&store, reference, version)?;
    let r = bundle::verify(&store, &id, &version)?;
    let code = if r.ok { 0 } else { EXIT_VERIFY_FAILED };
    if output::json(app, &r) {
        return Ok(code);
    }
    for a in &r.artifacts {
        let mark = if a.status == "ok" {
            paint(GREEN, "ok")
        } else {
            paint(RED, a.status)
        };
        let against = a
            .checked_against
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        anstream::println!(
            "  {:<6} {:<8} {:<10} {}{}",
            a.section,
            a.role,
            mark,
            a.location,
            paint(DIM, &against)
        );
    }
    if r.ok {
        anstream::println!(
            "OK: {id} v{version} integrity verified ({} artifacts, {})",
            r.artifacts.len(),
            r.bundle_hash.as_deref().unwrap_or("-")
        );
    } else {
        anstream::println!(
            "{}: {id} v{version}, {} problem(s):",
            paint(RED.bold(), "FAILED"),
            r.problems.len()
        );
        for p in &r.problems {
            anstream::println!("  - {p}");
        }
    }
    Ok(code)
}

fn diff(app: &App, args: &[String]) -> CmdResult {
    let store = app.store()?;
    let (a, b) = match args {
        [id, v1, v2] => (
            refs::bundle_version(&store, &[id.clone(), v1.clone()], None)?,
            refs::bundle_version(&store, &[id.clone(), v2.clone()], None)?,
        ),
        [x, y] => {
            let (ida, ata) = refs::split(x)?;
            let (idb, atb) = refs::split(y)?;
            if ata.is_none() || atb.is_none() {
                return Err(Failure::usage(
                    "with two arguments, write two references, e.g. ID@1.0.0 ID@1.1.0 or ID@prod ID@staging",
                    "or give ID V1 V2",
                ));
            }
            (
                (ida.clone(), refs::version(&store, &ida, ata)?),
                (idb.clone(), refs::version(&store, &idb, atb)?),
            )
        }
        _ => {
            return Err(Failure::usage(
                "bundle diff takes ID V1 V2 or ID@V1 ID@V2",
                "e.g. releaseops bundle diff support-agent 1.0.0 1.1.0",
            ));
        }
    };
    let d = bundle::diff(&store, (&a.0, &a.1), (&b.0, &b.1))?;
    if output::json(app, &d) {
        return Ok(0);
    }
    anstream::println!("Diff: {} -> {}", paint(BOLD, &d.old), paint(BOLD, &d.new));
    if d.old_hash == d.new_hash {
        anstream::println!(
            "  identical content (bundle hash {})",
            d.old_hash.as_deref().unwrap_or("-")
        );
    }
    for art in &d.artifacts {
        let counts = if art.change != Change::Unchanged {
            format!(" (+{} -{})", art.lines_added, art.lines_removed)
        } else {
            String::new()
        };
        let loc = match (&art.old, &art.new) {
            (Some(o), Some(n)) if o != n => format!("{o} -> {n}"),
            (Some(o), _) => o.clone(),
            (None, Some(n)) => n.clone(),
            _ => String::new(),
        };
        anstream::println!(
            "  {} {} {}: {}{} {}",
            art.section,
            paint(BOLD, &art.role),
            art.change,
            loc,
            counts,
            ""
        );
        if let Some(text) = &art.diff {
            for line in text.lines().skip(2) {
                let styled = if line.starts_with('+') {
                    paint(GREEN, line)
                } else if line.starts_with('-') {
                    paint(RED, line)
                } else {
                    paint(DIM, line)
                };
                anstream::println!("      {styled}");
            }
        } else if art.change != Change::Unchanged {
            anstream::println!(
                "      {}",
                paint(
                    DIM,
                    "(content not available: not in the object store and not reproducible)"
                )
            );
        }
    }
    if d.model_config.is_empty() {
        anstream::println!("  model_config: unchanged");
    } else {
        anstream::println!("  model_config:");
        for f in &d.model_config {
            anstream::println!(
                "    {}: {} -> {}",
                f.field,
                f.old.as_deref().unwrap_or("(none)"),
                f.new.as_deref().unwrap_or("(none)")
            );
        }
    }
    for f in d.metadata.iter().filter(|f| f.field == "description") {
        anstream::println!(
            "  description: {:?} -> {:?}",
            f.old.as_deref().unwrap_or(""),
            f.new.as_deref().unwrap_or("")
        );
    }
    Ok(0)
}
