//! Probabilistic customer-base models ("buy till you die") and the CLV arithmetic built on them.
//!
//! This module is pure math: plain slices in, plain structs out. No polars, no I/O.
//!
//! # Data model
//!
//! One row per customer, as of one date, in **one time unit** chosen by the caller (days or
//! weeks; the CLV helpers convert calendar days into that unit explicitly):
//!
//! | symbol | name | meaning |
//! | --- | --- | --- |
//! | `x` | frequency | number of *repeat* purchase periods (same-day orders merge; the first purchase is not counted) |
//! | `t_x` | recency | time from the first to the last purchase (BTYD meaning, **not** "time since last purchase") |
//! | `T` | age | time from the first purchase to the end of the observation window |
//! | `m` | monetary | mean spend of the repeat periods (first purchase excluded; 0 for one-time buyers) |
//!
//! Constraints checked by the fitters: `x` a non-negative integer, `0 <= t_x <= T`, `t_x = 0`
//! when `x = 0`, everything finite.
//!
//! # Models
//!
//! * [`bgnbd`]: BG/NBD, Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way",
//!   Marketing Science 24(2). Purchase counts and the probability a customer is still alive.
//! * [`mbgnbd`]: MBG/NBD, Batislam, Denizel & Filiztekin (2007), "Empirical validation and
//!   comparison of models for customer base analysis", IJRM 24(3): BG/NBD in which a customer
//!   may also drop out right after the first purchase.
//! * [`pareto_nbd`]: Pareto/NBD, Schmittlein, Morrison & Colombo (1987): exponential lifetimes
//!   instead of dropout after purchases; its likelihood integral computed by quadrature.
//! * [`purchase`]: the fitted purchase model, whichever it is, behind one scoring interface.
//! * [`gamma_gamma`]: Gamma-Gamma spend model, Fader & Hardie (2013), "The Gamma-Gamma Model of
//!   Monetary Value" (note 025). Expected spend per transaction.
//! * [`clv`]: discounted CLV from the two, compatible with `lifetimes` 0.11.3
//!   (`GammaGammaFitter.customer_lifetime_value`), plus the simple retention formula.
//!
//! Fitting is maximum likelihood over the log of each parameter (all parameters are > 0) with
//! the quasi-Newton minimiser in [`optimize`], an analytic gradient, identical customers
//! collapsed into weighted rows, and the per-row sums split across threads with rayon.

pub mod bgnbd;
pub mod clv;
pub(crate) mod distinct;
pub mod gamma_gamma;
pub mod intervals;
pub mod mbgnbd;
pub mod optimize;
pub mod pareto_nbd;
pub mod purchase;
pub(crate) mod special;

pub use bgnbd::{fit_bgnbd, BgNbdParams};
pub use clv::{
    batch_discounted_clv, batch_expected_purchases, batch_expected_spend, batch_prob_alive,
    batch_scores, discounted_clv, monthly_rate_from_annual, simple_retention_clv, ClvOptions,
    Scores,
};
pub use gamma_gamma::{fit_gamma_gamma, GammaGammaParams};
pub use mbgnbd::{fit_mbgnbd, MbgNbdParams};
pub use pareto_nbd::{fit_pareto_nbd, ParetoNbdParams};
pub use purchase::{ModelKind, PurchaseModel};

/// Errors of the model layer. Each message names what was wrong and what to try.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Two input columns have different lengths.
    #[error("input columns differ in length: {first} has {first_len} rows but {second} has {second_len}")]
    LengthMismatch {
        /// Name of the first column.
        first: &'static str,
        /// Length of the first column.
        first_len: usize,
        /// Name of the column whose length differs.
        second: &'static str,
        /// Length of that column.
        second_len: usize,
    },
    /// One customer's value is invalid.
    #[error("customer at row {index}: {field} = {value} is invalid: {reason}")]
    InvalidInput {
        /// 0-based row of the customer.
        index: usize,
        /// Name of the invalid input (e.g. `frequency`).
        field: &'static str,
        /// The invalid value.
        value: f64,
        /// Which constraint the value breaks.
        reason: &'static str,
    },
    /// No rows at all.
    #[error("{model}: no customers to fit (the input is empty)")]
    Empty {
        /// The model that was to be fitted.
        model: &'static str,
    },
    /// The data cannot identify the model (e.g. nobody purchased twice).
    #[error("{model}: cannot be fitted on these {customers} customers: {reason}")]
    NotIdentified {
        /// The model that cannot be fitted.
        model: &'static str,
        /// Number of customers in the input.
        customers: usize,
        /// Why the data do not identify the model.
        reason: &'static str,
    },
    /// A fit that stopped before the convergence test passed, turned into an error by
    /// [`FitReport::into_converged`].
    #[error("{model} did not converge after {iterations} iterations (gradient norm {grad_norm:.3e}): {message}; try penalizer_coef = 0.001 or more, or a larger max_iter")]
    NotConverged {
        /// The model that was fitted.
        model: &'static str,
        /// Iterations used.
        iterations: usize,
        /// Largest absolute gradient component at the stop (what the convergence test checks).
        grad_norm: f64,
        /// Why the minimiser stopped.
        message: String,
    },
    /// A fitting option is out of range.
    #[error("invalid fit option {name} = {value}: {reason}")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What the value must be.
        reason: &'static str,
    },
}

