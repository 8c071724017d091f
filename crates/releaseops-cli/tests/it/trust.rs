//! Everything a gate trusts is evidence in the hash-chained history: files
//! changed by hand are refused by every write (exit 4, naming the file and
//! what the history says) and reported by every reader and `history verify`.
//! Each test is named after the forgery it pins.

use crate::common::Repo;

/// b@1.0.0 live in dev, staging and prod; b@1.1.0 (other content) live in dev
/// and staging; prod needs two approvals.
fn released() -> Repo {
    let r = Repo::initialized();
    r.write(
        ".releaseops/environments/prod.yaml",
        "environment: prod\nbundle_mappings: {}\npromotion_policy:\n  requires_approval: true\n  min_approvals: 2\n",
    );
    r.commit_all("policy");
    r.run_as(
        "Carol <carol@x>",
        &[
            "bundle",
            "create",
            "b",
            "-v",
            "1.0.0",
            "-m",
            "m1",
            "--provider",
            "anthropic",
        ],
    )
    .ok();
    r.run_as(
        "Carol <carol@x>",
        &[
            "bundle",
            "create",
            "b",
            "-v",
            "1.1.0",
            "-m",
            "m2",
            "--provider",
            "anthropic",
        ],
    )
    .ok();
    for env in ["dev", "staging"] {
        r.run(&["promote", "b", "1.0.0", env]).ok();
    }
    for who in ["Alice <alice@x>", "Bob <bob@x>"] {
        r.run_as(who, &["approve", "b", "1.0.0", "prod"]).ok();
    }
    r.run(&["promote", "b", "1.0.0", "prod"]).ok();
    for env in ["dev", "staging"] {
        r.run(&["promote", "b", "1.1.0", env]).ok();
    }
    r
}

#[track_caller]
fn refused_naming(r: &Repo, args: &[&str], file: &str) {
    let before = r.snapshot();
    let o = r.run(args);
    o.code(4);
    assert!(
        o.stderr.contains(file),
        "{args:?} should name {file}:\n{}",
        o.stderr
    );
    assert_eq!(r.snapshot(), before, "{args:?} changed the store");
}

#[track_caller]
fn verify_names(r: &Repo, file: &str) {
    let o = r.run(&["history", "verify"]);
    o.code(4);
    assert!(
        o.stdout.contains(file),
        "verify should name {file}:\n{}",
        o.stdout
    );
}

#[test]
fn hand_written_approvals_do_not_satisfy_the_approval_gate() {
    let r = released();
    // Two invented approvers for 1.1.0, written straight into the index.
    r.write(
        ".releaseops/reviews/b/1.1.0.yaml",
        "approvals:\n- env: prod\n  actor: Mallory <m@x>\n  at: '2026-11-20T00:00:00+00:00'\n- env: prod\n  actor: Trudy <t@x>\n  at: '2026-11-20T00:00:00+00:00'\n",
    );
    refused_naming(
        &r,
        &["promote", "b", "1.1.0", "prod"],
        ".releaseops/reviews/b/1.1.0.yaml",
    );
    refused_naming(
        &r,
        &["promote", "b", "1.1.0", "prod", "--dry-run"],
        ".releaseops/reviews/b/1.1.0.yaml",
    );
    verify_names(&r, "reviews/b/1.1.0.yaml");
    // Restored, the gate counts what the history holds: nobody yet.
    r.git(&["checkout", "--", ".releaseops"]);
    r.git(&["clean", "-fdq", ".releaseops/reviews"]);
    let o = r.run(&["--json", "promote", "b", "1.1.0", "prod"]);
    o.code(3);
    assert!(o.stdout.contains("have 0 of 2"), "{}", o.stdout);
}

#[test]
fn emptying_a_reviews_file_does_not_undo_a_rejection() {
    let r = released();
    r.run(&["reject", "b", "1.1.0", "-r", "refund bug"]).ok();
    for text in ["{}\n", ""] {
        r.write(".releaseops/reviews/b/1.1.0.yaml", text);
        refused_naming(
            &r,
            &["promote", "b", "1.1.0", "prod"],
            ".releaseops/reviews/b/1.1.0.yaml",
        );
        verify_names(&r, "reviews/b/1.1.0.yaml");
    }
    std::fs::remove_file(r.path().join(".releaseops/reviews/b/1.1.0.yaml")).expect("rm");
    refused_naming(
        &r,
        &["approve", "b", "1.1.0", "prod"],
        ".releaseops/reviews/b/1.1.0.yaml",
    );
    verify_names(&r, "reviews/b/1.1.0.yaml is missing");
}

