//! The releaseops HTTP API (`releaseops serve`), so services in any language
//! load bundles and tools drive releases.
//!
//! - Reads answer JSON, the same documents the CLI prints with `--json`.
//! - A resolved bundle (`GET /v1/resolve/support-agent@prod`) is served from
//!   the runtime loader's verified cache, tagged `"VERSION@BUNDLE_HASH"`;
//!   `If-None-Match` gets a bodyless 304. `GET /v1/watch/{ref}` holds the
//!   request until the pointer moves; `GET /v1/events` streams every move.
//! - Writes (promote, approve, reject, rollback) run the very same
//!   transactions as the CLI, as the token's owner. They are off unless
//!   tokens are configured.
//! - The server binds loopback by default, caps request bodies, validates
//!   every name before it touches the filesystem, and on shutdown finishes
//!   the transactions in flight.
//!
//! Nothing here prints; the CLI says what is happening.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod auth;
mod error;
mod handlers;
mod ingest;
pub mod watch;

use releaseops_core::ErrorKind;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use jiff::Timestamp;
use releaseops_runtime::{LoadedBundle, RuntimeLoader};
use tokio::sync::{Notify, broadcast};

pub use auth::{Principal, Role, Tokens};
pub use error::ApiError;
use error::ApiResult;
pub use handlers::{Method, routes};

/// The largest request body accepted (write requests are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The largest OTLP export accepted as sent (compressed or not); a batch of
/// 500 spans is a few hundred kilobytes.
pub const MAX_TRACE_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The largest OTLP export accepted once decompressed (a gzip bomb stops
/// here). Decoding can take several times this in memory, so at most
/// [`MAX_TRACE_DECODES`] run at once.
pub const MAX_TRACE_DECODED_BYTES: usize = 8 * 1024 * 1024;
/// Exports decoded at once; more wait their turn.
pub const MAX_TRACE_DECODES: usize = 2;
/// The longest `ID@ENV` / `ID==VERSION` accepted (each name is at most 128).
pub const MAX_REFERENCE_LEN: usize = 260;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The repository root holding `.releaseops/`.
    pub root: PathBuf,
    pub tokens: Tokens,
    /// Reads need no token even when tokens are configured.
    pub public_reads: bool,
    /// Commit each change to git, as the CLI does.
    pub git_commit: bool,
    /// A fixed clock (RELEASEOPS_NOW); records say it was simulated.
    pub clock: Option<Timestamp>,
    /// How often environment files are checked for changes made elsewhere.
    pub watch_interval: Duration,
    /// How long shutdown waits for open requests before closing them (the
    /// transactions in flight are always finished).
    pub shutdown_grace: Duration,
    /// Connections served at once; beyond, a connection is answered 503 and
    /// closed, so idle or slow clients cannot take every file descriptor.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, and then its
    /// body, and how long a kept-alive connection may sit idle (slowloris,
    /// idle floods).
    pub header_timeout: Duration,
    /// Host names (`name:port` or `name`) a request may be addressed to when
    /// reads need no token, besides the bound address and `localhost`: any
    /// other is refused, so a page elsewhere cannot rebind its DNS name to
    /// this server and read it.
    pub allowed_hosts: Vec<String>,
    /// The trace store `POST /v1/traces` writes to; None: the server keeps
    /// no traces (and says so to exporters).
    pub traces: Option<releaseops_traces::Settings>,
}

/// Connections served at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl Options {
    pub fn new(root: PathBuf) -> Options {
        Options {
            root,
            tokens: Tokens::default(),
            public_reads: false,
            git_commit: true,
            clock: None,
            watch_interval: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(10),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            allowed_hosts: Vec::new(),
            traces: None,
        }
    }
}

/// Refuses to expose a store to the network without tokens: anyone who can
/// reach the port would read every prompt and policy.
pub fn check_bind(addr: &SocketAddr, opts: &Options) -> Result<(), String> {
    if addr.ip().is_loopback() || !opts.tokens.is_empty() || opts.public_reads {
        return Ok(());
    }
    Err(format!(
        "serving on {addr} with no tokens would let anyone who can reach it read every prompt and policy"
    ))
}

