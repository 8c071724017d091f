//! The releaseops runtime: what agent code links to run exactly what was
//! promoted.
//!
//! ```no_run
//! use releaseops_runtime::RuntimeLoader;
//! let loader = RuntimeLoader::new(".")?;
//! let bundle = loader.load("support-agent@prod")?;
//! let vars = serde_json::json!({"user_name": "Ann"});
//! let system = bundle.render("system", vars.as_object().expect("an object"))?;
//! # Ok::<(), releaseops_runtime::LoadError>(())
//! ```
//!
//! Everything is read from the bundle's content-addressed objects and
//! verified against the hashes recorded at creation; a tampered manifest or
//! object is an error naming it, never served. No git is needed, so a
//! directory written by `releaseops export` works in a container.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[cfg(feature = "tokio")]
mod asyncs;
mod bundle;
mod error;
mod loader;
#[cfg(feature = "otel")]
pub mod otel;
#[cfg(feature = "otlp")]
pub mod otlp;
mod reference;
mod remote;
pub mod telemetry;

#[cfg(feature = "tokio")]
pub use asyncs::{AsyncRuntimeLoader, current, scope};
pub use bundle::{Content, LoadedBundle, Policy, Prompt};
pub use error::{ArtifactProblem, LoadError};
#[cfg(feature = "watch")]
pub use loader::FileWatch;
pub use loader::{DEFAULT_REVALIDATE, RuntimeLoader};
pub use reference::BundleRef;
pub use releaseops_format::manifest::ModelConfig;
pub use telemetry::AttrValue;
