//! API keys and bearer tokens never reach the store, whether or not
//! content is captured: values under secret-sounding attribute names are
//! dropped, and credentials of the well-known shapes are replaced by
//! `[redacted]` wherever they appear in text we keep.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

static SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i:bearer|basic|token)(?:\s+|%20)[A-Za-z0-9._~+/=-]{8,}",
        r"|\bsk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{16,}",
        r"|\b(?:pk|sk)-lf-[A-Za-z0-9-]{8,}",
        r"|\blsv2_[a-z]{2}_[A-Za-z0-9_]{16,}",
        r"|\bAKIA[0-9A-Z]{16}\b",
        r"|\bAIza[0-9A-Za-z_-]{35}",
        r"|\bgh[pousr]_[A-Za-z0-9]{30,}",
        r"|\bxox[abprs]-[A-Za-z0-9-]{10,}",
        r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
        r"|\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
        r"|\bglpat-[A-Za-z0-9_-]{20,}",
        r"|\bhf_[A-Za-z0-9]{30,}",
        r"|\bnpm_[A-Za-z0-9]{36}",
        r"|\bya29\.[A-Za-z0-9_-]{20,}",
        // Webhook URLs are their own credential.
        r"|(?i:https?://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+",
        r"|(?i:https?://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/)[A-Za-z0-9/_-]+",
        r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        // `api_key=...`, and a signed link's `?sig=` / `&signature=` / `?key=`.
        r#"|((?:(?i:api[_-]?key|apikey|password|passwd|secret|access[_-]?token|auth[_-]?token|token)|[?&](?i:sig|signature|key))["']?\s*[=:]\s*["']?)[^\s,;&"']{6,}"#,
        // user:password@ in a URL; the password may hold '/' (base64).
        r"|://[^/\s:@]+:[^\s@]+@",
    ))
    .expect("the secret pattern compiles")
});

/// `text` with every credential-shaped substring replaced.
pub fn text(s: &str) -> Cow<'_, str> {
    if !SECRET.is_match(s) {
        return Cow::Borrowed(s);
    }
    SECRET.replace_all(s, |c: &regex::Captures<'_>| {
        let m = &c[0];
        if m.starts_with("://") {
            return format!("://{REDACTED}@");
        }
        match c.get(1) {
            // `api_key=...`: keep the name so the reader sees what was there.
            Some(prefix) => format!("{}{REDACTED}", prefix.as_str()),
            None => REDACTED.to_string(),
        }
    })
}

/// Attribute names whose values are secrets whatever they look like.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "authorization",
        "api_key",
        "api-key",
        "apikey",
        "password",
        "secret",
        "token",
        "cookie",
        "credential",
        "private_key",
    ]
    .iter()
    .any(|s| k.contains(s))
        && !k.contains("token_count")
        && !k.contains("tokens")
        && !k.ends_with("token_type")
}

/// An attribute's value, redacted in place.
pub fn value(key: &str, v: &mut Value) {
    if is_secret_key(key) {
        *v = Value::String(REDACTED.into());
        return;
    }
    match v {
        Value::String(s) => {
            if let Cow::Owned(r) = text(s) {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| value("", x)),
        Value::Object(o) => o.iter_mut().for_each(|(k, x)| value(k, x)),
        _ => {}
    }
}

/// At most 40 characters of a value for an error message, redacted.
pub fn preview(s: &str) -> String {
    let s = text(s);
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        let cases = [
            ("auth: Bearer abcdefgh12345678", "auth: [redacted]"),
            (
                "key sk-proj-AAAAAAAAAAAAAAAAAAAA done",
                "key [redacted] done",
            ),
            ("x sk-ant-api03-BBBBBBBBBBBBBBBBBBBB", "x [redacted]"),
            ("lf sk-lf-1234abcd-99", "lf [redacted]"),
            ("ls lsv2_pt_0123456789abcdef0123", "ls [redacted]"),
            ("aws AKIAABCDEFGHIJKLMNOP", "aws [redacted]"),
            (
                "url https://user:hunter22@db.example/x",
                "url https://[redacted]@db.example/x",
            ),
            ("api_key=abcdef123456&x=1", "api_key=[redacted]&x=1"),
            (
                r#"{"api_key": "abcdef123456"}"#,
                r#"{"api_key": "[redacted]"}"#,
            ),
            (
                "postgres://ro:Ab3/x9+k@db.internal/traces",
                "postgres://[redacted]@db.internal/traces",
            ),
            (
                "post to https://hooks.slack.com/services/T0AAA/B0BBB/abcdefXYZ123 now",
                "post to [redacted] now",
            ),
            (
                "https://discord.com/api/webhooks/1234/abcDEF-ghi",
                "[redacted]",
            ),
            ("stripe sk_live_0123456789abcdefABCD", "stripe [redacted]"),
            ("gl glpat-0123456789abcdefghij", "gl [redacted]"),
            (
                "https://acct.blob.core.windows.net/c/f?sv=2022&sig=AbCdEf123456%3D&se=1",
                "https://acct.blob.core.windows.net/c/f?sv=2022&sig=[redacted]&se=1",
            ),
            (
                "GET https://maps.example/api?key=AIzaNotQuiteLongEnough1&q=x",
                "GET https://maps.example/api?key=[redacted]&q=x",
            ),
            ("auth=Bearer%20abcdefgh12345678", "auth=[redacted]"),
            ("the key: remember the order", "the key: remember the order"),
            (
                r#"{"token": "abcdef123456", "input_tokens": 250}"#,
                r#"{"token": "[redacted]", "input_tokens": 250}"#,
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- ok",
                "[redacted] ok",
            ),
            (
                "nothing secret here, 100 dollars",
                "nothing secret here, 100 dollars",
            ),
            (
                "you have 3 tokens left; max_tokens: 256",
                "you have 3 tokens left; max_tokens: 256",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }

    #[test]
    fn secret_keys_lose_their_values() {
        let mut v = Value::String("plain".into());
        value("http.request.header.authorization", &mut v);
        assert_eq!(v, REDACTED);
        let mut v = Value::from(12);
        value("llm.token_count.prompt", &mut v);
        assert_eq!(v, 12);
        let mut v = serde_json::json!({"openai_api_key": "zzz", "n": "Bearer abcdefghijkl"});
        value("config", &mut v);
        assert_eq!(
            v,
            serde_json::json!({"openai_api_key": REDACTED, "n": REDACTED})
        );
    }
}
