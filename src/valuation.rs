//! Customer valuation: the models of [`crate::models`] applied to a customer summary.
//!
//! Pure: frames and plain structs in, plain columns out; no I/O.
//!
//! - The purchase model (BG/NBD, MBG/NBD) is fitted on (`frequency`, `recency`, `T`) of every customer, Gamma-Gamma on
//!   (`frequency`, `monetary`) of the customers with `frequency > 0` and `monetary > 0`; the two
//!   fits run at the same time (`rayon::join`), each spreading its likelihood sums over threads.
//! - Customers outside the Gamma-Gamma fitting set (one-time buyers, non-positive mean spend) get
//!   the population mean spend `v·p/(q−1)` as `expected_spend`.
//! - `clv` = Σ_{k=1..H} margin · expected_spend · (E[purchases by k·M days] − E[purchases by
//!   (k−1)·M days]) / (1+d)^k − acquisition_cost, M = `days_per_month`, d the monthly rate.
//! - `clv_simple` = margin · `amount_last_365d` · r / (1 + i − r): r the annual retention rate
//!   (given, or measured on the data), i the annual discount rate.
//! - The purchase model is `clv.model`: one of [`ModelKind`], or `auto`, which fits them all in
//!   parallel and keeps the lowest holdout MAE (with a holdout) or the lowest BIC; `model_fit`
//!   has a row per candidate, `chosen` marks the one in `customer_features`.
//! - A fit at a boundary of the parameter space (no dropout: BG/NBD → NBD) is a converged fit,
//!   scored with the limiting model, and its `boundary` column says so.
//! - A fit that fails or does not converge fails the date ([`FitFailure`], exit 3), or with
//!   `clv.on_fit_failure = "null"` leaves the model columns null and marks the date degraded;
//!   never a silent wrong number.

use crate::models::bgnbd::Variant;
use crate::models::distinct::Distinct;
use crate::models::{
    self, fit_gamma_gamma, ClvOptions, FitOptions, FitReport, GammaGammaParams, ModelError,
    ModelKind, PurchaseModel,
};
use polars::prelude::*;
use polars_arrow::bitmap::Bitmap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Which purchase model a job uses (`clv.model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ModelChoice {
    /// Fit every model in [`ModelKind::ALL`] and keep the best: lowest holdout MAE when the job
    /// has a holdout, else lowest BIC.
    Auto,
    /// Fit this one only.
    Only(ModelKind),
}

impl ModelChoice {
    /// The models to fit.
    pub fn candidates(self) -> Vec<ModelKind> {
        match self {
            ModelChoice::Auto => ModelKind::ALL.to_vec(),
            ModelChoice::Only(k) => vec![k],
        }
    }
}

/// What a run does when no purchase model (or the spend model) can be fitted
/// (`clv.on_fit_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum OnFitFailure {
    /// The date fails (exit 3) and nothing is published.
    Fail,
    /// The model columns are null, the `model_fit` row says why, and the date is published as
    /// degraded.
    Null,
}

/// Validated CLV settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClvSettings {
    /// The purchase model(s) to fit (`clv.model`).
    pub model: ModelChoice,
    /// What a date does when a model cannot be fitted (`clv.on_fit_failure`).
    pub on_fit_failure: OnFitFailure,
    /// Months of future purchases the discounted `clv` sums over (`H`).
    pub horizon_months: u32,
    /// Monthly discount rate `d` of `clv`: given, or derived from the annual rate.
    pub monthly_discount_rate: f64,
    /// Annual discount rate `i` of `clv_simple`: given, or derived from the monthly rate.
    pub annual_discount_rate: f64,
    /// Share of spend that is profit, applied to `clv` and `clv_simple`.
    pub margin: f64,
    /// Subtracted once from each customer's `clv`.
    pub acquisition_cost: f64,
    /// Days in a CLV month step (`M`).
    pub days_per_month: f64,
    /// Horizon of the `expected_purchases` column, in days.
    pub purchase_horizon_days: f64,
    /// L2 penalty of the model fits (lifetimes' `penalizer_coef`).
    pub penalizer_coef: f64,
    /// Annual retention rate `r` of `clv_simple`; `None`: measured on the data.
    pub retention_rate: Option<f64>,
    /// Days held out for `model_diagnostics` (`--holdout-days` or `clv.holdout_days`); `None`:
    /// no holdout.
    pub holdout_days: Option<i64>,
    /// Parameter draws behind the `_p05`/`_p95` columns; 0 = no intervals.
    pub interval_draws: usize,
}

/// A model that could not be fitted, with `clv.on_fit_failure = "fail"`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} could not be fitted: {detail}; try clv.penalizer_coef = 0.001 (or more), another clv.model, a longer window, or clv.on_fit_failure = \"null\" to publish without the model columns")]
pub struct FitFailure {
    /// `"the purchase model"` or `"the spend model (Gamma-Gamma)"`.
    pub what: &'static str,
    /// Each candidate's reason.
    pub detail: String,
}

