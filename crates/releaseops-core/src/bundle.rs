//! Bundles: create (resolve, snapshot into the object store, hash, record),
//! list, verify and diff.

use indexmap::IndexMap;
use releaseops_format::history::EventKind;
use releaseops_format::manifest::{
    ArtifactRef, ArtifactSource, BundleManifest, BundleMetadata, ModelConfig, SCHEMA_VERSION,
};
use releaseops_format::{hash, names, pyjson};
use releaseops_store::objects::ObjectStore;
use releaseops_store::{Store, StoreError, sources};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::{CoreError, Ctx, Result};

/// One `--artifact` value.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactSpec {
    /// `ROLE=PROMPT_ID[:VERSION]`, resolved through promptops' git history.
    Prompt {
        role: String,
        prompt_id: String,
        version: Option<String>,
    },
    /// `ROLE=file:PATH`, a plain prompt file (Markdown, text).
    File { role: String, path: String },
}

impl ArtifactSpec {
    /// Parses the existing tool's syntax, plus `file:`.
    pub fn parse(s: &str) -> Result<Self> {
        let (role, rest) = s.split_once('=').ok_or_else(|| {
            CoreError::invalid(
                format!("--artifact '{s}' has no '='"),
                "write ROLE=PROMPT_ID[:VERSION] or ROLE=file:PATH, e.g. system=onboarding:v1.2.0",
            )
        })?;
        let role = role.trim().to_string();
        names::validate_role(&role)?;
        let rest = rest.trim();
        if let Some(path) = rest.strip_prefix("file:") {
            names::validate_repo_path(path)?;
            return Ok(ArtifactSpec::File {
                role,
                path: path.to_string(),
            });
        }
        if rest.contains('/')
            || [".md", ".txt", ".j2", ".jinja", ".prompt", ".yaml", ".yml"]
                .iter()
                .any(|ext| rest.ends_with(ext))
        {
            return Err(CoreError::invalid(
                format!("--artifact '{s}': '{rest}' looks like a file, not a promptops prompt id"),
                format!("did you mean --artifact {role}=file:{rest}?"),
            ));
        }
        let (id, version) = match rest.split_once(':') {
            Some((id, v)) => (
                id.trim(),
                Some(v.trim().to_string()).filter(|v| !v.is_empty()),
            ),
            None => (rest, None),
        };
        names::validate_prompt_id(id)?;
        Ok(ArtifactSpec::Prompt {
            role,
            prompt_id: id.to_string(),
            version,
        })
    }

    pub fn role(&self) -> &str {
        match self {
            ArtifactSpec::Prompt { role, .. } | ArtifactSpec::File { role, .. } => role,
        }
    }
}

/// Parses `ROLE=PATH` for `--policy`.
pub fn parse_policy(s: &str) -> Result<(String, String)> {
    let (role, path) = s.split_once('=').ok_or_else(|| {
        CoreError::invalid(
            format!("--policy '{s}' has no '='"),
            "write ROLE=PATH, e.g. tools=policies/tools/refunds.yaml",
        )
    })?;
    let (role, path) = (role.trim(), path.trim());
    names::validate_role(role)?;
    names::validate_repo_path(path)?;
    Ok((role.to_string(), path.to_string()))
}

/// Parses `KEY=VALUE` for `--param`; VALUE is JSON when it parses as JSON
/// (`0.9`, `true`, `["\n"]`), a string otherwise.
pub fn parse_param(s: &str) -> Result<(String, Value)> {
    let (k, v) = s.split_once('=').ok_or_else(|| {
        CoreError::invalid(
            format!("--param '{s}' has no '='"),
            "write KEY=VALUE, e.g. top_p=0.9",
        )
    })?;
    let k = k.trim();
    if k.is_empty() {
        return Err(CoreError::invalid(
            format!("--param '{s}' has an empty key"),
            "write KEY=VALUE",
        ));
    }
    let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

/// The provider a well-known model name belongs to (`gpt-4o` -> openai,
/// `claude-...` -> anthropic, `gemini-...` -> gemini); `None` when the name
/// does not say.
pub fn infer_provider(model: &str) -> Option<&'static str> {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m);
    let openai = [
        "gpt-",
        "chatgpt-",
        "o1",
        "o3",
        "o4",
        "text-embedding-",
        "davinci",
        "babbage",
    ];
    if openai.iter().any(|p| m.starts_with(p)) {
        Some("openai")
    } else if m.starts_with("claude") {
        Some("anthropic")
    } else if m.starts_with("gemini") || m.starts_with("gemma") {
        Some("gemini")
    } else {
        None
    }
}

