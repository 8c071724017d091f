//! Bad input gets a one-line error naming the file and the problem, a non-zero
//! exit, no panic, and the store unchanged.

use crate::common::Repo;

fn repo() -> Repo {
    let r = Repo::initialized();
    r.run(&[
        "bundle",
        "create",
        "b",
        "-v",
        "1.0.0",
        "-m",
        "m",
        "--provider",
        "anthropic",
        "-t",
        "0.2",
    ])
    .ok();
    r.run(&["promote", "b", "1.0.0", "dev"]).ok();
    r
}

/// Breaks `file` with `content`, runs `args`, and checks the error contract.
/// How long refusing one bad file may take, far above what it needs.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

#[track_caller]
fn check(r: &Repo, file: &str, content: &[u8], args: &[&str], needle: &str) {
    let path = r.path().join(file);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, content).expect("write");
    let before = r.snapshot();
    // Refusing bad input is quick: a run that hangs (an alias bomb being
    // expanded, a parser stuck) fails the test instead of waiting forever.
    let o = r.run_within(LIMIT, args);
    assert!(o.code != 0, "{file}: {args:?} succeeded:\n{}", o.stdout);
    assert!(
        !o.stderr.contains("panicked"),
        "{file}: panic\n{}",
        o.stderr
    );
    let first = o.stderr.lines().next().unwrap_or("");
    assert!(first.starts_with("error: "), "{file}: {first}");
    assert!(
        first.contains(file.rsplit('/').next().unwrap_or(file)),
        "{file}: the error does not name the file: {first}"
    );
    assert!(
        first.contains(needle),
        "{file}: expected {needle:?} in: {first}"
    );
    assert!(o.stderr.contains("hint: "), "{file}: no hint\n{}", o.stderr);
    assert_eq!(before, r.snapshot(), "{file}: the store changed");
    // JSON mode reports the same error as JSON.
    let mut jargs = vec!["--json"];
    jargs.extend_from_slice(args);
    let j = r.run_within(LIMIT, &jargs);
    let v: serde_json::Value = serde_json::from_str(&j.stdout)
        .unwrap_or_else(|e| panic!("{file}: not JSON ({e}): {}", j.stdout));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(needle),
        "{v}"
    );
}

#[test]
fn malformed_and_mistyped_environment_files() {
    let r = repo();
    let env = ".releaseops/environments/dev.yaml";
    let good = r.read(env);
    check(
        &r,
        env,
        b"environment: dev\nbundle_mappings: [\n",
        &["env", "list"],
        "dev.yaml",
    );
    check(
        &r,
        env,
        b"environment: dev\nbundle_mappings: 5\n",
        &["promote", "b", "1.0.0", "staging"],
        "expected mapping",
    );
    check(
        &r,
        env,
        b"environment: dev\nbundle_mappings:\n  b: 1.10\n",
        &["env", "list"],
        "bare number 1.1",
    );
    check(
        &r,
        env,
        b"environment: staging\nbundle_mappings: {}\n",
        &["env", "list"],
        "environment: staging",
    );
    check(
        &r,
        env,
        b"environment: dev\nbundle_mappings:\n  b: \xff\xfe\n",
        &["env", "list"],
        "not valid UTF-8",
    );
    check(&r, env, b"", &["env", "list"], "empty");
    r.write(env, &good);
}

