//! The store's locks, advisory (`flock`), so the kernel drops them when the
//! holder exits, however it exits.
//!
//! - `.lock`, exclusive: one change at a time, held for the whole
//!   transaction (gates, the decision agent, the write). Writers wait for it
//!   a bounded time (`lock.wait_seconds`, 30 s by default) and then fail
//!   naming who holds it and since when (the holder writes that into the
//!   file once it has the lock).
//! - `.apply.lock`: held exclusively only while a change is written to disk
//!   (milliseconds), shared by readers that look at several files at once.
//!   Readers never wait for a writer's gates, agent or git commit, only for
//!   the write itself, and that a bounded time too: a writer stopped in the
//!   middle of one cannot block them for good.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

pub struct LockGuard {
    _files: Vec<File>,
}

/// Taken before the apply lock: exclusively by a writer about to write,
/// shared (and let go at once) by a reader about to read. A writer waiting
/// thus stops new readers from arriving, so a steady stream of them cannot
/// starve it; it waits only for those already reading.
const INTENT: &str = ".apply.intent";

/// The apply lock for reading several files at once.
pub fn acquire_read(dir: &Path, timeout: Duration) -> Result<LockGuard> {
    let _turn = wait_for(&dir.join(INTENT), timeout, true)?;
    let file = wait_for(&dir.join(crate::APPLY_LOCK), timeout, true)?;
    Ok(LockGuard { _files: vec![file] })
}

/// The apply lock for writing a change.
pub fn acquire_write(dir: &Path, timeout: Duration) -> Result<LockGuard> {
    let turn = wait_for(&dir.join(INTENT), timeout, false)?;
    let file = wait_for(&dir.join(crate::APPLY_LOCK), timeout, false)?;
    Ok(LockGuard {
        _files: vec![turn, file],
    })
}

/// Who holds the writer lock, as the holder recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub since: String,
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "process {} (`{}`) since {}",
            self.pid, self.command, self.since
        )
    }
}

fn open(path: &Path) -> Result<File> {
    // A lock file committed as a link would have its target truncated.
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
        return Err(StoreError::Source {
            message: format!(
                "{} is not a regular file (a link, say); releaseops never follows one",
                path.display()
            ),
            hint: Some(
                "remove it (`rm` removes the link, not its target) and run the command again"
                    .into(),
            ),
        });
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io("cannot open lock file", path, e))
}

/// The exclusive writer lock; on success this process is recorded as the
/// holder.
pub fn acquire(path: &Path, timeout: Duration) -> Result<LockGuard> {
    let mut file = wait_for(path, timeout, false)?;
    let me = Holder {
        pid: std::process::id(),
        since: releaseops_format::time::format(jiff::Timestamp::now()),
        command: std::env::args()
            .take(4)
            .map(|a| releaseops_format::names::escape_for_display(&a).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    };
    // Best effort: the lock is what counts, the note only helps people.
    if let Ok(text) = serde_json::to_vec(&me) {
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.write_all(&text);
    }
    Ok(LockGuard { _files: vec![file] })
}

/// The exclusive lock if it is free right now.
pub fn try_acquire(path: &Path) -> Result<Option<LockGuard>> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(LockGuard { _files: vec![file] })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(StoreError::io("cannot lock", path, e)),
    }
}

/// Who holds the writer lock at `path`, if anyone recorded it.
pub fn holder(path: &Path) -> Option<Holder> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    serde_json::from_str(&text).ok()
}

fn wait_for(path: &Path, timeout: Duration, shared: bool) -> Result<File> {
    let file = open(path)?;
    let start = Instant::now();
    let mut wait = Duration::from_millis(1);
    loop {
        let attempt = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match attempt {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {
                if start.elapsed() >= timeout {
                    // The apply locks' holder is the writer lock's.
                    let writer = path.with_file_name(".lock");
                    return Err(StoreError::LockTimeout {
                        path: path.to_path_buf(),
                        secs: timeout.as_secs_f64(),
                        holder: holder(&writer).map(|h| h.to_string()),
                    });
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(20));
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io("cannot lock", path, e)),
        }
    }
}
