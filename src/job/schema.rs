//! The job file as written: serde structs exactly as in the TOML, with their defaults. Every key
//! is documented once, on its field.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::StorageOptions;
use crate::features::settings::{ChurnFile, LoyaltyFile, MatrixFile, RelationshipFile};

/// `[source]`: where the transactions live.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// URI of a Parquet file, a directory, a glob or a Hive-partitioned dataset: a local path,
    /// `file://`, `s3://`, `gs://`, `az://` or `https://`. Relative local paths (here and in every
    /// other URI of the job file) are resolved from the job file's directory.
    pub uri: Spanned<String>,
    /// Storage options for `uri` (see [`StorageOptions`]).
    #[serde(default)]
    pub storage: StorageOptions,
    /// Read Hive partition columns (`key=value/` folders) as columns. Default true.
    #[serde(default = "yes")]
    pub hive_partitioning: bool,
}

fn yes() -> bool {
    true
}

/// `[columns]`: which source columns mean what.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsFile {
    /// Customer identifier (any type; written as a string).
    pub customer_id: String,
    /// Purchase time: a Date or Datetime column. Purchases are bucketed by calendar day.
    pub timestamp: String,
    /// Amount of the transaction line (numeric). Negative amounts (returns) are summed in.
    pub amount: String,
    /// Optional order identifier; `orders` counts distinct values. Without it, each row is one order.
    pub order_id: Option<String>,
    /// Optional quantity (numeric); summed into `quantity`.
    pub quantity: Option<String>,
    /// Optional product category; `categories` counts distinct values.
    pub category: Option<String>,
    /// Optional customer region (taken from the customer's most recent transaction).
    pub region: Option<String>,
    /// Optional customer industry.
    pub industry: Option<String>,
    /// Optional acquisition / sales channel.
    pub channel: Option<String>,
    /// Business time zone (IANA name, e.g. `"Europe/Berlin"`): purchases are bucketed into the
    /// calendar days of this zone and the as-of day ends at midnight here. Zone-aware timestamps
    /// are converted to it; naive timestamps are taken as already in it. Default `"UTC"`.
    pub timezone: Option<String>,
}

/// `[attributes]`: an optional second Parquet table with one row per customer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AttributesFile {
    /// URI of the attributes table (same forms as `source.uri`).
    pub uri: Spanned<String>,
    #[serde(default)]
    pub storage: StorageOptions,
    /// Customer id column in the attributes table.
    pub customer_id: String,
    /// Region column in the attributes table.
    pub region: Option<String>,
    /// Industry column in the attributes table.
    pub industry: Option<String>,
    /// Channel column in the attributes table.
    pub channel: Option<String>,
}

/// `[output]`: where the tables go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// Root URI of the output; each table goes to `<uri>/<table>/as_of=YYYY-MM-DD/`.
    pub uri: Spanned<String>,
    #[serde(default)]
    pub storage: StorageOptions,
    /// Tables to write. Default: all tables.
    pub tables: Option<Spanned<Vec<String>>>,
}

/// One named RFM segment rule: score ranges such as `"4-5"` or `"3"`; a missing range matches any.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SegmentRuleFile {
    pub name: String,
    pub r: Option<String>,
    pub f: Option<String>,
    pub m: Option<String>,
}

/// `[rfm]`: RFM scoring and segments.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RfmFile {
    /// Segment rules, first match wins; they must cover every (R, F, M) score combination.
    /// Default: the 11 classic segments on the R × F grid (see README).
    pub segments: Option<Spanned<Vec<SegmentRuleFile>>>,
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
    #[default]
    Pareto,
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

