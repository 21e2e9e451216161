//! Customer lifetime value from a fitted BG/NBD and Gamma-Gamma pair, and the simple retention
//! formula.
//!
//! # Discounted CLV
//!
//! `CLV = Σ_{k=1..H} margin · E[spend] · (E[Y(k·D)] − E[Y((k−1)·D)]) / (1+d)^k − acquisition_cost`
//!
//! where `E[Y(·)]` is the BG/NBD conditional expectation (eq. 10 of Fader, Hardie & Lee 2005),
//! `E[spend]` the Gamma-Gamma conditional mean (note 025, eq. 5), `D = days_per_month` days
//! converted to the model's time unit through `time_unit_days`, and `d` the monthly discount
//! rate applied at the end of each month. With `margin = 1`, `acquisition_cost = 0`,
//! `days_per_month = 30` and a day-based model this is exactly `lifetimes` 0.11.3
//! `GammaGammaFitter.customer_lifetime_value(bgf, f, r, T, m, time=H, discount_rate=d,
//! freq='D')`. Unlike `lifetimes`, a week-based model gets `30/7` weeks per month, not 30 weeks.

use rayon::prelude::*;

use super::purchase::PurchaseScore;
use super::{check_customer, check_len, GammaGammaParams, ModelError};

/// Options of the discounted CLV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvOptions {
    /// Number of monthly steps `H`.
    pub horizon_months: u32,
    /// Discount rate per month `d` (see [`monthly_rate_from_annual`]).
    pub monthly_discount_rate: f64,
    /// Share of spend that is profit (1 = revenue CLV).
    pub margin: f64,
    /// Length of a month in days (30 as in `lifetimes`; 365.25/12 for calendar-average months).
    pub days_per_month: f64,
    /// Length of the model's time unit in days: 1 for a day-based fit, 7 for weeks.
    pub time_unit_days: f64,
    /// Subtracted once from each customer's CLV.
    pub acquisition_cost: f64,
}

impl Default for ClvOptions {
    /// 12 months, 1 % a month, margin 1, 30-day months, day-based model, no acquisition cost
    /// (the `lifetimes` defaults).
    fn default() -> Self {
        ClvOptions {
            horizon_months: 12,
            monthly_discount_rate: 0.01,
            margin: 1.0,
            days_per_month: 30.0,
            time_unit_days: 1.0,
            acquisition_cost: 0.0,
        }
    }
}

impl ClvOptions {
    /// Sets the number of monthly steps `H`.
    #[must_use]
    pub fn with_horizon_months(mut self, v: u32) -> Self {
        self.horizon_months = v;
        self
    }
    /// Sets the discount rate per month `d`.
    #[must_use]
    pub fn with_monthly_discount_rate(mut self, v: f64) -> Self {
        self.monthly_discount_rate = v;
        self
    }
    /// Sets the share of spend that is profit.
    #[must_use]
    pub fn with_margin(mut self, v: f64) -> Self {
        self.margin = v;
        self
    }
    /// Sets the length of a month in days.
    #[must_use]
    pub fn with_days_per_month(mut self, v: f64) -> Self {
        self.days_per_month = v;
        self
    }
    /// Sets the length of the model's time unit in days.
    #[must_use]
    pub fn with_time_unit_days(mut self, v: f64) -> Self {
        self.time_unit_days = v;
        self
    }
    /// Sets the cost subtracted once from each customer's CLV.
    #[must_use]
    pub fn with_acquisition_cost(mut self, v: f64) -> Self {
        self.acquisition_cost = v;
        self
    }
}

/// Monthly rate equivalent to an annual one: `(1 + annual)^(1/12) − 1`.
pub fn monthly_rate_from_annual(annual: f64) -> f64 {
    (annual.ln_1p() / 12.0).exp_m1()
}

