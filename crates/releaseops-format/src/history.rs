//! The audit history: one JSON object per line, each carrying the hash of the
//! line before it, so any edited, removed or reordered record breaks the chain.
//! Also the existing tool's `promotion_history.yaml` (read only, to import it)
//! and the per-environment deployment index derived from the history.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::FormatError;
use crate::yaml::StrictString;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    BundleCreate,
    Promote,
    Rollback,
    Approve,
    Reject,
    EnvCreate,
    /// An environment's promotion policy changed (`releaseops env set`).
    EnvPolicy,
    EvalRun,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::BundleCreate => "bundle_create",
            EventKind::Promote => "promote",
            EventKind::Rollback => "rollback",
            EventKind::Approve => "approve",
            EventKind::Reject => "reject",
            EventKind::EnvCreate => "env_create",
            EventKind::EnvPolicy => "env_policy",
            EventKind::EvalRun => "eval_run",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        [
            EventKind::BundleCreate,
            EventKind::Promote,
            EventKind::Rollback,
            EventKind::Approve,
            EventKind::Reject,
            EventKind::EnvCreate,
            EventKind::EnvPolicy,
            EventKind::EvalRun,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A promotion gate, as history records and JSON name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// The version is live in the previous stage of the pipeline.
    Pipeline,
    /// Nobody rejected this bundle hash for this environment.
    Rejected,
    /// The required evaluation suites passed on this exact content.
    Eval,
    /// Enough of the right people approved this bundle hash.
    Approval,
    /// The version has run long enough in the previous stage.
    Soak,
    /// No freeze window of the environment is active.
    Freeze,
    /// The release decision agent's GO / NO_GO / DELAY.
    Agent,
    /// Canary analysis: the candidate's traffic upstream is not
    /// significantly worse than the baseline environment's.
    Analysis,
}

impl Gate {
    pub const ALL: [Gate; 8] = [
        Gate::Pipeline,
        Gate::Rejected,
        Gate::Eval,
        Gate::Approval,
        Gate::Soak,
        Gate::Freeze,
        Gate::Agent,
        Gate::Analysis,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Pipeline => "pipeline",
            Gate::Rejected => "rejected",
            Gate::Eval => "eval",
            Gate::Approval => "approval",
            Gate::Soak => "soak",
            Gate::Freeze => "freeze",
            Gate::Agent => "agent",
            Gate::Analysis => "analysis",
        }
    }

    pub fn parse(s: &str) -> Option<Gate> {
        Gate::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// The names of `gates`, joined by `sep`.
    pub fn join(gates: &[Gate], sep: &str) -> String {
        gates
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// Whether `--skip-gates` may bypass it: never the pipeline order nor a
    /// rejection.
    pub fn overridable(self) -> bool {
        !matches!(self, Gate::Pipeline | Gate::Rejected)
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Passed,
    Failed,
    Pending,
}

impl GateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Passed => "passed",
            GateStatus::Failed => "failed",
            GateStatus::Pending => "pending",
        }
    }
}

/// One gate's verdict on one promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub gate: Gate,
    pub status: GateStatus,
    pub reason: String,
    /// For time gates that are pending: when the gate will pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes_at: Option<String>,
}

/// Records per history segment file (`history/<n>.jsonl`): record `seq`
/// lives in segment `(seq - 1) / SEGMENT_RECORDS`.
pub const SEGMENT_RECORDS: u64 = 1000;

/// One history record. Field order is the serialisation order, and the line's
/// bytes are what the next record's `prev` hashes, so the order is part of the
/// format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// `sha256:` of the previous line's bytes; absent on the first record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    pub at: String,
    pub event: EventKind,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_hash: Option<String>,
    /// Target environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Upstream environment the version came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_env: Option<String>,
    /// Version that was live in `env` before this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    /// DRAFT, CANDIDATE, STAGED, PROD or ROLLED_BACK, as the existing tool names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
    /// True when gates were bypassed with `--skip-gates`.
    #[serde(default, rename = "override", skip_serializing_if = "is_false")]
    pub overridden: bool,
    /// Imported from the existing tool's `promotion_history.yaml`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub imported: bool,
    /// Written with a hand-set clock (RELEASEOPS_NOW): its time, and the time
    /// gates measured against, were not the real time.
    #[serde(default, skip_serializing_if = "is_false")]
    pub simulated_clock: bool,
    /// On `eval_run`: the report saved, with its digest, so the eval gate
    /// accepts that file and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportEvidence>,
    /// On `approve`: the approver's SSH signature over the approval
    /// (`ssh-keygen -Y sign`, armored), when they signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Written in a rehearsal store (`init --rehearsal`), not production.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rehearsal: bool,
}

