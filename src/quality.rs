//! Row checks: which transaction rows are rejected and why, which are notable but kept, and the
//! `data_quality` and `quarantine` tables built from them.
//!
//! Pure: the checks are polars expressions over the canonical scan columns (`customer_id`, `day`,
//! `amount`, the raw timestamp `ts`); [`source`](crate::source) adds them to the scan, so they are
//! computed in the same pass as the daily aggregation. Only rows inside a date's window are
//! checked (rows with a null timestamp belong to every window: they are counted, never silently
//! dropped).
//!
//! ```text
//!  canonical scan rows ──► reason (UInt8: 0 = used, else the first failing Check)
//!        ├─► reason = 0 ──► daily purchases (summary, models, ...)
//!        ├─► per_day: rows in the window per day
//!        ├─► flagged: (day, check) → rows, one example      ──► QualityReport ──► data_quality
//!        └─► reason ≠ 0, capped                              ──► quarantine
//! ```

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// `[quality]`: row checks and the threshold that stops a bad load.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityOptions {
    /// A date fails (exit 3, nothing published) when more than this share of the rows in its
    /// window is rejected. Default 0.01.
    pub max_rejected_share: f64,
    /// At most this many rejected rows are written to the `quarantine` table per date; the
    /// counts in `data_quality` stay exact. Default 100,000.
    pub max_quarantine_rows: u64,
    /// Rows dated before this day (`YYYY-MM-DD`) are rejected as `before_min_date`. Default
    /// `"1970-01-01"`.
    pub min_date: String,
    /// A date fails (exit 3) when the newest transaction on or before it is more than this many
    /// days older: its data has not landed. Default 2 (a daily feed may lag a day).
    pub max_staleness_days: i64,
}

impl Default for QualityOptions {
    fn default() -> Self {
        QualityOptions {
            max_rejected_share: 0.01,
            max_quarantine_rows: 100_000,
            min_date: "1970-01-01".into(),
            max_staleness_days: 2,
        }
    }
}

/// The largest `max_quarantine_rows` accepted (the quarantine is held in memory per date).
pub(crate) const MAX_QUARANTINE_ROWS: u64 = 10_000_000;

impl QualityOptions {
    /// Check the values; the message names the key.
    pub fn validate(&self) -> Result<NaiveDate, String> {
        if !(0.0..=1.0).contains(&self.max_rejected_share) {
            return Err(format!(
                "max_rejected_share: expected a share in [0, 1], found {}",
                self.max_rejected_share
            ));
        }
        if self.max_quarantine_rows > MAX_QUARANTINE_ROWS {
            return Err(format!(
                "max_quarantine_rows: expected at most {MAX_QUARANTINE_ROWS}, found {}",
                self.max_quarantine_rows
            ));
        }
        if self.max_staleness_days < 0 {
            return Err(format!(
                "max_staleness_days: expected a number of days >= 0, found {}",
                self.max_staleness_days
            ));
        }
        NaiveDate::parse_from_str(self.min_date.trim(), "%Y-%m-%d")
            .map_err(|_| format!("min_date: expected YYYY-MM-DD, found {:?}", self.min_date))
    }
}

/// What happens to the rows a check finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Not used: counted, quarantined, and part of the rejected share.
    Rejected,
    /// Used as they are, counted because they are worth knowing about.
    Kept,
    /// A count for reference (rows read, rows used, skipped files).
    Info,
}

impl Action {
    /// The stable name used in `data_quality.action`: `rejected`, `kept` or `info`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Rejected => "rejected",
            Action::Kept => "kept",
            Action::Info => "info",
        }
    }
}

