//! The dashboard in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`) against `releaseops serve` on loopback, on the demo's
//! project. Screenshots of each view are saved under the target directory
//! (`target/tmp/dashboard/`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::Repo;
use crate::common::server::{Server, client};

const APPROVER: &str = "tok-approver-5b0f3c2a9e8d7c6b5a4f3e2d";
const DEPLOYER: &str = "tok-deployer-0a1b2c3d4e5f60718293a4b5";
const VIEWER: &str = "tok-viewer-99aa88bb77cc66dd55ee44ff";

fn tokens() -> String {
    format!(
        "approver:Pat Approver <pat@acme.test>:{APPROVER},deployer:Dee Deployer <dee@acme.test>:{DEPLOYER},viewer:Vic Viewer:{VIEWER}"
    )
}

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

fn driver() -> Option<Driver> {
    let (Some(drv), Some(_)) = (
        which("chromedriver"),
        which("chromium").or_else(|| which("chromium-browser")),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver (see .ci/run)"
        );
        eprintln!("skipped: install chromium and chromium-driver to run the browser tests");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new(drv)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Driver { child, url })
}

async fn browser(d: &Driver, width: u32, height: u32) -> Client {
    let binary = which("chromium")
        .or_else(|| which("chromium-browser"))
        .expect("chromium");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": binary,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     format!("--window-size={width},{height}")],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&d.url),
    )
    .await
    .expect("the browser starts within a minute")
    .expect("a WebDriver session")
}

fn shots_dir() -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&d).expect("screenshot dir");
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).expect("save screenshot");
}

/// Waits (at most 30 s) until `script` returns true in the page.
async fn until(c: &Client, what: &str, script: &str) {
    let started = Instant::now();
    loop {
        let v = c.execute(script, vec![]).await.expect("script runs");
        if v == json!(true) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}; the page says:\n{}",
            c.find(Locator::Css("main"))
                .await
                .expect("main")
                .text()
                .await
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/"))
        .await
        .expect("open the dashboard");
    // Tokens are configured and reads are not public: sign in first.
    let field = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("token"))
        .await
        .expect("the sign-in form");
    field.send_keys(token).await.expect("type the token");
    c.find(Locator::Css("form.stack button[type=submit]"))
        .await
        .expect("the sign-in button")
        .click()
        .await
        .expect("sign in");
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("board"))
        .await
        .expect("the board after signing in");
}

/// A form body, as a browser sends it.
fn encode(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("a form")
}

/// A request with a form body.
trait FormBody {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(encode(pairs))
    }
}

