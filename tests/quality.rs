//! Data quality end to end: a copy of the B2B sample with injected faults of every class is
//! counted exactly (against the injection and against an independent DuckDB count), its clean
//! rows give exactly the clean run's tables, and a copy over the threshold publishes nothing.
//! Also: zone-aware timestamps bucketed in `columns.timezone`, schema drift and corrupt files
//! named by file, zero-byte files reported, overflow and out-of-range dates.

mod common;
use common::*;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn clean_b2b() -> DataFrame {
    let path = root().join("sample_data/b2b/transactions/part-00000.parquet");
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// The B2B job pointed at `tx` (a folder) with output `out`, attributes from the sample.
fn b2b_job(dir: &Path, tx: &str, extra: &str) -> String {
    let text = std::fs::read_to_string(root().join("jobs/b2b.toml")).unwrap();
    let text = text
        .replace(
            "uri = \"../sample_data/b2b/transactions/\"",
            &format!("uri = \"{tx}\""),
        )
        .replace(
            "uri = \"../sample_data/b2b/attributes.parquet\"",
            &format!(
                "uri = \"{}\"",
                root().join("sample_data/b2b/attributes.parquet").display()
            ),
        )
        .replace("uri = \"../out/b2b\"", "uri = \"out\"");
    let path = dir.join("job.toml");
    std::fs::write(&path, format!("{text}\n{extra}\n")).unwrap();
    path.display().to_string()
}

/// Rows `idx` of `df` with `f` applied to a copy.
fn copies(df: &DataFrame, idx: &[u32], f: impl Fn(DataFrame) -> DataFrame) -> DataFrame {
    let take = IdxCa::from_vec("i".into(), idx.to_vec());
    f(df.take(&take).unwrap())
}

fn with(df: DataFrame, column: &str, value: Column) -> DataFrame {
    let mut df = df;
    df.with_column(value.with_name(column.into())).unwrap();
    df
}

/// The injected faults, per reason: 10 null ids, 8 null timestamps, 6 null amounts, 4 NaN and
/// 4 infinite amounts, 25 lines loaded twice.
fn dirty_b2b(extra_nulls: usize) -> (DataFrame, BTreeMap<&'static str, i64>) {
    let clean = clean_b2b();
    let n = clean.height() as u32;
    let pick = |k: usize, salt: u32| -> Vec<u32> {
        (0..k as u32).map(|i| (i * 97 + salt * 13) % n).collect()
    };
    let ts_type = clean.column("order_date").unwrap().dtype().clone();
    let mut parts = vec![clean.clone()];
    let nulls = 10 + extra_nulls;
    parts.push(copies(&clean, &pick(nulls, 1), |d| {
        let h = d.height();
        with(
            d,
            "customer_id",
            Column::full_null("x".into(), h, &DataType::String),
        )
    }));
    parts.push(copies(&clean, &pick(8, 2), |d| {
        let h = d.height();
        with(d, "order_date", Column::full_null("x".into(), h, &ts_type))
    }));
    parts.push(copies(&clean, &pick(6, 3), |d| {
        let h = d.height();
        with(
            d,
            "amount",
            Column::full_null("x".into(), h, &DataType::Float64),
        )
    }));
    parts.push(copies(&clean, &pick(4, 4), |d| {
        let h = d.height();
        with(d, "amount", Column::new("x".into(), vec![f64::NAN; h]))
    }));
    parts.push(copies(&clean, &pick(4, 5), |d| {
        with(
            d,
            "amount",
            Column::new(
                "x".into(),
                [
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::INFINITY,
                    f64::INFINITY,
                ],
            ),
        )
    }));
    parts.push(copies(&clean, &pick(25, 6), |d| d));
    let mut out = parts.remove(0);
    for p in parts {
        out.vstack_mut(&p).unwrap();
    }
    let expected = BTreeMap::from([
        ("null_customer_id", nulls as i64),
        ("null_timestamp", 8),
        ("null_amount", 6),
        ("non_finite_amount", 8),
        ("duplicate_row", 25),
    ]);
    (out, expected)
}

fn dq_rows(out: &Path, as_of: &str) -> BTreeMap<String, (i64, String)> {
    let rows = read_rows(&partition(out, "data_quality", as_of).join("part-00000.parquet"));
    rows.iter()
        .map(|r| (s(r, "check"), (i(r, "rows"), s(r, "action"))))
        .collect()
}

fn data_files(out: &Path, tables: &[&str], as_of: &str) -> BTreeMap<String, Vec<u8>> {
    tables
        .iter()
        .map(|t| {
            let p = partition(out, t, as_of).join("part-00000.parquet");
            (
                t.to_string(),
                std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            )
        })
        .collect()
}

/// An independent count of the rejected rows of a Parquet file with DuckDB, in the documented
/// order of the checks (a row counts under its first failing check).
fn duckdb_counts(file: &Path) -> BTreeMap<String, i64> {
    let sql = format!(
        r#"
import duckdb, json
q = """
with t as (select *, row_number() over (
    partition by customer_id, order_date, amount, order_id, quantity, category, channel
    order by rn) as k
  from (select *, row_number() over () as rn from read_parquet('{file}')))
select
  count(*) filter (where customer_id is null) as null_customer_id,
  count(*) filter (where customer_id is not null and order_date is null) as null_timestamp,
  count(*) filter (where customer_id is not null and order_date is not null and amount is null) as null_amount,
  count(*) filter (where customer_id is not null and order_date is not null and amount is not null
                   and (isnan(amount) or isinf(amount))) as non_finite_amount,
  count(*) filter (where customer_id is not null and order_date is not null and amount is not null
                   and not isnan(amount) and not isinf(amount) and k > 1) as duplicate_row
from t
"""
r = duckdb.connect().execute(q).fetchone()
cols = ["null_customer_id", "null_timestamp", "null_amount", "non_finite_amount", "duplicate_row"]
print(json.dumps(dict(zip(cols, r))))
"#,
        file = file.display()
    );
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(py).arg("-c").arg(sql).output().unwrap();
    assert!(
        out.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const CUSTOMER_TABLES: &[&str] = &[
    "customer_features",
    "segment_summary",
    "churn_rates",
    "cohort_retention",
    "value_matrix",
    "model_diagnostics",
];

#[test]
fn dirty_copy_is_counted_quarantined_and_gives_the_clean_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The clean run.
    let clean_dir = d.join("clean");
    std::fs::create_dir_all(&clean_dir).unwrap();
    let job = b2b_job(
        &clean_dir,
        &root()
            .join("sample_data/b2b/transactions/")
            .display()
            .to_string(),
        "",
    );
    assert!(run_in(&clean_dir, &["run", &job]).status.success());
    // The dirty run.
    let dirty_dir = d.join("dirty");
    let (mut dirty, expected) = dirty_b2b(0);
    let file = dirty_dir.join("tx/part-00000.parquet");
    write_parquet(&mut dirty, &file);
    let job = b2b_job(&dirty_dir, "tx/", "");
    let out = run_in(&dirty_dir, &["run", &job]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rejected 57 of") && stderr.contains("25 duplicate_row"),
        "one warning line with the counts: {stderr}"
    );

    // Counts equal the injection and DuckDB's independent count.
    let dq = dq_rows(&dirty_dir.join("out"), "2024-12-31");
    for (check, n) in &expected {
        assert_eq!(dq[*check], (*n, "rejected".to_string()), "{check}");
    }
    let duck = duckdb_counts(&file);
    for (check, n) in &expected {
        assert_eq!(duck[*check], *n, "duckdb {check}");
    }
    let clean_rows = clean_b2b().height() as i64;
    let rejected: i64 = expected.values().sum();
    assert_eq!(dq["rows_read"].0, clean_rows + rejected);
    // Every injected row lies in the window (null timestamps included).
    assert_eq!(dq["rows_in_window"].0, dq["rows_used"].0 + rejected);
    let clean_dq = dq_rows(&clean_dir.join("out"), "2024-12-31");
    assert_eq!(dq["rows_used"].0, clean_dq["rows_used"].0);
    assert_eq!(clean_dq["rows_in_window"].0, clean_dq["rows_used"].0);
    assert_eq!(dq["before_min_date"].0, 0);

    // The quarantine holds exactly the rejected rows, with their reasons.
    let q = read_rows(
        &partition(&dirty_dir.join("out"), "quarantine", "2024-12-31").join("part-00000.parquet"),
    );
    let mut by_reason: BTreeMap<String, i64> = BTreeMap::new();
    for r in &q {
        *by_reason.entry(s(r, "reason")).or_default() += 1;
    }
    let expected_s: BTreeMap<String, i64> =
        expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(by_reason, expected_s);

    // The clean rows give exactly the clean run's tables.
    assert_eq!(
        data_files(&dirty_dir.join("out"), CUSTOMER_TABLES, "2024-12-31"),
        data_files(&clean_dir.join("out"), CUSTOMER_TABLES, "2024-12-31")
    );

    // Split into 6 customer buckets, the checks count and quarantine the same rows.
    let out = custval()
        .args(["run", &job, "--output", "bucketed"])
        .current_dir(&dirty_dir)
        .env("CUSTVAL_ROWS_PER_BUCKET", "1500")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = [
        "data_quality",
        "quarantine",
        "customer_features",
        "segment_summary",
    ];
    assert_eq!(
        data_files(&dirty_dir.join("bucketed"), &tables, "2024-12-31"),
        data_files(&dirty_dir.join("out"), &tables, "2024-12-31")
    );
}

#[test]
fn over_the_threshold_fails_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 10 + 80 null ids + 51 others ≈ 1.6% of 8,700 rows: above the default 1%.
    let (mut dirty, _) = dirty_b2b(80);
    write_parquet(&mut dirty, &d.join("tx/part-00000.parquet"));
    let job = b2b_job(d, "tx/", "");
    let out = run_in(d, &["run", &job]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("custval: error:"))
        .unwrap();
    assert!(line.contains("90 null_customer_id"), "{line}");
    assert!(line.contains("quality.max_rejected_share"), "{line}");
    for t in ["customer_features", "data_quality", "quarantine"] {
        assert!(
            !partition(&d.join("out"), t, "2024-12-31").exists(),
            "{t} must not be published"
        );
    }
    // Raising the threshold accepts the same load, and the counts stay exact.
    let job = b2b_job(
        d,
        "tx/",
        "[quality]\nmax_rejected_share = 0.05\nmax_quarantine_rows = 20",
    );
    assert!(run_in(d, &["run", &job]).status.success());
    let dq = dq_rows(&d.join("out"), "2024-12-31");
    assert_eq!(dq["null_customer_id"].0, 90);
    let q = read_rows(
        &partition(&d.join("out"), "quarantine", "2024-12-31").join("part-00000.parquet"),
    );
    assert_eq!(q.len(), 20, "the quarantine is capped");
}

fn us(s: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

/// The same instants as naive (UTC wall clock), UTC-aware and +08:00-aware columns.
fn tz_input(dir: &Path) {
    // Customer A buys at 23:30 UTC on 2024-03-10 and 2024-03-20; B at 12:00 UTC on 2024-03-15.
    let rows = [
        ("A", "2024-03-10 23:30", 10.0),
        ("A", "2024-03-20 23:30", 20.0),
        ("B", "2024-03-15 12:00", 5.0),
    ];
    let instants: Vec<i64> = rows.iter().map(|r| us(r.1)).collect();
    let ts = |tz: Option<&str>| {
        Series::new("t".into(), instants.clone())
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                TimeZone::opt_try_new(tz).unwrap(),
            ))
            .unwrap()
    };
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("cust".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        ts(None).with_name("naive".into()).into(),
        ts(Some("UTC")).with_name("utc".into()).into(),
        ts(Some("+08:00")).with_name("plus8".into()).into(),
        Column::new("amt".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
    ])
    .unwrap();
    write_parquet(&mut df, &dir.join("tx.parquet"));
}

