//! Changes that land on the team's remote (`sync:` in `config.yaml`). The
//! store pushes each change with compare-and-swap before applying it here;
//! when another clone pushed first, nothing was applied, and the whole
//! operation runs again on the state the remote now holds, so every gate
//! (a rejection that arrived, a pipeline that moved, an approval for another
//! hash) is checked again rather than carried over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use releaseops_store::{Store, StoreError, SyncFailure};

use crate::{CoreError, Result};

/// Re-applications in this process (for the caller to report).
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// How many times changes in this process were run again because the
/// remote moved.
pub fn retries() -> u64 {
    RETRIES.load(Ordering::Relaxed)
}

fn is_conflict(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::Store(StoreError::Sync {
            failure: SyncFailure::Conflict,
            ..
        })
    )
}

/// Runs `op` (one whole operation: its transaction, its gates) until it
/// lands or fails for another reason than a lost race, at most
/// `sync.retries` more times, waiting a jittered, growing pause between
/// tries so contending clones spread out.
pub fn retrying<T>(store: &Store, mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let retries = store.config().sync.as_ref().map_or(0, |s| s.retries());
    let mut attempt = 0u32;
    loop {
        match op() {
            Err(e) if is_conflict(&e) && attempt < retries => {
                attempt += 1;
                RETRIES.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(backoff(attempt));
            }
            Err(e) if is_conflict(&e) => {
                return Err(CoreError::Store(StoreError::Sync {
                    failure: SyncFailure::Conflict,
                    message: format!(
                        "{e}; tried {} times, and another clone got there first every time",
                        attempt + 1
                    ),
                }));
            }
            r => return r,
        }
    }
}

/// A short random pause (up to 15 ms), the same at every attempt. The
/// clone that just landed a change starts its next one at once and, having
/// nothing new to apply, is the quickest to push again; a pause that grew
/// with each lost race would hand it every race after the first (the
/// capture effect), so the pause only spreads contenders apart.
fn backoff(_attempt: u32) -> Duration {
    Duration::from_micros(jitter() % 15_000)
}

/// A cheap random number (the clock's nanoseconds, the process and a
/// counter, mixed): enough to keep contending processes apart.
fn jitter() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x =
        t ^ (u64::from(std::process::id()) << 32) ^ N.fetch_add(0x9E37_79B9, Ordering::Relaxed);
    // splitmix64
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
