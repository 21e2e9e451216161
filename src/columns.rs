//! Column helpers shared by the domain modules (features, valuation, tables).

use polars::prelude::*;

/// A column of a frame as f64 values (nulls → NaN).
pub fn f64_column(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    let s = df.column(name)?.cast(&DataType::Float64)?;
    Ok(s.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}
