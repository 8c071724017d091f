//! Transactions: every state change is staged in memory, then made durable as
//! one journal file (the commit point: written, synced, renamed into place),
//! then applied file by file, then committed to git, then the journal removed.
//! A process killed at any instant leaves either no journal (nothing happened)
//! or a complete one, which the next process to open the store applies again;
//! applying is idempotent (whole-file replaces, appends at a recorded offset).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use releaseops_format::hash::sha256_prefixed;
use releaseops_format::history::Record;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::{Result, StoreError};
use crate::git::{Git, Signature};
use crate::history::{Tip, segment_name};
use crate::lock::LockGuard;
use crate::objects::write_synced;

pub(crate) const JOURNAL: &str = ".journal";
const JOURNAL_TMP: &str = ".journal.tmp";
const UNCOMMITTED: &str = ".uncommitted";
/// Where a journal goes whose change was undone but which could not be
/// removed: never applied, removed by the next transaction.
const ABANDONED: &str = ".journal.abandoned";

#[derive(Serialize, Deserialize, Default)]
struct Journal {
    files: Vec<JFile>,
    appends: Vec<JAppend>,
    #[serde(default)]
    commit: Option<JCommit>,
    /// Files removed (a sync that undoes what the remote refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    removes: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct JFile {
    path: String,
    content: String,
}

#[derive(Serialize, Deserialize)]
struct JAppend {
    path: String,
    offset: u64,
    content: String,
}

#[derive(Serialize, Deserialize)]
struct JCommit {
    message: String,
    name: String,
    email: String,
    /// Paths relative to `.releaseops/` that the commit covers.
    paths: Vec<String>,
}

/// The result of a committed transaction.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// The records appended, with their sequence numbers.
    pub records: Vec<Record>,
    pub git: GitOutcome,
}

/// What became of a change's git commit: every changing operation reports
/// it, under these two names.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GitOutcome {
    /// The git commit made, if any.
    pub git_commit: Option<String>,
    /// Set when the change is durable but the git commit failed; the paths will
    /// be committed with the next transaction.
    pub git_error: Option<String>,
}

/// A serialised change to the store. Holds the store lock until dropped.
pub struct Transaction<'s> {
    store: &'s Store,
    _lock: LockGuard,
    files: BTreeMap<String, String>,
    extra_paths: Vec<String>,
    tip: Tip,
    /// file (relative to `.releaseops/`) -> (offset where this transaction's
    /// lines start, lines)
    appends: BTreeMap<String, (u64, String)>,
    records: Vec<Record>,
    /// `config.yaml` as it is under the lock (another process may have
    /// changed it since the store was opened).
    config: releaseops_format::config::ProjectConfig,
    /// The verified history's state under the lock: a broken chain stops
    /// the transaction before anything is staged, so it is never extended.
    view: std::sync::Arc<crate::view::ChainView>,
    /// With `sync:` on: the remote's state this change is applied on.
    sync: Option<crate::sync::Plan>,
}

impl<'s> Transaction<'s> {
    pub(crate) fn new(store: &'s Store, lock: LockGuard) -> Result<Self> {
        let view = store.chain_view()?;
        let tip = view.tip().clone();
        let config = crate::read_config(store.dir())?;
        Ok(Transaction {
            store,
            _lock: lock,
            files: BTreeMap::new(),
            extra_paths: Vec::new(),
            tip,
            appends: BTreeMap::new(),
            records: Vec::new(),
            config,
            view: std::sync::Arc::new(view),
            sync: None,
        })
    }

    pub(crate) fn set_sync(&mut self, plan: crate::sync::Plan) {
        self.sync = Some(plan);
    }

    /// The state the verified history implies, as it was when the
    /// transaction began (before anything it appends).
    pub fn view(&self) -> std::sync::Arc<crate::view::ChainView> {
        self.view.clone()
    }

    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// The project configuration, read under the lock.
    pub fn config(&self) -> &releaseops_format::config::ProjectConfig {
        &self.config
    }

    /// Stages a whole-file write (path relative to `.releaseops/`).
    pub fn write(&mut self, rel: impl Into<String>, content: String) {
        self.files.insert(rel.into(), content);
    }

    /// The content a path will have after this transaction, if staged.
    pub fn staged(&self, rel: &str) -> Option<&str> {
        self.files.get(rel).map(|s| s.as_str())
    }

