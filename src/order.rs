//! Ordering floats: an integer key with `f64::total_cmp`'s order, and the ascending order of
//! many values for the rank-based features (RFM quintiles, percentile ranks), by a parallel
//! sort of (key, index) pairs that reads each value once instead of following indices into
//! the values at every comparison.

use rayon::prelude::*;

/// Indices of `values` in ascending `f64::total_cmp` order (NaN as given by `key`). Equal
/// values come out in an unspecified but deterministic order; the callers give equal values
/// the same result, so it does not matter.
pub(crate) fn ascending_order(values: &[f64], key: impl Fn(f64) -> f64 + Sync) -> Vec<usize> {
    let mut pairs: Vec<(i64, u32)> = values
        .par_iter()
        .enumerate()
        .map(|(i, &v)| (total_key(key(v)), i as u32))
        .collect();
    pairs.par_sort_unstable();
    pairs.into_par_iter().map(|(_, i)| i as usize).collect()
}

/// An integer whose order is `f64::total_cmp`'s.
pub(crate) fn total_key(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

/// The inverse of [`total_key`].
pub(crate) fn from_total_key(k: i64) -> f64 {
    f64::from_bits((k ^ (((k >> 63) as u64) >> 1) as i64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_a_sort_by_total_cmp() {
        let v = [3.0, -0.0, f64::NAN, 0.0, -7.5, 3.0, f64::INFINITY, 1e-300];
        let got = ascending_order(&v, |x| x);
        let sorted: Vec<u64> = got.iter().map(|&i| v[i].to_bits()).collect();
        let mut want = v.to_vec();
        want.sort_by(f64::total_cmp);
        assert_eq!(sorted, want.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        // NaN mapped by the key sorts where the key puts it.
        let got = ascending_order(&v, |x| if x.is_nan() { f64::NEG_INFINITY } else { x });
        assert_eq!(got[0], 2);
    }
}
