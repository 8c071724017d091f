//! The incident model: P(incident | context), learned from outcomes.
//!
//! Bayesian probit regression over sparse binary features, with a Gaussian
//! belief per weight updated one outcome at a time by assumed-density
//! filtering (the method of Graepel et al., "Web-scale Bayesian click-through
//! rate prediction", ICML 2010). The features are every `attribute=value` of
//! a context (the team's own attributes included) and every unordered pair of
//! them, so an interaction that no single attribute shows (`region=apac` with
//! `hour_band=night`) gets its own weight. Prior knowledge enters as a fixed
//! offset per decision (today's risk score turned into a probability), and
//! every weight starts at zero with a variance that shrinks pairs harder than
//! main effects: with no outcomes the model says what the prior says (the
//! fixed rules' score of the attributes the memory keeps), and
//! each outcome moves only the weights of the features it had, by as much as
//! they are still uncertain. Learning one outcome touches a few dozen weights
//! (microseconds); refitting 100,000 episodes is one pass.
//!
//! Calibration is measured prequentially: each outcome is predicted before it
//! is learned from, in the order the outcomes came, so the Brier score and the
//! reliability table are out-of-sample.

use std::collections::HashMap;

use serde::Serialize;

/// A feature: the 64-bit FNV-1a hash of `attribute=value` (lowest bit clear),
/// or a mix of two of them (lowest bit set).
pub type Feature = u64;

/// FNV-1a over the parts, as if they were one string.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The features of a context given as its `(attribute, value)` pairs: each
/// pair, and each unordered pair of pairs.
pub fn features(attributes: &[(String, String)]) -> Vec<Feature> {
    let mut main: Vec<Feature> = attributes.iter().map(|(a, v)| main_feature(a, v)).collect();
    main.sort_unstable();
    main.dedup();
    with_pairs(&main)
}

/// The feature of one `attribute=value`.
pub fn main_feature(attribute: &str, value: &str) -> Feature {
    fnv(&[attribute, "=", value]) & !PAIR
}

/// Main features (sorted, distinct) and every unordered pair of them.
pub fn with_pairs(main: &[Feature]) -> Vec<Feature> {
    let mut out = Vec::with_capacity(main.len() * (main.len() + 1) / 2);
    for (i, &a) in main.iter().enumerate() {
        out.push(a);
        for &b in &main[i + 1..] {
            out.push(pair_feature(a, b));
        }
    }
    out
}

/// The feature of two main features together (in either order).
fn pair_feature(a: Feature, b: Feature) -> Feature {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    // splitmix64's finaliser over the two, so pairs spread over the space.
    let mut z = lo ^ hi.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | PAIR
}

/// Marks a pair feature (so its prior variance is the pairs' one).
const PAIR: u64 = 1;

fn is_pair(f: Feature) -> bool {
    f & PAIR == PAIR
}

/// The standard normal density and distribution function.
fn pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' erfcc, relative
/// error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The probit of a probability (Acklam's rational approximation, refined
/// by one Newton step), for turning a prior probability into an offset.
pub fn probit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    let (a, b, c, d) = (
        [
            -3.969_683_028_665_376e1,
            2.209_460_984_245_205e2,
            -2.759_285_104_469_687e2,
            1.383_577_518_672_69e2,
            -3.066_479_806_614_716e1,
            2.506_628_277_459_239,
        ],
        [
            -5.447_609_879_822_406e1,
            1.615_858_368_580_409e2,
            -1.556_989_798_598_866e2,
            6.680_131_188_771_972e1,
            -1.328_068_155_288_572e1,
        ],
        [
            -7.784_894_002_430_293e-3,
            -3.223_964_580_411_365e-1,
            -2.400_758_277_161_838,
            -2.549_732_539_343_734,
            4.374_664_141_464_968,
            2.938_163_982_698_783,
        ],
        [
            7.784_695_709_041_462e-3,
            3.224_671_290_700_398e-1,
            2.445_134_137_142_996,
            3.754_408_661_907_416,
        ],
    );
    let tail = |q: f64| {
        (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
            / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    };
    // One Newton step on cdf(x) = p.
    let e = cdf(x) - p;
    x - e / pdf(x).max(1e-300)
}

/// A Gaussian belief about one weight.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Belief {
    mean: f64,
    var: f64,
}

/// How strongly the model holds on to its prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Priors {
    /// The prior variance of a main effect's weight.
    pub main_var: f64,
    /// The prior variance of a pair's weight (smaller: an interaction needs
    /// more evidence than a main effect).
    pub pair_var: f64,
    /// The noise variance of the probit link.
    pub noise_var: f64,
}

