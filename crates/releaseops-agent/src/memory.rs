//! Episodic memory: past decisions and their outcomes, kept as rows of
//! interned `attribute=value` ids so that recall and learning stay fast at
//! 100,000 episodes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::context::Context;

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
    /// Where the decision id is in the memory's id text ([`Memory::id`]).
    id_start: u32,
    id_len: u32,
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
    /// Every decision id, one after the other (no allocation per row).
    id_text: String,
    /// Decision id -> row, built on first use (recall does not need it).
    by_id: Option<HashMap<String, usize>>,
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
        if self.index().contains_key(id) {
            return false;
        }
        self.append_new(id, attrs, decision, outcome);
        true
    }

    /// Remembers a decision whose id the caller knows is new (ids handed out
    /// in sequence, or checked already): no lookup.
    pub fn append_new(
        &mut self,
        id: &str,
        attrs: Vec<(String, String)>,
        decision: Action,
        outcome: Option<Outcome>,
    ) {
        let mut ids: Vec<u32> = attrs.into_iter().map(|a| self.intern(a)).collect();
        ids.sort_unstable();
        ids.dedup();
        if let Some(index) = &mut self.by_id {
            index.insert(id.to_string(), self.rows.len());
        }
        self.rows.push(Row {
            id_start: self.id_text.len() as u32,
            id_len: id.len() as u32,
            decision,
            outcome,
            start: self.flat.len() as u32,
            len: ids.len() as u32,
        });
        self.id_text.push_str(id);
        self.flat.extend(ids);
    }

    /// A row's decision id.
    pub fn id(&self, row: &Row) -> &str {
        let start = row.id_start as usize;
        self.id_text
            .get(start..start + row.id_len as usize)
            .unwrap_or_default()
    }

    fn index(&mut self) -> &HashMap<String, usize> {
        if self.by_id.is_none() {
            let index = self
                .rows
                .iter()
                .enumerate()
                .map(|(i, r)| (self.id(r).to_string(), i))
                .collect();
            self.by_id = Some(index);
        }
        self.by_id.get_or_insert_default()
    }

    pub fn get(&self, id: &str) -> Option<&Row> {
        self.rows.iter().rev().find(|r| self.id(r) == id)
    }

    /// Attaches (or replaces) an outcome; false for an unknown decision.
    pub fn set_outcome(&mut self, id: &str, outcome: Outcome) -> bool {
        match self.index().get(id).copied() {
            Some(i) => {
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

    /// The binary image of the rows from `from` on, in three parts that are
    /// each appended to as decisions are made: the ids' text, a table of 12
    /// bytes per row, and the attribute ids (a cache: the records in the
    /// repository are the truth). [`Memory::encode_meta`] describes it.
    pub fn encode_rows(&self, from: usize) -> [Vec<u8>; 3] {
        let rows = self.rows.get(from..).unwrap_or_default();
        let mut ids = Vec::new();
        let mut table = Vec::with_capacity(rows.len() * ROW_BYTES);
        let mut attrs = Vec::new();
        for row in rows {
            let id = self.id(row);
            ids.extend_from_slice(id.as_bytes());
            let a = self.attrs(row);
            table.extend_from_slice(&(id.len() as u32).to_le_bytes());
            table.extend_from_slice(&(a.len() as u32).to_le_bytes());
            table.push(match row.decision {
                Action::Go => 0,
                Action::Delay => 1,
                Action::NoGo => 2,
            });
            table.push(match row.outcome {
                None => 0,
                Some(Outcome::Success) => 1,
                Some(Outcome::Incident) => 2,
                Some(Outcome::RolledBack) => 3,
            });
            table.extend_from_slice(&[0, 0]);
            for x in a {
                attrs.extend_from_slice(&x.to_le_bytes());
            }
        }
        [ids, table, attrs]
    }

    /// The small part of the image: `stamp`, the attribute table, the number
    /// of rows and the byte length of each part.
    pub fn encode_meta(&self, stamp: [u64; 3], lens: [u64; 3]) -> Vec<u8> {
        Memory::encode_meta_parts(&self.pairs, stamp, self.rows.len() as u64, lens)
    }

    pub(crate) fn encode_meta_parts(
        pairs: &[(String, String)],
        stamp: [u64; 3],
        rows: u64,
        lens: [u64; 3],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        for v in stamp {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
        for (k, v) in pairs {
            for t in [k, v] {
                out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                out.extend_from_slice(t.as_bytes());
            }
        }
        out.extend_from_slice(&rows.to_le_bytes());
        for l in lens {
            out.extend_from_slice(&l.to_le_bytes());
        }
        out
    }

    /// The meta's attribute table, stamp, row count and part lengths.
    #[expect(
        clippy::type_complexity,
        reason = "a private decoder's one return value, named at its only caller"
    )]
    pub(crate) fn decode_meta(
        meta: &[u8],
    ) -> Option<(Vec<(String, String)>, [u64; 3], u64, [u64; 3])> {
        let mut r = Reader { b: meta, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return None;
        }
        let stamp = [r.u64()?, r.u64()?, r.u64()?];
        let npairs = r.u32()?;
        let mut pairs = Vec::new();
        for _ in 0..npairs {
            pairs.push((r.string()?, r.string()?));
        }
        let rows = r.u64()?;
        let lens = [r.u64()?, r.u64()?, r.u64()?];
        (r.at == meta.len()).then_some((pairs, stamp, rows, lens))
    }

    /// Reads an image back: the memory, its stamp and the byte lengths of
    /// its parts. `None` for anything damaged or from another version (the
    /// caller rebuilds). Bytes past the lengths the meta gives are ignored.
    pub fn decode(meta: &[u8], parts: [&[u8]; 3]) -> Option<(Memory, [u64; 3], [u64; 3])> {
        let (pairs, stamp, nrows, lens) = Memory::decode_meta(meta)?;
        let mut m = Memory::default();
        let npairs = pairs.len() as u32;
        for (id, pair) in pairs.into_iter().enumerate() {
            m.ids.insert(pair.clone(), id as u32);
            m.pairs.push(pair);
        }
        let nrows = usize::try_from(nrows).ok()?;
        let part = |i: usize| parts[i].get(..usize::try_from(lens[i]).ok()?);
        let (ids, table, attrs) = (part(0)?, part(1)?, part(2)?);
        if table.len() != nrows.checked_mul(ROW_BYTES)? || attrs.len() % 4 != 0 {
            return None;
        }
        m.id_text = std::str::from_utf8(ids).ok()?.to_string();
        m.flat = attrs
            .chunks_exact(4)
            .map(|a| u32::from_le_bytes([a[0], a[1], a[2], a[3]]))
            .collect();
        if m.flat.iter().any(|&a| a >= npairs) {
            return None;
        }
        m.rows.reserve(nrows);
        let (mut id_at, mut attr_at) = (0u32, 0u32);
        for t in table.chunks_exact(ROW_BYTES) {
            let id_len = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
            let len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
            let decision = match t[8] {
                0 => Action::Go,
                1 => Action::Delay,
                2 => Action::NoGo,
                _ => return None,
            };
            let outcome = match t[9] {
                0 => None,
                1 => Some(Outcome::Success),
                2 => Some(Outcome::Incident),
                3 => Some(Outcome::RolledBack),
                _ => return None,
            };
            m.rows.push(Row {
                id_start: id_at,
                id_len,
                decision,
                outcome,
                start: attr_at,
                len,
            });
            id_at = id_at.checked_add(id_len)?;
            attr_at = attr_at.checked_add(len)?;
            if !m.id_text.is_char_boundary(id_at as usize) {
                return None;
            }
        }
        (id_at as usize == m.id_text.len() && attr_at as usize == m.flat.len())
            .then_some((m, stamp, lens))
    }
}

/// Bytes per row in the image's row table.
const ROW_BYTES: usize = 12;

const MAGIC: &[u8] = b"releaseops-memory-2\n";

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
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// A production context with the given risk, day and hour.
    pub(crate) fn ctx(risk: &str, day: &str, hour: u8) -> Context {
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
            .map(|(e, _)| m.id(e))
            .collect();
        assert_eq!(got, ["e4", "e1", "e3"]);
        assert_eq!(m.similar(&ctx("LOW", "MON", 10), 1)[0].1, 1.0);
        assert!(m.similar(&ctx("LOW", "MON", 10), 0).is_empty());
        assert!(m.set_outcome("e2", Outcome::Success));
        assert!(!m.set_outcome("nope", Outcome::Success));
        assert_eq!(m.get("e2").unwrap().outcome, Some(Outcome::Success));
        // The image, written in two appends, reads back the same.
        let parts = m.encode_rows(0);
        assert!(
            Memory::decode(&m.encode_meta([0; 3], [0; 3]), [&[], &[], &[]]).is_none(),
            "row count and lengths must agree"
        );
        let lens = parts.each_ref().map(|p| p.len() as u64);
        let meta = m.encode_meta([4, 1, 7], lens);
        let (back, stamp, got) = Memory::decode(&meta, [&parts[0], &parts[1], &parts[2]]).unwrap();
        assert_eq!((stamp, got), ([4, 1, 7], lens));
        assert_eq!(back.rows, m.rows);
        assert_eq!(back.attributes(&back.rows[3]), m.attributes(&m.rows[3]));
        assert_eq!(back.id(&back.rows[3]), "e4");
        // Appending rows from 2 on to the image of rows 0..2 gives the whole.
        let mut first_two = m.clone();
        first_two.rows.truncate(2);
        let mut appended = first_two.encode_rows(0);
        for (p, extra) in appended.iter_mut().zip(m.encode_rows(2)) {
            p.extend(extra);
        }
        assert_eq!(appended, parts);
        // Leftovers past the lengths (a crash mid-append) are ignored;
        // anything short or damaged is refused.
        let mut longer = parts.clone();
        longer[2].extend_from_slice(b"left over");
        assert!(Memory::decode(&meta, [&longer[0], &longer[1], &longer[2]]).is_some());
        for cut in [0, 5, meta.len() - 1] {
            assert!(Memory::decode(&meta[..cut], [&parts[0], &parts[1], &parts[2]]).is_none());
        }
        assert!(Memory::decode(&meta, [&parts[0], &parts[1][..10], &parts[2]]).is_none());
    }
}
