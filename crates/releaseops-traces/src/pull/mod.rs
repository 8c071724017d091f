//! `releaseops traces pull langfuse|langsmith|phoenix`: spans from an
//! observability platform's API into the store.
//!
//! A pull covers a time window of start times, `[since, now)`, page by
//! page. Each page is stored in one transaction together with the pull's
//! position (the cursor, named by platform, address and project), so a
//! pull that stops half-way resumes where it stopped, and a pull that
//! finished makes the next one incremental: it asks only for what started
//! after the covered window (less an overlap for late arrivals), and for
//! what lies before it when `--since` reaches further back. Spans are
//! stored once, so pulling again is idempotent. A record that has not
//! finished yet (no end time) is not stored; the covered window stops
//! before it, so the next pull takes it once it has ended (unless it has
//! run for more than a day: its client is taken to have died). A window
//! in which a record was refused is not counted as covered at all. A
//! window is asked for widened to the server's precision (Langfuse keeps
//! milliseconds), and covered only as far as asked for in nanoseconds.
//!
//! A pull that fails half-way is not undone: what it stored is whole
//! pages of finished spans with the position after them, each true on its
//! own, and undoing them would make a failure at page 90,000 throw away
//! the 89,999 before it. The error says how much was stored, and the next
//! pull carries on from there.
//!
//! The HTTP side: 429, 408 and 5xx answers and dropped connections are
//! retried with exponential backoff and jitter, honouring `Retry-After`
//! (bounded, so a server cannot park the pull); redirects are refused
//! (credentials would follow them); a page is read up to a size limit.
//! A server that repeats a cursor, pages without end or answers something
//! that is not its API's shape is an error naming what it did. Credentials
//! travel in headers only and are removed from every message, including a
//! server's echo of them.

mod langfuse;
mod langsmith;
mod phoenix;

use std::io::Read;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::span::{Fields, ReadOptions, Rejected, Source, Span};
use crate::store::{Stored, TraceStore};
use crate::{TraceError, redact};

/// The platforms a pull reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Langfuse,
    Langsmith,
    Phoenix,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Langfuse, Platform::Langsmith, Platform::Phoenix];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Langfuse => "langfuse",
            Platform::Langsmith => "langsmith",
            Platform::Phoenix => "phoenix",
        }
    }

    pub fn parse(s: &str) -> Option<Platform> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn source(self) -> Source {
        match self {
            Platform::Langfuse => Source::Langfuse,
            Platform::Langsmith => Source::Langsmith,
            Platform::Phoenix => Source::Phoenix,
        }
    }

    /// The environment variables naming the address (first set wins), and
    /// the address when none is.
    pub fn url_vars(self) -> (&'static [&'static str], &'static str) {
        match self {
            Platform::Langfuse => (
                &["LANGFUSE_BASE_URL", "LANGFUSE_HOST"],
                "https://cloud.langfuse.com",
            ),
            Platform::Langsmith => (
                &["LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT"],
                "https://api.smith.langchain.com",
            ),
            Platform::Phoenix => (
                &["PHOENIX_BASE_URL", "PHOENIX_COLLECTOR_ENDPOINT"],
                "http://localhost:6006",
            ),
        }
    }

    /// The environment variables naming the project, and the default
    /// (Langfuse keys belong to one project: it has none).
    pub fn project_vars(self) -> (&'static [&'static str], Option<&'static str>) {
        match self {
            Platform::Langfuse => (&[], None),
            Platform::Langsmith => (&["LANGSMITH_PROJECT", "LANGCHAIN_PROJECT"], Some("default")),
            Platform::Phoenix => (&["PHOENIX_PROJECT_NAME"], Some("default")),
        }
    }

    /// What the credentials are read from, for messages.
    pub fn credential_help(self) -> &'static str {
        match self {
            Platform::Langfuse => "set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY",
            Platform::Langsmith => "set LANGSMITH_API_KEY",
            Platform::Phoenix => "set PHOENIX_API_KEY when the server requires one",
        }
    }
}

/// How a pull authenticates. The values never appear in `Debug`, an error
/// or a report.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// HTTP Basic (Langfuse: public key and secret key).
    Basic { user: String, password: String },
    /// A header and its value (LangSmith's `x-api-key`, Phoenix's
    /// `Authorization: Bearer`).
    Header { name: String, value: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Basic { .. } => "Auth::Basic([redacted])",
            Auth::Header { .. } => "Auth::Header([redacted])",
        })
    }
}

impl Auth {
    /// The credentials of `platform` from the environment (`var` reads one).
    pub fn from_env(
        platform: Platform,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Auth, String> {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
                .map(|v| v.trim().to_string())
        };
        match platform {
            Platform::Langfuse => {
                match (get(&["LANGFUSE_PUBLIC_KEY"]), get(&["LANGFUSE_SECRET_KEY"])) {
                    (Some(user), Some(password)) => Ok(Auth::Basic { user, password }),
                    _ => Err("Langfuse needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY".into()),
                }
            }
            Platform::Langsmith => match get(&["LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"]) {
                Some(value) => Ok(Auth::Header {
                    name: "x-api-key".into(),
                    value,
                }),
                None => Err("LangSmith needs LANGSMITH_API_KEY".into()),
            },
            Platform::Phoenix => Ok(match get(&["PHOENIX_API_KEY"]) {
                Some(key) => Auth::Header {
                    name: "authorization".into(),
                    value: format!("Bearer {key}"),
                },
                None => Auth::None,
            }),
        }
    }

    fn is_some(&self) -> bool {
        !matches!(self, Auth::None)
    }

    /// Every secret string this holds (to scrub from messages).
    fn secrets(&self) -> Vec<String> {
        match self {
            Auth::None => vec![],
            Auth::Basic { user, password } => {
                use base64::Engine;
                let header =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                vec![header, password.clone(), user.clone()]
            }
            Auth::Header { value, .. } => {
                let mut v = vec![value.clone()];
                if let Some(k) = value.strip_prefix("Bearer ") {
                    v.push(k.to_string());
                }
                v
            }
        }
    }
}

/// Retries of one request.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts after the first.
    pub max_retries: u32,
    /// The first backoff (doubled each time, with jitter).
    pub base: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured.
    pub cap: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_retries: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
        }
    }
}

