//! The agent's three answers: GO, DELAY and NO_GO, as records spell them.
//! Their own module, so the memory, the heuristics and the planner all
//! use them without depending on one another.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A release decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "GO")]
    Go,
    #[serde(rename = "DELAY")]
    Delay,
    #[serde(rename = "NO_GO")]
    NoGo,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Go => "GO",
            Action::Delay => "DELAY",
            Action::NoGo => "NO_GO",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "GO" => Some(Action::Go),
            "DELAY" => Some(Action::Delay),
            "NO_GO" => Some(Action::NoGo),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
