//! Team sync through a git remote: real bare repositories, real clones,
//! real `git push` races (provoked by a pre-push hook that lets another
//! clone in first), real transports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::serde_json_lite::Value;
use crate::common::{Run, git, output_within, releaseops};

const LIMIT: Duration = Duration::from_secs(120);

/// A bare remote and the clones of a team.
pub(crate) struct Team {
    root: tempfile::TempDir,
}

/// One clone, with its own person.
pub(crate) struct Clone {
    pub dir: PathBuf,
    pub actor: String,
}

impl Team {
    /// A remote whose `main` holds a production store with sync on (made by
    /// the founder's clone, `a`), and its `releaseops-state` branch.
    pub(crate) fn new() -> (Team, Clone) {
        let root = tempfile::Builder::new()
            .prefix("releaseops-team-")
            .tempdir()
            .expect("tempdir");
        git(
            root.path(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        let team = Team { root };
        let a = team.person("a");
        git(team.root.path(), &["init", "-q", "-b", "main", "a"]);
        a.configure();
        std::fs::write(a.dir.join("system.txt"), "You are a support agent.\n").expect("write");
        a.run(&["init"]).ok();
        git(&a.dir, &["add", "-A"]);
        git(&a.dir, &["commit", "-q", "-m", "releaseops init"]);
        git(&a.dir, &["remote", "add", "origin", &team.url()]);
        a.run(&["sync", "--enable", "origin"]).ok();
        git(&a.dir, &["push", "-q", "origin", "main"]);
        (team, a)
    }

    pub(crate) fn remote(&self) -> PathBuf {
        self.root.path().join("remote.git")
    }

    fn url(&self) -> String {
        self.remote().display().to_string()
    }

    fn person(&self, name: &str) -> Clone {
        Clone {
            dir: self.root.path().join(name),
            actor: format!("{} <{name}@example.test>", name.to_uppercase()),
        }
    }

    /// Another clone of the remote's `main`, synced.
    pub(crate) fn join(&self, name: &str) -> Clone {
        let c = self.person(name);
        git(
            self.root.path(),
            &["clone", "-q", "-b", "main", &self.url(), name],
        );
        c.configure();
        c.run(&["sync"]).ok();
        c
    }

    /// A fresh clone of the state branch alone, as a new machine or an
    /// auditor would take it.
    pub(crate) fn fresh_state_clone(&self, name: &str) -> Clone {
        let c = self.person(name);
        git(
            self.root.path(),
            &[
                "clone",
                "-q",
                "-b",
                "releaseops-state",
                "--single-branch",
                &self.url(),
                name,
            ],
        );
        c.configure();
        c
    }

    /// The remote's history, oldest first, read from the state branch.
    pub(crate) fn remote_history(&self) -> Vec<Value> {
        let fresh = self.fresh_state_clone(&format!("audit-{}", std::process::id()));
        fresh.run(&["history", "verify"]).ok();
        let out = fresh.run(&["history", "--json", "-n", "0"]);
        let mut records: Vec<Value> = out.json().as_array().cloned().unwrap_or_default();
        records.reverse();
        let _ = std::fs::remove_dir_all(&fresh.dir);
        records
    }

    pub(crate) fn state_tip(&self) -> String {
        git(&self.remote(), &["rev-parse", "releaseops-state"])
    }
}

impl Clone {
    fn configure(&self) {
        let (name, email) = self
            .actor
            .split_once(" <")
            .map(|(n, e)| (n.to_string(), e.trim_end_matches('>').to_string()))
            .expect("actor");
        git(&self.dir, &["config", "user.name", &name]);
        git(&self.dir, &["config", "user.email", &email]);
        git(&self.dir, &["config", "commit.gpgsign", "false"]);
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = releaseops();
        c.current_dir(&self.dir)
            .args(args)
            .env("RELEASEOPS_ACTOR", &self.actor);
        c
    }

    #[track_caller]
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from(output_within(&mut self.command(args), LIMIT))
    }

    pub(crate) fn git(&self, args: &[&str]) -> String {
        git(&self.dir, args)
    }

    /// A reviewer's approval of support 1.0.0 for `env`, from this clone
    /// (nobody approves their own work).
    pub(crate) fn approve_as_reviewer(&self, env: &str) -> Run {
        self.run(&[
            "approve",
            "support",
            "1.0.0",
            env,
            "--actor",
            "Reviewer <rev@example.test>",
        ])
    }

    pub(crate) fn create(&self, id: &str, version: &str) -> Run {
        self.run(&[
            "bundle",
            "create",
            id,
            "-v",
            version,
            "-a",
            "system=file:system.txt",
            "-m",
            "gpt-4o",
        ])
    }

    /// Every store file, for "nothing changed" checks (locks and caches aside).
    pub(crate) fn store_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        walk(&self.dir.join(".releaseops"), "", &mut out);
        out.sort();
        out
    }

    /// A pre-push hook that runs `script` once (the first push), before git
    /// sends anything: another clone's change lands first.
    pub(crate) fn before_first_push(&self, script: &str) {
        let hook = self.dir.join(".git/hooks/pre-push");
        let marker = self.dir.join(".git/hook-ran");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nif [ ! -e '{m}' ]; then\n  touch '{m}'\n  unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX\n  {script}\nfi\nexit 0\n",
                m = marker.display()
            ),
        )
        .expect("hook");
        chmod_x(&hook);
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if [".lock", ".apply.lock", ".apply.intent", ".cache", ".data"].contains(&name.as_str()) {
            continue;
        }
        let path = e.path();
        let r = format!("{rel}{name}");
        if path.is_dir() {
            walk(&path, &format!("{r}/"), out);
        } else {
            out.push((r, std::fs::read(&path).unwrap_or_default()));
        }
    }
}

