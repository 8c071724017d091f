//! The state the history implies: which bundle versions exist with which
//! hash, what is live where (with every environment's rollback stack), who
//! approved or rejected each version, which releases failed, and which eval
//! reports were recorded, with their digests.
//!
//! This is the source of truth every gate reads. The files under
//! `environments/`, `deployments/` and `reviews/` are indexes of it, kept for
//! people, for git diffs and for the existing tool's loader; a file that
//! disagrees with this state was changed outside releaseops and is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::{
    Deployment, DeploymentStack, EventKind, Record, ReportEvidence, apply_to_stack,
};
use crate::review::{Approval, Failure, Rejection, Reviews};

/// An eval report the history holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalFact {
    pub seq: u64,
    pub at: String,
    pub bundle_id: String,
    pub version: String,
    pub bundle_hash: String,
    /// PASS, FAIL or INCONCLUSIVE, as recorded.
    pub verdict: String,
    pub report: ReportEvidence,
}

/// A bundle version the history created (or imported).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleFact {
    pub seq: u64,
    /// Who created it, as recorded (not as the manifest says).
    pub actor: String,
    /// Imported from the existing tool, which kept no copies of artifacts:
    /// they verify from their sources. Ours always have objects.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChainState {
    /// id -> version -> what its bundle_create record says.
    #[serde(default)]
    pub bundles: BTreeMap<String, BTreeMap<String, BundleFact>>,
    /// env -> bundle -> deployment stack (top = live).
    #[serde(default)]
    pub deployments: BTreeMap<String, BTreeMap<String, Vec<Deployment>>>,
    /// id -> version -> approvals, rejections and failed releases.
    #[serde(default)]
    pub reviews: BTreeMap<String, BTreeMap<String, Reviews>>,
    /// bundle hash (hex, no prefix) -> the eval reports recorded for it.
    #[serde(default)]
    pub evals: BTreeMap<String, Vec<EvalFact>>,
}

impl ChainState {
    /// Applies one record, in history order.
    pub fn apply(&mut self, r: &Record) {
        let (Some(id), Some(version)) = (r.bundle_id.as_deref(), r.version.as_deref()) else {
            return;
        };
        match r.event {
            EventKind::BundleCreate => {
                self.bundles.entry(id.to_string()).or_default().insert(
                    version.to_string(),
                    BundleFact {
                        seq: r.seq,
                        actor: r.actor.clone(),
                        imported: r.imported,
                        hash: r.bundle_hash.clone(),
                    },
                );
            }
            EventKind::Promote | EventKind::Rollback => {
                let Some(env) = r.env.as_deref() else { return };
                let stack = self
                    .deployments
                    .entry(env.to_string())
                    .or_default()
                    .entry(id.to_string())
                    .or_default();
                let entry = Deployment {
                    version: version.to_string(),
                    since: r.at.clone(),
                    seq: r.seq,
                };
                apply_to_stack(stack, r.event, entry, |d| d.version == version);
                // The version rolled back from failed there (the existing
                // tool kept no such index, so its imported rollbacks add none).
                if r.event == EventKind::Rollback
                    && !r.imported
                    && let Some(from) = r.from_version.as_deref()
                {
                    self.reviews_mut(id, from).failures.push(Failure {
                        env: env.to_string(),
                        actor: r.actor.clone(),
                        at: r.at.clone(),
                        rolled_back_to: version.to_string(),
                        reason: r.reason.clone(),
                    });
                }
            }
            EventKind::Approve => {
                let Some(env) = r.env.clone() else { return };
                self.reviews_mut(id, version).approvals.push(Approval {
                    env,
                    actor: r.actor.clone(),
                    at: r.at.clone(),
                    comment: r.reason.clone(),
                    signature: r.signature.clone(),
                });
            }
            EventKind::Reject => {
                self.reviews_mut(id, version).rejections.push(Rejection {
                    env: r.env.clone(),
                    actor: r.actor.clone(),
                    at: r.at.clone(),
                    reason: r.reason.clone().unwrap_or_default(),
                });
            }
            EventKind::EvalRun => {
                let (Some(report), Some(hash)) = (&r.report, &r.bundle_hash) else {
                    return;
                };
                self.evals
                    .entry(crate::hash::hex_part(hash).to_string())
                    .or_default()
                    .push(EvalFact {
                        seq: r.seq,
                        at: r.at.clone(),
                        bundle_id: id.to_string(),
                        version: version.to_string(),
                        bundle_hash: hash.clone(),
                        verdict: r.state.clone().unwrap_or_default(),
                        report: report.clone(),
                    });
            }
            EventKind::EnvCreate => {}
        }
    }

