//! End-to-end benchmark of the real binary, as a user runs it: start-up,
//! `bundle create`, `promote` (including its git commit) with a short and a
//! 1,000,000-record history, and `history verify` of 1,000,000 records.
//!
//! Run with `cargo bench -p releaseops-cli --bench cli` (add `-- --quick` for
//! fewer samples). It builds the histories itself and prints a table of medians.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use releaseops_format::hash::sha256_prefixed;
use releaseops_format::history::{Deployments, EventKind, GateResult, GateStatus, Record};

const BIN: &str = env!("CARGO_BIN_EXE_releaseops");

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(dir: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("RELEASEOPS_ACTOR", "Bench <bench@example.test>")
        .output()
        .expect("run");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn new_repo() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("releaseops-bench-")
        .tempdir()
        .expect("tmp");
    git(d.path(), &["init", "-q", "-b", "main"]);
    git(d.path(), &["config", "user.name", "Bench"]);
    git(d.path(), &["config", "user.email", "bench@example.test"]);
    git(d.path(), &["config", "commit.gpgsign", "false"]);
    std::fs::create_dir_all(d.path().join(".promptops/prompts")).expect("mkdir");
    std::fs::create_dir_all(d.path().join("policies")).expect("mkdir");
    std::fs::write(
        d.path().join(".promptops/prompts/onboarding.yaml"),
        "prompt:\n  id: onboarding\n  template: 'Hello {{ user }}'\n",
    )
    .expect("w");
    std::fs::write(
        d.path().join("policies/tools.yaml"),
        "tools:\n- name: issue_refund\n  allowed: true\n",
    )
    .expect("w");
    git(d.path(), &["add", "-A"]);
    git(d.path(), &["commit", "-q", "-m", "project"]);
    git(d.path(), &["tag", "prompt-onboarding-v1.0.0"]);
    run(d.path(), &["init"]);
    d
}

/// Writes a valid chained history of `n` records (the shape of the existing
/// tool's benchmark: 50 bundles moving through dev -> staging -> prod, every
/// prod promotion with an eval gate result), plus the environment files and
/// deployment index that agree with it, and commits it all.
fn generate_history(dir: &Path, n: u64) {
    let envs = [
        ("dev", None),
        ("staging", Some("dev")),
        ("prod", Some("staging")),
    ];
    write_history(dir, n, &envs, |i| {
        (
            (i % 3) as usize,
            format!("agent-{}", i % 50),
            format!("1.{}.{}", i / 150, (i / 3) % 50),
        )
    });
}

/// Writes a valid chained history of `n` records through `envs` (the
/// pipeline, each with the stage before it): record `i` promotes
/// `pick(i) = (env index, bundle, version)`; then the environment files and
/// deployment index that agree with it, all committed.
fn write_history(
    dir: &Path,
    n: u64,
    envs: &[(&str, Option<&str>)],
    pick: impl Fn(u64) -> (usize, String, String),
) {
    let rel = dir.join(".releaseops");
    let mut deployments: Vec<Deployments> = envs
        .iter()
        .map(|(e, _)| Deployments {
            environment: e.to_string(),
            ..Default::default()
        })
        .collect();
    let mut prev: Option<String> = None;
    let mut seg = String::new();
    let mut seg_no = 0u64;
    std::fs::create_dir_all(rel.join("history")).expect("mkdir");
    let t0: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().expect("ts");
    for i in 0..n {
        let seq = i + 1;
        let (k, bundle, version) = pick(i);
        let (env, from) = envs[k];
        let at = t0
            .checked_add(jiff::SignedDuration::from_mins(i as i64))
            .expect("ts");
        let mut r = Record::new(
            EventKind::Promote,
            releaseops_format::time::format(at),
            "ci".into(),
        );
        r.seq = seq;
        r.prev = prev.clone();
        r.bundle_id = Some(bundle);
        r.version = Some(version);
        r.env = Some(env.into());
        r.from_env = from.map(str::to_string);
        let last = envs.last().map(|(e, _)| *e) == Some(env);
        r.state = Some(releaseops_format::history::state_for_env(env, last).into());
        r.reason = Some(format!("release {i}"));
        if env == "prod" {
            r.gates = vec![GateResult {
                gate: releaseops_format::history::Gate::Eval,
                status: GateStatus::Passed,
                reason: "suite 'smoke' passed (100% pass rate)".into(),
                passes_at: None,
            }];
        }
        let line = r.to_line();
        prev = Some(sha256_prefixed(line.as_bytes()));
        deployments[k].apply(&r);
        seg.push_str(&line);
        seg.push('\n');
        if seq % 1000 == 0 || seq == n {
            std::fs::write(rel.join(format!("history/{seg_no:08}.jsonl")), &seg).expect("w");
            seg.clear();
            seg_no += 1;
        }
    }
    std::fs::write(
        rel.join("history/HEAD"),
        format!("{{\"seq\":{n},\"hash\":\"{}\"}}", prev.unwrap_or_default()),
    )
    .expect("w");
    std::fs::create_dir_all(rel.join("deployments")).expect("mkdir");
    for d in &deployments {
        // The environment file maps what the history left live.
        let mut env = releaseops_format::environment::EnvironmentFile::new(&d.environment);
        for (b, stack) in &d.bundles {
            if let Some(top) = stack.last() {
                env.bundle_mappings.insert(b.clone(), top.version.clone());
            }
        }
        std::fs::write(
            rel.join(format!("environments/{}.yaml", d.environment)),
            env.to_yaml(),
        )
        .expect("w");
        std::fs::create_dir_all(rel.join(format!("deployments/{}", d.environment))).expect("mkdir");
        for (b, stack) in &d.bundles {
            let file = releaseops_format::history::DeploymentStack {
                environment: d.environment.clone(),
                bundle: b.clone(),
                stack: stack.clone(),
            };
            std::fs::write(
                rel.join(format!("deployments/{}/{b}.yaml", d.environment)),
                file.to_yaml(),
            )
            .expect("w");
        }
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "generated history"]);
}

fn bench_promote(dir: &Path, samples: usize) -> Duration {
    let mut times = Vec::new();
    for i in 0..samples {
        run(
            dir,
            &[
                "--no-commit",
                "bundle",
                "create",
                "h",
                "-v",
                &format!("1.0.{i}"),
                "-m",
                "m",
                "--provider",
                "anthropic",
            ],
        );
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "bench bundles"]);
    for i in 0..samples {
        times.push(run(
            dir,
            &["promote", "h", &format!("1.0.{i}"), "dev", "-r", "bench"],
        ));
    }
    median(times)
}

