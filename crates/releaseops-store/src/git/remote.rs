//! A git remote as the team's source of truth: one branch fetched into a
//! private ref, commits built on a given parent without a checkout (one
//! `git fast-import`), and pushed without force, so the remote takes a push
//! only if its branch still points where it was fetched (receive-pack
//! updates the ref with compare-and-swap against what it advertised).
//!
//! Everything goes through the user's own `git`, so every transport git
//! speaks works (a path, `file://`, `git://`, smart HTTP, SSH) with the
//! user's credentials helpers. Nothing here prints a remote's URL: it may
//! hold a token, and git's messages are stripped of credentials before
//! they are shown.

use std::io::Read;
use std::time::{Duration, Instant};

use super::{Git, Signature, spawn_err};
use crate::error::{Result, StoreError, SyncFailure};

/// How long one fetch or push may take before it is stopped.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(120);

/// What became of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The remote's branch now points at the commit.
    Done,
    /// Someone else pushed first: fetch again and re-apply.
    Conflict(String),
    /// The remote refused the update (a protected branch, a hook, no
    /// permission): retrying cannot help.
    Refused(String),
}

/// A file in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Relative to the work tree top.
    pub path: String,
    pub mode: String,
    pub id: String,
}

/// One path that differs between two commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Written(TreeFile),
    Deleted(String),
}

