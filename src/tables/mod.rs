//! Output tables: one builder per table. Each states its grain, columns and partition key.

pub mod breakdown;
pub mod churn_rates;
pub mod cohort_retention;
pub mod customer_features;
pub mod model_diagnostics;
pub mod model_fit;
pub mod segment_summary;
pub mod value_matrix;
