//! Eval reports: what ran, on which exact bundle, with what verdict. The YAML
//! form keeps the existing tool's keys (`bundle_id`, `bundle_version`,
//! `suite_id`, `timestamp`, `summary.{total_cases,passed,failed,pass_rate,
//! gate_decision}`, `results[]`, `bundle_hash`) so its readers and ours agree,
//! and adds the statistics. Also Markdown (for a pull request) and JUnit XML
//! (for CI dashboards).

use serde::{Deserialize, Serialize};

use releaseops_stats::Verdict;

use crate::judge::JudgeResult;
use crate::secrets::Redactor;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub total_cases: u64,
    pub passed: u64,
    pub failed: u64,
    pub pass_rate: f64,
    pub gate_decision: Verdict,
    pub reason: String,
    pub threshold: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub errored: u64,
    pub repeats: u32,
    pub split_cases: u64,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Calls answered from the response cache (no request was made).
    pub cached_calls: u64,
    /// Total cost in USD, when every case's cost is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Attempt {
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CaseResult {
    pub case_id: String,
    pub passed: bool,
    pub assertions: Vec<JudgeResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With repeats: how many runs passed, and each run.
    pub pass_count: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Attempt>,
    /// Tokens (and cost) over all runs of the case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::output::Usage>,
    /// Runs answered from the response cache.
    #[serde(skip_serializing_if = "is_zero")]
    pub cached: u32,
}

