//! `.releaseops/config.yaml`: the team's pipeline order, git behaviour and
//! approval teams. Absent means the defaults: dev -> staging -> prod, commits on.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::yaml::Node;
use crate::{FormatError, names};

pub const DEFAULT_PIPELINE: [&str; 3] = ["dev", "staging", "prod"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Environments in promotion order; each promotes into the next.
    pub pipeline: Vec<String>,
    #[serde(default)]
    pub git: GitConfig,
    /// team name -> members (actor strings, names or emails).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub teams: IndexMap<String, Vec<String>>,
    /// How the release decision agent reads time and risk for this team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentConfig>,
    /// A store for rehearsals (`releaseops init --rehearsal`): a simulated
    /// clock (RELEASEOPS_NOW with `--rehearsal`) is allowed here and nowhere
    /// else, and every record is marked. It counts only while every record
    /// in the history was written in rehearsal: a production store cannot be
    /// turned into one by editing this file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rehearsal: bool,
    /// How approvers are told apart.
    #[serde(default, skip_serializing_if = "IdentityConfig::is_default")]
    pub identity: IdentityConfig,
    /// How long a change waits for another one to finish.
    #[serde(default, skip_serializing_if = "LockConfig::is_default")]
    pub lock: LockConfig,
    /// The production trace store.
    #[serde(default, skip_serializing_if = "TracesConfig::is_default")]
    pub traces: TracesConfig,
    /// Webhooks told of what needs attention (pending approvals, blocked
    /// and overridden promotions, rollbacks, failing evaluations, the
    /// agent's NO_GO).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyTarget>,
    /// A git remote that is the team's source of truth: every change is
    /// fetched, applied on the remote's latest state and pushed with
    /// compare-and-swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncConfig>,
}

/// `sync:` of `config.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// A remote of the repository (`git remote -v` lists them), not a URL:
    /// the URL may hold credentials, and this file is committed.
    pub remote: String,
    /// The remote branch the store is kept on, written without a checkout.
    #[serde(default = "default_sync_branch")]
    pub branch: String,
    /// How often a change is re-applied when another clone pushed first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// How often `releaseops serve` fetches the remote (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_seconds: Option<f64>,
}

pub const DEFAULT_SYNC_BRANCH: &str = "releaseops-state";
const DEFAULT_SYNC_RETRIES: u32 = 200;

fn default_sync_branch() -> String {
    DEFAULT_SYNC_BRANCH.to_string()
}

impl SyncConfig {
    pub fn new(remote: &str) -> Self {
        SyncConfig {
            remote: remote.to_string(),
            branch: default_sync_branch(),
            retries: None,
            poll_seconds: None,
        }
    }

    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(DEFAULT_SYNC_RETRIES)
    }

    pub fn poll(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.poll_seconds.unwrap_or(10.0))
    }

    pub fn validate(&self) -> Result<(), FormatError> {
        validate_remote_name(&self.remote)?;
        validate_branch_name(&self.branch)?;
        if let Some(r) = self.retries
            && r > 1000
        {
            return Err(FormatError::Invalid(format!(
                "sync.retries must be at most 1000, got {r}"
            )));
        }
        if let Some(p) = self.poll_seconds
            && !(p.is_finite() && (0.1..=86_400.0).contains(&p))
        {
            return Err(FormatError::Invalid(format!(
                "sync.poll_seconds must be seconds from 0.1 to 86400, got {p}"
            )));
        }
        Ok(())
    }
}

/// A git remote's name as `git remote add` accepts it (and nothing git
/// could read as an option or a URL).
pub fn validate_remote_name(name: &str) -> Result<(), FormatError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['-', '.'])
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(FormatError::Invalid(
            "sync.remote must name a git remote (letters, digits, '-', '_', '.'), such as origin (a URL belongs in `git remote add`, where any credentials in it stay out of this committed file)".to_string()
        ))
    }
}

