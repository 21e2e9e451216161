//! Prediction intervals from parameter uncertainty.
//!
//! At the maximum-likelihood estimate `θ̂` of the log-parameters, the inverse Hessian of −LL is
//! their asymptotic covariance `Σ` ([`super::FitReport::covariance`]). Draw `θ_s ~ N(θ̂, Σ)`,
//! `s = 1..S`, score every customer under each draw, and take the 5th and 95th percentiles of
//! each customer's values. The purchase and spend models are drawn independently (they are
//! fitted separately). This is **parameter** uncertainty only: it says how well the data pin
//! the model down, not how many purchases one customer will actually make (that randomness is
//! not in the interval).
//!
//! Cost. Expected purchases and the CLV discount factor depend on `(x, T)` only, so they are
//! computed once per distinct pair and draw; P(alive) once per distinct `(x, t_x, T)` and draw
//! (customers are processed sorted by that key, in chunks of pairs, so memory stays
//! `chunk × S`); the spend and the percentiles once per customer.
//!
//! Draws come from a fixed-seed generator, so reruns are bit-identical.

use rayon::prelude::*;

use super::clv::{discount_factor, distinct_pairs, ClvOptions};
use super::optimize::cholesky;
use super::purchase::PurchaseScore;
use super::{GammaGammaParams, ModelKind, PurchaseModel};

/// SplitMix64 with Box–Muller normals: small, fast, and the same stream on every platform.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// `draws` vectors `θ̂ + L z`, `L` the lower Cholesky factor of `cov` (row-major `n×n`),
/// `z` standard normal. `None` if `cov` is not positive definite.
pub fn draw_log_params(
    theta_hat: &[f64],
    cov: &[f64],
    draws: usize,
    seed: u64,
) -> Option<Vec<Vec<f64>>> {
    let n = theta_hat.len();
    let l = cholesky(cov, n)?;
    let mut rng = Rng(seed);
    Some(
        (0..draws)
            .map(|_| {
                let z: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                (0..n)
                    .map(|i| theta_hat[i] + (0..=i).map(|k| l[i * n + k] * z[k]).sum::<f64>())
                    .collect()
            })
            .collect(),
    )
}

/// Linearly interpolated quantile of sorted values (numpy's default method).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl PurchaseModel {
    /// The fitted log-parameters, in the order of [`super::FitReport::covariance`].
    pub fn log_params(&self) -> Vec<f64> {
        match *self {
            PurchaseModel::BgNbd(p) => vec![p.r.ln(), p.alpha.ln(), p.a.ln(), p.b.ln()],
            PurchaseModel::MbgNbd(p) => vec![p.r.ln(), p.alpha.ln(), p.a.ln(), p.b.ln()],
            PurchaseModel::ParetoNbd(p) => vec![p.r.ln(), p.alpha.ln(), p.s.ln(), p.beta.ln()],
        }
    }

    /// The model of `kind` with parameters `exp(θ)`.
    pub fn from_log_params(kind: ModelKind, th: &[f64]) -> PurchaseModel {
        let e: Vec<f64> = th.iter().map(|v| v.exp()).collect();
        match kind {
            ModelKind::BgNbd => PurchaseModel::BgNbd(super::BgNbdParams {
                r: e[0],
                alpha: e[1],
                a: e[2],
                b: e[3],
            }),
            ModelKind::MbgNbd => PurchaseModel::MbgNbd(super::MbgNbdParams {
                r: e[0],
                alpha: e[1],
                a: e[2],
                b: e[3],
            }),
            ModelKind::ParetoNbd => PurchaseModel::ParetoNbd(super::ParetoNbdParams {
                r: e[0],
                alpha: e[1],
                s: e[2],
                beta: e[3],
            }),
        }
    }
}

impl GammaGammaParams {
    /// `(ln p, ln q, ln v)`.
    pub fn log_params(&self) -> Vec<f64> {
        vec![self.p.ln(), self.q.ln(), self.v.ln()]
    }
    /// The parameters `exp(θ)`.
    pub fn from_log_params(th: &[f64]) -> GammaGammaParams {
        GammaGammaParams {
            p: th[0].exp(),
            q: th[1].exp(),
            v: th[2].exp(),
        }
    }
}

/// 5th and 95th percentiles per customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Band {
    /// 5th percentile of each customer's values, in input order.
    pub p05: Vec<f64>,
    /// 95th percentile of each customer's values, in input order.
    pub p95: Vec<f64>,
}

/// The interval columns of every customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intervals {
    /// Band of the probability that the customer is alive at `T`.
    pub prob_alive: Band,
    /// Band of the expected purchases in the next `horizon` time units.
    pub expected_purchases: Band,
    /// With a spend model only.
    pub clv: Option<Band>,
}

/// The 5th and 95th percentiles of `values` (as [`quantile`] of the sorted values), by
/// selection in `scratch` rather than a full sort.
fn p05_p95(values: &[f64], scratch: &mut Vec<f64>) -> (f64, f64) {
    scratch.clear();
    scratch.extend_from_slice(values);
    (
        select_quantile(scratch, 0.05),
        select_quantile(scratch, 0.95),
    )
}