fn first_last(dir: &Path, column: &str, tz: &str) -> Vec<(String, i32, i32)> {
    let job = format!(
        r#"
name = "tz"
as_of = "2024-03-31"
[source]
uri = "tx.parquet"
[columns]
customer_id = "cust"
timestamp = "{column}"
amount = "amt"
timezone = "{tz}"
[output]
uri = "out-{column}-{}"
tables = ["customer_features"]
[clv]
enabled = false
[quality]
max_staleness_days = 3650
"#,
        tz.replace('/', "_")
    );
    std::fs::write(dir.join("tz.toml"), job).unwrap();
    let out = run_in(dir, &["run", "tz.toml"]);
    assert!(out.status.success());
    let rows = read_rows(
        &partition(
            &dir.join(format!("out-{column}-{}", tz.replace('/', "_"))),
            "customer_features",
            "2024-03-31",
        )
        .join("part-00000.parquet"),
    );
    let mut v: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                s(r, "customer_id"),
                date(r, "first_purchase"),
                date(r, "last_purchase"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn zone_aware_timestamps_are_bucketed_in_the_business_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tz_input(d);
    let day = |s: &str| {
        (chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
            - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days() as i32
    };
    let utc_days = vec![
        ("A".to_string(), day("2024-03-10"), day("2024-03-20")),
        ("B".to_string(), day("2024-03-15"), day("2024-03-15")),
    ];
    let shanghai_days = vec![
        ("A".to_string(), day("2024-03-11"), day("2024-03-21")),
        ("B".to_string(), day("2024-03-15"), day("2024-03-15")),
    ];
    // Same instants, business zone UTC: every column gives the UTC days.
    for c in ["naive", "utc", "plus8"] {
        assert_eq!(first_last(d, c, "UTC"), utc_days, "{c} in UTC");
    }
    // Business zone Asia/Shanghai: 23:30 UTC is the next day there for zone-aware columns;
    // a naive column is taken as already local, so it does not shift.
    for c in ["utc", "plus8"] {
        assert_eq!(
            first_last(d, c, "Asia/Shanghai"),
            shanghai_days,
            "{c} in Shanghai"
        );
    }
    assert_eq!(first_last(d, "naive", "Asia/Shanghai"), utc_days);
}

fn small_tx(path: &Path, amount: Column, ts: &[&str]) {
    let n = ts.len();
    let t = Series::new("ts".into(), ts.iter().map(|s| us(s)).collect::<Vec<_>>())
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .unwrap();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new(
            "cust".into(),
            (0..n).map(|i| format!("c{}", i % 2)).collect::<Vec<_>>(),
        ),
        t.into(),
        amount.with_name("amt".into()),
    ])
    .unwrap();
    write_parquet(&mut df, path);
}

