//! Text judges: exact_match, contains, not_contains, regex (the existing
//! tool's Python flags or imsx letters; compiled once per pattern) and
//! json_valid, and similarity (the output's words against an expected text:
//! a replayed answer against what production said).

use super::*;

/// The options of this family's judges, as their `config` may give them
/// (which of them a judge takes is [`known_options`]; a type is checked
/// here, `null` is the same as absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Options {
    expected: Option<String>,
    case_sensitive: Option<bool>,
    pattern: Option<String>,
    flags: Option<Value>,
    anywhere: Option<bool>,
    min: Option<f64>,
}

/// Python `re` flag bits the existing tool's suites use.
pub(super) fn python_flags(bits: u64, at: &dyn std::fmt::Display) -> Result<String, SuiteError> {
    let mut out = String::new();
    for (bit, flag) in [(2u64, 'i'), (8, 'm'), (16, 's'), (64, 'x')] {
        if bits & bit != 0 {
            out.push(flag);
        }
    }
    // re.UNICODE (32) is Python 3's default and Rust's; anything else has no equivalent.
    if bits & !(2 | 8 | 16 | 32 | 64) != 0 {
        return Err(err(
            at,
            format!(
                "regex flags {bits} include flags with no equivalent here (supported: 2 IGNORECASE, 8 MULTILINE, 16 DOTALL, 64 VERBOSE)"
            ),
        ));
    }
    Ok(out)
}

/// Suites repeat the same patterns across thousands of cases; compiling each
/// once keeps a 10,000-case suite fast to load. Bounded, per thread.
pub(super) const REGEX_CACHE_MAX: usize = 4096;

thread_local! {
    static REGEX_CACHE: std::cell::RefCell<std::collections::HashMap<String, Arc<Regex>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

pub(super) fn compile(
    pattern: &str,
    flags: &str,
    at: &dyn std::fmt::Display,
) -> Result<Arc<Regex>, SuiteError> {
    let full: std::borrow::Cow<'_, str> = if flags.is_empty() {
        pattern.into()
    } else {
        format!("(?{flags}){pattern}").into()
    };
    if let Some(re) = REGEX_CACHE.with(|c| c.borrow().get(full.as_ref()).cloned()) {
        return Ok(re);
    }
    let re = regex::RegexBuilder::new(full.as_ref())
        .size_limit(1 << 20)
        .build()
        .map(Arc::new)
        .map_err(|e| {
            err(
                at,
                format!(
                    "invalid regex {pattern:?}: {}",
                    e.to_string().lines().last().unwrap_or("error")
                ),
            )
        })?;
    REGEX_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= REGEX_CACHE_MAX {
            c.clear();
        }
        c.insert(full.into_owned(), re.clone());
    });
    Ok(re)
}

/// The first JSON object or array inside `text` (after prose, in a code
/// fence, ...), as promptfoo's `contains-json` finds it.
pub(super) fn embedded_json(text: &str) -> Option<Value> {
    text.char_indices()
        .filter(|(_, c)| *c == '{' || *c == '[')
        // Bounded: an output of a million braces is not a million parses.
        .take(1000)
        .find_map(|(i, _)| {
            serde_json::Deserializer::from_str(&text[i..])
                .into_iter::<Value>()
                .next()
                .and_then(Result::ok)
        })
}

/// Builds a text judge from its `config`.
pub(super) fn build(
    kind: &str,
    cfg: Map<String, Value>,
    at: &dyn std::fmt::Display,
) -> Result<JudgeSpec, SuiteError> {
    let mut opts: Options = options(cfg, at)?;
    Ok(match kind {
        "exact_match" => JudgeSpec::ExactMatch {
            expected: opts.expected.take(),
            case_sensitive: opts.case_sensitive.unwrap_or(true),
        },
        "contains" => JudgeSpec::Contains {
            expected: opts.expected.take(),
            case_sensitive: opts.case_sensitive.unwrap_or(false),
        },
        "not_contains" => JudgeSpec::NotContains {
            expected: opts
                .expected
                .take()
                .ok_or_else(|| err(at, "'expected' is required"))?,
            case_sensitive: opts.case_sensitive.unwrap_or(false),
        },
        "regex" => {
            let pattern = opts
                .pattern
                .take()
                .ok_or_else(|| err(at, "'pattern' is required"))?;
            let flags = match opts.flags.as_ref() {
                None | Some(Value::Null) => String::new(),
                Some(Value::Number(n)) => python_flags(n.as_u64().unwrap_or(u64::MAX), at)?,
                Some(Value::String(s)) if s.chars().all(|c| "imsx".contains(c)) => s.clone(),
                Some(other) => {
                    return Err(err(
                        at,
                        format!(
                            "'flags' must be a Python flags number or letters from imsx, got {other}"
                        ),
                    ));
                }
            };
            JudgeSpec::Regex {
                regex: compile(&pattern, &flags, at)?,
            }
        }
        "json_valid" => JudgeSpec::JsonValid {
            anywhere: opts.anywhere.unwrap_or(false),
        },
        "similarity" => {
            let min = finite(opts.min, "min", at)?.unwrap_or(0.6);
            if !(0.0..=1.0).contains(&min) {
                return Err(err(
                    at,
                    format!("'min' is a share of words, from 0 to 1; got {min}"),
                ));
            }
            JudgeSpec::Similarity {
                expected: opts.expected.take(),
                min,
            }
        }
        other => return Err(err(at, format!("'{other}' is not a text judge"))),
    })
}

