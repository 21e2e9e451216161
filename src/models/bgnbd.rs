//! BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to
//! the Pareto/NBD Model", Marketing Science 24(2), 275-284. Equation numbers below are the
//! paper's.
//!
//! While alive, a customer buys at Poisson rate `λ ~ Gamma(r, α)`; after each purchase they drop
//! out with probability `p ~ Beta(a, b)`.
//!
//! # Fitting
//!
//! * **Likelihood (eq. 6)** in log space: `ln L = A₁ + A₂ + ln(e^{A₃} + δ_{x>0} e^{A₄})` with a
//!   log-sum-exp, because `e^{A₃}` alone underflows to 0 for x in the thousands (an issue in
//!   `lifetimes`' tracker). The Γ/B terms depend on `x` only and are computed once per distinct
//!   frequency per evaluation.
//! * **Gradient**: analytic, w.r.t. `ln r, ln α, ln a, ln b` (digamma for the Γ terms, the
//!   log-sum-exp weights for the dropout term).
//! * **Parameters** are optimised as logarithms, so they stay > 0 without bounds.
//! * **Time is rescaled** so that `max T = 1` during the fit, exactly as `lifetimes` 0.11.3
//!   does (`_scale_time`): it makes `α` of order 1 whatever the time unit, which conditions the
//!   problem, and it makes `penalizer_coef` mean the same thing as in `lifetimes` (the penalty
//!   `c·(r² + α² + a² + b²)` sees the rescaled `α`). Reported `α` and log-likelihood are in the
//!   caller's unit.
//! * **Starting values** are `lifetimes`' (`e^0.1` for each rescaled parameter), so that on flat
//!   or multi-modal likelihoods both land in the same basin.
//! * **Identical customers** (same `x, t_x, T` bit patterns) are collapsed into weighted rows.

use super::distinct::{distinct, shared_index, Distinct};

use rayon::prelude::*;

use super::optimize::{
    covariance, hessian, minimize_bfgs, minimize_bfgs_then_newton, minimize_warm, Minimum, Ridges,
};
use super::special::{
    digamma, digamma_diff, ln_gamma, sum_power_series_multi, sum_series, MAX_MULTI,
};
use super::{
    check_purchase_inputs, loglik_at, no_dropout_covariance, penalized_mean, stalled_at_precision,
    warm_note, FitOptions, FitReport, Limit, ModelError, LOG_PARAM_LIMIT, PAR_CHUNK,
};

/// Which of the two Beta-geometric dropout models the shared likelihood code computes.
///
/// BG/NBD lets a customer drop out only right after a *repeat* purchase (so a customer with no
/// repeat purchase is alive for sure); MBG/NBD (Batislam, Denizel & Filiztekin 2007) also after
/// the first one. In the formulas MBG/NBD is BG/NBD with `b + x − 1` replaced by `b + x`, the
/// Beta function `B(a, b+x)` by `B(a, b+x+1)`, and the dropout term present for `x = 0` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Bg,
    Mbg,
}

impl Variant {
    /// `0` for BG/NBD, `1` for MBG/NBD: added to `b` in the `x`-dependent terms.
    fn shift(self) -> f64 {
        match self {
            Variant::Bg => 0.0,
            Variant::Mbg => 1.0,
        }
    }

    /// Whether a customer with `x` repeat purchases may have dropped out.
    fn can_drop(self, x: f64) -> bool {
        x > 0.0 || self == Variant::Mbg
    }
}

/// Below this dropout share `a/(a+b)` a fit is tested against its no-dropout limit (NBD).
pub(crate) const NO_DROPOUT_SHARE: f64 = 1e-6;

/// A fit at a dropout share below [`NO_DROPOUT_SHARE`] whose log-likelihood exceeds the NBD
/// limit's by less than this (in log-likelihood units, far below the 1.92 of a 5 % likelihood
/// ratio test) is reported as the boundary solution `a = 0`.
pub(crate) const BOUNDARY_LL_GAP: f64 = 0.5;

/// `a + b` from which the Beta dropout distribution counts as a point mass at `p = a/(a+b)`
/// (every customer has the same dropout probability): fits running past it along the ridge
/// `a/(a+b) = p` are tested against that limit, and scoring switches to its closed forms.
pub(crate) const HOMOGENEOUS_AB: f64 = 1e6;

/// Iterations after which a fit still running along a ridge is tested against its limits.
const RIDGE_CHECK_ITER: usize = 100;

/// `a + b` of the parameters that represent the homogeneous-dropout limit.
const HOMOGENEOUS_K: f64 = 1e12;

/// BG/NBD parameters, in the time unit of the data they were fitted on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdParams {
    /// Shape of the Gamma purchase-rate heterogeneity.
    pub r: f64,
    /// Scale (in time units) of the Gamma purchase-rate heterogeneity.
    pub alpha: f64,
    /// Beta dropout heterogeneity, first shape.
    pub a: f64,
    /// Beta dropout heterogeneity, second shape.
    pub b: f64,
}

impl BgNbdParams {
    /// Log-likelihood of one customer (eq. 6, log form of Hardie's note 004 / section 7).
    pub fn log_likelihood(&self, x: f64, tx: f64, t: f64) -> f64 {
        self.log_likelihood_of(Variant::Bg, x, tx, t)
    }

    /// Log-likelihood of one customer under `variant`.
    pub(crate) fn log_likelihood_of(&self, variant: Variant, x: f64, tx: f64, t: f64) -> f64 {
        let Self { r, alpha, a, .. } = *self;
        let ft = FreqTerms::new(self, x, variant);
        let (lse, _, _) = dropout_lse(r, alpha, a, x, tx, t, ft.ln_b_x_1, variant.can_drop(x));
        ft.c + r * alpha.ln() + lse
    }

