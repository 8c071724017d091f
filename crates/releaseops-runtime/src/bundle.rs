use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use releaseops_format::hash;
use releaseops_format::manifest::{ArtifactRef, ArtifactSource, BundleManifest, ModelConfig};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ArtifactProblem, LoadError};
use crate::telemetry::{self, AttrValue};

/// Largest artifact the loader reads (the store refuses larger ones too).
const MAX_ARTIFACT_BYTES: u64 = 8 * 1024 * 1024;

/// One prompt of a bundle, with its text.
#[derive(Debug, Clone, Serialize)]
pub struct Prompt {
    pub role: String,
    /// Where it came from: `prompts/<id>@<version>` or a repository path.
    pub reference: String,
    pub content_hash: String,
    /// The artifact as stored (for promptops prompts, their YAML).
    pub content: String,
    /// The template inside it, ready for [`LoadedBundle::render`].
    pub template: String,
}

impl Prompt {
    /// A prompt of verified text, its template taken from it.
    pub(crate) fn new(
        role: &str,
        reference: &str,
        content_hash: String,
        content: String,
    ) -> Prompt {
        Prompt {
            role: role.to_string(),
            reference: reference.to_string(),
            content_hash,
            template: releaseops_format::template::template_text(&content),
            content,
        }
    }

    /// `(name, version)` of a promptops reference `prompts/<name>@<version>`.
    pub fn name_and_version(&self) -> Option<(&str, &str)> {
        let rest = self.reference.strip_prefix("prompts/")?;
        rest.split_once('@')
    }
}

/// One policy of a bundle, parsed.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub role: String,
    /// The policy file's path in the repository.
    pub path: String,
    pub content_hash: String,
    pub content: String,
    /// The policy as structured data (YAML or JSON).
    pub data: Value,
}

impl Policy {
    /// A policy of verified text, parsed (or why it is not YAML or JSON).
    pub(crate) fn parse(
        role: &str,
        path: &str,
        content_hash: String,
        content: String,
    ) -> Result<Policy, String> {
        let data = releaseops_format::yaml::from_str(&content)
            .map_err(|e| format!("is not YAML or JSON: {e}"))?;
        Ok(Policy {
            role: role.to_string(),
            path: path.to_string(),
            content_hash,
            content,
            data,
        })
    }
}

/// The immutable part of a bundle, shared by every environment that runs
/// the same hash.
#[derive(Debug, Serialize)]
pub struct Content {
    pub id: String,
    pub version: String,
    pub bundle_hash: String,
    pub description: String,
    pub created_at: String,
    pub created_by: String,
    pub prompts: IndexMap<String, Prompt>,
    pub policies: IndexMap<String, Policy>,
    #[serde(serialize_with = "model_json")]
    pub model: Option<ModelConfig>,
}

fn model_json<S: serde::Serializer>(m: &Option<ModelConfig>, s: S) -> Result<S::Ok, S::Error> {
    m.as_ref().map(ModelConfig::to_json).serialize(s)
}

/// A loaded, verified bundle: what the environment runs (or the pinned
/// version), every prompt's text, every policy parsed, the model config and
/// the telemetry attributes.
#[derive(Debug, Clone)]
pub struct LoadedBundle {
    content: Arc<Content>,
    environment: Option<String>,
    attributes: Arc<[(String, AttrValue)]>,
}

impl LoadedBundle {
    pub(crate) fn new(content: Arc<Content>, environment: Option<String>) -> LoadedBundle {
        let attributes = telemetry::attributes(&content, environment.as_deref()).into();
        LoadedBundle {
            content,
            environment,
            attributes,
        }
    }