/// A branch name git accepts (`git check-ref-format --branch`), kept to
/// the characters a team would use.
pub fn validate_branch_name(name: &str) -> Result<(), FormatError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("/.")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(FormatError::Invalid(format!(
            "sync.branch '{}' is not a branch name git accepts; use letters, digits, '-', '_', '.' and '/', such as {DEFAULT_SYNC_BRANCH}",
            names::escape_for_display(name)
        )))
    }
}

/// One webhook of `notify:`. Its URL is a secret (a Slack webhook URL is
/// its own credential), so the file names the environment variable that
/// holds it, never the URL: this file is committed to git.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// What messages and warnings call it (`notify[0]` when unnamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The environment variable holding the URL (`RELEASEOPS_SLACK_WEBHOOK`).
    pub url_env: String,
    #[serde(default)]
    pub format: NotifyFormat,
    /// The events it wants; all of them when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotifyEvent>,
}

/// How a notification is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    /// A plain JSON document with every field.
    #[default]
    Json,
    /// Slack's incoming-webhook payload (`text` and `blocks`).
    Slack,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A promotion waits for approvals.
    ApprovalPending,
    /// A promotion was refused by a gate.
    PromotionBlocked,
    /// A promotion went through with its gates overridden.
    PromotionOverridden,
    Rollback,
    /// An evaluation's verdict is FAIL.
    EvalFailed,
    /// The decision agent said NO_GO.
    AgentNoGo,
}

impl NotifyEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::ApprovalPending => "approval_pending",
            NotifyEvent::PromotionBlocked => "promotion_blocked",
            NotifyEvent::PromotionOverridden => "promotion_overridden",
            NotifyEvent::Rollback => "rollback",
            NotifyEvent::EvalFailed => "eval_failed",
            NotifyEvent::AgentNoGo => "agent_no_go",
        }
    }
}

impl NotifyTarget {
    /// `name`, else `notify[i]`.
    pub fn label(&self, i: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("notify[{i}]"))
    }

    pub fn wants(&self, e: NotifyEvent) -> bool {
        self.events.is_empty() || self.events.contains(&e)
    }
}

/// `traces:` in config.yaml.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    /// Traces older than this many days are deleted; 30 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<f64>,
    /// Keep inputs, outputs, messages and tool arguments (replay and
    /// attribution need them). Off by default; secrets are redacted either way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capture_content: bool,
    /// A shared PostgreSQL database (`postgres://user@host/db`) instead of
    /// the embedded store. The password comes from PGPASSWORD or the
    /// RELEASEOPS_TRACES_DATABASE variable (which overrides this), never
    /// from this committed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

impl TracesConfig {
    fn is_default(&self) -> bool {
        *self == TracesConfig::default()
    }

    pub fn retention_days(&self) -> f64 {
        self.retention_days.unwrap_or(30.0)
    }

    fn validate(&self) -> Result<(), FormatError> {
        if let Some(d) = self.retention_days
            && !(d.is_finite() && d > 0.0 && d <= 36_500.0)
        {
            return Err(FormatError::Invalid(format!(
                "traces.retention_days must be days from above 0 to 36500, got {d}"
            )));
        }
        if let Some(url) = &self.database {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
                return Err(FormatError::Invalid(
                    "traces.database must be a postgres:// URL (the embedded store needs no setting)".into(),
                ));
            }
            // user:password@ in a committed file would put the password in git.
            let rest = &url[url.find("://").map_or(0, |i| i + 3)..];
            let auth = rest.split(['/', '?']).next().unwrap_or("");
            if auth.contains('@') && auth.split('@').next().is_some_and(|u| u.contains(':'))
                || lower.contains("password=")
            {
                return Err(FormatError::Invalid(
                    "traces.database holds a password, and config.yaml is committed: remove it and set PGPASSWORD (or the whole URL in RELEASEOPS_TRACES_DATABASE) where the server runs".into(),
                ));
            }
        }
        Ok(())
    }
}

/// `lock:` in config.yaml.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockConfig {
    /// Seconds a change waits for the one in progress before it fails
    /// (naming who holds the lock); 30 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<f64>,
}

