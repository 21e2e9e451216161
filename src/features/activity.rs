//! Purchase rhythm, churn status, spend trend and lifecycle stage of one customer as of D.
//!
//! Input per customer: its purchase days (sorted, distinct, all `<= as_of`, inside the job's
//! window) and the amount of each day (same-day transactions already summed). With a window,
//! "first purchase" is the first purchase in the window, as everywhere in custval.
//!
//! Rules, in terms of D = `as_of`, the gaps g_i = day_{i+1} − day_i between consecutive
//! purchase days, k = `churn_gap_multiplier` (default 3) and floor = `churn_floor_days`
//! (default 90):
//! - `days_since_last` = D − last purchase day; `tenure_days` = D − first purchase day.
//! - `median_gap_days` = median of the gaps (mean of the two middle gaps for an even count);
//!   none with fewer than 2 purchase days.
//! - `gap_cv` = population standard deviation of the gaps / their mean; none with fewer than 3
//!   purchase days (one gap has no spread to measure).
//! - `active_period_share` = periods with a purchase / periods from the first purchase's period
//!   to D's period, both included (the current, unfinished period counts).
//! - `inactivity_threshold_days` = max(k × median gap, floor), or floor alone without a gap. The
//!   customer's own rhythm sets the threshold; the floor stops customers who bought twice in
//!   one week from being called churned after three weeks.
//! - `churned` = `days_since_last` > threshold.
//! - `reactivated` = some gap g_i > threshold (the same threshold) and not churned now: the
//!   customer was once silent long enough to count as churned and has come back.
//! - Spend trend: mid = (start + D) / 2, where start = max(first purchase, window start) (may
//!   be a half day). `earlier_amount` sums the days before mid, `recent_amount` the days on or
//!   after mid. `trend` = (recent − earlier) / earlier; none when earlier ≤ 0 (no earlier spend,
//!   or net returns, where the ratio's sign would mean nothing).
//! - `early_warning`, from ratio = `days_since_last` / threshold: `"ok"` if ratio ≤ `watch_at`
//!   (default 0.5), `"watch"` if ≤ `at_risk_at` (default 0.75), `"at risk"` if ≤ 1, `"churned"`
//!   above 1 (exactly when `churned`). Monotone: a longer silence never gives a milder status.
//! - `lifecycle`, first match wins: `"churned"` if churned; `"new"` if tenure < `new_customer_days`
//!   (default 90); `"declining"` if trend < `declining_trend` (default −0.3, i.e. recent half
//!   spend down more than 30%); `"developing"` if tenure < `developing_days` (default 365);
//!   else `"stable"`.
//!
//! [`activities`] runs [`customer_activity`] for many customers in parallel (rayon); customers
//! are independent.

use rayon::prelude::*;

use super::periods::{DayPeriods, Period};

/// Options of [`customer_activity`]; [`ActivityOptions::new`] sets the defaults.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ActivityOptions {
    /// D: the as-of epoch day.
    pub as_of: i32,
    /// First day of the job's window, if bounded.
    pub window_start: Option<i32>,
    /// Period for `active_period_share`.
    pub period: Period,
    /// k in the threshold max(k × median gap, floor). Default 3.
    pub churn_gap_multiplier: f64,
    /// Floor of the inactivity threshold, days. Default 90.
    pub churn_floor_days: f64,
    /// Tenure below which a customer is `"new"`. Default 90.
    pub new_customer_days: i32,
    /// Tenure below which a customer is `"developing"`. Default 365.
    pub developing_days: i32,
    /// Trend below which a customer is `"declining"`. Default −0.3.
    pub declining_trend: f64,
    /// Early warning `"watch"` starts above this share of the threshold. Default 0.5.
    pub watch_at: f64,
    /// Early warning `"at risk"` starts above this share of the threshold. Default 0.75.
    pub at_risk_at: f64,
}

