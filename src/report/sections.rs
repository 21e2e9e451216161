//! The report's sections, each computed from the published tables.

use super::charts;
use super::format::{amount, compact, count, fixed, pct, significant};
use super::{Cell, Figure, Kpi, NumTable, Quadrant, ReportInput, Section, Swatch};
use crate::columns::f64_column;
use crate::tables::Table;
use polars::prelude::*;

// ---- column access -------------------------------------------------------------------------

fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    let s = df.column(name)?.cast(&DataType::String)?;
    Ok(s.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

fn opt_f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let s = df.column(name)?.cast(&DataType::Float64)?;
    Ok(s.f64()?
        .iter()
        .map(|v| v.filter(|x| x.is_finite()))
        .collect())
}

fn bools(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<bool>>> {
    Ok(df.column(name)?.bool()?.iter().collect())
}

fn has(df: &DataFrame, name: &str) -> bool {
    df.column(name).is_ok()
}

/// The rows of a breakdown table (`segment_summary`, `value_matrix`) for the whole base.
fn whole_base(df: &DataFrame) -> PolarsResult<DataFrame> {
    df.clone()
        .lazy()
        .filter(col("dimension").eq(lit("all")))
        .collect()
}

/// A column as f64 values, iterated in place (customer_features may have millions of rows: the
/// report never copies a per-customer column into a vector, except to sort revenue).
fn floats(df: &DataFrame, name: &str) -> PolarsResult<Float64Chunked> {
    Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.clone())
}

/// Sum of the finite values of a column.
fn total(df: &DataFrame, name: &str) -> PolarsResult<f64> {
    Ok(floats(df, name)?
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .sum())
}

// ---- cells and tables ----------------------------------------------------------------------

fn num(text: String, value: f64) -> Cell {
    Cell {
        text,
        value: value.is_finite().then(|| value.to_string()),
        num: true,
    }
}

fn int(v: i64) -> Cell {
    Cell {
        text: count(v),
        value: Some(v.to_string()),
        num: true,
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell {
        text: s.into(),
        value: None,
        num: false,
    }
}

fn opt_num(v: Option<f64>, f: impl Fn(f64) -> String) -> Cell {
    match v {
        Some(v) => num(f(v), v),
        None => text("–"),
    }
}

fn table(headers: &[&str], rows: Vec<Vec<Cell>>) -> NumTable {
    NumTable {
        headers: headers.iter().map(|h| h.to_string()).collect(),
        rows,
        folded: false,
    }
}

fn legend(names: &[String]) -> Vec<Swatch> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Swatch {
            name: n.clone(),
            color: charts::color_hex(i),
        })
        .collect()
}

fn chart(r: Result<String, String>) -> PolarsResult<Option<String>> {
    r.map(Some)
        .map_err(|e| polars_err!(ComputeError: "report chart: {e}"))
}

fn not_written(t: Table) -> String {
    format!("Not computed because this run did not write `{t}` (see `output.tables`).")
}

const NO_CLV: &str =
    "Not computed because the job has no [clv] section: lifetime-value models are off.";

// ---- headline ------------------------------------------------------------------------------

pub(super) fn headline(input: &ReportInput) -> PolarsResult<Vec<Kpi>> {
    let mut out = Vec::new();
    let kpi = |key, label, text: String, value: Option<f64>, note: String| Kpi {
        key,
        label,
        text,
        value: value.filter(|v| v.is_finite()).map(|v| v.to_string()),
        note,
    };
    let Some(cf) = input.table(Table::CustomerFeatures) else {
        out.push(kpi(
            "customers",
            "Customers",
            "–".into(),
            None,
            not_written(Table::CustomerFeatures),
        ));
        return Ok(out);
    };
    let n = cf.height();
    out.push(kpi(
        "customers",
        "Customers",
        count(n as i64),
        Some(n as f64),
        "with a purchase in the window".into(),
    ));
    let revenue = total(cf, "total_amount")?;
    out.push(kpi(
        "revenue",
        "Revenue",
        amount(revenue),
        Some(revenue),
        "sum of amounts in the window".into(),
    ));
    if has(cf, "clv") {
        let clv = floats(cf, "clv")?;
        let valued = clv.iter().flatten().filter(|v| v.is_finite()).count();
        if valued > 0 {
            let equity = total(cf, "clv")?;
            out.push(kpi(
                "customer_equity",
                "Customer equity (Σ CLV)",
                amount(equity),
                Some(equity),
                format!("{} customers valued", count(valued as i64)),
            ));
        } else {
            out.push(kpi(
                "customer_equity",
                "Customer equity (Σ CLV)",
                "–".into(),
                None,
                "not computed because no purchase model was fitted (see model_fit)".into(),
            ));
        }
    } else {
        out.push(kpi(
            "customer_equity",
            "Customer equity (Σ CLV)",
            "–".into(),
            None,
            NO_CLV.into(),
        ));
    }
    let repeaters = floats(cf, "frequency")?
        .iter()
        .filter(|f| f.is_some_and(|f| f > 0.0))
        .count();
    let repeat = if n > 0 {
        repeaters as f64 / n as f64
    } else {
        f64::NAN
    };
    out.push(kpi(
        "repeat_share",
        "Repeat customers",
        pct(repeat),
        Some(repeat),
        "share with a second purchase day".into(),
    ));
    match input.table(Table::ChurnRates) {
        Some(cr) => {
            let periods = strs(cr, "period")?;
            let partial = bools(cr, "partial")?;
            let rate = opt_f64s(cr, "churn_rate")?;
            let last = (0..cr.height())
                .rev()
                .find(|&i| partial[i] == Some(false) && rate[i].is_some());
            match last {
                Some(i) => out.push(kpi(
                    "churn_rate",
                    "Churn rate",
                    pct(rate[i].unwrap_or(f64::NAN)),
                    rate[i],
                    format!(
                        "last complete period, {}",
                        periods[i].clone().unwrap_or_default()
                    ),
                )),
                None => out.push(kpi(
                    "churn_rate",
                    "Churn rate",
                    "–".into(),
                    None,
                    "not computed because no complete period has customers active before it".into(),
                )),
            }
        }
        None => out.push(kpi(
            "churn_rate",
            "Churn rate",
            "–".into(),
            None,
            not_written(Table::ChurnRates),
        )),
    }
    out.push(model_kpi(input)?);
    Ok(out)
}

