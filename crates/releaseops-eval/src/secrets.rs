//! Secrets never reach a report, the terminal, a log or git: every value we
//! know to be secret (provider keys, header values read from the
//! environment, the agent's environment values, API tokens) is replaced by
//! `[redacted]` wherever it appears in text we keep, even when a server
//! echoes it back (`Incorrect API key provided: sk-...`).

use std::borrow::Cow;

/// Values shorter than this are not treated as secrets (redacting `1` or
/// `true` everywhere would garble reports and protect nothing).
const MIN_SECRET_LEN: usize = 8;

pub const REDACTED: &str = "[redacted]";

/// The secret values of one run.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Every provider key and token set in this process's environment.
    pub fn from_environment() -> Redactor {
        let mut r = Redactor::new();
        for (k, v) in std::env::vars() {
            let k = k.to_ascii_uppercase();
            if k.ends_with("_KEY")
                || k.ends_with("_TOKEN")
                || k.ends_with("_TOKENS")
                || k.ends_with("_SECRET")
                || k.ends_with("_PASSWORD")
                || k.ends_with("_PASSWD")
                || k.ends_with("_CREDENTIALS")
                || k == "DATABASE_URL"
                || k.contains("WEBHOOK")
            {
                r.add(&v);
                // A token list (`role:owner:token,...`): each token too.
                for part in v.split([',', ':', ' ']) {
                    r.add(part);
                }
            }
        }
        r
    }

    pub fn add(&mut self, value: &str) {
        let v = value.trim();
        if v.len() >= MIN_SECRET_LEN && !self.secrets.iter().any(|s| s == v) {
            self.secrets.push(v.to_string());
            // Longest first, so a secret inside another is not left half shown.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Secrets from a header value: the whole value and, for `Bearer X` or
    /// `Basic X`, the credential alone.
    pub fn add_header(&mut self, value: &str) {
        self.add(value);
        if let Some((_, cred)) = value.trim().split_once(' ') {
            self.add(cred);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), REDACTED));
            }
        }
        out
    }

    pub fn redact_string(&self, text: &mut String) {
        if let Cow::Owned(s) = self.redact(text) {
            *text = s;
        }
    }

    /// Every string inside a JSON value.
    pub fn redact_json(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => self.redact_string(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.redact_json(x)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| self.redact_json(x)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_keys_and_bearer_credentials_are_redacted() {
        let mut r = Redactor::new();
        r.add("sk-test-0123456789abcdef");
        r.add_header("Bearer tok-9876543210");
        r.add("short");
        let text = "Incorrect API key provided: sk-test-0123456789abcdef; auth Bearer tok-9876543210; short stays";
        assert_eq!(
            r.redact(text),
            "Incorrect API key provided: [redacted]; auth [redacted]; short stays"
        );
    }
}
