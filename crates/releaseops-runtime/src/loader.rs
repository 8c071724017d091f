use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use releaseops_format::environment::EnvironmentFile;

use crate::bundle::{Content, LoadedBundle, Source, read_limited, yaml_stems};
use crate::error::LoadError;
use crate::reference::BundleRef;

/// How often an environment pointer is checked again by default.
pub const DEFAULT_REVALIDATE: Duration = Duration::from_secs(1);

/// Loads bundles from a repository's `.releaseops/` directory or from an
/// export, verified against their hashes.
///
/// - A bundle version is read and verified once and then cached for good:
///   versions are immutable.
/// - An environment pointer (`id@env`) is checked again at most once per
///   interval (default 1 s) with one `stat` of the environment file, so a
///   promotion or rollback is picked up without a restart; between checks
///   a load is a hash-map lookup.
/// - When a check fails (the store became unreadable, or what it now points
///   at does not verify), the last good bundle keeps being served and the
///   error is reported once, through `tracing` and [`RuntimeLoader::last_error`].
///
/// `Send + Sync`, and cheap to clone (clones share the cache).
#[derive(Clone)]
pub struct RuntimeLoader {
    inner: Arc<Inner>,
}

/// (env, id) -> (seq of the deployment record backing the pointer, seq the
/// history was checked through).
type Backed = Mutex<HashMap<(String, String), (u64, u64)>>;

struct Inner {
    dir: PathBuf,
    root: Option<PathBuf>,
    revalidate: Duration,
    /// Loaded references, by the text the caller passed.
    refs: RwLock<HashMap<String, Entry>>,
    /// Verified content, by (id, version): immutable, kept for good.
    versions: RwLock<HashMap<(String, String), Arc<Content>>>,
    /// Bumped by [`RuntimeLoader::invalidate`]; entries older recheck.
    generation: AtomicU64,
    /// The error being served around, reported once until it clears.
    /// By reference, in the order they started: one reference's recovery
    /// does not hide another's failure.
    failing: Mutex<Vec<(String, LoadError)>>,
    /// (env, id) -> (the deployment record backing its pointer, the record
    /// the history was checked through): a pointer check reads only what
    /// was appended since.
    backed: Backed,
    started: Instant,
}

#[derive(Clone)]
struct Entry {
    bundle: Arc<LoadedBundle>,
    /// When the pointer was last checked (nanoseconds since `started`).
    checked: Arc<AtomicU64>,
    generation: u64,
    /// The environment file as it was when read; `None` for pinned versions.
    stamp: Option<Stamp>,
}

/// What tells an environment file changed: it is always replaced by a
/// rename, so the inode changes on every write; size and mtime cover the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Stamp> {
        let m = std::fs::metadata(path)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode,
        })
    }
}

/// A file watch started by [`RuntimeLoader::watch`]; dropping it ends it.
#[cfg(feature = "watch")]
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
}

#[cfg(feature = "watch")]
impl std::fmt::Debug for FileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileWatch")
    }
}

impl Inner {
    /// A pinned version is always fresh; a pointer until the interval runs
    /// out or [`RuntimeLoader::invalidate`] is called.
    fn fresh(&self, e: &Entry, now: u64) -> bool {
        e.stamp.is_none()
            || (now.saturating_sub(e.checked.load(Ordering::Relaxed))
                < self.revalidate.as_nanos() as u64
                && e.generation == self.generation.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for RuntimeLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeLoader")
            .field("dir", &self.inner.dir)
            .field("revalidate", &self.inner.revalidate)
            .finish()
    }
}

impl RuntimeLoader {
    /// A loader over `path`: a repository root (holding `.releaseops/`), the
    /// `.releaseops` directory itself, or a directory written by
    /// `releaseops export`.
    pub fn new(path: impl AsRef<Path>) -> Result<RuntimeLoader, LoadError> {
        RuntimeLoader::with_revalidate(path, DEFAULT_REVALIDATE)
    }