    /// Probability that a customer with history `(x, t_x, T)` is still alive at `T`
    /// (Fader, Hardie & Lee 2008, note 021, eq. 1):
    /// `1 / (1 + δ_{x>0} · a/(b+x−1) · ((α+T)/(α+t_x))^{r+x})`.
    ///
    /// Computed as the logistic of the log of the second term, so a huge ratio gives 0, not NaN.
    pub fn prob_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        if x <= 0.0 || self.a == 0.0 {
            return 1.0;
        }
        1.0 / (1.0 + self.ln_odds_dead(x, tx, t).exp())
    }

    /// `ln( a/(b+x−1) · ((α+T)/(α+t_x))^{r+x} )` for `x > 0`.
    pub(crate) fn ln_odds_dead(&self, x: f64, tx: f64, t: f64) -> f64 {
        let Self { r, alpha, a, b } = *self;
        a.ln() - (b + x - 1.0).ln() + (r + x) * ((t - tx) / (alpha + tx)).ln_1p()
    }

    /// Expected repeat purchases in `(T, T + t]` of a customer with history `(x, t_x, T)`
    /// (eq. 10):
    ///
    /// `E = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^{r+x} ₂F₁(r+x, b+x; a+b+x−1; z)]
    ///      / (1 + δ_{x>0} a/(b+x−1) ((α+T)/(α+t_x))^{r+x})`, `z = t/(α+T+t)`.
    ///
    /// Numerics. With Euler's transformation `₂F₁(A,B;C;z) = (1−z)^{C−A−B} ₂F₁(C−A,C−B;C;z)`
    /// the bracket's product becomes `(1−z)^{a−1} · F(a+b−1−r, a−1; a+b+x−1; z)`: the large
    /// `r+x`, `b+x` leave the numerator parameters, so the series needs a handful of terms for
    /// large `x` (the direct series needs ~`x·z/(1−z)` and overflows; `lifetimes` then takes
    /// `ln` of it and of a possibly negative value, giving NaN). Writing `F = 1 + (a−1)·U`, the
    /// bracket over `(a−1)` is `−expm1((a−1)ln(1−z) + ln1p((a−1)U)) / (a−1)`, accurate even for
    /// `a → 1` (limit `−ln(1−z) − U`) and when `t → 0`; if `F <= 0` (possible when
    /// `a+b+x−1 < 0`) the bracket is computed directly, which has no cancellation there. The
    /// denominator is applied as a logistic, like [`prob_alive`](Self::prob_alive).
    pub fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> f64 {
        self.expected_purchases_if_alive(t, x, big_t) * self.alive_weight(x, tx, big_t)
    }

    /// The part of eq. 10 that depends on `(t, x, T)` only, not on `t_x`: expected purchases in
    /// `(T, T + t]` before weighting by the probability of being alive. Customers sharing
    /// `(x, T)` share it, which the batch functions use to compute it once per distinct pair.
    pub fn expected_purchases_if_alive(&self, t: f64, x: f64, big_t: f64) -> f64 {
        let Self { r, alpha, a, b } = *self;
        if t <= 0.0 {
            return 0.0;
        }
        if a == 0.0 {
            // No dropout (the NBD limit): E = (r + x) t / (α + T).
            return (r + x) * t / (alpha + big_t);
        }
        if a + b >= HOMOGENEOUS_AB {
            // Every customer drops out with the same p = a/(a+b) after each purchase. Given λ,
            // purchases in a window of length t number (1 − e^{−λpt})/p on average, and
            // λ | alive ~ Gamma(r+x, α+T): E = [1 − ((α+T)/(α+T+pt))^{r+x}] / p.
            let p = a / (a + b);
            return -(-(r + x) * (p * t / (alpha + big_t)).ln_1p()).exp_m1() / p;
        }
        let z = t / (alpha + big_t + t);
        let (big_a, big_b, big_c) = self.euler_abc(x);
        // U = Σ_{n≥1} (A)_n (B+1)_{n−1} / ((C)_n n!) zⁿ, so that F = 1 + B·U.
        let u = sum_series(big_a * z / big_c, 1, z, |n| {
            (big_a + n) * (big_b + n) / ((big_c + n) * (n + 1.0)) * z
        });
        self.expected_from_series(t, big_t, x, u)
    }

    /// `(C−A, C−B, C)` of the Euler-transformed series of
    /// [`expected_purchases_if_alive`](Self::expected_purchases_if_alive).
    fn euler_abc(&self, x: f64) -> (f64, f64, f64) {
        let Self { r, a, b, .. } = *self;
        (a + b - 1.0 - r, a - 1.0, a + b + x - 1.0)
    }

    /// Expected purchases if alive over `t` from the series sum `U` at `z = t/(α+T+t)`.
    fn expected_from_series(&self, t: f64, big_t: f64, x: f64, u: f64) -> f64 {
        let (_, big_b, big_c) = self.euler_abc(x);
        let ln_1mz = -(t / (self.alpha + big_t)).ln_1p();
        let bracket_over_b = if big_b == 0.0 {
            -(ln_1mz + u)
        } else if 1.0 + big_b * u > 0.0 {
            -(big_b * ln_1mz + (big_b * u).ln_1p()).exp_m1() / big_b
        } else {
            (1.0 - (big_b * ln_1mz).exp() * (1.0 + big_b * u)) / big_b
        };
        big_c * bracket_over_b
    }

    /// [`expected_purchases_if_alive`](Self::expected_purchases_if_alive) at several
    /// horizons `ts` (ascending, at most 64) for one `(x, T)`: the series for all
    /// horizons share their coefficients, so this costs little more than the longest one.
    pub fn expected_purchases_if_alive_many(
        &self,
        ts: &[f64],
        x: f64,
        big_t: f64,
        out: &mut [f64],
    ) {
        let Self { alpha, a, b, .. } = *self;
        if a == 0.0
            || a + b >= HOMOGENEOUS_AB
            || ts.len() > MAX_MULTI
            || ts.iter().any(|&t| t <= 0.0)
        {
            for (o, &t) in out.iter_mut().zip(ts) {
                *o = self.expected_purchases_if_alive(t, x, big_t);
            }
            return;
        }
        let (big_a, big_b, big_c) = self.euler_abc(x);
        let mut zs = [0.0; MAX_MULTI];
        for (z, &t) in zs.iter_mut().zip(ts) {
            *z = t / (alpha + big_t + t);
        }
        sum_power_series_multi(
            big_a / big_c,
            1,
            &zs[..ts.len()],
            |n| (big_a + n) * (big_b + n) / ((big_c + n) * (n + 1.0)),
            out,
        );
        for (o, &t) in out.iter_mut().zip(ts) {
            *o = self.expected_from_series(t, big_t, x, *o);
        }
    }

    /// Whether [`Self::expected_purchases_if_alive_from_powers`] applies: the series case
    /// (`a > 0`, `a + b` below the homogeneous limit) with `|a − 1| ≥` [`POWERS_MIN_B`].
    /// Nearer to `a = 1` (`B = a − 1 → 0`) its `(1 − P)/B` cancels too much; the logarithmic
    /// form is used there.
    pub(crate) fn powers_apply(&self) -> bool {
        let Self { r, alpha, a, b } = *self;
        [r, alpha, a, b].iter().all(|v| v.is_finite())
            && a > 0.0
            && a + b < HOMOGENEOUS_AB
            && (a - 1.0).abs() >= POWERS_MIN_B
    }

    /// [`Self::expected_purchases_if_alive_many`] from powers the caller tabulated (the
    /// interval draws share them across customers): `q_t = (α+T)^B` and, for each horizon `t`
    /// of `ts`, `q_inv = (α+T+t)^−B` and `inv = 1/(α+T+t)`, with `B = a − 1`. Then
    /// `(1 − z)^B = q_t · q_inv` and `z = t · inv`, and the bracket `1 − (1−z)^B (1 + B U)` is
    /// `(1 − P) − P·B·U`: no logarithm or exponential per horizon. Only where
    /// [`Self::powers_apply`]; `ts` positive, at most [`MAX_MULTI`].
    pub(crate) fn expected_purchases_if_alive_from_powers(
        &self,
        ts: &[f64],
        x: f64,
        q_t: f64,
        q_inv: &[f64],
        inv: &[f64],
        out: &mut [f64],
    ) {
        debug_assert!(self.powers_apply() && ts.len() <= MAX_MULTI);
        let (big_a, big_b, big_c) = self.euler_abc(x);
        let mut zs = [0.0; MAX_MULTI];
        for ((z, &t), &v) in zs.iter_mut().zip(ts).zip(inv) {
            *z = t * v;
        }
        sum_power_series_multi(
            big_a / big_c,
            1,
            &zs[..ts.len()],
            |n| (big_a + n) * (big_b + n) / ((big_c + n) * (n + 1.0)),
            out,
        );
        let c_over_b = big_c / big_b;
        for (o, &qi) in out.iter_mut().zip(q_inv) {
            let p = q_t * qi;
            *o = c_over_b * ((1.0 - p) - p * big_b * *o);
        }
    }

    /// The denominator of eq. 10 as a weight in [0, 1]: P(alive) for `x > 0`, 1 for `x = 0`.
    pub fn alive_weight(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        if x > 0.0 && self.a > 0.0 {
            1.0 / (1.0 + self.ln_odds_dead(x, tx, big_t).exp())
        } else {
            1.0
        }
    }

    /// Expected repeat purchases in `(0, t]` of a new customer (eq. 9). Equal to
    /// [`conditional_expected_purchases`](Self::conditional_expected_purchases) with
    /// `x = t_x = T = 0`, which is how it is computed.
    pub fn expected_purchases_new(&self, t: f64) -> f64 {
        self.conditional_expected_purchases(t, 0.0, 0.0, 0.0)
    }
}

