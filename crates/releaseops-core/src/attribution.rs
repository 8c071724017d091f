//! A stored bundle version as attribution reads it: every artifact checked
//! against its hash before its text is trusted (a bundle that does not
//! verify is refused, as the runtime refuses it), prompts reduced to their
//! template so line numbers are the template's own, policies as written,
//! and the model configuration.

use releaseops_attribution::{Artifact, BundleText, Call, ModelText, Trace};
use releaseops_format::hash;
use releaseops_store::Store;
use releaseops_traces::Span;
use serde_json::Value;

use crate::bundle::{artifact_bytes, verify_loaded};
use crate::error::{CoreError, Result};

/// The texts of `id@version`, verified.
pub fn bundle_text(store: &Store, id: &str, version: &str) -> Result<BundleText> {
    releaseops_format::names::validate_bundle_id(id)?;
    releaseops_format::names::validate_version(version)?;
    let manifest = store.load_bundle(id, version)?;
    let view = store.chain_view().ok();
    let report = verify_loaded(store, view.as_ref(), &manifest)?;
    if !report.ok {
        return Err(CoreError::VerifyFailed {
            message: format!(
                "{id}@{version} does not verify, so its text cannot be trusted: {}",
                report.problems.join("; ")
            ),
            hint: Some(format!(
                "`releaseops bundle verify {id} {version}` shows every artifact"
            )),
        });
    }
    let read = |a: &releaseops_format::manifest::ArtifactRef, role: &str| -> Result<String> {
        let bytes = artifact_bytes(store, a)
            .filter(|b| a.content_hash.as_deref().is_none_or(|h| hash::sha256_prefixed(b) == h))
            .ok_or_else(|| CoreError::VerifyFailed {
                message: format!("{id}@{version}: the content of '{role}' ({}) cannot be read or does not match its hash", a.location()),
                hint: Some(format!("`releaseops bundle verify {id} {version}` shows every artifact")),
            })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let mut prompts = Vec::new();
    for (role, a) in &manifest.prompts {
        let text = releaseops_format::template::template_text(&read(a, role)?);
        prompts.push(Artifact::new(role, a.location(), &text));
    }
    let mut policies = Vec::new();
    for (role, a) in &manifest.policies {
        policies.push(Artifact::new(role, a.location(), &read(a, role)?));
    }
    let model = manifest.model_config.as_ref().map(|m| ModelText {
        provider: Some(m.provider.clone()).filter(|p| !p.is_empty()),
        model: m.model.clone(),
        temperature: m.temperature.as_f64(),
        max_tokens: Some(m.max_tokens),
    });
    Ok(BundleText {
        id: id.to_string(),
        version: version.to_string(),
        prompts,
        policies,
        model,
    })
}

/// A stored trace as attribution reads it: its tool calls in order (the
/// executed ones when the trace has them, else what the model asked for),
/// the last model reply, the first input, and the bundle it ran.
pub fn trace_of_spans(id: &str, spans: &[Span]) -> (Trace, Option<(String, String)>) {
    let mut spans: Vec<&Span> = spans.iter().collect();
    spans.sort_by_key(|s| (s.start_ns, s.end_ns));
    let executed = spans
        .iter()
        .any(|s| s.tool_calls.iter().any(|c| c.executed));
    let tool_calls = spans
        .iter()
        .flat_map(|s| s.tool_calls.iter())
        .filter(|c| c.executed == executed)
        .map(|c| Call {
            name: c.name.clone(),
            arguments: releaseops_attribution::arguments(c.arguments.clone().map(Value::String)),
        })
        .collect();
    let output = spans.iter().rev().find_map(|s| s.output.clone());
    let input = spans.iter().find_map(|s| s.input.clone());
    let output_tokens: i64 = spans.iter().filter_map(|s| s.output_tokens).sum();
    let bundle = spans.iter().find_map(|s| {
        Some((
            s.bundle.bundle_id.clone()?,
            s.bundle.bundle_version.clone()?,
        ))
    });
    (
        Trace {
            trace_id: id.to_string(),
            input,
            tool_calls,
            output,
            action: None,
            output_tokens: u64::try_from(output_tokens).ok().filter(|&n| n > 0),
        },
        bundle,
    )
}
