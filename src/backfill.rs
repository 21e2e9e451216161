//! Many as-of dates with one scan: `custval backfill`, and `custval run` as its one-date case.
//!
//! ```text
//!  dates ──► plan: for each date, read the tables' manifests ──► skip (same job hash and same
//!            input files, unless --force) or compute
//!        ──► one scan of the source for [window start of the earliest date, latest date]
//!            into the compact daily-purchases table
//!        ──► for each date to compute: tables (pipeline::compute_tables) ──► publish ──► runs row
//! ```
//! A date that fails is reported with its cause and the others still run; the caller turns any
//! failure into a non-zero exit. A killed backfill leaves every published partition whole (see
//! `storage::commit`), so rerunning it computes only the dates whose manifests are missing or
//! stale.

use crate::error::RunError;
use crate::features::periods::{self, Period};
use crate::job::{Job, Table};
use crate::parquet_pages;
use crate::pipeline;
use crate::runs::{self, RunRow, RunStatus};
use crate::source::{self, InputFile};
use crate::storage::{self, commit, Location};
use chrono::NaiveDate;
use std::time::Instant;

/// How often a backfill takes an as-of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Every {
    /// Every day of the range.
    Day,
    /// The last day (Sunday) of every ISO week.
    Week,
    /// The last day of every calendar month.
    Month,
    /// The last day of every calendar quarter.
    Quarter,
}

/// The as-of dates of a backfill: every day of `[from, to]` for `Day`, otherwise the last day
/// of every period (ISO week ending Sunday, calendar month, calendar quarter) whose last day
/// lies in `[from, to]`.
pub fn as_of_dates(from: NaiveDate, to: NaiveDate, every: Every) -> Vec<NaiveDate> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let to_date = |d: i32| epoch + chrono::Duration::days(d as i64);
    let (f, t) = (source::epoch_day(from), source::epoch_day(to));
    let period = match every {
        Every::Day => return (f..=t).map(to_date).collect(),
        Every::Week => Period::Week,
        Every::Month => Period::Month,
        Every::Quarter => Period::Quarter,
    };
    periods::as_of_dates(f, t, period)
        .into_iter()
        .map(to_date)
        .collect()
}

/// What a plan decided for one date.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DatePlan {
    /// The as-of date.
    pub as_of: NaiveDate,
    /// Whether the date's partitions are (re)computed and published; `false` skips the date.
    pub write: bool,
    /// Why: `--force`, the first table whose partition is missing or stale, or "up to date".
    pub reason: String,
}

/// Decide, for each date, whether its partitions must be (re)written.
pub fn plan_dates(
    job: &Job,
    loc: &Location,
    dates: &[NaiveDate],
    inputs: &[InputFile],
    force: bool,
) -> Result<Vec<DatePlan>, RunError> {
    let hash = job.settings_hash();
    let mut out = Vec::new();
    for &d in dates {
        let mut reason = None;
        if force {
            reason = Some("--force".to_string());
        }
        for t in &job.output_tables() {
            if reason.is_some() {
                break;
            }
            let rel = format!(
                "{}/{}",
                commit::partition_dir(t.as_str(), d),
                commit::MANIFEST
            );
            let ok_rel = format!(
                "{}/{}",
                commit::partition_dir(t.as_str(), d),
                commit::SUCCESS
            );
            let Some(bytes) = storage::read_optional(loc, &rel)? else {
                reason = Some(format!("{t}: no committed partition"));
                break;
            };
            if storage::read_optional(loc, &ok_rel)?.is_none() {
                reason = Some(format!("{t}: partition has no _SUCCESS"));
                break;
            }
            let Some(m) = commit::Manifest::parse(&bytes) else {
                reason = Some(format!("{t}: corrupt manifest"));
                break;
            };
            let data_rel = format!("{}/{}", commit::partition_dir(t.as_str(), d), t.file_name());
            let matches = match storage::head(loc, &data_rel)? {
                None => false,
                Some((size, e_tag)) => {
                    m.files.first().map(|f| f.bytes) == Some(size)
                        && match (m.data_e_tag.as_deref(), e_tag.as_deref()) {
                            (Some(want), Some(got)) => want == got,
                            _ => true,
                        }
                }
            };
            if !matches {
                reason = Some(format!("{t}: data does not match manifest"));
            } else if m.job_hash != hash {
                reason = Some(format!("{t}: job definition changed"));
            } else if m.input_files != inputs {
                reason = Some(format!("{t}: input files changed"));
            }
        }
        out.push(match reason {
            Some(r) => DatePlan {
                as_of: d,
                write: true,
                reason: r,
            },
            None => DatePlan {
                as_of: d,
                write: false,
                reason: "up to date (same job definition and input files)".into(),
            },
        });
    }
    Ok(out)
}

