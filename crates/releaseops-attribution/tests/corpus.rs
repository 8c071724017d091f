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
    assert_eq!(
        s.contradicting_flagged, s.contradicting,
        "every broken rule is named:\n{report}"
    );
}