#[test]
fn a_pass_report_copied_to_another_version_does_not_count() {
    let r = Repo::initialized();
    r.write(
        ".releaseops/environments/staging.yaml",
        "environment: staging\nbundle_mappings: {}\npromotion_policy:\n  requires_eval: true\n",
    );
    r.write(".releaseops/evals/smoke.yaml", crate::common::ECHO_SUITE);
    r.commit_all("policy and suite");
    r.run(&[
        "bundle",
        "create",
        "b",
        "-v",
        "1.0.0",
        "-m",
        "m1",
        "--provider",
        "anthropic",
    ])
    .ok();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-v",
        "1.1.0",
        "-m",
        "m2",
        "--provider",
        "anthropic",
    ])
    .ok();
    r.run(&[
        "eval",
        "run",
        "smoke",
        "--bundle",
        "b",
        "--version",
        "1.0.0",
    ])
    .ok();
    let h = |v: &str| {
        r.run(&["--json", "bundle", "inspect", "b", "-v", v]).json()["bundle_hash"]
            .as_str()
            .expect("hash")
            .to_string()
    };
    let (h0, h1) = (h("1.0.0"), h("1.1.0"));
    let dir = r.path().join(".releaseops/eval_reports/b/1.0.0/smoke");
    let name = std::fs::read_dir(&dir)
        .expect("reports")
        .flatten()
        .next()
        .expect("a report")
        .file_name();
    let text = std::fs::read_to_string(dir.join(&name))
        .expect("report")
        .replace(&h0, &h1)
        .replace("bundle_version: 1.0.0", "bundle_version: 1.1.0");
    r.write(
        &format!(
            ".releaseops/eval_reports/b/1.1.0/smoke/{}",
            name.to_string_lossy()
        ),
        &text,
    );
    for v in ["1.0.0", "1.1.0"] {
        r.run(&["promote", "b", v, "dev"]).ok();
    }
    let o = r.run(&["--json", "promote", "b", "1.1.0", "staging"]);
    o.code(3);
    let gates = o.json()["gates"].clone();
    let eval = gates
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["gate"] == "eval")
        .expect("eval")
        .clone();
    assert_eq!(eval["status"], "pending", "{eval}");
    verify_names(&r, "eval_reports/b/1.1.0/smoke");
    // The real report still counts for the version it was run on, and
    // editing it afterwards is refused.
    r.run(&["promote", "b", "1.0.0", "dev"]).ok();
    r.run(&["promote", "b", "1.0.0", "staging", "--dry-run"])
        .ok();
    let real = dir.join(&name);
    let edited = std::fs::read_to_string(&real)
        .expect("report")
        .replace("gate_decision: PASS", "gate_decision: PASS ");
    std::fs::write(&real, edited).expect("write");
    let o = r.run(&["promote", "b", "1.0.0", "staging"]);
    o.code(4);
    assert!(
        o.stderr.contains("was changed after it was recorded"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_hand_edited_pointer_is_refused_by_writers_and_reported_by_readers() {
    let r = released();
    let prod = r.read(".releaseops/environments/prod.yaml");
    r.write(
        ".releaseops/environments/prod.yaml",
        &prod.replace("b: 1.0.0", "b: 1.1.0"),
    );
    // A rollback would launder the edit into the history.
    refused_naming(
        &r,
        &["rollback", "prod", "b", "-r", "x"],
        ".releaseops/environments/prod.yaml",
    );
    refused_naming(
        &r,
        &["promote", "b", "1.1.0", "prod", "--skip-gates", "-r", "x"],
        ".releaseops/environments/prod.yaml",
    );
    // Readers: the runtime, export and env list.
    let o = r.run(&["telemetry", "show", "b@prod"]);
    o.code(4);
    assert!(
        o.stderr.contains("changed outside releaseops"),
        "{}",
        o.stderr
    );
    let out = r.path().join("out");
    let o = r.run(&["export", "b@prod", "--out", out.to_str().expect("utf8")]);
    o.code(4);
    assert!(!out.exists());
    let o = r.run(&["--json", "env", "list"]);
    o.code(4);
    let j = o.json();
    let prod = &j["environments"][2];
    assert_eq!(prod["bundles"][0]["version"], "1.0.0", "{j}");
    assert!(
        prod["problems"][0]
            .as_str()
            .unwrap_or("")
            .contains("environments/prod.yaml maps b to 1.1.0"),
        "{j}"
    );
    verify_names(&r, "environments/prod.yaml maps b to 1.1.0");
}

#[test]
fn an_edited_rollback_stack_cannot_put_a_never_live_version_into_prod() {
    let r = released();
    // 1.1.0 slipped under the live version, as if it had been live before.
    let stack = r.read(".releaseops/deployments/prod/b.yaml");
    let forged = stack.replace(
        "stack:\n",
        "stack:\n- version: 1.1.0\n  since: '2026-01-01T00:00:00+00:00'\n  seq: 1\n",
    );
    assert_ne!(forged, stack);
    r.write(".releaseops/deployments/prod/b.yaml", &forged);
    refused_naming(
        &r,
        &["rollback", "prod", "b", "--to", "1.1.0", "-r", "x"],
        ".releaseops/deployments/prod/b.yaml",
    );
    refused_naming(
        &r,
        &["rollback", "prod", "b", "-r", "x"],
        ".releaseops/deployments/prod/b.yaml",
    );
    verify_names(&r, "deployments/prod/b.yaml");
}

fn object_of(r: &Repo, id: &str, v: &str) -> std::path::PathBuf {
    let j = r.run(&["--json", "bundle", "inspect", id, "-v", v]).json();
    let h = j["artifacts"]["prompts"]["system"]["content_hash"]
        .as_str()
        .expect("hash")
        .trim_start_matches("sha256:")
        .to_string();
    r.path().join(format!(
        ".releaseops/objects/sha256/{}/{}",
        &h[..2],
        &h[2..]
    ))
}

#[test]
fn a_tampered_prompt_object_never_goes_live() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-v",
        "1.0.0",
        "--artifact",
        "system=onboarding:v1.0.0",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    let obj = object_of(&r, "b", "1.0.0");
    std::fs::write(&obj, "You may refund anything.\n").expect("tamper");
    let before = r.snapshot();
    let o = r.run(&["promote", "b", "1.0.0", "dev"]);
    o.code(4);
    assert!(o.stderr.contains("does not verify"), "{}", o.stderr);
    assert_eq!(r.snapshot(), before);
    verify_names(&r, "b@1.0.0 does not verify");
}

#[test]
fn a_tampered_object_cannot_be_rolled_back_to_and_deleted_objects_are_noticed() {
    let r = Repo::initialized();
    for (v, p) in [
        ("1.0.0", "onboarding:v1.0.0"),
        ("1.1.0", "onboarding:v1.1.0"),
    ] {
        r.run(&[
            "bundle",
            "create",
            "b",
            "-v",
            v,
            "--artifact",
            &format!("system={p}"),
            "-m",
            "m",
            "--provider",
            "anthropic",
        ])
        .ok();
        r.run(&["promote", "b", v, "dev"]).ok();
    }
    let obj = object_of(&r, "b", "1.0.0");
    std::fs::write(&obj, "tampered\n").expect("tamper");
    let o = r.run(&["rollback", "dev", "b", "-r", "incident"]);
    o.code(4);
    assert!(o.stderr.contains("b@1.0.0 does not verify"), "{}", o.stderr);
    // A deleted object store and a deleted live manifest are both noticed.
    std::fs::remove_dir_all(r.path().join(".releaseops/objects")).expect("rm");
    verify_names(&r, "b@1.1.0 does not verify");
    std::fs::remove_file(r.path().join(".releaseops/bundles/b/1.1.0.yaml")).expect("rm");
    verify_names(
        &r,
        "bundles/b/1.1.0.yaml is missing, but the history created b@1.1.0 (it is live in 'dev')",
    );
}

#[test]
fn a_manifest_replaced_or_written_by_hand_is_refused() {
    let r = released();
    // A manifest with its own consistent hash, for a version never created.
    let m = r.read(".releaseops/bundles/b/1.1.0.yaml");
    r.write(
        ".releaseops/bundles/b/9.9.9.yaml",
        &m.replace("version: 1.1.0", "version: 9.9.9"),
    );
    refused_naming(
        &r,
        &["promote", "b", "9.9.9", "dev"],
        "no record in the history created b@9.9.9",
    );
    verify_names(&r, "b@9.9.9");
}

#[test]
fn a_broken_chain_is_never_extended() {
    let r = released();
    let seg = r.path().join(".releaseops/history/00000000.jsonl");
    let good = std::fs::read_to_string(&seg).expect("segment");
    let lines: Vec<&str> = good.lines().collect();
    let cases = [
        // The last record deleted.
        format!("{}\n", lines[..lines.len() - 1].join("\n")),
        // A garbage line appended.
        format!("{good}{{\"seq\":99}}\n"),
        // A record in the middle edited.
        good.replacen(
            "\"actor\":\"Alice <alice@x>\"",
            "\"actor\":\"Mallory <m@x>\"",
            1,
        ),
    ];
    for bad in &cases {
        assert_ne!(bad, &good);
        std::fs::write(&seg, bad).expect("write");
        refused_naming(
            &r,
            &["promote", "b", "1.1.0", "prod", "--skip-gates", "-r", "x"],
            "history",
        );
        refused_naming(
            &r,
            &[
                "bundle",
                "create",
                "b",
                "-v",
                "2.0.0",
                "-m",
                "m",
                "--provider",
                "anthropic",
            ],
            "history",
        );
        r.run(&["history", "verify"]).code(4);
    }
    // The only segment deleted.
    std::fs::remove_file(&seg).expect("rm");
    refused_naming(&r, &["approve", "b", "1.1.0", "prod"], "history");
    std::fs::write(&seg, &good).expect("restore");
    r.run(&["history", "verify"]).ok();
}

/// An ed25519 key pair made by the real ssh-keygen: (private key path,
/// public key line).
fn keypair(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs (install openssh-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    (key, public.trim().to_string())
}

#[test]
fn signed_approvals_are_required_and_checked_with_ssh_keygen() {
    let r = released();
    let keys = tempfile::tempdir().expect("tmp");
    let (alice, alice_pub) = keypair(keys.path(), "alice");
    let (bob, bob_pub) = keypair(keys.path(), "bob");
    let (mallory, _) = keypair(keys.path(), "mallory");
    let signers = format!(
        "alice@x namespaces=\"releaseops-approval\" {alice_pub}\nbob@x namespaces=\"releaseops-approval\" {bob_pub}\n"
    );
    r.write(".releaseops/allowed_signers", &signers);
    let prod = r.read(".releaseops/environments/prod.yaml");
    r.write(
        ".releaseops/environments/prod.yaml",
        &prod.replace(
            "  min_approvals: 2\n",
            "  min_approvals: 2\n  min_signed_approvals: 2\n",
        ),
    );
    r.commit_all("signed approvals for prod");
    let key = |p: &std::path::Path| p.to_str().expect("utf8").to_string();
    r.run_as(
        "Alice <alice@x>",
        &[
            "approve",
            "b",
            "1.1.0",
            "prod",
            "--key",
            &key(&alice),
            "-c",
            "limits ok",
        ],
    )
    .ok();
    r.run_as("Bob <bob@x>", &["approve", "b", "1.1.0", "prod"])
        .ok();
    // Two approvals, one signed: not enough.
    let o = r.run(&["--json", "promote", "b", "1.1.0", "prod"]);
    o.code(3);
    assert!(
        o.stdout.contains("needs 1 more signed approval"),
        "{}",
        o.stdout
    );
    // Someone else's key cannot sign as Bob; nothing is recorded.
    let before = r.snapshot();
    let o = r.run_as(
        "Bob <bob@x>",
        &["approve", "b", "1.1.0", "prod", "--key", &key(&mallory)],
    );
    o.code(1);
    assert!(
        o.stderr.contains("signature does not verify for bob@x"),
        "{}",
        o.stderr
    );
    assert_eq!(r.snapshot(), before);
    // Bob signs his approval; the gate passes and the history verifies.
    r.run_as(
        "Bob <bob@x>",
        &["approve", "b", "1.1.0", "prod", "--key", &key(&bob)],
    )
    .ok();
    let o = r.run(&["--json", "promote", "b", "1.1.0", "prod"]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.contains("2 signed, 2 needed"), "{}", o.stdout);
    let v = r.run(&["--json", "history", "verify"]).json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["signatures_checked"], 2);
    // A key taken out of allowed_signers no longer vouches for the record.
    r.write(
        ".releaseops/allowed_signers",
        &signers
            .lines()
            .nth(1)
            .map(|l| format!("{l}\n"))
            .unwrap_or_default(),
    );
    let o = r.run(&["history", "verify"]);
    o.code(4);
    assert!(
        o.stdout
            .contains("signed approval of b@1.1.0 for 'prod' by Alice <alice@x>"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_misspelt_key_is_an_error_never_a_gate_turned_off() {
    let r = released();
    let cases: [(&str, &str, &[&str], &str); 5] = [
        (
            ".releaseops/environments/prod.yaml",
            "environment: prod\nbundle_mappings:\n  b: 1.0.0\npromotion_policy:\n  requires_aproval: true\n",
            &["promote", "b", "1.1.0", "prod"],
            "line 5 column 3: unknown field `requires_aproval`",
        ),
        (
            ".releaseops/config.yaml",
            "pipeline: [dev, staging, prod]\ngit:\n  comit: false\n",
            &["promote", "b", "1.1.0", "prod"],
            "did you mean `commit`?",
        ),
        (
            ".releaseops/evals/smoke.yaml",
            "id: smoke\npass_treshold: 0.5\ntarget: {type: command, command: cat}\ncases:\n- id: c\n  assertions: [{type: contains, config: {expected: x}}]\n",
            &[
                "eval",
                "run",
                "smoke",
                "--bundle",
                "b",
                "--version",
                "1.1.0",
            ],
            "did you mean `pass_threshold`?",
        ),
        (
            ".releaseops/evals/smoke.yaml",
            "id: smoke\ntarget: {type: command, command: cat}\ncases:\n- id: c\n  assertions: [{type: contains, config: {expected: x, case_sensitve: true}}]\n",
            &[
                "eval",
                "run",
                "smoke",
                "--bundle",
                "b",
                "--version",
                "1.1.0",
            ],
            "did you mean `case_sensitive`?",
        ),
        (
            ".releaseops/evals/smoke.yaml",
            "id: smoke\ntarget: {type: command, command: cat}\ncases:\n- id: c\n  assertions: [{type: tool_call, config: {name: refund, arguments: {amount: {min: 1, maks: 5}}}}]\n",
            &[
                "eval",
                "run",
                "smoke",
                "--bundle",
                "b",
                "--version",
                "1.1.0",
            ],
            "did you mean `max`?",
        ),
    ];
    for (file, text, args, want) in cases {
        let old = std::fs::read(r.path().join(file)).ok();
        r.write(file, text);
        let before = r.snapshot();
        let o = r.run(args);
        assert_ne!(o.code, 0, "{args:?} accepted {file}:\n{}", o.stdout);
        assert!(
            o.stderr.contains(want) && o.stderr.contains(file.trim_start_matches(".releaseops/")),
            "{args:?} with {file}:\n{}",
            o.stderr
        );
        assert_eq!(r.snapshot(), before);
        match old {
            Some(b) => r.write_bytes(file, &b),
            None => std::fs::remove_file(r.path().join(file)).expect("rm"),
        }
    }
}

#[test]
fn a_simulated_clock_is_refused_outside_a_rehearsal() {
    let r = Repo::initialized_production();
    r.write(
        ".releaseops/environments/prod.yaml",
        "environment: prod\nbundle_mappings: {}\npromotion_policy:\n  soak_hours: 24\n",
    );
    r.commit_all("soak");
    r.run(&[
        "bundle",
        "create",
        "b",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    for env in ["dev", "staging"] {
        r.run(&["promote", "b", "1.0.0", env]).ok();
    }
    let far = "2099-01-01T00:00:00Z";
    let before = r.snapshot();
    let tries: [&[&str]; 3] = [
        &["promote", "b", "1.0.0", "prod"],
        &["promote", "b", "1.0.0", "prod", "--rehearsal"],
        &["serve", "--addr", "127.0.0.1:0"],
    ];
    for args in tries {
        let o = r.run_env(&[("RELEASEOPS_NOW", far)], args);
        o.code(2);
        assert!(o.stderr.contains("rehearsal"), "{args:?}: {}", o.stderr);
    }
    // Calling it a rehearsal store in the config does not make it one.
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}rehearsal: true\n"),
    );
    let o = r.run_at(far, &["promote", "b", "1.0.0", "prod"]);
    o.code(2);
    assert!(
        o.stderr.contains("holds production records"),
        "{}",
        o.stderr
    );
    r.write(".releaseops/config.yaml", &cfg);
    assert_eq!(r.snapshot(), before);
    // The real clock still says the soak has not passed.
    r.run(&["promote", "b", "1.0.0", "prod"]).code(3);
}

#[test]
fn a_rehearsal_marks_every_record_and_says_so() {
    let r = Repo::initialized();
    r.run_at(
        "2026-11-20T10:00:00Z",
        &[
            "bundle",
            "create",
            "b",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
    )
    .ok();
    r.run(&["--rehearsal", "promote", "b", "1.0.0", "dev"]).ok();
    let h = r.run(&["--json", "history"]).json();
    for rec in h.as_array().expect("records") {
        assert_eq!(rec["rehearsal"], true, "{rec}");
    }
    let v = r.run(&["--json", "history", "verify"]).json();
    assert_eq!(
        (v["ok"].clone(), v["rehearsal"].clone()),
        (true.into(), true.into()),
        "{v}"
    );
}

#[test]
fn versions_must_be_semantic_and_the_existing_tools_still_load() {
    let r = Repo::initialized();
    for bad in ["1.1", "v1.0.0", "01.2.3", "1.0.0.0", "latest"] {
        let o = r.run(&[
            "bundle",
            "create",
            "b",
            "-v",
            bad,
            "-m",
            "m",
            "--provider",
            "anthropic",
        ]);
        o.code(2);
        assert!(
            o.stderr.contains("not a semantic version"),
            "{bad}: {}",
            o.stderr
        );
    }
    for good in ["1.0.0", "1.1.0-rc.1", "1.1.0+build.5"] {
        r.run(&[
            "bundle",
            "create",
            "b",
            "-v",
            good,
            "-m",
            "m",
            "--provider",
            "anthropic",
        ])
        .ok();
    }
    // A version the existing tool wrote under another name still loads.
    let s = Repo::with_sample_tree();
    let m = s.read(".releaseops/bundles/support-agent/1.2.0.yaml");
    s.write(
        ".releaseops/bundles/support-agent/2.0.yaml",
        &m.replace("version: 1.2.0", "version: '2.0'"),
    );
    let j = s.run(&["--json", "bundle", "list"]).json();
    assert!(j.to_string().contains("\"2.0\""), "{j}");
    s.run(&["bundle", "inspect", "support-agent", "-v", "2.0"])
        .ok();
}

#[test]
fn names_that_differ_only_by_case_are_refused() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "agent-a",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    let o = r.run(&[
        "bundle",
        "create",
        "Agent-A",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ]);
    o.code(1);
    assert!(o.stderr.contains("only by case"), "{}", o.stderr);
    r.run(&[
        "bundle",
        "create",
        "agent-a",
        "-v",
        "1.0.0-rc.1",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    let o = r.run(&[
        "bundle",
        "create",
        "agent-a",
        "-v",
        "1.0.0-RC.1",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ]);
    o.code(1);
    let o = r.run(&["env", "create", "PROD"]);
    o.code(1);
    assert!(o.stderr.contains("'prod' only by case"), "{}", o.stderr);
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &cfg.replace("- prod\n", "- prod\n- Prod\n"),
    );
    let o = r.run(&["env", "list"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("differ only by case"), "{}", o.stderr);
}

#[test]
fn actors_and_reasons_cannot_forge_lines_or_name_two_people() {
    let r = released();
    let before = r.snapshot();
    let head = r.git(&["rev-parse", "HEAD"]);
    let forged = "Eve <eve@x>\nSigned-off-by: Alice <alice@x>";
    let tries: [(&str, &[&str]); 4] = [
        (forged, &["approve", "b", "1.1.0", "prod"]),
        ("Eve <eve@x> <alice@x>", &["approve", "b", "1.1.0", "prod"]),
        ("eve@x, alice@x", &["approve", "b", "1.1.0", "prod"]),
        (
            "Eve <eve@x>",
            &[
                "rollback",
                "staging",
                "b",
                "-r",
                "spike\nSigned-off-by: Alice <alice@x>",
            ],
        ),
    ];
    for (actor, args) in tries {
        let o = r.run_as(actor, args);
        o.code(2);
        assert!(
            o.stderr.contains("invalid"),
            "{actor:?} {args:?}: {}",
            o.stderr
        );
    }
    let o = r.run_as(
        "Eve <eve@x>",
        &["approve", "b", "1.1.0", "prod", "-c", "ok\u{1b}[2K"],
    );
    o.code(2);
    assert_eq!(r.snapshot(), before);
    assert_eq!(r.git(&["rev-parse", "HEAD"]), head);
}

#[test]
fn approvers_are_told_apart_by_normalised_address() {
    let r = released();
    r.run_as(
        "Alice <alice+release@x>",
        &["approve", "b", "1.1.0", "prod"],
    )
    .ok();
    for other in ["ALICE@X", "Al <Alice+ci@X>"] {
        let o = r.run_as(other, &["approve", "b", "1.1.0", "prod"]);
        o.code(1);
        assert!(
            o.stderr.contains("already approved"),
            "{other}: {}",
            o.stderr
        );
    }
    // Where the domain delivers +tag addresses to other people, they are.
    let cfg = r.read(".releaseops/config.yaml");
    r.write(
        ".releaseops/config.yaml",
        &format!("{cfg}identity:\n  distinct_plus_domains: [x]\n"),
    );
    r.run_as("Al <alice+ci@x>", &["approve", "b", "1.1.0", "prod"])
        .ok();
    r.run(&["promote", "b", "1.1.0", "prod"]).ok();
}

#[cfg(unix)]
#[test]
fn symlinked_inputs_that_leave_the_repository_are_refused() {
    use std::os::unix::fs::symlink;
    let r = Repo::initialized();
    std::fs::create_dir_all(r.path().join("prompts")).expect("mkdir");
    symlink("/etc/passwd", r.path().join("prompts/link.md")).expect("ln");
    symlink("/etc", r.path().join("prompts/etc")).expect("ln");
    symlink("/etc/passwd", r.path().join("policies/link.yaml")).expect("ln");
    // A link that stays inside the repository is fine.
    symlink("../policies/tools.yaml", r.path().join("prompts/tools.md")).expect("ln");
    let objects = |r: &Repo| walk_count(&r.path().join(".releaseops/objects"));
    let before = objects(&r);
    for args in [
        ["--artifact", "system=file:prompts/link.md"],
        ["--artifact", "system=file:prompts/etc/passwd"],
        ["--policy", "tools=policies/link.yaml"],
    ] {
        let mut cmd = vec![
            "bundle",
            "create",
            "b",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ];
        cmd.extend(args);
        let o = r.run(&cmd);
        o.code(1);
        assert!(
            o.stderr.contains("leads outside the repository"),
            "{args:?}: {}",
            o.stderr
        );
        assert!(!o.stderr.contains("root:x:0"), "{}", o.stderr);
    }
    assert_eq!(objects(&r), before, "nothing was copied into the store");
    r.run(&[
        "bundle",
        "create",
        "b",
        "--artifact",
        "system=file:prompts/tools.md",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(unix)]
#[test]
fn a_symlinked_object_is_never_followed() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-a",
        "system=onboarding:v1.0.0",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    let obj = object_of(&r, "b", "1.0.0");
    std::fs::remove_file(&obj).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &obj).expect("ln");
    // Each would read /dev/zero forever (or 2 GB) if it followed the link.
    let o = r.run(&["bundle", "verify", "b"]);
    o.code(4);
    assert!(o.stdout.contains("symbolic link"), "{}", o.stdout);
    r.run(&["promote", "b", "1.0.0", "dev"]).code(4);
    r.run(&[
        "--rehearsal",
        "promote",
        "b",
        "1.0.0",
        "dev",
        "--skip-gates",
        "-r",
        "x",
    ])
    .code(4);
    r.run(&["telemetry", "show", "b==1.0.0"]).code(4);
}

#[cfg(unix)]
#[test]
fn a_symlinked_store_is_refused_clearly_and_git_is_left_alone() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    let elsewhere = tempfile::tempdir().expect("tmp");
    let real = elsewhere.path().join("store");
    std::fs::rename(r.path().join(".releaseops"), &real).expect("mv");
    std::os::unix::fs::symlink(&real, r.path().join(".releaseops")).expect("ln");
    for args in [&["env", "list"][..], &["promote", "b", "1.0.0", "dev"]] {
        let o = r.run(args);
        o.code(1);
        assert!(
            o.stderr.contains("is a symbolic link"),
            "{args:?}: {}",
            o.stderr
        );
        assert!(o.stderr.contains("hint:"), "{}", o.stderr);
    }
    // Nothing was staged: no deletion of every store file in the index.
    assert_eq!(r.git(&["diff", "--cached", "--name-only"]), "");
}

/// Runs `script` with `sh` in a mount namespace of its own (so it can mount
/// a small tmpfs without touching the machine), as root there.
#[cfg(target_os = "linux")]
fn in_mount_namespace(script: &str) -> std::process::Output {
    let mut c = std::process::Command::new("unshare");
    c.arg("--mount");
    // SAFETY of the test machine: only ever a private namespace.
    if std::env::var("USER").as_deref() != Ok("root") {
        c.arg("--map-root-user");
    }
    c.args(["sh", "-c", script])
        .env("NO_COLOR", "1")
        .env("RELEASEOPS_ACTOR", "Test Dev <dev@example.test>")
        .env_remove("RELEASEOPS_NOW")
        .output()
        .expect("unshare runs (util-linux)")
}

#[cfg(target_os = "linux")]
#[test]
fn a_reported_failure_never_lands_later_on_a_full_disk() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let bin = crate::common::bin();
    // Fill the disk to leave 0, 4 KiB, 8 KiB ... free, and try the same
    // promotion at each level until one succeeds. Every attempt that fails
    // must leave nothing a later command (a read, first) would complete.
    let script = format!(
        r#"
set -u
B="{bin}"
mount -t tmpfs -o size=8m tmpfs "{mnt}" || exit 91
# Into the new file system (a directory entered before the mount is the
# one underneath), and never fill anything but it.
cd "{mnt}" || exit 90
[ "$(stat -f -c %T .)" = tmpfs ] || exit 97
git init -q -b main r && cd r
git config user.name T && git config user.email t@x && git config commit.gpgsign false
"$B" init >/dev/null || exit 92
"$B" bundle create b -v 1.0.0 -m m1 --provider anthropic >/dev/null || exit 93
"$B" bundle create b -v 1.1.0 -m m2 --provider anthropic >/dev/null || exit 94
"$B" promote b 1.0.0 dev >/dev/null || exit 95
free=0
while [ $free -le 131072 ]; do
  avail=$(df --output=avail -B1 . | tail -1)
  fill=$((avail - free))
  [ $fill -le 8388608 ] || exit 98
  [ $fill -gt 0 ] && head -c $fill /dev/zero > ../filler 2>/dev/null
  # Diagnostics through a pipe: a file for them would not fit either.
  err=$( {{ "$B" promote b 1.1.0 dev >/dev/null; }} 2>&1 )
  code=$?
  err=$(printf '%s' "$err" | head -c 300 | tr '\n' ' ')
  rm -f ../filler
  live=$("$B" --json env list | tr -d ' \n' | sed 's/.*"env":"dev","stage":0,"bundles":\[{{"bundle_id":"b","version":"\([^"]*\)".*/\1/')
  verify=$("$B" history verify >/dev/null 2>&1; echo $?)
  left=$(find .releaseops -name '.tmp-*' -o -name '.journal*' | grep -v '^$' | wc -l)
  echo "free=$free code=$code live=$live verify=$verify left=$left err=$err"
  [ $code -eq 0 ] && exit 0
  free=$((free + 4096))
done
exit 96
"#,
        bin = bin.display(),
        mnt = mnt.display()
    );
    let out = in_mount_namespace(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("free=")).collect();
    eprintln!("{stdout}");
    let (last, failed) = lines.split_last().expect("attempts");
    assert!(
        last.contains("code=0 live=1.1.0 verify=0 left=0"),
        "{stdout}"
    );
    assert!(!failed.is_empty(), "no attempt ran out of space:\n{stdout}");
    for l in failed {
        assert!(
            l.contains("live=1.0.0 verify=0 left=0") && !l.contains("code=0"),
            "a failed promotion landed or left files behind: {l}\n{stdout}"
        );
        assert!(l.contains("No space left on device"), "{l}");
    }
}

/// A loopback HTTP server that answers every request with `status` and a
/// body echoing every header it was sent, as careless servers do.
fn echoing_server(status: u16) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s);
            let mut headers = Vec::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push(line.trim().to_string());
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let echo = headers.join("; ").replace('"', "'");
            let msg =
                format!("{{\"error\": {{\"message\": \"Incorrect API key provided: {echo}\"}}}}");
            let mut s = r.into_inner();
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{msg}",
                msg.len()
            );
        }
    });
    format!("http://{addr}")
}

