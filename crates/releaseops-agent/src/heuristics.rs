//! Heuristics learned from outcomes.
//!
//! For every pattern of one or two context attributes (`day_of_week: FRI`,
//! `feature_risk: HIGH` and `service_criticality: HIGH`), the outcomes of the
//! episodes that match it are counted and set against the episodes that do
//! not. A pattern that fails clearly more often than the rest (at least twice
//! as often, 5 points more, and even the low end of its 95 % Wilson interval
//! above the rest's rate) becomes a NO_GO heuristic (DELAY when every
//! attribute in it is about timing, which waiting changes); one that fails
//! clearly less often, a GO heuristic. Confidence is the share of the gap
//! that survives the interval, so a pattern seen a few times cannot be
//! trusted much; it is also held to the existing rules: between 0 and 1, at
//! least one supporting episode, at most 0.6 with fewer than three. A heuristic that later outcomes
//! contradict loses confidence and, once below the bar it was applied at, is
//! retired, keeping its history.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::context::Context;
use crate::memory::Memory;

/// Heuristics at or above this confidence are applied by the planner.
pub const APPLY_AT: f64 = 0.6;
/// Heuristics are derived again after this many new outcomes.
pub const REFLECT_EVERY_DEFAULT: u64 = 5;
/// Heuristics below this are not kept (unless retired from above).
const KEEP_AT: f64 = 0.3;
/// How much more (or less) often a pattern must fail than everything else,
/// in absolute terms (it must also be at least twice, or half, the rate).
const CONTRAST: f64 = 0.05;
/// Episode ids kept as provenance per heuristic (the counts are exact).
const PROVENANCE: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heuristic {
    /// Stable for the same pattern and recommendation.
    pub id: String,
    pub when: BTreeMap<String, String>,
    pub recommendation: Action,
    pub confidence: f64,
    /// Episodes whose outcome supports the recommendation (up to 50 ids).
    pub supporting_episodes: Vec<String>,
    pub supporting: u32,
    pub contradicting: u32,
    #[serde(default)]
    pub retired: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_because: Option<String>,
    /// Who proposed the pattern, when it was not derived (a language model);
    /// it still had to pass the same statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_by: Option<String>,
    /// The incident rate of the releases the pattern matches: the share that
    /// failed and its 95 % Wilson interval (heuristics written before this
    /// field have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_rate: Option<Rate>,
    /// What the incident model predicts, on average, for the releases the
    /// pattern matches: the rule and the model that decides should agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_rate: Option<f64>,
    /// Where it stands: `proposed` (the outcomes point this way, not yet
    /// strongly enough to apply), `active`, or `retired` (later outcomes
    /// contradicted it). Worked out from the rest when a file lacks it.
    #[serde(default)]
    pub status: Status,
}

/// A share of releases that failed, with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub rate: f64,
    pub low: f64,
    pub high: f64,
    pub incidents: u32,
    pub releases: u32,
}

impl Rate {
    fn of(incidents: u32, releases: u32) -> Option<Rate> {
        if releases == 0 {
            return None;
        }
        let (low, high) = releaseops_stats::wilson(
            u64::from(incidents),
            u64::from(releases),
            releaseops_stats::Z95,
        );
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        Some(Rate {
            rate: r(f64::from(incidents) / f64::from(releases)),
            low: r(low),
            high: r(high),
            incidents,
            releases,
        })
    }
}

/// A heuristic's lifecycle: proposed, then active once the outcomes
/// support it enough to apply, then retired when later ones contradict it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not said by the file: worked out by [`Heuristic::settle_status`].
    #[default]
    #[serde(skip_serializing)]
    Unknown,
    Proposed,
    Active,
    Retired,
}

impl Heuristic {
    /// Does the pattern hold for this context?
    pub fn matches(&self, attrs: &[(String, String)]) -> bool {
        self.when
            .iter()
            .all(|(k, v)| attrs.iter().any(|(ak, av)| ak == k && av == v))
    }