/// One pull.
#[derive(Debug, Clone)]
pub struct Pull {
    pub platform: Platform,
    /// The API's address (scheme, host, port, optional path prefix).
    pub base_url: String,
    /// The project (LangSmith: name or id; Phoenix: name or id).
    pub project: Option<String>,
    pub auth: Auth,
    /// The earliest start time asked for (Unix ns).
    pub since_ns: i64,
    /// Records per page.
    pub page_size: u32,
    pub retry: Retry,
    /// How long one request may take.
    pub timeout: Duration,
    /// Most pages one pull reads (a server that pages without end stops).
    pub max_pages: u64,
    /// Send credentials over plain http to a host that is not loopback.
    pub allow_http: bool,
    /// Forget the saved position and cover `[since, now)` again.
    pub reset: bool,
    /// How far before the covered window's end the next pull starts again
    /// (ns): platforms index some records a while after they start.
    pub overlap_ns: i64,
}

/// The most records a page may ask for (each platform's own limit).
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The largest page read.
pub const MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;
/// How far before the covered window's end the next pull starts again, by
/// default: platforms index records a while after they start (Langfuse
/// says up to 15 minutes for older SDKs), and pulling again is idempotent.
pub const DEFAULT_OVERLAP_NS: i64 = 60 * 60 * 1_000_000_000;
/// The longest cursor kept (it is stored with the position).
pub const MAX_CURSOR_BYTES: usize = 16 * 1024;
/// How long a record may run before it no longer holds coverage back: one
/// whose client died never ends, and would keep every later pull reading
/// from its start.
pub const MAX_RUNNING_NS: i64 = 24 * 60 * 60 * 1_000_000_000;
/// The most JSON values a page may hold: read, each costs some 80 bytes,
/// so a page of tiny values would otherwise grow to many times its size.
/// A thousand records with their content captured hold far fewer.
pub const MAX_PAGE_VALUES: usize = 4_000_000;
/// The largest error answer read (its message is shown, cut short).
const MAX_ERROR_BYTES: u64 = 64 * 1024;
/// Pages in a row that stored nothing but had a next cursor before a pull stops:
/// a server that pages through nothing would otherwise run to the limit.
pub const MAX_EMPTY_PAGES: u32 = 100;

