//! Where artifact bytes come from when a bundle is created.
//!
//! Prompts resolve as promptops resolves them: `.promptops/prompts/<id>.yaml`
//! in git history, version labels from tags `prompt-<id>-vX.Y.Z`, then
//! `vX.Y.Z`, then `commit-<sha8>`, then any git ref. Moving targets (`latest`,
//! `working`, `HEAD`, branches, `HEAD~1`) are pinned to the commit they meant.
//! Policy and plain prompt files are read from the working tree as Python's
//! `read_text()` reads them (UTF-8, universal newlines).

use std::collections::HashMap;
use std::path::Path;

use releaseops_format::{hash, names, version};

use crate::error::{Result, StoreError};
use crate::git::Git;

/// A prompt resolved to concrete bytes.
#[derive(Debug, Clone)]
pub struct ResolvedPrompt {
    /// What the manifest records: `prompts/<id>@<label-or-commit>`.
    pub reference: String,
    /// The commit the bytes were read from.
    pub commit: String,
    /// Exactly the git blob, as the existing tool hashes tag and SHA refs.
    pub bytes: Vec<u8>,
    /// Set when the request named a moving target that we pinned.
    pub pinned_from: Option<String>,
    /// Something the user should know (e.g. uncommitted edits were not bundled).
    pub note: Option<String>,
}

fn src_err(message: String, hint: &str) -> StoreError {
    StoreError::Source {
        message,
        hint: Some(hint.to_string()),
    }
}

/// Tags that label versions of `prompt_id` at `commit`, best first: per-prompt
/// tags, then global ones, highest version first.
fn labels_at(tags: &HashMap<String, String>, prompt_id: &str, commit: &str) -> Vec<String> {
    let per = format!("prompt-{prompt_id}-");
    let mut own: Vec<String> = Vec::new();
    let mut global: Vec<String> = Vec::new();
    for (name, c) in tags {
        if c != commit {
            continue;
        }
        if let Some(v) = name.strip_prefix(&per) {
            if version::is_semver(v) {
                own.push(if v.starts_with('v') {
                    v.to_string()
                } else {
                    format!("v{v}")
                });
            }
        } else if version::is_semver(name) && !name.starts_with("prompt-") {
            global.push(if name.starts_with('v') {
                name.clone()
            } else {
                format!("v{name}")
            });
        }
    }
    own.sort_by(|a, b| version::compare(b, a));
    global.sort_by(|a, b| version::compare(b, a));
    own.extend(global);
    own
}

/// Resolves `prompt_id` at `requested` (None = the newest committed version).
/// A prompt git never had: the close prompt id, if one is.
fn no_such_prompt(git: &Git, root_prefix: &str, prompt_id: &str, rel: &str) -> StoreError {
    let known = prompt_ids(git, root_prefix);
    let guess = names::did_you_mean(prompt_id, &known);
    let hint = if guess.is_empty() {
        "commit the promptops prompt file, or use --artifact ROLE=file:PATH for a plain prompt file"
            .to_string()
    } else {
        format!("{guess}promptops prompts here: {}", known.join(", "))
    };
    src_err(
        format!("prompt '{prompt_id}' has no committed version ({rel} is not in git history)"),
        &hint,
    )
}

/// The promptops prompt ids in the working tree (for suggestions).
fn prompt_ids(git: &Git, root_prefix: &str) -> Vec<String> {
    let dir = git.top().join(root_prefix).join(".promptops/prompts");
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".yaml").map(str::to_string)
        })
        .collect();
    ids.sort();
    ids
}