    fn reviews_mut(&mut self, id: &str, version: &str) -> &mut Reviews {
        self.reviews
            .entry(id.to_string())
            .or_default()
            .entry(version.to_string())
            .or_default()
    }

    /// The review state of one version (empty when the history holds none).
    pub fn reviews(&self, id: &str, version: &str) -> Reviews {
        self.reviews
            .get(id)
            .and_then(|v| v.get(version))
            .cloned()
            .unwrap_or_default()
    }

    /// One bundle's deployment stack in one environment.
    pub fn stack(&self, env: &str, bundle: &str) -> &[Deployment] {
        self.deployments
            .get(env)
            .and_then(|b| b.get(bundle))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn deployment_stack(&self, env: &str, bundle: &str) -> DeploymentStack {
        DeploymentStack {
            environment: env.to_string(),
            bundle: bundle.to_string(),
            stack: self.stack(env, bundle).to_vec(),
        }
    }

    /// What is live in one environment: bundle -> its top deployment.
    pub fn live_in(&self, env: &str) -> BTreeMap<&str, &Deployment> {
        self.deployments
            .get(env)
            .map(|b| {
                b.iter()
                    .filter_map(|(id, s)| s.last().map(|d| (id.as_str(), d)))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn live(&self, env: &str, bundle: &str) -> Option<&Deployment> {
        self.stack(env, bundle).last()
    }

    /// The eval reports recorded for a bundle hash, oldest first.
    pub fn evals_for(&self, bundle_hash: &str) -> &[EvalFact] {
        self.evals
            .get(crate::hash::hex_part(bundle_hash))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn bundle(&self, id: &str, version: &str) -> Option<&BundleFact> {
        self.bundles.get(id).and_then(|v| v.get(version))
    }

    /// Versions of one bundle the history created, in no particular order.
    pub fn versions_of(&self, id: &str) -> impl Iterator<Item = &str> {
        self.bundles
            .get(id)
            .into_iter()
            .flat_map(|m| m.keys().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, event: EventKind, id: &str, v: &str, env: Option<&str>) -> Record {
        let mut r = Record::new(event, format!("t{seq}"), "Alice <alice@x>".into());
        r.seq = seq;
        r.bundle_id = Some(id.into());
        r.version = Some(v.into());
        r.env = env.map(str::to_string);
        r
    }

    #[test]
    fn reviews_stacks_and_failures_follow_the_records() {
        let mut s = ChainState::default();
        s.apply(&rec(1, EventKind::Promote, "b", "1.0.0", Some("prod")));
        s.apply(&rec(2, EventKind::Promote, "b", "1.1.0", Some("prod")));
        let mut a = rec(3, EventKind::Approve, "b", "1.1.0", Some("prod"));
        a.reason = Some("ok".into());
        s.apply(&a);
        let mut rb = rec(4, EventKind::Rollback, "b", "1.0.0", Some("prod"));
        rb.from_version = Some("1.1.0".into());
        rb.reason = Some("spike".into());
        s.apply(&rb);
        let mut rj = rec(5, EventKind::Reject, "b", "1.1.0", None);
        rj.reason = Some("bad".into());
        s.apply(&rj);
        assert_eq!(
            s.live("prod", "b").map(|d| d.version.as_str()),
            Some("1.0.0")
        );
        assert_eq!(s.stack("prod", "b").len(), 1);
        let r = s.reviews("b", "1.1.0");
        assert_eq!(r.approvals.len(), 1);
        assert_eq!(r.approvals[0].comment.as_deref(), Some("ok"));
        assert_eq!(r.failures[0].rolled_back_to, "1.0.0");
        assert_eq!(r.rejections[0].reason, "bad");
        assert!(s.reviews("b", "1.0.0").approvals.is_empty());
    }
}
