//! `releaseops agent ...`

use std::io::Read;

use releaseops_agent::{Action, Context, Level, Outcome};
use releaseops_core::agent::{self, DecideRequest, DecisionRecord};

use crate::app::{App, CmdResult, Failure};
use crate::cli::{AgentCmd, AgentDecideArgs, AgentSimulateArgs};
use crate::output::{self, BOLD, DIM, GREEN, RED, YELLOW, paint};
use crate::refs;

pub(crate) fn run(app: &App, cmd: AgentCmd) -> CmdResult {
    match cmd {
        AgentCmd::Decide(a) => decide(app, a),
        AgentCmd::Outcome {
            decision_id,
            outcome,
            note,
        } => record_outcome(app, &decision_id, &outcome, note),
        AgentCmd::Heuristics { all } => heuristics(app, all),
        AgentCmd::Reflect => reflect(app),
        AgentCmd::Settle => {
            let store = app.store()?;
            let n = agent::settle_now(&app.ctx(&store))?;
            if !output::json(app, &serde_json::json!({ "settled": n })) {
                anstream::println!(
                    "{n} decision(s) settled: promotions past the watch window, by their production traffic where there was enough of it, else by whether they were rolled back"
                );
            }
            Ok(0)
        }
        AgentCmd::Memory { limit } => memory(app, limit),
        AgentCmd::Simulate(a) => simulate(app, a),
        AgentCmd::Model => model(app),
        AgentCmd::Show { decision_id } => {
            let store = app.store()?;
            let rec = agent::decision(&store, &decision_id)?;
            if !output::json(app, &rec) {
                print_decision(&rec);
            }
            Ok(0)
        }
    }
}

fn read_context(source: &str) -> Result<Context, Failure> {
    let text = if source == "-" {
        let mut s = String::new();
        std::io::stdin()
            .take(1 << 20)
            .read_to_string(&mut s)
            .map_err(|e| {
                Failure::usage(
                    format!("cannot read the context from stdin: {e}"),
                    "pipe a JSON object in",
                )
            })?;
        s
    } else {
        std::fs::read_to_string(source).map_err(|e| {
            Failure::usage(
                format!("cannot read the context file {source}: {e}"),
                "give a JSON file with env, feature_risk, day_of_week and hour_of_day",
            )
        })?
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::usage(
            format!("the context in {source} is not JSON: {e}"),
            "write the context as one JSON object",
        )
    })?;
    Context::from_json(&value).map_err(|e| {
        Failure::usage(
            format!("{source}: {e}"),
            "fix the field named; levels are LOW, MEDIUM or HIGH, days MON..SUN, hours 0..23",
        )
    })
}

fn decide(app: &App, a: AgentDecideArgs) -> CmdResult {
    let store = app.store()?;
    let ctx = app.ctx(&store);
    let (context, bundle, red_team_blocks) = match (&a.context, a.target.as_slice()) {
        (Some(file), []) => (read_context(file)?, None, a.red_team_blocks),
        (None, words) if words.len() >= 2 => {
            let (id, version, env) = &refs::bundle_version_env(&store, "agent decide", words)?;
            let context = {
                let _read = store.read_guard()?;
                let facts = releaseops_core::facts::PromotionFacts::gather(
                    &store,
                    std::sync::Arc::new(store.chain_view()?),
                    store.config().clone(),
                    (id, version, env),
                    ctx.now,
                    releaseops_core::facts::Scope::Everything,
                )?;
                agent::promotion_context(&store, &facts)?
            };
            let blocks = store
                .load_env(env)?
                .promotion_policy
                .is_some_and(|p| p.agent_red_team_blocks);
            let bundle = agent::BundleRef {
                id: id.clone(),
                version: version.clone(),
            };
            (context, Some(bundle), a.red_team_blocks || blocks)
        }
        _ => {
            return Err(Failure::usage(
                "say what to decide: ID VERSION ENV, or --context FILE",
                "e.g. `releaseops agent decide support-agent 1.2.0 prod`",
            ));
        }
    };
    let rec = agent::decide(
        &ctx,
        DecideRequest {
            context,
            bundle,
            gate: None,
            red_team_blocks,
        },
    )?;
    crate::notify::tell(&store, releaseops_core::notify::of_decision(&rec));
    if app.global.json {
        output::print_json(&rec.summary_json());
    } else {
        print_decision(&rec);
    }
    Ok(0)
}

