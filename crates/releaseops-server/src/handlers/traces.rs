//! `POST /v1/traces`: OTLP/HTTP trace exports, answered as the OTLP
//! specification says. Success is `ExportTraceServiceResponse` (with a
//! partial success naming spans that could not be stored); every failure is
//! a `google.rpc.Status`, in the request's encoding: 400 for a body that is
//! not an export, 401/403 for a token that may not send spans, 413 for a
//! body over the limit (compressed or not), 415 for another media type or
//! encoding, 429 with `Retry-After` when the writer is behind, 503 with
//! `Retry-After` when the store is unavailable.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use releaseops_traces::otlp::{self, DecodeError, Format};

use super::St;
use crate::ingest::Refused;
use crate::{MAX_TRACE_BODY_BYTES, MAX_TRACE_DECODED_BYTES, Role};

// gRPC status codes, as OTLP's Status bodies carry them.
const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

fn answer(
    format: Format,
    status: StatusCode,
    code: i32,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let mut r = (status, otlp::status_body(format, code, message)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

pub(super) async fn traces(State(s): St, headers: HeaderMap, body: Body) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(format) = Format::from_content_type(content_type) else {
        return answer(
            Format::Json,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            INVALID_ARGUMENT,
            "send OTLP traces as application/x-protobuf or application/json",
            None,
        );
    };
    // The token first: nobody without one gets the body read.
    if let Err(e) = s.authorize(&headers, Role::Ingest) {
        let status = e.status();
        let code = if status == StatusCode::UNAUTHORIZED {
            UNAUTHENTICATED
        } else {
            PERMISSION_DENIED
        };
        let msg = match &e.hint {
            Some(h) => format!("{}: {h}", e.message),
            None => e.message.clone(),
        };
        return answer(format, status, code, &msg, None);
    }
    let Some(ingest) = s.ingest.as_ref() else {
        return answer(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE,
            &format!(
                "this server keeps no traces: {}",
                s.ingest_error
                    .as_deref()
                    .unwrap_or("it was started without a trace store")
            ),
            None,
        );
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return answer(
                format,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                INVALID_ARGUMENT,
                &format!(
                    "the content encoding '{other}' is not supported: send gzip or no encoding"
                ),
                None,
            );
        }
    };
    let bytes =
        match super::read_limited(body, &headers, MAX_TRACE_BODY_BYTES, s.body_timeout).await {
            Ok(b) => b,
            Err(e) => {
                let status = e.status();
                return answer(format, status, INVALID_ARGUMENT, &e.message, None);
            }
        };
    let opts = ingest.settings.read_options();
    let Ok(decoding) = s.decoding.clone().acquire_owned().await else {
        return answer(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE,
            "the server is shutting down",
            Some(5),
        );
    };
    let decoded = tokio::task::spawn_blocking(move || {
        // Held while decoding only, not while the batch waits for the writer.
        let _decoding = decoding;
        let raw = if gzip {
            otlp::gunzip(&bytes, MAX_TRACE_DECODED_BYTES)?
        } else {
            bytes.to_vec()
        };
        otlp::decode(&raw, format, &opts)
    })
    .await;
    let decoded = match decoded {
        Ok(Ok(d)) => d,
        Ok(Err(e @ (DecodeError::TooLarge { .. } | DecodeError::TooMany { .. }))) => {
            return answer(
                format,
                StatusCode::PAYLOAD_TOO_LARGE,
                INVALID_ARGUMENT,
                &e.to_string(),
                None,
            );
        }
        Ok(Err(e)) => {
            return answer(
                format,
                StatusCode::BAD_REQUEST,
                INVALID_ARGUMENT,
                &e.to_string(),
                None,
            );
        }
        Err(e) => {
            return answer(
                format,
                StatusCode::INTERNAL_SERVER_ERROR,
                UNAVAILABLE,
                &format!("the export could not be read: {e}"),
                None,
            );
        }
    };
    let rejected = decoded.rejected.len();
    let message = decoded.rejection_message();
    if !decoded.spans.is_empty() {
        let _inflight = s.inflight.enter();
        let done = match ingest.submit(decoded.spans) {
            Ok(rx) => rx,
            Err(Refused::Busy) => {
                return answer(
                    format,
                    StatusCode::TOO_MANY_REQUESTS,
                    RESOURCE_EXHAUSTED,
                    "the trace writer is behind; retry after the time in Retry-After",
                    Some(1),
                );
            }
            Err(Refused::Gone) => {
                return answer(
                    format,
                    StatusCode::SERVICE_UNAVAILABLE,
                    UNAVAILABLE,
                    "the trace writer has stopped; restart the server",
                    Some(5),
                );
            }
        };
        match done.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return answer(
                    format,
                    StatusCode::SERVICE_UNAVAILABLE,
                    UNAVAILABLE,
                    &format!(
                        "the spans were not stored ({e}); nothing of this batch was kept, retry it"
                    ),
                    Some(5),
                );
            }
            Err(_) => {
                return answer(
                    format,
                    StatusCode::SERVICE_UNAVAILABLE,
                    UNAVAILABLE,
                    "the trace writer stopped before storing the batch; retry it",
                    Some(5),
                );
            }
        }
    }
    let mut r = (StatusCode::OK, otlp::response(format, rejected, &message)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    r
}
