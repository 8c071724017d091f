//! The facts of one promotion, gathered once, under the store's lock, from
//! the verified history and the files that agree with it: the verified
//! manifest, the environment and its policy, what is live where, the
//! reviews, the evaluation evidence, the regression checks. The gates, the
//! decision agent's context and the history record all read this one set,
//! so none of them can see a different store than the others did.

use std::sync::Arc;

use jiff::Timestamp;
use releaseops_eval::compare::Comparison;
use releaseops_format::config::ProjectConfig;
use releaseops_format::environment::{EnvironmentFile, PromotionPolicy};
use releaseops_format::manifest::BundleManifest;
use releaseops_format::review::Reviews;
use releaseops_store::view::ChainView;
use releaseops_store::{EvalReportInfo, Store};

use crate::Result;
use crate::evidence::{self, EvalEvidence};
use crate::gates::Facts;
use releaseops_store::StoreError;

use crate::CoreError;

/// Per suite: the suite, the base version compared with, and the comparison
/// (`None`: no run on the base version to compare with).
pub type RegressionCheck = (String, String, Option<Comparison>);

/// The canary analysis's reading of production traffic.
#[derive(Debug)]
pub struct AnalysisEvidence {
    /// The version of this bundle live in the baseline environment.
    pub baseline_version: Option<String>,
    /// The comparison, or why the traffic could not be read.
    pub comparison: std::result::Result<releaseops_traces::analytics::Comparison, String>,
}

/// Where a repository keeps its traces (`traces:` in config.yaml,
/// RELEASEOPS_TRACES_DATABASE overriding the database).
pub fn trace_settings(store: &Store) -> releaseops_traces::Settings {
    let c = &store.config().traces;
    releaseops_traces::Settings::new(
        store.dir(),
        c.database.as_deref(),
        c.capture_content,
        c.retention_days(),
    )
}

/// Opens the repository's trace store, refusing an embedded one that git
/// tracks: a committed store would be replaced, traffic and all, by
/// whoever pushes a commit, and a checkout would overwrite the real one.
pub fn open_traces(
    store: &Store,
) -> std::result::Result<releaseops_traces::TraceStore, releaseops_traces::TraceError> {
    check_trace_store(store)?;
    trace_settings(store).open()
}

/// The check [`open_traces`] makes, for callers that open the store
/// themselves (the server).
pub fn check_trace_store(store: &Store) -> std::result::Result<(), releaseops_traces::TraceError> {
    let settings = trace_settings(store);
    if let (releaseops_traces::Location::Sqlite(path), Some(git)) =
        (&settings.location, store.git())
        && let Ok(inside) = path.strip_prefix(store.dir())
    {
        // The path as git names it: the store's prefix from the top, then
        // the file inside `.releaseops/`.
        let rel = format!(
            "{}{}/{}",
            store.root_git_prefix(),
            releaseops_store::DIR_NAME,
            inside.to_string_lossy()
        );
        if git.is_tracked(&rel) {
            return Err(releaseops_traces::TraceError::Store(format!(
                "{rel} is committed to git: a trace store in the repository can be replaced by anyone who pushes; `git rm --cached {rel}` it (it is ignored from then on)"
            )));
        }
    }
    Ok(())
}