#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub provider: String,
    pub model: String,
    pub temperature: f64,
    pub max_tokens: u64,
    pub parameters: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub id: String,
    pub version: String,
    pub artifacts: Vec<ArtifactSpec>,
    pub policies: Vec<(String, String)>,
    pub model: Option<ModelSpec>,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub id: String,
    pub version: String,
    pub bundle_hash: String,
    pub path: String,
    pub artifacts: usize,
    /// Moving references that were pinned, e.g. "system: latest -> v1.0.1".
    pub pinned: Vec<String>,
    /// Things worth telling the user (uncommitted prompt edits left out, ...).
    pub notes: Vec<String>,
    /// The git commit made, or why it failed (`git_commit`, `git_error`).
    #[serde(flatten)]
    pub git: releaseops_store::GitOutcome,
    #[serde(skip)]
    pub manifest: BundleManifest,
}

struct Snapshot {
    role: String,
    reference: ArtifactRef,
    pinned: Option<String>,
    note: Option<String>,
}

pub fn create(ctx: &Ctx<'_>, req: &CreateRequest) -> Result<Created> {
    crate::sync::retrying(ctx.store, || create_once(ctx, req))
}

fn create_once(ctx: &Ctx<'_>, req: &CreateRequest) -> Result<Created> {
    let store = ctx.store;
    names::validate_bundle_id(&req.id)?;
    names::validate_version(&req.version)?;
    // New versions are semantic versions (bundles the existing tool wrote
    // with other names still load): `latest` and ordering mean something.
    if semver::Version::parse(&req.version).is_err() {
        return Err(CoreError::invalid(
            format!(
                "version '{}' is not a semantic version (MAJOR.MINOR.PATCH)",
                req.version
            ),
            "write it like 1.2.0 (no leading 'v' or zeros, three numbers; 1.2.0-rc.1 and 1.2.0+build.5 work too)",
        ));
    }
    names::validate_text("description", &req.description)?;
    // Names that differ only by case are one file on macOS and Windows.
    if let Some(other) = store
        .bundle_ids()?
        .into_iter()
        .find(|i| i != &req.id && i.eq_ignore_ascii_case(&req.id))
    {
        return Err(CoreError::refused(
            format!(
                "bundle '{}' differs from the existing '{other}' only by case",
                req.id
            ),
            format!(
                "use '{other}', or a name that differs by more than case (they would be one file on a case-insensitive file system)"
            ),
        ));
    }
    if let Some(other) = store
        .bundle_versions(&req.id)?
        .into_iter()
        .find(|v| v != &req.version && v.eq_ignore_ascii_case(&req.version))
    {
        return Err(CoreError::refused(
            format!(
                "version '{}' of '{}' differs from the existing '{other}' only by case",
                req.version, req.id
            ),
            "choose a version that differs by more than case",
        ));
    }
    // Fail fast, before resolving anything; checked again under the lock.
    if store.bundle_exists(&req.id, &req.version) {
        return Err(StoreError::VersionExists {
            id: req.id.clone(),
            version: req.version.clone(),
        }
        .into());
    }
    let mut seen = std::collections::HashSet::new();
    for spec in &req.artifacts {
        if !seen.insert(("prompt", spec.role().to_string())) {
            return Err(CoreError::invalid(
                format!("prompt role '{}' is given twice", spec.role()),
                "give each role once",
            ));
        }
    }
    for (role, _) in &req.policies {
        if !seen.insert(("policy", role.clone())) {
            return Err(CoreError::invalid(
                format!("policy role '{role}' is given twice"),
                "give each role once",
            ));
        }
    }
    let model_config = req.model.as_ref().map(build_model).transpose()?;

    let objects = store.objects();
    let mut prompts = Vec::new();
    for spec in &req.artifacts {
        prompts.push(snapshot_prompt(store, &objects, spec)?);
    }
    let mut policies = Vec::new();
    for (role, path) in &req.policies {
        let text = sources::read_text_artifact(store.root(), path)?;
        let h = objects.put(text.as_bytes())?;
        policies.push(Snapshot {
            role: role.clone(),
            reference: ArtifactRef {
                source: ArtifactSource::Path(path.clone()),
                content_hash: Some(h),
            },
            pinned: None,
            note: None,
        });
    }
    let to_map = |v: &[Snapshot]| -> IndexMap<String, ArtifactRef> {
        v.iter()
            .map(|s| (s.role.clone(), s.reference.clone()))
            .collect()
    };
    let mut manifest = BundleManifest {
        schema_version: SCHEMA_VERSION,
        metadata: BundleMetadata {
            id: req.id.clone(),
            version: req.version.clone(),
            created_at: ctx.now_str(),
            created_by: ctx.actor.clone(),
            description: req.description.clone(),
        },
        prompts: to_map(&prompts),
        policies: to_map(&policies),
        model_config,
        bundle_hash: None,
    };
    let bundle_hash = manifest.compute_hash();
    manifest.bundle_hash = Some(bundle_hash.clone());

    let rel = Store::bundle_rel_path(&req.id, &req.version);
    let done = record_version(ctx, &manifest, &bundle_hash, "")?;
    Ok(Created {
        id: req.id.clone(),
        version: req.version.clone(),
        bundle_hash,
        path: format!(".releaseops/{rel}"),
        artifacts: prompts.len() + policies.len(),
        pinned: prompts
            .iter()
            .chain(&policies)
            .filter_map(|s| s.pinned.clone())
            .collect(),
        notes: prompts.iter().filter_map(|s| s.note.clone()).collect(),
        git: done.git,
        manifest,
    })
}