#[test]
fn hostile_yaml_is_refused_quickly() {
    let r = repo();
    // An alias bomb: refused in a file releaseops rewrites before anything
    // is expanded, and by the budget in a suite (which it only reads).
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
    for (i, c) in "bcdefghij".chars().enumerate() {
        let p = (b'a' + i as u8) as char;
        bomb.push_str(&format!(
            "{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        ));
    }
    let in_env = format!(
        "environment: staging\nbundle_mappings: {{}}\npromotion_policy:\n  approvers: &t [x]\n  approval_teams: *t\n{bomb}"
    );
    check(
        &r,
        ".releaseops/environments/staging.yaml",
        in_env.as_bytes(),
        &["env", "list"],
        "line 4 column 17: YAML anchors and aliases",
    );
    let suite = format!("id: s\ncases: []\nvars:\n  {}", bomb.replace('\n', "\n  "));
    check(
        &r,
        ".releaseops/evals/s.yaml",
        suite.as_bytes(),
        &["eval", "run", "s", "--bundle", "b", "--version", "1.0.0"],
        "budget",
    );
    // Deep nesting, in flow and in block style, where any value may go.
    let deep = format!(
        "id: s\ncases: []\nvars:\n  x: {}1{}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let run = ["eval", "run", "s", "--bundle", "b", "--version", "1.0.0"];
    check(
        &r,
        ".releaseops/evals/s.yaml",
        deep.as_bytes(),
        &run,
        "budget",
    );
    let mut block = String::from("id: s\ncases: []\nvars:\n");
    for i in 0..100 {
        block.push_str(&format!("{}k{i}:\n", "  ".repeat(i + 1)));
    }
    check(
        &r,
        ".releaseops/evals/s.yaml",
        block.as_bytes(),
        &run,
        "budget",
    );
}

#[test]
fn a_200_mb_file_is_refused_without_reading_it() {
    let r = repo();
    let path = r.path().join(".releaseops/environments/staging.yaml");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(200 * 1024 * 1024).expect("sparse file");
    drop(f);
    let o = r.run(&["env", "list"]);
    o.code(1);
    assert!(
        o.stderr
            .lines()
            .next()
            .unwrap_or("")
            .contains("staging.yaml: file is 209715200 bytes"),
        "{}",
        o.stderr
    );
    std::fs::remove_file(path).expect("rm");
}

#[test]
fn missing_and_hand_edited_bundles() {
    let r = repo();
    let o = r.run(&["promote", "b", "9.9.9", "dev"]);
    o.code(1);
    assert!(
        o.stderr.contains("bundle 'b' has no version '9.9.9'")
            && o.stderr.contains("available versions: 1.0.0"),
        "{}",
        o.stderr
    );
    let m = ".releaseops/bundles/b/1.0.0.yaml";
    let good = r.read(m);
    check(
        &r,
        m,
        good.replace("temperature: 0.2", "temperature: 0.9")
            .as_bytes(),
        &["promote", "b", "1.0.0", "staging"],
        "edited after creation",
    );
    let fake = format!("bundle_hash: sha256:{}", "a".repeat(64));
    let edited: String = good
        .lines()
        .map(|l| {
            if l.starts_with("bundle_hash:") {
                fake.clone()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    check(
        &r,
        m,
        edited.as_bytes(),
        &["bundle", "inspect", "b"],
        "does not match",
    );
    check(
        &r,
        m,
        good.replace("  id: b\n", "  id: other\n").as_bytes(),
        &["promote", "b", "1.0.0", "staging"],
        "manifest is for other@1.0.0",
    );
    check(
        &r,
        m,
        good.replace("  version: 1.0.0\n", "  version: 1.10\n")
            .as_bytes(),
        &["bundle", "inspect", "b"],
        "bare number",
    );
    check(
        &r,
        m,
        good.replace("  max_tokens: 4096\n", "  max_tokens: many\n")
            .as_bytes(),
        &["bundle", "inspect", "b"],
        "1.0.0.yaml",
    );
    let nested = good.replace(
        "  max_tokens: 4096\n",
        &format!(
            "  max_tokens: 4096\n  parameters: {}1{}\n",
            "{a: ".repeat(100),
            "}".repeat(100)
        ),
    );
    check(
        &r,
        m,
        nested.as_bytes(),
        &["bundle", "inspect", "b"],
        "budget",
    );
    r.write(m, &good);
    r.run(&["history", "verify"]).ok();
}

#[test]
fn broken_config_and_history_files() {
    let r = repo();
    check(
        &r,
        ".releaseops/config.yaml",
        b"pipeline: [dev, dev]\n",
        &["env", "list"],
        "twice",
    );
    r.write(
        ".releaseops/config.yaml",
        "pipeline: [dev, staging, prod]\n",
    );
    let seg = ".releaseops/history/00000000.jsonl";
    let good = r.read(seg);
    check(
        &r,
        seg,
        format!("{good}not json\n").as_bytes(),
        &["history"],
        "bad history record",
    );
    r.write(seg, &good);
    r.run(&["history", "verify"]).ok();
}

#[test]
fn bad_command_line_values_are_usage_errors() {
    let r = repo();
    for args in [
        vec![
            "bundle",
            "create",
            "x",
            "-t",
            "3",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
        vec![
            "bundle",
            "create",
            "x",
            "--max-tokens",
            "0",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
        vec!["bundle", "create", "x", "-a", "noequals"],
        vec!["bundle", "create", "x", "--param", "k=v"],
        vec!["rollback", "dev", "b", "--steps", "0"],
        vec!["env", "list", "--at", "yesterday-ish"],
        vec!["promote", "b"],
    ] {
        let o = r.run(&args);
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"));
    }
}