impl CaseResult {
    /// The failed judges, as "judge: reason; judge: reason".
    pub fn failed_judges(&self) -> String {
        self.assertions
            .iter()
            .filter(|a| !a.passed)
            .map(|a| format!("{}: {}", a.judge, a.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Why the case failed: the error that stopped it, else its failed judges.
    pub fn why_failed(&self) -> String {
        self.error.clone().unwrap_or_else(|| self.failed_judges())
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    pub bundle_id: String,
    pub bundle_version: String,
    pub suite_id: String,
    pub timestamp: String,
    pub summary: Summary,
    pub results: Vec<CaseResult>,
    pub bundle_hash: String,
    pub run_id: String,
    pub suite_version: u64,
}

impl Report {
    pub fn to_yaml(&self) -> String {
        releaseops_format::yaml::Node::from_json(&serde_json::to_value(self).unwrap_or_default())
            .to_yaml()
    }

    pub fn to_markdown(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "## Eval `{}` on `{}@{}`: **{}**\n\n{}\n\n| cases | passed | failed | errored | pass rate | 95% CI | threshold |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {:.1}% | {:.1}%-{:.1}% | {:.0}% |\n",
            self.suite_id,
            self.bundle_id,
            self.bundle_version,
            s.gate_decision,
            s.reason,
            s.total_cases,
            s.passed,
            s.failed,
            s.errored,
            s.pass_rate * 100.0,
            s.ci_low * 100.0,
            s.ci_high * 100.0,
            s.threshold * 100.0
        );
        let failed: Vec<&CaseResult> = self.results.iter().filter(|c| !c.passed).collect();
        if !failed.is_empty() {
            out.push_str("\n### Failed cases\n\n");
            for c in failed {
                let why = c.why_failed();
                out.push_str(&format!(
                    "- **{}**: {}\n",
                    c.case_id,
                    why.replace('\n', " ")
                ));
            }
        }
        out.push_str(&format!(
            "\n<sub>bundle hash `{}` · run `{}`</sub>\n",
            self.bundle_hash, self.run_id
        ));
        out
    }

    /// One self-contained HTML file (no scripts, no external resources).
    pub fn to_html(&self) -> String {
        let esc = |t: &str| {
            t.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let s = &self.summary;
        let colour = match s.gate_decision {
            Verdict::Pass => "#1a7f37",
            Verdict::Fail => "#cf222e",
            Verdict::Inconclusive => "#9a6700",
        };
        let mut rows = String::new();
        for c in &self.results {
            let why = c.error.clone().unwrap_or_else(|| {
                c.assertions
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {}: {}",
                            if a.passed { "✓" } else { "✗" },
                            a.judge,
                            a.reason
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            rows.push_str(&format!(
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td><td>{:.0} ms</td></tr>\n",
                if c.passed { "pass" } else { "fail" },
                esc(&c.case_id),
                if c.passed { "pass" } else { "fail" },
                esc(&why),
                esc(c.output.as_deref().unwrap_or("")),
                c.latency_ms
            ));
        }
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Eval {suite} on {id}@{ver}: {dec}</title>\n<style>\nbody{{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328}}h1{{font-size:1.4rem}}.verdict{{color:#fff;background:{colour};padding:.2rem .6rem;border-radius:4px}}\ntable{{border-collapse:collapse;width:100%;margin-top:1rem}}td,th{{border:1px solid #d0d7de;padding:.4rem;vertical-align:top;text-align:left}}\ntr.fail td:nth-child(2){{color:#cf222e;font-weight:600}}tr.pass td:nth-child(2){{color:#1a7f37}}pre{{margin:0;white-space:pre-wrap;word-break:break-word}}.meta{{color:#57606a;font-size:.9rem}}\n</style></head><body>\n<h1>Eval <code>{suite}</code> on <code>{id}@{ver}</code> <span class=\"verdict\">{dec}</span></h1>\n<p>{reason}</p>\n<table><tr><th>cases</th><th>passed</th><th>failed</th><th>errored</th><th>pass rate</th><th>95% CI</th><th>threshold</th></tr>\n<tr><td>{n}</td><td>{p}</td><td>{f}</td><td>{e}</td><td>{rate:.1}%</td><td>{lo:.1}%-{hi:.1}%</td><td>{t:.0}%</td></tr></table>\n<table><tr><th>case</th><th>verdict</th><th>judges</th><th>output</th><th>latency</th></tr>\n{rows}</table>\n<p class=\"meta\">bundle hash {hash} · run {run} · {ts}</p>\n</body></html>\n",
            suite = esc(&self.suite_id),
            id = esc(&self.bundle_id),
            ver = esc(&self.bundle_version),
            dec = s.gate_decision,
            reason = esc(&s.reason),
            n = s.total_cases,
            p = s.passed,
            f = s.failed,
            e = s.errored,
            rate = s.pass_rate * 100.0,
            lo = s.ci_low * 100.0,
            hi = s.ci_high * 100.0,
            t = s.threshold * 100.0,
            hash = esc(&self.bundle_hash),
            run = esc(&self.run_id),
            ts = esc(&self.timestamp),
        )
    }

    pub fn to_junit(&self) -> String {
        let esc = |s: &str| {
            s.chars()
                .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
                .collect::<String>()
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let failures = self
            .results
            .iter()
            .filter(|c| !c.passed && c.error.is_none())
            .count();
        let errors = self.results.iter().filter(|c| c.error.is_some()).count();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">\n",
            esc(&format!(
                "{}@{}:{}",
                self.bundle_id, self.bundle_version, self.suite_id
            )),
            self.results.len(),
            self.summary.duration_ms / 1000.0
        );
        for c in &self.results {
            out.push_str(&format!(
                "  <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                esc(&c.case_id),
                esc(&self.suite_id),
                c.latency_ms / 1000.0
            ));
            if let Some(e) = &c.error {
                out.push_str(&format!(
                    ">\n    <error message=\"{}\"/>\n  </testcase>\n",
                    esc(e)
                ));
            } else if !c.passed {
                out.push_str(&format!(
                    ">\n    <failure message=\"{}\"/>\n  </testcase>\n",
                    esc(&c.failed_judges())
                ));
            } else {
                out.push_str("/>\n");
            }
        }
        out.push_str("</testsuite>\n");
        out
    }
}

impl CaseResult {
    /// Redacts every text a case result keeps: its output, errors and the
    /// judges' reasons and details.
    pub fn redact(&mut self, secrets: &Redactor) {
        if secrets.is_empty() {
            return;
        }
        for s in [&mut self.output, &mut self.error].into_iter().flatten() {
            secrets.redact_string(s);
        }
        for a in &mut self.assertions {
            secrets.redact_string(&mut a.reason);
            secrets.redact_json(&mut a.details);
        }
        for r in &mut self.runs {
            for s in [&mut r.output, &mut r.error].into_iter().flatten() {
                secrets.redact_string(s);
            }
        }
    }
}
