//! Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting Your Customers: Who Are They
//! and What Will They Do Next?", Management Science 33(1), with the quantities of `lifetimes`
//! 0.11.3 `ParetoNBDFitter`.
//!
//! While alive a customer buys at Poisson rate `λ ~ Gamma(r, α)`; they die after an exponential
//! lifetime of rate `μ ~ Gamma(s, β)`, at any time (not only right after a purchase, as in
//! BG/NBD).
//!
//! # The likelihood as an integral
//!
//! Integrating `λ^x e^{−(λ+μ)T} + λ^x μ ∫_{t_x}^{T} e^{−(λ+μ)τ} dτ` over both gammas gives
//!
//! `L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^{−(r+x)} (β+T)^{−s} + s · I ]`,
//! `I = ∫_{t_x}^{T} (α+τ)^{−(r+x)} (β+τ)^{−(s+1)} dτ`.
//!
//! This is the published likelihood: `s·I = s/(r+s+x) · A₀` with the `₂F₁` form of `A₀` that
//! `lifetimes` evaluates as a difference of two hypergeometric terms (which cancel when
//! `t_x → T` and overflow for `x` in the hundreds, see `BTYD_NOTES.md`). Here `I` is computed
//! directly: after `τ = (α+t_x)e^u − α` its integrand is `e^{ψ(u)}` with `ψ` monotone in slope,
//! integrated by one 6-node Gauss–Legendre rule when `ψ` changes by at most 0.5 over the whole
//! interval, one 8-node rule when it changes by at most 3 (most customers), else by 16-node panels over which it changes by at most 8,
//! stopping once the rest is below `e^{−50}` of the maximum. Against a brute-force quadrature
//! (test `quadrature_matches_brute_force`) `ln I` and its moments agree to 1.4e-10 relative on
//! the 8-node path and to 6e-9 on panels (where β ≪ α bends the dropout factor sharply just
//! after `t_x`; 1e-10 elsewhere). All terms stay in log space; `I = 0` when `t_x = T`.
//!
//! # Quantities
//!
//! * P(alive) `= (α+T)^{−(r+x)}(β+T)^{−s} / [(α+T)^{−(r+x)}(β+T)^{−s} + s·I]`.
//! * Expected purchases in `(T, T+t]` = P(alive) · `(r+x)/(α+T) · (β+T)/(s−1) ·
//!   [1 − ((β+T)/(β+T+t))^{s−1}]` (the bracket over `s−1` is taken with `expm1`, finite at
//!   `s = 1`), the form `lifetimes` uses.
//! * Gradient: the derivatives of `I` are integrals of the same integrand times `ln(α+τ)`,
//!   `1/(α+τ)`, `ln(β+τ)`, `1/(β+τ)`, on the same nodes.
//!
//! Fitting is as for BG/NBD: log-parameters, time rescaled so that `max T = 1` (`α` and `β`
//! scale, as in `lifetimes`), identical customers collapsed, BFGS with the analytic gradient
//! and Newton steps for a stalled fit. At the no-dropout boundary (`s → 0`) the model becomes
//! NBD: `s = 0` is reported, with P(alive) = 1.

use super::distinct::{distinct, Distinct};
use std::sync::OnceLock;

use rayon::prelude::*;

use super::optimize::{covariance, hessian, minimize_warm, Ridges};
use super::special::{digamma, ln_gamma};
use super::{
    check_purchase_inputs, loglik_at, no_dropout_covariance, penalized_mean, stalled_at_precision,
    warm_note, FitOptions, FitReport, Limit, ModelError, LOG_PARAM_LIMIT, PAR_CHUNK,
};

/// Pareto/NBD parameters, in the time unit of the data they were fitted on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoNbdParams {
    /// Shape of the Gamma purchase-rate heterogeneity.
    pub r: f64,
    /// Scale (time units) of the Gamma purchase-rate heterogeneity.
    pub alpha: f64,
    /// Shape of the Gamma dropout-rate heterogeneity.
    pub s: f64,
    /// Scale (time units) of the Gamma dropout-rate heterogeneity.
    pub beta: f64,
}

