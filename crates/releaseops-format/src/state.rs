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
use std::sync::Arc;

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

/// The maps hold their per-bundle parts behind [`Arc`], so a clone shares
/// them and a record applied to the clone copies only the part it changes
/// (a view of a million records is extended by a new one without copying
/// the rest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChainState {
    /// id -> version -> what its bundle_create record says.
    #[serde(default)]
    pub bundles: BTreeMap<String, Arc<BTreeMap<String, BundleFact>>>,
    /// env -> bundle -> deployment stack (top = live).
    #[serde(default)]
    pub deployments: BTreeMap<String, BTreeMap<String, Arc<Vec<Deployment>>>>,
    /// id -> version -> approvals, rejections and failed releases.
    #[serde(default)]
    pub reviews: BTreeMap<String, Arc<BTreeMap<String, Reviews>>>,
    /// bundle hash (hex, no prefix) -> the eval reports recorded for it.
    #[serde(default)]
    pub evals: BTreeMap<String, Arc<Vec<EvalFact>>>,
    /// Records not written in rehearsal: a store with any is production.
    #[serde(default)]
    pub production_records: u64,
    /// Records written with a simulated clock outside a rehearsal (only
    /// versions before rehearsals existed, or a hand edit, make them).
    #[serde(default)]
    pub simulated_outside_rehearsal: Vec<u64>,
}

impl ChainState {
    /// Applies one record, in history order.
    pub fn apply(&mut self, r: &Record) {
        self.apply_owned(r.clone());
    }

    /// As [`ChainState::apply`], moving the record's strings into the state
    /// (a million records fold without copying them again).
    pub fn apply_owned(&mut self, r: Record) {
        let Record {
            seq,
            at,
            event,
            actor,
            bundle_id,
            version,
            bundle_hash,
            env,
            from_version,
            state,
            reason,
            imported,
            report,
            signature,
            rehearsal,
            simulated_clock,
            ..
        } = r;
        if !rehearsal {
            self.production_records += 1;
            if simulated_clock {
                self.simulated_outside_rehearsal.push(seq);
            }
        }
        let (Some(id), Some(version)) = (bundle_id, version) else {
            return;
        };
        match event {
            EventKind::BundleCreate => {
                shared(&mut self.bundles, &id).insert(
                    version,
                    BundleFact {
                        seq,
                        actor,
                        imported,
                        hash: bundle_hash,
                    },
                );
            }
            EventKind::Promote | EventKind::Rollback => {
                let Some(env) = env else { return };
                let stack = shared(entry(&mut self.deployments, &env), &id);
                if event == EventKind::Promote {
                    // The common case, by far: moved in, nothing copied.
                    let top = Deployment {
                        version,
                        since: at,
                        seq,
                    };
                    apply_to_stack(stack, event, top, |_| false);
                    return;
                }
                let top = Deployment {
                    version: version.clone(),
                    since: at.clone(),
                    seq,
                };
                apply_to_stack(stack, event, top, |d| d.version == version);
                // The version rolled back from failed there (the existing
                // tool kept no such index, so its imported rollbacks add none).
                if event == EventKind::Rollback
                    && !imported
                    && let Some(from) = from_version
                {
                    self.reviews_mut(&id, &from).failures.push(Failure {
                        env,
                        actor,
                        at,
                        rolled_back_to: version,
                        reason,
                    });
                }
            }
            EventKind::Approve => {
                let Some(env) = env else { return };
                self.reviews_mut(&id, &version).approvals.push(Approval {
                    env,
                    actor,
                    at,
                    comment: reason,
                    signature,
                });
            }
            EventKind::Reject => {
                self.reviews_mut(&id, &version).rejections.push(Rejection {
                    env,
                    actor,
                    at,
                    reason: reason.unwrap_or_default(),
                });
            }
            EventKind::EvalRun => {
                let (Some(report), Some(hash)) = (report, bundle_hash) else {
                    return;
                };
                shared(&mut self.evals, crate::hash::hex_part(&hash)).push(EvalFact {
                    seq,
                    at,
                    bundle_id: id,
                    version,
                    bundle_hash: hash,
                    verdict: state.unwrap_or_default(),
                    report,
                });
            }
            EventKind::EnvCreate | EventKind::EnvPolicy => {}
        }
    }

    fn reviews_mut(&mut self, id: &str, version: &str) -> &mut Reviews {
        entry(shared(&mut self.reviews, id), version)
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
            .map(|s| s.as_slice())
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
            .map(|f| f.as_slice())
            .unwrap_or(&[])
    }

    /// A rehearsal store: the config says so and no record says otherwise.
    pub fn is_rehearsal(&self, config: &crate::config::ProjectConfig) -> bool {
        config.rehearsal && self.production_records == 0
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

/// The value under `key`, made when missing; the key is copied only then.
fn entry<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// As [`entry`], for a part that clones share: it is copied first when
/// another clone still holds it.
fn shared<'m, V: Default + Clone>(map: &'m mut BTreeMap<String, Arc<V>>, key: &str) -> &'m mut V {
    Arc::make_mut(entry(map, key))
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
