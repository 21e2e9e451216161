//! Output tables: one builder per table. Each states its grain, columns and partition key.

pub(crate) mod breakdown;
pub(crate) mod churn_rates;
pub(crate) mod cohort_retention;
pub(crate) mod customer_features;
pub(crate) mod model_diagnostics;
pub(crate) mod model_fit;
pub(crate) mod segment_summary;
pub(crate) mod value_matrix;

/// The output tables custval knows, in the order a run writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// `customer_features`: one row per customer.
    CustomerFeatures,
    /// `segment_summary`: one row per RFM segment, for the whole base and per attribute.
    SegmentSummary,
    /// `model_fit`: one row per fitted model (with `[clv]`).
    ModelFit,
    /// `model_diagnostics`: holdout calibration of the purchase model (with `clv.holdout_days`).
    ModelDiagnostics,
    /// `churn_rates`: one row per period of the window.
    ChurnRates,
    /// `cohort_retention`: the cohort retention triangle.
    CohortRetention,
    /// `value_matrix`: the value × relationship matrix, for the whole base and per attribute.
    ValueMatrix,
    /// `data_quality`: rows, share and action of each row check in the date's window.
    DataQuality,
    /// `quarantine`: the rejected rows of the date's window (capped).
    Quarantine,
    /// The run report, `report/as_of=D/index.html` (not a Parquet table; not in [`Table::ALL`],
    /// switched by `output.report`).
    Report,
}

impl Table {
    /// Every table, in the order of `output.tables`' default.
    pub const ALL: [Table; 9] = [
        Table::CustomerFeatures,
        Table::SegmentSummary,
        Table::ModelFit,
        Table::ModelDiagnostics,
        Table::ChurnRates,
        Table::CohortRetention,
        Table::ValueMatrix,
        Table::DataQuality,
        Table::Quarantine,
    ];

    /// The table's name: its folder under the output URI and its name in `output.tables`.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::CustomerFeatures => "customer_features",
            Table::SegmentSummary => "segment_summary",
            Table::ModelFit => "model_fit",
            Table::ModelDiagnostics => "model_diagnostics",
            Table::ChurnRates => "churn_rates",
            Table::CohortRetention => "cohort_retention",
            Table::ValueMatrix => "value_matrix",
            Table::DataQuality => "data_quality",
            Table::Quarantine => "quarantine",
            Table::Report => "report",
        }
    }

    /// The data file of a partition: one Parquet file, or the report's page.
    pub fn file_name(self) -> &'static str {
        match self {
            Table::Report => "index.html",
            _ => "part-00000.parquet",
        }
    }

    /// The table named `name`, if any.
    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
