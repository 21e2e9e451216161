//! The steps of one as-of date, in two halves that meet at the customer bucket seam:
//!
//! ```text
//!  per customer bucket (rows of one bucket of customers; see crate::compact):
//!    bucket_daily: row checks (quality::reason_expr) ──► daily purchases, categories,
//!                  per-day check counts, quarantined rows          (collected once per bucket)
//!    date_partial: per as-of date ──► customer summary + activity columns (summary, behaviour),
//!                  churn and cohort counts, retention counts, holdout inputs
//!  per as-of date, all buckets merged (memory grows with customers, not transactions):
//!    finish: summary sorted by customer ──► attributes ──► models (valuation) ──► behaviour
//!            scores ──► customer_features ──► segment_summary, value_matrix, churn_rates,
//!            cohort_retention, model_fit, model_diagnostics, data_quality, quarantine
//! ```
//! Pure: frames in, frames out. The runner ([`crate::backfill`]) reads the inputs, splits the
//! customers into buckets, and publishes what [`finish`] returns.

use crate::categories::CategoryDays;
use crate::features::behaviour;
use crate::features::churn::{self, ChurnOptions, ChurnRateRow, CohortRow, DailyColumns};
use crate::job::Job;
use crate::quality::{self, QualityError, QualityReport};
use crate::source::{self, InputFile, SideTables, SourceError};
use crate::summary;
use crate::summary::RetentionCounts;
use crate::tables;
use polars::prelude::*;

pub(crate) use crate::error::{compute, RunError};

/// What one table wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableMetrics {
    /// The table's name (e.g. `customer_features`).
    pub table: String,
    /// Rows written (0 for the HTML report).
    pub rows: usize,
    /// Bytes of the written file (Parquet, or HTML for the report).
    pub bytes: usize,
    /// The partition written: a local path or URI ending in `as_of=D`.
    pub location: String,
}

/// The result of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    /// The job's name.
    pub job: String,
    /// The as-of date computed, `YYYY-MM-DD`.
    pub as_of: String,
    /// The run's id ([`new_run_id`]).
    pub run_id: String,
    /// Customers in `customer_features` (0 when it is not written).
    pub customers: usize,
    /// The files read: the source's and the side tables'.
    pub input_files: Vec<InputFile>,
    /// What each published table wrote, in publication order.
    pub tables: Vec<TableMetrics>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    /// `succeeded` or `degraded`.
    pub status: crate::runs::RunStatus,
    /// Why degraded.
    pub message: Option<String>,
}