fn build_model(m: &ModelSpec) -> Result<ModelConfig> {
    let temperature = Number::from_f64(m.temperature).ok_or_else(|| {
        CoreError::invalid(
            "temperature must be a finite number",
            "use a value from 0.0 to 2.0",
        )
    })?;
    let mc = ModelConfig {
        provider: m.provider.clone(),
        model: m.model.clone(),
        temperature,
        max_tokens: m.max_tokens,
        parameters: m.parameters.clone(),
    };
    mc.validate().map_err(|e| {
        CoreError::invalid(
            e.to_string(),
            "temperature is 0.0..2.0, max tokens at least 1",
        )
    })?;
    Ok(mc)
}

fn snapshot_prompt(store: &Store, objects: &ObjectStore, spec: &ArtifactSpec) -> Result<Snapshot> {
    match spec {
        ArtifactSpec::File { role, path } => {
            let text = sources::read_text_artifact(store.root(), path)?;
            let h = objects.put(text.as_bytes())?;
            Ok(Snapshot {
                role: role.clone(),
                reference: ArtifactRef {
                    source: ArtifactSource::Path(path.clone()),
                    content_hash: Some(h),
                },
                pinned: None,
                note: None,
            })
        }
        ArtifactSpec::Prompt {
            role,
            prompt_id,
            version,
        } => {
            let git = store.git().ok_or_else(|| {
                CoreError::refused(
                    format!(
                        "prompt '{prompt_id}' needs git history, but {} is not in a git repository",
                        store.root().display()
                    ),
                    "run `git init` and commit your prompts, or use --artifact ROLE=file:PATH",
                )
            })?;
            let r = sources::resolve_prompt(
                git,
                &store.root_git_prefix(),
                prompt_id,
                version.as_deref(),
            )?;
            let h = objects.put(&r.bytes)?;
            let label = r
                .reference
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .to_string();
            Ok(Snapshot {
                role: role.clone(),
                pinned: r
                    .pinned_from
                    .map(|from| format!("{role}: {prompt_id}:{from} -> {label}")),
                note: r.note,
                reference: ArtifactRef {
                    source: ArtifactSource::Ref(r.reference),
                    content_hash: Some(h),
                },
            })
        }
    }
}

// ---------------------------------------------------------------------------

/// One bundle version as `bundle inspect` shows it: the manifest, its
/// reviews and the environments running it.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub manifest: BundleManifest,
    pub reviews: releaseops_format::review::Reviews,
    pub deployed_in: Vec<String>,
}