    pub fn applies(&self) -> bool {
        !self.retired && self.confidence >= APPLY_AT
    }

    /// Where it stands, from whether it was retired and its confidence.
    pub fn lifecycle(&self) -> Status {
        if self.retired {
            Status::Retired
        } else if self.applies() {
            Status::Active
        } else {
            Status::Proposed
        }
    }

    /// Sets `status` (and the incident rate, when the counts give it) to
    /// what the rest of the heuristic says.
    pub fn settle_status(&mut self) {
        self.status = self.lifecycle();
        if self.incident_rate.is_none() {
            let (incidents, ok) = if self.recommendation == Action::Go {
                (self.contradicting, self.supporting)
            } else {
                (self.supporting, self.contradicting)
            };
            self.incident_rate = Rate::of(incidents, incidents + ok);
        }
    }
}

/// The existing tool's validation: confidence in [0, 1], at least one
/// supporting episode, at most 0.6 with fewer than three.
pub fn valid(h: &Heuristic) -> Result<(), String> {
    if !(0.0..=1.0).contains(&h.confidence) || !h.confidence.is_finite() {
        return Err(format!(
            "{}: confidence {} is not between 0 and 1",
            h.id, h.confidence
        ));
    }
    if !h.retired && (h.supporting == 0 || h.supporting_episodes.is_empty()) {
        return Err(format!("{}: no supporting episode", h.id));
    }
    if h.supporting < 3 && h.confidence > 0.6 {
        return Err(format!(
            "{}: confidence {} with only {} supporting episodes (at most 0.6 below 3)",
            h.id, h.confidence, h.supporting
        ));
    }
    if h.when.is_empty() {
        return Err(format!("{}: an empty pattern matches everything", h.id));
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    ok: u32,
    failed: u32,
    ok_ids: Vec<u32>,
    failed_ids: Vec<u32>,
}

/// Derives heuristics from every episode with an outcome. `previous` are the
/// heuristics derived last time: one that was applied then and no longer
/// qualifies is kept, retired, with the reason.
pub fn derive(memory: &Memory, previous: &[Heuristic]) -> Vec<Heuristic> {
    let mut tallies: HashMap<(u32, u32), Tally> = HashMap::new();
    for (n, row) in memory.rows.iter().enumerate() {
        let Some(outcome) = row.outcome else { continue };
        let episode = n as u32;
        let mut count = |key: (u32, u32)| {
            let t = tallies.entry(key).or_default();
            if outcome.failed() {
                t.failed += 1;
                if t.failed_ids.len() < PROVENANCE {
                    t.failed_ids.push(episode);
                }
            } else {
                t.ok += 1;
                if t.ok_ids.len() < PROVENANCE {
                    t.ok_ids.push(episode);
                }
            }
        };
        let attrs = memory.attrs(row);
        for (i, &a) in attrs.iter().enumerate() {
            count((a, u32::MAX));
            for &b in &attrs[i + 1..] {
                count((a, b));
            }
        }
    }
    let totals = totals(memory);
    let mut found: Vec<Heuristic> = Vec::new();
    for (&(a, b), t) in &tallies {
        let mut when = BTreeMap::new();
        for key in [a, b] {
            if let Some((k, v)) = memory.pair(key) {
                when.insert(k.clone(), v.clone());
            }
        }
        if let Some(h) = classify(memory, when, t, totals) {
            found.push(h);
        }
    }
    // A two-attribute pattern is kept only when it says more than each of its
    // attributes alone.
    // (Both warnings, NO_GO and DELAY, count as the same direction.)
    let singles: HashMap<(String, String, bool), f64> = found
        .iter()
        .filter(|h| h.when.len() == 1)
        .filter_map(|h| {
            let (k, v) = h.when.iter().next()?;
            Some((
                (k.clone(), v.clone(), h.recommendation == Action::Go),
                h.confidence,
            ))
        })
        .collect();
    found.retain(|h| {
        h.when.len() == 1
            || h.when.iter().all(|(k, v)| {
                singles
                    .get(&(k.clone(), v.clone(), h.recommendation == Action::Go))
                    .is_none_or(|&c| h.confidence > c + 0.05)
            })
    });
    // (Proposed heuristics are checked again by whoever proposed them.)
    for old in previous
        .iter()
        .filter(|h| h.applies() && h.proposed_by.is_none())
    {
        let now = found.iter().find(|h| h.id == old.id);
        if now.is_some_and(Heuristic::applies) {
            continue;
        }
        let mut retired = now.cloned().unwrap_or_else(|| {
            // No longer a pattern at all: count its episodes again.
            let mut h = old.clone();
            h.incident_rate = None;
            let (mut agree, mut disagree) = (0u32, 0u32);
            for row in &memory.rows {
                let Some(outcome) = row.outcome else { continue };
                if h.matches(&memory.attributes(row)) {
                    if outcome.failed() == (h.recommendation != Action::Go) {
                        agree += 1;
                    } else {
                        disagree += 1;
                    }
                }
            }
            h.supporting = agree;
            h.contradicting = disagree;
            h.confidence = releaseops_stats::wilson(
                u64::from(agree),
                u64::from(agree + disagree),
                releaseops_stats::Z95,
            )
            .0;
            h.confidence = (h.confidence * 1000.0).round() / 1000.0;
            h
        });
        retired.retired = true;
        retired.retired_because = Some(format!(
            "later outcomes contradict it: confidence {:.2} -> {:.2} ({} for, {} against)",
            old.confidence, retired.confidence, retired.supporting, retired.contradicting
        ));
        found.retain(|h| h.id != old.id);
        found.push(retired);
    }
    for h in &mut found {
        h.settle_status();
    }
    found.sort_by(|x, y| {
        y.confidence
            .total_cmp(&x.confidence)
            .then(y.supporting.cmp(&x.supporting))
            .then(x.id.cmp(&y.id))
    });
    found
}

/// Sets each heuristic's [`Heuristic::model_rate`]: the model's mean
/// prediction over the releases with an outcome that the pattern matches
/// (the newest 500 of them).
pub fn annotate(hs: &mut [Heuristic], memory: &Memory, model: &crate::model::IncidentModel) {
    let index: HashMap<(&str, &str), u32> = memory
        .pairs()
        .iter()
        .enumerate()
        .map(|(i, (a, v))| ((a.as_str(), v.as_str()), i as u32))
        .collect();
    for h in hs.iter_mut() {
        // A pattern with a value no episode has matches none.
        let ids: Option<Vec<u32>> = h
            .when
            .iter()
            .map(|(k, v)| index.get(&(k.as_str(), v.as_str())).copied())
            .collect();
        let ps: Vec<f64> = ids
            .map(|ids| {
                memory
                    .rows
                    .iter()
                    .rev()
                    .filter(|r| r.outcome.is_some())
                    .filter(|r| ids.iter().all(|id| memory.attrs(r).contains(id)))
                    .take(500)
                    .map(|r| model.assess(&memory.attributes(r)).p)
                    .collect()
            })
            .unwrap_or_default();
        h.model_rate = (!ps.is_empty())
            .then(|| (ps.iter().sum::<f64>() / ps.len() as f64 * 1000.0).round() / 1000.0);
    }
}

/// Outcomes in memory: (successes, failures).
fn totals(memory: &Memory) -> (u32, u32) {
    memory
        .rows
        .iter()
        .filter_map(|r| r.outcome)
        .fold((0u32, 0u32), |(ok, bad), o| {
            if o.failed() {
                (ok, bad + 1)
            } else {
                (ok + 1, bad)
            }
        })
}

/// The heuristic a pattern's outcomes support, if any: a pattern is only a
/// lesson against what it does not match, so one every release shares (or
/// one that merely rides along with the real cause) teaches nothing.
fn classify(
    memory: &Memory,
    when: BTreeMap<String, String>,
    t: &Tally,
    (all_ok, all_failed): (u32, u32),
) -> Option<Heuristic> {
    let n = t.ok + t.failed;
    let rest = (all_ok - t.ok) + (all_failed - t.failed);
    if rest == 0 || n == 0 || when.is_empty() {
        return None;
    }
    let p = f64::from(t.failed) / f64::from(n);
    let q = f64::from(all_failed - t.failed) / f64::from(rest);
    let (lo, hi) =
        releaseops_stats::wilson(u64::from(t.failed), u64::from(n), releaseops_stats::Z95);
    // Fails clearly more often than the rest (even the low end of its
    // interval is above the rest's rate): a warning, its confidence the share
    // of the gap that survives the uncertainty. Succeeds clearly more often:
    // a GO, likewise.
    let (recommendation, supporting, against, support_ids, confidence) =
        if p >= q + CONTRAST && p >= 2.0 * q && lo > q && !only_calm(&when) {
            let action = if when.keys().all(|k| Context::is_timing(k)) {
                Action::Delay
            } else {
                Action::NoGo
            };
            (action, t.failed, t.ok, &t.failed_ids, (lo - q) / (p - q))
        } else if q >= p + CONTRAST && q >= 2.0 * p && hi < q {
            (Action::Go, t.ok, t.failed, &t.ok_ids, (q - hi) / (q - p))
        } else {
            return None;
        };
    let mut confidence = confidence.clamp(0.0, 1.0);
    if supporting < 3 {
        confidence = confidence.min(0.6);
    }
    if confidence < KEEP_AT {
        return None;
    }
    Some(Heuristic {
        id: heuristic_id(&when, recommendation),
        when,
        recommendation,
        confidence: (confidence * 1000.0).round() / 1000.0,
        supporting_episodes: support_ids
            .iter()
            .map(|&i| memory.id(&memory.rows[i as usize]).to_string())
            .collect(),
        supporting,
        contradicting: against,
        retired: false,
        retired_because: None,
        proposed_by: None,
        incident_rate: Rate::of(t.failed, n),
        model_rate: None,
        status: Status::Unknown,
    })
}

/// Is the pattern the absence of a timing risk (`clash=false`, no holiday,
/// no freeze soon)? Releases like that failing "more often" than the rest
/// says only which risky ones were held and which shipped, and waiting
/// cannot turn a calm release calmer: it is never a warning.
fn only_calm(when: &BTreeMap<String, String>) -> bool {
    when.iter().any(|(k, v)| {
        matches!(
            (k.as_str(), v.as_str()),
            ("clash", "false") | ("holiday", "false") | ("freeze", "later")
        )
    })
}

/// A pattern proposed from outside (a language model): kept only if the
/// outcomes in memory support exactly the recommendation proposed, under the
/// same statistics and rules as the derived ones; otherwise why not.
pub fn evaluate(
    memory: &Memory,
    when: BTreeMap<String, String>,
    recommendation: Action,
    proposed_by: &str,
) -> Result<Heuristic, String> {
    if when.is_empty() || when.len() > 3 {
        return Err("a pattern has 1 to 3 attributes".into());
    }
    let pattern: Vec<(String, String)> = when.clone().into_iter().collect();
    let mut t = Tally::default();
    for (n, row) in memory.rows.iter().enumerate() {
        let Some(outcome) = row.outcome else { continue };
        let attrs = memory.attributes(row);
        if !pattern.iter().all(|p| attrs.contains(p)) {
            continue;
        }
        if outcome.failed() {
            t.failed += 1;
            if t.failed_ids.len() < PROVENANCE {
                t.failed_ids.push(n as u32);
            }
        } else {
            t.ok += 1;
            if t.ok_ids.len() < PROVENANCE {
                t.ok_ids.push(n as u32);
            }
        }
    }
    if t.ok + t.failed == 0 {
        return Err("no episode with an outcome matches it".into());
    }
    let mut h = classify(memory, when, &t, totals(memory))
        .ok_or("the outcomes do not set it apart from the other releases")?;
    if h.recommendation != recommendation {
        return Err(format!(
            "the outcomes say {}, not {recommendation}",
            h.recommendation
        ));
    }
    valid(&h)?;
    h.proposed_by = Some(proposed_by.to_string());
    Ok(h)
}

fn heuristic_id(when: &BTreeMap<String, String>, action: Action) -> String {
    use std::hash::Hasher;
    // FNV-1a: stable across runs and platforms (DefaultHasher is not).
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    // Bytes with a separator (not `Hash for [u8]`, whose length prefix is a
    // platform-sized integer), so the id is the same everywhere.
    for (k, v) in when {
        h.write(k.as_bytes());
        h.write(&[0]);
        h.write(v.as_bytes());
        h.write(&[0]);
    }
    h.write(action.as_str().as_bytes());
    format!("h-{:012x}", h.finish() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::memory::Outcome;

    fn episode(m: &mut Memory, id: usize, risk: &str, day: &str, outcome: Outcome) {
        let c = Context::from_json(&json!({"env": "prod", "feature_risk": risk,
            "day_of_week": day, "hour_of_day": 14}))
        .unwrap();
        let id = format!("d{id}");
        m.push(&id, &c, Action::Go);
        m.set_outcome(&id, outcome);
    }

    #[test]
    fn friday_failures_become_a_delay_and_low_risk_successes_a_go() {
        let mut eps = Memory::default();
        for i in 0..20 {
            episode(
                &mut eps,
                i,
                "MEDIUM",
                "FRI",
                if i % 10 == 0 {
                    Outcome::Success
                } else {
                    Outcome::Incident
                },
            );
            episode(&mut eps, 100 + i, "LOW", "TUE", Outcome::Success);
        }
        let hs = derive(&eps, &[]);
        for h in &hs {
            valid(h).unwrap();
        }
        let fri = hs
            .iter()
            .find(|h| {
                h.when.len() == 1 && h.when.get("day_of_week").map(String::as_str) == Some("FRI")
            })
            .expect("a Friday heuristic");
        assert_eq!(fri.recommendation, Action::Delay);
        assert!(fri.applies(), "{fri:?}");
        assert_eq!((fri.supporting, fri.contradicting), (18, 2));
        // The rule in words, with its evidence: an interval on how often such
        // releases fail, and where it stands.
        let rate = fri.incident_rate.expect("a rate");
        assert_eq!((rate.incidents, rate.releases, rate.rate), (18, 20, 0.9));
        assert!(
            rate.low < 0.9 && rate.high > 0.9 && rate.low > 0.6,
            "{rate:?}"
        );
        assert_eq!(fri.status, Status::Active);
        let json = serde_json::to_value(fri).expect("json");
        assert_eq!(json["status"], "active");
        let low = hs
            .iter()
            .find(|h| h.when.get("feature_risk").map(String::as_str) == Some("LOW"))
            .expect("a low-risk heuristic");
        assert_eq!(low.recommendation, Action::Go);
        // Medium-risk changes fail here too, but risk is not timing: NO_GO.
        assert!(
            hs.iter().any(
                |h| h.when.get("feature_risk").map(String::as_str) == Some("MEDIUM")
                    && h.recommendation == Action::NoGo
            )
        );
        // And the model that decides agrees with the rule.
        let fit = crate::model::fit_memory(crate::model::Priors::default(), &eps);
        let mut hs = hs.clone();
        annotate(&mut hs, &eps, &fit.model);
        let rate = |h: &Heuristic| h.model_rate.expect("a model rate");
        let fri = hs.iter().find(|h| h.id == fri.id).expect("friday");
        let low = hs.iter().find(|h| h.id == low.id).expect("low");
        assert!(rate(fri) > 0.5 && rate(low) < 0.2, "{fri:?} {low:?}");
    }

    #[test]
    fn the_absence_of_a_timing_risk_is_never_a_warning() {
        use crate::context::Context;
        // Clashing releases were held unless safe, so the ones that shipped
        // went well; calm ones failed now and then.
        let mut m = Memory::default();
        for i in 0..60u32 {
            let clash = i % 3 == 0;
            let c = Context::from_json(&serde_json::json!({"env": "prod",
                "feature_risk": "LOW", "day_of_week": "TUE", "hour_of_day": 11,
                "clash": clash}))
            .unwrap();
            let id = format!("d{i}");
            m.append_new(&id, c.attributes(), Action::Go, None);
            let failed = !clash && i % 4 == 1;
            m.set_outcome(
                &id,
                if failed {
                    Outcome::Incident
                } else {
                    Outcome::Success
                },
            );
        }
        let hs = derive(&m, &[]);
        assert!(
            hs.iter()
                .all(|h| h.when.get("clash").map(String::as_str) != Some("false")
                    || h.recommendation == Action::Go),
            "{hs:?}"
        );
    }

    #[test]
    fn what_every_release_shares_teaches_nothing() {
        let mut eps = Memory::default();
        for i in 0..20 {
            episode(&mut eps, i, "LOW", "FRI", Outcome::Incident);
        }
        let hs = derive(&eps, &[]);
        assert!(
            hs.iter()
                .all(|h| h.recommendation == Action::Go || h.supporting == 0),
            "{hs:?}"
        );
        assert!(hs.is_empty(), "{hs:?}");
    }

    #[test]
    fn few_episodes_cap_confidence_and_contradicted_heuristics_retire() {
        let mut two = Memory::default();
        episode(&mut two, 1, "HIGH", "SAT", Outcome::Incident);
        episode(&mut two, 2, "HIGH", "SAT", Outcome::Incident);
        assert!(derive(&two, &[]).iter().all(|h| h.confidence <= 0.6));
        let mut eps = Memory::default();
        for i in 0..10 {
            episode(&mut eps, i, "HIGH", "SAT", Outcome::Incident);
            episode(&mut eps, 50 + i, "LOW", "TUE", Outcome::Success);
        }
        let before = derive(&eps, &[]);
        let sat = before
            .iter()
            .find(|h| {
                h.when.len() == 1 && h.when.get("day_of_week").map(String::as_str) == Some("SAT")
            })
            .unwrap()
            .clone();
        assert!(sat.applies());
        for i in 10..30 {
            episode(&mut eps, i, "LOW", "SAT", Outcome::Success);
        }
        let after = derive(&eps, &before);
        let retired = after
            .iter()
            .find(|h| h.id == sat.id)
            .expect("kept, retired");
        assert!(retired.retired && !retired.applies(), "{retired:?}");
        assert_eq!(retired.status, Status::Retired);
        let rate = retired.incident_rate.expect("a rate");
        assert_eq!((rate.incidents, rate.releases), (10, 30), "{rate:?}");
        // A file written before heuristics said where they stand still reads,
        // and says it once settled.
        let mut old: Heuristic = serde_json::from_value(serde_json::json!({
            "id": "h-1", "when": {"day_of_week": "SAT"}, "recommendation": "DELAY",
            "confidence": 0.4, "supporting_episodes": ["d1", "d2", "d3"],
            "supporting": 3, "contradicting": 1}))
        .expect("old heuristic");
        assert_eq!(old.status, Status::Unknown);
        old.settle_status();
        assert_eq!(old.status, Status::Proposed);
        assert_eq!(old.incident_rate.map(|r| r.releases), Some(4));
        assert!(
            retired
                .retired_because
                .as_deref()
                .unwrap()
                .contains("contradict")
        );
    }
}
