//! The runner: cases run concurrently (bounded), each repeat is one call to
//! the target, every assertion is judged, and the case verdict is the majority
//! of its repeats. Errors (a crashed agent, a timeout, bad output) fail that
//! run with the reason; the run goes on.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::providers::RetryPolicy;
use crate::report::{Attempt, CaseResult, Report, Summary};
use crate::suite::{Case, Suite};
use crate::target::Target;
use releaseops_stats::{self as stats, Z95};

/// The bundle under evaluation, as the agent receives it.
#[derive(Debug, Clone)]
pub struct BundleUnderTest {
    pub id: String,
    pub version: String,
    pub hash: String,
    /// `{id, version, bundle_hash, prompts: {role: {...content}}, policies: {...}, model_config}`.
    pub payload: Value,
}

pub struct RunOptions {
    pub concurrency: usize,
    pub repeats: u32,
    pub tags: Vec<String>,
    pub run_id: String,
    pub timestamp: String,
    /// Called after each case with (cases done, cases total).
    pub progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>>,
    /// The hard bound on one call (retries included): the call is dropped,
    /// and a subprocess agent killed, when it runs out.
    pub case_timeout: std::time::Duration,
    pub retry: RetryPolicy,
    /// Where `llm_judge` assertions reach their models.
    pub judges: crate::judge::JudgeEnv,
    /// Notified to stop early (Ctrl-C): the report keeps the finished cases
    /// and is marked incomplete.
    pub cancel: Option<Arc<tokio::sync::Notify>>,
    /// Secret values redacted from every output, error and judge's reason
    /// the report keeps.
    pub redactor: Arc<crate::secrets::Redactor>,
}

/// Concurrency when neither the suite nor the command line says.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// What every case of a run shares.
struct Shared {
    vars: Map<String, Value>,
    target: Target,
    bundle: Value,
    repeats: u32,
    timeout: std::time::Duration,
    retry: RetryPolicy,
    judges: crate::judge::JudgeEnv,
    pricing: Option<crate::suite::Pricing>,
}

async fn run_case(case: Arc<Case>, sh: Arc<Shared>) -> CaseResult {
    let (target, bundle, repeats, timeout, retry, judges) = (
        &sh.target, &sh.bundle, sh.repeats, sh.timeout, sh.retry, &sh.judges,
    );
    let suite_vars = &sh.vars;
    let mut input = suite_vars.clone();
    for (k, v) in &case.input {
        input.insert(k.clone(), v.clone());
    }
    let mut runs = Vec::with_capacity(repeats as usize);
    let mut judged = Vec::new();
    for repeat in 0..repeats {
        let payload =
            json!({ "case_id": case.id, "repeat": repeat, "input": input, "bundle": bundle });
        let call = tokio::time::timeout(timeout, target.call(&payload, &input, retry)).await;
        // Price reported usage with the suite's pricing when the agent gave no cost.
        let call = call.map(|r| {
            r.map(|mut out| {
                if let (Some(u), Some(p)) = (out.usage.as_mut(), sh.pricing)
                    && u.cost_usd.is_none()
                {
                    u.cost_usd = Some(p.cost(u.input_tokens, u.output_tokens));
                }
                out
            })
        });
        let call = call.unwrap_or_else(|_| {
            Err(format!(
                "timed out after {} ms (the call was abandoned; a subprocess agent is killed)",
                timeout.as_millis()
            ))
        });
        match call {
            Ok(out) => {
                let judging = async {
                    let mut results = Vec::with_capacity(case.assertions.len());
                    for a in &case.assertions {
                        results.push(
                            a.judge
                                .judge_async(&out, &case.view(), a.weight, judges)
                                .await,
                        );
                    }
                    results
                };
                // Judge models get the same bound as the agent.
                let results: Vec<_> = match tokio::time::timeout(timeout, judging).await {
                    Ok(r) => r,
                    Err(_) => case
                        .assertions
                        .iter()
                        .map(|a| crate::judge::JudgeResult {
                            judge: a.judge.name(),
                            passed: false,
                            score: 0.0,
                            reason: format!("judging timed out after {} ms", timeout.as_millis()),
                            weight: a.weight,
                            details: Value::Null,
                        })
                        .collect(),
                };
                let passed = results.iter().all(|r| r.passed);
                runs.push(Attempt {
                    passed,
                    output: Some(out.output.clone()),
                    error: None,
                    latency_ms: out.latency_ms,
                });
                judged.push((passed, results, out));
            }
            Err(e) => runs.push(Attempt {
                passed: false,
                output: None,
                error: Some(e),
                latency_ms: 0.0,
            }),
        }
    }
    let pass_count = runs.iter().filter(|r| r.passed).count() as u32;
    let usages: Vec<&crate::output::Usage> = judged
        .iter()
        .filter_map(|(_, _, o)| o.usage.as_ref())
        .collect();
    let usage = (!usages.is_empty()).then(|| crate::output::Usage {
        input_tokens: usages.iter().map(|u| u.input_tokens).sum(),
        output_tokens: usages.iter().map(|u| u.output_tokens).sum(),
        cost_usd: usages.iter().map(|u| u.cost_usd).sum::<Option<f64>>(),
    });
    // Majority of repeats; a tie fails.
    let passed = pass_count * 2 > repeats;
    // Show a run that agrees with the case verdict.
    let shown = judged
        .iter()
        .find(|(p, _, _)| *p == passed)
        .or(judged.first());
    let error = if judged.is_empty() {
        runs.iter().find_map(|r| r.error.clone())
    } else {
        None
    };
    CaseResult {
        case_id: case.id.clone(),
        passed,
        assertions: shown.map(|(_, r, _)| r.clone()).unwrap_or_default(),
        output: shown.map(|(_, _, o)| o.output.clone()),
        latency_ms: shown.map(|(_, _, o)| o.latency_ms).unwrap_or(0.0),
        error,
        pass_count,
        runs: if repeats > 1 { runs } else { Vec::new() },
        usage,
        cached: judged.iter().filter(|(_, _, o)| o.cached).count() as u32,
    }
}