/// A new run id: UTC time plus random bits, unique per run.
pub(crate) fn new_run_id() -> String {
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
pub(crate) fn optional_columns(job: &Job) -> summary::Optional {
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

/// One customer bucket's compact tables: one row per (customer, purchase day), sorted by customer
/// and day, and, when categories are mapped, the distinct (customer, day, category) triples; plus
/// what the row checks found (see [`crate::quality`]).
#[derive(Debug, Clone)]
pub(crate) struct Daily {
    /// Accepted rows per (customer, day) ([`summary::daily_purchases`]).
    pub purchases: DataFrame,
    /// The categories bought per customer and day; `None` when no category column is mapped.
    pub categories: Option<DailyCategories>,
    /// Rows in the scanned window per day ([`quality::per_day`]).
    pub rows_per_day: DataFrame,
    /// Rows per (day, check), with an example ([`quality::flagged`]).
    pub flagged: DataFrame,
    /// The rejected rows of each as-of date's window, sorted, capped at
    /// `quality.max_quarantine_rows`.
    pub quarantine: std::collections::BTreeMap<chrono::NaiveDate, DataFrame>,
}

/// A bucket's categories per customer and day, for the `categories` count of each date.
#[derive(Debug, Clone)]
pub(crate) enum DailyCategories {
    /// Coded and sorted, counted per date in one pass: the usual case of 64-bit hash keys and
    /// string categories.
    Coded(CategoryDays),
    /// The distinct (customer, day, category) triples ([`summary::daily_categories`]), counted
    /// by polars ([`summary::category_counts`]): string keys (a hash collision) or categories
    /// that are not strings.
    Triples(DataFrame),
}

/// The rows of a window ending `as_of` (and rows without a day: null timestamps).
fn window_or_null(job: &Job, as_of: chrono::NaiveDate) -> Expr {
    let mut window = col("day").lt_eq(lit(source::epoch_day(as_of)));
    if let Some(s) = job.window_start_for(as_of) {
        window = window.and(col("day").gt_eq(lit(source::epoch_day(s))));
    }
    window.or(col("day").is_null())
}

/// Sort rejected rows into a stable order (reruns give the same quarantine) and cap them.
fn quarantine_rows(rows: LazyFrame, cap: IdxSize) -> LazyFrame {
    rows.sort(
        ["customer_id", "ts", "amount", "reason"],
        SortMultipleOptions::default()
            .with_nulls_last(true)
            .with_maintain_order(true),
    )
    .limit(cap)
}

/// Row numbers (IdxSize) of the rows equal to an earlier row in every one of `mapped` columns.
/// `mapped` begins with `customer_id` and `ts`, so such rows share a customer and a day: they
/// are neighbours in `sorted` ([`summary::key_day_order`] of a key that is equal for equal
/// ids). Within each (key, day) run of two rows or more, rows whose hash of the mapped columns
/// (but the customer id, which the run shares) repeats are the candidates; the exact
/// comparison ([`quality::duplicate_expr`]) then runs on those few rows only, so a hash collision never rejects a row. (Rows without a key or a day
/// are rejected before this check counts.)
fn duplicate_rows(
    rows: &DataFrame,
    mapped: &[String],
    sorted: &[(u64, u64)],
) -> PolarsResult<Series> {
    let row = |i: usize| (sorted[i].1 & 0xffff_ffff) as IdxSize;
    let same_run =
        |i: usize, j: usize| sorted[i].0 == sorted[j].0 && sorted[i].1 >> 32 == sorted[j].1 >> 32;
    // The rows of runs of two or more, run by run (`bounds`: where each run starts).
    // Reserved for every row at once (pages never written are never touched) rather than
    // grown and copied.
    let mut multi: Vec<IdxSize> = Vec::with_capacity(sorted.len());
    let mut bounds: Vec<usize> = Vec::with_capacity(sorted.len() / 2 + 1);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && same_run(i, j) {
            j += 1;
        }
        if j - i > 1 {
            bounds.push(multi.len());
            multi.extend((i..j).map(row));
        }
        i = j;
    }
    bounds.push(multi.len());
    let empty = || Series::new_empty("_row".into(), &IDX_DTYPE);
    if multi.is_empty() {
        return Ok(empty());
    }
    // The runs' hashes of the mapped columns but the customer id (a run shares it).
    let others: Vec<&str> = mapped
        .iter()
        .map(|c| c.as_str())
        .filter(|&c| c != "customer_id")
        .collect();
    let hashed = rows.select(others.iter().copied())?;
    // First the numeric columns alone (cheap to hash: the string columns' hashes of every row
    // were 2 % of a 50 M-row run): only rows whose numeric values repeat in their run can be
    // duplicates, and with amounts and timestamps mapped those are few.
    let numeric: Vec<Column> = hashed
        .columns()
        .iter()
        .filter(|c| !matches!(c.dtype(), DataType::String))
        .cloned()
        .collect();
    let (multi, bounds) = match numeric.len() < hashed.width() && !numeric.is_empty() {
        true => match column_hashes(&DataFrame::new(hashed.height(), numeric)?)? {
            Some(all) => {
                let h: Vec<u64> = multi.iter().map(|&r| all[r as usize]).collect();
                repeated_in_runs(&h, &bounds, &multi)
            }
            None => (multi, bounds),
        },
        false => (multi, bounds),
    };
    if multi.is_empty() {
        return Ok(empty());
    }
    // Then every column of the rows left (polars' column hashes of those rows; hashing the
    // rows as structs is the fallback, for other column types).
    let subset = hashed.take(&IdxCa::from_vec("_row".into(), multi.clone()))?;
    let hashes: Vec<u64> = match column_hashes(&subset)? {
        Some(h) => h,
        None => {
            let cols: Vec<Expr> = others.iter().map(|&c| col(c)).collect();
            let hashes = subset
                .lazy()
                .select([as_struct(cols)
                    .hash(0x5eed, 0xd0b1e, 0xc0ffee, 0xbeef)
                    .alias("_h")])
                .collect()?;
            hashes.column("_h")?.u64()?.into_no_null_iter().collect()
        }
    };
    let (mut candidates, _) = repeated_in_runs(&hashes, &bounds, &multi);
    if candidates.is_empty() {
        return Ok(empty());
    }
    // Source order: "earlier" is the row order.
    candidates.sort_unstable();
    let idx = IdxCa::from_vec("_row".into(), candidates);
    let mut subset = rows.select(mapped.iter().map(|c| c.as_str()))?.take(&idx)?;
    subset.with_column(idx.into_series().into_column())?;
    let dups = subset
        .lazy()
        .filter(quality::duplicate_expr(mapped))
        .select([col("_row")])
        .collect()?;
    Ok(dups.column("_row")?.as_materialized_series().clone())
}

/// The rows of `rows` (grouped in runs: run `k` is `bounds[k]..bounds[k + 1]`) whose hash in
/// `hashes` (by position) repeats within their run, grouped the same way: (rows, bounds).
fn repeated_in_runs(
    hashes: &[u64],
    bounds: &[usize],
    rows: &[IdxSize],
) -> (Vec<IdxSize>, Vec<usize>) {
    let mut kept: Vec<IdxSize> = Vec::new();
    let mut kept_bounds = vec![0];
    let mut seen: PlHashMap<u64, usize> = PlHashMap::new();
    for w in bounds.windows(2) {
        let run = &hashes[w[0]..w[1]];
        let run_rows = &rows[w[0]..w[1]];
        if run.len() <= 16 {
            // Small runs (nearly all): each hash compared with the others of the run.
            for (k, h) in run.iter().enumerate() {
                if run.iter().enumerate().any(|(j, o)| j != k && o == h) {
                    kept.push(run_rows[k]);
                }
            }
        } else {
            seen.clear();
            for &h in run {
                *seen.entry(h).or_default() += 1;
            }
            if seen.len() < run.len() {
                kept.extend(
                    run.iter()
                        .zip(run_rows)
                        .filter(|(h, _)| seen[*h] > 1)
                        .map(|(_, &r)| r),
                );
            }
        }
        if kept.len() > *kept_bounds.last().expect("starts with 0") {
            kept_bounds.push(kept.len());
        }
    }
    (kept, kept_bounds)
}

/// polars' hash of each row of `columns`, combined column by column, equal for rows whose
/// values are equal as [`quality::duplicate_expr`] compares them (floats by their total order,
/// so −0 = 0 and NaN = NaN; nulls alike); None when a column has a type not hashed here.
fn column_hashes(columns: &DataFrame) -> PolarsResult<Option<Vec<u64>>> {
    let state = PlSeedableRandomStateQuality::seed_from_u64(0x5eed_d0b1e);
    let mut hashes = vec![0u64; columns.height()];
    for c in columns.columns() {
        let s = c.as_materialized_series().to_physical_repr();
        let (h, state) = (&mut hashes, state.clone());
        match s.dtype() {
            DataType::String => s.str()?.vec_hash_combine(state, h)?,
            DataType::Float64 => s.f64()?.vec_hash_combine(state, h)?,
            DataType::Float32 => s.f32()?.vec_hash_combine(state, h)?,
            DataType::Int64 => s.i64()?.vec_hash_combine(state, h)?,
            DataType::Int32 => s.i32()?.vec_hash_combine(state, h)?,
            DataType::UInt64 => s.u64()?.vec_hash_combine(state, h)?,
            DataType::UInt32 => s.u32()?.vec_hash_combine(state, h)?,
            DataType::Boolean => s.bool()?.vec_hash_combine(state, h)?,
            _ => return Ok(None),
        }
    }
    Ok(Some(hashes))
}

/// The compact tables of one customer bucket: its scan rows (`rows`, from
/// [`source::scan_files`]) checked and aggregated in one pass. `mapped` names the columns a
/// duplicate repeats; `dates` are the as-of dates whose quarantine is kept.
pub(crate) fn bucket_daily(
    job: &Job,
    rows: DataFrame,
    mapped: &[String],
    dates: &[chrono::NaiveDate],
) -> PolarsResult<Daily> {
    match daily_keyed(
        job,
        summary::with_hash_key(rows.clone())?,
        mapped,
        dates,
        false,
    )? {
        Some(daily) => Ok(daily),
        None => {
            tracing::debug!("customer hash collision in a bucket: keyed by customer_id instead");
            let daily = daily_keyed(job, summary::with_id_key(rows)?, mapped, dates, false)?;
            Ok(daily.expect("an id key never collides"))
        }
    }
}

/// [`bucket_daily`] of a bucket read in `parts` parts by (customer, day)
/// ([`crate::compact::Buckets::split_bucket`]; `read(j)` reads part `j`): each part's compact
/// tables, one part in memory at a time, then merged. Every customer day is whole in one
/// part, so the daily table and the row checks are those of the whole bucket: the
/// tables are the same as [`bucket_daily`]'s of all the rows at once. With a hash collision
/// (in a part, or between customers of different parts) every part is keyed by id instead.
pub(crate) fn bucket_daily_in_parts(
    job: &Job,
    parts: usize,
    read: impl Fn(usize) -> PolarsResult<Option<DataFrame>> + Sync,
    mapped: &[String],
    dates: &[chrono::NaiveDate],
) -> PolarsResult<Daily> {
    use rayon::prelude::*;
    let by = |key: fn(DataFrame) -> PolarsResult<DataFrame>| -> PolarsResult<Option<Daily>> {
        let mut dailies = Vec::with_capacity(parts);
        // Two parts at a time (each part's checks have one-thread stretches), in part order.
        let all: Vec<usize> = (0..parts).collect();
        for pair in all.chunks(2) {
            let done: Vec<PolarsResult<Option<Option<Daily>>>> = pair
                .par_iter()
                .map(|&j| match read(j)? {
                    Some(rows) => daily_keyed(job, key(rows)?, mapped, dates, true).map(Some),
                    None => Ok(None),
                })
                .collect();
            for d in done {
                match d? {
                    Some(Some(d)) => dailies.push(d),
                    Some(None) => return Ok(None),
                    None => {}
                }
            }
        }
        merge_parts(job, dailies)
    };
    match by(summary::with_hash_key)? {
        Some(daily) => Ok(daily),
        None => {
            tracing::debug!("customer hash collision in a bucket: keyed by customer_id instead");
            Ok(by(summary::with_id_key)?.expect("an id key never collides"))
        }
    }
}

/// The customer with the most source rows in the daily table `purchases`, and those rows.
pub(crate) fn heaviest_customer(purchases: &DataFrame) -> PolarsResult<Option<(String, i64)>> {
    let top = purchases
        .clone()
        .lazy()
        .group_by([col("customer_id")])
        .agg([col("rows").sum().cast(DataType::Int64)])
        .sort(
            ["rows", "customer_id"],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .limit(1)
        .collect()?;
    let id = top.column("customer_id")?.str()?.get(0).map(str::to_string);
    let rows = top.column("rows")?.i64()?.get(0);
    Ok(id.zip(rows))
}

/// One bucket's compact tables from those of its parts ([`bucket_daily_in_parts`]); None when
/// two customers of different parts share a key.
fn merge_parts(job: &Job, parts: Vec<Daily>) -> PolarsResult<Option<Daily>> {
    let stack = |frames: Vec<DataFrame>| -> PolarsResult<DataFrame> {
        let mut frames = frames.into_iter();
        let mut all = frames.next().unwrap_or_default();
        for f in frames {
            all.vstack_mut_owned(f)?;
        }
        Ok(all)
    };
    let mut purchases = Vec::new();
    let mut categories = Vec::new();
    let (mut per_day, mut flagged) = (Vec::new(), Vec::new());
    let mut quarantine: std::collections::BTreeMap<chrono::NaiveDate, Vec<DataFrame>> =
        Default::default();
    for p in parts {
        purchases.push(p.purchases);
        categories.extend(p.categories);
        per_day.push(p.rows_per_day);
        flagged.push(p.flagged);
        for (d, q) in p.quarantine {
            quarantine.entry(d).or_default().push(q);
        }
    }
    // Sorted by customer and day, as one bucket's daily table is.
    let purchases = stack(purchases)?.sort(
        [summary::CUSTOMER_KEY, "day"],
        SortMultipleOptions::default(),
    )?;
    if keys_collide(&purchases)? {
        return Ok(None);
    }
    // Every part codes its categories the same way (the split's codes, or polars' triples).
    fn all_as<T>(
        parts: Vec<DailyCategories>,
        take: impl Fn(DailyCategories) -> Option<T>,
    ) -> PolarsResult<Vec<T>> {
        parts
            .into_iter()
            .map(|c| {
                take(c).ok_or_else(|| {
                    polars_err!(ComputeError: "the parts of a bucket coded their categories differently")
                })
            })
            .collect()
    }
    let categories = match categories.first() {
        None => None,
        Some(DailyCategories::Coded(_)) => {
            let coded = all_as(categories, |c| match c {
                DailyCategories::Coded(c) => Some(c),
                DailyCategories::Triples(_) => None,
            })?;
            Some(DailyCategories::Coded(CategoryDays::merge(coded).ok_or_else(
                || polars_err!(ComputeError: "a part of a bucket coded its categories as masks"),
            )?))
        }
        Some(DailyCategories::Triples(_)) => {
            let frames = all_as(categories, |c| match c {
                DailyCategories::Triples(t) => Some(t),
                DailyCategories::Coded(_) => None,
            })?;
            Some(DailyCategories::Triples(stack(frames)?))
        }
    };
    let cap = job.quality.max_quarantine_rows.min(IdxSize::MAX as u64) as IdxSize;
    let quarantine = quarantine
        .into_iter()
        .map(|(d, q)| Ok((d, quarantine_rows(stack(q)?.lazy(), cap).collect()?)))
        .collect::<PolarsResult<_>>()?;
    Ok(Some(Daily {
        purchases,
        categories,
        rows_per_day: stack(per_day)?,
        flagged: stack(flagged)?,
        quarantine,
    }))
}

/// Whether two neighbours of `purchases` (sorted by key) have the same key and different
/// customer ids.
fn keys_collide(purchases: &DataFrame) -> PolarsResult<bool> {
    let (key, id) = (
        purchases
            .column(summary::CUSTOMER_KEY)?
            .as_materialized_series(),
        purchases.column("customer_id")?.as_materialized_series(),
    );
    let n = purchases.height();
    if n < 2 {
        return Ok(false);
    }
    let same_key = key.slice(1, n - 1).equal_missing(&key.slice(0, n - 1))?;
    let same_id = id.slice(1, n - 1).equal_missing(&id.slice(0, n - 1))?;
    Ok((same_key & !same_id).any())
}

/// [`bucket_daily`] of rows with their [`summary::CUSTOMER_KEY`]; `None` when the key is a
/// hash under which two customers of these rows collide.
/// `parted`: the rows are a part of a bucket ([`bucket_daily_in_parts`]), whose categories
/// are then coded so that the parts merge ([`merge_parts`]).
fn daily_keyed(
    job: &Job,
    mut rows: DataFrame,
    mapped: &[String],
    dates: &[chrono::NaiveDate],
    parted: bool,
) -> PolarsResult<Option<Daily>> {
    // One chunk for the columns the daily table reads by row number (the bucket's files and
    // polars' engine give many chunks; polars' gathers across them go value by value, and
    // were 3 % of a 50 M-row run for the channels' alone). The category and timestamp columns
    // are read in order, chunk by chunk, and not copied.
    for name in [
        "customer_id",
        "order_id",
        "amount",
        "quantity",
        "region",
        "industry",
        "channel",
    ] {
        let Ok(c) = rows.column(name) else {
            continue;
        };
        if c.n_chunks() > 1 {
            let c = c.rechunk();
            rows.with_column(c)?;
        }
    }
    // The rows, for reading in place (the plans below take `rows`).
    let all = rows.clone();
    let opt = optional_columns(job);
    // Categories as strings, or as the split's codes ([`crate::compact::Buckets::read`]).
    let coded_categories = opt.category
        && rows.column(summary::CUSTOMER_KEY)?.dtype() == &DataType::UInt64
        && match rows.column("category")?.dtype() {
            DataType::UInt32 => true,
            // A part's categories as strings: polars' triples, which parts merge as frames.
            DataType::String => !parted,
            _ => false,
        };
    // Rows by (customer key, day): runs of one customer's day, for the duplicate check and
    // the daily table. A key that is not a hash (after a collision) sorts by a hash of the
    // id for the duplicate check only.
    let hashed = rows.column(summary::CUSTOMER_KEY)?.u64().ok().cloned();
    let day = rows.column("day")?.i32()?.clone();
    let sorted = match (&hashed, opt.order_id) {
        (Some(key), _) => Some(summary::key_day_order(key, &day)),
        (None, true) => {
            let key = rows
                .clone()
                .lazy()
                .select([col("customer_id").hash(0x5eed_c057, 0xd0b1e, 0xc0ffee, 0xbeef)])
                .collect()?;
            Some(summary::key_day_order(
                key.column("customer_id")?.u64()?,
                &day,
            ))
        }
        (None, false) => None,
    };
    let duplicate = match (opt.order_id, &sorted) {
        (true, Some(sorted)) => Some(duplicate_rows(&rows, mapped, sorted)?),
        _ => None,
    };
    let lf = rows
        .lazy()
        .with_row_index("_row", None)
        .with_column(quality::reason_expr(
            source::epoch_day(job.min_date),
            duplicate.map(|d| col("_row").is_in(lit(d).implode(false), false)),
        ))
        .drop(by_name(["_row"], true, false))
        .cache();
    // With a hash key, the used rows are read where they are, through their (key, day) order
    // (all rows' order, less the rejected rows); otherwise they are gathered for polars' plans.
    let reuse_order = hashed.is_some() && sorted.is_some();
    let used = lf.clone().filter(col("reason").eq(lit(0i32))).drop(by_name(
        ["ts", "reason", "future"],
        true,
        false,
    ));
    let mut plans = vec![
        quality::per_day(lf.clone()),
        quality::flagged(lf.clone(), opt.order_id)?,
    ];
    if !reuse_order {
        plans.push(used.clone());
    }
    if opt.category && !coded_categories {
        plans.push(summary::daily_categories(used));
    }
    let cap = job.quality.max_quarantine_rows.min(IdxSize::MAX as u64) as IdxSize;
    for &d in dates {
        let rejected = lf
            .clone()
            .filter(col("reason").neq(lit(0i32)).and(window_or_null(job, d)))
            .drop(by_name(
                ["day", "future", summary::CUSTOMER_KEY],
                true,
                false,
            ));
        plans.push(quarantine_rows(rejected, cap));
    }
    if reuse_order {
        plans.push(lf.clone().select([col("reason")]));
    }
    let opt_state = plans[0].get_current_optimizations();
    let frames = LazyFrame::collect_all_with_engine(
        plans.into_iter().map(|p| p.logical_plan).collect(),
        Engine::Auto,
        opt_state,
    )?;
    let mut frames = frames.into_iter();
    let mut next = || frames.next().expect("one frame per plan");
    let rows_per_day = next();
    let flagged = next();
    let used = (!reuse_order).then(&mut next);
    let triples = (opt.category && !coded_categories).then(&mut next);
    let quarantine = dates.iter().map(|&d| (d, next())).collect();
    let (purchases, categories) = match (used, sorted) {
        (None, Some(sorted)) => {
            let order = accepted(sorted, next().column("reason")?.i32()?);
            let categories = match (opt.category, coded_categories) {
                (false, _) => None,
                (true, false) => triples.map(DailyCategories::Triples),
                (true, true) if parted => Some(DailyCategories::Coded(CategoryDays::of_part(
                    all.column("category")?.u32()?,
                    &order,
                ))),
                (true, true) => Some(DailyCategories::Coded(CategoryDays::from_column(
                    all.column(summary::CUSTOMER_KEY)?.u64()?,
                    all.column("day")?.i32()?,
                    all.column("category")?.as_materialized_series(),
                    Some(&order),
                )?)),
            };
            (summary::daily_purchases_of(&all, opt, &order)?, categories)
        }
        (used, _) => {
            let used = used.expect("the used rows are gathered without a reused order");
            let categories = triples.map(DailyCategories::Triples);
            (summary::daily_purchases_in(used, opt, None)?, categories)
        }
    };
    let Some(purchases) = purchases else {
        return Ok(None);
    };
    Ok(Some(Daily {
        purchases,
        categories,
        rows_per_day,
        flagged,
        quarantine,
    }))
}

/// The rows of `sorted` ([`summary::key_day_order`] of all rows) that the checks accepted
/// (`reason` 0).
fn accepted(mut sorted: Vec<(u64, u64)>, reason: &Int32Chunked) -> Vec<(u64, u64)> {
    // Chunk by chunk over the values (polars' per-value iterator was 1 % of a 50 M run).
    let mut ok: Vec<bool> = Vec::with_capacity(reason.len());
    for arr in reason.downcast_iter() {
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => ok.extend(arr.values().iter().map(|&r| r == 0)),
            Some(valid) => ok.extend(
                arr.values()
                    .iter()
                    .zip(valid.iter())
                    .map(|(&r, v)| v && r == 0),
            ),
        }
    }
    if ok.iter().all(|&k| k) {
        return sorted;
    }
    sorted.retain(|&(_, dr)| ok[(dr & 0xffff_ffff) as usize]);
    sorted
}

/// The quarantine of `as_of` from every bucket's rejected rows: sorted, capped, with reasons.
pub(crate) fn merge_quarantine(
    job: &Job,
    parts: Vec<DataFrame>,
) -> Result<Option<DataFrame>, RunError> {
    if parts.is_empty() {
        return Ok(None);
    }
    let cap = job.quality.max_quarantine_rows.min(IdxSize::MAX as u64) as IdxSize;
    let lfs: Vec<LazyFrame> = parts.into_iter().map(|d| d.lazy()).collect();
    let all = concat(lfs, UnionArgs::default()).map_err(compute("quarantine"))?;
    let rows = quarantine_rows(all, cap)
        .collect()
        .map_err(compute("quarantine"))?;
    quality::quarantine_table(rows)
        .map(Some)
        .map_err(compute("quarantine"))
}

/// The data quality of the window ending `as_of`, from every bucket's per-day counts.
pub(crate) fn merge_quality(
    job: &Job,
    per_day: &DataFrame,
    flagged: &DataFrame,
    as_of: chrono::NaiveDate,
) -> Result<QualityReport, RunError> {
    let start = job.window_start_for(as_of).map(source::epoch_day);
    QualityReport::for_window(per_day, flagged, start, source::epoch_day(as_of))
        .map_err(compute("data quality"))
}

/// The customer summary of one bucket as of `as_of` from its daily tables, sorted by customer,
/// with `categories` when mapped (no attributes: they are joined after the merge).
pub(crate) fn bucket_summary(
    job: &Job,
    daily: &Daily,
    as_of: chrono::NaiveDate,
) -> Result<DataFrame, RunError> {
    let start = job.window_start_for(as_of).map(source::epoch_day);
    let mut df = summary::customer_summary_sorted(
        &daily.purchases,
        start,
        source::epoch_day(as_of),
        job.unit_days,
        optional_columns(job),
    )
    .map_err(compute("customer summary"))?;
    if let Some(DailyCategories::Triples(cats)) = &daily.categories {
        let counts = summary::category_counts(cats.clone().lazy(), start, source::epoch_day(as_of));
        df = df
            .lazy()
            .join(
                counts,
                [col(summary::CUSTOMER_KEY)],
                [col(summary::CUSTOMER_KEY)],
                // The summary's (key) order, which the activity columns rely on.
                left_in_order(),
            )
            .with_column(col("categories").fill_null(lit(0i64)))
            .collect()
            .map_err(compute("customer summary"))?;
    }
    if let Some(DailyCategories::Coded(cats)) = &daily.categories {
        let keys = df
            .column(summary::CUSTOMER_KEY)
            .and_then(|k| k.u64())
            .map_err(compute("categories"))?;
        let counts = cats.column(keys, start, source::epoch_day(as_of));
        df.with_column(counts).map_err(compute("categories"))?;
    }
    check_finite(&df)?;
    Ok(df)
}

/// What one bucket contributes to one as-of date. Every part is additive across buckets.
#[derive(Debug, Clone)]
pub(crate) struct DatePartial {
    /// Customer summary with the activity columns ([`behaviour::ACTIVITY_COLUMNS`]).
    pub summary: DataFrame,
    /// This bucket's churn-rate counts per period; empty when `churn_rates` is not written.
    pub churn: Vec<ChurnRateRow>,
    /// This bucket's cohort-triangle cells; empty when `cohort_retention` is not written.
    pub cohorts: Vec<CohortRow>,
    /// This bucket's annual-retention counts; zero without `[clv]`.
    pub retention: RetentionCounts,
    /// Calibration `frequency`, `recency`, `T` and holdout `actual` purchases per customer.
    pub holdout: Option<DataFrame>,
    /// Source rows used in the window.
    pub rows_in: i64,
}

fn window_filter(start_day: Option<i32>, as_of_day: i32) -> Expr {
    let mut keep = col("day").lt_eq(lit(as_of_day));
    if let Some(s) = start_day {
        keep = keep.and(col("day").gt_eq(lit(s)));
    }
    keep
}

fn wants(job: &Job, table: tables::Table) -> bool {
    job.writes(table)
}

/// One bucket's part of the tables as of `as_of`.
pub(crate) fn date_partial(
    job: &Job,
    daily: &Daily,
    as_of: chrono::NaiveDate,
) -> Result<DatePartial, RunError> {
    let mut summary = bucket_summary(job, daily, as_of)?;
    let as_of_day = source::epoch_day(as_of);
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
    let acts = behaviour::activity_columns(&summary, &slices, &job.behaviour, as_of_day, start_day)
        .map_err(compute("behaviour features"))?;
    summary
        .hstack_mut(&acts)
        .map_err(compute("behaviour features"))?;
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
    let churn = if wants(job, tables::Table::ChurnRates) {
        churn::churn_rates(&cols, &churn_opts)
    } else {
        Vec::new()
    };
    let cohorts = if wants(job, tables::Table::CohortRetention) {
        churn::cohort_retention(&cols, &churn_opts)
    } else {
        Vec::new()
    };
    let retention = match &job.clv {
        Some(_) => RetentionCounts::from_days(&slices.offsets, &slices.day, start_day, as_of_day),
        None => RetentionCounts::default(),
    };
    let holdout = match &job.clv {
        Some(s) if wants(job, tables::Table::ModelDiagnostics) => match s.holdout_days {
            Some(h) => Some(holdout_inputs(job, daily, as_of, h)?),
            None => None,
        },
        _ => None,
    };
    // The key ordered this bucket's customers; the merged tables are ordered by id.
    let summary = summary
        .drop(summary::CUSTOMER_KEY)
        .map_err(compute("customer summary"))?;
    Ok(DatePartial {
        summary,
        churn,
        cohorts,
        retention,
        holdout,
        rows_in,
    })
}

/// The calibration summary (as of `as_of` − holdout) and the purchase days each customer made
/// in the holdout, for one bucket.
fn holdout_inputs(
    job: &Job,
    daily: &Daily,
    as_of: chrono::NaiveDate,
    holdout_days: i64,
) -> Result<DataFrame, RunError> {
    let cal_end = as_of - chrono::Duration::days(holdout_days);
    let cal = bucket_summary(job, daily, cal_end)?;
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
        .group_by([col(summary::CUSTOMER_KEY)])
        .agg([len().cast(DataType::Float64).alias("actual")]);
    cal.lazy()
        .join(
            actual,
            [col(summary::CUSTOMER_KEY)],
            [col(summary::CUSTOMER_KEY)],
            // Calibration order, so that reruns fit the same rows in the same order.
            left_in_order(),
        )
        .select([
            col("customer_id"),
            col("frequency"),
            col("recency"),
            col("T"),
            col("actual").fill_null(lit(0.0)),
        ])
        .collect()
        .map_err(compute("holdout actuals"))
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

/// Stack the bucket frames into one, sorted by customer id (each bucket's rows come in the
/// order of its [`summary::CUSTOMER_KEY`]).
fn stack_sorted(parts: Vec<DataFrame>, step: &'static str) -> Result<DataFrame, RunError> {
    let mut it = parts.into_iter();
    let Some(mut df) = it.next() else {
        return Ok(DataFrame::empty());
    };
    for p in it {
        df.vstack_mut(&p).map_err(compute(step))?;
    }
    let ids = df.column("customer_id").map_err(compute(step))?;
    let order = match ids.str() {
        Ok(ids) => id_order(ids),
        // Not a string column: polars' own sort.
        Err(_) => {
            df = df
                .sort(["customer_id"], SortMultipleOptions::default())
                .map_err(compute(step))?;
            df.rechunk_mut();
            return Ok(df);
        }
    };
    let idx = IdxCa::from_vec("idx".into(), order);
    // One chunk per column before the gather: polars gathers strings across chunks value by
    // value, copying each.
    df.rechunk_mut_par();
    df = df.take(&idx).map_err(compute(step))?;
    df.rechunk_mut();
    Ok(df)
}

/// The row order that sorts `ids` as polars sorts strings (bytewise, nulls first), for ids
/// that are distinct: a parallel sort of (first 8 bytes as a big-endian integer, row) pairs,
/// comparing whole ids only when those bytes tie. About 3× faster than sorting the frame by
/// the string column on 1.8 M customers.
fn id_order(ids: &StringChunked) -> Vec<IdxSize> {
    use rayon::prelude::*;
    let values: Vec<Option<&str>> = ids.iter().collect();
    let prefix = |v: Option<&str>| -> (bool, u64) {
        match v {
            None => (false, 0),
            Some(s) => {
                let mut b = [0u8; 8];
                let n = s.len().min(8);
                b[..n].copy_from_slice(&s.as_bytes()[..n]);
                (true, u64::from_be_bytes(b))
            }
        }
    };
    let mut keys: Vec<((bool, u64), IdxSize)> = values
        .par_iter()
        .enumerate()
        .map(|(i, &v)| (prefix(v), i as IdxSize))
        .collect();
    keys.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            let (x, y) = (values[a.1 as usize], values[b.1 as usize]);
            x.map(str::as_bytes)
                .cmp(&y.map(str::as_bytes))
                .then(a.1.cmp(&b.1))
        })
    });
    keys.into_iter().map(|(_, i)| i).collect()
}

