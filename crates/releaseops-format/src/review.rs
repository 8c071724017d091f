//! Per-version review state, `.releaseops/reviews/<id>/<version>.yaml`:
//! approvals, rejections and failed releases. The history holds the same
//! events; this file is the index that gates read without scanning it.

use serde::{Deserialize, Serialize};

use crate::FormatError;
use crate::yaml::Node;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reviews {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejections: Vec<Rejection>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub env: String,
    pub actor: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The approver's SSH signature over the approval, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    /// The environment the version is rejected for; every environment when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub actor: String,
    pub at: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub env: String,
    pub actor: String,
    pub at: String,
    pub rolled_back_to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Reviews {
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        crate::yaml::from_bytes_plain(bytes)
    }

    pub fn to_yaml(&self) -> String {
        Node::from_json(&serde_json::to_value(self).unwrap_or_default()).to_yaml()
    }

    /// The rejection that applies to `env`, if any: one for every environment,
    /// one for `env` itself, or one for an earlier stage of `pipeline` (a
    /// version rejected for staging may not go on to prod either).
    pub fn rejection_for(&self, env: &str, pipeline: &[String]) -> Option<&Rejection> {
        let pos = |e: &str| pipeline.iter().position(|p| p == e);
        self.rejections.iter().find(|r| match r.env.as_deref() {
            None => true,
            Some(e) if e == env => true,
            Some(e) => matches!((pos(e), pos(env)), (Some(a), Some(b)) if a <= b),
        })
    }
}
