//! The job file: what the user wrote ([`JobFile`], serde structs exactly as in the TOML) and what
//! the pipeline runs ([`Job`], validated, with dates resolved).
//!
//! Every key is documented once, on its field; the README's job-file table repeats those docs. Unknown keys, missing keys and bad values are errors naming the file, the line and
//! the key (toml's spans give the line; see [`JobError`]).
//!
//! Layout: `schema` (the file's serde types and defaults), `validate` (file → [`Job`]),
//! this module (the [`Job`] itself, loading, errors).

mod schema;
mod validate;

pub use schema::*;
use validate::{did_you_mean, line_of, validate};

use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A problem with the job file. Rendered as `file:line: key: what was expected, what was found`.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job file could not be read.
    #[error("{path}: cannot read the job file: {source}")]
    Read {
        /// Path of the job file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The job file is not valid TOML, or a key is unknown, missing or of the wrong type.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// Path of the job file.
        path: PathBuf,
        /// 1-based line of the problem (1 when toml gives no position).
        line: usize,
        /// The TOML parser's message, with a "did you mean" hint for a misspelt key.
        message: String,
    },
    /// A key has a value that parses but is not allowed.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        /// Path of the job file.
        path: PathBuf,
        /// 1-based line of the key (or of its table).
        line: usize,
        /// Dotted name of the key or table, e.g. `churn.inactivity_days`.
        key: String,
        /// What was expected and what was found.
        message: String,
    },
}

pub use crate::features::settings::{
    BehaviourSettings, ChurnFile, InteractionsTable, LoyaltyFile, MatrixFile, RelationshipFile,
    SatisfactionTable,
};
pub use crate::segments::rfm::{ScoreRange, SegmentRule};
pub use crate::segments::tiers::TierMethod;
pub use crate::store_options::StorageOptions;
pub use crate::valuation::ClvSettings;

pub use crate::tables::Table;

/// A validated job: what `pipeline` runs.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// `name`: the job name, recorded in manifests and the runs table.
    pub name: String,
    /// Where the job file was read from (for messages).
    pub path: PathBuf,
    /// The as-of date: `--as-of`, else `as_of` of the job file.
    pub as_of: NaiveDate,
    /// `lookback_days`: only purchases in `(as_of − N, as_of]` count; `None`: the whole history.
    pub lookback_days: Option<i64>,
    /// Days per BTYD time unit: 1 or 7.
    pub unit_days: f64,
    /// `[source]`: where the transactions are read from.
    pub source: SourceFile,
    /// `[columns]`: the column mapping of the transactions.
    pub columns: ColumnsFile,
    /// `[attributes]`: the customer-attribute table, if any.
    pub attributes: Option<AttributesFile>,
    /// Output root URI: `--output` as given, else `output.uri` (relative to the job file).
    pub output_uri: String,
    /// `output.storage`: storage options of the output.
    pub output_storage: StorageOptions,
    /// The tables to write, then [`Table::Report`] when `output.report` is on.
    pub tables: Vec<Table>,
    /// `rfm.segments`: the RFM segment rules, first match wins.
    pub segments: Vec<SegmentRule>,
    /// `[tiers]`: the value-tier method and its thresholds.
    pub tiers: TierMethod,
    /// `None` when `clv.enabled = false`.
    pub clv: Option<ClvSettings>,
    /// `[churn]`, `[loyalty]`, `[relationship]` and `[matrix]` settings.
    pub behaviour: BehaviourSettings,
    /// Row checks and the rejected-row threshold.
    pub quality: crate::quality::QualityOptions,
    /// `quality.min_date`, parsed: rows dated before it are rejected.
    pub min_date: NaiveDate,
    /// `--scratch`: where large sources are split into customer buckets (default: the system
    /// temp directory). Not a setting of the output, so not part of the settings hash.
    #[serde(skip)]
    pub scratch: Option<PathBuf>,
    /// `--scratch-io`: how scratch files are written and read. Not part of the settings hash.
    #[serde(skip)]
    pub scratch_io: crate::scratch_io::ScratchIo,
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
    /// `--as-of`: replaces `as_of` of the job file.
    pub as_of: Option<NaiveDate>,
    /// `--output`: replaces `output.uri`.
    pub output: Option<String>,
    /// `--holdout-days`: replaces `clv.holdout_days`.
    pub holdout_days: Option<i64>,
    /// `--scratch`: where large sources are split into customer buckets.
    pub scratch: Option<PathBuf>,
    /// `--scratch-io`: how scratch files are written and read.
    pub scratch_io: crate::scratch_io::ScratchIo,
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
mod tests;
