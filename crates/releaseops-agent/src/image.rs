//! Recall straight from the memory image, without building the memory: the
//! row table and the attribute ids are scanned once, and only the winners'
//! ids are read. A decision then appends its own row. This is what keeps
//! `agent decide` fast at 100,000 episodes.

use std::collections::HashMap;
use std::io::Read;

use crate::action::Action;
use crate::context::Context;
use crate::memory::{Memory, Outcome, weight};

/// The small part of an image, read and ready to be extended.
#[derive(Debug, Clone)]
pub struct ImageMeta {
    pub stamp: [u64; 3],
    pub rows: u64,
    pub lens: [u64; 3],
    pairs: Vec<(String, String)>,
    ids: HashMap<(String, String), u32>,
}

/// One recalled episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Recalled {
    pub id: String,
    pub decision: Action,
    pub outcome: Option<Outcome>,
    pub similarity: f64,
}

const ROW_BYTES: usize = 12;
/// Rows read at a time when recall streams the table.
const CHUNK_ROWS: usize = 4096;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn action(b: u8) -> Option<Action> {
    match b {
        0 => Some(Action::Go),
        1 => Some(Action::Delay),
        2 => Some(Action::NoGo),
        _ => None,
    }
}

fn outcome(b: u8) -> Option<Option<Outcome>> {
    match b {
        0 => Some(None),
        1 => Some(Some(Outcome::Success)),
        2 => Some(Some(Outcome::Incident)),
        3 => Some(Some(Outcome::RolledBack)),
        _ => None,
    }
}

