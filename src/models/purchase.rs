//! The fitted purchase model, whichever it is, behind one scoring interface.
//!
//! Every model here factors the conditional expectation the same way:
//! `E[Y(t) | x, t_x, T] = P(alive | x, t_x, T) · E[Y(t) | alive, x, T]`, and the second factor
//! does not depend on `t_x`. The batch functions of [`super::clv`] use that to evaluate the
//! expensive factor once per distinct `(x, T)`.

use super::bgnbd::Variant;
use super::{BgNbdParams, FitOptions, Limit, MbgNbdParams, ParetoNbdParams};

/// The purchase (transaction-count) models custval fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// BG/NBD (Fader, Hardie & Lee 2005).
    BgNbd,
    /// MBG/NBD (Batislam, Denizel & Filiztekin 2007).
    MbgNbd,
    /// Pareto/NBD (Schmittlein, Morrison & Colombo 1987).
    #[serde(rename = "pareto_nbd")]
    ParetoNbd,
}

impl ModelKind {
    /// Every kind, in the order `model_fit` lists them.
    pub const ALL: [ModelKind; 3] = [ModelKind::BgNbd, ModelKind::MbgNbd, ModelKind::ParetoNbd];

    /// The name used in job files and in the `model` column of `model_fit`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::BgNbd => "bgnbd",
            ModelKind::MbgNbd => "mbgnbd",
            ModelKind::ParetoNbd => "pareto_nbd",
        }
    }

    /// Number of free parameters (for AIC and BIC).
    pub fn parameters(self) -> usize {
        match self {
            ModelKind::BgNbd | ModelKind::MbgNbd | ModelKind::ParetoNbd => 4,
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the CLV arithmetic needs from a purchase model.
pub trait PurchaseScore: Sync {
    /// P(alive at T | x, t_x, T).
    fn prob_alive(&self, x: f64, tx: f64, big_t: f64) -> f64;
    /// Expected purchases in `(T, T+t]` if alive; depends on `(t, x, T)` only.
    fn expected_purchases_if_alive(&self, t: f64, x: f64, big_t: f64) -> f64;
    /// [`Self::expected_purchases_if_alive`] at each of the ascending horizons `ts`, into `out`.
    fn expected_purchases_if_alive_many(&self, ts: &[f64], x: f64, big_t: f64, out: &mut [f64]) {
        for (o, &t) in out.iter_mut().zip(ts) {
            *o = self.expected_purchases_if_alive(t, x, big_t);
        }
    }
    /// The weight that turns [`Self::expected_purchases_if_alive`] into the conditional
    /// expectation (P(alive), or 1 where the model says the customer is alive for sure).
    fn alive_weight(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        self.prob_alive(x, tx, big_t)
    }
    /// `(prob_alive, alive_weight)` at once (a type that overrides [`Self::alive_weight`]
    /// overrides this too).
    fn prob_alive_and_weight(&self, x: f64, tx: f64, big_t: f64) -> (f64, f64) {
        let p = self.prob_alive(x, tx, big_t);
        (p, p)
    }
    /// Expected purchases in `(T, T+t]` of a customer with history `(x, t_x, T)`.
    fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> f64 {
        self.expected_purchases_if_alive(t, x, big_t) * self.alive_weight(x, tx, big_t)
    }
}

impl PurchaseScore for BgNbdParams {
    fn prob_alive(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        BgNbdParams::prob_alive(self, x, tx, big_t)
    }
    fn expected_purchases_if_alive(&self, t: f64, x: f64, big_t: f64) -> f64 {
        BgNbdParams::expected_purchases_if_alive(self, t, x, big_t)
    }
    fn expected_purchases_if_alive_many(&self, ts: &[f64], x: f64, big_t: f64, out: &mut [f64]) {
        BgNbdParams::expected_purchases_if_alive_many(self, ts, x, big_t, out)
    }
    fn alive_weight(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        BgNbdParams::alive_weight(self, x, tx, big_t)
    }
    fn prob_alive_and_weight(&self, x: f64, tx: f64, big_t: f64) -> (f64, f64) {
        // Equal for BG/NBD (both are 1 at x = 0 or a = 0, the same logistic otherwise).
        let p = BgNbdParams::prob_alive(self, x, tx, big_t);
        (p, p)
    }
}

impl PurchaseScore for MbgNbdParams {
    fn prob_alive(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        MbgNbdParams::prob_alive(self, x, tx, big_t)
    }
    fn expected_purchases_if_alive(&self, t: f64, x: f64, big_t: f64) -> f64 {
        MbgNbdParams::expected_purchases_if_alive(self, t, x, big_t)
    }
    fn expected_purchases_if_alive_many(&self, ts: &[f64], x: f64, big_t: f64, out: &mut [f64]) {
        MbgNbdParams::expected_purchases_if_alive_many(self, ts, x, big_t, out)
    }
}

impl PurchaseScore for ParetoNbdParams {
    fn prob_alive(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        ParetoNbdParams::prob_alive(self, x, tx, big_t)
    }
    fn expected_purchases_if_alive(&self, t: f64, x: f64, big_t: f64) -> f64 {
        ParetoNbdParams::expected_purchases_if_alive(self, t, x, big_t)
    }
}

/// A fitted purchase model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PurchaseModel {
    /// A fitted BG/NBD model.
    BgNbd(BgNbdParams),
    /// A fitted MBG/NBD model.
    MbgNbd(MbgNbdParams),
    /// A fitted Pareto/NBD model.
    ParetoNbd(ParetoNbdParams),
}

impl PurchaseModel {
    /// The asymptotic covariance of the log-parameters ([`super::FitReport::covariance`]) of
    /// this model, fitted to these customers with `opts` and converged at `limit`, computed
    /// apart from the fit: `auto` computes it for its chosen candidate only (a numerical
    /// Hessian costs twice as many passes over the customers as the model has parameters).
    pub fn covariance(
        &self,
        limit: Option<Limit>,
        frequency: &[f64],
        recency: &[f64],
        t: &[f64],
        opts: &FitOptions,
    ) -> Option<Vec<f64>> {
        let (f, r) = (frequency, recency);
        match *self {
            PurchaseModel::BgNbd(p) => {
                super::bgnbd::covariance_of(f, r, t, &p, limit, opts, Variant::Bg)
            }
            PurchaseModel::MbgNbd(p) => {
                let p = BgNbdParams {
                    r: p.r,
                    alpha: p.alpha,
                    a: p.a,
                    b: p.b,
                };
                super::bgnbd::covariance_of(f, r, t, &p, limit, opts, Variant::Mbg)
            }
            PurchaseModel::ParetoNbd(p) => {
                super::pareto_nbd::covariance_of(f, r, t, &p, limit, opts)
            }
        }
    }

    /// Which model this is.
    pub fn kind(&self) -> ModelKind {
        match self {
            PurchaseModel::BgNbd(_) => ModelKind::BgNbd,
            PurchaseModel::MbgNbd(_) => ModelKind::MbgNbd,
            PurchaseModel::ParetoNbd(_) => ModelKind::ParetoNbd,
        }
    }

    /// Named parameters for `model_fit`. A parameter the fit does not identify (`b` at the
    /// no-dropout boundary `a = 0`; `a` and `b` at the homogeneous-dropout boundary) is `None`.
    pub fn params(&self) -> Vec<(&'static str, Option<f64>)> {
        let four = |r: f64, alpha: f64, a: f64, b: f64| {
            let homogeneous = a + b >= super::bgnbd::HOMOGENEOUS_AB;
            vec![
                ("r", Some(r)),
                ("alpha", Some(alpha)),
                ("a", (!homogeneous).then_some(a)),
                ("b", (a > 0.0 && !homogeneous).then_some(b)),
            ]
        };
        match *self {
            PurchaseModel::BgNbd(p) => four(p.r, p.alpha, p.a, p.b),
            PurchaseModel::MbgNbd(p) => four(p.r, p.alpha, p.a, p.b),
            PurchaseModel::ParetoNbd(p) => vec![
                ("r", Some(p.r)),
                ("alpha", Some(p.alpha)),
                ("s", Some(p.s)),
                ("beta", (p.s > 0.0).then_some(p.beta)),
            ],
        }
    }
}

/// P(alive) of the customers sharing one `x`, split into what depends on `x` only and what
/// depends on `t_x` and `T` (see [`PurchaseModel::alive_terms`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AliveTerms {
    /// P(alive) = 1 whatever `t_x` and `T`.
    Certain,
    /// P(alive) = 1 / (1 + exp(c0 + rx · ln((α+T)/(α+t_x)))).
    Odds {
        /// The part of the log-odds of having dropped out that depends on `x` only.
        c0: f64,
        /// `r + x`.
        rx: f64,
        /// `α`.
        alpha: f64,
    },
    /// No such split: call [`PurchaseScore::prob_alive`].
    Other,
}

