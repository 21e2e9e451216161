//! `segment_summary`: one row per RFM segment present as of the partition date.
//!
//! Grain: segment. Partition: `as_of=YYYY-MM-DD`. Cost: one group-by over `customer_features`.
//! Columns: `rfm_segment` (String), `customers` (Int64), `customer_share` (Float64, 0–1),
//! `revenue` (Float64, sum of `total_amount`), `revenue_share` (Float64, 0–1; null when total
//! revenue is 0), `mean_days_since_last`, `mean_orders`, `mean_total_amount`, `mean_r_score`,
//! `mean_f_score`, `mean_m_score` (Float64), and when the CLV models ran `customer_equity`
//! (Float64, sum of `clv`) and `customer_equity_share` (0–1). Sorted by revenue, highest first.

use polars::prelude::*;

/// Aggregate customer features by segment.
pub fn build(features: &DataFrame) -> PolarsResult<DataFrame> {
    let n = features.height() as f64;
    let total: f64 = features.column("total_amount")?.f64()?.sum().unwrap_or(0.0);
    let share = if total != 0.0 {
        (col("revenue") / lit(total)).alias("revenue_share")
    } else {
        lit(NULL).cast(DataType::Float64).alias("revenue_share")
    };
    let has_clv = features.column("clv").is_ok();
    let mut aggs = vec![
        len().cast(DataType::Int64).alias("customers"),
        col("total_amount").sum().alias("revenue"),
        col("days_since_last")
            .cast(DataType::Float64)
            .mean()
            .alias("mean_days_since_last"),
        col("orders")
            .cast(DataType::Float64)
            .mean()
            .alias("mean_orders"),
        col("total_amount").mean().alias("mean_total_amount"),
        col("r_score")
            .cast(DataType::Float64)
            .mean()
            .alias("mean_r_score"),
        col("f_score")
            .cast(DataType::Float64)
            .mean()
            .alias("mean_f_score"),
        col("m_score")
            .cast(DataType::Float64)
            .mean()
            .alias("mean_m_score"),
    ];
    let mut select = vec![
        col("rfm_segment"),
        col("customers"),
        (col("customers").cast(DataType::Float64) / lit(n)).alias("customer_share"),
        col("revenue"),
        share,
        col("mean_days_since_last"),
        col("mean_orders"),
        col("mean_total_amount"),
        col("mean_r_score"),
        col("mean_f_score"),
        col("mean_m_score"),
    ];
    if has_clv {
        let equity: f64 = features.column("clv")?.f64()?.sum().unwrap_or(0.0);
        aggs.push(col("clv").sum().alias("customer_equity"));
        select.push(col("customer_equity"));
        select.push(if equity != 0.0 {
            (col("customer_equity") / lit(equity)).alias("customer_equity_share")
        } else {
            lit(NULL)
                .cast(DataType::Float64)
                .alias("customer_equity_share")
        });
    }
    features
        .clone()
        .lazy()
        .group_by([col("rfm_segment")])
        .agg(aggs)
        .select(select)
        .sort(
            ["revenue", "rfm_segment"],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .collect()
}
