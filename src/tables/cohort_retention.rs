//! `cohort_retention`: the cohort triangle.
//!
//! Grain: (acquisition cohort, periods since acquisition). Partition: `as_of=YYYY-MM-DD`.
//! Cost: one pass over the daily purchases.
//! Columns: `cohort` (String: period of the first purchase, e.g. "2024-01"), `cohort_size`
//! (Int64), `period_offset` (Int32: 0 = the acquisition period), `period` (String), `partial`
//! (Boolean), `active` (Int64), `retention` (Float64: active / cohort_size), `revenue` (Float64),
//! `cumulative_revenue_per_customer` (Float64).

use crate::features::churn::CohortRow;
use polars::prelude::*;

/// Build the table from the rows.
pub(crate) fn build(rows: &[CohortRow]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new(
            "cohort".into(),
            rows.iter()
                .map(|r| r.cohort_label.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "cohort_size".into(),
            rows.iter()
                .map(|r| r.cohort_size as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "period_offset".into(),
            rows.iter().map(|r| r.period_offset).collect::<Vec<_>>(),
        ),
        Column::new(
            "period".into(),
            rows.iter()
                .map(|r| r.period_label.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "partial".into(),
            rows.iter().map(|r| r.partial).collect::<Vec<_>>(),
        ),
        Column::new(
            "active".into(),
            rows.iter().map(|r| r.active as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "retention".into(),
            rows.iter().map(|r| r.retention).collect::<Vec<_>>(),
        ),
        Column::new(
            "revenue".into(),
            rows.iter().map(|r| r.revenue).collect::<Vec<_>>(),
        ),
        Column::new(
            "cumulative_revenue_per_customer".into(),
            rows.iter()
                .map(|r| r.cumulative_revenue_per_customer)
                .collect::<Vec<_>>(),
        ),
    ])
}
