//! The dashboard at `/`: pages rendered by `releaseops-web` from the same
//! documents the API serves, sign-in with a token, and forms that promote,
//! approve, reject and roll back through the very transactions the API and
//! the CLI run, as the token's owner.
//!
//! - A session is a random id in an `HttpOnly`, `SameSite=Strict` cookie,
//!   held in memory (a restart signs everyone out); it carries the token's
//!   principal, never the token.
//! - Every form that changes something carries the session's CSRF token, and
//!   is refused when the browser says it came from another site
//!   (`Sec-Fetch-Site`, `Origin`).
//! - Reads follow the server's rule: open when no tokens are configured or
//!   with `--public-reads`, else a session is needed.
//! - Pages are sent under the web crate's Content-Security-Policy.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use axum::extract::Request;
use axum::http::Uri;
use releaseops_core::{agent, attribution, status};
use releaseops_web::{Page, Series};

use super::*;
use crate::Principal;

/// The session cookie's name.
const COOKIE: &str = "releaseops_session";
/// How long a session lasts without use.
const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
/// How long a session lasts at most, used or not (the cookie's `Max-Age`).
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; the oldest go first.
const MAX_SESSIONS: usize = 10_000;
/// Sessions one token's owner may hold at once; their oldest goes first, so
/// nobody can sign everyone else out by signing in again and again.
const MAX_SESSIONS_PER_OWNER: usize = 16;

struct Session {
    principal: Principal,
    csrf: String,
    created: Instant,
    seen: Instant,
}

impl Session {
    fn live(&self) -> bool {
        self.seen.elapsed() < SESSION_IDLE && self.created.elapsed() < SESSION_LIFETIME
    }
}

/// The signed-in browsers.
#[derive(Default)]
pub(crate) struct Sessions(std::sync::Mutex<HashMap<String, Session>>);

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // Without randomness there is no safe session: the id would be guessable.
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    hex::encode(b)
}

/// Equal strings, compared in time that depends on their length only.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `principal`: its id and CSRF token.
    fn create(&self, principal: Principal) -> Option<(String, String)> {
        let (id, csrf) = (random_hex(32), random_hex(32));
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let mut m = self.lock();
        m.retain(|_, s| s.live());
        let oldest_of = |m: &HashMap<String, Session>, owner: Option<&str>| {
            m.iter()
                .filter(|(_, s)| owner.is_none_or(|o| s.principal.owner == o))
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
        };
        while m
            .values()
            .filter(|s| s.principal.owner == principal.owner)
            .count()
            >= MAX_SESSIONS_PER_OWNER
        {
            let Some(k) = oldest_of(&m, Some(&principal.owner)) else {
                break;
            };
            m.remove(&k);
        }
        while m.len() >= MAX_SESSIONS {
            let Some(k) = oldest_of(&m, None) else { break };
            m.remove(&k);
        }
        let now = Instant::now();
        m.insert(
            id.clone(),
            Session {
                principal,
                csrf: csrf.clone(),
                created: now,
                seen: now,
            },
        );
        Some((id, csrf))
    }

    fn get(&self, id: &str) -> Option<(Principal, String)> {
        let mut m = self.lock();
        let s = m.get_mut(id)?;
        if !s.live() {
            m.remove(id);
            return None;
        }
        s.seen = Instant::now();
        Some((s.principal.clone(), s.csrf.clone()))
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The session id a request's cookies carry. Two session cookies are no
/// session: another site on the same host (cookies ignore ports) could
/// have planted the second to have actions run under its own session.
fn session_id(headers: &HeaderMap) -> Option<String> {
    let found: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .collect();
    match found.as_slice() {
        [v] if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => Some(v.clone()),
        _ => None,
    }
}

impl AppState {
    /// The principal of the request's session, if it has a live one.
    pub(crate) fn session_principal(&self, headers: &HeaderMap) -> Option<Principal> {
        session_id(headers)
            .and_then(|id| self.sessions.get(&id))
            .map(|(p, _)| p)
    }
}

/// Who is looking at a page.
struct Viewer {
    session: Option<(String, Principal, String)>,
}

impl Viewer {
    fn principal(&self) -> Option<&Principal> {
        self.session.as_ref().map(|(_, p, _)| p)
    }

    fn csrf(&self) -> Option<&str> {
        self.session.as_ref().map(|(_, _, c)| c.as_str())
    }

    fn can(&self, role: Role) -> bool {
        self.principal().is_some_and(|p| p.role.allows(role))
    }
}

/// The viewer, or the answer that sends them to sign in first.
fn viewer(s: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Viewer, Box<Response>> {
    let session = session_id(headers).and_then(|id| s.sessions.get(&id).map(|(p, c)| (id, p, c)));
    if session.is_none() && !s.reads_open() {
        return Err(Box::new(to_sign_in(uri)));
    }
    Ok(Viewer { session })
}

/// Sends the browser to sign in, then back to where it was going.
fn to_sign_in(uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    see_other(&format!("/signin?next={}", form_encode(next)))
}

/// Percent-encodes all but letters, digits, `-_.~` and `/` (a path stays readable).
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn see_other(to: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(r.headers_mut());
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(releaseops_web::CSP),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
}

/// The context every page has: who is signed in, what they may do.
fn base(s: &AppState, v: &Viewer, title: &str, section: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("title".into(), json!(title));
    m.insert("section".into(), json!(section));
    m.insert("sign_in".into(), json!(!s.tokens.is_empty()));
    if let Some(p) = v.principal() {
        m.insert(
            "user".into(),
            json!({"owner": p.owner, "role": p.role.as_str()}),
        );
    }
    m.insert("csrf".into(), json!(v.csrf()));
    m.insert("can_deploy".into(), json!(v.can(Role::Deployer)));
    m.insert("can_approve".into(), json!(v.can(Role::Approver)));
    m.insert("can_override".into(), json!(v.can(Role::Admin)));
    m
}

fn html(
    s: &AppState,
    status: StatusCode,
    page: Page,
    ctx: serde_json::Map<String, Value>,
) -> Response {
    let (status, body) = match s.pages.render(page, &Value::Object(ctx)) {
        Ok(b) => (status, b),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "<!doctype html><title>error</title><p>{}</p>",
                e.to_string()
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            ),
        ),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // A page shows what its viewer may read: no shared cache keeps it.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(h);
    r
}

/// A page that says one thing: what happened, or what went wrong.
fn message(
    s: &AppState,
    v: &Viewer,
    status: StatusCode,
    heading: &str,
    text: &str,
    hint: Option<&str>,
    back: &str,
) -> Response {
    let mut c = base(s, v, heading, "");
    c.insert("heading".into(), json!(heading));
    c.insert("text".into(), json!(text));
    c.insert("hint".into(), json!(hint));
    c.insert("back".into(), json!(back));
    c.insert(
        "kind".into(),
        json!(if status.is_success() {
            "ok"
        } else {
            "problems"
        }),
    );
    html(s, status, Page::Message, c)
}

fn error_page(s: &AppState, v: &Viewer, e: ApiError) -> Response {
    let status = e.kind.http_status();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    message(
        s,
        v,
        status,
        "Something is wrong",
        &e.message,
        e.hint.as_deref(),
        "/",
    )
}

/// Runs `f` on a store opened on a blocking thread, with a context for the
/// reads that evaluate gates (the board's dry runs): nothing is committed.
async fn with_ctx<T: Send + 'static>(
    s: &AppState,
    actor: String,
    f: impl FnOnce(&Ctx<'_>) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let root = s.root.clone();
    let (now, simulated_clock) = s.now();
    tokio::task::spawn_blocking(move || {
        let store = Store::open(&root)?;
        let ctx = Ctx {
            store: &store,
            actor,
            now,
            git_commit: false,
            simulated_clock,
            runtime: None,
        };
        f(&ctx)
    })
    .await
    .map_err(|_| ApiError::internal("the page failed; the server's log has no more: retry"))?
    .map_err(|e| s.public(e))
}

/// Renders a read-only page: the viewer may see it, its arguments (`args`:
/// the path and query, read) are good, and `f` gathers its data, which may
/// set the page's `title`.
#[allow(clippy::too_many_arguments)]
async fn page<A: Send + 'static>(
    s: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    p: Page,
    title: &str,
    section: &str,
    args: ApiResult<A>,
    f: impl FnOnce(&Ctx<'_>, A) -> ApiResult<serde_json::Map<String, Value>> + Send + 'static,
) -> Response {
    let v = match viewer(s, headers, uri) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let args = match args {
        Ok(a) => a,
        Err(e) => return error_page(s, &v, e),
    };
    let actor = v
        .principal()
        .map(|p| p.owner.clone())
        .unwrap_or_else(|| "dashboard".into());
    match with_ctx(s, actor, move |ctx| f(ctx, args)).await {
        Ok(data) => {
            let mut c = base(s, &v, title, section);
            c.extend(data);
            html(s, StatusCode::OK, p, c)
        }
        Err(e) => error_page(s, &v, e),
    }
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

// --- routes ----------------------------------------------------------------

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(board))
        .route("/fragments/board", get(board_fragment))
        .route("/assets/{file}", get(asset))
        .route("/bundles", get(bundles_page))
        .route("/bundles/{id}", get(bundle_latest))
        .route("/bundles/{id}/{version}", get(bundle_page))
        .route("/diff", get(diff_page))
        .route("/history", get(history_page))
        .route("/evals", get(evals_page))
        .route("/evals/compare", get(eval_compare_page))
        .route("/evals/{run}", get(eval_page))
        .route("/decisions", get(decisions_page))
        .route("/decisions/{id}", get(decision_page))
        .route("/production", get(production_page))
        .route("/production/compare", get(production_compare))
        .route("/attribution/{trace}", get(attribution_page))
        .route("/signin", get(signin_form).post(signin))
        .route("/signout", post(signout))
        .route("/ui/{action}", get(action_form).post(action))
}

