//! The context of one release decision, and the attributes the agent learns
//! over.
//!
//! A context is read from JSON such as
//! `{"env": "prod", "feature_risk": "HIGH", "service_criticality": "HIGH",
//! "day_of_week": "FRI", "hour_of_day": 16, "clash": true,
//! "conflicting_service": "PAYMENTS-SERVICE"}`. Fields the agent does not
//! know (`"region": "eu"`) are the team's own attributes: strings, booleans
//! or numbers, learned over like the built-in ones. Every problem names the
//! field.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
#[error("context field '{field}': {message}")]
pub struct ContextError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> ContextError {
    ContextError {
        field: field.to_string(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_uppercase().as_str() {
            "LOW" => Some(Level::Low),
            "MEDIUM" => Some(Level::Medium),
            "HIGH" => Some(Level::High),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "LOW",
            Level::Medium => "MEDIUM",
            Level::High => "HIGH",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// `FRI`, `fri`, `Friday` and `FRIDAY` are all Friday.
    pub fn parse(s: &str) -> Option<Day> {
        let u = s.to_ascii_uppercase();
        Day::ALL.into_iter().find(|d| {
            let short = d.as_str();
            u == short || (u.len() > 3 && u.starts_with(short) && u == d.full_name())
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Day::Mon => "MON",
            Day::Tue => "TUE",
            Day::Wed => "WED",
            Day::Thu => "THU",
            Day::Fri => "FRI",
            Day::Sat => "SAT",
            Day::Sun => "SUN",
        }
    }

    fn full_name(self) -> &'static str {
        match self {
            Day::Mon => "MONDAY",
            Day::Tue => "TUESDAY",
            Day::Wed => "WEDNESDAY",
            Day::Thu => "THURSDAY",
            Day::Fri => "FRIDAY",
            Day::Sat => "SATURDAY",
            Day::Sun => "SUNDAY",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Day {
        Day::ALL[i % 7]
    }

    pub fn is_weekend(self) -> bool {
        matches!(self, Day::Sat | Day::Sun)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the evaluations say about the version being promoted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalEvidence {
    /// Suites the environment requires that have no report for this version.
    #[serde(default)]
    pub missing_suites: Vec<String>,
    /// Suites whose latest report fails (its own verdict, or the
    /// environment's bar).
    #[serde(default)]
    pub failed: Vec<String>,
    /// Lowest pass rate over the required suites' latest reports.
    #[serde(default)]
    pub pass_rate: Option<f64>,
    /// Suites whose verdict was INCONCLUSIVE.
    #[serde(default)]
    pub inconclusive: Vec<String>,
    /// Cases that regressed significantly against the baseline.
    #[serde(default)]
    pub regressions: Vec<String>,
    /// Reports older than the environment allows.
    #[serde(default)]
    pub stale: Vec<String>,
}

/// One release decision's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub env: String,
    pub feature_risk: Level,
    pub service_criticality: Level,
    pub day_of_week: Day,
    pub hour_of_day: u8,
    pub clash: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicting_service: Option<String>,
    /// Whether the environment is production (the second look applies).
    #[serde(default)]
    pub production: bool,
    /// Why `feature_risk` is what it is (from the bundle diff).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk_factors: Vec<String>,
    /// A safety policy changed and no human approved the version yet.
    #[serde(default)]
    pub unapproved_safety_change: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evals: Option<EvalEvidence>,
    /// The day is one of the team's holidays.
    #[serde(default)]
    pub holiday: bool,
    /// Hours until the next freeze window starts, if one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_to_freeze: Option<f64>,
    /// Rollbacks and incidents of this bundle in the recent past.
    #[serde(default)]
    pub recent_rollbacks: u32,
    /// The team's own attributes (`region: eu`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

const KNOWN: [&str; 20] = [
    // The prototype's scenario and state fields (`clash_outcomes[0]` and
    // `conflicting_services[0]` are what its clash check reads; `stage`,
    // `history` and `decision` are its state machine's, not the release's).
    "clash_outcomes",
    "conflicting_services",
    "stage",
    "history",
    "decision",
    "holiday",
    "env",
    "feature_risk",
    "service_criticality",
    "day_of_week",
    "hour_of_day",
    "clash",
    "conflicting_service",
    "production",
    "risk_factors",
    "unapproved_safety_change",
    "evals",
    "hours_to_freeze",
    "recent_rollbacks",
    "extra",
];

/// The longest text accepted in a context field, so a context cannot smuggle
/// a document into the memory.
const MAX_TEXT: usize = 256;

impl Context {
    /// Reads and checks a context given as JSON.
    pub fn from_json(v: &Value) -> Result<Context, ContextError> {
        let Value::Object(map) = v else {
            return Err(bad("(context)", "must be a JSON object"));
        };
        let text = |field: &str, required: bool| -> Result<Option<String>, ContextError> {
            match map.get(field) {
                None | Some(Value::Null) if required => Err(bad(field, "is required")),
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Err(bad(field, "is empty")),
                Some(Value::String(s)) if s.len() > MAX_TEXT => {
                    Err(bad(field, format!("is longer than {MAX_TEXT} characters")))
                }
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(bad(field, format!("must be a string, got {other}"))),
            }
        };
        let level = |field: &str, default: Option<Level>| -> Result<Level, ContextError> {
            match (text(field, default.is_none())?, default) {
                (Some(s), _) => Level::parse(&s)
                    .ok_or_else(|| bad(field, format!("'{s}' is not one of LOW, MEDIUM, HIGH"))),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(bad(field, "is required")),
            }
        };
        let flag = |field: &str| -> Result<bool, ContextError> {
            match map.get(field) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(bad(field, format!("must be true or false, got {other}"))),
            }
        };
        // The prototype's scenarios are production releases with no `env`.
        let env = text("env", false)?.unwrap_or_else(|| "prod".to_string());
        // Its scenarios say a clash as `clash_outcomes: [true, ...]` and the
        // service as `conflicting_services: ["PAYMENTS-SERVICE"]` (or [""]
        // when there is none), and the first of each is what it checks.
        let first_clash = match map.get("clash_outcomes") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => match a.first() {
                None => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(other) => {
                    return Err(bad(
                        "clash_outcomes",
                        format!("must be a list of true/false, got {other}"),
                    ));
                }
            },
            Some(other) => {
                return Err(bad(
                    "clash_outcomes",
                    format!("must be a list of true/false, got {other}"),
                ));
            }
        };
        let first_service = match map.get("conflicting_services") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => match a.first() {
                None => None,
                Some(Value::String(s)) if s.len() <= MAX_TEXT => {
                    Some(s.trim().to_string()).filter(|s| !s.is_empty())
                }
                Some(_) => {
                    return Err(bad(
                        "conflicting_services",
                        "must be a list of short strings",
                    ));
                }
            },
            Some(_) => return Err(bad("conflicting_services", "must be a list of strings")),
        };
        // `""` is how the prototype says "no conflicting service".
        let conflicting_service = match map.get("conflicting_service") {
            Some(Value::String(s)) if s.trim().is_empty() => None,
            _ => text("conflicting_service", false)?,
        }
        .or(first_service);
        let clash = match map.get("clash") {
            None | Some(Value::Null) => first_clash.unwrap_or(false),
            _ => flag("clash")?,
        };
        let day_text = text("day_of_week", true)?.unwrap_or_default();
        let day_of_week = Day::parse(&day_text).ok_or_else(|| {
            bad(
                "day_of_week",
                format!("'{day_text}' is not a day (MON, TUE, WED, THU, FRI, SAT, SUN)"),
            )
        })?;
        let hour_of_day = match map.get("hour_of_day") {
            None | Some(Value::Null) => return Err(bad("hour_of_day", "is required")),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(h) if h <= 23 => h as u8,
                _ => return Err(bad("hour_of_day", format!("must be 0..=23, got {n}"))),
            },
            Some(other) => {
                return Err(bad(
                    "hour_of_day",
                    format!("must be a number 0..=23, got {other}"),
                ));
            }
        };
        let evals = match map.get("evals") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<EvalEvidence>(v.clone())
                    .map_err(|e| bad("evals", e.to_string()))?,
            ),
        };
        let hours_to_freeze = match map.get("hours_to_freeze") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(h) if h.is_finite() && h >= 0.0 => Some(h),
                _ => return Err(bad("hours_to_freeze", "must be a number >= 0")),
            },
            Some(other) => {
                return Err(bad(
                    "hours_to_freeze",
                    format!("must be a number, got {other}"),
                ));
            }
        };
        let recent_rollbacks = match map.get("recent_rollbacks") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| bad("recent_rollbacks", "must be a whole number >= 0"))?,
            Some(other) => {
                return Err(bad(
                    "recent_rollbacks",
                    format!("must be a number, got {other}"),
                ));
            }
        };
        let risk_factors = match map.get("risk_factors") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) if s.len() <= MAX_TEXT => Ok(s.clone()),
                    _ => Err(bad("risk_factors", "must be a list of short strings")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("risk_factors", "must be a list of strings")),
        };
        let mut extra = BTreeMap::new();
        let nested = match map.get("extra") {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(_) => return Err(bad("extra", "must be an object of attributes")),
        };
        let own = map.iter().filter(|(k, _)| !KNOWN.contains(&k.as_str()));
        for (k, v) in own.chain(nested.into_iter().flatten()) {
            if k.is_empty() || k.len() > 64 {
                return Err(bad(k, "attribute names are 1 to 64 characters"));
            }
            match v {
                Value::String(s) if s.len() <= MAX_TEXT => {}
                Value::Bool(_) => {}
                Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => {}
                _ => {
                    return Err(bad(
                        k,
                        "a team attribute must be a short string, a boolean or a number",
                    ));
                }
            }
            if extra.insert(k.clone(), v.clone()).is_some() {
                return Err(bad(k, "is given twice (at the top level and in 'extra')"));
            }
        }
        let production = flag("production")? || is_production_name(&env);
        Ok(Context {
            env,
            feature_risk: level("feature_risk", None)?,
            service_criticality: level("service_criticality", Some(Level::Medium))?,
            day_of_week,
            hour_of_day,
            clash,
            conflicting_service,
            production,
            risk_factors,
            unapproved_safety_change: flag("unapproved_safety_change")?,
            holiday: flag("holiday")?,
            evals,
            hours_to_freeze,
            recent_rollbacks,
            extra,
        })
    }

    /// The attributes the agent learns over: every built-in one, numbers in
    /// bands (the hour as night / morning / afternoon / evening), and the
    /// team's own.
    pub fn attributes(&self) -> Vec<(String, String)> {
        let mut a = vec![
            ("env".to_string(), self.env.clone()),
            ("feature_risk".to_string(), self.feature_risk.to_string()),
            (
                "service_criticality".to_string(),
                self.service_criticality.to_string(),
            ),
            ("day_of_week".to_string(), self.day_of_week.to_string()),
            ("hour_band".to_string(), hour_band(self.hour_of_day).into()),
            ("clash".to_string(), self.clash.to_string()),
        ];
        if let Some(s) = &self.conflicting_service {
            a.push(("conflicting_service".into(), s.clone()));
        }
        if self.holiday {
            a.push(("holiday".into(), "true".into()));
        }
        if let Some(h) = self.hours_to_freeze {
            a.push((
                "freeze".into(),
                if h < 24.0 { "within_24h" } else { "later" }.into(),
            ));
        }
        for (k, v) in &self.extra {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => number_band(n.as_f64().unwrap_or(0.0)),
                _ => continue,
            };
            a.push((k.clone(), value));
        }
        a
    }

    /// A context again from its remembered attributes ([`Context::attributes`]):
    /// an hour band is read as its middle hour, `freeze=within_24h` as 12
    /// hours to a freeze and `later` as 48. `None` when they do not make a
    /// context (a memory from a different shape of agent).
    pub fn from_attributes(attributes: &[(String, String)]) -> Option<Context> {
        let mut m = serde_json::Map::new();
        for (k, v) in attributes {
            let value = match k.as_str() {
                "hour_band" => {
                    let hour = match v.as_str() {
                        "night" => 3,
                        "morning" => 9,
                        "afternoon" => 14,
                        _ => 20,
                    };
                    m.insert("hour_of_day".into(), Value::from(hour));
                    continue;
                }
                "freeze" => {
                    let hours = if v == "within_24h" { 12.0 } else { 48.0 };
                    m.insert("hours_to_freeze".into(), Value::from(hours));
                    continue;
                }
                "clash" | "holiday" => Value::Bool(v == "true"),
                _ => Value::String(v.clone()),
            };
            m.insert(k.clone(), value);
        }
        Context::from_json(&Value::Object(m)).ok()
    }

    /// Is this one of the "timing" attributes (waiting changes it)?
    pub fn is_timing(attribute: &str) -> bool {
        matches!(
            attribute,
            "day_of_week" | "hour_band" | "freeze" | "clash" | "holiday"
        )
    }
}

