use std::path::PathBuf;

use releaseops_format::names;

/// Why a bundle could not be loaded. Each names the input and says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error(
        "'{reference}' is not a bundle reference: {reason}; write ID@ENV (e.g. support-agent@prod) or ID==VERSION (e.g. support-agent==1.2.0)"
    )]
    BadReference { reference: String, reason: String },

    #[error(
        "no releaseops store at {}: give the repository root (holding .releaseops/), the .releaseops directory itself, or a directory written by `releaseops export`",
        path.display()
    )]
    NoStore { path: PathBuf },

    #[error("environment '{env}' does not exist in {} ({}environments: {})", dir.display(), names::did_you_mean(env, available), list(available))]
    UnknownEnv {
        env: String,
        dir: PathBuf,
        available: Vec<String>,
    },

    #[error(
        "bundle '{id}' is not deployed in '{env}' (deployed there: {}); {}",
        list(deployed),
        not_deployed_hint(id, env, deployed)
    )]
    NotDeployed {
        id: String,
        env: String,
        deployed: Vec<String>,
    },

    #[error("bundle {id}=={version} does not exist in {} ({}versions: {})", dir.display(), names::did_you_mean(version, available), list(available))]
    UnknownVersion {
        id: String,
        version: String,
        dir: PathBuf,
        available: Vec<String>,
    },

    /// A file of the store that cannot be used as it is: unparsable or
    /// unreadable (a half-written or damaged store).
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },

    /// A file of the store that does not verify: its hash does not match,
    /// it is not what its name says, or it contradicts the hash-chained
    /// history (changed outside releaseops). Never served.
    #[error("{}: {message}", path.display())]
    Tampered { path: PathBuf, message: String },

    /// One artifact of a bundle: missing, tampered with, invalid or unreadable.
    #[error("{section} '{role}' of {id}=={version}: {message}")]
    Artifact {
        id: String,
        version: String,
        section: &'static str,
        role: String,
        problem: ArtifactProblem,
        message: String,
    },

    #[error("cannot read {}: {message}", path.display())]
    Io { path: PathBuf, message: String },

    /// Rendering a prompt failed (unknown role, template error, missing variable).
    #[error("{0}")]
    Render(String),
}

/// What is wrong with one artifact of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactProblem {
    /// Its object is not in the store or export.
    Missing,
    /// Its bytes do not match the content hash the manifest records (or it
    /// has none, so it cannot be verified).
    Tampered,
    /// It verifies but cannot be used: a policy that is not YAML, text that
    /// is not UTF-8.
    Invalid,
    /// It could not be read (permissions, I/O).
    Unreadable,
}

impl LoadError {
    /// True when the store's content did not verify: a hash mismatch, a
    /// forged pointer, an artifact that is not what the manifest recorded.
    pub fn is_tampering(&self) -> bool {
        matches!(
            self,
            LoadError::Tampered { .. }
                | LoadError::Artifact {
                    problem: ArtifactProblem::Tampered,
                    ..
                }
        )
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

impl LoadError {
    pub(crate) fn io(path: impl Into<PathBuf>, e: &std::io::Error) -> LoadError {
        LoadError::Io {
            path: path.into(),
            message: e.to_string(),
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> LoadError {
        LoadError::Corrupt {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn tampered(path: impl Into<PathBuf>, message: impl Into<String>) -> LoadError {
        LoadError::Tampered {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A misspelt id gets the close name that is deployed; a real bundle that
/// is not there yet gets how to put it there.
fn not_deployed_hint(id: &str, env: &str, deployed: &[String]) -> String {
    let guess = names::did_you_mean(id, deployed);
    if guess.is_empty() {
        format!(
            "`releaseops env list` shows what runs where; `releaseops promote {id} VERSION {env}` puts a version there"
        )
    } else {
        guess.trim_end().to_string()
    }
}
