//! Rendering: JSON when asked, otherwise text with colour that `anstream`
//! strips when stdout is not a terminal or NO_COLOR is set. Tables fit the
//! terminal width.

use anstyle::{AnsiColor, Style};
use comfy_table::{ContentArrangement, Table, presets};
use releaseops_format::history::{GateResult, GateStatus};
use serde::Serialize;

use crate::app::Failure;

pub const BOLD: Style = Style::new().bold();
pub const GREEN: Style = AnsiColor::Green.on_default();
pub const RED: Style = AnsiColor::Red.on_default();
pub const YELLOW: Style = AnsiColor::Yellow.on_default();
pub const DIM: Style = Style::new().dimmed();

pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

pub fn print_json<T: Serialize + ?Sized>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => anstream::println!("{s}"),
        Err(e) => anstream::eprintln!("error: cannot render JSON: {e}"),
    }
}

pub fn print_failure(f: &Failure, json: bool) {
    if json {
        print_json(&serde_json::json!({
            "error": { "kind": f.kind, "message": f.message, "hint": f.hint, "exit_code": f.code }
        }));
        return;
    }
    anstream::eprintln!("{}: {}", paint(RED.bold(), "error"), f.message);
    if let Some(h) = &f.hint {
        anstream::eprintln!("\n{}: {h}", paint(YELLOW.bold(), "hint"));
    }
}

pub fn warn(msg: &str) {
    anstream::eprintln!("{}: {msg}", paint(YELLOW.bold(), "warning"));
}

/// A table that wraps to the terminal width (plain when not a terminal).
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(headers.iter().map(|h| h.to_uppercase()));
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
        .lines()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn status_word(s: GateStatus) -> String {
    match s {
        GateStatus::Passed => paint(GREEN, "PASSED"),
        GateStatus::Failed => paint(RED, "FAILED"),
        GateStatus::Pending => paint(YELLOW, "PENDING"),
    }
}

pub fn gate_lines(gates: &[GateResult]) -> String {
    gates
        .iter()
        .map(|g| format!("  {:<9} {:<8} {}", g.gate, status_word(g.status), g.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn git_note(commit: &Option<String>, error: &Option<String>) {
    if let Some(e) = error {
        warn(&format!(
            "the change is saved, but the git commit failed ({e}); it will be included in the next commit"
        ));
    } else if let Some(c) = commit {
        anstream::println!(
            "  {}",
            paint(DIM, &format!("git commit {}", &c[..c.len().min(12)]))
        );
    }
}

pub fn print_json_hint() {
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
pub fn json<T: Serialize + ?Sized>(app: &crate::app::App, value: &T) -> bool {
    if app.global.json {
        print_json(value);
    }
    app.global.json
}
