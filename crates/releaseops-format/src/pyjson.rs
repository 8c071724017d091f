//! Python's `json.dumps(v, sort_keys=True, separators=(",", ":"))` with its default
//! `ensure_ascii=True`, and Python's `repr(float)`, reproduced exactly: the model
//! config hash of the existing tool is defined by them.

use serde_json::{Number, Value};

/// Python `repr()` of a finite float: the shortest digits that round-trip, in
/// fixed notation when the decimal exponent is in `-4..16`, otherwise as
/// `1e-05` / `1.5e+16`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "1.2345e-5".
    let s = format!("{:e}", f);
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    }
    out
}

/// How Python prints a JSON number that came from YAML: ints stay ints (`1`),
/// floats use `repr` (`1.0`, `1e-05`).
pub fn number_repr(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_repr(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04x}", unit));
                }
            }
        }
    }
    out.push('"');
}

fn push_value(out: &mut String, v: &Value, sep: (&str, &str)) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_repr(n)),
        Value::String(s) => push_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep.0);
                }
                push_value(out, item, sep);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Python sorts str keys by code point; UTF-8 byte order is the same.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep.0);
                }
                push_string(out, k);
                out.push_str(sep.1);
                push_value(out, &map[k.as_str()], sep);
            }
            out.push('}');
        }
    }
}

/// `json.dumps(v, sort_keys=True, separators=(",", ":"))`.
pub fn dumps_canonical(v: &Value) -> String {
    let mut out = String::new();
    push_value(&mut out, v, (",", ":"));
    out
}

/// `json.dumps(v, sort_keys=True)`: Python's default separators `", "` and
/// `": "` (the existing tool's `releaseops.model_config` attribute).
pub fn dumps_sorted(v: &Value) -> String {
    let mut out = String::new();
    push_value(&mut out, v, (", ", ": "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (0.7, "0.7"),
            (1.0, "1.0"),
            (0.2, "0.2"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-2.5, "-2.5"),
            (1.5e-7, "1.5e-07"),
            (0.0, "0.0"),
            (100.0, "100.0"),
            (1e100, "1e+100"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn default_separators() {
        let v = serde_json::json!({"provider": "anthropic", "model": "m", "temperature": 0.2, "max_tokens": 4096, "p": [1, 2]});
        assert_eq!(
            dumps_sorted(&v),
            r#"{"max_tokens": 4096, "model": "m", "p": [1, 2], "provider": "anthropic", "temperature": 0.2}"#
        );
    }

    #[test]
    fn ensure_ascii_escapes() {
        let v: Value =
            serde_json::json!({"model": "modèle-ü", "stop": ["\n", "Ω", "😀"], "q": "\"\\\u{7f}"});
        assert_eq!(
            dumps_canonical(&v),
            r#"{"model":"mod\u00e8le-\u00fc","q":"\"\\\u007f","stop":["\n","\u03a9","\ud83d\ude00"]}"#
        );
    }
}
