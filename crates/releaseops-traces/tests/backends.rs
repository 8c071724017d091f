//! The same behaviour from both stores: the embedded SQLite file and a real
//! PostgreSQL server. PostgreSQL is named by RELEASEOPS_TEST_POSTGRES (a
//! URL to a database whose user may create databases; `.ci/run` starts
//! one on loopback). In CI its absence is a failure; elsewhere the
//! PostgreSQL half says so and returns.

// The helpers below are test code too (clippy allows unwrap only inside #[test] functions).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use releaseops_traces::{BundleTag, Filter, Source, Span, Status, ToolCall, TraceStore};

fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

fn span(trace: u32, id: u32, parent: Option<u32>, tag: Option<(&str, &str, &str)>) -> Span {
    let now = now_ns();
    Span {
        trace_id: format!("{trace:032x}"),
        span_id: format!("{id:016x}"),
        parent_span_id: parent.map(|p| format!("{p:016x}")),
        name: "agent".into(),
        start_ns: now - 10_000_000 - i64::from(id) * 1000,
        end_ns: now - i64::from(id) * 1000,
        status: Status::Ok,
        status_message: None,
        error_type: None,
        bundle: tag
            .map(|(a, b, c)| BundleTag {
                bundle_id: Some(a.into()),
                bundle_version: Some(b.into()),
                environment: Some(c.into()),
            })
            .unwrap_or_default(),
        operation: Some("chat".into()),
        model: Some("gpt-4o".into()),
        input_tokens: Some(100),
        output_tokens: Some(20),
        cost: Some(0.001),
        finish_reasons: vec!["stop".into()],
        tool_calls: vec![],
        input: None,
        output: None,
        attributes: serde_json::Map::from_iter([(
            "app.refund_amount".to_string(),
            serde_json::json!(42.5),
        )]),
        source: Source::Otlp,
    }
}