    /// The same, checking environment pointers again every `interval`
    /// (`Duration::ZERO`: on every load).
    pub fn with_revalidate(
        path: impl AsRef<Path>,
        interval: Duration,
    ) -> Result<RuntimeLoader, LoadError> {
        let path = path.as_ref();
        let nested = path.join(".releaseops");
        let (dir, root) = if nested.is_dir() {
            (nested, Some(path.to_path_buf()))
        } else if path.join("bundles").is_dir() || path.join("environments").is_dir() {
            let root = (path.file_name() == Some(std::ffi::OsStr::new(".releaseops")))
                .then(|| path.parent().map(Path::to_path_buf))
                .flatten();
            (path.to_path_buf(), root)
        } else {
            return Err(LoadError::NoStore {
                path: path.to_path_buf(),
            });
        };
        Ok(RuntimeLoader {
            inner: Arc::new(Inner {
                dir,
                root,
                revalidate: interval,
                refs: RwLock::new(HashMap::new()),
                versions: RwLock::new(HashMap::new()),
                generation: AtomicU64::new(0),
                failing: Mutex::new(Vec::new()),
                backed: Mutex::new(HashMap::new()),
                started: Instant::now(),
            }),
        })
    }

    /// The directory bundles are read from.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Loads `support-agent@prod` (what prod runs now) or
    /// `support-agent==1.2.0` (that version).
    pub fn load(&self, reference: &str) -> Result<Arc<LoadedBundle>, LoadError> {
        let inner = &*self.inner;
        let now = inner.started.elapsed().as_nanos() as u64;
        let cached = {
            let refs = inner.refs.read().unwrap_or_else(|p| p.into_inner());
            match refs.get(reference) {
                Some(e) if inner.fresh(e, now) => return Ok(e.bundle.clone()),
                other => other.cloned(),
            }
        };
        self.refresh(reference, cached, now)
    }

    /// The bundle for `reference` when it can be answered from memory, with
    /// no filesystem access at all (`None`: call [`RuntimeLoader::load`],
    /// which may read; an async server does that on a blocking thread).
    pub fn load_cached(&self, reference: &str) -> Option<Arc<LoadedBundle>> {
        let inner = &*self.inner;
        let now = inner.started.elapsed().as_nanos() as u64;
        let refs = inner.refs.read().unwrap_or_else(|p| p.into_inner());
        let e = refs.get(reference)?;
        inner.fresh(e, now).then(|| e.bundle.clone())
    }

