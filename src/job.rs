//! The job file: what the user wrote ([`JobFile`], serde structs exactly as in the TOML) and what
//! the pipeline runs ([`Job`], validated, with dates resolved).
//!
//! Every key is documented once, on its field; the README's job-file table repeats those docs. Unknown keys, missing keys and bad values are errors naming the file, the line and
//! the key (toml's spans give the line; see [`JobError`]).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A problem with the job file. Rendered as `file:line: key: what was expected, what was found`.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{path}: cannot read the job file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

pub use crate::features::settings::{
    BehaviourSettings, ChurnFile, InteractionsTable, LoyaltyFile, MatrixFile, RelationshipFile,
    SatisfactionTable,
};
pub use crate::segments::rfm::{ScoreRange, SegmentRule};
pub use crate::segments::tiers::TierMethod;
pub use crate::storage::StorageOptions;
pub use crate::valuation::ClvSettings;

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
    fn choice(self) -> crate::valuation::ModelChoice {
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

pub use crate::tables::Table;

/// Names of every output table, for messages.
fn table_names() -> String {
    Table::ALL.map(Table::as_str).join(", ")
}

/// A validated job: what `pipeline` runs.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub name: String,
    /// Where the job file was read from (for messages).
    pub path: PathBuf,
    pub as_of: NaiveDate,
    pub lookback_days: Option<i64>,
    /// Days per BTYD time unit: 1 or 7.
    pub unit_days: f64,
    pub source: SourceFile,
    pub columns: ColumnsFile,
    pub attributes: Option<AttributesFile>,
    pub output_uri: String,
    pub output_storage: StorageOptions,
    pub tables: Vec<Table>,
    pub segments: Vec<SegmentRule>,
    pub tiers: TierMethod,
    /// `None` when `clv.enabled = false`.
    pub clv: Option<ClvSettings>,
    pub behaviour: BehaviourSettings,
    /// Row checks and the rejected-row threshold.
    pub quality: crate::quality::QualityOptions,
    /// `quality.min_date`, parsed: rows dated before it are rejected.
    pub min_date: NaiveDate,
    /// `--scratch`: where large sources are split into customer buckets (default: the system
    /// temp directory). Not a setting of the output, so not part of the settings hash.
    #[serde(skip)]
    pub scratch: Option<PathBuf>,
    /// `--wait`: wait for another run of the job (local outputs) instead of failing.
    #[serde(skip)]
    pub wait: bool,
}

