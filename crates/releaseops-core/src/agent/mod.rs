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
//!
//! Here: the records' types, deciding and staging a decision; [`records`]
//! (segments on disk), [`image`] (the memory image cache), [`gate`] (the
//! decision as a promotion gate), [`outcomes`] (outcomes, settling, learning),
//! [`context`] (a promotion's context) and [`llm`] (the model client).

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

mod context;
mod gate;
mod image;
mod learned;
mod llm;
mod outcomes;
mod records;

pub use context::*;
pub use gate::*;
pub use image::*;
pub use learned::{costs, costs_of, model_for, refit_memory};
pub use llm::*;
pub use outcomes::*;
pub use records::*;

const DIR: &str = "agent";

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
    pub gate: Option<releaseops_format::environment::AgentMode>,
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
#[derive(Clone)]
pub struct DecideRequest {
    pub context: Context,
    pub bundle: Option<BundleRef>,
    pub gate: Option<releaseops_format::environment::AgentMode>,
    /// A HIGH red-team risk level turns a GO into a DELAY.
    pub red_team_blocks: bool,
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
    let mut hs = file.heuristics;
    for h in &mut hs {
        heuristics::valid(h).map_err(|e| corrupt(&path, None, &e))?;
        // Where it stands follows from the rest (a file written before
        // heuristics said it, or a hand-edited status, is corrected here).
        h.settle_status();
    }
    Ok(hs)
}

#[derive(Serialize, Deserialize)]
struct HeuristicsFile {
    derived_from_outcomes: u64,
    heuristics: Vec<Heuristic>,
}

/// Decides, records the decision, and commits it.
pub fn decide(ctx: &Ctx, req: DecideRequest) -> Result<DecisionRecord> {
    crate::sync::retrying(ctx.store, || decide_once(ctx, req.clone()))
}

fn decide_once(ctx: &Ctx, req: DecideRequest) -> Result<DecisionRecord> {
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
    let model = learned::current_model(
        ctx.store,
        &head,
        stamp,
        match &source {
            Recall::Memory(m, _) => Some(m),
            Recall::Image(_) => None,
        },
    )?;
    let costs = learned::costs(ctx.store);
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
    let llm = llm_of(ctx);
    let record = assess_with(
        Knowledge {
            similar,
            heuristics: &learned,
            model: Some(releaseops_agent::decide::Learned {
                model: &model,
                costs: &costs,
            }),
            llm: llm.as_ref().map(|l| l as &dyn releaseops_agent::llm::Llm),
        },
        req,
        format!("dec-{:06}", head.decisions),
        ctx.now_str(),
        ctx.actor.clone(),
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
        // A decision is not an outcome: the model still holds.
        learned::restamp_model(store, [head.decisions - 1, head.outcomes, fp], stamp);
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

/// What a decision is made with: the similar past episodes, the heuristics,
/// the incident model and its costs (none: the fixed rules decide), and the
/// language model, when one is configured.
pub struct Knowledge<'a> {
    pub similar: Vec<SimilarEpisode>,
    pub heuristics: &'a [Heuristic],
    pub model: Option<releaseops_agent::decide::Learned<'a>>,
    pub llm: Option<&'a dyn releaseops_agent::llm::Llm>,
}

/// The whole assessment of one release, without storing it: recall, plan
/// (by expected cost with the incident model when one is given, by the
/// fixed rules otherwise), red team, second look, and the language model
/// when one is given.
pub fn assess_with(
    knowledge: Knowledge<'_>,
    req: DecideRequest,
    decision_id: String,
    at: String,
    actor: String,
) -> DecisionRecord {
    let Knowledge {
        similar: similar_episodes,
        heuristics: learned,
        model,
        llm,
    } = knowledge;
    let context = req.context;
    let recalled: Vec<(f64, Option<Outcome>)> = similar_episodes
        .iter()
        .map(|e| (e.similarity, e.outcome))
        .collect();
    let mut plan = releaseops_agent::decide::plan(&context, learned, &recalled, model);
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

/// What `agent model` reports: the incident model fitted to every outcome
/// so far, how well its predictions matched (each made before its outcome
/// was learned), and how well the fixed rules' prior alone did.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub method: &'static str,
    pub outcomes: u64,
    pub weights_learned: usize,
    pub priors: releaseops_agent::model::Priors,
    pub calibration: releaseops_agent::model::Calibration,
    pub rules_calibration: releaseops_agent::model::Calibration,
}

pub fn model_report(store: &Store) -> Result<ModelReport> {
    let _guard = store.read_guard()?;
    let head = read_head(store)?;
    let memory = load_memory(store, &head)?;
    use releaseops_agent::model;
    let fit = model::fit_memory(model::Priors::default(), &memory);
    Ok(ModelReport {
        method: "Bayesian probit regression over attribute=value features and their pairs, the fixed rules' risk score as the prior: each outcome learned at once (assumed-density filtering), and refitted over all outcomes (most probable weights, Laplace variances) as they grow; calibration is of predicting each outcome before learning it",
        outcomes: fit.model.outcomes,
        weights_learned: fit.model.learned_weights(),
        priors: fit.model.priors,
        calibration: fit.calibration,
        rules_calibration: fit.prior_calibration,
    })
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
            "incident_model": self.plan.model,
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