/// `[clv]`: lifetime-value models (BG/NBD + Gamma-Gamma) and the simple retention CLV.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClvFile {
    /// Fit the models and add the CLV columns and the `model_fit` table. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Purchase model: `"auto"` (default: fit every model, keep the lowest holdout MAE or BIC),
    /// `"bgnbd"`, `"mbgnbd"` or `"pareto_nbd"`.
    #[serde(default)]
    pub model: ModelFile,
    /// When a model cannot be fitted: `"fail"` (default: the date fails, exit 3) or `"null"`
    /// (publish with the model columns null, the date marked degraded).
    #[serde(default)]
    pub on_fit_failure: OnFitFailureFile,
    /// Months of future purchases the discounted CLV sums over. Default 12.
    #[serde(default = "twelve")]
    pub horizon_months: u32,
    /// Discount rate per month `d`. Default 0.01 (as lifetimes). Set this or `annual_discount_rate`.
    pub monthly_discount_rate: Option<f64>,
    /// Annual discount rate; the monthly rate is `(1 + annual)^(1/12) - 1`.
    pub annual_discount_rate: Option<f64>,
    /// Share of spend that is profit. Default 1 (revenue CLV).
    #[serde(default = "one")]
    pub margin: f64,
    /// Subtracted once from each customer's CLV. Default 0.
    #[serde(default)]
    pub acquisition_cost: f64,
    /// Days in a CLV month step. Default 30 (as lifetimes).
    #[serde(default = "thirty")]
    pub days_per_month: f64,
    /// Horizon of the `expected_purchases` column, in days. Default 90.
    #[serde(default = "ninety")]
    pub purchase_horizon_days: f64,
    /// L2 penalty of the fits (lifetimes' `penalizer_coef`). Default 0.
    #[serde(default)]
    pub penalizer_coef: f64,
    /// Annual retention rate `r` of `clv_simple`; default: measured, the share of customers who
    /// bought in the year before the last one and bought again in the last year.
    pub retention_rate: Option<f64>,
    /// Hold out the last N days: fit on the calibration window ending N days before as_of and
    /// compare predicted with actual repeat purchases (table `model_diagnostics`).
    pub holdout_days: Option<i64>,
    /// Parameter draws for the `_p05`/`_p95` interval columns; 0 turns them off. Default 200.
    #[serde(default = "two_hundred")]
    pub interval_draws: usize,
}

fn two_hundred() -> usize {
    200
}

/// The most parameter draws accepted (`clv.interval_draws`): the intervals cost about one
/// scoring pass per draw.
pub const MAX_INTERVAL_DRAWS: usize = 10_000;

/// `clv.model` as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFile {
    #[default]
    Auto,
    Bgnbd,
    Mbgnbd,
    ParetoNbd,
}

impl ModelFile {
    pub(super) fn choice(self) -> crate::valuation::ModelChoice {
        use crate::models::ModelKind;
        use crate::valuation::ModelChoice;
        match self {
            ModelFile::Auto => ModelChoice::Auto,
            ModelFile::Bgnbd => ModelChoice::Only(ModelKind::BgNbd),
            ModelFile::Mbgnbd => ModelChoice::Only(ModelKind::MbgNbd),
            ModelFile::ParetoNbd => ModelChoice::Only(ModelKind::ParetoNbd),
        }
    }
}

/// `clv.on_fit_failure` as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFitFailureFile {
    #[default]
    Fail,
    Null,
}

fn twelve() -> u32 {
    12
}
fn one() -> f64 {
    1.0
}
fn thirty() -> f64 {
    30.0
}
fn ninety() -> f64 {
    90.0
}

impl Default for ClvFile {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// The job file as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// Job name: recorded in manifests and the runs table.
    pub name: String,
    /// As-of date `YYYY-MM-DD`: purchases up to and including this day count. `--as-of` overrides.
    pub as_of: Option<Spanned<String>>,
    /// Lookback window in days before `as_of` (the window is `(as_of - lookback_days, as_of]`);
    /// default: the whole history up to `as_of`.
    pub lookback_days: Option<Spanned<i64>>,
    /// Time unit of the BTYD inputs `recency` and `T`: `"day"` (default) or `"week"` (= 7 days).
    #[serde(default)]
    pub time_unit: TimeUnit,
    pub source: SourceFile,
    pub columns: ColumnsFile,
    pub attributes: Option<AttributesFile>,
    pub output: OutputFile,
    #[serde(default)]
    pub rfm: RfmFile,
    #[serde(default)]
    pub tiers: TiersFile,
    #[serde(default)]
    pub clv: ClvFile,
    #[serde(default)]
    pub churn: ChurnFile,
    #[serde(default)]
    pub loyalty: LoyaltyFile,
    #[serde(default)]
    pub relationship: RelationshipFile,
    #[serde(default)]
    pub matrix: MatrixFile,
    #[serde(default)]
    pub quality: crate::quality::QualityOptions,
}

/// `time_unit`: the unit of the BTYD inputs `recency` and `T`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    #[default]
    Day,
    Week,
}

impl TimeUnit {
    /// Days per unit.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
        }
    }
}

/// The longest CLV horizon accepted, in months (`clv.horizon_months`).
pub const MAX_HORIZON_MONTHS: u32 = 1200;
