//! Line charts as SVG, drawn on the server: a value per time bucket for each
//! series (a version), the axes, and a legend. Every text is escaped; the
//! colours are presentation attributes, which the page's CSP allows.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chart {
    pub title: String,
    /// What the values are in (`%`, `ms`).
    pub unit: String,
    /// One label per bucket (its start, as the viewer should read it).
    pub x_labels: Vec<String>,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    /// One value per bucket; `None` where the series has no data.
    pub values: Vec<Option<f64>>,
}

const PALETTE: [&str; 6] = [
    "#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989",
];
const W: f64 = 800.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 54.0;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn nice_max(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The chart as an `<svg>` element.
pub fn line_chart(c: &Chart) -> String {
    let n = c.x_labels.len().max(1);
    let max = nice_max(
        c.series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |i: usize| {
        LEFT + if n == 1 {
            pw / 2.0
        } else {
            pw * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + ph - ph * (v / max).clamp(0.0, 1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(&c.title),
        esc(&c.title)
    );
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="16" font-weight="600">{} ({})</text>"#,
        esc(&c.title),
        esc(&c.unit)
    );
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="currentColor" stroke-opacity="0.15"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            num(v)
        );
    }
    let step = n.div_ceil(8).max(1);
    for (i, l) in c.x_labels.iter().enumerate().step_by(step) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(i),
            TOP + ph + 16.0,
            esc(l)
        );
    }
    for (k, series) in c.series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        // A gap in the data breaks the line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, v) in series.values.iter().enumerate().take(n) {
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    if let Some(r) = runs.last_mut() {
                        r.push((x(i), y(v)));
                    }
                }
                None => runs.push(Vec::new()),
            }
        }
        for r in runs.iter().filter(|r| !r.is_empty()) {
            let pts: Vec<String> = r.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                pts.join(" ")
            );
            for (a, b) in r {
                let _ = write!(
                    s,
                    r#"<circle cx="{a:.1}" cy="{b:.1}" r="2.5" fill="{color}"/>"#
                );
            }
        }
        let lx = LEFT + 150.0 * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{}" width="12" height="4" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            H - 14.0,
            lx + 16.0,
            H - 9.0,
            esc(&series.name)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_gaps_break_the_line() {
        let svg = line_chart(&Chart {
            title: "error rate <script>".into(),
            unit: "%".into(),
            x_labels: vec!["a".into(), "b".into(), "c".into()],
            series: vec![Series {
                name: "1.1.0\"><script>".into(),
                values: vec![Some(1.0), None, Some(3.0)],
            }],
        });
        assert!(!svg.contains("<script>"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn the_axis_ends_at_a_round_number() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(180.0), 200.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
    }
}