/// Discounted CLV of one customer with history `(x, t_x, T)` in the BG/NBD's time unit and
/// mean repeat spend `m` (see the module doc for the formula).
pub fn discounted_clv<M: PurchaseScore + ?Sized>(
    bg: &M,
    gg: &GammaGammaParams,
    x: f64,
    tx: f64,
    t: f64,
    m: f64,
    opts: &ClvOptions,
) -> f64 {
    let factor = discount_factor(bg, x, t, opts);
    clv_from_factor(gg, x, m, opts, bg.alive_weight(x, tx, t), factor)
}

/// `Σ_k (E[Y(k·D)] − E[Y((k−1)·D)]) / (1+d)^k` before the alive weight: depends on `(x, T)`
/// only (see [`PurchaseScore::expected_purchases_if_alive`]).
pub(crate) fn discount_factor<M: PurchaseScore + ?Sized>(
    bg: &M,
    x: f64,
    t: f64,
    opts: &ClvOptions,
) -> f64 {
    discount_factor_with(bg, x, t, opts, &monthly_discounts(opts))
}

/// `1/(1+d)^k` for `k = 1..=H`, by repeated division (the same values for every customer).
pub(crate) fn monthly_discounts(opts: &ClvOptions) -> Vec<f64> {
    let mut discount = 1.0;
    (0..opts.horizon_months)
        .map(|_| {
            discount /= 1.0 + opts.monthly_discount_rate;
            discount
        })
        .collect()
}

/// [`discount_factor`] with the month discounts of [`monthly_discounts`] computed once by the
/// caller (the repeated division is a chain of dependent divisions per call).
pub(crate) fn discount_factor_with<M: PurchaseScore + ?Sized>(
    bg: &M,
    x: f64,
    t: f64,
    opts: &ClvOptions,
    discounts: &[f64],
) -> f64 {
    discount_factor_at(bg, x, t, opts, discounts, None).0
}

/// [`discount_factor_with`] and [`PurchaseScore::expected_purchases_if_alive`] at `horizon`:
/// read from the month ends' batch when the horizon is a month end (within 1e-12 relative: 90
/// days and 30-day months, the defaults), else computed apart.
pub(crate) fn discount_factor_and_expected<M: PurchaseScore + ?Sized>(
    bg: &M,
    x: f64,
    t: f64,
    opts: &ClvOptions,
    discounts: &[f64],
    horizon: f64,
) -> (f64, f64) {
    if let Some(j) = horizon_month(horizon, discounts.len(), opts) {
        let (factor, expected) = discount_factor_at(bg, x, t, opts, discounts, Some(j));
        (factor, expected.expect("the month end is in the horizon"))
    } else {
        (
            discount_factor_at(bg, x, t, opts, discounts, None).0,
            bg.expected_purchases_if_alive(horizon, x, t),
        )
    }
}

/// The discount factor, and the cumulative expectation at month end `keep` (1-based) if asked.
fn discount_factor_at<M: PurchaseScore + ?Sized>(
    bg: &M,
    x: f64,
    t: f64,
    opts: &ClvOptions,
    discounts: &[f64],
    keep: Option<usize>,
) -> (f64, Option<f64>) {
    discount_factor_from(opts, discounts, keep, |ts, cums| {
        bg.expected_purchases_if_alive_many(ts, x, t, cums)
    })
}