impl Pull {
    pub fn new(platform: Platform, base_url: String, auth: Auth, since_ns: i64) -> Pull {
        Pull {
            platform,
            base_url,
            project: None,
            auth,
            since_ns,
            page_size: 500,
            retry: Retry::default(),
            timeout: Duration::from_secs(60),
            max_pages: 100_000,
            allow_http: false,
            reset: false,
            overlap_ns: DEFAULT_OVERLAP_NS,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PullReport {
    pub platform: &'static str,
    /// The address, as given (never with credentials: they are refused there).
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Pages read.
    pub pages: u64,
    /// Pages stored (each with the position after it).
    #[serde(skip)]
    pub pages_stored: u64,
    /// Records the platform returned.
    pub records: u64,
    #[serde(flatten)]
    pub stored: Stored,
    /// Records not finished yet (taken by a later pull).
    pub running: u64,
    /// Records still running after a day: their client is taken to have
    /// died, and they no longer hold coverage back.
    pub abandoned: u64,
    /// A window had refused records, so it was not counted as covered.
    pub uncovered: bool,
    /// Records outside the window asked for (a server that ignores the
    /// filter): not stored.
    pub outside: u64,
    /// Records refused, with the first reasons.
    pub rejected: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejections: Vec<String>,
    /// Requests retried (429, 5xx, dropped connections).
    pub retries: u64,
    /// A pull that had stopped half-way was resumed.
    pub resumed: bool,
    /// The platform refused the saved cursor (it had expired), so the
    /// window in progress was pulled again from its start.
    pub restarted: bool,
    /// The windows of start times asked for, RFC 3339.
    pub windows: Vec<[String; 2]>,
    /// What is covered now, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered: Option<[String; 2]>,
}

/// A window of start times, `[from, to)`, Unix ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Window {
    from: i64,
    to: i64,
}

/// The saved position of a pull (JSON in the store's `cursors` table).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Position {
    /// Start times already pulled, `[from, to)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    covered: Option<Window>,
    /// Windows still to pull, the first in progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<Window>,
    /// The platform's cursor into the first pending window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    /// The earliest start of a record seen running in the first pending
    /// window: coverage stops there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    running_from: Option<i64>,
    /// The latest such start: a window before what is covered reaches back
    /// only to after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    running_last: Option<i64>,
    /// Records of the window in progress were refused: it is not counted
    /// as covered, so a later pull (a fixed server, a newer releaseops)
    /// asks for them again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    refused: bool,
}

/// `ns` rounded down to a microsecond: the platforms take window bounds in
/// microseconds, so a window is planned in them.
fn floor_us(ns: i64) -> i64 {
    ns.div_euclid(1000) * 1000
}

/// A covered window that covers something.
fn nonempty(w: Option<Window>) -> Option<Window> {
    w.filter(|w| w.from < w.to)
}

/// What remains of `[since, now)` given what is covered, newest first.
fn plan(covered: Option<Window>, since: i64, now: i64, overlap: i64) -> Vec<Window> {
    let (since, now) = (floor_us(since), floor_us(now));
    let window = |from: i64, to: i64| (from < to).then_some(Window { from, to });
    // Nothing covered, or only what lies wholly before `since`: the whole
    // window (and [`cover`] replaces the old coverage, which is not joined
    // to it by anything pulled).
    // A clock that went back (coverage reaching past now): what lies after
    // now was not seen from here, so coverage is cut back to now.
    let covered = covered.map(|c| Window {
        from: c.from.min(now),
        to: c.to.min(now),
    });
    let Some(c) = nonempty(covered).filter(|c| since <= c.to) else {
        return window(since, now).into_iter().collect();
    };
    // Recent traffic is what a comparison needs soonest: the tail first,
    // from the covered end less the overlap for late arrivals.
    let tail = floor_us(since.max(c.to.saturating_sub(overlap)).max(c.from));
    let mut out: Vec<Window> = window(tail, now).into_iter().collect();
    // Up to what is covered, rounded up so the request's bound reaches it.
    out.extend(window(since, (floor_us(c.from - 1) + 1000).min(now)));
    out
}

/// `covered` grown by a finished window `w`, in which records started at
/// `running` (first, last) had not ended.
fn cover(covered: Option<Window>, w: Window, running: Option<(i64, i64)>) -> Window {
    // Coverage stops before the first record still running.
    let tail_to = running
        .map_or(w.to, |(first, _)| first.min(w.to))
        .max(w.from);
    match nonempty(covered) {
        // Before what is covered (joined to it): it reaches back only to
        // after the last record still running, which a later pull takes.
        Some(c) if w.from < c.from && w.to >= c.from => {
            // (The microsecond after it: a bound the platforms can take.)
            let from = running.map_or(w.from, |(_, last)| {
                (floor_us(last) + 1000).max(w.from).min(c.from)
            });
            Window {
                from: from.min(c.from),
                to: c.to,
            }
        }
        // The tail (starting inside or at the end of what is covered).
        Some(c) if w.from >= c.from && w.from <= c.to => Window {
            from: c.from,
            to: tail_to,
        },
        // Nothing covered yet, or coverage this window does not touch.
        _ => Window {
            from: w.from,
            to: tail_to,
        },
    }
}

/// One record of a page, read.
pub(crate) enum Item {
    Span(Box<Span>),
    /// Not finished: no end time yet.
    Running {
        start_ns: i64,
    },
}

/// A page of a platform's answer.
pub(crate) struct Page {
    pub items: Vec<Result<Item, Rejected>>,
    pub next: Option<String>,
}

/// One HTTP request of a platform.
pub(crate) struct Request {
    pub post: bool,
    /// Path segments after the base URL (each percent-encoded as needed).
    pub path: Vec<String>,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

/// What a platform's module provides.
pub(crate) trait Api {
    /// The page request for `w` at `cursor`.
    fn page(&self, w: (i64, i64), cursor: Option<&str>, size: u32, capture: bool) -> Request;
    /// Reads a page.
    fn parse(&self, body: Value, opts: &ReadOptions, limit: usize) -> Result<Page, String>;
    /// What the records belong to on the server (the project), for the
    /// name of the saved position.
    fn scope(&self) -> String;
    /// The precision (ns) the server compares window bounds at: a window is
    /// asked for widened to it, so no record at an edge is left out.
    fn precision_ns(&self) -> i64 {
        1_000
    }
}

/// `w` widened outwards to multiples of `unit`.
fn widen(w: Window, unit: i64) -> Window {
    let unit = unit.max(1);
    Window {
        from: w.from.div_euclid(unit) * unit,
        to: w.to.saturating_add(unit - 1).div_euclid(unit) * unit,
    }
}

/// Pulls into `store`. Pages already stored stay stored when a later page
/// fails (the error says so), and the next pull resumes after them.
pub fn pull(
    store: &mut TraceStore,
    p: &Pull,
    opts: &ReadOptions,
) -> Result<PullReport, TraceError> {
    let mut report = PullReport {
        platform: p.platform.as_str(),
        url: p.base_url.clone(),
        project: p.project.clone(),
        ..PullReport::default()
    };
    match run(store, p, opts, &mut report) {
        Ok(()) => Ok(report),
        Err(e) => {
            let scrub = Scrub::new(&p.auth);
            let inner = match &e {
                TraceError::Store(m) | TraceError::Remote(m) | TraceError::Input(m) => m.clone(),
                other => other.to_string(),
            };
            let mut msg = scrub.text(&inner);
            if report.stored.spans > 0 {
                msg.push_str(&format!(
                    " ({} spans from {} pages were stored before it; the next pull resumes after them)",
                    report.stored.spans, report.pages_stored
                ));
            }
            Err(match e {
                TraceError::Store(_) => TraceError::Store(msg),
                TraceError::Remote(_) => TraceError::Remote(msg),
                _ => TraceError::Input(msg),
            })
        }
    }
}

fn run(
    store: &mut TraceStore,
    p: &Pull,
    opts: &ReadOptions,
    report: &mut PullReport,
) -> Result<(), TraceError> {
    let base = check_url(&p.base_url, p.auth.is_some(), p.allow_http)?;
    if p.page_size == 0 || p.page_size > MAX_PAGE_SIZE {
        return Err(TraceError::Input(format!(
            "a page size of {} is not from 1 to {MAX_PAGE_SIZE}",
            p.page_size
        )));
    }
    let now = opts.now_ns;
    if p.since_ns >= now {
        return Err(TraceError::Input(
            "--since is not in the past: there is nothing to pull".into(),
        ));
    }
    let http = Http::new(p, base)?;
    let api: Box<dyn Api> = match p.platform {
        Platform::Langfuse => Box::new(langfuse::Langfuse),
        Platform::Langsmith => {
            Box::new(langsmith::LangSmith::resolve(&http, p.project.as_deref())?)
        }
        Platform::Phoenix => Box::new(phoenix::Phoenix::new(
            p.project.as_deref().unwrap_or("default"),
        )),
    };
    let name = position_name(p, &http.base, api.as_ref());
    let mut pos = match store.cursor(&name)? {
        Some(_) if p.reset => Position::default(),
        Some(text) => serde_json::from_str::<Position>(&text).map_err(|e| {
            TraceError::Store(format!(
                "holds a pull position for {} that does not parse ({e}); pull with --reset to cover the window again",
                p.platform.as_str()
            ))
        })?,
        None => Position::default(),
    };
    report.resumed = !pos.pending.is_empty();
    // The cursor a resumed pull starts from: a platform may have expired it.
    let mut resumed_cursor = pos.cursor.clone();
    // Every cursor of the window in progress: one answered again would
    // page forever (the one a resumed pull starts from included).
    // (Kept as digests: a window may page through many long cursors.)
    let mut seen_cursors: std::collections::HashSet<[u8; 16]> =
        pos.cursor.iter().map(|c| cursor_digest(c)).collect();
    // What is missing is planned once a run (after a resumed pull's
    // windows): a window ending now would otherwise be planned again.
    let mut planned = false;
    let mut empty_pages = 0u32;
    loop {
        if pos.pending.is_empty() {
            if planned {
                break;
            }
            planned = true;
            let more = plan(pos.covered, p.since_ns, now, p.overlap_ns.max(0));
            if more.is_empty() {
                break;
            }
            pos.pending = more;
            pos.cursor = None;
            pos.running_from = None;
            pos.running_last = None;
            pos.refused = false;
        }
        let w = pos.pending[0];
        if report.windows.last() != Some(&shown(w)) {
            report.windows.push(shown(w));
        }
        if report.pages >= p.max_pages {
            return Err(TraceError::Remote(format!(
                "{} paged past {} pages in one pull; pull a shorter window (--since) or raise --max-pages",
                p.platform.as_str(),
                p.max_pages
            )));
        }
        // What is asked for reaches a little past `w` at a coarse server's
        // edges; what is covered is `w` alone.
        let asked = widen(w, api.precision_ns());
        let req = api.page(
            (asked.from, asked.to),
            pos.cursor.as_deref(),
            p.page_size,
            opts.capture_content,
        );
        let body = match http.send(&req, &mut report.retries) {
            Ok(body) => body,
            // A saved cursor the platform no longer takes (cursors expire):
            // the window is pulled again from its start, once.
            Err(e)
                if resumed_cursor.is_some()
                    && pos.cursor == resumed_cursor
                    && matches!(e.status, Some(400 | 404 | 410 | 422)) =>
            {
                resumed_cursor = None;
                report.restarted = true;
                pos.cursor = None;
                pos.running_from = None;
                pos.running_last = None;
                pos.refused = false;
                seen_cursors.clear();
                continue;
            }
            Err(e) => return Err(e.error),
        };
        resumed_cursor = None;
        let mut page = api.parse(body, opts, p.page_size as usize).map_err(|e| {
            TraceError::Remote(format!(
                "{} answered a page that is not its API's shape: {}",
                p.platform.as_str(),
                http.scrub.text(&e)
            ))
        })?;
        report.pages += 1;
        let mut spans = Vec::with_capacity(page.items.len());
        let mut running_here = false;
        for item in std::mem::take(&mut page.items) {
            report.records += 1;
            match item {
                Ok(Item::Span(s)) => {
                    if (asked.from..asked.to).contains(&s.start_ns) {
                        spans.push(*s);
                    } else {
                        report.outside += 1;
                    }
                }
                Ok(Item::Running { start_ns }) if start_ns < now - MAX_RUNNING_NS => {
                    // Running for more than a day: abandoned by its client.
                    report.abandoned += 1;
                }
                Ok(Item::Running { start_ns }) => {
                    if (w.from..w.to).contains(&start_ns) {
                        running_here = true;
                        report.running += 1;
                        pos.running_from =
                            Some(pos.running_from.map_or(start_ns, |r| r.min(start_ns)));
                        pos.running_last =
                            Some(pos.running_last.map_or(start_ns, |r| r.max(start_ns)));
                    } else if !(asked.from..asked.to).contains(&start_ns) {
                        report.outside += 1;
                    }
                }
                Err(r) => {
                    pos.refused = true;
                    report.rejected += 1;
                    if report.rejections.len() < 10 {
                        report.rejections.push(http.scrub.text(&r.message()));
                    }
                }
            }
        }
        crate::otlp::inherit_within(&mut spans);
        match page.next.filter(|c| !c.is_empty()) {
            Some(next) => {
                check_cursor(p.platform, &next)?;
                if !seen_cursors.insert(cursor_digest(&next)) {
                    return Err(TraceError::Remote(format!(
                        "{} answered the same cursor twice; it would page forever",
                        p.platform.as_str()
                    )));
                }
                // Progress is something stored or something still running.
                empty_pages = if !spans.is_empty() || running_here {
                    0
                } else {
                    empty_pages + 1
                };
                pos.cursor = Some(next);
            }
            None => {
                let running = pos.running_from.zip(pos.running_last);
                if pos.refused {
                    report.uncovered = true;
                } else {
                    pos.covered = Some(cover(pos.covered, w, running));
                }
                pos.pending.remove(0);
                pos.cursor = None;
                pos.running_from = None;
                pos.running_last = None;
                pos.refused = false;
                seen_cursors.clear();
                empty_pages = 0;
            }
        }
        let state = serde_json::to_string(&pos).map_err(|e| TraceError::Store(e.to_string()))?;
        let mut writer = store.writer()?;
        writer.add(&spans)?;
        writer.set_cursor(&name, &state, now)?;
        let stored = writer.commit()?;
        report.stored.spans += stored.spans;
        report.stored.duplicates += stored.duplicates;
        report.pages_stored += 1;
        if empty_pages >= MAX_EMPTY_PAGES {
            return Err(TraceError::Remote(format!(
                "{} answered {MAX_EMPTY_PAGES} pages in a row with no records and a next cursor; it would page forever",
                p.platform.as_str()
            )));
        }
    }
    report.covered = pos.covered.map(shown);
    Ok(())
}

/// The name a pull's position is saved under: the platform, its address
/// as parsed (so `HOST/` and `host` are one), and what the records belong
/// to: LangSmith's project id, Phoenix's project, and for Langfuse (whose
/// keys belong to one project) a digest of the public key, so pulling
/// another project's keys from the same server starts its own coverage.
fn position_name(p: &Pull, base: &reqwest::Url, api: &dyn Api) -> String {
    use sha2::{Digest, Sha256};
    let scope = match (&p.auth, p.platform) {
        (Auth::Basic { user, .. }, Platform::Langfuse) => {
            let d = Sha256::digest(user.as_bytes());
            format!("key-{}", &hex::encode(d)[..16])
        }
        _ => api.scope(),
    };
    format!(
        "pull:{}:{}:{scope}",
        p.platform.as_str(),
        base.as_str().trim_end_matches('/')
    )
}

fn cursor_digest(c: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(c.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// A next cursor worth keeping (it is stored with the position): bounded
/// and printable. (The credentials left the answer it came in.)
fn check_cursor(platform: Platform, c: &str) -> Result<(), TraceError> {
    let bad = |why: &str| {
        TraceError::Remote(format!(
            "{} answered a next cursor that {why}; it is not kept",
            platform.as_str()
        ))
    };
    if c.len() > MAX_CURSOR_BYTES {
        return Err(bad(&format!(
            "is longer than {} KiB",
            MAX_CURSOR_BYTES >> 10
        )));
    }
    if c.chars().any(char::is_control) {
        return Err(bad("holds control characters"));
    }
    Ok(())
}

fn shown(w: Window) -> [String; 2] {
    let t = |ns: i64| {
        jiff::Timestamp::from_nanosecond(i128::from(ns))
            .map(|t| t.to_string())
            .unwrap_or_else(|_| ns.to_string())
    };
    [t(w.from), t(w.to)]
}

impl Rejected {
    fn message(&self) -> String {
        match &self.span {
            Some(id) => format!("{id}: {}", self.reason),
            None => self.reason.clone(),
        }
    }
}

/// The base URL, checked: http or https, no credentials in it, no query;
/// credentials go over plain http only to loopback unless allowed.
fn check_url(url: &str, credentials: bool, allow_http: bool) -> Result<reqwest::Url, TraceError> {
    let bad =
        |why: &str| TraceError::Input(format!("the address '{}' {why}", redact::preview(url)));
    let u = reqwest::Url::parse(url.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("is not an http or https URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(
            "holds credentials; give them in the environment variables instead",
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad(
            "has a query or a fragment; give the API's base address",
        ));
    }
    let loopback = match u.host_str() {
        Some(h) => {
            h.eq_ignore_ascii_case("localhost")
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback())
        }
        None => return Err(bad("has no host")),
    };
    if u.scheme() == "http" && credentials && !loopback && !allow_http {
        return Err(bad(
            "is plain http to another machine, and the credentials would cross the network readable; use https (or --allow-http on a network you trust)",
        ));
    }
    Ok(u)
}

/// Removes credentials from messages.
struct Scrub {
    secrets: Vec<String>,
}

impl Scrub {
    fn new(auth: &Auth) -> Scrub {
        let mut secrets: Vec<String> = auth
            .secrets()
            .into_iter()
            .filter(|s| s.len() >= 4)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrub { secrets }
    }

    /// `s` with the credentials and anything that looks like a secret
    /// removed (before anything is cut, so no part of one is left).
    fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        self.known(&mut out);
        redact::text(&out).into_owned()
    }

    /// Whether `s` holds one of the credentials.
    fn leaks(&self, s: &str) -> bool {
        self.secrets.iter().any(|k| s.contains(k.as_str()))
    }

    /// Removes the credentials themselves from `s` (what the patterns of
    /// [`redact`] do not know: a key of any shape the server echoes).
    fn known(&self, s: &mut String) {
        for k in &self.secrets {
            if s.contains(k.as_str()) {
                *s = s.replace(k.as_str(), redact::REDACTED);
            }
        }
    }

    /// Removes the credentials from every string and key of an answer,
    /// before any of it is read or cut: a server may echo them anywhere
    /// (escaped or not), and the store keeps what it is given.
    fn value(&self, v: &mut Value) {
        if self.secrets.is_empty() {
            return;
        }
        match v {
            Value::String(t) => self.known(t),
            Value::Array(a) => a.iter_mut().for_each(|v| self.value(v)),
            Value::Object(m) => {
                if m.keys().any(|k| self.leaks(k)) {
                    *m = std::mem::take(m)
                        .into_iter()
                        .map(|(mut k, v)| {
                            self.known(&mut k);
                            (k, v)
                        })
                        .collect();
                }
                m.values_mut().for_each(|v| self.value(v));
            }
            _ => {}
        }
    }
}

/// A request that failed: why, and the HTTP status when there was one.
pub(crate) struct SendError {
    pub status: Option<u16>,
    pub error: TraceError,
}

impl From<SendError> for TraceError {
    fn from(e: SendError) -> TraceError {
        e.error
    }
}

/// Why a body could not be read.
enum ReadFailure {
    /// Larger than a page may be: asking again gives the same.
    TooLarge(String),
    /// Broken off or too slow: worth another try.
    Broken(String),
}

/// The blocking HTTP client of one pull, with its retries.
pub(crate) struct Http {
    client: reqwest::blocking::Client,
    base: reqwest::Url,
    auth: Auth,
    retry: Retry,
    platform: Platform,
    scrub: Scrub,
    /// How long one answer's body may take to arrive.
    deadline: Duration,
    seed: std::cell::Cell<u64>,
}

fn retryable(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status)
}

impl Http {
    fn new(p: &Pull, base: reqwest::Url) -> Result<Http, TraceError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(p.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("releaseops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TraceError::Input(format!("cannot build the HTTP client: {e}")))?;
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Ok(Http {
            client,
            base,
            auth: p.auth.clone(),
            retry: p.retry,
            platform: p.platform,
            scrub: Scrub::new(&p.auth),
            deadline: p.timeout,
            seed: std::cell::Cell::new(clock | 1),
        })
    }

    fn url(&self, req: &Request) -> reqwest::Url {
        let mut u = self.base.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty();
            for s in &req.path {
                segs.push(s);
            }
        }
        if !req.query.is_empty() {
            u.query_pairs_mut().extend_pairs(req.query.iter());
        }
        u
    }

