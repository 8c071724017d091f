//! The attribution corpus (`corpus/<agent>/`): an agent's system prompt, its
//! policies and model, and labelled traces (`agent.yaml`'s `cases`: the
//! governing line or rule, whether the action breaks it, whether its words
//! are a paraphrase). Shared by the test that holds the floor and the
//! benchmark that prints the figures.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use releaseops_attribution::{Artifact, Attribution, BundleText, ModelText, Trace};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    #[serde(default)]
    model: Option<ModelFile>,
    prompts: indexmap::IndexMap<String, String>,
    #[serde(default)]
    policies: indexmap::IndexMap<String, String>,
    cases: Vec<CaseFile>,
}

#[derive(Debug, Deserialize)]
struct ModelFile {
    #[serde(default)]
    provider: Option<String>,
    model: String,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    trace: String,
    expect: Vec<String>,
    contradicts: bool,
    paraphrased: bool,
    #[serde(default)]
    why: String,
}

pub struct Case {
    pub agent: String,
    pub file: String,
    pub trace: Trace,
    pub expect: Vec<String>,
    pub contradicts: bool,
    pub paraphrased: bool,
    pub why: String,
}

pub struct Agent {
    pub name: String,
    pub bundle: BundleText,
    pub cases: Vec<Case>,
}

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

pub fn load() -> Vec<Agent> {
    load_from(&dir())
}

/// The held-out set: written after the method, never tuned on.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn load_from(dir: &Path) -> Vec<Agent> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("the corpus directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.join("agent.yaml").is_file())
        .collect();
    names.sort();
    names.iter().map(|d| agent(d)).collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn agent(d: &Path) -> Agent {
    let name = d
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    let f: AgentFile = releaseops_format::yaml::from_str(&read(&d.join("agent.yaml")))
        .unwrap_or_else(|e| panic!("{name}/agent.yaml: {e}"));
    let prompts = f
        .prompts
        .iter()
        .map(|(role, p)| {
            Artifact::new(
                role,
                &format!("prompts/{name}-{role}@v1"),
                &read(&d.join(p)),
            )
        })
        .collect();
    let policies = f
        .policies
        .iter()
        .map(|(role, p)| Artifact::new(role, p, &read(&d.join(p))))
        .collect();
    let bundle = BundleText {
        id: name.clone(),
        version: "1.0.0".into(),
        prompts,
        policies,
        model: f.model.map(|m| ModelText {
            provider: m.provider,
            model: m.model,
            temperature: m.temperature,
            max_tokens: m.max_tokens,
        }),
    };
    let cases = f
        .cases
        .into_iter()
        .map(|c| {
            let v: serde_json::Value = serde_json::from_str(&read(&d.join(&c.trace)))
                .unwrap_or_else(|e| panic!("{name}/{}: {e}", c.trace));
            Case {
                agent: name.clone(),
                trace: Trace::from_json(&v, &c.trace).unwrap_or_else(|e| panic!("{e}")),
                file: c.trace,
                expect: c.expect,
                contradicts: c.contradicts,
                paraphrased: c.paraphrased,
                why: c.why,
            }
        })
        .collect();
    Agent {
        name,
        bundle,
        cases,
    }
}

/// How an influence is named in `expect`: `prompt:<role>:<line>` or `policy:<role>:<rule>`.
pub fn name_of(i: &releaseops_attribution::Influence) -> String {
    match (i.artifact_type, i.line, &i.rule) {
        (releaseops_attribution::ArtifactType::Prompt, Some(l), _) => {
            format!("prompt:{}:{l}", i.role.as_deref().unwrap_or_default())
        }
        (releaseops_attribution::ArtifactType::Policy, _, Some(r)) => {
            format!("policy:{}:{r}", i.role.as_deref().unwrap_or_default())
        }
        (t, l, _) => format!("{}:{}:{}", t.as_str(), i.artifact_ref, l.unwrap_or(0)),
    }
}

/// The primary influence is one of the expected ones.
pub fn hit(a: &Attribution, expect: &[String]) -> bool {
    a.primary_influence
        .as_ref()
        .is_some_and(|p| expect.contains(&name_of(p)))
}

/// The contradiction the assessment names is one of the expected rules.
pub fn names_expected(a: &Attribution, expect: &[String]) -> bool {
    a.contradiction.as_ref().is_some_and(|c| {
        a.influences.iter().any(|i| {
            i.is_negated
                && i.artifact_ref == c.artifact_ref
                && i.location.as_deref() == Some(c.location.as_str())
                && expect.contains(&name_of(i))
        })
    })
}

pub struct Score {
    pub cases: usize,
    pub first: usize,
    pub paraphrased: usize,
    pub paraphrased_first: usize,
    pub contradicting: usize,
    pub contradicting_flagged: usize,
    /// Of those flagged, how many name a broken rule the case expects.
    pub contradicting_named: usize,
    pub false_contradictions: usize,
    pub misses: Vec<String>,
}

pub fn score(agents: &[Agent]) -> Score {
    let mut s = Score {
        cases: 0,
        first: 0,
        paraphrased: 0,
        paraphrased_first: 0,
        contradicting: 0,
        contradicting_flagged: 0,
        contradicting_named: 0,
        false_contradictions: 0,
        misses: Vec::new(),
    };
    for ag in agents {
        let index = releaseops_attribution::Index::new(&ag.bundle);
        for c in &ag.cases {
            let a = index.explain(&c.trace);
            let ok = hit(&a, &c.expect);
            let flagged = a.overall_assessment == releaseops_attribution::Assessment::Contradicts;
            s.cases += 1;
            s.first += usize::from(ok);
            if c.paraphrased {
                s.paraphrased += 1;
                s.paraphrased_first += usize::from(ok);
            }
            if c.contradicts {
                s.contradicting += 1;
                s.contradicting_flagged += usize::from(flagged);
                s.contradicting_named += usize::from(flagged && names_expected(&a, &c.expect));
            } else if flagged {
                s.false_contradictions += 1;
            }
            if !ok || flagged != c.contradicts {
                let top: Vec<String> = a
                    .influences
                    .iter()
                    .take(3)
                    .map(|i| {
                        format!(
                            "{} {:.2}{}",
                            name_of(i),
                            i.confidence,
                            if i.is_negated { " !" } else { "" }
                        )
                    })
                    .collect();
                s.misses.push(format!(
                    "{}/{}: expected {:?}{} got [{}] {} ({})",
                    c.agent,
                    c.file,
                    c.expect,
                    if c.contradicts { " (contradicts)" } else { "" },
                    top.join(", "),
                    a.overall_assessment.as_str(),
                    a.assessment_reason
                ));
            }
        }
    }
    s
}
