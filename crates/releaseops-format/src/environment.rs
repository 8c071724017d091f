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
