//! Per-customer behaviour columns for `customer_features`: purchase rhythm, churn flags, early
//! warning and lifecycle ([`super::activity`]), loyalty and relationship scores
//! ([`super::loyalty`]). Pure: frames in, columns out.
//!
//! Inputs are the customer summary (sorted by customer id) and the daily purchases of the same
//! window (sorted by customer id and day), so customer `i` of the summary owns the `i`-th run of
//! rows of the daily table.

use super::activity::{activities, ActivityOptions};
use super::loyalty::{
    loyalty_scores, relationship_scores, repeat_rate, tier, LoyaltyInputs, LoyaltyWeights,
    RelationshipInputs, RelationshipWeights,
};
use super::settings::BehaviourSettings;
use polars::prelude::*;

/// Daily purchases as plain columns with per-customer offsets.
#[derive(Debug, Clone, Default)]
pub(crate) struct DailySlices {
    /// Dense customer index, ascending (0, 0, 1, 2, 2, ...).
    pub customer: Vec<u32>,
    /// Purchase day of each row, as an epoch day (days since 1970-01-01).
    pub day: Vec<i32>,
    /// Amount of each row's day (the customer's transactions of that day summed).
    pub amount: Vec<f64>,
    /// Customer `i` owns rows `offsets[i]..offsets[i + 1]`.
    pub offsets: Vec<usize>,
}

/// Split a daily-purchases frame (sorted by customer id and day, restricted to the summary's
/// window) into [`DailySlices`]. Customer `i` of the summary has `purchase_days` rows, so the
/// offsets are their running sum: no string comparisons.
pub(crate) fn daily_slices(daily: &DataFrame, summary: &DataFrame) -> PolarsResult<DailySlices> {
    let day: Vec<i32> = daily
        .column("day")?
        .i32()?
        .iter()
        .map(|d| d.unwrap_or(0))
        .collect();
    let amount: Vec<f64> = daily
        .column("amount")?
        .f64()?
        .iter()
        .map(|a| a.unwrap_or(0.0))
        .collect();
    let mut offsets = Vec::with_capacity(summary.height() + 1);
    offsets.push(0usize);
    let mut customer = Vec::with_capacity(day.len());
    for (i, n) in summary.column("purchase_days")?.i64()?.iter().enumerate() {
        let n = n.unwrap_or(0) as usize;
        offsets.push(offsets[i] + n);
        customer.extend(std::iter::repeat_n(i as u32, n));
    }
    polars_ensure!(
        *offsets.last().unwrap() == day.len(),
        ComputeError: "daily purchases have {} rows but the summary counts {} purchase days",
        day.len(),
        offsets.last().unwrap()
    );
    Ok(DailySlices {
        customer,
        day,
        amount,
        offsets,
    })
}

/// Optional extra inputs aligned with the summary rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExtraInputs {
    /// Satisfaction scaled to [0, 1]; `None` for a customer without an answer.
    pub satisfaction: Option<Vec<Option<f64>>>,
    /// Interactions counted per customer.
    pub interactions: Option<Vec<f64>>,
}

fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    crate::columns::f64_column(df, name)
}

/// The per-customer activity columns, computed per customer bucket from its daily rows; they
/// travel with the summary until [`behaviour_columns`] puts them in output order.
pub(crate) const ACTIVITY_COLUMNS: [&str; 10] = [
    "median_gap_days",
    "gap_cv",
    "tenure_days",
    "active_period_share",
    "inactivity_threshold_days",
    "churned",
    "reactivated",
    "spend_trend",
    "early_warning",
    "lifecycle_stage",
];

