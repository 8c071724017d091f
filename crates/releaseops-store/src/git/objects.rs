//! A commit of a few paths on top of HEAD, written as loose objects without
//! a git process per step. HEAD and the trees on the way to our paths are
//! read here when they are loose objects (the trees of our own last commit
//! are), each checked against its id; when one is packed or HEAD is not a
//! plain ref, one `git cat-file --batch` reads them instead. The blobs, the
//! edited trees and the commit are hashed and written here, and the caller
//! moves HEAD with `git update-ref` (compare-and-swap, reflog), which
//! refuses if HEAD is not what was read.
//!
//! Only what this needs is implemented: SHA-1 repositories whose `.git` is a
//! directory and whose object directory git's environment does not move.
//! Anything else is `Unsupported`, and the caller commits with git itself.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha1::{Digest, Sha1};

/// A 20-byte SHA-1 object id.
pub(super) type Oid = [u8; 20];

/// The in-process commit did not happen (nothing was moved): a repository
/// shape this writer does not handle, or a failure. Either way the caller
/// commits with git itself, which reports any failure that is real.
#[derive(Debug)]
pub(super) struct Unsupported;

pub(super) fn hex(id: &Oid) -> String {
    hex::encode(id)
}

fn parse_hex(s: &str) -> Option<Oid> {
    hex::FromHex::from_hex(s).ok()
}

/// The object directory of the repository at `top`, when this writer can
/// handle it.
fn objects_dir(top: &Path) -> Result<PathBuf, Unsupported> {
    // git's environment moves the repository.
    for var in ["GIT_DIR", "GIT_OBJECT_DIRECTORY", "GIT_INDEX_FILE"] {
        if std::env::var_os(var).is_some() {
            return Err(Unsupported);
        }
    }
    let dot_git = top.join(".git");
    let meta = std::fs::symlink_metadata(&dot_git).map_err(|_| Unsupported)?;
    // A linked work tree or a submodule.
    if !meta.is_dir() {
        return Err(Unsupported);
    }
    let config = std::fs::read_to_string(dot_git.join("config")).unwrap_or_default();
    let config = config.to_ascii_lowercase();
    // SHA-256 objects, or refs not stored as files.
    if config.contains("objectformat") || config.contains("refstorage") {
        return Err(Unsupported);
    }
    Ok(dot_git.join("objects"))
}

/// One entry of a tree object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    mode: Vec<u8>,
    id: Oid,
}

const TREE: &[u8] = b"40000";
const BLOB: &[u8] = b"100644";

/// A tree's entries by name.
pub(super) type Tree = BTreeMap<Vec<u8>, Entry>;

fn parse_tree(data: &[u8]) -> Result<Tree, Unsupported> {
    let mut tree = Tree::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = memchr::memchr(b' ', rest).ok_or(Unsupported)?;
        let nul = memchr::memchr(0, &rest[sp..])
            .map(|n| sp + n)
            .ok_or(Unsupported)?;
        let id: Oid = rest
            .get(nul + 1..nul + 21)
            .and_then(|b| b.try_into().ok())
            .ok_or(Unsupported)?;
        tree.insert(
            rest[sp + 1..nul].to_vec(),
            Entry {
                mode: rest[..sp].to_vec(),
                id,
            },
        );
        rest = &rest[nul + 21..];
    }
    Ok(tree)
}

/// A tree object's content, entries in git's order: by name, a tree's name
/// compared as if it ended in `/`.
fn tree_bytes(tree: &Tree) -> Vec<u8> {
    let key = |(name, e): &(&Vec<u8>, &Entry)| {
        let mut k = (*name).clone();
        if e.mode == TREE {
            k.push(b'/');
        }
        k
    };
    let mut entries: Vec<(&Vec<u8>, &Entry)> = tree.iter().collect();
    entries.sort_by_cached_key(key);
    let mut out = Vec::new();
    for (name, e) in entries {
        out.extend_from_slice(&e.mode);
        out.push(b' ');
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(&e.id);
    }
    out
}

/// Loose objects to write, by id.
#[derive(Default)]
struct Pending(Vec<(Oid, Vec<u8>)>);

