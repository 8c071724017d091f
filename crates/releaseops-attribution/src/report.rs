//! The attribution as the existing tool's JSON spells it (`trace_id`,
//! `influences[]` with `artifact_type`, `artifact_ref`, `location`,
//! `content_snippet`, `confidence`, `confidence_label`, `reasoning`,
//! `is_negated`; `primary_influence`, `overall_assessment`), plus what it
//! never said: which rule an action contradicts and why an answer is unclear.

use serde::Serialize;

use crate::trace::ActionType;

/// What an influence points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactType {
    Prompt,
    Policy,
    ModelConfig,
}

impl ArtifactType {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactType::Prompt => "prompt",
            ArtifactType::Policy => "policy",
            ArtifactType::ModelConfig => "model_config",
        }
    }
}

/// The existing tool's confidence bands: HIGH from 0.8, MEDIUM from 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Label {
    High,
    Medium,
    Low,
}

impl Label {
    pub fn of(confidence: f64) -> Label {
        if confidence >= 0.8 {
            Label::High
        } else if confidence >= 0.5 {
            Label::Medium
        } else {
            Label::Low
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Label::High => "HIGH",
            Label::Medium => "MEDIUM",
            Label::Low => "LOW",
        }
    }
}

/// One prompt line, policy rule or model setting and how much it governs the action.
#[derive(Debug, Clone, Serialize)]
pub struct Influence {
    pub artifact_type: ArtifactType,
    /// `prompts/<id>@<version>`, a policy's path, or the model setting.
    pub artifact_ref: String,
    /// The manifest role (absent for model settings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub confidence: f64,
    pub confidence_label: Label,
    pub reasoning: String,
    pub content_snippet: String,
    /// `line N` of the prompt text itself, `rule N: <name> (<path>)` of a policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The line number, for prompts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The rule's name, for policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keywords_matched: Vec<String>,
    /// The action breaks this line or rule.
    pub is_negated: bool,
    pub effect: Effect,
    pub confidence_reason: String,
}

/// How the action stands against a line or rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The action breaks it.
    Breaks,
    /// The action is inside what it allows, or after the step it requires.
    Follows,
    /// Its condition does not hold for this action (a prohibition of refunds over 100, a refund of 40).
    OutOfScope,
    /// It shares words with the action; nothing it states was tested.
    Related,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Breaks => "breaks",
            Effect::Follows => "follows",
            Effect::OutOfScope => "out_of_scope",
            Effect::Related => "related",
        }
    }
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Assessment {
    #[serde(rename = "Expected per artifacts")]
    Expected,
    #[serde(rename = "Likely expected per artifacts")]
    LikelyExpected,
    #[serde(rename = "Contradicts artifacts")]
    Contradicts,
    #[serde(rename = "Unclear")]
    Unclear,
}

impl Assessment {
    pub fn as_str(self) -> &'static str {
        match self {
            Assessment::Expected => "Expected per artifacts",
            Assessment::LikelyExpected => "Likely expected per artifacts",
            Assessment::Contradicts => "Contradicts artifacts",
            Assessment::Unclear => "Unclear",
        }
    }
    pub const ALL: [Assessment; 4] = [
        Assessment::Expected,
        Assessment::LikelyExpected,
        Assessment::Contradicts,
        Assessment::Unclear,
    ];
}

/// A line or rule and what the action did against it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRef {
    pub artifact_type: ArtifactType,
    pub artifact_ref: String,
    pub location: String,
    pub content_snippet: String,
    /// What the action did against it (`amount 150 breaks the condition amount lte 100`).
    pub reason: String,
}

/// A trace attributed.
#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    pub trace_id: String,
    pub bundle_id: String,
    pub bundle_version: String,
    pub action: String,
    pub action_type: Option<ActionType>,
    pub influences: Vec<Influence>,
    pub primary_influence: Option<Influence>,
    pub overall_assessment: Assessment,
    /// Why the assessment is what it is (for Unclear: what was missing).
    pub assessment_reason: String,
    /// The line or rule the action breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contradiction: Option<RuleRef>,
    /// When it breaks one: the line or rule it followed in doing so (the
    /// bundle contradicts itself: a prompt allows what a policy forbids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followed: Option<RuleRef>,
    /// Set by the caller (the library reads no clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyzed_at: Option<String>,
}

impl Attribution {
    /// Drops influences below `threshold`; the assessment, computed before,
    /// stays (the existing tool's rule).
    pub fn filter(&mut self, threshold: f64) {
        self.influences.retain(|i| i.confidence >= threshold);
    }
}
