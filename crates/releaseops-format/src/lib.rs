//! The releaseops on-disk formats and the pure rules around them.
//!
//! Everything here is data in, data out: no file system, no git, no clock. The
//! store crate reads and writes these types; the engine crate reasons over them.
//! The YAML layouts are those of the Python `llmhq-releaseops` 0.1.0 tool, so a
//! team can switch tools without losing a file, and `bundle_hash` is computed
//! bit for bit as that tool computes it.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod environment;
mod error;
pub mod hash;
pub mod history;
pub mod manifest;
pub mod names;
pub mod pyjson;
pub mod review;
pub mod state;
pub mod template;
pub mod time;
pub mod version;
pub mod yaml;

pub use error::FormatError;