pub fn inspect(store: &Store, id: &str, version: &str) -> Result<Inspected> {
    names::validate_bundle_id(id)?;
    names::validate_version(version)?;
    let manifest = store.load_bundle(id, version)?;
    let reviews = store.load_reviews(id, version)?;
    let mut deployed_in = Vec::new();
    for e in store.environments()? {
        if store
            .load_env(&e)?
            .bundle_mappings
            .get(id)
            .map(String::as_str)
            == Some(version)
        {
            deployed_in.push(e);
        }
    }
    Ok(Inspected {
        manifest,
        reviews,
        deployed_in,
    })
}

impl Inspected {
    /// The JSON of `bundle inspect --json` and of the API's manifest endpoint.
    pub fn to_json(&self) -> Value {
        let m = &self.manifest;
        let artifacts = |arts: &IndexMap<String, ArtifactRef>| {
            arts.iter()
                .map(|(r, a)| {
                    (
                        r.clone(),
                        serde_json::json!({"location": a.location(), "content_hash": a.content_hash}),
                    )
                })
                .collect::<Map<_, _>>()
        };
        serde_json::json!({
            "schema_version": m.schema_version,
            "metadata": {
                "id": m.metadata.id, "version": m.metadata.version, "created_at": m.metadata.created_at,
                "created_by": m.metadata.created_by, "description": m.metadata.description,
            },
            "artifacts": {
                "prompts": artifacts(&m.prompts),
                "policies": artifacts(&m.policies),
            },
            "model_config": m.model_config.as_ref().map(|mc| mc.to_json()),
            "bundle_hash": m.bundle_hash,
            "deployed_in": self.deployed_in,
            "reviews": serde_json::to_value(&self.reviews).unwrap_or_default(),
        })
    }
}

// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct BundleSummary {
    pub id: String,
    pub versions: Vec<String>,
    pub latest: Option<String>,
    /// environment -> version deployed there.
    pub deployed: IndexMap<String, String>,
}

