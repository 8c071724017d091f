//! The release decision agent, wired to the store.
//!
//! Decision records and outcomes live in `.releaseops/agent/` as JSON lines in
//! segments (100 decisions, 1,000 outcomes each) and are committed like every
//! other change; `agent/HEAD`
//! counts them. A binary image of the memory (`agent/.cache/`, ignored by
//! git) is rebuilt from the records whenever they change under it, so recall
//! stays fast at 100,000 episodes and the records stay the truth. Every
//! `REFLECT_EVERY` outcomes the heuristics are derived again into
//! `agent/heuristics.json`.

use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use releaseops_agent::context::Context;
use releaseops_agent::heuristics::{self, Heuristic};
use releaseops_agent::image::{ImageMeta, Recalled};
use releaseops_agent::planner::{self, Action, Plan};
use releaseops_agent::review::{self, RedTeam, Reflection};
use releaseops_agent::{Level, Memory, Outcome};
use releaseops_store::{Store, Transaction};
use serde::{Deserialize, Serialize};

use crate::{CoreError, Ctx, Result};

const DIR: &str = "agent";
/// Records per segment file: decision records are large, so their files are
/// kept small (committing one means hashing it).
fn per_segment(kind: &str) -> u64 {
    if kind == "decisions" { 100 } else { 1000 }
}
/// Heuristics are derived again after this many new outcomes.
pub const REFLECT_EVERY: u64 = releaseops_agent::heuristics::REFLECT_EVERY_DEFAULT;
/// How many similar past episodes a decision recalls.
pub const RECALL: usize = 5;

