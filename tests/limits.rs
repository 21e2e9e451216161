//! Inputs and settings that used to exhaust the machine end quickly and cleanly, under a memory
//! cap: a far-future as-of date, a stray 0001-01-01 row, a huge CLV horizon, nanosecond
//! timestamps with an as-of beyond their range.

mod common;
use common::*;
use polars::prelude::*;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// Run custval under a 3 GB address-space cap (`prlimit --as`).
fn capped(dir: &Path, args: &[&str]) -> (Output, Duration) {
    let t0 = Instant::now();
    let out = std::process::Command::new("prlimit")
        .arg("--as=3000000000")
        .arg(env!("CARGO_BIN_EXE_custval"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("prlimit (util-linux) runs");
    eprintln!(
        "$ custval {}\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, t0.elapsed())
}

fn write_tx(dir: &Path, unit: TimeUnit, days: &[&str]) {
    let ts: Vec<i64> = days
        .iter()
        .map(|d| {
            let t = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc();
            match unit {
                TimeUnit::Nanoseconds => t.timestamp_nanos_opt().unwrap_or(i64::MIN),
                TimeUnit::Microseconds => t.timestamp_micros(),
                TimeUnit::Milliseconds => t.timestamp_millis(),
            }
        })
        .collect();
    let n = days.len();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new(
            "cust".into(),
            (0..n).map(|i| format!("c{}", i % 3)).collect::<Vec<_>>(),
        ),
        Series::new("ts".into(), ts)
            .cast(&DataType::Datetime(unit, None))
            .unwrap()
            .into(),
        Column::new(
            "amt".into(),
            (0..n).map(|i| 10.0 + i as f64).collect::<Vec<_>>(),
        ),
    ])
    .unwrap();
    write_parquet(&mut df, &dir.join("tx.parquet"));
}

const JOB: &str = r#"
name = "limits"
as_of = "2024-06-30"
[source]
uri = "tx.parquet"
[columns]
customer_id = "cust"
timestamp = "ts"
amount = "amt"
[output]
uri = "out"
[quality]
max_rejected_share = 0.5
max_staleness_days = 60
[clv]
# A handful of rows cannot identify the spend model; these tests are about resources.
on_fit_failure = "null"
"#;

#[test]
fn worst_cases_end_quickly_under_a_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A stray 0001-01-01 row among ordinary ones (nanoseconds cannot even hold it; use µs).
    write_tx(
        d,
        TimeUnit::Microseconds,
        &[
            "0001-01-01",
            "2024-05-01",
            "2024-05-20",
            "2024-06-01",
            "2024-06-15",
            "2024-06-28",
        ],
    );
    std::fs::write(d.join("job.toml"), JOB).unwrap();
    let (out, took) = capped(d, &["run", "job.toml"]);
    assert!(out.status.success());
    assert!(took < Duration::from_secs(60), "{took:?}");
    let churn = read_rows(
        &partition(&d.join("out"), "churn_rates", "2024-06-30").join("part-00000.parquet"),
    );
    assert!(
        churn.len() <= 3,
        "periods from the data, not from year 1: {}",
        churn.len()
    );
    // A far-future as-of date: refused before any per-period work.
    let (out, took) = capped(d, &["run", "job.toml", "--as-of", "9999-12-31"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(took < Duration::from_secs(30), "{took:?}");
    // A huge CLV horizon: a job error, at once.
    std::fs::write(
        d.join("big.toml"),
        JOB.replace("[clv]\n", "[clv]\nhorizon_months = 100000\n"),
    )
    .unwrap();
    let (out, _) = capped(d, &["run", "big.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("horizon_months"));
    // A 1,000-year lookback with weekly periods: periods still come from the data (was 52,000
    // weeks); a lookback past the calendar's range is a job error, not a crash.
    std::fs::write(
        d.join("wide.toml"),
        JOB.replace("[source]", "lookback_days = 365000\n[source]")
            .replace("[clv]\n", "[churn]\nperiod = \"week\"\n[clv]\n"),
    )
    .unwrap();
    let (out, took) = capped(d, &["run", "wide.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
    let churn = read_rows(
        &partition(&d.join("out"), "churn_rates", "2024-06-30").join("part-00000.parquet"),
    );
    assert!(
        churn.len() <= 10,
        "weekly periods from the data: {}",
        churn.len()
    );
    std::fs::write(
        d.join("huge.toml"),
        JOB.replace("[source]", "lookback_days = 100000000\n[source]"),
    )
    .unwrap();
    let (out, _) = capped(d, &["run", "huge.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lookback_days: expected 1 to 365250"));
}

#[test]
fn nanosecond_timestamps_with_an_as_of_beyond_their_range() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_tx(
        d,
        TimeUnit::Nanoseconds,
        &["2024-05-01", "2024-06-01", "2024-06-28"],
    );
    std::fs::write(d.join("job.toml"), JOB).unwrap();
    // 2300 does not fit a nanosecond timestamp: the window literal saturates instead of
    // overflowing into an empty window, so the run sees the data and reports it as stale.
    let (out, took) = capped(d, &["run", "job.toml", "--as-of", "2300-01-01"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(took < Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the newest transaction on or before 2300-01-01 is from 2024-06-28"),
        "{err}"
    );
}
