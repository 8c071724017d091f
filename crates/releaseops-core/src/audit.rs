//! `history verify`: the chain is intact, and every environment is exactly
//! what the history says it should be.

use std::collections::HashMap;

use releaseops_format::history::{EventKind, apply_to_stack};
use releaseops_store::Store;
use serde::Serialize;

use crate::Result;

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub ok: bool,
    pub records: u64,
    pub segments: u64,
    pub environments_checked: usize,
    pub problems: Vec<String>,
    /// The existing tool's history is waiting to be imported (on the next change).
    pub legacy_pending: bool,
    /// Records written with a hand-set clock (RELEASEOPS_NOW): their times,
    /// and the soak and freeze gates measured against them, were not real.
    pub simulated_clock_records: u64,
}

pub fn verify(store: &Store) -> Result<AuditReport> {
    let _read = store.read_guard()?;
    // env -> bundle -> stack of versions
    let mut replay: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
    let log = store.history();
    let legacy_pending = log.is_empty()? && !log.legacy_records()?.is_empty();
    let mut apply = |event: EventKind, env: &str, bundle: &str, version: &str| {
        let per_env = match replay.get_mut(env) {
            Some(m) => m,
            None => replay.entry(env.to_string()).or_default(),
        };
        let stack = match per_env.get_mut(bundle) {
            Some(s) => s,
            None => per_env.entry(bundle.to_string()).or_default(),
        };
        apply_to_stack(stack, event, version.to_string(), |v| v == version);
    };
    let mut report = log.verify(&mut apply)?;
    if legacy_pending {
        for r in log.legacy_records()? {
            if let (Some(e), Some(b), Some(v)) = (&r.env, &r.bundle_id, &r.version) {
                apply(r.event, e, b, v);
            }
        }
    }
    let envs = store.environments()?;
    for name in &envs {
        let env = match store.load_env(name) {
            Ok(e) => e,
            Err(e) => {
                report.problems.push(e.to_string());
                continue;
            }
        };
        let expected = replay.remove(name).unwrap_or_default();
        for (bundle, version) in &env.bundle_mappings {
            match expected.get(bundle).and_then(|s| s.last()) {
                Some(v) if v == version => {}
                Some(v) => report.problems.push(format!(
                    "environments/{name}.yaml maps {bundle} to {version}, but the history says {v} is live (changed outside releaseops?)"
                )),
                None => report.problems.push(format!(
                    "environments/{name}.yaml maps {bundle} to {version}, but the history never deployed {bundle} there"
                )),
            }
        }
        for (bundle, stack) in &expected {
            if let Some(v) = stack.last()
                && !env.bundle_mappings.contains_key(bundle)
            {
                report.problems.push(format!(
                        "the history says {bundle}@{v} is live in '{name}', but environments/{name}.yaml does not map it"
                    ));
            }
        }
        if !legacy_pending
            && !log.is_empty()?
            && let Ok(d) = store.load_deployments(name)
        {
            for (bundle, stack) in &expected {
                let idx: Vec<&str> = d
                    .bundles
                    .get(bundle)
                    .map(|s| s.iter().map(|x| x.version.as_str()).collect())
                    .unwrap_or_default();
                let want: Vec<&str> = stack.iter().map(|s| s.as_str()).collect();
                if idx != want {
                    report.problems.push(format!(
                        "deployments/{name}/{bundle}.yaml disagrees with the history"
                    ));
                }
            }
        }
    }
    for (env, bundles) in replay {
        if bundles.values().any(|s| !s.is_empty()) {
            report.problems.push(format!(
                "the history deploys to '{env}', which has no environment file"
            ));
        }
    }
    Ok(AuditReport {
        ok: report.problems.is_empty(),
        records: report.records,
        segments: report.segments,
        environments_checked: envs.len(),
        problems: report.problems,
        simulated_clock_records: report.simulated_clock_records,
        legacy_pending,
    })
}
