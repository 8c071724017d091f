//! What changed between two versions, and which behaviour the change
//! explains. The changed prompt lines (paired within a replaced block: the
//! old line 3 became the new line 3) and policy rules (by name) of two
//! bundle versions; then, for a trace, each change whose verdict on the
//! action flips between the versions: a refund of 130 **breaks** the old
//! "up to 100" line and **follows** the new "up to 150" one, so that change
//! explains why the refund appears only under the new version.

use similar::{DiffOp, TextDiff};

use crate::explain::Index;
use crate::report::{Attribution, Effect, Influence};
use crate::trace::Trace;
use crate::{BundleText, policy};

/// A changed prompt line or policy rule.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    /// `prompt` or `policy`.
    pub artifact_type: crate::ArtifactType,
    pub role: String,
    /// Where it was and what it said in the old version (absent when added).
    pub old_location: Option<String>,
    pub old: Option<String>,
    /// Where it is and what it says in the new version (absent when removed).
    pub new_location: Option<String>,
    pub new: Option<String>,
}

/// The prompt lines and policy rules that differ between two versions.
pub fn changes(old: &BundleText, new: &BundleText) -> Vec<Change> {
    let mut out = Vec::new();
    let roles =
        |b: &BundleText| -> Vec<String> { b.prompts.iter().map(|p| p.role.clone()).collect() };
    let mut all = roles(old);
    for r in roles(new) {
        if !all.contains(&r) {
            all.push(r);
        }
    }
    for role in &all {
        let a = old
            .prompts
            .iter()
            .find(|p| &p.role == role)
            .map_or("", |p| p.text.as_str());
        let b = new
            .prompts
            .iter()
            .find(|p| &p.role == role)
            .map_or("", |p| p.text.as_str());
        let al: Vec<&str> = a.lines().collect();
        let bl: Vec<&str> = b.lines().collect();
        let diff = TextDiff::configure().diff_slices(&al, &bl);
        for op in diff.ops() {
            let (oi, ol, ni, nl) = match *op {
                DiffOp::Equal { .. } => continue,
                DiffOp::Delete {
                    old_index,
                    old_len,
                    new_index,
                } => (old_index, old_len, new_index, 0),
                DiffOp::Insert {
                    old_index,
                    new_index,
                    new_len,
                } => (old_index, 0, new_index, new_len),
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => (old_index, old_len, new_index, new_len),
            };
            for k in 0..ol.max(nl) {
                let o = (k < ol).then(|| oi + k);
                let n = (k < nl).then(|| ni + k);
                let text =
                    |lines: &[&str], i: Option<usize>| i.map(|i| lines[i].trim().to_string());
                let (ot, nt) = (text(&al, o), text(&bl, n));
                if ot.as_deref().is_some_and(str::is_empty)
                    && nt.as_deref().is_none_or(str::is_empty)
                    || nt.as_deref().is_some_and(str::is_empty) && ot.is_none()
                {
                    continue;
                }
                out.push(Change {
                    artifact_type: crate::ArtifactType::Prompt,
                    role: role.clone(),
                    old_location: o.map(|i| format!("line {}", i + 1)),
                    old: ot,
                    new_location: n.map(|i| format!("line {}", i + 1)),
                    new: nt,
                });
            }
        }
    }
    let mut roles: Vec<String> = old.policies.iter().map(|p| p.role.clone()).collect();
    for p in &new.policies {
        if !roles.contains(&p.role) {
            roles.push(p.role.clone());
        }
    }
    for role in &roles {
        let rules = |b: &BundleText| {
            b.policies
                .iter()
                .find(|p| &p.role == role)
                .and_then(|p| policy::rules(&p.text))
                .unwrap_or_default()
        };
        let (a, b) = (rules(old), rules(new));
        let loc = |i: usize, r: &policy::Rule| format!("rule {}: {} ({})", i + 1, r.name, r.path);
        for (i, r) in a.iter().enumerate() {
            match b.iter().enumerate().find(|(_, x)| x.name == r.name) {
                Some((j, x)) if x.text != r.text => out.push(Change {
                    artifact_type: crate::ArtifactType::Policy,
                    role: role.clone(),
                    old_location: Some(loc(i, r)),
                    old: Some(r.text.clone()),
                    new_location: Some(loc(j, x)),
                    new: Some(x.text.clone()),
                }),
                Some(_) => {}
                None => out.push(Change {
                    artifact_type: crate::ArtifactType::Policy,
                    role: role.clone(),
                    old_location: Some(loc(i, r)),
                    old: Some(r.text.clone()),
                    new_location: None,
                    new: None,
                }),
            }
        }
        for (j, x) in b.iter().enumerate() {
            if !a.iter().any(|r| r.name == x.name) {
                out.push(Change {
                    artifact_type: crate::ArtifactType::Policy,
                    role: role.clone(),
                    old_location: None,
                    old: None,
                    new_location: Some(loc(j, x)),
                    new: Some(x.text.clone()),
                });
            }
        }
    }
    out
}

/// A change whose verdict on one trace's action differs between versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Flip {
    /// Index into the [`changes`] list.
    pub change: usize,
    /// The action, by its tool (or `response` / `decision`).
    pub action: String,
    pub old_effect: Option<Effect>,
    pub new_effect: Option<Effect>,
}

fn effect_at(a: &Attribution, c: &Change, old: bool) -> Option<Effect> {
    let loc = if old {
        &c.old_location
    } else {
        &c.new_location
    };
    let loc = loc.as_deref()?;
    a.influences
        .iter()
        .find(|i: &&Influence| {
            i.role.as_deref() == Some(c.role.as_str())
                && i.artifact_type == c.artifact_type
                && i.location.as_deref() == Some(loc)
        })
        .map(|i| i.effect)
}

/// Each change whose verdict on this trace's action flips between the old
/// and the new version (a verdict is "breaks" or "follows"; anything else
/// counts as none).
pub fn flips(old: &Index, new: &Index, changes: &[Change], trace: &Trace) -> Vec<Flip> {
    let a = old.explain(trace);
    let b = new.explain(trace);
    let action = trace
        .tool_calls
        .last()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| {
            if trace.output.is_some() {
                "response".into()
            } else {
                "decision".into()
            }
        });
    let verdict = |e: Option<Effect>| e.filter(|e| matches!(e, Effect::Breaks | Effect::Follows));
    changes
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let (o, n) = (
                verdict(effect_at(&a, c, true)),
                verdict(effect_at(&b, c, false)),
            );
            (o != n).then(|| Flip {
                change: i,
                action: action.clone(),
                old_effect: o,
                new_effect: n,
            })
        })
        .collect()
}
