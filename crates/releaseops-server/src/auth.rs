//! Bearer tokens with roles. Tokens are kept as SHA-256 digests: the file
//! `releaseops token new` writes holds no secret, and a presented token is
//! looked up by its digest, so the lookup's timing says nothing about which
//! tokens exist.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do. `viewer` reads; `deployer` also promotes and
/// rolls back, `approver` also approves and rejects, `admin` does all of
/// it and may override gates. `ingest` sends spans (`POST /v1/traces`)
/// and nothing else: not even reads, so the token an agent's exporter
/// holds reveals no prompt or policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Deployer,
    Approver,
    Admin,
    Ingest,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Deployer,
        Role::Approver,
        Role::Admin,
        Role::Ingest,
    ];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Ingest => "ingest",
        }
    }

    /// True when a token of this role may do what `needed` guards.
    pub fn allows(self, needed: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Ingest => needed == Role::Ingest,
            _ => self == needed || needed == Role::Viewer,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a token belongs to: recorded as the actor of what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub owner: String,
    pub role: Role,
}

/// The configured tokens, by digest.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], Principal>,
}

/// One entry of a tokens file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    owner: String,
    role: String,
    /// Hex SHA-256 of the token (what `releaseops token new` writes).
    #[serde(default)]
    sha256: Option<String>,
    /// The token itself (accepted; a digest keeps the file free of secrets).
    #[serde(default)]
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tokens: Vec<Entry>,
}

/// Shortest plain token accepted: anything shorter could be guessed.
const MIN_TOKEN_LEN: usize = 16;

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Hex SHA-256 of a token, as tokens files hold it.
pub fn token_digest(token: &str) -> String {
    hex::encode(digest(token))
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Reads a tokens file:
    ///
    /// ```yaml
    /// tokens:
    ///   - owner: CI bot <ci@example.com>
    ///     role: deployer
    ///     sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b
    /// ```
    pub fn from_file(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
        let mut tokens = Tokens::default();
        if text.trim().is_empty() {
            return Ok(tokens);
        }
        let file: File = releaseops_format::yaml::from_str(&text)
            .map_err(|e| format!("tokens file {}: {e}", path.display()))?;
        for (i, e) in file.tokens.into_iter().enumerate() {
            let at = format!("tokens file {}, entry {}", path.display(), i + 1);
            let d = match (&e.sha256, &e.token) {
                (Some(h), None) => {
                    let mut d = [0u8; 32];
                    hex::decode_to_slice(h.trim(), &mut d).map_err(|_| {
                        format!(
                            "{at}: sha256 must be 64 hex digits (`releaseops token new` writes it)"
                        )
                    })?;
                    d
                }
                (None, Some(t)) => {
                    check_plain(t).map_err(|m| format!("{at}: {m}"))?;
                    digest(t)
                }
                _ => return Err(format!("{at}: give exactly one of sha256 and token")),
            };
            tokens
                .insert(d, &e.owner, &e.role)
                .map_err(|m| format!("{at}: {m}"))?;
        }
        Ok(tokens)
    }

    /// Reads `ROLE:OWNER:TOKEN` entries separated by commas or newlines (the
    /// `RELEASEOPS_API_TOKENS` variable). The owner may not contain ':'.
    pub fn from_env_value(value: &str) -> Result<Tokens, String> {
        let mut tokens = Tokens::default();
        for (i, item) in value
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let at = format!("RELEASEOPS_API_TOKENS, entry {}", i + 1);
            let mut parts = item.splitn(3, ':');
            let (Some(role), Some(owner), Some(token)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("{at}: write ROLE:OWNER:TOKEN"));
            };
            check_plain(token).map_err(|m| format!("{at}: {m}"))?;
            tokens
                .insert(digest(token), owner, role)
                .map_err(|m| format!("{at}: {m}"))?;
        }
        Ok(tokens)
    }

    /// Adds every token of `other`; the same token twice is an error.
    pub fn merge(&mut self, other: Tokens) -> Result<(), String> {
        for (d, p) in other.by_digest {
            if self.by_digest.insert(d, p).is_some() {
                return Err("the same token is configured twice".into());
            }
        }
        Ok(())
    }

    fn insert(&mut self, d: [u8; 32], owner: &str, role: &str) -> Result<(), String> {
        let owner = owner.trim();
        if owner.is_empty() || owner.chars().any(char::is_control) {
            return Err("owner must be a name or `Name <email>`, on one line".into());
        }
        let role = Role::parse(role).ok_or_else(|| {
            format!("unknown role '{role}': use viewer, deployer, approver, admin or ingest")
        })?;
        let p = Principal {
            owner: owner.to_string(),
            role,
        };
        if self.by_digest.insert(d, p).is_some() {
            return Err("the same token is configured twice".into());
        }
        Ok(())
    }

    /// Who presented `token`, if anyone.
    pub fn lookup(&self, token: &str) -> Option<&Principal> {
        self.by_digest.get(&digest(token))
    }
}

