//! A unified diff's lines, each with what it is, for highlighting.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    /// `--- a` / `+++ b`.
    Header,
    /// `@@ -1,3 +1,3 @@`.
    Hunk,
    Added,
    Removed,
    Context,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    pub kind: LineKind,
    pub text: String,
}

/// The lines of a unified diff (`similar`'s, git's), classified.
pub fn lines(diff: &str) -> Vec<DiffLine> {
    let mut in_hunk = false;
    diff.lines()
        .map(|l| {
            let kind = if l.starts_with("@@") {
                in_hunk = true;
                LineKind::Hunk
            } else if !in_hunk && (l.starts_with("---") || l.starts_with("+++")) {
                LineKind::Header
            } else if l.starts_with('+') {
                LineKind::Added
            } else if l.starts_with('-') {
                LineKind::Removed
            } else {
                LineKind::Context
            };
            DiffLine {
                kind,
                text: l.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified_and_a_removed_line_of_dashes_is_not_a_header() {
        let d = "--- a\n+++ b\n@@ -1,2 +1,2 @@\n keep\n-up to 100\n+up to 150\n--- rule\n";
        let kinds: Vec<LineKind> = lines(d).iter().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            [
                LineKind::Header,
                LineKind::Header,
                LineKind::Hunk,
                LineKind::Context,
                LineKind::Removed,
                LineKind::Added,
                LineKind::Removed
            ]
        );
    }
}
