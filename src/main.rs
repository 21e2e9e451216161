//! The `custval` binary: parse, set up logging, call the library, map errors to exit codes.

use clap::Parser;
use custval::cli::{self, Cli, LogFormat};
use std::process::ExitCode;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // A panic is a bug: report it on one line and exit 1 (the documented internal-error code)
    // instead of Rust's multi-line message and exit 101.
    std::panic::set_hook(Box::new(|info| {
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
        eprintln!("custval: error: internal error{at}: {msg} (please report this bug)");
    }));
    match std::panic::catch_unwind(|| cli::execute(cli)) {
        Ok(Ok(())) => ExitCode::from(cli::EXIT_OK),
        Ok(Err(e)) => {
            eprintln!("custval: error: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
        Err(_) => ExitCode::from(cli::EXIT_INTERNAL),
    }
}