/// What every store must do.
fn exercise(store: &mut TraceStore) {
    // 200 traces of 1.0.0 and 200 of 1.1.0, each a tagged root and an
    // untagged child (sent first, in its own batch) that calls a tool.
    let mut children = Vec::new();
    let mut roots = Vec::new();
    for t in 0..400u32 {
        let version = if t < 200 { "1.0.0" } else { "1.1.0" };
        let mut child = span(t + 1, 2 * t + 2, Some(2 * t + 1), None);
        child.tool_calls.push(ToolCall {
            name: if t % 4 == 0 {
                "issue_refund".into()
            } else {
                "lookup_order".into()
            },
            arguments: None,
            executed: true,
        });
        if version == "1.1.0" && t % 5 == 0 {
            child.status = Status::Error;
        }
        children.push(child);
        roots.push(span(
            t + 1,
            2 * t + 1,
            None,
            Some(("support-agent", version, "prod")),
        ));
    }
    assert_eq!(store.insert(&children).unwrap().spans, 400);
    let stored = store.insert(&roots).unwrap();
    assert_eq!((stored.spans, stored.duplicates), (400, 0));
    // A retried export changes nothing.
    let again = store.insert(&roots[..50]).unwrap();
    assert_eq!((again.spans, again.duplicates), (0, 50));

    let of = |v: &str| Filter {
        bundle_id: Some("support-agent".into()),
        bundle_version: Some(v.into()),
        environment: Some("prod".into()),
        ..Filter::default()
    };
    let a = store.sample(&of("1.0.0")).unwrap();
    let b = store.sample(&of("1.1.0")).unwrap();
    assert_eq!((a.traces, a.errors), (200, 0));
    assert_eq!((b.traces, b.errors), (200, 40));
    assert_eq!(a.input_tokens[0], 200, "root and child tokens add up");
    assert_eq!(a.tools["issue_refund"] + a.tools["lookup_order"], 200);
    assert_eq!(a.cost_micros[0], 2000);
    let attr = store
        .attribute_sample(&of("1.0.0"), "app.refund_amount")
        .unwrap();
    assert_eq!(attr.len(), 200);
    assert_eq!(attr[0], 85_000_000);

    let listed = store
        .traces(
            &Filter {
                errors: Some(true),
                tool: Some("lookup_order".into()),
                ..of("1.1.0")
            },
            5,
        )
        .unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed.windows(2).all(|w| w[0].start_ns >= w[1].start_ns));
    assert!(listed.iter().all(|t| t.errors == 1 && t.spans == 2));
    let (summary, spans) = store.trace(&listed[0].trace_id).unwrap().unwrap();
    assert_eq!(summary.trace_id, listed[0].trace_id);
    assert_eq!(spans.len(), 2);
    assert_eq!(
        spans.iter().filter(|s| s.status == Status::Error).count(),
        1
    );
    assert_eq!(spans[0].attributes["app.refund_amount"], 42.5);

    let stats = store.stats(&Filter::default()).unwrap();
    assert_eq!((stats.spans, stats.traces), (800, 400));
    assert_eq!(stats.groups.len(), 2);
    assert_eq!(stats.groups[1].errors, 40);
    assert!(stats.size_bytes > 0);

    // A write that is not committed leaves nothing.
    {
        let mut w = store.writer().unwrap();
        w.add(&[span(9_999, 1, None, None)]).unwrap();
        w.set_cursor("langfuse", "abc", now_ns()).unwrap();
    }
    assert_eq!(store.stats(&Filter::default()).unwrap().spans, 800);
    assert_eq!(store.cursor("langfuse").unwrap(), None);
    let mut w = store.writer().unwrap();
    w.set_cursor("langfuse", "abc", now_ns()).unwrap();
    w.commit().unwrap();
    assert_eq!(store.cursor("langfuse").unwrap().as_deref(), Some("abc"));

    // Another agent's span in the same trace, exported first, does not take
    // the trace: the root's bundle does, all three fields of it.
    let callee = span(
        9_000,
        2,
        Some(1),
        Some(("billing-agent", "2.0.0", "staging")),
    );
    store.insert(&[callee]).unwrap();
    store
        .insert(&[span(
            9_000,
            1,
            None,
            Some(("support-agent", "1.1.0", "prod")),
        )])
        .unwrap();
    let (summary, _) = store.trace(&format!("{:032x}", 9_000)).unwrap().unwrap();
    assert_eq!(summary.bundle.bundle_id.as_deref(), Some("support-agent"));
    assert_eq!(summary.bundle.environment.as_deref(), Some("prod"));
    // Text PostgreSQL refuses (a NUL), sent by an exporter, never reaches it.
    let now = now_ns();
    let export = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": format!("{:032x}", 9_001), "spanId": format!("{:016x}", 1), "name": "a\u{0}b",
        "startTimeUnixNano": (now - 10).to_string(), "endTimeUnixNano": now.to_string(),
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m\u{0}"}}]}]}]}]});
    let decoded =
        releaseops_traces::otlp::from_json(&export, &releaseops_traces::ReadOptions::new(false))
            .unwrap();
    assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
    store.insert(&decoded.spans).unwrap();
    let (_, stored) = store.trace(&format!("{:032x}", 9_001)).unwrap().unwrap();
    assert_eq!(
        (stored[0].name.as_str(), stored[0].model.as_deref()),
        ("ab", Some("m"))
    );

    // Token sums stop at their cap, batch after batch, and stay readable.
    let greedy: Vec<Span> = (0..1001u32)
        .map(|i| {
            let mut s = span(9_002, 20_000 + i, Some(1), None);
            s.input_tokens = Some(1_000_000_000_000);
            s
        })
        .collect();
    store.insert(&greedy).unwrap();
    let more: Vec<Span> = (0..1001u32)
        .map(|i| {
            let mut s = span(9_002, 30_000 + i, Some(1), None);
            s.input_tokens = Some(1_000_000_000_000);
            s
        })
        .collect();
    store.insert(&more).unwrap();
    let (summary, _) = store.trace(&format!("{:032x}", 9_002)).unwrap().unwrap();
    assert_eq!(summary.input_tokens, 1_000_000_000_000_000);
    store.sample(&Filter::default()).unwrap();

    // Retention: everything started before now goes.
    assert_eq!(store.prune(now_ns() + 1).unwrap(), 403);
    assert_eq!(store.stats(&Filter::default()).unwrap().spans, 0);
}

#[test]
fn the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".data").join("traces.sqlite");
    let mut store = TraceStore::open_sqlite(&path).unwrap();
    exercise(&mut store);
    drop(store);
    // Kept out of git, and opened again as it was left.
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".data/.gitignore")).unwrap(),
        "*\n"
    );
    let mut again = TraceStore::open_sqlite(&path).unwrap();
    assert_eq!(again.cursor("langfuse").unwrap().as_deref(), Some("abc"));
    // A link in the place of the data directory is refused.
    let elsewhere = tempfile::tempdir().unwrap();
    let linked = dir.path().join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), linked.join(".data")).unwrap();
    let e = TraceStore::open_sqlite(&linked.join(".data").join("traces.sqlite"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("symbolic link"), "{e}");
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none()
    );
    // A file that is not a store is named, not overwritten.
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let e = TraceStore::open_sqlite(&junk).err().unwrap().to_string();
    assert!(e.contains("junk.sqlite"), "{e}");
    assert_eq!(std::fs::read(&junk).unwrap(), vec![b'x'; 8192]);
}

