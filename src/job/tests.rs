use super::validate::{parse_range, resolve_from};
use super::*;

const MINIMAL: &str = r#"
name = "t"
as_of = "2024-06-30"

[source]
uri = "data/tx.parquet"

[columns]
customer_id = "c"
timestamp = "ts"
amount = "amt"

[output]
uri = "out"
"#;

fn load_str(s: &str) -> Result<Job, JobError> {
    from_str(s, Path::new("job.toml"), &Overrides::default())
}

#[test]
fn minimal_job_gets_defaults() {
    let job = load_str(MINIMAL).unwrap();
    assert_eq!(job.as_of, NaiveDate::from_ymd_opt(2024, 6, 30).unwrap());
    assert_eq!(job.unit_days, 1.0);
    let mut all = Table::ALL.to_vec();
    all.push(Table::Report);
    assert_eq!(job.tables, all);
    assert_eq!(job.segments.len(), 11);
    assert_eq!(
        job.tiers,
        TierMethod::Pareto {
            high: 0.8,
            medium: 0.95
        }
    );
    assert_eq!(job.window_start(), None);
}

#[test]
fn bad_date_names_line_and_key() {
    let text = MINIMAL.replace("2024-06-30", "30/06/2024");
    let err = load_str(&text).unwrap_err().to_string();
    assert_eq!(
        err,
        "job.toml:3: as_of: expected YYYY-MM-DD (e.g. 2024-06-30), found \"30/06/2024\""
    );
}

#[test]
fn limits_that_keep_a_run_bounded() {
    for (extra, needle) in [
        (
            "[clv]\nhorizon_months = 12000",
            "horizon_months: expected 1 to 1200",
        ),
        ("[clv]\nmonthly_discount_rate = -0.99", "(-0.5, 10)"),
        (
            "[clv]\nmodel = \"paretonbd\"",
            "expected one of `auto`, `bgnbd`, `mbgnbd`, `pareto_nbd`",
        ),
        (
            "[clv]\ninterval_draws = 100000",
            "interval_draws: expected 0",
        ),
        (
            "[clv]\non_fit_failure = \"skip\"",
            "expected `fail` or `null`",
        ),
        ("[clv]\ndays_per_month = inf", "days_per_month"),
        ("[matrix]\nvalue_threshold = nan", "matrix.value_threshold"),
    ] {
        let e = load_str(&format!("{MINIMAL}\n{extra}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{extra}: {e}");
    }
    let e = load_str(&MINIMAL.replace("[output]", "[output]\ntables = []"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("output.tables: empty"), "{e}");
    let o = Overrides {
        output: Some(" ".into()),
        ..Default::default()
    };
    let e = from_str(MINIMAL, Path::new("j.toml"), &o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--output: must not be empty"), "{e}");
}

#[test]
fn unknown_key_suggests_the_closest() {
    let text = MINIMAL.replace("amount = ", "amont = ");
    let e = load_str(&text).unwrap_err().to_string();
    assert!(e.ends_with("(did you mean `amount`?)"), "{e}");
    assert_eq!(
        did_you_mean("unknown field `zzzzzzzz`, expected `a` or `b`".into()),
        "unknown field `zzzzzzzz`, expected `a` or `b`"
    );
}

#[test]
fn relative_uris_are_resolved_from_the_job_file() {
    let base = Path::new("/opt/jobs");
    assert_eq!(resolve_from(base, "../data/tx/"), "/opt/data/tx/");
    assert_eq!(resolve_from(base, "./tx.parquet"), "/opt/jobs/tx.parquet");
    assert_eq!(resolve_from(base, "/abs/x"), "/abs/x");
    assert_eq!(resolve_from(base, "s3://b/k"), "s3://b/k");
}

#[test]
fn unknown_key_is_an_error_with_line() {
    let text = MINIMAL.replace("amount = \"amt\"", "amount = \"amt\"\namountt = 1");
    let err = load_str(&text).unwrap_err().to_string();
    assert!(err.contains("job.toml"), "{err}");
    assert!(
        err.starts_with("job.toml:12: unknown field `amountt`"),
        "{err}"
    );
    assert!(err.contains("unknown field `amountt`"), "{err}");
}

#[test]
fn errors_after_parsing_point_at_the_key_line() {
    let text = format!("{MINIMAL}\n[churn]\nfloor_days = 30\nperiod = \"fortnight\"\n");
    let err = load_str(&text).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "job.toml:18: unknown variant `fortnight`, expected one of `week`, `month`, `quarter`"
        ),
        "{err}"
    );
    let text = format!("{MINIMAL}\n[tiers]\nmethod = \"percentile\"\nhigh = 0.9\nmedium = 0.5\n");
    let err = load_str(&text).unwrap_err().to_string();
    assert!(err.starts_with("job.toml:16: tiers:"), "{err}");
}

#[test]
fn missing_key_is_an_error() {
    let text = MINIMAL.replace("amount = \"amt\"\n", "");
    let err = load_str(&text).unwrap_err().to_string();
    assert!(err.contains("missing field `amount`"), "{err}");
}

#[test]
fn override_wins_and_lookback_window() {
    let text = MINIMAL.replace("as_of = \"2024-06-30\"", "lookback_days = 10");
    let o = Overrides {
        as_of: Some(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()),
        output: Some("elsewhere".into()),
        holdout_days: None,
        scratch: None,
        scratch_io: Default::default(),
        wait: false,
    };
    let job = from_str(&text, Path::new("j.toml"), &o).unwrap();
    assert_eq!(job.window_start(), NaiveDate::from_ymd_opt(2024, 1, 22));
    assert_eq!(job.output_uri, "elsewhere");
}

#[test]
fn segment_rules_must_cover_every_score() {
    let text = format!("{MINIMAL}\n[rfm]\nsegments = [{{ name = \"Top\", r = \"5\" }}]\n");
    let err = load_str(&text).unwrap_err().to_string();
    assert!(err.contains("no rule matches scores R=1 F=1 M=1"), "{err}");
    assert!(parse_range(Some("2-1")).is_err());
    assert_eq!(parse_range(Some("2-4")), Ok(ScoreRange(2, 4)));
}

#[test]
fn http_output_is_a_job_error() {
    let text = MINIMAL.replace("uri = \"out\"", "uri = \"https://example.com/out/\"");
    assert!(
        text.contains("https://example.com/out/"),
        "the fixture names its output"
    );
    let e = load_str(&text).unwrap_err().to_string();
    assert!(
        e.contains("output.uri") && e.contains("not written to"),
        "{e}"
    );
    let e = from_str(
        MINIMAL,
        Path::new("job.toml"),
        &Overrides {
            output: Some("http://127.0.0.1:8080/out".into()),
            ..Overrides::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("--output") && e.contains("not written to"),
        "{e}"
    );
}

#[test]
fn an_http_source_names_a_file() {
    for uri in [
        "https://example.com/data/",
        "https://example.com/data/*.parquet",
    ] {
        let text = MINIMAL.replace("uri = \"data/tx.parquet\"", &format!("uri = \"{uri}\""));
        assert!(text.contains(uri), "the fixture names its source");
        let e = load_str(&text).unwrap_err().to_string();
        assert!(
            e.contains("source.uri") && e.contains("must name one Parquet file"),
            "{e}"
        );
    }
    let text = MINIMAL.replace(
        "uri = \"data/tx.parquet\"",
        "uri = \"https://example.com/tx.parquet\"",
    );
    assert!(load_str(&text).is_ok());
}