/// Options shared by the fitters.
///
/// The objective minimised is the *mean* negative log-likelihood per customer plus
/// `penalizer_coef * sum(params^2)`, exactly as in `lifetimes` 0.11.3, so a penalizer that works
/// there works here (for BG/NBD the penalty sees `alpha` in rescaled time, see [`bgnbd`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// L2 penalty on the (natural-scale) parameters; 0 = plain maximum likelihood.
    pub penalizer_coef: f64,
    /// Maximum number of quasi-Newton iterations.
    pub max_iter: usize,
    /// Convergence test: largest absolute gradient component of the objective (w.r.t. the
    /// log-parameters). `lifetimes` uses scipy's BFGS with `gtol = 1e-7`, the same test.
    pub tolerance: f64,
    /// With more than 4 × this many customers, the fit starts from the fit of every k-th
    /// customer (about this many; [`optimize::minimize_warm`]); 0 = always start cold. The
    /// optimum is the same (same convergence test, or a stall at the objective's precision
    /// that a cold fit would also accept); only the number of passes over all customers falls.
    /// The purchase models subsample the customers, Gamma-Gamma its repeat buyers.
    pub warm_start_customers: usize,
    /// Compute [`FitReport::covariance`] (a numerical Hessian: 2 × parameters more passes over
    /// all customers); only the prediction intervals need it.
    pub covariance: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer_coef: 0.0,
            max_iter: 500,
            tolerance: 1e-7,
            warm_start_customers: 50_000,
            covariance: true,
        }
    }
}

/// Customers of the most repeat purchases always in the purchase models' warm-start sample
/// ([`FitOptions::subsample`]).
pub(crate) const HEAVIEST_SAMPLED: usize = 100;

