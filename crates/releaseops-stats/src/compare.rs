//! Tests for comparing two samples from production: two versions of a
//! bundle, or what two environments run. Each answers a p-value and an
//! interval on the change, never a verdict by a percent threshold.
//!
//! - rates (errors): Fisher's exact test, and Newcombe's score interval
//!   on the difference of the two proportions;
//! - distributions (latency, tokens, cost): the Mann-Whitney U test with
//!   the Hodges-Lehmann shift and its distribution-free interval, the
//!   judge Kayenta's canary analysis uses;
//! - tail quantiles (p95, p99): how many of the candidate's samples exceed
//!   the baseline's quantile, against how many of the baseline's do
//!   (Fisher's exact test on the two counts), with an order-statistic
//!   interval on each quantile;
//! - a categorical mix (which tools are called): the chi-square test of
//!   homogeneity;
//! - many metrics at once: Holm's step-down correction.

use statrs::function::erf::{erfc, erfc_inv};
use statrs::function::gamma::{gamma_ur, ln_gamma};

use crate::{Z95, wilson};

/// Standard normal upper tail, P(Z > z).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The z with P(Z > z) = p, for 0 < p < 1.
pub fn normal_isf(p: f64) -> f64 {
    std::f64::consts::SQRT_2 * erfc_inv(2.0 * p.clamp(1e-300, 1.0 - 1e-16))
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// Fisher's exact test, two-sided, for `x1` events out of `n1` against
/// `x2` out of `n2`: the chance, were both rates equal, of a table at most
/// as likely as this one (R's `fisher.test`). Exact for any size: the
/// hypergeometric terms are summed in log space, O(min(n1, n2)).
pub fn fisher_exact(x1: u64, n1: u64, x2: u64, n2: u64) -> f64 {
    let (x1, x2) = (x1.min(n1), x2.min(n2));
    let k = x1 + x2; // events in all
    let n = n1 + n2;
    if n == 0 || k == 0 || k == n {
        return 1.0;
    }
    let lo = k.saturating_sub(n2);
    let hi = k.min(n1);
    let ln_total = ln_choose(n, k);
    let ln_p = |a: u64| ln_choose(n1, a) + ln_choose(n2, k - a) - ln_total;
    let observed = ln_p(x1);
    // Tables "as extreme" are those no more likely than the observed one
    // (with R's relative tolerance for floating-point ties).
    let cut = observed + 1e-7f64.ln_1p();
    let mut sum = 0.0f64;
    for a in lo..=hi {
        let l = ln_p(a);
        if l <= cut {
            sum += l.exp();
        }
    }
    sum.min(1.0)
}

/// Newcombe's hybrid score interval (method 10) on `p2 - p1`.
pub fn rate_difference_ci(x1: u64, n1: u64, x2: u64, n2: u64, z: f64) -> (f64, f64) {
    if n1 == 0 || n2 == 0 {
        return (-1.0, 1.0);
    }
    let p1 = x1 as f64 / n1 as f64;
    let p2 = x2 as f64 / n2 as f64;
    let (l1, u1) = wilson(x1, n1, z);
    let (l2, u2) = wilson(x2, n2, z);
    let d = p2 - p1;
    let lower = d - ((p2 - l2).powi(2) + (u1 - p1).powi(2)).sqrt();
    let upper = d + ((u2 - p2).powi(2) + (p1 - l1).powi(2)).sqrt();
    (lower.max(-1.0), upper.min(1.0))
}

/// The result of a Mann-Whitney U test of `y` (candidate) against `x`
/// (baseline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the candidate: pairs (x, y) with y > x, ties counting half.
    pub u: f64,
    /// P(Y > X) + P(Y = X) / 2: 0.5 when neither tends to be larger.
    pub effect: f64,
    pub p_value: f64,
}

