//! Outcomes: recording what happened after a decision, settling the
//! decisions whose watch window passed quietly, and deriving the heuristics
//! again.

use super::*;

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
    crate::sync::retrying(ctx.store, || {
        record_outcome_once(ctx, decision_id, outcome, note.clone(), source)
    })
}

fn record_outcome_once(
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
    /// The records' stamp when opened (the model cache is checked against it).
    before: [u64; 3],
    /// Outcomes added (decision, incident), and whether one replaced an
    /// earlier outcome.
    learned: Vec<(String, bool)>,
    changed: bool,
    added: u64,
    /// The head changed without outcomes (the settle cursor moved).
    dirty: bool,
    /// Decisions due that could not be settled now (their traffic could
    /// not be read): the settle cursor stays, so a later settle tries again.
    deferred: u64,
}

impl Outcomes {
    pub fn open(store: &Store) -> Result<Outcomes> {
        let head = read_head(store)?;
        let before = stamp(store, &head);
        let (memory, _) = load_memory_image(store, &head, before[2])?;
        Ok(Outcomes {
            before,
            head,
            memory,
            learned: Vec::new(),
            changed: false,
            added: 0,
            dirty: false,
            deferred: 0,
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
        let Some(earlier) = self.memory.get(decision_id).map(|r| r.outcome) else {
            return Ok(None);
        };
        if !self.memory.set_outcome(decision_id, outcome) {
            return Ok(None);
        }
        self.changed |= earlier.is_some();
        self.learned
            .push((decision_id.to_string(), outcome.failed()));
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
            let derived = learn(store, self.before, &self.memory, None)?;
            write_heuristics(tx, &derived, self.head.outcomes);
            self.head.reflected_at = self.head.outcomes;
            reflected = Some(derived);
        }
        write_head(tx, &self.head);
        Ok(reflected)
    }

    /// Rewrites the memory image and teaches the incident model the new
    /// outcomes once the transaction committed.
    pub fn after_commit(self, store: &Store) {
        if self.added > 0 {
            let after = stamp(store, &self.head);
            write_image(store, &self.memory, after, Image { lens: None }, 0);
            learned::learn_outcomes(
                store,
                self.before,
                after,
                &self.memory,
                &self.learned,
                self.changed,
            );
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
        // What production traffic says, when there is enough of it: a
        // significant regression against the version it replaced is an
        // incident, rollback or not; a healthy window is a success.
        let (outcome, note, source) = match production_verdict(ctx.store, rec, at, watch) {
            Production::Healthy(n) => (Outcome::Success, n, "auto:production"),
            Production::Regressed(n) => (Outcome::Incident, n, "auto:production"),
            // The traffic could not be read (PostgreSQL down): not settled
            // now, so a later settle reads it, rather than a success made up.
            Production::Unreadable => {
                outcomes.deferred += 1;
                continue;
            }
            Production::TooLittle => (
                Outcome::Success,
                format!("not rolled back within {watch:.0}h of the promotion"),
                "auto:survived",
            ),
        };
        if outcomes
            .add(ctx, tx, &id, outcome, Some(note), source)?
            .is_some()
        {
            settled += 1;
        }
    }
    Ok(settled)
}

/// The metrics production traffic settles an outcome on: failures and
/// slowness. (A changed mix of tools is a change, not an incident.)
const HEALTH: [&str; 3] = ["error_rate", "latency", "latency_p95"];

/// How much worse a metric may get before it is an incident, unless the
/// environment's `requires_analysis.max_increase` says otherwise: a point
/// of error rate, a tenth more latency. (A significant but tiny shift over
/// a large sample is no incident.)
fn tolerance(metric: &str, policy: Option<&releaseops_format::environment::AnalysisPolicy>) -> f64 {
    if let Some(t) = policy.and_then(|p| p.max_increase.get(metric)) {
        return *t;
    }
    if metric == "error_rate" { 0.01 } else { 0.10 }
}

/// What production traffic says about a promotion.
enum Production {
    Healthy(String),
    Regressed(String),
    /// Too few traces on either side.
    TooLittle,
    /// The trace store could not be read.
    Unreadable,
}

/// The promoted version's traffic in its environment over the watch window
/// after it went live, against the version it replaced over the window
/// before.
fn production_verdict(
    store: &Store,
    rec: &releaseops_format::history::Record,
    at: jiff::Timestamp,
    watch: f64,
) -> Production {
    use releaseops_traces::analytics::{
        CompareOptions, Direction, Verdict, compare_stored, describe_change,
    };
    let (Some(id), Some(version), Some(env), Some(before)) = (
        rec.bundle_id.as_deref(),
        rec.version.as_deref(),
        rec.env.as_deref(),
        rec.from_version.as_deref(),
    ) else {
        return Production::TooLittle;
    };
    let at_ns = at.as_nanosecond() as i64;
    let span = (watch * 3600e9) as i64;
    let filter = |v: &str, since: i64, until: i64| releaseops_traces::Filter {
        bundle_id: Some(id.to_string()),
        bundle_version: Some(v.to_string()),
        environment: Some(env.to_string()),
        since_ns: Some(since),
        until_ns: Some(until),
        ..releaseops_traces::Filter::default()
    };
    let opts = CompareOptions {
        metrics: HEALTH.iter().map(|m| m.to_string()).collect(),
        ..CompareOptions::default()
    };
    let read = crate::facts::open_traces(store).and_then(|mut traces| {
        compare_stored(
            &mut traces,
            &filter(before, at_ns.saturating_sub(span), at_ns),
            &filter(version, at_ns, at_ns.saturating_add(span)),
            &[],
            &opts,
        )
    });
    let Ok(c) = read else {
        return Production::Unreadable;
    };
    if c.verdict == Verdict::InsufficientData {
        return Production::TooLittle;
    }
    let policy = store
        .load_env(env)
        .ok()
        .and_then(|e| e.promotion_policy)
        .and_then(|p| p.requires_analysis);
    let worse: Vec<String> = c
        .metrics
        .iter()
        .filter(|m| m.significant && m.direction == Direction::Worse)
        .filter(|m| {
            let grew = if m.name == "error_rate" {
                m.change
            } else {
                m.relative_change.unwrap_or(f64::INFINITY)
            };
            grew > tolerance(&m.name, policy.as_ref())
        })
        .map(describe_change)
        .collect();
    let sides = format!(
        "production traffic in {env}: {} traces of {version} in the {watch:.0}h after it went live against {} of {before} before",
        c.candidate.sample_size, c.baseline.sample_size
    );
    if worse.is_empty() {
        Production::Healthy(format!("{sides}: no regression beyond the tolerances"))
    } else {
        Production::Regressed(format!("{sides}: {}", worse.join("; ")))
    }
}

pub(super) fn write_heuristics(tx: &mut Transaction<'_>, hs: &[Heuristic], outcomes: u64) {
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
/// The model is asked for proposals only when one is given (an explicit
/// `agent reflect`): automatic learning runs under the store lock and must
/// not wait on a remote service.
/// `stamp`: the records' on disk (`memory` may hold outcomes on top).
pub(super) fn learn(
    store: &Store,
    stamp: [u64; 3],
    memory: &Memory,
    llm: Option<ProviderLlm>,
) -> Result<Vec<Heuristic>> {
    let previous = heuristics(store)?;
    let mut hs = releaseops_agent::llm::learn(
        memory,
        &previous,
        llm.as_ref().map(|l| l as &dyn releaseops_agent::llm::Llm),
    );
    releaseops_agent::heuristics::annotate(
        &mut hs,
        memory,
        &learned::model_as_of(store, stamp, memory),
    );
    Ok(hs)
}

/// Derives the heuristics now, whatever the count, and commits them.
pub fn reflect(ctx: &Ctx) -> Result<Vec<Heuristic>> {
    crate::sync::retrying(ctx.store, || reflect_once(ctx))
}

fn reflect_once(ctx: &Ctx) -> Result<Vec<Heuristic>> {
    let mut tx = ctx.store.begin()?;
    let mut head = read_head(ctx.store)?;
    let before = stamp(ctx.store, &head);
    let (memory, _) = load_memory_image(ctx.store, &head, before[2])?;
    let derived = learn(ctx.store, before, &memory, llm_of(ctx))?;
    write_heuristics(&mut tx, &derived, head.outcomes);
    head.reflected_at = head.outcomes;
    write_head(&mut tx, &head);
    tx.commit("releaseops: agent reflect", ctx.author().as_ref())?;
    Ok(derived)
}

/// `agent.watch_hours` (24 when unset).
pub(super) fn watch_hours(store: &Store) -> f64 {
    store.config().agent.as_ref().map_or_else(
        || releaseops_format::config::AgentConfig::default().watch_hours(),
        |a| a.watch_hours(),
    )
}

/// Records the outcomes the history already tells ([`settle`]) in their own
/// commit; returns how many.
pub fn settle_now(ctx: &Ctx) -> Result<usize> {
    crate::sync::retrying(ctx.store, || settle_now_once(ctx))
}

fn settle_now_once(ctx: &Ctx) -> Result<usize> {
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
    if through > outcomes.head.settled_through && outcomes.deferred == 0 {
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
