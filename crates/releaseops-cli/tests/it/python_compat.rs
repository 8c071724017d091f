//! Manifests and environment files we write load in the existing Python
//! tool's `RuntimeLoader`, with the same values. Needs a Python with
//! `llmhq-releaseops==0.1.0` installed, named by RELEASEOPS_PYTHON (`.ci/run`
//! sets one up); in CI its absence is a failure, elsewhere the test says so
//! and returns.

use crate::common::{Repo, workspace};

#[test]
fn what_we_write_loads_in_the_python_runtime_loader() {
    let Some(python) = std::env::var_os("RELEASEOPS_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set RELEASEOPS_PYTHON (see .ci/run)"
        );
        eprintln!(
            "skipped: set RELEASEOPS_PYTHON to a python with llmhq-releaseops==0.1.0 to run this check"
        );
        return;
    };
    let r = Repo::initialized();
    r.write("system.md", "Hello {{ user }}\r\nBe kind.\r\n");
    r.run(&[
        "bundle",
        "create",
        "agent",
        "-v",
        "1.0.0",
        "-a",
        "system=file:system.md",
        "-a",
        "intro=onboarding:v1.1.0",
        "--policy",
        "tools=policies/tools.yaml",
        "-m",
        "gpt-4o",
        "--provider",
        "openai",
        "-t",
        "1.0",
        "--param",
        "top_p=0.9",
        "--param",
        "stop=[\"\\n\",\"Ω\"]",
        "-d",
        "first: release",
    ])
    .ok();
    r.run(&[
        "bundle",
        "create",
        "agent",
        "-v",
        "1.10.0",
        "-m",
        "m",
        "--provider",
        "anthropic",
        "-t",
        "1e-05",
    ])
    .ok();
    r.run(&["promote", "agent", "1.0.0", "dev"]).ok();
    r.run(&["promote", "agent", "1.0.0", "staging"]).ok();
    r.run(&["promote", "agent", "1.10.0", "dev"]).ok();
    r.run(&[
        "env",
        "create",
        "canary",
        "--after",
        "staging",
        "--requires-approval",
        "--approver",
        "bob",
        "--soak-hours",
        "1.5",
    ])
    .ok();
    let prod = r.read(".releaseops/environments/prod.yaml");
    r.write(".releaseops/environments/prod.yaml", &format!(
        "{prod}promotion_policy:\n  requires_eval: false\n  requires_approval: false\n  freeze_windows:\n  - timezone: UTC\n    days: [sat]\n  rejected_versions:\n  - agent@1.10.0\n"
    ));
    r.run(&[
        "promote",
        "agent",
        "1.0.0",
        "canary",
        "--skip-gates",
        "-r",
        "compat test",
    ])
    .ok();
    r.run(&[
        "promote",
        "agent",
        "1.0.0",
        "prod",
        "--skip-gates",
        "-r",
        "compat test",
    ])
    .ok();
    let out = std::process::Command::new(python)
        .arg(workspace().join("tests/python/compat.py"))
        .arg(r.path())
        .env("RELEASEOPS_BIN", crate::common::bin())
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}
