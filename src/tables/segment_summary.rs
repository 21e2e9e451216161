//! `segment_summary`: one row per RFM segment present, for the whole base and per attribute.
//!
//! Grain: (`dimension`, `dimension_value`, `rfm_segment`); `dimension = "all"` rows cover every
//! customer, and when the job maps region / industry / channel there are rows per value of each
//! (see [`super::breakdown`]). Partition: `as_of=YYYY-MM-DD`. Cost: one pass over
//! `customer_features` per dimension.
//! Columns: `dimension` (String), `dimension_value` (String, null for "all"), `rfm_segment`
//! (String), `customers` (Int64), `customer_share` (Float64, 0–1 within the dimension value),
//! `revenue` (Float64, sum of `total_amount`), `revenue_share` (Float64, null when the group's
//! revenue is 0), `mean_days_since_last`, `mean_orders`, `mean_total_amount`, `mean_r_score`,
//! `mean_f_score`, `mean_m_score`, `repeat_customer_share` (Float64: share of the segment's
//! customers with `frequency > 0`), and when the CLV models ran `customer_equity`
//! (Float64, sum of `clv`) and `customer_equity_share`. Sorted by dimension, value, then revenue
//! (highest first).

use super::breakdown::{aggregate, share, Agg, Measure};
use polars::prelude::*;

/// Aggregate customer features by segment.
pub(crate) fn build(features: &DataFrame) -> PolarsResult<DataFrame> {
    let has_clv = features.column("clv").is_ok();
    let mut aggs: Vec<Agg> = vec![
        (Measure::Count, "customers"),
        (Measure::Sum("total_amount"), "revenue"),
        (Measure::Mean("days_since_last"), "mean_days_since_last"),
        (Measure::Mean("orders"), "mean_orders"),
        (Measure::Mean("total_amount"), "mean_total_amount"),
        (Measure::Mean("r_score"), "mean_r_score"),
        (Measure::Mean("f_score"), "mean_f_score"),
        (Measure::Mean("m_score"), "mean_m_score"),
        (Measure::PositiveShare("frequency"), "repeat_customer_share"),
    ];
    let mut select = vec![
        col("dimension_rank"),
        col("dimension"),
        col("dimension_value"),
        col("rfm_segment"),
        col("customers"),
        share("customers", "customer_share")?,
        col("revenue"),
        share("revenue", "revenue_share")?,
        col("mean_days_since_last"),
        col("mean_orders"),
        col("mean_total_amount"),
        col("mean_r_score"),
        col("mean_f_score"),
        col("mean_m_score"),
        col("repeat_customer_share"),
    ];
    if has_clv {
        aggs.push((Measure::SumOrNull("clv"), "customer_equity"));
        select.push(col("customer_equity"));
        select.push(share("customer_equity", "customer_equity_share")?);
    }
    aggregate(features, "rfm_segment", &aggs)?
        .lazy()
        .sort(
            [
                "dimension_rank",
                "dimension_value",
                "revenue",
                "rfm_segment",
            ],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, false, true, false])
                .with_nulls_last(false),
        )
        // Shares are sums over the groups of a breakdown: materialise the sorted groups first
        // so that every run adds them in the same order (bit-identical reruns).
        .collect()?
        .lazy()
        .select(select)
        .drop(cols(["dimension_rank"]))
        .collect()
}
