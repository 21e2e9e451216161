//! Customers collapsed to their distinct rows of values, by sorting instead of hashing.
//!
//! The fits evaluate each distinct `(x, t_x, T)` once, weighted by how many customers share
//! it. Collapsing a million customers through a hash table of 24-byte keys was most of a
//! BG/NBD fit (0.14 of 0.20 s on the 1 M-customer benchmark): the table does not fit in cache
//! and the inserts run on one thread. Here the keys are sorted in parallel instead, packed into
//! one integer when every value is a small whole number (counts and whole days, the usual
//! case). Both paths give the same rows in the same (ascending) order.

use crate::order::{from_total_key, total_key};
use rayon::prelude::*;

/// The distinct rows of `K` columns and how many input rows each stands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Distinct<const K: usize> {
    /// Distinct rows, ascending: by the first column, then the second, … (`f64::total_cmp`).
    pub rows: Vec<[f64; K]>,
    /// The number of input rows equal (bit for bit) to each distinct row.
    pub counts: Vec<u32>,
}

/// The distinct rows of the columns `cols` (all of one length).
pub(crate) fn distinct<const K: usize>(cols: [&[f64]; K]) -> Distinct<K> {
    let n = cols.first().map_or(0, |c| c.len());
    assert!(cols.iter().all(|c| c.len() == n), "columns of one length");
    match packed_bits(&cols) {
        Some(bits) => distinct_packed(cols, bits),
        None => distinct_general(cols),
    }
}

/// Bits per column of the packed key when every value is a whole number in `[0, 2^bits)` with
/// a clear sign bit (so −0.0 takes the general path, which keeps it apart from 0.0).
fn packed_bits<const K: usize>(cols: &[&[f64]; K]) -> Option<u32> {
    let bits = (64 / K as u32).min(53);
    let limit = (1u64 << bits) as f64;
    let fits = |v: &f64| v.to_bits() >> 63 == 0 && *v < limit && v.fract() == 0.0;
    cols.iter().all(|c| c.par_iter().all(fits)).then_some(bits)
}

fn distinct_packed<const K: usize>(cols: [&[f64]; K], bits: u32) -> Distinct<K> {
    let n = cols.first().map_or(0, |c| c.len());
    let mut keys: Vec<u64> = (0..n)
        .into_par_iter()
        .map(|i| cols.iter().fold(0u64, |k, c| (k << bits) | c[i] as u64))
        .collect();
    keys.par_sort_unstable();
    let mask = (1u64 << bits) - 1;
    runs(&keys, |&k| {
        let mut row = [0.0; K];
        for (j, v) in row.iter_mut().enumerate() {
            *v = ((k >> (bits * (K - 1 - j) as u32)) & mask) as f64;
        }
        row
    })
}

fn distinct_general<const K: usize>(cols: [&[f64]; K]) -> Distinct<K> {
    let n = cols.first().map_or(0, |c| c.len());
    let mut keys: Vec<[i64; K]> = (0..n)
        .into_par_iter()
        .map(|i| std::array::from_fn(|j| total_key(cols[j][i])))
        .collect();
    keys.par_sort_unstable();
    runs(&keys, |k| std::array::from_fn(|j| from_total_key(k[j])))
}

/// The distinct values of `a` and `b` together, ascending, and the index of each value of `a`
/// and of `b` into them. Whole numbers below 2^22 (days, counts) are placed through a table
/// indexed by value; other values by a sort and binary search.
pub(crate) fn shared_index(a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<u32>, Vec<u32>) {
    let whole = |v: &f64| v.to_bits() >> 63 == 0 && *v < (1u64 << 22) as f64 && v.fract() == 0.0;
    let max = a.iter().chain(b).fold(0.0f64, |m, &v| m.max(v));
    let small = max <= (8 * (a.len() + b.len()) + 1024) as f64;
    if small && a.par_iter().all(whole) && b.par_iter().all(whole) {
        let mut slot = vec![u32::MAX; max as usize + 1];
        for &v in a.iter().chain(b) {
            slot[v as usize] = 0;
        }
        let mut values = Vec::new();
        for (v, s) in slot.iter_mut().enumerate() {
            if *s == 0 {
                *s = values.len() as u32;
                values.push(v as f64);
            }
        }
        let at = |v: &f64| slot[*v as usize];
        return (
            values,
            a.par_iter().map(at).collect(),
            b.par_iter().map(at).collect(),
        );
    }
    let both: Vec<f64> = a.iter().chain(b).copied().collect();
    let values: Vec<f64> = distinct([&both[..]])
        .rows
        .into_iter()
        .map(|[v]| v)
        .collect();
    let at = |v: &f64| {
        values
            .binary_search_by(|p| p.total_cmp(v))
            .expect("every value is in the table") as u32
    };
    let (ia, ib) = (
        a.par_iter().map(at).collect(),
        b.par_iter().map(at).collect(),
    );
    (values, ia, ib)
}