/// The headline when it cannot be computed from the tables.
pub(super) fn failed_headline(e: PolarsError) -> Kpi {
    Kpi {
        key: "customers",
        label: "Customers",
        text: "–".into(),
        value: None,
        note: format!("not computed: {e}"),
    }
}

/// Why `t` (a model table) is absent: no models at all, or left out of the output.
fn no_model_table(input: &ReportInput, t: Table) -> String {
    match input.table(Table::CustomerFeatures) {
        Some(cf) if has(cf, "clv") => not_written(t),
        _ => NO_CLV.into(),
    }
}

fn model_kpi(input: &ReportInput) -> PolarsResult<Kpi> {
    let mut k = Kpi {
        key: "model",
        label: "Purchase model",
        text: "–".into(),
        value: None,
        note: no_model_table(input, Table::ModelFit),
    };
    let Some(mf) = input.table(Table::ModelFit) else {
        return Ok(k);
    };
    let models = strs(mf, "model")?;
    let chosen = bools(mf, "chosen")?;
    let bic = opt_f64s(mf, "bic")?;
    let mae = opt_f64s(mf, "holdout_mae")?;
    let messages = strs(mf, "message")?;
    let pick = (0..mf.height())
        .find(|&i| chosen[i] == Some(true) && models[i].as_deref() != Some("gamma_gamma"));
    match pick {
        Some(i) => {
            let name = models[i].clone().unwrap_or_default();
            k.text = name.clone();
            k.value = Some(name);
            k.note = match (mae[i], bic[i]) {
                (Some(m), _) => format!("holdout MAE {} purchases per customer", fixed(m, 3)),
                (None, Some(b)) => format!("lowest BIC ({})", fixed(b, 1)),
                _ => "fitted".into(),
            };
            if let Some(d) = input.table(Table::ModelDiagnostics) {
                let groups = strs(d, "calibration_frequency")?;
                if let Some(j) = groups.iter().position(|g| g.as_deref() == Some("all")) {
                    let corr = opt_f64s(d, "correlation")?[j];
                    let bias = opt_f64s(d, "bias")?[j];
                    k.note.push_str(&format!(
                        "; correlation {}, bias {}",
                        corr.map(|c| fixed(c, 2)).unwrap_or("–".into()),
                        bias.map(|b| format!("{b:+.3}")).unwrap_or("–".into())
                    ));
                }
            }
        }
        None => {
            k.text = "none".into();
            let why: Vec<String> = (0..mf.height())
                .filter(|&i| models[i].as_deref() != Some("gamma_gamma"))
                .filter_map(|i| messages[i].clone().filter(|m| !m.is_empty()))
                .take(1)
                .collect();
            k.note = if why.is_empty() {
                "no purchase model was fitted (see model_fit)".into()
            } else {
                format!("no purchase model was fitted: {}", why.join("; "))
            };
        }
    }
    Ok(k)
}

// ---- sections ------------------------------------------------------------------------------

pub(super) fn all(input: &ReportInput) -> Vec<Section> {
    let cf = input.table(Table::CustomerFeatures);
    let with_cf = |f: fn(&DataFrame) -> PolarsResult<Vec<Figure>>| match cf {
        Some(cf) => f(cf),
        None => Ok(vec![Figure::missing(
            "",
            not_written(Table::CustomerFeatures),
        )]),
    };
    // A section that cannot be computed (e.g. a table written by an older custval lacks a
    // column) says so; the rest of the page still renders.
    let section = |id, title, figures: PolarsResult<Vec<Figure>>| Section {
        id,
        title,
        figures: figures.unwrap_or_else(|e| {
            tracing::warn!(section = id, error = %e, "report section not drawn");
            vec![Figure::missing(
                "",
                format!("Not drawn because the published tables do not support it: {e}"),
            )]
        }),
    };
    // The sections are independent: drawn in parallel (one after another, this step ran on
    // one core).
    type Draw<'a> = Box<dyn Fn() -> Section + Send + Sync + 'a>;
    let (section, with_cf) = (&section, &with_cf);
    let draws: Vec<Draw> = vec![
        Box::new(move || section("segments", "RFM segments", segments(input))),
        Box::new(move || section("tiers", "Value tiers", with_cf(tiers))),
        Box::new(move || section("matrix", "Value × relationship", matrix(input))),
        Box::new(move || section("churn", "Churn over time", churn(input))),
        Box::new(move || section("cohorts", "Cohort retention", cohorts(input))),
        Box::new(move || section("clv", "Customer lifetime value", clv(input))),
        Box::new(move || section("model", "Model quality", model(input))),
        Box::new(move || {
            section(
                "lifecycle",
                "Lifecycle and early warning",
                with_cf(lifecycle),
            )
        }),
        Box::new(move || section("quality", "Data quality", quality(input))),
        Box::new(move || section("breakdowns", "Breakdowns", breakdowns(input))),
    ];
    use rayon::prelude::*;
    draws.into_par_iter().map(|draw| draw()).collect()
}