const SMALL_JOB: &str = r#"
name = "small"
as_of = "2024-03-31"
[source]
uri = "tx/"
[columns]
customer_id = "cust"
timestamp = "ts"
amount = "amt"
[output]
uri = "out"
[clv]
enabled = false
[quality]
max_rejected_share = 0.5
max_staleness_days = 3650
"#;

#[test]
fn files_are_named_when_they_drift_or_are_corrupt_and_widenings_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("job.toml"), SMALL_JOB).unwrap();
    let days = [
        "2024-03-01 10:00",
        "2024-03-02 10:00",
        "2024-03-05 10:00",
        "2024-03-09 10:00",
    ];
    // int amounts in the first file, float in the second: accepted.
    small_tx(
        &d.join("tx/a.parquet"),
        Column::new("a".into(), [1i32, 2, 3, 4]),
        &days,
    );
    small_tx(
        &d.join("tx/b.parquet"),
        Column::new("a".into(), [1.5f64, 2.5, 3.5, 4.5]),
        &days,
    );
    // a zero-byte file: skipped and reported.
    std::fs::write(d.join("tx/c.parquet"), b"").unwrap();
    let out = run_in(d, &["run", "job.toml"]);
    assert!(out.status.success());
    let dq = dq_rows(&d.join("out"), "2024-03-31");
    assert_eq!(dq["rows_used"].0, 8);
    let rows = read_rows(
        &partition(&d.join("out"), "data_quality", "2024-03-31").join("part-00000.parquet"),
    );
    let skipped: Vec<String> = rows
        .iter()
        .filter(|r| s(r, "check") == "empty_file_skipped")
        .map(|r| s(r, "example"))
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].ends_with("c.parquet"), "{skipped:?}");
    let manifest = std::fs::read_to_string(
        partition(&d.join("out"), "customer_features", "2024-03-31").join("_manifest.json"),
    )
    .unwrap();
    assert!(manifest.contains("c.parquet"), "{manifest}");
    // A string amount in a third file: the error names that file.
    small_tx(
        &d.join("tx/d.parquet"),
        Column::new("a".into(), ["1", "2", "3", "4"]),
        &days,
    );
    assert_file_named(d, &["d.parquet", "\"amt\""]);
    std::fs::remove_file(d.join("tx/d.parquet")).unwrap();
    // A file without the mapped amount column: named.
    let mut no_amount = DataFrame::new_infer_height(vec![
        Column::new("cust".into(), ["c0"]),
        Series::new("ts".into(), [us("2024-03-03 10:00")])
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .unwrap()
            .into(),
    ])
    .unwrap();
    write_parquet(&mut no_amount, &d.join("tx/f.parquet"));
    assert_file_named(d, &["f.parquet", "\"amt\""]);
    std::fs::remove_file(d.join("tx/f.parquet")).unwrap();
    // A corrupt file next to good ones: named.
    std::fs::write(d.join("tx/e.parquet"), b"this is not parquet at all").unwrap();
    assert_file_named(d, &["e.parquet"]);
}

