//! Bundles through the real binary: creation from promptops history and plain
//! files, immutability, verification, diffs, and the existing tool's files.

use crate::common::Repo;

#[test]
fn create_from_promptops_tags_matches_the_existing_tools_manifest_and_hash() {
    let r = Repo::initialized();
    let out = r
        .run(&[
            "bundle",
            "create",
            "support-agent",
            "-v",
            "1.0.0",
            "-a",
            "system=onboarding:v1.0.0",
            "--policy",
            "tools=policies/tools.yaml",
            "-m",
            "claude-sonnet-4-5",
            "--provider",
            "anthropic",
            "-t",
            "0.2",
            "-d",
            "first",
        ])
        .ok()
        .to_string();
    assert!(
        out.contains("Created bundle: support-agent v1.0.0"),
        "{out}"
    );
    let m = r.read(".releaseops/bundles/support-agent/1.0.0.yaml");
    // Same keys, same order as the existing tool writes.
    let keys: Vec<&str> = m
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        keys,
        [
            "schema_version",
            "metadata",
            "artifacts",
            "model_config",
            "bundle_hash"
        ]
    );
    assert!(m.contains("      ref: prompts/onboarding@v1.0.0\n"), "{m}");
    assert!(m.contains("      path: policies/tools.yaml\n"), "{m}");
    assert!(
        m.contains("  temperature: 0.2\n  max_tokens: 4096\n"),
        "{m}"
    );
    assert!(
        m.contains("  created_by: Test Dev <dev@example.test>\n"),
        "{m}"
    );
    // The prompt's content hash is the SHA-256 of the exact blob at the tag.
    let blob = std::process::Command::new("git")
        .current_dir(r.path())
        .args([
            "cat-file",
            "blob",
            "prompt-onboarding-v1.0.0:.promptops/prompts/onboarding.yaml",
        ])
        .output()
        .expect("git")
        .stdout;
    let want = releaseops_format::hash::sha256_prefixed(&blob);
    assert!(m.contains(&format!("content_hash: {want}")), "{m}");
    let j = r
        .run(&["--json", "bundle", "verify", "support-agent"])
        .json();
    assert_eq!(j["ok"], true, "{j}");
    assert!(
        j["artifacts"]
            .as_array()
            .expect("array")
            .iter()
            .all(|a| a["checked_against"] == "object store")
    );
}

#[test]
fn moving_refs_are_pinned_to_the_commit_they_meant() {
    let r = Repo::initialized();
    let out = r
        .run(&[
            "bundle",
            "create",
            "a",
            "-v",
            "1.0.0",
            "-a",
            "system=onboarding:latest",
        ])
        .ok()
        .to_string();
    assert!(
        out.contains("Pinned system: onboarding:latest -> v1.1.0"),
        "{out}"
    );
    assert!(
        r.read(".releaseops/bundles/a/1.0.0.yaml")
            .contains("ref: prompts/onboarding@v1.1.0")
    );
    // Uncommitted edits are not bundled, and the user is told.
    let committed = r.read(".promptops/prompts/onboarding.yaml");
    r.write(
        ".promptops/prompts/onboarding.yaml",
        "prompt: {id: onboarding, template: draft}\n",
    );
    let o = r.run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "0.9.0",
        "-a",
        "system=onboarding",
    ]);
    o.ok();
    assert!(o.stderr.contains("uncommitted changes"), "{}", o.stderr);
    assert!(
        r.read(".releaseops/bundles/a/0.9.0.yaml")
            .contains("ref: prompts/onboarding@v1.1.0")
    );
    r.write(".promptops/prompts/onboarding.yaml", &committed);
    // Each change is committed, so HEAD moves; read it just before.
    let head = r.git(&["rev-parse", "HEAD"]);
    r.run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "1.0.1",
        "-a",
        "system=onboarding:HEAD",
    ])
    .ok();
    assert!(
        r.read(".releaseops/bundles/a/1.0.1.yaml")
            .contains(&format!("ref: prompts/onboarding@{head}"))
    );
    let parent = r.git(&["rev-parse", "HEAD~1"]);
    r.run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "1.0.2",
        "-a",
        "system=onboarding:HEAD~1",
    ])
    .ok();
    let m = r.read(".releaseops/bundles/a/1.0.2.yaml");
    assert!(
        m.contains(&format!("ref: prompts/onboarding@{parent}")),
        "{m}"
    );
    // commit-<sha8> and bare global tags resolve too.
    r.run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "1.0.3",
        "-a",
        &format!("system=onboarding:commit-{}", &parent[..8]),
    ])
    .ok();
    let e = r.run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "1.0.4",
        "-a",
        "system=onboarding:unstaged",
    ]);
    e.code(1);
    assert!(
        e.stderr.contains("not committed") && e.stderr.contains("hint:"),
        "{}",
        e.stderr
    );
    let e = r.run(&[
        "bundle",
        "create",
        "a",
        "-v",
        "1.0.4",
        "-a",
        "system=onboarding:v9.9.9",
    ]);
    e.code(1);
    assert!(e.stderr.contains("'v9.9.9' not found"), "{}", e.stderr);
}