fn segments(input: &ReportInput) -> PolarsResult<Vec<Figure>> {
    let mut out = Vec::new();
    match input.table(Table::SegmentSummary) {
        Some(ss) => {
            let ss = whole_base(ss)?;
            let names: Vec<String> = strs(&ss, "rfm_segment")?
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
            let customers = f64_column(&ss, "customers")?;
            let cshare = f64_column(&ss, "customer_share")?;
            let revenue = f64_column(&ss, "revenue")?;
            let rshare = f64_column(&ss, "revenue_share")?;
            let repeat = f64_column(&ss, "repeat_customer_share")?;
            let rows = (0..ss.height())
                .map(|i| {
                    vec![
                        text(names[i].clone()),
                        int(customers[i] as i64),
                        num(pct(cshare[i]), cshare[i]),
                        num(amount(revenue[i]), revenue[i]),
                        num(pct(rshare[i]), rshare[i]),
                        num(pct(repeat[i]), repeat[i]),
                    ]
                })
                .collect();
            out.push(Figure {
                caption: "Customers per RFM segment.".into(),
                svg: chart(charts::hbars(&names, &customers, "customers", &compact))?,
                table: Some(table(
                    &[
                        "segment",
                        "customers",
                        "share",
                        "revenue",
                        "revenue share",
                        "repeat customers",
                    ],
                    rows,
                )),
                ..Figure::default()
            });
            let rows = (0..ss.height())
                .map(|i| {
                    vec![
                        text(names[i].clone()),
                        num(amount(revenue[i]), revenue[i]),
                        num(pct(rshare[i]), rshare[i]),
                    ]
                })
                .collect();
            out.push(Figure {
                caption: "Revenue in the window per RFM segment.".into(),
                svg: chart(charts::hbars(&names, &revenue, "revenue", &compact))?,
                table: Some(table(&["segment", "revenue", "revenue share"], rows)),
                ..Figure::default()
            });
        }
        None => out.push(Figure::missing(
            "Customers and revenue per RFM segment.",
            not_written(Table::SegmentSummary),
        )),
    }
    match input.table(Table::CustomerFeatures) {
        Some(cf) => {
            let mut cells = vec![vec![0i64; 5]; 5];
            let g = cf
                .clone()
                .lazy()
                .group_by([col("r_score"), col("f_score")])
                .agg([len().cast(DataType::Int64).alias("n")])
                .collect()?;
            let (r, f, n) = (
                f64_column(&g, "r_score")?,
                f64_column(&g, "f_score")?,
                f64_column(&g, "n")?,
            );
            for i in 0..g.height() {
                if (1.0..=5.0).contains(&r[i]) && (1.0..=5.0).contains(&f[i]) {
                    cells[5 - r[i] as usize][f[i] as usize - 1] += n[i] as i64;
                }
            }
            let rows_l: Vec<String> = (1..=5).rev().map(|r| format!("R{r}")).collect();
            let cols_l: Vec<String> = (1..=5).map(|f| format!("F{f}")).collect();
            let values: Vec<Vec<Option<f64>>> = cells
                .iter()
                .map(|row| row.iter().map(|&c| Some(c as f64)).collect())
                .collect();
            let mut t = table(
                &["", "F1", "F2", "F3", "F4", "F5"],
                cells
                    .iter()
                    .zip(&rows_l)
                    .map(|(row, l)| {
                        std::iter::once(text(l.clone()))
                            .chain(row.iter().map(|&c| int(c)))
                            .collect()
                    })
                    .collect(),
            );
            t.folded = true;
            out.push(Figure {
                caption: "Customers by recency score (rows, R5 = most recent) and frequency score (columns, F5 = most orders).".into(),
                svg: chart(charts::heatmap(
                    &rows_l,
                    &cols_l,
                    &values,
                    "frequency score",
                    "recency score",
                    &|v| count(v as i64),
                ))?,
                table: Some(t),
                ..Figure::default()
            });
        }
        None => out.push(Figure::missing(
            "R × F heatmap.",
            not_written(Table::CustomerFeatures),
        )),
    }
    Ok(out)
}

fn tiers(cf: &DataFrame) -> PolarsResult<Vec<Figure>> {
    // Cumulative revenue, best customers first (sorted by polars, in parallel).
    let cum = cf
        .clone()
        .lazy()
        .select([col("total_amount")
            .cast(DataType::Float64)
            .fill_nan(lit(0.0))
            .fill_null(lit(0.0))
            .sort(SortOptions::default().with_order_descending(true))
            .cum_sum(false)
            .alias("cum")])
        .collect()?;
    let cum = cum.column("cum")?.f64()?.clone();
    let n = cum.len();
    let sum = if n > 0 {
        cum.get(n - 1).unwrap_or(0.0)
    } else {
        0.0
    };
    let by_tier = cf
        .clone()
        .lazy()
        .group_by([col("value_tier")])
        .agg([
            len().cast(DataType::Int64).alias("customers"),
            col("total_amount").sum().alias("revenue"),
        ])
        .collect()?;
    let tier_names = strs(&by_tier, "value_tier")?;
    let tier_customers = f64_column(&by_tier, "customers")?;
    let tier_rev = f64_column(&by_tier, "revenue")?;
    let of = |t: &str, v: &[f64]| {
        tier_names
            .iter()
            .position(|x| x.as_deref() == Some(t))
            .map(|i| v[i])
            .unwrap_or(0.0)
    };
    let count_of = |t: &str| of(t, &tier_customers) as usize;
    let (high, medium, low) = (count_of("high"), count_of("medium"), count_of("low"));
    if n == 0 || !sum.is_finite() || sum <= 0.0 {
        return Ok(vec![Figure::missing(
            "Pareto curve of revenue.",
            "Not computed because total revenue is not positive.",
        )]);
    }
    // The curve at ≤ 200 evenly spaced customer shares.
    let at = |k: usize| cum.get(k.clamp(1, n) - 1).unwrap_or(0.0);
    let steps = n.min(200);
    let mut points = vec![(0.0, 0.0)];
    for k in 1..=steps {
        let i = (k * n).div_ceil(steps);
        points.push((i as f64 / n as f64, at(i) / sum));
    }
    let share_at = |k: usize| at(k) / sum;
    let marks = vec![
        (
            high as f64 / n as f64,
            format!("high | medium ({})", pct(high as f64 / n as f64)),
        ),
        (
            (high + medium) as f64 / n as f64,
            format!("medium | low ({})", pct((high + medium) as f64 / n as f64)),
        ),
    ];
    let rev_of = |t: &str| of(t, &tier_rev);
    let rows = [("high", high), ("medium", medium), ("low", low)]
        .into_iter()
        .map(|(t, c)| {
            let r = rev_of(t);
            vec![
                text(t),
                int(c as i64),
                num(pct(c as f64 / n as f64), c as f64 / n as f64),
                num(amount(r), r),
                num(pct(r / sum), r / sum),
            ]
        })
        .collect();
    Ok(vec![Figure {
        caption: format!(
            "Cumulative revenue share against customer share, best customers first; the top 20 % of customers bring {} of revenue. Lines mark the tier cuts.",
            pct(share_at((n as f64 * 0.2).ceil() as usize))
        ),
        svg: chart(charts::share_curve(
            &points,
            &marks,
            "customers (share, by revenue)",
            "revenue (cumulative share)",
        ))?,
        table: Some(table(
            &["tier", "customers", "share", "revenue", "revenue share"],
            rows,
        )),
        ..Figure::default()
    }])
}