/// The smallest `|B| = |a − 1|` at which the expectations come from tabulated powers
/// ([`BgNbdParams::powers_apply`]). Their `1 − P`, `P = (α+T)^B (α+T+t)^{−B}` near 1, keeps
/// the powers' absolute error of a few ulp, so the expectation's relative error grows like
/// `5e-14/|B|` against the logarithmic form: measured at most 6.3e-12 at `|B| = 0.01` and
/// 2.6e-12 at 0.05 over five parameter sets (CDNOW's, and r 0.3–2, α 0.4–100, b 1–40, each
/// with `a` moved near 1), x up to 300, T up to 911 and month ends up to a year, far below
/// the interval draws' own Monte Carlo spread. (The rule
/// was `|B| ≥ 1/4` until session 26, which sent CDNOW-like fits, `a` ≈ 0.8, to `ln_1p` and
/// `exp_m1` per draw and month end.)
pub(crate) const POWERS_MIN_B: f64 = 1.0 / 64.0;

/// Terms of eq. 6 that depend on `x` only (and their derivatives).
struct FreqTerms {
    /// `ln Γ(r+x) − ln Γ(r) + ln B(a, b+x) − ln B(a, b)` (MBG/NBD: `B(a, b+x+1)`)
    c: f64,
    /// `ln(b+x−1)` (MBG/NBD: `ln(b+x)`; unused when the customer cannot have dropped out)
    ln_b_x_1: f64,
    /// `∂c/∂r, ∂c/∂a, ∂c/∂b`
    dr: f64,
    da: f64,
    db: f64,
}

impl FreqTerms {
    fn new(p: &BgNbdParams, x: f64, variant: Variant) -> Self {
        let BgNbdParams { r, a, b, .. } = *p;
        let xs = x + variant.shift();
        let c = ln_gamma(r + x) - ln_gamma(r) + ln_gamma(a + b) + ln_gamma(b + xs)
            - ln_gamma(b)
            - ln_gamma(a + b + xs);
        let (psi_ab, psi_abx) = (digamma(a + b), digamma(a + b + xs));
        FreqTerms {
            c,
            ln_b_x_1: if variant.can_drop(x) {
                (b + xs - 1.0).ln()
            } else {
                0.0
            },
            dr: digamma(r + x) - digamma(r),
            da: psi_ab - psi_abx,
            db: psi_ab + digamma(b + xs) - digamma(b) - psi_abx,
        }
    }
}

/// `ln(e^{A₃} + δ e^{A₄})` and the softmax weights `(w₃, w₄)` of eq. 6, where
/// `A₃ = −(r+x) ln(α+T)`, `A₄ = ln a − ln(b+x−1) − (r+x) ln(α+t_x)`.
#[inline]
#[allow(clippy::too_many_arguments)]
fn dropout_lse(
    r: f64,
    alpha: f64,
    a: f64,
    x: f64,
    tx: f64,
    t: f64,
    ln_b_x_1: f64,
    can_drop: bool,
) -> (f64, f64, f64) {
    let a3 = -(r + x) * (alpha + t).ln();
    if !can_drop {
        return (a3, 1.0, 0.0);
    }
    let a4 = a.ln() - ln_b_x_1 - (r + x) * (alpha + tx).ln();
    if a4 == f64::NEG_INFINITY {
        return (a3, 1.0, 0.0);
    }
    let m = a3.max(a4);
    let (e3, e4) = ((a3 - m).exp(), (a4 - m).exp());
    let s = e3 + e4;
    (m + s.ln(), e3 / s, e4 / s)
}

/// [`dropout_lse`] from precomputed logs, with one `exp` and one `ln_1p`: with `d` the gap
/// between the two exponents, `ln(e^{A₃} + e^{A₄}) = max + ln1p(e^{−|d|})`.
#[inline]
fn dropout_terms(
    ln_a: f64,
    r: f64,
    x: f64,
    ln_t: f64,
    ln_tx: f64,
    ln_b_x_1: f64,
    can_drop: bool,
) -> (f64, f64, f64) {
    let a3 = -(r + x) * ln_t;
    if !can_drop {
        return (a3, 1.0, 0.0);
    }
    let a4 = ln_a - ln_b_x_1 - (r + x) * ln_tx;
    if a4 == f64::NEG_INFINITY {
        return (a3, 1.0, 0.0);
    }
    let e = (-(a4 - a3).abs()).exp();
    let s = 1.0 + e;
    if a3 >= a4 {
        (a3 + e.ln_1p(), 1.0 / s, e / s)
    } else {
        (a4 + e.ln_1p(), e / s, 1.0 / s)
    }
}

/// The mean objective of a fit over `rows`: −ll/W + pen·Σp² as a function of the
/// log-parameters θ (p = e^θ), with its gradient.
fn mean_objective(rows: &Rows, pen: f64) -> impl Fn(&[f64], &mut [f64]) -> f64 + '_ {
    move |theta: &[f64], grad: &mut [f64]| -> f64 {
        let p = from_log(theta);
        let (ll, g) = rows.loglik_grad(&p);
        penalized_mean(
            ll,
            &g,
            &[p.r, p.alpha, p.a, p.b],
            rows.total_weight,
            pen,
            grad,
        )
    }
}

