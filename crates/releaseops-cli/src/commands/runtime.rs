//! `export` and `telemetry show`: the bundle as an agent's runtime sees it.

use std::path::Path;

use releaseops_runtime::RuntimeLoader;

use crate::app::{App, CmdResult};
use crate::output::{self, BOLD, DIM, GREEN, paint};

pub(super) fn export(app: &App, reference: &str, out: &Path) -> CmdResult {
    let store = app.store()?;
    let ctx = app.ctx(&store);
    let r = releaseops_core::export::export(&ctx, reference, out)?;
    if output::json(app, &r) {
        return Ok(0);
    }
    anstream::println!(
        "{} {} {} ({}) to {}",
        paint(GREEN.bold(), "Exported"),
        r.bundle_id,
        r.bundle_version,
        r.bundle_hash,
        r.out.display()
    );
    for f in &r.files {
        anstream::println!("  {}", paint(DIM, f));
    }
    anstream::println!(
        "Load it anywhere with RuntimeLoader::new({:?})?.load({:?}); no git needed.",
        r.out.display().to_string(),
        r.reference
    );
    Ok(0)
}

pub(super) fn telemetry_show(app: &App, reference: &str) -> CmdResult {
    let store = app.store()?;
    let loader = RuntimeLoader::new(store.dir()).map_err(releaseops_core::CoreError::from)?;
    let bundle = {
        let _guard = store.read_guard()?;
        loader
            .load(reference)
            .map_err(releaseops_core::CoreError::from)?
    };
    let attrs = bundle.telemetry_attributes();
    let baggage: Vec<_> = bundle.baggage_attributes().collect();
    if app.global.json {
        output::print_json(&bundle.telemetry_json());
        return Ok(0);
    }
    anstream::println!(
        "{} {} {}",
        paint(BOLD, bundle.id()),
        bundle.version(),
        paint(DIM, bundle.bundle_hash())
    );
    anstream::println!("span attributes:");
    let width = attrs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in attrs {
        anstream::println!("  {k:<width$}  {v}");
    }
    anstream::println!("baggage (W3C, to child spans and downstream services):");
    for (k, v) in baggage {
        anstream::println!("  {k:<width$}  {v}");
    }
    Ok(0)
}