/// Runs the suite's selected cases against `target`.
pub async fn run(
    suite: &Suite,
    target: Target,
    bundle: &BundleUnderTest,
    opts: RunOptions,
) -> Report {
    let start = Instant::now();
    let cases: Vec<Arc<Case>> = suite
        .selected(&opts.tags)
        .into_iter()
        .map(|c| Arc::new(c.clone()))
        .collect();
    let total = cases.len();
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let shared = Arc::new(Shared {
        vars: suite.vars.clone(),
        target,
        bundle: bundle.payload.clone(),
        repeats: opts.repeats,
        timeout: opts.case_timeout,
        retry: opts.retry,
        judges: opts.judges.clone(),
        pricing: suite.pricing,
    });
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for (i, case) in cases.iter().enumerate() {
        let (sem, shared, case, done) = (sem.clone(), shared.clone(), case.clone(), done.clone());
        let progress = opts.progress.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = run_case(case, shared).await;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if let Some(p) = progress {
                p(n, total);
            }
            (i, r)
        });
    }
    let mut results: Vec<Option<CaseResult>> = (0..total).map(|_| None).collect();
    let mut interrupted = false;
    loop {
        let next = match &opts.cancel {
            Some(cancel) => tokio::select! {
                j = set.join_next() => j,
                _ = cancel.notified() => {
                    // Stop: dropping the running cases kills their agents.
                    set.shutdown().await;
                    interrupted = true;
                    None
                }
            },
            None => set.join_next().await,
        };
        let Some(joined) = next else { break };
        if let Ok((i, mut r)) = joined {
            r.redact(&opts.redactor);
            results[i] = Some(r);
        }
    }
    let ran = results.iter().filter(|r| r.is_some()).count();
    // Interrupted: report the cases that finished. Otherwise a missing case
    // can only come from a panicked task: report it as errored, never drop it.
    let results: Vec<CaseResult> = results
        .into_iter()
        .zip(&cases)
        .filter(|(r, _)| !interrupted || r.is_some())
        .map(|(r, c)| {
            r.unwrap_or_else(|| CaseResult {
                case_id: c.id.clone(),
                passed: false,
                assertions: Vec::new(),
                output: None,
                latency_ms: 0.0,
                error: Some("internal error while running this case".into()),
                pass_count: 0,
                runs: Vec::new(),
                usage: None,
                cached: 0,
            })
        })
        .collect();
    let n = results.len() as u64;
    let passed = results.iter().filter(|r| r.passed).count() as u64;
    let errored = results.iter().filter(|r| r.error.is_some()).count() as u64;
    let split = results
        .iter()
        .filter(|r| r.pass_count > 0 && r.pass_count < opts.repeats)
        .count() as u64;
    let (verdict, reason) = if interrupted {
        (
            stats::Verdict::Inconclusive,
            format!(
                "interrupted: {ran} of {total} cases ran; this partial report cannot pass a gate"
            ),
        )
    } else {
        stats::verdict(passed, n, suite.pass_threshold, split)
    };
    let (lo, hi) = stats::wilson(passed, n, Z95);
    Report {
        bundle_id: bundle.id.clone(),
        bundle_version: bundle.version.clone(),
        suite_id: suite.id.clone(),
        timestamp: opts.timestamp,
        summary: Summary {
            total_cases: n,
            passed,
            failed: n - passed,
            pass_rate: if n == 0 {
                0.0
            } else {
                passed as f64 / n as f64
            },
            gate_decision: verdict,
            reason,
            threshold: suite.pass_threshold,
            ci_low: lo,
            ci_high: hi,
            errored,
            repeats: opts.repeats,
            split_cases: split,
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
            incomplete: interrupted,
            cached_calls: results.iter().map(|r| u64::from(r.cached)).sum(),
            input_tokens: results
                .iter()
                .filter_map(|r| r.usage.as_ref())
                .map(|u| u.input_tokens)
                .sum(),
            output_tokens: results
                .iter()
                .filter_map(|r| r.usage.as_ref())
                .map(|u| u.output_tokens)
                .sum(),
            cost_usd: if results
                .iter()
                .all(|r| r.usage.as_ref().is_some_and(|u| u.cost_usd.is_some()))
                && !results.is_empty()
            {
                Some(
                    results
                        .iter()
                        .filter_map(|r| r.usage.as_ref().and_then(|u| u.cost_usd))
                        .sum(),
                )
            } else {
                None
            },
        },
        results,
        bundle_hash: bundle.hash.clone(),
        run_id: opts.run_id,
        suite_version: suite.version,
    }
}
