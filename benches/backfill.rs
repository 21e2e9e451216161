//! Backfill benchmark: a 12-month monthly backfill (one scan) against 12 separate runs and one
//! run, in the same process, on a generated history.
//!
//!     cargo bench --bench backfill -- [--customers N] [--dir PATH]
//!
//! Workload: `custval generate` with N customers (default 2,300,000, about 10 M transactions)
//! acquired over 2023-01-01..2024-12-31, 8 files, seed 1; the job maps order id, category and
//! channel and runs every table with the default models. As-of dates: the month ends of 2024.
//! Prints one JSON line with the seconds of each variant and the ratios.

use custval::backfill::{as_of_dates, run_dates, Every};
use custval::generate::GenerateOptions;
use custval::job::{self, Overrides, StorageOptions};
use std::path::PathBuf;
use std::time::Instant;

/// The binary's allocator and memory settings ([`custval::memory`]), so that the benchmark
/// measures what `custval run` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    custval::memory::configure();
    let mut customers = 2_300_000usize;
    let mut dir = std::env::temp_dir().join("custval-bench-backfill");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--customers" => customers = args.next().unwrap().replace('_', "").parse().unwrap(),
            "--dir" => dir = PathBuf::from(args.next().unwrap()),
            _ => {}
        }
    }
    let data = dir.join(format!("data-{customers}"));
    let t0 = Instant::now();
    if !data.join("attributes.parquet").exists() {
        let opts = GenerateOptions::default()
            .with_customers(customers)
            .with_seed(1)
            .with_window(
                custval::source::epoch_day(chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()),
                custval::source::epoch_day(chrono::NaiveDate::from_ymd_opt(2024, 12, 31).unwrap()),
            );
        custval::generate_io::write(data.to_str().unwrap(), &StorageOptions::default(), &opts, 8)
            .unwrap();
    }
    let gen_s = t0.elapsed().as_secs_f64();
    let job_text = format!(
        r#"
name = "bench"
as_of = "2024-12-31"
[source]
uri = "{}/transactions/"
[columns]
customer_id = "customer_id"
timestamp = "order_date"
amount = "amount"
order_id = "order_id"
category = "category"
channel = "channel"
[output]
uri = "{}/out"
"#,
        data.display(),
        dir.display()
    );
    let load = |out: &str| {
        job::from_str(
            &job_text,
            std::path::Path::new("bench.toml"),
            &Overrides {
                output: Some(dir.join(out).display().to_string()),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let dates = as_of_dates(
        chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        Every::Month,
    );
    let rows: u64 = {
        use polars::prelude::*;
        let lf = custval::source::open_parquet(
            &format!("{}/transactions/", data.display()),
            &StorageOptions::default(),
            true,
        )
        .unwrap();
        lf.select([len()])
            .collect()
            .unwrap()
            .column("len")
            .unwrap()
            .u32()
            .unwrap()
            .get(0)
            .unwrap() as u64
    };

    let t = Instant::now();
    let report = run_dates(&load("out-backfill"), &dates, true).unwrap();
    assert!(report.errors.is_empty());
    let backfill_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for d in &dates {
        let r = run_dates(&load("out-runs"), std::slice::from_ref(d), true).unwrap();
        assert!(r.errors.is_empty());
    }
    let runs_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    run_dates(&load("out-one"), &dates[dates.len() - 1..], true).unwrap();
    let one_s = t.elapsed().as_secs_f64();

    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0);
    println!(
        "{}",
        serde_json::json!({
            "customers": customers,
            "transactions": rows,
            "dates": dates.len(),
            "generate_seconds": gen_s,
            "backfill_seconds": backfill_s,
            "separate_runs_seconds": runs_s,
            "one_run_seconds": one_s,
            "backfill_over_one_run": backfill_s / one_s,
            "separate_runs_over_backfill": runs_s / backfill_s,
            "peak_rss_mb": peak,
            "threads": rayon::current_num_threads(),
        })
    );
}
