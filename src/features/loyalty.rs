//! Loyalty score, loyalty tier and relationship-quality score, each 0–100.
//!
//! **Percentile rank** (used to put counts and durations on a 0–1 scale):
//! `(r − 1) / (m − 1)`, where r is the value's rank among the m non-NaN values (1 = lowest) and
//! tied values share the average of their ranks. The lowest value gets 0, the highest 1, ties
//! the same value (all values equal → 0.5 each). NaN values get 0. When only one value is
//! ranked it gets 1.0 (a lone customer is the best of its population, not the worst). Ranks
//! rather than min–max scaling so that one extreme customer does not squash everyone else.
//!
//! **Loyalty score** = 100 × Σ w_c · c / Σ w_c over the components
//! - `repeat_rate` = frequency / purchase days (repeat purchase days per purchase day), as is,
//! - `regularity` = 1 / (1 + gap_cv); 0 for customers without a gap CV (fewer than 3 purchase
//!   days: no rhythm shown yet),
//! - `tenure` = percentile rank of tenure days,
//! - `active_share` = share of periods with a purchase, as is,
//! - `breadth` = percentile rank of distinct categories; when categories are not mapped its
//!   weight is dropped and the others are renormalised by the division by Σ w_c.
//!
//! Default weights 0.25 / 0.2 / 0.2 / 0.25 / 0.1. **Tier**: `"high"` if score ≥ 67, `"medium"` if
//! ≥ 33, else `"low"`.
//!
//! **Relationship score** = 100 × Σ w_c · c / Σ w_c over the components that are present:
//! - `loyalty` = loyalty score / 100 (weight 0.35),
//! - `interaction` = percentile rank of purchase days per 30 days of tenure,
//!   `30 · purchase_days / max(tenure_days, 1)` (weight 0.2),
//! - `depth` = mean of the percentile ranks of tenure days and orders (weight 0.25),
//! - `breadth` = mean of the percentile ranks of distinct categories and distinct channels,
//!   of those given; dropped when neither is (weight 0.2). custval passes the category count
//!   (when categories are mapped) and no channel count,
//! - `satisfaction` = a caller-scaled value in [0, 1]; customers without one get the mean of
//!   those who have one; dropped when the column is absent or nobody has a value (weight 0),
//! - `interactions` = percentile rank of the number of service interactions; dropped when
//!   absent (weight 0).
//!
//! Satisfaction and interactions have weight 0 by default: they count only when the job maps
//! them *and* gives them a weight.

/// Percentile ranks in [0, 1], in input order; see the module doc for the rule.
pub(crate) fn percentile_ranks(values: &[f64]) -> Vec<f64> {
    use rayon::prelude::*;
    // Whole numbers in a small range (days, orders, counts): ranks from counts, no sort.
    if let Some(h) = crate::order::Histogram::of_whole_numbers(values) {
        let m = (values.len() - h.nan) as f64;
        return values
            .par_iter()
            .map(|&v| {
                if v.is_nan() {
                    0.0
                } else if m == 1.0 {
                    1.0
                } else {
                    let (below, equal) = h.cell(v);
                    // Ranks below+1 ..= below+equal share their mean.
                    let rank = (2 * below + 1 + equal) as f64 / 2.0;
                    (rank - 1.0) / (m - 1.0)
                }
            })
            .collect();
    }
    percentile_ranks_sorted(values)
}

/// [`percentile_ranks`] by sorting: any values.
fn percentile_ranks_sorted(values: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; values.len()];
    let mut order = crate::order::ascending_order(values, |v| v);
    order.retain(|&i| !values[i].is_nan());
    let m = order.len();
    if m == 1 {
        out[order[0]] = 1.0;
        return out;
    }
    let mut pos = 0;
    while pos < m {
        let mut end = pos + 1;
        // total_cmp would split 0.0 and -0.0; == keeps them tied.
        while end < m && values[order[end]] == values[order[pos]] {
            end += 1;
        }
        // Ranks pos+1 ..= end share their mean (pos + 1 + end) / 2.
        let rank = (pos + 1 + end) as f64 / 2.0;
        let scaled = (rank - 1.0) / (m - 1) as f64;
        for &i in &order[pos..end] {
            out[i] = scaled;
        }
        pos = end;
    }
    out
}

