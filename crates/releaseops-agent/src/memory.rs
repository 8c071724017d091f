//! Episodic memory: past decisions and their outcomes, kept as rows of
//! interned `attribute=value` ids so that recall and learning stay fast at
//! 100,000 episodes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::planner::Action;

/// What happened after a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Incident,
    RolledBack,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "success" => Some(Outcome::Success),
            "incident" => Some(Outcome::Incident),
            "rolled_back" => Some(Outcome::RolledBack),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Incident => "incident",
            Outcome::RolledBack => "rolled_back",
        }
    }

    pub fn failed(self) -> bool {
        !matches!(self, Outcome::Success)
    }
}

/// One past decision, as memory keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub decision: Action,
    pub outcome: Option<Outcome>,
    /// Interned `attribute=value` ids, sorted.
    pub attrs: Vec<u32>,
}

/// Every episode, and the table of the attribute values they use.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    pairs: Vec<(String, String)>,
    ids: HashMap<(String, String), u32>,
    pub rows: Vec<Row>,
    by_id: HashMap<String, usize>,
}

/// How much an attribute counts when comparing contexts: the kind of change
/// and where it goes weigh most.
pub fn weight(attribute: &str) -> f32 {
    match attribute {
        "feature_risk" => 3.0,
        "service_criticality" | "env" | "day_of_week" | "clash" => 2.0,
        _ => 1.0,
    }
}

impl Memory {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn pair(&self, id: u32) -> Option<&(String, String)> {
        self.pairs.get(id as usize)
    }

    fn intern(&mut self, attr: (String, String)) -> u32 {
        if let Some(&id) = self.ids.get(&attr) {
            return id;
        }
        let id = self.pairs.len() as u32;
        self.pairs.push(attr.clone());
        self.ids.insert(attr, id);
        id
    }

    /// Remembers a decision. A decision id seen before is refused.
    pub fn push(&mut self, id: &str, ctx: &Context, decision: Action) -> bool {
        let attrs = ctx.attributes();
        self.push_attrs(id, attrs, decision, None)
    }

    pub fn push_attrs(
        &mut self,
        id: &str,
        attrs: Vec<(String, String)>,
        decision: Action,
        outcome: Option<Outcome>,
    ) -> bool {
        if self.by_id.contains_key(id) {
            return false;
        }
        let mut ids: Vec<u32> = attrs.into_iter().map(|a| self.intern(a)).collect();
        ids.sort_unstable();
        ids.dedup();
        self.by_id.insert(id.to_string(), self.rows.len());
        self.rows.push(Row {
            id: id.to_string(),
            decision,
            outcome,
            attrs: ids,
        });
        true
    }

    pub fn get(&self, id: &str) -> Option<&Row> {
        self.by_id.get(id).map(|&i| &self.rows[i])
    }

    /// Attaches (or replaces) an outcome; false for an unknown decision.
    pub fn set_outcome(&mut self, id: &str, outcome: Outcome) -> bool {
        match self.by_id.get(id) {
            Some(&i) => {
                self.rows[i].outcome = Some(outcome);
                true
            }
            None => false,
        }
    }

    /// The attributes of a row, as text.
    pub fn attributes(&self, row: &Row) -> Vec<(String, String)> {
        row.attrs
            .iter()
            .filter_map(|&a| self.pair(a).cloned())
            .collect()
    }

    /// The `k` remembered episodes most similar to `ctx` (ties go to the most
    /// recent), with their similarity from 0 to 1, most similar first.
    pub fn similar(&self, ctx: &Context, k: usize) -> Vec<(&Row, f64)> {
        if k == 0 || self.rows.is_empty() {
            return Vec::new();
        }
        let mut w = vec![0f32; self.pairs.len()];
        let mut total = 0f32;
        for (name, value) in ctx.attributes() {
            let wt = weight(&name);
            total += wt;
            if let Some(&id) = self.ids.get(&(name, value)) {
                w[id as usize] = wt;
            }
        }
        if total == 0.0 {
            return Vec::new();
        }
        let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
        for (i, row) in self.rows.iter().enumerate() {
            let s: f32 = row.attrs.iter().map(|&a| w[a as usize]).sum();
            if best.len() == k && best.last().is_some_and(|&(_, worst)| s < worst) {
                continue;
            }
            let at = best.partition_point(|&(_, b)| b > s);
            best.insert(at, (i, s));
            best.truncate(k);
        }
        best.into_iter()
            .map(|(i, s)| (&self.rows[i], f64::from(s / total)))
            .collect()
    }

    /// The pairs table, for writing memory out.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ctx(risk: &str, day: &str, hour: u8) -> Context {
        Context::from_json(
            &json!({"env": "prod", "feature_risk": risk, "day_of_week": day, "hour_of_day": hour}),
        )
        .unwrap()
    }

    #[test]
    fn recalls_the_most_similar_and_most_recent() {
        let mut m = Memory::default();
        for (id, c) in [
            ("e1", ctx("HIGH", "FRI", 16)),
            ("e2", ctx("LOW", "MON", 10)),
            ("e3", ctx("HIGH", "FRI", 17)),
            ("e4", ctx("HIGH", "FRI", 16)),
        ] {
            assert!(m.push(id, &c, Action::Delay));
        }
        assert!(
            !m.push("e4", &ctx("LOW", "MON", 10), Action::Go),
            "ids are unique"
        );
        let got: Vec<&str> = m
            .similar(&ctx("HIGH", "FRI", 15), 3)
            .iter()
            .map(|(e, _)| e.id.as_str())
            .collect();
        assert_eq!(got, ["e4", "e1", "e3"]);
        assert_eq!(m.similar(&ctx("LOW", "MON", 10), 1)[0].1, 1.0);
        assert!(m.similar(&ctx("LOW", "MON", 10), 0).is_empty());
        assert!(m.set_outcome("e2", Outcome::Success));
        assert!(!m.set_outcome("nope", Outcome::Success));
        assert_eq!(m.get("e2").unwrap().outcome, Some(Outcome::Success));
    }
}
