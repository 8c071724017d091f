//! Decisions by expected cost. With an incident costing `incident`, a delay
//! `delay` and a dropped release `drop` (`agent.costs` in config.yaml, whose
//! defaults live with the config), the options cost:
//!
//! - GO now: `incident x P(incident now)`;
//! - DELAY to the next allowed slot: `delay + incident x P(incident at the
//!   slot)`, when there is a slot;
//! - NO_GO: `drop`.
//!
//! The cheapest wins. The probability used is the model's posterior mean,
//! except for a HIGH-criticality service, where it is the pessimistic end of
//! the 90 % interval: what the model is unsure about costs like what it
//! fears. A tie goes to the more cautious option (NO_GO, then DELAY).

use serde::Serialize;

use crate::action::Action;
use crate::context::Level;
use crate::model::Prediction;

/// What each kind of consequence costs, in the team's units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Costs {
    pub incident: f64,
    pub delay: f64,
    pub drop: f64,
}

/// One option and what it is expected to cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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
    /// `mean` or `pessimistic` (HIGH criticality).
    pub basis: &'static str,
}

/// Chooses between GO now (with the prediction `now`), DELAY to a slot
/// (with the prediction `at_slot`, if there is one) and NO_GO.
pub fn choose(
    costs: &Costs,
    now: &Prediction,
    at_slot: Option<&Prediction>,
    criticality: Level,
) -> Choice {
    let pessimistic = criticality == Level::High;
    let p = |x: &Prediction| if pessimistic { x.pessimistic() } else { x.p };
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
        basis: if pessimistic { "pessimistic" } else { "mean" },
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
        assert_eq!(
            choose(&c, &low, Some(&low), Level::Medium).action,
            Action::Go
        );
        // 10 % now, 2 % tomorrow morning: GO 4.0, DELAY 1.8, NO_GO 5.
        let now = pred(0.10, 0.05, 0.2);
        let later = pred(0.02, 0.01, 0.04);
        let ch = choose(&c, &now, Some(&later), Level::Medium);
        assert_eq!(ch.action, Action::Delay);
        assert_eq!(ch.options[1].expected, Some(1.0 + 40.0 * 0.02));
        // Risky whenever: NO_GO (5) beats GO (12) and DELAY (1 + 10).
        let bad = pred(0.3, 0.2, 0.4);
        let still = pred(0.25, 0.2, 0.3);
        assert_eq!(
            choose(&c, &bad, Some(&still), Level::Medium).action,
            Action::NoGo
        );
        // No slot to wait for: DELAY is not an option.
        let ch = choose(&c, &now, None, Level::Medium);
        assert_eq!(ch.options[1].expected, None);
        assert_eq!(ch.action, Action::Go);
    }

    #[test]
    fn high_criticality_prices_the_uncertainty() {
        let c = COSTS;
        // A mean of 8 % but unsure (up to 20 %): GO for a MEDIUM service
        // (3.2 < 5), NO_GO for a HIGH one (8 > 5).
        let unsure = pred(0.08, 0.01, 0.20);
        assert_eq!(choose(&c, &unsure, None, Level::Medium).action, Action::Go);
        let ch = choose(&c, &unsure, None, Level::High);
        assert_eq!((ch.action, ch.basis), (Action::NoGo, "pessimistic"));
    }

    #[test]
    fn ties_go_to_the_cautious_option() {
        let c = COSTS;
        // GO costs exactly the drop: NO_GO.
        let edge = pred(0.125, 0.1, 0.15);
        assert_eq!(choose(&c, &edge, None, Level::Low).action, Action::NoGo);
    }
}