impl FitOptions {
    /// Sets the L2 penalty on the parameters.
    #[must_use]
    pub fn with_penalizer_coef(mut self, penalizer_coef: f64) -> Self {
        self.penalizer_coef = penalizer_coef;
        self
    }
    /// Sets the maximum number of quasi-Newton iterations.
    #[must_use]
    pub fn with_max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }
    /// Sets the convergence tolerance on the largest gradient component.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }
    /// Sets whether to compute [`FitReport::covariance`].
    #[must_use]
    pub fn with_covariance(mut self, covariance: bool) -> Self {
        self.covariance = covariance;
        self
    }
    /// Sets the size of the warm-start sample (0 = always start cold).
    #[must_use]
    pub fn with_warm_start_customers(mut self, customers: usize) -> Self {
        self.warm_start_customers = customers;
        self
    }

    /// The purchase models' warm-start sample of the customers `(frequency, recency, T)`, when
    /// there are more than 4 × [`FitOptions::warm_start_customers`]: every k-th customer (k
    /// chosen to keep about that many; the customers arrive in id order, so this is a
    /// systematic sample across the ids) at weight k, and the [`HEAVIEST_SAMPLED`] customers
    /// of the most repeat purchases at weight 1 whatever their place. The weighted sum of the
    /// sample's terms then estimates the full sum, and a customer whose terms alone move the
    /// fit (a guest or placeholder id with hundreds of purchase days) counts in the sample as
    /// in the full fit instead of k times or not at all: measured on the 50 M-row workload
    /// with 40 % of the orders under one id, the systematic sample alone left the BG/NBD and
    /// MBG/NBD fits too far from the full optimum, and both restarted cold (2.6 and 6.0 s).
    /// Returns the sample's distinct rows with their weights, and the customers sampled.
    pub(crate) fn subsample(&self, columns: [&[f64]; 3]) -> Option<(distinct::Distinct<3>, usize)> {
        let n = columns[0].len();
        let k = self.subsample_step(n)?;
        let [x, tx, t] = columns;
        // Above the HEAVIEST_SAMPLED-th largest frequency (ties at it are not taken).
        let mut top = x.to_vec();
        let h = HEAVIEST_SAMPLED.min(n);
        let (_, threshold, _) = top.select_nth_unstable_by(n - h, f64::total_cmp);
        let threshold = *threshold;
        let mut picked: Vec<([f64; 3], u32)> = (0..n)
            .filter_map(|i| match x[i].total_cmp(&threshold).is_gt() {
                true => Some(([x[i], tx[i], t[i]], 1)),
                false => (i % k == 0).then_some(([x[i], tx[i], t[i]], k as u32)),
            })
            .collect();
        let customers = picked.len();
        picked.sort_unstable_by(|a, b| {
            (a.0[0].total_cmp(&b.0[0]))
                .then(a.0[1].total_cmp(&b.0[1]))
                .then(a.0[2].total_cmp(&b.0[2]))
        });
        let mut d = distinct::Distinct {
            rows: Vec::with_capacity(customers),
            counts: Vec::with_capacity(customers),
        };
        for (row, w) in picked {
            let same = d.rows.last().is_some_and(|last: &[f64; 3]| {
                last.iter()
                    .zip(&row)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            });
            match (same, d.counts.last_mut()) {
                (true, Some(c)) => *c += w,
                _ => {
                    d.rows.push(row);
                    d.counts.push(w);
                }
            }
        }
        Some((d, customers))
    }

    /// The step k of [`FitOptions::subsample`] for `n` customers, or None for a cold start.
    pub(crate) fn subsample_step(&self, n: usize) -> Option<usize> {
        let m = self.warm_start_customers;
        (m > 0 && n > 4 * m).then(|| n.div_ceil(m))
    }

    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        if !(self.penalizer_coef.is_finite() && self.penalizer_coef >= 0.0) {
            return Err(ModelError::InvalidOption {
                name: "penalizer_coef",
                value: self.penalizer_coef,
                reason: "must be a finite number >= 0",
            });
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(ModelError::InvalidOption {
                name: "tolerance",
                value: self.tolerance,
                reason: "must be a finite number > 0 (e.g. 1e-7)",
            });
        }
        if self.max_iter == 0 {
            return Err(ModelError::InvalidOption {
                name: "max_iter",
                value: 0.0,
                reason: "must be at least 1 (e.g. 500)",
            });
        }
        Ok(())
    }
}

/// The outcome of a fit. A report with `converged == false` is returned, not hidden: check it,
/// or call [`FitReport::into_converged`] to turn it into an error.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport<P> {
    /// Fitted parameters, in the caller's time unit.
    pub params: P,
    /// Total (summed over customers) log-likelihood at `params`, without the penalty, in the
    /// caller's time unit (the figure papers report, e.g. -9582.4 for CDNOW).
    pub log_likelihood: f64,
    /// Quasi-Newton iterations used.
    pub iterations: usize,
    /// Whether the gradient test passed and no parameter ran off to a boundary.
    pub converged: bool,
    /// Why the optimiser stopped, plus any warning (e.g. Gamma-Gamma `q` constrained).
    pub message: String,
    /// Set when the maximum lies on a boundary of the parameter space (e.g. BG/NBD with no
    /// dropout, `a → 0`): what the limit is and how customers are scored there. The fit is
    /// still `converged`; the parameters are the limiting model's.
    pub boundary: Option<String>,
    /// The limiting model a boundary fit is scored with (None at an interior optimum).
    pub limit: Option<Limit>,
    /// Asymptotic covariance of the log-parameters (row-major, parameters in their documented
    /// order), the inverse Hessian of −LL at the optimum. `None` at a boundary, for a fit that
    /// did not converge, or when the Hessian is not positive definite.
    pub covariance: Option<Vec<f64>>,
    /// Free parameters of the model returned (for AIC/BIC): all of them at an interior optimum,
    /// fewer at a boundary (2 for the no-dropout NBD limit, 3 for one dropout probability).
    pub free_parameters: usize,
    /// Customers that entered the likelihood.
    pub customers: usize,
    /// Distinct likelihood rows after collapsing identical customers.
    pub distinct_rows: usize,
    /// Largest absolute gradient component of the objective at the end.
    pub grad_norm: f64,
}

/// Which limiting model a fit on a boundary of the parameter space is scored with (see
/// [`FitReport::boundary`] for the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Nobody drops out: the NBD model (BG/NBD and MBG/NBD at `a = 0`, Pareto/NBD at `s = 0`).
    /// Only `r` and `α` are free.
    NoDropout,
    /// BG/NBD and MBG/NBD with `a, b → ∞` at a fixed `a/(a+b)`: every customer drops out with
    /// the same probability after each purchase.
    SameDropout,
    /// A parameter ran off where the likelihood is flat and the data do not identify it; scored
    /// at the values reached. No covariance (the Hessian is singular there).
    RanOff,
}