pub fn list(store: &Store) -> Result<Vec<BundleSummary>> {
    let envs: Vec<(String, IndexMap<String, String>)> = store
        .environments()?
        .into_iter()
        .filter_map(|e| store.load_env(&e).ok().map(|f| (e, f.bundle_mappings)))
        .collect();
    let mut out = Vec::new();
    for id in store.bundle_ids()? {
        let versions = store.bundle_versions(&id)?;
        if versions.is_empty() {
            continue;
        }
        let deployed = envs
            .iter()
            .filter_map(|(e, m)| m.get(&id).map(|v| (e.clone(), v.clone())))
            .collect();
        out.push(BundleSummary {
            latest: versions.last().cloned(),
            id,
            versions,
            deployed,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactCheck {
    pub section: &'static str,
    pub role: String,
    pub location: String,
    pub content_hash: Option<String>,
    /// `ok`, `mismatch`, `missing`.
    pub status: &'static str,
    /// Where the bytes were checked: `object store` or `source`.
    pub checked_against: Option<&'static str>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub id: String,
    pub version: String,
    pub bundle_hash: Option<String>,
    pub ok: bool,
    pub artifacts: Vec<ArtifactCheck>,
    pub problems: Vec<String>,
}

/// Re-hashes every artifact from the object store (falling back to the
/// original source for bundles written by the existing tool, which kept no
/// copies) and checks the bundle hash.
pub fn verify(store: &Store, id: &str, version: &str) -> Result<VerifyReport> {
    // A broken chain is reported by `history verify`; the bundle's own
    // bytes can still be checked.
    let view = store.chain_view().ok();
    verify_with(store, view.as_ref(), id, version)
}

/// As [`verify`], with the history's view of the bundle: a bundle created
/// here always has its objects, so a missing one is a problem even when its
/// source could still be read; only the existing tool's bundles fall back.
pub fn verify_with(
    store: &Store,
    view: Option<&releaseops_store::view::ChainView>,
    id: &str,
    version: &str,
) -> Result<VerifyReport> {
    let from_source_ok = view
        .and_then(|v| v.state().bundle(id, version))
        .is_none_or(|b| b.imported);
    names::validate_bundle_id(id)?;
    names::validate_version(version)?;
    let path = store.dir().join(Store::bundle_rel_path(id, version));
    // A link is refused, as every store read refuses one.
    let Some(bytes) = releaseops_store::fsx::read_regular_opt(
        &path,
        releaseops_format::yaml::MAX_YAML_BYTES as u64,
    )?
    else {
        // Same error load_bundle gives, with the versions that exist.
        store.load_bundle(id, version)?;
        return Err(StoreError::Io {
            what: "cannot read",
            path,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
        .into());
    };
    let manifest = BundleManifest::parse(&bytes).map_err(|e| StoreError::Format {
        path: path.clone(),
        source: e,
    })?;
    verify_manifest(store, from_source_ok, id, version, &manifest)
}

/// As [`verify_with`], for a manifest the caller already loaded (and so
/// checked against its path).
pub fn verify_loaded(
    store: &Store,
    view: Option<&releaseops_store::view::ChainView>,
    manifest: &BundleManifest,
) -> Result<VerifyReport> {
    let (id, version) = (&manifest.metadata.id, &manifest.metadata.version);
    let from_source_ok = view
        .and_then(|v| v.state().bundle(id, version))
        .is_none_or(|b| b.imported);
    verify_manifest(store, from_source_ok, id, version, manifest)
}

fn verify_manifest(
    store: &Store,
    from_source_ok: bool,
    id: &str,
    version: &str,
    manifest: &BundleManifest,
) -> Result<VerifyReport> {
    let mut problems = Vec::new();
    if manifest.metadata.id != id || manifest.metadata.version != version {
        problems.push(format!(
            "the manifest says {}@{} but is stored as {id}@{version}",
            manifest.metadata.id, manifest.metadata.version
        ));
    }
    match &manifest.bundle_hash {
        Some(stored) => {
            let computed = manifest.compute_hash();
            if *stored != computed {
                problems.push(format!(
                    "bundle hash mismatch: manifest says {stored}, content gives {computed}"
                ));
            }
        }
        None => problems.push("the manifest has no bundle_hash".into()),
    }
    let objects = store.objects();
    let mut checks = Vec::new();
    for (section, role, a) in manifest.artifacts() {
        let mut c = ArtifactCheck {
            section,
            role: role.clone(),
            location: a.location().to_string(),
            content_hash: a.content_hash.clone(),
            status: "ok",
            checked_against: None,
            detail: None,
        };
        let Some(expected) = &a.content_hash else {
            c.status = "missing";
            c.detail = Some("no content_hash recorded".into());
            problems.push(format!("{section} '{role}' has no content_hash"));
            checks.push(c);
            continue;
        };
        let (actual, against) = match objects.get(expected) {
            Ok(Some(b)) => (Ok(hash::sha256_prefixed(&b)), "object store"),
            Ok(None) if from_source_ok => (source_hash(store, a), "source"),
            Ok(None) => (
                Err("missing from the object store".to_string()),
                "object store",
            ),
            Err(e) => (Err(e.to_string()), "object store"),
        };
        c.checked_against = Some(against);
        match actual {
            Ok(h) if h == *expected => {}
            Ok(h) => {
                c.status = "mismatch";
                c.detail = Some(format!("{against} content hashes to {h}"));
                problems.push(format!(
                    "{section} '{role}' ({}): content hash mismatch in {against}",
                    a.location()
                ));
            }
            Err(e) => {
                c.status = "missing";
                problems.push(if against == "source" {
                    format!("{section} '{role}' ({}): not in the object store and not reproducible from its source", a.location())
                } else {
                    format!("{section} '{role}' ({}): {e}", a.location())
                });
                c.detail = Some(e);
            }
        }
        checks.push(c);
    }
    Ok(VerifyReport {
        id: id.to_string(),
        version: version.to_string(),
        bundle_hash: manifest.bundle_hash.clone(),
        ok: problems.is_empty(),
        artifacts: checks,
        problems,
    })
}

fn source_hash(store: &Store, a: &ArtifactRef) -> Result<String, String> {
    match &a.source {
        ArtifactSource::Path(p) => sources::read_text_artifact(store.root(), p)
            .map(|t| hash::sha256_prefixed(t.as_bytes()))
            .map_err(|e| e.to_string()),
        ArtifactSource::Ref(r) => {
            let git = store.git().ok_or("not in a git repository")?;
            let (id, version) =
                parse_prompt_ref(r).ok_or(format!("'{r}' is not prompts/<id>@<version>"))?;
            sources::resolve_prompt(git, &store.root_git_prefix(), id, Some(version))
                .map(|p| hash::sha256_prefixed(&p.bytes))
                .map_err(|e| e.to_string())
        }
    }
}

/// Splits `prompts/<id>@<version>` (the version may itself contain `@`).
pub fn parse_prompt_ref(r: &str) -> Option<(&str, &str)> {
    let rest = r.strip_prefix("prompts/")?;
    let (id, v) = rest.split_once('@')?;
    (!id.is_empty() && !v.is_empty()).then_some((id, v))
}

/// The bytes of an artifact: the object store first, then its source.
pub fn artifact_bytes(store: &Store, a: &ArtifactRef) -> Option<Vec<u8>> {
    if let Some(h) = &a.content_hash
        && let Ok(Some(b)) = store.objects().get(h)
    {
        return Some(b);
    }
    match &a.source {
        ArtifactSource::Path(p) => sources::read_text_artifact(store.root(), p)
            .ok()
            .map(String::into_bytes),
        ArtifactSource::Ref(r) => {
            let (id, v) = parse_prompt_ref(r)?;
            sources::resolve_prompt(store.git()?, &store.root_git_prefix(), id, Some(v))
                .ok()
                .map(|p| p.bytes)
        }
    }
}

// ---------------------------------------------------------------------------

/// Which part of a bundle an artifact belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    Prompt,
    Policy,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Prompt => "prompt",
            Section::Policy => "policy",
        }
    }
}

/// What happened to an artifact between two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Changed,
    Unchanged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    )*};
}
display_as_str!(Section, Change);

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactDiff {
    pub section: Section,
    pub role: String,
    pub change: Change,
    pub old: Option<String>,
    pub new: Option<String>,
    pub lines_added: usize,
    pub lines_removed: usize,
    /// Unified diff of the content (absent when unchanged or unavailable).
    pub diff: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub old: String,
    pub new: String,
    pub old_hash: Option<String>,
    pub new_hash: Option<String>,
    pub artifacts: Vec<ArtifactDiff>,
    pub model_config: Vec<FieldChange>,
    pub metadata: Vec<FieldChange>,
}

