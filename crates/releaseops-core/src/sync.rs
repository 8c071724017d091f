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
    let _outermost = Attempts::enter();
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

thread_local! {
    /// Nested `retrying` calls on this thread, and the agent's verdicts
    /// that blocked an attempt of the outermost one.
    static ATTEMPTS: std::cell::RefCell<(u32, std::collections::HashMap<String, releaseops_format::history::GateResult>)> =
        std::cell::RefCell::default();
}

/// The outermost `retrying` of a thread forgets the verdicts when it ends.
struct Attempts;

impl Attempts {
    fn enter() -> Attempts {
        ATTEMPTS.with(|a| a.borrow_mut().0 += 1);
        Attempts
    }
}

impl Drop for Attempts {
    fn drop(&mut self) {
        ATTEMPTS.with(|a| {
            let mut a = a.borrow_mut();
            a.0 = a.0.saturating_sub(1);
            if a.0 == 0 {
                a.1.clear();
            }
        });
    }
}

/// The agent's gate for a promotion (`key`), as an operation applied again
/// after a lost race may have it: once an attempt was blocked by the
/// agent, a later attempt of the same operation is blocked too, with that
/// reason. A lost race must not let a changeable verdict (a model's) be
/// asked again until it says yes; running the command again asks anew.
pub(crate) fn agent_gate(
    key: &str,
    now: releaseops_format::history::GateResult,
) -> releaseops_format::history::GateResult {
    use releaseops_format::history::GateStatus;
    ATTEMPTS.with(|a| {
        let mut a = a.borrow_mut();
        if now.status != GateStatus::Passed {
            a.1.entry(key.to_string()).or_insert_with(|| now.clone());
            return now;
        }
        match a.1.get(key) {
            Some(earlier) => releaseops_format::history::GateResult {
                status: earlier.status,
                reason: format!(
                    "{} (decided on an earlier attempt, before the team's remote moved; run the command again to ask anew)",
                    earlier.reason
                ),
                passes_at: earlier.passes_at.clone(),
                ..now
            },
            None => now,
        }
    })
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

/// One change made offline, made again on the remote's state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reapplied {
    /// Its record's number in this clone's offline history.
    pub offline_seq: u64,
    /// What it was (`promote support-agent@1.2.0 -> prod by ...`).
    pub change: String,
    pub landed: bool,
    /// Why it did not land (a gate, a rejection that arrived, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What `releaseops sync` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncReport {
    #[serde(flatten)]
    pub status: releaseops_store::SyncStatus,
    /// Offline changes made again because the remote had moved past them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reapplied: Vec<Reapplied>,
    /// Where the offline changes are kept when some did not land.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_in: Option<String>,
    /// Offline changes an earlier `sync` set aside and did not make again
    /// (refused, or the run was stopped): look at them, make again by hand
    /// what is missing, then delete the file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<String>,
}

/// Set-aside offline changes in `.cache/`, other than `except`.
fn kept_offline(store: &Store, except: Option<&std::path::Path>) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(store.dir().join(".cache"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("offline-") && n.ends_with(".json"))
                && Some(p.as_path()) != except
        })
        .map(|p| p.display().to_string())
        .collect();
    out.sort();
    out
}