/// A left join that keeps the left frame's row order (polars does not promise it otherwise).
fn left_in_order() -> JoinArgs {
    JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    }
}

/// Left-join the attribute columns of the `[attributes]` table onto the summary.
fn join_attributes(side: &SideTables, summary: DataFrame) -> Result<DataFrame, RunError> {
    let Some(attrs) = &side.attributes else {
        return Ok(summary);
    };
    // Both tables sorted by id (the attributes once per run, by `source::load_side_tables`):
    // one merge walk instead of a hash join per date.
    if let Some(rows) = merge_rows(&summary, attrs) {
        let idx = IdxCa::from_iter_options("".into(), rows.into_iter());
        let mut out = summary;
        for c in attrs.columns() {
            if c.name() != "customer_id" {
                out.with_column(c.take(&idx).map_err(compute("attributes"))?)
                    .map_err(compute("attributes"))?;
            }
        }
        return Ok(out);
    }
    hash_join_attributes(summary, attrs).map_err(compute("attributes"))
}

/// polars' left join of the attributes onto the summary, in the summary's row order.
fn hash_join_attributes(summary: DataFrame, attrs: &DataFrame) -> PolarsResult<DataFrame> {
    summary
        .lazy()
        .join(
            attrs.clone().lazy(),
            [col("customer_id")],
            [col("customer_id")],
            // The summary is sorted by customer_id: keep its order instead of sorting again.
            left_in_order(),
        )
        .collect()
}

