//! Team sync through a git remote (`sync:` in `config.yaml`).
//!
//! The remote's branch (`releaseops-state` unless configured) holds the
//! team's store and is the source of truth. Every transaction, under the
//! store's lock:
//!
//! 1. fetches the branch into a private ref and brings `.releaseops/` up to
//!    it (as one journaled change, after checking that the remote's history
//!    only appends to what this clone verified; the result is verified
//!    again, and undone if it does not hold);
//! 2. checks its gates against that state (the caller's code, unchanged);
//! 3. builds a commit of exactly its files on the fetched commit and pushes
//!    it, never forced: the remote takes it only if its branch still points
//!    where it was fetched;
//! 4. only then applies the change here.
//!
//! When another clone pushed first, nothing was applied here and the
//! transaction fails with [`SyncFailure::Conflict`]; the caller runs the
//! whole operation again on the new state, so every gate is checked again
//! (see `releaseops_core::sync`). A process killed at any point leaves
//! either nothing (before the push), or a change on the remote that the
//! next command fetches like any other, or a journal the next command
//! completes. The user's branch, index and working tree outside
//! `.releaseops/` are never touched; the private refs live under
//! `refs/releaseops/sync/`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use releaseops_format::config::SyncConfig;
use serde::Serialize;

use crate::error::{Result, StoreError, SyncFailure};
use crate::git::{Change, Git, Pushed, Signature, TreeFile};
use crate::history::{Tip, segment_name};
use crate::{Store, fsx};

/// Paths (relative to `.releaseops/`) changed here and not yet pushed.
pub(crate) const UNPUSHED: &str = ".unpushed";
/// The commit a push is under way with: whether it landed is settled by
/// the next fetch (a process killed mid-push, or a push that timed out).
const PUSHING: &str = ".cache/sync-pushing";
/// The remote's state being checked after it was written here, with what
/// the files held before: a process killed during the check leaves it for
/// the next one to finish (or undo).
const CHECKING: &str = ".cache/sync-checking.json";

/// What a transaction builds on when sync is on.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    cfg: SyncConfig,
    /// The remote's commit (`None`: the branch does not exist yet).
    remote: Option<String>,
    offline: bool,
}

/// How this clone stands against the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    InSync,
    /// The remote has changes this clone has not applied.
    Behind,
    /// This clone has changes the remote does not (made `--offline`).
    Ahead,
    /// Both: the local changes must be checked again on the remote's state.
    Diverged,
    /// The remote has no sync branch yet; the next change creates it.
    NotPushed,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::InSync => "in sync",
            Standing::Behind => "behind",
            Standing::Ahead => "ahead",
            Standing::Diverged => "diverged",
            Standing::NotPushed => "not pushed yet",
        }
    }
}

/// `releaseops status`'s sync line and `releaseops sync`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    pub remote: String,
    pub branch: String,
    pub standing: Standing,
    /// The remote branch's commit, as last fetched.
    pub remote_commit: Option<String>,
    /// Records in this clone's history.
    pub local_records: u64,
    /// Records in the remote's history (when fetched).
    pub remote_records: Option<u64>,
    /// Store files changed here and not pushed.
    pub unpushed_paths: Vec<String>,
    /// Records this clone has and the remote does not.
    pub unpushed_records: u64,
    /// Set by `releaseops sync`: records brought in from the remote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_records: Option<u64>,
    /// Set by `releaseops sync`: whether local changes were pushed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pushed: bool,
}

struct Refs {
    root: String,
    remote: String,
    base: String,
    scratch: String,
}

impl Refs {
    /// The remote's commit as last fetched, and the one this clone is at.
    fn read(&self, git: &Git) -> Result<(Option<String>, Option<String>)> {
        let mut all = git.refs_under(&format!("{}/", self.root))?;
        Ok((all.remove(&self.remote), all.remove(&self.base)))
    }
}

/// What this process remembers about sync between calls.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    /// The remote checked to exist.
    remote_ok: Option<String>,
    /// Set by `pull_latest`: the remote's commit this clone was just
    /// brought to (inner `None`: the branch does not exist yet).
    pulled: Option<Option<String>>,
    /// The records this clone held before this process first brought it
    /// to the remote (what `releaseops sync` reports as new counts from).
    records_before: Option<u64>,
}

fn refs(cfg: &SyncConfig) -> Refs {
    let root = format!("refs/releaseops/sync/{}/{}", cfg.remote, cfg.branch);
    Refs {
        root: root.clone(),
        remote: format!("{root}/remote"),
        base: format!("{root}/base"),
        scratch: format!("{root}/pending"),
    }
}