/// The scriptable shape: the record's fields, flattened where scripts look.
fn action_word(a: Action) -> String {
    let style = match a {
        Action::Go => GREEN.bold(),
        Action::Delay => YELLOW.bold(),
        Action::NoGo => RED.bold(),
    };
    paint(style, a.as_str())
}

pub(crate) fn print_decision(rec: &DecisionRecord) {
    anstream::println!(
        "{} {}  risk {}  ({} -> {})",
        paint(BOLD, &rec.decision_id),
        action_word(rec.decision),
        rec.plan.risk_score,
        rec.context.env,
        rec.context.day_of_week.as_str().to_owned()
            + &format!(" {:02}:00", rec.context.hour_of_day)
    );
    if !rec.plan.factors.is_empty() {
        anstream::println!("  risk factors:");
        for f in &rec.plan.factors {
            let kind = if f.timing { " (timing)" } else { "" };
            anstream::println!("    +{:<3} {}{}", f.points, f.detail, paint(DIM, kind));
        }
    }
    if let Some(m) = &rec.plan.model {
        let pct = |p: f64| format!("{:.1} %", p * 100.0);
        anstream::println!(
            "  incident model ({} outcomes learned): P(incident) now {} (90 %: {} to {}), at {} {}",
            m.outcomes_learned,
            paint(BOLD, &pct(m.now.p)),
            pct(m.now.low),
            pct(m.now.high),
            m.slot,
            pct(m.at_slot.p)
        );
        let options: Vec<String> = m
            .options
            .iter()
            .map(|o| {
                let c = o.expected.map_or_else(|| "-".into(), |c| format!("{c:.2}"));
                if o.action == m.cheapest {
                    paint(BOLD, &format!("{} {c}", o.action))
                } else {
                    format!("{} {c}", o.action)
                }
            })
            .collect();
        anstream::println!("  expected cost: {}", options.join(", "));
        if !m.drivers.is_empty() {
            anstream::println!(
                "  what moved it (learned weight; + is riskier than the rules say):"
            );
            for d in &m.drivers {
                anstream::println!("    {:+.3} {}", d.weight, d.feature);
            }
        }
    }
    anstream::println!("  reasons:");
    for r in &rec.reasons {
        anstream::println!("    - {r}");
    }
    if !rec.similar_episodes.is_empty() {
        let similar: Vec<String> = rec
            .similar_episodes
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} ({:.0} %)",
                    e.id,
                    e.decision,
                    e.outcome.map(Outcome::as_str).unwrap_or("no outcome yet"),
                    e.similarity * 100.0
                )
            })
            .collect();
        anstream::println!("  similar past releases: {}", similar.join("; "));
    }
    let red = &rec.red_team;
    let level = match red.risk_level {
        Level::Low => paint(GREEN, "LOW"),
        Level::Medium => paint(YELLOW, "MEDIUM"),
        Level::High => paint(RED, "HIGH"),
    };
    anstream::println!(
        "  red team: risk {level}, suggests {}",
        red.suggested_action
    );
    for c in &red.concerns {
        anstream::println!("    - {c}");
    }
    if let Some(r) = &rec.reflection {
        anstream::println!("  second look: {} ({})", r.outcome, r.reason);
    }
}

fn record_outcome(app: &App, id: &str, outcome: &str, note: Option<String>) -> CmdResult {
    let outcome = Outcome::parse(outcome).ok_or_else(|| {
        Failure::usage(
            format!("unknown outcome '{outcome}'"),
            "use success, incident or rolled_back",
        )
    })?;
    let store = app.store()?;
    let r = agent::record_outcome(&app.ctx(&store), id, outcome, note, "manual")?;
    if output::json(app, &r) {
        return Ok(0);
    }
    anstream::println!(
        "Recorded: {} {}",
        r.record.decision_id,
        r.record.outcome.as_str()
    );
    if let Some(hs) = &r.reflected {
        let active = hs.iter().filter(|h| h.applies()).count();
        anstream::println!(
            "Learned again from every outcome: {} heuristic(s), {active} confident enough to apply",
            hs.iter().filter(|h| !h.retired).count()
        );
    }
    Ok(0)
}