impl Default for Priors {
    fn default() -> Self {
        // A main effect may move a prediction a long way, a pair less (a
        // context has some thirty pairs and eight or so attributes, and an
        // interaction needs more evidence). When the pairs' variance added
        // up to more than the main effects', incidents of Friday releases
        // were blamed on what every release shares (`env=prod` and its
        // pairs) rather than on the Friday. Measured on
        // the simulated streams (`cargo bench ... -- --learning`): main
        // 0.2 to 0.3 and pairs 0.01 to 0.04 are alike within the seeds'
        // noise.
        Priors {
            main_var: 0.2,
            pair_var: 0.02,
            noise_var: 1.0,
        }
    }
}

/// What the model predicts for one context.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Prediction {
    /// The posterior predictive incident probability.
    pub p: f64,
    /// A central 90 % interval on the incident probability, from the
    /// uncertainty of the weights.
    pub low: f64,
    pub high: f64,
}

/// z for a central 90 % interval.
const Z90: f64 = 1.644_853_626_951_472_2;

/// The learned incident model.
#[derive(Debug, Clone, Default)]
pub struct IncidentModel {
    pub priors: Priors,
    weights: HashMap<Feature, Belief>,
    /// Outcomes learned from.
    pub outcomes: u64,
}

impl IncidentModel {
    pub fn new(priors: Priors) -> IncidentModel {
        IncidentModel {
            priors,
            weights: HashMap::new(),
            outcomes: 0,
        }
    }

    fn belief(&self, f: Feature) -> Belief {
        self.weights.get(&f).copied().unwrap_or(Belief {
            mean: 0.0,
            var: self.prior_var(f),
        })
    }

    fn prior_var(&self, f: Feature) -> f64 {
        if is_pair(f) {
            self.priors.pair_var
        } else {
            self.priors.main_var
        }
    }

    /// The mean and variance of the latent score `offset + w . x` of
    /// `features`. The offset is the prior probability's probit, scaled so
    /// that with every weight at its prior the predicted probability is
    /// exactly `prior`.
    fn score(&self, features: &[Feature], prior: f64) -> (f64, f64) {
        let s0: f64 = features.iter().map(|&f| self.prior_var(f)).sum();
        let mut mean = probit(prior) * (self.priors.noise_var + s0).sqrt();
        let mut var = 0.0;
        for &f in features {
            let b = self.belief(f);
            mean += b.mean;
            var += b.var;
        }
        (mean, var)
    }

    /// P(incident) for a context with these features, whose prior
    /// probability (from the fixed rules) is `prior`: the posterior
    /// predictive, and the 90 % interval the weights' uncertainty leaves.
    pub fn predict(&self, features: &[Feature], prior: f64) -> Prediction {
        let (mean, var) = self.score(features, prior);
        let noise = self.priors.noise_var.sqrt();
        let sd = var.sqrt();
        Prediction {
            p: cdf(mean / (self.priors.noise_var + var).sqrt()),
            low: cdf((mean - Z90 * sd) / noise),
            high: cdf((mean + Z90 * sd) / noise),
        }
    }

    /// Learns from one outcome of a context with these features.
    pub fn learn(&mut self, features: &[Feature], prior: f64, incident: bool) {
        let (mean, var) = self.score(features, prior);
        let total = (self.priors.noise_var + var).sqrt();
        let y = if incident { 1.0 } else { -1.0 };
        let t = y * mean / total;
        // v = N(t) / Phi(t), w = v (v + t); far in the lower tail v -> -t.
        let phi = cdf(t);
        let v = if phi > 1e-12 { pdf(t) / phi } else { -t };
        let w = (v * (v + t)).clamp(0.0, 1.0);
        for &f in features {
            let b = self.belief(f);
            let mean = b.mean + y * b.var / total * v;
            let var = (b.var * (1.0 - b.var / (total * total) * w)).max(1e-9);
            self.weights.insert(f, Belief { mean, var });
        }
        self.outcomes += 1;
    }

    /// How many weights have moved from their prior.
    pub fn learned_weights(&self) -> usize {
        self.weights.len()
    }
}

/// The data of a batch refit: each distinct context once, with how often it
/// was learned from and how often it failed.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    groups: Vec<Group>,
    index: HashMap<(Vec<Feature>, u64), usize>,
}

#[derive(Debug, Clone)]
struct Group {
    features: Vec<Feature>,
    /// The prior probability (part of the group's key).
    prior: f64,
    n: f64,
    incidents: f64,
}

