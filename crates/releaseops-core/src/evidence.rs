//! The evaluation evidence of one promotion, judged once and read by both the
//! eval gate and the decision agent, so they can never disagree about which
//! report counts: per suite, the newest report young enough for the
//! environment's `eval_max_age_hours`, its verdict judged again against the
//! environment's `eval_min_pass_rate` when it sets one.

use jiff::Timestamp;
use releaseops_format::environment::PromotionPolicy;
use releaseops_format::time;
use releaseops_stats::Verdict;
use releaseops_store::EvalReportInfo;

/// One suite's deciding report and what it says here.
#[derive(Debug, Clone)]
pub struct SuiteEvidence {
    pub report: EvalReportInfo,
    /// `None`: the report states no verdict this tool knows.
    pub verdict: Option<Verdict>,
    /// Why, when the verdict was judged again against the environment's bar.
    pub why: Option<String>,
}

impl SuiteEvidence {
    pub fn suite(&self) -> &str {
        &self.report.suite_id
    }
}

/// What the stored reports of a bundle hash say to one environment.
#[derive(Debug, Clone, Default)]
pub struct EvalEvidence {
    /// Per suite, in the order the suites first appear, the deciding report.
    pub suites: Vec<SuiteEvidence>,
    /// Reports ignored because they are older than the age limit.
    pub stale_reports: usize,
    /// Suites with reports, none of them young enough to count.
    pub stale_suites: Vec<String>,
}

impl EvalEvidence {
    pub fn suite(&self, name: &str) -> Option<&SuiteEvidence> {
        self.suites.iter().find(|s| s.suite() == name)
    }
}

/// Judges `reports` (of one bundle hash) for an environment with `policy`.
pub fn judge(
    reports: &[EvalReportInfo],
    policy: Option<&PromotionPolicy>,
    now: Timestamp,
) -> EvalEvidence {
    let oldest_ok = policy.and_then(|p| p.eval_max_age_hours).and_then(|h| {
        jiff::SignedDuration::try_from_secs_f64(h * 3600.0)
            .ok()
            .and_then(|d| now.checked_sub(d).ok())
    });
    let fresh = |r: &EvalReportInfo| match oldest_ok {
        None => true,
        Some(limit) => r
            .timestamp
            .as_deref()
            .and_then(|t| time::parse(t).ok())
            .is_some_and(|t| t >= limit),
    };
    let (young, old): (Vec<&EvalReportInfo>, Vec<&EvalReportInfo>) =
        reports.iter().partition(|r| fresh(r));
    let suites: Vec<SuiteEvidence> = newest_per_suite(young)
        .into_iter()
        .map(|r| {
            let (verdict, why) = effective_verdict(r, policy);
            SuiteEvidence {
                report: r.clone(),
                verdict,
                why,
            }
        })
        .collect();
    let mut stale_suites: Vec<String> = Vec::new();
    for r in &old {
        let suite = &r.suite_id;
        if !suites.iter().any(|s| s.suite() == suite) && !stale_suites.contains(suite) {
            stale_suites.push(suite.clone());
        }
    }
    EvalEvidence {
        suites,
        stale_reports: old.len(),
        stale_suites,
    }
}

/// The newest of `reports` per suite, in the order the suites first appear.
pub fn newest_per_suite<'a>(
    reports: impl IntoIterator<Item = &'a EvalReportInfo>,
) -> Vec<&'a EvalReportInfo> {
    let mut latest: Vec<&EvalReportInfo> = Vec::new();
    for r in reports {
        match latest.iter_mut().find(|s| s.suite_id == r.suite_id) {
            Some(cur) if r.timestamp > cur.timestamp => *cur = r,
            Some(_) => {}
            None => latest.push(r),
        }
    }
    latest
}

/// A report's verdict as this environment sees it: judged again from its
/// counts against `eval_min_pass_rate` when the environment sets one,
/// otherwise the report's own verdict.
fn effective_verdict(
    r: &EvalReportInfo,
    policy: Option<&PromotionPolicy>,
) -> (Option<Verdict>, Option<String>) {
    match (
        policy.and_then(|p| p.eval_min_pass_rate),
        r.total_cases,
        r.passed_cases,
    ) {
        (Some(bar), Some(n), Some(passed)) => {
            let (v, why) = releaseops_stats::verdict(passed, n, bar, r.split_cases);
            (Some(v), Some(why))
        }
        (Some(bar), _, _) => (
            Some(Verdict::Inconclusive),
            Some(format!(
                "the report has no case counts to judge against the {:.0}% bar",
                bar * 100.0
            )),
        ),
        _ => (r.decision, None),
    }
}