fn print_heuristics(hs: &[releaseops_agent::Heuristic], all: bool) {
    let rows: Vec<Vec<String>> = hs
        .iter()
        .filter(|h| all || !h.retired)
        .map(|h| {
            vec![
                h.id.clone(),
                h.when
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                h.recommendation.to_string(),
                format!("{:.2}", h.confidence),
                format!("{}/{}", h.supporting, h.supporting + h.contradicting),
                h.incident_rate.map_or_else(
                    || "-".into(),
                    |r| {
                        format!(
                            "{:.0} % ({:.0}-{:.0} %)",
                            r.rate * 100.0,
                            r.low * 100.0,
                            r.high * 100.0
                        )
                    },
                ),
                h.model_rate
                    .map_or_else(|| "-".into(), |p| format!("{:.0} %", p * 100.0)),
                match h.lifecycle() {
                    releaseops_agent::heuristics::Status::Retired => "retired",
                    releaseops_agent::heuristics::Status::Active => "active",
                    _ => "proposed",
                }
                .into(),
            ]
        })
        .collect();
    if rows.is_empty() {
        anstream::println!(
            "No heuristics yet: they are learned from outcomes (`releaseops agent outcome`)."
        );
        return;
    }
    anstream::println!(
        "{}",
        output::table(
            &[
                "id",
                "when",
                "recommend",
                "confidence",
                "support",
                "incident rate (95 %)",
                "model says",
                "status",
            ],
            rows
        )
    );
}

fn heuristics(app: &App, all: bool) -> CmdResult {
    let store = app.store()?;
    let hs = agent::heuristics(&store)?;
    if !output::json(app, &hs) {
        print_heuristics(&hs, all);
    }
    Ok(0)
}

fn reflect(app: &App) -> CmdResult {
    let store = app.store()?;
    let hs = agent::reflect(&app.ctx(&store))?;
    if !output::json(app, &hs) {
        print_heuristics(&hs, false);
    }
    Ok(0)
}

fn model(app: &App) -> CmdResult {
    let store = app.store()?;
    let r = agent::model_report(&store)?;
    if output::json(app, &r) {
        return Ok(0);
    }
    anstream::println!(
        "incident model: {} outcome(s), {} weight(s) learned",
        r.outcomes,
        r.weights_learned
    );
    if r.outcomes == 0 {
        anstream::println!(
            "  no outcomes yet: the fixed rules decide (`releaseops agent outcome ID success|incident|rolled_back` records one)"
        );
        return Ok(0);
    }
    anstream::println!(
        "  Brier score {:.4} (the fixed rules {:.4}, the base rate {:.4}); each prediction made before its outcome was learned",
        r.calibration.brier,
        r.rules_calibration.brier,
        r.calibration.brier_base_rate
    );
    let rows = r
        .calibration
        .reliability
        .iter()
        .map(|b| {
            vec![
                format!("{:.3}-{:.3}", b.from, b.to),
                b.count.to_string(),
                format!("{:.3}", b.predicted),
                format!("{:.3}", b.observed),
            ]
        })
        .collect();
    anstream::println!(
        "{}",
        output::table(
            &["predicted", "outcomes", "mean predicted", "observed"],
            rows
        )
    );
    Ok(0)
}

fn memory(app: &App, limit: usize) -> CmdResult {
    let store = app.store()?;
    let (head, episodes) = agent::memory_view(&store, limit)?;
    if output::json(
        app,
        &serde_json::json!({"decisions": head.decisions, "outcomes": head.outcomes, "episodes": episodes}),
    ) {
        return Ok(0);
    }
    anstream::println!(
        "{} decision(s), {} outcome(s) recorded",
        head.decisions,
        head.outcomes
    );
    let rows = episodes
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.decision.to_string(),
                e.outcome
                    .map(|o| o.as_str().to_string())
                    .unwrap_or_else(|| "-".into()),
                e.attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    if !episodes.is_empty() {
        anstream::println!(
            "{}",
            output::table(&["decision", "action", "outcome", "context"], rows)
        );
    }
    Ok(0)
}