impl Batch {
    pub fn add(&mut self, features: &[Feature], prior: f64, incident: bool) {
        let key = (features.to_vec(), prior.to_bits());
        let i = *self.index.entry(key).or_insert_with(|| {
            self.groups.push(Group {
                features: features.to_vec(),
                prior,
                n: 0.0,
                incidents: 0.0,
            });
            self.groups.len() - 1
        });
        let g = &mut self.groups[i];
        g.n += 1.0;
        if incident {
            g.incidents += 1.0;
        }
    }

    /// Outcomes in the batch.
    pub fn outcomes(&self) -> u64 {
        self.groups.iter().map(|g| g.n as u64).sum()
    }
}

/// The log-likelihood's slope and curvature in the latent `z` of `n`
/// outcomes with `k` incidents under the probit link.
fn probit_terms(z: f64, n: f64, k: f64) -> (f64, f64) {
    // lambda(t) = pdf(t) / cdf(t), stable in the lower tail.
    let lambda = |t: f64| {
        let c = cdf(t);
        if c > 1e-12 { pdf(t) / c } else { -t }
    };
    let (up, down) = (lambda(z), lambda(-z));
    let slope = k * up - (n - k) * down;
    let curve = k * up * (up + z) + (n - k) * down * (down - z);
    (slope, curve.max(0.0))
}

impl IncidentModel {
    /// Fits the model to a whole batch at once: the most probable weights
    /// under their Gaussian priors (coordinate Newton steps, feature by
    /// feature, until they settle), with the curvature there as each
    /// weight's variance (a Laplace approximation). Unlike one pass of
    /// [`IncidentModel::learn`], it sees every outcome together, so blame is
    /// shared between correlated attributes by all the evidence, not by
    /// the order it came in.
    pub fn refit(priors: Priors, batch: &Batch) -> IncidentModel {
        let mut model = IncidentModel::new(priors);
        // Features by position, each group's positions, and the groups
        // each position is in: no hashing inside the passes.
        let mut order: Vec<Feature> = batch
            .groups
            .iter()
            .flat_map(|g| g.features.iter().copied())
            .collect();
        order.sort_unstable();
        order.dedup();
        let position: HashMap<Feature, u32> = order
            .iter()
            .enumerate()
            .map(|(j, &f)| (f, j as u32))
            .collect();
        let members: Vec<Vec<u32>> = batch
            .groups
            .iter()
            .map(|g| g.features.iter().map(|f| position[f]).collect())
            .collect();
        let mut by_feature: Vec<Vec<u32>> = vec![Vec::new(); order.len()];
        for (i, m) in members.iter().enumerate() {
            for &j in m {
                by_feature[j as usize].push(i as u32);
            }
        }
        let prior_var: Vec<f64> = order.iter().map(|&f| model.prior_var(f)).collect();
        // Each group's latent mean (the prior's offset, scaled as in
        // `score`, plus its weights) and the predictive's scale
        // sqrt(noise + its weights' variance), which `predict` divides by
        // too: with no evidence, the likelihood is the prior's.
        let s0: Vec<f64> = members
            .iter()
            .map(|m| m.iter().map(|&j| prior_var[j as usize]).sum())
            .collect();
        let mut mean: Vec<f64> = batch
            .groups
            .iter()
            .zip(&s0)
            .map(|(g, s)| probit(g.prior) * (priors.noise_var + s).sqrt())
            .collect();
        let mut scale: Vec<f64> = s0.iter().map(|s| (priors.noise_var + s).sqrt()).collect();
        let mut w = vec![0.0; order.len()];
        let mut var = prior_var.clone();
        for _pass in 0..60 {
            let mut moved: f64 = 0.0;
            for j in 0..order.len() {
                let (mut slope, mut curve) = (-w[j] / prior_var[j], 1.0 / prior_var[j]);
                for &gi in &by_feature[j] {
                    let gi = gi as usize;
                    let (g, d) = (&batch.groups[gi], scale[gi]);
                    let (s, c) = probit_terms(mean[gi] / d, g.n, g.incidents);
                    slope += s / d;
                    curve += c / (d * d);
                }
                // A Newton step, at most half a probit unit at a time.
                let step = (slope / curve).clamp(-0.5, 0.5);
                w[j] += step;
                var[j] = (1.0 / curve).min(prior_var[j]);
                for &gi in &by_feature[j] {
                    mean[gi as usize] += step;
                }
                moved = moved.max(step.abs());
            }
            for (gi, m) in members.iter().enumerate() {
                let v: f64 = m.iter().map(|&j| var[j as usize]).sum();
                scale[gi] = (priors.noise_var + v).sqrt();
            }
            if moved < 1e-4 {
                break;
            }
        }
        for (j, &f) in order.iter().enumerate() {
            model.weights.insert(
                f,
                Belief {
                    mean: w[j],
                    var: var[j].max(1e-9),
                },
            );
        }
        model.outcomes = batch.outcomes();
        model
    }
}