impl Pending {
    /// Hashes an object and keeps it for writing; its id.
    fn add(&mut self, kind: &str, body: &[u8]) -> Oid {
        let mut raw = format!("{kind} {}\0", body.len()).into_bytes();
        raw.extend_from_slice(body);
        let id: Oid = Sha1::digest(&raw).into();
        self.0.push((id, raw));
        id
    }

    /// Writes every object not already there, each through a temporary file
    /// renamed into place, as git does.
    fn write(self, objects: &Path) -> Result<(), Unsupported> {
        for (id, raw) in self.0 {
            let h = hex(&id);
            let dir = objects.join(&h[..2]);
            let path = dir.join(&h[2..]);
            if path.exists() {
                continue;
            }
            std::fs::create_dir_all(&dir).map_err(|_| Unsupported)?;
            let packed = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 1);
            let mut tmp = tempfile::Builder::new()
                .prefix("tmp_obj_")
                .tempfile_in(&dir)
                .map_err(|_| Unsupported)?;
            tmp.write_all(&packed).map_err(|_| Unsupported)?;
            tmp.persist(&path).map_err(|_| Unsupported)?;
        }
        Ok(())
    }
}

/// What `git cat-file --batch` answered for one name.
enum Found {
    Object {
        id: Oid,
        kind: String,
        data: Vec<u8>,
    },
    Missing,
}

/// Reads one answer of `git cat-file --batch`.
fn read_answer(out: &mut impl BufRead) -> Result<Found, Unsupported> {
    let mut header = String::new();
    out.read_line(&mut header).map_err(|_| Unsupported)?;
    let header = header.trim_end();
    let parts: Vec<&str> = header.split(' ').collect();
    match parts.as_slice() {
        [id, kind, size] => {
            let id = parse_hex(id).ok_or(Unsupported)?;
            let size: usize = size.parse().map_err(|_| Unsupported)?;
            let mut data = vec![0u8; size + 1];
            out.read_exact(&mut data).map_err(|_| Unsupported)?;
            data.pop();
            Ok(Found::Object {
                id,
                kind: kind.to_string(),
                data,
            })
        }
        [_, "missing"] | [_, "ambiguous"] => Ok(Found::Missing),
        _ => Err(Unsupported),
    }
}

/// The largest object read here; anything bigger is left to git.
const MAX_OBJECT: usize = 64 << 20;

/// A loose object's kind and content, when it is stored loose and its
/// content hashes to its name.
fn read_loose(objects: &Path, id: &Oid) -> Option<(String, Vec<u8>)> {
    let h = hex(id);
    let packed = std::fs::read(objects.join(&h[..2]).join(&h[2..])).ok()?;
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&packed, MAX_OBJECT).ok()?;
    if <[u8; 20]>::from(Sha1::digest(&raw)) != *id {
        return None;
    }
    let nul = memchr::memchr(0, &raw)?;
    let header = std::str::from_utf8(&raw[..nul]).ok()?;
    let (kind, size) = header.split_once(' ')?;
    (size.parse::<usize>().ok()? == raw.len() - nul - 1)
        .then(|| (kind.to_string(), raw[nul + 1..].to_vec()))
}

