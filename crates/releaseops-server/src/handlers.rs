//! The routes. Reads that touch the store open one on a blocking thread (a
//! `Store` is not `Sync`); resolved bundles come from the loader's cache.

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
use releaseops_core::{CoreError, Ctx, bundle, envs, evals, release};
use releaseops_format::{names, time};
use releaseops_runtime::{BundleRef, LoadedBundle};
use releaseops_store::Store;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::{AppState, MAX_BODY_BYTES, Role};

type St = State<Arc<AppState>>;

/// Every route: (method, path). The OpenAPI document lists exactly these
/// (a test holds them together).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/openapi.json"),
    ("get", "/v1/environments"),
    ("get", "/v1/environments/{env}"),
    ("get", "/v1/bundles"),
    ("get", "/v1/bundles/{id}/versions/{version}"),
    ("get", "/v1/resolve/{reference}"),
    ("get", "/v1/watch/{reference}"),
    ("get", "/v1/events"),
    ("get", "/v1/diff"),
    ("get", "/v1/history"),
    ("get", "/v1/eval-reports"),
    ("get", "/v1/eval-reports/{run_id}"),
    ("get", "/v1/agent/decisions/{id}"),
    ("get", "/v1/agent/memory"),
    ("post", "/v1/promote"),
    ("post", "/v1/approve"),
    ("post", "/v1/reject"),
    ("post", "/v1/rollback"),
];

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/openapi.json", get(openapi))
        .route("/v1/environments", get(environments))
        .route("/v1/environments/{env}", get(environment))
        .route("/v1/bundles", get(bundles))
        .route("/v1/bundles/{id}/versions/{version}", get(manifest))
        .route("/v1/resolve/{reference}", get(resolve))
        .route("/v1/watch/{reference}", get(watch))
        .route("/v1/events", get(events))
        .route("/v1/diff", get(diff))
        .route("/v1/history", get(history))
        .route("/v1/eval-reports", get(eval_reports))
        .route("/v1/eval-reports/{run_id}", get(eval_report))
        .route("/v1/agent/decisions/{id}", get(decision))
        .route("/v1/agent/memory", get(memory))
        .route("/v1/promote", post(promote))
        .route("/v1/approve", post(approve))
        .route("/v1/reject", post(reject))
        .route("/v1/rollback", post(rollback))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
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
    use futures_util::StreamExt;
    let too_large = || {
        ApiError::new(
            ErrorKind::TooLarge,
            format!("the request body is over {MAX_BODY_BYTES} bytes"),
            format!("send a JSON object of at most {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut stream = b.into_data_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(
                    format!("cannot read the request body: {e}"),
                    format!("send a JSON object of at most {MAX_BODY_BYTES} bytes"),
                )
            })?;
            if buf.len() + chunk.len() > MAX_BODY_BYTES {
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
    let r = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let store = Store::open(&root)?;
        let ctx = Ctx {
            store: &store,
            actor: owner,
            now,
            git_commit,
            simulated_clock,
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

// --- reads -----------------------------------------------------------------

/// Liveness, and how many changes are running (shutdown waits for them).
async fn health(State(s): St) -> Response {
    Json(json!({
        "status": if *s.shutdown.borrow() { "stopping" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "in_flight": s.inflight.count(),
        "watching": s.watching.count(),
        "event_streams": s.streams.count(),
        "connections": s.connections.count(),
    }))
    .into_response()
}

async fn openapi(State(s): St) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        s.openapi.clone(),
    )
        .into_response()
}

pub(crate) fn openapi_document() -> Bytes {
    let doc: Value = releaseops_format::yaml::from_str(include_str!("openapi.yaml"))
        .unwrap_or_else(|e| json!({"openapi": "3.1.0", "info": {"title": "releaseops", "version": env!("CARGO_PKG_VERSION"), "description": format!("the embedded document does not parse: {e}")}, "paths": {}}));
    let mut doc = doc;
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    // Any operation can also fail in ways the document does not list one by
    // one (a damaged store, a held lock): the error body is always the same.
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths.values_mut().filter_map(Value::as_object_mut) {
            for (_, o) in op.iter_mut() {
                if let Some(r) = o.get_mut("responses").and_then(Value::as_object_mut) {
                    r.entry("default")
                        .or_insert_with(|| json!({"$ref": "#/components/responses/Error"}));
                }
            }
        }
    }
    Bytes::from(serde_json::to_vec_pretty(&doc).unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AtQuery {
    at: Option<String>,
}

async fn environments(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<AtQuery>, QueryRejection>,
) -> Response {
    let args = || {
        let q = query(q)?;
        Ok((time_param("at", q.at.as_deref())?, q.at))
    };
    read(&s, &headers, args, |store, (at, text)| {
        let states = match at {
            Some(t) => envs::list_at(store, t)?,
            None => envs::list(store)?,
        };
        Ok(json!({"at": text, "environments": states}))
    })
    .await
}

async fn environment(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let args = || {
        let env = path(p)?;
        env_name(&env)?;
        Ok(env)
    };
    read(&s, &headers, args, |store, env| {
        envs::list(store)?
            .into_iter()
            .find(|e| e.env == env)
            .ok_or_else(|| {
                ApiError::not_found(
                    format!("there is no environment '{env}'"),
                    "GET /v1/environments lists them",
                )
            })
    })
    .await
}

async fn bundles(State(s): St, headers: HeaderMap) -> Response {
    read(
        &s,
        &headers,
        || Ok(()),
        |store, ()| Ok(bundle::list(store)?),
    )
    .await
}

async fn manifest(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    read(
        &s,
        &headers,
        || path(p),
        |store, (id, version)| Ok(bundle::inspect(store, &id, &version)?.to_json()),
    )
    .await
}

/// The resolved bundle's JSON: identity, model config, every prompt's text
/// and template, every policy parsed, and the telemetry it carries.
pub(crate) fn bundle_json(b: &LoadedBundle) -> Value {
    let c = b.content();
    json!({
        "id": c.id,
        "version": c.version,
        "bundle_hash": c.bundle_hash,
        "environment": b.environment(),
        "description": c.description,
        "created_at": c.created_at,
        "created_by": c.created_by,
        "model": c.model.as_ref().map(|m| m.to_json()),
        "prompts": c.prompts,
        "policies": c.policies,
        "telemetry": b.telemetry_json(),
    })
}

/// True when `If-None-Match` names `etag` (weak comparison, as RFC 9110
/// asks for this header) or is `*`.
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(want) = etag.to_str().ok().map(|t| t.trim_matches('"')) else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| {
            tag == "*"
                || tag
                    .strip_prefix("W/")
                    .unwrap_or(tag)
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    == Some(want)
        })
}