impl PurchaseModel {
    /// Whether P(alive) is 1 for every customer with `x` repeat purchases: BG/NBD's `x = 0`
    /// and the no-dropout limit `a = 0` of BG/NBD and MBG/NBD ([`AliveTerms::Certain`]).
    pub(crate) fn alive_for_sure(&self, x: f64) -> bool {
        match *self {
            PurchaseModel::BgNbd(p) => x <= 0.0 || p.a == 0.0,
            PurchaseModel::MbgNbd(p) => p.a == 0.0,
            PurchaseModel::ParetoNbd(_) => false,
        }
    }

    /// The BG/NBD parameters whose expected purchases if alive are this model's (MBG/NBD's
    /// with `b + 1`); `None` for Pareto/NBD.
    pub(crate) fn expectation_bg(&self) -> Option<BgNbdParams> {
        match *self {
            PurchaseModel::BgNbd(p) => Some(p),
            PurchaseModel::MbgNbd(p) => Some(p.shifted()),
            PurchaseModel::ParetoNbd(_) => None,
        }
    }

    /// The split of P(alive) for customers with `x` repeat purchases: BG/NBD and MBG/NBD have
    /// log-odds of dropout `c0(x) + (r+x) ln((α+T)/(α+t_x))`, which lets P(alive) of many
    /// `(t_x, T)` be computed from a table of `ln(α + t)`.
    pub(crate) fn alive_terms(&self, x: f64) -> AliveTerms {
        if self.alive_for_sure(x) {
            return AliveTerms::Certain;
        }
        match *self {
            PurchaseModel::BgNbd(p) => AliveTerms::Odds {
                c0: p.a.ln() - (p.b + x - 1.0).ln(),
                rx: p.r + x,
                alpha: p.alpha,
            },
            // MBG/NBD is BG/NBD with b + 1 and no x = 0 exception.
            PurchaseModel::MbgNbd(p) => AliveTerms::Odds {
                c0: p.a.ln() - (p.b + x).ln(),
                rx: p.r + x,
                alpha: p.alpha,
            },
            PurchaseModel::ParetoNbd(_) => AliveTerms::Other,
        }
    }
}

