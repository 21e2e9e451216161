//! Backfills: one scan for many dates gives the same partitions as one run per date; reruns
//! skip up-to-date dates; a killed backfill is completed by a rerun; a failing date does not stop
//! the others; `plan` says what would happen.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

const JOB: &str = r#"
name = "gen"
as_of = "2023-06-30"
[source]
uri = "data/transactions/"
[columns]
customer_id = "customer_id"
timestamp = "order_date"
amount = "amount"
order_id = "order_id"
category = "category"
channel = "channel"
[attributes]
uri = "data/attributes.parquet"
customer_id = "customer_id"
region = "region"
industry = "industry"
[output]
uri = "out"

[quality]
# Generated month ends may fall days after a customer's last purchase.
max_staleness_days = 3650

[clv]
# The first weeks of a small generated history have no repeat buyer: no model can be fitted
# there. These tests are about backfill mechanics, so such dates publish degraded instead of
# failing (the default, tested in tests/cli.rs).
on_fit_failure = "null"
"#;

/// Dates published (succeeded, or degraded: the small generated histories often leave a model
/// unfitted) in a backfill's stdout.
fn published(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.contains("  succeeded  ") || l.contains("  degraded   "))
        .count()
}

fn published_on(stdout: &str, as_of: &str) -> bool {
    stdout.lines().any(|l| {
        l.contains(&format!("as_of={as_of}  succeeded"))
            || l.contains(&format!("as_of={as_of}  degraded"))
    })
}

fn setup(customers: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &[
            "generate",
            "--output",
            "data",
            "--customers",
            customers,
            "--seed",
            "7",
            "--from",
            "2023-01-01",
            "--to",
            "2023-06-30",
            "--files",
            "2",
            "--b2b",
        ],
    );
    assert!(out.status.success());
    std::fs::write(dir.path().join("job.toml"), JOB).unwrap();
    dir
}

/// Every table's rows under `root` for `as_of`, with the fit timings removed.
fn tables(root: &Path, as_of: &str) -> BTreeMap<String, Vec<Row>> {
    let mut out = BTreeMap::new();
    for t in [
        "customer_features",
        "segment_summary",
        "model_fit",
        "churn_rates",
        "cohort_retention",
        "value_matrix",
        "model_diagnostics",
    ] {
        if !partition(root, t, as_of).exists() {
            continue;
        }
        let mut rows = read_rows(&partition(root, t, as_of).join("part-00000.parquet"));
        for r in &mut rows {
            r.remove("fit_seconds");
        }
        out.insert(t.to_string(), rows);
    }
    out
}

