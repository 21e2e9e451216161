//! The run report: one self-contained HTML page per as-of date, built from the output tables
//! only (so `custval report` can re-render it from what was published).
//!
//! Inline CSS, inline SVG charts (`charts`, plotters), a minijinja template; no JavaScript and
//! no external resource. Every figure has a one-line caption and a small table of its numbers;
//! a piece that cannot be drawn (no models, no holdout, no attributes) says why instead.

mod charts;
mod format;
mod sections;
#[cfg(test)]
mod tests;

use crate::tables::Table;
use polars::prelude::*;
use serde::Serialize;

/// The `customer_features` columns the report reads (a re-render reads only these).
pub(crate) const CUSTOMER_COLUMNS: [&str; 11] = [
    "total_amount",
    "amount_last_365d",
    "frequency",
    "days_since_last",
    "r_score",
    "f_score",
    "value_tier",
    "lifecycle_stage",
    "early_warning",
    "clv",
    "prob_alive",
];

/// What the run log says about the run behind the tables.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RunState {
    /// Published, nothing to report.
    Succeeded,
    /// Published, but degraded: the reasons.
    Degraded(Vec<String>),
    /// The run log has no row for the run (re-rendered from tables alone).
    NotRecorded,
}

/// Everything the report is drawn from. The page carries no run id or timing, so a rerun that
/// publishes identical tables publishes an identical page.
pub(crate) struct ReportInput<'a> {
    /// The job's name.
    pub job: &'a str,
    /// The as-of date of the tables.
    pub as_of: chrono::NaiveDate,
    /// What the run log says about the run that published the tables.
    pub state: RunState,
    /// The published tables of the date (any subset).
    pub tables: &'a [(Table, DataFrame)],
}

impl ReportInput<'_> {
    fn table(&self, t: Table) -> Option<&DataFrame> {
        self.tables.iter().find(|(x, _)| *x == t).map(|(_, df)| df)
    }
}

/// One headline number.
#[derive(Debug, Serialize)]
struct Kpi {
    key: &'static str,
    label: &'static str,
    text: String,
    /// The raw value (`data-value`), for machines and tests.
    value: Option<String>,
    note: String,
}

/// A small table of a figure's numbers.
#[derive(Debug, Serialize, Default)]
struct NumTable {
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
    /// Long tables (heatmap cells) are folded under a `<details>`.
    folded: bool,
}

#[derive(Debug, Serialize)]
struct Cell {
    text: String,
    value: Option<String>,
    num: bool,
}

/// One quadrant of the value × relationship matrix.
#[derive(Debug, Serialize)]
struct Quadrant {
    label: String,
    customers: String,
    revenue: String,
    clv: Option<String>,
    action: String,
}

/// A legend entry drawn in HTML below a chart.
#[derive(Debug, Serialize)]
struct Swatch {
    name: String,
    color: String,
}

/// A chart (or the reason there is none) with its caption and numbers.
#[derive(Debug, Serialize, Default)]
struct Figure {
    caption: String,
    svg: Option<String>,
    legend: Vec<Swatch>,
    matrix: Option<Vec<Quadrant>>,
    table: Option<NumTable>,
    missing: Option<String>,
}

impl Figure {
    fn missing(caption: impl Into<String>, why: impl Into<String>) -> Figure {
        Figure {
            caption: caption.into(),
            missing: Some(why.into()),
            ..Figure::default()
        }
    }
}

#[derive(Debug, Serialize)]
struct Section {
    id: &'static str,
    title: &'static str,
    figures: Vec<Figure>,
}

#[derive(Serialize)]
struct Page<'a> {
    job: &'a str,
    as_of: String,
    status: &'static str,
    reasons: Vec<String>,
    kpis: Vec<Kpi>,
    sections: Vec<Section>,
    version: &'static str,
}

const TEMPLATE: &str = include_str!("page.html");

/// Render the report page.
pub(crate) fn render(input: &ReportInput) -> PolarsResult<String> {
    let (status, reasons) = match &input.state {
        RunState::Succeeded => ("succeeded", Vec::new()),
        RunState::Degraded(r) => ("degraded", r.clone()),
        RunState::NotRecorded => ("not recorded", Vec::new()),
    };
    let page = Page {
        job: input.job,
        as_of: input.as_of.to_string(),
        status,
        reasons,
        kpis: sections::headline(input).unwrap_or_else(|e| vec![sections::failed_headline(e)]),
        sections: sections::all(input),
        version: env!("CARGO_PKG_VERSION"),
    };
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| polars_err!(ComputeError: "report template: {e}"))?;
    env.get_template("report.html")
        .and_then(|t| t.render(&page))
        .map_err(|e| polars_err!(ComputeError: "report template: {e}"))
}