/// The activity columns ([`ACTIVITY_COLUMNS`]) of the customers of `summary` from their daily
/// rows `slices`: everything of the behaviour that needs the daily rows.
pub(crate) fn activity_columns(
    summary: &DataFrame,
    slices: &DailySlices,
    s: &BehaviourSettings,
    as_of_day: i32,
    window_start_day: Option<i32>,
) -> PolarsResult<Vec<Column>> {
    let n = summary.height();
    polars_ensure!(
        slices.offsets.len() == n + 1,
        ComputeError: "daily purchases cover {} customers but the summary has {n}",
        slices.offsets.len().saturating_sub(1)
    );
    let c = &s.churn;
    let opts = ActivityOptions {
        as_of: as_of_day,
        window_start: window_start_day,
        period: s.period(),
        churn_gap_multiplier: c.gap_multiplier,
        churn_floor_days: c.floor_days,
        new_customer_days: c.new_customer_days,
        developing_days: c.developing_days,
        declining_trend: c.declining_trend,
        watch_at: c.watch_at,
        at_risk_at: c.at_risk_at,
    };
    let acts = activities(&slices.day, &slices.amount, &slices.offsets, &opts);
    let col_f = |name: &str, v: Vec<f64>| Column::new(name.into(), v);
    Ok(vec![
        Column::new(
            "median_gap_days".into(),
            acts.iter().map(|a| a.median_gap_days).collect::<Vec<_>>(),
        ),
        Column::new(
            "gap_cv".into(),
            acts.iter().map(|a| a.gap_cv).collect::<Vec<_>>(),
        ),
        Column::new(
            "tenure_days".into(),
            acts.iter()
                .map(|a| a.tenure_days as i64)
                .collect::<Vec<_>>(),
        ),
        col_f(
            "active_period_share",
            acts.iter().map(|a| a.active_period_share).collect(),
        ),
        col_f(
            "inactivity_threshold_days",
            acts.iter().map(|a| a.inactivity_threshold_days).collect(),
        ),
        Column::new(
            "churned".into(),
            acts.iter().map(|a| a.churned).collect::<Vec<_>>(),
        ),
        Column::new(
            "reactivated".into(),
            acts.iter().map(|a| a.reactivated).collect::<Vec<_>>(),
        ),
        Column::new(
            "spend_trend".into(),
            acts.iter().map(|a| a.trend).collect::<Vec<_>>(),
        ),
        Column::new(
            "early_warning".into(),
            acts.iter()
                .map(|a| a.early_warning.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "lifecycle_stage".into(),
            acts.iter()
                .map(|a| a.lifecycle.as_str())
                .collect::<Vec<_>>(),
        ),
    ])
}

/// The behaviour columns, in output order, from a summary that carries the
/// [`ACTIVITY_COLUMNS`] (for every customer: the loyalty and relationship scores rank customers
/// against each other).
pub(crate) fn behaviour_columns(
    summary: &DataFrame,
    s: &BehaviourSettings,
    extra: &ExtraInputs,
) -> PolarsResult<Vec<Column>> {
    let n = summary.height();
    let purchase_days: Vec<i64> = summary
        .column("purchase_days")?
        .i64()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let repeat: Vec<f64> = purchase_days.iter().map(|&p| repeat_rate(p)).collect();
    let cv: Vec<Option<f64>> = summary.column("gap_cv")?.f64()?.iter().collect();
    let tenure: Vec<f64> = f64s(summary, "tenure_days")?;
    let share: Vec<f64> = f64s(summary, "active_period_share")?;
    let categories = match summary.column("categories") {
        Ok(_) => Some(f64s(summary, "categories")?),
        Err(_) => None,
    };
    let l = &s.loyalty;
    let loyalty = loyalty_scores(
        &LoyaltyInputs {
            repeat_rate: &repeat,
            gap_cv: &cv,
            tenure_days: &tenure,
            active_share: &share,
            categories: categories.as_deref(),
        },
        &LoyaltyWeights {
            repeat_rate: l.repeat_rate,
            regularity: l.regularity,
            tenure: l.tenure,
            active_share: l.active_share,
            breadth: l.breadth,
        },
    );
    let pdays: Vec<f64> = purchase_days.iter().map(|&p| p as f64).collect();
    let orders = f64s(summary, "orders")?;
    let r = &s.relationship;
    let relationship = relationship_scores(
        &RelationshipInputs {
            loyalty: &loyalty,
            purchase_days: &pdays,
            tenure_days: &tenure,
            orders: &orders,
            categories: categories.as_deref(),
            channels: None,
            satisfaction: extra.satisfaction.as_deref(),
            interactions: extra.interactions.as_deref(),
        },
        &RelationshipWeights {
            loyalty: r.loyalty,
            interaction: r.interaction,
            depth: r.depth,
            breadth: r.breadth,
            satisfaction: r.satisfaction.as_ref().map_or(0.0, |x| x.weight),
            interactions: r.interactions.as_ref().map_or(0.0, |x| x.weight),
        },
    );
    let interaction_rate: Vec<f64> = (0..n)
        .map(|i| 30.0 * pdays[i] / tenure[i].max(1.0))
        .collect();
    let col_f = |name: &str, v: Vec<f64>| Column::new(name.into(), v);
    let mut out = ACTIVITY_COLUMNS
        .iter()
        .map(|c| summary.column(c).cloned())
        .collect::<PolarsResult<Vec<_>>>()?;
    out.extend([
        col_f("repeat_rate", repeat),
        col_f("interaction_rate", interaction_rate),
        col_f("loyalty_score", loyalty.clone()),
        Column::new(
            "loyalty_tier".into(),
            loyalty.iter().map(|&x| tier(x)).collect::<Vec<_>>(),
        ),
        col_f("relationship_score", relationship),
    ]);
    Ok(out)
}