/// The commit HEAD names, read from the ref files: `Ok(None)` on an unborn
/// branch, `Err` when git should be asked (a symbolic chain, an odd file).
fn read_head(git_dir: &Path) -> Result<Option<Oid>, ()> {
    let head = std::fs::read_to_string(git_dir.join("HEAD")).map_err(|_| ())?;
    let head = head.trim_end_matches('\n');
    let Some(name) = head.strip_prefix("ref: ") else {
        return parse_hex(head).map(Some).ok_or(());
    };
    if !name.starts_with("refs/heads/") || name.contains("..") || name.contains('\\') {
        return Err(());
    }
    match std::fs::read_to_string(git_dir.join(name)) {
        Ok(text) => return parse_hex(text.trim_end_matches('\n')).map(Some).ok_or(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return Err(()),
    }
    let packed = match std::fs::read_to_string(git_dir.join("packed-refs")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(()),
    };
    for line in packed.lines() {
        if let Some((id, r)) = line.split_once(' ')
            && r == name
        {
            return parse_hex(id).map(Some).ok_or(());
        }
    }
    Ok(None)
}

/// HEAD and the trees at `dirs` (parents first) from loose objects, or
/// `None` when any of them is not loose (git is asked instead).
pub(super) fn read_base_loose(
    git_dir: &Path,
    objects: &Path,
    dirs: &[String],
) -> Option<(Option<Oid>, BTreeMap<String, Tree>)> {
    let mut trees = BTreeMap::new();
    let Some(head) = read_head(git_dir).ok()? else {
        return Some((None, trees));
    };
    let (kind, commit) = read_loose(objects, &head)?;
    if kind != "commit" {
        return None;
    }
    let root = commit
        .strip_prefix(b"tree ")
        .and_then(|r| r.get(..40))
        .and_then(|h| parse_hex(std::str::from_utf8(h).ok()?))?;
    for d in dirs {
        let id = if d.is_empty() {
            root
        } else {
            let (parent, name) = d.rsplit_once('/').unwrap_or(("", d));
            // A directory absent from its parent (or a file there) starts empty.
            match trees
                .get(parent)
                .and_then(|t: &Tree| t.get(name.as_bytes()))
                .filter(|e| e.mode == TREE)
            {
                Some(e) => e.id,
                None => continue,
            }
        };
        let (kind, data) = read_loose(objects, &id)?;
        if kind != "tree" {
            return None;
        }
        trees.insert(d.clone(), parse_tree(&data).ok()?);
    }
    Some((Some(head), trees))
}

/// HEAD and the trees at `dirs` as `git cat-file --batch` reads them.
fn read_base_with_git(
    top: &Path,
    dirs: &[String],
) -> Result<(Option<Oid>, BTreeMap<String, Tree>), Unsupported> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["cat-file", "--batch"])
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|_| Unsupported)?;
    let (Some(mut input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Unsupported);
    };
    let mut output = BufReader::new(output);
    // HEAD first, then the trees of that very commit (HEAD may move while
    // we read; the ref update refuses if it did).
    input.write_all(b"HEAD\n").map_err(|_| Unsupported)?;
    input.flush().map_err(|_| Unsupported)?;
    let head = match read_answer(&mut output)? {
        Found::Object { id, kind, .. } if kind == "commit" => Some(id),
        Found::Object { .. } => return Err(Unsupported),
        Found::Missing => None,
    };
    let mut trees: BTreeMap<String, Tree> = BTreeMap::new();
    if let Some(h) = head {
        let mut ask = String::new();
        for d in dirs {
            ask.push_str(&format!("{}:{d}\n", hex(&h)));
        }
        input.write_all(ask.as_bytes()).map_err(|_| Unsupported)?;
        drop(input);
        for d in dirs {
            if let Found::Object { kind, data, .. } = read_answer(&mut output)?
                && kind == "tree"
            {
                trees.insert(d.clone(), parse_tree(&data)?);
            }
        }
    } else {
        drop(input);
    }
    let status = child.wait().map_err(|_| Unsupported)?;
    if !status.success() {
        return Err(Unsupported);
    }
    Ok((head, trees))
}

/// The directories on the way to `paths` (the root as ""), parents first.
pub(super) fn directories(paths: &[String]) -> Vec<String> {
    let mut dirs = vec![String::new()];
    for p in paths {
        let mut at = 0;
        while let Some(i) = p[at..].find('/') {
            let d = &p[..at + i];
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_string());
            }
            at += i + 1;
        }
    }
    dirs.sort_by_key(|d| {
        if d.is_empty() {
            0
        } else {
            d.matches('/').count() + 1
        }
    });
    dirs
}

/// The commit author line's value: git drops `<`, `>` and line breaks from a
/// name or an email, so nothing can forge another header.
fn ident(name: &str, email: &str, seconds: i64, offset: i32) -> String {
    let clean = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r' | '\0'))
            .collect::<String>()
            .trim()
            .to_string()
    };
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.unsigned_abs();
    format!(
        "{} <{}> {seconds} {sign}{:02}{:02}",
        clean(name),
        clean(email),
        off / 3600,
        (off % 3600) / 60
    )
}

/// Who and when, for [`build`].
pub(super) struct Stamp<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub seconds: i64,
    /// The local UTC offset in seconds.
    pub offset: i32,
}

