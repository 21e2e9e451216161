//! `churn_rates`: one row per period of the window (month by default; `churn.period`).
//!
//! Grain: period. Partition: `as_of=YYYY-MM-DD`. Cost: one pass over the daily purchases.
//! Columns: `period` (String, e.g. "2024-01"), `period_start` (Date), `partial` (Boolean: the
//! as-of period, not yet over), `active_start` (Int64: active in the previous period),
//! `retained`, `churned`, `new`, `reactivated`, `active` (Int64), `churn_rate`,
//! `retention_rate` (Float64, null when `active_start` is 0), `revenue`, `revenue_retained`,
//! `revenue_new`, `revenue_reactivated`, `revenue_churned_prev` (Float64). Rules: see
//! [`crate::features::churn`] and the README.

use crate::features::churn::ChurnRateRow;
use polars::prelude::*;

/// Build the table from the rows.
pub(crate) fn build(rows: &[ChurnRateRow]) -> PolarsResult<DataFrame> {
    let u = |g: fn(&ChurnRateRow) -> u64| rows.iter().map(|r| g(r) as i64).collect::<Vec<_>>();
    let f = |g: fn(&ChurnRateRow) -> f64| rows.iter().map(g).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new(
            "period".into(),
            rows.iter()
                .map(|r| r.period_label.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "period_start".into(),
            rows.iter().map(|r| r.period_start).collect::<Vec<_>>(),
        )
        .cast(&DataType::Date)?,
        Column::new(
            "partial".into(),
            rows.iter().map(|r| r.partial).collect::<Vec<_>>(),
        ),
        Column::new("active_start".into(), u(|r| r.active_start)),
        Column::new("retained".into(), u(|r| r.retained)),
        Column::new("churned".into(), u(|r| r.churned)),
        Column::new("new".into(), u(|r| r.new)),
        Column::new("reactivated".into(), u(|r| r.reactivated)),
        Column::new("active".into(), u(|r| r.active)),
        Column::new(
            "churn_rate".into(),
            rows.iter().map(|r| r.churn_rate).collect::<Vec<_>>(),
        ),
        Column::new(
            "retention_rate".into(),
            rows.iter().map(|r| r.retention_rate).collect::<Vec<_>>(),
        ),
        Column::new("revenue".into(), f(|r| r.revenue)),
        Column::new("revenue_retained".into(), f(|r| r.revenue_retained)),
        Column::new("revenue_new".into(), f(|r| r.revenue_new)),
        Column::new("revenue_reactivated".into(), f(|r| r.revenue_reactivated)),
        Column::new("revenue_churned_prev".into(), f(|r| r.revenue_churned_prev)),
    ])
}
