//! The chain view: the state the verified history implies
//! ([`ChainState`]), and the checks that the files people can edit
//! (environment pointers, rollback stacks, reviews, eval reports) agree with
//! it. Gates read the view, never the files alone.
//!
//! Verifying a million records takes a second, and a promotion has 50 ms, so
//! the view keeps a local checkpoint in `.releaseops/.cache/` (ignored by git):
//! the state after the last full segment, with the on-disk identity (size,
//! inode, change time) of every full segment folded into it. Each use stats
//! the segments, re-walks and re-hashes only what is not in the checkpoint
//! (the open segment at least, so every link to the tip is checked every
//! time), and checks the tip against `history/HEAD`. A segment edited, replaced
//! or checked out anew gets a new identity and is walked again from the start;
//! a checkpoint written anywhere else (committed into the repository, say)
//! cannot name this machine's inodes and change times, so it is never used.
//! A segment is held to its identity only once it has settled (last changed
//! over a second ago), since an edit within the clock's granularity can keep
//! size and change time: until then it is walked every time, as git treats
//! racily clean files.
//!
//! A process also remembers the state it verified, by the same identities
//! (a server reads the checkpoint once, not on every page), and the state
//! shares its parts between clones, so a view extended by a few records
//! copies only what they change.

use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;

use releaseops_format::environment::EnvironmentFile;
use releaseops_format::hash;
use releaseops_format::history::{Deployment, DeploymentStack};
use releaseops_format::review::Reviews;
use releaseops_format::state::ChainState;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::fsx::{self, FileId};
use crate::history::{Cursor, SEGMENT_RECORDS, Tip, decode_hash};
use crate::{EvalReportInfo, RawReport, Store};

const CACHE_DIR: &str = ".cache";
const CACHE_FILE: &str = "chain-view.json";
const CACHE_FORMAT: u32 = 1;
const CACHE_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// The verified history's state.
#[derive(Debug, Clone)]
pub struct ChainView {
    state: ChainState,
    tip: Tip,
    legacy_pending: bool,
}

/// What [`Store::memo`] keeps: a store's state after its sealed segments
/// (for the few stores a process works on, the latest last).
struct Memo {
    dir: PathBuf,
    sealed: Vec<FileId>,
    cursor: Cursor,
    state: ChainState,
}

static MEMO: Mutex<Vec<Memo>> = Mutex::new(Vec::new());

const MEMO_STORES: usize = 8;

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    format: u32,
    /// Records 1..=seq, which fill exactly the segments in `sealed`.
    seq: u64,
    hash: Option<String>,
    sealed: Vec<FileId>,
    state: ChainState,
}

impl Store {
    /// The state the history implies, after checking every link from the
    /// checkpoint to the tip. A broken chain is an error: nothing may be
    /// built on it.
    pub fn chain_view(&self) -> Result<ChainView> {
        let log = self.history();
        let segs = log.segments()?;
        if segs.is_empty() {
            return self.legacy_view();
        }
        // The clock is read before the files are: one changed after this is
        // never counted as settled.
        let now = fsx::now_ns();
        let ids = segs
            .iter()
            .map(|p| FileId::stat(p))
            .collect::<Result<Vec<_>>>()?;
        let sealed_count = segs.len() - 1;
        let sealed = &ids[..sealed_count];
        // Where to start: what this process verified last, else the local
        // checkpoint, else the first record.
        let (mut state, cursor, from) = match self.memo(sealed) {
            Some(base) => base,
            None => match self.read_checkpoint(sealed) {
                Some(c) => {
                    let cursor = Cursor {
                        next_seq: c.seq + 1,
                        prev_hash: c.hash.as_deref().and_then(decode_hash),
                    };
                    let from = c.sealed.len();
                    self.remember(&c.sealed, cursor, &c.state);
                    (c.state, cursor, from)
                }
                None => (ChainState::default(), Cursor::start(), 0),
            },
        };
        let broken = |problems: Vec<String>| StoreError::ChainBroken {
            path: PathBuf::from(".releaseops/history"),
            message: summarize(&problems),
        };
        // A segment is held to its identity only once it has settled
        // (changed over a second ago): an edit of the same size within the
        // clock's granularity could leave the identity as it was.
        let trusted = sealed
            .iter()
            .take_while(|id| id.settled(now))
            .count()
            .max(from);
        // The settled full segments after the checkpoint, then a new one.
        let (cursor, walked) = log.walk(&segs[from..trusted], cursor, |r| state.apply_owned(r))?;
        if !walked.problems.is_empty() {
            return Err(broken(walked.problems));
        }
        if from < trusted {
            self.write_checkpoint(&Checkpoint {
                format: CACHE_FORMAT,
                seq: cursor.next_seq - 1,
                hash: cursor
                    .prev_hash
                    .map(|h| format!("sha256:{}", hex::encode(h))),
                sealed: sealed[..trusted].to_vec(),
                state: state.clone(),
            });
            self.remember(&sealed[..trusted], cursor, &state);
        }
        // The rest every time: full segments too new to be held to their
        // identity, and the open one.
        let (cursor, walked) = log.walk(&segs[trusted..], cursor, |r| state.apply_owned(r))?;
        if !walked.problems.is_empty() {
            return Err(broken(walked.problems));
        }
        log.check_tip(&cursor).map_err(|p| broken(vec![p]))?;
        Ok(ChainView {
            state,
            tip: log.tip()?,
            legacy_pending: false,
        })
    }