/// The discount factor from the cumulative expectations that `fill(ts, cums)` writes at the
/// ascending month ends `ts` (at most [`BATCH`] at a time), and the one at month end `keep`
/// (1-based) if asked.
pub(crate) fn discount_factor_from(
    opts: &ClvOptions,
    discounts: &[f64],
    keep: Option<usize>,
    mut fill: impl FnMut(&[f64], &mut [f64]),
) -> (f64, Option<f64>) {
    let months = discounts.len();
    // The cumulative expectations at every month end, by batches of series that share their
    // coefficients.
    let mut ts = [0.0; BATCH];
    let mut cums = [0.0; BATCH];
    let mut sum = 0.0;
    let mut prev = 0.0;
    let mut kept = None;
    let mut k = 1;
    while k <= months {
        let len = BATCH.min(months + 1 - k);
        for (j, t_j) in ts[..len].iter_mut().enumerate() {
            *t_j = month_end(k + j, opts);
        }
        fill(&ts[..len], &mut cums[..len]);
        if let Some(j) = keep.filter(|&j| j >= k && j < k + len) {
            kept = Some(cums[j - k]);
        }
        for (&cum, &discount) in cums[..len].iter().zip(&discounts[k - 1..]) {
            sum += (cum - prev) * discount;
            prev = cum;
        }
        k += len;
    }
    (sum, kept)
}

/// The end of month `k` (1-based) in the model's time unit, as every discount factor computes
/// it.
pub(crate) fn month_end(k: usize, opts: &ClvOptions) -> f64 {
    k as f64 * (opts.days_per_month / opts.time_unit_days)
}

/// The month end (1-based) that `horizon` is, within 1e-12 relative, if any of the first
/// `months`.
pub(crate) fn horizon_month(horizon: f64, months: usize, opts: &ClvOptions) -> Option<usize> {
    let month = opts.days_per_month / opts.time_unit_days;
    let j = (horizon / month).round();
    (j >= 1.0 && j <= months as f64 && (j * month - horizon).abs() <= 1e-12 * horizon.abs())
        .then_some(j as usize)
}

/// Month ends evaluated together by [`discount_factor`].
pub(crate) const BATCH: usize = 24;

/// CLV of a customer with frequency `x` and mean spend `m` from its alive weight
/// ([`PurchaseScore::alive_weight`]) and discount factor ([`discount_factor`]).
fn clv_from_factor(
    gg: &GammaGammaParams,
    x: f64,
    m: f64,
    opts: &ClvOptions,
    alive_weight: f64,
    factor: f64,
) -> f64 {
    opts.margin * gg.conditional_expected_spend(x, m) * alive_weight * factor
        - opts.acquisition_cost
}

/// Distinct `(x, T)` pairs in first-appearance order, and each customer's pair index.
pub(crate) fn distinct_pairs(x: &[f64], t: &[f64]) -> (Vec<(f64, f64)>, Vec<u32>) {
    let mut index: polars::prelude::PlHashMap<(u64, u64), u32> = Default::default();
    let mut pairs = Vec::new();
    let idx = x
        .iter()
        .zip(t)
        .map(|(&xi, &ti)| {
            *index
                .entry((xi.to_bits(), ti.to_bits()))
                .or_insert_with(|| {
                    pairs.push((xi, ti));
                    (pairs.len() - 1) as u32
                })
        })
        .collect();
    (pairs, idx)
}

/// Simple retention-model CLV: `m · r / (1 + i − r)` for annual margin `m`, retention rate `r`
/// and discount rate `i` (Gupta & Lehmann 2003, infinite horizon, margin received at period end).
pub fn simple_retention_clv(margin_annual_value: f64, retention_r: f64, discount_i: f64) -> f64 {
    margin_annual_value * retention_r / (1.0 + discount_i - retention_r)
}

/// Minimum customers per rayon task in the batch functions.
const MIN_PER_TASK: usize = 512;

fn check_rfm(x: &[f64], tx: &[f64], t: &[f64]) -> Result<(), ModelError> {
    check_len("frequency", x.len(), "recency", tx.len())?;
    check_len("frequency", x.len(), "T", t.len())?;
    for i in 0..x.len() {
        check_customer(i, x[i], tx[i], t[i])?;
    }
    Ok(())
}

