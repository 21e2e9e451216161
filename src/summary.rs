//! Transactions → daily purchases → customer summary (one row per customer as of the as-of date).
//!
//! Two steps. [`daily_purchases`] groups the raw rows by (customer, day): it is the only step that
//! sees raw rows, and its result is small (one row per customer and purchase day) and collected
//! once per run, or once per backfill for many as-of dates. [`customer_summary`] then derives the
//! summary as of any date from that compact table. Everything after reads the summary or the daily
//! table, never raw rows again.
//!
//! `orders` with an order id counts distinct order ids per day, summed over days (an order is
//! assumed to fall on one day).
//!
//! Definitions (the BTYD ones are exactly those of lifetimes'
//! `summary_data_from_transaction_data(..., freq='D')`):
//! - a *purchase day* is a calendar day with at least one transaction of the customer; all
//!   transactions of one customer on one day are one BTYD transaction with their amounts summed;
//! - `frequency` = purchase days − 1 (repeat purchase days);
//! - `recency` = (last purchase day − first purchase day) in time units (BTYD meaning; the RFM
//!   "days since last purchase" is `days_since_last`);
//! - `T` = (as-of day − first purchase day) in time units: purchases on the as-of day count;
//! - `monetary` = mean amount of the repeat purchase days (the first day is excluded), 0 when
//!   `frequency` is 0;
//! - the time unit is 1 day or 7 days (`time_unit = "week"`: fractional weeks = days / 7, as in the
//!   published CDNOW analyses; not lifetimes' calendar-week bucketing `freq='W'`).
//!
//! All figures cover the job's window: with `lookback_days`, "first purchase" is the first one in
//! the window.

use crate::run_aggs;
use polars::prelude::*;
use polars_arrow::array::Array;
use rayon::prelude::*;

/// Which optional canonical columns the transactions carry.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Optional {
    /// An `order_id` column (`columns.order_id`): `orders` counts distinct ids per day.
    pub order_id: bool,
    /// A `quantity` column (`columns.quantity`), summed.
    pub quantity: bool,
    /// A `category` column (`columns.category`): `categories` counts distinct values.
    pub category: bool,
    /// A `region` column (`columns.region`): the last value of the day is kept.
    pub region: bool,
    /// An `industry` column (`columns.industry`): the last value of the day is kept.
    pub industry: bool,
    /// A `channel` column (`columns.channel`): the last value of the day is kept.
    pub channel: bool,
}

impl Optional {
    /// The attribute columns mapped (region, industry, channel), in output order: each
    /// customer keeps the last non-null value.
    pub(crate) fn attributes(self) -> impl Iterator<Item = &'static str> {
        [
            (self.region, "region"),
            (self.industry, "industry"),
            (self.channel, "channel"),
        ]
        .into_iter()
        .filter(|&(on, _)| on)
        .map(|(_, name)| name)
    }
}

/// The column the per-customer steps group and sort by ([`with_customer_key`]).
pub(crate) const CUSTOMER_KEY: &str = "customer_key";

/// `rows` with [`CUSTOMER_KEY`]: a fixed-seed 64-bit hash of `customer_id`.
///
/// Grouping and sorting by an integer instead of a string is what makes the daily table and
/// the per-date summaries of a customer bucket fast. Whether the hash tells this table's
/// customers apart is checked where the rows are sorted anyway ([`daily_purchases`] returns
/// `None` on a collision, about one in 10¹⁰ per bucket of 100,000 customers); the caller then
/// starts again with [`with_id_key`]. Per-customer results never depend on the choice: the
/// key only orders customers within a bucket, and the merged tables are sorted by
/// `customer_id` (the churn and cohort revenue sums add a bucket's customers in key order, so
/// their last digits do).
pub(crate) fn with_hash_key(rows: DataFrame) -> PolarsResult<DataFrame> {
    rows.lazy()
        .with_column(customer_hash().alias(CUSTOMER_KEY))
        .collect()
}

/// `rows` with [`CUSTOMER_KEY`] = `customer_id` itself: the fallback of a hash collision.
pub(crate) fn with_id_key(rows: DataFrame) -> PolarsResult<DataFrame> {
    rows.lazy()
        .with_column(col("customer_id").alias(CUSTOMER_KEY))
        .collect()
}

/// The customer key's hash. The split into buckets takes the bucket from the same hash
/// ([`crate::compact`]), so it can order a bucket's files by key.
pub(crate) fn customer_hash() -> Expr {
    col("customer_id").hash(0x5eed_c057, 0x0c0f_fee5, 0xba5e_ba11, 0x0dd_ba11)
}

/// [`with_hash_key`] when the hash tells every customer of `rows` apart (counted), else
/// [`with_id_key`]: for tests of the fallback.
#[cfg(test)]
pub(crate) fn with_customer_key(rows: DataFrame) -> PolarsResult<DataFrame> {
    with_key_from(rows, customer_hash())
}

/// [`with_customer_key`] with the given hash of `customer_id`.
#[cfg(test)]
fn with_key_from(rows: DataFrame, hash: Expr) -> PolarsResult<DataFrame> {
    let counts = rows
        .clone()
        .lazy()
        .filter(col("customer_id").is_not_null())
        .select([
            col("customer_id").n_unique().alias("ids"),
            hash.clone().n_unique().alias("hashes"),
        ])
        .collect()?;
    let get = |c: &str| -> PolarsResult<Option<IdxSize>> {
        Ok(counts.column(c)?.cast(&IDX_DTYPE)?.idx()?.get(0))
    };
    let key = if get("ids")? == get("hashes")? {
        hash
    } else {
        col("customer_id")
    };
    rows.lazy().with_column(key.alias(CUSTOMER_KEY)).collect()
}

/// The rows with a key and a day, sorted by (key, day, row): each as (key, day above the row
/// number), the day offset to be non-negative ([`crate::order::sort_hashed_pairs`]: the keys
/// are hashes).
pub(crate) fn key_day_order(key: &UInt64Chunked, day: &Int32Chunked) -> Vec<(u64, u64)> {
    let day_row = |d: i32, i: usize| ((d as i64 + (1i64 << 31)) as u64) << 32 | i as u64;
    let pairs: Vec<(u64, u64)> = if key.null_count() == 0 && day.null_count() == 0 {
        // Chunk by chunk over the values (polars' per-value iterator of options was most of
        // this function's time before the sort).
        let days: Vec<i32> = day
            .downcast_iter()
            .flat_map(|a| a.values().iter().copied())
            .collect();
        key.downcast_iter()
            .flat_map(|a| a.values().iter().copied())
            .zip(days)
            .enumerate()
            .map(|(i, (k, d))| (k, day_row(d, i)))
            .collect()
    } else {
        key.iter()
            .zip(day.iter())
            .enumerate()
            .filter_map(|(i, (k, d))| Some((k?, day_row(d?, i))))
            .collect()
    };
    // Every pair is distinct (the row number is in it): the sort is stable here.
    crate::order::sort_hashed_pairs(pairs)
}