/// What happened at shutdown.
#[derive(Debug, Clone, Default)]
pub struct Stopped {
    /// Transactions that were running when shutdown began, and finished.
    pub finished_in_flight: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] releaseops_store::StoreError),
    #[error(transparent)]
    Load(#[from] releaseops_runtime::LoadError),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A count of things running now (transactions, so shutdown can wait for
/// them; held watches, for `/healthz`).
#[derive(Clone, Default)]
struct Counter(Arc<(AtomicUsize, Notify)>);

struct Counted(Counter);

impl Counter {
    fn enter(&self) -> Counted {
        self.0.0.fetch_add(1, Ordering::SeqCst);
        Counted(self.clone())
    }

    fn count(&self) -> usize {
        self.0.0.load(Ordering::SeqCst)
    }

    /// Counts one more, unless there are `limit` already.
    fn try_enter(&self, limit: usize) -> Option<Counted> {
        if self.0.0.fetch_add(1, Ordering::SeqCst) >= limit {
            drop(Counted(self.clone()));
            return None;
        }
        Some(Counted(self.clone()))
    }

    async fn idle(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.0.0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.0.1.notify_waiters();
        }
    }
}

/// A resolved bundle's answer, rendered once per (id, version, environment).
#[derive(Clone)]
struct Rendered {
    etag: HeaderValue,
    body: Bytes,
}

pub(crate) struct AppState {
    root: PathBuf,
    loader: RuntimeLoader,
    /// id -> version -> environment ("" when pinned) -> rendered answer.
    rendered: RwLock<HashMap<String, RenderedVersions>>,
    tokens: Tokens,
    public_reads: bool,
    git_commit: bool,
    clock: Option<Timestamp>,
    snapshots: tokio::sync::watch::Receiver<Arc<watch::Snapshot>>,
    moves: broadcast::Sender<watch::Move>,
    wake: Mutex<std::sync::mpsc::Sender<()>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    inflight: Counter,
    watching: Counter,
    /// Open event streams (`/v1/events`).
    streams: Counter,
    /// Open connections.
    connections: Counter,
    /// Event streams and watches open at once, and their cap (half the
    /// connections: long-lived requests never take every slot).
    long_lived: Counter,
    max_long_lived: usize,
    /// How long a client has to send a request's body.
    body_timeout: Duration,
    /// `Host` values accepted when reads are open (lowercase).
    allowed_hosts: Vec<String>,
    openapi: Bytes,
    /// The trace writer, when there is a trace store.
    ingest: Option<ingest::Ingest>,
    /// Why there is none, when opening it failed.
    ingest_error: Option<String>,
    /// Exports being decoded (bounds the memory decoding takes).
    decoding: Arc<tokio::sync::Semaphore>,
    /// The dashboard's templates and assets.
    pages: releaseops_web::Pages,
    /// Browsers signed in to the dashboard.
    sessions: handlers::Sessions,
    /// Where the dashboard reads production traces from.
    trace_settings: Option<releaseops_traces::Settings>,
    /// The webhooks of `notify:` (read when the server started).
    notifier: releaseops_notify::Notifier,
    /// The board's last pages, by what they were computed from.
    boards: handlers::BoardCache,
    /// When the team's remote was last fetched on request (`POST /v1/sync`).
    synced_at: Mutex<Option<std::time::Instant>>,
}

/// version -> environment ("" when pinned) -> rendered answer.
type RenderedVersions = HashMap<String, HashMap<String, Rendered>>;

/// At most this many rendered answers are kept (a store has far fewer).
const RENDERED_MAX: usize = 4096;

impl AppState {
    /// Who may do what `needed` guards. Reads are open when no tokens are
    /// configured (or with `public_reads`); writes never are.
    /// Reads need no token: anyone who can reach the server may read.
    fn reads_open(&self) -> bool {
        self.tokens.is_empty() || self.public_reads
    }

