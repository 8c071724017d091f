//! YAML in and out.
//!
//! Reading goes through serde-saphyr with a tight resource budget (alias bombs,
//! deep nesting and huge inputs are refused before they cost anything) and YAML
//! 1.2 booleans. Writing uses a small emitter that produces what PyYAML's
//! `yaml.dump(default_flow_style=False, sort_keys=False)` produces for our
//! documents, quoting every scalar that a YAML 1.1 reader (PyYAML) would
//! otherwise re-type: `'1.10'`, `'2026-11-21T21:30:24+00:00'`, `'yes'`.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::FormatError;
use crate::pyjson::float_repr;

mod fast;
mod split;

pub use split::{Listed, from_bytes_list, from_str_list};

/// Largest YAML document we parse. Manifests, environment files and reviews are
/// a few kilobytes; 16 MiB leaves room for big suites without letting a 200 MB
/// file through.
pub const MAX_YAML_BYTES: usize = 16 * 1024 * 1024;

/// Parses a YAML document from raw bytes into `T`, refusing oversize, non-UTF-8,
/// resource-exhausting and malformed input with a one-line message.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    from_str(utf8(bytes)?)
}

/// A document's bytes as text, refusing oversize and non-UTF-8 input.
fn utf8(bytes: &[u8]) -> Result<&str, FormatError> {
    if bytes.len() > MAX_YAML_BYTES {
        return Err(FormatError::TooLarge {
            size: bytes.len(),
            limit: MAX_YAML_BYTES,
        });
    }
    std::str::from_utf8(bytes).map_err(|e| FormatError::NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// As [`from_bytes`], for text already known to be UTF-8.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, FormatError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(FormatError::Parse("the file is empty".into()));
    }
    serde_saphyr::from_str_with_options::<T>(text, options())
        .map_err(|e| FormatError::Parse(with_suggestion(one_line(&e.to_string()))))
}

/// The known key `typo` was probably meant to be, if one is close enough.
pub fn closest<'k>(typo: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(typo, k), k))
        .min()
        .filter(|(d, _)| *d <= 3.max(typo.len() / 3))
        .map(|(_, k)| k)
}

/// `unknown key `x` (known: a, b); did you mean `a`?` for keys read by hand
/// from a mapping; `None` when every key is known.
pub fn unknown_key<'a>(
    keys: impl IntoIterator<Item = &'a String>,
    known: &[&str],
) -> Option<String> {
    let bad = keys.into_iter().find(|k| !known.contains(&k.as_str()))?;
    let mut msg = if known.is_empty() {
        format!("unknown key `{bad}` (this takes no settings)")
    } else {
        format!("unknown key `{bad}` (known: {})", known.join(", "))
    };
    if let Some(k) = closest(bad, known.iter().copied()) {
        msg.push_str(&format!("; did you mean `{k}`?"));
    }
    Some(msg)
}

/// A misspelt key is an error, never a gate turned off; the error says
/// which known key was probably meant.
pub fn with_suggestion(msg: String) -> String {
    static UNKNOWN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"unknown (?:field|variant) `([^`]*)`, expected (?:one of )?(.*)$")
            .expect("valid regex")
    });
    let Some(c) = UNKNOWN.captures(&msg) else {
        return msg;
    };
    let typo = c[1].to_string();
    let known: Vec<String> = c[2]
        .split(',')
        .map(|k| k.trim().trim_matches('`').trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    match closest(&typo, known.iter().map(String::as_str)) {
        Some(k) => format!("{msg}; did you mean `{k}`?"),
        None => msg,
    }
}

/// As [`from_bytes`], for the files releaseops rewrites (environments, the
/// config, reviews, deployment indexes, manifests): anchors and aliases are
/// refused, since a rewrite would expand them (a 476-byte file became 9.4 MB).
pub fn from_bytes_plain<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    let text = utf8(bytes)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(FormatError::Parse("the file is empty".into()));
    }
    let mut b = budget();
    b.max_aliases = 0;
    b.max_anchors = 0;
    let opts = serde_saphyr::options! {
        strict_booleans: true,
        budget: Some(b),
    };
    serde_saphyr::from_str_with_options::<T>(text, opts).map_err(|e| {
        let msg = one_line(&e.to_string());
        if msg.contains("Anchors {") || msg.contains("Aliases {") {
            static AT: LazyLock<Regex> =
                LazyLock::new(|| Regex::new(r"^line \d+ column \d+").expect("valid regex"));
            let at = AT
                .find(&msg)
                .map(|m| format!("{}: ", m.as_str()))
                .unwrap_or_default();
            FormatError::Parse(format!(
                "{at}YAML anchors and aliases (&name, *name) are not allowed in this file: releaseops rewrites it and would expand them; write the values out"
            ))
        } else {
            FormatError::Parse(with_suggestion(msg))
        }
    })
}

