//! The json_schema judge: every JSON Schema draft through boon, checked
//! against its meta-schema; no reference outside the schema is ever loaded.

use super::*;

/// The options of this family's judges, as their `config` may give them
/// (which of them a judge takes is [`known_options`]; a type is checked
/// here, `null` is the same as absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Options {
    schema: Option<Value>,
}

/// A JSON Schema compiled once at load (any draft; 2020-12 when the schema
/// names none). It may refer only to itself: nothing is ever loaded from a
/// file or the network, so a suite cannot make a judge read the machine.
pub struct CompiledSchema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledSchema")
    }
}

/// The schema's own address, never fetched (it is added as a resource).
pub(super) const SCHEMA_URL: &str = "https://releaseops.invalid/judge-schema.json";

/// Refuses every reference outside the schema.
pub(super) struct NoLoader;

impl boon::UrlLoader for NoLoader {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!(
            "'{url}' is outside the schema: references may only point into the schema itself"
        )
        .into())
    }
}

impl CompiledSchema {
    /// Compiles `schema`, checking it against its draft's meta-schema.
    pub fn new(schema: &Value) -> Result<CompiledSchema, String> {
        let mut compiler = boon::Compiler::new();
        compiler.use_loader(Box::new(NoLoader));
        compiler
            .add_resource(SCHEMA_URL, schema.clone())
            .map_err(|e| e.to_string())?;
        let mut schemas = boon::Schemas::new();
        let index = compiler
            .compile(SCHEMA_URL, &mut schemas)
            .map_err(|e| format!("{e:#}").replace(SCHEMA_URL, "the schema"))?;
        Ok(CompiledSchema { schemas, index })
    }

    /// Up to `limit` reasons `doc` does not match, each with where in the
    /// document; empty when it matches.
    pub fn errors(&self, doc: &Value, limit: usize) -> Vec<String> {
        let Err(top) = self.schemas.validate(doc, self.index) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut stack = vec![&top];
        while let Some(e) = stack.pop() {
            if out.len() == limit {
                break;
            }
            if e.causes.is_empty() {
                out.push(format!("{} at '{}'", e.kind, e.instance_location));
            } else {
                stack.extend(e.causes.iter().rev());
            }
        }
        out
    }
}

/// Builds a schema judge from its `config`.
pub(super) fn build(
    kind: &str,
    cfg: Map<String, Value>,
    at: &dyn std::fmt::Display,
) -> Result<JudgeSpec, SuiteError> {
    let mut opts: Options = options(cfg, at)?;
    Ok(match kind {
        "json_schema" => {
            let schema = opts
                .schema
                .take()
                .ok_or_else(|| err(at, "'schema' (a JSON Schema) is required"))?;
            let validator = CompiledSchema::new(&schema)
                .map_err(|e| err(at, format!("the schema does not compile: {e}")))?;
            JudgeSpec::JsonSchema {
                validator: std::sync::Arc::new(validator),
            }
        }
        other => return Err(err(at, format!("'{other}' is not a schema judge"))),
    })
}

/// Judges one output with a schema judge.
pub(super) fn judge(
    spec: &JudgeSpec,
    out: &AgentOutput,
    verdict: &dyn Fn(bool, String, Value) -> JudgeResult,
) -> JudgeResult {
    match spec {
        JudgeSpec::JsonSchema { validator } => match serde_json::from_str::<Value>(&out.output) {
            Err(e) => verdict(false, format!("output is not JSON: {e}"), Value::Null),
            Ok(doc) => {
                let errors = validator.errors(&doc, 3);
                if errors.is_empty() {
                    verdict(true, "output matches the schema".into(), Value::Null)
                } else {
                    verdict(
                        false,
                        format!("output does not match the schema: {}", errors.join("; ")),
                        Value::Null,
                    )
                }
            }
        },
        _ => verdict(
            false,
            format!("{} is not a schema judge", spec.name()),
            Value::Null,
        ),
    }
}