    pub fn id(&self) -> &str {
        &self.content.id
    }
    pub fn version(&self) -> &str {
        &self.content.version
    }
    /// `sha256:…` over the manifest's content, verified at load.
    pub fn bundle_hash(&self) -> &str {
        &self.content.bundle_hash
    }
    /// The environment it was loaded for (`None` for a pinned version).
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }
    pub fn content(&self) -> &Content {
        &self.content
    }
    pub fn prompts(&self) -> &IndexMap<String, Prompt> {
        &self.content.prompts
    }
    pub fn prompt(&self, role: &str) -> Option<&Prompt> {
        self.content.prompts.get(role)
    }
    pub fn policies(&self) -> &IndexMap<String, Policy> {
        &self.content.policies
    }
    pub fn policy(&self, role: &str) -> Option<&Policy> {
        self.content.policies.get(role)
    }
    pub fn model(&self) -> Option<&ModelConfig> {
        self.content.model.as_ref()
    }
    /// The attributes the loader puts on spans, in order, none of them empty.
    pub fn telemetry_attributes(&self) -> &[(String, AttrValue)] {
        &self.attributes
    }

    /// The attributes that also travel as W3C baggage (the bundle's identity).
    pub fn baggage_attributes(&self) -> impl Iterator<Item = &(String, AttrValue)> {
        self.attributes
            .iter()
            .filter(|(k, _)| telemetry::BAGGAGE_KEYS.contains(&k.as_str()))
    }

    /// What `releaseops telemetry show --json` prints: the bundle's identity,
    /// the span attributes and the baggage.
    pub fn telemetry_json(&self) -> Value {
        let map = |items: &mut dyn Iterator<Item = &(String, AttrValue)>| {
            items
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect::<Map<_, _>>()
        };
        serde_json::json!({
            "bundle_id": self.id(),
            "bundle_version": self.version(),
            "bundle_hash": self.bundle_hash(),
            "environment": self.environment(),
            "attributes": map(&mut self.attributes.iter()),
            "baggage": map(&mut self.baggage_attributes()),
        })
    }

    /// The whole bundle as JSON: identity, model config, every prompt's text
    /// and template, every policy parsed, and [`LoadedBundle::telemetry_json`].
    /// What `GET /v1/resolve/{ref}` answers and the Python SDK builds on.
    pub fn to_json(&self) -> Value {
        let c = &*self.content;
        serde_json::json!({
            "id": c.id,
            "version": c.version,
            "bundle_hash": c.bundle_hash,
            "environment": self.environment(),
            "description": c.description,
            "created_at": c.created_at,
            "created_by": c.created_by,
            "model": c.model.as_ref().map(ModelConfig::to_json),
            "prompts": c.prompts,
            "policies": c.policies,
            "telemetry": self.telemetry_json(),
        })
    }

    /// Renders the prompt of `role` with `variables`, with the evaluation
    /// engine's Jinja2-compatible templating (a missing variable is an error).
    pub fn render(&self, role: &str, variables: &Map<String, Value>) -> Result<String, LoadError> {
        let p = self.prompt(role).ok_or_else(|| {
            LoadError::Render(format!(
                "{}=={} has no prompt '{role}' (its prompts: {})",
                self.id(),
                self.version(),
                self.content
                    .prompts
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        releaseops_format::template::render(&p.template, variables)
            .map_err(|e| LoadError::Render(format!("prompt '{role}' of {}: {e}", self.id())))
    }
}

/// Where a bundle's bytes live: the `.releaseops` directory (or an export)
/// and, for bundles written before objects were kept, the repository root.
pub(crate) struct Source<'a> {
    pub dir: &'a Path,
    pub root: Option<&'a Path>,
}

impl Source<'_> {
    /// Reads, parses and verifies the manifest of `id==version` and every
    /// artifact it names.
    pub(crate) fn content(&self, id: &str, version: &str) -> Result<Content, LoadError> {
        let manifest_path = self
            .dir
            .join("bundles")
            .join(id)
            .join(format!("{version}.yaml"));
        let bytes = match read_limited(&manifest_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::UnknownVersion {
                    id: id.into(),
                    version: version.into(),
                    dir: self.dir.to_path_buf(),
                    available: versions(self.dir, id),
                });
            }
            Err(e) => return Err(LoadError::io(&manifest_path, &e)),
        };
        let m = BundleManifest::parse(&bytes)
            .map_err(|e| LoadError::corrupt(&manifest_path, e.to_string()))?;
        if m.metadata.id != id || m.metadata.version != version {
            return Err(LoadError::tampered(
                &manifest_path,
                format!(
                    "the manifest says {}=={}, not {id}=={version}; the file was moved or edited",
                    m.metadata.id, m.metadata.version
                ),
            ));
        }
        m.check_hash().map_err(|e| {
            LoadError::tampered(
                &manifest_path,
                format!("{e}; the manifest was changed after it was created: do not serve it, recreate the bundle"),
            )
        })?;
        let bundle_hash = m.bundle_hash.clone().unwrap_or_default();
        let mut prompts = IndexMap::new();
        for (role, a) in &m.prompts {
            let content = self.artifact(&m, "prompt", role, a)?;
            let hash = a.content_hash.clone().unwrap_or_default();
            let prompt = Prompt::new(role, a.location(), hash, content);
            prompts.insert(role.clone(), prompt);
        }
        let mut policies = IndexMap::new();
        for (role, a) in &m.policies {
            let content = self.artifact(&m, "policy", role, a)?;
            let hash = a.content_hash.clone().unwrap_or_default();
            let policy = Policy::parse(role, a.location(), hash, content)
                .map_err(|e| artifact_err(&m, "policy", role, ArtifactProblem::Invalid, e))?;
            policies.insert(role.clone(), policy);
        }
        Ok(Content {
            id: m.metadata.id,
            version: m.metadata.version,
            bundle_hash,
            description: m.metadata.description,
            created_at: m.metadata.created_at,
            created_by: m.metadata.created_by,
            prompts,
            policies,
            model: m.model_config,
        })
    }

    /// One artifact's text, from the object store (or, for bundles that
    /// predate it, the original file), verified against its content hash.
    fn artifact(
        &self,
        m: &BundleManifest,
        section: &'static str,
        role: &str,
        a: &ArtifactRef,
    ) -> Result<String, LoadError> {
        let err = |problem, msg: String| artifact_err(m, section, role, problem, msg);
        let Some(expected) = a.content_hash.as_deref().filter(|h| hash::is_valid(h)) else {
            return Err(err(
                ArtifactProblem::Tampered,
                "has no valid content_hash, so it cannot be verified; recreate the bundle".into(),
            ));
        };
        let hex = hash::hex_part(expected);
        let object = self
            .dir
            .join("objects/sha256")
            .join(&hex[..2])
            .join(&hex[2..]);
        let (bytes, from) = match read_limited(&object) {
            Ok(b) => (b, object.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match (&a.source, self.root) {
                (ArtifactSource::Path(p), Some(root))
                    if releaseops_format::names::validate_repo_path(p).is_ok() =>
                {
                    let path = root.join(p);
                    let b = read_limited(&path).map_err(|e| {
                        err(ArtifactProblem::Missing, format!(
                            "its object {} is missing and {p} cannot be read ({e}); run `releaseops bundle verify {} {}`",
                            object.display(),
                            m.metadata.id,
                            m.metadata.version
                        ))
                    })?;
                    let text = hash::python_text(&b)
                        .map_err(|e| err(ArtifactProblem::Invalid, format!("{p}: {e}")))?;
                    (text.into_bytes(), path)
                }
                _ => {
                    return Err(err(
                        ArtifactProblem::Missing,
                        format!(
                            "its object {} is missing; the store or export is incomplete (export it again with `releaseops export`)",
                            object.display()
                        ),
                    ));
                }
            },
            Err(e) => {
                return Err(err(
                    ArtifactProblem::Unreadable,
                    format!("cannot read {}: {e}", object.display()),
                ));
            }
        };
        let actual = hash::sha256_prefixed(&bytes);
        if actual != expected {
            return Err(err(
                ArtifactProblem::Tampered,
                format!(
                    "{} does not match its hash (expected {expected}, found {actual}): it was changed after the bundle was created and is not served",
                    from.display()
                ),
            ));
        }
        String::from_utf8(bytes)
            .map_err(|e| err(ArtifactProblem::Invalid, format!("is not UTF-8 text: {e}")))
    }
}

fn artifact_err(
    m: &BundleManifest,
    section: &'static str,
    role: &str,
    problem: ArtifactProblem,
    message: String,
) -> LoadError {
    LoadError::Artifact {
        id: m.metadata.id.clone(),
        version: m.metadata.version.clone(),
        section,
        role: role.to_string(),
        problem,
        message,
    }
}

/// Reads a file, refusing one over the artifact limit before reading it,
/// and anything that is not a regular file: a store file that is a link
/// (to `/dev/zero`, to `/etc/passwd`) is never followed.
pub(crate) fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other(if meta.file_type().is_symlink() {
            "it is a symbolic link, which releaseops never follows"
        } else {
            "it is not a regular file"
        }));
    }
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > MAX_ARTIFACT_BYTES {
        return Err(std::io::Error::other(format!(
            "{len} bytes is over the {MAX_ARTIFACT_BYTES}-byte limit"
        )));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(MAX_ARTIFACT_BYTES + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The versions of `id` in the store, sorted.
pub(crate) fn versions(dir: &Path, id: &str) -> Vec<String> {
    yaml_stems(&dir.join("bundles").join(id))
}

/// The names of the `.yaml` files in `dir`, without the suffix, sorted.
pub(crate) fn yaml_stems(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".yaml"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