/// `releaseops sync`: this clone brought to the remote, its offline changes
/// pushed. Changes made offline on a state the remote has since moved past
/// are made again, one by one and in order, on the remote's state and
/// through their gates, as the person who made them: each lands or is
/// refused with the reason, as if it were made now.
pub fn sync(ctx: &crate::Ctx<'_>) -> Result<SyncReport> {
    let store = ctx.store;
    match store.sync_now() {
        Ok(status) => {
            return Ok(SyncReport {
                status,
                reapplied: Vec::new(),
                kept_in: None,
                unfinished: kept_offline(store, None),
            });
        }
        Err(StoreError::Sync {
            failure: SyncFailure::Unpushed,
            ..
        }) => {}
        Err(e) => return Err(e.into()),
    }
    let offline = store.set_aside_offline()?;
    let mut reapplied = Vec::new();
    for rec in &offline.records {
        let as_them = crate::Ctx {
            store,
            actor: rec.actor.clone(),
            now: ctx.now,
            git_commit: ctx.git_commit,
            simulated_clock: ctx.simulated_clock,
            runtime: ctx.runtime,
        };
        let result = reapply(&as_them, rec, &offline.files);
        reapplied.push(Reapplied {
            offline_seq: rec.seq,
            change: describe(rec),
            landed: result.is_ok(),
            why: result.err(),
        });
    }
    let all_landed = reapplied.iter().all(|r| r.landed);
    if all_landed {
        let _ = std::fs::remove_file(&offline.backup);
    }
    let status = store.sync_now()?;
    Ok(SyncReport {
        status,
        reapplied,
        kept_in: (!all_landed).then(|| offline.backup.display().to_string()),
        unfinished: kept_offline(store, Some(&offline.backup)),
    })
}

fn describe(rec: &releaseops_format::history::Record) -> String {
    let what = format!(
        "{}@{}",
        rec.bundle_id.as_deref().unwrap_or("?"),
        rec.version.as_deref().unwrap_or("?")
    );
    let env = rec
        .env
        .as_deref()
        .map(|e| format!(" -> {e}"))
        .unwrap_or_default();
    format!("{} {what}{env} by {}", rec.event.as_str(), rec.actor)
}

/// Makes one offline change again; `Err` says why it did not land.
fn reapply(
    ctx: &crate::Ctx<'_>,
    rec: &releaseops_format::history::Record,
    files: &std::collections::BTreeMap<String, Option<String>>,
) -> std::result::Result<(), String> {
    use releaseops_format::history::EventKind;
    let id = rec.bundle_id.clone().unwrap_or_default();
    let version = rec.version.clone().unwrap_or_default();
    let env = rec.env.clone().unwrap_or_default();
    let failed = |e: CoreError| e.to_string();
    match rec.event {
        EventKind::Promote if rec.overridden => Err(
            "it overrode its gates, which needs its author's authority now: make it again with `promote --skip-gates`".into(),
        ),
        EventKind::Promote => {
            let out = crate::release::promote(
                ctx,
                &crate::release::PromoteRequest {
                    id,
                    version,
                    env,
                    reason: rec.reason.clone(),
                    dry_run: false,
                    skip_gates: false,
                },
            )
            .map_err(failed)?;
            if out.promoted || out.unchanged {
                Ok(())
            } else {
                let reasons: Vec<String> = out
                    .gates
                    .iter()
                    .filter(|g| g.status == releaseops_format::history::GateStatus::Failed)
                    .map(|g| g.reason.clone())
                    .collect();
                Err(format!("blocked: {}", reasons.join("; ")))
            }
        }
        EventKind::Approve if rec.signature.is_some() => Err(
            "a signed approval: sign it again with `approve --sign-with KEY` (a signature cannot be made for its author)".into(),
        ),
        EventKind::Approve => crate::release::approve(ctx, &id, &version, &env, rec.reason.clone(), None)
            .map(|_| ())
            .map_err(failed),
        EventKind::Reject => crate::release::reject(
            ctx,
            &id,
            &version,
            rec.env.as_deref(),
            rec.reason.as_deref().unwrap_or("rejected offline"),
        )
        .map(|_| ())
        .map_err(failed),
        EventKind::Rollback => crate::release::rollback(
            ctx,
            &crate::release::RollbackRequest {
                env,
                id,
                steps: None,
                to: rec.version.clone(),
                reason: rec.reason.clone(),
            },
        )
        .map(|_| ())
        .map_err(failed),
        EventKind::BundleCreate => {
            let rel = Store::bundle_rel_path(&id, &version);
            let manifest = files
                .get(&rel)
                .cloned()
                .flatten()
                .ok_or_else(|| format!("its manifest ({rel}) was not kept"))?;
            crate::bundle::recreate(ctx, &manifest, files)
                .map(|_| ())
                .map_err(failed)
        }
        other => Err(format!(
            "a {} is not made again on its own: run it again",
            other.as_str()
        )),
    }
}