/// Median time to parse and validate a generated 10,000-case suite in process.
fn suite_load(runs: usize) -> Duration {
    let mut suite = String::from(
        "id: big\npass_threshold: 0.9\ntarget: {type: command, command: cat}\ncases:\n",
    );
    for i in 0..10_000 {
        suite.push_str(&format!(
            "- id: case_{i}\n  input: {{user_name: user{i}, refund: {}}}\n  expected_output: Hello user{i}\n  tags: [t{}]\n  assertions:\n  - type: contains\n    config: {{expected: Hello}}\n  - type: regex\n    config: {{pattern: 'user\\d+'}}\n",
            i % 200,
            i % 7
        ));
    }
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let parsed = releaseops_eval::Suite::parse(suite.as_bytes()).expect("suite parses");
                assert_eq!(parsed.cases.len(), 10_000);
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    // `-- --generate DIR N`: only build a repository with an N-record history
    // in DIR (for profiling by hand), then stop.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--generate") {
        let dir = std::path::PathBuf::from(args.get(i + 1).expect("--generate DIR N"));
        let n: u64 = args
            .get(i + 2)
            .and_then(|s| s.parse().ok())
            .expect("--generate DIR N");
        let repo = new_repo();
        generate_history(repo.path(), n);
        let kept = repo.keep();
        std::fs::rename(&kept, &dir).expect("move the repository into place");
        println!("{} has a {n}-record history", dir.display());
        return;
    }
    // `-- --agent`: only the decision agent's rows, and what it learns.
    if args.iter().any(|a| a == "--agent") {
        for (name, d, target, _) in agent_bench(11) {
            println!("{name:<72} {:>12} {target:>8}", ms(d));
        }
        learning_bench();
        return;
    }
    // `-- --learning`: only what the agent learns on simulated streams.
    if args.iter().any(|a| a == "--learning") {
        learning_bench();
        return;
    }
    // `-- --runtime`: only the runtime loader's rows.
    if args.iter().any(|a| a == "--runtime") {
        for (name, d, target) in runtime_bench() {
            println!("{name:<72} {:>12} {target:>8}", us(d));
        }
        return;
    }
    // `-- --server`: the API server under wrk (installed if missing).
    if args.iter().any(|a| a == "--server") {
        server_bench();
        return;
    }
    // `-- --dashboard`: the board of a large store, its weight, and how soon
    // a move shows in an open page.
    if args.iter().any(|a| a == "--dashboard") {
        dashboard_bench(args.iter().any(|a| a == "--quick"));
        return;
    }
    // `-- --sync`: a promote synced through a local bare remote, and eight
    // clones contending for it.
    if args.iter().any(|a| a == "--sync") {
        sync_bench(args.iter().any(|a| a == "--quick"));
        return;
    }
    // `-- --attribution`: attribution and replay, whole process.
    if args.iter().any(|a| a == "--attribution") {
        attribution_bench();
        return;
    }
    // `-- --suite-load`: only the 10,000-case suite load, 21 runs.
    if args.iter().any(|a| a == "--suite-load") {
        println!(
            "load a 10,000-case suite (parse + validate, in process): {:.1} ms (median of 21)",
            suite_load(21).as_secs_f64() * 1000.0
        );
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let n = |full: usize| if quick { (full / 5).max(3) } else { full };
    let mut rows: Vec<(String, Duration, &str, &str)> = Vec::new();

    let tmp = new_repo();
    let dir = tmp.path();
    let v = median((0..n(50)).map(|_| run(dir, &["--version"])).collect());
    rows.push(("releaseops --version".into(), v, "5 ms", "224 ms"));

    let creates: Vec<Duration> = (0..n(30))
        .map(|i| {
            run(
                dir,
                &[
                    "bundle",
                    "create",
                    "c",
                    "-v",
                    &format!("1.0.{i}"),
                    "-a",
                    "system=onboarding:v1.0.0",
                    "--policy",
                    "tools=policies/tools.yaml",
                    "-m",
                    "claude-sonnet-4-5",
                    "--provider",
                    "anthropic",
                ],
            )
        })
        .collect();
    rows.push((
        "bundle create (1 prompt from git, 1 policy, model; with git commit)".into(),
        median(creates),
        "30 ms",
        "413 ms",
    ));

    let short = new_repo();
    generate_history(short.path(), 10);
    let p10 = bench_promote(short.path(), n(30));
    rows.push((
        "promote with 10 history records (with git commit)".into(),
        p10,
        "50 ms",
        "316 ms",
    ));

    let big = new_repo();
    let records: u64 = if quick { 100_000 } else { 1_000_000 };
    let t = Instant::now();
    generate_history(big.path(), records);
    eprintln!(
        "generated and committed {records} records in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let pbig = bench_promote(big.path(), n(20));
    rows.push((
        format!("promote with {records} history records (with git commit)"),
        pbig,
        "50 ms",
        "10.2 s at 10,000",
    ));
    let verify = median(
        (0..n(5))
            .map(|_| run(big.path(), &["history", "verify"]))
            .collect(),
    );
    rows.push((
        format!("history verify, {records} records"),
        verify,
        "2 s",
        "-",
    ));

    // Evaluation: loading a 10,000-case suite (in process), and running 1,000
    // cases through the command target with a trivial agent (whole process).
    let load = suite_load(n(7));
    rows.push((
        "load a 10,000-case suite (parse + validate, in process)".into(),
        load,
        "100 ms",
        "423 ms at 1,000",
    ));
    let ev = new_repo();
    run(
        ev.path(),
        &[
            "bundle",
            "create",
            "e",
            "-m",
            "m",
            "--provider",
            "anthropic",
        ],
    );
    let mut thousand = String::from(
        "id: k\npass_threshold: 0.5\ntarget: {type: command, command: cat}\nconcurrency: 8\ncases:\n",
    );
    for i in 0..1000 {
        thousand.push_str(&format!("- id: c{i}\n  input: {{n: {i}}}\n  assertions: [{{type: contains, config: {{expected: case_id}}}}]\n"));
    }
    std::fs::write(ev.path().join(".releaseops/evals/k.yaml"), thousand).expect("write suite");
    let runs = median(
        (0..n(3))
            .map(|_| {
                run(
                    ev.path(),
                    &["eval", "run", "k", "--bundle", "e", "--no-save"],
                )
            })
            .collect(),
    );
    rows.push((
        "eval run: 1,000 cases, command target (`cat`), concurrency 8".into(),
        runs,
        "-",
        "-",
    ));

    // The runner against a loopback provider speaking the OpenAI wire format.
    for (delay_ms, label, target) in [
        (
            100u64,
            "eval: 1,000 cases, provider answers in 100 ms, concurrency 64",
            "2.03 s",
        ),
        (
            0,
            "eval: 1,000 cases, instant provider, concurrency 64 (per case: /1000)",
            "500 ms",
        ),
    ] {
        let d = median((0..n(3)).map(|_| runner_bench(delay_ms)).collect());
        rows.push((
            label.into(),
            d,
            target,
            if delay_ms > 0 { "~100 s" } else { "455 ms" },
        ));
    }

    rows.extend(agent_bench(n(7)));

    println!(
        "\n{:<72} {:>12} {:>8} {:>18}",
        "operation (median, whole process)", "releaseops", "target", "llmhq-releaseops"
    );
    for (name, d, target, py) in rows {
        println!("{name:<72} {:>12} {target:>8} {py:>18}", ms(d));
    }
}

/// A memory of 100,000 past decisions with outcomes from a simple incident
/// model (risky changes, Fridays and weekends fail more), then: the first
/// decision (memory image rebuilt from the records), later decisions, and
/// learning heuristics from all of it.
fn us(d: Duration) -> String {
    format!("{:.3} us", d.as_secs_f64() * 1e6)
}

/// The runtime loader in process, on a bundle with 3 prompts and 2 policies
/// live in prod: a cached load (median over batches of 100,000), and a cold
/// load by a new loader (median of 201).
/// A repository with support-agent 1.0.0 (3 prompts, 2 policies) live in
/// dev, staging and prod.
fn support_agent_store() -> tempfile::TempDir {
    let repo = new_repo();
    let dir = repo.path();
    run(dir, &["init"]);
    let mut create = vec!["bundle", "create", "support-agent", "-v", "1.0.0"];
    let prompts = ["system", "escalation", "summary"];
    let specs: Vec<String> = prompts
        .iter()
        .map(|role| {
            let rel = format!("prompts/{role}.md");
            std::fs::create_dir_all(dir.join("prompts")).expect("mkdir");
            std::fs::write(
                dir.join(&rel),
                format!("You are the {role} step of a support agent for Acme.\nGreet {{{{ user_name }}}}.\n")
                    .repeat(20),
            )
            .expect("prompt");
            format!("{role}=file:{rel}")
        })
        .collect();
    for s in &specs {
        create.extend(["-a", s.as_str()]);
    }
    std::fs::write(
        dir.join("policies/safety.yaml"),
        "constraints:\n- type: refund_limit\n  max_amount: 100\n- type: pii\n  redact: [email, phone]\n",
    )
    .expect("policy");
    create.extend([
        "--policy",
        "tools=policies/tools.yaml",
        "--policy",
        "safety=policies/safety.yaml",
        "-m",
        "claude-sonnet-4-5",
        "--provider",
        "anthropic",
    ]);
    run(dir, &create);
    for env in ["dev", "staging", "prod"] {
        run(dir, &["promote", "support-agent", "1.0.0", env]);
    }
    repo
}

fn runtime_bench() -> Vec<(String, Duration, &'static str)> {
    use releaseops_runtime::RuntimeLoader;
    let repo = support_agent_store();
    let dir = repo.path();
    let loader = RuntimeLoader::new(dir).expect("loader");
    let b = loader.load("support-agent@prod").expect("load");
    assert_eq!((b.prompts().len(), b.policies().len()), (3, 2));
    const BATCH: u32 = 100_000;
    let cached = median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..BATCH {
                    std::hint::black_box(
                        loader.load(std::hint::black_box("support-agent@prod")).ok(),
                    );
                }
                t.elapsed() / BATCH
            })
            .collect(),
    );
    let cold = median(
        (0..201)
            .map(|_| {
                let t = Instant::now();
                let l = RuntimeLoader::new(dir).expect("loader");
                std::hint::black_box(l.load("support-agent@prod").expect("load"));
                t.elapsed()
            })
            .collect(),
    );
    // Past the revalidation interval: one stat of the environment file.
    let eager = RuntimeLoader::with_revalidate(dir, Duration::ZERO).expect("loader");
    eager.load("support-agent@prod").expect("load");
    let revalidated = median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..1000 {
                    std::hint::black_box(eager.load("support-agent@prod").ok());
                }
                t.elapsed() / 1000
            })
            .collect(),
    );
    vec![
        (
            "runtime: cached load(\"support-agent@prod\") (in process)".into(),
            cached,
            "1 us",
        ),
        (
            "runtime: cold load, 3 prompts + 2 policies, verified (new loader)".into(),
            cold,
            "1000 us",
        ),
        (
            "runtime: load that re-checks the environment pointer (one stat)".into(),
            revalidated,
            "-",
        ),
    ]
}