impl Job {
    /// A hash of the settings that determine the output for a given as-of date (everything but
    /// `as_of`, the output location and the job file's path): backfills skip partitions whose
    /// manifest records the same hash and the same input files.
    pub fn settings_hash(&self) -> String {
        use sha2::Digest;
        let mut v = serde_json::to_value(self).expect("job serializes");
        if let Some(o) = v.as_object_mut() {
            for k in ["as_of", "path", "output_uri", "output_storage", "tables"] {
                o.remove(k);
            }
        }
        let digest = sha2::Sha256::digest(v.to_string().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The tables this job writes: `output.tables` less those that do not apply (`model_fit`
    /// without `[clv]`, `model_diagnostics` without a holdout).
    pub fn output_tables(&self) -> Vec<Table> {
        self.tables
            .iter()
            .copied()
            .filter(|t| match t {
                Table::ModelFit => self.clv.is_some(),
                Table::ModelDiagnostics => {
                    self.clv.as_ref().is_some_and(|c| c.holdout_days.is_some())
                }
                _ => true,
            })
            .collect()
    }

    /// Whether the job writes `table`.
    pub fn writes(&self, table: Table) -> bool {
        self.output_tables().contains(&table)
    }

    /// First day the source scan must cover for as-of dates from `first_as_of` on: the window of
    /// `first_as_of`, or of its holdout calibration end when `model_diagnostics` is written.
    pub fn scan_start(&self, first_as_of: NaiveDate) -> Option<NaiveDate> {
        let holdout = match &self.clv {
            Some(c) if self.writes(Table::ModelDiagnostics) => c.holdout_days.unwrap_or(0),
            _ => 0,
        };
        self.window_start_for(first_as_of - chrono::Duration::days(holdout))
    }

    /// First day in the window, if the window is bounded.
    pub fn window_start(&self) -> Option<NaiveDate> {
        self.window_start_for(self.as_of)
    }

    /// First day in the window ending on `as_of`, if the window is bounded.
    pub fn window_start_for(&self, as_of: NaiveDate) -> Option<NaiveDate> {
        self.lookback_days
            .map(|d| as_of - chrono::Duration::days(d - 1))
    }
}

/// Overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub as_of: Option<NaiveDate>,
    pub output: Option<String>,
    pub holdout_days: Option<i64>,
    /// `--scratch`: where large sources are split into customer buckets.
    pub scratch: Option<PathBuf>,
    /// `--wait`: wait for another run of the job instead of failing.
    pub wait: bool,
}

/// Parse a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("expected YYYY-MM-DD (e.g. 2024-06-30), found {s:?}"))
}

/// Read, parse and validate a job file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Job, JobError> {
    let text = std::fs::read_to_string(path).map_err(|source| JobError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    from_str(&text, path, overrides)
}

/// Parse and validate job-file text (`path` is only used in messages).
pub fn from_str(text: &str, path: &Path, overrides: &Overrides) -> Result<Job, JobError> {
    let file: JobFile = toml::from_str(text).map_err(|e| JobError::Parse {
        path: path.to_path_buf(),
        line: e.span().map(|s| line_of(text, s)).unwrap_or(1),
        message: did_you_mean(e.message().trim_end().replace('\n', " ")),
    })?;
    validate(file, text, path, overrides)
}

/// serde's "unknown field `amont`, expected one of `customer_id`, `amount`, ..." with a hint
/// naming the closest known key.
fn did_you_mean(message: String) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message;
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| {
            (
                crate::text::edit_distance(&unknown.to_lowercase(), &k.to_lowercase()),
                k,
            )
        })
        .min();
    match best {
        Some((d, k)) if d <= 3 && d < unknown.len() => format!("{message} (did you mean `{k}`?)"),
        _ => message,
    }
}

/// Byte offset of the line that sets `key` (`"section.field"` or `"section"`): the field's line
/// inside `[section]` if present, else the section header, else the start of the file. Used for
/// the line numbers of errors found after parsing.
fn key_offset(text: &str, key: &str) -> std::ops::Range<usize> {
    let (section, field) = key.split_once('.').unwrap_or((key, ""));
    let header = format!("[{section}]");
    let mut offset = 0;
    let mut in_section = false;
    let mut found = None;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            if in_section {
                break;
            }
            in_section = t == header;
            if in_section {
                found = Some(offset);
            }
        } else if in_section && !field.is_empty() {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim() == field {
                    return offset..offset;
                }
            }
        }
        offset += line.len();
    }
    let o = found.unwrap_or(0);
    o..o
}

