//! Transactions → customer summary: one row per customer as of the as-of date.
//!
//! Everything after this step reads the summary, never raw rows again.
//!
//! Definitions (the BTYD ones are exactly those of lifetimes'
//! `summary_data_from_transaction_data(..., freq='D')`):
//! - a *purchase day* is a calendar day with at least one transaction of the customer; all
//!   transactions of one customer on one day are one BTYD transaction with their amounts summed;
//! - `frequency` = purchase days − 1 (repeat purchase days);
//! - `recency` = (last purchase day − first purchase day) in time units (BTYD meaning; the RFM
//!   "days since last purchase" is `days_since_last`);
//! - `T` = (as-of day − first purchase day) in time units: purchases on the as-of day count;
//! - `monetary` = mean amount of the repeat purchase days (the first day is excluded), 0 when
//!   `frequency` is 0;
//! - the time unit is 1 day or 7 days (`time_unit = "week"`: fractional weeks = days / 7, as in the
//!   published CDNOW analyses; not lifetimes' calendar-week bucketing `freq='W'`).
//!
//! All figures cover the job's window: with `lookback_days`, "first purchase" is the first one in
//! the window.

use polars::prelude::*;

/// Which optional canonical columns the transactions carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Optional {
    pub order_id: bool,
    pub quantity: bool,
    pub category: bool,
    pub region: bool,
    pub industry: bool,
    pub channel: bool,
}

/// The summary plan. `as_of_day` is the as-of date in days since 1970-01-01.
pub fn customer_summary(tx: LazyFrame, as_of_day: i32, unit_days: f64, opt: Optional) -> LazyFrame {
    let first = col("day").min();
    let mut aggs = vec![
        first.clone().alias("first_day"),
        col("day").max().alias("last_day"),
        col("day")
            .n_unique()
            .cast(DataType::Int64)
            .alias("purchase_days"),
        if opt.order_id {
            col("order_id").n_unique().cast(DataType::Int64)
        } else {
            len().cast(DataType::Int64)
        }
        .alias("orders"),
        col("amount").sum().alias("total_amount"),
        col("amount")
            .filter(col("day").eq(first))
            .sum()
            .alias("first_day_amount"),
    ];
    if opt.quantity {
        aggs.push(col("quantity").sum().alias("quantity"));
    }
    if opt.category {
        aggs.push(
            col("category")
                .drop_nulls()
                .n_unique()
                .cast(DataType::Int64)
                .alias("categories"),
        );
    }
    let mut attrs = Vec::new();
    for (on, name) in [
        (opt.region, "region"),
        (opt.industry, "industry"),
        (opt.channel, "channel"),
    ] {
        if on {
            // The value on the customer's most recent transaction that has one.
            aggs.push(
                col(name)
                    .sort_by([col("day")], SortMultipleOptions::default())
                    .drop_nulls()
                    .last()
                    .alias(name),
            );
            attrs.push(col(name));
        }
    }
    let unit = lit(unit_days);
    let freq = col("purchase_days") - lit(1i64);
    let mut out = vec![
        col("customer_id"),
        col("first_day")
            .cast(DataType::Date)
            .alias("first_purchase"),
        col("last_day").cast(DataType::Date).alias("last_purchase"),
        col("purchase_days"),
        col("orders"),
        col("total_amount"),
        (col("total_amount") / col("orders").cast(DataType::Float64)).alias("mean_amount"),
    ];
    if opt.quantity {
        out.push(col("quantity"));
    }
    if opt.category {
        out.push(col("categories"));
    }
    out.extend(attrs);
    out.extend([
        (lit(as_of_day) - col("last_day"))
            .cast(DataType::Int64)
            .alias("days_since_last"),
        freq.clone().alias("frequency"),
        ((col("last_day") - col("first_day")).cast(DataType::Float64) / unit.clone())
            .alias("recency"),
        ((lit(as_of_day) - col("first_day")).cast(DataType::Float64) / unit).alias("T"),
        when(freq.clone().gt(lit(0i64)))
            .then((col("total_amount") - col("first_day_amount")) / freq.cast(DataType::Float64))
            .otherwise(lit(0.0))
            .alias("monetary"),
    ]);
    tx.group_by([col("customer_id")])
        .agg(aggs)
        .select(out)
        .sort(["customer_id"], SortMultipleOptions::default())
}