    /// Walks the whole history from its first record, trusting no
    /// checkpoint, for `history verify`: the state it implies and every
    /// problem found (a broken chain is reported, not an error).
    pub fn replay_chain(&self) -> Result<(ChainView, crate::ChainReport)> {
        let log = self.history();
        if log.segments()?.is_empty() {
            let mut report = crate::ChainReport::default();
            return Ok(match self.legacy_view() {
                Ok(v) => (v, report),
                Err(e) => {
                    report.problems.push(e.to_string());
                    (
                        ChainView {
                            state: ChainState::default(),
                            tip: Tip::default(),
                            legacy_pending: false,
                        },
                        report,
                    )
                }
            });
        }
        let mut state = ChainState::default();
        let report = log.verify(|r| state.apply_owned(r))?;
        let tip = log.tip().unwrap_or_default();
        Ok((
            ChainView {
                state,
                tip,
                legacy_pending: false,
            },
            report,
        ))
    }

    /// No record yet: the existing tool's files stand in, as the next change
    /// will import them. A tree with our own indexes but no history lost it.
    fn legacy_view(&self) -> Result<ChainView> {
        let tip = self.history().tip()?;
        if tip.seq != 0 {
            return Err(StoreError::ChainBroken {
                path: PathBuf::from(".releaseops/history"),
                message: format!(
                    "history/HEAD names record {} but there are no history segments (they were deleted)",
                    tip.seq
                ),
            });
        }
        // Deleting history/ (and the indexes beside it) must not turn a
        // store back into the existing tool's, whose files are trusted.
        if let Some(git) = self.git()
            && git.ever_had(&format!("{}history", self.git_prefix()))
        {
            return Err(StoreError::ChainBroken {
                path: PathBuf::from(".releaseops/history"),
                message: "there is no history, but git has commits of .releaseops/history: it was deleted".into(),
            });
        }
        for sub in ["deployments", "reviews"] {
            if !crate::list_dir(&self.dir().join(sub))?.is_empty() {
                return Err(StoreError::ChainBroken {
                    path: PathBuf::from(".releaseops/history"),
                    message: format!(
                        "there is no history, but .releaseops/{sub}/ holds files only releaseops writes alongside it (the history was deleted)"
                    ),
                });
            }
        }
        let mut state = ChainState::default();
        let records = crate::legacy::import_records(self)?;
        let pending = !records.is_empty();
        for (i, mut r) in records.into_iter().enumerate() {
            r.seq = i as u64 + 1;
            state.apply(&r);
        }
        Ok(ChainView {
            state,
            tip,
            legacy_pending: pending,
        })
    }

