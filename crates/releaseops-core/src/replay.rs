//! Replay: recorded production inputs (the content a trace captured) made
//! into an evaluation suite, so a candidate runs them through any target
//! and is judged against what production did, with the same runner,
//! reports, exit codes and gates as every other suite.
//!
//! Each trace with a captured input becomes a case: its input as the case's
//! `message`, production's reply as `expected_output`, and assertions of
//! sameness: the tools production called are called again (`tool_call`),
//! and the reply's words agree (`similarity`). A trace that went wrong in
//! production (an error, or an action its bundle's rules forbid, as
//! attribution finds) becomes a regression case instead: the offending tool
//! call must not happen again. The suite is written to
//! `.releaseops/evals/<id>.yaml` in one recorded change, under a first line
//! that holds the digest of the rest: a suite a replay wrote, unchanged
//! since, may be written again; any other is never overwritten.

use releaseops_attribution::{Assessment, Index, Trace};
use releaseops_eval::providers::ToolDef;
use releaseops_format::yaml::Node;
use releaseops_store::Store;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::error::{CoreError, Result};
use crate::evals::suite_rel_path;

/// The description's first words of a suite replay wrote.
const MARK: &str = "Replay of production traces";

/// The first line of a suite replay wrote: the digest of the rest, so a
/// later replay overwrites only a suite nobody has edited since.
const STAMP: &str = "# Written by releaseops replay (edit it, and replay will not overwrite it): ";

/// The suite's text under its stamp.
fn stamped(body: &str) -> String {
    format!(
        "{STAMP}{}\n{body}",
        releaseops_format::hash::sha256_prefixed(body.as_bytes())
    )
}

/// What a suite already at the path is, for a replay about to write it.
#[derive(Debug, PartialEq)]
enum Found {
    /// Written by a replay, unchanged since.
    Untouched,
    /// Written by a replay, changed since.
    Edited,
    /// No replay's stamp: by hand (or by a replay older than the stamp).
    Unstamped,
}

/// Reads a suite's stamp. Line endings a checkout turned into CRLF and a
/// byte-order mark an editor added are not edits.
fn found(text: &str) -> Found {
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let Some((first, body)) = text.split_once('\n') else {
        return Found::Unstamped;
    };
    match first.strip_prefix(STAMP) {
        None => Found::Unstamped,
        Some(d) if d == releaseops_format::hash::sha256_prefixed(body.as_bytes()) => {
            Found::Untouched
        }
        Some(_) => Found::Edited,
    }
}

/// Which traces, and how to make them a suite.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub suite: String,
    /// The version whose production traffic is replayed.
    pub source_id: String,
    pub source_version: String,
    /// Where the traffic was (said in the suite's description).
    pub env: Option<String>,
    /// Take the target (and rate limits, concurrency) from this suite;
    /// none: the bundle's own model.
    pub target_from: Option<String>,
    /// Only the traces that went wrong (regression cases).
    pub incidents_only: bool,
    /// The least word agreement with production's reply a case asks for.
    pub min_similarity: f64,
    /// The candidate the suite is about to run against: checked to be
    /// runnable (bundle, target, keys, tools) before the suite is written.
    pub candidate: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub suite: String,
    pub path: String,
    pub traces_read: usize,
    #[serde(flatten)]
    pub counts: Counts,
    #[serde(flatten)]
    pub git: releaseops_store::GitOutcome,
}

/// What went into a replay suite, and what was left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub cases: usize,
    /// Of the cases, those made from traces that went wrong.
    pub incidents: usize,
    /// Traces left out: no captured input (content capture was off).
    pub without_input: usize,
    /// Left out on a model target, which answers one turn and is sent no
    /// tool's result: incidents whose offending call came after others.
    pub beyond_one_turn: usize,
    /// Left out on a model target: traces calling a tool by a name no
    /// provider takes (`crm.lookup`).
    pub unnameable_tools: usize,
}

/// The tools recorded traces called, each typed by the arguments it was
/// called with: what a model target must offer for the calls to happen
/// again. A name no provider accepts is left out.
pub(crate) fn recorded_tools<'a>(traces: impl IntoIterator<Item = &'a Trace>) -> Vec<ToolDef> {
    let mut by_name: Vec<(&str, Vec<Value>)> = Vec::new();
    for t in traces {
        for c in &t.tool_calls {
            if !ToolDef::valid_name(&c.name) {
                continue;
            }
            let args = Value::Object(c.arguments.clone());
            match by_name.iter_mut().find(|(n, _)| *n == c.name) {
                Some((_, seen)) => seen.push(args),
                None => by_name.push((&c.name, vec![args])),
            }
        }
    }
    by_name
        .iter()
        .map(|(n, calls)| ToolDef::from_calls(n, "", calls))
        .collect()
}

/// `k` of `v` at random, by a deterministic shuffle (xorshift): a seeded
/// sample is the same sample.
pub fn sample<T>(mut v: Vec<T>, k: usize, seed: u64) -> Vec<T> {
    let mut x = crate::ablation::XorShift::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    for i in (1..v.len()).rev() {
        v.swap(i, (x.next() % (i as u64 + 1)) as usize);
    }
    v.truncate(k);
    v
}