/// For each row of `summary`, the row of `attrs` with the same `customer_id`, by one walk over
/// both id columns; `None` unless both are strictly ascending (bytewise, as polars sorts
/// strings; the attributes may start with a null id), when polars joins instead.
fn merge_rows(summary: &DataFrame, attrs: &DataFrame) -> Option<Vec<Option<IdxSize>>> {
    let a = summary.column("customer_id").ok()?.str().ok()?;
    let b: Vec<Option<&str>> = attrs
        .column("customer_id")
        .ok()?
        .str()
        .ok()?
        .iter()
        .collect();
    let nulls = b.iter().take_while(|v| v.is_none()).count();
    let ascending = |w: &[Option<&str>]| matches!((w[0], w[1]), (Some(x), Some(y)) if x < y);
    if !b[nulls..].windows(2).all(ascending) {
        return None;
    }
    let mut out = Vec::with_capacity(a.len());
    let mut prev: Option<&str> = None;
    let mut j = nulls;
    for x in a.iter() {
        let x = x?;
        if prev.is_some_and(|p| p >= x) {
            return None;
        }
        prev = Some(x);
        while j < b.len() && b[j].is_some_and(|y| y < x) {
            j += 1;
        }
        out.push((j < b.len() && b[j] == Some(x)).then_some(j as IdxSize));
    }
    Some(out)
}