    fn authorize(&self, headers: &HeaderMap, needed: Role) -> ApiResult<Option<Principal>> {
        if needed == Role::Viewer && self.reads_open() {
            return Ok(None);
        }
        if self.tokens.is_empty() {
            return Err(ApiError::new(
                ErrorKind::WritesDisabled,
                "write endpoints are off: this server was started with no tokens",
                "configure tokens (`releaseops serve --tokens FILE` or RELEASEOPS_API_TOKENS) and restart it",
            ));
        }
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty());
        // A dashboard session reads (its live board listens to the event
        // stream); changes through the API always need a token.
        if token.is_none()
            && needed == Role::Viewer
            && let Some(p) = self.session_principal(headers)
        {
            return Ok(Some(p));
        }
        let principal = token
            .and_then(|t| self.tokens.lookup(t))
            .ok_or_else(ApiError::unauthorized)?;
        if !principal.role.allows(needed) {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "the token of {} has the role {}; this needs {needed}",
                    principal.owner, principal.role
                ),
                format!("use a token with the role {needed} or admin"),
            ));
        }
        Ok(Some(principal.clone()))
    }

    /// The bundle `reference` names, from memory when it can be, otherwise
    /// loaded (and verified) on a blocking thread.
    async fn bundle(&self, reference: &str) -> ApiResult<Arc<LoadedBundle>> {
        if reference.len() > MAX_REFERENCE_LEN {
            return Err(ApiError::bad_request(
                format!("the reference is {} bytes long", reference.len()),
                "write ID@ENV or ID==VERSION; names are at most 128 characters",
            ));
        }
        if let Some(b) = self.loader.load_cached(reference) {
            return Ok(b);
        }
        let loader = self.loader.clone();
        let reference = reference.to_string();
        tokio::task::spawn_blocking(move || loader.load(&reference))
            .await
            .map_err(|e| ApiError::internal(format!("the load failed: {e}")))?
            .map_err(|e| self.public(e.into()))
    }

    /// The answer for `b`, rendered once per (id, version, environment).
    /// The ETag is `"VERSION@BUNDLE_HASH"`: the hash covers the content, the
    /// version tells apart two versions with the same content.
    fn rendered(&self, b: &LoadedBundle) -> Rendered {
        let env = b.environment().unwrap_or("");
        if let Some(r) = self
            .rendered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(b.id())
            .and_then(|m| m.get(b.version()))
            .and_then(|m| m.get(env))
        {
            return r.clone();
        }
        let body = serde_json::to_vec(&b.to_json()).unwrap_or_default();
        let etag = HeaderValue::from_str(&format!("\"{}@{}\"", b.version(), b.bundle_hash()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
        let r = Rendered {
            etag,
            body: Bytes::from(body),
        };
        let mut all = self.rendered.write().unwrap_or_else(|p| p.into_inner());
        let n: usize = all.values().flat_map(|m| m.values()).map(|m| m.len()).sum();
        if n >= RENDERED_MAX {
            all.clear();
        }
        all.entry(b.id().to_string())
            .or_default()
            .entry(b.version().to_string())
            .or_default()
            .insert(env.to_string(), r.clone());
        r
    }

    fn now(&self) -> (Timestamp, bool) {
        match self.clock {
            Some(t) => (t, true),
            None => (
                releaseops_format::time::truncate_micros(Timestamp::now()),
                false,
            ),
        }
    }

    /// `e` as clients see it: paths inside the store are relative to the
    /// repository (nothing about this machine's layout leaks), and every
    /// error says what to do.
    fn public(&self, mut e: ApiError) -> ApiError {
        let root = format!("{}/", self.root.display());
        e.message = e.message.replace(&root, "");
        if let Some(h) = &mut e.hint {
            *h = h.replace(&root, "");
        }
        if e.hint.is_none() {
            e.hint = Some(
                match e.kind {
                    ErrorKind::NotFound => "GET /v1/environments shows what runs where; GET /v1/bundles lists every version",
                    ErrorKind::VerifyFailed | ErrorKind::Corrupt | ErrorKind::InvalidFile => {
                        "the store is damaged: `releaseops bundle verify` and `releaseops history verify` name what; restore it from git"
                    }
                    ErrorKind::Locked => "another change holds the store; retry shortly",
                    _ => "retry; if it persists, run the same operation with the CLI for details",
                }
                .into(),
            );
        }
        e
    }

    /// Whether a `POST /v1/sync` should fetch (not within a second of the last).
    fn sync_due(&self) -> bool {
        let mut at = self.synced_at.lock().unwrap_or_else(|p| p.into_inner());
        let due = at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if due {
            *at = Some(std::time::Instant::now());
        }
        due
    }

    fn wake_watcher(&self) {
        self.loader.invalidate();
        let _ = self.wake.lock().unwrap_or_else(|p| p.into_inner()).send(());
    }
}

/// The state of a server that serves no socket, for tests of the router.
#[cfg(test)]
pub(crate) fn state_for_tests(opts: &Options) -> Arc<AppState> {
    let (_, snapshots) = tokio::sync::watch::channel(Arc::new(watch::Snapshot {
        seq: 0,
        environments: Default::default(),
    }));
    let (moves, _) = broadcast::channel(16);
    let (wake, _) = std::sync::mpsc::channel();
    let (_, shutdown) = tokio::sync::watch::channel(false);
    Arc::new(AppState {
        root: opts.root.clone(),
        loader: RuntimeLoader::new(&opts.root).expect("a store"),
        rendered: RwLock::default(),
        tokens: opts.tokens.clone(),
        public_reads: opts.public_reads,
        git_commit: false,
        clock: opts.clock,
        snapshots,
        moves,
        wake: Mutex::new(wake),
        shutdown,
        inflight: Counter::default(),
        watching: Counter::default(),
        streams: Counter::default(),
        connections: Counter::default(),
        long_lived: Counter::default(),
        max_long_lived: 8,
        body_timeout: Duration::from_secs(5),
        allowed_hosts: vec!["localhost".into()],
        openapi: handlers::openapi_document(),
        ingest: None,
        ingest_error: None,
        decoding: Arc::new(tokio::sync::Semaphore::new(MAX_TRACE_DECODES)),
        pages: releaseops_web::Pages::new(),
        sessions: handlers::Sessions::default(),
        trace_settings: None,
        notifier: releaseops_notify::Notifier::new(&[], |_| None),
        boards: handlers::BoardCache::default(),
        synced_at: Mutex::default(),
    })
}

/// Serves the API on `listener` until `shutdown` resolves, then stops
/// taking requests, ends watches, gives open requests `shutdown_grace` to
/// finish, and waits for every transaction in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Stopped, ServeError> {
    let loader = RuntimeLoader::new(&opts.root)?;
    let watch::Watching {
        watcher,
        snapshots,
        moves,
    } = watch::start(opts.root.clone(), opts.watch_interval, loader.clone())?;
    // inotify where it works, so a change is seen at once; the watcher's
    // polling covers filesystems where it does not.
    let waker = watcher.waker();
    let file_watch = loader.watch_with(move || {
        let _ = waker.send(());
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // A trace store that cannot be opened leaves the rest of the API
    // serving; exporters are told why (503).
    // (Opened on a blocking thread: the PostgreSQL client runs its own runtime.)
    let (ingest, ingest_error) = match opts.traces.clone() {
        Some(settings) => {
            match tokio::task::spawn_blocking(move || ingest::Ingest::start(settings)).await {
                Ok(Ok(i)) => (Some(i), None),
                Ok(Err(e)) => (None, Some(e)),
                Err(e) => (
                    None,
                    Some(format!("the trace store could not be opened: {e}")),
                ),
            }
        }
        None => (None, None),
    };
    let state = Arc::new(AppState {
        root: opts.root.clone(),
        loader,
        rendered: RwLock::default(),
        tokens: opts.tokens.clone(),
        public_reads: opts.public_reads,
        git_commit: opts.git_commit,
        clock: opts.clock,
        snapshots,
        moves,
        wake: Mutex::new(watcher.waker()),
        shutdown: stop_rx.clone(),
        inflight: Counter::default(),
        watching: Counter::default(),
        streams: Counter::default(),
        connections: Counter::default(),
        long_lived: Counter::default(),
        max_long_lived: (opts.max_connections / 2).max(1),
        body_timeout: opts.header_timeout,
        allowed_hosts: host_names(listener.local_addr()?, &opts.allowed_hosts),
        openapi: handlers::openapi_document(),
        ingest,
        ingest_error,
        decoding: Arc::new(tokio::sync::Semaphore::new(MAX_TRACE_DECODES)),
        pages: releaseops_web::Pages::new(),
        sessions: handlers::Sessions::default(),
        trace_settings: opts.traces.clone(),
        notifier: releaseops_notify::Notifier::new(
            &releaseops_store::Store::open(&opts.root)?.config().notify,
            |v| std::env::var(v).ok(),
        ),
        boards: handlers::BoardCache::default(),
        synced_at: Mutex::default(),
    });
    // With sync on, others' changes come in from the remote every
    // `sync.poll_seconds` (and at once on `POST /v1/sync`).
    let _poller = SyncPoller::start(&opts.root, state.clone());
    let inflight = state.inflight.clone();
    let connections = state.connections.clone();
    let notifying = state.clone();
    let app = handlers::router(state);
    let limit = Arc::new(tokio::sync::Semaphore::new(opts.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .keep_alive(true);
    let mut tasks = tokio::task::JoinSet::new();
    let mut stopping = stop_rx.clone();
    let at_stop = inflight.clone();
    let finished_in_flight;
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => {
                finished_in_flight = at_stop.count();
                let _ = stop_tx.send(true);
                break;
            }
            a = listener.accept() => match a {
                Ok(a) => a,
                // Out of file descriptors, say: wait, never stop serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tasks.spawn(refuse_busy(stream));
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        let counted = connections.enter();
        tasks.spawn(async move {
            let _permit = permit;
            let _counted = counted;
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    // No new connections from here; open requests get the grace period,
    // then they are closed.
    drop(listener);
    let _ = stopping.wait_for(|s| *s).await;
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(opts.shutdown_grace, drained)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    inflight.idle().await;
    drop(file_watch);
    drop(watcher);
    // The notices of the last changes go out before the process ends.
    let _ = tokio::task::spawn_blocking(move || {
        notifying.notifier.flush(Duration::from_secs(5));
    })
    .await;
    Ok(Stopped { finished_in_flight })
}

/// One connection too many: a 503 with `Retry-After`, then closed.
async fn refuse_busy(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = r#"{"error":{"kind":"busy","message":"the server has as many connections open as it serves","hint":"retry in a moment"}}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// The `Host` values a server bound to `addr` answers when reads are open.
fn host_names(addr: SocketAddr, extra: &[String]) -> Vec<String> {
    let port = addr.port();
    let mut out = vec![
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]:{port}"),
            ip => format!("{ip}:{port}"),
        },
    ];
    for h in extra {
        let h = h.trim().to_ascii_lowercase();
        if h.contains(':') && !h.ends_with(']') {
            out.push(h);
        } else {
            out.push(format!("{h}:{port}"));
        }
    }
    out
}

/// Fetches the team's remote at `sync.poll_seconds` while the server runs.
struct SyncPoller {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SyncPoller {
    fn start(root: &std::path::Path, state: Arc<AppState>) -> Option<SyncPoller> {
        let every = releaseops_store::Store::open(root)
            .ok()?
            .config()
            .sync
            .as_ref()?
            .poll();
        let root = root.to_path_buf();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every)
            {
                // A remote out of reach now is tried again at the next tick;
                // the server goes on serving what its clone holds.
                if let Ok(store) = releaseops_store::Store::open(&root)
                    && store.pull_latest().is_ok()
                {
                    state.wake_watcher();
                }
            }
        });
        Some(SyncPoller {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SyncPoller {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