/// A replay suite's text, and what went into it.
#[derive(Debug, Clone)]
pub struct SuiteText {
    pub text: String,
    pub counts: Counts,
}

/// The suite's text: cases from the traces, the target from `target_from`.
///
/// On a model target (the bundle's own model), which answers one turn and
/// gets no tool's result, a case asserts only what one turn can do: the
/// trace's first call, and a reply's words only when no tool was called.
pub fn suite_text(
    store: &Store,
    req: &ExportRequest,
    traces: &[(Trace, bool)],
    index: &Index,
) -> Result<SuiteText> {
    let secrets = releaseops_eval::secrets::Redactor::from_environment();
    let mut doc = Map::new();
    doc.insert("id".into(), json!(req.suite));
    doc.insert(
        "description".into(),
        json!(format!(
            "{MARK} of {}@{}{}: each case is a recorded input, judged against what production did",
            req.source_id,
            req.source_version,
            req.env
                .as_deref()
                .map(|e| format!(" in {e}"))
                .unwrap_or_default()
        )),
    );
    doc.insert("pass_threshold".into(), json!(1.0));
    if let Some(from) = &req.target_from {
        let text = crate::evals::suite_text(store, from)?;
        let v: Value = releaseops_format::yaml::from_str(&text)?;
        for key in [
            "target",
            "target_artifacts",
            "concurrency",
            "rate_limits",
            "pricing",
            "vars",
        ] {
            if let Some(x) = v.get(key) {
                doc.insert(key.into(), x.clone());
            }
        }
    }
    let on_model = doc
        .get("target")
        .is_none_or(|t| t.get("type").and_then(Value::as_str) == Some("model"));
    let mut out = Counts::default();
    let mut cases = Vec::new();
    let mut replayed: Vec<&Trace> = Vec::new();
    for (t, failed) in traces {
        let Some(input) = t.input.as_deref().filter(|i| !i.trim().is_empty()) else {
            out.without_input += 1;
            continue;
        };
        let a = index.explain(t);
        let broke = a.overall_assessment == Assessment::Contradicts;
        let incident = *failed || broke;
        if req.incidents_only && !incident {
            continue;
        }
        // One turn of a model makes the first call (or the same call again);
        // a case asserts that call, or for an incident the offending last.
        let asserted = if incident {
            t.tool_calls.last()
        } else {
            t.tool_calls.first()
        };
        if on_model && asserted.is_some_and(|c| !ToolDef::valid_name(&c.name)) {
            out.unnameable_tools += 1;
            continue;
        }
        if on_model && incident && !crate::ablation::one_turn(&t.tool_calls) {
            out.beyond_one_turn += 1;
            continue;
        }
        let short: String = t
            .trace_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        let mut assertions = Vec::new();
        let mut tools: Vec<&str> = Vec::new();
        for c in &t.tool_calls {
            if !tools.contains(&c.name.as_str()) {
                tools.push(&c.name);
            }
        }
        if on_model {
            tools.truncate(1);
        }
        let mut description = format!("production trace {}", t.trace_id);
        if incident {
            // The call that went wrong must not happen again.
            if let Some(last) = t.tool_calls.last() {
                assertions.push(
                    json!({"type": "tool_call", "config": {"name": last.name, "called": false}}),
                );
            }
            if let Some(c) = &a.contradiction {
                description = format!(
                    "{description}: {} ({} {})",
                    c.reason, c.artifact_ref, c.location
                );
            } else {
                description = format!("{description}: failed in production");
            }
        } else {
            for name in &tools {
                assertions.push(json!({"type": "tool_call", "config": {"name": name}}));
            }
            // Production's reply came after its tools' results, which one
            // turn of a model target never gets.
            if t.output.as_deref().is_some_and(|o| !o.trim().is_empty())
                && (!on_model || t.tool_calls.is_empty())
            {
                assertions
                    .push(json!({"type": "similarity", "config": {"min": req.min_similarity}}));
            }
        }
        if assertions.is_empty() {
            // An incident that was a reply: its words must not come back as they were.
            if let Some(o) = t.output.as_deref().filter(|o| !o.trim().is_empty()) {
                assertions.push(json!({"type": "not_contains", "config": {"expected": o.chars().take(200).collect::<String>()}}));
            } else {
                continue;
            }
        }
        let mut case = Map::new();
        case.insert("id".into(), json!(format!("trace-{short}")));
        case.insert("description".into(), json!(description));
        case.insert(
            "tags".into(),
            json!(["replay", if incident { "incident" } else { "production" }]),
        );
        case.insert("input".into(), json!({"message": input}));
        if !incident && let Some(o) = &t.output {
            case.insert("expected_output".into(), json!(o));
        }
        case.insert("assertions".into(), Value::Array(assertions));
        // The suite is committed: whatever production's content holds that
        // looks like a credential, and every secret of this environment,
        // stays out of it.
        let mut case = Value::Object(case);
        releaseops_traces::redact::value("", &mut case);
        secrets.redact_json(&mut case);
        cases.push(case);
        replayed.push(t);
        // Counted once its case is written: an incident with nothing to
        // assert is no regression case.
        out.incidents += usize::from(incident);
    }
    if cases.is_empty() {
        return Err(CoreError::invalid(
            format!(
                "no trace of {}@{} can be replayed: {} read, {} without a captured input{}",
                req.source_id,
                req.source_version,
                traces.len(),
                out.without_input,
                if out.beyond_one_turn + out.unnameable_tools > 0 {
                    format!(
                        ", {} beyond one turn of a model target, {} calling a tool no provider can name",
                        out.beyond_one_turn, out.unnameable_tools
                    )
                } else {
                    String::new()
                }
            ),
            "replay needs the inputs production saw: set traces.capture_content: true in .releaseops/config.yaml (or capture them in the agent's spans), and widen --since or --env; to replay multi-step traces, --target-from a suite whose target is the agent (command or http)",
        ));
    }
    // The bundle's own model is offered the tools the replayed traces
    // called, so the calls the cases assert about can happen again (or not).
    let recorded = recorded_tools(replayed.iter().copied());
    if on_model && !recorded.is_empty() {
        let mut target = doc
            .remove("target")
            .unwrap_or_else(|| json!({"type": "model"}));
        let mut listed = target
            .get("tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for mut t in recorded {
            if !listed.iter().any(|l| l.get("name") == Some(&json!(t.name))) {
                // A schema holds names, not values: an argument whose name
                // the redactors would change is left out rather than
                // written (a name turned into "[redacted]" breaks the schema).
                if let Some(props) = t
                    .parameters
                    .get_mut("properties")
                    .and_then(Value::as_object_mut)
                {
                    props.retain(|k, _| {
                        releaseops_traces::redact::text(k) == k.as_str()
                            && secrets.redact(k) == k.as_str()
                    });
                }
                listed.push(json!({"name": t.name, "parameters": t.parameters}));
            }
        }
        target["tools"] = Value::Array(listed);
        doc.insert("target".into(), target);
    }
    doc.insert("cases".into(), Value::Array(cases));
    let text = stamped(&Node::from_json(&Value::Object(doc)).to_yaml());
    let suite = releaseops_eval::suite::Suite::parse(text.as_bytes()).map_err(|e| {
        CoreError::invalid(
            format!("the replay suite '{}' does not read back: {e}", req.suite),
            "report this: a replay suite should always be valid",
        )
    })?;
    if let Some((id, version)) = &req.candidate {
        crate::evals::preflight(store, &suite, &req.suite, id, version)?;
    }
    out.cases = suite.cases.len();
    Ok(SuiteText { text, counts: out })
}