/// Judges one output with a text judge.
pub(super) fn judge(
    spec: &JudgeSpec,
    out: &AgentOutput,
    case: &CaseView<'_>,
    verdict: &dyn Fn(bool, String, Value) -> JudgeResult,
) -> JudgeResult {
    let fold = |s: &str, cs: bool| if cs { s.to_string() } else { s.to_lowercase() };
    match spec {
        JudgeSpec::ExactMatch {
            expected,
            case_sensitive,
        }
        | JudgeSpec::Contains {
            expected,
            case_sensitive,
        } => {
            let Some(exp) = expected.as_deref().or(case.expected_output) else {
                return verdict(
                    false,
                    "no expected value: give config.expected or the case's expected_output".into(),
                    Value::Null,
                );
            };
            let (o, e) = (
                fold(&out.output, *case_sensitive),
                fold(exp, *case_sensitive),
            );
            let exact = matches!(spec, JudgeSpec::ExactMatch { .. });
            let ok = if exact { o == e } else { o.contains(&e) };
            let what = if exact { "equals" } else { "contains" };
            verdict(
                ok,
                format!("output {}{what} {exp:?}", if ok { "" } else { "not " })
                    .replace("not equals", "does not equal")
                    .replace("not contains", "does not contain"),
                json!({"expected": exp}),
            )
        }
        JudgeSpec::NotContains {
            expected,
            case_sensitive,
        } => {
            let ok = !fold(&out.output, *case_sensitive).contains(&fold(expected, *case_sensitive));
            verdict(
                ok,
                if ok {
                    format!("output does not contain {expected:?}")
                } else {
                    format!("output contains {expected:?}")
                },
                Value::Null,
            )
        }
        JudgeSpec::Regex { regex } => match regex.find(&out.output) {
            Some(m) => verdict(
                true,
                format!("/{}/ matched {:?}", regex.as_str(), m.as_str()),
                json!({"match": m.as_str()}),
            ),
            None => verdict(
                false,
                format!("/{}/ did not match", regex.as_str()),
                Value::Null,
            ),
        },
        JudgeSpec::JsonValid { anywhere: false } => {
            match serde_json::from_str::<Value>(&out.output) {
                Ok(_) => verdict(true, "output is valid JSON".into(), Value::Null),
                Err(e) => verdict(false, format!("output is not JSON: {e}"), Value::Null),
            }
        }
        JudgeSpec::JsonValid { anywhere: true } => match embedded_json(&out.output) {
            Some(v) => verdict(true, "output contains JSON".into(), json!({"json": v})),
            None => verdict(
                false,
                "output contains no JSON object or array".into(),
                Value::Null,
            ),
        },
        JudgeSpec::Similarity { expected, min } => {
            let Some(exp) = expected.as_deref().or(case.expected_output) else {
                return verdict(
                    false,
                    "no expected text: give config.expected or the case's expected_output".into(),
                    Value::Null,
                );
            };
            let ratio = similarity(&out.output, exp);
            let mut r = verdict(
                ratio >= *min,
                format!(
                    "{:.0}% of the words agree with the expected text (at least {:.0}% wanted)",
                    ratio * 100.0,
                    min * 100.0
                ),
                json!({"similarity": ratio, "min": min}),
            );
            r.score = ratio;
            r
        }
        _ => verdict(
            false,
            format!("{} is not a text judge", spec.name()),
            Value::Null,
        ),
    }
}

/// How much two texts agree, word by word (case and punctuation aside):
/// the share of words in matching runs, 1 for the same words in order.
pub fn similarity(a: &str, b: &str) -> f64 {
    let norm = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(20_000)
            .map(str::to_lowercase)
            .collect()
    };
    let (x, y) = (norm(a), norm(b));
    if x.is_empty() && y.is_empty() {
        return 1.0;
    }
    let (x, y): (Vec<&str>, Vec<&str>) = (
        x.iter().map(String::as_str).collect(),
        y.iter().map(String::as_str).collect(),
    );
    f64::from(similar::TextDiff::configure().diff_slices(&x, &y).ratio())
}