fn chmod_x(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A shell line that runs the binary in `clone` as its person.
fn in_clone(clone: &Clone, args: &str) -> String {
    format!(
        "cd '{}' && RELEASEOPS_ACTOR='{}' '{}' {args} >/dev/null 2>&1",
        clone.dir.display(),
        clone.actor,
        crate::common::bin().display()
    )
}

fn events(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {} {}@{} {}",
                r["actor"]
                    .as_str()
                    .unwrap_or_default()
                    .split(' ')
                    .next()
                    .unwrap_or_default(),
                r["event"].as_str().unwrap_or_default(),
                r["bundle_id"].as_str().unwrap_or_default(),
                r["version"].as_str().unwrap_or_default(),
                r["env"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn changes_from_two_clones_land_on_one_chain_that_every_clone_verifies() {
    let (team, a) = Team::new();
    let b = team.join("b");
    let head_before = a.git(&["rev-parse", "HEAD"]);
    a.create("support", "1.0.0").ok();
    // B's promotion is checked against the state A pushed: it fetches first.
    b.run(&["promote", "support", "1.0.0", "dev"]).ok();
    let out = a.run(&["promote", "support", "1.0.0", "staging"]);
    out.ok();
    assert!(out.stdout.contains("live in 'dev'"), "{}", out.stdout);
    let out = b.run(&["sync"]);
    assert!(out.ok().contains("1 new from the remote"), "{}", out.stdout);
    for c in [&a, &b] {
        c.run(&["history", "verify"]).ok();
        let st = c.run(&["status", "--json"]);
        assert_eq!(st.json()["sync"]["standing"], "in_sync", "{}", st.stdout);
    }
    let records = team.remote_history();
    assert_eq!(
        events(&records),
        [
            "A bundle_create support@1.0.0 ",
            "B promote support@1.0.0 dev",
            "A promote support@1.0.0 staging"
        ]
    );
    // The user's branch is left alone: no commit of ours on it.
    assert_eq!(a.git(&["rev-parse", "HEAD"]), head_before);
    // Both clones hold the same store files as the remote.
    assert_eq!(a.store_files(), b.store_files());
}

#[test]
fn a_lost_race_is_applied_again_and_its_gates_checked_on_the_new_state() {
    let (team, a) = Team::new();
    let b = team.join("b");
    a.create("support", "1.0.0").ok();
    a.create("billing", "1.0.0").ok();
    b.run(&["sync"]).ok();
    // An unrelated change gets in first: A's promotion is re-applied on it
    // and lands after it.
    a.before_first_push(&in_clone(&b, "promote billing 1.0.0 dev"));
    let out = a.run(&["promote", "support", "1.0.0", "dev"]);
    out.ok();
    assert!(out.stderr.contains("applied again"), "{}", out.stderr);
    let tail: Vec<String> = events(&team.remote_history())
        .into_iter()
        .rev()
        .take(2)
        .collect();
    assert_eq!(
        tail,
        ["A promote support@1.0.0 dev", "B promote billing@1.0.0 dev"]
    );

    // A rejection gets in first: the promotion is checked again and refused.
    std::fs::remove_file(a.dir.join(".git/hook-ran")).expect("reset hook");
    a.before_first_push(&in_clone(
        &b,
        "reject support 1.0.0 --reason 'refunds too generous'",
    ));
    let before = a.store_files();
    let tip = team.state_tip();
    let out = a.run(&["promote", "support", "1.0.0", "staging"]);
    out.code(3);
    assert!(
        out.stdout.contains("rejected") || out.stderr.contains("rejected"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    // The remote got the rejection and nothing else; A holds what the
    // remote holds, and no promotion.
    let remote = events(&team.remote_history());
    assert_eq!(
        remote.last().map(String::as_str),
        Some("B reject support@1.0.0 ")
    );
    assert_ne!(team.state_tip(), tip);
    assert_ne!(a.store_files(), before, "A fetched the rejection");
    a.run(&["history", "verify"]).ok();
    let st = a.run(&["status", "--json"]);
    assert_eq!(st.json()["sync"]["standing"], "in_sync", "{}", st.stdout);
}

#[test]
fn offline_changes_are_pushed_by_sync() {
    let (team, a) = Team::new();
    a.create("support", "1.0.0").ok();
    let tip = team.state_tip();
    a.run(&["--offline", "promote", "support", "1.0.0", "dev"])
        .ok();
    assert_eq!(team.state_tip(), tip, "nothing was pushed");
    let st = a.run(&["--offline", "status", "--json"]);
    assert_eq!(st.json()["sync"]["standing"], "ahead", "{}", st.stdout);
    // Another change while changes wait would build on them unpushed: the
    // clone pushes them with it, in order.
    let out = a.run(&["sync"]);
    out.ok();
    assert!(out.stdout.contains("pushed"), "{}", out.stdout);
    assert_eq!(
        events(&team.remote_history()).last().map(String::as_str),
        Some("A promote support@1.0.0 dev")
    );
    let st = a.run(&["status", "--json"]);
    assert_eq!(st.json()["sync"]["standing"], "in_sync", "{}", st.stdout);
}

#[test]
fn a_remote_that_cannot_be_used_gives_a_clear_error_and_changes_nothing() {
    let (team, a) = Team::new();
    a.create("support", "1.0.0").ok();

    // Unreachable: the remote moved away.
    let before = a.store_files();
    std::fs::rename(team.remote(), team.root.path().join("elsewhere.git")).expect("move");
    let out = a.run(&["promote", "support", "1.0.0", "dev"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot fetch branch 'releaseops-state' from remote 'origin'"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--offline"), "{}", out.stderr);
    assert_eq!(a.store_files(), before);
    // Reads go on from what the clone holds, saying why.
    let st = a.run(&["status"]);
    st.ok();
    assert!(st.stderr.contains("could not be asked"), "{}", st.stderr);
    std::fs::rename(team.root.path().join("elsewhere.git"), team.remote()).expect("move back");

    // The remote refuses pushes (a protected branch).
    let hook = team.remote().join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'releaseops-state is protected' >&2\nexit 1\n",
    )
    .expect("hook");
    chmod_x(&hook);
    let out = a.run(&["promote", "support", "1.0.0", "dev"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("refused the push"), "{}", out.stderr);
    assert_eq!(a.store_files(), before);
    a.run(&["history", "verify"]).ok();
    std::fs::remove_file(&hook).expect("unhook");

    // A remote name that does not exist.
    let cfg = a.dir.join(".releaseops/config.yaml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, text.replace("remote: origin", "remote: upstream")).expect("config");
    let out = a.run(&["promote", "support", "1.0.0", "dev"]);
    out.code(2);
    assert!(
        out.stderr
            .contains("sync.remote 'upstream' is not a remote"),
        "{}",
        out.stderr
    );
    std::fs::write(&cfg, &text).expect("config");

    // A URL in place of a name is refused without being repeated.
    std::fs::write(
        &cfg,
        text.replace(
            "remote: origin",
            "remote: 'https://bot:s3cret@git.example.com/x.git'",
        ),
    )
    .expect("config");
    let out = a.run(&["promote", "support", "1.0.0", "dev"]);
    assert_ne!(out.code, 0);
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
    assert!(
        out.stderr.contains("sync.remote must name a git remote"),
        "{}",
        out.stderr
    );
    std::fs::write(&cfg, &text).expect("config");
    assert_eq!(a.store_files(), before);
    a.run(&["promote", "support", "1.0.0", "dev"]).ok();
}

/// Commits `edit` to the remote's state branch by hand (as someone with
/// write access and no releaseops would), from a scratch clone.
fn edit_remote_by_hand(team: &Team, edit: impl FnOnce(&Path)) {
    let hand = team.fresh_state_clone("hand");
    edit(&hand.dir);
    hand.git(&["commit", "-q", "-am", "by hand"]);
    hand.git(&["push", "-q", "origin", "releaseops-state"]);
    std::fs::remove_dir_all(&hand.dir).expect("clean");
}

#[test]
fn a_remote_state_that_does_not_verify_is_never_built_on() {
    let (team, a) = Team::new();
    let b = team.join("b");
    a.create("support", "1.0.0").ok();
    a.run(&["promote", "support", "1.0.0", "dev"]).ok();
    b.run(&["sync"]).ok();

    // An environment file edited by hand on the remote.
    edit_remote_by_hand(&team, |dir| {
        let p = dir.join(".releaseops/environments/staging.yaml");
        let t = std::fs::read_to_string(&p).expect("env");
        std::fs::write(&p, format!("{t}bundles:\n  support: 1.0.0\n")).expect("edit");
    });
    let before = b.store_files();
    let out = b.run(&["promote", "support", "1.0.0", "staging"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("cannot be built on"), "{}", out.stderr);
    assert!(out.stderr.contains("staging"), "{}", out.stderr);
    assert_eq!(b.store_files(), before, "B is as it was");
    b.run(&["history", "verify"]).ok();
    let out = b.run(&["sync"]);
    assert_eq!(out.code, 4, "{}", out.stderr);

    // Put right by a commit on top (never a rewrite): B goes on.
    edit_remote_by_hand(&team, |dir| {
        let p = dir.join(".releaseops/environments/staging.yaml");
        let t = std::fs::read_to_string(&p).expect("env");
        std::fs::write(&p, t.replace("bundles:\n  support: 1.0.0\n", "")).expect("edit");
    });
    b.run(&["promote", "support", "1.0.0", "staging"]).ok();

    // A history record rewritten on the remote.
    edit_remote_by_hand(&team, |dir| {
        let p = dir.join(".releaseops/history/00000000.jsonl");
        let t = std::fs::read_to_string(&p).expect("history");
        // The second record (A's promotion) now says M made it.
        let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
        lines[1] = lines[1].replace("A <a@example.test>", "M <m@example.test>");
        std::fs::write(&p, lines.join("\n") + "\n").expect("edit");
    });
    let before = a.store_files();
    let out = a.run(&["sync"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("rewrites .releaseops/history/00000000.jsonl at line 2"),
        "{}",
        out.stderr
    );
    assert_eq!(a.store_files(), before);
}

#[test]
fn a_clone_with_its_own_history_cannot_join_another() {
    let (team, a) = Team::new();
    a.create("support", "1.0.0").ok();
    // C made its own store and history, then points at the team's remote.
    let c = team.person("c");
    git(team.root.path(), &["init", "-q", "-b", "main", "c"]);
    c.configure();
    std::fs::write(c.dir.join("system.txt"), "Other.\n").expect("write");
    c.run(&["init"]).ok();
    c.create("support", "9.0.0").ok();
    git(&c.dir, &["remote", "add", "origin", &team.url()]);
    let before = c.store_files();
    let out = c.run(&["sync", "--enable", "origin"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("written apart"), "{}", out.stderr);
    assert_eq!(c.store_files(), before, "config.yaml too");
}

/// One clone's script: new versions of its own bundle, each promoted to
/// dev, approved and promoted to staging, with rollbacks of dev between.
fn script(bundle: &str, ops: usize) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    for k in 1.. {
        let v = format!("1.0.{k}");
        out.push(s(&[
            "bundle",
            "create",
            bundle,
            "-v",
            &v,
            "-a",
            "system=file:system.txt",
            "-m",
            "gpt-4o",
        ]));
        out.push(s(&["promote", bundle, &v, "dev"]));
        // Nobody approves their own work: a reviewer does, from the same clone.
        out.push(s(&[
            "approve",
            bundle,
            &v,
            "staging",
            "--actor",
            "Reviewer <rev@example.test>",
        ]));
        out.push(s(&["promote", bundle, &v, "staging"]));
        if k >= 2 {
            out.push(s(&[
                "rollback",
                "dev",
                bundle,
                "--reason",
                "rehearsing a rollback",
            ]));
            out.push(s(&["promote", bundle, &v, "dev"]));
        }
        if out.len() >= ops {
            break;
        }
    }
    out.truncate(ops);
    out
}

/// What the history records for an operation: who, what, which version, where.
fn key_of(actor: &str, op: &[String]) -> String {
    let actor = op
        .iter()
        .position(|a| a == "--actor")
        .and_then(|i| op.get(i + 1))
        .map_or(actor, String::as_str);
    let who = actor.split(' ').next().unwrap_or_default();
    match op[0].as_str() {
        "bundle" => format!("{who} bundle_create {}@{} ", op[2], op[4]),
        "promote" => format!("{who} promote {}@{} {}", op[1], op[2], op[3]),
        "approve" => format!("{who} approve {}@{} {}", op[1], op[2], op[3]),
        _ => format!("{who} rollback {} {}", op[2], op[1]),
    }
}

fn key_of_record(r: &Value) -> String {
    let e = events(std::slice::from_ref(r)).remove(0);
    if r["event"] == "rollback" {
        // A rollback's version is where it went; the operation names the env.
        format!(
            "{} rollback {} {}",
            e.split(' ').next().unwrap_or_default(),
            r["bundle_id"].as_str().unwrap_or_default(),
            r["env"].as_str().unwrap_or_default()
        )
    } else {
        e
    }
}

#[test]
fn eight_clones_and_a_server_release_at_once_and_nothing_is_lost_doubled_or_reordered() {
    const CLONES: usize = 8;
    const OPS: usize = 22;
    const SERVER_VERSIONS: usize = 8;
    let (team, a) = Team::new();
    for k in 1..=SERVER_VERSIONS {
        a.create("agent-s", &format!("1.0.{k}")).ok();
    }
    let clones: Vec<Clone> = (0..CLONES).map(|i| team.join(&format!("c{i}"))).collect();
    let srv = team.join("srv");
    let server = serve_in(&srv);
    let server_ops: Vec<(String, &str, String)> = (1..=SERVER_VERSIONS)
        .flat_map(|k| {
            let v = format!("1.0.{k}");
            [
                (
                    format!("Server promote agent-s@{v} dev"),
                    "/v1/promote",
                    v.clone(),
                ),
                (
                    format!("Server approve agent-s@{v} staging"),
                    "/v1/approve",
                    v.clone(),
                ),
                (
                    format!("Server promote agent-s@{v} staging"),
                    "/v1/promote",
                    v,
                ),
            ]
        })
        .collect();
    let mut server_landed: Vec<String> = Vec::new();
    let results: Vec<Vec<(Vec<String>, Run)>> = std::thread::scope(|s| {
        let api = s.spawn(|| {
            let mut landed = Vec::new();
            for (key, path, v) in &server_ops {
                let env = if key.ends_with("dev") {
                    "dev"
                } else {
                    "staging"
                };
                let token = if *path == "/v1/approve" {
                    APPROVER
                } else {
                    DEPLOYER
                };
                let (st, body) = post(
                    &server.at(path),
                    Some(token),
                    &serde_json::json!({"bundle_id": "agent-s", "version": v, "env": env}),
                );
                if st == 200 {
                    landed.push(key.clone());
                } else {
                    assert_eq!(st, 409, "{key}: {body}");
                    assert!(
                        body.to_string().contains("got there first"),
                        "{key}: {body}"
                    );
                }
            }
            landed
        });
        let handles: Vec<_> = clones
            .iter()
            .enumerate()
            .map(|(i, c)| {
                s.spawn(move || {
                    script(&format!("agent-{i}"), OPS)
                        .into_iter()
                        .map(|op| {
                            let args: Vec<&str> = op.iter().map(String::as_str).collect();
                            let run = c.run(&args);
                            (op, run)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all = handles
            .into_iter()
            .map(|h| h.join().expect("clone thread"))
            .collect();
        server_landed = api.join().expect("server thread");
        all
    });
    let records = team.remote_history();
    let keys: Vec<String> = records.iter().map(key_of_record).collect();
    let mut landed = 0;
    let mut retried = 0;
    for (i, (c, ran)) in clones.iter().zip(&results).enumerate() {
        let bundle = format!("agent-{i}");
        let mine: Vec<&String> = keys
            .iter()
            .zip(&records)
            .filter(|(_, r)| r["bundle_id"] == bundle.as_str())
            .map(|(k, _)| k)
            .collect();
        let succeeded: Vec<String> = ran
            .iter()
            .filter(|(_, r)| r.code == 0)
            .map(|(op, _)| key_of(&c.actor, op))
            .collect();
        for (op, r) in ran {
            assert!(!r.stderr.contains("panicked"), "{op:?}: {}", r.stderr);
            if r.code != 0 {
                // Only a race lost every time may fail; nothing else.
                assert!(
                    r.stderr.contains("got there first"),
                    "{op:?} failed:\n{}",
                    r.stderr
                );
            }
            if r.stderr.contains("applied again") {
                retried += 1;
            }
            if r.code != 0 || r.stderr.contains("applied again") {
                eprintln!("{} {op:?}: exit {}: {}", c.actor, r.code, r.stderr.trim());
            }
        }
        // Every operation that succeeded is in the remote's history exactly
        // once, in the order it was made; none that failed is.
        assert_eq!(
            mine.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            succeeded.iter().map(String::as_str).collect::<Vec<_>>(),
            "{}",
            c.actor
        );
        landed += succeeded.len();
    }
    // The server's writes, the same way.
    let by_server: Vec<&String> = keys
        .iter()
        .zip(&records)
        .filter(|(_, r)| r["bundle_id"] == "agent-s" && r["event"] != "bundle_create")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(by_server, server_landed.iter().collect::<Vec<_>>());
    landed += server_landed.len();
    let total = CLONES * OPS + server_ops.len();
    assert_eq!(total, 200);
    assert!(landed * 10 >= total * 9, "{landed} of {total} landed");
    assert!(retried > 0, "eight clones at once never raced");
    // Every clone converges, and verifies (the server's too).
    let (st, body) = post(&server.at("/v1/sync"), None, &Value::Null);
    assert_eq!(st, 200, "{body}");
    for c in clones.iter().chain([&srv]) {
        c.run(&["sync"]).ok();
        c.run(&["history", "verify"]).ok();
    }
    let first = clones[0].store_files();
    for c in clones[1..].iter().chain([&srv]) {
        assert!(c.store_files() == first, "{} differs from c0", c.actor);
    }
}

#[test]
fn a_clone_killed_during_a_push_is_repaired_by_its_next_command() {
    let (team, a) = Team::new();
    a.create("support", "1.0.0").ok();
    // The push is slowed so a kill lands inside it as often as around it.
    let hook = a.dir.join(".git/hooks/pre-push");
    std::fs::write(&hook, "#!/bin/sh\nsleep 0.1\nexit 0\n").expect("hook");
    chmod_x(&hook);
    for round in 0..8u64 {
        let version = format!("2.0.{round}");
        let mut child = a
            .command(&[
                "bundle",
                "create",
                "support",
                "-v",
                &version,
                "-a",
                "system=file:system.txt",
                "-m",
                "gpt-4o",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        // Spread over the command's life: before the fetch, mid-push, after.
        std::thread::sleep(Duration::from_millis(25 + round * 35));
        let _ = child.kill();
        let _ = child.wait();
        // A push the killed process started finishes on its own.
        std::thread::sleep(Duration::from_millis(400));
        a.run(&["history", "verify"]).ok();
        a.run(&["sync"]).ok();
        let st = a.run(&["status", "--json"]);
        assert_eq!(
            st.json()["sync"]["standing"],
            "in_sync",
            "round {round}: {}",
            st.stdout
        );
        let fresh = team.fresh_state_clone(&format!("fresh-{round}"));
        fresh.run(&["history", "verify"]).ok();
        let mine: Vec<_> = a
            .store_files()
            .into_iter()
            .filter(|(p, _)| !p.starts_with('.'))
            .collect();
        let theirs: Vec<_> = fresh
            .store_files()
            .into_iter()
            .filter(|(p, _)| !p.starts_with('.'))
            .collect();
        assert!(
            mine == theirs,
            "round {round}: the clone and the remote differ"
        );
    }
    // And the clone goes on working.
    a.create("support", "3.0.0").ok();
}

/// `git http-backend` behind a small loopback HTTP server (Python's
/// standard library): smart HTTP, as a forge serves it.
const HTTP_BACKEND_PY: &str = r#"import http.server, os, subprocess, sys
root = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def run(self):
        path, _, query = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1",
                   PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)),
                   REMOTE_USER="ci", REMOTE_ADDR="127.0.0.1")
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, data = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(": ")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = run
    do_POST = run
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// A child process stopped when the test ends, however it ends.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A clone of the remote at `url` (another transport), with sync on.
fn join_at(team: &Team, name: &str, url: &str) -> Clone {
    let c = team.person(name);
    git(team.root.path(), &["clone", "-q", "-b", "main", url, name]);
    c.configure();
    c.run(&["sync"]).ok();
    c
}

#[test]
fn sync_works_over_git_daemon_and_smart_http() {
    let (team, a) = Team::new();
    a.create("support", "1.0.0").ok();
    git(&team.remote(), &["config", "http.receivepack", "true"]);
    let port = free_port();
    let root = team.root.path().display().to_string();
    let _daemon = Daemon(
        crate::common::isolated(&mut Command::new("git"))
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={root}"),
                &root,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon"),
    );
    wait_for_port(port);
    let mut http = crate::common::isolated(&mut Command::new("python3"))
        .args(["-c", HTTP_BACKEND_PY, &root])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("http server");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(http.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("port");
    let _http = Daemon(http);
    let http_port: u16 = line.trim().parse().expect("a port");

    let g = join_at(
        &team,
        "over-git",
        &format!("git://127.0.0.1:{port}/remote.git"),
    );
    let h = join_at(
        &team,
        "over-http",
        &format!("http://127.0.0.1:{http_port}/remote.git"),
    );
    let f = join_at(
        &team,
        "over-file",
        &format!("file://{}", team.remote().display()),
    );
    g.run(&["promote", "support", "1.0.0", "dev"]).ok();
    h.run(&["promote", "support", "1.0.0", "staging"]).ok();
    f.run(&[
        "approve",
        "support",
        "1.0.0",
        "staging",
        "--actor",
        "Filer <f@example.test>",
    ])
    .ok();
    a.approve_as_reviewer("prod").ok();
    g.run(&["sync"]).ok();
    assert_eq!(
        events(&team.remote_history())[1..],
        [
            "OVER-GIT promote support@1.0.0 dev",
            "OVER-HTTP promote support@1.0.0 staging",
            "Filer approve support@1.0.0 staging",
            "Reviewer approve support@1.0.0 prod"
        ]
    );
    for c in [&a, &g, &h, &f] {
        c.run(&["sync"]).ok();
        c.run(&["history", "verify"]).ok();
    }
    assert!(g.store_files() == h.store_files());
}

const DEPLOYER: &str = "deployer-token-0123456789abcdef";
const APPROVER: &str = "approver-token-0123456789abcdef";

/// `releaseops serve` in `clone`, with a deployer and an approver token.
fn serve_in(clone: &Clone) -> crate::common::server::Server {
    let tokens = format!(
        "deployer:Server Deployer <deploy@example.test>:{DEPLOYER},approver:Server Approver <approve@example.test>:{APPROVER}"
    );
    crate::common::server::Server::spawn(
        clone.command(&["serve", "--addr", "127.0.0.1:0"]),
        &[("RELEASEOPS_API_TOKENS", &tokens)],
    )
}

/// A blocking POST of JSON (the tests' threads are not async).
fn post(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut rq = crate::common::server::client().post(url).json(body);
        if let Some(t) = token {
            rq = rq.bearer_auth(t);
        }
        let resp = rq.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

fn get(url: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let resp = crate::common::server::client()
            .get(url)
            .bearer_auth(DEPLOYER)
            .send()
            .await
            .expect("request");
        serde_json::from_str(&resp.text().await.expect("body")).unwrap_or(Value::Null)
    })
}

#[test]
fn the_server_pushes_its_writes_and_picks_up_everyone_elses() {
    let (team, a) = Team::new();
    a.create("support", "1.0.0").ok();
    a.create("support", "1.1.0").ok();
    let srv = team.join("srv");
    // Polling slowly: the webhook is what brings A's change in here.
    let cfg = srv.dir.join(".releaseops/config.yaml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, format!("{text}  poll_seconds: 3600\n")).expect("config");
    let s = serve_in(&srv);
    // An open event stream sees moves made from any clone.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut stream = rt.block_on(async {
        let mut ev = crate::common::server::client()
            .get(s.at("/v1/events?env=dev"))
            .bearer_auth(DEPLOYER)
            .send()
            .await
            .expect("events");
        let mut seen = String::new();
        while !seen.contains("event: snapshot") {
            let chunk = ev.chunk().await.expect("stream").expect("open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        ev
    });

    a.run(&["promote", "support", "1.0.0", "dev"]).ok();
    let (st, body) = post(&s.at("/v1/sync"), None, &Value::Null);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["sync"]["standing"], "in_sync", "{body}");
    // Without a token it says how the store stands, not what it holds
    // (unpushed paths name bundles and versions), and a call within the
    // second does no git work.
    assert_eq!(body["sync"].as_object().map(|o| o.len()), Some(1), "{body}");
    let (st, again) = post(&s.at("/v1/sync"), None, &Value::Null);
    assert_eq!(st, 200, "{again}");
    assert_eq!(again, serde_json::json!({"fetched": false}), "{again}");
    let moved = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let mut seen = String::new();
            while !(seen.contains("event: moved") && seen.ends_with("\n\n")) {
                let chunk = stream.chunk().await.expect("stream").expect("open");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            seen
        })
        .await
        .expect("the move reached the stream")
    });
    assert!(
        moved.contains("support") && moved.contains("1.0.0"),
        "{moved}"
    );
    let env = get(&s.at("/v1/environments/dev"));
    assert_eq!(env["bundles"][0]["version"], "1.0.0", "{env}");

    // The server's own write lands on the remote, by the token's owner.
    let (st, body) = post(
        &s.at("/v1/promote"),
        Some(DEPLOYER),
        &serde_json::json!({"bundle_id": "support", "version": "1.0.0", "env": "staging"}),
    );
    assert_eq!(st, 200, "{body}");
    a.run(&["sync"]).ok();
    let last = events(&team.remote_history()).pop();
    assert_eq!(
        last.as_deref(),
        Some("Server promote support@1.0.0 staging")
    );
    a.run(&["history", "verify"]).ok();
    srv.run(&["history", "verify"]).ok();
}

/// The `run:` steps of one job of the CI recipe in docs/, installation aside.
fn recipe_steps(job: &str) -> (Vec<String>, Vec<(String, String)>) {
    let doc = std::fs::read_to_string(crate::common::workspace().join("docs/ci-github-actions.md"))
        .expect("the recipe");
    let start = doc.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = start + doc[start..].find("```").expect("the block ends");
    let wf: Value =
        releaseops_format::yaml::from_str(&doc[start..end]).expect("the workflow parses");
    let env: Vec<(String, String)> = wf["env"]
        .as_object()
        .expect("env")
        .iter()
        .filter_map(|(k, v)| {
            v.as_str()
                .filter(|v| !v.contains("${{"))
                .map(|v| (k.clone(), v.to_string()))
        })
        .collect();
    let steps = wf["jobs"][job]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| {
            !s["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Install")
        })
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect();
    (steps, env)
}

fn run_steps(dir: &Path, steps: &[String], env: &[(String, String)]) {
    let bin_dir = crate::common::bin()
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for step in steps {
        let mut cmd = Command::new("bash");
        crate::common::isolated(&mut cmd)
            .current_dir(dir)
            .args(["-e", "-o", "pipefail", "-c", step])
            .env("PATH", &path)
            .envs(env.iter().map(|(k, v)| (k, v)));
        let run = Run::from(output_within(&mut cmd, LIMIT));
        assert_eq!(
            run.code, 0,
            "step failed:\n{step}\n{}{}",
            run.stdout, run.stderr
        );
    }
}

#[test]
fn the_ci_recipe_checks_pull_requests_and_releases_on_merge() {
    let (team, a) = Team::new();
    // The repository the recipe expects: a prompt, a policy, a suite, RELEASE.
    std::fs::create_dir_all(a.dir.join("prompts")).expect("dir");
    std::fs::create_dir_all(a.dir.join("policies")).expect("dir");
    std::fs::write(
        a.dir.join("prompts/system.md"),
        "You are a support agent. Say hello.\n",
    )
    .expect("write");
    std::fs::write(
        a.dir.join("policies/tools.yaml"),
        "tools:\n- name: issue_refund\n  allowed: true\n",
    )
    .expect("write");
    a.run(&["eval", "create", "smoke"]).ok();
    std::fs::write(
        a.dir.join(".releaseops/evals/smoke.yaml"),
        crate::common::ECHO_SUITE,
    )
    .expect("suite");
    std::fs::write(a.dir.join("RELEASE"), "support-agent@1.4.0\n").expect("write");
    a.git(&["add", "-A"]);
    a.git(&["commit", "-q", "-m", "support-agent 1.4.0"]);
    a.git(&["push", "-q", "origin", "main"]);

    // The pull request's job, on a fresh runner: nothing reaches the remote.
    let tip = team.state_tip();
    let runner = team.join("pr-runner");
    let (steps, env) = recipe_steps("check");
    assert!(steps.iter().any(|s| s.contains("--dry-run")), "{steps:?}");
    run_steps(&runner.dir, &steps, &env);
    assert_eq!(
        team.state_tip(),
        tip,
        "the pull request's job pushed nothing"
    );

    // The merge's job, on another runner: recorded and promoted, on the remote.
    let runner = team.join("merge-runner");
    let (steps, env) = recipe_steps("release");
    run_steps(&runner.dir, &steps, &env);
    let tail: Vec<String> = events(&team.remote_history())
        .into_iter()
        .rev()
        .take(4)
        .collect();
    assert_eq!(
        tail,
        [
            "CI promote support-agent@1.4.0 staging",
            "CI promote support-agent@1.4.0 dev",
            "CI eval_run support-agent@1.4.0 ",
            "CI bundle_create support-agent@1.4.0 ",
        ]
    );
}

#[test]
fn offline_changes_the_remote_moved_past_are_made_again_through_their_gates() {
    let (team, a) = Team::new();
    let b = team.join("b");
    a.create("support", "1.0.0").ok();
    a.create("billing", "1.0.0").ok();
    b.run(&["sync"]).ok();
    // B works on a train: a new version and two promotions, here only.
    let offline = |args: &[&str]| b.run(&[&["--offline"], args].concat());
    offline(&[
        "bundle",
        "create",
        "support",
        "-v",
        "1.1.0",
        "-a",
        "system=file:system.txt",
        "-m",
        "gpt-4o",
    ])
    .ok();
    offline(&["promote", "support", "1.1.0", "dev"]).ok();
    offline(&["promote", "billing", "1.0.0", "dev"]).ok();
    // Meanwhile billing 1.0.0 is rejected.
    a.run(&[
        "reject",
        "billing",
        "1.0.0",
        "--reason",
        "refunds too generous",
        "--actor",
        "Reviewer <rev@example.test>",
    ])
    .ok();
    // B's next change would build on state the remote moved past: refused,
    // saying what to do, and nothing changes.
    let before = b.store_files();
    let out = b.run(&["promote", "support", "1.0.0", "staging"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(out.stderr.contains("releaseops sync"), "{}", out.stderr);
    assert!(b.store_files() == before);
    let st = b.run(&["status", "--json"]);
    assert_eq!(st.json()["sync"]["standing"], "diverged", "{}", st.stdout);

    // `sync` makes each change again, in order, through its gates.
    let out = b.run(&["sync"]);
    out.code(3);
    for want in [
        "made again bundle_create support@1.1.0 by B <b@example.test>",
        "made again promote support@1.1.0 -> dev by B <b@example.test>",
        "not made promote billing@1.0.0 -> dev by B <b@example.test>",
        "rejected",
        "the offline changes are kept in",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?}:\n{}",
            out.stdout
        );
    }
    let tail: Vec<String> = events(&team.remote_history())
        .into_iter()
        .rev()
        .take(3)
        .collect();
    assert_eq!(
        tail,
        [
            "B promote support@1.1.0 dev",
            "B bundle_create support@1.1.0 ",
            "Reviewer reject billing@1.0.0 ",
        ]
    );
    b.run(&["history", "verify"]).ok();
    let st = b.run(&["status", "--json"]);
    assert_eq!(st.json()["sync"]["standing"], "in_sync", "{}", st.stdout);
    a.run(&["sync"]).ok();
    assert!(a.store_files() == b.store_files(), "A and B converge");
}

#[test]
fn a_clone_whose_files_went_back_in_time_never_cuts_the_remote_history() {
    let (team, a) = Team::new();
    a.create("support", "1.0.0").ok();
    // A copy of the store as it is now, put back later (as a `git reset` or
    // a checkout of an older commit of the code branch would).
    let old = team.root.path().join("old-store");
    crate::common::copy_dir(&a.dir.join(".releaseops"), &old);
    a.run(&["promote", "support", "1.0.0", "dev"]).ok();
    a.run(&["promote", "support", "1.0.0", "staging"]).ok();
    std::fs::remove_dir_all(a.dir.join(".releaseops/history")).expect("rm");
    crate::common::copy_dir(&old.join("history"), &a.dir.join(".releaseops/history"));
    std::fs::copy(
        old.join("environments/dev.yaml"),
        a.dir.join(".releaseops/environments/dev.yaml"),
    )
    .expect("copy");
    let tip = team.state_tip();
    let out = a.approve_as_reviewer("prod");
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains("changed outside releaseops"),
        "{}",
        out.stderr
    );
    assert_eq!(team.state_tip(), tip, "nothing reached the remote");
    // `sync` puts the clone back to the remote's state, and it goes on.
    a.run(&["sync"]).ok();
    a.run(&["history", "verify"]).ok();
    a.approve_as_reviewer("prod").ok();
    assert_eq!(
        events(&team.remote_history()),
        [
            "A bundle_create support@1.0.0 ",
            "A promote support@1.0.0 dev",
            "A promote support@1.0.0 staging",
            "Reviewer approve support@1.0.0 prod"
        ]
    );
}

const BASE_REF: &str = "refs/releaseops/sync/origin/releaseops-state/base";

#[test]
fn a_push_that_landed_unseen_is_settled_and_its_offline_changes_never_made_twice() {
    let (team, a) = Team::new();
    a.create("support", "1.0.0").ok();
    let base_before = a.git(&["rev-parse", BASE_REF]);
    a.run(&["--offline", "promote", "support", "1.0.0", "dev"])
        .ok();
    let unpushed = std::fs::read(a.dir.join(".releaseops/.unpushed")).expect("marked unpushed");
    a.run(&["sync"]).ok();
    // The state a process killed right after its push landed leaves: the
    // push's marker, the offline paths still marked, the old base.
    let pushed = team.state_tip();
    std::fs::write(a.dir.join(".releaseops/.unpushed"), &unpushed).expect("write");
    std::fs::write(a.dir.join(".releaseops/.cache/sync-pushing"), &pushed).expect("write");
    a.git(&["update-ref", BASE_REF, &base_before]);
    // The next command settles it: no "made offline" refusal, nothing twice.
    a.run(&["promote", "support", "1.0.0", "staging"]).ok();
    assert_eq!(
        events(&team.remote_history()),
        [
            "A bundle_create support@1.0.0 ",
            "A promote support@1.0.0 dev",
            "A promote support@1.0.0 staging"
        ]
    );
    assert!(!a.dir.join(".releaseops/.unpushed").exists());
    assert!(!a.dir.join(".releaseops/.cache/sync-pushing").exists());
}

#[test]
fn a_check_of_the_remote_cut_short_is_finished_before_anything_else() {
    let (team, a) = Team::new();
    let b = team.join("b");
    a.create("support", "1.0.0").ok();
    b.run(&["sync"]).ok();
    // A hand edit on the remote, applied here by a process killed before
    // it finished checking it: the bad file in place, the check's marker
    // with what the file held before.
    edit_remote_by_hand(&team, |dir| {
        let p = dir.join(".releaseops/environments/staging.yaml");
        let t = std::fs::read_to_string(&p).expect("env");
        std::fs::write(&p, format!("{t}bundles:\n  support: 1.0.0\n")).expect("edit");
    });
    let env = b.dir.join(".releaseops/environments/staging.yaml");
    let good = std::fs::read_to_string(&env).expect("env");
    let bad = git(
        &team.remote(),
        &[
            "show",
            "releaseops-state:.releaseops/environments/staging.yaml",
        ],
    );
    std::fs::write(&env, format!("{bad}\n")).expect("write");
    let marker = serde_json::json!({
        "commit": team.state_tip(),
        "old": { "environments/staging.yaml": good },
    });
    std::fs::write(
        b.dir.join(".releaseops/.cache/sync-checking.json"),
        marker.to_string(),
    )
    .expect("write");
    // The next command finishes the check, which fails: the file is put
    // back and the remote refused, saying where it breaks.
    let out = b.run(&["promote", "support", "1.0.0", "dev"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("cannot be built on"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&env).expect("env"), good);
    assert!(!b.dir.join(".releaseops/.cache/sync-checking.json").exists());
    b.run(&["history", "verify"]).ok();
}