/// `run` and `validate` both exit 3 with an error containing every one of `needles` (the file
/// at fault, the column), without polars' hints.
fn assert_file_named(d: &Path, needles: &[&str]) {
    for cmd in ["run", "validate"] {
        let out = run_in(d, &[cmd, "job.toml"]);
        assert_eq!(out.status.code(), Some(3), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(needles.iter().all(|n| err.contains(n)), "{cmd}: {err}");
        assert!(!err.contains("cast_options"), "{err}");
    }
}

#[test]
fn overflow_and_out_of_range_dates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("job.toml"), SMALL_JOB).unwrap();
    // A stray 0001-01-01 row is rejected (before_min_date), not turned into 24,000 periods.
    small_tx(
        &d.join("tx/a.parquet"),
        Column::new("a".into(), [1.0, 2.0, 3.0, 4.0]),
        &[
            "0001-01-01 00:00",
            "2024-03-02 10:00",
            "2024-03-05 10:00",
            "2024-03-09 10:00",
        ],
    );
    let out = run_in(d, &["run", "job.toml"]);
    assert!(out.status.success());
    let dq = dq_rows(&d.join("out"), "2024-03-31");
    assert_eq!(dq["before_min_date"], (1, "rejected".to_string()));
    let churn = read_rows(
        &partition(&d.join("out"), "churn_rates", "2024-03-31").join("part-00000.parquet"),
    );
    assert!(
        churn.len() <= 2,
        "periods come from used rows only: {}",
        churn.len()
    );
    // Dates beyond what chrono (and polars' printing) can represent, ±5.5 million years: the
    // past one is rejected and shown, the future one left outside the window; no panic.
    let days = Series::new(
        "ts".into(),
        [-2_000_000_000i32, 19_784, 19_787, 2_000_000_000],
    )
    .cast(&DataType::Date)
    .unwrap();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("cust".into(), ["c0", "c1", "c0", "c1"]),
        days.into(),
        Column::new("amt".into(), [1.0, 2.0, 3.0, 4.0]),
    ])
    .unwrap();
    write_parquet(&mut df, &d.join("tx/a.parquet"));
    let out = run_in(d, &["run", "job.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dq = dq_rows(&d.join("out"), "2024-03-31");
    assert_eq!(dq["before_min_date"], (1, "rejected".to_string()));
    // The far-future row lies after the as-of date: read, outside the window, not used.
    assert_eq!(
        (dq["rows_read"].0, dq["rows_in_window"].0, dq["rows_used"].0),
        (4, 3, 2),
        "{dq:?}"
    );
    let rows = read_rows(
        &partition(&d.join("out"), "data_quality", "2024-03-31").join("part-00000.parquet"),
    );
    let example = rows
        .iter()
        .find(|r| s(r, "check") == "before_min_date")
        .map(|r| s(r, "example"))
        .unwrap();
    assert!(
        example.contains("-2000000000 days from 1970-01-01 (out of range)"),
        "{example}"
    );
    // Finite amounts whose sum overflows: a data error naming the customer.
    small_tx(
        &d.join("tx/a.parquet"),
        Column::new("a".into(), [1.7e308, 1.0, 1.7e308, 1.0]),
        &[
            "2024-03-01 10:00",
            "2024-03-02 10:00",
            "2024-03-05 10:00",
            "2024-03-09 10:00",
        ],
    );
    let out = run_in(d, &["run", "job.toml"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("customer \"c0\"") && err.contains("overflows"),
        "{err}"
    );
}

#[test]
fn backfill_applies_the_threshold_per_date_and_extra_columns_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("job.toml"),
        SMALL_JOB.replace("max_rejected_share = 0.5", "max_rejected_share = 0.2"),
    )
    .unwrap();
    // January and February are clean; March brings 3 null amounts among 6 rows, so the
    // window ending 2024-03-31 holds 3 rejected of 10 rows (30% > 20%).
    small_tx(
        &d.join("tx/a.parquet"),
        Column::new("a".into(), [1.0, 2.0, 3.0, 4.0]),
        &[
            "2024-01-02 10:00",
            "2024-01-05 10:00",
            "2024-02-05 10:00",
            "2024-02-09 10:00",
        ],
    );
    let mut march = DataFrame::new_infer_height(vec![
        Column::new("cust".into(), ["c0", "c1", "c0", "c1", "c0", "c1"]),
        Series::new(
            "ts".into(),
            [
                "2024-03-01 10:00",
                "2024-03-02 10:00",
                "2024-03-03 10:00",
                "2024-03-04 10:00",
                "2024-03-05 10:00",
                "2024-03-06 10:00",
            ]
            .iter()
            .map(|s| us(s))
            .collect::<Vec<_>>(),
        )
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .unwrap()
        .into(),
        Column::new(
            "amt".into(),
            [Some(1.0), None, Some(2.0), None, Some(3.0), None],
        ),
        // A column the job does not map, only in this file: ignored.
        Column::new("note".into(), ["x"; 6]),
    ])
    .unwrap();
    write_parquet(&mut march, &d.join("tx/b.parquet"));
    let out = run_in(
        d,
        &[
            "backfill",
            "--allow-degraded",
            "job.toml",
            "--from",
            "2024-01-01",
            "--to",
            "2024-03-31",
            "--every",
            "month",
        ],
    );
    assert_eq!(out.status.code(), Some(5));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 null_amount"), "{stdout}");
    for (as_of, published) in [
        ("2024-01-31", true),
        ("2024-02-29", true),
        ("2024-03-31", false),
    ] {
        for t in ["customer_features", "data_quality", "quarantine"] {
            assert_eq!(
                partition(&d.join("out"), t, as_of).exists(),
                published,
                "{t} {as_of}"
            );
        }
    }
    let dq = dq_rows(&d.join("out"), "2024-02-29");
    assert_eq!(dq["rows_in_window"].0, 4);
    assert_eq!(dq["null_amount"].0, 0);
    // A date vs timestamp mismatch between files is named.
    let mut dates = DataFrame::new_infer_height(vec![
        Column::new("cust".into(), ["c0"]),
        Column::new("ts".into(), [19800i32])
            .cast(&DataType::Date)
            .unwrap(),
        Column::new("amt".into(), [1.0]),
    ])
    .unwrap();
    write_parquet(&mut dates, &d.join("tx/c.parquet"));
    let out = run_in(d, &["validate", "job.toml"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("c.parquet") && err.contains("\"ts\""), "{err}");
}

#[test]
fn a_date_past_the_data_is_stale_and_refused_early() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let job = b2b_job(
        d,
        &root()
            .join("sample_data/b2b/transactions/")
            .display()
            .to_string(),
        "",
    );
    // The B2B history ends on 2024-12-31.
    for (cmd, code) in [("run", 3), ("validate", 3)] {
        let out = run_in(d, &[cmd, &job, "--as-of", "2025-03-31"]);
        assert_eq!(out.status.code(), Some(code), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the newest transaction on or before 2025-03-31 is from 2024-12-31, 90 days earlier")
                && err.contains("quality.max_staleness_days"),
            "{cmd}: {err}"
        );
    }
    assert!(!partition(&d.join("out"), "customer_features", "2025-03-31").exists());
    // Split into customer buckets, the days come from the split: the same refusal.
    let out = custval()
        .args(["run", &job, "--as-of", "2025-03-31"])
        .current_dir(d)
        .env("CUSTVAL_ROWS_PER_BUCKET", "1500")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "the newest transaction on or before 2025-03-31 is from 2024-12-31, 90 days earlier"
        ),
        "{err}"
    );
    assert!(!partition(&d.join("out"), "customer_features", "2025-03-31").exists());
    // A far-future as-of is refused before any per-period work (it used to exhaust memory).
    let t0 = std::time::Instant::now();
    let out = run_in(d, &["run", &job, "--as-of", "9999-12-31"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(t0.elapsed().as_secs() < 30);
    // A backfill fails the stale dates (exit 5) and publishes the others.
    let out = run_in(
        d,
        &[
            "backfill",
            "--allow-degraded",
            &job,
            "--from",
            "2024-11-01",
            "--to",
            "2025-01-31",
            "--every",
            "month",
        ],
    );
    assert_eq!(out.status.code(), Some(5));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("as_of=2025-01-31  failed"), "{stdout}");
    assert!(partition(&d.join("out"), "customer_features", "2024-12-31").exists());
    assert!(partition(&d.join("out"), "customer_features", "2024-11-30").exists());
    // plan shows the same check.
    let out = run_in(
        d,
        &[
            "plan",
            &job,
            "--from",
            "2024-11-01",
            "--to",
            "2025-01-31",
            "--every",
            "month",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("as_of=2025-01-31  fail   (stale:"),
        "{stdout}"
    );
}