/// A row check. The discriminant is the code carried in the scan's `reason` / `check` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Check {
    /// Rejected: the customer id is null.
    NullCustomerId = 1,
    /// Rejected: the timestamp is null (the row has no day, so it is in every window).
    NullTimestamp = 2,
    /// Rejected: the row is dated before `quality.min_date`.
    BeforeMinDate = 3,
    /// Rejected: the amount is null.
    NullAmount = 4,
    /// Rejected: the amount is NaN or infinite.
    NonFiniteAmount = 5,
    /// Rejected: the row equals an earlier one in every mapped column (checked only when
    /// `order_id` is mapped).
    DuplicateRow = 6,
    /// Kept, flagged: the amount is negative (e.g. a refund).
    NegativeAmount = 10,
    /// Kept, flagged: the amount is zero.
    ZeroAmount = 11,
    /// Kept, flagged: the timestamp is after the run's wall-clock time.
    FutureTimestamp = 12,
}

impl Check {
    /// Checks that reject a row, in the order they are tried (a row gets the first that fails).
    pub(crate) const REJECTING: [Check; 6] = [
        Check::NullCustomerId,
        Check::NullTimestamp,
        Check::BeforeMinDate,
        Check::NullAmount,
        Check::NonFiniteAmount,
        Check::DuplicateRow,
    ];
    /// Checks that flag a used row without rejecting it.
    pub(crate) const NOTABLE: [Check; 3] = [
        Check::NegativeAmount,
        Check::ZeroAmount,
        Check::FutureTimestamp,
    ];

    /// The stable name used in `data_quality.check` and `quarantine.reason`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Check::NullCustomerId => "null_customer_id",
            Check::NullTimestamp => "null_timestamp",
            Check::BeforeMinDate => "before_min_date",
            Check::NullAmount => "null_amount",
            Check::NonFiniteAmount => "non_finite_amount",
            Check::DuplicateRow => "duplicate_row",
            Check::NegativeAmount => "negative_amount",
            Check::ZeroAmount => "zero_amount",
            Check::FutureTimestamp => "future_timestamp",
        }
    }

    /// The code in the scan's Int32 `reason` / `check` columns.
    pub(crate) fn code(self) -> i32 {
        self as i32
    }

    /// The check of a [`Check::code`]; `None` for 0 (a used row) or an unknown code.
    pub(crate) fn from_code(code: i32) -> Option<Check> {
        Self::REJECTING
            .into_iter()
            .chain(Self::NOTABLE)
            .find(|c| c.code() == code)
    }

    /// What happens to the rows the check finds: [`Action::Rejected`] or [`Action::Kept`].
    pub(crate) fn action(self) -> Action {
        if Self::REJECTING.contains(&self) {
            Action::Rejected
        } else {
            Action::Kept
        }
    }
}

/// The `reason` column (Int32): 0 for a row that is used, else the code of the first rejecting check.
/// Reads the canonical `customer_id`, `day` and `amount`; `duplicate` is a Boolean expression
/// true for a row equal to an earlier one in every mapped column (None: not checked).
pub(crate) fn reason_expr(min_day: i32, duplicate: Option<Expr>) -> Expr {
    let code = |c: Check| lit(c.code());
    let mut e = when(col("customer_id").is_null())
        .then(code(Check::NullCustomerId))
        .when(col("day").is_null())
        .then(code(Check::NullTimestamp))
        .when(col("day").lt(lit(min_day)))
        .then(code(Check::BeforeMinDate))
        .when(col("amount").is_null())
        .then(code(Check::NullAmount))
        .when(col("amount").is_finite().not())
        .then(code(Check::NonFiniteAmount));
    if let Some(d) = duplicate {
        e = e.when(d).then(code(Check::DuplicateRow));
    }
    e.otherwise(lit(0i32)).alias("reason")
}

/// Rows in the window per day (`day` null: rows with a null timestamp).
pub(crate) fn per_day(checked: LazyFrame) -> LazyFrame {
    checked
        .group_by([col("day")])
        .agg([len().cast(DataType::Int64).alias("rows")])
}

/// The columns shown in an example row, in order, when present.
const EXAMPLE_COLUMNS: [&str; 4] = ["customer_id", "ts", "amount", "order_id"];