/// What an `eval_run` record says about the report it saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportEvidence {
    /// Relative to `.releaseops/`.
    pub path: String,
    /// `sha256:` of the report file's bytes.
    pub digest: String,
    pub suite: String,
    /// A run of part of the suite (a `--tag` filter, or interrupted): kept
    /// for people, never counted by a gate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub partial: bool,
    /// `sha256:` of the suite file the run read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_digest: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Record {
    pub fn new(event: EventKind, at: String, actor: String) -> Self {
        Record {
            seq: 0,
            prev: None,
            at,
            event,
            actor,
            bundle_id: None,
            version: None,
            bundle_hash: None,
            env: None,
            from_env: None,
            from_version: None,
            state: None,
            reason: None,
            gates: Vec::new(),
            overridden: false,
            imported: false,
            simulated_clock: false,
            report: None,
            signature: None,
            rehearsal: false,
        }
    }

    /// The canonical line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse_line(line: &str) -> Result<Self, FormatError> {
        serde_json::from_str(line)
            .map_err(|e| FormatError::Parse(format!("bad history record: {e}")))
    }

    /// Changes which version is live in which environment.
    pub fn is_deployment(&self) -> bool {
        matches!(self.event, EventKind::Promote | EventKind::Rollback)
    }
}

/// The existing tool's state name for an environment (its `ENV_TO_STATE`,
/// with `candidate`/`canary` as CANDIDATE rather than its DRAFT fallback).
pub fn state_for_env(env: &str, is_last: bool) -> &'static str {
    match env {
        "dev" | "development" => "DRAFT",
        "staging" | "stage" => "STAGED",
        "prod" | "production" => "PROD",
        "candidate" | "canary" => "CANDIDATE",
        _ if is_last => "PROD",
        _ => "CANDIDATE",
    }
}

// ---------------------------------------------------------------------------
// The existing tool's promotion_history.yaml

#[derive(Debug, Deserialize)]
pub struct LegacyHistory {
    #[serde(default)]
    pub records: Option<Vec<LegacyRecord>>,
}

#[derive(Debug, Deserialize)]
pub struct LegacyRecord {
    pub bundle_id: StrictString,
    pub version: StrictString,
    #[serde(default)]
    pub from_env: Option<String>,
    pub to_env: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub promoted_by: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub is_rollback: Option<bool>,
    #[serde(default)]
    pub rolled_back_from: Option<StrictString>,
    #[serde(default)]
    pub gate_results: Option<Vec<LegacyGate>>,
}

#[derive(Debug, Deserialize)]
pub struct LegacyGate {
    /// The existing tool writes `eval`, `approval` or `soak`.
    pub gate_type: Gate,
    pub passed: bool,
    #[serde(default)]
    pub details: Option<String>,
}

impl LegacyHistory {
    /// Parses and validates: every name that will become part of a path
    /// (bundle ids, versions, environments) must be a valid name.
    pub fn parse(bytes: &[u8]) -> Result<Vec<LegacyRecord>, FormatError> {
        let h: LegacyHistory = crate::yaml::from_bytes(bytes)?;
        let records = h.records.unwrap_or_default();
        for (i, r) in records.iter().enumerate() {
            let at = |e: FormatError| FormatError::Invalid(format!("records[{i}]: {e}"));
            crate::names::validate_bundle_id(&r.bundle_id).map_err(at)?;
            crate::names::validate_version(&r.version).map_err(at)?;
            crate::names::validate_env_name(&r.to_env).map_err(at)?;
            if let Some(f) = &r.from_env {
                crate::names::validate_env_name(f).map_err(at)?;
            }
            if let Some(v) = &r.rolled_back_from {
                crate::names::validate_version(v).map_err(at)?;
            }
        }
        Ok(records)
    }
}

impl LegacyRecord {
    /// The record in our format (without seq and chain, which the log assigns).
    pub fn to_record(&self) -> Record {
        let rollback = self.is_rollback.unwrap_or(false);
        let mut r = Record::new(
            if rollback {
                EventKind::Rollback
            } else {
                EventKind::Promote
            },
            self.timestamp.clone().unwrap_or_default(),
            self.promoted_by.clone().unwrap_or_else(|| "cli".into()),
        );
        r.bundle_id = Some(self.bundle_id.0.clone());
        r.version = Some(self.version.0.clone());
        r.env = Some(self.to_env.clone());
        r.from_env = if rollback {
            None
        } else {
            self.from_env.clone()
        };
        r.from_version = self.rolled_back_from.as_ref().map(|v| v.0.clone());
        r.state = self.state.clone();
        r.reason = self.reason.clone();
        r.imported = true;
        r.gates = self
            .gate_results
            .iter()
            .flatten()
            .map(|g| GateResult {
                gate: g.gate_type,
                status: if g.passed {
                    GateStatus::Passed
                } else {
                    GateStatus::Failed
                },
                reason: g.details.clone().unwrap_or_default(),
                passes_at: None,
            })
            .collect();
        r
    }
}

// ---------------------------------------------------------------------------
// Deployment index: `.releaseops/deployments/<env>/<bundle>.yaml`

/// One bundle's deployment stack in one environment: the file the index is
/// made of, so a promotion rewrites one small file however many bundles and
/// records there are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentStack {
    pub environment: String,
    pub bundle: String,
    #[serde(default)]
    pub stack: Vec<Deployment>,
}