/// Raw canonical transactions → one row per (customer, purchase day), sorted by customer and day.
///
/// Groups by [`CUSTOMER_KEY`] (the input needs it: [`with_customer_key`]), and sorts by it.
/// Columns: the key, `day` (Int32 epoch day), `customer_id`, `amount` (sum), `rows` (source
/// rows, Int64),
/// `orders` (Int64), and when present `quantity` (sum), `region`, `industry`, `channel` (last
/// non-null value that day). Categories go to [`daily_categories`], so no list column is built.
///
/// With the usual 64-bit hash key and no null key or day, the rows are ordered by one parallel
/// unstable sort of (key, day, row) tuples (measured: the stable merge sort and the rank it
/// needed were a fifth of the per-bucket time); otherwise by polars ([`daily_purchases_lazy`]).
/// Both give the same groups, in the same order, with rows in source order within a group.
#[cfg(test)]
pub(crate) fn daily_purchases(tx: DataFrame, opt: Optional) -> PolarsResult<Option<DataFrame>> {
    daily_purchases_in(tx, opt, None)
}

/// [`daily_purchases`] given the rows' [`key_day_order`] when the caller has it.
pub(crate) fn daily_purchases_in(
    tx: DataFrame,
    opt: Optional,
    sorted: Option<Vec<(u64, u64)>>,
) -> PolarsResult<Option<DataFrame>> {
    let n = tx.height();
    let hashed = tx.column(CUSTOMER_KEY)?.u64().ok().cloned();
    let day = tx.column("day")?.i32()?.clone();
    let Some(key) =
        hashed.filter(|k| k.null_count() == 0 && day.null_count() == 0 && n < u32::MAX as usize)
    else {
        return daily_purchases_lazy(tx.lazy(), opt).collect().map(Some);
    };
    let order = match sorted {
        Some(order) if order.len() == n => order,
        _ => key_day_order(&key, &day),
    };
    let mut inputs = tx.select(daily_input_names(&tx, opt))?;
    inputs.rechunk_mut_par();
    daily_purchases_of(&inputs, opt, &order)
}

/// [`daily_purchases`] of the rows that `order` lists ([`key_day_order`] of some of the rows
/// of `rows`, whose columns are one chunk each), by (key, day) and in that order.
///
/// The rows stay where they are: each aggregation reads them by row number, so the string
/// columns (ids, order ids, attributes) are never gathered, only their values at the runs'
/// first or last rows, and the caller need not gather the rows it uses (measured on the
/// 50 M-row workload: gathering the used rows, then every needed column in sorted order, was
/// the largest step of the bucket phase).
pub(crate) fn daily_purchases_of(
    rows: &DataFrame,
    opt: Optional,
    order: &[(u64, u64)],
) -> PolarsResult<Option<DataFrame>> {
    let n = order.len();
    let idx: Vec<IdxSize> = order
        .par_iter()
        .map(|&(_, dr)| (dr & 0xffff_ffff) as IdxSize)
        .collect();
    // Where each (key, day) run starts in the sorted order, then n.
    let mut starts = Vec::new();
    for i in 0..n {
        if i == 0 || order[i].0 != order[i - 1].0 || order[i].1 >> 32 != order[i - 1].1 >> 32 {
            starts.push(i);
        }
    }
    starts.push(n);
    if ids_collide(order, &idx, rows.column("customer_id")?) {
        return Ok(None);
    }
    match aggregate_in_place(rows, opt, order, &idx, &starts)? {
        Some(daily) => Ok(Some(daily)),
        // A summed column with nulls: polars' plan over the rows (same groups, same order).
        None => {
            let used = rows
                .select(daily_input_names(rows, opt))?
                .take(&IdxCa::from_vec("".into(), idx))?;
            daily_purchases_lazy(used.lazy(), opt).collect().map(Some)
        }
    }
}

/// The aggregations of [`daily_aggs`] of the (key, day) runs of `rows` in `order` (`idx`: each
/// sorted row's row number; `starts`: where each run starts, then the row count), reading
/// the rows in place; None when a summed column (amount, quantity) has nulls or a column is
/// not of its usual type.
fn aggregate_in_place(
    rows: &DataFrame,
    opt: Optional,
    order: &[(u64, u64)],
    idx: &[IdxSize],
    starts: &[usize],
) -> PolarsResult<Option<DataFrame>> {
    // A summed column's values in sorted order, summed run by run as polars sums a group;
    // None when one of them is null (rows `order` leaves out may hold nulls).
    let sums = |name: &str| -> Option<Vec<f64>> {
        let values = rows.column(name).ok()?.f64().ok()?;
        if values.chunks().len() != 1 {
            return None;
        }
        let arr = values.downcast_as_array();
        let (values, valid) = (arr.values().as_slice(), arr.validity());
        if valid.is_some_and(|v| idx.iter().any(|&i| !v.get_bit(i as usize))) {
            return None;
        }
        let sorted: Vec<f64> = idx.iter().map(|&i| values[i as usize]).collect();
        Some(run_aggs::float_sums_of(&sorted, starts))
    };
    let Some(amount) = sums("amount") else {
        return Ok(None);
    };
    let quantity = match opt.quantity {
        true => match sums("quantity") {
            Some(q) => Some(q),
            None => return Ok(None),
        },
        false => None,
    };
    let orders = match opt.order_id {
        true => match rows.column("order_id")?.str() {
            Ok(ids) => distinct_in_runs(ids, idx, starts),
            Err(_) => return Ok(None),
        },
        // Without order ids a day's orders are its rows.
        false => run_aggs::lens(starts),
    };
    let runs = &starts[..starts.len() - 1];
    let key: Vec<u64> = runs.iter().map(|&s| order[s].0).collect();
    let day: Vec<i32> = runs
        .iter()
        .map(|&s| ((order[s].1 >> 32) as i64 - (1i64 << 31)) as i32)
        .collect();
    let first_rows: Vec<IdxSize> = runs.iter().map(|&s| idx[s]).collect();
    let mut columns = vec![
        Column::new(CUSTOMER_KEY.into(), key),
        Column::new("day".into(), day),
        rows.column("customer_id")?
            .take(&IdxCa::from_vec("".into(), first_rows))?,
        Column::new("amount".into(), amount),
        Column::new("rows".into(), run_aggs::lens(starts)),
        Column::new("orders".into(), orders),
    ];
    columns.extend(quantity.map(|q| Column::new("quantity".into(), q)));
    for name in opt.attributes() {
        let values = rows.column(name)?;
        columns.push(values.take(&last_valid_in_runs(values, idx, starts))?);
    }
    DataFrame::new(runs.len(), columns).map(Some)
}

