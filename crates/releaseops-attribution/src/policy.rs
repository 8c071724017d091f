//! Policy files as rules. The existing tool's three shapes are read
//! (`tools: [{name, allowed, conditions: [{field, operator, value}]}]`,
//! `constraints: [{type, max_amount | max_value | max_*, ...}]`,
//! `retrieval: {sources}`), plus `requires: [tool, ...]` on a tool (tools
//! that must run earlier in the same trace). Any other list of mappings is
//! read as rules named by their `name`, `id` or `type`; a file that is not
//! YAML mappings at all is read line by line, like a prompt.

use serde_json::Value;

/// A comparison a condition states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
    Ne,
}

impl Op {
    pub(crate) fn parse(s: &str) -> Option<Op> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "lt" | "<" | "less_than" => Op::Lt,
            "lte" | "le" | "<=" | "max" | "at_most" => Op::Lte,
            "gt" | ">" | "greater_than" => Op::Gt,
            "gte" | "ge" | ">=" | "min" | "at_least" => Op::Gte,
            "eq" | "==" | "=" | "equals" | "is" => Op::Eq,
            "ne" | "!=" | "neq" | "not_equals" => Op::Ne,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Eq => "eq",
            Op::Ne => "ne",
        }
    }

    /// Whether `x op bound` holds.
    pub(crate) fn holds(self, x: f64, bound: f64) -> bool {
        match self {
            Op::Lt => x < bound,
            Op::Lte => x <= bound,
            Op::Gt => x > bound,
            Op::Gte => x >= bound,
            Op::Eq => (x - bound).abs() < 1e-9,
            Op::Ne => (x - bound).abs() >= 1e-9,
        }
    }

    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Eq => "=",
            Op::Ne => "!=",
        }
    }
}

/// One condition of a tool rule.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) field: String,
    pub(crate) op: Op,
    pub(crate) value: Value,
}

/// What kind of rule a policy entry is.
#[derive(Debug, Clone)]
pub(crate) enum RuleKind {
    Tool {
        name: String,
        allowed: bool,
        conditions: Vec<Condition>,
        requires: Vec<String>,
    },
    /// A constraint with numeric bounds read from `max_<field>` / `min_<field>`.
    Constraint { bounds: Vec<(String, Op, f64)> },
    /// Anything else: matched by its words.
    Other,
}

/// A rule of a policy file.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// What the location names: the tool, the constraint's type, the entry's name.
    pub(crate) name: String,
    /// `tools[0]`, `constraints[1]`.
    pub(crate) path: String,
    /// The rule as one line of text (for matching and the snippet).
    pub(crate) text: String,
    pub(crate) kind: RuleKind,
}

/// The rules of a policy file, or `None` when it is not YAML rules (then it
/// is read line by line).
pub(crate) fn rules(content: &str) -> Option<Vec<Rule>> {
    let doc: Value = releaseops_format::yaml::from_str(content).ok()?;
    let Value::Object(top) = doc else { return None };
    let mut out = Vec::new();
    for (key, v) in &top {
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(_) = item {
                        out.push(rule(key, i, item));
                    }
                }
            }
            Value::Object(m) => {
                // `retrieval: {sources: [...]}` and other mappings: one rule.
                out.push(Rule {
                    name: key.clone(),
                    path: key.clone(),
                    text: format!("{key}: {}", flat(&Value::Object(m.clone()))),
                    kind: RuleKind::Other,
                });
            }
            _ => out.push(Rule {
                name: key.clone(),
                path: key.clone(),
                text: format!("{key}: {}", flat(v)),
                kind: RuleKind::Other,
            }),
        }
    }
    (!out.is_empty()).then_some(out)
}

fn rule(key: &str, i: usize, item: &Value) -> Rule {
    let s = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
    let name = s("name")
        .or_else(|| s("id"))
        .or_else(|| s("type"))
        .or_else(|| s("tool"))
        .unwrap_or_else(|| format!("{key} {}", i + 1));
    let path = format!("{key}[{i}]");
    let text = flat(item);
    let is_tool = key == "tools" || item.get("allowed").is_some() || item.get("tool").is_some();
    let kind = if is_tool {
        let conditions = item
            .get("conditions")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| {
                        Some(Condition {
                            field: c.get("field")?.as_str()?.to_string(),
                            op: Op::parse(
                                c.get("operator").and_then(Value::as_str).unwrap_or("eq"),
                            )?,
                            value: c.get("value")?.clone(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let requires = match item.get("requires") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(t)) => vec![t.clone()],
            _ => Vec::new(),
        };
        RuleKind::Tool {
            name: name.clone(),
            allowed: item.get("allowed").and_then(Value::as_bool).unwrap_or(true),
            conditions,
            requires,
        }
    } else {
        let bounds: Vec<(String, Op, f64)> = item
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let n = v.as_f64()?;
                if let Some(f) = k.strip_prefix("max_") {
                    Some((f.to_string(), Op::Lte, n))
                } else if let Some(f) = k.strip_prefix("min_") {
                    Some((f.to_string(), Op::Gte, n))
                } else if k == "max" || k == "limit" {
                    Some((String::new(), Op::Lte, n))
                } else if k == "min" {
                    Some((String::new(), Op::Gte, n))
                } else {
                    None
                }
            })
            .collect();
        if bounds.is_empty() {
            RuleKind::Other
        } else {
            RuleKind::Constraint { bounds }
        }
    };
    Rule {
        name,
        path,
        text,
        kind,
    }
}

/// A YAML value as one line: `name: issue_refund, allowed: true, conditions: amount lte 100`.
fn flat(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}: {}", flat(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(a) => a.iter().map(flat).collect::<Vec<_>>().join("; "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
