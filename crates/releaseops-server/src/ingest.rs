//! The trace store's one writer: batches of spans from `POST /v1/traces`
//! queue here and are stored by a single thread, several batches to a
//! transaction when they arrive together. The queue is bounded: when it is
//! full the request is answered 429 with `Retry-After` (the exporter
//! retries), never held or dropped. A request is answered only once its
//! spans are committed, so an exporter told "success" has lost nothing.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use releaseops_traces::{Settings, Span, TraceStore};
use tokio::sync::oneshot;

/// Batches waiting at most (each up to the body limit).
pub(crate) const QUEUE: usize = 64;
/// Batches stored in one transaction at most.
const GROUP: usize = 32;
/// How often old traces are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

struct Job {
    spans: Vec<Span>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle requests use.
pub(crate) struct Ingest {
    tx: SyncSender<Job>,
    pub(crate) settings: Settings,
}

pub(crate) enum Refused {
    /// The queue is full: retry after a moment.
    Busy,
    /// The writer stopped (the store could not be opened again).
    Gone,
}

impl Ingest {
    /// Starts the writer on its own thread. The store is opened there, and
    /// opened again after a failure (a PostgreSQL restart).
    pub(crate) fn start(settings: Settings) -> Result<Ingest, String> {
        // Opened once here so a server with an unusable store says so at start.
        let store = settings.open().map_err(|e| e.to_string())?;
        let (tx, rx) = sync_channel(QUEUE);
        let s = settings.clone();
        std::thread::Builder::new()
            .name("trace-writer".into())
            .spawn(move || writer(store, &s, rx))
            .map_err(|e| format!("cannot start the trace writer: {e}"))?;
        Ok(Ingest { tx, settings })
    }

    /// Queues spans; the answer comes once they are committed.
    pub(crate) fn submit(
        &self,
        spans: Vec<Span>,
    ) -> Result<oneshot::Receiver<Result<(), String>>, Refused> {
        let (done, rx) = oneshot::channel();
        match self.tx.try_send(Job { spans, done }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(Refused::Busy),
            Err(TrySendError::Disconnected(_)) => Err(Refused::Gone),
        }
    }
}

fn writer(mut store: TraceStore, settings: &Settings, rx: Receiver<Job>) {
    let mut last_prune: Option<Instant> = None;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let result = store_all(&mut store, &jobs).map_err(|e| e.to_string());
        match result {
            Ok(()) => {
                for j in jobs {
                    let _ = j.done.send(Ok(()));
                }
            }
            Err(e) => {
                // A store that failed (a lost PostgreSQL connection) is
                // opened again; then each batch is tried alone, so one the
                // database refuses cannot fail the others with it.
                if let Ok(s) = settings.open() {
                    store = s;
                }
                if jobs.len() == 1 {
                    for j in jobs {
                        let _ = j.done.send(Err(e.clone()));
                    }
                } else {
                    for j in jobs {
                        let alone = store_all(&mut store, std::slice::from_ref(&j))
                            .map_err(|e| e.to_string());
                        let _ = j.done.send(alone);
                    }
                }
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() > PRUNE_EVERY) {
            let now = jiff::Timestamp::now().as_nanosecond() as i64;
            let _ = store.prune(settings.retention_cutoff_ns(now));
            last_prune = Some(Instant::now());
        }
    }
}

fn store_all(store: &mut TraceStore, jobs: &[Job]) -> Result<(), releaseops_traces::TraceError> {
    let mut w = store.writer()?;
    for j in jobs {
        w.add(&j.spans)?;
    }
    w.commit()?;
    Ok(())
}
