//! The audit history on disk: `.releaseops/history/<segment>.jsonl`, 1,000
//! records per segment, plus `history/HEAD` with the last sequence number and
//! line hash. Appending writes only to the last segment, so it costs the same
//! at ten records as at a million, and git re-hashes one small file per commit.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};

use releaseops_format::history::{EventKind, LegacyHistory, Record};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

pub use releaseops_format::history::SEGMENT_RECORDS;
/// No segment of 1,000 records comes near this; a bigger file is not ours.
const SEGMENT_MAX_BYTES: u64 = 256 * 1024 * 1024;

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

/// The fields of a record that the chain state needs, borrowed from the
/// line where they can be, so a million records parse quickly. Gate results
/// are skipped: nothing derives state from them.
#[derive(Deserialize)]
struct LineView<'a> {
    seq: u64,
    #[serde(default, borrow)]
    prev: Option<Cow<'a, str>>,
    #[serde(borrow)]
    at: Cow<'a, str>,
    event: EventKind,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(default, borrow)]
    bundle_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    bundle_hash: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    env: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    from_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    state: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(default)]
    imported: bool,
    #[serde(default)]
    simulated_clock: bool,
    #[serde(default)]
    report: Option<releaseops_format::history::ReportEvidence>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(default)]
    rehearsal: bool,
}

impl LineView<'_> {
    /// The record as far as the chain state needs it: no gate results, and
    /// of the rest only what its kind of event contributes (a promotion's
    /// actor and reason make no state), so a million promotions fold fast.
    fn into_fact(self) -> Record {
        let own = |c: Option<Cow<'_, str>>| c.map(Cow::into_owned);
        let full = !matches!(
            self.event,
            EventKind::Promote | EventKind::EnvCreate | EventKind::EnvPolicy
        );
        let mut r = Record::new(
            self.event,
            self.at.into_owned(),
            if full {
                self.actor.into_owned()
            } else {
                String::new()
            },
        );
        r.seq = self.seq;
        r.bundle_id = own(self.bundle_id);
        r.version = own(self.version);
        r.env = own(self.env);
        r.imported = self.imported;
        r.simulated_clock = self.simulated_clock;
        r.rehearsal = self.rehearsal;
        if full {
            r.bundle_hash = own(self.bundle_hash);
            r.from_version = own(self.from_version);
            r.state = own(self.state);
            r.reason = own(self.reason);
            r.report = self.report;
            r.signature = own(self.signature);
        }
        r
    }
}

/// Where a walk of the chain stands: the next sequence number expected and
/// the hash of the last line seen.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    pub(crate) next_seq: u64,
    pub(crate) prev_hash: Option<[u8; 32]>,
}

impl Cursor {
    pub(crate) fn start() -> Cursor {
        Cursor {
            next_seq: 1,
            prev_hash: None,
        }
    }
}

/// What one walk over segments found.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    pub(crate) problems: Vec<String>,
    pub(crate) records: u64,
    pub(crate) simulated: u64,
    /// Per segment walked: its name, how many lines it holds, and the cursor
    /// after its last line.
    pub(crate) segments: Vec<(String, u64, Cursor)>,
}

