//! Per-customer features computed from the customer summary and the daily purchases. Pure
//! functions, no I/O.

pub mod activity;
pub mod behaviour;
pub mod churn;
pub mod loyalty;
pub mod periods;
pub mod rfm;
pub mod settings;