async fn asset(State(s): St, p: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(file)) = p else {
        return not_found().await;
    };
    match s.pages.asset(&format!("/assets/{file}")) {
        Some(a) => {
            let mut r = Response::new(Body::from(a.body));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            );
            // The content hash is in the name: it never changes.
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            secure_headers(h);
            r
        }
        None => not_found().await,
    }
}

/// Bundles on one page of the board.
const BOARD_PAGE: usize = 25;
/// How long a board page is reused while the history does not move (its
/// time gates, a soak's end, move with the clock alone).
const BOARD_FRESH: Duration = Duration::from_secs(5);

/// Board pages by page number, each with the history tip and the time it
/// was computed at: reading a page of a store with thousands of bundles
/// evaluates every waiting version's gates, which need not be done again
/// until the history moves.
#[derive(Default)]
pub(crate) struct BoardCache(std::sync::Mutex<HashMap<usize, BoardPage>>);

/// A page of the board: the history tip it was read at, when, and its data.
type BoardPage = (String, Instant, serde_json::Map<String, Value>);

impl BoardCache {
    fn get(&self, page: usize, tip: &str) -> Option<serde_json::Map<String, Value>> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&page)
            .filter(|(t, at, _)| t == tip && at.elapsed() < BOARD_FRESH)
            .map(|(_, _, v)| v.clone())
    }

    fn put(&self, page: usize, tip: String, v: &serde_json::Map<String, Value>) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 1000 {
            m.clear();
        }
        m.insert(page, (tip, Instant::now(), v.clone()));
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BoardQuery {
    page: Option<usize>,
}

/// One page of the board, reused while the history has not moved.
fn board_data(
    cache: &BoardCache,
    ctx: &Ctx<'_>,
    page: usize,
) -> ApiResult<serde_json::Map<String, Value>> {
    let tip = ctx.store.history().tip().map_err(CoreError::from)?;
    let key = format!("{}:{}", tip.seq, tip.hash.unwrap_or_default());
    if let Some(v) = cache.get(page, &key) {
        // A kept page still checks the history (the process remembers the
        // state it verified, so this costs a stat of each segment): an edit
        // shows on the very next request. A page computed anew reads the
        // verified view itself.
        let _read = ctx.store.read_guard().map_err(CoreError::from)?;
        ctx.store.chain_view().map_err(CoreError::from)?;
        return Ok(v);
    }
    let v = compute_board(ctx, page)?;
    cache.put(page, key, &v);
    Ok(v)
}

/// One page of the board: every stage, for `BOARD_PAGE` bundles (by id).
fn compute_board(ctx: &Ctx<'_>, page: usize) -> ApiResult<serde_json::Map<String, Value>> {
    let p = status::status_page(ctx, page, BOARD_PAGE)?;
    let (page, total) = (p.page, p.total);
    let pipeline = ctx.store.config().pipeline.clone();
    Ok(obj(json!({
        "status": p.status,
        "pipeline": pipeline,
        "paging": {
            "page": page,
            "pages": p.pages,
            "total": total,
            "from": (page * BOARD_PAGE + 1).min(total),
            "to": ((page + 1) * BOARD_PAGE).min(total),
        },
        "live": format!("/fragments/board?page={page}"),
    })))
}

async fn board(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    q: Result<Query<BoardQuery>, QueryRejection>,
) -> Response {
    let cache = s.clone();
    let mut r = page(
        &s,
        &headers,
        &uri,
        Page::Board,
        "Pipeline",
        "board",
        query(q),
        move |ctx, q| board_data(&cache.boards, ctx, q.page.unwrap_or(0)),
    )
    .await;
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("cookie"));
    r
}