impl ActivityOptions {
    /// Defaults: monthly periods, no window, k = 3, floor 90 days, new < 90 days, developing
    /// < 365 days, declining below −0.3, watch above 0.5 and at risk above 0.75 of the threshold.
    #[cfg(test)]
    pub(crate) fn new(as_of: i32) -> ActivityOptions {
        ActivityOptions {
            as_of,
            window_start: None,
            period: Period::Month,
            churn_gap_multiplier: 3.0,
            churn_floor_days: 90.0,
            new_customer_days: 90,
            developing_days: 365,
            declining_trend: -0.3,
            watch_at: 0.5,
            at_risk_at: 0.75,
        }
    }
}

/// Early warning of churn, from how far `days_since_last` is into the churn threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EarlyWarning {
    /// `"ok"`: the silence is at most `watch_at` of the threshold.
    Ok,
    /// `"watch"`: the silence is above `watch_at` and at most `at_risk_at` of the threshold.
    Watch,
    /// `"at risk"`: the silence is above `at_risk_at` of the threshold but not above it.
    AtRisk,
    /// `"churned"`: the silence is longer than the threshold (exactly when `churned`).
    Churned,
}

impl EarlyWarning {
    /// The value in `customer_features.early_warning`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EarlyWarning::Ok => "ok",
            EarlyWarning::Watch => "watch",
            EarlyWarning::AtRisk => "at risk",
            EarlyWarning::Churned => "churned",
        }
    }
}

/// Lifecycle stage (first matching rule of the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LifecycleStage {
    /// `"new"`: tenure below `new_customer_days`.
    New,
    /// `"developing"`: tenure below `developing_days`, spend not declining.
    Developing,
    /// `"stable"`: none of the other stages applies.
    Stable,
    /// `"declining"`: spend trend below `declining_trend` (tenure at least `new_customer_days`).
    Declining,
    /// `"churned"`: `days_since_last` above the inactivity threshold.
    Churned,
}

impl LifecycleStage {
    /// The value in `customer_features.lifecycle_stage`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::New => "new",
            LifecycleStage::Developing => "developing",
            LifecycleStage::Stable => "stable",
            LifecycleStage::Declining => "declining",
            LifecycleStage::Churned => "churned",
        }
    }
}

/// Activity features of one customer; see the module doc for each rule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CustomerActivity {
    /// Days from the last purchase day to D.
    pub days_since_last: i32,
    /// Median gap between consecutive purchase days; `None` with fewer than 2 purchase days.
    pub median_gap_days: Option<f64>,
    /// Population standard deviation of the gaps / their mean; `None` under 3 purchase days.
    pub gap_cv: Option<f64>,
    /// Days from the first purchase day (in the window) to D.
    pub tenure_days: i32,
    /// Periods with a purchase / periods from the first purchase's period to D's, both included.
    pub active_period_share: f64,
    /// Days of silence beyond which the customer is churned: max(k × median gap, floor).
    pub inactivity_threshold_days: f64,
    /// `days_since_last` is above `inactivity_threshold_days`.
    pub churned: bool,
    /// Not churned now, but some gap between purchase days was above the threshold.
    pub reactivated: bool,
    /// Amount of the purchase days on or after mid = (start + D) / 2 (see the module doc).
    pub recent_amount: f64,
    /// Amount of the purchase days before mid = (start + D) / 2.
    pub earlier_amount: f64,
    /// Spend trend (recent − earlier) / earlier; `None` when `earlier_amount` ≤ 0.
    pub trend: Option<f64>,
    /// Early-warning status from `days_since_last` / threshold.
    pub early_warning: EarlyWarning,
    /// Lifecycle stage (first matching rule of the module doc).
    pub lifecycle: LifecycleStage,
}

