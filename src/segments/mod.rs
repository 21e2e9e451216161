//! Segments: named RFM segments, value tiers and the value × relationship matrix. Pure functions
//! over plain slices.

pub mod rfm;
pub mod tiers;
pub mod value_matrix;
