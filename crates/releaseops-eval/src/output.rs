//! What an agent answered: its output text, the tools it called, what it
//! used (tokens, cost) and how long it took, read from an agent's stdout or
//! built from a model's reply. Its own module, so the targets and the
//! provider clients both produce it without depending on each other.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest answer accepted from an agent.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    pub name: String,
    #[serde(default, alias = "args")]
    pub arguments: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    #[serde(default, alias = "prompt_tokens")]
    pub input_tokens: u64,
    #[serde(default, alias = "completion_tokens")]
    pub output_tokens: u64,
    /// Cost in USD, as the agent reported it or as the suite's pricing gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// What an agent answered for one case.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AgentOutput {
    pub output: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    pub latency_ms: f64,
    /// Answered from the response cache (no call was made).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

#[derive(Deserialize)]
struct StructuredAnswer {
    output: String,
    #[serde(default)]
    tool_calls: Vec<ToolCall>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    latency_ms: Option<f64>,
}

/// Reads an agent's stdout: JSON with `output`, or plain text (one trailing
/// newline dropped).
pub fn parse_answer(stdout: &[u8], measured_ms: f64) -> Result<AgentOutput, String> {
    let text = std::str::from_utf8(stdout)
        .map_err(|e| format!("the agent's output is not UTF-8 (byte {})", e.valid_up_to()))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{')
        && let Ok(a) = serde_json::from_str::<StructuredAnswer>(trimmed)
    {
        return Ok(AgentOutput {
            output: a.output,
            tool_calls: a.tool_calls,
            usage: a.usage,
            latency_ms: a
                .latency_ms
                .filter(|l| l.is_finite() && *l >= 0.0)
                .unwrap_or(measured_ms),
            cached: false,
        });
    }
    let output = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text)
        .to_string();
    Ok(AgentOutput {
        output,
        tool_calls: Vec::new(),
        usage: None,
        latency_ms: measured_ms,
        cached: false,
    })
}