    /// Adds an already-durable file (an object) to the git commit.
    pub fn include_in_commit(&mut self, rel: impl Into<String>) {
        self.extra_paths.push(rel.into());
    }

    /// The sequence number the next appended record will get.
    pub fn next_seq(&self) -> u64 {
        self.tip.seq + 1
    }

    /// Appends a record to the history, chaining it to the one before.
    pub fn append(&mut self, mut rec: Record) -> Result<Record> {
        use releaseops_format::names;
        if rec.imported {
            // Another tool's words: kept, but never as more than one line.
            rec.actor = names::escape_for_display(&rec.actor).into_owned();
            rec.reason = rec
                .reason
                .map(|r| names::escape_for_display(&r).into_owned());
        } else {
            names::validate_actor(&rec.actor).map_err(StoreError::Input)?;
            if let Some(r) = &rec.reason {
                names::validate_text("reason or comment", r).map_err(StoreError::Input)?;
            }
        }
        // Imported records were production, whatever the config says now.
        rec.rehearsal = !rec.imported && self.view.state().is_rehearsal(&self.config);
        rec.seq = self.tip.seq + 1;
        rec.prev = self.tip.hash.clone();
        let line = rec.to_line();
        self.append_line(&format!("history/{}", segment_name(rec.seq)), &line)?;
        self.tip = Tip {
            seq: rec.seq,
            hash: Some(sha256_prefixed(line.as_bytes())),
        };
        self.records.push(rec.clone());
        Ok(rec)
    }

    /// Stages a line appended to a file (path relative to `.releaseops/`); a
    /// crash before the commit leaves the file as it was.
    pub fn append_line(&mut self, rel: &str, line: &str) -> Result<()> {
        if !self.appends.contains_key(rel) {
            let path = self.store.dir().join(rel);
            let offset = match fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(StoreError::io("cannot stat", path, e)),
            };
            self.appends
                .insert(rel.to_string(), (offset, String::new()));
        }
        if let Some((_, buf)) = self.appends.get_mut(rel) {
            buf.push_str(line);
            buf.push('\n');
        }
        Ok(())
    }

    /// Makes the change durable, applies it and commits it to git (when
    /// `git_author` is given and the store is in a repository).
    pub fn commit(mut self, message: &str, git_author: Option<&Signature>) -> Result<Committed> {
        if !self.records.is_empty() {
            let tip = serde_json::to_string(&self.tip).unwrap_or_default();
            self.files.insert("history/HEAD".into(), tip);
        }
        let mut paths: Vec<String> = self.files.keys().cloned().collect();
        paths.extend(self.appends.keys().cloned());
        paths.extend(self.extra_paths.iter().cloned());
        if let Some(sig) = git_author {
            // The commit's author line: one name, one address, one line.
            for part in [&sig.name, &sig.email] {
                releaseops_format::names::validate_text("git author", part)
                    .map_err(StoreError::Input)?;
            }
        }
        // With sync on, the change reaches the remote first (nothing is
        // applied here unless it landed there), and this clone's own branch
        // is left alone.
        let pushed = match &self.sync {
            Some(plan) => crate::sync::push_change(
                self.store,
                plan,
                crate::sync::Staged {
                    files: &self.files,
                    appends: &self.appends,
                    extra: &self.extra_paths,
                    start: self.view.tip(),
                },
                message,
                git_author,
            )?,
            None => None,
        };
        let commit = git_author
            .filter(|_| self.store.git().is_some() && self.sync.is_none())
            .map(|sig| JCommit {
                message: message.to_string(),
                name: sig.name.clone(),
                email: sig.email.clone(),
                paths,
            });
        let journal = Journal {
            files: std::mem::take(&mut self.files)
                .into_iter()
                .map(|(path, content)| JFile { path, content })
                .collect(),
            appends: std::mem::take(&mut self.appends)
                .into_iter()
                .map(|(path, (offset, content))| JAppend {
                    path,
                    offset,
                    content,
                })
                .collect(),
            commit,
            removes: Vec::new(),
        };
        let changed: Vec<String> = journal
            .files
            .iter()
            .map(|f| f.path.clone())
            .chain(journal.appends.iter().map(|a| a.path.clone()))
            .chain(self.extra_paths.iter().cloned())
            .collect();
        if let Some(plan) = &self.sync {
            crate::sync::mark_unpushed(self.store, plan, &changed)?;
        }
        let applied = write_and_apply(self.store, &journal, self.config.lock.wait());
        let (git_commit, git_error) = match (applied, &pushed) {
            (Ok(done), _) => done,
            // Landed on the remote, not here: say so (the next command
            // fetches it like anyone else's change).
            (Err(e), Some(commit)) => {
                return Err(StoreError::Source {
                    message: format!(
                        "the change landed on the team's remote as {}, but could not be applied here: {e}",
                        &commit[..commit.len().min(12)]
                    ),
                    hint: Some("fix what the error names, then run `releaseops sync` to bring the change in".into()),
                });
            }
            (Err(e), None) => return Err(e),
        };
        let git_commit = match (&self.sync, pushed) {
            (Some(plan), Some(pushed)) => {
                crate::sync::applied(self.store, plan, &pushed);
                Some(pushed)
            }
            (Some(_), None) => None,
            (None, _) => git_commit,
        };
        Ok(Committed {
            records: std::mem::take(&mut self.records),
            git: GitOutcome {
                git_commit,
                git_error,
            },
        })
    }
}