fn check_plain(t: &str) -> Result<(), String> {
    if t.trim().len() < MIN_TOKEN_LEN || t.trim() != t {
        return Err(format!(
            "a token must be at least {MIN_TOKEN_LEN} characters with no surrounding spaces; `releaseops token new` makes one"
        ));
    }
    Ok(())
}

/// A new random token: `rops_` and 64 hex digits (256 bits).
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| format!("the system random number generator failed: {e}"))?;
    Ok(format!("rops_{}", hex::encode(bytes)))
}

/// Appends `owner`'s token (as its digest) to the tokens file at `path`,
/// creating it readable by its owner only. Refuses a file that does not
/// parse, so a mistake never hides behind a valid new entry.
pub fn append_token(path: &Path, owner: &str, role: Role, token: &str) -> Result<(), String> {
    let existing = if path.exists() {
        Some(Tokens::from_file(path)?)
    } else {
        None
    };
    let mut check = Tokens::default();
    check.insert(digest(token), owner, role.as_str())?;
    if let Some(mut e) = existing {
        e.merge(check)?;
    }
    let mut text = String::new();
    let fresh = !path.exists() || std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
    if fresh {
        text.push_str(
            "# releaseops API tokens: digests only, so this file holds no secret.\n# Add one with `releaseops token new --owner NAME --role ROLE`.\ntokens:\n",
        );
    } else {
        let current = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if !current.contains("tokens:") {
            text.push_str("tokens:\n");
        } else if !current.ends_with('\n') {
            text.push('\n');
        }
    }
    let owner_json = serde_json::to_string(owner.trim()).map_err(|e| e.to_string())?;
    text.push_str(&format!(
        "  - owner: {owner_json}\n    role: {role}\n    sha256: {}\n",
        token_digest(token)
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot write the tokens file {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write the tokens file {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_they_guard_and_admin_everything() {
        assert!(Role::Viewer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Deployer));
        assert!(Role::Deployer.allows(Role::Viewer));
        assert!(!Role::Deployer.allows(Role::Approver));
        assert!(!Role::Approver.allows(Role::Deployer));
        assert!(Role::Ingest.allows(Role::Ingest));
        assert!(!Role::Ingest.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Ingest));
        assert!(!Role::Deployer.allows(Role::Ingest));
        for r in Role::ALL {
            assert!(Role::Admin.allows(r));
        }
    }

    #[test]
    fn env_entries_parse_and_bad_ones_name_the_entry() {
        let t = Tokens::from_env_value(
            "deployer:CI bot <ci@example.com>:aaaaaaaaaaaaaaaaaaaa, viewer:dash:bbbbbbbbbbbbbbbb:with-colon",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        let p = t.lookup("aaaaaaaaaaaaaaaaaaaa").unwrap();
        assert_eq!(p.owner, "CI bot <ci@example.com>");
        assert_eq!(p.role, Role::Deployer);
        assert_eq!(
            t.lookup("bbbbbbbbbbbbbbbb:with-colon").unwrap().role,
            Role::Viewer
        );
        assert!(t.lookup("aaaaaaaaaaaaaaaaaaa").is_none());
        let e = Tokens::from_env_value("root:me:aaaaaaaaaaaaaaaaaaaa").unwrap_err();
        assert!(
            e.contains("entry 1") && e.contains("unknown role 'root'"),
            "{e}"
        );
        let e = Tokens::from_env_value("admin:me:short").unwrap_err();
        assert!(e.contains("at least 16"), "{e}");
        let e = Tokens::from_env_value("admin:me").unwrap_err();
        assert!(e.contains("ROLE:OWNER:TOKEN"), "{e}");
    }

    #[test]
    fn new_tokens_append_as_digests_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("rops_") && a.len() == 69);
        append_token(&path, "Alice <alice@example.com>", Role::Approver, &a).unwrap();
        append_token(&path, "ci: \"bot\"", Role::Deployer, &b).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&a) && !text.contains(&b), "{text}");
        let t = Tokens::from_file(&path).unwrap();
        assert_eq!(t.lookup(&a).unwrap().owner, "Alice <alice@example.com>");
        assert_eq!(t.lookup(&b).unwrap().owner, "ci: \"bot\"");
        // The same token twice is refused, and the file is left as it was.
        let e = append_token(&path, "Mallory", Role::Admin, &a).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the tokens file is private");
        }
    }

    #[test]
    fn a_bad_file_entry_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(
            &path,
            "tokens:\n  - owner: a\n    role: viewer\n    sha256: zz\n",
        )
        .unwrap();
        let e = Tokens::from_file(&path).unwrap_err();
        assert!(e.contains("entry 1") && e.contains("64 hex digits"), "{e}");
        std::fs::write(&path, "tokens:\n  - owner: a\n    role: viewer\n").unwrap();
        let e = Tokens::from_file(&path).unwrap_err();
        assert!(e.contains("exactly one of sha256 and token"), "{e}");
    }
}