fn line_of(text: &str, span: std::ops::Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

/// A local relative URI of the job file, resolved against the job file's directory (so that a
/// job runs the same from any working directory); other URIs unchanged.
fn resolve_from(base: &Path, uri: &str) -> String {
    if !crate::text::is_local(uri) || uri.trim().is_empty() {
        return uri.to_string();
    }
    let p = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
    if p.is_absolute() {
        return uri.to_string();
    }
    // Lexically normalised (`a/../b` → `b`), so paths read well in messages and manifests.
    let joined = base.join(p);
    let mut parts: Vec<std::path::Component> = Vec::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if matches!(parts.last(), Some(std::path::Component::Normal(_))) =>
            {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = parts.iter().collect::<PathBuf>().display().to_string();
    if uri.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn validate(
    mut file: JobFile,
    text: &str,
    path: &Path,
    overrides: &Overrides,
) -> Result<Job, JobError> {
    // Relative local URIs in the job file are relative to the job file's directory.
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = std::path::absolute(&base).unwrap_or(base);
    for uri in [
        Some(&mut file.source.uri),
        file.attributes.as_mut().map(|a| &mut a.uri),
        Some(&mut file.output.uri),
    ]
    .into_iter()
    .flatten()
    {
        let resolved = resolve_from(&base, uri.get_ref());
        *uri.get_mut() = resolved;
    }
    if let Some(x) = &mut file.relationship.satisfaction {
        x.uri = resolve_from(&base, &x.uri);
    }
    if let Some(x) = &mut file.relationship.interactions {
        x.uri = resolve_from(&base, &x.uri);
    }
    let invalid = |span: std::ops::Range<usize>, key: &str, message: String| JobError::Invalid {
        path: path.to_path_buf(),
        line: line_of(text, span),
        key: key.to_string(),
        message,
    };
    let as_of = match (&overrides.as_of, &file.as_of) {
        (Some(d), _) => *d,
        (None, Some(s)) => parse_date(s.get_ref()).map_err(|m| invalid(s.span(), "as_of", m))?,
        (None, None) => {
            return Err(invalid(
                0..0,
                "as_of",
                "missing: set `as_of = \"YYYY-MM-DD\"` in the job file or pass --as-of".into(),
            ))
        }
    };
    if let Some(l) = &file.lookback_days {
        if *l.get_ref() < 1 {
            return Err(invalid(
                l.span(),
                "lookback_days",
                format!("expected a positive number of days, found {}", l.get_ref()),
            ));
        }
    }
    let unit_days = file.time_unit.days();
    for (key, s) in [
        ("source.uri", &file.source.uri),
        ("output.uri", &file.output.uri),
    ] {
        if s.get_ref().trim().is_empty() {
            return Err(invalid(s.span(), key, "must not be empty".into()));
        }
    }
    let mut storages: Vec<(&str, &StorageOptions)> = vec![
        ("source.storage", &file.source.storage),
        ("output.storage", &file.output.storage),
    ];
    if let Some(a) = &file.attributes {
        storages.push(("attributes.storage", &a.storage));
    }
    for (key, o) in storages {
        if o.timeout_s.is_some_and(|t| !(1..=3600).contains(&t)) {
            return Err(invalid(
                key_offset(text, key.split('.').next().unwrap_or(key)),
                key,
                format!(
                    "timeout_s: expected 1 to 3600 seconds, found {}",
                    o.timeout_s.unwrap_or_default()
                ),
            ));
        }
        if o.retries.is_some_and(|r| r > 20) {
            return Err(invalid(
                key_offset(text, key.split('.').next().unwrap_or(key)),
                key,
                format!(
                    "retries: expected 0 to 20, found {}",
                    o.retries.unwrap_or_default()
                ),
            ));
        }
    }
    let tables: Vec<Table> = match &file.output.tables {
        None => Table::ALL.to_vec(),
        Some(t) => {
            let mut tables = Vec::new();
            for name in t.get_ref() {
                match Table::parse(name) {
                    Some(table) => tables.push(table),
                    None => {
                        return Err(invalid(
                            t.span(),
                            "output.tables",
                            format!("unknown table {name:?}; known tables: {}", table_names()),
                        ))
                    }
                }
            }
            if t.get_ref().is_empty() {
                return Err(invalid(
                    t.span(),
                    "output.tables",
                    format!(
                        "empty: name at least one table, or remove the key to write all ({})",
                        table_names()
                    ),
                ));
            }
            tables
        }
    };
    if let Some(o) = &overrides.output {
        if o.trim().is_empty() {
            return Err(invalid(
                0..0,
                "--output",
                "must not be empty: give an output URI, or leave --output out to use output.uri"
                    .into(),
            ));
        }
    }
    let segments = match &file.rfm.segments {
        None => crate::segments::rfm::default_rules(),
        Some(rules) => {
            let parsed = rules
                .get_ref()
                .iter()
                .map(|r| {
                    Ok(SegmentRule {
                        name: r.name.clone(),
                        r: parse_range(r.r.as_deref())?,
                        f: parse_range(r.f.as_deref())?,
                        m: parse_range(r.m.as_deref())?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|m| invalid(rules.span(), "rfm.segments", m))?;
            if let Some((r, f, m)) = crate::segments::rfm::uncovered(&parsed) {
                return Err(invalid(
                    rules.span(),
                    "rfm.segments",
                    format!("no rule matches scores R={r} F={f} M={m}; add a catch-all rule (a rule with no r/f/m matches every customer)"),
                ));
            }
            parsed
        }
    };
    let tiers = {
        let t = &file.tiers;
        let bad = |m: String| invalid(key_offset(text, "tiers"), "tiers", m);
        let (high, medium) = match t.method {
            TierMethodName::Pareto => (t.high.unwrap_or(0.8), t.medium.unwrap_or(0.95)),
            TierMethodName::Percentile => (t.high.unwrap_or(0.2), t.medium.unwrap_or(0.3)),
        };
        let ok = |x: f64| (0.0..=1.0).contains(&x);
        if !ok(high) || !ok(medium) {
            return Err(bad(format!(
                "high and medium must lie in [0, 1], found high={high} medium={medium}"
            )));
        }
        if t.method == TierMethodName::Pareto {
            if medium < high {
                return Err(bad(format!(
                    "pareto: medium ({medium}) is a cumulative revenue share and must be >= high ({high})"
                )));
            }
            TierMethod::Pareto { high, medium }
        } else {
            if high + medium > 1.0 {
                return Err(bad(format!(
                    "percentile: high + medium must be <= 1, found {high} + {medium}"
                )));
            }
            TierMethod::Percentile { high, medium }
        }
    };
    let clv = if file.clv.enabled {
        let c = &file.clv;
        let bad = |m: String| invalid(key_offset(text, "clv"), "clv", m);
        let (monthly, annual) = match (c.monthly_discount_rate, c.annual_discount_rate) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "set monthly_discount_rate or annual_discount_rate, not both".into(),
                ))
            }
            (Some(m), None) => (m, (1.0 + m).powi(12) - 1.0),
            (None, Some(a)) => (crate::models::monthly_rate_from_annual(a), a),
            (None, None) => (0.01, 1.01f64.powi(12) - 1.0),
        };
        // Bounds that keep every CLV finite and every loop short: a monthly rate of -99% would
        // compound to CLVs of 1e26.
        if !(monthly.is_finite() && monthly > -0.5 && monthly < 10.0) {
            return Err(bad(format!(
                "the monthly discount rate must lie in (-0.5, 10), found {monthly}"
            )));
        }
        for (k, v) in [
            ("margin", c.margin),
            ("acquisition_cost", c.acquisition_cost),
            ("penalizer_coef", c.penalizer_coef),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(format!("{k}: expected a number >= 0, found {v}")));
            }
        }
        if !(c.horizon_months > 0 && c.horizon_months <= MAX_HORIZON_MONTHS) {
            return Err(bad(format!(
                "horizon_months: expected 1 to {MAX_HORIZON_MONTHS} (100 years), found {}",
                c.horizon_months
            )));
        }
        if !(c.days_per_month.is_finite() && (1.0..=366.0).contains(&c.days_per_month)) {
            return Err(bad(format!(
                "days_per_month: expected a number of days in [1, 366], found {}",
                c.days_per_month
            )));
        }
        if !(c.purchase_horizon_days.is_finite()
            && c.purchase_horizon_days > 0.0
            && c.purchase_horizon_days <= 36_600.0)
        {
            return Err(bad(format!(
                "purchase_horizon_days: expected a number of days in (0, 36600], found {}",
                c.purchase_horizon_days
            )));
        }
        if let Some(r) = c.retention_rate {
            if !(0.0..1.0).contains(&r) {
                return Err(bad(format!(
                    "retention_rate: expected 0 <= r < 1, found {r}"
                )));
            }
        }
        if c.interval_draws > MAX_INTERVAL_DRAWS {
            return Err(bad(format!(
                "interval_draws: expected 0 (no intervals) to {MAX_INTERVAL_DRAWS}, found {}",
                c.interval_draws
            )));
        }
        let holdout = overrides.holdout_days.or(c.holdout_days);
        if let Some(h) = holdout {
            if h < 1 {
                return Err(bad(format!("holdout_days: expected >= 1, found {h}")));
            }
        }
        Some(ClvSettings {
            model: c.model.choice(),
            on_fit_failure: match c.on_fit_failure {
                OnFitFailureFile::Fail => crate::valuation::OnFitFailure::Fail,
                OnFitFailureFile::Null => crate::valuation::OnFitFailure::Null,
            },
            horizon_months: c.horizon_months,
            monthly_discount_rate: monthly,
            annual_discount_rate: annual,
            margin: c.margin,
            acquisition_cost: c.acquisition_cost,
            days_per_month: c.days_per_month,
            purchase_horizon_days: c.purchase_horizon_days,
            penalizer_coef: c.penalizer_coef,
            retention_rate: c.retention_rate,
            holdout_days: holdout,
            interval_draws: c.interval_draws,
        })
    } else {
        if overrides.holdout_days.is_some() || file.clv.holdout_days.is_some() {
            tracing::warn!("clv.enabled = false: the holdout (model_diagnostics) is not computed");
        }
        None
    };
    if let Some(a) = &file.attributes {
        for (name, from_tx, from_attr) in [
            ("region", &file.columns.region, &a.region),
            ("industry", &file.columns.industry, &a.industry),
            ("channel", &file.columns.channel, &a.channel),
        ] {
            if from_tx.is_some() && from_attr.is_some() {
                return Err(invalid(
                    a.uri.span(),
                    "attributes",
                    format!("{name} is mapped both in [columns] and in [attributes]; keep one"),
                ));
            }
        }
    }
    let behaviour = {
        let bad = |key: &str, m: String| invalid(key_offset(text, key), key, m);
        let c = &file.churn;
        if let Some(d) = c.inactivity_days {
            if d < 1 {
                return Err(bad(
                    "churn.inactivity_days",
                    format!("expected >= 1, found {d}"),
                ));
            }
        }
        if !(c.floor_days > 0.0 && c.gap_multiplier > 0.0) {
            return Err(bad(
                "churn",
                "gap_multiplier and floor_days must be > 0".into(),
            ));
        }
        for (k, v) in [
            ("matrix.value_threshold", file.matrix.value_threshold),
            (
                "matrix.relationship_threshold",
                file.matrix.relationship_threshold,
            ),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(bad(k, format!("expected a finite number, found {v:?}")));
            }
        }
        if !(0.0 < c.watch_at && c.watch_at <= c.at_risk_at && c.at_risk_at <= 1.0) {
            return Err(bad(
                "churn",
                format!(
                    "expected 0 < watch_at <= at_risk_at <= 1, found {} and {}",
                    c.watch_at, c.at_risk_at
                ),
            ));
        }
        let l = &file.loyalty;
        crate::features::loyalty::LoyaltyWeights {
            repeat_rate: l.repeat_rate,
            regularity: l.regularity,
            tenure: l.tenure,
            active_share: l.active_share,
            breadth: l.breadth,
        }
        .validate()
        .map_err(|m| bad("loyalty", m))?;
        let r = &file.relationship;
        crate::features::loyalty::RelationshipWeights {
            loyalty: r.loyalty,
            interaction: r.interaction,
            depth: r.depth,
            breadth: r.breadth,
            satisfaction: r.satisfaction.as_ref().map_or(0.0, |x| x.weight),
            interactions: r.interactions.as_ref().map_or(0.0, |x| x.weight),
        }
        .validate()
        .map_err(|m| bad("relationship", m))?;
        if let Some(sat) = &r.satisfaction {
            if sat.max <= sat.min || sat.max.is_nan() || sat.min.is_nan() {
                return Err(bad(
                    "relationship.satisfaction",
                    "needs max > min (e.g. column = \"nps\", min = 0, max = 10)".into(),
                ));
            }
        }
        BehaviourSettings {
            churn: file.churn.clone(),
            loyalty: file.loyalty.clone(),
            relationship: file.relationship.clone(),
            matrix: file.matrix.clone(),
        }
    };
    let min_date = file
        .quality
        .validate()
        .map_err(|m| invalid(key_offset(text, "quality"), "quality", m))?;
    if let Some(tz) = &file.columns.timezone {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(
                key_offset(text, "columns.timezone"),
                "columns.timezone",
                format!("unknown time zone {tz:?}; use an IANA name such as \"UTC\", \"Europe/Berlin\" or \"Asia/Shanghai\""),
            ));
        }
    }
    Ok(Job {
        name: file.name,
        path: path.to_path_buf(),
        as_of,
        lookback_days: file.lookback_days.map(|l| l.into_inner()),
        unit_days,
        source: file.source,
        columns: file.columns,
        attributes: file.attributes,
        output_uri: overrides
            .output
            .clone()
            .unwrap_or_else(|| file.output.uri.get_ref().clone()),
        output_storage: file.output.storage,
        tables,
        segments,
        tiers,
        clv,
        behaviour,
        quality: file.quality,
        min_date,
        scratch: overrides.scratch.clone(),
        wait: overrides.wait,
    })
}