/// Whether two different customer ids share a key: some two neighbours in `order` (sorted by
/// key; `idx` their row numbers) have the same key and different ids (one id always has one
/// key).
fn ids_collide(order: &[(u64, u64)], idx: &[IdxSize], ids: &Column) -> bool {
    let same_key = |i: usize| order[i].0 == order[i - 1].0;
    match ids.str() {
        Ok(ids) if ids.chunks().len() == 1 => {
            let arr = ids.downcast_iter().next().expect("one chunk");
            let same = |i: usize, j: usize| match (arr.is_valid(i), arr.is_valid(j)) {
                (true, true) => same_str(arr, i, j),
                (a, b) => a == b,
            };
            (1..idx.len()).any(|i| same_key(i) && !same(idx[i] as usize, idx[i - 1] as usize))
        }
        // Ids of another type: compared through polars' values (rare; not the usual path).
        _ => {
            let ids = ids.as_materialized_series();
            (1..idx.len()).any(|i| {
                same_key(i) && ids.get(idx[i] as usize).ok() != ids.get(idx[i - 1] as usize).ok()
            })
        }
    }
}

/// The row number of the last non-null value of each run (see [`aggregate_in_place`]), or
/// None for a run of nulls.
fn last_valid_in_runs(values: &Column, idx: &[IdxSize], starts: &[usize]) -> IdxCa {
    let valid = values.is_not_null();
    let valid = valid.rechunk();
    let valid = valid.downcast_iter().next().map(|a| a.values().clone());
    let last = |w: &[usize]| -> Option<IdxSize> {
        let rows = idx[w[0]..w[1]].iter().rev();
        match &valid {
            Some(v) => rows.copied().find(|&r| v.get_bit(r as usize)),
            None => rows.copied().next(),
        }
    };
    IdxCa::from_iter_options("".into(), starts.windows(2).map(last))
}

/// polars' aggregations of the last non-null region, industry and channel (those mapped) of
/// a group (the plans; the sorted paths take them by index, [`last_attributes`]).
fn last_attribute_aggs(opt: Optional) -> Vec<Expr> {
    opt.attributes()
        .map(|name| col(name).drop_nulls().last().alias(name))
        .collect()
}

/// The last non-null region, industry and channel (those mapped) of each run of equal `group`
/// numbers of `rows`, one column each.
fn last_attributes(rows: &DataFrame, opt: Optional, group: &[u32]) -> PolarsResult<Vec<Column>> {
    opt.attributes()
        .map(|name| {
            let values = rows.column(name)?;
            values.take(&last_valid_per_group(values, group))
        })
        .collect()
}

/// The row of the last non-null value of each run of equal `group` numbers (ascending from 0,
/// one per row), or None for a run of nulls.
fn last_valid_per_group(values: &Column, group: &[u32]) -> IdxCa {
    let valid = values.is_not_null();
    let mut out: Vec<Option<IdxSize>> =
        Vec::with_capacity(group.last().map_or(0, |&g| g as usize + 1));
    let mut current: Option<IdxSize> = None;
    for (i, v) in valid.iter().enumerate() {
        if i > 0 && group[i] != group[i - 1] {
            out.push(current.take());
        }
        if v == Some(true) {
            current = Some(i as IdxSize);
        }
    }
    if !group.is_empty() {
        out.push(current);
    }
    IdxCa::from_iter_options("".into(), out.into_iter())
}

/// The columns of [`daily_inputs`] that `rows` has.
fn daily_input_names(rows: &DataFrame, opt: Optional) -> Vec<PlSmallStr> {
    daily_inputs(opt)
        .into_iter()
        .filter(|c| rows.schema().contains(c))
        .map(PlSmallStr::from)
        .collect()
}

/// The input columns of [`daily_aggs`].
fn daily_inputs(opt: Optional) -> Vec<&'static str> {
    let mut cols = vec![CUSTOMER_KEY, "day", "customer_id", "amount"];
    for (on, name) in [
        (opt.order_id, "order_id"),
        (opt.quantity, "quantity"),
        (opt.region, "region"),
        (opt.industry, "industry"),
        (opt.channel, "channel"),
    ] {
        if on {
            cols.push(name);
        }
    }
    cols
}

/// The number of distinct non-null `values` in each run (see [`aggregate_in_place`]), in run
/// order.
fn distinct_in_runs(values: &StringChunked, idx: &[IdxSize], starts: &[usize]) -> Vec<i64> {
    let values = values.rechunk();
    let Some(arr) = values.downcast_iter().next() else {
        return vec![0; starts.len().saturating_sub(1)];
    };
    let mut seen: PlHashSet<&str> = PlHashSet::new();
    // The rows of the current run's non-null values.
    let mut run: Vec<usize> = Vec::new();
    let mut out = Vec::with_capacity(starts.len().saturating_sub(1));
    for w in starts.windows(2) {
        run.clear();
        run.extend(
            idx[w[0]..w[1]]
                .iter()
                .map(|&r| r as usize)
                .filter(|&r| arr.is_valid(r)),
        );
        let distinct = if run.len() <= 16 {
            // Small runs (nearly all): compare with the earlier values of the run.
            (0..run.len())
                .filter(|&i| !run[..i].iter().any(|&j| same_str(arr, j, run[i])))
                .count()
        } else {
            seen.clear();
            // SAFETY: the rows are in bounds (row numbers of `values`).
            seen.extend(run.iter().map(|&r| unsafe { arr.value_unchecked(r) }));
            seen.len()
        };
        out.push(distinct as i64);
    }
    out
}

/// Whether rows `i` and `j` (in bounds, both valid) of `arr` hold the same string, tested as
/// polars' own equality kernel does: length and prefix from the views first, then the
/// inlined bytes (strings of up to 12 bytes, zero-padded in their view) or the buffers'.
#[inline]
fn same_str(arr: &polars_arrow::array::Utf8ViewArray, i: usize, j: usize) -> bool {
    let views = arr.views();
    let (a, b) = (views[i].as_u128(), views[j].as_u128());
    if a as u64 != b as u64 {
        return false;
    }
    if (a as u32) <= polars_arrow::array::View::MAX_INLINE_SIZE {
        return a >> 64 == b >> 64;
    }
    // SAFETY: the caller's rows are in bounds.
    unsafe { arr.value_unchecked(i) == arr.value_unchecked(j) }
}

