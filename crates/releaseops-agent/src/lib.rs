//! The release decision agent.
//!
//! Given the context of a promotion (what changed, the evaluation evidence,
//! how critical the service is, when, what else is moving), it scores the risk
//! with a transparent sum of factors, recalls the most similar past releases,
//! applies the heuristics it learned from their outcomes, decides GO, NO_GO or
//! DELAY, has the decision attacked by a red team, and takes a second look
//! before production. Everything here works offline; nothing here does I/O.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod action;
pub mod context;
pub mod cost;
pub mod decide;
pub mod heuristics;
pub mod image;
pub mod llm;
pub mod memory;
pub mod model;
pub mod planner;
pub mod review;
pub mod risk;
pub mod simulate;

pub use action::Action;
pub use context::{Context, ContextError, Day, Level};
pub use heuristics::{Heuristic, derive};
pub use memory::{Memory, Outcome, Row};
pub use planner::{Factor, Plan, plan};
pub use review::{RedTeam, Reflection, red_team, reflect};