    /// The state after the sealed segments as this process last verified
    /// them, when every one of them is still the file it was (by the same
    /// identity the checkpoint is held to). A clone shares the state's parts,
    /// so a server answering many pages reads the checkpoint once, and a
    /// change made meanwhile costs only its own records.
    fn memo(&self, sealed: &[FileId]) -> Option<(ChainState, Cursor, usize)> {
        let memo = MEMO.lock().ok()?;
        let m = memo.iter().find(|m| m.dir == self.dir())?;
        // At least one segment to hold it to: a state that names none would
        // be trusted on its word.
        let usable = !m.sealed.is_empty()
            && m.sealed.len() <= sealed.len()
            && m.cursor.next_seq == m.sealed.len() as u64 * SEGMENT_RECORDS + 1
            && m.sealed.iter().zip(sealed).all(|(a, b)| a == b);
        usable.then(|| (m.state.clone(), m.cursor, m.sealed.len()))
    }

    fn remember(&self, sealed: &[FileId], cursor: Cursor, state: &ChainState) {
        if let Ok(mut memo) = MEMO.lock() {
            memo.retain(|m| m.dir != self.dir());
            if memo.len() >= MEMO_STORES {
                memo.remove(0);
            }
            memo.push(Memo {
                dir: self.dir().to_path_buf(),
                sealed: sealed.to_vec(),
                cursor,
                state: state.clone(),
            });
        }
    }

    fn read_checkpoint(&self, sealed: &[FileId]) -> Option<Checkpoint> {
        let dir = self.dir().join(CACHE_DIR);
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return None;
        }
        let bytes = fsx::read_regular_opt(&dir.join(CACHE_FILE), CACHE_MAX_BYTES).ok()??;
        let c: Checkpoint = serde_json::from_slice(&bytes).ok()?;
        // releaseops writes a checkpoint of at least one sealed segment; one
        // that names none could be planted anywhere (committed with `git
        // add -f`, say) and would be trusted on its word.
        let usable = c.format == CACHE_FORMAT
            && !c.sealed.is_empty()
            && c.sealed.len() <= sealed.len()
            && c.seq == c.sealed.len() as u64 * SEGMENT_RECORDS
            && c.sealed.iter().zip(sealed).all(|(a, b)| a == b);
        usable.then_some(c)
    }

    /// Best effort: without a checkpoint the next use walks more.
    fn write_checkpoint(&self, c: &Checkpoint) {
        let dir = self.dir().join(CACHE_DIR);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return,
            Err(_) => {
                if fs::create_dir(&dir).is_err() {
                    return;
                }
            }
        }
        let Ok(bytes) = serde_json::to_vec(c) else {
            return;
        };
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        if fs::write(&tmp, &bytes).is_ok() && fs::rename(&tmp, dir.join(CACHE_FILE)).is_ok() {
            return;
        }
        let _ = fs::remove_file(&tmp);
    }
}

fn summarize(problems: &[String]) -> String {
    match problems {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more problem(s))", rest.len()),
    }
}

fn disagrees(rel: String, message: String) -> StoreError {
    StoreError::Disagrees {
        path: PathBuf::from(format!(".releaseops/{rel}")),
        message,
    }
}

impl ChainView {
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    pub fn tip(&self) -> &Tip {
        &self.tip
    }

    /// Nothing is recorded yet; the existing tool's files stand in.
    pub fn legacy_pending(&self) -> bool {
        self.legacy_pending
    }

    /// What is wrong with an environment file, measured against the history:
    /// every mapping must be the version the history left live, and every
    /// live version must be mapped.
    pub fn env_problems(&self, file: &EnvironmentFile) -> Vec<String> {
        let name = &file.environment;
        let live = self.state.live_in(name);
        let mut out = Vec::new();
        for (bundle, version) in &file.bundle_mappings {
            match live.get(bundle.as_str()) {
                Some(d) if d.version == *version => {}
                Some(d) => out.push(format!(
                    "environments/{name}.yaml maps {bundle} to {version}, but the history says {} is live there (changed outside releaseops)",
                    d.version
                )),
                None => out.push(format!(
                    "environments/{name}.yaml maps {bundle} to {version}, but the history never deployed {bundle} there (changed outside releaseops)"
                )),
            }
        }
        for (bundle, d) in &live {
            if !file.bundle_mappings.contains_key(*bundle) {
                out.push(format!(
                    "the history says {bundle}@{} is live in '{name}', but environments/{name}.yaml does not map it",
                    d.version
                ));
            }
        }
        out
    }