    fn jitter(&self) -> f64 {
        let mut s = self.seed.get();
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        self.seed.set(s);
        0.5 + (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends `req` (retrying what is worth retrying) and parses the JSON.
    pub(crate) fn send(&self, req: &Request, retries: &mut u64) -> Result<Value, SendError> {
        let fail = |status: Option<u16>, error: TraceError| SendError { status, error };
        let url = self.url(req);
        let what = format!("{} ({})", self.platform.as_str(), url.path());
        let mut attempt = 0u32;
        loop {
            let mut b = if req.post {
                self.client.post(url.clone())
            } else {
                self.client.get(url.clone())
            };
            b = b.header("accept", "application/json");
            if let Some(body) = &req.body {
                b = b.json(body);
            }
            b = match &self.auth {
                Auth::None => b,
                Auth::Basic { user, password } => b.basic_auth(user, Some(password)),
                Auth::Header { name, value } => {
                    let mut v = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                        fail(
                            None,
                            TraceError::Input(format!(
                                "the {} credential holds characters a header cannot carry",
                                self.platform.as_str()
                            )),
                        )
                    })?;
                    v.set_sensitive(true);
                    b.header(name.as_str(), v)
                }
            };
            let (wait, err) = match b.send() {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let after = retry_after(resp.headers());
                    let location = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(|l| redact::preview(&self.scrub.text(l)));
                    let page = (200..300).contains(&status);
                    match read_capped(resp, self.deadline, page) {
                        Ok(bytes) if (200..300).contains(&status) => {
                            let values = json_values(&bytes);
                            if values > MAX_PAGE_VALUES {
                                return Err(fail(
                                    Some(status),
                                    TraceError::Remote(format!(
                                        "{what} answered a page of about {values} JSON values, more than {MAX_PAGE_VALUES} read at once; pull with a smaller --page-size"
                                    )),
                                ));
                            }
                            let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                                fail(
                                    Some(status),
                                    TraceError::Remote(format!(
                                        "{what} answered HTTP {status} with a body that is not JSON ({e}): {}",
                                        redact::preview(&self.scrub.text(&String::from_utf8_lossy(&bytes)))
                                    )),
                                )
                            })?;
                            // The credentials out before anything is read
                            // from it: nothing cut later keeps part of one.
                            self.scrub.value(&mut v);
                            return Ok(v);
                        }
                        Ok(bytes) => {
                            let msg = error_message(&bytes, &self.scrub);
                            let err = match status {
                                300..=399 => format!(
                                    "{what} answered a redirect (HTTP {status}) to {}; give the API's own address",
                                    location.unwrap_or_else(|| "nowhere".into())
                                ),
                                401 | 403 => format!(
                                    "{what} refused the credentials (HTTP {status}: {msg}); {}",
                                    self.platform.credential_help()
                                ),
                                _ => format!("{what} answered HTTP {status}: {msg}"),
                            };
                            if !retryable(status) {
                                return Err(fail(Some(status), TraceError::Remote(err)));
                            }
                            (after, err)
                        }
                        Err(ReadFailure::TooLarge(e)) => {
                            return Err(fail(
                                Some(status),
                                TraceError::Remote(format!("{what}: {e}")),
                            ));
                        }
                        Err(ReadFailure::Broken(e)) => (None, format!("{what}: {e}")),
                    }
                }
                Err(e) => (
                    None,
                    format!(
                        "{what} cannot be reached ({})",
                        self.scrub.text(&error_chain(&e.without_url()))
                    ),
                ),
            };
            if attempt >= self.retry.max_retries {
                return Err(fail(
                    None,
                    TraceError::Remote(format!("{err} (after {} attempts)", attempt + 1)),
                ));
            }
            let backoff = self
                .retry
                .base
                .saturating_mul(1 << attempt.min(16))
                .min(self.retry.cap);
            let delay = wait
                .map(|w| w.min(self.retry.cap))
                .unwrap_or_else(|| backoff.mul_f64(self.jitter()));
            std::thread::sleep(delay);
            attempt += 1;
            *retries += 1;
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

/// The body within `deadline` (the client's timeout bounds each read; this
/// bounds them all, so a server that drips a byte at a time cannot hold
/// the pull): a `page` whole up to [`MAX_PAGE_BYTES`], anything else cut
/// at [`MAX_ERROR_BYTES`] (its start says enough).
fn read_capped(
    mut resp: reqwest::blocking::Response,
    deadline: Duration,
    page: bool,
) -> Result<Vec<u8>, ReadFailure> {
    let until = std::time::Instant::now() + deadline;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = resp
            .read(&mut buf)
            .map_err(|e| ReadFailure::Broken(format!("the answer broke off ({e})")))?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        if !page && out.len() as u64 > MAX_ERROR_BYTES {
            out.truncate(MAX_ERROR_BYTES as usize);
            return Ok(out);
        }
        if out.len() as u64 > MAX_PAGE_BYTES {
            return Err(ReadFailure::TooLarge(format!(
                "a page is larger than {} MiB; pull with a smaller --page-size",
                MAX_PAGE_BYTES >> 20
            )));
        }
        if std::time::Instant::now() > until {
            return Err(ReadFailure::Broken(format!(
                "the answer took longer than {} s to arrive",
                deadline.as_secs()
            )));
        }
    }
}