/// Learning as outcomes come: each one at once (one
/// [`IncidentModel::learn`] step, microseconds), and every
/// [`refit_every`] outcomes a refit over all of them
/// ([`IncidentModel::refit`]), so the cost per outcome stays small at any
/// size and the order outcomes came in stops mattering.
#[derive(Debug, Clone)]
pub struct Learning {
    pub model: IncidentModel,
    batch: Batch,
    since_refit: u64,
}

/// Outcomes between refits: every one at first, a hundredth of all of them
/// later (a refit of 100,000 outcomes takes about a quarter of a second:
/// `cargo bench -p releaseops-cli --bench cli -- --agent`).
pub fn refit_every(outcomes: u64) -> u64 {
    (outcomes / 100).max(1)
}

impl Learning {
    pub fn new(priors: Priors) -> Learning {
        Learning {
            model: IncidentModel::new(priors),
            batch: Batch::default(),
            since_refit: 0,
        }
    }

    pub fn learn(&mut self, features: &[Feature], prior: f64, incident: bool) {
        self.batch.add(features, prior, incident);
        self.model.learn(features, prior, incident);
        self.since_refit += 1;
        if self.since_refit >= refit_every(self.batch.outcomes()) {
            self.model = IncidentModel::refit(self.model.priors, &self.batch);
            self.since_refit = 0;
        }
    }

    pub fn learn_attributes(&mut self, attributes: &[(String, String)], incident: bool) {
        self.learn(
            &features(attributes),
            prior_of_attributes(attributes),
            incident,
        );
    }
}

/// What one attribute, or a pair of them, has learned to add to a
/// context's latent incident score (positive: riskier than the prior says).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Driver {
    /// `attribute=value`, or two of them joined by ` & `.
    pub feature: String,
    pub weight: f64,
}

impl IncidentModel {
    /// The prediction for remembered attributes (a context's
    /// [`crate::context::Context::attributes`]), with their prior: what a
    /// decision is made with, and what it is later learned from.
    pub fn assess(&self, attributes: &[(String, String)]) -> Prediction {
        self.predict(&features(attributes), prior_of_attributes(attributes))
    }

    /// Learns one outcome of a context with these attributes.
    pub fn learn_attributes(&mut self, attributes: &[(String, String)], incident: bool) {
        self.learn(
            &features(attributes),
            prior_of_attributes(attributes),
            incident,
        );
    }

    /// The `top` learned weights of these attributes and their pairs that
    /// move the prediction most, largest first.
    pub fn drivers(&self, attributes: &[(String, String)], top: usize) -> Vec<Driver> {
        let mut named: Vec<(Feature, String)> = attributes
            .iter()
            .map(|(a, v)| (main_feature(a, v), format!("{a}={v}")))
            .collect();
        named.sort();
        named.dedup_by(|a, b| a.0 == b.0);
        let mut out = Vec::new();
        for (i, (fa, na)) in named.iter().enumerate() {
            if let Some(b) = self.weights.get(fa) {
                out.push(Driver {
                    feature: na.clone(),
                    weight: b.mean,
                });
            }
            for (fb, nb) in &named[i + 1..] {
                if let Some(b) = self.weights.get(&pair_feature(*fa, *fb)) {
                    out.push(Driver {
                        feature: format!("{na} & {nb}"),
                        weight: b.mean,
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            b.weight
                .abs()
                .total_cmp(&a.weight.abs())
                .then_with(|| a.feature.cmp(&b.feature))
        });
        out.truncate(top);
        for d in &mut out {
            d.weight = (d.weight * 1000.0).round() / 1000.0;
        }
        out
    }

    /// The model as bytes (for a cache): the priors, the count, and every
    /// learned weight in feature order, little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.weights.len() * 24);
        out.extend_from_slice(MAGIC);
        for x in [
            self.priors.main_var,
            self.priors.pair_var,
            self.priors.noise_var,
        ] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.outcomes.to_le_bytes());
        out.extend_from_slice(&(self.weights.len() as u64).to_le_bytes());
        let mut w: Vec<(&Feature, &Belief)> = self.weights.iter().collect();
        w.sort_unstable_by_key(|(f, _)| **f);
        for (f, b) in w {
            out.extend_from_slice(&f.to_le_bytes());
            out.extend_from_slice(&b.mean.to_le_bytes());
            out.extend_from_slice(&b.var.to_le_bytes());
        }
        out
    }

    /// A model from [`IncidentModel::encode`]'s bytes; `None` for anything
    /// else (a cache from another version, a torn write).
    pub fn decode(bytes: &[u8]) -> Option<IncidentModel> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let mut words = rest.chunks_exact(8).map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            b
        });
        let mut f = || words.next().map(f64::from_le_bytes);
        let priors = Priors {
            main_var: f()?,
            pair_var: f()?,
            noise_var: f()?,
        };
        if [priors.main_var, priors.pair_var, priors.noise_var]
            .iter()
            .any(|v| !(v.is_finite() && *v > 0.0))
        {
            return None;
        }
        let outcomes = f()?.to_bits();
        let n = f()?.to_bits();
        if rest.len() as u64 != n.checked_mul(24)?.checked_add(40)? {
            return None;
        }
        let mut weights = HashMap::with_capacity(n as usize);
        for _ in 0..n {
            let feature = f()?.to_bits();
            let (mean, var) = (f()?, f()?);
            if !(mean.is_finite() && var.is_finite() && var > 0.0) {
                return None;
            }
            weights.insert(feature, Belief { mean, var });
        }
        Some(IncidentModel {
            priors,
            weights,
            outcomes,
        })
    }
}