fn bundle_response(s: &AppState, b: &LoadedBundle, headers: &HeaderMap) -> Response {
    let r = s.rendered(b);
    // Shared caches may keep an answer only when anyone may read it.
    let open = s.tokens.is_empty() || s.public_reads;
    let cache = match (b.environment().is_some(), open) {
        (true, true) => HeaderValue::from_static("no-cache"),
        (true, false) => HeaderValue::from_static("private, no-cache"),
        // A pinned version never changes.
        (false, true) => HeaderValue::from_static("public, max-age=31536000, immutable"),
        (false, false) => HeaderValue::from_static("private, max-age=31536000, immutable"),
    };
    let mut resp = if not_modified(headers, &r.etag) {
        let mut x = Response::new(Body::empty());
        *x.status_mut() = StatusCode::NOT_MODIFIED;
        x
    } else {
        let mut x = Response::new(Body::from(r.body));
        x.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        x
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, r.etag);
    h.insert(header::CACHE_CONTROL, cache);
    resp
}

async fn resolve(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let r = async {
        s.authorize(&headers, Role::Viewer)?;
        let reference = path(p)?;
        let b = s.bundle(&reference).await?;
        Ok(bundle_response(&s, &b, &headers))
    }
    .await;
    respond(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchQuery {
    /// Seconds to hold the request (default 30, at most 300).
    timeout: Option<u64>,
}

/// Long poll: answers at once when the client's `If-None-Match` is not what
/// the environment runs; otherwise holds the request until the pointer
/// moves (200 with the new bundle) or the timeout passes (304).
async fn watch(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<WatchQuery>, QueryRejection>,
) -> Response {
    let r = async {
        s.authorize(&headers, Role::Viewer)?;
        let reference = path(p)?;
        let q = query(q)?;
        if reference.len() <= crate::MAX_REFERENCE_LEN
            && matches!(BundleRef::parse(&reference)?, BundleRef::Pinned { .. })
        {
            return Err(ApiError::bad_request(
                format!("{reference} is a pinned version: it never moves"),
                "watch ID@ENV",
            ));
        }
        let timeout = Duration::from_secs(q.timeout.unwrap_or(30).clamp(1, 300));
        let deadline = tokio::time::Instant::now() + timeout;
        let mut snapshots = s.snapshots.clone();
        snapshots.borrow_and_update();
        let mut shutdown = s.shutdown.clone();
        let _slot = long_lived(&s)?;
        let _watching = s.watching.enter();
        loop {
            let b = s.bundle(&reference).await?;
            if !not_modified(&headers, &s.rendered(&b).etag) {
                return Ok(bundle_response(&s, &b, &headers));
            }
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return Ok(bundle_response(&s, &b, &headers));
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Ok(bundle_response(&s, &b, &headers)),
                _ = shutdown.wait_for(|stop| *stop) => return Ok(bundle_response(&s, &b, &headers)),
            }
        }
    }
    .await;
    respond(r)
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    env: Option<String>,
    bundle: Option<String>,
}

impl EventsQuery {
    fn keeps(&self, env: &str, bundle: &str) -> bool {
        self.env.as_deref().is_none_or(|e| e == env)
            && self.bundle.as_deref().is_none_or(|b| b == bundle)
    }

    fn snapshot_event(&self, snap: &crate::watch::Snapshot) -> Event {
        let envs: serde_json::Map<String, Value> = snap
            .environments
            .iter()
            .filter(|(e, _)| self.env.as_deref().is_none_or(|x| x == e.as_str()))
            .map(|(e, m)| {
                let m: serde_json::Map<String, Value> = m
                    .iter()
                    .filter(|(b, _)| self.keeps(e, b))
                    .map(|(b, v)| (b.clone(), json!(v)))
                    .collect();
                (e.clone(), Value::Object(m))
            })
            .collect();
        Event::default()
            .event("snapshot")
            .id(snap.seq.to_string())
            .data(json!({"seq": snap.seq, "environments": envs}).to_string())
    }
}

/// A slot for a request that stays open (a watch, an event stream), or 503
/// when half the connections are held by them already.
fn long_lived(s: &AppState) -> ApiResult<crate::Counted> {
    s.long_lived.try_enter(s.max_long_lived).ok_or_else(|| {
        ApiError::new(
            ErrorKind::Busy,
            format!(
                "{} watches and event streams are open already, the most this server keeps",
                s.max_long_lived
            ),
            "try again later, or start the server with a larger --max-connections",
        )
    })
}

/// Server-sent events: a `snapshot` of the pointers first, then one `moved`
/// event per pointer that moves (filtered by `env` and `bundle`). A client
/// that falls behind gets a fresh snapshot.
async fn events(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let r = async {
        s.authorize(&headers, Role::Viewer)?;
        let q = query(q)?;
        if let Some(e) = &q.env {
            env_name(e)?;
        }
        if let Some(b) = &q.bundle {
            names::validate_bundle_id(b)?;
        }
        // Subscribe before the snapshot, so nothing falls between them.
        let moves = s.moves.subscribe();
        let first = q.snapshot_event(&s.snapshots.borrow());
        // Counted while the stream lives (it is dropped when the client goes).
        let open = (long_lived(&s)?, s.streams.enter());
        let state = (
            Some(first),
            moves,
            s.shutdown.clone(),
            s.snapshots.clone(),
            (q, open),
        );
        let stream = futures_util::stream::unfold(
            state,
            |(first, mut moves, mut shutdown, snaps, (q, open))| async move {
                let q = (q, open);
                if let Some(ev) = first {
                    return Some((Ok::<_, Infallible>(ev), (None, moves, shutdown, snaps, q)));
                }
                let (filter, _) = &q;
                loop {
                    if *shutdown.borrow() {
                        return None;
                    }
                    tokio::select! {
                        m = moves.recv() => match m {
                            Ok(m) if filter.keeps(&m.env, &m.bundle_id) => {
                                let ev = Event::default()
                                    .event("moved")
                                    .id(m.seq.to_string())
                                    .data(serde_json::to_string(&m).unwrap_or_default());
                                return Some((Ok(ev), (None, moves, shutdown, snaps, q)));
                            }
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                let ev = filter.snapshot_event(&snaps.borrow());
                                return Some((Ok(ev), (None, moves, shutdown, snaps, q)));
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        },
                        _ = shutdown.changed() => {}
                    }
                }
            },
        );
        Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
    }
    .await;
    respond(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    from: String,
    to: String,
}

async fn diff(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> Response {
    let args = || {
        let q = query(q)?;
        Ok((BundleRef::parse(&q.from)?, BundleRef::parse(&q.to)?))
    };
    read(&s, &headers, args, |store, (a, b)| {
        let a = version_of(store, &a)?;
        let b = version_of(store, &b)?;
        Ok(bundle::diff(store, (&a.0, &a.1), (&b.0, &b.1))?)
    })
    .await
}

/// `(id, version)` of a reference: an environment's pointer, read now.
fn version_of(store: &Store, r: &BundleRef) -> ApiResult<(String, String)> {
    match r {
        BundleRef::Pinned { id, version } => Ok((id.clone(), version.clone())),
        BundleRef::Env { id, env } => {
            let file = store.load_env(env)?;
            let v = file.bundle_mappings.get(id).cloned().ok_or_else(|| {
                ApiError::not_found(
                    format!("{id} is not deployed in {env}"),
                    "GET /v1/environments shows what runs where",
                )
            })?;
            Ok((id.clone(), v))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    bundle: Option<String>,
    env: Option<String>,
    event: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

async fn history(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<HistoryParams>, QueryRejection>,
) -> Response {
    let args = || {
        let q = query(q)?;
        let event = q
            .event
            .as_deref()
            .map(envs::EventFilter::parse_named)
            .transpose()?;
        Ok(envs::HistoryQuery {
            bundle: q.bundle,
            env: q.env,
            event,
            actor: q.actor,
            since: time_param("since", q.since.as_deref())?,
            until: time_param("until", q.until.as_deref())?,
            limit: limit(q.limit, 100, 10_000),
        })
    };
    read(&s, &headers, args, |store, hq| {
        Ok(envs::history(store, &hq)?)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportsQuery {
    bundle: Option<String>,
    version: Option<String>,
    suite: Option<String>,
    limit: Option<usize>,
}

fn run_id_ok(id: &str) -> ApiResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 160
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            format!("'{id}' is not a run id"),
            "GET /v1/eval-reports lists the run ids",
        ))
    }
}

fn read_report(path: &std::path::Path) -> ApiResult<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ApiError::internal(format!("cannot read the report {}: {e}", path.display()))
    })?;
    Ok(releaseops_format::yaml::from_str(&text)?)
}

async fn eval_reports(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<ReportsQuery>, QueryRejection>,
) -> Response {
    let args = || {
        let q = query(q)?;
        if let Some(b) = &q.bundle {
            names::validate_bundle_id(b)?;
        }
        if let Some(v) = &q.version {
            names::validate_version(v)?;
        }
        Ok(q)
    };
    read(&s, &headers, args, |store, q| {
        let found = evals::find_reports(
            store,
            q.bundle.as_deref(),
            q.version.as_deref(),
            q.suite.as_deref(),
            None,
        );
        let root = store.dir().join("eval_reports");
        let mut out = Vec::new();
        for p in found.iter().rev().take(limit(q.limit, 50, 1000)) {
            let rel = p
                .strip_prefix(&root)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let parts: Vec<&str> = rel.split('/').collect();
            let report = read_report(p)?;
            out.push(json!({
                "run_id": p.file_stem().map(|s| s.to_string_lossy().to_string()),
                "bundle_id": parts.first(),
                "version": parts.get(1),
                "suite": parts.get(2),
                "summary": report.get("summary"),
            }));
        }
        Ok(out)
    })
    .await
}

async fn eval_report(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let args = || {
        let id = path(p)?;
        run_id_ok(&id)?;
        Ok(id)
    };
    read(&s, &headers, args, |store, id| {
        let found = evals::find_reports(store, None, None, None, Some(&id));
        let p = found.last().ok_or_else(|| {
            ApiError::not_found(
                format!("there is no eval report '{id}'"),
                "GET /v1/eval-reports lists them",
            )
        })?;
        read_report(p)
    })
    .await
}

async fn decision(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let args = || {
        let id = path(p)?;
        if id.len() > 32 {
            return Err(ApiError::bad_request(
                "decision ids look like dec-000123",
                "GET /v1/agent/memory lists them",
            ));
        }
        Ok(id)
    };
    read(&s, &headers, args, |store, id| {
        let rec = releaseops_core::agent::decision(store, &id).map_err(|e| match e {
            // An id that names no decision.
            CoreError::Invalid { message, hint } => ApiError {
                kind: ErrorKind::NotFound,
                message,
                hint,
                detail: None,
            },
            other => other.into(),
        })?;
        Ok(rec.summary_json())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryQuery {
    limit: Option<usize>,
}

async fn memory(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<MemoryQuery>, QueryRejection>,
) -> Response {
    let args = || Ok(limit(query(q)?.limit, 20, 10_000));
    read(&s, &headers, args, |store, n| {
        let (head, episodes) = releaseops_core::agent::memory_view(store, n)?;
        Ok(json!({"head": head, "episodes": episodes}))
    })
    .await
}

// --- writes ----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    bundle_id: String,
    version: String,
    env: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    skip_gates: bool,
}

fn no_check<B>(_: &crate::Principal, _: &B) -> ApiResult<()> {
    Ok(())
}

/// A change: the token's role allows it, the body is good, `check` passes,
/// and `f` runs as the token's owner in the CLI's own transaction.
async fn change<B: DeserializeOwned + Send + 'static, T: Send + 'static>(
    s: &AppState,
    headers: &HeaderMap,
    needed: Role,
    b: Body,
    check: impl FnOnce(&crate::Principal, &B) -> ApiResult<()>,
    f: impl FnOnce(&Ctx<'_>, B) -> Result<T, CoreError> + Send + 'static,
) -> ApiResult<T> {
    let who = s
        .authorize(headers, needed)?
        .ok_or_else(ApiError::unauthorized)?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "a change must be sent as JSON",
            "send `Content-Type: application/json` and a JSON object",
        ));
    }
    // Only now, with the token checked, is the body read: an anonymous
    // client cannot hold a slot by sending one slowly.
    let req: B = body(read_body(b, headers, s.body_timeout).await?)?;
    check(&who, &req)?;
    write(s, who.owner, move |ctx| f(ctx, req)).await
}

async fn promote(State(s): St, headers: HeaderMap, b: Body) -> Response {
    let overriding = |who: &crate::Principal, req: &PromoteBody| {
        if req.skip_gates && who.role != Role::Admin {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "overriding gates needs the role admin; the token of {} has {}",
                    who.owner, who.role
                ),
                "promote through the gates, or ask an admin",
            ));
        }
        Ok(())
    };
    let r = change(
        &s,
        &headers,
        Role::Deployer,
        b,
        overriding,
        |ctx, req: PromoteBody| {
            release::promote(
                ctx,
                &PromoteRequest {
                    id: req.bundle_id,
                    version: req.version,
                    env: req.env,
                    reason: req.reason,
                    dry_run: req.dry_run,
                    skip_gates: req.skip_gates,
                },
            )
        },
    )
    .await
    .and_then(|out| {
        // A dry run is a question: the answer is the outcome, gates and all.
        if out.blocked_by.is_empty() || out.dry_run {
            return Ok(Json(out));
        }
        let pending_only = out
            .gates
            .iter()
            .filter(|g| out.blocked_by.contains(&g.gate))
            .all(|g| g.status == releaseops_format::history::GateStatus::Pending);
        let hint = if pending_only {
            "pending gates can pass later: approve, wait, or run the evaluation, then promote again"
        } else {
            "a failed gate does not pass by waiting: each gate's reason is in the outcome"
        };
        Err(ApiError {
            kind: ErrorKind::Blocked,
            message: format!(
                "{} {} -> {} is blocked by {}",
                out.id,
                out.version,
                out.env,
                releaseops_format::history::Gate::join(&out.blocked_by, ", ")
            ),
            hint: Some(hint.into()),
            detail: Some(Box::new((
                "outcome",
                serde_json::to_value(&out).unwrap_or_default(),
            ))),
        })
    });
    respond(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    bundle_id: String,
    version: String,
    env: String,
    #[serde(default)]
    comment: Option<String>,
}

