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
//! | 5 | backfill finished, but some dates failed (each is reported with its cause) |

use crate::backfill::{self, Every};
use crate::error::RunError;
use crate::job::{self, Overrides};
use crate::scratch_io::ScratchIo;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Exit code 0: success (for `backfill`: every date succeeded or was up to date).
pub const EXIT_OK: u8 = 0;
/// Exit code 1: internal error (a bug: please report it with the log).
pub const EXIT_INTERNAL: u8 = 1;
/// Exit code 2: bad command line or bad job file; retrying will not help.
pub const EXIT_BAD_JOB: u8 = 2;
/// Exit code 3: bad input data (missing column, wrong type, unreadable file, empty window).
pub const EXIT_BAD_INPUT: u8 = 3;
/// Exit code 4: storage error (cannot reach, list, read or write the object store or disk).
pub const EXIT_STORAGE: u8 = 4;
/// Exit code 5: a backfill finished, but some dates failed or were published degraded.
pub const EXIT_PARTIAL: u8 = 5;

#[allow(missing_docs)] // clap derives help text from doc comments
#[derive(Debug, Parser)]
#[command(
    name = "custval",
    version,
    about = "Turn Parquet transaction histories into customer-value tables (RFM, segments, tiers) for BI tools",
    after_help = "Exit codes: 0 ok, 1 internal error, 2 bad command line or job file, 3 bad input data, 4 storage error, 5 some backfill dates failed.\nLog level: RUST_LOG (default info). Credentials: the standard AWS_/GOOGLE_/AZURE_ environment variables."
)]
pub struct Cli {
    /// Log format: `text` for terminals, `json` (one object per line) for schedulers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[allow(missing_docs)] // clap derives help text from doc comments
    #[command(subcommand)]
    pub command: Command,
}

/// Format of the log lines written to stderr (`--log-format`).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum LogFormat {
    /// Human-readable lines for terminals.
    Text,
    /// One JSON object per line, for schedulers.
    Json,
}

#[allow(missing_docs)] // clap derives help text from doc comments
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute every table of JOB as of one date and publish the partitions.
    Run(RunArgs),
    /// Compute every as-of date of a range with one scan of the source; skips dates whose
    /// partitions are up to date (same job definition and input files) unless --force.
    Backfill(BackfillArgs),
    /// Dry run: which files would be read and which partitions written or skipped, and why.
    Plan(PlanArgs),
    /// Write a synthetic transaction history (BG/NBD purchases, Gamma-Gamma spend, categories,
    /// channels, regions, industries) as Parquet: `<output>/transactions/part-*.parquet` and
    /// `<output>/attributes.parquet`.
    Generate(GenerateArgs),
    /// Check the job file and the source's schema without computing anything.
    Validate(ValidateArgs),
    /// Re-render the HTML run report of one as-of date from its published tables (reads no
    /// transactions) and publish it to `<output>/report/as_of=D/index.html`.
    Report(ReportArgs),
}

/// Where a computing command writes and how it runs (shared by `run` and `backfill`).
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Output root URI; overrides `output.uri` (staging environments, tests).
    #[arg(long)]
    pub output: Option<String>,
    /// Where large sources are split into customer buckets (default: the system temp
    /// directory); removed when the run ends.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// How scratch files are written and read: `direct` past the page cache (O_DIRECT; the
    /// default, where the file system allows it) or `buffered` through it (for a slow disk,
    /// such as a network volume, on a machine with memory to spare).
    #[arg(long, value_enum, default_value_t = ScratchIo::Direct)]
    pub scratch_io: ScratchIo,
    /// When another run of the job holds its lock (local outputs), wait for it instead of
    /// failing with exit 4.
    #[arg(long)]
    pub wait: bool,
}

/// `custval run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Path of the job file (TOML).
    pub job: PathBuf,
    /// As-of date YYYY-MM-DD; overrides `as_of` in the job file.
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<chrono::NaiveDate>,
    /// Hold out the last N days to check the purchase model (table `model_diagnostics`);
    /// overrides `clv.holdout_days`.
    #[arg(long)]
    pub holdout_days: Option<i64>,
    #[allow(missing_docs)] // clap derives help text from doc comments
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// `custval backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Path of the job file (TOML).
    pub job: PathBuf,
    /// First day of the range (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub from: chrono::NaiveDate,
    /// Last day of the range (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub to: chrono::NaiveDate,
    /// As-of dates: every day, or the last day of every ISO week / month / quarter that ends
    /// inside the range.
    #[arg(long, value_enum, default_value_t = Every::Month)]
    pub every: Every,
    /// Recompute dates whose partitions are up to date.
    #[arg(long)]
    pub force: bool,
    #[allow(missing_docs)] // clap derives help text from doc comments
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Exit 0 even when dates were published degraded (a model not fitted, rows rejected);
    /// without it such a backfill exits 5.
    #[arg(long)]
    pub allow_degraded: bool,
}