/// The mean objective of the no-dropout limit (NBD, `a = 0`) over `rows`, as a function of
/// `(ln r, ln α)`.
fn nbd_objective(rows: &Rows, pen: f64) -> impl Fn(&[f64], &mut [f64]) -> f64 + '_ {
    move |theta: &[f64], grad: &mut [f64]| -> f64 {
        let (r, alpha) = (theta[0].exp(), theta[1].exp());
        let (ll, g) = rows.nbd_loglik_grad(r, alpha);
        penalized_mean(ll, &g, &[r, alpha], rows.total_weight, pen, grad)
    }
}

/// The mean objective of the same-dropout limit (`a, b → ∞` at `a/(a+b) = p`) over `rows`, as
/// a function of `(ln r, ln α, logit p)`.
fn same_dropout_objective(rows: &Rows, pen: f64) -> impl Fn(&[f64], &mut [f64]) -> f64 + '_ {
    move |theta: &[f64], grad: &mut [f64]| -> f64 {
        let (ll, g) = rows.homogeneous_loglik_grad(theta);
        let natural = [theta[0].exp(), theta[1].exp()];
        let mut f = -ll / rows.total_weight;
        for k in 0..3 {
            grad[k] = -g[k] / rows.total_weight;
        }
        // The penalty sees r and the rescaled α (a and b are infinite at this limit).
        for k in 0..2 {
            grad[k] += 2.0 * pen * natural[k] * natural[k];
            f += pen * natural[k] * natural[k];
        }
        f
    }
}

/// The asymptotic covariance of the log-parameters `(ln r, ln α, ln a, ln b)` of a converged
/// fit over `rows` (times multiplied by `scale`), at the model its parameters are: the interior
/// optimum, or the `limit` it is scored with. At the no-dropout limit only `(ln r, ln α)` are
/// free (zero variance for the rest); at the same-dropout limit the covariance of
/// `(ln r, ln α, logit p)` is embedded as that of `(ln r, ln α, ln a)` with `ln b` fixed: logit
/// p = ln a − ln b exactly, so a draw of `ln a` at the fixed `b` is a draw of logit p. None
/// where a parameter ran off (the Hessian is singular there) or it is not positive definite.
fn covariance_at(
    rows: &Rows,
    pen: f64,
    scale: f64,
    params: &BgNbdParams,
    limit: Option<Limit>,
) -> Option<Vec<f64>> {
    let (ln_r, ln_alpha) = (params.r.ln(), (params.alpha * scale).ln());
    match limit {
        None => {
            let theta = [ln_r, ln_alpha, params.a.ln(), params.b.ln()];
            let mut f = mean_objective(rows, pen);
            covariance(&hessian(&mut f, &theta), 4, rows.total_weight)
        }
        Some(Limit::NoDropout) => no_dropout_covariance(
            &nbd_objective(rows, pen),
            &[ln_r, ln_alpha],
            rows.total_weight,
        ),
        Some(Limit::SameDropout) => {
            let theta = [ln_r, ln_alpha, (params.a / params.b).ln()];
            let mut f = same_dropout_objective(rows, pen);
            let c = covariance(&hessian(&mut f, &theta), 3, rows.total_weight)?;
            let mut full = vec![0.0; 16];
            for i in 0..3 {
                for j in 0..3 {
                    full[i * 4 + j] = c[i * 3 + j];
                }
            }
            Some(full)
        }
        Some(Limit::RanOff) => None,
    }
}

/// [`FitReport::covariance`] of a converged fit made without it ([`FitOptions::covariance`]
/// off), from its parameters and limit and the same customers and options: what `auto`
/// computes for its chosen candidate only.
pub(crate) fn covariance_of(
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    params: &BgNbdParams,
    limit: Option<Limit>,
    opts: &FitOptions,
    variant: Variant,
) -> Option<Vec<f64>> {
    let scale = check_purchase_inputs("BG/NBD", frequency, recency, t, opts).ok()?;
    let rows = Rows::build(frequency, recency, t, scale, variant);
    covariance_at(&rows, opts.penalizer_coef, scale, params, limit)
}

/// Collapsed likelihood rows.
#[derive(Clone)]
struct Rows {
    variant: Variant,
    /// Distinct frequencies and the total weight of each.
    freqs: Vec<f64>,
    freq_weight: Vec<f64>,
    /// Per row: index into `freqs`, t_x, T, weight.
    fi: Vec<u32>,
    tx: Vec<f64>,
    t: Vec<f64>,
    w: Vec<f64>,
    total_weight: f64,
    /// Distinct values of t_x and T (whole days in practice: a few hundred), and each row's
    /// indices into it, so that `ln(α + ·)` is computed once per value per evaluation instead
    /// of twice per row.
    times: Vec<f64>,
    txi: Vec<u32>,
    ti: Vec<u32>,
}

impl Rows {
    /// Customers collapsed to their distinct `(x, t_x, T)` rows (ascending), times multiplied
    /// by `scale`.
    fn build(frequency: &[f64], recency: &[f64], t: &[f64], scale: f64, variant: Variant) -> Rows {
        Rows::from_distinct(&distinct([frequency, recency, t]), scale, variant)
    }

    /// [`Rows::build`] of customers already collapsed to their distinct rows `d`.
    fn from_distinct(d: &Distinct<3>, scale: f64, variant: Variant) -> Rows {
        let n = d.rows.len();
        let mut rows = Rows {
            variant,
            freqs: vec![],
            freq_weight: vec![],
            fi: Vec::with_capacity(n),
            tx: Vec::with_capacity(n),
            t: Vec::with_capacity(n),
            w: Vec::with_capacity(n),
            total_weight: d.counts.iter().map(|&c| f64::from(c)).sum(),
            times: vec![],
            txi: vec![],
            ti: vec![],
        };
        for (&[x, tx, big_t], &count) in d.rows.iter().zip(&d.counts) {
            // Rows come sorted by x: a new x starts a new frequency.
            if rows.freqs.last().map(|f: &f64| f.to_bits()) != Some(x.to_bits()) {
                rows.freqs.push(x);
                rows.freq_weight.push(0.0);
            }
            let f = rows.freqs.len() - 1;
            rows.fi.push(f as u32);
            rows.tx.push(tx * scale);
            rows.t.push(big_t * scale);
            rows.w.push(count as f64);
            rows.freq_weight[f] += count as f64;
        }
        // The distinct times (of t_x and T together) and each row's indices into them.
        let (tx, t): (Vec<f64>, Vec<f64>) = d.rows.iter().map(|r| (r[1], r[2])).unzip();
        let (times, txi, ti) = shared_index(&tx, &t);
        rows.times = times.iter().map(|v| v * scale).collect();
        rows.txi = txi;
        rows.ti = ti;
        rows
    }

    /// The same rows with every time multiplied by `scale` (one collapse serves the fit in
    /// rescaled time and the log-likelihood in the caller's time).
    fn rescaled(&self, scale: f64) -> Rows {
        let mul = |v: &[f64]| v.iter().map(|x| x * scale).collect();
        Rows {
            tx: mul(&self.tx),
            t: mul(&self.t),
            times: mul(&self.times),
            ..self.clone()
        }
    }