pub fn resolve_prompt(
    git: &Git,
    root_prefix: &str,
    prompt_id: &str,
    requested: Option<&str>,
) -> Result<ResolvedPrompt> {
    names::validate_prompt_id(prompt_id)
        .map_err(|e| src_err(e.to_string(), "prompt ids use letters, digits, '-' and '_'"))?;
    let rel = format!("{root_prefix}.promptops/prompts/{prompt_id}.yaml");
    let req = requested.map(str::trim).filter(|s| !s.is_empty());

    // The common case, a version label: find the tag and the file in one git call.
    if let Some(v) = req.filter(|v| version::is_semver(v)) {
        let bare = v.strip_prefix('v').unwrap_or(v);
        let mut candidates = vec![
            format!("prompt-{prompt_id}-v{bare}"),
            format!("prompt-{prompt_id}-{bare}"),
            format!("v{bare}"),
            bare.to_string(),
        ];
        candidates.dedup();
        let names: Vec<String> = candidates
            .iter()
            .flat_map(|t| {
                [
                    format!("refs/tags/{t}^{{commit}}"),
                    format!("refs/tags/{t}:{rel}"),
                ]
            })
            .collect();
        let found = git.batch(&names)?;
        for pair in found.chunks(2) {
            match pair {
                [Some((commit, _)), Some((_, bytes))] => {
                    return Ok(ResolvedPrompt {
                        reference: format!("prompts/{prompt_id}@{v}"),
                        commit: commit.clone(),
                        bytes: bytes.clone(),
                        pinned_from: None,
                        note: None,
                    });
                }
                [Some((commit, _)), None] => {
                    return Err(src_err(
                        format!(
                            "prompt '{prompt_id}' does not exist at version {v} (commit {})",
                            &commit[..12.min(commit.len())]
                        ),
                        "pick a version at which the prompt file exists",
                    ));
                }
                _ => {}
            }
        }
    }
    let tags = git.tags()?;

    let (commit, reference, pinned_from) = match req {
        Some(v @ ("unstaged" | "working-dir" | "staged")) => {
            return Err(src_err(
                format!(
                    "prompt '{prompt_id}' at '{v}' is not committed, so a bundle could not reproduce it"
                ),
                &format!(
                    "commit .promptops/prompts/{prompt_id}.yaml and use a tag or commit, or use --artifact ROLE=file:PATH"
                ),
            ));
        }
        None | Some("latest") => {
            let commit = git
                .last_commit_touching(&rel)?
                .ok_or_else(|| no_such_prompt(git, root_prefix, prompt_id, &rel))?;
            let label = labels_at(&tags, prompt_id, &commit)
                .into_iter()
                .next()
                .unwrap_or_else(|| commit.clone());
            (commit, label, Some(req.unwrap_or("latest").to_string()))
        }
        Some(v @ ("working" | "head" | "HEAD")) => {
            let commit = git.resolve_commit("HEAD")?.ok_or_else(|| {
                src_err(
                    "the repository has no commits yet".into(),
                    "commit your prompts first",
                )
            })?;
            (commit.clone(), commit, Some(v.to_string()))
        }
        Some(v) => {
            let bare = v.strip_prefix('v').unwrap_or(v);
            let candidates = [
                format!("prompt-{prompt_id}-v{bare}"),
                format!("prompt-{prompt_id}-{bare}"),
                format!("v{bare}"),
                bare.to_string(),
            ];
            let by_tag = if version::is_semver(v) {
                candidates.iter().find_map(|t| tags.get(t).cloned())
            } else {
                None
            };
            if let Some(c) = by_tag {
                (c, v.to_string(), None)
            } else if let Some(sha8) = v.strip_prefix("commit-") {
                // promptops' label for an untagged commit: a SHA prefix, nothing else.
                if sha8.len() < 4 || !sha8.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(src_err(
                        format!("prompt '{prompt_id}' at '{v}': '{sha8}' is not a commit SHA"),
                        "commit-<sha8> takes the first 8 hex digits of a commit, e.g. commit-354e01b2",
                    ));
                }
                let c = git.resolve_commit(sha8)?.ok_or_else(|| {
                    src_err(
                        format!("prompt '{prompt_id}' at '{v}': no commit {sha8}"),
                        "check the SHA with `git log`",
                    )
                })?;
                (c, v.to_string(), None)
            } else if let Some(c) = git.resolve_commit(v)? {
                // Tags and full SHAs name a fixed commit; anything else
                // (branches, HEAD~1, short SHAs) is pinned to the full SHA.
                let fixed = tags.contains_key(v)
                    || (v.len() == 40 && v.bytes().all(|b| b.is_ascii_hexdigit()));
                if fixed {
                    (c, v.to_string(), None)
                } else {
                    (c.clone(), c, Some(v.to_string()))
                }
            } else if !git.ever_had(&rel) {
                return Err(no_such_prompt(git, root_prefix, prompt_id, &rel));
            } else {
                return Err(src_err(
                    format!("prompt '{prompt_id}' at version '{v}' not found"),
                    &format!(
                        "use a tag such as prompt-{prompt_id}-v1.0.0 or v1.0.0, commit-<sha8>, a commit SHA or any git ref; `git tag` lists tags"
                    ),
                ));
            }
        }
    };
    let bytes = git.blob_at(&commit, &rel)?.ok_or_else(|| {
        src_err(
            format!(
                "prompt '{prompt_id}' does not exist at commit {} ({rel})",
                &commit[..12.min(commit.len())]
            ),
            "pick a version at which the prompt file exists",
        )
    })?;
    // promptops' default is the working tree when it differs; a bundle must be
    // reproducible, so we take the committed version and say so.
    let note = match (req, std::fs::read(git.top().join(&rel))) {
        (None | Some("latest" | "working" | "head" | "HEAD"), Ok(work)) if work != bytes => {
            Some(format!(
                "{rel} has uncommitted changes; bundled the committed version (commit them and create a new version to include them)"
            ))
        }
        _ => None,
    };
    Ok(ResolvedPrompt {
        reference: format!("prompts/{prompt_id}@{reference}"),
        commit,
        bytes,
        pinned_from,
        note,
    })
}

