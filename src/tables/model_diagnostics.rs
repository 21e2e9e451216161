//! `model_diagnostics`: holdout calibration of the purchase model's predictions.
//!
//! Written when `clv.holdout_days` (or `--holdout-days`) is set. The model is fitted on the
//! calibration window ending `holdout_days` before the as-of date and predicts each calibration
//! customer's repeat purchase days in the holdout `(as_of − holdout_days, as_of]`; the actual
//! count comes from the data.
//!
//! Grain: calibration frequency bucket (`"0"` .. `"6"`, `"7+"`) plus one `"all"` row.
//! Partition: `as_of=YYYY-MM-DD`. Columns: `calibration_frequency` (String), `customers` (Int64),
//! `mean_actual`, `mean_predicted`, `mae`, `rmse`, `bias` (= mean predicted − mean actual),
//! `correlation` (Pearson, null when constant) (Float64), `holdout_days` (Int64),
//! `calibration_end` (Date), `model` (String: the purchase model whose predictions these are,
//! the one chosen for `customer_features`).

use crate::valuation::DiagnosticRow;
use polars::prelude::*;

/// Build the table.
pub(crate) fn build(
    rows: &[DiagnosticRow],
    holdout_days: i64,
    calibration_end_day: i32,
    model: Option<&str>,
) -> PolarsResult<DataFrame> {
    let f = |g: fn(&DiagnosticRow) -> f64| rows.iter().map(g).collect::<Vec<f64>>();
    DataFrame::new_infer_height(vec![
        Column::new(
            "calibration_frequency".into(),
            rows.iter().map(|r| r.bucket.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "customers".into(),
            rows.iter().map(|r| r.customers).collect::<Vec<_>>(),
        ),
        Column::new("mean_actual".into(), f(|r| r.mean_actual)),
        Column::new("mean_predicted".into(), f(|r| r.mean_predicted)),
        Column::new("mae".into(), f(|r| r.mae)),
        Column::new("rmse".into(), f(|r| r.rmse)),
        Column::new("bias".into(), f(|r| r.bias)),
        Column::new(
            "correlation".into(),
            rows.iter().map(|r| r.correlation).collect::<Vec<_>>(),
        ),
        Column::new("holdout_days".into(), vec![holdout_days; rows.len()]),
        Column::new(
            "calibration_end".into(),
            vec![calibration_end_day; rows.len()],
        )
        .cast(&DataType::Date)?,
        Column::new("model".into(), vec![model; rows.len()]),
    ])
}