/// The Mann-Whitney U test, two-sided, on sorted samples. Exact (by the
/// permutation distribution of U) for small samples without ties, and the
/// normal approximation with continuity and tie corrections otherwise.
pub fn mann_whitney(x: &[i64], y: &[i64]) -> MannWhitney {
    let (n, m) = (x.len(), y.len());
    if n == 0 || m == 0 {
        return MannWhitney {
            u: 0.0,
            effect: 0.5,
            p_value: 1.0,
        };
    }
    debug_assert!(x.is_sorted() && y.is_sorted());
    // Ranks by a merge of the two sorted samples, ties taking their mean.
    let mut rank_sum_y = 0.0f64;
    let mut tie_term = 0.0f64; // sum over tie groups of t^3 - t
    let (mut i, mut j, mut pos) = (0usize, 0usize, 0usize);
    while i < n || j < m {
        let v = match (x.get(i), y.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let (si, sj) = (i, j);
        while i < n && x[i] == v {
            i += 1;
        }
        while j < m && y[j] == v {
            j += 1;
        }
        let t = (i - si) + (j - sj);
        let mean_rank = pos as f64 + (t as f64 + 1.0) / 2.0;
        rank_sum_y += mean_rank * (j - sj) as f64;
        if t > 1 {
            let t = t as f64;
            tie_term += t * t * t - t;
        }
        pos += t;
    }
    let (nf, mf) = (n as f64, m as f64);
    let u = rank_sum_y - mf * (mf + 1.0) / 2.0;
    let effect = u / (nf * mf);
    let p_value = if tie_term == 0.0 && n + m <= 60 && n * m <= 1_000 {
        exact_u_p(u.round() as usize, n, m)
    } else {
        let mean = nf * mf / 2.0;
        let total = nf + mf;
        let var = nf * mf / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
        if var <= 0.0 {
            1.0
        } else {
            let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
            (2.0 * normal_sf(z)).min(1.0)
        }
    };
    MannWhitney { u, effect, p_value }
}

/// Two-sided exact p-value of U = `u` for samples of `n` and `m` without
/// ties: the count of rank arrangements with U at least as far from its
/// mean, over all C(n + m, n).
fn exact_u_p(u: usize, n: usize, m: usize) -> f64 {
    // table[a][b][s]: arrangements of `a` baseline and `b` candidate
    // values in which the candidate's U is `s`.
    let max_u = n * m;
    let mut table = vec![vec![vec![0f64; max_u + 1]; m + 1]; n + 1];
    for a in 0..=n {
        for b in 0..=m {
            if a == 0 || b == 0 {
                table[a][b][0] = 1.0;
                continue;
            }
            for s in 0..=a * b {
                // The largest value is a candidate's (above all `a`
                // baseline values) or a baseline's (above no candidate).
                let with_y_last = if s >= a { table[a][b - 1][s - a] } else { 0.0 };
                let with_x_last = table[a - 1][b][s];
                table[a][b][s] = with_x_last + with_y_last;
            }
        }
    }
    let counts = &table[n][m];
    let total: f64 = counts.iter().sum();
    let mean = max_u as f64 / 2.0;
    let dist = (u as f64 - mean).abs();
    let tail: f64 = counts
        .iter()
        .enumerate()
        .filter(|(s, _)| (*s as f64 - mean).abs() >= dist - 1e-9)
        .map(|(_, c)| c)
        .sum();
    (tail / total).min(1.0)
}

/// The number of pairs with `y[j] - x[i] <= d`, in O(n + m) on sorted
/// samples.
fn pairs_at_most(x: &[i64], y: &[i64], d: i128) -> u128 {
    // For each y[j] (ascending), the x[i] with x[i] >= y[j] - d; as y[j]
    // grows the first such i only moves right.
    let mut count = 0u128;
    let mut i = 0usize;
    for &b in y {
        let need = b as i128 - d;
        while i < x.len() && (x[i] as i128) < need {
            i += 1;
        }
        count += (x.len() - i) as u128;
    }
    count
}

/// The `k`-th smallest (1-based) of the n·m differences `y[j] - x[i]`,
/// without forming them: a binary search on the value, counting pairs at
/// most a value in O(n + m), so O((n + m) log(range)).
pub fn kth_difference(x: &[i64], y: &[i64], k: u128) -> i128 {
    let (Some(&x0), Some(&xn), Some(&y0), Some(&yn)) = (x.first(), x.last(), y.first(), y.last())
    else {
        return 0;
    };
    let mut lo = y0 as i128 - xn as i128;
    let mut hi = yn as i128 - x0 as i128;
    while lo < hi {
        let mid = lo + (hi - lo).div_euclid(2);
        if pairs_at_most(x, y, mid) >= k {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The Hodges-Lehmann estimate of the shift from `x` to `y` (the median of
/// all differences `y - x`) and its distribution-free interval at
/// confidence `1 - alpha` (from the normal approximation to U's
/// distribution), on sorted samples.
pub fn hodges_lehmann(x: &[i64], y: &[i64], alpha: f64) -> (f64, f64, f64) {
    let (n, m) = (x.len() as u128, y.len() as u128);
    if n == 0 || m == 0 {
        return (0.0, f64::NEG_INFINITY, f64::INFINITY);
    }
    let nm = n * m;
    let median = if nm % 2 == 1 {
        kth_difference(x, y, nm / 2 + 1) as f64
    } else {
        (kth_difference(x, y, nm / 2) as f64 + kth_difference(x, y, nm / 2 + 1) as f64) / 2.0
    };
    let (nf, mf) = (n as f64, m as f64);
    let z = normal_isf(alpha / 2.0);
    let half = z * (nf * mf * (nf + mf + 1.0) / 12.0).sqrt();
    let k = ((nf * mf / 2.0 - half).floor() as i128).max(1) as u128;
    if k > nm / 2 {
        return (median, median, median);
    }
    let lower = kth_difference(x, y, k) as f64;
    let upper = kth_difference(x, y, nm - k + 1) as f64;
    (median, lower, upper)
}

/// The `q` quantile of a sorted sample (linear interpolation between the
/// closest ranks, as numpy's default).
pub fn quantile(sorted: &[i64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0] as f64,
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let i = pos.floor() as usize;
            let frac = pos - i as f64;
            let a = sorted[i] as f64;
            let b = sorted[(i + 1).min(n - 1)] as f64;
            a + (b - a) * frac
        }
    }
}

/// A distribution-free interval on the `q` quantile from order statistics
/// (the normal approximation to the binomial count below it).
pub fn quantile_ci(sorted: &[i64], q: f64, z: f64) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    let nf = n as f64;
    let half = z * (nf * q * (1.0 - q)).sqrt();
    let lo = ((nf * q - half).floor() as i64).clamp(0, n as i64 - 1) as usize;
    let hi = ((nf * q + half).ceil() as i64).clamp(0, n as i64 - 1) as usize;
    (sorted[lo] as f64, sorted[hi] as f64)
}

/// A comparison of a tail quantile: the share of each sample above the
/// baseline's `q` quantile, compared by Fisher's exact test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileTest {
    pub baseline: f64,
    pub candidate: f64,
    pub p_value: f64,
    /// An interval on candidate - baseline (the two order-statistic
    /// intervals, combined conservatively).
    pub ci: (f64, f64),
}

pub fn quantile_test(x: &[i64], y: &[i64], q: f64) -> QuantileTest {
    let baseline = quantile(x, q);
    let candidate = quantile(y, q);
    let above = |s: &[i64]| (s.len() - s.partition_point(|&v| (v as f64) <= baseline)) as u64;
    let p_value = fisher_exact(above(x), x.len() as u64, above(y), y.len() as u64);
    // Each interval at 97.5 %, so the difference holds at least 95 %.
    let z = normal_isf(0.025 / 2.0);
    let (bl, bh) = quantile_ci(x, q, z);
    let (cl, ch) = quantile_ci(y, q, z);
    QuantileTest {
        baseline,
        candidate,
        p_value,
        ci: (cl - bh, ch - bl),
    }
}

/// The chi-square test of homogeneity for two rows of counts over the
/// same categories: (statistic, degrees of freedom, p-value). Categories
/// nobody used are left out.
pub fn chi_square_2xk(a: &[u64], b: &[u64]) -> (f64, usize, f64) {
    let cols: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64, y as f64))
        .filter(|(x, y)| x + y > 0.0)
        .collect();
    let ra: f64 = cols.iter().map(|c| c.0).sum();
    let rb: f64 = cols.iter().map(|c| c.1).sum();
    let total = ra + rb;
    if cols.len() < 2 || ra == 0.0 || rb == 0.0 {
        return (0.0, 0, 1.0);
    }
    let mut stat = 0.0;
    for (x, y) in &cols {
        let col = x + y;
        let ea = ra * col / total;
        let eb = rb * col / total;
        stat += (x - ea).powi(2) / ea + (y - eb).powi(2) / eb;
    }
    let df = cols.len() - 1;
    let p = if stat <= 0.0 {
        1.0
    } else {
        gamma_ur(df as f64 / 2.0, stat / 2.0)
    };
    (stat, df, p.clamp(0.0, 1.0))
}