    /// The environment file, refused when it disagrees with the history.
    pub fn checked_env(&self, store: &Store, name: &str) -> Result<EnvironmentFile> {
        let file = store.load_env(name)?;
        if let Some(p) = self.env_problems(&file).into_iter().next() {
            return Err(disagrees(Store::env_rel_path(name), p));
        }
        Ok(file)
    }

    /// What is wrong with a deployment index file (None: it agrees).
    pub fn deployment_problem(
        &self,
        store: &Store,
        env: &str,
        bundle: &str,
    ) -> Result<Option<String>> {
        let rel = Store::deployment_rel_path(env, bundle);
        let want = self.state.stack(env, bundle);
        let path = store.dir().join(&rel);
        let Some(bytes) = fsx::read_regular_opt(&path, crate::YAML_MAX_BYTES)? else {
            if want.is_empty() || self.legacy_pending {
                return Ok(None);
            }
            return Ok(Some(format!(
                "{rel} is missing; the history says the stack is {}",
                describe_stack(want)
            )));
        };
        // The file as releaseops writes it: nothing to parse (a page of a
        // large store checks a hundred of these).
        if !want.is_empty()
            && bytes
                == self
                    .state
                    .deployment_stack(env, bundle)
                    .to_yaml()
                    .as_bytes()
        {
            return Ok(None);
        }
        let file = match DeploymentStack::parse(&bytes) {
            Ok(f) => f,
            Err(e) => {
                return Ok(Some(format!(
                    "{rel} cannot be read ({e}); the history says the stack is {}",
                    describe_stack(want)
                )));
            }
        };
        if file.environment != env || file.bundle != bundle || file.stack != want {
            return Ok(Some(format!(
                "{rel} lists {} but the history says {} (changed outside releaseops)",
                describe_stack(&file.stack),
                describe_stack(want)
            )));
        }
        Ok(None)
    }

    /// A bundle's rollback stack in one environment, from the history; the
    /// index file must agree.
    pub fn checked_stack(&self, store: &Store, env: &str, bundle: &str) -> Result<Vec<Deployment>> {
        if let Some(p) = self.deployment_problem(store, env, bundle)? {
            return Err(disagrees(Store::deployment_rel_path(env, bundle), p));
        }
        Ok(self.state.stack(env, bundle).to_vec())
    }

