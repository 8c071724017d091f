//! Approvals signed with the approver's SSH key, as git signs commits:
//! `ssh-keygen -Y sign` over a canonical statement of the approval, checked
//! with `ssh-keygen -Y verify` against `.releaseops/allowed_signers` (the
//! format git's `gpg.ssh.allowedSignersFile` uses: `PRINCIPAL [OPTIONS] KEY`,
//! the principal being the approver's email).
//!
//! Anyone who can write to the repository can rewrite the whole history,
//! approvals included; they cannot make a signature by a key they do not
//! hold. A signed approval names the bundle hash, the environment, the
//! approver and the time, so it cannot be moved to another version, stage or
//! person.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::error::{Result, StoreError};

/// The `-n` namespace: a signature made for releaseops approvals is not
/// valid for anything else (a git commit, a file), nor the other way round.
pub const NAMESPACE: &str = "releaseops-approval";

/// `.releaseops/allowed_signers`.
pub const ALLOWED_SIGNERS: &str = "allowed_signers";

/// What an approval signature covers. Canonical JSON (fixed key order,
/// escaped text), so no comment or name can forge another field.
pub fn approval_payload(
    bundle_id: &str,
    version: &str,
    bundle_hash: &str,
    env: &str,
    approver: &str,
    at: &str,
    comment: Option<&str>,
) -> String {
    let v = json!({
        "statement": "releaseops approval v1",
        "bundle_id": bundle_id,
        "version": version,
        "bundle_hash": bundle_hash,
        "environment": env,
        "approver": approver,
        "at": at,
        "comment": comment.unwrap_or(""),
    });
    format!("{v}\n")
}

fn keygen_error(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Source {
        message: format!("cannot run ssh-keygen to {what}: {e}"),
        hint: Some("install OpenSSH's ssh-keygen (Debian: apt-get install openssh-client)".into()),
    }
}

/// Signs `payload` with `key` (a private key file, or a public key whose
/// private half is in ssh-agent). Returns the armored signature.
pub fn sign(key: &Path, payload: &str) -> Result<String> {
    let mut child = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| keygen_error("sign", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(payload.as_bytes())
            .map_err(|e| keygen_error("sign", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| keygen_error("sign", e))?;
    let sig = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !sig.contains("BEGIN SSH SIGNATURE") {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(StoreError::Source {
            message: format!(
                "ssh-keygen could not sign with {}: {}",
                key.display(),
                err.lines().next().unwrap_or("no signature").trim()
            ),
            hint: Some(
                "give a private SSH key (--key, RELEASEOPS_SIGNING_KEY or git's user.signingkey) without a passphrase, or load it into ssh-agent and give its public key".into(),
            ),
        });
    }
    Ok(sig)
}

/// The allowed signers file, refused if it is a link or missing.
pub fn allowed_signers(dir: &Path) -> std::result::Result<PathBuf, String> {
    let path = dir.join(ALLOWED_SIGNERS);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_file() => Ok(path),
        Ok(_) => Err(format!(
            ".releaseops/{ALLOWED_SIGNERS} is not a regular file (a link is never followed)"
        )),
        Err(_) => Err(format!(
            "there is no .releaseops/{ALLOWED_SIGNERS} to check signatures against"
        )),
    }
}

/// Checks `signature` over `payload` as made by `principal` (an email) with
/// a key `.releaseops/allowed_signers` allows for it. `Err` says why not.
pub fn verify(
    dir: &Path,
    principal: &str,
    payload: &str,
    signature: &str,
) -> std::result::Result<(), String> {
    let signers = allowed_signers(dir)?;
    if principal.is_empty() || principal.contains(char::is_whitespace) {
        return Err(format!(
            "'{principal}' is not an email to check a signature for"
        ));
    }
    let mut sig = tempfile::NamedTempFile::new()
        .map_err(|e| format!("cannot write the signature to check it: {e}"))?;
    sig.write_all(signature.as_bytes())
        .map_err(|e| format!("cannot write the signature to check it: {e}"))?;
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", NAMESPACE, "-f"])
        .arg(&signers)
        .arg("-I")
        .arg(principal)
        .arg("-s")
        .arg(sig.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh-keygen to verify: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(payload.as_bytes())
            .map_err(|e| format!("cannot run ssh-keygen to verify: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot run ssh-keygen to verify: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("the signature does not verify")
        .to_string();
    Err(format!(
        "the signature does not verify for {principal} against .releaseops/{ALLOWED_SIGNERS} ({why})"
    ))
}