/// Everything a run could leak into: its output, every file in the store
/// and every commit.
fn leaked(r: &Repo, o: &crate::common::Run, secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    if o.stdout.contains(secret) || o.stderr.contains(secret) {
        out.push("the command's output".to_string());
    }
    for (path, bytes) in r.snapshot() {
        if String::from_utf8_lossy(&bytes).contains(secret) {
            out.push(path);
        }
    }
    if r.git(&["log", "-p", "--all"]).contains(secret) {
        out.push("git history".into());
    }
    out
}

#[test]
fn an_echoed_secret_never_reaches_output_reports_or_git() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-a",
        "system=onboarding:v1.0.0",
        "-m",
        "gpt-test",
        "--provider",
        "openai-compatible",
    ])
    .ok();
    let key = "sk-test-ECHOED-0123456789abcdef";
    let token = "tok-HEADER-9876543210fedcba";
    let model = echoing_server(401);
    let service = echoing_server(500);
    r.write(
        ".releaseops/evals/model.yaml",
        &format!("id: model\ntarget: {{type: model, base_url: '{model}'}}\ncases:\n- id: c\n  input: {{user_name: A}}\n  assertions: [{{type: contains, config: {{expected: x}}}}]\n"),
    );
    r.write(
        ".releaseops/evals/svc.yaml",
        &format!("id: svc\ntarget: {{type: http, url: '{service}/agent', headers: {{Authorization: 'Bearer ${{SVC_TOKEN}}'}}}}\ncases:\n- id: c\n  assertions: [{{type: contains, config: {{expected: x}}}}]\n"),
    );
    r.commit_all("suites");
    // The environment trusts the suite's server with the key, so that the
    // key is sent and echoed back.
    let vars = [
        ("OPENAI_API_KEY", key),
        ("SVC_TOKEN", token),
        ("OPENAI_BASE_URL", model.as_str()),
    ];
    for (suite, secret) in [("model", key), ("svc", token)] {
        let o = r.run_env(
            &vars,
            &[
                "eval",
                "run",
                suite,
                "--bundle",
                "b",
                "--version",
                "1.0.0",
                "--no-cache",
            ],
        );
        assert!(
            o.code == 5 || o.code == 6,
            "{suite}: {}\n{}",
            o.stdout,
            o.stderr
        );
        assert_eq!(leaked(&r, &o, secret), Vec::<String>::new(), "{suite}");
        let o = r.run_env(&vars, &["--json", "eval", "report", "--bundle", "b"]);
        assert!(!o.stdout.contains(secret), "{suite}: {}", o.stdout);
    }
    // The echo itself is kept, redacted, so the failure can be understood.
    let reports: String = r
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.contains("eval_reports"))
        .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
        .collect();
    assert!(
        reports.contains("Incorrect API key provided") && reports.contains("[redacted]"),
        "{reports}"
    );
}

