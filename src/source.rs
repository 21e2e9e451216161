//! The source scan: the only step that sees raw transaction rows.
//!
//! [`scan`] opens the transactions lazily (local or cloud, through polars' Parquet reader), checks
//! the mapped columns against the file schema, and returns a plan with the as-of / lookback window
//! applied to the *raw* timestamp column, compared with a literal of the column's own type, so
//! that polars pushes it into the Parquet scan: row groups (and files) whose statistics lie outside
//! the window are skipped. `tests/pushdown.rs` checks this on the optimized plan.
//!
//! The plan's output has canonical column names: `customer_id` (String), `day` (Int32, days since
//! 1970-01-01), `amount` (Float64) and, when mapped, `order_id`, `quantity`, `category`, `region`,
//! `industry`, `channel`. Rows with a null customer id or timestamp are dropped.

use crate::job::{ColumnsFile, Job, StorageOptions};
use crate::storage;
use chrono::NaiveDate;
use polars::prelude::*;

/// A problem with the input data, naming the URI, the column and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{uri}: cannot read Parquet: {source}")]
    Read { uri: String, source: PolarsError },
    #[error("{uri}: column {column:?} ({key}) not found{hint}; available columns: {available}")]
    MissingColumn {
        uri: String,
        key: String,
        column: String,
        hint: String,
        available: String,
    },
    #[error("{uri}: column {column:?} ({key}) has type {found}, expected {expected}")]
    WrongType {
        uri: String,
        key: String,
        column: String,
        found: String,
        expected: String,
    },
    #[error("{uri}: no transactions in the window {window}; check as_of / lookback_days, or that the source holds data for these dates")]
    EmptyWindow { uri: String, window: String },
}

/// One input file, for manifests and resumability.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct InputFile {
    pub uri: String,
    pub bytes: Option<u64>,
    /// Last modification time (local files), seconds since 1970-01-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<i64>,
    /// Entity tag (object stores): changes when the object is rewritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
}

/// A lazy, windowed, canonically named transaction scan.
pub struct Scan {
    pub uri: String,
    pub lf: LazyFrame,
}

/// Absolute form of a source URI as polars expects it.
pub fn polars_uri(uri: &str) -> String {
    if storage::is_local(uri) {
        storage::local_path(uri).display().to_string()
    } else {
        uri.to_string()
    }
}

/// Open a Parquet dataset lazily.
pub fn open_parquet(
    uri: &str,
    opts: &StorageOptions,
    hive: bool,
) -> Result<LazyFrame, SourceError> {
    let puri = polars_uri(uri);
    let read = |source| SourceError::Read {
        uri: uri.to_string(),
        source,
    };
    let args = ScanArgsParquet {
        cloud_options: storage::polars_cloud_options(uri, opts).map_err(read)?,
        hive_options: HiveOptions {
            enabled: Some(hive),
            ..Default::default()
        },
        ..Default::default()
    };
    LazyFrame::scan_parquet(PlRefPath::new(puri.as_str()), args).map_err(read)
}

/// The files a source URI expands to (after globbing), with sizes where cheap to get.
pub fn list_input_files(uri: &str, opts: &StorageOptions) -> Result<Vec<InputFile>, SourceError> {
    let read = |source| SourceError::Read {
        uri: uri.to_string(),
        source,
    };
    let puri = polars_uri(uri);
    let mut cloud = storage::polars_cloud_options(uri, opts).map_err(read)?;
    let paths = storage::runtime()
        .block_on(polars::io::path_utils::expand_paths(
            &[PlRefPath::new(puri.as_str())],
            true,
            &[],
            &mut cloud,
        ))
        .map_err(read)?;
    paths
        .iter()
        .map(|p| {
            let s = p.as_str().to_string();
            if !storage::is_local(&s) {
                let (bytes, e_tag) =
                    storage::object_meta(&s, opts).map_err(|e| SourceError::Read {
                        uri: s.clone(),
                        source: PolarsError::IO {
                            error: std::sync::Arc::new(std::io::Error::other(e.to_string())),
                            msg: None,
                        },
                    })?;
                return Ok(InputFile {
                    uri: s,
                    bytes: Some(bytes),
                    modified: None,
                    e_tag,
                });
            }
            let meta = if storage::is_local(&s) {
                std::fs::metadata(&s).ok()
            } else {
                None
            };
            Ok(InputFile {
                uri: s,
                bytes: meta.as_ref().map(|m| m.len()),
                modified: meta
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64),
                e_tag: None,
            })
        })
        .collect()
}

/// Every input of a job: the source files, then the `[attributes]`, satisfaction and
/// interactions tables. Their listing (with sizes and modification times or ETags) decides
/// whether a backfill date is up to date.
pub fn job_input_files(job: &Job) -> Result<Vec<InputFile>, SourceError> {
    let mut files = list_input_files(job.source.uri.get_ref(), &job.source.storage)?;
    if let Some(a) = &job.attributes {
        files.extend(list_input_files(a.uri.get_ref(), &a.storage)?);
    }
    let r = &job.behaviour.relationship;
    for x in [&r.satisfaction, &r.interactions].into_iter().flatten() {
        files.extend(list_input_files(&x.uri, &x.storage)?);
    }
    Ok(files)
}

