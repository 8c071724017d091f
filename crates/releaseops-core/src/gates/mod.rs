//! Gates: each yields passed, failed or pending with a reason a person can act
//! on; pending time gates say when they will pass. Pure functions over facts
//! the caller gathered under the store lock ([`crate::facts`]). One module per
//! gate: [`pipeline`], [`rejected`], [`eval`], [`approval`], [`soak`],
//! [`freeze`]; the decision agent's gate is [`crate::agent::gate`]. Which gates
//! an environment asks for is [`evaluate`].

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use releaseops_format::config::ProjectConfig;
use releaseops_format::environment::{FreezeWindow, PromotionPolicy, WEEKDAYS};
use releaseops_format::history::{Gate, GateResult, GateStatus};
use releaseops_format::manifest::BundleManifest;
use releaseops_format::review::Reviews;
use releaseops_format::time;
use releaseops_stats::Verdict;

use crate::actor_matches;

mod analysis;
mod approval;
mod eval;
mod freeze;
mod pipeline;
mod rejected;
mod soak;

pub use analysis::*;
pub use approval::*;
pub use eval::*;
pub use freeze::*;
pub use pipeline::*;
pub use rejected::*;
pub use soak::*;

#[cfg(test)]
mod tests;

fn gate(name: Gate, status: GateStatus, reason: impl Into<String>) -> GateResult {
    GateResult {
        gate: name,
        status,
        reason: reason.into(),
        passes_at: None,
    }
}

/// Human duration: `1d 2h`, `3h 5m`, `42s`.
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    let (days, hours, mins) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{secs}s")
    }
}

/// Everything the gates look at for one promotion.
pub struct Facts<'a> {
    pub manifest: &'a BundleManifest,
    /// Who created the bundle, as the history recorded it.
    pub creator: &'a str,
    pub env: &'a str,
    pub policy: Option<&'a PromotionPolicy>,
    pub config: &'a ProjectConfig,
    pub upstream: Option<&'a str>,
    /// When this version went live in the upstream environment, if it is live there.
    pub upstream_live_since: Option<Timestamp>,
    pub reviews: &'a Reviews,
    /// Per approval in `reviews` (same order): unsigned (`None`), or whether
    /// its SSH signature verifies. Checked only when a policy asks for signed
    /// approvals; empty otherwise.
    pub signatures: &'a [Option<Result<(), String>>],
    /// The stored reports for this bundle hash, judged for this environment.
    pub evals: &'a crate::evidence::EvalEvidence,
    /// With `eval_no_regression_vs`: per suite, the comparison against the
    /// newest run on the version live there (`None`: no run to compare with).
    pub regressions: &'a [(String, String, Option<releaseops_eval::compare::Comparison>)],
    /// With `requires_analysis`: the candidate's traffic against the baseline's.
    pub analysis: Option<&'a crate::facts::AnalysisEvidence>,
    pub now: Timestamp,
}

/// Every gate for a promotion, in a fixed order.
pub fn evaluate(f: &Facts<'_>) -> Vec<GateResult> {
    let mut out = vec![pipeline(f), rejected(f)];
    if let Some(p) = f.policy {
        if p.requires_eval {
            out.push(eval(f, p));
        }
        if p.requires_approval || p.min_signed_approvals > 0 {
            out.push(approval(f, p));
        }
        if p.soak_hours > 0.0 {
            out.push(soak(f, p));
        }
        if !p.freeze_windows.is_empty() {
            out.push(freeze(f, p));
        }
        if p.requires_analysis.is_some() {
            out.push(analysis(f, p));
        }
    }
    out
}
