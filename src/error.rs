//! The crate-wide error of a run or backfill, [`RunError`], classified for exit codes (see
//! [`crate::cli`]), and the helper that wraps a polars error of a computation step.

use crate::quality::QualityError;
use crate::source::SourceError;
use crate::storage::StorageError;
use polars::prelude::PolarsError;

/// A run failure, classified for exit codes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The job file could not be read, parsed or validated (exit code: bad job).
    #[error(transparent)]
    Job(#[from] crate::job::JobError),
    /// The input is missing, unreadable or invalid (a storage error when the read itself failed).
    #[error(transparent)]
    Source(Box<SourceError>),
    /// Reading or writing the output store failed (exit code: storage).
    #[error(transparent)]
    Storage(Box<StorageError>),
    /// The command-line arguments are unusable (e.g. `--from` after `--to`, no date in the range).
    #[error("{0}")]
    Usage(String),
    /// Some dates of a backfill failed; the others were published.
    #[error("{} of {total} dates failed ({}); first failure: {first}", failed.len(), failed.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))]
    Partial {
        /// The dates that failed, in date order.
        failed: Vec<chrono::NaiveDate>,
        /// The number of dates of the backfill, skipped ones included.
        total: usize,
        /// The error of the first failed date, with its causes.
        first: String,
    },
    /// A date's input is too dirty or stale to publish, or a sum overflows.
    #[error(transparent)]
    Quality(#[from] QualityError),
    /// Some dates were published degraded and `--allow-degraded` was not passed.
    #[error("{} of {total} dates published degraded ({}): {first}; pass --allow-degraded to accept degraded dates", dates.len(), dates.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))]
    Degraded {
        /// The dates published degraded, in date order.
        dates: Vec<chrono::NaiveDate>,
        /// The number of dates of the backfill, skipped ones included.
        total: usize,
        /// Why the first degraded date is degraded.
        first: String,
    },
    /// A model could not be fitted and `clv.on_fit_failure = "fail"`.
    #[error(transparent)]
    Model(#[from] crate::valuation::FitFailure),
    /// The models refused a customer's values (e.g. recency larger than T): bad input data.
    #[error("scoring customers: {source}")]
    Score {
        /// The model's complaint about the customer's values.
        #[source]
        source: crate::models::ModelError,
    },
    /// A command that reads published output found none.
    #[error("no published {what} at {uri}: run or backfill that date first")]
    NotPublished {
        /// What was looked for, e.g. `customer_features as of 2024-01-31`.
        what: String,
        /// Where it was looked for: the partition's manifest path or URI.
        uri: String,
    },
    /// A polars computation failed: an internal error (exit code 1).
    #[error("computing {step}: {source}")]
    Compute {
        /// The computation step that failed (e.g. `"customer summary"`).
        step: &'static str,
        /// The polars error.
        source: PolarsError,
    },
}

impl From<crate::valuation::ValuationError> for RunError {
    fn from(e: crate::valuation::ValuationError) -> Self {
        use crate::valuation::ValuationError as V;
        match e {
            V::Fit(f) => RunError::Model(f),
            V::Frame(p) => compute("valuation")(p),
            V::Score(m) => RunError::Score { source: m },
        }
    }
}

impl From<SourceError> for RunError {
    fn from(e: SourceError) -> Self {
        RunError::Source(Box::new(e))
    }
}

impl From<StorageError> for RunError {
    fn from(e: StorageError) -> Self {
        RunError::Storage(Box::new(e))
    }
}

/// Wrap a polars error of a computation step (exit code 1).
pub(crate) fn compute(step: &'static str) -> impl FnOnce(PolarsError) -> RunError {
    move |source| RunError::Compute { step, source }
}