/// `N`-point Gauss–Legendre nodes and weights on [−1, 1] (Newton on the Legendre polynomial).
fn gauss_legendre_nodes<const N: usize>() -> ([f64; N], [f64; N]) {
    let mut x = [0.0; N];
    let mut w = [0.0; N];
    for i in 0..N.div_ceil(2) {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (N as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (1.0, 0.0);
            for j in 0..N {
                let p3 = p2;
                p2 = p1;
                p1 = ((2 * j + 1) as f64 * z * p2 - j as f64 * p3) / (j + 1) as f64;
            }
            dp = N as f64 * (z * p1 - p2) / (z * z - 1.0);
            let z1 = z;
            z = z1 - p1 / dp;
            if (z - z1).abs() < 1e-16 {
                break;
            }
        }
        x[i] = -z;
        x[N - 1 - i] = z;
        w[i] = 2.0 / ((1.0 - z * z) * dp * dp);
        w[N - 1 - i] = w[i];
    }
    (x, w)
}

/// 16-point rule: panels over which the log-integrand changes by up to [`PANEL_DROP`].
fn gl16() -> &'static ([f64; 16], [f64; 16]) {
    static GL: OnceLock<([f64; 16], [f64; 16])> = OnceLock::new();
    GL.get_or_init(gauss_legendre_nodes::<16>)
}

/// 8-point rule: a whole interval over which the log-integrand changes by at most
/// [`SMALL_DROP`] (most customers: few purchases).
fn gl8() -> &'static ([f64; 8], [f64; 8]) {
    static GL: OnceLock<([f64; 8], [f64; 8])> = OnceLock::new();
    GL.get_or_init(gauss_legendre_nodes::<8>)
}

/// 6-point rule: a whole interval over which the log-integrand changes by at most
/// [`SMALLER_DROP`] (about half the customers of the heavy-tailed 50 M-row workload).
fn gl6() -> &'static ([f64; 6], [f64; 6]) {
    static GL: OnceLock<([f64; 6], [f64; 6])> = OnceLock::new();
    GL.get_or_init(gauss_legendre_nodes::<6>)
}

/// Largest change of the log-integrand over an interval integrated by the 8-point rule.
const SMALL_DROP: f64 = 3.0;

/// Largest change of the log-integrand over an interval integrated by the 6-point rule. On
/// random rows over wide parameter ranges (test `six_point_rule_matches_brute_force`) it agrees
/// with brute force to 2e-11 at worst; the 8-point rule's worst up to [`SMALL_DROP`] is 2e-7.
const SMALLER_DROP: f64 = 0.5;

/// `ln I` and the normalised moments of the integrand (`E[ln(α+τ)]`, `E[1/(α+τ)]`,
/// `E[ln(β+τ)]`, `E[1/(β+τ)]` under the density proportional to it).
#[derive(Debug, Clone, Copy)]
struct Integral {
    ln_i: f64,
    ln_a: f64,
    inv_a: f64,
    ln_b: f64,
    inv_b: f64,
}

/// Largest drop of the log-integrand over one panel.
const PANEL_DROP: f64 = 8.0;
/// The integration stops once the log-integrand is this far below its maximum and falling.
const TAIL_DROP: f64 = 50.0;
/// Most panels per integral.
const MAX_PANELS: usize = 512;

