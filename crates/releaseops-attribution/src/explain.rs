//! The offline method: every prompt line and policy rule read once into an
//! [`Index`], then each trace scored against it.
//!
//! A candidate's score starts from how much it is about the action: the
//! cosine of inverse-document-weighted terms (the bundle's own lines and
//! rules are the documents, so a word every line uses counts for little)
//! and whether it names the action's tool. What the candidate says then
//! decides: an action outside a limit the line sets, inside the region a
//! prohibition forbids, calling a denied tool, breaking a tool condition or
//! skipping a required earlier step **breaks** it (it ranks first and the
//! assessment is "Contradicts artifacts"); an action inside a limit, after
//! its required step, or a reply declining what a line forbids **follows**
//! it (a bonus); a prohibition whose region the action never entered does
//! not govern it (halved). Prompt lines win ties against policy rules: the
//! prompt is what the model read.

use std::collections::HashMap;

use serde_json::Value;

use crate::clause::{self, Clause, fmt_num};
use crate::policy::{self, Op, RuleKind};
use crate::report::{ArtifactType, Assessment, Attribution, Effect, Influence, Label, RuleRef};
use crate::text::{self, Term, Words};
use crate::trace::{ActionType, Call, Trace};
use crate::{BundleText, ModelText};

/// One prompt line or policy rule, read.
#[derive(Debug)]
struct Cand {
    ty: ArtifactType,
    reference: String,
    role: String,
    line: Option<usize>,
    rule: Option<(usize, String, String)>,
    snippet: String,
    clause: Clause,
    kind: Option<RuleKind>,
    /// Surface words of the terms (for `keywords_matched`).
    words: HashMap<Term, String>,
    norm: f32,
}

impl Cand {
    /// A line of a text artifact (a prompt, a policy that is not YAML rules).
    fn line(ty: ArtifactType, a: &crate::Artifact, n: usize, text: &str, clause: Clause) -> Cand {
        Cand {
            ty,
            reference: a.reference.clone(),
            role: a.role.clone(),
            line: Some(n),
            rule: None,
            snippet: snippet(text),
            words: surface(text),
            clause,
            kind: None,
            norm: 0.0,
        }
    }

    fn location(&self) -> String {
        match (&self.line, &self.rule) {
            (Some(n), _) => format!("line {n}"),
            (_, Some((i, name, path))) => format!("rule {i}: {name} ({path})"),
            _ => String::new(),
        }
    }
}

/// A bundle version's prompt lines and policy rules, read once; explaining
/// a trace is then a pass over them.
#[derive(Debug)]
pub struct Index {
    bundle_id: String,
    bundle_version: String,
    cands: Vec<Cand>,
    idf: HashMap<Term, f32>,
    /// A WordNet sense -> the lines' and rules' terms that have it.
    by_sense: HashMap<Term, Vec<Term>>,
    model: Option<ModelText>,
}

/// What a candidate's statement says of the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing the candidate states was tested.
    Neutral,
    /// A policy lists the tool as allowed, and says nothing more of it.
    Allows,
    /// The action is inside what the line allows or after its required step.
    Follows,
    /// The line's condition does not hold for this action.
    OutOfScope,
    /// The action breaks it.
    Breaks,
}

/// How an action stands against one candidate, and why.
#[derive(Debug, Clone)]
struct Outcome {
    kind: Kind,
    reason: String,
    /// How much a break explains (1: it forbids the action; less: the action only exceeds what it allows).
    strength: f64,
    /// The least score this outcome gives.
    floor: f64,
    /// The argument a limit was read against (`nightly_rate`).
    quantity: Option<String>,
}

impl Outcome {
    fn new(kind: Kind, reason: String) -> Outcome {
        Outcome {
            kind,
            reason,
            strength: 1.0,
            floor: 0.0,
            quantity: None,
        }
    }
    /// Read against the argument `key`.
    fn on(mut self, key: &str) -> Outcome {
        self.quantity = Some(key.to_string());
        self
    }
    fn neutral() -> Outcome {
        Outcome::new(Kind::Neutral, String::new())
    }
    /// A follow that says less about the action itself (a step done before
    /// it, an exception shown): it counts for less than a limit kept.
    fn weak(mut self, strength: f64) -> Outcome {
        self.strength = strength;
        self
    }
}

