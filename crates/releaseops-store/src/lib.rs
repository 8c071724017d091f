//! The releaseops store: the `.releaseops/` directory of a repository.
//!
//! It finds the directory, reads and validates every file in it, and changes it
//! only through [`Transaction`]s: serialised by a lock, atomic through a
//! journal, and (inside a git repository) committed to git touching nothing but
//! `.releaseops/` paths. Nothing here prints.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod error;
pub mod fsx;
pub mod git;
pub mod history;
mod legacy;
pub mod lock;
pub mod objects;
pub mod reports;
pub mod signing;
pub mod sources;
mod sync;
mod txn;
pub mod view;

use std::cell::OnceCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use releaseops_format::config::ProjectConfig;
use releaseops_format::environment::EnvironmentFile;
use releaseops_format::history::{DeploymentStack, Deployments, Record};
use releaseops_format::manifest::BundleManifest;
use releaseops_format::review::Reviews;
use releaseops_format::{names, version};
use releaseops_stats::Verdict;

pub use error::{Result, StoreError, SyncFailure};
pub use git::{Git, Signature};
pub use history::{ChainReport, HistoryLog, Tip};
pub use lock::LockGuard;
pub use objects::ObjectStore;
pub use sync::{OfflineChanges, Standing, SyncStatus};
pub use txn::{Committed, GitOutcome, Transaction};

pub const DIR_NAME: &str = ".releaseops";
/// No store YAML we accept is larger (see `releaseops_format::yaml`).
pub(crate) const YAML_MAX_BYTES: u64 = releaseops_format::yaml::MAX_YAML_BYTES as u64;
/// Eval reports hold every case's output; a 100,000-case run stays well below.
pub(crate) const REPORT_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// How long a reader waits for a change being written (milliseconds, but a
/// writer stopped mid-write must not block readers for good).
const READ_WAIT: Duration = Duration::from_secs(10);
const WRITER_LOCK: &str = ".lock";
/// The directories of `.releaseops/` that releaseops writes.
pub(crate) const STORE_DIRS: &[&str] = &[
    "history",
    "bundles",
    "environments",
    "deployments",
    "reviews",
    "objects",
    "eval_reports",
    "evals",
    "agent",
];
pub(crate) const APPLY_LOCK: &str = ".apply.lock";
const GITIGNORE: &str = ".lock\n.apply.lock\n.apply.intent\n.journal\n.journal.tmp\n.journal.abandoned\n.uncommitted\n.unpushed\n.tmp-*\n.cache/\n.data/\n";

/// An opened `.releaseops/` directory.
pub struct Store {
    dir: PathBuf,
    root: PathBuf,
    config: ProjectConfig,
    git: OnceCell<Option<Git>>,
    /// `--offline`: with sync on, changes are recorded here only.
    offline: std::sync::atomic::AtomicBool,
    /// What this process remembers about the team's remote.
    sync_memo: std::sync::Mutex<sync::Memo>,
}

/// A stored eval report, as far as gates need it.
#[derive(Debug, Clone)]
pub struct EvalReportInfo {
    pub path: PathBuf,
    pub bundle_id: String,
    pub bundle_version: String,
    pub suite_id: String,
    pub bundle_hash: Option<String>,
    /// The report's own verdict; `None` when it states none this tool knows.
    pub decision: Option<Verdict>,
    pub passed: bool,
    pub pass_rate: Option<f64>,
    /// Counts, for judging the report again against an environment's bar.
    pub total_cases: Option<u64>,
    pub passed_cases: Option<u64>,
    pub split_cases: u64,
    pub timestamp: Option<String>,
    /// The history record that holds this report (with its digest).
    pub seq: Option<u64>,
}