impl PurchaseScore for PurchaseModel {
    fn prob_alive(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        match self {
            PurchaseModel::BgNbd(p) => PurchaseScore::prob_alive(p, x, tx, big_t),
            PurchaseModel::MbgNbd(p) => PurchaseScore::prob_alive(p, x, tx, big_t),
            PurchaseModel::ParetoNbd(p) => PurchaseScore::prob_alive(p, x, tx, big_t),
        }
    }
    fn expected_purchases_if_alive(&self, t: f64, x: f64, big_t: f64) -> f64 {
        match self {
            PurchaseModel::BgNbd(p) => PurchaseScore::expected_purchases_if_alive(p, t, x, big_t),
            PurchaseModel::MbgNbd(p) => PurchaseScore::expected_purchases_if_alive(p, t, x, big_t),
            PurchaseModel::ParetoNbd(p) => {
                PurchaseScore::expected_purchases_if_alive(p, t, x, big_t)
            }
        }
    }
    fn expected_purchases_if_alive_many(&self, ts: &[f64], x: f64, big_t: f64, out: &mut [f64]) {
        match self {
            PurchaseModel::BgNbd(p) => p.expected_purchases_if_alive_many(ts, x, big_t, out),
            PurchaseModel::MbgNbd(p) => p.expected_purchases_if_alive_many(ts, x, big_t, out),
            PurchaseModel::ParetoNbd(p) => {
                PurchaseScore::expected_purchases_if_alive_many(p, ts, x, big_t, out)
            }
        }
    }
    fn alive_weight(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        match self {
            PurchaseModel::BgNbd(p) => PurchaseScore::alive_weight(p, x, tx, big_t),
            PurchaseModel::MbgNbd(p) => PurchaseScore::alive_weight(p, x, tx, big_t),
            PurchaseModel::ParetoNbd(p) => PurchaseScore::alive_weight(p, x, tx, big_t),
        }
    }
    fn prob_alive_and_weight(&self, x: f64, tx: f64, big_t: f64) -> (f64, f64) {
        match self {
            PurchaseModel::BgNbd(p) => PurchaseScore::prob_alive_and_weight(p, x, tx, big_t),
            PurchaseModel::MbgNbd(p) => PurchaseScore::prob_alive_and_weight(p, x, tx, big_t),
            PurchaseModel::ParetoNbd(p) => PurchaseScore::prob_alive_and_weight(p, x, tx, big_t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{fit_bgnbd, fit_mbgnbd, fit_pareto_nbd, testdata, FitReport};

    /// The covariance computed apart from the fit ([`PurchaseModel::covariance`], what `auto`
    /// does for its chosen candidate) equals the one the fit computes itself, at an interior
    /// optimum and at each limit (its point differs from the optimiser's only by rounding
    /// through the reported parameters).
    #[test]
    fn covariance_apart_equals_the_fits_own() {
        let (sx, stx, st) = testdata::synthetic_rfm();
        let no_dropout = testdata::simulate_bgnbd(
            20_000,
            &BgNbdParams {
                r: 0.7,
                alpha: 30.0,
                a: 0.0,
                b: 1.0,
            },
            730.0,
            5,
        );
        let same_dropout = testdata::simulate_bgnbd(
            5_000,
            &BgNbdParams {
                r: 0.8,
                alpha: 25.0,
                a: 0.2e8,
                b: 0.8e8,
            },
            365.0,
            21,
        );
        let with = FitOptions::default();
        let without = FitOptions::default().with_covariance(false);
        type Fit = fn(&[f64], &[f64], &[f64], &FitOptions) -> FitReport<PurchaseModel>;
        let bg: Fit = |x, tx, t, o| fit_bgnbd(x, tx, t, o).unwrap().map(PurchaseModel::BgNbd);
        let mbg: Fit = |x, tx, t, o| fit_mbgnbd(x, tx, t, o).unwrap().map(PurchaseModel::MbgNbd);
        let pareto: Fit = |x, tx, t, o| {
            fit_pareto_nbd(x, tx, t, o)
                .unwrap()
                .map(PurchaseModel::ParetoNbd)
        };
        let synthetic = (&sx[..], &stx[..], &st[..]);
        let nd = (&no_dropout.0[..], &no_dropout.1[..], &no_dropout.2[..]);
        let sd = (
            &same_dropout.0[..],
            &same_dropout.1[..],
            &same_dropout.2[..],
        );
        for (name, fit, (x, tx, t), limit) in [
            ("bgnbd", bg, synthetic, None),
            ("mbgnbd", mbg, synthetic, None),
            ("pareto_nbd", pareto, synthetic, None),
            ("bgnbd", bg, nd, Some(Limit::NoDropout)),
            ("pareto_nbd", pareto, nd, Some(Limit::NoDropout)),
            ("bgnbd", bg, sd, Some(Limit::SameDropout)),
        ] {
            let own = fit(x, tx, t, &with);
            let bare = fit(x, tx, t, &without);
            assert_eq!(own.limit, limit, "{name}: {own:?}");
            assert_eq!(bare.params, own.params, "{name}");
            assert!(bare.covariance.is_none(), "{name}");
            let want = own.covariance.clone().expect("the fit's covariance");
            let got = bare
                .params
                .covariance(bare.limit, x, tx, t, &without)
                .expect("covariance apart");
            let scale = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6 * scale,
                    "{name} {limit:?} [{k}]: {got:?} vs {want:?}"
                );
            }
        }
    }
}
