//! One grammar for naming a bundle version, the same in every command, the
//! runtime loader and the API:
//!
//! - `ID@X` is the version X when X is a semantic version (`support-agent@1.2.0`),
//!   and whatever environment X runs otherwise (`support-agent@prod`);
//!   environment names may not look like versions, so this is never ambiguous;
//! - `ID==VERSION` is always that version (any version string);
//! - `ID VERSION`, two words, is that version too.

use releaseops_format::names;
use releaseops_store::Store;

use crate::app::Failure;

/// What follows the bundle id in a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum At {
    Version(String),
    Env(String),
}

/// Splits `ID`, `ID@X` or `ID==VERSION`.
pub(crate) fn split(word: &str) -> Result<(String, Option<At>), Failure> {
    let (id, at) = if let Some((id, v)) = word.split_once("==") {
        names::validate_version(v).map_err(|e| bad(word, &e.to_string()))?;
        (id, Some(At::Version(v.to_string())))
    } else if let Some((id, x)) = word.split_once('@') {
        if names::looks_like_version(x) {
            (id, Some(At::Version(x.to_string())))
        } else {
            names::validate_env_name(x).map_err(|e| bad(word, &e.to_string()))?;
            (id, Some(At::Env(x.to_string())))
        }
    } else {
        (word, None)
    };
    names::validate_bundle_id(id).map_err(|e| bad(word, &e.to_string()))?;
    Ok((id.to_string(), at))
}

fn bad(word: &str, why: &str) -> Failure {
    Failure::usage(
        format!("'{word}' is not a bundle reference: {why}"),
        "write ID, ID VERSION, ID@VERSION (a semantic version), ID@ENV (what ENV runs) or ID==VERSION",
    )
}

/// The version `at` names: itself, what an environment runs, or (none
/// given) the highest version of the bundle.
pub(crate) fn version(store: &Store, id: &str, at: Option<At>) -> Result<String, Failure> {
    match at {
        Some(At::Version(v)) => Ok(v),
        Some(At::Env(env)) => Ok(releaseops_core::envs::live_version(store, &env, id)?),
        None => Ok(store.latest_version(id)?),
    }
}

/// A bundle and its version from `ID [VERSION]`, `ID@X` or `ID==VERSION`,
/// or a `--version` flag (not two versions at once). No version means the
/// highest.
pub(crate) fn bundle_version(
    store: &Store,
    words: &[String],
    flag: Option<String>,
) -> Result<(String, String), Failure> {
    let (id, at) = match words {
        [word] => split(word)?,
        [word, v] => {
            let (id, at) = split(word)?;
            if at.is_some() {
                return Err(twice(word, v));
            }
            names::validate_version(v).map_err(|e| bad(v, &e.to_string()))?;
            (id, Some(At::Version(v.clone())))
        }
        _ => {
            return Err(Failure::usage(
                format!(
                    "expected a bundle and a version, got {} word(s)",
                    words.len()
                ),
                "write ID VERSION, ID@VERSION, ID@ENV or ID==VERSION",
            ));
        }
    };
    let at = match (at, flag) {
        (Some(_), Some(v)) => return Err(twice(&words.join(" "), &v)),
        (None, Some(v)) => Some(At::Version(v)),
        (at, None) => at,
    };
    let version = version(store, &id, at)?;
    Ok((id, version))
}

/// As [`bundle_version`], but the version must be named (a reject or an
/// approval is never for "the highest").
pub(crate) fn exact(store: &Store, words: &[String]) -> Result<(String, String), Failure> {
    if let [word] = words
        && split(word)?.1.is_none()
    {
        return Err(Failure::usage(
            format!("which version of '{word}'?"),
            format!("name it: {word} 1.2.0, {word}@1.2.0, {word}@ENV or {word}==VERSION"),
        ));
    }
    bundle_version(store, words, None)
}

