//! Command-line interface: clap definitions, the subcommands and the exit-code contract.
//!
//! Exit codes (stable; schedulers can branch on them):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | internal error (a bug: please report it) |
//! | 2 | bad command line or bad job file |
//! | 3 | bad input data (missing column, wrong type, unreadable file, empty window) |
//! | 4 | storage error (cannot reach, list, read or write the object store / disk) |

use crate::job::{self, Overrides};
use crate::pipeline::{self, RunError};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const EXIT_OK: u8 = 0;
pub const EXIT_INTERNAL: u8 = 1;
pub const EXIT_BAD_JOB: u8 = 2;
pub const EXIT_BAD_INPUT: u8 = 3;
pub const EXIT_STORAGE: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "custval",
    version,
    about = "Turn Parquet transaction histories into customer-value tables (RFM, segments, tiers) for BI tools",
    after_help = "Exit codes: 0 ok, 1 internal error, 2 bad command line or job file, 3 bad input data, 4 storage error.\nLog level: RUST_LOG (default info). Credentials: the standard AWS_/GOOGLE_/AZURE_ environment variables."
)]
pub struct Cli {
    /// Log format: `text` for terminals, `json` (one object per line) for schedulers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute every table of JOB as of one date and publish the partitions.
    Run {
        /// Path of the job file (TOML).
        job: PathBuf,
        /// As-of date YYYY-MM-DD; overrides `as_of` in the job file.
        #[arg(long, value_parser = parse_date)]
        as_of: Option<chrono::NaiveDate>,
        /// Output root URI; overrides `output.uri` (staging environments, tests).
        #[arg(long)]
        output: Option<String>,
        /// Hold out the last N days to check the purchase model (table `model_diagnostics`);
        /// overrides `clv.holdout_days`.
        #[arg(long)]
        holdout_days: Option<i64>,
    },
    /// Check the job file and the source's schema without computing anything.
    Validate {
        /// Path of the job file (TOML).
        job: PathBuf,
        /// As-of date YYYY-MM-DD; overrides `as_of` in the job file.
        #[arg(long, value_parser = parse_date)]
        as_of: Option<chrono::NaiveDate>,
    },
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    job::parse_date(s)
}

/// Map an error to its exit code.
pub fn exit_code(e: &RunError) -> u8 {
    match e {
        RunError::Job(_) => EXIT_BAD_JOB,
        RunError::Source(_) => EXIT_BAD_INPUT,
        RunError::Storage(_) => EXIT_STORAGE,
        RunError::Compute { .. } => EXIT_INTERNAL,
    }
}

/// Execute a parsed command line; prints results on stdout. Errors are returned for the caller to
/// render once.
pub fn execute(cli: Cli) -> Result<(), RunError> {
    match cli.command {
        Command::Run {
            job,
            as_of,
            output,
            holdout_days,
        } => {
            let job = job::load(
                &job,
                &Overrides {
                    as_of,
                    output,
                    holdout_days,
                },
            )?;
            let report = pipeline::run(&job)?;
            println!(
                "custval: {} as of {}: {} customers in {:.2}s (run {})",
                report.job, report.as_of, report.customers, report.seconds, report.run_id
            );
            for t in &report.tables {
                println!("  {:<20} {:>9} rows  {}", t.table, t.rows, t.location);
            }
            Ok(())
        }
        Command::Validate { job, as_of } => {
            let job = job::load(
                &job,
                &Overrides {
                    as_of,
                    ..Default::default()
                },
            )?;
            crate::storage::open(&job.output_uri, &job.output_storage)?;
            let files =
                crate::source::list_input_files(job.source.uri.get_ref(), &job.source.storage)?;
            crate::source::scan(&job)?;
            println!(
                "custval: {} is valid: {} input file(s), window {}, tables {}",
                job.path.display(),
                files.len(),
                crate::source::window_text(&job),
                job.tables.join(", ")
            );
            Ok(())
        }
    }
}
