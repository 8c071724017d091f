//! The bundle manifest, `.releaseops/bundles/<id>/<version>.yaml`, schema 2, with
//! the existing tool's keys in its order (inventory section 3.3).

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::yaml::{Node, StrictString};
use crate::{FormatError, hash, names, pyjson};

pub const SCHEMA_VERSION: u32 = 2;

/// Where an artifact's text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactSource {
    /// A promptops reference, `prompts/<prompt_id>@<version>`.
    Ref(String),
    /// A file relative to the repository root.
    Path(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    pub source: ArtifactSource,
    pub content_hash: Option<String>,
}

impl ArtifactRef {
    /// The reference or path, whichever this artifact has.
    pub fn location(&self) -> &str {
        match &self.source {
            ArtifactSource::Ref(r) | ArtifactSource::Path(r) => r,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub provider: String,
    pub model: String,
    /// Kept as written: an integer `1` and a float `1.0` hash differently.
    pub temperature: Number,
    pub max_tokens: u64,
    pub parameters: Map<String, Value>,
}

impl ModelConfig {
    /// `ModelConfig.to_dict()`: parameters only when non-empty.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("provider".into(), Value::String(self.provider.clone()));
        m.insert("model".into(), Value::String(self.model.clone()));
        m.insert(
            "temperature".into(),
            Value::Number(self.temperature.clone()),
        );
        m.insert("max_tokens".into(), Value::Number(self.max_tokens.into()));
        if !self.parameters.is_empty() {
            m.insert("parameters".into(), Value::Object(self.parameters.clone()));
        }
        Value::Object(m)
    }

    pub fn canonical_json(&self) -> String {
        pyjson::dumps_canonical(&self.to_json())
    }

    pub fn hash(&self) -> String {
        hash::sha256_prefixed(self.canonical_json().as_bytes())
    }

    pub fn validate(&self) -> Result<(), FormatError> {
        if self.provider.trim().is_empty() {
            return Err(FormatError::invalid("model_config.provider is empty"));
        }
        if self.model.trim().is_empty() {
            return Err(FormatError::invalid("model_config.model is empty"));
        }
        let t = self.temperature.as_f64().unwrap_or(f64::NAN);
        if !(0.0..=2.0).contains(&t) {
            return Err(FormatError::invalid(format!(
                "model_config.temperature must be between 0.0 and 2.0, got {}",
                pyjson::number_repr(&self.temperature)
            )));
        }
        if self.max_tokens == 0 {
            return Err(FormatError::invalid(
                "model_config.max_tokens must be at least 1",
            ));
        }
        check_finite(&Value::Object(self.parameters.clone()))
    }

    fn to_node(&self) -> Node {
        let mut m = vec![
            ("provider".into(), Node::str(&self.provider)),
            ("model".into(), Node::str(&self.model)),
            (
                "temperature".into(),
                Node::from_json(&Value::Number(self.temperature.clone())),
            ),
            ("max_tokens".into(), Node::UInt(self.max_tokens)),
        ];
        if !self.parameters.is_empty() {
            m.push((
                "parameters".into(),
                Node::from_json(&Value::Object(self.parameters.clone())),
            ));
        }
        Node::Map(m)
    }
}

fn check_finite(v: &Value) -> Result<(), FormatError> {
    match v {
        Value::Number(n) if n.as_f64().is_some_and(|f| !f.is_finite()) => Err(
            FormatError::invalid("model parameters must be finite numbers"),
        ),
        Value::Array(a) => a.iter().try_for_each(check_finite),
        Value::Object(o) => o.values().try_for_each(check_finite),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BundleMetadata {
    pub id: String,
    pub version: String,
    pub created_at: String,
    pub created_by: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BundleManifest {
    pub schema_version: u32,
    pub metadata: BundleMetadata,
    pub prompts: IndexMap<String, ArtifactRef>,
    pub policies: IndexMap<String, ArtifactRef>,
    pub model_config: Option<ModelConfig>,
    pub bundle_hash: Option<String>,
}

impl BundleManifest {
    /// Every artifact, prompts first, with its section name.
    pub fn artifacts(&self) -> impl Iterator<Item = (&'static str, &String, &ArtifactRef)> {
        self.prompts
            .iter()
            .map(|(r, a)| ("prompt", r, a))
            .chain(self.policies.iter().map(|(r, a)| ("policy", r, a)))
    }

    /// The bundle hash recomputed from the stored content hashes and model config.
    pub fn compute_hash(&self) -> String {
        let model = self.model_config.as_ref().map(|m| m.hash());
        hash::bundle_hash(
            self.artifacts()
                .filter_map(|(_, _, a)| a.content_hash.as_deref()),
            model.as_deref(),
        )
    }

    /// Fails when `bundle_hash` disagrees with the manifest's own content, which
    /// means the file was edited by hand after it was created.
    ///
    /// A manifest without `bundle_hash` cannot be checked, so it fails too
    /// (the existing tool always writes one).
    pub fn check_hash(&self) -> Result<(), FormatError> {
        let Some(stored) = &self.bundle_hash else {
            return Err(FormatError::invalid(
                "the manifest has no bundle_hash, so its integrity cannot be checked",
            ));
        };
        let computed = self.compute_hash();
        if *stored != computed {
            return Err(FormatError::invalid(format!(
                "bundle_hash {stored} does not match the manifest's content ({computed}); the manifest was edited after creation"
            )));
        }
        Ok(())
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let raw: RawManifest = crate::yaml::from_bytes_plain(bytes)?;
        raw.into_manifest()
    }

    pub fn to_node(&self) -> Node {
        let md = &self.metadata;
        let mut top = vec![
            (
                "schema_version".into(),
                Node::UInt(self.schema_version.into()),
            ),
            (
                "metadata".into(),
                Node::Map(vec![
                    ("id".into(), Node::str(&md.id)),
                    ("version".into(), Node::str(&md.version)),
                    ("created_at".into(), Node::str(&md.created_at)),
                    ("created_by".into(), Node::str(&md.created_by)),
                    ("description".into(), Node::str(&md.description)),
                ]),
            ),
            (
                "artifacts".into(),
                Node::Map(vec![
                    ("prompts".into(), artifacts_node(&self.prompts)),
                    ("policies".into(), artifacts_node(&self.policies)),
                ]),
            ),
        ];
        if let Some(mc) = &self.model_config {
            top.push(("model_config".into(), mc.to_node()));
        }
        if let Some(h) = &self.bundle_hash {
            top.push(("bundle_hash".into(), Node::str(h)));
        }
        Node::Map(top)
    }

    pub fn to_yaml(&self) -> String {
        self.to_node().to_yaml()
    }
}

fn artifacts_node(map: &IndexMap<String, ArtifactRef>) -> Node {
    Node::Map(
        map.iter()
            .map(|(role, a)| {
                let mut m = vec![match &a.source {
                    ArtifactSource::Ref(r) => ("ref".to_string(), Node::str(r)),
                    ArtifactSource::Path(p) => ("path".to_string(), Node::str(p)),
                }];
                if let Some(h) = &a.content_hash {
                    m.push(("content_hash".into(), Node::str(h)));
                }
                (role.clone(), Node::Map(m))
            })
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    schema_version: Option<u32>,
    metadata: RawMetadata,
    #[serde(default)]
    artifacts: Option<RawArtifacts>,
    #[serde(default)]
    model_config: Option<RawModelConfig>,
    #[serde(default)]
    bundle_hash: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    id: StrictString,
    version: StrictString,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawArtifacts {
    #[serde(default)]
    prompts: Option<IndexMap<String, RawArtifact>>,
    #[serde(default)]
    policies: Option<IndexMap<String, RawArtifact>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifact {
    #[serde(default, rename = "ref")]
    ref_: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    content_hash: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModelConfig {
    provider: String,
    model: String,
    #[serde(default)]
    temperature: Option<Number>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

impl RawModelConfig {
    fn into_config(self) -> Result<ModelConfig, FormatError> {
        let mc = ModelConfig {
            provider: self.provider,
            model: self.model,
            temperature: self
                .temperature
                .unwrap_or_else(|| Number::from_f64(0.7).unwrap_or_else(|| 0.into())),
            max_tokens: self.max_tokens.unwrap_or(4096),
            parameters: self.parameters.unwrap_or_default(),
        };
        mc.validate()?;
        Ok(mc)
    }
}

fn convert_artifacts(
    section: &str,
    raw: Option<IndexMap<String, RawArtifact>>,
) -> Result<IndexMap<String, ArtifactRef>, FormatError> {
    let mut out = IndexMap::new();
    for (role, a) in raw.unwrap_or_default() {
        names::validate_role(&role)?;
        let source = match (a.ref_, a.path) {
            (Some(r), None) => ArtifactSource::Ref(r),
            (None, Some(p)) => ArtifactSource::Path(p),
            _ => {
                return Err(FormatError::invalid(format!(
                    "artifacts.{section}.{role} needs exactly one of 'ref' and 'path'"
                )));
            }
        };
        if let Some(h) = &a.content_hash
            && !hash::is_valid(h)
        {
            return Err(FormatError::invalid(format!(
                "artifacts.{section}.{role}.content_hash '{h}' is not sha256:<64 hex digits>"
            )));
        }
        out.insert(
            role,
            ArtifactRef {
                source,
                content_hash: a.content_hash,
            },
        );
    }
    Ok(out)
}

impl RawManifest {
    fn into_manifest(self) -> Result<BundleManifest, FormatError> {
        let id = self.metadata.id.0;
        let version = self.metadata.version.0;
        names::validate_bundle_id(&id)?;
        names::validate_version(&version)?;
        let arts = self.artifacts.unwrap_or_default();
        if let Some(h) = &self.bundle_hash
            && !hash::is_valid(h)
        {
            return Err(FormatError::invalid(format!(
                "bundle_hash '{h}' is not sha256:<64 hex digits>"
            )));
        }
        Ok(BundleManifest {
            schema_version: self.schema_version.unwrap_or(1),
            metadata: BundleMetadata {
                id,
                version,
                created_at: self.metadata.created_at.unwrap_or_default(),
                created_by: self.metadata.created_by.unwrap_or_default(),
                description: self.metadata.description.unwrap_or_default(),
            },
            prompts: convert_artifacts("prompts", arts.prompts)?,
            policies: convert_artifacts("policies", arts.policies)?,
            model_config: self
                .model_config
                .map(RawModelConfig::into_config)
                .transpose()?,
            bundle_hash: self.bundle_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_120: &str = "schema_version: 2
metadata:
  id: support-agent
  version: 1.2.0
  created_at: '2026-11-21T21:31:11.457058+00:00'
  created_by: cli
  description: Add tool + safety policies
artifacts:
  prompts:
    system:
      ref: prompts/onboarding@v1.0.1
      content_hash: sha256:4397363a7bf9d814e15d67069f11944bec66f66072a2fd33a7c5b64692b753e5
  policies:
    tools:
      path: policies/tools/refunds.yaml
      content_hash: sha256:0a7a16be74182444682f5c6cf62c22c444d4f894ca05ae12d71d28e674717e7c
    safety:
      path: policies/safety/limits.yaml
      content_hash: sha256:79fbf921de527ad71837d928f9ef3a432b0da15ec8c8c23da299e724407b9a94
model_config:
  provider: anthropic
  model: claude-sonnet-4-5
  temperature: 0.2
  max_tokens: 4096
bundle_hash: sha256:f725f959f2aae8022cf89da9b343d484049557ff5ce524cedf955821bd6ee8b9
";

    #[test]
    fn python_manifest_round_trips_byte_for_byte() {
        let m = BundleManifest::parse(SAMPLE_120.as_bytes()).unwrap();
        m.check_hash().unwrap();
        assert_eq!(m.to_yaml(), SAMPLE_120);
    }

    #[test]
    fn hand_edit_is_detected() {
        let edited = SAMPLE_120.replace("temperature: 0.2", "temperature: 0.9");
        let m = BundleManifest::parse(edited.as_bytes()).unwrap();
        assert!(m.check_hash().unwrap_err().to_string().contains("edited"));
    }

    #[test]
    fn bad_manifests_are_refused() {
        for (doc, needle) in [
            (
                SAMPLE_120.replace("version: 1.2.0", "version: 1.10"),
                "bare number",
            ),
            (
                SAMPLE_120.replace("temperature: 0.2", "temperature: 3"),
                "between 0.0 and 2.0",
            ),
            (
                SAMPLE_120.replace("id: support-agent", "id: ../../x"),
                "bundle id",
            ),
            (
                SAMPLE_120.replace("      ref: prompts", "      path: x\n      ref: prompts"),
                "exactly one",
            ),
            (
                SAMPLE_120.replace("max_tokens: 4096", "max_tokens: lots"),
                "line 24 column 15",
            ),
        ] {
            let e = BundleManifest::parse(doc.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
