//! Rendering: JSON when asked, otherwise text with colour that `anstream`
//! strips when stdout is not a terminal or NO_COLOR is set. Tables fit the
//! terminal width.

use anstyle::{AnsiColor, Style};
use releaseops_format::history::{GateResult, GateStatus};
use serde::Serialize;

use crate::app::Failure;

pub(crate) const BOLD: Style = Style::new().bold();
pub(crate) const GREEN: Style = AnsiColor::Green.on_default();
pub(crate) const RED: Style = AnsiColor::Red.on_default();
pub(crate) const YELLOW: Style = AnsiColor::Yellow.on_default();
pub(crate) const DIM: Style = Style::new().dimmed();

pub(crate) fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

pub(crate) fn print_json<T: Serialize + ?Sized>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => anstream::println!("{s}"),
        Err(e) => anstream::eprintln!("error: cannot render JSON: {e}"),
    }
}

pub(crate) fn print_failure(f: &Failure, json: bool) {
    if json {
        print_json(&serde_json::json!({
            "error": { "kind": f.kind, "message": f.message, "hint": f.hint, "exit_code": f.code() }
        }));
        return;
    }
    anstream::eprintln!("{}: {}", paint(RED.bold(), "error"), f.message);
    if let Some(h) = &f.hint {
        anstream::eprintln!("\n{}: {h}", paint(YELLOW.bold(), "hint"));
    }
}

pub(crate) fn note(msg: &str) {
    anstream::eprintln!("{}: {msg}", paint(DIM.bold(), "note"));
}

pub(crate) fn warn(msg: &str) {
    anstream::eprintln!("{}: {msg}", paint(YELLOW.bold(), "warning"));
}

/// A table that fits the terminal: columns as wide as their content, and
/// when that is too wide for the terminal, the widest columns shortened and
/// their cells cut with an ellipsis (never broken mid-word over lines).
/// The width is the terminal's, else `$COLUMNS`; unknown (a pipe), nothing
/// is cut.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    table_at(headers, rows, width())
}

fn width() -> Option<usize> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal()
        && let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size()
    {
        return Some(usize::from(w));
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w > 0)
}

/// Display width of `text`, colour codes aside.
fn display_width(text: &str) -> usize {
    anstream::adapter::strip_str(text)
        .to_string()
        .chars()
        .count()
}

pub(crate) fn table_at(headers: &[&str], rows: Vec<Vec<String>>, width: Option<usize>) -> String {
    const GAP: usize = 2;
    let cols = headers.len();
    let mut grid: Vec<Vec<String>> = vec![headers.iter().map(|h| h.to_uppercase()).collect()];
    for mut r in rows {
        r.resize(cols, String::new());
        // One line per row: a newline inside a cell would break the layout.
        grid.push(
            r.into_iter()
                .map(|c| c.replace(['\n', '\r'], " "))
                .collect(),
        );
    }
    let mut widths: Vec<usize> = (0..cols)
        .map(|i| grid.iter().map(|r| display_width(&r[i])).max().unwrap_or(0))
        .collect();
    if let Some(w) = width {
        let room = w.saturating_sub(GAP * cols.saturating_sub(1));
        // Shorten the widest column, one character at a time, down to a
        // few characters each.
        while widths.iter().sum::<usize>() > room {
            let Some((i, _)) = widths
                .iter()
                .enumerate()
                .filter(|(i, w)| **w > display_width(&grid[0][*i]).clamp(3, 8))
                .max_by_key(|(_, w)| **w)
            else {
                break;
            };
            widths[i] -= 1;
        }
    }
    grid.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let shown = display_width(cell);
                let text = if shown > widths[i] {
                    let plain = anstream::adapter::strip_str(cell).to_string();
                    let mut cut: String = plain.chars().take(widths[i].saturating_sub(1)).collect();
                    cut.push('…');
                    cut
                } else {
                    cell.clone()
                };
                line.push_str(&text);
                if i + 1 < cols {
                    let pad = widths[i].saturating_sub(display_width(&text)) + GAP;
                    line.push_str(&" ".repeat(pad));
                }
            }
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A recorded time as people read it: to the second, in UTC.
pub(crate) fn when(at: &str) -> String {
    releaseops_format::time::parse(at)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| at.to_string())
}

