//! Breakdowns by customer attribute: a per-customer frame aggregated once for the
//! whole base (`dimension = "all"`, `dimension_value` null) and once per attribute present
//! (`dimension = "region" | "industry" | "channel"`, `dimension_value` = the attribute, or
//! `"(unknown)"` when a customer has none). Group by (`dimension`, `dimension_value`, key) and
//! compute shares within each (`dimension`, `dimension_value`) group with [`share`].

use polars::prelude::*;

/// Attributes that give breakdowns, in output order.
pub(crate) const DIMENSIONS: [&str; 3] = ["region", "industry", "channel"];

/// `aggs` grouped by `key`, once over the whole base (`dimension = "all"`) and once per
/// attribute column present, stacked: columns `dimension_rank` (a helper: drop it after
/// sorting), `dimension`, `dimension_value`, `key` and the aggregates. Each dimension is grouped
/// on its own and only the small results are stacked, so memory stays near one pass over the
/// customer rows.
pub(crate) fn aggregate(df: &DataFrame, key: &str, aggs: &[Expr]) -> PolarsResult<LazyFrame> {
    let base = df.clone().lazy();
    let mut parts = vec![base.clone().group_by([col(key)]).agg(aggs).with_columns([
        lit("all").alias("dimension"),
        lit(NULL).cast(DataType::String).alias("dimension_value"),
        lit(0i32).alias("dimension_rank"),
    ])];
    for (rank, d) in DIMENSIONS.iter().enumerate() {
        if df.column(d).is_ok() {
            parts.push(
                base.clone()
                    .with_column(
                        col(*d)
                            .cast(DataType::String)
                            .fill_null(lit("(unknown)"))
                            .alias("dimension_value"),
                    )
                    .group_by([col("dimension_value"), col(key)])
                    .agg(aggs)
                    .with_columns([
                        lit(*d).alias("dimension"),
                        lit(rank as i32 + 1).alias("dimension_rank"),
                    ]),
            );
        }
    }
    let order: Vec<Expr> = keys(key);
    let parts: Vec<LazyFrame> = parts
        .into_iter()
        .map(|p| {
            let mut cols = order.clone();
            cols.push(
                all()
                    .exclude_cols(["dimension_rank", "dimension", "dimension_value", key])
                    .as_expr(),
            );
            p.select(cols)
        })
        .collect();
    concat(parts, UnionArgs::default())
}

/// The grouping keys of a breakdown.
pub(crate) fn keys(key: &str) -> Vec<Expr> {
    vec![
        col("dimension_rank"),
        col("dimension"),
        col("dimension_value"),
        col(key),
    ]
}

/// `name / sum(name)` within the breakdown group, null when the group's sum is 0.
pub(crate) fn share(name: &str, alias: &str) -> PolarsResult<Expr> {
    let total = col(name)
        .sum()
        .over([col("dimension"), col("dimension_value")])?;
    Ok(when(total.clone().eq(lit(0.0)))
        .then(lit(NULL).cast(DataType::Float64))
        .otherwise(col(name).cast(DataType::Float64) / total.cast(DataType::Float64))
        .alias(alias))
}
