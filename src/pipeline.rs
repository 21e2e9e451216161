//! Running a job: the order of steps, nothing else.
//!
//! ```text
//!  Job ──► source::scan (lazy, window pushed into the Parquet scan)
//!            ──► summary::customer_summary (collected once)
//!                  ──► tables::customer_features (RFM scores, segments, tiers)
//!                  ──► tables::segment_summary
//!                        ──► encode Parquet ──► storage::commit::publish (all or nothing per table)
//! ```
//! Nothing is written before every table of the run is computed and encoded, so a failure in any
//! step leaves earlier output untouched.

use crate::job::Job;
use crate::source::{self, InputFile, SourceError};
use crate::storage::{self, commit, StorageError};
use crate::summary;
use crate::tables;
use polars::prelude::*;
use std::time::Instant;

/// A run failure, classified for exit codes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Job(#[from] crate::job::JobError),
    #[error(transparent)]
    Source(Box<SourceError>),
    #[error(transparent)]
    Storage(Box<StorageError>),
    #[error("computing {step}: {source}")]
    Compute {
        step: &'static str,
        source: PolarsError,
    },
}

impl From<SourceError> for RunError {
    fn from(e: SourceError) -> Self {
        RunError::Source(Box::new(e))
    }
}

impl From<StorageError> for RunError {
    fn from(e: StorageError) -> Self {
        RunError::Storage(Box::new(e))
    }
}

fn compute(step: &'static str) -> impl FnOnce(PolarsError) -> RunError {
    move |source| RunError::Compute { step, source }
}

/// What one table wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableMetrics {
    pub table: String,
    pub rows: usize,
    pub bytes: usize,
    pub location: String,
}

/// The result of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub job: String,
    pub as_of: String,
    pub run_id: String,
    pub customers: usize,
    pub input_files: Vec<InputFile>,
    pub tables: Vec<TableMetrics>,
    pub seconds: f64,
}

/// A new run id: UTC time plus random bits, unique per run.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!(
        "{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        h.finish() as u32
    )
}

/// Optional columns the job maps.
pub fn optional_columns(job: &Job) -> summary::Optional {
    let c = &job.columns;
    summary::Optional {
        order_id: c.order_id.is_some(),
        quantity: c.quantity.is_some(),
        category: c.category.is_some(),
        region: c.region.is_some(),
        industry: c.industry.is_some(),
        channel: c.channel.is_some(),
    }
}

/// Collect the customer summary of a job as of its date.
pub fn compute_summary(job: &Job) -> Result<DataFrame, RunError> {
    let scan = source::scan(job)?;
    let plan = summary::customer_summary(
        scan.lf,
        source::epoch_day(job.as_of),
        job.unit_days,
        optional_columns(job),
    );
    let df = plan.collect().map_err(|e| SourceError::Read {
        uri: scan.uri.clone(),
        source: e,
    })?;
    if df.height() == 0 {
        return Err(SourceError::EmptyWindow {
            uri: scan.uri,
            window: source::window_text(job),
        }
        .into());
    }
    Ok(df)
}

/// Compute all tables of a job (no I/O beyond reading the source).
pub fn compute_tables(job: &Job) -> Result<Vec<(String, DataFrame)>, RunError> {
    let summary = compute_summary(job)?;
    let features =
        tables::customer_features::build(summary, job).map_err(compute("customer_features"))?;
    let mut out = Vec::new();
    for t in &job.tables {
        let df = match t.as_str() {
            "customer_features" => features.clone(),
            "segment_summary" => {
                tables::segment_summary::build(&features).map_err(compute("segment_summary"))?
            }
            other => unreachable!("job validation admits only known tables, got {other}"),
        };
        out.push((t.clone(), df));
    }
    Ok(out)
}

/// Encode a frame as Parquet (zstd, statistics on).
pub fn to_parquet(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)?;
    Ok(buf)
}

/// Run a job: compute every table, then publish them.
pub fn run(job: &Job) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let run_id = new_run_id();
    tracing::info!(job = %job.name, as_of = %job.as_of, run_id = %run_id, "run started");
    let loc = storage::open(&job.output_uri, &job.output_storage)?;
    let input_files = source::list_input_files(job.source.uri.get_ref(), &job.source.storage)?;
    let tables = compute_tables(job)?;
    let customers = tables
        .iter()
        .find(|(t, _)| t == "customer_features")
        .map(|(_, df)| df.height())
        .unwrap_or(0);
    let mut parts = Vec::new();
    let mut metrics = Vec::new();
    for (name, mut df) in tables {
        let data = to_parquet(&mut df).map_err(compute("parquet encoding"))?;
        let dir = commit::partition_dir(&name, job.as_of);
        let manifest = serde_json::json!({
            "job": job.name,
            "job_file": job.path.display().to_string(),
            "table": name,
            "as_of": job.as_of.to_string(),
            "run_id": run_id,
            "rows": df.height(),
            "files": [{ "name": commit::DATA_FILE, "bytes": data.len() }],
            "input_files": input_files,
            "custval_version": env!("CARGO_PKG_VERSION"),
            "started_at": started_at.to_rfc3339(),
            "duration_seconds": started.elapsed().as_secs_f64(),
        });
        metrics.push(TableMetrics {
            table: name.clone(),
            rows: df.height(),
            bytes: data.len(),
            location: loc.display(&dir),
        });
        parts.push(commit::PartitionContent {
            table: name,
            data,
            manifest: serde_json::to_vec_pretty(&manifest).expect("manifest serializes"),
        });
    }
    commit::publish(&loc, &run_id, job.as_of, &parts)?;
    for m in &metrics {
        tracing::info!(table = %m.table, rows = m.rows, bytes = m.bytes, partition = %m.location, run_id = %run_id, "table committed");
    }
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(job = %job.name, as_of = %job.as_of, run_id = %run_id, customers, elapsed_s = seconds, "run finished");
    Ok(RunReport {
        job: job.name.clone(),
        as_of: job.as_of.to_string(),
        run_id,
        customers,
        input_files,
        tables: metrics,
        seconds,
    })
}
