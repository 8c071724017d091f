//! The records on disk: decisions and outcomes as JSON lines in numbered
//! segments under `.releaseops/agent/`, counted by `agent/HEAD`.

use super::*;

/// Records per segment file: decision records are large, so their files are
/// kept small (committing one means hashing it).
pub(super) fn per_segment(kind: &str) -> u64 {
    if kind == "decisions" { 100 } else { 1000 }
}

pub(super) fn rel_segment(kind: &str, n: u64) -> String {
    format!("{DIR}/{kind}/{:06}.jsonl", (n - 1) / per_segment(kind))
}

pub(super) fn agent_dir(store: &Store) -> PathBuf {
    store.dir().join(DIR)
}

/// What `agent/` holds (all zero before the first decision).
pub fn head(store: &Store) -> Result<Head> {
    read_head(store)
}

/// More decisions or outcomes than this is a damaged HEAD, not a memory.
pub(super) const MAX_RECORDS: u64 = 1_000_000_000;

pub(super) fn read_head(store: &Store) -> Result<Head> {
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

pub(super) fn corrupt(path: &Path, line: Option<usize>, msg: &str) -> CoreError {
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
pub(super) fn segments(agent: &Path, kind: &str, count: u64) -> Vec<(PathBuf, u64)> {
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
pub(super) fn fingerprint(agent: &Path, head: &Head) -> u64 {
    segments(agent, "decisions", head.decisions)
        .into_iter()
        .chain(segments(agent, "outcomes", head.outcomes))
        .fold(0, |fp, (path, _)| fp ^ file_term(&path))
}

/// A regular file, not a link. The caches in `agent/.cache/` are only ever
/// written by rename, so a link there was put by someone else: it is
/// neither read nor written through (a rebuild replaces it).
pub(super) fn is_plain_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// A cache file's bytes, when it is a regular file.
pub(super) fn read_plain(path: &Path) -> Option<Vec<u8>> {
    if is_plain_file(path) {
        fs::read(path).ok()
    } else {
        None
    }
}

/// What the memory image and the model cache are stamped with: the counts
/// and the record files' [`fingerprint`].
pub(super) fn stamp(store: &Store, head: &Head) -> [u64; 3] {
    [
        head.decisions,
        head.outcomes,
        fingerprint(&agent_dir(store), head),
    ]
}

pub(super) fn file_term(path: &Path) -> u64 {
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
pub(super) fn read_lines<T: for<'de> Deserialize<'de>>(
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
pub(super) struct EpisodeLine {
    pub(super) decision_id: String,
    pub(super) decision: Action,
    pub(super) context: Context,
}

#[derive(Deserialize)]
pub(super) struct OutcomeLine {
    pub(super) decision_id: String,
    pub(super) outcome: Outcome,
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

pub(super) fn write_head(tx: &mut Transaction<'_>, head: &Head) {
    tx.write(
        format!("{DIR}/HEAD"),
        serde_json::to_string(head).unwrap_or_default(),
    );
}
