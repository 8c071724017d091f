//! Many processes changing the store at once never lose an update: the final
//! environment and the history agree exactly with what each process reported.

use std::collections::HashMap;
use std::process::Stdio;

use crate::common::Repo;

#[test]
fn sixteen_processes_promoting_and_rolling_back_at_once() {
    let r = Repo::initialized();
    for v in ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"] {
        r.run(&[
            "bundle",
            "create",
            "c",
            "-v",
            v,
            "-m",
            v,
            "--provider",
            "anthropic",
        ])
        .ok();
    }
    for k in 0..8 {
        r.run(&[
            "bundle",
            "create",
            &format!("b{k}"),
            "-m",
            "m",
            "--provider",
            "anthropic",
        ])
        .ok();
    }
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        r.run(&["promote", "c", v, "dev"]).ok();
    }
    let before: u64 = r.run(&["--json", "history", "verify"]).json()["records"]
        .as_u64()
        .expect("n");

    let mut jobs: Vec<Vec<String>> = Vec::new();
    for k in 0..8 {
        jobs.push(vec![
            "promote".into(),
            format!("b{k}"),
            "1.0.0".into(),
            "dev".into(),
        ]);
    }
    for v in ["1.3.0", "1.4.0", "1.0.0", "1.1.0"] {
        jobs.push(vec!["promote".into(), "c".into(), v.into(), "dev".into()]);
    }
    for _ in 0..4 {
        jobs.push(vec!["rollback".into(), "dev".into(), "c".into()]);
    }
    assert_eq!(jobs.len(), 16);
    let children: Vec<_> = jobs
        .iter()
        .map(|args| {
            let mut a: Vec<&str> = vec!["--json"];
            a.extend(args.iter().map(|s| s.as_str()));
            let child = r
                .command(&a)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            (args.clone(), child)
        })
        .collect();
    // Readers running alongside never see half of a change.
    let verifiers: Vec<_> = (0..4)
        .map(|_| {
            r.command(&["history", "verify"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut reported: HashMap<u64, (Vec<String>, serde_json::Value)> = HashMap::new();
    let mut refused = 0;
    for (args, child) in children {
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        match out.status.code() {
            // Asking for what is already live changes nothing.
            Some(0) if j["unchanged"] == true => refused += 1,
            Some(0) => {
                let seq = j["seq"]
                    .as_u64()
                    .expect("a successful change reports its record");
                assert!(
                    reported.insert(seq, (args, j)).is_none(),
                    "two processes reported record {seq}"
                );
            }
            // A rollback or promotion may be refused or blocked by what the
            // others did first; it must then change nothing.
            Some(1) | Some(3) => {
                refused += 1;
                assert!(j["seq"].is_null(), "{j}");
            }
            other => panic!("{args:?} exited {other:?}: {stderr}"),
        }
    }
    for v in verifiers {
        let out = v.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "a concurrent verify saw a torn state:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let b_successes = reported
        .values()
        .filter(|(a, _)| a[1].starts_with('b'))
        .count();
    assert_eq!(b_successes, 8, "every distinct-bundle promotion succeeds");
    let verify = r.run(&["--json", "history", "verify"]).json();
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(
        verify["records"].as_u64(),
        Some(before + reported.len() as u64),
        "one record per reported success, {refused} refused"
    );
    // Every reported success is in the history exactly as reported.
    let history = r.run(&["--json", "history", "-n", "0"]).json();
    let by_seq: HashMap<u64, &serde_json::Value> = history
        .as_array()
        .expect("a")
        .iter()
        .map(|h| (h["seq"].as_u64().unwrap_or(0), h))
        .collect();
    for (seq, (args, j)) in &reported {
        let h = by_seq
            .get(seq)
            .unwrap_or_else(|| panic!("record {seq} reported by {args:?} is missing"));
        match args[0].as_str() {
            "promote" => assert_eq!(
                (
                    h["event"].as_str(),
                    h["bundle_id"].as_str(),
                    h["version"].as_str()
                ),
                (
                    Some("promote"),
                    Some(args[1].as_str()),
                    Some(args[2].as_str())
                )
            ),
            _ => assert_eq!(
                (
                    h["event"].as_str(),
                    h["version"].as_str(),
                    h["from_version"].as_str()
                ),
                (Some("rollback"), j["to"].as_str(), j["from"].as_str())
            ),
        }
    }
    // The environment holds what the last change to each bundle said.
    let dev = r.run(&["--json", "env", "get", "dev"]).json();
    for k in 0..8 {
        assert_eq!(dev["bundle_mappings"][format!("b{k}")], "1.0.0");
    }
    let last_c = reported
        .iter()
        .filter(|(_, (a, _))| a.contains(&"c".to_string()))
        .max_by_key(|(s, _)| **s)
        .map(|(_, (a, j))| {
            if a[0] == "promote" {
                a[2].clone()
            } else {
                j["to"].as_str().unwrap_or("").to_string()
            }
        });
    assert_eq!(
        dev["bundle_mappings"]["c"].as_str().map(str::to_string),
        last_c
    );
    // And every change is its own git commit.
    let commits = r.git(&["rev-list", "--count", "HEAD"]);
    assert!(commits.parse::<usize>().expect("n") >= reported.len());
}
