//! Notices to webhooks. `notify:` in `config.yaml` lists the webhooks (each
//! naming the environment variable that holds its URL), the format each
//! takes and the events it wants; [`Notifier`] delivers what a change gave
//! rise to (`releaseops_core::notify`), after the change has landed:
//!
//! - [`Notifier::send`] never blocks: notices go to a bounded queue, and
//!   what does not fit is counted as dropped;
//! - each webhook has its own queue and worker thread (a slow one delays no
//!   other), which posts each notice with a timeout, retrying failures
//!   (5xx, 429, connection errors) with backoff and `Retry-After`;
//! - [`Notifier::finish`] waits a bounded time for the queue to drain (a CLI
//!   about to exit) and reports what happened;
//! - a webhook's URL is a secret: reports name the webhook, never the URL,
//!   and no response body is ever read.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use releaseops_core::notify::Notice;
use releaseops_format::config::{NotifyFormat, NotifyTarget};
use serde_json::{Value, json};

/// Notices waiting at most per webhook; more are dropped (and counted).
pub const QUEUE: usize = 256;
/// Attempts per notice and webhook.
pub const ATTEMPTS: u32 = 4;
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// The longest one notice is tried for, retries included.
const MAX_PER_NOTICE: Duration = Duration::from_secs(30);
/// Failures kept to be reported (the newest); all are counted.
const FAILURES_KEPT: usize = 20;

/// One webhook, with its own queue and worker: a slow one delays no other.
struct Target {
    format: NotifyFormat,
    wants: NotifyTarget,
    tx: Option<SyncSender<Vec<u8>>>,
    done: Mutex<Option<Receiver<()>>>,
}

#[derive(Default)]
struct Stats {
    delivered: AtomicU64,
    dropped: AtomicU64,
    failures: AtomicU64,
    recent: Mutex<std::collections::VecDeque<String>>,
}

impl Stats {
    fn failed(&self, why: String) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut r) = self.recent.lock() {
            if r.len() >= FAILURES_KEPT {
                r.pop_front();
            }
            r.push_back(why);
        }
    }
}

/// What was delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub delivered: u64,
    /// Notices that did not fit their webhook's queue.
    pub dropped: u64,
    /// Still queued when `finish` stopped waiting.
    pub pending: u64,
    /// Failed deliveries, all of them.
    pub failures: u64,
    /// The newest failures: the webhook's name and why (never its URL).
    pub failed: Vec<String>,
    /// Webhooks nothing is sent to: their URL variable is not set, or does
    /// not hold a URL this may send to.
    pub unset: Vec<String>,
}

/// Delivers notices in the background.
pub struct Notifier {
    targets: Vec<Target>,
    queued: Arc<AtomicU64>,
    stats: Arc<Stats>,
    unset: Vec<String>,
}

