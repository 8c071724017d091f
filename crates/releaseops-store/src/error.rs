use std::path::PathBuf;

use releaseops_format::{FormatError, names};
use thiserror::Error;

/// What went wrong reading or changing the store. Each variant names the input;
/// [`StoreError::hint`] says what to do about it.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    /// The project's settings (`config.yaml`) say something they cannot:
    /// a mistake in what the user asked for, like a bad flag.
    #[error("{}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no .releaseops directory in {} or any parent directory", start.display())]
    NotInitialized { start: PathBuf },
    #[error("bundle '{id}' has no version '{version}'")]
    BundleNotFound {
        id: String,
        version: String,
        available: Vec<String>,
    },
    #[error("no bundle named '{id}'")]
    UnknownBundle { id: String, available: Vec<String> },
    #[error("no environment named '{name}'")]
    EnvNotFound {
        name: String,
        available: Vec<String>,
    },
    #[error("{}: says `environment: {inner}` but the file is named for '{name}'", path.display())]
    EnvNameMismatch {
        path: PathBuf,
        name: String,
        inner: String,
    },
    #[error("{}: manifest is for {inner}, but the file is named for {outer}", path.display())]
    ManifestPathMismatch {
        path: PathBuf,
        inner: String,
        outer: String,
    },
    #[error("bundle '{id}' version '{version}' already exists; bundle versions are immutable")]
    VersionExists { id: String, version: String },
    #[error("environment '{name}' already exists")]
    EnvExists { name: String },
    #[error("{} is held by another releaseops change; waited {secs} s{}", path.display(), holder.as_ref().map(|h| format!(" (held by {h})")).unwrap_or_default())]
    LockTimeout {
        path: PathBuf,
        secs: f64,
        holder: Option<String>,
    },
    #[error("git {command} failed: {message}")]
    Git { command: String, message: String },
    #[error("{message}")]
    Source {
        message: String,
        hint: Option<String>,
    },
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    /// A value given to record (an actor, a reason) is not acceptable.
    #[error("{0}")]
    Input(FormatError),
    /// The hash chain does not hold together; nothing may be built on it.
    #[error("the history in {} is broken: {message}", path.display())]
    ChainBroken { path: PathBuf, message: String },
    /// A file disagrees with what the history says (it was changed outside
    /// releaseops); no gate or change builds on it.
    #[error("{message}")]
    Disagrees { path: PathBuf, message: String },
    /// The team's remote (`sync:`) did not take or give a change.
    #[error("{message}")]
    Sync {
        failure: SyncFailure,
        message: String,
    },
}

/// Why a change did not reach the team's remote, or its state did not
/// reach this clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFailure {
    /// Another clone pushed first; the change was not applied and may be
    /// tried again on the new state.
    Conflict,
    /// The remote could not be reached (or does not exist).
    Unreachable,
    /// The remote refused the push (protected branch, permissions, a hook).
    Refused,
    /// The remote's state cannot be built on: its chain does not verify,
    /// a file was edited by hand, or its history is unrelated to this clone's.
    Untrusted,
    /// This clone holds changes the remote does not have.
    Unpushed,
    /// Sync is set up wrongly (no such remote, not a git repository).
    Setup,
}

impl StoreError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            StoreError::Format { .. } | StoreError::Config { .. } => "fix the file (or restore it with `git checkout -- <file>`) and run the command again".into(),
            StoreError::NotInitialized { .. } => "run `releaseops init` in your repository, or pass --path <dir>".into(),
            StoreError::BundleNotFound { id, available, .. } if available.is_empty() => {
                format!("bundle '{id}' has no versions yet; `releaseops bundle list` shows what exists")
            }
            StoreError::BundleNotFound { version, available, .. } => format!(
                "{}available versions: {}",
                names::did_you_mean(version, available),
                available.join(", ")
            ),
            StoreError::UnknownBundle { available, .. } if available.is_empty() => {
                "no bundles exist yet; `releaseops bundle create --help` shows how to make one".into()
            }
            StoreError::UnknownBundle { id, available } => format!(
                "{}known bundles: {}",
                names::did_you_mean(id, available),
                available.join(", ")
            ),
            StoreError::EnvNotFound { name, available } => {
                let guess = names::did_you_mean(name, available);
                if guess.is_empty() {
                    format!(
                        "known environments: {}; `releaseops env create --help` adds one to the pipeline",
                        available.join(", ")
                    )
                } else {
                    format!("{guess}known environments: {}", available.join(", "))
                }
            }
            StoreError::EnvNameMismatch { .. } => {
                "make the `environment:` field equal to the file name (or rename the file)".into()
            }
            StoreError::ManifestPathMismatch { .. } => "restore the manifest from git; manifests are immutable".into(),
            StoreError::VersionExists { .. } => "choose a new version number, e.g. bump the patch version".into(),
            StoreError::EnvExists { .. } => "pick another name, or edit the existing environment file".into(),
            StoreError::LockTimeout { .. } => {
                "nothing was changed; retry once the other change is done. If that process is stopped or hung, end it (the kernel frees the lock when it exits); `lock.wait_seconds` in .releaseops/config.yaml sets how long to wait".into()
            }
            StoreError::Git { .. } => "check `git status` in the repository; pass --no-commit to skip the git commit".into(),
            StoreError::Source { hint, .. } => return hint.clone(),
            StoreError::Corrupt { path, .. } if path.file_name().is_some_and(|n| n == ".journal") => {
                "the journal holds an unfinished change and is not tracked by git: move it aside (e.g. to /tmp), then run `releaseops history verify` to see what state the store is in".into()
            }
            StoreError::Corrupt { .. } => "restore the file from git (`git checkout -- <file>`) and run `releaseops history verify`".into(),
            StoreError::Input(_) => "nothing was recorded; give the value on one line, naming one person (`Name <email>`) where an actor is asked for".into(),
            StoreError::ChainBroken { .. } => "nothing was changed; restore the history from git (`git checkout -- .releaseops/history`) and run `releaseops history verify`".into(),
            StoreError::Disagrees { path, .. } => format!(
                "nothing was changed; restore the file from git (`git checkout -- {}`) or rewrite it from the history with `releaseops history repair`, then run `releaseops history verify`",
                path.display()
            ),
            StoreError::Sync { failure, .. } => match failure {
                SyncFailure::Conflict => "nothing was changed here; another clone changed the remote first: run the command again".into(),
                SyncFailure::Unreachable => "nothing was changed here; check the remote (`git fetch <remote>` shows git's own error), or pass --offline to record the change here and push it later with `releaseops sync`".into(),
                SyncFailure::Refused => "nothing was changed here; the remote does not let this clone push to the sync branch: check its permissions and branch protection, or choose another branch with `sync.branch` in .releaseops/config.yaml".into(),
                SyncFailure::Untrusted => "nothing was changed here; repair the remote's branch (revert the commit that broke it, never rewrite it), then run `releaseops sync`".into(),
                SyncFailure::Unpushed => "run `releaseops sync` to push this clone's changes (each is checked again on the remote's state), then run the command again".into(),
                SyncFailure::Setup => "see `releaseops sync --help`; `git remote -v` lists this repository's remotes".into(),
            },
            StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                "check the permissions of that path for the user running releaseops".into()
            }
            StoreError::Io { .. } => "check that the path exists and the disk is not full or read-only".into(),
        })
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, source: FormatError) -> Self {
        StoreError::Format {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