fn agent_bench(runs: usize) -> Vec<(String, Duration, &'static str, &'static str)> {
    use releaseops_agent::{Context, Outcome};
    use releaseops_core::agent::{self, DecideRequest, OutcomeRecord};
    const EPISODES: usize = 100_000;
    let repo = new_repo();
    let dir = repo.path();
    run(dir, &["init"]);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let levels = ["LOW", "MEDIUM", "HIGH"];
    let days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let envs = ["dev", "staging", "prod"];
    let t = Instant::now();
    let mut records = Vec::with_capacity(EPISODES);
    let mut outcomes = Vec::with_capacity(EPISODES);
    for i in 0..EPISODES {
        let risk = next(3) as usize;
        let day = next(7) as usize;
        let v = serde_json::json!({
            "env": envs[next(3) as usize], "feature_risk": levels[risk],
            "service_criticality": levels[next(3) as usize], "day_of_week": days[day],
            "hour_of_day": next(24), "clash": next(10) == 0,
            "region": if next(2) == 0 { "eu" } else { "us" },
            "evals": {"pass_rate": 0.9 + next(10) as f64 / 100.0},
        });
        let context = Context::from_json(&v).expect("context");
        let id = format!("dec-{:06}", i + 1);
        let rec = agent::assess_with(
            agent::Knowledge {
                similar: Vec::new(),
                heuristics: &[],
                model: None,
                llm: None,
            },
            DecideRequest {
                context,
                bundle: None,
                gate: None,
                red_team_blocks: false,
            },
            id.clone(),
            "2026-11-01T10:00:00Z".into(),
            "Bench <bench@example.test>".into(),
        );
        let fail_in_100 = 5 + risk as u64 * 10 + if day >= 4 { 15 } else { 0 };
        outcomes.push(OutcomeRecord {
            decision_id: id,
            outcome: if next(100) < fail_in_100 {
                Outcome::Incident
            } else {
                Outcome::Success
            },
            note: None,
            actor: "Bench <bench@example.test>".into(),
            at: "2026-11-02T10:00:00Z".into(),
            source: "manual".into(),
        });
        records.push(rec);
    }
    let store = releaseops_store::Store::discover(dir).expect("store");
    agent::bulk_load(&store, &records, &outcomes).expect("bulk load");
    drop((records, outcomes));
    eprintln!(
        "generated {EPISODES} decisions with outcomes in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    std::fs::write(
        dir.join("ctx.json"),
        r#"{"env": "prod", "feature_risk": "MEDIUM", "service_criticality": "HIGH", "day_of_week": "THU", "hour_of_day": 15, "region": "eu"}"#,
    )
    .expect("context");
    let decide = ["agent", "decide", "--context", "ctx.json"];
    let first = run(dir, &decide);
    let learn = run(dir, &["agent", "reflect"]);
    let head = releaseops_core::agent::Head {
        decisions: EPISODES as u64 + 1,
        outcomes: EPISODES as u64,
        reflected_at: EPISODES as u64,
        settled_through: 0,
    };
    let memory = agent::load_memory(&store, &head).expect("memory");
    let derive = median(
        (0..runs.min(5))
            .map(|_| {
                let t = Instant::now();
                let hs = releaseops_agent::heuristics::derive(&memory, &[]);
                assert!(!hs.is_empty());
                t.elapsed()
            })
            .collect(),
    );
    // The incident model: refit from every outcome; then learning outcomes
    // one at a time, with the refit that comes every
    // `refit_every(100,000)` of them, amortised over those.
    use releaseops_agent::model;
    let refit = median(
        (0..runs.min(5))
            .map(|_| {
                let t = Instant::now();
                let m = agent::refit_memory(&memory);
                assert_eq!(m.outcomes, EPISODES as u64);
                t.elapsed()
            })
            .collect(),
    );
    let mut fitted = agent::refit_memory(&memory);
    let probe = releaseops_agent::Context::from_json(&serde_json::json!({
        "env": "prod", "feature_risk": "MEDIUM", "service_criticality": "HIGH",
        "day_of_week": "THU", "hour_of_day": 15, "region": "eu"}))
    .expect("context");
    let every = model::refit_every(EPISODES as u64);
    let t = Instant::now();
    for i in 0..every {
        fitted.learn_attributes(&probe.attributes(), i % 13 == 0);
    }
    fitted = agent::refit_memory(&memory);
    let learn_one = t.elapsed() / every as u32;
    assert!(fitted.learned_weights() > 0);
    let decisions = median((0..runs).map(|_| run(dir, &decide)).collect());
    // For profiling by hand: RELEASEOPS_BENCH_KEEP=1 keeps the repository.
    if std::env::var_os("RELEASEOPS_BENCH_KEEP").is_some() {
        eprintln!("kept {}", repo.keep().display());
    }
    vec![
        (
            "agent decide, 100,000 episodes (incident model by expected cost, with git commit)"
                .into(),
            decisions,
            "20 ms",
            "-",
        ),
        (
            "agent decide, 100,000 episodes, first after the records changed (image rebuilt)"
                .into(),
            first,
            "-",
            "-",
        ),
        (
            "derive heuristics from 100,000 episodes (in process)".into(),
            derive,
            "1 s",
            "-",
        ),
        (
            "agent reflect, 100,000 episodes (whole process, with git commit)".into(),
            learn,
            "-",
            "-",
        ),
        (
            "incident model: refit from 100,000 outcomes (in process)".into(),
            refit,
            "1 s",
            "-",
        ),
        (
            "incident model: learn one outcome (in process, amortised)".into(),
            learn_one,
            "1 ms",
            "-",
        ),
    ]
}

