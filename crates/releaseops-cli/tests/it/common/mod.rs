//! Test fixtures for releaseops, shared by every test that drives the real
//! binary: temporary git repositories with promptops prompts and policies,
//! the existing tool's sample tree, and a small runner.

pub(crate) mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub(crate) fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The sample tree written by the existing Python tool.
pub(crate) fn sample_dir() -> PathBuf {
    workspace().join("testdata/llmhq-sample")
}

/// The `releaseops` binary cargo built for these tests.
pub(crate) fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_releaseops"))
}

/// The machine's settings stay out of a test: no provider keys or
/// endpoints (a test that wants a loopback server sets them itself), no
/// OpenTelemetry exporter, no simulated clock, no colour, and git reads
/// neither the user's nor the system's configuration.
pub(crate) fn isolated(c: &mut Command) -> &mut Command {
    for var in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "GEMINI_BASE_URL",
        "RELEASEOPS_NOW",
        "RELEASEOPS_TRACES_DATABASE",
        "PGPASSWORD",
    ] {
        c.env_remove(var);
    }
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("OTEL_") {
            c.env_remove(var);
        }
    }
    c.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1")
}

/// A command for the binary, isolated from the machine's settings.
pub(crate) fn releaseops() -> Command {
    let mut c = Command::new(bin());
    isolated(&mut c);
    c
}

/// Runs git in `dir`, panicking on failure (fixtures only).
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = isolated(&mut Command::new("git"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `cmd` to its end, collecting its output; a run that outlasts
/// `limit` is killed and fails the test (a hang must never pass silently).
#[track_caller]
pub(crate) fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let so = t_out.join().unwrap_or_default();
            let se = t_err.join().unwrap_or_default();
            panic!(
                "still running after {limit:?}, killed\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&so),
                String::from_utf8_lossy(&se)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// The result of one run of the binary.
#[derive(Debug)]
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub(crate) fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    #[track_caller]
    pub(crate) fn code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code, want,
            "expected exit {want}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic:\n{}", self.stderr);
        self
    }

    /// The stdout parsed as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json_lite::Value {
        serde_json_lite::parse(&self.stdout)
    }
}

/// A temporary git repository with a releaseops binary to drive.
pub(crate) struct Repo {
    dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

pub(crate) const PROMPT_V1: &str = "prompt:
  id: onboarding
  description: Support onboarding
  template: |
    You are a support agent for Acme.
    Greet {{ user_name }} warmly.
    You may issue refunds up to 100 dollars.
variables:
  user_name:
    type: string
    required: true
";

/// An eval suite `smoke` whose agent (`cat`) echoes the case back, so its
/// one case passes: a real run, recorded in the history like any other.
pub(crate) const ECHO_SUITE: &str = "id: smoke\npass_threshold: 1.0\ntarget: {type: command, command: cat}\ncases:\n- id: c\n  input: {say: hello}\n  assertions: [{type: contains, config: {expected: hello}}]\n";

impl Repo {
    /// An empty git repository with a committer identity.
    pub(crate) fn new() -> Repo {
        let dir = tempfile::Builder::new()
            .prefix("releaseops-test-")
            .tempdir()
            .expect("tempdir");
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["config", "user.name", "Test Dev"]);
        git(dir.path(), &["config", "user.email", "dev@example.test"]);
        git(dir.path(), &["config", "commit.gpgsign", "false"]);
        Repo {
            dir,
            env: Vec::new(),
        }
    }

