//! The incident model, kept with the memory image: `agent/.cache/model.bin`
//! (ignored by git) holds the model fitted to every outcome in the records,
//! stamped like the image, so a decision reads it in about a millisecond.
//! The records stay the truth: a missing or stale cache is refitted from
//! the memory. A new outcome is learned at once (one step), with a refit over
//! all outcomes every [`releaseops_agent::model::refit_every`] of them; a
//! changed outcome (a correction) refits.

use releaseops_agent::cost::Costs;
use releaseops_agent::model::{self, Batch, IncidentModel, Priors};

use super::*;

const MAGIC: &[u8; 8] = b"ROMC\x00\x00\x00\x01";

fn model_path(store: &Store) -> PathBuf {
    agent_dir(store).join(".cache").join("model.bin")
}

/// The cached model, when it was fitted to the records `stamp` describes;
/// with the outcomes learned since its last refit.
pub(super) fn read_model(store: &Store, stamp: [u64; 3]) -> Option<(IncidentModel, u64)> {
    let bytes = fs::read(model_path(store)).ok()?;
    let rest = bytes.strip_prefix(MAGIC)?;
    let word = |i: usize| -> Option<u64> {
        let b = rest.get(i * 8..i * 8 + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    if [word(0)?, word(1)?, word(2)?] != stamp {
        return None;
    }
    let since = word(3)?;
    Some((IncidentModel::decode(rest.get(32..)?)?, since))
}

/// Best effort: a cache that cannot be written is refitted next time.
pub(super) fn write_model(store: &Store, stamp: [u64; 3], model: &IncidentModel, since: u64) {
    let path = model_path(store);
    let Some(dir) = path.parent() else { return };
    if fs::create_dir_all(dir).is_err() {
        return;
    }
    if !dir.join(".gitignore").exists() {
        let _ = fs::write(dir.join(".gitignore"), "*\n");
    }
    let mut out = Vec::with_capacity(40 + model.learned_weights() * 24);
    out.extend_from_slice(MAGIC);
    for w in stamp.into_iter().chain([since]) {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&model.encode());
    let tmp = dir.join(format!(".model.{}.tmp", std::process::id()));
    if fs::write(&tmp, &out).is_err() || fs::rename(&tmp, &path).is_err() {
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(&path);
    }
}

/// A decision changed the records but not the outcomes: the cached model
/// still holds, under the new stamp.
pub(super) fn restamp_model(store: &Store, old: [u64; 3], new: [u64; 3]) {
    use std::io::{Seek, SeekFrom, Write};
    let path = model_path(store);
    if read_stamp(&path) != Some(old) {
        return;
    }
    let mut bytes = Vec::with_capacity(24);
    for w in new {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    let done = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(MAGIC.len() as u64))?;
            f.write_all(&bytes)
        });
    if done.is_err() {
        let _ = fs::remove_file(&path);
    }
}

fn read_stamp(path: &Path) -> Option<[u64; 3]> {
    use std::io::Read;
    let mut head = [0u8; 32];
    fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..8] != MAGIC {
        return None;
    }
    let w = |i: usize| u64::from_le_bytes(head[8 + i * 8..16 + i * 8].try_into().unwrap_or([0; 8]));
    Some([w(0), w(1), w(2)])
}

/// The model fitted to every outcome in `memory` at once.
pub fn refit_memory(memory: &Memory) -> IncidentModel {
    let mut batch = Batch::default();
    model::each_outcome(memory, |features, prior, incident| {
        batch.add(features, prior, incident)
    });
    IncidentModel::refit(Priors::default(), &batch)
}

/// The model for a decision on the records `stamp` describes: the cache, or
/// a refit of `memory` (loaded when not given), written back.
pub(super) fn current_model(
    store: &Store,
    head: &Head,
    stamp: [u64; 3],
    memory: Option<&Memory>,
) -> Result<IncidentModel> {
    if let Some((m, _)) = read_model(store, stamp) {
        return Ok(m);
    }
    let loaded;
    let memory = match memory {
        Some(m) => m,
        None => {
            loaded = load_memory(store, head)?;
            &loaded
        }
    };
    let m = refit_memory(memory);
    write_model(store, stamp, &m, 0);
    Ok(m)
}

/// The model for the records as they stand (the cache, or a refit of
/// `memory`, which must be their memory).
pub fn model_for(store: &Store, memory: &Memory) -> Result<IncidentModel> {
    let head = read_head(store)?;
    let stamp = [
        head.decisions,
        head.outcomes,
        fingerprint(&agent_dir(store), &head),
    ];
    current_model(store, &head, stamp, Some(memory))
}

/// The model as the records on disk stand, for a look at `memory` (which may
/// hold outcomes not yet committed): the cache when current, else a refit of
/// `memory`, never written (the cache must match the records it is stamped
/// with).
pub(super) fn model_as_of(store: &Store, memory: &Memory) -> Result<IncidentModel> {
    let head = read_head(store)?;
    let stamp = [
        head.decisions,
        head.outcomes,
        fingerprint(&agent_dir(store), &head),
    ];
    Ok(read_model(store, stamp).map_or_else(|| refit_memory(memory), |(m, _)| m))
}

/// After outcomes were committed: learns the new ones into the cached model
/// (one step each, refitting when one is due), or refits when the cache did
/// not match the records before (or an outcome was changed, not added).
pub(super) fn learn_outcomes(
    store: &Store,
    before: [u64; 3],
    after: [u64; 3],
    memory: &Memory,
    added: &[(String, bool)],
    changed: bool,
) {
    let cached = if changed {
        None
    } else {
        read_model(store, before)
    };
    let Some((mut m, mut since)) = cached else {
        write_model(store, after, &refit_memory(memory), 0);
        return;
    };
    for (id, incident) in added {
        let Some(row) = memory.get(id) else { continue };
        m.learn_attributes(&memory.attributes(row), *incident);
        since += 1;
    }
    if since >= model::refit_every(m.outcomes) {
        m = refit_memory(memory);
        since = 0;
    }
    write_model(store, after, &m, since);
}

/// `agent.costs` from the project's config (the defaults when unset).
pub fn costs(store: &Store) -> Costs {
    let c = store
        .config()
        .agent
        .as_ref()
        .map(|a| a.costs())
        .unwrap_or_default();
    Costs {
        incident: c.incident,
        delay: c.delay,
        drop: c.drop,
    }
}