impl DeploymentStack {
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        crate::yaml::from_bytes_plain(bytes)
    }

    /// The file's text: what the generic emitter writes for this struct
    /// (a test holds them equal), without building a tree first, since a
    /// page of a large store renders a hundred of these to compare with the
    /// files.
    pub fn to_yaml(&self) -> String {
        use crate::yaml::quote;
        use std::fmt::Write;
        let mut out = String::with_capacity(64 + 64 * self.stack.len());
        let _ = writeln!(out, "environment: {}", quote(&self.environment));
        let _ = writeln!(out, "bundle: {}", quote(&self.bundle));
        if self.stack.is_empty() {
            out.push_str("stack: []\n");
        } else {
            out.push_str("stack:\n");
        }
        for d in &self.stack {
            let _ = writeln!(
                out,
                "- version: {}\n  since: {}\n  seq: {}",
                quote(&d.version),
                quote(&d.since),
                d.seq
            );
        }
        out
    }

    pub fn apply(&mut self, rec: &Record) {
        let Some(version) = &rec.version else { return };
        let entry = Deployment {
            version: version.clone(),
            since: rec.at.clone(),
            seq: rec.seq,
        };
        apply_to_stack(&mut self.stack, rec.event, entry, |d| d.version == *version);
    }
}

/// For one environment: per bundle, the stack of versions that were deployed
/// and are still "underneath" the live one. A promotion pushes; a rollback pops
/// back to its target. The top is what runs now, and `since` on it is when it
/// went live (what the soak gate measures).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployments {
    pub environment: String,
    #[serde(default)]
    pub bundles: IndexMap<String, Vec<Deployment>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub version: String,
    pub since: String,
    pub seq: u64,
}

impl Deployments {
    pub fn live(&self, bundle: &str) -> Option<&Deployment> {
        self.bundles.get(bundle).and_then(|s| s.last())
    }

    /// Applies one deployment record (promote or rollback) for this environment.
    pub fn apply(&mut self, rec: &Record) {
        let (Some(bundle), Some(version)) = (&rec.bundle_id, &rec.version) else {
            return;
        };
        let stack = self.bundles.entry(bundle.clone()).or_default();
        let entry = Deployment {
            version: version.clone(),
            since: rec.at.clone(),
            seq: rec.seq,
        };
        apply_to_stack(stack, rec.event, entry, |d| d.version == *version);
    }
}

/// How many earlier deployments per bundle and environment are kept as
/// rollback targets. Bounding it keeps every promotion's cost independent of
/// how long the history is; older versions are still in the history and can
/// be promoted again.
pub const STACK_DEPTH: usize = 32;

/// The one rule for the deployment stack, shared by the index and by
/// `history verify`'s replay: a promotion pushes (dropping the oldest beyond
/// [`STACK_DEPTH`]); a rollback pops back to its target, or, for a
/// roll-forward the existing tool allowed, replaces the top.
pub fn apply_to_stack<T>(
    stack: &mut Vec<T>,
    event: EventKind,
    entry: T,
    is_target: impl Fn(&T) -> bool,
) {
    match event {
        EventKind::Promote => {
            stack.push(entry);
            if stack.len() > STACK_DEPTH {
                stack.drain(..stack.len() - STACK_DEPTH);
            }
        }
        EventKind::Rollback => {
            if let Some(pos) = stack.iter().rposition(is_target) {
                stack.truncate(pos);
            } else {
                stack.pop();
            }
            stack.push(entry);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_line_round_trip_and_field_order() {
        let mut r = Record::new(
            EventKind::Promote,
            "2026-11-21T00:00:00+00:00".into(),
            "ci".into(),
        );
        r.seq = 7;
        r.prev = Some("sha256:00".into());
        r.bundle_id = Some("a".into());
        r.overridden = true;
        let line = r.to_line();
        assert!(
            line.starts_with(r#"{"seq":7,"prev":"sha256:00","at":"#),
            "{line}"
        );
        assert!(line.contains(r#""override":true"#));
        assert_eq!(Record::parse_line(&line).unwrap(), r);
    }

    #[test]
    fn rollback_walks_the_real_sequence() {
        let mut d = Deployments {
            environment: "prod".into(),
            ..Default::default()
        };
        let mk = |ev, v: &str, seq| {
            let mut r = Record::new(ev, format!("t{seq}"), "x".into());
            r.seq = seq;
            r.bundle_id = Some("b".into());
            r.version = Some(v.into());
            r
        };
        for (i, v) in ["1.0.0", "1.1.0", "1.2.0"].iter().enumerate() {
            d.apply(&mk(EventKind::Promote, v, i as u64 + 1));
        }
        d.apply(&mk(EventKind::Rollback, "1.1.0", 4));
        assert_eq!(d.live("b").unwrap().version, "1.1.0");
        let versions: Vec<_> = d.bundles["b"].iter().map(|x| x.version.as_str()).collect();
        assert_eq!(versions, ["1.0.0", "1.1.0"]);
        d.apply(&mk(EventKind::Rollback, "1.0.0", 5));
        assert_eq!(d.bundles["b"].len(), 1);
    }
}
