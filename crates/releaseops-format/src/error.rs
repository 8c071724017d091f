use thiserror::Error;

/// Why a value or a document was refused. Messages are one line and say what to do;
/// the store adds the file name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    #[error("invalid {kind} '{value}': {reason}")]
    InvalidName {
        kind: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(String),
    #[error("file is {size} bytes, over the {limit}-byte limit for this kind of file")]
    TooLarge { size: usize, limit: usize },
    #[error("not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
}

impl FormatError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        FormatError::Invalid(msg.into())
    }
}