    /// Weighted sum of log-likelihoods and of its gradient w.r.t. `(r, α, a, b)` (natural
    /// scale). Rows are summed in fixed chunks in parallel and the chunk totals added in order,
    /// so the result does not depend on the thread count.
    fn loglik_grad(&self, p: &BgNbdParams) -> (f64, [f64; 4]) {
        let BgNbdParams { r, alpha, a, b } = *p;
        let variant = self.variant;
        let terms: Vec<FreqTerms> = self
            .freqs
            .iter()
            .map(|&x| FreqTerms::new(p, x, variant))
            .collect();
        let ln_alpha = alpha.ln();
        // Frequency-only parts.
        let mut ll = 0.0;
        let mut g = [0.0; 4];
        for (ft, &w) in terms.iter().zip(&self.freq_weight) {
            ll += w * (ft.c + r * ln_alpha);
            g[0] += w * (ft.dr + ln_alpha);
            g[1] += w * r / alpha;
            g[2] += w * ft.da;
            g[3] += w * ft.db;
        }
        // Per-value logs and reciprocals of α + t (shared by all rows).
        let ln_at: Vec<f64> = self.times.iter().map(|&v| (alpha + v).ln()).collect();
        let inv_at: Vec<f64> = self.times.iter().map(|&v| 1.0 / (alpha + v)).collect();
        let ln_a = a.ln();
        // Per-row dropout term.
        let n = self.w.len();
        let chunks: Vec<[f64; 5]> = (0..n.div_ceil(PAR_CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut acc = [0.0; 5];
                for i in c * PAR_CHUNK..((c + 1) * PAR_CHUNK).min(n) {
                    let x = self.freqs[self.fi[i] as usize];
                    let ft = &terms[self.fi[i] as usize];
                    let (ti, txi, w) = (self.ti[i] as usize, self.txi[i] as usize, self.w[i]);
                    let (ln_t, ln_tx) = (ln_at[ti], ln_at[txi]);
                    let can_drop = variant.can_drop(x);
                    let (lse, w3, w4) =
                        dropout_terms(ln_a, r, x, ln_t, ln_tx, ft.ln_b_x_1, can_drop);
                    acc[0] += w * lse;
                    if can_drop {
                        acc[1] += w * -(w3 * ln_t + w4 * ln_tx);
                        acc[2] += w * -(r + x) * (w3 * inv_at[ti] + w4 * inv_at[txi]);
                        acc[3] += w * w4 / a;
                        acc[4] += w * -w4 / (b + x - 1.0 + variant.shift());
                    } else {
                        acc[1] += w * -ln_t;
                        acc[2] += w * -(r + x) * inv_at[ti];
                    }
                }
                acc
            })
            .collect();
        for acc in chunks {
            ll += acc[0];
            for k in 0..4 {
                g[k] += acc[k + 1];
            }
        }
        (ll, g)
    }
}

impl Rows {
    /// Weighted log-likelihood of the homogeneous-dropout limit (Beta(a, b) a point mass at
    /// `p`) and its gradient w.r.t. `(ln r, ln α, logit p)`:
    /// `Σ w [ln Γ(r+x) − ln Γ(r) + r ln α + (x+s) ln(1−p)
    ///        + ln((α+T)^{−(r+x)} + δ p/(1−p) (α+t_x)^{−(r+x)})]`, `s` = 0 (BG), 1 (MBG).
    fn homogeneous_loglik_grad(&self, theta: &[f64]) -> (f64, [f64; 3]) {
        let (r, alpha) = (theta[0].exp(), theta[1].exp());
        let p = 1.0 / (1.0 + (-theta[2]).exp());
        let ln_1mp = -theta[2].exp().ln_1p(); // ln(1 − p)
        let ln_odds = theta[2]; // ln(p/(1−p))
        let shift = self.variant.shift();
        let ln_alpha = alpha.ln();
        let mut ll = 0.0;
        let mut g = [0.0; 3];
        for (&x, &w) in self.freqs.iter().zip(&self.freq_weight) {
            ll += w * (ln_gamma(r + x) - ln_gamma(r) + r * ln_alpha + (x + shift) * ln_1mp);
            g[0] += w * r * (digamma(r + x) - digamma(r) + ln_alpha);
            g[1] += w * r;
            g[2] += w * -(x + shift) * p;
        }
        for i in 0..self.w.len() {
            let x = self.freqs[self.fi[i] as usize];
            let w = self.w[i];
            let (ln_t, ln_tx) = ((alpha + self.t[i]).ln(), (alpha + self.tx[i]).ln());
            let (lse, w3, w4) =
                dropout_terms(ln_odds, r, x, ln_t, ln_tx, 0.0, self.variant.can_drop(x));
            ll += w * lse;
            g[0] += w * r * -(w3 * ln_t + w4 * ln_tx);
            g[1] += w * alpha * -(r + x) * (w3 / (alpha + self.t[i]) + w4 / (alpha + self.tx[i]));
            g[2] += w * w4;
        }
        (ll, g)
    }

    /// Per distinct frequency, `Σ wᵢ Rᵢ` over its rows of customers who may have dropped out,
    /// `Rᵢ = ((α+Tᵢ)/(α+t_xᵢ))^{r+xᵢ}`: the weight of the dropout explanation of their silence
    /// since `t_x` ([`Rows::no_dropout_slope`]).
    fn dropout_ratios(&self, r: f64, alpha: f64) -> Vec<f64> {
        let ln_t: Vec<f64> = self.times.iter().map(|&v| (alpha + v).ln()).collect();
        let mut ratios = vec![0.0; self.freqs.len()];
        for (i, &w) in self.w.iter().enumerate() {
            let f = self.fi[i] as usize;
            let x = self.freqs[f];
            if self.variant.can_drop(x) {
                let gap = ln_t[self.ti[i] as usize] - ln_t[self.txi[i] as usize];
                ratios[f] += w * ((r + x) * gap).exp();
            }
        }
        ratios
    }

    /// The derivative in `a` of the log-likelihood at the no-dropout boundary `a = 0` (where it
    /// does not depend on `b`), at `b`, as its positive and negative parts:
    /// `D(b) = Σᵢ wᵢ [δᵢ Rᵢ/(b+xᵢ−1+s) − (ψ(b+xᵢ+s) − ψ(b))]` (`s` 1 for MBG/NBD, else 0;
    /// `δᵢ` whether customer i may have dropped out; `ratios` of [`Rows::dropout_ratios`]).
    /// From `ln L = ln A₁ + ln(B(a, b+x+s)/B(a,b) + δ A₂/A₁ · B(a+1, b+x−1+s)/B(a,b))`, whose
    /// two Beta ratios have derivatives `ψ(b) − ψ(b+x+s)` and `1/(b+x−1+s)` at `a = 0`.
    fn no_dropout_slope(&self, ratios: &[f64], b: f64) -> (f64, f64) {
        let s = self.variant.shift();
        let (mut pos, mut neg) = (0.0, 0.0);
        for (f, &x) in self.freqs.iter().enumerate() {
            neg += self.freq_weight[f] * digamma_diff(b, x + s);
            if ratios[f] > 0.0 {
                pos += ratios[f] / (b + x - 1.0 + s);
            }
        }
        (pos, neg)
    }

