//! The `custval` binary: parse, set up logging, call the library, map errors to exit codes.

use clap::Parser;
use custval::cli::{self, Cli, LogFormat};
use custval::progress;
use std::io::Write;
use std::process::ExitCode;

/// mimalloc keeps and reuses freed memory where glibc's malloc unmapped and re-faulted the large
/// buffers polars allocates per bucket: measured on the 50 M-row scale workload, peak RSS 2.1 GB
/// instead of 2.8–3.1 GB at the same speed (docs/benchmark-history.md). Its options are set by
/// [`custval::memory::configure`].
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(progress::LogWriter);
    match format {
        // One JSON object per line: event fields at the top level, the run's job, run id and
        // as-of date under "span".
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(progress::use_colour())
            .init(),
    }
}

/// The final error: one line `custval: error: ...` as text, or one JSON object with the error's
/// kind, exit code and the run's job, as-of date and run id.
fn report_error(format: LogFormat, message: &str, kind: &str, code: u8) {
    match format {
        LogFormat::Text => eprintln!("custval: error: {message}"),
        LogFormat::Json => {
            let c = progress::context();
            let line = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "ERROR",
                "message": format!("custval: error: {message}"),
                "error_kind": kind,
                "exit_code": code,
                "job": c.job,
                "as_of": c.as_of,
                "run_id": c.run_id,
            });
            let _ = writeln!(progress::LogWriter, "{line}");
        }
    }
}

fn main() -> ExitCode {
    custval::memory::configure();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            let text = e.render().to_string();
            let text = text
                .trim_end()
                .strip_prefix("error: ")
                .unwrap_or(text.trim_end());
            eprintln!("custval: error: {text}");
            return ExitCode::from(cli::EXIT_BAD_JOB);
        }
    };
    init_logging(cli.log_format);
    // A panic is a bug: report it on one line and exit 1 (the documented internal-error code)
    // instead of Rust's multi-line message and exit 101.
    let format = cli.log_format;
    std::panic::set_hook(Box::new(move |info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
        report_error(
            format,
            &format!("internal error{at}: {msg} (please report this bug)"),
            "internal",
            cli::EXIT_INTERNAL,
        );
    }));
    match std::panic::catch_unwind(|| cli::execute(cli)) {
        Ok(Ok(())) => ExitCode::from(cli::EXIT_OK),
        Ok(Err(e)) => {
            let code = cli::exit_code(&e);
            report_error(format, &format!("{e:#}"), cli::error_kind(&e), code);
            ExitCode::from(code)
        }
        Err(_) => ExitCode::from(cli::EXIT_INTERNAL),
    }
}
