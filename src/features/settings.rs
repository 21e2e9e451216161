//! The behaviour settings of a job (`[churn]`, `[loyalty]`, `[relationship]`, `[matrix]`):
//! owned here, by the features they configure; the job file embeds them.

use crate::store_options::StorageOptions;
use serde::{Deserialize, Serialize};

/// `[churn]`: activity periods, churn and lifecycle rules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChurnFile {
    /// Period of `churn_rates`, `cohort_retention` and `active_period_share`: `"week"`,
    /// `"month"` (default) or `"quarter"`.
    pub period: super::periods::Period,
    /// In `churn_rates` / `cohort_retention`, a purchase keeps a customer active this many days
    /// (default: active = bought in the period).
    pub inactivity_days: Option<i32>,
    /// k in the per-customer inactivity threshold max(k × own median gap, floor). Default 3.
    pub gap_multiplier: f64,
    /// Floor of that threshold in days. Default 90.
    pub floor_days: f64,
    /// Lifecycle `new` below this tenure in days. Default 90.
    pub new_customer_days: i32,
    /// Lifecycle `developing` below this tenure in days. Default 365.
    pub developing_days: i32,
    /// Lifecycle `declining` when the spend trend is below this. Default -0.3.
    pub declining_trend: f64,
    /// Early warning `watch` above this share of the threshold. Default 0.5.
    pub watch_at: f64,
    /// Early warning `at risk` above this share of the threshold. Default 0.75.
    pub at_risk_at: f64,
}

impl Default for ChurnFile {
    fn default() -> Self {
        ChurnFile {
            period: super::periods::Period::Month,
            inactivity_days: None,
            gap_multiplier: 3.0,
            floor_days: 90.0,
            new_customer_days: 90,
            developing_days: 365,
            declining_trend: -0.3,
            watch_at: 0.5,
            at_risk_at: 0.75,
        }
    }
}

/// `[loyalty]`: weights of the 0–100 loyalty score.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoyaltyFile {
    /// Weight of the repeat rate (frequency / purchase days), ≥ 0. Default 0.25.
    pub repeat_rate: f64,
    /// Weight of the regularity 1 / (1 + gap CV), ≥ 0. Default 0.2.
    pub regularity: f64,
    /// Weight of the percentile rank of tenure, ≥ 0. Default 0.2.
    pub tenure: f64,
    /// Weight of the share of periods with a purchase, ≥ 0. Default 0.25.
    pub active_share: f64,
    /// Weight of the percentile rank of distinct categories, ≥ 0; dropped when `columns.category`
    /// is not mapped. Default 0.1.
    pub breadth: f64,
}

impl Default for LoyaltyFile {
    fn default() -> Self {
        let w = super::loyalty::LoyaltyWeights::default();
        LoyaltyFile {
            repeat_rate: w.repeat_rate,
            regularity: w.regularity,
            tenure: w.tenure,
            active_share: w.active_share,
            breadth: w.breadth,
        }
    }
}

/// `[relationship.satisfaction]`: a satisfaction / NPS table, joined on customer id.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionTable {
    /// URI of a Parquet table (same forms as `source.uri`).
    pub uri: String,
    /// Storage options for `uri` (same keys as `source.storage`).
    #[serde(default)]
    pub storage: StorageOptions,
    /// Customer id column.
    pub customer_id: String,
    /// Score column, e.g. an NPS answer 0–10.
    pub column: String,
    /// Scale of the score column: values are mapped from [min, max] to [0, 1]. Default 0.
    #[serde(default)]
    pub min: f64,
    /// Default 10.
    #[serde(default = "ten")]
    pub max: f64,
    /// Weight of this input in the relationship score.
    pub weight: f64,
}

/// `[relationship.interactions]`: an interactions table (support contacts, visits): its rows
/// are counted per customer. No score column (a misplaced `column` key is an error).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InteractionsTable {
    /// URI of a Parquet table (same forms as `source.uri`).
    pub uri: String,
    /// Storage options for `uri` (same keys as `source.storage`).
    #[serde(default)]
    pub storage: StorageOptions,
    /// Customer id column.
    pub customer_id: String,
    /// Weight of this input in the relationship score.
    pub weight: f64,
}

fn ten() -> f64 {
    10.0
}

/// `[relationship]`: weights of the 0–100 relationship score and optional extra inputs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelationshipFile {
    /// Weight of the loyalty score, ≥ 0. Default 0.35.
    pub loyalty: f64,
    /// Weight of the percentile rank of purchase days per 30 days of tenure, ≥ 0. Default 0.2.
    pub interaction: f64,
    /// Weight of the mean percentile rank of tenure and orders, ≥ 0. Default 0.25.
    pub depth: f64,
    /// Weight of the percentile rank of distinct categories, ≥ 0; dropped when `columns.category`
    /// is not mapped. Default 0.2.
    pub breadth: f64,
    /// A satisfaction / NPS table: mean score per customer, scaled to [0, 1].
    pub satisfaction: Option<SatisfactionTable>,
    /// An interactions table (support contacts, visits): rows per customer are counted.
    pub interactions: Option<InteractionsTable>,
}

impl Default for RelationshipFile {
    fn default() -> Self {
        let w = super::loyalty::RelationshipWeights::default();
        RelationshipFile {
            loyalty: w.loyalty,
            interaction: w.interaction,
            depth: w.depth,
            breadth: w.breadth,
            satisfaction: None,
            interactions: None,
        }
    }
}

/// `[matrix]`: thresholds of the value × relationship matrix.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    /// Value threshold (customers at or above are "high value"); default: the median. The value
    /// metric is `clv` when the models ran, else `total_amount`.
    pub value_threshold: Option<f64>,
    /// Relationship-score threshold (0–100); default: the median.
    pub relationship_threshold: Option<f64>,
}

/// Validated behaviour settings (churn, loyalty, relationship, matrix).
#[derive(Debug, Clone, Serialize)]
pub struct BehaviourSettings {
    /// `[churn]`: activity periods, churn and lifecycle rules.
    pub churn: ChurnFile,
    /// `[loyalty]`: weights of the loyalty score.
    pub loyalty: LoyaltyFile,
    /// `[relationship]`: weights of the relationship score and its optional extra inputs.
    pub relationship: RelationshipFile,
    /// `[matrix]`: thresholds of the value × relationship matrix.
    pub matrix: MatrixFile,
}

impl BehaviourSettings {
    /// The activity period (`churn.period`) of the period tables and `active_period_share`.
    pub fn period(&self) -> super::periods::Period {
        self.churn.period
    }
}
