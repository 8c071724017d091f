//! `history verify`: the chain is intact, and every file a gate or a reader
//! relies on is exactly what the history says it should be: environment
//! pointers, rollback stacks, reviews, eval reports, bundle manifests and
//! their objects.

use std::collections::BTreeSet;

use releaseops_store::{Store, view::ChainView};
use serde::Serialize;

use crate::Result;

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub ok: bool,
    pub records: u64,
    pub segments: u64,
    pub environments_checked: usize,
    /// Deployment stacks, review files, recorded eval reports and bundle
    /// versions (with every artifact re-hashed) checked against the history.
    pub stacks_checked: usize,
    pub reviews_checked: usize,
    pub eval_reports_checked: usize,
    pub bundles_checked: usize,
    /// SSH signatures on approvals, each checked with `ssh-keygen -Y verify`.
    pub signatures_checked: usize,
    pub problems: Vec<String>,
    /// The existing tool's history is waiting to be imported (on the next change).
    pub legacy_pending: bool,
    /// A rehearsal store: its records were never production.
    pub rehearsal: bool,
    /// Records written with a hand-set clock (RELEASEOPS_NOW): their times,
    /// and the soak and freeze gates measured against them, were not real.
    pub simulated_clock_records: u64,
}

pub fn verify(store: &Store) -> Result<AuditReport> {
    let _read = store.read_guard()?;
    let (view, chain) = store.replay_chain()?;
    let mut problems = chain.problems;
    let legacy_pending = view.legacy_pending();
    let envs = store.environments()?;
    let state = view.state();
    for name in &envs {
        match store.load_env(name) {
            Ok(env) => problems.extend(view.env_problems(&env)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    for env in state.deployments.keys() {
        if !envs.contains(env) && state.live_in(env).values().next().is_some() {
            problems.push(format!(
                "the history deploys to '{env}', which has no environment file"
            ));
        }
    }
    if let [first, ..] = state.simulated_outside_rehearsal.as_slice() {
        problems.push(format!(
            "{} record(s) outside a rehearsal were written with a simulated clock (RELEASEOPS_NOW), record {first} first: their times, and the soak and freeze gates measured against them, were not real",
            state.simulated_outside_rehearsal.len()
        ));
    }
    let stacks_checked = check_stacks(store, &view, &mut problems)?;
    let reviews_checked = check_reviews(store, &view, &mut problems)?;
    let eval_reports_checked = check_reports(store, &view, &mut problems)?;
    let bundles_checked = check_bundles(store, &view, &mut problems)?;
    let signatures_checked = check_signatures(store, &view, &mut problems);
    Ok(AuditReport {
        ok: problems.is_empty(),
        records: chain.records,
        segments: chain.segments,
        environments_checked: envs.len(),
        stacks_checked,
        reviews_checked,
        eval_reports_checked,
        bundles_checked,
        signatures_checked,
        problems,
        simulated_clock_records: chain.simulated_clock_records,
        legacy_pending,
        rehearsal: state.is_rehearsal(store.config()),
    })
}

/// Names of the files directly in `dir` with `ext`, without it.
fn stems(dir: &std::path::Path, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(ext))
                .map(str::to_string)
        })
        .collect();
    out.sort();
    out
}