#[test]
fn plain_prompt_files_are_snapshotted_and_verify_without_the_original() {
    let r = Repo::initialized();
    r.write("prompts/system.md", "You are helpful.\r\nBe brief.\r\n");
    r.run(&[
        "bundle",
        "create",
        "md",
        "-a",
        "system=file:prompts/system.md",
        "-m",
        "gpt-4o",
        "--provider",
        "openai",
        "--param",
        "top_p=0.9",
    ])
    .ok();
    let m = r.read(".releaseops/bundles/md/1.0.0.yaml");
    assert!(
        m.contains("path: prompts/system.md") && m.contains("parameters:\n    top_p: 0.9"),
        "{m}"
    );
    // The original disappears: the bundle still verifies from the object store.
    std::fs::remove_file(r.path().join("prompts/system.md")).expect("rm");
    std::fs::remove_dir_all(r.path().join(".git")).expect("rm .git");
    r.run(&["bundle", "verify", "md"]).ok();
    // A changed object is reported, with exit code 4.
    let j = r.run(&["--json", "bundle", "inspect", "md"]).json();
    let h = j["artifacts"]["prompts"]["system"]["content_hash"]
        .as_str()
        .expect("hash")
        .to_string();
    let hex = h.trim_start_matches("sha256:");
    let obj = format!(".releaseops/objects/sha256/{}/{}", &hex[..2], &hex[2..]);
    r.write(&obj, "You are harmful.\n");
    let v = r.run(&["bundle", "verify", "md"]);
    v.code(4);
    assert!(
        v.stdout.contains("content hash mismatch in object store"),
        "{}",
        v.stdout
    );
}

#[test]
fn versions_are_immutable_and_latest_is_the_highest_semver() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "s",
        "-v",
        "1.9.0",
        "-m",
        "a",
        "--provider",
        "anthropic",
    ])
    .ok();
    r.run(&[
        "bundle",
        "create",
        "s",
        "-v",
        "1.10.0",
        "-m",
        "b",
        "--provider",
        "anthropic",
    ])
    .ok();
    let before = r.snapshot();
    let e = r.run(&[
        "bundle",
        "create",
        "s",
        "-v",
        "1.10.0",
        "-m",
        "c",
        "--provider",
        "anthropic",
    ]);
    e.code(1);
    assert!(
        e.stderr.contains("already exists") && e.stderr.contains("immutable"),
        "{}",
        e.stderr
    );
    assert_eq!(before, r.snapshot(), "a refused create changes nothing");
    let inspect = r.run(&["bundle", "inspect", "s"]).ok().to_string();
    assert!(
        inspect.contains("version: 1.10.0") && inspect.contains("model: b"),
        "{inspect}"
    );
    let list = r.run(&["--json", "bundle", "list"]).json();
    assert_eq!(list[0]["versions"], serde_json::json!(["1.9.0", "1.10.0"]));
    assert_eq!(list[0]["latest"], "1.10.0");
}

