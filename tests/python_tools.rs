//! The scheduling and BI examples work with the real tools: the Airflow DAG file parses (and
//! imports through Airflow's DagBag when Airflow is installed), and the DuckDB queries of
//! `docs/bi.md` run against real custval output, some with their values checked by hand
//! (`tests/bi_values.py`; DuckDB is installed by `.ci/run` from `tests/requirements.txt`).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn check_script(args: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python())
        .args(args)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?} failed");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(" 0 failed") && !last.starts_with("0 passed"),
        "{args:?}: {last}"
    );
}

#[test]
fn airflow_dag_parses() {
    check_script(&["tests/dag_import.py"]);
}

#[test]
fn bi_queries_run_on_real_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    // Two month ends of the B2B sample, every table (the job sets a holdout).
    let out = run_in(
        root,
        &[
            "backfill",
            "--allow-degraded",
            "jobs/b2b.toml",
            "--from",
            "2024-11-01",
            "--to",
            "2024-12-31",
            "--output",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    check_script(&["tests/bi_queries.py", out_dir.to_str().unwrap()]);
    // The values of the churn trend's moving average, against a hand computation on the latest
    // as-of date (with two dates, a window over all the rows would mix them).
    check_script(&["tests/bi_values.py", out_dir.to_str().unwrap()]);
    // Every backfilled date against an independent DuckDB computation of its summary.
    check_script(&["tests/backfill_summary.py", out_dir.to_str().unwrap()]);
}
