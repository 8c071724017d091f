//! The HTTP API: one route table (below) that the router and the OpenAPI
//! document's `paths` are both built from, the guard every request passes,
//! and the plumbing the handlers share. The handlers live by what they do:
//! [`reads`] (state, bundles, history, reports, the agent), [`streams`]
//! (long polls on a pointer and the event stream) and [`changes`] (promote,
//! approve, reject, roll back). Reads that touch the store open one on a
//! blocking thread (a `Store` is not `Sync`); resolved bundles come from the
//! loader's cache.

use releaseops_core::ErrorKind;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use releaseops_core::release::{PromoteRequest, RollbackRequest};
use releaseops_core::{CoreError, Ctx, bundle, envs, release};
use releaseops_format::{names, time};
use releaseops_runtime::{BundleRef, LoadedBundle};
use releaseops_store::Store;
use releaseops_store::reports::ReportFilter;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::{AppState, MAX_BODY_BYTES, Role};
use axum::routing::MethodRouter;

mod changes;
mod reads;
mod streams;
mod traces;
mod web;

use changes::*;
use reads::*;
use streams::*;
use traces::traces;
pub(crate) use web::{BoardCache, Sessions};

type St = State<Arc<AppState>>;

/// The method a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// As the OpenAPI document spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
        }
    }
}

/// Every route, once. The router serves exactly these, and the OpenAPI
/// document describes exactly these (a test holds every one documented).
fn table() -> Vec<(Method, &'static str, MethodRouter<Arc<AppState>>)> {
    use Method::{Get, Post};
    vec![
        (Get, "/healthz", get(health)),
        (Get, "/openapi.json", get(openapi)),
        (Get, "/v1/environments", get(environments)),
        (Get, "/v1/environments/{env}", get(environment)),
        (Get, "/v1/bundles", get(bundles)),
        (Get, "/v1/bundles/{id}/versions/{version}", get(manifest)),
        (Get, "/v1/resolve/{reference}", get(resolve)),
        (Get, "/v1/watch/{reference}", get(watch)),
        (Get, "/v1/events", get(events)),
        (Get, "/v1/diff", get(diff)),
        (Get, "/v1/history", get(history)),
        (Get, "/v1/eval-reports", get(eval_reports)),
        (Get, "/v1/eval-reports/{run_id}", get(eval_report)),
        (Get, "/v1/agent/decisions/{id}", get(decision)),
        (Get, "/v1/agent/memory", get(memory)),
        (Post, "/v1/promote", post(promote)),
        (Post, "/v1/approve", post(approve)),
        (Post, "/v1/reject", post(reject)),
        (Post, "/v1/rollback", post(rollback)),
        (Post, "/v1/traces", post(traces)),
        (Post, "/v1/sync", post(sync)),
    ]
}

/// Every route as (method, path), in the table's order.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    table()
        .into_iter()
        .map(|(m, p, _)| (m.as_str(), p))
        .collect()
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in table() {
        router = router.route(path, handler);
    }
    router
        .merge(web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The embedded `openapi.yaml`, with `paths` built from the route table:
/// each route's operation as the file describes it, and nothing the table
/// does not serve.
pub(crate) fn openapi_document() -> Bytes {
    let file: Value = releaseops_format::yaml::from_str(include_str!("openapi.yaml"))
        .unwrap_or_else(|e| json!({"openapi": "3.1.0", "info": {"title": "releaseops", "version": env!("CARGO_PKG_VERSION"), "description": format!("the embedded document does not parse: {e}")}, "paths": {}}));
    let mut doc = file.clone();
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let mut paths = serde_json::Map::new();
    for (method, path) in routes() {
        let mut op = file["paths"][path][method].clone();
        if !op.is_object() {
            op = json!({"summary": "(not described)", "responses": {}});
        }
        // Any operation can also fail in ways the document does not list one
        // by one (a damaged store, a held lock): the error body is always
        // the same.
        if let Some(r) = op.get_mut("responses").and_then(Value::as_object_mut) {
            r.entry("default")
                .or_insert_with(|| json!({"$ref": "#/components/responses/Error"}));
        }
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[method] = op;
    }
    doc["paths"] = Value::Object(paths);
    Bytes::from(serde_json::to_vec_pretty(&doc).unwrap_or_default())
}

/// Before any route: one `Authorization` header at most (two would let
/// the server and a proxy in front of it each see another token), and, when
/// reads need no token, a `Host` this server answers to, so a web page
/// whose DNS name was rebound to this address cannot read it.
async fn guard(
    State(s): St,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers();
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return ApiError::bad_request(
            "the request has more than one Authorization header",
            "send exactly one: `Authorization: Bearer <token>`",
        )
        .into_response();
    }
    if s.reads_open() {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase)
            .or_else(|| {
                req.uri()
                    .authority()
                    .map(|a| a.as_str().to_ascii_lowercase())
            });
        let known = host
            .as_deref()
            .is_some_and(|h| s.allowed_hosts.iter().any(|a| a == h));
        if !known {
            return ApiError::new(
            ErrorKind::WrongHost,
                format!(
                    "this server does not answer to the host {}",
                    host.as_deref().unwrap_or("(none)")
                ),
                "address it by the host it listens on (or localhost), or start it with --allow-host NAME",
            )
            .into_response();
        }
    }
    next.run(req).await
}

// --- plumbing --------------------------------------------------------------