/// Largest policy or prompt file accepted into a bundle.
pub const MAX_ARTIFACT_BYTES: u64 = 8 * 1024 * 1024;

/// Reads a file relative to the repository root as Python's `read_text()`
/// would: the text the existing tool hashes for policies.
pub fn read_text_artifact(root: &Path, rel: &str) -> Result<String> {
    names::validate_repo_path(rel).map_err(|e| {
        src_err(
            e.to_string(),
            "give a path inside the repository, e.g. policies/tools.yaml",
        )
    })?;
    let path = root.join(rel);
    // Resolved, links included: a link (or a linked directory) that leads
    // out of the repository would copy /etc/passwd into the store.
    let resolved = std::fs::canonicalize(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            src_err(
                format!("file not found: {rel}"),
                "paths are relative to the repository root (the directory holding .releaseops/)",
            )
        } else {
            StoreError::io("cannot read", &path, e)
        }
    })?;
    let top = std::fs::canonicalize(root).map_err(|e| StoreError::io("cannot read", root, e))?;
    if !resolved.starts_with(&top) {
        return Err(src_err(
            format!(
                "{rel} leads outside the repository (to {})",
                resolved.display()
            ),
            "give a file inside the repository; a symbolic link must point inside it too",
        ));
    }
    if resolved.starts_with(top.join(crate::DIR_NAME)) {
        return Err(src_err(
            format!("{rel} is inside .releaseops/"),
            "artifacts are the team's prompt and policy files, not releaseops' own",
        ));
    }
    let path = resolved;
    let meta = std::fs::metadata(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            src_err(
                format!("file not found: {rel}"),
                "paths are relative to the repository root (the directory holding .releaseops/)",
            )
        } else {
            StoreError::io("cannot read", &path, e)
        }
    })?;
    if !meta.is_file() {
        return Err(src_err(
            format!("{rel} is not a file"),
            "give the path of a policy or prompt file",
        ));
    }
    if meta.len() > MAX_ARTIFACT_BYTES {
        return Err(src_err(
            format!(
                "{rel} is {} bytes, over the {MAX_ARTIFACT_BYTES}-byte limit for an artifact",
                meta.len()
            ),
            "artifacts are prompts and policies; keep large data out of bundles",
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| StoreError::io("cannot read", &path, e))?;
    hash::python_text(&bytes)
        .map_err(|e| src_err(format!("{rel}: {e}"), "artifacts must be UTF-8 text"))
}