/// The decision agent on interaction-heavy streams of 300 releases, seeds 1
/// to 6, for each of three incident models (the default, and two of the
/// tests' own): its cost as a fraction of the best naive policy's (target
/// at most 0.55) beside the oracle's, and its change failure rate in the
/// second half of each stream against the first (target at most 0.6x),
/// pooled over the seeds.
fn learning_bench() {
    use releaseops_agent::simulate::{self, HiddenRisk, IncidentModel, Interaction};
    let costs = releaseops_agent::cost::Costs {
        incident: 40.0,
        delay: 1.0,
        drop: 5.0,
    };
    let when = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(a, v)| (a.to_string(), v.to_string()))
            .collect()
    };
    let models = [
        ("default model", IncidentModel::default()),
        (
            "team; team x WED, HIGH x evening",
            IncidentModel {
                hidden: vec![HiddenRisk {
                    attribute: "team".into(),
                    values: vec!["core".into(), "growth".into(), "platform".into()],
                    risky: "growth".into(),
                    factor: 3.0,
                }],
                interactions: vec![
                    Interaction {
                        when: when(&[("team", "core"), ("day_of_week", "WED")]),
                        factor: 4.0,
                    },
                    Interaction {
                        when: when(&[("service_criticality", "HIGH"), ("hour_band", "evening")]),
                        factor: 3.0,
                    },
                    Interaction {
                        when: when(&[("feature_risk", "MEDIUM"), ("day_of_week", "TUE")]),
                        factor: 2.5,
                    },
                ],
                ..IncidentModel::default()
            },
        ),
        (
            "region; us x evening, HIGH x THU, clash x eu",
            IncidentModel {
                hidden: vec![HiddenRisk {
                    attribute: "region".into(),
                    values: vec!["eu".into(), "us".into(), "latam".into()],
                    risky: "latam".into(),
                    factor: 3.0,
                }],
                interactions: vec![
                    Interaction {
                        when: when(&[("region", "us"), ("hour_band", "evening")]),
                        factor: 5.0,
                    },
                    Interaction {
                        when: when(&[("feature_risk", "HIGH"), ("day_of_week", "THU")]),
                        factor: 3.0,
                    },
                    Interaction {
                        when: when(&[("clash", "true"), ("region", "eu")]),
                        factor: 3.0,
                    },
                ],
                ..IncidentModel::default()
            },
        ),
        (
            "service; search x evening, HIGH crit x WED",
            IncidentModel {
                hidden: vec![HiddenRisk {
                    attribute: "service".into(),
                    values: vec!["checkout".into(), "search".into(), "profile".into()],
                    risky: "checkout".into(),
                    factor: 3.0,
                }],
                interactions: vec![
                    Interaction {
                        when: when(&[("service", "search"), ("hour_band", "evening")]),
                        factor: 4.0,
                    },
                    Interaction {
                        when: when(&[("service_criticality", "HIGH"), ("day_of_week", "WED")]),
                        factor: 3.0,
                    },
                    Interaction {
                        when: when(&[("feature_risk", "LOW"), ("day_of_week", "MON")]),
                        factor: 2.5,
                    },
                ],
                ..IncidentModel::default()
            },
        ),
        (
            "cloud; onprem x MON, LOW x night, clash x HIGH",
            IncidentModel {
                hidden: vec![HiddenRisk {
                    attribute: "cloud".into(),
                    values: vec!["aws".into(), "gcp".into(), "onprem".into()],
                    risky: "onprem".into(),
                    factor: 2.5,
                }],
                interactions: vec![
                    Interaction {
                        when: when(&[("cloud", "onprem"), ("day_of_week", "MON")]),
                        factor: 3.0,
                    },
                    Interaction {
                        when: when(&[("feature_risk", "LOW"), ("hour_band", "night")]),
                        factor: 3.0,
                    },
                    Interaction {
                        when: when(&[("clash", "true"), ("service_criticality", "HIGH")]),
                        factor: 2.5,
                    },
                ],
                ..IncidentModel::default()
            },
        ),
    ];
    // Seeds 1-6 as the issue's figures were first given; 1-30 because six
    // seeds are lucky or unlucky by several hundredths on these streams.
    println!(
        "{:<46} {:>16} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10} {:>20} {:>14}",
        "300 releases (cost of the best naive policy's)",
        "agent, seeds 1-6",
        "1-30",
        "informed",
        "oracle",
        "CFR 1-6",
        "CFR 1-30",
        "informed",
        "CFR 1st 2nd / oracle",
        "2nd half a / o"
    );
    for (name, model) in &models {
        #[derive(Default)]
        struct Pooled {
            agent: Vec<f64>,
            informed: Vec<f64>,
            oracle: Vec<f64>,
            // (incidents, shipped) in each half: the agent's, the informed
            // learner's, the oracle's.
            halves: [[(u64, u64); 2]; 3],
            // The second half's costs: agent, oracle, best naive.
            late: (f64, f64, f64),
        }
        let run = |seeds: std::ops::RangeInclusive<u64>| {
            let mut p = Pooled::default();
            for seed in seeds {
                let r = simulate::stream(300, seed, model, 2, &costs);
                let t = &r.total;
                let naive = t
                    .always_go
                    .cost(&costs)
                    .min(t.never_fri_weekend.cost(&costs));
                p.agent.push(t.agent.cost(&costs) / naive);
                p.oracle.push(t.oracle.cost(&costs) / naive);
                p.informed.push(t.informed.cost(&costs) / naive);
                for (h, w) in r.windows.iter().take(2).enumerate() {
                    for (k, tally) in [&w.agent, &w.informed, &w.oracle].into_iter().enumerate() {
                        p.halves[k][h].0 += tally.incidents;
                        p.halves[k][h].1 += tally.shipped;
                    }
                }
                if let Some(w) = r.windows.last() {
                    p.late.0 += w.agent.cost(&costs);
                    p.late.1 += w.oracle.cost(&costs);
                    p.late.2 += w
                        .always_go
                        .cost(&costs)
                        .min(w.never_fri_weekend.cost(&costs));
                }
            }
            p
        };
        let (six, thirty) = (run(1..=6), run(1..=30));
        let med = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        let (lo, hi) = (
            six.agent.iter().copied().fold(f64::INFINITY, f64::min),
            six.agent.iter().copied().fold(0.0, f64::max),
        );
        let cfr = |(i, s): (u64, u64)| i as f64 / s.max(1) as f64;
        let ratio = |h: [(u64, u64); 2]| cfr(h[1]) / cfr(h[0]).max(1e-9);
        println!(
            "{name:<46} {:>16} {:>8.2} {:>8.2} {:>8.2} {:>10.2} {:>10.2} {:>10.2} {:>20} {:>14}",
            format!("{:.2} ({lo:.2}-{hi:.2})", med(&six.agent)),
            med(&thirty.agent),
            med(&thirty.informed),
            med(&thirty.oracle),
            ratio(six.halves[0]),
            ratio(thirty.halves[0]),
            ratio(thirty.halves[1]),
            format!(
                "{:.1}% {:.1}% / {:.1}%",
                100.0 * cfr(thirty.halves[0][0]),
                100.0 * cfr(thirty.halves[0][1]),
                100.0 * cfr(thirty.halves[2][0]),
            ),
            format!(
                "{:.2} / {:.2}",
                thirty.late.0 / thirty.late.2,
                thirty.late.1 / thirty.late.2
            ),
        );
    }
    println!(
        "targets: agent <= 0.55 of the best naive policy's cost; CFR ratio (2nd half's over the 1st's, pooled) <= 0.60. Informed: a learner told every public risk's true size and which hidden patterns exist, learning only their sizes; 2nd half a / o: the agent's and the oracle's cost over the second halves, seeds 1-30"
    );
}