#[test]
fn backfill_equals_separate_runs_and_resumes() {
    let dir = setup("400");
    let d = dir.path();
    let out = run_in(
        d,
        &[
            "backfill",
            "--allow-degraded",
            "job.toml",
            "--from",
            "2023-03-01",
            "--to",
            "2023-05-31",
            "--every",
            "month",
        ],
    );
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(published(&stdout), 3, "{stdout}");
    for as_of in ["2023-03-31", "2023-04-30", "2023-05-31"] {
        let single = format!("single-{as_of}");
        assert!(run_in(
            d,
            &["run", "job.toml", "--as-of", as_of, "--output", &single]
        )
        .status
        .success());
        let a = tables(&d.join("out"), as_of);
        let b = tables(&d.join(&single), as_of);
        for (t, rows) in &a {
            assert!(!rows.is_empty(), "{t} {as_of} is empty");
            assert!(
                rows == &b[t],
                "{t} as of {as_of}: backfill differs from a single run"
            );
        }
        // Attributes from the second table arrived; breakdowns by region exist.
        let seg = &a["segment_summary"];
        assert!(seg.iter().any(|r| s(r, "dimension") == "region"));
        assert!(seg.iter().any(|r| s(r, "dimension") == "channel"));
    }

    // Rerun: everything is up to date.
    let out = run_in(
        d,
        &[
            "backfill",
            "--allow-degraded",
            "job.toml",
            "--from",
            "2023-03-01",
            "--to",
            "2023-05-31",
        ],
    );
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("skipped").count(), 3, "{stdout}");

    // A lost partition is recomputed, and only its date.
    std::fs::remove_dir_all(partition(&d.join("out"), "value_matrix", "2023-04-30")).unwrap();
    let plan = run_in(
        d,
        &[
            "plan",
            "job.toml",
            "--from",
            "2023-03-01",
            "--to",
            "2023-05-31",
        ],
    );
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("as_of=2023-04-30  write  (value_matrix: no committed partition)"),
        "{plan}"
    );
    assert!(plan.contains("as_of=2023-03-31  skip "), "{plan}");
    let out = run_in(
        d,
        &[
            "backfill",
            "--allow-degraded",
            "job.toml",
            "--from",
            "2023-03-01",
            "--to",
            "2023-05-31",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(published(&stdout), 1, "{stdout}");
    assert!(published_on(&stdout, "2023-04-30"), "{stdout}");

    // A changed job definition makes every date stale; --force recomputes up-to-date dates.
    std::fs::write(
        d.join("job.toml"),
        JOB.replace("[output]", "[churn]\nperiod = \"week\"\n[output]"),
    )
    .unwrap();
    let plan = run_in(d, &["plan", "job.toml", "--as-of", "2023-03-31"]);
    assert!(String::from_utf8_lossy(&plan.stdout).contains("job definition changed"));
    std::fs::write(d.join("job.toml"), JOB).unwrap();
    let out = run_in(
        d,
        &[
            "backfill",
            "--allow-degraded",
            "job.toml",
            "--from",
            "2023-03-31",
            "--to",
            "2023-03-31",
            "--every",
            "day",
            "--force",
        ],
    );
    assert_eq!(published(&String::from_utf8_lossy(&out.stdout)), 1);

    // The runs table logged every date of every invocation.
    let statuses: Vec<String> = runs(&d.join("out"))
        .iter()
        .map(|r| s(r, "status"))
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| *s == "succeeded" || *s == "degraded")
            .count(),
        3 + 1 + 1
    );
    assert_eq!(statuses.iter().filter(|s| *s == "skipped").count(), 3 + 2);
    // A data file that no longer matches its manifest, or a corrupt manifest, is not up to date.
    let p = partition(&d.join("out"), "churn_rates", "2023-03-31");
    std::fs::write(p.join("part-00000.parquet"), b"truncated").unwrap();
    std::fs::write(
        partition(&d.join("out"), "segment_summary", "2023-05-31").join("_manifest.json"),
        b"{ not json",
    )
    .unwrap();
    // Valid JSON of another shape is corrupt too (not "data does not match").
    std::fs::write(
        partition(&d.join("out"), "customer_features", "2023-04-30").join("_manifest.json"),
        b"{}",
    )
    .unwrap();
    let plan = run_in(
        d,
        &[
            "plan",
            "job.toml",
            "--from",
            "2023-03-01",
            "--to",
            "2023-05-31",
        ],
    );
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("as_of=2023-03-31  write  (churn_rates: data does not match manifest)"),
        "{plan}"
    );
    assert!(
        plan.contains("as_of=2023-05-31  write  (segment_summary: corrupt manifest)"),
        "{plan}"
    );
    assert!(
        plan.contains("as_of=2023-04-30  write  (customer_features: corrupt manifest)"),
        "{plan}"
    );
}

#[test]
fn failing_dates_do_not_stop_the_others() {
    let dir = setup("200");
    // The history starts in 2023: the 2022 month ends have no transactions.
    let out = run_in(
        dir.path(),
        &[
            "backfill",
            "--allow-degraded",
            "job.toml",
            "--from",
            "2022-11-01",
            "--to",
            "2023-02-28",
        ],
    );
    assert_eq!(out.status.code(), Some(5));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("as_of=2022-11-30  failed"), "{stdout}");
    assert!(published_on(&stdout, "2023-01-31"), "{stdout}");
    assert!(published_on(&stdout, "2023-02-28"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 of 4 dates failed (2022-11-30, 2022-12-31)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no transaction on or before 2022-11-30"),
        "{stderr}"
    );
}