const MAGIC: &[u8; 8] = b"ROIM\x00\x00\x00\x01";

/// One bin of a reliability table: what the model predicted, what happened.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bin {
    /// The decile's predicted probabilities run from `from` to `to`.
    pub from: f64,
    pub to: f64,
    pub count: u64,
    pub predicted: f64,
    pub observed: f64,
}

/// How well the predictions matched what happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub outcomes: u64,
    /// The mean squared error of the predicted probabilities.
    pub brier: f64,
    /// The Brier score of always predicting the observed base rate (the
    /// model is useful when it is lower).
    pub brier_base_rate: f64,
    /// The outcomes in ten bins of predicted probability.
    pub reliability: Vec<Bin>,
}

impl Calibration {
    /// From (predicted probability, incident) pairs.
    pub fn of(pairs: &[(f64, bool)]) -> Calibration {
        let n = pairs.len() as f64;
        if pairs.is_empty() {
            return Calibration {
                outcomes: 0,
                brier: 0.0,
                brier_base_rate: 0.0,
                reliability: Vec::new(),
            };
        }
        let hit = |b: bool| if b { 1.0 } else { 0.0 };
        let base = pairs.iter().map(|&(_, y)| hit(y)).sum::<f64>() / n;
        let brier = pairs
            .iter()
            .map(|&(p, y)| (p - hit(y)).powi(2))
            .sum::<f64>()
            / n;
        let brier_base_rate = pairs
            .iter()
            .map(|&(_, y)| (base - hit(y)).powi(2))
            .sum::<f64>()
            / n;
        let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut reliability = Vec::new();
        for k in 0..10 {
            let lo = sorted.len() * k / 10;
            let hi = sorted.len() * (k + 1) / 10;
            let bin = &sorted[lo..hi];
            if bin.is_empty() {
                continue;
            }
            let m = bin.len() as f64;
            reliability.push(Bin {
                from: bin[0].0,
                to: bin[bin.len() - 1].0,
                count: bin.len() as u64,
                predicted: bin.iter().map(|&(p, _)| p).sum::<f64>() / m,
                observed: bin.iter().map(|&(_, y)| hit(y)).sum::<f64>() / m,
            });
        }
        Calibration {
            outcomes: pairs.len() as u64,
            brier,
            brier_base_rate,
            reliability,
        }
    }
}

/// The prior probability of an incident for a risk score of the fixed
/// rules ([`crate::planner::factors`]): 1 % with no risk, 10 % where the
/// rules start holding a release ([`crate::planner::HOLD_AT`]), rising with
/// the square of the score, at most 95 %. With the default costs GO stays
/// the cheaper of GO and NO_GO up to a score of about 45; the floors of
/// [`crate::decide`] keep the rules' NO_GO where the evidence is behind it.
pub fn prior_from_score(score: u32) -> f64 {
    let x = f64::from(score) / f64::from(crate::planner::HOLD_AT);
    (0.01 + 0.09 * x * x).min(0.95)
}

