//! A version's behaviour in numbers, and two versions compared with tests
//! a release decision can rest on.
//!
//! The unit is the trace (one request to the agent): its latency is the
//! root span's duration, it failed if any of its spans did, its tokens and
//! cost are its spans' sums, its tools the tools its spans ran.
//!
//! Each metric is compared by the test made for it (see
//! [`releaseops_stats::compare`]), the p-values are corrected for testing
//! several metrics at once (Holm), and below a minimum sample the answer is
//! `insufficient_data`, never a verdict. A difference counts only when the
//! corrected p-value is below alpha and the 95 % interval on the change
//! leaves out zero.

use std::collections::BTreeMap;

use releaseops_stats::compare::{
    chi_square_2xk, fisher_exact, hodges_lehmann, holm, mann_whitney, normal_isf, quantile,
    quantile_test, rate_difference_ci,
};
use serde::Serialize;

use crate::store::Sample;

/// Summary numbers of one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub sample_size: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub success_rate: f64,
    pub latency_ms: Latency,
    pub input_tokens: Tokens,
    pub output_tokens: Tokens,
    /// Dollars, over the traces whose cost is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// Tool -> calls and share of all calls.
    pub tools: BTreeMap<String, ToolShare>,
    /// First and last trace start (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_range: Option<[String; 2]>,
    /// Named numeric attributes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Distribution>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tokens {
    pub total: u64,
    pub mean: f64,
    pub p50: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    pub known: u64,
    pub total: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ToolShare {
    pub calls: u64,
    pub share: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distribution {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
}

fn mean(v: &[i64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64
    }
}

fn distribution(v: &[i64], scale: f64) -> Distribution {
    Distribution {
        count: v.len() as u64,
        mean: mean(v) / scale,
        p50: quantile(v, 0.5) / scale,
        p95: quantile(v, 0.95) / scale,
    }
}

const NS_PER_MS: f64 = 1e6;

fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(ns as i128)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The summary numbers of a sample; `attributes` are named attributes'
/// per-trace values in millionths.
pub fn metrics(s: &Sample, attributes: &[(String, Vec<i64>)]) -> Metrics {
    let n = s.traces;
    let error_rate = if n == 0 {
        0.0
    } else {
        s.errors as f64 / n as f64
    };
    let calls: u64 = s.tools.values().sum();
    let tokens = |v: &[i64]| Tokens {
        total: v.iter().map(|x| (*x).max(0) as u64).sum(),
        mean: mean(v),
        p50: quantile(v, 0.5),
    };
    Metrics {
        sample_size: n,
        errors: s.errors,
        error_rate,
        success_rate: if n == 0 { 0.0 } else { 1.0 - error_rate },
        latency_ms: Latency {
            mean: mean(&s.latency_ns) / NS_PER_MS,
            p50: quantile(&s.latency_ns, 0.5) / NS_PER_MS,
            p95: quantile(&s.latency_ns, 0.95) / NS_PER_MS,
            p99: quantile(&s.latency_ns, 0.99) / NS_PER_MS,
        },
        input_tokens: tokens(&s.input_tokens),
        output_tokens: tokens(&s.output_tokens),
        cost: (!s.cost_micros.is_empty()).then(|| Cost {
            known: s.cost_micros.len() as u64,
            total: s.cost_micros.iter().sum::<i64>() as f64 / 1e6,
            mean: mean(&s.cost_micros) / 1e6,
        }),
        tools: s
            .tools
            .iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    ToolShare {
                        calls: *c,
                        share: if calls == 0 {
                            0.0
                        } else {
                            *c as f64 / calls as f64
                        },
                    },
                )
            })
            .collect(),
        time_range: match (s.first_ns, s.last_ns) {
            (Some(a), Some(b)) => Some([rfc3339(a), rfc3339(b)]),
            _ => None,
        },
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.clone(), distribution(v, 1e6)))
            .collect(),
    }
}

/// The names of the metrics a comparison can test.
pub const METRICS: [&str; 8] = [
    "error_rate",
    "latency",
    "latency_p95",
    "latency_p99",
    "input_tokens",
    "output_tokens",
    "cost",
    "tool_distribution",
];

