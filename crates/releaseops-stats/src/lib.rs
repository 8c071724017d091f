//! Statistics honest enough to gate a release: a Wilson score interval for the
//! pass rate, a verdict that says INCONCLUSIVE when the evidence cannot tell
//! whether the true pass rate clears the bar, and the exact McNemar test for
//! two runs of the same cases. Pure functions with no I/O and no runtime, so
//! the evaluation engine, the store and the decision agent share them without
//! pulling in each other's weight.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod compare;

use serde::{Deserialize, Serialize};

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval for `passed` successes out of `n`.
pub fn wilson(passed: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = passed as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// An evaluation's verdict, as reports and history records spell it. A
/// report that states none counts as inconclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Fail,
    #[default]
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }

    /// The verdict a report or record spells `s`, if it is one.
    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "PASS" => Some(Verdict::Pass),
            "FAIL" => Some(Verdict::Fail),
            "INCONCLUSIVE" => Some(Verdict::Inconclusive),
            _ => None,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict and why:
///
/// - every case passed every repeat: PASS, whatever the bar;
/// - otherwise the 95 % Wilson interval of the pass rate, widened by the
///   split cases (repeats that disagreed, which could have gone either
///   way), decides: PASS when it lies at or above the bar, FAIL when it lies
///   at or below it, and INCONCLUSIVE when the bar falls inside it (too few
///   cases, or too noisy an agent or judge, to tell);
/// - no cases at all: INCONCLUSIVE.
///
/// So a lower bar never gives a worse verdict than a higher one on the same
/// results.
pub fn verdict(passed: u64, n: u64, threshold: f64, split_cases: u64) -> (Verdict, String) {
    let bar = format!("{}%", percent(threshold));
    if n == 0 {
        return (Verdict::Inconclusive, "no cases ran".into());
    }
    if passed >= n && split_cases == 0 {
        return (
            Verdict::Pass,
            format!("all {n} cases passed, clearing the {bar} threshold"),
        );
    }
    let split = split_cases.min(n);
    let (lo, _) = wilson(passed.saturating_sub(split), n, Z95);
    let (_, hi) = wilson((passed + split).min(n), n, Z95);
    let rate = passed as f64 / n as f64;
    let noisy = if split > 0 {
        format!(", {split} split across repeats")
    } else {
        String::new()
    };
    let ci = format!(
        "{:.1}% (95% CI {:.1}%-{:.1}%{noisy})",
        rate * 100.0,
        lo * 100.0,
        hi * 100.0
    );
    if lo >= threshold {
        (
            Verdict::Pass,
            format!("pass rate {ci} clears the {bar} threshold"),
        )
    } else if hi <= threshold {
        (
            Verdict::Fail,
            format!("pass rate {ci} is below the {bar} threshold"),
        )
    } else {
        (
            Verdict::Inconclusive,
            format!(
                "pass rate {ci} straddles the {bar} threshold: run more cases{}",
                if split > 0 {
                    ", or make the agent or judge steadier"
                } else {
                    " or repeats"
                }
            ),
        )
    }
}