fn matrix(input: &ReportInput) -> PolarsResult<Vec<Figure>> {
    let Some(vm) = input.table(Table::ValueMatrix) else {
        return Ok(vec![Figure::missing(
            "Value × relationship matrix.",
            not_written(Table::ValueMatrix),
        )]);
    };
    let vm = whole_base(vm)?;
    let names = strs(&vm, "value_quadrant")?;
    let customers = f64_column(&vm, "customers")?;
    let cshare = f64_column(&vm, "customer_share")?;
    let revenue = f64_column(&vm, "revenue")?;
    let rshare = f64_column(&vm, "revenue_share")?;
    let clv = if has(&vm, "clv") {
        Some(opt_f64s(&vm, "clv")?)
    } else {
        None
    };
    let actions = strs(&vm, "action")?;
    // The 2×2 in reading order: high value on top, strong relationship on the left.
    let order = [
        "high value / strong relationship",
        "high value / weak relationship",
        "low value / strong relationship",
        "low value / weak relationship",
    ];
    let mut quads = Vec::new();
    let mut rows = Vec::new();
    for q in order {
        let Some(i) = names.iter().position(|n| n.as_deref() == Some(q)) else {
            quads.push(Quadrant {
                label: q.into(),
                customers: "0".into(),
                revenue: "0".into(),
                clv: None,
                action: "no customers".into(),
            });
            continue;
        };
        let c = clv.as_ref().and_then(|c| c[i]);
        quads.push(Quadrant {
            label: q.into(),
            customers: format!("{} ({})", count(customers[i] as i64), pct(cshare[i])),
            revenue: format!("{} ({})", amount(revenue[i]), pct(rshare[i])),
            clv: c.map(amount),
            action: actions[i].clone().unwrap_or_default(),
        });
        rows.push(vec![
            text(q),
            int(customers[i] as i64),
            num(amount(revenue[i]), revenue[i]),
            opt_num(c, amount),
            text(actions[i].clone().unwrap_or_default()),
        ]);
    }
    // customer_features' value metric is CLV when some customer has one, else revenue.
    let valued = input
        .table(Table::CustomerFeatures)
        .filter(|cf| has(cf, "clv"))
        .and_then(|cf| cf.column("clv").ok())
        .is_some_and(|c| c.null_count() < c.len());
    let value_note = if valued {
        "value = CLV"
    } else {
        "value = revenue: no CLV"
    };
    Ok(vec![Figure {
        caption: format!(
            "Customers split by value ({value_note}) and relationship score at the matrix thresholds (the medians unless matrix.value_threshold and matrix.relationship_threshold set them), with the recommended action."
        ),
        matrix: Some(quads),
        table: Some(table(
            &["quadrant", "customers", "revenue", "CLV", "action"],
            rows,
        )),
        ..Figure::default()
    }])
}

fn churn(input: &ReportInput) -> PolarsResult<Vec<Figure>> {
    let Some(cr) = input.table(Table::ChurnRates) else {
        return Ok(vec![Figure::missing(
            "Churn and retention per period.",
            not_written(Table::ChurnRates),
        )]);
    };
    let periods: Vec<String> = strs(cr, "period")?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    let partial = bools(cr, "partial")?;
    let labels: Vec<String> = periods
        .iter()
        .zip(&partial)
        .map(|(p, part)| {
            if *part == Some(true) {
                format!("{p}*")
            } else {
                p.clone()
            }
        })
        .collect();
    let churn = opt_f64s(cr, "churn_rate")?;
    let retention = opt_f64s(cr, "retention_rate")?;
    let ints = |c: &str| -> PolarsResult<Vec<f64>> { f64_column(cr, c) };
    let (new, react, churned, active) = (
        ints("new")?,
        ints("reactivated")?,
        ints("churned")?,
        ints("active")?,
    );
    let rate_rows = (0..cr.height())
        .map(|i| {
            vec![
                text(labels[i].clone()),
                opt_num(churn[i], pct),
                opt_num(retention[i], pct),
            ]
        })
        .collect();
    let rate_names = vec!["churn rate".to_string(), "retention rate".to_string()];
    let mut rate_table = table(&["period", "churn rate", "retention rate"], rate_rows);
    rate_table.folded = cr.height() > 12;
    let count_rows = (0..cr.height())
        .map(|i| {
            vec![
                text(labels[i].clone()),
                int(new[i] as i64),
                int(react[i] as i64),
                int(churned[i] as i64),
                int(active[i] as i64),
            ]
        })
        .collect();
    let count_names = vec![
        "new".to_string(),
        "reactivated".to_string(),
        "churned".to_string(),
    ];
    let mut count_table = table(
        &["period", "new", "reactivated", "churned", "active"],
        count_rows,
    );
    count_table.folded = cr.height() > 12;
    Ok(vec![
        Figure {
            caption: "Churn rate (share of the customers active in the previous period who did not buy) and retention rate per period; * = period still running.".into(),
            svg: chart(charts::lines(
                &labels,
                &[
                    (rate_names[0].clone(), churn.clone()),
                    (rate_names[1].clone(), retention.clone()),
                ],
                "share of customers",
                &pct,
            ))?,
            legend: legend(&rate_names),
            table: Some(rate_table),
            ..Figure::default()
        },
        Figure {
            caption: "New, reactivated and churned customers per period.".into(),
            svg: chart(charts::stacked_bars(
                &labels,
                &[
                    (count_names[0].clone(), new),
                    (count_names[1].clone(), react),
                    (count_names[2].clone(), churned),
                ],
                "customers",
                &compact,
            ))?,
            legend: legend(&count_names),
            table: Some(count_table),
            ..Figure::default()
        },
    ])
}

/// At most this many cohorts (the latest) and period offsets in the heatmap.
const MAX_COHORTS: usize = 24;

