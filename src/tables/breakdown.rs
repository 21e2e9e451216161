//! Breakdowns by customer attribute: a per-customer frame aggregated once for the
//! whole base (`dimension = "all"`, `dimension_value` null) and once per attribute present
//! (`dimension = "region" | "industry" | "channel"`, `dimension_value` = the attribute, or
//! `"(unknown)"` when a customer has none). Group by (`dimension`, `dimension_value`, key) and
//! compute shares within each (`dimension`, `dimension_value`) group with [`share`].
//!
//! The grouping is done here, not by a polars group-by: the keys (an RFM segment, a quadrant,
//! an attribute value) have a few dozen values, so every group is a cell of a small array that
//! one pass over the customers fills. polars' group-by gathered each aggregated column once per
//! group and dimension (about 0.5 s per table at 1.9 M customers, against a few hundredths
//! here). Sums are compensated (Kahan, as polars' group-by sums are) and taken in row order,
//! so a rerun is bit-identical whatever the number of threads.

use polars::prelude::*;
use polars_arrow::array::Array;
use polars_arrow::bitmap::Bitmap;
use rayon::prelude::*;

/// Attributes that give breakdowns, in output order.
pub(crate) const DIMENSIONS: [&str; 3] = ["region", "industry", "channel"];

/// What one aggregated column holds for a group. Nulls are skipped.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Measure {
    /// Customers in the group (Int64).
    Count,
    /// Sum of the column (Float64; 0 when every value is null).
    Sum(&'static str),
    /// Sum of the column, null when every value is null (Float64).
    SumOrNull(&'static str),
    /// Mean of the column cast to Float64 (null when every value is null).
    Mean(&'static str),
    /// Share of the non-null values that are above 0 (Float64).
    PositiveShare(&'static str),
}

/// One output column: a measure and its name.
pub(crate) type Agg = (Measure, &'static str);

/// Compensated sum (Kahan, as `polars_utils::kahan_sum::KahanSum`) with a count of values.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    sum: f64,
    err: f64,
    n: u64,
}

impl Acc {
    #[inline]
    fn add(&mut self, v: f64) {
        let y = v - self.err;
        let sum = self.sum + y;
        let err = (sum - self.sum) - y;
        self.sum = sum;
        if err.is_finite() {
            self.err = err;
        }
        self.n += 1;
    }
}

/// Small dense codes of a column's values (first appearance order; null is a value, or
/// counts as `null_as`).
struct Codes {
    of_row: Vec<u32>,
    values: Vec<Option<String>>,
}

fn codes(s: &Column, null_as: Option<&str>) -> PolarsResult<Codes> {
    const NULL: u32 = u32::MAX;
    let s = s.cast(&DataType::String)?;
    let ca = s.str()?;
    let mut strings = crate::codes::StringCodes::default();
    let mut of_row = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => of_row.extend((0..arr.len()).map(|i| strings.code(arr, i))),
            Some(valid) => of_row.extend((0..arr.len()).map(|i| match valid.get_bit(i) {
                true => strings.code(arr, i),
                false => NULL,
            })),
        }
    }
    let mut values: Vec<Option<String>> = strings
        .values()
        .iter()
        .map(|v| Some((*v).to_owned()))
        .collect();
    if ca.null_count() > 0 {
        let code = null_as
            .and_then(|u| values.iter().position(|v| v.as_deref() == Some(u)))
            .unwrap_or_else(|| {
                values.push(null_as.map(str::to_owned));
                values.len() - 1
            }) as u32;
        of_row
            .iter_mut()
            .filter(|c| **c == NULL)
            .for_each(|c| *c = code);
    }
    Ok(Codes { of_row, values })
}

/// `aggs` grouped by `key`, once over the whole base (`dimension = "all"`) and once per
/// attribute column present, stacked: columns `dimension_rank` (Int32, a helper: drop it after
/// sorting), `dimension`, `dimension_value`, `key` and the aggregates, one row per non-empty
/// group, in no particular order.
pub(crate) fn aggregate(df: &DataFrame, key: &str, aggs: &[Agg]) -> PolarsResult<DataFrame> {
    let n = df.height();
    let keys = codes(df.column(key)?, None)?;
    let mut dims: Vec<(i32, &str, Option<Codes>)> = vec![(0, "all", None)];
    for (rank, d) in DIMENSIONS.iter().enumerate() {
        if let Ok(c) = df.column(d) {
            dims.push((rank as i32 + 1, d, Some(codes(c, Some("(unknown)"))?)));
        }
    }
    // The summed values of each measure but the count, as one chunk.
    let inputs: Vec<Float64Chunked> = aggs
        .iter()
        .filter_map(|(m, _)| match m {
            Measure::Count => None,
            Measure::Sum(c) | Measure::SumOrNull(c) | Measure::Mean(c) => Some((c, false)),
            Measure::PositiveShare(c) => Some((c, true)),
        })
        .map(|(c, positive)| {
            let f = df.column(c)?.cast(&DataType::Float64)?;
            let f = f.f64()?.rechunk().into_owned();
            Ok(match positive {
                true => f.apply_values(|x| if x > 0.0 { 1.0 } else { 0.0 }),
                false => f,
            })
        })
        .collect::<PolarsResult<_>>()?;
    let inputs: Vec<(&[f64], Option<&Bitmap>)> = inputs
        .iter()
        .map(|ca| match ca.downcast_iter().next() {
            Some(arr) => (
                arr.values().as_slice(),
                arr.validity().filter(|v| v.unset_bits() > 0),
            ),
            // No chunk at all: no rows.
            None => (&[][..], None),
        })
        .collect();
    let nk = keys.values.len();
    let width = inputs.len();
    // One pass over the rows, in order, per dimension: row counts and sums per cell.
    let passes: Vec<(Vec<u64>, Vec<Acc>)> = dims
        .par_iter()
        .map(|(_, _, codes)| {
            let cells = codes.as_ref().map_or(1, |c| c.values.len()) * nk;
            let mut counts = vec![0u64; cells];
            let mut acc = vec![Acc::default(); cells * width];
            for i in 0..n {
                let k = keys.of_row[i] as usize;
                let cell = codes.as_ref().map_or(k, |c| c.of_row[i] as usize * nk + k);
                counts[cell] += 1;
                let row = &mut acc[cell * width..(cell + 1) * width];
                for (a, (v, valid)) in row.iter_mut().zip(&inputs) {
                    if valid.is_none_or(|b| b.get_bit(i)) {
                        a.add(v[i]);
                    }
                }
            }
            (counts, acc)
        })
        .collect();
    let mut rank = Vec::new();
    let mut dimension = Vec::new();
    let mut dimension_value: Vec<Option<String>> = Vec::new();
    let mut key_value: Vec<Option<String>> = Vec::new();
    let mut counts: Vec<i64> = Vec::new();
    let mut sums: Vec<Vec<Option<f64>>> = vec![Vec::new(); width];
    for ((r, name, codes), (count, acc)) in dims.iter().zip(&passes) {
        for (cell, &size) in count.iter().enumerate() {
            if size == 0 {
                continue;
            }
            rank.push(*r);
            dimension.push(*name);
            dimension_value.push(codes.as_ref().and_then(|c| c.values[cell / nk].clone()));
            key_value.push(keys.values[cell % nk].clone());
            counts.push(size as i64);
            let measures = aggs.iter().filter(|(m, _)| !matches!(m, Measure::Count));
            for ((j, (m, _)), a) in measures.enumerate().zip(&acc[cell * width..]) {
                sums[j].push(match m {
                    Measure::Sum(_) => Some(a.sum),
                    Measure::SumOrNull(_) => (a.n > 0).then_some(a.sum),
                    _ => (a.n > 0).then(|| a.sum / a.n as f64),
                });
            }
        }
    }
    let mut columns = vec![
        Column::new("dimension_rank".into(), rank),
        Column::new("dimension".into(), dimension),
        Column::new("dimension_value".into(), dimension_value),
        Column::new(key.into(), key_value),
    ];
    let mut sums = sums.into_iter();
    for (m, alias) in aggs {
        columns.push(match m {
            Measure::Count => Column::new((*alias).into(), counts.clone()),
            _ => Column::new((*alias).into(), sums.next().expect("one per measure")),
        });
    }
    DataFrame::new_infer_height(columns)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The same breakdown by polars' group-by (the implementation this module replaced).
    fn by_polars(df: &DataFrame, key: &str, aggs: &[Agg]) -> DataFrame {
        let exprs: Vec<Expr> = aggs
            .iter()
            .map(|(m, alias)| {
                match m {
                    Measure::Count => len().cast(DataType::Int64),
                    Measure::Sum(c) => col(*c).cast(DataType::Float64).sum(),
                    Measure::SumOrNull(c) => when(col(*c).count().gt(lit(0)))
                        .then(col(*c).cast(DataType::Float64).sum())
                        .otherwise(lit(NULL).cast(DataType::Float64)),
                    Measure::Mean(c) => col(*c).cast(DataType::Float64).mean(),
                    Measure::PositiveShare(c) => col(*c).gt(lit(0)).cast(DataType::Float64).mean(),
                }
                .alias(*alias)
            })
            .collect();
        let base = df.clone().lazy();
        let mut parts = vec![base.clone().group_by([col(key)]).agg(&exprs).with_columns([
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
                        .agg(&exprs)
                        .with_columns([
                            lit(*d).alias("dimension"),
                            lit(rank as i32 + 1).alias("dimension_rank"),
                        ]),
                );
            }
        }
        let mut order = vec![
            col("dimension_rank"),
            col("dimension"),
            col("dimension_value"),
            col(key),
        ];
        order.extend(aggs.iter().map(|(_, a)| col(*a)));
        let parts: Vec<LazyFrame> = parts.into_iter().map(|p| p.select(&order)).collect();
        sorted(concat(parts, UnionArgs::default()).unwrap(), key)
    }

    fn sorted(lf: LazyFrame, key: &str) -> DataFrame {
        lf.sort(
            ["dimension_rank", "dimension_value", key],
            SortMultipleOptions::default().with_nulls_last(false),
        )
        .collect()
        .unwrap()
    }

    #[test]
    fn breakdowns_equal_polars_group_by() {
        let n = 20_000usize;
        // A small deterministic generator (no dependency on a random crate's stream).
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let segs = ["Champions", "At Risk", "Lost", "New", "Loyal"];
        let mut seg = Vec::new();
        let mut region = Vec::new();
        let mut channel = Vec::new();
        let mut amount = Vec::new();
        let mut clv = Vec::new();
        let mut orders = Vec::new();
        let mut freq = Vec::new();
        for i in 0..n {
            let r = next();
            seg.push((r % 11 != 0).then(|| segs[(r >> 8) as usize % 5]));
            region.push(match (r >> 16) % 7 {
                0 => None,
                1 => Some("(unknown)"),
                k => Some(["north", "south", "east", "west", "centre"][k as usize - 2]),
            });
            channel.push(((r >> 24) % 3) as i64);
            amount.push(((r >> 32) % 100_000) as f64 / 7.0 + 0.1 * i as f64);
            // clv null in one region code and for every "Lost" row: a group of nulls only.
            clv.push(
                ((r >> 40) % 5 != 0 && seg[i] != Some("Lost"))
                    .then_some(((r >> 20) % 1000) as f64 * 1.37 - 300.0),
            );
            orders.push(((r >> 44) % 9 != 0).then_some(((r >> 48) % 40) as i64));
            freq.push(((r >> 52) % 4) as i64 - 1);
        }
        let df = DataFrame::new_infer_height(vec![
            Column::new("rfm_segment".into(), seg),
            Column::new("region".into(), region),
            Column::new("channel".into(), channel),
            Column::new("total_amount".into(), amount),
            Column::new("clv".into(), clv),
            Column::new("orders".into(), orders),
            Column::new("frequency".into(), freq),
        ])
        .unwrap();
        let aggs: Vec<Agg> = vec![
            (Measure::Count, "customers"),
            (Measure::Sum("total_amount"), "revenue"),
            (Measure::Mean("orders"), "mean_orders"),
            (Measure::Mean("total_amount"), "mean_total_amount"),
            (Measure::PositiveShare("frequency"), "repeat_share"),
            (Measure::SumOrNull("clv"), "equity"),
            (Measure::Sum("clv"), "clv_sum"),
        ];
        let ours = sorted(
            aggregate(&df, "rfm_segment", &aggs).unwrap().lazy(),
            "rfm_segment",
        );
        let theirs = by_polars(&df, "rfm_segment", &aggs);
        assert_eq!(ours.shape(), theirs.shape(), "{ours}\n{theirs}");
        // all: 6 segments (with null); region: 6 values ("(unknown)" and null merged) × 6;
        // channel 3 × 6.
        assert_eq!(ours.height(), 6 + 6 * 6 + 3 * 6);
        for name in [
            "dimension_rank",
            "dimension",
            "dimension_value",
            "rfm_segment",
            "customers",
        ] {
            assert!(
                ours.column(name)
                    .unwrap()
                    .equals_missing(theirs.column(name).unwrap()),
                "{name}"
            );
        }
        for (_, name) in &aggs[1..] {
            let a = ours.column(name).unwrap().f64().unwrap().clone();
            let b = theirs.column(name).unwrap().f64().unwrap().clone();
            for (x, y) in a.iter().zip(b.iter()) {
                match (x, y) {
                    (Some(x), Some(y)) => {
                        assert!(
                            (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                            "{name}: {x} vs {y}"
                        )
                    }
                    (x, y) => assert_eq!(x, y, "{name}"),
                }
            }
        }
        // No customers: no groups, the same columns.
        let empty = aggregate(&df.head(Some(0)), "rfm_segment", &aggs).unwrap();
        assert_eq!(empty.height(), 0);
        assert_eq!(empty.get_column_names(), ours.get_column_names());
        // The "Lost" groups have no clv at all: null equity, zero sum.
        let lost = ours
            .clone()
            .lazy()
            .filter(col("rfm_segment").eq(lit("Lost")))
            .collect()
            .unwrap();
        assert_eq!(lost.column("equity").unwrap().null_count(), lost.height());
        assert!(lost
            .column("clv_sum")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .all(|v| v == 0.0));
    }
}