fn integral(p: &ParetoNbdParams, x: f64, tx: f64, t: f64) -> Integral {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let none = Integral {
        ln_i: f64::NEG_INFINITY,
        ln_a: 0.0,
        inv_a: 0.0,
        ln_b: 0.0,
        inv_b: 0.0,
    };
    // At the no-dropout limit (s = 0) the integral's term `s·I` vanishes: [`bracket`] does
    // not read it.
    if t <= tx || s <= 0.0 {
        return none;
    }
    let a0 = alpha + tx;
    let ln_a0 = a0.ln();
    let end = ((t - tx) / a0).ln_1p();
    let k = r + x - 1.0;
    // τ(u) = t_x + (α+t_x)·expm1(u); the integrand in u is (α+τ)^{−(r+x−1)} (β+τ)^{−(s+1)}.
    let at = |u: f64| {
        let em1 = u.exp_m1();
        let a = a0 * (1.0 + em1);
        let b = beta + tx + a0 * em1;
        (a, b)
    };
    let log_g = |u: f64, b: f64| -k * (ln_a0 + u) - (s + 1.0) * b.ln();
    let rate = |a: f64, b: f64| k + (s + 1.0) * a / b;
    let mut acc = Acc {
        reference: f64::NEG_INFINITY,
        sums: [0.0; 5],
    };
    let add = |acc: &mut Acc, u: f64, weight: f64| {
        let (a, b) = at(u);
        let (ln_a, ln_b) = (ln_a0 + u, b.ln());
        acc.add(
            weight,
            -k * ln_a - (s + 1.0) * ln_b,
            [ln_a, 1.0 / a, ln_b, 1.0 / b],
        );
    };
    // The slope of the log-integrand is monotone in u: its extremes are at the two ends,
    // u = 0 (τ = t_x) and u = end (τ = T).
    let steepest = rate(a0, beta + tx)
        .abs()
        .max(rate(alpha + t, beta + t).abs());
    let (c, span) = (beta + tx, (t - tx) / a0);
    if steepest * end <= SMALLER_DROP {
        return small_integral(gl6(), k, s, c, a0, ln_a0, end, span).finish(none);
    }
    if steepest * end <= SMALL_DROP {
        return small_integral(gl8(), k, s, c, a0, ln_a0, end, span).finish(none);
    }
    let (nodes, weights) = gl16();
    let mut lo = 0.0;
    for panel in 0..MAX_PANELS {
        let (a_lo, b_lo) = at(lo);
        let r_lo = rate(a_lo, b_lo);
        let mut h = (PANEL_DROP / r_lo.abs().max(1e-300)).min(end - lo);
        let (a_hi, b_hi) = at(lo + h);
        let r_hi = rate(a_hi, b_hi).abs();
        if r_hi > r_lo.abs() {
            h = (PANEL_DROP / r_hi).min(end - lo);
        }
        if panel == MAX_PANELS - 1 {
            h = end - lo;
        }
        let (mid, half) = (lo + 0.5 * h, 0.5 * h);
        for j in 0..16 {
            add(&mut acc, mid + half * nodes[j], weights[j] * half);
        }
        lo += h;
        if lo >= end {
            break;
        }
        if r_lo > 0.0 {
            let (_, b_next) = at(lo);
            if log_g(lo, b_next) < acc.reference - TAIL_DROP {
                break;
            }
        }
    }
    acc.finish(none)
}

/// [`integral`]'s sums by the `N`-point rule over the whole of `u ∈ [0, end]` (`N` even), with
/// `c = β + t_x`, `a0 = α + t_x`, `span = e^end − 1 = (T − t_x)/a0`.
///
/// The nodes come in pairs `u`, `end − u`: `expm1` is taken at the lower one only, the upper
/// one's is `(span − e_u)/(1 + e_u)`, whose numerator `e^u (e^{end−u} − 1)` keeps its relative
/// error within a few ulps (`end − u ≥ end/2`). The integrand's largest value is found first,
/// so each node costs one `exp` and one `ln`.
#[inline]
#[allow(clippy::too_many_arguments)]
fn small_integral<const N: usize>(
    (nodes, weights): &([f64; N], [f64; N]),
    k: f64,
    s: f64,
    c: f64,
    a0: f64,
    ln_a0: f64,
    end: f64,
    span: f64,
) -> Acc {
    let half = 0.5 * end;
    let mut lg = [0.0; N];
    let mut moments = [[0.0; 4]; N];
    for (j, node) in nodes.iter().enumerate().take(N / 2) {
        let u = half + half * node;
        let em1 = u.exp_m1();
        let em1_hi = (span - em1) / (1.0 + em1);
        for (i, u, em1) in [(j, u, em1), (N - 1 - j, end - u, em1_hi)] {
            let a = a0 * (1.0 + em1);
            let b = c + a0 * em1;
            let (ln_a, ln_b) = (ln_a0 + u, b.ln());
            lg[i] = -k * ln_a - (s + 1.0) * ln_b;
            moments[i] = [ln_a, 1.0 / a, ln_b, 1.0 / b];
        }
    }
    let reference = lg.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sums = [0.0; 5];
    for i in 0..N {
        let wg = weights[i] * half * (lg[i] - reference).exp();
        sums[0] += wg;
        for (sum, v) in sums[1..].iter_mut().zip(moments[i]) {
            *sum += wg * v;
        }
    }
    Acc { reference, sums }
}

/// Running quadrature sums, scaled by `e^{−reference}` (the largest log-integrand so far).
struct Acc {
    reference: f64,
    sums: [f64; 5],
}