/// Writes blobs for `paths` as they are under `top` (missing files are
/// removed), the trees above them and a commit on top of HEAD. Returns the
/// new commit and the HEAD it builds on (`None`: an unborn branch), or
/// `Ok(None)` when HEAD already holds exactly this content.
pub(super) fn build(
    top: &Path,
    paths: &[String],
    message: &str,
    stamp: &Stamp<'_>,
) -> Result<Option<(String, Option<String>)>, Unsupported> {
    // Paths cat-file could not be asked about.
    if paths
        .iter()
        .any(|p| p.is_empty() || p.contains(['\n', '\r', '\0', '\\']) || p.starts_with('/'))
    {
        return Err(Unsupported);
    }
    let objects = objects_dir(top)?;
    let dirs = directories(paths);
    let (head, mut trees) = match read_base_loose(&top.join(".git"), &objects, &dirs) {
        Some(base) => base,
        None => read_base_with_git(top, &dirs)?,
    };
    let base_root = trees.get("").map(tree_bytes);
    let mut pending = Pending::default();
    for p in paths {
        let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
        let tree = trees.entry(dir.to_string()).or_default();
        let path = top.join(p);
        // A link is committed as a link by git itself, never as the file it
        // points to.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Unsupported);
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let id = pending.add("blob", &bytes);
                tree.insert(
                    name.as_bytes().to_vec(),
                    Entry {
                        mode: BLOB.to_vec(),
                        id,
                    },
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tree.remove(name.as_bytes());
            }
            Err(_) => return Err(Unsupported),
        }
    }
    // Deepest first: write each directory's tree into its parent (an empty
    // directory disappears, as in git).
    for d in dirs.iter().rev().filter(|d| !d.is_empty()) {
        let tree = trees.remove(d).unwrap_or_default();
        let (parent, name) = d.rsplit_once('/').unwrap_or(("", d));
        let entry = (!tree.is_empty()).then(|| Entry {
            mode: TREE.to_vec(),
            id: pending.add("tree", &tree_bytes(&tree)),
        });
        let up = trees.entry(parent.to_string()).or_default();
        match entry {
            Some(e) => up.insert(name.as_bytes().to_vec(), e),
            None => up.remove(name.as_bytes()),
        };
    }
    let root = tree_bytes(&trees.remove("").unwrap_or_default());
    if head.is_some() && base_root.as_deref() == Some(root.as_slice()) {
        return Ok(None);
    }
    let root_id = pending.add("tree", &root);
    let who = ident(stamp.name, stamp.email, stamp.seconds, stamp.offset);
    let mut body = format!("tree {}\n", hex(&root_id));
    if let Some(h) = &head {
        body.push_str(&format!("parent {}\n", hex(h)));
    }
    body.push_str(&format!("author {who}\ncommitter {who}\n\n{message}"));
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let commit = pending.add("commit", body.as_bytes());
    pending.write(&objects)?;
    Ok(Some((hex(&commit), head.as_ref().map(hex))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_sort_as_git_sorts_them() {
        let mut t = Tree::new();
        let e = |mode: &[u8]| Entry {
            mode: mode.to_vec(),
            id: [0; 20],
        };
        t.insert(b"a.b".to_vec(), e(BLOB));
        t.insert(b"a".to_vec(), e(TREE));
        t.insert(b"a-b".to_vec(), e(BLOB));
        let bytes = tree_bytes(&t);
        // "a-b" < "a.b" < "a/" (0x2d < 0x2e < 0x2f).
        let names: Vec<&[u8]> = bytes
            .split(|b| *b == 0)
            .filter_map(|chunk| {
                chunk
                    .iter()
                    .position(|b| *b == b' ')
                    .map(|i| &chunk[i + 1..])
            })
            .collect();
        assert_eq!(names, [&b"a-b"[..], b"a.b", b"a"]);
        assert_eq!(parse_tree(&bytes).unwrap(), t);
    }

    #[test]
    fn an_identity_cannot_add_a_header() {
        let line = ident("Eve\ncommitter Mallory <m@x> 1 +0000", "e<v>e@x", 5, -5400);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.ends_with("<eve@x> 5 -0130"), "{line}");
    }

    #[test]
    fn directories_come_parents_first() {
        let d = directories(&[
            ".releaseops/history/1.jsonl".into(),
            ".releaseops/x.yaml".into(),
        ]);
        assert_eq!(d, ["", ".releaseops", ".releaseops/history"]);
    }
}