    /// What is wrong with a version's reviews file (None: it agrees).
    pub fn reviews_problem(
        &self,
        store: &Store,
        id: &str,
        version: &str,
    ) -> Result<Option<String>> {
        let rel = Store::reviews_rel_path(id, version);
        let want = self.state.reviews(id, version);
        let path = store.dir().join(&rel);
        let what = |r: &Reviews| {
            format!(
                "{} approval(s), {} rejection(s), {} failed release(s)",
                r.approvals.len(),
                r.rejections.len(),
                r.failures.len()
            )
        };
        let file = match fsx::read_regular_opt(&path, crate::YAML_MAX_BYTES)? {
            None => None,
            // As releaseops writes it: nothing to parse.
            Some(b) if want != Reviews::default() && b == want.to_yaml().as_bytes() => {
                return Ok(None);
            }
            Some(b) => match Reviews::parse(&b) {
                Ok(r) => Some(r),
                Err(e) => {
                    return Ok(Some(format!(
                        "{rel} cannot be read ({e}); the history holds {}",
                        what(&want)
                    )));
                }
            },
        };
        let have = file.clone().unwrap_or_default();
        if have == want {
            return Ok(None);
        }
        let mut detail = Vec::new();
        for a in &have.approvals {
            if !want.approvals.contains(a) {
                detail.push(format!(
                    "an approval by {} for '{}' the history does not hold",
                    a.actor, a.env
                ));
            }
        }
        for r in &want.rejections {
            if !have.rejections.contains(r) {
                detail.push(format!(
                    "no rejection by {} ({}) that the history holds",
                    r.actor, r.reason
                ));
            }
        }
        for r in &have.rejections {
            if !want.rejections.contains(r) {
                detail.push(format!(
                    "a rejection by {} the history does not hold",
                    r.actor
                ));
            }
        }
        for a in &want.approvals {
            if !have.approvals.contains(a) {
                detail.push(format!(
                    "no approval by {} for '{}' that the history holds",
                    a.actor, a.env
                ));
            }
        }
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": it has {}", detail.join("; "))
        };
        Ok(Some(match file {
            None => format!("{rel} is missing, but the history holds {}", what(&want)),
            Some(_) => format!(
                "{rel} disagrees with the history (the file has {}, the history {}){detail}",
                what(&have),
                what(&want)
            ),
        }))
    }

    /// A version's approvals, rejections and failed releases, from the
    /// history; the reviews file must agree.
    pub fn checked_reviews(&self, store: &Store, id: &str, version: &str) -> Result<Reviews> {
        if let Some(p) = self.reviews_problem(store, id, version)? {
            return Err(disagrees(Store::reviews_rel_path(id, version), p));
        }
        Ok(self.state.reviews(id, version))
    }

    /// The eval reports the history recorded for a bundle hash, each read
    /// back and checked against its recorded digest. Reports the history
    /// does not hold are never returned, whatever they say.
    pub fn eval_reports(&self, store: &Store, bundle_hash: &str) -> Result<Vec<EvalReportInfo>> {
        self.reports(store, bundle_hash, false)
    }

    /// Every report recorded for a bundle hash, partial runs too, each
    /// checked against its digest (for `history verify`).
    pub fn recorded_reports(
        &self,
        store: &Store,
        bundle_hash: &str,
    ) -> Result<Vec<EvalReportInfo>> {
        self.reports(store, bundle_hash, true)
    }

    fn reports(
        &self,
        store: &Store,
        bundle_hash: &str,
        partial_too: bool,
    ) -> Result<Vec<EvalReportInfo>> {
        let mut out = Vec::new();
        // A run of part of a suite (`--tag`, interrupted) never counts.
        for fact in self
            .state
            .evals_for(bundle_hash)
            .iter()
            .filter(|f| partial_too || !f.report.partial)
        {
            let rel = &fact.report.path;
            if releaseops_format::names::validate_repo_path(rel).is_err()
                || !rel.starts_with("eval_reports/")
            {
                return Err(disagrees(
                    rel.clone(),
                    format!("record {} names a report outside eval_reports/", fact.seq),
                ));
            }
            let path = store.dir().join(rel);
            let Some(bytes) = fsx::read_regular_opt(&path, crate::REPORT_MAX_BYTES)? else {
                return Err(disagrees(
                    rel.clone(),
                    format!(
                        "{rel} is missing; record {} holds it as the {} report of suite '{}' for {}@{}",
                        fact.seq, fact.verdict, fact.report.suite, fact.bundle_id, fact.version
                    ),
                ));
            };
            let digest = hash::sha256_prefixed(&bytes);
            if digest != fact.report.digest {
                return Err(disagrees(
                    rel.clone(),
                    format!(
                        "{rel} was changed after it was recorded (record {} holds digest {}, the file hashes to {digest})",
                        fact.seq, fact.report.digest
                    ),
                ));
            }
            let raw: RawReport = releaseops_format::yaml::from_bytes(&bytes)
                .map_err(|e| StoreError::format(&path, e))?;
            out.push(EvalReportInfo::from_raw(path, raw, Some(fact)));
        }
        Ok(out)
    }
}