impl Acc {
    /// One node: weight, log-integrand, and `[ln(α+τ), 1/(α+τ), ln(β+τ), 1/(β+τ)]`.
    fn add(&mut self, weight: f64, lg: f64, moments: [f64; 4]) {
        if lg > self.reference {
            let f = (self.reference - lg).exp();
            self.sums.iter_mut().for_each(|v| *v *= f);
            self.reference = lg;
        }
        let wg = weight * (lg - self.reference).exp();
        self.sums[0] += wg;
        for (sum, v) in self.sums[1..].iter_mut().zip(moments) {
            *sum += wg * v;
        }
    }

    fn finish(&self, none: Integral) -> Integral {
        let s = &self.sums;
        if s[0].is_nan() || s[0] <= 0.0 {
            return none;
        }
        Integral {
            ln_i: self.reference + s[0].ln(),
            ln_a: s[1] / s[0],
            inv_a: s[2] / s[0],
            ln_b: s[3] / s[0],
            inv_b: s[4] / s[0],
        }
    }
}

/// `(ln(B + s·I), w_B, w_I)` with `B = (α+T)^{−(r+x)}(β+T)^{−s}`: the log of the bracket and
/// the shares of its two terms (`w_B` is P(alive)).
fn bracket(p: &ParetoNbdParams, x: f64, t: f64, i: &Integral) -> (f64, f64, f64) {
    bracket_of_logs(p, x, (p.alpha + t).ln(), (p.beta + t).ln(), i)
}

/// [`bracket`] given `ln(α+T)` and `ln(β+T)`.
#[inline]
fn bracket_of_logs(
    p: &ParetoNbdParams,
    x: f64,
    ln_at: f64,
    ln_bt: f64,
    i: &Integral,
) -> (f64, f64, f64) {
    let lb = -(p.r + x) * ln_at - p.s * ln_bt;
    let li = if p.s > 0.0 {
        p.s.ln() + i.ln_i
    } else {
        f64::NEG_INFINITY
    };
    if li == f64::NEG_INFINITY {
        return (lb, 1.0, 0.0);
    }
    // The smaller term over the larger, e ≤ 1: one exp.
    let d = li - lb;
    if d <= 0.0 {
        let e = d.exp();
        (lb + e.ln_1p(), 1.0 / (1.0 + e), e / (1.0 + e))
    } else {
        let e = (-d).exp();
        (li + e.ln_1p(), e / (1.0 + e), 1.0 / (1.0 + e))
    }
}

impl ParetoNbdParams {
    /// Log-likelihood of one customer.
    pub fn log_likelihood(&self, x: f64, tx: f64, t: f64) -> f64 {
        let i = integral(self, x, tx, t);
        let (lse, _, _) = bracket(self, x, t, &i);
        ln_gamma(self.r + x) - ln_gamma(self.r)
            + self.r * self.alpha.ln()
            + if self.s > 0.0 {
                self.s * self.beta.ln()
            } else {
                0.0
            }
            + lse
    }

    /// Probability that a customer with history `(x, t_x, T)` is alive at `T`.
    pub fn prob_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        let i = integral(self, x, tx, t);
        bracket(self, x, t, &i).1
    }

    /// Expected purchases in `(T, T+t]` if alive (depends on `(t, x, T)` only).
    pub fn expected_purchases_if_alive(&self, t: f64, x: f64, big_t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        let l = (t / (beta + big_t)).ln_1p();
        // [1 − ((β+T)/(β+T+t))^{s−1}] / (s−1) = −expm1(−(s−1)·l) / (s−1) → l at s = 1.
        let bracket = if (s - 1.0).abs() < 1e-12 {
            l
        } else {
            -(-(s - 1.0) * l).exp_m1() / (s - 1.0)
        };
        (r + x) / (alpha + big_t) * (beta + big_t) * bracket
    }

    /// Expected purchases in `(T, T+t]` of a customer with history `(x, t_x, T)`.
    pub fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> f64 {
        self.expected_purchases_if_alive(t, x, big_t) * self.prob_alive(x, tx, big_t)
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
            &[p.r, p.alpha, p.s, p.beta],
            rows.total_weight,
            pen,
            grad,
        )
    }
}

/// Collapsed likelihood rows.
#[derive(Clone)]
struct Rows {
    x: Vec<f64>,
    tx: Vec<f64>,
    t: Vec<f64>,
    w: Vec<f64>,
    total_weight: f64,
}

