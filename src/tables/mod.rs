//! Output tables: one builder per table. Each states its grain, columns and partition key.

pub mod customer_features;
pub mod model_diagnostics;
pub mod model_fit;
pub mod segment_summary;
