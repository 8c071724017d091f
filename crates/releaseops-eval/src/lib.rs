//! The releaseops evaluation engine.
//!
//! A suite (`.releaseops/evals/<suite>.yaml`, the existing tool's format with
//! extensions) is validated before anything runs; its cases are sent to a
//! target (today: the team's real agent as a subprocess) concurrently, each
//! bounded by a hard timeout; every output is judged; the pass rate gets a
//! Wilson confidence interval, and the verdict is PASS, FAIL, or INCONCLUSIVE
//! when the evidence cannot tell. Nothing here prints or touches the store:
//! the CLI wires suites, bundles and reports to disk.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod compare;
pub mod error;
pub mod judge;
pub mod output;
pub mod promptfoo;
pub mod providers;
pub mod report;
pub mod runner;
pub mod secrets;
pub mod suite;
pub mod target;

pub use suite::{Suite, SuiteError};
