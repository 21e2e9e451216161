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

/// The 2,357-customer CDNOW sample in weeks, calibration through 1997-09-30, through the whole
/// pipeline: the fitted parameters equal the published ones (Fader, Hardie & Lee 2005; Fader &
/// Hardie 2013) to 3 significant digits.
#[test]
fn cdnow_sample_fit_equals_published_figures() {
    use polars::prelude::*;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/data/cdnow/CDNOW_sample.txt")).unwrap();
    let (mut ids, mut days, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    for line in text.lines() {
        let v: Vec<&str> = line.split_whitespace().collect();
        ids.push(v[1].to_string());
        let d = chrono::NaiveDate::parse_from_str(v[2], "%Y%m%d").unwrap();
        days.push((d - epoch).num_days() as i32);
        amounts.push(v[4].parse::<f64>().unwrap());
    }
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("id".into(), ids),
        Column::new("date".into(), days)
            .cast(&DataType::Date)
            .unwrap(),
        Column::new("dollars".into(), amounts),
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&mut df, &dir.path().join("sample.parquet"));
    std::fs::write(
        dir.path().join("job.toml"),
        r#"
name = "cdnow-sample"
as_of = "1997-09-30"
time_unit = "week"
[source]
uri = "sample.parquet"
[columns]
customer_id = "id"
timestamp = "date"
amount = "dollars"
[output]
uri = "out"
tables = ["model_fit", "customer_features"]
"#,
    )
    .unwrap();
    assert!(run_in(dir.path(), &["run", "job.toml"]).status.success());
    let rows = by_key(
        read_rows(
            &partition(&dir.path().join("out"), "model_fit", "1997-09-30")
                .join("part-00000.parquet"),
        ),
        "model",
    );
    let sig3 = |got: f64, want: f64, name: &str| {
        let scale = 10f64.powf(want.abs().log10().floor() - 2.0);
        assert!(
            (got / scale).round() == (want / scale).round(),
            "{name}: got {got}, published {want}"
        );
    };
    let bg = &rows["bgnbd"];
    sig3(f(bg, "r"), 0.243, "r");
    sig3(f(bg, "alpha"), 4.414, "alpha");
    sig3(f(bg, "a"), 0.793, "a");
    sig3(f(bg, "b"), 2.426, "b");
    sig3(f(bg, "log_likelihood"), -9582.4, "log-likelihood");
    assert_eq!(i(bg, "customers"), 2357);
    let gg = &rows["gamma_gamma"];
    sig3(f(gg, "p"), 6.25, "p");
    sig3(f(gg, "q"), 3.74, "q");
    sig3(f(gg, "v"), 15.44, "v");
    assert_eq!(i(gg, "customers"), 946);
    assert!(matches!(
        bg["converged"],
        parquet::record::Field::Bool(true)
    ));
    // clv.model = "auto": three candidates, Pareto/NBD at its published values (Fader, Hardie &
    // Lee 2005: r 0.55, α 10.58, s 0.61, β 11.67), one chosen: the lowest BIC = 4 ln n − 2 LL.
    let pn = &rows["pareto_nbd"];
    for (name, want) in [("r", 0.55), ("alpha", 10.58), ("s", 0.61), ("beta", 11.67)] {
        assert!(
            (f(pn, name) - want).abs() <= 0.006 * want.max(1.0),
            "{name}: {} vs {want}",
            f(pn, name)
        );
    }
    let chosen: Vec<&str> = ["bgnbd", "mbgnbd", "pareto_nbd"]
        .into_iter()
        .filter(|m| matches!(rows[*m]["chosen"], parquet::record::Field::Bool(true)))
        .collect();
    assert_eq!(chosen.len(), 1, "{chosen:?}");
    let bic = |m: &str| 4.0 * 2357f64.ln() - 2.0 * f(&rows[m], "log_likelihood");
    for m in ["bgnbd", "mbgnbd", "pareto_nbd"] {
        assert!((f(&rows[m], "bic") - bic(m)).abs() < 1e-6, "{m}");
        assert!(bic(chosen[0]) <= bic(m), "{} chosen over {m}", chosen[0]);
    }

    // With a holdout the choice is the lowest holdout MAE, and model_diagnostics says which.
    let job = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    std::fs::write(
        dir.path().join("holdout.toml"),
        job.replace(
            "tables = [\"model_fit\", \"customer_features\"]",
            "tables = [\"model_fit\", \"model_diagnostics\"]\n[clv]\nholdout_days = 91",
        ),
    )
    .unwrap();
    let out = run_in(dir.path(), &["run", "holdout.toml", "--output", "out2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = dir.path().join("out2");
    let rows = by_key(
        read_rows(&partition(&root, "model_fit", "1997-09-30").join("part-00000.parquet")),
        "model",
    );
    let mae = |m: &str| f(&rows[m], "holdout_mae");
    let best = ["bgnbd", "mbgnbd", "pareto_nbd"]
        .into_iter()
        .min_by(|a, b| mae(a).total_cmp(&mae(b)))
        .unwrap();
    assert!(matches!(
        rows[best]["chosen"],
        parquet::record::Field::Bool(true)
    ));
    let diag =
        read_rows(&partition(&root, "model_diagnostics", "1997-09-30").join("part-00000.parquet"));
    let all = diag
        .iter()
        .find(|r| s(r, "calibration_frequency") == "all")
        .unwrap();
    assert_eq!(s(all, "model"), best);
    assert!((f(all, "mae") - mae(best)).abs() < 1e-12);
}
