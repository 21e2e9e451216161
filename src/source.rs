//! The source scan: the only step that sees raw transaction rows.
//!
//! [`scan`] opens the transactions lazily (local or cloud, through polars' Parquet reader), checks
//! the mapped columns against the file schema, and returns a plan with the as-of / lookback window
//! applied to the *raw* timestamp column, compared with a literal of the column's own type, so
//! that polars pushes it into the Parquet scan: row groups (and files) whose statistics lie outside
//! the window are skipped. `tests/pushdown.rs` checks this on the optimized plan.
//!
//! The plan's output has canonical column names: `customer_id` (String), `ts` (the raw
//! timestamp), `day` (Int32, days since 1970-01-01 of the purchase's calendar day in the job's
//! business time zone `columns.timezone`), `amount` (Float64) and, when mapped, `order_id`,
//! `quantity`, `category`, `region`, `industry`, `channel`, plus the row checks' `reason`
//! (`crate::quality`). No row is dropped here: rejected rows are counted and quarantined by the
//! pipeline. Files are scanned from the listing (zero-byte files skipped and reported); when the
//! dataset cannot be read, [`diagnose_files`] names the file at fault.

use crate::job::{ColumnsFile, Job, StorageOptions};
use crate::storage;
use crate::storage::StorageError;
use chrono::NaiveDate;
use polars::prelude::*;

/// A problem with the input data, naming the URI, the column and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Polars could not open or read the Parquet data at `uri`.
    #[error("{uri}: cannot read Parquet: {source}")]
    Read {
        /// The file, dataset or side table that could not be read.
        uri: String,
        /// The polars error (an I/O error when the store itself failed).
        source: PolarsError,
    },
    /// A column the job file maps is not in the file's schema.
    #[error("{uri}: column {column:?} ({key}) not found{hint}; available columns: {available}")]
    MissingColumn {
        /// The file or dataset whose schema lacks the column.
        uri: String,
        /// The job-file key that maps the column, e.g. `columns.amount`.
        key: String,
        /// The column name the job file gives.
        column: String,
        /// ` (did you mean "x"?)` when a column has a close name, else empty.
        hint: String,
        /// The columns the schema has, comma-separated.
        available: String,
    },
    /// A mapped column has a type the job cannot use (e.g. a text amount).
    #[error("{uri}: column {column:?} ({key}) has type {found}, expected {expected}")]
    WrongType {
        /// The dataset whose schema has the wrong type.
        uri: String,
        /// The job-file key that maps the column, e.g. `columns.timestamp`.
        key: String,
        /// The column name the job file gives.
        column: String,
        /// The column's type in the schema.
        found: String,
        /// The types accepted, with a hint on how to store the column.
        expected: String,
    },
    /// No transaction is accepted in the date's window, so there is no customer to value.
    #[error("{uri}: no transactions in the window {window}; check as_of / lookback_days, or that the source holds data for these dates")]
    EmptyWindow {
        /// The source URI (`source.uri`).
        uri: String,
        /// The date's window: `start..=as_of`, or `..=as_of` without a lookback.
        window: String,
    },
    /// The source lists no Parquet file with data (none, or only zero-byte ones).
    #[error("{uri}: no non-empty Parquet files found; check source.uri")]
    NoFiles {
        /// The source URI (`source.uri`).
        uri: String,
    },
    /// A source file cannot be read as Parquet (found by [`diagnose_files`]).
    #[error("{file}: not a readable Parquet file ({reason}); remove or rewrite it")]
    CorruptFile {
        /// The file's URI.
        file: String,
        /// Polars' message, cleaned up ([`clean_polars_message`]).
        reason: String,
    },
    /// A mapped column has a type in one file that does not match its type in the first file.
    #[error("{file}: {message}; rewrite the file with the same type (numeric widenings such as int to float are accepted)")]
    SchemaDrift {
        /// The file's URI.
        file: String,
        /// Which column has which type in this file and in the first file.
        message: String,
    },
    /// Listing or inspecting the source through the object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl SourceError {
    /// Whether the store failed rather than the data: a retry may help (exit 4). Polars reports
    /// its own object-store and file-system failures as I/O errors; a missing file is not one
    /// of them (bad input, exit 3).
    pub fn is_storage(&self) -> bool {
        match self {
            SourceError::Read {
                source: PolarsError::IO { error, .. },
                ..
            } => error.kind() != std::io::ErrorKind::NotFound,
            SourceError::Storage(s) => !s.is_not_found(),
            _ => false,
        }
    }
}

