//! Git. A commit's objects (blobs, the edited trees above them, the commit)
//! are written here as loose objects after one `git cat-file --batch` has
//! read HEAD and the trees on the way ([`objects`]), which costs a few
//! milliseconds where driving `git` step by step took six process spawns;
//! HEAD is then moved by `git update-ref` (compare-and-swap, reflog), a child
//! process that finishes and removes its lock file even if we are killed.
//! Repositories of another shape (a linked work tree, SHA-256 objects, git's
//! environment moving the repository) use the user's own `git` on a private
//! index. Either way the commit
//! holds exactly our paths, never the user's staged or unstaged work, and
//! afterwards only our paths are refreshed in the user's index so `git status`
//! stays clean. Reads that need a revision walk use `git`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{Result, StoreError};

mod objects;
mod remote;

pub use remote::{Change, Pushed, TreeFile, redact};

/// A git work tree that contains the `.releaseops/` directory.
pub struct Git {
    top: PathBuf,
    /// Where the private index of a fallback commit is built.
    scratch: PathBuf,
}

impl std::fmt::Debug for Git {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Git").field("top", &self.top).finish()
    }
}

/// An object found by [`Git::batch`]: its id and its content.
pub type FoundObject = (String, Vec<u8>);

/// Who a commit is attributed to.
#[derive(Debug, Clone)]
pub struct Signature {
    pub name: String,
    pub email: String,
}

impl Signature {
    /// Splits `Name <email>`; anything else becomes the name with no email.
    pub fn from_actor(actor: &str) -> Signature {
        if let (Some(l), Some(r)) = (actor.find('<'), actor.rfind('>'))
            && l < r
        {
            let name = actor[..l].trim();
            let email = actor[l + 1..r].trim();
            return Signature {
                name: if name.is_empty() {
                    email.to_string()
                } else {
                    name.to_string()
                },
                email: email.to_string(),
            };
        }
        Signature {
            name: actor.to_string(),
            email: String::new(),
        }
    }
}

fn git_err(command: &str, out: &Output) -> StoreError {
    let stderr = String::from_utf8_lossy(&out.stderr);
    StoreError::Git {
        command: command.to_string(),
        message: stderr
            .lines()
            .next()
            .unwrap_or("exited with an error")
            .trim()
            .to_string(),
    }
}

