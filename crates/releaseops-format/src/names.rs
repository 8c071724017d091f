//! Validation of every name that becomes part of a path: bundle ids, versions,
//! roles, environment names, prompt ids. A name that passes is safe as a single
//! path component on Linux, macOS and Windows.

use crate::FormatError;

const MAX_LEN: usize = 128;

const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

fn check(kind: &'static str, value: &str, extra_chars: &str) -> Result<(), FormatError> {
    let fail = |reason: &str| {
        Err(FormatError::InvalidName {
            kind,
            value: value.to_string(),
            reason: reason.to_string(),
        })
    };
    if value.is_empty() {
        return fail("it is empty");
    }
    if value.len() > MAX_LEN {
        return fail("it is longer than 128 characters");
    }
    let first = value.chars().next().unwrap_or(' ');
    if !first.is_ascii_alphanumeric() {
        return fail("it must start with a letter or digit");
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c) || extra_chars.contains(*c)))
    {
        let allowed = if extra_chars.is_empty() {
            "letters, digits, '-', '_' and '.'".to_string()
        } else {
            format!("letters, digits, '-', '_', '.' and '{extra_chars}'")
        };
        return fail(&format!("character {bad:?} is not allowed (use {allowed})"));
    }
    if value.ends_with('.') {
        return fail("it must not end with '.' (Windows cannot name such a file)");
    }
    if value.contains("..") {
        return fail("it must not contain '..'");
    }
    let stem = value
        .split('.')
        .next()
        .unwrap_or(value)
        .to_ascii_uppercase();
    if WINDOWS_RESERVED.contains(&stem.as_str()) {
        return fail("it is a reserved device name on Windows");
    }
    Ok(())
}

/// A bundle id such as `support-agent`.
pub fn validate_bundle_id(value: &str) -> Result<(), FormatError> {
    check("bundle id", value, "")
}

/// A bundle version such as `1.2.0` (semver is recommended, not required; `+` is
/// allowed for build metadata).
pub fn validate_version(value: &str) -> Result<(), FormatError> {
    check("version", value, "+")
}

/// An artifact role such as `system` or `tools`.
pub fn validate_role(value: &str) -> Result<(), FormatError> {
    check("role", value, "")
}

/// An environment name such as `prod` or `canary`, as stores may already
/// hold it (see [`validate_new_env_name`] for one being made).
pub fn validate_env_name(value: &str) -> Result<(), FormatError> {
    check("environment name", value, "")
}

/// A new environment's name: valid, and not shaped like a version (in
/// `ID@X`, a version-shaped X is a version). Older stores may hold such
/// names; they keep working, but `ID@X` reads them as versions.
pub fn validate_new_env_name(value: &str) -> Result<(), FormatError> {
    validate_env_name(value)?;
    if looks_like_version(value) {
        return Err(FormatError::InvalidName {
            kind: "environment name",
            value: value.to_string(),
            reason: "it looks like a version (`ID@1.2.0` means that version); pick a word such as `prod`".into(),
        });
    }
    Ok(())
}