/// Compares the candidate's traffic in `up` with what the baseline
/// environment runs, over the policy's window.
fn analysis_evidence(
    store: &Store,
    facts: &PromotionFacts,
    up: &str,
    a: &releaseops_format::environment::AnalysisPolicy,
) -> AnalysisEvidence {
    use releaseops_traces::analytics::{CompareOptions, compare_stored};
    let state = facts.view.state();
    let baseline_version = state
        .live(&a.baseline_env, &facts.id)
        .map(|d| d.version.clone());
    let Some(base) = baseline_version.clone() else {
        return AnalysisEvidence {
            baseline_version,
            comparison: Err("nothing to compare with".into()),
        };
    };
    let since = facts.now.as_nanosecond() as i64 - (a.window_hours * 3600e9) as i64;
    // The candidate's traffic in `up` is what it served since it went live
    // there: traces stamped earlier are not its canary (a token that may
    // send traces could otherwise fill the window before the release).
    let candidate_since = facts
        .upstream_live_since
        .map_or(since, |t| since.max(t.as_nanosecond() as i64));
    let filter = |version: &str, env: &str, since: i64| releaseops_traces::Filter {
        bundle_id: Some(facts.id.clone()),
        bundle_version: Some(version.to_string()),
        environment: Some(env.to_string()),
        since_ns: Some(since),
        ..releaseops_traces::Filter::default()
    };
    let opts = CompareOptions {
        alpha: a.alpha,
        min_samples: a.min_samples,
        metrics: a.metrics.clone(),
    };
    let comparison = open_traces(store)
        .and_then(|mut traces| {
            compare_stored(
                &mut traces,
                &filter(&base, &a.baseline_env, since),
                &filter(&facts.version, up, candidate_since),
                &[],
                &opts,
            )
        })
        .map_err(|e| e.to_string());
    AnalysisEvidence {
        baseline_version,
        comparison,
    }
}

/// Everything a promotion of `id@version` into `env` is decided on.
#[derive(Debug)]
pub struct PromotionFacts {
    pub id: String,
    pub version: String,
    pub env: String,
    pub config: ProjectConfig,
    pub view: Arc<ChainView>,
    /// The version's manifest, verified against the history and its objects.
    pub manifest: BundleManifest,
    pub hash: String,
    /// The target environment's file, as the history says it is.
    pub env_file: EnvironmentFile,
    /// The version of this bundle live in `env` now.
    pub live: Option<String>,
    /// The stage before `env` in the pipeline.
    pub upstream: Option<String>,
    /// When this version went live upstream, if it is live there.
    pub upstream_live_since: Option<Timestamp>,
    pub reviews: Reviews,
    /// Who created the version, as the history recorded it.
    pub creator: String,
    /// Per approval: unsigned, or whether its signature verifies (only when
    /// the policy asks for signed approvals).
    pub signatures: Vec<Option<std::result::Result<(), String>>>,
    /// The stored reports for this bundle hash (when a gate or the agent
    /// reads them).
    pub reports: Vec<EvalReportInfo>,
    pub evals: EvalEvidence,
    pub regressions: Vec<RegressionCheck>,
    /// With `requires_analysis`: the candidate's traffic against the baseline's.
    pub analysis: Option<AnalysisEvidence>,
    pub now: Timestamp,
}

/// What a caller wants gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A promotion: stop after the checks when the version is live already
    /// (nothing will change, so nothing more is read).
    Promotion,
    /// The decision agent's view, wanted even for a version that is live.
    Everything,
}

