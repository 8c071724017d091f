//! Processes killed with SIGKILL at random moments during promotions leave
//! the store whole: `history verify` passes and environments match the history.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::Repo;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn sigkill_at_random_moments_leaves_all_or_nothing() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("crash test seed: {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = Lcg(seed);
    let r = Repo::initialized();
    let versions: Vec<String> = (0..6).map(|i| format!("1.{i}.0")).collect();
    for v in versions.iter().chain(&["2.0.0".to_string()]) {
        r.run(&[
            "bundle",
            "create",
            "c",
            "-v",
            v,
            "-m",
            v,
            "--provider",
            "anthropic",
        ])
        .ok();
    }
    r.run(&["promote", "c", "1.0.0", "dev"]).ok();
    let mut killed = 0;
    let mut completed = 0;
    for round in 0..40 {
        let args: Vec<String> = if rng.next(3) == 0 {
            vec!["rollback".into(), "dev".into(), "c".into()]
        } else {
            vec![
                "promote".into(),
                "c".into(),
                versions[rng.next(versions.len() as u64) as usize].clone(),
                "dev".into(),
            ]
        };
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let mut child = r
            .command(&a)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        // Anywhere from before the lock to after the git commit.
        std::thread::sleep(Duration::from_micros(rng.next(25_000)));
        match child.try_wait().expect("wait") {
            Some(_) => completed += 1,
            None => {
                child.kill().expect("SIGKILL");
                killed += 1;
            }
        }
        let _ = child.wait();
        // Opening the store finishes (or discards) whatever the killed process left.
        let v = r.run(&["--json", "history", "verify"]);
        assert_eq!(
            v.code, 0,
            "round {round} ({args:?}), seed {seed}:\n{}\n{}",
            v.stdout, v.stderr
        );
        assert!(
            !r.path().join(".releaseops/.journal").exists(),
            "round {round}: journal left behind"
        );
    }
    eprintln!("{killed} killed, {completed} completed");
    assert!(
        killed > 0,
        "no process was killed mid-flight; the test proved nothing (seed {seed})"
    );
    // Every finished change is committed, and git agrees with the files.
    assert_eq!(
        r.git(&["status", "--porcelain", "--", ".releaseops"]),
        "",
        "seed {seed}"
    );
    // After all that the store still works and commits.
    let head = r.git(&["rev-parse", "HEAD"]);
    r.run(&["promote", "c", "2.0.0", "dev"]).ok();
    assert_ne!(r.git(&["rev-parse", "HEAD"]), head);
    r.run(&["history", "verify"]).ok();
}