/// Holm's step-down adjustment of p-values (in their given order): the
/// family-wise error rate stays at most alpha however many are tested.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![1.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        let adj = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adj);
        adjusted[i] = running;
    }
    adjusted
}

/// z for a two-sided interval of `confidence` (0.95 gives [`Z95`]).
pub fn z_for(confidence: f64) -> f64 {
    if (confidence - 0.95).abs() < 1e-12 {
        return Z95;
    }
    normal_isf((1.0 - confidence) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300) || (a - b).abs() < 1e-15
    }

    #[test]
    fn fisher_matches_scipy() {
        // scipy.stats.fisher_exact([[1, 9], [2, 8]]): p = 1
        assert!(close(fisher_exact(1, 10, 2, 10), 1.0, 1e-9));
        // scipy.stats.fisher_exact([[3, 1], [1, 3]]): p = 0.4857143
        assert!(close(
            fisher_exact(3, 4, 1, 4),
            0.485_714_285_714_285_7,
            1e-9
        ));
        // scipy.stats.fisher_exact([[10, 90], [30, 70]]): p = 0.0006504107
        let p = fisher_exact(10, 100, 30, 100);
        assert!(close(p, 0.000_650_410_707_6, 1e-6), "{p}");
        // The same table the other way round.
        assert!(close(
            fisher_exact(1, 4, 3, 4),
            0.485_714_285_714_285_7,
            1e-9
        ));
        // 1/10 -> 2/10 errors is no evidence at all.
        assert!(fisher_exact(1, 10, 2, 10) > 0.5);
        // Large samples stay exact and finite.
        let p = fisher_exact(1_000, 100_000, 1_300, 100_000);
        assert!(p > 0.0 && p < 1e-8, "{p}");
        assert!(fisher_exact(1_000, 100_000, 1_005, 100_000) > 0.8);
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        // scipy.stats.mannwhitneyu(x, y, method="exact"): U of x = 0, p = 0.0079365
        let x = [1, 2, 3, 4, 5];
        let y = [6, 7, 8, 9, 10];
        let r = mann_whitney(&x, &y);
        assert_eq!(r.u, 25.0);
        assert!(close(r.p_value, 0.007_936_508, 1e-6), "{}", r.p_value);
        // the same for interleaved samples: p = 0.6904762
        let r = mann_whitney(&[1, 3, 5, 7, 9], &[2, 4, 6, 8, 10]);
        assert!(close(r.p_value, 0.690_476_2, 1e-6), "{}", r.p_value);
        // With ties, the normal approximation with continuity and tie
        // corrections: scipy.stats.mannwhitneyu(x, y, method="asymptotic")
        // gives p = 0.047576435178 (U of x = 13, so 51 for y).
        let r = mann_whitney(&[1, 1, 2, 2, 3, 3, 4, 4], &[2, 3, 3, 4, 4, 5, 5, 6]);
        assert_eq!(r.u, 51.0);
        assert!(close(r.p_value, 0.047_576_435_178, 1e-9), "{}", r.p_value);
    }

    #[test]
    fn hodges_lehmann_is_the_median_difference() {
        let x: Vec<i64> = vec![1, 4, 7, 10];
        let y: Vec<i64> = vec![3, 5, 12];
        let mut diffs: Vec<i64> = x
            .iter()
            .flat_map(|a| y.iter().map(move |b| b - a))
            .collect();
        diffs.sort();
        for k in 1..=diffs.len() {
            assert_eq!(
                kth_difference(&x, &y, k as u128),
                diffs[k - 1] as i128,
                "k={k}"
            );
        }
        let (est, lo, hi) = hodges_lehmann(&x, &y, 0.05);
        assert_eq!(est, (diffs[5] + diffs[6]) as f64 / 2.0);
        assert!(lo <= est && est <= hi);
        // A shift of exactly 100 is recovered and covered.
        let base: Vec<i64> = (0..2_000).map(|i| (i * 7919) % 1000).collect();
        let mut x = base.clone();
        let mut y: Vec<i64> = base.iter().map(|v| v + 100).collect();
        x.sort();
        y.sort();
        let (est, lo, hi) = hodges_lehmann(&x, &y, 0.05);
        assert_eq!(est, 100.0);
        assert!(lo <= 100.0 && hi >= 100.0 && hi - lo < 40.0, "{lo}..{hi}");
    }

    #[test]
    fn chi_square_and_holm() {
        // scipy.stats.chi2_contingency([[10, 20, 30], [30, 20, 10]]): 20, df 2, p = 4.539993e-05
        let (stat, df, p) = chi_square_2xk(&[10, 20, 30], &[30, 20, 10]);
        assert!(close(stat, 20.0, 1e-12));
        assert_eq!(df, 2);
        assert!(close(p, 4.539_993e-5, 1e-5), "{p}");
        let (_, _, p) = chi_square_2xk(&[10, 20, 30], &[10, 20, 30]);
        assert_eq!(p, 1.0);
        // p.adjust(c(0.01, 0.04, 0.03, 0.2), "holm") = 0.04 0.09 0.09 0.20
        let a = holm(&[0.01, 0.04, 0.03, 0.2]);
        for (got, want) in a.iter().zip([0.04, 0.09, 0.09, 0.2]) {
            assert!(close(*got, want, 1e-12), "{a:?}");
        }
    }

    #[test]
    fn quantiles_and_rate_intervals() {
        let s: Vec<i64> = (1..=100).collect();
        assert!(close(quantile(&s, 0.5), 50.5, 1e-12));
        assert!(close(quantile(&s, 0.95), 95.05, 1e-12));
        let (lo, hi) = quantile_ci(&s, 0.5, Z95);
        assert!(lo < 50.5 && hi > 50.5);
        // Newcombe's example: 56/70 vs 48/80 -> difference -0.2 in [-0.3339, -0.0524]
        // (here as p2 - p1 with p1 = 56/70).
        let (lo, hi) = rate_difference_ci(56, 70, 48, 80, Z95);
        assert!(
            close(lo, -0.3339, 2e-3) && close(hi, -0.0524, 2e-2),
            "{lo} {hi}"
        );
        let q = quantile_test(&s, &s, 0.95);
        assert!(q.p_value > 0.9);
    }
}