impl Rows {
    /// Customers collapsed to their distinct `(x, t_x, T)` rows (ascending), times multiplied
    /// by `scale`.
    fn build(frequency: &[f64], recency: &[f64], t: &[f64], scale: f64) -> Rows {
        Rows::from_distinct(&distinct([frequency, recency, t]), scale)
    }

    /// [`Rows::build`] of customers already collapsed to their distinct rows `d`.
    fn from_distinct(d: &Distinct<3>, scale: f64) -> Rows {
        Rows {
            x: d.rows.iter().map(|r| r[0]).collect(),
            tx: d.rows.iter().map(|r| r[1] * scale).collect(),
            t: d.rows.iter().map(|r| r[2] * scale).collect(),
            w: d.counts.iter().map(|&c| c as f64).collect(),
            total_weight: d.counts.iter().map(|&c| f64::from(c)).sum(),
        }
    }

    /// Weighted log-likelihood of the no-dropout limit (NBD: `s = 0`) and its gradient w.r.t.
    /// `(r, α)`: `Σ w [ln Γ(r+x) − ln Γ(r) + r ln α − (r+x) ln(α+T)]`. In parallel chunks, with
    /// `ln Γ(r+x)` and `ψ(r+x)` once per run of equal `x` (rows are sorted by `x`): one
    /// thread and two special functions per row took 0.3 s of a 50 M-row run's covariance.
    fn nbd_loglik_grad(&self, r: f64, alpha: f64) -> (f64, [f64; 2]) {
        let (lgr, psir, ln_alpha) = (ln_gamma(r), digamma(r), alpha.ln());
        let n = self.w.len();
        let chunks: Vec<[f64; 3]> = (0..n.div_ceil(PAR_CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut acc = [0.0; 3];
                let (mut last_x, mut lg_rx, mut psi_rx) = (f64::NAN, 0.0, 0.0);
                for i in c * PAR_CHUNK..((c + 1) * PAR_CHUNK).min(n) {
                    let (x, w) = (self.x[i], self.w[i]);
                    if x.to_bits() != last_x.to_bits() {
                        (last_x, lg_rx, psi_rx) = (x, ln_gamma(r + x), digamma(r + x));
                    }
                    let at = alpha + self.t[i];
                    let ln_at = at.ln();
                    acc[0] += w * (lg_rx - lgr + r * ln_alpha - (r + x) * ln_at);
                    acc[1] += w * (psi_rx - psir + ln_alpha - ln_at);
                    acc[2] += w * (r / alpha - (r + x) / at);
                }
                acc
            })
            .collect();
        let mut ll = 0.0;
        let mut g = [0.0; 2];
        for acc in chunks {
            ll += acc[0];
            g[0] += acc[1];
            g[1] += acc[2];
        }
        (ll, g)
    }

    /// The same rows with every time multiplied by `scale`.
    fn rescaled(&self, scale: f64) -> Rows {
        let mul = |v: &[f64]| v.iter().map(|x| x * scale).collect();
        Rows {
            tx: mul(&self.tx),
            t: mul(&self.t),
            ..self.clone()
        }
    }

    /// Weighted log-likelihood and its gradient w.r.t. `(r, α, s, β)`.
    fn loglik_grad(&self, p: &ParetoNbdParams) -> (f64, [f64; 4]) {
        let ParetoNbdParams { r, alpha, s, beta } = *p;
        let (lgr, psir, ln_alpha, ln_beta) = (ln_gamma(r), digamma(r), alpha.ln(), beta.ln());
        let n = self.w.len();
        let chunks: Vec<[f64; 5]> = (0..n.div_ceil(PAR_CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut acc = [0.0; 5];
                // ln Γ(r+x) and ψ(r+x) of the previous row: rows come sorted by x, so most rows
                // reuse them.
                let (mut last_x, mut lg_rx, mut psi_rx) = (f64::NAN, 0.0, 0.0);
                for k in c * PAR_CHUNK..((c + 1) * PAR_CHUNK).min(n) {
                    let (x, tx, t, w) = (self.x[k], self.tx[k], self.t[k], self.w[k]);
                    if x.to_bits() != last_x.to_bits() {
                        (last_x, lg_rx, psi_rx) = (x, ln_gamma(r + x), digamma(r + x));
                    }
                    let i = integral(p, x, tx, t);
                    let (at, bt) = (alpha + t, beta + t);
                    let (ln_at, ln_bt) = (at.ln(), bt.ln());
                    let (lse, wb, wi) = bracket_of_logs(p, x, ln_at, ln_bt, &i);
                    acc[0] += w * (lg_rx - lgr + r * ln_alpha + s * ln_beta + lse);
                    acc[1] += w * (psi_rx - psir + ln_alpha - wb * ln_at - wi * i.ln_a);
                    acc[2] += w * (r / alpha - (r + x) * (wb / at + wi * i.inv_a));
                    acc[3] += w * (ln_beta - wb * ln_bt + wi * (1.0 / s - i.ln_b));
                    acc[4] += w * (s / beta - wb * s / bt - wi * (s + 1.0) * i.inv_b);
                }
                acc
            })
            .collect();
        let mut ll = 0.0;
        let mut g = [0.0; 4];
        for acc in chunks {
            ll += acc[0];
            for k in 0..4 {
                g[k] += acc[k + 1];
            }
        }
        (ll, g)
    }
}