fn simulate(app: &App, a: AgentSimulateArgs) -> CmdResult {
    use releaseops_agent::simulate::{self, IncidentModel, SCENARIOS};
    if let Some(name) = &a.scenario {
        let names: Vec<&str> = if name == "all" {
            SCENARIOS.to_vec()
        } else if SCENARIOS.contains(&name.as_str()) {
            vec![name.as_str()]
        } else {
            return Err(Failure::usage(
                format!("unknown scenario '{name}'"),
                format!("use one of {}, or all", SCENARIOS.join(", ")),
            ));
        };
        // A scratch store: the full loop (recall, plan, red team, second
        // look, record) without touching the project.
        let scratch = tempfile::tempdir().map_err(|e| {
            Failure::usage(
                format!("cannot make a scratch directory: {e}"),
                "check TMPDIR",
            )
        })?;
        let (store, _) = releaseops_store::Store::init(scratch.path())?;
        let mut ctx = app.ctx(&store);
        ctx.git_commit = false;
        let mut all = Vec::new();
        for n in names {
            let context = simulate::scenario(n).ok_or_else(|| {
                Failure::usage(format!("unknown scenario '{n}'"), "report this as a bug")
            })?;
            let rec = agent::decide(
                &ctx,
                DecideRequest {
                    context,
                    bundle: None,
                    gate: None,
                    red_team_blocks: false,
                },
            )?;
            if !app.global.json {
                anstream::println!("{}", paint(BOLD, &format!("scenario {n}")));
                print_decision(&rec);
                anstream::println!();
            }
            all.push(serde_json::json!({"scenario": n, "result": rec.summary_json()}));
        }
        if app.global.json {
            output::print_json(&all);
        }
        return Ok(0);
    }
    let Some(n) = a.stream else {
        return Err(Failure::usage(
            "say what to simulate: --scenario NAME or --stream N",
            "e.g. `releaseops agent simulate --stream 2000 --seed 7`",
        ));
    };
    if n == 0 || n > 1_000_000 {
        return Err(Failure::usage(
            format!("--stream {n}: give 1 to 1,000,000 releases"),
            "e.g. --stream 2000",
        ));
    }
    let model = match &a.model {
        None => IncidentModel::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(
                    format!("cannot read the model {path}: {e}"),
                    "give a JSON file",
                )
            })?;
            let m: IncidentModel = serde_json::from_str(&text).map_err(|e| {
                Failure::usage(
                    format!("{path} is not an incident model: {e}"),
                    "fields: base, feature_risk, friday_afternoon, weekend, night, clash, risk_mix, clash_rate, hidden, interactions",
                )
            })?;
            m.validate()
                .map_err(|e| Failure::usage(format!("{path}: {e}"), "fix the value named"))?;
            m
        }
    };
    let costs = agent::costs_of(releaseops_format::config::AgentCosts::default());
    let report = simulate::stream(n, a.seed, &model, a.windows.clamp(1, 100), &costs);
    if app.global.json {
        output::print_json(&serde_json::json!({"model": model, "report": report}));
        return Ok(0);
    }
    anstream::println!(
        "{} releases, seed {}: the agent learns from each outcome as it goes (cost: an incident {}, a delay {}, a release not shipped {})",
        report.releases,
        report.seed,
        costs.incident,
        costs.delay,
        costs.drop,
    );
    let cfr = |t: &releaseops_agent::simulate::Tally| {
        format!(
            "{} / {} ({:.1} %)",
            t.incidents,
            t.shipped,
            t.change_failure_rate() * 100.0
        )
    };
    let brier = |w: &releaseops_agent::simulate::Window| {
        w.agent_calibration.as_ref().map_or_else(
            || "-".into(),
            |c| format!("{:.3} ({:.3})", c.brier, c.brier_base_rate),
        )
    };
    let cost = |t: &releaseops_agent::simulate::Tally| format!("{:.0}", t.cost(&costs));
    let row = |label: String, w: &releaseops_agent::simulate::Window| {
        vec![
            label,
            cost(&w.agent),
            cfr(&w.agent),
            format!("{} / {}", w.agent.delayed, w.agent.blocked),
            brier(w),
            cost(&w.rules_agent),
            cost(&w.always_go),
            cost(&w.never_fri_weekend),
            cost(&w.static_rule),
            cost(&w.informed),
            cost(&w.oracle),
        ]
    };
    let mut rows: Vec<Vec<String>> = report
        .windows
        .iter()
        .map(|w| row(format!("{}-{}", w.from, w.to), w))
        .collect();
    let t = &report.total;
    rows.push(row("total".into(), t));
    anstream::println!(
        "{}",
        output::table(
            &[
                "releases",
                "agent cost",
                "incidents / shipped (CFR)",
                "delayed / not shipped",
                "Brier (base rate)",
                "before the model",
                "always GO",
                "never Fri/weekend",
                "fixed rule",
                "informed",
                "oracle",
            ],
            rows
        )
    );
    let naive = t
        .always_go
        .cost(&costs)
        .min(t.never_fri_weekend.cost(&costs));
    let ratio = |x: &releaseops_agent::simulate::Tally| {
        if naive > 0.0 {
            format!("{:.2}", x.cost(&costs) / naive)
        } else {
            "-".into()
        }
    };
    anstream::println!(
        "Of the best naive policy's cost: the agent {}, before the model {}, the fixed rule (hold Fridays, weekends, nights, clashes) {}, a learner told every known risk's true size and which hidden patterns exist {}, the oracle that knows the true risk {}.",
        ratio(&t.agent),
        ratio(&t.rules_agent),
        ratio(&t.static_rule),
        ratio(&t.informed),
        ratio(&t.oracle),
    );
    let (first, second) = simulate::halves(&report);
    if first.releases > 0 && second.releases > 0 {
        anstream::println!(
            "The agent's change failure rate: {:.1} % in releases {}-{}, {:.1} % in releases {}-{}.",
            first.change_failure_rate() * 100.0,
            report.windows.first().map_or(1, |w| w.from),
            first.releases,
            second.change_failure_rate() * 100.0,
            report.releases - second.releases + 1,
            report.releases,
        );
    }
    if !report.heuristics.is_empty() {
        anstream::println!("What it learned:");
        print_heuristics(&report.heuristics, false);
    }
    Ok(0)
}

