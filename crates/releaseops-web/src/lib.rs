//! The dashboard of `releaseops serve`: pages rendered on the server from
//! the documents the API serves, one stylesheet, one small script, and SVG
//! charts, all compiled into the binary. The server gathers the data, checks
//! who may see and do what, and sends the bytes; this crate only renders.
//!
//! Every page is sent under [`CSP`]: nothing loads from anywhere but the
//! server, no inline script or style runs, no other site may frame a page,
//! and forms post back to the server alone.

// A library never prints: what it has to say goes back to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod chart;
mod diff;

use minijinja::{Environment, Value};
use sha2::{Digest, Sha256};

pub use chart::{Chart, Series, line_chart};
pub use diff::{DiffLine, LineKind, lines as diff_lines};

/// The Content-Security-Policy every page is served with.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Board,
    /// The board without the page around it (what the live refresh fetches).
    BoardFragment,
    Bundles,
    Bundle,
    Diff,
    History,
    Evals,
    Eval,
    EvalCompare,
    Decisions,
    Decision,
    Production,
    Compare,
    Attribution,
    SignIn,
    Confirm,
    Message,
}

impl Page {
    pub const ALL: [Page; 17] = [
        Page::Board,
        Page::BoardFragment,
        Page::Bundles,
        Page::Bundle,
        Page::Diff,
        Page::History,
        Page::Evals,
        Page::Eval,
        Page::EvalCompare,
        Page::Decisions,
        Page::Decision,
        Page::Production,
        Page::Compare,
        Page::Attribution,
        Page::SignIn,
        Page::Confirm,
        Page::Message,
    ];

    fn template(self) -> &'static str {
        match self {
            Page::Board => "board.html",
            Page::BoardFragment => "board_fragment.html",
            Page::Bundles => "bundles.html",
            Page::Bundle => "bundle.html",
            Page::Diff => "diff.html",
            Page::History => "history.html",
            Page::Evals => "evals.html",
            Page::Eval => "eval.html",
            Page::EvalCompare => "eval_compare.html",
            Page::Decisions => "decisions.html",
            Page::Decision => "decision.html",
            Page::Production => "production.html",
            Page::Compare => "compare.html",
            Page::Attribution => "attribution.html",
            Page::SignIn => "signin.html",
            Page::Confirm => "confirm.html",
            Page::Message => "message.html",
        }
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("board.html", include_str!("../templates/board.html")),
    (
        "board_fragment.html",
        include_str!("../templates/board_fragment.html"),
    ),
    ("bundles.html", include_str!("../templates/bundles.html")),
    ("bundle.html", include_str!("../templates/bundle.html")),
    ("diff.html", include_str!("../templates/diff.html")),
    ("history.html", include_str!("../templates/history.html")),
    ("evals.html", include_str!("../templates/evals.html")),
    ("eval.html", include_str!("../templates/eval.html")),
    (
        "eval_compare.html",
        include_str!("../templates/eval_compare.html"),
    ),
    (
        "decisions.html",
        include_str!("../templates/decisions.html"),
    ),
    ("decision.html", include_str!("../templates/decision.html")),
    (
        "production.html",
        include_str!("../templates/production.html"),
    ),
    ("compare.html", include_str!("../templates/compare.html")),
    (
        "attribution.html",
        include_str!("../templates/attribution.html"),
    ),
    ("signin.html", include_str!("../templates/signin.html")),
    ("confirm.html", include_str!("../templates/confirm.html")),
    ("message.html", include_str!("../templates/message.html")),
];

/// A file the pages load, served at [`Asset::path`] (its content hash is in
/// the name, so it can be cached for good).
#[derive(Debug, Clone)]
pub struct Asset {
    pub path: String,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

fn asset(name: &str, ext: &str, content_type: &'static str, body: &'static str) -> Asset {
    let digest = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
    Asset {
        path: format!("/assets/{name}.{digest}.{ext}"),
        content_type,
        body: body.as_bytes(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the page {page} could not be rendered: {message}")]
pub struct RenderError {
    pub page: &'static str,
    pub message: String,
}

/// The templates, compiled once, and the assets.
pub struct Pages {
    env: Environment<'static>,
    assets: Vec<Asset>,
}

impl Pages {
    pub fn new() -> Pages {
        let css = asset(
            "app",
            "css",
            "text/css; charset=utf-8",
            include_str!("../assets/app.css"),
        );
        let js = asset(
            "app",
            "js",
            "text/javascript; charset=utf-8",
            include_str!("../assets/app.js"),
        );
        let mut env = Environment::new();
        // A page's size is bounded by its data; a template loop is not.
        env.set_fuel(Some(50_000_000));
        for (name, src) in TEMPLATES {
            // The templates are part of this crate; a test renders each one,
            // so one that does not compile is caught before it ships.
            if let Err(e) = env.add_template(name, src) {
                debug_assert!(false, "{name}: {e}");
            }
        }
        // Our own paths (letters, digits, dots, slashes): nothing to escape.
        env.add_global("css_url", Value::from_safe_string(css.path.clone()));
        env.add_global("js_url", Value::from_safe_string(js.path.clone()));
        env.add_global("version", env!("CARGO_PKG_VERSION"));
        env.add_filter("difflines", |text: String| {
            Value::from(minijinja::value::Serde(diff::lines(&text)))
        });
        env.add_function("chart", |c: Value| -> Result<Value, minijinja::Error> {
            let chart: Chart = serde_json::to_value(&c)
                .and_then(serde_json::from_value)
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                })?;
            Ok(Value::from_safe_string(line_chart(&chart)))
        });
        Pages {
            env,
            assets: vec![css, js],
        }
    }

    /// The page rendered with `ctx` (a JSON object).
    pub fn render(&self, page: Page, ctx: &serde_json::Value) -> Result<String, RenderError> {
        let name = page.template();
        let err = |e: minijinja::Error| RenderError {
            page: name,
            message: chain(&e),
        };
        let t = self.env.get_template(name).map_err(err)?;
        t.render(Value::from(minijinja::value::Serde(ctx)))
            .map_err(err)
    }

    /// Every page's template compiles (a test holds this).
    pub fn check(&self) -> Result<(), RenderError> {
        for page in Page::ALL {
            let name = page.template();
            self.env.get_template(name).map_err(|e| RenderError {
                page: name,
                message: chain(&e),
            })?;
        }
        Ok(())
    }

    /// The asset served at `path`.
    pub fn asset(&self, path: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.path == path)
    }

    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }
}

/// An error and its causes on one line (not the template's source or its
/// variables: those could show a viewer more than the page would).
fn chain(e: &minijinja::Error) -> String {
    let mut out = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new()
    }
}
