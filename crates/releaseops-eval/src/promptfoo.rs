//! Turning a promptfoo config (`promptfooconfig.yaml`) into a releaseops
//! suite: its tests become cases (`vars` the input, array values expanded
//! into every combination as promptfoo does, `defaultTest` merged in), and
//! each `assert` entry the judge that checks the same thing. Whatever has no
//! faithful translation (JavaScript, Python, webhooks, files, transforms,
//! metrics computed by embeddings) is listed, never dropped in silence.
//!
//! The suite has no `target`: it runs the bundle's own model, which is what
//! promptfoo's `prompts` and `providers` become in releaseops.

use serde_json::{Map, Value, json};

/// A translated config.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The suite, as a JSON value ready to be written as YAML.
    pub suite: Value,
    pub cases: usize,
    /// Everything that could not be translated.
    pub untranslated: Vec<Untranslated>,
    /// What the translation decided (the judge model, prompts, providers).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Untranslated {
    /// The test (its description, or `tests[N]`), or `config`.
    pub test: String,
    /// The assertion type or field.
    pub what: String,
    pub why: String,
}

/// The grader when the config names none.
const DEFAULT_JUDGE_MODEL: &str = "gpt-4o-mini";
/// promptfoo's `similar` threshold when none is given.
const SIMILAR_THRESHOLD: f64 = 0.75;
/// Cases one config may expand to (array vars multiply).
const MAX_CASES: usize = 10_000;
/// Assertions one case may carry.
const MAX_JUDGES_PER_CASE: usize = 200;