/// [`quantile`] of `v` without sorting it: the two order statistics around the position, by
/// `select_nth_unstable` (reorders `v`).
fn select_quantile(v: &mut [f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (left, &mut at_hi, _) = v.select_nth_unstable_by(hi, f64::total_cmp);
    let at_lo = if lo == hi {
        at_hi
    } else {
        left.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    };
    at_lo + (at_hi - at_lo) * (pos - lo as f64)
}

/// Distinct `(x, T)` pairs scored per parallel task.
const PAIRS_PER_TASK: usize = 256;

/// Percentile bands of P(alive), expected purchases over `horizon` time units and, with spend
/// draws, CLV, for every customer, under the parameter draws given.
#[allow(clippy::too_many_arguments)]
pub fn customer_intervals(
    purchase: &[PurchaseModel],
    spend: Option<&[GammaGammaParams]>,
    horizon: f64,
    x: &[f64],
    tx: &[f64],
    t: &[f64],
    m: &[f64],
    opts: &ClvOptions,
) -> Intervals {
    let n = x.len();
    let draws = purchase.len();
    let (pairs, pair_of) = distinct_pairs(x, t);
    // Customers sorted by (pair, t_x): equal (x, t_x, T) keys are adjacent.
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by(|&i, &j| {
        let (i, j) = (i as usize, j as usize);
        pair_of[i]
            .cmp(&pair_of[j])
            .then(tx[i].total_cmp(&tx[j]))
            .then(i.cmp(&j))
    });
    // Where each pair's customers start in `order`.
    let mut start = vec![0usize; pairs.len() + 1];
    for &i in &order {
        start[pair_of[i as usize] as usize + 1] += 1;
    }
    for k in 0..pairs.len() {
        start[k + 1] += start[k];
    }
    let tasks: Vec<Vec<(u32, [f64; 6])>> = (0..pairs.len().div_ceil(PAIRS_PER_TASK))
        .into_par_iter()
        .map(|task| {
            let mut out = Vec::new();
            let (mut pa, mut ep, mut cl) = (vec![0.0; draws], vec![0.0; draws], vec![0.0; draws]);
            let mut eif = vec![0.0; draws];
            let mut factor = vec![0.0; draws];
            let mut scratch = Vec::with_capacity(draws);
            let lo = task * PAIRS_PER_TASK;
            for k in lo..(lo + PAIRS_PER_TASK).min(pairs.len()) {
                let (xk, tk) = pairs[k];
                for s in 0..draws {
                    eif[s] = purchase[s].expected_purchases_if_alive(horizon, xk, tk);
                    if spend.is_some() {
                        factor[s] = discount_factor(&purchase[s], xk, tk, opts);
                    }
                }
                let mut last_tx = f64::NAN;
                // Bands that depend on (x, t_x, T) only are computed once per key; CLV per
                // customer only when the mean spend m matters (x > 0).
                let mut key_band = [f64::NAN; 6];
                for &i in &order[start[k]..start[k + 1]] {
                    let i = i as usize;
                    let new_key = tx[i].to_bits() != last_tx.to_bits();
                    if new_key {
                        last_tx = tx[i];
                        for s in 0..draws {
                            pa[s] = purchase[s].prob_alive(xk, tx[i], tk);
                            ep[s] = eif[s] * pa[s];
                        }
                        (key_band[0], key_band[1]) = p05_p95(&pa, &mut scratch);
                        (key_band[2], key_band[3]) = p05_p95(&ep, &mut scratch);
                    }
                    let mut band = key_band;
                    if let Some(g) = spend {
                        if new_key || x[i] > 0.0 {
                            for s in 0..draws {
                                cl[s] = opts.margin
                                    * g[s].conditional_expected_spend(x[i], m[i])
                                    * pa[s]
                                    * factor[s]
                                    - opts.acquisition_cost;
                            }
                            (key_band[4], key_band[5]) = p05_p95(&cl, &mut scratch);
                        }
                        (band[4], band[5]) = (key_band[4], key_band[5]);
                    }
                    out.push((i as u32, band));
                }
            }
            out
        })
        .collect();
    let mut cols = vec![vec![f64::NAN; n]; 6];
    for task in tasks {
        for (i, band) in task {
            for (c, v) in band.iter().enumerate() {
                cols[c][i as usize] = *v;
            }
        }
    }
    let mut cols = cols.into_iter();
    let mut next = || cols.next().unwrap_or_default();
    let prob_alive = Band {
        p05: next(),
        p95: next(),
    };
    let expected_purchases = Band {
        p05: next(),
        p95: next(),
    };
    let clv = spend.map(|_| Band {
        p05: next(),
        p95: next(),
    });
    Intervals {
        prob_alive,
        expected_purchases,
        clv,
    }
}

#[cfg(test)]
mod tests;
