//! Environment files, `.releaseops/environments/<env>.yaml` (inventory section
//! 3.4), with the promotion policy that releaseops enforces. The existing
//! tool's keys come first and in its order; the gates it never had follow. A
//! key we do not know is an error, never ignored: a misspelt gate
//! (`requires_aproval`) must not turn the gate off.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::yaml::{Node, StrictString};
use crate::{FormatError, names};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvironmentFile {
    pub environment: String,
    /// bundle id -> version currently deployed.
    pub bundle_mappings: IndexMap<String, String>,
    pub promotion_policy: Option<PromotionPolicy>,
    pub metadata: Option<EnvMetadata>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvMetadata {
    pub last_updated: Option<String>,
    pub updated_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromotionPolicy {
    pub requires_eval: bool,
    pub requires_approval: bool,
    pub approval_teams: Vec<String>,
    pub soak_hours: f64,
    /// Named people who may approve (in addition to members of `approval_teams`).
    pub approvers: Vec<String>,
    /// Distinct eligible approvals needed; 1 when approval is required and unset.
    pub min_approvals: Option<u32>,
    /// Suites that must each have a passing report; any passing suite when empty.
    pub eval_suites: Vec<String>,
    /// The bar a report must clear here, judged again from its counts (so
    /// lowering a suite's own `pass_threshold` cannot open this environment).
    pub eval_min_pass_rate: Option<f64>,
    /// Let an INCONCLUSIVE verdict through (default: it blocks).
    pub eval_allow_inconclusive: bool,
    /// Reports older than this many hours do not count.
    pub eval_max_age_hours: Option<f64>,
    /// Block a significant regression (exact McNemar) against the newest run
    /// of the same suite on the version live in this environment.
    pub eval_no_regression_vs: Option<String>,
    pub freeze_windows: Vec<FreezeWindow>,
    /// `id@version` entries that may never enter this environment.
    pub rejected_versions: Vec<String>,
    /// The release decision agent decides each promotion: `blocking` (NO_GO
    /// fails, DELAY waits) or `advisory` (recorded and shown only).
    pub requires_agent: Option<AgentMode>,
    /// A HIGH red-team risk level turns the agent's GO into a DELAY.
    pub agent_red_team_blocks: bool,
    /// How critical the service is here: LOW, MEDIUM or HIGH (the agent
    /// weighs it; unset means MEDIUM).
    pub service_criticality: Option<String>,
    /// Approvals among those counted that must be signed with the
    /// approver's SSH key and verify against `.releaseops/allowed_signers`.
    pub min_signed_approvals: u32,
    /// Canary analysis: the candidate's production traffic in the upstream
    /// stage must not be significantly worse than what the baseline
    /// environment runs.
    pub requires_analysis: Option<AnalysisPolicy>,
}

/// The metrics a canary analysis can judge (the names `analytics compare`
/// reports).
pub const ANALYSIS_METRICS: [&str; 7] = [
    "error_rate",
    "latency",
    "latency_p95",
    "latency_p99",
    "input_tokens",
    "output_tokens",
    "cost",
];

/// `promotion_policy.requires_analysis`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisPolicy {
    /// The environment whose live version is the baseline (usually prod).
    pub baseline_env: String,
    /// Traces needed on each side before a verdict; fewer is pending.
    pub min_samples: u64,
    /// Only traces of the last this many hours count.
    pub window_hours: f64,
    /// The metrics judged, each of [`ANALYSIS_METRICS`].
    pub metrics: Vec<String>,
    /// How much worse a metric may get and still pass even when the change
    /// is significant: for error_rate in rate (0.01 = one point), for the
    /// others relative to the baseline (0.1 = 10 %). Zero when unset: any
    /// significant worsening fails.
    pub max_increase: IndexMap<String, f64>,
    /// Family-wise error rate of the tests (Holm-corrected); 0.05 when unset.
    pub alpha: f64,
}

impl AnalysisPolicy {
    pub const DEFAULT_METRICS: [&str; 2] = ["error_rate", "latency_p95"];
}

/// How an environment's promotions use the decision agent, as the policy and
/// the agent's decision records spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentMode {
    Blocking,
    Advisory,
}

