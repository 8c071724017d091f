//! What the first change in a tree the existing tool wrote imports into the
//! history: its `promotion_history.yaml`, a record for each environment
//! mapping those records do not explain (its `env set` wrote none), and each
//! eval report it saved (with the report's digest, so the eval gate can accept
//! that report and nothing written later).

use releaseops_format::hash;
use releaseops_format::history::{EventKind, Record, ReportEvidence};
use releaseops_format::state::ChainState;

use crate::error::Result;
use crate::{RawReport, Store};

/// The records an import appends, in order, without sequence numbers.
pub(crate) fn import_records(store: &Store) -> Result<Vec<Record>> {
    let mut out = bundles(store)?;
    out.extend(store.history().legacy_records()?);
    let mut state = ChainState::default();
    for r in &out {
        state.apply(r);
    }
    for env in store.environments()? {
        let Ok(file) = store.load_env(&env) else {
            continue;
        };
        for (bundle, version) in &file.bundle_mappings {
            if state.live(&env, bundle).map(|d| &d.version) == Some(version) {
                continue;
            }
            let at = file
                .metadata
                .as_ref()
                .and_then(|m| m.last_updated.clone())
                .unwrap_or_default();
            let mut r = Record::new(EventKind::Promote, at, "releaseops import".into());
            r.bundle_id = Some(bundle.clone());
            r.version = Some(version.clone());
            r.env = Some(env.clone());
            r.imported = true;
            r.reason = Some(format!(
                "found in environments/{env}.yaml at import; set outside the recorded history"
            ));
            state.apply(&r);
            out.push(r);
        }
    }
    out.extend(eval_reports(store)?);
    Ok(out)
}

/// Every bundle version the existing tool wrote, so each has a creation
/// record like the bundles created here (its hash, and who created it).
/// Unreadable manifests are left out: nothing can promote them anyway.
fn bundles(store: &Store) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for id in store.bundle_ids()? {
        for version in store.bundle_versions(&id)? {
            let Ok(m) = store.load_bundle(&id, &version) else {
                continue;
            };
            let mut r = Record::new(
                EventKind::BundleCreate,
                m.metadata.created_at.clone(),
                if m.metadata.created_by.is_empty() {
                    "releaseops import".into()
                } else {
                    m.metadata.created_by.clone()
                },
            );
            r.bundle_id = Some(id.clone());
            r.version = Some(version.clone());
            r.bundle_hash = Some(m.bundle_hash.clone().unwrap_or_else(|| m.compute_hash()));
            r.imported = true;
            r.reason = Some(format!(
                "found in bundles/{id}/{version}.yaml at import; written by the existing tool"
            ));
            out.push(r);
        }
    }
    Ok(out)
}

/// The existing tool's reports: files directly under `eval_reports/`, named
/// for the bundle hash (`sha256:<hex>.yaml`) or `<id>-<version>.yaml`.
fn eval_reports(store: &Store) -> Result<Vec<Record>> {
    let dir = store.dir().join("eval_reports");
    let mut names = crate::list_dir(&dir)?;
    names.sort();
    let mut out = Vec::new();
    for name in names {
        if !name.ends_with(".yaml") {
            continue;
        }
        let path = dir.join(&name);
        let Ok(Some(bytes)) = crate::fsx::read_regular_opt(&path, crate::REPORT_MAX_BYTES) else {
            continue;
        };
        let Ok(r) = releaseops_format::yaml::from_bytes::<RawReport>(&bytes) else {
            continue;
        };
        let from_name = name
            .strip_suffix(".yaml")
            .and_then(|n| {
                n.strip_prefix("sha256:")
                    .or_else(|| n.strip_prefix("sha256_"))
            })
            .map(|hex| format!("sha256:{hex}"))
            .filter(|h| hash::is_valid(h));
        let Some(bundle_hash) = r.bundle_hash.clone().or(from_name) else {
            continue;
        };
        let (Some(id), Some(version)) = (r.bundle_id.clone(), r.bundle_version.clone()) else {
            continue;
        };
        if releaseops_format::names::validate_bundle_id(&id).is_err()
            || releaseops_format::names::validate_version(&version).is_err()
        {
            continue;
        }
        let mut rec = Record::new(
            EventKind::EvalRun,
            r.timestamp.clone().unwrap_or_default(),
            "releaseops import".into(),
        );
        rec.bundle_id = Some(id);
        rec.version = Some(version);
        rec.bundle_hash = Some(bundle_hash);
        rec.state = r.summary.as_ref().and_then(|s| s.gate_decision.clone());
        rec.imported = true;
        let suite = r.suite_id.clone().unwrap_or_default();
        rec.reason = Some(format!(
            "found in eval_reports/{name} at import; written by the existing tool"
        ));
        rec.report = Some(ReportEvidence {
            path: format!("eval_reports/{name}"),
            digest: hash::sha256_prefixed(&bytes),
            suite,
            partial: false,
            suite_digest: None,
        });
        out.push(rec);
    }
    Ok(out)
}
