//! The audit history on disk: `.releaseops/history/<segment>.jsonl`, 1,000
//! records per segment, plus `history/HEAD` with the last sequence number and
//! line hash. Appending writes only to the last segment, so it costs the same
//! at ten records as at a million, and git re-hashes one small file per commit.

use std::fs;
use std::path::{Path, PathBuf};

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
    /// Records written with a hand-set clock (RELEASEOPS_NOW).
    pub simulated_clock_records: u64,
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
    #[serde(default)]
    pub simulated_clock: bool,
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
                    if name.ends_with(".jsonl")
                        && name.len() == 14
                        && name[..8].bytes().all(|b| b.is_ascii_digit())
                    {
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
                    Err(StoreError::Corrupt {
                        path: head,
                        message: "the history tip is missing".into(),
                    })
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
    pub fn newest(
        &self,
        limit: usize,
        mut keep: impl FnMut(&Record) -> bool,
    ) -> Result<Vec<Record>> {
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
    fn for_each_line(
        &self,
        mut f: impl FnMut(&str, &Path) -> Result<(), releaseops_format::FormatError>,
    ) -> Result<()> {
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
    /// deployment (event, environment, bundle, version) in order, for the
    /// caller's replay. Segments are hashed and parsed on all cores; the chain
    /// is then checked in order.
    pub fn verify(
        &self,
        mut visit: impl FnMut(EventKind, &str, &str, &str),
    ) -> Result<ChainReport> {
        let mut report = ChainReport::default();
        let segs = self.segments()?;
        report.segments = segs.len() as u64;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let mut prev_hash: Option<[u8; 32]> = None;
        let mut expect_seq = 1u64;
        for batch in segs.chunks(workers * 4) {
            let results: Vec<Result<Segment>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers)
                    .map(|w| {
                        scope.spawn(move || {
                            batch
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| i % workers == w)
                                .map(|(i, p)| (i, scan_segment(p)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                let mut all: Vec<(usize, Result<Segment>)> = handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect();
                all.sort_by_key(|(i, _)| *i);
                all.into_iter().map(|(_, r)| r).collect()
            });
            for seg in results {
                let seg = seg?;
                if seg.incomplete {
                    report
                        .problems
                        .push(format!("{}: the last line is incomplete", seg.name));
                }
                for line in &seg.lines {
                    let at = || format!("{}:{}", seg.name, line.lineno);
                    let Some(seq) = line.seq else {
                        report
                            .problems
                            .push(format!("{}: not a valid history record", at()));
                        prev_hash = Some(line.hash);
                        expect_seq += 1;
                        continue;
                    };
                    if seq != expect_seq {
                        report.problems.push(format!(
                            "{}: sequence number {seq} where {expect_seq} was expected (a record was removed, inserted or moved)",
                            at()
                        ));
                    }
                    if line.prev != prev_hash {
                        report.problems.push(format!(
                            "{}: record {seq} does not chain to record {} (record {} was edited, or records were removed or reordered)",
                            at(),
                            seq.saturating_sub(1),
                            seq.saturating_sub(1)
                        ));
                    }
                    if (seq.saturating_sub(1)) / SEGMENT_RECORDS != seg.index {
                        report.problems.push(format!(
                            "{}: record {seq} belongs in {}",
                            at(),
                            segment_name(seq)
                        ));
                    }
                    if let Some(d) = &line.deploy {
                        visit(d.event, &d.env, &d.bundle, &d.version);
                    }
                    report.records += 1;
                    report.simulated_clock_records += u64::from(line.simulated);
                    prev_hash = Some(line.hash);
                    expect_seq = seq.max(expect_seq) + 1;
                }
            }
        }
        match self.tip() {
            Ok(tip) => {
                let tip_hash = tip.hash.as_deref().and_then(decode_hash);
                if tip.seq != report.records || tip_hash != prev_hash {
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

struct Deploy {
    event: EventKind,
    env: String,
    bundle: String,
    version: String,
}

struct Line {
    lineno: usize,
    hash: [u8; 32],
    /// None when the line is not a record.
    seq: Option<u64>,
    prev: Option<[u8; 32]>,
    deploy: Option<Deploy>,
    simulated: bool,
}

struct Segment {
    name: String,
    index: u64,
    incomplete: bool,
    lines: Vec<Line>,
}

fn decode_hash(h: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(h.strip_prefix("sha256:")?, &mut out).ok()?;
    Some(out)
}

fn scan_segment(path: &Path) -> Result<Segment> {
    use sha2::{Digest, Sha256};
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let index = name
        .get(..8)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    let bytes = fs::read(path).map_err(|e| StoreError::io("cannot read", path, e))?;
    let mut lines = Vec::with_capacity(SEGMENT_RECORDS as usize);
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let hash: [u8; 32] = Sha256::digest(raw).into();
        let view: Option<RecordView<'_>> = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| serde_json::from_str(s).ok());
        let line = match view {
            None => Line {
                lineno: i + 1,
                hash,
                seq: None,
                prev: None,
                deploy: None,
                simulated: false,
            },
            Some(v) => Line {
                lineno: i + 1,
                hash,
                seq: Some(v.seq),
                // A present but malformed prev can never match: use a hash no line has.
                prev: v.prev.map(|p| decode_hash(p).unwrap_or([0xff; 32])),
                simulated: v.simulated_clock,
                deploy: match (v.event, v.env, v.bundle_id, v.version) {
                    (
                        ev @ (EventKind::Promote | EventKind::Rollback),
                        Some(env),
                        Some(b),
                        Some(ver),
                    ) => Some(Deploy {
                        event: ev,
                        env: env.to_string(),
                        bundle: b.to_string(),
                        version: ver.to_string(),
                    }),
                    _ => None,
                },
            },
        };
        lines.push(line);
    }
    Ok(Segment {
        name,
        index,
        incomplete: !bytes.is_empty() && !bytes.ends_with(b"\n"),
        lines,
    })
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| StoreError::io("cannot read", path, e))?;
    String::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        message: format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
    })
}