impl HistoryLog {
    pub(crate) fn new(dir: PathBuf, legacy: PathBuf) -> Self {
        HistoryLog { dir, legacy }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn segments(&self) -> Result<Vec<PathBuf>> {
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
    /// its segment, and the tip must name the last line. `visit` sees every
    /// record in order (without its gate results), for the caller's replay.
    pub fn verify(&self, visit: impl FnMut(Record)) -> Result<ChainReport> {
        let segs = self.segments()?;
        let (cursor, walked) = self.walk(&segs, Cursor::start(), visit)?;
        let mut report = ChainReport {
            records: walked.records,
            segments: segs.len() as u64,
            problems: walked.problems,
            simulated_clock_records: walked.simulated,
        };
        if let Err(p) = self.check_tip(&cursor) {
            report.problems.push(p);
        }
        Ok(report)
    }

    /// The tip must name the last line walked.
    pub(crate) fn check_tip(&self, end: &Cursor) -> std::result::Result<(), String> {
        let last = end.next_seq.saturating_sub(1);
        match self.tip() {
            Ok(tip) => {
                let tip_hash = tip.hash.as_deref().and_then(decode_hash);
                if tip.seq != last || tip_hash != end.prev_hash {
                    return Err(format!(
                        "history/HEAD names record {} but the log ends at record {last} (records were removed from or added to the end)",
                        tip.seq
                    ));
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Walks `segs` in order from `cursor`, checking every link. Segments are
    /// hashed and parsed on all cores; the chain is then checked in order.
    pub(crate) fn walk(
        &self,
        segs: &[PathBuf],
        mut cursor: Cursor,
        mut visit: impl FnMut(Record),
    ) -> Result<(Cursor, Walked)> {
        let mut walked = Walked::default();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8)
            .min(segs.len());
        if workers <= 1 {
            let mut buf = Vec::new();
            for p in segs {
                let seg = scan_segment(p, &mut buf)?;
                self.walk_segment(seg, &mut cursor, &mut walked, &mut visit);
            }
            return Ok((cursor, walked));
        }
        // This thread and `workers - 1` helpers hash and parse segments
        // (lane w takes every w-th); helpers hand theirs over through small
        // channels, and this thread checks the links and folds in order.
        // Parsing and folding overlap, and memory stays bounded however long
        // the history is.
        std::thread::scope(|scope| -> Result<()> {
            let mut inbox = Vec::with_capacity(workers);
            for w in 1..workers {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Segment>>(4);
                inbox.push(rx);
                scope.spawn(move || {
                    let mut buf = Vec::new();
                    for p in segs.iter().skip(w).step_by(workers) {
                        let r = scan_segment(p, &mut buf);
                        let failed = r.is_err();
                        if tx.send(r).is_err() || failed {
                            return;
                        }
                    }
                });
            }
            let mut buf = Vec::new();
            for (i, p) in segs.iter().enumerate() {
                let lane = i % workers;
                let seg = if lane == 0 {
                    scan_segment(p, &mut buf)?
                } else {
                    inbox[lane - 1].recv().map_err(|_| StoreError::Corrupt {
                        path: p.clone(),
                        message: "the history reader stopped".into(),
                    })??
                };
                self.walk_segment(seg, &mut cursor, &mut walked, &mut visit);
            }
            Ok(())
        })?;
        Ok((cursor, walked))
    }

    /// Checks one scanned segment's links against `cursor` and folds it.
    fn walk_segment(
        &self,
        seg: Segment,
        cursor: &mut Cursor,
        walked: &mut Walked,
        visit: &mut impl FnMut(Record),
    ) {
        if seg.incomplete {
            walked
                .problems
                .push(format!("{}: the last line is incomplete", seg.name));
        }
        if seg.lines.is_empty() {
            walked.problems.push(format!(
                "{}: holds no records (releaseops never writes an empty segment)",
                seg.name
            ));
        }
        let count = seg.lines.len() as u64;
        for line in seg.lines {
            let at = || format!("{}:{}", seg.name, line.lineno);
            let Some(rec) = line.record else {
                walked
                    .problems
                    .push(format!("{}: not a valid history record", at()));
                cursor.prev_hash = Some(line.hash);
                cursor.next_seq += 1;
                continue;
            };
            let seq = rec.seq;
            if seq != cursor.next_seq {
                walked.problems.push(format!(
                    "{}: sequence number {seq} where {} was expected (a record was removed, inserted or moved)",
                    at(),
                    cursor.next_seq
                ));
            }
            if line.prev != cursor.prev_hash {
                walked.problems.push(format!(
                    "{}: record {seq} does not chain to record {} (record {} was edited, or records were removed or reordered)",
                    at(),
                    seq.saturating_sub(1),
                    seq.saturating_sub(1)
                ));
            }
            if (seq.saturating_sub(1)) / SEGMENT_RECORDS != seg.index {
                walked.problems.push(format!(
                    "{}: record {seq} belongs in {}",
                    at(),
                    segment_name(seq)
                ));
            }
            walked.records += 1;
            walked.simulated += u64::from(rec.simulated_clock);
            visit(rec);
            cursor.prev_hash = Some(line.hash);
            cursor.next_seq = seq.max(cursor.next_seq) + 1;
        }
        walked.segments.push((seg.name.clone(), count, *cursor));
    }
}

struct Line {
    lineno: usize,
    hash: [u8; 32],
    prev: Option<[u8; 32]>,
    /// None when the line is not a record.
    record: Option<Record>,
}

struct Segment {
    name: String,
    index: u64,
    incomplete: bool,
    lines: Vec<Line>,
}

/// `sha256:<64 lowercase or uppercase hex>` as bytes. Table-driven: every
/// record's `prev` goes through here, a million times for `history verify`.
pub(crate) fn decode_hash(h: &str) -> Option<[u8; 32]> {
    const BAD: u8 = 0xff;
    const TABLE: [u8; 256] = {
        let mut t = [BAD; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    let hex = h.strip_prefix("sha256:")?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (TABLE[pair[0] as usize], TABLE[pair[1] as usize]);
        bad |= (hi | lo) & 0xf0;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad == 0).then_some(out)
}

fn scan_segment(path: &Path, buf: &mut Vec<u8>) -> Result<Segment> {
    use sha2::{Digest, Sha256};
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let index = name
        .get(..8)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    crate::fsx::read_regular_into(path, SEGMENT_MAX_BYTES, buf)?;
    let bytes = &buf[..];
    let mut lines = Vec::with_capacity(SEGMENT_RECORDS as usize);
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    for (i, end) in ends.enumerate() {
        let raw = &bytes[start..end];
        start = end + 1;
        if raw.is_empty() {
            continue;
        }
        let hash: [u8; 32] = Sha256::digest(raw).into();
        let view: Option<LineView<'_>> = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| serde_json::from_str(s).ok());
        lines.push(match view {
            None => Line {
                lineno: i + 1,
                hash,
                prev: None,
                record: None,
            },
            Some(v) => Line {
                lineno: i + 1,
                hash,
                // A present but malformed prev can never match: use a hash no line has.
                prev: v
                    .prev
                    .as_deref()
                    .map(|p| decode_hash(p).unwrap_or([0xff; 32])),
                record: Some(v.into_fact()),
            },
        });
    }
    Ok(Segment {
        name,
        index,
        incomplete: !bytes.is_empty() && !bytes.ends_with(b"\n"),
        lines,
    })
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = crate::fsx::read_regular(path, SEGMENT_MAX_BYTES)?;
    String::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        message: format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
    })
}
