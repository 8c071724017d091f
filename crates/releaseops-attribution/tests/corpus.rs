//! The floor the offline method holds on the corpus: the right line or
//! rule first in at least 85 % of cases, every rule-breaking action
//! assessed as contradicting.

mod support;
use support as corpus;

#[test]
fn the_right_line_is_first_and_every_broken_rule_is_named() {
    let agents = corpus::load();
    let s = corpus::score(&agents);
    assert!(agents.len() >= 3, "three agents at least");
    assert!(s.cases >= 30, "30 cases at least, found {}", s.cases);
    assert!(
        s.paraphrased * 5 >= s.cases,
        "a fifth paraphrased: {} of {}",
        s.paraphrased,
        s.cases
    );
    let rate = s.first as f64 / s.cases as f64;
    let report = s.misses.join("\n");
    assert!(
        rate >= 0.85,
        "right line first in {} of {} ({rate:.3}):\n{report}",
        s.first,
        s.cases
    );
    // Flagged, and by the rule it breaks: a contradiction of another rule
    // names nothing.
    assert_eq!(
        s.contradicting_named, s.contradicting,
        "every broken rule is named:\n{report}"
    );
}

/// The held-out sets whose misses have been read hold what they reached, so
/// that a rule made for one set cannot quietly cost another: no compliant
/// action called a contradiction, and no fewer right lines first.
#[test]
fn the_read_held_out_sets_keep_their_figures() {
    for (dir, floor, named) in [
        ("corpus-holdout", 25, 8),
        ("corpus-holdout-2", 23, 8),
        ("corpus-holdout-3", 25, 5),
        ("corpus-holdout-4", 17, 5),
    ] {
        let s = corpus::score(&corpus::load_from(&corpus::crate_dir().join(dir)));
        let report = s.misses.join("\n");
        assert_eq!(
            s.false_contradictions, 0,
            "{dir}: a compliant action flagged:\n{report}"
        );
        assert!(
            s.first >= floor,
            "{dir}: {} first, was {floor}:\n{report}",
            s.first
        );
        assert!(
            s.contradicting_named >= named,
            "{dir}: {} broken rules named, was {named}:\n{report}",
            s.contradicting_named
        );
    }
}
