//! The run report: written by `run` and `backfill`, re-rendered by `custval report` from the
//! published tables alone, its headline numbers checked against those tables, and the B2B
//! sample's page opened in headless Chromium (Debian's `chromium`, driven by playwright-core
//! from `tests/node/`; `.ci/run` installs both).

mod common;
use common::*;
use parquet::record::Field;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn report_path(out: &Path, as_of: &str) -> PathBuf {
    partition(out, "report", as_of).join("index.html")
}

/// Run the B2B sample job into `out`.
fn run_b2b(out: &Path) {
    let o = run_in(
        root(),
        &["run", "jobs/b2b.toml", "--output", out.to_str().unwrap()],
    );
    assert!(o.status.success());
}

/// The `data-value` of the headline number `key`.
fn kpi(html: &str, key: &str) -> Option<String> {
    let at = html.find(&format!("data-kpi=\"{key}\""))?;
    let end = at + html[at..].find('>')?;
    let v = html[at..end].split("data-value=\"").nth(1)?;
    Some(v[..v.find('"')?].to_string())
}

fn kpi_f64(html: &str, key: &str) -> f64 {
    kpi(html, key)
        .unwrap_or_else(|| panic!("no value for {key}"))
        .parse()
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn headline_numbers_equal_the_published_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_b2b(&out);
    let html = std::fs::read_to_string(report_path(&out, "2024-12-31")).unwrap();
    // Sums over the published customer_features, read with the independent parquet crate.
    let cf =
        read_rows(&partition(&out, "customer_features", "2024-12-31").join("part-00000.parquet"));
    assert_eq!(kpi_f64(&html, "customers"), cf.len() as f64);
    let revenue: f64 = cf.iter().map(|r| f(r, "total_amount")).sum();
    assert!(close(kpi_f64(&html, "revenue"), revenue));
    let equity: f64 = cf
        .iter()
        .filter_map(|r| match &r["clv"] {
            Field::Double(v) => Some(*v),
            _ => None,
        })
        .sum();
    assert!(close(kpi_f64(&html, "customer_equity"), equity));
    let repeat = cf.iter().filter(|r| i(r, "frequency") > 0).count() as f64 / cf.len() as f64;
    assert!(close(kpi_f64(&html, "repeat_share"), repeat));
    // Churn rate of the last complete period.
    let cr = read_rows(&partition(&out, "churn_rates", "2024-12-31").join("part-00000.parquet"));
    let last = cr
        .iter()
        .rev()
        .find(|r| {
            matches!(r["partial"], Field::Bool(false))
                && matches!(r["churn_rate"], Field::Double(_))
        })
        .unwrap();
    assert!(close(kpi_f64(&html, "churn_rate"), f(last, "churn_rate")));
    assert!(html.contains(&format!("last complete period, {}", s(last, "period"))));
    // The chosen purchase model.
    let mf = read_rows(&partition(&out, "model_fit", "2024-12-31").join("part-00000.parquet"));
    let chosen = mf
        .iter()
        .find(|r| matches!(r["chosen"], Field::Bool(true)) && s(r, "model") != "gamma_gamma")
        .unwrap();
    assert_eq!(kpi(&html, "model").unwrap(), s(chosen, "model"));
    // A segment row of the page equals segment_summary's.
    let ss =
        read_rows(&partition(&out, "segment_summary", "2024-12-31").join("part-00000.parquet"));
    let champions = ss
        .iter()
        .find(|r| s(r, "dimension") == "all" && s(r, "rfm_segment") == "Champions")
        .unwrap();
    let row = format!(
        "<td>Champions</td><td class=\"num\" data-value=\"{}\">",
        i(champions, "customers")
    );
    assert!(html.contains(&row), "{row}");
    // The report partition has a manifest and _SUCCESS like every table.
    let dir_ = partition(&out, "report", "2024-12-31");
    assert!(dir_.join("_SUCCESS").exists() && dir_.join("_manifest.json").exists());
}

#[test]
fn report_command_rerenders_from_the_tables_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_b2b(&out);
    let page = report_path(&out, "2024-12-31");
    let first = std::fs::read(&page).unwrap();
    std::fs::remove_file(&page).unwrap();
    // A copy of the job whose source and attributes do not exist: `report` must not read them.
    let job = std::fs::read_to_string(root().join("jobs/b2b.toml"))
        .unwrap()
        .replace(
            "../sample_data/b2b/transactions/",
            "/nonexistent/transactions/",
        )
        .replace(
            "../sample_data/b2b/attributes.parquet",
            "/nonexistent/a.parquet",
        );
    let job_path = dir.path().join("b2b.toml");
    std::fs::write(&job_path, job).unwrap();
    let o = run_in(
        dir.path(),
        &["report", "b2b.toml", "--output", out.to_str().unwrap()],
    );
    assert!(o.status.success());
    // Drawn from the published Parquet, the page is byte for byte the one the run drew from
    // its in-memory frames.
    assert!(
        std::fs::read(&page).unwrap() == first,
        "re-rendered page differs"
    );
    // A partition that an earlier run left (its manifest names another run) is not mixed in.
    let fit_manifest = partition(&out, "model_fit", "2024-12-31").join("_manifest.json");
    let m = std::fs::read_to_string(&fit_manifest).unwrap();
    let run_id = serde_json::from_str::<serde_json::Value>(&m).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&fit_manifest, m.replace(&run_id, "an-older-run")).unwrap();
    let o = run_in(
        dir.path(),
        &["report", "b2b.toml", "--output", out.to_str().unwrap()],
    );
    assert!(o.status.success());
    let mixed = std::fs::read_to_string(&page).unwrap();
    assert!(
        mixed.contains("did not write `model_fit`"),
        "stale model_fit used"
    );
    // A date with no published tables: exit 3, naming what is missing.
    let o = run_in(
        dir.path(),
        &[
            "report",
            "b2b.toml",
            "--as-of",
            "2024-06-30",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no published customer_features as of 2024-06-30"),
        "{err}"
    );
}

