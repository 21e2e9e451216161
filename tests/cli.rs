//! End-to-end tests of the `custval` binary on a hand-worked dataset, read back with the
//! independent `parquet` crate.

mod common;
use common::*;
use polars::prelude::*;
use std::path::Path;

fn ms(date: &str, time: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

/// Five customers with purchases before the as-of date 2024-01-31, plus purchases after it that
/// must be ignored. Expected values are worked out by hand in `hand_worked_dataset`.
fn hand_worked_input(dir: &Path) {
    let rows: &[(&str, &str, &str, f64)] = &[
        ("A", "2024-01-01", "09:00", 10.0),
        ("A", "2024-01-01", "18:30", 5.0), // same day as above: one BTYD transaction of 15
        ("A", "2024-01-11", "12:00", 20.0),
        ("A", "2024-01-31", "23:59", 30.0), // on the as-of day: counts
        ("B", "2024-01-05", "10:00", 100.0),
        ("C", "2023-12-01", "10:00", 40.0),
        ("C", "2024-01-20", "10:00", 60.0),
        ("D", "2023-11-01", "10:00", 5.0),
        ("E", "2024-01-30", "10:00", 1.0),
        ("E", "2024-01-31", "10:00", 2.0),
        ("E", "2024-02-01", "00:00", 999.0), // after the as-of day: ignored
        ("F", "2024-03-01", "10:00", 50.0),  // only after the as-of day: no row
    ];
    let ts = Series::new(
        "ts".into(),
        rows.iter().map(|r| ms(r.1, r.2)).collect::<Vec<_>>(),
    )
    .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
    .unwrap();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("cust".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        ts.into(),
        Column::new("amt".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
    ])
    .unwrap();
    write_parquet(&mut df, &dir.join("data/tx.parquet"));
}

const JOB: &str = r#"
name = "hand"
as_of = "2024-01-31"

[source]
uri = "data/tx.parquet"

[columns]
customer_id = "cust"
timestamp = "ts"
amount = "amt"

[output]
uri = "out"

[tiers]
method = "pareto"
high = 0.5
medium = 0.9

[quality]
# The hand-worked dates are not daily feeds.
max_staleness_days = 3650

[clv]
# Five hand-worked customers cannot identify a model; publish the other columns (the default,
# "fail", is tested in degenerate_history_fails_unless_told_to_publish_nulls).
on_fit_failure = "null"
"#;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    hand_worked_input(dir.path());
    std::fs::write(dir.path().join("job.toml"), JOB).unwrap();
    dir
}