/// Errors of [`value_customers`].
#[derive(Debug, thiserror::Error)]
pub enum ValuationError {
    /// A model could not be fitted and `clv.on_fit_failure = "fail"`.
    #[error(transparent)]
    Fit(#[from] FitFailure),
    /// A summary column is missing or not numeric.
    #[error(transparent)]
    Frame(#[from] PolarsError),
    /// The models refused a customer's values while scoring (e.g. recency larger than T).
    #[error("scoring customers: {0}")]
    Score(#[from] ModelError),
}

/// One row of the `model_fit` table.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRow {
    /// `bgnbd`, `mbgnbd` or `gamma_gamma`.
    pub model: &'static str,
    /// Named parameters; `None` for a parameter the fit does not identify.
    pub params: Vec<(&'static str, Option<f64>)>,
    /// Log-likelihood at the fitted parameters; `None` when the fit failed or it is not finite.
    pub log_likelihood: Option<f64>,
    /// `2k − 2 LL` and `k ln n − 2 LL` (k parameters, n customers in the likelihood).
    pub aic: Option<f64>,
    /// Bayesian information criterion (see `aic`); lower is better.
    pub bic: Option<f64>,
    /// Mean absolute error of the predicted repeat purchases in the holdout (fitted on the
    /// calibration window), when the job has a holdout.
    pub holdout_mae: Option<f64>,
    /// Optimiser iterations used (0 when the fit failed).
    pub iterations: i64,
    /// Whether the optimiser converged; only converged fits with a finite likelihood are used.
    pub converged: bool,
    /// Whether this model's values are the ones in `customer_features`.
    pub chosen: bool,
    /// What limit the fit reached, if any (see [`models::FitReport::boundary`]).
    pub boundary: Option<String>,
    /// Customers in the likelihood (Gamma-Gamma: repeat buyers with positive spend); every
    /// customer when the fit failed.
    pub customers: i64,
    /// Distinct likelihood rows after collapsing identical customers (0 when the fit failed).
    pub distinct_rows: i64,
    /// Wall-clock seconds of the fit.
    pub fit_seconds: f64,
    /// Why the optimiser stopped, plus any warning; the error when the fit failed.
    pub message: String,
}

/// Per-customer model columns (None where the model is unavailable) and the fit rows.
#[derive(Debug, Clone, Default)]
pub struct Valuation {
    /// P(alive) of each customer as of the date, in the summary's row order.
    pub prob_alive: Float64Chunked,
    /// Expected purchases of each customer in the next `purchase_horizon_days` days.
    pub expected_purchases: Float64Chunked,
    /// Expected spend per purchase of each customer (Gamma-Gamma; the population mean for one-time
    /// buyers).
    pub expected_spend: Float64Chunked,
    /// Discounted CLV of each customer over `horizon_months` (see the module doc).
    pub clv: Float64Chunked,
    /// Simple retention CLV of each customer; null when no retention rate is known.
    pub clv_simple: Float64Chunked,
    /// The `model_fit` rows: one per purchase-model candidate, then Gamma-Gamma.
    pub fits: Vec<FitRow>,
    /// The chosen purchase model, if one could be fitted.
    pub purchase: Option<PurchaseModel>,
    /// The fitted Gamma-Gamma spend model, if it could be fitted.
    pub gamma_gamma: Option<GammaGammaParams>,
    /// Why the result is degraded (a model left null under `on_fit_failure = "null"`).
    pub degraded: Vec<String>,
    /// 5th/95th percentile columns `(name, values)` from parameter uncertainty, when
    /// `interval_draws > 0`: P(alive), expected purchases and CLV, null where unavailable.
    pub intervals: Vec<(&'static str, Float64Chunked)>,
}

pub use crate::columns::f64_column;

/// A fit result and its wall time in seconds.
pub type Timed<P> = (Result<FitReport<P>, ModelError>, f64);

/// Fit one purchase model.
pub fn fit_purchase(
    kind: ModelKind,
    x: &[f64],
    tx: &[f64],
    t: &[f64],
    opts: &FitOptions,
) -> Timed<PurchaseModel> {
    fit_purchase_on(kind, x, tx, t, None, opts)
}

/// [`fit_purchase`], with the customers' distinct `(x, t_x, T)` rows when the caller has them.
fn fit_purchase_on(
    kind: ModelKind,
    x: &[f64],
    tx: &[f64],
    t: &[f64],
    rows: Option<&Distinct<3>>,
    opts: &FitOptions,
) -> Timed<PurchaseModel> {
    let t0 = Instant::now();
    let res = match kind {
        ModelKind::BgNbd => models::bgnbd::fit_variant_on(x, tx, t, rows, opts, Variant::Bg)
            .map(|r| r.map(PurchaseModel::BgNbd)),
        ModelKind::MbgNbd => models::mbgnbd::fit_mbgnbd_on(x, tx, t, rows, opts)
            .map(|r| r.map(PurchaseModel::MbgNbd)),
        ModelKind::ParetoNbd => models::pareto_nbd::fit_pareto_nbd_on(x, tx, t, rows, opts)
            .map(|r| r.map(PurchaseModel::ParetoNbd)),
    };
    (res, t0.elapsed().as_secs_f64())
}

/// Fit the candidate purchase models (in parallel, with `purchase_opts`) and Gamma-Gamma
/// (repeat buyers, with `spend_opts`) at the same time.
pub fn fit_models(
    kinds: &[ModelKind],
    x: &[f64],
    tx: &[f64],
    t: &[f64],
    m: &[f64],
    purchase_opts: &FitOptions,
    spend_opts: &FitOptions,
) -> (
    Vec<(ModelKind, Timed<PurchaseModel>)>,
    Timed<GammaGammaParams>,
) {
    rayon::join(
        || {
            // Several candidates share one collapse of the customers into distinct rows
            // (each fit made its own: a parallel sort of every customer).
            let rows = (kinds.len() > 1 && x.len() == tx.len() && x.len() == t.len())
                .then(|| models::distinct::distinct([x, tx, t]));
            kinds
                .par_iter()
                .map(|&k| {
                    (
                        k,
                        fit_purchase_on(k, x, tx, t, rows.as_ref(), purchase_opts),
                    )
                })
                .collect()
        },
        || {
            let t0 = Instant::now();
            (
                fit_gamma_gamma(x, m, spend_opts),
                t0.elapsed().as_secs_f64(),
            )
        },
    )
}

fn usable<P>(r: &Result<FitReport<P>, ModelError>) -> bool {
    matches!(r, Ok(f) if f.converged && f.log_likelihood.is_finite())
}

fn fit_row<P>(
    model: &'static str,
    res: &Result<FitReport<P>, ModelError>,
    params: impl Fn(&P) -> Vec<(&'static str, Option<f64>)>,
    secs: f64,
    n: usize,
) -> FitRow {
    match res {
        Ok(r) => {
            let ll = r.log_likelihood.is_finite().then_some(r.log_likelihood);
            let n_fit = r.customers as f64;
            let k = r.free_parameters;
            FitRow {
                model,
                params: params(&r.params),
                log_likelihood: ll,
                aic: ll.map(|ll| 2.0 * k as f64 - 2.0 * ll),
                bic: ll.map(|ll| k as f64 * n_fit.ln() - 2.0 * ll),
                holdout_mae: None,
                iterations: r.iterations as i64,
                converged: r.converged,
                chosen: false,
                boundary: r.boundary.clone(),
                customers: r.customers as i64,
                distinct_rows: r.distinct_rows as i64,
                fit_seconds: secs,
                message: r.message.clone(),
            }
        }
        Err(e) => FitRow {
            model,
            params: Vec::new(),
            log_likelihood: None,
            aic: None,
            bic: None,
            holdout_mae: None,
            iterations: 0,
            converged: false,
            chosen: false,
            boundary: None,
            customers: n as i64,
            distinct_rows: 0,
            fit_seconds: secs,
            message: e.to_string(),
        },
    }
}

/// Why a fit is not usable, for logs and errors.
fn reason<P>(model: &str, r: &Result<FitReport<P>, ModelError>) -> String {
    match r {
        Ok(f) => format!(
            "{model} did not converge ({} iterations): {}",
            f.iterations, f.message
        ),
        Err(e) => format!("{model}: {e}"),
    }
}

/// A model that could not be fitted: the date fails (`on_fit_failure = "fail"`), or its columns
/// stay null and the reason joins `degraded`.
fn unfitted(
    s: &ClvSettings,
    what: &'static str,
    columns: &str,
    detail: String,
    degraded: &mut Vec<String>,
) -> Result<(), ValuationError> {
    if s.on_fit_failure == OnFitFailure::Fail {
        return Err(FitFailure { what, detail }.into());
    }
    tracing::warn!(%detail, "{what} could not be fitted; {columns} are left null (clv.on_fit_failure = \"null\")");
    let name = what.trim_start_matches("the ");
    degraded.push(format!("{name} not fitted: {detail}"));
    Ok(())
}

/// Scores closer than this (relative) tie. At the no-dropout boundary all three candidates are
/// the NBD model, and their log-likelihoods, reached by different code paths, differ by about
/// 1e-14 relative (on the 50 M-row workload the choice went to whichever path rounded best);
/// a real difference of BIC is a unit or more.
const TIE: f64 = 1e-10;

/// Index of the chosen candidate among the usable ones: lowest holdout MAE when every usable
/// candidate has one, else lowest BIC; ties (within [`TIE`]) keep the earlier (simpler, better
/// known) model.
fn choose(rows: &[FitRow], usable: &[bool]) -> Option<usize> {
    let ok: Vec<usize> = (0..rows.len()).filter(|&i| usable[i]).collect();
    let by = |key: &dyn Fn(&FitRow) -> Option<f64>| -> Option<usize> {
        let scores: Option<Vec<f64>> = ok.iter().map(|&i| key(&rows[i])).collect();
        let scores = scores?;
        let mut best: Option<(usize, f64)> = None;
        for (&i, &v) in ok.iter().zip(&scores) {
            best = match best {
                Some((b, bv)) if !(bv.is_nan() || v < bv - TIE * bv.abs()) => Some((b, bv)),
                _ => Some((i, v)),
            };
        }
        best.map(|(b, _)| b)
    };
    by(&|r| r.holdout_mae).or_else(|| by(&|r| r.bic))
}

/// Value every customer of `summary` (columns `frequency`, `recency`, `T`, `monetary`,
/// `amount_last_365d`). `retention` is the annual retention rate for `clv_simple`, if known;
/// `holdout_mae` the holdout error of each candidate, if the job has a holdout.
pub fn value_customers(
    summary: &DataFrame,
    s: &ClvSettings,
    unit_days: f64,
    retention: Option<f64>,
    holdout_mae: &[(ModelKind, f64)],
) -> Result<Valuation, ValuationError> {
    let x = f64_column(summary, "frequency")?;
    let tx = f64_column(summary, "recency")?;
    let t = f64_column(summary, "T")?;
    let m = f64_column(summary, "monetary")?;
    let last_year = f64_column(summary, "amount_last_365d")?;
    let n = x.len();
    let kinds = s.model.candidates();
    let opts = FitOptions::default()
        .with_penalizer_coef(s.penalizer_coef)
        .with_covariance(s.interval_draws > 0);
    // With several candidates, only the chosen one's covariance is needed (for the intervals):
    // it is computed after the choice instead of for every candidate. (Measured on the 10 M-row
    // scale workload, where all three fits are interior: the Hessians of the two candidates not
    // chosen were about half of Pareto/NBD's fit time, the longest of the three.)
    let defer_covariance = opts.covariance && kinds.len() > 1;
    let purchase_opts = opts.with_covariance(!defer_covariance && opts.covariance);
    let t_fits = Instant::now();
    let (mut purchase_fits, (gg, gg_s)) =
        fit_models(&kinds, &x, &tx, &t, &m, &purchase_opts, &opts);
    let fits_s = t_fits.elapsed().as_secs_f64();
    let mut fits: Vec<FitRow> = purchase_fits
        .iter()
        .map(|(k, (res, secs))| {
            let mut row = fit_row(k.name(), res, |p| p.params(), *secs, n);
            row.holdout_mae = holdout_mae
                .iter()
                .find(|(hk, _)| hk == k)
                .map(|(_, mae)| *mae);
            row
        })
        .collect();
    let ok: Vec<bool> = purchase_fits.iter().map(|(_, (r, _))| usable(r)).collect();
    let chosen = choose(&fits, &ok);
    let mut degraded = Vec::new();
    let purchase = match chosen {
        Some(i) => {
            fits[i].chosen = true;
            if defer_covariance {
                let t0 = Instant::now();
                let rep = purchase_fits[i].1 .0.as_mut().expect("usable fit");
                rep.covariance = rep.params.covariance(rep.limit, &x, &tx, &t, &opts);
                fits[i].fit_seconds += t0.elapsed().as_secs_f64();
            }
            let rep = purchase_fits[i].1 .0.as_ref().expect("usable fit");
            if let Some(b) = &rep.boundary {
                tracing::warn!(model = %purchase_fits[i].0, boundary = %b, "purchase model at a boundary");
            }
            Some(rep.params)
        }
        None => {
            let detail = purchase_fits
                .iter()
                .map(|(k, (r, _))| reason(k.name(), r))
                .collect::<Vec<_>>()
                .join("; ");
            unfitted(
                s,
                "the purchase model",
                "prob_alive, expected_purchases and clv",
                detail,
                &mut degraded,
            )?;
            None
        }
    };
    let mut gg_row = fit_row(
        "gamma_gamma",
        &gg,
        |p: &GammaGammaParams| vec![("p", Some(p.p)), ("q", Some(p.q)), ("v", Some(p.v))],
        gg_s,
        n,
    );
    let ggp = if usable(&gg) {
        gg_row.chosen = true;
        let rep = gg.as_ref().expect("usable fit");
        if rep.message.starts_with("warning") {
            tracing::warn!(model = "gamma_gamma", detail = %rep.message, "model fit warning");
        }
        Some(rep.params)
    } else {
        let detail = reason("gamma_gamma", &gg);
        unfitted(
            s,
            "the spend model (Gamma-Gamma)",
            "expected_spend and clv",
            detail,
            &mut degraded,
        )?;
        None
    };
    fits.push(gg_row);
    // The choice, with the chosen candidate's deferred covariance.
    let choice_s = t_fits.elapsed().as_secs_f64() - fits_s;
    let t_scores = Instant::now();
    let none = || Float64Chunked::full_null(PlSmallStr::EMPTY, n);
    let some = finite;
    let clv_opts = ClvOptions::default()
        .with_horizon_months(s.horizon_months)
        .with_monthly_discount_rate(s.monthly_discount_rate)
        .with_margin(s.margin)
        .with_days_per_month(s.days_per_month)
        .with_time_unit_days(unit_days)
        .with_acquisition_cost(s.acquisition_cost);
    let expected_spend = match &ggp {
        Some(g) => some(models::batch_expected_spend(g, &x, &m)?),
        None => none(),
    };
    let (prob_alive, expected_purchases, clv) = match &purchase {
        Some(p) => {
            let sc = models::batch_scores(
                p,
                ggp.as_ref(),
                s.purchase_horizon_days,
                unit_days,
                &x,
                &tx,
                &t,
                &m,
                &clv_opts,
            )?;
            (
                some(sc.prob_alive),
                some(sc.expected_purchases),
                sc.clv.map_or_else(none, some),
            )
        }
        None => (none(), none(), none()),
    };
    let scores_s = t_scores.elapsed().as_secs_f64();
    tracing::debug!(fits_s, choice_s, scores_s, "model fits and point scores");
    let intervals = if s.interval_draws > 0 {
        let chosen_cov = chosen.and_then(|i| {
            purchase_fits[i]
                .1
                 .0
                .as_ref()
                .ok()
                .and_then(|r| r.covariance.clone())
        });
        let gg_cov = gg.as_ref().ok().and_then(|r| r.covariance.clone());
        let opts = clv_opts;
        let t0 = Instant::now();
        let cols = interval_columns(
            purchase.as_ref().zip(chosen_cov.as_deref()),
            ggp.as_ref().zip(gg_cov.as_deref()),
            s.interval_draws,
            s.purchase_horizon_days / unit_days,
            (&x, &tx, &t, &m),
            &opts,
        );
        tracing::debug!(
            draws = s.interval_draws,
            elapsed_s = t0.elapsed().as_secs_f64(),
            "prediction intervals"
        );
        cols
    } else {
        Vec::new()
    };
    let r = s.retention_rate.or(retention);
    let clv_simple = match r {
        Some(r) => finite(
            last_year
                .iter()
                .map(|&v| models::simple_retention_clv(s.margin * v, r, s.annual_discount_rate))
                .collect(),
        ),
        None => {
            tracing::warn!("no annual retention rate: the history is shorter than two years and clv.retention_rate is not set; clv_simple is left null");
            none()
        }
    };
    Ok(Valuation {
        prob_alive,
        expected_purchases,
        expected_spend,
        clv,
        clv_simple,
        fits,
        purchase,
        gamma_gamma: ggp,
        degraded,
        intervals,
    })
}

/// `values` as a column (unnamed), null where not finite. The vector becomes the column's
/// buffer without a copy: held as `Vec<Option<f64>>` (16 bytes a value) and copied into the
/// column later, the valuation's eleven columns took 330 MB more at 1.9 M customers, in fresh
/// pages that the kernel cleared (a third of the `customer_features` step's time).
fn finite(mut values: Vec<f64>) -> Float64Chunked {
    let valid: Bitmap = values.iter().map(|v| v.is_finite()).collect();
    let validity = match valid.unset_bits() {
        0 => None,
        _ => {
            // A fixed value under each null, so that nothing depends on what was there.
            for (v, ok) in values.iter_mut().zip(valid.iter()) {
                if !ok {
                    *v = 0.0;
                }
            }
            Some(valid)
        }
    };
    Float64Chunked::from_vec_validity(PlSmallStr::EMPTY, values, validity)
}

/// Fixed seeds of the parameter draws (reruns stay bit-identical).
const PURCHASE_SEED: u64 = 0x5EED_0001;
const SPEND_SEED: u64 = 0x5EED_0002;

/// The six interval columns; null where the model, its covariance (a boundary fit has none) or
/// the spend model is missing, with a WARN saying why.
fn interval_columns(
    purchase: Option<(&PurchaseModel, &[f64])>,
    spend: Option<(&GammaGammaParams, &[f64])>,
    draws: usize,
    horizon_units: f64,
    (x, tx, t, m): (&[f64], &[f64], &[f64], &[f64]),
    opts: &ClvOptions,
) -> Vec<(&'static str, Float64Chunked)> {
    let n = x.len();
    let names = [
        "prob_alive_p05",
        "prob_alive_p95",
        "expected_purchases_p05",
        "expected_purchases_p95",
        "clv_p05",
        "clv_p95",
    ];
    let null = || Float64Chunked::full_null(PlSmallStr::EMPTY, n);
    let nulls = || names.iter().map(|&c| (c, null())).collect();
    let Some((model, cov)) = purchase else {
        tracing::warn!("no prediction intervals: the purchase model has no covariance (not fitted, or a parameter ran off to a boundary without a known limit, where the Hessian is singular); the _p05/_p95 columns are null");
        return nulls();
    };
    let Some(pd) =
        models::intervals::draw_log_params(&model.log_params(), cov, draws, PURCHASE_SEED)
    else {
        tracing::warn!("no prediction intervals: the purchase model's covariance is not positive definite; the _p05/_p95 columns are null");
        return nulls();
    };
    let pd: Vec<PurchaseModel> = pd
        .iter()
        .map(|th| PurchaseModel::from_log_params(model.kind(), th))
        .collect();
    let gd: Option<Vec<GammaGammaParams>> = match spend {
        Some((g, c)) => models::intervals::draw_log_params(&g.log_params(), c, draws, SPEND_SEED)
            .map(|d| {
                d.iter()
                    .map(|th| GammaGammaParams::from_log_params(th))
                    .collect()
            }),
        None => None,
    };
    if gd.is_none() {
        tracing::warn!(
            "no CLV intervals: the spend model has no usable covariance; clv_p05/clv_p95 are null"
        );
    }
    let iv =
        models::intervals::customer_intervals(&pd, gd.as_deref(), horizon_units, x, tx, t, m, opts);
    let some = finite;
    let (clv05, clv95) = match iv.clv {
        Some(b) => (some(b.p05), some(b.p95)),
        None => (null(), null()),
    };
    vec![
        (names[0], some(iv.prob_alive.p05)),
        (names[1], some(iv.prob_alive.p95)),
        (names[2], some(iv.expected_purchases.p05)),
        (names[3], some(iv.expected_purchases.p95)),
        (names[4], clv05),
        (names[5], clv95),
    ]
}

/// Holdout errors of each candidate: fitted on the calibration summary `(x, t_x, T)`, each
/// predicts every customer's repeat purchases over the next `horizon` time units; `actual`
/// holds what they did. Returns, per candidate, its predictions or why it could not be fitted.
pub fn holdout_predictions(
    kinds: &[ModelKind],
    x: &[f64],
    tx: &[f64],
    t: &[f64],
    horizon_units: f64,
    penalizer_coef: f64,
) -> Vec<(ModelKind, Result<Vec<f64>, String>)> {
    // Point predictions only: no covariance (it would cost each candidate a numerical Hessian).
    let opts = FitOptions::default()
        .with_penalizer_coef(penalizer_coef)
        .with_covariance(false);
    kinds
        .par_iter()
        .map(|&k| {
            let (res, _) = fit_purchase(k, x, tx, t, &opts);
            let out = if usable(&res) {
                let p = res.expect("usable fit").params;
                models::batch_expected_purchases(&p, horizon_units, 1.0, x, tx, t)
                    .map_err(|e| e.to_string())
            } else {
                Err(reason(k.name(), &res))
            };
            (k, out)
        })
        .collect()
}

/// Holdout check: BG/NBD fitted on the calibration summary predicts each customer's repeat
/// purchases over the next `holdout_units` time units; `actual` holds what they did.
/// Returns one row per calibration frequency bucket (`0`..`6`, `7+`) and one `all` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticRow {
    /// The calibration-frequency bucket: `"0"` .. `"6"`, `"7+"` or `"all"`.
    pub bucket: String,
    /// Customers in the bucket.
    pub customers: i64,
    /// Mean actual repeat purchases in the holdout.
    pub mean_actual: f64,
    /// Mean predicted repeat purchases in the holdout.
    pub mean_predicted: f64,
    /// Mean absolute error of the predictions.
    pub mae: f64,
    /// Root mean squared error of the predictions.
    pub rmse: f64,
    /// `mean_predicted − mean_actual`: positive when the model over-predicts.
    pub bias: f64,
    /// Pearson correlation of actual and predicted; `None` when either is constant.
    pub correlation: Option<f64>,
}

/// Error metrics of predicted vs actual values.
pub fn metrics(bucket: &str, actual: &[f64], predicted: &[f64]) -> DiagnosticRow {
    let n = actual.len() as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
    let (ma, mp) = (mean(actual), mean(predicted));
    let mut mae = 0.0;
    let mut mse = 0.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, p) in actual.iter().zip(predicted) {
        mae += (p - a).abs();
        mse += (p - a) * (p - a);
        sxy += (a - ma) * (p - mp);
        sxx += (a - ma) * (a - ma);
        syy += (p - mp) * (p - mp);
    }
    DiagnosticRow {
        bucket: bucket.to_string(),
        customers: actual.len() as i64,
        mean_actual: ma,
        mean_predicted: mp,
        mae: mae / n,
        rmse: (mse / n).sqrt(),
        bias: mp - ma,
        correlation: (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt()),
    }
}

/// Bucket rows by calibration frequency (0..6, 7+) plus `all`.
pub fn diagnostics(x: &[f64], actual: &[f64], predicted: &[f64]) -> Vec<DiagnosticRow> {
    let mut rows = Vec::new();
    for b in 0..=7 {
        let idx: Vec<usize> = (0..x.len())
            .filter(|&i| if b < 7 { x[i] == b as f64 } else { x[i] >= 7.0 })
            .collect();
        if idx.is_empty() {
            continue;
        }
        let a: Vec<f64> = idx.iter().map(|&i| actual[i]).collect();
        let p: Vec<f64> = idx.iter().map(|&i| predicted[i]).collect();
        let label = if b < 7 { b.to_string() } else { "7+".into() };
        rows.push(metrics(&label, &a, &p));
    }
    if !x.is_empty() {
        rows.push(metrics("all", actual, predicted));
    }
    rows
}

/// `[clv]`: lifetime-value models (BG/NBD + Gamma-Gamma) and the simple retention CLV.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClvFile {
    /// Fit the models and add the CLV columns and the `model_fit` table. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Purchase model: `"auto"` (default: fit every model, keep the lowest holdout MAE or BIC),
    /// `"bgnbd"`, `"mbgnbd"` or `"pareto_nbd"`.
    #[serde(default)]
    pub model: ModelFile,
    /// When a model cannot be fitted: `"fail"` (default: the date fails, exit 3) or `"null"`
    /// (publish with the model columns null, the date marked degraded).
    #[serde(default)]
    pub on_fit_failure: OnFitFailureFile,
    /// Months of future purchases the discounted CLV sums over. Default 12.
    #[serde(default = "twelve")]
    pub horizon_months: u32,
    /// Discount rate per month `d`. Default 0.01 (as lifetimes). Set this or `annual_discount_rate`.
    pub monthly_discount_rate: Option<f64>,
    /// Annual discount rate; the monthly rate is `(1 + annual)^(1/12) - 1`.
    pub annual_discount_rate: Option<f64>,
    /// Share of spend that is profit. Default 1 (revenue CLV).
    #[serde(default = "one")]
    pub margin: f64,
    /// Subtracted once from each customer's CLV. Default 0.
    #[serde(default)]
    pub acquisition_cost: f64,
    /// Days in a CLV month step. Default 30 (as lifetimes).
    #[serde(default = "thirty")]
    pub days_per_month: f64,
    /// Horizon of the `expected_purchases` column, in days. Default 90.
    #[serde(default = "ninety")]
    pub purchase_horizon_days: f64,
    /// L2 penalty of the fits (lifetimes' `penalizer_coef`). Default 0.
    #[serde(default)]
    pub penalizer_coef: f64,
    /// Annual retention rate `r` of `clv_simple`; default: measured, the share of customers who
    /// bought in the year before the last one and bought again in the last year.
    pub retention_rate: Option<f64>,
    /// Hold out the last N days: fit on the calibration window ending N days before as_of and
    /// compare predicted with actual repeat purchases (table `model_diagnostics`).
    pub holdout_days: Option<i64>,
    /// Parameter draws for the `_p05`/`_p95` interval columns; 0 turns them off. Default 200.
    #[serde(default = "two_hundred")]
    pub interval_draws: usize,
}

fn two_hundred() -> usize {
    200
}

/// The most parameter draws accepted (`clv.interval_draws`): the intervals cost about one
/// scoring pass per draw.
pub const MAX_INTERVAL_DRAWS: usize = 10_000;

/// `clv.model` as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFile {
    /// `"auto"` (default): fit every model and keep the best ([`ModelChoice::Auto`]).
    #[default]
    Auto,
    /// `"bgnbd"`: BG/NBD only.
    Bgnbd,
    /// `"mbgnbd"`: MBG/NBD only.
    Mbgnbd,
    /// `"pareto_nbd"`: Pareto/NBD only.
    ParetoNbd,
}

impl ModelFile {
    /// The validated choice.
    pub fn choice(self) -> ModelChoice {
        match self {
            ModelFile::Auto => ModelChoice::Auto,
            ModelFile::Bgnbd => ModelChoice::Only(ModelKind::BgNbd),
            ModelFile::Mbgnbd => ModelChoice::Only(ModelKind::MbgNbd),
            ModelFile::ParetoNbd => ModelChoice::Only(ModelKind::ParetoNbd),
        }
    }
}

/// `clv.on_fit_failure` as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFitFailureFile {
    /// `"fail"` (default): the date fails ([`OnFitFailure::Fail`]).
    #[default]
    Fail,
    /// `"null"`: the model columns are left null ([`OnFitFailure::Null`]).
    Null,
}

