//! Where things stand, on one screen: what runs in each stage of the
//! pipeline, and what is waiting to go there next and on what (each gate as
//! a dry-run promotion sees it: approvals missing, soak left, failing suites,
//! the agent's word).

use releaseops_format::history::{Gate, GateResult, GateStatus};
use serde::Serialize;

use crate::envs::{self, Deployed};
use crate::release::{self, PromoteRequest};
use crate::{Ctx, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The pipeline's stages in order, then any other environment.
    pub environments: Vec<StageStatus>,
    /// The history's last record when this was read.
    pub head_seq: u64,
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub env: String,
    /// Position in the pipeline (0 = first); absent when not in the pipeline.
    pub stage: Option<usize>,
    /// The stage before it, where candidates come from.
    pub upstream: Option<String>,
    pub live: Vec<Deployed>,
    /// Versions that could come here next.
    pub waiting: Vec<Waiting>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub bundle_id: String,
    pub version: String,
    /// Where it runs now (the upstream stage), or absent for a new version
    /// waiting for the first stage.
    pub from_env: Option<String>,
    /// Every gate would pass: `promote` would go through now.
    pub ready: bool,
    pub blocked_by: Vec<Gate>,
    pub gates: Vec<GateResult>,
    /// The decision agent's word (GO / NO_GO / DELAY), when the stage asks it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Why the gates could not be evaluated (a file that disagrees with the
    /// history, a bundle that does not verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What runs where and what waits where, as the verified history says.
pub fn status(ctx: &Ctx<'_>) -> Result<Status> {
    let states = {
        let _read = ctx.store.read_guard()?;
        envs::list_in(ctx.store, &ctx.store.chain_view()?, |_| true)?
    };
    status_from(ctx, states, |_| true)
}

/// One page of [`status`]: `per_page` bundles by id (every candidate's
/// gates are evaluated, so a store of a thousand bundles is read a page at
/// a time).
#[derive(Debug, Clone, Serialize)]
pub struct StatusPage {
    pub status: Status,
    /// 0-based, at most the last.
    pub page: usize,
    pub pages: usize,
    /// Bundles in all (created here, or live somewhere).
    pub total: usize,
}

pub fn status_page(ctx: &Ctx<'_>, page: usize, per_page: usize) -> Result<StatusPage> {
    let store = ctx.store;
    let per_page = per_page.max(1);
    // One read of the verified history for the ids and the page's stages.
    let (shown, states, total, pages, page) = {
        let _read = store.read_guard()?;
        let view = store.chain_view()?;
        let mut ids: std::collections::BTreeSet<String> = store.bundle_ids()?.into_iter().collect();
        for env in store.environments()? {
            ids.extend(view.state().live_in(&env).into_keys().map(str::to_string));
        }
        let total = ids.len();
        let pages = total.div_ceil(per_page).max(1);
        let page = page.min(pages - 1);
        let shown: std::collections::HashSet<String> = ids
            .into_iter()
            .skip(page * per_page)
            .take(per_page)
            .collect();
        let states = envs::list_in(store, &view, |id| shown.contains(id))?;
        (shown, states, total, pages, page)
    };
    Ok(StatusPage {
        status: status_from(ctx, states, |id| shown.contains(id))?,
        page,
        pages,
        total,
    })
}

/// The stages of `states` with what waits for each (of the bundles `wanted` keeps).
fn status_from(
    ctx: &Ctx<'_>,
    states: Vec<envs::EnvState>,
    wanted: impl Fn(&str) -> bool,
) -> Result<Status> {
    let store = ctx.store;
    let head_seq = store.history().tip()?.seq;
    let config = store.config();
    let mut out = Vec::new();
    for st in &states {
        let upstream = config.upstream_of(&st.env).map(str::to_string);
        let live_version = |id: &str| {
            st.bundles
                .iter()
                .find(|b| b.bundle_id == id)
                .map(|b| b.version.clone())
        };
        let candidates: Vec<(String, String, Option<String>)> = match (&upstream, st.stage) {
            (Some(up), _) => states
                .iter()
                .find(|s| &s.env == up)
                .map(|u| {
                    u.bundles
                        .iter()
                        .filter(|b| live_version(&b.bundle_id).as_deref() != Some(&b.version))
                        .map(|b| (b.bundle_id.clone(), b.version.clone(), Some(up.clone())))
                        .collect()
                })
                .unwrap_or_default(),
            // The first stage waits for each bundle's newest version.
            (None, Some(0)) => {
                let mut c = Vec::new();
                for id in store.bundle_ids()?.into_iter().filter(|i| wanted(i)) {
                    let Ok(latest) = store.latest_version(&id) else {
                        continue;
                    };
                    if live_version(&id).as_deref() != Some(&latest) {
                        c.push((id, latest, None));
                    }
                }
                c
            }
            _ => Vec::new(),
        };
        let mut waiting = Vec::new();
        for (id, version, from_env) in candidates {
            let dry = release::promote(
                ctx,
                &PromoteRequest {
                    id: id.clone(),
                    version: version.clone(),
                    env: st.env.clone(),
                    reason: None,
                    dry_run: true,
                    skip_gates: false,
                },
            );
            waiting.push(match dry {
                Ok(o) => Waiting {
                    bundle_id: id,
                    version,
                    from_env,
                    ready: o.blocked_by.is_empty(),
                    blocked_by: o.blocked_by,
                    gates: o.gates,
                    agent: o.agent_decision.map(|d| d.decision.to_string()),
                    error: None,
                },
                Err(e) => Waiting {
                    bundle_id: id,
                    version,
                    from_env,
                    ready: false,
                    blocked_by: Vec::new(),
                    gates: Vec::new(),
                    agent: None,
                    error: Some(e.to_string()),
                },
            });
        }
        out.push(StageStatus {
            env: st.env.clone(),
            stage: st.stage,
            upstream,
            live: st.bundles.clone(),
            waiting,
            problems: st.problems.clone(),
        });
    }
    Ok(Status {
        environments: out,
        head_seq,
        at: ctx.now_str(),
    })
}

/// The gates of a blocked promotion that only time will pass (soak, a
/// freeze window, an agent's DELAY), with the moment the last of them
/// passes; `None` when anything else blocks it too.
pub fn time_gates_pass_at(gates: &[GateResult], blocked_by: &[Gate]) -> Option<jiff::Timestamp> {
    let mut latest: Option<jiff::Timestamp> = None;
    for g in gates.iter().filter(|g| blocked_by.contains(&g.gate)) {
        if g.status != GateStatus::Pending {
            return None;
        }
        let at = g.passes_at.as_deref()?.parse::<jiff::Timestamp>().ok()?;
        latest = Some(latest.map_or(at, |l| l.max(at)));
    }
    latest
}
