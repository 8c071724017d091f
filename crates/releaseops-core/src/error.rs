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

    /// The machine-readable kind, the same in the CLI's `--json` errors and
    /// the API's error bodies.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        use releaseops_runtime::LoadError as L;
        match self {
            CoreError::Invalid { .. } => K::Invalid,
            CoreError::Refused { .. } => K::Refused,
            CoreError::VerifyFailed { .. } => K::VerifyFailed,
            CoreError::Load(l) => match l {
                L::BadReference { .. } => K::Usage,
                L::NoStore { .. } => K::NotInitialized,
                L::UnknownEnv { .. } | L::NotDeployed { .. } | L::UnknownVersion { .. } => {
                    K::NotFound
                }
                L::Corrupt { .. } | L::Tampered { .. } | L::Artifact { .. } => K::VerifyFailed,
                L::Io { .. } => K::Io,
                L::Render(_) => K::Render,
            },
            CoreError::Store(s) => match s {
                StoreError::Input(_) | StoreError::Config { .. } => K::Invalid,
                StoreError::Format { .. }
                | StoreError::EnvNameMismatch { .. }
                | StoreError::ManifestPathMismatch { .. } => K::InvalidFile,
                StoreError::NotInitialized { .. } => K::NotInitialized,
                StoreError::BundleNotFound { .. }
                | StoreError::UnknownBundle { .. }
                | StoreError::EnvNotFound { .. } => K::NotFound,
                StoreError::VersionExists { .. } | StoreError::EnvExists { .. } => K::Exists,
                StoreError::LockTimeout { .. } => K::Locked,
                StoreError::Git { .. } => K::Git,
                StoreError::Source { .. } => K::Source,
                StoreError::Corrupt { .. } => K::Corrupt,
                StoreError::ChainBroken { .. } | StoreError::Disagrees { .. } => K::VerifyFailed,
                StoreError::Io { .. } => K::Io,
                StoreError::Sync { failure, .. } => match failure {
                    releaseops_store::SyncFailure::Conflict => K::Conflict,
                    releaseops_store::SyncFailure::Unreachable => K::Unreachable,
                    releaseops_store::SyncFailure::Refused => K::Refused,
                    releaseops_store::SyncFailure::Untrusted => K::VerifyFailed,
                    releaseops_store::SyncFailure::Unpushed => K::Refused,
                    releaseops_store::SyncFailure::Setup => K::Invalid,
                },
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

/// Every kind of failure the CLI and the API report, closed: the one place
/// where a kind gets its exit code and its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A value in the request is wrong.
    Invalid,
    /// The command line or request is malformed.
    Usage,
    /// The store says no (a rejected version, a rule of the pipeline).
    Refused,
    NotFound,
    NotInitialized,
    /// Content does not match its hash, or the history does not chain.
    VerifyFailed,
    Exists,
    /// Another change holds the store.
    Locked,
    /// A file of the store does not parse or says the wrong thing.
    InvalidFile,
    Git,
    /// A prompt or artifact source could not be read.
    Source,
    Corrupt,
    Io,
    /// A prompt template did not render.
    Render,
    /// A promotion's gates did not pass.
    Blocked,
    /// The offline demo failed.
    Demo,
    /// The API server could not run.
    Server,
    Internal,
    Unauthorized,
    Forbidden,
    /// Writes are turned off on this server.
    WritesDisabled,
    Busy,
    ShuttingDown,
    MethodNotAllowed,
    RequestTimeout,
    TooLarge,
    UnsupportedMediaType,
    /// The request's Host is not this server's.
    WrongHost,
    /// The team's remote changed first, every retry.
    Conflict,
    /// The team's remote could not be reached.
    Unreachable,
}

impl ErrorKind {
    /// The name in JSON (`not_found`, ...).
    pub fn as_str(self) -> &'static str {
        use ErrorKind as K;
        match self {
            K::Invalid => "invalid",
            K::Usage => "usage",
            K::Refused => "refused",
            K::NotFound => "not_found",
            K::NotInitialized => "not_initialized",
            K::VerifyFailed => "verify_failed",
            K::Exists => "exists",
            K::Locked => "locked",
            K::InvalidFile => "invalid_file",
            K::Git => "git",
            K::Source => "source",
            K::Corrupt => "corrupt",
            K::Io => "io",
            K::Render => "render",
            K::Blocked => "blocked",
            K::Demo => "demo",
            K::Server => "server",
            K::Internal => "internal",
            K::Unauthorized => "unauthorized",
            K::Forbidden => "forbidden",
            K::WritesDisabled => "writes_disabled",
            K::Busy => "busy",
            K::ShuttingDown => "shutting_down",
            K::MethodNotAllowed => "method_not_allowed",
            K::RequestTimeout => "request_timeout",
            K::TooLarge => "too_large",
            K::UnsupportedMediaType => "unsupported_media_type",
            K::WrongHost => "wrong_host",
            K::Conflict => "conflict",
            K::Unreachable => "unreachable",
        }
    }

    /// The CLI's exit code: 2 for a mistake in the request, 3 for a blocked
    /// promotion, 4 when verification fails, 1 otherwise.
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Invalid | ErrorKind::Usage => 2,
            ErrorKind::Blocked => 3,
            ErrorKind::VerifyFailed => 4,
            _ => 1,
        }
    }

    /// The API's HTTP status code.
    pub fn http_status(self) -> u16 {
        use ErrorKind as K;
        match self {
            K::Invalid | K::Usage | K::Render => 400,
            K::Unauthorized => 401,
            K::Forbidden | K::WritesDisabled => 403,
            K::NotFound => 404,
            K::MethodNotAllowed => 405,
            K::RequestTimeout => 408,
            K::Refused | K::Exists | K::Blocked | K::Conflict => 409,
            K::TooLarge => 413,
            K::UnsupportedMediaType => 415,
            K::WrongHost => 421,
            K::Locked | K::Busy | K::ShuttingDown => 503,
            K::Unreachable => 502,
            K::NotInitialized
            | K::VerifyFailed
            | K::InvalidFile
            | K::Git
            | K::Source
            | K::Corrupt
            | K::Io
            | K::Demo
            | K::Server
            | K::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
