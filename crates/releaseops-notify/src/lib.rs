//! Notices to webhooks. `notify:` in `config.yaml` lists the webhooks (each
//! naming the environment variable that holds its URL), the format each
//! takes and the events it wants; [`Notifier`] delivers what a change gave
//! rise to (`releaseops_core::notify`), after the change has landed:
//!
//! - [`Notifier::send`] never blocks: notices go to a bounded queue, and
//!   what does not fit is counted as dropped;
//! - one worker thread posts them, each with a timeout, retrying failures
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

/// Notices waiting at most; more are dropped (and counted).
pub const QUEUE: usize = 256;
/// Attempts per notice and webhook.
pub const ATTEMPTS: u32 = 4;
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

struct Target {
    label: String,
    url: String,
    format: NotifyFormat,
    wants: NotifyTarget,
}

struct Job {
    target: usize,
    body: Vec<u8>,
}

#[derive(Default)]
struct Stats {
    delivered: AtomicU64,
    dropped: AtomicU64,
    failed: Mutex<Vec<String>>,
}

/// What was delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub delivered: u64,
    /// Notices that did not fit the queue.
    pub dropped: u64,
    /// Still queued when `finish` stopped waiting.
    pub pending: u64,
    /// Each failed delivery: the webhook's name and why (never its URL).
    pub failed: Vec<String>,
    /// Webhooks whose URL variable is not set (nothing sent to them).
    pub unset: Vec<String>,
}

/// Delivers notices in the background.
pub struct Notifier {
    targets: Arc<Vec<Target>>,
    tx: Option<SyncSender<Job>>,
    queued: Arc<AtomicU64>,
    /// Says the worker is done (the queue closed and drained).
    done: Mutex<Option<Receiver<()>>>,
    stats: Arc<Stats>,
    unset: Vec<String>,
}

impl Notifier {
    /// A notifier for `targets`, their URLs read with `var` (the process's
    /// environment in production). No thread starts when there is nothing
    /// to deliver to.
    pub fn new(targets: &[NotifyTarget], var: impl Fn(&str) -> Option<String>) -> Notifier {
        let mut unset = Vec::new();
        let mut live = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let label = t.label(i);
            match var(&t.url_env).map(|u| u.trim().to_string()) {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                    live.push(Target {
                        label,
                        url: u,
                        format: t.format,
                        wants: t.clone(),
                    })
                }
                Some(_) => unset.push(format!("{label}: ${} is not an http(s) URL", t.url_env)),
                None => unset.push(format!("{label}: ${} is not set", t.url_env)),
            }
        }
        let targets = Arc::new(live);
        let stats = Arc::new(Stats::default());
        let queued = Arc::new(AtomicU64::new(0));
        if targets.is_empty() {
            return Notifier {
                targets,
                tx: None,
                queued,
                done: Mutex::new(None),
                stats,
                unset,
            };
        }
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let (done_tx, done) = sync_channel::<()>(1);
        let (t, s, q) = (targets.clone(), stats.clone(), queued.clone());
        let spawned = std::thread::Builder::new()
            .name("releaseops-notify".into())
            .spawn(move || {
                worker(&t, &rx, &s, &q);
                let _ = done_tx.send(());
            });
        let tx = match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                if let Ok(mut f) = stats.failed.lock() {
                    f.push(format!(
                        "no notification was sent: the worker thread did not start: {e}"
                    ));
                }
                None
            }
        };
        Notifier {
            targets,
            tx,
            queued,
            done: Mutex::new(Some(done)),
            stats,
            unset,
        }
    }

    /// True when some webhook would hear something.
    pub fn is_active(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues `notices` for every webhook that wants them; never blocks.
    pub fn send(&self, notices: &[Notice]) {
        let Some(tx) = &self.tx else { return };
        for n in notices {
            for (i, t) in self.targets.iter().enumerate() {
                if !t.wants.wants(n.event) {
                    continue;
                }
                let body = payload(t.format, n).to_string().into_bytes();
                self.queued.fetch_add(1, Ordering::SeqCst);
                match tx.try_send(Job { target: i, body }) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        self.queued.fetch_sub(1, Ordering::SeqCst);
                        self.stats.dropped.fetch_add(1, Ordering::SeqCst);
                    }
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
            failed: self
                .stats
                .failed
                .lock()
                .map(|f| f.clone())
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

    /// Stops taking notices and waits at most `within` for the queue to
    /// drain; what is still queued then is reported as pending.
    pub fn finish(mut self, within: Duration) -> Report {
        self.tx = None;
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            let _ = done.recv_timeout(within);
        }
        self.report()
    }
}

fn worker(targets: &[Target], rx: &Receiver<Job>, stats: &Stats, queued: &AtomicU64) {
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
            if let Ok(mut f) = stats.failed.lock() {
                f.push(format!(
                    "no notification was sent: no HTTP client: {}",
                    e.without_url()
                ));
            }
            return;
        }
    };
    while let Ok(job) = rx.recv() {
        let t = &targets[job.target];
        match deliver(&client, t, &job.body) {
            Ok(()) => {
                stats.delivered.fetch_add(1, Ordering::SeqCst);
            }
            Err(why) => {
                if let Ok(mut f) = stats.failed.lock() {
                    f.push(format!("{}: {why}", t.label));
                }
            }
        }
        queued.fetch_sub(1, Ordering::SeqCst);
    }
}

fn deliver(client: &reqwest::blocking::Client, t: &Target, body: &[u8]) -> Result<(), String> {
    let mut last = String::new();
    let mut wait = Duration::from_millis(250);
    for attempt in 1..=ATTEMPTS {
        let r = client
            .post(&t.url)
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
        if attempt < ATTEMPTS {
            std::thread::sleep(retry_after.unwrap_or(wait));
            wait *= 2;
        }
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
