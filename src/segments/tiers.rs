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
    // Sorted as (value, index) pairs, in parallel: each comparison reads the pairs, and the
    // ids only on equal values.
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
    let order: Vec<usize> = pairs.iter().map(|&(_, i)| i as usize).collect();
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
}
