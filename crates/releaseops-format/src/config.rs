//! `.releaseops/config.yaml`: the team's pipeline order, git behaviour and
//! approval teams. Absent means the defaults: dev -> staging -> prod, commits on.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::yaml::Node;
use crate::{FormatError, names};

pub const DEFAULT_PIPELINE: [&str; 3] = ["dev", "staging", "prod"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Environments in promotion order; each promotes into the next.
    pub pipeline: Vec<String>,
    #[serde(default)]
    pub git: GitConfig,
    /// team name -> members (actor strings, names or emails).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub teams: IndexMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitConfig {
    /// Commit each state change to git when `.releaseops/` is inside a repository.
    #[serde(default = "yes")]
    pub commit: bool,
}

fn yes() -> bool {
    true
}

impl Default for GitConfig {
    fn default() -> Self {
        GitConfig { commit: true }
    }
}

impl Default for ProjectConfig {
    fn default() -> Self {
        ProjectConfig {
            pipeline: DEFAULT_PIPELINE.iter().map(|s| s.to_string()).collect(),
            git: GitConfig::default(),
            teams: IndexMap::new(),
        }
    }
}

impl ProjectConfig {
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let c: ProjectConfig = crate::yaml::from_bytes(bytes)?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), FormatError> {
        if self.pipeline.is_empty() {
            return Err(FormatError::Invalid(
                "pipeline is empty; list the environments in promotion order".into(),
            ));
        }
        for (i, e) in self.pipeline.iter().enumerate() {
            names::validate_env_name(e)?;
            if self.pipeline[..i].contains(e) {
                return Err(FormatError::Invalid(format!("pipeline lists '{e}' twice")));
            }
        }
        Ok(())
    }

    pub fn to_yaml(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or_default();
        Node::from_json(&v).to_yaml()
    }

    /// The environment a promotion into `env` comes from, if `env` is not first.
    pub fn upstream_of(&self, env: &str) -> Option<&str> {
        let i = self.pipeline.iter().position(|e| e == env)?;
        i.checked_sub(1).map(|j| self.pipeline[j].as_str())
    }

    pub fn position(&self, env: &str) -> Option<usize> {
        self.pipeline.iter().position(|e| e == env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let mut c = ProjectConfig::default();
        c.pipeline.insert(2, "canary".into());
        c.teams
            .insert("safety-team".into(), vec!["alice@example.com".into()]);
        let back = ProjectConfig::parse(c.to_yaml().as_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.upstream_of("prod"), Some("canary"));
        assert_eq!(back.upstream_of("dev"), None);
        assert!(ProjectConfig::parse(b"pipeline: [dev, dev]").is_err());
    }
}