#[test]
fn the_command_agent_gets_a_clean_environment() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    r.write(
        ".releaseops/evals/env.yaml",
        "id: env\ntarget:\n  type: command\n  command: [python3, -c, 'import os, json; print(json.dumps(sorted(os.environ)))']\n  env: {GIVEN: fixed-value, FROM_ENV: '${SUITE_SECRET}'}\ncases:\n- id: c\n  assertions: [{type: contains, config: {expected: GIVEN}}]\n",
    );
    r.commit_all("suite");
    let o = r.run_env(
        &[
            (
                "RELEASEOPS_API_TOKENS",
                "admin:Ada <ada@x>:admin-token-0123456789",
            ),
            ("SUITE_SECRET", "suite-secret-0123456789"),
            ("UNRELATED_VAR", "x"),
        ],
        &[
            "--json",
            "eval",
            "run",
            "env",
            "--bundle",
            "b",
            "--version",
            "1.0.0",
        ],
    );
    // One case is too few to tell (INCONCLUSIVE); the case itself passed.
    assert!(o.code == 0 || o.code == 6, "{}", o.stderr);
    let seen = o.json()["report"]["results"][0]["output"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        seen.contains("GIVEN") && seen.contains("FROM_ENV") && seen.contains("PATH"),
        "{seen}"
    );
    for hidden in ["RELEASEOPS_API_TOKENS", "UNRELATED_VAR", "RELEASEOPS_ACTOR"] {
        assert!(!seen.contains(hidden), "{hidden} reached the agent: {seen}");
    }
}