/// Weights of the loyalty components.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LoyaltyWeights {
    /// Weight of the repeat rate (frequency / purchase days). Default 0.25.
    pub repeat_rate: f64,
    /// Weight of the regularity 1 / (1 + gap CV). Default 0.2.
    pub regularity: f64,
    /// Weight of the percentile rank of tenure days. Default 0.2.
    pub tenure: f64,
    /// Weight of the share of periods with a purchase. Default 0.25.
    pub active_share: f64,
    /// Weight of the percentile rank of distinct categories; dropped when unmapped. Default 0.1.
    pub breadth: f64,
}

impl Default for LoyaltyWeights {
    fn default() -> Self {
        LoyaltyWeights {
            repeat_rate: 0.25,
            regularity: 0.2,
            tenure: 0.2,
            active_share: 0.25,
            breadth: 0.1,
        }
    }
}

impl LoyaltyWeights {
    /// Checks that every weight is finite and ≥ 0 and that the weights other than `breadth`
    /// (which may be dropped) sum to more than 0.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let all = [
            ("repeat_rate", self.repeat_rate),
            ("regularity", self.regularity),
            ("tenure", self.tenure),
            ("active_share", self.active_share),
            ("breadth", self.breadth),
        ];
        check_weights(&all, 4)
    }
}

fn check_weights(all: &[(&str, f64)], always_present: usize) -> Result<(), String> {
    for (name, w) in all {
        if !w.is_finite() || *w < 0.0 {
            return Err(format!("{name}: expected a weight >= 0, found {w}"));
        }
    }
    if all[..always_present].iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
        let names: Vec<&str> = all[..always_present].iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "the weights of {} must not all be 0",
            names.join(", ")
        ));
    }
    Ok(())
}

/// Per-customer inputs of [`loyalty_scores`]; all slices have one entry per customer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoyaltyInputs<'a> {
    /// frequency / purchase days, in [0, 1).
    pub repeat_rate: &'a [f64],
    /// Coefficient of variation of the gaps between purchase days.
    pub gap_cv: &'a [Option<f64>],
    /// Tenure: days from the first purchase to the as-of date.
    pub tenure_days: &'a [f64],
    /// Share of periods with a purchase, in [0, 1].
    pub active_share: &'a [f64],
    /// Distinct categories, when categories are mapped.
    pub categories: Option<&'a [f64]>,
}

/// Customer-level repeat rate = frequency / purchase days = (purchase days − 1) / purchase days;
/// 0 for no purchase days.
pub(crate) fn repeat_rate(purchase_days: i64) -> f64 {
    if purchase_days <= 0 {
        0.0
    } else {
        (purchase_days - 1) as f64 / purchase_days as f64
    }
}

fn weighted(components: &[(f64, &[f64])], n: usize) -> Vec<f64> {
    let total: f64 = components.iter().map(|(w, _)| w).sum();
    assert!(
        total > 0.0,
        "the weights of the present components sum to 0"
    );
    (0..n)
        .map(|i| 100.0 * components.iter().map(|(w, c)| w * c[i]).sum::<f64>() / total)
        .collect()
}

/// Loyalty score 0–100 of each customer, in input order. Panics when the slices differ in
/// length or the weights of the present components sum to 0 (see [`LoyaltyWeights::validate`]).
pub(crate) fn loyalty_scores(inputs: &LoyaltyInputs, w: &LoyaltyWeights) -> Vec<f64> {
    let n = inputs.repeat_rate.len();
    assert!(
        inputs.gap_cv.len() == n
            && inputs.tenure_days.len() == n
            && inputs.active_share.len() == n
            && inputs.categories.is_none_or(|c| c.len() == n),
        "loyalty_scores: input slices differ in length"
    );
    let regularity: Vec<f64> = inputs
        .gap_cv
        .iter()
        .map(|cv| cv.map_or(0.0, |cv| 1.0 / (1.0 + cv)))
        .collect();
    let tenure = percentile_ranks(inputs.tenure_days);
    let breadth = inputs.categories.map(percentile_ranks);
    let mut components: Vec<(f64, &[f64])> = vec![
        (w.repeat_rate, inputs.repeat_rate),
        (w.regularity, &regularity),
        (w.tenure, &tenure),
        (w.active_share, inputs.active_share),
    ];
    if let Some(b) = &breadth {
        components.push((w.breadth, b));
    }
    weighted(&components, n)
}