async fn board_fragment(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    q: Result<Query<BoardQuery>, QueryRejection>,
) -> Response {
    if viewer(&s, &headers, &uri).is_err() {
        return ApiError::unauthorized().into_response();
    }
    let cache = s.clone();
    page(
        &s,
        &headers,
        &uri,
        Page::BoardFragment,
        "Pipeline",
        "board",
        query(q),
        move |ctx, q| board_data(&cache.boards, ctx, q.page.unwrap_or(0)),
    )
    .await
}

async fn bundles_page(State(s): St, headers: HeaderMap, uri: Uri) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::Bundles,
        "Bundles",
        "bundles",
        Ok(()),
        |ctx, ()| Ok(obj(json!({"bundles": bundle::list(ctx.store)?}))),
    )
    .await
}

async fn bundle_latest(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::Bundle,
        "Bundle",
        "bundles",
        path(p),
        |ctx, id: String| {
            names::validate_bundle_id(&id)?;
            let versions = ctx.store.bundle_versions(&id)?;
            let Some(latest) = versions.last().cloned() else {
                return Err(ApiError::not_found(
                    format!("there is no bundle '{id}'"),
                    "the Bundles page lists them",
                ));
            };
            bundle_data(ctx, &id, &latest)
        },
    )
    .await
}

async fn bundle_page(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::Bundle,
        "Bundle",
        "bundles",
        path(p),
        |ctx, (id, version): (String, String)| bundle_data(ctx, &id, &version),
    )
    .await
}