/// Translates the promptfoo config `text` into the suite `suite_id`.
pub fn import(text: &str, suite_id: &str) -> Result<Imported, String> {
    let config: Value = releaseops_format::yaml::from_str(text).map_err(|e| e.to_string())?;
    let Value::Object(root) = &config else {
        return Err("the config is not a mapping".into());
    };
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut skipped = |test: &str, what: &str, why: &str| {
        out.push(Untranslated {
            test: test.into(),
            what: what.into(),
            why: why.into(),
        })
    };
    let judge = grader(root.get("defaultTest"));
    if let Some(p) = root
        .get("defaultTest")
        .and_then(|d| d.get("options"))
        .and_then(|o| o.get("provider"))
        && !judge.2
    {
        skipped(
            "config",
            "defaultTest.options.provider",
            &format!(
                "grader {} has no translation (only openai:, anthropic:, google: or vertex: ids without a config); {DEFAULT_JUDGE_MODEL} grades instead",
                provider_name(p)
            ),
        );
    }
    if let Some(Value::Object(d)) = root.get("defaultTest") {
        for key in d
            .keys()
            .filter(|k| !["vars", "assert", "options"].contains(&k.as_str()))
        {
            skipped(
                "config",
                &format!("defaultTest.{key}"),
                "no releaseops equivalent",
            );
        }
        if let Some(Value::Object(o)) = d.get("options") {
            for key in o.keys().filter(|k| *k != "provider") {
                skipped(
                    "config",
                    &format!("defaultTest.options.{key}"),
                    "no releaseops equivalent",
                );
            }
        }
    }
    notes.push(match &judge {
        (Some(p), m, true) => format!("model-graded assertions use {p}:{m} (from the config)"),
        (_, m, _) => format!(
            "model-graded assertions use {m} (the config names no grader); change `model` in the suite to use another"
        ),
    });
    if let Some(p) = root.get("prompts") {
        let n = p.as_array().map_or(1, Vec::len);
        notes.push(format!(
            "{n} prompt(s): in releaseops prompts belong to the bundle (bundle create --artifact ROLE=file:PATH); the suite runs the bundle's own prompts and model"
        ));
    }
    if let Some(p) = root.get("providers") {
        let names: Vec<String> = match p {
            Value::Array(a) => a.iter().map(provider_name).collect(),
            other => vec![provider_name(other)],
        };
        notes.push(format!(
            "providers {}: the bundle's model config takes their place (bundle create --model ...)",
            names.join(", ")
        ));
    }
    for key in [
        "scenarios",
        "nunjucksFilters",
        "extensions",
        "derivedMetrics",
        "redteam",
        "env",
        "evaluateOptions",
    ] {
        if root.contains_key(key) {
            skipped("config", key, "no releaseops equivalent");
        }
    }
    let default = match root.get("defaultTest") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            skipped(
                "config",
                "defaultTest",
                "from a file: inline it to import it",
            );
            Map::new()
        }
    };
    let tests: Vec<Value> = match root.get("tests") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(s)) => {
            skipped(
                "config",
                "tests",
                &format!("tests from {s}: inline them to import them"),
            );
            Vec::new()
        }
        Some(_) => return Err("`tests` is neither a list nor a file".into()),
    };
    let mut cases = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, t) in tests.iter().enumerate() {
        let label = t
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("tests[{i}]"));
        let Value::Object(t) = t else {
            skipped(&label, "test", "a test from a file: inline it to import it");
            continue;
        };
        for key in ["threshold", "provider", "providerOutput", "metadata"] {
            if t.contains_key(key) {
                skipped(&label, key, "no releaseops equivalent for a test");
            }
        }
        let options = t.get("options").and_then(Value::as_object);
        if let Some(o) = options {
            for key in o.keys().filter(|k| *k != "disableDefaultAsserts") {
                skipped(
                    &label,
                    &format!("options.{key}"),
                    "no releaseops equivalent",
                );
            }
        }
        // vars: defaultTest's, then the test's own.
        let mut vars = default
            .get("vars")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        match t.get("vars") {
            None => {}
            Some(Value::Object(m)) => vars.extend(m.clone()),
            Some(_) => {
                skipped(
                    &label,
                    "vars",
                    "vars from a file: inline them to import them",
                );
                continue;
            }
        }
        if let Some((k, _)) = vars
            .iter()
            .find(|(_, v)| v.to_string().contains("\"file://"))
        {
            skipped(
                &label,
                &format!("vars.{k}"),
                "a value read from a file: inline it to import the test",
            );
            continue;
        }
        let disable_default = options
            .and_then(|o| o.get("disableDefaultAsserts"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut asserts: Vec<Value> = Vec::new();
        if !disable_default && let Some(Value::Array(a)) = default.get("assert") {
            asserts.extend(a.iter().cloned());
        }
        if let Some(Value::Array(a)) = t.get("assert") {
            asserts.extend(a.iter().cloned());
        }
        let mut judges = Vec::new();
        for a in &asserts {
            let a = resolve_ref(&config, a);
            match translate(&a, &judge) {
                Ok(j) => judges.push(j),
                Err((what, why)) => skipped(&label, &what, &why),
            }
        }
        if judges.is_empty() {
            skipped(
                &label,
                "test",
                if asserts.is_empty() {
                    "no assertions: promptfoo shows its output for review, a suite needs a check"
                } else {
                    "none of its assertions could be translated, so it is not imported"
                },
            );
            continue;
        }
        let combos = vars
            .values()
            .try_fold(1usize, |n, v| match v {
                Value::Array(a) if !a.is_empty() => n.checked_mul(a.len()),
                _ => Some(n),
            })
            .filter(|n| cases.len() + n <= MAX_CASES);
        let Some(_) = combos else {
            return Err(format!(
                "the config expands to more than {MAX_CASES} cases (array vars multiply)"
            ));
        };
        if judges.len() > MAX_JUDGES_PER_CASE {
            return Err(format!(
                "'{label}' has more than {MAX_JUDGES_PER_CASE} assertions"
            ));
        }
        let expanded = expand(&vars);
        let n = expanded.len();
        for (k, input) in expanded.into_iter().enumerate() {
            let base = slug(&label);
            let mut id = if n > 1 {
                format!("{base}-{}", k + 1)
            } else {
                base
            };
            let mut dup = 2;
            while !ids.insert(id.clone()) {
                id = format!("{}-{dup}", slug(&label));
                dup += 1;
            }
            let mut case = Map::new();
            case.insert("id".into(), Value::String(id));
            if label != format!("tests[{i}]") {
                case.insert("description".into(), Value::String(label.clone()));
            }
            case.insert("input".into(), Value::Object(input));
            case.insert("assertions".into(), Value::Array(judges.clone()));
            cases.push(Value::Object(case));
        }
    }
    let mut suite = Map::new();
    suite.insert("id".into(), Value::String(suite_id.to_string()));
    let description = root
        .get("description")
        .and_then(Value::as_str)
        .map(|d| format!("{d} (imported from promptfoo)"))
        .unwrap_or_else(|| "Imported from promptfoo".to_string());
    suite.insert("description".into(), Value::String(description));
    suite.insert("pass_threshold".into(), json!(1.0));
    let n = cases.len();
    suite.insert("cases".into(), Value::Array(cases));
    Ok(Imported {
        suite: Value::Object(suite),
        cases: n,
        untranslated: out,
        notes,
    })
}

/// `openai:gpt-4o-mini`, `{id: ...}`, or a file.
fn provider_name(p: &Value) -> String {
    match p {
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_string(),
        _ => "(unnamed)".into(),
    }
}