/// Counts of what `agent/` holds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Head {
    pub decisions: u64,
    pub outcomes: u64,
    /// `outcomes` when the heuristics were last derived.
    pub reflected_at: u64,
    /// History records up to this sequence number have had their survival
    /// outcomes settled (so a promotion does not load the memory for that).
    #[serde(default)]
    pub settled_through: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleRef {
    pub id: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimilarEpisode {
    pub id: String,
    pub similarity: f64,
    pub decision: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppliedHeuristic {
    pub id: String,
    pub when: std::collections::BTreeMap<String, String>,
    pub recommendation: Action,
    pub confidence: f64,
}

/// Everything about one decision, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub at: String,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundleRef>,
    pub context: Context,
    pub similar_episodes: Vec<SimilarEpisode>,
    pub heuristics_applied: Vec<AppliedHeuristic>,
    pub plan: Plan,
    pub red_team: RedTeam,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reflection: Option<Reflection>,
    /// The final decision, after the red team and the second look.
    pub decision: Action,
    pub reasons: Vec<String>,
    /// The gate this decision fed (`blocking`, `advisory`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutcomeRecord {
    pub decision_id: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub actor: String,
    pub at: String,
    /// `manual`, or what recorded it automatically.
    pub source: String,
}

/// A decision to make.
pub struct DecideRequest {
    pub context: Context,
    pub bundle: Option<BundleRef>,
    pub gate: Option<String>,
    /// A HIGH red-team risk level turns a GO into a DELAY.
    pub red_team_blocks: bool,
}

fn rel_segment(kind: &str, n: u64) -> String {
    format!("{DIR}/{kind}/{:06}.jsonl", (n - 1) / per_segment(kind))
}

fn agent_dir(store: &Store) -> PathBuf {
    store.dir().join(DIR)
}

/// What `agent/` holds (all zero before the first decision).
pub fn head(store: &Store) -> Result<Head> {
    read_head(store)
}

/// More decisions or outcomes than this is a damaged HEAD, not a memory.
const MAX_RECORDS: u64 = 1_000_000_000;

fn read_head(store: &Store) -> Result<Head> {
    let path = agent_dir(store).join("HEAD");
    let head: Head = match fs::read_to_string(&path) {
        Ok(s) => serde_json::from_str(&s).map_err(|e| corrupt(&path, None, &e.to_string()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Head::default()),
        Err(e) => return Err(corrupt(&path, None, &e.to_string())),
    };
    if head.decisions > MAX_RECORDS
        || head.outcomes > MAX_RECORDS
        || head.reflected_at > head.outcomes
    {
        return Err(corrupt(
            &path,
            None,
            "its counts are impossible (reflected_at above outcomes, or over a billion)",
        ));
    }
    Ok(head)
}

fn corrupt(path: &Path, line: Option<usize>, msg: &str) -> CoreError {
    let at = match line {
        Some(l) => format!("{} line {l}", path.display()),
        None => path.display().to_string(),
    };
    CoreError::refused(
        format!("agent memory {at} is damaged: {msg}"),
        format!(
            "restore it from git (git checkout -- {}) and run the command again",
            path.display()
        ),
    )
}

/// The decision and outcome records' files, with the number of records each
/// must hold, in order.
fn segments(agent: &Path, kind: &str, count: u64) -> Vec<(PathBuf, u64)> {
    let dir = agent.join(kind);
    let per = per_segment(kind);
    (0..count.div_ceil(per))
        .map(|s| {
            let n = (count - s * per).min(per);
            (dir.join(format!("{s:06}.jsonl")), n)
        })
        .collect()
}

/// Changes when any record file changes (size or modification time), so a
/// hand edit is never hidden by the image. Each file contributes its own
/// term, so a change to one file can be accounted for alone.
fn fingerprint(agent: &Path, head: &Head) -> u64 {
    segments(agent, "decisions", head.decisions)
        .into_iter()
        .chain(segments(agent, "outcomes", head.outcomes))
        .fold(0, |fp, (path, _)| fp ^ file_term(&path))
}

fn file_term(path: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    if let Ok(m) = fs::metadata(path) {
        m.len().hash(&mut h);
        m.modified().ok().hash(&mut h);
    }
    h.finish()
}

/// Reads every line of the segments of `kind`, checking they hold exactly
/// what HEAD says.
fn read_lines<T: for<'de> Deserialize<'de>>(
    store: &Store,
    kind: &str,
    count: u64,
    mut each: impl FnMut(T, &Path, usize) -> Result<()>,
) -> Result<()> {
    for (path, expected) in segments(&agent_dir(store), kind, count) {
        let text = fs::read_to_string(&path).map_err(|e| corrupt(&path, None, &e.to_string()))?;
        let mut n = 0u64;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            n += 1;
            let rec: T = serde_json::from_str(line)
                .map_err(|e| corrupt(&path, Some(i + 1), &e.to_string()))?;
            each(rec, &path, i + 1)?;
        }
        if n != expected {
            return Err(corrupt(
                &path,
                None,
                &format!("it holds {n} records, agent/HEAD says {expected}"),
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct EpisodeLine {
    decision_id: String,
    decision: Action,
    context: Context,
}

#[derive(Deserialize)]
struct OutcomeLine {
    decision_id: String,
    outcome: Outcome,
}

/// The memory image on disk: the byte length of each of its parts, when
/// known to match the memory in hand.
#[derive(Debug, Clone, Copy)]
pub struct Image {
    lens: Option<[u64; 3]>,
}

fn image_paths(store: &Store) -> (PathBuf, [PathBuf; 3]) {
    let dir = agent_dir(store).join(".cache");
    (
        dir.join("memory.meta"),
        ["memory.ids", "memory.rows", "memory.attrs"].map(|n| dir.join(n)),
    )
}

/// The memory, from the image when it is current, else rebuilt from the
/// records (and the image written again).
pub fn load_memory(store: &Store, head: &Head) -> Result<Memory> {
    let fp = fingerprint(&agent_dir(store), head);
    load_memory_image(store, head, fp).map(|(m, _)| m)
}

fn load_memory_image(store: &Store, head: &Head, fp: u64) -> Result<(Memory, Image)> {
    let stamp = [head.decisions, head.outcomes, fp];
    let (meta_path, part_paths) = image_paths(store);
    let parts = part_paths.each_ref().map(|p| fs::read(p).ok());
    if let (Ok(meta), [Some(ids), Some(rows), Some(attrs)]) = (fs::read(&meta_path), &parts)
        && let Some((memory, got, lens)) = Memory::decode(&meta, [ids, rows, attrs])
        && got == stamp
    {
        return Ok((memory, Image { lens: Some(lens) }));
    }
    let mut memory = Memory::default();
    let mut seen = std::collections::HashSet::new();
    read_lines(
        store,
        "decisions",
        head.decisions,
        |e: EpisodeLine, path, line| {
            if !seen.insert(e.decision_id.clone()) {
                return Err(corrupt(
                    path,
                    Some(line),
                    &format!("decision id {} appears twice", e.decision_id),
                ));
            }
            memory.append_new(&e.decision_id, e.context.attributes(), e.decision, None);
            Ok(())
        },
    )?;
    read_lines(
        store,
        "outcomes",
        head.outcomes,
        |o: OutcomeLine, path, line| {
            if memory.set_outcome(&o.decision_id, o.outcome) {
                Ok(())
            } else {
                Err(corrupt(
                    path,
                    Some(line),
                    &format!("outcome for unknown decision {}", o.decision_id),
                ))
            }
        },
    )?;
    let image = write_image(store, &memory, stamp, Image { lens: None }, 0);
    Ok((memory, image))
}

/// Best effort (an image that cannot be written is rebuilt next time).
/// With `image.lens` known, only rows from `first_new` on are appended;
/// otherwise every row is written.
fn write_image(
    store: &Store,
    memory: &Memory,
    stamp: [u64; 3],
    image: Image,
    first_new: usize,
) -> Image {
    let failed = Image { lens: None };
    let (meta_path, part_paths) = image_paths(store);
    let Some(dir) = meta_path.parent() else {
        return failed;
    };
    if fs::create_dir_all(dir).is_err() {
        return failed;
    }
    if !dir.join(".gitignore").exists() {
        let _ = fs::write(dir.join(".gitignore"), "*\n");
    }
    let mut lens = [0u64; 3];
    match image.lens {
        Some(old) => {
            let new = memory.encode_rows(first_new);
            if !append_parts(&part_paths, old, &new) {
                return failed;
            }
            for i in 0..3 {
                lens[i] = old[i] + new[i].len() as u64;
            }
        }
        None => {
            let all = memory.encode_rows(0);
            for i in 0..3 {
                let tmp = dir.join(format!(".part{i}.{}.tmp", std::process::id()));
                if fs::write(&tmp, &all[i]).is_err() || fs::rename(&tmp, &part_paths[i]).is_err() {
                    return failed;
                }
                lens[i] = all[i].len() as u64;
            }
        }
    }
    let tmp = dir.join(format!(".meta.{}.tmp", std::process::id()));
    if fs::write(&tmp, memory.encode_meta(stamp, lens)).is_err()
        || fs::rename(&tmp, &meta_path).is_err()
    {
        return failed;
    }
    Image { lens: Some(lens) }
}

/// The heuristics derived last.
pub fn heuristics(store: &Store) -> Result<Vec<Heuristic>> {
    let path = agent_dir(store).join("heuristics.json");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(corrupt(&path, None, &e.to_string())),
    };
    let file: HeuristicsFile =
        serde_json::from_str(&text).map_err(|e| corrupt(&path, None, &e.to_string()))?;
    for h in &file.heuristics {
        heuristics::valid(h).map_err(|e| corrupt(&path, None, &e))?;
    }
    Ok(file.heuristics)
}

#[derive(Serialize, Deserialize)]
struct HeuristicsFile {
    derived_from_outcomes: u64,
    heuristics: Vec<Heuristic>,
}

/// Decides, records the decision, and commits it.
pub fn decide(ctx: &Ctx, req: DecideRequest) -> Result<DecisionRecord> {
    let mut tx = ctx.store.begin()?;
    let staged = stage(ctx, &mut tx, req)?;
    let record = &staged.record;
    let what = match &record.bundle {
        Some(b) => format!("{} {} -> {}", b.id, b.version, record.context.env),
        None => format!("-> {}", record.context.env),
    };
    tx.commit(
        &format!(
            "releaseops: agent {} {} for {what}",
            record.decision_id, record.decision
        ),
        ctx.author().as_ref(),
    )?;
    Ok(staged.after_commit(ctx.store))
}

/// A decision made and staged in a transaction, not yet committed.
pub struct Staged {
    pub record: DecisionRecord,
    source: Recall,
    head: Head,
    fp: u64,
    before: u64,
    segment: PathBuf,
}

/// Where recall came from, and so how the image is brought up to date.
enum Recall {
    /// The image was current: recalled from it without building the memory;
    /// the new row is appended to it.
    Image(ImageMeta),
    /// The memory was built (the image was missing or stale).
    Memory(Memory, Image),
}

/// Recall straight from the image on disk, when its meta carries `stamp`
/// (checked by the caller once the stamp is known): the table and the
/// attribute ids are streamed, and only the winners' ids are read.
fn recall_from_image(store: &Store, context: &Context) -> Option<(ImageMeta, Vec<Recalled>)> {
    use std::io::{Read, Seek, SeekFrom};
    let (meta_path, [ids, table, attrs]) = image_paths(store);
    let meta = ImageMeta::decode(&fs::read(&meta_path).ok()?)?;
    let mut ids = fs::File::open(ids).ok()?;
    let ids_len = ids.metadata().ok()?.len();
    let found = meta.recall_from(
        fs::File::open(table).ok()?,
        fs::File::open(attrs).ok()?,
        ids_len,
        context,
        RECALL,
        |at, n| {
            let mut buf = vec![0; n];
            ids.seek(SeekFrom::Start(at)).ok()?;
            ids.read_exact(&mut buf).ok()?;
            Some(buf)
        },
    )?;
    Some((meta, found))
}

/// The most similar past episodes, from a built memory.
pub fn recall(memory: &Memory, context: &Context) -> Vec<SimilarEpisode> {
    memory
        .similar(context, RECALL)
        .into_iter()
        .map(|(row, s)| SimilarEpisode {
            id: memory.id(row).to_string(),
            similarity: (s * 1000.0).round() / 1000.0,
            decision: row.decision,
            outcome: row.outcome,
        })
        .collect()
}

/// Decides and stages the record (and the new counts) in `tx`, whose
/// commit makes it part of the memory; call [`Staged::after_commit`] then.
pub fn stage(ctx: &Ctx, tx: &mut Transaction<'_>, req: DecideRequest) -> Result<Staged> {
    let mut head = read_head(ctx.store)?;
    // Statting every record file and scanning the image take about as long
    // as each other, so they run side by side; the recall is used only if
    // the image turns out to be current.
    let agent = agent_dir(ctx.store);
    let (fp, fast) = std::thread::scope(|s| {
        let fp = s.spawn(|| fingerprint(&agent, &head));
        let fast = recall_from_image(ctx.store, &req.context);
        let fp = fp.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (fp, fast)
    });
    let stamp = [head.decisions, head.outcomes, fp];
    let fast = fast.filter(|(meta, _)| meta.stamp == stamp);
    let (source, similar) = match fast {
        Some((meta, found)) => {
            let similar = found
                .into_iter()
                .map(|r| SimilarEpisode {
                    id: r.id,
                    similarity: (r.similarity * 1000.0).round() / 1000.0,
                    decision: r.decision,
                    outcome: r.outcome,
                })
                .collect();
            (Recall::Image(meta), similar)
        }
        None => {
            let (memory, image) = load_memory_image(ctx.store, &head, fp)?;
            let similar = recall(&memory, &req.context);
            (Recall::Memory(memory, image), similar)
        }
    };
    let learned = heuristics(ctx.store)?;
    head.decisions += 1;
    // The one record file this decision changes (or creates).
    let segment = ctx
        .store
        .dir()
        .join(rel_segment("decisions", head.decisions));
    let before = if (head.decisions - 1) % per_segment("decisions") == 0 {
        0
    } else {
        file_term(&segment)
    };
    let llm = llm_of(ctx.store);
    let record = assess_with(
        similar,
        &learned,
        req,
        format!("dec-{:06}", head.decisions),
        ctx.now_str(),
        ctx.actor.clone(),
        llm.as_ref().map(|l| l as &dyn releaseops_agent::llm::Llm),
    );
    let line = serde_json::to_string(&record)
        .map_err(|e| CoreError::invalid(e.to_string(), "report this as a bug"))?;
    tx.append_line(&rel_segment("decisions", head.decisions), &line)?;
    write_head(tx, &head);
    Ok(Staged {
        record,
        source,
        head,
        fp,
        before,
        segment,
    })
}

impl Staged {
    /// Brings the memory image up to date once the transaction committed.
    pub fn after_commit(self, store: &Store) -> DecisionRecord {
        let Staged {
            record,
            source,
            head,
            fp,
            before,
            segment,
        } = self;
        let stamp = [
            head.decisions,
            head.outcomes,
            fp ^ before ^ file_term(&segment),
        ];
        let attrs = record.context.attributes();
        match source {
            Recall::Image(mut meta) => {
                let old = meta.lens;
                let parts = meta.append(&record.decision_id, attrs, record.decision, stamp);
                append_image(store, &meta, old, &parts);
            }
            Recall::Memory(mut memory, image) => {
                let first_new = memory.rows.len();
                // Ids are handed out in sequence under the lock: new by construction.
                memory.append_new(&record.decision_id, attrs, record.decision, None);
                write_image(store, &memory, stamp, image, first_new);
            }
        }
        record
    }
}

/// Appends `new` to each part file, cut back to `old` first (a crash may
/// have left a partial row there).
fn append_parts(paths: &[PathBuf; 3], old: [u64; 3], new: &[Vec<u8>; 3]) -> bool {
    use std::io::{Seek, SeekFrom, Write};
    (0..3).all(|i| {
        fs::OpenOptions::new()
            .write(true)
            .open(&paths[i])
            .and_then(|mut f| {
                f.set_len(old[i])?;
                f.seek(SeekFrom::Start(old[i]))?;
                f.write_all(&new[i])
            })
            .is_ok()
    })
}

/// Appends rows to the image's parts (cut back to `old` first: a crash may
/// have left a partial row) and writes the meta that covers them. Best
/// effort: a failure leaves a stale image, which is rebuilt.
fn append_image(store: &Store, meta: &ImageMeta, old: [u64; 3], parts: &[Vec<u8>; 3]) {
    let (meta_path, part_paths) = image_paths(store);
    if !append_parts(&part_paths, old, parts) {
        let _ = fs::remove_file(&meta_path);
        return;
    }
    if let Some(dir) = meta_path.parent() {
        let tmp = dir.join(format!(".meta.{}.tmp", std::process::id()));
        if fs::write(&tmp, meta.encode()).is_err() || fs::rename(&tmp, &meta_path).is_err() {
            let _ = fs::remove_file(&meta_path);
        }
    }
}

/// The agent's decision as a promotion gate. Blocking: NO_GO fails, DELAY is
/// pending until the window the planner named, GO passes. Advisory: passes,
/// saying what the agent thought.
pub fn gate(
    mode: releaseops_format::environment::AgentMode,
    rec: &DecisionRecord,
    now: jiff::Timestamp,
    tz: &jiff::tz::TimeZone,
) -> releaseops_format::history::GateResult {
    use releaseops_format::environment::AgentMode;
    use releaseops_format::history::{GateResult, GateStatus};
    let why = rec
        .reasons
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    let said = format!(
        "agent {} says {} (risk {}): {why}",
        rec.decision_id, rec.decision, rec.plan.risk_score
    );
    let (status, passes_at) = match (mode, rec.decision) {
        (AgentMode::Advisory, _) | (AgentMode::Blocking, Action::Go) => (GateStatus::Passed, None),
        (AgentMode::Blocking, Action::NoGo) => (GateStatus::Failed, None),
        (AgentMode::Blocking, Action::Delay) => (
            GateStatus::Pending,
            rec.plan
                .delay_until
                .and_then(|w| window_start(now, tz, w))
                .map(releaseops_format::time::format),
        ),
    };
    let reason = match (mode, &passes_at) {
        (AgentMode::Advisory, _) => format!("advisory: {said}"),
        (_, Some(t)) => format!("{said}; ask again from {t}"),
        _ => said,
    };
    GateResult {
        gate: releaseops_format::history::Gate::Agent,
        status,
        reason,
        passes_at,
    }
}

/// The next start of `w` (a weekday and hour in `tz`) after `now`.
fn window_start(
    now: jiff::Timestamp,
    tz: &jiff::tz::TimeZone,
    w: releaseops_agent::planner::Window,
) -> Option<jiff::Timestamp> {
    (1..=8 * 24).find_map(|h| {
        let t = now.checked_add(jiff::SignedDuration::from_hours(h)).ok()?;
        let z = t.to_zoned(tz.clone());
        let day = releaseops_agent::Day::from_index(z.weekday().to_monday_zero_offset() as usize);
        (day == w.day && z.hour() as u8 == w.hour)
            .then(|| {
                z.with()
                    .minute(0)
                    .second(0)
                    .subsec_nanosecond(0)
                    .build()
                    .ok()
            })
            .flatten()
            .map(|z| z.timestamp())
    })
}

/// The whole assessment of one release, without storing it: recall, plan,
/// red team, second look, and the language model when one is given.
pub fn assess_with(
    similar_episodes: Vec<SimilarEpisode>,
    learned: &[Heuristic],
    req: DecideRequest,
    decision_id: String,
    at: String,
    actor: String,
    llm: Option<&dyn releaseops_agent::llm::Llm>,
) -> DecisionRecord {
    let context = req.context;
    let recalled: Vec<(f64, Option<Outcome>)> = similar_episodes
        .iter()
        .map(|e| (e.similarity, e.outcome))
        .collect();
    let mut plan = planner::plan_with_recall(&context, learned, &recalled);
    let mut red_team = review::red_team(&context, &plan);
    if let Some(llm) = llm {
        let applied: Vec<&Heuristic> = learned
            .iter()
            .filter(|h| h.applies() && h.matches(&context.attributes()))
            .collect();
        releaseops_agent::llm::consult(llm, &context, &mut plan, &mut red_team, &applied);
    }
    let mut reflection = review::reflect(&context, &plan, &red_team);
    if let Some(llm) = llm
        && context.production
        && plan.decision == Action::Go
        && reflection.as_ref().is_none_or(|r| r.decision == Action::Go)
    {
        reflection = Some(releaseops_agent::llm::second_look(
            llm, &context, &plan, &red_team,
        ));
    }
    let mut reasons = plan.reasons.clone();
    let mut decision = plan.decision;
    if let Some(r) = &reflection
        && r.decision != decision
    {
        decision = r.decision;
        reasons.push(format!("second look: {} ({})", r.outcome, r.reason));
    }
    if req.red_team_blocks && decision == Action::Go && red_team.risk_level == Level::High {
        decision = Action::Delay;
        reasons.push(
            "the red team rates the risk HIGH and this environment lets that hold a release".into(),
        );
    }
    // A DELAY always names when to ask again (the gate waits until then).
    if decision == Action::Delay && plan.delay_until.is_none() {
        let w = planner::next_safe_window(context.day_of_week, context.hour_of_day);
        reasons.push(format!("next safe window: {w}"));
        plan.delay_until = Some(w);
    }
    let heuristics_applied = learned
        .iter()
        .filter(|h| plan.heuristics_applied.contains(&h.id))
        .map(|h| AppliedHeuristic {
            id: h.id.clone(),
            when: h.when.clone(),
            recommendation: h.recommendation,
            confidence: h.confidence,
        })
        .collect();
    DecisionRecord {
        decision_id,
        at,
        actor,
        bundle: req.bundle,
        context,
        similar_episodes,
        heuristics_applied,
        plan,
        red_team,
        reflection,
        decision,
        reasons,
        gate: req.gate,
    }
}

/// Writes decision and outcome records straight into an empty memory,
/// outside any transaction and without git: for benchmarks and simulations
/// on scratch stores.
#[doc(hidden)]
pub fn bulk_load(
    store: &Store,
    records: &[DecisionRecord],
    outcomes: &[OutcomeRecord],
) -> Result<Head> {
    let head = Head {
        decisions: records.len() as u64,
        outcomes: outcomes.len() as u64,
        reflected_at: 0,
        settled_through: 0,
    };
    let io = |path: &Path, e: std::io::Error| corrupt(path, None, &e.to_string());
    for (kind, lines) in [
        (
            "decisions",
            records
                .iter()
                .map(|r| serde_json::to_string(r).unwrap_or_default())
                .collect::<Vec<_>>(),
        ),
        (
            "outcomes",
            outcomes
                .iter()
                .map(|r| serde_json::to_string(r).unwrap_or_default())
                .collect(),
        ),
    ] {
        let per = per_segment(kind);
        for (n, chunk) in lines.chunks(per as usize).enumerate() {
            let path = store.dir().join(rel_segment(kind, n as u64 * per + 1));
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            }
            fs::write(&path, chunk.join("\n") + "\n").map_err(|e| io(&path, e))?;
        }
    }
    let path = agent_dir(store).join("HEAD");
    fs::write(&path, serde_json::to_string(&head).unwrap_or_default()).map_err(|e| io(&path, e))?;
    Ok(head)
}

fn write_head(tx: &mut Transaction<'_>, head: &Head) {
    tx.write(
        format!("{DIR}/HEAD"),
        serde_json::to_string(head).unwrap_or_default(),
    );
}

/// What recording an outcome did.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeResult {
    pub record: OutcomeRecord,
    /// The heuristics, when this outcome was the one that made the agent
    /// derive them again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reflected: Option<Vec<Heuristic>>,
}

/// Attaches an outcome to a decision (the latest outcome of a decision is
/// the one that counts) and, every `REFLECT_EVERY` outcomes, learns again.
pub fn record_outcome(
    ctx: &Ctx,
    decision_id: &str,
    outcome: Outcome,
    note: Option<String>,
    source: &str,
) -> Result<OutcomeResult> {
    if note.as_ref().is_some_and(|n| n.len() > 2000) {
        return Err(CoreError::invalid(
            "the note is longer than 2,000 characters",
            "keep the note short and link to the incident report",
        ));
    }
    let mut tx = ctx.store.begin()?;
    let mut outcomes = Outcomes::open(ctx.store)?;
    let Some(record) = outcomes.add(ctx, &mut tx, decision_id, outcome, note, source)? else {
        return Err(CoreError::invalid(
            format!("there is no decision '{decision_id}'"),
            "decision ids look like dec-000123; `releaseops agent memory` lists them",
        ));
    };
    let reflected = outcomes.finish(ctx.store, &mut tx, true)?;
    tx.commit(
        &format!(
            "releaseops: agent outcome {decision_id} {}",
            outcome.as_str()
        ),
        ctx.author().as_ref(),
    )?;
    outcomes.after_commit(ctx.store);
    Ok(OutcomeResult { record, reflected })
}

/// Outcomes being recorded in one transaction.
pub struct Outcomes {
    head: Head,
    memory: Memory,
    added: u64,
    /// The head changed without outcomes (the settle cursor moved).
    dirty: bool,
}

impl Outcomes {
    pub fn open(store: &Store) -> Result<Outcomes> {
        let head = read_head(store)?;
        let memory = load_memory(store, &head)?;
        Ok(Outcomes {
            head,
            memory,
            added: 0,
            dirty: false,
        })
    }

    /// The outcome the memory holds for a decision, if the decision exists.
    pub fn current(&self, decision_id: &str) -> Option<Option<Outcome>> {
        self.memory.get(decision_id).map(|r| r.outcome)
    }

    /// Stages one outcome; `None` when there is no such decision.
    pub fn add(
        &mut self,
        ctx: &Ctx,
        tx: &mut Transaction<'_>,
        decision_id: &str,
        outcome: Outcome,
        note: Option<String>,
        source: &str,
    ) -> Result<Option<OutcomeRecord>> {
        if !self.memory.set_outcome(decision_id, outcome) {
            return Ok(None);
        }
        self.head.outcomes += 1;
        self.added += 1;
        let record = OutcomeRecord {
            decision_id: decision_id.to_string(),
            outcome,
            note,
            actor: ctx.actor.clone(),
            at: ctx.now_str(),
            source: source.to_string(),
        };
        let line = serde_json::to_string(&record)
            .map_err(|e| CoreError::invalid(e.to_string(), "report this as a bug"))?;
        tx.append_line(&rel_segment("outcomes", self.head.outcomes), &line)?;
        Ok(Some(record))
    }

    /// Stages the new counts, and the heuristics when enough outcomes came
    /// in since they were last derived (returned).
    /// With `learn` false (a rollback, which must not wait on learning),
    /// the heuristics are left for the next outcome or `agent reflect`.
    pub fn finish(
        &mut self,
        store: &Store,
        tx: &mut Transaction<'_>,
        learn_now: bool,
    ) -> Result<Option<Vec<Heuristic>>> {
        if self.added == 0 {
            if self.dirty {
                write_head(tx, &self.head);
            }
            return Ok(None);
        }
        let mut reflected = None;
        if learn_now && self.head.outcomes - self.head.reflected_at >= REFLECT_EVERY {
            let derived = learn(store, &self.memory, false)?;
            write_heuristics(tx, &derived, self.head.outcomes);
            self.head.reflected_at = self.head.outcomes;
            reflected = Some(derived);
        }
        write_head(tx, &self.head);
        Ok(reflected)
    }

    /// Rewrites the memory image once the transaction committed.
    pub fn after_commit(self, store: &Store) {
        if self.added > 0 {
            let stamp = [
                self.head.decisions,
                self.head.outcomes,
                fingerprint(&agent_dir(store), &self.head),
            ];
            write_image(store, &self.memory, stamp, Image { lens: None }, 0);
        }
    }
}

/// The decision an agent-gated promotion record points at.
pub fn decision_of(rec: &releaseops_format::history::Record) -> Option<String> {
    rec.gates
        .iter()
        .find(|g| g.gate == releaseops_format::history::Gate::Agent)
        .and_then(|g| g.reason.split_whitespace().find(|w| w.starts_with("dec-")))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
}

/// Outcomes the history already tells: a promotion the agent decided that
/// is still in place `watch_hours` after it went live survived (success).
/// Rollbacks within the watch window are recorded by the rollback itself.
pub fn settle(ctx: &Ctx, tx: &mut Transaction<'_>, outcomes: &mut Outcomes) -> Result<usize> {
    use releaseops_format::history::EventKind;
    let watch = watch_hours(ctx.store);
    // Agent-decided promotions and rollbacks, newest first.
    let recent = ctx.store.history().newest(500, |r| {
        r.event == EventKind::Rollback
            || (r.event == EventKind::Promote
                && r.gates
                    .iter()
                    .any(|g| g.gate == releaseops_format::history::Gate::Agent))
    })?;
    let mut settled = 0;
    for (i, rec) in recent.iter().enumerate() {
        if rec.event != EventKind::Promote {
            continue;
        }
        let Some(id) = decision_of(rec) else { continue };
        let Ok(at) = releaseops_format::time::parse(&rec.at) else {
            continue;
        };
        let age_h = (ctx.now.as_second() - at.as_second()) as f64 / 3600.0;
        if age_h < watch || outcomes.current(&id) != Some(None) {
            continue;
        }
        // Rolled back (from this version, in this environment) within the
        // watch window? Then the rollback recorded the failure.
        let failed = recent[..i].iter().any(|r| {
            r.event == EventKind::Rollback
                && r.env == rec.env
                && r.bundle_id == rec.bundle_id
                && r.from_version == rec.version
                && releaseops_format::time::parse(&r.at)
                    .is_ok_and(|t| ((t.as_second() - at.as_second()) as f64) < watch * 3600.0)
        });
        if failed {
            continue;
        }
        let note = format!("not rolled back within {watch:.0}h of the promotion");
        if outcomes
            .add(ctx, tx, &id, Outcome::Success, Some(note), "auto:survived")?
            .is_some()
        {
            settled += 1;
        }
    }
    Ok(settled)
}

fn write_heuristics(tx: &mut Transaction<'_>, hs: &[Heuristic], outcomes: u64) {
    let file = HeuristicsFile {
        derived_from_outcomes: outcomes,
        heuristics: hs.to_vec(),
    };
    tx.write(
        format!("{DIR}/heuristics.json"),
        serde_json::to_string_pretty(&file).unwrap_or_default() + "\n",
    );
}

/// The heuristics the outcomes in `memory` support, with the configured
/// model's proposals when there is one (each checked the same way).
/// The model is asked for proposals only when `ask_model` (an explicit
/// `agent reflect`): automatic learning runs under the store lock and must
/// not wait on a remote service.
fn learn(store: &Store, memory: &Memory, ask_model: bool) -> Result<Vec<Heuristic>> {
    let previous = heuristics(store)?;
    let llm = llm_of(store).filter(|_| ask_model);
    Ok(releaseops_agent::llm::learn(
        memory,
        &previous,
        llm.as_ref().map(|l| l as &dyn releaseops_agent::llm::Llm),
    ))
}

/// The model configured in `agent.llm`, if any.
fn llm_of(store: &Store) -> Option<ProviderLlm> {
    store
        .config()
        .agent
        .as_ref()
        .and_then(|a| a.llm.as_ref())
        .and_then(ProviderLlm::from_config)
}

/// Derives the heuristics now, whatever the count, and commits them.
pub fn reflect(ctx: &Ctx) -> Result<Vec<Heuristic>> {
    let mut tx = ctx.store.begin()?;
    let mut head = read_head(ctx.store)?;
    let memory = load_memory(ctx.store, &head)?;
    let derived = learn(ctx.store, &memory, true)?;
    write_heuristics(&mut tx, &derived, head.outcomes);
    head.reflected_at = head.outcomes;
    write_head(&mut tx, &head);
    tx.commit("releaseops: agent reflect", ctx.author().as_ref())?;
    Ok(derived)
}

/// One remembered episode, for `agent memory`.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeView {
    pub id: String,
    pub decision: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// What the agent remembers (the newest `limit` episodes).
pub fn memory_view(store: &Store, limit: usize) -> Result<(Head, Vec<EpisodeView>)> {
    let _guard = store.read_guard()?;
    let head = read_head(store)?;
    let memory = load_memory(store, &head)?;
    let episodes = memory
        .rows
        .iter()
        .rev()
        .take(limit)
        .map(|row| EpisodeView {
            id: memory.id(row).to_string(),
            decision: row.decision,
            outcome: row.outcome,
            attributes: memory.attributes(row).into_iter().collect(),
        })
        .collect();
    Ok((head, episodes))
}

impl DecisionRecord {
    /// The JSON of `agent decide --json` and of the API's decision endpoint.
    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::json!({
            "decision_id": self.decision_id,
            "decision": self.decision,
            "risk_score": self.plan.risk_score,
            "factors": self.plan.factors,
            "heuristics_applied": self.heuristics_applied,
            "similar_episodes": self.similar_episodes,
            "red_team": self.red_team,
            "reflection": self.reflection,
            "reasons": self.reasons,
            "delay_until": self.plan.delay_until,
            "context": self.context,
        })
    }
}

/// One stored decision record.
pub fn decision(store: &Store, id: &str) -> Result<DecisionRecord> {
    let _guard = store.read_guard()?;
    let head = read_head(store)?;
    let n: u64 = id
        .strip_prefix("dec-")
        .filter(|n| n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .filter(|&n| n >= 1 && n <= head.decisions)
        .ok_or_else(|| {
            CoreError::invalid(
                format!("there is no decision '{id}'"),
                "decision ids look like dec-000123; `releaseops agent memory` lists them",
            )
        })?;
    let path = store.dir().join(rel_segment("decisions", n));
    let text = fs::read_to_string(&path).map_err(|e| corrupt(&path, None, &e.to_string()))?;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let rec: DecisionRecord =
            serde_json::from_str(line).map_err(|e| corrupt(&path, Some(i + 1), &e.to_string()))?;
        if rec.decision_id == id {
            return Ok(rec);
        }
    }
    Err(corrupt(
        &path,
        None,
        &format!("{id} is counted but not there"),
    ))
}

/// Builds the agent's context for promoting `id@version` into `env` from
/// the store: what changed against the live version, the evaluation
/// evidence, criticality, the team's time, clashes and the track record.
/// Call it with the store lock held (or under a read guard).
pub fn promotion_context(store: &Store, facts: &crate::facts::PromotionFacts) -> Result<Context> {
    let (id, version, env, now) = (
        facts.id.as_str(),
        facts.version.as_str(),
        facts.env.as_str(),
        facts.now,
    );
    let config = &facts.config;
    let agent_cfg = config.agent.clone().unwrap_or_default();
    let policy = facts.policy();
    let view = &facts.view;
    let state = view.state();
    let change = match facts.live.as_deref() {
        None => releaseops_agent::risk::first_release(id, env),
        Some(live) if live == version => releaseops_agent::risk::ChangeRisk::default(),
        Some(live) => {
            let d = crate::bundle::diff(store, (id, live), (id, version))?;
            releaseops_agent::risk::classify(&d.summary())
        }
    };
    let approved_here = facts.reviews.approvals.iter().any(|a| a.env == env);
    let evals = if facts.reports.is_empty() && !policy.is_some_and(|p| p.requires_eval) {
        None
    } else {
        let e = &facts.evals;
        let required: Vec<String> = policy.map(|p| p.eval_suites.clone()).unwrap_or_default();
        let counted = |s: &str| e.suite(s).is_some() || e.stale_suites.iter().any(|x| x == s);
        let missing_suites =
            if required.is_empty() && e.suites.is_empty() && e.stale_suites.is_empty() {
                vec!["(any suite)".to_string()]
            } else {
                required.iter().filter(|s| !counted(s)).cloned().collect()
            };
        let regressions = facts
            .regressions
            .iter()
            .filter_map(|(_, _, c)| c.as_ref())
            .filter(|c| c.significant && !c.regressed.is_empty())
            .flat_map(|c| c.regressed.iter().cloned())
            .collect();
        use releaseops_stats::Verdict;
        let with = |want: fn(Option<Verdict>) -> bool| -> Vec<String> {
            e.suites
                .iter()
                .filter(|s| want(s.verdict))
                .map(|s| s.suite().to_string())
                .collect()
        };
        Some(releaseops_agent::context::EvalEvidence {
            // A report without a verdict counts as failed, as at the gate.
            failed: with(|v| matches!(v, Some(Verdict::Fail) | None)),
            missing_suites,
            pass_rate: e
                .suites
                .iter()
                .filter_map(|s| s.report.pass_rate)
                .reduce(f64::min),
            inconclusive: with(|v| v == Some(Verdict::Inconclusive)),
            regressions,
            stale: e.stale_suites.clone(),
        })
    };
    let criticality = policy
        .and_then(|p| p.service_criticality.clone())
        .or_else(|| agent_cfg.criticality.get(id).cloned())
        .and_then(|c| Level::parse(&c))
        .unwrap_or(Level::Medium);
    let tz = agent_cfg.time_zone()?;
    let local = now.to_zoned(tz.clone());
    let day = releaseops_agent::Day::from_index(local.weekday().to_monday_zero_offset() as usize);
    let holiday = agent_cfg
        .holidays
        .iter()
        .any(|d| d.parse::<jiff::civil::Date>().ok() == Some(local.date()));
    // Hours until a freeze window of this environment starts (0: frozen now).
    let hours_to_freeze = policy
        .filter(|p| !p.freeze_windows.is_empty())
        .and_then(|p| {
            (0..=7 * 24).find_map(|h| {
                let mut at = facts.gates();
                at.now = now.checked_add(jiff::SignedDuration::from_hours(h)).ok()?;
                (crate::gates::freeze(&at, p).status
                    != releaseops_format::history::GateStatus::Passed)
                    .then_some(h as f64)
            })
        });
    // Other bundles promoted into this environment within the clash window,
    // bundles this one declares it depends on moving anywhere in it, and
    // other bundles mid-rollout toward this environment: promoted into an
    // earlier stage within the watch window, with that version not live here
    // yet (they are due here soon, so their changes would overlap ours).
    let window = agent_cfg.clash_window_hours() * 3600.0;
    let watch = agent_cfg.watch_hours() * 3600.0;
    let depends = agent_cfg.depends_on.get(id).cloned().unwrap_or_default();
    let here = config.position(env);
    let upstream = |e: &str| matches!((config.position(e), here), (Some(p), Some(h)) if p < h);
    let recent = store.history().newest(200, |r| {
        r.env.as_deref() == Some(env)
            || r.bundle_id.as_deref() == Some(id)
            || r.bundle_id.as_ref().is_some_and(|b| depends.contains(b))
            || r.env.as_deref().is_some_and(upstream)
    })?;
    let live_here: std::collections::BTreeMap<&str, &str> = state
        .live_in(env)
        .into_iter()
        .map(|(b, d)| (b, d.version.as_str()))
        .collect();
    let age = |r: &releaseops_format::history::Record| -> Option<f64> {
        let t = releaseops_format::time::parse(&r.at).ok()?;
        Some((now.as_second() - t.as_second()) as f64)
    };
    use releaseops_format::history::EventKind;
    let conflicting = recent.iter().find(|r| {
        let Some(other) = r.bundle_id.as_deref().filter(|b| *b != id) else {
            return false;
        };
        let moving = matches!(r.event, EventKind::Promote | EventKind::Rollback);
        let clash = (r.env.as_deref() == Some(env) || depends.iter().any(|d| d == other))
            && age(r).is_some_and(|a| (0.0..=window).contains(&a));
        let mid_rollout = r.event == EventKind::Promote
            && r.env.as_deref().is_some_and(upstream)
            && r.version
                .as_deref()
                .is_some_and(|v| live_here.get(other).copied() != Some(v))
            && age(r).is_some_and(|a| (0.0..=watch).contains(&a));
        moving && (clash || mid_rollout)
    });
    let recent_rollbacks = recent
        .iter()
        .filter(|r| {
            r.event == EventKind::Rollback
                && r.bundle_id.as_deref() == Some(id)
                && age(r).is_some_and(|a| a <= 30.0 * 86_400.0)
        })
        .count() as u32;
    Ok(Context {
        env: env.to_string(),
        feature_risk: change.level,
        service_criticality: criticality,
        day_of_week: day,
        hour_of_day: local.hour() as u8,
        clash: conflicting.is_some(),
        conflicting_service: conflicting.and_then(|r| r.bundle_id.clone()),
        production: releaseops_agent::context::is_production_name(env)
            || config.pipeline.last().is_some_and(|l| l == env),
        risk_factors: change.factors,
        unapproved_safety_change: change.safety_policy_changed && !approved_here,
        holiday,
        evals,
        hours_to_freeze,
        recent_rollbacks,
        extra: Default::default(),
    })
}

/// `agent.watch_hours` (24 when unset).
fn watch_hours(store: &Store) -> f64 {
    store.config().agent.as_ref().map_or_else(
        || releaseops_format::config::AgentConfig::default().watch_hours(),
        |a| a.watch_hours(),
    )
}

/// Records the outcomes the history already tells ([`settle`]) in their own
/// commit; returns how many.
pub fn settle_now(ctx: &Ctx) -> Result<usize> {
    use releaseops_format::history::EventKind;
    let head = read_head(ctx.store)?;
    if head.decisions == 0 {
        return Ok(0);
    }
    let watch = watch_hours(ctx.store);
    // Only agent-decided promotions past the watch window and past the
    // cursor need looking at; usually there are none, and then the memory
    // is not even loaded.
    let due = ctx.store.history().newest(500, |r| {
        r.event == EventKind::Promote
            && r.seq > head.settled_through
            && r.gates
                .iter()
                .any(|g| g.gate == releaseops_format::history::Gate::Agent)
            && releaseops_format::time::parse(&r.at)
                .is_ok_and(|t| ((ctx.now.as_second() - t.as_second()) as f64) >= watch * 3600.0)
    })?;
    let Some(through) = due.iter().map(|r| r.seq).max() else {
        return Ok(0);
    };
    let mut tx = ctx.store.begin()?;
    let mut outcomes = Outcomes::open(ctx.store)?;
    let n = settle(ctx, &mut tx, &mut outcomes)?;
    if through > outcomes.head.settled_through {
        outcomes.head.settled_through = through;
        outcomes.dirty = true;
    }
    outcomes.finish(ctx.store, &mut tx, true)?;
    let msg = if n > 0 {
        format!("releaseops: agent outcomes: {n} release(s) survived the watch window")
    } else {
        format!("releaseops: agent outcomes settled through history record {through}")
    };
    tx.commit(&msg, ctx.author().as_ref())?;
    outcomes.after_commit(ctx.store);
    Ok(n)
}

/// The language model configured in `agent.llm`, through the evaluation
/// engine's provider clients. A configuration that cannot work (no key)
/// still answers, with an error, so decisions fail closed instead of
/// silently losing the model.
pub struct ProviderLlm {
    provider: releaseops_eval::providers::Provider,
    model: String,
    base_url: String,
    key: Result<Option<String>, String>,
    timeout: std::time::Duration,
    /// All the calls for one decision share this: the store lock is held
    /// while the agent decides, and other writers wait at most a minute.
    deadline: std::time::Instant,
    runtime: Option<tokio::runtime::Runtime>,
}

/// The most a decision may spend waiting on the model, all calls together.
const LLM_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

impl ProviderLlm {
    pub fn from_config(cfg: &releaseops_format::config::AgentLlm) -> Option<ProviderLlm> {
        use releaseops_eval::providers::Provider;
        let provider = Provider::parse(&cfg.provider)?;
        let (var, required) = provider.key_var();
        let key = match std::env::var(var) {
            Ok(k) if !k.trim().is_empty() => Ok(Some(k)),
            _ if required => Err(format!(
                "agent.llm uses {} but {var} is not set",
                provider.name()
            )),
            _ => Ok(None),
        };
        let base_url = cfg
            .base_url
            .clone()
            .or_else(|| std::env::var(provider.base_url_var()).ok())
            .unwrap_or_else(|| provider.default_base_url().to_string());
        Some(ProviderLlm {
            provider,
            model: cfg.model.clone(),
            base_url,
            key,
            timeout: std::time::Duration::from_millis(cfg.timeout_ms.unwrap_or(10_000))
                .min(LLM_BUDGET),
            deadline: std::time::Instant::now() + LLM_BUDGET,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok(),
        })
    }
}

impl releaseops_agent::llm::Llm for ProviderLlm {
    fn name(&self) -> String {
        format!("{} {}", self.provider.name(), self.model)
    }

    fn ask(&self, prompt: &releaseops_agent::llm::Prompt) -> Result<String, String> {
        use releaseops_eval::providers::{Chat, RetryPolicy, chat, http_client};
        let key = self.key.clone()?;
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now())
            .min(self.timeout);
        if left.is_zero() {
            return Err(format!(
                "the {} s allowed for the model per decision are spent",
                LLM_BUDGET.as_secs()
            ));
        }
        let runtime = self
            .runtime
            .as_ref()
            .ok_or("cannot start the async runtime for the model call")?;
        let c = Chat {
            model: self.model.clone(),
            system: prompt.system.clone(),
            user: prompt.user.clone(),
            temperature: Some(0.0),
            max_tokens: 800,
            parameters: Default::default(),
        };
        let policy = RetryPolicy {
            max_retries: 2,
            base: std::time::Duration::from_millis(200),
            cap: std::time::Duration::from_secs(5),
        };
        runtime.block_on(async {
            let client = http_client()?;
            match tokio::time::timeout(
                left,
                chat(
                    &client,
                    self.provider,
                    &self.base_url,
                    key.as_deref(),
                    &c,
                    policy,
                ),
            )
            .await
            {
                Ok(answer) => answer.map(|a| a.output),
                Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
            }
        })
    }
}
