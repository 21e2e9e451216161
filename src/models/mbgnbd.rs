//! MBG/NBD: Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of
//! models for customer base analysis", International Journal of Research in Marketing 24(3),
//! 201-209, with the formulas of `lifetimes` 0.11.3 `ModifiedBetaGeoFitter`.
//!
//! BG/NBD lets a customer drop out only after a repeat purchase, so everyone with `x = 0` is
//! alive for sure; MBG/NBD lets them drop out right after the first purchase as well. In the
//! formulas that is BG/NBD with `b` shifted by one in the `x`-dependent terms:
//!
//! * likelihood: `ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x+1) − ln B(a, b)
//!   + ln[(α+T)^{−(r+x)} + a/(b+x) · (α+t_x)^{−(r+x)}]`, for every `x` including 0;
//! * P(alive) `= 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^{r+x})`, for every `x`;
//! * expected purchases in `(T, T+t]`: `(a+b+x)/(a−1) · [1 − ((α+T)/(α+T+t))^{r+x}
//!   ₂F₁(r+x, b+x+1; a+b+x; t/(α+T+t))] · P(alive)`, which is BG/NBD's eq. 10 bracket at
//!   `b + 1`; it is computed by the same transformed series (see [`super::bgnbd`]).
//!
//! The fit, the collapsing of identical customers, the time rescaling and the no-dropout
//! boundary (`a → 0`, NBD) are shared with BG/NBD.

use super::bgnbd::{BgNbdParams, Variant};
use super::{FitOptions, FitReport, ModelError};

/// MBG/NBD parameters, in the time unit of the data they were fitted on (same meaning as
/// BG/NBD's: Gamma(r, α) purchase rates, Beta(a, b) dropout probabilities).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MbgNbdParams {
    /// Shape of the Gamma distribution of purchase rates λ.
    pub r: f64,
    /// Scale (in time units) of the Gamma distribution of purchase rates λ.
    pub alpha: f64,
    /// First shape of the Beta distribution of dropout probabilities p.
    pub a: f64,
    /// Second shape of the Beta distribution of dropout probabilities p.
    pub b: f64,
}

impl MbgNbdParams {
    fn as_bg(&self) -> BgNbdParams {
        BgNbdParams {
            r: self.r,
            alpha: self.alpha,
            a: self.a,
            b: self.b,
        }
    }

    /// The BG/NBD parameters whose eq. 10 bracket equals MBG/NBD's (`b + 1`).
    pub(crate) fn shifted(&self) -> BgNbdParams {
        BgNbdParams {
            b: self.b + 1.0,
            ..self.as_bg()
        }
    }

    /// Log-likelihood of one customer.
    pub fn log_likelihood(&self, x: f64, tx: f64, t: f64) -> f64 {
        self.as_bg().log_likelihood_of(Variant::Mbg, x, tx, t)
    }

    /// Probability that a customer with history `(x, t_x, T)` is alive at `T` (any `x`).
    pub fn prob_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        if self.a == 0.0 {
            return 1.0;
        }
        1.0 / (1.0 + self.shifted().ln_odds_dead(x, tx, t).exp())
    }

    /// Expected purchases in `(T, T+t]` if alive (depends on `(t, x, T)` only).
    pub fn expected_purchases_if_alive(&self, t: f64, x: f64, big_t: f64) -> f64 {
        self.shifted().expected_purchases_if_alive(t, x, big_t)
    }

    /// [`expected_purchases_if_alive`](Self::expected_purchases_if_alive) at several
    /// ascending horizons (see [`BgNbdParams::expected_purchases_if_alive_many`]).
    pub fn expected_purchases_if_alive_many(
        &self,
        ts: &[f64],
        x: f64,
        big_t: f64,
        out: &mut [f64],
    ) {
        self.shifted()
            .expected_purchases_if_alive_many(ts, x, big_t, out)
    }

    /// Expected purchases in `(T, T+t]` of a customer with history `(x, t_x, T)`.
    pub fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> f64 {
        self.expected_purchases_if_alive(t, x, big_t) * self.prob_alive(x, tx, big_t)
    }
}

/// Fits MBG/NBD by maximum likelihood; inputs and errors as [`super::fit_bgnbd`].
pub fn fit_mbgnbd(
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    opts: &FitOptions,
) -> Result<FitReport<MbgNbdParams>, ModelError> {
    fit_mbgnbd_on(frequency, recency, t, None, opts)
}

/// [`fit_mbgnbd`], with the customers' distinct `(x, t_x, T)` rows when the caller has them.
pub(crate) fn fit_mbgnbd_on(
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    rows: Option<&super::distinct::Distinct<3>>,
    opts: &FitOptions,
) -> Result<FitReport<MbgNbdParams>, ModelError> {
    Ok(
        super::bgnbd::fit_variant_on(frequency, recency, t, rows, opts, Variant::Mbg)?.map(|p| {
            MbgNbdParams {
                r: p.r,
                alpha: p.alpha,
                a: p.a,
                b: p.b,
            }
        }),
    )
}

#[cfg(test)]
mod tests;