    /// Where the log-likelihood rises from the no-dropout boundary at `(r, α)` (the rows' time
    /// unit): the `b` at which a small `a > 0` raises it fastest for its dropout share `a/b`
    /// (the largest `b·D(b)`, [`Rows::no_dropout_slope`]), or `None` when no `b` does, i.e. the
    /// boundary is a maximum to first order. Tested on a grid of `b` from 1e-8 to 1e8 (four
    /// points a decade) and in the limit `b → ∞`, where `b·D(b) → Σᵢ wᵢ (δᵢ Rᵢ − xᵢ − s)`; a
    /// rise within 1e-9 of the two parts' size is rounding. A non-finite part counts as a
    /// rise (at the largest `b` of the grid for the limit).
    fn no_dropout_ascent(&self, r: f64, alpha: f64) -> Option<f64> {
        let ratios = self.dropout_ratios(r, alpha);
        let rise = |(pos, neg): (f64, f64)| match pos.is_finite() && neg.is_finite() {
            true => (pos - neg > 1e-9 * (pos + neg)).then_some(pos - neg),
            false => Some(f64::INFINITY),
        };
        let s = self.variant.shift();
        let limit = (
            ratios.iter().sum(),
            self.freqs
                .iter()
                .zip(&self.freq_weight)
                .map(|(x, w)| w * (x + s))
                .sum(),
        );
        let mut best: Option<(f64, f64)> = rise(limit).map(|d| (1e8, d));
        for k in 0..=64 {
            let b = 10f64.powf(-8.0 + f64::from(k) / 4.0);
            if let Some(d) = rise(self.no_dropout_slope(&ratios, b)) {
                if best.is_none_or(|(_, bd)| b * d > bd) {
                    best = Some((b, b * d));
                }
            }
        }
        best.map(|(b, _)| b)
    }

    /// Weighted log-likelihood of the no-dropout limit (NBD: `a = 0`) and its gradient w.r.t.
    /// `(r, α)`: `Σ w [ln Γ(r+x) − ln Γ(r) + r ln α − (r+x) ln(α+T)]`.
    fn nbd_loglik_grad(&self, r: f64, alpha: f64) -> (f64, [f64; 2]) {
        let ln_alpha = alpha.ln();
        let mut ll = 0.0;
        let mut g = [0.0; 2];
        for (&x, &w) in self.freqs.iter().zip(&self.freq_weight) {
            ll += w * (ln_gamma(r + x) - ln_gamma(r) + r * ln_alpha);
            g[0] += w * (digamma(r + x) - digamma(r) + ln_alpha);
            g[1] += w * r / alpha;
        }
        for i in 0..self.w.len() {
            let x = self.freqs[self.fi[i] as usize];
            let at = alpha + self.t[i];
            ll -= self.w[i] * (r + x) * at.ln();
            g[0] -= self.w[i] * at.ln();
            g[1] -= self.w[i] * (r + x) / at;
        }
        (ll, g)
    }
}

/// Weighted log-likelihood and gradient w.r.t. `(r, α, a, b)` for explicit rows; exposed for
/// tests and diagnostics (no collapsing, no rescaling).
pub fn log_likelihood_and_gradient(
    params: &BgNbdParams,
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
) -> (f64, [f64; 4]) {
    Rows::build(frequency, recency, t, 1.0, Variant::Bg).loglik_grad(params)
}

fn from_log(theta: &[f64]) -> BgNbdParams {
    BgNbdParams {
        r: theta[0].exp(),
        alpha: theta[1].exp(),
        a: theta[2].exp(),
        b: theta[3].exp(),
    }
}

/// Fits BG/NBD by maximum likelihood (see the module doc for the numerical choices).
///
/// Inputs are one entry per customer: `frequency` (repeat purchase periods, whole numbers),
/// `recency` (first → last purchase) and `t` (first purchase → end of window), in one time unit.
///
/// Errors: invalid rows (naming the row), empty input, or no customer with a repeat purchase
/// (then `a`, `b` are not identified and `r → 0`). A fit that stops without converging is
/// returned with `converged = false` and the reason in `message`. A fit at the no-dropout
/// boundary is returned with `a = 0` (the NBD limit) and `boundary` set.
pub fn fit_bgnbd(
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    opts: &FitOptions,
) -> Result<FitReport<BgNbdParams>, ModelError> {
    fit_variant(frequency, recency, t, opts, Variant::Bg)
}

/// The fit shared by BG/NBD and MBG/NBD (parameters of `variant`, in the caller's time unit).
/// `a + b` below which a fit restarted off the no-dropout ridge from a subsample's fit is taken
/// to have run into the corner `a, b → 0` ([`fit_variant_on`]).
const CORNER_AB: f64 = 1e-5;

/// Whether the log-parameters `x` lie in the corner `a + b <` [`CORNER_AB`].
fn in_corner(x: &[f64]) -> bool {
    let p = from_log(x);
    p.a + p.b < CORNER_AB
}