/// The `duplicate` input of [`reason_expr`]: a row equal to an earlier one in every one of
/// `mapped` columns. Only meaningful when rows carry an order id (without one, identical rows are
/// legitimate repeat purchases); rows of one customer must be in one frame.
pub(crate) fn duplicate_expr(mapped: &[String]) -> Expr {
    as_struct(mapped.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
        .is_first_distinct()
        .not()
}

/// Rows each check finds per day, with the first such row's key columns as an example.
/// Reads the Boolean `future` column (a timestamp after the run's wall-clock time);
/// `has_order_id` says whether `order_id` is a column.
pub(crate) fn flagged(checked: LazyFrame, has_order_id: bool) -> PolarsResult<LazyFrame> {
    let future = col("future");
    let used = col("reason").eq(lit(0i32));
    let tag =
        |lf: LazyFrame, cond: Expr, check: Expr| lf.filter(cond).with_column(check.alias("check"));
    let parts = vec![
        tag(checked.clone(), used.clone().not(), col("reason")),
        tag(
            checked.clone(),
            used.clone().and(col("amount").lt(lit(0.0))),
            lit(Check::NegativeAmount.code()),
        ),
        tag(
            checked.clone(),
            used.clone().and(col("amount").eq(lit(0.0))),
            lit(Check::ZeroAmount.code()),
        ),
        tag(
            checked,
            used.and(future),
            lit(Check::FutureTimestamp.code()),
        ),
    ];
    // The example is the smallest row by (customer_id, ts, amount): the same row whatever the
    // order of the rows or their split into customer buckets.
    let mut aggs = vec![len().cast(DataType::Int64).alias("rows")];
    let order = SortMultipleOptions::default()
        .with_nulls_last(false)
        .with_maintain_order(true);
    for c in EXAMPLE_COLUMNS {
        if c != "order_id" || has_order_id {
            aggs.push(
                col(c)
                    .sort_by(
                        [col("customer_id"), col("ts"), col("amount")],
                        order.clone(),
                    )
                    .first()
                    .alias(c),
            );
        }
    }
    Ok(concat(parts, UnionArgs::default())?
        .group_by([col("day"), col("check")])
        .agg(aggs))
}

/// One row of `data_quality`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckCount {
    /// The check's name ([`Check::as_str`]), or an info row's: `rows_read`, `rows_in_window`,
    /// `rows_used`, `empty_file_skipped`.
    pub check: String,
    /// Rows the check found, or the count the info row gives (0 for `empty_file_skipped`).
    pub rows: i64,
    /// What happens to those rows.
    pub action: Action,
    /// One row the check found (`customer_id=C1, timestamp=..., amount=...`), or the skipped
    /// file; `None` when there is none.
    pub example: Option<String>,
}

/// The data quality of one as-of date: what `data_quality` holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QualityReport {
    /// Rows in the source files (all dates; the window is pushed into the scan, so most of
    /// them need not be decoded). None when a file's row count is unknown.
    pub rows_read: Option<i64>,
    /// Rows in the date's window, rows with a null timestamp included.
    pub rows_in_window: i64,
    /// One entry per check, rejecting checks first, in [`Check`] order.
    pub checks: Vec<(Check, i64, Option<String>)>,
    /// Source files skipped because they hold zero bytes.
    pub empty_files: Vec<String>,
}

fn in_window(day: Option<i32>, start: Option<i32>, end: i32) -> bool {
    match day {
        None => true,
        Some(d) => d <= end && start.is_none_or(|s| d >= s),
    }
}

