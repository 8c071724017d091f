//! `releaseops export`: a self-contained snapshot of one bundle (its
//! manifest, its objects, and the environment pointer when exported from an
//! environment) in the store's own layout, so `RuntimeLoader::new(DIR)`
//! loads it the same way, in a container with no git and no repository.

use std::fs;
use std::path::{Path, PathBuf};

use releaseops_runtime::{BundleRef, LoadedBundle, RuntimeLoader};
use releaseops_store::{ObjectStore, Store};
use serde::Serialize;

use crate::{CoreError, Ctx, Result};

/// What `releaseops export` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub reference: String,
    pub bundle_id: String,
    pub bundle_version: String,
    pub bundle_hash: String,
    pub environment: Option<String>,
    pub out: PathBuf,
    /// Files written, relative to `out`.
    pub files: Vec<String>,
}

/// The marker an export leaves (and the proof a directory is one, so a
/// later export may replace it).
pub const MARKER: &str = "export.json";

fn io(what: &str, path: &Path, e: std::io::Error) -> CoreError {
    CoreError::refused(
        format!("{what} {}: {e}", path.display()),
        "check the path and its permissions",
    )
}

/// Exports `reference` (`ID@ENV` or `ID==VERSION`) to `out`: verified as
/// the runtime loads it, written beside `out` and renamed into place, then
/// loaded back from `out` to prove the snapshot is whole.
pub fn export(ctx: &Ctx<'_>, reference: &str, out: &Path) -> Result<ExportReport> {
    let r = BundleRef::parse(reference)?;
    let loader = RuntimeLoader::with_revalidate(ctx.store.dir(), std::time::Duration::ZERO)?;
    // Read under the shared lock: never a promotion half made.
    let bundle = {
        let _guard = ctx.store.read_guard()?;
        if let BundleRef::Env { env, .. } = &r {
            // The pointer exported must be the one the history holds.
            ctx.store.chain_view()?.checked_env(ctx.store, env)?;
        }
        loader.load(reference)?
    };
    if out.exists() {
        let empty = fs::read_dir(out)
            .map_err(|e| io("cannot read", out, e))?
            .next()
            .is_none();
        if !empty && !out.join(MARKER).is_file() {
            return Err(CoreError::refused(
                format!(
                    "{} exists and is not an earlier export; nothing was written",
                    out.display()
                ),
                "give a new or empty directory, or a directory an earlier export wrote",
            ));
        }
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| io("cannot create", parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".releaseops-export-")
        .tempdir_in(parent)
        .map_err(|e| io("cannot create a directory in", parent, e))?;
    let files = write_snapshot(ctx, &bundle, staging.path(), &r)?;
    // Swap in: the old export (if any) goes only once the new one is whole.
    let old = parent.join(format!(".releaseops-export-old-{}", std::process::id()));
    if out.exists() {
        fs::rename(out, &old).map_err(|e| io("cannot move aside", out, e))?;
    }
    let staged = staging.keep();
    if let Err(e) = fs::rename(&staged, out) {
        if old.exists() {
            let _ = fs::rename(&old, out);
        }
        let _ = fs::remove_dir_all(&staged);
        return Err(io("cannot move the export into", out, e));
    }
    if old.exists() {
        let _ = fs::remove_dir_all(&old);
    }
    // The proof: the snapshot loads and verifies on its own.
    let back = RuntimeLoader::new(out)?.load(reference)?;
    if back.bundle_hash() != bundle.bundle_hash() {
        return Err(CoreError::refused(
            format!(
                "the export at {} loads as {}, not {}",
                out.display(),
                back.bundle_hash(),
                bundle.bundle_hash()
            ),
            "report this as a bug",
        ));
    }
    Ok(ExportReport {
        reference: r.to_string(),
        bundle_id: bundle.id().to_string(),
        bundle_version: bundle.version().to_string(),
        bundle_hash: bundle.bundle_hash().to_string(),
        environment: bundle.environment().map(str::to_string),
        out: out.to_path_buf(),
        files,
    })
}

fn write_snapshot(
    ctx: &Ctx<'_>,
    bundle: &LoadedBundle,
    dir: &Path,
    r: &BundleRef,
) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let mut put = |rel: String, bytes: &[u8]| -> Result<()> {
        let path = dir.join(&rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).map_err(|e| io("cannot create", p, e))?;
        }
        fs::write(&path, bytes).map_err(|e| io("cannot write", &path, e))?;
        files.push(rel);
        Ok(())
    };
    let manifest_rel = Store::bundle_rel_path(bundle.id(), bundle.version());
    let manifest_path = ctx.store.dir().join(&manifest_rel);
    let manifest = fs::read(&manifest_path).map_err(|e| io("cannot read", &manifest_path, e))?;
    put(manifest_rel, &manifest)?;
    // The verified texts are exactly the objects' bytes.
    for p in bundle.prompts().values() {
        put(ObjectStore::rel_path(&p.content_hash), p.content.as_bytes())?;
    }
    for p in bundle.policies().values() {
        put(ObjectStore::rel_path(&p.content_hash), p.content.as_bytes())?;
    }
    if let BundleRef::Env { id, env } = r {
        let mut file = releaseops_format::environment::EnvironmentFile::new(env);
        file.bundle_mappings
            .insert(id.clone(), bundle.version().to_string());
        put(Store::env_rel_path(env), file.to_yaml().as_bytes())?;
    }
    let marker = serde_json::json!({
        "reference": r.to_string(),
        "bundle_id": bundle.id(),
        "bundle_version": bundle.version(),
        "bundle_hash": bundle.bundle_hash(),
        "environment": bundle.environment(),
        "exported_at": releaseops_format::time::format(ctx.now),
        "exported_by": ctx.actor,
    });
    let text = serde_json::to_string_pretty(&marker)
        .map_err(|e| CoreError::invalid(e.to_string(), "report this as a bug"))?;
    put(MARKER.to_string(), format!("{text}\n").as_bytes())?;
    files.sort();
    Ok(files)
}