/// The satisfaction / interactions inputs aligned with the summary rows.
fn extra_inputs(
    side: &SideTables,
    summary: &DataFrame,
) -> Result<behaviour::ExtraInputs, RunError> {
    let ids = summary
        .select(["customer_id"])
        .map_err(compute("extra inputs"))?;
    let aligned = |per_customer: &DataFrame| -> Result<Vec<Option<f64>>, RunError> {
        let df = ids
            .clone()
            .lazy()
            .join(
                per_customer.clone().lazy(),
                [col("customer_id")],
                [col("customer_id")],
                // Aligned with the summary's rows: polars keeps the left order only when asked.
                left_in_order(),
            )
            .collect()
            .map_err(compute("extra inputs"))?;
        let v = df
            .column("value")
            .and_then(|c| c.cast(&DataType::Float64))
            .map_err(compute("extra inputs"))?;
        Ok(v.f64().map_err(compute("extra inputs"))?.iter().collect())
    };
    let mut extra = behaviour::ExtraInputs::default();
    if let Some(sat) = &side.satisfaction {
        extra.satisfaction = Some(aligned(sat)?);
    }
    if let Some(int) = &side.interactions {
        extra.interactions = Some(
            aligned(int)?
                .into_iter()
                .map(|v| v.unwrap_or(0.0))
                .collect(),
        );
    }
    Ok(extra)
}

