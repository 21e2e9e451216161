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
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    // Selection, not a sort: the middle order statistics only.
    let n = v.len();
    let (left, &mut mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        mid
    } else {
        let below = left.iter().copied().max_by(f64::total_cmp).unwrap_or(mid);
        (below + mid) / 2.0
    }
}

/// A quadrant of the value × relationship matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Quadrant {
    /// High value, strong relationship: keep and personalise.
    HighStrong,
    /// High value, weak relationship: strengthen the relationship.
    HighWeak,
    /// Low value, strong relationship: grow the value.
    LowStrong,
    /// Low value, weak relationship: serve at low cost.
    LowWeak,
}

impl Quadrant {
    /// The four quadrants, high value first.
    pub(crate) const ALL: [Quadrant; 4] = [
        Quadrant::HighStrong,
        Quadrant::HighWeak,
        Quadrant::LowStrong,
        Quadrant::LowWeak,
    ];

    /// The label written to `value_quadrant` (a stable output value).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Quadrant::HighStrong => "high value / strong relationship",
            Quadrant::HighWeak => "high value / weak relationship",
            Quadrant::LowStrong => "low value / strong relationship",
            Quadrant::LowWeak => "low value / weak relationship",
        }
    }

    /// The recommended action (`recommended_action`, `value_matrix.action`).
    pub(crate) fn action(self) -> &'static str {
        match self {
            Quadrant::HighStrong => "keep and personalise",
            Quadrant::HighWeak => "strengthen the relationship",
            Quadrant::LowStrong => "grow the value",
            Quadrant::LowWeak => "serve at low cost",
        }
    }

    /// The quadrant of a label written by [`Quadrant::as_str`].
    pub(crate) fn parse(label: &str) -> Option<Quadrant> {
        Self::ALL.into_iter().find(|q| q.as_str() == label)
    }
}

/// Quadrant of each customer, in input order. Panics when the slices differ in length.
pub(crate) fn quadrants(
    value: &[f64],
    relationship: &[f64],
    value_threshold: f64,
    relationship_threshold: f64,
) -> Vec<Quadrant> {
    assert_eq!(value.len(), relationship.len(), "quadrants: slice lengths");
    value
        .iter()
        .zip(relationship)
        .map(
            |(&v, &r)| match (v >= value_threshold, r >= relationship_threshold) {
                (true, true) => Quadrant::HighStrong,
                (true, false) => Quadrant::HighWeak,
                (false, true) => Quadrant::LowStrong,
                (false, false) => Quadrant::LowWeak,
            },
        )
        .collect()
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
        let q: Vec<&str> = quadrants(&value, &rel, vt, rt)
            .into_iter()
            .map(Quadrant::as_str)
            .collect();
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
        let actions: Vec<&str> = q
            .iter()
            .map(|s| Quadrant::parse(s).unwrap().action())
            .collect();
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
            [Quadrant::LowStrong, Quadrant::LowStrong]
        );
        assert_eq!(Quadrant::LowStrong.action(), "grow the value");
        assert_eq!(Quadrant::parse("nonsense"), None);
        for q in Quadrant::ALL {
            assert_eq!(Quadrant::parse(q.as_str()), Some(q));
        }
    }
}