    /// The demo's project (`releaseops demo --keep`): four stages, three
    /// versions, reviews, eval reports, decisions and production traces.
    pub(crate) fn demo() -> Repo {
        let dir = tempfile::Builder::new()
            .prefix("releaseops-demo-")
            .tempdir()
            .expect("tempdir");
        let out = releaseops()
            .args(["demo", "--keep"])
            .arg(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run releaseops demo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Repo {
            dir,
            env: Vec::new(),
        }
    }

    /// A repository with `releaseops init` done, a promptops prompt at two
    /// tagged versions and two policies, all committed.
    pub(crate) fn initialized() -> Repo {
        let r = Repo::new();
        r.write(".promptops/prompts/onboarding.yaml", PROMPT_V1);
        r.write(
            "policies/tools.yaml",
            "tools:\n- name: issue_refund\n  allowed: true\n",
        );
        r.write(
            "policies/safety.yaml",
            "constraints:\n- type: refund_limit\n  max_amount: 100\n",
        );
        r.commit_all("prompt v1");
        git(r.path(), &["tag", "prompt-onboarding-v1.0.0"]);
        r.write(
            ".promptops/prompts/onboarding.yaml",
            &PROMPT_V1.replace("100 dollars", "150 dollars"),
        );
        r.commit_all("prompt v1.1");
        git(r.path(), &["tag", "prompt-onboarding-v1.1.0"]);
        // A rehearsal store, so tests may set the clock with `run_at`.
        r.run(&["init", "--rehearsal"]).ok();
        r
    }

    /// As [`Repo::initialized`], a production store: no simulated clock.
    pub(crate) fn initialized_production() -> Repo {
        let r = Repo::initialized();
        let cfg = r.read(".releaseops/config.yaml");
        r.write(
            ".releaseops/config.yaml",
            &cfg.replace("rehearsal: true\n", ""),
        );
        r.commit_all("production");
        r
    }

    /// Creates `support-agent` VERSION from the onboarding prompt at
    /// PROMPT_VERSION (v1.0.0 or v1.1.0), both policies, and
    /// claude-sonnet-4-5 at TEMPERATURE.
    pub(crate) fn create_support_agent(
        &self,
        version: &str,
        prompt_version: &str,
        temperature: &str,
    ) {
        self.run(&[
            "bundle",
            "create",
            "support-agent",
            "-v",
            version,
            "-a",
            &format!("system=onboarding:{prompt_version}"),
            "--policy",
            "tools=policies/tools.yaml",
            "--policy",
            "safety=policies/safety.yaml",
            "-m",
            "claude-sonnet-4-5",
            "--provider",
            "anthropic",
            "-t",
            temperature,
        ])
        .ok();
    }

    /// A repository holding the existing tool's sample tree (and its policy files).
    pub(crate) fn with_sample_tree() -> Repo {
        let r = Repo::new();
        // The prompt's history as the existing tool resolved it: its bytes
        // at the two tags its bundles name, so those bundles verify here as
        // they do in the repository they came from.
        let ctx = sample_dir().join("repo-context");
        for tag in ["v1.2.0", "v1.0.1"] {
            let bytes = std::fs::read(ctx.join(format!("prompts-at-tags/onboarding@{tag}.yaml")))
                .expect("sample prompt");
            r.write_bytes(".promptops/prompts/onboarding.yaml", &bytes);
            r.commit_all(&format!("onboarding {tag}"));
            git(r.path(), &["tag", &format!("prompt-onboarding-{tag}")]);
        }
        copy_dir(
            &sample_dir().join(".releaseops"),
            &r.path().join(".releaseops"),
        );
        copy_dir(
            &sample_dir().join("repo-context/policies"),
            &r.path().join("policies"),
        );
        // The fixture names reports sha256_<hex>.yaml (Windows-safe); restore the real names.
        let reports = r.path().join(".releaseops/eval_reports");
        for e in std::fs::read_dir(&reports).expect("reports").flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(rest) = name.strip_prefix("sha256_") {
                std::fs::rename(e.path(), reports.join(format!("sha256:{rest}"))).expect("rename");
            }
        }
        r.commit_all("tree written by llmhq-releaseops 0.1.0");
        r
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    pub(crate) fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Extends a history of one segment with generated approve records (by
    /// `gen`, for `qa`) up to record `last` (1,001 to 1,999), across the
    /// 1,000-record boundary, and moves HEAD to it. Returns the two
    /// segments' texts.
    pub(crate) fn extend_history(&self, last: u64) -> (String, String) {
        let existing = self.read(".releaseops/history/00000000.jsonl");
        let mut prev: Option<String> = None;
        let mut seg0 = String::new();
        for l in existing.lines() {
            seg0.push_str(l);
            seg0.push('\n');
            prev = Some(releaseops_format::hash::sha256_prefixed(l.as_bytes()));
        }
        let mut seg1 = String::new();
        for seq in existing.lines().count() as u64 + 1..=last {
            let mut rec = releaseops_format::history::Record::new(
                releaseops_format::history::EventKind::Approve,
                "2026-11-01T00:00:00+00:00".into(),
                "gen".into(),
            );
            rec.seq = seq;
            rec.prev = prev.clone();
            rec.env = Some("qa".into());
            let line = rec.to_line();
            prev = Some(releaseops_format::hash::sha256_prefixed(line.as_bytes()));
            if seq <= 1000 { &mut seg0 } else { &mut seg1 }.push_str(&format!("{line}\n"));
        }
        self.write(".releaseops/history/00000000.jsonl", &seg0);
        self.write(".releaseops/history/00000001.jsonl", &seg1);
        self.write(
            ".releaseops/history/HEAD",
            &format!("{{\"seq\":{last},\"hash\":\"{}\"}}", prev.expect("hash")),
        );
        (seg0, seg1)
    }

    pub(crate) fn commit_all(&self, msg: &str) {
        git(self.path(), &["add", "-A"]);
        git(self.path(), &["commit", "-q", "-m", msg]);
    }

    pub(crate) fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    /// A command for the binary in this repository, with a fixed actor.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = releaseops();
        c.current_dir(self.path())
            .args(args)
            .env("RELEASEOPS_ACTOR", "Test Dev <dev@example.test>");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("binary runs"))
    }