/// Edit distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Check that `column` exists in `schema`; return its type.
pub fn require_column(
    uri: &str,
    schema: &Schema,
    key: &str,
    column: &str,
) -> Result<DataType, SourceError> {
    if let Some(dt) = schema.get(column) {
        return Ok(dt.clone());
    }
    let names: Vec<&str> = schema.iter_names().map(|s| s.as_str()).collect();
    let best = names
        .iter()
        .map(|n| (distance(&n.to_lowercase(), &column.to_lowercase()), *n))
        .min();
    let hint = match best {
        Some((d, n)) if d <= 3 => format!(" (did you mean {n:?}?)"),
        _ => String::new(),
    };
    Err(SourceError::MissingColumn {
        uri: uri.to_string(),
        key: key.to_string(),
        column: column.to_string(),
        hint,
        available: names.join(", "),
    })
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_primitive_numeric() || matches!(dt, DataType::Decimal(..))
}

/// Epoch day of a date.
pub fn epoch_day(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

/// A literal of the timestamp column's own type at 00:00 of `day` (for pushdown).
fn time_literal(dt: &DataType, day: NaiveDate) -> Expr {
    let days = epoch_day(day) as i64;
    match dt {
        DataType::Datetime(unit, tz) => {
            let per_day = match unit {
                TimeUnit::Nanoseconds => 86_400_000_000_000i64,
                TimeUnit::Microseconds => 86_400_000_000,
                TimeUnit::Milliseconds => 86_400_000,
            };
            lit(days * per_day).cast(DataType::Datetime(*unit, tz.clone()))
        }
        _ => lit(days as i32).cast(DataType::Date),
    }
}

/// The `(first day, as_of)` window as text, for messages.
pub fn window_text(job: &Job) -> String {
    match job.window_start() {
        Some(s) => format!("{s}..={}", job.as_of),
        None => format!("..={}", job.as_of),
    }
}

/// Open the job's transactions: checked, windowed, canonically named.
pub fn scan(job: &Job) -> Result<Scan, SourceError> {
    scan_window(job, job.window_start(), job.as_of)
}

/// Like [`scan`] with an explicit inclusive window `[start, end]` (start `None` = unbounded).
pub fn scan_window(
    job: &Job,
    start: Option<NaiveDate>,
    end: NaiveDate,
) -> Result<Scan, SourceError> {
    let uri = job.source.uri.get_ref().clone();
    let lf = open_parquet(&uri, &job.source.storage, job.source.hive_partitioning)?;
    let schema = lf
        .clone()
        .collect_schema()
        .map_err(|source| SourceError::Read {
            uri: uri.clone(),
            source,
        })?;
    let c: &ColumnsFile = &job.columns;
    require_column(&uri, &schema, "columns.customer_id", &c.customer_id)?;
    let ts_type = require_column(&uri, &schema, "columns.timestamp", &c.timestamp)?;
    if !matches!(ts_type, DataType::Date | DataType::Datetime(..)) {
        return Err(SourceError::WrongType {
            uri,
            key: "columns.timestamp".into(),
            column: c.timestamp.clone(),
            found: ts_type.to_string(),
            expected: "Date or Datetime (store the column as a Parquet DATE or TIMESTAMP)".into(),
        });
    }
    let mut numeric = vec![("columns.amount", &c.amount)];
    if let Some(q) = &c.quantity {
        numeric.push(("columns.quantity", q));
    }
    for (key, column) in numeric {
        let dt = require_column(&uri, &schema, key, column)?;
        if !is_numeric(&dt) {
            return Err(SourceError::WrongType {
                uri,
                key: key.into(),
                column: column.clone(),
                found: dt.to_string(),
                expected: "a numeric type (integer, float or decimal)".into(),
            });
        }
    }
    let ts = col(c.timestamp.as_str());
    let mut pred = ts
        .clone()
        .lt(time_literal(&ts_type, end + chrono::Duration::days(1)));
    if let Some(s) = start {
        pred = pred.and(ts.clone().gt_eq(time_literal(&ts_type, s)));
    }
    let mut select = vec![
        col(c.customer_id.as_str())
            .cast(DataType::String)
            .alias("customer_id"),
        ts.cast(DataType::Date).cast(DataType::Int32).alias("day"),
        // NaN amounts are treated as missing (null), so they do not turn totals into NaN.
        col(c.amount.as_str())
            .cast(DataType::Float64)
            .fill_nan(lit(NULL).cast(DataType::Float64))
            .alias("amount"),
    ];
    let optional = [
        ("order_id", &c.order_id, DataType::String),
        ("quantity", &c.quantity, DataType::Float64),
        ("category", &c.category, DataType::String),
        ("region", &c.region, DataType::String),
        ("industry", &c.industry, DataType::String),
        ("channel", &c.channel, DataType::String),
    ];
    for (key, column, dt) in optional {
        if let Some(column) = column {
            require_column(&uri, &schema, &format!("columns.{key}"), column)?;
            select.push(col(column.as_str()).cast(dt).alias(key));
        }
    }
    let lf = lf.filter(pred).select(select).filter(
        col("customer_id")
            .is_not_null()
            .and(col("day").is_not_null()),
    );
    Ok(Scan { uri, lf })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean() {
        let schema = Schema::from_iter([
            Field::new("customer_id".into(), DataType::String),
            Field::new("order_date".into(), DataType::Date),
        ]);
        let e = require_column("x.parquet", &schema, "columns.timestamp", "orderdate").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.parquet: column \"orderdate\" (columns.timestamp) not found (did you mean \"order_date\"?); available columns: customer_id, order_date"
        );
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn epoch_days() {
        assert_eq!(epoch_day(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
        assert_eq!(
            epoch_day(NaiveDate::from_ymd_opt(1997, 1, 1).unwrap()),
            9862
        );
    }
}