/// How a comparison decides.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Family-wise error rate, after Holm's correction.
    pub alpha: f64,
    /// Fewer traces than this on either side: `insufficient_data`.
    pub min_samples: u64,
    /// Only these metrics (all of [`METRICS`] when empty); named
    /// attributes are always compared.
    pub metrics: Vec<String>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            alpha: 0.05,
            min_samples: 30,
            metrics: Vec::new(),
        }
    }
}

/// Which way a metric moved, for a metric where more is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Worse,
    Better,
    /// A change with no better or worse (the tools called).
    Changed,
    Unchanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regression,
    Improvement,
    Mixed,
    NoSignificantChange,
    InsufficientData,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::Mixed => "mixed",
            Verdict::NoSignificantChange => "no_significant_change",
            Verdict::InsufficientData => "insufficient_data",
        }
    }
}

/// One metric, compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    pub name: String,
    /// What `baseline`, `candidate` and `change` measure: `rate`,
    /// `median` (with the Hodges-Lehmann shift as the change), `p95`,
    /// `share`.
    pub statistic: &'static str,
    pub unit: &'static str,
    pub baseline: f64,
    pub candidate: f64,
    /// candidate - baseline (for a median: the Hodges-Lehmann shift).
    pub change: f64,
    /// The change relative to the baseline, when that is not zero.
    pub relative_change: Option<f64>,
    pub test: &'static str,
    pub p_value: f64,
    /// After Holm's correction across the metrics compared.
    pub adjusted_p_value: f64,
    /// 95 % interval on the change.
    pub ci: [f64; 2],
    pub significant: bool,
    pub direction: Direction,
    /// What moved most (the tool whose share changed most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub bundle_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub sample_size: u64,
    #[serde(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub baseline: Side,
    pub candidate: Side,
    pub metrics: Vec<MetricComparison>,
    pub verdict: Verdict,
    pub recommendation: String,
    pub alpha: f64,
    pub min_samples: u64,
    /// The smallest change in error rate (in rate, both ways) these sample
    /// sizes would detect four times in five.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detectable_error_rate_change: Option<f64>,
}

/// Named attributes' per-trace values (millionths, sorted), by name.
pub type AttributeSamples = Vec<(String, Vec<i64>)>;

/// What is compared on one side.
pub struct Input<'a> {
    pub bundle_id: &'a str,
    pub bundle_version: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub sample: &'a Sample,
    /// Named attributes' per-trace values (millionths, sorted).
    pub attributes: AttributeSamples,
}

fn relative(b: f64, c: f64) -> Option<f64> {
    (b != 0.0).then(|| (c - b) / b.abs())
}

fn direction_of(change: f64) -> Direction {
    if change > 0.0 {
        Direction::Worse
    } else if change < 0.0 {
        Direction::Better
    } else {
        Direction::Unchanged
    }
}

fn shift(
    name: &str,
    unit: &'static str,
    scale: f64,
    x: &[i64],
    y: &[i64],
) -> Option<MetricComparison> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let mw = mann_whitney(x, y);
    let (est, lo, hi) = hodges_lehmann(x, y, 0.05);
    let (b, c) = (quantile(x, 0.5) / scale, quantile(y, 0.5) / scale);
    Some(MetricComparison {
        name: name.to_string(),
        statistic: "median",
        unit,
        baseline: b,
        candidate: c,
        change: est / scale,
        relative_change: relative(b, b + est / scale),
        test: "mann_whitney_u",
        p_value: mw.p_value,
        adjusted_p_value: mw.p_value,
        ci: [lo / scale, hi / scale],
        significant: false,
        direction: direction_of(est),
        detail: None,
    })
}