/// `prod`, `production` and names starting with `prod-` count as production
/// unless the context says otherwise.
pub fn is_production_name(env: &str) -> bool {
    let e = env.to_ascii_lowercase();
    e == "prod" || e == "production" || e.starts_with("prod-") || e.starts_with("production-")
}

/// Hours in four bands: night (0-5), morning (6-11), afternoon (12-16),
/// evening (17-23).
pub fn hour_band(hour: u8) -> &'static str {
    match hour {
        0..=5 => "night",
        6..=11 => "morning",
        12..=16 => "afternoon",
        _ => "evening",
    }
}

/// Numbers in bands of powers of ten (`<0`, `0`, `1-9`, `10-99`, ...), so
/// patterns generalise beyond one exact value.
fn number_band(x: f64) -> String {
    if x < 0.0 {
        return "<0".into();
    }
    if x < 1.0 {
        return if x == 0.0 { "0".into() } else { "0-1".into() };
    }
    let lo = 10f64.powi(x.log10().floor() as i32);
    format!("{}-{}", lo as u64, (lo * 10.0) as u64 - 1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_prototypes_context() {
        let c = Context::from_json(&json!({"env": "prod", "feature_risk": "HIGH",
            "service_criticality": "HIGH", "day_of_week": "FRI", "hour_of_day": 16,
            "clash": true, "conflicting_service": "PAYMENTS-SERVICE", "region": "eu"}))
        .unwrap();
        assert_eq!(c.day_of_week, Day::Fri);
        assert!(c.production && c.clash);
        assert_eq!(c.extra["region"], json!("eu"));
        let attrs = c.attributes();
        assert!(attrs.contains(&("hour_band".into(), "afternoon".into())));
        assert!(attrs.contains(&("region".into(), "eu".into())));
    }

    #[test]
    fn reads_the_prototypes_scenarios_and_its_empty_service() {
        // Its scenarios, verbatim: no env (a production release), the clash
        // as a list of outcomes, the service as a list ([""] for none).
        let friday = Context::from_json(&json!({"feature_risk": "HIGH",
            "service_criticality": "HIGH", "day_of_week": "FRI", "hour_of_day": 16,
            "clash_outcomes": [true, false], "conflicting_services": ["PAYMENTS-SERVICE"]}))
        .unwrap();
        assert_eq!(friday.env, "prod");
        assert!(friday.production && friday.clash);
        assert_eq!(
            friday.conflicting_service.as_deref(),
            Some("PAYMENTS-SERVICE")
        );
        assert!(friday.extra.is_empty(), "{:?}", friday.extra);
        let tuesday = Context::from_json(&json!({"feature_risk": "LOW",
            "service_criticality": "MEDIUM", "day_of_week": "TUE", "hour_of_day": 10,
            "clash_outcomes": [false], "conflicting_services": [""]}))
        .unwrap();
        assert!(!tuesday.clash);
        assert_eq!(tuesday.conflicting_service, None);
        // Its state, as it writes it when there is no clash.
        let state = Context::from_json(&json!({"env": "prod", "feature_risk": "LOW",
            "service_criticality": "LOW", "day_of_week": "TUE", "hour_of_day": 10,
            "clash": false, "conflicting_service": "", "stage": "DECISION",
            "history": ["ACTION: evaluate_risk"], "decision": null}))
        .unwrap();
        assert_eq!(state.conflicting_service, None);
        assert!(state.extra.is_empty(), "{:?}", state.extra);
        for (patch, field) in [
            (json!({"clash_outcomes": "yes"}), "clash_outcomes"),
            (json!({"clash_outcomes": ["yes"]}), "clash_outcomes"),
            (json!({"conflicting_services": "A"}), "conflicting_services"),
        ] {
            let mut v = json!({"feature_risk": "LOW", "day_of_week": "TUE", "hour_of_day": 10});
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            assert_eq!(Context::from_json(&v).unwrap_err().field, field, "{patch}");
        }
    }

    #[test]
    fn bad_contexts_name_the_field() {
        let base =
            json!({"env": "prod", "feature_risk": "LOW", "day_of_week": "MON", "hour_of_day": 10});
        assert!(Context::from_json(&base).is_ok());
        for (patch, field) in [
            (json!({"feature_risk": "EXTREME"}), "feature_risk"),
            (json!({"feature_risk": null}), "feature_risk"),
            (json!({"hour_of_day": 25}), "hour_of_day"),
            (json!({"hour_of_day": -1}), "hour_of_day"),
            (json!({"hour_of_day": "10"}), "hour_of_day"),
            (json!({"day_of_week": "FUNDAY"}), "day_of_week"),
            (json!({"clash": "yes"}), "clash"),
            (json!({"env": ""}), "env"),
            (json!({"region": {"nested": 1}}), "region"),
            (json!({"evals": {"pass_rate": "high"}}), "evals"),
        ] {
            let mut v = base.clone();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            let e = Context::from_json(&v).unwrap_err();
            assert_eq!(e.field, field, "{patch}: {e}");
        }
        assert_eq!(
            Context::from_json(&json!([1])).unwrap_err().field,
            "(context)"
        );
    }

    #[test]
    fn days_and_bands() {
        assert_eq!(Day::parse("friday"), Some(Day::Fri));
        assert_eq!(Day::parse("FRIDAYS"), None);
        assert_eq!(Day::parse("F"), None);
        assert_eq!(hour_band(5), "night");
        assert_eq!(hour_band(17), "evening");
        assert_eq!(number_band(42.0), "10-99");
        assert_eq!(number_band(0.5), "0-1");
    }
}
