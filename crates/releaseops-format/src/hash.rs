//! Content hashes and the bundle hash, bit for bit as the existing tool computes
//! them (inventory section 4.1):
//!
//! * artifact: `sha256:` + hex SHA-256 of the artifact text (UTF-8);
//! * model config: the same over Python's canonical JSON of the config;
//! * bundle: the same over the sorted artifact hashes, then the model hash,
//!   joined by `\n` with no trailing newline.

use sha2::{Digest, Sha256};

use crate::FormatError;

pub const PREFIX: &str = "sha256:";

/// `sha256:<hex>` of the bytes.
pub fn sha256_prefixed(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str(PREFIX);
    s.push_str(&hex::encode(digest));
    s
}

/// Python's `Path.read_text()` view of a text file: UTF-8 (a BOM is kept) with
/// universal newlines (`\r\n` and lone `\r` become `\n`). Policy and plain prompt
/// files are hashed over this text, as the existing tool does.
pub fn python_text(bytes: &[u8]) -> Result<String, FormatError> {
    let text = std::str::from_utf8(bytes).map_err(|e| FormatError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    if !text.contains('\r') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// True for a well-formed `sha256:<64 lowercase hex>`.
pub fn is_valid(h: &str) -> bool {
    h.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The bare hex part of a `sha256:` hash.
pub fn hex_part(h: &str) -> &str {
    h.strip_prefix(PREFIX).unwrap_or(h)
}

/// `bundle_hash` from the artifact content hashes and the model hash (if any).
pub fn bundle_hash<'a>(
    artifact_hashes: impl IntoIterator<Item = &'a str>,
    model_hash: Option<&str>,
) -> String {
    let mut parts: Vec<&str> = artifact_hashes.into_iter().collect();
    parts.sort_unstable();
    if let Some(m) = model_hash {
        parts.push(m);
    }
    sha256_prefixed(parts.join("\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bundle_is_sha256_of_nothing() {
        assert_eq!(
            bundle_hash([], None),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn universal_newlines() {
        assert_eq!(python_text(b"a\r\nb\rc\n").unwrap(), "a\nb\nc\n");
        assert_eq!(python_text("\u{feff}x".as_bytes()).unwrap(), "\u{feff}x");
        assert!(python_text(&[0xff, 0xfe]).is_err());
    }
}
