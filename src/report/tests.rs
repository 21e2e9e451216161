//! The report page on small hand-made tables: headline numbers worked out by hand, missing
//! pieces explained, text escaped, no NaN anywhere.

use super::*;
use chrono::NaiveDate;

/// Four customers: revenue 100 + 50 + 30 + 20 = 200; two with a repeat purchase.
fn features(with_clv: bool) -> DataFrame {
    let mut df = df!(
        "customer_id" => ["a", "b", "c", "d"],
        "total_amount" => [100.0, 50.0, 30.0, 20.0],
        "amount_last_365d" => [60.0, 50.0, 0.0, 20.0],
        "frequency" => [2i64, 0, 1, 0],
        "days_since_last" => [3i64, 40, 200, 400],
        "r_score" => [5i32, 4, 2, 1],
        "f_score" => [5i32, 1, 3, 1],
        "value_tier" => ["high", "medium", "low", "low"],
        "lifecycle_stage" => ["stable", "new", "declining", "churned"],
        "early_warning" => ["ok", "ok", "at risk", "churned"],
    )
    .unwrap();
    if with_clv {
        df.with_column(Column::new(
            "clv".into(),
            [Some(10.0), None, Some(5.0), Some(-1.0)],
        ))
        .unwrap();
        df.with_column(Column::new(
            "prob_alive".into(),
            [Some(0.9), None, Some(0.4), Some(0.05)],
        ))
        .unwrap();
    }
    df
}

fn churn_rates() -> DataFrame {
    df!(
        "period" => ["2024-Q1", "2024-Q2", "2024-Q3"],
        "partial" => [false, false, true],
        "churn_rate" => [None, Some(0.25), Some(0.5)],
        "retention_rate" => [None, Some(0.75), Some(0.5)],
        "new" => [4i64, 1, 0],
        "reactivated" => [0i64, 1, 0],
        "churned" => [0i64, 1, 2],
        "active" => [4i64, 5, 3],
    )
    .unwrap()
}

fn model_fit() -> DataFrame {
    df!(
        "model" => ["bgnbd", "pareto_nbd", "gamma_gamma"],
        "chosen" => [false, true, true],
        "converged" => [true, true, true],
        "log_likelihood" => [-10.0, -9.0, -5.0],
        "bic" => [25.0, 24.0, 12.0],
        "holdout_mae" => [None::<f64>, None, None],
        "boundary" => [None::<&str>, None, None],
        "message" => ["ok", "ok", "ok"],
    )
    .unwrap()
}

fn page(tables: &[(Table, DataFrame)]) -> String {
    render(&ReportInput {
        job: "t",
        as_of: NaiveDate::from_ymd_opt(2024, 9, 30).unwrap(),
        state: RunState::Succeeded,
        tables,
    })
    .unwrap()
}

/// The `data-value` of the headline number `key`.
fn kpi(html: &str, key: &str) -> Option<String> {
    let at = html.find(&format!("data-kpi=\"{key}\""))?;
    let rest = &html[at..html[at..].find('>')? + at];
    let v = rest.split("data-value=\"").nth(1)?;
    Some(v[..v.find('"')?].to_string())
}

#[test]
fn headline_numbers_by_hand() {
    let html = page(&[
        (Table::CustomerFeatures, features(true)),
        (Table::ChurnRates, churn_rates()),
        (Table::ModelFit, model_fit()),
    ]);
    assert_eq!(kpi(&html, "customers").as_deref(), Some("4"));
    assert_eq!(kpi(&html, "revenue").as_deref(), Some("200"));
    // 10 + 5 − 1; b has no CLV.
    assert_eq!(kpi(&html, "customer_equity").as_deref(), Some("14"));
    assert_eq!(kpi(&html, "repeat_share").as_deref(), Some("0.5"));
    // Q3 is still running: the last complete period is Q2.
    assert_eq!(kpi(&html, "churn_rate").as_deref(), Some("0.25"));
    assert!(html.contains("last complete period, 2024-Q2"));
    assert_eq!(kpi(&html, "model").as_deref(), Some("pareto_nbd"));
    assert!(html.contains("lowest BIC (24.0)"));
    // The top 20 % of 4 customers is 1 customer: 100 of 200.
    assert!(html.contains("the top 20 % of customers bring 50.0 % of revenue"));
    // Tiers: high 1 customer (25 %) with 100 of revenue.
    assert!(html.contains("<td class=\"num\" data-value=\"0.25\">25.0 %</td>"));
    // Revenue at risk: the "at risk" customer spent 0 in the last 365 days, "ok" 60 + 50.
    assert!(html.contains("<td class=\"num\" data-value=\"110\">110</td>"));
    for bad in ["NaN", "inf", "undefined", "<script"] {
        assert!(!html.contains(bad), "{bad} in the page");
    }
}

#[test]
fn missing_pieces_say_why() {
    let html = page(&[(Table::CustomerFeatures, features(false))]);
    assert!(kpi(&html, "customer_equity").is_none());
    assert!(html.contains("Not computed because the job has no [clv] section"));
    assert!(html.contains("did not write `churn_rates`"));
    assert!(html.contains("did not write `cohort_retention`"));
    assert!(
        html.contains("maps no region, industry or channel")
            || html.contains("did not write `segment_summary`")
    );
    assert!(!html.contains("NaN") && !html.contains("undefined"));
    // Every chart is inline SVG; nothing refers to the network.
    assert!(html.contains("<svg"));
    for bad in ["http://", "https://", "<script", "<link", "src="] {
        let hits: Vec<_> = html.match_indices(bad).collect();
        // The SVG namespace declaration is the only URL allowed.
        let allowed = html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
        if bad == "http://" {
            assert_eq!(hits.len(), allowed, "{bad}");
        } else {
            assert!(hits.is_empty(), "{bad} in the page");
        }
    }
}