/// Runs 1,000 single-assertion cases through the model target against a
/// loopback server that answers after `delay_ms`; returns the wall time.
fn runner_bench(delay_ms: u64) -> Duration {
    use releaseops_eval::runner::{BundleUnderTest, RunOptions, run as run_suite};
    use releaseops_eval::target::{ModelTarget, Target};
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_delay(Duration::from_millis(delay_ms))
                    .set_body_json(serde_json::json!({"choices": [{"message": {"content": "Hello there"}}]})),
            )
            .mount(&server)
            .await;
        let mut yaml = String::from("id: perf\npass_threshold: 0.5\ncases:\n");
        for i in 0..1000 {
            yaml.push_str(&format!("- id: c{i}\n  input: {{message: 'hi {i}'}}\n  assertions: [{{type: contains, config: {{expected: Hello}}}}]\n"));
        }
        let suite = releaseops_eval::Suite::parse(yaml.as_bytes()).expect("suite");
        let target = Target::Model(Box::new(ModelTarget {
            client: releaseops_eval::providers::http_client().expect("client"),
            provider: releaseops_eval::providers::Provider::OpenAiCompatible,
            base_url: server.uri(),
            api_key: None,
            model: "m".into(),
            temperature: Some(0.0),
            max_tokens: 16,
            parameters: Default::default(),
            system_templates: vec!["You are terse.".into()],
            user_template: None,
            tools: Vec::new(),
            cache: None,
        limiter: None,
        }));
        let bundle = BundleUnderTest { id: "b".into(), version: "1".into(), hash: "sha256:x".into(), payload: serde_json::json!({}) };
        let opts = RunOptions {
            concurrency: 64,
            repeats: 1,
            tags: Vec::new(),
            run_id: "bench".into(),
            timestamp: String::new(),
            progress: None,
            case_timeout: Duration::from_secs(60),
            retry: Default::default(),
            judges: releaseops_eval::judge::JudgeEnv { client: None, retry: Default::default(), endpoints: Vec::new(), limiters: Vec::new() },
            cancel: None,
            redactor: Default::default(),
        };
        let t = Instant::now();
        let report = run_suite(&suite, target, &bundle, opts).await;
        let d = t.elapsed();
        assert_eq!(report.summary.passed, 1000, "{:?}", report.results.iter().find(|c| !c.passed));
        d
    })
}

/// wrk, or an attempt to install it from the distribution's packages.
fn find_wrk() -> Option<()> {
    let have = || {
        Command::new("wrk")
            .arg("--version")
            .output()
            .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
    };
    if have() {
        return Some(());
    }
    eprintln!("wrk is not installed; trying `apt-get install -y wrk`");
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-q", "wrk"])
        .status();
    have().then_some(())
}