fn median_of_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Activity features of one customer. `days` are its sorted distinct purchase days (at least
/// one, all `<= opts.as_of`) and `amounts` the amount of each day. Panics on empty or
/// mismatched input.
#[cfg(test)]
pub(crate) fn customer_activity(
    days: &[i32],
    amounts: &[f64],
    opts: &ActivityOptions,
) -> CustomerActivity {
    let lo = days.first().map_or(opts.as_of, |&d| d.min(opts.as_of));
    let periods = DayPeriods::new(opts.period, lo, opts.as_of);
    activity_of(days, amounts, opts, &periods)
}

/// [`customer_activity`] with the period table of `opts.period` (any range).
fn activity_of(
    days: &[i32],
    amounts: &[f64],
    opts: &ActivityOptions,
    periods: &DayPeriods,
) -> CustomerActivity {
    assert!(!days.is_empty(), "customer_activity: no purchase days");
    assert_eq!(days.len(), amounts.len(), "customer_activity: days/amounts");
    let first = days[0];
    let last = days[days.len() - 1];
    let as_of = opts.as_of;

    let gaps: Vec<f64> = days.windows(2).map(|w| f64::from(w[1] - w[0])).collect();
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    let median_gap_days = (!sorted.is_empty()).then(|| median_of_sorted(&sorted));
    let gap_cv = (gaps.len() >= 2).then(|| {
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
        var.sqrt() / mean
    });

    let p = periods;
    let mut active_periods = 0u32;
    let mut prev = None;
    for &d in days {
        let i = p.index(d);
        if prev != Some(i) {
            active_periods += 1;
            prev = Some(i);
        }
    }
    let span = p.index(as_of) - p.index(first) + 1;
    let active_period_share = f64::from(active_periods) / f64::from(span.max(1));

    let threshold = match median_gap_days {
        Some(m) => (opts.churn_gap_multiplier * m).max(opts.churn_floor_days),
        None => opts.churn_floor_days,
    };
    let days_since_last = as_of - last;
    let churned = f64::from(days_since_last) > threshold;
    let reactivated = !churned && gaps.iter().any(|&g| g > threshold);

    let start = opts.window_start.map_or(first, |w| w.max(first));
    let mid = (f64::from(start) + f64::from(as_of)) / 2.0;
    let (mut recent_amount, mut earlier_amount) = (0.0, 0.0);
    for (&d, &a) in days.iter().zip(amounts) {
        if f64::from(d) < mid {
            earlier_amount += a;
        } else {
            recent_amount += a;
        }
    }
    let trend = (earlier_amount > 0.0).then(|| (recent_amount - earlier_amount) / earlier_amount);

    let ratio = f64::from(days_since_last) / threshold;
    let early_warning = if churned {
        EarlyWarning::Churned
    } else if ratio <= opts.watch_at {
        EarlyWarning::Ok
    } else if ratio <= opts.at_risk_at {
        EarlyWarning::Watch
    } else {
        EarlyWarning::AtRisk
    };

    let tenure_days = as_of - first;
    let lifecycle = if churned {
        LifecycleStage::Churned
    } else if tenure_days < opts.new_customer_days {
        LifecycleStage::New
    } else if trend.is_some_and(|t| t < opts.declining_trend) {
        LifecycleStage::Declining
    } else if tenure_days < opts.developing_days {
        LifecycleStage::Developing
    } else {
        LifecycleStage::Stable
    };

    CustomerActivity {
        days_since_last,
        median_gap_days,
        gap_cv,
        tenure_days,
        active_period_share,
        inactivity_threshold_days: threshold,
        churned,
        reactivated,
        recent_amount,
        earlier_amount,
        trend,
        early_warning,
        lifecycle,
    }
}

/// [`customer_activity`] for every customer, in parallel. Customer i owns
/// `days[offsets[i]..offsets[i + 1]]` (and the same range of `amounts`), so `offsets` has one
/// more entry than there are customers and starts at 0.
pub(crate) fn activities(
    days: &[i32],
    amounts: &[f64],
    offsets: &[usize],
    opts: &ActivityOptions,
) -> Vec<CustomerActivity> {
    assert_eq!(days.len(), amounts.len(), "activities: days/amounts");
    if offsets.len() < 2 {
        return Vec::new();
    }
    let lo = days.iter().copied().min().unwrap_or(opts.as_of);
    let periods = DayPeriods::new(opts.period, lo.min(opts.as_of), opts.as_of);
    offsets
        .par_windows(2)
        .map(|w| activity_of(&days[w[0]..w[1]], &amounts[w[0]..w[1]], opts, &periods))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::periods::epoch_day;
    use super::*;

    const EPS: f64 = 1e-12;

    #[test]
    fn regular_buyer_worked_by_hand() {
        // Purchases on Jan 1, Jan 11, Jan 31, Feb 10 2024 (gaps 10, 20, 10), as of Mar 1 2024.
        let d0 = epoch_day(2024, 1, 1);
        let days = [d0, d0 + 10, d0 + 30, d0 + 40];
        let amounts = [10.0, 20.0, 30.0, 40.0];
        let as_of = epoch_day(2024, 3, 1); // d0 + 60
        assert_eq!(as_of, d0 + 60);
        let a = customer_activity(&days, &amounts, &ActivityOptions::new(as_of));
        assert_eq!(a.days_since_last, 20);
        assert_eq!(a.tenure_days, 60);
        // Sorted gaps 10, 10, 20 → median 10.
        assert_eq!(a.median_gap_days, Some(10.0));
        // Mean 40/3; deviations −10/3, 20/3, −10/3; variance (100+400+100)/9/3 = 200/9;
        // std = √200/3; cv = (√200/3)/(40/3) = √200/40.
        assert!((a.gap_cv.unwrap() - 200f64.sqrt() / 40.0).abs() < EPS);
        // Months Jan, Feb, Mar; purchases in Jan and Feb → 2/3.
        assert!((a.active_period_share - 2.0 / 3.0).abs() < EPS);
        // max(3 × 10, 90) = 90.
        assert_eq!(a.inactivity_threshold_days, 90.0);
        assert!(!a.churned);
        assert!(!a.reactivated);
        // mid = (d0 + d0 + 60)/2 = d0 + 30: earlier = day d0, d0+10 → 30; recent = 30 + 40.
        assert_eq!(a.earlier_amount, 30.0);
        assert_eq!(a.recent_amount, 70.0);
        assert!((a.trend.unwrap() - 40.0 / 30.0).abs() < EPS);
        // 20/90 ≤ 0.5 → ok; tenure 60 < 90 → new.
        assert_eq!(a.early_warning, EarlyWarning::Ok);
        assert_eq!(a.lifecycle, LifecycleStage::New);
    }

    #[test]
    fn one_time_buyer_uses_the_floor() {
        let a = customer_activity(&[100], &[5.0], &ActivityOptions::new(150));
        assert_eq!(a.median_gap_days, None);
        assert_eq!(a.gap_cv, None);
        assert_eq!(a.inactivity_threshold_days, 90.0);
        // 50/90 = 0.556 → watch.
        assert_eq!(a.early_warning, EarlyWarning::Watch);
        // mid = 125: the purchase is earlier, nothing recent → trend −1; but tenure 50 → new.
        assert_eq!(a.trend, Some(-1.0));
        assert_eq!(a.lifecycle, LifecycleStage::New);
        // Same buyer as of day 191: 91 > 90 → churned.
        let b = customer_activity(&[100], &[5.0], &ActivityOptions::new(191));
        assert!(b.churned);
        assert_eq!(b.early_warning, EarlyWarning::Churned);
        assert_eq!(b.lifecycle, LifecycleStage::Churned);
        // As of day 190 (ratio exactly 1): at risk, and declining (tenure 90, trend −1).
        let c = customer_activity(&[100], &[5.0], &ActivityOptions::new(190));
        assert!(!c.churned);
        assert_eq!(c.early_warning, EarlyWarning::AtRisk);
        assert_eq!(c.lifecycle, LifecycleStage::Declining);
    }

    #[test]
    fn own_rhythm_threshold_reactivation_and_gap_cv_needs_three_days() {
        // Gaps 40 and 200: median 120 → threshold max(360, 90) = 360. No gap exceeds it.
        let mut o = ActivityOptions::new(400);
        let a = customer_activity(&[0, 40, 240], &[1.0, 1.0, 1.0], &o);
        assert_eq!(a.median_gap_days, Some(120.0));
        assert_eq!(a.inactivity_threshold_days, 360.0);
        assert!(!a.reactivated);
        // 160/360 = 0.444 → ok. Tenure 400, mid 200: earlier 2, recent 1 → trend −0.5.
        assert_eq!(a.early_warning, EarlyWarning::Ok);
        assert_eq!(a.trend, Some(-0.5));
        assert_eq!(a.lifecycle, LifecycleStage::Declining);
        // With k = 1: threshold max(120, 90) = 120; the 200-day gap exceeded it, and
        // 160 > 120 → churned, so not reactivated.
        o.churn_gap_multiplier = 1.0;
        let b = customer_activity(&[0, 40, 240], &[1.0, 1.0, 1.0], &o);
        assert!(b.churned);
        assert!(!b.reactivated);
        // Bought again on day 380: gaps 40, 200, 140 → median 140, threshold 140; 200 > 140
        // and days since last 20 → reactivated.
        let c = customer_activity(&[0, 40, 240, 380], &[1.0; 4], &o);
        assert_eq!(c.inactivity_threshold_days, 140.0);
        assert!(c.reactivated);
        assert!(!c.churned);
        // Two purchase days: a median gap but no cv.
        let d = customer_activity(&[0, 30], &[1.0, 1.0], &o);
        assert_eq!(d.median_gap_days, Some(30.0));
        assert_eq!(d.gap_cv, None);
    }

    #[test]
    fn window_start_moves_the_split_and_lifecycle_stable_or_developing() {
        let mut o = ActivityOptions::new(1000);
        o.churn_floor_days = 500.0;
        // First purchase day 100, window start 200 is later: start 200 → mid 600.
        o.window_start = Some(200);
        let a = customer_activity(&[100, 600, 900], &[10.0, 10.0, 10.0], &o);
        assert_eq!(a.earlier_amount, 10.0);
        assert_eq!(a.recent_amount, 20.0);
        assert_eq!(a.trend, Some(1.0));
        // Tenure 900 ≥ 365 and trend not below −0.3 → stable.
        assert_eq!(a.lifecycle, LifecycleStage::Stable);
        // Window start before the first purchase: start 100 → mid 550.
        o.window_start = Some(0);
        let b = customer_activity(&[100, 600, 900], &[10.0, 10.0, 10.0], &o);
        assert_eq!((b.earlier_amount, b.recent_amount), (10.0, 20.0));
        // Tenure 300 < 365 → developing.
        let c = customer_activity(&[700, 900], &[10.0, 10.0], &o);
        assert_eq!(c.lifecycle, LifecycleStage::Developing);
        // No earlier spend (first purchase on D: start = mid = D) → no trend.
        let d = customer_activity(&[1000], &[10.0], &o);
        assert_eq!((d.earlier_amount, d.recent_amount), (0.0, 10.0));
        assert_eq!(d.trend, None);
        // Net returns in the earlier half (mid = 950) → no trend either.
        let e = customer_activity(&[900, 950], &[-5.0, 10.0], &o);
        assert_eq!((e.earlier_amount, e.recent_amount), (-5.0, 10.0));
        assert_eq!(e.trend, None);
    }

    #[test]
    fn batch_matches_single_calls() {
        let days = [0, 10, 20, 5, 50, 60, 70, 80];
        let amounts = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let offsets = [0, 3, 4, 8];
        let o = ActivityOptions::new(100);
        let all = activities(&days, &amounts, &offsets, &o);
        assert_eq!(all.len(), 3);
        for (i, w) in offsets.windows(2).enumerate() {
            let one = customer_activity(&days[w[0]..w[1]], &amounts[w[0]..w[1]], &o);
            assert_eq!(all[i], one);
        }
        assert!(activities(&[], &[], &[0], &o).is_empty());
    }
}