fn respond<T: IntoResponse>(r: ApiResult<T>) -> Response {
    match r {
        Ok(v) => v.into_response(),
        Err(e) => e.into_response(),
    }
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> ApiResult<T> {
    p.map(|Path(v)| v).map_err(|e| {
        ApiError::bad_request(
            format!("bad path: {}", e.body_text()),
            "see /openapi.json for the routes",
        )
    })
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v).map_err(|e| {
        ApiError::bad_request(
            format!("bad query: {}", e.body_text()),
            "see /openapi.json for each endpoint's parameters",
        )
    })
}

/// The request body, at most [`MAX_BODY_BYTES`], within `within`.
async fn read_body(b: Body, headers: &HeaderMap, within: Duration) -> ApiResult<Bytes> {
    read_limited(b, headers, MAX_BODY_BYTES, within).await
}

/// The request body, at most `limit` bytes (a larger declared length is
/// refused before anything is read), within `within`.
async fn read_limited(
    b: Body,
    headers: &HeaderMap,
    limit: usize,
    within: Duration,
) -> ApiResult<Bytes> {
    use futures_util::StreamExt;
    let too_large = || {
        ApiError::new(
            ErrorKind::TooLarge,
            format!("the request body is over {limit} bytes"),
            format!("send a body of at most {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut stream = b.into_data_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(
                    format!("cannot read the request body: {e}"),
                    format!("send a body of at most {limit} bytes"),
                )
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    };
    tokio::time::timeout(within, read).await.map_err(|_| {
        ApiError::new(
            ErrorKind::RequestTimeout,
            format!(
                "the request body did not arrive within {} s",
                within.as_secs_f64()
            ),
            "send the whole request at once",
        )
    })?
}

fn body<T: DeserializeOwned>(bytes: Bytes) -> ApiResult<T> {
    // An object, and only an object: serde would also read a struct from
    // a JSON array, by position.
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            format!("the request body is not JSON: {e}"),
            "send a JSON object; see /openapi.json for the fields",
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body is not a JSON object",
            "send a JSON object; see /openapi.json for the fields",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::bad_request(
            format!("the request body is not what this endpoint takes: {e}"),
            "see /openapi.json for the fields",
        )
    })
}

/// Runs `f` with a store opened on a blocking thread.
async fn with_store<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&Store) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let root = s.root.clone();
    tokio::task::spawn_blocking(move || f(&Store::open(&root)?))
        .await
        .map_err(|e| ApiError::internal(format!("the request failed: {e}")))?
        .map_err(|e| s.public(e))
}

/// A read: the caller may read, its arguments are good, and `f` answers
/// with a store opened on a blocking thread.
async fn read<A: Send + 'static, T: serde::Serialize + Send + 'static>(
    s: &AppState,
    headers: &HeaderMap,
    args: impl FnOnce() -> ApiResult<A>,
    f: impl FnOnce(&Store, A) -> ApiResult<T> + Send + 'static,
) -> Response {
    let r = async {
        s.authorize(headers, Role::Viewer)?;
        let a = args()?;
        Ok(Json(with_store(s, move |store| f(store, a)).await?))
    }
    .await;
    respond(r)
}

/// Runs a change as `owner`, in the same transaction the CLI uses. It
/// counts as in flight until it is done, even if the client goes away.
async fn write<T: Send + 'static>(
    s: &AppState,
    owner: String,
    f: impl FnOnce(&Ctx<'_>) -> Result<T, CoreError> + Send + 'static,
) -> ApiResult<T> {
    let guard = s.inflight.enter();
    if *s.shutdown.borrow() {
        return Err(ApiError::new(
            ErrorKind::ShuttingDown,
            "the server is shutting down and takes no new changes",
            "send it again to the server that replaces this one",
        ));
    }
    let root = s.root.clone();
    let (now, simulated_clock) = s.now();
    let git_commit = s.git_commit;
    // The server's own runtime runs whatever the change needs to await (a
    // model call of the decision agent), from this blocking thread.
    let runtime = tokio::runtime::Handle::current();
    let r = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let store = Store::open(&root)?;
        let ctx = Ctx {
            store: &store,
            actor: owner,
            now,
            git_commit,
            simulated_clock,
            runtime: Some(&runtime),
        };
        f(&ctx).map_err(ApiError::from)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the change failed: {e}")));
    s.wake_watcher();
    r?.map_err(|e| s.public(e))
}

fn env_name(s: &str) -> ApiResult<()> {
    Ok(names::validate_env_name(s)?)
}

fn limit(n: Option<usize>, default: usize, max: usize) -> usize {
    n.unwrap_or(default).clamp(1, max)
}

fn time_param(name: &str, v: Option<&str>) -> ApiResult<Option<jiff::Timestamp>> {
    v.map(|t| {
        time::parse(t).map_err(|e| {
            ApiError::bad_request(
                format!("{name}={t}: {e}"),
                "give an RFC 3339 time such as 2026-11-21T09:00:00Z",
            )
        })
    })
    .transpose()
}

async fn not_found() -> Response {
    ApiError::not_found("no such endpoint", "see /openapi.json for the routes").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        "this endpoint does not take that method",
        "see /openapi.json for the routes",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_and_nothing_else() {
        let file: Value = releaseops_format::yaml::from_str(include_str!("openapi.yaml")).unwrap();
        let mut described: Vec<(String, String)> = file["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(|m| (m.clone(), p.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        described.sort();
        let mut served: Vec<(String, String)> = routes()
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        served.sort();
        assert_eq!(described, served);
        let doc: Value = serde_json::from_slice(&openapi_document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for (m, p) in routes() {
            assert!(
                doc["paths"][p][m]["responses"]["default"].is_object(),
                "{m} {p}"
            );
        }
    }
}