impl QualityReport {
    /// Sum the per-day tables of [`per_day`] and [`flagged`] over the window `[start, end]`
    /// (start None = unbounded).
    pub(crate) fn for_window(
        per_day: &DataFrame,
        flagged: &DataFrame,
        start: Option<i32>,
        end: i32,
    ) -> PolarsResult<QualityReport> {
        let days = per_day.column("day")?.cast(&DataType::Int32)?;
        let days = days.i32()?;
        let rows = per_day.column("rows")?.i64()?;
        let rows_in_window = days
            .iter()
            .zip(rows.iter())
            .filter(|(d, _)| in_window(*d, start, end))
            .map(|(_, r)| r.unwrap_or(0))
            .sum();
        let fdays = flagged.column("day")?.cast(&DataType::Int32)?;
        let fdays = fdays.i32()?;
        let codes = flagged.column("check")?.cast(&DataType::Int32)?;
        let codes = codes.i32()?;
        let frows = flagged.column("rows")?.i64()?;
        // Per check: rows, and the example: the row of the earliest day (null timestamps
        // first), then of the smallest customer id (each day's candidate is its smallest row),
        // so that it does not depend on the order of the rows or on the buckets.
        type Found = (i64, Option<(Option<i32>, Option<String>, String)>);
        let ids = flagged.column("customer_id")?.str()?;
        let mut counts: std::collections::BTreeMap<Check, Found> = Check::REJECTING
            .into_iter()
            .chain(Check::NOTABLE)
            .map(|c| (c, (0, None)))
            .collect();
        for i in 0..flagged.height() {
            let day = fdays.get(i);
            if !in_window(day, start, end) {
                continue;
            }
            let Some(check) = codes.get(i).and_then(Check::from_code) else {
                continue;
            };
            let entry = counts.get_mut(&check).expect("every check has an entry");
            entry.0 += frows.get(i).unwrap_or(0);
            let id = ids.get(i).map(str::to_string);
            let text = render_example(flagged, i)?;
            if entry
                .1
                .as_ref()
                .is_none_or(|(d, c, t)| (day, &id, &text) < (*d, c, t))
            {
                entry.1 = Some((day, id, text));
            }
        }
        let checks = counts
            .into_iter()
            .map(|(c, (n, ex))| (c, n, ex.map(|(_, _, t)| t)))
            .collect();
        Ok(QualityReport {
            rows_read: None,
            rows_in_window,
            checks,
            empty_files: Vec::new(),
        })
    }

    /// Rows rejected by any check.
    pub(crate) fn rejected(&self) -> i64 {
        self.checks
            .iter()
            .filter(|(c, _, _)| c.action() == Action::Rejected)
            .map(|(_, n, _)| n)
            .sum()
    }

    /// Rows that go into the daily table: in the window and not rejected.
    pub(crate) fn rows_used(&self) -> i64 {
        self.rows_in_window - self.rejected()
    }

    /// Rejected rows as a share of the rows in the window (0 for an empty window).
    pub(crate) fn rejected_share(&self) -> f64 {
        if self.rows_in_window == 0 {
            0.0
        } else {
            self.rejected() as f64 / self.rows_in_window as f64
        }
    }

