//! `custval plan`: a dry run. Lists the input files (with, for local files, how many row groups
//! the window's statistics let the scan skip) and, per as-of date, whether each partition would
//! be written or skipped, and why. Reads only footers and manifests.

use crate::backfill::{plan_dates, DatePlan};
use crate::error::RunError;
use crate::job::Job;
use crate::source::{self, InputFile};
use crate::storage;
use chrono::NaiveDate;

/// Row groups of a local Parquet file, and how many may hold days in `[start, end]` according
/// to the timestamp column's statistics (`None` when the file or its statistics are unreadable).
pub(crate) fn row_groups_in_window(
    path: &str,
    column: &str,
    start: Option<i32>,
    end: i32,
) -> Option<(usize, usize)> {
    use parquet::basic::{LogicalType, TimeUnit};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;
    let reader = SerializedFileReader::new(std::fs::File::open(path).ok()?).ok()?;
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let idx = (0..schema.num_columns()).find(|&i| schema.column(i).name() == column)?;
    let per_day: Option<i64> = match schema.column(idx).logical_type_ref() {
        Some(LogicalType::Date) => None,
        Some(LogicalType::Timestamp { unit, .. }) => Some(match unit {
            TimeUnit::MILLIS => 86_400_000,
            TimeUnit::MICROS => 86_400_000_000,
            TimeUnit::NANOS => 86_400_000_000_000,
        }),
        _ => return None,
    };
    let lo = start.unwrap_or(i32::MIN) as i64;
    let hi = end as i64;
    let mut overlapping = 0;
    for rg in meta.row_groups() {
        let (min, max) = match (rg.column(idx).statistics(), per_day) {
            (Some(Statistics::Int32(s)), None) => (*s.min_opt()? as i64, *s.max_opt()? as i64),
            (Some(Statistics::Int64(s)), Some(u)) => {
                (s.min_opt()?.div_euclid(u), s.max_opt()?.div_euclid(u))
            }
            _ => return None,
        };
        if max >= lo && min <= hi {
            overlapping += 1;
        }
    }
    Some((meta.num_row_groups(), overlapping))
}

/// Print the plan for `dates` on stdout.
pub(crate) fn print_plan(
    job: &Job,
    dates: &[NaiveDate],
    force: bool,
) -> Result<Vec<DatePlan>, RunError> {
    let loc = storage::open(&job.output_uri, &job.output_storage)?;
    let inputs: Vec<InputFile> = source::job_input_files(job)?;
    let (first, last) = (
        dates.iter().min().copied().unwrap_or(job.as_of),
        dates.iter().max().copied().unwrap_or(job.as_of),
    );
    let start = job.scan_start(first);
    println!(
        "custval plan: job {} ({}), job hash {}",
        job.name,
        job.path.display(),
        job.settings_hash()
    );
    println!(
        "one scan of {} for days {}..={last}",
        job.source.uri.get_ref(),
        start.map(|s| s.to_string()).unwrap_or_default()
    );
    println!("input files ({}):", inputs.len());
    for f in &inputs {
        let groups = if storage::is_local(&f.uri) {
            match row_groups_in_window(
                &f.uri,
                &job.columns.timestamp,
                start.map(source::epoch_day),
                source::epoch_day(last),
            ) {
                Some((n, 0)) => format!("skipped: none of its {n} row groups is in the window"),
                Some((n, k)) => format!("{k} of {n} row groups in the window"),
                None => "row groups: no usable statistics".into(),
            }
        } else {
            "row groups: pruned by statistics at read time".into()
        };
        let size = f.bytes.map(|b| format!("{b} bytes")).unwrap_or_default();
        println!("  {}  {size}  {groups}", f.uri);
    }
    let plan = plan_dates(job, &loc, dates, &inputs, force)?;
    println!(
        "partitions under {} ({}):",
        job.output_uri,
        job.output_tables()
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let storage::Location::Local(root) = &loc {
        for (p, live) in storage::lock::leftovers(root) {
            println!(
                "staging leftover: {} ({})",
                p.display(),
                if live {
                    "a live run's"
                } else {
                    "of a dead run: the next run removes it"
                }
            );
        }
    }
    // The freshness check of a run, on the timestamp column only.
    let source_files: Vec<InputFile> =
        source::list_input_files(job.source.uri.get_ref(), &job.source.storage)?;
    let scan = source::scan_files(job, &source_files, start, last)?;
    let days = source::days_with_data(&scan).map_err(|e| source::SourceError::Read {
        uri: scan.uri.clone(),
        source: e,
    })?;
    for p in &plan {
        match crate::quality::check_fresh(&days, p.as_of, job.quality.max_staleness_days) {
            Err(e) => println!("  as_of={}  fail   (stale: {e})", p.as_of),
            Ok(()) => println!(
                "  as_of={}  {}  ({})",
                p.as_of,
                if p.write { "write" } else { "skip " },
                p.reason
            ),
        }
    }
    Ok(plan)
}
