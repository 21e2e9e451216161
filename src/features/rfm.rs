//! RFM: recency, frequency, monetary value and their 1–5 quintile scores.
//!
//! Tie rule (deterministic, independent of row order): customers are ranked by the value with
//! the `min` method (ties share the lowest rank), and the score is
//! `1 + floor(5 · (rank − 1) / n)`. Equal values therefore always get equal scores, and a score
//! band can be empty when one value covers more than a fifth of the customers (for example when
//! most customers bought once, F skips from 1 to the band where repeat buyers start). This is the
//! honest answer for heavily tied data, where quantile edges (pandas `qcut`) would fail or depend
//! on row order.
//!
//! Axes, higher score = better customer:
//! - R from `days_since_last` (fewer days → higher score),
//! - F from `orders`,
//! - M from `total_amount`.

/// 1–5 scores of `values`, higher value → higher score, with the tie rule above.
/// NaN values get score 1.
pub(crate) fn quintile_scores(values: &[f64]) -> Vec<u8> {
    use rayon::prelude::*;
    let n = values.len();
    // Whole numbers in a small range (days, orders): ranks from counts, no sort. NaN values
    // are the lowest: they come first.
    if let Some(h) = crate::order::Histogram::of_whole_numbers(values) {
        return values
            .par_iter()
            .map(|&v| {
                let pos = if v.is_nan() {
                    0
                } else {
                    h.nan + h.cell(v).0 as usize
                };
                1 + (5 * pos / n) as u8
            })
            .collect();
    }
    quintile_scores_sorted(values)
}

/// [`quintile_scores`] by sorting: any values.
fn quintile_scores_sorted(values: &[f64]) -> Vec<u8> {
    let n = values.len();
    let nan_lowest = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    let order = crate::order::ascending_order(values, nan_lowest);
    let key = |i: usize| nan_lowest(values[i]);
    let mut scores = vec![1u8; n];
    let mut pos = 0;
    while pos < n {
        // [pos, end) share one value: all get the min rank pos + 1.
        let mut end = pos + 1;
        while end < n && key(order[end]) == key(order[pos]) {
            end += 1;
        }
        let score = 1 + (5 * pos / n) as u8;
        for &i in &order[pos..end] {
            scores[i] = score;
        }
        pos = end;
    }
    scores
}

/// The RFM code, e.g. `"543"`, of scores 0–9 (from a table: no allocation per customer).
pub(crate) fn rfm_code(r: u8, f: u8, m: u8) -> &'static str {
    static CODES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let codes = CODES.get_or_init(|| (0..1000).map(|i| format!("{i:03}")).collect());
    assert!(r < 10 && f < 10 && m < 10, "RFM scores are single digits");
    &codes[r as usize * 100 + f as usize * 10 + m as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_from_counts_equal_scores_from_sorting() {
        for n in [1usize, 2, 3, 7, 1000, 5000] {
            for nan_share in [0u32, 5, 100] {
                // Heavily tied: most values are 1, as orders are.
                let v = crate::order::random_whole_numbers(11 + n as u64, n, nan_share, 60);
                assert!(crate::order::Histogram::of_whole_numbers(&v).is_some());
                assert_eq!(
                    quintile_scores(&v),
                    quintile_scores_sorted(&v),
                    "n {n} nan {nan_share}%"
                );
            }
        }
    }

    #[test]
    fn ten_distinct_values_give_two_per_score() {
        let v: Vec<f64> = (1..=10).map(|x| x as f64).collect();
        assert_eq!(quintile_scores(&v), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    }

    #[test]
    fn ties_share_the_lowest_score_and_order_does_not_matter() {
        // Six of ten customers bought once: ranks 1..6 share min rank 1 → score 1; value 2 has
        // min rank 7 → 1 + floor(5·6/10) = 4; value 3 at rank 9 → 1 + floor(40/10) = 5.
        let v = [1.0, 2.0, 1.0, 1.0, 3.0, 1.0, 2.0, 1.0, 3.0, 1.0];
        assert_eq!(quintile_scores(&v), [1, 4, 1, 1, 5, 1, 4, 1, 5, 1]);
        let mut rev = v;
        rev.reverse();
        let mut s = quintile_scores(&rev);
        s.reverse();
        assert_eq!(s, quintile_scores(&v));
    }

    #[test]
    fn recency_axis_is_negated_by_the_caller() {
        let days = [0.0, 100.0, 50.0];
        let neg: Vec<f64> = days.iter().map(|d| -d).collect();
        assert_eq!(quintile_scores(&neg), [4, 1, 2]);
        assert_eq!(rfm_code(5, 4, 3), "543");
    }
}