#[test]
fn report_is_per_date_idempotent_and_can_be_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let backfill = [
        "backfill",
        "--allow-degraded",
        "jobs/b2b.toml",
        "--from",
        "2024-10-01",
        "--to",
        "2024-12-31",
        "--every",
        "month",
        "--output",
        out.to_str().unwrap(),
    ];
    assert!(run_in(root(), &backfill).status.success());
    // One page per backfilled date.
    for d in ["2024-10-31", "2024-11-30", "2024-12-31"] {
        assert!(report_path(&out, d).exists(), "no report for {d}");
    }
    let first = std::fs::read(report_path(&out, "2024-12-31")).unwrap();
    // A forced rerun publishes the same page (no run id or timing in it).
    let forced = [&backfill[..], &["--force"]].concat();
    assert!(run_in(root(), &forced).status.success());
    assert!(std::fs::read(report_path(&out, "2024-12-31")).unwrap() == first);
    // `output.report = false`: no report partition.
    let job = std::fs::read_to_string(root().join("jobs/b2b.toml"))
        .unwrap()
        .replace(
            "../sample_data/",
            &format!("{}/sample_data/", root().display()),
        )
        .replace("[output]\n", "[output]\nreport = false\n");
    std::fs::write(dir.path().join("b2b.toml"), job).unwrap();
    let off = dir.path().join("off");
    let o = run_in(
        dir.path(),
        &["run", "b2b.toml", "--output", off.to_str().unwrap()],
    );
    assert!(o.status.success());
    assert!(off.join("customer_features").exists());
    assert!(!off.join("report").exists());
}

// ---- headless Chromium ---------------------------------------------------------------------

/// Run the browser check on `page`; returns its JSON report.
fn browser_check(page: &Path, png: &Path) -> serde_json::Value {
    let script = root().join("tests/node/check_report.mjs");
    assert!(
        root()
            .join("tests/node/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/node` (bash .ci/run does)"
    );
    assert!(
        Path::new(&std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into())).exists(),
        "chromium is not installed: `apt-get install chromium` (bash .ci/run does)"
    );
    let o = Command::new("node")
        .arg(&script)
        .arg(page)
        .arg(png)
        .output()
        .expect("node runs (install Node.js)");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "browser check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

#[test]
fn b2b_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_b2b(&out);
    let page = report_path(&out, "2024-12-31");
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-b2b.png");
    let r = browser_check(&page, &png);
    eprintln!("screenshot: {}", png.display());
    // No console output of any kind, no page error, no request beyond the page itself.
    assert_eq!(r["consoleMessages"], serde_json::json!([]), "{r}");
    assert_eq!(r["pageErrors"], serde_json::json!([]));
    assert_eq!(r["requests"], serde_json::json!([]));
    let dom = &r["dom"];
    assert_eq!(dom["scripts"], 0);
    let sections: Vec<&str> = dom["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        sections,
        [
            "segments",
            "tiers",
            "matrix",
            "churn",
            "cohorts",
            "clv",
            "model",
            "lifecycle",
            "quality",
            "breakdowns"
        ]
    );
    // Every chart of the issue: segments (2 bars + heatmap), Pareto, churn (2), cohorts, CLV
    // (2), calibration, P(alive) (2), lifecycle (2), breakdowns (3 attributes).
    assert!(dom["svgs"].as_u64().unwrap() >= 17, "{}", dom["svgs"]);
    assert_eq!(dom["tinySvgs"], 0);
    assert!(dom["captions"].as_u64().unwrap() >= dom["svgs"].as_u64().unwrap());
    assert!(dom["tables"].as_u64().unwrap() >= 17);
    let text = dom["text"].as_str().unwrap();
    for bad in ["NaN", "undefined", "Infinity"] {
        assert!(!text.contains(bad), "{bad} on the page");
    }
    // The screenshot is a long page with charts, not a blank one.
    let shot = &r["shot"];
    assert!(shot["height"].as_u64().unwrap() > 3000, "{shot}");
    assert!(shot["colours"].as_u64().unwrap() > 100, "{shot}");
    assert!(shot["nonWhiteShare"].as_f64().unwrap() > 0.05, "{shot}");
}

#[test]
fn the_browser_check_sees_requests_and_errors() {
    // The check itself can fail: a page that loads an image from the network and logs an
    // error is reported as such.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<html><body><p>x</p><img src=\"http://127.0.0.1:9/x.png\">\
         <script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let r = browser_check(&page, &dir.path().join("bad.png"));
    assert_eq!(r["requests"].as_array().unwrap().len(), 1, "{r}");
    assert!(r["consoleMessages"].to_string().contains("boom"), "{r}");
    assert_eq!(r["dom"]["scripts"], 1);
    // A nearly blank page: few colours, little ink.
    assert!(r["shot"]["nonWhiteShare"].as_f64().unwrap() < 0.05);
}
