//! The job file as written: serde structs exactly as in the TOML, with their defaults. Every key
//! is documented once, on its field.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::StorageOptions;
use crate::features::settings::{ChurnFile, LoyaltyFile, MatrixFile, RelationshipFile};
pub use crate::segments::rfm::{RfmFile, SegmentRuleFile};
pub use crate::segments::tiers::{TierMethodName, TiersFile};
pub use crate::valuation::{ClvFile, ModelFile, OnFitFailureFile, MAX_INTERVAL_DRAWS};

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
    /// Storage options for `uri` (see [`StorageOptions`]).
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
    /// Storage options for `uri` (see [`StorageOptions`]); `--output` does not change them.
    #[serde(default)]
    pub storage: StorageOptions,
    /// Tables to write. Default: all tables.
    pub tables: Option<Spanned<Vec<String>>>,
    /// Write the HTML run report `<uri>/report/as_of=D/index.html`. Default: true.
    pub report: Option<bool>,
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
    /// `[source]`: where the transactions live. Required.
    pub source: SourceFile,
    /// `[columns]`: which source columns mean what. Required.
    pub columns: ColumnsFile,
    /// `[attributes]`: an optional customer-attribute table, joined on customer id.
    pub attributes: Option<AttributesFile>,
    /// `[output]`: where the tables go. Required.
    pub output: OutputFile,
    /// `[rfm]`: the RFM segment rules. Default: the 11 classic segments.
    #[serde(default)]
    pub rfm: RfmFile,
    /// `[tiers]`: the value-tier method and its thresholds. Default: `"pareto"`.
    #[serde(default)]
    pub tiers: TiersFile,
    /// `[clv]`: the lifetime-value models and their settings. Default: enabled, `model = "auto"`.
    #[serde(default)]
    pub clv: ClvFile,
    /// `[churn]`: activity periods, churn and lifecycle rules.
    #[serde(default)]
    pub churn: ChurnFile,
    /// `[loyalty]`: weights of the 0–100 loyalty score.
    #[serde(default)]
    pub loyalty: LoyaltyFile,
    /// `[relationship]`: weights of the 0–100 relationship score and its optional extra inputs.
    #[serde(default)]
    pub relationship: RelationshipFile,
    /// `[matrix]`: thresholds of the value × relationship matrix. Default: the medians.
    #[serde(default)]
    pub matrix: MatrixFile,
    /// `[quality]`: row checks, the rejected-row threshold and the freshness limit.
    #[serde(default)]
    pub quality: crate::quality::QualityOptions,
}

/// `time_unit`: the unit of the BTYD inputs `recency` and `T`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// `"day"` (default): `recency` and `T` in days.
    #[default]
    Day,
    /// `"week"`: `recency` and `T` in weeks (days / 7).
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

/// The longest lookback window accepted, in days (`lookback_days`): 1,000 years, far inside
/// the dates the calendar arithmetic can represent.
pub const MAX_LOOKBACK_DAYS: i64 = 365_250;

/// The longest CLV horizon accepted, in months (`clv.horizon_months`).
pub const MAX_HORIZON_MONTHS: u32 = 1200;
