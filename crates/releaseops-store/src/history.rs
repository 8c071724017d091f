//! The audit history on disk: `.releaseops/history/<segment>.jsonl`, 1,000
//! records per segment, plus `history/HEAD` with the last sequence number and
//! line hash. Appending writes only to the last segment, so it costs the same
//! at ten records as at a million, and git re-hashes one small file per commit.

use std::fs;
use std::path::{Path, PathBuf};

use releaseops_format::hash::sha256_prefixed;
use releaseops_format::history::{EventKind, LegacyHistory, Record};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

pub const SEGMENT_RECORDS: u64 = 1000;

/// The end of the chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tip {
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

pub struct HistoryLog {
    dir: PathBuf,
    legacy: PathBuf,
}

pub(crate) fn segment_name(seq: u64) -> String {
    format!("{:08}.jsonl", (seq.saturating_sub(1)) / SEGMENT_RECORDS)
}

/// What `history verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainReport {
    pub records: u64,
    pub segments: u64,
    pub problems: Vec<String>,
}

/// The fields of a record that verification and replay need, borrowed from the
/// line so a million records parse quickly.
#[derive(Deserialize)]
pub struct RecordView<'a> {
    pub seq: u64,
    #[serde(default, borrow)]
    pub prev: Option<&'a str>,
    #[serde(borrow)]
    pub at: &'a str,
    pub event: EventKind,
    #[serde(default, borrow)]
    pub bundle_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub version: Option<&'a str>,
    #[serde(default, borrow)]
    pub env: Option<&'a str>,
}

impl HistoryLog {
    pub(crate) fn new(dir: PathBuf, legacy: PathBuf) -> Self {
        HistoryLog { dir, legacy }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn segments(&self) -> Result<Vec<PathBuf>> {
        let mut segs = Vec::new();
        match fs::read_dir(&self.dir) {
            Ok(rd) => {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if name.ends_with(".jsonl") && name.len() == 14 && name[..8].bytes().all(|b| b.is_ascii_digit()) {
                        segs.push(e.path());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("cannot list", &self.dir, e)),
        }
        segs.sort();
        Ok(segs)
    }

    /// The last record's sequence number and line hash.
    pub fn tip(&self) -> Result<Tip> {
        let head = self.dir.join("HEAD");
        match fs::read(&head) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                path: head.clone(),
                message: format!("unreadable history tip: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.segments()?.is_empty() {
                    Ok(Tip::default())
                } else {
                    Err(StoreError::Corrupt { path: head, message: "the history tip is missing".into() })
                }
            }
            Err(e) => Err(StoreError::io("cannot read", head, e)),
        }
    }

    /// True when nothing has been recorded in our format yet.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.tip()?.seq == 0)
    }

    /// The existing tool's records, if it left a `promotion_history.yaml`.
    pub fn legacy_records(&self) -> Result<Vec<Record>> {
        let bytes = match fs::read(&self.legacy) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("cannot read", &self.legacy, e)),
        };
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Vec::new());
        }
        let recs = LegacyHistory::parse(&bytes).map_err(|e| StoreError::format(&self.legacy, e))?;
        Ok(recs.iter().map(|r| r.to_record()).collect())
    }

    /// Every record, oldest first. Before the first write the existing tool's
    /// history stands in, numbered as it will be when imported.
    pub fn all(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        self.for_each_line(|line, _| {
            out.push(Record::parse_line(line)?);
            Ok(())
        })?;
        if out.is_empty() {
            let mut legacy = self.legacy_records()?;
            for (i, r) in legacy.iter_mut().enumerate() {
                r.seq = i as u64 + 1;
            }
            return Ok(legacy);
        }
        Ok(out)
    }

    /// The newest records first, stopping after `limit` matches of `keep`.
    pub fn newest(&self, limit: usize, mut keep: impl FnMut(&Record) -> bool) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let segs = self.segments()?;
        if segs.is_empty() {
            let mut all = self.all()?;
            all.reverse();
            return Ok(all.into_iter().filter(|r| keep(r)).take(limit).collect());
        }
        for seg in segs.iter().rev() {
            let text = read_text(seg)?;
            for line in text.lines().rev().filter(|l| !l.is_empty()) {
                let r = Record::parse_line(line).map_err(|e| StoreError::format(seg, e))?;
                if keep(&r) {
                    out.push(r);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Calls `f(line, line_hash_input)` for each line of each segment, in order.
    fn for_each_line(&self, mut f: impl FnMut(&str, &Path) -> Result<(), releaseops_format::FormatError>) -> Result<()> {
        for seg in self.segments()? {
            let text = read_text(&seg)?;
            for line in text.lines().filter(|l| !l.is_empty()) {
                f(line, &seg).map_err(|e| StoreError::format(&seg, e))?;
            }
        }
        Ok(())
    }

    /// Walks the whole chain: every line's hash must be the next line's `prev`,
    /// sequence numbers must count up by one from 1, every record must sit in
    /// its segment, and the tip must name the last line. `visit` sees each
    /// record (for replay checks by the caller).
    pub fn verify(&self, mut visit: impl FnMut(&RecordView<'_>)) -> Result<ChainReport> {
        let mut report = ChainReport::default();
        let mut prev_hash: Option<String> = None;
        let mut expect_seq = 1u64;
        let segs = self.segments()?;
        report.segments = segs.len() as u64;
        for seg in &segs {
            let name = seg.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let bytes = fs::read(seg).map_err(|e| StoreError::io("cannot read", seg, e))?;
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                report.problems.push(format!("{name}: the last line is incomplete"));
            }
            for (lineno, line) in bytes.split(|b| *b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
                let at = format!("{name}:{}", lineno + 1);
                let h = sha256_prefixed(line);
                let view: RecordView<'_> = match std::str::from_utf8(line).ok().and_then(|s| serde_json::from_str(s).ok()) {
                    Some(v) => v,
                    None => {
                        report.problems.push(format!("{at}: not a valid history record"));
                        prev_hash = Some(h);
                        expect_seq += 1;
                        continue;
                    }
                };
                if view.seq != expect_seq {
                    report.problems.push(format!(
                        "{at}: sequence number {} where {} was expected (a record was removed, inserted or moved)",
                        view.seq, expect_seq
                    ));
                }
                if view.prev != prev_hash.as_deref() {
                    report.problems.push(format!(
                        "{at}: record {} does not chain to record {} (record {} was edited, or records were removed or reordered)",
                        view.seq,
                        view.seq.saturating_sub(1),
                        view.seq.saturating_sub(1)
                    ));
                }
                if segment_name(view.seq) != name {
                    report.problems.push(format!("{at}: record {} belongs in {}", view.seq, segment_name(view.seq)));
                }
                visit(&view);
                report.records += 1;
                prev_hash = Some(h);
                expect_seq = view.seq.max(expect_seq) + 1;
            }
        }
        match self.tip() {
            Ok(tip) => {
                if tip.seq != report.records || tip.hash != prev_hash {
                    report.problems.push(format!(
                        "history/HEAD names record {} but the log ends at record {} (records were removed from or added to the end)",
                        tip.seq, report.records
                    ));
                }
            }
            Err(e) => report.problems.push(e.to_string()),
        }
        Ok(report)
    }
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| StoreError::io("cannot read", path, e))?;
    String::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        message: format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
    })
}
