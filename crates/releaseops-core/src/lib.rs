//! The release engine. Every operation takes a typed request and a [`Ctx`]
//! (the store, who is acting, and what time it is) and returns a typed result;
//! the CLI renders them and nothing here prints.
//!
//! Gates are evaluated under the store lock, in the same transaction that
//! writes the promotion, so the decision and the change cannot drift apart.

pub mod audit;
pub mod bundle;
pub mod envs;
mod error;
pub mod gates;
pub mod release;

use jiff::Timestamp;
use releaseops_store::{Signature, Store};

pub use error::{CoreError, Result};

/// Who is acting, when, and on which store.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub actor: String,
    pub now: Timestamp,
    /// Commit each change to git (when the store is in a repository and the
    /// project config does not turn commits off).
    pub git_commit: bool,
}

impl Ctx<'_> {
    pub(crate) fn author(&self) -> Option<Signature> {
        (self.git_commit && self.store.config().git.commit)
            .then(|| Signature::from_actor(&self.actor))
    }

    pub(crate) fn now_str(&self) -> String {
        releaseops_format::time::format(self.now)
    }
}

/// True when `actor` is `entry`, or has `entry` as its name or email.
pub fn actor_matches(actor: &str, entry: &str) -> bool {
    let entry = entry.trim();
    if actor.trim().eq_ignore_ascii_case(entry) {
        return true;
    }
    let sig = Signature::from_actor(actor);
    (!sig.email.is_empty() && sig.email.eq_ignore_ascii_case(entry)) || sig.name == entry
}
