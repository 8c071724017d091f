//! Change risk: how risky a release's content is, judged from a summary of
//! its diff against the version live in the target environment. The caller
//! computes the diff (it has the store); the rules live here, next to the
//! score they feed:
//!
//! - a model or provider swap is HIGH, a temperature change MEDIUM, any other
//!   model setting LOW;
//! - more than 40 changed prompt lines is HIGH, more than 5 MEDIUM, any LOW;
//! - a changed policy is MEDIUM, and HIGH when its role or location says
//!   `safety` (which also needs an approval in the environment);
//! - an added or removed prompt is MEDIUM;
//! - a bundle's first release into an environment is MEDIUM.

use crate::context::Level;

/// What happened to an artifact between the live version and the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Added,
    Removed,
    Changed,
}

impl Edit {
    pub fn as_str(self) -> &'static str {
        match self {
            Edit::Added => "added",
            Edit::Removed => "removed",
            Edit::Changed => "changed",
        }
    }
}

/// A prompt or policy that differs, by role, with where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactEdit {
    pub role: String,
    /// The artifact's path or reference (the candidate's, else the live one's).
    pub location: String,
    pub edit: Edit,
}

/// A model configuration field that differs (`model`, `provider`,
/// `parameters.temperature`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldEdit {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The diff of a candidate against the live version, as far as risk needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSummary {
    pub model: Vec<FieldEdit>,
    /// Lines added plus lines removed over all prompts.
    pub prompt_lines: usize,
    pub prompts: Vec<ArtifactEdit>,
    pub policies: Vec<ArtifactEdit>,
}

/// The risk of a change and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRisk {
    pub level: Level,
    /// One line per rule that fired, in the order above.
    pub factors: Vec<String>,
    /// A policy whose role or location says `safety` changed.
    pub safety_policy_changed: bool,
}

impl Default for ChangeRisk {
    fn default() -> Self {
        ChangeRisk {
            level: Level::Low,
            factors: Vec::new(),
            safety_policy_changed: false,
        }
    }
}

impl ChangeRisk {
    fn raise(&mut self, to: Level, why: String) {
        self.level = self.level.max(to);
        self.factors.push(why);
    }
}

/// A bundle that has never run in `env`.
pub fn first_release(id: &str, env: &str) -> ChangeRisk {
    let mut r = ChangeRisk::default();
    r.raise(Level::Medium, format!("first release of {id} into {env}"));
    r
}

/// The risk of the change `s` describes.
pub fn classify(s: &ChangeSummary) -> ChangeRisk {
    let mut r = ChangeRisk::default();
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for c in &s.model {
        let field = c.field.as_str();
        if field == "provider" || field == "model" || field.ends_with(".provider") {
            r.raise(
                Level::High,
                format!("model swap: {field} {} -> {}", dash(&c.old), dash(&c.new)),
            );
        } else if field.contains("temperature") {
            r.raise(
                Level::Medium,
                format!("temperature {} -> {}", dash(&c.old), dash(&c.new)),
            );
        } else {
            r.raise(Level::Low, format!("model setting {field} changed"));
        }
    }
    let lines = s.prompt_lines;
    if lines > 40 {
        r.raise(Level::High, format!("{lines} prompt lines changed"));
    } else if lines > 5 {
        r.raise(Level::Medium, format!("{lines} prompt lines changed"));
    } else if lines > 0 {
        r.raise(Level::Low, format!("{lines} prompt line(s) changed"));
    }
    for p in &s.policies {
        let place = format!("{} {}", p.role, p.location);
        let what = p.edit.as_str();
        if place.to_ascii_lowercase().contains("safety") {
            r.safety_policy_changed = true;
            r.raise(Level::High, format!("safety policy {} {what}", p.role));
        } else {
            r.raise(Level::Medium, format!("policy {} {what}", p.role));
        }
    }
    for p in s.prompts.iter().filter(|p| p.edit != Edit::Changed) {
        r.raise(
            Level::Medium,
            format!("prompt {} {}", p.role, p.edit.as_str()),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(role: &str, location: &str, edit: Edit) -> ArtifactEdit {
        ArtifactEdit {
            role: role.into(),
            location: location.into(),
            edit,
        }
    }

    #[test]
    fn prompt_lines_set_the_level_by_size() {
        for (lines, want) in [
            (0, Level::Low),
            (5, Level::Low),
            (6, Level::Medium),
            (40, Level::Medium),
            (41, Level::High),
        ] {
            let s = ChangeSummary {
                prompt_lines: lines,
                ..Default::default()
            };
            assert_eq!(classify(&s).level, want, "{lines} lines");
        }
        assert!(classify(&ChangeSummary::default()).factors.is_empty());
    }

    #[test]
    fn a_model_swap_is_high_and_temperature_medium() {
        let field = |f: &str| FieldEdit {
            field: f.into(),
            old: Some("a".into()),
            new: None,
        };
        let swap = ChangeSummary {
            model: vec![field("model")],
            ..Default::default()
        };
        let r = classify(&swap);
        assert_eq!(r.level, Level::High);
        assert_eq!(r.factors, ["model swap: model a -> -"]);
        let temp = ChangeSummary {
            model: vec![field("parameters.temperature"), field("max_tokens")],
            ..Default::default()
        };
        let r = classify(&temp);
        assert_eq!(r.level, Level::Medium);
        assert_eq!(r.factors[1], "model setting max_tokens changed");
    }

    #[test]
    fn a_safety_policy_is_high_wherever_the_word_appears() {
        for (role, location) in [
            ("safety", "policies/a.yaml"),
            ("guard", "policies/Safety-rules.yaml"),
        ] {
            let s = ChangeSummary {
                policies: vec![edit(role, location, Edit::Changed)],
                ..Default::default()
            };
            let r = classify(&s);
            assert!(r.safety_policy_changed && r.level == Level::High, "{r:?}");
        }
        let plain = ChangeSummary {
            policies: vec![edit("refunds", "policies/refunds.yaml", Edit::Added)],
            ..Default::default()
        };
        let r = classify(&plain);
        assert!(!r.safety_policy_changed && r.level == Level::Medium);
        assert_eq!(r.factors, ["policy refunds added"]);
    }

    #[test]
    fn only_added_or_removed_prompts_count_as_such() {
        let s = ChangeSummary {
            prompts: vec![
                edit("system", "p.txt", Edit::Changed),
                edit("extra", "q.txt", Edit::Removed),
            ],
            ..Default::default()
        };
        assert_eq!(classify(&s).factors, ["prompt extra removed"]);
        assert_eq!(first_release("a", "prod").level, Level::Medium);
    }
}