pub(crate) fn dora(app: &App, env: Option<String>, days: f64) -> CmdResult {
    if !(days.is_finite() && days > 0.0 && days <= 3650.0) {
        return Err(Failure::usage(
            format!("--days {days}: give 1 to 3650 days"),
            "e.g. --days 30",
        ));
    }
    let store = app.store()?;
    let env = match env {
        Some(e) => e,
        None => store
            .config()
            .pipeline
            .last()
            .cloned()
            .unwrap_or_else(|| "prod".into()),
    };
    let m = releaseops_core::metrics::dora(&store, &env, days, app.now)?;
    if output::json(app, &m) {
        return Ok(0);
    }
    let h = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1} h"));
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.1} %", v * 100.0));
    anstream::println!(
        "DORA metrics for {} over the last {days:.0} days",
        paint(BOLD, &env)
    );
    anstream::println!(
        "{}",
        output::table(
            &["metric", "value"],
            vec![
                vec!["deployments".into(), m.deployments.to_string()],
                vec![
                    "deployment frequency".into(),
                    format!("{:.2} per day", m.deployment_frequency_per_day)
                ],
                vec![
                    "lead time (created -> live), median / p90".into(),
                    format!(
                        "{} / {}",
                        h(m.lead_time_hours_median),
                        h(m.lead_time_hours_p90)
                    )
                ],
                vec![
                    "change failure rate".into(),
                    format!(
                        "{} ({} failed: {} rolled back, {} regressed in production traffic)",
                        pct(m.change_failure_rate),
                        m.failed_deployments,
                        m.failed_deployments - m.failed_in_production,
                        m.failed_in_production
                    )
                ],
                vec![
                    "time to restore, median".into(),
                    h(m.time_to_restore_hours_median)
                ],
                vec!["rework rate".into(), pct(m.rework_rate)],
            ]
        )
    );
    Ok(0)
}
