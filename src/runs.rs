//! The `runs` table: one row per (invocation, as-of date), appended, never rewritten.
//!
//! Location: `<output>/runs/<run_id>_<as_of>.parquet` (one small file per row, so appending is a
//! single new object on every backend and concurrent runs never collide). Read it with
//! `read_parquet('<output>/runs/*.parquet')`.
//! Columns: `run_id` (String), `job` (String), `job_hash` (String), `as_of` (Date), `status`
//! (String: [`RunStatus`]), `started`, `finished` (Datetime µs, UTC),
//! `rows_in` (Int64: source rows in the window), `rows_out` (Int64: rows written over all
//! tables), `bytes_read` (Int64: size of the input files, null when unknown), `custval_version`
//! (String), `message` (String: why degraded, skipped or failed; null on success).

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;

/// What happened to one as-of date of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Published, nothing to report.
    Succeeded,
    /// Published, but a model was not fitted or rows were rejected (see the message).
    Degraded,
    /// Up to date: not recomputed.
    Skipped,
    /// Not published (see the message).
    Failed,
}

impl RunStatus {
    /// The stable value of the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Degraded => "degraded",
            RunStatus::Skipped => "skipped",
            RunStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One row of the runs table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct RunRow {
    /// Id of the invocation (UTC time plus random bits), shared by all its dates.
    pub run_id: String,
    /// Name of the job (`name` in the job file).
    pub job: String,
    /// Hash of the effective job settings (`Job::settings_hash`).
    pub job_hash: String,
    /// The as-of date of this row.
    pub as_of: NaiveDate,
    /// What happened to the date.
    pub status: RunStatus,
    /// When the date's work started (UTC).
    pub started: DateTime<Utc>,
    /// When the date's work finished (UTC).
    pub finished: DateTime<Utc>,
    /// Source rows in the date's window; 0 when the date was skipped or failed.
    pub rows_in: i64,
    /// Rows written over all tables; 0 when the date was skipped or failed.
    pub rows_out: i64,
    /// Total size of the input files in bytes; `None` when a size is unknown or nothing was read.
    pub bytes_read: Option<i64>,
    /// Why the date was degraded, skipped or failed; `None` on success.
    pub message: Option<String>,
}

/// The runs-table frame of some rows.
pub(crate) fn build(rows: &[RunRow]) -> PolarsResult<DataFrame> {
    let micros = |t: &DateTime<Utc>| t.timestamp_micros();
    let ts = |name: &str, v: Vec<i64>| -> PolarsResult<Column> {
        Column::new(name.into(), v).cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
    };
    DataFrame::new_infer_height(vec![
        Column::new(
            "run_id".into(),
            rows.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "job".into(),
            rows.iter().map(|r| r.job.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "job_hash".into(),
            rows.iter().map(|r| r.job_hash.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "as_of".into(),
            rows.iter()
                .map(|r| crate::source::epoch_day(r.as_of))
                .collect::<Vec<_>>(),
        )
        .cast(&DataType::Date)?,
        Column::new(
            "status".into(),
            rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ),
        ts("started", rows.iter().map(|r| micros(&r.started)).collect())?,
        ts(
            "finished",
            rows.iter().map(|r| micros(&r.finished)).collect(),
        )?,
        Column::new(
            "rows_in".into(),
            rows.iter().map(|r| r.rows_in).collect::<Vec<_>>(),
        ),
        Column::new(
            "rows_out".into(),
            rows.iter().map(|r| r.rows_out).collect::<Vec<_>>(),
        ),
        Column::new(
            "bytes_read".into(),
            rows.iter().map(|r| r.bytes_read).collect::<Vec<_>>(),
        ),
        Column::new(
            "custval_version".into(),
            vec![env!("CARGO_PKG_VERSION"); rows.len()],
        ),
        Column::new(
            "message".into(),
            rows.iter().map(|r| r.message.clone()).collect::<Vec<_>>(),
        ),
    ])
}

/// Relative path of a run row's file.
pub(crate) fn file_name(run_id: &str, as_of: NaiveDate) -> String {
    format!("runs/{run_id}_{as_of}.parquet")
}
