//! Customer buckets: a source split into several buckets (forced small with
//! `CUSTVAL_ROWS_PER_BUCKET`) gives the same tables as one bucket, in runs and backfills, with
//! and without dirty rows; scratch is removed, and an unusable scratch directory is exit 4.

mod common;
use common::*;
use parquet::record::Field;
use std::path::{Path, PathBuf};
use std::process::Output;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The B2B job with absolute inputs and output `out`.
fn b2b_job(dir: &Path) -> String {
    let text = std::fs::read_to_string(root().join("jobs/b2b.toml"))
        .unwrap()
        .replace(
            "uri = \"../sample_data/b2b/",
            &format!("uri = \"{}/sample_data/b2b/", root().display()),
        )
        .replace("uri = \"../out/b2b\"", "uri = \"out\"");
    let path = dir.join("job.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn run_bucketed(dir: &Path, rows_per_bucket: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = custval();
    cmd.args(args).current_dir(dir).env("RUST_LOG", "warn");
    match rows_per_bucket {
        Some(n) => cmd.env("CUSTVAL_ROWS_PER_BUCKET", n),
        None => cmd.env_remove("CUSTVAL_ROWS_PER_BUCKET"),
    };
    let out = cmd.output().unwrap();
    eprintln!(
        "$ custval {}\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The month ends from `from` to 2024-12-31 with 1,500 rows per bucket, into `bf`.
fn bucketed_backfill(dir: &Path, job: &str, from: &str) -> Output {
    run_bucketed(
        dir,
        Some("1500"),
        &[
            "backfill",
            "--allow-degraded",
            job,
            "--from",
            from,
            "--to",
            "2024-12-31",
            "--every",
            "month",
            "--output",
            "bf",
        ],
    )
}

fn file(out: &Path, table: &str, as_of: &str) -> PathBuf {
    partition(out, table, as_of).join("part-00000.parquet")
}

/// Rows equal, floats within 1e-9 relative (sums over buckets add in another order).
fn assert_rows_close(a: &Path, b: &Path) {
    let (ra, rb) = (read_rows(a), read_rows(b));
    assert_eq!(ra.len(), rb.len(), "{}", a.display());
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x.len(), y.len());
        for (k, v) in x {
            match (v, &y[k]) {
                (Field::Double(p), Field::Double(q)) => {
                    assert!((p - q).abs() <= 1e-9 * p.abs().max(1.0), "{k}: {p} vs {q}")
                }
                (p, q) => assert_eq!(p, q, "{k}"),
            }
        }
    }
}

/// The [`EXACT`] tables of `as_of` are the same bytes under `a` and `b`.
fn assert_same_tables(a: &Path, b: &Path, as_of: &str) {
    for t in EXACT {
        assert_eq!(
            std::fs::read(file(a, t, as_of)).unwrap(),
            std::fs::read(file(b, t, as_of)).unwrap(),
            "{t} {as_of}"
        );
    }
}

const EXACT: &[&str] = &[
    "customer_features",
    "segment_summary",
    "value_matrix",
    "model_diagnostics",
    "data_quality",
    "quarantine",
];

#[test]
fn several_buckets_give_the_tables_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let job = b2b_job(d);
    let scratch = d.join("scratch");
    let one = run_bucketed(d, None, &["run", &job, "--output", "one"]);
    assert!(one.status.success());
    // About 8,700 rows: 1,500 rows per bucket makes 6 buckets.
    let many = run_bucketed(
        d,
        Some("1500"),
        &[
            "run",
            &job,
            "--output",
            "many",
            "--scratch",
            scratch.to_str().unwrap(),
        ],
    );
    assert!(many.status.success());
    assert_same_tables(&d.join("one"), &d.join("many"), "2024-12-31");
    for t in ["churn_rates", "cohort_retention"] {
        assert_rows_close(
            &file(&d.join("one"), t, "2024-12-31"),
            &file(&d.join("many"), t, "2024-12-31"),
        );
    }
    // The buckets were written under --scratch and removed.
    assert!(scratch.is_dir());
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
    // A rerun with buckets is bit-identical, also through the page cache.
    let again = run_bucketed(
        d,
        Some("1500"),
        &["run", &job, "--output", "again", "--scratch-io", "buffered"],
    );
    assert!(again.status.success());
    for t in ["customer_features", "churn_rates", "cohort_retention"] {
        assert_eq!(
            std::fs::read(file(&d.join("again"), t, "2024-12-31")).unwrap(),
            std::fs::read(file(&d.join("many"), t, "2024-12-31")).unwrap(),
            "{t}"
        );
    }
}

