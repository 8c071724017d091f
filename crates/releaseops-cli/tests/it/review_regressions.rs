//! Regressions found in review, each named after the defect it pins.

use crate::common::Repo;

#[test]
fn legacy_history_with_path_traversal_names_is_refused_and_writes_nothing_outside() {
    let r = Repo::with_sample_tree();
    let hist = r.read(".releaseops/promotion_history.yaml");
    r.write(
        ".releaseops/promotion_history.yaml",
        &format!("{hist}- bundle_id: ../../../../PWNED\n  version: 1.0.0\n  to_env: ../../..\n  state: PROD\n"),
    );
    let o = r.run(&[
        "bundle",
        "create",
        "x",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ]);
    o.code(1);
    assert!(
        o.stderr.contains("promotion_history.yaml") && o.stderr.contains("bundle id"),
        "{}",
        o.stderr
    );
    assert!(
        !r.path().join("../PWNED.yaml").exists() && !std::path::Path::new("/PWNED.yaml").exists()
    );
}

#[test]
fn self_approval_and_double_counting_under_other_spellings_are_refused() {
    let r = Repo::initialized();
    r.write(
        ".releaseops/environments/prod.yaml",
        "environment: prod\nbundle_mappings: {}\npromotion_policy:\n  requires_eval: false\n  requires_approval: true\n  min_approvals: 2\n",
    );
    r.run_as(
        "Carol <carol@x>",
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
    // The creator under a bare email, and without an email at all.
    let o = r.run_as("carol@x", &["approve", "b", "1.0.0", "prod"]);
    o.code(1);
    assert!(o.stderr.contains("no self-approval"), "{}", o.stderr);
    let o = r.run_as("Carol", &["approve", "b", "1.0.0", "prod"]);
    o.code(1);
    assert!(o.stderr.contains("has no email"), "{}", o.stderr);
    // One person approving twice under two spellings counts once.
    r.run_as("Alice <alice@x>", &["approve", "b", "1.0.0", "prod"])
        .ok();
    let o = r.run_as("ALICE@X", &["approve", "b", "1.0.0", "prod"]);
    o.code(1);
    assert!(o.stderr.contains("already approved"), "{}", o.stderr);
}

#[test]
fn a_simulated_clock_is_recorded_and_reported() {
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
    let o = r.run_at("2099-01-01T00:00:00Z", &["promote", "b", "1.0.0", "dev"]);
    o.ok();
    assert!(o.stderr.contains("RELEASEOPS_NOW is set"), "{}", o.stderr);
    let h = r.run(&["--json", "history", "-n", "1"]).json();
    assert_eq!(h[0]["simulated_clock"], true);
    let v = r.run(&["--json", "history", "verify"]).json();
    assert_eq!(v["simulated_clock_records"], 1);
    // Out-of-order times do not hide later records from `env list --at`.
    r.run(&[
        "bundle",
        "create",
        "b",
        "-v",
        "2.0.0",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    r.run(&["promote", "b", "2.0.0", "dev"]).ok();
    let at = r
        .run(&["--json", "env", "list", "--at", "2098-01-01"])
        .json();
    assert_eq!(at["environments"][0]["bundles"][0]["version"], "2.0.0");
}

#[test]
fn a_version_rejected_for_staging_cannot_go_on_to_prod() {
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
    for env in ["dev", "staging"] {
        r.run(&["promote", "b", "1.0.0", env]).ok();
    }
    r.run(&["reject", "b", "1.0.0", "--env", "staging", "-r", "bad"])
        .ok();
    let o = r.run(&["--json", "promote", "b", "1.0.0", "prod"]);
    o.code(3);
    let j = o.json();
    let g = j["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["gate"] == "rejected")
        .cloned()
        .expect("gate");
    assert_eq!(g["status"], "failed", "{g}");
    // A rejection for a later stage does not block an earlier one.
    r.run(&[
        "bundle",
        "create",
        "c",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    r.run(&[
        "reject",
        "c",
        "1.0.0",
        "--env",
        "prod",
        "-r",
        "not for prod",
    ])
    .ok();
    r.run(&["promote", "c", "1.0.0", "dev"]).ok();
}

#[test]
fn concurrent_env_creates_both_land_in_the_pipeline() {
    for _ in 0..3 {
        let r = Repo::initialized();
        let a = r
            .command(&["env", "create", "qa", "--after", "dev"])
            .output();
        let mut b = r
            .command(&["env", "create", "canary", "--after", "staging"])
            .spawn()
            .expect("spawn");
        let a = a.expect("qa");
        assert!(a.status.success() && b.wait().expect("canary").success());
        let cfg = r.read(".releaseops/config.yaml");
        assert!(cfg.contains("- qa") && cfg.contains("- canary"), "{cfg}");
        r.run(&["history", "verify"]).ok();
    }
}

#[test]
fn an_absurd_soak_is_refused_not_a_panic() {
    let r = Repo::initialized();
    r.write(
        ".releaseops/environments/prod.yaml",
        "environment: prod\nbundle_mappings: {}\npromotion_policy:\n  requires_eval: false\n  requires_approval: false\n  soak_hours: 1e300\n",
    );
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
    let o = r.run(&["promote", "b", "1.0.0", "prod", "--dry-run"]);
    o.code(1);
    assert!(
        o.stderr
            .contains("soak_hours must be a number of hours from 0 to 87600"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_manifest_stripped_of_its_bundle_hash_is_refused() {
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
    let m = r.read(".releaseops/bundles/b/1.0.0.yaml");
    let stripped: String = m
        .lines()
        .filter(|l| !l.starts_with("bundle_hash:"))
        .map(|l| format!("{l}\n"))
        .collect();
    r.write(
        ".releaseops/bundles/b/1.0.0.yaml",
        &stripped.replace("model: m", "model: evil"),
    );
    let o = r.run(&["promote", "b", "1.0.0", "dev"]);
    o.code(1);
    assert!(o.stderr.contains("no bundle_hash"), "{}", o.stderr);
}

#[test]
fn commit_label_takes_only_a_sha() {
    let r = Repo::initialized();
    r.git(&["branch", "feature"]);
    let o = r.run(&[
        "bundle",
        "create",
        "b",
        "-a",
        "system=onboarding:commit-feature",
    ]);
    o.code(1);
    assert!(o.stderr.contains("is not a commit SHA"), "{}", o.stderr);
}