/// Removes the credentials of every URL in `text` (`https://user:token@host`
/// becomes `https://***@host`), so a message git wrote can be shown.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // Up to the end of the URL: a password may hold a '/' of its own,
        // so the credentials run to the last '@' before it.
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// What a network command printed, and whether it succeeded.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Git {
    /// Runs git with a deadline; a remote that hangs is stopped rather
    /// than holding the store's lock for good.
    fn run_timed(&self, args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Result<Ran> {
        let mut c = self.cmd();
        // A missing credential fails instead of waiting for a person, and
        // housekeeping is the user's to schedule, not every fetch's.
        c.env("GIT_TERMINAL_PROMPT", "0")
            .args(["-c", "maintenance.auto=false", "-c", "gc.auto=0"]);
        let name = args.first().copied().unwrap_or("git");
        let mut child = self.start(c, args, stdin)?;
        let mut out_pipe = child.stdout.take();
        let mut err_pipe = child.stderr.take();
        let out_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(p) = out_pipe.as_mut() {
                let _ = p.read_to_end(&mut s);
            }
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(p) = err_pipe.as_mut() {
                let _ = p.read_to_end(&mut s);
            }
            s
        });
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        let status = loop {
            match child.try_wait().map_err(|e| spawn_err(name, e))? {
                Some(s) => break s,
                None if start.elapsed() > timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(StoreError::Sync {
                        failure: SyncFailure::Unreachable,
                        message: format!(
                            "git {name} did not finish within {} s (a push may still have landed: the next command finds out)",
                            timeout.as_secs()
                        ),
                    });
                }
                None => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
            }
        };
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        Ok(Ran {
            ok: status.success(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: redact(&String::from_utf8_lossy(&stderr)),
        })
    }

    /// Whether `remote` is a remote of this repository.
    pub fn has_remote(&self, remote: &str) -> bool {
        self.config(&format!("remote.{remote}.url")).is_some()
    }

    /// Fetches `branch` of `remote` into `into` (a private ref; nothing
    /// else is updated). `false` when the remote has no such branch.
    pub fn fetch_branch(&self, remote: &str, branch: &str, into: &str) -> Result<bool> {
        let spec = format!("+refs/heads/{branch}:{into}");
        let fetch = || {
            self.run_timed(
                &[
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--no-recurse-submodules",
                    "--refmap=",
                    "--",
                    remote,
                    &spec,
                ],
                None,
                NETWORK_TIMEOUT,
            )
        };
        let mut ran = fetch()?;
        // Two fetches of this clone at once (the server's poll and a
        // write): the later one's ref update finds the ref moved. Both
        // fetched the same branch, so fetching again settles it.
        for _ in 0..5 {
            if ran.ok || !ran.stderr.contains("cannot lock ref") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            ran = fetch()?;
        }
        if !ran.ok {
            if ran.stderr.contains("couldn't find remote ref") {
                return Ok(false);
            }
            return Err(StoreError::Sync {
                failure: SyncFailure::Unreachable,
                message: format!(
                    "cannot fetch branch '{branch}' from remote '{remote}': {}",
                    first_error(&ran.stderr)
                ),
            });
        }
        Ok(true)
    }

    /// The refs under `prefix` (ending in `/`) and the commits they name:
    /// read from git's ref files where they are plain files (as `git fetch`
    /// and `git update-ref` write them), else asked of git.
    pub fn refs_under(&self, prefix: &str) -> Result<std::collections::HashMap<String, String>> {
        if let Some(found) = self.loose_refs(prefix) {
            return Ok(found);
        }
        let out =
            self.run_ok_raw(&["for-each-ref", "--format=%(objectname) %(refname)", prefix])?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, name)| (name.to_string(), id.to_string()))
            .collect())
    }

    /// The loose ref files under `prefix`, or `None` when git must be asked
    /// (git's environment moves the repository, refs are not files, or
    /// `packed-refs` holds some of them).
    fn loose_refs(&self, prefix: &str) -> Option<std::collections::HashMap<String, String>> {
        if std::env::var_os("GIT_DIR").is_some() || std::env::var_os("GIT_COMMON_DIR").is_some() {
            return None;
        }
        let git_dir = self.top.join(".git");
        if !std::fs::symlink_metadata(&git_dir).ok()?.is_dir() {
            return None;
        }
        let config = std::fs::read_to_string(git_dir.join("config")).ok()?;
        if config.to_ascii_lowercase().contains("refstorage") {
            return None;
        }
        if std::fs::read_to_string(git_dir.join("packed-refs")).is_ok_and(|p| p.contains(prefix)) {
            return None;
        }
        let mut found = std::collections::HashMap::new();
        let dir = git_dir.join(prefix.trim_end_matches('/'));
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(found),
            Err(_) => return None,
        };
        for e in entries {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") {
                continue;
            }
            if !e.file_type().ok()?.is_file() {
                // Deeper refs: let git list them.
                return None;
            }
            let text = std::fs::read_to_string(e.path()).ok()?;
            let id = text.trim();
            if !(id.len() == 40 || id.len() == 64) || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            found.insert(format!("{prefix}{name}"), id.to_string());
        }
        Some(found)
    }

    /// Points each private ref at its commit, in one transaction.
    pub fn write_refs(&self, updates: &[(&str, &str)], message: &str) -> Result<()> {
        let mut input = String::new();
        for (name, commit) in updates {
            input.push_str(&format!("update {name} {commit}\n"));
        }
        self.run_ok(
            &["update-ref", "-m", message, "--stdin"],
            None,
            Some(input.as_bytes()),
        )
        .map(|_| ())
    }

    /// Pushes `commit` (a child of `expected`, or a first commit) to
    /// `branch` of `remote` with compare-and-swap: the remote takes it only
    /// while its branch still points at `expected` (absent for `None`).
    /// As `commit` descends from `expected`, the update is always a
    /// fast-forward: nothing is ever overwritten. (A plain push would also
    /// take it over an older commit the branch was rewound to.)
    pub fn push_branch(
        &self,
        remote: &str,
        commit: &str,
        branch: &str,
        expected: Option<&str>,
    ) -> Result<Pushed> {
        let spec = format!("{commit}:refs/heads/{branch}");
        let lease = format!(
            "--force-with-lease=refs/heads/{branch}:{}",
            expected.unwrap_or_default()
        );
        let ran = self.run_timed(
            &[
                "push",
                "--porcelain",
                "--no-recurse-submodules",
                &lease,
                "--",
                remote,
                &spec,
            ],
            None,
            NETWORK_TIMEOUT,
        )?;
        // `<flag>\t<from>:<to>\t<summary>` per ref.
        let line = ran
            .stdout
            .lines()
            .find(|l| l.contains(&format!(":refs/heads/{branch}\t")));
        let Some(line) = line else {
            return Err(StoreError::Sync {
                failure: SyncFailure::Unreachable,
                message: format!(
                    "cannot push to branch '{branch}' of remote '{remote}': {}",
                    first_error(&ran.stderr)
                ),
            });
        };
        let summary = line.rsplit('\t').next().unwrap_or_default().to_string();
        // The ref's own line says what happened to it (git may exit with an
        // error for another reason, a hook after the update, say).
        if !line.starts_with('!') {
            return Ok(Pushed::Done);
        }
        let lower = summary.to_ascii_lowercase();
        let raced = lower.contains("fetch first")
            || lower.contains("non-fast-forward")
            || lower.contains("stale info")
            || lower.contains("cannot lock ref")
            || lower.contains("failed to update ref")
            || lower.contains("failed to lock")
            || lower.contains("but expected");
        let why = match first_error(&ran.stderr) {
            e if e.is_empty() || e == "exited with an error" => summary.clone(),
            e => format!("{summary}: {e}"),
        };
        Ok(if raced {
            Pushed::Conflict(summary)
        } else {
            Pushed::Refused(why)
        })
    }

    /// The commit a ref points at, if it exists.
    pub fn read_ref(&self, name: &str) -> Result<Option<String>> {
        let out = self.run(
            &["rev-parse", "-q", "--verify", &format!("{name}^{{commit}}")],
            None,
            None,
        )?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok((out.status.success() && !id.is_empty()).then_some(id))
    }

    /// Whether `ancestor` is `commit` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, commit: &str) -> Result<bool> {
        let out = self.run(
            &["merge-base", "--is-ancestor", ancestor, commit],
            None,
            None,
        )?;
        Ok(out.status.success())
    }

    /// Every file under `prefix` (relative to the top, ending in `/`) at `commit`.
    pub fn files_at(&self, commit: &str, prefix: &str) -> Result<Vec<TreeFile>> {
        let out = self.run_ok_raw(&["ls-tree", "-r", "-z", "--full-tree", commit, "--", prefix])?;
        let mut files = Vec::new();
        for item in out.split(|b| *b == 0).filter(|i| !i.is_empty()) {
            let text = String::from_utf8_lossy(item);
            // `<mode> <type> <id>\t<path>`
            let Some((meta, path)) = text.split_once('\t') else {
                continue;
            };
            let mut parts = meta.split(' ');
            let (Some(mode), Some(_), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            files.push(TreeFile {
                path: path.to_string(),
                mode: mode.to_string(),
                id: id.to_string(),
            });
        }
        Ok(files)
    }

    /// The sizes of objects (`None`: missing), by one `git cat-file
    /// --batch-check`, so nothing larger than a store file is ever read.
    pub fn sizes(&self, ids: &[String]) -> Result<Vec<Option<u64>>> {
        let mut input = Vec::new();
        for id in ids {
            input.extend_from_slice(id.as_bytes());
            input.push(b'\n');
        }
        let out = self.run(&["cat-file", "--batch-check"], None, Some(&input))?;
        if !out.status.success() {
            return Err(super::git_err("cat-file", &out));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut sizes: Vec<Option<u64>> = text
            .lines()
            .map(|l| {
                let parts: Vec<&str> = l.split(' ').collect();
                (parts.len() == 3).then(|| parts[2].parse().ok()).flatten()
            })
            .collect();
        sizes.resize(ids.len(), None);
        Ok(sizes)
    }

    /// The files under `prefix` that differ between two commits.
    pub fn changes(&self, from: &str, to: &str, prefix: &str) -> Result<Vec<Change>> {
        let out = self.run_ok_raw(&[
            "diff-tree",
            "-r",
            "-z",
            "--no-renames",
            "--no-commit-id",
            from,
            to,
            "--",
            prefix,
        ])?;
        // `:<old mode> <new mode> <old id> <new id> <status>\0<path>\0`
        let mut items = out.split(|b| *b == 0).filter(|i| !i.is_empty());
        let mut changes = Vec::new();
        while let (Some(meta), Some(path)) = (items.next(), items.next()) {
            let meta = String::from_utf8_lossy(meta);
            let path = String::from_utf8_lossy(path).into_owned();
            let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
            if parts.len() < 5 {
                continue;
            }
            changes.push(if parts[4].starts_with('D') {
                Change::Deleted(path)
            } else {
                Change::Written(TreeFile {
                    path,
                    mode: parts[1].to_string(),
                    id: parts[3].to_string(),
                })
            });
        }
        Ok(changes)
    }

    fn run_ok_raw(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.run(args, None, None)?;
        if !out.status.success() {
            return Err(super::git_err(args.first().copied().unwrap_or("git"), &out));
        }
        Ok(out.stdout)
    }

    /// A commit on `parent` (or a first commit) whose tree is the parent's
    /// with `files` (paths relative to the top) written, or removed where
    /// the content is `None`. One `git fast-import`, which writes the
    /// objects and points `scratch_ref` (a private ref) at the commit.
    pub fn commit_files(
        &self,
        parent: Option<&str>,
        files: &[(String, Option<Vec<u8>>)],
        message: &str,
        author: &Signature,
        scratch_ref: &str,
    ) -> Result<String> {
        for part in [&author.name, &author.email] {
            releaseops_format::names::validate_text("git author", part)
                .map_err(StoreError::Input)?;
        }
        let seconds = jiff::Timestamp::now().as_second();
        let who = format!("{} <{}> {seconds} +0000", author.name, author.email);
        let mut input = Vec::new();
        input.extend_from_slice(format!("commit {scratch_ref}\nmark :1\n").as_bytes());
        input.extend_from_slice(format!("author {who}\ncommitter {who}\n").as_bytes());
        input.extend_from_slice(format!("data {}\n{message}\n", message.len()).as_bytes());
        if let Some(p) = parent {
            input.extend_from_slice(format!("from {p}\n").as_bytes());
        }
        for (path, content) in files {
            if path.is_empty() || path.contains(['\n', '\r', '\0', '"']) || path.starts_with('/') {
                return Err(StoreError::Source {
                    message: format!("cannot commit the path '{}'", path.escape_debug()),
                    hint: None,
                });
            }
            match content {
                Some(bytes) => {
                    input.extend_from_slice(
                        format!("M 100644 inline {path}\ndata {}\n", bytes.len()).as_bytes(),
                    );
                    input.extend_from_slice(bytes);
                    input.push(b'\n');
                }
                None => input.extend_from_slice(format!("D {path}\n").as_bytes()),
            }
        }
        input.extend_from_slice(b"\nget-mark :1\ndone\n");
        // `--force` lets the scratch ref (ours alone, never pushed by name)
        // move to a commit that does not descend from the last one.
        let out = self.run_timed(
            &[
                "fast-import",
                "--quiet",
                "--done",
                "--force",
                "--date-format=raw",
            ],
            Some(&input),
            NETWORK_TIMEOUT,
        )?;
        if !out.ok {
            return Err(StoreError::Git {
                command: "fast-import".into(),
                message: first_error(&out.stderr),
            });
        }
        let id = out.stdout.trim().to_string();
        if id.len() < 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Git {
                command: "fast-import".into(),
                message: format!(
                    "did not name the commit it wrote (said '{}')",
                    id.escape_debug()
                ),
            });
        }
        Ok(id)
    }
}

/// The line of git's message that says what went wrong.
fn first_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:") || l.contains("rejected"))
        .or(lines.first())
        .map(|l| {
            l.trim_start_matches("fatal: ")
                .trim_start_matches("error: ")
                .to_string()
        })
        .unwrap_or_else(|| "exited with an error".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_a_message() {
        assert_eq!(
            redact(
                "fatal: unable to access 'https://bot:s3cr3t@git.example.com/team/repo.git/': 403"
            ),
            "fatal: unable to access 'https://***@git.example.com/team/repo.git/': 403"
        );
        assert_eq!(
            redact("https://git.example.com/x"),
            "https://git.example.com/x"
        );
        assert_eq!(
            redact("see https://u:pa/ss@host/r.git now"),
            "see https://***@host/r.git now"
        );
        assert_eq!(
            redact("ssh://git@host:22/x and http://a:b@c"),
            "ssh://***@host:22/x and http://***@c"
        );
    }
}
