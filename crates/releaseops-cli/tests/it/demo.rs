//! The README's first command: `releaseops demo` walks a sample agent through
//! a whole release offline, and leaves a project whose history verifies.

use crate::common::releaseops;

#[test]
fn the_demo_runs_a_whole_release_and_leaves_a_consistent_project() {
    let keep = tempfile::tempdir().expect("temp dir");
    let dir = keep.path().join("project");
    let out = releaseops()
        .args(["demo", "--keep"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .env_remove("RELEASEOPS_ACTOR")
        .output()
        .expect("run releaseops demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        // The eval catches the prompt change and names the failing case and judge.
        "- large_refund_goes_to_a_manager: tool_call:",
        "Blocked: support-agent v1.1.0 -> prod",
        "pipeline  FAILED support-agent@1.2.0 is not live in 'canary'",
        "rejected  FAILED support-agent@1.2.0 was rejected",
        // The decision agent gates prod, offline: no evidence yet, then GO;
        // it says NO_GO to the failing 1.1.0, is overridden, and learns from
        // the rollback that follows.
        "agent     FAILED agent dec-000001 says NO_GO",
        "agent     PASSED agent dec-000002 says GO",
        "dec-000003 NO_GO",
        "as rolled_back: it learns from it",
        // Production traffic found the regression before the rollback.
        "Verdict:   regression",
        // The incident explained offline by the line that changed.
        "follows prompts/onboarding@v1.1.0 line 3",
        "<- changed in 1.1.0",
        "+ You may issue refunds up to 150 dollars using the issue_refund tool.",
        "issue_refund",
        "OK 19 records chain correctly",
        "does not chain to record 7",
    ] {
        assert!(
            stdout.contains(step),
            "demo output lacks {step:?}:\n{stdout}"
        );
    }

    // What the demo left behind is a real project: verified, prod rolled back.
    let verify = releaseops()
        .args(["history", "verify"])
        .current_dir(&dir)
        .output()
        .expect("run history verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let envs = releaseops()
        .args(["--json", "env", "list"])
        .current_dir(&dir)
        .output()
        .expect("run env list");
    let v: serde_json::Value = serde_json::from_slice(&envs.stdout).expect("env list JSON");
    let prod = v["environments"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["env"] == "prod"))
        .expect("prod listed");
    assert_eq!(prod["bundles"][0]["version"], "1.0.0", "{prod}");
}