/// Loyalty tier: `"high"` if score ≥ 67, `"medium"` if ≥ 33, else `"low"`.
pub(crate) fn tier(score: f64) -> &'static str {
    if score >= 67.0 {
        "high"
    } else if score >= 33.0 {
        "medium"
    } else {
        "low"
    }
}

/// Weights of the relationship components.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RelationshipWeights {
    /// Weight of the loyalty score / 100. Default 0.35.
    pub loyalty: f64,
    /// Weight of the percentile rank of purchase days per 30 days of tenure. Default 0.2.
    pub interaction: f64,
    /// Weight of the mean percentile rank of tenure days and orders. Default 0.25.
    pub depth: f64,
    /// Weight of the mean rank of distinct categories and channels, of those given. Default 0.2.
    pub breadth: f64,
    /// Weight of the scaled satisfaction; dropped when absent. Default 0.
    pub satisfaction: f64,
    /// Weight of the percentile rank of service interactions; dropped when absent. Default 0.
    pub interactions: f64,
}

impl Default for RelationshipWeights {
    fn default() -> Self {
        RelationshipWeights {
            loyalty: 0.35,
            interaction: 0.2,
            depth: 0.25,
            breadth: 0.2,
            satisfaction: 0.0,
            interactions: 0.0,
        }
    }
}

impl RelationshipWeights {
    /// Checks that every weight is finite and ≥ 0 and that loyalty, interaction and depth
    /// (always present) do not all weigh 0.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let all = [
            ("loyalty", self.loyalty),
            ("interaction", self.interaction),
            ("depth", self.depth),
            ("breadth", self.breadth),
            ("satisfaction", self.satisfaction),
            ("interactions", self.interactions),
        ];
        check_weights(&all, 3)
    }
}

/// Per-customer inputs of [`relationship_scores`]; all slices have one entry per customer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RelationshipInputs<'a> {
    /// Loyalty score 0–100.
    pub loyalty: &'a [f64],
    /// Distinct purchase days.
    pub purchase_days: &'a [f64],
    /// Tenure: days from the first purchase to the as-of date.
    pub tenure_days: &'a [f64],
    /// Orders: distinct order ids per day summed over days, or one per transaction row.
    pub orders: &'a [f64],
    /// Distinct categories, when mapped.
    pub categories: Option<&'a [f64]>,
    /// Distinct channels, when mapped.
    pub channels: Option<&'a [f64]>,
    /// Satisfaction in [0, 1] (scaled by the caller), when mapped; `None` for a customer
    /// without a value.
    pub satisfaction: Option<&'a [Option<f64>]>,
    /// Number of service interactions, when mapped.
    pub interactions: Option<&'a [f64]>,
}

