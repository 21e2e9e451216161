//! custval: Parquet transaction histories → customer-value tables for BI tools.
//!
//! Data model: the input is transaction rows (customer, time, amount, ...); every output row is
//! about one customer (or one segment) *as of* a date D, computed from purchases up to and
//! including D. Data flows one way:
//! read ([`source`]) → customer summary ([`summary`]) → features ([`features`]) →
//! segments ([`segments`]) → tables ([`tables`]) → write ([`storage`]). [`pipeline`] knows the
//! order; everything else is a pure computation or an I/O adapter.
//!
//! ```no_run
//! let job = custval::job::load(
//!     std::path::Path::new("jobs/cdnow.toml"),
//!     &custval::job::Overrides::default(),
//! )?;
//! let report = custval::backfill::run(&job)?;
//! println!("{} customers as of {}", report.customers, report.as_of);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backfill;
pub mod cli;
pub mod columns;
pub mod compact;
pub mod features;
pub mod generate;
pub mod generate_io;
pub mod job;
pub mod models;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod quality;
pub mod runs;
pub mod segments;
pub mod source;
pub mod storage;
pub mod summary;
pub mod tables;
pub mod text;
pub mod valuation;