/// Requests per second and mean latency from one wrk run.
fn wrk(url: &str, headers: &[String], secs: u32, pinned: bool) -> (f64, String) {
    let mut c = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", "wrk"]);
        c
    } else {
        Command::new("wrk")
    };
    c.args(["-t1", "-c32", &format!("-d{secs}s")]);
    for h in headers {
        c.args(["-H", h]);
    }
    let out = c.arg(url).output().expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let latency = text
        .lines()
        .find(|l| l.trim_start().starts_with("Latency"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("-")
        .to_string();
    assert!(
        !text.contains("Non-2xx or 3xx responses"),
        "errors under load:\n{text}"
    );
    (rps, latency)
}

/// One GET over a fresh connection: the status line and headers.
fn raw_get(url: &str, headers: &[String]) -> String {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut c = std::net::TcpStream::connect(host).expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(&format!("{h}\r\n"));
    }
    req.push_str("\r\n");
    c.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    c.read_to_string(&mut out).expect("answer");
    out.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n", "\n")
}

fn server_bench() {
    if find_wrk().is_none() {
        eprintln!("no wrk: install it (e.g. `apt-get install wrk`) and run again");
        return;
    }
    let repo = support_agent_store();
    let token = "bench-viewer-token-0123456789";
    // With two or more cores, the server gets core 0 and wrk core 1, so the
    // two do not fight over the same core and the figures compare requests.
    let pinned = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && Command::new("taskset").arg("-V").output().is_ok();
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    cmd.current_dir(repo.path())
        .args(["serve", "--addr", "127.0.0.1:0", "--public-reads"])
        .env("RELEASEOPS_API_TOKENS", format!("viewer:bench:{token}"));
    let (mut child, base) = serve(cmd);
    let url = format!("{base}/v1/resolve/support-agent@prod");
    // The ETag from a real answer, and proof that sending it back gets a 304.
    let etag = raw_get(&url, &[])
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an ETag")
        .trim()
        .to_string();
    let again = raw_get(&url, &[format!("If-None-Match: {etag}")]);
    assert!(again.starts_with("HTTP/1.1 304"), "{again}");
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "GET /v1/resolve/support-agent@prod -> 200 (3 prompts, 2 policies)",
            vec![],
        ),
        (
            "GET /v1/resolve/support-agent@prod, If-None-Match -> 304",
            vec![format!("If-None-Match: {etag}")],
        ),
        (
            "GET /v1/resolve/support-agent@prod with a bearer token -> 200",
            vec![format!("Authorization: Bearer {token}")],
        ),
    ];
    wrk(&url, &[], 2, pinned); // warm up
    // Rounds interleave the cases, so drift on a shared machine hits all alike.
    let mut runs: Vec<Vec<(f64, String)>> = vec![Vec::new(); cases.len()];
    for _ in 0..3 {
        for (i, (_, headers)) in cases.iter().enumerate() {
            runs[i].push(wrk(&url, headers, 10, pinned));
        }
    }
    let how = if pinned {
        "server on core 0, wrk -t1 -c32 on core 1; median of 3 x 10 s"
    } else {
        "wrk -t1 -c32; median of 3 x 10 s"
    };
    println!(
        "{:<66} {:>12} {:>10} {:>8}",
        format!("server ({how})"),
        "req/s",
        "latency",
        "target"
    );
    for ((name, _), mut r) in cases.iter().zip(runs) {
        r.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (rps, lat) = &r[1];
        println!("{name:<66} {rps:>12.0} {lat:>10} {:>8}", "20000");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Attribution and replay as a user runs them, on the demo's project:
/// `attribution explain` of one trace file (whole process), `analyze-batch`
/// of 10,000 traces from one file, and a replay of 200 recorded inputs
/// through the model target against a loopback provider answering in
/// 100 ms at concurrency 16 (the ideal: 13 waves of 100 ms).
fn attribution_bench() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("demo");
    let out = Command::new(BIN)
        .args(["demo", "--keep"])
        .arg(&dir)
        .output()
        .expect("demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.join("t1.json"),
        r#"{"trace_id": "t-001", "tool_calls": [{"name": "issue_refund", "arguments": {"amount": 130, "order_id": "A-1"}}], "output": "I have refunded 130 dollars."}"#,
    )
    .expect("trace");
    let one = median(
        (0..21)
            .map(|_| {
                run(
                    &dir,
                    &[
                        "attribution",
                        "explain",
                        "t1.json",
                        "--bundle",
                        "support-agent@1.1.0",
                    ],
                )
            })
            .collect(),
    );
    let mut lines = String::new();
    for i in 0..10_000u32 {
        let amount = 10 + (i * 37) % 140;
        lines += &format!(
            "{{\"trace_id\": \"t-{i}\", \"input\": \"Please refund {amount} dollars for order A-{i}\", \"tool_calls\": [{{\"name\": \"lookup_order\", \"arguments\": {{\"order_id\": \"A-{i}\"}}}}, {{\"name\": \"issue_refund\", \"arguments\": {{\"amount\": {amount}}}}}], \"output\": \"Hello! I have refunded {amount} dollars.\"}}\n"
        );
    }
    std::fs::write(dir.join("batch.jsonl"), lines).expect("batch");
    let batch = median(
        (0..5)
            .map(|_| {
                run(
                    &dir,
                    &[
                        "attribution",
                        "analyze-batch",
                        "batch.jsonl",
                        "--bundle",
                        "support-agent@1.1.0",
                        "--format",
                        "json",
                    ],
                )
            })
            .collect(),
    );
    println!(
        "{:<72} {:>12} {:>8}",
        "attribution explain, one trace file (whole process)",
        ms(one),
        "20 ms"
    );
    println!(
        "{:<72} {:>12} {:>8}",
        "attribution analyze-batch, 10,000 traces in one file (whole process)",
        ms(batch),
        "2 s"
    );
    println!(
        "{:<72} {:>12} {:>8}",
        "  per trace in that batch",
        format!("{:.3} ms", batch.as_secs_f64() * 1000.0 / 10_000.0),
        "5 ms"
    );

    // Replay through the model target against a loopback provider.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt.block_on(async {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_delay(Duration::from_millis(100))
                    .set_body_json(serde_json::json!({"choices": [{"message": {"content": "Hello! I have refunded the order."}}]})),
            )
            .mount(&server)
            .await;
        server
    });
    let r = new_repo();
    let rdir = r.path();
    run(rdir, &["init"]);
    let cfg = std::fs::read_to_string(rdir.join(".releaseops/config.yaml")).expect("config");
    std::fs::write(
        rdir.join(".releaseops/config.yaml"),
        format!("{cfg}traces:\n  capture_content: true\n"),
    )
    .expect("config");
    std::fs::write(
        rdir.join("system.md"),
        "You are a support agent. You may refund up to 100 dollars.\n",
    )
    .expect("prompt");
    git(rdir, &["add", "-A"]);
    git(rdir, &["commit", "-qm", "prompt"]);
    run(
        rdir,
        &[
            "bundle",
            "create",
            "agent",
            "-v",
            "1.0.0",
            "-a",
            "system=file:system.md",
            "-m",
            "gpt-bench",
            "--provider",
            "openai",
        ],
    );
    let mut lines = String::new();
    for i in 0..200 {
        lines += &format!(
            "{{\"trace_id\": \"r-{i}\", \"input\": \"Refund order A-{i}\", \"output\": \"Hello! I have refunded the order.\", \"timestamp\": \"2026-11-20T10:00:00Z\", \"metadata\": {{\"releaseops.bundle_id\": \"agent\", \"releaseops.bundle_version\": \"1.0.0\", \"releaseops.environment\": \"prod\"}}}}\n"
        );
    }
    std::fs::write(rdir.join("prod.jsonl"), lines).expect("traces");
    run(rdir, &["traces", "import", "prod.jsonl"]);
    let replay = |i: usize| {
        let t = Instant::now();
        let suite = format!("replay-{i}");
        let out = Command::new(BIN)
            .current_dir(rdir)
            .args([
                "replay",
                "--bundle",
                "agent@1.0.0",
                "--from-traces",
                "--source",
                "agent@1.0.0",
                "--limit",
                "200",
                "--concurrency",
                "16",
                "--no-cache",
                "--suite",
                &suite,
            ])
            .env("OPENAI_BASE_URL", server.uri())
            .env("RELEASEOPS_ACTOR", "Bench <bench@example.test>")
            .output()
            .expect("replay");
        let d = t.elapsed();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        d
    };
    let d = median((0..3).map(replay).collect());
    let ideal = 1.3;
    println!(
        "{:<72} {:>12} {:>8}",
        format!(
            "replay: 200 inputs, provider 100 ms, concurrency 16 ({:.2}x the ideal {ideal} s)",
            d.as_secs_f64() / ideal
        ),
        ms(d),
        "1.69 s"
    );
    drop(server);
}