/// `m`, or a better fit when `m` stopped on the no-dropout ridge (`a/(a+b)` below
/// [`NO_DROPOUT_SHARE`]) where that boundary is not a maximum ([`Rows::no_dropout_ascent`]):
/// then the fit starts again from the best of a grid of small `a` and `b`, and its
/// result is returned if it converged and its log-likelihood is higher by
/// [`BOUNDARY_LL_GAP`] at least (as the no-dropout limit test asks of an interior fit), else
/// `m` (iterations and evaluations of both), with a note for the fit's message. Heavy-tailed data do this: from the usual start the fit runs to `a → 0` at
/// a large `b`, where dropout does not pay, while the maximum has a small `a` and a small `b`
/// (most customers never drop out, a few soon do).
fn escape_no_dropout_ridge(
    rows: &Rows,
    objective: &impl Fn(&[f64], &mut [f64]) -> f64,
    m: Minimum,
    opts: &FitOptions,
    polish: impl Fn(&[f64]) -> bool,
) -> (Minimum, Option<String>) {
    let p = from_log(&m.x);
    let share = p.a / (p.a + p.b);
    if share.is_nan() || share >= NO_DROPOUT_SHARE || !m.x.iter().all(|v| v.is_finite()) {
        return (m, None);
    }
    let Some(b) = rows.no_dropout_ascent(p.r, p.alpha) else {
        return (m, None);
    };
    // The start: the best of a grid of small dropout shares a/b at b a decade apart from 1e-3
    // to 1e4, at the ridge's (r, α). (The steepest b may lie at the test's grid's end, from
    // where the fit runs into the corner a, b → 0, a limit below the maximum.)
    let mut g = [0.0; 4];
    let grid: Vec<(f64, f64)> = (-3..=4)
        .map(|k| 10f64.powi(k))
        .flat_map(|b| (1..=6).map(move |k| (b * 10f64.powi(-k), b)))
        .collect();
    let (start, _) = grid
        .iter()
        .map(|&(a, b)| {
            let x = [m.x[0], m.x[1], a.ln(), b.ln()];
            let f = objective(&x, &mut g);
            (x, f)
        })
        .min_by(|u, v| u.1.total_cmp(&v.1))
        .expect("a grid of starts");
    let e = minimize_bfgs_then_newton(
        objective,
        &start,
        None,
        opts.max_iter,
        opts.tolerance,
        RIDGE_CHECK_ITER,
        polish,
    );
    let restarted = |kept_ridge: Option<&str>| {
        format!(
            "had stopped on the no-dropout ridge (a/(a+b) = {share:.1e}), where a small a \
             raises the likelihood (first-order test, steepest at b = {b:.2e}): restarted from \
             a = {:.2e}, b = {:.2e}, {} more iterations, log-likelihood {:+.4} against the \
             ridge's{}",
            start[2].exp(),
            start[3].exp(),
            e.iterations,
            (m.f - e.f) * rows.total_weight,
            kept_ridge.map_or(String::new(), |why| format!(
                " ({why}: the ridge's fit is kept)"
            ))
        )
    };
    // Better by the boundary test's margin in log-likelihood, as a 4-parameter fit must be to
    // be preferred to the no-dropout limit, and finished by the same tests as any fit: a
    // restart that did not converge leaves the ridge's fit (and its limit test) in place.
    let finished = e.converged || super::stalled_at_precision(&e, opts.tolerance).is_some();
    let gain = (m.f - e.f) * rows.total_weight;
    let (mut best, note) = match (e.f.is_finite() && gain >= BOUNDARY_LL_GAP, finished) {
        (true, true) => (e.clone(), restarted(None)),
        (true, false) => (m.clone(), restarted(Some("it did not converge"))),
        (false, _) => (
            m.clone(),
            restarted(Some("less than the boundary test's margin")),
        ),
    };
    best.iterations = m.iterations + e.iterations;
    best.evaluations = m.evaluations + e.evaluations + grid.len();
    (best, Some(note))
}

pub(crate) fn fit_variant(
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    opts: &FitOptions,
    variant: Variant,
) -> Result<FitReport<BgNbdParams>, ModelError> {
    fit_variant_on(frequency, recency, t, None, opts, variant)
}