impl DiffReport {
    /// What the decision agent's change-risk rules read from this diff.
    pub fn summary(&self) -> releaseops_agent::risk::ChangeSummary {
        use releaseops_agent::risk::{ArtifactEdit, ChangeSummary, Edit, FieldEdit};
        let edits = |section: Section| -> Vec<ArtifactEdit> {
            self.artifacts
                .iter()
                .filter(|a| a.section == section)
                .filter_map(|a| {
                    let edit = match a.change {
                        Change::Added => Edit::Added,
                        Change::Removed => Edit::Removed,
                        Change::Changed => Edit::Changed,
                        Change::Unchanged => return None,
                    };
                    Some(ArtifactEdit {
                        role: a.role.clone(),
                        location: a
                            .new
                            .as_deref()
                            .or(a.old.as_deref())
                            .unwrap_or_default()
                            .to_string(),
                        edit,
                    })
                })
                .collect()
        };
        ChangeSummary {
            model: self
                .model_config
                .iter()
                .map(|c| FieldEdit {
                    field: c.field.clone(),
                    old: c.old.clone(),
                    new: c.new.clone(),
                })
                .collect(),
            prompt_lines: self
                .artifacts
                .iter()
                .filter(|a| a.section == Section::Prompt)
                .map(|a| a.lines_added + a.lines_removed)
                .sum(),
            prompts: edits(Section::Prompt),
            policies: edits(Section::Policy),
        }
    }
}

pub fn diff(store: &Store, a: (&str, &str), b: (&str, &str)) -> Result<DiffReport> {
    let ma = store.load_bundle(a.0, a.1)?;
    let mb = store.load_bundle(b.0, b.1)?;
    diff_manifests(store, &ma, &mb)
}

