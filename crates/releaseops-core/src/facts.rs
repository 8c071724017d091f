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
use crate::release::{creator_of, regression_checks, signature_checks, verified_manifest};

/// Per suite: the suite, the base version compared with, and the comparison
/// (`None`: no run on the base version to compare with).
pub type RegressionCheck = (String, String, Option<Comparison>);

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
        let agent = policy.as_ref().is_some_and(|p| p.requires_agent.is_some());
        let gated = policy.as_ref().is_some_and(|p| p.requires_eval);
        if gated || agent || scope == Scope::Everything {
            facts.reports = view.eval_reports(store, &facts.hash)?;
            facts.evals = evidence::judge(&facts.reports, policy.as_ref(), now);
        }
        if let Some(base) = policy
            .as_ref()
            .and_then(|p| p.eval_no_regression_vs.clone())
            .filter(|_| gated || agent || scope == Scope::Everything)
        {
            facts.regressions =
                regression_checks(store, &view, id, version, &base, &facts.reports)?;
        }
        if policy.as_ref().is_some_and(|p| p.min_signed_approvals > 0) {
            facts.signatures = signature_checks(store, &facts.manifest, &facts.reviews);
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
            now: self.now,
        }
    }
}
