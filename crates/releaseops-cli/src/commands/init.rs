use releaseops_store::Store;

use crate::app::{App, CmdResult, Failure};
use crate::cli::{InitArgs, Template};
use crate::output::{self, paint};

/// The gated template's sample prompt: a plain prompt file with a variable.
const PROMPT: &str = "You are a customer support agent for Acme.
Greet {{ user_name }} warmly.
You may issue refunds up to 100 dollars using the issue_refund tool.
Never issue refunds above 100 dollars without manager approval.
";

/// prod's gates in the gated template. The soak is 36 seconds so the
/// quick start runs in a minute; make it hours for real use
/// (`releaseops env set prod soak_hours=24`).
const PROD_POLICY: &[(&str, &str)] = &[
    ("requires_eval", "true"),
    ("eval_suites", "[refunds]"),
    ("requires_approval", "true"),
    ("min_approvals", "1"),
    ("soak_hours", "0.01"),
];

pub(super) fn run(app: &App, a: InitArgs) -> CmdResult {
    let root = app.start_dir();
    let root = std::fs::canonicalize(&root).map_err(|e| Failure {
        kind: releaseops_core::ErrorKind::Io,
        message: format!("cannot open {}: {e}", root.display()),
        hint: Some("pass an existing directory with --path".into()),
    })?;
    if a.template.is_some() && root.join(".releaseops").join("config.yaml").exists() {
        // A template never rewrites a live pipeline's gates.
        return Err(Failure::usage(
            format!(
                "{} already has a releaseops store; a template is only for a new one",
                root.display()
            ),
            "set gates on this store with `releaseops env set prod KEY=VALUE`, or try the template in a new directory",
        ));
    }
    let (store, mut created) = Store::init_with(&root, app.global.rehearsal)?;
    if let Some(Template::Gated) = a.template {
        created.extend(gated(app, &store)?);
    }
    if output::json(
        app,
        &serde_json::json!({
            "root": store.root(), "created": created, "pipeline": store.config().pipeline,
            "git": store.git().is_some(), "rehearsal": store.config().rehearsal,
        }),
    ) {
        return Ok(0);
    }
    if created.is_empty() {
        anstream::println!(
            "releaseops is already initialized in {}",
            store.root().display()
        );
    } else {
        anstream::println!(
            "Initialized {} in {}",
            paint(output::BOLD, ".releaseops/"),
            store.root().display()
        );
        for c in &created {
            anstream::println!("  created {c}");
        }
        anstream::println!("  pipeline: {}", store.config().pipeline.join(" -> "));
    }
    if a.template.is_some() {
        anstream::println!(
            "\nNext: releaseops bundle create support-agent -v 1.0.0 --artifact system=file:prompts/system.md --policy tools=policies/tools.yaml --model claude-sonnet-4-5"
        );
    } else {
        anstream::println!(
            "\nNext: releaseops bundle create <name> --artifact system=file:<prompt file> --model <model>"
        );
    }
    Ok(0)
}

/// The gated template: prod's policy (recorded in the history), the sample
/// suite, and the sample project files beside `.releaseops/` (never over a
/// file that exists).
fn gated(app: &App, store: &Store) -> Result<Vec<String>, Failure> {
    let mut created = Vec::new();
    let ctx = app.ctx(store);
    let sets: Vec<(String, String)> = PROD_POLICY
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let set = releaseops_core::envs::set_policy(&ctx, "prod", &sets)?;
    if set.seq.is_some() {
        created.push(format!("prod's gates: {}", set.gates.join(", ")));
    }
    if !store.dir().join("evals/refunds.yaml").exists() {
        created.push(releaseops_core::evals::create_suite_with(
            &ctx,
            "refunds",
            crate::commands::demo::SUITE,
        )?);
    }
    let files = [
        ("prompts/system.md", PROMPT),
        ("policies/tools.yaml", crate::commands::demo::TOOLS),
        ("agent.py", crate::commands::demo::AGENT),
    ];
    for (rel, text) in files {
        let path = store.root().join(rel);
        if std::fs::symlink_metadata(&path).is_ok() {
            output::warn(&format!("{rel} exists: left as it is"));
            continue;
        }
        // Never through a linked directory (out of the repository).
        if let Some(parent) = std::path::Path::new(rel).parent()
            && !parent.as_os_str().is_empty()
            && std::fs::symlink_metadata(store.root().join(parent))
                .is_ok_and(|m| m.file_type().is_symlink())
        {
            output::warn(&format!(
                "{} is a link: {rel} not written",
                parent.display()
            ));
            continue;
        }
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // create_new: never through a link or over a file made meanwhile.
            use std::io::Write;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?
                .write_all(text.as_bytes())
        };
        write().map_err(|e| Failure {
            kind: releaseops_core::ErrorKind::Io,
            message: format!("cannot write {}: {e}", path.display()),
            hint: Some("check the directory's permissions and free space".into()),
        })?;
        created.push(rel.to_string());
    }
    Ok(created)
}