fn cohorts(input: &ReportInput) -> PolarsResult<Vec<Figure>> {
    let Some(ct) = input.table(Table::CohortRetention) else {
        return Ok(vec![Figure::missing(
            "Cohort retention.",
            not_written(Table::CohortRetention),
        )]);
    };
    let cohort = strs(ct, "cohort")?;
    let size = f64_column(ct, "cohort_size")?;
    let offset = f64_column(ct, "period_offset")?;
    let retention = opt_f64s(ct, "retention")?;
    let mut names: Vec<String> = Vec::new();
    for c in cohort.iter().flatten() {
        if names.last() != Some(c) && !names.contains(c) {
            names.push(c.clone());
        }
    }
    if names.is_empty() {
        return Ok(vec![Figure::missing(
            "Cohort retention.",
            "Not computed because no cohort has customers in the window.",
        )]);
    }
    let all = names.len();
    let names: Vec<String> = names[all.saturating_sub(MAX_COHORTS)..].to_vec();
    // Columns: every period offset of the shown cohorts (cohorts without customers have no
    // row, so the oldest shown cohort can reach past their count), at most MAX_COHORTS.
    let widest = (0..ct.height())
        .filter(|&i| cohort[i].as_ref().is_some_and(|c| names.contains(c)))
        .map(|i| offset[i])
        .filter(|o| o.is_finite() && *o >= 0.0)
        .fold(0.0f64, f64::max) as usize
        + 1;
    let max_off = widest.min(MAX_COHORTS);
    let mut cells = vec![vec![None; max_off]; names.len()];
    let mut sizes = vec![0i64; names.len()];
    for i in 0..ct.height() {
        let Some(r) = cohort[i]
            .as_ref()
            .and_then(|c| names.iter().position(|n| n == c))
        else {
            continue;
        };
        sizes[r] = size[i] as i64;
        let o = offset[i];
        if o >= 0.0 && (o as usize) < max_off {
            cells[r][o as usize] = retention[i];
        }
    }
    let cols: Vec<String> = (0..max_off).map(|o| o.to_string()).collect();
    let rows_l: Vec<String> = names
        .iter()
        .zip(&sizes)
        .map(|(n, s)| format!("{n} ({})", compact(*s as f64)))
        .collect();
    let mut headers = vec!["cohort".to_string(), "size".to_string()];
    headers.extend(cols.iter().cloned());
    let rows = names
        .iter()
        .enumerate()
        .map(|(r, n)| {
            let mut row = vec![text(n.clone()), int(sizes[r])];
            row.extend(cells[r].iter().map(|v| opt_num(*v, pct)));
            row
        })
        .collect();
    let mut shown = if all > names.len() {
        format!(
            " The latest {} of {all} cohorts are shown; all are in cohort_retention.",
            names.len()
        )
    } else {
        String::new()
    };
    if widest > max_off {
        shown.push_str(&format!(
            " Periods {max_off} to {} after acquisition are left out.",
            widest - 1
        ));
    }
    Ok(vec![Figure {
        caption: format!(
            "Share of each acquisition cohort (rows, size in brackets) buying again N periods after acquisition (columns), in %.{shown}"
        ),
        svg: chart(charts::heatmap(
            &rows_l,
            &cols,
            &cells,
            "periods since acquisition",
            "cohort",
            &|v| format!("{:.0}", v * 100.0),
        ))?,
        table: Some(NumTable {
            headers,
            rows,
            folded: true,
        }),
        ..Figure::default()
    }])
}

fn clv(input: &ReportInput) -> PolarsResult<Vec<Figure>> {
    let Some(cf) = input.table(Table::CustomerFeatures) else {
        return Ok(vec![Figure::missing(
            "CLV distribution.",
            not_written(Table::CustomerFeatures),
        )]);
    };
    if !has(cf, "clv") {
        return Ok(vec![Figure::missing("CLV distribution.", NO_CLV)]);
    }
    let clv = floats(cf, "clv")?;
    let valued = || clv.iter().flatten().filter(|v| v.is_finite());
    let positive = || valued().filter(|v| *v > 0.0);
    let n_valued = valued().count();
    if n_valued == 0 {
        return Ok(vec![Figure::missing(
            "CLV distribution.",
            "Not computed because no purchase model was fitted (see the model section).",
        )]);
    }
    let n_positive = positive().count();
    let non_positive = n_valued - n_positive;
    let mut out = Vec::new();
    if n_positive == 0 {
        out.push(Figure::missing(
            "CLV distribution (log scale).",
            format!(
                "Not drawn because no customer has a positive CLV ({} valued at or below 0).",
                count(non_positive as i64)
            ),
        ));
    } else {
        // Bins of equal width in log10, 4 per decade, at most 6 decades below the largest
        // value (a dead customer's CLV can be 1e-40: those are counted below the axis).
        let lo = positive().fold(f64::INFINITY, f64::min).log10();
        let hi = positive().fold(0.0, f64::max).log10();
        let start = ((lo * 4.0).floor() / 4.0).max((hi * 4.0).floor() / 4.0 - 6.0);
        let nbins = (((hi - start) * 4.0).floor() as usize + 1).clamp(1, 25);
        let mut counts = vec![0usize; nbins];
        let mut below = 0usize;
        for v in positive() {
            let x = (v.log10() - start) * 4.0;
            if x < 0.0 {
                below += 1;
            } else {
                counts[(x.floor() as usize).min(nbins - 1)] += 1;
            }
        }
        let bins: Vec<(f64, f64, f64)> = counts
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                let a = start + k as f64 / 4.0;
                (a, a + 0.25, c as f64)
            })
            .collect();
        let rows = bins
            .iter()
            .map(|&(a, b, c)| {
                vec![
                    text(format!(
                        "{} – {}",
                        significant(10f64.powf(a)),
                        significant(10f64.powf(b))
                    )),
                    int(c as i64),
                ]
            })
            .collect();
        let mut t = table(&["CLV from – to", "customers"], rows);
        t.folded = bins.len() > 12;
        out.push(Figure {
            caption: format!(
                "Customers by CLV on a log scale (4 bins per decade); not on the axis: {} customers with a CLV at or below 0 (acquisition cost above their value){}.",
                count(non_positive as i64),
                if below > 0 {
                    format!(
                        " and {} below {}",
                        count(below as i64),
                        significant(10f64.powf(start))
                    )
                } else {
                    String::new()
                }
            ),
            svg: chart(charts::histogram(&bins, "CLV (log scale)", "customers", &|v| {
                significant(10f64.powf(v))
            }))?,
            table: Some(t),
            ..Figure::default()
        });
    }
    match input.table(Table::SegmentSummary) {
        Some(ss) if has(ss, "customer_equity") => {
            let ss = whole_base(ss)?;
            let names: Vec<String> = strs(&ss, "rfm_segment")?
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
            let equity = f64_column(&ss, "customer_equity")?;
            let share = f64_column(&ss, "customer_equity_share")?;
            let customers = f64_column(&ss, "customers")?;
            let rows = (0..ss.height())
                .map(|i| {
                    let mean = if customers[i] > 0.0 {
                        equity[i] / customers[i]
                    } else {
                        f64::NAN
                    };
                    vec![
                        text(names[i].clone()),
                        num(amount(equity[i]), equity[i]),
                        num(pct(share[i]), share[i]),
                        num(amount(mean), mean),
                    ]
                })
                .collect();
            let plotted: Vec<f64> = equity
                .iter()
                .map(|v| if v.is_finite() { *v } else { 0.0 })
                .collect();
            out.push(Figure {
                caption: "Customer equity (Σ CLV) per RFM segment.".into(),
                svg: chart(charts::hbars(&names, &plotted, "Σ CLV", &compact))?,
                table: Some(table(
                    &["segment", "Σ CLV", "share", "Σ CLV per customer"],
                    rows,
                )),
                ..Figure::default()
            });
        }
        Some(_) => out.push(Figure::missing("CLV by segment.", NO_CLV)),
        None => out.push(Figure::missing(
            "CLV by segment.",
            not_written(Table::SegmentSummary),
        )),
    }
    Ok(out)
}

