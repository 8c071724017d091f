//! Version ordering. "Latest" means the highest semantic version, never the
//! lexicographically last string (the Python tool's bug 13: 1.9.0 > 1.10.0).

use std::cmp::Ordering;

fn parse(v: &str) -> Option<semver::Version> {
    let s = v.strip_prefix('v').unwrap_or(v);
    semver::Version::parse(s).ok().or_else(|| {
        // Accept the short forms teams use: `1` and `1.2`.
        let parts: Vec<&str> = s.split('.').collect();
        if parts.is_empty()
            || parts.len() > 2
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let mut nums = parts.iter().map(|p| p.parse::<u64>().ok());
        let major = nums.next()??;
        let minor = nums.next().unwrap_or(Some(0))?;
        Some(semver::Version::new(major, minor, 0))
    })
}

/// Total order over version strings: semantic versions by precedence (then by
/// text, so `1.0` and `1.0.0` are still distinct), and any non-semver string
/// after every semver one, in natural (digit-aware) order.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x
            .cmp_precedence(&y)
            .then_with(|| x.build.cmp(&y.build))
            .then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => natural(a, b),
    }
}

fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..nx], &y[..ny]);
                let tx = trim_zeros(dx);
                let ty = trim_zeros(dy);
                let ord = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n.min(d.len().saturating_sub(1))..]
}

/// Sorts versions ascending by [`compare`].
pub fn sort(versions: &mut [String]) {
    versions.sort_by(|a, b| compare(a, b));
}

/// The highest version, if any.
pub fn latest<'a>(versions: impl IntoIterator<Item = &'a String>) -> Option<&'a String> {
    versions.into_iter().max_by(|a, b| compare(a, b))
}

/// True when the string is a semantic version (optionally with a leading `v`).
pub fn is_semver(v: &str) -> bool {
    semver::Version::parse(v.strip_prefix('v').unwrap_or(v)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_is_semver_not_lexicographic() {
        let v: Vec<String> = ["1.9.0", "1.10.0", "1.2.0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(latest(&v).unwrap(), "1.10.0");
    }

    #[test]
    fn prerelease_sorts_before_release() {
        assert_eq!(compare("1.0.0-rc.1", "1.0.0"), Ordering::Less);
        assert_eq!(compare("1.0.0-rc.2", "1.0.0-rc.10"), Ordering::Less);
        assert_eq!(compare("2.0.0", "x-branch"), Ordering::Less);
        assert_eq!(compare("build-9", "build-10"), Ordering::Less);
    }
}
