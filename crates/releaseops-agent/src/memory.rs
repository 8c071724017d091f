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
    /// Where the row's interned `attribute=value` ids (sorted) are in the
    /// memory's flat list.
    start: u32,
    len: u32,
}

/// Every episode, and the table of the attribute values they use.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    pairs: Vec<(String, String)>,
    ids: HashMap<(String, String), u32>,
    pub rows: Vec<Row>,
    flat: Vec<u32>,
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
            start: self.flat.len() as u32,
            len: ids.len() as u32,
        });
        self.flat.extend(ids);
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

    /// A row's interned attribute ids.
    pub fn attrs(&self, row: &Row) -> &[u32] {
        let start = row.start as usize;
        self.flat
            .get(start..start + row.len as usize)
            .unwrap_or_default()
    }

    /// The attributes of a row, as text.
    pub fn attributes(&self, row: &Row) -> Vec<(String, String)> {
        self.attrs(row)
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
            let s: f32 = self.attrs(row).iter().map(|&a| w[a as usize]).sum();
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

    /// A compact binary image of the memory (a cache: the records in the
    /// repository are the truth), tagged with `stamp`.
    pub fn to_bytes(&self, stamp: [u64; 3]) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.flat.len() * 4 + self.rows.len() * 24);
        out.extend_from_slice(MAGIC);
        for v in stamp {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let put_str = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        out.extend_from_slice(&(self.pairs.len() as u32).to_le_bytes());
        for (k, v) in &self.pairs {
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
        out.extend_from_slice(&(self.rows.len() as u32).to_le_bytes());
        for row in &self.rows {
            put_str(&mut out, &row.id);
            out.push(match row.decision {
                Action::Go => 0,
                Action::Delay => 1,
                Action::NoGo => 2,
            });
            out.push(match row.outcome {
                None => 0,
                Some(Outcome::Success) => 1,
                Some(Outcome::Incident) => 2,
                Some(Outcome::RolledBack) => 3,
            });
            let attrs = self.attrs(row);
            out.extend_from_slice(&(attrs.len() as u32).to_le_bytes());
            for a in attrs {
                out.extend_from_slice(&a.to_le_bytes());
            }
        }
        out
    }

    /// Reads [`Memory::to_bytes`] back, with its stamp; `None` for anything
    /// damaged or from another version (the caller rebuilds).
    pub fn from_bytes(bytes: &[u8]) -> Option<(Memory, [u64; 3])> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return None;
        }
        let stamp = [r.u64()?, r.u64()?, r.u64()?];
        let mut m = Memory::default();
        let npairs = r.u32()?;
        for id in 0..npairs {
            let pair = (r.string()?, r.string()?);
            m.ids.insert(pair.clone(), id);
            m.pairs.push(pair);
        }
        let nrows = r.u32()? as usize;
        m.rows.reserve(nrows.min(bytes.len()));
        for _ in 0..nrows {
            let id = r.string()?;
            let decision = match r.take(1)?[0] {
                0 => Action::Go,
                1 => Action::Delay,
                2 => Action::NoGo,
                _ => return None,
            };
            let outcome = match r.take(1)?[0] {
                0 => None,
                1 => Some(Outcome::Success),
                2 => Some(Outcome::Incident),
                3 => Some(Outcome::RolledBack),
                _ => return None,
            };
            let len = r.u32()?;
            let start = m.flat.len() as u32;
            for _ in 0..len {
                let a = r.u32()?;
                if a >= npairs {
                    return None;
                }
                m.flat.push(a);
            }
            m.by_id.insert(id.clone(), m.rows.len());
            m.rows.push(Row {
                id,
                decision,
                outcome,
                start,
                len,
            });
        }
        (r.at == bytes.len()).then_some((m, stamp))
    }
}

const MAGIC: &[u8] = b"releaseops-memory-1\n";

struct Reader<'b> {
    b: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
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
        let bytes = m.to_bytes([4, 1, 7]);
        let (back, stamp) = Memory::from_bytes(&bytes).unwrap();
        assert_eq!(stamp, [4, 1, 7]);
        assert_eq!(back.rows, m.rows);
        assert_eq!(back.attributes(&back.rows[3]), m.attributes(&m.rows[3]));
        for cut in [0, 10, bytes.len() - 1] {
            assert!(Memory::from_bytes(&bytes[..cut]).is_none());
        }
    }
}
