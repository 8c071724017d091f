//! Round trips and orderings, for arbitrary input.

use proptest::prelude::*;
use releaseops_format::environment::EnvironmentFile;
use releaseops_format::manifest::{
    ArtifactRef, ArtifactSource, BundleManifest, BundleMetadata, ModelConfig,
};
use releaseops_format::yaml::{self, Node};
use releaseops_format::{names, version};

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_-]{0,12}"
}

fn any_version() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..30, 0u64..30, 0u64..30).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        (0u64..30, 0u64..30).prop_map(|(a, b)| format!("{a}.{b}")),
        (0u64..5, 0u64..5, 0u64..5, "[a-z]{1,4}", 0u64..20)
            .prop_map(|(a, b, c, p, n)| format!("{a}.{b}.{c}-{p}.{n}")),
        "[a-z][a-z0-9.-]{0,8}[a-z0-9]",
    ]
    .prop_filter("valid", |v| names::validate_version(v).is_ok())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        Just("1.10".to_string()),
        Just("yes".to_string()),
        Just("2026-01-01".to_string())
    ]
}

fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e12f64..1e12).prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ]
}

fn hash() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}"))
}

fn manifest() -> impl Strategy<Value = BundleManifest> {
    (
        name(),
        any_version(),
        text(),
        text(),
        proptest::collection::vec((name(), hash(), "[a-z/._-]{1,20}", any::<bool>()), 0..4),
        proptest::option::of((
            text(),
            text(),
            0u32..200,
            1u64..100_000,
            proptest::collection::vec((name(), json_leaf()), 0..3),
        )),
    )
        .prop_map(|(id, version, description, created_by, arts, model)| {
            let mut m = BundleManifest {
                schema_version: 2,
                metadata: BundleMetadata {
                    id,
                    version,
                    created_at: "2026-11-21T21:30:24.707346+00:00".into(),
                    created_by,
                    description,
                },
                prompts: Default::default(),
                policies: Default::default(),
                model_config: model.map(|(provider, model, t, max_tokens, params)| ModelConfig {
                    provider: format!("p{provider}"),
                    model: format!("m{model}"),
                    temperature: serde_json::Number::from_f64(f64::from(t) / 100.0)
                        .unwrap_or_else(|| 0.into()),
                    max_tokens,
                    parameters: params.into_iter().collect(),
                }),
                bundle_hash: None,
            };
            for (role, h, loc, is_prompt) in arts {
                let a = ArtifactRef {
                    source: if is_prompt {
                        ArtifactSource::Ref(format!("prompts/{role}@v1"))
                    } else {
                        ArtifactSource::Path(loc)
                    },
                    content_hash: Some(h),
                };
                if is_prompt {
                    m.prompts.insert(role, a)
                } else {
                    m.policies.insert(role, a)
                };
            }
            m.bundle_hash = Some(m.compute_hash());
            m
        })
}

proptest! {
    #[test]
    fn any_string_survives_emit_and_parse(s in text()) {
        let doc = Node::Map(vec![("k".into(), Node::Str(s.clone()))]).to_yaml();
        let back: std::collections::BTreeMap<String, String> = yaml::from_str(&doc).map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
        prop_assert_eq!(&back["k"], &s);
        prop_assert!(doc.is_ascii(), "PyYAML-style output stays ASCII");
    }

    #[test]
    fn manifests_round_trip_and_keep_their_hash(m in manifest()) {
        let text = m.to_yaml();
        let back = BundleManifest::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        back.check_hash().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_yaml(), text);
    }

    #[test]
    fn environments_round_trip(mappings in proptest::collection::vec((name(), any_version()), 0..5), soak in 0u32..100) {
        let mut e = EnvironmentFile::new("prod");
        for (k, v) in mappings { e.bundle_mappings.insert(k, v); }
        if soak > 0 {
            e.promotion_policy = Some(releaseops_format::environment::PromotionPolicy { soak_hours: f64::from(soak) / 4.0, ..Default::default() });
        }
        let back = EnvironmentFile::parse(e.to_yaml().as_bytes()).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(back, e);
    }

    #[test]
    fn deployment_stacks_are_written_as_the_generic_emitter_would(
        env in text(),
        bundle in text(),
        stack in proptest::collection::vec((text(), text(), any::<u64>()), 0..4),
    ) {
        use releaseops_format::history::{Deployment, DeploymentStack};
        let s = DeploymentStack {
            environment: env,
            bundle,
            stack: stack.into_iter().map(|(version, since, seq)| Deployment { version, since, seq }).collect(),
        };
        let generic = Node::from_json(&serde_json::to_value(&s).expect("json")).to_yaml();
        prop_assert_eq!(s.to_yaml(), generic);
        prop_assert_eq!(DeploymentStack::parse(s.to_yaml().as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?, s);
    }

    #[test]
    fn version_order_is_total_and_agrees_with_semver(a in any_version(), b in any_version(), c in any_version()) {
        use std::cmp::Ordering;
        let ab = version::compare(&a, &b);
        prop_assert_eq!(ab, version::compare(&b, &a).reverse());
        prop_assert_eq!(ab == Ordering::Equal, a == b);
        if ab != Ordering::Greater && version::compare(&b, &c) != Ordering::Greater {
            prop_assert_ne!(version::compare(&a, &c), Ordering::Greater);
        }
        if let (Ok(x), Ok(y)) = (semver::Version::parse(&a), semver::Version::parse(&b))
            && x.cmp_precedence(&y) != Ordering::Equal {
                prop_assert_eq!(ab, x.cmp_precedence(&y));
            }
    }
}
