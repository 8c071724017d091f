//! What every command needs: the global options, the store, who is acting and
//! the current time.

use std::path::PathBuf;

use jiff::Timestamp;
use releaseops_core::{CoreError, Ctx, ErrorKind};
use releaseops_store::{Store, StoreError};

use crate::cli::Global;

/// A failed command: a machine-readable kind (which sets the exit code), the
/// message and what to do.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    /// The exit code the kind calls for.
    pub(crate) fn code(&self) -> u8 {
        self.kind.exit_code()
    }

    pub(crate) fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure {
            kind: ErrorKind::Usage,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        Failure {
            kind: e.kind(),
            hint: e.hint(),
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        CoreError::from(e).into()
    }
}

impl From<releaseops_format::FormatError> for Failure {
    fn from(e: releaseops_format::FormatError) -> Self {
        CoreError::from(e).into()
    }
}

pub(crate) type CmdResult = Result<u8, Failure>;

pub(crate) struct App {
    pub global: Global,
    pub now: Timestamp,
    /// RELEASEOPS_NOW set the clock.
    pub simulated_clock: bool,
    /// The process's async runtime, started when a command first needs it
    /// (libraries run their evaluations and model calls on it).
    runtime: std::cell::OnceCell<Option<tokio::runtime::Runtime>>,
}

impl App {
    pub(crate) fn new(global: Global) -> Result<App, Failure> {
        let (now, simulated_clock) = match std::env::var("RELEASEOPS_NOW") {
            Ok(s) if !s.trim().is_empty() => {
                // A hand-set clock passes soak gates and opens freeze
                // windows: only ever in a rehearsal, and only when asked.
                if !global.rehearsal {
                    return Err(Failure::usage(
                        "RELEASEOPS_NOW is set, but a simulated clock is only allowed in a rehearsal",
                        "unset RELEASEOPS_NOW, or rehearse: `releaseops init --rehearsal --path <dir>`, then pass --rehearsal",
                    ));
                }
                let t = releaseops_format::time::parse(&s).map_err(|e| {
                    Failure::usage(
                        format!("RELEASEOPS_NOW: {e}"),
                        "unset it, or give an RFC 3339 time such as 2026-11-21T09:00:00Z",
                    )
                })?;
                crate::output::warn(&format!(
                    "RELEASEOPS_NOW is set: rehearsing as if it were {s}; records written are marked simulated_clock"
                ));
                (t, true)
            }
            _ => (Timestamp::now(), false),
        };
        Ok(App {
            global,
            now: releaseops_format::time::truncate_micros(now),
            simulated_clock,
            runtime: std::cell::OnceCell::new(),
        })
    }

    pub(crate) fn start_dir(&self) -> PathBuf {
        self.global
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
    }

    pub(crate) fn store(&self) -> Result<Store, Failure> {
        let store = Store::discover(&self.start_dir())?;
        store.set_offline(self.global.offline);
        // With sync on, every command starts from the team's latest state.
        // One that cannot be had is a warning here (what this clone holds
        // is still verified and may be read); a change refuses to go on
        // without it.
        if let Err(e) = store.pull_latest() {
            let f = Failure::from(e);
            crate::output::warn(&format!(
                "working from this clone's state, not the team's: {}",
                f.message
            ));
        }
        if store.git().is_none() && !self.global.no_commit {
            crate::output::remember_outside_git(store.dir());
        }
        if self.global.rehearsal {
            let view = store.chain_view()?;
            if !view.state().is_rehearsal(store.config()) {
                return Err(Failure::usage(
                    format!(
                        "--rehearsal: {} is not a rehearsal store{}",
                        store.root().display(),
                        if store.config().rehearsal {
                            " (its config says rehearsal, but its history holds production records)"
                        } else {
                            ""
                        }
                    ),
                    "rehearse in a store made with `releaseops init --rehearsal --path <dir>`; drop --rehearsal (and RELEASEOPS_NOW) here",
                ));
            }
        }
        Ok(store)
    }

    pub(crate) fn actor(&self, store: &Store) -> String {
        if let Some(a) = self
            .global
            .actor
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            return a.to_string();
        }
        store
            .git()
            .map_or_else(
                || releaseops_store::git::user_identity(store.root()),
                |g| g.identity(),
            )
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".into())
    }

    /// As [`App::ctx`], at this moment (for commands that wait or watch);
    /// a simulated clock stays where it was set.
    pub(crate) fn ctx_now<'a>(&'a self, store: &'a Store) -> Ctx<'a> {
        let mut ctx = self.ctx(store);
        if !self.simulated_clock {
            ctx.now = Timestamp::now();
        }
        ctx
    }

    pub(crate) fn ctx<'a>(&'a self, store: &'a Store) -> Ctx<'a> {
        Ctx {
            store,
            actor: self.actor(store),
            now: self.now,
            git_commit: !self.global.no_commit,
            simulated_clock: self.simulated_clock,
            runtime: Some(self),
        }
    }

    /// The process's async runtime (two workers: evaluations are bound by
    /// the agent and the network, not the CPU), started on first use.
    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .ok()
            })
            .as_ref()
            .map(|rt| rt.handle().clone())
    }

    /// A notification Ctrl-C sends (so a long run stops cleanly and keeps
    /// what it finished), or `None` without a runtime.
    pub(crate) fn cancel_on_ctrl_c(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        let rt = self.runtime()?;
        let cancel = std::sync::Arc::new(tokio::sync::Notify::new());
        let notify = cancel.clone();
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                notify.notify_one();
            }
        });
        Some(cancel)
    }
}

impl releaseops_core::AsyncRuntime for App {
    fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime()
    }
}