fn bundle_data(
    ctx: &Ctx<'_>,
    id: &str,
    version: &str,
) -> ApiResult<serde_json::Map<String, Value>> {
    let store = ctx.store;
    let inspected = bundle::inspect(store, id, version)?;
    let versions = store.bundle_versions(id)?;
    let previous = versions
        .iter()
        .position(|v| v == version)
        .and_then(|i| i.checked_sub(1))
        .map(|i| versions[i].clone())
        .unwrap_or_else(|| version.to_string());
    let verified = bundle::verify(store, id, version)?;
    // The texts shown are the verified ones: a bundle that does not verify
    // shows its problems, not content nobody can vouch for.
    let mut artifacts = Vec::new();
    if verified.ok {
        let text = attribution::bundle_text(store, id, version)?;
        for (kind, list) in [("prompt", &text.prompts), ("policy", &text.policies)] {
            for a in list {
                let hash = inspected
                    .manifest
                    .prompts
                    .get(&a.role)
                    .filter(|_| kind == "prompt")
                    .or_else(|| {
                        inspected
                            .manifest
                            .policies
                            .get(&a.role)
                            .filter(|_| kind == "policy")
                    })
                    .and_then(|r| r.content_hash.clone());
                artifacts.push(json!({
                    "kind": kind,
                    "role": a.role,
                    "location": a.reference,
                    "hash": hash,
                    "lines": a.text.lines().collect::<Vec<_>>(),
                }));
            }
        }
    }
    let model = inspected
        .manifest
        .model_config
        .as_ref()
        .map(|m| serde_json::to_string(&m.to_json()).unwrap_or_default());
    let reviews: Vec<String> = inspected
        .reviews
        .approvals
        .iter()
        .map(|a| {
            format!(
                "approved for {} by {} at {}{}{}",
                a.env,
                a.actor,
                a.at,
                a.comment
                    .as_deref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default(),
                if a.signature.is_some() {
                    " (signed)"
                } else {
                    ""
                }
            )
        })
        .chain(inspected.reviews.rejections.iter().map(|r| {
            format!(
                "rejected{} by {} at {}: {}",
                r.env
                    .as_deref()
                    .map(|e| format!(" for {e}"))
                    .unwrap_or_default(),
                r.actor,
                r.at,
                r.reason
            )
        }))
        .collect();
    Ok(obj(json!({
        "title": format!("{id} {version}"),
        "id": id,
        "version": version,
        "versions": versions,
        "previous": previous,
        "manifest": inspected.to_json(),
        "deployed_in": inspected.deployed_in,
        "verified": verified,
        "artifacts": artifacts,
        "model": model,
        "reviews": reviews,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffForm {
    bundle: Option<String>,
    from: String,
    to: String,
}

async fn diff_page(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    q: Result<Query<DiffForm>, QueryRejection>,
) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::Diff,
        "Diff",
        "bundles",
        query(q),
        move |ctx, q| {
            // `from` and `to` are versions of `bundle`, or `ID@VERSION` each.
            let split = |r: &str| -> (String, String) {
                match (r.split_once('@'), &q.bundle) {
                    (Some((i, v)), _) => (i.to_string(), v.to_string()),
                    (None, Some(b)) => (b.clone(), r.to_string()),
                    (None, None) => (String::new(), r.to_string()),
                }
            };
            let (a, b) = (split(&q.from), split(&q.to));
            for (i, v) in [&a, &b] {
                names::validate_bundle_id(i)?;
                names::validate_version(v)?;
            }
            let d = bundle::diff(ctx.store, (&a.0, &a.1), (&b.0, &b.1))?;
            Ok(obj(json!({"diff": d})))
        },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HistoryForm {
    env: Option<String>,
    bundle: Option<String>,
    actor: Option<String>,
    at: Option<String>,
}

fn blank(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

async fn history_page(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    q: Result<Query<HistoryForm>, QueryRejection>,
) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::History,
        "History",
        "history",
        query(q).map(|q| HistoryForm {
            env: blank(q.env),
            bundle: blank(q.bundle),
            actor: blank(q.actor),
            at: blank(q.at),
        }),
        move |ctx, q| {
            let store = ctx.store;
            if let Some(e) = &q.env {
                env_name(e)?;
            }
            if let Some(b) = &q.bundle {
                names::validate_bundle_id(b)?;
            }
            let at = time_param("at", q.at.as_deref())?;
            let records = envs::history(
                store,
                &envs::HistoryQuery {
                    bundle: q.bundle.clone(),
                    env: q.env.clone(),
                    event: None,
                    actor: q.actor.clone(),
                    since: None,
                    until: at,
                    limit: 500,
                },
            )?;
            let chain = match store.chain_view() {
                Ok(view) => json!({"ok": true, "records": view.tip().seq}),
                // Paths relative to the repository, as every error the
                // server shows.
                Err(e) => json!({
                    "ok": false,
                    "problem": e
                        .to_string()
                        .replace(&format!("{}/", store.root().display()), ""),
                }),
            };
            let at_state = match at {
                Some(t) => Some(envs::list_at(store, t)?),
                None => None,
            };
            Ok(obj(json!({
                "records": records,
                "chain": chain,
                "at_state": at_state,
                "environments": store.environments()?,
                "bundle_ids": store.bundle_ids()?,
                "q": {"env": q.env, "bundle": q.bundle, "actor": q.actor, "at": q.at},
            })))
        },
    )
    .await
}

async fn evals_page(State(s): St, headers: HeaderMap, uri: Uri) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::Evals,
        "Evaluations",
        "evals",
        Ok(()),
        |ctx, ()| {
            Ok(obj(
                json!({"reports": report_list(ctx.store, &ReportFilter::default(), 200)?}),
            ))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalForm {
    failed: Option<String>,
}

async fn eval_page(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<EvalForm>, QueryRejection>,
) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::Eval,
        "Page",
        "evals",
        path(p).and_then(|id| Ok((id, query(q)?.failed.is_some_and(|f| f != "0")))),
        move |ctx, (id, failed_only)| {
            let report = report_by_id(ctx.store, &id)?;
            let cases: Vec<Value> = report["results"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|c| !failed_only || c["passed"] != json!(true))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            Ok(obj(
                json!({"title": id, "report": report, "cases": cases, "failed_only": failed_only}),
            ))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareForm {
    a: String,
    b: String,
}

async fn eval_compare_page(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    q: Result<Query<CompareForm>, QueryRejection>,
) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::EvalCompare,
        "Two runs",
        "evals",
        query(q),
        move |ctx, q| {
            let a = report_by_id(ctx.store, &q.a)?;
            let b = report_by_id(ctx.store, &q.b)?;
            let passed = |r: &Value| -> BTreeMap<String, bool> {
                r["results"]
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| {
                                Some((
                                    c["case_id"].as_str()?.to_string(),
                                    c["passed"] == json!(true),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (pa, pb) = (passed(&a), passed(&b));
            let mut ids: Vec<&String> = pa.keys().collect();
            ids.extend(pb.keys().filter(|k| !pa.contains_key(*k)));
            let rows: Vec<Value> = ids
                .into_iter()
                .map(|id| {
                    let (x, y) = (pa.get(id), pb.get(id));
                    json!({"case_id": id, "a": x, "b": y, "changed": x != y})
                })
                .collect();
            Ok(obj(json!({"a": a, "b": b, "rows": rows})))
        },
    )
    .await
}

async fn decisions_page(State(s): St, headers: HeaderMap, uri: Uri) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::Decisions,
        "Decisions",
        "decisions",
        Ok(()),
        |ctx, ()| {
            let (_, episodes) = agent::memory_view(ctx.store, 100)?;
            let heuristics = agent::heuristics(ctx.store)?;
            Ok(obj(json!({"episodes": episodes, "heuristics": heuristics})))
        },
    )
    .await
}

async fn decision_page(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    page(
        &s,
        &headers,
        &uri,
        Page::Decision,
        "Page",
        "decisions",
        path(p).and_then(|id| {
            if id.len() <= 32 {
                Ok(id)
            } else {
                Err(ApiError::bad_request(
                    "decision ids look like dec-000123",
                    "the Decisions page lists them",
                ))
            }
        }),
        move |ctx, id| {
            let rec = decision_record(ctx.store, &id)?;
            Ok(obj(json!({"title": id, "d": rec.summary_json()})))
        },
    )
    .await
}

// --- production ------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProductionForm {
    bundle: Option<String>,
    env: Option<String>,
    a: Option<String>,
    b: Option<String>,
}

fn trace_error(e: releaseops_traces::TraceError) -> ApiError {
    ApiError::new(
        ErrorKind::Server,
        format!("the trace store could not be read: {e}"),
        "check the trace store `releaseops serve` was started with",
    )
}

/// The trace store the server was started with, opened.
fn open_traces(
    settings: Option<&releaseops_traces::Settings>,
) -> ApiResult<releaseops_traces::TraceStore> {
    settings
        .ok_or_else(|| {
            ApiError::not_found("this server keeps no traces", "start it with a trace store")
        })?
        .open()
        .map_err(trace_error)
}

/// Buckets of a time range, for the charts.
const BUCKETS: i64 = 12;

fn production_data(
    settings: &releaseops_traces::Settings,
    q: &ProductionForm,
) -> ApiResult<serde_json::Map<String, Value>> {
    use releaseops_traces::Filter;
    let mut ts = settings.open().map_err(trace_error)?;
    let stats = ts.stats(&Filter::default()).map_err(trace_error)?;
    let mut bundle_ids: Vec<String> = stats
        .groups
        .iter()
        .filter_map(|g| g.bundle.bundle_id.clone())
        .collect();
    bundle_ids.sort();
    bundle_ids.dedup();
    let bundle = q.bundle.clone().or_else(|| bundle_ids.first().cloned());
    let env = q.env.clone();
    let mut versions = Vec::new();
    let mut charts = Vec::new();
    let mut traces = Vec::new();
    if let Some(b) = &bundle {
        let groups: Vec<_> = stats
            .groups
            .iter()
            .filter(|g| {
                g.bundle.bundle_id.as_ref() == Some(b)
                    && env
                        .as_ref()
                        .is_none_or(|e| g.bundle.environment.as_ref() == Some(e))
            })
            .collect();
        let mut names: Vec<String> = groups
            .iter()
            .filter_map(|g| g.bundle.bundle_version.clone())
            .collect();
        // Newest first.
        names.sort_by(|x, y| releaseops_format::version::compare(y, x));
        names.dedup();
        let first = groups.iter().map(|g| g.first_ns).min();
        let last = groups.iter().map(|g| g.last_ns).max();
        let filter = |v: Option<&str>, since: Option<i64>, until: Option<i64>| Filter {
            bundle_id: Some(b.clone()),
            bundle_version: v.map(str::to_string),
            environment: env.clone(),
            since_ns: since,
            until_ns: until,
            ..Default::default()
        };
        for v in names.iter().take(6) {
            let sample = ts
                .sample(&filter(Some(v), None, None))
                .map_err(trace_error)?;
            let m = releaseops_traces::analytics::metrics(&sample, &[]);
            versions.push(json!({
                "version": v,
                "traces": m.sample_size,
                "error_rate": m.error_rate,
                "p50": m.latency_ms.p50,
                "p95": m.latency_ms.p95,
            }));
        }
        if let (Some(first), Some(last)) = (first, last) {
            let width = ((last - first) / BUCKETS).max(1);
            let mut labels = Vec::new();
            let mut err: Vec<Series> = Vec::new();
            let mut lat: Vec<Series> = Vec::new();
            for k in 0..BUCKETS {
                let t = first + k * width;
                labels.push(
                    jiff::Timestamp::from_nanosecond(t as i128)
                        .map(|t| t.strftime("%m-%d %H:%M").to_string())
                        .unwrap_or_default(),
                );
            }
            for v in names.iter().take(6) {
                let mut e = Vec::new();
                let mut l = Vec::new();
                for k in 0..BUCKETS {
                    let since = first + k * width;
                    let until = if k == BUCKETS - 1 {
                        last + 1
                    } else {
                        since + width
                    };
                    let sample = ts
                        .sample(&filter(Some(v), Some(since), Some(until)))
                        .map_err(trace_error)?;
                    if sample.traces == 0 {
                        e.push(None);
                        l.push(None);
                    } else {
                        let m = releaseops_traces::analytics::metrics(&sample, &[]);
                        e.push(Some(m.error_rate * 100.0));
                        l.push(Some(m.latency_ms.p50));
                    }
                }
                err.push(Series {
                    name: v.clone(),
                    values: e,
                });
                lat.push(Series {
                    name: v.clone(),
                    values: l,
                });
            }
            charts.push(json!({"title": "Error rate", "unit": "%", "x_labels": labels, "series": err, "caption": format!("Error rate of {b} per version, {} buckets (UTC)", BUCKETS)}));
            charts.push(json!({"title": "Latency p50", "unit": "ms", "x_labels": labels, "series": lat, "caption": format!("Median latency of {b} per version (UTC)")}));
        }
        // The latest incidents (traces with an error) first, then the latest traces.
        let errors = Filter {
            errors: Some(true),
            ..filter(None, None, None)
        };
        let mut listed = ts.traces(&errors, 10).map_err(trace_error)?;
        for t in ts
            .traces(&filter(None, None, None), 10)
            .map_err(trace_error)?
        {
            if !listed.iter().any(|x| x.trace_id == t.trace_id) {
                listed.push(t);
            }
        }
        for t in listed {
            traces.push(json!({
                "trace_id": t.trace_id,
                "version": t.bundle.bundle_version,
                "error": t.errors > 0,
            }));
        }
    }
    Ok(obj(json!({
        "traces_on": true,
        "bundle_ids": bundle_ids,
        "q": {"bundle": bundle, "env": env},
        "versions": versions,
        "charts": charts,
        "traces": traces,
    })))
}

/// Production traces hold what customers sent (with content capture on):
/// when tokens are configured, only a signed-in viewer sees them, even with
/// `--public-reads`.
fn traces_need_session(s: &AppState, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    if s.tokens.is_empty() || s.session_principal(headers).is_some() {
        return None;
    }
    Some(to_sign_in(uri))
}

async fn production_page(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    q: Result<Query<ProductionForm>, QueryRejection>,
) -> Response {
    if let Some(r) = traces_need_session(&s, &headers, &uri) {
        return r;
    }
    let settings = s.trace_settings.clone();
    page(
        &s,
        &headers,
        &uri,
        Page::Production,
        "Production",
        "production",
        query(q).map(|q| ProductionForm {
            bundle: blank(q.bundle),
            env: blank(q.env),
            ..Default::default()
        }),
        move |_, q| match &settings {
            None => Ok(obj(json!({"traces_on": false}))),
            Some(t) => production_data(t, &q),
        },
    )
    .await
}

async fn production_compare(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    q: Result<Query<ProductionForm>, QueryRejection>,
) -> Response {
    if let Some(r) = traces_need_session(&s, &headers, &uri) {
        return r;
    }
    let settings = s.trace_settings.clone();
    page(
        &s,
        &headers,
        &uri,
        Page::Compare,
        "Compare versions",
        "production",
        query(q),
        move |_, q| {
            let settings = settings.ok_or_else(|| {
                ApiError::not_found("this server keeps no traces", "start it with a trace store")
            })?;
            let (Some(bundle), Some(a), Some(b)) = (blank(q.bundle), blank(q.a), blank(q.b)) else {
                return Err(ApiError::bad_request(
                    "a comparison needs bundle, a and b",
                    "follow the link on the Production page",
                ));
            };
            let env = blank(q.env);
            let f = |v: &str| releaseops_traces::Filter {
                bundle_id: Some(bundle.clone()),
                bundle_version: Some(v.to_string()),
                environment: env.clone(),
                ..Default::default()
            };
            let mut ts = settings.open().map_err(trace_error)?;
            let c = releaseops_traces::analytics::compare_stored(
                &mut ts,
                &f(&b),
                &f(&a),
                &[],
                &Default::default(),
            )
            .map_err(trace_error)?;
            let rows: Vec<String> = c
                .metrics
                .iter()
                .map(releaseops_traces::analytics::describe_change)
                .collect();
            Ok(obj(json!({
                "q": {"bundle": bundle, "a": a, "b": b},
                "comparison": c,
                "rows": rows,
            })))
        },
    )
    .await
}

async fn attribution_page(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    if let Some(r) = traces_need_session(&s, &headers, &uri) {
        return r;
    }
    let settings = s.trace_settings.clone();
    page(
        &s,
        &headers,
        &uri,
        Page::Attribution,
        "Page",
        "production",
        path(p).and_then(|id| {
            if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()) {
                Ok(id)
            } else {
                Err(ApiError::bad_request(
                    "that is not a trace id",
                    "the Production page lists traces",
                ))
            }
        }),
        move |ctx, id| {
            let mut ts = open_traces(settings.as_ref())?;
            let Some((_, spans)) = ts.trace(&id).map_err(trace_error)? else {
                return Err(ApiError::not_found(
                    format!("there is no trace '{id}'"),
                    "the Production page lists traces",
                ));
            };
            let (trace, tag) = attribution::trace_of_spans(&id, &spans);
            let Some((bid, version)) = tag else {
                return Err(ApiError::bad_request(
                    format!("trace '{id}' names no bundle"),
                    "its spans carry no releaseops.bundle.* attributes",
                ));
            };
            let text = attribution::bundle_text(ctx.store, &bid, &version)?;
            let a = releaseops_attribution::Index::new(&text).explain(&trace);
            let prompts: Vec<Value> = text
                .prompts
                .iter()
                .map(|p| {
                    let lines: Vec<Value> = p
                        .text
                        .lines()
                        .enumerate()
                        .map(|(i, l)| {
                            let hit = a.influences.iter().find(|inf| {
                                inf.artifact_ref == p.reference && inf.line == Some(i + 1)
                            });
                            json!({
                                "text": l,
                                "hit": hit.is_some(),
                                "effect": hit.map(|h| h.effect.as_str()),
                                "confidence": hit.map(|h| h.confidence),
                            })
                        })
                        .collect();
                    json!({"role": p.role, "reference": p.reference, "lines": lines})
                })
                .collect();
            Ok(obj(
                json!({"title": format!("Trace {id}"), "a": a, "prompts": prompts}),
            ))
        },
    )
    .await
}

// --- sign-in and actions ---------------------------------------------------

/// The request's own origin, as a browser would write it in `Origin`.
/// Whether `origin` (`https://name:port`) is this server: the request's own
/// `Host`, or a name it answers to (`--allow-host`, for a proxy in front).
fn own_origin(s: &AppState, headers: &HeaderMap, origin: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    let Some(host) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    own.as_deref() == Some(host) || s.allowed_hosts.iter().any(|a| a == host)
}

/// Refuses a form sent from another site: the browser's `Sec-Fetch-Site`
/// and `Origin` say where it came from (a missing header is a client that is
/// not a browser, which has no cookies to abuse).
fn same_origin(s: &AppState, headers: &HeaderMap) -> bool {
    let site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == "same-origin" || v == "none");
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|o| own_origin(s, headers, o));
    site_ok && origin_ok
}

/// The browser reached the page over HTTPS (directly, or through a proxy
/// that says so): the cookie is then `Secure` too.
fn over_https(headers: &HeaderMap) -> bool {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    h("origin").is_some_and(|o| o.starts_with("https://"))
        || h("x-forwarded-proto").is_some_and(|p| p == "https")
}

async fn form<T: DeserializeOwned>(s: &AppState, req: Request) -> ApiResult<(HeaderMap, T)> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(body, &parts.headers, s.body_timeout).await?;
    let v = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
        ApiError::bad_request(
            format!("the form is not what this page sends: {e}"),
            "send the form again from the page",
        )
    })?;
    Ok((parts.headers, v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NextQuery {
    next: Option<String>,
}

/// A local path to go to after signing in (never another site).
fn local_next(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from a URL (`/\t/evil` is
        // `//evil`, another site): printable ASCII only, no backslash.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\') =>
        {
            n.to_string()
        }
        _ => "/".into(),
    }
}

async fn signin_form(State(s): St, q: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = q.ok().and_then(|Query(q)| q.next);
    let v = Viewer { session: None };
    let mut c = base(&s, &v, "Sign in", "");
    c.insert("next".into(), json!(local_next(next.as_deref())));
    if s.tokens.is_empty() {
        return message(
            &s,
            &v,
            StatusCode::OK,
            "Sign-in is off",
            "this server was started with no tokens: anyone who can reach it reads, and nobody changes anything from here",
            Some("start it with `--tokens FILE` to sign in and act"),
            "/",
        );
    }
    html(&s, StatusCode::OK, Page::SignIn, c)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInForm {
    token: String,
    next: Option<String>,
}

async fn signin(State(s): St, req: Request) -> Response {
    let v = Viewer { session: None };
    if !same_origin(&s, req.headers()) {
        return message(
            &s,
            &v,
            StatusCode::FORBIDDEN,
            "Refused",
            "this sign-in was sent from another site",
            None,
            "/signin",
        );
    }
    let previous = session_id(req.headers());
    let secure = if over_https(req.headers()) {
        "; Secure"
    } else {
        ""
    };
    let (_, f): (_, SignInForm) = match form(&s, req).await {
        Ok(x) => x,
        Err(e) => return error_page(&s, &v, e),
    };
    let Some(principal) = s.tokens.lookup(f.token.trim()).cloned() else {
        let mut c = base(&s, &v, "Sign in", "");
        c.insert(
            "error".into(),
            json!("that token is not one this server knows"),
        );
        c.insert("next".into(), json!(local_next(f.next.as_deref())));
        return html(&s, StatusCode::UNAUTHORIZED, Page::SignIn, c);
    };
    if principal.role == Role::Ingest {
        return message(
            &s,
            &v,
            StatusCode::FORBIDDEN,
            "Refused",
            "an ingest token sends spans and nothing else: it cannot sign in",
            None,
            "/signin",
        );
    }
    // A new sign-in ends the browser's previous session.
    if let Some(old) = previous {
        s.sessions.remove(&old);
    }
    let Some((id, _)) = s.sessions.create(principal) else {
        return message(
            &s,
            &v,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Refused",
            "the system gave no randomness for a session id",
            None,
            "/signin",
        );
    };
    let mut r = see_other(&local_next(f.next.as_deref()));
    if let Ok(c) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_LIFETIME.as_secs()
    )) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrfForm {
    csrf: String,
}

async fn signout(State(s): St, req: Request) -> Response {
    let v = Viewer { session: None };
    let sid = session_id(req.headers());
    let ok = same_origin(&s, req.headers());
    let (_, f): (_, CsrfForm) = match form(&s, req).await {
        Ok(x) => x,
        Err(e) => return error_page(&s, &v, e),
    };
    if let Some(id) = sid
        && ok
        && s.sessions
            .get(&id)
            .is_some_and(|(_, c)| same_secret(&c, &f.csrf))
    {
        s.sessions.remove(&id);
    } else {
        // A sign-out from another site, or without this session's token,
        // ends nothing.
        return see_other("/");
    }
    let mut r = see_other("/");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "releaseops_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

/// What the dashboard can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Promote,
    Approve,
    Reject,
    Rollback,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "promote" => Action::Promote,
            "approve" => Action::Approve,
            "reject" => Action::Reject,
            "rollback" => Action::Rollback,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Rollback => "rollback",
        }
    }

    fn role(self) -> Role {
        match self {
            Action::Promote | Action::Rollback => Role::Deployer,
            Action::Approve | Action::Reject => Role::Approver,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionForm {
    csrf: Option<String>,
    bundle: Option<String>,
    version: Option<String>,
    env: Option<String>,
    reason: Option<String>,
    skip_gates: Option<String>,
}

fn need(v: &Option<String>, name: &str) -> ApiResult<String> {
    blank(v.clone()).ok_or_else(|| {
        ApiError::bad_request(
            format!("the form has no {name}"),
            "start the action from the board",
        )
    })
}

/// The signed-in viewer who may do `a`, or the page that says why not.
fn actor_for(
    s: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    a: Action,
) -> Result<Viewer, Box<Response>> {
    if s.tokens.is_empty() {
        let v = Viewer { session: None };
        return Err(Box::new(message(
            s,
            &v,
            StatusCode::FORBIDDEN,
            "Changes are off",
            "this server was started with no tokens: nothing can be changed from here",
            Some("start it with `--tokens FILE`"),
            "/",
        )));
    }
    let v = viewer(s, headers, uri)?;
    let Some(p) = v.principal() else {
        return Err(Box::new(to_sign_in(uri)));
    };
    if !p.role.allows(a.role()) {
        let text = format!(
            "the token of {} has the role {}; to {} needs {} or admin",
            p.owner,
            p.role,
            a.as_str(),
            a.role()
        );
        return Err(Box::new(message(
            s,
            &v,
            StatusCode::FORBIDDEN,
            "Not allowed",
            &text,
            None,
            "/",
        )));
    }
    Ok(v)
}

async fn action_form(
    State(s): St,
    headers: HeaderMap,
    uri: Uri,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<ActionForm>, QueryRejection>,
) -> Response {
    let Some(a) = p.ok().and_then(|Path(a)| Action::parse(&a)) else {
        return not_found().await;
    };
    let v = match actor_for(&s, &headers, &uri, a) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return error_page(&s, &v, e),
    };
    let r = async {
        let bundle = need(&q.bundle, "bundle")?;
        names::validate_bundle_id(&bundle)?;
        let env = need(&q.env, "environment")?;
        env_name(&env)?;
        let version = match a {
            Action::Rollback => None,
            _ => {
                let v = need(&q.version, "version")?;
                names::validate_version(&v)?;
                Some(v)
            }
        };
        let mut fields = serde_json::Map::new();
        fields.insert("bundle".into(), json!(bundle));
        fields.insert("env".into(), json!(env));
        if let Some(v) = &version {
            fields.insert("version".into(), json!(v));
        }
        let what = match &version {
            Some(v) => format!("{bundle} {v}"),
            None => bundle.clone(),
        };
        let (heading, button, reason_label, required, class) = match a {
            Action::Promote => (
                format!("Promote {what} to {env}"),
                "Promote",
                "Reason",
                false,
                "",
            ),
            Action::Approve => (
                format!("Approve {what} for {env}"),
                "Approve",
                "Comment",
                false,
                "",
            ),
            Action::Reject => (format!("Reject {what}"), "Reject", "Reason", true, "danger"),
            Action::Rollback => (
                format!("Roll back {what} in {env}"),
                "Roll back",
                "Reason",
                false,
                "danger",
            ),
        };
        let dry_run = if a == Action::Promote {
            let owner = v.principal().map(|p| p.owner.clone()).unwrap_or_default();
            let (id, ver, e) = (
                bundle.clone(),
                version.clone().unwrap_or_default(),
                env.clone(),
            );
            // A dry run reads: it is not a change in flight, and it leaves
            // the loader's cache alone.
            Some(
                with_ctx(&s, owner, move |ctx| {
                    Ok(release::promote(
                        ctx,
                        &PromoteRequest {
                            id,
                            version: ver,
                            env: e,
                            reason: None,
                            dry_run: true,
                            skip_gates: false,
                        },
                    )?)
                })
                .await?,
            )
        } else {
            None
        };
        let mut c = base(&s, &v, &heading, "board");
        c.insert("heading".into(), json!(heading));
        c.insert("button".into(), json!(button));
        c.insert("button_class".into(), json!(class));
        c.insert("reason_label".into(), json!(reason_label));
        c.insert("reason_required".into(), json!(required));
        c.insert("action".into(), json!(format!("/ui/{}", a.as_str())));
        c.insert("fields".into(), Value::Object(fields));
        c.insert("dry_run".into(), json!(dry_run));
        Ok::<_, ApiError>(html(&s, StatusCode::OK, Page::Confirm, c))
    }
    .await;
    r.unwrap_or_else(|e| error_page(&s, &v, e))
}

async fn action(
    State(s): St,
    uri: Uri,
    p: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let Some(a) = p.ok().and_then(|Path(a)| Action::parse(&a)) else {
        return not_found().await;
    };
    let headers = req.headers().clone();
    let v = match actor_for(&s, &headers, &uri, a) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !same_origin(&s, &headers) {
        return message(
            &s,
            &v,
            StatusCode::FORBIDDEN,
            "Refused",
            "this form was sent from another site",
            None,
            "/",
        );
    }
    let (_, f): (_, ActionForm) = match form(&s, req).await {
        Ok(x) => x,
        Err(e) => return error_page(&s, &v, e),
    };
    let csrf_ok =
        matches!((v.csrf(), f.csrf.as_deref()), (Some(want), Some(got)) if same_secret(want, got));
    if !csrf_ok {
        return message(
            &s,
            &v,
            StatusCode::FORBIDDEN,
            "Refused",
            "this form's CSRF token is missing or is not this session's",
            Some("open the page again and send the form from it"),
            "/",
        );
    }
    let Some(who) = v.principal().cloned() else {
        return see_other("/signin");
    };
    let r = async {
        let bundle = need(&f.bundle, "bundle")?;
        let env = need(&f.env, "environment")?;
        let reason = blank(f.reason.clone());
        let skip = f.skip_gates.as_deref().is_some_and(|x| x == "1");
        if skip && who.role != Role::Admin {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("overriding gates needs the role admin; the token of {} has {}", who.owner, who.role),
                "promote through the gates, or ask an admin",
            ));
        }
        let owner = who.owner.clone();
        let text = match a {
            Action::Promote => {
                let version = need(&f.version, "version")?;
                let (out, notices) = write(&s, owner, move |ctx| {
                    let out = release::promote(
                        ctx,
                        &PromoteRequest {
                            id: bundle,
                            version,
                            env,
                            reason,
                            dry_run: false,
                            skip_gates: skip,
                        },
                    )?;
                    let notices = releaseops_core::notify::of_promotion(&out, ctx);
                    Ok((out, notices))
                })
                .await?;
                s.notifier.send(&notices);
                if !out.promoted && !out.unchanged {
                    return Err(ApiError::new(
                        ErrorKind::Blocked,
                        format!(
                            "{} {} -> {} is blocked by {}",
                            out.id,
                            out.version,
                            out.env,
                            releaseops_format::history::Gate::join(&out.blocked_by, ", ")
                        ),
                        "each gate's reason is on the promote page; approve, wait or run the evaluation, then promote again",
                    ));
                }
                if out.unchanged {
                    format!("{} {} was live in {} already: nothing changed", out.id, out.version, out.env)
                } else {
                    format!(
                        "{} {} is live in {}{}",
                        out.id,
                        out.version,
                        out.env,
                        if out.overridden { " (gates overridden)" } else { "" }
                    )
                }
            }
            Action::Approve => {
                let version = need(&f.version, "version")?;
                let (b, e, ver) = (bundle.clone(), env.clone(), version.clone());
                write(&s, owner.clone(), move |ctx| release::approve(ctx, &b, &ver, &e, reason, None)).await?;
                format!("{bundle} {version} is approved for {env} by {owner}")
            }
            Action::Reject => {
                let version = need(&f.version, "version")?;
                let reason = reason.ok_or_else(|| {
                    ApiError::bad_request("a rejection needs a reason", "say why in the reason field")
                })?;
                let (b, e, ver) = (bundle.clone(), env.clone(), version.clone());
                write(&s, owner.clone(), move |ctx| release::reject(ctx, &b, &ver, Some(&e), &reason)).await?;
                format!("{bundle} {version} is rejected by {owner}")
            }
            Action::Rollback => {
                let (b, e) = (bundle.clone(), env.clone());
                let (out, notices) = write(&s, owner, move |ctx| {
                    let out = release::rollback(
                        ctx,
                        &RollbackRequest {
                            env: e,
                            id: b,
                            steps: None,
                            to: None,
                            reason,
                        },
                    )?;
                    let notices = releaseops_core::notify::of_rollback(&out, ctx);
                    Ok((out, notices))
                })
                .await?;
                s.notifier.send(&notices);
                format!("{bundle} in {env} is back on {} (was {})", out.to, out.from)
            }
        };
        Ok(text)
    }
    .await;
    match r {
        Ok(text) => message(&s, &v, StatusCode::OK, "Done", &text, None, "/"),
        Err(e) => error_page(&s, &v, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    const TOKEN: &str = "tok-approver-0123456789abcdef01234567";

    fn app(tokens: bool) -> (tempfile::TempDir, Router) {
        let dir = tempfile::tempdir().unwrap();
        Store::init(dir.path()).unwrap();
        let mut opts = crate::Options::new(dir.path().to_path_buf());
        if tokens {
            opts.tokens =
                crate::Tokens::from_env_value(&format!("approver:Pat Approver:{TOKEN}")).unwrap();
        }
        let state = crate::state_for_tests(&opts);
        (dir, super::super::router(state))
    }

    async fn send(app: &Router, req: axum::http::Request<Body>) -> (StatusCode, HeaderMap, String) {
        let resp = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 22).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    fn get(path: &str, cookie: Option<&str>) -> axum::http::Request<Body> {
        let mut b = axum::http::Request::get(path).header("host", "localhost");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(Body::empty()).unwrap()
    }

    fn post(path: &str, cookie: Option<&str>, body: &str) -> axum::http::Request<Body> {
        let mut b = axum::http::Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(Body::from(body.to_string())).unwrap()
    }

    #[tokio::test]
    async fn the_board_of_a_new_store_renders_under_the_csp() {
        let (_d, app) = app(false);
        let (status, headers, html) = send(&app, get("/", None)).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert_eq!(headers["content-security-policy"], releaseops_web::CSP);
        assert_eq!(headers["cache-control"], "no-store");
        for env in ["dev", "staging", "prod"] {
            assert!(html.contains(&format!("id=\"env-{env}\"")), "{html}");
        }
        assert!(html.contains("Nothing runs here yet."));
        // Reads are open and no token is configured: no sign-in, no action.
        assert!(
            !html.contains("/signin") && !html.contains("/ui/"),
            "{html}"
        );
        let (status, _, fragment) = send(&app, get("/fragments/board", None)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!fragment.contains("<html") && fragment.contains("env-dev"));
    }

    #[tokio::test]
    async fn every_view_answers_and_bad_names_get_a_page_that_says_so() {
        let (_d, app) = app(false);
        for path in [
            "/bundles",
            "/history",
            "/evals",
            "/decisions",
            "/production",
        ] {
            let (status, _, html) = send(&app, get(path, None)).await;
            assert_eq!(status, StatusCode::OK, "{path}: {html}");
        }
        let (status, _, html) = send(&app, get("/bundles/%3Cscript%3E/1.0.0", None)).await;
        assert!(status.is_client_error(), "{status}");
        assert!(!html.contains("<script>"), "{html}");
        let (status, _, html) = send(&app, get("/history?at=yesterday", None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
        assert!(html.contains("RFC 3339"), "{html}");
        let (status, _, _) = send(&app, get("/evals/..%2Fx", None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Changes need tokens: none configured, none taken.
        let (status, _, html) =
            send(&app, get("/ui/promote?bundle=a&version=1&env=dev", None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(html.contains("no tokens"), "{html}");
    }

    #[tokio::test]
    async fn a_token_signs_in_to_a_session_that_reads_but_never_writes_the_api() {
        let (_d, app) = app(true);
        let (status, headers, _) = send(&app, get("/history?env=dev", None)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers["location"], "/signin?next=/history%3Fenv%3Ddev");
        // The sign-in page's next is a local path only.
        let (_, _, html) = send(&app, get("/signin?next=//evil.test/x", None)).await;
        assert!(html.contains("name=\"next\" value=\"&#x2f;\""), "{html}");
        let (status, headers, _) = send(
            &app,
            post("/signin", None, &format!("token={TOKEN}&next=%2Fhistory")),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers["location"], "/history");
        let cookie = headers["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let session = cookie.split(';').next().unwrap().to_string();
        let (status, _, html) = send(&app, get("/", Some(&session))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Signed in as <strong>Pat Approver</strong>"),
            "{html}"
        );
        // The session reads the API (the live board's event stream needs it)...
        let (status, _, _) = send(&app, get("/v1/environments", Some(&session))).await;
        assert_eq!(status, StatusCode::OK);
        // ...but no API write takes it.
        let req = axum::http::Request::post("/v1/approve")
            .header("host", "localhost")
            .header("cookie", &session)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"bundle_id":"a","version":"1.0.0","env":"dev"}"#,
            ))
            .unwrap();
        let (status, _, _) = send(&app, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // A made-up session id is no session.
        let (status, _, _) = send(
            &app,
            get("/", Some(&format!("{COOKIE}={}", "ab".repeat(32)))),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        // Signing out without the CSRF token keeps the session; with it, ends it.
        let (status, _, _) = send(&app, post("/signout", Some(&session), "csrf=nope")).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let (status, _, html) = send(&app, get("/", Some(&session))).await;
        assert_eq!(status, StatusCode::OK);
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap()
            .to_string();
        send(
            &app,
            post("/signout", Some(&session), &format!("csrf={csrf}")),
        )
        .await;
        let (status, _, _) = send(&app, get("/", Some(&session))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }

    #[tokio::test]
    async fn public_reads_show_the_board_but_not_the_traces() {
        let dir = tempfile::tempdir().unwrap();
        Store::init(dir.path()).unwrap();
        let mut opts = crate::Options::new(dir.path().to_path_buf());
        opts.tokens =
            crate::Tokens::from_env_value(&format!("approver:Pat Approver:{TOKEN}")).unwrap();
        opts.public_reads = true;
        let app = super::super::router(crate::state_for_tests(&opts));
        let (status, _, _) = send(&app, get("/history", None)).await;
        assert_eq!(status, StatusCode::OK);
        for path in [
            "/production",
            "/attribution/abc",
            "/production/compare?bundle=a&a=1&b=2",
        ] {
            let (status, headers, _) = send(&app, get(path, None)).await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
            assert!(headers["location"].to_str().unwrap().starts_with("/signin"));
        }
    }

    #[tokio::test]
    async fn assets_are_served_for_good_and_nothing_else_is() {
        let (_d, app) = app(false);
        let pages = releaseops_web::Pages::new();
        for a in pages.assets() {
            let (status, headers, body) = send(&app, get(&a.path, None)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers["content-type"], a.content_type);
            assert!(
                headers["cache-control"]
                    .to_str()
                    .unwrap()
                    .contains("immutable")
            );
            assert_eq!(body.as_bytes(), a.body);
        }
        let (status, _, _) = send(&app, get("/assets/..%2F..%2Fetc%2Fpasswd", None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_next(Some("/history?env=prod")), "/history?env=prod");
        for bad in [
            "//evil.test",
            "https://evil.test",
            "/\\evil.test",
            "evil",
            "/x\r\nSet-Cookie: a=b",
            "/\t/evil.test",
            "/ /evil.test",
            "/\n/evil.test",
        ] {
            assert_eq!(local_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_next(None), "/");
    }
}
