//! Segments: named RFM segments and value tiers. Pure functions over plain slices.

pub mod rfm;
pub mod tiers;
