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

pub fn acquire(path: &Path, timeout: Duration) -> Result<LockGuard> {
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
        match file.try_lock() {
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
