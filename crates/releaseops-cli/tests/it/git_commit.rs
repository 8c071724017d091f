//! Each transaction is a git commit of `.releaseops/` paths only, authored by
//! the actor, and never touches the user's other staged or unstaged work.

use crate::common::Repo;

#[test]
fn commits_only_releaseops_paths_and_leaves_user_work_alone() {
    commits_only_our_paths(Repo::initialized());
}

#[test]
fn the_git_cli_fallback_commits_the_same_way() {
    let mut r = Repo::initialized();
    r.env.push(("RELEASEOPS_GIT_CLI".into(), "1".into()));
    commits_only_our_paths(r);
}

fn commits_only_our_paths(r: Repo) {
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
    // The user has staged one change and left another unstaged.
    r.write("src.txt", "staged\n");
    r.git(&["add", "src.txt"]);
    r.write("policies/tools.yaml", "tools: []  # unstaged edit\n");
    let before = r.git(&["status", "--porcelain"]);
    r.run_as(
        "Alice Ops <alice@example.test>",
        &["promote", "b", "1.0.0", "dev", "-r", "ship it"],
    )
    .ok();
    assert_eq!(
        r.git(&["status", "--porcelain"]),
        before,
        "user work is untouched and our paths are clean"
    );
    let files = r.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert!(
        files.lines().all(|f| f.starts_with(".releaseops/")),
        "{files}"
    );
    assert!(
        files.contains(".releaseops/environments/dev.yaml")
            && files.contains(".releaseops/history/00000000.jsonl"),
        "{files}"
    );
    assert_eq!(
        r.git(&["log", "-1", "--format=%an <%ae>"]),
        "Alice Ops <alice@example.test>"
    );
    let msg = r.git(&["log", "-1", "--format=%B"]);
    assert!(
        msg.starts_with("releaseops: promote b 1.0.0 -> dev"),
        "{msg}"
    );
    assert!(msg.contains("Reason: ship it"), "{msg}");
    // The staged file is still staged, not committed.
    assert_eq!(r.git(&["diff", "--cached", "--name-only"]), "src.txt");
    let fsck = std::process::Command::new("git")
        .current_dir(r.path())
        .args(["fsck", "--strict"])
        .output()
        .expect("fsck");
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    // The reflog says what happened.
    assert!(
        r.git(&["reflog", "-1", "--format=%gs"])
            .contains("releaseops: promote b 1.0.0 -> dev")
    );
}

#[test]
fn no_commit_flag_and_config_switch() {
    let r = Repo::initialized();
    let head = r.git(&["rev-parse", "HEAD"]);
    r.run(&[
        "--no-commit",
        "bundle",
        "create",
        "b",
        "-m",
        "m",
        "--provider",
        "anthropic",
    ])
    .ok();
    assert_eq!(r.git(&["rev-parse", "HEAD"]), head);
    let cfg = r
        .read(".releaseops/config.yaml")
        .replace("commit: true", "commit: false");
    r.write(".releaseops/config.yaml", &cfg);
    r.run(&["promote", "b", "1.0.0", "dev"]).ok();
    assert_eq!(r.git(&["rev-parse", "HEAD"]), head);
    r.run(&["history", "verify"]).ok();
}

#[test]
fn works_outside_git_and_finds_the_store_from_a_subdirectory() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = |cwd: &std::path::Path, args: &[&str]| {
        crate::common::releaseops()
            .current_dir(cwd)
            .args(args)
            .env("RELEASEOPS_ACTOR", "x")
            .output()
            .expect("runs")
    };
    assert!(run(dir.path(), &["init"]).status.success());
    std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
    std::fs::write(dir.path().join("p.md"), "hi\n").expect("write");
    let o = run(
        &dir.path().join("a/b"),
        &["bundle", "create", "x", "-a", "s=file:p.md"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(
        &dir.path().join("a/b"),
        &["bundle", "create", "y", "-a", "s=onboarding:v1.0.0"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not in a git repository"));
    let elsewhere = tempfile::tempdir().expect("tmp");
    let o = run(elsewhere.path(), &["env", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("releaseops init"));
    let o = run(elsewhere.path(), &["--json", "env", "list"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json error");
    assert_eq!(j["error"]["kind"], "not_initialized");
    assert_eq!(j["error"]["exit_code"], 1);
    let o = run(
        elsewhere.path(),
        &["--path", dir.path().to_str().expect("utf8"), "env", "list"],
    );
    assert!(o.status.success());
}
