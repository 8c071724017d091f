//! The gates' tests.

use super::*;
use releaseops_format::environment::EnvironmentFile;

fn policy(yaml: &str) -> PromotionPolicy {
    let doc = format!("environment: prod\npromotion_policy:\n{yaml}");
    EnvironmentFile::parse(doc.as_bytes())
        .unwrap()
        .promotion_policy
        .unwrap()
}

fn ts(s: &str) -> Timestamp {
    time::parse(s).unwrap()
}

fn manifest() -> BundleManifest {
    BundleManifest::parse(
        b"schema_version: 2\nmetadata:\n  id: a\n  version: 1.0.0\n  created_by: Carol <carol@x>\n",
    )
    .unwrap()
}

static NO_EVALS: crate::evidence::EvalEvidence = crate::evidence::EvalEvidence {
    suites: Vec::new(),
    stale_reports: 0,
    stale_suites: Vec::new(),
};

fn facts<'a>(
    m: &'a BundleManifest,
    p: &'a PromotionPolicy,
    c: &'a ProjectConfig,
    r: &'a Reviews,
    now: &str,
) -> Facts<'a> {
    Facts {
        manifest: m,
        creator: &m.metadata.created_by,
        env: "prod",
        policy: Some(p),
        config: c,
        upstream: Some("staging"),
        upstream_live_since: Some(ts("2026-11-20T10:00:00Z")),
        reviews: r,
        signatures: &[],
        evals: &NO_EVALS,
        regressions: &[],
        analysis: None,
        now: ts(now),
    }
}

#[test]
fn freeze_weekly_window_across_midnight_in_a_named_zone() {
    let p = policy(
        "  freeze_windows:\n  - name: weekend\n    timezone: Europe/Berlin\n    days: [fri]\n    start: '17:00'\n    end: '09:00'\n",
    );
    let (m, c, r) = (manifest(), ProjectConfig::default(), Reviews::default());
    // Friday 2026-11-20 18:00 Berlin = 17:00 UTC: frozen until Saturday 09:00 Berlin (08:00 UTC).
    let g = freeze(&facts(&m, &p, &c, &r, "2026-11-20T17:00:00Z"), &p);
    assert_eq!(g.status, GateStatus::Pending, "{}", g.reason);
    assert_eq!(g.passes_at.as_deref(), Some("2026-11-21T08:00:00+00:00"));
    // Thursday: open.
    assert_eq!(
        freeze(&facts(&m, &p, &c, &r, "2026-11-19T17:00:00Z"), &p).status,
        GateStatus::Passed
    );
    // Saturday 08:30 Berlin, still inside Friday's occurrence.
    assert_eq!(
        freeze(&facts(&m, &p, &c, &r, "2026-11-21T07:30:00Z"), &p).status,
        GateStatus::Pending
    );
}

#[test]
fn freeze_windows_that_touch_chain_into_a_weekend() {
    let p = policy(
        "  freeze_windows:\n  - timezone: UTC\n    days: [fri]\n    start: '18:00'\n    end: '00:00'\n  - timezone: UTC\n    days: [sat, sun]\n  - timezone: UTC\n    days: [mon]\n    start: '00:00'\n    end: '06:00'\n",
    );
    let (m, c, r) = (manifest(), ProjectConfig::default(), Reviews::default());
    // Friday 2026-11-20 19:00: frozen through the weekend until Monday 06:00.
    let g = freeze(&facts(&m, &p, &c, &r, "2026-11-20T19:00:00Z"), &p);
    assert_eq!(g.status, GateStatus::Pending, "{}", g.reason);
    assert_eq!(g.passes_at.as_deref(), Some("2026-11-23T06:00:00+00:00"));
    // Monday 06:00 exactly: open.
    assert_eq!(
        freeze(&facts(&m, &p, &c, &r, "2026-11-23T06:00:00Z"), &p).status,
        GateStatus::Passed
    );
}