/// What one date produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DateOutcome {
    /// The as-of date.
    pub as_of: NaiveDate,
    /// Whether the date was published (cleanly or degraded), skipped as up to date, or failed.
    pub status: RunStatus,
    /// Why the date was degraded, skipped or failed; `None` when it succeeded.
    pub message: Option<String>,
    /// What each published table wrote; empty for a skipped or failed date.
    pub tables: Vec<pipeline::TableMetrics>,
    /// Rows of `customer_features`; 0 if the date was skipped or failed or that table not written.
    pub customers: usize,
    /// Wall-clock seconds spent on the date (0 for a skipped date).
    pub seconds: f64,
}

/// The result of a multi-date run.
#[derive(Debug)]
pub struct Report {
    /// The job's name.
    pub job: String,
    /// The id of this run, shared by its rows in the runs table and its manifests.
    pub run_id: String,
    /// The job's input files (source files, then side inputs), as listed at the start of the run.
    pub input_files: Vec<InputFile>,
    /// One outcome per requested date, in date order.
    pub dates: Vec<DateOutcome>,
    /// Errors of the failed dates, in date order.
    pub errors: Vec<(NaiveDate, RunError)>,
    /// Wall-clock seconds of the whole run (planning, scan and every date).
    pub seconds: f64,
}

/// Compute and publish `dates` (see the module doc). Errors that concern every date (the job's
/// output or source cannot be opened) are returned; per-date failures are in the report.
pub fn run_dates(job: &Job, dates: &[NaiveDate], force: bool) -> Result<Report, RunError> {
    let run_id = pipeline::new_run_id();
    // Every log line of the run carries the job and the run id (JSON: under "span").
    let _run = tracing::info_span!("run", job = %job.name, run_id = %run_id).entered();
    crate::progress::set_context(crate::progress::RunContext {
        job: Some(job.name.clone()),
        as_of: (dates.len() == 1).then(|| dates[0].to_string()),
        run_id: Some(run_id.clone()),
    });
    let loc = storage::open(&job.output_uri, &job.output_storage)?;
    // One run per job at a time (local outputs); removes dead runs' staging leftovers.
    let _lock = storage::lock::acquire(&loc, &job.name, &run_id, job.wait)?;
    let started_at = chrono::Utc::now();
    run_dates_at(job, &loc, &run_id, dates, force).inspect_err(|e| {
        // A failure that stops every date is still a run: log it in the runs table, unless the
        // store is what failed (a silent store would only cost another timeout).
        if matches!(e, RunError::Storage(_)) && matches!(loc, Location::Remote { .. }) {
            return;
        }
        for &d in dates {
            let row = RunRow {
                run_id: run_id.clone(),
                job: job.name.clone(),
                job_hash: job.settings_hash(),
                as_of: d,
                status: RunStatus::Failed,
                started: started_at,
                finished: chrono::Utc::now(),
                rows_in: 0,
                rows_out: 0,
                bytes_read: None,
                message: Some(format!("{e:#}")),
            };
            if let Err(w) = write_run_row(&loc, &row) {
                tracing::warn!(as_of = %d, error = %w, "could not append to the runs table");
            }
        }
    })
}

