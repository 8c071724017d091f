//! The store lock: one exclusive advisory lock (`flock`) on `.releaseops/.lock`
//! serialises every state change across processes. The kernel drops it when the
//! holder exits, however it exits, so a killed process never leaves it stuck.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Result, StoreError};

pub struct LockGuard {
    _file: File,
}

/// The exclusive lock every change holds.
pub fn acquire(path: &Path, timeout: Duration) -> Result<LockGuard> {
    acquire_mode(path, timeout, false)
}

/// A shared lock for readers that look at several files at once: they wait
/// for a change in progress, and never block each other.
pub fn acquire_shared(path: &Path, timeout: Duration) -> Result<LockGuard> {
    acquire_mode(path, timeout, true)
}

fn acquire_mode(path: &Path, timeout: Duration, shared: bool) -> Result<LockGuard> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io("cannot open lock file", path, e))?;
    let start = Instant::now();
    let mut wait = Duration::from_millis(1);
    loop {
        let attempt = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match attempt {
            Ok(()) => return Ok(LockGuard { _file: file }),
            Err(TryLockError::WouldBlock) => {
                if start.elapsed() >= timeout {
                    return Err(StoreError::LockTimeout {
                        path: path.to_path_buf(),
                        secs: timeout.as_secs(),
                    });
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(20));
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io("cannot lock", path, e)),
        }
    }
}