fn yes() -> bool {
    true
}
fn twelve() -> u32 {
    12
}
fn one() -> f64 {
    1.0
}
fn thirty() -> f64 {
    30.0
}
fn ninety() -> f64 {
    90.0
}

impl Default for ClvFile {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        // actual 0, 2, 4; predicted 1, 2, 3: errors 1, 0, -1.
        let r = metrics("all", &[0.0, 2.0, 4.0], &[1.0, 2.0, 3.0]);
        assert_eq!(r.mean_actual, 2.0);
        assert_eq!(r.mean_predicted, 2.0);
        assert!((r.mae - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.rmse - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(r.bias, 0.0);
        assert!((r.correlation.unwrap() - 1.0).abs() < 1e-12);
    }

    fn row(bic: f64, mae: Option<f64>) -> FitRow {
        FitRow {
            model: "m",
            params: vec![],
            log_likelihood: Some(-bic / 2.0),
            aic: None,
            bic: Some(bic),
            holdout_mae: mae,
            iterations: 1,
            converged: true,
            chosen: false,
            boundary: None,
            customers: 10,
            distinct_rows: 10,
            fit_seconds: 0.0,
            message: String::new(),
        }
    }

    fn settings(retention_rate: Option<f64>) -> ClvSettings {
        ClvSettings {
            model: ModelChoice::Only(ModelKind::BgNbd),
            on_fit_failure: OnFitFailure::Null,
            horizon_months: 12,
            monthly_discount_rate: 0.01,
            annual_discount_rate: 0.1,
            margin: 0.5,
            acquisition_cost: 0.0,
            days_per_month: 30.0,
            purchase_horizon_days: 90.0,
            penalizer_coef: 0.0,
            retention_rate,
            holdout_days: None,
            interval_draws: 0,
        }
    }

    #[test]
    fn clv_simple_by_hand() {
        // margin · amount_last_365d · r / (1 + i − r) with margin 0.5, i = 0.1:
        // r = 0.8: 0.5 · 100 · 0.8 / 0.3 = 133.33…; 0.5 · 0 = 0; 0.5 · 30 · 0.8 / 0.3 = 40.
        // Three one-time buyers: no model can be fitted (on_fit_failure = null), clv_simple
        // does not need one.
        let summary = df!(
            "frequency" => [0.0, 0.0, 0.0],
            "recency" => [0.0, 0.0, 0.0],
            "T" => [10.0, 20.0, 30.0],
            "monetary" => [0.0, 0.0, 0.0],
            "amount_last_365d" => [100.0, 0.0, 30.0],
        )
        .unwrap();
        let v = value_customers(&summary, &settings(Some(0.8)), 1.0, Some(0.2), &[]).unwrap();
        let want = [100.0 * 0.5 * 0.8 / 0.3, 0.0, 40.0];
        for (got, want) in v.clv_simple.iter().zip(want) {
            assert!((got.unwrap() - want).abs() < 1e-9, "{got:?} vs {want}");
        }
        assert!(v.clv.iter().all(|c| c.is_none()) && !v.degraded.is_empty());
        // Without a configured rate the measured one is used: r = 0.5 gives
        // 0.5 · 100 · 0.5 / 0.6 = 41.66…
        let v = value_customers(&summary, &settings(None), 1.0, Some(0.5), &[]).unwrap();
        assert!((v.clv_simple.get(0).unwrap() - 250.0 / 6.0).abs() < 1e-9);
        // Neither: null, not a made-up number.
        let v = value_customers(&summary, &settings(None), 1.0, None, &[]).unwrap();
        assert!(v.clv_simple.iter().all(|c| c.is_none()));
    }

    #[test]
    fn choice_rule() {
        // Lowest BIC without a holdout; a tie keeps the first; unusable rows never win.
        let rows = [row(10.0, None), row(9.0, None)];
        assert_eq!(choose(&rows, &[true, true]), Some(1));
        assert_eq!(choose(&rows, &[true, false]), Some(0));
        assert_eq!(
            choose(&[row(5.0, None), row(5.0, None)], &[true, true]),
            Some(0)
        );
        // Scores equal but for rounding (the same limiting model reached by two code paths)
        // tie; a difference of one BIC unit does not.
        let big = 158_025_840.537_486;
        let noise = [row(big, None), row(big - 5e-6, None)];
        assert_eq!(choose(&noise, &[true, true]), Some(0));
        let real = [
            row(big, None),
            row(big - 1.0, None),
            row(big - 1.0 + 1e-6, None),
        ];
        assert_eq!(choose(&real, &[true, true, true]), Some(1));
        assert_eq!(
            choose(&[row(f64::NAN, None), row(9.0, None)], &[true, true]),
            Some(1)
        );
        assert_eq!(choose(&rows, &[false, false]), None);
        // With a holdout the lowest MAE wins even against a lower BIC.
        let rows = [row(10.0, Some(0.5)), row(9.0, Some(0.7))];
        assert_eq!(choose(&rows, &[true, true]), Some(0));
        // A candidate without a holdout MAE (its calibration fit failed): back to BIC.
        let rows = [row(10.0, Some(0.5)), row(9.0, None)];
        assert_eq!(choose(&rows, &[true, true]), Some(1));
    }

    #[test]
    fn buckets() {
        let x = [0.0, 0.0, 1.0, 9.0, 7.0];
        let rows = diagnostics(&x, &[0.0, 1.0, 1.0, 5.0, 3.0], &[0.5, 0.5, 1.0, 4.0, 4.0]);
        let labels: Vec<_> = rows.iter().map(|r| r.bucket.as_str()).collect();
        assert_eq!(labels, ["0", "1", "7+", "all"]);
        assert_eq!(rows[0].customers, 2);
        assert_eq!(rows[0].mean_actual, 0.5);
        assert_eq!(rows[2].mean_actual, 4.0);
        assert_eq!(rows[2].mean_predicted, 4.0);
    }
}
