//! The release engine. Every operation takes a typed request and a [`Ctx`]
//! (the store, who is acting, and what time it is) and returns a typed result;
//! the CLI renders them and nothing here prints.
//!
//! Gates are evaluated under the store lock, in the same transaction that
//! writes the promotion, so the decision and the change cannot drift apart.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod ablation;
pub mod agent;
pub mod attribution;
pub mod audit;
pub mod bundle;
pub mod envs;
mod error;
pub mod evals;
pub mod evidence;
pub mod export;
pub mod facts;
pub mod gates;
pub mod metrics;
pub mod notify;
pub mod release;
pub mod replay;
pub mod status;
pub mod sync;

use jiff::Timestamp;
use releaseops_store::{Signature, Store};

pub use error::{CoreError, ErrorKind, Result};

/// Who is acting, when, and on which store.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub actor: String,
    pub now: Timestamp,
    /// Commit each change to git (when the store is in a repository and the
    /// project config does not turn commits off).
    pub git_commit: bool,
    /// `now` was set by hand (RELEASEOPS_NOW, the demo); records say so.
    pub simulated_clock: bool,
    /// The async runtime the caller owns, on which evaluations and model
    /// calls run, asked for only when one of those needs it. A library never
    /// starts one (nor installs signal handlers); without one, those
    /// operations say so.
    pub runtime: Option<&'a dyn AsyncRuntime>,
}

/// Where core finds the caller's async runtime. It is asked only when an
/// operation needs one, so a caller may start its runtime on first use and
/// commands that never await start none.
pub trait AsyncRuntime {
    fn handle(&self) -> Option<tokio::runtime::Handle>;
}

impl AsyncRuntime for tokio::runtime::Handle {
    fn handle(&self) -> Option<tokio::runtime::Handle> {
        Some(self.clone())
    }
}

impl Ctx<'_> {
    /// A new history record by this actor, now.
    pub(crate) fn record(
        &self,
        event: releaseops_format::history::EventKind,
    ) -> releaseops_format::history::Record {
        let mut r =
            releaseops_format::history::Record::new(event, self.now_str(), self.actor.clone());
        r.simulated_clock = self.simulated_clock;
        r
    }

    /// The actor names one person on one line (every record checks this
    /// too; checking first gives that answer before any other).
    pub(crate) fn check(&self) -> Result<()> {
        releaseops_format::names::validate_actor(&self.actor)
            .map_err(|e| CoreError::Store(releaseops_store::StoreError::Input(e)))
    }

    /// Who a git commit of this change is by (`None`: commits are off).
    pub fn author(&self) -> Option<Signature> {
        (self.git_commit && self.store.config().git.commit)
            .then(|| Signature::from_actor(&self.actor))
    }

    pub(crate) fn now_str(&self) -> String {
        releaseops_format::time::format(self.now)
    }
}

/// A person as far as an actor string says: `Name <email>`, a bare email, or
/// a bare name. Names compare without case; emails without case and with
/// `+tag` folded away (unless `identity.distinct_plus_domains` lists the
/// domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Identity {
    /// With the default rules (no domain keeps `+tag` addresses apart).
    pub fn parse(actor: &str) -> Identity {
        Identity::parse_in(actor, &releaseops_format::config::IdentityConfig::default())
    }

    pub fn parse_in(actor: &str, rules: &releaseops_format::config::IdentityConfig) -> Identity {
        let actor = actor.trim();
        let sig = Signature::from_actor(actor);
        if !sig.email.is_empty() {
            let name = actor.find('<').map(|i| actor[..i].trim()).unwrap_or("");
            return Identity {
                name: name.to_lowercase(),
                email: rules.normalize_email(&sig.email),
            };
        }
        if actor.contains('@') && !actor.contains(char::is_whitespace) {
            return Identity {
                name: String::new(),
                email: rules.normalize_email(actor),
            };
        }
        Identity {
            name: actor.to_lowercase(),
            email: String::new(),
        }
    }

    /// The key that tells people apart: the email, else the name.
    pub fn key(&self) -> &str {
        if self.email.is_empty() {
            &self.name
        } else {
            &self.email
        }
    }

    /// Same email, or (when either has no email) same name.
    pub fn same_person(&self, other: &Identity) -> bool {
        if !self.email.is_empty() && !other.email.is_empty() {
            return self.email == other.email;
        }
        !self.name.is_empty() && self.name == other.name
    }
}

/// True when `actor` is the person `entry` names (`Name <email>`, an email
/// or a name), under the project's identity rules.
pub fn actor_matches(
    actor: &str,
    entry: &str,
    config: &releaseops_format::config::ProjectConfig,
) -> bool {
    Identity::parse_in(actor, &config.identity)
        .same_person(&Identity::parse_in(entry, &config.identity))
}