/// `custval report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Path of the job file (TOML).
    pub job: PathBuf,
    /// As-of date YYYY-MM-DD of the published tables (default: the job's `as_of`).
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<chrono::NaiveDate>,
    /// Output root URI; overrides `output.uri`.
    #[arg(long)]
    pub output: Option<String>,
    /// When a run of the job holds its lock, wait for it instead of failing with exit 4.
    #[arg(long)]
    pub wait: bool,
}

/// `custval plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Path of the job file (TOML).
    pub job: PathBuf,
    /// One as-of date (default: the job's `as_of`).
    #[arg(long, value_parser = parse_date, conflicts_with_all = ["from", "to"])]
    pub as_of: Option<chrono::NaiveDate>,
    /// First day of a backfill range.
    #[arg(long, value_parser = parse_date, requires = "to")]
    pub from: Option<chrono::NaiveDate>,
    /// Last day of a backfill range.
    #[arg(long, value_parser = parse_date, requires = "from")]
    pub to: Option<chrono::NaiveDate>,
    /// As-of dates of the range (see `backfill --every`).
    #[arg(long, value_enum, default_value_t = Every::Month)]
    pub every: Every,
    /// Plan as if --force were given.
    #[arg(long)]
    pub force: bool,
    /// Output root URI; overrides `output.uri`.
    #[arg(long)]
    pub output: Option<String>,
}

/// `custval generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output folder URI (local path or s3://, gs://, az://).
    #[arg(long)]
    pub output: String,
    /// Number of customers.
    #[arg(long, default_value_t = 10_000)]
    pub customers: usize,
    /// Random seed: the same seed gives the same history.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First acquisition day.
    #[arg(long, value_parser = parse_date, default_value = "2023-01-01")]
    pub from: chrono::NaiveDate,
    /// Last day of the history.
    #[arg(long, value_parser = parse_date, default_value = "2024-12-31")]
    pub to: chrono::NaiveDate,
    /// Business customers: larger spend (×20).
    #[arg(long)]
    pub b2b: bool,
    /// Number of transaction files (customers are split evenly).
    #[arg(long, default_value_t = 1)]
    pub files: usize,
    /// S3-compatible endpoint for the output, e.g. http://127.0.0.1:9000.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region of the output bucket.
    #[arg(long)]
    pub region: Option<String>,
    /// Allow a plain-http endpoint.
    #[arg(long)]
    pub allow_http: bool,
}

/// `custval validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Path of the job file (TOML).
    pub job: PathBuf,
    /// As-of date YYYY-MM-DD; overrides `as_of` in the job file.
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<chrono::NaiveDate>,
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    job::parse_date(s)
}

/// A stable name for the kind of an error (`error_kind` of the JSON error line).
pub fn error_kind(e: &RunError) -> &'static str {
    match exit_code(e) {
        EXIT_BAD_JOB => "bad_job",
        EXIT_BAD_INPUT => "bad_input",
        EXIT_STORAGE => "storage",
        EXIT_PARTIAL => "partial",
        _ => "internal",
    }
}

/// Map an error to its exit code.
pub fn exit_code(e: &RunError) -> u8 {
    match e {
        RunError::Job(_) => EXIT_BAD_JOB,
        // An I/O failure reading the source (network, permissions) is a storage error that a
        // retry may fix; a missing file, a bad schema or bad data is not.
        RunError::Source(s) if s.is_storage() => EXIT_STORAGE,
        RunError::Source(_) => EXIT_BAD_INPUT,
        RunError::Storage(_) => EXIT_STORAGE,
        RunError::Quality(_) => EXIT_BAD_INPUT,
        // The data cannot support the model: a data/setting problem, not a crash.
        RunError::Model(_) | RunError::Score { .. } => EXIT_BAD_INPUT,
        RunError::Compute { .. } => EXIT_INTERNAL,
        RunError::NotPublished { .. } => EXIT_BAD_INPUT,
        RunError::Usage(_) => EXIT_BAD_JOB,
        RunError::Partial { .. } | RunError::Degraded { .. } => EXIT_PARTIAL,
    }
}