impl AgentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentMode::Blocking => "blocking",
            AgentMode::Advisory => "advisory",
        }
    }
}

impl PromotionPolicy {
    pub fn required_approvals(&self) -> u32 {
        if self.requires_approval {
            self.min_approvals.unwrap_or(1).max(1)
        } else {
            0
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourMinute {
    pub hour: u8,
    pub minute: u8,
}

impl HourMinute {
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        let bad =
            || FormatError::invalid(format!("'{s}' is not a time of day; use HH:MM, e.g. 17:30"));
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let hour: u8 = h.parse().map_err(|_| bad())?;
        let minute: u8 = m.parse().map_err(|_| bad())?;
        if hour > 24 || minute > 59 || (hour == 24 && minute != 0) {
            return Err(bad());
        }
        Ok(HourMinute { hour, minute })
    }
    pub fn minutes(self) -> u32 {
        u32::from(self.hour) * 60 + u32::from(self.minute)
    }
}

impl std::fmt::Display for HourMinute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A period in which promotions into the environment are frozen: weekly
/// (`days` + `start`/`end`, crossing midnight when `end` <= `start`) or on
/// explicit dates (`2026-12-24` or a range `2026-12-20..2027-01-02`), both in a
/// named IANA time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeWindow {
    pub name: Option<String>,
    pub timezone: String,
    /// 0 = Monday .. 6 = Sunday.
    pub days: Vec<u8>,
    pub start: Option<HourMinute>,
    pub end: Option<HourMinute>,
    pub dates: Vec<(jiff::civil::Date, jiff::civil::Date)>,
    pub raw_dates: Vec<String>,
    pub reason: Option<String>,
}

impl FreezeWindow {
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| "freeze window".into())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    environment: StrictString,
    #[serde(default)]
    bundle_mappings: Option<IndexMap<String, StrictString>>,
    #[serde(default)]
    promotion_policy: Option<RawPolicy>,
    #[serde(default)]
    metadata: Option<RawEnvMetadata>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvMetadata {
    #[serde(default)]
    last_updated: Option<String>,
    #[serde(default)]
    updated_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    requires_eval: Option<bool>,
    #[serde(default)]
    requires_approval: Option<bool>,
    #[serde(default)]
    approval_teams: Option<Vec<String>>,
    #[serde(default)]
    soak_hours: Option<f64>,
    #[serde(default)]
    approvers: Option<Vec<String>>,
    #[serde(default)]
    min_approvals: Option<u32>,
    #[serde(default)]
    eval_suites: Option<Vec<String>>,
    #[serde(default)]
    eval_min_pass_rate: Option<f64>,
    #[serde(default)]
    eval_allow_inconclusive: Option<bool>,
    #[serde(default)]
    eval_max_age_hours: Option<f64>,
    #[serde(default)]
    eval_no_regression_vs: Option<String>,
    #[serde(default)]
    freeze_windows: Option<Vec<RawFreeze>>,
    #[serde(default)]
    rejected_versions: Option<Vec<String>>,
    #[serde(default)]
    requires_agent: Option<String>,
    #[serde(default)]
    agent_red_team_blocks: Option<bool>,
    #[serde(default)]
    service_criticality: Option<String>,
    #[serde(default)]
    min_signed_approvals: Option<u32>,
    #[serde(default)]
    requires_analysis: Option<RawAnalysis>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnalysis {
    baseline_env: String,
    #[serde(default)]
    min_samples: Option<u64>,
    #[serde(default)]
    window_hours: Option<f64>,
    #[serde(default)]
    metrics: Option<Vec<String>>,
    #[serde(default)]
    max_increase: Option<IndexMap<String, f64>>,
    #[serde(default)]
    alpha: Option<f64>,
}

impl RawAnalysis {
    fn convert(self) -> Result<AnalysisPolicy, FormatError> {
        let at = "promotion_policy.requires_analysis";
        names::validate_env_name(&self.baseline_env)?;
        let metric = |m: &str, what: &str| -> Result<(), FormatError> {
            if ANALYSIS_METRICS.contains(&m) {
                return Ok(());
            }
            let near = ANALYSIS_METRICS
                .iter()
                .find(|k| strsim::levenshtein(k, m) <= 2)
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            Err(FormatError::invalid(format!(
                "{at}.{what} names '{m}', which is not a metric{near}; use {}",
                ANALYSIS_METRICS.join(", ")
            )))
        };
        let metrics = match self.metrics {
            Some(m) if m.is_empty() => {
                return Err(FormatError::invalid(format!(
                    "{at}.metrics is empty: list what to judge, or leave it out for {}",
                    AnalysisPolicy::DEFAULT_METRICS.join(" and ")
                )));
            }
            Some(m) => m,
            None => AnalysisPolicy::DEFAULT_METRICS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        for m in &metrics {
            metric(m, "metrics")?;
        }
        let max_increase = self.max_increase.unwrap_or_default();
        for (k, v) in &max_increase {
            metric(k, "max_increase")?;
            if !metrics.contains(k) {
                return Err(FormatError::invalid(format!(
                    "{at}.max_increase sets {k}, which metrics does not judge; add it to metrics or drop it"
                )));
            }
            if !(v.is_finite() && *v >= 0.0) {
                return Err(FormatError::invalid(format!(
                    "{at}.max_increase.{k} must be a number of at least 0, got {v}"
                )));
            }
        }
        let min_samples = self.min_samples.unwrap_or(200);
        if !(1..=100_000_000).contains(&min_samples) {
            return Err(FormatError::invalid(format!(
                "{at}.min_samples must be from 1 to 100000000, got {min_samples}"
            )));
        }
        let window_hours = self.window_hours.unwrap_or(24.0);
        if !(window_hours.is_finite() && window_hours > 0.0 && window_hours <= 8_760.0) {
            return Err(FormatError::invalid(format!(
                "{at}.window_hours must be hours above 0 and at most 8760, got {window_hours}"
            )));
        }
        let alpha = self.alpha.unwrap_or(0.05);
        if !(alpha > 0.0 && alpha < 0.5) {
            return Err(FormatError::invalid(format!(
                "{at}.alpha must be above 0 and below 0.5, got {alpha}"
            )));
        }
        Ok(AnalysisPolicy {
            baseline_env: self.baseline_env,
            min_samples,
            window_hours,
            metrics,
            max_increase,
            alpha,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreeze {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    days: Option<Vec<String>>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    dates: Option<Vec<String>>,
    #[serde(default)]
    reason: Option<String>,
}

fn parse_date(s: &str) -> Result<jiff::civil::Date, FormatError> {
    s.trim()
        .parse::<jiff::civil::Date>()
        .map_err(|_| FormatError::invalid(format!("'{s}' is not a date; use YYYY-MM-DD")))
}

impl RawFreeze {
    fn convert(self, i: usize) -> Result<FreezeWindow, FormatError> {
        let ctx =
            |m: String| FormatError::invalid(format!("promotion_policy.freeze_windows[{i}]: {m}"));
        let mut days = Vec::new();
        for d in self.days.unwrap_or_default() {
            let lower = d.to_ascii_lowercase();
            let idx = WEEKDAYS
                .iter()
                .position(|w| {
                    lower == *w
                        || FULL_WEEKDAYS.iter().position(|f| *f == lower)
                            == WEEKDAYS.iter().position(|x| x == w)
                })
                .ok_or_else(|| ctx(format!("'{d}' is not a weekday (mon..sun)")))?;
            days.push(idx as u8);
        }
        let start = self
            .start
            .as_deref()
            .map(HourMinute::parse)
            .transpose()
            .map_err(|e| ctx(e.to_string()))?;
        let end = self
            .end
            .as_deref()
            .map(HourMinute::parse)
            .transpose()
            .map_err(|e| ctx(e.to_string()))?;
        let raw_dates = self.dates.unwrap_or_default();
        let mut dates = Vec::new();
        for d in &raw_dates {
            let (a, b) = match d.split_once("..") {
                Some((a, b)) => (parse_date(a), parse_date(b)),
                None => (parse_date(d), parse_date(d)),
            };
            let (a, b) = (
                a.map_err(|e| ctx(e.to_string()))?,
                b.map_err(|e| ctx(e.to_string()))?,
            );
            if b < a {
                return Err(ctx(format!("date range '{d}' ends before it starts")));
            }
            dates.push((a, b));
        }
        if days.is_empty() && dates.is_empty() {
            return Err(ctx("give 'days' (with 'start'/'end') or 'dates'".into()));
        }
        if !days.is_empty() && (start.is_none() != end.is_none()) {
            return Err(ctx(
                "give both 'start' and 'end', or neither for whole days".into(),
            ));
        }
        Ok(FreezeWindow {
            name: self.name,
            timezone: self.timezone.unwrap_or_else(|| "UTC".into()),
            days,
            start,
            end,
            dates,
            raw_dates,
            reason: self.reason,
        })
    }
}

impl EnvironmentFile {
    pub fn new(name: &str) -> Self {
        EnvironmentFile {
            environment: name.to_string(),
            ..Default::default()
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let raw: RawEnv = crate::yaml::from_bytes_plain(bytes)?;
        names::validate_env_name(&raw.environment)?;
        let mut mappings = IndexMap::new();
        for (id, v) in raw.bundle_mappings.unwrap_or_default() {
            names::validate_bundle_id(&id)?;
            names::validate_version(&v)?;
            mappings.insert(id, v.0);
        }
        let policy = match raw.promotion_policy {
            None => None,
            Some(p) => {
                let soak = p.soak_hours.unwrap_or(0.0);
                // Ten years: anything longer is a typo, and it must fit a duration.
                if !soak.is_finite() || !(0.0..=87_600.0).contains(&soak) {
                    return Err(FormatError::invalid(format!(
                        "promotion_policy.soak_hours must be a number of hours from 0 to 87600, got {soak}"
                    )));
                }
                let freeze = p
                    .freeze_windows
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| f.convert(i))
                    .collect::<Result<Vec<_>, _>>()?;
                for r in p.rejected_versions.iter().flatten() {
                    let (id, v) = r.split_once('@').ok_or_else(|| {
                        FormatError::invalid(format!(
                            "promotion_policy.rejected_versions entry '{r}' must be id@version"
                        ))
                    })?;
                    names::validate_bundle_id(id)?;
                    names::validate_version(v)?;
                }
                Some(PromotionPolicy {
                    requires_eval: p.requires_eval.unwrap_or(false),
                    requires_approval: p.requires_approval.unwrap_or(false),
                    approval_teams: p.approval_teams.unwrap_or_default(),
                    soak_hours: soak,
                    approvers: p.approvers.unwrap_or_default(),
                    min_approvals: p.min_approvals,
                    eval_suites: p.eval_suites.unwrap_or_default(),
                    eval_min_pass_rate: match p.eval_min_pass_rate {
                        Some(r) if !(0.0..=1.0).contains(&r) => {
                            return Err(FormatError::invalid(format!(
                                "promotion_policy.eval_min_pass_rate must be between 0 and 1, got {r}"
                            )));
                        }
                        other => other,
                    },
                    eval_allow_inconclusive: p.eval_allow_inconclusive.unwrap_or(false),
                    eval_max_age_hours: match p.eval_max_age_hours {
                        Some(h) if !(h.is_finite() && h > 0.0 && h <= 87_600.0) => {
                            return Err(FormatError::invalid(format!(
                                "promotion_policy.eval_max_age_hours must be hours from 0 to 87600, got {h}"
                            )));
                        }
                        other => other,
                    },
                    eval_no_regression_vs: match p.eval_no_regression_vs {
                        Some(e) => {
                            names::validate_env_name(&e)?;
                            Some(e)
                        }
                        None => None,
                    },
                    freeze_windows: freeze,
                    rejected_versions: p.rejected_versions.unwrap_or_default(),
                    requires_agent: match p.requires_agent.as_deref() {
                        None => None,
                        Some("blocking") => Some(AgentMode::Blocking),
                        Some("advisory") => Some(AgentMode::Advisory),
                        Some(other) => {
                            return Err(FormatError::invalid(format!(
                                "promotion_policy.requires_agent must be blocking or advisory, got '{other}'"
                            )));
                        }
                    },
                    agent_red_team_blocks: p.agent_red_team_blocks.unwrap_or(false),
                    service_criticality: match p.service_criticality {
                        Some(c) if !matches!(c.as_str(), "LOW" | "MEDIUM" | "HIGH") => {
                            return Err(FormatError::invalid(format!(
                                "promotion_policy.service_criticality must be LOW, MEDIUM or HIGH, got '{c}'"
                            )));
                        }
                        other => other,
                    },
                    min_signed_approvals: p.min_signed_approvals.unwrap_or(0),
                    requires_analysis: p.requires_analysis.map(RawAnalysis::convert).transpose()?,
                })
            }
        };
        Ok(EnvironmentFile {
            environment: raw.environment.0,
            bundle_mappings: mappings,
            promotion_policy: policy,
            metadata: raw.metadata.map(|m| EnvMetadata {
                last_updated: m.last_updated,
                updated_by: m.updated_by,
            }),
        })
    }

    pub fn to_node(&self) -> Node {
        let mut top = vec![
            ("environment".to_string(), Node::str(&self.environment)),
            (
                "bundle_mappings".to_string(),
                Node::Map(
                    self.bundle_mappings
                        .iter()
                        .map(|(k, v)| (k.clone(), Node::str(v)))
                        .collect(),
                ),
            ),
        ];
        if let Some(p) = &self.promotion_policy {
            top.push(("promotion_policy".into(), policy_node(p)));
        }
        if let Some(m) = &self.metadata {
            let mut mm = Vec::new();
            if let Some(t) = &m.last_updated {
                mm.push(("last_updated".to_string(), Node::str(t)));
            }
            if let Some(u) = &m.updated_by {
                mm.push(("updated_by".to_string(), Node::str(u)));
            }
            top.push(("metadata".into(), Node::Map(mm)));
        }
        Node::Map(top)
    }

    pub fn to_yaml(&self) -> String {
        self.to_node().to_yaml()
    }
}

fn strs(v: &[String]) -> Node {
    Node::Seq(v.iter().map(Node::str).collect())
}

fn policy_node(p: &PromotionPolicy) -> Node {
    let mut m = vec![
        ("requires_eval".to_string(), Node::Bool(p.requires_eval)),
        (
            "requires_approval".to_string(),
            Node::Bool(p.requires_approval),
        ),
    ];
    if !p.approval_teams.is_empty() {
        m.push(("approval_teams".into(), strs(&p.approval_teams)));
    }
    if p.soak_hours > 0.0 {
        let n = if p.soak_hours.fract() == 0.0 && p.soak_hours < 1e15 {
            Node::Int(p.soak_hours as i64)
        } else {
            Node::Float(p.soak_hours)
        };
        m.push(("soak_hours".into(), n));
    }
    if !p.approvers.is_empty() {
        m.push(("approvers".into(), strs(&p.approvers)));
    }
    if let Some(n) = p.min_approvals {
        m.push(("min_approvals".into(), Node::UInt(n.into())));
    }
    if !p.eval_suites.is_empty() {
        m.push(("eval_suites".into(), strs(&p.eval_suites)));
    }
    if let Some(r) = p.eval_min_pass_rate {
        m.push(("eval_min_pass_rate".into(), Node::Float(r)));
    }
    if let Some(h) = p.eval_max_age_hours {
        m.push(("eval_max_age_hours".into(), Node::Float(h)));
    }
    if let Some(e) = &p.eval_no_regression_vs {
        m.push(("eval_no_regression_vs".into(), Node::str(e)));
    }
    if p.eval_allow_inconclusive {
        m.push(("eval_allow_inconclusive".into(), Node::Bool(true)));
    }
    if !p.freeze_windows.is_empty() {
        m.push((
            "freeze_windows".into(),
            Node::Seq(p.freeze_windows.iter().map(freeze_node).collect()),
        ));
    }
    if !p.rejected_versions.is_empty() {
        m.push(("rejected_versions".into(), strs(&p.rejected_versions)));
    }
    if let Some(a) = p.requires_agent {
        m.push(("requires_agent".into(), Node::str(a.as_str())));
    }
    if p.agent_red_team_blocks {
        m.push(("agent_red_team_blocks".into(), Node::Bool(true)));
    }
    if let Some(c) = &p.service_criticality {
        m.push(("service_criticality".into(), Node::str(c)));
    }
    if p.min_signed_approvals > 0 {
        m.push((
            "min_signed_approvals".into(),
            Node::UInt(p.min_signed_approvals.into()),
        ));
    }
    if let Some(a) = &p.requires_analysis {
        let mut am = vec![
            ("baseline_env".to_string(), Node::str(&a.baseline_env)),
            ("min_samples".to_string(), Node::UInt(a.min_samples)),
            ("window_hours".to_string(), Node::Float(a.window_hours)),
            ("metrics".to_string(), strs(&a.metrics)),
        ];
        if !a.max_increase.is_empty() {
            am.push((
                "max_increase".into(),
                Node::Map(
                    a.max_increase
                        .iter()
                        .map(|(k, v)| (k.clone(), Node::Float(*v)))
                        .collect(),
                ),
            ));
        }
        if a.alpha != 0.05 {
            am.push(("alpha".into(), Node::Float(a.alpha)));
        }
        m.push(("requires_analysis".into(), Node::Map(am)));
    }
    Node::Map(m)
}

fn freeze_node(f: &FreezeWindow) -> Node {
    let mut m = Vec::new();
    if let Some(n) = &f.name {
        m.push(("name".to_string(), Node::str(n)));
    }
    m.push(("timezone".into(), Node::str(&f.timezone)));
    if !f.days.is_empty() {
        m.push((
            "days".into(),
            Node::Seq(
                f.days
                    .iter()
                    .map(|d| Node::str(WEEKDAYS[usize::from(*d) % 7]))
                    .collect(),
            ),
        ));
    }
    if let Some(s) = f.start {
        m.push(("start".into(), Node::str(s.to_string())));
    }
    if let Some(e) = f.end {
        m.push(("end".into(), Node::str(e.to_string())));
    }
    if !f.raw_dates.is_empty() {
        m.push(("dates".into(), strs(&f.raw_dates)));
    }
    if let Some(r) = &f.reason {
        m.push(("reason".into(), Node::str(r)));
    }
    Node::Map(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: &str = "environment: prod
bundle_mappings:
  support-agent: 1.2.0
promotion_policy:
  requires_eval: true
  requires_approval: true
  approval_teams:
  - safety-team
  soak_hours: 24
metadata:
  last_updated: '2026-11-21T21:31:16.416793+00:00'
  updated_by: cli
";

    #[test]
    fn the_analysis_policy_parses_round_trips_and_refuses_what_it_cannot_mean() {
        let env = |a: &str| {
            EnvironmentFile::parse(
                format!("environment: prod\nbundle_mappings: {{}}\npromotion_policy:\n  requires_analysis:\n{a}").as_bytes(),
            )
        };
        let e = env("    baseline_env: prod\n    metrics: [error_rate, latency_p95]\n    max_increase: {latency_p95: 0.1}\n").unwrap();
        let a = e
            .promotion_policy
            .as_ref()
            .unwrap()
            .requires_analysis
            .as_ref()
            .unwrap();
        assert_eq!((a.min_samples, a.window_hours, a.alpha), (200, 24.0, 0.05));
        assert_eq!(a.max_increase["latency_p95"], 0.1);
        let again = EnvironmentFile::parse(e.to_yaml().as_bytes()).unwrap();
        assert_eq!(again, e);
        let defaults = env("    baseline_env: prod\n").unwrap();
        assert_eq!(
            defaults
                .promotion_policy
                .unwrap()
                .requires_analysis
                .unwrap()
                .metrics,
            vec!["error_rate", "latency_p95"]
        );
        for (bad, want) in [
            ("    baseline_env: prod\n    min_sample: 5\n", "min_sample"),
            ("    min_samples: 5\n", "baseline_env"),
            (
                "    baseline_env: prod\n    metrics: [error_rte]\n",
                "did you mean error_rate",
            ),
            (
                "    baseline_env: prod\n    metrics: []\n",
                "metrics is empty",
            ),
            (
                "    baseline_env: prod\n    max_increase: {cost: 0.1}\n",
                "does not judge",
            ),
            (
                "    baseline_env: prod\n    max_increase: {error_rate: -1}\n",
                "at least 0",
            ),
            (
                "    baseline_env: prod\n    window_hours: 0\n",
                "window_hours",
            ),
            ("    baseline_env: prod\n    alpha: 0.9\n", "alpha"),
            ("    baseline_env: ../prod\n", "prod"),
        ] {
            let e = env(bad).expect_err(bad).to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn python_environment_round_trips() {
        let e = EnvironmentFile::parse(PROD.as_bytes()).unwrap();
        assert_eq!(e.promotion_policy.as_ref().unwrap().soak_hours, 24.0);
        assert_eq!(e.to_yaml(), PROD);
    }

    #[test]
    fn unknown_keys_are_errors_with_a_suggestion() {
        for (doc, want) in [
            (format!("{PROD}owner: team-a\n"), "unknown field `owner`"),
            (
                PROD.replace("  soak_hours: 24\n", "  soak_hours: 24\n  soak_hour: 2\n"),
                "did you mean `soak_hours`?",
            ),
            (
                PROD.replace(
                    "  soak_hours: 24\n",
                    "  soak_hours: 24\n  requires_aproval: true\n",
                ),
                "did you mean `requires_approval`?",
            ),
        ] {
            let e = EnvironmentFile::parse(doc.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains("line "), "{e}");
        }
    }

    #[test]
    fn freeze_windows_parse_and_validate() {
        let doc = PROD.replace(
                "  soak_hours: 24\n",
                "  soak_hours: 24\n  freeze_windows:\n  - name: weekend\n    timezone: Europe/Berlin\n    days: [fri, sat]\n    start: '17:00'\n    end: '09:00'\n  - dates: ['2026-12-24', '2026-12-30..2027-01-02']\n",
            );
        let e = EnvironmentFile::parse(doc.as_bytes()).unwrap();
        let fw = &e.promotion_policy.as_ref().unwrap().freeze_windows;
        assert_eq!(fw[0].days, vec![4, 5]);
        assert_eq!(fw[1].dates.len(), 2);
        let again = EnvironmentFile::parse(e.to_yaml().as_bytes()).unwrap();
        assert_eq!(again, e);
        let bad = doc.replace("days: [fri, sat]", "days: [friyay]");
        assert!(EnvironmentFile::parse(bad.as_bytes()).is_err());
    }

    #[test]
    fn bare_float_mapping_is_refused() {
        let e = EnvironmentFile::parse(b"environment: dev\nbundle_mappings:\n  flt: 1.10\n")
            .unwrap_err();
        assert!(e.to_string().contains("bare number"), "{e}");
    }
}
