//! Per-draw tables that the interval draws share across customers: `ln(α_s + t_x)` for
//! P(alive), and the powers `(α_s + v)^{a_s − 1}` behind BG/NBD's expected purchases, for
//! every distinct `v` among the customers' `T` and `T` plus a month end.

use super::super::bgnbd::BgNbdParams;
use super::super::clv::{month_end, ClvOptions};
use super::{AliveTerms, PurchaseModel};

/// `ln(α_s + t)` for each draw `s` of an odds-split model (see
/// [`PurchaseModel::alive_terms`]) and each distinct `t` of the customers' `t_x`, row by `t`.
pub(super) struct LnAlphaTable {
    /// Distinct `t_x`, ascending.
    tx: Vec<f64>,
    /// `tx.len()` rows of one value per draw.
    ln: Vec<f64>,
    draws: usize,
}

/// Most entries of a [`LnAlphaTable`] (8 bytes each); beyond, P(alive) computes its logs.
const MAX_TABLE: usize = 4 << 20;

impl LnAlphaTable {
    pub(super) fn new(purchase: &[PurchaseModel], tx: &[f64]) -> LnAlphaTable {
        let none = LnAlphaTable {
            tx: Vec::new(),
            ln: Vec::new(),
            draws: purchase.len(),
        };
        // α of every draw, when every draw splits (they are one model kind).
        let alphas: Option<Vec<f64>> = purchase
            .iter()
            .map(|p| match p.alive_terms(1.0) {
                AliveTerms::Odds { alpha, .. } => Some(alpha),
                _ => None,
            })
            .collect();
        let Some(alphas) = alphas else {
            return none;
        };
        let distinct = sorted_distinct(tx.to_vec());
        if distinct.len() * alphas.len() > MAX_TABLE {
            return none;
        }
        let ln = distinct
            .iter()
            .flat_map(|&t| alphas.iter().map(move |&a| (a + t).ln()))
            .collect();
        LnAlphaTable {
            tx: distinct,
            ln,
            draws: alphas.len(),
        }
    }

    /// The row of `t`, if the table has one.
    pub(super) fn row(&self, t: f64) -> Option<&[f64]> {
        let i = self.tx.binary_search_by(|v| v.total_cmp(&t)).ok()?;
        Some(&self.ln[i * self.draws..(i + 1) * self.draws])
    }
}

/// For each draw `s` of a BG/NBD or MBG/NBD model (as [`PurchaseModel::expectation_bg`]) and
/// each distinct `v` among the customers' `T` and `T + t` (`t` a month end of the discount
/// factor): `(α_s + v)^{B_s}`, its inverse and `1/(α_s + v)`, `B_s = a_s − 1`, the inputs of
/// [`BgNbdParams::expected_purchases_if_alive_from_powers`]. The per-pair expectations then
/// cost no logarithm or exponential per draw and month end.
pub(super) struct PowerTable {
    /// Distinct `v`, ascending.
    values: Vec<f64>,
    draws: usize,
    /// `values.len()` rows of one value per draw.
    pow: Vec<f64>,
    pow_inv: Vec<f64>,
    inv: Vec<f64>,
    /// Each draw's BG/NBD parameters, where the table applies to it
    /// ([`BgNbdParams::powers_apply`]).
    bg: Vec<Option<BgNbdParams>>,
}

/// Most rows times draws of a [`PowerTable`] (three arrays of 8-byte values); beyond, the
/// expectations use their logarithmic form.
const MAX_POWERS: usize = 2 << 20;

impl PowerTable {
    /// The table for the pairs' `T` values `ts` (any order, repeats allowed) and `months`
    /// month ends, if some draw can use it and it is small enough.
    pub(super) fn new(
        purchase: &[PurchaseModel],
        big_ts: &[f64],
        months: usize,
        opts: &ClvOptions,
    ) -> Option<PowerTable> {
        let bg: Vec<Option<BgNbdParams>> = purchase
            .iter()
            .map(|p| p.expectation_bg().filter(BgNbdParams::powers_apply))
            .collect();
        let month = month_end(1, opts);
        if bg.iter().all(Option::is_none) || month.is_nan() || month <= 0.0 {
            return None;
        }
        // The distinct T first (pairs repeat them), then with each month end added.
        let values = sorted_distinct(
            sorted_distinct(big_ts.to_vec())
                .into_iter()
                .flat_map(|t| {
                    std::iter::once(t).chain((1..=months).map(move |j| t + month_end(j, opts)))
                })
                .collect(),
        );
        let draws = purchase.len();
        if values.len().saturating_mul(draws) > MAX_POWERS {
            return None;
        }
        let n = values.len() * draws;
        let (mut pow, mut pow_inv, mut inv) =
            (vec![f64::NAN; n], vec![f64::NAN; n], vec![f64::NAN; n]);
        for (i, &v) in values.iter().enumerate() {
            for (s, p) in bg.iter().enumerate() {
                if let Some(p) = p {
                    let base = p.alpha + v;
                    let q = base.powf(p.a - 1.0);
                    pow[i * draws + s] = q;
                    pow_inv[i * draws + s] = 1.0 / q;
                    inv[i * draws + s] = 1.0 / base;
                }
            }
        }
        Some(PowerTable {
            values,
            draws,
            pow,
            pow_inv,
            inv,
            bg,
        })
    }

    /// The row of `v`, if the table has one.
    pub(super) fn row(&self, v: f64) -> Option<usize> {
        self.values.binary_search_by(|w| w.total_cmp(&v)).ok()
    }

    /// Draw `s`'s BG/NBD parameters, if the table applies to it.
    pub(super) fn bg(&self, s: usize) -> Option<&BgNbdParams> {
        self.bg[s].as_ref()
    }

    /// `(α_s + v)^{B_s}` at row `i`.
    pub(super) fn pow(&self, i: usize, s: usize) -> f64 {
        self.pow[i * self.draws + s]
    }

    /// `(α_s + v)^{−B_s}` and `1/(α_s + v)` at row `i`.
    pub(super) fn pow_inv_and_inv(&self, i: usize, s: usize) -> (f64, f64) {
        (
            self.pow_inv[i * self.draws + s],
            self.inv[i * self.draws + s],
        )
    }
}

/// `v`'s distinct values (by bits), ascending in the total order.
fn sorted_distinct(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_unstable_by(f64::total_cmp);
    v.dedup_by(|a, b| a.to_bits() == b.to_bits());
    v
}