impl LockConfig {
    fn is_default(&self) -> bool {
        self.wait_seconds.is_none()
    }

    pub fn wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.wait_seconds.unwrap_or(30.0).clamp(0.0, 86_400.0))
    }
}

/// `identity:` in config.yaml. Addresses are compared without case and
/// with `+tag` folded away (`alice+ci@acme.test` is `alice@acme.test`), so
/// one person cannot approve twice under two spellings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Domains whose mail delivers `name+tag@domain` to someone other than
    /// `name@domain`: there, `+tag` addresses are different people.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct_plus_domains: Vec<String>,
}

impl IdentityConfig {
    fn is_default(&self) -> bool {
        self.distinct_plus_domains.is_empty()
    }

    /// An address as people are told apart: lowercase, `+tag` folded
    /// unless the domain is listed.
    pub fn normalize_email(&self, email: &str) -> String {
        let email = email.trim().to_lowercase();
        let Some((local, domain)) = email.rsplit_once('@') else {
            return email;
        };
        if self
            .distinct_plus_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
        {
            return email;
        }
        match local.split_once('+') {
            Some((base, _)) if !base.is_empty() => format!("{base}@{domain}"),
            _ => email,
        }
    }
}

/// `agent:` in config.yaml.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The team's time zone (IANA name) for day-of-week and hour; UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Dates (YYYY-MM-DD) the team counts as holidays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
    /// Promotions of other bundles into the same environment this close (hours)
    /// count as a clash; 2 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clash_window_hours: Option<f64>,
    /// A rollback this soon (hours) after a promotion makes the agent's
    /// decision a failure; surviving it, a success. 24 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_hours: Option<f64>,
    /// Criticality per bundle (LOW, MEDIUM, HIGH), when the environment does
    /// not set one.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub criticality: IndexMap<String, String>,
    /// Bundles each bundle depends on: one of them moving (promoted or rolled
    /// back, in any environment) within the clash window is a clash.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub depends_on: IndexMap<String, Vec<String>>,
    /// A language model the agent consults after its built-in planner, red
    /// team and second look (it can only make a decision stricter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<AgentLlm>,
    /// What a decision weighs (relative units): an incident, a delay to the
    /// next allowed slot, a dropped release. 40, 1 and 5 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub costs: Option<AgentCosts>,
}

/// `agent.costs`: each a positive number; a key left out keeps its default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCosts {
    #[serde(default = "AgentCosts::default_incident")]
    pub incident: f64,
    #[serde(default = "AgentCosts::default_delay")]
    pub delay: f64,
    #[serde(default = "AgentCosts::default_drop")]
    pub drop: f64,
}

impl AgentCosts {
    fn default_incident() -> f64 {
        40.0
    }
    fn default_delay() -> f64 {
        1.0
    }
    fn default_drop() -> f64 {
        5.0
    }
}

impl Default for AgentCosts {
    fn default() -> Self {
        AgentCosts {
            incident: AgentCosts::default_incident(),
            delay: AgentCosts::default_delay(),
            drop: AgentCosts::default_drop(),
        }
    }
}