/// The asymptotic covariance of the log-parameters `(ln r, ln α, ln s, ln β)` of a converged
/// fit over `rows` (times multiplied by `scale`): at an interior optimum from the Hessian of
/// the mean objective; at the no-dropout limit only `(ln r, ln α)` are free, their 2×2
/// covariance from the NBD likelihood, embedded with zero variance for `ln s = −∞` and the
/// unidentified `β` (as BG/NBD's), so that intervals exist there too. None where a parameter
/// ran off or the Hessian is not positive definite.
fn covariance_at(
    rows: &Rows,
    pen: f64,
    scale: f64,
    params: &ParetoNbdParams,
    limit: Option<Limit>,
) -> Option<Vec<f64>> {
    let (ln_r, ln_alpha) = (params.r.ln(), (params.alpha * scale).ln());
    match limit {
        None => {
            let theta = [ln_r, ln_alpha, params.s.ln(), (params.beta * scale).ln()];
            let mut f = mean_objective(rows, pen);
            covariance(&hessian(&mut f, &theta), 4, rows.total_weight)
        }
        Some(Limit::NoDropout) => {
            let nbd = |theta: &[f64], grad: &mut [f64]| -> f64 {
                let (r, alpha) = (theta[0].exp(), theta[1].exp());
                let (ll, g) = rows.nbd_loglik_grad(r, alpha);
                penalized_mean(ll, &g, &[r, alpha], rows.total_weight, pen, grad)
            };
            no_dropout_covariance(&nbd, &[ln_r, ln_alpha], rows.total_weight)
        }
        Some(Limit::SameDropout | Limit::RanOff) => None,
    }
}

/// [`FitReport::covariance`] of a converged fit made without it ([`FitOptions::covariance`]
/// off), from its parameters and limit and the same customers and options: what `auto`
/// computes for its chosen candidate only.
pub(crate) fn covariance_of(
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    params: &ParetoNbdParams,
    limit: Option<Limit>,
    opts: &FitOptions,
) -> Option<Vec<f64>> {
    let scale = check_purchase_inputs("Pareto/NBD", frequency, recency, t, opts).ok()?;
    let rows = Rows::build(frequency, recency, t, scale);
    covariance_at(&rows, opts.penalizer_coef, scale, params, limit)
}

fn from_log(theta: &[f64]) -> ParetoNbdParams {
    ParetoNbdParams {
        r: theta[0].exp(),
        alpha: theta[1].exp(),
        s: theta[2].exp(),
        beta: theta[3].exp(),
    }
}

/// Below this `s` (dropout-rate shape), or this expected number of dropouts per customer over
/// the longest history (`s/β · max T`, the mean dropout rate in rescaled time), the fit is
/// tested against the no-dropout limit.
const NO_DROPOUT_S: f64 = 1e-6;

/// Fits Pareto/NBD by maximum likelihood; inputs and errors as [`super::fit_bgnbd`].
pub fn fit_pareto_nbd(
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    opts: &FitOptions,
) -> Result<FitReport<ParetoNbdParams>, ModelError> {
    fit_pareto_nbd_on(frequency, recency, t, None, opts)
}