/// The grader: `defaultTest.options.provider` when set. Returns
/// (provider, model, named in the config).
fn grader(default: Option<&Value>) -> (Option<String>, String, bool) {
    // Only a plain id of a provider releaseops speaks: a provider with its
    // own config (an internal proxy, Azure, Bedrock) is never swapped for a
    // public endpoint.
    let named = default
        .and_then(|d| d.get("options"))
        .and_then(|o| o.get("provider"))
        .and_then(Value::as_str);
    match named.and_then(split_provider) {
        Some((p, m)) => (Some(p), m, true),
        None => (None, DEFAULT_JUDGE_MODEL.to_string(), false),
    }
}

/// `openai:gpt-4o-mini` -> (openai, gpt-4o-mini);
/// `anthropic:messages:claude-x` -> (anthropic, claude-x); `vertex:` and
/// `google:` are Gemini.
fn split_provider(s: &str) -> Option<(String, String)> {
    let (head, rest) = s.split_once(':')?;
    let model = rest.rsplit(':').next()?.to_string();
    let provider = match head {
        "openai" => "openai",
        "anthropic" => "anthropic",
        "vertex" | "google" => "gemini",
        _ => return None,
    };
    (!model.is_empty()).then(|| (provider.to_string(), model))
}

/// `{$ref: '#/assertionTemplates/x'}` replaced by what it points to.
fn resolve_ref(config: &Value, a: &Value) -> Value {
    match a.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => config.pointer(&r[1..]).cloned().unwrap_or(a.clone()),
        _ => a.clone(),
    }
}

/// Every combination of the array-valued vars (promptfoo runs each).
fn expand(vars: &Map<String, Value>) -> Vec<Map<String, Value>> {
    let mut out = vec![Map::new()];
    for (k, v) in vars {
        let choices: Vec<Value> = match v {
            Value::Array(a) if !a.is_empty() => a.clone(),
            other => vec![other.clone()],
        };
        out = out
            .into_iter()
            .flat_map(|m| {
                choices.iter().map(move |c| {
                    let mut m = m.clone();
                    m.insert(k.clone(), c.clone());
                    m
                })
            })
            .collect();
        if out.len() > MAX_CASES {
            break;
        }
    }
    out
}

/// A case id from a description: letters, digits, '-' and '_'.
fn slug(label: &str) -> String {
    let mut s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let s = s.trim_matches('_');
    let s: String = s.chars().take(60).collect();
    if s.is_empty() { "case".into() } else { s }
}

type Why = (String, String);