fn model(input: &ReportInput) -> PolarsResult<Vec<Figure>> {
    let Some(mf) = input.table(Table::ModelFit) else {
        return Ok(vec![Figure::missing(
            "Model fit.",
            no_model_table(input, Table::ModelFit),
        )]);
    };
    let mut out = Vec::new();
    let models = strs(mf, "model")?;
    let ll = opt_f64s(mf, "log_likelihood")?;
    let bic = opt_f64s(mf, "bic")?;
    let mae = opt_f64s(mf, "holdout_mae")?;
    let converged = bools(mf, "converged")?;
    let chosen = bools(mf, "chosen")?;
    let boundary = strs(mf, "boundary")?;
    let message = strs(mf, "message")?;
    let rows = (0..mf.height())
        .map(|i| {
            vec![
                text(models[i].clone().unwrap_or_default()),
                text(if chosen[i] == Some(true) { "yes" } else { "" }),
                text(match converged[i] {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "–",
                }),
                opt_num(ll[i], |v| fixed(v, 1)),
                opt_num(bic[i], |v| fixed(v, 1)),
                opt_num(mae[i], |v| fixed(v, 4)),
                text(
                    boundary[i]
                        .clone()
                        .or_else(|| message[i].clone())
                        .unwrap_or_default(),
                ),
            ]
        })
        .collect();
    out.push(Figure {
        caption: "Every model fitted for this date: the chosen purchase model has the lowest holdout error (with a holdout) or the lowest BIC.".into(),
        table: Some(table(
            &[
                "model",
                "chosen",
                "converged",
                "log-likelihood",
                "BIC",
                "holdout MAE",
                "note",
            ],
            rows,
        )),
        ..Figure::default()
    });
    match input.table(Table::ModelDiagnostics) {
        Some(d) => {
            let groups: Vec<String> = strs(d, "calibration_frequency")?
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
            let keep: Vec<usize> = (0..d.height()).filter(|&i| groups[i] != "all").collect();
            let labels: Vec<String> = keep.iter().map(|&i| groups[i].clone()).collect();
            let actual = opt_f64s(d, "mean_actual")?;
            let predicted = opt_f64s(d, "mean_predicted")?;
            let customers = f64_column(d, "customers")?;
            let holdout_days = f64_column(d, "holdout_days")?.first().copied();
            let pick = |v: &[Option<f64>]| keep.iter().map(|&i| v[i]).collect::<Vec<_>>();
            let names = vec!["actual".to_string(), "predicted".to_string()];
            let rows = (0..d.height())
                .map(|i| {
                    vec![
                        text(groups[i].clone()),
                        int(customers[i] as i64),
                        opt_num(actual[i], |v| fixed(v, 3)),
                        opt_num(predicted[i], |v| fixed(v, 3)),
                    ]
                })
                .collect();
            out.push(Figure {
                caption: format!(
                    "Mean purchases in the {}-day holdout, actual against predicted, by purchases in the calibration period (as lifetimes' calibration vs holdout plot).",
                    holdout_days.map(|h| h as i64).unwrap_or_default()
                ),
                svg: chart(charts::lines(
                    &labels,
                    &[
                        (names[0].clone(), pick(&actual)),
                        (names[1].clone(), pick(&predicted)),
                    ],
                    "mean holdout purchases",
                    &|v| fixed(v, 1),
                ))?,
                legend: legend(&names),
                table: Some(table(
                    &["calibration purchases", "customers", "actual", "predicted"],
                    rows,
                )),
                ..Figure::default()
            });
        }
        None => out.push(Figure::missing(
            "Calibration against holdout.",
            "Not computed because this run wrote no model_diagnostics: the job sets no clv.holdout_days (no holdout period to compare predictions with), or leaves the table out of output.tables.",
        )),
    }
    if let Some(cf) = input.table(Table::CustomerFeatures) {
        out.extend(prob_alive(cf)?);
    }
    Ok(out)
}

