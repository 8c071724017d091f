//! Delivery to a real HTTP receiver on loopback: what it gets, retries,
//! a receiver that hangs, and a URL that never shows in a report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use releaseops_core::notify::Notice;
use releaseops_format::config::{NotifyEvent, NotifyFormat, NotifyTarget};
use releaseops_notify::{Notifier, payload};

/// A receiver answering each request with the next of `script` (status,
/// delay), then 200; it echoes the request line back, as some do.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

fn receiver(script: Vec<(u16, Duration)>) -> Receiver {
    receiver_with(script.into_iter().map(|(s, d)| (s, d, 0)).collect())
}

/// As [`receiver`], each answer with its `Retry-After` (seconds).
fn receiver_with(script: Vec<(u16, Duration, u64)>) -> Receiver {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/hooks/T0SECRET/B0SECRET/xoxsecret",
        l.local_addr().expect("addr")
    );
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in l.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let (status, delay, retry) = script.next().unwrap_or((200, Duration::ZERO, 0));
            std::thread::sleep(delay);
            g.lock().expect("lock").push((
                line.trim().to_string(),
                serde_json::from_slice(&body).unwrap_or_default(),
            ));
            let echo = format!("you sent {}", line.trim());
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nx-echo: {}\r\nretry-after: {retry}\r\nconnection: close\r\n\r\n{echo}",
                echo.len(),
                line.trim()
            );
        }
    });
    Receiver { url, got }
}

fn target(format: NotifyFormat, events: Vec<NotifyEvent>) -> NotifyTarget {
    NotifyTarget {
        name: Some("team-hook".into()),
        url_env: "HOOK_URL".into(),
        format,
        events,
    }
}

fn notice(event: NotifyEvent) -> Notice {
    Notice {
        event,
        bundle_id: "support-agent".into(),
        version: Some("1.1.0".into()),
        env: Some("prod".into()),
        actor: "Dee <dee@acme.test>".into(),
        at: "2026-12-07T10:00:00Z".into(),
        summary: "support-agent 1.1.0 -> prod is blocked (eval: <FAIL> & worse)".into(),
        gates: Vec::new(),
        decision_id: None,
    }
}

#[test]
fn each_webhook_gets_the_events_it_wants_in_its_format() {
    let json_hook = receiver(vec![]);
    let slack_hook = receiver(vec![]);
    let targets = vec![
        target(NotifyFormat::Json, vec![NotifyEvent::PromotionBlocked]),
        NotifyTarget {
            name: None,
            url_env: "SLACK".into(),
            format: NotifyFormat::Slack,
            events: vec![],
        },
    ];
    let (a, b) = (json_hook.url.clone(), slack_hook.url.clone());
    let n = Notifier::new(&targets, |v| match v {
        "HOOK_URL" => Some(a.clone()),
        "SLACK" => Some(b.clone()),
        _ => None,
    });
    n.send(&[
        notice(NotifyEvent::PromotionBlocked),
        notice(NotifyEvent::Rollback),
    ]);
    let r = n.finish(Duration::from_secs(20));
    assert_eq!(r.delivered, 3, "{r:?}");
    assert!(r.failed.is_empty() && r.pending == 0, "{r:?}");
    let got = json_hook.got.lock().expect("lock").clone();
    assert_eq!(got.len(), 1, "the JSON hook wants blocked promotions only");
    assert_eq!(got[0].1["event"], "promotion_blocked");
    assert_eq!(got[0].1["source"], "releaseops");
    assert_eq!(got[0].1["env"], "prod");
    let slack = slack_hook.got.lock().expect("lock").clone();
    assert_eq!(slack.len(), 2);
    let text = slack[0].1["text"].as_str().expect("text");
    assert!(text.starts_with("[releaseops] Promotion blocked"), "{text}");
    assert!(
        text.contains("&lt;FAIL&gt; &amp; worse"),
        "mrkdwn is escaped: {text}"
    );
    assert_eq!(slack[0].1["blocks"][0]["type"], "section");
}

