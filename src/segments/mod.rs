//! Segments: named RFM segments, value tiers and the value × relationship matrix. Pure functions
//! over plain slices.

pub(crate) mod rfm;
pub(crate) mod tiers;
pub(crate) mod value_matrix;