/// Starts `releaseops serve` as `cmd` says: the child and the address it
/// printed (no trailing slash).
fn serve(mut cmd: Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("address");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("an address")
        .trim_end_matches('/')
        .to_string();
    (child, url)
}

/// One GET over a fresh connection: the status code, the body's bytes and
/// how long the answer took.
fn timed_get(url: &str) -> (u16, Vec<u8>, Duration) {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let t = Instant::now();
    let mut c = std::net::TcpStream::connect(host).expect("connect");
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = Vec::new();
    c.read_to_end(&mut out).expect("answer");
    let took = t.elapsed();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = out[split..].to_vec();
    // Chunked answers: join the chunks.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut joined = Vec::new();
        let mut rest = &body[..];
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            let len =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..p]).trim(), 16).unwrap_or(0);
            if len == 0 {
                break;
            }
            joined.extend_from_slice(&rest[p + 2..(p + 2 + len).min(rest.len())]);
            rest = &rest[(p + 4 + len).min(rest.len())..];
        }
        body = joined;
    }
    (code, body, took)
}

/// The board of 1,000 bundles in 5 stages over a 1,000,000-record history
/// (every stage runs the same versions: what waits is measured apart, on the
/// demo's project, where each waiting version's gates are evaluated).
fn dashboard_bench(quick: bool) {
    use std::io::{Read, Write};
    let repo = new_repo();
    let dir = repo.path();
    let envs = [
        ("dev", None),
        ("qa", Some("dev")),
        ("staging", Some("qa")),
        ("canary", Some("staging")),
        ("prod", Some("canary")),
    ];
    std::fs::write(
        dir.join(".releaseops/config.yaml"),
        "pipeline: [dev, qa, staging, canary, prod]\n",
    )
    .expect("config");
    let bundles = 1000u64;
    let records: u64 = if quick { 100_000 } else { 1_000_000 };
    let t = Instant::now();
    // Each round of 1,000 records moves every bundle one stage on; every
    // five rounds, a new version starts in dev.
    write_history(dir, records, &envs, |i| {
        (
            ((i / bundles) % 5) as usize,
            format!("agent-{:04}", i % bundles),
            format!("1.0.{}", i / (bundles * 5)),
        )
    });
    eprintln!(
        "generated {records} records over {bundles} bundles x 5 stages in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let start = |dir: &Path| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env_remove("RELEASEOPS_API_TOKENS")
            .env_remove("RELEASEOPS_API_TOKENS_FILE");
        serve(cmd)
    };
    // A real bundle to move while a page is open.
    for k in 0..6 {
        run(
            dir,
            &[
                "bundle",
                "create",
                "live-agent",
                "-v",
                &format!("1.0.{k}"),
                "-a",
                "system=onboarding:v1.0.0",
                "--policy",
                "tools=policies/tools.yaml",
                "-m",
                "claude-sonnet-4-5",
                "--provider",
                "anthropic",
            ],
        );
    }
    let (mut child, url) = start(dir);
    // Cold: each page the first time (its gates evaluated, the verified
    // state read); warm: a page again while the history has not moved.
    let mut renders = Vec::new();
    for k in 0..21 {
        let (code, body, took) = timed_get(&format!("{url}/?page={k}"));
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        if k > 0 {
            renders.push(took);
        }
    }
    let warm: Vec<Duration> = (0..21)
        .map(|_| timed_get(&format!("{url}/?page=3")).2)
        .collect();
    let (_, first_page, _) = timed_get(&format!("{url}/"));
    let html = String::from_utf8_lossy(&first_page).to_string();
    let assets: usize = html
        .split("/assets/")
        .skip(1)
        .map(|a| {
            timed_get(&format!(
                "{url}/assets/{}",
                a.split('"').next().unwrap_or_default()
            ))
            .1
            .len()
        })
        .sum();
    let page_weight = first_page.len() + assets;
    // A move seen by an open page: the event stream says so, and the page
    // fetches the board again.
    let rest = url.trim_start_matches("http://").to_string();
    let mut sse = std::net::TcpStream::connect(&rest).expect("connect");
    write!(
        sse,
        "GET /v1/events HTTP/1.1\r\nHost: {rest}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("send");
    sse.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = [0u8; 65536];
    let mut seen = String::new();
    while !seen.contains("event: snapshot") {
        let n = sse.read(&mut buf).expect("the snapshot");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let mut moves = Vec::new();
    let mut commands = Vec::new();
    for round in 0..5 {
        let version = format!("1.0.{round}");
        let t = Instant::now();
        let out = Command::new(BIN)
            .current_dir(dir)
            .args(["promote", "live-agent", &version, "dev"])
            .env("RELEASEOPS_ACTOR", "Bench <bench@example.test>")
            .output()
            .expect("rollback");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        commands.push(t.elapsed());
        let mut got = String::new();
        while !got.contains("event: moved") {
            let n = sse.read(&mut buf).expect("the move");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let (code, _, _) = timed_get(&format!("{url}/fragments/board"));
        assert_eq!(code, 200);
        moves.push(t.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    // What one waiting version costs: the demo's board, where three wait
    // (each a dry-run promotion: facts, the gates, the agent).
    let demo = tempfile::tempdir().expect("tmp");
    let out = Command::new(BIN)
        .args(["demo", "--keep"])
        .arg(demo.path())
        .output()
        .expect("demo");
    assert!(out.status.success());
    let (mut child, url) = start(demo.path());
    let demo_renders: Vec<Duration> = (0..21).map(|_| timed_get(&format!("{url}/")).2).collect();
    let _ = child.kill();
    let _ = child.wait();
    println!("{:<78} {:>10} {:>8}", "dashboard", "median", "target");
    println!(
        "{:<78} {:>10} {:>8}",
        format!("board, 1,000 bundles x 5 stages, {records} records: a page of 25, first view"),
        ms(median(renders)),
        "20 ms"
    );
    println!(
        "{:<78} {:>10} {:>8}",
        "  the same page again, the history unchanged (whole request)",
        ms(median(warm)),
        "20 ms"
    );
    println!(
        "{:<78} {:>10} {:>8}",
        "board of the demo's project (3 versions waiting; the first view evaluates their gates)",
        ms(median(demo_renders)),
        ""
    );
    println!(
        "{:<78} {:>7} KB {:>8}",
        "the board's page weight, with its stylesheet and script",
        page_weight / 1024,
        "150 KB"
    );
    println!(
        "{:<78} {:>10} {:>8}",
        "a promotion made with the CLI, seen by an open page (from the command's start)",
        ms(median(moves)),
        "200 ms"
    );
    println!(
        "{:<78} {:>10} {:>8}",
        "  of which the promote command itself (whole process, with git commit)",
        ms(median(commands)),
        ""
    );
}

/// Runs the binary in `dir` as `actor`; the time, whether it succeeded,
/// and how many times the remote moved under it (the CLI's note).
fn run_synced(dir: &Path, actor: &str, args: &[&str]) -> (Duration, bool, u64) {
    let t = Instant::now();
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("RELEASEOPS_ACTOR", actor)
        .output()
        .expect("run");
    let d = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    let moved = err
        .split("moved ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (d, out.status.success(), moved)
}

/// A bare remote and a clone of it with a store and sync on.
fn synced_team() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::Builder::new()
        .prefix("releaseops-bench-sync-")
        .tempdir()
        .expect("tempdir");
    git(
        root.path(),
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    );
    let a = root.path().join("a");
    git(root.path(), &["init", "-q", "-b", "main", "a"]);
    git(&a, &["config", "user.name", "Bench"]);
    git(&a, &["config", "user.email", "bench@example.test"]);
    std::fs::write(a.join("system.txt"), "You are a support agent.\n").expect("write");
    run(&a, &["init"]);
    git(&a, &["add", "-A"]);
    git(&a, &["commit", "-q", "-m", "init"]);
    git(&a, &["remote", "add", "origin", "../remote.git"]);
    run(&a, &["sync", "--enable", "origin"]);
    git(&a, &["push", "-q", "origin", "main"]);
    (root, a)
}

fn sync_bench(quick: bool) {
    let n = if quick { 9 } else { 31 };
    let (root, a) = synced_team();
    let create = |dir: &Path, id: &str, v: &str| {
        run(
            dir,
            &[
                "bundle",
                "create",
                id,
                "-v",
                v,
                "-a",
                "system=file:system.txt",
                "-m",
                "gpt-4o",
            ],
        )
    };
    for i in 0..n {
        create(&a, "c", &format!("1.0.{i}"));
    }
    let promotes: Vec<Duration> = (0..n)
        .map(|i| run(&a, &["promote", "c", &format!("1.0.{i}"), "dev"]))
        .collect();
    let synced = median(promotes);
    // The same promotions without sync, for what sync adds.
    let plain = new_repo();
    std::fs::write(
        plain.path().join("system.txt"),
        "You are a support agent.\n",
    )
    .expect("write");
    run(plain.path(), &["init"]);
    for i in 0..n {
        create(plain.path(), "c", &format!("1.0.{i}"));
    }
    let local = median(
        (0..n)
            .map(|i| run(plain.path(), &["promote", "c", &format!("1.0.{i}"), "dev"]))
            .collect(),
    );
    println!(
        "{:<72} {:>12} {:>8}",
        "promote, synced through a local bare remote (median)",
        ms(synced),
        "150 ms"
    );
    println!(
        "{:<72} {:>12} {:>8}",
        "promote, the same without sync (median)",
        ms(local),
        ""
    );

    // Eight clones at once, each creating and promoting its own bundle.
    const CLONES: usize = 8;
    let per = if quick { 6 } else { 25 };
    let clones: Vec<std::path::PathBuf> = (0..CLONES)
        .map(|i| {
            let name = format!("c{i}");
            git(
                root.path(),
                &["clone", "-q", "-b", "main", "remote.git", &name],
            );
            let dir = root.path().join(&name);
            git(&dir, &["config", "user.name", &name]);
            git(
                &dir,
                &["config", "user.email", &format!("{name}@example.test")],
            );
            run(&dir, &["sync"]);
            dir
        })
        .collect();
    let start = Instant::now();
    let results: Vec<Vec<(Duration, bool, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = clones
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                s.spawn(move || {
                    let actor = format!("C{i} <c{i}@example.test>");
                    let id = format!("agent-{i}");
                    (0..per)
                        .map(|k| {
                            let v = format!("1.0.{}", k / 2);
                            if k % 2 == 0 {
                                run_synced(
                                    dir,
                                    &actor,
                                    &[
                                        "bundle",
                                        "create",
                                        &id,
                                        "-v",
                                        &v,
                                        "-a",
                                        "system=file:system.txt",
                                        "-m",
                                        "gpt-4o",
                                    ],
                                )
                            } else {
                                run_synced(dir, &actor, &["promote", &id, &v, "dev"])
                            }
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("clone"))
            .collect()
    });
    let wall = start.elapsed();
    let all: Vec<&(Duration, bool, u64)> = results.iter().flatten().collect();
    let ok = all.iter().filter(|r| r.1).count();
    let retries: u64 = all.iter().map(|r| r.2).sum();
    let mut moved: Vec<u64> = all.iter().map(|r| r.2).collect();
    moved.sort_unstable();
    let latencies = median(all.iter().map(|r| r.0).collect());
    println!(
        "8 clones x {per} operations at once: {ok}/{} landed in {:.1} s ({:.1} operations/s); \
         {:.2} retries per operation (median {}, 90th percentile {}, most {}); median latency {}",
        all.len(),
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64(),
        retries as f64 / all.len().max(1) as f64,
        moved[moved.len() / 2],
        moved[moved.len() * 9 / 10],
        moved.last().copied().unwrap_or(0),
        ms(latencies)
    );
}