/// The holdout check of one date: every candidate purchase model fitted on the calibration
/// window, its predictions of each calibration customer's repeat purchases in the holdout, and
/// what the customers did.
struct Holdout {
    holdout_days: i64,
    cal_end: chrono::NaiveDate,
    x: Vec<f64>,
    actual: Vec<f64>,
    predictions: Vec<(crate::models::ModelKind, Result<Vec<f64>, String>)>,
}

impl Holdout {
    fn evaluate(
        job: &Job,
        s: &crate::valuation::ClvSettings,
        parts: Vec<DataFrame>,
        as_of: chrono::NaiveDate,
        holdout_days: i64,
    ) -> Result<Holdout, RunError> {
        let cal_end = as_of - chrono::Duration::days(holdout_days);
        let joined = stack_sorted(parts, "holdout")?;
        let mut h = Holdout {
            holdout_days,
            cal_end,
            x: Vec::new(),
            actual: Vec::new(),
            predictions: Vec::new(),
        };
        if joined.height() == 0 {
            tracing::warn!(calibration_end = %cal_end, "no purchases before the holdout; model_diagnostics is empty");
            return Ok(h);
        }
        let get = |c: &str| crate::valuation::f64_column(&joined, c).map_err(compute("holdout"));
        let (tx, t) = (get("recency")?, get("T")?);
        h.x = get("frequency")?;
        h.actual = get("actual")?;
        h.predictions = crate::valuation::holdout_predictions(
            &s.model.candidates(),
            &h.x,
            &tx,
            &t,
            holdout_days as f64 / job.unit_days,
            s.penalizer_coef,
        );
        for (k, p) in &h.predictions {
            if let Err(e) = p {
                tracing::warn!(model = %k, error = %e, "calibration fit failed");
            }
        }
        Ok(h)
    }

