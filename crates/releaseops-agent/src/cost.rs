//! Decisions by expected cost. With an incident costing `incident`, a delay
//! `delay` and a dropped release `drop` (`agent.costs` in config.yaml, whose
//! defaults live with the config), the options cost:
//!
//! - GO now: `incident x P(incident now)`;
//! - DELAY to the next allowed slot: `delay + incident x P(incident at the
//!   slot)`, when there is a slot;
//! - NO_GO: `drop`.
//!
//! The cheapest wins; a tie goes to the more cautious option (NO_GO, then
//! DELAY). The probability used is the model's posterior mean, for every
//! service. Pricing a HIGH-criticality service at the upper end of the
//! 90 % interval was tried and measured (`agent simulate --stream`): that
//! end narrows only with outcomes, and a release held for it never has one,
//! so the hold feeds itself; over 2,000 releases such an agent ended up
//! holding almost everything and cost more than the fixed rules. What a
//! critical service stands to lose belongs in `agent.costs`, and the
//! evidence floors (`crate::decide`) hold whatever the model says.

use serde::Serialize;

use crate::action::Action;
use crate::model::Prediction;

/// What each kind of consequence costs, in the team's units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Costs {
    pub incident: f64,
    pub delay: f64,
    pub drop: f64,
}

/// One option and what it is expected to cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct OptionCost {
    pub action: Action,
    /// `None`: not available (no slot to delay to).
    pub expected: Option<f64>,
    /// The incident probability the cost was computed with.
    pub p_incident: Option<f64>,
}

/// The cheapest option, and all three.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub action: Action,
    pub options: [OptionCost; 3],
}

/// Chooses between GO now (with the prediction `now`), DELAY to a slot
/// (with the prediction `at_slot`, if there is one) and NO_GO.
pub fn choose(costs: &Costs, now: &Prediction, at_slot: Option<&Prediction>) -> Choice {
    let p = |x: &Prediction| x.p;
    let go = OptionCost {
        action: Action::Go,
        expected: Some(costs.incident * p(now)),
        p_incident: Some(p(now)),
    };
    let delay = OptionCost {
        action: Action::Delay,
        expected: at_slot.map(|s| costs.delay + costs.incident * p(s)),
        p_incident: at_slot.map(p),
    };
    let no_go = OptionCost {
        action: Action::NoGo,
        expected: Some(costs.drop),
        p_incident: None,
    };
    // Most cautious first, so that a tie keeps it.
    let mut best = no_go;
    for o in [delay, go] {
        if let (Some(c), Some(b)) = (o.expected, best.expected)
            && c < b
        {
            best = o;
        }
    }
    Choice {
        action: best.action,
        options: [go, delay, no_go],
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The config's defaults, as test data.
    pub(crate) const COSTS: Costs = Costs {
        incident: 40.0,
        delay: 1.0,
        drop: 5.0,
    };

    fn pred(p: f64, low: f64, high: f64) -> Prediction {
        Prediction { p, low, high }
    }

    #[test]
    fn the_cheapest_option_wins() {
        let c = COSTS;
        // 2 % now: GO costs 0.8, cheaper than any delay or the drop.
        let low = pred(0.02, 0.01, 0.04);
        assert_eq!(choose(&c, &low, Some(&low)).action, Action::Go);
        // 10 % now, 2 % tomorrow morning: GO 4.0, DELAY 1.8, NO_GO 5.
        let now = pred(0.10, 0.05, 0.2);
        let later = pred(0.02, 0.01, 0.04);
        let ch = choose(&c, &now, Some(&later));
        assert_eq!(ch.action, Action::Delay);
        assert_eq!(ch.options[1].expected, Some(1.0 + 40.0 * 0.02));
        // Risky whenever: NO_GO (5) beats GO (12) and DELAY (1 + 10).
        let bad = pred(0.3, 0.2, 0.4);
        let still = pred(0.25, 0.2, 0.3);
        assert_eq!(choose(&c, &bad, Some(&still)).action, Action::NoGo);
        // No slot to wait for: DELAY is not an option.
        let ch = choose(&c, &now, None);
        assert_eq!(ch.options[1].expected, None);
        assert_eq!(ch.action, Action::Go);
    }

    #[test]
    fn ties_go_to_the_cautious_option() {
        let c = COSTS;
        // GO costs exactly the drop: NO_GO.
        let edge = pred(0.125, 0.1, 0.15);
        assert_eq!(choose(&c, &edge, None).action, Action::NoGo);
    }
}