/// `agent.llm`: the key comes from the provider's usual environment variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentLlm {
    /// openai, anthropic, gemini or openai-compatible.
    pub provider: String,
    pub model: String,
    /// Overrides the provider's base URL (and its `*_BASE_URL` variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Per-request limit; 10,000 when unset. All the calls for one decision
    /// share 20 seconds (the store is locked while the agent decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl AgentConfig {
    pub fn clash_window_hours(&self) -> f64 {
        self.clash_window_hours.unwrap_or(2.0)
    }

    pub fn watch_hours(&self) -> f64 {
        self.watch_hours.unwrap_or(24.0)
    }

    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, FormatError> {
        match &self.timezone {
            None => Ok(jiff::tz::TimeZone::UTC),
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|_| {
                FormatError::Invalid(format!(
                    "agent.timezone '{name}' is not a known time zone; use an IANA name such as Europe/Berlin"
                ))
            }),
        }
    }

    /// `agent.costs`, or the defaults.
    pub fn costs(&self) -> AgentCosts {
        self.costs.unwrap_or_default()
    }

    fn validate(&self) -> Result<(), FormatError> {
        self.time_zone()?;
        if let Some(c) = &self.costs {
            for (what, v) in [
                ("incident", c.incident),
                ("delay", c.delay),
                ("drop", c.drop),
            ] {
                if !(v.is_finite() && v > 0.0) {
                    return Err(FormatError::Invalid(format!(
                        "agent.costs.{what} must be a positive number, got {v}"
                    )));
                }
            }
        }
        for d in &self.holidays {
            d.parse::<jiff::civil::Date>().map_err(|_| {
                FormatError::Invalid(format!("agent.holidays: '{d}' is not a date (YYYY-MM-DD)"))
            })?;
        }
        for (what, v) in [
            ("clash_window_hours", self.clash_window_hours),
            ("watch_hours", self.watch_hours),
        ] {
            if let Some(h) = v
                && !(h.is_finite() && (0.0..=8760.0).contains(&h))
            {
                return Err(FormatError::Invalid(format!(
                    "agent.{what} must be hours from 0 to 8760, got {h}"
                )));
            }
        }
        if let Some(l) = &self.llm {
            if !matches!(
                l.provider.as_str(),
                "openai" | "anthropic" | "gemini" | "openai-compatible"
            ) {
                return Err(FormatError::Invalid(format!(
                    "agent.llm.provider must be openai, anthropic, gemini or openai-compatible, got '{}'",
                    l.provider
                )));
            }
            if l.model.trim().is_empty() {
                return Err(FormatError::Invalid("agent.llm.model is empty".into()));
            }
            if let Some(u) = &l.base_url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(FormatError::Invalid(format!(
                    "agent.llm.base_url must start with http:// or https://, got '{u}'"
                )));
            }
        }
        for (bundle, deps) in &self.depends_on {
            crate::names::validate_bundle_id(bundle)?;
            for d in deps {
                crate::names::validate_bundle_id(d)?;
            }
        }
        for (bundle, level) in &self.criticality {
            if !matches!(level.as_str(), "LOW" | "MEDIUM" | "HIGH") {
                return Err(FormatError::Invalid(format!(
                    "agent.criticality.{bundle} must be LOW, MEDIUM or HIGH, got '{level}'"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitConfig {
    /// Commit each state change to git when `.releaseops/` is inside a repository.
    #[serde(default = "yes")]
    pub commit: bool,
}

fn yes() -> bool {
    true
}

impl Default for GitConfig {
    fn default() -> Self {
        GitConfig { commit: true }
    }
}

impl Default for ProjectConfig {
    fn default() -> Self {
        ProjectConfig {
            pipeline: DEFAULT_PIPELINE.iter().map(|s| s.to_string()).collect(),
            git: GitConfig::default(),
            teams: IndexMap::new(),
            agent: None,
            rehearsal: false,
            identity: IdentityConfig::default(),
            lock: LockConfig::default(),
            traces: TracesConfig::default(),
            notify: Vec::new(),
            sync: None,
        }
    }
}

impl ProjectConfig {
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let c: ProjectConfig = crate::yaml::from_bytes_plain(bytes)?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), FormatError> {
        if self.pipeline.is_empty() {
            return Err(FormatError::Invalid(
                "pipeline is empty; list the environments in promotion order".into(),
            ));
        }
        for (i, e) in self.pipeline.iter().enumerate() {
            names::validate_env_name(e)?;
            if self.pipeline[..i].contains(e) {
                return Err(FormatError::Invalid(format!("pipeline lists '{e}' twice")));
            }
            if let Some(other) = self.pipeline[..i]
                .iter()
                .find(|p| p.eq_ignore_ascii_case(e))
            {
                return Err(FormatError::Invalid(format!(
                    "pipeline lists '{other}' and '{e}', which differ only by case (one file on case-insensitive file systems)"
                )));
            }
        }
        if let Some(w) = self.lock.wait_seconds
            && !(w.is_finite() && (0.0..=86_400.0).contains(&w))
        {
            return Err(FormatError::Invalid(format!(
                "lock.wait_seconds must be seconds from 0 to 86400, got {w}"
            )));
        }
        if let Some(a) = &self.agent {
            a.validate()?;
        }
        self.traces.validate()?;
        if let Some(sync) = &self.sync {
            sync.validate()?;
        }
        for (i, t) in self.notify.iter().enumerate() {
            let v = t.url_env.as_str();
            let ok = !v.is_empty()
                && v.len() <= 128
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !v.as_bytes()[0].is_ascii_digit();
            if !ok {
                // Someone wrote the URL itself here: do not repeat it.
                return Err(FormatError::Invalid(format!(
                    "{}.url_env must name an environment variable (letters, digits and _), which holds the webhook's URL; a URL in config.yaml would be committed to git",
                    t.label(i)
                )));
            }
        }
        Ok(())
    }

    pub fn to_yaml(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or_default();
        Node::from_json(&v).to_yaml()
    }

    /// The environment a promotion into `env` comes from, if `env` is not first.
    pub fn upstream_of(&self, env: &str) -> Option<&str> {
        let i = self.pipeline.iter().position(|e| e == env)?;
        i.checked_sub(1).map(|j| self.pipeline[j].as_str())
    }

    pub fn position(&self, env: &str) -> Option<usize> {
        self.pipeline.iter().position(|e| e == env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let mut c = ProjectConfig::default();
        c.pipeline.insert(2, "canary".into());
        c.teams
            .insert("safety-team".into(), vec!["alice@example.com".into()]);
        let back = ProjectConfig::parse(c.to_yaml().as_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.upstream_of("prod"), Some("canary"));
        assert_eq!(back.upstream_of("dev"), None);
        assert!(ProjectConfig::parse(b"pipeline: [dev, dev]").is_err());
    }

    #[test]
    fn agent_costs_default_and_refuse_what_cannot_be_a_cost() {
        let base = "pipeline: [dev, prod]\nagent:\n";
        let c = ProjectConfig::parse(format!("{base}  costs: {{incident: 80}}\n").as_bytes())
            .expect("parses");
        let costs = c.agent.expect("agent").costs();
        assert_eq!((costs.incident, costs.delay, costs.drop), (80.0, 1.0, 5.0));
        assert_eq!(AgentConfig::default().costs(), AgentCosts::default());
        for (bad, field) in [
            ("{delay: 0}", "agent.costs.delay"),
            ("{drop: -5}", "agent.costs.drop"),
            ("{incident: .nan}", "agent.costs.incident"),
        ] {
            let e = ProjectConfig::parse(format!("{base}  costs: {bad}\n").as_bytes())
                .expect_err(bad)
                .to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
        let traces = |t: &str| {
            ProjectConfig::parse(format!("pipeline: [dev, prod]\ntraces: {t}\n").as_bytes())
        };
        let c = traces("{retention_days: 7, capture_content: true, database: 'postgres://ro@db.internal/traces'}").expect("traces");
        assert!(c.traces.capture_content && c.traces.retention_days() == 7.0);
        for (bad, want) in [
            ("{retention_day: 7}", "retention_day"),
            ("{retention_days: 0}", "retention_days"),
            ("{database: 'mysql://x'}", "postgres://"),
            ("{database: 'postgres://u:hunter2@db/x'}", "PGPASSWORD"),
        ] {
            let e = traces(bad).expect_err(bad).to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let e = ProjectConfig::parse(format!("{base}  costs: {{incidnet: 40}}\n").as_bytes())
            .expect_err("a misspelt cost")
            .to_string();
        assert!(e.contains("incidnet"), "{e}");
    }
}