/// As [`diff`], for manifests the caller already loaded.
pub fn diff_manifests(
    store: &Store,
    ma: &BundleManifest,
    mb: &BundleManifest,
) -> Result<DiffReport> {
    let a = (ma.metadata.id.as_str(), ma.metadata.version.as_str());
    let b = (mb.metadata.id.as_str(), mb.metadata.version.as_str());
    let mut artifacts = Vec::new();
    for (section, sa, sb) in [
        (Section::Prompt, &ma.prompts, &mb.prompts),
        (Section::Policy, &ma.policies, &mb.policies),
    ] {
        let mut roles: Vec<&String> = sa.keys().collect();
        roles.extend(sb.keys().filter(|r| !sa.contains_key(*r)));
        for role in roles {
            let (x, y) = (sa.get(role), sb.get(role));
            let change = match (x, y) {
                (Some(_), None) => Change::Removed,
                (None, Some(_)) => Change::Added,
                (Some(x), Some(y))
                    if x.content_hash == y.content_hash && x.content_hash.is_some() =>
                {
                    Change::Unchanged
                }
                _ => Change::Changed,
            };
            let mut d = ArtifactDiff {
                section,
                role: role.clone(),
                change,
                old: x.map(|a| a.location().to_string()),
                new: y.map(|a| a.location().to_string()),
                lines_added: 0,
                lines_removed: 0,
                diff: None,
            };
            if change != Change::Unchanged {
                let text = |a: Option<&ArtifactRef>| -> Option<String> {
                    match a {
                        None => Some(String::new()),
                        Some(a) => artifact_bytes(store, a)
                            .map(|b| String::from_utf8_lossy(&b).into_owned()),
                    }
                };
                if let (Some(old), Some(new)) = (text(x), text(y)) {
                    let td = similar::TextDiff::from_lines(&old, &new);
                    for op in td.iter_all_changes() {
                        match op.tag() {
                            similar::ChangeTag::Insert => d.lines_added += 1,
                            similar::ChangeTag::Delete => d.lines_removed += 1,
                            similar::ChangeTag::Equal => {}
                        }
                    }
                    let label_a = format!("{}@{} {section}/{role}", a.0, a.1);
                    let label_b = format!("{}@{} {section}/{role}", b.0, b.1);
                    d.diff = Some(
                        td.unified_diff()
                            .context_radius(2)
                            .header(&label_a, &label_b)
                            .to_string(),
                    );
                }
            }
            artifacts.push(d);
        }
    }
    let flat = |m: &BundleManifest| -> IndexMap<String, String> {
        let mut out = IndexMap::new();
        if let Some(mc) = &m.model_config
            && let Value::Object(o) = mc.to_json()
        {
            flatten("", &Value::Object(o), &mut out);
        }
        out
    };
    let model_config = field_changes(&flat(ma), &flat(mb));
    let md = |m: &BundleManifest| -> IndexMap<String, String> {
        IndexMap::from([
            ("description".to_string(), m.metadata.description.clone()),
            ("created_by".to_string(), m.metadata.created_by.clone()),
            ("created_at".to_string(), m.metadata.created_at.clone()),
        ])
    };
    Ok(DiffReport {
        old: format!("{}@{}", a.0, a.1),
        new: format!("{}@{}", b.0, b.1),
        old_hash: ma.bundle_hash.clone(),
        new_hash: mb.bundle_hash.clone(),
        artifacts,
        model_config,
        metadata: field_changes(&md(ma), &md(mb)),
    })
}

fn flatten(prefix: &str, v: &Value, out: &mut IndexMap<String, String>) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, v) in o {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Number(n) => {
            out.insert(prefix.to_string(), pyjson::number_repr(n));
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), pyjson::dumps_canonical(other));
        }
    }
}

fn field_changes(a: &IndexMap<String, String>, b: &IndexMap<String, String>) -> Vec<FieldChange> {
    let mut keys: Vec<&String> = a.keys().collect();
    keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            old: a.get(k).cloned(),
            new: b.get(k).cloned(),
        })
        .collect()
}