/// One row per run of equal sorted keys, with the run's length.
fn runs<T: PartialEq, const K: usize>(sorted: &[T], row: impl Fn(&T) -> [f64; K]) -> Distinct<K> {
    let mut out = Distinct {
        rows: Vec::new(),
        counts: Vec::new(),
    };
    for run in sorted.chunk_by(|a, b| a == b) {
        out.rows.push(row(&run[0]));
        out.counts.push(run.len() as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The distinct rows by a BTreeMap of total-order keys: an independent count.
    fn by_map<const K: usize>(cols: [&[f64]; K]) -> Distinct<K> {
        let mut m: BTreeMap<[i64; K], u32> = BTreeMap::new();
        let n = cols[0].len();
        for key in (0..n).map(|i| std::array::from_fn(|j| total_key(cols[j][i]))) {
            *m.entry(key).or_default() += 1;
        }
        Distinct {
            rows: m
                .keys()
                .map(|k| std::array::from_fn(|j| from_total_key(k[j])))
                .collect(),
            counts: m.values().copied().collect(),
        }
    }

    fn bits<const K: usize>(d: &Distinct<K>) -> Vec<[u64; K]> {
        d.rows.iter().map(|r| r.map(f64::to_bits)).collect()
    }

    #[test]
    fn whole_numbers_and_general_values_give_the_rows_a_map_gives() {
        // Whole days and counts (the packed path), with repeats.
        let x: Vec<f64> = (0..5000).map(|i| ((i % 700 * 7) % 13) as f64).collect();
        let tx: Vec<f64> = (0..5000).map(|i| ((i % 700 * 11) % 97) as f64).collect();
        let t: Vec<f64> = (0..5000)
            .map(|i| (100 + (i % 700 * 3) % 29) as f64)
            .collect();
        assert!(packed_bits(&[&x[..], &tx, &t]).is_some());
        let got = distinct([&x[..], &tx, &t]);
        let want = by_map([&x[..], &tx, &t]);
        assert_eq!(bits(&got), bits(&want));
        assert_eq!(got.counts, want.counts);
        assert_eq!(got.counts.iter().sum::<u32>(), 5000);
        assert!(got.rows.len() < 5000, "the input repeats rows");

        // Weeks (fractions), −0.0 beside 0.0, a value too large to pack: the general path.
        let mut tx2: Vec<f64> = tx.iter().map(|v| v / 7.0).collect();
        tx2[3] = -0.0;
        tx2[4] = 0.0;
        tx2[5] = 3.0e9;
        assert!(packed_bits(&[&x[..], &tx2, &t]).is_none());
        let got = distinct([&x[..], &tx2, &t]);
        let want = by_map([&x[..], &tx2, &t]);
        assert_eq!(bits(&got), bits(&want));
        assert_eq!(got.counts, want.counts);

        // The packed and general paths agree on whole numbers.
        assert_eq!(
            bits(&distinct_general([&x[..], &tx, &t])),
            bits(&distinct_packed([&x[..], &tx, &t], 21))
        );
        // Values at the edge of the packed range.
        let big = [
            0.0,
            (1u64 << 21) as f64 - 1.0,
            5.0,
            (1u64 << 21) as f64 - 1.0,
        ];
        let d = distinct([&big[..], &big, &big]);
        assert_eq!(bits(&d), bits(&by_map([&big[..], &big, &big])));
        assert_eq!(d.counts, vec![1, 1, 2]);
        assert_eq!(distinct::<2>([&[], &[]]).rows.len(), 0);
    }

    #[test]
    fn shared_index_points_every_value_at_itself() {
        let check = |a: &[f64], b: &[f64]| {
            let (values, ia, ib) = shared_index(a, b);
            let mut want: Vec<f64> = a.iter().chain(b).copied().collect();
            want.sort_by(f64::total_cmp);
            want.dedup_by(|p, q| p.to_bits() == q.to_bits());
            assert_eq!(values, want);
            for (v, i) in a.iter().zip(&ia).chain(b.iter().zip(&ib)) {
                assert_eq!(values[*i as usize].to_bits(), v.to_bits());
            }
        };
        // Whole days (the table), fractions and a huge value (the sort).
        check(&[0.0, 5.0, 5.0, 700.0, 3.0], &[700.0, 12.0, 0.0]);
        check(&[0.5, 5.0, 1e12], &[5.0, 2.25]);
        check(&[], &[]);
    }
}