impl PromotionFacts {
    /// Gathers the facts; the caller holds the store's lock (or a read
    /// guard) and passes the view built under it.
    pub fn gather(
        store: &Store,
        view: Arc<ChainView>,
        config: ProjectConfig,
        (id, version, env): (&str, &str, &str),
        now: Timestamp,
        scope: Scope,
    ) -> Result<PromotionFacts> {
        let manifest = verified_manifest(store, &view, id, version)?;
        let env_file = view.checked_env(store, env)?;
        view.checked_stack(store, env, id)?;
        let state = view.state();
        let live = state.live(env, id).map(|d| d.version.clone());
        let hash = manifest
            .bundle_hash
            .clone()
            .unwrap_or_else(|| manifest.compute_hash());
        let mut facts = PromotionFacts {
            id: id.to_string(),
            version: version.to_string(),
            env: env.to_string(),
            creator: creator_of(&view, &manifest),
            upstream: config.upstream_of(env).map(str::to_string),
            config,
            manifest,
            hash,
            env_file,
            live,
            upstream_live_since: None,
            reviews: Reviews::default(),
            signatures: Vec::new(),
            reports: Vec::new(),
            evals: EvalEvidence::default(),
            regressions: Vec::new(),
            analysis: None,
            now,
            view,
        };
        if scope == Scope::Promotion && facts.live.as_deref() == Some(version) {
            return Ok(facts);
        }
        let view = Arc::clone(&facts.view);
        let state = view.state();
        if let Some(up) = &facts.upstream {
            view.checked_env(store, up)?;
            view.checked_stack(store, up, id)?;
            // When it went live there, as the history recorded it; a time
            // that does not parse starts the soak clock now (fail closed).
            facts.upstream_live_since = state
                .live(up, id)
                .filter(|d| d.version == version)
                .map(|d| releaseops_format::time::parse(&d.since).unwrap_or(now));
        }
        facts.reviews = view.checked_reviews(store, id, version)?;
        let policy = facts.env_file.promotion_policy.clone();
        // The eval gate or the agent reads the reports.
        let read_evals = scope == Scope::Everything
            || policy
                .as_ref()
                .is_some_and(|p| p.requires_eval || p.requires_agent.is_some());
        if read_evals {
            facts.reports = view.eval_reports(store, &facts.hash)?;
            facts.evals = evidence::judge(&facts.reports, policy.as_ref(), now);
        }
        if let Some(base) = policy
            .as_ref()
            .and_then(|p| p.eval_no_regression_vs.clone())
            .filter(|_| read_evals)
        {
            facts.regressions =
                regression_checks(store, &view, id, version, &base, &facts.reports)?;
        }
        if policy.as_ref().is_some_and(|p| p.min_signed_approvals > 0) {
            facts.signatures = signature_checks(store, &facts.manifest, &facts.reviews);
        }
        if let (Some(a), Some(up)) = (
            policy.as_ref().and_then(|p| p.requires_analysis.as_ref()),
            facts.upstream.clone(),
        ) {
            facts.analysis = Some(analysis_evidence(store, &facts, &up, a));
        }
        Ok(facts)
    }

    pub fn policy(&self) -> Option<&PromotionPolicy> {
        self.env_file.promotion_policy.as_ref()
    }

    /// The facts as the gates read them.
    pub fn gates(&self) -> Facts<'_> {
        Facts {
            manifest: &self.manifest,
            creator: &self.creator,
            env: &self.env,
            policy: self.policy(),
            config: &self.config,
            upstream: self.upstream.as_deref(),
            upstream_live_since: self.upstream_live_since,
            reviews: &self.reviews,
            signatures: &self.signatures,
            evals: &self.evals,
            regressions: &self.regressions,
            analysis: self.analysis.as_ref(),
            now: self.now,
        }
    }
}

/// Per approval of a version (in order): unsigned, or whether its signature
/// verifies against `.releaseops/allowed_signers` for the approver's email.
pub(crate) fn signature_checks(
    store: &Store,
    manifest: &BundleManifest,
    reviews: &releaseops_format::review::Reviews,
) -> Vec<Option<std::result::Result<(), String>>> {
    let md = &manifest.metadata;
    let hash = manifest
        .bundle_hash
        .clone()
        .unwrap_or_else(|| manifest.compute_hash());
    reviews
        .approvals
        .iter()
        .map(|a| {
            let sig = a.signature.as_deref()?;
            let payload = releaseops_store::signing::approval_payload(
                &md.id,
                &md.version,
                &hash,
                &a.env,
                &a.actor,
                &a.at,
                a.comment.as_deref(),
            );
            let principal = crate::Identity::parse_in(&a.actor, &store.config().identity).email;
            Some(releaseops_store::signing::verify(
                store.dir(),
                &principal,
                &payload,
                sig,
            ))
        })
        .collect()
}

