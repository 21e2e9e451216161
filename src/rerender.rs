//! `custval report`: re-render a date's run report from its published tables alone (no
//! transactions are read), and publish it with the commit protocol.
//!
//! The tables are read from `<output>/<table>/as_of=D/part-00000.parquet`; the run's state
//! (succeeded, degraded and why) from the run log row of the run that published
//! `customer_features` (its manifest names the run).

use crate::error::RunError;
use crate::job::{Job, Table};
use crate::pipeline;
use crate::report::{self, RunState};
use crate::runs;
use crate::storage::{self, commit, Location};
use chrono::NaiveDate;
use polars::prelude::*;

/// Where the report went.
#[derive(Debug)]
pub(crate) struct Rendered {
    /// The published page: a local path or URI ending in `report/as_of=D/index.html`.
    pub location: String,
    /// Size of the HTML page in bytes.
    pub bytes: usize,
    /// The tables it was drawn from.
    pub tables: Vec<Table>,
}

/// A published Parquet file, only `columns` of it when given (those it has).
fn read_frame(
    loc: &Location,
    rel: &str,
    columns: Option<&[&str]>,
) -> Result<Option<DataFrame>, RunError> {
    let Some(bytes) = storage::read_optional(loc, rel)? else {
        return Ok(None);
    };
    let read = || pipeline::compute("reading a published table");
    let mut reader = ParquetReader::new(std::io::Cursor::new(bytes));
    if let Some(wanted) = columns {
        let schema = reader.schema().map_err(read())?;
        let keep: Vec<String> = wanted
            .iter()
            .filter(|c| schema.contains(c))
            .map(|c| c.to_string())
            .collect();
        reader = reader.with_columns(Some(keep));
    }
    reader.finish().map(Some).map_err(read())
}

/// Re-render and publish the report of `as_of` from the published tables of `job`.
pub(crate) fn rerender(job: &Job, as_of: NaiveDate) -> Result<Rendered, RunError> {
    let t0 = std::time::Instant::now();
    let started_at = chrono::Utc::now();
    let loc = storage::open(&job.output_uri, &job.output_storage)?;
    let run_id = pipeline::new_run_id();
    let _lock = storage::lock::acquire(&loc, &job.name, &run_id, job.wait)?;
    let anchor_rel = format!(
        "{}/{}",
        commit::partition_dir(Table::CustomerFeatures.as_str(), as_of),
        commit::MANIFEST
    );
    let manifest = storage::read_optional(&loc, &anchor_rel)?
        .and_then(|b| commit::Manifest::parse(&b))
        .ok_or_else(|| RunError::NotPublished {
            what: format!("customer_features as of {as_of}"),
            uri: loc.display(&anchor_rel),
        })?;
    // The tables this job writes, as published by the run that published customer_features: a
    // partition left by an earlier run (another job definition, or a run killed between two
    // tables) is not mixed in.
    let mut tables = Vec::new();
    for t in job.output_tables() {
        if t == Table::Report {
            continue;
        }
        let dir = commit::partition_dir(t.as_str(), as_of);
        let same_run = storage::read_optional(&loc, &format!("{dir}/{}", commit::MANIFEST))?
            .and_then(|b| commit::Manifest::parse(&b))
            .is_some_and(|m| m.run_id == manifest.run_id);
        if !same_run {
            tracing::warn!(table = %t, %as_of, "not from the run of customer_features; left out of the report");
            continue;
        }
        let columns = (t == Table::CustomerFeatures).then_some(&report::CUSTOMER_COLUMNS[..]);
        if let Some(df) = read_frame(&loc, &format!("{dir}/{}", t.file_name()), columns)? {
            tables.push((t, df));
        }
    }
    let state = match read_frame(&loc, &runs::file_name(&manifest.run_id, as_of), None)? {
        Some(row) if row.height() > 0 => {
            let status = row
                .column("status")
                .ok()
                .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)));
            let message = row
                .column("message")
                .ok()
                .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)));
            match status.as_deref() {
                Some("degraded") => RunState::Degraded(message.into_iter().collect()),
                Some("succeeded") => RunState::Succeeded,
                _ => RunState::NotRecorded,
            }
        }
        _ => RunState::NotRecorded,
    };
    let page = report::render(&report::ReportInput {
        job: &job.name,
        as_of,
        state,
        tables: &tables,
    })
    .map_err(pipeline::compute("report"))?
    .into_bytes();
    let bytes = page.len();
    let dir = commit::partition_dir(Table::Report.as_str(), as_of);
    let part = commit::PartitionContent {
        table: Table::Report.as_str().to_string(),
        file: Table::Report.file_name(),
        manifest: commit::Manifest {
            table: Table::Report.as_str().to_string(),
            rows: 0,
            files: vec![commit::ManifestFile {
                name: Table::Report.file_name().to_string(),
                bytes: bytes as u64,
            }],
            custval_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: started_at.to_rfc3339(),
            duration_seconds: t0.elapsed().as_secs_f64(),
            data_e_tag: None,
            ..manifest
        },
        data: page.into(),
    };
    commit::publish(&loc, &run_id, as_of, &[part])?;
    let location = loc.display(&format!("{dir}/{}", Table::Report.file_name()));
    tracing::info!(%as_of, report = %location, "report published");
    Ok(Rendered {
        location,
        bytes,
        tables: tables.iter().map(|(t, _)| *t).collect(),
    })
}
