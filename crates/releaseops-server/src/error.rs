//! Every failure answers with one JSON shape, the CLI's `--json` error:
//! `{"error": {"kind", "message", "hint"}}`, and a status that says whose
//! fault it is.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use releaseops_core::{CoreError, ErrorKind};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    /// The kind, which sets the status ([`ErrorKind::http_status`]).
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
    /// More of the answer (the outcome of a blocked promotion).
    pub detail: Option<Box<(&'static str, Value)>>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            hint: Some(hint.into()),
            detail: None,
        }
    }

    /// The status the kind calls for.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn bad_request(message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, message, hint)
    }

    pub fn not_found(message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message, hint)
    }

    /// The same answer for a missing, malformed or unknown token: nothing in
    /// it tells whether a token exists.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            ErrorKind::Unauthorized,
            "this endpoint needs a valid bearer token",
            "send `Authorization: Bearer <token>`; `releaseops token new` makes one",
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: ErrorKind::Internal,
            message: message.into(),
            hint: None,
            detail: None,
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> ApiError {
        ApiError {
            kind: e.kind(),
            hint: e.hint(),
            message: e.to_string(),
            detail: None,
        }
    }
}

impl From<releaseops_store::StoreError> for ApiError {
    fn from(e: releaseops_store::StoreError) -> ApiError {
        CoreError::from(e).into()
    }
}

impl From<releaseops_runtime::LoadError> for ApiError {
    fn from(e: releaseops_runtime::LoadError) -> ApiError {
        CoreError::from(e).into()
    }
}

impl From<releaseops_format::FormatError> for ApiError {
    fn from(e: releaseops_format::FormatError) -> ApiError {
        CoreError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({
            "error": { "kind": self.kind, "message": self.message, "hint": self.hint }
        });
        if let Some(d) = self.detail {
            let (key, value) = *d;
            body[key] = value;
        }
        let mut r = (status, axum::Json(body)).into_response();
        match status {
            StatusCode::UNAUTHORIZED => {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"releaseops\""),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        r
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
