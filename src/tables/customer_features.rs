//! `customer_features`: one row per customer as of the partition date.
//!
//! Grain: customer. Partition: `as_of=YYYY-MM-DD`. Cost: one pass over the customer summary
//! (already in memory) plus one sort per RFM axis.
//! Columns (stable; optional ones appear when the job maps them), in order:
//! the summary columns ([`crate::summary`]), then `r_score`, `f_score`, `m_score` (Int32, 1–5),
//! `rfm_code` (String, e.g. "543"), `rfm_segment` (String), `value_tier` (String: high / medium / low),
//! and when the CLV models ran: `prob_alive`, `expected_purchases`, `expected_spend`, `clv`,
//! `clv_simple` (Float64, null where a model is unavailable; see [`crate::valuation`]); then
//! the behaviour columns of [`crate::features::behaviour`]; then `churn_risk` (Float64,
//! 1 − `prob_alive`, when the models ran), `value_metric` (Float64: `clv` when the models ran,
//! else `total_amount`), `value_quadrant` and `recommended_action` (String); last, with
//! `clv.interval_draws > 0`, `prob_alive_p05`, `prob_alive_p95`, `expected_purchases_p05`,
//! `expected_purchases_p95`, `clv_p05`, `clv_p95` (Float64, parameter-uncertainty percentiles,
//! null where unavailable; see [`crate::models::intervals`]).

use crate::features::rfm::{quintile_scores, rfm_code};
use crate::features::settings::MatrixFile;
use crate::segments::rfm::SegmentRule;
use crate::segments::tiers::TierMethod;
use crate::segments::value_matrix::{median, quadrants};
use crate::segments::{rfm::segment_of, tiers::value_tiers};
use crate::valuation::{f64_column, Valuation};
use polars::prelude::*;

/// The settings `customer_features` needs: segment rules, value tiers and matrix thresholds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeatureSettings<'a> {
    /// RFM segment rules, in match order.
    pub segments: &'a [SegmentRule],
    /// How value tiers are assigned.
    pub tiers: &'a TierMethod,
    /// Thresholds of the value × relationship matrix (`None`: the population median).
    pub matrix: &'a MatrixFile,
}

/// A column made on its own (in parallel with the others).
type Make<'a> = Box<dyn FnOnce() -> Column + Send + 'a>;

/// The valuation's column `values` under `name` (no copy: the column shares its buffer).
fn named(name: &str, values: &Float64Chunked) -> Column {
    values.clone().with_name(name.into()).into_column()
}

/// The columns of `makers`, made in parallel, appended to `df` in order.
fn append(df: &mut DataFrame, makers: Vec<Make<'_>>) -> PolarsResult<()> {
    use rayon::prelude::*;
    let columns: Vec<Column> = makers.into_par_iter().map(|make| make()).collect();
    for c in columns {
        df.with_column(c)?;
    }
    Ok(())
}

/// Add RFM scores, code, segment and value tier to the customer summary.
///
/// Independent steps run in parallel (the three RFM axes, the value tiers, each new column):
/// one after another they kept one of two cores idle for half of this step.
pub(crate) fn build(
    mut summary: DataFrame,
    settings: FeatureSettings<'_>,
    valuation: Option<&Valuation>,
    behaviour: Vec<Column>,
) -> PolarsResult<DataFrame> {
    let days = f64_column(&summary, "days_since_last")?;
    let orders = f64_column(&summary, "orders")?;
    let revenue = f64_column(&summary, "total_amount")?;
    let ids_col = summary.column("customer_id")?.str()?.clone();
    let ids: Vec<&str> = ids_col.iter().map(|s| s.unwrap_or("")).collect();
    let ((r, f, m), tiers) = rayon::join(
        || {
            let neg_days: Vec<f64> = days.iter().map(|d| -d).collect();
            let ((r, f), m) = rayon::join(
                || rayon::join(|| quintile_scores(&neg_days), || quintile_scores(&orders)),
                || quintile_scores(&revenue),
            );
            (r, f, m)
        },
        || value_tiers(&ids, &revenue, settings.tiers),
    );
    let as_i32 = |v: &[u8]| v.iter().map(|&x| x as i32).collect::<Vec<i32>>();
    let (r, f, m) = (&r, &f, &m);
    let mut makers: Vec<Make> = vec![
        Box::new(move || Column::new("r_score".into(), as_i32(r))),
        Box::new(move || Column::new("f_score".into(), as_i32(f))),
        Box::new(move || Column::new("m_score".into(), as_i32(m))),
        Box::new(move || {
            let codes: Vec<&str> = (0..r.len()).map(|i| rfm_code(r[i], f[i], m[i])).collect();
            Column::new("rfm_code".into(), codes)
        }),
        Box::new(move || {
            let segs: Vec<&str> = (0..r.len())
                .map(|i| segment_of(settings.segments, r[i], f[i], m[i]).unwrap_or("Unsegmented"))
                .collect();
            Column::new("rfm_segment".into(), segs)
        }),
        Box::new(move || Column::new("value_tier".into(), tiers)),
    ];
    if let Some(v) = valuation {
        for (name, values) in [
            ("prob_alive", &v.prob_alive),
            ("expected_purchases", &v.expected_purchases),
            ("expected_spend", &v.expected_spend),
            ("clv", &v.clv),
            ("clv_simple", &v.clv_simple),
        ] {
            makers.push(Box::new(move || named(name, values)));
        }
    }
    append(&mut summary, makers)?;
    for c in behaviour {
        summary.with_column(c)?;
    }
    let clv_usable = valuation.is_some_and(|v| v.clv.null_count() < v.clv.len());
    let value = if clv_usable {
        f64_column(&summary, "clv")?
    } else {
        revenue.clone()
    };
    let rel = f64_column(&summary, "relationship_score")?;
    let mx = settings.matrix;
    let (vt, rt) = rayon::join(
        || mx.value_threshold.unwrap_or_else(|| median(&value)),
        || mx.relationship_threshold.unwrap_or_else(|| median(&rel)),
    );
    let quads = quadrants(&value, &rel, vt, rt);
    let quads = &quads;
    let mut makers: Vec<Make> = Vec::new();
    if let Some(v) = valuation {
        makers.push(Box::new(move || {
            let risk = v.prob_alive.apply_values(|p| 1.0 - p);
            risk.with_name("churn_risk".into()).into_column()
        }));
    }
    makers.push(Box::new(move || Column::new("value_metric".into(), value)));
    makers.push(Box::new(move || {
        let q: Vec<&str> = quads.iter().map(|q| q.as_str()).collect();
        Column::new("value_quadrant".into(), q)
    }));
    makers.push(Box::new(move || {
        let a: Vec<&str> = quads.iter().map(|q| q.action()).collect();
        Column::new("recommended_action".into(), a)
    }));
    if let Some(v) = valuation {
        for (name, values) in &v.intervals {
            makers.push(Box::new(move || named(name, values)));
        }
    }
    append(&mut summary, makers)?;
    Ok(summary)
}