/// P(alive) ([`PurchaseScore::prob_alive`]) for every customer, in parallel.
pub fn batch_prob_alive<M: PurchaseScore + ?Sized>(
    bg: &M,
    x: &[f64],
    tx: &[f64],
    t: &[f64],
) -> Result<Vec<f64>, ModelError> {
    check_rfm(x, tx, t)?;
    Ok((0..x.len())
        .into_par_iter()
        .with_min_len(MIN_PER_TASK)
        .map(|i| bg.prob_alive(x[i], tx[i], t[i]))
        .collect())
}

/// Expected repeat purchases over the next `horizon_days` days for every customer, in parallel
/// (`time_unit_days` converts days into the BG/NBD's unit).
pub fn batch_expected_purchases<M: PurchaseScore + ?Sized>(
    bg: &M,
    horizon_days: f64,
    time_unit_days: f64,
    x: &[f64],
    tx: &[f64],
    t: &[f64],
) -> Result<Vec<f64>, ModelError> {
    check_rfm(x, tx, t)?;
    let h = horizon_days / time_unit_days;
    // The series part depends on (x, T) only: once per distinct pair (customers share them).
    let (pairs, idx) = distinct_pairs(x, t);
    let per_pair: Vec<f64> = pairs
        .par_iter()
        .with_min_len(MIN_PER_TASK / 8)
        .map(|&(xi, ti)| bg.expected_purchases_if_alive(h, xi, ti))
        .collect();
    Ok((0..x.len())
        .into_par_iter()
        .with_min_len(MIN_PER_TASK)
        .map(|i| per_pair[idx[i] as usize] * bg.alive_weight(x[i], tx[i], t[i]))
        .collect())
}

/// [`GammaGammaParams::conditional_expected_spend`] for every customer, in parallel.
pub fn batch_expected_spend(
    gg: &GammaGammaParams,
    x: &[f64],
    m: &[f64],
) -> Result<Vec<f64>, ModelError> {
    check_len("frequency", x.len(), "monetary", m.len())?;
    Ok((0..x.len())
        .into_par_iter()
        .with_min_len(MIN_PER_TASK)
        .map(|i| gg.conditional_expected_spend(x[i], m[i]))
        .collect())
}

/// [`discounted_clv`] for every customer, in parallel.
pub fn batch_discounted_clv<M: PurchaseScore + ?Sized>(
    bg: &M,
    gg: &GammaGammaParams,
    x: &[f64],
    tx: &[f64],
    t: &[f64],
    m: &[f64],
    opts: &ClvOptions,
) -> Result<Vec<f64>, ModelError> {
    check_rfm(x, tx, t)?;
    check_len("frequency", x.len(), "monetary", m.len())?;
    // The H-month series part depends on (x, T) only: once per distinct pair.
    let (pairs, idx) = distinct_pairs(x, t);
    let discounts = monthly_discounts(opts);
    let factors: Vec<f64> = pairs
        .par_iter()
        .with_min_len(MIN_PER_TASK / 64)
        .map(|&(xi, ti)| discount_factor_with(bg, xi, ti, opts, &discounts))
        .collect();
    Ok((0..x.len())
        .into_par_iter()
        .with_min_len(MIN_PER_TASK)
        .map(|i| {
            let weight = bg.alive_weight(x[i], tx[i], t[i]);
            clv_from_factor(gg, x[i], m[i], opts, weight, factors[idx[i] as usize])
        })
        .collect())
}

/// The point scores of every customer ([`batch_scores`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// P(alive), as [`batch_prob_alive`].
    pub prob_alive: Vec<f64>,
    /// Expected purchases over the horizon, as [`batch_expected_purchases`].
    pub expected_purchases: Vec<f64>,
    /// Discounted CLV, as [`batch_discounted_clv`]; with a spend model only.
    pub clv: Option<Vec<f64>>,
}

