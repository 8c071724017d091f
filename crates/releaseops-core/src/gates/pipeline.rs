//! The pipeline gate: the target is in the pipeline and, unless it is the
//! first stage, the version is live in the stage before it.

use super::*;

/// The pipeline gate: the target is in the pipeline and, unless it is the
/// first stage, the version is live in the stage before it.
pub fn pipeline(f: &Facts<'_>) -> GateResult {
    if f.config.position(f.env).is_none() {
        return gate(
            Gate::Pipeline,
            GateStatus::Failed,
            format!(
                "'{}' is not in the pipeline ({})",
                f.env,
                f.config.pipeline.join(" -> ")
            ),
        );
    }

    match f.upstream {
        None => gate(
            Gate::Pipeline,
            GateStatus::Passed,
            format!("'{}' is the first stage", f.env),
        ),
        Some(up) if f.upstream_live_since.is_some() => gate(
            Gate::Pipeline,
            GateStatus::Passed,
            format!("live in '{up}', the stage before '{}'", f.env),
        ),
        Some(up) => gate(
            Gate::Pipeline,
            GateStatus::Failed,
            format!(
                "{}@{} is not live in '{up}'; promote it there first",
                f.manifest.metadata.id, f.manifest.metadata.version
            ),
        ),
    }
}