/// The words of a command that names a bundle, a version and an
/// environment: `ID VERSION ENV` or `REF ENV`.
pub(crate) fn bundle_version_env(
    store: &Store,
    command: &str,
    words: &[String],
) -> Result<(String, String, String), Failure> {
    match words {
        [id, v, env] => {
            swapped(store, command, words, &[id, v, env])?;
            let (id, version) = bundle_version(store, &[id.clone(), v.clone()], None)?;
            Ok((id, version, env.clone()))
        }
        [reference, env] => {
            let (id, at) = split(reference)?;
            if at.is_none() {
                return Err(Failure::usage(
                    format!("{command} needs a version: ID VERSION ENV, or ID@VERSION ENV"),
                    format!("e.g. releaseops {command} {reference} 1.2.0 {env}"),
                ));
            }
            let version = version(store, &id, at)?;
            Ok((id, version, env.clone()))
        }
        _ => Err(Failure::usage(
            format!(
                "{command} takes ID VERSION ENV, got {} argument(s)",
                words.len()
            ),
            format!("e.g. releaseops {command} support-agent 1.2.0 staging"),
        )),
    }
}

/// `ENV ID` for `rollback`, with swapped words recognised.
pub(crate) fn env_bundle(store: &Store, env: &str, id: &str) -> Result<(), Failure> {
    let envs = store.environments()?;
    if envs.iter().any(|e| e == env) {
        return Ok(());
    }
    let ids = store.bundle_ids()?;
    if envs.iter().any(|e| e == id) && ids.iter().any(|b| b == env) {
        return Err(Failure::usage(
            format!("'{env}' is a bundle and '{id}' an environment: the order is ENV ID"),
            format!("did you mean: releaseops rollback {id} {env}"),
        ));
    }
    Ok(())
}

/// Recognises `ID VERSION ENV` given in another order (`promote prod
/// support-agent 1.2.0`, `promote support-agent prod 1.2.0`) and says the
/// command that was meant.
fn swapped(
    store: &Store,
    command: &str,
    words: &[String],
    given: &[&String; 3],
) -> Result<(), Failure> {
    let envs = store.environments()?;
    let ids = store.bundle_ids()?;
    let fits = |id: &str, v: &str, env: &str| -> bool {
        ids.iter().any(|b| b == id)
            && envs.iter().any(|e| e == env)
            && store
                .bundle_versions(id)
                .map(|vs| vs.iter().any(|x| x == v))
                .unwrap_or(false)
    };
    if fits(given[0], given[1], given[2]) {
        return Ok(());
    }
    const ORDERS: [[usize; 3]; 5] = [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for o in ORDERS {
        let (id, v, env) = (&words[o[0]], &words[o[1]], &words[o[2]]);
        if fits(id, v, env) {
            return Err(Failure::usage(
                format!("the words are in another order than {command} takes (ID VERSION ENV)"),
                format!("did you mean: releaseops {command} {id} {v} {env}"),
            ));
        }
    }
    Ok(())
}

fn twice(first: &str, second: &str) -> Failure {
    Failure::usage(
        format!("two versions given: '{first}' and '{second}'"),
        "name the version once: ID VERSION, ID@VERSION or --version VERSION",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar() {
        let v = |s: &str| Some(At::Version(s.to_string()));
        let e = |s: &str| Some(At::Env(s.to_string()));
        assert_eq!(split("a").unwrap(), ("a".into(), None));
        assert_eq!(split("a@1.2.0").unwrap(), ("a".into(), v("1.2.0")));
        assert_eq!(
            split("a@1.2.0-rc.1").unwrap(),
            ("a".into(), v("1.2.0-rc.1"))
        );
        assert_eq!(split("a@prod").unwrap(), ("a".into(), e("prod")));
        assert_eq!(split("a==v2").unwrap(), ("a".into(), v("v2")));
        assert_eq!(split("a==1.2.0").unwrap(), ("a".into(), v("1.2.0")));
        for word in ["a@", "@prod", "a@prod@x", "../a@prod", "a==", "a==../x"] {
            let f = split(word).unwrap_err();
            assert_eq!(f.code(), 2, "{word}");
            assert!(f.message.contains(word), "{word}: {}", f.message);
        }
    }
}
