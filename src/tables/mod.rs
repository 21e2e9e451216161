//! Output tables: one builder per table. Each states its grain, columns and partition key.

pub mod customer_features;
pub mod segment_summary;
