//! The CDNOW sample job against lifetimes 0.11.3's `summary_data_from_transaction_data`
//! (`tests/fixtures/lifetimes/cdnow_master_summary_1998-06-30.csv`, produced by
//! `tests/fixtures/lifetimes/make_fixtures.py`).

mod common;
use common::*;

#[test]
fn cdnow_summary_equals_lifetimes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out_uri = dir.path().join("out");
    let out = run_in(
        root,
        &[
            "run",
            "jobs/cdnow.toml",
            "--output",
            out_uri.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let rows = by_key(
        read_rows(
            &partition(&out_uri, "customer_features", "1998-06-30").join("part-00000.parquet"),
        ),
        "customer_id",
    );
    let csv = std::fs::read_to_string(
        root.join("tests/fixtures/lifetimes/cdnow_master_summary_1998-06-30.csv"),
    )
    .unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "customer_id,frequency,recency,T,monetary_value"
    );
    let mut n = 0;
    for line in lines {
        let v: Vec<&str> = line.split(',').collect();
        let r = rows
            .get(v[0])
            .unwrap_or_else(|| panic!("customer {} missing", v[0]));
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert_eq!(i(r, "frequency"), v[1].parse::<i64>().unwrap(), "{}", v[0]);
        assert!(close(f(r, "recency"), v[2].parse().unwrap()), "{line}");
        assert!(close(f(r, "T"), v[3].parse().unwrap()), "{line}");
        assert!(close(f(r, "monetary"), v[4].parse().unwrap()), "{line}");
        n += 1;
    }
    assert_eq!(n, 23_570);
    assert_eq!(rows.len(), 23_570);
}