/// Who created a bundle version: as the history recorded it, not as the
/// manifest (which anyone can edit) says.
pub(crate) fn creator_of(view: &ChainView, m: &BundleManifest) -> String {
    view.state()
        .bundle(&m.metadata.id, &m.metadata.version)
        .map(|b| b.actor.clone())
        .unwrap_or_else(|| m.metadata.created_by.clone())
}

/// The manifest of a version about to go live: the history must have
/// created it with exactly this hash, and every artifact must hash to what
/// the manifest says. Anything else fails closed.
pub(crate) fn verified_manifest(
    store: &Store,
    view: &ChainView,
    id: &str,
    version: &str,
) -> Result<BundleManifest> {
    let m = store.load_bundle(id, version)?;
    let hash = m.bundle_hash.clone().unwrap_or_else(|| m.compute_hash());
    let rel = format!(".releaseops/{}", Store::bundle_rel_path(id, version));
    match view.state().bundle(id, version) {
        Some(f) if f.hash.as_deref().is_some_and(|h| h != hash) => {
            return Err(StoreError::Disagrees {
                path: rel.clone().into(),
                message: format!(
                    "{rel} hashes to {hash}, but record {} created {id}@{version} as {} (the manifest was replaced outside releaseops)",
                    f.seq,
                    f.hash.as_deref().unwrap_or("-")
                ),
            }
            .into());
        }
        None if !view.legacy_pending() => {
            return Err(StoreError::Disagrees {
                path: rel.clone().into(),
                message: format!(
                    "no record in the history created {id}@{version}: {rel} was written outside releaseops"
                ),
            }
            .into());
        }
        _ => {}
    }
    let report = crate::bundle::verify_loaded(store, Some(view), &m)?;
    if !report.ok {
        return Err(CoreError::VerifyFailed {
            message: format!(
                "{id}@{version} does not verify: {}",
                report.problems.join("; ")
            ),
            hint: Some(format!(
                "nothing was changed; `releaseops bundle verify {id} {version}` shows each artifact; restore .releaseops/objects from git (`git checkout -- .releaseops/objects`)"
            )),
        });
    }
    Ok(m)
}

/// For `eval_no_regression_vs`: each suite the candidate has a report for,
/// compared with the newest recorded run of that suite on the version live
/// in `base_env` (nothing to compare when the bundle is not live there, or is
/// this very version). Only reports the history holds are compared.
pub(crate) fn regression_checks(
    store: &Store,
    view: &ChainView,
    id: &str,
    version: &str,
    base_env: &str,
    reports: &[releaseops_store::EvalReportInfo],
) -> Result<Vec<(String, String, Option<releaseops_eval::compare::Comparison>)>> {
    let Some(base_version) = view.state().live(base_env, id).map(|d| d.version.clone()) else {
        return Ok(Vec::new());
    };
    if base_version == version {
        return Ok(Vec::new());
    }
    let base_hash = match view
        .state()
        .bundle(id, &base_version)
        .and_then(|b| b.hash.clone())
    {
        Some(h) => h,
        None => {
            let m = store.load_bundle(id, &base_version)?;
            m.bundle_hash.clone().unwrap_or_else(|| m.compute_hash())
        }
    };
    let base_reports = view.eval_reports(store, &base_hash)?;
    let read = |path: &std::path::Path| -> Option<releaseops_eval::compare::Outcomes> {
        releaseops_format::yaml::from_bytes(&std::fs::read(path).ok()?).ok()
    };
    let base_newest = crate::evidence::newest_per_suite(&base_reports);
    let mut out = Vec::new();
    for cand in crate::evidence::newest_per_suite(reports) {
        let base = base_newest
            .iter()
            .find(|b| b.suite_id == cand.suite_id)
            .and_then(|b| read(&b.path));
        let cmp = match (base, read(&cand.path)) {
            (Some(b), Some(c)) => Some(releaseops_eval::compare::compare(&b, &c)),
            _ => None,
        };
        out.push((cand.suite_id.clone(), base_version.clone(), cmp));
    }
    Ok(out)
}