/// About how many values (and keys) a JSON text holds, counted without
/// reading it: the separators outside strings.
fn json_values(b: &[u8]) -> usize {
    let (mut n, mut in_str, mut esc) = (1usize, false, false);
    for &c in b {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b',' | b'[' | b'{' | b':' => n += 1,
                _ => {}
            }
        }
    }
    n
}

/// A short message from an error body: its `message`/`detail`/`error`, or
/// the start of the text, with the credentials removed first.
fn error_message(bytes: &[u8], scrub: &Scrub) -> String {
    let v: Option<Value> = serde_json::from_slice(bytes).ok();
    let from_json = v.as_ref().and_then(|v| {
        ["message", "detail", "error", "errors"]
            .iter()
            .find_map(|k| v.get(*k))
            .map(|m| match m {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    });
    let text =
        scrub.text(&from_json.unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned()));
    let mut t: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        t.push('…');
    }
    t.escape_debug().to_string()
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(86_400.0)));
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let secs = (at - jiff::Timestamp::now()).get_seconds();
    Some(Duration::from_secs(secs.clamp(0, 86_400) as u64))
}

// --- reading records: shared by the platforms --------------------------------

/// A trace id: 32 hex digits as they are (a UUID's without its dashes),
/// anything else hashed to 16 bytes (the same id always gives the same).
pub(crate) fn trace_id(platform: Platform, raw: &str) -> String {
    let t = raw.trim();
    let plain: String = if t.len() == 36 && t.matches('-').count() == 4 {
        t.replace('-', "")
    } else {
        t.to_string()
    };
    if plain.len() == 32
        && plain.bytes().all(|b| b.is_ascii_hexdigit())
        && !plain.bytes().all(|b| b == b'0')
    {
        return plain.to_ascii_lowercase();
    }
    crate::import::derived_id(format!("{}:{t}", platform.as_str()).as_bytes(), 16)
}