fn prob_alive(cf: &DataFrame) -> PolarsResult<Vec<Figure>> {
    if !has(cf, "prob_alive") {
        return Ok(vec![]);
    }
    let p = floats(cf, "prob_alive")?;
    if p.iter().flatten().all(|v| !v.is_finite()) {
        return Ok(vec![Figure::missing(
            "P(alive).",
            "Not computed because no purchase model was fitted.",
        )]);
    }
    let mut counts = [0usize; 20];
    for v in p.iter().flatten().filter(|v| v.is_finite()) {
        counts[((v * 20.0).floor() as usize).min(19)] += 1;
    }
    let bins: Vec<(f64, f64, f64)> = counts
        .iter()
        .enumerate()
        .map(|(k, &c)| (k as f64 / 20.0, (k + 1) as f64 / 20.0, c as f64))
        .collect();
    let mut t = table(
        &["P(alive) from – to", "customers"],
        bins.iter()
            .map(|&(a, b, c)| vec![text(format!("{a:.2} – {b:.2}")), int(c as i64)])
            .collect(),
    );
    t.folded = true;
    let mut out = vec![Figure {
        caption: "Customers by probability of being alive (still buying) as of the date.".into(),
        svg: chart(charts::histogram(&bins, "P(alive)", "customers", &|v| {
            fixed(v, 1)
        }))?,
        table: Some(t),
        ..Figure::default()
    }];
    // Frequency × days since last purchase, mean P(alive) per cell.
    let freq = floats(cf, "frequency")?;
    let days = floats(cf, "days_since_last")?;
    let f_bins: [(f64, f64, &str); 7] = [
        (0.0, 0.0, "0"),
        (1.0, 1.0, "1"),
        (2.0, 2.0, "2"),
        (3.0, 3.0, "3"),
        (4.0, 5.0, "4–5"),
        (6.0, 9.0, "6–9"),
        (10.0, f64::INFINITY, "10+"),
    ];
    let d_bins: [(f64, f64, &str); 5] = [
        (0.0, 30.0, "≤ 30"),
        (31.0, 90.0, "31–90"),
        (91.0, 180.0, "91–180"),
        (181.0, 365.0, "181–365"),
        (366.0, f64::INFINITY, "> 365"),
    ];
    let mut sum = vec![vec![0.0; d_bins.len()]; f_bins.len()];
    let mut n = vec![vec![0usize; d_bins.len()]; f_bins.len()];
    for ((pa, f), d) in p.iter().zip(freq.iter()).zip(days.iter()) {
        let (Some(pa), Some(f), Some(d)) = (pa, f, d) else {
            continue;
        };
        let fi = f_bins.iter().position(|b| f >= b.0 && f <= b.1);
        let di = d_bins.iter().position(|b| d >= b.0 && d <= b.1);
        if let (Some(fi), Some(di)) = (fi, di) {
            sum[fi][di] += pa;
            n[fi][di] += 1;
        }
    }
    // Most frequent buyers on top.
    let order: Vec<usize> = (0..f_bins.len()).rev().collect();
    let cells: Vec<Vec<Option<f64>>> = order
        .iter()
        .map(|&fi| {
            (0..d_bins.len())
                .map(|di| (n[fi][di] > 0).then(|| sum[fi][di] / n[fi][di] as f64))
                .collect()
        })
        .collect();
    let rows_l: Vec<String> = order.iter().map(|&fi| f_bins[fi].2.to_string()).collect();
    let cols_l: Vec<String> = d_bins.iter().map(|b| b.2.to_string()).collect();
    let mut headers = vec!["repeat purchases".to_string()];
    headers.extend(cols_l.iter().map(|c| format!("{c} days")));
    let rows = order
        .iter()
        .zip(&cells)
        .map(|(&fi, row)| {
            let mut r = vec![text(f_bins[fi].2)];
            r.extend(row.iter().enumerate().map(|(di, v)| match v {
                Some(v) => num(
                    format!("{} (n={})", fixed(*v, 2), count(n[fi][di] as i64)),
                    *v,
                ),
                None => text("–"),
            }));
            r
        })
        .collect();
    out.push(Figure {
        caption: "Mean P(alive) by repeat purchases (rows) and days since the last purchase (columns); blank = no customers.".into(),
        svg: chart(charts::heatmap(
            &rows_l,
            &cols_l,
            &cells,
            "days since last purchase",
            "repeat purchases",
            &|v| fixed(v, 2),
        ))?,
        table: Some(NumTable {
            headers,
            rows,
            folded: true,
        }),
        ..Figure::default()
    });
    Ok(out)
}

fn lifecycle(cf: &DataFrame) -> PolarsResult<Vec<Figure>> {
    let mut out = Vec::new();
    let value = if has(cf, "clv") {
        when(col("clv").count().gt(lit(0)))
            .then(col("clv").sum())
            .otherwise(lit(NULL).cast(DataType::Float64))
    } else {
        lit(NULL).cast(DataType::Float64)
    };
    for (column, caption, order) in [
        (
            "lifecycle_stage",
            "Customers and their spend in the last 365 days per lifecycle stage.",
            &["new", "developing", "stable", "declining", "churned"][..],
        ),
        (
            "early_warning",
            "Revenue at risk: spend in the last 365 days of the customers per early-warning level.",
            &["ok", "watch", "at risk", "churned"][..],
        ),
    ] {
        let g = cf
            .clone()
            .lazy()
            .group_by([col(column)])
            .agg([
                len().cast(DataType::Int64).alias("customers"),
                col("amount_last_365d").sum().alias("revenue_365d"),
                value.clone().alias("clv"),
            ])
            .collect()?;
        let names = strs(&g, column)?;
        let customers = f64_column(&g, "customers")?;
        let revenue = f64_column(&g, "revenue_365d")?;
        let clv = opt_f64s(&g, "clv")?;
        let mut labels = Vec::new();
        let mut rev_values = Vec::new();
        let mut rows = Vec::new();
        for stage in order {
            let i = names.iter().position(|n| n.as_deref() == Some(*stage));
            let (c, r, v) = match i {
                Some(i) => (customers[i], revenue[i], clv[i]),
                None => (0.0, 0.0, None),
            };
            labels.push(stage.to_string());
            rev_values.push(r);
            rows.push(vec![
                text(*stage),
                int(c as i64),
                num(amount(r), r),
                opt_num(v, amount),
            ]);
        }
        out.push(Figure {
            caption: caption.into(),
            svg: chart(charts::hbars(
                &labels,
                &rev_values,
                "spend, last 365 days",
                &compact,
            ))?,
            table: Some(table(
                &[column, "customers", "spend last 365 days", "Σ CLV"],
                rows,
            )),
            ..Figure::default()
        });
    }
    Ok(out)
}

