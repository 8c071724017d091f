//! A bundle as `GET /v1/resolve/{ref}` answers it, verified by the client.
//!
//! A client over a network trusts nothing the answer says about itself:
//! every artifact's text is checked against its content hash, the bundle
//! hash is recomputed from those hashes and the model config (as the store
//! does for a manifest), the identity is checked against the reference
//! asked for, and everything derived from the text (the template inside a
//! prompt, a policy's parsed data, the telemetry attributes) is derived
//! here, from the checked text, never taken from the answer.

use std::sync::Arc;

use indexmap::IndexMap;
use releaseops_format::hash;
use releaseops_format::manifest::ModelConfig;
use releaseops_format::names;
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::bundle::{Content, LoadedBundle, Policy, Prompt};
use crate::error::{ArtifactProblem, LoadError};
use crate::reference::BundleRef;

/// The longest free-text field (description, creator) an answer may carry.
const MAX_FIELD: usize = 64 * 1024;

#[derive(Deserialize)]
struct Answer {
    id: String,
    version: String,
    bundle_hash: String,
    environment: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    created_by: String,
    model: Option<Model>,
    #[serde(default)]
    prompts: IndexMap<String, Artifact>,
    #[serde(default)]
    policies: IndexMap<String, Artifact>,
}

#[derive(Deserialize)]
struct Model {
    provider: String,
    model: String,
    temperature: Number,
    max_tokens: u64,
    #[serde(default)]
    parameters: Map<String, Value>,
}

#[derive(Deserialize)]
struct Artifact {
    /// A prompt's origin (`prompts/<id>@<version>` or a repository path).
    #[serde(default)]
    reference: Option<String>,
    /// A policy's repository path.
    #[serde(default)]
    path: Option<String>,
    content_hash: String,
    content: String,
}

impl LoadedBundle {
    /// The bundle in `body` (the JSON `GET /v1/resolve/{reference}`
    /// answers), verified: [`LoadError::Tampered`] when anything in it does
    /// not hold, [`LoadError::Corrupt`] when it is not such an answer.
    pub fn from_resolved(reference: &str, body: &[u8]) -> Result<LoadedBundle, LoadError> {
        let wanted = BundleRef::parse(reference)?;
        let origin = format!("the server's answer for {reference}");
        let tampered = |message: String| LoadError::tampered(&origin, message);
        let a: Answer = serde_json::from_slice(body).map_err(|e| {
            LoadError::corrupt(&origin, format!("it is not a resolved bundle: {e}"))
        })?;
        let (id_ok, place_ok) = match &wanted {
            BundleRef::Env { id, env } => (a.id == *id, a.environment.as_deref() == Some(env)),
            BundleRef::Pinned { id, version } => (
                a.id == *id,
                a.version == *version && a.environment.is_none(),
            ),
        };
        if !id_ok || !place_ok {
            return Err(tampered(format!(
                "it is {}=={}{}, not what {reference} names",
                a.id,
                a.version,
                a.environment
                    .as_deref()
                    .map(|e| format!(" in {e}"))
                    .unwrap_or_default()
            )));
        }
        names::validate_version(&a.version).map_err(|e| tampered(e.to_string()))?;
        for (what, text) in [
            ("description", &a.description),
            ("created_at", &a.created_at),
            ("created_by", &a.created_by),
        ] {
            if text.len() > MAX_FIELD {
                return Err(tampered(format!(
                    "its {what} is over {MAX_FIELD} bytes; no manifest has one that long"
                )));
            }
        }
        let artifact = |section: &'static str, role: &str, x: &Artifact| -> Result<(), LoadError> {
            let err = |problem, message: String| LoadError::Artifact {
                id: a.id.clone(),
                version: a.version.clone(),
                section,
                role: role.to_string(),
                problem,
                message,
            };
            names::validate_role(role).map_err(|e| err(ArtifactProblem::Invalid, e.to_string()))?;
            // Where it came from lands in telemetry: it must be what the
            // store records, a promptops reference or a repository path.
            let origin = match section {
                "prompt" => x.reference.as_deref(),
                _ => x.path.as_deref(),
            }
            .unwrap_or_default();
            let promptops = section == "prompt"
                && origin
                    .strip_prefix("prompts/")
                    .and_then(|r| r.split_once('@'))
                    .is_some_and(|(name, version)| {
                        names::validate_prompt_id(name).is_ok()
                            && names::validate_version(version).is_ok()
                    });
            if !promptops {
                names::validate_repo_path(origin).map_err(|e| {
                    err(
                        ArtifactProblem::Invalid,
                        format!("its origin is not one the store records: {e}"),
                    )
                })?;
            }
            let actual = hash::sha256_prefixed(x.content.as_bytes());
            if !hash::is_valid(&x.content_hash) || actual != x.content_hash {
                return Err(err(
                    ArtifactProblem::Tampered,
                    format!(
                        "the server sent text that does not match its hash (expected {}, got {actual}): not served",
                        x.content_hash
                    ),
                ));
            }
            Ok(())
        };
        let mut prompts = IndexMap::new();
        for (role, x) in &a.prompts {
            artifact("prompt", role, x)?;
            let reference = x.reference.as_deref().unwrap_or_default();
            let prompt = Prompt::new(role, reference, x.content_hash.clone(), x.content.clone());
            prompts.insert(role.clone(), prompt);
        }
        let mut policies = IndexMap::new();
        for (role, x) in &a.policies {
            artifact("policy", role, x)?;
            let path = x.path.as_deref().unwrap_or_default();
            let policy = Policy::parse(role, path, x.content_hash.clone(), x.content.clone())
                .map_err(|message| LoadError::Artifact {
                    id: a.id.clone(),
                    version: a.version.clone(),
                    section: "policy",
                    role: role.clone(),
                    problem: ArtifactProblem::Invalid,
                    message,
                })?;
            policies.insert(role.clone(), policy);
        }
        let model = a.model.map(|m| ModelConfig {
            provider: m.provider,
            model: m.model,
            temperature: m.temperature,
            max_tokens: m.max_tokens,
            parameters: m.parameters,
        });
        if let Some(m) = &model {
            m.validate().map_err(|e| {
                tampered(format!(
                    "its model config is not one a bundle can have: {e}"
                ))
            })?;
        }
        let computed = hash::bundle_hash(
            prompts
                .values()
                .map(|p| p.content_hash.as_str())
                .chain(policies.values().map(|p| p.content_hash.as_str())),
            model.as_ref().map(ModelConfig::hash).as_deref(),
        );
        if computed != a.bundle_hash {
            return Err(tampered(format!(
                "its bundle_hash {} is not the hash of what it sent ({computed}): not served",
                a.bundle_hash
            )));
        }
        let content = Content {
            id: a.id,
            version: a.version,
            bundle_hash: a.bundle_hash,
            description: a.description,
            created_at: a.created_at,
            created_by: a.created_by,
            prompts,
            policies,
            model,
        };
        Ok(LoadedBundle::new(Arc::new(content), a.environment))
    }
}
