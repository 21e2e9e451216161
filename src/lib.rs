#![warn(missing_docs, unreachable_pub)]
//! custval: Parquet transaction histories → customer-value tables for BI tools.
//!
//! Data model: the input is transaction rows (customer, time, amount, ...); every output row is
//! about one customer (or one segment) *as of* a date D, computed from purchases up to and
//! including D.
//!
//! Modules depend one way (checked by `tests/architecture.rs`):
//!
//! ```text
//! cli ─→ backfill (runner: run, backfill; plan) ─→ pipeline (one as-of date)
//!          │  job (the job file, validated)           │
//!          │  source (list, scan, check the input)     │  pure domain:
//!          │  compact (customer buckets on scratch)    │    quality (row checks) → summary
//!          │  storage (object stores, commit, lock)    │    → features, valuation (models),
//!          └──────────────────────────────────────────┴─→  segments → tables
//! leaves: columns, text, store_options, progress, runs, parquet_pages, run_aggs
//! ```
//!
//! Per date: the source rows of each customer bucket are checked (`quality`) and reduced to a
//! per-customer, per-day table; each date's part of every bucket (`pipeline::date_partial`)
//! is merged into the customer summary (`summary`), the purchase and spend models are fitted
//! and customers valued ([`valuation`], [`models`]), behaviour features (`features`) and
//! segments (`segments`) computed, the output tables built (`tables`) and published by
//! `storage`'s commit protocol. The domain modules take and return frames or plain structs
//! and import neither the job file, the CLI, the runner nor the storage layer.
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
pub(crate) mod categories;
pub mod cli;
pub(crate) mod codes;
pub(crate) mod columns;
pub(crate) mod compact;
pub(crate) mod dictionary;
pub mod error;
pub(crate) mod features;
pub mod generate;
pub mod generate_io;
pub(crate) mod inline_ids;
pub mod job;
pub(crate) mod local_day;
pub mod memory;
pub mod models;
pub(crate) mod order;
pub(crate) mod parquet_pages;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub mod progress;
pub(crate) mod quality;
pub(crate) mod report;
pub(crate) mod rerender;
pub(crate) mod run_aggs;
pub(crate) mod runs;
pub mod scratch_io;
pub(crate) mod segments;
pub mod source;
pub(crate) mod storage;
pub mod store_options;
pub(crate) mod summary;
pub(crate) mod tables;
pub(crate) mod text;
pub mod valuation;