/// Makes `files` (whole contents, relative to `.releaseops/`) and
/// `removes` one durable change and applies it, as a transaction does.
pub(crate) fn replace_files(
    store: &Store,
    files: Vec<(String, String)>,
    removes: Vec<String>,
    wait: std::time::Duration,
) -> Result<()> {
    let journal = Journal {
        files: files
            .into_iter()
            .map(|(path, content)| JFile { path, content })
            .collect(),
        appends: Vec::new(),
        commit: None,
        removes,
    };
    write_and_apply(store, &journal, wait).map(|_| ())
}

/// Writes the journal (the commit point) and applies it.
fn write_and_apply(
    store: &Store,
    journal: &Journal,
    wait: std::time::Duration,
) -> Result<(Option<String>, Option<String>)> {
    let dir = store.dir();
    // Readers see the store before this change or after it, never half.
    let _writing = crate::lock::acquire_write(dir, wait)?;
    let tmp = dir.join(JOURNAL_TMP);
    let bytes = serde_json::to_vec(journal).map_err(|e| StoreError::Corrupt {
        path: tmp.clone(),
        message: e.to_string(),
    })?;
    // A journal that cannot be written whole changes nothing.
    if let Err(e) = write_synced(&tmp, &bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let jpath = dir.join(JOURNAL);
    if let Err(e) = fs::rename(&tmp, &jpath) {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io("cannot write", &jpath, e));
    }
    sync_dir(dir);
    apply_now(store, journal)
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Applies the journal this process just wrote. Everything that can run out
/// of space (the new files' bytes, the appended lines) is written first; if
/// any of it fails, all of it is undone and the journal removed, so the
/// failure the caller reports is the whole story and no later command
/// completes the change. Then the new files are renamed into place (which
/// needs no space) and the journal is done with.
fn apply_now(store: &Store, j: &Journal) -> Result<(Option<String>, Option<String>)> {
    let dir = store.dir();
    let mut staged: Vec<(std::path::PathBuf, std::path::PathBuf)> = Vec::new();
    let mut appended: Vec<(std::path::PathBuf, u64)> = Vec::new();
    let prepared = (|| -> Result<()> {
        for f in &j.files {
            let path = dir.join(&f.path);
            let parent = path.parent().unwrap_or(dir).to_path_buf();
            fs::create_dir_all(&parent).map_err(|e| StoreError::io("cannot create", &parent, e))?;
            let tmp = parent.join(format!(".tmp-{}-{}", std::process::id(), staged.len()));
            staged.push((tmp.clone(), path));
            write_synced(&tmp, f.content.as_bytes())?;
        }
        // History lines after the files' bytes, before any rename: a reader
        // never finds HEAD ahead of the log.
        for a in &j.appends {
            let path = dir.join(&a.path);
            appended.push((path.clone(), a.offset));
            append_at(dir, a)?;
        }
        Ok(())
    })();
    if let Err(e) = prepared {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
        for (path, offset) in &appended {
            if let Ok(f) = OpenOptions::new().write(true).open(path) {
                let _ = f.set_len(*offset);
                let _ = f.sync_all();
            }
        }
        abandon_journal(dir);
        return Err(e);
    }
    let mut dirs = std::collections::BTreeSet::new();
    for (tmp, path) in &staged {
        // Past the point of no return: a rename (which needs no space) that
        // still fails leaves a change the next command completes, and the
        // error says so rather than that nothing happened.
        fs::rename(tmp, path).map_err(|e| StoreError::Source {
            message: format!(
                "the change is recorded but {} could not be put in place ({e}); the next releaseops command completes it",
                path.display()
            ),
            hint: Some("fix the file system (permissions, a read-only mount), then run any releaseops command".into()),
        })?;
        dirs.insert(path.parent().unwrap_or(dir).to_path_buf());
    }
    for (path, _) in &appended {
        dirs.insert(path.parent().unwrap_or(dir).to_path_buf());
    }
    remove_listed(dir, j, &mut dirs)?;
    finish(store, j, &dirs)
}

/// A journal whose change was undone: removed, or (if even that fails)
/// moved aside where recovery never looks, so it is never applied.
fn abandon_journal(dir: &Path) {
    let jpath = dir.join(JOURNAL);
    if fs::remove_file(&jpath).is_err() {
        let _ = fs::rename(&jpath, dir.join(ABANDONED));
    }
    sync_dir(dir);
}

/// Writes one append at its recorded offset (idempotent: the file is cut
/// back to the offset first).
fn append_at(dir: &Path, a: &JAppend) -> Result<()> {
    let path = dir.join(&a.path);
    let parent = path.parent().unwrap_or(dir).to_path_buf();
    fs::create_dir_all(&parent).map_err(|e| StoreError::io("cannot create", &parent, e))?;
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io("cannot open", &path, e))?;
    file.set_len(a.offset)
        .map_err(|e| StoreError::io("cannot truncate", &path, e))?;
    file.seek(SeekFrom::Start(a.offset))
        .map_err(|e| StoreError::io("cannot seek", &path, e))?;
    file.write_all(a.content.as_bytes())
        .map_err(|e| StoreError::io("cannot append to", &path, e))?;
    file.sync_all()
        .map_err(|e| StoreError::io("cannot sync", &path, e))
}

