//! The error a suite or a judge configuration is refused with: one message
//! that names the place (`case 3 (refund) assertion 2 (regex)`) and the fix.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
#[error("{0}")]
pub struct SuiteError(pub String);