impl ImageMeta {
    /// Reads an image's meta; `None` for anything damaged or from another
    /// version.
    pub fn decode(meta: &[u8]) -> Option<ImageMeta> {
        let (pairs, stamp, rows, lens) = Memory::decode_meta(meta)?;
        let ids = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i as u32))
            .collect();
        Some(ImageMeta {
            stamp,
            rows,
            lens,
            pairs,
            ids,
        })
    }

    /// The meta bytes for the image as it now stands.
    pub fn encode(&self) -> Vec<u8> {
        Memory::encode_meta_parts(&self.pairs, self.stamp, self.rows, self.lens)
    }

    /// The `k` rows most similar to `ctx` (ties go to the most recent),
    /// streamed from the image's parts: the row table and the attribute ids are
    /// read through in chunks (the readers must hold at least the meta's
    /// lengths; anything after them is ignored), and only the winners' ids
    /// are fetched, by `id_at(offset, length)`. `ids_len` is the length of
    /// the id part as found. `None` when the parts do not match the meta.
    pub fn recall_from(
        &self,
        table: impl Read,
        attrs: impl Read,
        ids_len: u64,
        ctx: &Context,
        k: usize,
        mut id_at: impl FnMut(u64, usize) -> Option<Vec<u8>>,
    ) -> Option<Vec<Recalled>> {
        let rows = usize::try_from(self.rows).ok()?;
        if self.lens[1] != self.rows.checked_mul(ROW_BYTES as u64)? || ids_len < self.lens[0] {
            return None;
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
        let mut table = table.take(self.lens[1]);
        let mut attrs = attrs.take(self.lens[2]);
        // (score, id offset, id length, decision byte, outcome byte)
        let mut best: Vec<(f32, u64, usize, u8, u8)> = Vec::with_capacity(k + 1);
        let (mut id_off, mut attr_len) = (0u64, 0u64);
        let mut chunk = vec![0u8; CHUNK_ROWS * ROW_BYTES];
        let mut ab: Vec<u8> = Vec::new();
        let mut done = 0usize;
        while done < rows {
            let n_rows = (rows - done).min(CHUNK_ROWS);
            let chunk = &mut chunk[..n_rows * ROW_BYTES];
            table.read_exact(chunk).ok()?;
            let mut need = 0usize;
            for t in chunk.chunks_exact(ROW_BYTES) {
                need = need.checked_add((le32(t, 4)? as usize).checked_mul(4)?)?;
            }
            ab.resize(need, 0);
            attrs.read_exact(&mut ab).ok()?;
            let mut at = 0usize;
            for t in chunk.chunks_exact(ROW_BYTES) {
                let id_len = le32(t, 0)? as usize;
                let end = at + le32(t, 4)? as usize * 4;
                let mut s = 0f32;
                for a in ab[at..end].chunks_exact(4) {
                    let a = u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as usize;
                    s += *w.get(a)?;
                }
                if k > 0 && !(best.len() == k && best.last().is_some_and(|b| s < b.0)) {
                    let pos = best.partition_point(|b| b.0 > s);
                    best.insert(pos, (s, id_off, id_len, t[8], t[9]));
                    best.truncate(k);
                }
                id_off = id_off.checked_add(id_len as u64)?;
                at = end;
            }
            attr_len += need as u64;
            done += n_rows;
        }
        // Every byte the meta counts was used, and no more.
        if id_off != self.lens[0] || attr_len != self.lens[2] {
            return None;
        }
        if total == 0.0 {
            return Some(Vec::new());
        }
        best.into_iter()
            .map(|(s, at, n, d, o)| {
                Some(Recalled {
                    id: String::from_utf8(id_at(at, n)?).ok()?,
                    decision: action(d)?,
                    outcome: outcome(o)?,
                    similarity: f64::from(s / total),
                })
            })
            .collect()
    }

    /// Appends one row: its bytes for each part (to be appended to the
    /// files), with the meta updated to match (new attribute values are
    /// added to the table).
    pub fn append(
        &mut self,
        id: &str,
        attrs: Vec<(String, String)>,
        decision: Action,
        stamp: [u64; 3],
    ) -> [Vec<u8>; 3] {
        let mut interned: Vec<u32> = attrs
            .into_iter()
            .map(|a| {
                if let Some(&i) = self.ids.get(&a) {
                    return i;
                }
                let i = self.pairs.len() as u32;
                self.pairs.push(a.clone());
                self.ids.insert(a, i);
                i
            })
            .collect();
        interned.sort_unstable();
        interned.dedup();
        let mut table = Vec::with_capacity(ROW_BYTES);
        table.extend_from_slice(&(id.len() as u32).to_le_bytes());
        table.extend_from_slice(&(interned.len() as u32).to_le_bytes());
        table.push(match decision {
            Action::Go => 0,
            Action::Delay => 1,
            Action::NoGo => 2,
        });
        table.extend_from_slice(&[0, 0, 0]);
        let attr_bytes: Vec<u8> = interned.iter().flat_map(|a| a.to_le_bytes()).collect();
        let parts = [id.as_bytes().to_vec(), table, attr_bytes];
        for (l, p) in self.lens.iter_mut().zip(&parts) {
            *l += p.len() as u64;
        }
        self.rows += 1;
        self.stamp = stamp;
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::tests::ctx;

    impl ImageMeta {
        /// Recall from parts held in memory.
        fn recall(&self, parts: [&[u8]; 3], ctx: &Context, k: usize) -> Option<Vec<Recalled>> {
            let ids = parts[0];
            self.recall_from(parts[1], parts[2], ids.len() as u64, ctx, k, |at, n| {
                ids.get(usize::try_from(at).ok()?..)?
                    .get(..n)
                    .map(<[u8]>::to_vec)
            })
        }
    }

    #[test]
    fn recall_from_the_image_matches_recall_from_the_memory() {
        let mut m = Memory::default();
        for (i, (risk, day, hour)) in [
            ("HIGH", "FRI", 16),
            ("LOW", "MON", 10),
            ("HIGH", "FRI", 17),
            ("HIGH", "FRI", 16),
        ]
        .into_iter()
        .enumerate()
        {
            m.append_new(
                &format!("e{i}"),
                ctx(risk, day, hour).attributes(),
                Action::Delay,
                None,
            );
        }
        m.set_outcome("e1", Outcome::Success);
        let parts = m.encode_rows(0);
        let lens = parts.each_ref().map(|p| p.len() as u64);
        let mut meta = ImageMeta::decode(&m.encode_meta([1, 2, 3], lens)).unwrap();
        let q = ctx("HIGH", "FRI", 15);
        let from_image = meta
            .recall([&parts[0], &parts[1], &parts[2]], &q, 3)
            .unwrap();
        let from_memory: Vec<(String, f64)> = m
            .similar(&q, 3)
            .into_iter()
            .map(|(r, s)| (m.id(r).to_string(), s))
            .collect();
        assert_eq!(
            from_image
                .iter()
                .map(|r| (r.id.clone(), r.similarity))
                .collect::<Vec<_>>(),
            from_memory
        );
        // Appending a row to the image equals encoding the grown memory.
        let added = meta.append(
            "e4",
            ctx("LOW", "SAT", 3).attributes(),
            Action::Go,
            [1, 2, 4],
        );
        m.append_new("e4", ctx("LOW", "SAT", 3).attributes(), Action::Go, None);
        let mut grown = parts.clone();
        for (p, a) in grown.iter_mut().zip(added) {
            p.extend(a);
        }
        assert_eq!(grown, m.encode_rows(0));
        let lens = grown.each_ref().map(|p| p.len() as u64);
        assert_eq!(meta.encode(), m.encode_meta([1, 2, 4], lens));
        // Damaged parts are refused, not misread.
        assert!(
            meta.recall([&grown[0], &grown[1][..5], &grown[2]], &q, 3)
                .is_none()
        );
    }

    #[test]
    fn streamed_recall_over_many_chunks_matches_the_memory() {
        let days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
        let risks = ["LOW", "MEDIUM", "HIGH"];
        let mut m = Memory::default();
        let rows = 3 * CHUNK_ROWS + 17;
        for i in 0..rows {
            m.append_new(
                &format!("e{i}"),
                ctx(risks[i % 3], days[i % 7], (i % 24) as u8).attributes(),
                Action::Go,
                None,
            );
        }
        let parts = m.encode_rows(0);
        let lens = parts.each_ref().map(|p| p.len() as u64);
        let meta = ImageMeta::decode(&m.encode_meta([1, 2, 3], lens)).unwrap();
        let q = ctx("HIGH", "SAT", 13);
        let mut fetched = 0;
        let streamed = meta
            .recall_from(
                &parts[1][..],
                &parts[2][..],
                parts[0].len() as u64,
                &q,
                5,
                |at, n| {
                    fetched += 1;
                    Some(parts[0][at as usize..at as usize + n].to_vec())
                },
            )
            .unwrap();
        // Only the winners' ids are read.
        assert_eq!(fetched, 5);
        let from_memory: Vec<(String, f64)> = m
            .similar(&q, 5)
            .into_iter()
            .map(|(r, s)| (m.id(r).to_string(), s))
            .collect();
        assert_eq!(
            streamed
                .iter()
                .map(|r| (r.id.clone(), r.similarity))
                .collect::<Vec<_>>(),
            from_memory
        );
        // Bytes after the meta's lengths (a torn append) are ignored; too
        // few are refused.
        let mut longer = parts[2].clone();
        longer.extend([9, 9, 9]);
        assert!(
            meta.recall([&parts[0], &parts[1], &longer], &q, 5)
                .is_some()
        );
        let short = &parts[2][..parts[2].len() - 4];
        assert!(meta.recall([&parts[0], &parts[1], short], &q, 5).is_none());
    }
}