/// Relationship-quality score 0–100 of each customer, in input order; see the module doc.
/// Panics when the slices differ in length or the present weights sum to 0.
pub(crate) fn relationship_scores(
    inputs: &RelationshipInputs,
    w: &RelationshipWeights,
) -> Vec<f64> {
    let n = inputs.loyalty.len();
    let same = |len: usize| len == n;
    assert!(
        same(inputs.purchase_days.len())
            && same(inputs.tenure_days.len())
            && same(inputs.orders.len())
            && inputs.categories.is_none_or(|c| same(c.len()))
            && inputs.channels.is_none_or(|c| same(c.len()))
            && inputs.satisfaction.is_none_or(|c| same(c.len()))
            && inputs.interactions.is_none_or(|c| same(c.len())),
        "relationship_scores: input slices differ in length"
    );
    let loyalty: Vec<f64> = inputs.loyalty.iter().map(|s| s / 100.0).collect();
    let rate: Vec<f64> = inputs
        .purchase_days
        .iter()
        .zip(inputs.tenure_days)
        .map(|(&p, &t)| 30.0 * p / t.max(1.0))
        .collect();
    let interaction = percentile_ranks(&rate);
    let mean2 = |a: &[f64], b: &[f64]| -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| (x + y) / 2.0).collect()
    };
    let depth = mean2(
        &percentile_ranks(inputs.tenure_days),
        &percentile_ranks(inputs.orders),
    );
    let breadth = match (
        inputs.categories.map(percentile_ranks),
        inputs.channels.map(percentile_ranks),
    ) {
        (Some(c), Some(h)) => Some(mean2(&c, &h)),
        (Some(c), None) => Some(c),
        (None, Some(h)) => Some(h),
        (None, None) => None,
    };
    let satisfaction = inputs.satisfaction.and_then(|s| {
        let known: Vec<f64> = s.iter().flatten().copied().collect();
        if known.is_empty() {
            return None;
        }
        let mean = known.iter().sum::<f64>() / known.len() as f64;
        Some(s.iter().map(|v| v.unwrap_or(mean)).collect::<Vec<f64>>())
    });
    let interactions = inputs.interactions.map(percentile_ranks);

    let mut components: Vec<(f64, &[f64])> = vec![
        (w.loyalty, &loyalty),
        (w.interaction, &interaction),
        (w.depth, &depth),
    ];
    if let Some(b) = &breadth {
        components.push((w.breadth, b));
    }
    if let Some(s) = &satisfaction {
        components.push((w.satisfaction, s));
    }
    if let Some(i) = &interactions {
        components.push((w.interactions, i));
    }
    weighted(&components, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_from_counts_equal_ranks_from_sorting() {
        for n in [1usize, 2, 3, 7, 1000, 5000] {
            for nan_share in [0u32, 5, 100] {
                let v = crate::order::random_whole_numbers(7 + n as u64, n, nan_share, 0);
                assert!(crate::order::Histogram::of_whole_numbers(&v).is_some());
                let (fast, sorted) = (percentile_ranks(&v), percentile_ranks_sorted(&v));
                let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&sorted), "n {n} nan {nan_share}%");
            }
        }
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{a:?} != {b:?}");
        }
    }

    #[test]
    fn percentile_ranks_by_hand() {
        // Ranks 1, 2.5, 2.5, 4 → (r − 1)/3.
        close(
            &percentile_ranks(&[10.0, 20.0, 20.0, 40.0]),
            &[0.0, 0.5, 0.5, 1.0],
        );
        // Order does not matter.
        close(
            &percentile_ranks(&[40.0, 20.0, 10.0, 20.0]),
            &[1.0, 0.5, 0.0, 0.5],
        );
        close(&percentile_ranks(&[7.0, 7.0, 7.0]), &[0.5, 0.5, 0.5]);
        // NaN → 0; the two other values are ranked among themselves.
        close(&percentile_ranks(&[f64::NAN, 3.0, 1.0]), &[0.0, 1.0, 0.0]);
        close(&percentile_ranks(&[5.0]), &[1.0]);
        close(&percentile_ranks(&[f64::NAN, 5.0]), &[0.0, 1.0]);
        assert!(percentile_ranks(&[]).is_empty());
    }

    // Three customers used by the loyalty and relationship tests.
    const REPEAT: [f64; 3] = [0.5, 0.0, 0.75];
    const CV: [Option<f64>; 3] = [Some(1.0), None, Some(0.0)];
    const TENURE: [f64; 3] = [100.0, 50.0, 300.0];
    const SHARE: [f64; 3] = [0.4, 1.0, 0.8];
    const CATS: [f64; 3] = [2.0, 1.0, 2.0];

    #[test]
    fn loyalty_by_hand() {
        let mut inputs = LoyaltyInputs {
            repeat_rate: &REPEAT,
            gap_cv: &CV,
            tenure_days: &TENURE,
            active_share: &SHARE,
            categories: Some(&CATS),
        };
        let w = LoyaltyWeights::default();
        // regularity 0.5, 0, 1; tenure ranks 0.5, 0, 1; category ranks 0.75, 0, 0.75.
        // c0 = .25·.5 + .2·.5 + .2·.5 + .25·.4 + .1·.75 = 0.5
        // c1 = .25·1 = 0.25
        // c2 = .25·.75 + .2 + .2 + .25·.8 + .1·.75 = 0.8625
        close(&loyalty_scores(&inputs, &w), &[50.0, 25.0, 86.25]);
        // Without categories the breadth weight is dropped: divide by 0.9.
        inputs.categories = None;
        close(
            &loyalty_scores(&inputs, &w),
            &[42.5 / 0.9, 25.0 / 0.9, 78.75 / 0.9],
        );
        assert_eq!(tier(86.25), "high");
        assert_eq!(tier(67.0), "high");
        assert_eq!(tier(66.9), "medium");
        assert_eq!(tier(33.0), "medium");
        assert_eq!(tier(25.0), "low");
        assert_eq!(repeat_rate(4), 0.75);
        assert_eq!(repeat_rate(1), 0.0);
    }

    #[test]
    fn weights_are_validated() {
        assert!(LoyaltyWeights::default().validate().is_ok());
        assert!(RelationshipWeights::default().validate().is_ok());
        let w = LoyaltyWeights {
            tenure: -1.0,
            ..LoyaltyWeights::default()
        };
        assert_eq!(
            w.validate().unwrap_err(),
            "tenure: expected a weight >= 0, found -1"
        );
        let w = LoyaltyWeights {
            repeat_rate: 0.0,
            regularity: 0.0,
            tenure: 0.0,
            active_share: 0.0,
            breadth: 1.0,
        };
        assert!(w.validate().is_err());
    }

    #[test]
    fn relationship_by_hand() {
        let loyalty = [50.0, 25.0, 86.25];
        let purchase_days = [3.0, 1.0, 4.0];
        let tenure = [60.0, 0.0, 120.0];
        let orders = [3.0, 1.0, 5.0];
        let mut inputs = RelationshipInputs {
            loyalty: &loyalty,
            purchase_days: &purchase_days,
            tenure_days: &tenure,
            orders: &orders,
            categories: Some(&CATS),
            channels: None,
            satisfaction: None,
            interactions: None,
        };
        let w = RelationshipWeights::default();
        // Purchase days per 30 days: 90/60 = 1.5, 30/max(0,1) = 30, 120/120 = 1 → ranks .5, 1, 0.
        // Depth: tenure ranks .5, 0, 1 and order ranks .5, 0, 1 → .5, 0, 1.
        // Breadth (categories only): .75, 0, .75.
        // c0 = .35·.5 + .2·.5 + .25·.5 + .2·.75 = .55
        // c1 = .35·.25 + .2·1 = .2875
        // c2 = .35·.8625 + 0 + .25 + .2·.75 = .701875
        close(&relationship_scores(&inputs, &w), &[55.0, 28.75, 70.1875]);

        // Channels too: channel ranks for [1, 1, 3] are .25, .25, 1 → breadth .5, .125, .875.
        let channels = [1.0, 1.0, 3.0];
        inputs.channels = Some(&channels);
        close(
            &relationship_scores(&inputs, &w),
            &[
                100.0 * (0.175 + 0.1 + 0.125 + 0.2 * 0.5),
                100.0 * (0.0875 + 0.2 + 0.2 * 0.125),
                100.0 * (0.301875 + 0.25 + 0.2 * 0.875),
            ],
        );

        // No categories or channels → breadth dropped. Satisfaction (weight .2) with one
        // missing value → mean (1 + .5)/2 = .75; interactions (weight .1) [0, 2, 1] → ranks
        // 0, 1, .5. Present weights: .35 + .2 + .25 + .2 + .1 = 1.1.
        let sat = [Some(1.0), None, Some(0.5)];
        let inter = [0.0, 2.0, 1.0];
        inputs.categories = None;
        inputs.channels = None;
        inputs.satisfaction = Some(&sat);
        inputs.interactions = Some(&inter);
        let w2 = RelationshipWeights {
            satisfaction: 0.2,
            interactions: 0.1,
            ..RelationshipWeights::default()
        };
        close(
            &relationship_scores(&inputs, &w2),
            &[
                100.0 * (0.175 + 0.1 + 0.125 + 0.2) / 1.1,
                100.0 * (0.0875 + 0.2 + 0.2 * 0.75 + 0.1) / 1.1,
                100.0 * (0.301875 + 0.25 + 0.2 * 0.5 + 0.1 * 0.5) / 1.1,
            ],
        );
        // Nobody has a satisfaction value → the component is dropped (weights sum to .9).
        let none = [None, None, None];
        inputs.satisfaction = Some(&none);
        close(
            &relationship_scores(&inputs, &w2),
            &[
                100.0 * (0.175 + 0.1 + 0.125) / 0.9,
                100.0 * (0.0875 + 0.2 + 0.1) / 0.9,
                100.0 * (0.301875 + 0.25 + 0.05) / 0.9,
            ],
        );
    }
}
