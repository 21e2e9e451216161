//! `model_fit`: one row per fitted model as of the partition date.
//!
//! Grain: model (each purchase-model candidate of `clv.model`: `bgnbd`, `mbgnbd`, `pareto_nbd`; then
//! `gamma_gamma`). Partition: `as_of=YYYY-MM-DD`. Cost: the fits.
//! Columns: `model` (String), `r`, `alpha`, `a`, `b` (BG/NBD, MBG/NBD; `b` null at the
//! no-dropout boundary `a = 0`), `p`, `q`, `v` (Gamma-Gamma) (Float64, null for the other models
//! or a failed fit), `log_likelihood` (Float64, total over customers), `aic`, `bic` (Float64),
//! `holdout_mae` (Float64, with a holdout), `iterations` (Int64), `converged` (Boolean),
//! `customers` (Int64, customers in the likelihood), `distinct_rows` (Int64, rows the
//! likelihood evaluates: identical customers collapsed for the purchase models; Gamma-Gamma
//! keeps one row per repeat buyer), `fit_seconds` (Float64), `time_unit_days` (Float64: 1 or 7; `alpha` is
//! in this unit), `message` (String: why the optimiser stopped, warnings, or why the fit
//! failed), `chosen` (Boolean: the model behind `customer_features`), `boundary` (String: the
//! limit a fit reached and how customers are scored there; null for an interior optimum), `s`,
//! `beta` (Float64, Pareto/NBD; appended last so that earlier columns keep their positions).

use crate::valuation::FitRow;
use polars::prelude::*;

/// Build the table from the fit rows.
pub(crate) fn build(fits: &[FitRow], unit_days: f64) -> PolarsResult<DataFrame> {
    let param = |name: &str| -> Column {
        let v: Vec<Option<f64>> = fits
            .iter()
            .map(|f| {
                f.params
                    .iter()
                    .find(|(k, _)| *k == name)
                    .and_then(|(_, v)| *v)
            })
            .collect();
        Column::new(name.into(), v)
    };
    let mut cols = vec![Column::new(
        "model".into(),
        fits.iter().map(|f| f.model).collect::<Vec<_>>(),
    )];
    for p in ["r", "alpha", "a", "b", "p", "q", "v"] {
        cols.push(param(p));
    }
    cols.extend([
        Column::new(
            "log_likelihood".into(),
            fits.iter().map(|f| f.log_likelihood).collect::<Vec<_>>(),
        ),
        Column::new("aic".into(), fits.iter().map(|f| f.aic).collect::<Vec<_>>()),
        Column::new("bic".into(), fits.iter().map(|f| f.bic).collect::<Vec<_>>()),
        Column::new(
            "holdout_mae".into(),
            fits.iter().map(|f| f.holdout_mae).collect::<Vec<_>>(),
        ),
        Column::new(
            "iterations".into(),
            fits.iter().map(|f| f.iterations).collect::<Vec<_>>(),
        ),
        Column::new(
            "converged".into(),
            fits.iter().map(|f| f.converged).collect::<Vec<_>>(),
        ),
        Column::new(
            "customers".into(),
            fits.iter().map(|f| f.customers).collect::<Vec<_>>(),
        ),
        Column::new(
            "distinct_rows".into(),
            fits.iter().map(|f| f.distinct_rows).collect::<Vec<_>>(),
        ),
        Column::new(
            "fit_seconds".into(),
            fits.iter().map(|f| f.fit_seconds).collect::<Vec<_>>(),
        ),
        Column::new("time_unit_days".into(), vec![unit_days; fits.len()]),
        Column::new(
            "message".into(),
            fits.iter().map(|f| f.message.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "chosen".into(),
            fits.iter().map(|f| f.chosen).collect::<Vec<_>>(),
        ),
        Column::new(
            "boundary".into(),
            fits.iter()
                .map(|f| f.boundary.as_deref())
                .collect::<Vec<_>>(),
        ),
        param("s"),
        param("beta"),
    ]);
    DataFrame::new_infer_height(cols)
}