/// [`fit_variant`], with the customers' distinct `(x, t_x, T)` rows when the caller has them
/// (the candidates of `clv.model = "auto"` share one collapse).
pub(crate) fn fit_variant_on(
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    rows: Option<&Distinct<3>>,
    opts: &FitOptions,
    variant: Variant,
) -> Result<FitReport<BgNbdParams>, ModelError> {
    let model = match variant {
        Variant::Bg => "BG/NBD",
        Variant::Mbg => "MBG/NBD",
    };
    let scale = check_purchase_inputs(model, frequency, recency, t, opts)?;
    let full_rows = match rows {
        Some(d) => Rows::from_distinct(d, 1.0, variant),
        None => Rows::build(frequency, recency, t, 1.0, variant),
    };
    let rows = full_rows.rescaled(scale);
    let pen = opts.penalizer_coef;
    let objective = mean_objective(&rows, pen);
    let sub_rows = opts
        .subsample([frequency, recency, t])
        .map(|(d, n)| (Rows::from_distinct(&d, scale, variant), n));
    let sub_objective = sub_rows.as_ref().map(|(r, n)| (mean_objective(r, pen), *n));
    let start = [0.1; 4];
    // A first budget of RIDGE_CHECK_ITER iterations: a fit still moving after that along one of
    // the two ridges (a → 0, or a, b → ∞ together) goes to the limit tests below instead of
    // crawling on to max_iter; any other unfinished fit is finished by Newton's method.
    let on_ridge = |x: &[f64]| {
        let p = from_log(x);
        p.a + p.b > HOMOGENEOUS_AB / 100.0 || p.a / (p.a + p.b) < NO_DROPOUT_SHARE
    };
    // A warm fit that ends on the no-dropout ridge is kept: there the first-order test below
    // decides whether that boundary is a maximum of the whole data's likelihood (a subsample's
    // fit on the ridge may start the fit on a plateau it cannot leave although the maximum is
    // interior), and on the other ridge it is kept when converged.
    let keep_on_ridge = |m: &Minimum| {
        let p = from_log(&m.x);
        p.a / (p.a + p.b) < NO_DROPOUT_SHARE || m.converged
    };
    // The subsample's fit is moved off the no-dropout ridge first where that is not its
    // maximum (cheap on its few rows; the fit over everyone then starts near the maximum).
    let sub_escape = std::cell::RefCell::new(None);
    let refine_sub = |w: Minimum| match (&sub_rows, &sub_objective) {
        (Some((sub, _)), Some((o, _))) => {
            let (w, note) = escape_no_dropout_ridge(sub, o, w, opts, |x| !on_ridge(x));
            *sub_escape.borrow_mut() = note;
            w
        }
        _ => w,
    };
    let ridges = Ridges {
        first: RIDGE_CHECK_ITER,
        interior: &|x| !on_ridge(x),
        keep: &keep_on_ridge,
        refine_sub: &refine_sub,
    };
    let sub_fit = sub_objective.as_ref().map(|(o, n)| (o, *n));
    let (mut m, mut warm) = minimize_warm(
        &objective,
        sub_fit,
        &start,
        opts.max_iter,
        opts.tolerance,
        &ridges,
    );
    let mut sub_note = match warm.as_ref().is_some_and(|w| w.used) {
        true => sub_escape.take().map(|n| {
            format!(
                "; the subsample's fit {n} (the subsample's log-likelihood, its customers \
                     weighted to stand for all)"
            )
        }),
        false => None,
    };
    // From a subsample's restart the fit can end in the corner a, b → 0 (a two-point dropout
    // distribution: another plateau, below the maximum on the fixture's data): then the fit is
    // redone over everyone from the cold start, where the test and the restart below see all
    // the rows.
    if sub_note.is_some() && in_corner(&m.x) {
        m = minimize_bfgs_then_newton(
            &objective,
            &start,
            None,
            opts.max_iter,
            opts.tolerance,
            RIDGE_CHECK_ITER,
            |x| !on_ridge(x),
        );
        warm = None;
        sub_note = Some(
            "; a warm start from the subsample's fit, restarted off the no-dropout ridge, \
             ended in the corner a, b -> 0: fitted again from the cold start"
                .to_string(),
        );
    }
    let (m, escaped) = escape_no_dropout_ridge(&rows, &objective, m, opts, |x| !on_ridge(x));
    let scaled = from_log(&m.x);
    let unscaled = |p: BgNbdParams| BgNbdParams {
        alpha: p.alpha / scale,
        ..p
    };
    let mut params = unscaled(scaled);
    let sum_x: f64 = frequency.iter().sum();
    let mut ll = loglik_at(
        m.f,
        &[scaled.r, scaled.alpha, scaled.a, scaled.b],
        rows.total_weight,
        pen,
        sum_x,
        scale,
    );
    let mut converged = m.converged && ll.is_finite();
    let mut iterations = m.iterations;
    let mut grad_norm = m.grad_norm;
    let mut message = format!(
        "{} after {} iterations ({} evaluations){}{}{}",
        m.reason,
        m.iterations,
        m.evaluations,
        warm_note(warm.as_ref()),
        sub_note.unwrap_or_default(),
        escaped.map_or(String::new(), |note| format!("; the fit {note}"))
    );
    if !on_ridge(&m.x) {
        if let Some(note) = stalled_at_precision(&m, opts.tolerance) {
            converged = ll.is_finite();
            message.push_str(&note);
        }
    }
    let mut boundary = None;
    let mut free_parameters = 4;
    let mut limit = None;

    // The no-dropout boundary: a/(a+b) → 0 makes the model NBD (nobody drops out). Fit the
    // limit directly; if the 4-parameter fit is no better, report the boundary solution a = 0.
    let share = scaled.a / (scaled.a + scaled.b);
    if share.is_nan() || share < NO_DROPOUT_SHARE {
        let nbd_objective = nbd_objective(&rows, pen);
        let start = [m.x[0].clamp(-5.0, 5.0), m.x[1].clamp(-10.0, 10.0)];
        let n = minimize_bfgs(&nbd_objective, &start, opts.max_iter, opts.tolerance);
        let nbd = BgNbdParams {
            r: n.x[0].exp(),
            alpha: n.x[1].exp() / scale,
            a: 0.0,
            b: params.b,
        };
        let nbd_ll = loglik_at(
            n.f,
            &[n.x[0].exp(), n.x[1].exp()],
            rows.total_weight,
            pen,
            sum_x,
            scale,
        );
        // Started next to its optimum, the 2-parameter fit may stop at a gradient just above
        // the tolerance where double precision finds no further decrease: that is converged.
        let nbd_converged = n.converged || stalled_at_precision(&n, opts.tolerance).is_some();
        if nbd_converged && nbd_ll.is_finite() && (ll.is_nan() || ll - nbd_ll < BOUNDARY_LL_GAP) {
            boundary = Some(format!(
                "no dropout: the fit ran to a/(a+b) = {share:.1e} (a -> 0), where {model} becomes \
                 the NBD model (nobody drops out, P(alive) = 1); scored with that limit (a = 0, \
                 b not identified), fitted in {} more iterations, log-likelihood {nbd_ll:.4} vs \
                 {ll:.4}",
                n.iterations
            ));
            params = nbd;
            ll = nbd_ll;
            converged = true;
            iterations += n.iterations;
            grad_norm = n.grad_norm;
            free_parameters = 2;
            limit = Some(Limit::NoDropout);
        }
    }
    // The homogeneous-dropout ridge: a, b → ∞ at a fixed a/(a+b) = p (dropout probabilities do
    // not vary between customers). BFGS crawls along it; fit the 3-parameter limit directly.
    if boundary.is_none() && (!converged || scaled.a + scaled.b > HOMOGENEOUS_AB / 100.0) {
        let objective = same_dropout_objective(&rows, pen);
        let share = share.clamp(1e-9, 1.0 - 1e-9);
        let start = [
            m.x[0].clamp(-5.0, 5.0),
            m.x[1].clamp(-10.0, 10.0),
            (share / (1.0 - share)).ln(),
        ];
        let h = minimize_bfgs(objective, &start, opts.max_iter, opts.tolerance);
        let full = &full_rows;
        let theta_full = [h.x[0], h.x[1] - scale.ln(), h.x[2]];
        let h_ll = full.homogeneous_loglik_grad(&theta_full).0;
        if h.converged && h_ll.is_finite() && (ll.is_nan() || ll - h_ll < BOUNDARY_LL_GAP) {
            let p = 1.0 / (1.0 + (-h.x[2]).exp());
            boundary = Some(format!(
                "same dropout for everyone: the fit ran along a, b -> infinity at a/(a+b) = \
                 {p:.4}, where the Beta dropout distribution becomes a point mass; scored with \
                 that limit (every customer drops out with probability {p:.4} after each \
                 purchase; a, b not identified), fitted in {} more iterations, log-likelihood \
                 {h_ll:.4} vs {ll:.4}",
                h.iterations
            ));
            params = BgNbdParams {
                r: h.x[0].exp(),
                alpha: h.x[1].exp() / scale,
                a: p * HOMOGENEOUS_K,
                b: (1.0 - p) * HOMOGENEOUS_K,
            };
            ll = h_ll;
            converged = true;
            iterations += h.iterations;
            grad_norm = h.grad_norm;
            free_parameters = 3;
            limit = Some(Limit::SameDropout);
        }
    }
    if boundary.is_none() {
        let names = ["r", "alpha", "a", "b"];
        let ran_off: Vec<&str> = names
            .iter()
            .enumerate()
            .filter(|(k, _)| m.x[*k].abs() > LOG_PARAM_LIMIT)
            .map(|(_, n)| *n)
            .collect();
        if !ran_off.is_empty() {
            if converged {
                // The gradient test passed with a parameter at e^±25: a flat direction in which
                // the likelihood approaches its limit. The values reached are that limit to
                // within the tolerance, so they score customers; say so.
                boundary = Some(format!(
                    "{} ran off to a boundary (the data do not identify {}): the likelihood is \
                     flat there and the model is scored with its limiting values",
                    ran_off.join(", "),
                    if ran_off.len() == 1 { "it" } else { "them" }
                ));
                limit = Some(Limit::RanOff);
            } else {
                message.push_str(&format!(
                    "; {} ran off to a boundary: the data do not identify {}",
                    ran_off.join(", "),
                    if ran_off.len() == 1 { "it" } else { "them" }
                ));
            }
        }
    }
    let covariance = (opts.covariance && converged)
        .then(|| covariance_at(&rows, pen, scale, &params, limit))
        .flatten();
    Ok(FitReport {
        params,
        covariance,
        free_parameters,
        log_likelihood: ll,
        iterations,
        converged,
        message,
        boundary,
        limit,
        customers: frequency.len(),
        distinct_rows: rows.w.len(),
        grad_norm,
    })
}

/// Access to the collapsed rows for the tests of the MBG/NBD module.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    pub(crate) struct TestRows(Rows);
    pub(crate) fn rows(x: &[f64], tx: &[f64], t: &[f64], variant: Variant) -> TestRows {
        TestRows(Rows::build(x, tx, t, 1.0, variant))
    }
    pub(crate) fn loglik_grad(rows: &TestRows, p: &BgNbdParams) -> (f64, [f64; 4]) {
        rows.0.loglik_grad(p)
    }
}

#[cfg(test)]
mod tests;