    /// Makes the next load of every environment pointer check the store
    /// (for a file watcher or a server's change notice).
    pub fn invalidate(&self) {
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Watches the environment files, so a promotion or rollback is picked
    /// up by the next load instead of within the revalidation interval. The
    /// watch lasts as long as the returned guard.
    #[cfg(feature = "watch")]
    pub fn watch(&self) -> Result<FileWatch, LoadError> {
        self.watch_with(|| {})
    }

    /// [`RuntimeLoader::watch`], calling `on_change` after each change is
    /// noted (a server uses it to tell its clients).
    #[cfg(feature = "watch")]
    pub fn watch_with(
        &self,
        on_change: impl Fn() + Send + 'static,
    ) -> Result<FileWatch, LoadError> {
        use notify::Watcher;
        let dir = self.inner.dir.join("environments");
        let inner = Arc::downgrade(&self.inner);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // An error from the watch itself still means: look again.
                let relevant = event.map_or(true, |e| !e.kind.is_access());
                if relevant {
                    if let Some(inner) = inner.upgrade() {
                        inner.generation.fetch_add(1, Ordering::Relaxed);
                    }
                    on_change();
                }
            })
            .map_err(|e| LoadError::Io {
                path: dir.clone(),
                message: format!("cannot start a file watch: {e}"),
            })?;
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| LoadError::Io {
                path: dir.clone(),
                message: format!("cannot watch the environment files: {e}"),
            })?;
        Ok(FileWatch { _watcher: watcher })
    }

    /// The error the loader is serving a last good bundle around, if any
    /// (the latest, when several references are served that way).
    pub fn last_error(&self) -> Option<LoadError> {
        self.inner
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .map(|(_, e)| e.clone())
    }

    fn refresh(
        &self,
        reference: &str,
        cached: Option<Entry>,
        now: u64,
    ) -> Result<Arc<LoadedBundle>, LoadError> {
        let inner = &*self.inner;
        let generation = inner.generation.load(Ordering::Relaxed);
        let r = BundleRef::parse(reference)?;
        let result = match &r {
            BundleRef::Pinned { id, version } => self
                .content(id, version)
                .map(|c| (Arc::new(LoadedBundle::new(c, None)), None)),
            BundleRef::Env { id, env } => self.resolve_env(id, env, cached.as_ref()),
        };
        match result {
            Ok((bundle, stamp)) => {
                self.clear_failure(reference);
                let entry = Entry {
                    bundle: bundle.clone(),
                    checked: Arc::new(AtomicU64::new(now)),
                    generation,
                    stamp,
                };
                inner
                    .refs
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(reference.to_string(), entry);
                Ok(bundle)
            }
            Err(e) => match cached {
                Some(old) if self.store_broken(&e) => {
                    // Serve the last good bundle; look again after the interval.
                    old.checked.store(now, Ordering::Relaxed);
                    self.report_failure(reference, &e);
                    Ok(old.bundle)
                }
                Some(_) => {
                    // A real answer (the environment no longer runs it, or
                    // is gone): forget the old bundle rather than serve it.
                    inner
                        .refs
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(reference);
                    self.clear_failure(reference);
                    Err(e)
                }
                None => Err(e),
            },
        }
    }

    /// True when `e` says the store cannot be read (rather than that it
    /// answers differently now): then the last good bundle is served.
    fn store_broken(&self, e: &LoadError) -> bool {
        match e {
            LoadError::NotDeployed { .. } | LoadError::UnknownVersion { .. } => false,
            // An environment file missing from a present directory was removed.
            LoadError::UnknownEnv { .. } => !self.inner.dir.join("environments").is_dir(),
            _ => true,
        }
    }

    /// What `env` maps `id` to now, reusing the cached bundle when the
    /// environment file has not changed or still names the same version.
    fn resolve_env(
        &self,
        id: &str,
        env: &str,
        cached: Option<&Entry>,
    ) -> Result<(Arc<LoadedBundle>, Option<Stamp>), LoadError> {
        let dir = &self.inner.dir;
        let path = dir.join("environments").join(format!("{env}.yaml"));
        let stamp = match Stamp::of(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::UnknownEnv {
                    env: env.into(),
                    dir: dir.clone(),
                    available: list_envs(dir),
                });
            }
            Err(e) => return Err(LoadError::io(&path, &e)),
        };
        if let Some(e) = cached
            && e.stamp.as_ref() == Some(&stamp)
        {
            return Ok((e.bundle.clone(), Some(stamp)));
        }
        // The pointer and the history behind it, as one writer left them.
        let reading = read_lock(dir)?;
        let bytes = read_limited(&path).map_err(|e| LoadError::io(&path, &e))?;
        let file =
            EnvironmentFile::parse(&bytes).map_err(|e| LoadError::corrupt(&path, e.to_string()))?;
        if file.environment != env {
            return Err(LoadError::tampered(
                &path,
                format!(
                    "it describes environment '{}', not '{env}'",
                    file.environment
                ),
            ));
        }
        let Some(version) = file.bundle_mappings.get(id) else {
            return Err(LoadError::NotDeployed {
                id: id.into(),
                env: env.into(),
                deployed: file.bundle_mappings.keys().cloned().collect(),
            });
        };
        check_pointer(dir, env, id, version, &self.inner.backed)?;
        drop(reading);
        if let Some(e) = cached
            && e.bundle.version() == version
        {
            return Ok((e.bundle.clone(), Some(stamp)));
        }
        let content = self.content(id, version)?;
        Ok((
            Arc::new(LoadedBundle::new(content, Some(env.to_string()))),
            Some(stamp),
        ))
    }

    /// Verified content of `id==version`, read once.
    fn content(&self, id: &str, version: &str) -> Result<Arc<Content>, LoadError> {
        let key = (id.to_string(), version.to_string());
        if let Some(c) = self
            .inner
            .versions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let source = Source {
            dir: &self.inner.dir,
            root: self.inner.root.as_deref(),
        };
        let content = Arc::new(source.content(id, version)?);
        self.inner
            .versions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, content.clone());
        Ok(content)
    }

    fn report_failure(&self, reference: &str, e: &LoadError) {
        let mut failing = self.inner.failing.lock().unwrap_or_else(|p| p.into_inner());
        match failing.iter_mut().find(|(r, _)| r == reference) {
            Some((_, known)) => *known = e.clone(),
            None => {
                tracing::warn!(
                    reference,
                    error = %e,
                    "releaseops: serving the last good bundle; the store cannot be read as it is now (reported once until it recovers)"
                );
                failing.push((reference.to_string(), e.clone()));
            }
        }
    }

    fn clear_failure(&self, reference: &str) {
        let mut failing = self.inner.failing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = failing.iter().position(|(r, _)| r == reference) {
            failing.remove(i);
            tracing::info!(
                reference,
                "releaseops: the store reads again; serving what it points at"
            );
        }
    }
}

