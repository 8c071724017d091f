//! Every template compiles and renders; what a page shows is tested through
//! the server's router, with real data.

use releaseops_web::{CSP, Page, Pages};
use serde_json::json;

#[test]
fn every_page_compiles_and_loads_only_its_own_assets() {
    let pages = Pages::new();
    pages.check().unwrap_or_else(|e| panic!("{e}"));
    for page in [Page::SignIn, Page::Message] {
        let html = pages
            .render(page, &json!({"title": "t"}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(html.starts_with("<!doctype html>"), "{page:?}");
        for a in pages.assets() {
            assert!(html.contains(&a.path), "{page:?} does not load {}", a.path);
        }
        // No inline script or style: the CSP would block them.
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "{page:?}"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{page:?}"
        );
    }
    assert!(CSP.contains("default-src 'none'"));
}

#[test]
fn what_a_page_shows_is_escaped() {
    let pages = Pages::new();
    let html = pages
        .render(
            Page::Message,
            &json!({"title": "x", "heading": "<script>alert(1)</script>", "text": "\"><img src=x>", "kind": "ok"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x>"), "{html}");
}