    /// Overall MAE of each candidate that could be fitted on the calibration window.
    fn maes(&self) -> Vec<(crate::models::ModelKind, f64)> {
        self.predictions
            .iter()
            .filter_map(|(k, p)| {
                let p = p.as_ref().ok()?;
                Some((*k, crate::valuation::metrics("all", &self.actual, p).mae))
            })
            .collect()
    }

    /// `model_diagnostics` for the chosen model; empty (so the date counts as done, with the
    /// reason in the log) when that model has no holdout predictions.
    fn table(&self, chosen: Option<crate::models::ModelKind>) -> Result<DataFrame, RunError> {
        let pred = chosen.and_then(|k| {
            self.predictions
                .iter()
                .find(|(pk, _)| *pk == k)
                .and_then(|(_, p)| p.as_ref().ok())
        });
        let rows = match pred {
            Some(p) => crate::valuation::diagnostics(&self.x, &self.actual, p),
            None => Vec::new(),
        };
        tables::model_diagnostics::build(
            &rows,
            self.holdout_days,
            source::epoch_day(self.cal_end),
            chosen.map(|k| k.name()),
        )
        .map_err(compute("model_diagnostics"))
    }
}

/// The tables of one as-of date, ready to publish.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Each table of the job that applies, with its frame, in the job's table order (the report
    /// is drawn by the runner and not included).
    pub tables: Vec<(crate::tables::Table, DataFrame)>,
    /// Source rows used.
    pub rows_in: i64,
    /// Why the date's result is degraded (a model not fitted, rows rejected); empty when it is
    /// not.
    pub degraded: Vec<String>,
}

