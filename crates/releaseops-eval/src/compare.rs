//! Case-by-case comparison of two runs of the same suite (a baseline and a
//! candidate), with the exact McNemar test to say whether a difference is
//! more than chance.

use serde::{Deserialize, Serialize};

use releaseops_stats::mcnemar_exact;

/// What a comparison needs from a stored report (ours or the existing tool's).
#[derive(Debug, Clone, Deserialize)]
pub struct Outcomes {
    #[serde(default)]
    pub bundle_id: String,
    #[serde(default)]
    pub bundle_version: String,
    #[serde(default)]
    pub suite_id: String,
    #[serde(default)]
    pub results: Vec<CaseOutcome>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CaseOutcome {
    pub case_id: String,
    pub passed: bool,
}

impl From<&crate::report::Report> for Outcomes {
    fn from(r: &crate::report::Report) -> Self {
        Outcomes {
            bundle_id: r.bundle_id.clone(),
            bundle_version: r.bundle_version.clone(),
            suite_id: r.suite_id.clone(),
            results: r
                .results
                .iter()
                .map(|c| CaseOutcome {
                    case_id: c.case_id.clone(),
                    passed: c.passed,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub suite: String,
    pub baseline: String,
    pub candidate: String,
    pub both_passed: u64,
    pub both_failed: u64,
    /// Passed in the baseline, fail in the candidate.
    pub regressed: Vec<String>,
    /// Failed in the baseline, pass in the candidate.
    pub improved: Vec<String>,
    /// Cases only one run has (not compared).
    pub unmatched: Vec<String>,
    pub p_value: f64,
    pub significant: bool,
    pub verdict: Change,
}

/// What a comparison concluded, spelt as reports and JSON show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Change {
    /// Significantly more cases regressed than improved.
    #[serde(rename = "regression")]
    Regression,
    /// Significantly more cases improved than regressed.
    #[serde(rename = "improvement")]
    Improvement,
    /// The difference could be chance.
    #[serde(rename = "no significant change")]
    NoSignificantChange,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Regression => "regression",
            Change::Improvement => "improvement",
            Change::NoSignificantChange => "no significant change",
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const ALPHA: f64 = 0.05;

pub fn compare(baseline: &Outcomes, candidate: &Outcomes) -> Comparison {
    let base: std::collections::HashMap<&str, bool> = baseline
        .results
        .iter()
        .map(|c| (c.case_id.as_str(), c.passed))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let (mut both_passed, mut both_failed) = (0, 0);
    let (mut regressed, mut improved, mut unmatched) = (Vec::new(), Vec::new(), Vec::new());
    for c in &candidate.results {
        seen.insert(c.case_id.as_str());
        match base.get(c.case_id.as_str()) {
            None => unmatched.push(c.case_id.clone()),
            Some(true) if c.passed => both_passed += 1,
            Some(false) if !c.passed => both_failed += 1,
            Some(true) => regressed.push(c.case_id.clone()),
            Some(false) => improved.push(c.case_id.clone()),
        }
    }
    unmatched.extend(
        baseline
            .results
            .iter()
            .filter(|c| !seen.contains(c.case_id.as_str()))
            .map(|c| c.case_id.clone()),
    );
    let p = mcnemar_exact(regressed.len() as u64, improved.len() as u64);
    let significant = p < ALPHA;
    let verdict = if significant && regressed.len() > improved.len() {
        Change::Regression
    } else if significant {
        Change::Improvement
    } else {
        Change::NoSignificantChange
    };
    Comparison {
        suite: candidate.suite_id.clone(),
        baseline: format!("{}@{}", baseline.bundle_id, baseline.bundle_version),
        candidate: format!("{}@{}", candidate.bundle_id, candidate.bundle_version),
        both_passed,
        both_failed,
        regressed,
        improved,
        unmatched,
        p_value: p,
        significant,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(v: &str, passed: &[bool]) -> Outcomes {
        Outcomes {
            bundle_id: "a".into(),
            bundle_version: v.into(),
            suite_id: "s".into(),
            results: passed
                .iter()
                .enumerate()
                .map(|(i, p)| CaseOutcome {
                    case_id: format!("c{i}"),
                    passed: *p,
                })
                .collect(),
        }
    }

    #[test]
    fn names_regressions_and_tests_significance() {
        let base = outcomes("1", &[true; 12]);
        let mut cand = vec![true; 12];
        for c in cand.iter_mut().take(7) {
            *c = false;
        }
        let r = compare(&base, &outcomes("2", &cand));
        assert_eq!(r.regressed.len(), 7);
        assert!(r.significant && r.verdict == Change::Regression, "{r:?}");
        let r = compare(
            &base,
            &outcomes(
                "2",
                &[
                    false, true, true, true, true, true, true, true, true, true, true, true,
                ],
            ),
        );
        assert_eq!((r.regressed.len(), r.significant), (1, false));
    }
}