fn err(failure: SyncFailure, message: String) -> StoreError {
    StoreError::Sync { failure, message }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The remote's state at `commit` is refused, and why.
fn cannot_build_on(cfg: &SyncConfig, commit: &str, why: impl std::fmt::Display) -> StoreError {
    err(
        SyncFailure::Untrusted,
        format!(
            "branch '{}' of remote '{}' at {} cannot be built on: {why}",
            cfg.branch,
            cfg.remote,
            short(commit)
        ),
    )
}

/// The line (from 1) where `theirs` first differs from `mine`.
fn first_difference(mine: &[u8], theirs: &[u8]) -> usize {
    let at = mine
        .iter()
        .zip(theirs)
        .position(|(a, b)| a != b)
        .unwrap_or(mine.len().min(theirs.len()));
    mine[..at].iter().filter(|b| **b == b'\n').count() + 1
}

/// The history segment holding record `seq`, here and at `commit`.
fn segments(
    store: &Store,
    git: &Git,
    commit: &str,
    seq: u64,
) -> Result<(String, Vec<u8>, Option<Vec<u8>>)> {
    let prefix = store.git_prefix();
    let seg = format!("history/{}", segment_name(seq.max(1)));
    let mine = fsx::read_regular_opt(&store.dir().join(&seg), crate::REPORT_MAX_BYTES)?
        .unwrap_or_default();
    let found = git.batch(&[format!("{commit}:{prefix}{seg}")])?;
    let theirs = found.into_iter().next().flatten().map(|(_, b)| b);
    Ok((seg, mine, theirs))
}

/// Writes `bytes` durably to `rel`, a file of `.releaseops/.cache/`.
fn write_cache(store: &Store, rel: &str, bytes: &[u8]) -> Result<std::path::PathBuf> {
    let dir = store.dir().join(".cache");
    fs::create_dir_all(&dir).map_err(|e| StoreError::io("cannot create", &dir, e))?;
    let path = store.dir().join(rel);
    crate::objects::write_synced(&path, bytes)?;
    Ok(path)
}

impl Store {
    /// Records changes here only (`--offline`): they are pushed later by
    /// `releaseops sync`.
    pub fn set_offline(&self, offline: bool) {
        self.offline
            .store(offline, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn offline(&self) -> bool {
        self.offline.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn sync_git(&self, cfg: &SyncConfig) -> Result<&Git> {
        let git = self.git().ok_or_else(|| {
            err(
                SyncFailure::Setup,
                format!(
                    "sync is on in {}, but the store is not in a git repository",
                    self.dir().join("config.yaml").display()
                ),
            )
        })?;
        let mut memo = self.sync_memo.lock().unwrap_or_else(|e| e.into_inner());
        if memo.remote_ok.as_deref() == Some(cfg.remote.as_str()) {
            return Ok(git);
        }
        if !git.has_remote(&cfg.remote) {
            return Err(err(
                SyncFailure::Setup,
                format!(
                    "sync.remote '{}' is not a remote of the repository at {}",
                    cfg.remote,
                    git.top().display()
                ),
            ));
        }
        memo.remote_ok = Some(cfg.remote.clone());
        Ok(git)
    }

    /// Under the writer lock, before a transaction reads any state: the
    /// remote's latest state, applied here.
    pub(crate) fn prepare_sync(&self, cfg: &SyncConfig) -> Result<Plan> {
        if self.offline() {
            return Ok(Plan {
                cfg: cfg.clone(),
                remote: None,
                offline: true,
            });
        }
        let git = self.sync_git(cfg)?;
        let fresh = self
            .sync_memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pulled
            .take();
        // Fetched and applied a moment ago by this process: build on that
        // (should the remote have moved since, the push says so and the
        // retry fetches). Offline changes on a remote that moved are
        // refused by the pull.
        let remote = match fresh {
            Some(remote) => remote,
            None => self.pull(git, cfg)?,
        };
        Ok(Plan {
            cfg: cfg.clone(),
            remote,
            offline: false,
        })
    }

    /// With sync on (and not offline): fetches the remote's branch and
    /// brings this clone to it, so what a command reads (the bundles it
    /// names, the state it shows) is the team's latest. `Ok(false)` when
    /// sync is off.
    pub fn pull_latest(&self) -> Result<bool> {
        let Some(cfg) = crate::read_config(self.dir())?.sync else {
            return Ok(false);
        };
        if self.offline() {
            return Ok(false);
        }
        let git = self.sync_git(&cfg)?;
        // The network outside the lock: a slow remote holds up no writer.
        let exists = git.fetch_branch(&cfg.remote, &cfg.branch, &refs(&cfg).remote)?;
        let _guard = self.lock_for_change()?;
        let before = self.history().tip()?.seq;
        let remote = self.apply_fetched(git, &cfg, exists, false)?;
        let mut memo = self.sync_memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.pulled = Some(remote);
        memo.records_before.get_or_insert(before);
        Ok(true)
    }

    /// Fetches the remote branch, unless this process just did (and
    /// applied it: `pull_latest`). Whether the branch exists.
    fn fetch_once(&self, git: &Git, cfg: &SyncConfig) -> Result<bool> {
        let fresh = self
            .sync_memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pulled
            .clone();
        match fresh {
            Some(remote) => Ok(remote.is_some()),
            None => git.fetch_branch(&cfg.remote, &cfg.branch, &refs(cfg).remote),
        }
    }

    fn unpushed(&self) -> Result<BTreeSet<String>> {
        let path = self.dir().join(UNPUSHED);
        let text = fsx::read_regular_opt(&path, crate::YAML_MAX_BYTES)?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| crate::txn::is_store_path(l))
            .map(str::to_string)
            .collect())
    }

    /// Fetches the remote branch and brings this clone to it.
    fn pull(&self, git: &Git, cfg: &SyncConfig) -> Result<Option<String>> {
        let exists = git.fetch_branch(&cfg.remote, &cfg.branch, &refs(cfg).remote)?;
        self.apply_fetched(git, cfg, exists, false)
    }

    /// Brings this clone to the remote's commit as last fetched (`exists`:
    /// the branch was there). Under the writer lock. With `recheck`, a
    /// clone the remote has not moved past is compared with it all the
    /// same, and brought back to it if its files went astray (a `git
    /// reset` or checkout that put older store files in place).
    fn apply_fetched(
        &self,
        git: &Git,
        cfg: &SyncConfig,
        exists: bool,
        recheck: bool,
    ) -> Result<Option<String>> {
        let r = refs(cfg);
        let (remote, base) = r.read(git)?;
        self.settle_push(git, remote.as_deref())?;
        let base = match self.finish_check(git, cfg)? {
            Some(checked) => Some(checked),
            None => base,
        };
        let remote = remote.filter(|_| exists);
        let Some(remote) = remote else {
            if let Some(b) = base {
                return Err(err(
                    SyncFailure::Untrusted,
                    format!(
                        "branch '{}' of remote '{}' is gone, though this clone synced with it at {}; releaseops does not recreate a deleted state branch on its own",
                        cfg.branch,
                        cfg.remote,
                        short(&b)
                    ),
                ));
            }
            return Ok(None);
        };
        if base.as_deref() == Some(remote.as_str()) {
            if recheck
                && self.unpushed()?.is_empty()
                && self.history().tip()? != remote_tip(git, &remote, &self.git_prefix())?
            {
                self.materialise(git, cfg, None, &remote)?;
                self.checked(git, &r, &remote)?;
            }
            return Ok(Some(remote));
        }
        // Changes made here offline sit on the state they were made on;
        // they are made again on the remote's (by `releaseops sync`), never
        // overwritten by it.
        let unpushed = self.unpushed()?;
        if !unpushed.is_empty() {
            return Err(err(
                SyncFailure::Unpushed,
                format!(
                    "this clone holds changes made offline ({} file(s) under .releaseops/), and branch '{}' of remote '{}' has moved since they were made",
                    unpushed.len(),
                    cfg.branch,
                    cfg.remote
                ),
            ));
        }
        let from = match &base {
            Some(b) if git.is_ancestor(b, &remote)? => Some(b.clone()),
            Some(b) => {
                return Err(err(
                    SyncFailure::Untrusted,
                    format!(
                        "branch '{}' of remote '{}' was rewritten: it no longer contains {}, where this clone last synced; a state branch only ever moves forward",
                        cfg.branch,
                        cfg.remote,
                        short(b)
                    ),
                ));
            }
            None => None,
        };
        // From a known base, the history's append-only check in
        // `materialise` says the same, file by file.
        if from.is_none() {
            self.check_related(git, cfg, &remote)?;
        }
        self.materialise(git, cfg, from.as_deref(), &remote)?;
        self.checked(git, &r, &remote)?;
        Ok(Some(remote))
    }

    /// The remote's state at `commit` is applied here and verified.
    fn checked(&self, git: &Git, r: &Refs, commit: &str) -> Result<()> {
        git.write_refs(&[(&r.base, commit)], "releaseops sync: applied")?;
        let _ = fs::remove_file(self.dir().join(CHECKING));
        Ok(())
    }

    /// A push a killed process (or a timeout) left unsettled: if its
    /// commit is on the remote, it landed, with the offline changes it
    /// carried; if not, it did not.
    fn settle_push(&self, git: &Git, remote: Option<&str>) -> Result<()> {
        let path = self.dir().join(PUSHING);
        let Some(bytes) = fsx::read_regular_opt(&path, 1024)? else {
            return Ok(());
        };
        let commit = String::from_utf8_lossy(&bytes).trim().to_string();
        let landed = match remote {
            Some(r) if !commit.is_empty() && !commit.starts_with('-') => {
                r == commit || git.is_ancestor(&commit, r).unwrap_or(false)
            }
            _ => false,
        };
        if landed {
            let _ = fs::remove_file(self.dir().join(UNPUSHED));
        }
        let _ = fs::remove_file(&path);
        Ok(())
    }

    /// The check of a remote state that a killed process left unfinished:
    /// run again, and the state undone if it does not hold. Returns the
    /// commit now applied, when it does.
    fn finish_check(&self, git: &Git, cfg: &SyncConfig) -> Result<Option<String>> {
        let path = self.dir().join(CHECKING);
        let Some(bytes) = fsx::read_regular_opt(&path, crate::REPORT_MAX_BYTES)? else {
            return Ok(None);
        };
        let pending: Checking =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                message: format!("unreadable sync check: {e}"),
            })?;
        let changed: Vec<String> = pending.old.keys().cloned().collect();
        match self.check_applied(&changed) {
            Ok(()) => {
                self.checked(git, &refs(cfg), &pending.commit)?;
                Ok(Some(pending.commit))
            }
            Err(e) => {
                self.undo(pending.old)?;
                let _ = fs::remove_file(&path);
                Err(cannot_build_on(cfg, &pending.commit, e))
            }
        }
    }

    /// Puts files back as they were (`None`: there was none).
    fn undo(&self, old: BTreeMap<String, Option<String>>) -> Result<()> {
        let (back, gone): (Vec<_>, Vec<_>) = old.into_iter().partition(|(_, c)| c.is_some());
        crate::txn::replace_files(
            self,
            back.into_iter()
                .filter_map(|(r, c)| c.map(|c| (r, c)))
                .collect(),
            gone.into_iter().map(|(r, _)| r).collect(),
            self.config().lock.wait(),
        )
    }

    /// This clone's history must be the start of the remote's.
    fn check_related(&self, git: &Git, cfg: &SyncConfig, remote: &str) -> Result<()> {
        let local = self.history().tip()?;
        if local.seq == 0 {
            return Ok(());
        }
        let prefix = self.git_prefix();
        let theirs = remote_tip(git, remote, &prefix)?;
        let (seg, mine, theirs_seg) = segments(self, git, remote, local.seq)?;
        let extends = theirs.seq >= local.seq
            && theirs_seg.as_ref().is_some_and(|t| t.starts_with(&mine))
            && (theirs.seq != local.seq || theirs.hash == local.hash);
        if extends {
            return Ok(());
        }
        // Where the two part: after a shared start, the remote rewrote what
        // this clone verified; from the first record, they are unrelated.
        if let Some(t) = &theirs_seg {
            let line = first_difference(&mine, t);
            if line > 1 || segment_name(local.seq) != segment_name(1) {
                return Err(cannot_build_on(
                    cfg,
                    remote,
                    format!(
                        "it rewrites {prefix}{seg} at line {line}, which this clone had verified"
                    ),
                ));
            }
        }
        Err(err(
            SyncFailure::Untrusted,
            format!(
                "this clone's history ({} records) is not the start of the history on branch '{}' of remote '{}' ({} records): the two were written apart{}",
                local.seq,
                cfg.branch,
                cfg.remote,
                theirs.seq,
                if self.unpushed()?.is_empty() {
                    ""
                } else {
                    " (this clone holds changes made offline)"
                }
            ),
        ))
    }

    /// Writes the remote's files that changed since `from` (all of them
    /// without it) into `.releaseops/`, as one journaled change, and
    /// verifies the result; a state that does not verify is undone.
    fn materialise(&self, git: &Git, cfg: &SyncConfig, from: Option<&str>, to: &str) -> Result<()> {
        let prefix = self.git_prefix();
        let changes = match from {
            Some(f) => git.changes(f, to, &prefix)?,
            None => git
                .files_at(to, &prefix)?
                .into_iter()
                .map(Change::Written)
                .collect(),
        };
        let untrusted = |what: String| cannot_build_on(cfg, to, what);
        let mut wanted: Vec<(String, TreeFile)> = Vec::new();
        for c in changes {
            match c {
                Change::Deleted(p) if !is_state(p.strip_prefix(&prefix).unwrap_or(&p)) => {}
                Change::Deleted(p) => {
                    return Err(untrusted(format!(
                        "it deletes {p}, and releaseops never deletes a store file (it was changed by hand)"
                    )));
                }
                Change::Written(f) => {
                    let rel = f.path.strip_prefix(&prefix).unwrap_or(&f.path).to_string();
                    if !crate::txn::is_store_path(&rel) || rel == UNPUSHED {
                        // Files of the branch that are not the store's (a
                        // README) are not ours to write here.
                        if f.path.starts_with(&prefix) {
                            return Err(untrusted(format!(
                                "it holds {}, which is not a file releaseops writes",
                                f.path.escape_debug()
                            )));
                        }
                        continue;
                    }
                    if !is_state(&rel) {
                        continue;
                    }
                    if f.mode != "100644" && f.mode != "100755" {
                        return Err(untrusted(format!(
                            "{} is not a plain file there (mode {})",
                            f.path, f.mode
                        )));
                    }
                    wanted.push((rel, f));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = wanted.iter().map(|(_, f)| f.id.clone()).collect();
        // Sizes first: a remote's file larger than any store file is
        // refused before a byte of it is read.
        for ((_, f), size) in wanted.iter().zip(git.sizes(&ids)?) {
            match size {
                None => return Err(untrusted(format!("{} could not be read from git", f.path))),
                Some(n) if n > crate::REPORT_MAX_BYTES => {
                    return Err(untrusted(format!(
                        "{} is larger than any file releaseops writes ({n} bytes)",
                        f.path
                    )));
                }
                Some(_) => {}
            }
        }
        let blobs = git.batch(&ids)?;
        let mut files = Vec::new();
        let mut old: Vec<(String, Option<String>)> = Vec::new();
        for ((rel, f), blob) in wanted.into_iter().zip(blobs) {
            let Some((_, bytes)) = blob else {
                return Err(untrusted(format!("{} could not be read from git", f.path)));
            };
            let text = String::from_utf8(bytes)
                .map_err(|_| untrusted(format!("{} is not text", f.path)))?;
            let path = self.dir().join(&rel);
            let mine = fsx::read_regular_opt(&path, crate::REPORT_MAX_BYTES)?
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            // The history only grows: the remote may append to a segment
            // this clone has, never change what it verified.
            if rel.starts_with("history/")
                && rel != "history/HEAD"
                && let Some(m) = &mine
                && !text.starts_with(m.as_str())
            {
                let line = first_difference(m.as_bytes(), text.as_bytes());
                return Err(untrusted(format!(
                    "it rewrites {}{rel} at line {line}, which this clone had verified",
                    prefix
                )));
            }
            if mine.as_deref() != Some(text.as_str()) {
                old.push((rel.clone(), mine));
                files.push((rel, text));
            }
        }
        if files.is_empty() {
            return Ok(());
        }
        let wait = self.config().lock.wait();
        let changed: Vec<String> = files.iter().map(|(r, _)| r.clone()).collect();
        let old: BTreeMap<String, Option<String>> = old.into_iter().collect();
        // Should this process die before the check below is done, the
        // next one finishes it (or undoes the change) before anything else.
        let marker = serde_json::to_vec(&Checking {
            commit: to.to_string(),
            old: old.clone(),
        })
        .unwrap_or_default();
        write_cache(self, CHECKING, &marker)?;
        crate::txn::replace_files(self, files, Vec::new(), wait)?;
        if let Err(e) = self.check_applied(&changed) {
            self.undo(old)?;
            let _ = fs::remove_file(self.dir().join(CHECKING));
            return Err(untrusted(e.to_string()));
        }
        Ok(())
    }

    /// The chain, and every changed file the history speaks for, verify.
    fn check_applied(&self, changed: &[String]) -> Result<()> {
        let view = self.chain_view()?;
        // Every environment: a record can move a pointer without its file.
        for env in &crate::read_config(self.dir())?.pipeline {
            if self.dir().join(Store::env_rel_path(env)).exists() {
                view.checked_env(self, env)?;
            }
        }
        for rel in changed {
            if rel.starts_with("objects/") {
                // Content-addressed: the bytes must hash to the name.
                let bytes = fsx::read_regular_opt(&self.dir().join(rel), crate::REPORT_MAX_BYTES)?
                    .unwrap_or_default();
                let h = releaseops_format::hash::sha256_prefixed(&bytes);
                if crate::ObjectStore::rel_path(&h) != *rel {
                    return Err(StoreError::Corrupt {
                        path: self.dir().join(rel),
                        message: "its content does not match its name".into(),
                    });
                }
                continue;
            }
            if rel.starts_with("bundles/") && rel.ends_with(".yaml") {
                let bytes = fsx::read_regular_opt(&self.dir().join(rel), crate::YAML_MAX_BYTES)?
                    .unwrap_or_default();
                let m =
                    releaseops_format::manifest::BundleManifest::parse(&bytes).map_err(|e| {
                        StoreError::Format {
                            path: self.dir().join(rel),
                            source: e,
                        }
                    })?;
                if m.bundle_hash.as_deref() != Some(m.compute_hash().as_str()) {
                    return Err(StoreError::Corrupt {
                        path: self.dir().join(rel),
                        message: "the manifest does not match its bundle_hash".into(),
                    });
                }
                continue;
            }
            let parts: Vec<&str> = rel.trim_end_matches(".yaml").split('/').collect();
            match parts.as_slice() {
                ["environments", name] => {
                    view.checked_env(self, name)?;
                }
                ["deployments", env, bundle] => {
                    view.checked_stack(self, env, bundle)?;
                }
                ["reviews", id, version] => {
                    view.checked_reviews(self, id, version)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `releaseops sync`: brings this clone to the remote and pushes the
    /// changes made here offline, when the remote has not moved since they
    /// were made (otherwise they must be checked again on its state first:
    /// [`SyncFailure::Unpushed`]).
    pub fn sync_now(&self) -> Result<SyncStatus> {
        let Some(cfg) = crate::read_config(self.dir())?.sync else {
            return Err(not_configured(self));
        };
        let git = self.sync_git(&cfg)?;
        let before = match self
            .sync_memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .records_before
        {
            Some(n) => n,
            None => self.history().tip()?.seq,
        };
        let exists = self.fetch_once(git, &cfg)?;
        let guard = self.lock_for_change()?;
        // `releaseops sync` also puts right a clone whose files went astray.
        let remote = self.apply_fetched(git, &cfg, exists, true)?;
        // (Offline changes on a remote that moved were refused just now.)
        let unpushed = self.unpushed()?;
        let mut pushed = false;
        if !unpushed.is_empty() || remote.is_none() {
            let mut tx = self.transaction(guard)?;
            let message = if remote.is_none() {
                "releaseops sync: the store"
            } else {
                "releaseops sync: changes made offline"
            };
            tx.set_sync(Plan {
                cfg: cfg.clone(),
                remote,
                offline: false,
            });
            tx.commit(message, None)?;
            pushed = true;
        } else {
            drop(guard);
        }
        let mut status = self.sync_status_of(git, &cfg)?;
        status.fetched_records = Some(status.local_records.saturating_sub(before));
        status.pushed = pushed;
        Ok(status)
    }

    /// For `releaseops sync` when changes made here offline meet a remote
    /// that moved past the state they were made on: the records of those
    /// changes and the files they wrote are saved (to `.cache/`, so nothing
    /// is lost should the process die), the clone is put back to where it
    /// last synced and then brought to the remote. The caller makes each
    /// change again on the remote's state, through its gates.
    pub fn set_aside_offline(&self) -> Result<OfflineChanges> {
        let Some(cfg) = crate::read_config(self.dir())?.sync else {
            return Err(not_configured(self));
        };
        let git = self.sync_git(&cfg)?;
        let guard = self.lock_for_change()?;
        let r = refs(&cfg);
        let (_, base) = r.read(git)?;
        let Some(base) = base else {
            return Err(err(
                SyncFailure::Unpushed,
                "this clone's offline changes were made before it ever synced; they cannot be placed on the remote's history".into(),
            ));
        };
        let prefix = self.git_prefix();
        let base_seq = remote_tip(git, &base, &prefix)?.seq;
        let records: Vec<releaseops_format::history::Record> = self
            .history()
            .all()?
            .into_iter()
            .filter(|rec| rec.seq > base_seq)
            .collect();
        let paths: Vec<String> = self.unpushed()?.into_iter().collect();
        let mut files = BTreeMap::new();
        for rel in &paths {
            let bytes = fsx::read_regular_opt(&self.dir().join(rel), crate::REPORT_MAX_BYTES)?;
            files.insert(
                rel.clone(),
                bytes.map(|b| String::from_utf8_lossy(&b).into_owned()),
            );
        }
        let now = jiff::Timestamp::now();
        let saved = serde_json::json!({ "records": records, "files": files });
        let backup = write_cache(
            self,
            &format!(
                ".cache/offline-{}-{}-{}.json",
                now.as_second(),
                now.subsec_nanosecond(),
                std::process::id()
            ),
            saved.to_string().as_bytes(),
        )?;
        // Back to the state the changes were made on.
        let names: Vec<String> = paths
            .iter()
            .map(|p| format!("{base}:{prefix}{p}"))
            .collect();
        let found = git.batch(&names)?;
        self.undo(
            paths
                .iter()
                .cloned()
                .zip(found)
                .map(|(rel, blob)| {
                    (
                        rel,
                        blob.map(|(_, b)| String::from_utf8_lossy(&b).into_owned()),
                    )
                })
                .collect(),
        )?;
        let _ = fs::remove_file(self.dir().join(UNPUSHED));
        drop(guard);
        self.pull_latest()?;
        Ok(OfflineChanges {
            records,
            files,
            backup,
        })
    }

    /// How this clone stands against the remote, fetching first unless
    /// `offline`.
    pub fn sync_status(&self, fetch: bool) -> Result<Option<SyncStatus>> {
        let Some(cfg) = crate::read_config(self.dir())?.sync else {
            return Ok(None);
        };
        let git = self.sync_git(&cfg)?;
        if fetch {
            self.fetch_once(git, &cfg)?;
        }
        self.sync_status_of(git, &cfg).map(Some)
    }

    /// `releaseops sync --enable`: checks that the remote can be reached
    /// and that its branch (if it exists) continues this clone's history,
    /// writes `sync:` to `config.yaml` (committed to this clone's branch,
    /// where the team shares its configuration), then syncs.
    pub fn enable_sync(&self, cfg: &SyncConfig, author: Option<&Signature>) -> Result<SyncStatus> {
        cfg.validate()
            .map_err(|e| err(SyncFailure::Setup, e.to_string()))?;
        let git = self.sync_git(cfg)?;
        let guard = self.lock_for_change()?;
        let path = self.dir().join("config.yaml");
        let current = crate::read_config(self.dir())?;
        match &current.sync {
            Some(on) if on == cfg => {
                drop(guard);
                return self.sync_now();
            }
            Some(on) => {
                return Err(err(
                    SyncFailure::Setup,
                    format!(
                        "sync is already on in {} (remote '{}', branch '{}')",
                        path.display(),
                        on.remote,
                        on.branch
                    ),
                ));
            }
            None => {}
        }
        if git.fetch_branch(&cfg.remote, &cfg.branch, &refs(cfg).remote)?
            && let (Some(remote), _) = refs(cfg).read(git)?
        {
            self.check_related(git, cfg, &remote)?;
        }
        let mut text = fsx::read_regular_opt(&path, crate::YAML_MAX_BYTES)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|| current.to_yaml());
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "sync:\n  remote: {}\n  branch: {}\n",
            cfg.remote, cfg.branch
        ));
        releaseops_format::config::ProjectConfig::parse(text.as_bytes()).map_err(|e| {
            StoreError::Config {
                path: path.clone(),
                source: e,
            }
        })?;
        let mut tx = self.transaction(guard)?;
        tx.write("config.yaml", text);
        tx.commit(
            &format!("releaseops: sync with {} branch {}", cfg.remote, cfg.branch),
            author,
        )?;
        self.sync_now()
    }

    fn sync_status_of(&self, git: &Git, cfg: &SyncConfig) -> Result<SyncStatus> {
        let r = refs(cfg);
        let (remote, base) = r.read(git)?;
        let local = self.history().tip()?;
        let prefix = self.git_prefix();
        let theirs = match &remote {
            Some(c) => Some(remote_tip(git, c, &prefix)?),
            None => None,
        };
        let base_tip = match &base {
            Some(c) => remote_tip(git, c, &prefix)?.seq,
            None => 0,
        };
        let unpushed: Vec<String> = self.unpushed()?.into_iter().collect();
        let ahead = !unpushed.is_empty();
        let standing = match (&remote, ahead) {
            (None, _) => Standing::NotPushed,
            (Some(c), false) if base.as_deref() == Some(c.as_str()) => Standing::InSync,
            (Some(_), false) => Standing::Behind,
            (Some(c), true) if base.as_deref() == Some(c.as_str()) => Standing::Ahead,
            (Some(_), true) => Standing::Diverged,
        };
        Ok(SyncStatus {
            remote: cfg.remote.clone(),
            branch: cfg.branch.clone(),
            standing,
            remote_commit: remote,
            local_records: local.seq,
            remote_records: theirs.map(|t| t.seq),
            unpushed_records: if ahead {
                local.seq.saturating_sub(base_tip)
            } else {
                0
            },
            unpushed_paths: unpushed,
            fetched_records: None,
            pushed: false,
        })
    }
}

/// What [`CHECKING`] holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Checking {
    commit: String,
    old: BTreeMap<String, Option<String>>,
}

/// Changes made offline, set aside to be made again (see
/// [`Store::set_aside_offline`]).
#[derive(Debug)]
pub struct OfflineChanges {
    /// Their records, oldest first.
    pub records: Vec<releaseops_format::history::Record>,
    /// The files they wrote (relative to `.releaseops/`; `None`: none).
    pub files: BTreeMap<String, Option<String>>,
    /// Where both are kept until the changes are made again.
    pub backup: std::path::PathBuf,
}

fn not_configured(store: &Store) -> StoreError {
    err(
        SyncFailure::Setup,
        format!(
            "sync is not set up in {}",
            store.dir().join("config.yaml").display()
        ),
    )
}

/// The history tip a commit of the remote holds.
fn remote_tip(git: &Git, commit: &str, prefix: &str) -> Result<Tip> {
    let found = git.batch(&[format!("{commit}:{prefix}history/HEAD")])?;
    match found.into_iter().next().flatten() {
        None => Ok(Tip::default()),
        Some((_, bytes)) => serde_json::from_slice(&bytes).map_err(|e| {
            err(
                SyncFailure::Untrusted,
                format!(
                    "the remote's {prefix}history/HEAD at {} does not parse: {e}",
                    short(commit)
                ),
            )
        }),
    }
}

/// A transaction's change, as the push needs it.
pub(crate) struct Staged<'a> {
    /// Whole files written (relative to `.releaseops/`).
    pub files: &'a BTreeMap<String, String>,
    /// Lines appended: path -> (offset, lines).
    pub appends: &'a BTreeMap<String, (u64, String)>,
    /// Files already durable that the change adds (objects).
    pub extra: &'a [String],
    /// The history's tip when the change began.
    pub start: &'a Tip,
}

/// Pushes a transaction's change, built on the remote's commit the plan
/// holds, before anything is applied here. Returns the commit pushed
/// (`None` offline).
pub(crate) fn push_change(
    store: &Store,
    plan: &Plan,
    staged: Staged<'_>,
    message: &str,
    author: Option<&Signature>,
) -> Result<Option<String>> {
    let Staged {
        files,
        appends,
        extra,
        start,
    } = staged;
    if plan.offline {
        return Ok(None);
    }
    let git = store.sync_git(&plan.cfg)?;
    // The change extends exactly the history the remote holds: a clone
    // whose files went astray (an older history put back by `git reset`)
    // must never cut records out of the team's.
    if let Some(parent) = &plan.remote {
        let prefix = store.git_prefix();
        let theirs = remote_tip(git, parent, &prefix)?;
        let extends = if store.unpushed()?.is_empty() {
            theirs == *start
        } else {
            // Offline changes go with this one: the history here is the
            // remote's with them after it.
            let (_, mine, their_seg) = segments(store, git, parent, theirs.seq)?;
            theirs.seq <= start.seq && mine.starts_with(&their_seg.unwrap_or_default())
        };
        if !extends {
            return Err(err(
                SyncFailure::Untrusted,
                format!(
                    "this clone's history ({} records) is not the remote's ({} records) though it synced with it: its .releaseops/ files were changed outside releaseops (a `git reset` or checkout of older ones?)",
                    start.seq, theirs.seq
                ),
            ));
        }
    }
    let prefix = store.git_prefix();
    let dir = store.dir();
    let read = |rel: &str| -> Result<Option<Vec<u8>>> {
        fsx::read_regular_opt(&dir.join(rel), crate::REPORT_MAX_BYTES)
    };
    let mut content: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    if plan.remote.is_none() {
        // The first push: the whole store, so a checkout of the branch is
        // a complete store.
        for rel in store_files(store)? {
            let bytes = read(&rel)?;
            content.insert(rel, bytes);
        }
    }
    // Changes made offline before this one, which the remote had not
    // moved past (checked under the lock).
    for rel in store.unpushed()? {
        let bytes = read(&rel)?;
        content.insert(rel, bytes);
    }
    for rel in extra {
        let bytes = read(rel)?;
        content.insert(rel.clone(), bytes);
    }
    for (rel, (offset, lines)) in appends {
        let mut bytes = read(rel)?.unwrap_or_default();
        let offset = usize::try_from(*offset).unwrap_or(usize::MAX);
        if bytes.len() < offset {
            return Err(StoreError::Corrupt {
                path: dir.join(rel),
                message: "the file is shorter than when the change began".into(),
            });
        }
        bytes.truncate(offset);
        bytes.extend_from_slice(lines.as_bytes());
        content.insert(rel.clone(), Some(bytes));
    }
    for (rel, text) in files {
        content.insert(rel.clone(), Some(text.clone().into_bytes()));
    }
    let first = plan.remote.is_none();
    let list: Vec<(String, Option<Vec<u8>>)> = content
        .into_iter()
        // The first push is the whole store (so a checkout of the branch
        // is complete); after it, only state travels. Nothing is ever
        // deleted: every clone would refuse that as a hand edit.
        .filter(|(rel, bytes)| bytes.is_some() && (first || is_state(rel)))
        .map(|(rel, bytes)| (format!("{prefix}{rel}"), bytes))
        .collect();
    if list.is_empty() {
        // Nothing the team shares changed (a suite file, say).
        return Ok(plan.remote.clone());
    }
    let sig = author.cloned().unwrap_or(Signature {
        name: "releaseops".into(),
        email: String::new(),
    });
    let r = refs(&plan.cfg);
    let commit = git.commit_files(plan.remote.as_deref(), &list, message, &sig, &r.scratch)?;
    // Until the push is settled: should it land unseen (this process
    // killed, a timeout), the next fetch finds this commit there.
    write_cache(store, PUSHING, commit.as_bytes())?;
    let pushed = git.push_branch(
        &plan.cfg.remote,
        &commit,
        &plan.cfg.branch,
        plan.remote.as_deref(),
    );
    if matches!(pushed, Ok(Pushed::Conflict(_) | Pushed::Refused(_))) {
        let _ = fs::remove_file(store.dir().join(PUSHING));
    }
    match pushed? {
        Pushed::Done => Ok(Some(commit)),
        Pushed::Conflict(why) => Err(err(
            SyncFailure::Conflict,
            format!(
                "branch '{}' of remote '{}' moved while this change was made ({why})",
                plan.cfg.branch, plan.cfg.remote
            ),
        )),
        Pushed::Refused(why) => Err(err(
            SyncFailure::Refused,
            format!(
                "remote '{}' refused the push to branch '{}': {why}",
                plan.cfg.remote, plan.cfg.branch
            ),
        )),
    }
}

/// After a pushed change was applied here: the clone is at the commit it
/// pushed, with nothing unpushed. (Offline changes were marked before
/// they were made durable: [`mark_unpushed`].)
pub(crate) fn applied(store: &Store, plan: &Plan, pushed: &str) {
    let r = refs(&plan.cfg);
    if let Some(git) = store.git() {
        // Should this fail, the next fetch finds the same commit.
        let _ = git.write_refs(
            &[(&r.base, pushed), (&r.remote, pushed)],
            "releaseops sync: pushed",
        );
    }
    let _ = fs::remove_file(store.dir().join(UNPUSHED));
    let _ = fs::remove_file(store.dir().join(PUSHING));
}

/// Before an offline change is made durable: its paths are marked
/// unpushed (a superset is harmless; a change made but not marked would
/// never reach the remote).
pub(crate) fn mark_unpushed(store: &Store, plan: &Plan, changed: &[String]) -> Result<()> {
    if !plan.offline {
        return Ok(());
    }
    let mut all = store.unpushed()?;
    all.extend(changed.iter().filter(|p| is_state(p)).cloned());
    let text: String = all.into_iter().map(|p| p + "\n").collect();
    crate::objects::write_synced(&store.dir().join(UNPUSHED), text.as_bytes())
}

/// Whether a store path is team state, which travels through the remote.
/// `config.yaml` and the eval suites are the repository's inputs, like its
/// prompts and policies: they come from the checkout (reviewed where code
/// is), never from the state branch.
fn is_state(rel: &str) -> bool {
    // Also never the existing tool's history (trusted where ours is empty),
    // `.gitignore`, or anything under a dot name (local caches).
    !matches!(rel, "config.yaml" | "promotion_history.yaml" | ".gitignore")
        && !rel.starts_with("evals/")
        && !rel.split('/').any(|c| c.starts_with('.'))
}

/// Every file of the store that releaseops writes (not its local files).
fn store_files(store: &Store) -> Result<Vec<String>> {
    let dir = store.dir();
    let mut out = Vec::new();
    for f in ["config.yaml", ".gitignore", "promotion_history.yaml"] {
        if dir.join(f).is_file() {
            out.push(f.to_string());
        }
    }
    let mut stack: Vec<String> = crate::STORE_DIRS.iter().map(|d| d.to_string()).collect();
    while let Some(rel) = stack.pop() {
        let Ok(rd) = fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Temporary files and local caches never travel.
            if name.starts_with('.') {
                continue;
            }
            let child = format!("{rel}/{name}");
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(child),
                Ok(t) if t.is_file() && crate::txn::is_store_path(&child) => out.push(child),
                _ => {}
            }
        }
    }
    out.sort();
    Ok(out)
}