pub(crate) fn status_word(s: GateStatus) -> String {
    match s {
        GateStatus::Passed => paint(GREEN, "PASSED"),
        GateStatus::Failed => paint(RED, "FAILED"),
        GateStatus::Pending => paint(YELLOW, "PENDING"),
    }
}

pub(crate) fn gate_lines(gates: &[GateResult]) -> String {
    gates
        .iter()
        .map(|g| format!("  {:<9} {:<8} {}", g.gate, status_word(g.status), g.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn git_note(git: &releaseops_store::GitOutcome) {
    git_note_to(git, false);
}

/// The store of this run when it is outside any git repository (so its
/// changes cannot be committed), set by `App::store`.
static OUTSIDE_GIT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

pub(crate) fn remember_outside_git(store_dir: &std::path::Path) {
    let _ = OUTSIDE_GIT.set(store_dir.to_path_buf());
}

/// Says, once per store, that its changes are not being committed because
/// it is not in a git repository.
fn note_outside_git() {
    let Some(dir) = OUTSIDE_GIT.get() else { return };
    let marker = dir.join(".cache").join("told-outside-git");
    if marker.exists() {
        return;
    }
    warn(&format!(
        "{} is not in a git repository: changes are saved there but not committed (said once; `git init` in the project to have every change committed)",
        dir.display()
    ));
    let _ = std::fs::create_dir_all(dir.join(".cache"));
    let _ = std::fs::write(marker, b"");
}

/// The git note, on stderr when stdout carries a document.
pub(crate) fn git_note_to(git: &releaseops_store::GitOutcome, stderr: bool) {
    let (commit, error) = (&git.git_commit, &git.git_error);
    if commit.is_none() && error.is_none() {
        note_outside_git();
    }
    if let Some(e) = error {
        warn(&format!(
            "the change is saved, but the git commit failed ({e}); it will be included in the next commit"
        ));
    } else if let Some(c) = commit {
        let line = format!("git commit {}", &c[..c.len().min(12)]);
        if stderr {
            anstream::eprintln!("{line}");
        } else {
            anstream::println!("  {}", paint(DIM, &line));
        }
    }
}

pub(crate) fn print_json_hint() {
    anstream::println!(
        "\n{}",
        paint(
            DIM,
            "Every command also speaks JSON (--json). Try `releaseops --help`."
        )
    );
}

/// In `--json` mode, prints `value` as the command's JSON result and returns
/// true (the caller is done); otherwise returns false for the text rendering.
pub(crate) fn json<T: Serialize + ?Sized>(app: &crate::app::App, value: &T) -> bool {
    if app.global.json {
        print_json(value);
    }
    app.global.json
}

/// Writes a report to a path the user named: never through a link (one
/// planted in the repository would point the write at any file), and whole
/// or not at all (a temporary file beside it, renamed over it).
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> Result<(), Failure> {
    let fail = |e: String| Failure {
        kind: releaseops_core::ErrorKind::Io,
        message: format!("cannot write {}: {e}", path.display()),
        hint: Some("choose a writable path that is not a link".into()),
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return Err(fail("it is a link".into())),
        Ok(m) if !m.is_file() => return Err(fail("it is not a regular file".into())),
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = releaseops_store::objects::write_synced(&tmp, text.as_bytes())
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec![
                "support-agent".into(),
                "1.10.0".into(),
                "a description that is long enough to need cutting somewhere".into(),
            ],
            vec!["b".into(), paint(RED, "FAIL"), "short".into()],
        ]
    }

    #[test]
    fn tables_fit_the_width_and_cut_with_an_ellipsis_never_mid_line() {
        for w in [80, 40] {
            let t = table_at(&["bundle", "version", "note"], rows(), Some(w));
            for line in t.lines() {
                assert!(display_width(line) <= w, "{w}: {line:?}");
            }
            assert_eq!(t.lines().count(), 3, "one line per row at {w}: {t}");
            assert!(t.contains('…'), "{t}");
            assert!(t.contains("support-agent"), "{w}: {t}");
        }
        // Unknown width: nothing is cut.
        let t = table_at(&["bundle", "version", "note"], rows(), None);
        assert!(t.contains("need cutting somewhere"), "{t}");
        assert!(!t.contains('…'), "{t}");
    }

    #[test]
    fn times_are_shown_to_the_second() {
        assert_eq!(
            when("2026-11-21T14:05:09.123456+00:00"),
            "2026-11-21 14:05:09"
        );
        assert_eq!(when("not a time"), "not a time");
    }
}
