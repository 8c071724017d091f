use releaseops_store::Store;

use crate::app::{App, CmdResult, Failure};
use crate::output::{self, paint};

pub fn run(app: &App) -> CmdResult {
    let root = app.start_dir();
    let root = std::fs::canonicalize(&root).map_err(|e| Failure {
        code: 1,
        kind: "io",
        message: format!("cannot open {}: {e}", root.display()),
        hint: Some("pass an existing directory with --path".into()),
    })?;
    let (store, created) = Store::init_with(&root, app.global.rehearsal)?;
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
    anstream::println!(
        "\nNext: releaseops bundle create <name> --artifact system=<prompt>:<version> --model <model>"
    );
    Ok(0)
}