/// The URL's host is this machine (plain HTTP is allowed to it only: a
/// webhook URL is a credential, and the payload names people and gates).
fn loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Notifier {
    /// A notifier for `targets`, their URLs read with `var` (the process's
    /// environment in production). No thread starts for a webhook that has
    /// no URL.
    pub fn new(targets: &[NotifyTarget], var: impl Fn(&str) -> Option<String>) -> Notifier {
        let stats = Arc::new(Stats::default());
        let queued = Arc::new(AtomicU64::new(0));
        let mut unset = Vec::new();
        let mut live = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let label = t.label(i);
            let url = match var(&t.url_env).map(|u| u.trim().to_string()) {
                Some(u)
                    if u.starts_with("https://") || (u.starts_with("http://") && loopback(&u)) =>
                {
                    u
                }
                Some(u) if u.starts_with("http://") => {
                    unset.push(format!(
                        "{label}: ${} is a plain http:// URL to another machine; use https://",
                        t.url_env
                    ));
                    continue;
                }
                Some(_) => {
                    unset.push(format!("{label}: ${} is not an http(s) URL", t.url_env));
                    continue;
                }
                None => {
                    unset.push(format!("{label}: ${} is not set", t.url_env));
                    continue;
                }
            };
            let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
            let (done_tx, done) = sync_channel::<()>(1);
            let (st, q, l) = (stats.clone(), queued.clone(), label.clone());
            let spawned = std::thread::Builder::new()
                .name("releaseops-notify".into())
                .spawn(move || {
                    worker(&l, &url, &rx, &st, &q);
                    let _ = done_tx.send(());
                });
            if let Err(e) = spawned {
                stats.failed(format!(
                    "{label}: nothing is sent: its worker thread did not start: {e}"
                ));
                continue;
            }
            live.push(Target {
                format: t.format,
                wants: t.clone(),
                tx: Some(tx),
                done: Mutex::new(Some(done)),
            });
        }
        Notifier {
            targets: live,
            queued,
            stats,
            unset,
        }
    }

    /// True when some webhook would hear something.
    pub fn is_active(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Queues `notices` for every webhook that wants them; never blocks.
    pub fn send(&self, notices: &[Notice]) {
        for n in notices {
            for t in &self.targets {
                let Some(tx) = &t.tx else { continue };
                if !t.wants.wants(n.event) {
                    continue;
                }
                let body = payload(t.format, n).to_string().into_bytes();
                self.queued.fetch_add(1, Ordering::SeqCst);
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                    tx.try_send(body)
                {
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    self.stats.dropped.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    /// What happened so far.
    pub fn report(&self) -> Report {
        Report {
            delivered: self.stats.delivered.load(Ordering::SeqCst),
            dropped: self.stats.dropped.load(Ordering::SeqCst),
            pending: self.queued.load(Ordering::SeqCst),
            failures: self.stats.failures.load(Ordering::SeqCst),
            failed: self
                .stats
                .recent
                .lock()
                .map(|f| f.iter().cloned().collect())
                .unwrap_or_default(),
            unset: self.unset.clone(),
        }
    }

    /// Waits at most `within` for what is queued now to be delivered (a
    /// server shutting down), taking notices still.
    pub fn flush(&self, within: Duration) -> Report {
        let started = std::time::Instant::now();
        while self.queued.load(Ordering::SeqCst) > 0 && started.elapsed() < within {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.report()
    }

    /// Stops taking notices and waits at most `within` (in all) for the
    /// queues to drain; what is still queued then is reported as pending.
    pub fn finish(mut self, within: Duration) -> Report {
        let deadline = std::time::Instant::now() + within;
        for t in &mut self.targets {
            t.tx = None;
        }
        for t in &self.targets {
            let done = t.done.lock().ok().and_then(|mut d| d.take());
            if let Some(done) = done {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let _ = done.recv_timeout(left);
            }
        }
        self.report()
    }
}

fn worker(label: &str, url: &str, rx: &Receiver<Vec<u8>>, stats: &Stats, queued: &AtomicU64) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(ATTEMPT_TIMEOUT)
        // A redirect could carry the request (and its secret path) elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            stats.failed(format!(
                "{label}: nothing is sent: no HTTP client: {}",
                e.without_url()
            ));
            return;
        }
    };
    while let Ok(body) = rx.recv() {
        match deliver(&client, url, &body) {
            Ok(()) => {
                stats.delivered.fetch_add(1, Ordering::SeqCst);
            }
            Err(why) => stats.failed(format!("{label}: {why}")),
        }
        queued.fetch_sub(1, Ordering::SeqCst);
    }
}

fn deliver(client: &reqwest::blocking::Client, url: &str, body: &[u8]) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut last = String::new();
    let mut wait = Duration::from_millis(250);
    for attempt in 1..=ATTEMPTS {
        let r = client
            .post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("releaseops/", env!("CARGO_PKG_VERSION")),
            )
            .body(body.to_vec())
            .send();
        let retry_after = match r {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    return Ok(());
                }
                last = format!("HTTP {}", status.as_u16());
                // Only overload and server errors are worth another try.
                if !(status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408) {
                    return Err(format!("{last} (not retried)"));
                }
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
            }
            // The error's text without the URL it was sent to.
            Err(e) => {
                last = e.without_url().to_string();
                None
            }
        };
        if attempt == ATTEMPTS {
            break;
        }
        let nap = retry_after.unwrap_or(wait);
        if started.elapsed() + nap >= MAX_PER_NOTICE {
            return Err(format!(
                "{last} after {attempt} attempts ({} s, the most one notice is tried for)",
                MAX_PER_NOTICE.as_secs()
            ));
        }
        std::thread::sleep(nap);
        wait *= 2;
    }
    Err(format!("{last} after {ATTEMPTS} attempts"))
}

/// The notice as the webhook's format writes it.
pub fn payload(format: NotifyFormat, n: &Notice) -> Value {
    match format {
        NotifyFormat::Json => {
            let mut v = serde_json::to_value(n).unwrap_or_default();
            v["source"] = json!("releaseops");
            v
        }
        NotifyFormat::Slack => {
            let esc = |s: &str| {
                s.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            };
            let title = match n.event.as_str() {
                "approval_pending" => "Approval needed",
                "promotion_blocked" => "Promotion blocked",
                "promotion_overridden" => "Promotion with gates overridden",
                "rollback" => "Rollback",
                "eval_failed" => "Evaluation failed",
                _ => "Decision agent: NO_GO",
            };
            let context = [
                Some(n.bundle_id.clone()),
                n.version.clone(),
                n.env.clone(),
                Some(n.actor.clone()),
                Some(n.at.clone()),
            ]
            .into_iter()
            .flatten()
            .map(|s| esc(&s))
            .collect::<Vec<_>>()
            .join(" · ");
            json!({
                "text": format!("[releaseops] {title}: {}", esc(&n.summary)),
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{title}*\n{}", esc(&n.summary))}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
                ],
            })
        }
    }
}
