//! Per-customer features computed from the customer summary. Pure functions, no I/O.

pub mod rfm;