#[test]
fn hand_worked_dataset() {
    let dir = setup();
    let out = run_in(dir.path(), &["run", "job.toml"]);
    assert!(out.status.success());
    let part = partition(&dir.path().join("out"), "customer_features", "2024-01-31");
    let rows = by_key(read_rows(&part.join("part-00000.parquet")), "customer_id");
    assert_eq!(
        rows.len(),
        5,
        "F has no purchase on or before the as-of date"
    );

    // (id, purchase_days, orders, total, frequency, recency, T, monetary, days_since_last)
    // A: days 01-01 (10+5), 01-11 (20), 01-31 (30): repeat days 20 and 30 → monetary 25.
    // C: 2023-12-01 and 2024-01-20: recency 50 days, T = 61 days.
    // E: 01-30 and 01-31 (the 02-01 purchase is after the as-of day).
    let expected = [
        ("A", 3, 4, 65.0, 2, 30.0, 30.0, 25.0, 0),
        ("B", 1, 1, 100.0, 0, 0.0, 26.0, 0.0, 26),
        ("C", 2, 2, 100.0, 1, 50.0, 61.0, 60.0, 11),
        ("D", 1, 1, 5.0, 0, 0.0, 91.0, 0.0, 91),
        ("E", 2, 2, 3.0, 1, 1.0, 1.0, 2.0, 0),
    ];
    for (id, days, orders, total, freq, rec, t, mon, since) in expected {
        let r = &rows[id];
        assert_eq!(i(r, "purchase_days"), days, "{id} purchase_days");
        assert_eq!(i(r, "orders"), orders, "{id} orders");
        assert_eq!(f(r, "total_amount"), total, "{id} total_amount");
        assert_eq!(i(r, "frequency"), freq, "{id} frequency");
        assert_eq!(f(r, "recency"), rec, "{id} recency");
        assert_eq!(f(r, "T"), t, "{id} T");
        assert_eq!(f(r, "monetary"), mon, "{id} monetary");
        assert_eq!(i(r, "days_since_last"), since, "{id} days_since_last");
    }
    assert_eq!(f(&rows["A"], "mean_amount"), 65.0 / 4.0);
    // 2024-01-01 is day 19723 since 1970-01-01.
    assert_eq!(date(&rows["A"], "first_purchase"), 19723);
    assert_eq!(date(&rows["A"], "last_purchase"), 19723 + 30);

    // n = 5, so score = min rank. R on -days_since_last: D(-91) 1, B(-26) 2, C(-11) 3, A,E(0) 4.
    // F on orders: B,D(1) 1; C,E(2) 3; A(4) 5. M on total: E 1, D 2, A 3, B,C(100) 4.
    // Segments on (R, F): A (4,5) Loyal Customers; B (2,1) Hibernating; C (3,3) Need Attention;
    // D (1,1) Lost; E (4,3) Potential Loyalists.
    // Tiers (pareto 0.5 / 0.9), order B, C (100, ties by id), A 65, D 5, E 3, total 273:
    // shares before: B 0 high, C .366 high, A .733 medium, D .971 low, E .989 low.
    let scores = [
        ("A", "453", "Loyal Customers", "medium"),
        ("B", "214", "Hibernating", "high"),
        ("C", "334", "Need Attention", "high"),
        ("D", "112", "Lost", "low"),
        ("E", "431", "Potential Loyalists", "low"),
    ];
    for (id, code, seg, tier) in scores {
        let r = &rows[id];
        assert_eq!(s(r, "rfm_code"), code, "{id} rfm_code");
        let digits: Vec<i64> = code.bytes().map(|b| (b - b'0') as i64).collect();
        assert_eq!(
            [i(r, "r_score"), i(r, "f_score"), i(r, "m_score")],
            [digits[0], digits[1], digits[2]]
        );
        assert_eq!(s(r, "rfm_segment"), seg, "{id} segment");
        assert_eq!(s(r, "value_tier"), tier, "{id} tier");
    }

    // segment_summary: one customer per segment, sorted by revenue then name.
    let seg = read_rows(
        &partition(&dir.path().join("out"), "segment_summary", "2024-01-31")
            .join("part-00000.parquet"),
    );
    let names: Vec<String> = seg.iter().map(|r| s(r, "rfm_segment")).collect();
    assert_eq!(
        names,
        [
            "Hibernating",
            "Need Attention",
            "Loyal Customers",
            "Lost",
            "Potential Loyalists"
        ]
    );
    assert_eq!(i(&seg[0], "customers"), 1);
    assert!((f(&seg[0], "customer_share") - 0.2).abs() < 1e-12);
    assert!((f(&seg[0], "revenue_share") - 100.0 / 273.0).abs() < 1e-12);
    assert_eq!(f(&seg[2], "mean_f_score"), 5.0);

    // Manifest and _SUCCESS.
    assert!(part.join("_SUCCESS").exists());
    let man: serde_json::Value =
        serde_json::from_slice(&std::fs::read(part.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(man["rows"], 5);
    assert_eq!(man["as_of"], "2024-01-31");
    assert_eq!(man["table"], "customer_features");
    assert_eq!(man["input_files"].as_array().unwrap().len(), 1);
}

#[test]
fn output_schema_is_the_documented_contract() {
    let dir = setup();
    assert!(run_in(dir.path(), &["run", "job.toml"]).status.success());
    let part = partition(&dir.path().join("out"), "customer_features", "2024-01-31");
    let names: Vec<String> = read_schema(&part.join("part-00000.parquet"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let expected = "customer_id first_purchase last_purchase purchase_days orders total_amount \
        mean_amount amount_last_365d days_since_last frequency recency T monetary r_score f_score \
        m_score rfm_code rfm_segment value_tier prob_alive expected_purchases expected_spend clv \
        clv_simple median_gap_days gap_cv tenure_days active_period_share \
        inactivity_threshold_days churned reactivated spend_trend early_warning lifecycle_stage \
        repeat_rate interaction_rate loyalty_score loyalty_tier relationship_score churn_risk \
        value_metric value_quadrant recommended_action prob_alive_p05 prob_alive_p95 \
        expected_purchases_p05 expected_purchases_p95 clv_p05 clv_p95";
    assert_eq!(names, expected.split_whitespace().collect::<Vec<_>>());
    let types: std::collections::HashMap<String, String> =
        read_schema(&part.join("part-00000.parquet"))
            .into_iter()
            .collect();
    assert!(types["first_purchase"].contains("Date"), "{types:?}");
    assert!(types["rfm_segment"].contains("String"), "{types:?}");
    assert_eq!(types["frequency"], "INT64");
    assert_eq!(types["r_score"], "INT32");
    assert_eq!(types["clv"], "DOUBLE");
}

#[test]
fn rerun_is_idempotent() {
    let dir = setup();
    let out_root = dir.path().join("out");
    assert!(run_in(dir.path(), &["run", "job.toml"]).status.success());
    let first = snapshot(&out_root);
    assert!(run_in(dir.path(), &["run", "job.toml"]).status.success());
    let second = snapshot(&out_root);
    // Same files; identical data; manifests differ only in run id and timings.
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (k, v) in &first {
        if (k.ends_with(".parquet") && !k.starts_with("model_fit/")) || k.ends_with("index.html") {
            assert!(v == &second[k], "{k} changed between reruns");
        }
    }
    // model_fit records the fit time; everything else in it must be identical.
    let fit_rows = |root: &Path| -> Vec<Row> {
        let mut rows =
            read_rows(&partition(root, "model_fit", "2024-01-31").join("part-00000.parquet"));
        for r in &mut rows {
            r.remove("fit_seconds");
        }
        rows
    };
    let again = fit_rows(&out_root);
    assert!(run_in(dir.path(), &["run", "job.toml"]).status.success());
    assert_eq!(again, fit_rows(&out_root));
    // Every run appended one row to the runs table.
    let log = runs(&out_root);
    assert_eq!(log.len(), 3);
    for r in &log {
        // The five hand-worked customers are too few for the interior models: the purchase
        // model is fitted at a boundary (reported in model_fit, not degraded) and the spend
        // model may fail (degraded, with the reason).
        assert_eq!(s(r, "status"), s(&log[0], "status"));
        if s(r, "status") == "degraded" {
            assert!(s(r, "message").contains("not fitted"), "{r:?}");
        } else {
            assert_eq!(s(r, "status"), "succeeded");
        }
        assert_eq!(
            i(r, "rows_in"),
            10,
            "transactions on or before the as-of day"
        );
        assert_eq!(s(r, "job"), "hand");
    }
    // Nine tables and the report, three files each.
    assert_eq!(first.len(), 27, "{:?}", first.keys().collect::<Vec<_>>());
}

#[test]
fn as_of_and_output_overrides() {
    let dir = setup();
    let out = run_in(
        dir.path(),
        &[
            "run",
            "job.toml",
            "--as-of",
            "2024-01-10",
            "--output",
            "elsewhere",
        ],
    );
    assert!(out.status.success());
    let part = partition(
        &dir.path().join("elsewhere"),
        "customer_features",
        "2024-01-10",
    );
    let rows = by_key(read_rows(&part.join("part-00000.parquet")), "customer_id");
    // As of 01-10: A has only the 01-01 day (15), B 01-05, C 2023-12-01, D 2023-11-01.
    assert_eq!(rows.len(), 4);
    assert_eq!(f(&rows["A"], "total_amount"), 15.0);
    assert_eq!(i(&rows["A"], "frequency"), 0);
    assert_eq!(f(&rows["C"], "T"), 40.0);
    assert!(!dir.path().join("out").exists());
}

/// Run a failing command after a good run: non-zero exit with the expected code, a one-line
/// message containing `needle`, and the earlier output byte-for-byte untouched.
fn assert_fails_cleanly(dir: &Path, job: &str, code: i32, needle: &str) {
    let out_root = dir.join("out");
    let before = snapshot(&out_root);
    std::fs::write(dir.join("bad.toml"), job).unwrap();
    let out = run_in(dir, &["run", "bad.toml"]);
    assert_eq!(out.status.code(), Some(code));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("custval: error: "), "{stderr}");
    assert!(last.contains(needle), "expected {needle:?} in {last:?}");
    assert!(before == snapshot(&out_root), "earlier output changed");
    if code == 3 {
        // The failure is logged in the runs table.
        let last = runs(&out_root).pop().expect("a runs row");
        assert_eq!(s(&last, "status"), "failed");
        assert!(s(&last, "message").contains(needle), "{last:?}");
    }
    assert!(!out_root.join("_staging").exists());
}

#[test]
fn bad_inputs_fail_clearly_and_leave_output_untouched() {
    let dir = setup();
    assert!(run_in(dir.path(), &["run", "job.toml"]).status.success());
    let d = dir.path();
    assert_fails_cleanly(
        d,
        &JOB.replace("amount = \"amt\"", "amount = \"amount\""),
        3,
        "column \"amount\" (columns.amount) not found (did you mean \"amt\"?)",
    );
    assert_fails_cleanly(
        d,
        &JOB.replace("amount = \"amt\"", "amount = \"cust\""),
        3,
        "column \"cust\" (columns.amount) has type str, expected a numeric type",
    );
    std::fs::write(d.join("data/broken.parquet"), b"this is not parquet").unwrap();
    assert_fails_cleanly(
        d,
        &JOB.replace("data/tx.parquet", "data/broken.parquet"),
        3,
        "broken.parquet",
    );
    assert_fails_cleanly(
        d,
        &JOB.replace("2024-01-31", "2020-01-31"),
        3,
        "no transaction on or before 2020-01-31",
    );
    assert_fails_cleanly(
        d,
        &JOB.replace("[tiers]", "colour = \"red\"\n[tiers]"),
        2,
        "unknown field `colour`",
    );
    assert_fails_cleanly(
        d,
        &JOB.replace("data/tx.parquet", "data/missing.parquet"),
        3,
        "missing.parquet",
    );
}

#[test]
fn validate_checks_without_writing() {
    let dir = setup();
    let out = run_in(dir.path(), &["validate", "job.toml"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("is valid: 1 input file(s)"));
    assert!(!dir.path().join("out").exists());
    std::fs::write(
        dir.path().join("bad.toml"),
        JOB.replace("timestamp = \"ts\"", "timestamp = \"amt\""),
    )
    .unwrap();
    let out = run_in(dir.path(), &["validate", "bad.toml"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected Date or Datetime"));
}

#[test]
fn json_logs_for_schedulers() {
    let dir = setup();
    let out = custval()
        .args(["--log-format", "json", "run", "job.toml"])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["message"] == "table committed" && l["rows"] == 5));
    // Every line of the run carries its job and run id.
    let run_id = lines
        .iter()
        .find_map(|l| l["span"]["run_id"].as_str())
        .unwrap()
        .to_string();
    assert!(lines
        .iter()
        .filter(|l| l["message"] == "table committed")
        .all(|l| l["span"]["job"] == "hand" && l["span"]["run_id"] == run_id.as_str()));
}

#[test]
fn a_failed_json_run_is_json_to_the_last_line() {
    let dir = setup();
    let out = custval()
        .args([
            "--log-format",
            "json",
            "run",
            "job.toml",
            "--as-of",
            "2040-01-31",
        ])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\x1b'), "no ANSI codes: {stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["exit_code"], 3);
    assert_eq!(last["error_kind"], "bad_input");
    assert_eq!(last["job"], "hand");
    assert_eq!(last["as_of"], "2040-01-31");
    assert!(last["run_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(last["message"]
        .as_str()
        .unwrap()
        .contains("quality.max_staleness_days"));
    // No record repeats a key (serde_json keeps the last of duplicates, so compare with the
    // raw text).
    for l in stderr.lines() {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
        assert_eq!(
            l.matches("\"message\":").count(),
            usize::from(v.contains_key("message"))
        );
    }
    // Text logs to a file carry no colour codes either.
    let out = run_in(dir.path(), &["run", "job.toml", "--as-of", "2040-01-31"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\x1b'));
    // Usage errors have the same prefix as every other error.
    let out = run_in(dir.path(), &["run", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("custval: error: "));
}

#[test]
fn behaviour_tables_by_hand() {
    let dir = setup();
    let job = format!(
        "{}\n[matrix]\nrelationship_threshold = 0.0\n",
        JOB.replace("[clv]\n", "[clv]\nenabled = false\n")
    );
    std::fs::write(dir.path().join("job.toml"), job).unwrap();
    assert!(run_in(dir.path(), &["run", "job.toml"]).status.success());
    let out = dir.path().join("out");
    let table = |t: &str| read_rows(&partition(&out, t, "2024-01-31").join("part-00000.parquet"));

    // Monthly activity: 2023-11 {D}; 2023-12 {C}; 2024-01 {A, B, C, E}.
    let churn = table("churn_rates");
    let periods: Vec<String> = churn.iter().map(|r| s(r, "period")).collect();
    assert_eq!(periods, ["2023-11", "2023-12", "2024-01"]);
    let counts = |r: &Row| {
        [
            "active_start",
            "retained",
            "churned",
            "new",
            "reactivated",
            "active",
        ]
        .map(|k| i(r, k))
    };
    assert_eq!(counts(&churn[0]), [0, 0, 0, 1, 0, 1]);
    assert_eq!(counts(&churn[1]), [1, 0, 1, 1, 0, 1], "D churned, C new");
    assert_eq!(
        counts(&churn[2]),
        [1, 1, 0, 3, 0, 4],
        "C retained; A, B, E new"
    );
    assert_eq!(f(&churn[1], "churn_rate"), 1.0);
    assert_eq!(f(&churn[2], "churn_rate"), 0.0);
    assert_eq!(f(&churn[2], "revenue"), 65.0 + 100.0 + 60.0 + 3.0);
    assert_eq!(f(&churn[2], "revenue_retained"), 60.0);
    assert_eq!(f(&churn[2], "revenue_new"), 168.0);
    assert!(matches!(
        churn[0]["churn_rate"],
        parquet::record::Field::Null
    ));

    // Cohorts: 2023-11 {D} never returns; 2023-12 {C} returns in January; 2024-01 {A, B, E}.
    let cohorts: Vec<(String, i64, i64)> = table("cohort_retention")
        .iter()
        .map(|r| (s(r, "cohort"), i(r, "period_offset"), i(r, "active")))
        .collect();
    assert_eq!(
        cohorts,
        [
            ("2023-11".into(), 0, 1),
            ("2023-11".into(), 1, 0),
            ("2023-11".into(), 2, 0),
            ("2023-12".into(), 0, 1),
            ("2023-12".into(), 1, 1),
            ("2024-01".into(), 0, 3),
        ]
    );
    let c12 = &table("cohort_retention")[4];
    assert_eq!(f(c12, "retention"), 1.0);
    assert_eq!(f(c12, "cumulative_revenue_per_customer"), 100.0);

    // Without the models the value metric is total_amount; its median is 65 (A), so A, B, C
    // are high value; every relationship score is >= 0, so all are strong.
    let vm = table("value_matrix");
    let quads: Vec<(String, i64, String)> = vm
        .iter()
        .map(|r| (s(r, "value_quadrant"), i(r, "customers"), s(r, "action")))
        .collect();
    assert_eq!(
        quads,
        [
            (
                "high value / strong relationship".into(),
                3,
                "keep and personalise".into()
            ),
            (
                "low value / strong relationship".into(),
                2,
                "grow the value".into()
            ),
        ]
    );
    assert_eq!(s(&vm[0], "dimension"), "all");

    // Lifecycle: thresholds max(3 × median gap, 90): A 90 (gaps 10, 20), C 150 (gap 50),
    // B, D, E 90. D has been silent 91 days → churned; everyone else has tenure < 90 → new.
    let feats = by_key(table("customer_features"), "customer_id");
    for (id, stage, warning, threshold) in [
        ("A", "new", "ok", 90.0),
        ("B", "new", "ok", 90.0),
        ("C", "new", "ok", 150.0),
        ("D", "churned", "churned", 90.0),
        ("E", "new", "ok", 90.0),
    ] {
        assert_eq!(s(&feats[id], "lifecycle_stage"), stage, "{id}");
        assert_eq!(s(&feats[id], "early_warning"), warning, "{id}");
        assert_eq!(
            f(&feats[id], "inactivity_threshold_days"),
            threshold,
            "{id}"
        );
    }
    assert_eq!(f(&feats["A"], "median_gap_days"), 15.0);
    assert!(
        !feats["A"].contains_key("clv"),
        "no CLV columns when clv.enabled = false"
    );
}

/// Everyone bought once (one with a zero amount, one with a return): the models cannot be
/// identified. The run still succeeds, says why in `model_fit` and the log, and leaves the
/// model columns null instead of writing a number.
#[test]
fn degenerate_history_fails_unless_told_to_publish_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("cust".into(), ["a", "b", "c"]),
        Column::new("ts".into(), [19723, 19730, 19740])
            .cast(&DataType::Date)
            .unwrap(),
        Column::new("amt".into(), [10.0, 0.0, -5.0]),
    ])
    .unwrap();
    write_parquet(&mut df, &dir.path().join("data/tx.parquet"));
    let job = JOB
        .replace("[source]", "lookback_days = 400\n[source]")
        .replace("as_of = \"2024-01-31\"", "as_of = \"2024-02-29\"");
    // The default: no model, no run (exit 3), nothing published.
    std::fs::write(
        dir.path().join("job.toml"),
        job.replace("on_fit_failure = \"null\"", ""),
    )
    .unwrap();
    let out = run_in(dir.path(), &["run", "job.toml"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the purchase model could not be fitted")
            && stderr.contains("no customer made a repeat purchase")
            && stderr.contains("clv.on_fit_failure = \"null\""),
        "{stderr}"
    );
    assert!(!dir.path().join("out/customer_features").exists());
    // on_fit_failure = "null": published, degraded, the model columns null.
    std::fs::write(dir.path().join("job.toml"), job).unwrap();
    let out = custval()
        .args(["run", "job.toml"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("could not be fitted"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("degraded: purchase model not fitted"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let root = dir.path().join("out");
    let fit = by_key(
        read_rows(&partition(&root, "model_fit", "2024-02-29").join("part-00000.parquet")),
        "model",
    );
    assert!(matches!(
        fit["bgnbd"]["converged"],
        parquet::record::Field::Bool(false)
    ));
    assert!(s(&fit["bgnbd"], "message").contains("no customer made a repeat purchase"));
    let feats =
        read_rows(&partition(&root, "customer_features", "2024-02-29").join("part-00000.parquet"));
    assert_eq!(feats.len(), 3);
    for r in &feats {
        for c in ["prob_alive", "clv", "expected_spend"] {
            assert!(matches!(r[c], parquet::record::Field::Null), "{c}: {r:?}");
        }
        // Every number that is written is finite.
        for (k, v) in r {
            if let parquet::record::Field::Double(x) = v {
                assert!(x.is_finite(), "{k} = {x}");
            }
        }
    }
}

/// An interactions table counts rows per customer; with every other relationship weight ~0 the
/// score is 100 × the percentile rank of the count. Counts A 3, B 1, C 2, D and E 0: average
/// ranks D, E 1.5, B 3, C 4, A 5 → (rank − 1) / 4 = 0.125, 0.5, 0.75, 1.
#[test]
fn interactions_table_counts_rows_per_customer() {
    let dir = setup();
    let mut df = DataFrame::new_infer_height(vec![Column::new(
        "who".into(),
        ["A", "A", "A", "B", "C", "C", "Z"],
    )])
    .unwrap();
    write_parquet(&mut df, &dir.path().join("data/contacts.parquet"));
    let job = format!(
        "{JOB}\n[relationship]\nloyalty = 1e-9\ninteraction = 0.0\ndepth = 0.0\nbreadth = 0.0\n\
         interactions = {{ uri = \"data/contacts.parquet\", customer_id = \"who\", weight = 1.0 }}\n"
    );
    std::fs::write(dir.path().join("job.toml"), job).unwrap();
    assert!(run_in(dir.path(), &["run", "job.toml"]).status.success());
    let feats = by_key(
        read_rows(
            &partition(&dir.path().join("out"), "customer_features", "2024-01-31")
                .join("part-00000.parquet"),
        ),
        "customer_id",
    );
    for (id, want) in [
        ("A", 100.0),
        ("B", 50.0),
        ("C", 75.0),
        ("D", 12.5),
        ("E", 12.5),
    ] {
        let got = f(&feats[id], "relationship_score");
        assert!((got - want).abs() < 1e-4, "{id}: {got} vs {want}");
    }
    // A misnamed column in the interactions table names its key.
    let bad = std::fs::read_to_string(dir.path().join("job.toml"))
        .unwrap()
        .replace("customer_id = \"who\"", "customer_id = \"whom\"");
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let out = run_in(dir.path(), &["validate", "bad.toml"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "column \"whom\" (relationship.interactions.customer_id) not found (did you mean \"who\"?)"
    ));
}

/// `categories` counts the distinct non-null categories bought inside the window: P bought
/// books before the 31-day window, then music twice and games (and one line without a
/// category) inside it → 2; Q only bought lines without a category → 0.
#[test]
fn categories_are_counted_inside_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let rows: &[(&str, i32, Option<&str>)] = &[
        ("P", 19692, Some("books")), // 2023-12-01
        ("P", 19727, Some("music")), // 2024-01-05
        ("P", 19728, Some("music")),
        ("P", 19729, Some("games")),
        ("P", 19729, None),
        ("Q", 19732, None),
    ];
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("cust".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        Column::new("ts".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>())
            .cast(&DataType::Date)
            .unwrap(),
        Column::new("amt".into(), vec![1.0; rows.len()]),
        Column::new("cat".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
    ])
    .unwrap();
    write_parquet(&mut df, &dir.path().join("data/tx.parquet"));
    let job = JOB
        .replace("[source]", "lookback_days = 31\n[source]")
        .replace("amount = \"amt\"", "amount = \"amt\"\ncategory = \"cat\"");
    std::fs::write(dir.path().join("job.toml"), job).unwrap();
    assert!(run_in(
        dir.path(),
        &[
            "backfill",
            "--allow-degraded",
            "job.toml",
            "--from",
            "2023-12-01",
            "--to",
            "2024-01-31"
        ]
    )
    .status
    .success());
    let cats = |as_of: &str| -> Vec<(String, i64)> {
        read_rows(
            &partition(&dir.path().join("out"), "customer_features", as_of)
                .join("part-00000.parquet"),
        )
        .iter()
        .map(|r| (s(r, "customer_id"), i(r, "categories")))
        .collect()
    };
    assert_eq!(cats("2023-12-31"), [("P".to_string(), 1)]);
    assert_eq!(
        cats("2024-01-31"),
        [("P".to_string(), 2), ("Q".to_string(), 0)]
    );
}

/// Warehouse exports often store money as DECIMAL: such a column (written by pyarrow, with an
/// unmapped DECIMAL column beside it) is read and summed exactly.
#[test]
fn decimal_amounts_are_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(
        root.join("tests/data/decimal_amounts.parquet"),
        dir.path().join("data/tx.parquet"),
    )
    .unwrap();
    let job = JOB
        .replace("customer_id = \"cust\"", "customer_id = \"customer_id\"")
        .replace("timestamp = \"ts\"", "timestamp = \"order_date\"")
        .replace("amount = \"amt\"", "amount = \"amount\"");
    std::fs::write(dir.path().join("job.toml"), job).unwrap();
    assert!(run_in(dir.path(), &["run", "job.toml"]).status.success());
    let rows = by_key(
        read_rows(
            &partition(&dir.path().join("out"), "customer_features", "2024-01-31")
                .join("part-00000.parquet"),
        ),
        "customer_id",
    );
    assert_eq!(f(&rows["A"], "total_amount"), 30.75);
    assert_eq!(f(&rows["A"], "monetary"), 20.5);
    assert_eq!(f(&rows["B"], "total_amount"), 7.0);
}

#[test]
fn job_paths_resolve_against_the_job_file_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/b2b.toml");
    let job = job.to_str().unwrap();
    // jobs/b2b.toml names ../sample_data/b2b/...: found from a working directory elsewhere.
    let out = run_in(dir.path(), &["validate", job]);
    assert!(out.status.success());
    // --output is a command-line path: relative to the working directory.
    let out = run_in(dir.path(), &["run", job, "--output", "here"]);
    assert!(out.status.success());
    assert!(partition(&dir.path().join("here"), "customer_features", "2024-12-31").exists());
}

#[test]
fn validate_checks_that_the_output_is_writable() {
    let dir = setup();
    let d = dir.path();
    std::fs::write(d.join("a-file"), b"x").unwrap();
    std::fs::write(
        d.join("job.toml"),
        JOB.replace("uri = \"out\"", "uri = \"a-file/out\""),
    )
    .unwrap();
    let out = run_in(d, &["validate", "job.toml"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a-file/out"));
    // A writable output is left as it was: the marker is removed.
    std::fs::write(d.join("job.toml"), JOB).unwrap();
    assert!(run_in(d, &["validate", "job.toml"]).status.success());
    assert!(!d.join("out").exists());
}

#[test]
fn the_plan_example_in_the_docs_is_real_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/scheduling.md")).unwrap();
    let cmd =
        "$ custval plan jobs/b2b.toml --from 2024-10-01 --to 2024-12-31 --output /tmp/plan-doc\n";
    let start = doc.find(cmd).expect("the plan example") + cmd.len();
    let example = &doc[start..start + doc[start..].find("```").unwrap()];
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("plan-doc");
    let out_s = out.to_str().unwrap();
    let backfill = run_in(
        root,
        &[
            "backfill",
            "--allow-degraded",
            "jobs/b2b.toml",
            "--from",
            "2024-11-01",
            "--to",
            "2024-11-30",
            "--output",
            out_s,
        ],
    );
    assert!(backfill.status.success());
    let plan = run_in(
        root,
        &[
            "plan",
            "jobs/b2b.toml",
            "--from",
            "2024-10-01",
            "--to",
            "2024-12-31",
            "--output",
            out_s,
        ],
    );
    assert!(plan.status.success());
    let normalise = |text: &str, root_path: &str, out_path: &str| -> Vec<String> {
        text.lines()
            .map(|l| {
                let l = l.replace(out_path, "<out>").replace(root_path, "<root>");
                match l.find("job hash ") {
                    Some(i) => format!("{}job hash <hash>", &l[..i]),
                    None => l,
                }
            })
            .collect()
    };
    assert_eq!(
        normalise(
            &String::from_utf8_lossy(&plan.stdout),
            root.to_str().unwrap(),
            out_s
        ),
        normalise(example, "/work/main", "/tmp/plan-doc"),
        "regenerate the example in docs/scheduling.md (section on plan) from a real run"
    );
}

#[test]
fn a_source_glob_matching_nothing_is_a_clear_error() {
    let dir = setup();
    std::fs::write(
        dir.path().join("job.toml"),
        JOB.replace("data/tx.parquet", "data/nothing-*.parquet"),
    )
    .unwrap();
    let out = run_in(dir.path(), &["run", "job.toml"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing-*.parquet") && err.contains("check source.uri"),
        "{err}"
    );
    assert!(!err.contains("PlRefPath"), "{err}");
}

#[test]
fn a_score_column_on_the_interactions_table_is_a_job_error() {
    let dir = setup();
    let job = format!(
        "{JOB}\n[relationship.interactions]\nuri = \"data/tx.parquet\"\ncustomer_id = \"cust\"\ncolumn = \"amt\"\nweight = 0.1\n"
    );
    std::fs::write(dir.path().join("job.toml"), &job).unwrap();
    let out = run_in(dir.path(), &["validate", "job.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = job
        .lines()
        .position(|l| l.starts_with("column = "))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("job.toml:{line}:")) && err.contains("unknown field `column`"),
        "{err}"
    );
}

#[test]
fn one_run_per_job_and_dead_staging_is_cleaned() {
    let dir = setup();
    let d = dir.path();
    // A killed run's staging: reported by plan, removed by the next run.
    std::fs::create_dir_all(d.join("out/_staging/20240101T000000Z-dead/t/as_of=2024-01-31"))
        .unwrap();
    std::fs::write(
        d.join("out/_staging/20240101T000000Z-dead/t/as_of=2024-01-31/part-00000.parquet"),
        b"half",
    )
    .unwrap();
    let plan = run_in(d, &["plan", "job.toml"]);
    assert!(String::from_utf8_lossy(&plan.stdout)
        .contains("20240101T000000Z-dead (of a dead run: the next run removes it)"));
    assert!(run_in(d, &["run", "job.toml"]).status.success());
    assert!(
        !d.join("out/_staging").exists(),
        "leftovers and the run's own lock are gone"
    );
    // Another run of the job holds the lock: a second run fails at once with exit 4.
    std::fs::write(d.join("out/_locks/hand.lock"), "20240101T000000Z-holder").unwrap();
    let mut holder = std::process::Command::new("flock")
        .args(["-o", "out/_locks/hand.lock", "sleep", "30"])
        .current_dir(d)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t0 = std::time::Instant::now();
    let out = run_in(d, &["run", "job.toml"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(4));
    assert!(t0.elapsed().as_secs() < 10, "fails fast");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another run of this job is in progress (run 20240101T000000Z-holder"),
        "{err}"
    );
    // Once the holder is gone, the lock is free again.
    assert!(run_in(d, &["run", "job.toml"]).status.success());
}