/// Writes the replay suite of a version's production traces (read by the
/// caller from the trace store: each trace with whether it failed).
pub fn export(ctx: &Ctx<'_>, req: &ExportRequest, read: &[(Trace, bool)]) -> Result<Exported> {
    crate::sync::retrying(ctx.store, || export_once(ctx, req, read))
}

fn export_once(ctx: &Ctx<'_>, req: &ExportRequest, read: &[(Trace, bool)]) -> Result<Exported> {
    let store = ctx.store;
    releaseops_format::names::validate_role(&req.suite).map_err(|_| {
        CoreError::invalid(
            format!("'{}' is not a valid suite id", req.suite),
            "suite ids use letters, digits, '-' and '_'",
        )
    })?;
    let bundle = crate::attribution::bundle_text(store, &req.source_id, &req.source_version)?;
    let index = Index::new(&bundle);
    let written = suite_text(store, req, read, &index)?;
    let rel = suite_rel_path(&req.suite);
    let tx = store.begin()?;
    if let Some(old) = releaseops_store::fsx::read_regular_opt(&store.dir().join(&rel), 64 << 20)? {
        let why = match found(&String::from_utf8_lossy(&old)) {
            Found::Untouched => None,
            Found::Edited => Some("was written by a replay and edited since"),
            Found::Unstamped => Some(
                "has no replay's stamp on its first line (written by hand, or by a replay of a release before the stamp)",
            ),
        };
        if let Some(why) = why {
            return Err(CoreError::refused(
                format!("eval suite '{}' exists and {why}", req.suite),
                format!(
                    "pick another --suite id; a replay overwrites only a suite it wrote that nobody has changed (to replace it, `git rm .releaseops/{rel}` first)"
                ),
            ));
        }
    }
    let mut tx = tx;
    tx.write(rel.clone(), written.text);
    let git = tx.commit(
        &format!(
            "releaseops: replay suite {} from {}@{} production traces",
            req.suite, req.source_id, req.source_version
        ),
        ctx.author().as_ref(),
    )?;
    Ok(Exported {
        suite: req.suite.clone(),
        path: format!(".releaseops/{rel}"),
        traces_read: read.len(),
        counts: written.counts,
        git: git.git,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_seed_shuffles() {
        // The seed whose state would be 0 samples at random too.
        let v: Vec<u32> = (0..20).collect();
        let s = super::sample(v.clone(), 20, 0x9e37_79b9_7f4a_7c15);
        assert_ne!(s, v);
        let mut sorted = s.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, v);
    }
}