#[test]
fn killed_backfill_is_completed_by_a_rerun() {
    let dir = setup("300");
    let d = dir.path();
    let args = [
        "backfill",
        "--allow-degraded",
        "job.toml",
        "--from",
        "2023-01-01",
        "--to",
        "2023-06-30",
        "--every",
        "week",
    ];
    let mut child = custval()
        .arg("--log-format")
        .arg("json")
        .args(args)
        .current_dir(d)
        .env("RUST_LOG", "custval=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it at a synchronised point: right after the backfill reports its third date
    // published, so some dates are done and most are not, every time.
    use std::io::BufRead;
    let mut published_before = Vec::new();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("\"date published\"") {
            let at = line.find("\"as_of\":\"").expect("as_of in the event") + 9;
            published_before.push(line[at..at + 10].to_string());
            if published_before.len() == 3 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        published_before.len(),
        3,
        "the backfill ended before its third date"
    );
    let cf = d.join("out/customer_features");
    // Every visible partition is whole.
    for table in std::fs::read_dir(d.join("out")).unwrap() {
        let table = table.unwrap().path();
        if table.ends_with("runs") || table.ends_with("_staging") || table.ends_with("_locks") {
            continue;
        }
        let data = if table.ends_with("report") {
            "index.html"
        } else {
            "part-00000.parquet"
        };
        for part in std::fs::read_dir(&table).unwrap() {
            let part = part.unwrap().path();
            for f in [data, "_manifest.json", "_SUCCESS"] {
                assert!(part.join(f).exists(), "{} lacks {f}", part.display());
            }
        }
    }
    let done_before = std::fs::read_dir(&cf).unwrap().count();
    assert!(
        (3..26).contains(&done_before),
        "killed with {done_before} of 26 dates done"
    );
    let out = run_in(d, &args);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 2023-01-01 .. 2023-06-30 holds 26 Sundays (2023-01-01 is one).
    assert_eq!(std::fs::read_dir(&cf).unwrap().count(), 26);
    // Resume: every date reported published before the kill is skipped, the rest computed.
    for as_of in &published_before {
        assert!(
            stdout.contains(&format!("as_of={as_of}  skipped")),
            "{as_of} was published before the kill but not skipped: {stdout}"
        );
    }
    let skipped = stdout.matches("  skipped  ").count();
    assert!(
        skipped >= 3 && skipped <= done_before && skipped < 26,
        "{skipped} skipped, {done_before} done before the kill: {stdout}"
    );
    // The killed run's staging folder, if the kill left one, was removed by the rerun.
    assert!(
        !d.join("out/_staging").exists(),
        "staging leftovers remain: {:?}",
        std::fs::read_dir(d.join("out/_staging"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
    );
}

/// With a lookback window and a holdout, the scan must also cover the holdout's calibration
/// window: a backfill still equals one run per date, `model_diagnostics` included.
#[test]
fn backfill_with_lookback_and_holdout_equals_separate_runs() {
    let dir = setup("300");
    let d = dir.path();
    std::fs::write(
        d.join("job.toml"),
        JOB.replace("[source]", "lookback_days = 90\n[source]")
            .replace("[clv]", "[clv]\nholdout_days = 45"),
    )
    .unwrap();
    let out = run_in(
        d,
        &[
            "backfill",
            "--allow-degraded",
            "job.toml",
            "--from",
            "2023-05-01",
            "--to",
            "2023-06-30",
        ],
    );
    assert!(out.status.success());
    for as_of in ["2023-05-31", "2023-06-30"] {
        let single = format!("single-{as_of}");
        assert!(run_in(
            d,
            &["run", "job.toml", "--as-of", as_of, "--output", &single]
        )
        .status
        .success());
        let a = tables(&d.join("out"), as_of);
        let b = tables(&d.join(&single), as_of);
        assert!(a.contains_key("model_diagnostics"));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (t, rows) in &a {
            assert!(
                rows == &b[t],
                "{t} as of {as_of}: backfill differs from a single run"
            );
        }
    }
}