fn subdirs(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

type Problem = Result<Option<String>>;

/// The two-level index files under `.releaseops/<sub>/<a>/<b>.yaml` and the
/// keys the history holds for them: every one is checked with `check`, so a
/// file the history has no entry for and an entry with no file both show.
fn check_index<'k, V: 'k>(
    store: &Store,
    sub: &str,
    held: impl Iterator<Item = (&'k String, &'k std::collections::BTreeMap<String, V>)>,
    valid: impl Fn(&str, &str) -> bool,
    check: impl Fn(&str, &str) -> Problem,
    problems: &mut Vec<String>,
) -> usize {
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    for (a, inner) in held {
        for b in inner.keys() {
            keys.insert((a.clone(), b.clone()));
        }
    }
    let root = store.dir().join(sub);
    for a in subdirs(&root) {
        for b in stems(&root.join(&a), ".yaml") {
            keys.insert((a.clone(), b));
        }
    }
    for (a, b) in &keys {
        if !valid(a, b) {
            problems.push(format!(
                "{sub}/{a}/{b}.yaml is not a name releaseops writes"
            ));
            continue;
        }
        match check(a, b) {
            Ok(None) => {}
            Ok(Some(p)) => problems.push(p),
            Err(e) => problems.push(e.to_string()),
        }
    }
    keys.len()
}

/// Every rollback stack the history holds has its index file, and every
/// index file agrees with the history.
fn check_stacks(store: &Store, view: &ChainView, problems: &mut Vec<String>) -> Result<usize> {
    use releaseops_format::names::{validate_bundle_id, validate_env_name};
    Ok(check_index(
        store,
        "deployments",
        view.state().deployments.iter(),
        |env, b| validate_env_name(env).is_ok() && validate_bundle_id(b).is_ok(),
        |env, b| Ok(view.deployment_problem(store, env, b)?),
        problems,
    ))
}

/// Every version the history reviewed has a reviews file that agrees, and
/// no reviews file holds anything the history does not.
fn check_reviews(store: &Store, view: &ChainView, problems: &mut Vec<String>) -> Result<usize> {
    use releaseops_format::names::{validate_bundle_id, validate_version};
    Ok(check_index(
        store,
        "reviews",
        view.state().reviews.iter().map(|(id, v)| (id, &**v)),
        |id, v| validate_bundle_id(id).is_ok() && validate_version(v).is_ok(),
        |id, v| Ok(view.reviews_problem(store, id, v)?),
        problems,
    ))
}

/// Every recorded report is there with its recorded digest; a report the
/// history does not hold is reported (no gate counts it).
fn check_reports(store: &Store, view: &ChainView, problems: &mut Vec<String>) -> Result<usize> {
    let mut recorded: BTreeSet<String> = BTreeSet::new();
    let mut checked = 0;
    for (hash, facts) in &view.state().evals {
        if let Err(e) = view.recorded_reports(store, hash) {
            problems.push(e.to_string());
        }
        checked += facts.len();
        recorded.extend(facts.iter().map(|f| f.report.path.clone()));
    }
    for e in store.report_entries() {
        if !recorded.contains(&e.rel) && !view.legacy_pending() {
            problems.push(format!(
                "{} is not in the history (written outside releaseops); no gate counts it",
                e.rel
            ));
        }
    }
    Ok(checked)
}

/// Every bundle version the history created still has its manifest, with the
/// recorded hash, and every artifact of it hashes to what the manifest says;
/// a manifest the history never created is reported.
fn check_bundles(store: &Store, view: &ChainView, problems: &mut Vec<String>) -> Result<usize> {
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    for (id, versions) in &view.state().bundles {
        for v in versions.keys() {
            keys.insert((id.clone(), v.clone()));
        }
    }
    for id in store.bundle_ids()? {
        for v in store.bundle_versions(&id)? {
            keys.insert((id.clone(), v));
        }
    }
    for (id, version) in &keys {
        let rel = format!("bundles/{id}/{version}.yaml");
        if !store.bundle_exists(id, version) {
            let live: Vec<&String> = view
                .state()
                .deployments
                .iter()
                .filter(|(_, b)| {
                    b.get(id)
                        .and_then(|s| s.last())
                        .is_some_and(|d| d.version == *version)
                })
                .map(|(e, _)| e)
                .collect();
            let note = if live.is_empty() {
                String::new()
            } else {
                format!(
                    " (it is live in {})",
                    live.iter()
                        .map(|e| format!("'{e}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            problems.push(format!(
                "{rel} is missing, but the history created {id}@{version}{note}"
            ));
            continue;
        }
        match crate::facts::verified_manifest(store, view, id, version) {
            Ok(_) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    Ok(keys.len())
}

/// Every signed approval in the history still verifies against
/// `.releaseops/allowed_signers` for the approver it names.
fn check_signatures(store: &Store, view: &ChainView, problems: &mut Vec<String>) -> usize {
    let mut checked = 0;
    for (id, versions) in &view.state().reviews {
        for (version, reviews) in versions.iter() {
            if reviews.approvals.iter().all(|a| a.signature.is_none()) {
                continue;
            }
            let Ok(manifest) = store.load_bundle(id, version) else {
                continue;
            };
            let checks = crate::facts::signature_checks(store, &manifest, reviews);
            for (a, check) in reviews.approvals.iter().zip(checks) {
                let Some(check) = check else { continue };
                checked += 1;
                if let Err(why) = check {
                    problems.push(format!(
                        "the signed approval of {id}@{version} for '{}' by {} at {}: {why}",
                        a.env, a.actor, a.at
                    ));
                }
            }
        }
    }
    checked
}