fn quality(input: &ReportInput) -> PolarsResult<Vec<Figure>> {
    let Some(dq) = input.table(Table::DataQuality) else {
        return Ok(vec![Figure::missing(
            "Data quality checks.",
            not_written(Table::DataQuality),
        )]);
    };
    let checks: Vec<String> = strs(dq, "check")?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    let rows_n = f64_column(dq, "rows")?;
    let share = opt_f64s(dq, "share")?;
    let action: Vec<String> = strs(dq, "action")?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    let example = strs(dq, "example")?;
    let rows = (0..dq.height())
        .map(|i| {
            vec![
                text(checks[i].clone()),
                int(rows_n[i] as i64),
                opt_num(share[i], pct),
                text(action[i].clone()),
                text(example[i].clone().unwrap_or_default()),
            ]
        })
        .collect();
    let flagged: Vec<usize> = (0..dq.height())
        .filter(|&i| action[i] != "info" && rows_n[i] > 0.0)
        .collect();
    let svg = if flagged.is_empty() {
        None
    } else {
        let labels: Vec<String> = flagged
            .iter()
            .map(|&i| format!("{} ({})", checks[i], action[i]))
            .collect();
        let values: Vec<f64> = flagged.iter().map(|&i| rows_n[i]).collect();
        chart(charts::hbars(&labels, &values, "rows", &compact))?
    };
    let caption = if flagged.is_empty() {
        "Rows per data-quality check: no row was rejected or flagged.".to_string()
    } else {
        "Rows per data-quality check that rejected or flagged rows (rejected rows are in the quarantine table).".to_string()
    };
    Ok(vec![Figure {
        caption,
        svg,
        table: Some(table(
            &["check", "rows", "share", "action", "example"],
            rows,
        )),
        ..Figure::default()
    }])
}

/// At most this many values of an attribute in its breakdown chart.
const MAX_VALUES: usize = 20;

fn breakdowns(input: &ReportInput) -> PolarsResult<Vec<Figure>> {
    let Some(ss) = input.table(Table::SegmentSummary) else {
        return Ok(vec![Figure::missing(
            "Segment mix per attribute.",
            not_written(Table::SegmentSummary),
        )]);
    };
    let dims = strs(ss, "dimension")?;
    let values = strs(ss, "dimension_value")?;
    let segs = strs(ss, "rfm_segment")?;
    let customers = f64_column(ss, "customers")?;
    let mut segment_names: Vec<String> = Vec::new();
    let mut dim_names: Vec<String> = Vec::new();
    for i in 0..ss.height() {
        let s = segs[i].clone().unwrap_or_default();
        if !segment_names.contains(&s) {
            segment_names.push(s);
        }
        if let Some(d) = dims[i].as_ref().filter(|d| *d != "all") {
            if !dim_names.contains(d) {
                dim_names.push(d.clone());
            }
        }
    }
    if dim_names.is_empty() {
        return Ok(vec![Figure::missing(
            "Segment mix per region, industry and channel.",
            "Not computed because the job maps no region, industry or channel column.",
        )]);
    }
    let mut out = Vec::new();
    for d in &dim_names {
        // Customers per (value, segment), in order of appearance.
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut keys: Vec<String> = Vec::new();
        let mut counts: Vec<Vec<i64>> = Vec::new();
        let seg_index: std::collections::HashMap<&str, usize> = segment_names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        for i in 0..ss.height() {
            if dims[i].as_deref() != Some(d.as_str()) {
                continue;
            }
            let v = values[i].clone().unwrap_or_default();
            let k = *index.entry(v.clone()).or_insert_with(|| {
                keys.push(v);
                counts.push(vec![0; segment_names.len()]);
                keys.len() - 1
            });
            let sidx = seg_index
                .get(segs[i].as_deref().unwrap_or_default())
                .copied()
                .unwrap_or(0);
            counts[k][sidx] += customers[i] as i64;
        }
        // The largest values by customers; the rest in one column.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by_key(|&k| std::cmp::Reverse(counts[k].iter().sum::<i64>()));
        let (shown, rest) = order.split_at(order.len().min(MAX_VALUES));
        let mut labels: Vec<String> = shown.iter().map(|&k| keys[k].clone()).collect();
        let mut cols: Vec<Vec<i64>> = shown.iter().map(|&k| counts[k].clone()).collect();
        if !rest.is_empty() {
            labels.push(format!("other {} values", rest.len()));
            let mut sum = vec![0i64; segment_names.len()];
            for &k in rest {
                for (a, b) in sum.iter_mut().zip(&counts[k]) {
                    *a += b;
                }
            }
            cols.push(sum);
        }
        let totals: Vec<i64> = cols.iter().map(|c| c.iter().sum()).collect();
        let share = |s: usize, k: usize| {
            if totals[k] > 0 {
                cols[k][s] as f64 / totals[k] as f64
            } else {
                0.0
            }
        };
        let series: Vec<(String, Vec<f64>)> = segment_names
            .iter()
            .enumerate()
            .map(|(s, n)| (n.clone(), (0..labels.len()).map(|k| share(s, k)).collect()))
            .collect();
        let mut headers = vec!["segment".to_string()];
        headers.extend(labels.iter().cloned());
        let rows = segment_names
            .iter()
            .enumerate()
            .map(|(s, name)| {
                let mut r = vec![text(name.clone())];
                r.extend((0..labels.len()).map(|k| {
                    num(
                        format!("{} ({})", count(cols[k][s]), pct(share(s, k))),
                        share(s, k),
                    )
                }));
                r
            })
            .collect();
        let cut = if rest.is_empty() {
            String::new()
        } else {
            format!(
                " The {MAX_VALUES} largest of {} values are shown, the rest in one column.",
                keys.len()
            )
        };
        out.push(Figure {
            caption: format!(
                "RFM segment mix per {d}: share of each {d}'s customers in each segment.{cut}"
            ),
            svg: chart(charts::stacked_bars(
                &labels,
                &series,
                "share of customers",
                &pct,
            ))?,
            legend: legend(&segment_names),
            table: Some(NumTable {
                headers,
                rows,
                folded: true,
            }),
            ..Figure::default()
        });
    }
    Ok(out)
}
