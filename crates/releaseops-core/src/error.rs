use releaseops_format::FormatError;
use releaseops_store::StoreError;
use thiserror::Error;

/// Why an operation did not happen. Gate blocks are not errors: they are
/// reported in the operation's result.
#[derive(Debug, Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Loading a bundle as an agent would (the runtime's verified read).
    #[error(transparent)]
    Load(#[from] releaseops_runtime::LoadError),
    /// The request itself is wrong (bad syntax, bad value).
    #[error("{message}")]
    Invalid {
        message: String,
        hint: Option<String>,
    },
    /// The request is well-formed but not allowed in the current state.
    #[error("{message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },
    /// Something a change would build on does not verify (a tampered
    /// artifact, say): nothing was changed.
    #[error("{message}")]
    VerifyFailed {
        message: String,
        hint: Option<String>,
    },
}

impl CoreError {
    pub fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CoreError::Invalid {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CoreError::Refused {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            CoreError::Store(e) => e.hint(),
            // The runtime's messages carry what to do.
            CoreError::Load(_) => None,
            CoreError::Invalid { hint, .. }
            | CoreError::Refused { hint, .. }
            | CoreError::VerifyFailed { hint, .. } => hint.clone(),
        }
    }

    /// A machine-readable kind, the same in the CLI's `--json` errors and the
    /// API's error bodies: `invalid`, `usage`, `refused`, `not_found`,
    /// `not_initialized`, `verify_failed`, `exists`, `locked`, `invalid_file`,
    /// `git`, `source`, `corrupt`, `io` or `render`.
    pub fn kind(&self) -> &'static str {
        use releaseops_runtime::LoadError as L;
        match self {
            CoreError::Invalid { .. } => "invalid",
            CoreError::Refused { .. } => "refused",
            CoreError::VerifyFailed { .. } => "verify_failed",
            CoreError::Load(l) => match l {
                L::BadReference { .. } => "usage",
                L::NoStore { .. } => "not_initialized",
                L::UnknownEnv { .. } | L::NotDeployed { .. } | L::UnknownVersion { .. } => {
                    "not_found"
                }
                L::Corrupt { .. } | L::Artifact { .. } => "verify_failed",
                L::Io { .. } => "io",
                L::Render(_) => "render",
            },
            CoreError::Store(s) => match s {
                StoreError::Input(_) => "invalid",
                StoreError::Format { .. }
                | StoreError::EnvNameMismatch { .. }
                | StoreError::ManifestPathMismatch { .. } => "invalid_file",
                StoreError::NotInitialized { .. } => "not_initialized",
                StoreError::BundleNotFound { .. }
                | StoreError::UnknownBundle { .. }
                | StoreError::EnvNotFound { .. } => "not_found",
                StoreError::VersionExists { .. } | StoreError::EnvExists { .. } => "exists",
                StoreError::LockTimeout { .. } => "locked",
                StoreError::Git { .. } => "git",
                StoreError::Source { .. } => "source",
                StoreError::Corrupt { .. } => "corrupt",
                StoreError::ChainBroken { .. } | StoreError::Disagrees { .. } => "verify_failed",
                StoreError::Io { .. } => "io",
            },
        }
    }

    /// True for mistakes in the request (exit code 2), as opposed to failures.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            CoreError::Invalid { .. }
                | CoreError::Store(StoreError::Input(_))
                | CoreError::Load(releaseops_runtime::LoadError::BadReference { .. })
        )
    }
}

impl From<FormatError> for CoreError {
    fn from(e: FormatError) -> Self {
        let hint = match &e {
            FormatError::InvalidName { .. } => {
                "names use letters, digits, '-', '_' and '.', start with a letter or digit, and are at most 128 characters"
            }
            FormatError::Parse(_) => "fix the text at the position given and run the command again",
            FormatError::TooLarge { .. } => {
                "this file is far larger than any releaseops file should be; restore it from git"
            }
            FormatError::NotUtf8 { .. } => "save the file as UTF-8",
            FormatError::Invalid(_) => "correct the value named in the message",
        };
        CoreError::Invalid {
            message: e.to_string(),
            hint: Some(hint.into()),
        }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