/// Makes a bundle version made offline again on the remote's state
/// (`releaseops sync`): the same manifest, checked against its hash, with
/// its artifacts from the store or `files` (each checked against its
/// content hash). Refused when the version exists there already.
pub fn recreate(
    ctx: &Ctx<'_>,
    manifest_text: &str,
    files: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<String> {
    crate::sync::retrying(ctx.store, || recreate_once(ctx, manifest_text, files))
}

fn recreate_once(
    ctx: &Ctx<'_>,
    manifest_text: &str,
    files: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<String> {
    let store = ctx.store;
    let manifest = BundleManifest::parse(manifest_text.as_bytes())?;
    let (id, version) = (&manifest.metadata.id, &manifest.metadata.version);
    let hash = manifest.compute_hash();
    if manifest.bundle_hash.as_deref() != Some(hash.as_str()) {
        return Err(CoreError::refused(
            format!("the kept manifest of {id}@{version} does not match its hash"),
            "create the version again with `releaseops bundle create`",
        ));
    }
    let objects = store.objects();
    for (_, _, a) in manifest.artifacts() {
        let Some(h) = &a.content_hash else { continue };
        if objects.get(h)?.is_some() {
            continue;
        }
        let rel = ObjectStore::rel_path(h);
        let text = files.get(&rel).cloned().flatten().ok_or_else(|| {
            CoreError::refused(
                format!("an artifact of {id}@{version} ({h}) was not kept"),
                "create the version again with `releaseops bundle create`",
            )
        })?;
        if objects.put(text.as_bytes())? != *h {
            return Err(CoreError::refused(
                format!("a kept artifact of {id}@{version} does not match its hash {h}"),
                "create the version again with `releaseops bundle create`",
            ));
        }
    }
    record_version(ctx, &manifest, &hash, " (made offline)")?;
    Ok(hash)
}

/// Writes a new version's manifest and records its creation, in one
/// transaction (refused when the version exists by then).
fn record_version(
    ctx: &Ctx<'_>,
    manifest: &BundleManifest,
    bundle_hash: &str,
    note: &str,
) -> Result<releaseops_store::Committed> {
    let store = ctx.store;
    let (id, version) = (&manifest.metadata.id, &manifest.metadata.version);
    let mut tx = store.begin()?;
    if store.bundle_exists(id, version) {
        return Err(StoreError::VersionExists {
            id: id.clone(),
            version: version.clone(),
        }
        .into());
    }
    releaseops_store::import_legacy_history(&mut tx)?;
    tx.write(Store::bundle_rel_path(id, version), manifest.to_yaml());
    for (_, _, a) in manifest.artifacts() {
        if let Some(h) = &a.content_hash {
            tx.include_in_commit(ObjectStore::rel_path(h));
        }
    }
    let mut rec = ctx.record(EventKind::BundleCreate);
    rec.bundle_id = Some(id.clone());
    rec.version = Some(version.clone());
    rec.bundle_hash = Some(bundle_hash.to_string());
    if !manifest.metadata.description.is_empty() {
        rec.reason = Some(manifest.metadata.description.clone());
    }
    tx.append(rec)?;
    Ok(tx.commit(
        &format!("releaseops: create bundle {id} {version}{note}"),
        ctx.author().as_ref(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_syntax() {
        assert_eq!(
            ArtifactSpec::parse("system=onboarding:v1.2.0").unwrap(),
            ArtifactSpec::Prompt {
                role: "system".into(),
                prompt_id: "onboarding".into(),
                version: Some("v1.2.0".into())
            }
        );
        assert_eq!(
            ArtifactSpec::parse(" system = onboarding ").unwrap(),
            ArtifactSpec::Prompt {
                role: "system".into(),
                prompt_id: "onboarding".into(),
                version: None
            }
        );
        assert_eq!(
            ArtifactSpec::parse("system=file:prompts/system.md").unwrap(),
            ArtifactSpec::File {
                role: "system".into(),
                path: "prompts/system.md".into()
            }
        );
        assert!(ArtifactSpec::parse("system").is_err());
        assert!(ArtifactSpec::parse("system=file:../x").is_err());
        assert!(ArtifactSpec::parse("../r=x").is_err());
        assert_eq!(parse_param("top_p=0.9").unwrap().1, serde_json::json!(0.9));
        assert_eq!(parse_param("user=bob").unwrap().1, serde_json::json!("bob"));
        assert_eq!(
            parse_prompt_ref("prompts/onboarding@v1.0.1"),
            Some(("onboarding", "v1.0.1"))
        );
    }
}
