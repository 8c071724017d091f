//! Environment pointers, watched. One thread stats the environment files
//! (every 50 ms by default, and at once after the server's own writes);
//! when one changes it re-reads the pointers, tells the runtime loader, and
//! publishes a snapshot and one [`Move`] per pointer that moved. Promotions
//! from the CLI or another server are seen the same way as our own.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use releaseops_runtime::RuntimeLoader;
use releaseops_store::Store;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

/// env -> bundle id -> version.
pub type Pointers = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Bumped on every change the watcher sees (per server process).
    pub seq: u64,
    pub environments: Pointers,
}

/// One pointer that moved: a promotion, a rollback, or a bundle appearing
/// in or leaving an environment.
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    pub seq: u64,
    /// When the server saw it.
    pub at: String,
    pub env: String,
    pub bundle_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

pub struct Watcher {
    wake: mpsc::Sender<()>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// A sender that makes the watcher look now.
    pub fn waker(&self) -> mpsc::Sender<()> {
        self.wake.clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.wake.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Stamps = HashMap<std::ffi::OsString, (u64, Option<SystemTime>, u64)>;

fn stamps(dir: &Path) -> Stamps {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(m) = e.metadata() {
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let inode = 0;
            out.insert(e.file_name(), (m.len(), m.modified().ok(), inode));
        }
    }
    out
}

/// The pointers of every environment; an environment whose file does not
/// read keeps what it had (a broken file is not a move). `None` when the
/// environments cannot be listed at all: that round is skipped.
fn read_pointers(store: &Store, previous: &Pointers) -> Option<Pointers> {
    let mut out = Pointers::new();
    for name in store.environments().ok()? {
        match store.load_env(&name) {
            Ok(env) => {
                out.insert(name, env.bundle_mappings.into_iter().collect());
            }
            Err(_) => {
                if let Some(p) = previous.get(&name) {
                    out.insert(name, p.clone());
                }
            }
        }
    }
    Some(out)
}

fn moves(old: &Pointers, new: &Pointers, seq: u64, at: &str) -> Vec<Move> {
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    let envs: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for env in envs {
        let (o, n) = (
            old.get(env).unwrap_or(&empty),
            new.get(env).unwrap_or(&empty),
        );
        let ids: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
        for id in ids {
            if o.get(id) != n.get(id) {
                out.push(Move {
                    seq,
                    at: at.to_string(),
                    env: env.clone(),
                    bundle_id: id.clone(),
                    from: o.get(id).cloned(),
                    to: n.get(id).cloned(),
                });
            }
        }
    }
    out
}

/// A running watcher and what it publishes.
pub struct Watching {
    pub watcher: Watcher,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub moves: broadcast::Sender<Move>,
}

/// Reads the pointers now and starts watching them.
pub fn start(
    root: PathBuf,
    interval: Duration,
    loader: RuntimeLoader,
) -> Result<Watching, releaseops_store::StoreError> {
    let store = Store::open(&root)?;
    let dir = store.dir().join("environments");
    let mut seen = stamps(&dir);
    let mut current = read_pointers(&store, &Pointers::new()).unwrap_or_default();
    drop(store);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot {
        seq: 0,
        environments: current.clone(),
    }));
    let (moves_tx, _) = broadcast::channel(1024);
    let moves_out = moves_tx.clone();
    let (wake, woken) = mpsc::channel::<()>();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("releaseops-watch".into())
        .spawn({
            let dir = dir.clone();
            move || {
                let mut seq = 0u64;
                let mut store: Option<Store> = None;
                loop {
                    match woken.recv_timeout(interval) {
                        Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    while woken.try_recv().is_ok() {}
                    let now = stamps(&dir);
                    if now == seen {
                        continue;
                    }
                    if store.is_none() {
                        store = Store::open(&root).ok();
                    }
                    let Some(s) = store.as_ref() else { continue };
                    // Not read: leave `seen` as it was, so the next round retries.
                    let Some(next) = read_pointers(s, &current) else {
                        continue;
                    };
                    seen = now;
                    let at = releaseops_format::time::format(jiff::Timestamp::now());
                    let moved = moves(&current, &next, seq + 1, &at);
                    if moved.is_empty() {
                        continue;
                    }
                    seq += 1;
                    current = next;
                    // The loader first, so whoever the snapshot wakes reads the new bundle.
                    loader.invalidate();
                    snap_tx.send_replace(Arc::new(Snapshot {
                        seq,
                        environments: current.clone(),
                    }));
                    for m in moved {
                        let _ = moves_tx.send(m);
                    }
                }
            }
        })
        .map_err(|source| releaseops_store::StoreError::Io {
            what: "cannot start the watcher thread for",
            path: dir.clone(),
            source,
        })?;
    Ok(Watching {
        watcher: Watcher {
            wake,
            stop,
            thread: Some(thread),
        },
        snapshots: snap_rx,
        moves: moves_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(items: &[(&str, &str, &str)]) -> Pointers {
        let mut out = Pointers::new();
        for (e, b, v) in items {
            out.entry(e.to_string())
                .or_default()
                .insert(b.to_string(), v.to_string());
        }
        out
    }

    #[test]
    fn moves_name_every_pointer_that_changed_and_nothing_else() {
        let old = p(&[("prod", "a", "1"), ("prod", "b", "1"), ("dev", "a", "2")]);
        let new = p(&[("prod", "a", "2"), ("prod", "b", "1"), ("stage", "a", "2")]);
        let m = moves(&old, &new, 7, "t");
        let got: Vec<_> = m
            .iter()
            .map(|m| {
                (
                    m.env.as_str(),
                    m.bundle_id.as_str(),
                    m.from.as_deref(),
                    m.to.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("dev", "a", Some("2"), None),
                ("prod", "a", Some("1"), Some("2")),
                ("stage", "a", None, Some("2")),
            ]
        );
        assert!(m.iter().all(|m| m.seq == 7));
        assert!(moves(&new, &new, 1, "t").is_empty());
    }
}