#[test]
fn failures_are_retried_and_reported_without_the_url() {
    let hook = receiver(vec![(500, Duration::ZERO), (503, Duration::ZERO)]);
    let url = hook.url.clone();
    let n = Notifier::new(&[target(NotifyFormat::Json, vec![])], |_| Some(url.clone()));
    n.send(&[notice(NotifyEvent::Rollback)]);
    let r = n.finish(Duration::from_secs(30));
    assert_eq!(r.delivered, 1, "two failures, then delivered: {r:?}");
    assert_eq!(hook.got.lock().expect("lock").len(), 3);

    // A webhook that refuses (4xx) is not retried; one that always fails
    // is given up; neither report shows the URL or what the server echoed.
    let refusing = receiver(vec![(403, Duration::ZERO)]);
    let failing = receiver(vec![(500, Duration::ZERO); 8]);
    let (a, b) = (refusing.url.clone(), failing.url.clone());
    let targets = vec![
        target(NotifyFormat::Json, vec![]),
        NotifyTarget {
            name: Some("second".into()),
            url_env: "B".into(),
            format: NotifyFormat::Json,
            events: vec![],
        },
    ];
    let n = Notifier::new(&targets, |v| {
        Some(if v == "B" { b.clone() } else { a.clone() })
    });
    n.send(&[notice(NotifyEvent::EvalFailed)]);
    let r = n.finish(Duration::from_secs(30));
    assert_eq!(r.delivered, 0);
    assert_eq!(r.failed.len(), 2, "{r:?}");
    let all = format!("{r:?}");
    assert!(
        !all.contains("SECRET") && !all.contains("xox") && !all.contains("127.0.0.1"),
        "{all}"
    );
    assert!(all.contains("team-hook: HTTP 403 (not retried)"), "{all}");
    assert!(all.contains("second: HTTP 500 after 4 attempts"), "{all}");
    assert_eq!(refusing.got.lock().expect("lock").len(), 1);
    assert_eq!(failing.got.lock().expect("lock").len(), 4);
}

#[test]
fn a_hanging_webhook_costs_a_bounded_wait_and_a_full_queue_drops() {
    let hook = receiver(vec![(200, Duration::from_secs(60))]);
    let url = hook.url.clone();
    let n = Notifier::new(&[target(NotifyFormat::Json, vec![])], |_| Some(url.clone()));
    let started = Instant::now();
    for _ in 0..(releaseops_notify::QUEUE + 50) {
        n.send(&[notice(NotifyEvent::Rollback)]);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "send blocked");
    let r = n.finish(Duration::from_millis(500));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(r.dropped >= 49, "{r:?}");
    assert!(r.pending > 0, "{r:?}");
}

#[test]
fn an_unset_variable_sends_nothing_and_says_which() {
    let n = Notifier::new(&[target(NotifyFormat::Json, vec![])], |_| None);
    assert!(!n.is_active());
    n.send(&[notice(NotifyEvent::Rollback)]);
    let r = n.finish(Duration::from_secs(1));
    assert_eq!(r.unset, vec!["team-hook: $HOOK_URL is not set".to_string()]);
    let n = Notifier::new(&[target(NotifyFormat::Json, vec![])], |_| {
        Some("ftp://x".into())
    });
    assert_eq!(n.finish(Duration::ZERO).unset.len(), 1);
    // The payload is the notice itself.
    assert_eq!(
        payload(NotifyFormat::Json, &notice(NotifyEvent::AgentNoGo))["event"],
        "agent_no_go"
    );
}

#[test]
fn retry_after_is_waited_for_and_a_slow_webhook_delays_no_other() {
    let limited = receiver_with(vec![(429, Duration::ZERO, 1)]);
    let hanging = receiver(vec![(200, Duration::from_secs(60))]);
    let fast = receiver(vec![]);
    let (l, h, f) = (limited.url.clone(), hanging.url.clone(), fast.url.clone());
    let named = |name: &str, var: &str| NotifyTarget {
        name: Some(name.into()),
        url_env: var.into(),
        format: NotifyFormat::Json,
        events: vec![],
    };
    let n = Notifier::new(
        &[
            named("limited", "L"),
            named("hanging", "H"),
            named("fast", "F"),
        ],
        |v| {
            Some(match v {
                "L" => l.clone(),
                "H" => h.clone(),
                _ => f.clone(),
            })
        },
    );
    let started = Instant::now();
    n.send(&[notice(NotifyEvent::Rollback)]);
    // The fast webhook has it while the hanging one still holds its worker.
    while fast.got.lock().expect("lock").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the fast webhook waited for the hanging one"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    while limited.got.lock().expect("lock").len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the 429 was not retried"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The second try came after the second it was told to wait.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let r = n.finish(Duration::from_millis(200));
    assert_eq!(r.delivered, 2, "{r:?}");
    assert_eq!(r.pending, 1, "{r:?}");
}

#[test]
fn plain_http_goes_to_this_machine_only() {
    for (url, ok) in [
        ("http://127.0.0.1:9/x", true),
        ("http://localhost/x", true),
        ("http://[::1]:8/x", true),
        ("https://hooks.example.test/x", true),
        ("http://hooks.example.test/x", false),
        ("http://127.0.0.1.evil.test/x", false),
        ("http://user@10.0.0.1/x", false),
    ] {
        let n = Notifier::new(&[target(NotifyFormat::Json, vec![])], |_| Some(url.into()));
        assert_eq!(n.is_active(), ok, "{url}");
        let r = n.finish(Duration::ZERO);
        assert!(
            !format!("{r:?}").contains("example.test") && !format!("{r:?}").contains("10.0.0.1"),
            "{r:?}"
        );
    }
}