fn run_dates_at(
    job: &Job,
    loc: &Location,
    run_id: &str,
    dates: &[NaiveDate],
    force: bool,
) -> Result<Report, RunError> {
    let loc = loc.clone();
    let run_id = run_id.to_string();
    let started = Instant::now();
    let hash = job.settings_hash();
    let source_files = source::list_input_files(job.source.uri.get_ref(), &job.source.storage)?;
    let mut inputs = source_files.clone();
    inputs.extend(source::side_input_files(job)?);
    let bytes_read = inputs
        .iter()
        .map(|f| f.bytes.map(|b| b as i64))
        .sum::<Option<i64>>();
    let plan = plan_dates(job, &loc, dates, &inputs, force)?;
    let mut report = Report {
        job: job.name.clone(),
        run_id: run_id.clone(),
        input_files: inputs.clone(),
        dates: Vec::new(),
        errors: Vec::new(),
        seconds: 0.0,
    };
    let todo: Vec<NaiveDate> = plan.iter().filter(|p| p.write).map(|p| p.as_of).collect();
    for p in plan.iter().filter(|p| !p.write) {
        tracing::info!(as_of = %p.as_of, reason = %p.reason, "skipped");
        let now = chrono::Utc::now();
        let row = RunRow {
            run_id: run_id.clone(),
            job: job.name.clone(),
            job_hash: hash.clone(),
            as_of: p.as_of,
            status: RunStatus::Skipped,
            started: now,
            finished: now,
            rows_in: 0,
            rows_out: 0,
            bytes_read: None,
            message: Some(p.reason.clone()),
        };
        if let Err(e) = write_run_row(&loc, &row) {
            tracing::warn!(as_of = %p.as_of, error = %e, "could not append to the runs table");
        }
        report.dates.push(DateOutcome {
            as_of: p.as_of,
            status: RunStatus::Skipped,
            message: Some(p.reason.clone()),
            tables: Vec::new(),
            customers: 0,
            seconds: 0.0,
        });
    }
    if let (Some(first), Some(last)) = (todo.iter().min(), todo.iter().max()) {
        tracing::info!(job = %job.name, run_id = %run_id, dates = todo.len(), from = %first, to = %last, "scanning the source once for all dates");
        let computed = compute_dates(job, &source_files, &todo, job.scan_start(*first), *last)?;
        let bar = crate::progress::bar(todo.len());
        // A date's tables are encoded and published on a second thread while the next date is
        // computed: publishing waits mostly on storage (fsync, uploads). At most one date is
        // in delivery, and it is finished (its run row written) before the next one starts,
        // so dates are published and recorded in order, as before.
        let record = |d: NaiveDate,
                      t0: Instant,
                      started_at: chrono::DateTime<chrono::Utc>,
                      res: Result<(DateOutcome, i64), RunError>,
                      report: &mut Report| {
            let (status, message, rows_in, rows_out) = match &res {
                Ok((o, rows_in)) => (
                    o.status,
                    o.message.clone(),
                    *rows_in,
                    o.tables.iter().map(|t| t.rows as i64).sum(),
                ),
                Err(e) => (RunStatus::Failed, Some(format!("{e:#}")), 0, 0),
            };
            let row = RunRow {
                run_id: run_id.clone(),
                job: job.name.clone(),
                job_hash: hash.clone(),
                as_of: d,
                status,
                started: started_at,
                finished: chrono::Utc::now(),
                rows_in,
                rows_out,
                bytes_read,
                message: message.clone(),
            };
            if let Err(e) = write_run_row(&loc, &row) {
                tracing::warn!(as_of = %d, error = %e, "could not append to the runs table");
            }
            match res {
                Ok((o, _)) => report.dates.push(o),
                Err(e) => {
                    if todo.len() > 1 {
                        tracing::error!(as_of = %d, error = %format!("{e:#}"), "date failed; continuing with the others");
                    }
                    report.dates.push(DateOutcome {
                        as_of: d,
                        status: RunStatus::Failed,
                        message,
                        tables: Vec::new(),
                        customers: 0,
                        seconds: t0.elapsed().as_secs_f64(),
                    });
                    report.errors.push((d, e));
                }
            }
            bar.inc(1);
        };
        type Delivery<'s> = (
            NaiveDate,
            Instant,
            chrono::DateTime<chrono::Utc>,
            std::thread::ScopedJoinHandle<'s, Result<(DateOutcome, i64), RunError>>,
        );
        let join = |(d, t0, started_at, h): Delivery<'_>, report: &mut Report| {
            let res = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            record(d, t0, started_at, res, report);
        };
        std::thread::scope(|scope| {
            let mut pending: Option<Delivery<'_>> = None;
            for (d, prepared) in computed {
                let span =
                    tracing::info_span!("date", job = %job.name, run_id = %run_id, as_of = %d);
                let entered = span.clone().entered();
                crate::progress::set_context(crate::progress::RunContext {
                    as_of: Some(d.to_string()),
                    ..Default::default()
                });
                bar.set_message(d.to_string());
                let t0 = Instant::now();
                let started_at = chrono::Utc::now();
                let computed = prepared.and_then(|p| compute_date(job, p, d));
                drop(entered);
                if let Some(p) = pending.take() {
                    join(p, &mut report);
                }
                match computed {
                    Ok(c) => {
                        let (loc, run_id, hash, inputs) = (&loc, &run_id, &hash, &inputs);
                        let h = scope.spawn(move || {
                            let _date = span.entered();
                            deliver_date(job, loc, c, d, run_id, hash, inputs)
                        });
                        pending = Some((d, t0, started_at, h));
                    }
                    Err(e) => record(d, t0, started_at, Err(e), &mut report),
                }
            }
            if let Some(p) = pending.take() {
                join(p, &mut report);
            }
        });
        bar.finish_and_clear();
        crate::progress::clear_bar();
    }
    report.dates.sort_by_key(|o| o.as_of);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn write_run_row(loc: &Location, row: &RunRow) -> Result<(), RunError> {
    let mut df = runs::build(std::slice::from_ref(row)).map_err(pipeline::compute("runs table"))?;
    let bytes = parquet_pages::to_parquet(&mut df).map_err(pipeline::compute("runs table"))?;
    storage::put(loc, &runs::file_name(&row.run_id, row.as_of), bytes)?;
    Ok(())
}

