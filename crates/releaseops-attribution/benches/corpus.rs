//! The offline method's figures: on the corpus, how often the right line or
//! rule is ranked first (all cases and the paraphrased ones) and how many
//! rule-breaking actions are assessed as contradicting; then its speed:
//! one trace explained in a batch, 10,000 traces, and the index of a
//! 100,000-line prompt. `cargo bench -p releaseops-attribution --bench corpus [-- --misses]`

#[path = "../tests/support/mod.rs"]
mod corpus;

use std::time::Instant;

use releaseops_attribution::{Artifact, BundleText, Index};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let show_misses = std::env::args().any(|a| a == "--misses");
    let agents = corpus::load();
    let s = corpus::score(&agents);
    println!(
        "corpus: {} agents, {} cases ({} paraphrased, {} breaking a rule)",
        agents.len(),
        s.cases,
        s.paraphrased,
        s.contradicting
    );
    println!(
        "right line or rule first: {}/{} = {:.1} %  (target >= 85 %)",
        s.first,
        s.cases,
        100.0 * s.first as f64 / s.cases.max(1) as f64
    );
    println!(
        "  paraphrased: {}/{} = {:.1} %",
        s.paraphrased_first,
        s.paraphrased,
        100.0 * s.paraphrased_first as f64 / s.paraphrased.max(1) as f64
    );
    println!(
        "rule-breaking actions assessed as contradicting: {}/{}  (target: all), {} of them naming the rule broken; compliant ones flagged: {}",
        s.contradicting_flagged, s.contradicting, s.contradicting_named, s.false_contradictions
    );
    if let Some(i) = std::env::args().position(|a| a == "--case") {
        let want = std::env::args().nth(i + 1).unwrap_or_default();
        let mut all = corpus::load();
        for name in ["corpus-holdout", "corpus-holdout-2"] {
            all.extend(corpus::load_from(&corpus::crate_dir().join(name)));
        }
        for a in &all {
            let index = Index::new(&a.bundle);
            for c in a.cases.iter().filter(|c| c.file.contains(&want)) {
                let at = index.explain(&c.trace);
                for inf in at.influences.iter().take(8) {
                    println!(
                        "{:<28} {:.2} {:<12} {} | {}",
                        corpus::name_of(inf),
                        inf.confidence,
                        inf.effect.as_str(),
                        inf.reasoning,
                        inf.confidence_reason
                    );
                }
                println!(
                    "=> {} ({})",
                    at.overall_assessment.as_str(),
                    at.assessment_reason
                );
            }
        }
        return;
    }
    if show_misses {
        for m in &s.misses {
            println!("  miss: {m}");
        }
    }
    // Held-out sets, each written after the method by a session that had not
    // read its code. Those whose misses have since been read (and general
    // rules made of them) say so; `--holdout-misses` lists those only, so
    // that the last stays a measure nobody tuned against.
    const SETS: &[(&str, bool)] = &[
        ("corpus-holdout", true),
        ("corpus-holdout-2", true),
        ("corpus-holdout-3", true),
        ("corpus-holdout-4", true),
        ("corpus-holdout-5", false),
    ];
    for (n, (name, read)) in SETS.iter().enumerate() {
        let held = corpus::load_from(&corpus::crate_dir().join(name));
        let h = corpus::score(&held);
        println!(
            "held-out set {} ({name}, {}): {}/{} = {:.1} % first ({}/{} paraphrased), {}/{} rule-breaking actions contradicting ({} naming the rule), {} compliant flagged",
            n + 1,
            if *read { "misses read" } else { "never read" },
            h.first,
            h.cases,
            100.0 * h.first as f64 / h.cases.max(1) as f64,
            h.paraphrased_first,
            h.paraphrased,
            h.contradicting_flagged,
            h.contradicting,
            h.contradicting_named,
            h.false_contradictions
        );
        if *read && std::env::args().any(|a| a == "--holdout-misses") {
            for m in &h.misses {
                println!("  held-out miss: {m}");
            }
        }
    }

    // Speed: every corpus trace against its agent's index, repeated to 10,000.
    let indexes: Vec<Index> = agents.iter().map(|a| Index::new(&a.bundle)).collect();
    let work: Vec<(usize, &releaseops_attribution::Trace)> = agents
        .iter()
        .enumerate()
        .flat_map(|(i, a)| a.cases.iter().map(move |c| (i, &c.trace)))
        .collect();
    let mut batch = Vec::new();
    let mut per = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let mut n = 0usize;
        while n < 10_000 {
            let (i, tr) = work[n % work.len()];
            std::hint::black_box(indexes[i].explain(tr));
            n += 1;
        }
        let s = t.elapsed().as_secs_f64();
        batch.push(s);
        per.push(s / 10_000.0);
    }
    println!(
        "10,000 traces explained: median {:.1} ms ({:.3} ms per trace; targets: 2 s, 5 ms)",
        median(batch) * 1e3,
        median(per) * 1e3
    );
    let mut build = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for a in &agents {
            std::hint::black_box(Index::new(&a.bundle));
        }
        build.push(t.elapsed().as_secs_f64() / agents.len() as f64);
    }
    println!(
        "an agent's index built: median {:.3} ms",
        median(build) * 1e3
    );

    let long: String = (0..100_000)
        .map(|i| format!("Rule {i}: never approve requests of more than {i} units without a review by team {i}.\n"))
        .collect();
    let big = BundleText {
        id: "big".into(),
        version: "1".into(),
        prompts: vec![Artifact::new("system", "prompts/big@1", &long)],
        policies: Vec::new(),
        model: None,
    };
    let t = Instant::now();
    let index = Index::new(&big);
    let built = t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::hint::black_box(index.explain(work[0].1));
    println!(
        "a 100,000-line prompt: indexed in {:.0} ms, a trace explained in {:.0} ms",
        built * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
}
