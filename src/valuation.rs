//! Customer valuation: the models of [`crate::models`] applied to a customer summary.
//!
//! Pure: frames and plain structs in, plain columns out; no I/O.
//!
//! - BG/NBD is fitted on (`frequency`, `recency`, `T`) of every customer, Gamma-Gamma on
//!   (`frequency`, `monetary`) of the customers with `frequency > 0` and `monetary > 0`; the two
//!   fits run at the same time (`rayon::join`), each spreading its likelihood sums over threads.
//! - Customers outside the Gamma-Gamma fitting set (one-time buyers, non-positive mean spend) get
//!   the population mean spend `v·p/(q−1)` as `expected_spend`.
//! - `clv` = Σ_{k=1..H} margin · expected_spend · (E[purchases by k·M days] − E[purchases by
//!   (k−1)·M days]) / (1+d)^k − acquisition_cost, M = `days_per_month`, d the monthly rate.
//! - `clv_simple` = margin · `amount_last_365d` · r / (1 + i − r): r the annual retention rate
//!   (given, or measured on the data), i the annual discount rate.
//! - A fit that fails or does not converge is a warning, its row in `model_fit` says why, and the
//!   model columns are null rather than a silent wrong number.

use crate::models::{
    self, fit_bgnbd, fit_gamma_gamma, BgNbdParams, ClvOptions, FitOptions, GammaGammaParams,
};
use polars::prelude::*;
use std::time::Instant;

/// Validated CLV settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClvSettings {
    pub horizon_months: u32,
    pub monthly_discount_rate: f64,
    pub annual_discount_rate: f64,
    pub margin: f64,
    pub acquisition_cost: f64,
    pub days_per_month: f64,
    pub purchase_horizon_days: f64,
    pub penalizer_coef: f64,
    pub retention_rate: Option<f64>,
    pub holdout_days: Option<i64>,
}

/// One row of the `model_fit` table.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRow {
    pub model: &'static str,
    pub params: Vec<(&'static str, f64)>,
    pub log_likelihood: Option<f64>,
    pub iterations: i64,
    pub converged: bool,
    pub customers: i64,
    pub distinct_rows: i64,
    pub fit_seconds: f64,
    pub message: String,
}

/// Per-customer model columns (None where the model is unavailable) and the fit rows.
#[derive(Debug, Clone, Default)]
pub struct Valuation {
    pub prob_alive: Vec<Option<f64>>,
    pub expected_purchases: Vec<Option<f64>>,
    pub expected_spend: Vec<Option<f64>>,
    pub clv: Vec<Option<f64>>,
    pub clv_simple: Vec<Option<f64>>,
    pub fits: Vec<FitRow>,
    pub bgnbd: Option<BgNbdParams>,
    pub gamma_gamma: Option<GammaGammaParams>,
}

pub use crate::columns::f64_column;