/// Whether `value` is shaped like a version: a semantic version
/// (`1.2.0`, `2.0.0-rc.1+build.5`) or a shorter or `v`-prefixed one (`1.2`,
/// `v2`). It is the one shape that makes `ID@X` a version rather than an
/// environment, and the one an environment name may not have.
pub fn looks_like_version(value: &str) -> bool {
    if validate_version(value).is_err() {
        return false;
    }
    if semver::Version::parse(value).is_ok() {
        return true;
    }
    let core = value.strip_prefix('v').unwrap_or(value);
    let core = core.split(['-', '+']).next().unwrap_or("");
    !core.is_empty()
        && core
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// A promptops prompt id: `^[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}$`.
pub fn validate_prompt_id(value: &str) -> Result<(), FormatError> {
    check("prompt id", value, "")?;
    if value.contains('.') {
        return Err(FormatError::InvalidName {
            kind: "prompt id",
            value: value.to_string(),
            reason: "promptops prompt ids use only letters, digits, '-' and '_'".into(),
        });
    }
    Ok(())
}

/// A relative path inside the repository (policy and prompt files): no absolute
/// paths, no `..`, forward slashes only in what we record.
pub fn validate_repo_path(value: &str) -> Result<(), FormatError> {
    let fail = |reason: &str| {
        Err(FormatError::InvalidName {
            kind: "path",
            value: value.to_string(),
            reason: reason.to_string(),
        })
    };
    if value.is_empty() {
        return fail("it is empty");
    }
    if value.starts_with('/') || value.starts_with('\\') || value.chars().nth(1) == Some(':') {
        return fail("it must be relative to the repository root");
    }
    if value.split(['/', '\\']).any(|c| c == "..") {
        return fail("it must not leave the repository ('..')");
    }
    if value.chars().any(|c| c.is_control()) {
        return fail("it contains a control character");
    }
    Ok(())
}

/// `did you mean 'prod'? ` when one of `known` is close to `typo` (or
/// nothing): the start of a hint for a name that does not exist. A hint
/// never tells anyone to create or promote the misspelt name.
pub fn did_you_mean<S: AsRef<str>>(typo: &str, known: &[S]) -> String {
    crate::yaml::closest(
        typo,
        known.iter().map(|k| k.as_ref()).filter(|k| *k != typo),
    )
    .map(|k| format!("did you mean '{k}'? "))
    .unwrap_or_default()
}

/// Longest actor, reason or comment recorded.
pub const MAX_TEXT: usize = 4096;

/// Who acts, as recorded in the history and the git commit: `Name <email>`,
/// a bare email, or a bare name, naming one person. Control characters are
/// refused (a newline would forge a `Signed-off-by:` trailer in the commit
/// message or a line in a log), and so are two addresses (`a@x <b@y>`,
/// `a@x, b@y`): each approval must be one person's.
pub fn validate_actor(value: &str) -> Result<(), FormatError> {
    let fail = |reason: &str| {
        Err(FormatError::InvalidName {
            kind: "actor",
            value: value.escape_debug().to_string(),
            reason: reason.to_string(),
        })
    };
    let v = value.trim();
    if v.is_empty() {
        return fail("it is empty");
    }
    if v.len() > 512 {
        return fail("it is longer than 512 characters");
    }
    if v.chars().any(char::is_control) {
        return fail("it contains a control character (a newline, say)");
    }
    let (opens, closes, ats) = v.chars().fold((0, 0, 0), |(o, c, a), ch| match ch {
        '<' => (o + 1, c, a),
        '>' => (o, c + 1, a),
        '@' => (o, c, a + 1),
        _ => (o, c, a),
    });
    if ats > 1 || opens > 1 || closes > 1 {
        return fail("it names more than one address; give one person as `Name <email>`");
    }
    if opens != closes || (opens == 1 && !(v.ends_with('>') && v.find('<') < v.find('>'))) {
        return fail("write it as `Name <email>`, an email, or a name");
    }
    Ok(())
}

/// Free text that is recorded and shown (reasons, comments, descriptions):
/// no control characters, so it can never forge another line, and at most
/// [`MAX_TEXT`] characters.
pub fn validate_text(what: &'static str, value: &str) -> Result<(), FormatError> {
    let fail = |reason: &str| {
        Err(FormatError::InvalidName {
            kind: what,
            value: value
                .chars()
                .take(80)
                .collect::<String>()
                .escape_debug()
                .to_string(),
            reason: reason.to_string(),
        })
    };
    if value.chars().count() > MAX_TEXT {
        return fail("it is longer than 4096 characters");
    }
    if value.chars().any(char::is_control) {
        return fail("it contains a control character (a newline, say); write it on one line");
    }
    Ok(())
}

/// Text from a record for a terminal or a log line: control characters
/// escaped, so a record written before they were refused cannot forge lines.
pub fn escape_for_display(value: &str) -> std::borrow::Cow<'_, str> {
    if value.chars().any(char::is_control) {
        value.escape_debug().to_string().into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["support-agent", "a", "v1.2.0", "1.10.0", "agent_2", "x.y-z"] {
            validate_bundle_id(ok).unwrap();
        }
        validate_version("1.0.0+build.5").unwrap();
    }

    #[test]
    fn environment_names_never_look_like_versions() {
        for v in ["1.2.0", "2.0.0-rc.1+b5", "1.2", "v2", "10", "v1.0.0"] {
            assert!(looks_like_version(v), "{v}");
            assert!(validate_new_env_name(v).is_err(), "{v}");
            // Older stores may hold such names: they still open ('+' was
            // never allowed in an environment name at all).
            if !v.contains('+') {
                validate_env_name(v).unwrap();
            }
        }
        for e in [
            "prod",
            "staging",
            "v",
            "eu1",
            "prod-2",
            "canary.v2",
            "version",
        ] {
            assert!(!looks_like_version(e), "{e}");
            validate_new_env_name(e).unwrap();
        }
    }

    #[test]
    fn refuses_path_traversal_and_windows_names() {
        for bad in [
            "", "../x", "..", ".", "a/b", "a\\b", "con", "NUL.txt", "lpt9", "x.", "-x", "a b",
            "a:b", "a..b", "é",
        ] {
            assert!(validate_bundle_id(bad).is_err(), "{bad} should fail");
            assert!(validate_version(bad).is_err(), "{bad} should fail");
        }
        assert!(validate_version(&"9".repeat(129)).is_err());
    }

    #[test]
    fn actors_name_one_person_and_text_stays_on_one_line() {
        for ok in ["Alice <alice@x>", "alice@x", "Alice Smith", "<alice@x>"] {
            validate_actor(ok).unwrap();
        }
        for bad in [
            "Alice <a@x> <b@y>",
            "a@x <b@y>",
            "a@x, b@y",
            "Alice <a@x>\nSigned-off-by: Eve <e@x>",
            "Alice <a@x",
            "",
        ] {
            assert!(validate_actor(bad).is_err(), "{bad:?}");
        }
        validate_text("reason", "refund spike: roll back").unwrap();
        assert!(validate_text("reason", "x\nSigned-off-by: Eve <e@x>").is_err());
        assert!(validate_text("reason", "x\u{1b}[31m").is_err());
    }

    #[test]
    fn repo_paths() {
        validate_repo_path("policies/tools/refunds.yaml").unwrap();
        for bad in ["/etc/passwd", "../x", "a/../../b", "C:\\x", ""] {
            assert!(validate_repo_path(bad).is_err(), "{bad}");
        }
    }
}
