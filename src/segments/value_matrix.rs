//! Value × relationship matrix: four quadrants and the action each calls for.
//!
//! A customer is *high value* when its value is ≥ the value threshold and has a *strong
//! relationship* when its relationship score is ≥ the relationship threshold; otherwise low /
//! weak. "≥" puts customers tied at the threshold on the high / strong side, so with the
//! median as threshold at least half of the customers are high (strong). NaN compares as
//! below every threshold, so a NaN value is low and a NaN score weak.
//!
//! The thresholds are usually the medians of the population ([`median`]).
//!
//! | quadrant | action |
//! |---|---|
//! | high value / strong relationship | keep and personalise |
//! | high value / weak relationship | strengthen the relationship |
//! | low value / strong relationship | grow the value |
//! | low value / weak relationship | serve at low cost |

/// Median of the non-NaN values: the middle value, or the mean of the two middle values for an
/// even count; NaN when there is no value.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Quadrant of each customer, in input order. Panics when the slices differ in length.
pub fn quadrants(
    value: &[f64],
    relationship: &[f64],
    value_threshold: f64,
    relationship_threshold: f64,
) -> Vec<&'static str> {
    assert_eq!(value.len(), relationship.len(), "quadrants: slice lengths");
    value
        .iter()
        .zip(relationship)
        .map(
            |(&v, &r)| match (v >= value_threshold, r >= relationship_threshold) {
                (true, true) => "high value / strong relationship",
                (true, false) => "high value / weak relationship",
                (false, true) => "low value / strong relationship",
                (false, false) => "low value / weak relationship",
            },
        )
        .collect()
}

/// The action for a quadrant name returned by [`quadrants`]; `""` for any other string.
pub fn action(quadrant: &str) -> &'static str {
    match quadrant {
        "high value / strong relationship" => "keep and personalise",
        "high value / weak relationship" => "strengthen the relationship",
        "low value / strong relationship" => "grow the value",
        "low value / weak relationship" => "serve at low cost",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_by_hand() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 5.0, 1.0]), 3.0);
        assert!(median(&[]).is_nan());
        assert!(median(&[f64::NAN]).is_nan());
    }

    #[test]
    fn quadrants_with_ties_at_the_median() {
        // Values 10, 20, 20, 20, 30 → median 20; scores 1, 5, 2, 5, 5 → median 5.
        let value = [10.0, 20.0, 20.0, 20.0, 30.0];
        let rel = [1.0, 5.0, 2.0, 5.0, 5.0];
        let (vt, rt) = (median(&value), median(&rel));
        assert_eq!((vt, rt), (20.0, 5.0));
        let q = quadrants(&value, &rel, vt, rt);
        assert_eq!(
            q,
            [
                "low value / weak relationship",
                "high value / strong relationship", // both tied at the median
                "high value / weak relationship",
                "high value / strong relationship",
                "high value / strong relationship",
            ]
        );
        let actions: Vec<&str> = q.iter().map(|s| action(s)).collect();
        assert_eq!(
            actions,
            [
                "serve at low cost",
                "keep and personalise",
                "strengthen the relationship",
                "keep and personalise",
                "keep and personalise",
            ]
        );
        assert_eq!(
            quadrants(&[1.0, f64::NAN], &[9.0, 9.0], 5.0, 5.0),
            [
                "low value / strong relationship",
                "low value / strong relationship"
            ]
        );
        assert_eq!(action("low value / strong relationship"), "grow the value");
        assert_eq!(action("nonsense"), "");
    }
}