/// A span id: 16 hex digits as they are, anything else (a UUID) hashed to 8
/// bytes.
pub(crate) fn span_id(platform: Platform, raw: &str) -> String {
    let t = raw.trim();
    if t.len() == 16 && t.bytes().all(|b| b.is_ascii_hexdigit()) && !t.bytes().all(|b| b == b'0') {
        return t.to_ascii_lowercase();
    }
    crate::import::derived_id(format!("{}:{t}", platform.as_str()).as_bytes(), 8)
}

/// A window's bound as the platforms take it.
pub(crate) fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

/// A page's records (the first of `lists` present) and its next cursor
/// (at the first of the `cursors` paths present).
fn page_parts(
    body: Value,
    lists: &[&str],
    cursors: &[&[&str]],
) -> Result<(Vec<Value>, Option<String>), String> {
    let Value::Object(mut top) = body else {
        return Err(format!("the answer is not an object with {}", lists[0]));
    };
    let records = match lists.iter().find_map(|k| top.remove(*k)) {
        Some(Value::Array(a)) => a,
        _ => return Err(format!("it has no {} list", lists[0])),
    };
    let found = cursors.iter().find_map(|path| {
        let mut v = top.get(path[0])?;
        for k in &path[1..] {
            v = v.get(*k)?;
        }
        Some((path.join("."), v))
    });
    let next = match found {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::String(s))) => Some(s.clone()),
        Some((name, _)) => return Err(format!("{name} is not a string")),
    };
    Ok((records, next))
}

