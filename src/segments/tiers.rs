//! High / medium / low value tiers.
//!
//! Customers are ordered by value, highest first; ties are broken by customer id so that the
//! assignment is deterministic.
//! - Pareto: a customer is `high` while the revenue share of the customers before it is below
//!   `high` (default 0.8: the customers who together make the first 80% of revenue), `medium`
//!   while it is below `medium` (default 0.95), else `low`. When total value is not positive,
//!   every customer is `low`.
//! - Percentile: the top `high` fraction of customers (default 20%) is `high`, the next
//!   `medium` fraction (default 30%) `medium`, the rest `low`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
/// Value-tier settings after validation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum TierMethod {
    /// Tiers by cumulative revenue share, customers ranked by value.
    Pareto {
        /// A customer is `high` while the revenue share of the customers before it is below this.
        high: f64,
        /// Otherwise `medium` while that share is below this, else `low`.
        medium: f64,
    },
    /// Tiers by rank: fractions of customers, ranked by value.
    Percentile {
        /// Fraction of customers, from the top, that is `high`.
        high: f64,
        /// Fraction of customers, after the `high` ones, that is `medium`.
        medium: f64,
    },
}

/// Tier of each customer, in input order.
pub(crate) fn value_tiers(ids: &[&str], value: &[f64], method: &TierMethod) -> Vec<&'static str> {
    let n = value.len();
    let order = by_value_then_id(ids, value);
    let mut tier = vec!["low"; n];
    match *method {
        TierMethod::Pareto { high, medium } => {
            let total: f64 = value.iter().filter(|v| v.is_finite()).sum();
            if total <= 0.0 {
                return tier;
            }
            let mut before = 0.0;
            for &i in &order {
                let share = before / total;
                tier[i] = if share < high {
                    "high"
                } else if share < medium {
                    "medium"
                } else {
                    "low"
                };
                if value[i].is_finite() {
                    before += value[i];
                }
            }
        }
        TierMethod::Percentile { high, medium } => {
            for (pos, &i) in order.iter().enumerate() {
                let frac = pos as f64 / n as f64;
                tier[i] = if frac < high {
                    "high"
                } else if frac < high + medium {
                    "medium"
                } else {
                    "low"
                };
            }
        }
    }
    tier
}

/// Customer positions by value, highest first, ties by id.
///
/// Customers come sorted by id (the merged summary is), and then the id order is the
/// position order: one unstable sort of (value, position) integer keys, without comparing
/// strings (the stable sort with string ties was most of the `features` step: values tie
/// often). Otherwise, or with NaN values (which compare equal to every value there), the
/// stable sort by value, then id.
fn by_value_then_id(ids: &[&str], value: &[f64]) -> Vec<usize> {
    let ids_ascending = ids.par_windows(2).all(|w| w[0] <= w[1]);
    if ids_ascending && !value.par_iter().any(|v| v.is_nan()) {
        // Highest first; + 0.0 makes −0 equal to 0, as compared below; ties in position order.
        return crate::order::ascending_order(value, |v| -(v + 0.0));
    }
    by_compare(ids, value)
}

/// [`by_value_then_id`] by a stable sort comparing values, then ids.
fn by_compare(ids: &[&str], value: &[f64]) -> Vec<usize> {
    let mut pairs: Vec<(f64, u32)> = value
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i as u32))
        .collect();
    pairs.par_sort_by(|&(va, a), &(vb, b)| {
        vb.partial_cmp(&va)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| ids[a as usize].cmp(ids[b as usize]))
    });
    pairs.iter().map(|&(_, i)| i as usize).collect()
}

/// `[tiers]`: high / medium / low value tiers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TiersFile {
    /// `"pareto"`: customers ranked by revenue; high = those making the first `high` share of
    /// revenue, medium = up to `medium` share, low = the rest. `"percentile"`: high = the top `high`
    /// fraction of customers by revenue, medium = the next `medium` fraction.
    #[serde(default)]
    pub method: TierMethodName,
    /// Default 0.8 (pareto) / 0.2 (percentile).
    pub high: Option<f64>,
    /// Default 0.95 (pareto) / 0.3 (percentile).
    pub medium: Option<f64>,
}

/// `tiers.method` as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TierMethodName {
    /// Tiers by cumulative revenue share ([`TierMethod::Pareto`]).
    #[default]
    Pareto,
    /// Tiers by fractions of customers ([`TierMethod::Percentile`]).
    Percentile,
}

impl Default for TiersFile {
    fn default() -> Self {
        TiersFile {
            method: TierMethodName::Pareto,
            high: None,
            medium: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_by_hand() {
        // Total 100. Sorted: a=50 (before 0%), b=30 (before 50%), c=15 (before 80%),
        // d=4 (before 95%), e=1 (before 99%).
        let ids = ["c", "a", "e", "b", "d"];
        let v = [15.0, 50.0, 1.0, 30.0, 4.0];
        let t = value_tiers(
            &ids,
            &v,
            &TierMethod::Pareto {
                high: 0.8,
                medium: 0.95,
            },
        );
        assert_eq!(t, ["medium", "high", "low", "high", "low"]);
    }

    #[test]
    fn percentile_by_hand_with_ties_broken_by_id() {
        let ids = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let v = [5.0, 5.0, 9.0, 1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 8.0];
        // Order: c(9) j(8) i(7) h(6) a(5) b(5) g(4) f(3) e(2) d(1).
        let t = value_tiers(
            &ids,
            &v,
            &TierMethod::Percentile {
                high: 0.2,
                medium: 0.3,
            },
        );
        assert_eq!(
            t,
            ["medium", "low", "high", "low", "low", "low", "low", "medium", "medium", "high"]
        );
    }

    #[test]
    fn no_revenue_means_all_low() {
        let t = value_tiers(
            &["a", "b"],
            &[0.0, -1.0],
            &TierMethod::Pareto {
                high: 0.8,
                medium: 0.95,
            },
        );
        assert_eq!(t, ["low", "low"]);
    }

    #[test]
    fn order_by_integer_keys_equals_the_comparison_sort() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        let ids: Vec<String> = (0..n).map(|i| format!("C{i:06}")).collect();
        let ids: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
        // Many ties, zeros of both signs, negatives, infinities.
        let value: Vec<f64> = (0..n)
            .map(|_| match rng.random_range(0..10) {
                0 => -0.0,
                1 => 0.0,
                2 => f64::INFINITY,
                3 => -(rng.random_range(0..5) as f64),
                _ => rng.random_range(0..40) as f64 * 2.5,
            })
            .collect();
        let fast = by_value_then_id(&ids, &value);
        assert_eq!(fast, by_compare(&ids, &value));
        // Values tie, so the tie-break is exercised.
        assert!(fast.windows(2).any(|w| value[w[0]] == value[w[1]]));
        // Ids out of order: the comparison sort.
        let mut shuffled = ids.clone();
        shuffled.swap(0, n - 1);
        assert_eq!(
            by_value_then_id(&shuffled, &value),
            by_compare(&shuffled, &value)
        );
        assert_ne!(by_compare(&shuffled, &value), by_compare(&ids, &value));
    }
}