impl EvalReportInfo {
    pub(crate) fn from_raw(
        path: PathBuf,
        r: RawReport,
        fact: Option<&releaseops_format::state::EvalFact>,
    ) -> Self {
        let summary = r.summary;
        let decision = summary
            .as_ref()
            .and_then(|s| s.gate_decision.as_deref())
            .and_then(Verdict::parse);
        EvalReportInfo {
            path,
            bundle_id: r.bundle_id.unwrap_or_default(),
            bundle_version: r.bundle_version.unwrap_or_default(),
            suite_id: fact
                .map(|f| f.report.suite.clone())
                .or(r.suite_id)
                .unwrap_or_default(),
            bundle_hash: r
                .bundle_hash
                .or_else(|| fact.map(|f| f.bundle_hash.clone())),
            passed: decision == Some(Verdict::Pass),
            decision,
            pass_rate: summary.as_ref().and_then(|s| s.pass_rate),
            total_cases: summary.as_ref().and_then(|s| s.total_cases),
            passed_cases: summary.as_ref().and_then(|s| s.passed),
            split_cases: summary.as_ref().and_then(|s| s.split_cases).unwrap_or(0),
            timestamp: r.timestamp,
            seq: fact.map(|f| f.seq),
        }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct RawReport {
    #[serde(default)]
    pub(crate) bundle_id: Option<String>,
    #[serde(default)]
    pub(crate) bundle_version: Option<String>,
    #[serde(default)]
    pub(crate) suite_id: Option<String>,
    #[serde(default)]
    pub(crate) timestamp: Option<String>,
    #[serde(default)]
    pub(crate) bundle_hash: Option<String>,
    #[serde(default)]
    pub(crate) summary: Option<RawSummary>,
}

#[derive(serde::Deserialize)]
pub(crate) struct RawSummary {
    #[serde(default)]
    pub(crate) pass_rate: Option<f64>,
    #[serde(default)]
    pub(crate) gate_decision: Option<String>,
    #[serde(default)]
    pub(crate) total_cases: Option<u64>,
    #[serde(default)]
    pub(crate) passed: Option<u64>,
    #[serde(default)]
    pub(crate) split_cases: Option<u64>,
}

/// `.releaseops/config.yaml`, or the defaults when there is none.
pub(crate) fn read_config(dir: &Path) -> Result<ProjectConfig> {
    let cfg_path = dir.join("config.yaml");
    match read_file(&cfg_path)? {
        Some(b) => ProjectConfig::parse(&b).map_err(|e| StoreError::Config {
            path: cfg_path.clone(),
            source: e,
        }),
        None => Ok(ProjectConfig::default()),
    }
}

/// Reads a store file, refusing a link and one larger than any YAML we
/// accept before reading a byte of it.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    fsx::read_regular_opt(path, YAML_MAX_BYTES)
}

fn list_dir(path: &Path) -> Result<Vec<String>> {
    match fs::read_dir(path) {
        Ok(rd) => Ok(rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StoreError::io("cannot list", path, e)),
    }
}

impl Store {
    /// Finds `.releaseops/` in `start` or the nearest parent that has one.
    pub fn discover(start: &Path) -> Result<Store> {
        let abs = fs::canonicalize(start).map_err(|e| StoreError::io("cannot open", start, e))?;
        let mut cur: Option<&Path> = Some(&abs);
        while let Some(dir) = cur {
            if dir.join(DIR_NAME).is_dir() {
                return Store::open(dir);
            }
            cur = dir.parent();
        }
        Err(StoreError::NotInitialized {
            start: start.to_path_buf(),
        })
    }