#[test]
fn freeze_dates_chain_and_bad_zone_fails_closed() {
    let p = policy(
        "  freeze_windows:\n  - timezone: UTC\n    dates: ['2026-12-24..2026-12-26']\n  - timezone: UTC\n    dates: ['2026-12-27']\n",
    );
    let (m, c, r) = (manifest(), ProjectConfig::default(), Reviews::default());
    let g = freeze(&facts(&m, &p, &c, &r, "2026-12-25T12:00:00Z"), &p);
    assert_eq!(
        g.passes_at.as_deref(),
        Some("2026-12-28T00:00:00+00:00"),
        "{}",
        g.reason
    );
    let bad = policy("  freeze_windows:\n  - timezone: Mars/Olympus\n    dates: ['2026-12-24']\n");
    assert_eq!(
        freeze(&facts(&m, &bad, &c, &r, "2026-12-25T12:00:00Z"), &bad).status,
        GateStatus::Failed
    );
}

#[test]
fn soak_passes_pending_and_fails() {
    let p = policy("  soak_hours: 24\n");
    let (m, c, r) = (manifest(), ProjectConfig::default(), Reviews::default());
    let g = soak(&facts(&m, &p, &c, &r, "2026-11-20T12:00:00Z"), &p);
    assert_eq!(g.status, GateStatus::Pending);
    assert_eq!(g.passes_at.as_deref(), Some("2026-11-21T10:00:00+00:00"));
    assert_eq!(
        soak(&facts(&m, &p, &c, &r, "2026-11-21T10:00:00Z"), &p).status,
        GateStatus::Passed
    );
    let mut f = facts(&m, &p, &c, &r, "2026-11-21T10:00:00Z");
    f.upstream_live_since = None;
    assert_eq!(soak(&f, &p).status, GateStatus::Failed);
}

#[test]
fn approval_counts_eligible_distinct_non_creators() {
    let p = policy("  requires_approval: true\n  approval_teams: [safety]\n  min_approvals: 2\n");
    let mut c = ProjectConfig::default();
    c.teams.insert(
        "safety".into(),
        vec!["alice@x".into(), "bob@x".into(), "carol@x".into()],
    );
    let m = manifest();
    let ap = |a: &str| releaseops_format::review::Approval {
        env: "prod".into(),
        actor: a.into(),
        at: "t".into(),
        comment: None,
        signature: None,
    };
    let mut r = Reviews {
        approvals: vec![
            ap("Carol <carol@x>"),
            ap("Alice <alice@x>"),
            ap("Alice <alice@x>"),
            ap("Mallory <m@x>"),
        ],
        ..Default::default()
    };
    let g = approval(&facts(&m, &p, &c, &r, "2026-11-21T00:00:00Z"), &p);
    assert_eq!(g.status, GateStatus::Pending, "{}", g.reason);
    assert!(
        g.reason.contains("created the bundle") && g.reason.contains("not an eligible"),
        "{}",
        g.reason
    );
    r.approvals.push(ap("Bob <bob@x>"));
    assert_eq!(
        approval(&facts(&m, &p, &c, &r, "2026-11-21T00:00:00Z"), &p).status,
        GateStatus::Passed
    );
    let undefined = policy("  requires_approval: true\n  approval_teams: [ghosts]\n");
    assert_eq!(
        approval(
            &facts(&m, &undefined, &c, &r, "2026-11-21T00:00:00Z"),
            &undefined
        )
        .status,
        GateStatus::Failed
    );
}

/// A sample of `n` traces, `errors` of them failed, latencies `ms(i)`.
fn sample(n: u64, errors: u64, ms: impl Fn(u64) -> i64) -> releaseops_traces::Sample {
    let mut latency: Vec<i64> = (0..n).map(|i| ms(i) * 1_000_000).collect();
    latency.sort_unstable();
    releaseops_traces::Sample {
        traces: n,
        errors,
        input_tokens: vec![100; n as usize],
        output_tokens: vec![20; n as usize],
        latency_ns: latency,
        ..Default::default()
    }
}

fn evidence(
    p: &PromotionPolicy,
    base: &releaseops_traces::Sample,
    cand: &releaseops_traces::Sample,
) -> crate::facts::AnalysisEvidence {
    use releaseops_traces::analytics::{CompareOptions, Input, compare};
    let a = p.requires_analysis.as_ref().expect("an analysis policy");
    let input = |v: &'static str, s| Input {
        bundle_id: "b",
        bundle_version: Some(v),
        environment: None,
        sample: s,
        attributes: Vec::new(),
    };
    crate::facts::AnalysisEvidence {
        baseline_version: Some("1.0.0".into()),
        comparison: Ok(compare(
            &input("1.0.0", base),
            &input("1.1.0", cand),
            &CompareOptions {
                alpha: a.alpha,
                min_samples: a.min_samples,
                metrics: a.metrics.clone(),
            },
        )),
    }
}

