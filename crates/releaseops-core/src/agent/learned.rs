//! The incident model, kept with the memory image: `agent/.cache/model.bin`
//! (ignored by git) holds the model fitted to every outcome in the records,
//! stamped like the image and checksummed, so a decision reads it in about
//! a millisecond. Like the image it is a local cache, trusted as far as the
//! working tree it sits in; every decision records the numbers it used.
//! The records stay the truth: a missing or stale cache is refitted from
//! the memory. A new outcome is learned at once (one step), with a refit over
//! all outcomes every [`releaseops_agent::model::refit_every`] of them; a
//! changed outcome (a correction) refits.

use releaseops_agent::cost::Costs;
use releaseops_agent::model::{self, Batch, IncidentModel, Priors};

use super::*;

const MAGIC: &[u8; 8] = b"ROMC\x00\x00\x00\x02";

/// FNV-1a over the model's bytes: a torn write or a flipped bit is a miss,
/// not a model (not a defence against someone who can write the file).
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h: u64, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn model_path(store: &Store) -> PathBuf {
    agent_dir(store).join(".cache").join("model.bin")
}

/// The cached model, when it was fitted to the records `stamp` describes;
/// with the outcomes learned since its last refit.
pub(super) fn read_model(store: &Store, stamp: [u64; 3]) -> Option<(IncidentModel, u64)> {
    let bytes = read_plain(&model_path(store))?;
    let rest = bytes.strip_prefix(MAGIC)?;
    let word = |i: usize| -> Option<u64> {
        let b = rest.get(i * 8..i * 8 + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    if [word(0)?, word(1)?, word(2)?] != stamp {
        return None;
    }
    let since = word(3)?;
    let body = rest.get(40..)?;
    if word(4)? != checksum(body) {
        return None;
    }
    Some((IncidentModel::decode(body)?, since))
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
    let body = model.encode();
    let mut out = Vec::with_capacity(48 + body.len());
    out.extend_from_slice(MAGIC);
    for w in stamp.into_iter().chain([since, checksum(&body)]) {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&body);
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
    if !is_plain_file(&path) || read_stamp(&path) != Some(old) {
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
    current_model(store, &head, stamp(store, &head), Some(memory))
}

/// The model as the records stamped `stamp` stand, for a look at `memory`
/// (which may hold outcomes not yet committed): the cache when current, else
/// a refit of `memory`, never written (the cache must match the records it
/// is stamped with).
pub(super) fn model_as_of(store: &Store, stamp: [u64; 3], memory: &Memory) -> IncidentModel {
    read_model(store, stamp).map_or_else(|| refit_memory(memory), |(m, _)| m)
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
    costs_of(
        store
            .config()
            .agent
            .as_ref()
            .map(|a| a.costs())
            .unwrap_or_default(),
    )
}

/// The agent's prices from the config's `agent.costs`.
pub fn costs_of(c: releaseops_format::config::AgentCosts) -> Costs {
    Costs {
        incident: c.incident,
        delay: c.delay,
        drop: c.drop,
    }
}

#[cfg(test)]
mod tests {
    use releaseops_agent::{Action, Context, Outcome};

    use super::*;

    /// 400 decided releases with outcomes (Friday nights fail), then more
    /// outcomes through the store: learned one step each into the cache,
    /// with the refits in between, and close to a refit of the records.
    #[test]
    fn outcomes_are_learned_into_the_cache_step_by_step() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _) = Store::init(dir.path()).expect("store");
        let ctx = Ctx {
            store: &store,
            actor: "Test <test@example.test>".into(),
            now: jiff::Timestamp::from_second(1_800_000_000).expect("time"),
            git_commit: false,
            simulated_clock: true,
            runtime: None,
        };
        let context = |i: u64| {
            let friday = i.is_multiple_of(3);
            Context::from_json(&serde_json::json!({
                "env": "prod", "feature_risk": "LOW", "service_criticality": "LOW",
                "day_of_week": if friday { "FRI" } else { "TUE" },
                "hour_of_day": if friday { 22 } else { 11 },
                "evals": {"pass_rate": 0.99}}))
            .expect("context")
        };
        let (mut records, mut outcomes) = (Vec::new(), Vec::new());
        for i in 0..400u64 {
            let id = format!("dec-{:06}", i + 1);
            let rec = assess_with(
                Knowledge {
                    similar: Vec::new(),
                    heuristics: &[],
                    model: None,
                    llm: None,
                },
                DecideRequest {
                    context: context(i),
                    bundle: None,
                    gate: None,
                    red_team_blocks: false,
                },
                id.clone(),
                ctx.now_str(),
                ctx.actor.clone(),
            );
            assert_eq!(rec.decision, Action::Go);
            outcomes.push(OutcomeRecord {
                decision_id: id,
                outcome: if i.is_multiple_of(6) {
                    Outcome::Incident
                } else {
                    Outcome::Success
                },
                note: None,
                actor: ctx.actor.clone(),
                at: ctx.now_str(),
                source: "manual".into(),
            });
            records.push(rec);
        }
        bulk_load(&store, &records, &outcomes).expect("bulk load");
        let stamp = |store: &Store| stamp(store, &read_head(store).expect("head"));
        // The first decision fits the cache from the records.
        let d = decide(
            &ctx,
            DecideRequest {
                context: context(1),
                bundle: None,
                gate: None,
                red_team_blocks: false,
            },
        )
        .expect("decide");
        assert_eq!(d.plan.model.as_ref().expect("model").outcomes_learned, 400);
        let (_, since) = read_model(&store, stamp(&store)).expect("cached, restamped");
        assert_eq!(since, 0);
        // Outcomes recorded one by one are learned step by step (a refit
        // every 4 at this size).
        record_outcome(&ctx, &d.decision_id, Outcome::Success, None, "manual").expect("outcome");
        let (m, since) = read_model(&store, stamp(&store)).expect("learned into the cache");
        assert_eq!((m.outcomes, since), (401, 1));
        let memory = load_memory(&store, &read_head(&store).expect("head")).expect("memory");
        let refit = refit_memory(&memory);
        for i in [0, 1] {
            let a = context(i).attributes();
            let (stepped, whole) = (m.assess(&a).p, refit.assess(&a).p);
            assert!((stepped - whole).abs() < 0.01, "{stepped} vs {whole}");
        }
        // Friday nights fail here: the model knows it.
        assert!(m.assess(&context(0).attributes()).p > 3.0 * m.assess(&context(1).attributes()).p);
    }
}