/// One promptfoo assertion as a releaseops judge.
fn translate(a: &Value, grader: &(Option<String>, String, bool)) -> Result<Value, Why> {
    let Value::Object(a) = a else {
        return Err(("assert".into(), "not a mapping".into()));
    };
    let kind = a
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let fail = |why: &str| Err((kind.clone(), why.to_string()));
    for key in ["transform", "contextTransform", "provider", "rubricPrompt"] {
        if a.contains_key(key) {
            return Err((format!("{kind} ({key})"), "no releaseops equivalent".into()));
        }
    }
    let value = a.get("value");
    if value
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("file://"))
    {
        return fail("its value is read from a file: inline it to import it");
    }
    if value.is_some_and(|v| v.to_string().contains("{{")) {
        return fail(
            "its value is a template of the test's vars, which suite judges do not render",
        );
    }
    let text = || value.and_then(Value::as_str).map(str::to_string);
    // Every item must be text (a number counts as its digits): none is dropped.
    let list = || -> Option<Vec<String>> {
        value.and_then(Value::as_array).and_then(|a| {
            a.iter()
                .map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
    };
    let threshold = a.get("threshold").and_then(Value::as_f64);
    let judge = |t: &str, config: Value| json!({"type": t, "config": config});
    let model_judge = |rubric: String, pass_mark: f64| {
        let mut c =
            json!({"rubric": rubric, "model": grader.1, "scale": [0, 1], "pass_mark": pass_mark});
        if let Some(p) = &grader.0 {
            c["provider"] = json!(p);
        }
        judge("llm_judge", c)
    };
    let contains_each = |items: Vec<String>, sensitive: bool, mode: &str| {
        let members: Vec<Value> = items
            .into_iter()
            .map(|e| {
                judge(
                    "contains",
                    json!({"expected": e, "case_sensitive": sensitive}),
                )
            })
            .collect();
        judge("composite", json!({"mode": mode, "judges": members}))
    };
    let mut j = match kind.as_str() {
        "equals" => match value {
            Some(Value::String(s)) => judge(
                "exact_match",
                json!({"expected": s, "case_sensitive": true}),
            ),
            // An object or list: the output must be that JSON.
            Some(v @ (Value::Object(_) | Value::Array(_) | Value::Number(_) | Value::Bool(_))) => {
                judge("json_schema", json!({"schema": {"const": v}}))
            }
            _ => return fail("equals needs a value"),
        },
        "contains" | "icontains" | "not-contains" | "not-icontains" => {
            let Some(e) = text() else {
                return fail("needs a text value");
            };
            let sensitive = !kind.contains("icontains");
            let t = if kind.starts_with("not-") {
                "not_contains"
            } else {
                "contains"
            };
            judge(t, json!({"expected": e, "case_sensitive": sensitive}))
        }
        "contains-any" | "icontains-any" | "contains-all" | "icontains-all" => {
            let Some(items) = list().filter(|l| !l.is_empty()) else {
                return fail("needs a list of texts");
            };
            let mode = if kind.ends_with("-any") { "any" } else { "all" };
            contains_each(items, !kind.starts_with('i'), mode)
        }
        "starts-with" => {
            let Some(e) = text() else {
                return fail("needs a text value");
            };
            judge(
                "regex",
                json!({"pattern": format!("^{}", regex::escape(&e))}),
            )
        }
        "regex" => {
            let Some(p) = text() else {
                return fail("needs a pattern");
            };
            if regex::Regex::new(&p).is_err() {
                return fail(
                    "a JavaScript pattern this regex engine cannot compile (lookaround, backreferences)",
                );
            }
            judge("regex", json!({"pattern": p}))
        }
        "is-json" => match value {
            None | Some(Value::Null) => judge("json_valid", json!({})),
            Some(schema @ Value::Object(_)) => judge("json_schema", json!({"schema": schema})),
            Some(_) => return fail("its value is not a JSON schema"),
        },
        "contains-json" => match value {
            None | Some(Value::Null) => judge("json_valid", json!({"anywhere": true})),
            Some(_) => {
                return fail(
                    "a schema for JSON inside the output has no releaseops judge (is-json checks a whole-JSON output against a schema)",
                );
            }
        },
        "llm-rubric" | "g-eval" => {
            let Some(r) = text().filter(|r| !r.trim().is_empty()) else {
                return fail("needs a rubric text");
            };
            // promptfoo's default bars: 0.5 for llm-rubric, 0.7 for g-eval.
            let bar = if kind == "g-eval" { 0.7 } else { 0.5 };
            model_judge(r, threshold.unwrap_or(bar).clamp(0.0, 1.0))
        }
        "similar" => {
            let Some(r) = text() else {
                return fail("needs the reference text (a list of references has no translation)");
            };
            // promptfoo measures embeddings; a grading model judges meaning here.
            model_judge(
                format!(
                    "Score how closely the output matches this reference in meaning (1: the same meaning, 0: unrelated). Reference: {r}"
                ),
                threshold.unwrap_or(SIMILAR_THRESHOLD).clamp(0.0, 1.0),
            )
        }
        "latency" => match threshold {
            Some(ms) if ms >= 0.0 => judge("max_latency_ms", json!({"max": ms})),
            _ => return fail("latency needs a threshold in milliseconds"),
        },
        "cost" => match threshold {
            Some(usd) if usd >= 0.0 => judge("max_cost", json!({"max": usd})),
            _ => return fail("cost needs a threshold in dollars"),
        },
        "javascript" | "python" | "webhook" | "ruby" => {
            return fail(
                "runs code; write it as a suite judge (e.g. regex, json_schema, tool_call) or a command target",
            );
        }
        "" => return Err(("assert".into(), "it has no type".into())),
        other if other.starts_with("not-") => {
            return fail("no releaseops judge is the negation of this assertion");
        }
        _ => return fail("no releaseops judge checks this"),
    };
    match a.get("weight").map(Value::as_f64) {
        None => {}
        Some(Some(w)) if w.is_finite() && w >= 0.0 => j["weight"] = json!(w),
        Some(_) => return fail("its weight is not a number of at least 0"),
    }
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_expansion_and_escapes() {
        assert_eq!(
            slug("Greets the user, politely!"),
            "greets_the_user_politely"
        );
        assert_eq!(slug("??"), "case");
        let vars: Map<String, Value> =
            serde_json::from_value(json!({"a": [1, 2], "b": ["x", "y", "z"], "c": "k"})).unwrap();
        assert_eq!(expand(&vars).len(), 6);
        assert_eq!(
            split_provider("anthropic:messages:claude-sonnet-4-5"),
            Some(("anthropic".into(), "claude-sonnet-4-5".into()))
        );
    }
}