/// Execute a parsed command line; prints results on stdout. Errors are returned for the caller to
/// render once.
pub fn execute(cli: Cli) -> Result<(), RunError> {
    match cli.command {
        Command::Run(a) => run(a),
        Command::Backfill(a) => backfill(a),
        Command::Plan(a) => plan(a),
        Command::Generate(a) => generate(a),
        Command::Validate(a) => validate(a),
        Command::Report(a) => report(a),
    }
}

/// `custval report`: re-render one date's report from the published tables.
fn report(a: ReportArgs) -> Result<(), RunError> {
    let job = job::load(
        &a.job,
        &Overrides {
            as_of: a.as_of,
            output: a.output,
            wait: a.wait,
            ..Overrides::default()
        },
    )?;
    let r = crate::rerender::rerender(&job, job.as_of)?;
    println!(
        "custval: report of {} as of {} ({} bytes, from {} tables): {}",
        job.name,
        job.as_of,
        r.bytes,
        r.tables.len(),
        r.location
    );
    Ok(())
}

impl ExecArgs {
    /// The job-file overrides these options set (the others default).
    fn overrides(self) -> Overrides {
        let ExecArgs {
            output,
            scratch,
            scratch_io,
            wait,
        } = self;
        Overrides {
            output,
            scratch,
            scratch_io,
            wait,
            ..Overrides::default()
        }
    }
}

/// `custval run`: compute and publish one as-of date.
fn run(a: RunArgs) -> Result<(), RunError> {
    let RunArgs {
        job,
        as_of,
        holdout_days,
        exec,
    } = a;
    let job = job::load(
        &job,
        &Overrides {
            as_of,
            holdout_days,
            ..exec.overrides()
        },
    )?;
    let report = backfill::run(&job)?;
    println!(
        "custval: {} as of {}: {} customers in {:.2}s (run {})",
        report.job, report.as_of, report.customers, report.seconds, report.run_id
    );
    for t in &report.tables {
        println!("  {:<20} {:>9} rows  {}", t.table, t.rows, t.location);
    }
    if let Some(m) = &report.message {
        println!("  {}: {m}", report.status);
    }
    Ok(())
}

/// `custval backfill`: every as-of date of a range with one scan.
fn backfill(a: BackfillArgs) -> Result<(), RunError> {
    let BackfillArgs {
        job,
        from,
        to,
        every,
        force,
        exec,
        allow_degraded,
    } = a;
    if from > to {
        return Err(RunError::Usage(format!("--from {from} is after --to {to}")));
    }
    let job = job::load(&job, &exec.overrides())?;
    let dates = backfill::as_of_dates(from, to, every);
    if dates.is_empty() {
        return Err(RunError::Usage(format!(
            "no {} ends between {from} and {to}; widen the range or use --every day",
            format!("{every:?}").to_lowercase()
        )));
    }
    let report = backfill::run_dates(&job, &dates, force)?;
    println!(
        "custval: {} backfill {from}..={to} every {}: {} date{} in {:.2}s (run {})",
        report.job,
        format!("{every:?}").to_lowercase(),
        report.dates.len(),
        if report.dates.len() == 1 { "" } else { "s" },
        report.seconds,
        report.run_id
    );
    for d in &report.dates {
        let rows: usize = d.tables.iter().map(|t| t.rows).sum();
        println!(
            "  as_of={}  {:<9}  {}",
            d.as_of,
            d.status,
            match &d.message {
                Some(m) => m.clone(),
                None => format!("{} customers, {rows} rows", d.customers),
            }
        );
    }
    let degraded: Vec<&backfill::DateOutcome> = report
        .dates
        .iter()
        .filter(|d| d.status == crate::runs::RunStatus::Degraded)
        .collect();
    if report.errors.is_empty() && (degraded.is_empty() || allow_degraded) {
        Ok(())
    } else if report.errors.is_empty() {
        Err(RunError::Degraded {
            dates: degraded.iter().map(|d| d.as_of).collect(),
            total: report.dates.len(),
            first: degraded[0].message.clone().unwrap_or_default(),
        })
    } else {
        Err(RunError::Partial {
            failed: report.errors.iter().map(|(d, _)| *d).collect(),
            total: report.dates.len(),
            first: format!("{:#}", report.errors[0].1),
        })
    }
}