/// A threshold as a percentage without a spurious ".0" (95, 99.5).
fn percent(t: f64) -> String {
    let p = (t * 1000.0).round() / 10.0;
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-4
    }

    #[test]
    fn wilson_matches_published_values() {
        // Reference values (Newcombe 1998; Wilson 1927), 95 %.
        let (lo, hi) = wilson(4, 5, Z95);
        assert!(close(lo, 0.3755) && close(hi, 0.9638), "{lo} {hi}");
        let (lo, hi) = wilson(81, 263, Z95);
        assert!(close(lo, 0.2553) && close(hi, 0.3662), "{lo} {hi}");
        let (lo, hi) = wilson(0, 10, Z95);
        assert!(close(lo, 0.0) && close(hi, 0.2775), "{lo} {hi}");
        let (lo, hi) = wilson(10, 10, Z95);
        assert!(close(lo, 0.7225) && close(hi, 1.0), "{lo} {hi}");
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(4, 5, 0.8, 0).0, Verdict::Inconclusive);
        assert_eq!(verdict(100, 100, 1.0, 0).0, Verdict::Pass);
        assert_eq!(verdict(99, 100, 1.0, 0).0, Verdict::Fail);
        assert_eq!(verdict(200, 200, 0.95, 0).0, Verdict::Pass);
        assert_eq!(verdict(10, 200, 0.95, 0).0, Verdict::Fail);
        assert_eq!(verdict(6, 10, 0.5, 5).0, Verdict::Inconclusive);
        assert_eq!(verdict(0, 0, 0.5, 0).0, Verdict::Inconclusive);
        // Every case passed: PASS at any bar (the scaffold's first run).
        for t in [0.0, 0.5, 0.95, 1.0] {
            assert_eq!(verdict(4, 4, t, 0).0, Verdict::Pass, "{t}");
            assert_eq!(verdict(1, 1, t, 0).0, Verdict::Pass, "{t}");
        }
        // Repeats that disagreed are not "every repeat passed".
        assert_ne!(verdict(4, 4, 0.95, 1).0, Verdict::Pass);
    }

    #[test]
    fn the_readme_table_holds() {
        use Verdict::{Fail as F, Inconclusive as I, Pass as P};
        // (passed, n, split) -> verdicts at bars 0.5, 0.8, 0.95, 1.0
        let rows = [
            ((1, 1, 0), [P, P, P, P]),
            ((4, 4, 0), [P, P, P, P]),
            ((19, 20, 0), [P, I, I, F]),
            ((99, 100, 0), [P, P, I, F]),
            ((60, 100, 0), [P, F, F, F]),
            ((12, 20, 0), [I, F, F, F]),
            ((18, 20, 4), [I, I, I, F]),
        ];
        for ((passed, n, split), want) in rows {
            let got: Vec<Verdict> = [0.5, 0.8, 0.95, 1.0]
                .iter()
                .map(|t| verdict(passed, n, *t, split).0)
                .collect();
            assert_eq!(got, want, "{passed}/{n} split {split}");
        }
    }

    #[test]
    fn a_lower_bar_never_gives_a_worse_verdict() {
        let rank = |v: Verdict| match v {
            Verdict::Fail => 0,
            Verdict::Inconclusive => 1,
            Verdict::Pass => 2,
        };
        for n in 1..=40u64 {
            for passed in 0..=n {
                for split in [0, 1, n / 3] {
                    let mut last = 2;
                    for step in 0..=100 {
                        let t = step as f64 / 100.0;
                        let r = rank(verdict(passed, n, t, split).0);
                        assert!(r <= last, "{passed}/{n} split {split} at {t}");
                        last = r;
                    }
                }
            }
        }
    }
}

/// The exact (binomial) McNemar test, two-sided: `b` cases passed before and
/// fail now, `c` failed before and pass now. The p-value is the chance of a
/// split at least this lopsided if neither version were better.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // Sum C(n, i) / 2^n for i in 0..=k, in log space (n can be large).
    let ln2n = n as f64 * std::f64::consts::LN_2;
    let mut ln_choose = 0.0f64;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_choose - ln2n);
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

#[cfg(test)]
mod mcnemar_tests {
    use super::*;

    #[test]
    fn exact_p_values() {
        // Hand-computed binomial tails: 2 * sum_{i<=min} C(n,i) / 2^n.
        assert!((mcnemar_exact(1, 6) - 0.125).abs() < 1e-12);
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        assert!((mcnemar_exact(2, 12) - 212.0 / 16384.0).abs() < 1e-12);
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Large n stays finite: 400 vs 600 is overwhelmingly significant.
        let p = mcnemar_exact(400, 600);
        assert!(p > 0.0 && p < 1e-9, "{p}");
    }
}