/// Applies a durable journal a killed process left (nothing was reported
/// for it, so it is completed), commits it, and removes it.
fn apply(store: &Store, j: &Journal) -> Result<(Option<String>, Option<String>)> {
    let dir = store.dir();
    let mut dirs = std::collections::BTreeSet::new();
    // History lines first, then the files that point at them (history/HEAD,
    // environments): a reader never finds HEAD ahead of the log.
    for a in &j.appends {
        append_at(dir, a)?;
        dirs.insert(dir.join(&a.path).parent().unwrap_or(dir).to_path_buf());
    }
    for f in &j.files {
        let path = dir.join(&f.path);
        let parent = path.parent().unwrap_or(dir).to_path_buf();
        fs::create_dir_all(&parent).map_err(|e| StoreError::io("cannot create", &parent, e))?;
        let tmp = parent.join(format!(".tmp-{}", std::process::id()));
        if let Err(e) = write_synced(&tmp, f.content.as_bytes()) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &path).map_err(|e| StoreError::io("cannot write", &path, e))?;
        dirs.insert(parent);
    }
    remove_listed(dir, j, &mut dirs)?;
    finish(store, j, &dirs)
}

/// Removes the files the journal lists (idempotent: one already gone is fine).
fn remove_listed(
    dir: &Path,
    j: &Journal,
    dirs: &mut std::collections::BTreeSet<std::path::PathBuf>,
) -> Result<()> {
    for rel in &j.removes {
        let path = dir.join(rel);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("cannot remove", &path, e)),
        }
        dirs.insert(path.parent().unwrap_or(dir).to_path_buf());
    }
    Ok(())
}

/// Syncs the directories touched, commits to git, removes the journal.
fn finish(
    store: &Store,
    j: &Journal,
    dirs: &std::collections::BTreeSet<std::path::PathBuf>,
) -> Result<(Option<String>, Option<String>)> {
    let dir = store.dir();
    for d in dirs {
        sync_dir(d);
    }
    let mut outcome = (None, None);
    if let (Some(c), Some(git)) = (&j.commit, store.git()) {
        outcome = commit_to_git(store, git, c);
    }
    // The change is applied and committed; a journal that cannot be removed
    // is replayed by the next command to the same result, so it is not a
    // failure to report.
    let _ = fs::remove_file(dir.join(JOURNAL));
    sync_dir(dir);
    Ok(outcome)
}

