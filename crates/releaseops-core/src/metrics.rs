//! DORA metrics from the history: deployment frequency, lead time for
//! changes, change failure rate, time to restore and rework rate, for one
//! environment over a window of days.

use jiff::Timestamp;
use releaseops_format::history::{EventKind, Record};
use releaseops_store::Store;
use serde::Serialize;

use crate::Result;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dora {
    pub env: String,
    pub days: f64,
    pub deployments: u64,
    /// Deployments per day over the window.
    pub deployment_frequency_per_day: f64,
    /// Bundle created -> live in the environment, in hours.
    pub lead_time_hours_median: Option<f64>,
    pub lead_time_hours_p90: Option<f64>,
    /// Deployments that failed, over all deployments: rolled back, or
    /// found in production traffic to have regressed (the decision agent's
    /// `incident` outcome for the decision that let them in).
    pub change_failure_rate: Option<f64>,
    pub failed_deployments: u64,
    /// Of those, the ones production traffic settled without a rollback.
    pub failed_in_production: u64,
    /// Deployment of a failed version -> the rollback that restored service,
    /// in hours.
    pub time_to_restore_hours_median: Option<f64>,
    /// Deployments that fix forward: a bundle deployed again within 7 days of
    /// one of its versions being rolled back, over all deployments.
    pub rework_rate: Option<f64>,
}

fn at(r: &Record) -> Option<Timestamp> {
    releaseops_format::time::parse(&r.at).ok()
}

fn hours(a: Timestamp, b: Timestamp) -> f64 {
    (b.as_second() - a.as_second()) as f64 / 3600.0
}

fn quantile(mut v: Vec<f64>, q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v.get(i).map(|x| (x * 100.0).round() / 100.0)
}

/// The metrics for `env` over the `days` before `now`.
pub fn dora(store: &Store, env: &str, days: f64, now: Timestamp) -> Result<Dora> {
    let _read = store.read_guard()?;
    let all = store.history().all()?;
    let since = now.as_second() as f64 - days * 86_400.0;
    let in_window = |r: &Record| at(r).is_some_and(|t| t.as_second() as f64 >= since && t <= now);
    let mut created_at: std::collections::HashMap<(&str, &str), Timestamp> =
        std::collections::HashMap::new();
    for r in all.iter().filter(|r| r.event == EventKind::BundleCreate) {
        if let (Some(id), Some(v), Some(t)) = (r.bundle_id.as_deref(), r.version.as_deref(), at(r))
        {
            created_at.entry((id, v)).or_insert(t);
        }
    }
    let created = |id: &str, version: &str| created_at.get(&(id, version)).copied();
    let deploys: Vec<(usize, &Record)> = all
        .iter()
        .enumerate()
        .filter(|(_, r)| r.event == EventKind::Promote && r.env.as_deref() == Some(env))
        .filter(|(_, r)| in_window(r))
        .collect();
    let rollbacks: Vec<(usize, &Record)> = all
        .iter()
        .enumerate()
        .filter(|(_, r)| r.event == EventKind::Rollback && r.env.as_deref() == Some(env))
        .collect();
    // The agent's outcomes, when any deployment here was the agent's call.
    let outcomes = if deploys
        .iter()
        .any(|(_, d)| crate::agent::decision_of(d).is_some())
    {
        crate::agent::Outcomes::open(store).ok()
    } else {
        None
    };
    let incident = |d: &Record| {
        outcomes.as_ref().is_some_and(|o| {
            crate::agent::decision_of(d).is_some_and(|dec| {
                o.current(&dec) == Some(Some(releaseops_agent::Outcome::Incident))
            })
        })
    };
    let mut lead = Vec::new();
    let mut failed = 0u64;
    let mut in_production = 0u64;
    let mut restore = Vec::new();
    let mut rework = 0u64;
    for &(i, d) in &deploys {
        let (Some(id), Some(version), Some(t)) =
            (d.bundle_id.as_deref(), d.version.as_deref(), at(d))
        else {
            continue;
        };
        if let Some(c) = created(id, version) {
            lead.push(hours(c, t));
        }
        // A rollback of this version here, before the bundle's next
        // deployment here (after that, it is that deployment's failure).
        let next = all[i + 1..]
            .iter()
            .position(|r| {
                r.is_deployment()
                    && r.env.as_deref() == Some(env)
                    && r.bundle_id.as_deref() == Some(id)
            })
            .map_or(all.len(), |k| i + 1 + k);
        if let Some((_, rb)) = rollbacks.iter().find(|(j, r)| {
            *j > i
                && *j <= next
                && r.bundle_id.as_deref() == Some(id)
                && r.from_version.as_deref() == Some(version)
        }) {
            failed += 1;
            if let Some(rt) = at(rb) {
                restore.push(hours(t, rt));
            }
        } else if incident(d) {
            failed += 1;
            in_production += 1;
        }
        let fixes_forward = rollbacks.iter().any(|(j, r)| {
            *j < i
                && r.bundle_id.as_deref() == Some(id)
                && at(r).is_some_and(|rt| (0.0..=7.0 * 24.0).contains(&hours(rt, t)))
        });
        if fixes_forward {
            rework += 1;
        }
    }
    let n = deploys.len() as u64;
    let share = |k: u64| (n > 0).then(|| (k as f64 / n as f64 * 1000.0).round() / 1000.0);
    Ok(Dora {
        env: env.to_string(),
        days,
        deployments: n,
        deployment_frequency_per_day: if days > 0.0 {
            (n as f64 / days * 1000.0).round() / 1000.0
        } else {
            0.0
        },
        lead_time_hours_median: quantile(lead.clone(), 0.5),
        lead_time_hours_p90: quantile(lead, 0.9),
        change_failure_rate: share(failed),
        failed_deployments: failed,
        failed_in_production: in_production,
        time_to_restore_hours_median: quantile(restore, 0.5),
        rework_rate: share(rework),
    })
}