/// Compute all tables of `as_of` from every bucket's part (in bucket order), the side tables,
/// the date's data quality and quarantine.
pub(crate) fn finish(
    job: &Job,
    side: &SideTables,
    parts: Vec<DatePartial>,
    dq: &QualityReport,
    quarantine: Option<DataFrame>,
    as_of: chrono::NaiveDate,
) -> Result<Finished, RunError> {
    let clock = std::time::Instant::now();
    let step = |name: &str| {
        tracing::debug!(step = name, elapsed_s = clock.elapsed().as_secs_f64(), %as_of, "step done");
    };
    let rows_in: i64 = parts.iter().map(|p| p.rows_in).sum();
    let retention = parts
        .iter()
        .fold(RetentionCounts::default(), |a, p| a.merge(p.retention));
    let mut summaries = Vec::with_capacity(parts.len());
    let mut churn_parts = Vec::with_capacity(parts.len());
    let mut cohort_parts = Vec::with_capacity(parts.len());
    let mut holdout_parts = Vec::new();
    for p in parts {
        if p.summary.height() > 0 {
            summaries.push(p.summary);
        }
        churn_parts.push(p.churn);
        cohort_parts.push(p.cohorts);
        holdout_parts.extend(p.holdout.filter(|h| h.height() > 0));
    }
    let full = stack_sorted(summaries, "customer summary")?;
    if full.height() == 0 {
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
    let full = join_attributes(side, full)?;
    // Stable column order whatever the mapping (README, "Output tables").
    let order: Vec<&str> = summary::SUMMARY_ORDER
        .iter()
        .copied()
        .filter(|c| full.column(c).is_ok())
        .collect();
    let summary = full.select(order).map_err(compute("customer summary"))?;
    step("summary");
    let as_of_day = source::epoch_day(as_of);
    let holdout = match &job.clv {
        Some(s) => match s.holdout_days {
            Some(h) => Some(Holdout::evaluate(job, s, holdout_parts, as_of, h)?),
            None => None,
        },
        None => None,
    };
    let valuation = match &job.clv {
        Some(s) => Some(crate::valuation::value_customers(
            &summary,
            s,
            job.unit_days,
            retention.rate(as_of_day),
            &holdout.as_ref().map(Holdout::maes).unwrap_or_default(),
        )?),
        None => None,
    };
    let extra = extra_inputs(side, &summary)?;
    step("valuation");
    let behaviour_cols = behaviour::behaviour_columns(&full, &job.behaviour, &extra)
        .map_err(compute("behaviour features"))?;
    drop(full);
    let features = tables::customer_features::build(
        summary,
        tables::customer_features::FeatureSettings {
            segments: &job.segments,
            tiers: &job.tiers,
            matrix: &job.behaviour.matrix,
        },
        valuation.as_ref(),
        behaviour_cols,
    )
    .map_err(compute("customer_features"))?;
    step("features");
    let mut churn_parts = Some(churn_parts);
    let mut cohort_parts = Some(cohort_parts);
    let mut quarantine = quarantine;
    let mut out = Vec::new();
    for &t in &job.tables {
        use tables::Table;
        let df = match t {
            Table::CustomerFeatures => Some(features.clone()),
            Table::SegmentSummary => Some(
                tables::segment_summary::build(&features).map_err(compute("segment_summary"))?,
            ),
            Table::ModelFit => match &valuation {
                Some(v) => Some(
                    tables::model_fit::build(&v.fits, job.unit_days)
                        .map_err(compute("model_fit"))?,
                ),
                None => None,
            },
            Table::ChurnRates => Some(
                tables::churn_rates::build(&churn::merge_churn_rates(
                    churn_parts.take().unwrap_or_default(),
                ))
                .map_err(compute("churn_rates"))?,
            ),
            Table::CohortRetention => Some(
                tables::cohort_retention::build(&churn::merge_cohorts(
                    cohort_parts.take().unwrap_or_default(),
                ))
                .map_err(compute("cohort_retention"))?,
            ),
            Table::ValueMatrix => {
                Some(tables::value_matrix::build(&features).map_err(compute("value_matrix"))?)
            }
            Table::ModelDiagnostics => match &holdout {
                Some(h) => Some(
                    h.table(
                        valuation
                            .as_ref()
                            .and_then(|v| v.purchase.as_ref())
                            .map(|p| p.kind()),
                    )?,
                ),
                None => None,
            },
            Table::DataQuality => Some(dq.table().map_err(compute("data_quality"))?),
            Table::Quarantine => quarantine.take(),
            // Drawn by the runner from these tables, with the run's id and state.
            Table::Report => None,
        };
        step(t.as_str());
        match df {
            Some(df) => out.push((t, df)),
            None => tracing::debug!(table = %t, "not applicable to this job; skipped"),
        }
    }
    let mut degraded = Vec::new();
    if let Some(v) = &valuation {
        degraded.extend(v.degraded.iter().cloned());
    }
    if dq.rejected() > 0 {
        degraded.push(format!(
            "{} rows rejected ({})",
            dq.rejected(),
            dq.rejected_text()
        ));
    }
    Ok(Finished {
        tables: out,
        rows_in,
        degraded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_found_by_runs_equal_polars_over_all_rows() {
        // Runs of a few rows (compared pairwise), and of dozens (counted in a hash map).
        duplicates_equal_polars(false, 211);
        duplicates_equal_polars(false, 7);
    }

    #[test]
    fn duplicates_of_columns_hashed_as_structs_equal_polars() {
        // A decimal column: not among the types hashed column by column.
        duplicates_equal_polars(true, 211);
    }

    /// Checks [`duplicate_rows`] against polars' own duplicate test over all rows; `decimal`
    /// adds a decimal column to the mapped ones.
    fn duplicates_equal_polars(decimal: bool, customers: usize) {
        // Order lines: several rows of one customer's day, some repeated exactly (null order
        // ids equal each other, and so do NaN amounts, and −0 and +0), some differing only in
        // amount or order id; the same row under another customer or another time is not a
        // duplicate.
        let mut rows: Vec<(String, i64, f64, Option<String>)> = Vec::new();
        for i in 0..3000usize {
            let c = format!("c{}", i % customers);
            let ts = ((i / customers) % 5) as i64 * 86_400_000_000 + (i % 3) as i64;
            let amount = match i % 7 {
                6 => f64::NAN,
                k => k as f64,
            };
            let order = (i % 11 != 0).then(|| format!("o{}", i % 13));
            rows.push((c.clone(), ts, amount, order.clone()));
            if i % 5 == 0 {
                // The sign of a zero or a NaN flipped: still equal.
                let same = match amount == 0.0 || amount.is_nan() {
                    true => -amount,
                    false => amount,
                };
                rows.push((c.clone(), ts, same, order.clone()));
            }
            if i % 7 == 0 {
                rows.push((c.clone(), ts, amount + 1.0, order.clone()));
                rows.push((format!("{c}x"), ts, amount, order));
            }
        }
        let df = df!(
            "customer_id" => rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            "ts" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "amount" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "order_id" => rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>(),
        )
        .unwrap();
        let mut df = df
            .lazy()
            .with_column(
                (col("ts") / lit(86_400_000_000i64))
                    .cast(DataType::Int32)
                    .alias("day"),
            )
            .with_column(
                (col("ts") % lit(2i64))
                    .cast(DataType::Decimal(10, 2))
                    .alias("units"),
            )
            .collect()
            .unwrap();
        df = summary::with_hash_key(df).unwrap();
        let mut mapped: Vec<String> = ["customer_id", "ts", "amount", "order_id"]
            .map(String::from)
            .into();
        if decimal {
            mapped.push("units".into());
        }
        let sorted = summary::key_day_order(
            df.column(summary::CUSTOMER_KEY).unwrap().u64().unwrap(),
            df.column("day").unwrap().i32().unwrap(),
        );
        let got: Vec<IdxSize> = duplicate_rows(&df, &mapped, &sorted)
            .unwrap()
            .idx()
            .unwrap()
            .into_no_null_iter()
            .collect();
        let want: Vec<IdxSize> = df
            .clone()
            .lazy()
            .with_row_index("_row", None)
            .filter(quality::duplicate_expr(&mapped))
            .select([col("_row")])
            .collect()
            .unwrap()
            .column("_row")
            .unwrap()
            .idx()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert!(want.len() > 500, "{} duplicates", want.len());
        assert_eq!(got, want);
        assert!(column_hashes(&df.select(["units"]).unwrap())
            .unwrap()
            .is_none());
    }

    #[test]
    fn merged_attributes_equal_polars_left_join() {
        let summary = df!(
            "customer_id" => ["C1", "C10", "C2", "D", "Ä"],
            "x" => [1, 2, 3, 4, 5],
        )
        .unwrap();
        let attrs = df!(
            "customer_id" => [None, Some("A"), Some("C10"), Some("C2"), Some("Z"), Some("Ä")],
            "region" => [Some("n"), Some("a"), None, Some("c2"), Some("z"), Some("ae")],
        )
        .unwrap();
        let side = SideTables {
            attributes: Some(attrs.clone()),
            ..Default::default()
        };
        let merged = join_attributes(&side, summary.clone()).unwrap();
        let joined = hash_join_attributes(summary.clone(), &attrs).unwrap();
        assert!(merged.equals_missing(&joined), "{merged}\n{joined}");
        assert_eq!(
            merge_rows(&summary, &attrs).unwrap(),
            [None, Some(2), Some(3), None, Some(5)]
        );
        // Not sorted: no merge (polars joins).
        let unsorted = summary.slice(1, 4).vstack(&summary.slice(0, 1)).unwrap();
        assert!(merge_rows(&unsorted, &attrs).is_none());
        let joined = join_attributes(&side, unsorted.clone()).unwrap();
        assert_eq!(joined.height(), 5);
    }

    #[test]
    fn id_order_sorts_as_polars_sorts_strings() {
        // Shared 8-byte prefixes, shorter and longer ids, a NUL byte, non-ASCII, empty, a null.
        let ids = [
            Some("C0001234"),
            Some("C00012345"),
            Some("C0001234\0"),
            Some("C000123"),
            None,
            Some("Ä1"),
            Some("b"),
            Some(""),
            Some("C0001233zzzz"),
        ];
        let ca = StringChunked::from_iter_options("customer_id".into(), ids.iter().copied());
        let df = DataFrame::new_infer_height(vec![ca.clone().into_series().into_column()]).unwrap();
        let sorted = df
            .sort(["customer_id"], SortMultipleOptions::default())
            .unwrap();
        let want: Vec<Option<&str>> = sorted
            .column("customer_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        let got: Vec<Option<&str>> = id_order(&ca).iter().map(|&i| ids[i as usize]).collect();
        assert_eq!(got, want);
    }
}