/// `custval plan`: what a run or backfill would read, write and skip.
fn plan(a: PlanArgs) -> Result<(), RunError> {
    let PlanArgs {
        job,
        as_of,
        from,
        to,
        every,
        force,
        output,
    } = a;
    let job = job::load(
        &job,
        &Overrides {
            as_of,
            output,
            ..Default::default()
        },
    )?;
    let dates = match (from, to) {
        (Some(f), Some(_)) if Some(f) > to => {
            return Err(RunError::Usage(format!(
                "--from {f} is after --to {}",
                to.unwrap_or(f)
            )))
        }
        (Some(f), Some(t)) => backfill::as_of_dates(f, t, every),
        _ => vec![job.as_of],
    };
    crate::plan::print_plan(&job, &dates, force)?;
    Ok(())
}

/// `custval generate`: a synthetic history.
fn generate(a: GenerateArgs) -> Result<(), RunError> {
    let GenerateArgs {
        output,
        customers,
        seed,
        from,
        to,
        b2b,
        files,
        endpoint,
        region,
        allow_http,
    } = a;
    let storage = crate::job::StorageOptions {
        region,
        endpoint,
        allow_http: allow_http.then_some(true),
        ..Default::default()
    };
    let opts = crate::generate::GenerateOptions::default()
        .with_customers(customers)
        .with_seed(seed)
        .with_window(crate::source::epoch_day(from), crate::source::epoch_day(to))
        .with_b2b(b2b);
    opts.validate()
        .map_err(|e| RunError::Usage(format!("generate: {e}")))?;
    let written = crate::generate_io::write(&output, &storage, &opts, files.max(1))?;
    println!(
        "custval: wrote {} transactions of {customers} customers ({} files) and attributes to {output}",
        written.transactions, written.files
    );
    Ok(())
}

/// `custval validate`: the job file, the output's writability, the source's schema and
/// freshness, without computing.
fn validate(a: ValidateArgs) -> Result<(), RunError> {
    let ValidateArgs { job, as_of } = a;
    let job = job::load(
        &job,
        &Overrides {
            as_of,
            ..Default::default()
        },
    )?;
    let loc = crate::storage::open(&job.output_uri, &job.output_storage)?;
    crate::storage::check_writable(&loc)?;
    let files = crate::source::job_input_files(&job)?;
    // Every source file alone: schema drift and corrupt files are named without
    // reading any data.
    let source_files =
        crate::source::list_input_files(job.source.uri.get_ref(), &job.source.storage)?;
    if let Some(e) = crate::source::diagnose_files(&job, &source_files) {
        return Err(e.into());
    }
    let scan = crate::source::scan(&job)?;
    let days =
        crate::source::days_with_data(&scan).map_err(|e| crate::source::SourceError::Read {
            uri: scan.uri.clone(),
            source: e,
        })?;
    crate::quality::check_fresh(&days, job.as_of, job.quality.max_staleness_days)?;
    crate::source::check_side_tables(&job)?;
    println!(
        "custval: {} is valid: {} input file(s), window {}, tables {}",
        job.path.display(),
        files.len(),
        crate::source::window_text(&job),
        job.output_tables()
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceError;
    use crate::storage::StorageError;

    fn local(kind: std::io::ErrorKind) -> StorageError {
        StorageError::Local {
            path: "/x".into(),
            op: "stat",
            source: std::io::Error::from(kind),
        }
    }

    #[test]
    fn exit_codes_come_from_the_error_variants() {
        let cases: Vec<(RunError, u8, &str)> = vec![
            (RunError::Usage("x".into()), EXIT_BAD_JOB, "bad_job"),
            // A missing object is bad input; an unreachable or refusing store is storage.
            (
                SourceError::Storage(local(std::io::ErrorKind::NotFound)).into(),
                EXIT_BAD_INPUT,
                "bad_input",
            ),
            (
                SourceError::Storage(local(std::io::ErrorKind::PermissionDenied)).into(),
                EXIT_STORAGE,
                "storage",
            ),
            (
                local(std::io::ErrorKind::ConnectionRefused).into(),
                EXIT_STORAGE,
                "storage",
            ),
            // A model the data cannot support, or values it refuses, are data problems.
            (
                crate::valuation::FitFailure {
                    what: "the purchase model",
                    detail: "x".into(),
                }
                .into(),
                EXIT_BAD_INPUT,
                "bad_input",
            ),
            (
                RunError::Score {
                    source: crate::models::ModelError::Empty { model: "BG/NBD" },
                },
                EXIT_BAD_INPUT,
                "bad_input",
            ),
            (
                RunError::Compute {
                    step: "x",
                    source: polars::prelude::PolarsError::ComputeError("x".into()),
                },
                EXIT_INTERNAL,
                "internal",
            ),
        ];
        for (e, code, kind) in cases {
            assert_eq!(exit_code(&e), code, "{e}");
            assert_eq!(error_kind(&e), kind, "{e}");
        }
    }
}