/// The prior of a context: its risk score under the fixed rules, as a
/// probability.
pub fn prior_of(ctx: &crate::context::Context) -> f64 {
    prior_from_score(crate::planner::factors(ctx).iter().map(|f| f.points).sum())
}

/// The prior of remembered attributes (the context they describe); the base
/// rate of the fixed rules when they do not make a context. A decision and
/// the outcome it is later learned from use the same prior, so it is worked
/// out from what the memory keeps: the evaluation evidence, safety
/// approvals and the track record are not kept (they are floors of
/// [`crate::decide`] instead, and count as "no evaluation evidence"
/// here), and an hour is read back as its band's middle hour.
pub fn prior_of_attributes(attributes: &[(String, String)]) -> f64 {
    crate::context::Context::from_attributes(attributes)
        .map_or(prior_from_score(0), |c| prior_of(&c))
}

/// Calls `f` with the features, the prior and whether it failed, for every
/// episode of `memory` that has an outcome, oldest first. An incident and a
/// rollback both count as an incident. Contexts repeat: each one's prior is
/// worked out once.
pub fn each_outcome(memory: &crate::memory::Memory, mut f: impl FnMut(&[Feature], f64, bool)) {
    let table: Vec<Feature> = memory
        .pairs()
        .iter()
        .map(|(a, v)| main_feature(a, v))
        .collect();
    let mut main = Vec::new();
    let mut priors_seen: HashMap<Vec<u32>, f64> = HashMap::new();
    for row in &memory.rows {
        let Some(outcome) = row.outcome else { continue };
        let ids = memory.attrs(row);
        main.clear();
        main.extend(ids.iter().filter_map(|&id| table.get(id as usize)));
        main.sort_unstable();
        main.dedup();
        let features = with_pairs(&main);
        let p0 = match priors_seen.get(ids) {
            Some(p) => *p,
            None => {
                let p = prior_of_attributes(&memory.attributes(row));
                priors_seen.insert(ids.to_vec(), p);
                p
            }
        };
        f(&features, p0, outcome.failed());
    }
}

/// A model fitted to a memory, with the out-of-sample calibration of
/// learning it one outcome at a time and, on the same outcomes, the
/// calibration of the prior alone.
#[derive(Debug, Clone)]
pub struct Fit {
    /// Refitted over every outcome at once.
    pub model: IncidentModel,
    pub calibration: Calibration,
    pub prior_calibration: Calibration,
}

