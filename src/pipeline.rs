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

use crate::features::behaviour;
use crate::features::churn::{self, ChurnOptions, DailyColumns};
use crate::job::Job;
use crate::quality::{self, QualityError, QualityReport};
use crate::source::{self, InputFile, SourceError};
use crate::storage::StorageError;
use crate::summary;
use crate::tables;
use polars::prelude::*;

/// A run failure, classified for exit codes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Job(#[from] crate::job::JobError),
    #[error(transparent)]
    Source(Box<SourceError>),
    #[error(transparent)]
    Storage(Box<StorageError>),
    #[error("{0}")]
    Usage(String),
    #[error("{} of {total} dates failed ({}); first failure: {first}", failed.len(), failed.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))]
    Partial {
        failed: Vec<chrono::NaiveDate>,
        total: usize,
        first: String,
    },
    #[error(transparent)]
    Quality(#[from] QualityError),
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

/// Wrap a polars error of a computation step (exit code 1).
pub(crate) fn compute(step: &'static str) -> impl FnOnce(PolarsError) -> RunError {
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

/// The compact tables every as-of date is computed from: one row per (customer, purchase day),
/// sorted by customer and day, and, when categories are mapped, the distinct (customer, day,
/// category) triples; plus what the row checks found (see [`crate::quality`]).
#[derive(Debug, Clone)]
pub struct Daily {
    pub purchases: DataFrame,
    pub categories: Option<DataFrame>,
    /// Rows in the scanned window per day ([`quality::per_day`]).
    pub rows_per_day: DataFrame,
    /// Rows per (day, check), with an example ([`quality::flagged`]).
    pub flagged: DataFrame,
    /// Rows in the source files; None when unknown.
    pub rows_read: Option<i64>,
    /// Zero-byte source files, skipped.
    pub empty_files: Vec<String>,
    /// The rejected rows of each as-of date's window, capped at `quality.max_quarantine_rows`.
    pub quarantine: std::collections::BTreeMap<chrono::NaiveDate, DataFrame>,
}

impl Daily {
    /// The data quality of the window ending `as_of`.
    pub fn quality(&self, job: &Job, as_of: chrono::NaiveDate) -> Result<QualityReport, RunError> {
        let start = job.window_start_for(as_of).map(source::epoch_day);
        let mut q = QualityReport::for_window(
            &self.rows_per_day,
            &self.flagged,
            start,
            source::epoch_day(as_of),
        )
        .map_err(compute("data quality"))?;
        q.rows_read = self.rows_read;
        q.empty_files = self.empty_files.clone();
        Ok(q)
    }
}

/// Scan the source `files` once and collect the daily tables of `[start, end]` (start None =
/// unbounded), the row checks' counts, and the quarantined rows of each of `dates`: what every
/// later step reads.
pub fn compute_daily(
    job: &Job,
    files: &[InputFile],
    start: Option<chrono::NaiveDate>,
    end: chrono::NaiveDate,
    dates: &[chrono::NaiveDate],
) -> Result<Daily, RunError> {
    let scan = source::scan_files(job, files, start, end)?;
    let opt = optional_columns(job);
    let uri = scan.uri.clone();
    let read = |e: PolarsError| -> RunError {
        match source::diagnose_files(job, files) {
            Some(found) => found.into(),
            None => SourceError::Read {
                uri: uri.clone(),
                source: e,
            }
            .into(),
        }
    };
    // Every frame below comes from one scan: the shared plan is cached and read once.
    let lf = scan.lf.cache();
    let used =
        lf.clone()
            .filter(col("reason").eq(lit(0i32)))
            .drop(by_name(["ts", "reason"], true, false));
    let mut plans = vec![
        summary::daily_purchases(used.clone(), opt),
        quality::per_day(lf.clone()),
        quality::flagged(lf.clone(), scan.future.clone(), scan.has_order_id)
            .map_err(compute("data quality"))?,
    ];
    if opt.category {
        plans.push(summary::daily_categories(used));
    }
    let cap = job.quality.max_quarantine_rows.min(u32::MAX as u64) as IdxSize;
    for &d in dates {
        let mut window = col("day").lt_eq(lit(source::epoch_day(d)));
        if let Some(s) = job.window_start_for(d) {
            window = window.and(col("day").gt_eq(lit(source::epoch_day(s))));
        }
        plans.push(
            lf.clone()
                .filter(
                    col("reason")
                        .neq(lit(0i32))
                        .and(window.or(col("day").is_null())),
                )
                .drop(by_name(["day"], true, false))
                .limit(cap),
        );
    }
    let opt_state = plans[0].get_current_optimizations();
    let frames = LazyFrame::collect_all_with_engine(
        plans.into_iter().map(|p| p.logical_plan).collect(),
        Engine::Auto,
        opt_state,
    )
    .map_err(&read)?;
    let mut frames = frames.into_iter();
    let mut next = || frames.next().expect("one frame per plan");
    let purchases = next();
    let rows_per_day = next();
    let flagged = next();
    let categories = opt.category.then(&mut next);
    let quarantine = dates.iter().map(|&d| (d, next())).collect();
    Ok(Daily {
        purchases,
        categories,
        rows_per_day,
        flagged,
        rows_read: rows_read(job, &scan.files),
        empty_files: scan.empty_files,
        quarantine,
    })
}

/// Rows in the source files, from their Parquet metadata (no data is decoded). None when it
/// cannot be read (the scan itself reports unreadable files).
fn rows_read(job: &Job, files: &[InputFile]) -> Option<i64> {
    let uri = job.source.uri.get_ref();
    let refs: Vec<&InputFile> = files.iter().collect();
    let lf = source::open_files(job, uri, &refs).ok()?;
    let df = lf
        .select([len().cast(DataType::Int64).alias("n")])
        .collect()
        .ok()?;
    df.column("n").ok()?.i64().ok()?.get(0)
}

/// The customer summary as of `as_of` from the daily tables.
pub fn summary_as_of(
    job: &Job,
    daily: &Daily,
    as_of: chrono::NaiveDate,
) -> Result<DataFrame, RunError> {
    let start = job.window_start_for(as_of).map(source::epoch_day);
    let mut lf = summary::customer_summary(
        daily.purchases.clone().lazy(),
        start,
        source::epoch_day(as_of),
        job.unit_days,
        optional_columns(job),
    );
    if let Some(cats) = &daily.categories {
        let counts = summary::category_counts(cats.clone().lazy(), start, source::epoch_day(as_of));
        lf = lf
            .join(
                counts,
                [col("customer_id")],
                [col("customer_id")],
                JoinArgs::new(JoinType::Left),
            )
            .with_column(col("categories").fill_null(lit(0i64)))
            .sort(["customer_id"], SortMultipleOptions::default());
    }
    let df = lf.collect().map_err(compute("customer summary"))?;
    let df = match &job.attributes {
        Some(a) => join_attributes(a, df)?,
        None => df,
    };
    // Stable column order whatever the mapping (README, "Output tables").
    let order: Vec<&str> = summary::SUMMARY_ORDER
        .iter()
        .copied()
        .filter(|c| df.column(c).is_ok())
        .collect();
    let df = df.select(order).map_err(compute("customer summary"))?;
    check_finite(&df)?;
    if df.height() == 0 {
        let window = match job.window_start_for(as_of) {
            Some(s) => format!("{s}..={as_of}"),
            None => format!("..={as_of}"),
        };
        return Err(SourceError::EmptyWindow {
            uri: job.source.uri.get_ref().clone(),
            window,
        }
        .into());
    }
    Ok(df)
}

/// Every input amount is finite (the row checks reject the others), so a non-finite sum is an
/// overflow: a data error naming the customer, not an `inf` that spreads into every share.
fn check_finite(summary: &DataFrame) -> Result<(), RunError> {
    for column in [
        "total_amount",
        "amount_last_365d",
        "mean_amount",
        "monetary",
    ] {
        let Ok(c) = summary.column(column) else {
            continue;
        };
        let values = c.f64().map_err(compute("customer summary"))?;
        if let Some(i) = values
            .iter()
            .position(|v| v.is_some_and(|v| !v.is_finite()))
        {
            let customer = summary
                .column("customer_id")
                .and_then(|c| c.get(i))
                .map(|v| v.str_value().to_string())
                .unwrap_or_default();
            return Err(QualityError::Overflow {
                customer,
                column: column.to_string(),
                value: values.get(i).unwrap_or(f64::NAN),
            }
            .into());
        }
    }
    Ok(())
}

/// Check that the `[attributes]`, satisfaction and interactions tables have their mapped
/// columns (for `validate`; `run` checks them when it reads them).
pub fn check_side_tables(job: &Job) -> Result<(), RunError> {
    let check = |uri: &str,
                 storage: &crate::job::StorageOptions,
                 cols: Vec<(String, &str)>|
     -> Result<(), RunError> {
        let mut lf = source::open_parquet(uri, storage, true)?;
        let schema = lf.collect_schema().map_err(|e| SourceError::Read {
            uri: uri.to_string(),
            source: e,
        })?;
        for (key, c) in cols {
            source::require_column(uri, &schema, &key, c)?;
        }
        Ok(())
    };
    if let Some(a) = &job.attributes {
        let mut cols = vec![("attributes.customer_id".to_string(), a.customer_id.as_str())];
        for (k, c) in [
            ("region", &a.region),
            ("industry", &a.industry),
            ("channel", &a.channel),
        ] {
            if let Some(c) = c {
                cols.push((format!("attributes.{k}"), c.as_str()));
            }
        }
        check(a.uri.get_ref(), &a.storage, cols)?;
    }
    let r = &job.behaviour.relationship;
    for x in [&r.satisfaction, &r.interactions].into_iter().flatten() {
        let mut cols = vec![(
            format!("relationship.{}.customer_id", x.name()),
            x.customer_id.as_str(),
        )];
        if let Some(c) = &x.column {
            cols.push(("relationship.satisfaction.column".to_string(), c.as_str()));
        }
        check(&x.uri, &x.storage, cols)?;
    }
    Ok(())
}

/// Left-join the attribute columns of the `[attributes]` table onto the summary. A customer
/// listed several times gets its last row's values.
fn join_attributes(
    a: &crate::job::AttributesFile,
    summary: DataFrame,
) -> Result<DataFrame, RunError> {
    let uri = a.uri.get_ref();
    let lf = source::open_parquet(uri, &a.storage, true)?;
    let schema = lf.clone().collect_schema().map_err(|e| SourceError::Read {
        uri: uri.clone(),
        source: e,
    })?;
    source::require_column(uri, &schema, "attributes.customer_id", &a.customer_id)?;
    // (the attribute columns are checked below, by key)
    let mut select = vec![col(a.customer_id.as_str())
        .cast(DataType::String)
        .alias("customer_id")];
    let mut names = Vec::new();
    for (name, column) in [
        ("region", &a.region),
        ("industry", &a.industry),
        ("channel", &a.channel),
    ] {
        if let Some(c) = column {
            source::require_column(uri, &schema, &format!("attributes.{name}"), c)?;
            select.push(col(c.as_str()).cast(DataType::String).alias(name));
            names.push(col(name).last());
        }
    }
    let attrs = lf.select(select).group_by([col("customer_id")]).agg(names);
    summary
        .lazy()
        .join(
            attrs,
            [col("customer_id")],
            [col("customer_id")],
            JoinArgs::new(JoinType::Left),
        )
        .sort(["customer_id"], SortMultipleOptions::default())
        .collect()
        .map_err(|e| {
            SourceError::Read {
                uri: uri.clone(),
                source: e,
            }
            .into()
        })
}

/// Holdout diagnostics: fit on the calibration window, compare with the holdout. When no
/// comparison is possible the table is written empty (so the date counts as done), with the
/// reason in the log.
fn empty_diagnostics(
    holdout_days: i64,
    cal_end: chrono::NaiveDate,
) -> Result<Option<DataFrame>, RunError> {
    tables::model_diagnostics::build(&[], holdout_days, source::epoch_day(cal_end))
        .map(Some)
        .map_err(compute("model_diagnostics"))
}

fn holdout_table(
    job: &Job,
    daily: &Daily,
    as_of: chrono::NaiveDate,
    holdout_days: i64,
    penalizer: f64,
) -> Result<Option<DataFrame>, RunError> {
    let cal_end = as_of - chrono::Duration::days(holdout_days);
    let cal = match summary_as_of(job, daily, cal_end) {
        Ok(c) => c,
        Err(RunError::Source(e)) if matches!(*e, SourceError::EmptyWindow { .. }) => {
            tracing::warn!(calibration_end = %cal_end, "no purchases before the holdout; model_diagnostics is empty");
            return empty_diagnostics(holdout_days, cal_end);
        }
        Err(e) => return Err(e),
    };
    let (cal_end_day, as_of_day) = (source::epoch_day(cal_end), source::epoch_day(as_of));
    let actual = daily
        .purchases
        .clone()
        .lazy()
        .filter(
            col("day")
                .gt(lit(cal_end_day))
                .and(col("day").lt_eq(lit(as_of_day))),
        )
        .group_by([col("customer_id")])
        .agg([len().cast(DataType::Float64).alias("actual")]);
    let joined = cal
        .clone()
        .lazy()
        .join(
            actual,
            [col("customer_id")],
            [col("customer_id")],
            JoinArgs::new(JoinType::Left),
        )
        .select([
            col("frequency"),
            col("recency"),
            col("T"),
            col("actual").fill_null(lit(0.0)),
        ])
        .collect()
        .map_err(compute("holdout actuals"))?;
    let get = |c: &str| crate::valuation::f64_column(&joined, c).map_err(compute("holdout"));
    let (x, tx, t, act) = (
        get("frequency")?,
        get("recency")?,
        get("T")?,
        get("actual")?,
    );
    let opts = crate::models::FitOptions::default().with_penalizer_coef(penalizer);
    let fit = match crate::models::fit_bgnbd(&x, &tx, &t, &opts) {
        Ok(f) if f.converged => f,
        Ok(f) => {
            tracing::warn!(message = %f.message, "calibration fit did not converge; model_diagnostics is empty");
            return empty_diagnostics(holdout_days, cal_end);
        }
        Err(e) => {
            tracing::warn!(error = %e, "calibration fit failed; model_diagnostics is empty");
            return empty_diagnostics(holdout_days, cal_end);
        }
    };
    let pred = crate::models::batch_expected_purchases(
        &fit.params,
        holdout_days as f64,
        job.unit_days,
        &x,
        &tx,
        &t,
    )
    .map_err(|e| compute("holdout prediction")(PolarsError::ComputeError(e.to_string().into())))?;
    let rows = crate::valuation::diagnostics(&x, &act, &pred);
    tables::model_diagnostics::build(&rows, holdout_days, cal_end_day)
        .map(Some)
        .map_err(compute("model_diagnostics"))
}

fn window_filter(start_day: Option<i32>, as_of_day: i32) -> Expr {
    let mut keep = col("day").lt_eq(lit(as_of_day));
    if let Some(s) = start_day {
        keep = keep.and(col("day").gt_eq(lit(s)));
    }
    keep
}

/// Read the optional satisfaction / interactions tables, aligned with the summary rows.
fn extra_inputs(job: &Job, summary: &DataFrame) -> Result<behaviour::ExtraInputs, RunError> {
    let r = &job.behaviour.relationship;
    let ids = summary
        .select(["customer_id"])
        .map_err(compute("extra inputs"))?;
    let fetch =
        |x: &crate::job::ExtraInputFile, value: Expr| -> Result<Vec<Option<f64>>, RunError> {
            let lf = source::open_parquet(&x.uri, &x.storage, true)?;
            let schema = lf.clone().collect_schema().map_err(|e| SourceError::Read {
                uri: x.uri.clone(),
                source: e,
            })?;
            source::require_column(
                &x.uri,
                &schema,
                &format!("relationship.{}.customer_id", x.name()),
                &x.customer_id,
            )?;
            if let Some(c) = &x.column {
                source::require_column(&x.uri, &schema, "relationship.satisfaction.column", c)?;
            }
            let per_customer = lf
                .select([
                    col(x.customer_id.as_str())
                        .cast(DataType::String)
                        .alias("customer_id"),
                    value.alias("value"),
                ])
                .group_by([col("customer_id")])
                .agg([col("value").mean().alias("value"), len().alias("n")]);
            let df = ids
                .clone()
                .lazy()
                .join(
                    per_customer,
                    [col("customer_id")],
                    [col("customer_id")],
                    JoinArgs::new(JoinType::Left),
                )
                .collect()
                .map_err(|e| SourceError::Read {
                    uri: x.uri.clone(),
                    source: e,
                })?;
            // Satisfaction: the mean answer; interactions: the number of rows.
            let v = df
                .column(if x.column.is_some() { "value" } else { "n" })
                .and_then(|c| c.cast(&DataType::Float64))
                .map_err(compute("extra inputs"))?;
            let v = v.f64().map_err(compute("extra inputs"))?;
            Ok(v.iter().collect())
        };
    let mut extra = behaviour::ExtraInputs::default();
    if let Some(sat) = &r.satisfaction {
        let c = sat.column.as_deref().unwrap_or_default();
        let scaled = (col(c).cast(DataType::Float64) - lit(sat.min)) / lit(sat.max - sat.min);
        extra.satisfaction = Some(
            fetch(sat, scaled)?
                .into_iter()
                .map(|v| v.map(|v| v.clamp(0.0, 1.0)))
                .collect(),
        );
    }
    if let Some(int) = &r.interactions {
        let counts = fetch(int, lit(1.0))?;
        extra.interactions = Some(counts.into_iter().map(|v| v.unwrap_or(0.0)).collect());
    }
    Ok(extra)
}

/// Compute all tables of a job as of `as_of` from daily purchases (no I/O).
/// Also returns the number of source rows in the date's window.
pub fn compute_tables(
    job: &Job,
    daily: &Daily,
    as_of: chrono::NaiveDate,
) -> Result<(Vec<(String, DataFrame)>, i64), RunError> {
    let clock = std::time::Instant::now();
    let step = |name: &str| {
        tracing::debug!(step = name, elapsed_s = clock.elapsed().as_secs_f64(), %as_of, "step done");
    };
    let dq = daily.quality(job, as_of)?;
    dq.check_threshold(job.quality.max_rejected_share)?;
    if dq.rejected() > 0 {
        tracing::warn!(
            %as_of,
            rejected = dq.rejected(),
            rows_in_window = dq.rows_in_window,
            "rejected {} of {} rows in the window ({}); see the data_quality and quarantine tables",
            dq.rejected(),
            dq.rows_in_window,
            dq.rejected_text()
        );
    }
    let summary = summary_as_of(job, daily, as_of)?;
    step("summary");
    let as_of_day = source::epoch_day(as_of);
    let valuation = match &job.clv {
        Some(s) => {
            let retention = summary::annual_retention(
                daily.purchases.clone().lazy(),
                job.window_start_for(as_of).map(source::epoch_day),
                as_of_day,
            )
            .map_err(compute("annual retention"))?;
            Some(
                crate::valuation::value_customers(&summary, s, job.unit_days, retention)
                    .map_err(compute("valuation"))?,
            )
        }
        None => None,
    };
    let start_day = job.window_start_for(as_of).map(source::epoch_day);
    let window_daily = daily
        .purchases
        .clone()
        .lazy()
        .filter(window_filter(start_day, as_of_day))
        .select([col("day"), col("amount"), col("rows")])
        .collect()
        .map_err(compute("daily window"))?;
    let slices =
        behaviour::daily_slices(&window_daily, &summary).map_err(compute("daily slices"))?;
    let rows_in = window_daily
        .column("rows")
        .and_then(|c| c.i64().map(|c| c.sum().unwrap_or(0)))
        .map_err(compute("rows in"))?;
    let extra = extra_inputs(job, &summary)?;
    step("valuation");
    let behaviour_cols = behaviour::behaviour_columns(
        &summary,
        &slices,
        &job.behaviour,
        as_of_day,
        start_day,
        &extra,
    )
    .map_err(compute("behaviour features"))?;
    let features =
        tables::customer_features::build(summary, job, valuation.as_ref(), behaviour_cols)
            .map_err(compute("customer_features"))?;
    let churn_opts = ChurnOptions {
        period: job.behaviour.period(),
        window_start: start_day,
        as_of: as_of_day,
        inactivity_days: job.behaviour.churn.inactivity_days,
    };
    let cols = DailyColumns {
        customer: &slices.customer,
        day: &slices.day,
        amount: &slices.amount,
    };
    step("features");
    let mut out = Vec::new();
    for t in &job.tables {
        let df = match t.as_str() {
            "customer_features" => Some(features.clone()),
            "segment_summary" => Some(
                tables::segment_summary::build(&features).map_err(compute("segment_summary"))?,
            ),
            "model_fit" => match &valuation {
                Some(v) => Some(
                    tables::model_fit::build(&v.fits, job.unit_days)
                        .map_err(compute("model_fit"))?,
                ),
                None => None,
            },
            "churn_rates" => Some(
                tables::churn_rates::build(&churn::churn_rates(&cols, &churn_opts))
                    .map_err(compute("churn_rates"))?,
            ),
            "cohort_retention" => Some(
                tables::cohort_retention::build(&churn::cohort_retention(&cols, &churn_opts))
                    .map_err(compute("cohort_retention"))?,
            ),
            "value_matrix" => {
                Some(tables::value_matrix::build(&features).map_err(compute("value_matrix"))?)
            }
            "model_diagnostics" => match &job.clv {
                Some(s) => match s.holdout_days {
                    Some(h) => holdout_table(job, daily, as_of, h, s.penalizer_coef)?,
                    None => None,
                },
                None => None,
            },
            "data_quality" => Some(dq.table().map_err(compute("data_quality"))?),
            "quarantine" => match daily.quarantine.get(&as_of) {
                Some(rows) => {
                    Some(quality::quarantine_table(rows.clone()).map_err(compute("quarantine"))?)
                }
                None => None,
            },
            other => unreachable!("job validation admits only known tables, got {other}"),
        };
        step(t);
        match df {
            Some(df) => out.push((t.clone(), df)),
            None => tracing::debug!(table = %t, "not applicable to this job; skipped"),
        }
    }
    Ok((out, rows_in))
}

/// Encode a frame as Parquet (zstd, statistics on).
pub fn to_parquet(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)?;
    Ok(buf)
}

/// Run a job for its as-of date: compute every table, then publish them. Always recomputes
/// (a backfill skips up-to-date dates; a run does not).
pub fn run(job: &Job) -> Result<RunReport, RunError> {
    tracing::info!(job = %job.name, as_of = %job.as_of, "run started");
    let mut report = crate::backfill::run_dates(job, &[job.as_of], true)?;
    if let Some((_, e)) = report.errors.pop() {
        return Err(e);
    }
    let date = report.dates.pop().expect("one date");
    tracing::info!(job = %job.name, as_of = %job.as_of, run_id = %report.run_id, customers = date.customers, elapsed_s = report.seconds, "run finished");
    Ok(RunReport {
        job: report.job,
        as_of: job.as_of.to_string(),
        run_id: report.run_id,
        customers: date.customers,
        input_files: report.input_files,
        tables: date.tables,
        seconds: report.seconds,
    })
}