/// A page: its records (each a `what`, its id found by `id`, read by
/// `read`) and its cursor, as [`page_parts`] finds them.
pub(crate) fn read_page(
    body: Value,
    (lists, cursors): (&[&str], &[&[&str]]),
    (what, limit): (&str, usize),
    id: fn(&Map<String, Value>) -> Result<&str, String>,
    read: impl Fn(&Map<String, Value>, &str) -> Result<Item, String>,
) -> Result<Page, String> {
    let (records, next) = page_parts(body, lists, cursors)?;
    if records.len() > limit {
        return Err(format!(
            "it holds {} records, and pages of {limit} were asked for",
            records.len()
        ));
    }
    let items = records
        .into_iter()
        .map(|r| record(r, what, id, &read))
        .collect();
    Ok(Page { items, next })
}

/// The span of a platform's record, its ids mapped as [`trace_id`] and
/// [`span_id`] say.
pub(crate) fn new_span(
    p: Platform,
    trace: &str,
    id: &str,
    name: String,
    times: (i64, i64),
) -> Span {
    Span::new(trace_id(p, trace), span_id(p, id), name, times, p.source())
}

/// One record read: `id` finds its id (named in a refusal), `read` the rest.
fn record(
    v: Value,
    what: &str,
    id: fn(&Map<String, Value>) -> Result<&str, String>,
    read: impl FnOnce(&Map<String, Value>, &str) -> Result<Item, String>,
) -> Result<Item, Rejected> {
    let Value::Object(o) = v else {
        return Err(Rejected {
            span: None,
            reason: format!("a {what} is not an object"),
        });
    };
    let id = id(&o).map_err(|reason| Rejected { span: None, reason })?;
    read(&o, id).map_err(|reason| Rejected {
        span: Some(format!("{what} {}", redact::preview(id))),
        reason,
    })
}

/// A required string field.
pub(crate) fn text_field<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match o.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::Number(_))
        | Some(Value::Bool(_))
        | Some(Value::Array(_))
        | Some(Value::Object(_)) => Err(format!("{key} is not a string")),
        _ => Err(format!("{key} is missing")),
    }
}

/// An optional string field (null and "" are none).
pub(crate) fn opt_text<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A time field (RFC 3339; without a zone it is UTC).
pub(crate) fn time_field(o: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => crate::import::time_ns(key, v).map(Some),
    }
}

/// Reads `v` as the convention's `conv` attribute, naming the platform's
/// `shown` field in an error.
pub(crate) fn read_as(
    f: &mut Fields,
    conv: &str,
    shown: &str,
    v: &Value,
    capture: bool,
) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    f.read(conv, v.clone(), capture)
        .map_err(|e| e.replace(conv, shown))
}

