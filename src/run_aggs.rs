//! Aggregations over runs: rows sorted so that each group's rows are contiguous, the group
//! of each row numbered from 0 upward (`group`, one per row).
//!
//! polars aggregates such slice groups one group at a time, building an array for each
//! group before summing it; with tens of thousands of one- or two-row groups per bucket that
//! was a tenth of a 50 M-row run. Here each aggregation is one pass. Sums use polars' own
//! float summation, so they equal polars' grouped sums bit for bit.

use polars::prelude::*;
use polars_compute::float_sum::FloatSum;

/// Where each run starts, then the number of rows: run `r` is `starts[r]..starts[r + 1]`.
pub(crate) fn run_starts(group: &[u32]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(group.last().map_or(1, |&g| g as usize + 2));
    for i in 0..group.len() {
        if i == 0 || group[i] != group[i - 1] {
            starts.push(i);
        }
    }
    starts.push(group.len());
    starts
}

/// The value of each run's first row.
pub(crate) fn firsts(values: &Column, starts: &[usize]) -> PolarsResult<Column> {
    let idx: Vec<IdxSize> = starts[..starts.len() - 1]
        .iter()
        .map(|&s| s as IdxSize)
        .collect();
    values.take(&IdxCa::from_vec(values.name().clone(), idx))
}

/// The number of rows of each run.
pub(crate) fn lens(starts: &[usize]) -> Vec<i64> {
    starts.windows(2).map(|w| (w[1] - w[0]) as i64).collect()
}

/// `f` of each run's values; None when a value is null.
fn per_run<T, R>(
    values: &ChunkedArray<T>,
    starts: &[usize],
    f: impl Fn(&[T::Native]) -> R,
) -> Option<Vec<R>>
where
    T: PolarsNumericType,
{
    if values.null_count() > 0 {
        return None;
    }
    let values = values.rechunk();
    let values = values.cont_slice().ok()?;
    Some(starts.windows(2).map(|w| f(&values[w[0]..w[1]])).collect())
}

/// Each run's sum of `values`, as polars sums a group; None when a value is null.
pub(crate) fn float_sums(values: &Float64Chunked, starts: &[usize]) -> Option<Vec<f64>> {
    per_run(values, starts, float_sum)
}

/// [`float_sums`] of values without nulls.
pub(crate) fn float_sums_of(values: &[f64], starts: &[usize]) -> Vec<f64> {
    starts
        .windows(2)
        .map(|w| float_sum(&values[w[0]..w[1]]))
        .collect()
}

/// A run's sum, as polars sums a group.
fn float_sum(run: &[f64]) -> f64 {
    match run {
        // polars takes a one-row group's value as it is (keeping a negative zero).
        [one] => *one,
        _ => <f64 as FloatSum<f64>>::sum(run),
    }
}

/// Each run's sum of `values`; None when a value is null.
pub(crate) fn int_sums(values: &Int64Chunked, starts: &[usize]) -> Option<Vec<i64>> {
    per_run(values, starts, |run| {
        run.iter().copied().fold(0i64, i64::wrapping_add)
    })
}

/// Each run's smallest and largest value; None when a value is null.
pub(crate) fn int_min_max(values: &Int32Chunked, starts: &[usize]) -> Option<(Vec<i32>, Vec<i32>)> {
    let both = per_run(values, starts, |run| {
        let min = *run.iter().min().expect("runs are not empty");
        let max = *run.iter().max().expect("runs are not empty");
        (min, max)
    })?;
    Some(both.into_iter().unzip())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random groups of 1 to 300 rows (sums of more than 128 values take polars' pairwise
    /// path), with values of mixed sign and magnitude.
    fn frame() -> DataFrame {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x2545_f491_4f6c_dd1d);
        let mut next = move || rng.random::<u64>();
        let (mut g, mut v, mut k, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for group in 0..400u32 {
            let len = match next() % 10 {
                0 => 129 + next() % 170,
                1..=5 => 1,
                _ => 2 + next() % 20,
            };
            for _ in 0..len {
                g.push(group);
                let x = (next() % 2_000_001) as f64 / 7.0 - 1e5;
                v.push(if next() % 50 == 0 { x * 1e9 } else { x });
                k.push((next() % 1000) as i64 - 500);
                d.push((next() % 5000) as i32 - 100);
            }
        }
        // Flagged sorted, as the callers' group columns are: polars then groups by slices
        // (and sums each with its float summation, not the plain fold of hashed groups).
        let mut g = UInt32Chunked::from_vec("g".into(), g);
        g.set_sorted_flag(polars::series::IsSorted::Ascending);
        let mut df = df!("v" => v, "k" => k, "d" => d).unwrap();
        df.with_column(g.into_column()).unwrap();
        df
    }

    #[test]
    fn run_aggregations_equal_polars_group_by_bit_for_bit() {
        let df = frame();
        let group: Vec<u32> = df
            .column("g")
            .unwrap()
            .u32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        let starts = run_starts(&group);
        let want = df
            .clone()
            .lazy()
            .group_by_stable([col("g")])
            .agg([
                col("v").sum().alias("sum"),
                col("v").first().alias("first"),
                len().cast(DataType::Int64).alias("len"),
                col("k").sum().alias("ksum"),
                col("d").min().alias("dmin"),
                col("d").max().alias("dmax"),
            ])
            .collect()
            .unwrap();
        let sums = float_sums(df.column("v").unwrap().f64().unwrap(), &starts).unwrap();
        let want_sums: Vec<f64> = want
            .column("sum")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(sums.len(), 400);
        for (a, b) in sums.iter().zip(&want_sums) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b}");
        }
        let first = firsts(df.column("v").unwrap(), &starts).unwrap();
        assert!(first.as_materialized_series().equals(
            &want
                .column("first")
                .unwrap()
                .as_materialized_series()
                .clone()
                .with_name("v".into())
        ));
        let want_i64 = |c: &str| -> Vec<i64> {
            want.column(c)
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        assert_eq!(lens(&starts), want_i64("len"));
        let ksums = int_sums(df.column("k").unwrap().i64().unwrap(), &starts).unwrap();
        assert_eq!(ksums, want_i64("ksum"));
        let (min, max) = int_min_max(df.column("d").unwrap().i32().unwrap(), &starts).unwrap();
        let want_i32 = |c: &str| -> Vec<i32> {
            want.column(c)
                .unwrap()
                .i32()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        assert_eq!(min, want_i32("dmin"));
        assert_eq!(max, want_i32("dmax"));
        // A null anywhere: no answer (the callers fall back to polars).
        let with_null = Float64Chunked::new("v".into(), &[Some(1.0), None]);
        assert!(float_sums(&with_null, &[0, 2]).is_none());
        // A one-row group keeps a negative zero, as polars does.
        let neg = Float64Chunked::new("v".into(), &[-0.0]);
        assert!(float_sums(&neg, &[0, 1]).unwrap()[0].is_sign_negative());
    }
}