pub use crate::storage::commit::InputFile;

/// A lazy, windowed, canonically named transaction scan with its row checks.
pub struct Scan {
    /// The source URI (`source.uri`).
    pub uri: String,
    /// Every row in the window (and every row with a null timestamp): `customer_id`, `ts` (the
    /// raw timestamp), `day`, `amount`, the mapped optional columns, and `future` (Boolean: the
    /// timestamp is after the run's wall-clock time). Row checks are added per customer bucket
    /// (`crate::quality::reason_expr`).
    pub lf: LazyFrame,
    /// The canonical names of the mapped columns (`customer_id`, `ts`, `amount`, then the
    /// optional ones present): what a duplicate row repeats.
    pub mapped: Vec<String>,
    /// Source files skipped because they hold zero bytes.
    pub empty_files: Vec<String>,
    /// The files scanned.
    pub files: Vec<InputFile>,
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
    let mut files = paths
        .iter()
        .map(|p| {
            let s = p.as_str().to_string();
            if !storage::is_local(&s) {
                let (bytes, e_tag) = storage::object_meta(&s, opts)?;
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
        .collect::<Result<Vec<_>, SourceError>>()?;
    // Polars' listing leaves zero-byte files out; list them so they are reported, not lost.
    let empty = storage::empty_files(uri, opts)?;
    files.extend(empty.into_iter().map(|uri| InputFile {
        uri,
        bytes: Some(0),
        modified: None,
        e_tag: None,
    }));
    Ok(files)
}

/// Every input of a job: the source files, then the `[attributes]`, satisfaction and
/// interactions tables. Their listing (with sizes and modification times or ETags) decides
/// whether a backfill date is up to date.
pub fn job_input_files(job: &Job) -> Result<Vec<InputFile>, SourceError> {
    let mut files = list_input_files(job.source.uri.get_ref(), &job.source.storage)?;
    files.extend(side_input_files(job)?);
    Ok(files)
}

/// The `[attributes]`, satisfaction and interactions tables' files.
pub fn side_input_files(job: &Job) -> Result<Vec<InputFile>, SourceError> {
    let mut files = Vec::new();
    if let Some(a) = &job.attributes {
        files.extend(list_input_files(a.uri.get_ref(), &a.storage)?);
    }
    let r = &job.behaviour.relationship;
    if let Some(x) = &r.satisfaction {
        files.extend(list_input_files(&x.uri, &x.storage)?);
    }
    if let Some(x) = &r.interactions {
        files.extend(list_input_files(&x.uri, &x.storage)?);
    }
    Ok(files)
}

/// Rows in the source `files`, from their Parquet metadata (no data is decoded). None when it
/// cannot be read (the scan itself reports unreadable files).
pub fn count_rows(job: &Job, files: &[InputFile]) -> Option<i64> {
    let refs: Vec<&InputFile> = files.iter().filter(|f| f.bytes != Some(0)).collect();
    let lf = open_files(job, job.source.uri.get_ref(), &refs).ok()?;
    let df = lf
        .select([len().cast(DataType::Int64).alias("n")])
        .collect()
        .ok()?;
    df.column("n").ok()?.i64().ok()?.get(0)
}

/// The per-customer side tables of a job, read once per run: `[attributes]` (customer_id and
/// the mapped attributes, the last row of a customer listed several times), satisfaction
/// (customer_id, `value`: the mean answer scaled to [0, 1]) and interactions (customer_id,
/// `value`: rows counted).
#[derive(Debug, Clone, Default)]
pub struct SideTables {
    /// `[attributes]`: `customer_id` and the mapped attributes (String); `None` without it.
    pub attributes: Option<DataFrame>,
    /// Mean satisfaction `value` per customer, clamped to [0, 1]; `None` when not configured.
    pub satisfaction: Option<DataFrame>,
    /// Interaction rows per customer (`value`, Float64); `None` when not configured.
    pub interactions: Option<DataFrame>,
}

fn read_err(uri: &str) -> impl Fn(PolarsError) -> SourceError + '_ {
    move |source| SourceError::Read {
        uri: uri.to_string(),
        source,
    }
}

/// Open a side table and check its columns (`(key, column)` pairs).
fn open_side(
    uri: &str,
    storage: &StorageOptions,
    cols: &[(String, &str)],
) -> Result<LazyFrame, SourceError> {
    let mut lf = open_parquet(uri, storage, true)?;
    let schema = lf.collect_schema().map_err(read_err(uri))?;
    for (key, c) in cols {
        require_column(uri, &schema, key, c)?;
    }
    Ok(lf)
}

fn attribute_columns(a: &crate::job::AttributesFile) -> Vec<(String, String, &str)> {
    [
        ("region", &a.region),
        ("industry", &a.industry),
        ("channel", &a.channel),
    ]
    .into_iter()
    .filter_map(|(name, c)| {
        c.as_deref()
            .map(|c| (format!("attributes.{name}"), name.to_string(), c))
    })
    .collect()
}

/// The side tables of a job opened lazily, their mapped columns checked against their schemas:
/// `[attributes]`, satisfaction, interactions.
type OpenedSides = (Option<LazyFrame>, Option<LazyFrame>, Option<LazyFrame>);

fn open_side_tables(job: &Job) -> Result<OpenedSides, SourceError> {
    let attributes = match &job.attributes {
        Some(a) => {
            let mut cols = vec![("attributes.customer_id".to_string(), a.customer_id.as_str())];
            cols.extend(attribute_columns(a).into_iter().map(|(k, _, c)| (k, c)));
            Some(open_side(a.uri.get_ref(), &a.storage, &cols)?)
        }
        None => None,
    };
    let r = &job.behaviour.relationship;
    let satisfaction = match &r.satisfaction {
        Some(x) => Some(open_side(
            &x.uri,
            &x.storage,
            &[
                (
                    "relationship.satisfaction.customer_id".into(),
                    x.customer_id.as_str(),
                ),
                ("relationship.satisfaction.column".into(), x.column.as_str()),
            ],
        )?),
        None => None,
    };
    let interactions = match &r.interactions {
        Some(x) => Some(open_side(
            &x.uri,
            &x.storage,
            &[(
                "relationship.interactions.customer_id".into(),
                x.customer_id.as_str(),
            )],
        )?),
        None => None,
    };
    Ok((attributes, satisfaction, interactions))
}

/// Check that the `[attributes]`, satisfaction and interactions tables have their mapped
/// columns, reading only their schemas (for `validate`).
pub fn check_side_tables(job: &Job) -> Result<(), SourceError> {
    open_side_tables(job).map(|_| ())
}

/// The attribute rows (`customer_id` first, then the attributes, whose `last` values are
/// kept) with one row per id, sorted by id: each date's merged summary, sorted the same way,
/// takes its attributes in one merge walk (`pipeline::join_attributes`). A table already in
/// that shape (as exports often are) skips the group-by and the sort.
fn attributes_by_id(rows: DataFrame, last: Vec<Expr>) -> PolarsResult<DataFrame> {
    if strictly_ascending(rows.column("customer_id")?) {
        return Ok(rows);
    }
    rows.lazy()
        .group_by_stable([col("customer_id")])
        .agg(last)
        .sort(["customer_id"], SortMultipleOptions::default())
        .collect()
}

/// Whether a string column has no null and every value is above the one before (bytewise,
/// as polars sorts strings).
fn strictly_ascending(ids: &Column) -> bool {
    let Ok(ids) = ids.str() else {
        return false;
    };
    if ids.null_count() > 0 {
        return false;
    }
    let mut prev: Option<&str> = None;
    for id in ids.iter().flatten() {
        if prev.is_some_and(|p| p.as_bytes() >= id.as_bytes()) {
            return false;
        }
        prev = Some(id);
    }
    true
}

/// Read the side tables once (see [`SideTables`]).
pub fn load_side_tables(job: &Job) -> Result<SideTables, SourceError> {
    let (attributes, satisfaction, interactions) = open_side_tables(job)?;
    let mut side = SideTables::default();
    if let (Some(a), Some(lf)) = (&job.attributes, attributes) {
        let mut select = vec![col(a.customer_id.as_str())
            .cast(DataType::String)
            .alias("customer_id")];
        let mut last = Vec::new();
        for (_, name, c) in attribute_columns(a) {
            select.push(col(c).cast(DataType::String).alias(name.as_str()));
            last.push(col(name.as_str()).last());
        }
        let read = read_err(a.uri.get_ref());
        let mut rows = lf.select(select).collect().map_err(&read)?;
        // One chunk per column: each date gathers the attributes by row number.
        rows.rechunk_mut_par();
        side.attributes = Some(attributes_by_id(rows, last).map_err(&read)?);
    }
    let r = &job.behaviour.relationship;
    if let (Some(x), Some(lf)) = (&r.satisfaction, satisfaction) {
        let c = x.column.as_str();
        let scaled = (col(c).cast(DataType::Float64) - lit(x.min)) / lit(x.max - x.min);
        side.satisfaction = Some(
            lf.select([
                col(x.customer_id.as_str())
                    .cast(DataType::String)
                    .alias("customer_id"),
                scaled.alias("value"),
            ])
            .group_by([col("customer_id")])
            .agg([col("value").mean().alias("value")])
            .with_column(
                when(col("value").lt(lit(0.0)))
                    .then(lit(0.0))
                    .when(col("value").gt(lit(1.0)))
                    .then(lit(1.0))
                    .otherwise(col("value"))
                    .alias("value"),
            )
            .collect()
            .map_err(read_err(&x.uri))?,
        );
    }
    if let (Some(x), Some(lf)) = (&r.interactions, interactions) {
        side.interactions = Some(
            lf.select([col(x.customer_id.as_str())
                .cast(DataType::String)
                .alias("customer_id")])
                .group_by([col("customer_id")])
                .agg([len().cast(DataType::Float64).alias("value")])
                .collect()
                .map_err(read_err(&x.uri))?,
        );
    }
    Ok(side)
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
        .map(|n| {
            (
                crate::text::edit_distance(&n.to_lowercase(), &column.to_lowercase()),
                *n,
            )
        })
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

/// The `(first day, as_of)` window as text, for messages.
pub fn window_text(job: &Job) -> String {
    match job.window_start() {
        Some(s) => format!("{s}..={}", job.as_of),
        None => format!("..={}", job.as_of),
    }
}

/// Open the job's transactions: checked, windowed, canonically named.
pub fn scan(job: &Job) -> Result<Scan, SourceError> {
    let files = list_input_files(job.source.uri.get_ref(), &job.source.storage)?;
    scan_files(job, &files, job.window_start(), job.as_of)
}

/// A literal of the timestamp column's own type at 00:00 of epoch day `days` (for pushdown).
/// Saturates instead of overflowing for dates that nanosecond timestamps cannot hold.
fn day_literal(dt: &DataType, days: i64) -> Expr {
    match dt {
        DataType::Datetime(unit, tz) => {
            let per_day = 86_400 * crate::local_day::per_second(*unit);
            let v = days
                .checked_mul(per_day)
                .unwrap_or(if days < 0 { i64::MIN } else { i64::MAX });
            lit(v).cast(DataType::Datetime(*unit, tz.clone()))
        }
        _ => lit(days.clamp(i32::MIN as i64, i32::MAX as i64) as i32).cast(DataType::Date),
    }
}

/// The run's wall-clock time as a literal of the timestamp column's type: the UTC instant for a
/// zone-aware column, the wall-clock time in `tz` for a naive one, today in `tz` for a date.
fn now_literal(dt: &DataType, tz: chrono_tz::Tz) -> Expr {
    let now = chrono::Utc::now();
    let local = now.with_timezone(&tz).naive_local();
    match dt {
        DataType::Datetime(unit, zone) => {
            let t = if zone.is_some() {
                now.naive_utc()
            } else {
                local
            };
            let t = t.and_utc();
            let v = match unit {
                TimeUnit::Nanoseconds => t.timestamp_nanos_opt().unwrap_or(i64::MAX),
                TimeUnit::Microseconds => t.timestamp_micros(),
                TimeUnit::Milliseconds => t.timestamp_millis(),
            };
            lit(v).cast(DataType::Datetime(*unit, zone.clone()))
        }
        _ => lit(epoch_day(local.date())).cast(DataType::Date),
    }
}

/// The business time zone of the job (`columns.timezone`, validated when the job is loaded).
pub fn business_tz(job: &Job) -> chrono_tz::Tz {
    job.columns
        .timezone
        .as_deref()
        .unwrap_or("UTC")
        .parse()
        .unwrap_or(chrono_tz::UTC)
}

/// Open the non-empty `files` of the source as one dataset. Numeric columns that widen
/// losslessly across files (int32 → int64, int → float) are read as their wider type; columns
/// that are not mapped may come and go.
pub fn open_files(job: &Job, uri: &str, files: &[&InputFile]) -> Result<LazyFrame, SourceError> {
    let read = |source| SourceError::Read {
        uri: uri.to_string(),
        source,
    };
    let first = files.first().ok_or_else(|| SourceError::NoFiles {
        uri: uri.to_string(),
    })?;
    // The first file's own schema (without Hive columns), widened where files may differ.
    let file_schema = open_parquet(&first.uri, &job.source.storage, false)?
        .collect_schema()
        .map_err(|source| SourceError::Read {
            uri: first.uri.clone(),
            source,
        })?;
    let c = &job.columns;
    let mut schema = (*file_schema).clone();
    for (column, float) in [
        (Some(&c.amount), true),
        (c.quantity.as_ref(), true),
        (Some(&c.customer_id), false),
        (c.order_id.as_ref(), false),
    ] {
        let Some(column) = column else { continue };
        if let Some(dt) = schema.get_mut(column.as_str()) {
            if dt.is_integer() || dt.is_float() {
                *dt = if float || dt.is_float() {
                    DataType::Float64
                } else if dt.is_signed_integer() {
                    DataType::Int64
                } else {
                    dt.clone()
                };
            }
        }
    }
    let sources = ScanSources::Paths(
        files
            .iter()
            .map(|f| PlRefPath::new(polars_uri(&f.uri).as_str()))
            .collect(),
    );
    let unified = UnifiedScanArgs {
        cloud_options: storage::polars_cloud_options(uri, &job.source.storage).map_err(read)?,
        hive_options: HiveOptions {
            enabled: Some(job.source.hive_partitioning),
            ..Default::default()
        },
        cache: true,
        glob: false,
        cast_columns_policy: CastColumnsPolicy {
            integer_upcast: true,
            integer_to_float_cast: true,
            float_upcast: true,
            datetime_milliseconds_upcast: true,
            datetime_microseconds_upcast: true,
            ..CastColumnsPolicy::ERROR_ON_MISMATCH
        },
        missing_columns_policy: MissingColumnsPolicy::Raise,
        extra_columns_policy: ExtraColumnsPolicy::Ignore,
        ..Default::default()
    };
    let options = ParquetOptions {
        schema: Some(std::sync::Arc::new(schema)),
        parallel: Default::default(),
        low_memory: false,
        use_statistics: true,
    };
    DslBuilder::scan_parquet(sources, options, unified)
        .map(|b| LazyFrame::from(b.build()))
        .map_err(read)
}

/// Open the job's transactions from its listed `files` for the inclusive window `[start, end]`
/// (start `None` = unbounded): canonical columns, the raw timestamp `ts` and the `future` flag.
/// Every row in the window is kept, rows that the checks of `crate::quality` will reject and
/// rows with a null timestamp included; zero-byte files are skipped and listed.
pub fn scan_files(
    job: &Job,
    files: &[InputFile],
    start: Option<NaiveDate>,
    end: NaiveDate,
) -> Result<Scan, SourceError> {
    let uri = job.source.uri.get_ref().clone();
    let (empty, used): (Vec<&InputFile>, Vec<&InputFile>) =
        files.iter().partition(|f| f.bytes == Some(0));
    let empty_files: Vec<String> = empty.iter().map(|f| f.uri.clone()).collect();
    for f in &empty_files {
        tracing::warn!(file = %f, "source file has zero bytes; skipped");
    }
    let lf = open_files(job, &uri, &used)?;
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
    let tz = business_tz(job);
    let ts = col(c.timestamp.as_str());
    // The local calendar day of each purchase in the business time zone. Naive timestamps and
    // dates are taken as already local.
    let (day, widen) = match &ts_type {
        // From a cache of each UTC hour's offset (`local_day`), not a zone lookup per value.
        DataType::Datetime(_, Some(_)) => (
            ts.clone().map(
                move |c| crate::local_day::local_days(&c, tz),
                |_, f| Ok(Field::new(f.name().clone(), DataType::Date)),
            ),
            1,
        ),
        _ => (ts.clone().cast(DataType::Date), 0),
    };
    // Pushed into the scan: bounds on the raw column (a day wider on each side for zone-aware
    // columns, whose local day is computed after the scan), or a null timestamp.
    let end_day = epoch_day(end) as i64;
    let mut pred = ts.clone().lt(day_literal(&ts_type, end_day + 1 + widen));
    if let Some(s) = start {
        pred = pred.and(
            ts.clone()
                .gt_eq(day_literal(&ts_type, epoch_day(s) as i64 - widen)),
        );
    }
    let pred = pred.or(ts.clone().is_null());
    let mut select = vec![
        col(c.customer_id.as_str())
            .cast(DataType::String)
            .alias("customer_id"),
        ts.clone().alias("ts"),
        day.cast(DataType::Int32).alias("day"),
        col(c.amount.as_str())
            .cast(DataType::Float64)
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
    let mut mapped_names: Vec<String> = ["customer_id", "ts", "amount"].map(String::from).into();
    for (key, column, dt) in optional {
        if let Some(column) = column {
            require_column(&uri, &schema, &format!("columns.{key}"), column)?;
            select.push(col(column.as_str()).cast(dt).alias(key));
            mapped_names.push(key.to_string());
        }
    }
    let mut exact = col("day").lt_eq(lit(end_day as i32));
    if let Some(s) = start {
        exact = exact.and(col("day").gt_eq(lit(epoch_day(s))));
    }
    select.push(ts.gt(now_literal(&ts_type, tz)).alias("future"));
    let lf = lf
        .filter(pred)
        .select(select)
        .filter(exact.or(col("day").is_null()));
    Ok(Scan {
        uri,
        lf,
        mapped: mapped_names,
        empty_files,
        files: used.into_iter().cloned().collect(),
    })
}

/// The days that hold at least one row of the scan (in the business time zone), ascending: what
/// the freshness check reads. Reads only the timestamp column of the window.
pub fn days_with_data(scan: &Scan) -> PolarsResult<Vec<i32>> {
    let df = scan
        .lf
        .clone()
        .select([col("day")])
        .drop_nulls(None)
        .unique(None, UniqueKeepStrategy::Any)
        .sort(["day"], SortMultipleOptions::default())
        .collect()?;
    Ok(df.column("day")?.i32()?.into_no_null_iter().collect())
}

/// Look at each source file alone and name the first one that cannot be read with the others:
/// a corrupt file, a mapped column missing, or a mapped column whose type differs from the
/// first file's beyond a lossless numeric widening. `None` when every file looks compatible.
pub fn diagnose_files(job: &Job, files: &[InputFile]) -> Option<SourceError> {
    let c = &job.columns;
    let mut mapped: Vec<(String, &String)> = vec![
        ("columns.customer_id".into(), &c.customer_id),
        ("columns.timestamp".into(), &c.timestamp),
        ("columns.amount".into(), &c.amount),
    ];
    for (k, v) in [
        ("order_id", &c.order_id),
        ("quantity", &c.quantity),
        ("category", &c.category),
        ("region", &c.region),
        ("industry", &c.industry),
        ("channel", &c.channel),
    ] {
        if let Some(v) = v {
            mapped.push((format!("columns.{k}"), v));
        }
    }
    let mut first: Option<(String, SchemaRef)> = None;
    for f in files.iter().filter(|f| f.bytes != Some(0)) {
        let schema = match open_parquet(&f.uri, &job.source.storage, false).and_then(|mut lf| {
            lf.collect_schema().map_err(|source| SourceError::Read {
                uri: f.uri.clone(),
                source,
            })
        }) {
            Ok(s) => s,
            Err(SourceError::Read { source, .. }) => {
                return Some(SourceError::CorruptFile {
                    file: f.uri.clone(),
                    reason: clean_polars_message(&source),
                })
            }
            Err(e) => return Some(e),
        };
        for (key, column) in &mapped {
            let Some(dt) = schema.get(column.as_str()) else {
                // A Hive partition column is not in the file itself.
                if job.source.hive_partitioning && f.uri.contains(&format!("/{column}=")) {
                    continue;
                }
                if let Err(e) = require_column(&f.uri, &schema, key, column) {
                    return Some(e);
                }
                continue;
            };
            if let Some((first_uri, first_schema)) = &first {
                if let Some(want) = first_schema.get(column.as_str()) {
                    let numeric = |d: &DataType| d.is_integer() || d.is_float();
                    let compatible = want == dt
                        || (numeric(want) && numeric(dt))
                        || matches!((want, dt), (DataType::Datetime(_, a), DataType::Datetime(_, b)) if a == b);
                    if !compatible {
                        return Some(SourceError::SchemaDrift {
                            file: f.uri.clone(),
                            message: format!(
                                "column {column:?} ({key}) has type {dt}, but {first_uri} has {want}"
                            ),
                        });
                    }
                }
            }
        }
        if first.is_none() {
            first = Some((f.uri.clone(), schema));
        }
    }
    None
}

/// A polars error message without hints that name Python options users cannot act on.
pub fn clean_polars_message(e: &PolarsError) -> String {
    let text = e.to_string();
    let mut out: Vec<&str> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty()
            || l.contains("cast_options")
            || l.starts_with("Hint")
            || l.starts_with("hint")
            || l.starts_with("This error occurred")
        {
            continue;
        }
        out.push(l);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_one_row_per_id_sorted_by_id() {
        let last = || vec![col("region").last()];
        // Already sorted and distinct (bytewise: "C10" < "C2"): kept as they are.
        let sorted =
            df!("customer_id" => ["C1", "C10", "C2"], "region" => ["n", "s", "e"]).unwrap();
        assert!(strictly_ascending(sorted.column("customer_id").unwrap()));
        let out = attributes_by_id(sorted.clone(), last()).unwrap();
        assert!(out.equals(&sorted));
        // Unsorted, with a repeated id (its last row wins) and a null id.
        let rows = df!(
            "customer_id" => [Some("C2"), Some("C1"), None, Some("C2")],
            "region" => ["e", "n", "x", "w"],
        )
        .unwrap();
        assert!(!strictly_ascending(rows.column("customer_id").unwrap()));
        let out = attributes_by_id(rows, last()).unwrap();
        let want = df!(
            "customer_id" => [None, Some("C1"), Some("C2")],
            "region" => ["x", "n", "w"],
        )
        .unwrap();
        assert!(out.equals_missing(&want), "{out}");
        // A repeat right after itself is not strictly ascending either.
        let repeat = df!("customer_id" => ["A", "A"]).unwrap();
        assert!(!strictly_ascending(repeat.column("customer_id").unwrap()));
    }

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
        assert_eq!(crate::text::edit_distance("kitten", "sitting"), 3);
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