/// A policy's rule for the very tool called: denied, a required earlier
/// tool missing, a condition broken; else what it allows.
fn tool_rule(
    name: &str,
    allowed: bool,
    conditions: &[policy::Condition],
    requires: &[String],
    call: &Call,
    q: &Query<'_>,
) -> Outcome {
    if !allowed {
        return Outcome::new(Kind::Breaks, format!("the policy denies the tool {name}"));
    }
    for r in requires {
        if !q.prior.iter().any(|p| same_tool(&p.name, r)) {
            return Outcome::new(
                Kind::Breaks,
                format!("{name} requires {r} earlier in the trace, and it was not called"),
            );
        }
    }
    let mut tested = Vec::new();
    for cond in conditions {
        let Some(arg) = call.arguments.get(&cond.field) else {
            continue;
        };
        let holds = match (number(arg), cond.value.as_f64()) {
            (Some(x), Some(v)) => {
                tested.push(format!(
                    "{} {} {} {}",
                    cond.field,
                    fmt_num(x),
                    cond.op.symbol(),
                    fmt_num(v)
                ));
                cond.op.holds(x, v)
            }
            _ => {
                let same = match (arg.as_str(), cond.value.as_str()) {
                    (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
                    _ => *arg == cond.value,
                };
                tested.push(format!(
                    "{} {} {} {}",
                    cond.field,
                    arg,
                    cond.op.symbol(),
                    cond.value
                ));
                match cond.op {
                    Op::Eq => same,
                    Op::Ne => !same,
                    _ => true,
                }
            }
        };
        if !holds {
            let shown = match number(arg) {
                Some(x) => fmt_num(x),
                None => arg.to_string(),
            };
            return Outcome::new(
                Kind::Breaks,
                format!(
                    "{} {shown} breaks the condition {} {} {}",
                    cond.field,
                    cond.field,
                    cond.op.as_str(),
                    cond.value
                ),
            )
            .on(&cond.field);
        }
    }
    if !requires.is_empty() {
        tested.push(format!("after {}", requires.join(", ")));
    }
    if tested.is_empty() {
        Outcome::new(Kind::Allows, format!("The policy allows {name}"))
    } else {
        Outcome::new(
            Kind::Follows,
            format!(
                "The policy allows {name} and its conditions hold ({})",
                tested.join(", ")
            ),
        )
    }
}

impl Index {
    pub fn new(b: &BundleText) -> Index {
        let mut cands = Vec::new();
        for p in &b.prompts {
            let mut heading: Vec<(Term, f32)> = Vec::new();
            for (i, line) in p.text.lines().enumerate() {
                let t = line.trim();
                if t.is_empty() || t.starts_with("{%") || t.starts_with("{#") {
                    continue;
                }
                let words = t.split_whitespace().count();
                let is_heading = t.starts_with('#')
                    || (words <= 4
                        && !t.ends_with(['.', '!', '?', ';', ','])
                        && t.chars().next().is_some_and(char::is_uppercase)
                        && !t.contains('_'))
                    || (t.ends_with(':') && t.split_whitespace().count() <= 5)
                    || (t.len() > 3
                        && t.len() < 40
                        && t.chars()
                            .filter(|c| c.is_alphabetic())
                            .all(char::is_uppercase));
                if is_heading {
                    heading = text::terms(t)
                        .into_iter()
                        .map(|(x, w)| (x, w * 0.3))
                        .collect();
                    continue;
                }
                let mut c = clause::read(t);
                for &(x, w) in &heading {
                    if !c.terms.iter().any(|(y, _)| *y == x) {
                        c.terms.push((x, w));
                    }
                }
                cands.push(Cand::line(ArtifactType::Prompt, p, i + 1, t, c));
            }
        }
        for p in &b.policies {
            match policy::rules(&p.text) {
                Some(rules) => {
                    for (i, r) in rules.into_iter().enumerate() {
                        let mut c = clause::read(&r.text);
                        c.idents.push(r.name.to_ascii_lowercase());
                        // The rule's name is said twice: it is what the rule is about.
                        for (x, w) in text::terms(&r.name) {
                            if let Some(e) = c.terms.iter_mut().find(|(y, _)| *y == x) {
                                e.1 = e.1.max(w);
                            } else {
                                c.terms.push((x, w));
                            }
                        }
                        cands.push(Cand {
                            ty: ArtifactType::Policy,
                            reference: p.reference.clone(),
                            role: p.role.clone(),
                            line: None,
                            rule: Some((i + 1, r.name.clone(), r.path.clone())),
                            snippet: snippet(&r.text),
                            words: surface(&format!("{} {}", r.name, r.text)),
                            clause: c,
                            kind: Some(r.kind),
                            norm: 0.0,
                        });
                    }
                }
                None => {
                    for (i, line) in p.text.lines().enumerate() {
                        let t = line.trim();
                        if t.is_empty() || t.starts_with('#') {
                            continue;
                        }
                        cands.push(Cand::line(
                            ArtifactType::Policy,
                            p,
                            i + 1,
                            t,
                            clause::read(t),
                        ));
                    }
                }
            }
        }
        cands.retain(|c| !c.clause.terms.is_empty() || !c.clause.bounds.is_empty());
        // Document frequencies over the bundle's own lines and rules.
        let mut df: HashMap<Term, f32> = HashMap::new();
        for c in &cands {
            for (t, _) in &c.clause.terms {
                *df.entry(*t).or_default() += 1.0;
            }
        }
        let mut by_sense: HashMap<Term, Vec<Term>> = HashMap::new();
        for (t, ss) in text::senses_of(df.keys().map(|t| (*t, *t))) {
            for s in ss.iter() {
                by_sense.entry(*s).or_default().push(t);
            }
        }
        let n = cands.len() as f32;
        let idf: HashMap<Term, f32> = df
            .into_iter()
            .map(|(t, d)| (t, (1.0 + (n - d + 0.5) / (d + 0.5)).ln()))
            .collect();
        for c in &mut cands {
            c.norm = c
                .clause
                .terms
                .iter()
                .map(|(t, w)| (w * idf.get(t).copied().unwrap_or(0.0)).powi(2))
                .sum::<f32>()
                .sqrt();
        }
        Index {
            bundle_id: b.id.clone(),
            bundle_version: b.version.clone(),
            cands,
            idf,
            by_sense,
            model: b.model.clone(),
        }
    }

    /// How many prompt lines and policy rules were read.
    pub fn len(&self) -> usize {
        self.cands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cands.is_empty()
    }

    fn idf(&self, t: Term) -> f32 {
        // A term no line has: as rare as can be.
        self.idf
            .get(&t)
            .copied()
            .unwrap_or_else(|| (1.0 + (self.cands.len() as f32 + 0.5) / 0.5).ln())
    }

    /// The attribution of one trace.
    pub fn explain(&self, trace: &Trace) -> Attribution {
        let Some((action, action_type)) = trace.action() else {
            return Attribution {
                trace_id: trace.trace_id.clone(),
                bundle_id: self.bundle_id.clone(),
                bundle_version: self.bundle_version.clone(),
                action: "unknown action".into(),
                action_type: None,
                influences: Vec::new(),
                primary_influence: None,
                overall_assessment: Assessment::Unclear,
                assessment_reason: "the trace has no action: no tool call, no reply (`output` or `response`) and no `action`".into(),
                contradiction: None,
                followed: None,
                analyzed_at: None,
            };
        };
        // A decision that names a tool (`action: "delete_account"`) is that
        // tool's call: its rules apply.
        let named;
        let trace = match (&trace.action, action_type) {
            (Some(a), ActionType::Decision) if is_identifier(a) => {
                named = Trace {
                    tool_calls: vec![Call {
                        name: a.trim().to_string(),
                        arguments: serde_json::Map::new(),
                    }],
                    ..trace.clone()
                };
                &named
            }
            _ => trace,
        };
        let q = Query::new(
            trace,
            if trace.tool_calls.is_empty() {
                action_type
            } else {
                ActionType::ToolCall
            },
        );
        let qnorm = q
            .terms
            .iter()
            .map(|(t, w)| (w * self.idf(*t)).powi(2))
            .sum::<f32>()
            .sqrt();
        // The lines' terms the action meets only through a WordNet sense,
        // with the weight of the action's word.
        let mut soft: HashMap<Term, f32> = HashMap::new();
        for (s, w) in &q.senses {
            for t in self.by_sense.get(s).into_iter().flatten() {
                if !q.terms.contains_key(t) {
                    let e = soft.entry(*t).or_default();
                    *e = e.max(*w);
                }
            }
        }
        // Each with the reason it is broken, and the argument it was read against.
        let mut scored: Vec<(f64, Influence, Option<String>, Option<String>)> =
            Vec::with_capacity(self.cands.len());
        for (ci, c) in self.cands.iter().enumerate() {
            let mut dot = 0.0f32;
            let mut matched: Vec<&str> = Vec::new();
            for (t, w) in &c.clause.terms {
                if let Some(qw) = q.terms.get(t) {
                    let i = self.idf(*t);
                    dot += w * qw * i * i;
                    if let Some(s) = c.words.get(t)
                        && !matched.contains(&s.as_str())
                    {
                        matched.push(s);
                    }
                } else if let Some(qw) = soft.get(t) {
                    // "house" for the line's "home": a soft match, which
                    // leaves both sides' norms as they are.
                    let i = self.idf(*t);
                    dot += text::RELATED_WEIGHT * w * qw * i * i;
                }
            }
            let rel = if qnorm > 0.0 && c.norm > 0.0 {
                f64::from(dot / (qnorm * c.norm))
            } else {
                0.0
            };
            let tool = q.tool_match(c);
            let o = self.outcome(c, &q);
            let rel = (rel * 1.6).min(1.0);
            let mut base = if q.tool.is_some() {
                0.65 * rel + 0.35 * tool
            } else {
                rel
            };
            // A number the line states (a phone number, a code, "3 years") in the action.
            let shared = c.clause.numbers.iter().any(|(n, unit)| {
                q.all_numbers
                    .iter()
                    .any(|(m, u)| n == m && (*n >= 10.0 || (unit.is_some() && unit == u)))
            });
            // ... or the same length of time in other units ("two weeks" for "14 nights").
            let same_time = !shared
                && c.clause.durations.iter().any(|d| {
                    q.durations
                        .iter()
                        .any(|e| (d - e).abs() <= 1e-6 * d.abs().max(1.0))
                });
            if shared || same_time {
                base = (base + 0.3).min(1.0);
            }
            // An instruction that opens with the tool's verb ("Request changes when ...").
            if q.tool.is_some() && q.leads(c) {
                base = (base + 0.1).min(1.0);
            }
            let score = match o.kind {
                Kind::Breaks => 0.6 + 0.37 * base,
                Kind::Follows => (base + 0.25 * o.strength).min(0.95),
                Kind::Allows => base * 0.8,
                Kind::OutOfScope => base * 0.5,
                Kind::Neutral => base,
            };
            let score = score.max(o.floor);
            let negated = o.kind == Kind::Breaks;
            let score = if c.ty == ArtifactType::Policy && !negated {
                score * 0.92
            } else {
                score
            };
            if score < 0.05 && o.kind == Kind::Neutral {
                continue;
            }
            let mut why = Vec::new();
            if !matched.is_empty() {
                why.push(format!("keyword match ({})", matched.join(", ")));
            }
            if tool >= 0.99 {
                why.push("names the tool".to_string());
            } else if tool > 0.0 {
                why.push("the tool's words".to_string());
            }
            if shared {
                why.push("a number it states is in the action".to_string());
            } else if same_time {
                why.push("a length of time it states is in the action".to_string());
            }
            let reasoning = match o.kind {
                Kind::Breaks => format!("CONTRADICTS: {}", o.reason),
                Kind::Neutral if !matched.is_empty() => {
                    format!("Keywords {} found in {}", quoted(&matched), what(c))
                }
                Kind::Neutral => format!("The action's words are in {}", what(c)),
                _ => o.reason.clone(),
            };
            why.push(
                match o.kind {
                    Kind::Breaks => "the action breaks it",
                    Kind::Follows => "the action follows what it states",
                    Kind::Allows => "it allows the tool, and says no more",
                    Kind::OutOfScope => "its condition does not hold",
                    Kind::Neutral => "",
                }
                .to_string(),
            );
            why.retain(|w| !w.is_empty());
            let confidence = round2(score.clamp(0.05, 0.97));
            // A broken line or rule ranks above every other: it is what
            // explains the action; one that forbids it above one whose
            // limit it merely exceeds.
            let rank = if negated {
                1.0 + o.strength * score
            } else if matches!(c.kind, Some(RuleKind::Tool { .. }))
                && matches!(o.kind, Kind::Allows | Kind::Follows)
            {
                // A policy that lets the tool run says less of why the agent
                // called it than the prompt line that told it when to.
                0.6 * score
            } else {
                score
            };
            scored.push((
                rank + 1e-9 * (self.cands.len() - ci) as f64,
                Influence {
                    artifact_type: c.ty,
                    artifact_ref: c.reference.clone(),
                    role: Some(c.role.clone()),
                    confidence,
                    confidence_label: Label::of(confidence),
                    reasoning,
                    content_snippet: c.snippet.clone(),
                    location: Some(c.location()),
                    line: c.line,
                    rule: c.rule.as_ref().map(|r| r.1.clone()),
                    keywords_matched: matched.iter().map(|s| s.to_string()).collect(),
                    is_negated: negated,
                    effect: match o.kind {
                        Kind::Breaks => Effect::Breaks,
                        Kind::Follows | Kind::Allows => Effect::Follows,
                        Kind::OutOfScope => Effect::OutOfScope,
                        Kind::Neutral => Effect::Related,
                    },
                    confidence_reason: why.join("; "),
                },
                negated.then(|| o.reason.clone()),
                o.quantity.clone(),
            ));
        }
        scored.extend(
            self.model_influences(trace)
                .into_iter()
                .map(|i| (i.confidence, i, None, None)),
        );
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));

        let broken = scored
            .iter()
            .find(|(_, i, r, _)| i.is_negated && i.confidence >= 0.5 && r.is_some());
        let contradiction = broken.map(|(_, i, r, _)| RuleRef {
            artifact_type: i.artifact_type,
            artifact_ref: i.artifact_ref.clone(),
            location: i.location.clone().unwrap_or_default(),
            content_snippet: i.content_snippet.clone(),
            reason: r.clone().unwrap_or_default(),
        });
        // What allows the action, when something does: a line kept on
        // another quantity (`nights` when the rate is broken) is no
        // contradiction within the bundle.
        let followed = broken.and_then(|(_, _, _, bq)| {
            scored
                .iter()
                .find(|(_, i, _, fq)| {
                    i.effect == Effect::Follows
                        && i.confidence >= 0.5
                        && !matches!((bq, fq), (Some(a), Some(b)) if a != b)
                })
                .map(|(_, i, _, _)| RuleRef {
                    artifact_type: i.artifact_type,
                    artifact_ref: i.artifact_ref.clone(),
                    location: i.location.clone().unwrap_or_default(),
                    content_snippet: i.content_snippet.clone(),
                    reason: i.reasoning.clone(),
                })
        });
        let influences: Vec<Influence> = scored.into_iter().map(|(_, i, _, _)| i).collect();
        let primary = influences.first().cloned();
        let top = primary.as_ref().map_or(0.0, |p| p.confidence);
        let (overall, reason) = if let Some(c) = &contradiction {
            (
                Assessment::Contradicts,
                match &followed {
                    Some(f) => format!(
                        "the action breaks {} {} of {}: {}; it follows {} {} of {}, which allows it: the bundle contradicts itself",
                        c.artifact_type.as_str(),
                        c.location,
                        c.artifact_ref,
                        c.reason,
                        f.artifact_type.as_str(),
                        f.location,
                        f.artifact_ref
                    ),
                    None => format!(
                        "the action breaks {} {} of {}: {}",
                        c.artifact_type.as_str(),
                        c.location,
                        c.artifact_ref,
                        c.reason
                    ),
                },
            )
        } else if top >= 0.8 {
            (
                Assessment::Expected,
                "a line or rule states this action and the action keeps to it".into(),
            )
        } else if top >= 0.5 {
            (
                Assessment::LikelyExpected,
                "the closest line or rule matches the action in part".into(),
            )
        } else if primary.is_none()
            || influences
                .iter()
                .all(|i| i.artifact_type == ArtifactType::ModelConfig)
        {
            (
                Assessment::Unclear,
                "no prompt line or policy rule shares a word, a number or a tool with the action"
                    .into(),
            )
        } else {
            (
                Assessment::Unclear,
                format!(
                    "no prompt line or policy rule matches the action closely (best confidence {top:.2}, below 0.50)"
                ),
            )
        };
        Attribution {
            trace_id: trace.trace_id.clone(),
            bundle_id: self.bundle_id.clone(),
            bundle_version: self.bundle_version.clone(),
            action,
            action_type: Some(action_type),
            primary_influence: primary,
            influences,
            overall_assessment: overall,
            assessment_reason: reason,
            contradiction,
            followed,
            analyzed_at: None,
        }
    }

    /// What the candidate states, tested against the action.
    /// What a line or rule says of the action; a prompt line that opens
    /// with a condition ("If ...,", "For damaged items ...,") is broken only
    /// where the trace shows it.
    fn outcome(&self, c: &Cand, q: &Query<'_>) -> Outcome {
        let o = self.reading(c, q);
        if o.kind == Kind::Breaks
            && c.kind.is_none()
            && let Some(cond) = &c.clause.condition
            && !q.shows_most(cond)
        {
            return Outcome::new(
                Kind::OutOfScope,
                "this line holds only on the condition it opens with, which the trace does not show"
                    .into(),
            );
        }
        o
    }

    fn reading(&self, c: &Cand, q: &Query<'_>) -> Outcome {
        match &c.kind {
            Some(RuleKind::Tool {
                name,
                allowed,
                conditions,
                requires,
            }) => {
                return match q.tool {
                    Some(call) if same_tool(name, &call.name) => {
                        tool_rule(name, *allowed, conditions, requires, call, q)
                    }
                    _ => Outcome::neutral(),
                };
            }
            Some(RuleKind::Constraint { bounds }) => return self.constraint(c, bounds, q),
            _ => {}
        }
        let cl = &c.clause;
        let about_tool = q.tool_match(c);
        // "Assign an adjuster right away when someone was injured": the
        // action this line names, on a condition the trace does not show.
        if let Some(when) = &cl.when
            && q.tool.is_some()
            && about_tool >= 0.5
            && cl.prohibitions.is_empty()
            // One of its words itself, too: `order_id` is no delivery.
            && (overlap(when, &q.context) < 0.34
                || !when
                    .groups
                    .iter()
                    .any(|g| g.first().is_some_and(|t| q.context.contains_key(t))))
            // "... when a refund would exceed 200 dollars": a limit the
            // action's number is read against below.
            && !cl
                .bounds
                .iter()
                .any(|b| !b.before_when && q.number_for(b, about_tool, cl).is_some())
        {
            return Outcome::new(
                Kind::OutOfScope,
                "the trace does not show the condition this line names".into(),
            );
        }
        // "8 hours" in a reply about a dose is not the "24 hours notice" of a
        // line on cancellations: a number of the reply counts against a
        // line's limit only when the trace speaks of the line's subject.
        let reply_off_subject = q.tool.is_none() && !cl.subject.is_empty() && !q.about_subject(cl);
        // Of limits by tier, the one whose own words the trace has; with none,
        // the first, which a line states as the rule before its exceptions.
        let tier = cl
            .bounds
            .iter()
            .position(|b| b.tier.iter().any(|t| q.context.contains_key(t)));
        let tiered = cl.bounds.iter().any(|b| !b.tier.is_empty());
        let mut kept = None;
        let bounds: &[clause::Bound] = if reply_off_subject { &[] } else { &cl.bounds };
        for (i, b) in bounds.iter().enumerate() {
            if tiered && tier.map_or(i > 0, |t| t != i) {
                continue;
            }
            let Some(r) = q.number_for(b, about_tool, cl) else {
                continue;
            };
            let o = self.bound_outcome(cl, b, q, about_tool, &r).on(&r.key);
            // "up to 100 dollars within 30 days": a limit kept does not
            // excuse another broken.
            if o.kind == Kind::Breaks {
                return o;
            }
            if o.kind != Kind::Neutral && kept.is_none() {
                kept = Some(o);
            }
        }
        if let Some(o) = kept {
            return o;
        }
        // "It has already been moved twice, which is the limit": a reply
        // declining at the very count a line caps, the count said next to
        // the line's subject or what it counts.
        if q.tool.is_none()
            && q.refusal
            && !cl.subject.is_empty()
            && let Some(b) = cl.bounds.iter().find(|b| {
                b.op == Op::Lte
                    && !b.forbidden
                    && q.counts.iter().any(|(v, around)| {
                        *v == b.value
                            && around.iter().any(|t| {
                                cl.subject.contains(t) || b.about.iter().any(|(a, _)| a == t)
                            })
                    })
            })
        {
            let mut o = Outcome::new(
                Kind::Follows,
                format!(
                    "the reply declines at the limit this line sets ({})",
                    b.phrase
                ),
            );
            o.floor = 0.7;
            return o;
        }
        // The action the line says to take past its limit, with a number
        // past it written in the action ("estimate of 4180 is above ..."),
        // though no argument holds it.
        if let (Some(ov), Some(b)) = (&cl.overflow, cl.bounds.first())
            && !reply_off_subject
            && matches!(b.op, Op::Lt | Op::Lte)
            && q.takes(ov)
            && let Some(x) = q.amounts.iter().find(|x| !b.op.holds(**x, b.value))
        {
            return Outcome::new(
                Kind::Follows,
                format!(
                    "{} in the action is past the limit this line sets ({}), and the action is what it says to do then",
                    fmt_num(*x),
                    b.phrase
                ),
            );
        }
        if let Some(r) = &cl.requirement
            && cl.prohibitions.is_empty()
            && !r.needs
        {
            let gated = match q.tool {
                Some(call) => {
                    q.stem_cover(&r.then) >= 0.99
                        && !r.first_idents.iter().any(|i| same_tool(i, &call.name))
                }
                None => overlap(&r.then, &q.terms) >= 0.6,
            };
            if gated {
                if self.done(&r.first, &r.first_idents, q) {
                    return Outcome::new(
                        Kind::Follows,
                        "the step this line requires came first".into(),
                    );
                }
                if q.tool.is_some() {
                    return Outcome::new(
                        Kind::Breaks,
                        "the step this line requires before this action is not in the trace".into(),
                    );
                }
            }
        }
        // "Check the approval ID with the approvals tool": an action that
        // uses the approval ID after no call named for it skipped the check.
        if let (Some(obj), Some(call), None) = (&cl.check, q.tool, &cl.requirement) {
            let covers = |name: &str, all: bool| {
                let nt = text::terms(name);
                let has = |g: &Vec<Term>| g.iter().any(|t| nt.iter().any(|(x, _)| x == t));
                if all {
                    obj.groups.iter().all(has)
                } else {
                    obj.groups.iter().any(has)
                }
            };
            if let Some(arg) = call.arguments.keys().find(|k| covers(k, true)) {
                if q.prior.iter().any(|p| covers(&p.name, false)) {
                    return Outcome::new(
                        Kind::Follows,
                        format!("{arg} was checked by an earlier call, as this line says"),
                    )
                    .weak(0.5);
                }
                return Outcome::new(
                    Kind::Breaks,
                    format!(
                        "the action uses {arg}, and no earlier call checks it as this line says"
                    ),
                );
            }
        }
        for p in &cl.prohibitions {
            match q.tool {
                Some(call) => {
                    let literal = p.idents.iter().any(|i| same_tool(i, &call.name));
                    // The tool's own words in the scope, and the rest of the
                    // scope in the trace (`on someone else's behalf` is not
                    // shown by a grant_access call alone).
                    let named = literal
                        || q.stem_cover(&p.scope) >= 0.99
                        || (q.concept_cover(&p.scope) >= 0.99 && q.stem_cover(&p.scope) >= 0.5);
                    if named
                        && (literal || scope_overlap(p, &q.context) >= 0.75)
                        && cl.bounds.is_empty()
                        && (p.condition.is_empty() || q.shows(&p.condition))
                    {
                        if !p.exception.is_empty() && self.excused(p, q) {
                            return Outcome::new(
                                Kind::Follows,
                                "the trace shows the exception this prohibition allows".into(),
                            )
                            .weak(0.0);
                        }
                        return Outcome::new(
                            Kind::Breaks,
                            format!("{} is what this line forbids", call.name),
                        );
                    }
                }
                None => {
                    // A refusal is read with the words' WordNet senses too
                    // ("can't commit to a particular day" declines "promise a
                    // specific date"); what a reply is held to break, only
                    // with its own words.
                    let soft = q.refusal.then_some(&q.senses);
                    let o = share(&p.scope, &q.terms, Saying::Done, soft);
                    // Words of saying alone ("does not show") forbid nothing a reply can be held to.
                    if o >= 0.5 && share(&p.scope, &q.terms, Saying::Dropped, soft) > 0.0 {
                        if q.refusal {
                            if !q.about_subject(cl) {
                                // "Reminder messages must not ...": a refusal
                                // of something else.
                                continue;
                            }
                            // A refusal is explained by what it refuses: the
                            // more of the prohibition's own words the reply
                            // has, the surer.
                            let mut o = Outcome::new(
                                Kind::Follows,
                                "the reply declines what this line forbids".into(),
                            );
                            o.floor = 0.3
                                + 0.5
                                    * share(
                                        &p.scope.with(&p.exception),
                                        &q.terms,
                                        Saying::Dropped,
                                        soft,
                                    );
                            return o;
                        }
                        if o >= 0.75
                            && (p.exception.is_empty() || !self.excused(p, q))
                            && (p.condition.is_empty() || q.shows(&p.condition))
                        {
                            return Outcome::new(
                                Kind::Breaks,
                                "the reply does what this line forbids".into(),
                            );
                        }
                    }
                }
            }
        }
        Outcome::neutral()
    }

    /// What one limit of a line says of the action's number `x` (shown as
    /// `shown`): neutral when it says nothing.
    fn bound_outcome(
        &self,
        cl: &clause::Clause,
        b: &clause::Bound,
        q: &Query<'_>,
        about_tool: f64,
        r: &Reading,
    ) -> Outcome {
        let (shown, x, says_subject) = (&r.shown, r.x, r.says_subject);
        if b.conditional
            && let Some(cond) = &cl.condition
            && !q.shows(cond)
        {
            return Outcome::new(
                Kind::OutOfScope,
                format!(
                    "{shown} is beside the point: this line's limit ({}) holds only on its condition, which the trace does not show",
                    b.phrase
                ),
            );
        }
        let inside = b.op.holds(x, b.value);
        if b.forbidden {
            // "Never more than 2 drinks per attendee" and 2 each: the
            // quantity it names, kept within its limit.
            if !inside && !b.about.is_empty() && matches!(b.op, Op::Gt | Op::Gte) {
                return Outcome::new(
                    Kind::Follows,
                    format!(
                        "{shown} is not {}: the action keeps to this line's limit",
                        b.phrase
                    ),
                );
            }
            if !inside {
                return Outcome::new(
                    Kind::OutOfScope,
                    format!(
                        "{shown} is not {}: this line's prohibition does not apply",
                        b.phrase
                    ),
                );
            }
            if let Some(p) = cl.prohibitions.iter().find(|p| !p.exception.is_empty())
                && self.excused(p, q)
            {
                return Outcome::new(
                    Kind::Follows,
                    format!(
                        "{shown} is {}, and the trace shows the exception this line allows",
                        b.phrase
                    ),
                )
                .weak(0.0);
            }
            return Outcome::new(
                Kind::Breaks,
                format!("{shown} is {}, which this line forbids", b.phrase),
            );
        }
        match b.op {
            Op::Lt | Op::Lte => {
                // "... up to £30; anything higher goes to a supervisor with
                // escalate_to_supervisor", and an escalation of £3.45: the
                // action this line takes past its limit, with a number
                // within it, is not what the line explains.
                if inside
                    && let Some(ov) = &cl.overflow
                    && q.takes(ov)
                {
                    return Outcome::new(
                        Kind::OutOfScope,
                        format!(
                            "the action is what this line says to do past its limit ({}), but {shown} is within it",
                            b.phrase
                        ),
                    );
                }
                if inside {
                    return Outcome::new(
                        Kind::Follows,
                        format!("{shown} is within the limit this line sets ({})", b.phrase),
                    );
                }
                // "... for larger amounts, open a case for the billing
                // team": past the limit, the action this line says to take.
                if let Some(ov) = &cl.overflow
                    && q.takes(ov)
                {
                    return Outcome::new(
                        Kind::Follows,
                        format!(
                            "{shown} is past the limit this line sets ({}), and the action is what it says to do then",
                            b.phrase
                        ),
                    );
                }
                // "Home internet can be claimed up to 50 dollars": a
                // limit granted to a subject the action is not about
                // is not broken by it ...
                let subject = about_tool >= 0.5 || q.about_subject(cl);
                // ... unless the argument itself is named for it
                // (`nightly_rate` for "Hotel rates are capped at ...").
                if about_tool >= 0.5 || (cl.grants && subject) || says_subject {
                    // Exceeding what a line allows explains less than breaking what one forbids.
                    return Outcome {
                        kind: Kind::Breaks,
                        reason: format!("{shown} exceeds the limit this line sets ({})", b.phrase),
                        strength: 0.8,
                        floor: 0.0,
                        quantity: None,
                    };
                }
            }
            _ => {
                if !inside {
                    return Outcome::new(
                        Kind::OutOfScope,
                        format!("{shown} is not {}: this line does not apply", b.phrase),
                    );
                }
                if let Some(r) = &cl.requirement
                    && !self.done(&r.first, &r.first_idents, q)
                {
                    return Outcome::new(
                        Kind::Breaks,
                        format!(
                            "{shown} is {}, and the step this line requires is not in the trace",
                            b.phrase
                        ),
                    );
                }
                return Outcome::new(
                    Kind::Follows,
                    format!("{shown} is {}: this line applies", b.phrase),
                );
            }
        }
        Outcome::neutral()
    }

    /// A constraint's bounds against the action's numbers of the same name
    /// (`max_days` against `days`; `max_value` against the argument the
    /// constraint's words name, as `interviewers`).
    fn constraint(&self, c: &Cand, bounds: &[(String, Op, f64)], q: &Query<'_>) -> Outcome {
        // `fee_refund_limit` says what it limits: an action that says none of
        // it (a transfer's amount, a parking pass's days) is not held to it.
        // The user's words alone do not make the action about it.
        let subject: Vec<(Term, f32)> = c.rule.as_ref().map_or_else(Vec::new, |(_, name, _)| {
            text::terms(
                &text::words(name)
                    .into_iter()
                    .filter(|w| !GENERIC_LIMIT.contains(&w.as_str()))
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        });
        // Not by money alone: "£1,800" is money, as fees are, but says
        // nothing of fees.
        if !subject.is_empty()
            && !subject.iter().any(|(t, sw)| {
                (*sw >= 1.0 || !text::money_concepts().contains(t))
                    && q.terms.get(t).is_some_and(|w| *w > 0.25)
            })
        {
            return Outcome::neutral();
        }
        for (field, op, v) in bounds {
            let unnamed = field.is_empty() || field == "value" || field == "amount_value";
            let names: Vec<(Term, f32)> = if unnamed {
                // `max_value: 2` with "no more than 2 appointments": what the
                // description's own number counts, else all its words.
                c.clause
                    .bounds
                    .iter()
                    .find(|b| b.value == *v && !b.about.is_empty())
                    .map(|b| b.about.clone())
                    .unwrap_or_else(|| c.clause.terms.clone())
            } else {
                text::terms(field)
            };
            let bound = c.clause.bounds.iter().find(|b| b.value == *v);
            // "At most 2 drinks per attendee": the count it is per is not the quantity.
            let per: &[(Term, f32)] = bound.map_or(&[], |b| b.per.as_slice());
            // `days: 3` is not what "$40 per person per day" caps.
            let time_of_rate = |k: &str| bound.is_some_and(|b| counts_its_time_unit(b, k));
            let by_name = q.numbers.iter().find(|(k, _)| {
                if k == field {
                    return true;
                }
                if time_of_rate(k) {
                    return false;
                }
                let kt = text::terms(k);
                if kt.iter().any(|(t, _)| per.iter().any(|(p, _)| p == t)) {
                    return false;
                }
                if !kt
                    .iter()
                    .any(|(t, w)| *w >= 1.0 && names.iter().any(|(x, _)| x == t))
                {
                    return false;
                }
                // `penalty_amount` is not the amount of a meal allowance: an
                // argument that says whose quantity it is must say the
                // constraint's subject.
                unnamed
                    || kt.iter().all(|(t, w)| {
                        *w < 1.0
                            || names.iter().any(|(x, _)| x == t)
                            || c.clause.terms.iter().any(|(x, _)| x == t)
                    })
                    || kt.iter().any(|(t, w)| {
                        *w >= 1.0
                            && !names.iter().any(|(x, _)| x == t)
                            && c.clause.terms.iter().any(|(x, _)| x == t)
                    })
            });
            // "Refunds may not exceed $100" with `max_value: 100`: a sum of
            // money, which a plain `amount` is, when it is the call's only
            // one and the call itself (its tool or arguments, not the
            // reply) is about the rule's subject.
            let x = by_name.or_else(|| {
                let money = unnamed
                    && bound.is_some_and(|b| b.money && b.per_word.is_empty())
                    && q.tool.is_some_and(|t| {
                        let mut words = t.name.clone();
                        for k in t.arguments.keys() {
                            words.push(' ');
                            words.push_str(k);
                        }
                        let call = text::terms(&words);
                        subject.iter().any(|(t, w)| {
                            *w >= 1.0 && call.iter().any(|(x, xw)| *xw >= 1.0 && x == t)
                        })
                    });
                if !money {
                    return None;
                }
                let plain = |k: &str| {
                    let kt = text::terms(k);
                    kt.iter().all(|(t, w)| *w < 1.0 || text::terms_of_money(*t))
                        && kt.iter().any(|(t, _)| text::money_concepts().contains(t))
                };
                let mut sums = q.numbers.iter().filter(|(k, _)| plain(k));
                match (sums.next(), sums.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            });
            if let Some((k, x)) = x {
                let (shown, x) = match q.count_of(per, k) {
                    Some((ck, n)) => (
                        format!(
                            "{k} {} over {ck} {} ({} each)",
                            fmt_num(*x),
                            fmt_num(n),
                            fmt_num(x / n)
                        ),
                        x / n,
                    ),
                    None => (format!("{k} {}", fmt_num(*x)), *x),
                };
                if !op.holds(x, *v) {
                    return Outcome::new(
                        Kind::Breaks,
                        format!(
                            "{shown} is beyond the constraint's {} {}",
                            op.symbol(),
                            fmt_num(*v)
                        ),
                    )
                    .on(k);
                }
                return Outcome::new(
                    Kind::Follows,
                    format!(
                        "{shown} is within the constraint ({} {})",
                        op.symbol(),
                        fmt_num(*v)
                    ),
                )
                .on(k);
            }
        }
        Outcome::neutral()
    }

    /// Whether the trace shows a step done: an earlier call of a tool the
    /// step names, or an earlier call (or the action's arguments) in the
    /// step's words.
    fn done(&self, step: &Words, idents: &[String], q: &Query<'_>) -> bool {
        if q.prior
            .iter()
            .any(|p| idents.iter().any(|i| same_tool(i, &p.name)))
        {
            return true;
        }
        self.evidence(&step.terms, q)
    }

    /// Whether the trace shows a prohibition's exception: a request for it
    /// in the user's words (`unless the user asks`), or the step it names.
    fn excused(&self, p: &clause::Prohibition, q: &Query<'_>) -> bool {
        if p.on_request {
            return q
                .input
                .as_ref()
                .is_some_and(|i| overlap(&p.scope, i) >= 0.5 || q.stem_cover_in(i) >= 0.99);
        }
        self.done(&p.exception, &[], q)
    }

    /// Whether the trace shows `terms` done: an earlier tool call, or an
    /// argument of the action, says it.
    fn evidence(&self, terms: &[(Term, f32)], q: &Query<'_>) -> bool {
        let total: f32 = terms.iter().map(|(t, w)| w * self.idf(*t)).sum();
        if total <= 0.0 {
            return false;
        }
        q.evidence.iter().any(|e| {
            let got: f32 = terms
                .iter()
                .filter(|(t, _)| e.iter().any(|(x, _)| x == t))
                .map(|(t, w)| w * self.idf(*t))
                .sum();
            got / total >= 0.45
        })
    }

    fn model_influences(&self, trace: &Trace) -> Vec<Influence> {
        let Some(m) = &self.model else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mk = |r: &str, loc: &str, content: String, conf: f64, reasoning: String, why: &str| {
            Influence {
                artifact_type: ArtifactType::ModelConfig,
                artifact_ref: r.into(),
                role: None,
                confidence: conf,
                confidence_label: Label::of(conf),
                reasoning,
                content_snippet: content,
                location: Some(loc.into()),
                line: None,
                rule: None,
                keywords_matched: Vec::new(),
                is_negated: false,
                effect: Effect::Related,
                confidence_reason: why.into(),
            }
        };
        if let (Some(max), Some(used)) = (m.max_tokens, trace.output_tokens)
            && max > 0
            && used as f64 >= 0.95 * max as f64
        {
            out.push(mk(
                "max_tokens",
                "max_tokens",
                format!("max_tokens={max}"),
                0.6,
                format!("The reply used {used} of {max} output tokens: it was likely cut off"),
                "output tokens at the limit",
            ));
        }
        if let Some(t) = m.temperature {
            if t > 0.7 {
                out.push(mk(
                    "temperature",
                    "temperature",
                    format!("temperature={t}"),
                    0.3,
                    format!("High temperature ({t}) makes answers vary from run to run"),
                    "temperature is an indirect influence",
                ));
            } else if t < 0.3 {
                out.push(mk(
                    "temperature",
                    "temperature",
                    format!("temperature={t}"),
                    0.15,
                    format!("Low temperature ({t}) favours deterministic answers"),
                    "temperature is an indirect influence",
                ));
            }
        }
        let r = match &m.provider {
            Some(p) => format!("{p}/{}", m.model),
            None => m.model.clone(),
        };
        let content = match &m.provider {
            Some(p) => format!("model={}, provider={p}", m.model),
            None => format!("model={}", m.model),
        };
        out.push(mk(
            &r,
            "model",
            content,
            0.1,
            format!(
                "Model {} shapes every answer, this one no more than others",
                m.model
            ),
            "the model is an indirect influence",
        ));
        out
    }
}

/// The action as terms and facts.
/// An argument read against a line's limit.
struct Reading {
    key: String,
    /// As shown: `amount 84 over attendees 3 (28 each)`.
    shown: String,
    /// In the limit's unit, per what the limit is per.
    x: f64,
    /// The argument's name says the line's subject too.
    says_subject: bool,
}

struct Query<'a> {
    terms: HashMap<Term, f32>,
    /// The WordNet senses of those terms, each with its term's weight.
    senses: HashMap<Term, f32>,
    /// The action with its context: every call's name and arguments, the reply, the input.
    context: HashMap<Term, f32>,
    /// The user's words, when captured.
    input: Option<HashMap<Term, f32>>,
    tool: Option<&'a Call>,
    /// The tool name's words: each one's stem, and its concepts.
    tool_parts: Vec<(Term, Vec<Term>)>,
    tool_norm: String,
    /// The terms of the tool name's first word (its verb, mostly).
    tool_first: Vec<Term>,
    prior: &'a [Call],
    /// Numeric arguments of the tool call (`amount`, `days`, a list's length), or numbers of the reply.
    numbers: Vec<(String, f64)>,
    /// Each of those numbers' name as terms, read once.
    number_terms: Vec<Vec<(Term, f32)>>,
    /// Every number the action holds, with the stem of the word after it.
    all_numbers: Vec<(f64, Option<Term>)>,
    /// The numbers written in the action's text that are not part of a code
    /// (`4180` in "estimate of 4180", not `20877` in `CLM-20877`).
    amounts: Vec<f64>,
    /// The lengths of time the action states, in hours.
    durations: Vec<f64>,
    /// Term sets that count as evidence of a step: each earlier call, the action's arguments.
    evidence: Vec<Vec<(Term, f32)>>,
    refusal: bool,
    /// The counts a reply's declining sentences state, number words
    /// included, each with the terms around it.
    counts: Vec<(f64, Vec<Term>)>,
}