/// Parse `"4-5"`, `"3"` or nothing (= 1-5).
fn parse_range(s: Option<&str>) -> Result<ScoreRange, String> {
    let Some(s) = s else {
        return Ok(ScoreRange(1, 5));
    };
    let bad =
        || format!("score range: expected \"N\" or \"N-M\" with 1 <= N <= M <= 5, found {s:?}");
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u8>(), b.trim().parse::<u8>()),
        None => (s.trim().parse::<u8>(), s.trim().parse::<u8>()),
    };
    match (lo, hi) {
        (Ok(lo), Ok(hi)) if (1..=hi).contains(&lo) && hi <= 5 => Ok(ScoreRange(lo, hi)),
        _ => Err(bad()),
    }
}

/// Non-secret storage options as `(key, value)` pairs, for building stores.
pub fn storage_pairs(o: &StorageOptions) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    if let Some(r) = &o.region {
        m.insert("region", r.clone());
    }
    if let Some(e) = &o.endpoint {
        m.insert("endpoint", e.clone());
    }
    if let Some(a) = o.allow_http {
        m.insert("allow_http", a.to_string());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
as_of = "2024-06-30"

[source]
uri = "data/tx.parquet"

[columns]
customer_id = "c"
timestamp = "ts"
amount = "amt"

[output]
uri = "out"
"#;

    fn load_str(s: &str) -> Result<Job, JobError> {
        from_str(s, Path::new("job.toml"), &Overrides::default())
    }

    #[test]
    fn minimal_job_gets_defaults() {
        let job = load_str(MINIMAL).unwrap();
        assert_eq!(job.as_of, NaiveDate::from_ymd_opt(2024, 6, 30).unwrap());
        assert_eq!(job.unit_days, 1.0);
        assert_eq!(job.tables, Table::ALL);
        assert_eq!(job.segments.len(), 11);
        assert_eq!(
            job.tiers,
            TierMethod::Pareto {
                high: 0.8,
                medium: 0.95
            }
        );
        assert_eq!(job.window_start(), None);
    }

    #[test]
    fn bad_date_names_line_and_key() {
        let text = MINIMAL.replace("2024-06-30", "30/06/2024");
        let err = load_str(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            "job.toml:3: as_of: expected YYYY-MM-DD (e.g. 2024-06-30), found \"30/06/2024\""
        );
    }

    #[test]
    fn limits_that_keep_a_run_bounded() {
        for (extra, needle) in [
            (
                "[clv]\nhorizon_months = 12000",
                "horizon_months: expected 1 to 1200",
            ),
            ("[clv]\nmonthly_discount_rate = -0.99", "(-0.5, 10)"),
            (
                "[clv]\nmodel = \"paretonbd\"",
                "expected one of `auto`, `bgnbd`, `mbgnbd`, `pareto_nbd`",
            ),
            (
                "[clv]\ninterval_draws = 100000",
                "interval_draws: expected 0",
            ),
            (
                "[clv]\non_fit_failure = \"skip\"",
                "expected `fail` or `null`",
            ),
            ("[clv]\ndays_per_month = inf", "days_per_month"),
            ("[matrix]\nvalue_threshold = nan", "matrix.value_threshold"),
        ] {
            let e = load_str(&format!("{MINIMAL}\n{extra}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{extra}: {e}");
        }
        let e = load_str(&MINIMAL.replace("[output]", "[output]\ntables = []"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("output.tables: empty"), "{e}");
        let o = Overrides {
            output: Some(" ".into()),
            ..Default::default()
        };
        let e = from_str(MINIMAL, Path::new("j.toml"), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--output: must not be empty"), "{e}");
    }

    #[test]
    fn unknown_key_suggests_the_closest() {
        let text = MINIMAL.replace("amount = ", "amont = ");
        let e = load_str(&text).unwrap_err().to_string();
        assert!(e.ends_with("(did you mean `amount`?)"), "{e}");
        assert_eq!(
            did_you_mean("unknown field `zzzzzzzz`, expected `a` or `b`".into()),
            "unknown field `zzzzzzzz`, expected `a` or `b`"
        );
    }

    #[test]
    fn relative_uris_are_resolved_from_the_job_file() {
        let base = Path::new("/opt/jobs");
        assert_eq!(resolve_from(base, "../data/tx/"), "/opt/data/tx/");
        assert_eq!(resolve_from(base, "./tx.parquet"), "/opt/jobs/tx.parquet");
        assert_eq!(resolve_from(base, "/abs/x"), "/abs/x");
        assert_eq!(resolve_from(base, "s3://b/k"), "s3://b/k");
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let text = MINIMAL.replace("amount = \"amt\"", "amount = \"amt\"\namountt = 1");
        let err = load_str(&text).unwrap_err().to_string();
        assert!(err.contains("job.toml"), "{err}");
        assert!(
            err.starts_with("job.toml:12: unknown field `amountt`"),
            "{err}"
        );
        assert!(err.contains("unknown field `amountt`"), "{err}");
    }

    #[test]
    fn errors_after_parsing_point_at_the_key_line() {
        let text = format!("{MINIMAL}\n[churn]\nfloor_days = 30\nperiod = \"fortnight\"\n");
        let err = load_str(&text).unwrap_err().to_string();
        assert!(
            err.starts_with("job.toml:18: unknown variant `fortnight`, expected one of `week`, `month`, `quarter`"),
            "{err}"
        );
        let text =
            format!("{MINIMAL}\n[tiers]\nmethod = \"percentile\"\nhigh = 0.9\nmedium = 0.5\n");
        let err = load_str(&text).unwrap_err().to_string();
        assert!(err.starts_with("job.toml:16: tiers:"), "{err}");
    }

    #[test]
    fn missing_key_is_an_error() {
        let text = MINIMAL.replace("amount = \"amt\"\n", "");
        let err = load_str(&text).unwrap_err().to_string();
        assert!(err.contains("missing field `amount`"), "{err}");
    }

    #[test]
    fn override_wins_and_lookback_window() {
        let text = MINIMAL.replace("as_of = \"2024-06-30\"", "lookback_days = 10");
        let o = Overrides {
            as_of: Some(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()),
            output: Some("elsewhere".into()),
            holdout_days: None,
            scratch: None,
            wait: false,
        };
        let job = from_str(&text, Path::new("j.toml"), &o).unwrap();
        assert_eq!(job.window_start(), NaiveDate::from_ymd_opt(2024, 1, 22));
        assert_eq!(job.output_uri, "elsewhere");
    }

    #[test]
    fn segment_rules_must_cover_every_score() {
        let text = format!("{MINIMAL}\n[rfm]\nsegments = [{{ name = \"Top\", r = \"5\" }}]\n");
        let err = load_str(&text).unwrap_err().to_string();
        assert!(err.contains("no rule matches scores R=1 F=1 M=1"), "{err}");
        assert!(parse_range(Some("2-1")).is_err());
        assert_eq!(parse_range(Some("2-4")), Ok(ScoreRange(2, 4)));
    }
}