/// Fits a model to every episode of `memory` that has an outcome
/// ([`each_outcome`]): predicting each before learning it, in the order they
/// came, for the calibration; then [`IncidentModel::refit`] over them all.
pub fn fit_memory(priors: Priors, memory: &crate::memory::Memory) -> Fit {
    let mut model = IncidentModel::new(priors);
    let mut batch = Batch::default();
    let mut seen = Vec::new();
    let mut by_prior = Vec::new();
    each_outcome(memory, |features, p0, incident| {
        seen.push((model.predict(features, p0).p, incident));
        by_prior.push((p0, incident));
        model.learn(features, p0, incident);
        batch.add(features, p0, incident);
    });
    Fit {
        model: IncidentModel::refit(priors, &batch),
        calibration: Calibration::of(&seen),
        prior_calibration: Calibration::of(&by_prior),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fits a model to outcomes in the order they came (features, prior
    /// probability, incident), predicting each before learning from it, and
    /// returns the model with that out-of-sample calibration.
    fn fit<'a>(
        priors: Priors,
        outcomes: impl IntoIterator<Item = (&'a [Feature], f64, bool)>,
    ) -> (IncidentModel, Calibration) {
        let mut model = IncidentModel::new(priors);
        let mut seen = Vec::new();
        for (features, prior, incident) in outcomes {
            seen.push((model.predict(features, prior).p, incident));
            model.learn(features, prior, incident);
        }
        (model, Calibration::of(&seen))
    }

    fn attrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, v)| (a.to_string(), v.to_string()))
            .collect()
    }

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn the_numerics_match_published_values() {
        assert!((cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-6);
        assert!((cdf(-3.0) - 0.001_349_898).abs() < 1e-7);
        for p in [1e-6, 0.01, 0.1, 0.5, 0.9, 0.999] {
            assert!((cdf(probit(p)) - p).abs() < 1e-7 * p.max(1e-3), "{p}");
        }
    }

    #[test]
    fn features_are_every_attribute_and_every_pair_in_any_order() {
        let a = features(&attrs(&[
            ("region", "apac"),
            ("hour_band", "night"),
            ("env", "prod"),
        ]));
        let b = features(&attrs(&[
            ("env", "prod"),
            ("region", "apac"),
            ("hour_band", "night"),
        ]));
        assert_eq!(a, b);
        assert_eq!(a.len(), 3 + 3);
        assert_eq!(a.iter().filter(|f| is_pair(**f)).count(), 3);
        let mut distinct = a.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), a.len());
    }

    #[test]
    fn with_no_outcomes_the_prior_is_the_answer() {
        let m = IncidentModel::new(Priors::default());
        let f = features(&attrs(&[("env", "prod"), ("region", "eu")]));
        let p = m.predict(&f, 0.08);
        // Exactly the prior, with the interval its uncertainty leaves.
        assert!((p.p - 0.08).abs() < 1e-6, "{p:?}");
        assert!(p.low < 0.08 && p.high > 0.08, "{p:?}");
    }

    /// Incidents come from an interaction no single attribute shows: APAC
    /// releases at night fail half the time, everything else 4 %.
    fn interaction_stream(n: usize, seed: u64) -> Vec<(Vec<(String, String)>, bool)> {
        let mut rng = Rng(seed);
        let regions = ["apac", "eu", "us"];
        let bands = ["night", "morning", "afternoon", "evening"];
        (0..n)
            .map(|_| {
                let region = regions[(rng.next() * 3.0) as usize % 3];
                let band = bands[(rng.next() * 4.0) as usize % 4];
                let risk = if region == "apac" && band == "night" {
                    0.5
                } else {
                    0.04
                };
                let a = attrs(&[("env", "prod"), ("region", region), ("hour_band", band)]);
                (a, rng.next() < risk)
            })
            .collect()
    }

    #[test]
    fn an_interaction_is_learned_and_the_predictions_are_calibrated() {
        let stream = interaction_stream(3000, 0x5eed);
        let feats: Vec<Vec<Feature>> = stream.iter().map(|(a, _)| features(a)).collect();
        let (model, cal) = fit(
            Priors::default(),
            feats
                .iter()
                .zip(&stream)
                .map(|(f, (_, y))| (f.as_slice(), 0.08, *y)),
        );
        let p = |region: &str, band: &str| {
            model
                .predict(
                    &features(&attrs(&[
                        ("env", "prod"),
                        ("region", region),
                        ("hour_band", band),
                    ])),
                    0.08,
                )
                .p
        };
        assert!(p("apac", "night") > 0.35, "{}", p("apac", "night"));
        assert!(p("apac", "morning") < 0.1, "{}", p("apac", "morning"));
        assert!(p("eu", "night") < 0.1, "{}", p("eu", "night"));
        // Out of sample, better than the base rate, and the top decile
        // is where the incidents are.
        assert!(cal.brier < cal.brier_base_rate * 0.9, "{cal:?}");
        let top = cal.reliability.last().expect("bins");
        assert!(
            top.observed > 0.25 && (top.predicted - top.observed).abs() < 0.15,
            "{top:?}"
        );
        assert_eq!(cal.reliability.iter().map(|b| b.count).sum::<u64>(), 3000);
    }

    #[test]
    fn learning_moves_only_what_it_saw_and_narrows_the_interval() {
        let mut m = IncidentModel::new(Priors::default());
        let seen = features(&attrs(&[("region", "apac")]));
        let other = features(&attrs(&[("region", "eu")]));
        let before = m.predict(&seen, 0.1);
        // Outcomes in line with the prior: the estimate stays, the
        // interval narrows.
        for i in 0..200 {
            m.learn(&seen, 0.1, i % 10 == 0);
        }
        let steady = m.predict(&seen, 0.1);
        assert!((steady.p - 0.1).abs() < 0.03, "{steady:?}");
        assert!(
            steady.high - steady.low < (before.high - before.low) / 2.0,
            "{before:?} {steady:?}"
        );
        // Outcomes against it: the estimate follows them.
        for _ in 0..50 {
            m.learn(&seen, 0.1, true);
        }
        let after = m.predict(&seen, 0.1);
        assert!(after.p > steady.p + 0.1, "{steady:?} {after:?}");
        assert!((m.predict(&other, 0.1).p - before.p).abs() < 1e-12);
        assert_eq!(m.outcomes, 250);
    }

    #[test]
    fn memory_and_contexts_give_the_same_features_and_fit() {
        use crate::action::Action;
        use crate::context::Context;
        use crate::memory::{Memory, Outcome};
        let mut memory = Memory::default();
        let mut direct = Vec::new();
        let mut rng = Rng(7);
        for i in 0..400 {
            let night = rng.next() < 0.3;
            let c = Context::from_json(&serde_json::json!({
                "env": "prod", "feature_risk": "LOW", "day_of_week": "TUE",
                "hour_of_day": if night { 2 } else { 10 },
                "region": if rng.next() < 0.5 { "apac" } else { "eu" },
            }))
            .expect("context");
            let incident = rng.next() < if night { 0.4 } else { 0.05 };
            let id = format!("dec-{i:06}");
            assert!(memory.push(&id, &c, Action::Go));
            memory.set_outcome(
                &id,
                if incident {
                    Outcome::Incident
                } else {
                    Outcome::Success
                },
            );
            let attrs = c.attributes();
            direct.push((features(&attrs), prior_of_attributes(&attrs), incident));
        }
        let Fit {
            model: a,
            calibration: ca,
            ..
        } = fit_memory(Priors::default(), &memory);
        let (_, cb) = fit(
            Priors::default(),
            direct.iter().map(|(f, p, y)| (f.as_slice(), *p, *y)),
        );
        assert_eq!(ca, cb);
        // The same refit: a context predicts the same both ways.
        let mut batch = Batch::default();
        for (f, p, y) in &direct {
            batch.add(f, *p, *y);
        }
        let b = IncidentModel::refit(Priors::default(), &batch);
        let (probe, p0) = (&direct[3].0, direct[3].1);
        assert_eq!(a.predict(probe, p0), b.predict(probe, p0));
        assert_eq!(a.learned_weights(), b.learned_weights());
        // And it found the nights.
        let night = Context::from_json(&serde_json::json!({
            "env": "prod", "feature_risk": "LOW", "day_of_week": "TUE",
            "hour_of_day": 2, "region": "eu"}))
        .expect("context");
        let day = Context {
            hour_of_day: 10,
            ..night.clone()
        };
        assert!(
            a.assess(&night.attributes()).p > 3.0 * a.assess(&day.attributes()).p,
            "{:?} {:?}",
            a.assess(&night.attributes()),
            a.assess(&day.attributes())
        );
    }

    #[test]
    fn a_model_survives_its_cache_and_a_damaged_cache_is_refused() {
        let stream = interaction_stream(500, 3);
        let mut batch = Batch::default();
        for (a, y) in &stream {
            batch.add(&features(a), 0.08, *y);
        }
        let m = IncidentModel::refit(Priors::default(), &batch);
        let bytes = m.encode();
        let back = IncidentModel::decode(&bytes).expect("decodes");
        let probe = features(&stream[0].0);
        assert_eq!(back.predict(&probe, 0.08), m.predict(&probe, 0.08));
        assert_eq!(
            (back.outcomes, back.learned_weights()),
            (500, m.learned_weights())
        );
        // Cut short, one byte more, other magic, or priors that are no
        // variances: not a model.
        assert!(IncidentModel::decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(IncidentModel::decode(&[&bytes[..], &[0]].concat()).is_none());
        let mut other = bytes.clone();
        other[0] ^= 1;
        assert!(IncidentModel::decode(&other).is_none());
        let mut nan = bytes.clone();
        nan[8..16].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(IncidentModel::decode(&nan).is_none());
        assert!(IncidentModel::decode(b"").is_none());
    }

    #[test]
    fn the_prior_follows_the_fixed_rules() {
        assert!((prior_from_score(0) - 0.01).abs() < 1e-12);
        assert!((prior_from_score(crate::planner::HOLD_AT) - 0.10).abs() < 1e-12);
        assert_eq!(prior_from_score(10_000), 0.95);
        let quiet = crate::context::Context::from_json(&serde_json::json!({
            "env": "prod", "feature_risk": "LOW", "day_of_week": "TUE", "hour_of_day": 10}))
        .expect("context");
        let risky = crate::context::Context::from_json(&serde_json::json!({
            "env": "prod", "feature_risk": "HIGH", "service_criticality": "HIGH",
            "day_of_week": "FRI", "hour_of_day": 17, "clash": true}))
        .expect("context");
        assert!(prior_of(&quiet) < prior_of(&risky));
        // Remembered attributes give the same prior as the context, up to
        // the hour read back from its band.
        let back = crate::context::Context::from_attributes(&risky.attributes()).expect("back");
        assert_eq!(back.attributes(), risky.attributes());
        assert!((prior_of_attributes(&risky.attributes()) - prior_of(&back)).abs() < 1e-12);
    }
}
