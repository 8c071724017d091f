use std::fmt;

use releaseops_format::names;

use crate::error::LoadError;

/// What to load: whatever an environment runs now, or one pinned version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BundleRef {
    /// `support-agent@prod`: the version `prod` maps the bundle to.
    Env { id: String, env: String },
    /// `support-agent==1.2.0`: exactly that version.
    Pinned { id: String, version: String },
}

impl BundleRef {
    /// Parses `ID@ENV`, `ID@VERSION` (X a semantic version) or `ID==VERSION`,
    /// validating each part as the store does (so `a@prod@x` or `../x@prod`
    /// is refused here, not looked up). Environment names never look like
    /// versions, so `ID@X` is never ambiguous.
    pub fn parse(s: &str) -> Result<BundleRef, LoadError> {
        let bad = |reason: String| LoadError::BadReference {
            reference: s.to_string(),
            reason,
        };
        if let Some((id, version)) = s.split_once("==") {
            names::validate_bundle_id(id).map_err(|e| bad(e.to_string()))?;
            names::validate_version(version).map_err(|e| bad(e.to_string()))?;
            return Ok(BundleRef::Pinned {
                id: id.into(),
                version: version.into(),
            });
        }
        let Some((id, env)) = s.split_once('@') else {
            return Err(bad("it names no environment or version".into()));
        };
        names::validate_bundle_id(id).map_err(|e| bad(e.to_string()))?;
        if names::looks_like_version(env) {
            return Ok(BundleRef::Pinned {
                id: id.into(),
                version: env.into(),
            });
        }
        names::validate_env_name(env).map_err(|e| bad(e.to_string()))?;
        Ok(BundleRef::Env {
            id: id.into(),
            env: env.into(),
        })
    }

    pub fn id(&self) -> &str {
        match self {
            BundleRef::Env { id, .. } | BundleRef::Pinned { id, .. } => id,
        }
    }
}

impl fmt::Display for BundleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleRef::Env { id, env } => write!(f, "{id}@{env}"),
            BundleRef::Pinned { id, version } => write!(f, "{id}=={version}"),
        }
    }
}

impl std::str::FromStr for BundleRef {
    type Err = LoadError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BundleRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_refuses_the_rest() {
        assert_eq!(
            BundleRef::parse("support-agent@prod").unwrap(),
            BundleRef::Env {
                id: "support-agent".into(),
                env: "prod".into()
            }
        );
        for pinned in ["support-agent==1.2.0", "support-agent@1.2.0"] {
            assert_eq!(
                BundleRef::parse(pinned).unwrap(),
                BundleRef::Pinned {
                    id: "support-agent".into(),
                    version: "1.2.0".into()
                }
            );
        }
        assert_eq!(
            BundleRef::parse("support-agent==v2").unwrap(),
            BundleRef::Pinned {
                id: "support-agent".into(),
                version: "v2".into()
            }
        );
        for bad in [
            "support-agent",
            "a@prod@x",
            "../x@prod",
            "@prod",
            "x@",
            "x==",
            "x==../1",
        ] {
            let e = BundleRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("ID@ENV"), "{bad}: {e}");
        }
        let long = format!("{}@prod", "a".repeat(10_000));
        assert!(BundleRef::parse(&long).is_err());
    }
}