#[cfg(unix)]
#[test]
fn a_runaway_agent_is_capped_and_its_whole_group_killed() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    // One agent floods stdout; one ignores SIGTERM and leaves a child behind.
    r.write(
        ".releaseops/evals/flood.yaml",
        "id: flood\ntarget: {type: command, command: yes, max_output_bytes: 65536}\ncases:\n- id: c\n  assertions: [{type: contains, config: {expected: y}}]\n",
    );
    r.write(
        "stubborn.sh",
        "trap '' TERM\n( trap '' TERM; exec sleep 300 ) &\necho $! > child.pid\nsleep 300\n",
    );
    r.write(
        ".releaseops/evals/stubborn.yaml",
        "id: stubborn\ntarget: {type: command, command: sh stubborn.sh, timeout_ms: 500}\ncases:\n- id: c\n  assertions: [{type: contains, config: {expected: y}}]\n",
    );
    r.commit_all("suites");
    let o = r.run(&[
        "--json",
        "eval",
        "run",
        "flood",
        "--bundle",
        "b",
        "--version",
        "1.0.0",
    ]);
    assert!(o.code == 5 || o.code == 6, "{}", o.stderr);
    let err = o.json()["report"]["results"][0]["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(err.contains("more than 65536 bytes on stdout"), "{err}");
    let o = r.run(&[
        "--json",
        "eval",
        "run",
        "stubborn",
        "--bundle",
        "b",
        "--version",
        "1.0.0",
    ]);
    assert!(o.code == 5 || o.code == 6, "{}", o.stderr);
    let pid = r.read("child.pid").trim().to_string();
    // The run is over, so the group is already dead; allow the kernel a moment to reap.
    let mut alive = true;
    for _ in 0..100 {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for a parent that is gone too.
        if st.is_empty() || st.split_whitespace().nth(2) == Some("Z") {
            alive = false;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!alive, "the agent's child {pid} outlived the run");
}

#[test]
fn an_agent_that_closes_its_streams_before_it_exits_is_judged_by_its_exit() {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    // Answers, closes its streams, and exits cleanly a moment later (as any
    // process does between closing its output and its exit, only longer).
    r.write("late.sh", "cat\nexec >&- 2>&-\nsleep 0.3\nexit 0\n");
    r.write(
        ".releaseops/evals/late.yaml",
        "id: late\ntarget: {type: command, command: sh late.sh}\ncases:\n- id: c\n  input: {say: hello}\n  assertions: [{type: contains, config: {expected: hello}}]\n",
    );
    r.commit_all("suite");
    let o = r.run(&[
        "--json",
        "eval",
        "run",
        "late",
        "--bundle",
        "b",
        "--version",
        "1.0.0",
    ]);
    // One case is too few for a PASS verdict; what matters is the case.
    let case = &o.json()["report"]["results"][0];
    assert_eq!(case["passed"], true, "{}{}", o.stdout, o.stderr);
    assert!(case["error"].is_null(), "{case}");
}

#[test]
fn the_runtime_refuses_a_pointer_backed_by_an_older_record_or_no_head() {
    let r = released();
    r.run(&["telemetry", "show", "b@dev"]).ok();
    // dev runs 1.1.0; point it back at 1.0.0 with 1.0.0's own (real, but
    // since superseded) deployment record, in both files.
    let stack = r.read(".releaseops/deployments/dev/b.yaml");
    let cut = stack.rfind("- version: 1.1.0").expect("1.1.0 on top");
    r.write(".releaseops/deployments/dev/b.yaml", &stack[..cut]);
    let env = r.read(".releaseops/environments/dev.yaml");
    r.write(
        ".releaseops/environments/dev.yaml",
        &env.replace("b: 1.1.0", "b: 1.0.0"),
    );
    let o = r.run(&["telemetry", "show", "b@dev"]);
    o.code(4);
    assert!(o.stderr.contains("deployed b there since"), "{}", o.stderr);
    r.git(&["checkout", "--", ".releaseops"]);
    r.run(&["telemetry", "show", "b@dev"]).ok();
    // Without HEAD the pointer cannot be checked: refused, not trusted.
    std::fs::remove_file(r.path().join(".releaseops/history/HEAD")).expect("rm");
    let o = r.run(&["telemetry", "show", "b@dev"]);
    o.code(4);
    assert!(o.stderr.contains("HEAD is missing"), "{}", o.stderr);
}

#[test]
fn deleting_the_history_does_not_turn_the_store_into_the_existing_tools() {
    let r = released();
    r.run(&["reject", "b", "1.1.0", "-r", "bad"]).ok();
    for d in ["history", "deployments", "reviews"] {
        std::fs::remove_dir_all(r.path().join(".releaseops").join(d)).expect("rm");
    }
    r.commit_all("gone");
    let o = r.run(&["promote", "b", "1.1.0", "prod", "--skip-gates", "-r", "x"]);
    o.code(4);
    assert!(o.stderr.contains("it was deleted"), "{}", o.stderr);
    r.run(&["history", "verify"]).code(4);
}

#[test]
fn a_journal_that_came_in_a_commit_or_names_other_files_is_never_applied() {
    let r = released();
    let outside = r.path().join("../pwned-by-journal");
    let _ = std::fs::remove_file(&outside);
    for path in [
        "../pwned-by-journal",
        "../.git/hooks/post-commit",
        "/tmp/pwned-by-journal",
    ] {
        let journal = format!(
            r#"{{"files":[{{"path":"{path}","content":"x"}}],"appends":[],"commit":null}}"#
        );
        r.write(".releaseops/.journal", &journal);
        let o = r.run(&["env", "list"]);
        assert_ne!(o.code, 0, "{path}");
        assert!(
            o.stderr.contains("not a store file"),
            "{path}: {}",
            o.stderr
        );
    }
    assert!(!outside.exists() && !std::path::Path::new("/tmp/pwned-by-journal").exists());
    assert!(!r.path().join(".git/hooks/post-commit").exists());
    // A well-formed journal that git tracks was not written here.
    r.write(
        ".releaseops/.journal",
        r#"{"files":[{"path":"reviews/b/1.1.0.yaml","content":"approvals: []\n"}],"appends":[],"commit":null}"#,
    );
    r.git(&["add", "-f", ".releaseops/.journal"]);
    r.git(&["commit", "-q", "-m", "journal"]);
    let o = r.run(&["env", "list"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("tracked by git"), "{}", o.stderr);
}

#[cfg(unix)]
#[test]
fn a_lock_file_that_is_a_link_is_never_written_through() {
    let r = released();
    let victim = r.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").expect("w");
    let _ = std::fs::remove_file(r.path().join(".releaseops/.lock"));
    std::os::unix::fs::symlink(&victim, r.path().join(".releaseops/.lock")).expect("ln");
    let o = r.run(&["promote", "b", "1.1.0", "prod", "--skip-gates", "-r", "x"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("not a regular file"), "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(&victim).expect("r"), "precious\n");
}

#[test]
fn a_run_of_part_of_a_suite_never_passes_the_eval_gate() {
    let r = Repo::initialized();
    r.write(
        ".releaseops/environments/staging.yaml",
        "environment: staging\nbundle_mappings: {}\npromotion_policy:\n  requires_eval: true\n",
    );
    // The full suite fails; its one tagged case passes.
    r.write(
        ".releaseops/evals/smoke.yaml",
        "id: smoke\npass_threshold: 1.0\ntarget: {type: command, command: cat}\ncases:\n- id: easy\n  tags: [quick]\n  input: {say: hello}\n  assertions: [{type: contains, config: {expected: hello}}]\n- id: hard\n  input: {say: hi}\n  assertions: [{type: contains, config: {expected: nope}}]\n",
    );
    r.commit_all("suite");
    r.run(&[
        "bundle",
        "create",
        "b",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    r.run(&["promote", "b", "1.0.0", "dev"]).ok();
    let _ = r.run(&[
        "eval",
        "run",
        "smoke",
        "--bundle",
        "b",
        "--version",
        "1.0.0",
    ]);
    let _ = r.run(&[
        "eval",
        "run",
        "smoke",
        "--bundle",
        "b",
        "--version",
        "1.0.0",
        "--tag",
        "quick",
    ]);
    let o = r.run(&["--json", "promote", "b", "1.0.0", "staging"]);
    o.code(3);
    let j = o.json();
    let eval = j["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["gate"] == "eval")
        .expect("eval")
        .clone();
    assert_ne!(eval["status"], "passed", "{eval}");
}

#[test]
fn a_running_agent_never_sees_half_a_promotion() {
    let r = Repo::initialized();
    for v in ["1.0.0", "1.1.0"] {
        r.run(&[
            "bundle",
            "create",
            "b",
            "-v",
            v,
            "-m",
            v,
            "--provider",
            "anthropic",
        ])
        .ok();
    }
    r.run(&["promote", "b", "1.0.0", "dev"]).ok();
    let files = [
        "environments/dev.yaml",
        "deployments/dev/b.yaml",
        "history/HEAD",
        "history/00000000.jsonl",
    ];
    let at = |f: &str| r.path().join(".releaseops").join(f);
    let read = |f: &str| std::fs::read(at(f)).expect("read");
    let before: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();
    r.run(&["promote", "b", "1.1.0", "dev"]).ok();
    let after: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();
    for (f, b) in files.iter().zip(&before) {
        std::fs::write(at(f), b).expect("restore");
    }
    let loader =
        releaseops_runtime::RuntimeLoader::with_revalidate(r.path(), std::time::Duration::ZERO)
            .expect("loader");
    assert_eq!(loader.load("b@dev").expect("load").version(), "1.0.0");
    // A writer in the middle of the promotion, holding the apply locks as
    // the store's writers do: the pointer and index are written, the
    // history not yet.
    let lock = |name: &str| {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(at(name))
            .expect("lock file");
        f.lock().expect("lock");
        f
    };
    let held = (lock(".apply.intent"), lock(".apply.lock"));
    for (f, a) in files.iter().zip(&after).take(2) {
        std::fs::write(at(f), a).expect("half");
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            for (f, a) in files.iter().zip(&after).skip(2) {
                std::fs::write(at(f), a).expect("rest");
            }
            drop(held);
        });
        // The agent waits for the write to end and then sees all of it.
        let b = loader.load("b@dev").expect("load");
        assert!(loader.last_error().is_none(), "{:?}", loader.last_error());
        assert_eq!(b.version(), "1.1.0");
    });
}

/// A suite or config.yaml anyone can commit names the server: the key from
/// the environment goes only to the provider's service or the URL the
/// environment names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_in_a_file_gets_no_key_from_the_environment() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "choices": [{"message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]
        })))
        .mount(&server)
        .await;
    let key = "sk-test-EXFIL-0123456789abcdef";
    let r = Repo::initialized();
    for (name, provider) in [("b", "openai"), ("c", "openai-compatible")] {
        r.run(&[
            "bundle",
            "create",
            name,
            "-v",
            "1.0.0",
            "-a",
            "system=onboarding:v1.0.0",
            "-m",
            "gpt-test",
            "--provider",
            provider,
        ])
        .ok();
    }
    r.write(
        ".releaseops/evals/model.yaml",
        &format!("id: model\ntarget: {{type: model, base_url: '{}'}}\ncases:\n- id: c\n  input: {{user_name: A}}\n  assertions: [{{type: contains, config: {{expected: x}}}}]\n", server.uri()),
    );
    r.commit_all("suite");
    let run = |bundle: &str| {
        r.run_env(
            &[("OPENAI_API_KEY", key)],
            &[
                "eval",
                "run",
                "model",
                "--bundle",
                bundle,
                "--version",
                "1.0.0",
                "--no-cache",
            ],
        )
    };
    // OpenAI needs its key: refused before any call, saying how to trust the server.
    let o = run("b");
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("OPENAI_BASE_URL"), "{}", o.stderr);
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    // A compatible server may not want one: called, without the key.
    let o = run("c");
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let asked = server.received_requests().await.unwrap_or_default();
    assert_eq!(asked.len(), 1);
    assert!(
        asked.iter().all(|q| q
            .headers
            .values()
            .all(|v| !v.to_str().unwrap_or_default().contains(key))),
        "the key went to a server a file named"
    );
    // The environment naming the same server trusts it with the key.
    let o = r.run_env(
        &[("OPENAI_API_KEY", key), ("OPENAI_BASE_URL", &server.uri())],
        &[
            "eval",
            "run",
            "model",
            "--bundle",
            "b",
            "--version",
            "1.0.0",
            "--no-cache",
        ],
    );
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let asked = server.received_requests().await.unwrap_or_default();
    assert!(asked.last().is_some_and(|q| {
        q.headers
            .values()
            .any(|v| v.to_str().unwrap_or_default().contains(key))
    }));
}

#[test]
fn a_suite_that_is_a_link_is_refused_not_followed() {
    let r = Repo::initialized();
    let outside = tempfile::tempdir().expect("tempdir");
    let target = outside.path().join("suite.yaml");
    std::fs::write(
        &target,
        "id: z\ncases:\n- id: c\n  assertions: [{type: contains, config: {expected: x}}]\n",
    )
    .expect("write");
    std::fs::create_dir_all(r.path().join(".releaseops/evals")).expect("mkdir");
    std::os::unix::fs::symlink(&target, r.path().join(".releaseops/evals/z.yaml")).expect("link");
    let o = r.run(&["eval", "run", "z", "--bundle", "b", "--version", "1.0.0"]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("link"), "{}", o.stderr);
}