impl<P> FitReport<P> {
    /// The same report with the parameters converted.
    pub fn map<Q>(self, f: impl FnOnce(P) -> Q) -> FitReport<Q> {
        FitReport {
            params: f(self.params),
            log_likelihood: self.log_likelihood,
            iterations: self.iterations,
            converged: self.converged,
            message: self.message,
            boundary: self.boundary,
            limit: self.limit,
            covariance: self.covariance,
            free_parameters: self.free_parameters,
            customers: self.customers,
            distinct_rows: self.distinct_rows,
            grad_norm: self.grad_norm,
        }
    }

    /// `Ok(self)` if the fit converged, otherwise [`ModelError::NotConverged`].
    pub fn into_converged(self, model: &'static str) -> Result<Self, ModelError> {
        if self.converged {
            Ok(self)
        } else {
            Err(ModelError::NotConverged {
                model,
                iterations: self.iterations,
                grad_norm: self.grad_norm,
                message: self.message,
            })
        }
    }
}

/// Chunk size for the rayon split of likelihood sums: big enough that scheduling costs nothing
/// next to a few thousand `ln`/`exp`, small enough to balance 2..64 threads on 1 M rows.
pub(crate) const PAR_CHUNK: usize = 4096;

/// Largest |log-parameter| accepted as an interior optimum. Beyond e^±25 a parameter has run
/// off to a boundary (the likelihood does not identify it) and the fit is reported as not
/// converged rather than returned as a silent number.
pub(crate) const LOG_PARAM_LIMIT: f64 = 25.0;

/// The covariance of a purchase model's 4 log-parameters at its no-dropout limit: the 2×2
/// covariance of the free `(ln r, ln α)` from the Hessian of the limit's mean objective at
/// `theta` (over `weight` customers), embedded with zero variance for the dropout parameters
/// (one at −∞, the other unidentified). `None` when the Hessian is not positive definite.
pub(crate) fn no_dropout_covariance(
    objective: &dyn Fn(&[f64], &mut [f64]) -> f64,
    theta: &[f64],
    weight: f64,
) -> Option<Vec<f64>> {
    let mut f = objective;
    let c = optimize::covariance(&optimize::hessian(&mut f, theta), 2, weight)?;
    let mut full = vec![0.0; 16];
    full[0] = c[0];
    full[1] = c[1];
    full[4] = c[2];
    full[5] = c[3];
    Some(full)
}

/// The mean objective `−ll/W + pen·Σp²` of a fit over log-parameters θ (p = e^θ, the natural
/// parameters), from the log-likelihood `ll` over `weight` customers and its gradient `g`
/// w.r.t. p; writes the objective's gradient w.r.t. θ into `grad`. The penalty is lifetimes'.
pub(crate) fn penalized_mean(
    ll: f64,
    g: &[f64],
    p: &[f64],
    weight: f64,
    pen: f64,
    grad: &mut [f64],
) -> f64 {
    let mut f = -ll / weight;
    for k in 0..p.len() {
        grad[k] = -g[k] * p[k] / weight + 2.0 * pen * p[k] * p[k];
        f += pen * p[k] * p[k];
    }
    f
}

/// The log-likelihood, in the caller's time, of customers whose mean penalized objective
/// ([`penalized_mean`], over times multiplied by `scale`) is `f` at the parameters `p` it
/// penalizes: what a full pass over the rows in the caller's time would give, without that
/// pass. Rescaling time by `c` (with the scale parameters) multiplies each customer's
/// likelihood by `c^{−x}` in BG/NBD, MBG/NBD and Pareto/NBD alike, so the log-likelihood gains
/// `Σx · ln c`.
pub(crate) fn loglik_at(f: f64, p: &[f64], weight: f64, pen: f64, sum_x: f64, scale: f64) -> f64 {
    let penalty: f64 = p.iter().map(|v| pen * v * v).sum();
    (penalty - f) * weight + sum_x * scale.ln()
}

/// The end of a fit's message that says it started from a subsample's fit ("" for a cold
/// start).
pub(crate) fn warm_note(warm: Option<&optimize::WarmStart>) -> String {
    match warm {
        Some(w) if w.used => format!(
            " over all customers, started from the fit of a {}-customer subsample ({} iterations)",
            w.customers, w.fit.iterations
        ),
        Some(w) => format!(
            " from the cold start (a warm start from the fit of a {}-customer subsample did not \
             converge within {} iterations)",
            w.customers,
            optimize::WARM_MAX_ITER
        ),
        None => String::new(),
    }
}

