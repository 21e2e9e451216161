//! `value_matrix`: the 2×2 customer value × relationship matrix, for the whole base and per
//! attribute.
//!
//! Grain: (`dimension`, `dimension_value`, `value_quadrant`). Partition: `as_of=YYYY-MM-DD`.
//! Cost: one pass over `customer_features` per dimension.
//! Columns: `dimension`, `dimension_value` (see [`super::breakdown`]), `value_quadrant` (String),
//! `customers` (Int64), `customer_share`, `revenue`, `revenue_share` (Float64), `clv`,
//! `clv_share` (Float64, when the CLV models ran), `mean_loyalty_score`,
//! `mean_relationship_score`, `mean_value` (Float64: mean of the value metric),
//! `action` (String: the recommended action of the quadrant).

use super::breakdown::{aggregate, share, Agg, Measure};
use crate::segments::value_matrix::Quadrant;
use polars::prelude::*;

/// Aggregate customer features by quadrant.
pub(crate) fn build(features: &DataFrame) -> PolarsResult<DataFrame> {
    let has_clv = features.column("clv").is_ok();
    let mut aggs: Vec<Agg> = vec![
        (Measure::Count, "customers"),
        (Measure::Sum("total_amount"), "revenue"),
        (Measure::Mean("loyalty_score"), "mean_loyalty_score"),
        (
            Measure::Mean("relationship_score"),
            "mean_relationship_score",
        ),
        (Measure::Mean("value_metric"), "mean_value"),
    ];
    let mut select = vec![
        col("dimension_rank"),
        col("dimension"),
        col("dimension_value"),
        col("value_quadrant"),
        col("customers"),
        share("customers", "customer_share")?,
        col("revenue"),
        share("revenue", "revenue_share")?,
    ];
    if has_clv {
        aggs.push((Measure::SumOrNull("clv"), "clv"));
        select.push(col("clv"));
        select.push(share("clv", "clv_share")?);
    }
    select.extend([
        col("mean_loyalty_score"),
        col("mean_relationship_score"),
        col("mean_value"),
    ]);
    let mut df = aggregate(features, "value_quadrant", &aggs)?
        .lazy()
        .sort(
            ["dimension_rank", "dimension_value", "value_quadrant"],
            SortMultipleOptions::default().with_nulls_last(false),
        )
        // Shares are sums over the groups of a breakdown: materialise the sorted groups first
        // so that every run adds them in the same order (bit-identical reruns).
        .collect()?
        .lazy()
        .select(select)
        .drop(cols(["dimension_rank"]))
        .collect()?;
    let actions: Vec<Option<&str>> = df
        .column("value_quadrant")?
        .str()?
        .iter()
        .map(|q| q.and_then(Quadrant::parse).map(Quadrant::action))
        .collect();
    df.with_column(Column::new("action".into(), actions))?;
    Ok(df)
}