/// A fresh database on the test server, or None outside CI without one.
fn postgres_db() -> Option<String> {
    let Ok(base) = std::env::var("RELEASEOPS_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set RELEASEOPS_TEST_POSTGRES (see .ci/run)"
        );
        eprintln!("skipped: set RELEASEOPS_TEST_POSTGRES to a PostgreSQL URL to run this test");
        return None;
    };
    let name = format!(
        "releaseops_test_{}_{}",
        std::process::id(),
        now_ns() % 1_000_000_007
    );
    let mut admin = postgres::Client::connect(&base, postgres::NoTls)
        .expect("connect to RELEASEOPS_TEST_POSTGRES");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let (head, _) = base.rsplit_once('/').expect("a URL with a database");
    Some(format!("{head}/{name}"))
}

#[test]
fn a_shared_postgresql_store() {
    let Some(url) = postgres_db() else { return };
    let mut store = TraceStore::open_postgres(&url).unwrap();
    exercise(&mut store);
    // A second server opening the same database finds the schema made.
    let mut other = TraceStore::open_postgres(&url).unwrap();
    assert_eq!(other.cursor("langfuse").unwrap().as_deref(), Some("abc"));
}

#[test]
fn replicas_write_at_once_and_lose_nothing() {
    let Some(url) = postgres_db() else { return };
    TraceStore::open_postgres(&url).unwrap();
    // Four servers, each storing 50 batches of 20 spans, every batch
    // sharing its traces with the other servers' (spans of one trace
    // arrive at different replicas).
    std::thread::scope(|s| {
        for replica in 0..4u32 {
            let url = url.clone();
            s.spawn(move || {
                let mut store = TraceStore::open_postgres(&url).unwrap();
                for batch in 0..50u32 {
                    let spans: Vec<Span> = (0..20u32)
                        .map(|i| {
                            let trace = batch * 20 + i + 1;
                            let id = trace * 8 + replica + 1;
                            let tag = (replica == 0).then_some(("support-agent", "1.0.0", "prod"));
                            span(trace, id, (replica != 0).then_some(trace * 8), tag)
                        })
                        .collect();
                    store.insert(&spans).unwrap();
                }
            });
        }
    });
    let mut store = TraceStore::open_postgres(&url).unwrap();
    let stats = store.stats(&Filter::default()).unwrap();
    assert_eq!((stats.spans, stats.traces), (4_000, 1_000));
    let f = Filter {
        bundle_id: Some("support-agent".into()),
        ..Filter::default()
    };
    let s = store.sample(&f).unwrap();
    assert_eq!(
        s.traces, 1_000,
        "every trace took its bundle from whichever span had it"
    );
    assert!(s.input_tokens.iter().all(|t| *t == 400));
}

#[test]
fn postgresql_going_away_mid_batch_stores_nothing_and_recovers() {
    let Some(url) = postgres_db() else { return };
    let mut store = TraceStore::open_postgres(&url).unwrap();
    let mut killer = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let err = {
        let mut w = store.writer().unwrap();
        w.add(&[span(1, 1, None, Some(("a", "1.0.0", "prod")))])
            .unwrap();
        // The server ends this connection before the batch is committed.
        killer
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'releaseops' AND datname = current_database() AND pid <> pg_backend_pid()",
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let more = w.add(&[span(1, 2, Some(1), None)]);
        match more {
            Err(e) => e,
            Ok(()) => w.commit().expect_err("the commit fails"),
        }
    };
    let msg = err.to_string();
    assert!(
        msg.contains("PostgreSQL") || msg.contains("connection"),
        "{msg}"
    );
    assert!(!msg.contains("password"), "{msg}");
    // The next write connects again; nothing of the lost batch is there.
    let mut after = TraceStore::open_postgres(&url).unwrap();
    assert_eq!(after.stats(&Filter::default()).unwrap().spans, 0);
    store.insert(&[span(2, 1, None, None)]).unwrap();
    assert_eq!(after.stats(&Filter::default()).unwrap().spans, 1);
}