    /// As [`Repo::run`], but a run that outlasts `limit` fails the test.
    #[track_caller]
    pub(crate) fn run_within(&self, limit: std::time::Duration, args: &[&str]) -> Run {
        Run::from(output_within(&mut self.command(args), limit))
    }

    /// Runs with extra environment variables.
    pub(crate) fn run_env(&self, vars: &[(&str, &str)], args: &[&str]) -> Run {
        let mut c = self.command(args);
        for (k, v) in vars {
            c.env(k, v);
        }
        Run::from(c.output().expect("binary runs"))
    }

    /// Runs as another actor.
    pub(crate) fn run_as(&self, actor: &str, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .env("RELEASEOPS_ACTOR", actor)
                .output()
                .expect("binary runs"),
        )
    }

    /// Runs at a simulated time (a rehearsal: the store must be one).
    pub(crate) fn run_at(&self, now: &str, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .arg("--rehearsal")
                .env("RELEASEOPS_NOW", now)
                .output()
                .expect("binary runs"),
        )
    }

    pub(crate) fn run_as_at(&self, actor: &str, now: &str, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .arg("--rehearsal")
                .env("RELEASEOPS_ACTOR", actor)
                .env("RELEASEOPS_NOW", now)
                .output()
                .expect("binary runs"),
        )
    }

    /// Every file under `.releaseops/` except the lock and the local cache,
    /// to check that a failed command changed nothing.
    pub(crate) fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        walk(
            &self.path().join(".releaseops"),
            &self.path().join(".releaseops"),
            &mut out,
        );
        out.sort();
        out
    }
}

impl Default for Repo {
    fn default() -> Self {
        Repo::new()
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if e.file_name() != ".cache" {
                walk(root, &p, out);
            }
        } else if p.file_name().is_some_and(|n| n != ".lock") {
            let rel = p
                .strip_prefix(root)
                .map(|r| r.to_string_lossy().to_string())
                .unwrap_or_default();
            out.push((rel, std::fs::read(&p).unwrap_or_default()));
        }
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}

/// JSON helpers for assertions on `--json` output.
pub(crate) mod serde_json_lite {
    pub(crate) use serde_json::Value;

    #[track_caller]
    pub(crate) fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
    }
}

/// A small agent for the `command` target: reads the bundle and the case on
/// stdin, reads its refund limit from the bundle's `system` prompt, and
/// answers with JSON. `input.mode` makes it misbehave on purpose.
pub(crate) const AGENT_PY: &str = r#"import json, os, re, sys, time
req = json.load(sys.stdin)
inp = req["input"]
if os.environ.get("MARK"):
    open(os.environ["MARK"], "a").write("called\n")
mode = inp.get("mode", "normal")
if mode == "sleep":
    open(inp["pidfile"], "w").write(str(os.getpid()))
    sys.stdout.flush()
    time.sleep(60)
if mode == "crash":
    sys.stderr.write("boom: the agent fell over\n")
    sys.exit(3)
if mode == "garbage":
    sys.stdout.buffer.write(b"\xff\xfe")
    sys.exit(0)
if mode == "flaky":
    print("yes" if req["repeat"] % 2 == 0 else "no")
    sys.exit(0)
system = req["bundle"]["prompts"]["system"]["content"]
limit = int(re.search(r"up to (\d+) dollars", system).group(1))
amount = inp.get("refund")
out = {"output": "Hello %s!" % inp.get("user_name", "there"), "tool_calls": [], "usage": {"input_tokens": 1000, "output_tokens": 500}}
if amount is not None:
    if amount <= limit:
        out["tool_calls"].append({"name": "issue_refund", "arguments": {"amount": amount}})
    else:
        out["output"] += " A manager will review that refund."
print(json.dumps(out))
"#;