/// Shared locks on the store's apply locks, held while a pointer and the
/// history behind it are read, so a change being written is seen whole or
/// not at all. The store's protocol (its `lock.rs`): `.apply.intent` shared
/// and let go once `.apply.lock` is held shared; a writer holds both
/// exclusively, for milliseconds. Files that do not exist mean no writer of
/// ours ever ran here; they are opened read-only and never created.
struct ReadLock {
    _file: Option<File>,
}

fn read_lock(dir: &Path) -> Result<ReadLock, LoadError> {
    const WAIT: Duration = Duration::from_secs(5);
    let shared = |name: &str| -> Result<Option<File>, LoadError> {
        let path = dir.join(name);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LoadError::io(&path, &e)),
        };
        let start = Instant::now();
        loop {
            match file.try_lock_shared() {
                Ok(()) => return Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < WAIT => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(LoadError::Io {
                        path,
                        message: format!(
                            "a change has been being written for over {} s (a writer stopped mid-write?)",
                            WAIT.as_secs()
                        ),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(LoadError::io(&path, &e)),
            }
        }
    };
    let _turn = shared(".apply.intent")?;
    Ok(ReadLock {
        _file: shared(".apply.lock")?,
    })
}

/// A pointer must be backed by the history: the environment's deployment
/// index for the bundle must have the same version on top, the record it
/// names must be the deployment of exactly that version there, and no later
/// record up to `history/HEAD` may deploy that bundle there again. A hand
/// edit of `environments/<env>.yaml` (or of it and the index together, even
/// pointing at an old real record) is refused, and the last good bundle
/// served. The history after the record is read once: later checks read only
/// what was appended since. (`history verify`, the CLI and the API's writes
/// check every link of the chain; this is what a running agent can afford
/// when a pointer changes.) Trees with no history of ours, the existing
/// tool's and exports, have nothing to check against.
fn check_pointer(
    dir: &Path,
    env: &str,
    id: &str,
    version: &str,
    backed: &Backed,
) -> Result<(), LoadError> {
    use releaseops_format::history::{DeploymentStack, Record, SEGMENT_RECORDS};
    let history = dir.join("history");
    let head_path = history.join("HEAD");
    if !head_path.exists() {
        // Ours always has HEAD once it has records or indexes.
        let ours = dir.join("deployments").exists()
            || std::fs::read_dir(&history)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
        if ours {
            return Err(LoadError::tampered(
                &head_path,
                "the history's HEAD is missing (removed outside releaseops); run `releaseops history verify`",
            ));
        }
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Head {
        seq: u64,
    }
    let head: Head = read_limited(&head_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| LoadError::corrupt(&head_path, "unreadable history tip"))?;
    let index = dir.join("deployments").join(env).join(format!("{id}.yaml"));
    let bytes = read_limited(&index).map_err(|e| {
        LoadError::corrupt(
            &index,
            format!("cannot read the deployment index that must back {id}@{env} -> {version}: {e}"),
        )
    })?;
    let stack =
        DeploymentStack::parse(&bytes).map_err(|e| LoadError::corrupt(&index, e.to_string()))?;
    let Some(top) = stack.stack.last().filter(|d| d.version == version) else {
        return Err(LoadError::tampered(
            dir.join("environments").join(format!("{env}.yaml")),
            format!(
                "it maps {id} to {version}, but the deployment index says {} is live (changed outside releaseops); run `releaseops history verify`",
                stack.stack.last().map_or("nothing", |d| d.version.as_str())
            ),
        ));
    };
    let seq = top.seq;
    let forged = || {
        LoadError::tampered(
            &index,
            format!(
                "it says record {seq} put {id}@{version} live in '{env}', but the history does not (changed outside releaseops); run `releaseops history verify`"
            ),
        )
    };
    if seq == 0 || seq > head.seq {
        return Err(forged());
    }
    let key = (env.to_string(), id.to_string());
    let through = match backed.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        Some((s, t)) if *s == seq && *t <= head.seq => Some(*t),
        _ => None,
    };
    let segment_of = |n: u64| history.join(format!("{:08}.jsonl", (n - 1) / SEGMENT_RECORDS));
    if through.is_none() {
        let path = segment_of(seq);
        let text = read_limited(&path).map_err(|e| LoadError::io(&path, &e))?;
        let line = std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.lines().nth(((seq - 1) % SEGMENT_RECORDS) as usize));
        let record = line.and_then(|l| Record::parse_line(l).ok());
        let ok = record.is_some_and(|r| {
            r.seq == seq
                && r.is_deployment()
                && r.env.as_deref() == Some(env)
                && r.bundle_id.as_deref() == Some(id)
                && r.version.as_deref() == Some(version)
        });
        if !ok {
            return Err(forged());
        }
    }
    // Nothing after it may deploy this bundle here again.
    let from = through.unwrap_or(seq) + 1;
    if from <= head.seq {
        let (env_key, id_key) = (
            format!("\"env\":\"{env}\""),
            format!("\"bundle_id\":\"{id}\""),
        );
        let mut n = from;
        while n <= head.seq {
            let path = segment_of(n);
            let text = read_limited(&path).map_err(|e| LoadError::io(&path, &e))?;
            let text = String::from_utf8_lossy(&text);
            let first = ((n - 1) / SEGMENT_RECORDS) * SEGMENT_RECORDS + 1;
            for (i, line) in text.lines().enumerate() {
                let at = first + i as u64;
                if at < n || at > head.seq || !(line.contains(&env_key) && line.contains(&id_key)) {
                    continue;
                }
                if Record::parse_line(line).is_ok_and(|r| {
                    r.is_deployment()
                        && r.env.as_deref() == Some(env)
                        && r.bundle_id.as_deref() == Some(id)
                }) {
                    return Err(LoadError::tampered(
                        &index,
                        format!(
                            "it says record {seq} put {id}@{version} live in '{env}', but record {at} deployed {id} there since (changed outside releaseops); run `releaseops history verify`"
                        ),
                    ));
                }
            }
            n = first + SEGMENT_RECORDS;
        }
    }
    backed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, (seq, head.seq));
    Ok(())
}

fn list_envs(dir: &Path) -> Vec<String> {
    yaml_stems(&dir.join("environments"))
}