fn text_of(js_selector: &str) -> String {
    format!("return (document.querySelector({js_selector}) || {{}}).textContent || ''")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_and_drives_releases_in_a_real_browser() {
    let Some(d) = driver() else { return };
    let r = Repo::demo();
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    let base = s.url.trim_end_matches('/').to_string();
    let c = browser(&d, 1280, 900).await;

    // The board shows the demo's versions, stage by stage.
    sign_in(&c, &base, APPROVER).await;
    let board = c
        .find(Locator::Id("board"))
        .await
        .expect("board")
        .text()
        .await
        .expect("text");
    for want in [
        "dev",
        "staging",
        "canary",
        "prod",
        "support-agent",
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "NO_GO",
    ] {
        assert!(board.contains(want), "the board lacks {want}:\n{board}");
    }
    assert!(
        c.source().await.expect("source").contains("Signed in as"),
        "the header names who is signed in"
    );
    // Times are shown in the viewer's zone, the UTC instant on hover.
    until(&c, "local times", "const t = document.querySelector('time[datetime]'); return !!t && (t.title || '').endsWith('(UTC)');").await;
    shot(&c, "board").await;

    // A promotion made with the CLI appears without a reload.
    c.execute("window.__not_reloaded = true; return true;", vec![])
        .await
        .expect("mark the page");
    let dev_has = |v: &str| {
        format!(
            "const s = document.getElementById('env-dev'); return !!s && s.parentElement.querySelector('.live').textContent.includes('{v}') && window.__not_reloaded === true;"
        )
    };
    until(&c, "dev shows 1.2.0 at first", &dev_has("1.2.0")).await;
    r.run_as(
        "Carla CLI <carla@acme.test>",
        &[
            "promote",
            "support-agent",
            "1.1.0",
            "dev",
            "--reason",
            "back to 1.1.0 in dev",
        ],
    )
    .ok();
    until(&c, "the CLI's promotion on the board", &dev_has("1.1.0")).await;
    shot(&c, "board-after-cli-promotion").await;

    // An approval made in the UI is recorded with the token's owner as actor.
    c.goto(&format!(
        "{base}/ui/approve?bundle=support-agent&version=1.1.0&env=canary"
    ))
    .await
    .expect("open the approval form");
    let comment = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("reason"))
        .await
        .expect("the comment field");
    comment
        .send_keys("looked at the refunds suite myself")
        .await
        .expect("type");
    shot(&c, "approve-confirm").await;
    c.find(Locator::Css("form.stack button[type=submit]"))
        .await
        .expect("approve button")
        .click()
        .await
        .expect("approve");
    until(
        &c,
        "the approval's confirmation",
        &format!(
            "return ({}).includes('approved for canary by Pat Approver');",
            text_of("'main'").trim_start_matches("return ")
        ),
    )
    .await;
    let history = r.run(&["history", "--json", "--limit", "5"]);
    let records = history.json();
    let approved = records
        .as_array()
        .expect("records")
        .iter()
        .find(|x| x.get("event").and_then(|e| e.as_str()) == Some("approve"))
        .cloned();
    let approved = approved.unwrap_or_else(|| panic!("no approval recorded: {}", history.ok()));
    assert_eq!(
        approved.get("actor").and_then(|a| a.as_str()),
        Some("Pat Approver <pat@acme.test>"),
        "{}",
        history.ok()
    );

    // The diff view highlights the changed line.
    c.goto(&format!(
        "{base}/diff?bundle=support-agent&from=1.0.0&to=1.1.0"
    ))
    .await
    .expect("open the diff");
    until(
        &c,
        "the highlighted change",
        "const a = [...document.querySelectorAll('pre.diff .added')].find(e => e.textContent.includes('up to 150')); const r = [...document.querySelectorAll('pre.diff .removed')].find(e => e.textContent.includes('up to 100')); if (!a || !r) return false; const bg = e => getComputedStyle(e).backgroundColor; return bg(a) !== 'rgba(0, 0, 0, 0)' && bg(r) !== 'rgba(0, 0, 0, 0)' && bg(a) !== bg(r);",
    )
    .await;
    shot(&c, "diff").await;

    // The other views render in the browser, under the CSP, with nothing
    // blocked (a CSP violation would leave no script running: times stay UTC).
    for (path, name, want) in [
        ("/bundles/support-agent/1.1.0", "bundle", "verified"),
        ("/history", "history", "chain verified"),
        (
            "/history?env=prod&at=2026-12-02T12:00:00Z",
            "history-at",
            "What ran where at",
        ),
        ("/evals", "evals", "refunds"),
        ("/decisions", "decisions", "dec-000001"),
        ("/production", "production", "Error rate"),
    ] {
        c.goto(&format!("{base}{path}")).await.expect("open a view");
        until(
            &c,
            name,
            &format!(
                "return document.body.textContent.includes({});",
                json!(want)
            ),
        )
        .await;
        shot(&c, name).await;
    }
    // An eval report, failed cases only, and two runs side by side.
    c.goto(&format!("{base}/evals")).await.expect("evals");
    let first_run = c
        .find(Locator::Css("table tbody th a"))
        .await
        .expect("a run")
        .attr("href")
        .await
        .expect("href")
        .expect("a link");
    c.goto(&format!("{base}{first_run}?failed=1"))
        .await
        .expect("a run");
    until(&c, "failed cases", "return document.querySelectorAll('tr.passed').length === 0 && document.body.textContent.includes('Show every case');").await;
    shot(&c, "eval-failed-only").await;
    // The incident, attributed to the lines that drove it, highlighted in place.
    c.goto(&format!("{base}/production"))
        .await
        .expect("production");
    shot(&c, "production-charts").await;
    let incident = c
        .find(Locator::Css("a[href^='/attribution/']"))
        .await
        .expect("an incident listed");
    incident.click().await.expect("open the incident");
    until(
        &c,
        "the attribution with its lines highlighted",
        "const b = document.querySelector('pre.code .hit.breaks mark'); const f = document.querySelector('pre.code .hit.follows mark'); return !!b && !!f && b.textContent.includes('Never issue refunds above 100') && f.textContent.includes('up to 150') && document.body.textContent.includes('Contradicts artifacts');",
    )
    .await;
    shot(&c, "attribution").await;

    // The keyboard reaches the skip link first, and it moves to the content.
    c.goto(&format!("{base}/")).await.expect("board");
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("board"))
        .await
        .expect("board");
    c.find(Locator::Css("body"))
        .await
        .expect("body")
        .send_keys("\u{E004}")
        .await
        .expect("Tab");
    until(
        &c,
        "the skip link focused",
        "return !!document.activeElement && document.activeElement.classList.contains('skip');",
    )
    .await;
    c.active_element()
        .await
        .expect("focused")
        .send_keys("\u{E007}")
        .await
        .expect("Enter");
    until(
        &c,
        "the content reached",
        "return location.hash === '#main';",
    )
    .await;

    // A phone's width: still one readable column.
    let phone = browser(&d, 390, 844).await;
    sign_in(&phone, &base, VIEWER).await;
    let wide = phone
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .expect("measure");
    shot(&phone, "board-phone").await;
    assert_eq!(wide, json!(true), "the board scrolls sideways on a phone");
    // A viewer sees no action.
    let actions = phone
        .find_all(Locator::Css("a.action"))
        .await
        .expect("actions");
    assert!(actions.is_empty(), "a viewer is offered actions");
    phone.close().await.ok();
    c.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_without_a_token_or_from_another_site_is_refused() {
    let r = Repo::demo();
    let s = Server::start(&r, &[], &[("RELEASEOPS_API_TOKENS", &tokens())]);
    // Installs the TLS provider the client builder asks for.
    let _ = client();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let form = [
        ("bundle", "support-agent"),
        ("version", "1.1.0"),
        ("env", "canary"),
        ("reason", "x"),
        ("csrf", "0"),
    ];
    // What people write is shown as text, never run: a rejection's reason
    // with markup in it.
    r.run_as(
        "Sam Safety <sam@acme.test>",
        &[
            "reject",
            "support-agent",
            "1.0.0",
            "--env",
            "dev",
            "--reason",
            "<script>alert(1)</script><img src=x onerror=alert(2)>",
        ],
    )
    .ok();
    let before = r.run(&["history", "--json"]).ok().to_string();

    // No session: sent to sign in, nothing recorded.
    let resp = http
        .post(s.at("/ui/approve"))
        .form_body(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 303);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap_or_default()
            .starts_with("/signin")
    );
    // Pages need a session when reads are not public.
    let resp = http.get(s.at("/history")).send().await.expect("get");
    assert_eq!(resp.status().as_u16(), 303);
    // A wrong token does not sign in.
    let resp = http
        .post(s.at("/signin"))
        .form_body(&[("token", "tok-nobody-00000000000000000000")])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("set-cookie").is_none());

    // Signed in, but the form has no CSRF token, or comes from another site.
    let resp = http
        .post(s.at("/signin"))
        .form_body(&[("token", APPROVER)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(APPROVER), "the cookie carries the token");
    let session = cookie.split(';').next().expect("name=value").to_string();
    let resp = http
        .post(s.at("/ui/approve"))
        .header("cookie", &session)
        .form_body(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.text().await.unwrap_or_default().contains("CSRF"));
    // The real CSRF token, from the form page, but sent cross-site.
    let page = http
        .get(s.at("/ui/approve?bundle=support-agent&version=1.1.0&env=canary"))
        .header("cookie", &session)
        .send()
        .await
        .expect("form")
        .text()
        .await
        .expect("html");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("the form's CSRF token")
        .to_string();
    let good = [
        ("bundle", "support-agent"),
        ("version", "1.1.0"),
        ("env", "canary"),
        ("reason", "x"),
        ("csrf", csrf.as_str()),
    ];
    let resp = http
        .post(s.at("/ui/approve"))
        .header("cookie", &session)
        .header("origin", "http://evil.test")
        .header("sec-fetch-site", "cross-site")
        .form_body(&good)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 403);
    // Origin alone says cross-site (a browser without Sec-Fetch-*): refused.
    let resp = http
        .post(s.at("/ui/approve"))
        .header("cookie", &session)
        .header("origin", "http://evil.test")
        .form_body(&good)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 403);
    // A sign-in from another site (login CSRF) is refused, with no cookie.
    let resp = http
        .post(s.at("/signin"))
        .header("origin", "http://evil.test")
        .form_body(&[("token", APPROVER)])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers().get("set-cookie").is_none());
    // A second session cookie (planted by another site on this host) is no session.
    let planted = format!("{session}; releaseops_session={}", "ab".repeat(32));
    let resp = http
        .get(s.at("/history"))
        .header("cookie", &planted)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 303);
    // An approver may not promote or roll back, by the page or by the form.
    for path in [
        "/ui/rollback?bundle=support-agent&env=prod",
        "/ui/promote?bundle=support-agent&version=1.1.0&env=prod",
    ] {
        let resp = http
            .get(s.at(path))
            .header("cookie", &session)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status().as_u16(), 403, "{path}");
    }
    for action in ["/ui/promote", "/ui/rollback"] {
        let resp = http
            .post(s.at(action))
            .header("cookie", &session)
            .form_body(&good)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status().as_u16(), 403, "{action}");
    }
    // The API's writes never take the session cookie.
    let resp = http
        .post(s.at("/v1/approve"))
        .header("cookie", &session)
        .json(&json!({"bundle_id": "support-agent", "version": "1.1.0", "env": "prod"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        r.run(&["history", "--json"]).ok().to_string(),
        before,
        "a refused action recorded something"
    );

    // The same form from the page itself goes through, as the token's owner.
    let resp = http
        .post(s.at("/ui/approve"))
        .header("cookie", &session)
        .header("origin", s.url.trim_end_matches('/'))
        .header("sec-fetch-site", "same-origin")
        .form_body(&good)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("approved for canary by Pat Approver"),
        "{body}"
    );
    for path in ["/history", "/bundles/support-agent/1.0.0"] {
        let page = http
            .get(s.at(path))
            .header("cookie", &session)
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("html");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{path}: {page}"
        );
        assert!(
            !page.contains("<script>alert") && !page.contains("<img src=x"),
            "{path}"
        );
    }
    // Every page is sent under the CSP, and the assets it names are served.
    let resp = http.get(s.at("/signin")).send().await.expect("get");
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    let html = resp.text().await.unwrap_or_default();
    assert_eq!(
        html.matches("/assets/").count(),
        2,
        "the stylesheet and the script: {html}"
    );
    for asset in html.split("/assets/").skip(1) {
        let name = asset.split('"').next().unwrap_or_default();
        let got = http
            .get(s.at(&format!("/assets/{name}")))
            .send()
            .await
            .expect("asset");
        assert_eq!(got.status().as_u16(), 200, "{name}");
    }
}