/// The resource budget every document is read under.
fn budget() -> serde_saphyr::Budget {
    let mut b = serde_saphyr::Budget::default();
    b.max_depth = 48;
    b.max_nodes = 2_000_000;
    b.max_aliases = 1_000;
    b.max_anchors = 1_000;
    b
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        budget: Some(budget()),
    }
}

/// serde-saphyr renders source snippets over several lines; a user-facing error
/// is one line, so keep the headline.
fn one_line(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg).trim();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// A string field that must be written as a string. A bare `1.10` is refused:
/// YAML readers (PyYAML among them) read it as the float 1.1, so the same file
/// would mean different versions to different tools.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StrictString(pub String);

impl<'de> Deserialize<'de> for StrictString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StrictString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quoted string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StrictString, E> {
                Ok(StrictString(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<StrictString, E> {
                Ok(StrictString(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<StrictString, E> {
                Err(E::custom(format!(
                    "bare number {} where a string is expected (YAML reads it as the float {}); quote it, e.g. '1.10'",
                    v,
                    float_repr(v)
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StrictString, E> {
                Err(E::custom(format!(
                    "bare number {v} where a string is expected; quote it, e.g. '{v}'"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StrictString, E> {
                Err(E::custom(format!(
                    "bare number {v} where a string is expected; quote it, e.g. '{v}'"
                )))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<StrictString, E> {
                Err(E::custom(format!(
                    "bare boolean {v} where a string is expected; quote it"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl std::ops::Deref for StrictString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A YAML document tree to emit, in key order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    Str(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Null,
}

impl Node {
    pub fn str(s: impl Into<String>) -> Node {
        Node::Str(s.into())
    }

    /// Converts JSON data (model parameters, unknown keys we keep) to a node.
    pub fn from_json(v: &Value) -> Node {
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Node::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Node::UInt(u)
                } else {
                    Node::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Node::Str(s.clone()),
            Value::Array(a) => Node::Seq(a.iter().map(Node::from_json).collect()),
            Value::Object(m) => Node::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The document as PyYAML block-style text.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        match self {
            Node::Map(entries) if !entries.is_empty() => emit_map(entries, 0, &mut out),
            Node::Seq(items) if !items.is_empty() => emit_seq(items, 0, &mut out),
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
        out
    }
}

fn is_block(n: &Node) -> bool {
    matches!(n, Node::Map(m) if !m.is_empty()) || matches!(n, Node::Seq(s) if !s.is_empty())
}

fn emit_map(entries: &[(String, Node)], indent: usize, out: &mut String) {
    for (k, v) in entries {
        out.push_str(&" ".repeat(indent));
        out.push_str(&quote(k));
        out.push(':');
        match v {
            Node::Map(m) if !m.is_empty() => {
                out.push('\n');
                emit_map(m, indent + 2, out);
            }
            // PyYAML writes sequences inside mappings "indentless".
            Node::Seq(s) if !s.is_empty() => {
                out.push('\n');
                emit_seq(s, indent, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn emit_seq(items: &[Node], indent: usize, out: &mut String) {
    for item in items {
        if is_block(item) {
            let mut inner = String::new();
            match item {
                Node::Map(m) => emit_map(m, indent + 2, &mut inner),
                Node::Seq(s) => emit_seq(s, indent + 2, &mut inner),
                _ => {}
            }
            out.push_str(&" ".repeat(indent));
            out.push_str("- ");
            out.push_str(&inner[indent + 2..]);
        } else {
            out.push_str(&" ".repeat(indent));
            out.push_str("- ");
            out.push_str(&scalar(item));
            out.push('\n');
        }
    }
}

fn scalar(n: &Node) -> String {
    match n {
        Node::Str(s) => quote(s),
        Node::Int(i) => i.to_string(),
        Node::UInt(u) => u.to_string(),
        Node::Float(f) => yaml_float(*f),
        Node::Bool(b) => if *b { "true" } else { "false" }.to_string(),
        Node::Null => "null".to_string(),
        Node::Map(_) => "{}".to_string(),
        Node::Seq(_) => "[]".to_string(),
    }
}

/// PyYAML's float representer: `repr`, with `.0` added before an exponent.
fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    let r = float_repr(f);
    if !r.contains('.') && r.contains('e') {
        r.replacen('e', ".0e", 1)
    } else {
        r
    }
}

/// YAML 1.1 implicit types as PyYAML resolves them: a plain scalar matching
/// any of these would not read back as a string.
static IMPLICIT: LazyLock<Regex> = LazyLock::new(|| {
    let bool_ = r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF";
    let float = r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)";
    let int = r"[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+";
    let null = r"~|null|Null|NULL";
    let ts = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::?[0-9]{2})?))?)?";
    // YAML 1.2 core schema too (our own reader and other modern ones): any
    // digits, 0o/0x forms, decimals and exponents, inf and nan.
    let core12 = r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)";
    Regex::new(&format!(
        "^(?:{bool_}|{float}|{int}|{null}|{ts}|{core12}|<<|=)$"
    ))
    .expect("static regex is valid")
});

fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    let first = s.as_bytes()[0];
    if b"-?:,[]{}#&*!|>'\"%@`".contains(&first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.contains('\t') {
        return false;
    }
    !IMPLICIT.is_match(s)
}

/// Quotes a string the way PyYAML would choose: plain when it reads back as the
/// same string, single quotes when only plain style is unsafe, double quotes with
/// escapes when the text has line breaks, control or non-ASCII characters
/// (PyYAML's default `allow_unicode=False` keeps files ASCII).
pub fn quote(s: &str) -> String {
    if s.chars().any(|c| !(' '..='~').contains(&c)) {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\0' => out.push_str("\\0"),
                '\u{07}' => out.push_str("\\a"),
                '\u{08}' => out.push_str("\\b"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\u{0b}' => out.push_str("\\v"),
                '\u{0c}' => out.push_str("\\f"),
                '\r' => out.push_str("\\r"),
                '\u{1b}' => out.push_str("\\e"),
                '\u{85}' => out.push_str("\\N"),
                '\u{a0}' => out.push_str("\\_"),
                '\u{2028}' => out.push_str("\\L"),
                '\u{2029}' => out.push_str("\\P"),
                ' '..='~' => out.push(c),
                c if (c as u32) <= 0xff => out.push_str(&format!("\\x{:02X}", c as u32)),
                c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push_str(&format!("\\U{:08X}", c as u32)),
            }
        }
        out.push('"');
        out
    } else if plain_ok(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct S {
        v: StrictString,
    }

    #[test]
    fn quoting_matches_pyyaml_for_our_values() {
        assert_eq!(quote("1.0.0"), "1.0.0");
        assert_eq!(quote("1.10"), "'1.10'");
        assert_eq!(
            quote("2026-11-21T21:30:24.707346+00:00"),
            "'2026-11-21T21:30:24.707346+00:00'"
        );
        assert_eq!(quote("sha256:ab"), "sha256:ab");
        assert_eq!(
            quote("prompts/onboarding@v1.0.1"),
            "prompts/onboarding@v1.0.1"
        );
        assert_eq!(quote("Eval suite: smoke"), "'Eval suite: smoke'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("yes"), "'yes'");
        assert_eq!(quote("it's"), "it's");
        assert_eq!(quote("'q"), "'''q'");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        assert_eq!(quote("modèle"), "\"mod\\xE8le\"");
        assert_eq!(quote("1:20"), "'1:20'");
        assert_eq!(quote("12"), "'12'");
        assert_eq!(quote("~"), "'~'");
        // YAML 1.2 readers take these as numbers even where PyYAML would not.
        assert_eq!(quote("08"), "'08'");
        assert_eq!(quote("1e3"), "'1e3'");
        assert_eq!(quote("0o17"), "'0o17'");
    }

    #[test]
    fn emits_pyyaml_block_style() {
        let doc = Node::Map(vec![
            (
                "records".into(),
                Node::Seq(vec![Node::Map(vec![
                    ("a".into(), Node::str("x")),
                    ("b".into(), Node::Seq(vec![Node::str("y")])),
                    ("c".into(), Node::Map(vec![])),
                ])]),
            ),
            (
                "m".into(),
                Node::Map(vec![
                    ("t".into(), Node::Float(0.7)),
                    ("e".into(), Node::Float(1e-5)),
                ]),
            ),
            ("z".into(), Node::Seq(vec![])),
        ]);
        assert_eq!(
            doc.to_yaml(),
            "records:\n- a: x\n  b:\n  - y\n  c: {}\nm:\n  t: 0.7\n  e: 1.0e-05\nz: []\n"
        );
    }

    #[test]
    fn bare_float_version_is_refused_quoted_is_kept() {
        let e = from_str::<S>("v: 1.10").err().unwrap().to_string();
        assert!(e.contains("bare number") && e.contains("1.1"), "{e}");
        assert!(!e.contains('\n'));
        assert_eq!(from_str::<S>("v: '1.10'").unwrap().v.0, "1.10");
    }

    #[test]
    fn hostile_documents_are_refused() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        for (i, c) in "bcdefghij".chars().enumerate() {
            let prev = (b'a' + i as u8) as char;
            bomb.push_str(&format!("{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        }
        assert!(from_str::<serde_json::Value>(&bomb).is_err());
        let deep = format!("{}x{}", "[".repeat(100), "]".repeat(100));
        assert!(from_str::<serde_json::Value>(&deep).is_err());
        assert!(matches!(
            from_bytes::<serde_json::Value>(&[b'a', b':', 0xff]),
            Err(FormatError::NotUtf8 { .. })
        ));
    }
}