fn tail(name: &str, q: f64, x: &[i64], y: &[i64]) -> Option<MetricComparison> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let t = quantile_test(x, y, q);
    let (b, c) = (t.baseline / NS_PER_MS, t.candidate / NS_PER_MS);
    Some(MetricComparison {
        name: name.to_string(),
        statistic: if q == 0.95 { "p95" } else { "p99" },
        unit: "ms",
        baseline: b,
        candidate: c,
        change: c - b,
        relative_change: relative(b, c),
        test: "quantile_exceedance_fisher",
        p_value: t.p_value,
        adjusted_p_value: t.p_value,
        ci: [t.ci.0 / NS_PER_MS, t.ci.1 / NS_PER_MS],
        significant: false,
        direction: direction_of(c - b),
        detail: None,
    })
}

fn tools(base: &Sample, cand: &Sample) -> Option<MetricComparison> {
    let names: Vec<&String> = base
        .tools
        .keys()
        .chain(cand.tools.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let a: Vec<u64> = names
        .iter()
        .map(|n| base.tools.get(*n).copied().unwrap_or(0))
        .collect();
    let b: Vec<u64> = names
        .iter()
        .map(|n| cand.tools.get(*n).copied().unwrap_or(0))
        .collect();
    let (ta, tb) = (a.iter().sum::<u64>(), b.iter().sum::<u64>());
    if ta == 0 || tb == 0 || names.len() < 2 {
        return None;
    }
    let (_, _, p) = chi_square_2xk(&a, &b);
    // The tool whose share moved most.
    let (i, d) = a
        .iter()
        .zip(&b)
        .map(|(x, y)| *y as f64 / tb as f64 - *x as f64 / ta as f64)
        .enumerate()
        // The largest move; between equal ones, the share that grew.
        .max_by(|p, q| {
            let size = |x: f64| (x.abs() * 1e9).round();
            size(p.1).total_cmp(&size(q.1)).then(p.1.total_cmp(&q.1))
        })?;
    let (sa, sb) = (a[i] as f64 / ta as f64, b[i] as f64 / tb as f64);
    let (lo, hi) = rate_difference_ci(a[i], ta, b[i], tb, releaseops_stats::Z95);
    Some(MetricComparison {
        name: "tool_distribution".into(),
        statistic: "share",
        unit: "share",
        baseline: sa,
        candidate: sb,
        change: d,
        relative_change: relative(sa, sb),
        test: "chi_square",
        p_value: p,
        adjusted_p_value: p,
        ci: [lo, hi],
        significant: false,
        direction: if d == 0.0 {
            Direction::Unchanged
        } else {
            Direction::Changed
        },
        detail: Some(format!(
            "{}: {:.1}% -> {:.1}% of tool calls",
            names[i],
            sa * 100.0,
            sb * 100.0
        )),
    })
}

fn wanted(opts: &CompareOptions, name: &str) -> bool {
    opts.metrics.is_empty() || opts.metrics.iter().any(|m| m == name)
}

fn side(i: &Input<'_>) -> Side {
    Side {
        bundle_id: i.bundle_id.to_string(),
        bundle_version: i.bundle_version.map(String::from),
        environment: i.environment.map(String::from),
        sample_size: i.sample.traces,
        metrics: metrics(i.sample, &i.attributes),
    }
}

/// Compares a candidate with its baseline.
pub fn compare(base: &Input<'_>, cand: &Input<'_>, opts: &CompareOptions) -> Comparison {
    let (x, y) = (base.sample, cand.sample);
    let mut out = Comparison {
        baseline: side(base),
        candidate: side(cand),
        metrics: Vec::new(),
        verdict: Verdict::InsufficientData,
        recommendation: String::new(),
        alpha: opts.alpha,
        min_samples: opts.min_samples,
        detectable_error_rate_change: None,
    };
    if x.traces < opts.min_samples || y.traces < opts.min_samples {
        out.recommendation = format!(
            "Not enough traffic to judge: the baseline has {} traces and the candidate {}; at least {} each are needed. Let more traffic arrive (or widen --since) before deciding.",
            x.traces, y.traces, opts.min_samples
        );
        return out;
    }
    let mut m = Vec::new();
    if wanted(opts, "error_rate") {
        let (pb, pc) = (
            x.errors as f64 / x.traces as f64,
            y.errors as f64 / y.traces as f64,
        );
        let (lo, hi) = rate_difference_ci(
            x.errors,
            x.traces,
            y.errors,
            y.traces,
            releaseops_stats::Z95,
        );
        let p = fisher_exact(x.errors, x.traces, y.errors, y.traces);
        m.push(MetricComparison {
            name: "error_rate".into(),
            statistic: "rate",
            unit: "rate",
            baseline: pb,
            candidate: pc,
            change: pc - pb,
            relative_change: relative(pb, pc),
            test: "fisher_exact",
            p_value: p,
            adjusted_p_value: p,
            ci: [lo, hi],
            significant: false,
            direction: direction_of(pc - pb),
            detail: None,
        });
    }
    let mut push = |name: &str, c: Option<MetricComparison>| {
        if wanted(opts, name)
            && let Some(c) = c
        {
            m.push(c);
        }
    };
    push(
        "latency",
        shift("latency", "ms", NS_PER_MS, &x.latency_ns, &y.latency_ns),
    );
    push(
        "latency_p95",
        tail("latency_p95", 0.95, &x.latency_ns, &y.latency_ns),
    );
    push(
        "latency_p99",
        tail("latency_p99", 0.99, &x.latency_ns, &y.latency_ns),
    );
    push(
        "input_tokens",
        shift(
            "input_tokens",
            "tokens",
            1.0,
            &x.input_tokens,
            &y.input_tokens,
        ),
    );
    push(
        "output_tokens",
        shift(
            "output_tokens",
            "tokens",
            1.0,
            &x.output_tokens,
            &y.output_tokens,
        ),
    );
    push(
        "cost",
        shift("cost", "usd", 1e6, &x.cost_micros, &y.cost_micros),
    );
    push("tool_distribution", tools(x, y));
    for (name, xa) in &base.attributes {
        if let Some((_, ya)) = cand.attributes.iter().find(|(n, _)| n == name)
            && let Some(c) = shift(name, "value", 1e6, xa, ya)
        {
            m.push(c);
        }
    }
    let adjusted = holm(&m.iter().map(|c| c.p_value).collect::<Vec<_>>());
    // A change counts when the (Holm-corrected) test says so and its
    // interval agrees that there is one: a tail quantile's interval is the
    // conservative one, so the two can disagree, and then it does not count.
    for (c, a) in m.iter_mut().zip(adjusted) {
        c.adjusted_p_value = a;
        let interval_agrees = c.unit == "share" || c.ci[0] > 0.0 || c.ci[1] < 0.0;
        c.significant = a < opts.alpha && c.direction != Direction::Unchanged && interval_agrees;
    }
    let worse: Vec<&MetricComparison> = m
        .iter()
        .filter(|c| c.significant && c.direction == Direction::Worse)
        .collect();
    let better: Vec<&MetricComparison> = m
        .iter()
        .filter(|c| c.significant && c.direction == Direction::Better)
        .collect();
    let changed: Vec<&MetricComparison> = m
        .iter()
        .filter(|c| c.significant && c.direction == Direction::Changed)
        .collect();
    let describe = |cs: &[&MetricComparison]| -> String {
        cs.iter()
            .map(|c| describe_change(c))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let (verdict, rec) = match (worse.is_empty(), better.is_empty(), changed.is_empty()) {
        (true, true, true) => (
            Verdict::NoSignificantChange,
            format!(
                "No significant difference in {} metrics ({} vs {} traces).",
                m.len(),
                x.traces,
                y.traces
            ),
        ),
        (false, true, _) => (
            Verdict::Regression,
            format!(
                "Regression: {}{}. Do not promote it further; roll back where it runs.",
                describe(&worse),
                if changed.is_empty() {
                    String::new()
                } else {
                    format!("; also {}", describe(&changed))
                }
            ),
        ),
        (true, false, true) => (
            Verdict::Improvement,
            format!(
                "Improvement: {}. Nothing got significantly worse.",
                describe(&better)
            ),
        ),
        _ => {
            let mut parts = Vec::new();
            if !worse.is_empty() {
                parts.push(format!("worse: {}", describe(&worse)));
            }
            if !better.is_empty() {
                parts.push(format!("better: {}", describe(&better)));
            }
            if !changed.is_empty() {
                parts.push(format!("changed: {}", describe(&changed)));
            }
            (
                Verdict::Mixed,
                format!(
                    "Mixed: {}. Review what changed before promoting.",
                    parts.join("; ")
                ),
            )
        }
    };
    out.verdict = verdict;
    out.recommendation = rec;
    if verdict == Verdict::NoSignificantChange {
        // The smallest error-rate difference with 80 % power at this alpha.
        let p = (x.errors + y.errors) as f64 / (x.traces + y.traces) as f64;
        let p = p.max(0.5 / (x.traces + y.traces) as f64);
        let se = (p * (1.0 - p) * (1.0 / x.traces as f64 + 1.0 / y.traces as f64)).sqrt();
        let mde = (normal_isf(opts.alpha / 2.0) + normal_isf(0.2)) * se;
        out.detectable_error_rate_change = Some(mde);
        out.recommendation.push_str(&format!(
            " With these samples an error-rate change smaller than about {:.1} points could go unseen.",
            mde * 100.0
        ));
    }
    out.metrics = m;
    out
}

/// Reads both sides from the store (each side's bundle, version and
/// environment are its filter's, `attributes` the numeric span attributes
/// also compared) and compares them.
pub fn compare_stored(
    traces: &mut crate::TraceStore,
    baseline: &crate::Filter,
    candidate: &crate::Filter,
    attributes: &[String],
    opts: &CompareOptions,
) -> Result<Comparison, crate::TraceError> {
    let mut read = |f: &crate::Filter| -> Result<(Sample, AttributeSamples), crate::TraceError> {
        let sample = traces.sample(f)?;
        let attrs = attributes
            .iter()
            .map(|n| Ok((n.clone(), traces.attribute_sample(f, n)?)))
            .collect::<Result<_, crate::TraceError>>()?;
        Ok((sample, attrs))
    };
    let (bs, ba) = read(baseline)?;
    let (cs, ca) = read(candidate)?;
    Ok(compare(
        &side_input(baseline, &bs, ba),
        &side_input(candidate, &cs, ca),
        opts,
    ))
}

fn side_input<'a>(
    f: &'a crate::Filter,
    sample: &'a Sample,
    attributes: AttributeSamples,
) -> Input<'a> {
    Input {
        bundle_id: f.bundle_id.as_deref().unwrap_or(""),
        bundle_version: f.bundle_version.as_deref(),
        environment: f.environment.as_deref(),
        sample,
        attributes,
    }
}

