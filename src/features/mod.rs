//! Per-customer features computed from the customer summary and the daily purchases. Pure
//! functions, no I/O.

pub(crate) mod activity;
pub(crate) mod behaviour;
pub(crate) mod churn;
pub(crate) mod loyalty;
pub(crate) mod periods;
pub(crate) mod rfm;
pub(crate) mod settings;