fn fit_row<P>(
    model: &'static str,
    res: &Result<models::FitReport<P>, models::ModelError>,
    params: impl Fn(&P) -> Vec<(&'static str, f64)>,
    secs: f64,
    n: usize,
) -> FitRow {
    match res {
        Ok(r) => FitRow {
            model,
            params: params(&r.params),
            log_likelihood: Some(r.log_likelihood),
            iterations: r.iterations as i64,
            converged: r.converged,
            customers: r.customers as i64,
            distinct_rows: r.distinct_rows as i64,
            fit_seconds: secs,
            message: r.message.clone(),
        },
        Err(e) => FitRow {
            model,
            params: Vec::new(),
            log_likelihood: None,
            iterations: 0,
            converged: false,
            customers: n as i64,
            distinct_rows: 0,
            fit_seconds: secs,
            message: e.to_string(),
        },
    }
}

/// A fit result and its wall time in seconds.
pub type Timed<P> = (Result<models::FitReport<P>, models::ModelError>, f64);

/// Fit BG/NBD (all customers) and Gamma-Gamma (repeat buyers) at the same time.
pub fn fit_models(
    x: &[f64],
    tx: &[f64],
    t: &[f64],
    m: &[f64],
    penalizer_coef: f64,
) -> (Timed<BgNbdParams>, Timed<GammaGammaParams>) {
    let opts = FitOptions::default().with_penalizer_coef(penalizer_coef);
    let ((bg, bg_s), (gg, gg_s)) = rayon::join(
        || {
            let t0 = Instant::now();
            (fit_bgnbd(x, tx, t, &opts), t0.elapsed().as_secs_f64())
        },
        || {
            let t0 = Instant::now();
            (fit_gamma_gamma(x, m, &opts), t0.elapsed().as_secs_f64())
        },
    );
    ((bg, bg_s), (gg, gg_s))
}

/// Usable parameters of a fit: converged, or None with a warning naming the reason.
fn usable<P: Clone>(
    model: &str,
    res: &Result<models::FitReport<P>, models::ModelError>,
) -> Option<P> {
    match res {
        Ok(r) if r.converged => {
            if r.message.starts_with("warning") {
                tracing::warn!(model, detail = %r.message, "model fit warning");
            }
            Some(r.params.clone())
        }
        Ok(r) => {
            tracing::warn!(model, iterations = r.iterations, detail = %r.message,
                "model did not converge; its columns are left null (try clv.penalizer_coef = 0.001 or more)");
            None
        }
        Err(e) => {
            tracing::warn!(model, error = %e, "model could not be fitted; its columns are left null");
            None
        }
    }
}

/// Value every customer of `summary` (columns `frequency`, `recency`, `T`, `monetary`,
/// `amount_last_365d`). `retention` is the annual retention rate for `clv_simple`, if known.
pub fn value_customers(
    summary: &DataFrame,
    s: &ClvSettings,
    unit_days: f64,
    retention: Option<f64>,
) -> PolarsResult<Valuation> {
    let x = f64_column(summary, "frequency")?;
    let tx = f64_column(summary, "recency")?;
    let t = f64_column(summary, "T")?;
    let m = f64_column(summary, "monetary")?;
    let last_year = f64_column(summary, "amount_last_365d")?;
    let n = x.len();
    let ((bg, bg_s), (gg, gg_s)) = fit_models(&x, &tx, &t, &m, s.penalizer_coef);
    let fits = vec![
        fit_row(
            "bgnbd",
            &bg,
            |p: &BgNbdParams| vec![("r", p.r), ("alpha", p.alpha), ("a", p.a), ("b", p.b)],
            bg_s,
            n,
        ),
        fit_row(
            "gamma_gamma",
            &gg,
            |p: &GammaGammaParams| vec![("p", p.p), ("q", p.q), ("v", p.v)],
            gg_s,
            n,
        ),
    ];
    let bgp = usable("bgnbd", &bg);
    let ggp = usable("gamma_gamma", &gg);
    let none = || vec![None; n];
    let some = |v: Vec<f64>| v.into_iter().map(|x| x.is_finite().then_some(x)).collect();
    let model_err = |e: models::ModelError| PolarsError::ComputeError(e.to_string().into());
    let (prob_alive, expected_purchases) = match &bgp {
        Some(p) => (
            some(models::batch_prob_alive(p, &x, &tx, &t).map_err(model_err)?),
            some(
                models::batch_expected_purchases(
                    p,
                    s.purchase_horizon_days,
                    unit_days,
                    &x,
                    &tx,
                    &t,
                )
                .map_err(model_err)?,
            ),
        ),
        None => (none(), none()),
    };
    let expected_spend = match &ggp {
        Some(g) => some(models::batch_expected_spend(g, &x, &m).map_err(model_err)?),
        None => none(),
    };
    let clv = match (&bgp, &ggp) {
        (Some(p), Some(g)) => {
            let opts = ClvOptions::default()
                .with_horizon_months(s.horizon_months)
                .with_monthly_discount_rate(s.monthly_discount_rate)
                .with_margin(s.margin)
                .with_days_per_month(s.days_per_month)
                .with_time_unit_days(unit_days)
                .with_acquisition_cost(s.acquisition_cost);
            some(models::batch_discounted_clv(p, g, &x, &tx, &t, &m, &opts).map_err(model_err)?)
        }
        _ => none(),
    };
    let r = s.retention_rate.or(retention);
    let clv_simple = match r {
        Some(r) => last_year
            .iter()
            .map(|&v| {
                let c = models::simple_retention_clv(s.margin * v, r, s.annual_discount_rate);
                c.is_finite().then_some(c)
            })
            .collect(),
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
        bgnbd: bgp,
        gamma_gamma: ggp,
    })
}

/// Holdout check: BG/NBD fitted on the calibration summary predicts each customer's repeat
/// purchases over the next `holdout_units` time units; `actual` holds what they did.
/// Returns one row per calibration frequency bucket (`0`..`6`, `7+`) and one `all` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticRow {
    pub bucket: String,
    pub customers: i64,
    pub mean_actual: f64,
    pub mean_predicted: f64,
    pub mae: f64,
    pub rmse: f64,
    pub bias: f64,
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