#[test]
fn analysis_passes_within_its_allowance_and_fails_beyond_it() {
    let p = policy(
        "  requires_analysis:\n    baseline_env: prod\n    min_samples: 100\n    metrics: [error_rate, latency_p95]\n    max_increase: {latency_p95: 0.5}\n",
    );
    let (m, c, r) = (manifest(), ProjectConfig::default(), Reviews::default());
    let base = sample(1_000, 20, |i| 200 + (i % 100) as i64);
    let at = "2026-11-23T10:00:00Z";
    let judge = |cand: &releaseops_traces::Sample| {
        let ev = evidence(&p, &base, cand);
        let mut f = facts(&m, &p, &c, &r, at);
        f.analysis = Some(&ev);
        analysis(&f, &p)
    };
    // p95 30 % slower: significant, but within the +50 % allowed.
    let slower = judge(&sample(1_000, 20, |i| 260 + (i % 100) as i64 * 13 / 10));
    assert_eq!(slower.status, GateStatus::Passed, "{}", slower.reason);
    // Twice as slow: beyond it.
    let slow = judge(&sample(1_000, 20, |i| 400 + (i % 100) as i64 * 2));
    assert_eq!(slow.status, GateStatus::Failed, "{}", slow.reason);
    assert!(
        slow.reason.contains("latency_p95") && slow.reason.contains("+50% allowed"),
        "{}",
        slow.reason
    );
    // Errors have no allowance: 2 % -> 6 % fails.
    let failing = judge(&sample(1_000, 60, |i| 200 + (i % 100) as i64));
    assert_eq!(failing.status, GateStatus::Failed, "{}", failing.reason);
    assert!(
        failing.reason.contains("error_rate 2.0% -> 6.0%"),
        "{}",
        failing.reason
    );
    // Too little traffic: pending, with what is missing.
    let few = judge(&sample(40, 0, |_| 200));
    assert_eq!(few.status, GateStatus::Pending, "{}", few.reason);
    assert!(
        few.reason.contains("60 more in 'staging'"),
        "{}",
        few.reason
    );
    // A store that cannot be read fails closed; nothing live in prod passes.
    let broken = crate::facts::AnalysisEvidence {
        baseline_version: Some("1.0.0".into()),
        comparison: Err("connection refused".into()),
    };
    let mut f = facts(&m, &p, &c, &r, at);
    f.analysis = Some(&broken);
    let g = analysis(&f, &p);
    assert_eq!(g.status, GateStatus::Failed);
    assert!(g.reason.contains("connection refused"));
    let first = crate::facts::AnalysisEvidence {
        baseline_version: None,
        comparison: Err("nothing to compare with".into()),
    };
    f.analysis = Some(&first);
    assert_eq!(analysis(&f, &p).status, GateStatus::Passed);
    // The first stage has nothing upstream to analyse.
    f.upstream = None;
    assert_eq!(analysis(&f, &p).status, GateStatus::Failed);
    // A baseline that is no environment (a typo) fails, never passes.
    let typo = policy("  requires_analysis:\n    baseline_env: prdo\n");
    let mut f = facts(&m, &typo, &c, &r, at);
    f.analysis = Some(&first);
    let g = analysis(&f, &typo);
    assert_eq!(g.status, GateStatus::Failed);
    assert!(
        g.reason.contains("'prdo' is not in the pipeline"),
        "{}",
        g.reason
    );
    // A judged metric no trace reports is pending, not passed.
    let priced = policy(
        "  requires_analysis:\n    baseline_env: prod\n    min_samples: 100\n    metrics: [error_rate, cost]\n",
    );
    let ev = evidence(&priced, &base, &base);
    let mut f = facts(&m, &priced, &c, &r, at);
    f.analysis = Some(&ev);
    let g = analysis(&f, &priced);
    assert_eq!(g.status, GateStatus::Pending, "{}", g.reason);
    assert!(g.reason.contains("cost"), "{}", g.reason);
}