/// A customer id holding a large share of the rows (a guest or placeholder id) makes its
/// bucket several times larger than the others: that bucket is read in parts by (customer,
/// day), one at a time, and the tables are still those of one bucket.
#[test]
fn a_bucket_made_large_by_one_customer_is_read_in_parts() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The B2B transactions with two rows in five given to one guest id.
    let tx = d.join("tx");
    std::fs::create_dir_all(&tx).unwrap();
    let src = root().join("sample_data/b2b/transactions");
    let mut rows = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let df = ParquetReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap();
        rows += df.height();
        let mut df = df
            .lazy()
            .with_row_index("i", None)
            .with_column(
                when((col("i") % lit(5u32)).lt(lit(2u32)))
                    .then(lit("GUEST"))
                    .otherwise(col("customer_id"))
                    .alias("customer_id"),
            )
            .drop(by_name(["i"], true, false))
            .collect()
            .unwrap();
        write_parquet(&mut df, &tx.join(path.file_name().unwrap()));
    }
    assert!(rows > 8000, "{rows}");
    let job = d.join("job.toml");
    let text = std::fs::read_to_string(b2b_job(d)).unwrap().replace(
        &format!(
            "uri = \"{}/sample_data/b2b/transactions/\"",
            root().display()
        ),
        &format!("uri = \"{}/\"", tx.display()),
    );
    assert!(text.contains(tx.to_str().unwrap()));
    std::fs::write(&job, text).unwrap();
    let job = job.to_str().unwrap();
    let one = run_bucketed(d, None, &["run", job, "--output", "one"]);
    assert!(one.status.success());
    // 1,500 rows per bucket: the guest's bucket holds over 3,400 rows, more than twice that.
    let many = custval()
        .args(["run", job, "--output", "many"])
        .current_dir(d)
        .env("RUST_LOG", "custval=info")
        .env("CUSTVAL_ROWS_PER_BUCKET", "1500")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&many.stderr);
    assert!(many.status.success(), "{log}");
    assert!(log.contains("read in parts"), "{log}");
    // The id is named, with its rows.
    assert!(log.contains("customer id \"GUEST\" has"), "{log}");
    assert_same_tables(&d.join("one"), &d.join("many"), "2024-12-31");
    for t in ["churn_rates", "cohort_retention"] {
        assert_rows_close(
            &file(&d.join("one"), t, "2024-12-31"),
            &file(&d.join("many"), t, "2024-12-31"),
        );
    }
    // The guest is one customer of the output.
    let features = read_rows(&file(&d.join("many"), "customer_features", "2024-12-31"));
    let guest = features
        .iter()
        .filter(|r| matches!(r.get("customer_id"), Some(parquet::record::Field::Str(s)) if s == "GUEST"))
        .count();
    assert_eq!(guest, 1);
    // A backfill reads the bucket in parts too; each date's tables are a single run's.
    let bf = bucketed_backfill(d, job, "2024-11-01");
    assert!(bf.status.success());
    assert!(String::from_utf8_lossy(&bf.stderr).contains("customer id \"GUEST\" has"));
    let nov = run_bucketed(
        d,
        None,
        &["run", job, "--as-of", "2024-11-30", "--output", "one"],
    );
    assert!(nov.status.success());
    for as_of in ["2024-11-30", "2024-12-31"] {
        assert_same_tables(&d.join("one"), &d.join("bf"), as_of);
    }
}

#[test]
fn a_bucketed_backfill_equals_single_bucket_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let job = b2b_job(d);
    let out = bucketed_backfill(d, &job, "2024-10-01");
    assert!(out.status.success());
    for as_of in ["2024-10-31", "2024-11-30", "2024-12-31"] {
        let run = run_bucketed(
            d,
            None,
            &["run", &job, "--as-of", as_of, "--output", "runs"],
        );
        assert!(run.status.success());
        assert_same_tables(&d.join("bf"), &d.join("runs"), as_of);
        assert_rows_close(
            &file(&d.join("bf"), "churn_rates", as_of),
            &file(&d.join("runs"), "churn_rates", as_of),
        );
    }
}

#[test]
fn an_unusable_scratch_directory_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let job = b2b_job(d);
    std::fs::write(d.join("a-file"), b"x").unwrap();
    let out = run_bucketed(
        d,
        Some("1500"),
        &[
            "run",
            &job,
            "--scratch",
            d.join("a-file/sub").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a-file/sub"), "{err}");
    assert!(err.contains("--scratch DIR"), "{err}");
    assert!(!partition(&d.join("out"), "customer_features", "2024-12-31").exists());
}
