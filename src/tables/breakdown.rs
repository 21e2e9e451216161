//! Breakdowns by customer attribute: the rows of a per-customer frame stacked once for the
//! whole base (`dimension = "all"`, `dimension_value` null) and once per attribute present
//! (`dimension = "region" | "industry" | "channel"`, `dimension_value` = the attribute, or
//! `"(unknown)"` when a customer has none). Group by (`dimension`, `dimension_value`, key) and
//! compute shares within each (`dimension`, `dimension_value`) group with [`share`].

use polars::prelude::*;

/// Attributes that give breakdowns, in output order.
pub const DIMENSIONS: [&str; 3] = ["region", "industry", "channel"];

/// Stack `df` once for "all" and once per attribute column present. Adds `dimension`,
/// `dimension_value` and a helper `dimension_rank` (drop it after sorting).
pub fn stacked(df: &DataFrame) -> PolarsResult<LazyFrame> {
    let mut parts = vec![df.clone().lazy().with_columns([
        lit("all").alias("dimension"),
        lit(NULL).cast(DataType::String).alias("dimension_value"),
        lit(0i32).alias("dimension_rank"),
    ])];
    for (rank, d) in DIMENSIONS.iter().enumerate() {
        if df.column(d).is_ok() {
            parts.push(
                df.clone().lazy().with_columns([
                    lit(*d).alias("dimension"),
                    col(*d)
                        .cast(DataType::String)
                        .fill_null(lit("(unknown)"))
                        .alias("dimension_value"),
                    lit(rank as i32 + 1).alias("dimension_rank"),
                ]),
            );
        }
    }
    concat(parts, UnionArgs::default())
}

/// The grouping keys of a breakdown.
pub fn keys(key: &str) -> Vec<Expr> {
    vec![
        col("dimension_rank"),
        col("dimension"),
        col("dimension_value"),
        col(key),
    ]
}

/// `name / sum(name)` within the breakdown group, null when the group's sum is 0.
pub fn share(name: &str, alias: &str) -> PolarsResult<Expr> {
    let total = col(name)
        .sum()
        .over([col("dimension"), col("dimension_value")])?;
    Ok(when(total.clone().eq(lit(0.0)))
        .then(lit(NULL).cast(DataType::Float64))
        .otherwise(col(name).cast(DataType::Float64) / total.cast(DataType::Float64))
        .alias(alias))
}