#[test]
fn names_that_escape_or_break_on_windows_are_refused() {
    let r = Repo::initialized();
    let before = r.snapshot();
    for args in [
        vec![
            "bundle",
            "create",
            "evil",
            "-v",
            "../../../escaped",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
        vec![
            "bundle",
            "create",
            "../../outside",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
        vec![
            "bundle",
            "create",
            "con",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
        vec![
            "bundle",
            "create",
            "ok",
            "-v",
            "1.0.0.",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
        vec!["bundle", "create", "ok", "-a", "../r=onboarding"],
        vec![
            "bundle",
            "create",
            "ok",
            "--policy",
            "tools=../../etc/passwd",
        ],
        vec!["promote", "ok", "1.0.0", "../prod"],
        vec!["env", "create", "a/b"],
    ] {
        let o = r.run(&args);
        assert_eq!(o.code, 2, "{args:?} should be a usage error\n{}", o.stderr);
        assert!(o.stderr.contains("hint:"), "{}", o.stderr);
    }
    assert_eq!(before, r.snapshot());
    assert!(!r.path().join("escaped.yaml").exists() && !r.path().join("outside").exists());
}

#[test]
fn diff_shows_prompt_lines_policy_changes_and_model_fields() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "d",
        "-v",
        "1.0.0",
        "-a",
        "system=onboarding:v1.0.0",
        "--policy",
        "tools=policies/tools.yaml",
        "-m",
        "m1",
        "--provider",
        "anthropic",
        "-t",
        "0.2",
    ])
    .ok();
    r.run(&[
        "bundle",
        "create",
        "d",
        "-v",
        "1.1.0",
        "-a",
        "system=onboarding:v1.1.0",
        "--policy",
        "safety=policies/safety.yaml",
        "-m",
        "m2",
        "--provider",
        "anthropic",
        "-t",
        "0.2",
        "--param",
        "top_p=0.5",
    ])
    .ok();
    let text = r
        .run(&["bundle", "diff", "d", "1.0.0", "1.1.0"])
        .ok()
        .to_string();
    assert!(
        text.contains("-    You may issue refunds up to 100 dollars."),
        "{text}"
    );
    assert!(
        text.contains("+    You may issue refunds up to 150 dollars."),
        "{text}"
    );
    assert!(
        text.contains("model: m1 -> m2") && text.contains("parameters.top_p: (none) -> 0.5"),
        "{text}"
    );
    let j = r
        .run(&["--json", "bundle", "diff", "d@1.0.0", "d@1.1.0"])
        .json();
    let changes: Vec<(String, String)> = j["artifacts"]
        .as_array()
        .expect("array")
        .iter()
        .map(|a| {
            (
                a["role"].as_str().unwrap_or("").to_string(),
                a["change"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("system".into(), "changed".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("tools".into(), "removed".into()))
            && changes.contains(&("safety".into(), "added".into())),
        "{changes:?}"
    );
}

#[test]
fn the_existing_tools_sample_tree_reads_back() {
    let r = Repo::with_sample_tree();
    let list = r.run(&["--json", "bundle", "list"]).json();
    assert_eq!(
        list[0]["versions"],
        serde_json::json!(["1.0.0", "1.1.0", "1.2.0"])
    );
    let envs = r.run(&["--json", "env", "list"]).json();
    let prod = &envs["environments"][2];
    assert_eq!(prod["env"], "prod");
    assert_eq!(prod["bundles"][0]["version"], "1.2.0");
    assert_eq!(
        prod["gates"],
        serde_json::json!(["eval", "approval x1 (safety-team)", "soak 24h"])
    );
    // Everything verifies from its source (the existing tool kept no copies):
    // the policies from their files, the prompt from its promptops history.
    let v = r
        .run(&["--json", "bundle", "verify", "support-agent", "-v", "1.2.0"])
        .json();
    let statuses: Vec<&str> = v["artifacts"]
        .as_array()
        .expect("a")
        .iter()
        .map(|a| a["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["ok", "ok", "ok"]);
    // Its history is shown, and imported into the chain on the first change.
    let h = r.run(&["--json", "history", "-n", "50"]).json();
    assert_eq!(h.as_array().expect("a").len(), 12);
    r.run(&["history", "verify"]).ok();
    r.run(&["rollback", "prod", "support-agent", "-r", "test"])
        .ok();
    let v = r.run(&["--json", "history", "verify"]).json();
    assert_eq!(v["ok"], true, "{v}");
    // Imported: its 3 bundle versions, its 12 records and its 2 eval reports;
    // then the rollback.
    assert_eq!(v["records"], 18);
    // The eval report the existing tool wrote is evidence for the eval gate.
    let out = r.run(&[
        "--json",
        "promote",
        "support-agent",
        "1.2.0",
        "prod",
        "--dry-run",
    ]);
    let j = out.json();
    let eval = j["gates"]
        .as_array()
        .expect("a")
        .iter()
        .find(|g| g["gate"] == "eval")
        .expect("eval gate")
        .clone();
    assert_eq!(eval["status"], "passed", "{eval}");
}