/// "error_rate 2.0% -> 5.1% (+3.1 points, p=0.0004)".
pub fn describe_change(c: &MetricComparison) -> String {
    let p = match format_p(c.adjusted_p_value) {
        p if p.starts_with('<') => format!("p{p}"),
        p => format!("p={p}"),
    };
    match c.unit {
        "rate" => format!(
            "{} {:.1}% -> {:.1}% ({:+.1} points, {p})",
            c.name,
            c.baseline * 100.0,
            c.candidate * 100.0,
            c.change * 100.0
        ),
        "share" => format!("{} ({}, {p})", c.name, c.detail.as_deref().unwrap_or("")),
        unit => format!(
            "{}{} {} -> {} ({}{}, {p})",
            c.name,
            if c.statistic == "median" {
                " median"
            } else {
                ""
            },
            format_value(c.baseline, unit),
            format_value(c.candidate, unit),
            if c.change >= 0.0 { "+" } else { "" },
            format_value(c.change, unit)
        ),
    }
}

pub fn format_p(p: f64) -> String {
    if p < 0.0001 {
        "<0.0001".into()
    } else if p < 0.01 {
        format!("{p:.4}")
    } else {
        format!("{p:.3}")
    }
}

pub fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "ms" => {
            if v.abs() >= 1000.0 {
                format!("{:.2} s", v / 1000.0)
            } else {
                format!("{v:.1} ms")
            }
        }
        "usd" => format!("${v:.4}"),
        "tokens" => format!("{v:.0} tokens"),
        "rate" => format!("{:.2}%", v * 100.0),
        _ => format!("{v:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u64, errors: u64, latency_ms: impl Fn(u64) -> i64, tool_b: u64) -> Sample {
        let mut s = Sample {
            traces: n,
            errors,
            latency_ns: (0..n).map(|i| latency_ms(i) * 1_000_000).collect(),
            input_tokens: (0..n).map(|i| 100 + (i % 7) as i64).collect(),
            output_tokens: (0..n).map(|i| 20 + (i % 5) as i64).collect(),
            ..Sample::default()
        };
        s.tools.insert("lookup_order".into(), n);
        s.tools.insert("issue_refund".into(), tool_b);
        for v in [&mut s.latency_ns, &mut s.input_tokens, &mut s.output_tokens] {
            v.sort_unstable();
        }
        s
    }

    fn input<'a>(v: &'a str, s: &'a Sample) -> Input<'a> {
        Input {
            bundle_id: "support-agent",
            bundle_version: Some(v),
            environment: Some("prod"),
            sample: s,
            attributes: vec![],
        }
    }

    #[test]
    fn one_in_ten_to_two_in_ten_is_not_a_regression() {
        let a = sample(10, 1, |i| 100 + i as i64, 1);
        let b = sample(10, 2, |i| 100 + i as i64, 1);
        let c = compare(
            &input("1.0.0", &a),
            &input("1.1.0", &b),
            &CompareOptions::default(),
        );
        assert_eq!(c.verdict, Verdict::InsufficientData);
        let c = compare(
            &input("1.0.0", &a),
            &input("1.1.0", &b),
            &CompareOptions {
                min_samples: 5,
                ..CompareOptions::default()
            },
        );
        assert_eq!(
            c.verdict,
            Verdict::NoSignificantChange,
            "{}",
            c.recommendation
        );
        assert!(c.detectable_error_rate_change.unwrap() > 0.3);
    }

    #[test]
    fn a_real_regression_is_found_and_named() {
        let a = sample(2_000, 40, |i| 200 + (i % 100) as i64, 100);
        let b = sample(2_000, 110, |i| 260 + (i % 100) as i64, 400);
        let c = compare(
            &input("1.0.0", &a),
            &input("1.1.0", &b),
            &CompareOptions::default(),
        );
        // Worse on some metrics and a changed tool mix: a regression, which
        // names the tool mix too.
        assert_eq!(c.verdict, Verdict::Regression, "{}", c.recommendation);
        assert!(c.recommendation.contains("also tool_distribution"));
        let err = c.metrics.iter().find(|m| m.name == "error_rate").unwrap();
        assert!(err.significant && err.direction == Direction::Worse);
        assert!(err.ci[0] > 0.0 && err.ci[0] < err.change && err.change < err.ci[1]);
        let lat = c.metrics.iter().find(|m| m.name == "latency").unwrap();
        assert!(
            lat.significant && (lat.change - 60.0).abs() < 1.0,
            "{lat:?}"
        );
        let tools = c
            .metrics
            .iter()
            .find(|m| m.name == "tool_distribution")
            .unwrap();
        assert!(tools.significant && tools.detail.as_deref().unwrap().starts_with("issue_refund"));
        assert!(
            c.recommendation.contains("error_rate 2.0% -> 5.5%"),
            "{}",
            c.recommendation
        );
        // Only the metrics asked for are tested.
        let only = CompareOptions {
            metrics: vec!["error_rate".into(), "latency".into()],
            ..CompareOptions::default()
        };
        let c = compare(&input("1.0.0", &a), &input("1.1.0", &b), &only);
        assert_eq!(c.verdict, Verdict::Regression);
        assert_eq!(c.metrics.len(), 2);
        // The same sample against itself: nothing.
        let c = compare(
            &input("1.0.0", &a),
            &input("1.0.0", &a),
            &CompareOptions::default(),
        );
        assert_eq!(
            c.verdict,
            Verdict::NoSignificantChange,
            "{}",
            c.recommendation
        );
    }
}