fn commit_to_git(store: &Store, git: &Git, c: &JCommit) -> (Option<String>, Option<String>) {
    let pending_path = store.dir().join(UNCOMMITTED);
    // Only paths inside .releaseops/ are ever committed, whatever the file says.
    let mut rels: Vec<String> = fs::read_to_string(&pending_path)
        .map(|s| {
            s.lines()
                .filter(|l| releaseops_format::names::validate_repo_path(l).is_ok())
                .map(|l| l.to_string())
                .collect()
        })
        .unwrap_or_default();
    rels.extend(c.paths.iter().cloned());
    rels.sort();
    rels.dedup();
    let prefix = store.git_prefix();
    let paths: Vec<String> = rels.iter().map(|r| format!("{prefix}{r}")).collect();
    let sig = Signature {
        name: c.name.clone(),
        email: c.email.clone(),
    };
    match git.commit_paths(&paths, &c.message, &sig) {
        Ok(commit) => {
            let _ = fs::remove_file(&pending_path);
            (commit, None)
        }
        Err(e) => {
            let _ = write_synced(&pending_path, rels.join("\n").as_bytes());
            (None, Some(e.to_string()))
        }
    }
}

/// A path (relative to `.releaseops/`) that releaseops itself writes:
/// relative, no `..`, in a directory releaseops writes or one of its files.
pub(crate) fn is_store_path(p: &str) -> bool {
    const FILES: &[&str] = &["config.yaml", ".gitignore", "promotion_history.yaml"];
    releaseops_format::names::validate_repo_path(p).is_ok()
        && !p.contains('\\')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && match p.split_once('/') {
            Some((top, _)) => crate::STORE_DIRS.contains(&top),
            None => FILES.contains(&p),
        }
}

/// A journal found on disk is replayed only if it could be ours: every path
/// it writes, appends to or commits is a store file (relative, no `..`, in a
/// directory releaseops writes), and git does not track it (ours never is:
/// one that arrived in a commit was written by someone else).
fn check_journal(store: &Store, j: &Journal, jpath: &Path) -> Result<()> {
    let ok = is_store_path;
    let paths = j
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(j.appends.iter().map(|a| a.path.as_str()))
        .chain(
            j.commit
                .iter()
                .flat_map(|c| c.paths.iter().map(String::as_str)),
        )
        .chain(j.removes.iter().map(String::as_str));
    for p in paths {
        if !ok(p) {
            return Err(StoreError::Corrupt {
                path: jpath.to_path_buf(),
                message: format!(
                    "the journal names '{p}', which is not a store file; it was not written by releaseops and was not applied"
                ),
            });
        }
    }
    if let Some(git) = store.git()
        && git.is_tracked(&format!("{}{JOURNAL}", store.git_prefix()))
    {
        return Err(StoreError::Corrupt {
            path: jpath.to_path_buf(),
            message: "the journal is tracked by git: it came in a commit, not from a change made here, and was not applied".into(),
        });
    }
    Ok(())
}

/// Finishes a transaction that a killed process left behind. Call with the lock held.
pub(crate) fn recover(store: &Store) -> Result<bool> {
    let dir = store.dir();
    let _ = fs::remove_file(dir.join(JOURNAL_TMP));
    let _ = fs::remove_file(dir.join(ABANDONED));
    let jpath = dir.join(JOURNAL);
    let bytes = match fs::read(&jpath) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::io("cannot read", &jpath, e)),
    };
    let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        path: jpath.clone(),
        message: format!("unreadable transaction journal: {e}"),
    })?;
    check_journal(store, &journal, &jpath)?;
    let _writing = crate::lock::acquire_write(dir, store.config().lock.wait())?;
    apply(store, &journal)?;
    // The killed process may have left its half-written new files.
    let parents: std::collections::BTreeSet<std::path::PathBuf> = journal
        .files
        .iter()
        .filter_map(|f| dir.join(&f.path).parent().map(Path::to_path_buf))
        .collect();
    for d in parents {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(true)
}