async fn approve(State(s): St, headers: HeaderMap, b: Body) -> Response {
    let r = change(
        &s,
        &headers,
        Role::Approver,
        b,
        no_check,
        |ctx, req: ApproveBody| {
            release::approve(
                ctx,
                &req.bundle_id,
                &req.version,
                &req.env,
                req.comment,
                None,
            )
        },
    )
    .await;
    respond(r.map(Json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    bundle_id: String,
    version: String,
    #[serde(default)]
    env: Option<String>,
    reason: String,
}

async fn reject(State(s): St, headers: HeaderMap, b: Body) -> Response {
    let r = change(
        &s,
        &headers,
        Role::Approver,
        b,
        no_check,
        |ctx, req: RejectBody| {
            release::reject(
                ctx,
                &req.bundle_id,
                &req.version,
                req.env.as_deref(),
                &req.reason,
            )
        },
    )
    .await;
    respond(r.map(Json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    bundle_id: String,
    env: String,
    #[serde(default)]
    steps: Option<u32>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

async fn rollback(State(s): St, headers: HeaderMap, b: Body) -> Response {
    let r = change(
        &s,
        &headers,
        Role::Deployer,
        b,
        no_check,
        |ctx, req: RollbackBody| {
            release::rollback(
                ctx,
                &RollbackRequest {
                    env: req.env,
                    id: req.bundle_id,
                    steps: req.steps,
                    to: req.to,
                    reason: req.reason,
                },
            )
        },
    )
    .await;
    respond(r.map(Json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            m
        };
        let tag = HeaderValue::from_static("\"1.0.0@sha256:ab\"");
        assert!(not_modified(&h("\"1.0.0@sha256:ab\""), &tag));
        assert!(not_modified(&h("W/\"1.0.0@sha256:ab\""), &tag));
        assert!(not_modified(&h("\"x\", \"1.0.0@sha256:ab\""), &tag));
        assert!(not_modified(&h("*"), &tag));
        assert!(!not_modified(&h("\"1.0.1@sha256:ab\""), &tag));
        assert!(!not_modified(&h("1.0.0@sha256:ab"), &tag));
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: Value = serde_json::from_slice(&openapi_document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
                    .map(|m| (m.clone(), p.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }

    #[test]
    fn run_ids_are_plain_names() {
        assert!(run_id_ok("20261121T090000Z-abc").is_ok());
        for bad in ["", "../x", ".hidden", "a/b", "a b", &"x".repeat(200)] {
            assert!(run_id_ok(bad).is_err(), "{bad}");
        }
    }
}