fn term_map(text: &str, w: f32, into: &mut HashMap<Term, f32>) {
    for (t, tw) in text::terms(text) {
        let e = into.entry(t).or_default();
        *e = e.max(tw * w);
    }
}

impl<'a> Query<'a> {
    fn new(trace: &'a Trace, ty: ActionType) -> Query<'a> {
        let mut terms: HashMap<Term, f32> = HashMap::new();
        let mut numbers = Vec::new();
        let mut evidence = Vec::new();
        let (tool, prior) = match ty {
            ActionType::ToolCall => match trace.tool_calls.split_last() {
                Some((last, prior)) => (Some(last), prior),
                None => (None, &trace.tool_calls[..]),
            },
            _ => (None, &trace.tool_calls[..]),
        };
        let said = trace
            .output
            .as_deref()
            .or(trace.action.as_deref())
            .unwrap_or_default();
        if let Some(call) = tool {
            term_map(&call.name, 1.0, &mut terms);
            let mut arg_text = String::new();
            for (k, v) in &call.arguments {
                term_map(k, 0.3, &mut terms);
                flat_args(k, v, &mut numbers, &mut arg_text);
            }
            term_map(&arg_text, 0.9, &mut terms);
            term_map(said, 0.7, &mut terms);
            let mut e = text::terms(&arg_text);
            for (k, v) in &call.arguments {
                if !matches!(v, Value::Bool(false) | Value::Null) {
                    e.extend(text::terms(k));
                }
            }
            // The user's own consent ("Yes, go ahead") is evidence of a step
            // that asks for it ("get an explicit yes"); nothing else the
            // user claims is (their word that approval was given is not).
            if let Some(i) = &trace.input {
                e.extend(consent_terms(i));
            }
            evidence.push(e);
        } else {
            term_map(said, 1.0, &mut terms);
            // A number of the reply is named by the words next to it
            // ("refunded 150 dollars"); number words are not read there.
            let (toks, money) = text::tokens_marked(said);
            for (k, t) in toks.iter().enumerate() {
                if let text::Token::Number(v) = t {
                    // "£21.99 a month" is money, not a length of time.
                    // Named by the two words before it ("a refund of $45").
                    if money.get(k).copied().unwrap_or(false) {
                        let before: Vec<&str> = toks[..k]
                            .iter()
                            .rev()
                            .take(2)
                            .map_while(|t| match t {
                                text::Token::Word(w) => Some(w.as_str()),
                                _ => None,
                            })
                            .collect();
                        // ... and the words after it ("a $45 refund"), but
                        // not a unit of time ("£21.99 a month" is a price).
                        let after = toks[k + 1..].iter().take(2).map_while(|t| match t {
                            text::Token::Word(w) if clause::hours_of(w).is_none() => {
                                Some(w.as_str())
                            }
                            _ => None,
                        });
                        let name: Vec<&str> = std::iter::once("dollars")
                            .chain(before.into_iter().rev())
                            .chain(after)
                            .collect();
                        numbers.push((name.join(" "), *v));
                        continue;
                    }
                    let near: Vec<&str> = [k.checked_sub(1), Some(k + 1), Some(k + 2)]
                        .into_iter()
                        .flatten()
                        .filter_map(|j| match toks.get(j) {
                            Some(text::Token::Word(w)) => Some(w.as_str()),
                            _ => None,
                        })
                        .collect();
                    numbers.push((near.join(" "), *v));
                }
            }
        }
        let mut all_numbers: Vec<(f64, Option<Term>)> = Vec::new();
        for t in [said, arg_text_of(tool).as_str()] {
            all_numbers.extend(text::numbers_with_units(t));
        }
        for (_, v) in &numbers {
            all_numbers.push((*v, None));
        }
        // Identifiers are not quantities: an order number or a PR number is never a limit's subject.
        numbers.retain(|(k, _)| {
            let last = text::words(k).pop().unwrap_or_default();
            !matches!(
                last.as_str(),
                "id" | "ids" | "number" | "num" | "no" | "code" | "ref" | "phone" | "year" | "date"
            )
        });
        let input = trace.input.as_ref().map(|i| {
            let mut m = HashMap::new();
            term_map(i, 1.0, &mut m);
            m
        });
        if let Some(i) = &trace.input {
            term_map(i, 0.25, &mut terms);
        }
        let mut context = terms.clone();
        for p in prior {
            let mut e = text::terms(&p.name);
            let mut s = String::new();
            let mut ignored = Vec::new();
            for (k, v) in &p.arguments {
                flat_args(k, v, &mut ignored, &mut s);
                e.extend(text::terms(k));
            }
            e.extend(text::terms(&s));
            for (t, w) in &e {
                context.entry(*t).or_insert(*w);
            }
            evidence.push(e);
        }
        if let Some(call) = tool {
            for k in call.arguments.keys() {
                term_map(k, 1.0, &mut context);
            }
        }
        let tool_parts = tool.map(|c| text::parts(&c.name)).unwrap_or_default();
        let number_terms = numbers.iter().map(|(k, _)| text::terms(k)).collect();
        let durations = [said, arg_text_of(tool).as_str()]
            .iter()
            .flat_map(|t| clause::durations(t))
            .collect();
        let amounts = [said, arg_text_of(tool).as_str()]
            .iter()
            .flat_map(|t| amounts(t))
            .collect();
        let mut senses: HashMap<Term, f32> = HashMap::new();
        for (w, ss) in text::senses_of(terms.iter().map(|(t, w)| (*t, *w))) {
            for s in ss.iter() {
                let e = senses.entry(*s).or_default();
                *e = e.max(w);
            }
        }
        Query {
            terms,
            senses,
            amounts,
            durations,
            number_terms,
            context,
            input,
            tool,
            tool_parts,
            tool_norm: tool.map(|c| norm_tool(&c.name)).unwrap_or_default(),
            tool_first: tool
                .and_then(|c| text::words(&c.name).into_iter().next())
                .map(|w| text::terms(&w).into_iter().map(|(t, _)| t).collect())
                .unwrap_or_default(),
            prior,
            numbers,
            all_numbers,
            evidence,
            refusal: refuses(said),
            // Of a reply, the counts its declining sentences state ("moved
            // twice, so I can't"), not those of an alternative it offers.
            counts: if tool.is_none() {
                said.split(['.', '!', '?', ';', '\n'])
                    .filter(|s| refuses(s))
                    .flat_map(text::counts_stated)
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// How much a candidate names the tool: 1 when it writes the
    /// identifier (or is the policy rule for it), 0.8 when it has all the
    /// name's words (stems or concepts), else 0.4 x the share it has.
    fn tool_match(&self, c: &Cand) -> f64 {
        if self.tool.is_none() || self.tool_parts.is_empty() {
            return 0.0;
        }
        if c.clause
            .idents
            .iter()
            .any(|i| norm_tool(i) == self.tool_norm)
        {
            return 1.0;
        }
        let hit = self
            .tool_parts
            .iter()
            .filter(|(_, all)| {
                all.iter()
                    .any(|t| c.clause.terms.iter().any(|(x, _)| x == t))
            })
            .count();
        let cover = hit as f64 / self.tool_parts.len() as f64;
        if cover >= 0.99 { 0.8 } else { 0.4 * cover }
    }

    /// Whether the line opens with the tool's first word (its verb): "Request changes when ...".
    fn leads(&self, c: &Cand) -> bool {
        !self.tool_first.is_empty() && c.clause.lead.iter().any(|t| self.tool_first.contains(t))
    }

    /// The share of the tool name's words, each as its stem and its
    /// concepts, for which `hit` holds.
    fn cover(&self, hit: impl Fn(&Term, &[Term]) -> bool) -> f64 {
        if self.tool_parts.is_empty() {
            return 0.0;
        }
        let n = self
            .tool_parts
            .iter()
            .filter(|(stem, all)| hit(stem, all))
            .count();
        n as f64 / self.tool_parts.len() as f64
    }

    /// The share of the tool name's words whose very stem is among `w`'s words.
    fn stem_cover(&self, w: &Words) -> f64 {
        self.cover(|stem, _| w.groups.iter().any(|g| g.first() == Some(stem)))
    }

    /// Whether the action is what a line says to do past its limit: half
    /// the tool's words are in what it says, one of them not in the
    /// granted part.
    fn takes(&self, ov: &clause::Overflow) -> bool {
        self.stem_cover(&ov.words) >= 0.5 && self.stem_cover(&ov.own) > 0.0
    }

    /// The share of the tool name's words that `w` has, each as its stem or
    /// one of its concepts (`db` ~ `databases`).
    fn concept_cover(&self, w: &Words) -> f64 {
        self.cover(|_, all| w.groups.iter().any(|g| g.iter().any(|t| all.contains(t))))
    }

    /// As [`Query::concept_cover`], against a term map.
    fn stem_cover_in(&self, m: &HashMap<Term, f32>) -> f64 {
        self.cover(|_, all| all.iter().any(|t| m.contains_key(t)))
    }

    /// Whether the action or the user's words say every content word of
    /// `w` (a word or one of its concepts).
    /// Whether the trace shows two thirds of `w`'s words ("damaged items
    /// worth more than £10" by a damaged item of £14.50).
    fn shows_most(&self, w: &text::Words) -> bool {
        self.shown(w) * 3 >= w.groups.len() * 2
    }

    /// Whether the trace shows every word of `w` ([`Query::shown`]).
    fn shows(&self, w: &text::Words) -> bool {
        self.shown(w) == w.groups.len()
    }

    /// How many of `w`'s words the action or the user's words say (a word
    /// or one of its concepts). A request ("If asked,") is shown by the
    /// user's words, unless `w` names someone else who asks ("If the
    /// manager requests it").
    fn shown(&self, w: &text::Words) -> usize {
        static ASKED: std::sync::OnceLock<(Vec<Term>, Vec<Term>)> = std::sync::OnceLock::new();
        let (asked, others) = ASKED.get_or_init(|| {
            let stems = |s: &str| -> Vec<Term> {
                text::terms(s)
                    .into_iter()
                    .filter(|(_, w)| *w >= 1.0)
                    .map(|(t, _)| t)
                    .collect()
            };
            (
                stems("ask request"),
                stems(
                    "manager supervisor lead team doctor pharmacist landlord admin administrator owner approver director dean advisor adviser parent guardian lawyer attorney police court",
                ),
            )
        });
        let by_user = !w
            .groups
            .iter()
            .any(|g| g.first().is_some_and(|t| others.contains(t)));
        w.groups
            .iter()
            .filter(|g| {
                g.iter().any(|t| {
                    self.context.contains_key(t)
                        || self.input.as_ref().is_some_and(|i| i.contains_key(t))
                }) || (by_user
                    && self.input.is_some()
                    && g.first().is_some_and(|t| asked.contains(t)))
            })
            .count()
    }

    /// Whether the action is about what a line's sentence opens with
    /// ("Home internet can be claimed ..."): its first word past framing
    /// and determiners is in the trace.
    fn about_subject(&self, cl: &clause::Clause) -> bool {
        cl.subject.is_empty() || cl.subject.iter().any(|t| self.context.contains_key(t))
    }

    /// The count a per-unit limit divides by (`attendees: 3` for "per
    /// attendee"): a positive numeric argument, other than `total` itself,
    /// named with the unit's words.
    fn count_of(&self, per: &[(Term, f32)], total: &str) -> Option<(&str, f64)> {
        if per.is_empty() {
            return None;
        }
        self.numbers
            .iter()
            .zip(&self.number_terms)
            .find(|((k, n), kt)| {
                k != total && *n >= 1.0 && kt.iter().any(|(t, _)| per.iter().any(|(p, _)| p == t))
            })
            .map(|((k, n), _)| (k.as_str(), *n))
    }

    /// The action's number a limit speaks of: the argument whose name is
    /// what the limit counts (`amount` ~ `dollars`, `days`), else the only
    /// one when the line is about this tool; as shown, and as a value in
    /// the limit's unit.
    /// Of several arguments named with the limit's words, the one that also
    /// says the line's subject: `nightly_rate`, not `nights`, for "Hotel
    /// rates are capped at 180 dollars a night".
    /// Of arguments that tie, the one whose name says least the line does
    /// not: `amount`, not `order_total`, for "refunds up to $100".
    fn number_for(
        &self,
        b: &clause::Bound,
        about_tool: f64,
        cl: &clause::Clause,
    ) -> Option<Reading> {
        let subject = &cl.subject[..];
        // A margin over another argument (`cheapest_connecting_fare`): that
        // one, named with most of the words, is the base and not the quantity.
        let base = (!b.relative_to.is_empty())
            .then(|| {
                self.numbers
                    .iter()
                    .zip(&self.number_terms)
                    .map(|((k, v), kt)| {
                        let hits = b
                            .relative_to
                            .iter()
                            .filter(|(t, _)| kt.iter().any(|(x, _)| x == t))
                            .count();
                        (hits, k, *v)
                    })
                    // Words that name no quantity ("over the phone") make a
                    // margin only over an argument named with two of them.
                    .filter(|(hits, ..)| {
                        *hits * 2 >= b.relative_to.len().max(2) && (b.margin_named || *hits >= 2)
                    })
                    .max_by_key(|(hits, ..)| *hits)
            })
            .flatten();
        if b.margin_named && base.is_none() {
            return None;
        }
        let mut by_name = None;
        let mut best = (0, 0);
        for ((k, v), kt) in self.numbers.iter().zip(&self.number_terms) {
            if base.is_some_and(|(_, bk, _)| bk == k) {
                continue;
            }
            // `nights: 3` is not what "180 dollars a night" caps (but `days`
            // is what "10 days of leave per year" does).
            // `weeks: 2` is not what "2 days a week" limits either.
            if counts_its_time_unit(b, k) {
                continue;
            }
            let meets = if b.counts_things {
                kt.iter()
                    .any(|(t, w)| *w >= 1.0 && b.about.iter().any(|(x, xw)| *xw >= 1.0 && x == t))
            } else {
                kt.iter().any(|(t, _)| b.about.iter().any(|(x, _)| x == t))
            };
            // Money, or the unit of time it is counted in (`nightly_rate`
            // for "$180 a night").
            let by_unit = || {
                !b.per_word.is_empty()
                    && text::terms(&b.per_word)
                        .iter()
                        .any(|(p, pw)| *pw >= 1.0 && kt.iter().any(|(t, w)| *w >= 1.0 && t == p))
            };
            if !meets
                || (b.money
                    && !kt.iter().any(|(t, _)| text::money_concepts().contains(t))
                    && !by_unit())
            {
                continue;
            }
            // `nightly_rate` is not a length of stay ("trips of up to 5 nights").
            if b.hours.is_some() && b.per_hours.is_none() && per_unit_name(k) {
                continue;
            }
            // The name's own words, not their concepts: `amount` is money,
            // as "Delivery fees" are, but it does not name them.
            // Then the name whose other words the line has (`refund of`),
            // less those it does not (`order` of `order_total`).
            let own = |t: &Term, w: &f32| *w >= 1.0 && !text::terms_of_money(*t);
            // Against what the limit is of ("refund up to $100"), not the
            // whole line ("... per order").
            let of_limit = |t: &Term| b.about.iter().any(|(x, xw)| *xw >= 1.0 && x == t);
            let in_line = kt.iter().filter(|(t, w)| own(t, w) && of_limit(t)).count() as i64;
            let extra = kt.iter().filter(|(t, w)| own(t, w) && !of_limit(t)).count() as i64;
            let score = (
                1 + kt
                    .iter()
                    .filter(|(t, w)| *w >= 1.0 && subject.contains(t))
                    .count(),
                in_line - extra,
            );
            if by_name.is_none() || score > best {
                best = score;
                by_name = Some((k, v));
            }
        }
        if let (Some((k, v)), Some((_, bk, bv))) = (by_name, base) {
            let x = v - bv;
            return Some(Reading {
                key: k.clone(),
                shown: format!(
                    "{k} {} is {} over {bk} {}",
                    fmt_num(*v),
                    fmt_num(x),
                    fmt_num(bv)
                ),
                x,
                says_subject: best.0 >= 2,
            });
        }
        if let Some((k, v)) = by_name {
            let says_subject = best.0 >= 2;
            // `scheduled_duration_hours` against "2 days": the same quantity
            // in another unit is converted to the line's.
            // The unit before a "per" (`days_per_week` counts days).
            let name = text::words(k);
            let per_at = name.iter().position(|w| w == "per").unwrap_or(name.len());
            let key_hours = name[..per_at]
                .iter()
                .rev()
                .find_map(|w| clause::hours_of(w));
            if let (Some(kh), Some(bh)) = (key_hours, b.hours)
                && kh != bh
            {
                let x = v * kh / bh;
                return Some(Reading {
                    key: k.clone(),
                    shown: format!("{k} {} (= {} in the line's unit)", fmt_num(*v), fmt_num(x)),
                    x,
                    says_subject,
                });
            }
            // "2 drinks per attendee" and `attendees: 3`; "180 dollars a
            // night" and a `total` of 750 for `nights: 3`, or "300 dollars a
            // week" and `days: 14` (2 weeks); both, for "40 dollars per
            // attendee per day".
            // The count in the rate's own unit first (`nights`, not `days`,
            // for "a night"); a duration's only in units as long as it, and
            // never less than one.
            let per_time = b
                .per_hours
                .filter(|_| !per_unit_name(k))
                .and_then(|per| {
                    let counts = || {
                        self.numbers.iter().filter_map(|(ck, n)| {
                            let h = time_count(ck)?;
                            (ck != k
                                && n.is_finite()
                                && *n > 0.0
                                && (b.hours.is_none() || h >= per))
                                .then_some((ck.as_str(), *n, h))
                        })
                    };
                    let named = |ck: &str| {
                        text::words(ck)
                            .iter()
                            .any(|w| w.trim_end_matches('s') == b.per_word.trim_end_matches('s'))
                    };
                    counts()
                        .find(|(ck, ..)| named(ck))
                        .or_else(|| counts().find(|(_, _, h)| *h == per))
                        .or_else(|| counts().next())
                        .map(|(ck, n, h)| (ck, (n * h / per).max(1.0)))
                })
                .filter(|(_, n)| n.is_finite());
            let counts: Vec<(&str, f64)> = [self.count_of(&b.per, k), per_time]
                .into_iter()
                .flatten()
                .filter(|(_, n)| *n > 0.0)
                .collect();
            if !counts.is_empty() {
                let x = counts.iter().fold(*v, |x, (_, n)| x / n);
                let over: Vec<String> = counts
                    .iter()
                    .map(|(ck, n)| format!("{ck} {}", fmt_num(*n)))
                    .collect();
                return Some(Reading {
                    key: k.clone(),
                    shown: format!(
                        "{k} {} over {} ({} each)",
                        fmt_num(*v),
                        over.join(" and "),
                        fmt_num(x)
                    ),
                    x,
                    says_subject,
                });
            }
            return Some(Reading {
                key: k.clone(),
                shown: format!("{k} {}", fmt_num(*v)),
                x: *v,
                says_subject,
            });
        }
        (self.numbers.len() == 1 && self.tool.is_some() && about_tool >= 0.99 && b.about.is_empty())
            .then(|| {
                let (k, v) = &self.numbers[0];
                Reading {
                    key: k.clone(),
                    shown: format!("{k} {}", fmt_num(*v)),
                    x: *v,
                    says_subject: false,
                }
            })
    }
}

/// Whether the argument `k` counts the unit of time a rate is per
/// (`nights: 3` for "180 dollars a night", `weeks: 2` for "2 days a week"):
/// a count of that unit, not the quantity the rate caps.
fn counts_its_time_unit(b: &clause::Bound, k: &str) -> bool {
    matches!((b.per_hours, time_count(k)), (Some(per), Some(unit))
        if b.hours.is_none() || unit == per)
}

/// Whether an argument's name counts units of time (`nights`,
/// `num_days`, `total_hours`) and nothing else: the hours of its unit.
fn time_count(name: &str) -> Option<f64> {
    let ws = text::words(name);
    let unit = ws.iter().find_map(|w| clause::hours_of(w))?;
    // `stay_nights`, `rental_days`; not `night_cost`, `daily_rate`.
    (!ws.iter().any(|w| {
        matches!(
            w.as_str(),
            "cost"
                | "costs"
                | "price"
                | "amount"
                | "rate"
                | "fee"
                | "fees"
                | "fare"
                | "charge"
                | "spend"
                | "budget"
                | "usd"
                | "dollars"
                | "per"
                | "each"
                | "avg"
                | "average"
                | "value"
                | "paid"
                | "max"
                | "min"
                | "limit"
        )
    }))
    .then_some(unit)
}

/// Whether an argument's name says it is already counted per unit
/// (`nightly_rate`, `price_per_day`).
/// A time word in a name that is not a count of time (`night_cost`) says
/// so too.
fn per_unit_name(name: &str) -> bool {
    let counts_time = time_count(name).is_some();
    text::words(name).iter().any(|w| {
        (!counts_time && clause::hours_of(w).is_some())
            || matches!(
                w.as_str(),
                "rate"
                    | "daily"
                    | "nightly"
                    | "weekly"
                    | "monthly"
                    | "hourly"
                    | "yearly"
                    | "annual"
                    | "per"
                    | "each"
                    | "unit"
                    | "avg"
                    | "average"
            )
    })
}

/// Words of a constraint's name that say it is a limit, not what it limits.
const GENERIC_LIMIT: &[&str] = &[
    "limit",
    "limits",
    "cap",
    "caps",
    "max",
    "maximum",
    "min",
    "minimum",
    "window",
    "deadline",
    "rule",
    "rules",
    "policy",
    "per",
    "duration",
    "period",
    "threshold",
    "allowance",
    "block",
    "no",
    "only",
];

/// The numbers of a text that stand alone (`4180`, `$1,250.50`), not inside
/// a code or identifier (`CLM-20877`, `#88121`, `v2`).
fn amounts(text: &str) -> Vec<f64> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len()
            && (b[i].is_ascii_digit()
                || ((b[i] == b',' || b[i] == b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
        {
            i += 1;
        }
        let glued = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'#' | b'_' | b'/');
        let before = start.checked_sub(1).map(|j| b[j]);
        if before.is_some_and(glued) || b.get(i).is_some_and(|c| glued(*c)) {
            continue;
        }
        if let Ok(v) = text[start..i].replace(',', "").parse::<f64>() {
            out.push(v);
        }
    }
    out
}

/// The words of consent in what the user said.
fn consent_terms(input: &str) -> Vec<(Term, f32)> {
    const CONSENT: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "confirm",
        "confirmed",
        "agree",
        "agreed",
        "consent",
        "accept",
        "ok",
        "okay",
        "understand",
    ];
    let said: Vec<String> = text::words(input);
    let found: Vec<&str> = CONSENT
        .iter()
        .copied()
        .filter(|c| said.iter().any(|w| w == c))
        .collect();
    if found.is_empty() {
        return Vec::new();
    }
    text::terms(&found.join(" "))
}

/// The string values of a call's arguments, as text.
fn arg_text_of(call: Option<&Call>) -> String {
    let mut s = String::new();
    if let Some(c) = call {
        let mut ignored = Vec::new();
        for (k, v) in &c.arguments {
            flat_args(k, v, &mut ignored, &mut s);
        }
    }
    s
}

fn flat_args(k: &str, v: &Value, numbers: &mut Vec<(String, f64)>, text: &mut String) {
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                numbers.push((k.to_string(), x));
            }
        }
        Value::String(s) => {
            if let Ok(x) = s
                .trim()
                .trim_start_matches('$')
                .replace(',', "")
                .parse::<f64>()
                && x.is_finite()
            {
                numbers.push((k.to_string(), x));
            } else {
                text.push_str(s);
                text.push(' ');
            }
        }
        Value::Object(m) => {
            for (k2, v2) in m {
                text.push_str(k2);
                text.push(' ');
                flat_args(k2, v2, numbers, text);
            }
        }
        Value::Array(a) => {
            // A list's length is a count (`interviewers: [a, b, c]` is 3 interviewers).
            numbers.push((k.to_string(), a.len() as f64));
            for x in a {
                let mut ignored = Vec::new();
                flat_args(k, x, &mut ignored, text);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// A number argument as a number (`150`, `"150"`, `"$150"`).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s
            .trim()
            .trim_start_matches('$')
            .replace(',', "")
            .parse()
            .ok(),
        _ => None,
    }
    // "NaN" and "inf" are no amounts.
    .filter(|x: &f64| x.is_finite())
}

/// `delete_account`, `resetPassword`: one word of letters, digits and `_`, `.` or `-`.
fn is_identifier(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && s.chars().next().is_some_and(char::is_alphabetic)
}

/// A tool name without case or separators (`issue_refund` = `IssueRefund`).
fn norm_tool(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn same_tool(a: &str, b: &str) -> bool {
    norm_tool(a) == norm_tool(b)
}

/// How words of saying (`include`, `reply`, `share`) count in an overlap.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Saying {
    /// As any other word.
    Plain,
    /// Left out: only what is said about counts.
    Dropped,
    /// As done: a reply does them by being a reply.
    Done,
}

/// The share of `of`'s words that `by` has (each word through itself or one of its concepts).
/// With `senses`, a word also counts when the other side has a word of
/// one of its WordNet senses.
fn share(
    of: &Words,
    by: &HashMap<Term, f32>,
    saying: Saying,
    senses: Option<&HashMap<Term, f32>>,
) -> f64 {
    let words: Vec<(&Vec<Term>, Option<&text::Senses>)> = of
        .groups
        .iter()
        .zip(
            of.senses
                .iter()
                .map(Option::as_ref)
                .chain(std::iter::repeat(None)),
        )
        .filter(|(g, _)| saying != Saying::Dropped || !text::is_saying(g[0]))
        .collect();
    if words.is_empty() {
        return 0.0;
    }
    // A word met only through a sense counts half.
    let hit: f64 = words
        .iter()
        .map(|(g, ss)| {
            if (saying == Saying::Done && text::is_saying(g[0]))
                || g.iter().any(|t| by.contains_key(t))
            {
                1.0
            } else if let (Some(q), Some(ss)) = (senses, ss)
                && ss.iter().any(|s| q.contains_key(s))
            {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    hit / words.len() as f64
}

/// How much of a prohibition's scope `by` has: of a scope that lists
/// several things, half the whole and half the part it has most of, so that
/// doing one of them ("write queries against production databases") counts
/// though the others' words are absent.
fn scope_overlap(p: &clause::Prohibition, by: &HashMap<Term, f32>) -> f64 {
    let whole = overlap(&p.scope, by);
    let part = p
        .alternatives
        .iter()
        .map(|a| overlap(a, by))
        .fold(0.0, f64::max);
    whole.max(0.5 * whole + 0.5 * part)
}

fn overlap(of: &Words, by: &HashMap<Term, f32>) -> f64 {
    share(of, by, Saying::Plain, None)
}

/// A reply that declines: "I can't", "I'm unable", "I'm not able to", "sorry, ...".
fn refuses(said: &str) -> bool {
    let s = said.to_lowercase().replace('’', "'");
    [
        "can't",
        "cannot",
        "can not",
        "unable to",
        "not able to",
        "won't be able",
        "not allowed",
        "not permitted",
        "i'm afraid",
        "not in a position",
        "isn't something i can",
        "is not something i can",
        "i must decline",
        "i have to decline",
        "not authorized",
        "not authorised",
        "i don't have access",
        "i'm not able",
        "i'm afraid",
        "can only",
        "should never",
        "i won't",
        "not something i",
        "declined",
        "decline to",
        "refused to",
        "i won't",
        "will not",
    ]
    .iter()
    .any(|m| s.contains(m))
}

fn what(c: &Cand) -> &'static str {
    match c.ty {
        ArtifactType::Prompt => "prompt line",
        ArtifactType::Policy if c.rule.is_some() => "policy rule",
        _ => "policy line",
    }
}

fn quoted(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn surface(text: &str) -> HashMap<Term, String> {
    let mut out = HashMap::new();
    for w in text::words(text) {
        for (t, _) in text::terms(&w) {
            out.entry(t).or_insert_with(|| w.clone());
        }
    }
    out
}

fn snippet(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