/// Everything one date needs to be finished: the buckets' parts, its data quality and its
/// quarantined rows. Summaries of several dates wait on scratch, not in memory.
struct Prepared {
    parts: Vec<pipeline::DatePartial>,
    /// Per bucket, the summary written to scratch (several dates) instead of held.
    spilled: Vec<Option<std::path::PathBuf>>,
    quality: crate::quality::QualityReport,
    quarantine: Vec<polars::prelude::DataFrame>,
    side: std::sync::Arc<source::SideTables>,
    _scratch: Option<std::sync::Arc<crate::compact::ScratchDir>>,
}

/// The scan, split into customer buckets, computed bucket by bucket for every date: one pass
/// over the source whatever the number of dates. A failure that concerns every date (the source
/// cannot be read) is returned; a date's own failure is its entry.
#[allow(clippy::type_complexity)]
fn compute_dates(
    job: &Job,
    files: &[InputFile],
    dates: &[NaiveDate],
    start: Option<NaiveDate>,
    end: NaiveDate,
) -> Result<Vec<(NaiveDate, Result<Prepared, RunError>)>, RunError> {
    use polars::prelude::*;
    let clock = Instant::now();
    let scan = source::scan_files(job, files, start, end)?;
    let rows_read = source::count_rows(job, &scan.files);
    let n = crate::compact::bucket_count(rows_read);
    let scratch_root = job.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let read_error = |e: PolarsError| -> RunError {
        match source::diagnose_files(job, files) {
            Some(found) => found.into(),
            None => source::SourceError::Read {
                uri: scan.uri.clone(),
                source: e,
            }
            .into(),
        }
    };
    let split_error = |e: crate::compact::SplitError| -> RunError {
        match e {
            crate::compact::SplitError::Polars(p) => read_error(p),
            // Handled by the split itself (it starts again without the codes).
            e @ (crate::compact::SplitError::TooManyValues(_)
            | crate::compact::SplitError::LongValues(_)) => {
                read_error(PolarsError::ComputeError(e.to_string().into()))
            }
            crate::compact::SplitError::Scratch { dir, source } => storage::StorageError::Local {
                path: dir,
                op: "writing the customer buckets to scratch (choose another with --scratch DIR)",
                source,
            }
            .into(),
        }
    };
    type Parts = (Vec<pipeline::DatePartial>, Vec<Option<std::path::PathBuf>>);
    // The side tables (read, and the attributes sorted by id) load on their own thread while
    // the source is checked and split: the split leaves a core partly idle (measured at 50 M
    // rows: 1.2 s of side tables before a 4.5 s split).
    let (side, split) = std::thread::scope(|sc| {
        let side = sc.spawn(|| source::load_side_tables(job));
        // The buckets and each date's freshness, or every date's staleness error.
        let checked_split = || -> Result<Result<_, Vec<_>>, RunError> {
            let split = || {
                crate::compact::Buckets::split(scan.lf.clone(), n, &scratch_root, job.scratch_io)
                    .map_err(&split_error)
            };
            // Freshness before any per-date work (an as-of far past the data would otherwise
            // make every calendar period up to it). A source split into buckets gives its
            // days on the way (one read fewer: 0.4 s at 50 M rows); a small one is read for
            // them first.
            let (buckets, days) = match n > 1 {
                true => {
                    let buckets = split()?;
                    let days = buckets.days().unwrap_or_default().to_vec();
                    (Some(buckets), days)
                }
                false => (None, source::days_with_data(&scan).map_err(&read_error)?),
            };
            let per_date: Vec<Result<Parts, RunError>> = dates
                .iter()
                .map(|&d| {
                    crate::quality::check_fresh(&days, d, job.quality.max_staleness_days)
                        .map(|_| (Vec::new(), Vec::new()))
                        .map_err(RunError::from)
                })
                .collect();
            if per_date.iter().all(|p| p.is_err()) {
                return Ok(Err(dates
                    .iter()
                    .zip(per_date)
                    .filter_map(|(&d, p)| p.err().map(|e| (d, Err(e))))
                    .collect()));
            }
            let buckets = match buckets {
                Some(b) => b,
                None => split()?,
            };
            Ok(Ok((buckets, per_date)))
        };
        let split = checked_split();
        let side = side.join().expect("loading the side tables does not panic");
        (side, split)
    });
    let side = std::sync::Arc::new(side?);
    let (buckets, mut per_date) = match split? {
        Ok(split) => split,
        // Every date is stale: nothing to compute.
        Err(stale) => return Ok(stale),
    };
    tracing::debug!(
        buckets = n,
        rows_read,
        elapsed_s = clock.elapsed().as_secs_f64(),
        "source split into customer buckets"
    );
    // Several dates: park each bucket's summaries on scratch until the date is finished.
    let spill_dir = if dates.len() > 1 {
        let root = scratch_root.clone();
        crate::compact::ScratchDir::new(&root)
            .map(|d| Some(std::sync::Arc::new(d)))
            .map_err(|source| storage::StorageError::Local {
                path: root,
                op: "create a scratch directory in",
                source,
            })?
    } else {
        None
    };
    let mut quarantine: Vec<Vec<DataFrame>> = dates.iter().map(|_| Vec::new()).collect();
    let mut per_day: Option<DataFrame> = None;
    let mut flagged: Option<DataFrame> = None;
    // Bucket b + 1 is read and checked while bucket b's per-date parts are computed: each
    // step has one-thread stretches, and overlapping them keeps both cores busy (measured on
    // the 50 M-row workload: the bucket phase ran at three quarters of two cores).
    let load = |b: usize| -> Result<Option<(pipeline::Daily, f64)>, RunError> {
        let parts = crate::compact::parts_for(buckets.rows(b));
        let (mut daily, t) = if parts > 1 {
            // A few customers with very many rows made this bucket large: read it in parts.
            tracing::info!(
                bucket = b,
                rows = buckets.rows(b),
                parts,
                "bucket read in parts by customer and day (a customer id with very many rows: a guest or placeholder id?)"
            );
            let t = Instant::now();
            buckets.split_bucket(b, parts).map_err(&split_error)?;
            tracing::debug!(
                bucket = b,
                split_s = t.elapsed().as_secs_f64(),
                "bucket split in parts"
            );
            let daily = pipeline::bucket_daily_in_parts(
                job,
                parts,
                |j| {
                    // The part after the next pair is read from disk meanwhile.
                    buckets.prefetch_part(b, j + 2);
                    buckets.read_part(b, j)
                },
                &scan.mapped,
                dates,
            );
            buckets.release_parts(b, parts);
            let daily = daily.map_err(&read_error)?;
            if let Ok(Some((id, rows))) = pipeline::heaviest_customer(&daily.purchases) {
                tracing::warn!(
                    customer_id = %id,
                    rows,
                    "customer id {id:?} has {rows} rows in the window: a guest or placeholder id? It is one customer of every table; filter or map it away in the source if it is not one"
                );
            }
            (daily, t)
        } else {
            let t_read = Instant::now();
            let Some(rows) = buckets.read(b).map_err(&read_error)? else {
                return Ok(None);
            };
            tracing::debug!(
                bucket = b,
                read_s = t_read.elapsed().as_secs_f64(),
                "bucket read"
            );
            let t = Instant::now();
            let daily =
                pipeline::bucket_daily(job, rows, &scan.mapped, dates).map_err(&read_error)?;
            (daily, t)
        };
        // The rejected rows with their categories as strings (the bucket phase read codes).
        for q in daily.quarantine.values_mut() {
            *q = buckets.strings(std::mem::take(q)).map_err(&read_error)?;
        }
        buckets.release(b);
        Ok(Some((daily, t.elapsed().as_secs_f64())))
    };
    let mut absorb = |b: usize, daily: pipeline::Daily, daily_s: f64| -> Result<(), RunError> {
        let t_dates = Instant::now();
        for (acc, part) in [
            (&mut per_day, &daily.rows_per_day),
            (&mut flagged, &daily.flagged),
        ] {
            match acc {
                None => *acc = Some(part.clone()),
                Some(a) => {
                    a.vstack_mut(part)
                        .map_err(pipeline::compute("data quality"))?;
                }
            }
        }
        // The dates' partials in parallel (each spilled as soon as it is made): one date's
        // partial is mostly one-threaded, and with many dates they were the bucket phase's
        // longest stretch.
        let spill = |d: NaiveDate,
                     p: &mut pipeline::DatePartial|
         -> Result<Option<std::path::PathBuf>, RunError> {
            let Some(dir) = &spill_dir else {
                return Ok(None);
            };
            let path = dir.path().join(format!("{d}-{b}.parquet"));
            let bytes = parquet_pages::encode(&mut p.summary, parquet_pages::Encoding::SPILL)
                .map_err(pipeline::compute("spill summary"))?;
            // Past the page cache, as the buckets are (see `scratch_io`): buffered, the
            // kernel's copy into fresh cache pages was 12.5 % of the 10 M backfill's bucket
            // phase.
            crate::scratch_io::write(&path, &bytes, job.scratch_io).map_err(|source| {
                storage::StorageError::Local {
                    path: path.clone(),
                    op: "write",
                    source,
                }
            })?;
            p.summary = DataFrame::empty();
            Ok(Some(path))
        };
        let made: Vec<
            Option<Result<(pipeline::DatePartial, Option<std::path::PathBuf>), RunError>>,
        > = {
            use rayon::prelude::*;
            dates
                .par_iter()
                .enumerate()
                .map(|(k, &d)| {
                    if per_date[k].is_err() {
                        return Ok(None);
                    }
                    // A date whose partial fails fails alone; a spill that fails stops the run.
                    Ok(Some(match pipeline::date_partial(job, &daily, d) {
                        Ok(mut p) => {
                            let path = spill(d, &mut p)?;
                            Ok((p, path))
                        }
                        Err(e) => Err(e),
                    }))
                })
                .collect::<Result<_, RunError>>()?
        };
        for ((k, &d), made) in dates.iter().enumerate().zip(made) {
            if let Some(q) = daily.quarantine.get(&d) {
                quarantine[k].push(q.clone());
            }
            let Ok((parts, spilled)) = &mut per_date[k] else {
                continue;
            };
            match made {
                Some(Ok((p, path))) => {
                    parts.push(p);
                    spilled.push(path);
                }
                Some(Err(e)) => per_date[k] = Err(e),
                None => {}
            }
        }
        tracing::debug!(
            bucket = b,
            daily_s,
            dates_s = t_dates.elapsed().as_secs_f64(),
            elapsed_s = clock.elapsed().as_secs_f64(),
            "bucket done"
        );
        Ok(())
    };
    // Two buckets are read at a time (each read is partly one-threaded) on a thread of their
    // own, while the two before them are absorbed in order on this one; the reader hands each
    // pair over when the absorber is ready for it, so at most four buckets' compact tables are
    // held. (Measured on the 50 M-row workload: the bucket phase took 5.1 s this way, against
    // 6.1–6.7 s for the same steps as the two sides of a `rayon::join`; reading one bucket at
    // a time, or a pair ahead, was slower or held more.)
    const AT_ONCE: usize = 2;
    let n_buckets = buckets.len();
    let load_some = |from: usize| -> Vec<Result<Option<(pipeline::Daily, f64)>, RunError>> {
        use rayon::prelude::*;
        (from..(from + AT_ONCE).min(n_buckets))
            .into_par_iter()
            .map(load)
            .collect()
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(0);
    std::thread::scope(|scope| -> Result<(), RunError> {
        let load_some = &load_some;
        let buckets = &buckets;
        scope.spawn(move || {
            for from in (0..n_buckets).step_by(AT_ONCE) {
                // The next pair's files are read from disk meanwhile.
                for b in from + AT_ONCE..from + 2 * AT_ONCE {
                    buckets.prefetch(b);
                }
                // The absorber stopped (an error): read no further.
                if tx.send((from, load_some(from))).is_err() {
                    break;
                }
            }
        });
        for (from, loaded) in rx {
            for (i, loaded) in loaded.into_iter().enumerate() {
                if let Some((daily, daily_s)) = loaded? {
                    absorb(from + i, daily, daily_s)?;
                }
            }
        }
        Ok(())
    })?;
    let per_day = per_day.unwrap_or_default();
    let flagged = flagged.unwrap_or_default();
    let empty_files: Vec<String> = scan.empty_files.clone();
    let mut out = Vec::with_capacity(dates.len());
    for ((k, &d), entry) in dates.iter().enumerate().zip(per_date) {
        let prepared = entry.and_then(|(parts, spilled)| {
            let mut quality = pipeline::merge_quality(job, &per_day, &flagged, d)?;
            quality.rows_read = rows_read;
            quality.empty_files = empty_files.clone();
            Ok(Prepared {
                parts,
                spilled,
                quality,
                quarantine: std::mem::take(&mut quarantine[k]),
                side: side.clone(),
                _scratch: spill_dir.clone(),
            })
        });
        out.push((d, prepared));
    }
    Ok(out)
}

/// One date's tables, computed and not yet published.
struct Computed {
    tables: Vec<(Table, polars::prelude::DataFrame)>,
    page: Option<String>,
    rows_in: i64,
    degraded: Vec<String>,
    customers: usize,
    t0: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// Compute every table of one date (and draw its report).
fn compute_date(job: &Job, prepared: Prepared, as_of: NaiveDate) -> Result<Computed, RunError> {
    use polars::prelude::SerReader;
    let t0 = Instant::now();
    let started_at = chrono::Utc::now();
    let Prepared {
        mut parts,
        spilled,
        quality,
        quarantine,
        side,
        _scratch,
    } = prepared;
    quality.check_threshold(job.quality.max_rejected_share)?;
    if quality.rejected() > 0 {
        tracing::warn!(
            %as_of,
            rejected = quality.rejected(),
            rows_in_window = quality.rows_in_window,
            "rejected {} of {} rows in the window ({}); see the data_quality and quarantine tables",
            quality.rejected(),
            quality.rows_in_window,
            quality.rejected_text()
        );
    }
    for (p, path) in parts.iter_mut().zip(&spilled) {
        if let Some(path) = path {
            let bytes = crate::scratch_io::read(path, job.scratch_io).map_err(|source| {
                storage::StorageError::Local {
                    path: path.clone(),
                    op: "read",
                    source,
                }
            })?;
            p.summary = polars::prelude::ParquetReader::new(std::io::Cursor::new(&bytes[..]))
                .finish()
                .map_err(pipeline::compute("read spilled summary"))?;
            let _ = std::fs::remove_file(path);
        }
    }
    let quarantine = pipeline::merge_quarantine(job, quarantine)?;
    let pipeline::Finished {
        tables,
        rows_in,
        degraded,
    } = pipeline::finish(job, &side, parts, &quality, quarantine, as_of)?;
    let customers = tables
        .iter()
        .find(|(t, _)| *t == Table::CustomerFeatures)
        .map(|(_, df)| df.height())
        .unwrap_or(0);
    // The report is drawn from the frames about to be encoded, i.e. from the published
    // tables; before the encoding, so that its work never overlaps the encoded bytes.
    let mut degraded = degraded;
    let mut page = None;
    if job.writes(Table::Report) {
        let clock = Instant::now();
        match crate::report::render(&crate::report::ReportInput {
            job: &job.name,
            as_of,
            state: if degraded.is_empty() {
                crate::report::RunState::Succeeded
            } else {
                crate::report::RunState::Degraded(degraded.clone())
            },
            tables: &tables,
        }) {
            Ok(p) => {
                tracing::debug!(step = "report", elapsed_s = clock.elapsed().as_secs_f64(), %as_of, bytes = p.len(), "step done");
                page = Some(p);
            }
            // The tables are still published; the date is marked degraded.
            Err(e) => {
                tracing::warn!(%as_of, error = %e, "report not rendered");
                degraded.push(format!("report not rendered: {e}"));
            }
        }
    }
    Ok(Computed {
        tables,
        page,
        rows_in,
        degraded,
        customers,
        t0,
        started_at,
    })
}

/// Encode and publish one date's tables.
fn deliver_date(
    job: &Job,
    loc: &Location,
    computed: Computed,
    as_of: NaiveDate,
    run_id: &str,
    hash: &str,
    inputs: &[InputFile],
) -> Result<(DateOutcome, i64), RunError> {
    let Computed {
        tables,
        page,
        rows_in,
        degraded,
        customers,
        t0,
        started_at,
    } = computed;
    // Each frame is dropped once encoded: the peak holds one table twice, not all of them.
    let encode_t0 = std::time::Instant::now();
    let mut encoded = Vec::new();
    for (t, mut df) in tables {
        let data =
            parquet_pages::to_parquet(&mut df).map_err(pipeline::compute("parquet encoding"))?;
        encoded.push((t, df.height(), data));
    }
    if let Some(p) = page {
        encoded.push((Table::Report, 0, p.into_bytes().into()));
    }
    let mut parts = Vec::new();
    let mut metrics = Vec::new();
    for (t, rows, data) in encoded {
        let dir = commit::partition_dir(t.as_str(), as_of);
        let manifest = commit::Manifest {
            job: job.name.clone(),
            job_file: job.path.display().to_string(),
            job_hash: hash.to_string(),
            table: t.as_str().to_string(),
            as_of: as_of.to_string(),
            run_id: run_id.to_string(),
            rows,
            rows_in,
            files: vec![commit::ManifestFile {
                name: t.file_name().to_string(),
                bytes: data.len() as u64,
            }],
            input_files: inputs.to_vec(),
            custval_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: started_at.to_rfc3339(),
            duration_seconds: t0.elapsed().as_secs_f64(),
            data_e_tag: None,
        };
        metrics.push(pipeline::TableMetrics {
            table: t.as_str().to_string(),
            rows,
            bytes: data.len(),
            location: loc.display(&dir),
        });
        parts.push(commit::PartitionContent {
            table: t.as_str().to_string(),
            file: t.file_name(),
            data,
            manifest,
        });
    }
    let publish_t0 = std::time::Instant::now();
    commit::publish(loc, run_id, as_of, &parts)?;
    tracing::debug!(
        encode_s = (publish_t0 - encode_t0).as_secs_f64(),
        publish_s = publish_t0.elapsed().as_secs_f64(),
        "tables encoded and published"
    );
    for m in &metrics {
        tracing::info!(table = %m.table, rows = m.rows, bytes = m.bytes, partition = %m.location, run_id = %run_id, "table committed");
    }
    if !degraded.is_empty() {
        tracing::warn!(%as_of, reasons = %degraded.join("; "), "published, degraded");
    }
    tracing::info!(%as_of, tables = metrics.len(), "date published");
    Ok((
        DateOutcome {
            as_of,
            status: if degraded.is_empty() {
                RunStatus::Succeeded
            } else {
                RunStatus::Degraded
            },
            message: (!degraded.is_empty()).then(|| degraded.join("; ")),
            tables: metrics,
            customers,
            seconds: t0.elapsed().as_secs_f64(),
        },
        rows_in,
    ))
}

/// Run a job for its as-of date: compute every table, then publish them. Always recomputes
/// (a backfill skips up-to-date dates; a run does not).
pub fn run(job: &Job) -> Result<pipeline::RunReport, RunError> {
    tracing::info!(job = %job.name, as_of = %job.as_of, "run started");
    let mut report = run_dates(job, &[job.as_of], true)?;
    if let Some((_, e)) = report.errors.pop() {
        return Err(e);
    }
    let date = report.dates.pop().expect("one date");
    tracing::info!(job = %job.name, as_of = %job.as_of, run_id = %report.run_id, customers = date.customers, elapsed_s = report.seconds, "run finished");
    Ok(pipeline::RunReport {
        job: report.job,
        as_of: job.as_of.to_string(),
        run_id: report.run_id,
        customers: date.customers,
        input_files: report.input_files,
        tables: date.tables,
        seconds: report.seconds,
        status: date.status,
        message: date.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn period_ends_in_range() {
        assert_eq!(
            as_of_dates(d("2024-01-15"), d("2024-04-30"), Every::Month),
            [
                d("2024-01-31"),
                d("2024-02-29"),
                d("2024-03-31"),
                d("2024-04-30")
            ]
        );
        assert_eq!(
            as_of_dates(d("2024-01-01"), d("2024-12-30"), Every::Quarter),
            [d("2024-03-31"), d("2024-06-30"), d("2024-09-30")]
        );
        // ISO weeks end on Sunday: 2024-01-07 and 2024-01-14.
        assert_eq!(
            as_of_dates(d("2024-01-01"), d("2024-01-14"), Every::Week),
            [d("2024-01-07"), d("2024-01-14")]
        );
        assert_eq!(
            as_of_dates(d("2024-01-01"), d("2024-01-03"), Every::Day).len(),
            3
        );
        assert!(as_of_dates(d("2024-02-01"), d("2024-01-01"), Every::Month).is_empty());
    }
}