/// A fit that stalls with its gradient within this factor of the tolerance is accepted: on
/// flat likelihoods over many customers the objective's rounding error (~1e-14 of its value)
/// hides any further decrease, so the tolerance cannot be met in double precision.
pub(crate) const STALL_FACTOR: f64 = 100.0;

/// If `m` stopped without converging but within [`STALL_FACTOR`] of the gradient tolerance,
/// the note that explains why it is accepted.
pub(crate) fn stalled_at_precision(m: &optimize::Minimum, tolerance: f64) -> Option<String> {
    (!m.converged && m.grad_norm.is_finite() && m.grad_norm <= STALL_FACTOR * tolerance).then(
        || {
            format!(
            "; accepted at gradient norm {:.1e} (tolerance {tolerance:.0e}): the likelihood is \
             too flat for double precision to locate its maximum more closely",
            m.grad_norm
        )
        },
    )
}

/// Checks that a value is finite, reporting row and field otherwise.
pub(crate) fn check_finite(
    index: usize,
    field: &'static str,
    value: f64,
) -> Result<(), ModelError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ModelError::InvalidInput {
            index,
            field,
            value,
            reason: "must be a finite number (NaN or infinity found)",
        })
    }
}

/// Validates one customer's `(x, t_x, T)` against the data model above.
pub(crate) fn check_customer(index: usize, x: f64, tx: f64, t: f64) -> Result<(), ModelError> {
    check_finite(index, "frequency", x)?;
    check_finite(index, "recency", tx)?;
    check_finite(index, "T", t)?;
    let bad = |field, value, reason| {
        Err(ModelError::InvalidInput {
            index,
            field,
            value,
            reason,
        })
    };
    if x < 0.0 {
        return bad(
            "frequency",
            x,
            "must be >= 0 (number of repeat purchase periods)",
        );
    }
    if x.fract() != 0.0 {
        // lifetimes casts to int first and silently truncates; we refuse.
        return bad(
            "frequency",
            x,
            "must be a whole number of repeat purchase periods",
        );
    }
    if tx < 0.0 {
        return bad(
            "recency",
            tx,
            "must be >= 0 (time from first to last purchase)",
        );
    }
    if t < 0.0 {
        return bad(
            "T",
            t,
            "must be >= 0 (time from first purchase to the end of the window)",
        );
    }
    if tx > t {
        return bad(
            "recency",
            tx,
            "is larger than T; recency is first-to-last purchase, not time since last purchase",
        );
    }
    if x == 0.0 && tx != 0.0 {
        return bad(
            "recency",
            tx,
            "must be 0 when frequency is 0 (no repeat purchase)",
        );
    }
    Ok(())
}

/// The checks every purchase-model fit starts with: options, equal lengths, at least one
/// customer, valid `(x, t_x, T)` rows, and someone with a repeat purchase. Returns the time
/// scale `1 / max T` the fits optimise in (as `lifetimes` does).
pub(crate) fn check_purchase_inputs(
    model: &'static str,
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    opts: &FitOptions,
) -> Result<f64, ModelError> {
    opts.validate()?;
    check_len("frequency", frequency.len(), "recency", recency.len())?;
    check_len("frequency", frequency.len(), "T", t.len())?;
    if frequency.is_empty() {
        return Err(ModelError::Empty { model });
    }
    for i in 0..frequency.len() {
        check_customer(i, frequency[i], recency[i], t[i])?;
    }
    if frequency.iter().all(|&x| x == 0.0) {
        return Err(ModelError::NotIdentified {
            model,
            customers: frequency.len(),
            reason: "no customer made a repeat purchase (all frequencies are 0), so the purchase \
                     rate and the dropout parameters are not identified; use a longer \
                     calibration window or more customers",
        });
    }
    let max_t = t.iter().fold(0.0_f64, |m, &v| m.max(v));
    Ok(if max_t > 0.0 { 1.0 / max_t } else { 1.0 })
}

pub(crate) fn check_len(
    first: &'static str,
    first_len: usize,
    second: &'static str,
    second_len: usize,
) -> Result<(), ModelError> {
    if first_len == second_len {
        Ok(())
    } else {
        Err(ModelError::LengthMismatch {
            first,
            first_len,
            second,
            second_len,
        })
    }
}

#[cfg(test)]
pub(crate) mod testdata;