    /// Opens `<root>/.releaseops/`, finishing any transaction a killed process left.
    pub fn open(root: &Path) -> Result<Store> {
        let root = fs::canonicalize(root).map_err(|e| StoreError::io("cannot open", root, e))?;
        let dir = root.join(DIR_NAME);
        if !dir.is_dir() {
            return Err(StoreError::NotInitialized { start: root });
        }
        // A linked store (or part of one) is refused: git records the link,
        // not the files, so every commit would stage their deletion, and a
        // link can lead the store's writes anywhere.
        for sub in std::iter::once("").chain(STORE_DIRS.iter().copied()) {
            let p = if sub.is_empty() {
                dir.clone()
            } else {
                dir.join(sub)
            };
            if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(StoreError::Source {
                    message: format!(
                        "{} is a symbolic link; releaseops needs the real directory (git would record only the link, and writes through it could land anywhere)",
                        p.display()
                    ),
                    hint: Some(
                        "replace the link with the directory it points to (`rm LINK && mv TARGET LINK`), then run the command again".into(),
                    ),
                });
            }
        }
        let config = read_config(&dir)?;
        let store = Store {
            dir,
            root,
            config,
            git: OnceCell::new(),
            offline: std::sync::atomic::AtomicBool::new(false),
            sync_memo: std::sync::Mutex::default(),
        };
        // A journal with nobody holding the writer lock is a killed
        // process's: finish it. One whose writer is alive is that writer's
        // to finish (readers wait for it on the apply lock, briefly).
        if store.dir.join(txn::JOURNAL).exists()
            && let Some(_lock) = lock::try_acquire(&store.dir.join(WRITER_LOCK))?
        {
            txn::recover(&store)?;
        }
        Ok(store)
    }