/// Metadata as attributes: its scalar entries by name, and the OTel
/// attributes platforms keep under `attributes` / `resourceAttributes`
/// (the `releaseops.*` tags included). Nested `releaseops: {bundle_id...}`
/// works too.
pub(crate) fn read_metadata(f: &mut Fields, meta: &Value, capture: bool) -> Result<(), String> {
    let Some(m) = meta.as_object() else {
        return Ok(());
    };
    for (k, v) in m {
        match (k.as_str(), v) {
            ("attributes" | "resourceAttributes" | "resource_attributes", Value::Object(inner)) => {
                for (ik, iv) in inner {
                    let resource = k != "attributes";
                    if is_scalar(iv) && (!resource || ik.starts_with("releaseops.")) {
                        f.read(ik, iv.clone(), capture)?;
                    }
                }
            }
            ("releaseops", Value::Object(inner)) => {
                for (ik, iv) in inner {
                    if is_scalar(iv) {
                        f.read(&format!("releaseops.{ik}"), iv.clone(), capture)?;
                    }
                }
            }
            (_, v) if is_scalar(v) => f.read(k, v.clone(), capture)?,
            _ => {}
        }
    }
    Ok(())
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;

    fn win(from: i64, to: i64) -> Window {
        Window {
            from: from * MIN,
            to: to * MIN,
        }
    }

    #[test]
    fn plans_cover_what_is_missing_newest_first() {
        let now = 1_000 * MIN;
        let overlap = 10 * MIN;
        assert_eq!(plan(None, 10 * MIN, now, overlap), vec![win(10, 1000)]);
        let c = win(500, 900);
        // Incremental: from the covered end less the overlap.
        assert_eq!(plan(Some(c), 600 * MIN, now, overlap), vec![win(890, 1000)]);
        // --since further back than before: the gap too, after the tail.
        assert_eq!(
            plan(Some(c), 100 * MIN, now, overlap),
            vec![win(890, 1000), win(100, 500)]
        );
        // Coverage wholly before --since is not joined across the gap: the
        // whole window is pulled and replaces it.
        assert_eq!(plan(Some(c), 950 * MIN, now, overlap), vec![win(950, 1000)]);
        assert_eq!(cover(Some(c), win(950, 1000), None), win(950, 1000));
        // An empty coverage is none.
        assert_eq!(
            plan(Some(win(700, 700)), 600 * MIN, now, overlap),
            vec![win(600, 1000)]
        );
        // Nothing left: no window.
        assert!(plan(Some(win(0, 1000)), 10 * MIN, now, 0).is_empty());
    }

    #[test]
    fn coverage_stops_at_what_is_still_running() {
        let now = 1_000 * MIN;
        let c = win(500, 900);
        // The tail: coverage stops at the first record still running.
        let grown = cover(Some(c), win(890, 1000), Some((950 * MIN, 980 * MIN)));
        assert_eq!(grown, win(500, 950));
        // ... and the next pull starts there less the overlap.
        assert_eq!(plan(Some(grown), 600 * MIN, now, MIN), vec![win(949, 1000)]);
        // A window before the covered one: coverage reaches back only to
        // after the last record still running there.
        let back = cover(Some(grown), win(100, 500), Some((150 * MIN, 300 * MIN)));
        assert_eq!(
            back,
            Window {
                from: 300 * MIN + 1000,
                to: 950 * MIN
            }
        );
        // So the next pull asks for that part again (and takes the record
        // once it has ended).
        let next = plan(Some(back), 100 * MIN, now, MIN);
        assert_eq!(next[1].from, 100 * MIN);
        assert!(next[1].to > 300 * MIN);
        let done = cover(Some(grown), win(100, 500), None);
        assert_eq!(done, win(100, 950));
    }

    #[test]
    fn a_clock_that_went_back_cuts_coverage_back_and_never_panics() {
        // Covered up to 100, now is 90: the tail is planned to now, and a
        // record still running in it does not upset the arithmetic.
        let c = win(0, 100);
        let w = plan(Some(c), 0, 90 * MIN, 60 * MIN);
        assert_eq!(w, vec![win(30, 90)]);
        let grown = cover(Some(c), w[0], Some((60 * MIN, 70 * MIN)));
        assert_eq!(grown, win(0, 60));
        // Skew larger than the overlap: coverage is cut to now, so what
        // starts after it is asked for once the clock catches up.
        let w = plan(Some(win(0, 500)), 0, 200 * MIN, MIN);
        assert_eq!(w, vec![win(199, 200)]);
        assert_eq!(cover(Some(win(0, 500)), w[0], None), win(0, 200));
    }

    #[test]
    fn coarse_servers_are_asked_for_a_window_widened_to_their_precision() {
        let w = Window {
            from: 1_500_123_456,
            to: 9_000_000_001,
        };
        assert_eq!(
            widen(w, 1_000_000),
            Window {
                from: 1_500_000_000,
                to: 9_001_000_000
            }
        );
        assert_eq!(widen(w, 1), w);
    }

    #[test]
    fn windows_are_planned_in_microseconds() {
        // The platforms take bounds in microseconds: a bound in between
        // would be cut by the request and claim what it did not ask for.
        let w = plan(None, 1_500_000_777, 9_000_000_999, 0);
        assert_eq!(
            w,
            vec![Window {
                from: 1_500_000_000,
                to: 9_000_000_000
            }]
        );
        let c = Window {
            from: 1_000,
            to: 5_000_000_123,
        };
        assert_eq!(
            plan(Some(c), 1_000, 9_000_000_999, 1_000)[0].from,
            4_999_999_000
        );
    }

    #[test]
    fn ids_are_kept_or_derived_the_same_way_every_time() {
        let uuid = "0193a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
        assert_eq!(
            trace_id(Platform::Langsmith, uuid),
            "0193a3b45c6d7e8f9a0b1c2d3e4f5a6b"
        );
        let s = span_id(Platform::Langsmith, uuid);
        assert_eq!(s.len(), 16);
        assert_eq!(s, span_id(Platform::Langsmith, uuid));
        assert_ne!(s, span_id(Platform::Langfuse, uuid));
        assert_eq!(
            span_id(Platform::Phoenix, "00AB00ab00ab00ab"),
            "00ab00ab00ab00ab"
        );
        assert_eq!(trace_id(Platform::Langfuse, "my-trace").len(), 32);
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        assert!(check_url("http://127.0.0.1:3000", true, false).is_ok());
        assert!(check_url("https://cloud.langfuse.com", true, false).is_ok());
        let e = check_url("http://langfuse.internal", true, false).unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
        assert!(check_url("http://langfuse.internal", false, false).is_ok());
        assert!(check_url("http://langfuse.internal", true, true).is_ok());
        let e = check_url("https://pk:sk@host", true, false).unwrap_err();
        assert!(
            e.to_string().contains("credentials") && !e.to_string().contains("sk@"),
            "{e}"
        );
        assert!(check_url("ftp://host", false, false).is_err());
        assert!(check_url("https://host/?x=1", false, false).is_err());
    }

    #[test]
    fn json_values_are_counted_outside_strings() {
        assert_eq!(json_values(br#"{"a":[1,2,3]}"#), 6);
        assert_eq!(json_values(br#"{"a":"x,y:[{\"z"}"#), 3);
        let zeros = format!("[{}0]", "0,".repeat(10));
        assert_eq!(json_values(zeros.as_bytes()), 12);
    }

    #[test]
    fn credentials_never_show() {
        let auth = Auth::Basic {
            user: "pk-lf-public".into(),
            password: "sk-lf-0123456789".into(),
        };
        assert!(!format!("{auth:?}").contains("sk-lf"));
        let s = Scrub::new(&auth);
        assert_eq!(s.text("bad key sk-lf-0123456789!"), "bad key [redacted]!");
        // In an answer, escaped or as a key: gone before anything reads it.
        let mut v: Value =
            serde_json::from_str(r#"{"n":["\u0073k-lf-0123456789"],"sk-lf-0123456789":{"x":1}}"#)
                .expect("JSON");
        s.value(&mut v);
        assert!(!v.to_string().contains("sk-lf-0123456789"), "{v}");
        let bearer = Auth::Header {
            name: "authorization".into(),
            value: "Bearer phx-key-abcdef".into(),
        };
        assert!(
            !Scrub::new(&bearer)
                .text("echo phx-key-abcdef")
                .contains("phx-key")
        );
    }
}