    /// `12 null_customer_id, 4 non_finite_amount` (rejecting checks with rows only).
    pub(crate) fn rejected_text(&self) -> String {
        self.checks
            .iter()
            .filter(|(c, n, _)| c.action() == Action::Rejected && *n > 0)
            .map(|(c, n, _)| format!("{n} {}", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Fail when the rejected share is above `max_share`.
    pub(crate) fn check_threshold(&self, max_share: f64) -> Result<(), QualityError> {
        let share = self.rejected_share();
        if share > max_share {
            return Err(QualityError::TooManyRejected {
                rejected: self.rejected(),
                rows: self.rows_in_window,
                share,
                max_share,
                detail: self.rejected_text(),
            });
        }
        Ok(())
    }

    /// The rows of `data_quality`, in their stable order.
    pub(crate) fn rows(&self) -> Vec<CheckCount> {
        let info = |check: &str, rows: i64, example: Option<String>| CheckCount {
            check: check.into(),
            rows,
            action: Action::Info,
            example,
        };
        let mut out = Vec::new();
        if let Some(r) = self.rows_read {
            out.push(info("rows_read", r, None));
        }
        out.push(info("rows_in_window", self.rows_in_window, None));
        out.push(info("rows_used", self.rows_used(), None));
        for (c, n, ex) in &self.checks {
            out.push(CheckCount {
                check: c.as_str().into(),
                rows: *n,
                action: c.action(),
                example: ex.clone(),
            });
        }
        for f in &self.empty_files {
            out.push(info("empty_file_skipped", 0, Some(f.clone())));
        }
        out
    }

    /// The `data_quality` table: `check`, `rows`, `share` (of the rows in the window), `action`,
    /// `example`.
    pub(crate) fn table(&self) -> PolarsResult<DataFrame> {
        let rows = self.rows();
        let total = self.rows_in_window;
        df!(
            "check" => rows.iter().map(|r| r.check.clone()).collect::<Vec<_>>(),
            "rows" => rows.iter().map(|r| r.rows).collect::<Vec<_>>(),
            "share" => rows
                .iter()
                .map(|r| (total > 0 && r.check != "rows_read").then(|| r.rows as f64 / total as f64))
                .collect::<Vec<_>>(),
            "action" => rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
            "example" => rows.iter().map(|r| r.example.clone()).collect::<Vec<_>>(),
        )
    }
}

/// `customer_id=C1, ts=2024-01-01 10:00:00, amount=NaN` from row `i` of a [`flagged`] frame.
fn render_example(flagged: &DataFrame, i: usize) -> PolarsResult<String> {
    let mut parts = Vec::new();
    for c in EXAMPLE_COLUMNS {
        let Ok(column) = flagged.column(c) else {
            continue;
        };
        let name = if c == "ts" { "timestamp" } else { c };
        let v = column.get(i)?;
        let text = match v {
            AnyValue::Null => "null".to_string(),
            AnyValue::String(s) => s.to_string(),
            AnyValue::StringOwned(s) => s.to_string(),
            // polars' Display panics on dates outside chrono's range: render those by hand.
            AnyValue::Date(d) => chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)
                .map(|d| d.to_string())
                .unwrap_or_else(|| format!("{d} days from 1970-01-01 (out of range)")),
            AnyValue::Datetime(v, unit, _) | AnyValue::DatetimeOwned(v, unit, _) => {
                let (secs, nanos) = match unit {
                    TimeUnit::Nanoseconds => {
                        (v.div_euclid(1_000_000_000), v.rem_euclid(1_000_000_000))
                    }
                    TimeUnit::Microseconds => {
                        (v.div_euclid(1_000_000), v.rem_euclid(1_000_000) * 1_000)
                    }
                    TimeUnit::Milliseconds => {
                        (v.div_euclid(1_000), v.rem_euclid(1_000) * 1_000_000)
                    }
                };
                chrono::DateTime::from_timestamp(secs, nanos as u32)
                    .map(|t| t.naive_utc().to_string())
                    .unwrap_or_else(|| format!("{v} {unit:?} from 1970-01-01 (out of range)"))
            }
            other => other.to_string(),
        };
        parts.push(format!("{name}={text}"));
    }
    Ok(parts.join(", "))
}

/// The `quarantine` table from collected rejected rows: their canonical columns (`ts` renamed
/// `timestamp`, in the source's own type) and `reason` as its stable name.
pub(crate) fn quarantine_table(rejected: DataFrame) -> PolarsResult<DataFrame> {
    let names: Vec<String> = [
        "customer_id",
        "ts",
        "amount",
        "order_id",
        "quantity",
        "category",
        "region",
        "industry",
        "channel",
    ]
    .iter()
    .filter(|c| rejected.column(c).is_ok())
    .map(|c| c.to_string())
    .collect();
    let reason = rejected.column("reason")?.cast(&DataType::Int32)?;
    let reason: StringChunked = reason
        .i32()?
        .iter()
        .map(|c| c.and_then(Check::from_code).map(Check::as_str))
        .collect();
    let mut df = rejected.select(names)?;
    if df.column("ts").is_ok() {
        df.rename("ts", "timestamp".into())?;
    }
    df.with_column(
        reason
            .into_series()
            .with_name("reason".into())
            .into_column(),
    )?;
    Ok(df)
}

/// The newest day in `days` (sorted ascending) on or before `as_of_day`.
pub(crate) fn newest_on_or_before(days: &[i32], as_of_day: i32) -> Option<i32> {
    let k = days.partition_point(|&d| d <= as_of_day);
    k.checked_sub(1).map(|i| days[i])
}

/// Fail when the newest transaction on or before `as_of` (from `days`, the sorted days with
/// data) is more than `max_days` older than `as_of`.
pub(crate) fn check_fresh(
    days: &[i32],
    as_of: NaiveDate,
    max_days: i64,
) -> Result<(), QualityError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let as_of_day = (as_of - epoch).num_days();
    let newest = newest_on_or_before(
        days,
        as_of_day.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
    );
    let lag = newest.map(|n| as_of_day - n as i64);
    if lag.is_none_or(|l| l > max_days) {
        return Err(QualityError::Stale {
            as_of,
            newest: newest.and_then(|n| epoch.checked_add_signed(chrono::Duration::days(n as i64))),
            lag,
            max_days,
        });
    }
    Ok(())
}

/// A date whose input is too dirty to publish, stale, or a sum that overflows.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// The newest transaction on or before the as-of date is more than
    /// `quality.max_staleness_days` older than it, or there is none: the source has not landed.
    #[error("{}; the source has not landed for as_of {as_of}: wait for it and retry, or raise quality.max_staleness_days (now {max_days}) for a source that is not updated daily", match (newest, lag) { (Some(n), Some(l)) => format!("the newest transaction on or before {as_of} is from {n}, {l} days earlier"), _ => format!("no transaction on or before {as_of}") })]
    Stale {
        /// The as-of date being computed.
        as_of: NaiveDate,
        /// The day of the newest transaction on or before `as_of`; `None` when there is none.
        newest: Option<NaiveDate>,
        /// Days from `newest` to `as_of`; `None` when there is no such transaction.
        lag: Option<i64>,
        /// The allowed lag in days: `quality.max_staleness_days`.
        max_days: i64,
    },
    /// The share of rejected rows in the date's window is above `quality.max_rejected_share`.
    #[error("{rejected} of {rows} rows in the window rejected ({:.2}%, above quality.max_rejected_share = {max_share}): {detail}; fix the source, or raise quality.max_rejected_share in the job file to accept it", share * 100.0)]
    TooManyRejected {
        /// Rows rejected by any check.
        rejected: i64,
        /// Rows in the date's window, rows with a null timestamp included.
        rows: i64,
        /// `rejected / rows`, between 0 and 1.
        share: f64,
        /// The threshold: `quality.max_rejected_share`.
        max_share: f64,
        /// Rejected rows per check, e.g. `12 null_customer_id, 4 non_finite_amount`.
        detail: String,
    },
    /// A customer's sum of finite amounts is not finite (beyond ±1.8e308): corrupt amounts in the
    /// source.
    #[error("{column} of customer {customer:?} overflows to {value} (finite amounts whose sum exceeds ±1.8e308); check the source's amount column for corrupt values")]
    Overflow {
        /// The customer's id.
        customer: String,
        /// The customer-summary column that overflowed (e.g. `total_amount`, `monetary`).
        column: String,
        /// The non-finite value it reached (`inf`, `-inf` or NaN).
        value: f64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked() -> LazyFrame {
        df!(
            "customer_id" => [Some("a"), None, Some("b"), Some("c"), Some("d"), Some("e"), Some("f"), Some("g")],
            "day" => [Some(10), Some(10), None, Some(-5), Some(11), Some(12), Some(12), Some(30)],
            "ts" => [Some(10i64), Some(10), None, Some(-5), Some(11), Some(12), Some(12), Some(30)],
            "amount" => [Some(1.0), Some(2.0), Some(3.0), Some(4.0), None, Some(f64::NAN), Some(-2.0), Some(0.0)],
            "future" => [false, false, false, false, false, false, false, true],
        )
        .unwrap()
        .lazy()
        .with_column(reason_expr(0, None))
    }

    #[test]
    fn reasons_and_counts_by_hand() {
        let lf = checked();
        let reasons = lf.clone().collect().unwrap();
        let codes: Vec<i32> = reasons
            .column("reason")
            .unwrap()
            .i32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 0, 0]);
        let pd = per_day(lf.clone()).collect().unwrap();
        let fl = flagged(lf, false).unwrap().collect().unwrap();
        // Window [0, 20]: days 10, 10, 11, 12, 12 and the null day: 6 rows; day -5 and 30 are out.
        let q = QualityReport::for_window(&pd, &fl, Some(0), 20).unwrap();
        assert_eq!(q.rows_in_window, 6);
        let n = |c: Check| q.checks.iter().find(|x| x.0 == c).unwrap().1;
        assert_eq!(n(Check::NullCustomerId), 1);
        assert_eq!(n(Check::NullTimestamp), 1);
        assert_eq!(n(Check::BeforeMinDate), 0, "day -5 is outside the window");
        assert_eq!(n(Check::NullAmount), 1);
        assert_eq!(n(Check::NonFiniteAmount), 1);
        assert_eq!(n(Check::NegativeAmount), 1);
        assert_eq!(n(Check::ZeroAmount), 0);
        assert_eq!(q.rejected(), 4);
        assert_eq!(q.rows_used(), 2);
        assert!((q.rejected_share() - 4.0 / 6.0).abs() < 1e-12);
        assert!(q.check_threshold(0.5).is_err());
        assert!(q.check_threshold(0.7).is_ok());
        let ex = &q
            .checks
            .iter()
            .find(|x| x.0 == Check::NonFiniteAmount)
            .unwrap()
            .2;
        assert_eq!(
            ex.as_deref(),
            Some("customer_id=e, timestamp=12, amount=NaN")
        );
        // Unbounded window: the -5 row is in and before min_date; day 30 is zero and future.
        let q = QualityReport::for_window(&pd, &fl, None, 40).unwrap();
        assert_eq!(q.rows_in_window, 8);
        assert_eq!(n_of(&q, Check::BeforeMinDate), 1);
        assert_eq!(n_of(&q, Check::ZeroAmount), 1);
        assert_eq!(n_of(&q, Check::FutureTimestamp), 1);
        let t = q.table().unwrap();
        assert_eq!(t.height(), 2 + 9, "rows_read is absent when unknown");
        assert_eq!(
            t.column("check").unwrap().str().unwrap().get(0),
            Some("rows_in_window")
        );
    }

    fn n_of(q: &QualityReport, c: Check) -> i64 {
        q.checks.iter().find(|x| x.0 == c).unwrap().1
    }

    #[test]
    fn quarantine_names_reasons() {
        let rejected = checked()
            .filter(col("reason").neq(lit(0i32)))
            .collect()
            .unwrap();
        let q = quarantine_table(rejected).unwrap();
        let reasons: Vec<&str> = q
            .column("reason")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            reasons,
            [
                "null_customer_id",
                "null_timestamp",
                "before_min_date",
                "null_amount",
                "non_finite_amount"
            ]
        );
        assert!(q.column("timestamp").is_ok());
    }

    #[test]
    fn freshness() {
        let day = |s: &str| {
            (NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
                - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
            .num_days() as i32
        };
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let days = [day("2024-01-01"), day("2024-01-10"), day("2024-02-01")];
        assert_eq!(newest_on_or_before(&days, day("2024-01-31")), Some(days[1]));
        assert_eq!(newest_on_or_before(&days, day("2023-12-31")), None);
        assert!(check_fresh(&days, d("2024-01-12"), 2).is_ok());
        let e = check_fresh(&days, d("2024-01-13"), 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "the newest transaction on or before 2024-01-13 is from 2024-01-10, 3 days earlier"
            ),
            "{e}"
        );
        assert!(e.contains("quality.max_staleness_days"), "{e}");
        assert!(check_fresh(&days, d("2023-06-01"), 2)
            .unwrap_err()
            .to_string()
            .starts_with("no transaction on or before 2023-06-01"));
        assert!(check_fresh(&days, d("9999-12-31"), 2).is_err());
    }

    #[test]
    fn options_validate() {
        assert!(QualityOptions::default().validate().is_ok());
        let bad = QualityOptions {
            max_rejected_share: 1.5,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("max_rejected_share"));
        let bad = QualityOptions {
            min_date: "1970-13-01".into(),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("min_date"));
    }
}