    /// The `.releaseops/` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The repository root (the directory holding `.releaseops/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config(&self) -> &ProjectConfig {
        &self.config
    }

    /// The git repository the store lives in, if any.
    pub fn git(&self) -> Option<&Git> {
        self.git
            .get_or_init(|| Git::discover(&self.root, &self.dir))
            .as_ref()
    }

    /// `.releaseops/` relative to the git work tree top, with a trailing slash.
    pub(crate) fn git_prefix(&self) -> String {
        let Some(git) = self.git() else {
            return format!("{DIR_NAME}/");
        };
        let top = fs::canonicalize(git.top()).unwrap_or_else(|_| git.top().to_path_buf());
        match self.dir.strip_prefix(&top) {
            Ok(rel) => {
                let s = rel.to_string_lossy().replace('\\', "/");
                if s.is_empty() {
                    String::new()
                } else {
                    format!("{s}/")
                }
            }
            Err(_) => format!("{DIR_NAME}/"),
        }
    }

    /// The repository root relative to the git top (`""` or `sub/dir/`).
    pub fn root_git_prefix(&self) -> String {
        let p = self.git_prefix();
        p.strip_suffix(&format!("{DIR_NAME}/"))
            .unwrap_or("")
            .to_string()
    }

    pub fn objects(&self) -> ObjectStore {
        ObjectStore::new(self.dir.clone())
    }

    pub fn history(&self) -> HistoryLog {
        HistoryLog::new(
            self.dir.join("history"),
            self.dir.join("promotion_history.yaml"),
        )
    }

    /// Holds off changes while a reader looks at several files (the history
    /// and the environments) so it never sees half of one. Readers do not
    /// block each other.
    pub fn read_guard(&self) -> Result<lock::LockGuard> {
        lock::acquire_read(&self.dir, READ_WAIT)
    }

    /// Starts a transaction: takes the writer lock (waiting `lock.wait_seconds`) and
    /// finishes any transaction a killed process left behind.
    ///
    /// With `sync:` on, the remote's branch is fetched and applied here
    /// first, so the change is checked against the team's latest state, and
    /// the commit pushes it there before applying it here.
    pub fn begin(&self) -> Result<Transaction<'_>> {
        let guard = self.lock_for_change()?;
        // The remote's state comes in before anything is read for the change.
        let plan = match read_config(&self.dir)?.sync {
            Some(cfg) => Some(self.prepare_sync(&cfg)?),
            None => None,
        };
        let mut tx = self.transaction(guard)?;
        if let Some(plan) = plan {
            tx.set_sync(plan);
        }
        Ok(tx)
    }

    /// Takes the writer lock (waiting `lock.wait_seconds`) and finishes any
    /// transaction a killed process left behind.
    pub(crate) fn lock_for_change(&self) -> Result<LockGuard> {
        fs::create_dir_all(&self.dir).map_err(|e| StoreError::io("cannot create", &self.dir, e))?;
        let wait = read_config(&self.dir)
            .map(|c| c.lock.wait())
            .unwrap_or_else(|_| self.config.lock.wait());
        let guard = lock::acquire(&self.dir.join(WRITER_LOCK), wait)?;
        txn::recover(self)?;
        Ok(guard)
    }

    /// A transaction on this clone's state, under `guard`.
    pub(crate) fn transaction(&self, guard: LockGuard) -> Result<Transaction<'_>> {
        let mut tx = Transaction::new(self, guard)?;
        match read_file(&self.dir.join(".gitignore"))? {
            // Trees made by the existing tool have none; keep our lock and
            // journal out of the user's `git status`.
            None => tx.write(".gitignore", GITIGNORE.to_string()),
            // Stores from before a newer local file existed get its line.
            Some(b) => {
                let mut text = String::from_utf8_lossy(&b).into_owned();
                let missing: Vec<&str> = GITIGNORE
                    .lines()
                    .filter(|want| !text.lines().any(|l| l.trim() == *want))
                    .collect();
                if !missing.is_empty() {
                    if !text.is_empty() && !text.ends_with('\n') {
                        text.push('\n');
                    }
                    for line in missing {
                        text.push_str(line);
                        text.push('\n');
                    }
                    tx.write(".gitignore", text);
                }
            }
        }
        Ok(tx)
    }

    // ----- bundles -------------------------------------------------------

    pub fn bundle_rel_path(id: &str, version: &str) -> String {
        format!("bundles/{id}/{version}.yaml")
    }

    /// Bundle ids with at least one version, sorted.
    pub fn bundle_ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = list_dir(&self.dir.join("bundles"))?
            .into_iter()
            .filter(|id| names::validate_bundle_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Versions of a bundle, ascending by semantic version.
    pub fn bundle_versions(&self, id: &str) -> Result<Vec<String>> {
        names::validate_bundle_id(id).map_err(|e| StoreError::format(id, e))?;
        let mut vs: Vec<String> = list_dir(&self.dir.join("bundles").join(id))?
            .into_iter()
            .filter_map(|f| f.strip_suffix(".yaml").map(|s| s.to_string()))
            .filter(|v| names::validate_version(v).is_ok())
            .collect();
        version::sort(&mut vs);
        Ok(vs)
    }

    /// The highest version of a bundle.
    pub fn latest_version(&self, id: &str) -> Result<String> {
        let vs = self.bundle_versions(id)?;
        vs.last().cloned().ok_or_else(|| StoreError::UnknownBundle {
            id: id.to_string(),
            available: self.bundle_ids().unwrap_or_default(),
        })
    }

    pub fn bundle_exists(&self, id: &str, version: &str) -> bool {
        names::validate_bundle_id(id).is_ok()
            && names::validate_version(version).is_ok()
            && self.dir.join(Self::bundle_rel_path(id, version)).is_file()
    }

    /// Loads and validates a manifest: it must parse, name the id and version
    /// its path names, and its `bundle_hash` must match its content.
    pub fn load_bundle(&self, id: &str, version: &str) -> Result<BundleManifest> {
        names::validate_bundle_id(id).map_err(|e| StoreError::format(id, e))?;
        names::validate_version(version).map_err(|e| StoreError::format(version, e))?;
        let path = self.dir.join(Self::bundle_rel_path(id, version));
        let Some(bytes) = read_file(&path)? else {
            let available = self.bundle_versions(id)?;
            if available.is_empty() {
                return Err(StoreError::UnknownBundle {
                    id: id.into(),
                    available: self.bundle_ids()?,
                });
            }
            return Err(StoreError::BundleNotFound {
                id: id.into(),
                version: version.into(),
                available,
            });
        };
        let m = BundleManifest::parse(&bytes).map_err(|e| StoreError::format(&path, e))?;
        if m.metadata.id != id || m.metadata.version != version {
            return Err(StoreError::ManifestPathMismatch {
                path,
                inner: format!("{}@{}", m.metadata.id, m.metadata.version),
                outer: format!("{id}@{version}"),
            });
        }
        m.check_hash().map_err(|e| StoreError::format(&path, e))?;
        Ok(m)
    }

    // ----- environments ----------------------------------------------------

    pub fn env_rel_path(name: &str) -> String {
        format!("environments/{name}.yaml")
    }

    /// Environment names: the pipeline first, in order, then any other
    /// environment files, sorted.
    pub fn environments(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = self.config.pipeline.clone();
        let mut others: Vec<String> = list_dir(&self.dir.join("environments"))?
            .into_iter()
            .filter_map(|f| f.strip_suffix(".yaml").map(|s| s.to_string()))
            .filter(|n| names::validate_env_name(n).is_ok() && !out.contains(n))
            .collect();
        others.sort();
        out.extend(others);
        Ok(out)
    }

    /// Loads an environment. A pipeline environment with no file yet is empty.
    pub fn load_env(&self, name: &str) -> Result<EnvironmentFile> {
        names::validate_env_name(name).map_err(|e| StoreError::format(name, e))?;
        let path = self.dir.join(Self::env_rel_path(name));
        // Parsed once while the file stays as it is: a server's pages read
        // every environment on each request.
        let Some(parsed) =
            fsx::read_parsed(&path, YAML_MAX_BYTES, "environment", EnvironmentFile::parse)?
        else {
            if self.config.pipeline.iter().any(|p| p == name) {
                return Ok(EnvironmentFile::new(name));
            }
            return Err(StoreError::EnvNotFound {
                name: name.into(),
                available: self.environments()?,
            });
        };
        let env = parsed.map_err(|e| StoreError::format(&path, e))?;
        if env.environment != name {
            return Err(StoreError::EnvNameMismatch {
                path,
                name: name.into(),
                inner: env.environment,
            });
        }
        Ok(env)
    }

    pub fn env_file_exists(&self, name: &str) -> bool {
        self.dir.join(Self::env_rel_path(name)).is_file()
    }

    pub fn deployment_rel_path(env: &str, bundle: &str) -> String {
        format!("deployments/{env}/{bundle}.yaml")
    }

    /// One bundle's deployment stack in one environment; rebuilt from the
    /// history when the index has never been written (the existing tool's trees).
    pub fn load_deployment(&self, env: &str, bundle: &str) -> Result<DeploymentStack> {
        let path = self.dir.join(Self::deployment_rel_path(env, bundle));
        if let Some(bytes) = read_file(&path)? {
            return DeploymentStack::parse(&bytes).map_err(|e| StoreError::format(&path, e));
        }
        let d = self.replay_legacy(env)?;
        Ok(DeploymentStack {
            environment: env.into(),
            bundle: bundle.into(),
            stack: d.bundles.get(bundle).cloned().unwrap_or_default(),
        })
    }

    /// Every bundle's deployment stack in one environment.
    pub fn load_deployments(&self, env: &str) -> Result<Deployments> {
        let dir = self.dir.join("deployments").join(env);
        if !dir.is_dir() {
            return self.replay_legacy(env);
        }
        let mut d = Deployments {
            environment: env.to_string(),
            ..Default::default()
        };
        let mut files = list_dir(&dir)?;
        files.sort();
        for f in files {
            let Some(bundle) = f.strip_suffix(".yaml") else {
                continue;
            };
            let s = self.load_deployment(env, bundle)?;
            d.bundles.insert(s.bundle, s.stack);
        }
        Ok(d)
    }

    fn replay_legacy(&self, env: &str) -> Result<Deployments> {
        let mut d = Deployments {
            environment: env.to_string(),
            ..Default::default()
        };
        if self.history().is_empty()? {
            for r in self.history().all()? {
                if r.is_deployment() && r.env.as_deref() == Some(env) {
                    d.apply(&r);
                }
            }
        }
        Ok(d)
    }

    // ----- reviews -----------------------------------------------------------

    pub fn reviews_rel_path(id: &str, version: &str) -> String {
        format!("reviews/{id}/{version}.yaml")
    }

    pub fn load_reviews(&self, id: &str, version: &str) -> Result<Reviews> {
        let path = self.dir.join(Self::reviews_rel_path(id, version));
        match read_file(&path)? {
            Some(b) => Reviews::parse(&b).map_err(|e| StoreError::format(&path, e)),
            None => Ok(Reviews::default()),
        }
    }

    // ----- init ----------------------------------------------------------

    /// Creates `.releaseops/` (or completes a partial one) in `root`. Returns
    /// the paths created, relative to `.releaseops/`.
    pub fn init(root: &Path) -> Result<(Store, Vec<String>)> {
        Store::init_with(root, false)
    }

    /// As [`Store::init`]; with `rehearsal`, a new store is made for
    /// rehearsals (a simulated clock is allowed, every record is marked).
    /// An existing store with records is never turned into one.
    pub fn init_with(root: &Path, rehearsal: bool) -> Result<(Store, Vec<String>)> {
        let dir = root.join(DIR_NAME);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("cannot create", &dir, e))?;
        let store = Store::open(root)?;
        let mut created = Vec::new();
        let mut tx = store.begin()?;
        if tx.staged(".gitignore").is_some() {
            created.push(".gitignore".to_string());
        }
        if !store.dir.join("config.yaml").exists() {
            let mut config = store.config.clone();
            config.rehearsal = rehearsal;
            tx.write("config.yaml", config.to_yaml());
            created.push("config.yaml".into());
        } else if rehearsal && !store.config.rehearsal {
            return Err(StoreError::Source {
                message: "this store is not a rehearsal store, and an existing store is never turned into one".into(),
                hint: Some("rehearse in a new directory: `releaseops init --rehearsal --path <dir>`".into()),
            });
        }
        for env in &store.config.pipeline {
            if !store.env_file_exists(env) {
                let rel = Self::env_rel_path(env);
                tx.write(rel.clone(), EnvironmentFile::new(env).to_yaml());
                created.push(rel);
            }
        }
        for sub in ["bundles", "evals", "eval_reports"] {
            let p = store.dir.join(sub);
            if !p.exists() {
                fs::create_dir_all(&p).map_err(|e| StoreError::io("cannot create", &p, e))?;
                created.push(format!("{sub}/"));
            }
        }
        if !created.is_empty() {
            let author = git::user_identity(root).map(|a| Signature::from_actor(&a));
            tx.commit("releaseops: init", author.as_ref())?;
        }
        let store = Store::open(root)?;
        Ok((store, created))
    }
}

/// Appends the existing tool's history to a transaction, once: the first time
/// anything is recorded in a tree that has a `promotion_history.yaml`, an
/// environment mapping, or an eval report the existing tool wrote.
///
/// Every environment's deployment index is written from the imported records.
pub fn import_legacy_history(tx: &mut Transaction<'_>) -> Result<Vec<Record>> {
    if tx.next_seq() != 1 {
        return Ok(Vec::new());
    }
    let store = tx.store();
    let records = legacy::import_records(store)?;
    let mut state = releaseops_format::state::ChainState::default();
    let mut out = Vec::new();
    for r in records {
        let r = tx.append(r)?;
        state.apply(&r);
        out.push(r);
    }
    for (env, bundles) in &state.deployments {
        for bundle in bundles.keys() {
            tx.write(
                Store::deployment_rel_path(env, bundle),
                state.deployment_stack(env, bundle).to_yaml(),
            );
        }
    }
    Ok(out)
}