fn describe_stack(s: &[Deployment]) -> String {
    if s.is_empty() {
        return "empty".into();
    }
    s.iter()
        .map(|d| d.version.as_str())
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use releaseops_format::hash::sha256_prefixed;
    use releaseops_format::history::{EventKind, Record};

    /// A store with `n` chained promotion records written straight to disk,
    /// and `approvals` approve records at the end.
    fn store_with(n: u64) -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().expect("tmp");
        let dir = d.path().join(".releaseops");
        fs::create_dir_all(dir.join("history")).expect("mkdir");
        let mut prev = None;
        let mut seg = String::new();
        for seq in 1..=n {
            let mut r = Record::new(
                EventKind::Approve,
                format!("t{seq}"),
                format!("a{seq} <a{seq}@x>"),
            );
            r.seq = seq;
            r.prev = prev.clone();
            r.bundle_id = Some("b".into());
            r.version = Some("1.0.0".into());
            r.env = Some("prod".into());
            let line = r.to_line();
            prev = Some(sha256_prefixed(line.as_bytes()));
            seg.push_str(&line);
            seg.push('\n');
            if seq % SEGMENT_RECORDS == 0 || seq == n {
                let name = format!("{:08}.jsonl", (seq - 1) / SEGMENT_RECORDS);
                fs::write(dir.join("history").join(name), &seg).expect("w");
                seg.clear();
            }
        }
        fs::write(
            dir.join("history/HEAD"),
            serde_json::to_string(&Tip { seq: n, hash: prev }).expect("json"),
        )
        .expect("w");
        let store = Store::open(d.path()).expect("open");
        (d, store)
    }

    /// Rewrites one record's actor in a segment, keeping its size: only
    /// the file's identity says it changed.
    fn edit_actor(store: &Store, segment: &str, actor: &str, to: &str) {
        assert_eq!(actor.len(), to.len());
        let seg = store.dir().join("history").join(segment);
        let text = fs::read_to_string(&seg).expect("seg");
        assert!(text.contains(actor), "{actor} in {segment}");
        fs::write(&seg, text.replacen(actor, to, 1)).expect("w");
    }

    fn checkpoint_at(path: &std::path::Path) -> Checkpoint {
        serde_json::from_slice(&fs::read(path).expect("checkpoint")).expect("json")
    }

    /// What a new process would have: no memory of `dir`'s state.
    fn forget(dir: &std::path::Path) {
        MEMO.lock().expect("memo").retain(|m| m.dir != dir);
    }

    /// As [`store_with`], once its segments have settled (are held to
    /// their identity).
    fn settled_store_with(n: u64) -> (tempfile::TempDir, Store) {
        let made = store_with(n);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        made
    }

    fn approvals(v: &ChainView) -> usize {
        v.state().reviews("b", "1.0.0").approvals.len()
    }

    #[test]
    fn the_checkpoint_is_used_and_every_record_still_counts() {
        let (_d, store) = settled_store_with(2500);
        let v = store.chain_view().expect("view");
        assert_eq!(approvals(&v), 2500);
        let cache = store.dir().join(CACHE_DIR).join(CACHE_FILE);
        let c: Checkpoint =
            serde_json::from_slice(&fs::read(&cache).expect("cache")).expect("json");
        assert_eq!((c.seq, c.sealed.len()), (2000, 2));
        // Served from the checkpoint: the same state.
        assert_eq!(approvals(&store.chain_view().expect("view")), 2500);
    }

    #[test]
    fn an_edited_sealed_segment_is_walked_again_and_refused() {
        let (_d, store) = settled_store_with(2500);
        store.chain_view().expect("view");
        edit_actor(&store, "00000000.jsonl", "a17 <a17@x>", "m17 <m17@x>");
        match store.chain_view() {
            Err(StoreError::ChainBroken { message, .. }) => {
                assert!(message.contains("does not chain"), "{message}")
            }
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn a_checkpoint_made_elsewhere_is_never_trusted() {
        let (_d, store) = settled_store_with(2500);
        store.chain_view().expect("view");
        let cache = store.dir().join(CACHE_DIR).join(CACHE_FILE);
        let mut c = checkpoint_at(&cache);
        // Forge the state, as a checkpoint committed to the repository might.
        c.state.reviews.clear();
        let forged = serde_json::to_vec(&c).expect("json");
        // Another clone: the same history, other inodes and change times.
        let (d2, other) = store_with(2500);
        fs::create_dir_all(other.dir().join(CACHE_DIR)).expect("mkdir");
        fs::write(other.dir().join(CACHE_DIR).join(CACHE_FILE), &forged).expect("w");
        assert_eq!(approvals(&other.chain_view().expect("view")), 2500);
        // And a checkpoint that is a link is not read, even one that names
        // this store's own segments (this process's memory of them
        // forgotten, as in a new process).
        #[cfg(unix)]
        {
            std::thread::sleep(std::time::Duration::from_millis(1100));
            let own = other.dir().join(CACHE_DIR).join(CACHE_FILE);
            let _ = fs::remove_file(&own);
            assert_eq!(approvals(&other.chain_view().expect("view")), 2500);
            let mut c = checkpoint_at(&own);
            c.state.reviews.clear();
            let planted = d2.path().join("planted.json");
            fs::write(&planted, serde_json::to_vec(&c).expect("json")).expect("w");
            fs::remove_file(&own).expect("rm");
            std::os::unix::fs::symlink(&planted, &own).expect("ln");
            forget(other.dir());
            assert_eq!(approvals(&other.chain_view().expect("view")), 2500);
            // The same bytes as a file in place would be read (whoever
            // can write this machine's .cache/ is trusted, as the module
            // says): it is the link that is refused, not its content.
            fs::remove_file(&own).expect("rm");
            fs::copy(&planted, &own).expect("cp");
            forget(other.dir());
            assert_eq!(approvals(&other.chain_view().expect("view")), 500);
        }
    }

    #[test]
    fn a_segment_edited_just_after_it_was_written_is_never_held_to_its_identity() {
        // Written and edited within the clock's granularity, the file can
        // keep its size, inode and change time: only its bytes tell.
        let t = std::time::Instant::now();
        let (_d, store) = store_with(2500);
        store.chain_view().expect("view");
        let cache = store.dir().join(CACHE_DIR).join(CACHE_FILE);
        if t.elapsed() < std::time::Duration::from_millis(900) {
            assert!(
                !cache.exists(),
                "no checkpoint of segments that have not settled"
            );
        }
        edit_actor(&store, "00000000.jsonl", "a17 <a17@x>", "m17 <m17@x>");
        assert!(matches!(
            store.chain_view(),
            Err(StoreError::ChainBroken { .. })
        ));
    }

    #[test]
    fn this_process_remembers_the_verified_state_and_still_sees_an_edit() {
        let (_d, store) = settled_store_with(2500);
        assert_eq!(approvals(&store.chain_view().expect("view")), 2500);
        // The checkpoint gone: the state this process verified stands in.
        fs::remove_file(store.dir().join(CACHE_DIR).join(CACHE_FILE)).expect("rm");
        assert_eq!(approvals(&store.chain_view().expect("view")), 2500);
        assert!(!store.dir().join(CACHE_DIR).join(CACHE_FILE).exists());
        // A sealed segment replaced is walked again, whatever is remembered.
        edit_actor(
            &store,
            "00000001.jsonl",
            "a1017 <a1017@x>",
            "m1017 <m1017@x>",
        );
        assert!(matches!(
            store.chain_view(),
            Err(StoreError::ChainBroken { .. })
        ));
    }

    #[test]
    fn a_planted_checkpoint_of_no_segments_is_never_trusted() {
        // Fewer records than a segment holds: nothing sealed to compare. A
        // checkpoint naming no segment, with a state of its own (committed
        // with `git add -f`, say), must not be the base the records are
        // applied to, in this process or a later one.
        let (_d, store) = store_with(500);
        let mut forged = ChainState::default();
        forged.apply(&{
            let mut r = Record::new(EventKind::Approve, "t0".into(), "m <m@x>".into());
            r.seq = 1;
            r.bundle_id = Some("b".into());
            r.version = Some("1.0.0".into());
            r.env = Some("prod".into());
            r
        });
        let planted = Checkpoint {
            format: CACHE_FORMAT,
            seq: 0,
            hash: None,
            sealed: Vec::new(),
            state: forged,
        };
        fs::create_dir_all(store.dir().join(CACHE_DIR)).expect("mkdir");
        fs::write(
            store.dir().join(CACHE_DIR).join(CACHE_FILE),
            serde_json::to_vec(&planted).expect("json"),
        )
        .expect("w");
        assert_eq!(approvals(&store.chain_view().expect("view")), 500);
        assert_eq!(approvals(&store.chain_view().expect("view")), 500);
    }
}
