//! Why did the agent do that: the action of a trace (its last tool call,
//! else its reply, else its stated decision) attributed to the prompt lines
//! and policy rules of the bundle version it ran, each with a confidence,
//! and an overall assessment that says **which rule** an action breaks.
//!
//! The method is offline and deterministic (no model, no download): every
//! prompt line and policy rule is read once into an [`Index`] (its stemmed
//! words and concepts, the limits it states, a prohibition's scope and
//! exception, a required step, a tool rule's conditions), and each trace is
//! scored against it: words against words with inverse-document weights
//! (identifiers split, Snowball stems, a small concept table for
//! paraphrase, and WordNet 3.0's common senses as a softer tie), numbers against the limits and conditions they fall inside
//! or outside, tool calls against denied tools and required earlier steps,
//! a reply against the prohibitions it keeps or breaks.
//!
//! ```
//! use releaseops_attribution::{Artifact, BundleText, Index, Trace, Assessment};
//! let bundle = BundleText {
//!     id: "support-agent".into(),
//!     version: "1.1.0".into(),
//!     prompts: vec![Artifact::new("system", "prompts/onboarding@v1.1.0",
//!         "You may issue refunds up to 150 dollars using the issue_refund tool.\nEscalate angry customers to a human.")],
//!     policies: vec![Artifact::new("tools", "policies/tools.yaml",
//!         "tools:\n- name: issue_refund\n  allowed: true\n  conditions:\n  - {field: amount, operator: lte, value: 100}\n")],
//!     model: None,
//! };
//! let index = Index::new(&bundle);
//! let trace = Trace::from_json(&serde_json::json!({
//!     "trace_id": "t-1", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 150}}]
//! }), "t-1.json").unwrap();
//! let a = index.explain(&trace);
//! assert_eq!(a.overall_assessment, Assessment::Contradicts);
//! assert_eq!(a.primary_influence.unwrap().location.as_deref(), Some("rule 1: issue_refund (tools[0])"));
//! ```

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod clause;
pub mod diff;
mod explain;
mod policy;
mod report;
mod text;
mod trace;

pub use explain::Index;
pub use report::{ArtifactType, Assessment, Attribution, Effect, Influence, Label, RuleRef};
pub use trace::{ActionType, Call, Trace, arguments};

/// One prompt or policy of a bundle with its text.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest's role (`system`, `tools`).
    pub role: String,
    /// How the manifest names it: `prompts/<id>@<version>` or the policy's path.
    pub reference: String,
    /// For a prompt, the template text (line 1 is the template's first
    /// line); for a policy, the file.
    pub text: String,
}

impl Artifact {
    pub fn new(role: &str, reference: &str, text: &str) -> Artifact {
        Artifact {
            role: role.into(),
            reference: reference.into(),
            text: text.into(),
        }
    }
}

/// The model configuration as far as attribution reads it.
#[derive(Debug, Clone, Default)]
pub struct ModelText {
    pub provider: Option<String>,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
}

/// A bundle version's texts.
#[derive(Debug, Clone)]
pub struct BundleText {
    pub id: String,
    pub version: String,
    pub prompts: Vec<Artifact>,
    pub policies: Vec<Artifact>,
    pub model: Option<ModelText>,
}

/// A trace that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    #[error("{input}: {reason}")]
    Trace { input: String, reason: String },
}