/// Waits for a child started by the `spawn_*` helpers; its stdout on success.
fn finish(command: &str, child: std::process::Child) -> Result<String> {
    let out = child
        .wait_with_output()
        .map_err(|e| spawn_err(command, e))?;
    if !out.status.success() {
        return Err(git_err(command, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn spawn_err(command: &str, e: std::io::Error) -> StoreError {
    StoreError::Git {
        command: command.to_string(),
        message: if e.kind() == std::io::ErrorKind::NotFound {
            "the git executable was not found on PATH".into()
        } else {
            e.to_string()
        },
    }
}

impl Git {
    /// The work tree containing `dir`, or `None` when it is not in one.
    /// Found the way git finds it, by the nearest `.git` upward, without a
    /// spawn; when `GIT_DIR`/`GIT_WORK_TREE` steer git, git itself is asked.
    /// `scratch` is a directory for temporary files (the private index).
    pub fn discover(dir: &Path, scratch: &Path) -> Option<Git> {
        if std::env::var_os("GIT_DIR").is_some() || std::env::var_os("GIT_WORK_TREE").is_some() {
            let out = Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(["rev-parse", "--show-toplevel"])
                .stderr(Stdio::null())
                .output()
                .ok()?;
            let top = String::from_utf8(out.stdout).ok()?.trim().to_string();
            return (out.status.success() && !top.is_empty())
                .then(|| Git::at(PathBuf::from(top), scratch));
        }
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if d.join(".git").exists() {
                return Some(Git::at(d.to_path_buf(), scratch));
            }
            cur = d.parent();
        }
        None
    }

    fn at(top: PathBuf, scratch: &Path) -> Git {
        Git {
            top,
            scratch: scratch.to_path_buf(),
        }
    }

    pub fn top(&self) -> &Path {
        &self.top
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("-C").arg(&self.top);
        // Our reads must not be affected by a pager or localized messages.
        c.env("GIT_PAGER", "cat").env("LC_ALL", "C");
        c
    }

    /// Starts git with `args`, its output piped, and `stdin` written in.
    fn start(
        &self,
        mut c: Command,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<std::process::Child> {
        c.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let name = args.first().copied().unwrap_or("git");
        let mut child = c.spawn().map_err(|e| spawn_err(name, e))?;
        if let (Some(data), Some(mut si)) = (stdin, child.stdin.take()) {
            si.write_all(data).map_err(|e| spawn_err(name, e))?;
        }
        Ok(child)
    }

    fn run(&self, args: &[&str], index: Option<&Path>, stdin: Option<&[u8]>) -> Result<Output> {
        let mut c = self.cmd();
        if let Some(ix) = index {
            c.env("GIT_INDEX_FILE", ix);
        }
        let name = args.first().copied().unwrap_or("git");
        let child = self.start(c, args, stdin)?;
        child.wait_with_output().map_err(|e| spawn_err(name, e))
    }

    fn run_ok(&self, args: &[&str], index: Option<&Path>, stdin: Option<&[u8]>) -> Result<String> {
        let out = self.run(args, index, stdin)?;
        if !out.status.success() {
            return Err(git_err(args.first().copied().unwrap_or("git"), &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The user's identity as `Name <email>` from this repository's git
    /// configuration (system, global, local, includes and `GIT_CONFIG_*`).
    pub fn identity(&self) -> Option<String> {
        user_identity(&self.top)
    }

    /// The commit and tree HEAD points at, or `None` on an unborn branch.
    pub fn head(&self) -> Result<Option<(String, String)>> {
        let out = self.run(&["rev-parse", "HEAD^{commit}", "HEAD^{tree}"], None, None)?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        match (lines.next(), lines.next()) {
            (Some(c), Some(t)) => Ok(Some((c.trim().to_string(), t.trim().to_string()))),
            _ => Ok(None),
        }
    }

    /// Commits exactly `paths` (relative to the work tree top, as they are now on
    /// disk; missing files are removed) on top of HEAD. Returns the new commit,
    /// or `None` when HEAD already has that content.
    pub fn commit_paths(
        &self,
        paths: &[String],
        message: &str,
        author: &Signature,
    ) -> Result<Option<String>> {
        if paths.is_empty() {
            return Ok(None);
        }
        // RELEASEOPS_GIT_CLI=1 forces the fallback (tests cover both paths).
        let built = if std::env::var_os("RELEASEOPS_GIT_CLI").is_some() {
            Err(objects::Unsupported)
        } else {
            let (seconds, offset) = now_local();
            let stamp = objects::Stamp {
                name: &author.name,
                email: &author.email,
                seconds,
                offset,
            };
            objects::build(&self.top, paths, message, &stamp)
        };
        let commit = match built {
            Ok(None) => None,
            Ok(Some((new, old))) => {
                let old = old.unwrap_or_else(|| "0".repeat(40));
                // Moving HEAD and refreshing the user's index for our paths
                // are independent (the index gets the work tree's content,
                // which is what the commit holds), so both children run at
                // once. Should the ref update fail, the index still tells
                // the truth: our files changed and are not committed yet.
                let index = self.spawn_update_index(paths, None)?;
                let moved = self.run_ok(
                    &["update-ref", "-m", message, "HEAD", &new, &old],
                    None,
                    None,
                );
                let indexed = finish("update-index", index);
                moved?;
                indexed?;
                return Ok(Some(new));
            }
            // Nothing moved HEAD yet: the git CLI can do the same safely.
            Err(_) => self.commit_with_cli(paths, message, author)?,
        };
        // Bring the user's index in line with HEAD for our paths only (also
        // when the commit had already landed before a crash).
        self.update_index(paths, None)?;
        Ok(commit)
    }

    /// Starts `git update-index` for `paths` (see [`Git::update_index`])
    /// without waiting for it.
    fn spawn_update_index(
        &self,
        paths: &[String],
        index: Option<&Path>,
    ) -> Result<std::process::Child> {
        let mut c = self.cmd();
        c.args(["update-index", "--add", "--remove", "-z", "--stdin"]);
        if let Some(ix) = index {
            c.env("GIT_INDEX_FILE", ix);
        }
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| spawn_err("update-index", e))?;
        let mut list = Vec::new();
        for p in paths {
            list.extend_from_slice(p.as_bytes());
            list.push(0);
        }
        if let Some(mut si) = child.stdin.take() {
            // Dropping stdin afterwards closes it, so git sees the end.
            si.write_all(&list)
                .map_err(|e| spawn_err("update-index", e))?;
        }
        Ok(child)
    }

    /// Stages `paths` as they are on disk (removing missing ones) in the
    /// user's index, or in `index` when given.
    fn update_index(&self, paths: &[String], index: Option<&Path>) -> Result<String> {
        finish("update-index", self.spawn_update_index(paths, index)?)
    }

    fn commit_with_cli(
        &self,
        paths: &[String],
        message: &str,
        author: &Signature,
    ) -> Result<Option<String>> {
        let head = self.head()?;
        let index = self
            .scratch
            .join(format!(".tmp-index-{}", std::process::id()));
        let _cleanup = RemoveOnDrop(index.clone());
        match &head {
            Some((commit, _)) => self.run_ok(&["read-tree", commit], Some(&index), None)?,
            None => self.run_ok(&["read-tree", "--empty"], Some(&index), None)?,
        };
        self.update_index(paths, Some(&index))?;
        let tree = self.run_ok(&["write-tree"], Some(&index), None)?;
        if head.as_ref().is_some_and(|(_, t)| *t == tree) {
            return Ok(None);
        }
        let mut c = self.cmd();
        c.arg("commit-tree").arg(&tree);
        if let Some((parent, _)) = &head {
            c.arg("-p").arg(parent);
        }
        c.arg("-m").arg(message);
        c.env("GIT_AUTHOR_NAME", &author.name)
            .env("GIT_AUTHOR_EMAIL", &author.email)
            .env("GIT_COMMITTER_NAME", &author.name)
            .env("GIT_COMMITTER_EMAIL", &author.email)
            .stdin(Stdio::null());
        let out = c.output().map_err(|e| spawn_err("commit-tree", e))?;
        if !out.status.success() {
            return Err(git_err("commit-tree", &out));
        }
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let old = head
            .as_ref()
            .map(|(c, _)| c.clone())
            .unwrap_or_else(|| "0".repeat(40));
        self.run_ok(
            &["update-ref", "-m", message, "HEAD", &commit, &old],
            None,
            None,
        )?;
        Ok(Some(commit))
    }

    /// The bytes of `path` (relative to the top) at `commit`, if it exists there.
    pub fn blob_at(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let spec = format!("{commit}:{path}");
        let out = self.run(&["cat-file", "blob", &spec], None, None)?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(Some(out.stdout))
    }

    /// Looks up several object names in one `git cat-file --batch` call: for
    /// each name, its object id and content, or `None` if it does not exist.
    pub fn batch(&self, names: &[String]) -> Result<Vec<Option<FoundObject>>> {
        let mut input = Vec::new();
        for n in names {
            input.extend_from_slice(n.as_bytes());
            input.push(b'\n');
        }
        let out = self.run(&["cat-file", "--batch"], None, Some(&input))?;
        if !out.status.success() {
            return Err(git_err("cat-file", &out));
        }
        let data = out.stdout;
        let mut pos = 0;
        let mut result = Vec::with_capacity(names.len());
        for _ in names {
            let Some(nl) = data[pos..].iter().position(|b| *b == b'\n') else {
                break;
            };
            let header = String::from_utf8_lossy(&data[pos..pos + nl]).to_string();
            pos += nl + 1;
            let parts: Vec<&str> = header.split(' ').collect();
            if parts.len() == 3 && !header.ends_with(" missing") && !header.ends_with(" ambiguous")
            {
                let size: usize = parts[2].parse().unwrap_or(0);
                let end = (pos + size).min(data.len());
                result.push(Some((parts[0].to_string(), data[pos..end].to_vec())));
                pos = end + 1;
            } else {
                result.push(None);
            }
        }
        result.resize(names.len(), None);
        Ok(result)
    }

    /// The commit a revision names, if any.
    pub fn resolve_commit(&self, rev: &str) -> Result<Option<String>> {
        if rev.starts_with('-') {
            return Ok(None);
        }
        let out = self.run(
            &["rev-parse", "-q", "--verify", &format!("{rev}^{{commit}}")],
            None,
            None,
        )?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    }

    /// Every tag with the commit it points at (annotated tags peeled).
    pub fn tags(&self) -> Result<HashMap<String, String>> {
        let text = self.run_ok(
            &[
                "for-each-ref",
                "--format=%(refname:strip=2) %(objectname) %(*objectname)",
                "refs/tags",
            ],
            None,
            None,
        )?;
        let mut map = HashMap::new();
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(name), Some(obj)) = (parts.next(), parts.next()) else {
                continue;
            };
            let peeled = parts.next().filter(|p| !p.is_empty()).unwrap_or(obj);
            map.insert(name.to_string(), peeled.to_string());
        }
        Ok(map)
    }

    /// The newest commit that changed `path`.
    pub fn last_commit_touching(&self, path: &str) -> Result<Option<String>> {
        let out = self.run(&["log", "-1", "--format=%H", "--", path], None, None)?;
        if !out.status.success() {
            return Ok(None);
        }
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(if s.is_empty() { None } else { Some(s) })
    }

    /// Whether git tracks `path` (relative to the work tree top).
    pub fn is_tracked(&self, path: &str) -> bool {
        self.run(&["ls-files", "--error-unmatch", "--", path], None, None)
            .is_ok_and(|o| o.status.success())
    }

    /// Whether any commit ever touched `path` (relative to the top).
    pub fn ever_had(&self, path: &str) -> bool {
        self.run(
            &["log", "-1", "--all", "--format=%H", "--", path],
            None,
            None,
        )
        .is_ok_and(|o| o.status.success() && !o.stdout.iter().all(u8::is_ascii_whitespace))
    }

    /// A git config value, if set.
    pub fn config(&self, key: &str) -> Option<String> {
        let out = self.run(&["config", "--get", key], None, None).ok()?;
        if !out.status.success() {
            return None;
        }
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if v.is_empty() { None } else { Some(v) }
    }
}

/// The user's git identity as `Name <email>`, for `git config` outside a
/// repository too. One `git config` run reads both keys (the last value of
/// each wins, as with `git config --get`).
pub fn user_identity(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["config", "-z", "--get-regexp", r"^user\.(name|email)$"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let (name, email) = identity_from_config(&String::from_utf8_lossy(&out.stdout));
    join_identity(name, email)
}

fn join_identity(name: Option<String>, email: Option<String>) -> Option<String> {
    match (name, email) {
        (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
        (Some(n), None) => Some(n),
        (None, Some(e)) => Some(e),
        (None, None) => None,
    }
}

/// `user.name` and `user.email` from `git config -z --get-regexp` output:
/// NUL-terminated entries of key, newline, value.
fn identity_from_config(text: &str) -> (Option<String>, Option<String>) {
    let (mut name, mut email) = (None, None);
    for entry in text.split('\0') {
        let (key, value) = entry.split_once('\n').unwrap_or((entry, ""));
        let value = value.trim();
        let slot = match key {
            "user.name" => &mut name,
            "user.email" => &mut email,
            _ => continue,
        };
        *slot = (!value.is_empty()).then(|| value.to_string());
    }
    (name, email)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Now, at the local UTC offset (as git stamps commits), without the zone
/// name lookup of jiff's system zone, which walks the whole zoneinfo tree and
/// costs milliseconds on every commit.
fn now_local() -> (i64, i32) {
    let now = jiff::Timestamp::now();
    let local = if cfg!(unix) && std::env::var_os("TZ").is_none() {
        std::fs::read("/etc/localtime")
            .ok()
            .and_then(|tzif| jiff::tz::TimeZone::tzif("Local", &tzif).ok())
    } else {
        jiff::tz::TimeZone::try_system().ok()
    };
    let offset = local.map(|tz| tz.to_offset(now).seconds()).unwrap_or(0);
    (now.as_second(), offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_takes_the_last_value_of_each_key() {
        let out = "user.name\nOld Name\0user.email\nme@example.test\0user.name\nAda Lovelace\0";
        assert_eq!(
            identity_from_config(out),
            (
                Some("Ada Lovelace".to_string()),
                Some("me@example.test".to_string())
            )
        );
        // An empty last value unsets the key, as `git config --get` reports it.
        assert_eq!(
            identity_from_config("user.name\nAda\0user.name\n\0"),
            (None, None)
        );
        assert_eq!(identity_from_config(""), (None, None));
    }

    #[test]
    fn identity_comes_from_one_git_config_run() {
        let dir = tempfile::tempdir().expect("tmp");
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .status()
                .expect("git")
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["config", "user.name", "Grace Hopper"]);
        git(&["config", "user.email", "grace@example.test"]);
        assert_eq!(
            user_identity(dir.path()).as_deref(),
            Some("Grace Hopper <grace@example.test>")
        );
        // In-process, the same answer.
        let scratch = tempfile::tempdir().expect("tmp");
        let repo = Git::discover(dir.path(), scratch.path()).expect("a repository");
        assert_eq!(
            repo.identity().as_deref(),
            Some("Grace Hopper <grace@example.test>")
        );
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// The tree git itself builds for the work tree's tracked content.
    fn git_tree(dir: &Path, paths: &[String]) -> String {
        let ix = dir.join(".git").join("probe-index");
        let run = |args: &[&str], stdin: Option<&[u8]>| {
            let mut c = Command::new("git");
            c.arg("-C").arg(dir).args(args).env("GIT_INDEX_FILE", &ix);
            c.stdin(Stdio::piped()).stdout(Stdio::piped());
            let mut child = c.spawn().expect("git");
            if let Some(data) = stdin {
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(data)
                    .expect("feed");
            }
            drop(child.stdin.take());
            let out = child.wait_with_output().expect("git");
            assert!(out.status.success(), "{args:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        run(&["read-tree", "HEAD~1"], None);
        let list: Vec<u8> = paths
            .iter()
            .flat_map(|p| format!("{p}\0").into_bytes())
            .collect();
        run(
            &["update-index", "--add", "--remove", "-z", "--stdin"],
            Some(&list),
        );
        let tree = run(&["write-tree"], None);
        let _ = std::fs::remove_file(&ix);
        tree
    }

    #[test]
    fn in_process_commits_build_the_trees_git_builds() {
        let dir = tempfile::tempdir().expect("tmp");
        let top = dir.path();
        git(top, &["init", "-q"]);
        write(top, "README.md", "user content\n");
        git(top, &["add", "README.md"]);
        git(
            top,
            &[
                "-c",
                "user.name=U",
                "-c",
                "user.email=u@x",
                "commit",
                "-qm",
                "user",
            ],
        );
        let scratch = tempfile::tempdir().expect("tmp");
        let repo = Git::discover(top, scratch.path()).expect("a repository");
        let who = Signature::from_actor("Ada <ada@example.test>");
        let first: Vec<String> = [
            ".releaseops/config.yaml",
            ".releaseops/history/1.jsonl",
            ".releaseops/bundles/a/1.0.0.yaml",
            ".releaseops/bundles/a-b.yaml",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for p in &first {
            write(top, p, &format!("content of {p}\n"));
        }
        // Written here, not by the git fallback.
        let stamp = objects::Stamp {
            name: "Ada",
            email: "ada@example.test",
            seconds: 1_700_000_000,
            offset: 3600,
        };
        let user = git(top, &["rev-parse", "HEAD"]);
        let (c1, parent) = objects::build(top, &first, "first", &stamp)
            .expect("in-process")
            .expect("a new commit");
        assert_eq!(parent.as_deref(), Some(user.as_str()));
        git(top, &["update-ref", "HEAD", &c1, &user]);
        git(top, &["add", "--", ".releaseops"]);
        assert_eq!(
            git(top, &["rev-parse", "HEAD^{tree}"]),
            git_tree(top, &first)
        );
        // Packed objects are read as well as loose ones; a removed file and
        // the directory it leaves empty disappear.
        // Our own objects are read back without git; packed ones with it.
        let objects_dir = top.join(".git").join("objects");
        let dirs = objects::directories(&first);
        let loose = objects::read_base_loose(&top.join(".git"), &objects_dir, &dirs);
        assert!(
            loose.is_some_and(|(h, trees)| h.map(|h| objects::hex(&h)) == Some(c1.clone())
                && trees.len() == dirs.len())
        );
        git(top, &["gc", "-q"]);
        assert!(objects::read_base_loose(&top.join(".git"), &objects_dir, &dirs).is_none());
        std::fs::remove_file(top.join(".releaseops/bundles/a/1.0.0.yaml")).expect("rm");
        write(top, ".releaseops/history/1.jsonl", "changed\n");
        let second: Vec<String> = vec![
            ".releaseops/bundles/a/1.0.0.yaml".into(),
            ".releaseops/history/1.jsonl".into(),
        ];
        let (c2, parent) = objects::build(top, &second, "second\n\nbody", &stamp)
            .expect("in-process")
            .expect("a new commit");
        assert_eq!(parent.as_deref(), Some(c1.as_str()));
        git(top, &["update-ref", "HEAD", &c2, &c1]);
        git(top, &["add", "-A", "--", ".releaseops"]);
        assert_eq!(git(top, &["rev-parse", "HEAD~1"]), c1);
        assert_eq!(
            git(top, &["rev-parse", "HEAD^{tree}"]),
            git_tree(top, &second)
        );
        assert!(git(top, &["ls-tree", "-r", "--name-only", "HEAD"]).contains("README.md"));
        assert_eq!(
            git(top, &["log", "-1", "--format=%an <%ae> %at %ai%n%B", &c2]),
            "Ada <ada@example.test> 1700000000 2023-11-14 23:13:20 +0100\nsecond\n\nbody"
        );
        git(top, &["fsck", "--strict", "--no-dangling"]);
        // Nothing new: no commit, by either path.
        assert!(matches!(
            objects::build(top, &second, "again", &stamp),
            Ok(None)
        ));
        assert_eq!(
            repo.commit_paths(&second, "again", &who).expect("commit"),
            None
        );
        // The user's index holds our paths, so `git status` stays clean.
        assert_eq!(git(top, &["status", "--porcelain"]), "");
        // A link is never read through: git commits it as a link.
        #[cfg(unix)]
        {
            let secret = top.join("outside.txt");
            std::fs::write(&secret, "not ours\n").expect("write");
            let link = ".releaseops/linked.yaml".to_string();
            std::os::unix::fs::symlink(&secret, top.join(&link)).expect("link");
            assert!(objects::build(top, std::slice::from_ref(&link), "link", &stamp).is_err());
            repo.commit_paths(std::slice::from_ref(&link), "link", &who)
                .expect("commit")
                .expect("new");
            let entry = git(top, &["ls-tree", "HEAD", &link]);
            assert!(entry.starts_with("120000 "), "{entry}");
        }
    }
}