/// [`fit_pareto_nbd`], with the customers' distinct `(x, t_x, T)` rows when the caller has
/// them (the candidates of `clv.model = "auto"` share one collapse).
pub(crate) fn fit_pareto_nbd_on(
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    rows: Option<&Distinct<3>>,
    opts: &FitOptions,
) -> Result<FitReport<ParetoNbdParams>, ModelError> {
    const MODEL: &str = "Pareto/NBD";
    let scale = check_purchase_inputs(MODEL, frequency, recency, t, opts)?;
    let full = match rows {
        Some(d) => Rows::from_distinct(d, 1.0),
        None => Rows::build(frequency, recency, t, 1.0),
    };
    let rows = full.rescaled(scale);
    let pen = opts.penalizer_coef;
    let objective = mean_objective(&rows, pen);
    let sub_rows = opts
        .subsample([frequency, recency, t])
        .map(|(d, n)| (Rows::from_distinct(&d, scale), n));
    let sub_objective = sub_rows.as_ref().map(|(r, n)| (mean_objective(r, pen), *n));
    let at_boundary = |x: &[f64]| x[2].exp() < NO_DROPOUT_S || (x[2] - x[3]).exp() < NO_DROPOUT_S;
    let (m, warm) = minimize_warm(
        &objective,
        sub_objective.as_ref().map(|(o, n)| (o, *n)),
        &[0.1; 4],
        opts.max_iter,
        opts.tolerance,
        // At the no-dropout boundary a warm fit is kept only when converged.
        &Ridges {
            interior: &|x| !at_boundary(x),
            ..Ridges::NONE
        },
    );
    let scaled = from_log(&m.x);
    let unscale = |p: ParetoNbdParams| ParetoNbdParams {
        alpha: p.alpha / scale,
        beta: p.beta / scale,
        ..p
    };
    let mut params = unscale(scaled);
    let sum_x: f64 = frequency.iter().sum();
    let mut ll = loglik_at(
        m.f,
        &[scaled.r, scaled.alpha, scaled.s, scaled.beta],
        rows.total_weight,
        pen,
        sum_x,
        scale,
    );
    let mut converged = m.converged && ll.is_finite();
    let mut message = format!(
        "{} after {} iterations ({} evaluations){}",
        m.reason,
        m.iterations,
        m.evaluations,
        warm_note(warm.as_ref())
    );
    if let Some(note) = stalled_at_precision(&m, opts.tolerance) {
        converged = ll.is_finite();
        message.push_str(&note);
    }
    let mut boundary = None;
    let mut limit = None;
    if at_boundary(&m.x) {
        // s → 0 or s/β → 0: nobody drops out, the model is NBD. Score with s = 0 (P(alive) = 1).
        let nbd = ParetoNbdParams { s: 0.0, ..params };
        // The NBD's closed form (equal to the Pareto/NBD likelihood at s = 0, tested), not a
        // pass of the quadrature over every row (0.2 s on the 50 M-row workload).
        let limit_ll = full.nbd_loglik_grad(nbd.r, nbd.alpha).0;
        if limit_ll.is_finite() && (ll.is_nan() || ll - limit_ll < 0.5) {
            boundary = Some(format!(
                "no dropout: the fit ran to s = {:.1e}, mean dropout rate s/beta = {:.1e} per \
                 time unit, where Pareto/NBD becomes the NBD model (nobody drops out, \
                 P(alive) = 1); scored with that limit (s = 0, beta not identified), \
                 log-likelihood {limit_ll:.4} vs {ll:.4}",
                params.s,
                params.s / params.beta
            ));
            params = nbd;
            ll = limit_ll;
            converged = true;
            limit = Some(Limit::NoDropout);
        }
    }
    if boundary.is_none() {
        let ran_off: Vec<&str> = ["r", "alpha", "s", "beta"]
            .iter()
            .enumerate()
            .filter(|(k, _)| m.x[*k].abs() > LOG_PARAM_LIMIT)
            .map(|(_, n)| *n)
            .collect();
        if !ran_off.is_empty() {
            let what = ran_off.join(", ");
            if converged {
                boundary = Some(format!(
                    "{what} ran off to a boundary (the data do not identify them): the \
                     likelihood is flat there and the model is scored with its limiting values"
                ));
                limit = Some(Limit::RanOff);
            } else {
                message.push_str(&format!(
                    "; {what} ran off to a boundary: the data do not identify it"
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
        free_parameters: if params.s == 0.0 { 2 } else { 4 },
        log_likelihood: ll,
        iterations: m.iterations,
        converged,
        message,
        boundary,
        limit,
        customers: frequency.len(),
        distinct_rows: rows.w.len(),
        grad_norm: m.grad_norm,
    })
}

#[cfg(test)]
mod tests;