/// [`daily_purchases`] as a polars plan, for any key type.
pub(crate) fn daily_purchases_lazy(tx: LazyFrame, opt: Optional) -> LazyFrame {
    // One sortable 64-bit key per (customer, day): the customer's dense rank in key order
    // above the day, offset to be non-negative. A stable sort on it puts each group's rows
    // together in source order, and the group-by then takes slices of sorted data instead of
    // hashing two columns. Output is in key, day order.
    let rank = col(CUSTOMER_KEY)
        .rank(
            RankOptions {
                method: RankMethod::Dense,
                descending: false,
            },
            None,
        )
        .cast(DataType::UInt64);
    let day = (col("day").cast(DataType::Int64) + lit(1i64 << 31)).cast(DataType::UInt64);
    let group = (rank * lit(1u64 << 32) + day).alias(DAY_GROUP);
    tx.with_column(group)
        .sort(
            [DAY_GROUP],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .group_by_stable([col(DAY_GROUP)])
        .agg(daily_aggs(opt))
        .select(daily_columns(opt))
}

/// The aggregations of one (customer, day) group of [`daily_purchases`].
fn daily_aggs(opt: Optional) -> Vec<Expr> {
    let mut aggs = vec![
        col("customer_id").first().alias("customer_id"),
        col("amount").sum().alias("amount"),
        len().cast(DataType::Int64).alias("rows"),
        if opt.order_id {
            col("order_id")
                .drop_nulls()
                .n_unique()
                .cast(DataType::Int64)
        } else {
            len().cast(DataType::Int64)
        }
        .alias("orders"),
    ];
    if opt.quantity {
        aggs.push(col("quantity").sum().alias("quantity"));
    }
    aggs.extend(last_attribute_aggs(opt));
    aggs.extend([
        col(CUSTOMER_KEY).first().alias(CUSTOMER_KEY),
        col("day").first().alias("day"),
    ]);
    aggs
}

/// The output columns of [`daily_purchases`], in order.
fn daily_columns(opt: Optional) -> Vec<Expr> {
    let mut out = vec![col(CUSTOMER_KEY), col("day")];
    out.extend(
        ["customer_id", "amount", "rows", "orders"]
            .into_iter()
            .map(col),
    );
    if opt.quantity {
        out.push(col("quantity"));
    }
    out.extend(opt.attributes().map(col));
    out
}

/// The (customer, day) group key of [`daily_purchases`], dropped from its output.
const DAY_GROUP: &str = "_customer_day";

/// Daily purchases (from [`daily_purchases`], any superset of the window) → the customer summary
/// as of `as_of_day`, over days in `[start_day, as_of_day]` (`start_day` None = unbounded).
/// `categories` is joined on by the caller from [`category_counts`].
pub(crate) fn customer_summary(
    daily: LazyFrame,
    start_day: Option<i32>,
    as_of_day: i32,
    unit_days: f64,
    opt: Optional,
) -> LazyFrame {
    let mut keep = col("day").lt_eq(lit(as_of_day));
    if let Some(s) = start_day {
        keep = keep.and(col("day").gt_eq(lit(s)));
    }
    let mut aggs = summary_aggs(as_of_day, opt);
    aggs.extend(last_attribute_aggs(opt));
    // The daily table is sorted by key: groups in order of first appearance are sorted too,
    // without a sort of the output.
    daily
        .filter(keep)
        .group_by_stable([col(CUSTOMER_KEY)])
        .agg(aggs)
        .select(summary_columns(as_of_day, unit_days, opt))
}

/// [`customer_summary`] of a daily table with 64-bit keys, sorted by key and day (what
/// [`daily_purchases`] returns), computed eagerly: the customers are the runs of equal keys
/// among the window's rows, so polars groups contiguous slices instead of hashing keys, and
/// the last non-null attribute of each customer is taken by row index (polars evaluates
/// `drop_nulls().last()` group by group). Other tables go through [`customer_summary`].
pub(crate) fn customer_summary_sorted(
    daily: &DataFrame,
    start_day: Option<i32>,
    as_of_day: i32,
    unit_days: f64,
    opt: Optional,
) -> PolarsResult<DataFrame> {
    let lazy = || customer_summary(daily.clone().lazy(), start_day, as_of_day, unit_days, opt);
    let (Ok(keys), Ok(day)) = (
        daily.column(CUSTOMER_KEY)?.u64(),
        daily.column("day")?.i32(),
    ) else {
        return lazy().collect();
    };
    if keys.null_count() > 0 || day.null_count() > 0 || daily.height() >= u32::MAX as usize {
        return lazy().collect();
    }
    let lo = start_day.unwrap_or(i32::MIN);
    let mut idx: Vec<IdxSize> = Vec::with_capacity(daily.height());
    let mut group: Vec<u32> = Vec::with_capacity(daily.height());
    let mut prev: Option<u64> = None;
    let mut g = 0u32;
    for (i, (k, d)) in keys
        .into_no_null_iter()
        .zip(day.into_no_null_iter())
        .enumerate()
    {
        match prev {
            // Not sorted by key: polars' plan.
            Some(p) if k < p => return lazy().collect(),
            Some(p) if k != p && !idx.is_empty() && group.last() == Some(&g) => g += 1,
            _ => {}
        }
        prev = Some(k);
        if d < lo || d > as_of_day {
            continue;
        }
        idx.push(i as IdxSize);
        group.push(g);
    }
    let needed: Vec<PlSmallStr> = [
        CUSTOMER_KEY,
        "customer_id",
        "day",
        "orders",
        "amount",
        "quantity",
        "region",
        "industry",
        "channel",
    ]
    .into_iter()
    .filter(|c| daily.schema().contains(c))
    .map(PlSmallStr::from)
    .collect();
    // Every row in the window (a run as of the data's end): no gather.
    let mut rows = match idx.len() == daily.height() {
        true => daily.select(needed)?,
        false => daily
            .select(needed)?
            .take(&IdxCa::from_vec("".into(), idx))?,
    };
    let lasts = last_attributes(&rows, opt, &group)?;
    let starts = run_aggs::run_starts(&group);
    let mut grouped = match summary_by_runs(&rows, &starts, as_of_day, opt)? {
        Some(grouped) => grouped,
        None => {
            let mut group = UInt32Chunked::from_vec(DAY_GROUP.into(), group);
            group.set_sorted_flag(polars::series::IsSorted::Ascending);
            rows.with_column(group.into_column())?;
            let mut aggs = summary_aggs(as_of_day, opt);
            aggs.push(col(CUSTOMER_KEY).first().alias(CUSTOMER_KEY));
            rows.lazy()
                .group_by_stable([col(DAY_GROUP)])
                .agg(aggs)
                .collect()?
        }
    };
    for last in lasts {
        grouped.with_column(last)?;
    }
    grouped
        .lazy()
        .select(summary_columns(as_of_day, unit_days, opt))
        .collect()
}

/// The aggregations of [`summary_aggs`] (and the key's first value) of each run of `rows`
/// (`starts` from [`run_aggs::run_starts`]), one pass each; None when a column has nulls.
fn summary_by_runs(
    rows: &DataFrame,
    starts: &[usize],
    as_of_day: i32,
    opt: Optional,
) -> PolarsResult<Option<DataFrame>> {
    let amount = rows.column("amount")?.f64()?;
    let day = rows.column("day")?.i32()?;
    let sums = |values: &Float64Chunked| run_aggs::float_sums(values, starts);
    // The amounts of the last 365 days, zero before: what polars sums for `amount_last_365d`.
    let recent: Float64Chunked = amount
        .iter()
        .zip(day.iter())
        .map(|(a, d)| match d {
            Some(d) if d > as_of_day - 365 => a,
            _ => Some(0.0),
        })
        .collect();
    let quantity = match opt.quantity {
        true => sums(rows.column("quantity")?.f64()?).map(Some),
        false => Some(None),
    };
    let (Some((first_day, last_day)), Some(orders), Some(total), Some(recent), Some(quantity)) = (
        run_aggs::int_min_max(day, starts),
        run_aggs::int_sums(rows.column("orders")?.i64()?, starts),
        sums(amount),
        sums(&recent),
        quantity,
    ) else {
        return Ok(None);
    };
    let mut columns = vec![
        run_aggs::firsts(rows.column("customer_id")?, starts)?,
        Column::new("first_day".into(), first_day),
        Column::new("last_day".into(), last_day),
        Column::new("purchase_days".into(), run_aggs::lens(starts)),
        Column::new("orders".into(), orders),
        Column::new("total_amount".into(), total),
        Column::new("amount_last_365d".into(), recent),
        run_aggs::firsts(rows.column("amount")?, starts)?.with_name("first_day_amount".into()),
    ];
    columns.extend(quantity.map(|q| Column::new("quantity".into(), q)));
    columns.push(run_aggs::firsts(rows.column(CUSTOMER_KEY)?, starts)?);
    DataFrame::new(starts.len() - 1, columns).map(Some)
}

/// The aggregations of one customer's daily rows in [`customer_summary`], but for the
/// attributes (last non-null value).
fn summary_aggs(as_of_day: i32, opt: Optional) -> Vec<Expr> {
    // Only vectorised aggregations (no per-group filter or sort): rows are one per purchase day,
    // sorted by day within each customer, so the first row is the first purchase day.
    let mut aggs = vec![
        col("customer_id").first().alias("customer_id"),
        col("day").min().alias("first_day"),
        col("day").max().alias("last_day"),
        len().cast(DataType::Int64).alias("purchase_days"),
        col("orders").sum().alias("orders"),
        col("amount").sum().alias("total_amount"),
        when(col("day").gt(lit(as_of_day - 365)))
            .then(col("amount"))
            .otherwise(lit(0.0))
            .sum()
            .alias("amount_last_365d"),
        col("amount").first().alias("first_day_amount"),
    ];
    if opt.quantity {
        aggs.push(col("quantity").sum().alias("quantity"));
    }
    aggs
}

/// The output columns of [`customer_summary`], in order.
fn summary_columns(as_of_day: i32, unit_days: f64, opt: Optional) -> Vec<Expr> {
    let unit = lit(unit_days);
    let freq = col("purchase_days") - lit(1i64);
    let mut out = vec![
        col(CUSTOMER_KEY),
        col("customer_id"),
        col("first_day")
            .cast(DataType::Date)
            .alias("first_purchase"),
        col("last_day").cast(DataType::Date).alias("last_purchase"),
        col("purchase_days"),
        col("orders"),
        col("total_amount"),
        when(col("orders").gt(lit(0i64)))
            .then(col("total_amount") / col("orders").cast(DataType::Float64))
            .otherwise(lit(NULL).cast(DataType::Float64))
            .alias("mean_amount"),
    ];
    if opt.quantity {
        out.push(col("quantity"));
    }
    out.extend(opt.attributes().map(col));
    out.extend([
        col("amount_last_365d"),
        (lit(as_of_day) - col("last_day"))
            .cast(DataType::Int64)
            .alias("days_since_last"),
        freq.clone().alias("frequency"),
        ((col("last_day") - col("first_day")).cast(DataType::Float64) / unit.clone())
            .alias("recency"),
        ((lit(as_of_day) - col("first_day")).cast(DataType::Float64) / unit).alias("T"),
        when(freq.clone().gt(lit(0i64)))
            .then((col("total_amount") - col("first_day_amount")) / freq.cast(DataType::Float64))
            .otherwise(lit(0.0))
            .alias("monetary"),
    ]);
    out
}

/// Distinct (customer, day, category) triples of the raw transactions: the compact input of the
/// `categories` count, kept apart from the daily purchases so that no list column is built.
pub(crate) fn daily_categories(tx: LazyFrame) -> LazyFrame {
    tx.select([col(CUSTOMER_KEY), col("day"), col("category")])
        .drop_nulls(None)
        .unique(None, UniqueKeepStrategy::Any)
}

/// Distinct categories per customer over days in `[start_day, as_of_day]`.
pub(crate) fn category_counts(
    cats: LazyFrame,
    start_day: Option<i32>,
    as_of_day: i32,
) -> LazyFrame {
    let mut keep = col("day").lt_eq(lit(as_of_day));
    if let Some(s) = start_day {
        keep = keep.and(col("day").gt_eq(lit(s)));
    }
    cats.filter(keep)
        .group_by([col(CUSTOMER_KEY)])
        .agg([col("category")
            .n_unique()
            .cast(DataType::Int64)
            .alias("categories")])
}

/// Columns of the customer summary in their documented order (those present are kept).
pub(crate) const SUMMARY_ORDER: [&str; 18] = [
    "customer_id",
    "region",
    "industry",
    "channel",
    "first_purchase",
    "last_purchase",
    "purchase_days",
    "orders",
    "total_amount",
    "mean_amount",
    "quantity",
    "categories",
    "amount_last_365d",
    "days_since_last",
    "frequency",
    "recency",
    "T",
    "monetary",
];

/// Partial counts of [`annual_retention`] over some of the customers: additive across customer
/// buckets ([`RetentionCounts::merge`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct RetentionCounts {
    /// First purchase day in the window, over these customers.
    pub data_first: Option<i32>,
    /// Customers who bought in the earlier year.
    pub prev: f64,
    /// Of those, customers who bought again in the last year.
    pub both: f64,
}