/// [`batch_prob_alive`], [`batch_expected_purchases`] and, with a spend model `gg`,
/// [`batch_discounted_clv`] in one pass, with the same values: each customer's P(alive) is
/// computed once instead of three times, and the distinct `(x, T)` pairs once instead of twice.
#[allow(clippy::too_many_arguments)]
pub fn batch_scores<M: PurchaseScore + ?Sized>(
    bg: &M,
    gg: Option<&GammaGammaParams>,
    horizon_days: f64,
    time_unit_days: f64,
    x: &[f64],
    tx: &[f64],
    t: &[f64],
    m: &[f64],
    opts: &ClvOptions,
) -> Result<Scores, ModelError> {
    check_rfm(x, tx, t)?;
    check_len("frequency", x.len(), "monetary", m.len())?;
    let h = horizon_days / time_unit_days;
    let (pairs, idx) = distinct_pairs(x, t);
    let discounts = monthly_discounts(opts);
    // Per pair: expected purchases if alive, and the CLV discount factor.
    let per_pair: Vec<(f64, f64)> = pairs
        .par_iter()
        .with_min_len(MIN_PER_TASK / 64)
        .map(|&(xi, ti)| {
            let factor = match gg {
                Some(_) => discount_factor_with(bg, xi, ti, opts, &discounts),
                None => f64::NAN,
            };
            (bg.expected_purchases_if_alive(h, xi, ti), factor)
        })
        .collect();
    let alive: Vec<(f64, f64)> = (0..x.len())
        .into_par_iter()
        .with_min_len(MIN_PER_TASK)
        .map(|i| bg.prob_alive_and_weight(x[i], tx[i], t[i]))
        .collect();
    let expected_purchases = (0..x.len())
        .into_par_iter()
        .with_min_len(MIN_PER_TASK)
        .map(|i| per_pair[idx[i] as usize].0 * alive[i].1)
        .collect();
    let clv = gg.map(|gg| {
        (0..x.len())
            .into_par_iter()
            .with_min_len(MIN_PER_TASK)
            .map(|i| {
                clv_from_factor(
                    gg,
                    x[i],
                    m[i],
                    opts,
                    alive[i].1,
                    per_pair[idx[i] as usize].1,
                )
            })
            .collect()
    });
    Ok(Scores {
        prob_alive: alive.into_par_iter().map(|(p, _)| p).collect(),
        expected_purchases,
        clv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::BgNbdParams;

    #[test]
    fn batch_scores_equal_the_three_batch_functions_bit_for_bit() {
        // Customers with repeated (x, T) pairs, one-time buyers, recency = T.
        let n = 400;
        let x: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
        let t: Vec<f64> = (0..n).map(|i| (30 + (i * 13) % 90) as f64).collect();
        let tx: Vec<f64> = (0..n)
            .map(|i| {
                if x[i] == 0.0 {
                    0.0
                } else {
                    t[i] * ((i % 5) as f64 / 4.0)
                }
            })
            .collect();
        let m: Vec<f64> = (0..n)
            .map(|i| if x[i] == 0.0 { 0.0 } else { 5.0 + i as f64 })
            .collect();
        let gg = GammaGammaParams {
            p: 6.0,
            q: 4.0,
            v: 15.0,
        };
        let opts = ClvOptions::default().with_acquisition_cost(2.0);
        let models = [
            crate::models::PurchaseModel::BgNbd(BgNbdParams {
                r: 0.24,
                alpha: 4.4,
                a: 0.79,
                b: 2.4,
            }),
            crate::models::PurchaseModel::MbgNbd(crate::models::MbgNbdParams {
                r: 0.5,
                alpha: 6.0,
                a: 0.9,
                b: 3.0,
            }),
            crate::models::PurchaseModel::ParetoNbd(crate::models::ParetoNbdParams {
                r: 0.55,
                alpha: 10.6,
                s: 0.61,
                beta: 11.7,
            }),
        ];
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for p in &models {
            let pa = batch_prob_alive(p, &x, &tx, &t).unwrap();
            let ep = batch_expected_purchases(p, 90.0, 1.0, &x, &tx, &t).unwrap();
            let clv = batch_discounted_clv(p, &gg, &x, &tx, &t, &m, &opts).unwrap();
            let s = batch_scores(p, Some(&gg), 90.0, 1.0, &x, &tx, &t, &m, &opts).unwrap();
            assert_eq!(bits(&s.prob_alive), bits(&pa), "{p:?}");
            assert_eq!(bits(&s.expected_purchases), bits(&ep), "{p:?}");
            assert_eq!(bits(s.clv.as_deref().unwrap()), bits(&clv), "{p:?}");
            assert!(
                pa.iter().any(|&v| v < 0.99),
                "{p:?}: some customers look dead"
            );
            let s = batch_scores(p, None, 90.0, 1.0, &x, &tx, &t, &m, &opts).unwrap();
            assert!(s.clv.is_none());
            assert_eq!(bits(&s.expected_purchases), bits(&ep), "{p:?}");
        }
    }

    #[test]
    fn rates_and_retention_formula() {
        // (1.1268250301319698)^(1/12) = 1.01 exactly: 1.01^12 = 1.1268250301319698
        assert!((monthly_rate_from_annual(1.01f64.powi(12) - 1.0) - 0.01).abs() < 1e-15);
        assert_eq!(monthly_rate_from_annual(0.0), 0.0);
        // m r / (1 + i - r): 100 · 0.8 / (1 + 0.1 - 0.8) = 266.66…
        assert!((simple_retention_clv(100.0, 0.8, 0.1) - 80.0 / 0.3).abs() < 1e-12);
    }

    #[test]
    fn batched_month_ends_equal_one_series_at_a_time() {
        // The month-end expectations come from shared-coefficient batches; recompute the
        // discounted sum from single-horizon series, as lifetimes sums it.
        let bg = BgNbdParams {
            r: 0.5,
            alpha: 20.0,
            a: 0.8,
            b: 3.0,
        };
        for months in [0u32, 1, 12, 30, 60] {
            let opts = ClvOptions::default().with_horizon_months(months);
            for &(x, t) in &[(0.0, 30.0), (3.0, 40.0), (25.0, 700.0)] {
                let (mut want, mut prev, mut d) = (0.0, 0.0, 1.0);
                for k in 1..=months {
                    let cum = bg.expected_purchases_if_alive(k as f64 * 30.0, x, t);
                    d /= 1.0 + opts.monthly_discount_rate;
                    want += (cum - prev) * d;
                    prev = cum;
                }
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-12);
                assert!(
                    close(discount_factor(&bg, x, t, &opts), want),
                    "{months} {x} {t}"
                );
            }
        }
    }

    #[test]
    fn week_unit_uses_30_over_7_weeks_per_month() {
        let bg_days = BgNbdParams {
            r: 0.5,
            alpha: 20.0,
            a: 0.8,
            b: 3.0,
        };
        // The same process in weeks: alpha scales with the time unit, T and t_x too.
        let bg_weeks = BgNbdParams {
            alpha: 20.0 / 7.0,
            ..bg_days
        };
        let gg = GammaGammaParams {
            p: 6.0,
            q: 4.0,
            v: 15.0,
        };
        let days = discounted_clv(
            &bg_days,
            &gg,
            4.0,
            84.0,
            112.0,
            13.0,
            &ClvOptions::default(),
        );
        let weeks = discounted_clv(
            &bg_weeks,
            &gg,
            4.0,
            12.0,
            16.0,
            13.0,
            &ClvOptions::default().with_time_unit_days(7.0),
        );
        assert!((days - weeks).abs() < 1e-10 * days, "{days} vs {weeks}");
        let margin = discounted_clv(
            &bg_days,
            &gg,
            4.0,
            84.0,
            112.0,
            13.0,
            &ClvOptions::default()
                .with_margin(0.3)
                .with_acquisition_cost(5.0),
        );
        assert!((margin - (0.3 * days - 5.0)).abs() < 1e-10 * days);
    }
}