#[test]
fn no_model_fitted_is_said_not_hidden() {
    let mut cf = features(true);
    cf.with_column(Column::new("clv".into(), [None::<f64>; 4]))
        .unwrap();
    cf.with_column(Column::new("prob_alive".into(), [None::<f64>; 4]))
        .unwrap();
    let mut mf = model_fit();
    mf.with_column(Column::new("chosen".into(), [false, false, false]))
        .unwrap();
    mf.with_column(Column::new(
        "message".into(),
        ["did not converge", "did not converge", "x"],
    ))
    .unwrap();
    let html = page(&[(Table::CustomerFeatures, cf), (Table::ModelFit, mf)]);
    assert!(kpi(&html, "customer_equity").is_none());
    assert!(html.contains("no purchase model was fitted: did not converge"));
    assert!(html.contains("Not computed because no purchase model was fitted"));
}

#[test]
fn text_from_the_tables_is_escaped() {
    let mut cf = features(false);
    cf.with_column(Column::new(
        "value_tier".into(),
        ["high", "medium", "low", "low"],
    ))
    .unwrap();
    let ss = df!(
        "dimension" => ["all", "all"],
        "dimension_value" => [None::<&str>, None],
        "rfm_segment" => ["<script>alert(1)</script>", "B & C"],
        "customers" => [1i64, 3],
        "customer_share" => [0.25, 0.75],
        "revenue" => [100.0, 100.0],
        "revenue_share" => [0.5, 0.5],
        "repeat_customer_share" => [1.0, 1.0 / 3.0],
    )
    .unwrap();
    let html = page(&[(Table::CustomerFeatures, cf), (Table::SegmentSummary, ss)]);
    assert!(!html.contains("<script>alert"), "unescaped table text");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(html.contains("B &amp; C"));
}

#[test]
fn non_finite_values_never_print_as_nan() {
    let mut cf = features(true);
    cf.with_column(Column::new(
        "total_amount".into(),
        [f64::NAN, 50.0, f64::INFINITY, 20.0],
    ))
    .unwrap();
    let html = page(&[(Table::CustomerFeatures, cf)]);
    assert!(
        !html.contains("NaN") && !html.contains("inf"),
        "non-finite printed"
    );
    // Revenue sums the finite amounts only.
    assert_eq!(kpi(&html, "revenue").as_deref(), Some("70"));
}

#[test]
fn clv_histogram_keeps_tiny_values_off_the_axis() {
    // A dead customer's CLV can be 1e-40: the axis spans at most 6 decades below the largest
    // value and says how many customers lie below it.
    let mut cf = features(true);
    cf.with_column(Column::new(
        "clv".into(),
        [Some(1e-40), Some(10.0), Some(100.0), Some(-3.0)],
    ))
    .unwrap();
    let html = page(&[(Table::CustomerFeatures, cf)]);
    assert!(
        html.contains("not on the axis: 1 customers with a CLV at or below 0")
            && html.contains("and 1 below 0.0001"),
        "{}",
        &html[html.find("Customers by CLV").unwrap_or(0)..][..400]
    );
    assert!(!html.contains("0.00 – 0.00"));
}

#[test]
fn no_clv_sums_to_nothing_not_zero() {
    let mut cf = features(true);
    cf.with_column(Column::new("clv".into(), [None::<f64>; 4]))
        .unwrap();
    let html = page(&[(Table::CustomerFeatures, cf)]);
    // The lifecycle tables' Σ CLV column is "–", never a made-up 0.
    let lifecycle = &html[html.find("id=\"lifecycle\"").unwrap()..];
    let lifecycle = &lifecycle[..lifecycle.find("</section>").unwrap()];
    assert!(lifecycle.contains("<td>–</td></tr>"));
    assert!(!lifecycle.contains(">0.00</td></tr>"), "{lifecycle}");
}

#[test]
fn breakdowns_show_the_largest_values_only() {
    let n = 25;
    let dims: Vec<&str> = std::iter::once("all")
        .chain((0..n).map(|_| "region"))
        .collect();
    let values: Vec<Option<String>> = std::iter::once(None)
        .chain((0..n).map(|i| Some(format!("r{i:02}"))))
        .collect();
    let customers: Vec<i64> = std::iter::once(325).chain((0..n).map(|i| i + 1)).collect();
    let ss = df!(
        "dimension" => dims,
        "dimension_value" => values,
        "rfm_segment" => vec!["Champions"; n as usize + 1],
        "customers" => customers,
    )
    .unwrap();
    let html = page(&[(Table::SegmentSummary, ss)]);
    assert!(
        html.contains("The 20 largest of 25 values are shown, the rest in one column."),
        "caption"
    );
    // The five smallest (1..=5 customers) are together: 15 customers.
    assert!(html.contains("<th>other 5 values</th>"));
    assert!(html.contains("15 (100.0 %)"));
    assert!(!html.contains("<th>r00</th>") && html.contains("<th>r24</th>"));
}

#[test]
fn a_table_without_a_column_costs_its_section_only() {
    // model_fit as written by an older custval (no `boundary` column).
    let mf = model_fit().drop("boundary").unwrap();
    let html = page(&[
        (Table::CustomerFeatures, features(true)),
        (Table::ModelFit, mf),
    ]);
    assert!(html.contains("Not drawn because the published tables do not support it"));
    assert!(html.contains("id=\"tiers\"") && kpi(&html, "customers").is_some());
}
