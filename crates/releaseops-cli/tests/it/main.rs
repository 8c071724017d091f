//! The integration tests: one test binary (so the workspace is linked once),
//! one module per capability, all driving the real `releaseops` binary.

mod common;

mod agent;
mod agent_llm;
mod attribution;
mod bad_input;
mod bundles;
mod concurrency;
mod consistent_cli;
mod crash;
mod dashboard;
mod demo;
mod evals;
mod gates;
mod git_commit;
mod model_target;
mod notify;
mod pull;
mod python_compat;
mod readme;
mod review_regressions;
mod rollback_history;
mod runtime;
mod server;
mod snapshots;
mod sync;
mod telemetry;
mod traces;
mod trust;