impl RetentionCounts {
    /// Counts of the customers of both `self` and `o` (disjoint sets, e.g. two buckets).
    pub(crate) fn merge(self, o: RetentionCounts) -> RetentionCounts {
        RetentionCounts {
            data_first: match (self.data_first, o.data_first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            prev: self.prev + o.prev,
            both: self.both + o.both,
        }
    }

    /// The counts of the customers whose purchase days in the window are
    /// `day[offsets[i]..offsets[i + 1]]` (the layout of
    /// [`crate::features::behaviour::DailySlices`]), as of `as_of_day`, window from
    /// `start_day`. The same counts as [`retention_counts`] computes with polars, without a
    /// group-by per bucket and date.
    pub(crate) fn from_days(
        offsets: &[usize],
        day: &[i32],
        start_day: Option<i32>,
        as_of_day: i32,
    ) -> RetentionCounts {
        let lo = start_day.unwrap_or(i32::MIN);
        let in_window = |d: i32| d >= lo && d <= as_of_day;
        let first = (as_of_day - 729).max(lo);
        let year_ago = as_of_day - 365;
        let (mut prev, mut both) = (0.0, 0.0);
        for w in offsets.windows(2) {
            let days = &day[w[0]..w[1]];
            if days.iter().any(|&d| d >= first && d <= year_ago) {
                prev += 1.0;
                if days.iter().any(|&d| d > year_ago && d <= as_of_day) {
                    both += 1.0;
                }
            }
        }
        RetentionCounts {
            data_first: day.iter().copied().filter(|&d| in_window(d)).min(),
            prev,
            both,
        }
    }

    /// The rate: `None` when the data in the window do not cover the earlier year, or nobody
    /// bought in it.
    pub(crate) fn rate(&self, as_of_day: i32) -> Option<f64> {
        if self.data_first.is_none_or(|f| f > as_of_day - 729) {
            return None;
        }
        (self.prev > 0.0).then(|| self.both / self.prev)
    }
}

/// The measured annual retention rate as of `as_of_day`: of the customers who bought in the year
/// before the last one (days `(D−730, D−365]`), the share who bought again in the last year
/// (`(D−365, D]`). `None` when nobody bought in that earlier year (history too short). Only
/// days inside the job's window (from `start_day`) count.
#[cfg(test)]
pub(crate) fn annual_retention(
    daily: LazyFrame,
    start_day: Option<i32>,
    as_of_day: i32,
) -> PolarsResult<Option<f64>> {
    Ok(retention_counts(daily, start_day, as_of_day)?.rate(as_of_day))
}

/// The counts behind [`annual_retention`] over the customers of `daily`, by polars: the
/// reference of [`RetentionCounts::from_days`] in tests.
#[cfg(test)]
pub(crate) fn retention_counts(
    daily: LazyFrame,
    start_day: Option<i32>,
    as_of_day: i32,
) -> PolarsResult<RetentionCounts> {
    let year_ago = lit(as_of_day - 365);
    // The earlier year must be covered by the data in the window, or the rate would be made of
    // a partial year.
    let data_first = daily
        .clone()
        .filter(
            col("day")
                .gt_eq(lit(start_day.unwrap_or(i32::MIN)))
                .and(col("day").lt_eq(lit(as_of_day))),
        )
        .select([col("day").min()])
        .collect()?;
    let data_first = data_first.column("day")?.i32()?.get(0);
    let first = (as_of_day - 729).max(start_day.unwrap_or(i32::MIN));
    let df = daily
        .filter(
            col("day")
                .gt_eq(lit(first))
                .and(col("day").lt_eq(lit(as_of_day))),
        )
        .group_by([col(CUSTOMER_KEY)])
        .agg([
            col("day").lt_eq(year_ago.clone()).any(true).alias("prev"),
            col("day").gt(year_ago).any(true).alias("cur"),
        ])
        .select([
            col("prev").cast(DataType::Float64).sum().alias("prev"),
            col("prev")
                .and(col("cur"))
                .cast(DataType::Float64)
                .sum()
                .alias("both"),
        ])
        .collect()?;
    let get = |c: &str| -> PolarsResult<f64> { Ok(df.column(c)?.f64()?.get(0).unwrap_or(0.0)) };
    Ok(RetentionCounts {
        data_first,
        prev: get("prev")?,
        both: get("both")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_day_order_is_a_sort_by_key_day_and_row() {
        // Keys spread over the whole range (hashes) and bunched in one partition, repeated
        // keys and days, nulls (left out).
        let n = 50_000usize;
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.random::<u64>();
        let keys: Vec<Option<u64>> = (0..n)
            .map(|i| match i % 97 {
                0 => None,
                1..=9 => Some(next() % 50),
                _ => Some(next() % 3000 * 0x0011_2233_4455_6677),
            })
            .collect();
        let days: Vec<Option<i32>> = (0..n)
            .map(|i| (i % 89 != 0).then(|| (next() % 40) as i32 - 20))
            .collect();
        let key = UInt64Chunked::from_iter_options("k".into(), keys.iter().copied());
        let day = Int32Chunked::from_iter_options("d".into(), days.iter().copied());
        let got = key_day_order(&key, &day);
        let mut want: Vec<(u64, i32, usize)> = (0..n)
            .filter_map(|i| Some((keys[i]?, days[i]?, i)))
            .collect();
        want.sort();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0);
            assert_eq!((g.1 >> 32) as i64 - (1 << 31), w.1 as i64);
            assert_eq!((g.1 & 0xffff_ffff) as usize, w.2);
        }
        // Without nulls, over several chunks of different lengths (the values are read chunk
        // by chunk, the key's and the day's chunks cut in different places).
        let full: Vec<(u64, i32)> = (0..n)
            .map(|i| (keys[i].unwrap_or(7), days[i].unwrap_or(3)))
            .collect();
        let chunked_key = |cuts: &[usize]| {
            let mut ca = UInt64Chunked::from_vec("k".into(), vec![]);
            for w in cuts.windows(2) {
                let part: Vec<u64> = full[w[0]..w[1]].iter().map(|r| r.0).collect();
                ca.append(&UInt64Chunked::from_vec("k".into(), part))
                    .unwrap();
            }
            ca
        };
        let mut day = Int32Chunked::from_vec("d".into(), vec![]);
        for w in [0, 17_000, 17_001, n].windows(2) {
            let part: Vec<i32> = full[w[0]..w[1]].iter().map(|r| r.1).collect();
            day.append(&Int32Chunked::from_vec("d".into(), part))
                .unwrap();
        }
        let key = chunked_key(&[0, 9_999, 31_000, n]);
        assert!(key.chunks().len() > 1 && day.chunks().len() > 1);
        let got = key_day_order(&key, &day);
        let mut want: Vec<(u64, i32, usize)> = full
            .iter()
            .enumerate()
            .map(|(i, r)| (r.0, r.1, i))
            .collect();
        want.sort();
        assert_eq!(got.len(), n);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0);
            assert_eq!((g.1 >> 32) as i64 - (1 << 31), w.1 as i64);
            assert_eq!((g.1 & 0xffff_ffff) as usize, w.2);
        }
        // Tiny inputs take one partition.
        let one = key_day_order(
            &UInt64Chunked::from_vec("k".into(), vec![5, 1]),
            &Int32Chunked::from_vec("d".into(), vec![0, 0]),
        );
        assert_eq!(one, vec![(1, (1u64 << 63) | 1), (5, 1u64 << 63)]);
    }

    fn daily(rows: &[(&str, i32)]) -> LazyFrame {
        let df = df!(
            "customer_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "day" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        )
        .unwrap();
        with_customer_key(df).unwrap().lazy()
    }

    #[test]
    fn strings_compare_by_their_views_as_by_their_bytes() {
        // Inlined (up to 12 bytes) and in buffers, equal prefixes with other tails, other
        // lengths, the empty string.
        let values = [
            "abc",
            "abc",
            "abd",
            "",
            "abcdefghijkl",
            "abcdefghijkm",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "abcdefghijklmnop",
            "abcdefghijklmno",
        ];
        let ca = StringChunked::from_slice("v".into(), &values);
        let arr = ca.downcast_iter().next().unwrap();
        for i in 0..values.len() {
            for j in 0..values.len() {
                assert_eq!(same_str(arr, i, j), values[i] == values[j], "{i} {j}");
            }
        }
    }

    #[test]
    fn the_sorted_daily_table_equals_the_polars_plan() {
        // Small groups (about 5 rows per customer and day, the distinct order ids compared
        // pairwise) and large ones (about 60, counted with a hash set).
        for (customers, days) in [(211, 5), (41, 2)] {
            sorted_daily_equals_the_plan(customers, days);
        }
    }

    fn sorted_daily_equals_the_plan(customers: usize, days: usize) {
        // Rows of many customers and days in a scrambled order, with amounts whose sum depends
        // on the order, repeated and null order ids, channels with nulls ("last non-null of
        // the day" depends on the source order within a day) and a column the table ignores.
        let n = 5000usize;
        let cust: Vec<String> = (0..n)
            .map(|i| format!("c{}", (i * 37) % customers))
            .collect();
        let day: Vec<i32> = (0..n).map(|i| ((i / 7) % days) as i32 - 3).collect();
        let amount: Vec<f64> = (0..n)
            .map(|i| if i % 3 == 0 { 1e16 } else { 0.1 * i as f64 })
            .collect();
        let order: Vec<Option<String>> = (0..n)
            .map(|i| (i % 9 != 4).then(|| format!("o{}", i % 1400)))
            .collect();
        let channel: Vec<Option<String>> = (0..n)
            .map(|i| (i % 4 != 0).then(|| format!("ch{}", i % 5)))
            .collect();
        let category: Vec<String> = (0..n).map(|i| format!("k{}", i % 3)).collect();
        let quantity: Vec<f64> = (0..n).map(|i| (i % 4) as f64 * 0.3).collect();
        let tx = df!(
            "customer_id" => cust,
            "day" => day,
            "amount" => amount,
            "quantity" => quantity,
            "order_id" => order,
            "channel" => channel,
            "category" => category,
        )
        .unwrap();
        let keyed = with_customer_key(tx).unwrap();
        assert_eq!(
            keyed.column(CUSTOMER_KEY).unwrap().dtype(),
            &DataType::UInt64
        );
        let opt = Optional {
            order_id: true,
            quantity: true,
            channel: true,
            ..Optional::default()
        };
        // A null amount (skipped by the sums): the plan's sums, not summed in place.
        let with_null = keyed
            .clone()
            .lazy()
            .with_column(
                when(col("order_id").eq(lit("o7")))
                    .then(lit(NULL).cast(DataType::Float64))
                    .otherwise(col("amount"))
                    .alias("amount"),
            )
            .collect()
            .unwrap();
        assert!(with_null.column("amount").unwrap().null_count() > 0);
        let sorted = daily_purchases(with_null.clone(), opt).unwrap().unwrap();
        let planned = daily_purchases_lazy(with_null.lazy(), opt)
            .collect()
            .unwrap();
        assert!(sorted.equals_missing(&planned), "{sorted}\n{planned}");
        let sorted = daily_purchases(keyed.clone(), opt).unwrap().unwrap();
        let planned = daily_purchases_lazy(keyed.lazy(), opt).collect().unwrap();
        let groups = customers * days;
        assert!(
            sorted.height() > groups / 2 && sorted.height() <= groups,
            "{}",
            sorted.height()
        );
        assert!(sorted.equals_missing(&planned), "{sorted}\n{planned}");
        // The summary of the sorted table equals polars' plan for windows that drop whole
        // customers and days at both ends, including an empty one.
        for (start, as_of) in [(None, 10), (Some(-2), 0), (Some(-1), -1), (Some(5), 9)] {
            let eager = customer_summary_sorted(&sorted, start, as_of, 7.0, opt).unwrap();
            let planned = customer_summary(sorted.clone().lazy(), start, as_of, 7.0, opt)
                .collect()
                .unwrap();
            // Sums may add in another order (contiguous slices, not hashed groups): floats
            // agree to rounding, everything else exactly.
            for c in planned.get_column_names() {
                let (e, p) = (eager.column(c).unwrap(), planned.column(c).unwrap());
                match (e.f64(), p.f64()) {
                    (Ok(e), Ok(p)) => {
                        for (a, b) in e.iter().zip(p.iter()) {
                            let close = match (a, b) {
                                (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                                (a, b) => a.is_none() && b.is_none(),
                            };
                            assert!(close, "{start:?}..={as_of} {c}: {a:?} vs {b:?}");
                        }
                    }
                    _ => assert!(e.equals_missing(p), "{start:?}..={as_of} {c}\n{e:?}\n{p:?}"),
                }
            }
            assert_eq!(eager.get_column_names(), planned.get_column_names());
            match start {
                None => assert!(eager.height() > groups / days / 2),
                Some(5) => assert_eq!(eager.height(), 0),
                _ => {}
            }
        }
        // Some days have fewer distinct orders than rows (repeats and nulls).
        let orders = sorted.column("orders").unwrap().i64().unwrap();
        let rows = sorted.column("rows").unwrap().i64().unwrap();
        assert!(orders
            .into_no_null_iter()
            .zip(rows.into_no_null_iter())
            .any(|(o, r)| o < r));
    }

    #[test]
    fn customer_key_falls_back_to_the_id_and_never_changes_the_summary() {
        let tx = df!(
            "customer_id" => ["b", "a", "b", "cc", "a", "dd", "b"],
            "day" => [1, 2, 3, 3, 2, 5, 1],
            "amount" => [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        )
        .unwrap();
        let hashed = with_customer_key(tx.clone()).unwrap();
        assert_eq!(
            hashed.column(CUSTOMER_KEY).unwrap().dtype(),
            &DataType::UInt64
        );
        // A "hash" under which customers collide: the counted check falls back to the id...
        let colliding = with_key_from(tx.clone(), lit(7u64)).unwrap();
        assert_eq!(
            colliding.column(CUSTOMER_KEY).unwrap().dtype(),
            &DataType::String
        );
        assert_eq!(colliding, with_id_key(tx.clone()).unwrap());
        // ...and the sorted daily table, given that hash unchecked, reports the collision.
        let unchecked = tx
            .clone()
            .lazy()
            .with_column(lit(7u64).cast(DataType::UInt64).alias(CUSTOMER_KEY))
            .collect()
            .unwrap();
        assert!(daily_purchases(unchecked, Optional::default())
            .unwrap()
            .is_none());
        // Customers that share a key only with themselves are no collision.
        let one = tx
            .clone()
            .lazy()
            .filter(col("customer_id").eq(lit("b")))
            .with_column(lit(7u64).cast(DataType::UInt64).alias(CUSTOMER_KEY))
            .collect()
            .unwrap();
        assert!(daily_purchases(one, Optional::default()).unwrap().is_some());
        assert_eq!(
            with_hash_key(tx.clone()).unwrap(),
            with_customer_key(tx.clone()).unwrap()
        );
        let summary = |keyed: DataFrame| {
            let daily = daily_purchases(keyed, Optional::default())
                .unwrap()
                .unwrap();
            customer_summary(daily.lazy(), None, 10, 1.0, Optional::default())
                .drop(by_name([CUSTOMER_KEY], true, false))
                .sort(["customer_id"], SortMultipleOptions::default())
                .collect()
                .unwrap()
        };
        let (h, c) = (summary(hashed), summary(colliding));
        assert_eq!(h, c);
        // By hand: b bought on days 1 (1 + 7) and 3 (3); a on day 2 twice (2 + 5).
        let ids: Vec<_> = h
            .column("customer_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap().to_string())
            .collect();
        assert_eq!(ids, ["a", "b", "cc", "dd"]);
        let col = |c: &str| h.column(c).unwrap().cast(&DataType::Float64).unwrap();
        let days = col("purchase_days");
        assert_eq!(
            days.f64().unwrap().to_vec(),
            [Some(1.0), Some(2.0), Some(1.0), Some(1.0)]
        );
        let total = col("total_amount");
        assert_eq!(
            total.f64().unwrap().to_vec(),
            [Some(7.0), Some(11.0), Some(4.0), Some(6.0)]
        );
        // b's repeat day (day 3) spent 3.
        let monetary = col("monetary");
        assert_eq!(
            monetary.f64().unwrap().to_vec(),
            [Some(0.0), Some(3.0), Some(0.0), Some(0.0)]
        );
    }

    /// As of day 1000 the earlier year is days 271..=635 and the last year 636..=1000.
    /// A (300, 700) and E (635, 636) bought in both; B (400) and F (271, its first day) only
    /// in the earlier year; C (800) only in the last; D's day 100 is before the two years, so
    /// D (100, 900) counts only in the last. Earlier-year buyers A, B, E, F: 4; of them
    /// A and E came back: 2 / 4 = 0.5.
    const ROWS: [(&str, i32); 10] = [
        ("A", 300),
        ("A", 700),
        ("B", 400),
        ("C", 800),
        ("D", 100),
        ("D", 900),
        ("E", 635),
        ("E", 636),
        ("F", 271),
        ("F", 271),
    ];

    #[test]
    fn annual_retention_by_hand() {
        assert_eq!(
            annual_retention(daily(&ROWS), None, 1000).unwrap(),
            Some(0.5)
        );
        let c = retention_counts(daily(&ROWS), None, 1000).unwrap();
        assert_eq!((c.prev, c.both, c.data_first), (4.0, 2.0, Some(100)));
        // Split into two customer buckets, the merged counts give the same rate.
        let (one, two): (Vec<_>, Vec<_>) = ROWS.iter().partition(|r| r.0 < "D");
        let merged = retention_counts(daily(&one), None, 1000)
            .unwrap()
            .merge(retention_counts(daily(&two), None, 1000).unwrap());
        assert_eq!(merged, c);
        // A history that starts inside the earlier year does not cover it: no rate.
        let late: Vec<_> = ROWS.iter().copied().filter(|r| r.1 >= 300).collect();
        assert_eq!(annual_retention(daily(&late), None, 1000).unwrap(), None);
        // Nor does a window (lookback) that starts after day 271.
        assert_eq!(
            annual_retention(daily(&ROWS), Some(500), 1000).unwrap(),
            None
        );
        // The counts from day slices equal polars' for every window.
        for start in [None, Some(100), Some(272), Some(700)] {
            for as_of in [900, 1000, 1100] {
                let rows: Vec<_> = ROWS.iter().copied().filter(|r| r.1 <= as_of).collect();
                let mut ids: Vec<&str> = rows.iter().map(|r| r.0).collect();
                ids.dedup();
                let mut offsets = vec![0];
                let mut days = Vec::new();
                for id in &ids {
                    let mut d: Vec<i32> = rows
                        .iter()
                        .filter(|r| r.0 == *id && start.is_none_or(|s| r.1 >= s))
                        .map(|r| r.1)
                        .collect();
                    d.dedup();
                    days.extend(d);
                    offsets.push(days.len());
                }
                assert_eq!(
                    RetentionCounts::from_days(&offsets, &days, start, as_of),
                    retention_counts(daily(&ROWS), start, as_of).unwrap(),
                    "window {start:?}..={as_of}"
                );
            }
        }
        // Nobody in the earlier year: no rate.
        assert_eq!(
            annual_retention(daily(&[("A", 100), ("A", 900)]), None, 1000).unwrap(),
            None
        );
    }
}
